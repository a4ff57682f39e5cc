#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install what the board needs, idempotently: Debian packages from the
# system's own suites, rustup components, bindgen-cli.  Never adds suites to
# the system's apt sources (newer packages come through board/common.sh's
# private apt configuration instead).
. "$(dirname "$0")/common.sh"

PKGS="clang-19 lld-19 llvm-19 libclang-19-dev qemu-system-arm
device-tree-compiler bc bison flex cpio libelf-dev libssl-dev make xz-utils
zstd ca-certificates python3 python3-venv kmod rsync gcc libc6-dev
gcc-aarch64-linux-gnu libc6-dev-arm64-cross gnuplot-nox debootstrap
dpkg-dev debhelper dh-dkms fakeroot"

missing=()
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get -qq update >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get -y -qq install --no-install-recommends "${missing[@]}" >&2
fi

command -v rustup >/dev/null || die "rustup not found: install rustup (https://rustup.rs) first"
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || {
	log "adding rust-src"; rustup component add rust-src >&2; }
for t in "$MUSL_TARGET" "$GNU_TARGET"; do
	rustup target list --installed 2>/dev/null | grep -qx "$t" || {
		log "adding target $t"; rustup target add "$t" >&2; }
done
if ! bindgen --version 2>/dev/null | grep -q "bindgen $BINDGEN_VERSION"; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" >&2
fi
