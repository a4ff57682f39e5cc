#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side tests of the Makefile's handling of `make run CMD=...` (run by `make check`).

The board runs CMD with its own shell, so make must pass it on verbatim: no
expansion of `$HOME`, `$?` or `$i`, quotes and loops intact.
"""

import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def handed_on(cmd, via_env=False):
    env = dict(os.environ)
    args = ["make", "-s", "-C", ROOT, "cmd-echo"]
    if via_env:
        env["CMD"] = cmd
    else:
        args.append("CMD=" + cmd)
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return out.stdout.rstrip("\n")


class Cmd(unittest.TestCase):
    CMD = 'echo $HOME; for i in 1 2; do echo "a  b $i"; done; true $(id -u); exit $?'

    def test_command_line_verbatim(self):
        self.assertEqual(handed_on(self.CMD), self.CMD)

    def test_environment_verbatim(self):
        self.assertEqual(handed_on(self.CMD, via_env=True), self.CMD)

    def test_single_quotes(self):
        cmd = "echo 'x $y' \"z\""
        self.assertEqual(handed_on(cmd), cmd)


class KbuildArgs(unittest.TestCase):
    """A kernel built with gcc (Debian's headers) gets LLVM= empty; ours LLVM=-19."""

    def args(self, config, *extra):
        import tempfile
        with tempfile.TemporaryDirectory() as kdir:
            with open(os.path.join(kdir, ".config"), "w") as f:
                f.write(config)
            out = subprocess.run(["make", "-s", "-C", ROOT, "KDIR=" + kdir, *extra,
                                  "kbuild-args"], capture_output=True, text=True, check=True)
        return out.stdout.split()

    def test_gcc_kernel(self):
        self.assertIn("LLVM=", self.args("CONFIG_CC_IS_GCC=y\n"))

    def test_clang_kernel(self):
        self.assertIn("LLVM=-19", self.args("CONFIG_CC_IS_CLANG=y\n"))

    def test_command_line_wins(self):
        self.assertIn("LLVM=1", self.args("CONFIG_CC_IS_GCC=y\n", "LLVM=1"))


if __name__ == "__main__":
    unittest.main()
