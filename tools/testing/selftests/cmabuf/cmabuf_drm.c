// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: DRM importers, and a camera-to-display pipeline.
 *
 * - vgem imports cmabuf dma-bufs through PRIME (the kernel's GEM shmem
 *   helpers: attach, no mapping); the handle exported again is the very
 *   dma-buf, and bytes written through either side show on the other.
 * - The pipeline a camera product runs, zero-copy end to end: vivid captures
 *   NV12 frames into cmabuf dma-bufs; the same dma-bufs become vkms
 *   framebuffers (PRIME_FD_TO_HANDLE, ADDFB2, atomic commit); vkms composes
 *   them (NV12 to RGB) and its writeback connector writes the output into
 *   another cmabuf dma-buf, where the colour bars are checked. vkms reads
 *   and writes through vmap, the importer that keeps a kernel mapping for as
 *   long as a framebuffer is on screen.
 * - Unbind while vkms scans out a cmabuf framebuffer: it returns at once;
 *   a mode set with that framebuffer afterwards still works and shows it.
 *
 * CMABUF_FRAME_OUT=path writes the written-back frame there as a binary PPM
 * (make demo turns it into a PNG). Skips without vgem, vkms or vivid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/cmabuf.h>
#include <drm/drm.h>
#include <drm/drm_fourcc.h>
#include <drm/drm_mode.h>

#include "kselftest_harness.h"
#include "cmabuf_util.h"
#include "cmabuf_media.h"

#define KiB 1024ULL
#define NBUF 3
/* The "type" property's value for a primary plane (enum drm_plane_type, not in the uapi). */
#define PLANE_TYPE_PRIMARY 1

/* The first /dev/dri/cardN whose driver is `name` (loading module `name` once if need be). */
static int open_drm(const char *name)
{
	char path[64], drv[32];
	int tries, i, fd;

	for (tries = 0; tries < 2; tries++) {
		for (i = 0; i < 16; i++) {
			struct drm_version v = { .name = drv, .name_len = sizeof(drv) - 1 };

			snprintf(path, sizeof(path), "/dev/dri/card%d", i);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				continue;
			memset(drv, 0, sizeof(drv));
			if (!ioctl(fd, DRM_IOCTL_VERSION, &v) && !strcmp(drv, name))
				return fd;
			close(fd);
		}
		snprintf(path, sizeof(path), "modprobe %s 2>/dev/null", name);
		if (system(path))
			break;
	}
	return -1;
}

static int prime_import(int drm, int dmabuf, __u32 *handle)
{
	struct drm_prime_handle p = { .fd = dmabuf };
	int ret = xioctl(drm, DRM_IOCTL_PRIME_FD_TO_HANDLE, &p);

	*handle = p.handle;
	return ret;
}

static void gem_close(int drm, __u32 handle)
{
	struct drm_gem_close c = { .handle = handle };

	ioctl(drm, DRM_IOCTL_GEM_CLOSE, &c);
}

FIXTURE(drm) {
	struct cmabuf_dev d;
};

FIXTURE_SETUP(drm)
{
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
}

FIXTURE_TEARDOWN(drm)
{
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

/* vgem imports a cmabuf dma-buf; exported again it is the same dma-buf; bytes cross both ways. */
TEST_F(drm, vgem_prime_import)
{
	struct drm_prime_handle back = { 0 };
	struct cmabuf_alloc a;
	__u32 h1, h2;
	unsigned char *p, *q;
	struct stat s1, s2;
	int vgem, d, mode;

	vgem = open_drm("vgem");
	if (vgem < 0)
		SKIP(return, "no vgem (CONFIG_DRM_VGEM)");
	for (mode = 0; mode < 3; mode++) {
		ASSERT_EQ(0, alloc_buf(self->d.fd, 64 * KiB, mode, &a));
		d = export_buf(self->d.fd, a.handle, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, d);
		ASSERT_EQ(0, prime_import(vgem, d, &h1)) TH_LOG("mode %d", mode);
		/* Importing the same dma-buf again gives the same GEM object. */
		ASSERT_EQ(0, prime_import(vgem, d, &h2));
		EXPECT_EQ(h1, h2);
		back = (struct drm_prime_handle){ .handle = h1, .flags = DRM_CLOEXEC | DRM_RDWR };
		ASSERT_EQ(0, xioctl(vgem, DRM_IOCTL_PRIME_HANDLE_TO_FD, &back));
		ASSERT_EQ(0, fstat(d, &s1));
		ASSERT_EQ(0, fstat(back.fd, &s2));
		EXPECT_EQ(s1.st_ino, s2.st_ino) TH_LOG("vgem handed back another dma-buf");
		/* The importer holds the buffer: the handle and our dma-buf descriptor may go. */
		EXPECT_EQ(0, free_buf(self->d.fd, a.handle));
		close(d);
		p = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, back.fd, 0);
		ASSERT_NE(MAP_FAILED, p);
		EXPECT_EQ(0, p[0]);
		q = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, back.fd, 0);
		ASSERT_NE(MAP_FAILED, q);
		ASSERT_EQ(0, dmabuf_sync(back.fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
		memset(p, 0xa5, 64 * KiB);
		EXPECT_EQ(0xa5, q[64 * KiB - 1]);
		q[100] = 0x5a;
		EXPECT_EQ(0x5a, p[100]);
		ASSERT_EQ(0, dmabuf_sync(back.fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
		munmap(p, 64 * KiB);
		munmap(q, 64 * KiB);
		close(back.fd);
		if (self->d.used0 >= 0)
			EXPECT_LT(self->d.used0, cma_used(self->d.region)) TH_LOG("vgem lets go early");
		gem_close(vgem, h1);
		if (self->d.used0 >= 0)
			EXPECT_EQ(self->d.used0, cma_used(self->d.region)) TH_LOG("mode %d", mode);
	}
	close(vgem);
}

/* ---- the pipeline: vivid -> cmabuf -> vkms (plane) -> writeback -> cmabuf ---- */

#define W 640
#define H 480

/* The KMS objects of vkms's one pipe. */
struct kms {
	int fd;
	__u32 crtc, plane, conn, wb;
	struct drm_mode_modeinfo mode;
	__u32 mode_blob;
};

/* The id of property `name` of object `id` (of `type`), 0 if none; its value in *val. */
static __u32 prop(int fd, __u32 id, __u32 type, const char *name, __u64 *val)
{
	struct drm_mode_obj_get_properties op = { .obj_id = id, .obj_type = type };
	__u32 ids[64], i, found = 0;
	__u64 vals[64];

	if (ioctl(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &op) || op.count_props > 64)
		return 0;
	op.props_ptr = (uintptr_t)ids;
	op.prop_values_ptr = (uintptr_t)vals;
	if (ioctl(fd, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &op))
		return 0;
	for (i = 0; i < op.count_props && !found; i++) {
		struct drm_mode_get_property p = { .prop_id = ids[i] };

		if (!ioctl(fd, DRM_IOCTL_MODE_GETPROPERTY, &p) && !strcmp(p.name, name)) {
			found = ids[i];
			if (val)
				*val = vals[i];
		}
	}
	return found;
}

/* Finds vkms's CRTC, primary plane, virtual and writeback connectors, and a W x H mode. 0 or -1. */
static int kms_find(struct kms *k)
{
	struct drm_mode_card_res res = { 0 };
	struct drm_mode_get_plane_res pres = { 0 };
	__u32 crtcs[4], conns[8], planes[16], i, j;
	struct drm_set_client_cap cap = { .capability = DRM_CLIENT_CAP_ATOMIC, .value = 1 };

	if (ioctl(k->fd, DRM_IOCTL_SET_CLIENT_CAP, &cap))
		return -1;
	cap = (struct drm_set_client_cap){ .capability = DRM_CLIENT_CAP_WRITEBACK_CONNECTORS,
					   .value = 1 };
	if (ioctl(k->fd, DRM_IOCTL_SET_CLIENT_CAP, &cap))
		return -1;
	if (ioctl(k->fd, DRM_IOCTL_MODE_GETRESOURCES, &res) || res.count_crtcs < 1 ||
	    res.count_crtcs > 4 || res.count_connectors > 8)
		return -1;
	res.count_fbs = res.count_encoders = 0;
	res.crtc_id_ptr = (uintptr_t)crtcs;
	res.connector_id_ptr = (uintptr_t)conns;
	if (ioctl(k->fd, DRM_IOCTL_MODE_GETRESOURCES, &res))
		return -1;
	k->crtc = crtcs[0];
	k->conn = k->wb = 0;
	for (i = 0; i < res.count_connectors; i++) {
		struct drm_mode_get_connector c = { .connector_id = conns[i] };
		struct drm_mode_modeinfo modes[64];

		if (ioctl(k->fd, DRM_IOCTL_MODE_GETCONNECTOR, &c))
			return -1;
		if (c.connector_type == DRM_MODE_CONNECTOR_WRITEBACK) {
			k->wb = conns[i];
			continue;
		}
		if (c.count_modes > 64)
			c.count_modes = 64;
		c = (struct drm_mode_get_connector){ .connector_id = conns[i],
			.count_modes = c.count_modes, .modes_ptr = (uintptr_t)modes };
		if (ioctl(k->fd, DRM_IOCTL_MODE_GETCONNECTOR, &c))
			return -1;
		for (j = 0; j < c.count_modes && j < 64; j++)
			if (modes[j].hdisplay == W && modes[j].vdisplay == H) {
				k->conn = conns[i];
				k->mode = modes[j];
				break;
			}
	}
	if (!k->conn || !k->wb)
		return -1;
	if (ioctl(k->fd, DRM_IOCTL_MODE_GETPLANERESOURCES, &pres) || pres.count_planes > 16)
		return -1;
	pres.plane_id_ptr = (uintptr_t)planes;
	if (ioctl(k->fd, DRM_IOCTL_MODE_GETPLANERESOURCES, &pres))
		return -1;
	k->plane = 0;
	for (i = 0; i < pres.count_planes && !k->plane; i++) {
		__u64 type = ~0ULL;

		if (prop(k->fd, planes[i], DRM_MODE_OBJECT_PLANE, "type", &type) &&
		    type == PLANE_TYPE_PRIMARY)
			k->plane = planes[i];
	}
	if (!k->plane)
		return -1;
	{
		struct drm_mode_create_blob b = { .data = (uintptr_t)&k->mode,
						  .length = sizeof(k->mode) };

		if (ioctl(k->fd, DRM_IOCTL_MODE_CREATEPROPBLOB, &b))
			return -1;
		k->mode_blob = b.blob_id;
	}
	return 0;
}

/* A framebuffer of the dma-buf `dmabuf`: NV12 (a camera frame) or XRGB8888 (the output). */
static int add_fb(int fd, int dmabuf, __u32 format, __u32 *fb_id, __u32 *gem)
{
	struct drm_mode_fb_cmd2 f = { .width = W, .height = H, .pixel_format = format };
	int ret = prime_import(fd, dmabuf, gem);

	if (ret)
		return ret;
	f.handles[0] = *gem;
	if (format == DRM_FORMAT_NV12) {
		f.pitches[0] = W;
		f.handles[1] = *gem;
		f.pitches[1] = W;
		f.offsets[1] = W * H;
	} else {
		f.pitches[0] = W * 4;
	}
	ret = xioctl(fd, DRM_IOCTL_MODE_ADDFB2, &f);
	*fb_id = f.fb_id;
	return ret;
}

/*
 * One atomic commit: the mode on the CRTC, `fb` on the primary plane full
 * screen, and (if `wb_fb`) a writeback into `wb_fb`, waited for; with `fb` 0,
 * the display off (a mode set). 0 or -errno.
 */
static int commit(struct kms *k, __u32 fb, __u32 wb_fb)
{
	__u32 crtc = fb ? k->crtc : 0;
	__u32 objs[4], counts[4], props[16];
	__u64 vals[16];
	__s32 fence = -1;
	int n = 0, o = 0, ret;
	struct pollfd pf;

#define OBJ(id) (objs[o] = (id), counts[o++] = 0)
#define SET(id, type, name, v) (props[n] = prop(k->fd, id, type, name, NULL), vals[n++] = (v), \
				counts[o - 1]++)
	OBJ(k->crtc);
	SET(k->crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", !!fb);
	SET(k->crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", fb ? k->mode_blob : 0);
	OBJ(k->conn);
	SET(k->conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", crtc);
	OBJ(k->plane);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "FB_ID", fb);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID", crtc);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "SRC_W", (__u64)W << 16);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "SRC_H", (__u64)H << 16);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "CRTC_X", 0);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "CRTC_Y", 0);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "CRTC_W", W);
	SET(k->plane, DRM_MODE_OBJECT_PLANE, "CRTC_H", H);
	OBJ(k->wb);
	SET(k->wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", wb_fb ? crtc : 0);
	if (wb_fb) {
		SET(k->wb, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_FB_ID", wb_fb);
		SET(k->wb, DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_OUT_FENCE_PTR",
		    (uintptr_t)&fence);
	}
#undef OBJ
#undef SET
	{
		struct drm_mode_atomic a = {
			.flags = DRM_MODE_ATOMIC_ALLOW_MODESET, .count_objs = o,
			.objs_ptr = (uintptr_t)objs, .count_props_ptr = (uintptr_t)counts,
			.props_ptr = (uintptr_t)props, .prop_values_ptr = (uintptr_t)vals,
		};
		int i;

		for (i = 0; i < n; i++)
			if (!props[i])
				return -ENOENT;
		ret = xioctl(k->fd, DRM_IOCTL_MODE_ATOMIC, &a);
	}
	if (ret || !wb_fb)
		return ret;
	/* The writeback is done when its out-fence signals. */
	pf = (struct pollfd){ .fd = fence, .events = POLLIN };
	ret = poll(&pf, 1, 10000) == 1 ? 0 : -ETIMEDOUT;
	close(fence);
	return ret;
}

/*
 * vivid's "75% Colorbar" pattern, eight bars left to right, as RGB after the
 * NV12 to RGB conversion (BT.601, limited range): white, yellow, cyan, green,
 * magenta, red, blue, black at 75 %.
 */
static const unsigned char bars[8][3] = {
	{ 191, 191, 191 }, { 191, 191, 0 }, { 0, 191, 191 }, { 0, 191, 0 },
	{ 191, 0, 191 }, { 191, 0, 0 }, { 0, 0, 191 }, { 0, 0, 0 },
};

/* Checks the middle of each bar on three rows of an XRGB8888 frame; logs the pixels. */
static int check_bars(struct __test_metadata *_metadata, const unsigned char *px)
{
	int bad = 0, b, r;

	for (r = 1; r <= 3; r++) {
		for (b = 0; b < 8; b++) {
			int x = b * W / 8 + W / 16, y = r * H / 4, c;
			const unsigned char *p = px + (y * W + x) * 4;	/* B G R X */

			for (c = 0; c < 3; c++)
				if (abs((int)p[2 - c] - bars[b][c]) > 24)
					bad++;
			if (r == 2)
				TH_LOG("bar %d at (%d,%d): R %3u G %3u B %3u (want %3u %3u %3u)", b, x,
				       y, p[2], p[1], p[0], bars[b][0], bars[b][1], bars[b][2]);
		}
	}
	return bad;
}

/* Writes an XRGB8888 frame as a binary PPM. */
static void write_ppm(const char *path, const unsigned char *px)
{
	FILE *f = fopen(path, "w");
	int i;

	if (!f)
		return;
	fprintf(f, "P6\n%d %d\n255\n", W, H);
	for (i = 0; i < W * H; i++) {
		fputc(px[i * 4 + 2], f);
		fputc(px[i * 4 + 1], f);
		fputc(px[i * 4 + 0], f);
	}
	fclose(f);
}

FIXTURE(pipe) {
	struct cmabuf_dev d;
	struct kms k;
	int vid;
};

FIXTURE_SETUP(pipe)
{
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };

	self->vid = -1;
	self->k.fd = -1;
	if (cmabuf_dev_open(&self->d) && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->d.fd) TH_LOG("%s: %s", dev_path(), strerror(errno));
	self->k.fd = open_drm("vkms");
	if (self->k.fd < 0)
		SKIP(return, "no vkms (CONFIG_DRM_VKMS)");
	ASSERT_EQ(0, kms_find(&self->k)) TH_LOG("vkms: no CRTC, plane, %dx%d mode or writeback", W, H);
	self->vid = open_vivid();
	if (self->vid < 0)
		SKIP(return, "no vivid video capture node (CONFIG_VIDEO_VIVID)");
	fmt.fmt.pix.width = W;
	fmt.fmt.pix.height = H;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_NV12;
	fmt.fmt.pix.field = V4L2_FIELD_NONE;
	ASSERT_EQ(0, xioctl(self->vid, VIDIOC_S_FMT, &fmt));
	ASSERT_EQ(V4L2_PIX_FMT_NV12, fmt.fmt.pix.pixelformat);
	ASSERT_EQ(W, fmt.fmt.pix.bytesperline);
	ASSERT_EQ(W * H * 3 / 2, fmt.fmt.pix.sizeimage);
	ASSERT_EQ(0, set_ctrl(self->vid, "OSD Text Mode", "None"));
	ASSERT_EQ(0, set_ctrl(self->vid, "Test Pattern", "75% Colorbar"));
}

FIXTURE_TEARDOWN(pipe)
{
	if (self->vid >= 0)
		close(self->vid);
	if (self->k.fd >= 0)
		close(self->k.fd);	/* the display is switched off with the last file */
	EXPECT_TRUE(cmabuf_dev_close(&self->d))
		TH_LOG("region %s: pages not given back", self->d.region);
}

/* The pipeline's buffers: camera frames (NV12) and the display's output (XRGB8888). */
struct frames {
	int cam[NBUF], out;
	__u32 cam_fb[NBUF], cam_gem[NBUF], out_fb, out_gem;
	unsigned char *out_px;
	size_t cam_len, out_len;
};

/* Through DMA_HEAP_IOCTL_ALLOC, the node's heap mode. */
#define HEAP_MODE -1

/* A dma-buf of `len` bytes: from the dma-heap path, or ALLOC (and EXPORT) in `mode`; -1 on error. */
static int frame_alloc(int fd, __u64 len, int mode)
{
	struct cmabuf_alloc a;
	int ret;

	if (mode == HEAP_MODE)
		return heap_alloc(fd, len, O_RDWR | O_CLOEXEC);
	memset(&a, 0, sizeof(a));
	a.size = len;
	a.flags = mode | CMABUF_ALLOC_EXPORT;
	a.fd_flags = O_RDWR | O_CLOEXEC;
	if (xioctl(fd, CMABUF_IOCTL_ALLOC, &a))
		return -1;
	/* The dma-buf holds the memory; the handle is not needed. */
	ret = free_buf(fd, a.handle);
	if (ret) {
		close(a.fd);
		return -1;
	}
	return a.fd;
}

static void frames_setup(struct __test_metadata *_metadata, struct cmabuf_dev *d, struct kms *k,
			 struct frames *f, int mode)
{
	int i;

	f->cam_len = (W * H * 3 / 2 + 4095) & ~4095UL;
	f->out_len = W * H * 4;
	for (i = 0; i < NBUF; i++) {
		f->cam[i] = frame_alloc(d->fd, f->cam_len, mode);
		ASSERT_LE(0, f->cam[i]);
		ASSERT_EQ(0, add_fb(k->fd, f->cam[i], DRM_FORMAT_NV12, &f->cam_fb[i],
				    &f->cam_gem[i]));
	}
	f->out = frame_alloc(d->fd, f->out_len, mode);
	ASSERT_LE(0, f->out);
	ASSERT_EQ(0, add_fb(k->fd, f->out, DRM_FORMAT_XRGB8888, &f->out_fb, &f->out_gem));
	f->out_px = mmap(NULL, f->out_len, PROT_READ, MAP_SHARED, f->out, 0);
	ASSERT_NE(MAP_FAILED, f->out_px);
}

static void frames_release(struct kms *k, struct frames *f)
{
	int i;

	munmap(f->out_px, f->out_len);
	for (i = 0; i < NBUF; i++) {
		ioctl(k->fd, DRM_IOCTL_MODE_RMFB, &f->cam_fb[i]);
		gem_close(k->fd, f->cam_gem[i]);
		if (f->cam[i] >= 0)
			close(f->cam[i]);
	}
	ioctl(k->fd, DRM_IOCTL_MODE_RMFB, &f->out_fb);
	gem_close(k->fd, f->out_gem);
	close(f->out);
}

/* Shows camera buffer `i` and checks what the writeback connector wrote. */
static void show_and_check(struct __test_metadata *_metadata, struct kms *k, struct frames *f,
			   int i, const char *when)
{
	int bad;

	ASSERT_EQ(0, commit(k, f->cam_fb[i], f->out_fb)) TH_LOG("%s", when);
	ASSERT_EQ(0, dmabuf_sync(f->out, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ));
	bad = check_bars(_metadata, f->out_px);
	if (getenv("CMABUF_FRAME_OUT"))
		write_ppm(getenv("CMABUF_FRAME_OUT"), f->out_px);
	ASSERT_EQ(0, dmabuf_sync(f->out, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ));
	EXPECT_EQ(0, bad) TH_LOG("%s: %d colour components off by more than 24", when, bad);
}

/* Captures a frame into the camera buffers; returns the index of the one filled. */
static int capture(struct __test_metadata *_metadata, int vid, struct frames *f)
{
	struct v4l2_buffer b;
	int i;

	EXPECT_EQ(0, reqbufs(vid, NBUF));
	for (i = 0; i < NBUF; i++)
		EXPECT_EQ(0, qbuf(vid, i, f->cam[i], f->cam_len));
	EXPECT_EQ(0, stream(vid, 1));
	/* A couple of frames, so the pattern is settled; keep the last. */
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(0, dqbuf(vid, &b));
		if (i < 3)
			EXPECT_EQ(0, qbuf(vid, b.index, f->cam[b.index], f->cam_len));
	}
	EXPECT_EQ(0, stream(vid, 0));
	EXPECT_EQ(0, reqbufs(vid, 0));
	return b.index;
}

TEST_F_TIMEOUT(pipe, vivid_to_vkms_to_writeback, 120)
{
	struct frames f;
	int i;

	frames_setup(_metadata, &self->d, &self->k, &f, HEAP_MODE);
	i = capture(_metadata, self->vid, &f);
	show_and_check(_metadata, &self->k, &f, i, "camera frame on screen");
	EXPECT_EQ(0, commit(&self->k, 0, 0));
	frames_release(&self->k, &f);
}

/*
 * The pipeline on coherent and write-combined buffers, whose kernel mappings
 * are built at the first vmap (vkms reads the camera frame and writes the
 * output through them), and whose memory vkms keeps while it scans out: with
 * every descriptor and mapping of ours gone, the frame stays on screen
 * (another commit shows it again), the memory and its kernel mappings stay
 * until vkms lets go, then all of it goes.
 */
TEST_F_TIMEOUT(pipe, coherent_frames_outlive_their_descriptors, 120)
{
	static const struct {
		int mode;
		const char *name;
	} modes[] = {
		{ CMABUF_MODE_COHERENT, "coherent" },
		{ CMABUF_MODE_WRITECOMBINE, "write-combined" },
	};
	struct cmabuf_stats st;
	struct cmabuf_dev_info di;
	int m, i, j, ours, mapped, held, live0, tries, coherent;

	if (vmalloc_count("") <= 0)
		SKIP(return, "/proc/vmallocinfo unreadable: %s", strerror(errno));
	ASSERT_EQ(0, dev_info(self->d.fd, &di, NULL, 0));
	/* On a DMA-coherent device the linear map is the coherent mapping: no vmap. */
	coherent = !!(di.out_flags & CMABUF_OUT_DMA_COHERENT);
	for (m = 0; m < 2; m++) {
		struct frames f;
		char when[64];

		/* Earlier tests' small buffers leave a pool chunk (and its mapping) for a second. */
		ASSERT_LE(0, pool_drained(self->d.fd, 3));
		ours = vmalloc_count("cmabuf_dma_vmap");
		ASSERT_EQ(0, get_stats(self->d.fd, &st));
		live0 = st.live_buffers;
		frames_setup(_metadata, &self->d, &self->k, &f, modes[m].mode);
		i = capture(_metadata, self->vid, &f);
		snprintf(when, sizeof(when), "%s frame on screen", modes[m].name);
		show_and_check(_metadata, &self->k, &f, i, when);
		/*
		 * vivid wrote every camera buffer, vkms read one and wrote the output:
		 * one mapping per allocation (camera frames are small buffers, some in
		 * one pool chunk, which is mapped once).
		 */
		mapped = vmalloc_count("cmabuf_dma_vmap") - ours;
		if (coherent) {
			EXPECT_EQ(0, mapped);
		} else {
			EXPECT_LE(2, mapped) TH_LOG("%s: kernel mappings", modes[m].name);
		}
		/* Let go of everything of ours but the output's view; vkms keeps its imports. */
		for (j = 0; j < NBUF; j++)
			close(f.cam[j]);
		ASSERT_EQ(0, get_stats(self->d.fd, &st));
		held = st.live_buffers - live0;
		EXPECT_EQ(NBUF + 1, held) TH_LOG("%s: vkms's buffers not live", modes[m].name);
		EXPECT_EQ(ours + mapped, vmalloc_count("cmabuf_dma_vmap"))
			TH_LOG("%s: kernel mappings went while vkms holds them", modes[m].name);
		snprintf(when, sizeof(when), "%s frame, descriptors closed", modes[m].name);
		EXPECT_EQ(0, commit(&self->k, 0, 0));
		show_and_check(_metadata, &self->k, &f, i, when);
		EXPECT_EQ(0, commit(&self->k, 0, 0));
		for (j = 0; j < NBUF; j++)
			f.cam[j] = -1;
		frames_release(&self->k, &f);
		/* Deferred file releases, and the pool's emptied chunk after a second. */
		for (tries = 0; tries < 150; tries++) {
			ASSERT_EQ(0, get_stats(self->d.fd, &st));
			if (st.live_buffers == live0 && vmalloc_count("cmabuf_dma_vmap") == ours)
				break;
			usleep(20000);
		}
		EXPECT_EQ(live0, st.live_buffers) TH_LOG("%s: memory left after vkms let go",
						      modes[m].name);
		EXPECT_EQ(ours, vmalloc_count("cmabuf_dma_vmap"))
			TH_LOG("%s: kernel mappings left after the memory went", modes[m].name);
		TH_LOG("%s: %d kernel mappings, kept while vkms held %d buffers, gone after",
		       modes[m].name, mapped, held);
	}
}

/*
 * Unbind while vkms scans out a cmabuf framebuffer (it holds a vmap of it):
 * unbind returns at once; a mode set with that framebuffer afterwards works
 * and shows the same picture; the memory goes when vkms lets go.
 */
TEST_F_TIMEOUT(pipe, unbind_while_vkms_scans_out, 120)
{
	struct frames f;
	double t0, took;
	int i;

	if (geteuid() != 0)
		SKIP(return, "unbind needs root");
	frames_setup(_metadata, &self->d, &self->k, &f, HEAP_MODE);
	i = capture(_metadata, self->vid, &f);
	show_and_check(_metadata, &self->k, &f, i, "before unbind");
	/* Only vkms holds the camera buffers' memory from here on (framebuffers, vmap). */
	t0 = now_s();
	ASSERT_EQ(0, set_bound(self->d.platform, 0));
	took = now_s() - t0;
	TH_LOG("unbind while vkms scans out a cmabuf framebuffer: %.3f s", took);
	EXPECT_GT(1.0, took);
	/* A full mode set (off, then on again) with the same framebuffer. */
	EXPECT_EQ(0, commit(&self->k, 0, 0));
	show_and_check(_metadata, &self->k, &f, i, "mode set after unbind");
	EXPECT_EQ(0, commit(&self->k, 0, 0));
	frames_release(&self->k, &f);
	close(self->d.fd);
	self->d.fd = -1;
	ASSERT_EQ(0, set_bound(self->d.platform, 1));
}

TEST_HARNESS_MAIN
