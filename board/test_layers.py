#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The module's files import only downward: no circle among src/*.rs (run by `make check`).

Every `crate::<module>` a file names (in `use crate::{...}` trees and in paths)
is an edge from that file to the module; the graph must have no cycle. The
crate root (cmabuf_main.rs, the table of contents) and the generated uapi file
are left out.
"""
import glob
import os
import re
import sys
import unittest

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules(src=SRC):
    return {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(src, "*.rs"))} - {
        "cmabuf_main", "uapi_generated"}


def imports(text, known):
    """The modules of `known` that a file's text names through `crate::`."""
    found = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
    # `use crate::{ a::..., b, }`: the first path segment of each item of the tree.
    for tree in re.findall(r"use crate::\{(.*?)\};", text, re.S):
        depth = 0
        item = ""
        for ch in tree:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if depth == 0 and ch == ",":
                found.add(item.strip().split("::")[0])
                item = ""
            elif depth == 0:
                item += ch
        found.add(item.strip().split("::")[0])
    return {m for m in found if m in known}


def graph(src=SRC):
    known = modules(src)
    g = {}
    for m in known:
        with open(os.path.join(src, m + ".rs")) as f:
            text = re.sub(r"//[^\n]*", "", f.read())
        g[m] = imports(text, known) - {m}
    return g


def cycle(g):
    """A cycle of `g` as a list of nodes, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(g[n]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


class Layers(unittest.TestCase):
    def test_no_circle_among_src_files(self):
        c = cycle(graph())
        self.assertIsNone(c, "src/ files import in a circle: " + " -> ".join(c or []))

    def test_finds_circles(self):
        self.assertEqual(cycle({"a": {"b"}, "b": {"a"}}), ["a", "b", "a"])
        self.assertIsNone(cycle({"a": {"b"}, "b": set()}))

    def test_reads_use_trees(self):
        text = "use crate::{\n    buffer::Buffer,\n    device::{\n        self,\n    },\n    vma, //\n};"
        self.assertEqual(imports(text, {"buffer", "device", "vma", "file"}),
                         {"buffer", "device", "vma"})


if __name__ == "__main__":
    if "--print" in sys.argv:
        for m, deps in sorted(graph().items()):
            print(m, "->", " ".join(sorted(deps)))
        sys.exit(0)
    unittest.main()
