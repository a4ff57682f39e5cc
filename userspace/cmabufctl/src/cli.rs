// SPDX-License-Identifier: GPL-2.0
//! The command line's definition: `cmabufctl` parses it, and `cmabufctl-mangen` writes the
//! manual page from it (clap_mangen), so that the two cannot disagree.

use clap::{Parser, Subcommand};
use cmabuf::{size, Mode};

/// Inspect and exercise cmabuf devices (/dev/cmabufN).
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    /// The device node.
    #[arg(short, long, default_value = "/dev/cmabuf0", global = true)]
    pub device: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The device, its region, limits and use.
    Info,
    /// Allocate buffers, optionally fill them and hold them for a while.
    Alloc {
        /// Size of each buffer (4096, 64K, 1M, ...).
        #[arg(short, long, value_parser = parse_size)]
        size: u64,
        /// Cache mode: coherent, wc, cached.
        #[arg(short, long, default_value = "coherent")]
        mode: Mode,
        /// Byte to fill each buffer with (e.g. 0xaa).
        #[arg(short, long, value_parser = parse_byte)]
        fill: Option<u8>,
        /// Seconds to hold the buffers before freeing them.
        #[arg(long, default_value_t = 0)]
        hold: u64,
        /// How many buffers.
        #[arg(short, long, default_value_t = 1)]
        count: u32,
    },
    /// Use of the device and the kernel's counters of its region.
    Stats,
    /// Capture frames from a V4L2 device into exported cmabuf buffers; write them as PNG.
    Capture {
        /// The V4L2 capture node (e.g. /dev/video0).
        #[arg(long)]
        video: std::path::PathBuf,
        /// How many frames to write.
        #[arg(long, default_value_t = 4)]
        frames: u32,
        /// Directory for frame-NNN.png.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Cache mode of the buffers: coherent, wc, cached.
        #[arg(short, long, default_value = "cached")]
        mode: Mode,
    },
    /// Capture frames from a V4L2 device into page-backed cmabuf buffers and write each to a
    /// file or block device with O_DIRECT (no copy): frame n at n x its size rounded up to 4K.
    Record {
        /// The V4L2 capture node (e.g. /dev/video0).
        #[arg(long)]
        video: std::path::PathBuf,
        /// How many frames to write.
        #[arg(long, default_value_t = 30)]
        frames: u32,
        /// Output file (created) or block device (overwritten).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Cache mode of the buffers: coherent, wc, cached.
        #[arg(short, long, default_value = "cached")]
        mode: Mode,
        /// How to write: uring (io_uring) or pwrite.
        #[arg(long, value_enum, default_value = "uring")]
        io: Io,
    },
    /// Compare with the mainline CMA heap on the same region; prints JSON of ratios.
    Bench {
        /// Few repetitions: a smoke test, not a measurement.
        #[arg(long)]
        quick: bool,
    },
    /// Convert a binary PPM (as the board's display test leaves it) to PNG.
    Png {
        /// The PPM file.
        input: std::path::PathBuf,
        /// The PNG file to write.
        output: std::path::PathBuf,
    },
    /// Allocate, map, check zeroing, write and read back a pattern, check contiguity.
    Verify {
        /// Buffer size.
        #[arg(short, long, value_parser = parse_size, default_value = "4M")]
        size: u64,
        /// Cache mode: coherent, wc, cached.
        #[arg(short, long, default_value = "coherent")]
        mode: Mode,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    size::parse(s).map_err(|e| e.to_string())
}

fn parse_byte(s: &str) -> Result<u8, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    let radix = if t.len() != s.len() { 16 } else { 10 };
    u8::from_str_radix(t, radix).map_err(|e| format!("bad byte {s:?}: {e}"))
}

/// How `record` writes frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Io {
    /// io_uring `IORING_OP_WRITE` on the `O_DIRECT` file.
    Uring,
    /// `pwrite()` on the `O_DIRECT` file.
    Pwrite,
}
