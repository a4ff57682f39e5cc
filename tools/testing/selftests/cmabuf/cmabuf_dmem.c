// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf memory in the dmem cgroup controller: each region is listed in
 * dmem.capacity, every allocation is charged to the allocating task's cgroup
 * and limited by its dmem.max (EDQUOT past it, nothing changed), and a
 * charge lasts as long as the memory: a dma-buf passed to a process in
 * another cgroup keeps it charged to the allocator's cgroup, also after the
 * allocator exited, until the last user lets go; likewise across an unbind.
 * Buffers a ready reserve serves are charged and limited the same way.
 * Skips without the controller (CONFIG_CGROUP_DMEM, cgroup2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <linux/dma-buf.h>

#include "../kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"

#define CG "/sys/fs/cgroup"
#define MIB (1024 * 1024)

/* Whether cgroup2 is mounted at CG with the dmem controller (mounting it if need be). */
static int have_dmem(void)
{
	char buf[512] = "";
	FILE *f = fopen(CG "/cgroup.controllers", "r");

	if (!f) {
		mount("none", CG, "cgroup2", 0, NULL);
		f = fopen(CG "/cgroup.controllers", "r");
	}
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, "dmem") != NULL;
}

/* The value for `name` in a dmem file ("name value" lines): bytes, -2 for "max", -1 if absent. */
static long long dmem_value(const char *file, const char *name)
{
	char line[512], n[400], v[64];
	long long r = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%399s %63s", n, v) == 2 && !strcmp(n, name)) {
			r = strcmp(v, "max") ? atoll(v) : -2;
			break;
		}
	fclose(f);
	return r;
}

/* The dmem region of the device under test: the dmem.capacity entry ending in its region. */
static int dmem_name(const char *region, char *out, size_t len)
{
	char line[512], n[400], suffix[128];
	FILE *f = fopen(CG "/dmem.capacity", "r");
	int found = 0;

	if (!f)
		return 0;
	snprintf(suffix, sizeof(suffix), "/%s", region);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%399s", n) == 1 && !strncmp(n, "cmabuf/", 7) &&
		    strlen(n) > strlen(suffix) &&
		    !strcmp(n + strlen(n) - strlen(suffix), suffix)) {
			snprintf(out, len, "%s", n);
			found = 1;
		}
	fclose(f);
	return found;
}

static int join(const char *cgroup)
{
	char path[256], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_file(path, pid);
}

/* Writes `name bytes` to the cgroup's dmem.max: 0 or -errno. */
static int set_max(const char *cgroup, const char *name, long long bytes)
{
	char path[128], v[512];

	snprintf(path, sizeof(path), "%s/dmem.max", cgroup);
	snprintf(v, sizeof(v), "%s %lld", name, bytes);
	return write_file(path, v);
}

/*
 * A descriptor of another process, duplicated into this one (pidfd_getfd(2):
 * the board's kernel has no AF_UNIX for SCM_RIGHTS), or -1.
 */
static int take_fd(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), ret;

	if (pidfd < 0)
		return -1;
	ret = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return ret;
}

FIXTURE(dmem) {
	struct cmabuf_dev d;
	char name[400];	/* the region's dmem name */
	char a[64], b[64];	/* the two cgroups */
};

FIXTURE_SETUP(dmem)
{
	self->a[0] = self->b[0] = 0;
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
	if (!have_dmem())
		SKIP(return, "no dmem cgroup controller (CONFIG_CGROUP_DMEM is off, or no cgroup2)");
	/* The root's dmem files appear once the controller is enabled for its children. */
	ASSERT_EQ(0, write_file(CG "/cgroup.subtree_control", "+dmem"));
	ASSERT_TRUE(dmem_name(self->d.region, self->name, sizeof(self->name)))
		TH_LOG("region %s not in " CG "/dmem.capacity", self->d.region);
	ASSERT_EQ((long long)self->d.region_size, dmem_value(CG "/dmem.capacity", self->name));
	snprintf(self->a, sizeof(self->a), CG "/cmabuf-a-%d", getpid());
	snprintf(self->b, sizeof(self->b), CG "/cmabuf-b-%d", getpid());
	ASSERT_EQ(0, mkdir(self->a, 0755));
	ASSERT_EQ(0, mkdir(self->b, 0755));
	ASSERT_EQ(0, set_max(self->a, self->name, 4 * MIB));
	ASSERT_EQ(0, set_max(self->b, self->name, 8 * MIB));
}

FIXTURE_TEARDOWN(dmem)
{
	join(CG);
	if (self->a[0])
		rmdir(self->a);
	if (self->b[0])
		rmdir(self->b);
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

static long long current_of(const char *cgroup, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/dmem.current", cgroup);
	return dmem_value(path, name);
}

/*
 * The allocator (a child in cgroup a, limit 4 MiB) allocates up to its limit
 * and is refused past it; this process (cgroup b, limit 8 MiB) takes a 2 MiB
 * dma-buf of it, and the allocator exits. The dma-buf stays charged to a until closed;
 * b's own allocations count against b alone.
 */
TEST_F_TIMEOUT(dmem, limits_and_a_dmabuf_passed_on, 120)
{
	struct cmabuf_stats s0, s1;
	struct cmabuf_alloc x[4], refused;
	int to_parent[2], to_child[2], status, dmabuf, theirs, i;
	char go = 0;
	pid_t child;

	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, get_stats(self->d.fd, &s0));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		struct cmabuf_alloc a1, a2, a3;
		int fd, buf;

		if (join(self->a))
			_exit(10);
		fd = open(dev_path(), O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(11);
		if (alloc_buf(fd, 2 * MIB, CMABUF_MODE_CACHED, &a1) ||
		    alloc_buf(fd, 2 * MIB, 0, &a2))
			_exit(12);
		if (current_of(self->a, self->name) != 4 * MIB)
			_exit(13);
		/* Past the limit: refused, nothing charged. */
		if (alloc_buf(fd, 4096, 0, &a3) != -EDQUOT)
			_exit(14);
		if (current_of(self->a, self->name) != 4 * MIB)
			_exit(15);
		buf = export_buf(fd, a1.handle, O_RDWR | O_CLOEXEC);
		/* Tell the parent which descriptor to take; wait until it has. */
		if (buf < 0 || write(to_parent[1], &buf, sizeof(buf)) != sizeof(buf) ||
		    read(to_child[0], &go, 1) != 1)
			_exit(16);
		/* Everything of ours goes but the dma-buf the other process holds. */
		close(buf);
		close(fd);
		_exit(0);
	}
	ASSERT_EQ(0, join(self->b));
	ASSERT_EQ(sizeof(theirs), read(to_parent[0], &theirs, sizeof(theirs)));
	dmabuf = take_fd(child, theirs);
	ASSERT_LE(0, dmabuf) TH_LOG("pidfd_getfd: %s", strerror(errno));
	ASSERT_EQ(1, write(to_child[1], &go, 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.fail_limit + 1, s1.fail_limit);

	/* The allocator exited; its dma-buf is charged to a, not to its holder's b. */
	EXPECT_EQ(2 * MIB, current_of(self->a, self->name));
	EXPECT_EQ(0, current_of(self->b, self->name));
	/* b's own limit: four 2 MiB buffers, then refused. */
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, alloc_buf(self->d.fd, 2 * MIB, 0, &x[i]));
	EXPECT_EQ(8 * MIB, current_of(self->b, self->name));
	EXPECT_EQ(-EDQUOT, alloc_buf(self->d.fd, 2 * MIB, 0, &refused));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, free_buf(self->d.fd, x[i].handle));
	EXPECT_EQ(0, current_of(self->b, self->name));
	EXPECT_EQ(2 * MIB, current_of(self->a, self->name));
	close(dmabuf);
	EXPECT_EQ(0, current_of(self->a, self->name));
}

/*
 * A mapping outlives its handle and an unbind: the memory stays charged to
 * the allocator's cgroup (and the dmem region listed) until the mapping goes;
 * after a bind, the region is listed again at 0.
 */
TEST_F_TIMEOUT(dmem, charge_outlives_unbind, 120)
{
	struct cmabuf_alloc a;
	char name[400];
	void *p;

	if (geteuid() != 0)
		SKIP(return, "unbind needs root");
	ASSERT_EQ(0, join(self->a));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 3 * MIB, 0, &a));
	p = mmap(NULL, 3 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, self->d.fd, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	close(self->d.fd);
	self->d.fd = -1;
	ASSERT_EQ(0, set_bound(self->d.platform, 0));
	EXPECT_EQ(3 * MIB, current_of(self->a, self->name));
	EXPECT_TRUE(dmem_name(self->d.region, name, sizeof(name)));
	memset(p, 0x5a, 3 * MIB);
	munmap(p, 3 * MIB);
	/* The last user went: uncharged, and the region left the controller with its memory. */
	EXPECT_FALSE(dmem_name(self->d.region, name, sizeof(name)));
	ASSERT_EQ(0, set_bound(self->d.platform, 1));
	ASSERT_TRUE(dmem_name(self->d.region, name, sizeof(name)));
	EXPECT_STREQ(self->name, name);
	EXPECT_EQ(0, current_of(self->a, self->name));
}

/*
 * Buffers the ready reserve serves are charged like any other: on the test
 * board's reserve node (/dev/cmabuf3), a cgroup whose dmem.max is a page
 * short of a piece is refused one (EDQUOT, no piece taken), one whose limit
 * fits is charged for it, and refused the next.
 */
TEST_F_TIMEOUT(dmem, reserve_hits_are_charged, 120)
{
	struct cmabuf_alloc a, refused;
	struct cmabuf_dev_info info;
	struct cmabuf_stats st0, st;
	char region[64], name[400];
	long long unit;
	int fd;

	fd = open("/dev/cmabuf3", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP(return, "/dev/cmabuf3: %s (the test board's reserve node)", strerror(errno));
	ASSERT_EQ(0, dev_info(fd, &info, region, sizeof(region)));
	ASSERT_EQ(0, get_stats(fd, &st0));
	if (!st0.reserve_bytes || st0.reserve_unit > st0.reserve_bytes) {
		close(fd);
		SKIP(return, "/dev/cmabuf3 has no ready reserve");
	}
	unit = st0.reserve_unit;
	ASSERT_TRUE(dmem_name(region, name, sizeof(name)));
	/* Full, so that a buffer of its unit is a hit. */
	reserve_wait(fd, st0.reserve_bytes, 0, 20, &st0);
	ASSERT_EQ(st0.reserve_bytes, st0.reserve_ready_bytes);
	ASSERT_EQ(0, set_max(self->a, name, unit - 4096));
	ASSERT_EQ(0, join(self->a));
	EXPECT_EQ(-EDQUOT, alloc_buf(fd, unit, CMABUF_MODE_CACHED, &refused));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(st0.reserve_hits, st.reserve_hits);
	EXPECT_EQ(st0.reserve_ready_bytes, st.reserve_ready_bytes) TH_LOG("refused, yet a piece went");
	EXPECT_EQ(0, current_of(self->a, name));
	ASSERT_EQ(0, set_max(self->a, name, unit));
	ASSERT_EQ(0, alloc_buf(fd, unit, CMABUF_MODE_COHERENT, &a));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(st0.reserve_hits + 1, st.reserve_hits) TH_LOG("not served by the reserve");
	EXPECT_EQ(unit, current_of(self->a, name));
	EXPECT_EQ(-EDQUOT, alloc_buf(fd, unit, CMABUF_MODE_CACHED, &refused));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(st0.reserve_hits + 1, st.reserve_hits);
	EXPECT_EQ(0, free_buf(fd, a.handle));
	EXPECT_EQ(0, current_of(self->a, name));
	EXPECT_EQ(0, join(CG));
	close(fd);
}

TEST_HARNESS_MAIN
