// SPDX-License-Identifier: GPL-2.0

//! FFI edge: the module's one list of held memory ([`Reaper`]), reachable
//! wherever memory's last owner drops (a mapping's close, a dma-buf's
//! release) and from debugfs: a global lock, which the kernel crate's
//! `global_lock!` leaves uninitialised until module init sets it up.

use crate::held::{
    Figures,
    Held,
    Reaper,
    Who, //
};
use kernel::{prelude::*, sync::Arc};

kernel::sync::global_lock! {
    // SAFETY: `Owner::new()` initialises it in module init, before the driver is registered
    // (before any memory exists or debugfs is read), and nothing else does.
    unsafe(uninit) static REAPER: Mutex<Option<Arc<Reaper>>> = None;
}

/// Keeps `item` until nobody else holds its memory, then drops it ([`Reaper::hold`]).
pub(crate) fn hold(item: KBox<dyn Held>) {
    let Some(reaper) = REAPER.lock().clone() else {
        // Only before module init or after module exit, when no memory exists: keep it forever
        // rather than free memory that is still in use.
        core::mem::forget(item);
        return;
    };
    Reaper::hold(reaper, item);
}

/// The module-wide figures of held memory.
pub(crate) fn stats() -> Figures {
    let reaper = REAPER.lock().clone();
    reaper.map_or_else(Figures::default, |reaper| reaper.stats())
}

/// Calls `f(who, bytes, ms held)` for each waiting allocation ([`Reaper::for_each`]).
pub(crate) fn for_each(f: impl FnMut(&Who, usize, i64)) {
    let reaper = REAPER.lock().clone();
    if let Some(reaper) = reaper {
        reaper.for_each(f);
    }
}

/// Owner of the waiting list, from module init to module exit.
pub(crate) struct Owner;

impl Owner {
    /// Sets up the waiting list and its work item.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Called once, in module init, before any other use.
        unsafe { REAPER.init() };
        *REAPER.lock() = Some(Reaper::new()?);
        Ok(Self)
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let reaper = REAPER.lock().take();
        if let Some(reaper) = reaper {
            reaper.shut();
        }
    }
}
