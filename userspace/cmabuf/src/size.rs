// SPDX-License-Identifier: GPL-2.0
//! Sizes as people write them: `4096`, `64K`, `1M`, `8MiB`, `1G`.

use crate::{Error, Result};

/// Parses a byte count with an optional binary suffix (K, M, G, with or without `iB`/`B`).
pub fn parse(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Parse(format!("bad size {s:?}")))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(Error::Parse(format!("bad size suffix in {s:?}"))),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| Error::Parse(format!("size {s:?} too large")))
}

/// A byte count for people: `0 B`, `512 B`, `4 KiB`, `1.5 MiB`, `128 MiB`.
pub fn human(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if n >= unit {
            return if n % unit == 0 {
                format!("{} {name}", n / unit)
            } else {
                format!("{:.1} {name}", n as f64 / unit as f64)
            };
        }
    }
    format!("{n} B")
}

/// A byte limit for people: 0 means none.
pub fn limit(n: u64) -> String {
    if n == 0 {
        "no limit".to_string()
    } else {
        human(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_suffixed() {
        assert_eq!(parse("4096").unwrap(), 4096);
        assert_eq!(parse("64K").unwrap(), 65536);
        assert_eq!(parse("1M").unwrap(), 1 << 20);
        assert_eq!(parse("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse("2g").unwrap(), 2 << 30);
        assert_eq!(parse(" 1 KiB ").unwrap(), 1024);
    }

    #[test]
    fn rejects_junk_and_overflow() {
        assert!(parse("").is_err());
        assert!(parse("M").is_err());
        assert!(parse("1T").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("99999999999999999999G").is_err());
        assert!(parse("18446744073709551615G").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(512), "512 B");
        assert_eq!(human(4096), "4 KiB");
        assert_eq!(human(1 << 20), "1 MiB");
        assert_eq!(human(3 << 19), "1.5 MiB");
        assert_eq!(human(128 << 20), "128 MiB");
    }

    #[test]
    fn limits() {
        assert_eq!(limit(0), "no limit");
        assert_eq!(limit(8 << 20), "8 MiB");
    }
}
