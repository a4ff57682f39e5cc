// SPDX-License-Identifier: GPL-2.0

//! The ABI of `/dev/cmabufN`, as defined by `include/uapi/linux/cmabuf.h`.
//!
//! The structures and constants are generated from that header by bindgen at
//! build time (`src/Kbuild`); this file adds the ioctl command numbers built
//! from the header's type and numbers, and the one rule for copying a
//! structure that may grow: read `min(user, kernel)` bytes, treat missing
//! bytes as zero, accept extra bytes only if they are zero, write back only
//! the caller's size.

use core::mem::size_of;
use kernel::{
    ioctl,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// bindgen's output for `include/uapi/linux/cmabuf.h`.
#[allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    unreachable_pub,
    clippy::all,
    reason = "generated code"
)]
mod generated {
    include!("uapi_generated.rs");
}

pub(crate) use generated::*;

/// An ioctl argument structure: plain integers, growable at its end.
pub(crate) trait IoctlArg: FromBytes + AsBytes + Default {
    /// Size of the structure's first published version; smaller is `EINVAL`.
    const SIZE_VER0: usize;
}

/// The size of the field that `field` projects to (only its type is used, nothing is called).
// `#[allow]`, not `#[expect]`: used only in anonymous constants, which rustc 1.85 (Debian
// trixie's, for the stock kernel) counts as no use and newer ones count as use.
#[allow(dead_code)]
const fn field_size<T, F>(_field: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Whether `fields`, `(offset, size)` of every field in declaration order, tile a structure of
/// `size` bytes: each starts where the one before ended, the first at 0, the last ends at `size`.
/// Then the structure has no padding, and all its bytes belong to the fields listed.
// `#[allow]`, not `#[expect]`: as for `field_size`.
#[allow(dead_code)]
const fn tiles(fields: &[(usize, usize)], size: usize) -> bool {
    let mut end = 0;
    let mut i = 0;
    while i < fields.len() {
        if fields[i].0 != end {
            return false;
        }
        end += fields[i].1;
        i += 1;
    }
    end == size
}

/// Implements [`IoctlArg`] for a generated structure after checking its layout: its size, and
/// that its fields (all of them, listed in order) leave no padding.
macro_rules! ioctl_arg {
    ($t:ty, $ver0:expr, $size:expr, [$($f:ident),+ $(,)?]) => {
        // The generated layout is the C layout: same size.
        const _: () = assert!(size_of::<$t>() == $size);
        const _: () = assert!($ver0 as usize <= $size);
        // No padding: the listed fields cover every byte, one after the other. (A field left out
        // of the list, or listed twice, breaks the tiling too.)
        const _: () = assert!(tiles(
            &[$((core::mem::offset_of!($t, $f), field_size(|s: &$t| &s.$f))),+],
            size_of::<$t>()
        ));

        // SAFETY: The structure consists of `__u32`/`__u64` fields (and arrays of them) only, and
        // has no padding (checked above), so every byte pattern is a valid value.
        unsafe impl FromBytes for $t {}
        // SAFETY: As above: no padding, so all bytes are initialised.
        unsafe impl AsBytes for $t {}

        impl IoctlArg for $t {
            const SIZE_VER0: usize = $ver0 as usize;
        }
    };
}

ioctl_arg!(
    cmabuf_alloc,
    CMABUF_ALLOC_SIZE_VER0,
    56,
    [
        size,
        flags,
        handle,
        mmap_offset,
        dma_addr,
        alloc_size,
        out_flags,
        reserved,
        fd_flags,
        fd
    ]
);
ioctl_arg!(cmabuf_free, CMABUF_FREE_SIZE_VER0, 8, [handle, reserved]);
ioctl_arg!(
    cmabuf_info,
    CMABUF_INFO_SIZE_VER0,
    40,
    [
        handle,
        flags,
        size,
        mmap_offset,
        dma_addr,
        map_count,
        out_flags
    ]
);
ioctl_arg!(
    cmabuf_sync,
    CMABUF_SYNC_SIZE_VER0,
    24,
    [handle, flags, offset, length]
);
ioctl_arg!(
    cmabuf_dev_info,
    CMABUF_DEV_INFO_SIZE_VER0,
    96,
    [
        region_name_ptr,
        region_name_len,
        index,
        region_base,
        region_size,
        page_size,
        out_flags,
        max_buffers_per_file,
        max_bytes_per_file,
        max_bytes_per_device,
        file_buffers,
        file_bytes,
        dev_buffers,
        dev_bytes
    ]
);
ioctl_arg!(
    cmabuf_stats,
    CMABUF_STATS_SIZE_VER0,
    392,
    [
        allocs,
        fail_nomem,
        fail_busy,
        fail_intr,
        fail_limit,
        fallbacks,
        retries,
        live_buffers,
        live_bytes,
        peak_bytes,
        region_size,
        largest_free,
        latency_hist,
        exports,
        live_dmabufs,
        pool_bytes,
        pool_free_bytes,
        held_buffers,
        held_bytes,
        reserve_bytes,
        reserve_ready_bytes,
        reserve_lent_bytes,
        reserve_unit,
        reserve_hits,
        reserve_misses,
        reserve_refill_us
    ]
);
ioctl_arg!(
    cmabuf_export,
    CMABUF_EXPORT_SIZE_VER0,
    32,
    [handle, flags, fd, reserved, offset, length]
);
// `struct dma_heap_allocation_data` of `<linux/dma-heap.h>` has no versions: one size.
ioctl_arg!(
    dma_heap_allocation_data,
    24,
    24,
    [len, fd, fd_flags, heap_flags]
);

/// `CMABUF_IOC_MAGIC` as the ioctl type.
const MAGIC: u32 = CMABUF_IOC_MAGIC;

/// `DMA_HEAP_IOC_MAGIC` as the ioctl type.
// CAST: A character constant, which bindgen gives as `u8`.
pub(crate) const HEAP_MAGIC: u32 = DMA_HEAP_IOC_MAGIC as u32;

/// The commands, as `(direction, number)`: the size bits vary with the caller's struct version.
pub(crate) mod cmd {
    use super::*;

    /// `CMABUF_IOCTL_ALLOC` with the kernel's structure size.
    pub(crate) const ALLOC: u32 = ioctl::_IOWR::<cmabuf_alloc>(MAGIC, CMABUF_IOC_NR_ALLOC);
    /// `CMABUF_IOCTL_FREE` with the kernel's structure size.
    pub(crate) const FREE: u32 = ioctl::_IOW::<cmabuf_free>(MAGIC, CMABUF_IOC_NR_FREE);
    /// `CMABUF_IOCTL_INFO` with the kernel's structure size.
    pub(crate) const INFO: u32 = ioctl::_IOWR::<cmabuf_info>(MAGIC, CMABUF_IOC_NR_INFO);
    /// `CMABUF_IOCTL_SYNC` with the kernel's structure size.
    pub(crate) const SYNC: u32 = ioctl::_IOW::<cmabuf_sync>(MAGIC, CMABUF_IOC_NR_SYNC);
    /// `CMABUF_IOCTL_DEV_INFO` with the kernel's structure size.
    pub(crate) const DEV_INFO: u32 = ioctl::_IOWR::<cmabuf_dev_info>(MAGIC, CMABUF_IOC_NR_DEV_INFO);
    /// `CMABUF_IOCTL_STATS` with the kernel's structure size.
    pub(crate) const STATS: u32 = ioctl::_IOWR::<cmabuf_stats>(MAGIC, CMABUF_IOC_NR_STATS);
    /// `CMABUF_IOCTL_EXPORT` with the kernel's structure size.
    pub(crate) const EXPORT: u32 = ioctl::_IOWR::<cmabuf_export>(MAGIC, CMABUF_IOC_NR_EXPORT);
    /// `DMA_HEAP_IOCTL_ALLOC` of `<linux/dma-heap.h>`: `_IOWR('H', 0x0, struct
    /// dma_heap_allocation_data)`.
    pub(crate) const DMA_HEAP_ALLOC: u32 = ioctl::_IOWR::<dma_heap_allocation_data>(HEAP_MAGIC, 0);
}

/// The command `cmd` with its size bits cleared, to compare against [`cmd`] values likewise
/// stripped; `None` if it is not one of ours.
pub(crate) fn strip_size(cmd: u32) -> Option<u32> {
    if ioctl::_IOC_TYPE(cmd) != MAGIC {
        return None;
    }
    Some(cmd & !((kernel::uapi::_IOC_SIZEMASK) << kernel::uapi::_IOC_SIZESHIFT))
}

/// An argument structure as read from userspace, with where it came from, so that the result
/// can be written back to it without ever leaving it half-written.
pub(crate) struct UserArg<T: IoctlArg> {
    /// The caller's structure, as read (the kernel's version of it).
    pub(crate) val: T,
    /// Its user address.
    addr: usize,
    /// The caller's size.
    user_size: usize,
}

/// Reads an argument structure of `user_size` bytes from user address `arg`.
///
/// `EINVAL` if `user_size` is below the first version's size, `E2BIG` if the caller's larger
/// structure has non-zero bytes past the kernel's, `EFAULT` if `arg` is not readable.
pub(crate) fn read<T: IoctlArg>(arg: usize, user_size: usize) -> Result<UserArg<T>> {
    if user_size < T::SIZE_VER0 {
        return Err(EINVAL);
    }
    let mut reader = UserSlice::new(UserPtr::from_addr(arg), user_size).reader();
    let mut val = T::default();
    let known = user_size.min(size_of::<T>());
    reader.read_slice(&mut val.as_bytes_mut()[..known])?;
    let mut tail = user_size - known;
    let mut chunk = [0u8; 64];
    while tail > 0 {
        let n = tail.min(chunk.len());
        reader.read_slice(&mut chunk[..n])?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Err(E2BIG);
        }
        tail -= n;
    }
    Ok(UserArg {
        val,
        addr: arg,
        user_size,
    })
}

impl<T: IoctlArg> UserArg<T> {
    /// Whether the caller's structure has at least `bytes` bytes (a version with the fields an
    /// input asks to be filled).
    pub(crate) fn covers(&self, bytes: usize) -> bool {
        self.user_size >= bytes
    }

    /// Bytes written back: at most the caller's size.
    fn out_len(&self) -> usize {
        self.user_size.min(size_of::<T>())
    }

    /// Checks that the caller's structure is writable, without changing it: writes back the very
    /// bytes that were read. `EFAULT` if any part is not writable (a structure that straddles a
    /// read-only page); whatever part was written holds what it held before.
    pub(crate) fn check_writable(&self) -> Result {
        write_raw(self.addr, &self.val.as_bytes()[..self.out_len()])
    }

    /// Writes `val` back to the caller's structure, at most the caller's size of it, after
    /// [`UserArg::check_writable`]: a failure leaves the structure as it was.
    pub(crate) fn write(&self, val: &T) -> Result {
        self.check_writable()?;
        write_raw(self.addr, &val.as_bytes()[..self.out_len()])
    }
}

/// `DMA_HEAP_IOCTL_ALLOC`'s argument, read and written exactly as `dma_heap_ioctl()` in
/// `drivers/dma-buf/dma-heap.c` does, whatever size and direction the caller's command carries:
/// it reads the caller's size if the command has `_IOC_WRITE` (zero-filling what a smaller,
/// older structure lacks and keeping a larger one's extra bytes unread by anyone), and writes the
/// caller's size back if the command has `_IOC_READ` (the kernel's structure, then the extra
/// bytes as they came in, zeros if none came in).
pub(crate) struct HeapArg {
    /// The structure as the kernel knows it.
    pub(crate) val: dma_heap_allocation_data,
    /// Where it came from.
    addr: usize,
    /// Bytes to write back.
    out_size: usize,
    /// The bytes past the kernel's structure, as read (zeros where none were).
    tail: KVec<u8>,
}

impl HeapArg {
    /// Reads the argument of `command` at `arg`; `EFAULT` if the caller's bytes are unreadable.
    pub(crate) fn read(command: u32, arg: usize) -> Result<Self> {
        let kdir = ioctl::_IOC_DIR(cmd::DMA_HEAP_ALLOC);
        let udir = ioctl::_IOC_DIR(command);
        let size = ioctl::_IOC_SIZE(command);
        let in_size = if udir & kdir & kernel::uapi::_IOC_WRITE != 0 {
            size
        } else {
            0
        };
        let out_size = if udir & kdir & kernel::uapi::_IOC_READ != 0 {
            size
        } else {
            0
        };
        let known = size_of::<dma_heap_allocation_data>();
        let mut val = dma_heap_allocation_data::default();
        let mut tail = KVec::new();
        tail.resize(in_size.max(out_size).saturating_sub(known), 0, GFP_KERNEL)?;
        let mut reader = UserSlice::new(UserPtr::from_addr(arg), in_size).reader();
        reader.read_slice(&mut val.as_bytes_mut()[..in_size.min(known)])?;
        if in_size > known {
            reader.read_slice(&mut tail[..in_size - known])?;
        }
        Ok(Self {
            val,
            addr: arg,
            out_size,
            tail,
        })
    }

    /// Writes `val` (and the tail) back to the caller's `out_size` bytes.
    pub(crate) fn write(&self, val: &dma_heap_allocation_data) -> Result {
        let known = size_of::<dma_heap_allocation_data>();
        let mut writer = UserSlice::new(UserPtr::from_addr(self.addr), self.out_size).writer();
        writer.write_slice(&val.as_bytes()[..self.out_size.min(known)])?;
        if self.out_size > known {
            writer.write_slice(&self.tail[..self.out_size - known])?;
        }
        Ok(())
    }
}

/// Checks that `given` holds nothing but what `inputs` holds: every output, pad and reserved
/// field must be zero on input (`EINVAL`). `inputs` is `given` with only its input fields copied.
pub(crate) fn only_inputs<T: IoctlArg>(given: &T, inputs: T) -> Result {
    if given.as_bytes() == inputs.as_bytes() {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Copies `bytes` to user address `addr`.
fn write_raw(addr: usize, bytes: &[u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(addr), bytes.len())
        .writer()
        .write_slice(bytes)
}

/// A user buffer of bytes that a call writes to, checked before anything is written.
pub(crate) struct UserBytes {
    /// Its user address.
    addr: usize,
    /// What it held before the call, for as many bytes as the call writes.
    orig: KVec<u8>,
}

impl UserBytes {
    /// The user buffer `ptr` of `len` bytes, to receive `n` bytes: `ERANGE` if they do not fit,
    /// `EFAULT` unless its first `n` bytes are readable and writable. Changes nothing.
    pub(crate) fn prepare(ptr: u64, len: usize, n: usize) -> Result<Self> {
        if n > len {
            return Err(ERANGE);
        }
        // CAST: user addresses fit in `usize`; a larger value is not a valid address anyway.
        let addr = usize::try_from(ptr).map_err(|_| EFAULT)?;
        let mut orig = KVec::new();
        UserSlice::new(UserPtr::from_addr(addr), n)
            .reader()
            .read_all(&mut orig, GFP_KERNEL)?;
        write_raw(addr, &orig)?;
        Ok(Self { addr, orig })
    }

    /// Writes `bytes`, which must be as long as announced to [`UserBytes::prepare`].
    pub(crate) fn write(&self, bytes: &[u8]) -> Result {
        if bytes.len() != self.orig.len() {
            return Err(EINVAL);
        }
        write_raw(self.addr, bytes)
    }
}
