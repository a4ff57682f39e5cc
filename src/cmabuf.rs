// SPDX-License-Identifier: GPL-2.0

//! cmabuf: physically contiguous DMA buffers for userspace, carved on demand
//! from a `reusable` CMA reserved-memory region.
//!
//! A platform driver binds every device-tree node compatible with
//! `"cmabuf,dma-buffer"` whose `memory-region` is a reusable
//! `shared-dma-pool`, and gives each bound node a misc character device,
//! `/dev/cmabufN`.
//!
//! Where things live:
//!
//! - [`driver`]: the platform driver: probe, unbind, what a bound node owns.
//! - [`region`]: FFI edge: attaching the node's reserved-memory region.
//! - [`miscdev`]: FFI edge: the misc device registration, which pins the
//!   module while a file is open.
//! - [`device`]: what a bound node shares with its files: accounting,
//!   limits, and the unbind protocol that revokes buffers.
//! - [`file`]: one open file of `/dev/cmabufN`: handles, ioctls, mmap.
//! - [`buffer`]: a buffer, held by its handle and its mappings; where memory
//!   is given back.
//! - [`dmamem`]: FFI edge: DMA allocation, mapping and sync.
//! - [`dmabuf`]: FFI edge: buffers exported as dma-bufs for V4L2, DRM and
//!   other importers.
//! - [`vma`]: FFI edge: userspace mappings and their lifetime.
//! - [`uapi`]: the ABI, generated from `include/uapi/linux/cmabuf.h`.
//! - [`validate`]: the rules for every value userspace passes in.
//! - [`policy`]: retries under pressure, room in the region, latency buckets.
//! - [`index`]: the `N` of `/dev/cmabufN`.
//! - [`compat`]: what differs between the supported kernel series.
//! - [`debugfs`]: `/sys/kernel/debug/cmabuf/cmabufN`, statistics as text.

mod buffer;
mod compat;
mod debugfs;
mod device;
mod dmabuf;
mod dmamem;
mod driver;
mod file;
mod index;
mod miscdev;
mod policy;
mod region;
mod uapi;
mod validate;
mod vma;

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
            description: "Cache mode of DMA_HEAP_IOCTL_ALLOC buffers: 0 coherent, 1 write-combined, 2 cached",
        },
        expose_dma_addr: u32 {
            default: 0,
            description: "1: report DMA addresses to callers without CAP_SYS_RAWIO",
        },
    },
}

/// The module: the debugfs directory and the platform driver. Fields drop in declaration order,
/// so the driver (and with it every device's debugfs file) goes before the directory.
#[pin_data]
struct CmabufModule {
    /// The platform driver.
    #[pin]
    _driver: Registration<platform::Adapter<driver::CmabufDriver>>,
    /// `/sys/kernel/debug/cmabuf/`.
    _debugfs: debugfs::Root,
}

impl kernel::InPlaceModule for CmabufModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Before the driver: probes look the directory up.
            _debugfs: debugfs::Root::create()?,
            _driver <- Registration::new(c"cmabuf", module),
        })
    }
}
