// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf under memory pressure: what CMA promises, shown in the board.
 *
 *  migration_keeps_data    the region full of movable pages (tmpfs and
 *                          anonymous memory); buffers for 75% of it still
 *                          succeed and the pages' contents survive migration
 *  fragmentation           the seed story: unmovable pages scattered over all
 *                          ordinary memory leave no order >= 9 block outside
 *                          CMA even after compaction, while 1000 cycles of
 *                          8 MiB buffers through cmabuf all succeed, with
 *                          small buffers (4-64 KiB, bursts of 4 in each mode
 *                          in turn, 16 alive) churning beside them
 *  concurrent_under_pressure  8 processes allocate, map, write, verify, free
 *                          while a hog churns movable memory
 *  interrupted_allocation  a large allocation killed during migration leaks
 *                          nothing
 *  reserve_given_back      a node's ready reserve (/dev/cmabuf3 of the test
 *                          board) goes back to the kernel when anonymous
 *                          memory beside the full region wakes kswapd and
 *                          reclaim reaches the shrinkers (no drop_caches);
 *                          the filler keeps all of it (no OOM kill), and the
 *                          reserve refills once asked to
 *                          (CMABUF_RESERVE_FILLER=0: skipped, another boot
 *                          runs it)
 *
 * Every test ends with the region's pages back where they started. Needs
 * root, /dev/cmabuf0 and CONFIG_CMA_SYSFS; skips otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cmabuf.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"

#define MiB (1024UL * 1024)
#define PAGE 4096UL

/* Free blocks of order >= min_order in /proc/pagetypeinfo, CMA or not. */
static long free_blocks(int min_order, int cma)
{
	char line[512];
	long total = 0;
	FILE *f = fopen("/proc/pagetypeinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char type[32];
		int consumed, order = 0;
		long n;
		char *p;

		if (strncmp(line, "Node", 4) || !strstr(line, "type"))
			continue;
		p = strstr(line, "type") + 4;
		if (sscanf(p, "%31s%n", type, &consumed) != 1)
			continue;
		if (!!strcmp(type, "CMA") == cma)
			continue;
		p += consumed;
		while (sscanf(p, "%ld%n", &n, &consumed) == 1) {
			if (order >= min_order)
				total += n;
			order++;
			p += consumed;
		}
	}
	fclose(f);
	return total;
}

static uint64_t fnv(const unsigned char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i += 64) /* a byte per cache line is enough to notice */
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void fill_random(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i += 64)
		p[i] = rand_r(&seed);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Anonymous memory, touched so that it is really allocated. */
static void *hog(size_t len, unsigned int seed)
{
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	fill_random(p, len, seed);
	return p;
}

/*
 * The region full of movable pages. Allocations go to CMA once its free
 * pages outnumber the rest, so ordinary memory is first taken by `early`
 * (freed again before the buffers are asked for: room for the migrated
 * pages), then tmpfs and anonymous memory fill both until CmaFree is low.
 */
struct fill {
	unsigned char *early;
	size_t early_len;
	unsigned char *tmpfs;
	size_t tmpfs_len;
	int tmpfs_fd;
	unsigned char **chunks;
	size_t nchunks;
	uint64_t tmpfs_sum, hog_sum;
	long long cma_free;
};

#define CHUNK (4 * MiB)

/* A number in KiB from a /proc/sys file, or 0. */
static long long sysctl_kib(const char *path)
{
	long long v = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static int fill_region(struct fill *f, size_t room)
{
	long long cma_total = meminfo("CmaTotal");
	/*
	 * Ordinary free memory never drops below the min watermark plus two
	 * chunks: unmovable allocations (page tables) cannot use CMA, and with
	 * no swap the OOM killer would end the test. The watermark differs by
	 * kernel: Debian's, with transparent huge pages, raises min_free_kbytes
	 * to 22 MiB on this board (MemFree, which counts CMA, does not show it).
	 */
	long long floor = sysctl_kib("/proc/sys/vm/min_free_kbytes") * 1024 + 2 * CHUNK;
	size_t max_chunks = 4096;

	memset(f, 0, sizeof(*f));
	f->tmpfs_fd = -1;
	/* 1. Ordinary memory until free CMA and free ordinary memory are even. */
	f->early_len = meminfo("MemFree") - 2 * meminfo("CmaFree");
	if ((long long)f->early_len < (long long)room)
		f->early_len = room;
	f->early = hog(f->early_len, 1);
	if (!f->early)
		return -ENOMEM;
	/* 2. A tmpfs file, then anonymous chunks, until CMA is nearly full. */
	f->tmpfs_len = 32 * MiB;
	f->tmpfs_fd = open("/dev/shm/cmabuf-pressure", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (f->tmpfs_fd < 0 || ftruncate(f->tmpfs_fd, f->tmpfs_len))
		return -errno;
	unlink("/dev/shm/cmabuf-pressure");
	f->tmpfs = mmap(NULL, f->tmpfs_len, PROT_READ | PROT_WRITE, MAP_SHARED, f->tmpfs_fd, 0);
	if (f->tmpfs == MAP_FAILED)
		return -errno;
	fill_random(f->tmpfs, f->tmpfs_len, 2);
	f->chunks = calloc(max_chunks, sizeof(*f->chunks));
	while (f->nchunks < max_chunks && meminfo("CmaFree") > cma_total / 20 &&
	       meminfo("MemFree") - meminfo("CmaFree") > floor) {
		f->chunks[f->nchunks] = hog(CHUNK, 3 + f->nchunks);
		if (!f->chunks[f->nchunks])
			break;
		f->nchunks++;
	}
	f->cma_free = meminfo("CmaFree");
	f->tmpfs_sum = fnv(f->tmpfs, f->tmpfs_len);
	for (size_t i = 0; i < f->nchunks; i++)
		f->hog_sum ^= fnv(f->chunks[i], CHUNK) + i;
	/* 3. Room outside CMA for what migration moves. */
	munmap(f->early, f->early_len);
	f->early = NULL;
	return 0;
}

static int fill_intact(struct fill *f)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < f->nchunks; i++)
		sum ^= fnv(f->chunks[i], CHUNK) + i;
	return sum == f->hog_sum && fnv(f->tmpfs, f->tmpfs_len) == f->tmpfs_sum;
}

static void unfill(struct fill *f)
{
	if (f->early)
		munmap(f->early, f->early_len);
	for (size_t i = 0; i < f->nchunks; i++)
		munmap(f->chunks[i], CHUNK);
	free(f->chunks);
	if (f->tmpfs && f->tmpfs != MAP_FAILED)
		munmap(f->tmpfs, f->tmpfs_len);
	if (f->tmpfs_fd >= 0)
		close(f->tmpfs_fd);
	memset(f, 0, sizeof(*f));
}

FIXTURE(pressure) {
	int fd;
	char region[64];
	__u64 region_size;
	long used0;
};

FIXTURE_SETUP(pressure)
{
	struct cmabuf_dev_info d = { 0 };

	if (geteuid() != 0)
		SKIP(return, "needs root (pagetypeinfo, sysfs, large memory use)");
	self->fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (self->fd < 0)
		SKIP(return, "%s: %s", dev_path(), strerror(errno));
	d.region_name_ptr = (uintptr_t)self->region;
	d.region_name_len = sizeof(self->region);
	ASSERT_EQ(0, xioctl(self->fd, CMABUF_IOCTL_DEV_INFO, &d));
	self->region_size = d.region_size;
	self->used0 = cma_used(self->region);
	if (self->used0 < 0)
		SKIP(return, "no /sys/kernel/mm/cma/%s (CONFIG_CMA_SYSFS)", self->region);
}

FIXTURE_TEARDOWN(pressure)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->used0 >= 0)
		EXPECT_EQ(self->used0, cma_used(self->region))
			TH_LOG("region %s: pages not given back", self->region);
}

TEST_F_TIMEOUT(pressure, migration_keeps_data, 600)
{
	__u64 want = self->region_size * 3 / 4, got = 0;
	long long cma_total = meminfo("CmaTotal");
	struct cmabuf_alloc a[64];
	struct cmabuf_stats st;
	struct fill f;
	int n = 0, i;
	double t0;

	ASSERT_EQ(0, fill_region(&f, want + 64 * MiB));
	TH_LOG("movable pages in CMA: CmaFree %lld of %lld MiB, %zu MiB anonymous + %zu MiB tmpfs",
	       f.cma_free / (long long)MiB, cma_total / (long long)MiB, f.nchunks * CHUNK / MiB,
	       f.tmpfs_len / MiB);
	EXPECT_GT(cma_total / 5, f.cma_free) TH_LOG("could not fill the region with movable pages");
	t0 = now();
	while (got < want) {
		ASSERT_EQ(0, alloc_buf(self->fd, 8 * MiB, 0, &a[n])) TH_LOG("after %llu MiB", got / MiB);
		got += a[n++].alloc_size;
	}
	TH_LOG("%llu MiB in %d buffers from the full region in %.2f s (emulated)", got / MiB, n,
	       now() - t0);
	EXPECT_TRUE(fill_intact(&f)) TH_LOG("migrated pages changed");
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(0, st.fallbacks);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, free_buf(self->fd, a[i].handle));
	unfill(&f);
}

/*
 * The fragmenter: many small allocations, every other one freed, the rest
 * kept. Anonymous memory fills ordinary memory; every other page is freed;
 * the rest is mlocked, and vm.compact_unevictable_allowed=0 keeps
 * compaction from moving it (CMA's own allocations still may). The free
 * blocks of order >= 9 that are left (memory the anonymous pages did not
 * reach) are then taken by unmovable pipe buffers: the allocator hands
 * unmovable requests the largest free blocks first. The result: no free
 * order >= 9 block outside CMA, even after compaction.
 */
struct frag {
	unsigned char *hog;
	size_t hog_len;
	int (*pipes)[2];
	int npipes;
	long long pipe_bytes;
	char unevictable[16];
};

#define MAX_PIPES 1000

static void compact(void)
{
	int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			perror("compact_memory");
		close(fd);
	}
}

static int sysctl(const char *path, const char *value, char *old, size_t oldlen)
{
	int fd = open(path, O_RDWR);
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (old) {
		n = read(fd, old, oldlen - 1);
		old[n > 0 ? n : 0] = 0;
	}
	n = pwrite(fd, value, strlen(value), 0);
	close(fd);
	return n == (ssize_t)strlen(value) ? 0 : -EIO;
}

/* Bytes in free blocks of order >= 9 outside CMA. */
static long long big_free_bytes(void)
{
	long long bytes = 0;

	for (int o = 9; o <= 10; o++)
		bytes += (free_blocks(o, 0) - free_blocks(o + 1, 0)) * (PAGE << o);
	return bytes;
}

/* Unmovable pages: `bytes` more of pipe buffers, 1 MiB per pipe. */
static int add_pipes(struct frag *fr, long long bytes)
{
	static char block[MiB];

	while (bytes > 0 && fr->npipes < MAX_PIPES) {
		int *pp = fr->pipes[fr->npipes];

		if (pipe(pp))
			return -errno;
		fr->npipes++;
		if (fcntl(pp[1], F_SETPIPE_SZ, MiB) < 0 || write(pp[1], block, MiB) != (ssize_t)MiB)
			return -errno;
		fr->pipe_bytes += MiB;
		bytes -= MiB;
	}
	return 0;
}

static int fragment(struct frag *fr, int max_rounds)
{
	struct rlimit files = { 2 * MAX_PIPES + 64, 2 * MAX_PIPES + 64 };
	struct rlimit lock = { RLIM_INFINITY, RLIM_INFINITY };
	long long plain = meminfo("MemFree") - meminfo("CmaFree");
	size_t off;
	int round;

	memset(fr, 0, sizeof(*fr));
	setrlimit(RLIMIT_NOFILE, &files);
	setrlimit(RLIMIT_MEMLOCK, &lock);
	if (sysctl("/proc/sys/vm/compact_unevictable_allowed", "0", fr->unevictable,
		   sizeof(fr->unevictable)))
		return -ENOENT;
	fr->pipes = calloc(MAX_PIPES, sizeof(*fr->pipes));
	/* Small allocations (pages) over all ordinary memory but a margin... */
	fr->hog_len = (plain - 48 * (long long)MiB) & ~(MiB - 1);
	fr->hog = hog(fr->hog_len, 7);
	if (!fr->hog)
		return -ENOMEM;
	/* ...every other one freed, the rest kept where it is. */
	for (off = PAGE; off < fr->hog_len; off += 2 * PAGE)
		madvise(fr->hog + off, PAGE, MADV_DONTNEED);
	if (mlock2(fr->hog, fr->hog_len, MLOCK_ONFAULT))
		return -errno;
	/*
	 * Whatever large free blocks are left go to unmovable pages, until two compactions in
	 * a row leave none (one may still assemble a block from pages the kernel frees late:
	 * per-CPU lists, reclaimed caches; seen on Debian's stock kernel).
	 */
	for (round = 0; round < max_rounds; round++) {
		long long big;

		compact();
		big = big_free_bytes();
		if (big == 0) {
			compact();
			big = big_free_bytes();
			if (big == 0)
				return round;
		}
		if (add_pipes(fr, big + 2 * MiB))
			return -EMFILE;
	}
	compact();
	return big_free_bytes() == 0 ? round : -EAGAIN;
}

static void unfragment(struct frag *fr)
{
	for (int i = 0; i < fr->npipes; i++) {
		close(fr->pipes[i][0]);
		close(fr->pipes[i][1]);
	}
	free(fr->pipes);
	if (fr->hog)
		munmap(fr->hog, fr->hog_len);
	if (fr->unevictable[0])
		sysctl("/proc/sys/vm/compact_unevictable_allowed", fr->unevictable, NULL, 0);
}

TEST_F_TIMEOUT(pressure, fragmentation, 900)
{
	const int cycles = getenv("CMABUF_FRAG_CYCLES") ? atoi(getenv("CMABUF_FRAG_CYCLES")) : 1000;
	struct cmabuf_alloc small[16] = { 0 };
	__u64 pool_peak = 0;
	struct cmabuf_stats st;
	long big_before, big_after, cma10;
	int small_ok = 0, k;
	struct frag fr;
	int rounds, i, ok = 0;
	double t0;

	rounds = fragment(&fr, 8);
	big_before = free_blocks(9, 0);
	/* Give the kernel its best chance: compact all memory, then look again. */
	compact();
	big_after = free_blocks(9, 0);
	cma10 = free_blocks(10, 1);
	TH_LOG("fragmenter: %zu MiB of pages, every other one freed; %d rounds, %lld MiB of unmovable pipe pages; %lld MiB free outside CMA",
	       fr.hog_len / MiB, rounds, fr.pipe_bytes / (long long)MiB,
	       (meminfo("MemFree") - meminfo("CmaFree")) / (long long)MiB);
	TH_LOG("free blocks of order >= 9 outside CMA: %ld, after compaction %ld; order-10 blocks free in CMA: %ld",
	       big_before, big_after, cma10);
	if (rounds < 0)
		unfragment(&fr);
	ASSERT_LE(0, rounds) TH_LOG("fragmenter could not clear order >= 9 blocks (%d)", rounds);
	EXPECT_EQ(0, big_after) TH_LOG("an order-10 allocation outside CMA could still succeed");
	t0 = now();
	for (i = 0; i < cycles; i++) {
		struct cmabuf_alloc a;
		unsigned char *p;
		size_t off;

		/*
		 * Small buffers churn beside: each cycle 4 of 4-64 KiB in one
		 * cache mode (a burst, which the pool's chunks serve), the 16
		 * newest alive.
		 */
		for (k = 0; k < 4; k++) {
			struct cmabuf_alloc *s = &small[(i * 4 + k) % 16];

			if (s->handle)
				EXPECT_EQ(0, free_buf(self->fd, s->handle));
			s->handle = 0;
			if (alloc_buf(self->fd, (4 + (i * 4 + k) * 7919 % 61) * 1024 / PAGE * PAGE,
				      i % 3, s) == 0)
				small_ok++;
			else
				s->handle = 0;
		}
		if (!get_stats(self->fd, &st) && st.pool_bytes > pool_peak)
			pool_peak = st.pool_bytes;

		/*
		 * Cached mode: the story is about finding contiguous memory, and a
		 * coherent buffer on this non-coherent board adds a cache flush and
		 * an uncached remap of all 8 MiB per cycle, which under emulation
		 * cost more than the allocation itself.
		 */
		if (alloc_buf(self->fd, 8 * MiB, CMABUF_MODE_CACHED, &a))
			continue;
		p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
			 a.mmap_offset);
		if (p != MAP_FAILED) {
			for (off = 0; off < a.alloc_size; off += PAGE)
				p[off] = i;
			ok += p[a.alloc_size - PAGE] == (unsigned char)i;
			munmap(p, a.alloc_size);
		}
		free_buf(self->fd, a.handle);
	}
	TH_LOG("fragmentation_success %d/%d (8 MiB each, %.1f s emulated)", ok, cycles, now() - t0);
	TH_LOG("small buffers beside: %d of %d allocated, the pool's chunks at most %llu MiB",
	       small_ok, 4 * cycles, (unsigned long long)pool_peak / MiB);
	for (i = 0; i < 16; i++)
		if (small[i].handle)
			EXPECT_EQ(0, free_buf(self->fd, small[i].handle));
	EXPECT_EQ(cycles, ok);
	EXPECT_EQ(4 * cycles, small_ok);
	EXPECT_LT(0, pool_peak) TH_LOG("no small buffer came from a chunk");
	unfragment(&fr);
}

/* One worker: random sizes and modes for `secs`; exit status says what went wrong. */
static int worker(const char *dev, int id, double secs)
{
	unsigned int seed = id * 7919 + 1;
	double end = now() + secs;
	int fd = open(dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return 10;
	while (now() < end) {
		struct cmabuf_alloc a;
		size_t size = ((rand_r(&seed) % (8 * 256)) + 1) * PAGE, off;
		unsigned char *p;
		int ret = alloc_buf(fd, size, rand_r(&seed) % 3, &a);

		if (ret == -ENOMEM || ret == -EBUSY)
			continue;	/* region full or busy: documented */
		if (ret)
			return 11;
		p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.mmap_offset);
		if (p == MAP_FAILED)
			return 12;
		for (off = 0; off < a.alloc_size; off += PAGE)
			if (p[off])
				return 13;	/* not zeroed */
		for (off = 0; off < a.alloc_size; off += PAGE)
			p[off] = id + off / PAGE;
		for (off = 0; off < a.alloc_size; off += PAGE)
			if (p[off] != (unsigned char)(id + off / PAGE))
				return 14;
		munmap(p, a.alloc_size);
		if (free_buf(fd, a.handle))
			return 15;
	}
	close(fd);
	return 0;
}

TEST_F_TIMEOUT(pressure, concurrent_under_pressure, 600)
{
	const double secs = getenv("CMABUF_PRESSURE_SECONDS") ?
		atof(getenv("CMABUF_PRESSURE_SECONDS")) : 15;
	struct cmabuf_stats s0, s1;
	pid_t hogger, pids[8];
	int i, status;

	ASSERT_EQ(0, get_stats(self->fd, &s0));
	hogger = fork();
	ASSERT_LE(0, hogger);
	if (hogger == 0) {
		size_t len = meminfo("MemFree") / 2;

		for (unsigned int r = 0;; r++) {
			void *p = hog(len, r);

			if (p)
				munmap(p, len);
		}
	}
	for (i = 0; i < 8; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			_exit(worker(dev_path(), i, secs));
	}
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("worker %d: status %#x", i, status);
	}
	kill(hogger, SIGKILL);
	waitpid(hogger, &status, 0);
	ASSERT_EQ(0, get_stats(self->fd, &s1));
	TH_LOG("%llu allocations, %llu ENOMEM, %llu EBUSY, %llu retries, %llu fallbacks",
	       s1.allocs - s0.allocs, s1.fail_nomem - s0.fail_nomem, s1.fail_busy - s0.fail_busy,
	       s1.retries - s0.retries, s1.fallbacks - s0.fallbacks);
	EXPECT_LT(s0.allocs + 8, s1.allocs);
	EXPECT_EQ(0, s1.live_bytes);
}

TEST_F_TIMEOUT(pressure, interrupted_allocation, 600)
{
	__u64 size = self->region_size * 3 / 4;
	struct cmabuf_stats s0, s1;
	int attempt, interrupted = 0;
	struct fill f;

	ASSERT_EQ(0, fill_region(&f, size + 64 * MiB));
	ASSERT_EQ(0, get_stats(self->fd, &s0));
	for (attempt = 0; attempt < 8 && !interrupted; attempt++) {
		int done[2], status;
		char c;
		pid_t pid;

		ASSERT_EQ(0, pipe(done));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct cmabuf_alloc a;
			int fd = open(dev_path(), O_RDWR);

			close(done[0]);
			if (write(done[1], "s", 1) != 1 || alloc_buf(fd, size, 0, &a))
				_exit(1);
			if (write(done[1], "d", 1) != 1)
				_exit(2);
			pause();
			_exit(0);
		}
		close(done[1]);
		ASSERT_EQ(1, read(done[0], &c, 1));
		usleep(20000 + attempt * 20000);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		interrupted = read(done[0], &c, 1) == 0;
		close(done[0]);
		TH_LOG("attempt %d: killed %s", attempt, interrupted ? "during the allocation" :
							     "after it finished");
	}
	ASSERT_EQ(0, get_stats(self->fd, &s1));
	EXPECT_TRUE(interrupted);
	EXPECT_LE(s0.fail_intr + 1, s1.fail_intr);
	EXPECT_EQ(0, s1.live_bytes);
	EXPECT_TRUE(fill_intact(&f));
	unfill(&f);
}

/* The zones' watermarks in bytes, summed over /proc/zoneinfo: 0, or -1. */
static int watermarks(long long *min, long long *low)
{
	char line[256], key[32];
	long long v;
	FILE *f = fopen("/proc/zoneinfo", "r");

	*min = *low = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %31s %lld", key, &v) == 2) {
			if (!strcmp(key, "min"))
				*min += v * PAGE;
			else if (!strcmp(key, "low"))
				*low += v * PAGE;
		}
	fclose(f);
	return 0;
}

/* A /proc/vmstat counter, or -1. */
static long long vmstat(const char *key)
{
	char line[256], name[64];
	long long v, found = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", name, &v) == 2 && !strcmp(name, key)) {
			found = v;
			break;
		}
	fclose(f);
	return found;
}

/* When a node's reserve is first seen empty, watched from a thread of its own. */
struct watch {
	int fd;
	int stop;
	double empty_at;	/* now() then; 0 until then */
	pthread_t thread;
};

static void *watch_reserve(void *arg)
{
	struct watch *w = arg;
	struct cmabuf_stats st;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		if (!get_stats(w->fd, &st) && !st.reserve_ready_bytes) {
			w->empty_at = now();	/* read after pthread_join() */
			break;
		}
		usleep(5000);
	}
	return NULL;
}

/* The refill's wait after the shrinker took the reserve back (PRESSURE_BACKOFF_MS), in s. */
#define BACKOFF_S 10.0

#define WSF "/proc/sys/vm/watermark_scale_factor"
#define PRESSURE_STEP MiB
#define MAX_STEPS 2048

/*
 * Memory pressure as a board meets it: anonymous memory that cannot be
 * reclaimed (no swap) fills the region (movable pages: what the reserve
 * spares a camera) and ordinary memory, until free memory is below the low
 * watermark (of the allocations that cannot use CMA, page tables and the
 * kernel's own, first); kswapd wakes, cannot reach the high watermark, and
 * reclaim's priority rises until the shrinkers are asked for their objects,
 * the reserve's among them. The pressure tests' filler may be enough by
 * itself (a small min watermark, as on the debug kernel); if not, the
 * watermarks are set 10% of memory apart (vm.watermark_scale_factor, restored
 * after) and anonymous memory is taken a step at a time, so that reclaim
 * works on a band above the min watermark, which it never nears: no OOM kill.
 */
TEST_F_TIMEOUT(pressure, reserve_given_back, 600)
{
	const char *dev = "/dev/cmabuf3", *attr = "/sys/class/misc/cmabuf3/ready_reserve";
	long long wmin, wlow, scanned0, kswapd0, stall0, free_at = 0;
	unsigned char **steps = NULL;
	char value[32], wsf[16] = "";
	size_t nsteps = 0, i;
	struct cmabuf_stats st;
	int fd, given = -1;
	struct watch w = { 0 };
	struct fill f;
	double t0, back;

	if (getenv("CMABUF_RESERVE_FILLER") && !strcmp(getenv("CMABUF_RESERVE_FILLER"), "0"))
		SKIP(return, "CMABUF_RESERVE_FILLER=0: another boot of this kernel runs it alone");
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP(return, "%s: %s (the test board's reserve node)", dev, strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	if (!st.reserve_bytes) {
		close(fd);
		SKIP(return, "%s has no ready reserve", dev);
	}
	snprintf(value, sizeof(value), "%llu", (unsigned long long)st.reserve_bytes);
	ASSERT_EQ(0, reserve_wait(fd, st.reserve_bytes, 0, 20, &st));
	scanned0 = vmstat("slabs_scanned");
	kswapd0 = vmstat("pageoutrun");
	stall0 = vmstat("allocstall_normal") + vmstat("allocstall_dma") +
		 vmstat("allocstall_dma32") + vmstat("allocstall_movable");
	t0 = now();
	w.fd = fd;
	ASSERT_EQ(0, pthread_create(&w.thread, NULL, watch_reserve, &w));
	/* The filler is the first of the pressure (with a small min watermark, enough by itself). */
	ASSERT_EQ(0, fill_region(&f, 0));
	steps = calloc(MAX_STEPS, sizeof(*steps));
	ASSERT_NE(NULL, steps);
	ASSERT_EQ(0, sysctl(WSF, "1000", wsf, sizeof(wsf)));
	EXPECT_EQ(0, watermarks(&wmin, &wlow));
	/*
	 * Anonymous memory a step at a time until the reserve is back; never
	 * within 16 MiB of the min watermark (allocations below it reclaim
	 * directly, and with nothing left to reclaim the OOM killer follows).
	 */
	while (nsteps < MAX_STEPS && meminfo("MemFree") > wmin + 16 * (long long)MiB) {
		if (get_stats(fd, &st) || !st.reserve_ready_bytes) {
			given = st.reserve_ready_bytes ? -1 : 0;
			break;
		}
		steps[nsteps] = hog(PRESSURE_STEP, 1000 + nsteps);
		if (!steps[nsteps])
			break;
		nsteps++;
		/* Below the low watermark: kswapd is awake; give it time. */
		if (meminfo("MemFree") < wlow && !free_at)
			free_at = meminfo("MemFree");
		if (free_at)
			usleep(20000);
	}
	if (given)
		given = reserve_wait(fd, 0, 0, 5, &st);
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(w.thread, NULL);
	back = w.empty_at ? w.empty_at : now();
	EXPECT_EQ(0, given) TH_LOG("reserve still %llu bytes ready under pressure",
				    (unsigned long long)st.reserve_ready_bytes);
	TH_LOG("reserve given back %.2f s after the filler began (then %zu MiB anonymous more), "
	       "free %lld MiB (watermarks min %lld, low %lld MiB%s), kswapd ran %lld "
	       "times, direct reclaim %lld, shrinkers scanned %lld objects", back - t0,
	       nsteps * PRESSURE_STEP / MiB, meminfo("MemFree") / (long long)MiB,
	       wmin / (long long)MiB, wlow / (long long)MiB, free_at ? ", free went below low" : "",
	       vmstat("pageoutrun") - kswapd0, vmstat("allocstall_normal") +
	       vmstat("allocstall_dma") + vmstat("allocstall_dma32") + vmstat("allocstall_movable") -
	       stall0, vmstat("slabs_scanned") - scanned0);
	/* Reclaim asked the shrinkers: nothing else here gives the reserve back. */
	EXPECT_LT(scanned0, vmstat("slabs_scanned")) TH_LOG("no shrinker ran");
	/*
	 * Not refilled while the pressure lasts: for the refill's back-off after the shrinker
	 * (where the filler took longer than that after the reserve went, a refill is allowed).
	 */
	usleep(500000);
	EXPECT_EQ(0, get_stats(fd, &st));
	if (now() - back < BACKOFF_S - 1) {
		EXPECT_EQ(0, st.reserve_ready_bytes) TH_LOG("refilled within the back-off");
	} else {
		TH_LOG("given back %.1f s before: the refill's back-off is over", now() - back);
	}
	EXPECT_TRUE(fill_intact(&f));
	for (i = 0; i < nsteps; i++)
		munmap(steps[i], PRESSURE_STEP);
	free(steps);
	unfill(&f);
	EXPECT_EQ(0, write_file(WSF, wsf));
	/* The administrator's word refills it at once. */
	ASSERT_EQ(0, write_file(attr, value));
	EXPECT_EQ(0, reserve_wait(fd, st.reserve_bytes, 0, 20, &st));
	close(fd);
}

TEST_HARNESS_MAIN
