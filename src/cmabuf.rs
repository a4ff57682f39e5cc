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
//! - [`file`]: one open file of `/dev/cmabufN`.
//! - [`index`]: the `N` of `/dev/cmabufN`.

mod driver;
mod file;
mod index;
mod miscdev;
mod region;

kernel::module_platform_driver! {
    type: driver::CmabufDriver,
    name: "cmabuf",
    authors: ["The cmabuf developers"],
    description: "Contiguous DMA buffers from a CMA region for userspace",
    license: "GPL v2",
}
