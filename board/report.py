#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the board's console log into a test verdict.

Each boot of the board (one or more console logs: ``make check`` boots it
four times) prints one KTAP document between ``KTAP-BEGIN`` and ``KTAP-END``
(see run-tests.sh), the kernel log between ``DMESG-BEGIN`` and ``DMESG-END``,
and ``CMABUF-EXIT: <status>`` last.  This parses the KTAP with the kernel's
own ``tools/testing/kunit/kunit.py parse``, scans the kernel log for oopses
and warnings, prints kunit.py's report and ends with the line
``N passed, N failed, N skipped``.  The exit status is non-zero on any
failure, a kernel splat, a missing document or a board that never finished.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# Kernel log lines that mean the kernel itself went wrong.
SPLAT = re.compile(
    r"(------------\[ cut here \]------------|WARNING: CPU: |\bBUG: |"
    r"\bOops\b|Kernel panic|Unable to handle kernel|Internal error: |"
    r"Call trace:|kernel BUG at|UBSAN: |KASAN: |kmemleak: .*new suspected|"
    r"unreferenced object 0x|"
    r"INFO: task .* blocked for more than|"
    r"possible circular locking|inconsistent lock state|RCU stall)")


def section(lines, begin, end):
    """Lines strictly between the first ``begin`` and the next ``end``, or None."""
    try:
        start = lines.index(begin)
    except ValueError:
        return None
    for i in range(start + 1, len(lines)):
        if lines[i] == end:
            return lines[start + 1:i]
    return lines[start + 1:]


def count(node):
    """(passed, failed, skipped) over the leaf tests of a kunit.py JSON tree.

    A group that failed by itself (a test program that crashed after its
    last reported case, say) counts as one failure of its own.
    """
    passed = failed = skipped = 0
    leaf_failed = False
    for case in node.get("test_cases", []):
        status = case.get("status")
        if status == "PASS":
            passed += 1
        elif status == "SKIP":
            skipped += 1
        else:
            failed += 1
            leaf_failed = True
    for group in node.get("sub_groups", []):
        p, f, s = count(group)
        passed, failed, skipped = passed + p, failed + f, skipped + s
        leaf_failed = leaf_failed or f > 0
    if node.get("status") == "FAIL" and not leaf_failed:
        failed += 1
    return passed, failed, skipped


TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ")


def kunit_document(dmesg, prefix="cmabuf_"):
    """The first KUnit document printed for the module's suites, dedented.

    A module's KUnit results come indented one level (four spaces) in the
    kernel log: ``KTAP version 1``, ``1..K``, then K suites.  The suites are
    found by their ``# Subtest: <prefix>...`` line; lines at a smaller
    indentation (other kernel messages) are dropped.  Returns None if the
    log has no such suite.
    """
    lines = [TIMESTAMP.sub("", l) for l in dmesg]
    first = next((i for i, l in enumerate(lines)
                  if l.lstrip().startswith("# Subtest: " + prefix)), None)
    if first is None:
        return None
    suite_indent = len(lines[first]) - len(lines[first].lstrip())
    pad = " " * max(suite_indent - 4, 0)
    start = next((i for i in range(first, -1, -1)
                  if lines[i] == pad + "KTAP version 1"), None)
    if start is None or start + 1 >= len(lines):
        return None
    m = re.fullmatch(re.escape(pad) + r"1\.\.(\d+)", lines[start + 1])
    if not m:
        return None
    planned, seen, doc = int(m.group(1)), 0, []
    for line in lines[start:]:
        if not line.startswith(pad):
            continue
        body = line[len(pad):]
        doc.append(body)
        if re.match(r"(not )?ok \d+ ", body):
            seen += 1
            if seen == planned:
                break
    return doc


def kunit_group(dmesg, number):
    """The module's KUnit document as group ``number`` of the board's KTAP."""
    doc = kunit_document(dmesg)
    if doc is None:
        return ["not ok %d kunit # no KUnit results of the module in the kernel log" % number]
    group = ["    KTAP version 1", "    # Subtest: kunit"]
    group += ["    " + l for l in doc[1:]]
    failed = any(re.match(r"\s*not ok ", l) for l in doc)
    group.append("%s %d kunit" % ("not ok" if failed else "ok", number))
    return group


def assemble(ktap, dmesg):
    """The board's KTAP with its ``KUNIT-GROUP N`` placeholder filled in."""
    out = []
    for line in ktap:
        m = re.fullmatch(r"KUNIT-GROUP (\d+)", line)
        out += kunit_group(dmesg or [], int(m.group(1))) if m else [line]
    return out


def splats(lines):
    """The kernel log lines that show an oops, a warning or a lockup."""
    return [l for l in lines if SPLAT.search(l)]


def exit_status(lines):
    """The board's ``CMABUF-EXIT`` status, or None if it never got there."""
    for line in reversed(lines):
        m = re.match(r"CMABUF-EXIT: (\d+)", line)
        if m:
            return int(m.group(1))
    return None


def parse_ktap(kdir, ktap_lines):
    """Run kunit.py parse; return (its human report, JSON tree or None)."""
    kunit = os.path.join(kdir, "tools/testing/kunit/kunit.py")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "ktap")
        out = os.path.join(tmp, "json")
        with open(src, "w") as f:
            f.write("\n".join(ktap_lines) + "\n")
        proc = subprocess.run([sys.executable, kunit, "parse", "--json=" + out, src],
                              capture_output=True, text=True)
        report = proc.stdout + proc.stderr
        try:
            with open(out) as f:
                return report, json.load(f)
        except (OSError, ValueError):
            return report, None


def verdict(kdir, console):
    """(passed, failed, skipped, problems) of one boot's console log; prints kunit.py's report."""
    try:
        with open(console, encoding="utf-8", errors="replace") as f:
            lines = [l.rstrip("\r\n").replace("\r", "") for l in f]
    except OSError as e:
        return 0, 0, 0, ["no console log of a boot: %s" % e]

    problems = []
    ktap = section(lines, "KTAP-BEGIN", "KTAP-END")
    dmesg = section(lines, "DMESG-BEGIN", "DMESG-END")
    passed = failed = skipped = 0
    if ktap is None:
        problems.append("no KTAP document in %s" % console)
    else:
        report, tree = parse_ktap(kdir, assemble(ktap, dmesg))
        print(report.rstrip())
        if tree is None:
            problems.append("kunit.py could not parse the KTAP document of %s" % console)
        else:
            passed, failed, skipped = count(tree)
            if passed + failed + skipped == 0:
                problems.append("no test ran in %s" % console)

    bad = splats(dmesg if dmesg is not None else lines)
    if bad:
        problems.append("kernel log of %s shows %d oops/warning line(s):\n  %s"
                        % (console, len(bad), "\n  ".join(bad[:20])))
    if exit_status(lines) is None:
        problems.append("the board did not finish (crash or timeout); see %s" % console)
    return passed, failed, skipped, problems


def kernel_release(console):
    """The release of the kernel a console log is from ("Linux version X ..."), or "?"."""
    try:
        with open(console, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.search(r"Linux version (\S+)", line)
                if m:
                    return m.group(1)
    except OSError:
        pass
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kdir", required=True, help="kernel tree (for kunit.py)")
    ap.add_argument("console", nargs="+", help="the console log of each boot")
    args = ap.parse_args()

    passed = failed = skipped = 0
    problems = []
    boots = []
    for console in args.console:
        p, f, s, probs = verdict(args.kdir, console)
        passed, failed, skipped = passed + p, failed + f, skipped + s
        problems += probs
        boots.append("%s (%s): %d passed, %d failed, %d skipped"
                     % (os.path.basename(console), kernel_release(console), p, f, s))
    print("per boot:\n  " + "\n  ".join(boots))
    for p in problems:
        print("error: " + p)
    if problems:
        failed += 1
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
