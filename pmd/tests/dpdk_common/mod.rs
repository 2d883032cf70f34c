//! Helpers shared by the DPDK integration tests: EAL arguments with a
//! per-process file prefix (and its runtime directory removed afterwards),
//! scratch directories and a tiny pcap reader/writer.

// Each test binary uses some of these (re-exports included).
#![allow(dead_code, unused_imports)]

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

pub use testkit::pcap::write as write_pcap;
pub use testkit::ScratchDir;

/// Reads a pcap net_pcap wrote: whole records, none cut by the snap
/// length; panics on anything else.
pub fn read_pcap(path: &Path) -> testkit::pcap::Pcap {
    let pcap = testkit::pcap::read(path);
    assert_eq!(pcap.trailing, 0, "truncated record");
    for f in &pcap.frames {
        assert_eq!(f.data.len(), f.orig_len, "frame was cut by the snap length");
    }
    pcap
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
