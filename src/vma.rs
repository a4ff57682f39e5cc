// SPDX-License-Identifier: GPL-2.0

//! FFI edge: userspace mappings of buffers.
//!
//! A mapping holds a reference to its [`Buffer`]: [`attach`] stores one in
//! `vm_private_data`, the VMA `open` hook (fork, split, mremap) takes another
//! for the new VMA, and `close` drops it. So freeing the handle or closing the
//! file never frees memory that a page table still points at. The one
//! exception is unbind, which revokes: [`Mapping::zap_all`] removes every
//! page table entry of a device's files before their memory is freed, and
//! later accesses get `SIGBUS`.
//!
//! `VmaNew` has no accessors for `vm_pgoff`, `vm_ops` or `vm_private_data`,
//! hence the raw accesses here.

use crate::buffer::Buffer;
use core::ptr::NonNull;
use kernel::{
    bindings,
    fs::File,
    mm::{
        virt::{
            flags as vm_flags,
            vm_flags_t,
            VmaNew, //
        },
        Mm,
    },
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

/// The page-cache mapping (`f_mapping`) of an open file: where its VMAs are indexed.
///
/// # Invariants
///
/// `inode` is the file's inode, with a reference taken by `ihold()` and given back in [`Drop`];
/// `mapping` is that inode's `i_mapping`, so it lives as long as we hold the inode, whether or not
/// the file is still open.
pub(crate) struct Mapping {
    /// The inode, referenced.
    inode: NonNull<bindings::inode>,
    /// Its `i_mapping`.
    mapping: NonNull<bindings::address_space>,
}

// SAFETY: An inode reference and an `address_space` may be used and given back from any thread.
unsafe impl Send for Mapping {}
// SAFETY: `unmap_mapping_range()` does its own locking.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The mapping of `file`, which keeps the file's inode alive.
    pub(crate) fn of_file(file: &File) -> Result<Self> {
        Self::of_raw_file(file.as_ptr())
    }

    /// The mapping of the open file `raw` (which the caller holds), keeping its inode alive.
    pub(crate) fn of_raw_file(raw: *mut bindings::file) -> Result<Self> {
        if raw.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `raw` is an open file the caller holds; `f_inode` and `f_mapping` are set when
        // it is opened and not changed afterwards.
        let (inode, mapping) = unsafe { ((*raw).f_inode, (*raw).f_mapping) };
        let inode = NonNull::new(inode).ok_or(EINVAL)?;
        // SAFETY: The open file holds its inode, so it is live here.
        if unsafe { (*inode.as_ptr()).i_mapping } != mapping {
            // A character device's files map through their inode's own mapping.
            return Err(EINVAL);
        }
        let mapping = NonNull::new(mapping).ok_or(EINVAL)?;
        // SAFETY: The inode is live (above); the reference is given back in `Drop`.
        unsafe { bindings::ihold(inode.as_ptr()) };
        // INVARIANT: The inode is referenced and `mapping` is its `i_mapping`.
        Ok(Self { inode, mapping })
    }

    /// Whether `self` and `other` are the same mapping (files opened through the same inode).
    pub(crate) fn same(&self, other: &Self) -> bool {
        self.mapping == other.mapping
    }

    /// Removes every page table entry of every VMA of the mapping.
    pub(crate) fn zap_all(&self) {
        // SAFETY: The mapping is live (type invariant); `(0, 0)` means the whole file, and
        // `even_cows` also reaches private copies (there are none: private maps are refused).
        unsafe { bindings::unmap_mapping_range(self.mapping.as_ptr(), 0, 0, 1) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold one reference on the inode; this gives it back.
        unsafe { bindings::iput(self.inode.as_ptr()) };
    }
}

/// `VM_MAYSHARE`, built from its bit number: in 7.2 both `vm_flags::MAYSHARE` and
/// `bindings::VM_MAYSHARE` are wrong (the kernel crate's `bindings_helper.h` defines the latter as
/// `VM_MAYEXEC`, 0x40). 7.3 fixes `bindings::VM_MAYSHARE`.
const VM_MAYSHARE: vm_flags_t = 1 << bindings::VMA_MAYSHARE_BIT;

// The bit `do_mmap()` sets for every `MAP_SHARED` mapping.
const _: () = assert!(VM_MAYSHARE == 0x80);

/// Whether `mm` still has users. A dead address space cannot have an mmap in flight.
pub(crate) fn mm_is_alive(mm: &Mm) -> bool {
    // SAFETY: `mm` is a live `mm_struct` (the reference keeps it allocated, `mmgrab`);
    // `atomic_read()` reads its user count without side effects.
    unsafe { bindings::atomic_read(&raw const (*mm.as_raw()).__bindgen_anon_1.mm_users) > 0 }
}

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
    // SAFETY: The VMA is being set up in our mmap hook; nothing else uses these fields yet.
    // INVARIANT (of the hooks below): `vm_private_data` owns one `Arc<Buffer>` reference.
    unsafe {
        (*raw).vm_ops = &raw const VM_OPS.0;
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
