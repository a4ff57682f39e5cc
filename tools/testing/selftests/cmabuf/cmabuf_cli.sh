#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cmabuf: the cmabufctl command line, in the board.
# Skips (exit 4) when cmabufctl or the device is missing.

DIR=$(dirname "$(realpath "$0")")
. "$DIR/../kselftest/ktap_helpers.sh"
DEV=${CMABUF_DEV:-/dev/cmabuf0}
CTL=$(command -v cmabufctl || echo "$DIR/cmabufctl")

ktap_print_header
[ -x "$CTL" ] || { ktap_skip_all "cmabufctl not found"; exit "$KSFT_SKIP"; }
[ -c "$DEV" ] || { ktap_skip_all "no $DEV"; exit "$KSFT_SKIP"; }
ktap_set_plan 20

# has STRING: whether $out contains STRING (ktap_test_result re-splits its
# arguments, so the text travels in $out and the needle in $want).
has() {
	case "$out" in *"$want"*) return 0 ;; esac
	echo "# missing '$want' in: $out"
	return 1
}

out=$("$CTL" -d "$DEV" info --json)
want='"region":"cmabuf-pool'
ktap_test_result "info --json names the region" has

out=$("$CTL" -d "$DEV" info)
want="region size"
ktap_test_result "info prints the region size" has

# The dma-heap name the driver gives (sysfs), also when opened through its /dev/dma_heap link.
out=$("$CTL" -d "/dev/dma_heap/$(cat /sys/class/misc/${DEV##*/}/heap_name 2>/dev/null)" info --json)
want="\"heap_name\":\"$(cat /sys/class/misc/${DEV##*/}/heap_name 2>/dev/null)\""
ktap_test_result "info --json gives the dma-heap name, through the dma-heap link too" has

out=$("$CTL" -d "$DEV" info)
want="per file, no limit per device"
ktap_test_result "info says 'no limit' for unlimited byte limits" has
want="0 buffers, 0 B"
ktap_test_result "info gives byte counts a unit (0 B)" has

out=$("$CTL" -d "$DEV" verify --json)
echo "# $out"
want='"ok":true,"size":4194304,"mode":"coherent"'
ktap_test_result "verify --json: contiguous, zeroed, mapped" has
if [ "$(id -u)" != 0 ]; then
	ktap_test_skip "contiguity needs root"
elif ! ls -d /sys/kernel/debug/cma/*/ > /dev/null 2>&1; then
	ktap_test_skip "contiguity needs the CMA bitmap in debugfs (CONFIG_CMA_DEBUGFS)"
else
	want='"contiguous":true'
	ktap_test_result "verify --json checked contiguity" has
fi

ok=0
for m in wc cached; do
	"$CTL" -d "$DEV" verify --size 1M --mode $m --json | grep -q '"ok":true' || ok=1
done
ktap_test_result "verify in wc and cached modes" test $ok -eq 0

out=$("$CTL" -d "$DEV" alloc --size 64K --count 3 --fill 0xaa --json)
n=$(echo "$out" | grep -o '"handle"' | wc -l)
ktap_test_result "alloc --count 3 --fill gives 3 buffers" test "$n" -eq 3

out=$("$CTL" -d "$DEV" stats --json)
want='"live_buffers":0,"live_bytes":0,'
ktap_test_result "stats --json: nothing live after the allocations" has
want='"cma":{"total_pages":'
ktap_test_result "stats --json shows the kernel's CMA counters" has

# The test board's reserve node fixes its pieces in the device tree (qemu-virt-tests.dtso).
if [ -e /dev/cmabuf3 ]; then
	out=$("$CTL" -d /dev/cmabuf3 stats --json)
	want='"unit":4194304,"unit_fixed":true,'
	ktap_test_result "stats --json: the reserve's fixed 4 MiB pieces" has
else
	ktap_test_skip "stats --json of a reserve: no /dev/cmabuf3 (the test board's reserve node)"
fi

"$CTL" -d "$DEV" alloc --size 0 > /dev/null 2>&1
rc=$?
ktap_test_result "alloc --size 0 fails with status 2 (EINVAL)" test $rc -eq 2

"$CTL" -d /dev/cmabuf-none info > /dev/null 2>&1
rc=$?
ktap_test_result "a missing device fails with status 2" test $rc -eq 2

# capture: vivid (dma-contig) fills exported cmabuf buffers; PNG files come out.
VIDEO=
if modprobe vivid allocators=1 n_devs=1 node_types=0x1 2>/dev/null; then
	for v in /sys/class/video4linux/video*; do
		[ "$(cat "$v/name" 2>/dev/null)" = "vivid-000-vid-cap" ] && VIDEO=/dev/${v##*/}
	done
fi
if [ -n "$VIDEO" ]; then
	rm -rf /tmp/cap
	"$CTL" -d "$DEV" capture --video "$VIDEO" --frames 3 --out /tmp/cap > /tmp/cap.log 2>&1
	rc=$?
	sed 's/^/# /; s/\r/\n# /g' /tmp/cap.log
	ktap_test_result "capture --frames 3 succeeds" test $rc -eq 0
	n=0
	for f in /tmp/cap/frame-000.png /tmp/cap/frame-001.png /tmp/cap/frame-002.png; do
		# The PNG signature: \x89 P N G.
		[ "$(dd if="$f" bs=1 skip=1 count=3 2>/dev/null)" = PNG ] && n=$((n + 1))
	done
	ktap_test_result "capture wrote 3 PNG frames" test $n -eq 3
	rm -rf /tmp/cap /tmp/cap.log
else
	ktap_test_skip "capture: no vivid capture node (CONFIG_VIDEO_VIVID)"
	ktap_test_skip "capture: no vivid capture node (CONFIG_VIDEO_VIVID)"
fi

# record: frames from vivid to the scratch disk with O_DIRECT from page-backed buffers, through
# io_uring and through pwrite. Each frame lands at n x stride; nothing is written past the last.
DISK=${CMABUF_DISK:-/dev/vda}
[ -b "$DISK" ] || { modprobe -q virtio_mmio; modprobe -q virtio_blk; sleep 0.2; }
# Bytes of `count` blocks of `bs` bytes at block `skip` of the disk that are not zero.
nonzero() {
	dd if="$DISK" bs="$1" skip="$2" count="$3" 2>/dev/null | tr -d '\000' | wc -c
}
for io in uring pwrite; do
	if [ -z "$VIDEO" ] || [ ! -b "$DISK" ]; then
		ktap_test_skip "record --io $io: needs a vivid capture node and a scratch disk ($DISK)"
		ktap_test_skip "record --io $io: needs a vivid capture node and a scratch disk ($DISK)"
		continue
	fi
	dd if=/dev/zero of="$DISK" bs=1M count=16 2>/dev/null
	out=$("$CTL" -d "$DEV" --json record --video "$VIDEO" --frames 6 --out "$DISK" --io $io \
		2>/tmp/rec.log)
	rc=$?
	sed 's/^/# /; s/\r/\n# /g' /tmp/rec.log
	want='"frames":6'
	ktap_test_result "record --io $io --frames 6 to $DISK succeeds" has
	stride=$(echo "$out" | sed -n 's/.*"stride":\([0-9]*\).*/\1/p')
	first=$(nonzero "${stride:-4096}" 0 1)
	last=$(nonzero "${stride:-4096}" 5 1)
	after=$(nonzero "${stride:-4096}" 6 2)
	echo "# stride $stride: frame 0 has $first non-zero bytes, frame 5 $last, after it $after"
	ktap_test_result "record --io $io: frames 0 and 5 on the disk, nothing after" \
		test "$rc" -eq 0 -a "$first" -gt 0 -a "$last" -gt 0 -a "$after" -eq 0
done
rm -f /tmp/rec.log

ktap_finished
