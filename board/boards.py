#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The real-board overlays, checked against what the admin guide documents.

    boards.py rows DOC                      board DTS, overlay, size, range (tab-separated)
    boards.py verify DOC DTS BASE RESULT    RESULT = BASE with DTS's overlay applied

The table of Documentation/admin-guide/boards.rst is the one statement of each
board's region (size, alloc-ranges); `verify` fails when the applied DTB differs
from it, when the overlay changed or dropped anything of the board's own tree,
or when the region cannot fit where it may go. Needs pylibfdt (dtschema's venv).
"""

import csv
import re
import sys

MIB = 1 << 20
PAGEBLOCK = 4 * MIB
UNITS = {"KiB": 1 << 10, "MiB": MIB, "GiB": 1 << 30}
POOL = "/reserved-memory/cmabuf-pool"
NODE = "/cmabuf"


def doc_rows(doc):
    """The board table: [(dts, overlay, size, (start, end))] from the csv-table."""
    with open(doc, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith(".. csv-table:: Board overlays")),
                 None)
    if start is None:
        raise SystemExit(f"{doc}: no 'Board overlays' csv-table")
    body = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith("   "):
            break
        if line.strip() and not line.strip().startswith(":"):
            body.append(line.strip())
    rows = []
    for dts, overlay, size, rng in csv.reader(body, skipinitialspace=True):
        rows.append((dts, overlay, parse_size(size), parse_range(rng)))
    if not rows:
        raise SystemExit(f"{doc}: the board table is empty")
    return rows


def parse_size(text):
    m = re.fullmatch(r"(\d+) (KiB|MiB|GiB)", text.strip())
    if not m:
        raise SystemExit(f"size {text!r}: expected e.g. '128 MiB'")
    return int(m.group(1)) * UNITS[m.group(2)]


def parse_range(text):
    """'0x40000000 - 0x100000000' (end exclusive) -> (start, end)."""
    m = re.fullmatch(r"(0x[0-9a-f_]+) - (0x[0-9a-f_]+)", text.strip())
    if not m:
        raise SystemExit(f"range {text!r}: expected '0xSTART - 0xEND'")
    start, end = (int(g.replace("_", ""), 16) for g in m.groups())
    if end <= start:
        raise SystemExit(f"range {text!r} is empty")
    return start, end


def tree(path):
    """Every node of a DTB: {path: {property: bytes}}."""
    import libfdt

    with open(path, "rb") as f:
        fdt = libfdt.Fdt(f.read())
    nodes = {}

    def walk(off, path):
        props = {}
        poff = fdt.first_property_offset(off, [libfdt.FDT_ERR_NOTFOUND])
        while poff >= 0:
            prop = fdt.get_property_by_offset(poff)
            props[prop.name] = bytes(prop)
            poff = fdt.next_property_offset(poff, [libfdt.FDT_ERR_NOTFOUND])
        nodes[path] = props
        sub = fdt.first_subnode(off, [libfdt.FDT_ERR_NOTFOUND])
        while sub >= 0:
            walk(sub, path.rstrip("/") + "/" + fdt.get_name(sub))
            sub = fdt.next_subnode(sub, [libfdt.FDT_ERR_NOTFOUND])

    walk(0, "/")
    return nodes


def number(words):
    """Big-endian 32-bit cells -> one number."""
    n = 0
    for w in words:
        n = n << 32 | w
    return n


def cells(value, n=1):
    """A property as numbers of n cells each."""
    words = [int.from_bytes(value[i:i + 4], "big") for i in range(0, len(value), 4)]
    return [number(words[i:i + n]) for i in range(0, len(words), n)]


def pairs(value, acells, scells):
    """A reg-like property as [(base, end)]."""
    nums = cells(value)
    step = acells + scells
    return [(number(nums[i:i + acells]),
             number(nums[i:i + acells]) + number(nums[i + acells:i + step]))
            for i in range(0, len(nums) - step + 1, step)]


def overlap(a, b):
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def human(n):
    for unit in ("GiB", "MiB", "KiB"):
        if n >= UNITS[unit] and (n % UNITS[unit] == 0 or unit == "MiB"):
            return f"{n // UNITS[unit]} {unit}"
    return f"{n} B"


def verify(base, res, size, rng):
    """Returns (errors, notes) for RESULT = BASE + overlay against the documented region."""
    errors, notes = [], []
    # The board's own tree is kept as it was: the overlay only adds.
    for path, props in base.items():
        if path not in res:
            errors.append(f"{path}: the board's node is gone")
            continue
        for name, value in props.items():
            if res[path].get(name) != value:
                errors.append(f"{path}: the board's property {name} changed")
    added = sorted(p for p in res if p not in base and "/__" not in p)
    if added != sorted([POOL, NODE]):
        errors.append(f"the overlay adds {added}, expected {sorted([POOL, NODE])}")
    rmem = res.get("/reserved-memory")
    if rmem is None or "/reserved-memory" not in base:
        errors.append("the board has no /reserved-memory node to merge into")
        return errors, notes
    acells = cells(rmem.get("#address-cells", b""))
    scells = cells(rmem.get("#size-cells", b""))
    if acells != [2] or scells != [2] or "ranges" not in rmem:
        errors.append("/reserved-memory: expected #address-cells = #size-cells = 2 and ranges")
        return errors, notes
    pool, node = res.get(POOL), res.get(NODE)
    if pool is None or node is None:
        errors.append(f"no {POOL} or no {NODE} in the result")
        return errors, notes

    # The region: a reusable shared-dma-pool, placed by the kernel, as documented.
    if pool.get("compatible") != b"shared-dma-pool\0":
        errors.append(f"{POOL}: compatible is not \"shared-dma-pool\"")
    for name, want in (("reusable", True), ("no-map", False), ("reg", False),
                       ("linux,cma-default", False)):
        if (name in pool) != want:
            errors.append(f"{POOL}: {name} must be {'present' if want else 'absent'}")
    got_size = cells(pool.get("size", b""), 2)
    if got_size != [size]:
        shown = ", ".join(human(x) for x in got_size) or "missing"
        errors.append(f"{POOL}: size {shown}, documented {human(size)}")
    elif size % PAGEBLOCK:
        errors.append(f"{POOL}: size {human(size)} is not a multiple of the 4 MiB pageblock")
    align = cells(pool.get("alignment", b""), 2)
    if len(align) != 1 or align[0] % PAGEBLOCK:
        errors.append(f"{POOL}: alignment must be one multiple of 4 MiB")
    got_rng = pairs(pool.get("alloc-ranges", b""), 2, 2)
    if got_rng != [rng]:
        shown = [f"{a:#x} - {b:#x}" for a, b in got_rng]
        errors.append(f"{POOL}: alloc-ranges {shown}, documented {rng[0]:#x} - {rng[1]:#x}")
    phandle = pool.get("phandle")
    if phandle is None or node.get("memory-region") != phandle:
        errors.append(f"{NODE}: memory-region does not point at {POOL}")
    if node.get("compatible") != b"cmabuf,dma-buffer\0":
        errors.append(f"{NODE}: compatible is not \"cmabuf,dma-buffer\"")

    # Room: RAM inside the range, less the fixed carve-outs and the other kernel-placed
    # regions that may land there.
    racells = cells(res["/"].get("#address-cells", b"\0\0\0\2"))[0]
    rscells = cells(res["/"].get("#size-cells", b"\0\0\0\1"))[0]
    ram = [r for p, props in res.items() if props.get("device_type") == b"memory\0"
           for r in pairs(props.get("reg", b""), racells, rscells)]
    if not ram:
        notes.append("no memory node (the boot loader fills it in): room not computed")
        return errors, notes
    room = sum(overlap(r, rng) for r in ram)
    taken = []
    for path, props in res.items():
        if not path.startswith("/reserved-memory/") or path == POOL or \
                props.get("status", b"okay\0") not in (b"okay\0", b"ok\0"):
            continue
        if "reg" in props:
            used = sum(overlap(r, rng) for r in pairs(props["reg"], 2, 2))
        elif "size" in props:
            where = pairs(props["alloc-ranges"], 2, 2) if "alloc-ranges" in props else ram
            used = cells(props["size"], 2)[0] if any(overlap(w, rng) for w in where) else 0
        else:
            continue
        if used:
            taken.append((path.rsplit("/", 1)[1], used))
    free = room - sum(u for _, u in taken)
    others = ", ".join(f"{n} {human(u)}" for n, u in taken) or "nothing else"
    line = f"range holds {human(room)} of RAM; {others}; {human(max(free, 0))} left for " \
           f"{human(size)}"
    if free < size:
        errors.append("no room: " + line)
    else:
        notes.append(line)
    return errors, notes


def main(argv):
    if len(argv) == 3 and argv[1] == "rows":
        for dts, overlay, size, (start, end) in doc_rows(argv[2]):
            print(f"{dts}\t{overlay}\t{size}\t{start:#x}-{end:#x}")
        return 0
    if len(argv) == 6 and argv[1] == "verify":
        _, _, doc, dts, base_dtb, res_dtb = argv
        row = [r for r in doc_rows(doc) if r[0] == dts]
        if len(row) != 1:
            print(f"{dts}: not (once) in {doc}", file=sys.stderr)
            return 1
        errors, notes = verify(tree(base_dtb), tree(res_dtb), row[0][2], row[0][3])
        for e in errors:
            print(f"{dts}: {e}", file=sys.stderr)
        for n in notes:
            print(f"{dts}: {n}", file=sys.stderr)
        return 1 if errors else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
