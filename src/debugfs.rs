// SPDX-License-Identifier: GPL-2.0

//! debugfs: `/sys/kernel/debug/cmabuf/cmabufN`, each device's statistics as text.
//!
//! The directory belongs to the module ([`Root`], created before the driver
//! is registered and dropped after it is unregistered); probes find it
//! through [`root`]. A per-device file keeps the directory alive until the
//! file goes.

use crate::{
    device::Shared,
    policy::HIST_BUCKETS, //
};
use core::{
    ptr,
    sync::atomic::{
        AtomicPtr,
        Ordering, //
    },
};
use kernel::{
    debugfs::Dir,
    fmt,
    prelude::*,
    sync::Arc, //
};

/// The module's debugfs directory, while [`Root`] lives.
static ROOT: AtomicPtr<Dir> = AtomicPtr::new(ptr::null_mut());

/// Owner of `/sys/kernel/debug/cmabuf/`.
///
/// # Invariants
///
/// [`ROOT`] points at `*self._dir` from construction until [`Drop`], and is null otherwise.
pub(crate) struct Root {
    /// The directory; only reached through [`ROOT`].
    _dir: KBox<Dir>,
}

impl Root {
    /// Creates the directory; the module does this before registering the driver.
    pub(crate) fn create() -> Result<Self> {
        let dir = KBox::new(Dir::new(c"cmabuf"), GFP_KERNEL)?;
        // INVARIANT: Published until `drop`; the box does not move its contents.
        ROOT.store(ptr::from_ref(&*dir).cast_mut(), Ordering::Release);
        Ok(Self { _dir: dir })
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // INVARIANT: Unpublished before the box is freed.
        ROOT.store(ptr::null_mut(), Ordering::Release);
    }
}

/// The module's debugfs directory; `ENOENT` outside the module's lifetime.
pub(crate) fn root() -> Result<Dir> {
    let dir = ROOT.load(Ordering::Acquire);
    if dir.is_null() {
        return Err(ENOENT);
    }
    // SAFETY: By `Root`'s invariant a non-null `ROOT` points at a live `Dir`. Probes, the only
    // callers, run while the driver is registered, which is strictly inside `Root`'s lifetime
    // (the module creates it before registering the driver and drops it after unregistering),
    // so it cannot be freed while we clone it.
    Ok(unsafe { &*dir }.clone())
}

/// A name userspace chose (`DMA_BUF_SET_NAME`), printed so that it cannot forge lines or
/// terminal controls: printable ASCII but `\\` as is, every other byte as `\xNN`.
struct Escaped<'a>(&'a [u8]);

impl core::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() && b != b'\\' || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Renders a device's statistics.
pub(crate) fn render(shared: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let s = match shared.stats() {
        Ok(s) => s,
        Err(_) => return writeln!(f, "(statistics unavailable: out of memory)"),
    };
    writeln!(f, "device          /dev/cmabuf{}", shared.index())?;
    let name = shared.region_name().to_str().unwrap_or("(not UTF-8)");
    writeln!(f, "region          {name}")?;
    writeln!(f, "region_size     {}", shared.region_size())?;
    writeln!(f, "largest_free    {}", s.largest_free)?;
    writeln!(f, "live_buffers    {}", s.live_buffers)?;
    writeln!(f, "live_bytes      {}", s.live_bytes)?;
    writeln!(f, "peak_bytes      {}", s.peak_bytes)?;
    writeln!(f, "allocs          {}", s.allocs)?;
    writeln!(f, "fail_nomem      {}", s.fail_nomem)?;
    writeln!(f, "fail_busy       {}", s.fail_busy)?;
    writeln!(f, "fail_intr       {}", s.fail_intr)?;
    writeln!(f, "fail_limit      {}", s.fail_limit)?;
    writeln!(f, "fallbacks       {}", s.fallbacks)?;
    writeln!(f, "retries         {}", s.retries)?;
    writeln!(f, "exports         {}", s.exports)?;
    writeln!(f, "live_dmabufs    {}", s.live_dmabufs)?;
    writeln!(f, "pool_bytes      {}", s.pool_bytes)?;
    writeln!(f, "pool_free_bytes {}", s.pool_free_bytes)?;
    writeln!(f, "reserve_bytes   {}", s.reserve_bytes)?;
    writeln!(f, "reserve_ready   {}", s.reserve_ready_bytes)?;
    writeln!(f, "reserve_lent    {}", s.reserve_lent_bytes)?;
    writeln!(f, "reserve_unit    {}", s.reserve_unit)?;
    writeln!(f, "reserve_hits    {}", s.reserve_hits)?;
    writeln!(f, "reserve_misses  {}", s.reserve_misses)?;
    writeln!(f, "reserve_refill_us {}", s.reserve_refill_us)?;
    // Module-wide: memory of freed buffers whose pages direct I/O or a pipe still holds, and
    // what checking it cost.
    let held = crate::held_global::stats();
    writeln!(f, "held_buffers    {}", held.buffers)?;
    writeln!(f, "held_bytes      {}", held.bytes)?;
    writeln!(f, "held_total      {}", held.total)?;
    writeln!(f, "held_passes     {}", held.passes)?;
    writeln!(f, "held_checks     {}", held.checks)?;
    writeln!(f, "held_work_us    {}", held.work_us)?;
    // This device's: who allocated each, and for how long its pages have been held.
    let mut res = writeln!(f, "held (pid command bytes held_ms)");
    let index = shared.index();
    crate::held_global::for_each(|who, bytes, ms| {
        if res.is_ok() && who.dev == index {
            let len = who
                .comm
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(who.comm.len());
            res = writeln!(
                f,
                "  {} {} {bytes} {ms}",
                who.pid,
                Escaped(&who.comm[..len])
            );
        }
    });
    res?;
    writeln!(f, "latency_us      count")?;
    for (i, n) in s.hist.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let lo = if i == 0 { 0 } else { 1u64 << i };
        if i == HIST_BUCKETS - 1 {
            writeln!(f, "  [{lo}, inf)  {n}")?;
        } else {
            writeln!(f, "  [{lo}, {})  {n}", 1u64 << (i + 1))?;
        }
    }
    // The region's buffers, also those an earlier binding of the node left alive.
    let mut res = writeln!(f, "buffers");
    shared.region().for_each_used(|addr, size, dmabuf, chunk| {
        if res.is_err() {
            return;
        }
        if chunk {
            res = writeln!(f, "  {addr:#x} {size} chunk of small buffers");
            return;
        }
        let name = if dmabuf.is_null() {
            None
        } else {
            // SAFETY: `for_each_used` holds the region's lock, under which a listed dma-buf is
            // live (its `release` unlists it under that lock first).
            unsafe { crate::dmabuf::name_of(dmabuf) }
        };
        res = match name {
            Some(n) => writeln!(f, "  {addr:#x} {size} dma-buf {}", Escaped(n.to_bytes())),
            None => writeln!(f, "  {addr:#x} {size} dma-buf -"),
        };
    });
    res?;
    Ok(())
}
