#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the board's benchmark output into a table, a JSON summary and a plot.

The board prints one JSON document between ``BENCH-BEGIN`` and ``BENCH-END``
(board/bench.sh): ratios of cmabuf against the mainline CMA heap on the same
region and against ``memset``, by size label, and the fragmentation story's
``successes/attempts``. Ratios below 1 mean cmabuf took less time (or, for
bandwidth, wrote slower than anonymous memory: see the key's name).
No absolute time is printed: the board is emulated.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from report import section

SIZES = ["64K", "1M", "8M", "64M"]

# (key, what it compares, how to read it)
ROWS = [
    ("alloc_p50_vs_cma_heap", "allocation p50, cmabuf (cached) / CMA heap", "lower is better"),
    ("alloc_p95_vs_cma_heap", "allocation p95, cmabuf (cached) / CMA heap", "lower is better"),
    ("alloc_coherent_p50_vs_cma_heap", "allocation p50, coherent, member of video / CMA heap",
     "lower is better"),
    ("alloc_writecombine_p50_vs_cma_heap", "allocation p50, write-combined, video member / heap",
     "lower is better"),
    ("alloc_coherent_rawio_p50_vs_cma_heap", "allocation p50, coherent, root (DMA address) / heap",
     "lower is better"),
    ("alloc_p50_vs_memset", "allocation p50, cmabuf / memset of the size", "zeroing floor = 1"),
    ("alloc_pressure_p50_vs_cma_heap", "allocation p50 with the region full of movable pages",
     "lower is better"),
    ("first_touch_vs_cma_heap", "mmap + touch every page, cmabuf / CMA heap", "lower is better"),
    ("export_p50_vs_cma_heap", "alloc + dma-buf export p50, cmabuf / CMA heap alloc",
     "lower is better"),
    ("export_one_call_p50_vs_cma_heap", "ALLOC with CMABUF_ALLOC_EXPORT p50 / CMA heap alloc",
     "lower is better"),
    ("heap_compat_p50_vs_cma_heap", "DMA_HEAP_IOCTL_ALLOC p50, /dev/cmabufN / CMA heap",
     "lower is better"),
    ("dmabuf_first_touch_vs_cma_heap", "dma-buf mmap + touch every page, cmabuf / CMA heap",
     "lower is better"),
    ("reserve_alloc_p50_vs_cma_heap", "region full: allocation p50 from a ready reserve / heap",
     "lower is better"),
    ("reserve_alloc_p95_vs_cma_heap", "region full: allocation p95 from a ready reserve / heap",
     "lower is better"),
    ("reserve_alloc_p50_vs_memset", "region full: from a ready reserve / memset of the size",
     "zeroing floor = 1"),
    ("reserve_shrunk_alloc_p50_vs_cma_heap", "region full: reserve taken back by pressure / heap",
     "lower is better"),
    ("reserve_refill_vs_cma_heap_alloc", "region full: reserve refill after release / heap alloc",
     "in the background"),
]

# Direct I/O to and from the board's scratch disk from a page-backed cmabuf mapping, by mode:
# (key, what it compares).
DIRECT_IO_ROWS = [
    ("odirect_write_vs_anon", "O_DIRECT write from a page-backed cmabuf mapping"),
    ("odirect_read_vs_anon", "O_DIRECT read into a page-backed cmabuf mapping"),
]


def parse(lines):
    """The summary dict, with ``fragmentation_success`` turned into numbers."""
    body = section(lines, "BENCH-BEGIN", "BENCH-END")
    if not body:
        raise ValueError("no BENCH-BEGIN/BENCH-END document in the console log")
    data = json.loads("".join(body))
    frag = str(data.get("fragmentation_success", "0/0"))
    ok, _, total = frag.partition("/")
    ok, total = int(ok or 0), int(total or 0)
    data["fragmentation_successes"] = ok
    data["fragmentation_attempts"] = total
    data["fragmentation_success"] = ok / total if total else 0.0
    return data


def fmt(v):
    """Two decimals; two significant digits below 0.1 (a ready reserve's ratios)."""
    if v is None:
        return "-"
    return "%.2f" % v if abs(v) >= 0.095 or v == 0 else "%.2g" % v


def cell(data, key, size):
    """One table cell: the ratio and, where measured, its p25-p75 spread over paired
    repetitions; ``*`` marks a spread that includes 1.0 (no clear difference)."""
    v = data.get(key, {}).get(size)
    q = data.get("spread", {}).get(key, {}).get(size)
    if v is None:
        return "-"
    if not q or q.get("p25") is None or q.get("p75") is None:
        return fmt(v)
    mark = "*" if q["p25"] <= 1.0 <= q["p75"] else ""
    return "%s [%s-%s]%s" % (fmt(v), fmt(q["p25"]), fmt(q["p75"]), mark)


def table(data):
    """The summary as a text table."""
    out = ["%-58s %s" % ("ratio (by buffer size) [p25-p75 of paired repetitions]",
                         "".join("%21s" % s for s in SIZES))]
    for key, what, _ in ROWS:
        out.append("%-58s %s" % (what, "".join("%21s" % cell(data, key, s) for s in SIZES)))
    out.append("* the spread includes 1.0: no clear difference at this size")
    for size in SIZES:
        bw = data.get("write_bandwidth_vs_anon", {}).get(size)
        if bw:
            out.append("write bandwidth vs anonymous memory, %-4s %s" % (
                size, "  ".join("%s %s" % (k, fmt(v)) for k, v in bw.items())))
    if data.get("write_bandwidth_vs_anon"):
        out.append("  (emulated board: cache modes do not change write bandwidth under QEMU TCG;"
                   " these rows are not a result)")
    for key, what in DIRECT_IO_ROWS:
        per = data.get(key)
        if per:
            out.append("%s (%s MiB), time / anonymous memory: %s" % (
                what, data.get("odirect_mib", "?"),
                "  ".join("%s %s" % (mode, cell(data, key, mode)) for mode in per)))
    churn = data.get("small_churn_vs_cma_heap")
    if churn:
        out.append("small buffers churning (64 allocations of 4-64 KiB, 16 alive), cmabuf / CMA "
                   "heap: %s [%s-%s]" % (fmt(churn.get("p50")), fmt(churn.get("p25")),
                                         fmt(churn.get("p75"))))
    stream = data.get("reserve_stream_start_vs_cma_heap")
    if stream:
        out.append("stream start on a full region (8 buffers of 8 MiB, time to the last), ready "
                   "reserve / CMA heap: %s [%s-%s]" % (fmt(stream.get("p50")), fmt(stream.get("p25")),
                                                      fmt(stream.get("p75"))))
    if "reserve_hits_during_bench" in data:
        out.append("ready reserve over its rows: %d hits, %d misses (its unit fixed to each "
                   "row's size; the misses are the rows after pressure took it back)"
                   % (data["reserve_hits_during_bench"], data.get("reserve_misses_during_bench", 0)))
    if "allocs_during_bench" in data:
        out.append("cmabuf's counters over the allocation rows: %d allocations, %d retries, "
                   "%d fallbacks" % (data["allocs_during_bench"],
                                     data.get("retries_during_bench", 0),
                                     data.get("fallbacks_during_bench", 0)))
    out.append("fragmentation: %d of %d 8 MiB allocations succeeded on a fragmented machine"
               % (data["fragmentation_successes"], data["fragmentation_attempts"]))
    small = str(data.get("fragmentation_small", "")).split()
    if len(small) == 2:
        out.append("  with small buffers churning beside: %s allocated, the pool's chunks at most %s MiB"
                   % (small[0], small[1]))
    return "\n".join(out)


# The plotted rows: (key, legend title).
PLOT_ROWS = [
    ("alloc_p50_vs_cma_heap", "allocation p50 (idle)"),
    ("alloc_pressure_p50_vs_cma_heap", "allocation p50 (region full of movable pages)"),
    ("reserve_alloc_p50_vs_cma_heap", "allocation p50 (region full, from a ready reserve)"),
    ("first_touch_vs_cma_heap", "mmap + first touch"),
    ("export_p50_vs_cma_heap", "alloc + export, two calls"),
    ("export_one_call_p50_vs_cma_heap", "alloc + export, one call (CMABUF_ALLOC_EXPORT)"),
]


def gnuplot_script(data, png, datafile):
    """A gnuplot script for a grouped bar chart of the ratios the summary has, each bar with its
    p25-p75 spread as an error bar (the value itself where no spread was measured)."""
    rows = [(k, t) for k, t in PLOT_ROWS if data.get(k)]
    with open(datafile, "w") as f:
        f.write("# size" + "".join(" %s p25 p75" % k for k, _ in rows) + "\n")
        for s in SIZES:
            cols = []
            for k, _ in rows:
                v = data.get(k, {}).get(s)
                q = data.get("spread", {}).get(k, {}).get(s) or {}
                if v is None:
                    cols += ["NaN"] * 3
                else:
                    cols += [str(v), str(q.get("p25", v)), str(q.get("p75", v))]
            f.write(s + " " + " ".join(cols) + "\n")
    # Powers of two around every bar and its spread, at least 0.25 to 4, with room below the
    # lowest (a bar at the axis' floor would not show).
    vals = [float(v) for k, _ in rows for s in SIZES
            for v in [data.get(k, {}).get(s)] + list(
                (data.get("spread", {}).get(k, {}).get(s) or {}).values())
            if isinstance(v, (int, float)) and v > 0]
    lo, hi = 0.25, 4.0
    while vals and lo > min(vals) / 2:
        lo /= 2
    while vals and hi < max(vals):
        hi *= 2
    plots = []
    for i, (_, title) in enumerate(rows):
        col = 2 + 3 * i
        src = "'%s'" % datafile if i == 0 else "''"
        xtic = ":xtic(1)" if i == 0 else ""
        plots.append("%s using %d:%d:%d%s title '%s'" % (src, col, col + 1, col + 2, xtic, title))
    return "\n".join([
        "set terminal png size 1000,600 noenhanced",
        "set output '%s'" % png,
        "set title 'cmabuf / mainline CMA heap, same region, same boot (lower is faster; "
        "bars: p25-p75 of paired repetitions)'",
        "set style data histograms",
        "set style histogram errorbars gap 1 lw 1",
        "set style fill solid 0.8 border -1",
        "set logscale y 2",
        "set yrange [%g:%g]" % (lo, hi),
        "set format y '%.3g'",
        "set ylabel 'ratio'",
        "set xlabel 'buffer size'",
        "set key below",
        "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2",
        "plot " + ", ".join(plots),
    ])


def plot(data, png):
    """Renders the plot with gnuplot; returns an error message or None."""
    if not shutil.which("gnuplot"):
        return "gnuplot not installed: no plot"
    with tempfile.TemporaryDirectory() as tmp:
        script = gnuplot_script(data, png, os.path.join(tmp, "data"))
        proc = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if proc.returncode:
            return "gnuplot failed: " + proc.stderr.strip()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", required=True, help="where to write the summary")
    ap.add_argument("--png", required=True, help="where to write the plot")
    ap.add_argument("console", help="the board's console log")
    args = ap.parse_args()
    with open(args.console, encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f]
    try:
        data = parse(lines)
    except ValueError as e:
        print("error: %s (see %s)" % (e, args.console))
        return 1
    if "error" in data:
        print("error: " + data["error"])
        return 1
    print(table(data))
    failed = data["fragmentation_attempts"] == 0 or \
        data["fragmentation_successes"] < data["fragmentation_attempts"]
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    print("summary: " + args.json)
    err = plot(data, args.png)
    print("plot: " + (err or args.png))
    if failed:
        print("error: the fragmentation story did not complete (see %s)" % args.console)
    return 1 if err or failed else 0


if __name__ == "__main__":
    sys.exit(main())
