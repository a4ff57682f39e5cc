#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cmabuf: the dma-heap name a node is published under (cmabuf,dma-heap-name,
# sysfs heap_name, /dev/dma_heap/<name> made by the udev or mdev rule).
#
# Every bound device: its heap_name is its node's cmabuf,dma-heap-name or
# cmabufN, and /dev/dma_heap/<heap_name> leads to it, unless the kernel's own
# dma-heap framework has a heap of that name (then that device node stays).
# With the test overlay (two nodes asking for the name the kernel's mainline
# CMA heap gives one node's region): exactly one node publishes it, the other
# keeps cmabufN and the log says why; binding the other first moves the name;
# the kernel's heap node is not replaced. cmabuf0 is linux,cma (the board's).
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

# The test overlay: cmabuf1 and cmabuf2 ask for one name, the kernel's heap of cmabuf1's region.
N=$(asked cmabuf1 2>/dev/null)
if [ -n "$N" ] && [ "$(asked cmabuf2 2>/dev/null)" = "$N" ]; then
	p1=$(basename "$(readlink -f /sys/class/misc/cmabuf1/device)")
	p2=$(basename "$(readlink -f /sys/class/misc/cmabuf2/device)")
	# 3: one holds it, the other kept its default and the log says so.
	one_holder() {
		h1=$(heap_name cmabuf1); h2=$(heap_name cmabuf2)
		ktap_print_msg "both ask for $N: cmabuf1 '$h1', cmabuf2 '$h2'"
		{ [ "$h1" = "$N" ] && [ "$h2" = cmabuf2 ]; } ||
			{ [ "$h2" = "$N" ] && [ "$h1" = cmabuf1 ]; } || return 1
		dmesg | grep -q "dma-heap name $N is already published by /dev/cmabuf"
	}
	ktap_test_result "two nodes asking for one name: one publishes it, the other keeps cmabufN and says so" one_holder

	# 4: the name goes with its holder: unbind both, bind cmabuf2 first, then cmabuf1, and back.
	moves() {
		echo "$p1" > $DRV/unbind && echo "$p2" > $DRV/unbind || return 1
		echo "$p2" > $DRV/bind && echo "$p1" > $DRV/bind || return 1
		ktap_print_msg "cmabuf2 bound first: cmabuf2 '$(heap_name cmabuf2)', cmabuf1 '$(heap_name cmabuf1)'"
		[ "$(heap_name cmabuf2)" = "$N" ] && [ "$(heap_name cmabuf1)" = cmabuf1 ] || return 1
		echo "$p2" > $DRV/unbind && echo "$p1" > $DRV/unbind || return 1
		echo "$p1" > $DRV/bind && echo "$p2" > $DRV/bind || return 1
		ktap_print_msg "cmabuf1 bound first: cmabuf1 '$(heap_name cmabuf1)', cmabuf2 '$(heap_name cmabuf2)'"
		[ "$(heap_name cmabuf1)" = "$N" ] && [ "$(heap_name cmabuf2)" = cmabuf2 ]
	}
	ktap_test_result "the first node bound holds the name; unbinding gives it back" moves
	rules

	# 5: the name is the kernel's own heap's: its device node stays (the mdev rule says so).
	if kernel_heap "$N"; then
		kernel_kept() {
			[ -c "/dev/dma_heap/$N" ] && [ ! -L "/dev/dma_heap/$N" ] || return 1
			! command -v mdev >/dev/null ||
				dmesg | grep -q "/dev/dma_heap/$N is the kernel's own dma-heap"
		}
		ktap_test_result "a name the kernel's dma-heap framework holds ($N): its node stays, and the log says so" kernel_kept
	else
		ktap_test_skip "no kernel dma-heap named $N here (CONFIG_DMABUF_HEAPS_CMA off): nothing to shadow"
	fi
else
	ktap_test_skip "two nodes asking for one name: not in this device tree (the test overlay's)"
	ktap_test_skip "the first node bound holds the name: not in this device tree"
	ktap_test_skip "a name the kernel's dma-heap framework holds: not in this device tree"
fi

# 6: the board's camera name: cmabuf0 asks for linux,cma and is /dev/dma_heap/linux,cma.
if [ "$(asked cmabuf0 2>/dev/null)" = "linux,cma" ]; then
	board_name() {
		[ "$(heap_name cmabuf0)" = "linux,cma" ] &&
			[ "$(readlink -f "/dev/dma_heap/linux,cma")" = /dev/cmabuf0 ]
	}
	ktap_test_result "cmabuf0 is /dev/dma_heap/linux,cma, as its node asks" board_name
else
	ktap_test_skip "cmabuf0's node asks for no linux,cma here"
fi

ktap_finished
