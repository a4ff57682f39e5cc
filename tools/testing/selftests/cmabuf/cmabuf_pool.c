// SPDX-License-Identifier: GPL-2.0
/*
 * Small buffers carved from pooled chunks (pool_max_kib, 1024 by default):
 * each still physically contiguous, aligned as CMA aligns its size, zeroed,
 * in its own cache mode, mappable and exportable, counted at its exact size;
 * a chunk is taken for a burst (the second small buffer of a mode within
 * 250 ms that finds no room), an occasional one comes straight from the
 * region; chunks go back to the region when they empty (at once beside
 * another empty one of their mode, after a second idle, under memory
 * pressure, when a large allocation needs the room, at unbind).
 *
 *  occasional_then_burst   one small buffer alone takes no chunk; two in a
 *                          burst do
 *  share_a_chunk           16 x 64 KiB cached: one 4 MiB chunk, distinct
 *                          64 KiB-aligned addresses inside it, exact sizes in
 *                          the statistics and pool_* figures that add up
 *  zeroed_again            a piece written, freed and handed out again
 *                          (same address) reads back zero, in every mode
 *  modes_apart             one chunk per cache mode; each piece maps through
 *                          the device and its dma-buf, and a mapping cannot
 *                          reach past the piece into its neighbour
 *  idle_chunk_goes_back    the kept empty chunk is back in CMA within 2 s
 *  shrinker_gives_back     drop_caches (the kernel's shrinkers) has it back
 *                          well before the idle time
 *  large_takes_the_room    a kept empty chunk in the middle of the region
 *                          does not stop the largest allocation
 *  held_piece_stays_taken  a page-backed piece whose pages a pipe holds is
 *                          not handed out again until the pipe lets go
 *  unbind_gives_back       at unbind empty chunks go at once, and a chunk
 *                          with a live piece goes with the piece
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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <linux/dma-buf.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"

#define KiB 1024UL
#define MiB (1024 * KiB)
#define CHUNK (4 * MiB)
#define PAGE 4096UL

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The pool's figures; -1 on failure. */
static long long pool_bytes(int fd, long long *free_bytes)
{
	struct cmabuf_stats st;

	if (get_stats(fd, &st))
		return -1;
	if (free_bytes)
		*free_bytes = st.pool_free_bytes;
	return st.pool_bytes;
}

/*
 * A burst of two small buffers of `mode` (the second takes a chunk), both
 * freed: the pool then keeps an empty chunk of the mode. 0, or -1 if the
 * pool did not reach `want` bytes in three tries.
 */
static int prime(int fd, __u32 mode, long long want)
{
	for (int i = 0; i < 3; i++) {
		struct cmabuf_alloc a, b;

		if (alloc_buf(fd, PAGE, mode, &a))
			return -1;
		if (alloc_buf(fd, PAGE, mode, &b)) {
			free_buf(fd, a.handle);
			return -1;
		}
		free_buf(fd, a.handle);
		free_buf(fd, b.handle);
		if (pool_bytes(fd, NULL) >= want)
			return 0;
	}
	return -1;
}

static unsigned char *map_buf(int fd, const struct cmabuf_alloc *a, size_t len)
{
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a->mmap_offset);

	return p == MAP_FAILED ? NULL : p;
}

static int all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

FIXTURE(pool) {
	struct cmabuf_dev d;
	long taken0;
};

FIXTURE_SETUP(pool)
{
	if (cmabuf_dev_open(&self->d))
		SKIP(return, "%s: %s", dev_path(), strerror(errno));
	if (self->d.used0 < 0)
		SKIP(return, "no /sys/kernel/mm/cma/%s (CONFIG_CMA_SYSFS)", self->d.region);
	/* Start from an empty pool: earlier tests' kept chunk goes within a second. */
	if (pool_drained(self->d.fd, 3) < 0)
		SKIP(return, "the pool kept a chunk for 3 s before the test");
	self->taken0 = cma_taken(self->d.region);
	if (geteuid() != 0)
		SKIP(return, "needs root (addresses, drop_caches, unbind)");
}

FIXTURE_TEARDOWN(pool)
{
	/* Nothing is left in the pool within the idle time, and CMA has it all back. */
	EXPECT_LE(0, pool_drained(self->d.fd, 3));
	EXPECT_EQ(self->taken0, cma_taken(self->d.region)) TH_LOG("CMA did not get its pages back");
	EXPECT_TRUE(cmabuf_dev_close(&self->d)) TH_LOG("region %s: pages not given back",
						      self->d.region);
}

TEST_F(pool, occasional_then_burst)
{
	struct cmabuf_alloc a, b;
	struct cmabuf_stats s0, s1;

	usleep(500000);
	ASSERT_EQ(0, get_stats(self->d.fd, &s0));
	/* One small buffer, alone: straight from the region, no chunk. */
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	EXPECT_EQ(0, pool_bytes(self->d.fd, NULL));
	EXPECT_EQ(self->taken0 + 64 * KiB / PAGE, cma_taken(self->d.region));
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	EXPECT_EQ(self->taken0, cma_taken(self->d.region));
	/* Past the burst window, the next one is occasional too. */
	usleep(500000);
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	EXPECT_EQ(0, pool_bytes(self->d.fd, NULL));
	/* A second one right after it: a burst, served by a chunk. */
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &b));
	EXPECT_EQ(CHUNK, pool_bytes(self->d.fd, NULL));
	EXPECT_EQ(0, b.dma_addr % (64 * KiB));
	EXPECT_EQ(self->taken0 + (64 * KiB + CHUNK) / PAGE, cma_taken(self->d.region));
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.live_bytes + 128 * KiB, s1.live_bytes);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	EXPECT_EQ(0, free_buf(self->d.fd, b.handle));
}

TEST_F(pool, share_a_chunk)
{
	struct cmabuf_alloc a[16];
	struct cmabuf_stats s0, s1;
	long long free_bytes;
	__u64 lo = ~0ULL, hi = 0;
	int i, j;

	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_CACHED, CHUNK));
	ASSERT_EQ(0, get_stats(self->d.fd, &s0));
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a[i]));
		EXPECT_EQ(64 * KiB, a[i].alloc_size);
		EXPECT_EQ(0, a[i].dma_addr % (64 * KiB)) TH_LOG("buffer %d at %#llx", i,
								 (unsigned long long)a[i].dma_addr);
		lo = a[i].dma_addr < lo ? a[i].dma_addr : lo;
		hi = a[i].dma_addr > hi ? a[i].dma_addr : hi;
		for (j = 0; j < i; j++)
			EXPECT_NE(a[j].dma_addr, a[i].dma_addr);
	}
	EXPECT_GT(CHUNK, hi + 64 * KiB - lo) TH_LOG("16 pieces span %#llx-%#llx",
						    (unsigned long long)lo, (unsigned long long)hi);
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.live_bytes + 16 * 64 * KiB, s1.live_bytes);
	EXPECT_EQ(s0.live_buffers + 16, s1.live_buffers);
	EXPECT_EQ(CHUNK, pool_bytes(self->d.fd, &free_bytes));
	EXPECT_EQ(CHUNK - 16 * 64 * KiB, free_bytes);
	/* What CMA handed out is what cmabuf uses plus what the pool holds free. */
	EXPECT_EQ(self->taken0 + CHUNK / PAGE, cma_taken(self->d.region));
	EXPECT_EQ(self->d.used0 + 16 * 64 * KiB / PAGE, cma_used(self->d.region));
	for (i = 0; i < 16; i++)
		EXPECT_EQ(0, free_buf(self->d.fd, a[i].handle));
	/* One empty chunk of the mode is kept, for the next small buffer. */
	EXPECT_EQ(CHUNK, pool_bytes(self->d.fd, &free_bytes));
	EXPECT_EQ(CHUNK, free_bytes);
}

TEST_F(pool, zeroed_again)
{
	static const __u32 modes[] = { CMABUF_MODE_CACHED, CMABUF_MODE_COHERENT,
				       CMABUF_MODE_WRITECOMBINE };

	for (int m = 0; m < 3; m++) {
		struct cmabuf_alloc a, b;
		unsigned char *p;

		ASSERT_EQ(0, prime(self->d.fd, modes[m], (m + 1) * CHUNK));
		ASSERT_EQ(0, alloc_buf(self->d.fd, 128 * KiB, modes[m], &a));
		p = map_buf(self->d.fd, &a, a.alloc_size);
		ASSERT_NE(NULL, p);
		EXPECT_TRUE(all_zero(p, a.alloc_size));
		memset(p, 0xa5, a.alloc_size);
		munmap(p, a.alloc_size);
		ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
		ASSERT_EQ(0, alloc_buf(self->d.fd, 128 * KiB, modes[m], &b));
		EXPECT_EQ(a.dma_addr, b.dma_addr) TH_LOG("mode %u: not the same piece", modes[m]);
		p = map_buf(self->d.fd, &b, b.alloc_size);
		ASSERT_NE(NULL, p);
		EXPECT_TRUE(all_zero(p, b.alloc_size)) TH_LOG("mode %u: old bytes in a new buffer",
							      modes[m]);
		munmap(p, b.alloc_size);
		ASSERT_EQ(0, free_buf(self->d.fd, b.handle));
	}
}

TEST_F(pool, modes_apart)
{
	static const __u32 modes[] = { CMABUF_MODE_CACHED, CMABUF_MODE_COHERENT,
				       CMABUF_MODE_WRITECOMBINE,
				       CMABUF_MODE_CACHED | CMABUF_ALLOC_PAGE_MAP };
	struct cmabuf_alloc a[4][2];
	int m, k;

	for (m = 0; m < 3; m++)
		ASSERT_EQ(0, prime(self->d.fd, modes[m], (m + 1) * CHUNK));
	for (m = 0; m < 4; m++)
		for (k = 0; k < 2; k++)
			ASSERT_EQ(0, alloc_buf(self->d.fd, 16 * KiB, modes[m], &a[m][k]));
	/* Three cache modes, three chunks; page-backed mappings share the cached one. */
	EXPECT_EQ(3 * CHUNK, pool_bytes(self->d.fd, NULL));
	EXPECT_EQ(a[0][0].dma_addr & ~(CHUNK - 1), a[3][0].dma_addr & ~(CHUNK - 1));
	for (m = 0; m < 4; m++) {
		struct dma_buf_sync sync = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };
		unsigned char *p, *q;
		int d;

		p = map_buf(self->d.fd, &a[m][0], 16 * KiB);
		ASSERT_NE(NULL, p);
		memset(p, 0x40 + m, 16 * KiB);
		/* The neighbour's pages are out of reach: a longer mapping is refused. */
		q = mmap(NULL, 32 * KiB, PROT_READ, MAP_SHARED, self->d.fd, a[m][0].mmap_offset);
		EXPECT_EQ(MAP_FAILED, q);
		if (q != MAP_FAILED)
			munmap(q, 32 * KiB);
		d = export_buf(self->d.fd, a[m][0].handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, d);
		EXPECT_EQ(16 * KiB, lseek(d, 0, SEEK_END));
		q = mmap(NULL, 16 * KiB, PROT_READ, MAP_SHARED, d, 0);
		ASSERT_NE(MAP_FAILED, q);
		EXPECT_EQ(0, ioctl(d, DMA_BUF_IOCTL_SYNC, &sync));
		EXPECT_EQ(0x40 + m, q[0]);
		EXPECT_EQ(0x40 + m, q[16 * KiB - 1]);
		sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
		EXPECT_EQ(0, ioctl(d, DMA_BUF_IOCTL_SYNC, &sync));
		EXPECT_EQ(MAP_FAILED, mmap(NULL, 32 * KiB, PROT_READ, MAP_SHARED, d, 0));
		munmap(q, 16 * KiB);
		close(d);
		munmap(p, 16 * KiB);
		/* The second piece of the mode was not written through the first. */
		p = map_buf(self->d.fd, &a[m][1], 16 * KiB);
		ASSERT_NE(NULL, p);
		EXPECT_TRUE(all_zero(p, 16 * KiB)) TH_LOG("mode %u", modes[m]);
		munmap(p, 16 * KiB);
	}
	for (m = 0; m < 4; m++)
		for (k = 0; k < 2; k++)
			EXPECT_EQ(0, free_buf(self->d.fd, a[m][k].handle));
}

TEST_F(pool, idle_chunk_goes_back)
{
	struct cmabuf_alloc a;
	double t;

	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_CACHED, CHUNK));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	EXPECT_EQ(self->taken0 + CHUNK / PAGE, cma_taken(self->d.region));
	t = pool_drained(self->d.fd, 3);
	EXPECT_LE(0, t);
	TH_LOG("the empty chunk went back after %.2f s", t);
	EXPECT_EQ(self->taken0, cma_taken(self->d.region));
}

TEST_F(pool, shrinker_gives_back)
{
	struct cmabuf_alloc a;
	double t0, t;

	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_CACHED, CHUNK));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	t0 = now();
	/* 2: the kernel's shrinkers (drop_slab), ours among them. */
	ASSERT_EQ(0, write_file("/proc/sys/vm/drop_caches", "2"));
	t = pool_drained(self->d.fd, 3);
	ASSERT_LE(0, t);
	TH_LOG("the chunk was back %.2f s after drop_caches began", now() - t0);
	if (now() - t0 > 0.8)
		SKIP(return, "drop_caches took %.2f s: cannot tell the shrinker from the idle time",
		     now() - t0);
	EXPECT_EQ(self->taken0, cma_taken(self->d.region));
}

TEST_F(pool, large_takes_the_room)
{
	struct cmabuf_alloc a, big;
	struct cmabuf_stats st;
	__u64 largest;

	ASSERT_EQ(0, get_stats(self->d.fd, &st));
	largest = st.largest_free & ~(CHUNK - 1);
	/* An empty chunk is kept somewhere in the region... */
	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_CACHED, CHUNK));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	ASSERT_EQ(CHUNK, pool_bytes(self->d.fd, NULL));
	ASSERT_EQ(0, get_stats(self->d.fd, &st));
	TH_LOG("largest free %llu MiB, %llu MiB with the chunk kept",
	       (unsigned long long)largest / MiB, (unsigned long long)st.largest_free / MiB);
	/* ...and the largest allocation the region had room for still succeeds. */
	ASSERT_EQ(0, alloc_buf(self->d.fd, largest, CMABUF_MODE_CACHED, &big))
		TH_LOG("%llu MiB", (unsigned long long)largest / MiB);
	EXPECT_EQ(0, pool_bytes(self->d.fd, NULL));
	EXPECT_EQ(0, free_buf(self->d.fd, big.handle));
}

TEST_F(pool, held_piece_stays_taken)
{
	struct cmabuf_alloc a, b;
	unsigned char *p, got[64 * KiB];
	struct iovec iov;
	long long free0, free1;
	int pfd[2], ok;
	double t0;

	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_CACHED, CHUNK));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_LE(64 * KiB, fcntl(pfd[1], F_SETPIPE_SZ, 64 * KiB));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED | CMABUF_ALLOC_PAGE_MAP, &a));
	p = map_buf(self->d.fd, &a, 64 * KiB);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, 64 * KiB);
	iov.iov_base = p;
	iov.iov_len = 64 * KiB;
	ASSERT_EQ(64 * KiB, vmsplice(pfd[1], &iov, 1, 0));
	munmap(p, 64 * KiB);
	pool_bytes(self->d.fd, &free0);
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	/* The pipe holds the pages: they stay taken in the chunk. */
	pool_bytes(self->d.fd, &free1);
	EXPECT_EQ(free0, free1);
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &b));
	EXPECT_NE(a.dma_addr, b.dma_addr) TH_LOG("a held piece was handed out again");
	p = map_buf(self->d.fd, &b, 64 * KiB);
	ASSERT_NE(NULL, p);
	memset(p, 0x11, 64 * KiB);
	munmap(p, 64 * KiB);
	EXPECT_EQ(0, free_buf(self->d.fd, b.handle));
	ASSERT_EQ(64 * KiB, read(pfd[0], got, sizeof(got)));
	ok = got[0] == 0x5a && got[sizeof(got) - 1] == 0x5a;
	EXPECT_TRUE(ok) TH_LOG("the pipe read %#x", got[0]);
	close(pfd[0]);
	close(pfd[1]);
	/* Let go: the piece, then the chunk, go back. */
	t0 = now();
	EXPECT_LE(0, pool_drained(self->d.fd, 5)) TH_LOG("after %.1f s", now() - t0);
}

TEST_F(pool, unbind_gives_back)
{
	struct cmabuf_alloc a, b;
	unsigned char *p;

	if (!self->d.platform[0])
		SKIP(return, "no platform device name for %s", dev_path());
	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_CACHED, CHUNK));
	ASSERT_EQ(0, prime(self->d.fd, CMABUF_MODE_COHERENT, 2 * CHUNK));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_COHERENT, &b));
	p = map_buf(self->d.fd, &a, 64 * KiB);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, free_buf(self->d.fd, b.handle));
	/* The coherent chunk is empty and kept, the cached one holds a mapped piece. */
	ASSERT_EQ(2 * CHUNK, pool_bytes(self->d.fd, NULL));
	ASSERT_EQ(0, set_bound(self->d.platform, 0));
	EXPECT_EQ(self->taken0 + CHUNK / PAGE, cma_taken(self->d.region))
		TH_LOG("the empty chunk did not go at unbind");
	memset(p, 0x77, 64 * KiB);
	EXPECT_EQ(0x77, p[64 * KiB - 1]);
	close(self->d.fd);
	self->d.fd = -1;
	EXPECT_EQ(self->taken0 + CHUNK / PAGE, cma_taken(self->d.region));
	munmap(p, 64 * KiB);
	EXPECT_EQ(self->taken0, cma_taken(self->d.region)) TH_LOG("the chunk outlived its piece");
	ASSERT_EQ(0, set_bound(self->d.platform, 1));
	self->d.fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->d.fd);
}

TEST_HARNESS_MAIN
