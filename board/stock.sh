#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The whole suite on the kernel Debian users already run: Debian's stock arm64 kernel, by
# default trixie-backports' (7.3.x+deb13-arm64, built with gcc 14 and trixie's rustc 1.85.1),
# else sid's (7.2.x+deb14-arm64, gcc 16, sid's rustc), with cmabuf installed the way a Debian
# user installs it (the cmabuf-dkms package, DKMS).
#
#   board/stock.sh DEBDIR IR_BASE OUTDIR   -> OUTDIR/vmlinuz, OUTDIR/initramfs.cpio, OUTDIR/abi
#
# Environment: STOCK_SUITE (trixie, default, or sid), STOCK_SERIES (X.Y: that series only;
# default the newest 7.x on offer). Exits 3 when the suite has no kernel built with the rustc
# it ships now (the suite moved on; board.sh then tries the other suite).
# board.sh boots the result (make check: the whole suite; KERNEL=debian-X.Y make run).
#
# 1. A chroot of the suite (debootstrap, cached) with the toolchain the kernel names: rustc,
#    rust-src, rust-clippy, bindgen, the cross gcc. Its rustc must be the kernel's
#    (CONFIG_RUSTC_VERSION_TEXT): checked first; a kernel fetched before with a matching
#    rustc is the fallback.
# 2. lintian (the suite's) on both packages: an error fails. `apt install ./cmabuf-dkms_*.deb` there: DKMS builds cmabuf.ko for Debian's kernel
#    (the package's PRE_BUILD checks the rustc by the crate hash of `kernel` in
#    Module.symvers and, once per kernel ABI, makes the Rust metadata the headers package lacks
#    from linux-source-X.Y). That module, and no other, goes into the board; every undefined
#    symbol of it must be in the headers' Module.symvers and its vermagic the kernel's.
# 3. The repository's Makefile against the headers tree, as the README tells a user
#    (`make KDIR=/usr/src/linux-headers-<abi> clippy`): warning-free with the kernel's rustc.
# 4. The board's initramfs (IR_BASE: busybox, init, the kselftests, without kernel modules;
#    waited for until IR_BASE.done exists)
#    gets Debian's own modules the tests load (vivid, vgem and what they depend on, from
#    linux-modules-<abi>), the DKMS-built cmabuf.ko (modprobe cmabuf), cmabuf-tools' cmabufctl
#    (linked against Debian's glibc: the suite's libc6 and libgcc-s1 come with it)
#    and the test importer module built for this kernel.
. "$(dirname "$0")/common.sh"

DEBDIR=${1:?usage: stock.sh DEBDIR IR_BASE OUTDIR} IRBASE=${2:?} OUTDIR=${3:?}
SERIES=${STOCK_SERIES:-7.[0-9]*}
SUITE=${STOCK_SUITE:-trixie}
MIRROR=http://deb.debian.org/debian
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
# The suites whose arm64 kernels are Rust-enabled: the kernels' ABI tag and the gcc they name.
case $SUITE in
trixie) TAG=deb13 GCC=gcc-14 EXTRA_SOURCES="$SUITE-backports" ;;
sid) TAG=deb14 GCC=gcc-16 EXTRA_SOURCES= ;;
*) die "STOCK_SUITE=$SUITE: trixie (its backports kernel) or sid" ;;
esac
# Exit status when the suite has no kernel built with its own rustc (the suite moved on): the
# caller may try the other suite.
MOVED_ON=3

# --- the chroot --------------------------------------------------------------
PKGS="ca-certificates rustc rust-src rust-clippy bindgen libclang-dev clang llvm
$GCC-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross make bc flex
bison libelf-dev libssl-dev python3 kmod dwarves cpio pkg-config xz-utils"
key=$(echo "$SUITE $PKGS" | sha256sum | cut -c1-12)
ROOT=$CACHE/debian/$SUITE-$key
# Commands in the chroot get a clean environment: the host's (LIBCLANG_PATH, bindgen's clang
# arguments, cargo's settings) names paths of the host's toolchain.
in_root() {
	$SUDO env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		chroot "$ROOT" /bin/sh -c "$*"
}
if [ ! -f "$ROOT/.cmabuf-ready" ]; then
	log "making a $SUITE chroot with Debian's kernel toolchain (first run only: ~1-2 min)"
	$SUDO rm -rf "$ROOT"
	mkdir -p "$(dirname "$ROOT")"
	$SUDO debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >&2 ||
		die "debootstrap $SUITE failed"
	# A mirror that serves a snapshot keeps sid's week-long Valid-Until past its date: the
	# signatures are still checked, only the expiry is not.
	echo 'Acquire::Check-Valid-Until "false";' |
		$SUDO tee "$ROOT/etc/apt/apt.conf.d/50cmabuf-snapshot" >/dev/null
	for extra in $EXTRA_SOURCES; do
		echo "deb $MIRROR $extra main"
	done | $SUDO tee "$ROOT/etc/apt/sources.list.d/extra.list" >/dev/null
	in_root "dpkg --add-architecture arm64 && apt-get -qq update &&
		DEBIAN_FRONTEND=noninteractive apt-get -y -qq install --no-install-recommends \
		$(echo $PKGS)" >&2 || die "installing the toolchain into the $SUITE chroot failed"
	$SUDO touch "$ROOT/.cmabuf-ready"
fi
# Refresh the chroot's package lists at most once a day.
if [ -z "$(find "$ROOT/.cmabuf-updated" -mmin -1440 2>/dev/null)" ]; then
	if in_root "apt-get -qq update" >&2; then
		$SUDO touch "$ROOT/.cmabuf-updated"
	else
		log "apt-get update in the $SUITE chroot failed: using the lists it has"
	fi
fi

# --- the kernel: the newest 7.x+debNN-arm64 built with this chroot's rustc ------------------
rustc_v=$(in_root "rustc -V")
# Headers of an ABI, extracted into the chroot (not installed: they are arm64, the chroot amd64).
fetch_headers() {
	local abi=$1
	[ -f "$ROOT/usr/src/linux-headers-$abi/.config" ] && return 0
	in_root "cd /root && rm -f *.deb && apt-get -qq download linux-headers-$abi:arm64 2>/dev/null &&
		DEBIAN_FRONTEND=noninteractive apt-get -y -qq install --no-install-recommends \
		linux-kbuild-${abi%-arm64} linux-headers-${abi%-arm64}-common >/dev/null &&
		dpkg-deb -x linux-headers-${abi}_*.deb /" >&2
}
# unpack_ko SRC DST: a module as a plain .ko (busybox modprobe and our checks read no
# compressed ones).
unpack_ko() {
	case $1 in
	*.xz) xz -dc "$1" > "$2" ;;
	*.zst) zstd -qdc "$1" > "$2" ;;
	*) cp "$1" "$2" ;;
	esac
}
rustc_of() { sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$ROOT/usr/src/linux-headers-$1/.config"; }
newest=$(in_root "apt-cache search --names-only '^linux-headers-${SERIES//./\\.}\.[0-9]*\+$TAG-arm64\$'" |
	awk '{print $1}' | sed 's/^linux-headers-//' | sort -V | tail -n1)
[ -n "$newest" ] || { log "no linux-headers-$SERIES.*+$TAG-arm64 in $SUITE $EXTRA_SOURCES"; exit $MOVED_ON; }
fetch_headers "$newest" || die "fetching the headers of Debian's $newest failed"
abi=$newest
if [ "$(rustc_of "$newest")" != "$rustc_v" ]; then
	# The suite moved on: its newest kernel and its rustc disagree. Fall back to a kernel
	# fetched before (cached in this chroot) that was built with this rustc.
	log "Debian's $newest was built with '$(rustc_of "$newest")', but $SUITE's rustc is" \
		"'$rustc_v': a module built with it would not match the kernel's Rust symbols"
	abi=
	for h in $(ls -d "$ROOT"/usr/src/linux-headers-$SERIES.*+$TAG-arm64 2>/dev/null | sort -rV); do
		a=${h##*/linux-headers-}
		if [ "$(rustc_of "$a")" = "$rustc_v" ] && [ -f "$CACHE/debian/$a-vmlinuz" ]; then
			abi=$a
			break
		fi
	done
	if [ -z "$abi" ]; then
		log "no $SUITE kernel built with '$rustc_v' is at hand (the archive's state, not a" \
			"cmabuf failure)"
		exit $MOVED_ON
	fi
	log "falling back to Debian's $abi (cached), built with this rustc"
fi
series=$(echo "$abi" | cut -d. -f1,2)
H=/usr/src/linux-headers-$abi
KD=$CACHE/debian/$abi-$(echo "v2 $rustc_v" | sha256sum | cut -c1-12)
if [ ! -f "$KD/.cmabuf-ready" ]; then
	log "Debian's $abi: kernel image, modules, linux-source-$series (first run only)"
	$SUDO rm -rf "$KD"
	mkdir -p "$KD"
	in_root "cd /root && rm -f *.deb && DEBIAN_FRONTEND=noninteractive apt-get -y -qq install \
		--no-install-recommends linux-source-$series >/dev/null &&
		apt-get -qq download linux-binary-$abi:arm64 linux-modules-$abi:arm64 2>/dev/null" >&2 ||
		die "fetching Debian's $abi packages failed"
	dpkg-deb --fsys-tarfile "$ROOT"/root/linux-binary-"${abi}"_*.deb |
		tar -xO "./usr/lib/modules/$abi/vmlinuz" > "$KD/vmlinuz" || die "no vmlinuz in linux-binary-$abi"
	mkdir -p "$KD/modules"
	dpkg-deb -x "$ROOT"/root/linux-modules-"${abi}"_*.deb "$KD/modules"
	[ -d "$KD/modules/usr/lib/modules/$abi" ] || die "no modules in linux-modules-$abi"
	# (The package ships no modules.order or modules.builtin*: empty ones keep depmod quiet.)
	touch "$KD/modules/usr/lib/modules/$abi/"modules.{order,builtin,builtin.modinfo}
	depmod -b "$KD/modules/usr" "$abi" || die "depmod over Debian's $abi modules failed"
	in_root "rm -f /root/*.deb"
	cp "$KD/vmlinuz" "$CACHE/debian/$abi-vmlinuz"
	touch "$KD/.cmabuf-ready"
fi
log "Debian's $abi, built with $rustc_v (this chroot's rustc)"

# --- cmabuf-dkms, installed as a Debian user installs it: DKMS builds the module ---------
dkms_deb=$(ls "$DEBDIR"/cmabuf-dkms_*_all.deb) || die "no cmabuf-dkms package in $DEBDIR"
tools_deb=$(ls "$DEBDIR"/cmabuf-tools_*_arm64.deb) || die "no cmabuf-tools package in $DEBDIR"
# cmabuf-tools as Debian ships programs: cmabufctl linked dynamically against libc6 (dh_shlibdeps
# made the dependency), with its manual page.
dpkg-deb -c "$tools_deb" | grep -q ' ./usr/share/man/man1/cmabufctl\.1\.gz$' ||
	die "$(basename "$tools_deb") has no manual page cmabufctl(1)"
dpkg-deb -f "$tools_deb" Depends | grep -q 'libc6 (>= ' ||
	die "$(basename "$tools_deb") does not depend on libc6: cmabufctl is not linked against it"
# The packages pass the suite's lintian without an error (warnings are logged). (Installed apart
# from the toolchain: a new package there would remake the chroot and its kernels' metadata.)
in_root "dpkg-query -W -f='\${Status}' lintian 2>/dev/null | grep -q 'ok installed' ||
	DEBIAN_FRONTEND=noninteractive apt-get -y -qq install --no-install-recommends lintian" \
	> /dev/null || die "installing lintian into the $SUITE chroot failed"
$SUDO rm -rf "$ROOT/tmp/lintian"
$SUDO mkdir -p "$ROOT/tmp/lintian"
$SUDO cp "$dkms_deb" "$tools_deb" "$ROOT/tmp/lintian/"
if in_root "cd /tmp/lintian && lintian --fail-on error --no-tag-display-limit *.deb" \
	> "$OUTDIR/lintian.log" 2>&1; then
	log "lintian $(in_root "lintian --print-version"): no error in $(basename "$dkms_deb")," \
		"$(basename "$tools_deb") ($(grep -c '^W: ' "$OUTDIR/lintian.log") warnings:" \
		"$(grep -o '^W: [^ ]* [^ ]*' "$OUTDIR/lintian.log" | cut -d' ' -f3 | sort -u | tr '\n' ' '))"
else
	cat "$OUTDIR/lintian.log" >&2
	die "lintian reports errors in cmabuf's packages"
fi
$SUDO cp "$dkms_deb" "$ROOT/tmp/"
$SUDO rm -f "$ROOT"/lib/modules/"$abi"/updates/dkms/cmabuf.ko*
# A run that failed in the package's postinst leaves it half-configured, which apt will not
# reinstall from a file: take it out first.
in_root "dpkg-query -W -f='\${Status}' cmabuf-dkms 2>/dev/null | grep -q 'ok installed' ||
	dpkg --purge --force-remove-reinstreq cmabuf-dkms" > /dev/null 2>&1 || true
log "apt install ./$(basename "$dkms_deb") in the $SUITE chroot (DKMS builds cmabuf.ko for $abi)"
in_root "cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get -y -qq install --reinstall \
	--no-install-recommends ./$(basename "$dkms_deb")" > "$OUTDIR/dkms-install.log" 2>&1 ||
	{ cat "$OUTDIR/dkms-install.log" >&2; die "installing cmabuf-dkms failed"; }
ko=$(ls "$ROOT"/lib/modules/"$abi"/updates/dkms/cmabuf.ko* 2>/dev/null | head -n1)
[ -n "$ko" ] || { cat "$OUTDIR/dkms-install.log" "$ROOT"/var/lib/dkms/cmabuf/*/"$abi"/*/log/make.log >&2
	die "DKMS did not install cmabuf.ko for $abi"; }
unpack_ko "$ko" "$OUTDIR/cmabuf.ko"
cat "$ROOT"/var/lib/dkms/cmabuf/*/"$abi"/*/log/make.log > "$OUTDIR/dkms-make.log" 2>/dev/null
grep '^cmabuf:' "$OUTDIR/dkms-make.log" | sed 's/^/[dkms] /' >&2
undef=$(aarch64-linux-gnu-nm -u "$OUTDIR/cmabuf.ko" | awk '{print $2}' | sort -u)
missing=$(comm -23 <(echo "$undef") <(awk '{print $2}' "$ROOT$H/Module.symvers" | sort -u))
[ -z "$missing" ] || die "symbols of DKMS's cmabuf.ko not exported by $abi: $missing"
vermagic=$(modinfo -F vermagic "$OUTDIR/cmabuf.ko")
[ "${vermagic%% *}" = "$abi" ] || die "DKMS's cmabuf.ko has vermagic '$vermagic', not $abi"
log "DKMS's cmabuf.ko for $abi: $(echo "$undef" | wc -l) undefined symbols" \
	"($(echo "$undef" | grep -c '^_R') of them Rust), all in Module.symvers; vermagic $abi"

# --- the Makefile against the headers, as the README tells a user (clippy, warnings fail) ---
log "make KDIR=$H clippy (the repository's Makefile, $rustc_v; warnings fail)"
$SUDO rm -rf "$ROOT/tmp/cmabuf" "$ROOT/tmp/importer"
$SUDO mkdir -p "$ROOT/tmp/cmabuf"
(cd "$CMABUF_ROOT" && git ls-files -z --cached --others --exclude-standard Makefile Kbuild src include |
	xargs -0 -I{} $SUDO cp --parents {} "$ROOT/tmp/cmabuf/")
$SUDO cp -r "$CMABUF_ROOT/tools/testing/selftests/cmabuf/importer" "$ROOT/tmp/importer"
in_root "cd /tmp/cmabuf && make KDIR=$H clippy" > "$OUTDIR/clippy.log" 2>&1 ||
	{ cat "$OUTDIR/clippy.log" >&2; die "make KDIR=$H clippy failed"; }
if grep -qE '^(warning|error)' "$OUTDIR/clippy.log"; then
	cat "$OUTDIR/clippy.log" >&2
	die "warnings building cmabuf.ko with $rustc_v"
fi
in_root "make -s -C $H M=/tmp/importer modules" > "$OUTDIR/importer.log" 2>&1 ||
	{ cat "$OUTDIR/importer.log" >&2; die "the test importer module does not build for $abi"; }

# --- the board's root file system with Debian's modules ---------------------------------------
# The caller may still be building IR_BASE: it touches IR_BASE.done when it is complete.
while [ ! -e "$IRBASE.done" ]; do
	[ -z "${CMABUF_PARENT:-}" ] || kill -0 "$CMABUF_PARENT" 2>/dev/null ||
		die "the caller went away before $IRBASE was complete"
	sleep 0.5
done
IR=$OUTDIR/initramfs
rm -rf "$IR"
cp -a "$IRBASE" "$IR"
mods=$IR/lib/modules/$abi
mkdir -p "$mods/updates/dkms"
# What the tests load (vivid, vgem, the scratch disk's virtio-mmio and virtio-blk) and everything
# they depend on, uncompressed (busybox modprobe reads plain .ko files).
deps=$(modprobe -d "$KD/modules/usr" -S "$abi" --show-depends -a vivid vgem virtio_mmio virtio_blk) ||
	die "vivid, vgem, virtio_mmio or virtio_blk missing from Debian's $abi modules"
for m in $(echo "$deps" | awk '$1 == "insmod" {print $2}' | sort -u); do
	rel=${m#"$KD/modules/usr/lib/modules/$abi/"}
	mkdir -p "$mods/$(dirname "$rel")"
	unpack_ko "$m" "$mods/${rel%.ko*}.ko"
done
cp "$OUTDIR/cmabuf.ko" "$mods/updates/dkms/cmabuf.ko"
cp "$KD"/modules/usr/lib/modules/"$abi"/modules.{builtin,builtin.modinfo,order} "$mods/"
depmod -b "$IR" "$abi" || die "depmod for the stock board failed"
# cmabuf-tools as the package installs it (cmabufctl, the udev rule; the board runs mdev), with
# what apt installs for it: its cmabufctl is linked against Debian's glibc (the board's other
# programs are busybox and static tests), so the suite's libc6 and libgcc-s1 come too, and the
# ELF interpreter where merged /usr puts it (/lib is a directory of the board's own).
dpkg-deb -x "$tools_deb" "$IR"
in_root "cd /root && rm -f libc6_*.deb libgcc-s1_*.deb &&
	apt-get -qq download libc6:arm64 libgcc-s1:arm64" > "$OUTDIR/libc.log" 2>&1 ||
	{ cat "$OUTDIR/libc.log" >&2; die "fetching $SUITE's libc6 and libgcc-s1 for arm64 failed"; }
for d in "$ROOT"/root/libc6_*_arm64.deb "$ROOT"/root/libgcc-s1_*_arm64.deb; do
	dpkg-deb -x "$d" "$IR"
done
ln -sfn ../usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 "$IR/lib/ld-linux-aarch64.so.1"
cp "$ROOT/tmp/importer/cmabuf_test_importer.ko" "$IR/kselftest/cmabuf/"
make_cpio "$IR" "$OUTDIR/initramfs.cpio"
echo "$abi" > "$OUTDIR/abi"
cp "$KD/vmlinuz" "$OUTDIR/vmlinuz"
log "stock board ready: Debian's $abi, $(find "$mods" -name '*.ko' | wc -l) modules in its initramfs"
