// SPDX-License-Identifier: GPL-2.0

//! The state a bound node shares with its open files: the region, limits,
//! accounting, allocation with retries, and unbind.
//!
//! # Unbind
//!
//! Buffer memory does not belong to the binding (see `region.rs`): every
//! buffer holds its memory and the region until its last user lets go. So
//! unbind only stops new work ([`Shared::unbind`]): new allocations, ioctls
//! and mmaps get `ENODEV` (freeing a handle still works), and allocations
//! backing off between retries stop at once. It waits for nothing userspace
//! or an importer holds: mappings keep working, importers keep their DMA
//! mappings and vmaps, and the memory goes back to the region when they let
//! go. An allocation already inside the DMA API finishes with valid memory.
//!
//! # Lock order
//!
//! The module's locks, outermost first: a handle's `Exports` list (an
//! EXPORT that finds no dma-buf of the part makes one under it; nothing else
//! is taken under `CmabufFile::state`) → a small-buffer pool's
//! chunks (`pool.rs`: chunks are freed, and statistics read the region, under
//! it; its shrinker only tries it) → `Region::used` → `REGIONS` (the module's
//! list of regions; a freed chunk drops its region reference); and
//! `Region::used` → a dma-buf's `name_lock` (debugfs reads names).
//! A ready reserve's state (`reserve.rs`) → `Region::used` (a piece it
//! cannot keep is freed under it).
//! `Shared::state`, a `Ledger`'s figures, an exporter's list of mapped
//! tables, the held-memory list and the claimed dma-heap names are each taken
//! with no other lock of ours held (a dma-buf's `release` takes its handle's
//! `Exports` list alone).
//!
//! Held by others when ours are taken: a process's mmap lock (mmap looks a
//! handle up; a VMA that closes may drop a buffer's last reference, which
//! takes `Region::used`, `REGIONS` and the ledgers' locks in turn), a
//! dma-buf's reservation lock (`map_dma_buf` takes the exporter's list).
//! Nothing of ours is held while an mmap lock is taken.

use crate::{
    account::{
        Charge,
        Ledger,
        Stats, //
    },
    mem::DmaMem,
    policy::{
        self,
        RetryPolicy, //
    },
    pool::{
        Pool,
        Usage, //
    },
    region::RegionRef,
    reserve::Reserve,
    shrinker::Shrinker,
    validate::Mode,
};
use kernel::{
    current,
    device,
    new_condvar,
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        CondVarTimeoutResult,
        Mutex, //
    },
    time::{
        Instant,
        Monotonic, //
    }, //
};

/// What the device's lock protects.
struct State {
    /// Whether the node accepts new work; cleared when unbind starts.
    bound: bool,
}

/// The state shared by a bound node and its open files; outlives the binding while files are open.
#[pin_data]
pub(crate) struct Shared {
    /// The platform device.
    dev: ARef<device::Device>,
    /// `N` of `/dev/cmabufN`.
    index: u32,
    /// The region buffers come from.
    region: RegionRef,
    /// Accounting and statistics.
    ledger: Arc<Ledger>,
    /// Binding state.
    #[pin]
    state: Mutex<State>,
    /// Signalled when unbind starts: allocations backing off between retries stop waiting.
    #[pin]
    unbinding: CondVar,
    /// The shrinkers of the pool and the reserve, until unbind (dropped before them: they queue
    /// their work).
    #[pin]
    shrinker: Mutex<Option<(Shrinker<Pool>, Shrinker<Reserve>)>>,
    /// Small buffers' chunks (shut down at unbind, or when the state goes).
    pool: PoolOwner,
    /// The ready reserve (shut down at unbind, or when the state goes).
    reserve: ReserveOwner,
}

/// The node's pool, shut down when dropped (if unbind did not already).
struct PoolOwner(Arc<Pool>);

impl Drop for PoolOwner {
    fn drop(&mut self) {
        Pool::shutdown(&self.0);
    }
}

/// The node's ready reserve, shut down when dropped (if unbind did not already).
struct ReserveOwner(Arc<Reserve>);

impl Drop for ReserveOwner {
    fn drop(&mut self) {
        Reserve::shutdown(&self.0);
    }
}

/// The module's limits, from its parameters; 0 means "no limit" for the byte limits.
pub(crate) struct Limits {
    /// Buffers per file: its handles, and the buffers it allocated whose memory is still taken
    /// (dma-heap buffers, freed handles still mapped or exported, memory still held).
    pub(crate) buffers_per_file: u64,
    /// Bytes of those buffers per file.
    pub(crate) bytes_per_file: u64,
    /// Bytes allocated on one device.
    pub(crate) bytes_per_device: u64,
}

/// `limit` as a bound to compare against: 0 means none.
pub(crate) fn bound(limit: u64) -> u64 {
    if limit == 0 {
        u64::MAX
    } else {
        limit
    }
}

impl Shared {
    /// State for a freshly bound node.
    pub(crate) fn new(dev: &device::Device, index: u32, region: RegionRef) -> Result<Arc<Self>> {
        let pool = Pool::new(&region)?;
        let reserve = Reserve::new(
            &region,
            reserve_target(dev, region.size()),
            reserve_unit(dev, region.size()),
        )?;
        // Shut down if what follows fails.
        let reserve = ReserveOwner(reserve);
        let shrinkers = (
            Shrinker::register(c"cmabuf-pool", &pool)?,
            Shrinker::register(c"cmabuf-reserve", &reserve.0)?,
        );
        Arc::pin_init(
            try_pin_init!(Self {
                dev: dev.into(),
                index,
                region,
                ledger: Ledger::new()?,
                state <- new_mutex!(State { bound: true }),
                unbinding <- new_condvar!(),
                shrinker <- new_mutex!(Some(shrinkers)),
                pool: PoolOwner(pool),
                reserve,
            }),
            GFP_KERNEL,
        )
    }

    /// The ready reserve's target in bytes.
    pub(crate) fn reserve_target(&self) -> u64 {
        self.reserve.0.figures().target
    }

    /// Sets the ready reserve's target (sysfs): `EINVAL` above the region's size, `ENODEV` after
    /// unbind.
    pub(crate) fn set_reserve_target(&self, bytes: u64) -> Result {
        if bytes > self.region_size() {
            return Err(EINVAL);
        }
        if !self.is_bound() {
            return Err(ENODEV);
        }
        // CAST: At most the region's size, which fits in `usize`.
        Reserve::set_target(&self.reserve.0, bytes as usize);
        Ok(())
    }

    /// The ready reserve's fixed unit in bytes, 0 when it is learned.
    pub(crate) fn reserve_unit(&self) -> u64 {
        let r = self.reserve.0.figures();
        if r.fixed {
            r.unit
        } else {
            0
        }
    }

    /// Fixes the ready reserve's unit (sysfs; 0: learned): `EINVAL` unless 0 or a whole number of
    /// pages from the pool's largest piece to the region's size, `ENODEV` after unbind.
    pub(crate) fn set_reserve_unit(&self, bytes: u64) -> Result {
        let unit =
            crate::validate::reserve_unit(bytes, crate::pool::MAX_PIECE, self.region_size())?;
        if !self.is_bound() {
            return Err(ENODEV);
        }
        Reserve::set_unit(&self.reserve.0, unit);
        Ok(())
    }

    /// The platform device.
    pub(crate) fn dev(&self) -> &device::Device {
        &self.dev
    }

    /// `N` of `/dev/cmabufN`.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The region.
    pub(crate) fn region(&self) -> &RegionRef {
        &self.region
    }

    /// The ledger.
    pub(crate) fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Whether the node's memory is DMA-coherent (every cache mode is cached memory then).
    pub(crate) fn coherent(&self) -> bool {
        self.region.coherent()
    }

    /// The region's name.
    pub(crate) fn region_name(&self) -> &CStr {
        self.region.name()
    }

    /// The region's physical base.
    pub(crate) fn region_base(&self) -> u64 {
        self.region.base()
    }

    /// The region's size in bytes.
    pub(crate) fn region_size(&self) -> u64 {
        self.region.size()
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            buffers_per_file: crate::compat::param(&crate::module_parameters::max_buffers_per_file),
            bytes_per_file: crate::compat::param(&crate::module_parameters::max_bytes_per_file),
            bytes_per_device: crate::compat::param(&crate::module_parameters::max_bytes_per_device),
        }
    }

    /// The retry policy in force.
    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: crate::compat::param(&crate::module_parameters::alloc_retries),
            backoff_ms: crate::compat::param(&crate::module_parameters::alloc_backoff_ms),
        }
    }

    /// Whether the node is still bound.
    pub(crate) fn is_bound(&self) -> bool {
        self.state.lock().bound
    }

    /// `(buffers, bytes)` handed out on the device and not yet gone.
    pub(crate) fn usage(&self) -> (u64, u64) {
        self.ledger.usage()
    }

    /// Charges `bytes` to the device: `EDQUOT` when the device limit would be exceeded.
    pub(crate) fn charge(&self, bytes: u64) -> Result<Charge> {
        Ledger::charge(
            &self.ledger,
            bytes,
            bound(self.limits().bytes_per_device),
            u64::MAX,
        )
    }

    /// Counts an allocation refused by a per-file limit.
    pub(crate) fn count_limit_failure(&self) {
        self.ledger.count(|s| s.fail_limit += 1);
    }

    /// Allocates `len` bytes in `mode` from the region, with the retry policy; see
    /// [`crate::policy`]. Never returns memory from outside the region. Returns the memory and
    /// how long it took, in µs.
    ///
    /// Sleeps while CMA migrates pages, holding no lock meanwhile. `ENOMEM` when the region's
    /// live allocations leave no room, `EBUSY` when the retries are spent, `EINTR` on a signal,
    /// `ENODEV` when unbind starts meanwhile, `EDQUOT` (counted as a limit failure) when the
    /// caller's cgroup is at its `dmem.max` for the region.
    pub(crate) fn allocate(&self, len: usize, mode: Mode) -> Result<(DmaMem, u64)> {
        let start = Instant::<Monotonic>::now();
        // The reserve's refill waits while this runs.
        let _busy = self.reserve.0.busy();
        let policy = self.policy();
        // CAST: `len` fits in `u64`.
        let len64 = len as u64;
        let dmem = self
            .region
            .dmem()
            .charge(len64)
            .inspect_err(|_| self.count_limit_failure())?;
        let mut retry = 0;
        // CAST: A KiB count fits in `usize`.
        let pool_max =
            crate::compat::param(&crate::module_parameters::pool_max_kib) as usize * 1024;
        // Buffers of at least the pool's largest piece come from the ready reserve first.
        let mut ready = if len >= crate::pool::MAX_PIECE {
            Reserve::take(&self.reserve.0, len, mode)
        } else {
            None
        };
        let mut piece = if ready.is_none() && len <= pool_max {
            // Out of kernel memory: like any other, not counted as the region's `ENOMEM`.
            Pool::get(&self.pool.0, len, mode)?
        } else {
            None
        };
        let res = loop {
            if let Some(piece) = piece.take() {
                break Ok(DmaMem::piece(piece));
            }
            if let Some((alloc, lent)) = ready.take() {
                break Ok(DmaMem::whole(alloc, lent));
            }
            match DmaMem::alloc(&self.region, len, mode) {
                Ok(Some(mem)) => break Ok(mem),
                Ok(None) => self.ledger.count(|s| s.fallbacks += 1),
                Err(_) => {}
            }
            // Empty chunks kept for small buffers make room first, then the ready reserve.
            if Pool::release_empty(&self.pool.0) || self.reserve.0.release_one() {
                continue;
            }
            if current!().signal_pending() {
                break Err(EINTR);
            }
            if !self.region.has_room(len64)? {
                break Err(ENOMEM);
            }
            let Some(ms) = policy.delay_ms(retry) else {
                break Err(EBUSY);
            };
            // Back off, but stop as soon as unbind starts or a signal arrives.
            let mut state = self.state.lock();
            if !state.bound {
                break Err(ENODEV);
            }
            self.ledger.count(|s| s.retries += 1);
            let ret = self
                .unbinding
                .wait_interruptible_timeout(&mut state, kernel::time::msecs_to_jiffies(ms));
            if !state.bound {
                break Err(ENODEV);
            }
            if matches!(ret, CondVarTimeoutResult::Signal { .. }) {
                break Err(EINTR);
            }
            retry += 1;
        };
        self.ledger.count(|stats| match &res {
            Ok(_) => {}
            Err(e) if *e == ENOMEM => stats.fail_nomem += 1,
            Err(e) if *e == EBUSY => stats.fail_busy += 1,
            Err(e) if *e == EINTR => stats.fail_intr += 1,
            Err(_) => {}
        });
        res.map(|mut mem| {
            mem.hold_charge(dmem);
            // CAST: Elapsed time is never negative.
            (mem, start.elapsed().as_micros_ceil() as u64)
        })
    }

    /// A snapshot of the statistics.
    pub(crate) fn stats(&self) -> Result<Stats> {
        // An empty chunk of the pool is room: an allocation that needs it gets it.
        let (
            Usage {
                chunk_bytes,
                free_bytes,
                largest_free,
            },
            used,
        ) = self.pool.0.snapshot()?;
        let mut stats = self.ledger.stats();
        stats.largest_free =
            policy::largest_free(&used, self.region.dma_base(), self.region_size());
        stats.pool_bytes = chunk_bytes;
        stats.pool_free_bytes = free_bytes;
        // Room in a chunk serves small buffers.
        stats.largest_free = stats.largest_free.max(largest_free);
        let r = self.reserve.0.figures();
        stats.reserve_bytes = r.target;
        stats.reserve_ready_bytes = r.filled;
        stats.reserve_lent_bytes = r.lent;
        stats.reserve_unit = r.unit;
        stats.reserve_hits = r.hits;
        stats.reserve_misses = r.misses;
        stats.reserve_refill_us = r.refill_us;
        Ok(stats)
    }

    /// Unbind: stops new work; see the module documentation. Waits for nothing.
    pub(crate) fn unbind(&self) {
        {
            let mut state = self.state.lock();
            state.bound = false;
            self.unbinding.notify_all();
        }
        // The shrinkers go first (they queue the pool's and the reserve's work), then the pool
        // and the reserve give back what they keep.
        let shrinkers = self.shrinker.lock().take();
        drop(shrinkers);
        Pool::shutdown(&self.pool.0);
        Reserve::shutdown(&self.reserve.0);
    }
}

/// The node's optional `u32` property `name` (bytes), if it has one.
fn dt_bytes(dev: &device::Device, name: &CStr) -> Option<u64> {
    let node = dev.fwnode()?;
    node.property_read::<u32>(name).optional().map(u64::from)
}

/// The node's `cmabuf,ready-reserve` (bytes, at most the region's `size`), or 0.
fn reserve_target(dev: &device::Device, size: u64) -> usize {
    let asked = dt_bytes(dev, c"cmabuf,ready-reserve").unwrap_or(0);
    if asked > size {
        dev_warn!(
            dev,
            "cmabuf,ready-reserve {} is larger than the region ({} bytes): no reserve\n",
            asked,
            size
        );
        return 0;
    }
    // CAST: At most the region's size, which fits in `usize`.
    asked as usize
}

/// The node's `cmabuf,ready-reserve-unit` (bytes), if it has a valid one.
fn reserve_unit(dev: &device::Device, size: u64) -> Option<usize> {
    let asked = dt_bytes(dev, c"cmabuf,ready-reserve-unit")?;
    crate::validate::reserve_unit(asked, crate::pool::MAX_PIECE, size)
        .inspect_err(|_| {
            dev_warn!(
                dev,
                "cmabuf,ready-reserve-unit {} is not a whole number of pages from 1 MiB to the \
                 region's size: learned from the allocations instead\n",
                asked
            );
        })
        .ok()
        .flatten()
}
