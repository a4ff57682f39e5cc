// SPDX-License-Identifier: GPL-2.0

//! What differs between the kernel crates of the supported kernel series,
//! in one place. `src/Kbuild` passes `--cfg cmabuf_kernel_7_3` when building
//! against 7.3 or later; everything else in the module is the same source.
//!
//! 7.3 also fixes two things cmabuf works around on 7.2, which need no
//! switch here: `bindings::VM_MAYSHARE` (7.2 defines it as `VM_MAYEXEC`;
//! `vma.rs` builds the flag from its bit number, right on both) and the misc
//! device's `.owner` (7.3's kernel crate sets it; `miscdev.rs` registers its
//! own file operations with `.owner` on both series, so an open file pins the
//! module either way).

use kernel::{
    bindings,
    module_param::ModuleParamAccess, //
};

/// `enum dma_data_direction` values (7.2: one constant each).
#[cfg(not(cmabuf_kernel_7_3))]
pub(crate) mod dma_dir {
    use super::bindings::*;

    /// `DMA_BIDIRECTIONAL`.
    pub(crate) const BIDIRECTIONAL: dma_data_direction = dma_data_direction_DMA_BIDIRECTIONAL;
    /// `DMA_TO_DEVICE`.
    pub(crate) const TO_DEVICE: dma_data_direction = dma_data_direction_DMA_TO_DEVICE;
    /// `DMA_FROM_DEVICE`.
    pub(crate) const FROM_DEVICE: dma_data_direction = dma_data_direction_DMA_FROM_DEVICE;
}

/// `enum dma_data_direction` values (7.3: a newtype with associated constants).
#[cfg(cmabuf_kernel_7_3)]
pub(crate) mod dma_dir {
    use super::bindings::dma_data_direction;

    /// `DMA_BIDIRECTIONAL`.
    pub(crate) const BIDIRECTIONAL: dma_data_direction = dma_data_direction::DMA_BIDIRECTIONAL;
    /// `DMA_TO_DEVICE`.
    pub(crate) const TO_DEVICE: dma_data_direction = dma_data_direction::DMA_TO_DEVICE;
    /// `DMA_FROM_DEVICE`.
    pub(crate) const FROM_DEVICE: dma_data_direction = dma_data_direction::DMA_FROM_DEVICE;
}

/// The value of a module parameter (7.2: `value()` returns a reference).
#[cfg(not(cmabuf_kernel_7_3))]
pub(crate) fn param<T: Copy>(p: &ModuleParamAccess<T>) -> T {
    *p.value()
}

/// The value of a module parameter (7.3: `value()` returns a copy).
#[cfg(cmabuf_kernel_7_3)]
pub(crate) fn param<T: Copy>(p: &ModuleParamAccess<T>) -> T {
    p.value()
}

/// The driver's OF match table (7.3's `of_device_table!` names the module table itself).
#[cfg(not(cmabuf_kernel_7_3))]
macro_rules! of_table {
    ($table:ident, $info:ty, $ids:tt) => {
        kernel::of_device_table!($table, MODULE_OF_TABLE, $info, $ids);
    };
}

/// The driver's OF match table (7.3's `of_device_table!` names the module table itself).
#[cfg(cmabuf_kernel_7_3)]
macro_rules! of_table {
    ($table:ident, $info:ty, $ids:tt) => {
        kernel::of_device_table!($table, $info, $ids);
    };
}

pub(crate) use of_table;
