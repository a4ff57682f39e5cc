# SPDX-License-Identifier: GPL-2.0
# Shared settings for the board scripts.  Sourced, not run.

set -euo pipefail

CMABUF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CMABUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cmabuf}
mkdir -p "$CACHE"

export PATH="$HOME/.cargo/bin:/usr/lib/llvm-19/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
LLVM_SUFFIX=-19
BINDGEN_VERSION=0.72.1
# Supported kernel series, the default first. KERNEL_SERIES=7.3 make check runs the
# suite on another one; adding a series: see README ("Kernel series").
SUPPORTED_SERIES="7.2 7.3"
KERNEL_SERIES=${KERNEL_SERIES:-7.2}
MUSL_TARGET=aarch64-unknown-linux-musl
# cmabuf-tools' cmabufctl: linked against Debian's glibc, cross-linked with the host's gcc.
GNU_TARGET=aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc

# Messages carry the seconds since the first script of the run started (where time goes in a
# make check: the builds, and the boots that run side by side).
CMABUF_T0=${CMABUF_T0:-$(date +%s)}
export CMABUF_T0
log() { printf '[cmabuf %3ss] %s\n' "$(($(date +%s) - CMABUF_T0))" "$*" >&2; }
die() { printf '[cmabuf] error: %s\n' "$*" >&2; exit 1; }

# Private apt configurations: their own sources list, state and cache under a directory of the
# cache, so that fetching packages from other suites never touches the system's apt configuration.
# apt_opts DIR NATIVE [ARCH...]: the options of the one under DIR, for architecture NATIVE and
# the ARCHs (word-split them: apt-get $(apt_opts ...)).
apt_opts() {
	local dir=$1 native=$2 a
	shift 2
	echo "-o Dir::Etc::SourceList=$dir/sources.list" \
	     "-o Dir::Etc::SourceParts=/dev/null" \
	     "-o Dir::Etc::Preferences=/dev/null" \
	     "-o Dir::Etc::PreferencesParts=/dev/null" \
	     "-o Dir::State=$dir/state" \
	     "-o Dir::Cache=$dir/cache" \
	     "-o APT::Architecture=$native"
	for a in "$native" "$@"; do
		echo "-o APT::Architectures::=$a"
	done
	echo "-o APT::Sandbox::User=root -o Debug::NoLocking=1" \
	     "-o Acquire::Languages=none"
}
# apt_setup DIR DIST...: the one under DIR, with the main component of Debian's DISTs.
apt_setup() {
	local dir=$1 d
	shift
	mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial" "$dir/debs"
	for d in "$@"; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $d main"
	done > "$dir/sources.list"
}
# apt_refresh DIR OPTION...: `apt-get update` with those options at most once a day; status 1
# (the lists it has stay) when it fails.
apt_refresh() {
	local dir=$1
	shift
	[ -z "$(find "$dir/state/updated" -mmin -1440 2>/dev/null)" ] || return 0
	apt-get "$@" -qq update >&2 && touch "$dir/state/updated"
}
# The board's own (sid, trixie-backports; amd64 and arm64): papt_*.
PAPT_DIR=$CACHE/apt
papt_opts() {
	apt_opts "$PAPT_DIR" amd64 arm64
}
papt_update() {
	apt_setup "$PAPT_DIR" sid trixie-backports
	# shellcheck disable=SC2046
	apt_refresh "$PAPT_DIR" $(papt_opts) || true
}
# papt_try PKG[:ARCH] -> prints path of the downloaded .deb (newest candidate), or fails
# (status 1, nothing printed) when it is neither offered nor fetched before
papt_try() {
	local pkg=$1 ver deb
	# shellcheck disable=SC2046
	ver=$(apt-cache $(papt_opts) policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		# Not offered (any more): use the newest one fetched before, if any.
		deb=$(ls -v "$PAPT_DIR/debs/${pkg%%:*}_"*.deb 2>/dev/null | tail -n1 || true)
		[ -n "$deb" ] || return 1
		log "$pkg not offered; using cached $(basename "$deb")"
		echo "$deb"
		return
	fi
	deb=$(ls "$PAPT_DIR/debs/${pkg%%:*}_${ver/:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		# shellcheck disable=SC2046
		(cd "$PAPT_DIR/debs" && apt-get $(papt_opts) -qq download "$pkg=$ver" >&2)
		deb=$(ls "$PAPT_DIR/debs/${pkg%%:*}_${ver/:/%3a}_"*.deb | head -n1)
	fi
	echo "$deb"
}
# papt_fetch PKG[:ARCH] -> as papt_try, but a package that cannot be had is fatal
papt_fetch() {
	papt_try "$1" || die "no candidate for $1 in the private apt sources"
}

# dt_compile SRC OUT [-@] [INCLUDE_DIR...]: a device-tree source to a blob as the kernel's
# dtbs rule does (the C preprocessor, then dtc; DTC names the compiler, default the system's).
dt_compile() {
	local src=$1 out=$2 flags=() inc=() d
	shift 2
	if [ "${1:-}" = -@ ]; then
		flags=(-@)
		shift
	fi
	for d in "$@"; do inc+=(-I "$d"); done
	cpp -nostdinc "${inc[@]}" -undef -D__DTS__ -x assembler-with-cpp "$src" -o "$out.pp" ||
		die "preprocessing $src failed"
	"${DTC:-dtc}" -q "${flags[@]}" -I dts -O dtb -o "$out" "$out.pp" || die "dtc: $src"
	rm -f "$out.pp"
}

# userspace_env KDIR: what building the userspace crates needs. The kernel's exported uapi
# headers (for v4l2r's bindings: the system's linux-libc-dev is older than the V4L2 API v4l2r
# knows); the target directory is shared by checkouts, so the ABI's hash, not the header's
# mtime, decides whether our bindings are regenerated (userspace/cmabuf/build.rs).
userspace_env() {
	local kdir=$1
	[ -f "$kdir/usr/include/linux/videodev2.h" ] ||
		make -s -C "$kdir" ARCH=arm64 LLVM=$LLVM_SUFFIX headers >&2
	export V4L2R_VIDEODEV2_H_PATH=$kdir/usr/include/linux
	export BINDGEN_EXTRA_CLANG_ARGS="-I$kdir/usr/include"
	CMABUF_UAPI_SHA=$(sha256sum "$CMABUF_ROOT/include/uapi/linux/cmabuf.h" | cut -c1-16)
	export CMABUF_UAPI_SHA
	# One target directory per kernel tree: v4l2r's bindings follow the headers' path, so make
	# bench (the perf kernel) and make check (the debug kernel) sharing one would each rebuild
	# everything after the other (20 s).
	export CARGO_TARGET_DIR=$CACHE/userspace-target-$(basename "$kdir")
	# Cargo's fingerprints include the workspace's path: built in place, every fresh clone would
	# rebuild the LTO release binaries (half a minute) though nothing changed. So the sources
	# (and the ABI header build.rs reads) are mirrored by content to one place in the cache,
	# and built there: files whose content did not change keep their old mtimes.
	local src=$CACHE/userspace-src
	mkdir -p "$src/include/uapi/linux"
	rsync -rlc --delete --exclude /target "$CMABUF_ROOT/userspace/" "$src/userspace/"
	rsync -c "$CMABUF_ROOT/include/uapi/linux/cmabuf.h" "$src/include/uapi/linux/"
	export USERSPACE_DIR=$src/userspace
}

# make_cpio DIR OUT: DIR as an initramfs (newc, everything owned by root) with /dev/console for
# the kernel to open before init; with the kernel tree's gen_init_cpio ($GEN_INIT_CPIO).
make_cpio() {
	local dir=$1 p
	{
		echo "dir /dev 0755 0 0"
		echo "nod /dev/console 0600 0 0 c 5 1"
		(cd "$dir" && find . -mindepth 1 | sed 's|^\.||' | sort) | while read -r p; do
			if [ -L "$dir$p" ]; then
				echo "slink $p $(readlink "$dir$p") 0777 0 0"
			elif [ -d "$dir$p" ]; then
				[ "$p" = /dev ] || echo "dir $p 0755 0 0"
			else
				echo "file $p $dir$p $(stat -c %a "$dir$p") 0 0"
			fi
		done
	} > "$2.list"
	"${GEN_INIT_CPIO:?GEN_INIT_CPIO: usr/gen_init_cpio of a kernel tree}" "$2.list" > "$2"
}
