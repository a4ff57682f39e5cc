// SPDX-License-Identifier: GPL-2.0

//! Device indices: the `N` of `/dev/cmabufN`.
//!
//! A node named by a device-tree alias `cmabufN` (in `/aliases`) gets `N`,
//! as serial ports and I2C buses do. Other nodes take the lowest index that
//! is free at probe time and above every alias, and give it back when they
//! are unbound; so a board with one node always has `/dev/cmabuf0`, and
//! unbinding and binding a node gives it the same name again.

use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};
use kernel::prelude::*;

/// The most nodes one system can bind.
pub(crate) const MAX_DEVICES: u32 = 64;

/// A set of indices, one bit each; lock-free.
pub(crate) struct IndexSet(AtomicU64);

impl IndexSet {
    /// An empty set.
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Takes index `n`: `EBUSY` if taken, `EINVAL` if out of range.
    pub(crate) fn take_at(&self, n: u32) -> Result<Index<'_>> {
        if n >= MAX_DEVICES {
            return Err(EINVAL);
        }
        let bit = 1u64 << n;
        if self.0.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            return Err(EBUSY);
        }
        Ok(Index { set: self, bit: n })
    }

    /// Takes the lowest free index not below `min`, or fails with `ENOSPC`.
    pub(crate) fn take_from(&self, min: u32) -> Result<Index<'_>> {
        let allowed = if min >= MAX_DEVICES {
            0
        } else {
            u64::MAX << min
        };
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let free = !cur & allowed;
            if free == 0 {
                return Err(ENOSPC);
            }
            let bit = free.trailing_zeros();
            match self.0.compare_exchange_weak(
                cur,
                cur | (1 << bit),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Index { set: self, bit }),
                Err(now) => cur = now,
            }
        }
    }
}

/// An index taken from an [`IndexSet`]; given back on drop.
pub(crate) struct Index<'a> {
    /// Where it came from.
    set: &'a IndexSet,
    /// The index, below [`MAX_DEVICES`].
    bit: u32,
}

impl Index<'_> {
    /// The index as a number.
    pub(crate) fn get(&self) -> u32 {
        self.bit
    }
}

impl Drop for Index<'_> {
    fn drop(&mut self) {
        self.set.0.fetch_and(!(1 << self.bit), Ordering::AcqRel);
    }
}

/// The lowest index for nodes without an alias: one above the highest index below
/// [`MAX_DEVICES`] that `has_alias` claims, or 0. An alias out of range does not push it past the
/// end (that node alone fails to probe).
pub(crate) fn unaliased_floor(has_alias: impl Fn(u32) -> bool) -> u32 {
    (0..MAX_DEVICES)
        .rev()
        .find(|&n| has_alias(n))
        .map_or(0, |n| n + 1)
}

/// The indices of this module's bound nodes.
pub(crate) static DEVICES: IndexSet = IndexSet::new();

#[kunit_tests(cmabuf_index)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_first() -> Result {
        let set = IndexSet::new();
        let a = set.take_from(0)?;
        let b = set.take_from(0)?;
        assert_eq!(a.get(), 0);
        assert_eq!(b.get(), 1);
        drop(a);
        let c = set.take_from(0)?;
        assert_eq!(c.get(), 0);
        Ok(())
    }

    #[test]
    fn fixed_and_from() -> Result {
        let set = IndexSet::new();
        let a = set.take_at(2)?;
        assert!(matches!(set.take_at(2), Err(e) if e == EBUSY));
        assert!(matches!(set.take_at(64), Err(e) if e == EINVAL));
        assert_eq!(set.take_from(2)?.get(), 3);
        assert_eq!(set.take_from(0)?.get(), 0);
        assert!(matches!(set.take_from(64), Err(e) if e == ENOSPC));
        drop(a);
        assert_eq!(set.take_from(1)?.get(), 1);
        Ok(())
    }

    #[test]
    fn floor_above_aliases_in_range() -> Result {
        assert_eq!(unaliased_floor(|_| false), 0);
        assert_eq!(unaliased_floor(|n| n == 0 || n == 1), 2);
        assert_eq!(unaliased_floor(|n| n == 5), 6);
        // `cmabuf64` and beyond cannot be taken; they must not block unaliased nodes.
        assert_eq!(unaliased_floor(|n| n == 1 || n >= 64), 2);
        assert_eq!(unaliased_floor(|n| n == 63), 64);
        Ok(())
    }

    #[test]
    fn full_set_is_enospc() -> Result {
        let set = IndexSet::new();
        let mut held = KVec::new();
        for i in 0..MAX_DEVICES {
            let idx = set.take_from(0)?;
            assert_eq!(idx.get(), i);
            held.push(idx, GFP_KERNEL)?;
        }
        assert!(matches!(set.take_from(0), Err(e) if e == ENOSPC));
        held.truncate(10);
        assert_eq!(set.take_from(0)?.get(), 10);
        Ok(())
    }
}
