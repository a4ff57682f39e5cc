// SPDX-License-Identifier: GPL-2.0

//! How allocations behave under pressure: retries and back-off, whether the
//! region has room, and the latency histogram. Pure logic, covered by KUnit.
//!
//! CMA may fail to hand out a range that is free in its bitmap when a page
//! in it is briefly pinned (migration gets `-EBUSY`), or when another user of
//! the region (the mainline CMA heap, say) holds pages there. The module
//! cannot see CMA's bitmap, but it knows where its own buffers are. So:
//!
//! - if cmabuf's own buffers leave no free, suitably aligned range of the
//!   requested size, the region is full for this request: `ENOMEM` at once;
//! - otherwise a failure is treated as transient and retried with
//!   exponential back-off ([`RetryPolicy`]); when the retries are spent the
//!   answer is `EBUSY` ("busy: try again later").

use kernel::prelude::*;

/// Retry count and back-off for allocations that fail although the region has room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) retries: u32,
    /// Delay before the first retry, in milliseconds; doubles each retry.
    pub(crate) backoff_ms: u32,
}

/// The longest single back-off, in milliseconds.
pub(crate) const MAX_BACKOFF_MS: u32 = 1000;

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based), or `None` when retries are spent.
    pub(crate) fn delay_ms(&self, retry: u32) -> Option<u32> {
        if retry >= self.retries {
            return None;
        }
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        Some(self.backoff_ms.saturating_mul(factor).min(MAX_BACKOFF_MS))
    }
}

/// The alignment CMA uses for a request of `size` bytes: `min(get_order(size), max_order)`
/// pages, as `cma_alloc_aligned()` does (`max_order` is `CONFIG_CMA_ALIGNMENT`).
pub(crate) fn cma_alignment(size: u64, page_size: u64, max_order: u32) -> u64 {
    let pages = size.div_ceil(page_size).max(1);
    let order = (64 - (pages - 1).leading_zeros()).min(max_order);
    page_size << order
}

/// The largest request (a multiple of pages) that `used` (sorted, non-overlapping
/// `(start, len)` ranges inside the window) leaves room for, ignoring alignment.
pub(crate) fn largest_free(used: &[(u64, u64)], window_start: u64, window_len: u64) -> u64 {
    let mut best = 0;
    let mut at = window_start;
    for &(start, len) in used {
        best = best.max(start.saturating_sub(at));
        at = at.max(start.saturating_add(len));
    }
    best.max((window_start + window_len).saturating_sub(at))
}

/// Whether a free range of `size` bytes aligned to `align` exists in the window outside `used`
/// (sorted, non-overlapping `(start, len)` ranges).
pub(crate) fn fits(
    used: &[(u64, u64)],
    window_start: u64,
    window_len: u64,
    size: u64,
    align: u64,
) -> bool {
    let end = window_start + window_len;
    let mut at = window_start;
    let gap_fits = |from: u64, to: u64| {
        let start = from.div_ceil(align) * align;
        start.checked_add(size).is_some_and(|e| e <= to)
    };
    for &(start, len) in used {
        if gap_fits(at, start) {
            return true;
        }
        at = at.max(start.saturating_add(len));
    }
    gap_fits(at, end)
}

/// Buckets of the latency histogram: bucket `i` counts latencies in `[2^i, 2^(i+1))` µs,
/// bucket 0 also below 1 µs, the last one everything above.
pub(crate) const HIST_BUCKETS: usize = 24;

/// The histogram bucket of a latency of `us` microseconds.
pub(crate) fn bucket(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    // CAST: `ilog2` of a `u64` is below 64.
    (us.ilog2() as usize).min(HIST_BUCKETS - 1)
}

#[kunit_tests(cmabuf_policy)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn backoff_doubles_and_stops() {
        let p = RetryPolicy {
            retries: 4,
            backoff_ms: 10,
        };
        assert_eq!(p.delay_ms(0), Some(10));
        assert_eq!(p.delay_ms(1), Some(20));
        assert_eq!(p.delay_ms(3), Some(80));
        assert_eq!(p.delay_ms(4), None);
        let none = RetryPolicy {
            retries: 0,
            backoff_ms: 10,
        };
        assert_eq!(none.delay_ms(0), None);
        let big = RetryPolicy {
            retries: 40,
            backoff_ms: 500,
        };
        assert_eq!(big.delay_ms(35), Some(MAX_BACKOFF_MS));
    }

    #[test]
    fn alignment_like_cma() {
        assert_eq!(cma_alignment(1, 4096, 8), 4096);
        assert_eq!(cma_alignment(4096, 4096, 8), 4096);
        assert_eq!(cma_alignment(8192, 4096, 8), 8192);
        assert_eq!(cma_alignment(12288, 4096, 8), 16384);
        assert_eq!(cma_alignment(8 * MIB, 4096, 8), MIB);
    }

    #[test]
    fn room_in_gaps() {
        let base = 0x7000_0000;
        let used = [(base, MIB), (base + 2 * MIB, MIB)];
        assert_eq!(largest_free(&used, base, 4 * MIB), MIB);
        assert!(fits(&used, base, 4 * MIB, MIB, MIB));
        assert!(!fits(&used, base, 4 * MIB, 2 * MIB, 4096));
        assert!(fits(&[], base, 4 * MIB, 4 * MIB, MIB));
        assert!(!fits(&[], base, 4 * MIB, 4 * MIB + 4096, 4096));
        // A 1 MiB gap that is not 1 MiB aligned cannot take a 1 MiB request.
        let odd = [(base, MIB / 2), (base + 3 * MIB / 2, 5 * MIB / 2)];
        assert_eq!(largest_free(&odd, base, 4 * MIB), MIB);
        assert!(!fits(&odd, base, 4 * MIB, MIB, MIB));
        assert!(fits(&odd, base, 4 * MIB, MIB, 4096));
    }

    #[test]
    fn histogram_buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 1);
        assert_eq!(bucket(3), 1);
        assert_eq!(bucket(1024), 10);
        assert_eq!(bucket(u64::MAX), HIST_BUCKETS - 1);
    }
}
