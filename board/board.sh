#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The virtual dev board: build everything it needs and boot it.
#
#   board/board.sh run     interactive shell (CMD=... runs that instead,
#                          EXTRA=dir puts a host directory at /extra,
#                          OUT=dir brings back what CMD leaves in /out)
#   board/board.sh check   runs every test in the board, parses the KTAP on
#                          the host, ends with "N passed, N failed, N skipped"
#   board/board.sh bench   benchmarks against the mainline CMA heap (ratios);
#                          BENCH_JSON, BENCH_PNG name the outputs
#
# Environment: MEM (default 1G), SMP (2), TIMEOUT (seconds), CMABUF_CACHE, CAMERA=1 (make run:
# attach Debian's camera stacks, see below), TEST_NODES=1 (make run: the test board's extra
# nodes, dts/qemu-virt-tests.dtso, to run single tests by hand),
# KERNEL_FLAVOR (debug or perf; by default debug for run/check, perf for bench),
# KERNEL=debian-X.Y (make run: boot Debian's stock kernel of that series instead, with
# Debian's modules and cmabuf built by DKMS from the cmabuf-dkms package; board/stock.sh).
# make check always runs the suite on the debug kernel and on Debian's stock kernel.
. "$(dirname "$0")/common.sh"

mode=${1:?usage: board.sh run|check}
case ${KERNEL:-} in
"") stock_series= ;;
debian-[0-9]*.[0-9]*)
	[ "$mode" = run ] || die "KERNEL=$KERNEL is for make run (make check runs Debian's kernel too)"
	stock_series=${KERNEL#debian-} ;;
*) die "KERNEL=$KERNEL: use debian-X.Y (Debian's stock kernel), or leave it unset" ;;
esac
ROOT=$CMABUF_ROOT
BUILD=${O_BOARD:-$ROOT/build}
MEM=${MEM:-1G}
SMP=${SMP:-2}
mkdir -p "$BUILD"

"$ROOT/board/setup.sh"
# Tests and the interactive board run the debug kernel (KASAN, lockdep,
# kmemleak, DMA API debugging); benchmarks run one without debug options.
case $mode in
bench) flavor=${KERNEL_FLAVOR:-perf} ;;
*) flavor=${KERNEL_FLAVOR:-debug} ;;
esac
KDIR=$("$ROOT/board/kernel.sh" "$flavor")
# The kernel's exported uapi headers (for the kselftests too) and the userspace build's settings.
userspace_env "$KDIR"
# Initramfs images (make_cpio) are written with this tree's tool.
export GEN_INIT_CPIO=$KDIR/usr/gen_init_cpio

# Every other supported series: the module must build warning-free (clippy) against it too.
# Built in a copy, so the board's own cmabuf.ko stays the default series'; in the background
# (one crate keeps one core busy), waited for before the board boots.
other_series() {
	local used s okdir out
	used=$(basename "$KDIR" | cut -d. -f1-2)
	for s in $SUPPORTED_SERIES; do
		[ "$s" = "$used" ] && continue
		okdir=$(KERNEL_SERIES=$s KERNEL_SERIES_STRICT=1 "$ROOT/board/kernel.sh" perf) ||
			die "no $s kernel tree to build the module against"
		out=$BUILD/series-$s
		mkdir -p "$out"
		rsync -a --delete --exclude '*.o' --exclude '*.ko' --exclude '*.cmd' \
			"$ROOT/Kbuild" "$ROOT/src" "$ROOT/include" "$out/"
		make -s -C "$okdir" ARCH=arm64 LLVM=$LLVM_SUFFIX M="$out" CLIPPY=1 modules \
			> "$out/build.log" 2>&1 || { cat "$out/build.log"; die "module build against $s failed"; }
		if grep -q 'warning:' "$out/build.log"; then
			cat "$out/build.log"
			die "warnings in the module build against $s"
		fi
		log "module builds warning-free (clippy) against $(basename "$okdir")"
	done
}
series_pid=
if [ "$mode" = check ]; then
	other_series > "$BUILD/series.log" 2>&1 &
	series_pid=$!
fi

if [ "$mode" = check ]; then
	log "host-side tests"
	python3 "$ROOT/board/test_report.py" -q >&2
	python3 "$ROOT/board/test_bench_report.py" -q >&2
	python3 "$ROOT/board/test_outfiles.py" -q >&2
	python3 "$ROOT/board/test_makefile.py" -q >&2
	python3 "$ROOT/board/test_layers.py" -q >&2
	python3 "$ROOT/board/test_deb.py" -q >&2
	(cd "$USERSPACE_DIR" && cargo test -q --locked >&2)
fi
[ -n "$KDIR" ] && [ -f "$KDIR/arch/arm64/boot/Image" ] || die "kernel build failed"

# Debian's camera stacks (libcamera's cam, GStreamer's libcamerasrc), trixie's and sid's arm64
# packages cut down to what they load (board/camera.sh), as a tar on a read-only disk of the board
# (serial cmabuf-camera; cmabuf_camera.sh unpacks it for its run): in the background, from here
# on beside the builds (the debug boot, the critical path, waits for it). make check
# always; make run with CAMERA=1 (the disk to explore: cmabuf_camera.sh shows how it is used).
camera_pid=
if [ "$mode" = check ] || [ -n "${CAMERA:-}" ]; then
	rm -rf "$BUILD/camera" "$BUILD/camera.tar"
	{ "$ROOT/board/camera.sh" "$BUILD/camera/camera" &&
		tar -C "$BUILD/camera" --owner=0 --group=0 -cf "$BUILD/camera.tar" camera; } \
		> "$BUILD/camera.log" 2>&1 &
	camera_pid=$!
fi

# --- the module ------------------------------------------------------------
log "building cmabuf.ko (with clippy; warnings fail the build)"
touch "$ROOT/src/cmabuf_main.rs"
make -s -C "$KDIR" ARCH=arm64 LLVM=$LLVM_SUFFIX M="$ROOT" CLIPPY=1 modules > "$BUILD/module-build.log" 2>&1 ||
	{ cat "$BUILD/module-build.log" >&2; die "module build failed"; }
if grep -q 'warning:' "$BUILD/module-build.log"; then
	cat "$BUILD/module-build.log" >&2
	die "warnings in the module build"
fi
rustfmt --check --edition 2021 --config-path "$KDIR/.rustfmt.toml" "$ROOT"/src/*.rs >&2 ||
	die "src/ is not rustfmt-clean: run 'make rustfmt'"

# --- the kselftests (arm64, static) ---------------------------------------
# Built as in a kernel tree: our directory next to the tree's lib.mk.
log "building kselftests"
KSFT_SRC=$BUILD/ksft/tools/testing/selftests
mkdir -p "$KSFT_SRC" "$BUILD/kselftest" "$BUILD/kselftest-build"
for f in lib.mk kselftest.h kselftest_harness.h kselftest; do
	ln -sfn "$KDIR/tools/testing/selftests/$f" "$KSFT_SRC/$f"
done
rsync -a --delete "$ROOT/tools/testing/selftests/cmabuf/" "$KSFT_SRC/cmabuf/"
make -s -C "$KSFT_SRC/cmabuf" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
	top_srcdir="$KDIR" OUTPUT="$BUILD/kselftest-build" \
	CMABUF_UAPI="$ROOT/include/uapi" KHDR_INCLUDES="-isystem $KDIR/usr/include" >&2
rm -rf "$BUILD/kselftest"
make -s -C "$KSFT_SRC/cmabuf" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
	top_srcdir="$KDIR" OUTPUT="$BUILD/kselftest-build" CMABUF_UAPI="$ROOT/include/uapi" \
	INSTALL_PATH="$BUILD/kselftest/cmabuf" install >&2
mkdir -p "$BUILD/kselftest/kselftest"
cp "$KDIR/tools/testing/selftests/kselftest/ktap_helpers.sh" "$BUILD/kselftest/kselftest/"
# The kernel's own dma-heap test, from the tree the board runs, unmodified: it walks every
# entry of /dev/dma_heap (cmabuf's links and the mainline CMA heap of the same region).
mkdir -p "$BUILD/kselftest-build/dmabuf-heaps"
rsync -a --delete "$KDIR/tools/testing/selftests/dmabuf-heaps/" "$KSFT_SRC/dmabuf-heaps/"
make -s -C "$KSFT_SRC/dmabuf-heaps" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
	top_srcdir="$KDIR" OUTPUT="$BUILD/kselftest-build/dmabuf-heaps" \
	KHDR_INCLUDES="-isystem $KDIR/usr/include" \
	INSTALL_PATH="$BUILD/kselftest/dmabuf-heaps" install >&2
# Test programs by path under the kselftest directory. Fault injection runs last: an injected
# failure inside DMA API debugging's own bookkeeping switches that debugging off for the rest
# of the boot.
# cmabuf_bounce runs in a second boot, with swiotlb=force.
(cd "$BUILD/kselftest/cmabuf" && ls | grep -E '^cmabuf_.*(\.sh)?$' |
	grep -v '\.txt$' | grep -vx -e cmabuf_faults -e cmabuf_bounce | sort | sed 's|^|cmabuf/|'
 echo dmabuf-heaps/dmabuf-heap; echo cmabuf/cmabuf_faults) > "$BUILD/tests.txt"
# The test-only importer module (a device that writes through its DMA addresses), built against
# the board's kernel like any out-of-tree module.
rsync -a --delete "$ROOT/tools/testing/selftests/cmabuf/importer/" "$BUILD/importer/"
make -s -C "$KDIR" ARCH=arm64 LLVM=$LLVM_SUFFIX M="$BUILD/importer" modules >&2 ||
	die "the test importer module did not build"
cp "$BUILD/importer/cmabuf_test_importer.ko" "$BUILD/kselftest/cmabuf/"
mv "$BUILD/tests.txt" "$BUILD/kselftest/cmabuf/tests.txt"

# --- userspace: the CLI and the library's board tests (arm64, static) -----
log "building userspace"
(cd "$USERSPACE_DIR" && cargo build -q --release --locked --target "$MUSL_TARGET" >&2)
CTL=$CARGO_TARGET_DIR/$MUSL_TARGET/release/cmabufctl
RUST_TESTS=$(cd "$USERSPACE_DIR" && cargo test -q --release --locked --target "$MUSL_TARGET" \
	--no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "board" \
            and m.get("executable"):
        print(m["executable"])')
[ -x "$CTL" ] && [ -x "$RUST_TESTS" ] || die "userspace build failed"
# cmabuf-tools' cmabufctl, linked against glibc as Debian links programs (the stock-kernel board
# runs it, with Debian's libc6), and its manual pages, generated on this machine from the command
# line's definition (clap_mangen).
if [ "$mode" = check ] || [ -n "$stock_series" ]; then
	(cd "$USERSPACE_DIR" && cargo build -q --release --locked --target "$GNU_TARGET" -p cmabufctl &&
		rm -rf "$BUILD/man" && cargo run -q --locked -p cmabufctl --features mangen \
		--bin cmabufctl-mangen -- "$BUILD/man") >&2 || die "cmabufctl (glibc) or its manual pages did not build"
	DEB_CTL=$CARGO_TARGET_DIR/$GNU_TARGET/release/cmabufctl
fi

# Debian's stock kernel (board/stock.sh), in the background while the rest is built and the debug
# board runs: the Debian packages (make deb), DKMS builds cmabuf.ko from cmabuf-dkms in a chroot
# of the suite, and the board's root file system (stock-base, once built below) gets Debian's
# modules instead of ours.
stock_pid=
if [ "$mode" = check ] || [ -n "$stock_series" ]; then
	rm -rf "$BUILD/stock" "$BUILD/stock-base" "$BUILD/stock-base.done"
	mkdir -p "$BUILD/stock"
	export CMABUF_PARENT=$$
	# trixie-backports' kernel; sid's if trixie has none built with the rustc it ships (stock.sh
	# exits 3). STOCK_SUITE=<suite> tries that one only.
	stock_prepare() {
		local rc suite
		CMABUFCTL=$DEB_CTL CMABUF_MAN=$BUILD/man "$ROOT/board/deb.sh" "$BUILD/deb" > /dev/null ||
			return 1
		for suite in ${STOCK_SUITE:-trixie sid}; do
			rc=0
			STOCK_SERIES=$stock_series STOCK_SUITE=$suite "$ROOT/board/stock.sh" \
				"$BUILD/deb" "$BUILD/stock-base" "$BUILD/stock" || rc=$?
			[ $rc = 3 ] || return $rc
			log "Debian $suite has no kernel for this: trying the next suite"
		done
		log "no Debian suite has a kernel built with the rustc it ships: the suite cannot run" \
			"on a stock kernel now (see above)"
		return 3
	}
	# Its status goes to a file: the stock board's boot waits for it in a shell of its own.
	{ rc=0; stock_prepare || rc=$?; echo $rc > "$BUILD/stock/prepare.rc"; } \
		> "$BUILD/stock/prepare.log" 2>&1 &
	stock_pid=$!
fi

# --- busybox ---------------------------------------------------------------
papt_update
bbdeb=$(papt_fetch busybox-static:arm64)
BB=$CACHE/busybox-$(basename "$bbdeb" .deb)
if [ ! -x "$BB" ]; then
	dpkg-deb --fsys-tarfile "$bbdeb" | tar -xO --wildcards "./*bin/busybox" > "$BB.tmp"
	chmod +x "$BB.tmp" && mv "$BB.tmp" "$BB"
fi

# --- device tree: QEMU's own plus our overlay ------------------------------
# The same machine options for the dump and the boot: the tree describes them.
MACHINE=(-cpu cortex-a72 -smp "$SMP" -m "$MEM" -nic none -nographic)
qemu-system-aarch64 -machine virt,dumpdtb="$BUILD/virt.dtb" "${MACHINE[@]}" >/dev/null
# A blank scratch disk on one of the virtio-mmio transports QEMU's tree always lists
# (/dev/vda): direct I/O and io_uring tests write to it.
# scratch_disk IMAGE: the QEMU options of a fresh one (each board that runs at the same time as
# another has its own).
scratch_disk() {
	rm -f "$1"
	truncate -s 256M "$1"
	echo "-drive file=$1,if=none,format=raw,id=scratch -device virtio-blk-device,drive=scratch"
}
QEMU=(qemu-system-aarch64 -machine virt "${MACHINE[@]}" -no-reboot)
dtc -q -@ -I dts -O dtb -o "$BUILD/qemu-virt.dtbo" "$ROOT/dts/qemu-virt.dtso"
OVERLAYS=("$BUILD/qemu-virt.dtbo")
# The tests also need nodes that must fail to bind; the board a user explores does not
# (TEST_NODES=1 make run: with them, to run single tests by hand).
if [ "$mode" = check ] || [ -n "${TEST_NODES:-}" ]; then
	dtc -q -@ -I dts -O dtb -o "$BUILD/qemu-virt-tests.dtbo" "$ROOT/dts/qemu-virt-tests.dtso"
	OVERLAYS+=("$BUILD/qemu-virt-tests.dtbo")
fi
fdtoverlay -i "$BUILD/virt.dtb" -o "$BUILD/board.dtb" "${OVERLAYS[@]}"
# The binding checked as dt_binding_check does, and the board's cmabuf nodes against it (the
# board as users get it: without the test overlay's deliberately broken nodes).
if [ "$mode" = check ]; then
	fdtoverlay -i "$BUILD/virt.dtb" -o "$BUILD/board-user.dtb" "$BUILD/qemu-virt.dtbo"
	"$ROOT/board/dtcheck.sh" "$KDIR" "$BUILD/boards" "$BUILD/board-user.dtb"
fi

# --- initramfs: the board's root file system, cmabuf put in by `make install` ----
IR=$BUILD/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,usr/bin,cmabuf,kselftest,etc,extra}
cp "$BB" "$IR/bin/busybox"
cp "$ROOT/board/init.sh" "$IR/init"
cp "$ROOT/board/run-tests.sh" "$ROOT/board/bench.sh" "$IR/cmabuf/"
# The kernel's own modules (vivid and videobuf2), with modules.dep for modprobe.
make -s -C "$KDIR" ARCH=arm64 LLVM=$LLVM_SUFFIX INSTALL_MOD_PATH="$IR" INSTALL_MOD_STRIP=1 \
	modules_install >&2
rm -f "$IR"/lib/modules/*/build "$IR"/lib/modules/*/source
echo "# mdev rules of the cmabuf board (busybox mdev -s at boot)" > "$IR/etc/mdev.conf"
if [ "$mode" = check ]; then
	log "make install / make uninstall on copies of the board's rootfs"
	python3 "$ROOT/board/test_install.py" "$IR" "$KDIR" "$CTL" -q >&2 ||
		die "board/test_install.py failed"
fi
make -s -C "$ROOT" install INSTALL_MOD_PATH="$IR" KDIR="$KDIR" CMABUFCTL="$CTL" >&2 ||
	die "make install failed"
cp -a "$BUILD/kselftest/." "$IR/kselftest/"
cp "$RUST_TESTS" "$IR/kselftest/cmabuf/cmabuf_rust_tests"
if [ -n "${EXTRA:-}" ]; then
	[ -d "$EXTRA" ] || die "EXTRA=$EXTRA is not a directory"
	cp -a "$EXTRA/." "$IR/extra/"
else
	rmdir "$IR/extra"
fi
case $mode in
run) if [ -n "${CMD:-}" ]; then echo cmd; else echo run; fi ;;
*) echo "$mode" ;;
esac > "$IR/cmabuf/mode"
printf '%s\n' "${CMD:-}" > "$IR/cmabuf/cmd"
# OUT=dir: whatever the command leaves in /out comes back to dir (as a tar stream on the
# console, so the board needs no network or disk).
if [ -n "${OUT:-}" ]; then
	mkdir -p "$IR/out"
	touch "$IR/cmabuf/out"
fi
make_cpio "$IR" "$BUILD/initramfs.cpio"

if [ -n "$stock_pid" ]; then
	rsync -a --exclude /lib/modules --exclude /usr/bin/cmabufctl --exclude /etc/udev \
		"$IR/" "$BUILD/stock-base/"
	touch "$BUILD/stock-base.done"
fi

# The other series' build (make check): it goes on beside the debug boot, the critical path, and
# is waited for before the report.
series_done() {
	[ -n "$series_pid" ] || return 0
	local rc=0
	wait "$series_pid" || rc=$?
	cat "$BUILD/series.log" >&2
	[ $rc = 0 ] || die "the module against the other supported series: see above"
}

# --- boot ------------------------------------------------------------------
# The disks: the camera disk's -device before the scratch disk's, so that the scratch disk is
# still /dev/vda (QEMU fills virtio-mmio transports from the top; Linux numbers from the bottom).
if [ -n "$camera_pid" ]; then
	if wait "$camera_pid"; then
		QEMU+=(-drive "file=$BUILD/camera.tar,if=none,format=raw,readonly=on,id=camera"
			-device virtio-blk-device,drive=camera,serial=cmabuf-camera)
		grep '^\[cmabuf\]' "$BUILD/camera.log" >&2 || true
	else
		cat "$BUILD/camera.log" >&2
		log "Debian's camera packages could not be prepared: cmabuf_camera.sh will skip"
	fi
fi
# The board's own kernel and root file system (the debug boot, the swiotlb boot, make run).
OURS=(-kernel "$KDIR/arch/arm64/boot/Image" -dtb "$BUILD/board.dtb" -initrd "$BUILD/initramfs.cpio")
# shellcheck disable=SC2207
BOOT=("${QEMU[@]}" $(scratch_disk "$BUILD/scratch.img") "${OURS[@]}")
# log_buf_len: the tests bind, unbind and reload the module hundreds of times; the first KUnit
# report and the boot messages must still be in the log that comes back.
APPEND="console=ttyAMA0 panic=-1 oops=panic log_buf_len=8M"
CONSOLE=$BUILD/console.log
# Debian's stock kernel with the same root file system, its own modules and DKMS's cmabuf.ko.
# shellcheck disable=SC2207
STOCK_BOOT=("${QEMU[@]}" $(scratch_disk "$BUILD/scratch-stock.img") -kernel "$BUILD/stock/vmlinuz"
	-dtb "$BUILD/board.dtb" -initrd "$BUILD/stock/initramfs.cpio")
stock_ready() {
	local rc
	while [ ! -s "$BUILD/stock/prepare.rc" ]; do
		kill -0 "$stock_pid" 2>/dev/null || break
		sleep 1
	done
	rc=$(cat "$BUILD/stock/prepare.rc" 2>/dev/null || echo 1)
	cat "$BUILD/stock/prepare.log" >&2
	[ $rc = 0 ] || log "the stock-kernel board could not be prepared: see above"
	return $rc
}
if [ -n "$stock_series" ]; then
	stock_ready || exit 1
	BOOT=("${STOCK_BOOT[@]}")
fi

case $mode in
run)
	if [ -z "${CMD:-}" ]; then
		log "booting; leave with 'exit' in the shell or Ctrl-A X"
		exec "${BOOT[@]}" -serial mon:stdio -append "$APPEND quiet"
	fi
	timeout "${TIMEOUT:-900}" "${BOOT[@]}" -serial stdio -monitor none \
		-append "$APPEND quiet" < /dev/null | tee "$CONSOLE" |
		sed -u '/^CMABUF-EXIT: /d; /^CMABUF-OUT-BEGIN/,/^CMABUF-OUT-END/d'
	rc=$(sed -n 's/^CMABUF-EXIT: \([0-9]*\).*/\1/p' "$CONSOLE" | tail -n1)
	[ -n "$rc" ] || { log "no exit status from the board (crash or timeout)"; exit 125; }
	if [ -n "${OUT:-}" ]; then
		mkdir -p "$OUT"
		python3 "$ROOT/board/outfiles.py" "$CONSOLE" "$OUT" ||
			{ log "no files came back from /out"; exit 1; }
	fi
	exit "$rc"
	;;
check)
	# Debian's stock kernel, then the swiotlb boot, then a second boot of the debug kernel run
	# at the same time as the debug kernel's first (the debug board keeps one of the two cores
	# busy: its tests are mostly single-threaded, and KASAN slows them most).
	rm -f "$BUILD/console-stock.log" "$BUILD/console-swiotlb.log" "$BUILD/console-debug2.log"
	# What the debug kernel's boots tell their tests (the kernel hands these to init):
	# Debian's camera stacks: trixie's on both kernels, sid's on the stock kernel only (each
	# client run costs seconds under KASAN).
	guest=CMABUF_CAMERA_SUITES=trixie
	# The fragmentation story's 1000 cycles of 8 MiB are make bench's figure; the tests run 200
	# of them on Debian's kernel and 100 here, under KASAN (the path is the same).
	guest="$guest CMABUF_FRAG_CYCLES=${CMABUF_FRAG_CYCLES:-100}"
	# The debug kernel's tests that its second boot runs, on the core the stock and swiotlb
	# boots leave idle while the first boot runs the rest (90 s of its 7 minutes: their
	# kmemleak, KASAN and lockdep verdicts are the second boot's, whose log is scanned alike).
	# Among them the ready reserve given back by kswapd under the pressure filler (a fill of
	# all memory: 20 s under KASAN), which the first boot's cmabuf_pressure skips.
	second="cmabuf/cmabuf_cli.sh,cmabuf/cmabuf_dmem,cmabuf/cmabuf_heapname.sh"
	second="$second,cmabuf/cmabuf_lifetime,cmabuf/cmabuf_pressure:reserve_given_back"
	stock_boot() {
		stock_ready || return 0
		log "booting Debian's $(cat "$BUILD/stock/abi") for the tests (console log:" \
			"$BUILD/console-stock.log)"
		# The time-boxed loops (leak growth, concurrent workers) look for leaks and races:
		# their full 15 s run under kmemleak, KASAN and lockdep below; 5 s each here.
		local loops="CMABUF_GROWTH_SECONDS=5 CMABUF_PRESSURE_SECONDS=5" rc=0
		timeout "${TIMEOUT:-1200}" "${STOCK_BOOT[@]}" -serial stdio -monitor none \
			-append "$APPEND loglevel=4 CMABUF_FRAG_CYCLES=${CMABUF_FRAG_CYCLES:-200} $loops" \
			< /dev/null > "$BUILD/console-stock.log" 2>&1 || rc=$?
		[ $rc = 124 ] && log "the stock-kernel board timed out"
		log "Debian's kernel finished its tests"
	}
	# debug_boot NAME TIMEOUT ARGS: the debug kernel booted beside the first (a scratch disk of
	# its own), with ARGS on its command line; its console in console-NAME.log. Init passes
	# cmabuf_tests= on to run-tests.sh.
	debug_boot() {
		local name=$1 limit=$2 args=$3 rc=0
		log "booting the debug kernel ($name) (console log: $BUILD/console-$name.log)"
		# shellcheck disable=SC2046
		timeout "$limit" "${QEMU[@]}" $(scratch_disk "$BUILD/scratch-$name.img") \
			"${OURS[@]}" -serial stdio -monitor none -append "$APPEND loglevel=4 $args" \
			< /dev/null > "$BUILD/console-$name.log" 2>&1 || rc=$?
		[ $rc = 124 ] && log "the $name board timed out"
		log "the $name board finished its tests"
		return 0
	}
	{
		stock_boot
		# Importers whose mappings bounce: every streaming mapping through swiotlb.
		debug_boot swiotlb "${TIMEOUT:-600}" "swiotlb=force cmabuf_tests=cmabuf/cmabuf_bounce"
		debug_boot debug2 "${TIMEOUT:-1200}" "cmabuf_tests=$second $guest"
	} &
	stock_boot_pid=$!
	log "booting the board for the tests (console log: $CONSOLE)"
	rc=0
	timeout "${TIMEOUT:-2400}" "${BOOT[@]}" -serial stdio -monitor none \
		-append "$APPEND loglevel=4 cmabuf_skip=$second $guest CMABUF_RESERVE_FILLER=0" \
		< /dev/null > "$CONSOLE" 2>&1 || rc=$?
	[ $rc = 124 ] && log "the board timed out"
	log "the debug board finished its tests"
	wait "$stock_boot_pid"
	series_done
	exec python3 "$ROOT/board/report.py" --kdir "$KDIR" "$CONSOLE" "$BUILD/console-debug2.log" \
		"$BUILD/console-swiotlb.log" "$BUILD/console-stock.log"
	;;
bench)
	log "booting the board for the benchmarks (console log: $CONSOLE)"
	timeout "${TIMEOUT:-3600}" "${BOOT[@]}" -serial stdio -monitor none \
		-append "$APPEND loglevel=4" < /dev/null > "$CONSOLE" 2>&1 || true
	exec python3 "$ROOT/board/bench_report.py" --json "${BENCH_JSON:-$BUILD/bench.json}" \
		--png "${BENCH_PNG:-$BUILD/bench.png}" "$CONSOLE"
	;;
*) die "unknown mode $mode" ;;
esac
