// SPDX-License-Identifier: GPL-2.0

//! The edge to the kernel's shrinkers (`shrinker_alloc`, `shrinker_register`, `shrinker_free`):
//! a safe, registered [`Shrinker`] for any `T: `[`Shrink`], which holds its `T` and hands it
//! to the callbacks, in the style of the kernel crate's abstractions. Users hold no `unsafe`.

use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
};

/// What memory pressure asks of a shrinkable cache.
pub(crate) trait Shrink: Send + Sync + Sized {
    /// Objects it could give back now (`count_objects`); 0 when it cannot tell without waiting.
    fn count(this: ArcBorrow<'_, Self>) -> usize;
    /// Gives back what it can, or arranges for it (`scan_objects`): the number given or about to
    /// be, `None` to stop this round (nothing to give, or not now).
    fn scan(this: ArcBorrow<'_, Self>) -> Option<usize>;
}

/// A registered shrinker whose callbacks reach `T`.
///
/// # Invariants
///
/// `raw` is a registered shrinker from `shrinker_alloc()` whose `private_data` is
/// `Arc::as_ptr(&owner)` and whose callbacks are [`count`] and [`scan`] for `T`; freed in
/// [`Drop`], before `owner` (which so outlives every callback).
pub(crate) struct Shrinker<T: Shrink> {
    /// The shrinker.
    raw: NonNull<bindings::shrinker>,
    /// What its callbacks reach, held until the shrinker is freed.
    _owner: Arc<T>,
}

// SAFETY: The shrinker is only freed, from any thread; `T` is `Send + Sync`.
unsafe impl<T: Shrink> Send for Shrinker<T> {}
// SAFETY: `&self` gives nothing access to the shrinker.
unsafe impl<T: Shrink> Sync for Shrinker<T> {}

impl<T: Shrink> Shrinker<T> {
    /// Registers a shrinker named `name` for `owner`.
    pub(crate) fn register(name: &'static CStr, owner: &Arc<T>) -> Result<Self> {
        // SAFETY: `name` is a string without conversions, used as the format.
        let raw = unsafe { bindings::shrinker_alloc(0, name.as_char_ptr()) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // SAFETY: `raw` is a fresh, unregistered shrinker: ours to fill in. The callbacks reach
        // `owner` through `private_data` while registered, which the `Arc` kept in `Self` keeps
        // alive until `Drop` freed the shrinker.
        unsafe {
            (*raw.as_ptr()).count_objects = Some(count::<T>);
            (*raw.as_ptr()).scan_objects = Some(scan::<T>);
            (*raw.as_ptr()).seeks = bindings::DEFAULT_SEEKS as c_int;
            (*raw.as_ptr()).private_data = Arc::as_ptr(owner).cast_mut().cast();
            bindings::shrinker_register(raw.as_ptr());
        }
        // INVARIANT: Registered, with `owner` as private data and `T`'s callbacks.
        Ok(Self {
            raw,
            _owner: owner.clone(),
        })
    }
}

impl<T: Shrink> Drop for Shrinker<T> {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant); `shrinker_free()` waits for running callbacks
        // before it returns, after which none runs; `self._owner` is dropped after this.
        unsafe { bindings::shrinker_free(self.raw.as_ptr()) };
    }
}

/// The `T` a shrinker callback serves.
///
/// # Safety
///
/// `s` is a [`Shrinker<T>`]'s shrinker, in one of its callbacks.
unsafe fn owner_of<'a, T: Shrink>(s: *mut bindings::shrinker) -> ArcBorrow<'a, T> {
    // SAFETY: `private_data` is `Arc::as_ptr()` of the `T` the registration holds, which lives
    // until after `shrinker_free()`, which waits for this callback (`Shrinker`'s invariant).
    unsafe { ArcBorrow::from_raw((*s).private_data.cast::<T>()) }
}

/// `count_objects`.
///
/// # Safety
///
/// Called by the shrinker core, for a [`Shrinker<T>`]'s shrinker.
unsafe extern "C" fn count<T: Shrink>(
    s: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: Called by the shrinker core for a `Shrinker<T>`'s shrinker.
    let owner = unsafe { owner_of::<T>(s) };
    // CAST: An object count fits in `c_ulong`.
    T::count(owner) as c_ulong
}

/// `scan_objects`.
///
/// # Safety
///
/// Called by the shrinker core, for a [`Shrinker<T>`]'s shrinker.
unsafe extern "C" fn scan<T: Shrink>(
    s: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: Called by the shrinker core for a `Shrinker<T>`'s shrinker.
    let owner = unsafe { owner_of::<T>(s) };
    match T::scan(owner) {
        // CAST: An object count fits in `c_ulong`.
        Some(n) => n as c_ulong,
        // CAST: `SHRINK_STOP` is `~0UL`.
        None => bindings::SHRINK_STOP as c_ulong,
    }
}
