// SPDX-License-Identifier: GPL-2.0

//! FFI edge: the file operations of `/dev/cmabufN`.
//!
//! The kernel crate's vtable for [`CmabufFile`], with `.owner = THIS_MODULE`
//! (which the 7.2 kernel crate leaves unset), so that an open file pins the
//! module; `miscdev.rs` registers it.

use crate::file::CmabufFile;
use kernel::{
    bindings,
    miscdevice::MiscDeviceOptions, //
};

/// The kernel crate's `struct miscdevice` template for [`CmabufFile`]; only its `fops` is used.
const TEMPLATE: bindings::miscdevice =
    MiscDeviceOptions { name: c"cmabuf" }.into_raw::<CmabufFile>();

/// File operations that may live in a `static`.
#[repr(transparent)]
struct FileOperations(bindings::file_operations);

// SAFETY: The table is immutable and only holds pointers to functions and to this module, which
// any thread may use.
unsafe impl Sync for FileOperations {}

/// The kernel crate's file operations for [`CmabufFile`], owned by this module.
static FOPS: FileOperations = FileOperations(bindings::file_operations {
    owner: &raw mut bindings::__this_module,
    // SAFETY: `TEMPLATE.fops` points at the kernel crate's constant vtable for `CmabufFile`,
    // valid for reads at compile time; every field is plain data or a function pointer.
    ..unsafe { *TEMPLATE.fops }
});

/// The file operations to register `/dev/cmabufN` with.
pub(crate) fn fops() -> &'static bindings::file_operations {
    &FOPS.0
}
