// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: importers whose DMA mappings bounce see the right data.
 *
 * Runs in a board booted with swiotlb=force (make check boots one for it):
 * every streaming DMA mapping then goes through a bounce buffer. The
 * test-only module cmabuf_test_importer (built with these tests) plays a
 * device with a 32-bit mask: it maps a dma-buf DMA_FROM_DEVICE and writes a
 * pattern at the mapping's DMA addresses, into the bounce buffer. After
 * DMA_BUF_IOCTL_SYNC(START | READ) the CPU mapping must show the pattern:
 * the exporter syncs every importer's mapping, as the mainline CMA heap does
 * (the control, on the same region). Coherent and write-combined cmabuf
 * buffers cannot be kept right through a bounce (the copy goes through the
 * cached linear map); their mapping is refused with EINVAL.
 *
 * Skips unless booted with swiotlb=force, or without the module or a heap.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/cmabuf.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"
#include "importer/cmabuf_test_importer.h"

#define KiB 1024ULL
#define LEN (256 * KiB)


static int booted_with(const char *word)
{
	char line[1024] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = 0;
		fclose(f);
	}
	return strstr(line, word) != NULL;
}

/* /dev/dma_heap/<name> of the mainline CMA heap of `region`, or "" (cmabuf's are links). */
static void mainline_heap(const char *region, char *out, size_t len)
{
	snprintf(out, len, "/dev/dma_heap/%s", region);
	if (access(out, F_OK))
		out[0] = 0;
}

FIXTURE(bounce) {
	struct cmabuf_dev d;
	int imp;
};

FIXTURE_SETUP(bounce)
{
	self->imp = -1;
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd);
	if (!booted_with("swiotlb=force"))
		SKIP(return, "not booted with swiotlb=force (make check boots a board for this)");
	if (access("/dev/cmabuf_test_importer", F_OK))
		system("insmod ./cmabuf_test_importer.ko");
	self->imp = open("/dev/cmabuf_test_importer", O_RDWR | O_CLOEXEC);
	if (self->imp < 0)
		SKIP(return, "no cmabuf_test_importer.ko");
}

FIXTURE_TEARDOWN(bounce)
{
	if (self->imp >= 0)
		close(self->imp);
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

/*
 * The importer writes `byte` into `dmabuf` as a device would; the CPU sees it
 * only after SYNC(START | READ). Returns the importer's result (0 or -errno).
 */
static int device_writes(struct __test_metadata *_metadata, int imp, int dmabuf, int byte)
{
	struct cmabuf_test_import in = { .fd = dmabuf, .byte = byte };
	unsigned char *p;
	size_t k, bad = 0;
	int ret;

	p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	EXPECT_NE(MAP_FAILED, p);
	if (p == MAP_FAILED)
		return -ENOMEM;
	EXPECT_EQ(0, dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
	memset(p, 0x11, LEN);
	EXPECT_EQ(0, dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));
	ret = xioctl(imp, CMABUF_TEST_IMPORT, &in);
	if (!ret) {
		EXPECT_EQ(0, dmabuf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
		for (k = 0; k < LEN; k++)
			bad += p[k] != byte;
		EXPECT_EQ(0, dmabuf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
		EXPECT_EQ(0, bad) TH_LOG("%zu of %llu bytes are not the device's 0x%02x (p[0] %02x)",
					 bad, LEN, byte, p[0]);
		in.fd = -1;
		EXPECT_EQ(0, xioctl(imp, CMABUF_TEST_IMPORT, &in));
	}
	munmap(p, LEN);
	return ret;
}

/* The control: the mainline CMA heap on the same region. */
TEST_F(bounce, mainline_heap_control)
{
	char path[128];
	struct dma_heap_allocation_data h = { .len = LEN, .fd_flags = O_RDWR | O_CLOEXEC };
	int heap;

	mainline_heap(self->d.region, path, sizeof(path));
	if (!path[0])
		SKIP(return, "no mainline CMA heap for %s", self->d.region);
	heap = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, heap);
	ASSERT_EQ(0, xioctl(heap, DMA_HEAP_IOCTL_ALLOC, &h));
	EXPECT_EQ(0, device_writes(_metadata, self->imp, h.fd, 0xa5));
	close(h.fd);
	close(heap);
}

/* cmabuf's cached buffers, exported and from DMA_HEAP_IOCTL_ALLOC: the data comes through. */
TEST_F(bounce, cached_buffers_see_device_writes)
{
	struct cmabuf_alloc a;
	int d;

	ASSERT_EQ(0, alloc_buf(self->d.fd, LEN, CMABUF_MODE_CACHED, &a));
	d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	EXPECT_EQ(0, device_writes(_metadata, self->imp, d, 0xa5));
	EXPECT_EQ(0, device_writes(_metadata, self->imp, d, 0x3c));
	close(d);
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	/* The dma-heap path gives cached buffers (heap_mode=2, the default). */
	d = heap_alloc(self->d.fd, LEN, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d);
	EXPECT_EQ(0, device_writes(_metadata, self->imp, d, 0x5a));
	close(d);
}

/* Coherent and write-combined buffers cannot be bounced right: the mapping is refused. */
TEST_F(bounce, uncached_buffers_refuse_bouncing_importers)
{
	struct cmabuf_alloc a;
	int mode, d;

	for (mode = CMABUF_MODE_COHERENT; mode <= CMABUF_MODE_WRITECOMBINE; mode++) {
		ASSERT_EQ(0, alloc_buf(self->d.fd, LEN, mode, &a));
		d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, d);
		EXPECT_EQ(-EINVAL, device_writes(_metadata, self->imp, d, 0xa5)) TH_LOG("mode %d", mode);
		close(d);
		EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
	}
	EXPECT_EQ(0, system("dmesg | grep -q 'would bounce through swiotlb; refused'"));
}

/* An importer whose segments are shorter than a page gets a clear EINVAL, not a kernel WARN. */
TEST_F(bounce, sub_page_segments_refused)
{
	struct cmabuf_test_import in = { .byte = 1, .max_segment = 2048 };
	struct cmabuf_alloc a;

	ASSERT_EQ(0, alloc_buf(self->d.fd, LEN, CMABUF_MODE_CACHED, &a));
	in.fd = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, in.fd);
	EXPECT_EQ(-EINVAL, xioctl(self->imp, CMABUF_TEST_IMPORT, &in));
	/* A page is enough. */
	in.max_segment = 4096;
	EXPECT_EQ(0, xioctl(self->imp, CMABUF_TEST_IMPORT, &in));
	close(in.fd);
	in.fd = -1;
	EXPECT_EQ(0, xioctl(self->imp, CMABUF_TEST_IMPORT, &in));
	EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
}

TEST_HARNESS_MAIN
