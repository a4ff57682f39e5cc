// SPDX-License-Identifier: GPL-2.0

//! The state a bound node shares with its open files: region facts, limits,
//! accounting, the list of live memory, and the unbind protocol.
//!
//! # Unbind
//!
//! DMA memory must not outlive the binding (the region is detached at
//! unbind, and the DMA API tracks allocations per bound driver), so unbind
//! revokes every buffer of the device ([`Shared::revoke`]):
//!
//! 1. `bound` is cleared, so new allocations, ioctls and mmaps fail with
//!    `ENODEV`, and unbind waits until no allocation is in flight
//!    ([`BindGuard`]).
//! 2. Each buffer refuses new mappings, and unbind waits, through the mmap
//!    lock of every address space that mapped it, until mmaps in flight have
//!    linked their VMAs.
//! 3. Every PTE of every open file's mapping is zapped; later accesses get
//!    `SIGBUS`.
//! 4. The memory is freed. Handles and VMAs still hold their (now empty)
//!    buffers until they go.
//!
//! # Lock order
//!
//! `CmabufFile::state` → `Shared::state` → `Backing::mem`; `Shared::state` →
//! `i_mmap_rwsem` (zapping). The mmap lock of a process may be held when
//! `Shared::state` is taken (a VMA closing drops a buffer), so unbind takes
//! mmap locks only while holding none of ours.

use crate::{
    buffer::Backing,
    dmamem::DmaMem,
    policy::{
        self,
        RetryPolicy,
        HIST_BUCKETS, //
    },
    validate::Mode,
    vma::Mapping, //
};
use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};
use kernel::{
    bindings,
    current,
    device,
    new_condvar,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode, //
    },
    str::CString,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        Mutex, //
    },
    time::{
        delay::fsleep,
        Delta,
        Instant,
        Monotonic, //
    }, //
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
}

/// `CONFIG_CMA_ALIGNMENT`: CMA aligns a request to at most this order of pages.
const CMA_ALIGNMENT_ORDER: u32 = bindings::CONFIG_CMA_ALIGNMENT;

/// What the device's lock protects.
struct State {
    /// Whether the node is bound; cleared at unbind.
    bound: bool,
    /// Allocations in progress ([`BindGuard`]s alive).
    inflight: usize,
    /// Buffers allocated or reserved on the device.
    buffers: u64,
    /// Their bytes.
    bytes: u64,
    /// Every buffer's memory, by [`Backing::id`] (its DMA address, so in address order).
    backings: RBTree<u64, Arc<Backing>>,
    /// Counters and the latency histogram.
    stats: Stats,
    /// The page-cache mapping of every open file, by file id.
    files: RBTree<u64, Mapping>,
}

/// The state shared by a bound node and its open files; outlives the binding while files are open.
#[pin_data]
pub(crate) struct Shared {
    /// The platform device.
    dev: ARef<device::Device>,
    /// `N` of `/dev/cmabufN`.
    index: u32,
    /// The region's name.
    region_name: CString,
    /// The region's physical base.
    region_base: u64,
    /// The region's base as the device addresses it.
    region_dma_base: u64,
    /// The region's size in bytes.
    region_size: u64,
    /// Source of file ids.
    next_id: AtomicU64,
    /// Binding state, accounting and lists.
    #[pin]
    state: Mutex<State>,
    /// Signalled when the last in-flight allocation ends.
    #[pin]
    idle: CondVar,
}

/// The module's limits, from its parameters; 0 means "no limit" for the byte limits.
pub(crate) struct Limits {
    /// Live handles per file.
    pub(crate) buffers_per_file: u64,
    /// Bytes of live handles per file.
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
    pub(crate) fn new(
        dev: &device::Device,
        index: u32,
        region_name: &CStr,
        region_base: u64,
        region_dma_base: u64,
        region_size: u64,
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                dev: dev.into(),
                index,
                region_name: CString::try_from(region_name)?,
                region_base,
                region_dma_base,
                region_size,
                next_id: AtomicU64::new(1),
                state <- new_mutex!(State {
                    bound: true,
                    inflight: 0,
                    buffers: 0,
                    bytes: 0,
                    backings: RBTree::new(),
                    stats: Stats::default(),
                    files: RBTree::new(),
                }),
                idle <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    /// The platform device.
    pub(crate) fn dev(&self) -> &device::Device {
        &self.dev
    }

    /// `N` of `/dev/cmabufN`.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The region's name.
    pub(crate) fn region_name(&self) -> &CStr {
        &self.region_name
    }

    /// The region's physical base.
    pub(crate) fn region_base(&self) -> u64 {
        self.region_base
    }

    /// The region's size in bytes.
    pub(crate) fn region_size(&self) -> u64 {
        self.region_size
    }

    /// A new id for a file.
    pub(crate) fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            buffers_per_file: *crate::module_parameters::max_buffers_per_file.value(),
            bytes_per_file: *crate::module_parameters::max_bytes_per_file.value(),
            bytes_per_device: *crate::module_parameters::max_bytes_per_device.value(),
        }
    }

    /// The retry policy in force.
    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: *crate::module_parameters::alloc_retries.value(),
            backoff_ms: *crate::module_parameters::alloc_backoff_ms.value(),
        }
    }

    /// Whether the node is still bound.
    pub(crate) fn is_bound(&self) -> bool {
        self.state.lock().bound
    }

    /// `(buffers, bytes)` allocated on the device.
    pub(crate) fn usage(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.buffers, state.bytes)
    }

    /// Starts an allocation: `ENODEV` if unbound; unbind waits until the guard is dropped.
    pub(crate) fn enter(&self) -> Result<BindGuard<'_>> {
        let mut state = self.state.lock();
        if !state.bound {
            return Err(ENODEV);
        }
        state.inflight += 1;
        Ok(BindGuard { shared: self })
    }

    /// Reserves `bytes` against the device limit: `EDQUOT` when it would be exceeded.
    pub(crate) fn reserve<'a>(
        &'a self,
        _guard: &BindGuard<'a>,
        bytes: u64,
    ) -> Result<DevReservation<'a>> {
        let limit = bound(self.limits().bytes_per_device);
        let mut state = self.state.lock();
        match state.bytes.checked_add(bytes) {
            Some(total) if total <= limit => {
                state.bytes = total;
                state.buffers += 1;
                state.stats.peak_bytes = state.stats.peak_bytes.max(total);
                Ok(DevReservation {
                    shared: self,
                    bytes,
                    committed: false,
                })
            }
            _ => {
                state.stats.fail_limit += 1;
                Err(crate::validate::edquot())
            }
        }
    }

    /// Counts an allocation refused by a per-file limit.
    pub(crate) fn count_limit_failure(&self) {
        self.state.lock().stats.fail_limit += 1;
    }

    /// The DMA ranges of cmabuf's own live buffers, in address order.
    fn used_ranges(state: &State) -> Result<KVec<(u64, u64)>> {
        let mut used = KVec::with_capacity(state.backings.iter().count(), GFP_KERNEL)?;
        for (&addr, backing) in state.backings.iter() {
            // CAST: A buffer's size fits in `u64`.
            used.push((addr, backing.size() as u64), GFP_KERNEL)?;
        }
        Ok(used)
    }

    /// Whether cmabuf's own buffers leave room for `len` bytes as CMA would align them.
    fn has_room(&self, len: u64) -> Result<bool> {
        let state = self.state.lock();
        let used = Self::used_ranges(&state)?;
        // CAST: The page size fits in `u64`.
        let align = policy::cma_alignment(len, PAGE_SIZE as u64, CMA_ALIGNMENT_ORDER);
        Ok(policy::fits(
            &used,
            self.region_dma_base,
            self.region_size,
            len,
            align,
        ))
    }

    /// Allocates `len` bytes in `mode` from the region, with the retry policy; see
    /// [`crate::policy`]. Never returns memory from outside the region.
    ///
    /// Sleeps while CMA migrates pages, holding no lock meanwhile. `ENOMEM` when cmabuf's own
    /// buffers leave no room, `EBUSY` when the retries are spent, `EINTR` on a signal.
    pub(crate) fn allocate(
        &self,
        _guard: &BindGuard<'_>,
        len: usize,
        mode: Mode,
    ) -> Result<DmaMem> {
        let start = Instant::<Monotonic>::now();
        let policy = self.policy();
        // CAST: `len` fits in `u64`.
        let len64 = len as u64;
        let mut retry = 0;
        let res = loop {
            match DmaMem::alloc(&self.dev, len, mode) {
                Ok(mem) if self.in_region(mem.dma_addr(), len64) => break Ok(mem),
                Ok(mem) => {
                    // The DMA API fell back to the page allocator: not ours to hand out.
                    drop(mem);
                    self.state.lock().stats.fallbacks += 1;
                }
                Err(_) => {}
            }
            if current!().signal_pending() {
                break Err(EINTR);
            }
            if !self.has_room(len64)? {
                break Err(ENOMEM);
            }
            match policy.delay_ms(retry) {
                None => break Err(EBUSY),
                Some(ms) => {
                    self.state.lock().stats.retries += 1;
                    fsleep(Delta::from_millis(ms.into()));
                    retry += 1;
                }
            }
        };
        let mut state = self.state.lock();
        let stats = &mut state.stats;
        match &res {
            Ok(_) => {
                stats.allocs += 1;
                // CAST: Elapsed time is never negative.
                let us = start.elapsed().as_micros_ceil() as u64;
                stats.hist[policy::bucket(us)] += 1;
            }
            Err(e) if *e == ENOMEM => stats.fail_nomem += 1,
            Err(e) if *e == EBUSY => stats.fail_busy += 1,
            Err(e) if *e == EINTR => stats.fail_intr += 1,
            Err(_) => {}
        }
        res
    }

    /// Whether `[addr, addr + len)` lies in the region, as the device addresses it.
    fn in_region(&self, addr: u64, len: u64) -> bool {
        let end = self.region_dma_base + self.region_size;
        addr >= self.region_dma_base && addr.checked_add(len).is_some_and(|e| e <= end)
    }

    /// A snapshot of the statistics.
    pub(crate) fn stats(&self) -> Result<Stats> {
        let state = self.state.lock();
        let used = Self::used_ranges(&state)?;
        let mut stats = state.stats;
        stats.live_buffers = state.buffers;
        stats.live_bytes = state.bytes;
        stats.largest_free = policy::largest_free(&used, self.region_dma_base, self.region_size);
        Ok(stats)
    }

    /// Lists a new buffer's memory (`node` is preallocated); the guard proves the device is bound.
    pub(crate) fn register(&self, _guard: &BindGuard<'_>, node: RBTreeNode<u64, Arc<Backing>>) {
        self.state.lock().backings.insert(node);
    }

    /// A buffer is gone: unlist its memory and give its bytes back.
    pub(crate) fn release(&self, backing: &Backing) {
        let removed = {
            let mut state = self.state.lock();
            state.buffers -= 1;
            // CAST: A buffer's size fits in `u64`.
            state.bytes -= backing.size() as u64;
            state.backings.remove(&backing.id())
        };
        // The list's reference may be the last but one; drop it outside the lock.
        drop(removed);
    }

    /// Records an open file's mapping (`node` preallocated); `ENODEV` if unbound.
    pub(crate) fn add_file(&self, node: RBTreeNode<u64, Mapping>) -> Result {
        let mut state = self.state.lock();
        if !state.bound {
            return Err(ENODEV);
        }
        state.files.insert(node);
        Ok(())
    }

    /// Forgets a file that is being released.
    pub(crate) fn remove_file(&self, id: u64) {
        self.state.lock().files.remove(&id);
    }

    /// Revokes every buffer (unbind); see the module documentation.
    pub(crate) fn revoke(&self) {
        // 1. No new users; wait for allocations in flight.
        let mut state = self.state.lock();
        state.bound = false;
        while state.inflight > 0 {
            self.idle.wait(&mut state);
        }
        drop(state);

        // 2. No new mappings; wait until mmaps in flight have linked their VMAs. Taking the
        // address spaces out of each backing allocates nothing; their mmap locks are taken with
        // none of our locks held.
        loop {
            let mms = {
                let state = self.state.lock();
                let mut found = KVec::new();
                for backing in state.backings.values() {
                    let mms = backing.revoke_start();
                    if !mms.is_empty() {
                        found = mms;
                        break;
                    }
                }
                found
            };
            if mms.is_empty() {
                break;
            }
            for mm in mms.iter() {
                if let Some(mm) = mm.mmget_not_zero() {
                    drop(mm.mmap_read_lock());
                }
            }
        }

        // 3. and 4. Zap every mapping of every open file, then free the memory.
        let state = self.state.lock();
        let mut done: KVec<&Mapping> = KVec::new();
        for mapping in state.files.values() {
            if done.iter().any(|m| m.same(mapping)) {
                continue;
            }
            mapping.zap_all();
            // Deduplication is an optimisation only: zapping twice is harmless.
            let _ = done.push(mapping, GFP_KERNEL);
        }
        for backing in state.backings.values() {
            backing.revoke_finish();
        }
    }
}

/// An allocation in progress; while one exists, unbind waits.
pub(crate) struct BindGuard<'a> {
    /// The device.
    shared: &'a Shared,
}

impl Drop for BindGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.inflight -= 1;
        if state.inflight == 0 {
            self.shared.idle.notify_all();
        }
    }
}

/// Bytes reserved against the device limit; given back on drop unless committed to a buffer.
pub(crate) struct DevReservation<'a> {
    /// The device.
    shared: &'a Shared,
    /// Bytes reserved.
    bytes: u64,
    /// Whether a buffer took the reservation over.
    committed: bool,
}

impl DevReservation<'_> {
    /// A buffer now owns the bytes and gives them back when it goes.
    pub(crate) fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for DevReservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let mut state = self.shared.state.lock();
            state.buffers -= 1;
            state.bytes -= self.bytes;
        }
    }
}
