#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unpacks the files a board command left in /out (`make run OUT=dir`).

The board prints them as a base64-encoded tar stream between the lines
CMABUF-OUT-BEGIN and CMABUF-OUT-END on its console; this takes them from the
console log into the host directory and lists what it wrote.
"""
import argparse
import base64
import io
import os
import sys
import tarfile


def extract(console_lines, dest):
    """Unpacks the stream in ``console_lines`` into ``dest``; returns the names written."""
    try:
        start = console_lines.index("CMABUF-OUT-BEGIN")
        end = console_lines.index("CMABUF-OUT-END", start)
    except ValueError:
        return None
    data = base64.b64decode("".join(l.strip() for l in console_lines[start + 1:end]))
    names = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                tar.extract(m, dest, filter="data")
                # The board's clock starts at 1970: the files are new here and now.
                os.utime(os.path.join(dest, m.name), None)
                names.append(os.path.normpath(m.name))
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("console")
    ap.add_argument("dest")
    args = ap.parse_args()
    with open(args.console, errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f]
    names = extract(lines, args.dest)
    if names is None:
        return 1
    for n in names:
        print(f"[cmabuf] out: {os.path.join(args.dest, n)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
