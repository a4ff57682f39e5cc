// SPDX-License-Identifier: GPL-2.0

//! FFI edge: DMA memory of one buffer, from the DMA API of the region's
//! memory device.
//!
//! Every buffer comes from `dma_alloc_pages()`: with the region's CMA area
//! assigned to the memory device, served from the region, zeroed through the
//! cached linear map. Cached (non-coherent) buffers are mapped cached, to
//! users with `dma_mmap_pages()`.
//!
//! Coherent and write-combined buffers are the same memory, cleaned from the
//! cache once (`dma_sync_single_for_device(DMA_BIDIRECTIONAL)`: what
//! `dma_alloc_attrs()` does with `arch_dma_prep_coherent()` before it maps
//! the pages uncached) before the first mapping of any kind is made or the
//! DMA address is handed out ([`Alloc::prepare`]), then mapped to users and,
//! on the first kernel use (`dma_buf_vmap()`: vivid, vkms), to the kernel
//! with the page protection `dma_alloc_attrs()` / `dma_mmap_attrs()` would
//! have used (`dma_prot.c`, C: the protections are arch macros).
//! `dma_alloc_attrs()` builds that kernel mapping for every buffer and zeroes
//! through it; most buffers never need it. Until the clean, only the linear
//! map's cached view of the zeros exists, so nothing can see the memory
//! behind them. After the clean, no dirty line of the linear
//! alias is left to be written back over what the device or an uncached
//! mapping writes; clean lines the CPU may fetch into the linear alias later
//! (speculation) are never read: nothing reads these buffers through the
//! linear map (page-backed mappings of them are refused on non-coherent
//! devices, see [`Alloc::map_pages`]), and `dma_alloc_attrs()` memory has the
//! same alias. So the DMA API's coherent contract holds unchanged.
//!
//! Where that cannot hold (a device behind an IOMMU or DMA ops, a
//! confidential guest whose DMA memory must be shared with the host:
//! `cmabuf_dma_lazy()`), coherent buffers come from `dma_alloc_attrs()` and
//! go to users through `dma_mmap_attrs()`, as before.
//!
//! The kernel crate's `dma::Coherent` needs a `Device<Bound>` at allocation,
//! which an ioctl does not have, and offers neither the non-coherent
//! allocation nor mmap, hence this file.
//!
//! Page-backed mappings (`CMABUF_ALLOC_PAGE_MAP`) insert the buffer's pages
//! (`vm_insert_pages()`) with the page protection `dma_mmap_attrs()` would
//! have used, so that `get_user_pages()` can follow them.
//!
//! An [`Alloc`] holds a [`RegionRef`], so the region stays attached to the
//! memory device for as long as the memory lives, whatever happened to the
//! binding. A buffer's memory (`mem.rs`) is a whole allocation or a piece of
//! a pooled chunk (`pool.rs`); the methods here take ranges of the
//! allocation, which it checks.

use crate::{
    region::{
        raw_device,
        RegionRef, //
    },
    validate::{
        Direction,
        Mode, //
    },
};
use core::{
    ptr::NonNull,
    sync::atomic::{
        AtomicBool,
        AtomicPtr,
        Ordering, //
    },
};
use kernel::{
    bindings,
    mm::virt::VmaNew,
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    rbtree::RBTreeNodeReservation, //
};

/// What the DMA API handed out, by allocation call.
enum Cookie {
    /// `dma_alloc_attrs()`: the kernel virtual address, and the attributes used.
    Attrs(NonNull<c_void>, c_ulong),
    /// `dma_alloc_pages()`, cached: the first page.
    Pages(NonNull<bindings::page>),
    /// `dma_alloc_pages()`, for memory coherent (or write-combined: `attrs`) by page
    /// protection: the first page, the kernel mapping once built (null until then), and whether
    /// the zeros were cleaned out of the CPU caches (done before the first mapping or device
    /// address is handed out: [`Alloc::prepare`]).
    Lazy {
        page: NonNull<bindings::page>,
        attrs: c_ulong,
        vaddr: AtomicPtr<c_void>,
        clean: AtomicBool,
    },
}

// The C part of the module (`dma_prot.c`), linked into the same `.ko`. `#[allow]`, not
// `#[expect]`: whether these structures hold a zero-sized (FFI-unsafe) member depends on the kernel
// config (`sched_statistics` is empty without schedstats). Only pointers cross here.
#[allow(improper_ctypes)]
extern "C" {
    fn cmabuf_dma_lazy(dev: *mut bindings::device) -> bool;
    fn cmabuf_dma_coherent(dev: *mut bindings::device) -> bool;
    fn cmabuf_dma_vmap(
        dev: *mut bindings::device,
        page: *mut bindings::page,
        size: usize,
        attrs: c_ulong,
    ) -> *mut c_void;
    fn cmabuf_dma_vunmap(vaddr: *mut c_void);
    fn cmabuf_dma_mmap(
        dev: *mut bindings::device,
        vma: *mut bindings::vm_area_struct,
        page: *mut bindings::page,
        size: usize,
        first: c_ulong,
        attrs: c_ulong,
    ) -> c_int;
}

/// A zeroed, physically contiguous DMA allocation from a region, freed when dropped.
///
/// # Invariants
///
/// `cookie`, `dma_addr` and `size` are what a successful `dma_alloc_attrs()` (with the attributes
/// in the cookie) or `dma_alloc_pages()` (`DMA_BIDIRECTIONAL`) on `region`'s memory device
/// returned, not yet freed, and lie in the region; the region lists the allocation under
/// `dma_addr`. A [`Cookie::Lazy`]'s `vaddr`, if not null, is a live `cmabuf_dma_vmap()` of the
/// whole allocation; if its `clean` is false, no CPU mapping but the linear map's and no device
/// mapping of the memory exists, and its DMA address was handed to nobody. The [`RegionRef`] keeps the region attached to that device until [`Drop`] has
/// freed the memory.
pub(crate) struct Alloc {
    /// The region, attached to the device the memory was allocated on.
    region: RegionRef,
    /// The allocation.
    cookie: Cookie,
    /// Its device address.
    dma_addr: u64,
    /// Its size in bytes, page aligned.
    size: usize,
    /// Its cache mode.
    mode: Mode,
}

// SAFETY: The allocation is not tied to the allocating thread; the DMA API may free, map and sync
// it from any thread.
unsafe impl Send for Alloc {}
// SAFETY: `&self` methods only pass the allocation to DMA API calls that may run concurrently.
unsafe impl Sync for Alloc {}

/// `enum dma_data_direction` for a [`Direction`].
fn dma_dir(dir: Direction) -> bindings::dma_data_direction {
    match dir {
        Direction::FromDevice => crate::compat::dma_dir::FROM_DEVICE,
        Direction::ToDevice => crate::compat::dma_dir::TO_DEVICE,
        Direction::Bidirectional => crate::compat::dma_dir::BIDIRECTIONAL,
    }
}

/// Frees what the DMA API handed out for `size` bytes at `dma_addr` on `dev`, after taking down
/// a lazily built kernel mapping of it.
///
/// # Safety
///
/// `cookie`, `dma_addr` and `size` are a live allocation on `dev`, freed exactly once, here, with
/// no CPU mapping of it left but the cookie's own.
unsafe fn free_raw(dev: *mut bindings::device, cookie: &Cookie, dma_addr: u64, size: usize) {
    let page = match cookie {
        Cookie::Attrs(cpu, attrs) => {
            // SAFETY: See the function's safety section.
            return unsafe { bindings::dma_free_attrs(dev, size, cpu.as_ptr(), dma_addr, *attrs) };
        }
        Cookie::Pages(page) => page,
        Cookie::Lazy { page, vaddr, .. } => {
            let vaddr = vaddr.load(Ordering::Acquire);
            if !vaddr.is_null() {
                // SAFETY: A mapping from `cmabuf_dma_vmap()` (type invariant), taken down once,
                // here, before its pages go; its users are gone (see the function's safety
                // section: `dma_buf_vmap()` users hold the dma-buf, and so the memory).
                unsafe { cmabuf_dma_vunmap(vaddr) };
            }
            page
        }
    };
    // SAFETY: See the function's safety section: a `dma_alloc_pages()` allocation.
    unsafe {
        bindings::dma_free_pages(
            dev,
            size,
            page.as_ptr(),
            dma_addr,
            crate::compat::dma_dir::BIDIRECTIONAL,
        )
    }
}

/// `dma_alloc_pages()` of `size` bytes on `dev`, `DMA_BIDIRECTIONAL`: the first page, and the DMA
/// address in `dma_addr`.
fn alloc_pages(
    dev: *mut bindings::device,
    size: usize,
    dma_addr: &mut bindings::dma_addr_t,
) -> Result<NonNull<bindings::page>> {
    let gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;
    // SAFETY: `dev` is a memory device the caller keeps alive with the region assigned (a
    // `RegionRef`); `dma_addr` is writable.
    let page = unsafe {
        bindings::dma_alloc_pages(
            dev,
            size,
            dma_addr,
            crate::compat::dma_dir::BIDIRECTIONAL,
            gfp,
        )
    };
    NonNull::new(page).ok_or(ENOMEM)
}

impl Alloc {
    /// Allocates `size` bytes (page aligned, > 0) in `mode` from `region`, listed in the region
    /// under its DMA address (as a chunk for small buffers if `chunk`).
    ///
    /// May sleep while CMA migrates pages; `ENOMEM` when the DMA API has nothing. `Ok(None)` when
    /// the DMA API fell back to memory outside the region, which was given back at once.
    pub(crate) fn new(
        region: &RegionRef,
        size: usize,
        mode: Mode,
        chunk: bool,
    ) -> Result<Option<Self>> {
        let raw = raw_device(region.device());
        let mut dma_addr: bindings::dma_addr_t = 0;
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let attrs: c_ulong = if mode == Mode::WriteCombine {
            // CAST: A small flag constant.
            bindings::DMA_ATTR_WRITE_COMBINE as c_ulong
        } else {
            0
        };
        let cookie = match mode {
            Mode::Cached => Cookie::Pages(alloc_pages(raw, size, &mut dma_addr)?),
            // SAFETY: `cmabuf_dma_lazy()` only reads the device, which the `RegionRef` keeps
            // alive.
            _ if unsafe { cmabuf_dma_lazy(raw) } => Cookie::Lazy {
                page: alloc_pages(raw, size, &mut dma_addr)?,
                attrs,
                vaddr: AtomicPtr::new(core::ptr::null_mut()),
                clean: AtomicBool::new(false),
            },
            _ => {
                let gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;
                // SAFETY: `raw` is the region's memory device, which the `RegionRef` keeps alive
                // with the region assigned; `dma_addr` is writable.
                let cpu =
                    unsafe { bindings::dma_alloc_attrs(raw, size, &mut dma_addr, gfp, attrs) };
                Cookie::Attrs(NonNull::new(cpu).ok_or(ENOMEM)?, attrs)
            }
        };
        // CAST: `size` fits in `u64`.
        if !region.contains(dma_addr, size as u64) {
            // The DMA API fell back to the page allocator: not ours to hand out.
            // SAFETY: Just allocated on `raw`, never mapped; freed once.
            unsafe { free_raw(raw, &cookie, dma_addr, size) };
            return Ok(None);
        }
        region.list(node, dma_addr, size, chunk);
        // INVARIANT: A successful allocation of `size` bytes in the region, listed under
        // `dma_addr`.
        Ok(Some(Self {
            region: region.clone(),
            cookie,
            dma_addr,
            size,
            mode,
        }))
    }

    /// The cache mode.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Makes the memory ready for other views than the cached linear map: for coherent and
    /// write-combined memory from `dma_alloc_pages()`, cleans the zeros it wrote through the
    /// linear map out to memory, as `dma_alloc_attrs()` does before it maps pages uncached, once.
    /// Called before every mapping (user, kernel, device) is made and before the DMA address is
    /// handed out: until then only the linear map's cached view exists, which sees the zeros.
    /// So the cost is paid at the first use, not at allocation (most buffers are exported and
    /// mapped once; the CMA heap pays its own cache maintenance at every device mapping).
    ///
    /// `DMA_BIDIRECTIONAL`: on every architecture a clean (riscv's `DMA_FROM_DEVICE` would only
    /// invalidate and drop the zeros). A no-op on a DMA-coherent device. Two first users at once
    /// both clean: harmless.
    fn prepare(&self) {
        let Cookie::Lazy { clean, .. } = &self.cookie else {
            return;
        };
        if clean.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: The whole of a live `dma_alloc_pages()` allocation of the device (type
        // invariant).
        unsafe {
            bindings::__dma_sync_single_for_device(
                raw_device(self.region.device()),
                self.dma_addr,
                self.size,
                crate::compat::dma_dir::BIDIRECTIONAL,
            )
        };
        // INVARIANT: Cleaned above; mappings and the address may be handed out from here on.
        clean.store(true, Ordering::Release);
    }

    /// The device (DMA) address, to hand to userspace (which may program a device with it):
    /// the memory is made ready for devices first ([`Alloc::prepare`]).
    pub(crate) fn device_addr(&self) -> u64 {
        self.prepare();
        self.dma_addr
    }
}

/// An allocation taken ahead of need (the ready reserve): zeroed memory of the region, cached,
/// that nothing maps and nobody was handed; [`Ready::into_alloc`] gives it the cache mode of the
/// buffer it becomes.
///
/// # Invariants
///
/// The allocation's cookie is [`Cookie::Pages`], and its memory still holds the zeros
/// `dma_alloc_pages()` wrote: no CPU or device mapping of it was ever made.
pub(crate) struct Ready(Alloc);

impl Ready {
    /// Allocates `size` bytes (page aligned, > 0) from `region` for the reserve (listed in the
    /// region like any allocation); see [`Alloc::new`].
    pub(crate) fn new(region: &RegionRef, size: usize) -> Result<Option<Self>> {
        // INVARIANT: A fresh cached allocation, handed to nobody.
        Ok(Alloc::new(region, size, Mode::Cached, false)?.map(Self))
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.0.size
    }

    /// The memory as an allocation in `mode`, as [`Alloc::new`] would have made it; the reserve
    /// back if that mode cannot be made from it (coherent memory where `dma_alloc_attrs()` must
    /// make it, see the file's comment).
    pub(crate) fn into_alloc(mut self, mode: Mode) -> core::result::Result<Alloc, Self> {
        let Cookie::Pages(page) = self.0.cookie else {
            return Err(self);
        };
        let raw = raw_device(self.0.region.device());
        match mode {
            Mode::Cached => {}
            // SAFETY: `cmabuf_dma_lazy()` only reads the device, which the `RegionRef` keeps
            // alive.
            _ if unsafe { cmabuf_dma_lazy(raw) } => {
                // As `Alloc::new` makes coherent memory (cleaned before its first use).
                self.0.cookie = Cookie::Lazy {
                    page,
                    attrs: if mode == Mode::WriteCombine {
                        // CAST: A small flag constant.
                        bindings::DMA_ATTR_WRITE_COMBINE as c_ulong
                    } else {
                        0
                    },
                    vaddr: AtomicPtr::new(core::ptr::null_mut()),
                    clean: AtomicBool::new(false),
                };
            }
            _ => return Err(self),
        }
        self.0.mode = mode;
        // INVARIANT: Zeroed, never mapped, with the cookie and clean of the mode (type
        // invariant of `Ready`, and above).
        Ok(self.0)
    }
}

impl Alloc {
    /// The allocation's first page.
    fn first_page(&self) -> Result<NonNull<bindings::page>> {
        let (cpu, attrs) = match self.cookie {
            Cookie::Pages(page) | Cookie::Lazy { page, .. } => return Ok(page),
            Cookie::Attrs(cpu, attrs) => (cpu, attrs),
        };
        // The CPU address may be a remapping (non-coherent devices), so ask the DMA API, which
        // describes the allocation as one segment.
        let mut table: bindings::sg_table = pin_init::zeroed();
        // SAFETY: A live allocation of the device (type invariant) with the attributes it was
        // allocated with; `table` is writable and freed below.
        kernel::error::to_result(unsafe {
            bindings::dma_get_sgtable_attrs(
                raw_device(self.region.device()),
                &mut table,
                cpu.as_ptr(),
                self.dma_addr,
                self.size,
                attrs,
            )
        })?;
        // SAFETY: On success `sgl` is the table's first (and only) entry. `sg_page()`: the page
        // pointer is `page_link` without its two flag bits.
        let page = unsafe { ((*table.sgl).page_link & !3) as *mut bindings::page };
        // SAFETY: Filled above; freed once.
        unsafe { bindings::sg_free_table(&mut table) };
        NonNull::new(page).ok_or(EINVAL)
    }

    /// The linear-map address of `page`.
    fn linear_addr(&self, page: NonNull<bindings::page>) -> Result<*mut c_void> {
        #[cfg(not(CONFIG_HIGHMEM))]
        // SAFETY: A live page of the allocation (type invariant). Without highmem every page is
        // in the linear map and `kmap_local_page()` is `page_address()`: nothing to undo.
        return Ok(unsafe { bindings::kmap_local_page(page.as_ptr()) });
        #[cfg(CONFIG_HIGHMEM)]
        {
            let _ = page;
            Err(crate::validate::eopnotsupp())
        }
    }

    /// A kernel address of the whole allocation, of the mode's memory type, valid until it is
    /// freed. Builds the kernel mapping of coherent and write-combined memory on first use (may
    /// sleep; `ENOMEM` if it cannot).
    pub(crate) fn kernel_addr(&self) -> Result<*mut c_void> {
        let (page, attrs, vaddr) = match &self.cookie {
            Cookie::Attrs(cpu, _) => return Ok(cpu.as_ptr()),
            // Without highmem every page is in the linear map, and `kmap_local_page()` is
            // `page_address()`: an address that stays valid, not a local mapping.
            Cookie::Pages(page) => return self.linear_addr(*page),
            Cookie::Lazy {
                page, attrs, vaddr, ..
            } => (page, attrs, vaddr),
        };
        let built = vaddr.load(Ordering::Acquire);
        if !built.is_null() {
            return Ok(built);
        }
        self.prepare();
        let raw = raw_device(self.region.device());
        // SAFETY: `page` and `size` are the whole of a live lowmem allocation of `raw` (type
        // invariant; `dma_alloc_pages()` gives no highmem), which the `RegionRef` keeps alive.
        let new = unsafe { cmabuf_dma_vmap(raw, page.as_ptr(), self.size, *attrs) };
        if new.is_null() {
            return Err(ENOMEM);
        }
        // Two first users at once: one mapping stays, the other is taken down.
        match vaddr.compare_exchange(
            core::ptr::null_mut(),
            new,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(new),
            Err(winner) => {
                // SAFETY: Built above and never handed out.
                unsafe { cmabuf_dma_vunmap(new) };
                Ok(winner)
            }
        }
    }

    /// Zeroes `len` bytes at `offset` (inside the allocation, checked by the caller) as the
    /// allocation was zeroed: through the kernel mapping of the mode for memory from
    /// `dma_alloc_attrs()` (the uncached or write-combined one), through the linear map otherwise,
    /// and for coherent and write-combined memory, cleaned from the caches after (see the file's
    /// comment).
    pub(crate) fn zero(&self, offset: usize, len: usize) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(EINVAL);
        }
        let base = match &self.cookie {
            Cookie::Attrs(cpu, _) => cpu.as_ptr(),
            Cookie::Pages(page) | Cookie::Lazy { page, .. } => self.linear_addr(*page)?,
        }
        .cast::<u8>();
        // SAFETY: `[offset, offset + len)` lies inside the live allocation (checked above), which
        // `base` maps in full; the caller owns those bytes (pages nobody else was handed).
        unsafe { core::ptr::write_bytes(base.add(offset), 0, len) };
        if let Cookie::Lazy { .. } = self.cookie {
            // CAST: The offset fits in `u64`.
            let addr = self.dma_addr + offset as u64;
            // SAFETY: A range inside (checked above) a live `dma_alloc_pages()` allocation of the
            // device (type invariant).
            unsafe {
                bindings::__dma_sync_single_for_device(
                    raw_device(self.region.device()),
                    addr,
                    len,
                    crate::compat::dma_dir::BIDIRECTIONAL,
                )
            };
        }
        Ok(())
    }

    /// Whether others than the allocation hold references to any of `n` pages from page `first`
    /// (only possible after a page-backed mapping, which returned `page0`): each page of a live
    /// allocation has one reference of its own. The look starts at page `first + *hint` and goes
    /// round; `hint` is left at the page found held (relative to `first`), so that a check of
    /// memory a pipe holds one page of costs one look-up.
    pub(crate) fn pages_held(
        &self,
        page0: NonNull<bindings::page>,
        first: usize,
        n: usize,
        hint: &mut usize,
    ) -> bool {
        let n = n.min((self.size >> PAGE_SHIFT).saturating_sub(first));
        if n == 0 {
            return false;
        }
        let start = *hint % n;
        let found = Iterator::chain(start..n, 0..start).find(|&i| {
            // SAFETY: `page0` is the allocation's first page (from `map_pages`), and with a
            // virtually contiguous memory map (required by `map_pages`) page `first + i` of it,
            // inside the allocation (`i < n`, clamped above), is at `page0 + first + i`; reading
            // the count is `page_ref_count()` (`atomic_read()`: a relaxed load).
            let count = unsafe {
                core::ptr::read_volatile(
                    &raw const (*page0.as_ptr().wrapping_add(first + i))._refcount.counter,
                )
            };
            count != 1
        });
        match found {
            Some(i) => {
                *hint = i;
                true
            }
            None => false,
        }
    }

    /// Maps the allocation's page frames from page `first` into `vma` (`remap_pfn_range()`,
    /// through `dma_mmap_attrs()` / `dma_mmap_pages()`, which refuse (`ENXIO`) a range that
    /// leaves the allocation).
    pub(crate) fn map_pfns(&self, vma: &VmaNew, first: usize) -> Result {
        self.prepare();
        let raw_vma = vma.as_ptr();
        let raw_dev = raw_device(self.region.device());
        // `dma_mmap_*()` read `vm_pgoff` as the page offset inside the allocation; it holds our
        // handle-window offset, which the VMA keeps for `/proc/*/maps` and for splits.
        // SAFETY: The VMA is being set up in our mmap hook (`VmaNew`), so nothing else reads or
        // writes it concurrently.
        let pgoff = unsafe { core::mem::replace(&mut (*raw_vma).vm_pgoff, first as c_ulong) };
        let ret = match self.cookie {
            // SAFETY: `cpu`/`attrs`/`dma_addr`/`size` are a live allocation on the device (type
            // invariant); `raw_vma` is a VMA being set up; the call checks its range.
            Cookie::Attrs(cpu, attrs) => unsafe {
                bindings::dma_mmap_attrs(
                    raw_dev,
                    raw_vma,
                    cpu.as_ptr(),
                    self.dma_addr,
                    self.size,
                    attrs,
                )
            },
            // SAFETY: As above, for a `dma_alloc_pages()` allocation.
            Cookie::Pages(page) => unsafe {
                bindings::dma_mmap_pages(raw_dev, raw_vma, self.size, page.as_ptr())
            },
            // SAFETY: As above; `cmabuf_dma_mmap()` takes the offset itself.
            Cookie::Lazy { page, attrs, .. } => unsafe {
                cmabuf_dma_mmap(
                    raw_dev,
                    raw_vma,
                    page.as_ptr(),
                    self.size,
                    // CAST: `usize` to `c_ulong`, the same width.
                    first as c_ulong,
                    attrs,
                )
            },
        };
        // SAFETY: As above.
        unsafe { (*raw_vma).vm_pgoff = pgoff };
        kernel::error::to_result(ret)
    }

    /// Inserts the `vma`'s length of pages of the allocation from page `first` into `vma`
    /// (`VM_MIXEDMAP`; `ENXIO` past the allocation), with the VMA's own (cacheable) page
    /// protection. Stores the allocation's first page in `exposed` before others can take
    /// references to the pages.
    ///
    /// Only memory whose kernel mapping is the cacheable linear map may be mapped so: cached
    /// buffers, and every mode on a DMA-coherent device. Whoever `get_user_pages()` hands the
    /// pages to (a pipe after `vmsplice()`, `process_vm_readv()`, a bounce buffer) reads and
    /// writes them through that linear map; for memory the kernel and the owner map uncached,
    /// lines cached through the linear map (before the allocation: `alloc_contig_range()` copies
    /// migrated pages through it; or filled speculatively at any time) could be read back instead
    /// of the owner's data. The ioctls refuse such buffers (`EOPNOTSUPP`,
    /// [`crate::region::Region::coherent`]); this refuses them again (`EINVAL`) should one get
    /// here.
    #[cfg(CONFIG_SPARSEMEM_VMEMMAP)]
    pub(crate) fn map_pages(
        &self,
        vma: &VmaNew,
        first: usize,
        exposed: &AtomicPtr<bindings::page>,
    ) -> Result {
        let n = (vma.end() - vma.start()) >> PAGE_SHIFT;
        if first
            .checked_add(n)
            .is_none_or(|end| end > self.size >> PAGE_SHIFT)
        {
            return Err(ENXIO);
        }
        let page0 = self.first_page()?;
        let linear = match self.cookie {
            Cookie::Pages(_) => true,
            Cookie::Attrs(cpu, _) => cpu.as_ptr() == self.linear_addr(page0)?,
            // SAFETY: Only reads the device, which the `RegionRef` keeps alive.
            Cookie::Lazy { .. } => unsafe { cmabuf_dma_coherent(raw_device(self.region.device())) },
        };
        if !linear {
            return Err(EINVAL);
        }
        self.prepare();
        let mixed = vma.set_mixedmap();
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for i in first..first + n {
            // With a virtually contiguous memory map, the `struct page`s of physically
            // contiguous memory are consecutive.
            pages.push(page0.as_ptr().wrapping_add(i), GFP_KERNEL)?;
        }
        // From here on others may take references to the pages.
        exposed.store(page0.as_ptr(), Ordering::Release);
        // CAST: `usize` to `c_ulong`, the same width.
        let mut left = n as c_ulong;
        // SAFETY: `mixed` is a VMA being set up, `VM_MIXEDMAP`; `pages` holds `n` live pages of
        // the allocation (type invariant), which stays allocated while the VMA holds the buffer
        // and, after that, while anyone holds the pages (see `DmaMem`'s drop).
        kernel::error::to_result(unsafe {
            bindings::vm_insert_pages(
                mixed.as_ptr(),
                // CAST: As above.
                vma.start() as c_ulong,
                pages.as_mut_ptr(),
                &mut left,
            )
        })?;
        if left != 0 {
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Without a virtually contiguous memory map, page pointers of a range cannot be derived.
    #[cfg(not(CONFIG_SPARSEMEM_VMEMMAP))]
    pub(crate) fn map_pages(
        &self,
        _vma: &VmaNew,
        _first: usize,
        _exposed: &AtomicPtr<bindings::page>,
    ) -> Result {
        Err(crate::validate::eopnotsupp())
    }

    /// Hands `len` bytes at `offset` of the allocation to the CPU (`for_cpu`) or to the device;
    /// `EINVAL` if the range leaves the allocation.
    ///
    /// A no-op for coherent and write-combined memory.
    pub(crate) fn sync(&self, for_cpu: bool, dir: Direction, offset: usize, len: usize) -> Result {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(EINVAL);
        }
        if !matches!(self.cookie, Cookie::Pages(_)) {
            return Ok(());
        }
        let raw = raw_device(self.region.device());
        // CAST: The offset fits in `u64`.
        let addr = self.dma_addr + offset as u64;
        if for_cpu {
            // SAFETY: A range inside (checked above) a live `dma_alloc_pages()` allocation of the
            // device (type invariant).
            unsafe { bindings::__dma_sync_single_for_cpu(raw, addr, len, dma_dir(dir)) };
        } else {
            // SAFETY: As above.
            unsafe { bindings::__dma_sync_single_for_device(raw, addr, len, dma_dir(dir)) };
        }
        Ok(())
    }

    /// Fills `table` with the pages of the `len` bytes at `offset` of the allocation (page
    /// aligned, inside it: `EINVAL` otherwise), in segments of at most `max_segment` bytes (an
    /// importer's DMA limit): consecutive pages, so mapped through dma-direct they are also
    /// consecutive in DMA address, which importers such as videobuf2-dma-contig require.
    #[cfg(CONFIG_SPARSEMEM_VMEMMAP)]
    pub(crate) fn sg_table(
        &self,
        table: &mut bindings::sg_table,
        max_segment: u32,
        offset: usize,
        len: usize,
    ) -> Result {
        if offset % PAGE_SIZE != 0
            || len % PAGE_SIZE != 0
            || offset.checked_add(len).is_none_or(|end| end > self.size)
        {
            return Err(EINVAL);
        }
        self.prepare();
        let first = self
            .first_page()?
            .as_ptr()
            .wrapping_add(offset >> PAGE_SHIFT);
        let n = len >> PAGE_SHIFT;
        // kvmalloc: a 1 GiB buffer has 262144 pages, 2 MiB of pointers.
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for i in 0..n {
            // With a virtually contiguous memory map, the `struct page`s of physically
            // contiguous memory are consecutive.
            pages.push(first.wrapping_add(i), GFP_KERNEL)?;
        }
        // CAST: A buffer's page count fits in `c_uint` (the region is at most a few GiB).
        let n_pages = u32::try_from(n).map_err(|_| EINVAL)?;
        // SAFETY: `pages` holds `n` live pages of the allocation (type invariant); `table` is
        // writable and freed by its owner with `sg_free_table()`.
        kernel::error::to_result(unsafe {
            bindings::sg_alloc_table_from_pages_segment(
                table,
                pages.as_mut_ptr(),
                n_pages,
                0,
                // CAST: `usize` to `c_ulong`, the same width.
                len as c_ulong,
                max_segment,
                bindings::GFP_KERNEL,
            )
        })
    }

    /// Without a virtually contiguous memory map, page pointers of a range cannot be derived.
    #[cfg(not(CONFIG_SPARSEMEM_VMEMMAP))]
    pub(crate) fn sg_table(
        &self,
        _table: &mut bindings::sg_table,
        _max_segment: u32,
        _offset: usize,
        _len: usize,
    ) -> Result {
        Err(crate::validate::eopnotsupp())
    }

    /// The device (DMA) address.
    pub(crate) fn dma_addr(&self) -> u64 {
        self.dma_addr
    }

    /// The region the memory came from.
    pub(crate) fn region(&self) -> &RegionRef {
        &self.region
    }
}

impl Drop for Alloc {
    fn drop(&mut self) {
        // Unlisted before it is freed, as pieces are: once freed, the address may be handed to
        // another allocation at once, which lists itself under it; a late unlist would remove
        // that live allocation from the list (and with it from `has_room`, `largest_free`, the
        // pool's decisions and debugfs). Between the two calls the list only undercounts, which
        // makes room checks optimistic, never wrong about what they hand out.
        self.region.unlist(self.dma_addr);
        // SAFETY: By the type invariant this is a live allocation on the region's memory device,
        // which the `RegionRef` (dropped after this) keeps attached; it is freed exactly once,
        // here. Every CPU mapping of it is gone: user mappings and dma-bufs hold the memory's
        // owner, and so this allocation, until they go; and nobody else holds its pages
        // (`DmaMem`'s drop hands it to `held` until then).
        unsafe {
            free_raw(
                raw_device(self.region.device()),
                &self.cookie,
                self.dma_addr,
                self.size,
            )
        };
    }
}

/// Whether the caller may learn physical/DMA addresses: `CAP_SYS_RAWIO`.
pub(crate) fn caller_has_rawio() -> bool {
    // SAFETY: `capable()` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_RAWIO as c_int) }
}

/// Who is calling, for the record of who allocated memory: the calling process's id (in the
/// initial pid namespace, as debugfs readers see it) and command name, on device `dev`.
pub(crate) fn caller(dev: u32) -> crate::held::Who {
    let task = kernel::current!();
    let mut comm = [0u8; 16];
    let raw = task.as_ptr();
    for (i, b) in comm.iter_mut().enumerate().take(15) {
        // SAFETY: `raw` is the current task, alive while it runs this; `comm` is a 16-byte array
        // inside it. Another thread of the process may rename it meanwhile (`prctl`), so the
        // bytes are read one by one with volatile loads: a torn name at worst, as `ps` may see.
        let c = unsafe { core::ptr::read_volatile(&raw const (*raw).comm[i]) };
        if c == 0 {
            break;
        }
        // CAST: `c_char` to a byte.
        *b = c as u8;
    }
    crate::held::Who {
        pid: task.tgid_nr_ns(None),
        comm,
        dev,
    }
}
