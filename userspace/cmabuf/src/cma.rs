// SPDX-License-Identifier: GPL-2.0
//! What the kernel itself shows about a CMA region: sysfs counters, the
//! debugfs allocation bitmap, and `/proc/self/pagemap`.

use crate::{Error, Result};
use std::{
    fs,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

/// `/sys/kernel/mm/cma/<region>/` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Pages in the region.
    pub total_pages: u64,
    /// Pages not handed out.
    pub available_pages: u64,
    /// Successful page allocations so far.
    pub alloc_pages_success: u64,
    /// Failed page allocations so far.
    pub alloc_pages_fail: u64,
    /// Pages given back so far.
    pub release_pages_success: u64,
}

fn read_u64(path: &Path) -> Result<u64> {
    let text = fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| Error::Parse(format!("{}: not a number", path.display())))
}

/// Reads the region's sysfs counters (`CONFIG_CMA_SYSFS`).
pub fn counters(region: &str) -> Result<Counters> {
    let dir = PathBuf::from("/sys/kernel/mm/cma").join(region);
    let get = |name: &str| read_u64(&dir.join(name));
    Ok(Counters {
        total_pages: get("total_pages")?,
        available_pages: get("available_pages")?,
        alloc_pages_success: get("alloc_pages_success")?,
        alloc_pages_fail: get("alloc_pages_fail")?,
        release_pages_success: get("release_pages_success")?,
    })
}

/// How many of the `n` bits from `first` are set in a debugfs `u32` array dump.
///
/// The dump is whitespace-separated decimal words, bit `i` of word `w` being page
/// `32 * w + i` of the region (little-endian `unsigned long` bitmap viewed as `u32`s).
pub fn bits_set(dump: &str, first: u64, n: u64) -> Result<u64> {
    let mut set = 0;
    for (w, word) in dump.split_whitespace().enumerate() {
        let word: u32 = word
            .parse()
            .map_err(|_| Error::Parse(format!("bad bitmap word {word:?}")))?;
        for b in 0..32u64 {
            let bit = w as u64 * 32 + b;
            if bit >= first && bit < first + n && (word >> b) & 1 == 1 {
                set += 1;
            }
        }
    }
    Ok(set)
}

/// How many of the pages `[pfn, pfn + n)` CMA marks allocated, from debugfs
/// (`CONFIG_CMA_DEBUGFS`, debugfs mounted, root).
pub fn allocated_pages(region: &str, pfn: u64, n: u64) -> Result<u64> {
    let dir = PathBuf::from("/sys/kernel/debug/cma").join(region);
    let base = read_u64(&dir.join("base_pfn"))?;
    let path = dir.join("bitmap");
    let dump = fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?;
    match pfn.checked_sub(base) {
        Some(first) => bits_set(&dump, first, n),
        None => Ok(0),
    }
}

/// The page frame number behind a virtual address of this process, if pagemap shows one.
///
/// Needs root to see PFNs; mappings made with `remap_pfn_range()` (as cmabuf's are) are holes
/// to pagemap, so this gives `None` for them.
pub fn pfn_of(addr: usize) -> Result<Option<u64>> {
    let path = Path::new("/proc/self/pagemap");
    let file = fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entry = [0u8; 8];
    let page = 4096u64;
    file.read_exact_at(&mut entry, addr as u64 / page * 8)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let e = u64::from_le_bytes(entry);
    let pfn = e & ((1 << 55) - 1);
    Ok((e >> 63 == 1 && pfn != 0).then_some(pfn))
}

/// One row of `/proc/pagetypeinfo`'s free-page table: free blocks per order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreeBlocks {
    /// NUMA node.
    pub node: u32,
    /// Zone name (`DMA`, `Normal`, ...).
    pub zone: String,
    /// Migrate type (`Unmovable`, `Movable`, `CMA`, ...).
    pub migratetype: String,
    /// Free blocks at order 0, 1, ...
    pub counts: Vec<u64>,
}

/// The free-page table of `/proc/pagetypeinfo`.
pub fn parse_pagetypeinfo(text: &str) -> Vec<FreeBlocks> {
    let mut rows = Vec::new();
    for line in text.lines() {
        // "Node    0, zone    DMA, type    Unmovable      1      2 ..."
        let Some(rest) = line.strip_prefix("Node") else {
            continue;
        };
        let Some((node, rest)) = rest.split_once(',') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("zone") else {
            continue;
        };
        let Some((zone, rest)) = rest.split_once(',') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("type") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(mt) = words.next() else { continue };
        let counts: Option<Vec<u64>> = words.map(|w| w.parse().ok()).collect();
        let (Ok(node), Some(counts)) = (node.trim().parse(), counts) else {
            continue;
        };
        rows.push(FreeBlocks {
            node,
            zone: zone.trim().to_string(),
            migratetype: mt.to_string(),
            counts,
        });
    }
    rows
}

/// Reads and parses `/proc/pagetypeinfo` (root only on most kernels).
pub fn pagetypeinfo() -> Result<Vec<FreeBlocks>> {
    let path = Path::new("/proc/pagetypeinfo");
    let text = fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_pagetypeinfo(&text))
}

/// Free blocks of at least `order` outside CMA (all zones and non-CMA migrate types).
pub fn free_blocks_outside_cma(rows: &[FreeBlocks], order: usize) -> u64 {
    rows.iter()
        .filter(|r| r.migratetype != "CMA")
        .map(|r| r.counts.iter().skip(order).sum::<u64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bits_across_words() {
        // Words: bits 30, 31 of word 0 and bits 0..2 of word 1 set.
        let dump = format!("{} {} 0\n", (1u32 << 30) | (1 << 31), 0b111);
        assert_eq!(bits_set(&dump, 30, 5).unwrap(), 5);
        assert_eq!(bits_set(&dump, 30, 6).unwrap(), 5);
        assert_eq!(bits_set(&dump, 0, 30).unwrap(), 0);
        assert_eq!(bits_set(&dump, 64, 32).unwrap(), 0);
    }

    const PAGETYPEINFO: &str = "Page block order: 10
Pages per block:  1024

Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10
Node    0, zone    DMA, type    Unmovable      5      3      1      0      0      0      0      0      0      0      0
Node    0, zone    DMA, type      Movable     10      4      2      1      0      0      0      0      1      2      3
Node    0, zone    DMA, type  Reclaimable      0      0      0      0      0      0      0      0      0      0      0
Node    0, zone    DMA, type          CMA      0      0      0      0      0      0      0      0      0      0     40
Node    0, zone    DMA, type      Isolate      0      0      0      0      0      0      0      0      0      0      0

Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate
Node 0, zone      DMA            3          200            1            0           40            0
";

    #[test]
    fn parses_pagetypeinfo() {
        let rows = parse_pagetypeinfo(PAGETYPEINFO);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1].zone, "DMA");
        assert_eq!(rows[1].migratetype, "Movable");
        assert_eq!(rows[1].counts.len(), 11);
        assert_eq!(rows[3].counts[10], 40);
        assert_eq!(free_blocks_outside_cma(&rows, 9), 5);
        assert_eq!(free_blocks_outside_cma(&rows, 0), 32);
    }

    #[test]
    fn rejects_bad_dump() {
        assert!(bits_set("12 x 3", 0, 1).is_err());
    }
}
