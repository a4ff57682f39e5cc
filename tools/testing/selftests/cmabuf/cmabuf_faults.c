// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: every ioctl and mmap under fault injection.
 *
 * Each call is made with /proc/self/fail-nth = N for N = 1, 2, ... until it
 * runs without reaching an N-th injection point: slab and page allocations
 * (failslab, fail_page_alloc, with GFP_KERNEL allocations included) fail in
 * turn at every point the call reaches. After every failed call nothing may
 * have changed: the file's handles, the device's accounting and statistics,
 * the region's free pages. kmemleak (scanned after all tests) catches what
 * an error path forgot to free.
 *
 * Needs CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC and
 * FAULT_INJECTION_DEBUG_FS (the board's debug kernel); skips without them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <linux/dma-heap.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"

#define PAGE 4096ULL
#define MAX_NTH 5000

/* The debugfs knobs this test sets, and what they held before. */
static const char *const knobs[][2] = {
	{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/failslab/verbose", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
	{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
	{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
	{ "/sys/kernel/debug/fail_usercopy/verbose", "0" },
};
#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

/* Everything a failed call must leave as it was. */
struct snapshot {
	struct cmabuf_dev_info d;
	struct cmabuf_stats s;
	long used;
};

FIXTURE(faults) {
	int fd;
	int nth;
	char region[64];
	char saved[NKNOBS][32];
	struct snapshot base;
};

static int read_knob(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	out[n] = 0;
	return 0;
}

static int take(struct snapshot *sn, int fd, const char *region)
{
	memset(sn, 0, sizeof(*sn));
	if (xioctl(fd, CMABUF_IOCTL_DEV_INFO, &sn->d) || get_stats(fd, &sn->s))
		return -1;
	sn->used = cma_used(region);
	return 0;
}

/*
 * Everything but the small-buffer pool's figures: a chunk taken for a buffer
 * that then failed is kept, empty, for the next small buffer (and goes back
 * to the region within a second); cma_used() counts its pages as free.
 */
static int same(const struct snapshot *a, const struct snapshot *b)
{
	struct cmabuf_stats sa = a->s, sb = b->s;

	sa.pool_bytes = sb.pool_bytes = 0;
	sa.pool_free_bytes = sb.pool_free_bytes = 0;
	return !memcmp(&a->d, &b->d, sizeof(a->d)) && !memcmp(&sa, &sb, sizeof(sa)) &&
	       a->used == b->used;
}

FIXTURE_SETUP(faults)
{
	struct cmabuf_dev_info d = { 0 };
	unsigned int i;

	self->nth = -1;
	self->fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->fd);
	self->nth = open("/proc/self/fail-nth", O_RDWR);
	if (self->nth < 0)
		SKIP(return, "no /proc/self/fail-nth: CONFIG_FAULT_INJECTION is off");
	for (i = 0; i < NKNOBS; i++) {
		if (read_knob(knobs[i][0], self->saved[i], sizeof(self->saved[i])))
			SKIP(return, "no %s: FAILSLAB/FAIL_PAGE_ALLOC/FAULT_INJECTION_DEBUG_FS off",
			     knobs[i][0]);
		ASSERT_EQ(0, write_file(knobs[i][0], knobs[i][1]));
	}
	d.region_name_ptr = (uintptr_t)self->region;
	d.region_name_len = sizeof(self->region);
	ASSERT_EQ(0, xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, &d));
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
}

FIXTURE_TEARDOWN(faults)
{
	struct snapshot end;
	unsigned int i;

	if (self->nth >= 0) {
		for (i = 0; i < NKNOBS; i++)
			if (self->saved[i][0])
				write_file(knobs[i][0], self->saved[i]);
		close(self->nth);
	}
	if (self->fd >= 0) {
		/* Statistics count successes; the region and the accounting must be back. */
		ASSERT_EQ(0, take(&end, self->fd, self->region));
		EXPECT_EQ(self->base.used, end.used);
		EXPECT_EQ(0, end.d.file_buffers);
		EXPECT_EQ(self->base.d.dev_bytes, end.d.dev_bytes);
		EXPECT_EQ(self->base.s.live_bytes, end.s.live_bytes);
		close(self->fd);
	}
}

/* Makes the n-th injection point of this task's next calls fail. */
static void arm(int nth, int n)
{
	char b[16];
	int len = snprintf(b, sizeof(b), "%d", n);

	if (pwrite(nth, b, len, 0) != len)
		abort();
}

/*
 * Disarms; whether the armed failure was injected. With copies to and from
 * userspace among the injection points, reading and writing fail-nth are
 * injection points too: an injection there (EFAULT) means the call did not
 * reach the armed one, and it disarms.
 */
static int disarm(int nth)
{
	char b[16] = { 0 };

	if (pread(nth, b, sizeof(b) - 1, 0) < 0)
		return 0;
	if (atoi(b) == 0)
		return 1;
	if (pwrite(nth, "0", 1, 0) != 1 && errno != EFAULT)
		abort();
	return 0;
}

/*
 * Runs op with fail-nth = 1, 2, ... until it runs without an injected
 * failure. After every failed call, the snapshot must be unchanged; undo()
 * reverts a call that succeeded (despite an injection it survived).
 * Returns the number of injection points the call reached.
 */
#define EVERY_FAILURE(op, undo)							\
	({									\
		struct snapshot __before, __after;				\
		int __n, __ret, __fired;					\
		for (__n = 1; __n < MAX_NTH; __n++) {				\
			ASSERT_EQ(0, take(&__before, self->fd, self->region));	\
			arm(self->nth, __n);					\
			__ret = (op);						\
			__fired = disarm(self->nth);				\
			if (__ret == 0) {					\
				undo;						\
				if (!__fired)					\
					break;					\
				continue;					\
			}							\
			EXPECT_TRUE(__fired) TH_LOG("%s failed (%d) with no injection", #op, __ret); \
			ASSERT_EQ(0, take(&__after, self->fd, self->region));	\
			EXPECT_TRUE(same(&__before, &__after))			\
				TH_LOG("%s: failure %d (%d) changed the device", #op, __n, __ret); \
			if (!same(&__before, &__after))				\
				break;						\
		}								\
		EXPECT_LT(__n, MAX_NTH);					\
		__n - 1;							\
	})

TEST_F(faults, alloc_each_mode)
{
	__u32 modes[] = { CMABUF_MODE_COHERENT, CMABUF_MODE_WRITECOMBINE, CMABUF_MODE_CACHED };
	struct cmabuf_alloc a;
	unsigned int m;
	int n;

	for (m = 0; m < 3; m++) {
		n = EVERY_FAILURE(alloc_buf(self->fd, 64 * 1024, modes[m], &a),
				  ASSERT_EQ(0, free_buf(self->fd, a.handle)));
		TH_LOG("ALLOC mode %u: %d injection points", modes[m], n);
	}
}

TEST_F(faults, free_info_sync_stats_dev_info)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;
	struct cmabuf_sync s;
	struct cmabuf_stats st;
	struct cmabuf_dev_info d;
	char name[64];
	int n;

	ASSERT_EQ(0, alloc_buf(self->fd, 16 * PAGE, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
	n = EVERY_FAILURE((memset(&i, 0, sizeof(i)), i.handle = a.handle,
			   xioctl(self->fd, CMABUF_IOCTL_INFO, &i)), (void)0);
	TH_LOG("INFO: %d injection points", n);
	n = EVERY_FAILURE((s = (struct cmabuf_sync){ .handle = a.handle,
			   .flags = CMABUF_SYNC_FOR_CPU | CMABUF_SYNC_READ },
			   xioctl(self->fd, CMABUF_IOCTL_SYNC, &s)), (void)0);
	TH_LOG("SYNC: %d injection points", n);
	n = EVERY_FAILURE(get_stats(self->fd, &st), (void)0);
	TH_LOG("STATS: %d injection points", n);
	n = EVERY_FAILURE((memset(&d, 0, sizeof(d)), d.region_name_ptr = (uintptr_t)name,
			   d.region_name_len = sizeof(name),
			   xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, &d)), (void)0);
	TH_LOG("DEV_INFO: %d injection points", n);
	/* FREE last: a failed FREE must leave the handle. */
	n = EVERY_FAILURE(free_buf(self->fd, a.handle), (void)0);
	TH_LOG("FREE: %d injection points", n);
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
}

TEST_F(faults, export_and_dma_heap_alloc)
{
	struct dma_heap_allocation_data h;
	struct cmabuf_export e;
	struct cmabuf_alloc a, b;
	int n;

	ASSERT_EQ(0, alloc_buf(self->fd, 16 * PAGE, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
	/* The first export creates the handle's dma-buf: every failure on the way undone. */
	n = EVERY_FAILURE((e = (struct cmabuf_export){ .handle = a.handle,
			   .flags = O_RDWR | O_CLOEXEC },
			   xioctl(self->fd, CMABUF_IOCTL_EXPORT, &e)), close(e.fd));
	TH_LOG("EXPORT: %d injection points", n);
	n = EVERY_FAILURE((h = (struct dma_heap_allocation_data){ .len = 16 * PAGE,
			   .fd_flags = O_RDWR | O_CLOEXEC },
			   xioctl(self->fd, DMA_HEAP_IOCTL_ALLOC, &h)), close(h.fd));
	TH_LOG("DMA_HEAP_IOCTL_ALLOC: %d injection points", n);
	/* Allocation and export in one call (CMABUF_ALLOC_EXPORT). */
	n = EVERY_FAILURE((memset(&b, 0, sizeof(b)), b.size = 16 * PAGE,
			   b.flags = CMABUF_MODE_CACHED | CMABUF_ALLOC_EXPORT,
			   b.fd_flags = O_RDWR | O_CLOEXEC,
			   xioctl(self->fd, CMABUF_IOCTL_ALLOC, &b)),
			  { close(b.fd); ASSERT_EQ(0, free_buf(self->fd, b.handle)); });
	TH_LOG("ALLOC with EXPORT: %d injection points", n);
	ASSERT_EQ(0, free_buf(self->fd, a.handle));
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
}

static int map_once(int fd, const struct cmabuf_alloc *a, void **p)
{
	*p = mmap(NULL, a->alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a->mmap_offset);
	return *p == MAP_FAILED ? -errno : 0;
}

TEST_F(faults, mmap_and_open)
{
	struct cmabuf_alloc a;
	struct cmabuf_info i;
	void *p;
	int n, fd2;

	ASSERT_EQ(0, alloc_buf(self->fd, 16 * PAGE, 0, &a));
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
	n = EVERY_FAILURE(map_once(self->fd, &a, &p), munmap(p, a.alloc_size));
	TH_LOG("mmap: %d injection points", n);
	memset(&i, 0, sizeof(i));
	i.handle = a.handle;
	ASSERT_EQ(0, xioctl(self->fd, CMABUF_IOCTL_INFO, &i));
	EXPECT_EQ(0, i.map_count);
	n = EVERY_FAILURE((fd2 = open(dev_path(), O_RDWR | O_CLOEXEC)) < 0 ? -errno : 0,
			  close(fd2));
	TH_LOG("open: %d injection points", n);
	ASSERT_EQ(0, free_buf(self->fd, a.handle));
	ASSERT_EQ(0, take(&self->base, self->fd, self->region));
}

/* Whether the region's pages are all back within two seconds (a background fill may be ending). */
static int region_untouched(const char *region)
{
	int i;

	for (i = 0; i < 200; i++) {
		if (cma_taken(region) == 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

/*
 * The ready reserve's fill (the test board's /dev/cmabuf3, whose ready_reserve
 * write takes the reserve in the writer's context) under fault injection: at
 * every injection point the write reaches, it succeeds, or fails and leaves
 * the target as it was; emptying the reserve again leaves the region
 * untouched (nothing leaked by a fill that failed half-way); once no
 * injection fires, the reserve is full and holds exactly its pages.
 */
TEST_F(faults, reserve_fill)
{
	const char *attr = "/sys/class/misc/cmabuf3/ready_reserve";
	struct cmabuf_dev_info d = { 0 };
	char saved[32], region[64];
	struct cmabuf_stats st;
	int fd3, n, ret, fired;

	if (read_knob(attr, saved, sizeof(saved)))
		SKIP(return, "no %s (the test board's reserve node)", attr);
	fd3 = open("/dev/cmabuf3", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd3);
	d.region_name_ptr = (uintptr_t)region;
	d.region_name_len = sizeof(region);
	ASSERT_EQ(0, xioctl(fd3, CMABUF_IOCTL_DEV_INFO, &d));
	for (n = 1; n < MAX_NTH; n++) {
		ASSERT_EQ(0, write_file(attr, "0"));
		ASSERT_TRUE(region_untouched(region)) TH_LOG("failure %d left pages taken", n - 1);
		arm(self->nth, n);
		ret = write_file(attr, "8M");
		fired = disarm(self->nth);
		if (ret) {
			EXPECT_TRUE(fired) TH_LOG("write failed (%d) with no injection", ret);
			EXPECT_EQ(0, read_long("%s", attr)) TH_LOG("failure %d (%d) set it", n, ret);
		} else {
			EXPECT_EQ(8 << 20, read_long("%s", attr));
		}
		if (!fired)
			break;
	}
	EXPECT_LT(n, MAX_NTH);
	TH_LOG("ready_reserve fill: %d injection points", n - 1);
	/* The last write ran without an injection: full, with exactly its pages taken. */
	reserve_wait(fd3, 8 << 20, 0, 20, &st);
	EXPECT_EQ(8 << 20, st.reserve_ready_bytes);
	EXPECT_EQ(2048, cma_taken(region));
	EXPECT_EQ(0, write_file(attr, saved));
	close(fd3);
}

TEST_HARNESS_MAIN
