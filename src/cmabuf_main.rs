// SPDX-License-Identifier: GPL-2.0

//! cmabuf: physically contiguous DMA buffers for userspace, carved on demand
//! from a `reusable` CMA reserved-memory region.
//!
//! A platform driver binds every device-tree node compatible with
//! `"cmabuf,dma-buffer"` whose `memory-region` is a reusable
//! `shared-dma-pool`, and gives each bound node a misc character device,
//! `/dev/cmabufN`.
//!
//! Where things live, in layers: each file imports only from the layers below
//! it (and from the leaves), so there is no circle among them.
//!
//! 1. Memory, at the bottom:
//!    - [`region`]: FFI edge: the node's reusable CMA region, attached to a
//!      memory device of cmabuf's own that outlives the binding and goes with
//!      the last buffer.
//!    - [`dmamem`]: FFI edge: one DMA allocation from the region: allocation,
//!      mapping, sync, freeing.
//!    - [`held`]: memory whose pages others (direct I/O, pipes) still hold
//!      when its buffer goes, freed when they let go.
//!    - [`held_global`]: FFI edge: the module's one such list, a global lock
//!      set up in module init.
//!    - [`pool`]: small buffers carved from pooled chunks of the region,
//!      given back when idle and under memory pressure.
//!    - [`reserve`]: the ready reserve: memory taken from the region ahead
//!      of need, so that a camera's buffers need no migration, given back
//!      under memory pressure.
//!    - [`shrinker`]: FFI edge: a shrinker for anything memory pressure may
//!      shrink (the pool).
//!    - [`work`]: FFI edge: the workqueue cmabuf's work items run on, and
//!      waiting for them (flush, cancel).
//!    - [`module_ref`]: FFI edge: references to the module itself, which
//!      held memory keeps while it waits.
//!    - [`dmem`]: FFI edge: the dmem cgroup controller: the region's entry
//!      in it, and the charge each allocation holds for its allocator's
//!      cgroup until the memory goes.
//! 2. Accounting: [`account`]: a node's figures, limits and statistics, and
//!    the charge each buffer holds.
//! 3. Buffers: [`buffer`]: an allocation with its charge, held by its handle,
//!    its mappings and its dma-buf; where memory goes back (its last holder).
//! 4. The bound node: [`device`]: what a node shares with its files:
//!    region, ledger, limits, allocation with retries, unbind.
//! 5. The edges to userspace and other drivers:
//!    - [`file`]: one open file of `/dev/cmabufN`: handles, ioctl dispatch,
//!      mmap; its ioctls by concern in `file_alloc.rs`, `file_export.rs`
//!      (with the dma-heap path) and `file_query.rs`, child modules of it.
//!    - [`dmabuf`]: FFI edge: buffers exported as dma-bufs for V4L2, DRM and
//!      other importers.
//!    - [`vma`]: FFI edge: userspace mappings and their lifetime.
//!    - [`miscdev`]: FFI edge: the misc device registration.
//!    - [`fops`]: FFI edge: its file operations, which pin the module while a
//!      file is open.
//!    - [`debugfs`]: `/sys/kernel/debug/cmabuf/cmabufN`, statistics as text.
//!    - [`driver`]: the platform driver: probe, unbind, what a bound node owns.
//!    - [`heap_name`]: the dma-heap name a node is published under
//!      (`cmabuf,dma-heap-name`), claimed module-wide so that no two nodes
//!      share one.
//!
//! Leaves, used by any layer: [`uapi`] (the ABI, generated from
//! `include/uapi/linux/cmabuf.h`), [`validate`] (the rules for every value
//! userspace passes in), [`policy`] (retries under pressure, room in the
//! region, latency buckets), [`index`] (the `N` of `/dev/cmabufN`),
//! [`compat`] (what differs between the supported kernel series).

mod account;
mod buffer;
mod compat;
mod debugfs;
mod device;
mod dmabuf;
mod dmamem;
mod dmem;
mod driver;
mod file;
mod fops;
mod heap_name;
mod held;
mod held_global;
mod index;
mod mem;
mod miscdev;
mod module_ref;
mod policy;
mod pool;
mod region;
mod reserve;
mod shrinker;
mod uapi;
mod validate;
mod vma;
mod work;

use kernel::{
    driver::Registration,
    platform,
    prelude::*, //
};

module! {
    type: CmabufModule,
    name: "cmabuf",
    authors: ["The cmabuf developers"],
    description: "Contiguous DMA buffers from a CMA region for userspace",
    license: "GPL v2",
    imports_ns: ["DMA_BUF"],
    params: {
        max_buffers_per_file: u64 {
            default: 1024,
            description: "Most live handles one open file may hold",
        },
        max_bytes_per_file: u64 {
            default: 0,
            description: "Most bytes one open file may hold (0: no limit)",
        },
        max_bytes_per_device: u64 {
            default: 0,
            description: "Most bytes allocated on one device (0: no limit)",
        },
        alloc_retries: u32 {
            default: 4,
            description: "Retries of an allocation that fails although the region has room",
        },
        alloc_backoff_ms: u32 {
            default: 10,
            description: "Delay before the first retry in ms; doubles each retry (max 1000)",
        },
        heap_mode: u32 {
            default: 2,
            description: "Cache mode of DMA_HEAP_IOCTL_ALLOC buffers: 0 coherent, 1 write-combined, 2 cached; add 4 for page-backed mappings",
        },
        expose_dma_addr: u32 {
            default: 0,
            description: "1: report DMA addresses to callers without CAP_SYS_RAWIO",
        },
        pool_max_kib: u32 {
            default: 1024,
            description: "Buffers up to this many KiB (at most 1024) are carved from pooled 4 MiB chunks; 0: every buffer straight from CMA",
        },
    },
}

/// The module: the list of regions, the debugfs directory and the platform driver. Fields drop
/// in declaration order, so the driver (and with it every device's debugfs file) goes before the
/// directory, and the list last.
#[pin_data]
struct CmabufModule {
    /// The platform driver.
    #[pin]
    _driver: Registration<platform::Adapter<driver::CmabufDriver>>,
    /// `/sys/kernel/debug/cmabuf/`.
    _debugfs: debugfs::Root,
    /// Memory whose pages others still hold, freed when they let go; before the list of regions
    /// (that memory holds its region).
    _held: held_global::Owner,
    /// The dma-heap names bound nodes claimed (every node gave its back when the driver went).
    _heap_names: heap_name::Registry,
    /// The module's list of regions.
    _regions: Regions,
}

/// Owner of the module's list of regions ([`region::init_registry`]); frees its storage when the
/// module goes, when no region is left (every file, mapping and dma-buf pins the module).
struct Regions;

impl Regions {
    /// Initialises the list.
    fn init() -> Self {
        region::init_registry();
        Self
    }
}

impl Drop for Regions {
    fn drop(&mut self) {
        region::drop_registry();
    }
}

impl kernel::InPlaceModule for CmabufModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Before the driver: probes use both.
            _regions: Regions::init(),
            _heap_names: heap_name::Registry::init(),
            _held: held_global::Owner::new()?,
            _debugfs: debugfs::Root::create()?,
            _driver <- Registration::new(c"cmabuf", module),
        })
    }
}
