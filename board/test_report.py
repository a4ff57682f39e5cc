#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side tests of report.py (run by `make check` before the board boots)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402


class Section(unittest.TestCase):
    def test_between_markers(self):
        self.assertEqual(report.section(["x", "B", "a", "b", "E", "y"], "B", "E"),
                         ["a", "b"])

    def test_missing_begin(self):
        self.assertIsNone(report.section(["a", "E"], "B", "E"))

    def test_unterminated_runs_to_end(self):
        self.assertEqual(report.section(["B", "a"], "B", "E"), ["a"])


class Count(unittest.TestCase):
    def test_leaves(self):
        tree = {"sub_groups": [
            {"test_cases": [{"status": "PASS"}, {"status": "FAIL"}], "status": "FAIL"},
            {"test_cases": [{"status": "SKIP"}, {"status": "PASS"}], "status": "PASS"},
        ]}
        self.assertEqual(report.count(tree), (2, 1, 1))

    def test_failed_group_without_failed_leaf_counts_once(self):
        tree = {"sub_groups": [{"test_cases": [{"status": "PASS"}], "status": "FAIL"}]}
        self.assertEqual(report.count(tree), (1, 1, 0))

    def test_error_status_is_failure(self):
        self.assertEqual(report.count({"test_cases": [{"status": "ERROR"}]}), (0, 1, 0))


DMESG = """[    0.5] KTAP version 1
[    0.5] 1..0
[    1.0] cmabuf: loading out-of-tree module taints kernel.
[    1.1]     KTAP version 1
[    1.1]     1..2
[    1.1]         KTAP version 1
[    1.1]         # Subtest: cmabuf_a
[    1.1]         1..1
[    1.2] cmabuf cmabuf0: unrelated message
[    1.2]         ok 1 one
[    1.2]     ok 1 cmabuf_a
[    1.2]         KTAP version 1
[    1.2]         # Subtest: cmabuf_b
[    1.2]         1..1
[    1.2]         not ok 1 two
[    1.2]     not ok 2 cmabuf_b
[    2.0]     KTAP version 1
[    2.0]     1..2
[    2.0]         # Subtest: cmabuf_a
""".splitlines()


class Kunit(unittest.TestCase):
    def test_first_module_document(self):
        doc = report.kunit_document(DMESG)
        self.assertEqual(doc[0:2], ["KTAP version 1", "1..2"])
        self.assertEqual(doc[-1], "not ok 2 cmabuf_b")
        self.assertNotIn("cmabuf cmabuf0: unrelated message", doc)
        self.assertIn("    ok 1 one", doc)

    def test_group_fails_when_a_case_fails(self):
        group = report.kunit_group(DMESG, 1)
        self.assertEqual(group[0:2], ["    KTAP version 1", "    # Subtest: kunit"])
        self.assertEqual(group[-1], "not ok 1 kunit")

    def test_missing_kunit_is_a_failure(self):
        self.assertEqual(report.assemble(["KTAP version 1", "1..1", "KUNIT-GROUP 1"], []),
                         ["KTAP version 1", "1..1",
                          "not ok 1 kunit # no KUnit results of the module in the kernel log"])


class Splats(unittest.TestCase):
    def test_finds_warning_and_oops(self):
        log = ["[ 1.0] ok", "[ 2.0] WARNING: CPU: 1 PID: 5 at mm/cma.c:1 x",
               "[ 3.0] Unable to handle kernel paging request", "[ 4.0] fine"]
        self.assertEqual(len(report.splats(log)), 2)

    def test_quiet_log(self):
        self.assertEqual(report.splats(["cmabuf cmabuf0: bound", "CMA: reserved"]), [])


class ExitStatus(unittest.TestCase):
    def test_last_marker_wins(self):
        self.assertEqual(report.exit_status(["CMABUF-EXIT: 1", "CMABUF-EXIT: 0"]), 0)

    def test_none(self):
        self.assertIsNone(report.exit_status(["boot", "panic"]))


class Verdict(unittest.TestCase):
    def test_missing_console_is_a_problem(self):
        passed, failed, skipped, problems = report.verdict("/nonexistent", "/nonexistent/console")
        self.assertEqual((passed, failed, skipped), (0, 0, 0))
        self.assertEqual(len(problems), 1)
        self.assertIn("no console log", problems[0])


class KernelRelease(unittest.TestCase):
    def test_from_the_log(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write("x\n[    0.000000] Linux version 7.3.4+deb13-arm64 (debian-kernel@lists"
                    ".debian.org) (aarch64-linux-gnu-gcc-14 ...\n")
            f.flush()
            self.assertEqual(report.kernel_release(f.name), "7.3.4+deb13-arm64")

    def test_missing_log(self):
        self.assertEqual(report.kernel_release("/nonexistent/console"), "?")


if __name__ == "__main__":
    unittest.main()
