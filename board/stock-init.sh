#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the board booted with Debian's stock kernel (board/stock.sh): loads the cmabuf.ko
# built for it and checks the basics, as one KTAP document for report.py.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
DRV=/sys/bus/platform/drivers/cmabuf

n=0
results=/tmp/results
: > $results
check() {	# check DESCRIPTION COMMAND...
	desc=$1
	shift
	n=$((n + 1))
	if "$@" > /tmp/out 2>&1; then
		echo "    ok $n $desc" >> $results
	else
		sed 's/^/    # /' /tmp/out >> $results
		echo "    not ok $n $desc" >> $results
	fi
}
node_of() { basename "$(readlink /sys/class/misc/$1/device)"; }
unbind_bind() {
	name=$(node_of cmabuf0) || return 1
	echo "$name" > $DRV/unbind && [ ! -e /dev/cmabuf0 ] &&
		echo "$name" > $DRV/bind && [ -e /dev/cmabuf0 ]
}

check "insmod cmabuf.ko on $(uname -r)" insmod /cmabuf.ko
check "both good nodes bound (/dev/cmabuf0, /dev/cmabuf1)" test -c /dev/cmabuf0 -a -c /dev/cmabuf1
check "the node with a no-map region is refused" sh -c 'dmesg | grep -q "is not a CMA area"'
check "cmabufctl verify (coherent)" /cmabufctl verify
check "cmabufctl verify (write-combined)" /cmabufctl verify --mode wc
check "cmabufctl verify (cached)" /cmabufctl verify --mode cached
check "unbind and bind through sysfs" unbind_bind
check "cmabufctl verify after rebinding" /cmabufctl verify --size 16M
check "rmmod cmabuf" rmmod cmabuf

echo "KTAP-BEGIN"
echo "KTAP version 1"
echo "1..1"
echo "    KTAP version 1"
echo "    # Subtest: stock_kernel"
echo "    1..$n"
cat $results
if grep -q "^    not ok" $results; then echo "not ok 1 stock_kernel"; else echo "ok 1 stock_kernel"; fi
echo "KTAP-END"
echo "DMESG-BEGIN"
dmesg
echo "DMESG-END"
echo "CMABUF-EXIT: 0"
poweroff -f
