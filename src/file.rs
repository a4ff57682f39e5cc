// SPDX-License-Identifier: GPL-2.0

//! One open file of `/dev/cmabufN`: its handles, its ioctls, its mmap.
//!
//! The one place where ioctls are dispatched is here ([`MiscDevice::ioctl`]), with the
//! handle table, FREE and mmap; the ioctls themselves are split by concern, as child modules
//! of this one (they share its private state): [`allocation`] (ALLOC, and how every buffer of
//! a file is made and charged), [`export`] (EXPORT and the dma-heap path), [`query`] (INFO,
//! SYNC, STATS, DEV_INFO).
//!
//! Handles are numbered per file from 1 and never reused on that file; a
//! handle means nothing on another file. One method per ioctl; all input is
//! judged in `validate.rs` or here before anything changes, and every output
//! structure is checked writable before anything changes (`uapi::UserArg`),
//! so a failed call changes nothing.

use crate::{
    account::Ledger,
    buffer::Buffer,
    device::Shared,
    dmabuf::Exports,
    dmamem,
    miscdev::Registration,
    uapi::{
        self,
        cmabuf_free,
        cmd,
        CMABUF_OUT_ADDR_WITHHELD, //
    },
    validate, vma,
};
use kernel::{
    fs::File,
    ioctl,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    mm::virt::VmaNew,
    new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    rbtree::RBTree,
    sync::{
        Arc,
        Mutex, //
    }, //
};

#[path = "file_alloc.rs"]
mod allocation;
#[path = "file_export.rs"]
mod export;
#[path = "file_query.rs"]
mod query;

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
    fn reported_addr(&self, addr: impl FnOnce() -> u64) -> (u64, u32) {
        if self.addresses {
            (addr(), 0)
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
