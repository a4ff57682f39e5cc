// SPDX-License-Identifier: GPL-2.0
//! `cmabufctl bench`: cmabuf against the mainline CMA heap on the same region,
//! in the same boot, and against a plain `memset` (the zeroing floor).
//!
//! Every figure is a ratio. Absolute times on an emulated board mean nothing
//! and are not printed.

use crate::json::{ratio, Obj, Value};
use cmabuf::{Buffer, Device, Mode};
use nix::{
    fcntl::OFlag,
    sys::mman::{mmap, mmap_anonymous, munmap, MapFlags, ProtFlags},
};
use std::{
    fs,
    num::NonZeroUsize,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    ptr::NonNull,
    time::Instant,
};

/// Sizes measured, with their labels and repetitions (idle, under pressure).
pub const SIZES: [(&str, u64, usize, usize); 4] = [
    ("64K", 64 << 10, 41, 15),
    ("1M", 1 << 20, 31, 15),
    ("8M", 8 << 20, 21, 15),
    ("64M", 64 << 20, 11, 9),
];

#[repr(C)]
#[derive(Default)]
struct HeapAlloc {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

nix::ioctl_readwrite!(heap_alloc, b'H', 0, HeapAlloc);

/// Something that answers `DMA_HEAP_IOCTL_ALLOC`: the mainline CMA heap of the region
/// (`/dev/dma_heap/<region>`), or the cmabuf device itself.
pub struct Heap(OwnedFd);

impl Heap {
    pub fn open(region: &str) -> Result<Heap, String> {
        Self::open_path(&format!("/dev/dma_heap/{region}"))
    }

    pub fn open_path(path: &str) -> Result<Heap, String> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("{path}: {e}"))?;
        Ok(Heap(fd))
    }

    /// Allocates a dma-buf of `len` bytes; its fd frees it when dropped.
    pub fn alloc(&self, len: u64) -> Result<OwnedFd, String> {
        let mut a = HeapAlloc {
            len,
            fd_flags: (OFlag::O_RDWR | OFlag::O_CLOEXEC).bits() as u32,
            ..Default::default()
        };
        // SAFETY: `a` is a valid `dma_heap_allocation_data`.
        unsafe { heap_alloc(self.0.as_raw_fd(), &mut a) }
            .map_err(|e| format!("heap alloc: {e}"))?;
        // SAFETY: The kernel returned a new dma-buf fd that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(a.fd as i32) })
    }
}

/// The `p`th percentile (0-100) of `v` (sorted in place).
pub fn percentile(v: &mut [f64], p: usize) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((v.len() - 1) * p).div_ceil(100);
    v[idx.min(v.len() - 1)]
}

fn secs<F: FnOnce()>(f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// A shared mapping of `len` bytes of `fd` at `offset`.
struct Map {
    ptr: NonNull<u8>,
    len: usize,
}

impl Map {
    fn new(fd: impl AsFd, len: u64, offset: u64) -> Result<Map, String> {
        let n = NonZeroUsize::new(len as usize).ok_or("empty")?;
        // SAFETY: A fresh shared mapping; only this `Map` refers to it.
        let ptr = unsafe {
            mmap(
                None,
                n,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                offset as i64,
            )
        }
        .map_err(|e| format!("mmap: {e}"))?;
        Ok(Map {
            ptr: ptr.cast(),
            len: len as usize,
        })
    }

    fn anon(len: u64) -> Result<Map, String> {
        let n = NonZeroUsize::new(len as usize).ok_or("empty")?;
        // SAFETY: A fresh private anonymous mapping.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                n,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(|e| format!("mmap: {e}"))?;
        Ok(Map {
            ptr: ptr.cast(),
            len: len as usize,
        })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: The mapping covers `len` bytes and lives as long as `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Writes one byte per page.
    fn touch(&mut self) {
        touch(self.bytes());
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: Our own mapping.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// Writes one byte per page of `b`.
fn touch(b: &mut [u8]) {
    for i in (0..b.len()).step_by(4096) {
        // SAFETY: In bounds; volatile so that the store is not elided.
        unsafe { std::ptr::write_volatile(&mut b[i], 1) };
    }
}

fn meminfo(key: &str) -> u64 {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            return kb * 1024;
        }
    }
    0
}

/// The region (and every CMA area) full of movable pages, with room outside CMA for
/// what migration moves; see `cmabuf_pressure.c` for the reasoning.
struct Fill {
    _chunks: Vec<Map>,
}

impl Fill {
    fn new(room: u64) -> Result<Fill, String> {
        let early_len = meminfo("MemFree")
            .saturating_sub(2 * meminfo("CmaFree"))
            .max(room);
        let mut early = Map::anon(early_len)?;
        early.touch();
        let cma_total = meminfo("CmaTotal");
        let mut chunks = Vec::new();
        while meminfo("CmaFree") > cma_total / 20 && meminfo("MemFree") > 40 << 20 {
            let mut c = Map::anon(4 << 20)?;
            c.touch();
            chunks.push(c);
        }
        drop(early);
        Ok(Fill { _chunks: chunks })
    }
}

/// Times of one size, one entry per repetition; the kinds are interleaved within a repetition,
/// so `cmabuf[i]` and `heap[i]` ran under the same conditions.
struct Series {
    cmabuf: Vec<f64>,
    /// Coherent, by a member of `video` (no DMA address reported).
    cmabuf_coherent: Vec<f64>,
    /// Write-combined, the same.
    cmabuf_wc: Vec<f64>,
    /// Coherent, by root (DMA address reported: cleaned from the caches in ALLOC).
    cmabuf_coherent_rawio: Vec<f64>,
    heap: Vec<f64>,
    memset: Vec<f64>,
    /// Allocation and export of a dma-buf (cached).
    export: Vec<f64>,
    /// `DMA_HEAP_IOCTL_ALLOC` on the cmabuf device.
    compat: Vec<f64>,
    /// Allocation and export in one call (`CMABUF_ALLOC_EXPORT`, cached).
    export_one: Vec<f64>,
}

/// The median ratio `a[i] / b[i]` of paired repetitions, with its first and third quartile.
pub fn paired(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (
        percentile(&mut r, 25),
        percentile(&mut r, 50),
        percentile(&mut r, 75),
    )
}

/// The ratio of the 95th percentiles of `a` and `b` (independent samples), and the p25 and p75
/// of that ratio over 400 bootstrap resamples (a fixed xorshift sequence, so runs are
/// comparable): how much one slow repetition decides a p95 of few samples.
pub fn p95_ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let ratio = |x: &mut Vec<f64>, y: &mut Vec<f64>| percentile(x, 95) / percentile(y, 95);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut boot = Vec::with_capacity(400);
    for _ in 0..400 {
        let mut x: Vec<f64> = (0..a.len()).map(|_| a[next(a.len())]).collect();
        let mut y: Vec<f64> = (0..b.len()).map(|_| b[next(b.len())]).collect();
        boot.push(ratio(&mut x, &mut y));
    }
    let whole = ratio(&mut a.to_vec(), &mut b.to_vec());
    (percentile(&mut boot, 25), whole, percentile(&mut boot, 75))
}

/// An unmapped cmabuf buffer of `size` bytes in `mode`.
fn unmapped(dev: &Device, size: u64, mode: Mode) -> Result<Buffer, String> {
    dev.alloc(size)
        .mode(mode)
        .map(false)
        .allocate()
        .map_err(|e| e.to_string())
}

/// Sizes of the small-buffer churn, cycled (statistics, metadata, parameter buffers).
const CHURN_SIZES: [u64; 4] = [4 << 10, 16 << 10, 32 << 10, 64 << 10];
/// Buffers alive at once in the churn.
const CHURN_LIVE: usize = 16;
/// Allocations per churn measurement.
const CHURN_ALLOCS: usize = 64;

/// Small buffers churning: `CHURN_ALLOCS` allocations of 4-64 KiB (cached), each freed
/// `CHURN_LIVE` allocations later, timed through cmabuf and through the CMA heap, paired and
/// interleaved: the time ratio (cmabuf / heap).
fn churn(dev: &Device, heap: &Heap, reps: usize) -> Result<(f64, f64, f64), String> {
    /// One churn through `alloc`; its time in seconds.
    fn once<T>(mut alloc: impl FnMut(u64) -> Result<T, String>) -> Result<f64, String> {
        let t = Instant::now();
        let mut live = std::collections::VecDeque::new();
        for i in 0..CHURN_ALLOCS {
            live.push_back(alloc(CHURN_SIZES[i % CHURN_SIZES.len()])?);
            if live.len() > CHURN_LIVE {
                live.pop_front();
            }
        }
        drop(live);
        Ok(t.elapsed().as_secs_f64())
    }
    let (mut c, mut h) = (vec![], vec![]);
    for _ in 0..reps {
        c.push(once(|size| unmapped(dev, size, Mode::Cached))?);
        h.push(once(|size| heap.alloc(size))?);
    }
    Ok(paired(&c, &h))
}

fn alloc_series(
    dev: &Device,
    user: &Device,
    heap: &Heap,
    compat: &Heap,
    size: u64,
    reps: usize,
    pressure: bool,
) -> Result<Series, String> {
    let mut s = Series {
        cmabuf: vec![],
        cmabuf_coherent: vec![],
        cmabuf_wc: vec![],
        cmabuf_coherent_rawio: vec![],
        heap: vec![],
        memset: vec![],
        export: vec![],
        compat: vec![],
        export_one: vec![],
    };
    let mut floor = Map::anon(size)?;
    floor.touch();
    // Under pressure every measurement refills memory first, which is slow: only the kinds
    // compared there.
    let kinds = if pressure { 3 } else { 8 };
    for _ in 0..reps {
        for which in 0..kinds {
            let fill = if pressure {
                Some(Fill::new(size + (64 << 20))?)
            } else {
                None
            };
            match which {
                0 => {
                    let t = Instant::now();
                    let b = unmapped(dev, size, Mode::Cached)?;
                    s.cmabuf.push(t.elapsed().as_secs_f64());
                    drop(b);
                }
                1 => {
                    let t = Instant::now();
                    let b = unmapped(user, size, Mode::Coherent)?;
                    s.cmabuf_coherent.push(t.elapsed().as_secs_f64());
                    drop(b);
                }
                2 => {
                    let t = Instant::now();
                    let fd = heap.alloc(size)?;
                    s.heap.push(t.elapsed().as_secs_f64());
                    drop(fd);
                }
                3 => {
                    let t = Instant::now();
                    let b = unmapped(dev, size, Mode::Cached)?;
                    let fd = b.export().map_err(|e| e.to_string())?;
                    s.export.push(t.elapsed().as_secs_f64());
                    drop((fd, b));
                }
                4 => {
                    let t = Instant::now();
                    let fd = compat.alloc(size)?;
                    s.compat.push(t.elapsed().as_secs_f64());
                    drop(fd);
                }
                6 => {
                    let t = Instant::now();
                    let b = unmapped(user, size, Mode::WriteCombine)?;
                    s.cmabuf_wc.push(t.elapsed().as_secs_f64());
                    drop(b);
                }
                7 => {
                    let t = Instant::now();
                    let b = unmapped(dev, size, Mode::Coherent)?;
                    s.cmabuf_coherent_rawio.push(t.elapsed().as_secs_f64());
                    drop(b);
                }
                _ => {
                    let t = Instant::now();
                    let (b, fd) = dev
                        .alloc(size)
                        .mode(Mode::Cached)
                        .map(false)
                        .allocate_exported()
                        .map_err(|e| e.to_string())?;
                    s.export_one.push(t.elapsed().as_secs_f64());
                    drop((fd, b));
                }
            }
            drop(fill);
        }
        s.memset.push(secs(|| floor.bytes().fill(0)));
    }
    Ok(s)
}

/// Bytes of each direct I/O request, and how many make one measurement.
const DIO_CHUNK: u64 = 4 << 20;
const DIO_CHUNKS: u64 = 8;

/// `O_DIRECT` writes and reads of `DIO_CHUNKS` x `DIO_CHUNK` bytes to and from the scratch disk
/// (`$CMABUF_DISK`, default `/dev/vda`): a page-backed cmabuf mapping against anonymous memory,
/// paired repetitions, time ratios (cmabuf / anonymous). `None` (with the reason on stderr)
/// without a disk.
fn direct_io(
    dev: &Device,
    reps: usize,
    spread_of: &mut impl FnMut(&str, &str, (f64, f64, f64)),
) -> Result<Option<(Obj, Obj)>, String> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let path = std::env::var("CMABUF_DISK").unwrap_or_else(|_| "/dev/vda".into());
    let disk = match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_DIRECT.bits())
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cmabufctl bench: no direct I/O rows: {path}: {e}");
            return Ok(None);
        }
    };
    let mut anon = Map::anon(DIO_CHUNK)?;
    anon.bytes().fill(0x3c);
    let (mut write, mut read) = (Obj::new(), Obj::new());
    // Page-backed mappings of uncached memory exist only where the device snoops the CPU's
    // caches (a non-coherent device refuses them with EOPNOTSUPP: the linear map's cacheable
    // alias would go stale); elsewhere the coherent row is not applicable, and says so.
    let coherent = dev.info().map_err(|e| e.to_string())?.dma_coherent;
    if !coherent {
        eprintln!(
            "cmabufctl bench: no coherent O_DIRECT row: {} is not DMA-coherent \
             (page-backed mappings are cached-only there)",
            dev.path().display()
        );
    }
    let modes: &[Mode] = if coherent {
        &[Mode::Cached, Mode::Coherent]
    } else {
        &[Mode::Cached]
    };
    for &mode in modes {
        let mut b = dev
            .alloc(DIO_CHUNK)
            .mode(mode)
            .page_map(true)
            .allocate()
            .map_err(|e| e.to_string())?;
        b.as_mut_slice().fill(0xc3);
        let (mut wc, mut wa, mut rc, mut ra) = (vec![], vec![], vec![], vec![]);
        let pass = |buf: &mut [u8], w: bool| -> Result<f64, String> {
            let t = Instant::now();
            for k in 0..DIO_CHUNKS {
                let res = if w {
                    disk.write_all_at(buf, k * DIO_CHUNK)
                } else {
                    disk.read_exact_at(buf, k * DIO_CHUNK)
                };
                res.map_err(|e| format!("{path}: O_DIRECT: {e}"))?;
            }
            Ok(t.elapsed().as_secs_f64())
        };
        for _ in 0..reps {
            wc.push(pass(b.as_mut_slice(), true)?);
            wa.push(pass(anon.bytes(), true)?);
            rc.push(pass(b.as_mut_slice(), false)?);
            ra.push(pass(anon.bytes(), false)?);
        }
        let q = paired(&wc, &wa);
        write = write.set(mode.name(), ratio(q.1));
        spread_of("odirect_write_vs_anon", mode.name(), q);
        let q = paired(&rc, &ra);
        read = read.set(mode.name(), ratio(q.1));
        spread_of("odirect_read_vs_anon", mode.name(), q);
    }
    Ok(Some((write, read)))
}

/// Sizes of the ready reserve's rows, with their repetitions.
const RESERVE_SIZES: [(&str, u64, usize); 3] =
    [("1M", 1 << 20, 9), ("8M", 8 << 20, 9), ("64M", 64 << 20, 7)];
/// The stream start: buffers, and their size.
const STREAM_BUFFERS: usize = 8;
const STREAM_SIZE: u64 = 8 << 20;

/// A sysfs attribute of the node, set for the bench and put back as it was when dropped.
struct Knob {
    path: PathBuf,
    saved: String,
}

impl Knob {
    fn new(dev: &Device, attr: &str) -> Result<Self, String> {
        let path = dev.sysfs_attr(attr).ok_or("no sysfs node for the device")?;
        let saved = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { path, saved })
    }

    fn set(&self, value: u64) -> Result<(), String> {
        fs::write(&self.path, value.to_string())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl Drop for Knob {
    fn drop(&mut self) {
        let _ = fs::write(&self.path, self.saved.trim());
    }
}

/// The node's ready reserve for the bench: its unit and target (put back in that order).
struct ReserveKnob {
    unit: Knob,
    target: Knob,
}

impl ReserveKnob {
    fn new(dev: &Device) -> Result<Self, String> {
        Ok(Self {
            unit: Knob::new(dev, "ready_reserve_unit")?,
            target: Knob::new(dev, "ready_reserve")?,
        })
    }

    /// Sets the target (which also ends a wait after memory pressure).
    fn set(&self, bytes: u64) -> Result<(), String> {
        self.target.set(bytes)
    }

    /// Sets the target and waits until that much is ready.
    fn fill(&self, dev: &Device, bytes: u64) -> Result<(), String> {
        self.set(bytes)?;
        wait_reserve(dev, bytes)
    }

    /// Fixes the reserve's pieces to the buffers' `size`, as a board's integrator does, and
    /// fills `bytes` of them.
    fn warm(&self, dev: &Device, bytes: u64, size: u64) -> Result<(), String> {
        self.unit.set(size)?;
        self.fill(dev, bytes)
    }
}

/// Waits (up to 60 s) until `bytes` of the node's reserve are ready.
fn wait_reserve(dev: &Device, bytes: u64) -> Result<(), String> {
    let t = Instant::now();
    loop {
        let st = dev.stats().map_err(|e| e.to_string())?;
        if st.reserve_ready_bytes == bytes {
            return Ok(());
        }
        if t.elapsed().as_secs() > 60 {
            return Err(format!(
                "the ready reserve did not fill: {} of {bytes} bytes",
                st.reserve_ready_bytes
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The ready reserve's rows, on a region full of movable pages, paired against the CMA heap in
/// the same conditions: allocations of the reserve's size (served by it), the same with the
/// reserve taken back by the kernel's shrinkers first (`drop_caches`, what memory pressure
/// does), how long the refill after a release takes (against one heap allocation), and a
/// stream start (8 buffers of 8 MiB, time to the last).
fn reserve_rows(
    dev: &Device,
    heap: &Heap,
    quick: bool,
    spread_of: &mut impl FnMut(&str, &str, (f64, f64, f64)),
) -> Result<Obj, String> {
    let knob = ReserveKnob::new(dev)?;
    let region = dev.info().map_err(|e| e.to_string())?.region_size;
    let before = dev.stats().map_err(|e| e.to_string())?;
    // The rows by size, in the order of `quartiles` below.
    let mut rows = [
        "reserve_alloc_p50_vs_cma_heap",
        "reserve_alloc_p95_vs_cma_heap",
        "reserve_alloc_p50_vs_memset",
        "reserve_refill_vs_cma_heap_alloc",
        "reserve_shrunk_alloc_p50_vs_cma_heap",
    ]
    .map(|key| (key, Obj::new()));
    for &(label, size, reps) in &RESERVE_SIZES {
        if size > region / 2 {
            continue;
        }
        let reps = if quick { 2 } else { reps };
        // Pieces of the buffers' size.
        knob.warm(dev, size, size)?;
        let mut floor = Map::anon(size)?;
        floor.touch();
        let (mut c, mut h, mut m, mut refill, mut shrunk, mut h2) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for rep in 0..reps {
            let fill = Fill::new(size + (64 << 20))?;
            let t = Instant::now();
            let b = unmapped(dev, size, Mode::Cached)?;
            c.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let fd = heap.alloc(size)?;
            h.push(t.elapsed().as_secs_f64());
            m.push(secs(|| floor.bytes().fill(0)));
            drop((b, fd));
            // The refill after the release, on the full region.
            let t = Instant::now();
            wait_reserve(dev, size)?;
            refill.push(t.elapsed().as_secs_f64());
            // The same allocation once memory pressure took the reserve back.
            fs::write("/proc/sys/vm/drop_caches", "2").map_err(|e| e.to_string())?;
            wait_reserve(dev, 0)?;
            // In turns first (the first allocation after the shrinkers pays for what they left).
            let mine = |out: &mut Vec<f64>| -> Result<Buffer, String> {
                let t = Instant::now();
                let b = unmapped(dev, size, Mode::Cached)?;
                out.push(t.elapsed().as_secs_f64());
                Ok(b)
            };
            let theirs = |out: &mut Vec<f64>| -> Result<OwnedFd, String> {
                let t = Instant::now();
                let fd = heap.alloc(size)?;
                out.push(t.elapsed().as_secs_f64());
                Ok(fd)
            };
            let (b, fd) = if rep % 2 == 0 {
                let b = mine(&mut shrunk)?;
                (b, theirs(&mut h2)?)
            } else {
                let fd = theirs(&mut h2)?;
                (mine(&mut shrunk)?, fd)
            };
            drop((b, fd, fill));
            knob.fill(dev, size)?;
        }
        let quartiles = [
            paired(&c, &h),
            p95_ratio(&c, &h),
            paired(&c, &m),
            paired(&refill, &h),
            paired(&shrunk, &h2),
        ];
        for ((key, row), q) in rows.iter_mut().zip(quartiles) {
            *row = std::mem::take(row).set(label, ratio(q.1));
            spread_of(key, label, q);
        }
    }
    // Stream start: 8 buffers of 8 MiB, as REQBUFS of a camera asks, time to the last.
    let mut stream = (vec![], vec![]);
    let total = STREAM_SIZE * STREAM_BUFFERS as u64;
    if total <= region / 2 {
        knob.warm(dev, total, STREAM_SIZE)?;
        for _ in 0..if quick { 2 } else { 7 } {
            let fill = Fill::new(total + (64 << 20))?;
            let t = Instant::now();
            let bufs = (0..STREAM_BUFFERS)
                .map(|_| unmapped(dev, STREAM_SIZE, Mode::Cached))
                .collect::<Result<Vec<_>, _>>()?;
            stream.0.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let fds = (0..STREAM_BUFFERS)
                .map(|_| heap.alloc(STREAM_SIZE))
                .collect::<Result<Vec<_>, _>>()?;
            stream.1.push(t.elapsed().as_secs_f64());
            drop((bufs, fds));
            wait_reserve(dev, total)?;
            drop(fill);
        }
    }
    drop(knob);
    let after = dev.stats().map_err(|e| e.to_string())?;
    let mut out = Obj::new();
    for (key, row) in rows {
        out = out.set(key, row);
    }
    let mut out = out
        .set(
            "reserve_hits_during_bench",
            after.reserve_hits - before.reserve_hits,
        )
        .set(
            "reserve_misses_during_bench",
            after.reserve_misses - before.reserve_misses,
        );
    if !stream.0.is_empty() {
        let q = paired(&stream.0, &stream.1);
        out = out.set(
            "reserve_stream_start_vs_cma_heap",
            Obj::new()
                .set("p25", ratio(q.0))
                .set("p50", ratio(q.1))
                .set("p75", ratio(q.2)),
        );
    }
    Ok(out)
}

/// `dev` opened again as an ordinary member of `video` (effective user nobody, group `video`,
/// so no capabilities): a file that is not told DMA addresses, as a camera stack's is. Coherent
/// memory whose address is reported must be cleaned from the CPU caches before ALLOC returns
/// (the caller may program a device with it); otherwise at its first mapping. The same file
/// if the bench does not run as root.
fn as_video_member(dev: &Device) -> Result<Device, String> {
    use nix::unistd::{getegid, geteuid, setegid, seteuid, Group, Uid};
    let (uid, gid) = (geteuid(), getegid());
    if !uid.is_root() {
        return Device::open(dev.path()).map_err(|e| e.to_string());
    }
    let video = Group::from_name("video")
        .map_err(|e| e.to_string())?
        .ok_or("no group video")?
        .gid;
    setegid(video).map_err(|e| format!("setegid: {e}"))?;
    seteuid(Uid::from_raw(65534)).map_err(|e| format!("seteuid: {e}"))?;
    let opened = Device::open(dev.path());
    // Back to root (the saved user id), then its group.
    seteuid(uid).map_err(|e| format!("seteuid: {e}"))?;
    setegid(gid).map_err(|e| format!("setegid: {e}"))?;
    opened.map_err(|e| format!("{} as a member of video: {e}", dev.path().display()))
}

/// Runs everything; returns the JSON summary (ratios only).
pub fn run(dev: &Device, quick: bool) -> Result<Obj, String> {
    let user = as_video_member(dev)?;
    let info = dev.info().map_err(|e| e.to_string())?;
    let heap = Heap::open(&info.region_name)?;
    let compat = Heap::open_path(&dev.path().display().to_string())?;
    let mut export_vs_heap = Obj::new();
    let mut export_one_vs_heap = Obj::new();
    let mut compat_vs_heap = Obj::new();
    let mut dmabuf_touch_vs_heap = Obj::new();
    let mut spread = Obj::new();
    let mut spread_of = |key: &str, label: &str, q: (f64, f64, f64)| {
        let entry = Obj::new().set("p25", ratio(q.0)).set("p75", ratio(q.2));
        let mut per = match spread.get(key) {
            Some(Value::Object(o)) => Obj::from(o.clone()),
            _ => Obj::new(),
        };
        per = per.set(label, entry);
        spread = std::mem::take(&mut spread).set(key, per);
    };
    let mut alloc_vs_heap = Obj::new();
    let mut alloc_coherent_vs_heap = Obj::new();
    let mut alloc_wc_vs_heap = Obj::new();
    let mut alloc_rawio_vs_heap = Obj::new();
    let mut alloc_vs_memset = Obj::new();
    let mut alloc_p95_vs_heap = Obj::new();
    let mut pressure_vs_heap = Obj::new();
    let mut touch_vs_heap = Obj::new();
    let mut write_bw = Obj::new();
    // Whether any allocation of the bench needed a retry or fell back (a cause of tail latency
    // of ours, if any), from the device's own counters.
    let before = dev.stats().map_err(|e| e.to_string())?;
    for &(label, size, reps, preps) in &SIZES {
        if size > info.region_size / 2 {
            continue;
        }
        let (reps, preps) = if quick { (3, 1) } else { (reps, preps) };
        let mut idle = alloc_series(dev, &user, &heap, &compat, size, reps, false)?;
        let q = paired(&idle.cmabuf, &idle.heap);
        spread_of("alloc_p50_vs_cma_heap", label, q);
        let q = paired(&idle.export, &idle.heap);
        export_vs_heap = export_vs_heap.set(label, ratio(q.1));
        spread_of("export_p50_vs_cma_heap", label, q);
        let q = paired(&idle.export_one, &idle.heap);
        export_one_vs_heap = export_one_vs_heap.set(label, ratio(q.1));
        spread_of("export_one_call_p50_vs_cma_heap", label, q);
        let q = paired(&idle.compat, &idle.heap);
        compat_vs_heap = compat_vs_heap.set(label, ratio(q.1));
        spread_of("heap_compat_p50_vs_cma_heap", label, q);
        let c50 = percentile(&mut idle.cmabuf, 50);
        let h50 = percentile(&mut idle.heap, 50);
        alloc_vs_heap = alloc_vs_heap.set(label, ratio(c50 / h50));
        // Paired, interleaved repetitions, as the cached row's spread.
        let q = paired(&idle.cmabuf_coherent, &idle.heap);
        alloc_coherent_vs_heap = alloc_coherent_vs_heap.set(label, ratio(q.1));
        spread_of("alloc_coherent_p50_vs_cma_heap", label, q);
        let q = paired(&idle.cmabuf_wc, &idle.heap);
        alloc_wc_vs_heap = alloc_wc_vs_heap.set(label, ratio(q.1));
        spread_of("alloc_writecombine_p50_vs_cma_heap", label, q);
        let q = paired(&idle.cmabuf_coherent_rawio, &idle.heap);
        alloc_rawio_vs_heap = alloc_rawio_vs_heap.set(label, ratio(q.1));
        spread_of("alloc_coherent_rawio_p50_vs_cma_heap", label, q);
        alloc_vs_memset = alloc_vs_memset.set(label, ratio(c50 / percentile(&mut idle.memset, 50)));
        let q = p95_ratio(&idle.cmabuf, &idle.heap);
        alloc_p95_vs_heap = alloc_p95_vs_heap.set(label, ratio(q.1));
        spread_of("alloc_p95_vs_cma_heap", label, q);
        let pres = alloc_series(dev, &user, &heap, &compat, size, preps, true)?;
        // Paired, interleaved repetitions: the median of the per-repetition ratios.
        let q = paired(&pres.cmabuf, &pres.heap);
        pressure_vs_heap = pressure_vs_heap.set(label, ratio(q.1));
        spread_of("alloc_pressure_p50_vs_cma_heap", label, q);

        // mmap + first touch of the whole buffer, and sustained writes, per mapping kind.
        let mut touch_c = vec![];
        let mut touch_h = vec![];
        let mut bw = Obj::new();
        let mut anon = Map::anon(size)?;
        anon.touch();
        let mut anon_t = vec![];
        for _ in 0..reps.min(5) {
            anon_t.push(secs(|| anon.bytes().fill(0x5a)));
        }
        let anon50 = percentile(&mut anon_t, 50);
        for mode in [Mode::Cached, Mode::Coherent, Mode::WriteCombine] {
            let b = dev
                .alloc(size)
                .mode(mode)
                .map(false)
                .allocate()
                .map_err(|e| e.to_string())?;
            let mut m = b.mapping().map_err(|e| e.to_string())?;
            let mut t = vec![];
            for _ in 0..reps.min(5) {
                t.push(secs(|| m.as_mut_slice().fill(0x5a)));
            }
            bw = bw.set(mode.name(), ratio(anon50 / percentile(&mut t, 50)));
        }
        let fd = heap.alloc(size)?;
        let exported = unmapped(dev, size, Mode::Cached)?;
        let efd = exported.export().map_err(|e| e.to_string())?;
        // Interleaved and paired: a cmabuf mapping, a heap mapping, a cmabuf dma-buf mapping,
        // a heap mapping; each mapped and every page touched once.
        let mut touch_e = vec![];
        let mut touch_h2 = vec![];
        for _ in 0..reps.clamp(7, 11) {
            let t = Instant::now();
            let mut m = exported.mapping().map_err(|e| e.to_string())?;
            touch(m.as_mut_slice());
            touch_c.push(t.elapsed().as_secs_f64());
            drop(m);
            let t = Instant::now();
            let mut m = Map::new(fd.as_fd(), size, 0)?;
            m.touch();
            touch_h.push(t.elapsed().as_secs_f64());
            drop(m);
            let t = Instant::now();
            let mut m = Map::new(efd.as_fd(), size, 0)?;
            m.touch();
            touch_e.push(t.elapsed().as_secs_f64());
            drop(m);
            let t = Instant::now();
            let mut m = Map::new(fd.as_fd(), size, 0)?;
            m.touch();
            touch_h2.push(t.elapsed().as_secs_f64());
        }
        let q = paired(&touch_c, &touch_h);
        touch_vs_heap = touch_vs_heap.set(label, ratio(q.1));
        spread_of("first_touch_vs_cma_heap", label, q);
        let q = paired(&touch_e, &touch_h2);
        dmabuf_touch_vs_heap = dmabuf_touch_vs_heap.set(label, ratio(q.1));
        spread_of("dmabuf_first_touch_vs_cma_heap", label, q);
        drop((efd, exported));
        let mut hm = Map::new(fd.as_fd(), size, 0)?;
        let mut t = vec![];
        for _ in 0..reps.min(5) {
            t.push(secs(|| hm.bytes().fill(0x5a)));
        }
        bw = bw.set("cma_heap", ratio(anon50 / percentile(&mut t, 50)));
        write_bw = write_bw.set(label, bw);
    }
    let after = dev.stats().map_err(|e| e.to_string())?;
    let churned = churn(dev, &heap, if quick { 2 } else { 9 })?;
    let dio = direct_io(dev, if quick { 2 } else { 9 }, &mut spread_of)?;
    let reserve = reserve_rows(dev, &heap, quick, &mut spread_of)?;
    let mut out = reserve
        .set(
            "small_churn_vs_cma_heap",
            Obj::new()
                .set("p25", ratio(churned.0))
                .set("p50", ratio(churned.1))
                .set("p75", ratio(churned.2)),
        )
        .set("allocs_during_bench", after.allocs - before.allocs)
        .set("retries_during_bench", after.retries - before.retries)
        .set("fallbacks_during_bench", after.fallbacks - before.fallbacks);
    if let Some((w, r)) = dio {
        out = out
            .set("odirect_mib", (DIO_CHUNKS * DIO_CHUNK) >> 20)
            .set("odirect_write_vs_anon", w)
            .set("odirect_read_vs_anon", r);
    }
    Ok(out
        .set("region", info.region_name.as_str())
        .set("alloc_p50_vs_cma_heap", alloc_vs_heap)
        .set("alloc_p95_vs_cma_heap", alloc_p95_vs_heap)
        .set("alloc_coherent_p50_vs_cma_heap", alloc_coherent_vs_heap)
        .set("alloc_writecombine_p50_vs_cma_heap", alloc_wc_vs_heap)
        .set("alloc_coherent_rawio_p50_vs_cma_heap", alloc_rawio_vs_heap)
        .set("alloc_p50_vs_memset", alloc_vs_memset)
        .set("alloc_pressure_p50_vs_cma_heap", pressure_vs_heap)
        .set("first_touch_vs_cma_heap", touch_vs_heap)
        .set("export_p50_vs_cma_heap", export_vs_heap)
        .set("export_one_call_p50_vs_cma_heap", export_one_vs_heap)
        .set("heap_compat_p50_vs_cma_heap", compat_vs_heap)
        .set("dmabuf_first_touch_vs_cma_heap", dmabuf_touch_vs_heap)
        .set("spread", spread)
        .set("write_bandwidth_vs_anon", write_bw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_ratios() {
        let (lo, mid, hi) = paired(&[2.0, 4.0, 6.0, 8.0, 10.0], &[1.0, 2.0, 2.0, 4.0, 10.0]);
        assert_eq!((lo, mid, hi), (2.0, 2.0, 2.0));
        let (lo, _, hi) = paired(&[1.0, 3.0, 1.0, 2.0, 1.0], &[2.0, 1.0, 1.0, 1.0, 4.0]);
        assert!(lo < 1.0 && hi > 1.0);
    }

    #[test]
    fn p95_ratio_and_its_spread() {
        let a: Vec<f64> = (1..=20).map(f64::from).collect();
        let (lo, mid, hi) = p95_ratio(&a, &a);
        assert_eq!(mid, 1.0);
        assert!(lo <= 1.0 && hi >= 1.0);
        let b: Vec<f64> = a.iter().map(|x| x * 2.0).collect();
        let (lo, mid, hi) = p95_ratio(&b, &a);
        assert_eq!(mid, 2.0);
        assert!(lo > 1.0 && hi < 4.0);
    }

    #[test]
    fn percentiles() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 50), 3.0);
        assert_eq!(percentile(&mut v, 95), 5.0);
        assert_eq!(percentile(&mut v, 0), 1.0);
        assert!(percentile(&mut [], 50).is_nan());
    }
}
