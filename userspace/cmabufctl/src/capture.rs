// SPDX-License-Identifier: GPL-2.0
//! `cmabufctl capture`: a V4L2 capture device fills exported cmabuf buffers
//! (`V4L2_MEMORY_DMABUF`, zero-copy), and the frames are read through the
//! cmabuf mapping and written as PNG files.
//!
//! The V4L2 side is the `v4l2r` crate's ioctl layer; PNG encoding is the
//! `png` crate's. Frames must be YUYV (4:2:2); the device's current size is
//! kept and YUYV asked for if it is not the current format.

use crate::stream::{self, BUFFERS, QUEUE};
use cmabuf::{Access, Device, Mode};
use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};
use v4l2r::{ioctl, Format, PixelFormat};

/// What to capture and where to.
pub struct Capture<'a> {
    /// The V4L2 capture node.
    pub video: &'a Path,
    /// Frames to write.
    pub frames: u32,
    /// Directory for `frame-NNN.png`.
    pub out: &'a Path,
    /// Cache mode of the cmabuf buffers.
    pub mode: Mode,
}

/// Converts a YUYV (BT.601, limited range) frame to RGB8.
fn yuyv_to_rgb(src: &[u8], width: usize, height: usize, stride: usize) -> Vec<u8> {
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in 0..height {
        let line = &src[row * stride..row * stride + width * 2];
        for px in line.chunks_exact(4) {
            let (u, v) = (px[1] as f32 - 128.0, px[3] as f32 - 128.0);
            for y in [px[0], px[2]] {
                let y = 1.164 * (y as f32 - 16.0);
                rgb.extend_from_slice(&[
                    clamp(y + 1.596 * v),
                    clamp(y - 0.392 * u - 0.813 * v),
                    clamp(y + 2.017 * u),
                ]);
            }
        }
    }
    rgb
}

/// Writes an RGB8 image as PNG.
fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    w.write_image_data(rgb)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a binary PPM (`P6`, 8 bits per sample): `(width, height, RGB bytes)`.
fn parse_ppm(data: &[u8]) -> Result<(u32, u32, &[u8]), String> {
    // Four header fields, each after optional whitespace; exactly one whitespace byte ends
    // the header.
    let mut fields = [0u32; 3];
    let mut pos = 0;
    let field = |pos: &mut usize| -> Result<&[u8], String> {
        while data.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
            *pos += 1;
        }
        let start = *pos;
        while data.get(*pos).is_some_and(|b| !b.is_ascii_whitespace()) {
            *pos += 1;
        }
        (start < *pos)
            .then(|| &data[start..*pos])
            .ok_or_else(|| "PPM header ends early".to_string())
    };
    if field(&mut pos)? != b"P6" {
        return Err("not a binary PPM (P6)".into());
    }
    for f in fields.iter_mut() {
        let text = std::str::from_utf8(field(&mut pos)?).map_err(|e| e.to_string())?;
        *f = text
            .parse()
            .map_err(|e| format!("PPM header {text:?}: {e}"))?;
    }
    let [width, height, maxval] = fields;
    if maxval != 255 {
        return Err(format!("PPM with {maxval} levels: only 255 is supported"));
    }
    let len = width as usize * height as usize * 3;
    let pixels = data
        .get(pos + 1..pos + 1 + len)
        .ok_or_else(|| format!("PPM of {width}x{height} has fewer than {len} bytes"))?;
    Ok((width, height, pixels))
}

/// Writes the binary PPM `input` as the PNG `output`.
pub fn ppm_to_png(input: &Path, output: &Path) -> Result<(), String> {
    let data = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let (width, height, rgb) = parse_ppm(&data).map_err(|e| format!("{}: {e}", input.display()))?;
    write_png(output, width, height, rgb)
}

/// Runs a capture; returns the files written.
pub fn run(dev: &Device, c: &Capture<'_>) -> Result<Vec<PathBuf>, String> {
    let (mut video, cap) = stream::open(c.video)?;
    let mut fmt: Format = ioctl::g_fmt(&video, QUEUE).map_err(|e| format!("VIDIOC_G_FMT: {e}"))?;
    let yuyv = PixelFormat::from_fourcc(b"YUYV");
    if fmt.pixelformat != yuyv {
        fmt.pixelformat = yuyv;
        fmt = ioctl::s_fmt(&mut video, (QUEUE, &fmt)).map_err(|e| format!("VIDIOC_S_FMT: {e}"))?;
        if fmt.pixelformat != yuyv {
            return Err(format!("{}: cannot capture YUYV", c.video.display()));
        }
    }
    let plane = fmt.plane_fmt.first().ok_or("format without planes")?;
    let (width, height) = (fmt.width, fmt.height);
    let (sizeimage, stride) = (plane.sizeimage, plane.bytesperline as usize);
    eprintln!(
        "cmabufctl capture: {} ({}), {width}x{height} YUYV, {BUFFERS} cmabuf {} buffers of {sizeimage} bytes",
        c.video.display(),
        cap.card,
        c.mode.name()
    );

    let mut slots = stream::slots(dev, u64::from(sizeimage), c.mode, false)?;
    stream::start(&video, &slots)?;
    std::fs::create_dir_all(c.out).map_err(|e| format!("{}: {e}", c.out.display()))?;
    let mut written = Vec::new();
    let res = (|| -> Result<(), String> {
        for n in 0..c.frames {
            let i = stream::dequeue(&video)?;
            let slot = slots.get_mut(i as usize).ok_or("DQBUF: unknown index")?;
            let rgb = {
                let cpu = slot
                    .buffer
                    .cpu_access(Access::Read)
                    .map_err(|e| e.to_string())?;
                let frame = cpu
                    .as_slice()
                    .get(..sizeimage as usize)
                    .ok_or("frame larger than its buffer")?;
                yuyv_to_rgb(frame, width as usize, height as usize, stride)
            };
            let path = c.out.join(format!("frame-{n:03}.png"));
            write_png(&path, width, height, &rgb)?;
            eprint!(
                "\rcmabufctl capture: frame {}/{} -> {}",
                n + 1,
                c.frames,
                path.display()
            );
            let _ = std::io::stderr().flush();
            written.push(path);
            if n + BUFFERS < c.frames {
                stream::queue(&video, &slots, i)?;
            }
        }
        eprintln!();
        Ok(())
    })();
    // Stop and give the buffers back whatever happened; the device drops its mappings.
    stream::stop(&video);
    res.map(|()| written)
}

#[cfg(test)]
mod tests {
    use super::parse_ppm;

    #[test]
    fn ppm_header_and_pixels() {
        let data = b"P6\n# no comments here\n".to_vec();
        assert!(parse_ppm(&data).is_err());
        let mut data = b"P6\n2 1\n255\n".to_vec();
        data.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(parse_ppm(&data), Ok((2, 1, &[1u8, 2, 3, 4, 5, 6][..])));
        assert!(parse_ppm(&data[..data.len() - 1]).is_err());
        assert!(parse_ppm(b"P3\n1 1\n255\n...").is_err());
        assert!(parse_ppm(b"P6\n1 1\n65535\n......").is_err());
    }
}
