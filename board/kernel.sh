#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fetch Debian's linux-source-$KERNEL_SERIES (newest offered; default 7.2) through
# the private apt configuration, configure it from allnoconfig plus board/kernel.config and
# build it with LLVM.  The built tree is cached outside the clone, keyed by
# kernel version, config fragment and toolchain versions; a warm run only
# prints its path.
#
# Usage: board/kernel.sh [debug|perf] -> prints the kernel build tree (KDIR)
#   debug (default): kernel.config + debug.config, for `make check`/`make run`
#   perf:            kernel.config only, for `make bench`
. "$(dirname "$0")/common.sh"

flavor=${1:-debug}
case $flavor in
debug) FRAGMENTS=("$CMABUF_ROOT/board/kernel.config" "$CMABUF_ROOT/board/debug.config") ;;
perf) FRAGMENTS=("$CMABUF_ROOT/board/kernel.config") ;;
*) die "unknown kernel flavor $flavor" ;;
esac

papt_update
# The series asked for; if it is neither offered any more nor cached, the next supported
# one (unless KERNEL_SERIES_STRICT=1, as for the extra series make check builds against).
if ! deb=$(papt_try "linux-source-$KERNEL_SERIES"); then
	[ "${KERNEL_SERIES_STRICT:-0}" = 1 ] && die "linux-source-$KERNEL_SERIES is not offered and not cached"
	for s in $SUPPORTED_SERIES; do
		[ "$s" = "$KERNEL_SERIES" ] && continue
		if deb=$(papt_try "linux-source-$s"); then
			log "linux-source-$KERNEL_SERIES is no longer offered and not cached: using $s instead"
			break
		fi
	done
	[ -n "${deb:-}" ] || die "no supported kernel series ($SUPPORTED_SERIES) is offered or cached"
fi
kver=$(basename "$deb" | cut -d_ -f2)

key=$( { echo "$kver"; cat "${FRAGMENTS[@]}"; rustc -V;
	 clang$LLVM_SUFFIX --version | head -n1; bindgen --version; } |
	 sha256sum | cut -c1-16)
kdir=$CACHE/kernel/$kver-$flavor-$key
if [ -f "$kdir/.cmabuf-built" ]; then
	echo "$kdir"
	exit 0
fi
# One build at a time: a second caller waits, then finds it built.
mkdir -p "$CACHE/kernel"
exec 9> "$CACHE/kernel/.lock"
flock 9
if [ -f "$kdir/.cmabuf-built" ]; then
	echo "$kdir"
	exit 0
fi

log "building the $flavor kernel $kver into $kdir (first run only: ~5-10 min on 2 cores)"
rm -rf "$kdir" "$kdir.tmp"
mkdir -p "$kdir.tmp"
dpkg-deb --fsys-tarfile "$deb" |
	tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
	tar -xJ -C "$kdir.tmp" --strip-components=1
mv "$kdir.tmp" "$kdir"

mk() { make -C "$kdir" ARCH=arm64 LLVM=$LLVM_SUFFIX -j"$(nproc)" "$@"; }
mk -s allnoconfig >&2
(cd "$kdir" && ARCH=arm64 LLVM=$LLVM_SUFFIX scripts/kconfig/merge_config.sh -m \
	.config "${FRAGMENTS[@]}" >&2)
mk -s olddefconfig >&2
# Every option of the fragment must have survived dependency resolution.
bad=0
while IFS= read -r line; do
	case "$line" in CONFIG_*=n) opt=${line%%=*}
		grep -q "^$opt=" "$kdir/.config" && { log "not disabled: $opt"; bad=1; } ;;
	CONFIG_*) grep -qx "$line" "$kdir/.config" || { log "not set: $line"; bad=1; } ;;
	esac
done < <(cat "${FRAGMENTS[@]}")
[ $bad = 0 ] || die "config fragment did not apply (see above); check rustc/bindgen/clang"

mk Image modules >&2
touch "$kdir/.cmabuf-built"
echo "$kdir"
