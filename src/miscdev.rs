// SPDX-License-Identifier: GPL-2.0

//! FFI edge: the misc device `/dev/cmabufN` of one bound node.
//!
//! The kernel crate's `MiscDeviceRegistration` takes only a static name and
//! builds file operations without `.owner`, so an open file would not pin the
//! module and `rmmod` could free the code that the file's `release` still has
//! to run. [`Registration`] registers the file operations it is given (the
//! kernel crate's vtable for the file type with `.owner = THIS_MODULE`, made
//! in `fops.rs`): the VFS then takes a module reference for every open file
//! and drops it only after `release` has returned, and `rmmod` fails with
//! `EBUSY`/`EAGAIN` while any file (or mapping, which holds its file) is
//! open. It also carries a per-device name and the [`Shared`] state that
//! `open` hands to the file. It does not know the file type (`file.rs` uses
//! it), so it is generic over it.

use crate::device::Shared;
use kernel::{
    bindings,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
    str::CString,
    sync::Arc,
    types::Opaque, //
};

/// A registered `/dev/cmabufN`.
///
/// # Invariants
///
/// `inner` is registered with `misc_register()` from construction until [`PinnedDrop`], with
/// `name` as its name and static file operations; `name` and `shared` are not changed
/// while it is registered.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration {
    /// The C misc device; laid out as the kernel crate's `MiscDeviceRegistration<T>` of its
    /// file type, which the vtable's `open` casts it to.
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    /// The node name, `cmabufN`.
    name: CString,
    /// What open files share with the bound node.
    shared: Arc<Shared>,
}

// SAFETY: `misc_deregister()` may be called from any thread; the other fields are `Send`.
unsafe impl Send for Registration {}
// SAFETY: `&self` only reads fields that do not change while registered.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers the misc device `name` whose files share `shared`, with the file operations
    /// `fops` (the kernel crate's vtable for `T`, with `.owner` set: see `fops.rs`).
    pub(crate) fn register<T: MiscDevice>(
        name: CString,
        shared: Arc<Shared>,
        fops: &'static bindings::file_operations,
    ) -> impl PinInit<Self, Error> {
        let parent = crate::region::raw_device(shared.dev());
        try_pin_init!(&this in Self {
            name,
            shared,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut misc = MiscDeviceOptions { name: c"cmabuf" }.into_raw::<T>();
                misc.fops = fops;
                // `/sys/class/misc/cmabufN/device` leads to the platform device; the misc device
                // is deregistered (unbind) before its parent goes.
                misc.parent = parent;
                // SAFETY: `this` is being initialised and `name` was initialised above, before
                // `inner`; it stays pinned at this address for as long as we are registered.
                misc.name = unsafe { (*this.as_ptr()).name.as_char_ptr() };
                // SAFETY: The initialiser may write to `slot`.
                unsafe { slot.write(misc) };
                // SAFETY: `slot` holds a valid misc device whose name and fops outlive the
                // registration; it is pinned and deregistered in `PinnedDrop` before it is freed.
                // INVARIANT: Registered on success.
                kernel::error::to_result(unsafe { bindings::misc_register(slot) })
            }),
        })
    }

    /// The [`Shared`] state of the device that `misc` (given to `open` of a file type `T`
    /// registered through [`Registration::register`]) belongs to.
    pub(crate) fn shared_of<T: MiscDevice>(misc: &MiscDeviceRegistration<T>) -> Arc<Shared> {
        // The kernel crate's `open` treats the `struct miscdevice` we register as a
        // `MiscDeviceRegistration<T>`: the two must stay layout-identical, or a kernel change
        // breaks memory instead of the build.
        const {
            use core::mem::{
                align_of,
                size_of, //
            };
            assert!(size_of::<MiscDeviceRegistration<T>>() == size_of::<bindings::miscdevice>());
            assert!(align_of::<MiscDeviceRegistration<T>>() == align_of::<bindings::miscdevice>());
            assert!(size_of::<Opaque<bindings::miscdevice>>() == size_of::<bindings::miscdevice>());
        }
        let raw = misc.as_raw();
        // SAFETY: Every `/dev/cmabufN` is registered by `Registration::register`, so the misc
        // device `open` was given is the `inner` field of a live `Registration`: `misc_open()`
        // holds `misc_mtx`, which `misc_deregister()` also takes, for the whole of `open`.
        // `Opaque<T>` has the address of its `T`.
        let this = unsafe {
            &*kernel::container_of!(raw.cast::<Opaque<bindings::miscdevice>>(), Self, inner)
        };
        this.shared.clone()
    }
}

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered, by the type invariant; this is the one deregistration.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}
