#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make install / make uninstall: cmabuf on a board's root file system.
#
#   board/install.sh install ROOT     ROOT/lib/modules/<release>/updates/src/cmabuf.ko (the kernel's
#                                     modules_install, then depmod), ROOT/etc/udev/rules.d/
#                                     60-cmabuf.rules, ROOT/usr/bin/cmabufctl (static), and the
#                                     same rule for busybox mdev if ROOT/etc/mdev.conf exists
#   board/install.sh uninstall ROOT   takes all of it away again (depmod re-run)
#
# Environment: KDIR (the kernel tree the module is built against), ARCH and LLVM (as for
# make; default arm64 and -19), CMABUFCTL (a static cmabufctl already built for the board;
# built here otherwise).
. "$(dirname "$0")/common.sh"

action=${1:?usage: install.sh install|uninstall ROOT}
root=${2:?usage: install.sh install|uninstall ROOT}
KDIR=${KDIR:?KDIR: the kernel tree}
KBUILD=(ARCH="${ARCH:-arm64}" LLVM="${LLVM:-$LLVM_SUFFIX}")
release=$(make -s -C "$KDIR" kernelrelease)
modlib=$root/lib/modules/$release
# Where the kernel's modules_install puts it: INSTALL_MOD_DIR, then its path in this tree.
ko_rel=updates/src/cmabuf.ko
rule=$root/etc/udev/rules.d/60-cmabuf.rules
ctl=$root/usr/bin/cmabufctl
mdev=$root/etc/mdev.conf
MDEV_BEGIN="# cmabuf: begin (make install)"
MDEV_END="# cmabuf: end"

# depmod for ROOT, as the kernel's modules_install runs it.
depmod_root() {
	depmod -ae -F "$KDIR/System.map" -b "$root" "$release" || die "depmod failed"
}

# ROOT/etc/mdev.conf without our block.
mdev_strip() {
	sed -i "/^$MDEV_BEGIN\$/,/^$MDEV_END\$/d" "$mdev"
}

case $action in
install)
	[ -d "$root" ] || die "$root is not a directory"
	ko=$CMABUF_ROOT/src/cmabuf.ko
	# Build the module unless it is built for this kernel from the current sources.
	if [ ! -f "$ko" ] || [ -n "$(find "$CMABUF_ROOT/src" \( -name '*.rs' -o -name '*.c' -o -name Kbuild \) -newer "$ko")" ] ||
		! modinfo -F vermagic "$ko" | grep -q "^$release "; then
		make -s -C "$KDIR" "${KBUILD[@]}" M="$CMABUF_ROOT" modules >&2 ||
			die "module build failed"
	fi
	make -s -C "$KDIR" "${KBUILD[@]}" M="$CMABUF_ROOT" INSTALL_MOD_PATH="$root" \
		modules_install >&2 || die "modules_install failed"
	# modules_install skips depmod without System.map or depmod: never silently.
	[ -f "$modlib/$ko_rel" ] || die "modules_install did not install $ko_rel"
	grep -q "^$ko_rel:" "$modlib/modules.dep" 2>/dev/null || depmod_root
	grep -q "^$ko_rel:" "$modlib/modules.dep" || die "cmabuf.ko is not in modules.dep"

	if [ -z "${CMABUFCTL:-}" ]; then
		userspace_env "$KDIR"
		(cd "$CMABUF_ROOT/userspace" &&
			cargo build -q --release --locked --target "$MUSL_TARGET" -p cmabufctl >&2) ||
			die "cmabufctl build failed"
		CMABUFCTL=$CARGO_TARGET_DIR/$MUSL_TARGET/release/cmabufctl
	fi
	install -D -m 0755 "$CMABUFCTL" "$ctl"
	install -D -m 0644 "$CMABUF_ROOT/userspace/udev/60-cmabuf.rules" "$rule"
	if [ -f "$mdev" ]; then
		mdev_strip
		{ echo "$MDEV_BEGIN"; grep -v '^#' "$CMABUF_ROOT/userspace/udev/mdev.conf"; echo "$MDEV_END"; } \
			>> "$mdev"
	fi
	log "installed into $root: lib/modules/$release/$ko_rel, ${rule#"$root"/}," \
		"${ctl#"$root"/}$([ -f "$mdev" ] && echo ", etc/mdev.conf rule")"
	;;
uninstall)
	rm -f "$modlib/$ko_rel" "$rule" "$ctl"
	[ -f "$mdev" ] && mdev_strip
	# What install -D and modules_install created, if nothing else is in it.
	rmdir "$(dirname "$modlib/$ko_rel")" "$modlib/updates" "$root/etc/udev/rules.d" "$root/etc/udev" \
		2>/dev/null || true
	[ -d "$modlib" ] && depmod_root
	log "uninstalled from $root"
	;;
*) die "usage: install.sh install|uninstall ROOT" ;;
esac
