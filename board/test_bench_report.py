#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side tests of bench_report.py (run by `make check`)."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402

DOC = ['noise', 'BENCH-BEGIN',
       '{"alloc_p50_vs_cma_heap":{"64K":0.5,"1M":0.8},"fragmentation_success":"999/1000"}',
       'BENCH-END', 'CMABUF-EXIT: 0']


class Parse(unittest.TestCase):
    def test_numbers_and_fraction(self):
        d = bench_report.parse(DOC)
        self.assertEqual(d["alloc_p50_vs_cma_heap"]["1M"], 0.8)
        self.assertEqual(d["fragmentation_successes"], 999)
        self.assertEqual(d["fragmentation_attempts"], 1000)
        self.assertAlmostEqual(d["fragmentation_success"], 0.999)

    def test_missing_document(self):
        with self.assertRaises(ValueError):
            bench_report.parse(["BENCH-BEGIN"])

    def test_zero_attempts(self):
        d = bench_report.parse(['BENCH-BEGIN', '{"fragmentation_success":"0/0"}', 'BENCH-END'])
        self.assertEqual(d["fragmentation_success"], 0.0)


class Table(unittest.TestCase):
    def test_missing_values_are_dashes(self):
        t = bench_report.table(bench_report.parse(DOC))
        self.assertIn("0.50", t)
        self.assertIn("-", t)
        self.assertIn("999 of 1000", t)


    def test_spread_marks_overlap_with_one(self):
        d = bench_report.parse(['BENCH-BEGIN',
                                '{"alloc_pressure_p50_vs_cma_heap":{"8M":0.9,"1M":0.5},'
                                '"spread":{"alloc_pressure_p50_vs_cma_heap":'
                                '{"8M":{"p25":0.8,"p75":1.2},"1M":{"p25":0.4,"p75":0.6}}},'
                                '"fragmentation_success":"1/1"}', 'BENCH-END'])
        t = bench_report.table(d)
        self.assertIn("0.90 [0.80-1.20]*", t)
        self.assertIn("0.50 [0.40-0.60] ", t)

    def test_direct_io_rows_by_mode(self):
        d = bench_report.parse(['BENCH-BEGIN',
                                '{"odirect_mib":32,"odirect_write_vs_anon":{"cached":1.02,'
                                '"coherent":0.97},"odirect_read_vs_anon":{"cached":1.1},'
                                '"spread":{"odirect_write_vs_anon":{"cached":'
                                '{"p25":0.95,"p75":1.05}}},"fragmentation_success":"1/1"}',
                                'BENCH-END'])
        t = bench_report.table(d)
        self.assertIn("O_DIRECT write from a page-backed cmabuf mapping (32 MiB)", t)
        self.assertIn("cached 1.02 [0.95-1.05]*", t)
        self.assertIn("coherent 0.97", t)
        self.assertIn("O_DIRECT read into a page-backed cmabuf mapping (32 MiB)", t)

    def test_counters_line(self):
        d = bench_report.parse(['BENCH-BEGIN', '{"allocs_during_bench":120,"retries_during_bench":0,'
                                '"fallbacks_during_bench":0,"fragmentation_success":"1/1"}',
                                'BENCH-END'])
        self.assertIn("120 allocations, 0 retries, 0 fallbacks", bench_report.table(d))

    def test_churn_line(self):
        d = bench_report.parse(['BENCH-BEGIN', '{"small_churn_vs_cma_heap":{"p25":0.9,"p50":1.0,'
                                '"p75":1.1},"fragmentation_success":"1/1"}', 'BENCH-END'])
        self.assertIn("small buffers churning", bench_report.table(d))
        self.assertIn("1.00 [0.90-1.10]", bench_report.table(d))

    def test_small_buffers_beside_fragmentation(self):
        d = bench_report.parse(['BENCH-BEGIN', '{"fragmentation_success":"10/10",'
                                '"fragmentation_small":"40/40 12"}', 'BENCH-END'])
        self.assertIn("small buffers churning beside: 40/40 allocated, the pool's chunks at "
                      "most 12 MiB", bench_report.table(d))
        self.assertNotIn("churning beside", bench_report.table(bench_report.parse(DOC)))

    def test_plot_range_holds_every_bar(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = bench_report.parse(['BENCH-BEGIN', '{"alloc_p50_vs_cma_heap":{"64K":0.11,"1M":0.5},'
                                    '"spread":{"alloc_p50_vs_cma_heap":{"64K":{"p25":0.1,'
                                    '"p75":0.12}}},"fragmentation_success":"1/1"}', 'BENCH-END'])
            script = bench_report.gnuplot_script(d, "x.png", os.path.join(tmp, "d"))
            # The lowest spread (0.1) at least twice the floor, so that its bar shows.
            self.assertIn("set yrange [0.03125:4]", script)
            script = bench_report.gnuplot_script(bench_report.parse(DOC), "x.png",
                                                 os.path.join(tmp, "d"))
            self.assertIn("set yrange [0.25:4]", script)

    def test_no_direct_io_rows_without_a_disk(self):
        self.assertNotIn("O_DIRECT", bench_report.table(bench_report.parse(DOC)))


class Script(unittest.TestCase):
    def test_data_file_has_every_size(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "d")
            s = bench_report.gnuplot_script(bench_report.parse(DOC), "/x.png", path)
            self.assertIn("/x.png", s)
            with open(path) as f:
                rows = f.read().splitlines()
            self.assertEqual(len(rows), 1 + len(bench_report.SIZES))
            self.assertTrue(rows[0].startswith("#"))
            # Each row: the value and its spread (the value itself when none was measured).
            # Only the rows the summary has (DOC: one).
            self.assertEqual(rows[1].split(), ["64K", "0.5", "0.5", "0.5"])
            self.assertIn("errorbars", s)


if __name__ == "__main__":
    unittest.main()
