// SPDX-License-Identifier: GPL-2.0
//! `cmabufctl record`: a V4L2 capture device fills exported cmabuf buffers
//! (`V4L2_MEMORY_DMABUF`), and each frame goes from the buffer's page-backed
//! mapping (`CMABUF_ALLOC_PAGE_MAP`) straight to storage with `O_DIRECT`:
//! the disk's DMA reads the camera's memory, no copy in between.
//!
//! Writes go through io_uring (the `io-uring` crate) or plain `pwrite()`.
//! Each frame takes its size rounded up to 4 KiB (`O_DIRECT` alignment) in
//! the output, frame `n` at `n` times that.

use crate::stream::{self, BUFFERS, QUEUE};
use cmabuf::{Device, Mode};
use indicatif::{ProgressBar, ProgressStyle};
use io_uring::{opcode, types, IoUring};
use std::{
    fs::File,
    os::{
        fd::AsRawFd,
        unix::fs::{FileExt, FileTypeExt, OpenOptionsExt},
    },
    path::Path,
    time::Instant,
};
use v4l2r::{ioctl, Format};
/// `O_DIRECT` alignment of each frame's place in the output.
const ALIGN: u64 = 4096;

pub use crate::cli::Io;

/// What to record and where to.
pub struct Record<'a> {
    /// The V4L2 capture node.
    pub video: &'a Path,
    /// Frames to write.
    pub frames: u32,
    /// Output file or block device.
    pub out: &'a Path,
    /// Cache mode of the cmabuf buffers.
    pub mode: Mode,
    /// How to write.
    pub io: Io,
}

/// What a recording did.
pub struct Summary {
    /// Frames written.
    pub frames: u32,
    /// Bytes of each frame (the format's `sizeimage`).
    pub frame_bytes: u64,
    /// Bytes each frame takes in the output.
    pub stride: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Seconds from the first dequeue to the last write.
    pub secs: f64,
}

/// The output, opened for `O_DIRECT` writes, and the room it has (block devices; regular files
/// grow).
fn open_out(path: &Path) -> Result<(File, Option<u64>), String> {
    let meta = std::fs::metadata(path).ok();
    let is_block = meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true)
        .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits());
    if !is_block {
        opts.create(true).truncate(true);
    }
    let file = opts
        .open(path)
        .map_err(|e| format!("{} (O_DIRECT): {e}", path.display()))?;
    let room = if is_block {
        Some(
            nix::unistd::lseek(&file, 0, nix::unistd::Whence::SeekEnd)
                .map_err(|e| format!("{}: {e}", path.display()))? as u64,
        )
    } else {
        None
    };
    Ok((file, room))
}

/// Writes `data` at `offset` of `out` through `ring` and waits for it.
fn uring_write(ring: &mut IoUring, out: &File, data: &[u8], offset: u64) -> Result<(), String> {
    let sqe = opcode::Write::new(
        types::Fd(out.as_raw_fd()),
        data.as_ptr(),
        u32::try_from(data.len()).map_err(|_| "frame too large for one write")?,
    )
    .offset(offset)
    .build();
    // SAFETY: `data` stays borrowed (and mapped) until the completion is reaped below.
    unsafe { ring.submission().push(&sqe) }.map_err(|_| "io_uring queue full")?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let cqe = ring.completion().next().ok_or("io_uring: no completion")?;
    match cqe.result() {
        n if n >= 0 && n as usize == data.len() => Ok(()),
        n if n >= 0 => Err(format!("short write: {n} of {} bytes", data.len())),
        n => Err(format!("write: {}", std::io::Error::from_raw_os_error(-n))),
    }
}

/// Runs a recording.
pub fn run(dev: &Device, r: &Record<'_>) -> Result<Summary, String> {
    let (video, cap) = stream::open(r.video)?;
    let fmt: Format = ioctl::g_fmt(&video, QUEUE).map_err(|e| format!("VIDIOC_G_FMT: {e}"))?;
    let sizeimage = u64::from(
        fmt.plane_fmt
            .first()
            .ok_or("format without planes")?
            .sizeimage,
    );
    let stride = sizeimage.div_ceil(ALIGN) * ALIGN;
    let (out, room) = open_out(r.out)?;
    let total = stride * u64::from(r.frames);
    if let Some(room) = room {
        if total > room {
            return Err(format!(
                "{}: {} frames of {stride} bytes need {total} bytes, the device has {room}",
                r.out.display(),
                r.frames
            ));
        }
    }
    eprintln!(
        "cmabufctl record: {} ({}), {}x{} {}, {BUFFERS} page-backed cmabuf {} buffers of {sizeimage} bytes -> {} ({})",
        r.video.display(),
        cap.card,
        fmt.width,
        fmt.height,
        fmt.pixelformat,
        r.mode.name(),
        r.out.display(),
        match r.io {
            Io::Uring => "io_uring, O_DIRECT",
            Io::Pwrite => "pwrite, O_DIRECT",
        }
    );

    let slots = stream::slots(dev, stride, r.mode, true)?;
    let mut ring = IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
    stream::start(&video, &slots)?;

    let bar = ProgressBar::new(u64::from(r.frames)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} frames {binary_bytes_per_sec}")
            .map_err(|e| e.to_string())?,
    );
    let mut start = None;
    let res = (|| -> Result<(), String> {
        for n in 0..r.frames {
            let i = stream::dequeue(&video)?;
            start.get_or_insert_with(Instant::now);
            let slot = slots.get(i as usize).ok_or("DQBUF: unknown index")?;
            // The disk's DMA reads what the camera's DMA wrote: no CPU access, no sync (the
            // block layer's streaming mapping does the cache maintenance).
            let frame = slot
                .buffer
                .as_slice()
                .get(..stride as usize)
                .ok_or("frame larger than its buffer")?;
            let offset = u64::from(n) * stride;
            match r.io {
                Io::Uring => uring_write(&mut ring, &out, frame, offset)?,
                Io::Pwrite => out
                    .write_all_at(frame, offset)
                    .map_err(|e| format!("pwrite: {e}"))?,
            }
            bar.inc(1);
            if n + BUFFERS < r.frames {
                stream::queue(&video, &slots, i)?;
            }
        }
        Ok(())
    })();
    bar.finish_and_clear();
    let secs = start.map_or(0.0, |t| t.elapsed().as_secs_f64());
    stream::stop(&video);
    res?;
    out.sync_all()
        .map_err(|e| format!("{}: {e}", r.out.display()))?;
    Ok(Summary {
        frames: r.frames,
        frame_bytes: sizeimage,
        stride,
        bytes: total,
        secs,
    })
}
