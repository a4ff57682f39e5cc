// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: the ABI of /dev/cmabufN from userspace.
 *
 * Every ioctl's success path and every documented error, mmap shapes and
 * lifetimes, cache modes, privileges, unbind and rmmod with live buffers.
 * Every test ends with the region's pages back where they started (checked
 * in the fixture teardown through /sys/kernel/mm/cma/<region>/).
 *
 * Environment: CMABUF_DEV (default /dev/cmabuf0), CMABUF_KO (module path for
 * the rmmod tests; default: the installed module, with modprobe).
 * Skips when the device is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <linux/dma-heap.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024)
#define PAGE 4096ULL

static int buf_info(int fd, __u32 handle, struct cmabuf_info *i)
{
	memset(i, 0, sizeof(*i));
	i->handle = handle;
	return xioctl(fd, CMABUF_IOCTL_INFO, i);
}

static int sync_buf(int fd, __u32 handle, __u32 flags, __u64 off, __u64 len)
{
	struct cmabuf_sync s = {
		.handle = handle, .flags = flags, .offset = off, .length = len,
	};

	return xioctl(fd, CMABUF_IOCTL_SYNC, &s);
}

static void *map_buf(int fd, const struct cmabuf_alloc *a)
{
	return mmap(NULL, a->alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    a->mmap_offset);
}

/* errno of a mapping attempt that must fail; 0 (after unmapping) if it worked. */
static int mmap_errno(int fd, size_t len, int prot, int flags, __u64 off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		return 0;
	}
	return errno;
}

/* Runs fn(arg) in a child; returns its wait status. */
static int in_child(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

FIXTURE(dev) {
	int fd;
	char region[64];
	__u64 region_size;
	__u64 region_base;
	long used0;
	struct cmabuf_dev_info info;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", dev_path(), strerror(errno));
	ASSERT_EQ(0, dev_info(self->fd, &self->info, self->region, sizeof(self->region)));
	self->region_size = self->info.region_size;
	self->region_base = self->info.region_base;
	self->used0 = cma_used(self->region);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0, cma_used(self->region))
			TH_LOG("region %s: pages not given back", self->region);
}

/* ---- allocate / info / free: success paths ---- */

static void alloc_map_check(struct __test_metadata *_metadata, int fd, __u64 size,
			    __u64 region_base, __u64 region_size)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;
	unsigned char *p;
	__u64 want = (size + PAGE - 1) & ~(PAGE - 1);

	ASSERT_EQ(0, alloc_buf(fd, size, CMABUF_MODE_COHERENT, &a));
	EXPECT_NE(0, a.handle);
	EXPECT_EQ(want, a.alloc_size);
	EXPECT_EQ(0, a.mmap_offset % PAGE);
	EXPECT_EQ(0, a.reserved);
	if (geteuid() == 0) {
		EXPECT_EQ(0, a.out_flags & CMABUF_OUT_ADDR_WITHHELD);
		EXPECT_LE(region_base, a.dma_addr);
		EXPECT_GE(region_base + region_size, a.dma_addr + a.alloc_size);
	}
	ASSERT_EQ(0, buf_info(fd, a.handle, &i));
	EXPECT_EQ(want, i.size);
	EXPECT_EQ(CMABUF_MODE_COHERENT, i.flags);
	EXPECT_EQ(a.mmap_offset, i.mmap_offset);
	EXPECT_EQ(a.dma_addr, i.dma_addr);
	EXPECT_EQ(0, i.map_count);

	p = map_buf(fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, buf_info(fd, a.handle, &i));
	EXPECT_EQ(1, i.map_count);
	EXPECT_EQ(0, p[0]);
	EXPECT_EQ(0, p[want - 1]);
	memset(p, 0x5a, want);
	EXPECT_EQ(0x5a, p[want / 2]);
	EXPECT_EQ(0, munmap(p, want));
	ASSERT_EQ(0, buf_info(fd, a.handle, &i));
	EXPECT_EQ(0, i.map_count);
	EXPECT_EQ(0, free_buf(fd, a.handle));
}

TEST_F(dev, alloc_1_byte)
{
	alloc_map_check(_metadata, self->fd, 1, self->region_base, self->region_size);
}

TEST_F(dev, alloc_4k)
{
	alloc_map_check(_metadata, self->fd, 4 * KiB, self->region_base, self->region_size);
}

TEST_F(dev, alloc_1m)
{
	alloc_map_check(_metadata, self->fd, 1 * MiB, self->region_base, self->region_size);
}

TEST_F(dev, alloc_quarter_region)
{
	alloc_map_check(_metadata, self->fd, self->region_size / 4, self->region_base,
			self->region_size);
}

TEST_F(dev, dev_info_fields)
{
	struct cmabuf_dev_info d;
	struct cmabuf_alloc a;
	char name[64];

	ASSERT_EQ(0, dev_info(self->fd, &d, name, sizeof(name)));
	EXPECT_STREQ(self->region, name);
	EXPECT_LT(0, strlen(name));
	EXPECT_EQ(getpagesize(), d.page_size);
	EXPECT_LT(0, d.region_size);
	EXPECT_LT(0, d.max_buffers_per_file);
	EXPECT_EQ(0, d.file_buffers);
	EXPECT_EQ(0, d.file_bytes);
	if (geteuid() == 0)
		EXPECT_NE(0, d.region_base);
	EXPECT_EQ(strtoul(dev_path() + strlen("/dev/cmabuf"), NULL, 10), d.index);

	ASSERT_EQ(0, alloc_buf(self->fd, 3 * PAGE, 0, &a));
	ASSERT_EQ(0, dev_info(self->fd, &d, NULL, 0));
	EXPECT_EQ(1, d.file_buffers);
	EXPECT_EQ(3 * PAGE, d.file_bytes);
	EXPECT_LE(1, d.dev_buffers);
	EXPECT_LE(3 * PAGE, d.dev_bytes);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

/* ---- bad input: EINVAL, ENOTTY, EFAULT, E2BIG; nothing changes ---- */

TEST_F(dev, alloc_size_zero)
{
	struct cmabuf_alloc a;

	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, 0, 0, &a));
}

TEST_F(dev, alloc_larger_than_region)
{
	struct cmabuf_alloc a;

	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, self->region_size + 1, 0, &a));
	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, self->region_size + PAGE, 0, &a));
}

TEST_F(dev, alloc_overflow_when_rounded)
{
	struct cmabuf_alloc a;

	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, UINT64_MAX, 0, &a));
	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, UINT64_MAX - PAGE + 2, 0, &a));
	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, 1ULL << 63, 0, &a));
}

TEST_F(dev, alloc_unknown_flags)
{
	struct cmabuf_alloc a;
	__u32 bit;

	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, PAGE, CMABUF_MODE_MASK, &a));
	EXPECT_EQ(-EINVAL, alloc_buf(self->fd, PAGE, CMABUF_MODE_MASK | CMABUF_ALLOC_PAGE_MAP, &a));
	/*
	 * Bits 0-1 are the mode, bit 2 is CMABUF_ALLOC_PAGE_MAP (cmabuf_direct.c), bit 3
	 * CMABUF_ALLOC_EXPORT (cmabuf_dmabuf.c).
	 */
	for (bit = 4; bit < 32; bit++)
		EXPECT_EQ(-EINVAL, alloc_buf(self->fd, PAGE, 1U << bit, &a))
			TH_LOG("flag bit %u accepted", bit);
}

TEST_F(dev, alloc_nonzero_output_or_reserved)
{
	struct cmabuf_alloc a;
	int field;

	for (field = 0; field < 6; field++) {
		memset(&a, 0, sizeof(a));
		a.size = PAGE;
		switch (field) {
		case 0: a.handle = 1; break;
		case 1: a.mmap_offset = PAGE; break;
		case 2: a.dma_addr = 1; break;
		case 3: a.alloc_size = PAGE; break;
		case 4: a.out_flags = 1; break;
		case 5: a.reserved = 1; break;
		}
		EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_ALLOC, &a))
			TH_LOG("field %d", field);
	}
}

TEST_F(dev, unknown_command)
{
	struct cmabuf_alloc a = { .size = PAGE };

	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IO('x', 0x7f), NULL));
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOWR(CMABUF_IOC_MAGIC, 0x3f, struct cmabuf_alloc), &a));
	/* Right number, wrong direction. */
	EXPECT_EQ(-ENOTTY, xioctl(self->fd, _IOR(CMABUF_IOC_MAGIC, CMABUF_IOC_NR_ALLOC,
						  struct cmabuf_alloc), &a));
	EXPECT_EQ(0, a.handle);
}

TEST_F(dev, bad_pointers)
{
	void *bad = (void *)16;

	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_ALLOC, NULL));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_ALLOC, bad));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_FREE, bad));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_INFO, bad));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_SYNC, bad));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, bad));
}

/* The output cannot be written: the allocation is undone. */
TEST_F(dev, alloc_readonly_arg_changes_nothing)
{
	struct cmabuf_dev_info d;
	struct cmabuf_alloc *a;

	a = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, a);
	a->size = PAGE;
	ASSERT_EQ(0, mprotect(a, PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_ALLOC, a));
	ASSERT_EQ(0, dev_info(self->fd, &d, NULL, 0));
	EXPECT_EQ(0, d.file_buffers);
	EXPECT_EQ(0, d.file_bytes);
	munmap(a, PAGE);
}

TEST_F(dev, older_struct_version0)
{
	unsigned char raw[64];
	struct cmabuf_alloc *a = (void *)raw;
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_ALLOC,
				 CMABUF_ALLOC_SIZE_VER0);

	memset(raw, 0xee, sizeof(raw));
	memset(raw, 0, CMABUF_ALLOC_SIZE_VER0);
	a->size = 5000;
	ASSERT_EQ(0, xioctl(self->fd, cmd, raw));
	EXPECT_NE(0, a->handle);
	EXPECT_NE(0, a->mmap_offset);
	/* Nothing written past the caller's size. */
	EXPECT_EQ(0xee, raw[CMABUF_ALLOC_SIZE_VER0]);
	EXPECT_EQ(0xee, raw[sizeof(raw) - 1]);
	EXPECT_EQ(0, free_buf(self->fd, a->handle));
}

TEST_F(dev, struct_smaller_than_version0)
{
	unsigned char raw[64] = { 0 };
	unsigned long cmd = _IOC(_IOC_READ | _IOC_WRITE, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_ALLOC,
				 CMABUF_ALLOC_SIZE_VER0 - 8);

	((struct cmabuf_alloc *)raw)->size = PAGE;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, cmd, raw));
}

/* A caller built against a future, larger struct cmabuf_alloc. */
struct alloc_future {
	struct cmabuf_alloc a;
	__u64 future[4];
};

static int alloc_future(int fd, __u64 tail, struct alloc_future *big)
{
	memset(big, 0, sizeof(*big));
	big->a.size = PAGE;
	big->future[3] = tail;
	return xioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_ALLOC,
			       sizeof(*big)), big);
}

TEST_F(dev, newer_struct_zero_tail)
{
	struct alloc_future big;

	ASSERT_EQ(0, alloc_future(self->fd, 0, &big));
	EXPECT_NE(0, big.a.handle);
	EXPECT_EQ(PAGE, big.a.alloc_size);
	EXPECT_EQ(0, big.future[0]);
	EXPECT_EQ(0, big.future[3]);
	EXPECT_EQ(0, free_buf(self->fd, big.a.handle));
}

TEST_F(dev, newer_struct_garbage_tail)
{
	struct cmabuf_dev_info d;
	struct alloc_future big;

	EXPECT_EQ(-E2BIG, alloc_future(self->fd, 1, &big));
	EXPECT_EQ(0, big.a.handle);
	ASSERT_EQ(0, dev_info(self->fd, &d, NULL, 0));
	EXPECT_EQ(0, d.file_buffers);
}

TEST_F(dev, other_ioctls_bad_fields)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;
	struct cmabuf_free f;
	struct cmabuf_dev_info d;
	char small[2];

	ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a));
	memset(&i, 0, sizeof(i));
	i.handle = a.handle;
	i.size = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_INFO, &i));
	memset(&i, 0, sizeof(i));
	i.handle = a.handle;
	i.map_count = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_INFO, &i));

	f.handle = a.handle;
	f.reserved = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_FREE, &f));

	memset(&d, 0, sizeof(d));
	d.region_size = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, &d));
	memset(&d, 0, sizeof(d));
	d.region_name_len = 8;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, &d));
	EXPECT_EQ(-ERANGE, dev_info(self->fd, &d, small, sizeof(small)));
	memset(&d, 0, sizeof(d));
	d.region_name_ptr = 16;
	d.region_name_len = 64;
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, &d));

	/* Still there after all of that. */
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

/* cmabuf's own buffers leave no room: ENOMEM at once, no retries. */
TEST_F(dev, region_full_enomem)
{
	struct cmabuf_stats s0, s1;
	struct cmabuf_alloc a, b;

	ASSERT_EQ(0, get_stats(self->fd, &s0));
	ASSERT_EQ(0, alloc_buf(self->fd, self->region_size, 0, &a));
	EXPECT_EQ(-ENOMEM, alloc_buf(self->fd, PAGE, 0, &b));
	ASSERT_EQ(0, get_stats(self->fd, &s1));
	EXPECT_EQ(s0.fail_nomem + 1, s1.fail_nomem);
	EXPECT_EQ(s0.retries, s1.retries);
	EXPECT_EQ(0, s1.largest_free);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

/* Free bytes, but no free range large enough: ENOMEM too. */
TEST_F(dev, region_fragmented_enomem)
{
	__u64 n = self->region_size / MiB, i;
	struct cmabuf_stats st;
	struct cmabuf_alloc a;
	__u32 *h = calloc(n, sizeof(*h));

	ASSERT_NE(NULL, h);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, alloc_buf(self->fd, MiB, 0, &a));
		h[i] = a.handle;
	}
	for (i = 0; i < n; i += 2)
		EXPECT_EQ(0, free_buf(self->fd, h[i]));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(MiB, st.largest_free);
	EXPECT_EQ(self->region_size / 2, st.live_bytes);
	EXPECT_EQ(-ENOMEM, alloc_buf(self->fd, 2 * MiB, 0, &a));
	EXPECT_EQ(0, alloc_buf(self->fd, MiB, 0, &a));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	for (i = 1; i < n; i += 2)
		EXPECT_EQ(0, free_buf(self->fd, h[i]));
	free(h);
}

/*
 * Room by cmabuf's account, but another user of the region (the mainline
 * CMA heap) holds a page of every candidate range: retried, then EBUSY.
 */
TEST_F(dev, region_held_by_other_user_ebusy)
{
	struct dma_heap_allocation_data h = {
		.len = 1 * MiB, .fd_flags = O_RDWR | O_CLOEXEC,
	};
	struct cmabuf_stats s0, s1;
	struct cmabuf_alloc a;
	char path[128];
	int heap;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", self->region);
	heap = open(path, O_RDWR | O_CLOEXEC);
	if (heap < 0)
		SKIP(return, "no %s (CONFIG_DMABUF_HEAPS_CMA)", path);
	ASSERT_EQ(0, get_stats(self->fd, &s0));
	ASSERT_EQ(0, xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &h));
	EXPECT_EQ(-EBUSY, alloc_buf(self->fd, self->region_size, 0, &a));
	ASSERT_EQ(0, get_stats(self->fd, &s1));
	EXPECT_EQ(s0.fail_busy + 1, s1.fail_busy);
	EXPECT_LT(s0.retries, s1.retries);
	EXPECT_EQ(0, s1.live_bytes);
	close(h.fd);
	close(heap);
	ASSERT_EQ(0, alloc_buf(self->fd, self->region_size, 0, &a));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

/*
 * CMA cannot give even a small buffer (the CMA heap holds the whole region),
 * so the DMA API falls back to the page allocator: cmabuf gives that memory
 * back, counts it, and fails with EBUSY rather than hand out memory from
 * outside the region.
 */
TEST_F(dev, fallback_outside_region_refused)
{
	struct dma_heap_allocation_data h = {
		.len = 0, .fd_flags = O_RDWR | O_CLOEXEC,
	};
	struct cmabuf_stats s0, s1;
	struct cmabuf_alloc a;
	char path[128];
	int heap;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", self->region);
	heap = open(path, O_RDWR | O_CLOEXEC);
	if (heap < 0)
		SKIP(return, "no %s (CONFIG_DMABUF_HEAPS_CMA)", path);
	h.len = self->region_size;
	ASSERT_EQ(0, xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &h));
	ASSERT_EQ(0, get_stats(self->fd, &s0));
	EXPECT_EQ(-EBUSY, alloc_buf(self->fd, 64 * KiB, 0, &a));
	ASSERT_EQ(0, get_stats(self->fd, &s1));
	EXPECT_LT(s0.fallbacks, s1.fallbacks) TH_LOG("the DMA API did not fall back");
	EXPECT_EQ(s0.fail_busy + 1, s1.fail_busy);
	EXPECT_EQ(0, s1.live_bytes);
	close(h.fd);
	close(heap);
}

TEST_F(dev, stats_ioctl)
{
	struct cmabuf_stats s0, s1, bad;
	struct cmabuf_alloc a;
	__u64 n0 = 0, n1 = 0;
	int i;

	ASSERT_EQ(0, get_stats(self->fd, &s0));
	EXPECT_EQ(self->region_size, s0.region_size);
	ASSERT_EQ(0, alloc_buf(self->fd, 3 * PAGE, 0, &a));
	ASSERT_EQ(0, get_stats(self->fd, &s1));
	EXPECT_EQ(s0.allocs + 1, s1.allocs);
	EXPECT_EQ(s0.live_bytes + 3 * PAGE, s1.live_bytes);
	EXPECT_EQ(s0.live_buffers + 1, s1.live_buffers);
	EXPECT_LE(s1.live_bytes, s1.peak_bytes);
	for (i = 0; i < CMABUF_STATS_HIST_BUCKETS; i++) {
		n0 += s0.latency_hist[i];
		n1 += s1.latency_hist[i];
	}
	EXPECT_EQ(n0 + 1, n1);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	/* Every field is an output. */
	memset(&bad, 0, sizeof(bad));
	bad.latency_hist[5] = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_STATS, &bad));
	memset(&bad, 0, sizeof(bad));
	bad.allocs = 1;
	EXPECT_EQ(-EINVAL, xioctl(self->fd, CMABUF_IOCTL_STATS, &bad));
	EXPECT_EQ(-EFAULT, xioctl(self->fd, CMABUF_IOCTL_STATS, (void *)16));
}

/* ---- handles ---- */

TEST_F(dev, double_free_and_unknown_handles)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;

	ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	EXPECT_EQ(-ENOENT, free_buf(self->fd, a.handle));
	EXPECT_EQ(-ENOENT, buf_info(self->fd, a.handle, &i));
	EXPECT_EQ(-ENOENT, free_buf(self->fd, 0));
	EXPECT_EQ(-ENOENT, free_buf(self->fd, 0xdeadbeef));
	EXPECT_EQ(-ENOENT, sync_buf(self->fd, 12345, CMABUF_SYNC_FOR_CPU | CMABUF_SYNC_READ, 0, 0));
}

TEST_F(dev, handle_on_another_file)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;
	int fd2 = open(dev_path(), O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a));
	EXPECT_EQ(-ENOENT, buf_info(fd2, a.handle, &i));
	EXPECT_EQ(-ENOENT, free_buf(fd2, a.handle));
	EXPECT_EQ(ENXIO, mmap_errno(fd2, PAGE, PROT_READ, MAP_SHARED, a.mmap_offset));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	close(fd2);
}

TEST_F(dev, limit_buffers_per_file)
{
	__u64 max = self->info.max_buffers_per_file, n;
	struct cmabuf_alloc a;
	__u32 *handles;

	if ((self->info.max_bytes_per_file && max * PAGE > self->info.max_bytes_per_file) ||
	    max * PAGE > self->region_size || max > 65536)
		SKIP(return, "buffer limit %llu not reachable with pages", (unsigned long long)max);
	handles = calloc(max, sizeof(*handles));
	ASSERT_NE(NULL, handles);
	for (n = 0; n < max; n++) {
		ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a)) TH_LOG("buffer %llu", n);
		handles[n] = a.handle;
	}
	EXPECT_EQ(-EMFILE, alloc_buf(self->fd, PAGE, 0, &a));
	EXPECT_EQ(0, free_buf(self->fd, handles[0]));
	EXPECT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a));
	handles[0] = a.handle;
	for (n = 0; n < max; n++)
		EXPECT_EQ(0, free_buf(self->fd, handles[n]));
	free(handles);
}

TEST_F(dev, limit_bytes_per_file)
{
	__u64 max = self->info.max_bytes_per_file;
	struct cmabuf_alloc a, b;

	if (!max)
		SKIP(return, "no per-file byte limit set (max_bytes_per_file=0)");
	if (self->info.max_bytes_per_device && max > self->info.max_bytes_per_device)
		SKIP(return, "file byte limit above the device limit");
	struct cmabuf_export e;
	struct dma_heap_allocation_data h;
	void *p;

	ASSERT_EQ(0, alloc_buf(self->fd, max, 0, &a));
	EXPECT_EQ(-EDQUOT, alloc_buf(self->fd, PAGE, 0, &b));
	h = (struct dma_heap_allocation_data){ .len = PAGE, .fd_flags = O_RDWR };
	EXPECT_EQ(-EDQUOT, xioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, &h));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &b));
	EXPECT_EQ(0, free_buf(self->fd, b.handle));

	/* Bytes count until the memory goes, not until the handle does: a mapping holds them... */
	ASSERT_EQ(0, alloc_buf(self->fd, max, 0, &a));
	p = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	EXPECT_EQ(-EDQUOT, alloc_buf(self->fd, PAGE, 0, &b));
	munmap(p, max);
	/* ... and so does a dma-buf, made by EXPORT or by DMA_HEAP_IOCTL_ALLOC. */
	ASSERT_EQ(0, alloc_buf(self->fd, max, 0, &a));
	e = (struct cmabuf_export){ .handle = a.handle, .flags = O_RDWR };
	ASSERT_EQ(0, xioctl(self->fd, CMABUF_IOCTL_EXPORT, &e));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	EXPECT_EQ(-EDQUOT, alloc_buf(self->fd, PAGE, 0, &b));
	close(e.fd);
	h = (struct dma_heap_allocation_data){ .len = max, .fd_flags = O_RDWR };
	ASSERT_EQ(0, xioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, &h));
	EXPECT_EQ(-EDQUOT, alloc_buf(self->fd, PAGE, 0, &b));
	close(h.fd);
	ASSERT_EQ(0, alloc_buf(self->fd, max, 0, &b));
	EXPECT_EQ(0, free_buf(self->fd, b.handle));
}

TEST_F(dev, limit_bytes_per_device)
{
	__u64 max = self->info.max_bytes_per_device, half = max / 2 & ~(PAGE - 1);
	struct cmabuf_alloc a, b, c;
	int fd2;

	if (!max)
		SKIP(return, "no per-device byte limit set (max_bytes_per_device=0)");
	if (self->info.max_bytes_per_file && max - half > self->info.max_bytes_per_file)
		SKIP(return, "device limit needs more files");
	fd2 = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, alloc_buf(self->fd, half, 0, &a));
	ASSERT_EQ(0, alloc_buf(fd2, max - half, 0, &b));
	EXPECT_EQ(-EDQUOT, alloc_buf(fd2, PAGE, 0, &c));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	EXPECT_EQ(0, free_buf(fd2, b.handle));
	close(fd2);
}

/* ---- zeroing ---- */

static void zeroing(struct __test_metadata *_metadata, int fd, __u64 size)
{
	struct cmabuf_alloc a[32];
	unsigned char *p;
	int i;
	__u64 j;

	for (i = 0; i < 32; i++) {
		ASSERT_EQ(0, alloc_buf(fd, size, 0, &a[i]));
		p = map_buf(fd, &a[i]);
		ASSERT_NE(MAP_FAILED, p);
		memset(p, 0xff, size);
		munmap(p, size);
	}
	for (i = 0; i < 32; i++)
		ASSERT_EQ(0, free_buf(fd, a[i].handle));
	for (i = 0; i < 32; i++) {
		ASSERT_EQ(0, alloc_buf(fd, size, 0, &a[i]));
		p = map_buf(fd, &a[i]);
		ASSERT_NE(MAP_FAILED, p);
		for (j = 0; j < size; j += 8)
			if (*(uint64_t *)(p + j)) {
				ASSERT_EQ(0, *(uint64_t *)(p + j)) TH_LOG("buffer %d byte %llu", i, j);
			}
		munmap(p, size);
	}
	for (i = 0; i < 32; i++)
		EXPECT_EQ(0, free_buf(fd, a[i].handle));
}

TEST_F(dev, zeroed_4k)
{
	zeroing(_metadata, self->fd, 4 * KiB);
}

TEST_F(dev, zeroed_1m)
{
	zeroing(_metadata, self->fd, 1 * MiB);
}

/* ---- mmap ---- */

TEST_F(dev, mmap_range_inside)
{
	struct cmabuf_alloc a;
	unsigned char *whole, *part;
	int i;

	ASSERT_EQ(0, alloc_buf(self->fd, 8 * PAGE, 0, &a));
	whole = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, whole);
	for (i = 0; i < 8; i++)
		whole[i * PAGE] = i + 1;
	part = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, self->fd, a.mmap_offset + 3 * PAGE);
	ASSERT_NE(MAP_FAILED, part);
	EXPECT_EQ(4, part[0]);
	EXPECT_EQ(5, part[PAGE]);
	munmap(part, 2 * PAGE);
	part = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd, a.mmap_offset + 7 * PAGE);
	ASSERT_NE(MAP_FAILED, part);
	EXPECT_EQ(8, part[0]);
	munmap(part, PAGE);
	munmap(whole, 8 * PAGE);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

TEST_F(dev, mmap_out_of_bounds)
{
	struct cmabuf_alloc a;

	ASSERT_EQ(0, alloc_buf(self->fd, 4 * PAGE, 0, &a));
	/* Longer than the buffer. */
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, 5 * PAGE, PROT_READ, MAP_SHARED, a.mmap_offset));
	/* Starts inside, ends outside. */
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, 2 * PAGE, PROT_READ, MAP_SHARED, a.mmap_offset + 3 * PAGE));
	/* Starts past the end. */
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, a.mmap_offset + 4 * PAGE));
	/* Far inside the handle's window. */
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, a.mmap_offset + (1ULL << 35)));
	/* Offset 0 (no handle) and a handle that does not exist. */
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, 0));
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, a.mmap_offset + (1ULL << 36)));
	/* Unaligned offset: refused by the kernel before us. */
	EXPECT_EQ(EINVAL, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, a.mmap_offset + 1));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

TEST_F(dev, mmap_private_exec_refused)
{
	struct cmabuf_alloc a;
	void *p;

	ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a));
	EXPECT_EQ(EINVAL, mmap_errno(self->fd, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, a.mmap_offset));
	EXPECT_EQ(EPERM, mmap_errno(self->fd, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, a.mmap_offset));
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, PAGE, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	/* Cannot grow. */
	EXPECT_EQ(MAP_FAILED, mremap(p, PAGE, 2 * PAGE, MREMAP_MAYMOVE));
	munmap(p, PAGE);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

TEST_F(dev, mmap_after_free)
{
	struct cmabuf_alloc a;

	ASSERT_EQ(0, alloc_buf(self->fd, PAGE, 0, &a));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	EXPECT_EQ(ENXIO, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, a.mmap_offset));
}

TEST_F(dev, two_mappings_and_fork_share)
{
	struct cmabuf_alloc a;
	volatile unsigned char *p, *q;
	int status;
	pid_t pid;

	ASSERT_EQ(0, alloc_buf(self->fd, 2 * PAGE, 0, &a));
	p = map_buf(self->fd, &a);
	q = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(MAP_FAILED, q);
	p[100] = 0x42;
	EXPECT_EQ(0x42, q[100]);
	q[PAGE + 1] = 0x43;
	EXPECT_EQ(0x43, p[PAGE + 1]);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (p[100] != 0x42)
			_exit(1);
		p[200] = 0x44;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0x44, q[200]);
	munmap((void *)p, 2 * PAGE);
	munmap((void *)q, 2 * PAGE);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
}

/*
 * Reads /sys/kernel/debug/cma/<region>/{base_pfn,bitmap}: returns how many of
 * the pages [pfn, pfn + n) CMA has marked allocated, or -1.
 */
static long cma_bits_set(const char *region, uint64_t pfn, uint64_t n)
{
	char path[256];
	unsigned long long base;
	unsigned int word;
	uint64_t bit = 0, first, set = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/cma/%s/base_pfn", region);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%llu", &base) != 1) {
		fclose(f);
		return -1;
	}
	fclose(f);
	if (pfn < base)
		return 0;
	first = pfn - base;
	snprintf(path, sizeof(path), "/sys/kernel/debug/cma/%s/bitmap", region);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%u", &word) == 1) {
		for (int b = 0; b < 32; b++, bit++)
			if (bit >= first && bit < first + n && (word >> b & 1))
				set++;
	}
	fclose(f);
	return set;
}

/*
 * The buffer is one run of pages at its DMA address: CMA's own bitmap shows
 * exactly those pages allocated, and the mapping reaches all of them.
 * /proc/self/pagemap cannot show it: page walks skip VM_PFNMAP mappings
 * (remap_pfn_range), so pagemap reports them as holes; that is checked too,
 * so that a change of mapping method is noticed.
 */
TEST_F(dev, physically_contiguous)
{
	struct cmabuf_alloc a;
	unsigned char *p;
	uint64_t entry, pages = 256, n;
	long set, set_after;
	int pm;

	if (geteuid() != 0)
		SKIP(return, "DMA addresses and the CMA bitmap need root");
	ASSERT_EQ(0, alloc_buf(self->fd, pages * PAGE, 0, &a));
	ASSERT_NE(0, a.dma_addr);
	set = cma_bits_set(self->region, a.dma_addr / PAGE, pages);
	if (set < 0) {
		free_buf(self->fd, a.handle);
		SKIP(return, "no /sys/kernel/debug/cma/%s (CONFIG_CMA_DEBUGFS, debugfs)", self->region);
	}
	EXPECT_EQ(pages, set) TH_LOG("CMA bitmap: %ld of %llu pages allocated at the DMA address",
				     set, (unsigned long long)pages);
	p = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	for (n = 0; n < pages; n++)
		p[n * PAGE + (n % PAGE)] = n;
	for (n = 0; n < pages; n++)
		ASSERT_EQ((unsigned char)n, p[n * PAGE + (n % PAGE)]);
	pm = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, pm);
	ASSERT_EQ(sizeof(entry), pread(pm, &entry, sizeof(entry),
				       (uintptr_t)p / PAGE * sizeof(entry)));
	EXPECT_EQ(0, entry >> 63) TH_LOG("pagemap now walks PFN maps: check PFNs here instead");
	close(pm);
	munmap(p, pages * PAGE);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	/* A 1 MiB buffer is a piece of a pooled chunk, which goes back once idle. */
	EXPECT_LE(0, pool_drained(self->fd, 3));
	set_after = cma_bits_set(self->region, a.dma_addr / PAGE, pages);
	EXPECT_EQ(0, set_after);
}

/* ---- lifetimes ---- */

TEST_F(dev, free_while_mapped)
{
	struct cmabuf_alloc a;
	unsigned char *p;
	long during;

	ASSERT_EQ(0, alloc_buf(self->fd, 16 * PAGE, 0, &a));
	p = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, 16 * PAGE);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	/* The mapping still owns the memory. */
	EXPECT_EQ(0x11, p[5 * PAGE]);
	p[5 * PAGE] = 0x12;
	EXPECT_EQ(0x12, p[5 * PAGE]);
	during = cma_used(self->region);
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0 + 16, during);
	munmap(p, 16 * PAGE);
}

TEST_F(dev, close_while_mapped)
{
	struct cmabuf_alloc a;
	unsigned char *p;
	int fd = open(dev_path(), O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, alloc_buf(fd, 4 * PAGE, 0, &a));
	p = map_buf(fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	close(fd);
	memset(p, 0x21, 4 * PAGE);
	EXPECT_EQ(0x21, p[3 * PAGE]);
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0 + 4, cma_used(self->region));
	munmap(p, 4 * PAGE);
}

TEST_F(dev, killed_holder_gives_back)
{
	int pipefd[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct cmabuf_alloc a;
		int fd = open(dev_path(), O_RDWR), i;

		for (i = 0; i < 8; i++) {
			if (alloc_buf(fd, 64 * PAGE, i % 3 == 2 ? CMABUF_MODE_CACHED : 0, &a))
				_exit(1);
			if (map_buf(fd, &a) == MAP_FAILED)
				_exit(2);
			if (i % 2)
				free_buf(fd, a.handle);
		}
		if (write(pipefd[1], "r", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0 + 8 * 64, cma_used(self->region));
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	close(pipefd[0]);
}

/* ---- cache modes and sync ---- */

static void mode_roundtrip(struct __test_metadata *_metadata, int fd, __u32 mode)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;
	unsigned char *p;
	const __u32 cpu = CMABUF_SYNC_FOR_CPU, devs = CMABUF_SYNC_FOR_DEVICE;
	const __u32 r = CMABUF_SYNC_READ, w = CMABUF_SYNC_WRITE;

	ASSERT_EQ(0, alloc_buf(fd, 64 * KiB, mode, &a));
	ASSERT_EQ(0, buf_info(fd, a.handle, &i));
	EXPECT_EQ(mode, i.flags);
	p = map_buf(fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, sync_buf(fd, a.handle, cpu | r | w, 0, 0));
	memset(p, 0x77, 64 * KiB);
	EXPECT_EQ(0, sync_buf(fd, a.handle, devs | r, 0, 0));
	EXPECT_EQ(0, sync_buf(fd, a.handle, devs | w, 4096, 8192));
	EXPECT_EQ(0, sync_buf(fd, a.handle, cpu | r, 4096, 8192));
	EXPECT_EQ(0, sync_buf(fd, a.handle, cpu | w, 64 * KiB - 1, 1));
	EXPECT_EQ(0x77, p[64 * KiB - 1]);
	/* Bad ranges and flags. */
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, cpu | r, 64 * KiB, 0));
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, cpu | r, 64 * KiB - 1, 2));
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, cpu | r, 1, UINT64_MAX));
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, cpu, 0, 0));
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, r | w, 0, 0));
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, cpu | devs | r, 0, 0));
	EXPECT_EQ(-EINVAL, sync_buf(fd, a.handle, cpu | r | 0x100, 0, 0));
	munmap(p, 64 * KiB);
	EXPECT_EQ(0, free_buf(fd, a.handle));
}

TEST_F(dev, mode_coherent)
{
	mode_roundtrip(_metadata, self->fd, CMABUF_MODE_COHERENT);
}

TEST_F(dev, mode_writecombine)
{
	mode_roundtrip(_metadata, self->fd, CMABUF_MODE_WRITECOMBINE);
}

TEST_F(dev, mode_cached)
{
	mode_roundtrip(_metadata, self->fd, CMABUF_MODE_CACHED);
}

/* ---- privileges: the video group, as the udev (or mdev) rule sets it up ---- */

/* The gid of group `name` in /etc/group, or -1. */
static long group_id(const char *name)
{
	FILE *f = fopen("/etc/group", "r");
	size_t n = strlen(name);
	char line[256], *p;
	long gid = -1;

	if (!f)
		return -1;
	while (gid < 0 && fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, n) || line[n] != ':')
			continue;
		p = strchr(line + n + 1, ':');	/* past the password field */
		if (p)
			gid = strtol(p + 1, NULL, 10);
	}
	fclose(f);
	return gid;
}

/* Whether the kernel runs a hotplug helper (e.g. mdev) on device events. */
static int hotplug_helper(void)
{
	FILE *f = fopen("/proc/sys/kernel/hotplug", "r");
	char helper[64] = "";

	if (f) {
		if (!fgets(helper, sizeof(helper), f))
			helper[0] = 0;
		fclose(f);
	}
	return helper[0] && helper[0] != '\n';
}

struct user {
	uid_t uid;
	gid_t gid;
	gid_t group;	/* the one supplementary group, if member */
	int member;
};

/*
 * As `u` (exit status 0 when all is as documented in the admin guide): a
 * member of the device's group allocates, maps, exports and uses the dma-heap
 * node, and learns no addresses; unbinding and debugfs stay root's. Anyone
 * else cannot open the device.
 */
static void as_user(void *arg)
{
	const struct user *u = arg;
	struct dma_heap_allocation_data h = { .len = 64 * KiB, .fd_flags = O_RDWR | O_CLOEXEC };
	struct cmabuf_export e = { .flags = O_RDWR | O_CLOEXEC };
	struct cmabuf_dev_info info;
	struct cmabuf_alloc a;
	unsigned char *p;
	int fd, heap;

	if (setgroups(u->member, &u->group) || setgid(u->gid) || setuid(u->uid))
		_exit(10);
	fd = open(dev_path(), O_RDWR);
	if (!u->member)
		_exit(fd < 0 && errno == EACCES ? 0 : 11);
	if (fd < 0)
		_exit(12);
	if (alloc_buf(fd, 64 * KiB, 0, &a))
		_exit(13);
	if (a.dma_addr != 0 || !(a.out_flags & CMABUF_OUT_ADDR_WITHHELD))
		_exit(14);
	if (dev_info(fd, &info, NULL, 0) || info.region_base != 0)
		_exit(15);
	p = map_buf(fd, &a);
	if (p == MAP_FAILED)
		_exit(16);
	p[0] = 0x5a;
	munmap(p, a.alloc_size);
	e.handle = a.handle;
	if (xioctl(fd, CMABUF_IOCTL_EXPORT, &e))
		_exit(17);
	close(e.fd);
	heap = open("/dev/dma_heap/cmabuf0", O_RDWR | O_CLOEXEC);
	if (heap < 0 || xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &h))
		_exit(18);
	close(h.fd);
	close(heap);
	if (free_buf(fd, a.handle))
		_exit(19);
	close(fd);
	/* Root's: unbinding the device, debugfs (and the module's parameters). */
	if (open("/sys/bus/platform/drivers/cmabuf/unbind", O_WRONLY) >= 0 || errno != EACCES)
		_exit(20);
	if (access("/sys/kernel/debug/cmabuf", F_OK) == 0 || errno != EACCES)
		_exit(21);
	_exit(0);
}

TEST_F(dev, video_group_member)
{
	struct user member = { .uid = 1000, .gid = 1000, .member = 1 };
	struct user other = { .uid = 65534, .gid = 65534 };
	long video = group_id("video");
	struct stat st;
	int status;

	if (geteuid() != 0)
		SKIP(return, "needs root to switch users");
	if (video <= 0)
		SKIP(return, "no video group in /etc/group");
	/*
	 * As the rule installed with the module (make install) sets it. udev (or
	 * mdev as hotplug helper) applies it to every node the kernel adds; a
	 * busybox system without a hotplug helper (the virtual board) applies its
	 * mdev rules at boot, so the node that earlier tests re-created (reloads,
	 * unbind and bind) gets them as at boot.
	 */
	if (!hotplug_helper() && !access("/etc/mdev.conf", R_OK))
		ASSERT_EQ(0, system("mdev -s"));
	ASSERT_EQ(0, stat(dev_path(), &st));
	EXPECT_EQ(0660, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	ASSERT_EQ(video, st.st_gid);
	member.group = st.st_gid;
	status = in_child(as_user, &member);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("member: status %x", status);
	status = in_child(as_user, &other);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("other: status %x", status);
}

/* ---- two bound nodes ---- */

TEST_F(dev, two_devices_two_regions)
{
	struct cmabuf_dev_info d0, d1;
	struct cmabuf_alloc a0, a1;
	char n0[64], n1[64];
	int fd1 = open("/dev/cmabuf1", O_RDWR | O_CLOEXEC);

	if (fd1 < 0)
		SKIP(return, "no /dev/cmabuf1: the device tree binds one node");
	ASSERT_EQ(0, dev_info(self->fd, &d0, n0, sizeof(n0)));
	ASSERT_EQ(0, dev_info(fd1, &d1, n1, sizeof(n1)));
	EXPECT_STRNE(n0, n1);
	EXPECT_NE(d0.index, d1.index);
	ASSERT_EQ(0, alloc_buf(self->fd, 1 * MiB, 0, &a0));
	ASSERT_EQ(0, alloc_buf(fd1, 1 * MiB, 0, &a1));
	if (geteuid() == 0) {
		EXPECT_LE(d0.region_base, a0.dma_addr);
		EXPECT_GE(d0.region_base + d0.region_size, a0.dma_addr + a0.alloc_size);
		EXPECT_LE(d1.region_base, a1.dma_addr);
		EXPECT_GE(d1.region_base + d1.region_size, a1.dma_addr + a1.alloc_size);
	}
	/* Handles are per file: the other device's handle means nothing here. */
	EXPECT_EQ(0, free_buf(self->fd, a0.handle));
	EXPECT_EQ(-ENOENT, free_buf(self->fd, a0.handle));
	EXPECT_EQ(0, free_buf(fd1, a1.handle));
	close(fd1);
}

/* ---- unbind and rmmod with live files and mappings ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Unbind while a process keeps writing through a mapping: unbind returns at
 * once, the mapping keeps working (the writer never faults), the data shows
 * through a second mapping after unbind, and the memory goes back to the
 * region only with the last mapping. The file sees the device as gone.
 */
TEST_F(dev, unbind_keeps_live_buffers)
{
	char name[256], path[128];
	struct cmabuf_alloc a, b;
	struct cmabuf_info i;
	volatile unsigned int *p, *q;
	unsigned int last;
	int status, fd2;
	double t0, took;
	pid_t writer;
	size_t n = 16 * PAGE / sizeof(*p), k;

	if (geteuid() != 0)
		SKIP(return, "unbind needs root");
	platform_name(dev_path(), name, sizeof(name));
	ASSERT_EQ(0, alloc_buf(self->fd, 16 * PAGE, 0, &a));
	ASSERT_EQ(0, alloc_buf(self->fd, 16 * PAGE, CMABUF_MODE_CACHED, &b));
	p = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	q = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));	/* held by the mappings only */

	/* The writer stamps every word with a rising counter until killed. */
	writer = fork();
	ASSERT_LE(0, writer);
	if (writer == 0) {
		for (unsigned int v = 1;; v++)
			for (k = 0; k < n; k++)
				p[k] = v;
	}
	usleep(200 * 1000);
	t0 = now_s();
	ASSERT_EQ(0, write_file("/sys/bus/platform/drivers/cmabuf/unbind", name));
	took = now_s() - t0;
	TH_LOG("unbind with a writer on a live mapping: %.3f s", took);
	EXPECT_GT(1.0, took);
	EXPECT_NE(0, access(dev_path(), F_OK));

	/* The writer goes on after unbind: the words keep rising. */
	last = q[0];
	usleep(300 * 1000);
	EXPECT_LT(last, q[0]) TH_LOG("no writes seen after unbind");
	EXPECT_EQ(0, waitpid(writer, &status, WNOHANG)) TH_LOG("writer died: %x", status);
	kill(writer, SIGKILL);
	ASSERT_EQ(writer, waitpid(writer, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) TH_LOG("status %x", status);
	/* Its last pass, seen through the other mapping: one value, rising from the first word. */
	for (k = 1; k < n; k++)
		if (q[k] > q[0] || q[k] + 1 < q[0])
			break;
	EXPECT_EQ(n, k) TH_LOG("word %zu: %u after %u", k, q[k], q[0]);

	/* The memory stays while mapped, also after unbind. */
	if (self->used0 >= 0)
		EXPECT_LT(self->used0, cma_used(self->region));
	EXPECT_EQ(-ENODEV, buf_info(self->fd, b.handle, &i));
	EXPECT_EQ(-ENODEV, alloc_buf(self->fd, PAGE, 0, &a));
	EXPECT_EQ(-ENODEV, sync_buf(self->fd, b.handle, CMABUF_SYNC_FOR_CPU | CMABUF_SYNC_READ, 0, 0));
	EXPECT_EQ(ENODEV, mmap_errno(self->fd, PAGE, PROT_READ, MAP_SHARED, b.mmap_offset));
	EXPECT_EQ(0, free_buf(self->fd, b.handle));
	munmap((void *)p, 16 * PAGE);
	munmap((void *)q, 16 * PAGE);
	/* The last user went: the region is back where it was (the teardown checks too). */
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0, cma_used(self->region));

	snprintf(path, sizeof(path), "/sys/bus/platform/drivers/cmabuf/bind");
	ASSERT_EQ(0, write_file(path, name));
	fd2 = open(dev_path(), O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, alloc_buf(fd2, PAGE, 0, &a));
	close(fd2);
}

TEST_F(dev, rmmod_with_live_mapping)
{
	struct cmabuf_alloc a;
	unsigned char *p;

	if (geteuid() != 0)
		SKIP(return, "needs root");
	ASSERT_EQ(0, alloc_buf(self->fd, 8 * PAGE, 0, &a));
	p = map_buf(self->fd, &a);
	ASSERT_NE(MAP_FAILED, p);
	close(self->fd);
	self->fd = -1;
	/* The mapping holds the file, the file holds the module. */
	EXPECT_NE(0, system("rmmod cmabuf 2>/dev/null"));
	p[0] = 1;
	EXPECT_EQ(1, p[0]);
	munmap(p, 8 * PAGE);
	EXPECT_EQ(0, system("rmmod cmabuf"));
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0, cma_used(self->region));
	ASSERT_EQ(0, load_module(""));
	EXPECT_EQ(0, access(dev_path(), F_OK));
}

TEST_HARNESS_MAIN
