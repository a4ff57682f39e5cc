/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the cmabuf selftests: the device, the ioctls as
 * "0 or -errno" calls, and the kernel's view of the CMA region.
 */
#ifndef CMABUF_UTIL_H
#define CMABUF_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/cmabuf.h>

/* The device under test: $CMABUF_DEV, default /dev/cmabuf0. */
static inline const char *dev_path(void)
{
	const char *p = getenv("CMABUF_DEV");

	return p ? p : "/dev/cmabuf0";
}

/* ioctl() as 0 or -errno. */
static inline int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int alloc_buf(int fd, __u64 size, __u32 flags, struct cmabuf_alloc *a)
{
	memset(a, 0, sizeof(*a));
	a->size = size;
	a->flags = flags;
	return xioctl(fd, CMABUF_IOCTL_ALLOC, a);
}

static inline int free_buf(int fd, __u32 handle)
{
	struct cmabuf_free f = { .handle = handle };

	return xioctl(fd, CMABUF_IOCTL_FREE, &f);
}

static inline int get_stats(int fd, struct cmabuf_stats *st)
{
	memset(st, 0, sizeof(*st));
	return xioctl(fd, CMABUF_IOCTL_STATS, st);
}

/* A number from a sysfs file named by fmt and arg, or -1. */
static inline long read_long(const char *fmt, const char *arg)
{
	char path[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), fmt, arg);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/*
 * Polls the node's STATS (every 10 ms, up to `secs`) until `ready` bytes of its ready reserve
 * are ready and `lent` lent to live buffers: 0, or -1; the STATS seen last in `st`.
 */
static inline int reserve_wait(int fd, __u64 ready, __u64 lent, double secs,
			       struct cmabuf_stats *st)
{
	int i;

	for (i = 0; i < secs * 100; i++) {
		if (get_stats(fd, st))
			return -1;
		if (st->reserve_ready_bytes == ready && st->reserve_lent_bytes == lent)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* Becomes user camera (uid 1000), in group video (44) only (the board's user): 0 or -errno. */
static inline int become_camera(void)
{
	gid_t video = 44;

	if (setgroups(1, &video) || setgid(1000) || setuid(1000))
		return -errno;
	return 0;
}

/* A /proc/meminfo field in bytes, or -1. */
static inline long long meminfo(const char *key)
{
	char line[256];
	long long kb = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			kb = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* A number from the device's debugfs file (e.g. the module-wide held_* figures), or -1. */
static inline long debugfs_value(const char *key)
{
	char path[128], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/cmabuf/%s", strrchr(dev_path(), '/') + 1);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ' ') {
			v = strtol(line + klen, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Waits up to `secs` for held memory (pages a pipe or direct I/O kept) to be freed: whether none is left. */
static inline int held_drained(double secs)
{
	struct timespec t0, t;
	double waited = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (debugfs_value("held_buffers") > 0 && waited < secs) {
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
	}
	return debugfs_value("held_buffers") <= 0;
}

/* CMABUF_IOCTL_DEV_INFO, the region's name into name[len] (none if name is NULL): 0 or -errno. */
static inline int dev_info(int fd, struct cmabuf_dev_info *d, char *name, size_t len)
{
	memset(d, 0, sizeof(*d));
	d->region_name_ptr = (unsigned long)name;
	d->region_name_len = name ? len : 0;
	return xioctl(fd, CMABUF_IOCTL_DEV_INFO, d);
}

/* Pages the region has handed out and not taken back, as CMA counts them, or -1. */
static inline long cma_taken(const char *region)
{
	long total = read_long("/sys/kernel/mm/cma/%s/total_pages", region);
	long avail = read_long("/sys/kernel/mm/cma/%s/available_pages", region);

	return total < 0 || avail < 0 ? -1 : total - avail;
}

/*
 * Pages of the region in use, or -1: what CMA handed out, less what cmabuf
 * keeps in its small-buffer chunks without a buffer in it (pool_free_bytes
 * of dev_path(); such chunks go back to CMA within a second of being
 * emptied, under memory pressure and at unbind: see cmabuf_pool).
 */
static inline long cma_used(const char *region)
{
	int fd = open(dev_path(), O_RDONLY | O_CLOEXEC);
	long taken = cma_taken(region);

	/*
	 * The pool frees a chunk under the lock STATS takes: CMA's count read
	 * the same before and after STATS agrees with what STATS saw.
	 */
	for (int i = 0; fd >= 0 && i < 100; i++) {
		struct cmabuf_stats st;
		long again;

		memset(&st, 0, sizeof(st));
		if (ioctl(fd, CMABUF_IOCTL_STATS, &st) || taken < 0)
			break;
		again = cma_taken(region);
		if (again == taken) {
			taken -= st.pool_free_bytes / sysconf(_SC_PAGESIZE);
			break;
		}
		taken = again;
	}
	if (fd >= 0)
		close(fd);
	return taken;
}

/*
 * Waits up to `secs` for the device's small-buffer pool to hold no chunk
 * (an emptied chunk is kept a second for reuse); the seconds it took, or -1.
 */
static inline double pool_drained(int fd, double secs)
{
	struct timespec t0, t;
	struct cmabuf_stats st;
	double waited = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (waited < secs) {
		memset(&st, 0, sizeof(st));
		if (ioctl(fd, CMABUF_IOCTL_STATS, &st))
			return -1;
		if (st.pool_bytes == 0)
			return waited;
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
	}
	return -1;
}

/* The platform device name bound as /dev/cmabufN, for sysfs unbind/bind. */
static inline int platform_name(const char *dev, char *out, size_t len)
{
	char path[256], link[256];
	ssize_t n;
	char *base;

	snprintf(path, sizeof(path), "/sys/class/misc/%s/device", strrchr(dev, '/') + 1);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		/* The misc device has no parent link: derive from the index. */
		snprintf(out, len, "%s", strrchr(dev, '/') + 1);
		return 0;
	}
	link[n] = 0;
	base = strrchr(link, '/');
	snprintf(out, len, "%s", base ? base + 1 : link);
	return 0;
}

/* Writes `s` to the file at `path`: 0, -errno of open() or write(), or -EIO on a short write. */
static inline int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* Unbinds (bind = 0) or binds the platform device behind /dev/cmabufN: 0 or -errno. */
static inline int set_bound(const char *platform, int bind)
{
	return write_file(bind ? "/sys/bus/platform/drivers/cmabuf/bind" :
			  "/sys/bus/platform/drivers/cmabuf/unbind", platform);
}

/*
 * Loads the module with `params` (module parameters, may be ""): $CMABUF_KO
 * with insmod if set, else the installed module with modprobe. 0 or -1.
 */
static inline int load_module(const char *params)
{
	const char *ko = getenv("CMABUF_KO");
	char cmd[512];

	if (ko)
		snprintf(cmd, sizeof(cmd), "insmod %s %s", ko, params);
	else
		snprintf(cmd, sizeof(cmd), "modprobe cmabuf %s", params);
	if (system(cmd))
		return -1;
	/*
	 * The new nodes get the board's device rules (root:video 0660), as at
	 * boot (busybox mdev; udev applies them by itself).
	 */
	if (system("! command -v mdev >/dev/null || mdev -s"))
		return -1;
	return 0;
}

/* The device under test as a fixture holds it, and its region's use at the start. */
struct cmabuf_dev {
	int fd;
	char region[64];
	char platform[256];
	__u64 region_size;
	long used0;
};

/* Opens the device (fd -1 on failure: errno says why, ENOENT when it is missing). */
static inline int cmabuf_dev_open(struct cmabuf_dev *d)
{
	struct cmabuf_dev_info info;

	memset(d, 0, sizeof(*d));
	d->used0 = -1;
	d->fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (d->fd < 0)
		return -1;
	if (dev_info(d->fd, &info, d->region, sizeof(d->region)))
		return -1;
	d->region_size = info.region_size;
	platform_name(dev_path(), d->platform, sizeof(d->platform));
	d->used0 = cma_used(d->region);
	return 0;
}

/* Closes it, binds it again if a test left it unbound; whether the region's pages are back. */
static inline int cmabuf_dev_close(struct cmabuf_dev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (access(dev_path(), F_OK) && d->platform[0])
		set_bound(d->platform, 1);
	return d->used0 < 0 || cma_used(d->region) == d->used0;
}

#endif /* CMABUF_UTIL_H */
