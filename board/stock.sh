#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# cmabuf on the kernel Debian users already run: Debian's stock arm64 kernel of
# trixie-backports (7.3.x+deb13-arm64, built with gcc 14 and trixie's rustc 1.85.1).
#
#   board/stock.sh CMABUFCTL BUSYBOX DTB OUT_CONSOLE
#
# 1. A trixie chroot (debootstrap, cached) with the exact toolchain the kernel names:
#    rustc (checked against the headers' CONFIG_RUSTC_VERSION_TEXT and, in a second, against
#    the crate hash of the `kernel` crate in Module.symvers), rust-src, rust-clippy, bindgen,
#    the cross gcc.
# 2. The headers package has no Rust metadata: it is rebuilt once per kernel ABI and rustc
#    from linux-source-X.Y with the headers' .config (modules_prepare) and copied in (cached).
# 3. cmabuf.ko is built against the headers tree the way the README tells a user (gcc
#    kernel: LLVM= empty, CROSS_COMPILE=), with clippy; any warning fails. Every undefined
#    symbol must be in the headers' Module.symvers; vermagic must be the kernel's.
# 4. Debian's own vmlinuz boots in the board with that module, cmabufctl and busybox; the
#    tests there (KTAP) go to OUT_CONSOLE for report.py.
. "$(dirname "$0")/common.sh"

CTL=$1 BB=$2 DTB=$3 OUT=$4
SUITE=trixie
MIRROR=http://deb.debian.org/debian
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

# --- the chroot --------------------------------------------------------------
PKGS="ca-certificates rustc rust-src rust-clippy bindgen libclang-dev clang llvm
gcc-14-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross make bc flex
bison libelf-dev libssl-dev python3 kmod dwarves cpio pkg-config xz-utils"
key=$(echo "$SUITE $PKGS" | sha256sum | cut -c1-12)
ROOT=$CACHE/debian/$SUITE-$key
in_root() { $SUDO chroot "$ROOT" /bin/sh -c "$*"; }
if [ ! -f "$ROOT/.cmabuf-ready" ]; then
	log "making a $SUITE chroot with Debian's kernel toolchain (first run only: ~1-2 min)"
	$SUDO rm -rf "$ROOT"
	mkdir -p "$(dirname "$ROOT")"
	$SUDO debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >&2 ||
		die "debootstrap $SUITE failed"
	echo "deb $MIRROR $SUITE-backports main" | $SUDO tee "$ROOT/etc/apt/sources.list.d/bpo.list" >/dev/null
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

# --- the kernel: the newest 7.x+deb13-arm64 on offer ----------------------------------------
abi=$(in_root "apt-cache search --names-only '^linux-headers-7\.[0-9.]*\+deb13-arm64\$'" |
	awk '{print $1}' | sed 's/^linux-headers-//' | sort -V | tail -n1)
[ -n "$abi" ] || die "no linux-headers-7.*+deb13-arm64 in $SUITE(-backports)"
series=$(echo "$abi" | cut -d. -f1,2)
rustc_v=$(in_root "rustc -V")
KD=$CACHE/debian/$abi-$(echo "$rustc_v" | sha256sum | cut -c1-12)
H=/usr/src/linux-headers-$abi
if [ ! -f "$KD/.cmabuf-ready" ]; then
	log "Debian's $abi: headers, kernel image, Rust metadata from linux-source-$series (first run only: ~2 min)"
	in_root "cd /root && rm -f *.deb && DEBIAN_FRONTEND=noninteractive apt-get -y -qq install \
		--no-install-recommends linux-kbuild-${abi%-arm64} linux-headers-${abi%-arm64}-common \
		linux-source-$series && apt-get -qq download linux-headers-$abi:arm64 \
		linux-binary-$abi:arm64 2>/dev/null && dpkg-deb -x linux-headers-${abi}_*.deb / &&
		dpkg-deb -x linux-binary-${abi}_*.deb /root/binary" >&2 ||
		die "fetching Debian's $abi packages failed"
	# The rustc the kernel was built with, by its version text and by the crate hash.
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$ROOT$H/.config")
	[ "$want" = "$rustc_v" ] ||
		die "$abi was built with '$want'; $SUITE now has '$rustc_v': its Rust ABI differs"
	got=$(in_root "cd /tmp && printf '#[no_mangle]\npub static X: fn() = f;\n#[inline(never)] pub fn f() {}\n' > kernel.rs &&
		rustc --edition 2021 --crate-type lib --crate-name kernel -C symbol-mangling-version=v0 \
		--emit obj -O kernel.rs -o kernel.o && nm kernel.o" | grep -o 'Cs[0-9A-Za-z_]*_6kernel' | sort -u)
	grep -q "${got}[0-9]" "$ROOT$H/Module.symvers" ||
		die "the crate hash of 'kernel' with $rustc_v ($got) is not in $abi's Module.symvers"
	log "$rustc_v gives the kernel's crate hash $got"
	in_root "cd /usr/src && rm -rf linux-source-$series && tar -xJf linux-source-$series.tar.xz &&
		cd linux-source-$series && cp $H/.config . &&
		make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc-14 \
			LOCALVERSION=+${abi#*+} olddefconfig &&
		make -s -j$(nproc) ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
			CC=aarch64-linux-gnu-gcc-14 LOCALVERSION=+${abi#*+} modules_prepare &&
		mkdir -p $H/rust && cp rust/*.rmeta rust/lib*.so $H/rust/ &&
		cd .. && rm -rf linux-source-$series" >&2 ||
		die "rebuilding the Rust metadata of $abi failed"
	mkdir -p "$KD"
	cp "$ROOT/root/binary/usr/lib/modules/$abi/vmlinuz" "$KD/vmlinuz"
	touch "$KD/.cmabuf-ready"
fi

# --- the module, as a user builds it ----------------------------------------
log "building cmabuf.ko for Debian's $abi with $rustc_v (clippy; warnings fail)"
$SUDO rm -rf "$ROOT/tmp/cmabuf"
$SUDO mkdir -p "$ROOT/tmp/cmabuf"
$SUDO cp -r "$CMABUF_ROOT/Makefile" "$CMABUF_ROOT/Kbuild" "$CMABUF_ROOT/src" \
	"$CMABUF_ROOT/include" "$ROOT/tmp/cmabuf/"
$SUDO rm -f "$ROOT"/tmp/cmabuf/src/*.o "$ROOT"/tmp/cmabuf/src/*.ko "$ROOT"/tmp/cmabuf/src/.*.cmd \
	"$ROOT/tmp/cmabuf/src/uapi_generated.rs"
in_root "cd /tmp/cmabuf && make KDIR=$H ARCH=arm64 LLVM= CROSS_COMPILE=aarch64-linux-gnu- \
	CC=aarch64-linux-gnu-gcc-14 clippy" > "$KD/module-build.log" 2>&1 ||
	{ cat "$KD/module-build.log" >&2; die "cmabuf.ko does not build for $abi"; }
if grep -qE '^(warning|error)' "$KD/module-build.log"; then
	cat "$KD/module-build.log" >&2
	die "warnings building cmabuf.ko with $rustc_v"
fi
KO=$ROOT/tmp/cmabuf/src/cmabuf.ko
undef=$(in_root "aarch64-linux-gnu-nm -u /tmp/cmabuf/src/cmabuf.ko" | awk '{print $2}' | sort -u)
missing=$(comm -23 <(echo "$undef") <(awk '{print $2}' "$ROOT$H/Module.symvers" | sort -u))
[ -z "$missing" ] || die "symbols of cmabuf.ko not exported by $abi: $missing"
vermagic=$(in_root "modinfo -F vermagic /tmp/cmabuf/src/cmabuf.ko")
[ "${vermagic%% *}" = "$abi" ] || die "cmabuf.ko has vermagic '$vermagic', not $abi"
log "cmabuf.ko for $abi: $(echo "$undef" | wc -l) undefined symbols, all in Module.symvers; vermagic $abi"

# --- Debian's kernel in the board ---------------------------------------------------------
IR=$(mktemp -d)
mkdir -p "$IR/bin" "$IR/dev" "$IR/proc" "$IR/sys" "$IR/tmp"
cp "$BB" "$IR/bin/busybox"
cp "$KO" "$CTL" "$CMABUF_ROOT/board/stock-init.sh" "$IR/"
mv "$IR/stock-init.sh" "$IR/init"
chmod +x "$IR/init"
(cd "$IR" && find . | cpio -o -H newc 2>/dev/null | gzip) > "$KD/initramfs.cpio.gz"
rm -rf "$IR"
log "booting Debian's $abi with cmabuf (console log: $OUT)"
timeout 300 qemu-system-aarch64 -machine virt -cpu cortex-a72 -smp 2 -m 1G -nic none \
	-nographic -no-reboot -kernel "$KD/vmlinuz" -dtb "$DTB" -initrd "$KD/initramfs.cpio.gz" \
	-append "console=ttyAMA0 panic=-1 loglevel=4" < /dev/null > "$OUT" 2>&1 || true
