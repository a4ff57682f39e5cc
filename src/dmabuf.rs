// SPDX-License-Identifier: GPL-2.0

//! FFI edge: buffers exported as dma-bufs, for V4L2, DRM and other importers.
//!
//! The 7.2 kernel crate has no dma-buf exporter abstraction, so the
//! `dma_buf_ops` live here and expose safe types: [`DmaBuf`] (one reference
//! to a cmabuf dma-buf) and the ops table [`OPS`].
//!
//! Lifetime: a dma-buf's `priv` owns an [`Exporter`], which holds the
//! [`Buffer`] (`Arc`) until the dma-buf's last file reference goes and the
//! core calls `release`. `exp_info.owner` pins the module for as long as any
//! dma-buf exists, so `rmmod` is refused meanwhile. The dma-buf file's
//! mapping is listed with the device like an open file's, so unbind zaps
//! dma-buf mmaps too. What importers map (`map_dma_buf`) and kernel
//! mappings (`vmap`) are counted in the buffer's `Backing`; unbind waits for
//! them to go before it frees the memory (see `Shared::revoke`).
//!
//! `map_dma_buf` returns the buffer's table mapped for `attach->dev` with
//! `dma_map_sgtable()`: one segment where the importer takes segments that
//! long, else consecutive segments of its maximum size, which dma-direct maps
//! to consecutive DMA addresses. videobuf2-dma-contig and DRM's GEM DMA
//! helpers require such a DMA-contiguous mapping (and DMA API debugging
//! checks the segment limit).

use crate::{
    buffer::Buffer,
    device::Shared,
    validate::Direction,
    vma::{
        self,
        Mapping, //
    },
};
use core::{
    ptr::NonNull,
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};
use kernel::{
    bindings,
    error::from_err_ptr,
    fs::File,
    mm::virt::VmaNew,
    prelude::*,
    rbtree::RBTreeNode,
    str::CString,
    sync::{
        aref::ARef,
        Arc, //
    },
};

/// What a cmabuf dma-buf's `priv` owns.
struct Exporter {
    /// The buffer, alive as long as the dma-buf.
    buffer: Arc<Buffer>,
    /// Key of the dma-buf file's mapping in the device's list of mappings to zap at unbind.
    file_id: u64,
    /// Whether the export completed and was counted in the statistics (a failed export's
    /// dma-buf is released again without a trace).
    counted: AtomicBool,
}

/// One reference to a cmabuf dma-buf.
///
/// # Invariants
///
/// `ptr` is a dma-buf exported with [`OPS`] (so its `priv` is an [`Exporter`]), on whose file we
/// own one reference, given back in [`Drop`].
pub(crate) struct DmaBuf {
    /// The dma-buf.
    ptr: NonNull<bindings::dma_buf>,
    /// Its file's access mode, `O_RDWR` or `O_RDONLY`.
    access_mode: u32,
}

// SAFETY: A dma-buf reference may be used and given back from any thread.
unsafe impl Send for DmaBuf {}
// SAFETY: `&self` only takes further file references, which is thread-safe.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// Exports `buffer` as a new dma-buf whose file has `access_mode` (`O_RDWR` or `O_RDONLY`),
    /// holding the buffer until the dma-buf goes. `ENODEV` once unbind has started.
    pub(crate) fn export(buffer: Arc<Buffer>, access_mode: u32) -> Result<Self> {
        let shared = buffer.charge().shared().clone();
        let file_id = shared.new_id();
        let size = buffer.size();
        let exporter = KBox::new(
            Exporter {
                buffer,
                file_id,
                counted: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        let mut info: bindings::dma_buf_export_info = pin_init::zeroed();
        info.exp_name = c"cmabuf".as_char_ptr();
        info.owner = &raw mut bindings::__this_module;
        info.ops = &raw const OPS.0;
        info.size = size;
        // CAST: `O_RDWR` or `O_RDONLY`, small flag constants.
        info.flags = access_mode as c_int;
        info.priv_ = KBox::into_raw(exporter).cast();
        // SAFETY: `info` is fully initialised; `OPS` is a complete, static ops table and `priv_`
        // an `Exporter` that the ops own from here on (given back in `release`).
        let ptr = match from_err_ptr(unsafe { bindings::dma_buf_export(&info) }) {
            Ok(ptr) => ptr,
            Err(e) => {
                // SAFETY: Export failed, so the core never saw `priv_`: it is still ours.
                drop(unsafe { KBox::from_raw(info.priv_.cast::<Exporter>()) });
                return Err(e);
            }
        };
        // INVARIANT: The export gave us the dma-buf's one file reference.
        let this = Self {
            // PANIC: `from_err_ptr` passed a valid, hence non-null, pointer.
            ptr: NonNull::new(ptr).ok_or(EINVAL)?,
            access_mode,
        };
        // SAFETY: The dma-buf is live (we hold a reference); `file` is set by the export.
        let file = unsafe { (*ptr).file };
        // If this fails, dropping `this` releases the dma-buf and with it the exporter.
        let mapping = Mapping::of_raw_file(file)?;
        shared.add_file(RBTreeNode::new(file_id, mapping, GFP_KERNEL)?)?;
        this.exporter().buffer.backing().exported(ptr.cast());
        shared.count_export();
        this.exporter().counted.store(true, Ordering::Relaxed);
        Ok(this)
    }

    /// The access mode of the dma-buf's file.
    pub(crate) fn access_mode(&self) -> u32 {
        self.access_mode
    }

    /// The exporter behind the dma-buf.
    fn exporter(&self) -> &Exporter {
        // SAFETY: By the type invariant `priv_` is an `Exporter`, alive while the dma-buf is,
        // which our reference guarantees.
        unsafe { &*(*self.ptr.as_ptr()).priv_.cast::<Exporter>() }
    }

    /// A new reference to the dma-buf's file, to install in a file descriptor.
    pub(crate) fn file(&self) -> ARef<File> {
        // SAFETY: The dma-buf is live (type invariant), so is its file; `get_file()` takes a
        // reference that the returned `ARef` owns.
        let file = unsafe { bindings::get_file((*self.ptr.as_ptr()).file) };
        // SAFETY: `File` is a transparent wrapper of `struct file`; the reference taken above is
        // handed to the `ARef`. PANIC: `get_file()` returns its (non-null) argument.
        unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast::<File>())) }
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference; this gives it back.
        unsafe { bindings::dma_buf_put(self.ptr.as_ptr()) };
    }
}

/// The name userspace gave a dma-buf (`DMA_BUF_SET_NAME`), if any.
///
/// # Safety
///
/// `dmabuf` is a live cmabuf dma-buf: its backing lists it only between export and `release`,
/// and callers read it under the backing's lock.
pub(crate) unsafe fn name_of(dmabuf: *mut c_void) -> Option<CString> {
    let dmabuf = dmabuf.cast::<bindings::dma_buf>();
    // Names are at most `DMA_BUF_NAME_LEN` bytes (`<linux/dma-buf.h>`); copied under the spinlock
    // without allocating.
    let mut buf = [0u8; crate::uapi::DMA_BUF_NAME_LEN as usize];
    let mut len = 0;
    // SAFETY: The dma-buf is live (the function's safety section); `name_lock` guards `name`,
    // a NUL-terminated string when set.
    unsafe {
        let lock = &raw mut (*dmabuf).name_lock;
        bindings::spin_lock(lock);
        let name = (*dmabuf).name;
        if !name.is_null() {
            for b in CStr::from_char_ptr(name).to_bytes() {
                if len + 1 == buf.len() {
                    break;
                }
                buf[len] = *b;
                len += 1;
            }
        }
        bindings::spin_unlock(lock);
    }
    if len == 0 {
        return None;
    }
    CString::try_from(CStr::from_bytes_with_nul(&buf[..=len]).ok()?).ok()
}

/// The ops table in a `static`.
#[repr(transparent)]
struct Ops(bindings::dma_buf_ops);

// SAFETY: Immutable; holds only function pointers.
unsafe impl Sync for Ops {}

/// The ops of every cmabuf dma-buf.
static OPS: Ops = Ops(bindings::dma_buf_ops {
    attach: Some(attach),
    detach: Some(detach),
    map_dma_buf: Some(map_dma_buf),
    unmap_dma_buf: Some(unmap_dma_buf),
    release: Some(release),
    begin_cpu_access: Some(begin_cpu_access),
    end_cpu_access: Some(end_cpu_access),
    mmap: Some(mmap),
    vmap: Some(vmap),
    vunmap: Some(vunmap),
    ..pin_init::zeroed()
});

/// The buffer of a cmabuf dma-buf.
///
/// # Safety
///
/// `dmabuf` is a live dma-buf exported with [`OPS`]; the result is used only while it lives.
unsafe fn buffer_of<'a>(dmabuf: *mut bindings::dma_buf) -> &'a Buffer {
    // SAFETY: `priv_` of a dma-buf exported with `OPS` is an `Exporter` (see `DmaBuf::export`),
    // alive until `release`, which the caller's dma-buf reference holds off.
    unsafe { &(*(*dmabuf).priv_.cast::<Exporter>()).buffer }
}

/// A direction from the DMA API's enum.
fn direction(dir: bindings::dma_data_direction) -> Direction {
    if dir == crate::compat::dma_dir::TO_DEVICE {
        Direction::ToDevice
    } else if dir == crate::compat::dma_dir::FROM_DEVICE {
        Direction::FromDevice
    } else {
        Direction::Bidirectional
    }
}

/// `dma_get_max_seg_size()`: the longest segment `dev` takes (64 KiB unless it says more).
///
/// # Safety
///
/// `dev` is a live device.
unsafe fn max_segment(dev: *mut bindings::device) -> u32 {
    // SAFETY: `dev` is live (the function's safety section); `dma_parms` is set by its driver
    // before it imports buffers.
    let parms = unsafe { (*dev).dma_parms };
    // SAFETY: A non-null `dma_parms` points at the device's parameters, which live as long.
    match unsafe { parms.as_ref() } {
        Some(p) if p.max_segment_size != 0 => p.max_segment_size,
        _ => 1 << 16,
    }
}

/// What an attachment's `priv` owns: the buffer's table for the importing device.
struct Attachment {
    /// The table; mapped for the importer between `map_dma_buf` and `unmap_dma_buf`.
    table: bindings::sg_table,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: `table` was filled by `Backing::sg_table` (or is still zeroed, which
        // `sg_free_table()` accepts) and is freed once, here.
        unsafe { bindings::sg_free_table(&mut self.table) };
    }
}

/// `attach`: builds the table for the importer.
///
/// # Safety
///
/// Called by the dma-buf core with a live dma-buf of ours and its new attachment.
unsafe extern "C" fn attach(
    dmabuf: *mut bindings::dma_buf,
    attachment: *mut bindings::dma_buf_attachment,
) -> c_int {
    // SAFETY: See the function's safety section; `dev` is the importer's live device.
    let (buffer, max_segment) = unsafe { (buffer_of(dmabuf), max_segment((*attachment).dev)) };
    let res = (|| -> Result<KBox<Attachment>> {
        let mut att = KBox::new(
            Attachment {
                table: pin_init::zeroed(),
            },
            GFP_KERNEL,
        )?;
        buffer.backing().sg_table(&mut att.table, max_segment)?;
        Ok(att)
    })();
    match res {
        Ok(att) => {
            // SAFETY: The attachment is ours to annotate until `detach`.
            unsafe { (*attachment).priv_ = KBox::into_raw(att).cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `detach`: frees the table.
///
/// # Safety
///
/// Called by the dma-buf core with an attachment that `attach` set up.
unsafe extern "C" fn detach(
    _dmabuf: *mut bindings::dma_buf,
    attachment: *mut bindings::dma_buf_attachment,
) {
    // SAFETY: `attach` stored a `KBox<Attachment>` in `priv_`; this takes it back, once.
    drop(unsafe { KBox::from_raw((*attachment).priv_.cast::<Attachment>()) });
}

/// `map_dma_buf`: maps the table for the importing device. `ENODEV` once unbind has started.
///
/// # Safety
///
/// Called by the dma-buf core with an attachment that `attach` set up.
unsafe extern "C" fn map_dma_buf(
    attachment: *mut bindings::dma_buf_attachment,
    dir: bindings::dma_data_direction,
) -> *mut bindings::sg_table {
    // SAFETY: See the function's safety section; `priv_` is our `Attachment`.
    let (buffer, att, dev) = unsafe {
        (
            buffer_of((*attachment).dmabuf),
            &mut *(*attachment).priv_.cast::<Attachment>(),
            (*attachment).dev,
        )
    };
    let backing = buffer.backing();
    if let Err(e) = backing.start_import() {
        return e.to_ptr();
    }
    // SAFETY: `dev` is the importer's live device; `table` describes the buffer's memory, which
    // stays allocated until `end_import` below is matched (unbind waits for it).
    let ret = unsafe { bindings::dma_map_sgtable(dev, &mut att.table, dir, 0) };
    if ret != 0 {
        backing.end_import(buffer.charge().shared());
        return Error::from_errno(ret).to_ptr();
    }
    &mut att.table
}

/// `unmap_dma_buf`: unmaps the table for the importing device.
///
/// # Safety
///
/// Called by the dma-buf core with a table that `map_dma_buf` returned for `attachment`.
unsafe extern "C" fn unmap_dma_buf(
    attachment: *mut bindings::dma_buf_attachment,
    table: *mut bindings::sg_table,
    dir: bindings::dma_data_direction,
) {
    // SAFETY: See the function's safety section.
    let (buffer, dev) = unsafe { (buffer_of((*attachment).dmabuf), (*attachment).dev) };
    // SAFETY: `table` was mapped for `dev` in `map_dma_buf` with the same direction.
    unsafe { bindings::dma_unmap_sgtable(dev, table, dir, 0) };
    buffer.backing().end_import(buffer.charge().shared());
}

/// `release`: the last reference went; drop the buffer.
///
/// # Safety
///
/// Called once by the dma-buf core when the dma-buf goes.
unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
    // SAFETY: `priv_` is the `Exporter` that `DmaBuf::export` leaked into it; taken back once.
    let exporter = unsafe { KBox::from_raw((*dmabuf).priv_.cast::<Exporter>()) };
    let shared: &Arc<Shared> = exporter.buffer.charge().shared();
    shared.remove_file(exporter.file_id);
    exporter.buffer.backing().unexported(dmabuf.cast());
    if exporter.counted.load(Ordering::Relaxed) {
        shared.count_release();
    }
    // Dropping the exporter drops the buffer, possibly its last holder.
}

/// Hands a cached buffer to the CPU (`for_cpu`) or back to devices, as an errno.
///
/// # Safety
///
/// `dmabuf` is a live dma-buf of ours.
unsafe fn cpu_access(
    dmabuf: *mut bindings::dma_buf,
    for_cpu: bool,
    dir: bindings::dma_data_direction,
) -> c_int {
    // SAFETY: See the function's safety section.
    let buffer = unsafe { buffer_of(dmabuf) };
    match buffer.backing().sync_all(for_cpu, direction(dir)) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `begin_cpu_access` (`DMA_BUF_IOCTL_SYNC` start).
///
/// # Safety
///
/// Called by the dma-buf core with a live dma-buf of ours.
unsafe extern "C" fn begin_cpu_access(
    dmabuf: *mut bindings::dma_buf,
    dir: bindings::dma_data_direction,
) -> c_int {
    // SAFETY: As for this function.
    unsafe { cpu_access(dmabuf, true, dir) }
}

/// `end_cpu_access` (`DMA_BUF_IOCTL_SYNC` end).
///
/// # Safety
///
/// Called by the dma-buf core with a live dma-buf of ours.
unsafe extern "C" fn end_cpu_access(
    dmabuf: *mut bindings::dma_buf,
    dir: bindings::dma_data_direction,
) -> c_int {
    // SAFETY: As for this function.
    unsafe { cpu_access(dmabuf, false, dir) }
}

/// `mmap` of the dma-buf file: the buffer's pages in its cache mode, mapped at once.
///
/// # Safety
///
/// Called by the dma-buf core from the dma-buf file's `mmap`, with a VMA being set up whose range
/// the core has checked against the dma-buf's size.
unsafe extern "C" fn mmap(
    dmabuf: *mut bindings::dma_buf,
    raw: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: See the function's safety section.
    let (buffer, vma) = unsafe { (buffer_of(dmabuf), VmaNew::from_raw(raw)) };
    let res = (|| -> Result {
        let (first, _pages) = vma::prepare(vma)?;
        // CAST: The core checked `first` against the size, which fits in `usize`.
        buffer.mmap(vma, first as usize)
    })();
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `vmap`: the buffer's kernel address (vivid writes frames through it).
///
/// # Safety
///
/// Called by the dma-buf core with a live dma-buf of ours and a map to fill.
unsafe extern "C" fn vmap(dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) -> c_int {
    // SAFETY: See the function's safety section.
    let buffer = unsafe { buffer_of(dmabuf) };
    match buffer.backing().start_vmap() {
        Ok(vaddr) => {
            // SAFETY: `map` is the caller's map to fill: system memory, not I/O.
            unsafe {
                (*map).__bindgen_anon_1.vaddr = vaddr;
                (*map).is_iomem = false;
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `vunmap`: a kernel user is done with the address.
///
/// # Safety
///
/// Called by the dma-buf core for a map that `vmap` filled.
unsafe extern "C" fn vunmap(dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) {
    // SAFETY: See the function's safety section.
    let buffer = unsafe { buffer_of(dmabuf) };
    buffer.backing().end_vmap(buffer.charge().shared());
    // SAFETY: As for `vmap`.
    unsafe {
        (*map).__bindgen_anon_1.vaddr = core::ptr::null_mut();
        (*map).is_iomem = false;
    }
}
