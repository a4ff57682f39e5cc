#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cmabuf: the dma-heap name a node is published under (cmabuf,dma-heap-name,
# sysfs heap_name, /dev/dma_heap/<name> made by the udev or mdev rule).
#
# Every bound device: its heap_name is its node's cmabuf,dma-heap-name or
# cmabufN, and /dev/dma_heap/<heap_name> leads to it, unless the kernel's own
# dma-heap framework has a heap of that name (then that device node stays).
# With the test overlay (two nodes asking for "linux,cma", one for the name of
# the kernel's heap of its own region): exactly one node publishes linux,cma,
# the other keeps cmabufN and the log says why; the kernel's heap node is not
# replaced; unbinding the holder and binding the other first moves the name.
#
# Needs root and a bound device; skips (exit 4) otherwise.

DIR=$(dirname "$(realpath "$0")")
. "$DIR/../kselftest/ktap_helpers.sh"

DRV=/sys/bus/platform/drivers/cmabuf

ktap_print_header
if [ "$(id -u)" != 0 ]; then
	ktap_skip_all "needs root"; exit "$KSFT_SKIP"
fi
if ! ls /sys/class/misc/cmabuf*/heap_name >/dev/null 2>&1; then
	ktap_skip_all "no bound cmabuf device with a heap_name attribute"; exit "$KSFT_SKIP"
fi

# The name a node asks for in the device tree ("" for none).
asked() {	# cmabufN
	p=$(readlink -f "/sys/class/misc/$1/device/of_node")
	[ -f "$p/cmabuf,dma-heap-name" ] && tr -d '\0' < "$p/cmabuf,dma-heap-name"
}
heap_name() { cat "/sys/class/misc/$1/heap_name"; }
# Whether the kernel's dma-heap framework has a heap named $1.
kernel_heap() { [ -e "/sys/class/dma_heap/$1" ]; }
# Re-applies the device rules (the board runs no hotplug helper).
rules() { command -v mdev >/dev/null && mdev -s; command -v udevadm >/dev/null && udevadm trigger --settle; true; }

devs=$(cd /sys/class/misc && ls -d cmabuf[0-9]* 2>/dev/null)
ktap_set_plan 6

# 1: each device's name is what its node asked for, or its default; never one twice.
names_ok() {
	seen=""
	for d in $devs; do
		n=$(heap_name "$d"); a=$(asked "$d")
		ktap_print_msg "$d: asked '${a}', published as '$n'"
		[ "$n" = "$d" ] || [ "$n" = "$a" ] || return 1
		case " $seen " in *" $n "*) return 1 ;; esac
		seen="$seen $n"
	done
}
ktap_test_result "each device published under its node's name or cmabufN, no name twice" names_ok

# 2: /dev/dma_heap/<name> leads to the device, or is the kernel's own heap of that name.
links_ok() {
	rules
	for d in $devs; do
		n=$(heap_name "$d")
		if [ "$n" != "$d" ] && kernel_heap "$n"; then
			[ -c "/dev/dma_heap/$n" ] && [ ! -L "/dev/dma_heap/$n" ] || return 1
			ktap_print_msg "/dev/dma_heap/$n stays the kernel's heap ($d is /dev/dma_heap/$d)"
		else
			[ "$(readlink -f "/dev/dma_heap/$n")" = "/dev/$d" ] || return 1
		fi
		[ "$(readlink -f "/dev/dma_heap/$d")" = "/dev/$d" ] || return 1
	done
}
ktap_test_result "/dev/dma_heap/<heap_name> leads to the device (a kernel heap of that name stays)" links_ok

# The test overlay's nodes: cmabuf0 and cmabuf2 both ask for linux,cma.
if [ "$(asked cmabuf0 2>/dev/null)" = "linux,cma" ] && [ "$(asked cmabuf2 2>/dev/null)" = "linux,cma" ]; then
	# 3: one holds it, the other kept its default and the log says so.
	one_holder() {
		h0=$(heap_name cmabuf0); h2=$(heap_name cmabuf2)
		{ [ "$h0" = "linux,cma" ] && [ "$h2" = cmabuf2 ]; } ||
			{ [ "$h2" = "linux,cma" ] && [ "$h0" = cmabuf0 ]; } || return 1
		dmesg | grep -q "dma-heap name linux,cma is already published by /dev/cmabuf"
	}
	ktap_test_result "two nodes asking for linux,cma: one publishes it, the other keeps cmabufN and says so" one_holder

	# 4: the name goes with its holder: unbind both, bind cmabuf2 first, then cmabuf0.
	p0=$(basename "$(readlink -f /sys/class/misc/cmabuf0/device)")
	p2=$(basename "$(readlink -f /sys/class/misc/cmabuf2/device)")
	moves() {
		echo "$p0" > $DRV/unbind && echo "$p2" > $DRV/unbind || return 1
		echo "$p2" > $DRV/bind && echo "$p0" > $DRV/bind || return 1
		ktap_print_msg "bound cmabuf2 first: cmabuf2 '$(heap_name cmabuf2)', cmabuf0 '$(heap_name cmabuf0)'"
		[ "$(heap_name cmabuf2)" = "linux,cma" ] && [ "$(heap_name cmabuf0)" = cmabuf0 ] || return 1
		rules
		[ "$(readlink -f "/dev/dma_heap/linux,cma")" = /dev/cmabuf2 ]
	}
	ktap_test_result "the first node bound holds the name; unbinding gives it back" moves
	# Back as the board boots: cmabuf0 holds linux,cma.
	echo "$p2" > $DRV/unbind; echo "$p0" > $DRV/unbind
	echo "$p0" > $DRV/bind; echo "$p2" > $DRV/bind
	rules
	back() {
		[ "$(heap_name cmabuf0)" = "linux,cma" ] &&
			[ "$(readlink -f "/dev/dma_heap/linux,cma")" = /dev/cmabuf0 ]
	}
	ktap_test_result "bound in boot order again: cmabuf0 is linux,cma" back
else
	ktap_test_skip "two nodes asking for linux,cma: not in this device tree (the test overlay's)"
	ktap_test_skip "the first node bound holds the name: not in this device tree"
	ktap_test_skip "bound in boot order again: not in this device tree"
fi

# 6: a node asking for the name of the kernel's own heap of its region (test overlay's cmabuf1).
n1=$(asked cmabuf1 2>/dev/null)
if [ -n "$n1" ] && kernel_heap "$n1"; then
	kernel_kept() {
		rules
		[ "$(heap_name cmabuf1)" = "$n1" ] && [ -c "/dev/dma_heap/$n1" ] &&
			[ ! -L "/dev/dma_heap/$n1" ] || return 1
		# The mdev rule says so in the kernel log (udev logs conflicts in its own journal).
		! command -v mdev >/dev/null ||
			dmesg | grep -q "/dev/dma_heap/$n1 is the kernel's own dma-heap"
	}
	ktap_test_result "a node asking for the kernel heap's name $n1: the kernel's node stays, and the log says so" kernel_kept
elif [ -n "$n1" ]; then
	ktap_test_skip "no kernel dma-heap named $n1 here (CONFIG_DMABUF_HEAPS_CMA off): nothing to shadow"
else
	ktap_test_skip "no node asks for a kernel heap's name in this device tree"
fi

ktap_finished
