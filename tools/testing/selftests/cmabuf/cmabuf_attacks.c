// SPDX-License-Identifier: GPL-2.0
/*
 * What an ordinary member of the video group can do to others with cmabuf,
 * and what stops it:
 *
 * - export_close_loop_keeps_nothing: EXPORT of ever new parts of one buffer,
 *   closing each descriptor at once, 100,000 times: the system-wide file
 *   count and slab stay flat (a handle keeps only dma-bufs something else
 *   still holds), and at most CMABUF_EXPORT_MAX_PARTS parts held at once.
 * - held_memory_counts_against_limits: buffers freed while a pipe holds one
 *   page each (vmsplice) keep their charges: the device limit stops the loop
 *   with EDQUOT and the region never runs dry; STATS and debugfs say how much
 *   is held and who allocated it; everything is back when the pipes close.
 * - reaper_cost_with_1000_held: with 1000 held allocations, the work that
 *   frees held memory checks each about once a second; its cost is printed.
 * - readonly_longterm_pin_killable: a V4L2 USERPTR OUTPUT queue (vivid,
 *   vmalloc allocator) given a page-backed mapping spins in the kernel's
 *   long-term pin (CMA pages cannot be pinned long-term, ours cannot move):
 *   SIGKILL ends it within a second, cmabuf's other users are unaffected
 *   meanwhile, nothing is left behind.
 * - racing_frees_keep_the_list: two threads freeing and allocating the same
 *   address never lose a live buffer from the region's list (STATS
 *   largest_free sees every buffer a thread holds).
 *
 * The unprivileged parts run as user camera (uid 1000, group video 44), as
 * the board sets up; tests skip where the board lacks what they need.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/videodev2.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"

#define PAGE 4096ULL
#define MIB (1024ULL * 1024)

/* The first number of /proc/sys/fs/file-nr: files allocated system-wide. */
static long files_allocated(void)
{
	return read_long("%s", "/proc/sys/fs/file-nr");
}

/* No shared state: a fixture only for the harness's per-test timeouts. */
FIXTURE(attack) {
	int unused;
};

FIXTURE_SETUP(attack)
{
}

FIXTURE_TEARDOWN(attack)
{
}

/* Whether the kernel runs KASAN (its quarantine keeps freed slab objects for a while). */
static int kernel_has_kasan(void)
{
	return !system("grep -q ' kasan_report$' /proc/kallsyms");
}

static int export_part(int fd, __u32 handle, __u64 offset, __u64 length)
{
	struct cmabuf_export e = {
		.handle = handle, .flags = O_RDWR | O_CLOEXEC, .offset = offset, .length = length,
	};
	int ret = xioctl(fd, CMABUF_IOCTL_EXPORT, &e);

	return ret ? ret : (int)e.fd;
}

/* What the export loop reports back from the unprivileged child. */
struct loop_result {
	long done, failed_at, err;
	long files0, files1, slab0, slab1;
	double secs;
	int cap_ok;
};

/*
 * 100,000 exports; under KASAN (the debug kernel: 1.5 to 3.5 ms an export and
 * close under emulation) 5,000, which show the same. Stops after a time box
 * either way, and says how many it did.
 */
#define EXPORT_LOOP 100000
#define EXPORT_LOOP_KASAN 5000
#define EXPORT_LOOP_SECS 120.0

static void export_loop(struct loop_result *r, long n)
{
	int fd, held[CMABUF_EXPORT_MAX_PARTS + 1];
	struct cmabuf_alloc a;
	double t0;
	long i;

	r->err = become_camera();
	if (r->err)
		return;
	fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r->err = -errno;
		return;
	}
	/* 4 MiB: parts (i % 512, 1 + i / 512) in pages are all distinct for i < 100,000. */
	r->err = alloc_buf(fd, 4 * MIB, CMABUF_MODE_CACHED, &a);
	if (r->err)
		return;
	r->files0 = files_allocated();
	r->slab0 = meminfo("Slab") / 1024;
	t0 = now_s();
	for (i = 0; i < n && now_s() - t0 < EXPORT_LOOP_SECS; i++) {
		int d = export_part(fd, a.handle, (i % 512) * PAGE, (1 + i / 512) * PAGE);

		if (d < 0) {
			r->failed_at = i;
			r->err = d;
			break;
		}
		close(d);
	}
	r->secs = now_s() - t0;
	r->done = i;
	/* One more export lets go of the last part nothing holds. */
	i = export_part(fd, a.handle, 0, PAGE);
	if (i >= 0)
		close(i);
	r->files1 = files_allocated();
	r->slab1 = meminfo("Slab") / 1024;

	/* At most CMABUF_EXPORT_MAX_PARTS parts held at once; closing one makes room. */
	r->cap_ok = 1;
	for (i = 0; i < CMABUF_EXPORT_MAX_PARTS; i++) {
		held[i] = export_part(fd, a.handle, i * PAGE, PAGE);
		if (held[i] < 0) {
			r->cap_ok = 0;
			break;
		}
	}
	if (r->cap_ok) {
		r->cap_ok = export_part(fd, a.handle, 0, 2 * PAGE) == -EMFILE;
		close(held[0]);
		held[CMABUF_EXPORT_MAX_PARTS] = export_part(fd, a.handle, 0, 2 * PAGE);
		r->cap_ok &= held[CMABUF_EXPORT_MAX_PARTS] >= 0;
		held[0] = held[CMABUF_EXPORT_MAX_PARTS];
	}
	for (long k = 0; k < i; k++)
		close(held[k]);
	free_buf(fd, a.handle);
	close(fd);
}

TEST_F_TIMEOUT(attack, export_close_loop_keeps_nothing, 300)
{
	struct loop_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long slab_bound, n = kernel_has_kasan() ? EXPORT_LOOP_KASAN : EXPORT_LOOP;
	struct cmabuf_dev d;
	pid_t pid;
	int status;

	ASSERT_NE(MAP_FAILED, r);
	if (cmabuf_dev_open(&d) && errno == ENOENT)
		SKIP(return, "%s missing", dev_path());
	ASSERT_LE(0, d.fd);
	memset(r, 0, sizeof(*r));
	r->failed_at = -1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		export_loop(r, n);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, r->err) TH_LOG("as user camera: %s (after %ld exports)", strerror(-r->err),
				     r->done);
	/*
	 * KASAN's quarantine holds freed objects (and their slab pages) until it
	 * reaches 1/32 of memory; without it, slab must stay within 8 MiB.
	 */
	slab_bound = kernel_has_kasan() ? meminfo("MemTotal") / 1024 / 32 + 8192 : 8192;
	TH_LOG("%ld exports of distinct parts, each closed at once, in %.1f s (%.0f/s) as user "
	       "camera: file-nr %ld -> %ld (%+ld), slab %ld -> %ld kB (%+ld kB, bound %ld kB)",
	       r->done, r->secs, r->done / r->secs, r->files0, r->files1, r->files1 - r->files0,
	       r->slab0, r->slab1, r->slab1 - r->slab0, slab_bound);
	EXPECT_EQ(n, r->done) TH_LOG("only %ld of %ld exports in %.0f s", r->done, n,
				      EXPORT_LOOP_SECS);
	/* nr_files is a per-CPU counter read without summing: a batch of slack per CPU. */
	EXPECT_GE(256, labs(r->files1 - r->files0));
	EXPECT_GE(slab_bound, r->slab1 - r->slab0);
	EXPECT_TRUE(r->cap_ok) TH_LOG("%d parts held at once: the next is not EMFILE, or closing "
				      "one made no room", CMABUF_EXPORT_MAX_PARTS);
	EXPECT_TRUE(cmabuf_dev_close(&d));
	munmap(r, sizeof(*r));
}

/* Reloads the module with `params` (nothing of it may be open). */
static int reload(const char *params)
{
	if (system("rmmod cmabuf"))
		return -1;
	return load_module(params);
}

#define HOLD_SIZE (16 * MIB)
#define HOLD_LIMIT (64 * MIB)
#define HOLD_TRIES 16

/* The hold loop's report from the unprivileged child. */
struct hold_result {
	int err, ok, refused_errno;
	__u64 held_buffers, held_bytes, live_bytes;
	int other_ok;
};

/*
 * As user camera: { ALLOC 16 MiB page-backed, mmap, vmsplice one page into a
 * new pipe, munmap, FREE } until refused, pipes kept open; then asks the
 * parent (pipe `sync`) to check, and waits for its word to close them.
 */
static void hold_loop(struct hold_result *r, int tell, int wait_for)
{
	int fd, pipes[HOLD_TRIES][2], n = 0;
	struct cmabuf_stats st;
	char c;

	r->err = become_camera();
	if (r->err)
		goto out;
	fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r->err = -errno;
		goto out;
	}
	for (n = 0; n < HOLD_TRIES; n++) {
		struct cmabuf_alloc a;
		struct iovec iov;
		unsigned char *p;
		int ret;

		ret = alloc_buf(fd, HOLD_SIZE, CMABUF_MODE_CACHED | CMABUF_ALLOC_PAGE_MAP, &a);
		if (ret) {
			r->refused_errno = -ret;
			break;
		}
		p = mmap(NULL, HOLD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.mmap_offset);
		if (p == MAP_FAILED || pipe(pipes[n])) {
			r->err = -errno;
			break;
		}
		p[0] = (unsigned char)n;
		iov = (struct iovec){ .iov_base = p, .iov_len = PAGE };
		if (vmsplice(pipes[n][1], &iov, 1, 0) != (ssize_t)PAGE)
			r->err = -errno;
		munmap(p, HOLD_SIZE);
		free_buf(fd, a.handle);
		r->ok++;
	}
	if (!get_stats(fd, &st)) {
		r->held_buffers = st.held_buffers;
		r->held_bytes = st.held_bytes;
		r->live_bytes = st.live_bytes;
	}
	close(fd);
out:
	if (write(tell, "x", 1) != 1 || read(wait_for, &c, 1) != 1)
		r->err = r->err ? r->err : -EIO;
	for (int i = 0; i < n; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
}

TEST_F_TIMEOUT(attack, held_memory_counts_against_limits, 120)
{
	struct hold_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int to_parent[2], to_child[2], fd, held_lines = 0;
	char params[64], line[256], path[128], c;
	struct cmabuf_stats st;
	struct cmabuf_alloc a;
	struct cmabuf_dev d;
	long used0;
	FILE *f;
	pid_t pid;
	int status;

	ASSERT_NE(MAP_FAILED, r);
	if (cmabuf_dev_open(&d) && errno == ENOENT)
		SKIP(return, "%s missing", dev_path());
	ASSERT_LE(0, d.fd);
	used0 = d.used0;
	close(d.fd);
	snprintf(params, sizeof(params), "max_bytes_per_device=%llu", HOLD_LIMIT);
	ASSERT_EQ(0, reload(params));
	memset(r, 0, sizeof(*r));
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		hold_loop(r, to_parent[1], to_child[0]);
		_exit(0);
	}
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	EXPECT_EQ(0, r->err) TH_LOG("hold loop: %s", strerror(-r->err));
	TH_LOG("under a %llu MiB device limit: %d buffers of %llu MiB freed with a page held, "
	       "then errno %d (%s); STATS held %llu buffers, %llu MiB, live %llu MiB",
	       HOLD_LIMIT / MIB, r->ok, HOLD_SIZE / MIB, r->refused_errno,
	       strerror(r->refused_errno), (unsigned long long)r->held_buffers,
	       (unsigned long long)(r->held_bytes / MIB), (unsigned long long)(r->live_bytes / MIB));
	EXPECT_EQ(HOLD_LIMIT / HOLD_SIZE, r->ok);
	EXPECT_EQ(EDQUOT, r->refused_errno);
	EXPECT_EQ(HOLD_LIMIT / HOLD_SIZE, r->held_buffers);
	EXPECT_EQ(HOLD_LIMIT, r->held_bytes);
	EXPECT_EQ(HOLD_LIMIT, r->live_bytes);

	/* The limit holds for everyone, and the region did not run dry. */
	fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EDQUOT, alloc_buf(fd, HOLD_SIZE, 0, &a));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_LE(HOLD_LIMIT, st.largest_free) TH_LOG("the region ran dry");

	/* debugfs names who allocated each held buffer, and for how long it has been held. */
	snprintf(path, sizeof(path), "/sys/kernel/debug/cmabuf/%s", strrchr(dev_path(), '/') + 1);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			int pid_seen;
			char comm[32];
			unsigned long long bytes;
			long ms;

			if (sscanf(line, " %d %31s %llu %ld", &pid_seen, comm, &bytes, &ms) == 4 &&
			    pid_seen == pid && !strcmp(comm, "cmabuf_attacks") && bytes == HOLD_SIZE)
				held_lines++;
		}
		fclose(f);
	}
	EXPECT_EQ(HOLD_LIMIT / HOLD_SIZE, held_lines) TH_LOG("debugfs held lines for pid %d", pid);

	/* rmmod is refused while the pipes hold memory. */
	close(fd);
	EXPECT_NE(0, system("rmmod cmabuf 2>/dev/null"));

	/* The pipes close: everything comes back. */
	ASSERT_EQ(1, write(to_child[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(held_drained(3)) TH_LOG("memory still held 3 s after the pipes closed");
	fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(0, st.held_buffers);
	EXPECT_EQ(0, st.live_bytes);
	close(fd);
	EXPECT_EQ(0, reload(""));
	EXPECT_EQ(used0, cma_used(d.region));
	munmap(r, sizeof(*r));
}

#define REAP_N 1000
#define REAP_PIPES 4

/*
 * 1000 small page-backed buffers freed while pipes hold one page each: the
 * work that frees held memory checks each about once a second (its schedule
 * grows from 10 ms to 1 s) and a check of a held buffer is one page look-up.
 * Prints the checks and the time the work took per second of waiting.
 */
TEST_F_TIMEOUT(attack, reaper_cost_with_1000_held, 180)
{
	long checks0, checks1, us0, us1, passes0, passes1;
	int fd, pipes[REAP_PIPES][2];
	struct cmabuf_dev d;
	double t0, t1;
	int i;

	if (cmabuf_dev_open(&d) && errno == ENOENT)
		SKIP(return, "%s missing", dev_path());
	ASSERT_LE(0, d.fd);
	if (debugfs_value("held_checks") < 0)
		SKIP(return, "no debugfs figures of held memory");
	fd = d.fd;
	/* 256 pages per pipe (root may exceed pipe-max-size). */
	for (i = 0; i < REAP_PIPES; i++) {
		ASSERT_EQ(0, pipe(pipes[i]));
		ASSERT_LE(256 * PAGE, fcntl(pipes[i][1], F_SETPIPE_SZ, 256 * PAGE));
	}
	for (i = 0; i < REAP_N; i++) {
		struct cmabuf_alloc a;
		struct iovec iov;
		unsigned char *p;

		ASSERT_EQ(0, alloc_buf(fd, PAGE, CMABUF_MODE_CACHED | CMABUF_ALLOC_PAGE_MAP, &a))
			TH_LOG("buffer %d", i);
		p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a.mmap_offset);
		ASSERT_NE(MAP_FAILED, p);
		p[0] = 1;
		iov = (struct iovec){ .iov_base = p, .iov_len = PAGE };
		ASSERT_EQ((ssize_t)PAGE, vmsplice(pipes[i % REAP_PIPES][1], &iov, 1, 0))
			TH_LOG("buffer %d: %s", i, strerror(errno));
		munmap(p, PAGE);
		ASSERT_EQ(0, free_buf(fd, a.handle));
	}
	EXPECT_EQ(REAP_N, debugfs_value("held_buffers"));
	/* Let every schedule reach its 1 s ceiling, then measure 3 s. */
	sleep(2);
	checks0 = debugfs_value("held_checks");
	us0 = debugfs_value("held_work_us");
	passes0 = debugfs_value("held_passes");
	t0 = now_s();
	sleep(3);
	checks1 = debugfs_value("held_checks");
	us1 = debugfs_value("held_work_us");
	passes1 = debugfs_value("held_passes");
	t1 = now_s();
	TH_LOG("%d held allocations: %.0f checks/s in %.1f passes/s, the work took %.0f us/s "
	       "(%.2f%% of a CPU)", REAP_N, (checks1 - checks0) / (t1 - t0),
	       (passes1 - passes0) / (t1 - t0), (us1 - us0) / (t1 - t0),
	       (us1 - us0) / (t1 - t0) / 1e4);
	/* About one check per allocation per second (timer slack allows some more). */
	EXPECT_GE(2.0 * REAP_N, (checks1 - checks0) / (t1 - t0));
	EXPECT_LE(0.5 * REAP_N, (checks1 - checks0) / (t1 - t0));
	for (i = 0; i < REAP_PIPES; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	EXPECT_TRUE(held_drained(3)) TH_LOG("held memory not back 3 s after the pipes closed");
	EXPECT_TRUE(cmabuf_dev_close(&d));
}

/* vivid's video output node, vivid loaded with the vmalloc allocator (USERPTR), or -1. */
static int open_vivid_output(void)
{
	if (system("rmmod vivid 2>/dev/null; modprobe vivid n_devs=1 node_types=0x100 "
		   "allocators=0 2>/dev/null"))
		return -1;
	return open_vivid_caps(0, V4L2_CAP_VIDEO_OUTPUT);
}

/* The state letter of a task (/proc/PID/stat), or '?'. */
static char task_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return p && p[1] == ' ' ? p[2] : '?';
}

/*
 * A read-only long-term pin of page-backed cmabuf memory: V4L2 USERPTR on an
 * OUTPUT queue (the device reads the frame: videobuf2 pins it FOLL_LONGTERM
 * without FOLL_WRITE). The kernel tries to migrate CMA pages out before such
 * a pin and retries while migration fails; ours cannot move, so QBUF spins
 * until the task gets a fatal signal (nothing a module can do: see the
 * userspace API). Bounded here: killed after 2 s, reaped within 1 s, another
 * process allocates and frees meanwhile, nothing left behind.
 */
TEST_F_TIMEOUT(attack, readonly_longterm_pin_killable, 120)
{
	struct v4l2_requestbuffers rb = {
		.count = 1, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_USERPTR,
	};
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT };
	double t_kill, t_reaped, worst = 0;
	struct cmabuf_dev d;
	int vid, rounds = 0, status;
	pid_t pid;
	char st;

	if (cmabuf_dev_open(&d) && errno == ENOENT)
		SKIP(return, "%s missing", dev_path());
	ASSERT_LE(0, d.fd);
	vid = open_vivid_output();
	if (vid < 0)
		SKIP(return, "no vivid video output node (CONFIG_VIDEO_VIVID)");
	ASSERT_EQ(0, xioctl(vid, VIDIOC_G_FMT, &fmt));
	if (xioctl(vid, VIDIOC_REQBUFS, &rb)) {
		close(vid);
		system("rmmod vivid");
		SKIP(return, "vivid's output queue takes no USERPTR buffers here");
	}
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		__u32 len = fmt.fmt.pix.sizeimage;
		struct v4l2_buffer b = {
			.index = 0, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT,
			.memory = V4L2_MEMORY_USERPTR, .length = len, .bytesused = len,
		};
		struct cmabuf_alloc a;
		void *p;

		if (alloc_buf(d.fd, len, CMABUF_MODE_CACHED | CMABUF_ALLOC_PAGE_MAP, &a))
			_exit(2);
		p = mmap(NULL, a.alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd,
			 a.mmap_offset);
		if (p == MAP_FAILED)
			_exit(3);
		b.m.userptr = (unsigned long)p;
		/* Spins in the kernel; returns only if the pin fails or succeeds. */
		_exit(ioctl(vid, VIDIOC_QBUF, &b) ? 10 + errno % 100 : 1);
	}
	/* Another user of cmabuf meanwhile: allocations go on, none waits on the spinner. */
	for (double end = now_s() + 2; now_s() < end; rounds++) {
		struct cmabuf_alloc a;
		double t = now_s();
		int fd = open(dev_path(), O_RDWR | O_CLOEXEC);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, alloc_buf(fd, MIB, CMABUF_MODE_CACHED, &a));
		ASSERT_EQ(0, free_buf(fd, a.handle));
		close(fd);
		if (now_s() - t > worst)
			worst = now_s() - t;
		usleep(50000);
	}
	st = task_state(pid);
	EXPECT_EQ(0, waitpid(pid, &status, WNOHANG)) TH_LOG("QBUF returned: exit %d",
							    WEXITSTATUS(status));
	t_kill = now_s();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	t_reaped = now_s();
	TH_LOG("USERPTR QBUF on vivid's output queue still in the kernel after 2 s (state %c); "
	       "SIGKILL to reaped in %.3f s; meanwhile %d allocations by another process, the "
	       "slowest %.3f s", st, t_reaped - t_kill, rounds, worst);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	EXPECT_GT(1.0, t_reaped - t_kill);
	EXPECT_GT(1.0, worst) TH_LOG("an allocation took %.3f s", worst);
	close(vid);
	EXPECT_EQ(0, system("rmmod vivid"));
	EXPECT_TRUE(held_drained(3));
	EXPECT_TRUE(cmabuf_dev_close(&d));
}

#define RACE_ROUNDS 300
#define RACE_SIZE (2 * MIB)

struct racer {
	int fd, lost, rounds;
	__u64 region_size;
};

static volatile int racing;

/* Keeps a CPU busy, so that the racers are preempted at arbitrary points. */
static void *spin(void *arg)
{
	(void)arg;
	while (racing)
		;
	return NULL;
}

static void *race(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < RACE_ROUNDS; i++) {
		struct cmabuf_stats st;
		struct cmabuf_alloc a;

		if (alloc_buf(r->fd, RACE_SIZE, CMABUF_MODE_CACHED, &a))
			continue;
		/* While this thread holds a buffer, the region is never all free. */
		if (!get_stats(r->fd, &st) && st.largest_free > r->region_size - RACE_SIZE)
			r->lost++;
		free_buf(r->fd, a.handle);
		r->rounds++;
	}
	return NULL;
}

/*
 * Two threads allocate and free buffers of one size, so that each is often
 * handed the address the other has just freed. Memory goes back to CMA only
 * after the region unlisted it: were it the other way round, the late unlist
 * would remove the other thread's fresh buffer, and STATS would report the
 * whole region free while it holds one.
 */
TEST_F_TIMEOUT(attack, racing_frees_keep_the_list, 180)
{
	struct racer r[2];
	pthread_t t[2], hog[2];
	struct cmabuf_dev d;

	if (cmabuf_dev_open(&d) && errno == ENOENT)
		SKIP(return, "%s missing", dev_path());
	ASSERT_LE(0, d.fd);
	racing = 1;
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&hog[i], NULL, spin, NULL));
	for (int i = 0; i < 2; i++) {
		r[i] = (struct racer){ .fd = d.fd, .region_size = d.region_size };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, race, &r[i]));
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	racing = 0;
	for (int i = 0; i < 2; i++)
		pthread_join(hog[i], NULL);
	TH_LOG("%d + %d rounds; a held buffer missing from the region's list %d + %d times",
	       r[0].rounds, r[1].rounds, r[0].lost, r[1].lost);
	EXPECT_LT(RACE_ROUNDS, r[0].rounds + r[1].rounds);
	EXPECT_EQ(0, r[0].lost + r[1].lost);
	EXPECT_TRUE(cmabuf_dev_close(&d));
}

TEST_HARNESS_MAIN
