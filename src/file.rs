// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/cmabufN`: its handles, its ioctls, its mmap.
//!
//! Handles are numbered per file from 1 and never reused on that file; a
//! handle means nothing on another file. One method per ioctl; all input is
//! judged in `validate.rs` or here before anything changes, and every output
//! structure is checked writable before anything changes (`uapi::UserArg`),
//! so a failed call changes nothing.

use crate::{
    account::Ledger,
    buffer::Buffer,
    device::{
        self,
        Shared, //
    },
    dmabuf::{
        DmaBuf,
        Exports, //
    },
    dmamem,
    miscdev::Registration,
    uapi::{
        self,
        cmabuf_alloc,
        cmabuf_dev_info,
        cmabuf_export,
        cmabuf_free,
        cmabuf_info,
        cmabuf_stats,
        cmabuf_sync,
        cmd,
        CMABUF_OUT_ADDR_WITHHELD, //
    },
    validate::{
        self,
        AllocFlags,
        MapKind,
        Mode, //
    },
    vma,
};
use kernel::{
    bindings,
    fs::{
        file::FileDescriptorReservation,
        File, //
    },
    ioctl,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    mm::virt::VmaNew,
    new_mutex,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    }, //
};

/// A live handle: its buffer and the dma-bufs of its parts that exist (which the handle does
/// not hold: see [`Exports`]).
struct Handle {
    /// The buffer.
    buffer: Arc<Buffer>,
    /// The dma-bufs of its parts.
    exports: Arc<Exports>,
}

/// What the file's lock protects.
struct FileState {
    /// Live handles.
    handles: RBTree<u32, Handle>,
    /// Bytes of the live handles.
    handle_bytes: u64,
    /// The next handle to give out.
    next_handle: u32,
    /// Handles live or being allocated: what the per-file handle limit counts.
    reserved_buffers: u64,
}

/// The private data of an open `/dev/cmabufN`.
#[pin_data]
pub(crate) struct CmabufFile {
    /// The device.
    shared: Arc<Shared>,
    /// The bytes this file allocated, counted until their memory goes (not merely until their
    /// handle is freed): what the per-file byte limit counts.
    ledger: Arc<Ledger>,
    /// Whether the opener may see DMA addresses (judged once, at open).
    addresses: bool,
    /// Handles and accounting.
    #[pin]
    state: Mutex<FileState>,
}

/// A handle number reserved on a file; given back on drop unless committed.
struct FileReservation<'a> {
    /// The file.
    file: &'a CmabufFile,
    /// The handle.
    handle: u32,
    /// Whether the handle went into the table.
    committed: bool,
}

impl Drop for FileReservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let mut state = self.file.state.lock();
            state.reserved_buffers -= 1;
            // Give the number back unless a later allocation took the next one meanwhile.
            if state.next_handle == self.handle + 1 {
                state.next_handle = self.handle;
            }
        }
    }
}

impl CmabufFile {
    /// The address to report and the matching `out_flags`.
    fn reported_addr(&self, addr: u64) -> (u64, u32) {
        if self.addresses {
            (addr, 0)
        } else {
            (0, CMABUF_OUT_ADDR_WITHHELD)
        }
    }

    /// The buffer behind `handle`; `ENOENT` if it is not a live handle of this file.
    fn lookup(&self, handle: u32) -> Result<Arc<Buffer>> {
        self.state
            .lock()
            .handles
            .get(&handle)
            .map(|h| h.buffer.clone())
            .ok_or(ENOENT)
    }

    /// Reserves a handle against the file's handle limit (`EMFILE`).
    fn reserve(&self) -> Result<FileReservation<'_>> {
        let limits = self.shared.limits();
        let mut state = self.state.lock();
        if state.reserved_buffers >= limits.buffers_per_file {
            return Err(EMFILE);
        }
        if state.next_handle > validate::MAX_HANDLE {
            return Err(ENOSPC);
        }
        let handle = state.next_handle;
        state.next_handle += 1;
        state.reserved_buffers += 1;
        Ok(FileReservation {
            file: self,
            handle,
            committed: false,
        })
    }

    /// `CMABUF_IOCTL_ALLOC`, with `CMABUF_ALLOC_EXPORT` also `CMABUF_IOCTL_EXPORT` of the new
    /// buffer in the same call.
    fn alloc(&self, arg: usize, size: usize, file: &File) -> Result<isize> {
        let user = uapi::read::<cmabuf_alloc>(arg, size)?;
        let mut a = user.val;
        let inputs = cmabuf_alloc {
            size: a.size,
            flags: a.flags,
            fd_flags: a.fd_flags,
            ..Default::default()
        };
        uapi::only_inputs(&a, inputs)?;
        let (flags, export) = AllocFlags::parse_alloc(a.flags)?;
        // The descriptor is reserved (and the access checked) before anything is allocated.
        let fd = if export {
            // CAST: A structure size fits in `usize`.
            if !user.covers(uapi::CMABUF_ALLOC_SIZE_VER2 as usize) {
                return Err(EINVAL);
            }
            Some(Self::reserve_fd(a.fd_flags, file)?)
        } else if a.fd_flags != 0 {
            return Err(EINVAL);
        } else {
            None
        };
        let len = validate::round_size(a.size, PAGE_SIZE, self.shared.region_size())?;
        // CAST: `len` came from a `u64`.
        let len64 = len as u64;
        // A result that could not be written back must fail before anything is allocated.
        user.check_writable()?;

        let mut file_res = self
            .reserve()
            .inspect_err(|_| self.shared.count_limit_failure())?;
        let handle_node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let exports = Exports::new()?;
        let (buffer, us) = self.new_buffer(len, flags, file_res.handle)?;
        let dmabuf = match &fd {
            Some((_, accmode)) => Some(Exports::get(&exports, &buffer, *accmode, 0, len)?),
            None => None,
        };

        let (addr, out_flags) = self.reported_addr(buffer.dma_addr());
        a.handle = file_res.handle;
        a.mmap_offset = validate::mmap_offset(file_res.handle);
        a.dma_addr = addr;
        a.alloc_size = len64;
        a.out_flags = out_flags;
        if let Some((fd, _)) = &fd {
            a.fd = fd.reserved_fd();
        }
        // `EFAULT` only if the caller unmapped the structure meanwhile; the buffer (and its
        // dma-buf) is dropped again, the descriptor given back, and nothing was counted.
        user.write(&a)?;

        self.shared.ledger().hand_out(buffer.charge(), us);
        if let (Some((fd, _)), Some(dmabuf)) = (fd, &dmabuf) {
            fd.fd_install(dmabuf.file());
            dmabuf.count();
        }
        let mut state = self.state.lock();
        let handle = Handle { buffer, exports };
        state
            .handles
            .insert(handle_node.into_node(file_res.handle, handle));
        state.handle_bytes += len64;
        file_res.committed = true;
        Ok(0)
    }

    /// A new buffer of `len` bytes as `flags` say for `handle` (0: none), and how long its
    /// memory took to allocate, in µs. Not yet counted as handed out ([`Shared::hand_out`]).
    fn new_buffer(&self, len: usize, flags: AllocFlags, handle: u32) -> Result<(Arc<Buffer>, u64)> {
        // Page-backed mappings only where the kernel's cached view of the memory is what the
        // owner and the devices see (see `Alloc::map_pages`): cached buffers, or any mode on a
        // DMA-coherent device.
        if flags.map == MapKind::Pages && flags.mode != Mode::Cached && !self.shared.coherent() {
            return Err(validate::eopnotsupp());
        }
        // CAST: `len` came from a `u64`.
        let len64 = len as u64;
        let limits = self.shared.limits();
        // The file's buffers while their memory is taken, whatever holds them: handles, dma-heap
        // buffers, freed handles still mapped or exported, held memory.
        let file_charge = Ledger::charge(
            &self.ledger,
            len64,
            device::bound(limits.bytes_per_file),
            limits.buffers_per_file,
        )
        .inspect_err(|_| self.shared.count_limit_failure())?;
        let charge = self.shared.charge(len64)?;
        let (mem, us) = self.shared.allocate(len, flags.mode)?;
        // From here on, a failure gives everything back by dropping the memory and the charges.
        let who = dmamem::caller(self.shared.index());
        let buffer = Buffer::new(mem, [charge, file_charge], who, flags, handle)?;
        Ok((buffer, us))
    }

    /// Reserves a descriptor for a dma-buf with the caller's `flags` (`O_RDWR` or `O_RDONLY`,
    /// optionally `O_CLOEXEC`; `EINVAL` otherwise) and checks that `file` grants that access
    /// ([`Self::may_export`]); returns it and the access mode, for [`install`] once the result is
    /// written. EXPORT and ALLOC with `CMABUF_ALLOC_EXPORT` share this rule.
    fn reserve_fd(flags: u32, file: &File) -> Result<(FileDescriptorReservation, u32)> {
        let accmode = flags & bindings::O_ACCMODE;
        if flags & !(bindings::O_ACCMODE | bindings::O_CLOEXEC) != 0
            || (accmode != bindings::O_RDWR && accmode != bindings::O_RDONLY)
        {
            return Err(EINVAL);
        }
        let fd = FileDescriptorReservation::get_unused_fd_flags(flags & bindings::O_CLOEXEC)?;
        // Write access to the memory only through a file that has it.
        Self::may_export(accmode, file)?;
        Ok((fd, accmode))
    }

    /// `CMABUF_IOCTL_EXPORT`.
    fn export(&self, arg: usize, size: usize, file: &File) -> Result<isize> {
        let user = uapi::read::<cmabuf_export>(arg, size)?;
        let mut e = user.val;
        let inputs = cmabuf_export {
            handle: e.handle,
            flags: e.flags,
            offset: e.offset,
            length: e.length,
            ..Default::default()
        };
        uapi::only_inputs(&e, inputs)?;
        let (fd, accmode) = Self::reserve_fd(e.flags, file)?;
        user.check_writable()?;
        let (buffer, exports) = {
            let state = self.state.lock();
            let handle = state.handles.get(&e.handle).ok_or(ENOENT)?;
            (handle.buffer.clone(), handle.exports.clone())
        };
        let (offset, len) = validate::export_range(e.offset, e.length, buffer.size(), PAGE_SIZE)?;
        // The part's dma-buf, made if none exists; a call that fails below drops our reference,
        // and with it a dma-buf nothing else took meanwhile.
        let dmabuf = Exports::get(&exports, &buffer, accmode, offset, len)?;
        install(fd, dmabuf.file(), |fd| {
            e.fd = fd;
            user.write(&e)
        })?;
        dmabuf.count();
        Ok(0)
    }

    /// `DMA_HEAP_IOCTL_ALLOC` (`command` is any `'H'` ioctl number 0): a buffer that only its
    /// dma-buf holds, for dma-heap users. Takes its argument and checks its fields exactly as
    /// `drivers/dma-buf/dma-heap.c` does (see `uapi::HeapArg`).
    fn heap_alloc(&self, command: u32, arg: usize, file: &File) -> Result<isize> {
        let user = uapi::HeapArg::read(command, arg)?;
        let mut h = user.val;
        if h.fd != 0
            || h.fd_flags & !(bindings::O_ACCMODE | bindings::O_CLOEXEC) != 0
            || h.heap_flags != 0
        {
            return Err(EINVAL);
        }
        let accmode = h.fd_flags & bindings::O_ACCMODE;
        Self::may_export(accmode, file)?;
        let flags = AllocFlags::parse(crate::compat::param(&crate::module_parameters::heap_mode))?;
        let len = validate::round_size(h.len, PAGE_SIZE, self.shared.region_size())?;
        let fd = FileDescriptorReservation::get_unused_fd_flags(h.fd_flags & bindings::O_CLOEXEC)?;
        let (buffer, us) = self.new_buffer(len, flags, 0)?;
        let dmabuf = DmaBuf::export(buffer.clone(), accmode, 0, len, None)?;
        install(fd, dmabuf.file(), |fd| {
            h.fd = fd;
            user.write(&h)
        })?;
        dmabuf.count();
        self.shared.ledger().hand_out(buffer.charge(), us);
        Ok(0)
    }

    /// The one rule for EXPORT and `DMA_HEAP_IOCTL_ALLOC`: a dma-buf grants no access its file
    /// lacks. One that can write (`O_RDWR`, `O_WRONLY`) needs a file opened for writing, one that
    /// can read (`O_RDWR`, `O_RDONLY`) a file opened for reading; `EACCES` otherwise. (A file
    /// opened with `O_ACCMODE`, which Linux treats as neither, gives nothing.)
    fn may_export(accmode: u32, file: &File) -> Result {
        let file_mode = file.flags() & bindings::O_ACCMODE;
        let can_read = file_mode == bindings::O_RDONLY || file_mode == bindings::O_RDWR;
        let can_write = file_mode == bindings::O_WRONLY || file_mode == bindings::O_RDWR;
        let wants_read = accmode != bindings::O_WRONLY;
        let wants_write = accmode != bindings::O_RDONLY;
        if (wants_read && !can_read) || (wants_write && !can_write) {
            return Err(EACCES);
        }
        Ok(())
    }

    /// `CMABUF_IOCTL_FREE`.
    fn free(&self, arg: usize, size: usize) -> Result<isize> {
        let f = uapi::read::<cmabuf_free>(arg, size)?.val;
        let inputs = cmabuf_free {
            handle: f.handle,
            ..Default::default()
        };
        uapi::only_inputs(&f, inputs)?;
        let handle = {
            let mut state = self.state.lock();
            let handle = state.handles.remove(&f.handle).ok_or(ENOENT)?;
            // CAST: A buffer's size fits in `u64`.
            let bytes = handle.buffer.size() as u64;
            state.reserved_buffers -= 1;
            state.handle_bytes -= bytes;
            handle
        };
        // Mappings and the dma-buf may still hold it; the memory goes when the last one does.
        drop(handle);
        Ok(0)
    }

    /// `CMABUF_IOCTL_INFO`.
    fn info(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
        let user = uapi::read::<cmabuf_info>(arg, size)?;
        let mut i = user.val;
        let inputs = cmabuf_info {
            handle: i.handle,
            ..Default::default()
        };
        uapi::only_inputs(&i, inputs)?;
        let buffer = self.lookup(i.handle)?;
        let (addr, out_flags) = self.reported_addr(buffer.dma_addr());
        i.flags = buffer.flags().bits();
        // CAST: A buffer's size fits in `u64`.
        i.size = buffer.size() as u64;
        i.mmap_offset = validate::mmap_offset(buffer.handle());
        i.dma_addr = addr;
        i.map_count = buffer.map_count();
        i.out_flags = out_flags;
        user.write(&i)?;
        Ok(0)
    }

    /// `CMABUF_IOCTL_SYNC`.
    fn sync(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
        let s = uapi::read::<cmabuf_sync>(arg, size)?.val;
        let buffer = self.lookup(s.handle)?;
        let req = validate::SyncRequest::parse(s.flags, s.offset, s.length, buffer.size())?;
        buffer.sync(&req)?;
        Ok(0)
    }

    /// `CMABUF_IOCTL_STATS`.
    fn stats(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
        let user = uapi::read::<cmabuf_stats>(arg, size)?;
        let mut st = user.val;
        uapi::only_inputs(&st, cmabuf_stats::default())?;
        let s = self.shared.stats()?;
        st.allocs = s.allocs;
        st.fail_nomem = s.fail_nomem;
        st.fail_busy = s.fail_busy;
        st.fail_intr = s.fail_intr;
        st.fail_limit = s.fail_limit;
        st.fallbacks = s.fallbacks;
        st.retries = s.retries;
        st.live_buffers = s.live_buffers;
        st.live_bytes = s.live_bytes;
        st.peak_bytes = s.peak_bytes;
        st.region_size = self.shared.region_size();
        st.largest_free = s.largest_free;
        st.latency_hist = s.hist;
        st.exports = s.exports;
        st.live_dmabufs = s.live_dmabufs;
        st.pool_bytes = s.pool_bytes;
        st.pool_free_bytes = s.pool_free_bytes;
        st.held_buffers = s.held_buffers;
        st.held_bytes = s.held_bytes;
        user.write(&st)?;
        Ok(0)
    }

    /// `CMABUF_IOCTL_DEV_INFO`.
    fn dev_info(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
        let user = uapi::read::<cmabuf_dev_info>(arg, size)?;
        let mut d = user.val;
        let inputs = cmabuf_dev_info {
            region_name_ptr: d.region_name_ptr,
            region_name_len: d.region_name_len,
            ..Default::default()
        };
        uapi::only_inputs(&d, inputs)?;
        if d.region_name_ptr == 0 && d.region_name_len != 0 {
            return Err(EINVAL);
        }
        let name = self.shared.region_name().to_bytes_with_nul();
        // Both outputs are checked before either is written.
        let name_out = match d.region_name_ptr {
            0 => None,
            // CAST: `u32` fits in `usize`.
            ptr => Some(uapi::UserBytes::prepare(
                ptr,
                d.region_name_len as usize,
                name.len(),
            )?),
        };
        user.check_writable()?;
        let limits = self.shared.limits();
        let (base, mut out_flags) = self.reported_addr(self.shared.region_base());
        if self.shared.coherent() {
            out_flags |= uapi::CMABUF_OUT_DMA_COHERENT;
        }
        let (dev_buffers, dev_bytes) = self.shared.usage();
        let (file_buffers, file_bytes) = {
            let state = self.state.lock();
            // CAST: A count of handles fits in `u64`.
            (state.handles.iter().count() as u64, state.handle_bytes)
        };
        d.index = self.shared.index();
        d.region_base = base;
        d.region_size = self.shared.region_size();
        // CAST: The page size fits in `u32`.
        d.page_size = PAGE_SIZE as u32;
        d.out_flags = out_flags;
        d.max_buffers_per_file = limits.buffers_per_file;
        d.max_bytes_per_file = limits.bytes_per_file;
        d.max_bytes_per_device = limits.bytes_per_device;
        d.file_buffers = file_buffers;
        d.file_bytes = file_bytes;
        d.dev_buffers = dev_buffers;
        d.dev_bytes = dev_bytes;
        if let Some(out) = name_out {
            out.write(name)?;
        }
        user.write(&d)?;
        Ok(0)
    }
}

/// Writes the result naming the reserved descriptor (`write`), then installs `file` in it; on a
/// failed write the descriptor is given back and nothing is installed.
fn install(
    fd: FileDescriptorReservation,
    file: ARef<File>,
    write: impl FnOnce(u32) -> Result,
) -> Result<isize> {
    write(fd.reserved_fd())?;
    fd.fd_install(file);
    Ok(0)
}

#[vtable]
impl MiscDevice for CmabufFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let shared = Registration::shared_of(misc);
        if !shared.is_bound() {
            return Err(ENODEV);
        }
        KBox::pin_init(
            try_pin_init!(Self {
                shared,
                ledger: Ledger::new()?,
                addresses: crate::compat::param(&crate::module_parameters::expose_dma_addr) != 0
                    || dmamem::caller_has_rawio(),
                state <- new_mutex!(FileState {
                    handles: RBTree::new(),
                    handle_bytes: 0,
                    next_handle: 1,
                    reserved_buffers: 0,
                }),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(this: Pin<&Self>, file: &File, command: u32, arg: usize) -> Result<isize> {
        let size = ioctl::_IOC_SIZE(command);
        let c = uapi::strip_size(command);
        let is = |known: u32| c.is_some() && uapi::strip_size(known) == c;
        type Op = fn(&CmabufFile, usize, usize, &File) -> Result<isize>;
        let op: Op = if is(cmd::FREE) {
            // Freeing works after unbind too, so that userspace can clean up.
            return this.free(arg, size);
        } else if ioctl::_IOC_TYPE(command) == uapi::HEAP_MAGIC {
            // As `dma-heap.c` dispatches: by number, whatever the size and direction.
            if ioctl::_IOC_NR(command) != 0 {
                return Err(EINVAL);
            }
            if !this.shared.is_bound() {
                return Err(ENODEV);
            }
            return this.heap_alloc(command, arg, file);
        } else if is(cmd::ALLOC) {
            Self::alloc
        } else if is(cmd::INFO) {
            Self::info
        } else if is(cmd::SYNC) {
            Self::sync
        } else if is(cmd::DEV_INFO) {
            Self::dev_info
        } else if is(cmd::STATS) {
            Self::stats
        } else if is(cmd::EXPORT) {
            Self::export
        } else {
            return Err(ENOTTY);
        };
        if !this.shared.is_bound() {
            return Err(ENODEV);
        }
        op(&this, arg, size, file)
    }

    fn mmap(this: Pin<&Self>, _file: &File, vma: &VmaNew) -> Result {
        if !this.shared.is_bound() {
            return Err(ENODEV);
        }
        let (pgoff, pages) = vma::prepare(vma)?;
        let (handle, first) = validate::split_pgoff(pgoff, PAGE_SHIFT as u32)?;
        let buffer = this.lookup(handle).map_err(|_| ENXIO)?;
        validate::check_map_range(first, pages, buffer.pages())?;
        // CAST: `first` is below the buffer's page count, which fits in `usize`.
        buffer.mmap(vma, first as usize)?;
        vma::attach(vma, buffer);
        Ok(())
    }
}
