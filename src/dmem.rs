// SPDX-License-Identifier: GPL-2.0

//! FFI edge: the dmem cgroup controller (`CONFIG_CGROUP_DMEM`).
//!
//! Each region registers one dmem region, named `cmabuf/<node>/<region>`
//! (the device-tree node cmabuf binds and the reserved-memory region it
//! serves), which `dmem.capacity` lists and `dmem.max`, `dmem.min` and
//! `dmem.low` limit, per cgroup. Every allocation is charged to the cgroup of
//! the task that allocates (a [`Charge`], owned by the memory and given back
//! when the memory goes back to the region, however long it outlives its
//! file, its process or the binding). A charge past a limit fails, and the
//! allocation with it (`EDQUOT`), before any memory is taken.
//!
//! The dmem region lives as long as the cmabuf region (the binding and every
//! allocation), so a node bound again finds it again, and its figures count
//! memory of the earlier binding until that memory goes.
//!
//! Without `CONFIG_CGROUP_DMEM` (Debian's stock kernels) the same types exist
//! with nothing inside, and the module references no dmem symbol.

#[cfg(CONFIG_CGROUP_DMEM)]
use core::ptr::NonNull;
use kernel::prelude::*;

#[cfg(CONFIG_CGROUP_DMEM)]
extern "C" {
    fn dmem_cgroup_unregister_region(region: *mut c_void);
    fn dmem_cgroup_try_charge(
        region: *mut c_void,
        size: u64,
        ret_pool: *mut *mut c_void,
        ret_limit_pool: *mut *mut c_void,
    ) -> c_int;
    fn dmem_cgroup_uncharge(pool: *mut c_void, size: u64);
}

/// A registered dmem region, unregistered on drop.
///
/// # Invariants
///
/// `ptr` is what a successful `dmem_cgroup_register_region()` returned, not yet unregistered.
pub(crate) struct Region {
    /// The dmem region.
    #[cfg(CONFIG_CGROUP_DMEM)]
    ptr: NonNull<c_void>,
}

// SAFETY: A dmem region may be charged and unregistered from any thread (the controller locks).
unsafe impl Send for Region {}
// SAFETY: `&self` only charges, which the controller serialises.
unsafe impl Sync for Region {}

impl Region {
    /// Registers a dmem region of `size` bytes named `name` (`cmabuf/<node>/<region>`).
    #[cfg(CONFIG_CGROUP_DMEM)]
    pub(crate) fn register(size: u64, name: &CStr) -> Result<Self> {
        let ptr = crate::compat::dmem_register_region(size, name)?;
        // INVARIANT: Registered just now.
        Ok(Self { ptr })
    }

    /// Without the controller: nothing to register.
    #[cfg(not(CONFIG_CGROUP_DMEM))]
    pub(crate) fn register(_size: u64, _name: &CStr) -> Result<Self> {
        Ok(Self {})
    }

    /// Charges `bytes` to the current task's cgroup; `EDQUOT` at a limit (its own or an
    /// ancestor's), nothing charged then.
    #[cfg(CONFIG_CGROUP_DMEM)]
    pub(crate) fn charge(&self, bytes: u64) -> Result<Charge> {
        let mut pool: *mut c_void = core::ptr::null_mut();
        // SAFETY: `ptr` is a registered region (type invariant); `pool` is writable; a null
        // limit-pool pointer asks for no reference to the cgroup at the limit.
        let ret = unsafe {
            dmem_cgroup_try_charge(self.ptr.as_ptr(), bytes, &mut pool, core::ptr::null_mut())
        };
        if ret == EAGAIN.to_errno() {
            return Err(crate::validate::edquot());
        }
        kernel::error::to_result(ret)?;
        // INVARIANT: A successful charge of `bytes` to `pool`.
        Ok(Charge {
            pool: NonNull::new(pool).ok_or(EINVAL)?,
            bytes,
        })
    }

    /// Without the controller: nothing to charge.
    #[cfg(not(CONFIG_CGROUP_DMEM))]
    pub(crate) fn charge(&self, _bytes: u64) -> Result<Charge> {
        Ok(Charge {})
    }
}

#[cfg(CONFIG_CGROUP_DMEM)]
impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant), unregistered once, here. Charges still held
        // keep their pools, which outlive the region's registration.
        unsafe { dmem_cgroup_unregister_region(self.ptr.as_ptr()) };
    }
}

/// Bytes charged to a cgroup's pool of a dmem region; uncharged on drop.
///
/// # Invariants
///
/// `pool` is the pool a successful `dmem_cgroup_try_charge()` of `bytes` returned, holding the
/// references that call took, until [`Drop`] gives them back with the bytes.
pub(crate) struct Charge {
    /// The pool charged.
    #[cfg(CONFIG_CGROUP_DMEM)]
    pool: NonNull<c_void>,
    /// The bytes charged.
    #[cfg(CONFIG_CGROUP_DMEM)]
    bytes: u64,
}

// SAFETY: Uncharging may happen on any thread.
unsafe impl Send for Charge {}
// SAFETY: `&self` gives no access to the pool.
unsafe impl Sync for Charge {}

#[cfg(CONFIG_CGROUP_DMEM)]
impl Drop for Charge {
    fn drop(&mut self) {
        // SAFETY: By the type invariant: a live charge, given back once, here.
        unsafe { dmem_cgroup_uncharge(self.pool.as_ptr(), self.bytes) };
    }
}
