#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# DKMS PRE_BUILD of cmabuf: make sure the kernel's headers have the Rust metadata an
# out-of-tree Rust module is compiled against (rust/*.rmeta, the proc-macro crates), which
# Debian's linux-headers packages do not ship.
#
#   rust-metadata.sh KERNELRELEASE HEADERS_DIR
#
# 1. The rustc must be the one the kernel was built with: its version text must be the
#    headers' CONFIG_RUSTC_VERSION_TEXT, and a one-line crate named `kernel` must get the
#    crate hash that the kernel's exported Rust symbols carry in Module.symvers (one second).
#    Anything else builds a module whose symbols the kernel does not have.
# 2. If the metadata is missing (or was made with another rustc), it is rebuilt from
#    /usr/src/linux-source-X.Y.tar.xz with the headers' .config (`make modules_prepare`) and
#    copied into HEADERS_DIR/rust/, with a stamp naming the rustc. Once per kernel ABI.
set -eu
kver=${1:?usage: rust-metadata.sh KERNELRELEASE HEADERS_DIR}
H=${2:?usage: rust-metadata.sh KERNELRELEASE HEADERS_DIR}
say() { echo "cmabuf: $*"; }
fail() { echo "cmabuf: error: $*" >&2; exit 1; }

[ -f "$H/.config" ] || fail "$H has no .config: not a kernel headers tree"
grep -qx 'CONFIG_RUST=y' "$H/.config" || fail "$kver is not built with CONFIG_RUST=y"
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$H/.config")
have=$(rustc -V 2>/dev/null) || fail "no rustc: install the one $kver was built with ($want)"
[ "$want" = "$have" ] || fail "$kver was built with '$want', but rustc is '$have':" \
	"a Rust module must be built with the kernel's own rustc (install that version)"

# The crate hash of `kernel` with this rustc, as the kernel's exported symbols carry it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#[no_mangle]\npub static X: fn() = f;\n#[inline(never)]\npub fn f() {}\n' > "$tmp/kernel.rs"
rustc --edition 2021 --crate-type lib --crate-name kernel -C symbol-mangling-version=v0 \
	--emit obj -O "$tmp/kernel.rs" -o "$tmp/kernel.o"
hash=$(nm "$tmp/kernel.o" | grep -o 'Cs[0-9A-Za-z_]*_6kernel' | sort -u | head -n1)
[ -n "$hash" ] || fail "could not compute the crate hash of 'kernel' with $have"
grep -q "	_R[A-Za-z0-9_]*${hash}[0-9]" "$H/Module.symvers" ||
	fail "$have gives the crate hash $hash, which no symbol of $kver's Module.symvers has"
say "$have matches $kver (crate hash $hash)"

stamp=$H/rust/.cmabuf-rustc
if [ -f "$H/rust/libkernel.rmeta" ]; then
	# Shipped with the headers (no stamp), or made by us with this rustc.
	if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" = "$have" ]; then
		say "Rust metadata of $kver present"
		exit 0
	fi
fi

series=$(echo "$kver" | cut -d. -f1,2)
src=/usr/src/linux-source-$series.tar.xz
[ -f "$src" ] || fail "the headers of $kver have no Rust metadata, and $src is missing:" \
	"install linux-source-$series (the same version as the kernel) to build it"
say "making the Rust metadata of $kver from $src (once per kernel ABI; minutes)"
start=$(date +%s)
tar -C "$tmp" -xJf "$src"
S=$tmp/linux-source-$series
cp "$H/.config" "$S/.config"
# Debian's per-flavour variables (ARCH, CROSS_COMPILE, the gcc the kernel names).
[ -f "$H/.kernelvariables" ] && cp "$H/.kernelvariables" "$S/.kernelvariables"
local_version=${kver#"$(make -s -C "$S" kernelversion)"}
make -s -C "$S" LOCALVERSION="$local_version" olddefconfig
# Kconfig drops CONFIG_RUST silently when the toolchain does not qualify: say why.
grep -qx 'CONFIG_RUST=y' "$S/.config" || {
	make -C "$S" LOCALVERSION="$local_version" rustavailable >&2 || true
	fail "the kernel's configuration loses CONFIG_RUST with this toolchain (see above)"
}
make -s -C "$S" -j"$(nproc)" LOCALVERSION="$local_version" modules_prepare
[ "$(make -s -C "$S" LOCALVERSION="$local_version" kernelrelease)" = "$kver" ] ||
	fail "linux-source-$series does not make kernel release $kver (another version?)"
mkdir -p "$H/rust"
cp "$S"/rust/*.rmeta "$S"/rust/lib*.so "$H/rust/"
echo "$have" > "$stamp"
say "Rust metadata of $kver made in $(( $(date +%s) - start )) s, in $H/rust"
