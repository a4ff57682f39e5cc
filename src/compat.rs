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

/// The first argument of `dmem_cgroup_register_region()`: the size itself (7.2).
#[cfg(all(CONFIG_CGROUP_DMEM, not(cmabuf_kernel_7_3)))]
type DmemRegionArg = u64;

/// The first argument of `dmem_cgroup_register_region()`: a `struct dmem_cgroup_init` (7.3).
#[cfg(all(CONFIG_CGROUP_DMEM, cmabuf_kernel_7_3))]
type DmemRegionArg = *const DmemCgroupInit;

/// `struct dmem_cgroup_init` (7.3; `<linux/cgroup_dmem.h>` is not in the kernel crate's
/// bindings).
#[cfg(all(CONFIG_CGROUP_DMEM, cmabuf_kernel_7_3))]
#[repr(C)]
struct DmemCgroupInit {
    /// `u64 size`.
    size: u64,
    /// `const struct dmem_cgroup_ops *ops`: none (cmabuf cannot reclaim memory in use).
    ops: *const core::ffi::c_void,
    /// `void *reclaim_priv`.
    reclaim_priv: *mut core::ffi::c_void,
}

/// Registers a dmem cgroup region of `size` (> 0) bytes named `name`: 7.2 takes the size,
/// 7.3 a `struct dmem_cgroup_init` (here without reclaim operations).
#[cfg(CONFIG_CGROUP_DMEM)]
pub(crate) fn dmem_register_region(
    size: u64,
    name: &kernel::str::CStr,
) -> kernel::error::Result<core::ptr::NonNull<core::ffi::c_void>> {
    use kernel::str::CStrExt;
    extern "C" {
        fn dmem_cgroup_register_region(
            first: DmemRegionArg,
            name_fmt: *const kernel::ffi::c_char,
            ...
        ) -> *mut core::ffi::c_void;
    }
    #[cfg(not(cmabuf_kernel_7_3))]
    let first = size;
    #[cfg(cmabuf_kernel_7_3)]
    let init = DmemCgroupInit {
        size,
        ops: core::ptr::null(),
        reclaim_priv: core::ptr::null_mut(),
    };
    #[cfg(cmabuf_kernel_7_3)]
    let first = &raw const init;
    // SAFETY: `first` is what this series takes (`init` lives across the call; the controller
    // copies what it needs); the format takes one NUL-terminated string, which `name` is.
    let ptr =
        unsafe { dmem_cgroup_register_region(first, c"%s".as_char_ptr(), name.as_char_ptr()) };
    core::ptr::NonNull::new(kernel::error::from_err_ptr(ptr)?).ok_or(kernel::error::code::EINVAL)
}
