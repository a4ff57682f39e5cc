// SPDX-License-Identifier: GPL-2.0
//! `cmabufctl`: inspect and exercise cmabuf devices.

mod bench;
mod capture;
mod cli;
mod json;
mod record;
mod stream;

use clap::Parser;
use cli::{Cli, Command};
use cmabuf::{cma, size, Access, Buffer, Device, Mode};
use json::{Obj, Value};
use std::{process::ExitCode, thread, time::Duration};

fn hex(v: Option<u64>) -> String {
    v.map_or_else(|| "withheld".to_string(), |a| format!("{a:#x}"))
}

fn info(dev: &Device, json: bool) -> cmabuf::Result<bool> {
    let i = dev.info()?;
    if json {
        let o = Obj::new()
            .set("device", dev.path().display().to_string())
            .set("index", i.index)
            .set("region", i.region_name.as_str())
            .set("region_base", i.region_base)
            .set("region_size", i.region_size)
            .set("page_size", i.page_size)
            .set("dma_coherent", i.dma_coherent)
            .set("heap_name", i.heap_name.as_deref())
            .set(
                "limits",
                Obj::new()
                    .set("buffers_per_file", i.max_buffers_per_file)
                    .set("bytes_per_file", i.max_bytes_per_file)
                    .set("bytes_per_device", i.max_bytes_per_device),
            )
            .set("dev_buffers", i.dev_buffers)
            .set("dev_bytes", i.dev_bytes);
        println!("{}", o.render());
    } else {
        println!(
            "device          {} (index {})",
            dev.path().display(),
            i.index
        );
        println!("region          {}", i.region_name);
        println!("region base     {}", hex(i.region_base));
        println!("region size     {}", size::human(i.region_size));
        println!("page size       {}", i.page_size);
        if let Some(n) = &i.heap_name {
            println!("dma-heap        /dev/dma_heap/{n}");
        }
        println!(
            "dma-coherent    {}",
            if i.dma_coherent {
                "yes (page-backed mappings in every mode)"
            } else {
                "no (page-backed mappings of cached buffers only)"
            }
        );
        println!(
            "limits          {} buffers per file; bytes: {} per file, {} per device",
            i.max_buffers_per_file,
            size::limit(i.max_bytes_per_file),
            size::limit(i.max_bytes_per_device)
        );
        println!(
            "in use          {} buffers, {}",
            i.dev_buffers,
            size::human(i.dev_bytes)
        );
    }
    Ok(true)
}

fn alloc(
    dev: &Device,
    json: bool,
    size_: u64,
    mode: Mode,
    fill: Option<u8>,
    hold: u64,
    count: u32,
) -> cmabuf::Result<bool> {
    let mut bufs: Vec<Buffer> = Vec::new();
    for _ in 0..count {
        let mut b = dev.alloc(size_).mode(mode).allocate()?;
        if let Some(byte) = fill {
            b.cpu_access(Access::Write)?.as_mut_slice().fill(byte);
        }
        bufs.push(b);
    }
    let list: Vec<Value> = bufs
        .iter()
        .map(|b| {
            Obj::new()
                .set("handle", b.handle())
                .set("size", b.len() as u64)
                .set("mode", b.mode().name())
                .set("dma_addr", b.dma_addr())
                .set("mmap_offset", b.mmap_offset())
                .into()
        })
        .collect();
    if json {
        println!("{}", Obj::new().set("buffers", list).render());
    } else {
        for b in &bufs {
            println!(
                "handle {} size {} mode {} dma {} offset {:#x}",
                b.handle(),
                size::human(b.len() as u64),
                b.mode().name(),
                hex(b.dma_addr()),
                b.mmap_offset()
            );
        }
    }
    if hold > 0 {
        thread::sleep(Duration::from_secs(hold));
    }
    Ok(true)
}

/// Whether the node's ready reserve has its piece size fixed by the integrator or the
/// administrator (`ready_reserve_unit` in sysfs not 0) rather than learned; `None` where the
/// attribute cannot be read (an older module, no sysfs).
fn reserve_unit_fixed(dev: &Device) -> Option<bool> {
    let text = std::fs::read_to_string(dev.sysfs_attr("ready_reserve_unit")?).ok()?;
    Some(text.trim() != "0")
}

fn stats(dev: &Device, json: bool) -> cmabuf::Result<bool> {
    let i = dev.info()?;
    let st = dev.stats()?;
    let fixed = reserve_unit_fixed(dev);
    let c = cma::counters(&i.region_name).ok();
    let ptinfo = cma::pagetypeinfo().ok();
    if json {
        let counters = c.map(|c| {
            Obj::new()
                .set("total_pages", c.total_pages)
                .set("available_pages", c.available_pages)
                .set("alloc_pages_success", c.alloc_pages_success)
                .set("alloc_pages_fail", c.alloc_pages_fail)
                .set("release_pages_success", c.release_pages_success)
        });
        let hist: Vec<Value> = st.latency_hist.iter().map(|&n| n.into()).collect();
        let free = ptinfo.as_ref().map(|rows| {
            let list: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let counts: Vec<Value> = r.counts.iter().map(|&n| n.into()).collect();
                    Obj::new()
                        .set("zone", r.zone.as_str())
                        .set("type", r.migratetype.as_str())
                        .set("free_by_order", counts)
                        .into()
                })
                .collect();
            Value::from(list)
        });
        let o = Obj::new()
            .set("region", i.region_name.as_str())
            .set("dev_buffers", i.dev_buffers)
            .set("dev_bytes", i.dev_bytes)
            .set(
                "allocs",
                Obj::new()
                    .set("ok", st.allocs)
                    .set("fail_nomem", st.fail_nomem)
                    .set("fail_busy", st.fail_busy)
                    .set("fail_intr", st.fail_intr)
                    .set("fail_limit", st.fail_limit)
                    .set("fallbacks", st.fallbacks)
                    .set("retries", st.retries),
            )
            .set("live_buffers", st.live_buffers)
            .set("live_bytes", st.live_bytes)
            .set("peak_bytes", st.peak_bytes)
            .set("region_size", st.region_size)
            .set("largest_free", st.largest_free)
            .set(
                "pool",
                Obj::new()
                    .set("bytes", st.pool_bytes)
                    .set("free_bytes", st.pool_free_bytes),
            )
            .set(
                "held",
                Obj::new()
                    .set("buffers", st.held_buffers)
                    .set("bytes", st.held_bytes),
            )
            .set(
                "reserve",
                Obj::new()
                    .set("bytes", st.reserve_bytes)
                    .set("ready_bytes", st.reserve_ready_bytes)
                    .set("lent_bytes", st.reserve_lent_bytes)
                    .set("unit", st.reserve_unit)
                    .set("unit_fixed", fixed.map_or(Value::Null, Value::from))
                    .set("hits", st.reserve_hits)
                    .set("misses", st.reserve_misses)
                    .set("refill_us", st.reserve_refill_us),
            )
            .set("latency_hist_log2_us", hist)
            .set("cma", counters)
            .set("pagetypeinfo", free.unwrap_or(Value::Null));
        println!("{}", o.render());
        return Ok(true);
    }
    println!(
        "region            {} ({})",
        i.region_name,
        size::human(st.region_size)
    );
    println!(
        "live              {} buffers, {} (peak {})",
        st.live_buffers,
        size::human(st.live_bytes),
        size::human(st.peak_bytes)
    );
    println!(
        "largest free      {} (cmabuf's view)",
        size::human(st.largest_free)
    );
    println!(
        "small-buffer pool {} in chunks, {} of it free",
        size::human(st.pool_bytes),
        size::human(st.pool_free_bytes)
    );
    println!(
        "held              {} buffers, {} (gone, pages still held by pipes or I/O)",
        st.held_buffers,
        size::human(st.held_bytes)
    );
    if st.reserve_bytes != 0 {
        println!(
            "ready reserve     {}: {} ready, {} lent, in {} pieces{}; {} hits, {} misses; \
             last refill {:.1} ms",
            size::human(st.reserve_bytes),
            size::human(st.reserve_ready_bytes),
            size::human(st.reserve_lent_bytes),
            size::human(st.reserve_unit),
            match fixed {
                Some(true) => " (fixed)",
                Some(false) => " (learned)",
                None => "",
            },
            st.reserve_hits,
            st.reserve_misses,
            st.reserve_refill_us as f64 / 1000.0
        );
    }
    println!(
        "allocations       {} ok; failed: {} nomem, {} busy, {} intr, {} limit",
        st.allocs, st.fail_nomem, st.fail_busy, st.fail_intr, st.fail_limit
    );
    println!(
        "retries           {}; fallbacks given back {}",
        st.retries, st.fallbacks
    );
    if let (Some(p50), Some(p95)) = (st.latency_percentile_us(50), st.latency_percentile_us(95)) {
        println!("latency           p50 < {p50} us, p95 < {p95} us");
    }
    for (b, n) in st.latency_hist.iter().enumerate().filter(|(_, n)| **n > 0) {
        println!("  < {:>9} us    {n}", 1u64 << (b + 1));
    }
    match c {
        Some(c) => println!(
            "CMA (kernel)      {} of {} pages free; {} allocated, {} failed, {} released",
            c.available_pages,
            c.total_pages,
            c.alloc_pages_success,
            c.alloc_pages_fail,
            c.release_pages_success
        ),
        None => println!("CMA (kernel)      counters unavailable (CONFIG_CMA_SYSFS?)"),
    }
    match ptinfo {
        Some(rows) => {
            println!("free blocks by order (/proc/pagetypeinfo):");
            print!("  {:<8} {:<12}", "zone", "type");
            let orders = rows.iter().map(|r| r.counts.len()).max().unwrap_or(0);
            for o in 0..orders {
                print!(" {o:>5}");
            }
            println!();
            for r in rows.iter().filter(|r| r.counts.iter().any(|&n| n > 0)) {
                print!("  {:<8} {:<12}", r.zone, r.migratetype);
                for n in &r.counts {
                    print!(" {n:>5}");
                }
                println!();
            }
            println!(
                "  order >= 9 blocks free outside CMA: {}",
                cma::free_blocks_outside_cma(&rows, 9)
            );
        }
        None => println!("free blocks        /proc/pagetypeinfo unreadable (needs root)"),
    }
    Ok(true)
}

fn verify(dev: &Device, json: bool, size_: u64, mode: Mode) -> cmabuf::Result<bool> {
    let region = dev.info()?.region_name;
    let mut b = dev.alloc(size_).mode(mode).allocate()?;
    let len = b.len();
    let zeroed;
    let pattern_ok;
    {
        let mut cpu = b.cpu_access(Access::ReadWrite)?;
        zeroed = cpu.as_slice().iter().all(|&x| x == 0);
        for (i, x) in cpu.as_mut_slice().iter_mut().enumerate() {
            *x = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3];
        }
        pattern_ok = cpu
            .as_slice()
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3]);
    }
    let pages = len as u64 / 4096;
    // Contiguity: CMA's own bitmap must show exactly the buffer's pages taken at its DMA
    // address. pagemap cannot show remap_pfn_range() mappings (they are holes to it).
    let (contiguous, method) = match b.dma_addr() {
        None => (
            None,
            "unknown: DMA address withheld (needs CAP_SYS_RAWIO)".to_string(),
        ),
        Some(addr) => {
            let pagemap = cma::pfn_of(b.as_slice().as_ptr() as usize).ok().flatten();
            match (pagemap, cma::allocated_pages(&region, addr / 4096, pages)) {
                (Some(pfn), _) => {
                    let mut ok = pfn == addr / 4096;
                    for p in 1..pages {
                        let at = b.as_slice()[p as usize * 4096..].as_ptr() as usize;
                        ok &= cma::pfn_of(at).ok().flatten() == Some(pfn + p);
                    }
                    (Some(ok), "pagemap".to_string())
                }
                (None, Ok(set)) => (Some(set == pages), "cma-bitmap".to_string()),
                (None, Err(e)) => (None, format!("unknown: {e}")),
            }
        }
    };
    let info = b.info()?;
    let mapped = info.map_count == 1 && info.size == len as u64;
    let ok = zeroed && pattern_ok && mapped && contiguous != Some(false);
    if json {
        let o = Obj::new()
            .set("ok", ok)
            .set("size", len as u64)
            .set("mode", mode.name())
            .set("dma_addr", b.dma_addr())
            .set("zeroed", zeroed)
            .set("pattern", pattern_ok)
            .set("mapped", mapped)
            .set("contiguous", contiguous)
            .set("contiguity_check", method.as_str());
        println!("{}", o.render());
    } else {
        println!("size        {}", size::human(len as u64));
        println!("mode        {}", mode.name());
        println!("dma address {}", hex(b.dma_addr()));
        println!("zeroed      {}", if zeroed { "yes" } else { "NO" });
        println!("pattern     {}", if pattern_ok { "ok" } else { "MISMATCH" });
        println!("mapped      {}", if mapped { "yes" } else { "NO" });
        println!(
            "contiguous  {} ({method})",
            match contiguous {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "unknown",
            }
        );
        println!("{}", if ok { "OK" } else { "FAILED" });
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one command that needs no device.
    if let Command::Png { input, output } = &cli.command {
        return match capture::ppm_to_png(input, output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cmabufctl png: {e}");
                ExitCode::from(1)
            }
        };
    }
    let res = Device::open(&cli.device).and_then(|dev| match cli.command {
        Command::Info => info(&dev, cli.json),
        Command::Alloc {
            size,
            mode,
            fill,
            hold,
            count,
        } => alloc(&dev, cli.json, size, mode, fill, hold, count),
        Command::Stats => stats(&dev, cli.json),
        Command::Capture {
            video,
            frames,
            out,
            mode,
        } => {
            let c = capture::Capture {
                video: &video,
                frames,
                out: &out,
                mode,
            };
            match capture::run(&dev, &c) {
                Ok(files) => {
                    if cli.json {
                        let o = Obj::new()
                            .set("frames", files.len() as u64)
                            .set("out", out.display().to_string());
                        println!("{}", o.render());
                    }
                    Ok(true)
                }
                Err(e) => {
                    eprintln!("cmabufctl capture: {e}");
                    Ok(false)
                }
            }
        }
        Command::Record {
            video,
            frames,
            out,
            mode,
            io,
        } => {
            let r = record::Record {
                video: &video,
                frames,
                out: &out,
                mode,
                io,
            };
            match record::run(&dev, &r) {
                Ok(s) => {
                    let mib = s.bytes as f64 / (1 << 20) as f64;
                    let rate = if s.secs > 0.0 { mib / s.secs } else { 0.0 };
                    if cli.json {
                        let o = Obj::new()
                            .set("frames", u64::from(s.frames))
                            .set("frame_bytes", s.frame_bytes)
                            .set("stride", s.stride)
                            .set("bytes", s.bytes)
                            .set("out", out.display().to_string());
                        println!("{}", o.render());
                    }
                    eprintln!(
                        "cmabufctl record: {} frames ({} bytes each, {} apart), {mib:.1} MiB in {:.2} s: {rate:.1} MiB/s",
                        s.frames, s.frame_bytes, s.stride, s.secs
                    );
                    Ok(true)
                }
                Err(e) => {
                    eprintln!("cmabufctl record: {e}");
                    Ok(false)
                }
            }
        }
        Command::Verify { size, mode } => verify(&dev, cli.json, size, mode),
        Command::Png { .. } => Ok(false),
        Command::Bench { quick } => match bench::run(&dev, quick) {
            Ok(o) => {
                println!("{}", o.render());
                Ok(true)
            }
            Err(e) => {
                eprintln!("cmabufctl bench: {e}");
                Ok(false)
            }
        },
    });
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cmabufctl: {e}");
            ExitCode::from(2)
        }
    }
}
