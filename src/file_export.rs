// SPDX-License-Identifier: GPL-2.0

//! A file's dma-bufs: `CMABUF_IOCTL_EXPORT` of a part of a buffer, the dma-heap path
//! (`DMA_HEAP_IOCTL_ALLOC`: a buffer only its dma-buf holds), and the one rule for both: a
//! dma-buf grants no access its file lacks.

use super::CmabufFile;
use crate::{
    dmabuf::{
        DmaBuf,
        Exports, //
    },
    uapi::{
        self,
        cmabuf_export, //
    },
    validate::{
        self,
        AllocFlags, //
    },
};
use kernel::{
    bindings,
    fs::{
        file::FileDescriptorReservation,
        File, //
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::aref::ARef, //
};

impl CmabufFile {
    /// Reserves a descriptor for a dma-buf with the caller's `flags` (`O_RDWR` or `O_RDONLY`,
    /// optionally `O_CLOEXEC`; `EINVAL` otherwise) and checks that `file` grants that access
    /// ([`Self::may_export`]); returns it and the access mode, for [`install`] once the result is
    /// written. EXPORT and ALLOC with `CMABUF_ALLOC_EXPORT` share this rule.
    pub(super) fn reserve_fd(flags: u32, file: &File) -> Result<(FileDescriptorReservation, u32)> {
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
    pub(super) fn export(&self, arg: usize, size: usize, file: &File) -> Result<isize> {
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
    pub(super) fn heap_alloc(&self, command: u32, arg: usize, file: &File) -> Result<isize> {
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
