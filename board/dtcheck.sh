#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The device-tree binding, checked as the kernel's `make dt_binding_check` does,
# the real-board overlays applied and verified (board/boards.sh), and the cmabuf
# nodes of every board (those and the given DTBs) validated against it with dt-validate.
#
# Usage: board/dtcheck.sh KDIR OUT DTB...      (OUT: where the boards' DTBs go)
# dtschema and yamllint (pinned) live in a venv under the cache; the processed
# schema (all of the kernel's bindings plus ours, slow to make) is cached,
# keyed by kernel version, dtschema version and our binding.
. "$(dirname "$0")/common.sh"

KDIR=${1:?usage: dtcheck.sh KDIR OUT DTB...}
OUT=${2:?usage: dtcheck.sh KDIR OUT DTB...}
shift 2
DTSCHEMA_VERSION=2026.9
YAMLLINT_VERSION=1.38.0
BINDING=$CMABUF_ROOT/Documentation/devicetree/bindings/misc/cmabuf,dma-buffer.yaml

venv=$CACHE/dtschema-$DTSCHEMA_VERSION
if [ ! -x "$venv/bin/dt-validate" ]; then
	log "installing dtschema $DTSCHEMA_VERSION and yamllint $YAMLLINT_VERSION into $venv"
	rm -rf "$venv"
	python3 -m venv "$venv" >&2
	"$venv/bin/pip" install -q "dtschema==$DTSCHEMA_VERSION" "yamllint==$YAMLLINT_VERSION" >&2
fi
export PATH="$venv/bin:$PATH"

"$venv/bin/yamllint" -c "$KDIR/Documentation/devicetree/bindings/.yamllint" "$BINDING" >&2 ||
	die "yamllint: $BINDING"
dt-doc-validate -u "$KDIR/Documentation/devicetree/bindings" "$BINDING" >&2 ||
	die "dt-doc-validate: $BINDING"

key=$( { basename "$KDIR" | cut -d- -f1; echo "$DTSCHEMA_VERSION"; cat "$BINDING"
	cat "$CMABUF_ROOT/board/vendor_prefix.py"; } |
	sha256sum | cut -c1-16)
schema=$CACHE/dtschema/processed-$key.json
if [ ! -s "$schema" ]; then
	log "processing the kernel's bindings with ours (first run only: ~1-2 min)"
	mkdir -p "$CACHE/dtschema"
	tmp=$(mktemp -d)
	mkdir -p "$tmp/bindings/misc"
	cp "$BINDING" "$tmp/bindings/misc/"
	# The kernel's bindings with the "cmabuf" vendor prefix registered, as an upstream
	# submission of the binding would add it (vendor-prefixes.yaml lists every prefix that
	# properties such as cmabuf,dma-heap-name may carry).
	cp -r "$KDIR/Documentation/devicetree/bindings" "$tmp/kernel-bindings"
	python3 "$CMABUF_ROOT/board/vendor_prefix.py" "$tmp/kernel-bindings/vendor-prefixes.yaml" \
		cmabuf "cmabuf, the contiguous DMA buffer driver of this repository" ||
		die "registering the cmabuf vendor prefix failed"
	dt-mk-schema -j "$tmp/kernel-bindings/" "$tmp/bindings/" > "$schema.tmp" ||
		die "dt-mk-schema failed"
	mv "$schema.tmp" "$schema"
	rm -rf "$tmp"
fi

# The binding's example, built and validated.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dt-extract-example "$BINDING" > "$tmp/example.dts"
dt_compile "$tmp/example.dts" "$tmp/example.dtb" -@ "$KDIR/include" \
	"$KDIR/scripts/dtc/include-prefixes"
# Anything dt-validate says of it is a failure (it exits 0 on some schema errors).
out=$(dt-validate -s "$schema" "$tmp/example.dtb" 2>&1) && [ -z "$out" ] ||
	{ printf '%s\n' "$out" | cut -c1-400 >&2; die "the binding's example does not validate"; }

# The real boards: each overlay applied to the board's DTB and verified against the admin
# guide's table (boards.py needs pylibfdt, which dtschema brought); boards.py's own test first.
python3 "$CMABUF_ROOT/board/test_boards.py" -q >&2 || die "board/test_boards.py failed"
"$CMABUF_ROOT/board/boards.sh" check "$KDIR" "$OUT" > "$tmp/boards" || die "board overlays: see above"
mapfile -t boards < "$tmp/boards"
[ ${#boards[@]} -gt 0 ] || die "no board overlays checked"
log "${#boards[@]} board overlays applied and verified against Documentation/admin-guide/boards.rst"

# Every cmabuf node and region (named cmabuf*) of the device trees against their bindings
# (ours and shared-dma-pool's); the boards' other nodes are their own business.
for dtb in "$@" "${boards[@]}"; do
	out=$(dt-validate -s "$schema" -l cmabuf:reserved-memory "$dtb" 2>&1 |
		grep -A1 -E '^[^:]*: cmabuf[^ ]* \(' || true)
	[ -z "$out" ] || { printf '%s\n' "$out" >&2; die "$dtb: cmabuf nodes do not match the binding"; }
	log "$(basename "$dtb"): cmabuf nodes match the bindings"
done
log "binding checked (yamllint, dt-doc-validate, example validated)"
