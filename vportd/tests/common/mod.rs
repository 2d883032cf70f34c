//! Shared helpers for the daemon's integration tests: pcap files, unique
//! DPDK file prefixes, running the vportd binary.
#![allow(dead_code)]

pub mod netns;

use std::path::{Path, PathBuf};
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

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "vportd-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a classic (microsecond) pcap.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

/// Reads the frames of a pcap (micro- or nanosecond, either byte order).
/// A missing file reads as no frames.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    if data.len() < 24 {
        return Vec::new();
    }
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let rd = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = rd(&data[off + 8..off + 12]) as usize;
        off += 16;
        if off + incl > data.len() {
            break;
        }
        frames.push(data[off..off + incl].to_vec());
        off += incl;
    }
    frames
}

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
