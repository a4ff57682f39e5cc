// SPDX-License-Identifier: GPL-2.0

//! The state a bound node shares with its open files: region facts, limits,
//! accounting, the list of live memory, and the unbind protocol.
//!
//! # Freeing memory only while the region is attached
//!
//! DMA memory must go back to the region while the region is still attached
//! to the device (unbind detaches it, and the DMA API tracks allocations per
//! bound driver). [`DmaMem::alloc`] and [`DmaMem::free`] therefore take an
//! [`Attached`] proof, which exists only
//!
//! - inside the device's lock scope while `State::attached` holds
//!   ([`State::attached`]), or
//! - while an allocation is in flight ([`BindGuard::attached`]): unbind waits
//!   for those before it detaches anything.
//!
//! Buffers free their memory under the device lock ([`Shared::release`]);
//! unbind frees what is left under the same lock and clears `attached` in
//! that lock scope. So a release racing unbind either frees first or finds
//! the memory already gone; it never frees after the region went.
//!
//! # Unbind
//!
//! Unbind revokes every buffer of the device ([`Shared::revoke`]):
//!
//! 1. `bound` is cleared, so new allocations, ioctls and mmaps fail with
//!    `ENODEV`, allocations backing off between retries stop at once, and
//!    unbind waits until no allocation is in flight ([`BindGuard`]; none is
//!    held across a user copy, so userspace cannot stall this).
//! 2. Each buffer refuses new mappings, and unbind waits, through the mmap
//!    lock of every live address space that mapped it, until mmaps in flight
//!    have linked their VMAs.
//! 3. Every PTE of every open file's and dma-buf's mapping is zapped; later
//!    accesses get `SIGBUS`.
//! 4. Importers that mapped a buffer's dma-buf for DMA (`map_dma_buf`) and
//!    kernel users of its address (`vmap`) cannot be revoked: unbind logs
//!    which buffers they hold and waits until they let go (new ones are
//!    refused from step 2 on).
//! 5. The memory is freed and `attached` cleared, in one lock scope. Handles,
//!    VMAs and dma-bufs still hold their (now empty) buffers until they go.
//!
//! # Accounting
//!
//! A [`Charge`] is the one owner of a buffer's bytes in the device's
//! accounting: it reserves them against the device limit when an allocation
//! starts, counts them as live once the buffer is handed out
//! ([`Shared::hand_out`]), and gives back exactly what it took when it drops.
//!
//! # Lock order
//!
//! `CmabufFile::state` → `Shared::state` → `Backing::mem` (the first export
//! of a handle lists its dma-buf while the handle table is locked);
//! `Shared::state` → `i_mmap_rwsem` (zapping). A process's mmap lock may be
//! held when `Shared::state` is taken (a VMA closing drops a buffer:
//! `mmap_lock` → `Shared::state` → `Backing::mem`), when `Backing::mem` is
//! taken (mmap: `mmap_lock` → `Backing::mem`) and when `CmabufFile::state` is
//! taken (mmap looks the handle up: `mmap_lock` → `CmabufFile::state`). A
//! dma-buf's reservation lock may be held when `Backing::mem` is taken
//! (`map_dma_buf`). Unbind takes mmap locks only while holding none of ours,
//! and nothing takes `CmabufFile::state` or an mmap lock under
//! `Shared::state`.

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
use core::{
    marker::PhantomData,
    sync::atomic::{
        AtomicBool,
        AtomicU64,
        Ordering, //
    },
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
        CondVarTimeoutResult,
        Mutex, //
    },
    time::{
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
    /// dma-bufs created.
    pub(crate) exports: u64,
    /// dma-bufs alive.
    pub(crate) live_dmabufs: u64,
}

/// `CONFIG_CMA_ALIGNMENT`: CMA aligns a request to at most this order of pages.
const CMA_ALIGNMENT_ORDER: u32 = bindings::CONFIG_CMA_ALIGNMENT;

/// What the device's lock protects.
struct State {
    /// Whether the node accepts new work; cleared when unbind starts.
    bound: bool,
    /// Whether the region is attached, so DMA memory may be allocated and freed; cleared when
    /// unbind has freed every buffer's memory.
    attached: bool,
    /// Allocations in progress ([`BindGuard`]s alive).
    inflight: usize,
    /// Bytes charged: live buffers and allocations in progress; what the device limit counts.
    charged_bytes: u64,
    /// Buffers handed out and not yet gone.
    live_buffers: u64,
    /// Their bytes.
    live_bytes: u64,
    /// Every buffer's memory, by [`Backing::id`] (its DMA address, so in address order).
    backings: RBTree<u64, Arc<Backing>>,
    /// Counters and the latency histogram.
    stats: Stats,
    /// The page-cache mapping of every open file, by file id.
    files: RBTree<u64, Mapping>,
}

impl State {
    /// Proof that the region is attached, for as long as the lock is held; `None` after unbind.
    fn attached(&self) -> Option<Attached<'_>> {
        self.attached.then_some(Attached(PhantomData))
    }
}

/// Proof that the device's region is attached, so that DMA memory may be allocated from it and
/// freed to it: see the module documentation.
///
/// # Invariants
///
/// While an `Attached<'a>` exists, the region stays attached: it borrows either the device's
/// lock guard while `State::attached` holds, or a [`BindGuard`], which unbind waits for before
/// detaching.
pub(crate) struct Attached<'a>(PhantomData<&'a ()>);

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
    /// Signalled when unbind starts: allocations backing off between retries stop waiting.
    #[pin]
    unbinding: CondVar,
    /// Signalled when an importer unmaps a buffer's dma-buf or a kernel user lets go of it.
    #[pin]
    importers: CondVar,
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
                    attached: true,
                    inflight: 0,
                    charged_bytes: 0,
                    live_buffers: 0,
                    live_bytes: 0,
                    backings: RBTree::new(),
                    stats: Stats::default(),
                    files: RBTree::new(),
                }),
                idle <- new_condvar!(),
                unbinding <- new_condvar!(),
                importers <- new_condvar!(),
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
        let state = self.state.lock();
        (state.live_buffers, state.live_bytes)
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

    /// Charges `bytes` to the device: `EDQUOT` when the device limit would be exceeded.
    pub(crate) fn charge(this: &Arc<Self>, _guard: &BindGuard<'_>, bytes: u64) -> Result<Charge> {
        let limit = bound(this.limits().bytes_per_device);
        let mut state = this.state.lock();
        match state.charged_bytes.checked_add(bytes) {
            Some(total) if total <= limit => {
                state.charged_bytes = total;
                Ok(Charge {
                    shared: this.clone(),
                    bytes,
                    live: AtomicBool::new(false),
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
    /// [`crate::policy`]. Never returns memory from outside the region. Returns the memory and
    /// how long it took, in µs.
    ///
    /// Sleeps while CMA migrates pages, holding no lock meanwhile. `ENOMEM` when cmabuf's own
    /// buffers leave no room, `EBUSY` when the retries are spent, `EINTR` on a signal, `ENODEV`
    /// when unbind starts meanwhile.
    pub(crate) fn allocate(
        &self,
        guard: &BindGuard<'_>,
        len: usize,
        mode: Mode,
    ) -> Result<(DmaMem, u64)> {
        let start = Instant::<Monotonic>::now();
        let policy = self.policy();
        // CAST: `len` fits in `u64`.
        let len64 = len as u64;
        let mut retry = 0;
        let res = loop {
            match DmaMem::alloc(&self.dev, len, mode, &guard.attached()) {
                Ok(mem) if self.in_region(mem.dma_addr(), len64) => break Ok(mem),
                Ok(mem) => {
                    // The DMA API fell back to the page allocator: not ours to hand out.
                    mem.free(&guard.attached());
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
            let Some(ms) = policy.delay_ms(retry) else {
                break Err(EBUSY);
            };
            // Back off, but stop as soon as unbind starts or a signal arrives.
            let mut state = self.state.lock();
            if !state.bound {
                break Err(ENODEV);
            }
            state.stats.retries += 1;
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
        let mut state = self.state.lock();
        let stats = &mut state.stats;
        match &res {
            Ok(_) => {}
            Err(e) if *e == ENOMEM => stats.fail_nomem += 1,
            Err(e) if *e == EBUSY => stats.fail_busy += 1,
            Err(e) if *e == EINTR => stats.fail_intr += 1,
            Err(_) => {}
        }
        // CAST: Elapsed time is never negative.
        res.map(|mem| (mem, start.elapsed().as_micros_ceil() as u64))
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
        stats.live_buffers = state.live_buffers;
        stats.live_bytes = state.live_bytes;
        stats.largest_free = policy::largest_free(&used, self.region_dma_base, self.region_size);
        Ok(stats)
    }

    /// Lists a new buffer's memory (`node` is preallocated); the guard proves the device is bound.
    pub(crate) fn register(&self, _guard: &BindGuard<'_>, node: RBTreeNode<u64, Arc<Backing>>) {
        self.state.lock().backings.insert(node);
    }

    /// The buffer `charge` belongs to was handed to userspace: count it (live bytes, peak,
    /// allocations, the latency `us` of its allocation). Only buffers handed out are counted, so
    /// a call that fails after allocating leaves the statistics as they were.
    pub(crate) fn hand_out(&self, charge: &Charge, us: u64) {
        let mut state = self.state.lock();
        if charge.live.swap(true, Ordering::Relaxed) {
            return;
        }
        state.live_buffers += 1;
        state.live_bytes += charge.bytes;
        let live = state.live_bytes;
        let stats = &mut state.stats;
        stats.peak_bytes = stats.peak_bytes.max(live);
        stats.allocs += 1;
        stats.hist[policy::bucket(us)] += 1;
    }

    /// A buffer is gone: unlist its memory and free it, in the device's lock scope.
    pub(crate) fn release(&self, backing: &Backing) {
        let mut state = self.state.lock();
        let removed = state.backings.remove(&backing.id());
        if let Some(mem) = backing.take_mem() {
            match state.attached() {
                Some(attached) => mem.free(&attached),
                // Unreachable: unbind frees every listed backing's memory before it clears
                // `attached`, and an unlisted backing belongs to an allocation in flight, which
                // unbind waits for. Dropping leaks, which is safe.
                None => drop(mem),
            }
        }
        drop(state);
        // The list's reference may be the last but one; drop it outside the lock.
        drop(removed);
    }

    /// A dma-buf was created.
    pub(crate) fn count_export(&self) {
        let mut state = self.state.lock();
        state.stats.exports += 1;
        state.stats.live_dmabufs += 1;
    }

    /// A dma-buf went.
    pub(crate) fn count_release(&self) {
        self.state.lock().stats.live_dmabufs -= 1;
    }

    /// An importer or kernel user let go of a buffer: wakes an unbind waiting for that.
    pub(crate) fn importers_changed(&self) {
        self.importers.notify_all();
    }

    /// The live buffers, for debugfs: `(DMA address, size, dma-buf name)` each.
    pub(crate) fn buffers(&self) -> Result<KVec<(u64, usize, Option<CString>)>> {
        let state = self.state.lock();
        let mut out = KVec::with_capacity(state.backings.iter().count(), GFP_KERNEL)?;
        for backing in state.backings.values() {
            out.push(
                (backing.dma_addr(), backing.size(), backing.dmabuf_name()),
                GFP_KERNEL,
            )?;
        }
        Ok(out)
    }

    /// Address spaces tracked for revocation, over all buffers (bounded by the live processes
    /// that mapped them).
    pub(crate) fn tracked_mms(&self) -> usize {
        let state = self.state.lock();
        state.backings.values().map(|b| b.tracked_mms()).sum()
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
        // 1. No new users; stop allocations that back off; wait for allocations in flight.
        let mut state = self.state.lock();
        state.bound = false;
        self.unbinding.notify_all();
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

        // 3. Zap every mapping of every open file and dma-buf; 5. free the memory and detach, in
        // one lock scope.
        let mut state = self.state.lock();
        let mut done: KVec<&Mapping> = KVec::new();
        for mapping in state.files.values() {
            if done.iter().any(|m| m.same(mapping)) {
                continue;
            }
            mapping.zap_all();
            // Deduplication is an optimisation only: zapping twice is harmless.
            let _ = done.push(mapping, GFP_KERNEL);
        }
        drop(done);

        // 4. Importers may be doing DMA into buffers they mapped, and a vmap cannot be revoked:
        // wait until they let go, saying which buffers we wait for.
        let mut said = false;
        loop {
            let busy = state.backings.values().filter(|b| b.busy()).count();
            if busy == 0 {
                break;
            }
            if !said {
                for b in state.backings.values().filter(|b| b.busy()) {
                    dev_warn!(
                        self.dev,
                        "unbind waits for importers of buffer {:#x} ({} bytes, dma-buf {}) to unmap it\n",
                        b.dma_addr(),
                        b.size(),
                        b.dmabuf_name()
                            .as_deref()
                            .and_then(|n| n.to_str().ok())
                            .unwrap_or("unnamed")
                    );
                }
                said = true;
            }
            // Unbind cannot be abandoned half-way: with a signal pending, wait without one.
            let ret = self
                .importers
                .wait_interruptible_timeout(&mut state, kernel::time::msecs_to_jiffies(1000));
            if matches!(ret, CondVarTimeoutResult::Signal { .. }) {
                self.importers.wait(&mut state);
            }
        }
        if said {
            dev_info!(self.dev, "importers let go; unbind goes on\n");
        }

        if let Some(attached) = state.attached() {
            for backing in state.backings.values() {
                if let Some(mem) = backing.take_mem() {
                    mem.free(&attached);
                }
            }
        }
        // INVARIANT: From here on no `Attached` can be made from the state (and no `BindGuard`
        // exists), so nothing is freed to the region after it is detached.
        state.attached = false;
    }
}

/// An allocation in progress; while one exists, unbind waits.
pub(crate) struct BindGuard<'a> {
    /// The device.
    shared: &'a Shared,
}

impl BindGuard<'_> {
    /// Proof that the region is attached, for as long as the guard lives.
    pub(crate) fn attached(&self) -> Attached<'_> {
        // INVARIANT: Unbind waits for every `BindGuard` before it detaches the region.
        Attached(PhantomData)
    }
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

/// A buffer's bytes in the device's accounting: charged against the device limit from the start
/// of its allocation, counted as live once handed out ([`Shared::hand_out`]), and given back when
/// this drops. The one owner of those numbers.
pub(crate) struct Charge {
    /// The device.
    shared: Arc<Shared>,
    /// Bytes charged.
    bytes: u64,
    /// Whether the buffer was handed out (counted in the live figures).
    live: AtomicBool,
}

impl Charge {
    /// The device charged.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.charged_bytes -= self.bytes;
        if *self.live.get_mut() {
            state.live_buffers -= 1;
            state.live_bytes -= self.bytes;
        }
    }
}
