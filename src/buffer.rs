// SPDX-License-Identifier: GPL-2.0

//! Buffers: one contiguous allocation from the region.
//!
//! A [`Buffer`] is what a handle and each mapping of it hold (`Arc`); when the
//! last of them goes, [`Buffer`]'s `Drop` hands its memory to
//! `Shared::release`, which frees it inside the device's lock scope, and its
//! [`Charge`] gives the bytes back to the device's accounting. The memory
//! itself lives in a [`Backing`], which the device also lists so that unbind
//! can revoke it (see `Shared::revoke`).
//!
//! Who frees the memory, by construction: a [`DmaMem`] is freed only with an
//! `Attached` proof, which exists only inside the device's lock scope while
//! the region is attached, or while an allocation is in flight (unbind waits
//! for those). Whichever of `Shared::release` and `Shared::revoke` takes the
//! memory out of the [`Backing`] first frees it, under the device lock.

use crate::{
    device::{
        BindGuard,
        Charge,
        Shared, //
    },
    dmamem::DmaMem,
    validate::{
        self,
        Mode, //
    },
    vma,
};
use core::sync::atomic::{
    AtomicU32,
    Ordering, //
};
use kernel::{
    bindings,
    mm::{
        virt::VmaNew,
        Mm, //
    },
    new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
};

/// The memory of a buffer and what revoking it needs.
struct Mem {
    /// The allocation; `None` once freed (by the last holder, or by unbind).
    dma: Option<DmaMem>,
    /// Set at the start of a revoke: no new mappings from then on.
    revoked: bool,
    /// Address spaces that mapped the buffer and are still alive, so that a revoke can wait for
    /// mmaps in flight (whose VMAs are not yet linked where a zap finds them). Dead ones are
    /// pruned at every mmap, so the list is bounded by the processes alive, not by history.
    mms: KVec<ARef<Mm>>,
    /// Importer mappings of the buffer's dma-buf (`map_dma_buf` not yet undone): devices may be
    /// doing DMA, so unbind waits for these before it frees the memory.
    importer_maps: usize,
    /// Kernel mappings (`vmap`) of the buffer's dma-buf; unbind waits for these too.
    vmaps: usize,
    /// Address of the buffer's dma-buf between export and release (0: none), for debugfs.
    dmabuf: usize,
}

/// The memory of one buffer, listed by the device for revocation.
#[pin_data]
pub(crate) struct Backing {
    /// Key in the device's list: the DMA address, unique among live buffers.
    id: u64,
    /// Size in bytes, page aligned.
    size: usize,
    /// Cache mode.
    mode: Mode,
    /// Device address.
    dma_addr: u64,
    /// The memory.
    #[pin]
    mem: Mutex<Mem>,
}

impl Backing {
    /// Wraps freshly allocated memory; on failure the memory is freed (an allocation is in flight,
    /// so `guard` proves the region attached).
    pub(crate) fn new(
        dma: DmaMem,
        size: usize,
        mode: Mode,
        guard: &BindGuard<'_>,
    ) -> Result<Arc<Self>> {
        let dma_addr = dma.dma_addr();
        let backing = Arc::pin_init(
            pin_init!(Self {
                id: dma_addr,
                size,
                mode,
                dma_addr,
                mem <- new_mutex!(Mem {
                    dma: None,
                    revoked: false,
                    mms: KVec::new(),
                    importer_maps: 0,
                    vmaps: 0,
                    dmabuf: 0,
                }),
            }),
            GFP_KERNEL,
        );
        match backing {
            Ok(backing) => {
                backing.mem.lock().dma = Some(dma);
                Ok(backing)
            }
            Err(e) => {
                dma.free(&guard.attached());
                Err(e)
            }
        }
    }

    /// Key in the device's list.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Maps pages from `first` into `vma`. `ENODEV` once revoked.
    fn mmap(&self, vma: &VmaNew, first: usize) -> Result {
        let mut mem = self.mem.lock();
        Self::usable(&mem)?;
        let mm: &Mm = vma.mm();
        // Room for this mm first, so that a failure leaves no PTEs behind.
        let known = mem.mms.iter().any(|m| core::ptr::eq(&**m, mm));
        if !known {
            // Forget address spaces that died: none of them can have an mmap in flight.
            mem.mms.retain(|m| vma::mm_is_alive(m));
            mem.mms.reserve(1, GFP_KERNEL)?;
        }
        mem.dma.as_ref().ok_or(ENODEV)?.mmap(vma, first)?;
        // Remember the address space: until this mmap returns and the VMA is linked, a revoke
        // could not find the new PTEs, so it first waits for this mm's mmap lock.
        if !known {
            // Does not allocate (room was reserved above), so it cannot fail.
            mem.mms.push(ARef::from(mm), GFP_NOWAIT)?;
        }
        Ok(())
    }

    /// Syncs a checked range; `ENODEV` once freed.
    fn sync(&self, req: &validate::SyncRequest) -> Result {
        let mem = self.mem.lock();
        let dma = mem.dma.as_ref().ok_or(ENODEV)?;
        dma.sync(req.for_cpu, req.dir, req.offset, req.len)
    }

    /// First step of a revoke: refuse new mappings; returns the address spaces to wait for.
    pub(crate) fn revoke_start(&self) -> KVec<ARef<Mm>> {
        let mut mem = self.mem.lock();
        mem.revoked = true;
        core::mem::take(&mut mem.mms)
    }

    /// The memory, for a new user of it: `ENODEV` once a revoke has started.
    fn usable(mem: &Mem) -> Result<&DmaMem> {
        match (&mem.dma, mem.revoked) {
            (Some(dma), false) => Ok(dma),
            _ => Err(ENODEV),
        }
    }

    /// Fills `table` for a new dma-buf attachment whose device takes segments of at most
    /// `max_segment` bytes.
    pub(crate) fn sg_table(&self, table: &mut bindings::sg_table, max_segment: u32) -> Result {
        Self::usable(&self.mem.lock())?.sg_table(table, max_segment)
    }

    /// An importer maps the memory for DMA: `ENODEV` once a revoke has started; otherwise the
    /// memory stays until [`Backing::end_import`].
    pub(crate) fn start_import(&self) -> Result {
        let mut mem = self.mem.lock();
        Self::usable(&mem)?;
        mem.importer_maps += 1;
        Ok(())
    }

    /// An importer unmapped the memory; tells a waiting unbind.
    pub(crate) fn end_import(&self, shared: &Shared) {
        self.mem.lock().importer_maps -= 1;
        shared.importers_changed();
    }

    /// A kernel user wants the memory's address; the memory stays until [`Backing::end_vmap`].
    ///
    /// Once a revoke has started, only an importer that still maps the buffer for DMA gets it:
    /// unbind waits for that importer anyway, and importers such as vivid (through
    /// videobuf2-dma-contig) take the address lazily, while streaming, and do not expect a
    /// failure. `ENODEV` otherwise.
    pub(crate) fn start_vmap(&self) -> Result<*mut c_void> {
        let mut mem = self.mem.lock();
        let addr = match (&mem.dma, mem.revoked) {
            (Some(dma), false) => dma.kernel_addr()?,
            (Some(dma), true) if mem.importer_maps > 0 => dma.kernel_addr()?,
            _ => return Err(ENODEV),
        };
        mem.vmaps += 1;
        Ok(addr)
    }

    /// A kernel user is done with the address; tells a waiting unbind.
    pub(crate) fn end_vmap(&self, shared: &Shared) {
        self.mem.lock().vmaps -= 1;
        shared.importers_changed();
    }

    /// Hands the whole buffer to the CPU or back to devices (`DMA_BUF_IOCTL_SYNC`).
    pub(crate) fn sync_all(&self, for_cpu: bool, dir: validate::Direction) -> Result {
        let mem = self.mem.lock();
        let dma = mem.dma.as_ref().ok_or(ENODEV)?;
        dma.sync(for_cpu, dir, 0, self.size)
    }

    /// Address spaces tracked for a revoke (those that mapped the buffer; dead ones are pruned at
    /// the next mmap).
    pub(crate) fn tracked_mms(&self) -> usize {
        self.mem.lock().mms.len()
    }

    /// Whether importers or kernel users still map the memory.
    pub(crate) fn busy(&self) -> bool {
        let mem = self.mem.lock();
        mem.importer_maps > 0 || mem.vmaps > 0
    }

    /// The buffer's dma-buf now exists at `dmabuf`.
    pub(crate) fn exported(&self, dmabuf: *mut c_void) {
        // CAST: Kept as an address only, to name it in debugfs while it lives.
        self.mem.lock().dmabuf = dmabuf as usize;
    }

    /// The buffer's dma-buf at `dmabuf` is being released.
    pub(crate) fn unexported(&self, dmabuf: *mut c_void) {
        let mut mem = self.mem.lock();
        // CAST: As above.
        if mem.dmabuf == dmabuf as usize {
            mem.dmabuf = 0;
        }
    }

    /// The name of the buffer's dma-buf (`DMA_BUF_SET_NAME`), if it has one.
    pub(crate) fn dmabuf_name(&self) -> Option<CString> {
        let mem = self.mem.lock();
        if mem.dmabuf == 0 {
            return None;
        }
        // SAFETY: The address is set at export and cleared (under this lock, which we hold) in
        // the dma-buf's `release`, before the core frees it: the dma-buf is live.
        unsafe { crate::dmabuf::name_of(mem.dmabuf as *mut c_void) }
    }

    /// Device address.
    pub(crate) fn dma_addr(&self) -> u64 {
        self.dma_addr
    }

    /// Takes the memory out, for the device to free under its lock; `None` if already taken.
    pub(crate) fn take_mem(&self) -> Option<DmaMem> {
        self.mem.lock().dma.take()
    }
}

/// A buffer as handles and mappings see it.
pub(crate) struct Buffer {
    /// The buffer's bytes in the device's accounting; given back when the buffer goes.
    charge: Charge,
    /// The memory.
    backing: Arc<Backing>,
    /// The handle it was allocated under (on its file).
    handle: u32,
    /// Live mappings (VMAs).
    map_count: AtomicU32,
}

impl Buffer {
    /// A new buffer for `handle`. If this fails, the dropped parts give everything back: the
    /// memory through [`Buffer`]'s `Drop`, the bytes through the [`Charge`]'s.
    pub(crate) fn new(charge: Charge, backing: Arc<Backing>, handle: u32) -> Result<Arc<Self>> {
        Arc::new(
            Self {
                charge,
                backing,
                handle,
                map_count: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    }

    /// The buffer's charge on the device.
    pub(crate) fn charge(&self) -> &Charge {
        &self.charge
    }

    /// The memory.
    pub(crate) fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The handle on its file (0 for a buffer allocated through the dma-heap interface).
    pub(crate) fn handle(&self) -> u32 {
        self.handle
    }

    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.backing.size
    }

    /// Size in pages.
    pub(crate) fn pages(&self) -> u64 {
        (self.backing.size >> PAGE_SHIFT) as u64
    }

    /// Cache mode.
    pub(crate) fn mode(&self) -> Mode {
        self.backing.mode
    }

    /// Device address.
    pub(crate) fn dma_addr(&self) -> u64 {
        self.backing.dma_addr
    }

    /// Live mappings.
    pub(crate) fn map_count(&self) -> u32 {
        self.map_count.load(Ordering::Relaxed)
    }

    /// A VMA now holds the buffer.
    pub(crate) fn mapped(&self) {
        self.map_count.fetch_add(1, Ordering::Relaxed);
    }

    /// A VMA let go of the buffer.
    pub(crate) fn unmapped(&self) {
        self.map_count.fetch_sub(1, Ordering::Relaxed);
    }

    /// Maps pages from `first` into `vma` (range checked by the caller).
    pub(crate) fn mmap(&self, vma: &VmaNew, first: usize) -> Result {
        self.backing.mmap(vma, first)
    }

    /// Syncs a checked range.
    pub(crate) fn sync(&self, req: &validate::SyncRequest) -> Result {
        self.backing.sync(req)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // The last handle or mapping is gone: unlist the memory and free it under the device
        // lock. The charge gives the bytes back when it drops right after this.
        self.charge.shared().release(&self.backing);
    }
}
