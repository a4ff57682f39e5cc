// SPDX-License-Identifier: GPL-2.0

//! The edge to this module's own reference count: references held by what must keep the module
//! loaded where no open file, mapping or dma-buf does (memory whose pages others still hold,
//! freed later by a work item). Users hold no `unsafe`.

use kernel::bindings;

/// This module's own structure.
fn this_module() -> *mut bindings::module {
    &raw mut bindings::__this_module
}

/// One reference to this module; given back when dropped.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// A reference to this module, unless it is being unloaded (`try_module_get()`).
    pub(crate) fn try_get() -> Option<Self> {
        // SAFETY: `__this_module` is this module's own structure, valid while the module's code
        // runs, as it does here.
        if unsafe { bindings::try_module_get(this_module()) } {
            Some(Self(()))
        } else {
            None
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: `try_get()` took the reference given back here; while it was held the module
        // could not be unloaded, so its structure is valid.
        unsafe { bindings::module_put(this_module()) };
    }
}

/// Any number of references to this module, given back together when dropped: a place to
/// gather [`ModuleRef`]s whose holders went, to give them back after everything else.
pub(crate) struct ModuleRefs(usize);

impl ModuleRefs {
    /// None yet.
    pub(crate) fn new() -> Self {
        Self(0)
    }

    /// Takes `r` over.
    pub(crate) fn add(&mut self, r: ModuleRef) {
        core::mem::forget(r);
        self.0 += 1;
    }
}

impl Drop for ModuleRefs {
    fn drop(&mut self) {
        for _ in 0..self.0 {
            drop(ModuleRef(()));
        }
    }
}
