// SPDX-License-Identifier: GPL-2.0

//! FFI edge: DMA memory of one buffer, from the DMA API of the region's
//! memory device.
//!
//! Coherent and write-combined buffers come from `dma_alloc_attrs()`, cached
//! (non-coherent) ones from `dma_alloc_pages()`; with the region's CMA area
//! assigned to the memory device, both are served from the region. Both zero
//! the memory. Mapping to userspace goes through `dma_mmap_attrs()` /
//! `dma_mmap_pages()`, which are `remap_pfn_range()` with the page
//! protection that fits the mode.
//!
//! The kernel crate's `dma::Coherent` needs a `Device<Bound>` at allocation,
//! which an ioctl does not have, and offers neither the non-coherent
//! allocation nor mmap, hence this file.
//!
//! A [`DmaMem`] holds a [`RegionRef`], so the region stays attached to the
//! memory device for as long as the memory lives, whatever happened to the
//! binding; dropping the [`DmaMem`] frees the memory.

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
use core::ptr::NonNull;
use kernel::{
    bindings,
    mm::virt::VmaNew,
    page::PAGE_SHIFT,
    prelude::*,
    rbtree::RBTreeNodeReservation, //
};

/// What the DMA API handed out, by allocation call.
enum Cookie {
    /// `dma_alloc_attrs()`: the kernel virtual address, and the attributes used.
    Attrs(NonNull<c_void>, c_ulong),
    /// `dma_alloc_pages()`: the first page.
    Pages(NonNull<bindings::page>),
}

/// A zeroed, physically contiguous DMA allocation from a region, freed when dropped.
///
/// # Invariants
///
/// `cookie`, `dma_addr` and `size` are what a successful `dma_alloc_attrs()` (with the attributes
/// in the cookie) or `dma_alloc_pages()` (`DMA_BIDIRECTIONAL`) on `region`'s memory device
/// returned, not yet freed, and lie in the region; the region lists the allocation under
/// `dma_addr`. The [`RegionRef`] keeps the region attached to that device until [`Drop`] has
/// freed the memory.
pub(crate) struct DmaMem {
    /// The region, attached to the device the memory was allocated on.
    region: RegionRef,
    /// The allocation.
    cookie: Cookie,
    /// Its device address.
    dma_addr: u64,
    /// Its size in bytes, page aligned.
    size: usize,
}

// SAFETY: The allocation is not tied to the allocating thread; the DMA API may free, map and sync
// it from any thread.
unsafe impl Send for DmaMem {}
// SAFETY: `&self` methods only pass the allocation to DMA API calls that may run concurrently.
unsafe impl Sync for DmaMem {}

/// `enum dma_data_direction` for a [`Direction`].
fn dma_dir(dir: Direction) -> bindings::dma_data_direction {
    match dir {
        Direction::FromDevice => crate::compat::dma_dir::FROM_DEVICE,
        Direction::ToDevice => crate::compat::dma_dir::TO_DEVICE,
        Direction::Bidirectional => crate::compat::dma_dir::BIDIRECTIONAL,
    }
}

/// Frees what the DMA API handed out for `size` bytes at `dma_addr` on `dev`.
///
/// # Safety
///
/// `cookie`, `dma_addr` and `size` are a live allocation on `dev`, freed exactly once, here, with
/// no CPU mapping of it left.
unsafe fn free_raw(dev: *mut bindings::device, cookie: &Cookie, dma_addr: u64, size: usize) {
    match *cookie {
        // SAFETY: See the function's safety section.
        Cookie::Attrs(cpu, attrs) => unsafe {
            bindings::dma_free_attrs(dev, size, cpu.as_ptr(), dma_addr, attrs)
        },
        // SAFETY: As above, for `dma_alloc_pages()`.
        Cookie::Pages(page) => unsafe {
            bindings::dma_free_pages(
                dev,
                size,
                page.as_ptr(),
                dma_addr,
                crate::compat::dma_dir::BIDIRECTIONAL,
            )
        },
    }
}

impl DmaMem {
    /// Allocates `size` bytes (page aligned, > 0) in `mode` from `region`.
    ///
    /// May sleep while CMA migrates pages; `ENOMEM` when the DMA API has nothing. `Ok(None)` when
    /// the DMA API fell back to memory outside the region, which was given back at once.
    pub(crate) fn alloc(region: &RegionRef, size: usize, mode: Mode) -> Result<Option<Self>> {
        let raw = raw_device(region.device());
        let gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;
        let mut dma_addr: bindings::dma_addr_t = 0;
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let cookie = match mode {
            Mode::Coherent | Mode::WriteCombine => {
                let attrs: c_ulong = if mode == Mode::WriteCombine {
                    // CAST: A small flag constant.
                    bindings::DMA_ATTR_WRITE_COMBINE as c_ulong
                } else {
                    0
                };
                // SAFETY: `raw` is the region's memory device, which the `RegionRef` keeps alive
                // with the region assigned; `dma_addr` is writable.
                let cpu =
                    unsafe { bindings::dma_alloc_attrs(raw, size, &mut dma_addr, gfp, attrs) };
                Cookie::Attrs(NonNull::new(cpu).ok_or(ENOMEM)?, attrs)
            }
            Mode::Cached => {
                // SAFETY: As above.
                let page = unsafe {
                    bindings::dma_alloc_pages(
                        raw,
                        size,
                        &mut dma_addr,
                        crate::compat::dma_dir::BIDIRECTIONAL,
                        gfp,
                    )
                };
                Cookie::Pages(NonNull::new(page).ok_or(ENOMEM)?)
            }
        };
        // CAST: `size` fits in `u64`.
        if !region.contains(dma_addr, size as u64) {
            // The DMA API fell back to the page allocator: not ours to hand out.
            // SAFETY: Just allocated on `raw`, never mapped; freed once.
            unsafe { free_raw(raw, &cookie, dma_addr, size) };
            return Ok(None);
        }
        region.list(node, dma_addr, size);
        // INVARIANT: A successful allocation of `size` bytes in the region, listed under
        // `dma_addr`.
        Ok(Some(Self {
            region: region.clone(),
            cookie,
            dma_addr,
            size,
        }))
    }

    /// The device (DMA) address.
    pub(crate) fn dma_addr(&self) -> u64 {
        self.dma_addr
    }

    /// Maps the buffer into `vma`, starting at page `first` of the buffer.
    ///
    /// `dma_mmap_attrs()` and `dma_mmap_pages()` refuse (`ENXIO`) a range that leaves the buffer.
    pub(crate) fn mmap(&self, vma: &VmaNew, first: usize) -> Result {
        let raw_vma = vma.as_ptr();
        let raw_dev = raw_device(self.region.device());
        // `dma_mmap_*()` read `vm_pgoff` as the page offset inside the buffer; it holds our
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
        };
        // SAFETY: As above.
        unsafe { (*raw_vma).vm_pgoff = pgoff };
        kernel::error::to_result(ret)
    }

    /// Hands `len` bytes at `offset` to the CPU (`for_cpu`) or to the device; `EINVAL` if the
    /// range leaves the buffer.
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

    /// The buffer's first page.
    fn first_page(&self) -> Result<NonNull<bindings::page>> {
        let (cpu, attrs) = match self.cookie {
            Cookie::Pages(page) => return Ok(page),
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

    /// Fills `table` with the buffer's pages, in segments of at most `max_segment` bytes (an
    /// importer's DMA limit): consecutive pages, so mapped through dma-direct they are also
    /// consecutive in DMA address, which importers such as videobuf2-dma-contig require.
    #[cfg(CONFIG_SPARSEMEM_VMEMMAP)]
    pub(crate) fn sg_table(&self, table: &mut bindings::sg_table, max_segment: u32) -> Result {
        let first = self.first_page()?;
        let n = self.size >> PAGE_SHIFT;
        // kvmalloc: a 1 GiB buffer has 262144 pages, 2 MiB of pointers.
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for i in 0..n {
            // With a virtually contiguous memory map, the `struct page`s of physically
            // contiguous memory are consecutive.
            pages.push(first.as_ptr().wrapping_add(i), GFP_KERNEL)?;
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
                self.size as c_ulong,
                max_segment,
                bindings::GFP_KERNEL,
            )
        })
    }

    /// Without a virtually contiguous memory map, page pointers of a range cannot be derived.
    #[cfg(not(CONFIG_SPARSEMEM_VMEMMAP))]
    pub(crate) fn sg_table(&self, _table: &mut bindings::sg_table, _max_segment: u32) -> Result {
        Err(EOPNOTSUPP)
    }

    /// A kernel address of the whole buffer, valid until the memory is freed.
    pub(crate) fn kernel_addr(&self) -> Result<*mut c_void> {
        match self.cookie {
            Cookie::Attrs(cpu, _) => Ok(cpu.as_ptr()),
            // Without highmem every page is in the linear map, and `kmap_local_page()` is
            // `page_address()`: an address that stays valid, not a local mapping.
            #[cfg(not(CONFIG_HIGHMEM))]
            // SAFETY: A live page of the allocation (type invariant).
            Cookie::Pages(page) => Ok(unsafe { bindings::kmap_local_page(page.as_ptr()) }),
            #[cfg(CONFIG_HIGHMEM)]
            Cookie::Pages(_) => Err(EOPNOTSUPP),
        }
    }

    /// The physical address (the region's base plus the offset of the device address).
    pub(crate) fn phys(&self) -> u64 {
        self.region.base() + (self.dma_addr - self.region.dma_base())
    }

    /// The size in bytes, page aligned.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The region the memory came from.
    pub(crate) fn region(&self) -> &RegionRef {
        &self.region
    }
}

impl Drop for DmaMem {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this is a live allocation on the region's memory device,
        // which the `RegionRef` (dropped after this) keeps attached; it is freed exactly once,
        // here. Every CPU mapping of it is gone: user mappings and dma-bufs hold the memory's
        // owner, and so this `DmaMem`, until they go.
        unsafe {
            free_raw(
                raw_device(self.region.device()),
                &self.cookie,
                self.dma_addr,
                self.size,
            )
        };
        self.region.unlist(self.dma_addr);
    }
}

/// Whether the caller may learn physical/DMA addresses: `CAP_SYS_RAWIO`.
pub(crate) fn caller_has_rawio() -> bool {
    // SAFETY: `capable()` only reads the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_RAWIO as c_int) }
}
