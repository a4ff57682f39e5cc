// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: what the Rust side cannot reach, linked into cmabuf.ko (a Kbuild
 * composite object, as Rust Binder links its C binderfs): the page protection
 * of coherent and write-combined DMA memory. pgprot_dmacoherent() and
 * pgprot_writecombine() are arch macros over run-time state (arm64: KPTI's
 * non-global bit, LPA2), which only C computes as the kernel does; the DMA
 * API's own helper, dma_pgprot() (kernel/dma/mapping.c), is not exported.
 *
 * Coherent and write-combined buffers of dma-direct devices are allocated
 * with dma_alloc_pages() and cleaned once (dmamem.rs), then mapped to users
 * (cmabuf_dma_mmap()) and, on first kernel use, to the kernel
 * (cmabuf_dma_vmap()) with the protection dma_alloc_attrs() and
 * dma_mmap_attrs() would use: the same memory type, built lazily.
 */
#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/iommu-dma.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

/* What dmamem.rs calls, through its own declarations of these (the same signatures). */
bool cmabuf_dma_lazy(struct device *dev);
bool cmabuf_dma_coherent(struct device *dev);
void *cmabuf_dma_vmap(struct device *dev, struct page *page, size_t size, unsigned long attrs);
void cmabuf_dma_vunmap(void *vaddr);
int cmabuf_dma_mmap(struct device *dev, struct vm_area_struct *vma, struct page *page,
		    size_t size, unsigned long first, unsigned long attrs);

/* dma_pgprot() of 7.2 and 7.3, for memory private to the guest (see cmabuf_dma_lazy()). */
static pgprot_t cmabuf_pgprot(struct device *dev, pgprot_t prot, unsigned long attrs)
{
	if (dev_is_dma_coherent(dev))
		return prot;
#ifdef CONFIG_ARCH_HAS_DMA_WRITE_COMBINE
	if (attrs & DMA_ATTR_WRITE_COMBINE)
		return pgprot_encrypted(pgprot_writecombine(prot));
#endif
	return pgprot_encrypted(pgprot_dmacoherent(prot));
}

/*
 * Whether coherent memory of @dev may be built lazily: the device uses
 * dma-direct (no IOMMU, no DMA ops), its memory need not be shared with a
 * hypervisor (confidential guests: dma_alloc_attrs() decrypts it), and
 * dma_alloc_attrs() would itself give page_address() (coherent device) or a
 * vmap() of the pages (CONFIG_DMA_DIRECT_REMAP, arm64 and riscv), not an
 * architecture's own allocator or a global pool.
 */
bool cmabuf_dma_lazy(struct device *dev)
{
	if (get_dma_ops(dev) || use_dma_iommu(dev) || force_dma_unencrypted(dev))
		return false;
	if (dev_is_dma_coherent(dev))
		return true;
	return IS_ENABLED(CONFIG_DMA_DIRECT_REMAP) && !IS_ENABLED(CONFIG_ARCH_HAS_DMA_ALLOC) &&
	       !IS_ENABLED(CONFIG_DMA_GLOBAL_POOL);
}

/* dev_is_dma_coherent(), an inline of dma-map-ops.h. */
bool cmabuf_dma_coherent(struct device *dev)
{
	return dev_is_dma_coherent(dev);
}

/*
 * A kernel mapping of @size bytes (page aligned) of lowmem pages from @page,
 * of the memory type dma_alloc_attrs(@attrs) gives: the linear map on a
 * DMA-coherent device, else an uncached or write-combined vmap(), which
 * cmabuf_dma_vunmap() takes down. NULL if out of memory.
 */
void *cmabuf_dma_vmap(struct device *dev, struct page *page, size_t size, unsigned long attrs)
{
	unsigned long i, count = size >> PAGE_SHIFT;
	struct page **pages;
	void *vaddr;

	if (dev_is_dma_coherent(dev))
		return page_address(page);
	pages = kvmalloc_array(count, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return NULL;
	for (i = 0; i < count; i++)
		pages[i] = page + i;
	/* As dma_common_contiguous_remap() maps a dma_alloc_attrs() allocation. */
	vaddr = vmap(pages, count, VM_DMA_COHERENT, cmabuf_pgprot(dev, PAGE_KERNEL, attrs));
	kvfree(pages);
	return vaddr;
}

/* Takes down a mapping from cmabuf_dma_vmap(). May sleep. */
void cmabuf_dma_vunmap(void *vaddr)
{
	if (is_vmalloc_addr(vaddr))
		vunmap(vaddr);
}

/*
 * Maps the pages of @size bytes from @page, from page @first on, into @vma
 * (being set up by mmap) with the protection dma_mmap_attrs(@attrs) would
 * use, as dma_direct_mmap() does; -ENXIO for a range that leaves them.
 */
int cmabuf_dma_mmap(struct device *dev, struct vm_area_struct *vma, struct page *page,
		    size_t size, unsigned long first, unsigned long attrs)
{
	unsigned long count = size >> PAGE_SHIFT;

	if (first >= count || vma_pages(vma) > count - first)
		return -ENXIO;
	vma->vm_page_prot = cmabuf_pgprot(dev, vma->vm_page_prot, attrs);
	return remap_pfn_range(vma, vma->vm_start, page_to_pfn(page) + first,
			       vma_pages(vma) << PAGE_SHIFT, vma->vm_page_prot);
}
