#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Register a vendor prefix in a copy of the kernel's vendor-prefixes.yaml.

    vendor_prefix.py VENDOR_PREFIXES_YAML PREFIX DESCRIPTION

Inserts the entry ``"^PREFIX,.*": {description: DESCRIPTION}`` where it sorts among the
others, as a patch to that file would; a prefix already there is left alone.
"""

import re
import sys

ENTRY = re.compile(r'^  "\^([^,"]+),\.\*":\s*$')


def main():
    path, prefix, description = sys.argv[1:4]
    with open(path) as f:
        lines = f.readlines()
    entries = [(i, m.group(1)) for i, line in enumerate(lines) if (m := ENTRY.match(line))]
    if not entries:
        sys.exit(f"{path}: no vendor prefix entries")
    if any(name == prefix for _, name in entries):
        return
    at = next((i for i, name in entries if name > prefix), None)
    if at is None:
        sys.exit(f"{path}: no entry sorts after {prefix}")
    lines[at:at] = [f'  "^{prefix},.*":\n', f"    description: {description}\n"]
    with open(path, "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
