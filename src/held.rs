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
//! held waits here, off every list userspace can reach, and a delayed work
//! item frees it once they are let go, checking again at growing intervals
//! (10 ms doubling to 1 s).
//!
//! Each waiting allocation holds a module reference, so the module cannot be
//! unloaded while memory waits; the work item is cancelled (and a running one
//! waited for) in module exit, after the last allocation went.

use kernel::{
    bindings, impl_has_delayed_work, new_delayed_work, new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    time::msecs_to_jiffies,
    workqueue::{
        DelayedWork,
        Queue,
        WorkItem, //
    },
};

/// Something whose memory may still be held by others; dropping it frees the memory.
pub(crate) trait Held: Send {
    /// Whether anyone besides its owner still holds the memory.
    fn busy(&self) -> bool;

    /// Its size in bytes, for the statistics.
    fn bytes(&self) -> usize;
}

/// First delay before checking again, in ms.
const FIRST_DELAY_MS: u32 = 10;
/// Longest delay between checks, in ms.
const MAX_DELAY_MS: u32 = 1000;

/// What the waiting list's lock protects.
struct Waiting {
    /// Memory waiting for its pages to be let go.
    items: KVec<KBox<dyn Held>>,
    /// Delay before the next check.
    delay_ms: u32,
    /// Allocations that ever had to wait (for the statistics and tests).
    total: u64,
}

/// The waiting list and the work item that frees what is let go.
#[pin_data]
struct Reaper {
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

kernel::sync::global_lock! {
    // SAFETY: `Owner::new()` initialises it in module init, before the driver is registered.
    unsafe(uninit) static REAPER: Mutex<Option<Arc<Reaper>>> = None;
}

/// The workqueue checks run on: `system_dfl_wq`, the unbound one (the kernel crate's `system()`
/// and `system_unbound()` name the deprecated `system_wq` and `system_unbound_wq`).
pub(crate) fn queue() -> &'static Queue {
    // SAFETY: `system_dfl_wq` is a C global, set up before modules load and never freed.
    unsafe { Queue::from_raw(bindings::system_dfl_wq) }
}

/// The module's own reference count.
fn this_module() -> *mut bindings::module {
    &raw mut bindings::__this_module
}

impl Reaper {
    /// Frees what is no longer held; schedules another check if anything still waits.
    fn reap(self: Arc<Self>) {
        let mut free = KVec::new();
        let again = {
            let mut w = self.waiting.lock();
            let mut i = 0;
            while i < w.items.len() {
                if w.items[i].busy() || free.reserve(1, GFP_KERNEL).is_err() {
                    i += 1;
                    continue;
                }
                // `i` is in bounds and room was reserved above: neither can fail.
                if let Ok(item) = w.items.remove(i) {
                    let _ = free.push(item, GFP_NOWAIT);
                }
            }
            w.delay_ms = (w.delay_ms * 2).min(MAX_DELAY_MS);
            (!w.items.is_empty()).then_some(w.delay_ms)
        };
        for item in free {
            drop(item);
            // SAFETY: `hold()` took this reference for the item just freed.
            unsafe { bindings::module_put(this_module()) };
        }
        if let Some(ms) = again {
            // Already queued (by `hold()`) is as good.
            let _ = queue().enqueue_delayed(self, msecs_to_jiffies(ms));
        }
    }
}

/// Keeps `item` until nobody else holds its memory, then drops it (from a work item).
///
/// Called from the drop of memory's last owner, which runs in a context that holds the module
/// (an open file, a mapping's file or a dma-buf).
pub(crate) fn hold(item: KBox<dyn Held>) {
    let Some(reaper) = REAPER.lock().clone() else {
        // Only before module init or after module exit, when no memory exists: keep it forever
        // rather than free memory that is still in use.
        core::mem::forget(item);
        return;
    };
    // SAFETY: The caller holds the module (see above), so taking another reference is sound.
    unsafe { bindings::__module_get(this_module()) };
    {
        let mut w = reaper.waiting.lock();
        // `push()` drops what it cannot store: make room first.
        if w.items.reserve(1, GFP_KERNEL).is_err() {
            // Never freed rather than freed while in use (the module stays pinned too).
            pr_err!("cmabuf: out of memory; a buffer whose pages are still held is leaked\n");
            core::mem::forget(item);
            return;
        }
        // Room was reserved above: cannot fail.
        let _ = w.items.push(item, GFP_NOWAIT);
        w.total += 1;
        w.delay_ms = FIRST_DELAY_MS;
    }
    let _ = queue().enqueue_delayed(reaper, msecs_to_jiffies(FIRST_DELAY_MS));
}

/// `(allocations waiting now, their bytes, allocations that ever waited)`.
pub(crate) fn stats() -> (u64, u64, u64) {
    let Some(reaper) = REAPER.lock().clone() else {
        return (0, 0, 0);
    };
    let w = reaper.waiting.lock();
    let bytes = w.items.iter().map(|i| i.bytes() as u64).sum();
    // CAST: A count of allocations fits in `u64`.
    (w.items.len() as u64, bytes, w.total)
}

/// Owner of the waiting list, from module init to module exit.
pub(crate) struct Owner;

impl Owner {
    /// Sets up the waiting list and its work item.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Called once, in module init, before any other use.
        unsafe { REAPER.init() };
        let reaper = Arc::pin_init(
            pin_init!(Reaper {
                work <- new_delayed_work!("cmabuf_held"),
                waiting <- new_mutex!(Waiting {
                    items: KVec::new(),
                    delay_ms: FIRST_DELAY_MS,
                    total: 0,
                }),
            }),
            GFP_KERNEL,
        )?;
        *REAPER.lock() = Some(reaper);
        Ok(Self)
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let Some(reaper) = REAPER.lock().take() else {
            return;
        };
        // Nothing waits (each waiting allocation holds the module), so the work is not queued;
        // it may still be running after freeing the last one: wait for it to return.
        // CAST: `DelayedWork` is a transparent wrapper of `struct delayed_work`.
        let dwork = core::ptr::from_ref(&reaper.work)
            .cast::<bindings::delayed_work>()
            .cast_mut();
        // SAFETY: `dwork` was initialised by `new_delayed_work!` and lives as long as `reaper`.
        if unsafe { bindings::cancel_delayed_work_sync(dwork) } {
            pr_warn!("cmabuf: a pending check of held memory was cancelled at exit\n");
        }
    }
}
