#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Cut an unpacked Debian arm64 tree down to what the camera clients load.

    camera_root.py UNPACKED ROOT

ROOT gets the programs the board's camera test runs (cam, gst-launch-1.0, gst-inspect-1.0,
GStreamer's plugin scanner, v4l2-compliance, v4l2-ctl), the GStreamer plugins it uses (libcamerasrc; the core elements:
identity, fdsink, filesink), libcamera's data (the virtual camera's configuration directory),
every shared library those ELF files need by DT_NEEDED, transitively, resolved as the dynamic
loader does (RUNPATH, then the multiarch and plain library directories), with the symbolic
links on the way, the ELF interpreter, and the merged-/usr links (bin, lib, sbin). A needed
library found nowhere is an error: the root would not run.
"""

import os
import re
import shutil
import subprocess
import sys

ARCH = "aarch64-linux-gnu"
PROGRAMS = ["usr/bin/cam", "usr/bin/gst-launch-1.0", "usr/bin/gst-inspect-1.0",
            "usr/bin/v4l2-compliance", "usr/bin/v4l2-ctl"]
PLUGINS = ["libgstlibcamera.so", "libgstcoreelements.so"]
DATA = ["usr/share/libcamera"]
LIB_DIRS = [f"usr/lib/{ARCH}", "usr/lib", f"lib/{ARCH}", "lib"]
# Libraries loaded with dlopen() when the one named loads, whatever the program does, where
# the library names them: sid's libSDL2 is sdl2-compat, which loads SDL3 at start (cam aborts
# without it); trixie's is SDL2 itself.
DLOPENED = {"libSDL2-2.0.so.0": ["libSDL3.so.0"]}


def readelf(path):
    """(interpreter or None, [NEEDED], [RUNPATH entries]) of an ELF file."""
    out = subprocess.run(["readelf", "-W", "-l", "-d", path], check=True,
                         capture_output=True, text=True).stdout
    interp = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", out)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    runpath = []
    for m in re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[([^\]]+)\]", out):
        runpath += m.split(":")
    return (interp.group(1) if interp else None), needed, runpath


def resolve(src, rel):
    """rel (a path inside src) with its symbolic links followed inside src; the chain of links
    met on the way, the final file last."""
    chain = []
    for _ in range(40):
        chain.append(rel)
        full = os.path.join(src, rel)
        if not os.path.islink(full):
            return chain if os.path.exists(full) else None
        target = os.readlink(full)
        if target.startswith("/"):
            rel = os.path.normpath(target.lstrip("/"))
        else:
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    return None


def find(src, pattern):
    """Paths (relative to src) of files named pattern anywhere under usr/lib."""
    hits = []
    for dirpath, _, files in os.walk(os.path.join(src, "usr/lib")):
        if pattern in files:
            hits.append(os.path.relpath(os.path.join(dirpath, pattern), src))
    return sorted(hits)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    # The tree as the unpacked packages lay it out (merged /usr: /lib is usr/lib).
    for link in ("bin", "lib", "sbin"):
        if not os.path.lexists(os.path.join(src, link)):
            os.symlink(f"usr/{link}", os.path.join(src, link))
    roots = list(PROGRAMS)
    for plugin in PLUGINS:
        found = find(src, plugin)
        if not found:
            sys.exit(f"camera_root: no {plugin} in the unpacked packages")
        roots += found
    scanner = find(src, "gst-plugin-scanner")
    roots += scanner
    wanted, elves, missing = set(), list(roots), []
    done = set()
    while elves:
        rel = elves.pop()
        if rel in done:
            continue
        done.add(rel)
        chain = resolve(src, rel)
        if chain is None:
            missing.append(rel)
            continue
        wanted.update(chain)
        interp, needed, runpath = readelf(os.path.join(src, chain[-1]))
        if interp:
            elves.append(interp.lstrip("/"))
        origin = os.path.dirname(chain[-1])
        dirs = [p.replace("$ORIGIN", "/" + origin).lstrip("/") for p in runpath] + LIB_DIRS
        dlopened = []
        for lib in DLOPENED.get(os.path.basename(chain[0]), []):
            with open(os.path.join(src, chain[-1]), "rb") as f:
                if lib.encode() in f.read():
                    dlopened.append(lib)
        for lib in needed + dlopened:
            for d in dirs:
                cand = os.path.normpath(os.path.join(d, lib))
                if resolve(src, cand):
                    elves.append(cand)
                    break
            else:
                missing.append(f"{lib} (needed by {chain[-1]})")
    if missing:
        sys.exit("camera_root: not in the unpacked packages: " + ", ".join(sorted(missing)))
    os.makedirs(dst, exist_ok=True)
    for link in ("bin", "lib", "sbin"):
        os.symlink(f"usr/{link}", os.path.join(dst, link))
    for d in ("dev", "proc", "sys", "tmp", "etc", "run"):
        os.makedirs(os.path.join(dst, d), exist_ok=True)
    for rel in sorted(wanted):
        if rel.split("/")[0] in ("bin", "lib", "sbin") and os.path.islink(os.path.join(src, rel.split("/")[0])):
            rel = "usr/" + rel
        s, t = os.path.join(src, rel), os.path.join(dst, rel)
        if os.path.lexists(t):
            continue
        os.makedirs(os.path.dirname(t), exist_ok=True)
        shutil.copy2(s, t, follow_symlinks=False)
    for d in DATA:
        if os.path.isdir(os.path.join(src, d)):
            shutil.copytree(os.path.join(src, d), os.path.join(dst, d), symlinks=True,
                            dirs_exist_ok=True)
    size = sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(dst) for f in fs
               if not os.path.islink(os.path.join(p, f)))
    print(f"camera_root: {len(wanted)} files, {size >> 20} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
