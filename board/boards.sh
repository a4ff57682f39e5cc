#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The real-board overlays (Documentation/admin-guide/boards.rst).
#
#   board/boards.sh dtbos OUT        compiles every dts/*-cmabuf.dtso to OUT/*.dtbo
#   board/boards.sh check KDIR OUT   for each board in the guide's table: its DTB from KDIR's
#                                    sources, the overlay applied with fdtoverlay, the result
#                                    verified against the table (board/boards.py, needs
#                                    pylibfdt); prints the applied DTBs' paths
. "$(dirname "$0")/common.sh"

DOC=$CMABUF_ROOT/Documentation/admin-guide/boards.rst

case ${1:-} in
dtbos)
	out=${2:?usage: boards.sh dtbos OUT}
	mkdir -p "$out"
	for src in "$CMABUF_ROOT"/dts/*-cmabuf.dtso; do
		dt_compile "$src" "$out/$(basename "$src" .dtso).dtbo" "$CMABUF_ROOT/dts"
		echo "$out/$(basename "$src" .dtso).dtbo"
	done
	;;
check)
	kdir=${2:?usage: boards.sh check KDIR OUT}
	out=${3:?usage: boards.sh check KDIR OUT}
	mkdir -p "$out"
	# The kernel's own dtc (built with the tree) is the one its device trees are written for.
	[ -x "$kdir/scripts/dtc/dtc" ] && export DTC=$kdir/scripts/dtc/dtc
	dts=$kdir/arch/arm64/boot/dts
	python3 "$CMABUF_ROOT/board/boards.py" rows "$DOC" > "$out/rows" || die "bad table in $DOC"
	# Every overlay is in the table, and every row names an overlay that exists.
	for src in "$CMABUF_ROOT"/dts/*-cmabuf.dtso; do
		cut -f2 "$out/rows" | grep -qx "dts/$(basename "$src")" ||
			die "$src is not in the board table of $DOC"
	done
	while IFS=$'\t' read -r board overlay _; do
		name=$(basename "$board")
		[ -f "$dts/$board.dts" ] || die "$board.dts is not in $kdir"
		[ -f "$CMABUF_ROOT/$overlay" ] || die "$overlay (in $DOC) does not exist"
		dt_compile "$dts/$board.dts" "$out/$name.dtb" "$dts/$(dirname "$board")" "$kdir/include" \
			"$kdir/scripts/dtc/include-prefixes"
		dt_compile "$CMABUF_ROOT/$overlay" "$out/$name-cmabuf.dtbo" "$CMABUF_ROOT/dts"
		fdtoverlay -i "$out/$name.dtb" -o "$out/$name-applied.dtb" "$out/$name-cmabuf.dtbo" ||
			die "$overlay does not apply to $board"
		python3 "$CMABUF_ROOT/board/boards.py" verify "$DOC" "$board" "$out/$name.dtb" \
			"$out/$name-applied.dtb" || die "$overlay on $board: see above"
		echo "$out/$name-applied.dtb"
	done < "$out/rows"
	;;
*) die "usage: boards.sh dtbos OUT | check KDIR OUT" ;;
esac
