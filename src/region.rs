// SPDX-License-Identifier: GPL-2.0

//! FFI edge, and the bottom layer: the memory of a node's reusable CMA region.
//!
//! Buffer memory outlives the platform binding: a mapping, a dma-buf, an
//! importer's DMA mapping or a vmap may hold it long after unbind. So the
//! memory is not allocated on the bound platform device (whose DMA API state
//! ends with its binding: `of_reserved_mem_device_release()` clears its
//! `cma_area`, and DMA API debugging reports allocations still pending at
//! unbind) but on a device of cmabuf's own, the *memory device*, as
//! remoteproc does for its carve-outs: a `struct device` that carries the
//! node's DMA configuration (`of_dma_configure_id()`: masks, `dma-ranges`,
//! coherency) and the region assignment
//! (`of_reserved_mem_device_init_by_idx()`). A [`Region`] owns it, and every
//! allocation holds a [`RegionRef`]; the region is detached and the device
//! freed when the binding and the last allocation have both let go.
//!
//! The memory device is initialised but never added to the device model: it
//! is not on a bus, so no driver (ours matches the node's `compatible`) can
//! bind it, and it has no sysfs entries and sends no uevents. Tearing it down
//! is two calls that may run wherever the last user lets go of its memory (a
//! VMA's `close` under the mmap lock, a dma-buf's `release`): releasing the
//! region assignment and dropping the device's last reference.
//!
//! A node that is bound again while memory of its earlier binding lives finds
//! that same [`Region`] again (the module's list of regions, by device-tree
//! node): it allocates from the same region with the same view of what is
//! used, so its room and its statistics count the older buffers.

use core::{
    mem::ManuallyDrop,
    ops::Deref,
    ptr, //
};
use kernel::{
    bindings,
    device::{
        self,
        Core, //
    },
    new_mutex, platform,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    str::{
        CStrExt,
        CString, //
    },
    sync::{
        aref::ARef,
        Arc,
        ArcBorrow,
        Mutex, //
    },
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
    fn of_dma_is_coherent(np: *mut bindings::device_node) -> bool;
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

/// `struct bus_dma_region` of `<linux/dma-direct.h>`, which the bindings leave opaque: one
/// window of a device's `dma_range_map` (an array ended by a zero `size`).
#[repr(C)]
struct BusDmaRegion {
    /// `phys_addr_t cpu_start`.
    cpu_start: bindings::phys_addr_t,
    /// `dma_addr_t dma_start`.
    dma_start: bindings::dma_addr_t,
    /// `u64 size`.
    size: u64,
}

/// The address at which `dev` reaches the physical address `phys` without bouncing (what
/// `translate_phys_to_dma()` in `<linux/dma-direct.h>` computes); `None` if no window of its
/// `dma-ranges` covers it.
pub(crate) fn phys_to_dma(dev: *mut bindings::device, phys: u64) -> Option<u64> {
    // SAFETY: The caller passes a live device; `dma_range_map` is set before it does DMA and
    // stays while it lives.
    let mut m = unsafe { (*dev).dma_range_map }.cast::<BusDmaRegion>();
    if m.is_null() {
        return Some(phys);
    }
    loop {
        // SAFETY: `m` points into the device's map, an array of `struct bus_dma_region` (laid out
        // as `BusDmaRegion`) ended by an entry of size 0, which we stop at.
        let r = unsafe { &*m };
        if r.size == 0 {
            return None;
        }
        let offset = phys.wrapping_sub(r.cpu_start);
        if phys >= r.cpu_start && offset < r.size {
            return Some(r.dma_start + offset);
        }
        // SAFETY: Not past the terminating entry (checked above).
        m = unsafe { m.add(1) };
    }
}

/// The memory device with the region assigned to it.
///
/// # Invariants
///
/// `dev` is a device made by `platform_device_alloc()` (never added), on which a successful
/// `of_reserved_mem_device_init_by_idx()` assigned the region; released in [`Drop`], after which
/// the `ARef` drops the device's last reference.
struct MemDevice {
    /// The device; its reference is the one `platform_device_alloc()` returned.
    dev: ARef<device::Device>,
}

impl Drop for MemDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the region is assigned to `dev` and not yet released;
        // every allocation on the device has been freed (each holds a `RegionRef`, and so the
        // `Region` that owns us).
        unsafe { of_reserved_mem_device_release(raw_device(&self.dev)) };
    }
}

/// What the region knows of one live allocation.
pub(crate) struct Used {
    /// Size in bytes.
    size: usize,
    /// The allocation's dma-buf between export and release (0: none), for debugfs.
    dmabuf: usize,
    /// Whether it is a chunk that small buffers are carved from.
    chunk: bool,
}

/// A node's reusable CMA region, attached to its memory device; see the module documentation.
#[pin_data]
pub(crate) struct Region {
    /// The memory device: it allocates, maps and frees, and goes with the region.
    mem: MemDevice,
    /// The device-tree node it serves (identity only: the memory device holds a reference).
    np: usize,
    /// The region's name: its reserved-memory node name, as CMA knows it.
    name: CString,
    /// Physical base address.
    base: u64,
    /// The base as the device addresses it (DMA address).
    dma_base: u64,
    /// Size in bytes.
    size: u64,
    /// Whether the node's devices are DMA-coherent (`dma-coherent`, or the platform's default):
    /// then every cache mode's memory is the kernel's cached memory.
    coherent: bool,
    /// Live allocations, by DMA address.
    #[pin]
    used: Mutex<RBTree<u64, Used>>,
    /// The region in the dmem cgroup controller, which allocations are charged to.
    dmem: crate::dmem::Region,
}

/// One entry of the module's list of regions.
struct Entry {
    /// [`Region::np`].
    np: usize,
    /// The region, from `Arc::as_ptr` of a live [`RegionRef`].
    region: *const Region,
}

// SAFETY: The pointer is only dereferenced under `REGIONS`' lock (see `RegionRef`).
unsafe impl Send for Entry {}

kernel::sync::global_lock! {
    // SAFETY: `init_registry()` initialises it in module init, before the driver is registered.
    unsafe(uninit) static REGIONS: Mutex<KVec<Entry>> = KVec::new();
}

/// Initialises the module's list of regions; called once, in module init.
pub(crate) fn init_registry() {
    // SAFETY: Called once, in module init, before any other use.
    unsafe { REGIONS.init() };
}

/// Frees the list's storage; called in module exit, when no region is left.
pub(crate) fn drop_registry() {
    let mut list = REGIONS.lock();
    *list = KVec::new();
}

/// A reference to a [`Region`]; the region goes when the last one drops.
///
/// # Invariants
///
/// Every `Arc<Region>` is inside a `RegionRef`, and a region is listed in [`REGIONS`] from its
/// creation until its last `RegionRef` drops. Every drop of a `RegionRef` decrements the count
/// under `REGIONS`' lock and unlists the region in that same lock scope if it was the last, so
/// under that lock a listed region always has a count above zero.
pub(crate) struct RegionRef(ManuallyDrop<Arc<Region>>);

impl Clone for RegionRef {
    fn clone(&self) -> Self {
        // INVARIANT: A new `RegionRef` for a region that is listed (we hold one).
        Self(ManuallyDrop::new(Arc::clone(&self.0)))
    }
}

impl Deref for RegionRef {
    type Target = Region;

    fn deref(&self) -> &Region {
        &self.0
    }
}

impl Drop for RegionRef {
    fn drop(&mut self) {
        let mut list = REGIONS.lock();
        // SAFETY: Taken once, here; `self.0` is not used again.
        let arc = unsafe { ManuallyDrop::take(&mut self.0) };
        let addr = Arc::as_ptr(&arc);
        if let Some(last) = Arc::into_unique_or_drop(arc) {
            // INVARIANT: Unlisted in the lock scope in which its count reached zero.
            list.retain(|e| !ptr::eq(e.region, addr));
            drop(list);
            // Detaches the region and frees the memory device.
            drop(last);
        }
    }
}

impl Region {
    /// The region that `pdev`'s node names in `memory-region`, attached to a memory device: the
    /// one of an earlier binding of the node if its memory still lives, else a new one.
    ///
    /// Fails with `ENODEV` when the node has no usable `memory-region`, `EINVAL` when the region
    /// is not a reusable CMA pool or the device is behind an IOMMU, and says why in the log.
    pub(crate) fn attach(pdev: &platform::Device<Core<'_>>) -> Result<RegionRef> {
        let dev: &device::Device<Core<'_>> = pdev.as_ref();
        let raw = raw_device(dev);

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

        let mut list = REGIONS.lock();
        // CAST: The node's address, as its identity.
        if let Some(e) = list.iter().find(|e| e.np == np as usize) {
            // SAFETY: Under `REGIONS`' lock a listed region has a count above zero (`RegionRef`'s
            // invariant), so it is live and no `UniqueArc` of it exists; `region` came from
            // `Arc::as_ptr`.
            let borrowed = unsafe { ArcBorrow::<Region>::from_raw(e.region) };
            // INVARIANT: A new reference to a listed region.
            return Ok(RegionRef(ManuallyDrop::new(borrowed.into())));
        }

        // What `of_dma_configure_id()` gives the memory device below (`arch_setup_dma_ops()`).
        // SAFETY: `np` is a valid node (above).
        let coherent = unsafe { of_dma_is_coherent(np) };

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

        let (mem, dma_base) = MemDevice::create(dev, np, &name, base)?;
        // SAFETY: `np` is a valid node (above); `full_name` is its NUL-terminated name (with unit
        // address), which lives as long as the node.
        let node = unsafe { CStr::from_char_ptr((*np).full_name) };
        let dmem_name = CString::try_from_fmt(fmt!(
            "cmabuf/{}/{}",
            node.to_str().unwrap_or("node"),
            name.to_str().unwrap_or("region")
        ))?;
        let dmem = crate::dmem::Region::register(size, &dmem_name)?;
        list.reserve(1, GFP_KERNEL)?;
        let region = Arc::pin_init(
            try_pin_init!(Self {
                mem,
                // CAST: The node's address, as its identity.
                np: np as usize,
                name,
                base,
                dma_base,
                size,
                coherent,
                used <- new_mutex!(RBTree::new()),
                dmem,
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: Listed from its creation; room was reserved above, so this cannot fail.
        list.push(
            Entry {
                np: np as usize,
                region: Arc::as_ptr(&region),
            },
            GFP_NOWAIT,
        )?;
        Ok(RegionRef(ManuallyDrop::new(region)))
    }

    /// The memory device: what the DMA API allocates, maps and frees on.
    pub(crate) fn device(&self) -> &device::Device {
        &self.mem.dev
    }

    /// The region's name (its reserved-memory node name).
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }

    /// The region's physical base address.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// The region's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the memory device is DMA-coherent: the kernel's cached view of the memory is the
    /// devices' view, whatever the buffer's cache mode.
    pub(crate) fn coherent(&self) -> bool {
        self.coherent
    }

    /// Whether `[addr, addr + len)` lies in the region, as the device addresses it.
    pub(crate) fn contains(&self, addr: u64, len: u64) -> bool {
        let end = self.dma_base + self.size;
        addr >= self.dma_base && addr.checked_add(len).is_some_and(|e| e <= end)
    }

    /// Lists a new allocation (or, `chunk`, a chunk for small buffers) of `size` bytes under
    /// `key`: its DMA address, with bit 0 set for a piece of a chunk (`node` preallocated).
    pub(crate) fn list(
        &self,
        node: RBTreeNodeReservation<u64, Used>,
        key: u64,
        size: usize,
        chunk: bool,
    ) {
        let node = node.into_node(
            key,
            Used {
                size,
                dmabuf: 0,
                chunk,
            },
        );
        self.used.lock().insert(node);
    }

    /// Unlists what is listed under `key`, which went back to the region (or to its chunk).
    pub(crate) fn unlist(&self, key: u64) {
        let node = self.used.lock().remove_node(&key);
        drop(node);
    }

    /// Records the dma-buf of the allocation listed under `key` (null: none any more, if it was
    /// `old`).
    pub(crate) fn set_dmabuf(&self, key: u64, old: *mut c_void, new: *mut c_void) {
        if let Some(u) = self.used.lock().get_mut(&key) {
            // CAST: Kept as addresses only, to name the dma-buf in debugfs while it lives.
            if old.is_null() || u.dmabuf == old as usize {
                u.dmabuf = new as usize;
            }
        }
    }

    /// The DMA ranges `(address, size)` of the live allocations, in address order (pieces of
    /// pooled chunks, listed under their address with bit 0 set, lie inside their chunks and
    /// are left out).
    pub(crate) fn used_ranges(&self) -> Result<KVec<(u64, u64)>> {
        let used = self.used.lock();
        let mut out = KVec::with_capacity(used.iter().count(), GFP_KERNEL)?;
        for (&addr, u) in used.iter().filter(|(&addr, _)| addr & 1 == 0) {
            // CAST: A buffer's size fits in `u64`.
            out.push((addr, u.size as u64), GFP_KERNEL)?;
        }
        Ok(out)
    }

    /// Whether the live allocations leave room for `len` bytes as CMA would align them.
    pub(crate) fn has_room(&self, len: u64) -> Result<bool> {
        let used = self.used_ranges()?;
        // CAST: The page size fits in `u64`.
        let align = crate::policy::cma_alignment(
            len,
            kernel::page::PAGE_SIZE as u64,
            bindings::CONFIG_CMA_ALIGNMENT,
        );
        Ok(crate::policy::fits(
            &used,
            self.dma_base,
            self.size,
            len,
            align,
        ))
    }

    /// Calls `f(address, size, dma-buf, chunk)` for each live allocation (`chunk`: a chunk that
    /// small buffers are carved from, whose buffers are listed after it), under the region's
    /// lock, which keeps each listed dma-buf alive for the call (its `release` unlists it under
    /// the lock).
    pub(crate) fn for_each_used(&self, mut f: impl FnMut(u64, usize, *mut c_void, bool)) {
        let used = self.used.lock();
        for (&key, u) in used.iter() {
            // CAST: Stored from a pointer in `set_dmabuf`.
            f(key & !1, u.size, u.dmabuf as *mut c_void, u.chunk);
        }
    }

    /// The region in the dmem cgroup controller.
    pub(crate) fn dmem(&self) -> &crate::dmem::Region {
        &self.dmem
    }

    /// The region's DMA base, as the device addresses it.
    pub(crate) fn dma_base(&self) -> u64 {
        self.dma_base
    }
}

impl MemDevice {
    /// A memory device for the node `np` of the bound `parent`, with the node's DMA configuration
    /// and the node's first `memory-region` (named `name`, at physical address `base`) assigned;
    /// also returns the region's DMA address.
    fn create(
        parent: &device::Device<Core<'_>>,
        np: *mut bindings::device_node,
        name: &CStr,
        base: u64,
    ) -> Result<(Self, u64)> {
        // SAFETY: The name is a NUL-terminated string; the function copies it.
        let pdev = unsafe { bindings::platform_device_alloc(c"cmabuf-mem".as_char_ptr(), -1) };
        if pdev.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `pdev` is a live platform device whose reference we own; `dev` is its
        // embedded `struct device`, released through `put_device()` when the `ARef` drops.
        let dev: ARef<device::Device> = unsafe {
            ARef::from_raw(core::ptr::NonNull::new_unchecked(
                (&raw mut (*pdev).dev).cast::<device::Device>(),
            ))
        };
        let raw = raw_device(&dev);
        let praw = raw_device(parent);
        // SAFETY: `raw` is a fresh, unregistered device; `praw` a bound device with a node. This
        // shares the node (with a reference, put when the device is released) and marks it reused.
        unsafe { bindings::device_set_of_node_from_dev(raw, praw) };
        // SAFETY: `raw` is valid; the format takes one string, the parent's name, which lives
        // while the parent does (for the duration of this call).
        kernel::error::to_result(unsafe {
            bindings::dev_set_name(raw, c"%s:mem".as_char_ptr(), (*praw).kobj.name)
        })?;
        // The node's DMA configuration, as the platform bus gives its devices at probe: masks
        // limited by `dma-ranges`, coherency, the bus limit.
        // SAFETY: `raw` is valid, its `dma_mask` set by `platform_device_alloc()`; `np` is its
        // node (so `dma-ranges` are read from the node's parent, as for the platform device).
        kernel::error::to_result(unsafe {
            bindings::of_dma_configure_id(raw, np, true, ptr::null())
        })?;
        // The buffers are for device DMA; the region's addresses must be reachable. Regions are
        // placed by the device tree, so accept any 64-bit address; narrower limits come from
        // `dma-ranges`, applied above.
        // SAFETY: No DMA allocation or mapping exists on the device yet.
        kernel::error::to_result(unsafe { bindings::dma_set_mask_and_coherent(raw, u64::MAX) })?;

        // SAFETY: `raw` and `np` are valid (above); index 0 exists (the caller looked it up).
        let ret = unsafe { of_reserved_mem_device_init_by_idx(raw, np, 0) };
        if ret < 0 {
            dev_err!(
                parent,
                "cannot attach memory-region {} (error {})\n",
                name,
                ret
            );
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: The region is assigned; from here on dropping `mem` releases it.
        let mem = Self { dev };

        // SAFETY: `raw` is valid; `cma_area` is only written by reserved-memory init/release for
        // this device, which only we call.
        let cma = unsafe { (*raw).cma_area };
        if cma.is_null() {
            dev_err!(
                parent,
                "memory-region {} is not a CMA area: it must be a 'reusable' shared-dma-pool \
                 without 'no-map' (and not disabled)\n",
                name
            );
            return Err(EINVAL);
        }
        // SAFETY: `cma` is a live CMA area (CMA areas are never freed); its name is a C string
        // stored inside it.
        let cma_name = unsafe { CStr::from_char_ptr(cma_get_name(cma)) };
        if cma_name != name {
            dev_err!(
                parent,
                "device uses CMA area {}, not its memory-region {}\n",
                cma_name,
                name
            );
            return Err(EINVAL);
        }

        // The region's DMA address, which may differ from its physical one (`dma-ranges`). Not
        // by mapping a page: a device whose streaming mappings bounce (`swiotlb=force`) would
        // report the bounce buffer's address.
        let Some(dma_base) = phys_to_dma(raw, base) else {
            dev_err!(parent, "region {} is not addressable by the device\n", name);
            return Err(EINVAL);
        };
        Ok((mem, dma_base))
    }
}

/// Free pages in the CMA areas (`global_zone_page_state(NR_FREE_CMA_PAGES)`).
pub(crate) fn free_cma_pages() -> usize {
    // CAST: The item index is a small constant.
    zone_stat(bindings::zone_stat_item_NR_FREE_CMA_PAGES as usize)
}

/// Free pages outside the CMA areas: where migration moves the movable pages of a CMA range.
pub(crate) fn free_other_pages() -> usize {
    // CAST: The item index is a small constant.
    zone_stat(bindings::zone_stat_item_NR_FREE_PAGES as usize).saturating_sub(free_cma_pages())
}

/// `global_zone_page_state(item)`.
fn zone_stat(item: usize) -> usize {
    // SAFETY: `vm_zone_stat` is the kernel's array of global zone counters, which lives forever
    // and has an entry for every `zone_stat_item`; reading one is `atomic_long_read()`, a
    // relaxed load.
    let n = unsafe { core::ptr::read_volatile(&raw const bindings::vm_zone_stat[item].counter) };
    // Per-CPU drift can make the global counter briefly negative: none then.
    usize::try_from(n).unwrap_or(0)
}
