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
//! `open` hands to the file, and gives the device its sysfs attributes:
//! `heap_name` (the dma-heap name the node is published under, which the udev
//! and mdev rules link in `/dev/dma_heap/`) and the ready reserve's
//! `ready_reserve` and `ready_reserve_unit` (see `reserve.rs`). It does not
//! know the file type (`file.rs` uses it), so it is generic over it.

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
    /// The dma-heap name (sysfs `heap_name`).
    heap_name: CString,
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
        heap_name: CString,
        shared: Arc<Shared>,
        fops: &'static bindings::file_operations,
    ) -> impl PinInit<Self, Error> {
        let parent = crate::region::raw_device(shared.dev());
        try_pin_init!(&this in Self {
            name,
            heap_name,
            shared,
            inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut misc = MiscDeviceOptions { name: c"cmabuf" }.into_raw::<T>();
                misc.fops = fops;
                // `/sys/class/misc/cmabufN/device` leads to the platform device; the misc device
                // is deregistered (unbind) before its parent goes.
                misc.parent = parent;
                // CAST: The core only reads the table (`const struct attribute_group **`).
                misc.groups = GROUPS.0.as_ptr().cast_mut();
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

/// `show` of the `heap_name` attribute of `/sys/class/misc/cmabufN`.
///
/// # Safety
///
/// Called by sysfs for a device made by `misc_register()` of a [`Registration`]'s `inner`, while
/// the attribute exists: `misc_deregister()` removes it (waiting for running calls) before the
/// registration is freed.
unsafe extern "C" fn show_heap_name(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: See the function's safety section.
    let this = unsafe { registration_of(dev) };
    // SAFETY: `buf` is sysfs's page-sized buffer; the format takes one NUL-terminated string,
    // which lives as long as the registration.
    let n =
        unsafe { bindings::sysfs_emit(buf, c"%s\n".as_char_ptr(), this.heap_name.as_char_ptr()) };
    // CAST: `sysfs_emit()` returns at most a page's length.
    n as isize
}

/// The [`Registration`] whose misc device sysfs made `dev` for.
///
/// # Safety
///
/// `dev` is a device made by `misc_register()` of a [`Registration`]'s `inner`, in a call of one
/// of its attributes while the attribute exists (see [`show_heap_name`]).
unsafe fn registration_of<'a>(dev: *mut bindings::device) -> &'a Registration {
    // SAFETY: `misc_register()` made `dev` with the misc device as its driver data; that misc
    // device is the `inner` field of a live `Registration` (the function's safety section), and
    // `Opaque<T>` has the address of its `T`.
    unsafe {
        let misc = (*dev).driver_data.cast::<Opaque<bindings::miscdevice>>();
        &*kernel::container_of!(misc, Registration, inner)
    }
}

/// `show` of a number attribute: `value` of the node's state, in decimal.
///
/// # Safety
///
/// As [`show_heap_name`].
unsafe fn show_number(
    dev: *mut bindings::device,
    buf: *mut c_char,
    value: fn(&Shared) -> u64,
) -> isize {
    // SAFETY: See the function's safety section.
    let this = unsafe { registration_of(dev) };
    // SAFETY: `buf` is sysfs's page-sized buffer; the format takes one `unsigned long long`.
    let n = unsafe { bindings::sysfs_emit(buf, c"%llu\n".as_char_ptr(), value(&this.shared)) };
    // CAST: `sysfs_emit()` returns at most a page's length.
    n as isize
}

/// `store` of a size attribute (root only, by its mode): bytes, with an optional `K`, `M` or `G`
/// suffix, handed to `set`; `EINVAL` for anything else, or what `set` returns.
///
/// # Safety
///
/// As [`show_heap_name`]; `buf` holds `count` bytes.
unsafe fn store_size(
    dev: *mut bindings::device,
    buf: *const c_char,
    count: usize,
    set: fn(&Shared, u64) -> Result,
) -> isize {
    // SAFETY: See the function's safety section.
    let this = unsafe { registration_of(dev) };
    // SAFETY: sysfs hands `count` readable bytes at `buf` for the call.
    let text = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    match crate::validate::parse_size(text).and_then(|b| set(&this.shared, b)) {
        // CAST: `count` is at most a page.
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `show` of the `ready_reserve` attribute: the ready reserve's target in bytes.
///
/// # Safety
///
/// As [`show_heap_name`].
unsafe extern "C" fn show_ready_reserve(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: As this function's.
    unsafe { show_number(dev, buf, Shared::reserve_target) }
}

/// `store` of the `ready_reserve` attribute: `EINVAL` for more than the region, `ENODEV` after
/// unbind.
///
/// # Safety
///
/// As [`store_size`].
unsafe extern "C" fn store_ready_reserve(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: As this function's.
    unsafe { store_size(dev, buf, count, Shared::set_reserve_target) }
}

/// `show` of the `ready_reserve_unit` attribute: the reserve's fixed piece size in bytes, 0 when
/// it is learned from the allocations.
///
/// # Safety
///
/// As [`show_heap_name`].
unsafe extern "C" fn show_ready_reserve_unit(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: As this function's.
    unsafe { show_number(dev, buf, Shared::reserve_unit) }
}

/// `store` of the `ready_reserve_unit` attribute: 0 (learned) or a whole number of pages from
/// 1 MiB to the region's size, else `EINVAL`; `ENODEV` after unbind.
///
/// # Safety
///
/// As [`store_size`].
unsafe extern "C" fn store_ready_reserve_unit(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: As this function's.
    unsafe { store_size(dev, buf, count, Shared::set_reserve_unit) }
}

/// A sysfs table of pointers that may live in a `static`.
#[repr(transparent)]
struct Table<T, const N: usize>([T; N]);

// SAFETY: Immutable; the pointers lead to other immutable statics.
unsafe impl<T, const N: usize> Sync for Table<T, N> {}

/// A `struct attribute` named `name` with permissions `mode` (the other fields, lockdep's, are
/// zero, as for any static attribute).
const fn attribute(name: &'static CStr, mode: u16) -> bindings::attribute {
    let mut attr: bindings::attribute = pin_init::zeroed();
    attr.name = name.to_bytes_with_nul().as_ptr().cast::<c_char>();
    attr.mode = mode;
    attr
}

/// The `heap_name` attribute (read-only for everyone, as the rules read it).
static HEAP_NAME: Table<bindings::device_attribute, 1> = Table([bindings::device_attribute {
    attr: attribute(c"heap_name", 0o444),
    __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 {
        show: Some(show_heap_name),
    },
    __bindgen_anon_2: bindings::device_attribute__bindgen_ty_2 { store: None },
}]);

/// The reserve's attributes (readable by everyone, written by root): `ready_reserve`,
/// `ready_reserve_unit`.
static READY_RESERVE: Table<bindings::device_attribute, 2> = Table([
    bindings::device_attribute {
        attr: attribute(c"ready_reserve", 0o644),
        __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 {
            show: Some(show_ready_reserve),
        },
        __bindgen_anon_2: bindings::device_attribute__bindgen_ty_2 {
            store: Some(store_ready_reserve),
        },
    },
    bindings::device_attribute {
        attr: attribute(c"ready_reserve_unit", 0o644),
        __bindgen_anon_1: bindings::device_attribute__bindgen_ty_1 {
            show: Some(show_ready_reserve_unit),
        },
        __bindgen_anon_2: bindings::device_attribute__bindgen_ty_2 {
            store: Some(store_ready_reserve_unit),
        },
    },
]);

/// The attributes of the group, ended by a null pointer.
static ATTRS: Table<*mut bindings::attribute, 4> = Table([
    (&raw const HEAP_NAME.0[0].attr).cast_mut(),
    (&raw const READY_RESERVE.0[0].attr).cast_mut(),
    (&raw const READY_RESERVE.0[1].attr).cast_mut(),
    core::ptr::null_mut(),
]);

/// The misc device's one attribute group.
static GROUP: Table<bindings::attribute_group, 1> = Table([bindings::attribute_group {
    __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
        attrs_const: ATTRS.0.as_ptr().cast(),
    },
    ..pin_init::zeroed()
}]);

/// The groups `misc_register()` creates with the device, ended by a null pointer.
static GROUPS: Table<*const bindings::attribute_group, 2> =
    Table([&raw const GROUP.0[0], core::ptr::null()]);

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered, by the type invariant; this is the one deregistration.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}
