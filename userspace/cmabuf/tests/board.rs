// SPDX-License-Identifier: GPL-2.0
//! Integration tests against a real `/dev/cmabuf0` (or `$CMABUF_DEV`).
//!
//! They need the device, so they are `#[ignore]`d on a development host;
//! the board runs them with `--ignored` (tools/testing/selftests/cmabuf/
//! cmabuf_rust.sh), where a missing device is a failure.

use cmabuf::{Access, Device, Mode};
use nix::errno::Errno;

fn dev() -> Device {
    let path = std::env::var("CMABUF_DEV").unwrap_or_else(|_| "/dev/cmabuf0".into());
    Device::open(&path).expect("open the cmabuf device")
}

#[test]
#[ignore = "needs /dev/cmabuf0: runs in the board"]
fn every_mode_round_trips() {
    let d = dev();
    for mode in [Mode::Coherent, Mode::WriteCombine, Mode::Cached] {
        let mut b = d.alloc(100_000).mode(mode).allocate().unwrap();
        assert_eq!(b.len(), 102_400);
        assert_eq!(b.mode(), mode);
        {
            let mut cpu = b.cpu_access(Access::ReadWrite).unwrap();
            assert!(
                cpu.as_slice().iter().all(|&x| x == 0),
                "{mode:?} not zeroed"
            );
            cpu.as_mut_slice().fill(0x5c);
        }
        assert!(b.as_slice().iter().all(|&x| x == 0x5c));
        let info = b.info().unwrap();
        assert_eq!(info.mode, Some(mode));
        assert_eq!(info.map_count, 1);
        assert_eq!(info.size, 102_400);
    }
}

#[test]
#[ignore = "needs /dev/cmabuf0: runs in the board"]
fn drop_unmaps_and_frees() {
    let d = dev();
    let before = d.info().unwrap();
    let b = d.alloc(1 << 20).allocate().unwrap();
    let during = d.info().unwrap();
    assert_eq!(during.file_buffers, before.file_buffers + 1);
    assert_eq!(during.file_bytes, before.file_bytes + (1 << 20));
    drop(b);
    let after = d.info().unwrap();
    assert_eq!(after.file_buffers, before.file_buffers);
    assert_eq!(after.dev_bytes, before.dev_bytes);
}

#[test]
#[ignore = "needs /dev/cmabuf0: runs in the board"]
fn errors_carry_errno() {
    let d = dev();
    let e = d.alloc(0).allocate().unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    let region = d.info().unwrap().region_size;
    let e = d.alloc(region + 4096).allocate().unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    let e = Device::open("/dev/cmabuf-does-not-exist").unwrap_err();
    assert_eq!(e.errno(), Some(Errno::ENOENT));
}

#[test]
#[ignore = "needs /dev/cmabuf0: runs in the board"]
fn unmapped_buffer_and_late_map() {
    let d = dev();
    let mut b = d.alloc(8192).map(false).allocate().unwrap();
    assert!(!b.is_mapped());
    assert_eq!(b.info().unwrap().map_count, 0);
    b.map().unwrap();
    assert_eq!(b.info().unwrap().map_count, 1);
    b.as_mut_slice()[8191] = 1;
    assert_eq!(b.as_slice()[8191], 1);
}

#[test]
#[ignore = "needs /dev/cmabuf0: runs in the board"]
fn handles_are_distinct_and_per_device() {
    let d = dev();
    let a = d.alloc(4096).allocate().unwrap();
    let b = d.alloc(4096).allocate().unwrap();
    assert_ne!(a.handle(), b.handle());
    assert_ne!(a.mmap_offset(), b.mmap_offset());
    if let (Some(x), Some(y)) = (a.dma_addr(), b.dma_addr()) {
        assert_ne!(x, y);
    }
}
