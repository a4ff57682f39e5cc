// SPDX-License-Identifier: GPL-2.0

//! A file's allocations: `CMABUF_IOCTL_ALLOC` (with `CMABUF_ALLOC_EXPORT`, the export of the
//! new buffer in the same call), and the one path by which every buffer of a file is made and
//! charged (also the dma-heap path's, in [`super::export`]).

use super::{
    CmabufFile,
    Handle, //
};
use crate::{
    account::Ledger,
    buffer::Buffer,
    device,
    dmabuf::Exports,
    dmamem,
    uapi::{
        self,
        cmabuf_alloc, //
    },
    validate::{
        self,
        AllocFlags,
        MapKind,
        Mode, //
    },
};
use kernel::{
    fs::File,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::Arc, //
};

impl CmabufFile {
    /// `CMABUF_IOCTL_ALLOC`, with `CMABUF_ALLOC_EXPORT` also `CMABUF_IOCTL_EXPORT` of the new
    /// buffer in the same call.
    pub(super) fn alloc(&self, arg: usize, size: usize, file: &File) -> Result<isize> {
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

        let (addr, out_flags) = self.reported_addr(|| buffer.device_addr());
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
    pub(super) fn new_buffer(
        &self,
        len: usize,
        flags: AllocFlags,
        handle: u32,
    ) -> Result<(Arc<Buffer>, u64)> {
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
}
