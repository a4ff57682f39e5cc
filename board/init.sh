#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the cmabuf board's initramfs (busybox).  Mounts the usual file
# systems, loads cmabuf.ko and then, by /cmabuf/mode:
#   run    - an interactive shell on the console; leaving it powers off
#   cmd    - runs /cmabuf/cmd, prints "CMABUF-EXIT: <status>", powers off
#   check  - runs every test (/cmabuf/run-tests.sh), then as cmd
#   bench  - runs the benchmarks (/cmabuf/bench.sh), then as cmd
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
mkdir -p /proc /sys /dev /tmp /root /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
# cgroup v2 (the dmem controller limits cmabuf memory per cgroup), where the kernel has cgroups.
[ -d /sys/fs/cgroup ] && mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname cmabuf-board
# Users: camera is in the video group, which owns /dev/cmabufN (the mdev rule that
# `make install` added, as 60-cmabuf.rules does with udev); nobody is in no group.
cat > /etc/passwd <<EOF
root:x:0:0:root:/root:/bin/sh
camera:x:1000:1000:camera:/tmp:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/sh
EOF
cat > /etc/group <<EOF
root:x:0:
video:x:44:camera
camera:x:1000:
nogroup:x:65534:
EOF

# cmabuf as `make install` put it in this rootfs (lib/modules/<release>/updates/src, depmod).
modprobe cmabuf || echo "cmabuf: modprobe failed" >&2
# vgem: a DRM importer of dma-bufs (PRIME), for the kernel's dma-heap selftest and our own tests.
modprobe vgem 2>/dev/null || echo "cmabuf board: no vgem (CONFIG_DRM_VGEM)" >&2
# The device rules (/etc/mdev.conf, with the one `make install` added: /dev/cmabufN for the
# video group, /dev/dma_heap/cmabufN) applied to the devices there are: the board's coldplug.
# It runs no hotplug helper: busybox mdev creates nodes itself, which would race with
# devtmpfs in the tests that unbind and bind in a loop.
mdev -s

mode=$(cat /cmabuf/mode 2>/dev/null)
case "$mode" in
run)
	echo
	echo "cmabuf board: $(uname -r), driver bound: $(ls /dev/cmabuf* 2>/dev/null)"
	echo "Leave with 'exit' (powers off) or Ctrl-A X (QEMU)."
	[ -d /extra ] && echo "Host directory EXTRA is at /extra."
	setsid cttyhack sh -l
	;;
cmd)
	cd /root
	sh /cmabuf/cmd
	rc=$?
	# OUT=dir on the host: /out comes back as a base64 tar stream between markers.
	if [ -f /cmabuf/out ]; then
		echo "CMABUF-OUT-BEGIN"
		tar -C /out -cf - . | base64
		echo "CMABUF-OUT-END"
	fi
	echo "CMABUF-EXIT: $rc"
	;;
check)
	/cmabuf/run-tests.sh
	echo "CMABUF-EXIT: $?"
	;;
bench)
	/cmabuf/bench.sh
	echo "CMABUF-EXIT: $?"
	;;
esac
sync
poweroff -f
