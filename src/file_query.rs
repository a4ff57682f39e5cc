// SPDX-License-Identifier: GPL-2.0

//! What a file asks and is told: `CMABUF_IOCTL_INFO` of a handle, `CMABUF_IOCTL_SYNC` of its
//! CPU caches, `CMABUF_IOCTL_STATS` and `CMABUF_IOCTL_DEV_INFO` of the device.

use super::CmabufFile;
use crate::{
    uapi::{
        self,
        cmabuf_dev_info,
        cmabuf_info,
        cmabuf_stats,
        cmabuf_sync, //
    },
    validate,
};
use kernel::{
    fs::File,
    page::PAGE_SIZE,
    prelude::*, //
};

impl CmabufFile {
    /// `CMABUF_IOCTL_INFO`.
    pub(super) fn info(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
        let user = uapi::read::<cmabuf_info>(arg, size)?;
        let mut i = user.val;
        let inputs = cmabuf_info {
            handle: i.handle,
            ..Default::default()
        };
        uapi::only_inputs(&i, inputs)?;
        let buffer = self.lookup(i.handle)?;
        let (addr, out_flags) = self.reported_addr(|| buffer.device_addr());
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
    pub(super) fn sync(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
        let s = uapi::read::<cmabuf_sync>(arg, size)?.val;
        let buffer = self.lookup(s.handle)?;
        let req = validate::SyncRequest::parse(s.flags, s.offset, s.length, buffer.size())?;
        buffer.sync(&req)?;
        Ok(0)
    }

    /// `CMABUF_IOCTL_STATS`.
    pub(super) fn stats(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
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
        st.reserve_bytes = s.reserve_bytes;
        st.reserve_ready_bytes = s.reserve_ready_bytes;
        st.reserve_lent_bytes = s.reserve_lent_bytes;
        st.reserve_unit = s.reserve_unit;
        st.reserve_hits = s.reserve_hits;
        st.reserve_misses = s.reserve_misses;
        st.reserve_refill_us = s.reserve_refill_us;
        user.write(&st)?;
        Ok(0)
    }

    /// `CMABUF_IOCTL_DEV_INFO`.
    pub(super) fn dev_info(&self, arg: usize, size: usize, _file: &File) -> Result<isize> {
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
        let (base, mut out_flags) = self.reported_addr(|| self.shared.region_base());
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
