// SPDX-License-Identifier: GPL-2.0

//! Buffers: one contiguous allocation from the region.
//!
//! A [`Buffer`] is what a handle and each mapping of it hold (`Arc`); when the
//! last of them goes, [`Buffer`]'s `Drop` gives the memory back and updates
//! the device's accounting. The memory itself lives in a [`Backing`], which
//! the device also lists so that unbind can revoke it (see
//! `Shared::revoke`).

use crate::{
    device::{
        DevReservation,
        Shared, //
    },
    dmamem::DmaMem,
    validate::{
        self,
        Mode, //
    },
};
use core::sync::atomic::{
    AtomicU32,
    Ordering, //
};
use kernel::{
    mm::{
        virt::VmaNew,
        Mm, //
    },
    new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    }, //
};

/// The memory of a buffer and what revoking it needs.
struct Mem {
    /// The allocation; `None` once revoked (unbind) and freed.
    dma: Option<DmaMem>,
    /// Set at the start of a revoke: no new mappings from then on.
    revoked: bool,
    /// Every address space that mapped the buffer, so a revoke can wait for mmaps in flight.
    mms: KVec<ARef<Mm>>,
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
    /// Wraps freshly allocated memory.
    pub(crate) fn new(dma: DmaMem, size: usize, mode: Mode) -> Result<Arc<Self>> {
        let dma_addr = dma.dma_addr();
        Arc::pin_init(
            pin_init!(Self {
                id: dma_addr,
                size,
                mode,
                dma_addr,
                mem <- new_mutex!(Mem {
                    dma: Some(dma),
                    revoked: false,
                    mms: KVec::new(),
                }),
            }),
            GFP_KERNEL,
        )
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
        let dma = match (&mem.dma, mem.revoked) {
            (Some(dma), false) => dma,
            _ => return Err(ENODEV),
        };
        dma.mmap(vma, first)?;
        // Remember the address space: until this mmap returns and the VMA is linked, a revoke
        // could not find the new PTEs, so it first waits for this mm's mmap lock.
        let mm: &Mm = vma.mm();
        if !mem.mms.iter().any(|m| core::ptr::eq(&**m, mm)) {
            mem.mms.push(ARef::from(mm), GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Syncs a checked range; `ENODEV` once revoked.
    fn sync(&self, req: &validate::SyncRequest) -> Result {
        let mem = self.mem.lock();
        let dma = mem.dma.as_ref().ok_or(ENODEV)?;
        dma.sync(req.for_cpu, req.dir, req.offset, req.len);
        Ok(())
    }

    /// First step of a revoke: refuse new mappings; returns the address spaces to wait for.
    pub(crate) fn revoke_start(&self) -> KVec<ARef<Mm>> {
        let mut mem = self.mem.lock();
        mem.revoked = true;
        core::mem::take(&mut mem.mms)
    }

    /// Last step of a revoke, after every PTE is gone: free the memory.
    pub(crate) fn revoke_finish(&self) {
        let dma = self.mem.lock().dma.take();
        drop(dma);
    }
}

/// A buffer as handles and mappings see it.
pub(crate) struct Buffer {
    /// The device, for accounting when the buffer goes.
    shared: Arc<Shared>,
    /// The memory.
    backing: Arc<Backing>,
    /// The handle it was allocated under (on its file).
    handle: u32,
    /// Live mappings (VMAs).
    map_count: AtomicU32,
}

impl Buffer {
    /// A new buffer for `handle`, taking over the device-level reservation of its bytes.
    pub(crate) fn new(
        shared: Arc<Shared>,
        backing: Arc<Backing>,
        handle: u32,
        reservation: DevReservation<'_>,
    ) -> Result<Arc<Self>> {
        let buffer = Arc::new(
            Self {
                shared,
                backing,
                handle,
                map_count: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )?;
        // From here on `Drop for Buffer` gives the bytes back.
        reservation.commit();
        Ok(buffer)
    }

    /// The handle on its file.
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
        // The last handle or mapping is gone: unlist the memory (freed when `backing` drops
        // right after this) and give its bytes back.
        self.shared.release(&self.backing);
    }
}
