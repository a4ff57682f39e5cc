// SPDX-License-Identifier: GPL-2.0

//! Pure checks and encodings of the ABI's values; no I/O, no locks, no `unsafe`.
//!
//! Everything userspace passes in is judged here, so that the rules are in one
//! place and covered by KUnit.

use crate::uapi::{
    CMABUF_ALLOC_EXPORT,
    CMABUF_ALLOC_PAGE_MAP,
    CMABUF_ALLOC_VALID_FLAGS,
    CMABUF_MODE_CACHED,
    CMABUF_MODE_COHERENT,
    CMABUF_MODE_MASK,
    CMABUF_MODE_WRITECOMBINE,
    CMABUF_SYNC_FOR_CPU,
    CMABUF_SYNC_FOR_DEVICE,
    CMABUF_SYNC_READ,
    CMABUF_SYNC_VALID_FLAGS,
    CMABUF_SYNC_WRITE, //
};
use kernel::{
    bindings,
    prelude::*, //
};

/// `EDQUOT`, which the kernel crate does not name: a limit set by the administrator is reached.
pub(crate) fn edquot() -> Error {
    // CAST: errno values fit in `c_int`.
    Error::from_errno(-(bindings::EDQUOT as c_int))
}

/// `EOPNOTSUPP`, which the kernel crate does not name: what this device cannot do, though others
/// can (page-backed mappings of uncached buffers on a device that is not DMA-coherent).
pub(crate) fn eopnotsupp() -> Error {
    // CAST: errno values fit in `c_int`.
    Error::from_errno(-(bindings::EOPNOTSUPP as c_int))
}

/// How a buffer is cached by the CPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// `dma_alloc_coherent()` memory: uncached for non-coherent devices; no sync needed.
    Coherent,
    /// Coherent memory with a write-combining CPU mapping.
    WriteCombine,
    /// Non-coherent, CPU-cached memory: userspace syncs around device access.
    Cached,
}

impl Mode {
    /// The mode in `flags` (`CMABUF_MODE_MASK` bits); `EINVAL` for the unused value.
    fn from_bits(flags: u32) -> Result<Self> {
        match flags & CMABUF_MODE_MASK {
            CMABUF_MODE_COHERENT => Ok(Self::Coherent),
            CMABUF_MODE_WRITECOMBINE => Ok(Self::WriteCombine),
            CMABUF_MODE_CACHED => Ok(Self::Cached),
            _ => Err(EINVAL),
        }
    }

    /// The mode as `CMABUF_MODE_*` bits.
    pub(crate) fn bits(self) -> u32 {
        match self {
            Self::Coherent => CMABUF_MODE_COHERENT,
            Self::WriteCombine => CMABUF_MODE_WRITECOMBINE,
            Self::Cached => CMABUF_MODE_CACHED,
        }
    }
}

/// How a buffer's memory is mapped into userspace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MapKind {
    /// Page frames (`remap_pfn_range()`, `VM_PFNMAP`): the default.
    Pfn,
    /// The pages themselves (`VM_MIXEDMAP`), which `get_user_pages()` can follow:
    /// `CMABUF_ALLOC_PAGE_MAP`.
    Pages,
}

/// What `CMABUF_IOCTL_ALLOC`'s `flags` (or the `heap_mode` parameter) ask for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct AllocFlags {
    /// Cache mode.
    pub(crate) mode: Mode,
    /// How mappings are made.
    pub(crate) map: MapKind,
}

impl AllocFlags {
    /// Parses `CMABUF_IOCTL_ALLOC`'s `flags`: the buffer's, and whether to export it in the same
    /// call (`CMABUF_ALLOC_EXPORT`); `EINVAL` for unknown bits and the unused mode value.
    pub(crate) fn parse_alloc(flags: u32) -> Result<(Self, bool)> {
        Ok((
            Self::parse(flags & !CMABUF_ALLOC_EXPORT)?,
            flags & CMABUF_ALLOC_EXPORT != 0,
        ))
    }

    /// Parses a buffer's flags (`CMABUF_ALLOC_EXPORT` is not one); `EINVAL` for unknown bits and
    /// the unused mode value.
    pub(crate) fn parse(flags: u32) -> Result<Self> {
        if flags & !(CMABUF_ALLOC_VALID_FLAGS & !CMABUF_ALLOC_EXPORT) != 0 {
            return Err(EINVAL);
        }
        Ok(Self {
            mode: Mode::from_bits(flags)?,
            map: if flags & CMABUF_ALLOC_PAGE_MAP != 0 {
                MapKind::Pages
            } else {
                MapKind::Pfn
            },
        })
    }

    /// The flags as `cmabuf_info.flags` reports them.
    pub(crate) fn bits(self) -> u32 {
        self.mode.bits()
            | match self.map {
                MapKind::Pfn => 0,
                MapKind::Pages => CMABUF_ALLOC_PAGE_MAP,
            }
    }
}

/// `size` rounded up to whole pages of `page_size` bytes (a power of two).
///
/// `EINVAL` for 0, for sizes that overflow when rounded, and for sizes above `max`.
pub(crate) fn round_size(size: u64, page_size: usize, max: u64) -> Result<usize> {
    // CAST: `usize` is at most 64 bits wide on every architecture Linux supports.
    let mask = page_size as u64 - 1;
    if size == 0 {
        return Err(EINVAL);
    }
    let rounded = size.checked_add(mask).ok_or(EINVAL)? & !mask;
    if rounded > max {
        return Err(EINVAL);
    }
    usize::try_from(rounded).map_err(|_| EINVAL)
}

/// Bits of a byte offset that select the buffer: each handle owns a 64 GiB window of offsets.
pub(crate) const HANDLE_SHIFT: u32 = 36;

/// Largest handle whose window still fits a 64-bit offset (and `vm_pgoff` with 4 KiB pages).
pub(crate) const MAX_HANDLE: u32 = (1 << (63 - HANDLE_SHIFT)) - 1;

/// The `mmap()` offset of `handle`.
pub(crate) fn mmap_offset(handle: u32) -> u64 {
    u64::from(handle) << HANDLE_SHIFT
}

/// Splits a mapping's page offset (`vm_pgoff`) into the handle and the first page in the buffer.
pub(crate) fn split_pgoff(pgoff: u64, page_shift: u32) -> Result<(u32, u64)> {
    let shift = HANDLE_SHIFT - page_shift;
    let handle = u32::try_from(pgoff >> shift).map_err(|_| ENXIO)?;
    Ok((handle, pgoff & ((1u64 << shift) - 1)))
}

/// Checks that `pages` pages from page `first` lie inside a buffer of `buffer_pages` pages.
pub(crate) fn check_map_range(first: u64, pages: u64, buffer_pages: u64) -> Result {
    match first.checked_add(pages) {
        Some(end) if pages > 0 && end <= buffer_pages => Ok(()),
        _ => Err(ENXIO),
    }
}

/// A part of a buffer to export: `(offset, length)` in bytes, both multiples of `page_size`
/// (a power of two) and inside a buffer of `size` bytes; `length` 0 means up to the end.
/// `EINVAL` otherwise, and for a range that is empty or overflows.
pub(crate) fn export_range(
    offset: u64,
    length: u64,
    size: usize,
    page_size: usize,
) -> Result<(usize, usize)> {
    // CAST: `usize` is at most 64 bits wide.
    let (size, mask) = (size as u64, page_size as u64 - 1);
    if offset & mask != 0 || length & mask != 0 || offset >= size {
        return Err(EINVAL);
    }
    let len = if length == 0 { size - offset } else { length };
    match offset.checked_add(len) {
        Some(end) if end <= size => {}
        _ => return Err(EINVAL),
    }
    // PANIC: Both are at most `size`, which came from a `usize`.
    Ok((
        usize::try_from(offset).map_err(|_| EINVAL)?,
        usize::try_from(len).map_err(|_| EINVAL)?,
    ))
}

/// The direction of a sync, named after the DMA API's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    /// The device writes, the CPU reads (`DMA_FROM_DEVICE`).
    FromDevice,
    /// The CPU writes, the device reads (`DMA_TO_DEVICE`).
    ToDevice,
    /// Both (`DMA_BIDIRECTIONAL`).
    Bidirectional,
}

/// A checked `CMABUF_IOCTL_SYNC` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SyncRequest {
    /// `true`: hand the range to the CPU; `false`: to the device.
    pub(crate) for_cpu: bool,
    /// Who reads and writes.
    pub(crate) dir: Direction,
    /// First byte.
    pub(crate) offset: usize,
    /// Length in bytes, > 0.
    pub(crate) len: usize,
}

impl SyncRequest {
    /// Checks a sync request against a buffer of `size` bytes.
    ///
    /// `flags` must hold exactly one of `FOR_CPU`/`FOR_DEVICE`, at least one of `READ`/`WRITE`
    /// and nothing else; the range must be non-empty and inside the buffer (`length` 0 means
    /// "to the end"). Anything else is `EINVAL`.
    pub(crate) fn parse(flags: u32, offset: u64, length: u64, size: usize) -> Result<Self> {
        if flags & !CMABUF_SYNC_VALID_FLAGS != 0 {
            return Err(EINVAL);
        }
        let for_cpu = match flags & (CMABUF_SYNC_FOR_CPU | CMABUF_SYNC_FOR_DEVICE) {
            CMABUF_SYNC_FOR_CPU => true,
            CMABUF_SYNC_FOR_DEVICE => false,
            _ => return Err(EINVAL),
        };
        // READ/WRITE name what the CPU does for FOR_CPU and what the device does for
        // FOR_DEVICE; the DMA direction follows from who writes.
        let rw = flags & (CMABUF_SYNC_READ | CMABUF_SYNC_WRITE);
        let dir = match (for_cpu, rw) {
            (_, 0) => return Err(EINVAL),
            (_, r) if r == CMABUF_SYNC_READ | CMABUF_SYNC_WRITE => Direction::Bidirectional,
            (true, CMABUF_SYNC_READ) | (false, CMABUF_SYNC_WRITE) => Direction::FromDevice,
            _ => Direction::ToDevice,
        };
        // CAST: `usize` is at most 64 bits wide.
        let size = size as u64;
        if offset >= size {
            return Err(EINVAL);
        }
        let len = if length == 0 { size - offset } else { length };
        match offset.checked_add(len) {
            Some(end) if end <= size => {}
            _ => return Err(EINVAL),
        }
        Ok(Self {
            for_cpu,
            dir,
            offset: usize::try_from(offset).map_err(|_| EINVAL)?,
            len: usize::try_from(len).map_err(|_| EINVAL)?,
        })
    }
}

/// The longest dma-heap name a node may ask for, in bytes.
pub(crate) const HEAP_NAME_MAX: usize = 63;

/// Whether `name` may name a dma-heap entry (`/dev/dma_heap/<name>`), as a node's
/// `cmabuf,dma-heap-name` asks: 1 to [`HEAP_NAME_MAX`] bytes of letters, digits and `,._-@+`
/// (the names camera stacks look for: `linux,cma`, `vidbuf_cached`, `reserved`), not `.` or `..`,
/// and not another node's default name (`cmabuf` and digits only): that one is `own`'s alone.
pub(crate) fn heap_name_ok(name: &[u8], own: u32) -> bool {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b",._-@+".contains(b);
    if name.is_empty() || name.len() > HEAP_NAME_MAX || !name.iter().all(allowed) {
        return false;
    }
    if name == b"." || name == b".." {
        return false;
    }
    match name.strip_prefix(b"cmabuf") {
        Some(n) if !n.is_empty() && n.iter().all(u8::is_ascii_digit) => {
            // Another node's default name is that node's alone; its own is fine.
            let canonical = n == b"0" || n[0] != b'0';
            let value = core::str::from_utf8(n)
                .ok()
                .and_then(|d| d.parse::<u32>().ok());
            canonical && value == Some(own)
        }
        _ => true,
    }
}

/// A size in bytes as an administrator writes it (sysfs): decimal digits with an optional `K`,
/// `M` or `G` suffix (binary multiples), then an optional newline; `EINVAL` otherwise or on
/// overflow.
pub(crate) fn parse_size(text: &[u8]) -> Result<u64> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let (digits, shift) = match text.last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(EINVAL);
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    n.checked_mul(1 << shift).ok_or(EINVAL)
}

/// The ready reserve's unit as given (device tree, sysfs): `None` for 0 (learned), else a whole
/// number of pages from `smallest` (the pool's largest piece: smaller buffers never ask the
/// reserve) to the region's `size`; `EINVAL` otherwise.
pub(crate) fn reserve_unit(bytes: u64, smallest: usize, size: u64) -> Result<Option<usize>> {
    // CAST: `usize` fits in `u64`.
    let (smallest, page) = (smallest as u64, kernel::page::PAGE_SIZE as u64);
    match bytes {
        0 => Ok(None),
        // CAST: At most the region's size, which fits in `usize`.
        b if b >= smallest && b <= size && b % page == 0 => Ok(Some(b as usize)),
        _ => Err(EINVAL),
    }
}

#[kunit_tests(cmabuf_validate)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    #[test]
    fn reserve_units() {
        const MIB: u64 = 1 << 20;
        let unit = |b| reserve_unit(b, 1 << 20, 48 * MIB);
        assert_eq!(unit(0), Ok(None));
        assert_eq!(unit(MIB), Ok(Some(1 << 20)));
        assert_eq!(unit(8 * MIB), Ok(Some(8 << 20)));
        assert_eq!(unit(48 * MIB), Ok(Some(48 << 20)));
        assert_eq!(unit(MIB - 4096), Err(EINVAL));
        assert_eq!(unit(MIB + 1), Err(EINVAL));
        assert_eq!(unit(48 * MIB + 4096), Err(EINVAL));
        assert_eq!(unit(u64::MAX), Err(EINVAL));
    }

    #[test]
    fn modes() {
        let mode = |f| AllocFlags::parse(f).map(|a| a.mode);
        assert_eq!(mode(0), Ok(Mode::Coherent));
        assert_eq!(mode(1), Ok(Mode::WriteCombine));
        assert_eq!(mode(2), Ok(Mode::Cached));
        assert_eq!(mode(3), Err(EINVAL));
        assert_eq!(mode(7), Err(EINVAL));
        assert_eq!(mode(8), Err(EINVAL));
        assert_eq!(mode(1 << 31), Err(EINVAL));
        assert_eq!(Mode::Cached.bits(), 2);
        let pages = AllocFlags::parse(6);
        assert_eq!(pages.map(|a| a.map), Ok(MapKind::Pages));
        assert_eq!(pages.map(|a| a.bits()), Ok(6));
        assert_eq!(AllocFlags::parse(1).map(|a| a.map), Ok(MapKind::Pfn));
        // Export in the same call: an action of ALLOC, not a property of the buffer.
        assert_eq!(AllocFlags::parse(8), Err(EINVAL));
        let parsed = |f| AllocFlags::parse_alloc(f).map(|(a, export)| (a.bits(), export));
        assert_eq!(parsed(8 | 6), Ok((6, true)));
        assert_eq!(parsed(2), Ok((2, false)));
        assert_eq!(parsed(16), Err(EINVAL));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"0"), Ok(0));
        assert_eq!(parse_size(b"4096\n"), Ok(4096));
        assert_eq!(parse_size(b"64M"), Ok(64 << 20));
        assert_eq!(parse_size(b"64m\n"), Ok(64 << 20));
        assert_eq!(parse_size(b"8K"), Ok(8 << 10));
        assert_eq!(parse_size(b"2G"), Ok(2 << 30));
        assert_eq!(parse_size(b""), Err(EINVAL));
        assert_eq!(parse_size(b"\n"), Err(EINVAL));
        assert_eq!(parse_size(b"M"), Err(EINVAL));
        assert_eq!(parse_size(b"-1"), Err(EINVAL));
        assert_eq!(parse_size(b" 1"), Err(EINVAL));
        assert_eq!(parse_size(b"1 M"), Err(EINVAL));
        assert_eq!(parse_size(b"1\n\n"), Err(EINVAL));
        assert_eq!(parse_size(b"18446744073709551615"), Err(EINVAL));
        assert_eq!(parse_size(b"9999999999999999999G"), Err(EINVAL));
    }

    #[test]
    fn heap_names() {
        assert!(heap_name_ok(b"linux,cma", 0));
        assert!(heap_name_ok(b"vidbuf_cached", 3));
        assert!(heap_name_ok(b"reserved", 0));
        assert!(heap_name_ok(b"cmabuf-pool@70000000", 0));
        assert!(heap_name_ok(b"cmabuf", 0));
        assert!(heap_name_ok(b"cmabuf1", 1));
        assert!(heap_name_ok(b"cmabuf0", 0));
        assert!(!heap_name_ok(b"cmabuf1", 0));
        assert!(!heap_name_ok(b"cmabuf01", 1));
        assert!(!heap_name_ok(b"cmabuf00", 0));
        assert!(!heap_name_ok(b"", 0));
        assert!(!heap_name_ok(b".", 0));
        assert!(!heap_name_ok(b"..", 0));
        assert!(!heap_name_ok(b"a/b", 0));
        assert!(!heap_name_ok(b"sp ace", 0));
        assert!(!heap_name_ok(b"new\nline", 0));
        assert!(heap_name_ok(&[b'a'; HEAP_NAME_MAX], 0));
        assert!(!heap_name_ok(&[b'a'; HEAP_NAME_MAX + 1], 0));
    }

    #[test]
    fn export_ranges() {
        let size = 4 * PAGE;
        assert_eq!(export_range(0, 0, size, PAGE), Ok((0, size)));
        assert_eq!(
            export_range(PAGE as u64, 0, size, PAGE),
            Ok((PAGE, 3 * PAGE))
        );
        assert_eq!(
            export_range(PAGE as u64, 2 * PAGE as u64, size, PAGE),
            Ok((PAGE, 2 * PAGE))
        );
        // Unaligned, empty, past the end, straddling the end, overflowing.
        assert_eq!(export_range(1, 0, size, PAGE), Err(EINVAL));
        assert_eq!(export_range(0, 1, size, PAGE), Err(EINVAL));
        assert_eq!(export_range(size as u64, 0, size, PAGE), Err(EINVAL));
        assert_eq!(
            export_range(3 * PAGE as u64, 2 * PAGE as u64, size, PAGE),
            Err(EINVAL)
        );
        assert_eq!(
            export_range(PAGE as u64, !(PAGE as u64 - 1), size, PAGE),
            Err(EINVAL)
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(round_size(1, PAGE, 1 << 30), Ok(PAGE));
        assert_eq!(round_size(4096, PAGE, 1 << 30), Ok(PAGE));
        assert_eq!(round_size(4097, PAGE, 1 << 30), Ok(2 * PAGE));
        assert_eq!(round_size(0, PAGE, 1 << 30), Err(EINVAL));
        assert_eq!(round_size(u64::MAX, PAGE, u64::MAX), Err(EINVAL));
        assert_eq!(round_size(u64::MAX - 4094, PAGE, u64::MAX), Err(EINVAL));
        assert_eq!(round_size((1 << 30) + 1, PAGE, 1 << 30), Err(EINVAL));
        assert_eq!(round_size(1 << 30, PAGE, 1 << 30), Ok(1 << 30));
    }

    #[test]
    fn offsets() {
        assert_eq!(mmap_offset(1), 1 << 36);
        assert_eq!(split_pgoff(mmap_offset(7) >> 12, 12), Ok((7, 0)));
        assert_eq!(split_pgoff((mmap_offset(7) >> 12) + 5, 12), Ok((7, 5)));
        assert_eq!(
            split_pgoff(mmap_offset(MAX_HANDLE) >> 12, 12),
            Ok((MAX_HANDLE, 0))
        );
        assert_eq!(split_pgoff(0, 12), Ok((0, 0)));
    }

    #[test]
    fn map_ranges() {
        assert_eq!(check_map_range(0, 4, 4), Ok(()));
        assert_eq!(check_map_range(3, 1, 4), Ok(()));
        assert_eq!(check_map_range(3, 2, 4), Err(ENXIO));
        assert_eq!(check_map_range(4, 1, 4), Err(ENXIO));
        assert_eq!(check_map_range(0, 0, 4), Err(ENXIO));
        assert_eq!(check_map_range(u64::MAX, 2, 4), Err(ENXIO));
    }

    #[test]
    fn syncs() {
        let cpu_r = CMABUF_SYNC_FOR_CPU | CMABUF_SYNC_READ;
        assert_eq!(
            SyncRequest::parse(cpu_r, 0, 0, PAGE),
            Ok(SyncRequest {
                for_cpu: true,
                dir: Direction::FromDevice,
                offset: 0,
                len: PAGE
            })
        );
        let dev_r = CMABUF_SYNC_FOR_DEVICE | CMABUF_SYNC_READ;
        assert_eq!(
            SyncRequest::parse(dev_r, 8, 8, PAGE).map(|s| s.dir),
            Ok(Direction::ToDevice)
        );
        let rw = CMABUF_SYNC_FOR_DEVICE | CMABUF_SYNC_READ | CMABUF_SYNC_WRITE;
        assert_eq!(
            SyncRequest::parse(rw, 0, 0, PAGE).map(|s| s.dir),
            Ok(Direction::Bidirectional)
        );
        assert_eq!(
            SyncRequest::parse(CMABUF_SYNC_FOR_CPU, 0, 0, PAGE),
            Err(EINVAL)
        );
        assert_eq!(
            SyncRequest::parse(CMABUF_SYNC_READ, 0, 0, PAGE),
            Err(EINVAL)
        );
        let both = CMABUF_SYNC_FOR_CPU | CMABUF_SYNC_FOR_DEVICE | CMABUF_SYNC_READ;
        assert_eq!(SyncRequest::parse(both, 0, 0, PAGE), Err(EINVAL));
        assert_eq!(SyncRequest::parse(cpu_r | 0x10, 0, 0, PAGE), Err(EINVAL));
        assert_eq!(SyncRequest::parse(cpu_r, 4096, 0, PAGE), Err(EINVAL));
        assert_eq!(SyncRequest::parse(cpu_r, 4000, 97, PAGE), Err(EINVAL));
        assert_eq!(SyncRequest::parse(cpu_r, 1, u64::MAX, PAGE), Err(EINVAL));
        assert_eq!(
            SyncRequest::parse(cpu_r, 4000, 96, PAGE).map(|s| s.len),
            Ok(96)
        );
    }
}
