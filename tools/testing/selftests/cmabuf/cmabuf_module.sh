#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cmabuf: module load, binding, unbind/bind, rmmod/insmod, rmmod with an open
# file, and the CMA region's counters afterwards.
#
# Needs root, the cmabuf module (installed, or cmabuf.ko in $CMABUF_KO or next
# to this script) and a device tree with one good "cmabuf,dma-buffer" node; the
# QEMU board's overlay also carries two nodes that must not bind.
# Skips (exit 4) when any of that is missing.

DIR=$(dirname "$(realpath "$0")")
. "$DIR/../kselftest/ktap_helpers.sh"

DRV=/sys/bus/platform/drivers/cmabuf
LOOPS=${CMABUF_LOOPS:-10}
# The module to load: $CMABUF_KO (insmod), else the installed one (modprobe), else
# cmabuf.ko next to this script.
KO=${CMABUF_KO:-}
if [ -z "$KO" ] && ! modinfo cmabuf >/dev/null 2>&1 && [ -f "$DIR/cmabuf.ko" ]; then
	KO=$DIR/cmabuf.ko
fi
load() {
	if [ -n "$KO" ]; then insmod "$KO" "$@"; else modprobe cmabuf "$@"; fi
}
# The nodes of the last load get the board's device rules (root:video 0660), as at boot (busybox
# mdev; udev applies them by itself): the tests after this one use them as an ordinary user.
# Seconds under KASAN: once at the end, not after every load.
rules() {
	! command -v mdev >/dev/null || mdev -s
}

ktap_print_header

if [ "$(id -u)" != 0 ]; then
	ktap_skip_all "needs root"; exit "$KSFT_SKIP"
fi
if [ -z "$KO" ] && ! modinfo cmabuf >/dev/null 2>&1; then
	ktap_skip_all "cmabuf is not installed and no cmabuf.ko found (set CMABUF_KO)"
	exit "$KSFT_SKIP"
fi
[ -d "$DRV" ] || load || { ktap_skip_all "loading cmabuf failed"; exit "$KSFT_SKIP"; }

# The bound devices: platform device names that link into the driver dir.
bound_devs() {
	for l in "$DRV"/*; do
		[ -L "$l" ] && [ -e "$l/of_node" ] && basename "$l"
	done
}
GOOD=$(bound_devs | head -n1)
if [ -z "$GOOD" ]; then
	ktap_skip_all "no device bound to cmabuf: is the overlay applied?"
	exit "$KSFT_SKIP"
fi
NODEV=$(ls /dev/cmabuf* 2>/dev/null | head -n1)

# The CMA region behind the first device, found by the name it logged.
REGION=$(dmesg | sed -n 's/.*\/dev\/cmabuf0: region \([^ ]*\) .*/\1/p' | tail -n1)
CMA=/sys/kernel/mm/cma/$REGION
cma_used() {	# pages in use: what the region handed out, less the pool's free room
	pool_free=$(sed -n 's/^pool_free_bytes *//p' /sys/kernel/debug/cmabuf/cmabuf0 2>/dev/null)
	echo $(( $(cat "$CMA/total_pages") - $(cat "$CMA/available_pages") - ${pool_free:-0} / $(getconf PAGESIZE 2>/dev/null || echo 4096) ))
}

ktap_set_plan 16

# 1
ktap_test_result "module loaded and bound $GOOD" test -n "$GOOD"

# 2: /dev/cmabufN is a misc char device named by the documented rule.
is_misc_chardev() {
	[ -c "$1" ] && [ "$(stat -c %t "$1")" = a ]	# major 10 (hex a)
}
ktap_test_result "/dev/cmabuf0 is a misc character device" is_misc_chardev /dev/cmabuf0

# 3, 4: the nodes that must not bind did not, and the log says why.
not_bound_with() {	# $1: node name pattern, $2: what the log must say
	for d in /sys/bus/platform/devices/$1; do
		[ -e "$d" ] || return 1
		[ -e "$d/driver" ] && return 1
		dmesg | grep "$(basename "$d")" | grep -q "$2" || return 1
	done
}
if ls -d /sys/bus/platform/devices/cmabuf-nomap >/dev/null 2>&1; then
	ktap_test_result "node with a no-map region is refused: not a CMA area" \
		not_bound_with 'cmabuf-nomap' "is not a CMA area"
else
	ktap_test_skip "no cmabuf-nomap node in this device tree"
fi
if ls -d /sys/bus/platform/devices/cmabuf-noregion >/dev/null 2>&1; then
	ktap_test_result "node without memory-region is refused and says so" \
		not_bound_with 'cmabuf-noregion' "no usable 'memory-region'"
else
	ktap_test_skip "no cmabuf-noregion node in this device tree"
fi

# 5: the region's counters are readable.
if [ -n "$REGION" ] && [ -r "$CMA/total_pages" ]; then
	ktap_test_pass "CMA region $REGION has sysfs counters"
	USED0=$(cma_used)
else
	ktap_test_fail "CMA region of /dev/cmabuf0 not found in /sys/kernel/mm/cma (REGION='$REGION')"
	USED0=
fi

# 5b: statistics in debugfs.
debugfs_stats() {
	f=/sys/kernel/debug/cmabuf/cmabuf0
	[ -r "$f" ] || { echo "# no $f"; return 1; }
	grep -q "^region *$REGION" "$f" && grep -q '^allocs ' "$f" && grep -q '^fallbacks ' "$f"
}
if [ -d /sys/kernel/debug/cmabuf ]; then
	ktap_test_result "statistics in /sys/kernel/debug/cmabuf/cmabuf0" debugfs_stats
else
	ktap_test_skip "debugfs not mounted or CONFIG_DEBUG_FS off"
fi

# 6: unbind/bind through sysfs.
unbind_bind() {
	i=0
	while [ $i -lt "$LOOPS" ]; do
		echo "$GOOD" > "$DRV/unbind" || return 1
		[ ! -e /dev/cmabuf0 ] || { echo "# /dev/cmabuf0 still there after unbind"; return 1; }
		echo "$GOOD" > "$DRV/bind" || return 1
		[ -c /dev/cmabuf0 ] || { echo "# /dev/cmabuf0 missing after bind"; return 1; }
		i=$((i + 1))
	done
}
ktap_test_result "unbind/bind through sysfs $LOOPS times" unbind_bind

# 7: rmmod/insmod.
reload() {
	i=0
	while [ $i -lt "$LOOPS" ]; do
		rmmod cmabuf || return 1
		[ ! -e /dev/cmabuf0 ] || return 1
		load || return 1
		[ -c /dev/cmabuf0 ] && [ -L "$DRV/$GOOD" ] || return 1
		i=$((i + 1))
	done
}
ktap_test_result "rmmod/load $LOOPS times" reload

# 8, 9: an open file pins the module; closing it lets rmmod succeed.
rmmod_open_fails() {
	exec 3</dev/cmabuf0 || return 1
	if rmmod cmabuf 2>/dev/null; then
		exec 3<&-
		load
		echo "# rmmod succeeded with /dev/cmabuf0 open"
		return 1
	fi
	[ -c /dev/cmabuf0 ] || return 1
	exec 3<&-
}
ktap_test_result "rmmod fails while /dev/cmabuf0 is open" rmmod_open_fails
rmmod_after_close() {
	rmmod cmabuf && load && [ -c /dev/cmabuf0 ]
}
ktap_test_result "rmmod succeeds after the file is closed" rmmod_after_close

# 10: unbind while a file is open, then close it and rmmod: nothing breaks.
unbind_open() {
	exec 3</dev/cmabuf0 || return 1
	echo "$GOOD" > "$DRV/unbind" || return 1
	[ ! -e /dev/cmabuf0 ] || return 1
	exec 3<&-
	rmmod cmabuf && load && [ -c /dev/cmabuf0 ]
}
ktap_test_result "unbind with an open file, close, rmmod, insmod" unbind_open

# 10b: rmmod with a filled ready reserve (the test board's /dev/cmabuf3) gives it back.
reserve_rmmod() {
	stats=/sys/kernel/debug/cmabuf/cmabuf3
	r3=$(dmesg | sed -n 's/.*\/dev\/cmabuf3: region \([^ ]*\) .*/\1/p' | tail -n1)
	want=$(sed -n 's/^reserve_bytes *//p' "$stats")
	i=0
	while [ "$(sed -n 's/^reserve_ready *//p' "$stats")" != "$want" ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "# reserve not filled: $(grep reserve "$stats")"; return 1; }
		sleep 0.1
	done
	c=/sys/kernel/mm/cma/$r3
	taken=$(( $(cat "$c/total_pages") - $(cat "$c/available_pages") ))
	ktap_print_msg "cmabuf3: $want bytes ready, $taken pages of $r3 taken; rmmod"
	[ "$taken" -gt 0 ] || return 1
	rmmod cmabuf || return 1
	taken=$(( $(cat "$c/total_pages") - $(cat "$c/available_pages") ))
	load || return 1
	ktap_print_msg "after rmmod: $taken pages of $r3 taken"
	[ "$taken" -eq 0 ]
}
if [ -e /sys/kernel/debug/cmabuf/cmabuf3 ] &&
	grep -q '^reserve_bytes *[1-9]' /sys/kernel/debug/cmabuf/cmabuf3; then
	ktap_test_result "rmmod with a filled ready reserve gives it back" reserve_rmmod
else
	ktap_test_skip "no node with a ready reserve (the test board's cmabuf3)"
fi

# 11: after all of the above, the module answers again with the same name.
ktap_test_result "/dev/cmabuf0 usable after the cycles" sh -c 'exec 3</dev/cmabuf0'

# 12: limits from module parameters are reported and enforced.
limits() {
	rmmod cmabuf || return 1
	load max_buffers_per_file=8 max_bytes_per_file=1048576 \
		max_bytes_per_device=1572864 || return 1
	[ -x "$DIR/cmabuf_test" ] || { echo "# no cmabuf_test"; return 1; }
	"$DIR/cmabuf_test" -t limit_buffers_per_file -t limit_bytes_per_file \
		-t limit_bytes_per_device > /tmp/cmabuf_limits.log 2>&1
	rc=$?
	sed 's/^/# /' /tmp/cmabuf_limits.log
	grep -q 'PASSED: 3 / 3' /tmp/cmabuf_limits.log || rc=1
	# Buffers the ready reserve would serve are refused by the same limits (the test board's
	# cmabuf3).
	if [ -e /dev/cmabuf3 ]; then
		"$DIR/cmabuf_reserve" -t limits_refuse_hits > /tmp/cmabuf_limits.log 2>&1 || rc=1
		sed 's/^/# /' /tmp/cmabuf_limits.log
		grep -q 'PASSED: 1 / 1' /tmp/cmabuf_limits.log || rc=1
	fi
	rmmod cmabuf && load && rules || return 1
	return $rc
}
ktap_test_result "small limits from module parameters are enforced" limits

# 13: the nodes as the board's device rules made them at boot (the video group's), where the
# board has such rules (mdev.conf; udev's are not checked here): the tests after this one use
# them as an ordinary user.
nodes_are_video() {
	ktap_print_msg "at the end: $(stat -c '%n %G %a' /dev/cmabuf[0-9]* | tr '\n' ' ')"
	! stat -c '%G %a' /dev/cmabuf[0-9]* | grep -qv '^video 660$'
}
if grep -qs cmabuf /etc/mdev.conf; then
	ktap_test_result "the nodes are the video group's when this script ends" nodes_are_video
else
	ktap_test_skip "no cmabuf rule in /etc/mdev.conf"
fi

# 14: the region's pages are all back.
if [ -n "$USED0" ]; then
	USED1=$(cma_used)
	ktap_print_msg "$REGION: used pages before $USED0, after $USED1"
	ktap_test_result "no CMA pages left allocated" test "$USED1" -eq "$USED0"
else
	ktap_test_fail "no CMA pages left allocated: region counters unavailable"
fi

ktap_finished
