#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of board/boards.py: a good overlay passes, and each way of breaking one is caught.

Builds a small board tree and overlays with dtc and fdtoverlay; needs pylibfdt
(run with dtschema's venv python, as board/dtcheck.sh does)."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boards  # noqa: E402

MIB = 1 << 20

BASE = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	memory@40000000 { device_type = "memory"; reg = <0x0 0x40000000 0x0 0x20000000>; };
	reserved-memory {
		#address-cells = <2>;
		#size-cells = <2>;
		ranges;
		fw@40000000 { reg = <0x0 0x40000000 0x0 0x00400000>; no-map; };
		board_cma: linux,cma {
			compatible = "shared-dma-pool";
			reusable;
			size = <0x0 0x04000000>;
			linux,cma-default;
		};
	};
};
"""

# The shape of dts/cmabuf-pool.dtsi, with the parts a mistake could change.
OVERLAY = """/dts-v1/;
/plugin/;
&{/reserved-memory} {
	cmabuf_pool: cmabuf-pool {
		compatible = "shared-dma-pool";
		%(reusable)s
		size = <0x0 %(size)s>;
		alignment = <0x0 0x00400000>;
		alloc-ranges = <0x0 0x40000000 0x0 %(range)s>;
	};
	%(extra)s
};
&{/} {
	cmabuf {
		compatible = "cmabuf,dma-buffer";
		memory-region = <&%(target)s>;
	};
};
"""
GOOD = dict(reusable="reusable;", size="0x08000000", range="0x20000000", target="cmabuf_pool",
            extra="")
SIZE, RANGE = 128 * MIB, (0x40000000, 0x60000000)


class Verify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.base = self.compile("base", BASE)

    def tearDown(self):
        self.dir.cleanup()

    def compile(self, name, text):
        src, out = (os.path.join(self.dir.name, name + ext) for ext in (".dts", ".dtb"))
        with open(src, "w") as f:
            f.write(text)
        subprocess.run(["dtc", "-q", "-@", "-I", "dts", "-O", "dtb", "-o", out, src], check=True)
        return out

    def errors(self, doc_size=SIZE, **change):
        ovl = self.compile("ovl", OVERLAY % dict(GOOD, **change))
        out = os.path.join(self.dir.name, "applied.dtb")
        subprocess.run(["fdtoverlay", "-i", self.base, "-o", out, ovl], check=True)
        errors, notes = boards.verify(boards.tree(self.base), boards.tree(out), doc_size, RANGE)
        return " | ".join(errors), " | ".join(notes)

    def test_good(self):
        errors, notes = self.errors()
        self.assertEqual("", errors)
        self.assertIn("range holds 512 MiB of RAM; fw@40000000 4 MiB, linux,cma 64 MiB; "
                      "444 MiB left for 128 MiB", notes)

    def test_not_reusable(self):
        self.assertIn("reusable must be present", self.errors(reusable="")[0])

    def test_size_not_as_documented(self):
        self.assertIn("documented 128 MiB", self.errors(size="0x04000000")[0])

    def test_range_not_as_documented(self):
        self.assertIn("documented 0x40000000 - 0x60000000", self.errors(range="0x10000000")[0])

    def test_points_at_the_boards_region(self):
        errors = self.errors(target="board_cma")[0]
        self.assertIn("memory-region does not point at", errors)

    def test_changes_the_boards_region(self):
        extra = "linux,cma { size = <0x0 0x08000000>; };"
        self.assertIn("linux,cma: the board's property size changed", self.errors(extra=extra)[0])

    def test_adds_more(self):
        self.assertIn("the overlay adds", self.errors(extra="other { };")[0])

    def test_no_room(self):
        # 512 MiB documented and asked for, in a range of 512 MiB of which 68 MiB are taken.
        self.assertIn("no room", self.errors(doc_size=512 * MIB, size="0x20000000")[0])

    def test_table(self):
        doc = os.path.join(self.dir.name, "boards.rst")
        with open(doc, "w") as f:
            f.write(".. csv-table:: Board overlays (checked)\n"
                    '   :header: "board", "overlay", "size", "range"\n\n'
                    '   "v/a", "dts/a.dtso", "64 MiB", "0x80000000 - 0x100000000"\n'
                    '   "v/b", "dts/b.dtso", "1 GiB", "0x0 - 0x4000_0000"\n\nafter\n')
        self.assertEqual([("v/a", "dts/a.dtso", 64 * MIB, (0x80000000, 0x100000000)),
                          ("v/b", "dts/b.dtso", 1 << 30, (0, 0x40000000))], boards.doc_rows(doc))
        with self.assertRaises(SystemExit):
            boards.parse_range("0x100 - 0x10")


if __name__ == "__main__":
    unittest.main()
