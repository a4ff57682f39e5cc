// SPDX-License-Identifier: GPL-2.0

//! FFI edge: buffers exported as dma-bufs, for V4L2, DRM and other importers.
//!
//! The 7.2 kernel crate has no dma-buf exporter abstraction, so the
//! `dma_buf_ops` live here and expose safe types: [`DmaBuf`] (one reference
//! to a cmabuf dma-buf) and the ops table [`OPS`].
//!
//! Lifetime: a dma-buf's `priv` owns an [`Exporter`], which holds the
//! [`Buffer`] (`Arc`) until the dma-buf's last file reference goes and the
//! core calls `release`. A handle finds the dma-bufs of its parts that exist
//! through its [`Exports`], which holds no reference to them: each dma-buf
//! unlists itself in `release`, so a handle keeps nothing that nothing else
//! holds, and an `EXPORT` and `close()` loop leaves nothing behind. `exp_info.owner` pins the module for as long as any
//! dma-buf exists, so `rmmod` is refused meanwhile. Importers hold the
//! dma-buf while they map it (`map_dma_buf`) or use its kernel address
//! (`vmap`), so the memory stays valid for them whatever happens to the
//! binding; both keep working after unbind.
//!
//! `map_dma_buf` returns the buffer's table mapped for `attach->dev` with
//! `dma_map_sgtable()`: one segment where the importer takes segments that
//! long, else consecutive segments of its maximum size, which dma-direct maps
//! to consecutive DMA addresses. videobuf2-dma-contig and DRM's GEM DMA
//! helpers require such a DMA-contiguous mapping (and DMA API debugging
//! checks the segment limit).

use crate::{
    buffer::Buffer,
    validate::{
        Direction,
        Mode, //
    },
    vma, //
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
    new_mutex,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
};

/// What a cmabuf dma-buf's `priv` owns (pinned: made by `KBox::pin_init`, never moved until
/// `release` drops it in place).
///
/// # Invariants
///
/// `offset` and `len` are page aligned, `len > 0`, and the range lies inside the buffer.
#[pin_data]
struct Exporter {
    /// The buffer, alive as long as the dma-buf.
    buffer: Arc<Buffer>,
    /// Start of the exported part in the buffer, in bytes.
    offset: usize,
    /// Its length in bytes: the dma-buf's size.
    len: usize,
    /// Whether the export completed and was counted in the statistics (a failed export's
    /// dma-buf is released again without a trace).
    counted: AtomicBool,
    /// The tables importers have mapped (`map_dma_buf` not yet undone).
    #[pin]
    mapped: Mutex<KVec<Mapped>>,
    /// The handle's list of dma-bufs it is in (none for a dma-heap buffer), left in `release`.
    exports: Option<Arc<Exports>>,
}

/// One dma-buf in an [`Exports`] list.
struct Export {
    /// The dma-buf; alive while listed (its `release` unlists it, under the list's lock, before
    /// the core frees it).
    ptr: NonNull<bindings::dma_buf>,
    /// The exported part, `(offset, length)`.
    range: (usize, usize),
    /// Its file's access mode.
    access_mode: u32,
}

// SAFETY: The pointer is only dereferenced under the list's lock, from any thread.
unsafe impl Send for Export {}

/// The dma-bufs of one handle's parts that exist now, one per part (every export of a part gives
/// a descriptor of that one dma-buf while anything holds it, as importers rely on buffer
/// identity). Holds no reference: a dma-buf that nothing holds any more goes, and unlists
/// itself; the next export of its part makes a new one.
#[pin_data]
pub(crate) struct Exports {
    /// The dma-bufs.
    #[pin]
    list: Mutex<KVec<Export>>,
}

impl Exports {
    /// An empty list.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                list <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )
    }

    /// A reference to the dma-buf of `buffer`'s part `(offset, len)` with `access_mode`: the one
    /// that exists, or a new one. `EINVAL` if the existing one has another access mode (all
    /// descriptors of a dma-buf share its file), `EMFILE` if
    /// [`crate::uapi::CMABUF_EXPORT_MAX_PARTS`] parts exist already.
    pub(crate) fn get(
        this: &Arc<Self>,
        buffer: &Arc<Buffer>,
        access_mode: u32,
        offset: usize,
        len: usize,
    ) -> Result<DmaBuf> {
        let mut list = this.list.lock();
        for e in list.iter().filter(|e| e.range == (offset, len)) {
            // SAFETY: A listed dma-buf is alive (its `release` unlists it under this lock first),
            // and so is the memory of its file, which the core releases only after `release`
            // (`__fput()` puts the dentry, whose release calls ours, before freeing the file); a
            // file whose last reference went is not revived: `get_file_active()` returns null.
            let file = unsafe { bindings::get_file_active(&raw mut (*e.ptr.as_ptr()).file) };
            if file.is_null() {
                // Going: its `release` will unlist it.
                continue;
            }
            // INVARIANT: `get_file_active()` took a reference to the dma-buf's file.
            let dmabuf = DmaBuf { ptr: e.ptr };
            if e.access_mode != access_mode {
                // Dropped after the lock: possibly the last reference (then `release` locks it).
                drop(list);
                drop(dmabuf);
                return Err(EINVAL);
            }
            return Ok(dmabuf);
        }
        // CAST: A small constant of the ABI.
        if list.len() >= crate::uapi::CMABUF_EXPORT_MAX_PARTS as usize {
            return Err(EMFILE);
        }
        // Room first: `push()` would drop what it cannot store.
        list.reserve(1, GFP_KERNEL)?;
        let dmabuf = DmaBuf::export(buffer.clone(), access_mode, offset, len, Some(this.clone()))?;
        // Room was reserved above: cannot fail.
        list.push(
            Export {
                ptr: dmabuf.ptr,
                range: (offset, len),
                access_mode,
            },
            GFP_NOWAIT,
        )?;
        Ok(dmabuf)
    }
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
}

// SAFETY: A dma-buf reference may be used and given back from any thread.
unsafe impl Send for DmaBuf {}
// SAFETY: `&self` only takes further file references, which is thread-safe.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// Exports the `len` bytes at `offset` of `buffer` (a range [`crate::validate::export_range`]
    /// accepted) as a new dma-buf whose file has `access_mode` (`O_RDWR` or `O_RDONLY`), holding
    /// the buffer until the dma-buf goes; it leaves `exports` (its handle's list, which the caller
    /// puts it in) when it goes.
    pub(crate) fn export(
        buffer: Arc<Buffer>,
        access_mode: u32,
        offset: usize,
        len: usize,
        exports: Option<Arc<Exports>>,
    ) -> Result<Self> {
        if offset % PAGE_SIZE != 0
            || len % PAGE_SIZE != 0
            || len == 0
            || offset
                .checked_add(len)
                .is_none_or(|end| end > buffer.size())
        {
            return Err(EINVAL);
        }
        let whole = len == buffer.size();
        // INVARIANT: Checked above.
        let exporter = KBox::pin_init(
            pin_init!(Exporter {
                buffer,
                offset,
                len,
                counted: AtomicBool::new(false),
                mapped <- new_mutex!(KVec::new()),
                exports,
            }),
            GFP_KERNEL,
        )?;
        let mut info: bindings::dma_buf_export_info = pin_init::zeroed();
        info.exp_name = c"cmabuf".as_char_ptr();
        info.owner = &raw mut bindings::__this_module;
        info.ops = &raw const OPS.0;
        info.size = len;
        // CAST: `O_RDWR` or `O_RDONLY`, small flag constants.
        info.flags = access_mode as c_int;
        // SAFETY: The exporter is never moved out of its box: `release` (or the failure path
        // below) takes the box back and drops it in place.
        info.priv_ = KBox::into_raw(unsafe { Pin::into_inner_unchecked(exporter) }).cast();
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
        };
        // debugfs names one dma-buf per buffer: the whole buffer's.
        if whole {
            this.exporter()
                .buffer
                .set_dmabuf(core::ptr::null_mut(), ptr.cast());
        }
        Ok(this)
    }

    /// The dma-buf reached userspace (its descriptor was installed): count it, once. A dma-buf
    /// whose export call failed afterwards goes again without a trace in the statistics.
    pub(crate) fn count(&self) {
        let exporter = self.exporter();
        if !exporter.counted.swap(true, Ordering::Relaxed) {
            exporter.buffer.charge().ledger().count(|s| {
                s.exports += 1;
                s.live_dmabufs += 1;
            });
        }
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
/// `dmabuf` is a live cmabuf dma-buf: the region lists it only between export and `release`,
/// and callers read it under the region's lock.
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

/// The exporter of a cmabuf dma-buf.
///
/// # Safety
///
/// `dmabuf` is a live dma-buf exported with [`OPS`]; the result is used only while it lives.
unsafe fn exporter_of<'a>(dmabuf: *mut bindings::dma_buf) -> &'a Exporter {
    // SAFETY: `priv_` of a dma-buf exported with `OPS` is an `Exporter` (see `DmaBuf::export`),
    // alive until `release`, which the caller's dma-buf reference holds off.
    unsafe { &*(*dmabuf).priv_.cast::<Exporter>() }
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

/// A table that `map_dma_buf` handed to an importer, until `unmap_dma_buf` takes it back: what
/// `begin/end_cpu_access` sync, as the mainline CMA heap does, so that an importer whose mapping
/// bounces (swiotlb) or whose coherency differs from the memory device's sees the CPU's data and
/// the CPU sees the importer's.
struct Mapped {
    /// The importer's device.
    dev: *mut bindings::device,
    /// The table, mapped for `dev`; owned by the importer until `unmap_dma_buf`.
    table: *mut bindings::sg_table,
}

// SAFETY: Both pointers stay valid from `map_dma_buf` to `unmap_dma_buf` (the importer holds its
// device and the table), whichever thread uses them.
unsafe impl Send for Mapped {}

/// `attach`: checks that the importer can take the buffer's segments.
///
/// # Safety
///
/// Called by the dma-buf core with a live dma-buf of ours and its new attachment.
unsafe extern "C" fn attach(
    _dmabuf: *mut bindings::dma_buf,
    attachment: *mut bindings::dma_buf_attachment,
) -> c_int {
    // SAFETY: See the function's safety section; `dev` is the importer's live device.
    let max_segment = unsafe { max_segment((*attachment).dev) };
    // CAST: The page size fits in `u32`.
    if max_segment < PAGE_SIZE as u32 {
        // The scatterlist code cannot split pages (it would WARN): say no, clearly.
        return EINVAL.to_errno();
    }
    0
}

/// `map_dma_buf`: a new table of the buffer's pages, mapped for the importing device (a new one
/// each call: `dma-buf.h` forbids handing out a cached or shared table).
///
/// # Safety
///
/// Called by the dma-buf core with an attachment of a live dma-buf of ours.
unsafe extern "C" fn map_dma_buf(
    attachment: *mut bindings::dma_buf_attachment,
    dir: bindings::dma_data_direction,
) -> *mut bindings::sg_table {
    // SAFETY: See the function's safety section.
    let (exporter, dev) = unsafe { (exporter_of((*attachment).dmabuf), (*attachment).dev) };
    let res = (|| -> Result<*mut bindings::sg_table> {
        let mut mapped = exporter.mapped.lock();
        mapped.reserve(1, GFP_KERNEL)?;
        let mut table = KBox::new(pin_init::zeroed::<bindings::sg_table>(), GFP_KERNEL)?;
        // SAFETY: `dev` is the importer's live device (the function's safety section).
        let max_segment = unsafe { max_segment(dev) };
        exporter
            .buffer
            .sg_table(&mut table, max_segment, exporter.offset, exporter.len)?;
        // SAFETY: `dev` is the importer's live device; `table` describes the buffer's memory,
        // which stays allocated while the dma-buf (which the attachment's importer holds) lives.
        let ret = unsafe { bindings::dma_map_sgtable(dev, &mut *table, dir, 0) };
        if ret != 0 {
            // SAFETY: Filled above, never mapped; freed once.
            unsafe { bindings::sg_free_table(&mut *table) };
            return Err(Error::from_errno(ret));
        }
        if let Err(e) = check_no_bounce(exporter, dev, &table) {
            // SAFETY: Mapped above for `dev` with `dir`; unmapped and freed once.
            unsafe {
                bindings::dma_unmap_sgtable(dev, &mut *table, dir, 0);
                bindings::sg_free_table(&mut *table);
            }
            return Err(e);
        }
        let table = KBox::into_raw(table);
        // Room was reserved above: cannot fail.
        mapped.push(Mapped { dev, table }, GFP_NOWAIT)?;
        Ok(table)
    })();
    match res {
        Ok(table) => table,
        Err(e) => e.to_ptr(),
    }
}

/// Whether an importer's mapping `table` may be used: `EINVAL` if any of its segments bounces
/// (swiotlb: the importer's DMA mask or bus cannot reach that part of the memory, or bouncing is
/// forced) and the buffer is coherent or write-combined. A bounce buffer is copied to and from the
/// memory through the kernel's cached linear map, which such buffers' uncached CPU mappings do not
/// see; cached buffers bounce correctly (`DMA_BUF_IOCTL_SYNC` syncs the importer's mapping too).
/// Every segment is checked: an importer whose limit falls inside the buffer gets the first
/// segments mapped directly and the rest bounced.
fn check_no_bounce(
    exporter: &Exporter,
    dev: *mut bindings::device,
    table: &bindings::sg_table,
) -> Result {
    let buffer = &exporter.buffer;
    /// Whether the refusal was logged already (once per boot: importers retry).
    static SAID: AtomicBool = AtomicBool::new(false);

    if buffer.mode() == Mode::Cached {
        return Ok(());
    }
    // CAST: An offset inside a buffer fits in `u64`.
    let mut phys = buffer.phys() + exporter.offset as u64;
    let mut sg = table.sgl;
    let mut direct = true;
    for _ in 0..table.nents {
        if sg.is_null() {
            break;
        }
        // SAFETY: `sg` is one of the `nents` DMA entries of a table that `dma_map_sgtable()` just
        // mapped (dma-direct maps entry by entry, so entry `i`'s DMA address is that of the
        // CPU entry `i`, whose pages follow the previous entries' in the buffer); reading it and
        // stepping to the next (`sg_next()` follows chained tables) is what
        // `for_each_sgtable_dma_sg()` does.
        let (addr, len, next) = unsafe {
            (
                bindings::sg_dma_address(sg),
                bindings::sg_dma_len(sg),
                bindings::sg_next(sg),
            )
        };
        if Some(addr) != crate::region::phys_to_dma(dev, phys) {
            direct = false;
            break;
        }
        phys += u64::from(len);
        sg = next;
    }
    if direct {
        return Ok(());
    }
    if !SAID.swap(true, Ordering::Relaxed) {
        // SAFETY: `dev` is the importer's live device.
        let importer: &kernel::device::Device = unsafe { kernel::device::Device::from_raw(dev) };
        dev_warn!(
            importer,
            "cmabuf: this device's DMA mapping of a coherent or write-combined buffer would \
             bounce through swiotlb; refused (EINVAL): give it cached buffers, or memory it \
             can reach\n"
        );
    }
    Err(EINVAL)
}

/// `unmap_dma_buf`: unmaps and frees a table that `map_dma_buf` returned.
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
    let (exporter, dev) = unsafe { (exporter_of((*attachment).dmabuf), (*attachment).dev) };
    exporter
        .mapped
        .lock()
        .retain(|m| !core::ptr::eq(m.table, table));
    // SAFETY: `table` was mapped for `dev` in `map_dma_buf` with the same direction, and is no
    // longer listed for syncing.
    unsafe { bindings::dma_unmap_sgtable(dev, table, dir, 0) };
    // SAFETY: `map_dma_buf` made `table` with `KBox::into_raw`; taken back and freed once.
    let mut table = unsafe { KBox::from_raw(table) };
    // SAFETY: Filled by `Buffer::sg_table` and now unmapped; freed once.
    unsafe { bindings::sg_free_table(&mut *table) };
}

/// `release`: the last reference went; drop the buffer.
///
/// # Safety
///
/// Called once by the dma-buf core when the dma-buf goes.
unsafe extern "C" fn release(dmabuf: *mut bindings::dma_buf) {
    // SAFETY: `priv_` is the `Exporter` that `DmaBuf::export` leaked into it; taken back once.
    let exporter = unsafe { KBox::from_raw((*dmabuf).priv_.cast::<Exporter>()) };
    // Out of its handle's list before the core frees it.
    if let Some(exports) = &exporter.exports {
        exports
            .list
            .lock()
            .retain(|e| !core::ptr::eq(e.ptr.as_ptr(), dmabuf));
    }
    // A no-op unless it is the one recorded (the whole buffer's).
    exporter
        .buffer
        .set_dmabuf(dmabuf.cast(), core::ptr::null_mut());
    if exporter.counted.load(Ordering::Relaxed) {
        exporter
            .buffer
            .charge()
            .ledger()
            .count(|s| s.live_dmabufs -= 1);
    }
    // Dropping the exporter drops the buffer, possibly its last holder.
}

/// Hands the buffer to the CPU (`for_cpu`) or back to devices, as an errno: the memory
/// device's view (cached buffers) and every importer's mapped table, each on its own device.
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
    let exporter = unsafe { exporter_of(dmabuf) };
    // Order matters for cached buffers mapped by bouncing importers: towards the CPU, the memory
    // device's invalidation comes first, then the bounce buffers are copied in (through the
    // cached linear map), so the invalidation cannot discard the copies; towards devices, the
    // copies out first, then the clean.
    if for_cpu {
        if let Err(e) =
            exporter
                .buffer
                .sync_part(true, direction(dir), exporter.offset, exporter.len)
        {
            return e.to_errno();
        }
    }
    let mapped = exporter.mapped.lock();
    for m in mapped.iter() {
        // The importer's table, synced in the direction the CPU access asks for (as the mainline
        // CMA heap does).
        // SAFETY: `m.table` is mapped for `m.dev` until `unmap_dma_buf`, which unlists it first
        // under the lock we hold.
        unsafe {
            // `dma_sync_sgtable_for_{cpu,device}()`, which are inline: the CPU's entries.
            let (sgl, nents) = ((*m.table).sgl, (*m.table).orig_nents);
            // CAST: An entry count of a buffer's table fits in `c_int`.
            if for_cpu {
                bindings::__dma_sync_sg_for_cpu(m.dev, sgl, nents as c_int, dir);
            } else {
                bindings::__dma_sync_sg_for_device(m.dev, sgl, nents as c_int, dir);
            }
        }
    }
    drop(mapped);
    if !for_cpu {
        if let Err(e) =
            exporter
                .buffer
                .sync_part(false, direction(dir), exporter.offset, exporter.len)
        {
            return e.to_errno();
        }
    }
    0
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
    let (exporter, vma) = unsafe { (exporter_of(dmabuf), VmaNew::from_raw(raw)) };
    let res = (|| -> Result {
        let (first, _pages) = vma::prepare(vma)?;
        // CAST: The core checked `first` against the dma-buf's size, which fits in `usize`.
        let first = first as usize + (exporter.offset >> PAGE_SHIFT);
        exporter.buffer.mmap(vma, first)?;
        // Counted in the buffer's map count like a mapping of the device file.
        vma::attach(vma, exporter.buffer.clone());
        Ok(())
    })();
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `vmap`: the buffer's kernel address (vivid writes frames through it, DRM's shmem helpers scan
/// out from it). Never fails for memory that has a kernel address: the memory lives as long as
/// the dma-buf, bound or not.
///
/// # Safety
///
/// Called by the dma-buf core with a live dma-buf of ours and a map to fill.
unsafe extern "C" fn vmap(dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) -> c_int {
    // SAFETY: See the function's safety section.
    let exporter = unsafe { exporter_of(dmabuf) };
    match exporter.buffer.kernel_addr() {
        Ok(vaddr) => {
            // The exported part (inside the buffer: type invariant).
            let vaddr = vaddr
                .cast::<u8>()
                .wrapping_add(exporter.offset)
                .cast::<c_void>();
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

/// `vunmap`: a kernel user is done with the address (a permanent one: nothing to undo).
///
/// # Safety
///
/// Called by the dma-buf core for a map that `vmap` filled.
unsafe extern "C" fn vunmap(_dmabuf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) {
    // SAFETY: As for `vmap`.
    unsafe {
        (*map).__bindgen_anon_1.vaddr = core::ptr::null_mut();
        (*map).is_iomem = false;
    }
}
