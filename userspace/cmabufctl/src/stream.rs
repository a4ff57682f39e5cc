// SPDX-License-Identifier: GPL-2.0
//! The V4L2 side that `capture` and `record` share: a single-planar capture
//! node streaming into exported cmabuf buffers (`V4L2_MEMORY_DMABUF`,
//! zero-copy), through the `v4l2r` crate's ioctl layer.

use cmabuf::{Buffer, Device, Mode};
use std::{fs::File, path::Path};
use v4l2r::{
    ioctl::{self, Capabilities, Capability, MemoryConsistency, QBufPlane, QBuffer, V4l2Buffer},
    memory::{DmaBufHandle, MemoryType},
    QueueType,
};

/// Buffers queued at once.
pub const BUFFERS: u32 = 4;

/// The queue every command here uses.
pub const QUEUE: QueueType = QueueType::VideoCapture;

/// One cmabuf buffer, mapped, and a descriptor of its dma-buf queued to the device.
pub struct Slot {
    pub buffer: Buffer,
    pub dmabuf: File,
}

/// Opens a V4L2 node that must be a single-planar capture device.
pub fn open(path: &Path) -> Result<(File, Capability), String> {
    let video = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let cap: Capability = ioctl::querycap(&video).map_err(|e| format!("VIDIOC_QUERYCAP: {e}"))?;
    if !cap.device_caps().contains(Capabilities::VIDEO_CAPTURE) {
        return Err(format!(
            "{}: not a single-planar capture device",
            path.display()
        ));
    }
    Ok((video, cap))
}

/// [`BUFFERS`] buffers of `len` bytes in `mode` (page-backed mappings if `page_map`), mapped and
/// exported.
pub fn slots(dev: &Device, len: u64, mode: Mode, page_map: bool) -> Result<Vec<Slot>, String> {
    let mut slots = Vec::new();
    for _ in 0..BUFFERS {
        let mut buffer = dev
            .alloc(len)
            .mode(mode)
            .page_map(page_map)
            .allocate()
            .map_err(|e| e.to_string())?;
        buffer.map().map_err(|e| e.to_string())?;
        let dmabuf = File::from(buffer.export().map_err(|e| e.to_string())?);
        slots.push(Slot { buffer, dmabuf });
    }
    Ok(slots)
}

/// Queues slot `i` to the device.
pub fn queue(video: &File, slots: &[Slot], i: u32) -> Result<(), String> {
    let slot = slots.get(i as usize).ok_or("no such buffer")?;
    let handle = DmaBufHandle(slot.dmabuf.try_clone().map_err(|e| e.to_string())?);
    let mut qbuf = QBuffer::<DmaBufHandle<File>>::new(QUEUE, i);
    qbuf.planes = vec![QBufPlane::new_from_handle(&handle, 0)];
    ioctl::qbuf::<_, ()>(video, qbuf).map_err(|e| format!("VIDIOC_QBUF: {e}"))
}

/// Gives the device the slots' buffers, queues them all and starts streaming.
pub fn start(video: &File, slots: &[Slot]) -> Result<(), String> {
    let granted: usize = ioctl::reqbufs(
        video,
        QUEUE,
        MemoryType::DmaBuf,
        BUFFERS,
        MemoryConsistency::empty(),
    )
    .map_err(|e| format!("VIDIOC_REQBUFS: {e}"))?;
    if granted < BUFFERS as usize {
        return Err(format!("the device took {granted} buffers, not {BUFFERS}"));
    }
    for i in 0..BUFFERS {
        queue(video, slots, i)?;
    }
    ioctl::streamon(video, QUEUE).map_err(|e| format!("VIDIOC_STREAMON: {e}"))
}

/// Waits for a filled buffer; its slot index.
pub fn dequeue(video: &File) -> Result<u32, String> {
    let buf: V4l2Buffer = ioctl::dqbuf(video, QUEUE).map_err(|e| format!("VIDIOC_DQBUF: {e}"))?;
    Ok(buf.index())
}

/// Stops streaming and takes the buffers back from the device, whatever happened before.
pub fn stop(video: &File) {
    let _ = ioctl::streamoff(video, QUEUE);
    let _ = ioctl::reqbufs::<()>(
        video,
        QUEUE,
        MemoryType::DmaBuf,
        0,
        MemoryConsistency::empty(),
    );
}
