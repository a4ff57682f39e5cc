/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ioctl of the test-only importer module (cmabuf_test_importer.c), shared
 * by the module and the kselftests that drive it.
 */
#ifndef CMABUF_TEST_IMPORTER_H
#define CMABUF_TEST_IMPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * struct cmabuf_test_import - what the importer is to map and write
 * @fd:		the dma-buf; -1: only let go of the current one
 * @byte:	what the "device" writes at the mapping's DMA addresses
 * @max_segment: the device's longest DMA segment; 0: no limit
 * @pad:	0
 * @dma_limit: the highest bus address the device reaches for this mapping
 *		(its bus DMA limit); 0: its 32-bit mask alone. Memory above is
 *		bounced through swiotlb, segment by segment.
 */
struct cmabuf_test_import {
	__s32 fd;
	__u32 byte;
	__u32 max_segment;
	__u32 pad;
	__u64 dma_limit;
};

#define CMABUF_TEST_IMPORT _IOW('c', 0x01, struct cmabuf_test_import)

#endif /* CMABUF_TEST_IMPORTER_H */
