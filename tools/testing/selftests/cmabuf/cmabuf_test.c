// SPDX-License-Identifier: GPL-2.0
/*
 * cmabuf: the character device /dev/cmabuf0 from userspace.
 *
 * Skips when the device is missing (module not loaded or no node bound).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"

static const char *dev_path(void)
{
	const char *p = getenv("CMABUF_DEV");

	return p ? p : "/dev/cmabuf0";
}

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, "%s missing: cmabuf not loaded or no node bound", dev_path());
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", dev_path(), strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Several files may be open on one device at once. */
TEST_F(dev, open_many)
{
	int fds[16];
	int i;

	for (i = 0; i < 16; i++) {
		fds[i] = open(dev_path(), O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fds[i]);
	}
	for (i = 0; i < 16; i++)
		EXPECT_EQ(0, close(fds[i]));
}

/* An ioctl the device does not know is ENOTTY. */
TEST_F(dev, unknown_ioctl_enotty)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO('x', 0x7f), 0));
	EXPECT_EQ(ENOTTY, errno);
}

/* The device is not a file: read and write are refused. */
TEST_F(dev, no_read_write)
{
	char c = 0;

	EXPECT_EQ(-1, read(self->fd, &c, 1));
	EXPECT_EQ(-1, write(self->fd, &c, 1));
}

TEST_HARNESS_MAIN
