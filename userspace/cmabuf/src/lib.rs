// SPDX-License-Identifier: GPL-2.0
//! Safe access to cmabuf: physically contiguous DMA buffers carved on demand
//! from a CMA region, through `/dev/cmabufN`.
//!
//! ```no_run
//! use cmabuf::{Device, Mode, Access};
//! # fn main() -> Result<(), cmabuf::Error> {
//! let dev = Device::open("/dev/cmabuf0")?;
//! let mut buf = dev.alloc(1 << 20).mode(Mode::Cached).allocate()?;
//! {
//!     let mut cpu = buf.cpu_access(Access::Write)?; // synced for the CPU
//!     cpu.as_mut_slice().fill(0xab);
//! } // synced back for the device
//! println!("DMA address {:#x}", buf.dma_addr().unwrap_or(0));
//! # Ok(()) }
//! ```
//!
//! A [`Buffer`] maps itself and, when dropped, unmaps and frees its handle.
//! The structures and ioctl numbers come from `include/uapi/linux/cmabuf.h`
//! through bindgen, as in the kernel module.

pub mod cma;
mod error;
pub mod size;
pub mod sys;

pub use error::Error;

use nix::fcntl::OFlag;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use std::os::fd::FromRawFd;
use std::{
    ffi::CStr,
    num::NonZeroUsize,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    ptr::NonNull,
    sync::Arc,
};

/// A `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// How the CPU caches a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Coherent DMA memory (the default): no sync needed.
    Coherent,
    /// Coherent, with a write-combined CPU mapping: fast sequential writes.
    WriteCombine,
    /// Cached, non-coherent: fast CPU access, sync around device access.
    Cached,
}

impl Mode {
    /// The `CMABUF_MODE_*` value.
    pub fn bits(self) -> u32 {
        match self {
            Mode::Coherent => sys::CMABUF_MODE_COHERENT,
            Mode::WriteCombine => sys::CMABUF_MODE_WRITECOMBINE,
            Mode::Cached => sys::CMABUF_MODE_CACHED,
        }
    }

    /// The mode for a `CMABUF_MODE_*` value.
    pub fn from_bits(bits: u32) -> Option<Mode> {
        match bits {
            sys::CMABUF_MODE_COHERENT => Some(Mode::Coherent),
            sys::CMABUF_MODE_WRITECOMBINE => Some(Mode::WriteCombine),
            sys::CMABUF_MODE_CACHED => Some(Mode::Cached),
            _ => None,
        }
    }

    /// Short name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Coherent => "coherent",
            Mode::WriteCombine => "writecombine",
            Mode::Cached => "cached",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "coherent" => Ok(Mode::Coherent),
            "wc" | "writecombine" | "write-combine" => Ok(Mode::WriteCombine),
            "cached" => Ok(Mode::Cached),
            _ => Err(Error::Parse(format!(
                "unknown mode {s:?} (coherent, wc, cached)"
            ))),
        }
    }
}

/// What the CPU does with a buffer during a [`CpuAccess`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The CPU reads (what the device wrote).
    Read,
    /// The CPU writes (for the device to read).
    Write,
    /// Both.
    ReadWrite,
}

impl Access {
    fn bits(self) -> u32 {
        match self {
            Access::Read => sys::CMABUF_SYNC_READ,
            Access::Write => sys::CMABUF_SYNC_WRITE,
            Access::ReadWrite => sys::CMABUF_SYNC_READ | sys::CMABUF_SYNC_WRITE,
        }
    }
}

/// Facts about a device, its region, limits and use (`CMABUF_IOCTL_DEV_INFO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevInfo {
    /// `N` of `/dev/cmabufN`.
    pub index: u32,
    /// The region's name.
    pub region_name: String,
    /// Physical base, if the caller may see addresses.
    pub region_base: Option<u64>,
    /// Region size in bytes.
    pub region_size: u64,
    /// Page size allocations are rounded to.
    pub page_size: u32,
    /// Whether the device is DMA-coherent (page-backed mappings in every mode).
    pub dma_coherent: bool,
    /// The name it is published under in `/dev/dma_heap/` (sysfs `heap_name`; `None` if the
    /// module is too old to say).
    pub heap_name: Option<String>,
    /// Limit on buffers per file (handles, and buffers whose memory is still taken).
    pub max_buffers_per_file: u64,
    /// Limit on bytes per file.
    pub max_bytes_per_file: u64,
    /// Limit on bytes per device.
    pub max_bytes_per_device: u64,
    /// Live handles of this file.
    pub file_buffers: u64,
    /// Their bytes.
    pub file_bytes: u64,
    /// Buffers allocated on the device.
    pub dev_buffers: u64,
    /// Their bytes.
    pub dev_bytes: u64,
}

/// Facts about a buffer (`CMABUF_IOCTL_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    /// Cache mode.
    pub mode: Option<Mode>,
    /// Size in bytes.
    pub size: u64,
    /// Offset for `mmap()`.
    pub mmap_offset: u64,
    /// DMA address, if the caller may see it.
    pub dma_addr: Option<u64>,
    /// Live mappings, in any process.
    pub map_count: u32,
    /// Whether its mappings are page-backed (`CMABUF_ALLOC_PAGE_MAP`).
    pub page_map: bool,
}

/// Allocation statistics of a device (`CMABUF_IOCTL_STATS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Successful allocations.
    pub allocs: u64,
    /// `ENOMEM`: cmabuf's own buffers left no room.
    pub fail_nomem: u64,
    /// `EBUSY`: room, but CMA could not provide it after the retries.
    pub fail_busy: u64,
    /// `EINTR`: interrupted by a signal.
    pub fail_intr: u64,
    /// Refused by a limit.
    pub fail_limit: u64,
    /// Memory from outside the region that was given back.
    pub fallbacks: u64,
    /// Retries.
    pub retries: u64,
    /// Buffers allocated now.
    pub live_buffers: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Most bytes at once.
    pub peak_bytes: u64,
    /// The region's size.
    pub region_size: u64,
    /// The largest buffer cmabuf's own buffers leave room for.
    pub largest_free: u64,
    /// Latency of successful allocations: bucket `i` is `[2^i, 2^(i+1))` µs.
    pub latency_hist: Vec<u64>,
    /// Bytes in the chunks small buffers are carved from.
    pub pool_bytes: u64,
    /// Of them, bytes holding no buffer.
    pub pool_free_bytes: u64,
    /// Buffers gone while others (a pipe, direct I/O) still hold their pages: still taken and
    /// charged, counted in `live_buffers`.
    pub held_buffers: u64,
    /// Their bytes, counted in `live_bytes`.
    pub held_bytes: u64,
    /// The ready reserve: bytes kept allocated ahead of need (0: none).
    pub reserve_bytes: u64,
    /// Of them, bytes ready now.
    pub reserve_ready_bytes: u64,
    /// Of them, bytes of live buffers it served.
    pub reserve_lent_bytes: u64,
    /// The size of the buffers it serves.
    pub reserve_unit: u64,
    /// Allocations it served.
    pub reserve_hits: u64,
    /// Allocations of at least 1 MiB it could not serve while on.
    pub reserve_misses: u64,
    /// How long its last refill took, in µs.
    pub reserve_refill_us: u64,
}

impl Stats {
    /// The latency below which `pct` percent of allocations finished, as a bucket's upper
    /// bound in µs (`None` if there were none).
    pub fn latency_percentile_us(&self, pct: u64) -> Option<u64> {
        let total: u64 = self.latency_hist.iter().sum();
        if total == 0 {
            return None;
        }
        let mut seen = 0;
        for (i, n) in self.latency_hist.iter().enumerate() {
            seen += n;
            if seen * 100 >= total * pct {
                return Some(1 << (i + 1));
            }
        }
        None
    }
}

mod ioc {
    use crate::sys::*;
    nix::ioctl_readwrite!(alloc, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_ALLOC, cmabuf_alloc);
    nix::ioctl_write_ptr!(free, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_FREE, cmabuf_free);
    nix::ioctl_readwrite!(info, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_INFO, cmabuf_info);
    nix::ioctl_write_ptr!(sync, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_SYNC, cmabuf_sync);
    nix::ioctl_readwrite!(
        dev_info,
        CMABUF_IOC_MAGIC,
        CMABUF_IOC_NR_DEV_INFO,
        cmabuf_dev_info
    );
    nix::ioctl_readwrite!(stats, CMABUF_IOC_MAGIC, CMABUF_IOC_NR_STATS, cmabuf_stats);
    nix::ioctl_readwrite!(
        export,
        CMABUF_IOC_MAGIC,
        CMABUF_IOC_NR_EXPORT,
        cmabuf_export
    );
}

fn addr(out_flags: u32, addr: u64) -> Option<u64> {
    (out_flags & sys::CMABUF_OUT_ADDR_WITHHELD == 0).then_some(addr)
}

/// An open `/dev/cmabufN`.
#[derive(Clone, Debug)]
pub struct Device {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

impl Device {
    /// Opens a device node, e.g. `/dev/cmabuf0`.
    pub fn open(path: impl AsRef<Path>) -> Result<Device> {
        let path = path.as_ref().to_path_buf();
        let fd = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|errno| Error::Open {
            path: path.clone(),
            errno,
        })?;
        Ok(Device {
            fd: Arc::new(fd),
            path,
        })
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Device, region, limits and use.
    pub fn info(&self) -> Result<DevInfo> {
        let mut name = [0u8; 64];
        let mut d = sys::cmabuf_dev_info {
            region_name_ptr: name.as_mut_ptr() as u64,
            region_name_len: name.len() as u32,
            ..Default::default()
        };
        // SAFETY: `d` is a valid `cmabuf_dev_info` and `name` outlives the call.
        unsafe { ioc::dev_info(self.fd.as_raw_fd(), &mut d) }.map_err(Error::sys("DEV_INFO"))?;
        let region_name = CStr::from_bytes_until_nul(&name)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(DevInfo {
            index: d.index,
            region_name,
            region_base: addr(d.out_flags, d.region_base),
            region_size: d.region_size,
            page_size: d.page_size,
            dma_coherent: d.out_flags & sys::CMABUF_OUT_DMA_COHERENT != 0,
            heap_name: self.heap_name(),
            max_buffers_per_file: d.max_buffers_per_file,
            max_bytes_per_file: d.max_bytes_per_file,
            max_bytes_per_device: d.max_bytes_per_device,
            file_buffers: d.file_buffers,
            file_bytes: d.file_bytes,
            dev_buffers: d.dev_buffers,
            dev_bytes: d.dev_bytes,
        })
    }

    /// The path of the device's sysfs attribute `attr`, `/sys/class/misc/<node>/<attr>` (the node
    /// found through the path it was opened with, which may be a `/dev/dma_heap/` link).
    pub fn sysfs_attr(&self, attr: &str) -> Option<PathBuf> {
        let node = std::fs::canonicalize(&self.path).ok()?;
        let name = node.file_name()?.to_str()?;
        Some(PathBuf::from(format!("/sys/class/misc/{name}/{attr}")))
    }

    /// The device's dma-heap name, from its sysfs attribute `heap_name`.
    fn heap_name(&self) -> Option<String> {
        let attr = std::fs::read_to_string(self.sysfs_attr("heap_name")?).ok()?;
        Some(attr.trim_end().to_string())
    }

    /// Allocation statistics of the device.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = sys::cmabuf_stats::default();
        // SAFETY: `s` is a valid, zeroed `cmabuf_stats`.
        unsafe { ioc::stats(self.fd.as_raw_fd(), &mut s) }.map_err(Error::sys("STATS"))?;
        Ok(Stats {
            allocs: s.allocs,
            fail_nomem: s.fail_nomem,
            fail_busy: s.fail_busy,
            fail_intr: s.fail_intr,
            fail_limit: s.fail_limit,
            fallbacks: s.fallbacks,
            retries: s.retries,
            live_buffers: s.live_buffers,
            live_bytes: s.live_bytes,
            peak_bytes: s.peak_bytes,
            region_size: s.region_size,
            largest_free: s.largest_free,
            latency_hist: s.latency_hist.to_vec(),
            pool_bytes: s.pool_bytes,
            pool_free_bytes: s.pool_free_bytes,
            held_buffers: s.held_buffers,
            held_bytes: s.held_bytes,
            reserve_bytes: s.reserve_bytes,
            reserve_ready_bytes: s.reserve_ready_bytes,
            reserve_lent_bytes: s.reserve_lent_bytes,
            reserve_unit: s.reserve_unit,
            reserve_hits: s.reserve_hits,
            reserve_misses: s.reserve_misses,
            reserve_refill_us: s.reserve_refill_us,
        })
    }

    /// Starts allocating a buffer of `size` bytes (rounded up to pages).
    pub fn alloc(&self, size: u64) -> AllocBuilder<'_> {
        AllocBuilder {
            dev: self,
            size,
            mode: Mode::Coherent,
            map: true,
            page_map: false,
        }
    }
}

/// Options of an allocation; see [`Device::alloc`].
#[must_use]
pub struct AllocBuilder<'a> {
    dev: &'a Device,
    size: u64,
    mode: Mode,
    map: bool,
    page_map: bool,
}

impl AllocBuilder<'_> {
    /// Page-backed mappings (`CMABUF_ALLOC_PAGE_MAP`; default no): `O_DIRECT` and io_uring can
    /// read and write the buffer's mappings (those of its dma-bufs too).
    pub fn page_map(mut self, page_map: bool) -> Self {
        self.page_map = page_map;
        self
    }

    /// The cache mode (default [`Mode::Coherent`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Whether to map the buffer into this process (default yes).
    pub fn map(mut self, map: bool) -> Self {
        self.map = map;
        self
    }

    /// Allocates (and maps) the buffer.
    pub fn allocate(self) -> Result<Buffer> {
        self.alloc_ioctl(false).map(|(buf, _)| buf)
    }

    /// Allocates (and maps) the buffer and exports it in the same call
    /// (`CMABUF_ALLOC_EXPORT`): the buffer and a descriptor of its dma-buf (read-write,
    /// close-on-exec; the dma-buf [`Buffer::export`] gives descriptors of too).
    pub fn allocate_exported(self) -> Result<(Buffer, OwnedFd)> {
        match self.alloc_ioctl(true)? {
            (buf, Some(fd)) => Ok((buf, fd)),
            // Not reached: an export always gives a descriptor.
            (_, None) => Err(Error::sys("ALLOC")(nix::errno::Errno::EBADF)),
        }
    }

    /// `CMABUF_IOCTL_ALLOC`, exporting if `export`: the buffer (mapped if asked) and the
    /// dma-buf's descriptor.
    fn alloc_ioctl(self, export: bool) -> Result<(Buffer, Option<OwnedFd>)> {
        let page_map = if self.page_map {
            sys::CMABUF_ALLOC_PAGE_MAP
        } else {
            0
        };
        let (export_flag, fd_flags) = if export {
            (
                sys::CMABUF_ALLOC_EXPORT,
                (OFlag::O_RDWR | OFlag::O_CLOEXEC).bits() as u32,
            )
        } else {
            (0, 0)
        };
        let mut a = sys::cmabuf_alloc {
            size: self.size,
            flags: self.mode.bits() | page_map | export_flag,
            fd_flags,
            ..Default::default()
        };
        // SAFETY: `a` is a valid `cmabuf_alloc`.
        unsafe { ioc::alloc(self.dev.fd.as_raw_fd(), &mut a) }.map_err(Error::sys("ALLOC"))?;
        // SAFETY: With `CMABUF_ALLOC_EXPORT` the kernel installed a new descriptor, now ours.
        let fd = export.then(|| unsafe { OwnedFd::from_raw_fd(a.fd as i32) });
        let mut buf = Buffer {
            fd: self.dev.fd.clone(),
            handle: a.handle,
            size: a.alloc_size,
            mmap_offset: a.mmap_offset,
            mode: self.mode,
            dma_addr: addr(a.out_flags, a.dma_addr),
            map: None,
        };
        if self.map {
            buf.map()?;
        }
        Ok((buf, fd))
    }
}

/// A buffer: freed (and unmapped) on drop.
#[derive(Debug)]
pub struct Buffer {
    fd: Arc<OwnedFd>,
    handle: u32,
    size: u64,
    mmap_offset: u64,
    mode: Mode,
    dma_addr: Option<u64>,
    map: Option<NonNull<u8>>,
}

// SAFETY: The mapping is plain shared memory; access goes through `&self`/`&mut self`.
unsafe impl Send for Buffer {}
// SAFETY: As above: shared access is read-only through `as_slice`.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// The handle on its file.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Size in bytes (page-rounded).
    pub fn len(&self) -> usize {
        self.size as usize
    }

    /// Never true: buffers have at least one page.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Cache mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The device address, if this process may see it (`CAP_SYS_RAWIO`).
    pub fn dma_addr(&self) -> Option<u64> {
        self.dma_addr
    }

    /// Offset for `mmap()` on the device file, to map it elsewhere.
    pub fn mmap_offset(&self) -> u64 {
        self.mmap_offset
    }

    /// Whether it is mapped into this process.
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// The current state from the kernel.
    pub fn info(&self) -> Result<BufferInfo> {
        let mut i = sys::cmabuf_info {
            handle: self.handle,
            ..Default::default()
        };
        // SAFETY: `i` is a valid `cmabuf_info`.
        unsafe { ioc::info(self.fd.as_raw_fd(), &mut i) }.map_err(Error::sys("INFO"))?;
        Ok(BufferInfo {
            mode: Mode::from_bits(i.flags & sys::CMABUF_MODE_MASK),
            size: i.size,
            mmap_offset: i.mmap_offset,
            dma_addr: addr(i.out_flags, i.dma_addr),
            map_count: i.map_count,
            page_map: i.flags & sys::CMABUF_ALLOC_PAGE_MAP != 0,
        })
    }

    /// A new descriptor of the buffer's dma-buf (the same dma-buf every time), for V4L2
    /// (`V4L2_MEMORY_DMABUF`), DRM PRIME and other importers. It holds the memory after the
    /// buffer is dropped, for as long as it (or an importer) lives. Close-on-exec, read-write.
    pub fn export(&self) -> Result<std::os::fd::OwnedFd> {
        self.export_range(0, 0)
    }

    /// A descriptor of the dma-buf of the `len` bytes at `offset` (page aligned; `len` 0: up to
    /// the end): one plane of a multi-planar format, say. The same range gives the same dma-buf.
    pub fn export_range(&self, offset: u64, len: u64) -> Result<std::os::fd::OwnedFd> {
        let mut e = sys::cmabuf_export {
            handle: self.handle,
            flags: (OFlag::O_RDWR | OFlag::O_CLOEXEC).bits() as u32,
            offset,
            length: len,
            ..Default::default()
        };
        // SAFETY: `e` is a valid `cmabuf_export`.
        unsafe { ioc::export(self.fd.as_raw_fd(), &mut e) }.map_err(Error::sys("EXPORT"))?;
        // SAFETY: On success the kernel installed a new descriptor, now ours alone.
        Ok(unsafe { OwnedFd::from_raw_fd(e.fd as i32) })
    }

    /// Maps the whole buffer (shared, read-write) if not yet mapped.
    pub fn map(&mut self) -> Result<()> {
        if self.map.is_none() {
            self.map = Some(self.mmap_whole()?);
        }
        Ok(())
    }

    /// A further mapping of the whole buffer (shared, read-write), unmapped on drop.
    ///
    /// Independent of the buffer's own mapping; the kernel keeps the memory while any mapping
    /// exists, even after the buffer is dropped.
    pub fn mapping(&self) -> Result<Mapping> {
        Ok(Mapping {
            ptr: self.mmap_whole()?,
            len: self.size as usize,
        })
    }

    /// A new shared mapping of the whole buffer; the caller unmaps it.
    fn mmap_whole(&self) -> Result<NonNull<u8>> {
        let len =
            NonZeroUsize::new(self.size as usize).ok_or(Error::Parse("empty buffer".into()))?;
        let offset = i64::try_from(self.mmap_offset).map_err(|_| Error::Parse("offset".into()))?;
        // SAFETY: A fresh shared mapping of the device file; the caller owns it.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                self.fd.as_fd(),
                offset,
            )
        }
        .map_err(Error::sys("mmap"))?;
        Ok(ptr.cast())
    }

    /// The mapped bytes. Panics if not mapped (see [`AllocBuilder::map`]).
    pub fn as_slice(&self) -> &[u8] {
        let ptr = self.map.expect("buffer is not mapped");
        // SAFETY: The mapping covers `size` bytes and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.size as usize) }
    }

    /// The mapped bytes, writable. Panics if not mapped.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let ptr = self.map.expect("buffer is not mapped");
        // SAFETY: As above; `&mut self` makes this the only Rust reference.
        unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), self.size as usize) }
    }

    /// Syncs `len` bytes at `offset` for the CPU (`for_cpu`) or the device; `len` 0: to the end.
    pub fn sync(&self, for_cpu: bool, access: Access, offset: u64, len: u64) -> Result<()> {
        let side = if for_cpu {
            sys::CMABUF_SYNC_FOR_CPU
        } else {
            sys::CMABUF_SYNC_FOR_DEVICE
        };
        let s = sys::cmabuf_sync {
            handle: self.handle,
            flags: side | access.bits(),
            offset,
            length: len,
        };
        // SAFETY: `s` is a valid `cmabuf_sync`.
        unsafe { ioc::sync(self.fd.as_raw_fd(), &s) }.map_err(Error::sys("SYNC"))?;
        Ok(())
    }

    /// Hands the buffer to the CPU until the guard drops, then back to the device.
    ///
    /// Needed for [`Mode::Cached`]; harmless (the kernel does nothing) for the other modes.
    pub fn cpu_access(&mut self, access: Access) -> Result<CpuAccess<'_>> {
        self.sync(true, access, 0, 0)?;
        Ok(CpuAccess { buf: self, access })
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(ptr) = self.map.take() {
            // SAFETY: Our own mapping of `size` bytes; no slice of it outlives `self`.
            let _ = unsafe { munmap(ptr.cast(), self.size as usize) };
        }
        let f = sys::cmabuf_free {
            handle: self.handle,
            ..Default::default()
        };
        // SAFETY: `f` is a valid `cmabuf_free`.
        let _ = unsafe { ioc::free(self.fd.as_raw_fd(), &f) };
    }
}

/// A mapping of a buffer; see [`Buffer::mapping`].
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: Plain shared memory; access goes through `&self`/`&mut self`.
unsafe impl Send for Mapping {}

impl Mapping {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: The mapping covers `len` bytes and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: As above; `&mut self` makes this the only Rust reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: Our own mapping of `len` bytes.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// CPU access to a buffer; see [`Buffer::cpu_access`].
pub struct CpuAccess<'a> {
    buf: &'a mut Buffer,
    access: Access,
}

impl CpuAccess<'_> {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.buf.as_mut_slice()
    }
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        // What the CPU wrote goes to the device; the device may then write.
        let _ = self.buf.sync(false, self.access, 0, 0);
    }
}
