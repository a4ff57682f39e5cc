// SPDX-License-Identifier: GPL-2.0

//! Buffers: one contiguous allocation from the region, and its charge.
//!
//! A [`Buffer`] is what a handle, each mapping of it and its dma-buf hold
//! (`Arc`). It owns its memory ([`DmaMem`], which holds the region) and its
//! [`Charge`]; when the last holder goes, the memory goes back to the region
//! and then the bytes back to the ledger, whether or not the node is still
//! bound. Nothing else frees buffer memory, so nothing can free memory that
//! a page table, an importer's DMA mapping or a vmap still uses: each of them
//! holds the buffer.

use crate::{
    account::Charge,
    held::Who,
    mem::{
        DmaMem,
        Keep, //
    },
    validate::{
        self,
        AllocFlags,
        MapKind,
        Mode, //
    },
};
use core::sync::atomic::{
    AtomicU32,
    Ordering, //
};
use kernel::{
    bindings,
    mm::virt::VmaNew,
    page::PAGE_SHIFT,
    prelude::*,
    sync::Arc, //
};

/// What a buffer's memory keeps until it goes back to the region, which may be long after the
/// buffer went (its pages held by a pipe or direct I/O: `held`): the buffer's charges, so that
/// every limit counts memory that is still taken, and who allocated it.
struct Kept {
    /// The buffer's bytes in the node's accounting, then in its file's (what the per-file limits
    /// count: what a file allocated counts against it until the memory goes).
    charges: [Charge; 2],
    /// Who allocated the buffer.
    who: Who,
}

impl Keep for Kept {
    fn held(&self, bytes: usize, on: bool) {
        // CAST: A buffer's size fits in `u64`.
        let bytes = bytes as u64;
        self.charges[0].ledger().count(|s| {
            if on {
                s.held_buffers += 1;
                s.held_bytes += bytes;
            } else {
                s.held_buffers -= 1;
                s.held_bytes -= bytes;
            }
        });
    }

    fn who(&self) -> Who {
        self.who
    }
}

/// A buffer as handles, mappings and dma-bufs see it. Fields drop in declaration order: the
/// memory goes back to the region before the bytes go back to the ledgers (the memory holds
/// them too, for as long as others hold its pages), so a limit never admits an allocation while
/// the memory it counts is still taken.
pub(crate) struct Buffer {
    /// The memory.
    mem: DmaMem,
    /// The charges and who allocated it, shared with the memory.
    kept: Arc<Kept>,
    /// Cache mode and how mappings are made.
    flags: AllocFlags,
    /// The handle it was allocated under (on its file; 0 for a dma-heap buffer).
    handle: u32,
    /// Live mappings (VMAs, through the device file or the dma-buf).
    map_count: AtomicU32,
}

impl Buffer {
    /// A new buffer for `handle`, charged to its node (`charges[0]`) and its file, allocated by
    /// `who`. If this fails, the dropped parts give everything back.
    pub(crate) fn new(
        mut mem: DmaMem,
        charges: [Charge; 2],
        who: Who,
        flags: AllocFlags,
        handle: u32,
    ) -> Result<Arc<Self>> {
        let kept = Arc::new(Kept { charges, who }, GFP_KERNEL)?;
        mem.keep(kept.clone());
        Arc::new(
            Self {
                mem,
                kept,
                flags,
                handle,
                map_count: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    }

    /// The buffer's charge on its node.
    pub(crate) fn charge(&self) -> &Charge {
        &self.kept.charges[0]
    }

    /// The handle on its file (0 for a buffer allocated through the dma-heap interface).
    pub(crate) fn handle(&self) -> u32 {
        self.handle
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.mem.size()
    }

    /// Size in pages.
    pub(crate) fn pages(&self) -> u64 {
        (self.mem.size() >> PAGE_SHIFT) as u64
    }

    /// Cache mode.
    pub(crate) fn mode(&self) -> Mode {
        self.flags.mode
    }

    /// Cache mode and how mappings are made.
    pub(crate) fn flags(&self) -> AllocFlags {
        self.flags
    }

    /// How mappings are made.
    pub(crate) fn map_kind(&self) -> MapKind {
        self.flags.map
    }

    /// Device address, to hand to userspace (which may program a device with it): the memory
    /// is made ready for devices first.
    pub(crate) fn device_addr(&self) -> u64 {
        self.mem.device_addr()
    }

    /// Physical address.
    pub(crate) fn phys(&self) -> u64 {
        self.mem.phys()
    }

    /// Live mappings.
    pub(crate) fn map_count(&self) -> u32 {
        self.map_count.load(Ordering::Relaxed)
    }

    /// A VMA now holds the buffer.
    pub(crate) fn mapped(&self) {
        self.map_count.fetch_add(1, Ordering::Relaxed);
    }

    /// A VMA let go of the buffer.
    pub(crate) fn unmapped(&self) {
        self.map_count.fetch_sub(1, Ordering::Relaxed);
    }

    /// Maps pages from `first` into `vma` (range checked by the caller).
    pub(crate) fn mmap(&self, vma: &VmaNew, first: usize) -> Result {
        self.mem.mmap(vma, first, self.flags.map)
    }

    /// Syncs a checked range.
    pub(crate) fn sync(&self, req: &validate::SyncRequest) -> Result {
        self.mem.sync(req.for_cpu, req.dir, req.offset, req.len)
    }

    /// Hands `len` bytes at `offset` (an exported part, checked at export) to the CPU or back to
    /// devices (`DMA_BUF_IOCTL_SYNC`).
    pub(crate) fn sync_part(
        &self,
        for_cpu: bool,
        dir: validate::Direction,
        offset: usize,
        len: usize,
    ) -> Result {
        self.mem.sync(for_cpu, dir, offset, len)
    }

    /// Fills `table` with the `len` bytes at `offset` for a dma-buf attachment whose device takes
    /// segments of at most `max_segment` bytes.
    pub(crate) fn sg_table(
        &self,
        table: &mut bindings::sg_table,
        max_segment: u32,
        offset: usize,
        len: usize,
    ) -> Result {
        self.mem.sg_table(table, max_segment, offset, len)
    }

    /// A kernel address of the whole buffer, valid while the buffer lives.
    pub(crate) fn kernel_addr(&self) -> Result<*mut c_void> {
        self.mem.kernel_addr()
    }

    /// Records the buffer's dma-buf (`new`), or that `old` went (`new` null), for debugfs.
    pub(crate) fn set_dmabuf(&self, old: *mut c_void, new: *mut c_void) {
        self.mem.region().set_dmabuf(self.mem.list_key(), old, new);
    }
}
