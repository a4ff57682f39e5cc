#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make deb: the Debian packages, built with Debian's own tools (dpkg-buildpackage, debhelper,
# dh-dkms) from debian/ for arm64:
#   cmabuf-dkms_<version>_all.deb     the module's sources for DKMS (/usr/src/cmabuf-<version>)
#   cmabuf-tools_<version>_arm64.deb  cmabufctl (static), the udev rule, the docs
#
#   board/deb.sh [OUTDIR]     (default build/deb); prints the two paths
#
# cmabufctl is built with the host's cargo for aarch64-unknown-linux-gnu (linked against glibc, as
# Debian links programs), against the board kernel's uapi headers, and its manual pages are
# generated from its command line's definition by a program built for this machine;
# CMABUFCTL=<path> and CMABUF_MAN=<dir> package ones made before instead.
. "$(dirname "$0")/common.sh"

out=${1:-${O_BOARD:-$CMABUF_ROOT/build}/deb}
"$CMABUF_ROOT/board/setup.sh"
if [ -z "${CMABUFCTL:-}" ] || [ -z "${CMABUF_MAN:-}" ]; then
	KDIR=$("$CMABUF_ROOT/board/kernel.sh")
	userspace_env "$KDIR"
fi

upstream=$(dpkg-parsechangelog -l "$CMABUF_ROOT/debian/changelog" -S Version | sed 's/-[^-]*$//')
stage=$out/cmabuf-$upstream
rm -rf "$out"
mkdir -p "$stage"
# The sources as git sees them (tracked and new files, with uncommitted edits; nothing ignored).
(cd "$CMABUF_ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$stage/") 2>/dev/null ||
	rsync -a --exclude /build --exclude .git --exclude /userspace/target --exclude '*.o' \
		--exclude '*.ko' --exclude '.*.cmd' "$CMABUF_ROOT/" "$stage/"
log "building the Debian packages (dpkg-buildpackage -aarm64) in $stage"
(cd "$stage" && DEB_BUILD_OPTIONS=nocheck CMABUFCTL=${CMABUFCTL:-} CMABUF_MAN=${CMABUF_MAN:-} dpkg-buildpackage -aarm64 -b -us -uc -d) \
	> "$out/build.log" 2>&1 || { tail -n 40 "$out/build.log" >&2; die "dpkg-buildpackage failed (log: $out/build.log)"; }
ls "$out"/cmabuf-dkms_*_all.deb "$out"/cmabuf-tools_*_arm64.deb || die "no packages in $out"
