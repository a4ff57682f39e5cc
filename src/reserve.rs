// SPDX-License-Identifier: GPL-2.0

//! A node's ready reserve: memory of the region taken ahead of need, so that
//! allocations that fit cost what an idle region costs.
//!
//! CMA lends its region to movable pages (page cache, anonymous memory) while
//! no device needs it; an allocation must first migrate them, and a camera
//! that starts streaming on a board that has been up a while stalls for that.
//! The reserve takes an amount of the region (`cmabuf,ready-reserve` in the
//! device tree, `ready_reserve` in sysfs; 0 by default) in the background,
//! through the same migration-aware path as any allocation, and holds it as
//! zeroed, unmapped allocations ([`Ready`]) of one size, the unit: the one the
//! integrator or the administrator fixed (`cmabuf,ready-reserve-unit`,
//! `ready_reserve_unit`), or else the size of the last allocation it could not
//! serve (a camera's frame buffers), [`DEFAULT_UNIT`] until one came. An
//! allocation of exactly that size takes one, in its cache mode, and is
//! charged and counted like any other; the reserve refills behind it. Others
//! take the ordinary path.
//!
//! A learned unit follows whoever allocates on the node: any member of `video`
//! can have the reserve give back its frame-sized pieces and take pieces of
//! another size (each miss of a new size costs a refill, in the background,
//! at most one piece at a time). A node whose reserve serves one camera has
//! its unit fixed; then no caller's size changes it.
//!
//! A cache, never a hoard:
//!
//! - the refill runs from a work item, one piece at a time, and waits while
//!   any allocation of the node is in progress (it does not compete with
//!   one), for a second at most: then it takes one piece beside them;
//! - memory pressure gives the whole reserve back (the same [`Shrinker`] as
//!   the pool's chunks, from a work item), and the refill waits
//!   [`PRESSURE_BACKOFF_MS`] after that;
//! - an allocation that finds no room has the reserve given back, a piece at
//!   a time, before it retries;
//! - unbind gives it back and stops the refill.
//!
//! [`Shrinker`]: crate::shrinker::Shrinker

use crate::{
    dmamem::{
        Alloc,
        Ready, //
    },
    region::RegionRef,
    shrinker::Shrink,
    validate::Mode,
    work, //
};
use core::sync::atomic::{
    AtomicUsize,
    Ordering, //
};
use kernel::{
    impl_has_delayed_work, impl_has_work, new_delayed_work, new_mutex, new_work,
    page::PAGE_SHIFT,
    prelude::*,
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
    workqueue::{
        DelayedWork,
        Work,
        WorkItem, //
    },
};

/// The size of the reserve's pieces until an allocation it could not serve names one: a
/// pageblock, CMA's unit of isolation.
pub(crate) const DEFAULT_UNIT: usize = 4 << 20;
/// How long the refill waits after memory pressure took the reserve back, in ms.
pub(crate) const PRESSURE_BACKOFF_MS: u32 = 10_000;
/// How long the refill waits while allocations of the node are in progress, in ms, and how many
/// times in a row at most (1 s): allocations that never pause, which any member of `video` can
/// keep up, must not keep the reserve empty; after that it takes one piece beside them.
const BUSY_WAIT_MS: u32 = 20;
const BUSY_WAITS: u32 = 50;
/// How long the refill waits after the region had no piece for it, in ms: the first time, and
/// at most (doubling in between, as allocations back off).
const FIRST_FAIL_WAIT_MS: u32 = 20;
const FAIL_WAIT_MS: u32 = 1000;
/// Free pages outside the CMA areas, beyond what a piece would move there, below which the refill
/// waits (when the CMA areas have fewer free pages than the piece, taking it likely migrates
/// movable pages out into ordinary memory, which must not run short for that: 32 MiB).
const MIN_FREE_OTHER_PAGES: usize = 8192;
/// How long after bind the first fill starts, in ms: the node's probe and the boot's other work
/// go first, and a node unbound at once (rebinding, rmmod) takes nothing.
const FIRST_FILL_MS: u32 = 500;

/// What the reserve's lock protects.
struct State {
    /// Bytes to keep ready.
    target: usize,
    /// The size of the pieces.
    unit: usize,
    /// Whether `unit` was fixed by the integrator or the administrator (else it is learned).
    fixed: bool,
    /// The pieces.
    ready: KVec<Ready>,
    /// Bytes of live buffers it served: part of the target until they go.
    lent: usize,
    /// Allocations served from the reserve.
    hits: u64,
    /// Allocations it could not serve while it was on.
    misses: u64,
    /// How long the last refill took, from the first piece it took to the reserve full, in µs.
    refill_us: u64,
    /// When the refill under way started, if one is.
    refill_start: Option<Instant<Monotonic>>,
    /// When memory pressure last took the reserve back.
    shrunk_at: Option<Instant<Monotonic>>,
    /// How long the refill waits after its next failure, in ms.
    fail_ms: u32,
    /// How many times in a row the refill found allocations in progress and waited.
    busy_waits: u32,
    /// Set at unbind: no more refill, nothing kept.
    shut: bool,
}

impl State {
    /// Bytes held, of every size.
    fn filled(&self) -> usize {
        self.ready.iter().map(Ready::size).sum()
    }

    /// Bytes ready for the buffers it serves: in pieces of the current size (others are on their
    /// way back).
    fn ready_bytes(&self) -> usize {
        self.ready
            .iter()
            .map(Ready::size)
            .filter(|&size| size == self.unit)
            .sum()
    }
}

/// The figures of a reserve.
#[derive(Default)]
pub(crate) struct Figures {
    /// Bytes it keeps ready when full.
    pub(crate) target: u64,
    /// Bytes ready now.
    pub(crate) filled: u64,
    /// Bytes of live buffers it served.
    pub(crate) lent: u64,
    /// The size of its pieces.
    pub(crate) unit: u64,
    /// Whether that size was fixed (else it follows the allocations it misses).
    pub(crate) fixed: bool,
    /// Allocations served from it.
    pub(crate) hits: u64,
    /// Allocations it could not serve while on.
    pub(crate) misses: u64,
    /// How long the last refill took, in µs.
    pub(crate) refill_us: u64,
}

/// A node's ready reserve; see the module documentation.
#[pin_data]
pub(crate) struct Reserve {
    /// The region the reserve is taken from.
    region: RegionRef,
    /// The pieces and figures.
    #[pin]
    state: Mutex<State>,
    /// Allocations of the node in progress ([`Reserve::busy`]).
    busy: AtomicUsize,
    /// Held by the refill under way: one at a time (the work items and an administrator's
    /// write), so that two never take a piece for the same room (one would be given back
    /// again, a migration for nothing, and the region would meanwhile hold more than the
    /// target).
    #[pin]
    filling: Mutex<()>,
    /// Takes the reserve from the region.
    #[pin]
    fill: DelayedWork<Reserve, 0>,
    /// Gives the whole reserve back now (queued by the shrinker).
    #[pin]
    drain: Work<Reserve, 1>,
    /// Takes the reserve from the region now (a work item of its own, so that a refill asked
    /// for now never waits for one queued for later).
    #[pin]
    now: Work<Reserve, 2>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self, 0> for Reserve { self.fill }
}

impl_has_work! {
    impl HasWork<Self, 1> for Reserve { self.drain }
    impl HasWork<Self, 2> for Reserve { self.now }
}

impl WorkItem<2> for Reserve {
    type Pointer = Arc<Reserve>;

    fn run(this: Arc<Reserve>) {
        this.refill();
    }
}

impl WorkItem<0> for Reserve {
    type Pointer = Arc<Reserve>;

    fn run(this: Arc<Reserve>) {
        this.refill();
    }
}

impl WorkItem<1> for Reserve {
    type Pointer = Arc<Reserve>;

    fn run(this: Arc<Reserve>) {
        Reserve::drain(this);
    }
}

impl Reserve {
    /// Memory pressure: gives every piece back, and has the refill wait.
    fn drain(this: Arc<Self>) {
        let gone = {
            let mut s = this.state.lock();
            s.shrunk_at = Some(Instant::now());
            core::mem::take(&mut s.ready)
        };
        drop(gone);
        // Refilled once the pressure has passed.
        Self::kick(&this, PRESSURE_BACKOFF_MS);
    }
}

/// Memory the reserve served, counted against its target until it goes back to the region
/// (dropped after it: a field of the buffer's memory after the allocation); then the reserve
/// refills.
pub(crate) struct Lent {
    /// The reserve.
    reserve: Arc<Reserve>,
    /// Bytes lent.
    bytes: usize,
}

impl Drop for Lent {
    fn drop(&mut self) {
        {
            let mut s = self.reserve.state.lock();
            s.lent = s.lent.saturating_sub(self.bytes);
        }
        Reserve::kick(&self.reserve, 0);
    }
}

/// An allocation of the node in progress: the refill waits while one is.
pub(crate) struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl Reserve {
    /// A reserve of `target` bytes from `region` in pieces of `unit` bytes (`None`: learned),
    /// filled in the background.
    pub(crate) fn new(region: &RegionRef, target: usize, unit: Option<usize>) -> Result<Arc<Self>> {
        let this = Arc::pin_init(
            pin_init!(Self {
                region: region.clone(),
                state <- new_mutex!(State {
                    target,
                    unit: unit.unwrap_or(DEFAULT_UNIT),
                    fixed: unit.is_some(),
                    ready: KVec::new(),
                    lent: 0,
                    hits: 0,
                    misses: 0,
                    refill_us: 0,
                    refill_start: None,
                    shrunk_at: None,
                    fail_ms: FIRST_FAIL_WAIT_MS,
                    busy_waits: 0,
                    shut: false,
                }),
                busy: AtomicUsize::new(0),
                filling <- new_mutex!(()),
                fill <- new_delayed_work!("cmabuf_reserve_fill"),
                drain <- new_work!("cmabuf_reserve_drain"),
                now <- new_work!("cmabuf_reserve_now"),
            }),
            GFP_KERNEL,
        )?;
        Self::kick(&this, FIRST_FILL_MS);
        Ok(this)
    }

    /// Queues the refill in `ms` (if the reserve is on and not shut; already queued is as good
    /// for each of the two work items, now and later).
    fn kick(this: &Arc<Self>, ms: u32) {
        let s = this.state.lock();
        if s.target != 0 && !s.shut {
            // Queued under the lock, so never after `shutdown()` set `shut`.
            if ms == 0 {
                let _ = work::queue().enqueue::<Arc<Reserve>, 2>(this.clone());
            } else {
                let _ = work::queue()
                    .enqueue_delayed::<Arc<Reserve>, 0>(this.clone(), msecs_to_jiffies(ms));
            }
        }
    }

    /// The region had nothing for the refill: it tries again later, waiting twice as long each
    /// time up to [`FAIL_WAIT_MS`].
    fn retry_later(this: &Arc<Self>) {
        let ms = {
            let mut s = this.state.lock();
            let ms = s.fail_ms;
            s.fail_ms = (ms * 2).min(FAIL_WAIT_MS);
            ms
        };
        Self::kick(this, ms);
    }

    /// Marks an allocation of the node in progress until the guard drops.
    pub(crate) fn busy(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::Acquire);
        Busy(&self.busy)
    }

    /// An allocation of `len` bytes in `mode` from the reserve, if it holds one of that size (and
    /// the mode can be made from it), and its loan; otherwise notes `len` as the size to keep,
    /// for the next refill.
    pub(crate) fn take(this: &Arc<Self>, len: usize, mode: Mode) -> Option<(Alloc, Lent)> {
        let ready = {
            let mut s = this.state.lock();
            if s.target == 0 || s.shut {
                return None;
            }
            match s.ready.iter().position(|r| r.size() == len) {
                // Lent from here on, so that the refill does not count it out meanwhile.
                Some(i) => s.ready.remove(i).ok().inspect(|_| s.lent += len),
                None => {
                    s.misses += 1;
                    // The node's buffers are this size now, unless the unit is fixed (a larger
                    // one than the reserve would hold is not one it can serve).
                    if !s.fixed && len <= s.target {
                        s.unit = len;
                    }
                    None
                }
            }
        };
        let got = match ready.map(|r| r.into_alloc(mode)) {
            Some(Ok(alloc)) => Some(alloc),
            // Not a mode the reserve can make (see `Ready::into_alloc`): back, unused.
            Some(Err(ready)) => {
                let mut s = this.state.lock();
                s.misses += 1;
                s.lent -= len;
                if !s.shut {
                    // Room was there: it was just taken out.
                    let _ = s.ready.push(ready, GFP_KERNEL);
                }
                None
            }
            None => None,
        };
        let got = got.map(|alloc| {
            this.state.lock().hits += 1;
            (
                alloc,
                Lent {
                    reserve: this.clone(),
                    bytes: len,
                },
            )
        });
        Self::kick(this, 0);
        got
    }

    /// Gives one piece back to the region (an allocation found no room); whether there was one.
    pub(crate) fn release_one(&self) -> bool {
        let gone = self.state.lock().ready.pop();
        gone.is_some()
    }

    /// Sets the bytes to keep ready: the pieces beyond it go back now, and the rest is taken
    /// in the caller's context (the administrator's write returns with the reserve full), or
    /// in the background where the region cannot provide it now.
    pub(crate) fn set_target(this: &Arc<Self>, target: usize) {
        let mut gone = KVec::new();
        {
            let mut s = this.state.lock();
            s.target = target;
            // The administrator's word: refilled now, even after memory pressure.
            s.shrunk_at = None;
            while s.filled() + s.lent > target && !s.ready.is_empty() {
                if let Some(r) = s.ready.pop() {
                    let _ = gone.push(r, GFP_KERNEL);
                }
            }
        }
        drop(gone);
        this.clone().refill();
    }

    /// Fixes the size of the pieces (`None`: learned from the allocations it misses, from the
    /// next one on): pieces of another size go back and the reserve refills, in the caller's
    /// context as for [`Reserve::set_target`].
    pub(crate) fn set_unit(this: &Arc<Self>, unit: Option<usize>) {
        {
            let mut s = this.state.lock();
            s.fixed = unit.is_some();
            if let Some(unit) = unit {
                s.unit = unit;
            }
            s.shrunk_at = None;
        }
        this.clone().refill();
    }

    /// Takes pieces from the region until the reserve is full; waits while allocations are in
    /// progress, after memory pressure, and when the region has nothing for it.
    fn refill(self: Arc<Self>) {
        let _one = self.filling.lock();
        loop {
            let unit = {
                let mut s = self.state.lock();
                if s.shut || s.target == 0 {
                    s.refill_start = None;
                    return;
                }
                let pressure = s.shrunk_at.map(|t| t.elapsed().as_millis());
                if let Some(ms) = pressure.filter(|&ms| ms < PRESSURE_BACKOFF_MS.into()) {
                    // CAST: Below `PRESSURE_BACKOFF_MS`, which fits in `u32`.
                    let left = (i64::from(PRESSURE_BACKOFF_MS) - ms).max(1) as u32;
                    let _ = work::queue()
                        .enqueue_delayed::<Arc<Reserve>, 0>(self.clone(), msecs_to_jiffies(left));
                    return;
                }
                if self.busy.load(Ordering::Acquire) != 0 && s.busy_waits < BUSY_WAITS {
                    s.busy_waits += 1;
                    let _ = work::queue().enqueue_delayed::<Arc<Reserve>, 0>(
                        self.clone(),
                        msecs_to_jiffies(BUSY_WAIT_MS),
                    );
                    return;
                }
                s.busy_waits = 0;
                // Pieces of another size than the node now uses go first.
                let unit = s.unit;
                if let Some(i) = s.ready.iter().position(|r| r.size() != unit) {
                    let gone = s.ready.remove(i);
                    drop(s);
                    drop(gone);
                    continue;
                }
                if s.filled() + s.lent + unit > s.target {
                    if let Some(start) = s.refill_start.take() {
                        // CAST: Elapsed time is never negative.
                        s.refill_us = start.elapsed().as_micros_ceil() as u64;
                    }
                    return;
                }
                if s.refill_start.is_none() {
                    s.refill_start = Some(Instant::now());
                }
                unit
            };
            // No room left by the region's allocations (the DMA API would fall back to memory
            // outside the region): later.
            // CAST: `usize` fits in `u64`.
            if !self.region.has_room(unit as u64).unwrap_or(false) {
                Self::retry_later(&self);
                return;
            }
            // Not at the expense of ordinary memory: a piece the free CMA pages cannot hold is
            // taken by migrating movable pages out, which ordinary memory must have room for.
            let pages = unit >> PAGE_SHIFT;
            if crate::region::free_cma_pages() < pages
                && crate::region::free_other_pages() < pages + MIN_FREE_OTHER_PAGES
            {
                Self::retry_later(&self);
                return;
            }
            // Sleeps while CMA migrates pages; no lock held.
            let piece = match Ready::new(&self.region, unit) {
                Ok(Some(piece)) => piece,
                // Nothing in the region for it now (or memory outside it): later.
                Ok(None) | Err(_) => {
                    Self::retry_later(&self);
                    return;
                }
            };
            let mut s = self.state.lock();
            if s.shut || s.unit != unit || s.filled() + s.lent + unit > s.target {
                // Unbind, or the target or the size changed meanwhile: not wanted.
                drop(s);
                drop(piece);
                continue;
            }
            // `push()` drops what it cannot store (out of kernel memory): later.
            if s.ready.push(piece, GFP_KERNEL).is_err() {
                drop(s);
                Self::retry_later(&self);
                return;
            }
            s.fail_ms = FIRST_FAIL_WAIT_MS;
        }
    }

    /// The reserve's figures.
    pub(crate) fn figures(&self) -> Figures {
        let s = self.state.lock();
        // CAST: Sizes fit in `u64`.
        Figures {
            target: s.target as u64,
            filled: s.ready_bytes() as u64,
            lent: s.lent as u64,
            unit: s.unit as u64,
            fixed: s.fixed,
            hits: s.hits,
            misses: s.misses,
            refill_us: s.refill_us,
        }
    }

    /// Unbind: no more refill (a running one is waited for), everything given back.
    pub(crate) fn shutdown(this: &Arc<Self>) {
        this.state.lock().shut = true;
        // Work queued before `shut` was set runs now; none is queued after. Flushed, not
        // cancelled: a pending item holds a reference to the reserve, which only its run gives
        // back (cancelling would leak it, and the region with it). Run now, it sees `shut` and
        // returns.
        work::flush_delayed(&this.fill);
        work::flush(&this.drain);
        work::flush(&this.now);
        let gone = core::mem::take(&mut this.state.lock().ready);
        drop(gone);
    }

    /// Pages ready, for the shrinker; 0 if the lock is taken (reclaim must not wait for it).
    fn ready_pages(&self) -> usize {
        match self.state.try_lock() {
            Some(s) => s.filled() >> PAGE_SHIFT,
            None => 0,
        }
    }
}

/// Memory pressure has the whole reserve given back, from a work item (freeing takes locks whose
/// holders may be allocating, i.e. in reclaim, right now); objects are pages.
impl Shrink for Reserve {
    fn count(this: ArcBorrow<'_, Self>) -> usize {
        this.ready_pages()
    }

    fn scan(this: ArcBorrow<'_, Self>) -> Option<usize> {
        let s = this.state.try_lock()?;
        let pages = s.filled() >> PAGE_SHIFT;
        if pages == 0 || s.shut {
            return None;
        }
        // Queued under the lock, so never after `shutdown()` set `shut`.
        let _ = work::queue().enqueue::<Arc<Reserve>, 1>(this.into());
        Some(pages)
    }
}
