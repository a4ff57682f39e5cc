// SPDX-License-Identifier: GPL-2.0

//! FFI edge: userspace mappings of buffers.
//!
//! A mapping holds a reference to its [`Buffer`]: [`attach`] stores one in
//! `vm_private_data`, the VMA `open` hook (fork, split, mremap) takes another
//! for the new VMA, and `close` drops it. So freeing the handle or closing the
//! file never frees memory that a page table still points at, and mappings
//! keep working after unbind: the memory goes when the last VMA does.
//!
//! Page-backed mappings (`CMABUF_ALLOC_PAGE_MAP`) get the same hooks plus a
//! `pfn_mkwrite` that does nothing but declare the mapping as one whose
//! writes the owner wants to hear of: `get_user_pages()` then refuses
//! long-term writable pins of it (`check_vma_flags()`, the rule for file
//! mappings that need dirty tracking) with `EFAULT`, at once. Without it a
//! long-term pin (an io_uring registered buffer, RDMA, VFIO, V4L2 USERPTR)
//! of CMA pages that cannot migrate spins in `__gup_longterm_locked()` until
//! the task is killed. Writes to the pages themselves never call it (their
//! PTEs are writable from the start, and `wp_page_shared()` reuses a
//! write-protected page without it).
//!
//! `VmaNew` has no accessors for `vm_pgoff`, `vm_ops` or `vm_private_data`,
//! hence the raw accesses here.

use crate::{
    buffer::Buffer,
    validate::MapKind, //
};
use kernel::{
    bindings,
    mm::virt::{
        flags as vm_flags,
        vm_flags_t,
        VmaNew, //
    },
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

/// `VM_MAYSHARE`, built from its bit number: in 7.2 both `vm_flags::MAYSHARE` and
/// `bindings::VM_MAYSHARE` are wrong (the kernel crate's `bindings_helper.h` defines the latter as
/// `VM_MAYEXEC`, 0x40). 7.3 fixes `bindings::VM_MAYSHARE`.
const VM_MAYSHARE: vm_flags_t = 1 << bindings::VMA_MAYSHARE_BIT;

// The bit `do_mmap()` sets for every `MAP_SHARED` mapping.
const _: () = assert!(VM_MAYSHARE == 0x80);

/// Checks a new mapping's flags and returns its `(vm_pgoff, pages)`.
///
/// `MAP_PRIVATE` is `EINVAL` and `PROT_EXEC` is `EPERM`; `mprotect()` cannot add exec later, and
/// the mapping can neither grow nor be dumped. `MAP_SHARED` is recognised by `VM_MAYSHARE`:
/// `do_mmap()` clears `VM_SHARED` (and `VM_MAYWRITE`) for a shared mapping of a file opened
/// read-only, which may then map `PROT_READ` but never write (`mprotect()` cannot add it).
pub(crate) fn prepare(vma: &VmaNew) -> Result<(u64, u64)> {
    let flags = vma.flags();
    if flags & VM_MAYSHARE == 0 {
        return Err(EINVAL);
    }
    if flags & vm_flags::EXEC != 0 {
        return Err(EPERM);
    }
    vma.try_clear_mayexec()?;
    vma.set_dontexpand();
    vma.set_dontdump();
    // SAFETY: The VMA is being set up in our mmap hook; nothing writes `vm_pgoff` concurrently.
    let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff };
    // CAST: Page counts and offsets fit in `u64`.
    let pages = ((vma.end() - vma.start()) >> PAGE_SHIFT) as u64;
    Ok((pgoff as u64, pages))
}

/// Lets `vma` hold `buffer` until it is closed; counts it in the buffer's map count.
pub(crate) fn attach(vma: &VmaNew, buffer: Arc<Buffer>) {
    buffer.mapped();
    let raw = vma.as_ptr();
    let ops = match buffer.map_kind() {
        MapKind::Pfn => &raw const VM_OPS.0,
        MapKind::Pages => &raw const VM_OPS_PAGES.0,
    };
    // SAFETY: The VMA is being set up in our mmap hook; nothing else uses these fields yet.
    // INVARIANT (of the hooks below): `vm_private_data` owns one `Arc<Buffer>` reference.
    unsafe {
        (*raw).vm_ops = ops;
        (*raw).vm_private_data = Arc::into_raw(buffer).cast_mut().cast();
    }
}

/// VMA operations that may live in a `static`.
#[repr(transparent)]
struct VmOps(bindings::vm_operations_struct);

// SAFETY: Immutable; holds only function pointers.
unsafe impl Sync for VmOps {}

/// The hooks of every buffer mapping.
static VM_OPS: VmOps = VmOps(bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    ..pin_init::zeroed()
});

/// The hooks of every page-backed buffer mapping: as [`VM_OPS`], plus write notification (see
/// the module documentation).
static VM_OPS_PAGES: VmOps = VmOps(bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    pfn_mkwrite: Some(pfn_mkwrite),
    ..pin_init::zeroed()
});

/// A write to a write-protected PTE without a page (never one of ours): nothing to track.
///
/// # Safety
///
/// Called by the mm with a fault of one of our VMAs.
unsafe extern "C" fn pfn_mkwrite(_vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    0
}

/// A VMA was copied from one of ours (fork, split, mremap): take a reference for it.
///
/// # Safety
///
/// `vma` is a VMA whose `vm_private_data` was copied from one of ours, so it points at a live
/// `Buffer` held by the original VMA.
unsafe extern "C" fn vma_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: See the function's safety section; the original VMA's reference keeps it alive.
    let borrowed = unsafe { ArcBorrow::<Buffer>::from_raw((*vma).vm_private_data.cast()) };
    let buffer: Arc<Buffer> = borrowed.into();
    buffer.mapped();
    // The new VMA owns this reference from now on.
    let _ = Arc::into_raw(buffer);
}

/// One of our VMAs goes away: drop its reference (possibly the buffer's last).
///
/// # Safety
///
/// `vma` is one of our VMAs, whose `vm_private_data` owns an `Arc<Buffer>` reference.
unsafe extern "C" fn vma_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: See the function's safety section; the reference is given back exactly once.
    let buffer = unsafe { Arc::<Buffer>::from_raw((*vma).vm_private_data.cast()) };
    buffer.unmapped();
}
