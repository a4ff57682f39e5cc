// SPDX-License-Identifier: GPL-2.0

//! A buffer's memory: all of an allocation of its own, or a piece of a
//! pooled chunk (small buffers, `pool.rs`), as one window (`offset`, `size`)
//! into an [`Alloc`] whose methods check ranges of the allocation; the window
//! checks that a request stays inside the buffer before it adds its offset.
//!
//! Dropping a [`DmaMem`] gives the memory back (frees the allocation, or the
//! piece to its chunk), or, if a page-backed mapping let others take
//! references to its pages that they still hold, hands it to [`held`] to be
//! given back once they let go. What the memory's owner keeps with it (its
//! charges on the file's and the device's ledgers, who allocated it: a
//! [`Keep`]) goes with the memory, not before: held memory still counts
//! against every limit until its pages come back.

use crate::{
    dmamem::Alloc,
    held::{
        self,
        Held, //
    },
    held_global,
    pool::Piece,
    region::RegionRef,
    reserve::Lent,
    validate::{
        Direction,
        MapKind,
        Mode, //
    },
};
use core::{
    ops::Deref,
    ptr::NonNull,
    sync::atomic::{
        AtomicPtr,
        Ordering, //
    },
};
use kernel::{
    bindings,
    mm::virt::VmaNew,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::Arc,
    types::ScopeGuard,
};

/// What a buffer keeps with its memory until the memory goes back to the region, whenever that
/// is: its charges on the ledgers and who allocated it (`buffer.rs`). Dropped right after the
/// memory went back.
pub(crate) trait Keep: Send + Sync {
    /// The memory went to [`held`] (`on`), or, having been held, went back to the region (not
    /// `on`), with `bytes` bytes.
    fn held(&self, bytes: usize, on: bool);

    /// Who allocated the memory.
    fn who(&self) -> held::Who;
}

/// What a buffer's memory is part of.
enum Backing {
    /// An allocation of its own.
    Whole(Alloc),
    /// Pages of a pooled chunk (small buffers, see [`crate::pool`]).
    Piece(Piece),
}

/// A buffer's memory: `size` bytes at `offset` of an allocation, all of it or a piece of a pooled
/// chunk.
///
/// # Invariants
///
/// `offset` and `size` are page aligned, `size > 0`, and `offset + size` lies inside the backing
/// allocation; those pages are this memory's alone while it lives (a whole allocation, or the
/// pages the pool handed out for the piece).
pub(crate) struct Mem {
    /// The allocation (dropped first: frees the memory or gives the piece back).
    backing: Backing,
    /// Offset of the memory in the allocation, in bytes.
    offset: usize,
    /// Size in bytes.
    size: usize,
    /// The allocation's first page once a page-backed mapping handed this memory's pages to the
    /// mm (null before): from then on others may hold references to them, which [`DmaMem`]'s
    /// drop waits for.
    exposed: AtomicPtr<bindings::page>,
    /// The memory's charge in the dmem cgroup controller; a field after `backing`, so given back
    /// after the memory went back.
    dmem: Option<crate::dmem::Charge>,
    /// What the memory's owner keeps with it (a field after `backing`: dropped after the memory
    /// went back).
    kept: Option<Arc<dyn Keep>>,
    /// The ready reserve's loan, for memory it served (a field after `backing`: the reserve
    /// refills once the memory went back).
    lent: Option<Lent>,
}

/// Memory waiting in [`held`]: when the reaper drops it, the owner's [`Keep`] hears that it is
/// no longer held, then the memory goes back, then the keep is dropped.
struct Waiting(Mem);

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(k) = &self.0.kept {
            k.held(self.0.size, false);
        }
    }
}

/// A buffer's memory: a [`Mem`] that, when dropped, is given back at once unless others still
/// hold its pages (then [`held`] gives it back when they let go): the guard hands the memory
/// over by value to [`give_back`].
pub(crate) struct DmaMem(ScopeGuard<Mem, fn(Mem)>);

impl Deref for DmaMem {
    type Target = Mem;

    fn deref(&self) -> &Mem {
        &self.0
    }
}

/// What becomes of a buffer's memory when its [`DmaMem`] goes.
fn give_back(mem: Mem) {
    if !mem.busy(&mut 0) {
        // The memory goes back, then what its owner kept with it (field order).
        return;
    }
    match KBox::<Waiting>::new_uninit(GFP_KERNEL) {
        Ok(b) => {
            if let Some(k) = &mem.kept {
                k.held(mem.size, true);
            }
            let b: KBox<Waiting> = KBox::write(b, Waiting(mem));
            held_global::hold(b)
        }
        Err(_) => {
            // Never freed rather than freed while in use; its charges stay taken too.
            pr_err!("cmabuf: out of memory; a buffer whose pages are held is leaked\n");
            core::mem::forget(mem);
        }
    }
}

impl DmaMem {
    /// Allocates `size` bytes (page aligned, > 0) in `mode` from `region`, an allocation of their
    /// own; see [`Alloc::new`].
    pub(crate) fn alloc(region: &RegionRef, size: usize, mode: Mode) -> Result<Option<Self>> {
        Ok(Alloc::new(region, size, mode, false)?.map(|alloc| {
            // INVARIANT: All of a fresh allocation.
            Self::new(Backing::Whole(alloc), 0, size)
        }))
    }

    /// All of `alloc` (fresh and zeroed), lent by the ready reserve until it goes back.
    pub(crate) fn whole(alloc: Alloc, lent: Lent) -> Self {
        let size = alloc.size();
        // INVARIANT: All of an allocation nobody else was handed.
        let mut mem = Self::new(Backing::Whole(alloc), 0, size);
        mem.0.lent = Some(lent);
        mem
    }

    /// Memory of a piece the pool handed out (zeroed, listed in the region).
    pub(crate) fn piece(piece: Piece) -> Self {
        let (offset, size) = piece.range();
        // INVARIANT: The pool hands out a piece's pages, inside its chunk, to that piece alone.
        Self::new(Backing::Piece(piece), offset, size)
    }

    fn new(backing: Backing, offset: usize, size: usize) -> Self {
        Self(ScopeGuard::new_with_data(
            Mem {
                backing,
                offset,
                size,
                exposed: AtomicPtr::new(core::ptr::null_mut()),
                dmem: None,
                kept: None,
                lent: None,
            },
            give_back as fn(Mem),
        ))
    }

    /// Lets the memory keep `kept` until it goes back to the region (also while held).
    pub(crate) fn keep(&mut self, kept: Arc<dyn Keep>) {
        self.0.kept = Some(kept);
    }

    /// Lets the memory hold its dmem cgroup charge until it goes back to the region.
    pub(crate) fn hold_charge(&mut self, charge: crate::dmem::Charge) {
        self.0.dmem = Some(charge);
    }
}

impl Mem {
    /// The allocation the memory is part of.
    fn alloc(&self) -> &Alloc {
        match &self.backing {
            Backing::Whole(a) => a,
            Backing::Piece(p) => p.chunk(),
        }
    }

    /// Whether others than the memory itself hold references to its pages (only possible after a
    /// page-backed mapping). The look starts at page `hint` of the memory, and `hint` is left at
    /// the page found held.
    fn busy(&self, hint: &mut usize) -> bool {
        NonNull::new(self.exposed.load(Ordering::Acquire)).is_some_and(|page0| {
            self.alloc().pages_held(
                page0,
                self.offset >> PAGE_SHIFT,
                self.size >> PAGE_SHIFT,
                hint,
            )
        })
    }

    /// The device (DMA) address.
    pub(crate) fn dma_addr(&self) -> u64 {
        // CAST: The offset fits in `u64`.
        self.alloc().dma_addr() + self.offset as u64
    }

    /// The device (DMA) address, to hand to userspace: the memory is made ready for devices
    /// first (see `Alloc::device_addr`).
    pub(crate) fn device_addr(&self) -> u64 {
        // CAST: The offset fits in `u64`.
        self.alloc().device_addr() + self.offset as u64
    }

    /// The key the region lists the memory under: its DMA address for an allocation of its own,
    /// the address with bit 0 set for a piece of a pooled chunk (whose chunk is listed under
    /// the plain address).
    pub(crate) fn list_key(&self) -> u64 {
        match self.backing {
            Backing::Whole(_) => self.dma_addr(),
            Backing::Piece(_) => self.dma_addr() | 1,
        }
    }

    /// Maps the buffer into `vma`, starting at page `first` of the buffer, as `kind` says.
    ///
    /// A range that leaves the buffer is `ENXIO`.
    pub(crate) fn mmap(&self, vma: &VmaNew, first: usize, kind: MapKind) -> Result {
        let n = (vma.end() - vma.start()) >> PAGE_SHIFT;
        if first
            .checked_add(n)
            .is_none_or(|end| end > self.size >> PAGE_SHIFT)
        {
            return Err(ENXIO);
        }
        // Page `first` of the buffer is this page of the allocation.
        let first = first + (self.offset >> PAGE_SHIFT);
        match kind {
            MapKind::Pfn => self.alloc().map_pfns(vma, first),
            MapKind::Pages => self.alloc().map_pages(vma, first, &self.exposed),
        }
    }

    /// Hands `len` bytes at `offset` to the CPU (`for_cpu`) or to the device; `EINVAL` if the
    /// range leaves the buffer.
    ///
    /// A no-op for coherent and write-combined memory.
    pub(crate) fn sync(&self, for_cpu: bool, dir: Direction, offset: usize, len: usize) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(EINVAL);
        }
        self.alloc().sync(for_cpu, dir, self.offset + offset, len)
    }

    /// Fills `table` with the pages of the `len` bytes at `offset` (page aligned, inside the
    /// buffer: `EINVAL` otherwise), in segments of at most `max_segment` bytes.
    pub(crate) fn sg_table(
        &self,
        table: &mut bindings::sg_table,
        max_segment: u32,
        offset: usize,
        len: usize,
    ) -> Result {
        if offset % PAGE_SIZE != 0 || offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(EINVAL);
        }
        self.alloc()
            .sg_table(table, max_segment, self.offset + offset, len)
    }

    /// A kernel address of the buffer, valid until the memory is given back.
    pub(crate) fn kernel_addr(&self) -> Result<*mut c_void> {
        let base = self.alloc().kernel_addr()?;
        // The memory lies inside the allocation (type invariant).
        Ok(base.cast::<u8>().wrapping_add(self.offset).cast())
    }

    /// The physical address (the region's base plus the offset of the device address).
    pub(crate) fn phys(&self) -> u64 {
        let region = self.region();
        region.base() + (self.dma_addr() - region.dma_base())
    }

    /// The size in bytes, page aligned.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The region the memory came from.
    pub(crate) fn region(&self) -> &RegionRef {
        self.alloc().region()
    }
}

impl Held for Waiting {
    fn busy(&self, hint: &mut usize) -> bool {
        self.0.busy(hint)
    }

    fn bytes(&self) -> usize {
        self.0.size
    }

    fn who(&self) -> held::Who {
        match &self.0.kept {
            Some(k) => k.who(),
            None => held::Who {
                pid: 0,
                comm: [0; 16],
                dev: u32::MAX,
            },
        }
    }
}
