// SPDX-License-Identifier: GPL-2.0

//! Accounting: what a bound node has handed out, its limit, its statistics.
//!
//! A [`Ledger`] holds one node's figures; it lives as long as anything that
//! counts in it (the binding, open files, buffers), so a buffer that outlives
//! the binding still gives its bytes back to the ledger it was charged to.
//! A [`Charge`] is the one owner of a buffer's bytes in a ledger: it reserves
//! them against the limit when an allocation starts, counts them as live once
//! the buffer is handed out ([`Ledger::hand_out`]), and gives back exactly
//! what it took when it drops, with the buffer's memory.

use crate::policy::{
    self,
    HIST_BUCKETS, //
};
use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

/// Allocation statistics of a device; see `struct cmabuf_stats` in the uapi header.
#[derive(Clone, Copy, Default)]
pub(crate) struct Stats {
    /// Successful allocations.
    pub(crate) allocs: u64,
    /// `ENOMEM`: no room left by cmabuf's own buffers.
    pub(crate) fail_nomem: u64,
    /// `EBUSY`: room, but retries spent.
    pub(crate) fail_busy: u64,
    /// `EINTR`: a signal arrived.
    pub(crate) fail_intr: u64,
    /// Refused by a limit.
    pub(crate) fail_limit: u64,
    /// Memory from outside the region, given back.
    pub(crate) fallbacks: u64,
    /// Retries.
    pub(crate) retries: u64,
    /// Buffers allocated now.
    pub(crate) live_buffers: u64,
    /// Their bytes.
    pub(crate) live_bytes: u64,
    /// Most bytes at once.
    pub(crate) peak_bytes: u64,
    /// Largest range cmabuf's own buffers leave free.
    pub(crate) largest_free: u64,
    /// Latency of successful allocations, log2 µs buckets.
    pub(crate) hist: [u64; HIST_BUCKETS],
    /// dma-bufs created.
    pub(crate) exports: u64,
    /// dma-bufs alive.
    pub(crate) live_dmabufs: u64,
    /// Bytes the small buffers' chunks take from the region (filled in snapshots).
    pub(crate) pool_bytes: u64,
    /// Of them, bytes no buffer holds (filled in snapshots).
    pub(crate) pool_free_bytes: u64,
    /// Buffers gone whose pages others still hold (in `live_buffers` too).
    pub(crate) held_buffers: u64,
    /// Their bytes (in `live_bytes` too).
    pub(crate) held_bytes: u64,
    /// The ready reserve's target (filled in snapshots).
    pub(crate) reserve_bytes: u64,
    /// Of it, bytes ready (filled in snapshots).
    pub(crate) reserve_ready_bytes: u64,
    /// Of it, bytes of live buffers it served (filled in snapshots).
    pub(crate) reserve_lent_bytes: u64,
    /// The size of its pieces (filled in snapshots).
    pub(crate) reserve_unit: u64,
    /// Allocations it served (filled in snapshots).
    pub(crate) reserve_hits: u64,
    /// Allocations it could not serve (filled in snapshots).
    pub(crate) reserve_misses: u64,
    /// How long its last refill took, in µs (filled in snapshots).
    pub(crate) reserve_refill_us: u64,
}

/// What the ledger's lock protects.
struct Figures {
    /// Bytes charged: live buffers and allocations in progress; what the limit counts.
    charged_bytes: u64,
    /// Charges alive: buffers whose memory is still taken, and allocations in progress.
    charged_buffers: u64,
    /// Counters and the latency histogram (`live_*` and `largest_free` filled in snapshots).
    stats: Stats,
}

/// One node's accounting and statistics.
#[pin_data]
pub(crate) struct Ledger {
    /// The figures.
    #[pin]
    figures: Mutex<Figures>,
}

impl Ledger {
    /// An empty ledger.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                figures <- new_mutex!(Figures {
                    charged_bytes: 0,
                    charged_buffers: 0,
                    stats: Stats::default(),
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Charges one buffer of `bytes` against `limit` bytes and `max_buffers` buffers (`u64::MAX`:
    /// none): `EDQUOT` beyond the byte limit, `EMFILE` beyond the buffer limit (both counted).
    pub(crate) fn charge(
        this: &Arc<Self>,
        bytes: u64,
        limit: u64,
        max_buffers: u64,
    ) -> Result<Charge> {
        let mut f = this.figures.lock();
        if f.charged_buffers >= max_buffers {
            f.stats.fail_limit += 1;
            return Err(EMFILE);
        }
        match f.charged_bytes.checked_add(bytes) {
            Some(total) if total <= limit => {
                f.charged_bytes = total;
                f.charged_buffers += 1;
                Ok(Charge {
                    ledger: this.clone(),
                    bytes,
                    live: AtomicBool::new(false),
                })
            }
            _ => {
                f.stats.fail_limit += 1;
                Err(crate::validate::edquot())
            }
        }
    }

    /// Updates the counters.
    pub(crate) fn count(&self, update: impl FnOnce(&mut Stats)) {
        update(&mut self.figures.lock().stats);
    }

    /// The buffer `charge` belongs to was handed to userspace: count it (live bytes, peak,
    /// allocations, the latency `us` of its allocation). Only buffers handed out are counted, so
    /// a call that fails after allocating leaves the statistics as they were.
    pub(crate) fn hand_out(&self, charge: &Charge, us: u64) {
        let mut f = self.figures.lock();
        if charge.live.swap(true, Ordering::Relaxed) {
            return;
        }
        let stats = &mut f.stats;
        stats.live_buffers += 1;
        stats.live_bytes += charge.bytes;
        stats.peak_bytes = stats.peak_bytes.max(stats.live_bytes);
        stats.allocs += 1;
        stats.hist[policy::bucket(us)] += 1;
    }

    /// A snapshot of the statistics (`largest_free` is the caller's to fill in).
    pub(crate) fn stats(&self) -> Stats {
        self.figures.lock().stats
    }

    /// `(buffers, bytes)` handed out and not yet gone.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let f = self.figures.lock();
        (f.stats.live_buffers, f.stats.live_bytes)
    }
}

/// A buffer's bytes in a [`Ledger`]; given back when this drops. The one owner of those numbers.
pub(crate) struct Charge {
    /// The ledger.
    ledger: Arc<Ledger>,
    /// Bytes charged.
    bytes: u64,
    /// Whether the buffer was handed out (counted in the live figures).
    live: AtomicBool,
}

impl Charge {
    /// The ledger charged.
    pub(crate) fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut f = self.ledger.figures.lock();
        f.charged_bytes -= self.bytes;
        f.charged_buffers -= 1;
        if *self.live.get_mut() {
            f.stats.live_buffers -= 1;
            f.stats.live_bytes -= self.bytes;
        }
    }
}
