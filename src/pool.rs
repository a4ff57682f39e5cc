// SPDX-License-Identifier: GPL-2.0

//! Small buffers from pooled chunks of the region.
//!
//! CMA works on whole pageblocks: every allocation, however small, isolates,
//! migrates and claims a range of the region, so a 64 KiB buffer straight
//! from CMA costs many times zeroing it. Buffers of at most [`MAX_PIECE`]
//! bytes are therefore carved from chunks of [`CHUNK_SIZE`] bytes, one cache
//! mode per chunk, each an ordinary allocation of the region (listed in it,
//! with its cache mode's kernel mapping). A piece is aligned as CMA would
//! align an allocation of its size, zeroed through the mode's kernel mapping
//! when handed out, and charged and counted at its exact size; it is listed
//! in the region under its address with bit 0 set (the chunk under the plain
//! address), so debugfs names its dma-buf.
//!
//! A chunk is taken for a burst of small buffers: when a second small buffer
//! of a mode finds no room within [`BURST_MS`] of the first (which came
//! straight from the region), and only from free memory. An occasional small
//! buffer, and any when movable pages fill the CMA areas, comes straight from
//! the region like a large one, migrating only its own size: a chunk would
//! migrate 64 times what a 64 KiB buffer does.
//!
//! Chunks go back to the region as soon as they are not needed:
//!
//! - a chunk that empties while another empty one of its mode is kept goes
//!   back at once, so at most one empty chunk per cache mode is kept;
//! - that one goes back after [`IDLE_MS`] unused (a delayed work item);
//! - under memory pressure the pool's shrinker has every empty chunk given
//!   back at once (from a work item: reclaim may run while a holder of a lock
//!   the freeing takes is allocating);
//! - when a large allocation finds no room, before it retries;
//! - at unbind every empty chunk goes, and chunks that empty later go back
//!   at once.
//!
//! A piece whose pages others still hold when its buffer goes waits in
//! `held` like any buffer memory, its pages still taken in the chunk.
//!
//! # Lifetimes
//!
//! A [`Piece`] holds its chunk and the pool, so a chunk lives while the pool
//! lists it or a piece uses it, and the pool while its node's [`Shared`]
//! state, a piece or a queued work item holds it. The shrinker's registration
//! ([`Shrinker`]) holds the pool too, and is dropped (which waits for running
//! callbacks) at unbind, before the pool is shut down, which flushes the work
//! items; once shut down the pool queues no work, so nothing of it runs after
//! the module's last user.
//!
//! [`Shared`]: crate::device::Shared
//! [`Shrinker`]: crate::shrinker::Shrinker

use crate::{
    dmamem::Alloc,
    policy,
    region::{
        self,
        RegionRef, //
    },
    shrinker::Shrink,
    validate::Mode,
    work, //
};
use kernel::{
    bindings, impl_has_delayed_work, impl_has_work, new_delayed_work, new_mutex, new_work,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        Arc,
        ArcBorrow,
        Mutex, //
    },
    time::{
        msecs_to_jiffies,
        Instant,
        Monotonic, //
    },
    types::ScopeGuard,
    workqueue::{
        DelayedWork,
        Work,
        WorkItem, //
    },
};

/// Size of a chunk: 4 MiB.
pub(crate) const CHUNK_SIZE: usize = 4 << 20;
/// The largest buffer served from chunks.
pub(crate) const MAX_PIECE: usize = CHUNK_SIZE / 4;
/// Pages per chunk.
const CHUNK_PAGES: usize = CHUNK_SIZE >> PAGE_SHIFT;
/// Words of a chunk's page bitmap.
const WORDS: usize = CHUNK_PAGES.div_ceil(64);
/// How long the kept empty chunk of a mode waits for reuse before it goes back, in ms.
pub(crate) const IDLE_MS: u32 = 1000;
/// Two small buffers of a mode finding no room within this many ms make a burst, which a new
/// chunk serves.
pub(crate) const BURST_MS: u32 = 250;

/// Whether page `i` of a chunk is handed out.
fn taken(map: &[u64; WORDS], i: usize) -> bool {
    map[i / 64] >> (i % 64) & 1 != 0
}

/// Marks `n` pages from `first` handed out (`on`) or free.
fn mark(map: &mut [u64; WORDS], first: usize, n: usize, on: bool) {
    for i in first..first + n {
        if on {
            map[i / 64] |= 1 << (i % 64);
        } else {
            map[i / 64] &= !(1 << (i % 64));
        }
    }
}

/// The first run of `n` free pages starting at a multiple of `align` pages, if any.
fn find(map: &[u64; WORDS], n: usize, align: usize) -> Option<usize> {
    let mut start = 0;
    while start + n <= CHUNK_PAGES {
        match (start..start + n).rev().find(|&i| taken(map, i)) {
            None => return Some(start),
            Some(busy) => start = (busy + 1).next_multiple_of(align),
        }
    }
    None
}

/// Free CMA pages below which no new chunk is taken: a chunk then likely means migrating a whole
/// chunk of movable pages for one small buffer, which on its own would migrate only its size.
const MIN_FREE_CMA_PAGES: usize = 4 * CHUNK_PAGES;

/// The page alignment of a piece of `n` pages: what CMA gives an allocation of that size.
fn alignment(n: usize) -> usize {
    // CAST: The sizes fit in `u64` and the alignment in pages in `usize`.
    (policy::cma_alignment(
        (n << PAGE_SHIFT) as u64,
        PAGE_SIZE as u64,
        bindings::CONFIG_CMA_ALIGNMENT,
    ) >> PAGE_SHIFT) as usize
}

/// The most pages one piece could have from `map`, at most `max`.
fn largest(map: &[u64; WORDS], max: usize) -> usize {
    let mut n = max;
    while n > 0 && find(map, n, alignment(n)).is_none() {
        n -= 1;
    }
    n
}

/// One chunk of the pool.
struct Slot {
    /// The chunk.
    chunk: Arc<Alloc>,
    /// Its pages handed out to pieces.
    map: [u64; WORDS],
    /// How many.
    used: usize,
    /// When it last became empty.
    empty_since: Instant<Monotonic>,
}

/// What the pool's lock protects.
struct Slots {
    /// The chunks.
    list: KVec<Slot>,
    /// When a small buffer of each mode last found no chunk with room (by [`mode_index`]).
    last_miss: [Option<Instant<Monotonic>>; 3],
    /// Set at unbind: no more work queued, no chunk taken, chunks that empty go back at once.
    shut: bool,
}

impl Slots {
    /// Pages in empty chunks.
    fn empty_pages(&self) -> usize {
        self.list.iter().filter(|sl| sl.used == 0).count() * CHUNK_PAGES
    }
}

/// A node's pool of chunks; see the module documentation.
#[pin_data]
pub(crate) struct Pool {
    /// The region chunks come from.
    region: RegionRef,
    /// The chunks.
    #[pin]
    slots: Mutex<Slots>,
    /// Gives back the kept empty chunks once idle.
    #[pin]
    idle: DelayedWork<Pool, 0>,
    /// Gives back every empty chunk now (queued by the shrinker).
    #[pin]
    now: Work<Pool, 1>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self, 0> for Pool { self.idle }
}

impl_has_work! {
    impl HasWork<Self, 1> for Pool { self.now }
}

impl WorkItem<0> for Pool {
    type Pointer = Arc<Pool>;

    fn run(this: Arc<Pool>) {
        this.reap(false);
    }
}

impl WorkItem<1> for Pool {
    type Pointer = Arc<Pool>;

    fn run(this: Arc<Pool>) {
        this.reap(true);
    }
}

/// The index of `mode` in [`Slots::last_miss`].
fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Coherent => 0,
        Mode::WriteCombine => 1,
        Mode::Cached => 2,
    }
}

/// Pages of a chunk handed out as one buffer's memory; given back to the pool when dropped
/// ([`Parts::give_back`]: the guard hands the parts over by value, so that the piece's reference
/// to the chunk can be the last and go inside [`Pool::put`], under the pool's lock).
pub(crate) struct Piece(ScopeGuard<Parts, fn(Parts)>);

/// What a [`Piece`] is made of.
///
/// # Invariants
///
/// Pages `first .. first + pages` of `chunk` are marked handed out in `pool` for this piece alone
/// (or the pool no longer lists the chunk), and the region lists them under their DMA address
/// with bit 0 set.
struct Parts {
    /// The pool the pages go back to.
    pool: Arc<Pool>,
    /// The chunk.
    chunk: Arc<Alloc>,
    /// First page in the chunk.
    first: usize,
    /// Number of pages.
    pages: usize,
}

impl Parts {
    /// The region's key for the piece.
    fn key(&self) -> u64 {
        // CAST: An offset inside a chunk fits in `u64`.
        (self.chunk.dma_addr() + (self.first << PAGE_SHIFT) as u64) | 1
    }

    /// Unlists the pages and gives them back to the pool, with the chunk.
    fn give_back(self) {
        self.chunk.region().unlist(self.key());
        // INVARIANT: The pages are marked free here, after which the piece is gone.
        Pool::put(&self.pool, self.chunk, self.first, self.pages);
    }
}

impl Piece {
    /// The chunk the piece is part of.
    pub(crate) fn chunk(&self) -> &Alloc {
        &self.0.chunk
    }

    /// `(offset, size)` of the piece in its chunk, in bytes.
    pub(crate) fn range(&self) -> (usize, usize) {
        (self.0.first << PAGE_SHIFT, self.0.pages << PAGE_SHIFT)
    }
}

/// What the pool holds.
pub(crate) struct Usage {
    /// Bytes the pool's chunks take from the region.
    pub(crate) chunk_bytes: u64,
    /// Bytes of them no piece holds.
    pub(crate) free_bytes: u64,
    /// The largest buffer a chunk has room for.
    pub(crate) largest_free: u64,
}

impl Pool {
    /// An empty pool of chunks from `region`.
    pub(crate) fn new(region: &RegionRef) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                region: region.clone(),
                slots <- new_mutex!(Slots {
                    list: KVec::new(),
                    last_miss: [None; 3],
                    shut: false,
                }),
                idle <- new_delayed_work!("cmabuf_pool_idle"),
                now <- new_work!("cmabuf_pool_now"),
            }),
            GFP_KERNEL,
        )
    }

    /// A zeroed piece of `len` bytes (page aligned, at most [`MAX_PIECE`]) in `mode`, from a
    /// chunk with room or, in a burst, a new chunk. `Ok(None)` when no chunk is had: the caller
    /// allocates the buffer on its own.
    ///
    /// A new chunk is taken only for the second small buffer of a mode within [`BURST_MS`] that
    /// finds no room: an occasional small buffer comes straight from the region and migrates
    /// only its own size, where a chunk could migrate a whole chunk of movable pages (64 times
    /// what a 64 KiB buffer does); and only if the region's buffers leave room for a chunk and
    /// the CMA areas have [`MIN_FREE_CMA_PAGES`] free.
    pub(crate) fn get(this: &Arc<Self>, len: usize, mode: Mode) -> Result<Option<Piece>> {
        if len == 0 || len % PAGE_SIZE != 0 || len > MAX_PIECE {
            return Ok(None);
        }
        let pages = len >> PAGE_SHIFT;
        // Aligned as CMA aligns an allocation of this size; chunks are aligned at least as much
        // (their size is larger), so the alignment in the chunk is the alignment in memory.
        let align = alignment(pages);
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let found = {
            let mut s = this.slots.lock();
            let found = s
                .list
                .iter_mut()
                .filter(|sl| sl.chunk.mode() == mode)
                .find_map(|sl| {
                    let first = find(&sl.map, pages, align)?;
                    mark(&mut sl.map, first, pages, true);
                    sl.used += pages;
                    Some((sl.chunk.clone(), first))
                });
            match found {
                Some(f) => Some(f),
                None => {
                    let last = s.last_miss[mode_index(mode)].replace(Instant::now());
                    let burst = last.is_some_and(|t| t.elapsed().as_millis() < i64::from(BURST_MS));
                    if !burst || s.shut {
                        return Ok(None);
                    }
                    None
                }
            }
        };
        let (chunk, first, fresh) = match found {
            Some((chunk, first)) => (chunk, first, false),
            None => {
                // Not under the pool's lock: taking a chunk may migrate pages for long, and
                // pieces going back (from VMA closes under mmap locks, too) need the lock.
                // CAST: The chunk size fits in `u64`.
                if region::free_cma_pages() < MIN_FREE_CMA_PAGES
                    || !this.region.has_room(CHUNK_SIZE as u64)?
                {
                    return Ok(None);
                }
                let Some(alloc) = Alloc::new(&this.region, CHUNK_SIZE, mode, true)
                    .ok()
                    .flatten()
                else {
                    return Ok(None);
                };
                let chunk = Arc::new(alloc, GFP_KERNEL)?;
                let mut map = [0; WORDS];
                mark(&mut map, 0, pages, true);
                let mut s = this.slots.lock();
                if s.shut {
                    return Ok(None);
                }
                s.list.push(
                    Slot {
                        chunk: chunk.clone(),
                        map,
                        used: pages,
                        empty_since: Instant::now(),
                    },
                    GFP_KERNEL,
                )?;
                (chunk, 0, true)
            }
        };
        // INVARIANT: The pages were marked for this piece above; listed below.
        let parts = Parts {
            pool: this.clone(),
            chunk,
            first,
            pages,
        };
        let key = parts.key();
        let piece = Piece(ScopeGuard::new_with_data(
            parts,
            Parts::give_back as fn(Parts),
        ));
        // A fresh chunk was zeroed by the DMA API.
        if !fresh {
            // On failure the piece's drop gives the pages back.
            piece.chunk().zero(first << PAGE_SHIFT, len)?;
        }
        this.region.list(node, key, len, false);
        Ok(Some(piece))
    }

    /// Gives the pages of a dropped piece back; a chunk that empties goes back to the region if
    /// another empty one of its mode is kept or the pool is shut, else is kept for [`IDLE_MS`].
    ///
    /// A chunk that goes back is freed under the pool's lock, so that statistics (which take it)
    /// see it either in the pool or back in the region, never in between.
    fn put(this: &Arc<Self>, chunk: Arc<Alloc>, first: usize, pages: usize) {
        let mut s = this.slots.lock();
        let Some(i) = s.list.iter().position(|sl| Arc::ptr_eq(&sl.chunk, &chunk)) else {
            // Shut and given up: the chunk goes with its last piece.
            drop(s);
            drop(chunk);
            return;
        };
        let gone = {
            let sl = &mut s.list[i];
            mark(&mut sl.map, first, pages, false);
            sl.used -= pages;
            if sl.used != 0 {
                drop(s);
                drop(chunk);
                return;
            }
            sl.empty_since = Instant::now();
            let mode = chunk.mode();
            let other = s
                .list
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && o.used == 0 && o.chunk.mode() == mode);
            if s.shut || other {
                s.list.remove(i).ok()
            } else {
                // Queued under the lock, so never after `shutdown()` set `shut`. Already queued
                // is as good: the work looks again when this chunk will have idled.
                let _ = work::queue()
                    .enqueue_delayed::<Arc<Pool>, 0>(this.clone(), msecs_to_jiffies(IDLE_MS));
                None
            }
        };
        // The last references: the chunk is freed here, under the lock.
        drop(gone);
        drop(chunk);
        drop(s);
    }

    /// Gives empty chunks back to the region: all of them if `all` or shut, else those idle for
    /// [`IDLE_MS`] (queueing another look for the others). Returns whether any went.
    fn reap(self: Arc<Self>, all: bool) -> bool {
        let mut any = false;
        loop {
            let released = {
                let mut s = self.slots.lock();
                let all = all || s.shut;
                let pos = s.list.iter().position(|sl| {
                    sl.used == 0 && (all || sl.empty_since.elapsed().as_millis() >= IDLE_MS.into())
                });
                match pos {
                    // Freed under the lock (see `put`): an empty chunk's slot holds its last
                    // reference.
                    Some(i) => {
                        drop(s.list.remove(i));
                        Some(())
                    }
                    None => {
                        let wait = s
                            .list
                            .iter()
                            .filter(|sl| sl.used == 0)
                            .map(|sl| sl.empty_since.elapsed().as_millis())
                            .max();
                        if let (Some(ms), false) = (wait, s.shut) {
                            // CAST: `0 ..= IDLE_MS`, which fits in `u32`.
                            let left = (i64::from(IDLE_MS) - ms).clamp(1, IDLE_MS.into()) as u32;
                            let _ = work::queue().enqueue_delayed::<Arc<Pool>, 0>(
                                self.clone(),
                                msecs_to_jiffies(left),
                            );
                        }
                        None
                    }
                }
            };
            match released {
                Some(()) => any = true,
                None => return any,
            }
        }
    }

    /// Gives every empty chunk back to the region now; returns whether any went.
    pub(crate) fn release_empty(this: &Arc<Self>) -> bool {
        this.clone().reap(true)
    }

    /// What the pool holds, and the region's live allocations (as `Region::used_ranges`) less
    /// the empty chunks (room the next allocation that needs it gets), read together: under the
    /// pool's lock, which chunks are taken and freed under.
    pub(crate) fn snapshot(&self) -> Result<(Usage, KVec<(u64, u64)>)> {
        let s = self.slots.lock();
        let mut used = self.region.used_ranges()?;
        used.retain(|(addr, _)| {
            !s.list
                .iter()
                .any(|sl| sl.used == 0 && sl.chunk.dma_addr() == *addr)
        });
        // CAST: Chunk and page counts fit in `u64`.
        let usage = Usage {
            chunk_bytes: (s.list.len() * CHUNK_SIZE) as u64,
            free_bytes: s
                .list
                .iter()
                .map(|sl| ((CHUNK_PAGES - sl.used) << PAGE_SHIFT) as u64)
                .sum(),
            largest_free: (s.list.iter().fold(0, |best, sl| {
                best.max(largest(&sl.map, MAX_PIECE >> PAGE_SHIFT))
            }) << PAGE_SHIFT) as u64,
        };
        Ok((usage, used))
    }

    /// Pages in empty chunks, for the shrinker; 0 if the lock is taken (reclaim must not wait
    /// for it: its holder may be allocating).
    fn empty_pages(&self) -> usize {
        match self.slots.try_lock() {
            Some(s) => s.empty_pages(),
            None => 0,
        }
    }

    /// Unbind: no more work queued, queued work run now, every empty chunk given back; chunks
    /// that empty later go back at once.
    pub(crate) fn shutdown(this: &Arc<Self>) {
        this.slots.lock().shut = true;
        // Work queued before `shut` was set runs now (and drops its reference to the pool);
        // none is queued after.
        work::flush_delayed(&this.idle);
        work::flush(&this.now);
        Self::release_empty(this);
    }
}

/// Memory pressure has every empty chunk given back, from a work item (freeing takes locks whose
/// holders may be allocating, i.e. in reclaim, right now); objects are pages.
impl Shrink for Pool {
    fn count(this: ArcBorrow<'_, Self>) -> usize {
        this.empty_pages()
    }

    fn scan(this: ArcBorrow<'_, Self>) -> Option<usize> {
        // Not waiting for the lock: its holder may be allocating.
        let slots = this.slots.try_lock()?;
        let pages = slots.empty_pages();
        if pages == 0 || slots.shut {
            return None;
        }
        // Queued under the lock, so never after `shutdown()` set `shut`. If already queued, the
        // clone is dropped here; the registration holds the pool still.
        let _ = work::queue().enqueue::<Arc<Pool>, 1>(this.into());
        Some(pages)
    }
}

#[kunit_tests(cmabuf_pool)]
mod tests {
    use super::*;

    #[test]
    fn pieces_first_fit_and_aligned() {
        let mut map = [0; WORDS];
        // 4 KiB at 0, then 64 KiB (16 pages) aligned to 16 pages: at 16, not 1.
        assert_eq!(find(&map, 1, alignment(1)), Some(0));
        mark(&mut map, 0, 1, true);
        assert_eq!(alignment(16), 16);
        assert_eq!(find(&map, 16, alignment(16)), Some(16));
        mark(&mut map, 16, 16, true);
        // The gap 1..16 takes small pieces.
        assert_eq!(find(&map, 3, alignment(3)), Some(4));
        assert_eq!(find(&map, 1, alignment(1)), Some(1));
        // Freed pages are found again.
        mark(&mut map, 16, 16, false);
        assert_eq!(find(&map, 16, alignment(16)), Some(16));
        assert!(!taken(&map, 16));
        assert!(taken(&map, 0));
    }

    #[test]
    fn full_and_largest() {
        let mut map = [0; WORDS];
        let piece = MAX_PIECE >> PAGE_SHIFT;
        assert_eq!(largest(&map, piece), piece);
        mark(&mut map, 0, CHUNK_PAGES, true);
        assert_eq!(find(&map, 1, 1), None);
        assert_eq!(largest(&map, piece), 0);
        // Every other 1 MiB free: 1 MiB pieces fit, larger do not exist.
        for i in (0..CHUNK_PAGES).step_by(2 * piece) {
            mark(&mut map, i, piece, false);
        }
        assert_eq!(largest(&map, piece), piece);
        // One page taken in each free MiB: the largest aligned piece is half of it.
        for i in (0..CHUNK_PAGES).step_by(2 * piece) {
            mark(&mut map, i + piece / 2, 1, true);
        }
        assert_eq!(largest(&map, piece), piece / 2);
    }
}
