// SPDX-License-Identifier: GPL-2.0

//! Memory that others still hold when its last owner lets go of it.
//!
//! A page-backed mapping (`CMABUF_ALLOC_PAGE_MAP`) lets `get_user_pages()`
//! take references to a buffer's pages: direct I/O and io_uring hold them
//! while a request runs, `vmsplice()` while a pipe holds the data. The buffer
//! may go meanwhile (handle freed, file closed, unmapped, unbind). Giving the
//! pages back to CMA then would let the region hand them to someone else
//! while the I/O still reads or writes them (in 7.2, `cma_release()` warns
//! about such pages and frees them anyway). So memory whose pages are still
//! held waits here, off every list userspace can reach, with every charge
//! its allocation took (the memory's owner keeps them: `mem.rs`), and a
//! delayed work item frees it once they are let go.
//!
//! The work stays bounded however many allocations wait and however often
//! new ones come: each waiting allocation has its own schedule (checked 10 ms
//! after it came, or at the pass already queued if that comes later, at most
//! a second away; then at doubling intervals up to 1 s), a pass checks only
//! the allocations whose time has come or comes within a quarter of their
//! interval (so that allocations that wait long fall into step and share
//! passes), and a check of an allocation starts at the page found held the
//! time before (a pipe typically holds one page for long), so a still-held
//! allocation costs one page look-up per check. With `n` allocations waiting
//! for long, that is about one pass and `n` look-ups a second; the passes'
//! cost is counted (debugfs `held_work_us`).
//!
//! Each waiting allocation holds a module reference, so the module cannot be
//! unloaded while memory waits; debugfs names who allocated each one. The
//! work item is cancelled (and a running one waited for) in module exit,
//! after the last allocation went.

use crate::{
    module_ref::{
        ModuleRef,
        ModuleRefs, //
    },
    work, //
};
use kernel::{
    impl_has_delayed_work, new_delayed_work, new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    time::{
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
    workqueue::{
        DelayedWork,
        WorkItem, //
    },
};

/// Who allocated a piece of memory, for debugfs: the allocating process and the device.
#[derive(Clone, Copy)]
pub(crate) struct Who {
    /// Thread group (process) id of the allocator.
    pub(crate) pid: i32,
    /// Its command name (`comm`), NUL-padded.
    pub(crate) comm: [u8; 16],
    /// The `N` of the `/dev/cmabufN` it was allocated on.
    pub(crate) dev: u32,
}

/// Something whose memory may still be held by others; dropping it frees the memory.
pub(crate) trait Held: Send {
    /// Whether anyone besides its owner still holds the memory. `hint` is where to start
    /// looking (a page index, 0 at first); set to where a holder was found.
    fn busy(&self, hint: &mut usize) -> bool;

    /// Its size in bytes, for the statistics.
    fn bytes(&self) -> usize;

    /// Who allocated it.
    fn who(&self) -> Who;
}

/// First delay before checking an allocation again, in ms.
const FIRST_DELAY_MS: i64 = 10;
/// Longest delay between checks of an allocation, in ms.
const MAX_DELAY_MS: i64 = 1000;

/// One waiting allocation and its schedule.
struct Waiter {
    /// The memory.
    item: KBox<dyn Held>,
    /// When it started waiting.
    since: Instant<Monotonic>,
    /// When it is checked next.
    next: Instant<Monotonic>,
    /// Delay after the next check, in ms.
    delay_ms: i64,
    /// Where the last check found a page held.
    hint: usize,
    /// Keeps the module loaded while the memory waits.
    module: ModuleRef,
}

/// What the waiting list's lock protects.
struct Waiting {
    /// Memory waiting for its pages to be let go.
    items: KVec<Waiter>,
    /// Allocations waiting or being freed.
    buffers: u64,
    /// Their bytes.
    bytes: u64,
    /// Allocations that ever had to wait (for the statistics and tests).
    total: u64,
    /// Passes of the work item.
    passes: u64,
    /// Checks of allocations, over all passes.
    checks: u64,
    /// Time spent in passes, in µs.
    work_us: u64,
}

/// The waiting list and the work item that frees what is let go. The module has one
/// (`held_global.rs`).
#[pin_data]
pub(crate) struct Reaper {
    /// Runs [`Reaper::reap`].
    #[pin]
    work: DelayedWork<Reaper>,
    /// The waiting memory.
    #[pin]
    waiting: Mutex<Waiting>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Reaper { self.work }
}

impl WorkItem for Reaper {
    type Pointer = Arc<Reaper>;

    fn run(this: Arc<Reaper>) {
        this.reap();
    }
}

/// Order of instants (the kernel crate does not order `Instant`s of every clock).
trait After {
    /// Whether `self` comes after `other`.
    fn after(&self, other: Self) -> bool;
}

impl After for Instant<Monotonic> {
    fn after(&self, other: Self) -> bool {
        (*self - other).as_nanos() > 0
    }
}

/// The earlier of `a` (if any) and `b`.
fn earlier(a: Option<Instant<Monotonic>>, b: Instant<Monotonic>) -> Instant<Monotonic> {
    match a {
        Some(a) if b.after(a) => a,
        _ => b,
    }
}

/// `delta` in jiffies for the work queue, at least one.
fn jiffies_of(delta: Delta) -> kernel::time::Jiffies {
    // CAST: Clamped to the range of `u32` milliseconds.
    msecs_to_jiffies(delta.as_millis().clamp(1, i64::from(u32::MAX)) as u32)
}

impl Reaper {
    /// Frees what is no longer held among the allocations whose check is due; schedules the next
    /// pass for the earliest check still to come.
    fn reap(self: Arc<Self>) {
        // Dropped last: once the references of the items freed below go, the module may go (the
        // work item is cancelled and waited for at exit, so returning from here is all that is
        // left).
        let mut modules = ModuleRefs::new();
        let start = Instant::<Monotonic>::now();
        let mut free = KVec::new();
        let next = {
            let mut w = self.waiting.lock();
            let now = Instant::<Monotonic>::now();
            let mut checks = 0;
            let mut i = 0;
            let mut next: Option<Instant<Monotonic>> = None;
            while i < w.items.len() {
                let waiter = &mut w.items[i];
                // Due now, or within a quarter of its interval: checked a little early, in step
                // with the others.
                let soon = now + Delta::from_millis(waiter.delay_ms / 4);
                if waiter.next.after(soon) {
                    next = Some(earlier(next, waiter.next));
                    i += 1;
                    continue;
                }
                checks += 1;
                if waiter.item.busy(&mut waiter.hint) || free.reserve(1, GFP_KERNEL).is_err() {
                    waiter.next = now + Delta::from_millis(waiter.delay_ms);
                    waiter.delay_ms = (waiter.delay_ms * 2).min(MAX_DELAY_MS);
                    next = Some(earlier(next, waiter.next));
                    i += 1;
                    continue;
                }
                // `i` is in bounds and room was reserved above: neither can fail. (Still counted
                // as held until freed below.)
                if let Ok(waiter) = w.items.remove(i) {
                    modules.add(waiter.module);
                    let _ = free.push(waiter.item, GFP_NOWAIT);
                }
            }
            w.passes += 1;
            w.checks += checks;
            next
        };
        let mut freed = (0u64, 0u64);
        for item in free {
            // CAST: A size in bytes fits in `u64`.
            freed = (freed.0 + 1, freed.1 + item.bytes() as u64);
            drop(item);
        }
        {
            let mut w = self.waiting.lock();
            // Counted as held until given back, so that nobody who sees none held finds memory
            // still on its way back.
            w.buffers -= freed.0;
            w.bytes -= freed.1;
            // CAST: A pass takes far less than `u64::MAX` µs.
            w.work_us += start.elapsed().as_micros_ceil().max(0) as u64;
        }
        if let Some(next) = next {
            let delay = next - Instant::<Monotonic>::now();
            // Already queued (by `hold()`) is as good: that pass reschedules.
            let _ = work::queue().enqueue_delayed(self, jiffies_of(delay));
        }
    }
}

impl Reaper {
    /// Keeps `item` until nobody else holds its memory, then drops it (from a work item).
    ///
    /// Called from the drop of memory's last owner, which runs in a context that holds the module
    /// (an open file, a mapping's file or a dma-buf).
    pub(crate) fn hold(reaper: Arc<Self>, item: KBox<dyn Held>) {
        // The caller holds the module (see above): it is not being unloaded.
        let Some(module) = ModuleRef::try_get() else {
            core::mem::forget(item);
            return;
        };
        let now = Instant::<Monotonic>::now();
        {
            let mut w = reaper.waiting.lock();
            // `push()` drops what it cannot store: make room first.
            if w.items.reserve(1, GFP_KERNEL).is_err() {
                // Never freed rather than freed while in use (the module stays pinned too).
                pr_err!("cmabuf: out of memory; a buffer whose pages are still held is leaked\n");
                core::mem::forget(item);
                core::mem::forget(module);
                return;
            }
            // CAST: A size in bytes fits in `u64`.
            w.bytes += item.bytes() as u64;
            w.buffers += 1;
            // Room was reserved above: cannot fail.
            let _ = w.items.push(
                Waiter {
                    item,
                    since: now,
                    next: now + Delta::from_millis(FIRST_DELAY_MS),
                    delay_ms: FIRST_DELAY_MS,
                    hint: 0,
                    module,
                },
                GFP_NOWAIT,
            );
            w.total += 1;
        }
        // A pass already queued (at most `MAX_DELAY_MS` away) checks this one too.
        let _ = work::queue().enqueue_delayed(reaper, msecs_to_jiffies(FIRST_DELAY_MS as u32));
    }
}

/// The figures of held memory (debugfs).
#[derive(Default)]
pub(crate) struct Figures {
    /// Allocations waiting now (or being freed).
    pub(crate) buffers: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// Allocations that ever waited.
    pub(crate) total: u64,
    /// Passes of the work item.
    pub(crate) passes: u64,
    /// Checks of allocations in them.
    pub(crate) checks: u64,
    /// Time the passes took, in µs.
    pub(crate) work_us: u64,
}

impl Reaper {
    /// The figures of held memory.
    pub(crate) fn stats(&self) -> Figures {
        let w = self.waiting.lock();
        Figures {
            buffers: w.buffers,
            bytes: w.bytes,
            total: w.total,
            passes: w.passes,
            checks: w.checks,
            work_us: w.work_us,
        }
    }

    /// Calls `f(who, bytes, ms held)` for each waiting allocation (under the list's lock: `f` must
    /// not sleep long).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Who, usize, i64)) {
        let w = self.waiting.lock();
        for waiter in w.items.iter() {
            f(
                &waiter.item.who(),
                waiter.item.bytes(),
                waiter.since.elapsed().as_millis(),
            );
        }
    }

    /// A new, empty waiting list.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Reaper {
                work <- new_delayed_work!("cmabuf_held"),
                waiting <- new_mutex!(Waiting {
                    items: KVec::new(),
                    buffers: 0,
                    bytes: 0,
                    total: 0,
                    passes: 0,
                    checks: 0,
                    work_us: 0,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// At module exit, when nothing waits (each waiting allocation holds the module): the work is
    /// not queued, but may still be running after freeing the last one; waits for it to return.
    pub(crate) fn shut(&self) {
        if work::cancel_delayed_sync(&self.work) {
            pr_warn!("cmabuf: a pending check of held memory was cancelled at exit\n");
        }
    }
}
