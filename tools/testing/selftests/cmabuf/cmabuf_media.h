/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the cmabuf kselftests that use dma-bufs and V4L2 (vivid): export
 * and dma-heap allocation, DMA_BUF_IOCTL_SYNC, vivid's capture node and
 * controls, the V4L2_MEMORY_DMABUF queue calls.
 */
#ifndef CMABUF_MEDIA_H
#define CMABUF_MEDIA_H

#include <poll.h>
#include <time.h>

#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/videodev2.h>

#include "cmabuf_util.h"

static inline int export_buf(int fd, __u32 handle, __u32 flags)
{
	struct cmabuf_export e = { .handle = handle, .flags = flags };
	int ret = xioctl(fd, CMABUF_IOCTL_EXPORT, &e);

	return ret ? ret : (int)e.fd;
}

static inline int heap_alloc(int fd, __u64 len, __u32 fd_flags)
{
	struct dma_heap_allocation_data h = { .len = len, .fd_flags = fd_flags };
	int ret = xioctl(fd, DMA_HEAP_IOCTL_ALLOC, &h);

	return ret ? ret : (int)h.fd;
}

/*
 * Kernel mappings in /proc/vmallocinfo whose line has `needle` (a flag such as
 * "dma-coherent", or the caller that made them, "cmabuf_dma_vmap"), or -1.
 */
static inline int vmalloc_count(const char *needle)
{
	FILE *f = fopen("/proc/vmallocinfo", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static inline int dmabuf_sync(int fd, __u64 flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return xioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The `n`-th vivid node with all of `caps` (device_caps), opened; -1 if there is none. */
static inline int open_vivid_caps(int n, __u32 caps)
{
	struct v4l2_capability cap;
	char path[64];
	int i, fd, seen = 0;

	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/dev/video%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(&cap, 0, sizeof(cap));
		if (!ioctl(fd, VIDIOC_QUERYCAP, &cap) && !strcmp((char *)cap.driver, "vivid") &&
		    (cap.device_caps & caps) == caps && seen++ == n)
			return fd;
		close(fd);
	}
	return -1;
}

/* The `n`-th vivid (single-planar) capture node (0 or 1), opened; -1 if there is none. */
static inline int open_vivid_nth(int n)
{
	return open_vivid_caps(n, V4L2_CAP_VIDEO_CAPTURE);
}

/* vivid's video capture node (loading vivid with dma-contig if need be), or -1. */
static inline int open_vivid(void)
{
	int fd = open_vivid_nth(0);

	if (fd < 0 && !system("modprobe vivid allocators=1 n_devs=1 node_types=0x1 2>/dev/null"))
		fd = open_vivid_nth(0);
	return fd;
}

/* Sets a control of vivid's by name; menu controls by item name. 0 or -errno. */
static inline int set_ctrl(int fd, const char *name, const char *item)
{
	struct v4l2_queryctrl q = { .id = V4L2_CTRL_FLAG_NEXT_CTRL };
	struct v4l2_querymenu m;
	struct v4l2_ext_control c = { 0 };
	struct v4l2_ext_controls cs = { .which = V4L2_CTRL_WHICH_CUR_VAL, .count = 1, .controls = &c };

	while (!ioctl(fd, VIDIOC_QUERYCTRL, &q)) {
		if (!strcmp((char *)q.name, name)) {
			for (m = (struct v4l2_querymenu){ .id = q.id }; m.index <= (__u32)q.maximum;
			     m.index++) {
				if (!ioctl(fd, VIDIOC_QUERYMENU, &m) && !strcmp((char *)m.name, item)) {
					c.id = q.id;
					c.value = m.index;
					return xioctl(fd, VIDIOC_S_EXT_CTRLS, &cs);
				}
			}
			return -ENOENT;
		}
		q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
	}
	return -ENOENT;
}

static inline int reqbufs(int vid, unsigned int count)
{
	struct v4l2_requestbuffers r = {
		.count = count, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF,
	};

	return xioctl(vid, VIDIOC_REQBUFS, &r);
}

static inline int qbuf(int vid, unsigned int index, int dmabuf, __u32 length)
{
	struct v4l2_buffer b = {
		.index = index, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF,
		.m.fd = dmabuf, .length = length,
	};

	return xioctl(vid, VIDIOC_QBUF, &b);
}

static inline int dqbuf(int vid, struct v4l2_buffer *b)
{
	struct pollfd p = { .fd = vid, .events = POLLIN };

	if (poll(&p, 1, 10000) != 1)
		return -ETIMEDOUT;
	*b = (struct v4l2_buffer){ .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF };
	return xioctl(vid, VIDIOC_DQBUF, b);
}

static inline int stream(int vid, int on)
{
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;

	return xioctl(vid, on ? VIDIOC_STREAMON : VIDIOC_STREAMOFF, &type);
}

#endif /* CMABUF_MEDIA_H */
