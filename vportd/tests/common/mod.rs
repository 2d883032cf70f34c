//! Shared helpers for the daemon's integration tests: pcap files, unique
//! DPDK file prefixes, running the vportd binary.
// Each test binary uses some of these (re-exports included).
#![allow(dead_code, unused_imports)]

pub mod netns;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const VPORTD: &str = env!("CARGO_BIN_EXE_vportd");

/// Polls `cond` every 50 ms for up to `secs` seconds.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// EAL arguments that work without hugepages or NICs, with a prefix unique
/// to this process and call.
pub fn eal(prefix: &str, vdevs: &[String]) -> String {
    let mut s = format!(
        "-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry --file-prefix={prefix}"
    );
    for v in vdevs {
        s.push_str(" --vdev=");
        s.push_str(v);
    }
    s
}

/// A unique DPDK file prefix; removes its runtime directory on drop.
pub struct Prefix(pub String);

impl Prefix {
    pub fn new(tag: &str) -> Prefix {
        static N: AtomicU32 = AtomicU32::new(0);
        Prefix(format!(
            "vpt{}{}{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

pub use testkit::pcap::{read_frames as read_pcap, write as write_pcap};
pub use testkit::ScratchDir as TempDir;

/// A minimum-size IPv4/UDP frame of flow `i`.
pub fn udp_frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&(0x0a00_0001 + i).to_be_bytes());
    f[30..34].copy_from_slice(&0xc0a8_0001u32.to_be_bytes());
    f[34..36].copy_from_slice(&(1024 + (i % 60000) as u16).to_be_bytes());
    f[36..38].copy_from_slice(&5001u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}

/// Runs vportd to completion with a time limit.
pub fn run_vportd(args: &[String], timeout_s: u64) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("-k")
        .arg("5")
        .arg(timeout_s.to_string())
        .arg(VPORTD)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    cmd.output().expect("running vportd")
}
