/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cmabuf: physically contiguous DMA buffers from a CMA region, for userspace.
 *
 * The one definition of the ABI of /dev/cmabufN. The kernel module and the
 * userspace crate generate their Rust view of it with bindgen.
 *
 * Rules for every ioctl (see Documentation/userspace-api/cmabuf.rst):
 * - Unknown flag bits, non-zero reserved fields and non-zero output fields
 *   on input fail with EINVAL; unknown commands with ENOTTY; bad pointers
 *   with EFAULT. A failed call changes nothing.
 * - Structures grow at the end. The size encoded in the command is the
 *   caller's size: the kernel reads min(caller, kernel) bytes and treats
 *   the rest as zero; a larger caller struct is accepted only if its extra
 *   bytes are zero; a struct smaller than its *_SIZE_VER0 is EINVAL. Only
 *   the caller's size is written back.
 * - Handles belong to the file they were allocated on; 0 is never a handle.
 */
#ifndef _UAPI_LINUX_CMABUF_H
#define _UAPI_LINUX_CMABUF_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * ioctl type and numbers: 0xCB 0x20-0x3F. (0xCB 0x00-0x1F is registered to
 * another driver in Documentation/userspace-api/ioctl/ioctl-number.rst; an
 * upstream submission adds "0xCB 20-3F linux/cmabuf.h" there.) Numbers are
 * CMABUF_IOC_NR_* (plain values bindgen can read).
 */
#define CMABUF_IOC_MAGIC		0xCB

/* Cache modes: the low bits of cmabuf_alloc.flags and cmabuf_info.flags. */
/** CMABUF_MODE_COHERENT - dma_alloc_coherent() memory (default); no sync. */
#define CMABUF_MODE_COHERENT		0x0
/** CMABUF_MODE_WRITECOMBINE - coherent, CPU mapping write-combined. */
#define CMABUF_MODE_WRITECOMBINE	0x1
/** CMABUF_MODE_CACHED - non-coherent, CPU-cached; needs CMABUF_IOCTL_SYNC. */
#define CMABUF_MODE_CACHED		0x2
#define CMABUF_MODE_MASK		0x3

/**
 * CMABUF_ALLOC_PAGE_MAP - page-backed mappings (cmabuf_alloc.flags, and
 * reported in cmabuf_info.flags): mmap() of the buffer, through the device
 * file or its dma-buf, inserts the buffer's pages (VM_MIXEDMAP) instead of
 * mapping its page frames (remap_pfn_range, VM_PFNMAP, the default), so that
 * get_user_pages() can follow the mapping: O_DIRECT and io_uring read and
 * write from and into it. Long-term pins of it (io_uring registered buffers,
 * RDMA, VFIO, V4L2 USERPTR) fail with EFAULT: CMA memory cannot be pinned
 * for long. A buffer freed while direct I/O still holds its pages keeps
 * them until the I/O lets go.
 */
#define CMABUF_ALLOC_PAGE_MAP		0x4

/**
 * CMABUF_ALLOC_EXPORT - export the new buffer in the same call (as
 * CMABUF_IOCTL_EXPORT of the whole buffer would): cmabuf_alloc.fd gets a
 * descriptor of its dma-buf, opened with cmabuf_alloc.fd_flags. Needs a
 * structure of at least CMABUF_ALLOC_SIZE_VER2 bytes. Not reported by
 * CMABUF_IOCTL_INFO (it is an action, not a property of the buffer).
 */
#define CMABUF_ALLOC_EXPORT		0x8

/* Valid bits of cmabuf_alloc.flags. */
#define CMABUF_ALLOC_VALID_FLAGS	(CMABUF_MODE_MASK | CMABUF_ALLOC_PAGE_MAP | \
					 CMABUF_ALLOC_EXPORT)

/* Bits of the out_flags fields. */
/** CMABUF_OUT_ADDR_WITHHELD - dma_addr (or region_base) is 0: not privileged. */
#define CMABUF_OUT_ADDR_WITHHELD	0x1
/**
 * CMABUF_OUT_DMA_COHERENT - (CMABUF_IOCTL_DEV_INFO) the device is DMA-coherent
 * (its node has dma-coherent): every cache mode is cached memory, and
 * CMABUF_ALLOC_PAGE_MAP is allowed in every mode; without it only cached
 * buffers can be page-backed (others: EOPNOTSUPP).
 */
#define CMABUF_OUT_DMA_COHERENT		0x2

/**
 * struct cmabuf_alloc - allocate a buffer (CMABUF_IOCTL_ALLOC)
 * @size:	in: bytes wanted, > 0; rounded up to whole pages
 * @flags:	in: one CMABUF_MODE_*, optionally CMABUF_ALLOC_PAGE_MAP; other
 *		bits must be zero
 * @handle:	out: the buffer's handle on this file (never 0)
 * @mmap_offset: out: offset to pass to mmap() to map the buffer
 * @dma_addr:	out: device (DMA) address; 0 unless the caller has
 *		CAP_SYS_RAWIO or the module parameter expose_dma_addr is set
 * (end of version 0, CMABUF_ALLOC_SIZE_VER0 bytes)
 * @alloc_size:	out: the size allocated (page-rounded)
 * @out_flags:	out: CMABUF_OUT_* bits
 * @reserved:	must be zero
 * (end of version 1, CMABUF_ALLOC_SIZE_VER1 bytes)
 * @fd_flags:	in: with CMABUF_ALLOC_EXPORT, the flags of the dma-buf's
 *		descriptor: O_RDWR or O_RDONLY, optionally O_CLOEXEC (as
 *		cmabuf_export.flags); without it, zero
 * @fd:		out: with CMABUF_ALLOC_EXPORT, the new descriptor of the
 *		buffer's dma-buf (later CMABUF_IOCTL_EXPORTs of the whole
 *		buffer give descriptors of the same dma-buf)
 */
struct cmabuf_alloc {
	__u64 size;
	__u32 flags;
	__u32 handle;
	__u64 mmap_offset;
	__u64 dma_addr;
	__u64 alloc_size;
	__u32 out_flags;
	__u32 reserved;
	__u32 fd_flags;
	__u32 fd;
};
#define CMABUF_ALLOC_SIZE_VER0		32
#define CMABUF_ALLOC_SIZE_VER1		48
#define CMABUF_ALLOC_SIZE_VER2		56

/**
 * struct cmabuf_free - free a handle (CMABUF_IOCTL_FREE)
 * @handle:	in: a handle of this file
 * @reserved:	must be zero
 *
 * Mappings of the buffer stay valid; its memory goes back to the region
 * when the last one is unmapped.
 */
struct cmabuf_free {
	__u32 handle;
	__u32 reserved;
};
#define CMABUF_FREE_SIZE_VER0		8

/**
 * struct cmabuf_info - describe a buffer (CMABUF_IOCTL_INFO)
 * @handle:	in: a handle of this file
 * @flags:	out: its CMABUF_MODE_*, and CMABUF_ALLOC_PAGE_MAP if it was
 *		allocated with it
 * @size:	out: its size in bytes (page-rounded)
 * @mmap_offset: out: as returned by CMABUF_IOCTL_ALLOC
 * @dma_addr:	out: as for CMABUF_IOCTL_ALLOC
 * @map_count:	out: how many mappings (VMAs, in any process, of the device file or
 *		the buffer's dma-buf) it has now
 * @out_flags:	out: CMABUF_OUT_* bits
 */
struct cmabuf_info {
	__u32 handle;
	__u32 flags;
	__u64 size;
	__u64 mmap_offset;
	__u64 dma_addr;
	__u32 map_count;
	__u32 out_flags;
};
#define CMABUF_INFO_SIZE_VER0		40

/* cmabuf_sync.flags: exactly one of FOR_CPU / FOR_DEVICE, at least one of
 * READ / WRITE (who reads/writes: the CPU for FOR_CPU, the device for
 * FOR_DEVICE). */
#define CMABUF_SYNC_FOR_CPU		0x1
#define CMABUF_SYNC_FOR_DEVICE		0x2
#define CMABUF_SYNC_READ		0x4
#define CMABUF_SYNC_WRITE		0x8
#define CMABUF_SYNC_VALID_FLAGS		0xf

/**
 * struct cmabuf_sync - hand a buffer range to the CPU or to the device
 *	(CMABUF_IOCTL_SYNC)
 * @handle:	in: a handle of this file
 * @flags:	in: CMABUF_SYNC_* as described above
 * @offset:	in: start of the range, in bytes
 * @length:	in: length of the range; 0 means up to the end of the buffer
 *
 * Needed for CMABUF_MODE_CACHED buffers; validated and then a no-op for
 * coherent and write-combined ones.
 */
struct cmabuf_sync {
	__u32 handle;
	__u32 flags;
	__u64 offset;
	__u64 length;
};
#define CMABUF_SYNC_SIZE_VER0		24

/**
 * struct cmabuf_dev_info - the device, its region, limits and use
 *	(CMABUF_IOCTL_DEV_INFO)
 * @region_name_ptr: in: user buffer for the region's NUL-terminated name,
 *		or 0 for none
 * @region_name_len: in: its size in bytes (64 always suffices)
 * @index:	out: N of /dev/cmabufN
 * @region_base: out: physical base of the region; 0 unless privileged
 *		(as @dma_addr of struct cmabuf_alloc)
 * @region_size: out: region size in bytes
 * @page_size:	out: the page size allocations are rounded to
 * @out_flags:	out: CMABUF_OUT_* bits
 * @max_buffers_per_file: out: limit on the buffers of one open file: its live
 *		handles, and the buffers it allocated whose memory is still taken
 *		(DMA_HEAP_IOCTL_ALLOC buffers, freed handles still mapped or
 *		exported, memory whose pages a pipe or direct I/O holds)
 * @max_bytes_per_file: out: limit on the bytes of those buffers (0: none)
 * @max_bytes_per_device: out: limit on bytes allocated on this device (0: none)
 * @file_buffers: out: live handles of this file
 * @file_bytes:	out: bytes of live handles of this file
 * @dev_buffers: out: buffers allocated on this device (handles or mappings)
 * @dev_bytes:	out: their bytes
 */
struct cmabuf_dev_info {
	__u64 region_name_ptr;
	__u32 region_name_len;
	__u32 index;
	__u64 region_base;
	__u64 region_size;
	__u32 page_size;
	__u32 out_flags;
	__u64 max_buffers_per_file;
	__u64 max_bytes_per_file;
	__u64 max_bytes_per_device;
	__u64 file_buffers;
	__u64 file_bytes;
	__u64 dev_buffers;
	__u64 dev_bytes;
};
#define CMABUF_DEV_INFO_SIZE_VER0	96

/**
 * struct cmabuf_export - export a buffer, or part of it, as a dma-buf
 *	(CMABUF_IOCTL_EXPORT)
 * @handle:	in: the buffer's handle on this file
 * @flags:	in: flags of the new file descriptor: O_RDWR or O_RDONLY, and
 *		optionally O_CLOEXEC; other bits must be zero
 * @fd:		out: a new file descriptor of the dma-buf; every export of one
 *		handle and range gives a descriptor of the same dma-buf while
 *		something (a descriptor, a mapping, an importer) still holds it;
 *		once nothing does, it goes, and the next export makes a new one
 * @reserved:	must be zero
 * (end of version 0, CMABUF_EXPORT_SIZE_VER0 bytes: the whole buffer)
 * @offset:	in: start of the part to export, in bytes; a multiple of the
 *		page size, inside the buffer
 * @length:	in: its length in bytes, a multiple of the page size; 0 means up
 *		to the end of the buffer. The dma-buf is that part alone: its
 *		size, importers' mappings, mmap, DMA_BUF_IOCTL_SYNC and vmap
 *		cover it and nothing else (one allocation holding the planes
 *		of a multi-planar format, one dma-buf per plane)
 */
struct cmabuf_export {
	__u32 handle;
	__u32 flags;
	__u32 fd;
	__u32 reserved;
	__u64 offset;
	__u64 length;
};
/*
 * The most parts (distinct offset and length) of one handle whose dma-bufs
 * exist at once, each held by a descriptor, a mapping or an importer (the
 * handle holds none: a dma-buf nothing holds goes); EXPORT of another part
 * is EMFILE.
 */
#define CMABUF_EXPORT_MAX_PARTS		256
#define CMABUF_EXPORT_SIZE_VER0		16
#define CMABUF_EXPORT_SIZE_VER1		32

/* Buckets of cmabuf_stats.latency_hist: bucket i counts allocations that took
 * [2^i, 2^(i+1)) microseconds (bucket 0 also less, the last one also more). */
#define CMABUF_STATS_HIST_BUCKETS	24

/**
 * struct cmabuf_stats - allocation statistics of the device
 *	(CMABUF_IOCTL_STATS); every field is an output and must be zero on input
 * @allocs:	allocations that succeeded
 * @fail_nomem:	failed with ENOMEM: cmabuf's own buffers leave no room
 * @fail_busy:	failed with EBUSY: room, but CMA could not provide it (pinned
 *		pages, other users of the region) after all retries
 * @fail_intr:	failed with EINTR: a signal arrived during the allocation
 * @fail_limit:	refused by a limit (EMFILE, EDQUOT)
 * @fallbacks:	times the DMA API returned memory outside the region (it falls
 *		back to the page allocator when CMA fails); given back at once
 * @retries:	retries after a failed attempt
 * @live_buffers: buffers allocated now
 * @live_bytes:	their bytes
 * @peak_bytes:	the most bytes allocated at once since the device was bound
 * @region_size: the region's size
 * @largest_free: the largest buffer cmabuf's own buffers leave room for in the
 *		region: a free range, or room in a chunk of small buffers
 *		(other users of the region are not visible to cmabuf)
 * @latency_hist: allocation latency (successful ones), log2 microsecond
 *		buckets, see CMABUF_STATS_HIST_BUCKETS
 * (end of version 0, CMABUF_STATS_SIZE_VER0 bytes)
 * @exports:	dma-bufs created (CMABUF_IOCTL_EXPORT or CMABUF_ALLOC_EXPORT of a
 *		part that had no dma-buf then, and DMA_HEAP_IOCTL_ALLOC)
 * @live_dmabufs: dma-bufs that exist now
 * (end of version 1, CMABUF_STATS_SIZE_VER1 bytes)
 * @pool_bytes:	bytes of the region held in chunks that small buffers are
 *		carved from (pool_max_kib): buffers and free room together
 * @pool_free_bytes: of pool_bytes, the bytes no buffer holds (the region's
 *		pages in use by cmabuf's buffers are its used pages minus these)
 * (end of version 2, CMABUF_STATS_SIZE_VER2 bytes)
 * @held_buffers: buffers that went (freed, unmapped, closed) while others
 *		still hold their pages (a pipe after vmsplice(), direct I/O): their
 *		memory stays taken, and charged to the file, the device and the
 *		dmem cgroup that allocated it, until the pages are let go; they
 *		count in @live_buffers and @live_bytes meanwhile
 * @held_bytes:	their bytes
 * (end of version 3, CMABUF_STATS_SIZE_VER3 bytes)
 * @reserve_bytes: the node's ready reserve: bytes of the region it keeps
 *		allocated ahead of need (0: none; cmabuf,ready-reserve in the device
 *		tree, ready_reserve in sysfs)
 * @reserve_ready_bytes: of them, bytes ready now
 * @reserve_lent_bytes: of them, bytes of buffers it served that are still
 *		allocated (refilled when they go)
 * @reserve_unit: the size of the reserve's pieces: the allocations it serves
 *		(cmabuf,ready-reserve-unit or ready_reserve_unit in sysfs when
 *		fixed, else the last size of at least 1 MiB it could not serve)
 * @reserve_hits: allocations served from the reserve
 * @reserve_misses: allocations of at least 1 MiB it could not serve while on
 * @reserve_refill_us: how long the last refill of the reserve took, from its
 *		first piece to full, in microseconds (0: none yet)
 */
struct cmabuf_stats {
	__u64 allocs;
	__u64 fail_nomem;
	__u64 fail_busy;
	__u64 fail_intr;
	__u64 fail_limit;
	__u64 fallbacks;
	__u64 retries;
	__u64 live_buffers;
	__u64 live_bytes;
	__u64 peak_bytes;
	__u64 region_size;
	__u64 largest_free;
	__u64 latency_hist[CMABUF_STATS_HIST_BUCKETS];
	__u64 exports;
	__u64 live_dmabufs;
	__u64 pool_bytes;
	__u64 pool_free_bytes;
	__u64 held_buffers;
	__u64 held_bytes;
	__u64 reserve_bytes;
	__u64 reserve_ready_bytes;
	__u64 reserve_lent_bytes;
	__u64 reserve_unit;
	__u64 reserve_hits;
	__u64 reserve_misses;
	__u64 reserve_refill_us;
};
#define CMABUF_STATS_SIZE_VER0		288
#define CMABUF_STATS_SIZE_VER1		304
#define CMABUF_STATS_SIZE_VER2		320
#define CMABUF_STATS_SIZE_VER3		336
#define CMABUF_STATS_SIZE_VER4		392

#define CMABUF_IOC_NR_ALLOC		0x20
#define CMABUF_IOC_NR_FREE		0x21
#define CMABUF_IOC_NR_INFO		0x22
#define CMABUF_IOC_NR_SYNC		0x23
#define CMABUF_IOC_NR_DEV_INFO		0x24
#define CMABUF_IOC_NR_STATS		0x25
#define CMABUF_IOC_NR_EXPORT		0x26

#define CMABUF_IOCTL_ALLOC	_IOWR(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_ALLOC, struct cmabuf_alloc)
#define CMABUF_IOCTL_FREE	_IOW(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_FREE, struct cmabuf_free)
#define CMABUF_IOCTL_INFO	_IOWR(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_INFO, struct cmabuf_info)
#define CMABUF_IOCTL_SYNC	_IOW(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_SYNC, struct cmabuf_sync)
#define CMABUF_IOCTL_DEV_INFO	_IOWR(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_DEV_INFO, struct cmabuf_dev_info)
#define CMABUF_IOCTL_STATS	_IOWR(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_STATS, struct cmabuf_stats)
#define CMABUF_IOCTL_EXPORT	_IOWR(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_EXPORT, struct cmabuf_export)

/*
 * /dev/cmabufN also answers DMA_HEAP_IOCTL_ALLOC of <linux/dma-heap.h>
 * (heap_flags must be 0), so that dma-heap users can allocate from it
 * through a /dev/dma_heap/ link.
 */

#endif /* _UAPI_LINUX_CMABUF_H */
