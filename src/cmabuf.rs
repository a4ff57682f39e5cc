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
//! - [`vma`]: FFI edge: userspace mappings and their lifetime.
//! - [`uapi`]: the ABI, generated from `include/uapi/linux/cmabuf.h`.
//! - [`validate`]: the rules for every value userspace passes in.
//! - [`index`]: the `N` of `/dev/cmabufN`.

mod buffer;
mod device;
mod dmamem;
mod driver;
mod file;
mod index;
mod miscdev;
mod region;
mod uapi;
mod validate;
mod vma;

kernel::module_platform_driver! {
    type: driver::CmabufDriver,
    name: "cmabuf",
    authors: ["The cmabuf developers"],
    description: "Contiguous DMA buffers from a CMA region for userspace",
    license: "GPL v2",
    params: {
        max_buffers_per_file: u64 {
            default: 1024,
            description: "Most live handles one open file may hold",
        },
        max_bytes_per_file: u64 {
            default: 0,
            description: "Most bytes one open file may hold (0: the region's size)",
        },
        max_bytes_per_device: u64 {
            default: 0,
            description: "Most bytes allocated on one device (0: the region's size)",
        },
        expose_dma_addr: u32 {
            default: 0,
            description: "1: report DMA addresses to callers without CAP_SYS_RAWIO",
        },
    },
}
