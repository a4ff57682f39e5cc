// SPDX-License-Identifier: GPL-2.0
/*
 * Page-backed mappings (CMABUF_ALLOC_PAGE_MAP): O_DIRECT and io_uring from
 * and into cmabuf memory, long-term pins refused, and memory whose pages
 * direct I/O or a pipe still holds kept from the region until they let go.
 *
 * The scratch disk is $CMABUF_DISK, default /dev/vda (the board's virtio-blk
 * scratch disk, loaded as modules where the kernel has them so); tests that
 * need it skip without it. Its contents are overwritten.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>

#include <errno.h>
#include <io_uring/mini_liburing.h>

#include "../kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"

#define PAGE 4096
#define MIB (1024 * 1024)

/* The scratch disk opened with O_DIRECT (loading virtio-blk if need be), or -1. */
static int open_disk(void)
{
	const char *path = getenv("CMABUF_DISK") ? getenv("CMABUF_DISK") : "/dev/vda";
	int fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);

	if (fd < 0 && !system("modprobe -q virtio_mmio; modprobe -q virtio_blk; mdev -s")) {
		usleep(200000);
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	}
	return fd;
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + seed + (i >> 12));
}

FIXTURE(dio) {
	struct cmabuf_dev d;
	int disk;
};

FIXTURE_VARIANT(dio) {
	__u32 mode;
};

FIXTURE_VARIANT_ADD(dio, coherent) { .mode = CMABUF_MODE_COHERENT };
FIXTURE_VARIANT_ADD(dio, writecombine) { .mode = CMABUF_MODE_WRITECOMBINE };
FIXTURE_VARIANT_ADD(dio, cached) { .mode = CMABUF_MODE_CACHED };

/* The node marked dma-coherent: $CMABUF_COHERENT_DEV, default /dev/cmabuf2 (the test overlay's). */
static const char *coherent_dev_path(void)
{
	const char *p = getenv("CMABUF_COHERENT_DEV");

	return p ? p : "/dev/cmabuf2";
}

FIXTURE_SETUP(dio)
{
	self->disk = -1;
	/*
	 * Page-backed mappings of coherent and write-combined buffers exist only
	 * on a DMA-coherent device (elsewhere the kernel's cached linear map
	 * would alias the owner's uncached view): those variants run there.
	 */
	if (variant->mode != CMABUF_MODE_CACHED) {
		if (access(coherent_dev_path(), F_OK))
			SKIP(return, "no dma-coherent node (%s): page-backed %s buffers need one",
			     coherent_dev_path(), variant->mode == CMABUF_MODE_COHERENT ?
			     "coherent" : "write-combined");
		setenv("CMABUF_DEV", coherent_dev_path(), 1);
	}
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
	self->disk = open_disk();
}

FIXTURE_TEARDOWN(dio)
{
	if (self->disk >= 0)
		close(self->disk);
	EXPECT_TRUE(held_drained(5)) TH_LOG("memory still held after 5 s");
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

#define NEED_DISK()                                                                     \
	do {                                                                            \
		if (self->disk < 0)                                                     \
			SKIP(return, "no scratch disk (%s): CONFIG_VIRTIO_BLK, a virtio-blk " \
			     "device", getenv("CMABUF_DISK") ? getenv("CMABUF_DISK") : "/dev/vda"); \
	} while (0)

/* A buffer of `len` bytes allocated with `flags`, mapped read-write (NULL on failure). */
static unsigned char *alloc_map(struct __test_metadata *_metadata, int fd, size_t len,
				__u32 flags, struct cmabuf_alloc *a)
{
	unsigned char *p;

	EXPECT_EQ(0, alloc_buf(fd, len, flags, a));
	if (!a->handle)
		return NULL;
	p = mmap(NULL, a->alloc_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, a->mmap_offset);
	EXPECT_NE(MAP_FAILED, p);
	return p == MAP_FAILED ? NULL : p;
}

/* The flag is reported back, and bits beyond it are still refused. */
TEST_F(dio, flag_reported_and_checked)
{
	struct cmabuf_info i = { 0 };
	struct cmabuf_alloc a;

	ASSERT_EQ(0, alloc_buf(self->d.fd, PAGE, variant->mode | CMABUF_ALLOC_PAGE_MAP, &a));
	i.handle = a.handle;
	ASSERT_EQ(0, xioctl(self->d.fd, CMABUF_IOCTL_INFO, &i));
	EXPECT_EQ(variant->mode | CMABUF_ALLOC_PAGE_MAP, i.flags);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	/* The first bit past the valid ones (they are contiguous from bit 0). */
	EXPECT_EQ(-EINVAL, alloc_buf(self->d.fd, PAGE, CMABUF_ALLOC_VALID_FLAGS + 1, &a));
	EXPECT_EQ(-EINVAL, alloc_buf(self->d.fd, PAGE, CMABUF_ALLOC_PAGE_MAP | 3, &a));
}

/*
 * Page-backed mappings only where the kernel's cached view and the owner's
 * agree: on the board's ordinary node (not DMA-coherent, DEV_INFO says so)
 * ALLOC of a coherent or write-combined buffer with CMABUF_ALLOC_PAGE_MAP is
 * EOPNOTSUPP and changes nothing (statistics, region, the next handle); so
 * is DMA_HEAP_IOCTL_ALLOC when heap_mode asks for one. Cached ones are
 * allowed. On the node marked dma-coherent every mode is allowed.
 */
TEST(uncached_page_map_needs_coherent_device)
{
	static const __u32 uncached[] = { CMABUF_MODE_COHERENT, CMABUF_MODE_WRITECOMBINE };
	struct cmabuf_stats s0, s1;
	struct cmabuf_dev_info info;
	struct cmabuf_alloc a, b;
	struct cmabuf_dev d, c;
	long used0;

	if (cmabuf_dev_open(&d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, d.fd);
	ASSERT_EQ(0, dev_info(d.fd, &info, NULL, 0));
	if (info.out_flags & CMABUF_OUT_DMA_COHERENT)
		SKIP(return, "%s is DMA-coherent: nothing to refuse there", dev_path());
	ASSERT_EQ(0, get_stats(d.fd, &s0));
	used0 = cma_used(d.region);
	for (size_t i = 0; i < 2; i++) {
		EXPECT_EQ(-EOPNOTSUPP, alloc_buf(d.fd, PAGE, uncached[i] | CMABUF_ALLOC_PAGE_MAP, &a));
		EXPECT_EQ(-EOPNOTSUPP, alloc_buf(d.fd, 4 * MIB, uncached[i] | CMABUF_ALLOC_PAGE_MAP, &a));
		EXPECT_EQ(-EOPNOTSUPP, alloc_buf(d.fd, PAGE, uncached[i] | CMABUF_ALLOC_PAGE_MAP |
						 CMABUF_ALLOC_EXPORT, &a));
	}
	ASSERT_EQ(0, get_stats(d.fd, &s1));
	EXPECT_EQ(s0.allocs, s1.allocs);
	EXPECT_EQ(s0.live_bytes, s1.live_bytes);
	EXPECT_EQ(s0.fail_limit, s1.fail_limit);
	EXPECT_EQ(used0, cma_used(d.region));
	/* Cached page-backed buffers are fine; the refusals took no handle number. */
	ASSERT_EQ(0, alloc_buf(d.fd, PAGE, CMABUF_MODE_CACHED | CMABUF_ALLOC_PAGE_MAP, &a));
	ASSERT_EQ(0, alloc_buf(d.fd, PAGE, CMABUF_MODE_CACHED, &b));
	EXPECT_EQ(a.handle + 1, b.handle);
	EXPECT_EQ(0, free_buf(d.fd, a.handle));
	EXPECT_EQ(0, free_buf(d.fd, b.handle));

	EXPECT_TRUE(cmabuf_dev_close(&d));

	/* The dma-heap path, the module reloaded with heap_mode = write-combined + page-backed. */
	ASSERT_EQ(0, system("rmmod cmabuf")) TH_LOG("rmmod cmabuf (needs root, nothing open)");
	ASSERT_EQ(0, load_module("heap_mode=5"));
	d.fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d.fd);
	EXPECT_EQ(-EOPNOTSUPP, heap_alloc(d.fd, PAGE, O_RDWR | O_CLOEXEC));
	close(d.fd);
	ASSERT_EQ(0, system("rmmod cmabuf"));
	ASSERT_EQ(0, load_module(""));

	setenv("CMABUF_DEV", coherent_dev_path(), 1);
	if (cmabuf_dev_open(&c) && errno == ENOENT) {
		TH_LOG("no dma-coherent node (%s): its side not tried", coherent_dev_path());
		return;
	}
	ASSERT_LE(0, c.fd);
	ASSERT_EQ(0, dev_info(c.fd, &info, NULL, 0));
	EXPECT_TRUE(info.out_flags & CMABUF_OUT_DMA_COHERENT);
	for (size_t i = 0; i < 2; i++) {
		unsigned char *p;

		ASSERT_EQ(0, alloc_buf(c.fd, MIB, uncached[i] | CMABUF_ALLOC_PAGE_MAP, &a));
		p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, a.mmap_offset);
		ASSERT_NE(MAP_FAILED, p);
		p[0] = 1;
		EXPECT_EQ(0, munmap(p, MIB));
		EXPECT_EQ(0, free_buf(c.fd, a.handle));
	}
	EXPECT_TRUE(cmabuf_dev_close(&c));
}

/*
 * O_DIRECT write from a page-backed mapping of the device file, read back into
 * a page-backed mapping of another buffer's dma-buf, compared byte for byte; a
 * default (page-frame) mapping is refused by direct I/O with EFAULT.
 */
TEST_F(dio, odirect_roundtrip)
{
	struct cmabuf_alloc a, b, pfn;
	unsigned char *src, *dst, *p;
	int dmabuf;

	NEED_DISK();
	src = alloc_map(_metadata, self->d.fd, MIB, variant->mode | CMABUF_ALLOC_PAGE_MAP, &a);
	ASSERT_NE(NULL, src);
	fill(src, MIB, variant->mode);
	ASSERT_EQ(MIB, pwrite(self->disk, src, MIB, 0)) TH_LOG("%s", strerror(errno));

	ASSERT_EQ(0, alloc_buf(self->d.fd, MIB, variant->mode | CMABUF_ALLOC_PAGE_MAP, &b));
	dmabuf = export_buf(self->d.fd, b.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dmabuf);
	dst = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	ASSERT_NE(MAP_FAILED, dst);
	ASSERT_EQ(MIB, pread(self->disk, dst, MIB, 0)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	EXPECT_EQ(0, memcmp(src, dst, MIB));
	EXPECT_EQ(0, dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));

	p = alloc_map(_metadata, self->d.fd, MIB, variant->mode, &pfn);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(-1, pwrite(self->disk, p, MIB, 0));
	EXPECT_EQ(EFAULT, errno);

	munmap(p, MIB);
	munmap(dst, MIB);
	munmap(src, MIB);
	close(dmabuf);
	EXPECT_EQ(0, free_buf(self->d.fd, pfn.handle));
	EXPECT_EQ(0, free_buf(self->d.fd, b.handle));
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
}

/* One io_uring read or write of `len` bytes at `off`: its result. */
static int uring_rw(struct io_uring *ring, int op, int fd, void *buf, unsigned int len, __u64 off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (unsigned long)buf;
	sqe->len = len;
	sqe->off = off;
	ret = io_uring_submit(ring);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring);
	return ret;
}

/* The same through io_uring (IORING_OP_WRITE and IORING_OP_READ on the O_DIRECT disk). */
TEST_F(dio, io_uring_roundtrip)
{
	struct cmabuf_alloc a, b;
	unsigned char *src, *dst;
	struct io_uring ring;

	NEED_DISK();
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	src = alloc_map(_metadata, self->d.fd, MIB, variant->mode | CMABUF_ALLOC_PAGE_MAP, &a);
	dst = alloc_map(_metadata, self->d.fd, MIB, variant->mode | CMABUF_ALLOC_PAGE_MAP, &b);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	fill(src, MIB, 100 + variant->mode);
	EXPECT_EQ(MIB, uring_rw(&ring, IORING_OP_WRITE, self->disk, src, MIB, 2 * MIB));
	EXPECT_EQ(MIB, uring_rw(&ring, IORING_OP_READ, self->disk, dst, MIB, 2 * MIB));
	EXPECT_EQ(0, memcmp(src, dst, MIB));
	io_uring_queue_exit(&ring);
	munmap(src, MIB);
	munmap(dst, MIB);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	EXPECT_EQ(0, free_buf(self->d.fd, b.handle));
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Long-term pins (io_uring registered buffers) of CMA pages cannot be had:
 * refused with EFAULT at once, for page-backed and page-frame mappings alike
 * (an alarm interrupts the call if it ever spins); anonymous memory registers.
 */
TEST_F(dio, long_term_pin_refused)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct cmabuf_alloc a, b;
	struct io_uring ring;
	struct iovec iov;
	double t0;
	void *anon;

	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	iov.iov_len = MIB;
	iov.iov_base = alloc_map(_metadata, self->d.fd, MIB,
				 variant->mode | CMABUF_ALLOC_PAGE_MAP, &a);
	ASSERT_NE(NULL, iov.iov_base);
	alarm(10);
	t0 = now_s();
	EXPECT_EQ(-EFAULT, io_uring_register_buffers(&ring, &iov, 1));
	alarm(0);
	EXPECT_GT(2.0, now_s() - t0);
	munmap(iov.iov_base, MIB);

	iov.iov_base = alloc_map(_metadata, self->d.fd, MIB, variant->mode, &b);
	ASSERT_NE(NULL, iov.iov_base);
	EXPECT_EQ(-EFAULT, io_uring_register_buffers(&ring, &iov, 1));
	munmap(iov.iov_base, MIB);

	anon = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	memset(anon, 1, MIB);
	iov.iov_base = anon;
	EXPECT_EQ(0, io_uring_register_buffers(&ring, &iov, 1));
	io_uring_queue_exit(&ring);
	munmap(anon, MIB);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	EXPECT_EQ(0, free_buf(self->d.fd, b.handle));
}

/*
 * vmsplice() hands a buffer's pages to a pipe, which holds them after the
 * buffer is unmapped and freed: the region keeps them (nobody else can be
 * given them) and the pipe still reads the buffer's bytes; once the pipe lets
 * go, the memory goes back to the region.
 */
TEST_F(dio, freed_while_pipe_holds_pages)
{
	const size_t len = 16 * PAGE;
	long used, held0 = debugfs_value("held_total");
	unsigned char *p, out[16 * PAGE], want[16 * PAGE];
	struct cmabuf_alloc a, big;
	struct iovec iov;
	int pipefd[2];

	p = alloc_map(_metadata, self->d.fd, len, variant->mode | CMABUF_ALLOC_PAGE_MAP, &a);
	ASSERT_NE(NULL, p);
	fill(p, len, 33);
	fill(want, len, 33);
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_LE(len, (size_t)fcntl(pipefd[1], F_GETPIPE_SZ));
	iov = (struct iovec){ .iov_base = p, .iov_len = len };
	ASSERT_EQ((ssize_t)len, vmsplice(pipefd[1], &iov, 1, 0)) TH_LOG("%s", strerror(errno));
	used = cma_used(self->d.region);
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
	usleep(100000);
	/* Still taken from the region, and waiting: not given to anyone. */
	EXPECT_EQ(used, cma_used(self->d.region));
	EXPECT_EQ(1, debugfs_value("held_buffers"));
	EXPECT_EQ(held0 + 1, debugfs_value("held_total"));
	/* The region still serves others. */
	EXPECT_EQ(0, alloc_buf(self->d.fd, 8 * MIB, CMABUF_MODE_CACHED, &big));
	EXPECT_EQ(0, free_buf(self->d.fd, big.handle));
	ASSERT_EQ((ssize_t)len, read(pipefd[0], out, len));
	EXPECT_EQ(0, memcmp(out, want, len));
	close(pipefd[0]);
	close(pipefd[1]);
	EXPECT_TRUE(held_drained(3));
	EXPECT_EQ(used - (long)(len / PAGE), cma_used(self->d.region));
}

struct reader {
	int disk;
	unsigned char *buf;
	size_t len;
	volatile int stop;
	long ok, faults;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;

	while (!r->stop) {
		ssize_t n = pread(r->disk, r->buf, r->len, 0);

		if (n == (ssize_t)r->len)
			r->ok++;
		else
			r->faults++;
	}
	return NULL;
}

/*
 * A bounded race: O_DIRECT reads into a page-backed mapping while the main
 * thread unmaps and frees the buffer, 200 times. No page is freed under the
 * I/O (a freed-while-pinned page would be a KASAN or cma_release() warning),
 * and every byte goes back to the region.
 */
TEST_F_TIMEOUT(dio, free_during_direct_io_race, 120)
{
	const size_t len = 256 * 1024;
	long held0 = debugfs_value("held_total");
	struct reader r = { .disk = self->disk, .len = len };
	struct cmabuf_alloc a;
	pthread_t t;
	int i;

	NEED_DISK();
	for (i = 0; i < 200; i++) {
		r.buf = alloc_map(_metadata, self->d.fd, len, variant->mode | CMABUF_ALLOC_PAGE_MAP,
				  &a);
		ASSERT_NE(NULL, r.buf);
		r.stop = 0;
		ASSERT_EQ(0, pthread_create(&t, NULL, read_loop, &r));
		usleep(i % 10 * 100);
		ASSERT_EQ(0, munmap(r.buf, len));
		ASSERT_EQ(0, free_buf(self->d.fd, a.handle));
		r.stop = 1;
		pthread_join(t, NULL);
	}
	TH_LOG("%ld reads completed, %ld hit the unmapped range; %ld buffers waited for their "
	       "pages", r.ok, r.faults, debugfs_value("held_total") - held0);
	EXPECT_TRUE(held_drained(5));
}

#define NFRAMES 4

/*
 * Frames captured by vivid into page-backed cmabuf dma-bufs go to the raw disk
 * with O_DIRECT (even frames) and io_uring (odd ones), are read back with
 * O_DIRECT into other cmabuf buffers and compared byte for byte.
 */
TEST_F_TIMEOUT(dio, vivid_frames_to_disk, 120)
{
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct cmabuf_alloc a[NFRAMES], back;
	unsigned char *view[NFRAMES], *rd;
	int bufs[NFRAMES], vid, i;
	struct io_uring ring;
	struct v4l2_buffer vb;
	size_t len;

	NEED_DISK();
	vid = open_vivid();
	if (vid < 0)
		SKIP(return, "no vivid video capture node (CONFIG_VIDEO_VIVID, modprobe vivid)");
	fmt.fmt.pix.width = 640;
	fmt.fmt.pix.height = 480;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
	fmt.fmt.pix.field = V4L2_FIELD_NONE;
	ASSERT_EQ(0, xioctl(vid, VIDIOC_S_FMT, &fmt));
	ASSERT_EQ(0, set_ctrl(vid, "Test Pattern", "75% Colorbar"));
	len = (fmt.fmt.pix.sizeimage + PAGE - 1) & ~(size_t)(PAGE - 1);
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	ASSERT_EQ(0, reqbufs(vid, NFRAMES));
	for (i = 0; i < NFRAMES; i++) {
		ASSERT_EQ(0, alloc_buf(self->d.fd, len, variant->mode | CMABUF_ALLOC_PAGE_MAP,
				       &a[i]));
		bufs[i] = export_buf(self->d.fd, a[i].handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, bufs[i]);
		view[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bufs[i], 0);
		ASSERT_NE(MAP_FAILED, view[i]);
		ASSERT_EQ(0, qbuf(vid, i, bufs[i], len));
	}
	ASSERT_EQ(0, stream(vid, 1));
	for (i = 0; i < NFRAMES; i++) {
		ASSERT_EQ(0, dqbuf(vid, &vb));
		EXPECT_EQ(fmt.fmt.pix.sizeimage, vb.bytesused);
	}
	ASSERT_EQ(0, stream(vid, 0));
	for (i = 0; i < NFRAMES; i++) {
		EXPECT_EQ(0, dmabuf_sync(bufs[i], DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		EXPECT_NE(0, view[i][0]) TH_LOG("frame %d: not written by vivid", i);
		if (i % 2) {
			EXPECT_EQ((int)len, uring_rw(&ring, IORING_OP_WRITE, self->disk, view[i],
						     len, (__u64)i * len));
		} else {
			EXPECT_EQ((ssize_t)len, pwrite(self->disk, view[i], len, (off_t)i * len));
		}
	}
	rd = alloc_map(_metadata, self->d.fd, len, variant->mode | CMABUF_ALLOC_PAGE_MAP, &back);
	ASSERT_NE(NULL, rd);
	for (i = 0; i < NFRAMES; i++) {
		ASSERT_EQ((ssize_t)len, pread(self->disk, rd, len, (off_t)i * len));
		EXPECT_EQ(0, memcmp(rd, view[i], fmt.fmt.pix.sizeimage)) TH_LOG("frame %d", i);
		EXPECT_EQ(0, dmabuf_sync(bufs[i], DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	}
	TH_LOG("%d frames of %u bytes (%ux%u YUYV) to disk and back", NFRAMES,
	       fmt.fmt.pix.sizeimage, fmt.fmt.pix.width, fmt.fmt.pix.height);
	ASSERT_EQ(0, reqbufs(vid, 0));
	io_uring_queue_exit(&ring);
	close(vid);
	munmap(rd, len);
	EXPECT_EQ(0, free_buf(self->d.fd, back.handle));
	for (i = 0; i < NFRAMES; i++) {
		munmap(view[i], len);
		close(bufs[i]);
		EXPECT_EQ(0, free_buf(self->d.fd, a[i].handle));
	}
}

TEST_HARNESS_MAIN
