// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: buffer lifetimes under races and failures.
 *
 * - Races, bounded by time and repeatable: free, last munmap, close and exit
 *   racing unbind; mmap racing free; fork with live mappings racing unbind.
 *   Each prints its seed and iteration count; CMABUF_SEED replays a seed,
 *   CMABUF_RACE_SECONDS sets the time per race (default 2).
 * - Growth: fork -> mmap -> exit on one handle, up to 10 000 times within
 *   CMABUF_GROWTH_SECONDS (default 15): the kernel's memory and the mmap
 *   latency stay flat.
 * - Unbind cannot be stalled from userspace: an ALLOC whose argument sits in
 *   a write-protected userfaultfd page, an ALLOC backing off between retries.
 * - Read-only files map PROT_READ; failed calls change nothing (structures
 *   straddling a read-only page); statistics count what was handed out.
 *
 * Every test ends with the region's pages back where they started and the
 * device bound. Needs root (unbind); skips when the device is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <linux/dma-heap.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024)
#define PAGE 4096ULL

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned int test_seed(void)
{
	const char *s = getenv("CMABUF_SEED");

	return s ? strtoul(s, NULL, 0) : (unsigned int)(time(NULL) ^ getpid());
}

static double race_seconds(void)
{
	const char *s = getenv("CMABUF_RACE_SECONDS");

	return s ? atof(s) : 2.0;
}

FIXTURE(life) {
	struct cmabuf_dev d;
};

FIXTURE_SETUP(life)
{
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
	if (geteuid() != 0)
		SKIP(return, "needs root (unbind, module parameters)");
}

FIXTURE_TEARDOWN(life)
{
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

/* ---- read-only files ---- */

TEST_F(life, readonly_file_maps_read)
{
	struct cmabuf_alloc a;
	unsigned char *p;
	unsigned long sum = 0;
	int ro, i;

	ro = open(dev_path(), O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	/* Allocating is allowed on a read-only file; writing the memory is not. */
	ASSERT_EQ(0, alloc_buf(ro, 64 * KiB, 0, &a));
	p = mmap(NULL, 64 * KiB, PROT_READ, MAP_SHARED, ro, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("PROT_READ map of a read-only file: %s", strerror(errno));
	for (i = 0; i < 64 * KiB; i++)
		sum += p[i];
	EXPECT_EQ(0, sum);
	EXPECT_EQ(-1, mprotect(p, 64 * KiB, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, ro,
				   a.mmap_offset));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 64 * KiB, PROT_READ, MAP_PRIVATE, ro, a.mmap_offset));
	EXPECT_EQ(EINVAL, errno);
	munmap(p, 64 * KiB);
	EXPECT_EQ(0, free_buf(ro, a.handle));
	close(ro);
}

/* ---- failed calls change nothing ---- */

/*
 * Two pages, the second read-only; returns a pointer `head` bytes before the
 * boundary, so that a structure placed there straddles it.
 */
static void *straddle(int head)
{
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + PAGE, PAGE, PROT_READ))
		return NULL;
	return p + PAGE - head;
}

TEST_F(life, straddling_struct_changes_nothing)
{
	struct cmabuf_stats s0, s1;
	struct cmabuf_dev_info d;
	struct cmabuf_alloc a, *sa;
	struct cmabuf_info *si;
	struct cmabuf_stats *ss;
	struct cmabuf_dev_info *sd;
	unsigned char before[PAGE];
	char name[64], *sname;

	ASSERT_EQ(0, get_stats(self->d.fd, &s0));

	/* ALLOC: size and flags in the writable page, the outputs beyond. */
	sa = straddle(16);
	ASSERT_NE(NULL, sa);
	sa->size = PAGE;
	memcpy(before, sa, 16);
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, CMABUF_IOCTL_ALLOC, sa));
	EXPECT_EQ(0, memcmp(before, sa, 16)) TH_LOG("ALLOC half-wrote its result");
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.allocs, s1.allocs);
	EXPECT_EQ(0, memcmp(s0.latency_hist, s1.latency_hist, sizeof(s0.latency_hist)));
	EXPECT_EQ(s0.live_bytes, s1.live_bytes);
	ASSERT_EQ(0, dev_info(self->d.fd, &d, NULL, 0));
	EXPECT_EQ(0, d.file_buffers);
	EXPECT_EQ(0, d.file_bytes);
	/* The failed call used up no handle number either. */
	ASSERT_EQ(0, alloc_buf(self->d.fd, PAGE, 0, &a));
	EXPECT_EQ(1, a.handle);

	/* INFO, STATS and DEV_INFO likewise. */
	si = straddle(8);
	ASSERT_NE(NULL, si);
	si->handle = a.handle;
	memcpy(before, si, 8);
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, CMABUF_IOCTL_INFO, si));
	EXPECT_EQ(0, memcmp(before, si, 8));

	ss = straddle(40);
	ASSERT_NE(NULL, ss);
	memcpy(before, ss, 40);
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, CMABUF_IOCTL_STATS, ss));
	EXPECT_EQ(0, memcmp(before, ss, 40));

	sd = straddle(24);
	ASSERT_NE(NULL, sd);
	memset(name, 'x', sizeof(name));
	sd->region_name_ptr = (uintptr_t)name;
	sd->region_name_len = sizeof(name);
	memcpy(before, sd, 24);
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, CMABUF_IOCTL_DEV_INFO, sd));
	EXPECT_EQ(0, memcmp(before, sd, 24));
	EXPECT_EQ('x', name[0]) TH_LOG("DEV_INFO wrote the name before failing");

	/* The name buffer straddles instead: the structure stays as it was. */
	sname = straddle(4);
	ASSERT_NE(NULL, sname);
	memcpy(sname, "abcd", 4);
	memset(&d, 0, sizeof(d));
	d.region_name_ptr = (uintptr_t)sname;
	d.region_name_len = 64;
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, CMABUF_IOCTL_DEV_INFO, &d));
	EXPECT_EQ(0, memcmp(sname, "abcd", 4));
	EXPECT_EQ(0, d.region_size);

	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
}

/* peak_bytes and live_bytes count buffers handed out, never reservations. */
TEST_F(life, stats_never_exceed_region)
{
	struct cmabuf_stats st;
	struct cmabuf_alloc a;
	__u32 handles[512];
	int n = 0, i, ret;

	while (n < 512) {
		ret = alloc_buf(self->d.fd, 8 * MiB, 0, &a);
		if (ret)
			break;
		handles[n++] = a.handle;
	}
	EXPECT_EQ(-ENOMEM, ret);
	ASSERT_EQ(0, get_stats(self->d.fd, &st));
	EXPECT_LE(st.peak_bytes, self->d.region_size);
	EXPECT_EQ(st.live_bytes, n * 8 * MiB);
	EXPECT_LE(st.live_bytes, self->d.region_size);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, free_buf(self->d.fd, handles[i]));
}

struct storm {
	int fd;
	__u64 size;
	int ok;
	__u32 handles[64];
};

static void *storm_thread(void *arg)
{
	struct storm *s = arg;
	struct cmabuf_alloc a;

	while (s->ok < 64 && !alloc_buf(s->fd, s->size, 0, &a))
		s->handles[s->ok++] = a.handle;
	return NULL;
}

/* A storm of concurrent ALLOCs: live_bytes never shows more than the region. */
TEST_F_TIMEOUT(life, stats_under_concurrent_allocs, 120)
{
	struct storm st[4];
	pthread_t t[4];
	int joined[4] = { 0 };
	struct cmabuf_stats s;
	__u64 most = 0;
	int i, j, running;

	for (i = 0; i < 4; i++) {
		st[i] = (struct storm){ .fd = self->d.fd, .size = 4 * MiB };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, storm_thread, &st[i]));
	}
	do {
		ASSERT_EQ(0, get_stats(self->d.fd, &s));
		if (s.live_bytes > most)
			most = s.live_bytes;
		running = 0;
		for (i = 0; i < 4; i++) {
			if (!joined[i])
				joined[i] = pthread_tryjoin_np(t[i], NULL) == 0;
			running += !joined[i];
		}
	} while (running);
	EXPECT_LE(most, self->d.region_size);
	ASSERT_EQ(0, get_stats(self->d.fd, &s));
	EXPECT_LE(s.peak_bytes, self->d.region_size);
	for (i = 0; i < 4; i++)
		for (j = 0; j < st[i].ok; j++)
			EXPECT_EQ(0, free_buf(self->d.fd, st[i].handles[j]));
}

/* ---- the CMA heap holds the region: an ALLOC retries, in flight ---- */

static int hold_region(const char *region, __u64 size, int *heap_fd)
{
	struct dma_heap_allocation_data h = { .len = size, .fd_flags = O_RDWR | O_CLOEXEC };
	char path[128];
	int heap;

	snprintf(path, sizeof(path), "/dev/dma_heap/%s", region);
	heap = open(path, O_RDWR | O_CLOEXEC);
	if (heap < 0)
		return -errno;
	if (xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &h)) {
		close(heap);
		return -EBUSY;
	}
	close(heap);
	*heap_fd = h.fd;
	return 0;
}

struct pending_alloc {
	int fd;
	__u64 size;
	int ret;
	volatile int done;
	double t_end;
};

static void *pending_alloc_thread(void *arg)
{
	struct pending_alloc *pa = arg;
	struct cmabuf_alloc a;

	pa->ret = alloc_buf(pa->fd, pa->size, 0, &a);
	pa->t_end = now_s();
	pa->done = 1;
	return NULL;
}

/* DEV_INFO's file_bytes counts what file_buffers counts: live handles only. */
TEST_F(life, file_bytes_match_file_buffers)
{
	struct pending_alloc pa = { .fd = self->d.fd, .size = 32 * MiB };
	struct cmabuf_dev_info d;
	struct cmabuf_alloc a;
	int held, samples = 0, bad = 0;
	pthread_t t;

	ASSERT_EQ(0, alloc_buf(self->d.fd, PAGE, 0, &a));
	/* cmabuf sees room for 32 MiB, CMA has none: the ALLOC retries, then EBUSY. */
	if (hold_region(self->d.region, self->d.region_size - 16 * MiB, &held))
		SKIP(free_buf(self->d.fd, a.handle); return, "no CMA heap for %s", self->d.region);
	ASSERT_EQ(0, pthread_create(&t, NULL, pending_alloc_thread, &pa));
	while (!pa.done) {
		ASSERT_EQ(0, dev_info(self->d.fd, &d, NULL, 0));
		samples++;
		if (d.file_buffers != 1 || d.file_bytes != PAGE)
			bad++;
	}
	pthread_join(t, NULL);
	TH_LOG("%d DEV_INFO samples during an ALLOC in flight (%d)", samples, pa.ret);
	EXPECT_EQ(0, bad);
	close(held);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
}

/* ---- unbind cannot be stalled from userspace ---- */

/* Unbinds in a child; waits up to `limit` s. Returns seconds taken, or -1 if still waiting. */
static double unbind_within(const char *platform, double limit, pid_t *child)
{
	double t0 = now_s();
	int status;

	*child = fork();
	if (*child == 0)
		_exit(set_bound(platform, 0) ? 1 : 0);
	while (now_s() - t0 < limit) {
		if (waitpid(*child, &status, WNOHANG) == *child) {
			*child = 0;
			return WIFEXITED(status) && !WEXITSTATUS(status) ? now_s() - t0 : -2;
		}
		usleep(10000);
	}
	return -1;
}

/* The module reloaded with `params`: the fixture's file is closed first. */
static int reload(const char *params)
{
	if (system("rmmod cmabuf"))
		return -1;
	return load_module(params);
}

/*
 * An ALLOC backing off between retries (the CMA heap holds the region) stops
 * as soon as unbind starts: unbind does not wait for the back-off.
 */
TEST_F_TIMEOUT(life, retries_stop_at_unbind, 60)
{
	struct pending_alloc pa = { .size = 8 * MiB };
	double took;
	pid_t child;
	pthread_t t;
	int held;

	close(self->d.fd);
	self->d.fd = -1;
	/* Retries back off 0.5 + 1 + 2 + 4 + 8 s: 15.5 s if nothing stops them. */
	ASSERT_EQ(0, reload("alloc_backoff_ms=500 alloc_retries=5"));
	pa.fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, pa.fd);
	if (hold_region(self->d.region, self->d.region_size, &held)) {
		close(pa.fd);
		reload("");
		SKIP(return, "no CMA heap for %s", self->d.region);
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, pending_alloc_thread, &pa));
	usleep(700000);		/* in its second back-off */
	EXPECT_FALSE(pa.done);
	took = unbind_within(self->d.platform, 10.0, &child);
	pthread_join(t, NULL);
	if (child > 0)
		waitpid(child, NULL, 0);
	TH_LOG("unbind took %.2f s; the ALLOC returned %d", took, pa.ret);
	EXPECT_GE(took, 0);
	EXPECT_LT(took, 2.0);
	EXPECT_EQ(-ENODEV, pa.ret);
	close(held);
	close(pa.fd);
	EXPECT_EQ(0, set_bound(self->d.platform, 1));
	EXPECT_EQ(0, reload(""));
}

struct uffd_alloc {
	int fd;
	struct cmabuf_alloc *arg;
	int ret;
	volatile int done;
};

static void *uffd_alloc_thread(void *arg)
{
	struct uffd_alloc *ua = arg;

	ua->ret = xioctl(ua->fd, CMABUF_IOCTL_ALLOC, ua->arg);
	ua->done = 1;
	return NULL;
}

/*
 * An ALLOC whose argument lies in a write-protected userfaultfd page blocks
 * in the kernel until userspace resolves the fault, which may be never.
 * Unbind must not wait for it: nothing unbind waits for is held across a
 * copy to userspace.
 */
TEST_F(life, unbind_not_stalled_by_user_copy)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_writeprotect wp = { 0 };
	struct uffd_alloc ua = { .fd = self->d.fd };
	struct pollfd pfd;
	struct uffd_msg msg;
	double took;
	pid_t child;
	pthread_t t;
	char *page;
	int uffd;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	if (ioctl(uffd, UFFDIO_API, &api))
		SKIP(close(uffd); return, "UFFDIO_API with write-protect: %s", strerror(errno));
	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ua.arg = (struct cmabuf_alloc *)page;
	ua.arg->size = 64 * KiB;
	reg.range.start = (uintptr_t)page;
	reg.range.len = PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg)) TH_LOG("%s", strerror(errno));
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));

	ASSERT_EQ(0, pthread_create(&t, NULL, uffd_alloc_thread, &ua));
	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	ASSERT_EQ(1, poll(&pfd, 1, 10000)) TH_LOG("the ALLOC never wrote to its argument");
	ASSERT_EQ(sizeof(msg), read(uffd, &msg, sizeof(msg)));
	EXPECT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);
	EXPECT_FALSE(ua.done);

	/* The ALLOC is blocked on the copy to userspace; unbind goes ahead. */
	took = unbind_within(self->d.platform, 5.0, &child);
	TH_LOG("unbind with an ALLOC blocked in a user copy: %.2f s", took);
	EXPECT_GE(took, 0);

	/* Let the ALLOC go (and an unbind stuck behind it, without the fix). */
	wp.mode = 0;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	pthread_join(t, NULL);
	if (child > 0)
		waitpid(child, NULL, 0);
	/* Either the ALLOC lost the race (ENODEV) or its buffer was revoked: both free. */
	if (ua.ret == 0) {
		EXPECT_EQ(0, free_buf(self->d.fd, ua.arg->handle));
	} else {
		EXPECT_EQ(-ENODEV, ua.ret);
	}
	close(uffd);
	munmap(page, PAGE);
	EXPECT_EQ(0, set_bound(self->d.platform, 1));
}

/* ---- races, bounded and repeatable ---- */

struct unbinder {
	const char *platform;
	useconds_t delay;
};

static void *unbind_thread(void *arg)
{
	struct unbinder *u = arg;

	usleep(u->delay);
	set_bound(u->platform, 0);
	return NULL;
}

static void hold_and_release(unsigned char *p, size_t len, useconds_t delay)
{
	usleep(delay);
	p[0] = 1;	/* the mapping works, also after unbind */
	munmap(p, len);
	_exit(0);
}

/*
 * Free, last munmap, close and a holder's exit racing unbind. Afterwards every
 * page is back in the region (DMA API debugging and KASAN watch the rest).
 */
TEST_F_TIMEOUT(life, race_release_vs_unbind, 120)
{
	unsigned int seed = test_seed();
	double end = now_s() + race_seconds();
	int iter = 0;

	close(self->d.fd);
	self->d.fd = -1;
	srand(seed);
	while (now_s() < end) {
		struct unbinder u = { .platform = self->d.platform, .delay = rand() % 3000 };
		struct cmabuf_alloc a[4];
		unsigned char *p[4];
		int fd, n = 1 + rand() % 4, i, status;
		pthread_t t;
		pid_t child;

		fd = open(dev_path(), O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("seed %u, iteration %d", seed, iter);
		for (i = 0; i < n; i++) {
			ASSERT_EQ(0, alloc_buf(fd, (1 + rand() % 16) * PAGE, rand() % 3, &a[i]));
			p[i] = mmap(NULL, a[i].alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				    a[i].mmap_offset);
			ASSERT_NE(MAP_FAILED, p[i]);
		}
		/* A child holds the first mapping and lets go at a random moment. */
		child = fork();
		if (child == 0)
			hold_and_release(p[0], a[0].alloc_size, rand() % 3000);
		ASSERT_EQ(0, pthread_create(&t, NULL, unbind_thread, &u));
		for (i = 0; i < n; i++) {
			usleep(rand() % 500);
			if (rand() % 2)
				free_buf(fd, a[i].handle);
			munmap(p[i], a[i].alloc_size);
		}
		if (rand() % 2)
			close(fd);
		pthread_join(t, NULL);
		ASSERT_EQ(child, waitpid(child, &status, 0));
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("seed %u, iteration %d: holder status %x", seed, iter, status);
		close(fd);	/* EBADF if closed above */
		ASSERT_EQ(0, set_bound(self->d.platform, 1)) TH_LOG("seed %u, iteration %d", seed, iter);
		if (self->d.used0 >= 0)
			ASSERT_EQ(self->d.used0, cma_used(self->d.region))
				TH_LOG("seed %u, iteration %d", seed, iter);
		iter++;
	}
	TH_LOG("seed %u: %d iterations", seed, iter);
	EXPECT_LT(0, iter);
}

struct mapper {
	int fd;
	struct cmabuf_alloc a;
	int maps;
	int last_errno;
};

static void *map_loop(void *arg)
{
	struct mapper *m = arg;

	for (;;) {
		unsigned char *p = mmap(NULL, m->a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED,
					m->fd, m->a.mmap_offset);

		if (p == MAP_FAILED) {
			m->last_errno = errno;
			return NULL;
		}
		p[m->a.alloc_size - 1] = 7;
		munmap(p, m->a.alloc_size);
		m->maps++;
	}
}

/* mmap racing FREE of the same handle: the mapping either exists whole or fails with ENXIO. */
TEST_F_TIMEOUT(life, race_mmap_vs_free, 120)
{
	unsigned int seed = test_seed();
	double end = now_s() + race_seconds();
	int iter = 0, maps = 0;

	srand(seed);
	while (now_s() < end) {
		struct mapper m = { .fd = self->d.fd };
		pthread_t t;

		ASSERT_EQ(0, alloc_buf(self->d.fd, (1 + rand() % 64) * PAGE, rand() % 3, &m.a));
		ASSERT_EQ(0, pthread_create(&t, NULL, map_loop, &m));
		usleep(rand() % 2000);
		ASSERT_EQ(0, free_buf(self->d.fd, m.a.handle));
		pthread_join(t, NULL);
		ASSERT_EQ(ENXIO, m.last_errno) TH_LOG("seed %u, iteration %d", seed, iter);
		maps += m.maps;
		if (self->d.used0 >= 0)
			ASSERT_EQ(self->d.used0, cma_used(self->d.region))
				TH_LOG("seed %u, iteration %d", seed, iter);
		iter++;
	}
	TH_LOG("seed %u: %d iterations, %d mappings", seed, iter, maps);
}

struct forker {
	unsigned char *p;
	volatile int stop;
	int children, sigbus, other;
};

static void *fork_loop(void *arg)
{
	struct forker *f = arg;
	int status;

	while (!f->stop) {
		pid_t pid = fork();

		if (pid == 0) {
			f->p[0]++;
			_exit(0);
		}
		waitpid(pid, &status, 0);
		f->children++;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
			f->sigbus++;
		else if (!WIFEXITED(status) || WEXITSTATUS(status))
			f->other++;
	}
	return NULL;
}

/* fork() with live mappings racing unbind: every child sees the memory, before and after unbind. */
TEST_F_TIMEOUT(life, race_fork_vs_unbind, 120)
{
	unsigned int seed = test_seed();
	double end = now_s() + race_seconds();
	int iter = 0, children = 0, sigbus = 0;

	close(self->d.fd);
	self->d.fd = -1;
	srand(seed);
	while (now_s() < end) {
		struct forker f = { 0 };
		struct cmabuf_alloc a;
		pthread_t t;
		int fd;

		fd = open(dev_path(), O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, alloc_buf(fd, (1 + rand() % 32) * PAGE, rand() % 3, &a));
		f.p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.mmap_offset);
		ASSERT_NE(MAP_FAILED, f.p);
		ASSERT_EQ(0, pthread_create(&t, NULL, fork_loop, &f));
		usleep(rand() % 20000);
		ASSERT_EQ(0, set_bound(self->d.platform, 0));
		usleep(rand() % 5000);
		f.stop = 1;
		pthread_join(t, NULL);
		EXPECT_EQ(0, f.other) TH_LOG("seed %u, iteration %d", seed, iter);
		EXPECT_EQ(0, f.sigbus) TH_LOG("seed %u, iteration %d", seed, iter);
		children += f.children;
		sigbus += f.sigbus;
		munmap(f.p, a.alloc_size);
		close(fd);
		ASSERT_EQ(0, set_bound(self->d.platform, 1));
		if (self->d.used0 >= 0)
			ASSERT_EQ(self->d.used0, cma_used(self->d.region))
				TH_LOG("seed %u, iteration %d", seed, iter);
		iter++;
	}
	TH_LOG("seed %u: %d iterations, %d children (%d saw SIGBUS)", seed, iter,
	       children, sigbus);
}

/* ---- growth ---- */

static long meminfo_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

/*
 * Free pages held on the per-CPU lists (the "count:" of every pageset in /proc/zoneinfo), in
 * kB. They are free memory that MemAvailable does not count; their high marks auto-tune with
 * the allocation churn of fork/exit, so they swing by tens of MB on a kernel without debug
 * options. -1 if unreadable.
 */
static long pcp_kb(void)
{
	char line[256];
	long pages = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *c = strstr(line, "count:");

		if (c)
			pages += strtol(c + strlen("count:"), NULL, 10);
	}
	fclose(f);
	return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define GROWTH_ITERS 10000
#define GROWTH_WARMUP 200
#define GROWTH_WINDOW 200

static double percentile25(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 4];
}

/*
 * Up to 10 000 times (CMABUF_GROWTH_SECONDS bounds the time, default 15):
 * fork, the child maps the one handle and exits. Nothing may pile up per
 * address space: unreclaimable slab and MemAvailable stay flat after a
 * warm-up (KASAN's quarantine fills during it), and so does the mmap latency
 * (first quartile of a window of 500, early against late).
 */
TEST_F_TIMEOUT(life, fork_mmap_exit_growth, 600)
{
	const char *env = getenv("CMABUF_GROWTH_SECONDS");
	double budget = env ? atof(env) : 15.0;
	struct cmabuf_alloc a;
	double *lat, early, late, t0 = now_s();
	long slab0 = 0, avail0 = 0, pcp0 = 0, slab1, avail1, pcp1;
	int n, status;

	lat = mmap(NULL, GROWTH_ITERS * sizeof(double), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, lat);
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, 0, &a));
	for (n = 0; n < GROWTH_ITERS; n++) {
		pid_t pid;

		if (n == GROWTH_WARMUP) {
			slab0 = meminfo_kb("SUnreclaim");
			avail0 = meminfo_kb("MemAvailable");
			pcp0 = pcp_kb();
		}
		if (n >= GROWTH_WARMUP + 2 * GROWTH_WINDOW && now_s() - t0 > budget)
			break;
		pid = fork();
		if (pid == 0) {
			double t = now_s();
			void *p = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, self->d.fd,
				       a.mmap_offset);

			lat[n] = now_s() - t;
			_exit(p == MAP_FAILED);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("iteration %d", n);
	}
	slab1 = meminfo_kb("SUnreclaim");
	avail1 = meminfo_kb("MemAvailable");
	pcp1 = pcp_kb();
	early = percentile25(lat + GROWTH_WARMUP, GROWTH_WINDOW);
	late = percentile25(lat + n - GROWTH_WINDOW, GROWTH_WINDOW);
	TH_LOG("%d fork/mmap/exit iterations in %.1f s; after the first %d: SUnreclaim %+ld kB, MemAvailable %+ld kB (per-CPU free lists %+ld kB); mmap p25 %.1f us -> %.1f us",
	       n, now_s() - t0, GROWTH_WARMUP, slab1 - slab0, avail1 - avail0, pcp1 - pcp0,
	       early * 1e6, late * 1e6);
	ASSERT_LE(0, pcp0);
	ASSERT_LE(0, pcp1);
	/* Pages that moved to the per-CPU free lists are still free memory. */
	avail0 += pcp0;
	avail1 += pcp1;
	/*
	 * cmabuf keeps nothing per address space (mappings hold their buffer, nothing else); this
	 * bound is above KASAN's quarantine noise (0.3-1.3 MB seen) and catches anything kept per
	 * fork/mmap/exit that is larger than about 10 bytes an iteration.
	 */
	EXPECT_LT(slab1 - slab0, 4096);
	EXPECT_GT(avail1 - avail0, -16384);
	/* A guard against per-mapping work that grows: emulation noise reaches 1.3x. */
	EXPECT_LT(late, early * 2.0);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	munmap(lat, GROWTH_ITERS * sizeof(double));
}

TEST_HARNESS_MAIN
