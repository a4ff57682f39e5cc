// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: buffers exported as dma-bufs, and imported by a real V4L2 driver.
 *
 * The export ioctl and the dma-heap compatible allocation: identity, errors,
 * lifetimes (a dma-buf outlives its handle and file, pins the module), mmap
 * of the dma-buf in each cache mode, DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME.
 * Then vivid (loaded with allocators=1: videobuf2-dma-contig, which refuses
 * non-contiguous imports) captures a solid test pattern into cmabuf buffers
 * queued as V4L2_MEMORY_DMABUF, and the pixels are checked in the cmabuf
 * mapping; a buffer smaller than sizeimage is refused at queue time; two
 * vivid instances stream into the same dma-bufs across an unbind, which
 * waits for nobody; 20 unbind/bind cycles with buffers of every kind alive.
 *
 * Every test ends with the region's pages back where they started. Skips
 * when the device (or, for the V4L2 tests, vivid) is missing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/videodev2.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"
#include "importer/cmabuf_test_importer.h"

#define KiB 1024ULL
#define PAGE 4096ULL

static ino_t inode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

FIXTURE(exp) {
	struct cmabuf_dev d;
};

FIXTURE_SETUP(exp)
{
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
}

FIXTURE_TEARDOWN(exp)
{
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

TEST_F(exp, export_identity_and_errors)
{
	struct cmabuf_stats s0, s1;
	struct cmabuf_export e;
	struct cmabuf_alloc a;
	int d1, d2;

	ASSERT_EQ(0, get_stats(self->d.fd, &s0));
	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, 0, &a));
	d1 = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d1);
	EXPECT_EQ(FD_CLOEXEC, fcntl(d1, F_GETFD) & FD_CLOEXEC);
	d2 = export_buf(self->d.fd, a.handle, O_RDWR);
	ASSERT_LE(0, d2);
	EXPECT_NE(d1, d2);
	EXPECT_EQ(0, fcntl(d2, F_GETFD) & FD_CLOEXEC);
	/* Two descriptors of one dma-buf: importers rely on that identity. */
	EXPECT_EQ(inode_of(d1), inode_of(d2));
	EXPECT_EQ(64 * KiB, lseek(d1, 0, SEEK_END));
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.exports + 1, s1.exports);
	EXPECT_EQ(s0.live_dmabufs + 1, s1.live_dmabufs);

	EXPECT_EQ(-EINVAL, export_buf(self->d.fd, a.handle, O_WRONLY));
	EXPECT_EQ(-EINVAL, export_buf(self->d.fd, a.handle, O_RDWR | O_NONBLOCK));
	EXPECT_EQ(-EINVAL, export_buf(self->d.fd, a.handle, 0x80000000u | O_RDWR));
	/* The dma-buf's file is read-write: a read-only export of it would be a lie. */
	EXPECT_EQ(-EINVAL, export_buf(self->d.fd, a.handle, O_RDONLY));
	e = (struct cmabuf_export){ .handle = a.handle, .flags = O_RDWR, .reserved = 1 };
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, CMABUF_IOCTL_EXPORT, &e));
	e = (struct cmabuf_export){ .handle = a.handle, .flags = O_RDWR, .fd = 3 };
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, CMABUF_IOCTL_EXPORT, &e));
	EXPECT_EQ(-ENOENT, export_buf(self->d.fd, a.handle + 1, O_RDWR));
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, CMABUF_IOCTL_EXPORT, (void *)16));

	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	EXPECT_EQ(-ENOENT, export_buf(self->d.fd, a.handle, O_RDWR));
	close(d1);
	close(d2);
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.live_dmabufs, s1.live_dmabufs);
}

/*
 * 20 unbind/bind cycles with buffers of every kind alive across them. Each
 * cycle, on the node as it is bound then, makes a buffer in each cache mode
 * held by its handle and a mapping, one held by its dma-buf only (mapped
 * through the dma-buf, and for DMA by the test importer module), and one from
 * DMA_HEAP_IOCTL_ALLOC (mapped likewise);
 * each generation lives across three unbinds. Every unbind returns within a
 * second; every buffer keeps its bytes across the unbinds it lives through;
 * a rebound node's statistics count the older buffers (largest_free); the
 * region is back at its baseline when the last one goes (teardown).
 */
#define CYCLES 20
#define GEN_LIVE 3
#define GEN_BUFS 5

struct generation {
	int fd, dmabuf[2], imp;
	unsigned char *p[GEN_BUFS];
	size_t len[GEN_BUFS];
};


/* A file of the test importer (loading it from the test directory if need be), or -1. */
static int open_importer(void)
{
	if (access("/dev/cmabuf_test_importer", F_OK) &&
	    system("insmod ./cmabuf_test_importer.ko 2>/dev/null"))
		return -1;
	return open("/dev/cmabuf_test_importer", O_RDWR | O_CLOEXEC);
}

static void gen_release(struct generation *g)
{
	int i;

	if (g->imp >= 0)
		close(g->imp);	/* the importer unmaps and lets go */
	for (i = 0; i < GEN_BUFS; i++)
		munmap(g->p[i], g->len[i]);
	close(g->dmabuf[0]);
	close(g->dmabuf[1]);
	close(g->fd);	/* frees the handles of the first three */
}

static int gen_intact(struct generation *g, int c)
{
	size_t k;
	int i;

	for (i = 0; i < GEN_BUFS; i++)
		for (k = 0; k < g->len[i]; k += 512)
			if (g->p[i][k] != (unsigned char)(c * GEN_BUFS + i + 1))
				return 0;
	return 1;
}

TEST_F_TIMEOUT(exp, unbind_bind_cycles_keep_buffers, 300)
{
	struct generation g[CYCLES];
	struct cmabuf_stats st;
	struct cmabuf_alloc a;
	double t0, took, worst = 0;
	int c, i, old;

	if (geteuid() != 0)
		SKIP(return, "unbind needs root");
	for (c = 0; c < CYCLES; c++) {
		size_t len = (1 + c % 4) * 16 * KiB;

		g[c].fd = open(dev_path(), O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, g[c].fd) TH_LOG("cycle %d: %s", c, strerror(errno));
		for (i = 0; i < 3; i++) {
			ASSERT_EQ(0, alloc_buf(g[c].fd, len, i, &a)) TH_LOG("cycle %d", c);
			g[c].p[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, g[c].fd,
					 a.mmap_offset);
			ASSERT_NE(MAP_FAILED, g[c].p[i]);
		}
		ASSERT_EQ(0, alloc_buf(g[c].fd, len, CMABUF_MODE_CACHED, &a));
		g[c].dmabuf[0] = export_buf(g[c].fd, a.handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, g[c].dmabuf[0]);
		ASSERT_EQ(0, free_buf(g[c].fd, a.handle));
		g[c].dmabuf[1] = heap_alloc(g[c].fd, len, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, g[c].dmabuf[1]);
		for (i = 3; i < GEN_BUFS; i++) {
			g[c].p[i] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
					 g[c].dmabuf[i - 3], 0);
			ASSERT_NE(MAP_FAILED, g[c].p[i]);
		}
		for (i = 0; i < GEN_BUFS; i++) {
			g[c].len[i] = len;
			memset(g[c].p[i], c * GEN_BUFS + i + 1, len);
		}
		/*
		 * An importer maps the exported buffer for DMA and keeps it mapped across the
		 * unbinds, writing (as a device) the byte it already holds.
		 */
		g[c].imp = open_importer();
		if (g[c].imp >= 0) {
			struct cmabuf_test_import in = { .fd = g[c].dmabuf[0],
							 .byte = c * GEN_BUFS + 3 + 1 };

			ASSERT_EQ(0, xioctl(g[c].imp, CMABUF_TEST_IMPORT, &in)) TH_LOG("cycle %d", c);
		} else if (c == 0) {
			TH_LOG("no cmabuf_test_importer.ko: no importer mappings in the cycles");
		}
		/* The node counts the older generations' buffers as taken. */
		ASSERT_EQ(0, get_stats(g[c].fd, &st));
		if (c > 0)
			EXPECT_GT(self->d.region_size, st.largest_free) TH_LOG("cycle %d", c);
		/* The generation that has lived across GEN_LIVE unbinds goes. */
		old = c - GEN_LIVE;
		if (old >= 0) {
			EXPECT_TRUE(gen_intact(&g[old], old)) TH_LOG("generation %d", old);
			gen_release(&g[old]);
		}
		t0 = now_s();
		ASSERT_EQ(0, set_bound(self->d.platform, 0)) TH_LOG("cycle %d", c);
		took = now_s() - t0;
		worst = took > worst ? took : worst;
		EXPECT_GT(1.0, took) TH_LOG("cycle %d: unbind took %.3f s", c, took);
		for (old = c - GEN_LIVE + 1; old <= c; old++)
			if (old >= 0)
				EXPECT_TRUE(gen_intact(&g[old], old))
					TH_LOG("cycle %d: generation %d after unbind", c, old);
		ASSERT_EQ(0, set_bound(self->d.platform, 1)) TH_LOG("cycle %d", c);
	}
	for (old = CYCLES - GEN_LIVE; old < CYCLES; old++) {
		EXPECT_TRUE(gen_intact(&g[old], old)) TH_LOG("generation %d", old);
		gen_release(&g[old]);
	}
	TH_LOG("%d unbind/bind cycles with %d generations of %d buffers alive: slowest unbind %.3f s",
	       CYCLES, GEN_LIVE, GEN_BUFS, worst);
	/* The fixture's file belongs to the first binding: reopen for the teardown's checks. */
	close(self->d.fd);
	self->d.fd = -1;
}

/* The dma-buf holds the buffer after its handle and its cmabuf file are gone. */
TEST_F(exp, dmabuf_outlives_handle_and_file)
{
	struct cmabuf_alloc a;
	unsigned char *p;
	int d;

	ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, CMABUF_MODE_CACHED, &a));
	d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	close(self->d.fd);
	self->d.fd = -1;
	if (self->d.used0 >= 0)
		EXPECT_EQ(self->d.used0 + 16, cma_used(self->d.region));
	p = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
	memset(p, 0x5a, 64 * KiB);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
	EXPECT_EQ(0x5a, p[64 * KiB - 1]);
	munmap(p, 64 * KiB);
	close(d);
}

/* The dma-buf's mmap shows the very memory of the handle, in each mode; SYNC round trips. */
TEST_F(exp, dmabuf_mmap_each_mode)
{
	__u32 modes[] = { CMABUF_MODE_COHERENT, CMABUF_MODE_WRITECOMBINE, CMABUF_MODE_CACHED };
	unsigned int m;

	for (m = 0; m < 3; m++) {
		struct cmabuf_info info;
		struct cmabuf_alloc a;
		unsigned char *p, *q;
		int d;

		ASSERT_EQ(0, alloc_buf(self->d.fd, 32 * KiB, modes[m], &a));
		d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, d);
		p = mmap(NULL, 32 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
		ASSERT_NE(MAP_FAILED, p);
		q = mmap(NULL, 32 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, self->d.fd,
			 a.mmap_offset);
		ASSERT_NE(MAP_FAILED, q);
		/* INFO's map_count counts the dma-buf's mapping and the device file's. */
		info = (struct cmabuf_info){ .handle = a.handle };
		ASSERT_EQ(0, xioctl(self->d.fd, CMABUF_IOCTL_INFO, &info));
		EXPECT_EQ(2, info.map_count);
		EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
		memset(p, 0x10 + m, 32 * KiB);
		EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));
		EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		EXPECT_EQ(0x10 + m, q[0]);
		EXPECT_EQ(0x10 + m, q[32 * KiB - 1]);
		EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
		/* Part of the buffer at an offset; beyond it, refused. */
		munmap(p, 32 * KiB);
		p = mmap(NULL, 4 * KiB, PROT_READ, MAP_SHARED, d, 28 * KiB);
		ASSERT_NE(MAP_FAILED, p);
		EXPECT_EQ(0x10 + m, p[0]);
		munmap(p, 4 * KiB);
		EXPECT_EQ(MAP_FAILED, mmap(NULL, 8 * KiB, PROT_READ, MAP_SHARED, d, 28 * KiB));
		EXPECT_EQ(MAP_FAILED, mmap(NULL, 4 * KiB, PROT_READ, MAP_PRIVATE, d, 0));
		EXPECT_EQ(-EINVAL, dmabuf_sync(d, 0x100));
		munmap(q, 32 * KiB);
		close(d);
		EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	}
}

/* A dma-buf grants no access its file lacks: EXPORT and DMA_HEAP_IOCTL_ALLOC alike. */
TEST_F(exp, readonly_file_export)
{
	struct cmabuf_alloc a;
	void *p;
	int ro, d;

	ro = open(dev_path(), O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	ASSERT_EQ(0, alloc_buf(ro, 16 * KiB, 0, &a));
	EXPECT_EQ(-EACCES, export_buf(ro, a.handle, O_RDWR));
	d = export_buf(ro, a.handle, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, d);
	EXPECT_EQ(O_RDONLY, fcntl(d, F_GETFL) & O_ACCMODE);
	p = mmap(NULL, 16 * KiB, PROT_READ, MAP_SHARED, d, 0);
	EXPECT_NE(MAP_FAILED, p);
	if (p != MAP_FAILED)
		munmap(p, 16 * KiB);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 16 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0));
	EXPECT_EQ(EACCES, errno);
	close(d);
	/* The same rule for DMA_HEAP_IOCTL_ALLOC (dma-heap's fd_flags take O_WRONLY too). */
	EXPECT_EQ(-EACCES, heap_alloc(ro, 16 * KiB, O_RDWR));
	EXPECT_EQ(-EACCES, heap_alloc(ro, 16 * KiB, O_WRONLY));
	d = heap_alloc(ro, 16 * KiB, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, d);
	EXPECT_EQ(O_RDONLY, fcntl(d, F_GETFL) & O_ACCMODE);
	close(d);
	EXPECT_EQ(0, free_buf(ro, a.handle));
	close(ro);
	/* A write-only file cannot hand out read access, by either call. */
	ro = open(dev_path(), O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	ASSERT_EQ(0, alloc_buf(ro, 16 * KiB, 0, &a));
	EXPECT_EQ(-EACCES, export_buf(ro, a.handle, O_RDONLY));
	EXPECT_EQ(-EACCES, export_buf(ro, a.handle, O_RDWR));
	EXPECT_EQ(-EACCES, heap_alloc(ro, 16 * KiB, O_RDWR));
	d = heap_alloc(ro, 16 * KiB, O_WRONLY);
	ASSERT_LE(0, d);
	EXPECT_EQ(O_WRONLY, fcntl(d, F_GETFL) & O_ACCMODE);
	close(d);
	EXPECT_EQ(0, free_buf(ro, a.handle));
	close(ro);
}

/* DMA_BUF_SET_NAME (libcamera requires it) works, and debugfs shows the name. */
TEST_F(exp, set_name_shows_in_debugfs)
{
	char path[128], text[8192];
	struct cmabuf_alloc a;
	ssize_t n;
	int d, f;

	ASSERT_EQ(0, alloc_buf(self->d.fd, 16 * KiB, 0, &a));
	d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, ioctl(d, DMA_BUF_SET_NAME, "cam0-frame")) TH_LOG("%s", strerror(errno));
	snprintf(path, sizeof(path), "/sys/kernel/debug/cmabuf/%s", strrchr(dev_path(), '/') + 1);
	f = open(path, O_RDONLY);
	if (f < 0) {
		close(d);
		free_buf(self->d.fd, a.handle);
		SKIP(return, "no %s (debugfs)", path);
	}
	n = read(f, text, sizeof(text) - 1);
	close(f);
	ASSERT_LT(0, n);
	text[n] = 0;
	EXPECT_NE(NULL, strstr(text, "dma-buf cam0-frame")) TH_LOG("%s", text);
	/* A name cannot forge lines or terminal controls: such bytes come out escaped. */
	ASSERT_EQ(0, ioctl(d, DMA_BUF_SET_NAME, "cam\n0 \x1b[1m\\")) TH_LOG("%s", strerror(errno));
	f = open(path, O_RDONLY);
	ASSERT_LE(0, f);
	n = read(f, text, sizeof(text) - 1);
	close(f);
	ASSERT_LT(0, n);
	text[n] = 0;
	EXPECT_NE(NULL, strstr(text, "dma-buf cam\\x0a0 \\x1b[1m\\x5c\n")) TH_LOG("%s", text);
	close(d);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
}

/* DMA_HEAP_IOCTL_ALLOC on /dev/cmabufN: what dma-heap users call. */
TEST_F(exp, dma_heap_compatible_alloc)
{
	struct dma_heap_allocation_data h;
	struct cmabuf_stats s0, s1;
	unsigned char *p;
	int d;

	ASSERT_EQ(0, get_stats(self->d.fd, &s0));
	d = heap_alloc(self->d.fd, 100 * KiB, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d) TH_LOG("%s", strerror(-d));
	EXPECT_EQ(FD_CLOEXEC, fcntl(d, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(100 * KiB, lseek(d, 0, SEEK_END));
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.allocs + 1, s1.allocs);
	EXPECT_EQ(s0.exports + 1, s1.exports);
	EXPECT_EQ(s0.live_bytes + 100 * KiB, s1.live_bytes);
	p = mmap(NULL, 100 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, p[0]);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
	memset(p, 0xa5, 100 * KiB);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
	munmap(p, 100 * KiB);
	close(d);
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.live_bytes, s1.live_bytes);

	h = (struct dma_heap_allocation_data){ .len = PAGE, .fd_flags = O_RDWR, .heap_flags = 1 };
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, DMA_HEAP_IOCTL_ALLOC, &h));
	h = (struct dma_heap_allocation_data){ .len = PAGE, .fd_flags = O_RDWR, .fd = 5 };
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, DMA_HEAP_IOCTL_ALLOC, &h));
	EXPECT_EQ(-EINVAL, heap_alloc(self->d.fd, 0, O_RDWR));
	EXPECT_EQ(-EINVAL, heap_alloc(self->d.fd, PAGE, O_RDWR | O_NONBLOCK));
	EXPECT_EQ(-EINVAL, heap_alloc(self->d.fd, 1ULL << 62, O_RDWR));
	EXPECT_EQ(-EFAULT, xioctl(self->d.fd, DMA_HEAP_IOCTL_ALLOC, (void *)16));
}

/* The udev/mdev rule's link: dma-heap users find the device under /dev/dma_heap/. */
TEST_F(exp, dma_heap_link)
{
	char link[128];
	int fd, d;

	snprintf(link, sizeof(link), "/dev/dma_heap/%s", strrchr(dev_path(), '/') + 1);
	fd = open(link, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		SKIP(return, "no %s: udev/mdev rule not installed", link);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", link, strerror(errno));
	d = heap_alloc(fd, 64 * KiB, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, d) TH_LOG("DMA_HEAP_IOCTL_ALLOC through %s: %s", link, strerror(-d));
	if (d >= 0)
		close(d);
	close(fd);
}

/* A dma-buf pins the module: rmmod is refused until the last one goes. */
TEST_F(exp, dmabuf_pins_module)
{
	struct cmabuf_alloc a;
	int d;

	if (geteuid() != 0)
		SKIP(return, "rmmod needs root");
	ASSERT_EQ(0, alloc_buf(self->d.fd, 16 * KiB, 0, &a));
	d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	close(self->d.fd);
	self->d.fd = -1;
	EXPECT_NE(0, system("rmmod cmabuf 2>/dev/null"));
	close(d);
	EXPECT_EQ(0, system("rmmod cmabuf"));
	ASSERT_EQ(0, load_module(""));
}

/*
 * DMA_HEAP_IOCTL_ALLOC counts against max_buffers_per_file like ALLOC: a
 * file's buffers are its handles and the buffers it allocated whose memory
 * is still taken (here: dma-heap buffers, held only by their descriptors).
 */
TEST_F(exp, heap_alloc_counts_buffers)
{
	struct cmabuf_alloc a;
	int fd, d[4], other;

	if (geteuid() != 0)
		SKIP(return, "rmmod needs root");
	close(self->d.fd);
	self->d.fd = -1;
	ASSERT_EQ(0, system("rmmod cmabuf"));
	ASSERT_EQ(0, load_module("max_buffers_per_file=4"));
	fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	for (int i = 0; i < 3; i++) {
		d[i] = heap_alloc(fd, 64 * KiB, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, d[i]) TH_LOG("dma-heap buffer %d", i);
	}
	ASSERT_EQ(0, alloc_buf(fd, 64 * KiB, 0, &a));
	EXPECT_EQ(-EMFILE, heap_alloc(fd, 64 * KiB, O_RDWR | O_CLOEXEC));
	EXPECT_EQ(-EMFILE, alloc_buf(fd, 64 * KiB, 0, &a));
	/* Another open file has an allowance of its own (per-file limits are per open file). */
	d[3] = open(dev_path(), O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d[3]);
	other = heap_alloc(d[3], 64 * KiB, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, other);
	close(other);
	close(d[3]);
	/* A dma-heap buffer whose descriptor closes is gone: room for one more. */
	close(d[0]);
	d[0] = heap_alloc(fd, 64 * KiB, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, d[0]);
	for (int i = 0; i < 3; i++)
		if (d[i] >= 0)
			close(d[i]);
	close(fd);
	ASSERT_EQ(0, system("rmmod cmabuf"));
	ASSERT_EQ(0, load_module(""));
}

/* Sends `fd` over the Unix socket `sock` (SCM_RIGHTS): 0 or -errno. */
static int send_fd(int sock, int fd)
{
	char byte = 'f', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -errno;
}

/* A descriptor received over `sock` (SCM_RIGHTS), or -errno. */
static int recv_fd(int sock)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
		return -errno;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * A dma-buf passed to another process over a Unix socket (SCM_RIGHTS), the
 * way camera pipelines pass buffers (GStreamer, PipeWire, libcamera's IPA
 * proxies): the other process maps it, reads what the exporter wrote, writes
 * back; each side syncs around its access. The buffer lives on with only the
 * receiver's descriptor after the sender freed and closed everything.
 */
TEST_F(exp, dmabuf_over_unix_socket)
{
	const size_t len = 256 * KiB;
	struct cmabuf_alloc a;
	unsigned char *p;
	int sv[2], d, status;
	pid_t pid;
	char ack;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		SKIP(return, "no Unix sockets (%s): CONFIG_UNIX is off", strerror(errno));
	ASSERT_EQ(0, alloc_buf(self->d.fd, len, CMABUF_MODE_CACHED, &a));
	d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 13 + 7);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int r = recv_fd(sv[1]), bad = 0;
		unsigned char *q;

		close(self->d.fd);
		if (r < 0)
			_exit(10);
		q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r, 0);
		if (q == MAP_FAILED)
			_exit(11);
		dmabuf_sync(r, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW);
		for (size_t i = 0; i < len; i++)
			bad |= q[i] != (unsigned char)(i * 13 + 7);
		memset(q, 0x3c, len);
		dmabuf_sync(r, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW);
		/* The sender lets go of everything; this descriptor and mapping keep the buffer. */
		if (write(sv[1], bad ? "b" : "k", 1) != 1 || read(sv[1], &ack, 1) != 1)
			_exit(12);
		dmabuf_sync(r, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
		bad |= q[0] != 0x3c || q[len - 1] != 0x3c;
		_exit(bad ? 13 : 0);
	}
	ASSERT_EQ(0, send_fd(sv[0], d));
	ASSERT_EQ(1, read(sv[0], &ack, 1));
	EXPECT_EQ('k', ack) TH_LOG("the receiver saw other bytes than the sender wrote");
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	EXPECT_EQ(0x3c, p[0]);
	EXPECT_EQ(0x3c, p[len - 1]);
	EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	munmap(p, len);
	close(d);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	ASSERT_EQ(1, write(sv[0], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("receiver: exit %d", WEXITSTATUS(status));
	close(sv[0]);
	close(sv[1]);
}

/* ---- vivid imports cmabuf buffers ---- */

#define NBUF 4
#define WIDTH 320
#define HEIGHT 240

FIXTURE(cap) {
	struct cmabuf_dev d;
	int vid;	/* vivid's capture node */
	struct v4l2_format fmt;
};

FIXTURE_SETUP(cap)
{
	self->vid = -1;
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
	self->vid = open_vivid();
	if (self->vid < 0)
		SKIP(return, "no vivid video capture node (CONFIG_VIDEO_VIVID, modprobe vivid)");
	self->fmt = (struct v4l2_format){ .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	self->fmt.fmt.pix.width = WIDTH;
	self->fmt.fmt.pix.height = HEIGHT;
	self->fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
	self->fmt.fmt.pix.field = V4L2_FIELD_NONE;
	ASSERT_EQ(0, xioctl(self->vid, VIDIOC_S_FMT, &self->fmt));
	ASSERT_EQ(V4L2_PIX_FMT_YUYV, self->fmt.fmt.pix.pixelformat);
	ASSERT_EQ(0, set_ctrl(self->vid, "OSD Text Mode", "None"));
}

FIXTURE_TEARDOWN(cap)
{
	if (self->vid >= 0)
		close(self->vid);
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

/*
 * Macropixels (YUYV: Y0 U Y1 V) that differ from the frame's first one, and
 * that first one; a solid frame has none.
 */
static size_t off_colour(const unsigned char *p, size_t bytes, unsigned char first[4])
{
	size_t i, bad = 0;

	memcpy(first, p, 4);
	for (i = 4; i + 4 <= bytes; i += 4)
		bad += memcmp(p + i, first, 4) != 0;
	return bad;
}

/*
 * Streams vivid into `bufs` (dma-buf descriptors, `views` their CPU mappings)
 * with the test pattern `pattern`, dequeues `frames` frames and checks each in
 * its view: solid, not the zero-filled memory, with the chroma of the pattern.
 */
static void capture_and_check(struct __test_metadata *_metadata, int vid, const int *bufs,
			      unsigned char *const *views, __u32 length, __u32 sizeimage,
			      const char *pattern, int frames, int u_high)
{
	struct v4l2_buffer b;
	unsigned char first[4];
	int i;

	ASSERT_EQ(0, set_ctrl(vid, "Test Pattern", pattern));
	ASSERT_EQ(0, reqbufs(vid, NBUF));
	for (i = 0; i < NBUF; i++)
		ASSERT_EQ(0, qbuf(vid, i, bufs[i], length));
	ASSERT_EQ(0, stream(vid, 1));
	for (i = 0; i < frames; i++) {
		size_t bad;

		ASSERT_EQ(0, dqbuf(vid, &b)) TH_LOG("frame %d", i);
		ASSERT_LT(b.index, NBUF);
		EXPECT_EQ(sizeimage, b.bytesused);
		EXPECT_EQ(0, dmabuf_sync(bufs[b.index], DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		bad = off_colour(views[b.index], sizeimage, first);
		EXPECT_EQ(0, dmabuf_sync(bufs[b.index], DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
		EXPECT_EQ(0, bad) TH_LOG("frame %d: %zu macropixels differ from %02x %02x %02x %02x",
					 i, bad, first[0], first[1], first[2], first[3]);
		/* Not the zeroed memory: vivid wrote it; red has high V (Cr), blue high U (Cb). */
		EXPECT_NE(0, first[0]);
		if (u_high) {
			EXPECT_LT(200, first[1]) TH_LOG("U %u", first[1]);
		} else {
			EXPECT_LT(200, first[3]) TH_LOG("V %u", first[3]);
		}
		if (i + NBUF < frames)
			ASSERT_EQ(0, qbuf(vid, b.index, bufs[b.index], length));
		if (i == 0)
			TH_LOG("%s: frame in buffer %u, %u bytes, YUYV %02x %02x %02x %02x", pattern,
			       b.index, b.bytesused, first[0], first[1], first[2], first[3]);
	}
	ASSERT_EQ(0, stream(vid, 0));
	ASSERT_EQ(0, reqbufs(vid, 0));
}

/* cmabuf buffers exported and queued as V4L2_MEMORY_DMABUF; pixels checked in the cmabuf mapping. */
TEST_F_TIMEOUT(cap, capture_into_exported_buffers, 120)
{
	__u32 size = self->fmt.fmt.pix.sizeimage;
	struct cmabuf_alloc a[NBUF];
	unsigned char *views[NBUF];
	int bufs[NBUF], i;

	for (i = 0; i < NBUF; i++) {
		ASSERT_EQ(0, alloc_buf(self->d.fd, size, i % 2 ? CMABUF_MODE_CACHED : 0, &a[i]));
		bufs[i] = export_buf(self->d.fd, a[i].handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, bufs[i]);
		views[i] = mmap(NULL, a[i].alloc_size, PROT_READ, MAP_SHARED, self->d.fd,
				a[i].mmap_offset);
		ASSERT_NE(MAP_FAILED, views[i]);
	}
	capture_and_check(_metadata, self->vid, bufs, views, a[0].alloc_size, size,
			  "100% Red", 8, 0);
	capture_and_check(_metadata, self->vid, bufs, views, a[0].alloc_size, size,
			  "100% Blue", 4, 1);
	for (i = 0; i < NBUF; i++) {
		munmap(views[i], a[i].alloc_size);
		close(bufs[i]);
		EXPECT_EQ(0, free_buf(self->d.fd, a[i].handle));
	}
}

/*
 * Coherent and write-combined buffers get their kernel mapping (an uncached or
 * write-combined vmap, "dma-coherent" in /proc/vmallocinfo) at the first
 * dma_buf_vmap(), not at allocation: none appears at ALLOC; vivid builds one per
 * buffer when it first writes a frame (vb2_plane_vaddr); streaming again into
 * the same buffers (vmapped, unmapped, vmapped again) reuses them; the memory's
 * release takes them down. On a DMA-coherent device the kernel's linear map is
 * the coherent mapping and no vmap is made. Frames are checked in the users'
 * mappings, of the mode's memory type. 2 MiB buffers: above the pool's sizes.
 */
TEST_F_TIMEOUT(cap, kernel_mapping_at_first_vmap, 120)
{
	static const struct {
		__u32 mode;
		const char *name;
	} modes[] = {
		{ CMABUF_MODE_COHERENT, "coherent" },
		{ CMABUF_MODE_WRITECOMBINE, "write-combined" },
	};
	__u32 size = self->fmt.fmt.pix.sizeimage, len = 2 << 20;
	struct cmabuf_dev_info di;
	struct cmabuf_alloc a[NBUF];
	unsigned char *views[NBUF];
	int bufs[NBUF], i, m, coherent, base, ours, per;

	if (vmalloc_count("") <= 0)
		SKIP(return, "/proc/vmallocinfo unreadable: %s", strerror(errno));
	ASSERT_EQ(0, dev_info(self->d.fd, &di, NULL, 0));
	coherent = !!(di.out_flags & CMABUF_OUT_DMA_COHERENT);
	per = coherent ? 0 : 1;
	for (m = 0; m < 2; m++) {
		/* Earlier tests' small buffers leave a pool chunk (and its mapping) for a second. */
		ASSERT_LE(0, pool_drained(self->d.fd, 3));
		base = vmalloc_count("dma-coherent");
		ours = vmalloc_count("cmabuf_dma_vmap");
		for (i = 0; i < NBUF; i++) {
			ASSERT_EQ(0, alloc_buf(self->d.fd, len, modes[m].mode, &a[i]));
			bufs[i] = export_buf(self->d.fd, a[i].handle, O_RDWR | O_CLOEXEC);
			ASSERT_LE(0, bufs[i]);
			views[i] = mmap(NULL, len, PROT_READ, MAP_SHARED, self->d.fd,
					a[i].mmap_offset);
			ASSERT_NE(MAP_FAILED, views[i]);
		}
		EXPECT_EQ(base, vmalloc_count("dma-coherent"))
			TH_LOG("%s: ALLOC built kernel mappings", modes[m].name);
		capture_and_check(_metadata, self->vid, bufs, views, len, size, "100% Red", 6, 0);
		EXPECT_EQ(ours + per * NBUF, vmalloc_count("cmabuf_dma_vmap"))
			TH_LOG("%s: one kernel mapping per buffer vivid wrote", modes[m].name);
		capture_and_check(_metadata, self->vid, bufs, views, len, size, "100% Blue", 4, 1);
		EXPECT_EQ(ours + per * NBUF, vmalloc_count("cmabuf_dma_vmap"))
			TH_LOG("%s: streaming again made new mappings", modes[m].name);
		for (i = 0; i < NBUF; i++) {
			munmap(views[i], len);
			close(bufs[i]);
			EXPECT_EQ(0, free_buf(self->d.fd, a[i].handle));
		}
		EXPECT_EQ(ours, vmalloc_count("cmabuf_dma_vmap"))
			TH_LOG("%s: kernel mappings left after the memory went", modes[m].name);
		EXPECT_EQ(base, vmalloc_count("dma-coherent"));
		TH_LOG("%s: %d kernel mappings, built at the first vmap, gone with the memory",
		       modes[m].name, per * NBUF);
	}
}

/* The same through DMA_HEAP_IOCTL_ALLOC, the way dma-heap users (libcamera) allocate. */
TEST_F_TIMEOUT(cap, capture_into_heap_buffers, 120)
{
	__u32 size = self->fmt.fmt.pix.sizeimage;
	__u32 len = (size + PAGE - 1) & ~(PAGE - 1);
	unsigned char *views[NBUF];
	int bufs[NBUF], i;

	for (i = 0; i < NBUF; i++) {
		bufs[i] = heap_alloc(self->d.fd, size, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, bufs[i]);
		ASSERT_EQ(0, ioctl(bufs[i], DMA_BUF_SET_NAME, "vivid-frame"));
		views[i] = mmap(NULL, len, PROT_READ, MAP_SHARED, bufs[i], 0);
		ASSERT_NE(MAP_FAILED, views[i]);
	}
	capture_and_check(_metadata, self->vid, bufs, views, len, size, "100% Red", 6, 0);
	for (i = 0; i < NBUF; i++) {
		munmap(views[i], len);
		close(bufs[i]);
	}
}

/* videobuf2 refuses, at queue time, a buffer smaller than the format's sizeimage. */
TEST_F(cap, small_buffer_refused)
{
	__u32 size = self->fmt.fmt.pix.sizeimage;
	struct cmabuf_alloc a;
	int d;

	ASSERT_EQ(0, alloc_buf(self->d.fd, size / 2, 0, &a));
	d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	ASSERT_EQ(0, reqbufs(self->vid, 1));
	EXPECT_EQ(-EINVAL, qbuf(self->vid, 0, d, a.alloc_size));
	ASSERT_EQ(0, reqbufs(self->vid, 0));
	close(d);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
}

/* Dequeues a frame on `vid`, checks it is solid red in `views`, queues it again. */
static void red_frame(struct __test_metadata *_metadata, int vid, const int *bufs,
		      unsigned char *const *views, __u32 length, __u32 sizeimage)
{
	struct v4l2_buffer b;
	unsigned char first[4];
	size_t bad;

	ASSERT_EQ(0, dqbuf(vid, &b));
	ASSERT_LT(b.index, NBUF);
	EXPECT_EQ(0, dmabuf_sync(bufs[b.index], DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	bad = off_colour(views[b.index], sizeimage, first);
	EXPECT_EQ(0, dmabuf_sync(bufs[b.index], DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	EXPECT_EQ(0, bad) TH_LOG("%zu macropixels differ", bad);
	EXPECT_NE(0, first[0]);
	EXPECT_LT(200, first[3]) TH_LOG("V %u", first[3]);
	ASSERT_EQ(0, qbuf(vid, b.index, bufs[b.index], length));
}

/*
 * Two vivid instances stream into the same cmabuf dma-bufs; the node is
 * unbound from a shell that gets SIGINT and then SIGKILL meanwhile. Unbind
 * returns within a second and waits for nobody; both instances go on
 * capturing into valid memory, and the frames show in the CPU mappings after
 * unbind; the memory goes back to the region when the last user lets go.
 */
TEST_F_TIMEOUT(cap, unbind_while_two_vivids_stream, 120)
{
	__u32 size = self->fmt.fmt.pix.sizeimage;
	struct cmabuf_alloc a[NBUF];
	unsigned char *views[NBUF];
	int bufs[NBUF], vid[2], i, k, status;
	pid_t child;
	double t0, took;

	if (geteuid() != 0)
		SKIP(return, "unbind needs root");
	close(self->vid);
	self->vid = -1;
	if (system("rmmod vivid 2>/dev/null; modprobe vivid allocators=1,1 n_devs=2 "
		   "node_types=0x1,0x1"))
		SKIP(return, "cannot load vivid with two instances");
	for (k = 0; k < 2; k++) {
		vid[k] = open_vivid_nth(k);
		ASSERT_LE(0, vid[k]) TH_LOG("vivid instance %d", k);
		ASSERT_EQ(0, xioctl(vid[k], VIDIOC_S_FMT, &self->fmt));
		ASSERT_EQ(size, self->fmt.fmt.pix.sizeimage);
		ASSERT_EQ(0, set_ctrl(vid[k], "OSD Text Mode", "None"));
		ASSERT_EQ(0, set_ctrl(vid[k], "Test Pattern", "100% Red"));
	}
	for (i = 0; i < NBUF; i++) {
		ASSERT_EQ(0, alloc_buf(self->d.fd, size, i % 2 ? CMABUF_MODE_CACHED : 0, &a[i]));
		bufs[i] = export_buf(self->d.fd, a[i].handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, bufs[i]);
		views[i] = mmap(NULL, a[i].alloc_size, PROT_READ, MAP_SHARED, bufs[i], 0);
		ASSERT_NE(MAP_FAILED, views[i]);
		/* Held by the dma-buf from here on. */
		EXPECT_EQ(0, free_buf(self->d.fd, a[i].handle));
	}
	for (k = 0; k < 2; k++) {
		ASSERT_EQ(0, reqbufs(vid[k], NBUF));
		for (i = 0; i < NBUF; i++)
			ASSERT_EQ(0, qbuf(vid[k], i, bufs[i], a[i].alloc_size));
		ASSERT_EQ(0, stream(vid[k], 1));
	}
	for (i = 0; i < 4; i++)
		for (k = 0; k < 2; k++)
			red_frame(_metadata, vid[k], bufs, views, a[0].alloc_size, size);

	/* Unbind from a shell that is interrupted and then killed meanwhile. */
	t0 = now_s();
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "echo %s > /sys/bus/platform/drivers/cmabuf/unbind",
			 self->d.platform);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	usleep(20 * 1000);
	kill(child, SIGINT);
	usleep(20 * 1000);
	kill(child, SIGKILL);
	for (;;) {
		pid_t r = waitpid(child, &status, WNOHANG);

		ASSERT_LE(0, r);
		if (r == child)
			break;
		ASSERT_GT(2.0, now_s() - t0) TH_LOG("unbinding process still alive");
		usleep(1000);
	}
	took = now_s() - t0;
	TH_LOG("unbind (shell signalled at 20 and 40 ms) ended after %.3f s, status %x", took,
	       status);
	EXPECT_GT(1.0, took);
	/* Either the write went through before the signals, or it was never made: retry it. */
	if (!access(dev_path(), F_OK))
		ASSERT_EQ(0, set_bound(self->d.platform, 0));
	EXPECT_NE(0, access(dev_path(), F_OK));

	/* Both instances go on capturing into the (valid) memory. */
	for (i = 0; i < 6; i++)
		for (k = 0; k < 2; k++)
			red_frame(_metadata, vid[k], bufs, views, a[0].alloc_size, size);
	for (k = 0; k < 2; k++) {
		ASSERT_EQ(0, stream(vid[k], 0));
		ASSERT_EQ(0, reqbufs(vid[k], 0));
		close(vid[k]);
	}
	if (self->d.used0 >= 0)
		EXPECT_LT(self->d.used0, cma_used(self->d.region));
	for (i = 0; i < NBUF; i++) {
		munmap(views[i], a[i].alloc_size);
		close(bufs[i]);
	}
	/* The last user went: the memory is back (the teardown checks the region). */
	close(self->d.fd);
	self->d.fd = -1;
	ASSERT_EQ(0, set_bound(self->d.platform, 1));
}

/*
 * CMABUF_ALLOC_EXPORT: the buffer and a descriptor of its dma-buf in one call,
 * the same dma-buf a later EXPORT gives, counted once; its errors change
 * nothing: a structure without the fd fields (version 1), bad fd_flags,
 * fd_flags without the flag, a non-zero fd on input, a read-write dma-buf
 * from a read-only file.
 */
TEST_F(exp, alloc_with_export)
{
	const unsigned long cmd_v1 = _IOC(_IOC_READ | _IOC_WRITE, CMABUF_IOC_MAGIC,
					  CMABUF_IOC_NR_ALLOC, CMABUF_ALLOC_SIZE_VER1);
	struct cmabuf_stats s0, s1;
	struct cmabuf_alloc a;
	int later, ro;
	long used;

	ASSERT_EQ(0, get_stats(self->d.fd, &s0));
	used = cma_used(self->d.region);
	memset(&a, 0, sizeof(a));
	a.size = 64 * KiB;
	a.flags = CMABUF_MODE_CACHED | CMABUF_ALLOC_EXPORT;
	a.fd_flags = O_RDWR | O_CLOEXEC;
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, cmd_v1, &a));
	a.fd_flags = O_WRONLY;
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, CMABUF_IOCTL_ALLOC, &a));
	a.fd_flags = O_RDWR | O_NONBLOCK;
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, CMABUF_IOCTL_ALLOC, &a));
	a.fd_flags = O_RDWR;
	a.fd = 3;
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, CMABUF_IOCTL_ALLOC, &a));
	a.fd = 0;
	a.flags = CMABUF_MODE_CACHED;
	EXPECT_EQ(-EINVAL, xioctl(self->d.fd, CMABUF_IOCTL_ALLOC, &a));
	ro = open(dev_path(), O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	a.flags = CMABUF_MODE_CACHED | CMABUF_ALLOC_EXPORT;
	EXPECT_EQ(-EACCES, xioctl(ro, CMABUF_IOCTL_ALLOC, &a));
	close(ro);
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.allocs, s1.allocs);
	EXPECT_EQ(used, cma_used(self->d.region));

	a.fd_flags = O_RDWR | O_CLOEXEC;
	ASSERT_EQ(0, xioctl(self->d.fd, CMABUF_IOCTL_ALLOC, &a));
	EXPECT_NE(0, a.handle);
	EXPECT_LT(2, (int)a.fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(a.fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(64 * KiB, lseek(a.fd, 0, SEEK_END));
	later = export_buf(self->d.fd, a.handle, O_RDWR);
	ASSERT_LE(0, later);
	EXPECT_EQ(inode_of(a.fd), inode_of(later));
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.allocs + 1, s1.allocs);
	EXPECT_EQ(s0.exports + 1, s1.exports);
	EXPECT_EQ(s0.live_dmabufs + 1, s1.live_dmabufs);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	close(later);
	close(a.fd);
	ASSERT_EQ(0, get_stats(self->d.fd, &s1));
	EXPECT_EQ(s0.live_dmabufs, s1.live_dmabufs);
}

/* EXPORT of a range: 0 or -errno, the descriptor in *fd. */
static int export_range(int fd, __u32 handle, __u64 offset, __u64 length, int *out)
{
	struct cmabuf_export e = {
		.handle = handle, .flags = O_RDWR | O_CLOEXEC, .offset = offset, .length = length,
	};
	int ret = xioctl(fd, CMABUF_IOCTL_EXPORT, &e);

	*out = ret ? -1 : (int)e.fd;
	return ret;
}

/*
 * Part of a buffer as a dma-buf: its size is the part's, its mmap shows the
 * part's bytes and goes no further, each range is its own dma-buf (the same
 * one again for the same range); ranges that are unaligned, empty, past or
 * across the end, or overflowing are EINVAL; the version-0 structure exports
 * the whole buffer.
 */
TEST_F(exp, export_range_and_errors)
{
	const unsigned long cmd_v0 = _IOC(_IOC_READ | _IOC_WRITE, CMABUF_IOC_MAGIC,
					  CMABUF_IOC_NR_EXPORT, CMABUF_EXPORT_SIZE_VER0);
	struct cmabuf_export e0 = { .flags = O_RDWR | O_CLOEXEC };
	unsigned char *p, *q;
	struct cmabuf_alloc a;
	int part, again, rest, whole, bad;
	size_t i;

	ASSERT_EQ(0, alloc_buf(self->d.fd, 4 * PAGE, CMABUF_MODE_CACHED, &a));
	p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, self->d.fd, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < 4 * PAGE; i++)
		p[i] = (unsigned char)(i / PAGE + 1);

	EXPECT_EQ(-EINVAL, export_range(self->d.fd, a.handle, 1, 0, &bad));
	EXPECT_EQ(-EINVAL, export_range(self->d.fd, a.handle, 0, PAGE + 1, &bad));
	EXPECT_EQ(-EINVAL, export_range(self->d.fd, a.handle, 4 * PAGE, 0, &bad));
	EXPECT_EQ(-EINVAL, export_range(self->d.fd, a.handle, 3 * PAGE, 2 * PAGE, &bad));
	EXPECT_EQ(-EINVAL, export_range(self->d.fd, a.handle, PAGE, ~(PAGE - 1), &bad));
	EXPECT_EQ(-EINVAL, export_range(self->d.fd, a.handle, ~(PAGE - 1), PAGE, &bad));

	ASSERT_EQ(0, export_range(self->d.fd, a.handle, PAGE, 2 * PAGE, &part));
	ASSERT_EQ(0, export_range(self->d.fd, a.handle, PAGE, 2 * PAGE, &again));
	ASSERT_EQ(0, export_range(self->d.fd, a.handle, 3 * PAGE, 0, &rest));
	e0.handle = a.handle;
	ASSERT_EQ(0, xioctl(self->d.fd, cmd_v0, &e0));
	whole = e0.fd;
	EXPECT_EQ(inode_of(part), inode_of(again));
	EXPECT_NE(inode_of(part), inode_of(rest));
	EXPECT_NE(inode_of(part), inode_of(whole));
	EXPECT_EQ(2 * PAGE, lseek(part, 0, SEEK_END));
	EXPECT_EQ(PAGE, lseek(rest, 0, SEEK_END));
	EXPECT_EQ(4 * PAGE, lseek(whole, 0, SEEK_END));

	q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, part, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0, dmabuf_sync(part, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	EXPECT_EQ(2, q[0]);
	EXPECT_EQ(3, q[2 * PAGE - 1]);
	EXPECT_EQ(0, dmabuf_sync(part, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	munmap(q, 2 * PAGE);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, part, 0));
	q = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, rest, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(4, q[0]);
	munmap(q, PAGE);

	/* The parts hold the buffer after the handle and its mapping go. */
	munmap(p, 4 * PAGE);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	close(whole);
	close(again);
	close(rest);
	q = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, part, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(2, q[PAGE - 1]);
	munmap(q, 2 * PAGE);
	close(part);
}

/* vivid's multi-planar capture node (vivid reloaded with multiplanar=2), or -1. */
static int open_vivid_mplane(void)
{
	if (system("rmmod vivid 2>/dev/null; modprobe vivid allocators=1 n_devs=1 node_types=0x1 "
		   "multiplanar=2"))
		return -1;
	return open_vivid_caps(0, V4L2_CAP_VIDEO_CAPTURE_MPLANE);
}

#define MP_BUFS 2

/*
 * NV12M (two planes, each its own dma-buf) captured by vivid's multi-planar
 * node into one cmabuf allocation per frame: Y plane and CbCr plane exported
 * as two ranges of it, each plane checked (solid red: uniform luma, Cr high).
 */
TEST_F_TIMEOUT(exp, nv12m_planes_in_one_allocation, 120)
{
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE };
	struct v4l2_requestbuffers r = {
		.count = MP_BUFS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
		.memory = V4L2_MEMORY_DMABUF,
	};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, vid, i, k, fds[MP_BUFS][2];
	struct cmabuf_alloc a[MP_BUFS];
	__u64 ylen, uvlen;
	unsigned char *view[MP_BUFS];

	vid = open_vivid_mplane();
	if (vid < 0)
		SKIP(return, "no multi-planar vivid node (CONFIG_VIDEO_VIVID, multiplanar=2)");
	fmt.fmt.pix_mp.width = 640;
	fmt.fmt.pix_mp.height = 480;
	fmt.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_NV12M;
	fmt.fmt.pix_mp.field = V4L2_FIELD_NONE;
	ASSERT_EQ(0, xioctl(vid, VIDIOC_S_FMT, &fmt));
	ASSERT_EQ(V4L2_PIX_FMT_NV12M, fmt.fmt.pix_mp.pixelformat);
	ASSERT_EQ(2, fmt.fmt.pix_mp.num_planes);
	ASSERT_EQ(0, set_ctrl(vid, "OSD Text Mode", "None"));
	ASSERT_EQ(0, set_ctrl(vid, "Test Pattern", "100% Red"));
	ylen = (fmt.fmt.pix_mp.plane_fmt[0].sizeimage + PAGE - 1) & ~(PAGE - 1);
	uvlen = (fmt.fmt.pix_mp.plane_fmt[1].sizeimage + PAGE - 1) & ~(PAGE - 1);
	ASSERT_EQ(0, xioctl(vid, VIDIOC_REQBUFS, &r));
	for (i = 0; i < MP_BUFS; i++) {
		struct v4l2_plane planes[2] = {
			{ .length = ylen }, { .length = uvlen },
		};
		struct v4l2_buffer b = {
			.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
			.memory = V4L2_MEMORY_DMABUF, .m.planes = planes, .length = 2,
		};

		ASSERT_EQ(0, alloc_buf(self->d.fd, ylen + uvlen, i % 2 ? CMABUF_MODE_CACHED : 0,
				       &a[i]));
		ASSERT_EQ(0, export_range(self->d.fd, a[i].handle, 0, ylen, &fds[i][0]));
		ASSERT_EQ(0, export_range(self->d.fd, a[i].handle, ylen, uvlen, &fds[i][1]));
		view[i] = mmap(NULL, ylen + uvlen, PROT_READ, MAP_SHARED, self->d.fd,
			       a[i].mmap_offset);
		ASSERT_NE(MAP_FAILED, view[i]);
		planes[0].m.fd = fds[i][0];
		planes[1].m.fd = fds[i][1];
		ASSERT_EQ(0, xioctl(vid, VIDIOC_QBUF, &b)) TH_LOG("buffer %d", i);
	}
	ASSERT_EQ(0, xioctl(vid, VIDIOC_STREAMON, &type));
	for (k = 0; k < 4; k++) {
		struct v4l2_plane planes[2];
		struct v4l2_buffer b = {
			.type = V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE, .memory = V4L2_MEMORY_DMABUF,
			.m.planes = planes, .length = 2,
		};
		struct pollfd pfd = { .fd = vid, .events = POLLIN };
		const unsigned char *y, *uv;
		size_t j, ybad = 0, uvbad = 0;

		ASSERT_EQ(1, poll(&pfd, 1, 10000));
		ASSERT_EQ(0, xioctl(vid, VIDIOC_DQBUF, &b));
		ASSERT_LT(b.index, MP_BUFS);
		EXPECT_EQ(fmt.fmt.pix_mp.plane_fmt[0].sizeimage, planes[0].bytesused);
		EXPECT_EQ(fmt.fmt.pix_mp.plane_fmt[1].sizeimage, planes[1].bytesused);
		for (j = 0; j < 2; j++)
			EXPECT_EQ(0, dmabuf_sync(fds[b.index][j],
						 DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		y = view[b.index];
		uv = view[b.index] + ylen;
		for (j = 1; j < planes[0].bytesused; j++)
			ybad += y[j] != y[0];
		for (j = 2; j + 2 <= planes[1].bytesused; j += 2)
			uvbad += uv[j] != uv[0] || uv[j + 1] != uv[1];
		EXPECT_EQ(0, ybad) TH_LOG("frame %d: %zu luma bytes differ from %u", k, ybad, y[0]);
		EXPECT_EQ(0, uvbad) TH_LOG("frame %d: %zu chroma pairs differ", k, uvbad);
		EXPECT_NE(0, y[0]);
		EXPECT_LT(200, uv[1]) TH_LOG("Cr %u", uv[1]);
		EXPECT_GT(128, uv[0]) TH_LOG("Cb %u", uv[0]);
		if (k == 0)
			TH_LOG("NV12M %ux%u: Y %u, Cb %u, Cr %u (planes %llu + %llu bytes, one "
			       "allocation)", fmt.fmt.pix_mp.width, fmt.fmt.pix_mp.height, y[0],
			       uv[0], uv[1], ylen, uvlen);
		for (j = 0; j < 2; j++)
			EXPECT_EQ(0, dmabuf_sync(fds[b.index][j],
						 DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
		planes[0] = (struct v4l2_plane){ .length = ylen, .m.fd = fds[b.index][0] };
		planes[1] = (struct v4l2_plane){ .length = uvlen, .m.fd = fds[b.index][1] };
		if (k + MP_BUFS < 4)
			ASSERT_EQ(0, xioctl(vid, VIDIOC_QBUF, &b));
	}
	ASSERT_EQ(0, xioctl(vid, VIDIOC_STREAMOFF, &type));
	r.count = 0;
	ASSERT_EQ(0, xioctl(vid, VIDIOC_REQBUFS, &r));
	close(vid);
	/* The single-planar vivid the other tests load comes back on their next open. */
	EXPECT_EQ(0, system("rmmod vivid"));
	for (i = 0; i < MP_BUFS; i++) {
		munmap(view[i], ylen + uvlen);
		close(fds[i][0]);
		close(fds[i][1]);
		EXPECT_EQ(0, free_buf(self->d.fd, a[i].handle));
	}
}

/*
 * An importer whose bus reaches only the first half of a buffer: dma-direct
 * maps the first segments directly and bounces the rest through swiotlb
 * (the board has a small one for unaligned kmalloc DMA). A bounce is copied
 * through the kernel's cached linear map, which coherent and write-combined
 * buffers' uncached mappings do not see: their mapping must be refused
 * (EINVAL) even though the first segment is direct. Cached buffers bounce
 * correctly and are mapped, and the bytes the "device" wrote into the
 * bounced half reach the CPU after DMA_BUF_IOCTL_SYNC.
 */
/* The swiotlb bounce buffer's physical range, from the boot log: 0 or -1. */
static int swiotlb_range(unsigned long long *start, unsigned long long *end)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *log, *p;
	int ret = -1;

	if (len <= 0)
		return -1;
	log = malloc(len + 1);
	if (!log)
		return -1;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, len);
	if (len > 0) {
		log[len] = 0;
		p = strstr(log, "software IO TLB: mapped [mem ");
		if (p && sscanf(p, "software IO TLB: mapped [mem %llx-%llx]", start, end) == 2)
			ret = 0;
	}
	free(log);
	return ret;
}

TEST_F(exp, partly_bounced_mapping)
{
	static const struct { __u32 mode; const char *name; } modes[] = {
		{ CMABUF_MODE_COHERENT, "coherent" },
		{ CMABUF_MODE_WRITECOMBINE, "writecombine" },
		{ CMABUF_MODE_CACHED, "cached" },
	};
	const size_t len = 256 * KiB;
	int imp = open_importer();

	if (imp < 0)
		SKIP(return, "no cmabuf_test_importer.ko");
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct cmabuf_test_import in = { .byte = 0x5a, .max_segment = 64 * KiB };
		struct cmabuf_alloc a;
		unsigned char *p;
		int d, ret;

		unsigned long long tlb_start, tlb_end;

		ASSERT_EQ(0, alloc_buf(self->d.fd, len, modes[m].mode, &a)) TH_LOG("%s", modes[m].name);
		if (a.out_flags & CMABUF_OUT_ADDR_WITHHELD)
			SKIP(return, "needs the buffer's DMA address (CAP_SYS_RAWIO)");
		/* The bounce buffer itself must lie below the limit, or swiotlb cannot bounce. */
		if (swiotlb_range(&tlb_start, &tlb_end))
			SKIP(return, "no swiotlb in the boot log (the kernel bounces nothing)");
		if (tlb_end > a.dma_addr + len / 2 - 1)
			SKIP(return, "this kernel put its swiotlb (%#llx-%#llx) above the buffer "
			     "(%#llx): no bus limit can split the buffer and still reach it",
			     tlb_start, tlb_end, (unsigned long long)a.dma_addr);
		d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, d);
		in.fd = d;
		in.dma_limit = a.dma_addr + len / 2 - 1;
		ret = xioctl(imp, CMABUF_TEST_IMPORT, &in);
		if (modes[m].mode != CMABUF_MODE_CACHED) {
			EXPECT_EQ(-EINVAL, ret) TH_LOG("%s buffer mapped with half of it bounced",
						       modes[m].name);
		} else if (ret == -ENOMEM || ret == -EIO) {
			TH_LOG("no room in swiotlb for the cached control (%s)", strerror(-ret));
		} else {
			EXPECT_EQ(0, ret) TH_LOG("cached buffer, partly bounced: %s", strerror(-ret));
			p = mmap(NULL, len, PROT_READ, MAP_SHARED, d, 0);
			ASSERT_NE(MAP_FAILED, p);
			EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
			EXPECT_EQ(0x5a, p[0]);
			EXPECT_EQ(0x5a, p[len - 1]) TH_LOG("the bounced half did not reach the CPU");
			EXPECT_EQ(0, dmabuf_sync(d, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
			munmap(p, len);
		}
		in = (struct cmabuf_test_import){ .fd = -1 };
		EXPECT_EQ(0, xioctl(imp, CMABUF_TEST_IMPORT, &in));
		close(d);
		EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	}
	close(imp);
}

TEST_HARNESS_MAIN
