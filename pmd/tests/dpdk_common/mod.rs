//! Helpers shared by the DPDK integration tests: EAL arguments with a
//! per-process file prefix (and its runtime directory removed afterwards),
//! scratch directories and a tiny pcap reader/writer.

#![allow(dead_code)]

use pmd::dpdk::{DpdkError, Eal};
use std::path::{Path, PathBuf};

/// EAL arguments that work without hugepages or NICs; `name` makes the
/// file prefix unique per test binary and process.
pub fn eal_args(name: &str, extra: &str) -> (String, String) {
    let prefix = format!("vportd-test-{name}-{}", std::process::id());
    let args = format!(
        "-l 0-1 --no-huge -m 512 --no-pci --no-shconf --no-telemetry --log-level=*:notice --file-prefix={prefix} {extra}"
    );
    (args, prefix)
}

/// The EAL runtime directory of a file prefix.
pub fn runtime_dir(prefix: &str) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let base = if unsafe { libc::geteuid() } == 0 {
        PathBuf::from("/var/run/dpdk")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(|dir| PathBuf::from(dir).join("dpdk"))
            .unwrap_or_else(|| PathBuf::from("/tmp/dpdk"))
    };
    base.join(prefix)
}

/// An initialised EAL whose runtime directory is removed on drop (also
/// when a test panics).
pub struct TestEal {
    pub eal: Option<Eal>,
    pub prefix: String,
}

impl TestEal {
    /// Initialises the EAL for test `name` with extra arguments (`--vdev`s).
    pub fn init(name: &str, extra: &str) -> TestEal {
        let (args, prefix) = eal_args(name, extra);
        let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL init failed: {e}"));
        TestEal {
            eal: Some(eal),
            prefix,
        }
    }

    /// Runs `rte_eal_cleanup` (every pool and port must be gone).
    pub fn cleanup(mut self) -> Result<(), DpdkError> {
        self.eal.take().expect("EAL present").cleanup()
    }
}

impl Drop for TestEal {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(runtime_dir(&self.prefix));
    }
}

/// A scratch directory removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("vportd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        ScratchDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a classic little-endian microsecond pcap of Ethernet frames.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (index, frame) in frames.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + index as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// A parsed pcap file.
#[derive(Debug)]
pub struct Pcap {
    /// Timestamps in nanoseconds (magic 0xa1b23c4d) rather than µs.
    pub nanosecond: bool,
    pub snaplen: u32,
    pub linktype: u32,
    pub frames: Vec<Vec<u8>>,
}

/// Reads a little-endian pcap (µs or ns); panics on a malformed file.
pub fn read_pcap(path: &Path) -> Pcap {
    let bytes = std::fs::read(path).expect("read pcap");
    assert!(bytes.len() >= 24, "pcap shorter than its header");
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let nanosecond = match u32_at(0) {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        magic => panic!("not a little-endian pcap: magic {magic:#x}"),
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        assert!(at + 16 <= bytes.len(), "truncated record header");
        let captured = u32_at(at + 8) as usize;
        let original = u32_at(at + 12) as usize;
        assert_eq!(captured, original, "frame was cut by the snap length");
        at += 16;
        assert!(at + captured <= bytes.len(), "truncated record");
        frames.push(bytes[at..at + captured].to_vec());
        at += captured;
    }
    Pcap {
        nanosecond,
        snaplen: u32_at(16),
        linktype: u32_at(20),
        frames,
    }
}

/// An Ethernet/IPv4/UDP frame with `payload_len` payload bytes patterned by
/// `seed`.
pub fn udp_frame(seed: u8, payload_len: usize) -> Vec<u8> {
    let builder =
        etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, seed], [0x02, 0, 0, 0, 1, seed])
            .ipv4([10, 0, 0, seed], [10, 0, 1, seed], 64)
            .udp(1000 + u16::from(seed), 2000);
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| (i as u8).wrapping_mul(seed))
        .collect();
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, &payload).expect("build frame");
    frame
}
