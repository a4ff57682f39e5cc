// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: a node's ready reserve (cmabuf,ready-reserve, sysfs ready_reserve).
 *
 * The test board's /dev/cmabuf3 has a 48 MiB region of its own and asks for
 * an 8 MiB reserve in 4 MiB pieces in the device tree (qemu-virt-tests.dtso;
 * cmabuf,ready-reserve and cmabuf,ready-reserve-unit); nothing else
 * uses that region, so every page CMA counts taken there is the reserve's or
 * a test's buffer.
 *
 *  fills_from_device_tree  the reserve fills in the background to what the
 *                          node asks, in the pieces it fixes
 *  burst_without_migration buffers of the reserve's size in each cache mode
 *                          come from it: CMA allocates nothing during the
 *                          burst (no migration); zeroed; it refills behind
 *  beyond_the_reserve      more buffers than it holds, and one larger than
 *                          it, still succeed (the reserve gives way)
 *  learns_the_size         with no unit fixed, a buffer it could not serve
 *                          sets its piece size
 *  fixed_unit_holds        the attacker: with the unit fixed (the device
 *                          tree's), an ordinary member of video allocating
 *                          other sizes changes nothing of the reserve
 *  unit_from_sysfs         ready_reserve_unit: bad values change nothing,
 *                          a new unit replaces the pieces, only root writes
 *  busy_node_still_refills ordinary users allocating without pause on the
 *                          node do not keep the reserve from refilling
 *  limits_refuse_hits      the per-file and per-device limits refuse a
 *                          buffer the reserve would serve, and it keeps its
 *                          pieces (run by cmabuf_module.sh with small
 *                          limits; skipped without them)
 *  sysfs_rules             bad values change nothing; 0 empties it; only
 *                          root writes
 *  unbind_and_bind         unbind gives it back, bind fills it again; a node
 *                          unbound before its first fill leaves nothing
 *  shrinker_gives_back     the kernel's shrinkers (drop_caches) take it back,
 *                          it waits before refilling, and allocations of its
 *                          size still work meanwhile
 *
 * Memory pressure taking it back is in cmabuf_pressure (reserve_given_back).
 * Skips without the node or its reserve (another board's device tree).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/cmabuf.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"

#define MiB (1024ULL * 1024)
#define PAGE 4096ULL

static const char *reserve_dev(void)
{
	const char *p = getenv("CMABUF_RESERVE_DEV");

	return p ? p : "/dev/cmabuf3";
}

/* /sys/class/misc/cmabufN/<name> of the device under test. */
static void attr_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "/sys/class/misc/%s/%s", strrchr(reserve_dev(), '/') + 1, name);
}

static int set_attr(const char *name, const char *value)
{
	char path[128];

	attr_path(path, sizeof(path), name);
	return write_file(path, value);
}

static long long read_attr(const char *name)
{
	char path[128];

	attr_path(path, sizeof(path), name);
	return read_long("%s", path);
}

static int set_reserve(const char *value)
{
	return set_attr("ready_reserve", value);
}

static long long read_reserve(void)
{
	return read_attr("ready_reserve");
}

static int set_unit(const char *value)
{
	return set_attr("ready_reserve_unit", value);
}

static long long read_unit(void)
{
	return read_attr("ready_reserve_unit");
}

/*
 * Whether the attribute `name` is written by root only (mode 0644) and reads `value` to anyone:
 * the exit status of a child that tries as user camera (0: so; 1 it could write, 2 setuid,
 * 3 the value read, 4 fork).
 */
static int root_writes_only(const char *name, long value)
{
	char path[128];
	int status;
	pid_t pid;

	attr_path(path, sizeof(path), name);
	pid = fork();
	if (pid < 0)
		return 4;
	if (pid == 0) {
		if (become_camera())
			_exit(2);
		if (open(path, O_WRONLY) >= 0 || errno != EACCES)
			_exit(1);
		_exit(read_long("%s", path) == value ? 0 : 3);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 4;
	return WEXITSTATUS(status);
}

/* CMA's count of pages it handed out from the region, ever. */
static long cma_success(const char *region)
{
	return read_long("/sys/kernel/mm/cma/%s/alloc_pages_success", region);
}

static int alloc_on(int fd, __u64 size, __u32 mode, struct cmabuf_alloc *a)
{
	return alloc_buf(fd, size, mode, a);
}

/* Whether the buffer reads as zeros through a fresh mapping. */
static int zeroed(int fd, struct cmabuf_alloc *a)
{
	unsigned char *p = mmap(NULL, a->alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				a->mmap_offset);
	__u64 i;
	int ok = 1;

	if (p == MAP_FAILED)
		return 0;
	for (i = 0; i < a->alloc_size; i += 64)
		ok &= p[i] == 0;
	/* Leave something behind: the next buffer from this memory must not see it. */
	memset(p, 0xa5, a->alloc_size);
	munmap(p, a->alloc_size);
	return ok;
}

FIXTURE(reserve) {
	int fd;
	char region[64];
	char platform[256];
	__u64 target;
	__u64 unit;
	long long fixed;
};

FIXTURE_SETUP(reserve)
{
	struct cmabuf_dev_info info;
	struct cmabuf_stats st;

	self->fd = open(reserve_dev(), O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, "%s missing (the test board's reserve node)", reserve_dev());
	ASSERT_LE(0, self->fd) TH_LOG("%s: %s", reserve_dev(), strerror(errno));
	ASSERT_EQ(0, dev_info(self->fd, &info, self->region, sizeof(self->region)));
	platform_name(reserve_dev(), self->platform, sizeof(self->platform));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	if (!st.reserve_bytes) {
		close(self->fd);
		self->fd = -1;
		SKIP(return, "%s has no cmabuf,ready-reserve", reserve_dev());
	}
	self->target = st.reserve_bytes;
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st))
		TH_LOG("reserve not full: %llu of %llu bytes ready",
		       (unsigned long long)st.reserve_ready_bytes,
		       (unsigned long long)self->target);
	self->unit = st.reserve_unit;
	self->fixed = read_unit();
}

FIXTURE_TEARDOWN(reserve)
{
	struct cmabuf_stats st;
	char value[32];

	if (self->fd < 0)
		return;
	/*
	 * Back to the device tree's unit and target, in full, and nothing else taken from the
	 * region.
	 */
	snprintf(value, sizeof(value), "%lld", self->fixed);
	EXPECT_EQ(0, set_unit(value));
	snprintf(value, sizeof(value), "%llu", (unsigned long long)self->target);
	EXPECT_EQ(0, set_reserve(value));
	EXPECT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	EXPECT_EQ((long)(self->target / PAGE), cma_taken(self->region))
		TH_LOG("region %s: pages taken besides the reserve", self->region);
	close(self->fd);
}

TEST_F(reserve, fills_from_device_tree)
{
	struct cmabuf_stats st;

	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(8 * MiB, st.reserve_bytes) TH_LOG("qemu-virt-tests.dtso asks for 8 MiB");
	EXPECT_EQ(8 * MiB, read_reserve());
	EXPECT_EQ(st.reserve_bytes, st.reserve_ready_bytes);
	EXPECT_EQ(0, st.reserve_lent_bytes);
	/* Its piece size, fixed by the device tree. */
	EXPECT_EQ(4 * MiB, st.reserve_unit) TH_LOG("qemu-virt-tests.dtso fixes 4 MiB pieces");
	EXPECT_EQ(4 * MiB, read_unit());
	/* The region's only taken pages are the reserve's: it is real memory, held. */
	EXPECT_EQ((long)(st.reserve_bytes / PAGE), cma_taken(self->region));
	/* Not buffers: nothing allocated, nothing charged. */
	EXPECT_EQ(0, st.live_buffers);
	TH_LOG("%llu bytes ready in %llu-byte pieces", (unsigned long long)st.reserve_ready_bytes,
	       (unsigned long long)st.reserve_unit);
}

TEST_F(reserve, burst_without_migration)
{
	static const struct {
		__u32 mode;
		const char *name;
	} modes[] = {
		{ CMABUF_MODE_CACHED, "cached" },
		{ CMABUF_MODE_COHERENT, "coherent" },
		{ CMABUF_MODE_WRITECOMBINE, "write-combined" },
	};
	int n = self->target / self->unit, m, i;

	ASSERT_LE(1, n);
	for (m = 0; m < 3; m++) {
		struct cmabuf_alloc a[8];
		struct cmabuf_stats st0, st;
		long cma0, cma1;

		ASSERT_GE(8, n);
		ASSERT_EQ(0, get_stats(self->fd, &st0));
		cma0 = cma_success(self->region);
		for (i = 0; i < n; i++)
			ASSERT_EQ(0, alloc_on(self->fd, self->unit, modes[m].mode, &a[i]));
		/* CMA handed out nothing during the burst: no migration, no allocation. */
		cma1 = cma_success(self->region);
		ASSERT_EQ(0, get_stats(self->fd, &st));
		EXPECT_EQ(cma0, cma1) TH_LOG("%s: CMA allocated during the burst", modes[m].name);
		EXPECT_EQ(st0.reserve_hits + n, st.reserve_hits);
		EXPECT_EQ(st0.retries, st.retries);
		EXPECT_EQ(n * self->unit, st.reserve_lent_bytes);
		/* Buffers like any other: counted and charged. */
		EXPECT_EQ(st0.live_bytes + n * self->unit, st.live_bytes);
		for (i = 0; i < n; i++)
			EXPECT_TRUE(zeroed(self->fd, &a[i])) TH_LOG("%s: buffer %d", modes[m].name, i);
		for (i = 0; i < n; i++)
			EXPECT_EQ(0, free_buf(self->fd, a[i].handle));
		/* Refilled behind them, with fresh memory from CMA. */
		ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
		EXPECT_EQ(cma1 + (long)(self->target / PAGE), cma_success(self->region));
		TH_LOG("%s: %d buffers from the reserve, CMA untouched; refill took %llu us",
		       modes[m].name, n, (unsigned long long)st.reserve_refill_us);
	}
}

TEST_F(reserve, beyond_the_reserve)
{
	int n = self->target / self->unit, i;
	struct cmabuf_alloc a[9], big;
	struct cmabuf_stats st0, st;

	ASSERT_GE(8, n);
	ASSERT_EQ(0, get_stats(self->fd, &st0));
	/* One more than it holds: the last comes from the region's free part. */
	for (i = 0; i <= n; i++)
		ASSERT_EQ(0, alloc_on(self->fd, self->unit, CMABUF_MODE_CACHED, &a[i]))
			TH_LOG("buffer %d", i);
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(st0.reserve_hits + n, st.reserve_hits);
	EXPECT_EQ(st0.reserve_misses + 1, st.reserve_misses);
	for (i = 0; i <= n; i++)
		EXPECT_EQ(0, free_buf(self->fd, a[i].handle));
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	/* Larger than the region's free part: the reserve gives way. */
	ASSERT_EQ(0, get_stats(self->fd, &st));
	ASSERT_EQ(0, alloc_on(self->fd, st.region_size - self->unit, CMABUF_MODE_CACHED, &big));
	EXPECT_TRUE(zeroed(self->fd, &big));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_GT(self->target, st.reserve_ready_bytes);
	/* Larger than the reserve: not its size from now on. */
	EXPECT_EQ(self->unit, st.reserve_unit);
	EXPECT_EQ(0, free_buf(self->fd, big.handle));
	EXPECT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
}

TEST_F(reserve, learns_the_size)
{
	__u64 size = 2 * MiB;
	int n = self->target / size, i;
	struct cmabuf_alloc a[8], one;
	struct cmabuf_stats st0, st;

	ASSERT_GE(8, n);
	if (geteuid() != 0)
		SKIP(return, "unfixing the unit needs root");
	/* Learned once no unit is fixed (the teardown fixes the device tree's again). */
	ASSERT_EQ(0, set_unit("0"));
	EXPECT_EQ(0, read_unit());
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(self->unit, st.reserve_unit) TH_LOG("the pieces stay until a miss");
	EXPECT_EQ(self->target, st.reserve_ready_bytes);
	/* A buffer of another size (above the pool's): a miss, which names the size. */
	ASSERT_EQ(0, alloc_on(self->fd, size, CMABUF_MODE_CACHED, &one));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(size, st.reserve_unit);
	/* Only pieces of the size it serves count as ready: the old ones are on their way out. */
	EXPECT_EQ(0, st.reserve_ready_bytes);
	EXPECT_EQ(0, free_buf(self->fd, one.handle));
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	ASSERT_EQ(0, get_stats(self->fd, &st0));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, alloc_on(self->fd, size, CMABUF_MODE_CACHED, &a[i]));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(st0.reserve_hits + n, st.reserve_hits);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, free_buf(self->fd, a[i].handle));
	/* Back to the first size, for the tests after: a miss again (none of that size is kept). */
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	ASSERT_EQ(0, alloc_on(self->fd, self->unit, CMABUF_MODE_CACHED, &one));
	EXPECT_EQ(0, free_buf(self->fd, one.handle));
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	EXPECT_EQ(self->unit, st.reserve_unit);
	TH_LOG("learnt %llu-byte pieces: %d hits", (unsigned long long)size, n);
}

/*
 * The attacker: an ordinary member of video on the camera's node allocates
 * buffers of other sizes, each a miss. With the unit fixed the reserve keeps
 * its pieces: it gives none back and takes none anew (CMA hands out only the
 * attacker's own buffers).
 */
TEST_F(reserve, fixed_unit_holds)
{
	static const __u64 sizes[] = { 2 * MiB, 3 * MiB, MiB + PAGE, 6 * MiB, 2 * MiB };
	const int rounds = sizeof(sizes) / sizeof(sizes[0]);
	struct cmabuf_stats st0, st;
	long cma0, pages = 0;
	int status, i;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "becoming an ordinary user needs root");
	ASSERT_LT(0, self->fixed) TH_LOG("no unit fixed: the device tree fixes 4 MiB");
	ASSERT_EQ(0, get_stats(self->fd, &st0));
	cma0 = cma_success(self->region);
	for (i = 0; i < rounds; i++)
		pages += sizes[i] / PAGE;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct cmabuf_alloc a;
		int fd;

		if (become_camera())
			_exit(10);
		fd = open(reserve_dev(), O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(11);
		for (i = 0; i < rounds; i++) {
			if (alloc_on(fd, sizes[i], CMABUF_MODE_CACHED, &a))
				_exit(20 + i);
			/* Let a refill run if one was queued. */
			usleep(100000);
			if (free_buf(fd, a.handle))
				_exit(30 + i);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("as camera: 10 setuid, 11 open, 2x alloc, 3x free");
	usleep(200000);
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(st0.reserve_misses + rounds, st.reserve_misses);
	EXPECT_EQ(st0.reserve_hits, st.reserve_hits);
	EXPECT_EQ((__u64)self->fixed, st.reserve_unit) TH_LOG("a caller's size changed the unit");
	EXPECT_EQ(self->target, st.reserve_ready_bytes);
	/* Only the attacker's buffers came from CMA: no piece was given back and taken anew. */
	EXPECT_EQ(cma0 + pages, cma_success(self->region));
	EXPECT_EQ((long)(self->target / PAGE), cma_taken(self->region));
}

/* The administrator fixes another unit: the old pieces go, pieces of the new size come. */
TEST_F(reserve, unit_from_sysfs)
{
	static const char *const bad[] = { "abc", "512K", "1048577", "-1", "4M4", "0x400000" };
	int n = self->target / (2 * MiB), i;
	struct cmabuf_alloc a[8];
	struct cmabuf_stats st0, st;
	char too_big[32];
	unsigned int b;

	if (geteuid() != 0)
		SKIP(return, "writing ready_reserve_unit needs root");
	for (b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		EXPECT_EQ(-EINVAL, set_unit(bad[b])) TH_LOG("\"%s\"", bad[b]);
		EXPECT_EQ(self->fixed, read_unit());
	}
	ASSERT_EQ(0, get_stats(self->fd, &st0));
	snprintf(too_big, sizeof(too_big), "%llu", (unsigned long long)st0.region_size + PAGE);
	EXPECT_EQ(-EINVAL, set_unit(too_big));
	EXPECT_EQ(self->fixed, read_unit());
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(self->target, st.reserve_ready_bytes) TH_LOG("a refused write changed the pieces");
	/* 2 MiB pieces: the write returns with the reserve refilled in them. */
	ASSERT_EQ(0, set_unit("2M\n"));
	EXPECT_EQ(2 * (long long)MiB, read_unit());
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	EXPECT_EQ(2 * MiB, st.reserve_unit);
	EXPECT_EQ((long)(self->target / PAGE), cma_taken(self->region));
	ASSERT_EQ(0, get_stats(self->fd, &st0));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, alloc_on(self->fd, 2 * MiB, CMABUF_MODE_WRITECOMBINE, &a[i]));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(st0.reserve_hits + n, st.reserve_hits);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, free_buf(self->fd, a[i].handle));
	/* Only root writes it (mode 0644); anyone reads it. */
	EXPECT_EQ(0, root_writes_only("ready_reserve_unit", 2 * MiB))
		TH_LOG("as camera: 1 could write, 2 setuid, 3 read, 4 fork");
	/* The teardown fixes the device tree's unit again. */
}

/*
 * A buffer from the reserve escapes no limit: with the module's per-file and
 * per-device byte limits (cmabuf_module.sh loads it with 1 MiB and 1.5 MiB
 * and runs this test), allocations past them are refused before the reserve
 * is asked (no piece taken, no miss counted). The dmem cgroup's limit is
 * tested on this node in cmabuf_dmem (reserve_hits_are_charged).
 */
TEST_F(reserve, limits_refuse_hits)
{
	struct cmabuf_dev_info info;
	struct cmabuf_alloc a, refused;
	struct cmabuf_stats st0, st;
	int other;

	ASSERT_EQ(0, dev_info(self->fd, &info, NULL, 0));
	if (info.max_bytes_per_file != MiB || info.max_bytes_per_device < MiB ||
	    info.max_bytes_per_device >= 2 * MiB)
		SKIP(return, "needs max_bytes_per_file=1M and max_bytes_per_device below 2M "
		     "(cmabuf_module.sh loads the module so and runs it)");
	ASSERT_EQ(0, set_unit("1M"));
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st0));
	ASSERT_EQ(0, alloc_on(self->fd, MiB, CMABUF_MODE_CACHED, &a));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(st0.reserve_hits + 1, st.reserve_hits) TH_LOG("the first buffer is a hit");
	st0 = st;
	/* The file's limit, then the device's from another file. */
	EXPECT_EQ(-EDQUOT, alloc_on(self->fd, MiB, CMABUF_MODE_CACHED, &refused));
	other = open(reserve_dev(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EDQUOT, alloc_on(other, MiB, CMABUF_MODE_COHERENT, &refused));
	close(other);
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(st0.fail_limit + 2, st.fail_limit);
	EXPECT_EQ(st0.reserve_hits, st.reserve_hits);
	EXPECT_EQ(st0.reserve_misses, st.reserve_misses);
	EXPECT_EQ(st0.reserve_ready_bytes, st.reserve_ready_bytes)
		TH_LOG("a refused buffer took a piece");
	EXPECT_EQ(MiB, st.reserve_lent_bytes);
	EXPECT_EQ(MiB, st.live_bytes);
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	/* The teardown fixes the device tree's unit again. */
}

TEST_F(reserve, sysfs_rules)
{
	static const char *const bad[] = { "\n", "abc", "-1", "1T", "8 M", "0x100", "8M8",
					   "99999999999999999999" };
	struct cmabuf_stats st;
	char too_big[32];
	unsigned int i;

	if (geteuid() != 0)
		SKIP(return, "writing ready_reserve needs root");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, set_reserve(bad[i])) TH_LOG("\"%s\"", bad[i]);
		EXPECT_EQ((long long)self->target, read_reserve());
	}
	ASSERT_EQ(0, get_stats(self->fd, &st));
	snprintf(too_big, sizeof(too_big), "%llu", (unsigned long long)st.region_size + PAGE);
	EXPECT_EQ(-EINVAL, set_reserve(too_big));
	EXPECT_EQ((long long)self->target, read_reserve());
	/* 0 empties it; the region is untouched then. */
	ASSERT_EQ(0, set_reserve("0"));
	ASSERT_EQ(0, reserve_wait(self->fd, 0, 0, 5, &st));
	EXPECT_EQ(0, st.reserve_bytes);
	EXPECT_EQ(0, cma_taken(self->region));
	ASSERT_EQ(0, set_reserve("4M\n"));
	ASSERT_EQ(0, reserve_wait(self->fd, 4 * MiB, 0, 20, &st));
	EXPECT_EQ(4 * MiB, read_reserve());
	/* Only root writes it (mode 0644); anyone reads it. */
	EXPECT_EQ(0, root_writes_only("ready_reserve", 4 * MiB))
		TH_LOG("as camera: 1 could write, 2 setuid, 3 read, 4 fork");
}

/*
 * The attacker again: ordinary members of video keep the node busy with an
 * endless stream of allocations (the refill defers to allocations in
 * progress). The reserve must still refill, within seconds.
 */
TEST_F_TIMEOUT(reserve, busy_node_still_refills, 120)
{
	enum { CHILDREN = 4 };
	char value[32];
	pid_t pid[CHILDREN];
	struct cmabuf_stats st;
	int i, full;

	if (geteuid() != 0)
		SKIP(return, "becoming an ordinary user needs root");
	for (i = 0; i < CHILDREN; i++) {
		pid[i] = fork();
		ASSERT_LE(0, pid[i]);
		if (pid[i] == 0) {
			struct cmabuf_alloc a;
			int fd;

			if (become_camera())
				_exit(10);
			fd = open(reserve_dev(), O_RDWR | O_CLOEXEC);
			if (fd < 0)
				_exit(11);
			/* Misses of another size than the fixed unit, from the region: until killed. */
			for (;;)
				if (!alloc_buf(fd, 2 * MiB, CMABUF_MODE_CACHED, &a))
					free_buf(fd, a.handle);
		}
	}
	usleep(300000);
	ASSERT_EQ(0, set_reserve("0"));
	snprintf(value, sizeof(value), "%llu", (unsigned long long)self->target);
	ASSERT_EQ(0, set_reserve(value));
	full = reserve_wait(self->fd, self->target, 0, 10, &st);
	for (i = 0; i < CHILDREN; i++) {
		kill(pid[i], SIGKILL);
		waitpid(pid[i], NULL, 0);
	}
	EXPECT_EQ(0, full) TH_LOG("%llu of %llu bytes ready after 10 s beside the allocations",
				  (unsigned long long)st.reserve_ready_bytes,
				  (unsigned long long)self->target);
}

TEST_F(reserve, unbind_and_bind)
{
	struct cmabuf_stats st;

	if (geteuid() != 0)
		SKIP(return, "unbind needs root");
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, set_bound(self->platform, 0));
	/* Given back at unbind: the region is free. */
	EXPECT_EQ(0, cma_taken(self->region));
	/*
	 * Bound and unbound at once, its first fill still pending: nothing taken, and nothing
	 * of the node left behind (kmemleak's scan at the end of the run would list it).
	 */
	ASSERT_EQ(0, set_bound(self->platform, 1));
	ASSERT_EQ(0, set_bound(self->platform, 0));
	EXPECT_EQ(0, cma_taken(self->region));
	ASSERT_EQ(0, set_bound(self->platform, 1));
	self->fd = open(reserve_dev(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, reserve_wait(self->fd, self->target, 0, 20, &st));
	EXPECT_EQ((long)(self->target / PAGE), cma_taken(self->region));
}

TEST_F(reserve, shrinker_gives_back)
{
	struct cmabuf_alloc a;
	struct cmabuf_stats st;

	if (geteuid() != 0)
		SKIP(return, "drop_caches needs root");
	/* drop_slab(): every shrinker of the kernel, the reserve's among them. */
	ASSERT_EQ(0, write_file("/proc/sys/vm/drop_caches", "2"));
	ASSERT_EQ(0, reserve_wait(self->fd, 0, 0, 5, &st)) TH_LOG("reserve not given back");
	EXPECT_EQ(0, cma_taken(self->region));
	/* It waits before refilling (the pressure may last); allocations take the ordinary path. */
	usleep(300000);
	ASSERT_EQ(0, alloc_on(self->fd, self->unit, CMABUF_MODE_CACHED, &a));
	EXPECT_TRUE(zeroed(self->fd, &a));
	EXPECT_EQ(0, free_buf(self->fd, a.handle));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(0, st.reserve_ready_bytes);
	/* The teardown writes ready_reserve: the administrator's word refills it at once. */
}

TEST_HARNESS_MAIN
