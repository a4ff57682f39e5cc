#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side tests of outfiles.py (run by `make check`)."""

import base64
import io
import os
import sys
import tarfile
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outfiles  # noqa: E402


def stream(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    text = base64.b64encode(buf.getvalue()).decode()
    return [text[i:i + 76] for i in range(0, len(text), 76)]


class Extract(unittest.TestCase):
    def test_files_come_back(self):
        lines = ["boot noise", "CMABUF-OUT-BEGIN"] + stream(
            {"./frame-000.png": b"\x89PNG one", "./sub/frame-001.png": b"\x89PNG two"}
        ) + ["CMABUF-OUT-END", "CMABUF-EXIT: 0"]
        with tempfile.TemporaryDirectory() as d:
            names = outfiles.extract(lines, d)
            self.assertEqual(sorted(names), ["frame-000.png", "sub/frame-001.png"])
            with open(os.path.join(d, "sub/frame-001.png"), "rb") as f:
                self.assertEqual(f.read(), b"\x89PNG two")
            # The stream's times are the board's (1970 here): the files get today's.
            age = time.time() - os.path.getmtime(os.path.join(d, "frame-000.png"))
            self.assertLess(abs(age), 60)

    def test_no_stream(self):
        self.assertIsNone(outfiles.extract(["CMABUF-EXIT: 0"], "/nonexistent"))

    def test_paths_stay_inside(self):
        lines = ["CMABUF-OUT-BEGIN"] + stream({"../escape": b"x"}) + ["CMABUF-OUT-END"]
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(tarfile.FilterError):
                outfiles.extract(lines, os.path.join(d, "in"))


if __name__ == "__main__":
    unittest.main()
