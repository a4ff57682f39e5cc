#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make install / make uninstall against a scratch copy of the board's root file system.

    test_install.py ROOTFS KDIR CMABUFCTL

ROOTFS is the board's rootfs before cmabuf is installed (busybox, the kernel's
modules with their modules.dep, /etc/mdev.conf). On copies of it: install puts
exactly the module (in modules.dep), the udev rule, the mdev rule and cmabufctl
there; a second install changes nothing; uninstall gives back the very tree it
started from (every path, mode and byte)."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOTFS = KDIR = CTL = None


def snapshot(top):
    """{relative path: (mode, contents or link target)}"""
    out = {}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                what = None
            else:
                with open(p, "rb") as f:
                    what = f.read()
            out[os.path.relpath(p, top)] = (st.st_mode, what)
    return out


def make(target, rootfs):
    subprocess.run(["make", "-s", "-C", ROOT, target, f"INSTALL_MOD_PATH={rootfs}",
                    f"KDIR={KDIR}", f"CMABUFCTL={CTL}"], check=True, stdout=subprocess.DEVNULL)


class Install(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "rootfs")
        shutil.copytree(ROOTFS, self.root, symlinks=True)
        self.before = snapshot(self.root)
        self.release = subprocess.run(["make", "-s", "-C", KDIR, "kernelrelease"], check=True,
                                      capture_output=True, text=True).stdout.strip()

    def tearDown(self):
        self.tmp.cleanup()

    def test_install_reinstall_uninstall(self):
        make("install", self.root)
        after = snapshot(self.root)
        mods = f"lib/modules/{self.release}"
        added = sorted(set(after) - set(self.before))
        self.assertEqual(sorted([f"{mods}/updates", f"{mods}/updates/src",
                                 f"{mods}/updates/src/cmabuf.ko", "etc/udev",
                                 "etc/udev/rules.d", "etc/udev/rules.d/60-cmabuf.rules",
                                 "usr/bin/cmabufctl"]), added)
        self.assertEqual([], sorted(set(self.before) - set(after)))
        dep = after[f"{mods}/modules.dep"][1].decode()
        self.assertIn("updates/src/cmabuf.ko:", dep)
        self.assertIn(b"alias of:N*T*Ccmabuf,dma-buffer", after[f"{mods}/modules.alias"][1])
        self.assertEqual(0o755, after["usr/bin/cmabufctl"][0] & 0o777)
        with open(CTL, "rb") as f:
            self.assertEqual(f.read(), after["usr/bin/cmabufctl"][1])
        mdev = after["etc/mdev.conf"][1].decode()
        self.assertTrue(mdev.startswith(self.before["etc/mdev.conf"][1].decode()))
        self.assertEqual(1, mdev.count("cmabuf[0-9]+ root:video 0660"))

        make("install", self.root)
        self.assertEqual(after, snapshot(self.root), "a second install changed the tree")

        make("uninstall", self.root)
        self.assertEqual(self.before, snapshot(self.root), "uninstall left a different tree")

    def test_needs_a_root(self):
        r = subprocess.run(["make", "-s", "-C", ROOT, "install"], capture_output=True, text=True)
        self.assertEqual(2, r.returncode)
        self.assertIn("INSTALL_MOD_PATH=<rootfs>", r.stderr)


if __name__ == "__main__":
    ROOTFS, KDIR, CTL = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main()
