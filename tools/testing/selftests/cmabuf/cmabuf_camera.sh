#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# cmabuf: the camera stacks users run, from Debian's own arm64 packages,
# allocating from cmabuf because its node is published as linux,cma (the
# device tree's cmabuf,dma-heap-name, linked by the mdev rule): libcamera's
# `cam`, GStreamer's `gst-launch-1.0 libcamerasrc` and v4l-utils, capturing libcamera's
# virtual camera (no hardware: test patterns, configured by a YAML file).
#
# The packages come on a disk the board's host attaches (serial
# cmabuf-camera: a tar of one root file system per Debian suite, made by
# board/camera.sh); each runs in a chroot of its files. For every suite:
#
#   1. cam captures 6 frames; while it streams (it is held writing its first
#      frame into a FIFO) cmabuf's debugfs lists its dma-bufs under
#      libcamera's names, STATS counts them, and the client's descriptors name
#      cmabuf as their exporter; every frame shows the virtual camera's eight
#      colour bars (Y, U and V at the middle of each bar, computed here from
#      the pattern's RGB with BT.601's limited-range formula); afterwards
#      cmabuf's counters and its region are back where they were;
#   2. the same with gst-launch-1.0 libcamerasrc ! identity eos-after=6 !
#      fdsink, 5 frames (held by the pipe to its reader);
#   3. the same capture with the linux,cma link taken away: cmabuf is not
#      used; libcamera falls back to the next provider it knows
#      (/dev/dma_heap/reserved, /dev/dma_heap/system, /dev/udmabuf), whose
#      frames are checked the same way, or, where the kernel has none of
#      them, cam fails to allocate; then mdev puts the link back;
#   4. (for the suite with the newest v4l-utils: v4l2-compliance must know
#      the kernel's API) v4l2-compliance on vivid's capture node, the
#      importer the other tests hand cmabuf dma-bufs to, with streaming (-s):
#      no failure.
#      It cannot import a cmabuf dma-buf itself: its DMABUF streaming test,
#      like v4l2-ctl's --stream-dmabuf, takes buffers a V4L2 device exports
#      (VIDIOC_EXPBUF of -e / --stream-out-mmap), never a dma-heap's.
#
# CMABUF_CAMERA_SUITES (kernel command line): the suites this boot runs.
# Needs root, /dev/cmabuf0 published as linux,cma and the camera disk;
# skips (exit 4) otherwise, saying which.

DIR=$(dirname "$(realpath "$0")")
. "$DIR/../kselftest/ktap_helpers.sh"

DEV=cmabuf0
DBG=/sys/kernel/debug/cmabuf/$DEV
CTL=$(command -v cmabufctl || echo "$DIR/cmabufctl")
W=640 H=480 FRAMES=6 GST_FRAMES=5
FRAME=$((W * H * 3 / 2))
WORK=/tmp/cmabuf-camera
CAMERA=Virtual0

ktap_print_header
if [ "$(id -u)" != 0 ]; then
	ktap_skip_all "needs root (chroot)"; exit "$KSFT_SKIP"
fi
disk=
# Debian's kernel has virtio-blk as a module.
[ -e /sys/bus/virtio/drivers/virtio_blk ] || { modprobe -q virtio_mmio; modprobe -q virtio_blk; }
for s in /sys/block/vd*/serial; do
	[ "$(cat "$s" 2>/dev/null)" = cmabuf-camera ] && disk=/dev/$(basename "$(dirname "$s")")
done
if [ -z "$disk" ]; then
	ktap_skip_all "no camera disk (serial cmabuf-camera; board/board.sh attaches one in make check)"
	exit "$KSFT_SKIP"
fi
if [ "$(cat /sys/class/misc/$DEV/heap_name 2>/dev/null)" != linux,cma ] ||
	[ "$(readlink -f /dev/dma_heap/linux,cma)" != /dev/$DEV ]; then
	ktap_skip_all "/dev/$DEV is not published as /dev/dma_heap/linux,cma (the board's overlay)"
	exit "$KSFT_SKIP"
fi

rm -rf $WORK
mkdir -p $WORK
tar -xf "$disk" -C $WORK camera/suites camera/skipped camera/compliance ||
	{ ktap_exit_fail_msg "the camera disk is not a tar of board/camera.sh's roots"; exit 1; }
# The suites this boot runs (CMABUF_CAMERA_SUITES, from the kernel command line), else all.
suites=
for s in $(cat $WORK/camera/suites); do
	case " ${CMABUF_CAMERA_SUITES:-$s} " in
	*" $s "*) suites="$suites $s" ;;
	*) ktap_print_msg "Debian $s: another boot runs it (CMABUF_CAMERA_SUITES=$CMABUF_CAMERA_SUITES)" ;;
	esac
done
skipped=$(cat $WORK/camera/skipped)
# v4l2-compliance runs from the newest v4l-utils on the disk (one older than the kernel's API
# fails checks of what changed since), in the boot that runs its suite.
compliance=$(cat $WORK/camera/compliance)
n=0
for s in $suites; do n=$((n + 3)); done
case " $suites " in
*" $compliance "*) n=$((n + 1)) ;;
*) ktap_print_msg "v4l2-compliance: runs from Debian $compliance's v4l-utils (the newest on the disk), in the boot that runs it" ;;
esac
for s in $skipped; do n=$((n + 1)); done
ktap_set_plan $n

# dbg FIELD: a number from cmabuf0's debugfs statistics.
dbg() { awk -v k="$1" '$1 == k { print $2 }' $DBG; }
# stats_of KEY...: numbers from STATS (cmabufctl stats --json: the ioctl, and the region's CMA
# counters), in the order asked.
stats_of() {
	j=$("$CTL" -d /dev/$DEV stats --json)
	for k in "$@"; do
		printf '%s ' "$(echo "$j" | sed -n "s/.*\"$k\":\([0-9]*\).*/\1/p")"
	done
}
# What must be back after each run: STATS' live buffers and bytes, the region's free pages, held
# buffers, live dma-bufs; once the small-buffer pool gave its emptied chunks back (a second).
snapshot() {
	t=0
	while [ "$(dbg pool_bytes)" != 0 ] && [ $t -lt 50 ]; do
		sleep 0.1
		t=$((t + 1))
	done
	echo "$(stats_of live_buffers live_bytes available_pages)$(dbg held_buffers) $(dbg live_dmabufs)"
}

# The eight bars' Y, U, V as libyuv's ARGBToNV12 computes them (BT.601, limited range).
expected=$(awk 'BEGIN {
	split("255 255 0 0 255 255 0 0", r); split("255 255 255 255 0 0 0 0", g)
	split("255 0 255 0 255 0 255 0", b)
	for (i = 1; i <= 8; i++)
		printf "%d %d %d\n", int((66 * r[i] + 129 * g[i] + 25 * b[i] + 4224) / 256),
			int((112 * b[i] - 74 * g[i] - 38 * r[i] + 32896) / 256),
			int((112 * r[i] - 94 * g[i] - 18 * b[i] + 32896) / 256)
}')

# check_frames FILE COUNT: COUNT NV12 frames of WxH, each with the eight bars (the pattern
# moves one column left per frame: the middle of each bar stays in it for 40 frames). Prints
# what it compared.
check_frames() {
	f=$1 count=$2
	size=$(stat -c %s "$f")
	if [ "$size" != $((FRAME * count)) ]; then
		echo "# $f: $size bytes, not $count frames of $FRAME"
		return 1
	fi
	i=0
	while [ $i -lt "$count" ]; do
		base=$((i * FRAME))
		# Row H/2 of the luma plane, and the chroma row under it.
		y=$(od -An -tu1 -v -j $((base + H / 2 * W)) -N $W "$f")
		uv=$(od -An -tu1 -v -j $((base + W * H + H / 4 * W)) -N $W "$f")
		echo "$expected" | awk -v w=$W -v frame=$i -v y="$y" -v uv="$uv" '
			function abs(v) { return v < 0 ? -v : v }
			BEGIN { ny = split(y, Y, " "); split(uv, UV, " ") }
			{
				x = (NR - 1) * w / 8 + w / 16	# the middle of bar NR
				gy = Y[x + 1]; gu = UV[x + 1]; gv = UV[x + 2]
				got = got sprintf(" %d/%d/%d", gy, gu, gv)
				want = want sprintf(" %d/%d/%d", $1, $2, $3)
				if (abs(gy - $1) > 2 || abs(gu - $2) > 2 || abs(gv - $3) > 2) bad = 1
			}
			END {
				printf "# frame %d, Y/U/V at x = %d + %d k: %s\n", frame, w / 16, w / 8, got
				if (bad) { printf "# expected:%s\n", want; exit 1 }
			}' || return 1
		i=$((i + 1))
	done
}

# The client's dma-buf descriptors and their exporters ("cmabuf x4").
exporters() {
	grep -h '^exp_name:' /proc/$1/fdinfo/* 2>/dev/null | sort | uniq -c |
		awk '{ printf "%s x%d ", $3, $1 }'
}

# while_streaming PID: waits (up to 60 s) until PID holds dma-bufs, then records what the
# kernel says of them in $seen and $exp.
while_streaming() {
	t=0
	while [ $t -lt 600 ]; do
		exp=$(exporters "$1")
		[ -n "$exp" ] && break
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
		t=$((t + 1))
	done
	live=$(stats_of live_buffers)
	seen="STATS live_buffers/live_bytes $(stats_of live_buffers live_bytes);$(awk '
		/^buffers/ { on = 1; next } on && / dma-buf / { printf " %s (%s B)", $4, $2 }' $DBG)"
	echo "# while streaming: exporters: ${exp:-none}; cmabuf0: $seen"
}

# vivid's video capture node, (re)loading vivid as the other tests do (dma-contig, a capture
# node) if need be.
vivid_node() {
	for i in 1 2; do
		for n in /sys/class/video4linux/video*; do
			case "$(cat "$n/name" 2>/dev/null)" in
			vivid-*-vid-cap) echo "/dev/${n##*/}"; return ;;
			esac
		done
		rmmod vivid 2>/dev/null
		modprobe vivid allocators=1 n_devs=1 node_types=0x1 2>/dev/null && mdev -s
	done
}

# v4l_utils SUITE: its v4l-utils version.
v4l_utils() { awk '$1 == "v4l-utils" { print $2 }' "$WORK/camera/$1/cmabuf-versions"; }

# v4l2-compliance -s (streaming: MMAP, USERPTR, and DMABUF from its own exporter) on vivid.
compliance() {
	node=$(vivid_node)
	[ -n "$node" ] || { echo "# no vivid capture node (CONFIG_VIDEO_VIVID)"; return 1; }
	(in_root "$s" v4l2-compliance -d "$node" -s 3) > $WORK/log 2>&1
	c=$?
	grep -E '^(Driver name|Total for|[[:space:]]*test (MMAP|USERPTR|DMABUF|VIDIOC_EXPBUF))' $WORK/log |
		sed 's/^[[:space:]]*/# v4l2-compliance: /'
	grep -q 'Failed: 0' $WORK/log && [ $c = 0 ] ||
		{ grep -E 'fail:|FAIL' $WORK/log | head -n 20 | sed 's/^/# /'; return 1; }
}

# in_root SUITE CMD...: CMD in the suite's root file system, in place of the (background)
# shell that runs this: $! is CMD's process.
in_root() {
	r=$WORK/camera/$1
	shift
	exec env -i PATH=/usr/bin:/bin HOME=/tmp LIBCAMERA_LOG_LEVELS='*:WARN' \
		GST_REGISTRY=/tmp/gst-registry.bin chroot "$r" "$@"
}

# watchdog PID: kills PID if it still runs in 120 s (a client that hangs fails its test, with
# exit status 137, instead of stalling the suite); $dog is the watchdog, for the caller to kill.
watchdog() {
	( sleep 120; kill -KILL "$1" 2>/dev/null ) &
	dog=$!
}

# cam_run SUITE OUT: cam captures FRAMES frames into OUT (the first through a FIFO, so that
# it waits, streaming, until read). Sets $pid, then $rc; the record in $WORK/log.
cam_run() {
	r=$WORK/camera/$1 out=$2
	rm -rf "$r/tmp/cam" && mkdir -p "$r/tmp/cam"
	# cam names frame files <pattern with # as cam0-stream0-<sequence>>.
	mkfifo "$r/tmp/cam/frame-cam0-stream0-000000.bin"
	in_root "$1" cam -c $CAMERA -C$FRAMES -s width=$W,height=$H,pixelformat=NV12 \
		-F/tmp/cam/frame-#.bin > $WORK/log 2>&1 &
	pid=$!
	watchdog $pid
	while_streaming $pid
	cat "$r/tmp/cam/frame-cam0-stream0-000000.bin" > "$out" &
	reader=$!
	wait $pid
	rc=$?
	kill $dog 2>/dev/null
	# A cam that never wrote a frame left the reader waiting for a writer.
	kill $reader 2>/dev/null
	wait $reader 2>/dev/null
	rm -f "$r/tmp/cam/frame-cam0-stream0-000000.bin"
	for f in "$r"/tmp/cam/frame-cam0-stream0-*.bin; do
		[ -f "$f" ] && cat "$f" >> "$out"
	done
	sed 's/^/# cam: /' $WORK/log | tail -n 20
}

gst_run() {
	r=$WORK/camera/$1 out=$2
	rm -f $WORK/gst.fifo && mkfifo $WORK/gst.fifo
	in_root "$1" gst-launch-1.0 -q --no-fault libcamerasrc camera-name=$CAMERA \
		! video/x-raw,format=NV12,width=$W,height=$H ! identity eos-after=$((GST_FRAMES + 1)) \
		! fdsink fd=1 > $WORK/gst.fifo 2> $WORK/log &
	pid=$!
	watchdog $pid
	# Open the reading end (the writer's open waits for it), read nothing until sampled.
	exec 3< $WORK/gst.fifo
	while_streaming $pid
	cat <&3 > "$out"
	exec 3<&-
	wait $pid
	rc=$?
	kill $dog 2>/dev/null
	sed 's/^/# gst-launch-1.0: /' $WORK/log | tail -n 20
}

# cmabuf_used LABEL COUNT: the client's frames came from cmabuf, and everything is back.
cmabuf_used() {
	case "$exp" in *cmabuf*) ;; *) echo "# $1: the client held no cmabuf dma-buf"; return 1 ;; esac
	# STATS counted the client's buffers on top of what lived before.
	[ "${live% }" -gt "${before%% *}" ] ||
		{ echo "# $1: STATS counted no new buffer while it streamed (${live% } live, ${before%% *} before)"; return 1; }
	case "$seen" in
	*"("*) ;;
	*) echo "# $1: debugfs listed no named dma-buf"; return 1 ;;
	esac
	[ "$rc" = 0 ] || { echo "# $1: exit status $rc"; return 1; }
	check_frames $WORK/frames "$2" || return 1
	after=$(snapshot)
	echo "# $1: before (live_buffers live_bytes region_free_pages held_buffers live_dmabufs) $before, after $after"
	[ "$after" = "$before" ]
}

for s in $skipped; do
	ktap_test_skip "Debian $(echo "$s" | tr : ' '): not in the archive now (board/camera.sh's log)"
done
for s in $suites; do
	r=$WORK/camera/$s
	tar -xf "$disk" -C $WORK "camera/$s" || { ktap_exit_fail_msg "no camera/$s on the disk"; exit 1; }
	versions=$(awk '$1 ~ /^(libcamera-tools|gstreamer1.0-tools)$/ { printf "%s %s ", $1, $2 }' \
		"$r/cmabuf-versions")
	ktap_print_msg "Debian $s: $versions"
	mkdir -p "$r/usr/share/libcamera/pipeline/virtual"
	# The virtual camera: one 640x480 camera showing colour bars.
	cat > "$r/usr/share/libcamera/pipeline/virtual/virtual.yaml" <<-EOF
	%YAML 1.1
	---
	"$CAMERA":
	  supported_formats:
	  - width: $W
	    height: $H
	    frame_rates:
	    - 30
	  test_pattern: "bars"
	  model: "cmabuf test"
	EOF
	for m in dev proc sys; do mount -o bind /$m "$r/$m"; done

	before=$(snapshot)
	cam_run "$s" $WORK/frames
	ktap_test_result "$s: cam (libcamera) streams from cmabuf dma-bufs; bars in all $FRAMES frames" \
		cmabuf_used cam $FRAMES

	before=$(snapshot)
	gst_run "$s" $WORK/frames
	# trixie's gst-launch-1.0 (1.26.2, libcamera 0.7.1) sometimes dies of SIGSEGV in
	# libcamerasrc (exit status 139, with every buffer back); one more run, said here, and that
	# one is checked. A second crash fails the test.
	if [ "$rc" -gt 128 ] && [ "$rc" != 137 ] && [ "$(snapshot)" = "$before" ]; then
		ktap_print_msg "$s: gst-launch-1.0 died of signal $((rc - 128)) (everything back); once more"
		gst_run "$s" $WORK/frames
	fi
	ktap_test_result "$s: gst-launch-1.0 libcamerasrc streams from cmabuf dma-bufs; bars in $GST_FRAMES frames" \
		cmabuf_used gst $GST_FRAMES

	# 3: the same without cmabuf's heap name.
	fallback() {
		allocs=$(dbg allocs)
		before=$(snapshot)
		next=
		for p in /dev/dma_heap/reserved /dev/dma_heap/system /dev/udmabuf; do
			[ -e "$p" ] && { next=$p; break; }
		done
		rm /dev/dma_heap/linux,cma
		cam_run "$s" $WORK/frames
		mdev -s
		[ "$(readlink -f /dev/dma_heap/linux,cma)" = /dev/$DEV ] ||
			{ echo "# mdev did not put /dev/dma_heap/linux,cma back"; return 1; }
		[ "$(dbg allocs)" = "$allocs" ] || { echo "# cmabuf0 allocated: $(dbg allocs) != $allocs"; return 1; }
		[ "$(snapshot)" = "$before" ] || { echo "# not back: $(snapshot) != $before"; return 1; }
		if [ -z "$next" ]; then
			echo "# no other provider libcamera knows is here: cam exit status $rc"
			[ "$rc" != 0 ] && [ -z "$exp" ]
		else
			echo "# libcamera's next provider is $next: exporters ${exp:-none}, cam exit status $rc"
			case "$exp" in ""|*cmabuf*) return 1 ;; esac
			[ "$rc" = 0 ] && check_frames $WORK/frames $FRAMES
		fi
	}
	ktap_test_result "$s: without cmabuf's heap name, libcamera does not use cmabuf" fallback

	# v4l-utils' own check of the importer the other tests feed cmabuf dma-bufs to.
	if [ "$s" = "$compliance" ]; then
		ktap_test_result "$s: v4l2-compliance $(v4l_utils "$s") -s on vivid's capture node (the other tests' importer): no failure" \
			compliance
	fi

	for m in dev proc sys; do umount "$r/$m"; done
	rm -rf "$r"
done
rm -rf $WORK
ktap_finished
