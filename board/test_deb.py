#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host-side tests of debian/rust-metadata.sh, cmabuf-dkms's DKMS pre-build step (run by
`make check`): it must stop early, with a message that says why, whenever the module would be
built with a rustc other than the kernel's, and leave metadata that is there alone.

Headers trees are faked in a temporary directory; the rustc is the host's.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "debian", "rust-metadata.sh")
RUSTC = shutil.which("rustc")


def rustc_version():
    return subprocess.run([RUSTC, "-V"], capture_output=True, text=True,
                          check=True).stdout.strip()


def crate_hash():
    """The crate hash this rustc gives a crate named `kernel`."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "kernel.rs")
        with open(src, "w") as f:
            f.write("#[no_mangle]\npub static X: fn() = f;\n#[inline(never)]\npub fn f() {}\n")
        subprocess.run([RUSTC, "--edition", "2021", "--crate-type", "lib", "--crate-name",
                        "kernel", "-C", "symbol-mangling-version=v0", "--emit", "obj", "-O",
                        src, "-o", os.path.join(d, "kernel.o")], check=True)
        nm = subprocess.run(["nm", os.path.join(d, "kernel.o")], capture_output=True,
                            text=True, check=True).stdout
    return re.search(r"Cs[0-9A-Za-z_]*_6kernel", nm).group(0)


@unittest.skipIf(RUSTC is None, "no rustc on this machine")
class RustMetadata(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.headers = os.path.join(self.tmp, "linux-headers-7.9.1+test-arm64")
        os.makedirs(os.path.join(self.headers, "rust"))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def tree(self, config, symvers=""):
        with open(os.path.join(self.headers, ".config"), "w") as f:
            f.write(config)
        with open(os.path.join(self.headers, "Module.symvers"), "w") as f:
            f.write(symvers)

    def run_script(self):
        return subprocess.run(["sh", SCRIPT, "7.9.1+test-arm64", self.headers],
                              capture_output=True, text=True)

    def good_config(self):
        return 'CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT="%s"\n' % rustc_version()

    def symvers(self, hash_):
        return "0x00000000\t_RNvNtNt%s5alloc9allocator4free\tvmlinux\tEXPORT_SYMBOL_GPL\t\n" % (
            hash_)

    def test_not_a_headers_tree(self):
        r = self.run_script()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a kernel headers tree", r.stderr)

    def test_kernel_without_rust(self):
        self.tree("# CONFIG_RUST is not set\n")
        r = self.run_script()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not built with CONFIG_RUST=y", r.stderr)

    def test_other_rustc_version(self):
        self.tree('CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT="rustc 1.0.0 (a 2015-05-15)"\n')
        r = self.run_script()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("was built with 'rustc 1.0.0 (a 2015-05-15)'", r.stderr)
        self.assertIn(rustc_version(), r.stderr)

    def test_same_version_text_other_crate_hash(self):
        self.tree(self.good_config(), self.symvers("Cs0000000000_6kernel"))
        r = self.run_script()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("which no symbol of 7.9.1+test-arm64's Module.symvers has", r.stderr)

    def test_metadata_shipped_with_the_headers_is_kept(self):
        self.tree(self.good_config(), self.symvers(crate_hash()))
        meta = os.path.join(self.headers, "rust", "libkernel.rmeta")
        open(meta, "w").close()
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Rust metadata of 7.9.1+test-arm64 present", r.stdout)
        self.assertEqual(os.listdir(os.path.join(self.headers, "rust")), ["libkernel.rmeta"])

    def test_metadata_of_another_rustc_is_remade_from_the_source(self):
        self.tree(self.good_config(), self.symvers(crate_hash()))
        open(os.path.join(self.headers, "rust", "libkernel.rmeta"), "w").close()
        with open(os.path.join(self.headers, "rust", ".cmabuf-rustc"), "w") as f:
            f.write("rustc 1.0.0 (a 2015-05-15)\n")
        r = self.run_script()
        # No /usr/src/linux-source-7.9.tar.xz here: it says which package to install.
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("install linux-source-7.9", r.stderr)


if __name__ == "__main__":
    unittest.main()
