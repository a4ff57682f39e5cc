// SPDX-License-Identifier: GPL-2.0

//! FFI edge: the reserved-memory region a node names in `memory-region`.
//!
//! [`Region::attach`] assigns the node's first `memory-region` to the device
//! with `of_reserved_mem_device_init_by_idx()`, so that the DMA API serves the
//! device's allocations from it, and accepts it only if it is a CMA area (a
//! `reusable` `shared-dma-pool`) and the very one the node names. Dropping a
//! [`Region`] detaches it again. The reserved-memory calls have no Rust
//! binding in the kernel crate, so they are declared here.

use core::ptr;
use kernel::{
    bindings,
    device::{
        self,
        Core, //
    },
    dma::{
        self,
        DmaMask, //
    },
    page::PAGE_SIZE,
    platform,
    prelude::*,
    str::{
        CStrExt,
        CString, //
    },
    sync::aref::ARef, //
};

// `#[allow]`, not `#[expect]`: whether `struct device` holds a zero-sized (FFI-unsafe) member
// depends on the kernel config (`lockdep_map` is empty without lockdep). Only pointers cross here.
#[allow(improper_ctypes)]
extern "C" {
    fn of_reserved_mem_device_init_by_idx(
        dev: *mut bindings::device,
        np: *mut bindings::device_node,
        idx: c_int,
    ) -> c_int;
    fn of_reserved_mem_device_release(dev: *mut bindings::device);
    fn of_reserved_mem_region_to_resource(
        np: *const bindings::device_node,
        idx: c_uint,
        res: *mut bindings::resource,
    ) -> c_int;
    fn cma_get_name(cma: *const bindings::cma) -> *const c_char;
    #[cfg(CONFIG_OF_DYNAMIC)]
    fn of_node_put(np: *mut bindings::device_node);
}

/// The `N` of a device-tree alias `cmabufN` naming `dev`'s node, if there is one.
pub(crate) fn alias_index<Ctx: device::DeviceContext>(dev: &device::Device<Ctx>) -> Option<u32> {
    // SAFETY: `dev` is a live device; `of_node` is set before probe and stable while bound.
    let np = unsafe { (*raw_device(dev)).of_node };
    if np.is_null() {
        return None;
    }
    // SAFETY: `np` is a valid node and the stem a NUL-terminated string.
    let id = unsafe { bindings::of_alias_get_id(np, c"cmabuf".as_char_ptr()) };
    u32::try_from(id).ok()
}

/// Whether the device tree has an alias `cmabuf<n>`.
fn has_alias(n: u32) -> bool {
    let Ok(name) = CString::try_from_fmt(fmt!("cmabuf{n}")) else {
        // Out of memory: assume the index is claimed, which only skips it.
        return true;
    };
    // SAFETY: `name` is a NUL-terminated string; a path without a leading '/' is looked up
    // among the aliases.
    let np = unsafe { bindings::of_find_node_opts_by_path(name.as_char_ptr(), ptr::null_mut()) };
    if np.is_null() {
        return false;
    }
    // SAFETY: `np` was returned with a reference, given back here. (Without
    // `CONFIG_OF_DYNAMIC`, nodes are not reference-counted and `of_node_put()` is an empty inline.)
    #[cfg(CONFIG_OF_DYNAMIC)]
    unsafe {
        of_node_put(np)
    };
    true
}

/// The first index free for nodes without an alias: one above the highest `cmabufN` alias that
/// names a usable index (aliases at or above [`crate::index::MAX_DEVICES`] are ignored).
pub(crate) fn first_unaliased_index() -> u32 {
    crate::index::unaliased_floor(has_alias)
}

/// Returns the C `struct device` behind `dev`.
pub(crate) fn raw_device<Ctx: device::DeviceContext>(
    dev: &device::Device<Ctx>,
) -> *mut bindings::device {
    // CAST: `device::Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`, which is
    // `#[repr(transparent)]` over the C struct, so both pointers have the same address and the
    // C side may write through it (`Opaque` is interior-mutable).
    core::ptr::from_ref(dev)
        .cast::<bindings::device>()
        .cast_mut()
}

/// A reusable CMA region attached to a bound device.
///
/// # Invariants
///
/// `dev` had the region assigned by a successful `of_reserved_mem_device_init_by_idx()`, and
/// its `cma_area` is that region's CMA area, until [`Drop`] releases it.
pub(crate) struct Region {
    /// The device the region is attached to.
    dev: ARef<device::Device>,
    /// The region's name: its reserved-memory node name, as CMA knows it.
    name: CString,
    /// Physical base address.
    base: u64,
    /// The base as the device addresses it (DMA address).
    dma_base: u64,
    /// Size in bytes.
    size: u64,
}

impl Region {
    /// Sets `pdev` up for DMA from the region its node names in `memory-region`.
    ///
    /// Fails with `ENODEV` when the node has no usable `memory-region`, `EINVAL` when the region
    /// is not a reusable CMA pool, and says why in the kernel log.
    pub(crate) fn attach(pdev: &platform::Device<Core<'_>>) -> Result<Self> {
        let dev: &device::Device<Core<'_>> = pdev.as_ref();
        let raw = raw_device(dev);

        // The buffers are for device DMA; the region's addresses must be reachable. Regions are
        // placed by the device tree, so accept any 64-bit address here; narrower masks come from
        // `dma-ranges`, which the OF core has applied before probe.
        // SAFETY: Called in probe, before any DMA allocation or mapping for this device exists.
        unsafe { dma::Device::dma_set_mask_and_coherent(pdev, DmaMask::new::<64>())? };

        // Behind an IOMMU the DMA API returns I/O virtual addresses, not addresses in the
        // region: the region-window checks and the addresses reported to userspace would be
        // meaningless, and devices behind an IOMMU have no need for CMA. Refuse.
        // SAFETY: `raw` is a valid device; `iommu_group` is set before probe (when the IOMMU
        // core adds the device) and stable while it is bound.
        if !unsafe { (*raw).iommu_group }.is_null() {
            dev_err!(
                dev,
                "device is behind an IOMMU: cmabuf serves devices that address physical \
                 memory directly; give the consumer its own DMA API allocations instead\n"
            );
            return Err(EINVAL);
        }

        // SAFETY: `raw` is a valid bound device for the duration of probe; `of_node` is set by
        // the OF core before probe and not changed while the device is bound.
        let np = unsafe { (*raw).of_node };
        if np.is_null() {
            dev_err!(
                dev,
                "no device-tree node: cmabuf binds only device-tree nodes\n"
            );
            return Err(ENODEV);
        }

        let mut res: bindings::resource = pin_init::zeroed();
        // SAFETY: `np` is a valid node (above) and `res` a valid, writable `struct resource`.
        let ret = unsafe { of_reserved_mem_region_to_resource(np, 0, &mut res) };
        if ret < 0 {
            dev_err!(
                dev,
                "no usable 'memory-region' (error {}): it must name a reserved-memory node\n",
                ret
            );
            return Err(ENODEV);
        }
        // SAFETY: On success `res.name` points at the region's name, which lives as long as the
        // reserved-memory table, i.e. forever.
        let name = CString::try_from(unsafe { CStr::from_char_ptr(res.name) })?;
        let base = res.start;
        let size = res.end - res.start + 1;

        // SAFETY: `raw` and `np` are valid (above); index 0 exists since the lookup above worked.
        let ret = unsafe { of_reserved_mem_device_init_by_idx(raw, np, 0) };
        if ret < 0 {
            dev_err!(
                dev,
                "cannot attach memory-region {} (error {})\n",
                &*name,
                ret
            );
            return Err(Error::from_errno(ret));
        }

        // SAFETY: `raw` is valid; `cma_area` is only written by reserved-memory init/release for
        // this device, which run in its probe and remove paths, serialised with us.
        let cma = unsafe { (*raw).cma_area };
        if cma.is_null() {
            dev_err!(
                dev,
                "memory-region {} is not a CMA area: it must be a 'reusable' shared-dma-pool \
                 without 'no-map' (and not disabled)\n",
                &*name
            );
            // SAFETY: Undoes the successful init above (which may have set up a coherent pool).
            unsafe { of_reserved_mem_device_release(raw) };
            return Err(EINVAL);
        }
        // SAFETY: `cma` is a live CMA area (CMA areas are never freed); its name is a C string
        // stored inside it.
        let cma_name = unsafe { CStr::from_char_ptr(cma_get_name(cma)) };
        if cma_name != &*name {
            dev_err!(
                dev,
                "device uses CMA area {}, not its memory-region {}\n",
                cma_name,
                &*name
            );
            // SAFETY: Undoes the successful init above.
            unsafe { of_reserved_mem_device_release(raw) };
            return Err(EINVAL);
        }

        // The region's DMA address, which may differ from its physical one (`dma-ranges`):
        // map its first page (RAM, without touching caches) and unmap it again.
        let dir = crate::compat::dma_dir::BIDIRECTIONAL;
        // CAST: A small flag constant.
        let attrs = bindings::DMA_ATTR_SKIP_CPU_SYNC as c_ulong;
        // SAFETY: `raw` is a bound device set up for DMA above; `base` is RAM (the region).
        let dma_base = unsafe { bindings::dma_map_phys(raw, base, PAGE_SIZE, dir, attrs) };
        // What the C inline `dma_mapping_error()` does: tell DMA API debugging that the
        // result was checked, then compare with `DMA_MAPPING_ERROR`.
        // SAFETY: `raw` is valid; `dma_base` was just returned for it.
        #[cfg(CONFIG_DMA_API_DEBUG)]
        unsafe {
            bindings::debug_dma_mapping_error(raw, dma_base)
        };
        if dma_base == !0 {
            dev_err!(dev, "region {} is not addressable by the device\n", &*name);
            // SAFETY: Undoes the successful init above.
            unsafe { of_reserved_mem_device_release(raw) };
            return Err(EINVAL);
        }
        // SAFETY: Unmaps the mapping just made, with the same arguments.
        unsafe { bindings::dma_unmap_phys(raw, dma_base, PAGE_SIZE, dir, attrs) };

        // INVARIANT: The region was assigned above and `cma_area` checked to be it.
        Ok(Self {
            dev: ARef::from(&**dev),
            name,
            base,
            dma_base,
            size,
        })
    }

    /// The region's name (its reserved-memory node name).
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }

    /// The region's physical base address.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// The region's base as the device addresses it.
    pub(crate) fn dma_base(&self) -> u64 {
        self.dma_base
    }

    /// The region's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the region was assigned to `dev` and not yet released;
        // `dev` is kept alive by the reference we hold.
        unsafe { of_reserved_mem_device_release(raw_device(&self.dev)) };
    }
}
