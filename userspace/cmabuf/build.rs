// SPDX-License-Identifier: GPL-2.0
//! Generates the Rust view of the ABI from the one C definition,
//! `include/uapi/linux/cmabuf.h`, exactly as the kernel module does.

use std::{env, path::PathBuf};

fn main() {
    // Relative to the package: a target directory shared by several checkouts must still
    // regenerate when this checkout's header changes.
    const HEADER: &str = "../../include/uapi/linux/cmabuf.h";
    println!("cargo:rerun-if-changed={HEADER}");
    // A target directory shared by checkouts (the board's cache) cannot rely on the header's
    // mtime alone: board/board.sh passes the header's hash, and a new hash reruns this script.
    println!("cargo:rerun-if-env-changed=CMABUF_UAPI_SHA");
    let header = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(HEADER)
        .canonicalize()
        .expect("include/uapi/linux/cmabuf.h next to the userspace/ directory");
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .use_core()
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .allowlist_type("cmabuf_.*")
        .allowlist_var("CMABUF_.*")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Unsigned)
        .generate()
        .expect("bindgen on cmabuf.h");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("uapi.rs");
    bindings.write_to_file(out).expect("write uapi.rs");
}
