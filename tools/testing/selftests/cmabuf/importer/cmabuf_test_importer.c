// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf_test_importer: a test-only dma-buf importer that writes like a
 * device, for the cmabuf kselftests (cmabuf_bounce).
 *
 * It owns a platform device with a 32-bit DMA mask and no IOMMU, and offers
 * /dev/cmabuf_test_importer with one ioctl: given a dma-buf descriptor and a
 * byte, it attaches to the dma-buf, maps it DMA_FROM_DEVICE, and writes the
 * byte over every mapped segment *at its DMA address*, as a device would (so
 * into the swiotlb bounce buffer when the mapping bounces), with the longest
 * DMA segment and bus limit the caller asks for. It keeps the
 * mapping, as a streaming device keeps its buffers queued, until the next
 * call or close; the data reaches the CPU only if the exporter syncs the
 * importer's mapping in DMA_BUF_IOCTL_SYNC(START).
 */
#include <linux/dma-buf.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>

#include "cmabuf_test_importer.h"


static struct platform_device *importer_pdev;

/* What one open file holds: the dma-buf it imported, mapped. */
struct importer {
	struct mutex lock;
	struct dma_buf *dmabuf;
	struct dma_buf_attachment *attach;
	struct sg_table *sgt;
};

static void importer_release_buf(struct importer *im)
{
	if (!im->dmabuf)
		return;
	dma_buf_unmap_attachment_unlocked(im->attach, im->sgt, DMA_FROM_DEVICE);
	dma_buf_detach(im->dmabuf, im->attach);
	dma_buf_put(im->dmabuf);
	im->dmabuf = NULL;
}

static int importer_import(struct importer *im, struct cmabuf_test_import *arg)
{
	struct device *dev = &importer_pdev->dev;
	struct scatterlist *sg;
	int i, ret;

	importer_release_buf(im);
	if (arg->fd < 0)
		return 0;
	dma_set_max_seg_size(dev, arg->max_segment ? arg->max_segment : UINT_MAX);
	/* What the bus reaches, as a platform's dma-ranges would limit it (0: no limit). */
	dev->bus_dma_limit = arg->dma_limit;
	im->dmabuf = dma_buf_get(arg->fd);
	if (IS_ERR(im->dmabuf)) {
		ret = PTR_ERR(im->dmabuf);
		im->dmabuf = NULL;
		return ret;
	}
	im->attach = dma_buf_attach(im->dmabuf, dev);
	if (IS_ERR(im->attach)) {
		ret = PTR_ERR(im->attach);
		goto put;
	}
	im->sgt = dma_buf_map_attachment_unlocked(im->attach, DMA_FROM_DEVICE);
	if (IS_ERR(im->sgt)) {
		ret = PTR_ERR(im->sgt);
		goto detach;
	}
	/* The device writes: at each segment's DMA address, not at the buffer's pages. */
	for_each_sgtable_dma_sg(im->sgt, sg, i)
		memset(phys_to_virt(dma_to_phys(dev, sg_dma_address(sg))), arg->byte,
		       sg_dma_len(sg));
	return 0;
detach:
	dma_buf_detach(im->dmabuf, im->attach);
put:
	dma_buf_put(im->dmabuf);
	im->dmabuf = NULL;
	return ret;
}

static long importer_ioctl(struct file *file, unsigned int cmd, unsigned long uarg)
{
	struct importer *im = file->private_data;
	struct cmabuf_test_import arg;
	int ret;

	if (cmd != CMABUF_TEST_IMPORT)
		return -ENOTTY;
	if (copy_from_user(&arg, (void __user *)uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.pad)
		return -EINVAL;
	mutex_lock(&im->lock);
	ret = importer_import(im, &arg);
	mutex_unlock(&im->lock);
	return ret;
}

static int importer_open(struct inode *inode, struct file *file)
{
	struct importer *im = kzalloc(sizeof(*im), GFP_KERNEL);

	if (!im)
		return -ENOMEM;
	mutex_init(&im->lock);
	file->private_data = im;
	return 0;
}

static int importer_release(struct inode *inode, struct file *file)
{
	struct importer *im = file->private_data;

	importer_release_buf(im);
	mutex_destroy(&im->lock);
	kfree(im);
	return 0;
}

static const struct file_operations importer_fops = {
	.owner = THIS_MODULE,
	.open = importer_open,
	.release = importer_release,
	.unlocked_ioctl = importer_ioctl,
};

static struct miscdevice importer_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "cmabuf_test_importer",
	.fops = &importer_fops,
};

static int __init importer_init(void)
{
	int ret;

	importer_pdev = platform_device_register_simple("cmabuf-test-importer", -1, NULL, 0);
	if (IS_ERR(importer_pdev))
		return PTR_ERR(importer_pdev);
	/* A 32-bit device, as many camera and display blocks are. */
	ret = dma_coerce_mask_and_coherent(&importer_pdev->dev, DMA_BIT_MASK(32));
	if (ret)
		goto unregister;
	ret = misc_register(&importer_misc);
	if (ret)
		goto unregister;
	return 0;
unregister:
	platform_device_unregister(importer_pdev);
	return ret;
}

static void __exit importer_exit(void)
{
	misc_deregister(&importer_misc);
	platform_device_unregister(importer_pdev);
}

module_init(importer_init);
module_exit(importer_exit);
MODULE_DESCRIPTION("cmabuf kselftests: a dma-buf importer that writes like a device");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("DMA_BUF");
