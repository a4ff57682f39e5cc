// SPDX-License-Identifier: GPL-2.0

//! The edge to the kernel's workqueues where the kernel crate stops: the queue cmabuf's work
//! runs on, and waiting for a work item (flush, cancel), which the 7.2 and 7.3 crates do not
//! offer. Users hold no `unsafe`.

use kernel::{
    bindings,
    workqueue::{
        DelayedWork,
        Queue,
        Work, //
    },
};

/// The workqueue cmabuf's work runs on: `system_dfl_wq`, the unbound one (the kernel crate's
/// `system()` and `system_unbound()` name the deprecated `system_wq` and `system_unbound_wq`).
pub(crate) fn queue() -> &'static Queue {
    // SAFETY: `system_dfl_wq` is a C global, set up before modules load and never freed.
    unsafe { Queue::from_raw(bindings::system_dfl_wq) }
}

/// The C structure of a delayed work item.
fn raw_delayed<T: ?Sized, const ID: u64>(w: &DelayedWork<T, ID>) -> *mut bindings::delayed_work {
    // CAST: `DelayedWork` is a transparent wrapper of `struct delayed_work`.
    core::ptr::from_ref(w)
        .cast::<bindings::delayed_work>()
        .cast_mut()
}

/// Runs `w` now if it is pending, and waits until it is not running.
pub(crate) fn flush_delayed<T: ?Sized, const ID: u64>(w: &DelayedWork<T, ID>) {
    // SAFETY: A `DelayedWork` is initialised when it exists (`new_delayed_work!` pins it in
    // place), and `w` borrows it for the call.
    unsafe { bindings::flush_delayed_work(raw_delayed(w)) };
}

/// Waits until `w` is neither pending nor running.
pub(crate) fn flush<T: ?Sized, const ID: u64>(w: &Work<T, ID>) {
    // CAST: `Work` is a transparent wrapper of `struct work_struct`.
    let raw = core::ptr::from_ref(w)
        .cast::<bindings::work_struct>()
        .cast_mut();
    // SAFETY: A `Work` is initialised when it exists (`new_work!` pins it in place), and `w`
    // borrows it for the call.
    unsafe { bindings::flush_work(raw) };
}

/// Cancels `w` if pending and waits until it is not running; whether it was pending.
///
/// A cancelled item does not run, so what its queueing handed over (the kernel crate's
/// `enqueue` gives the queue a reference) is not given back: call this only where that cannot
/// matter (nothing is pending by design, and the caller says so if it was).
pub(crate) fn cancel_delayed_sync<T: ?Sized, const ID: u64>(w: &DelayedWork<T, ID>) -> bool {
    // SAFETY: As in `flush_delayed`.
    unsafe { bindings::cancel_delayed_work_sync(raw_delayed(w)) }
}
