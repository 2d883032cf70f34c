//! Packet capture (`vportctl capture PORT FILE`): the PMDs mirror what a
//! port receives and sends into a bounded queue, a writer thread turns it
//! into a classic libpcap file.
//!
//! * [`PcapWriter`]: the file format (magic `0xa1b2c3d4`, version 2.4,
//!   microsecond timestamps, snaplen 65535, linktype 1 = Ethernet).
//! * [`CaptureTap`]: what a PMD holds while a port is captured. The PMD
//!   checks for a tap once per rx burst and once per tx flush, so a port
//!   that is not captured costs one predictable branch per burst; a
//!   captured packet is copied and offered to the queue without blocking
//!   (a full queue counts the packet as lost).
//! * The capture sessions themselves (start, stop, the writer thread) live
//!   in [`crate::datapath::Datapath`].

use crate::packet::Packet;
use crossbeam_channel::{Receiver, Sender};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Classic libpcap magic (microsecond timestamps), written in native order.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// Longest frame part written per packet.
pub const SNAPLEN: u32 = 65535;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Mirrored packets that may wait for the writer thread (per capture).
pub const CAPTURE_QUEUE: usize = 8192;

/// Writes a classic libpcap file: the 24-byte header at creation, then one
/// record per packet.
pub struct PcapWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC.to_ne_bytes());
        h[4..6].copy_from_slice(&2u16.to_ne_bytes());
        h[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone (0) and sigfigs (0) stay zero.
        h[16..20].copy_from_slice(&SNAPLEN.to_ne_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, records: 0 })
    }

    /// Writes one record: `ts` since the Unix epoch, the frame's length on
    /// the wire and its (possibly truncated) bytes. Bytes beyond
    /// [`SNAPLEN`] are not written.
    pub fn write_packet(&mut self, ts: Duration, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let data = &data[..data.len().min(SNAPLEN as usize)];
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(ts.as_secs() as u32).to_ne_bytes());
        h[4..8].copy_from_slice(&ts.subsec_micros().to_ne_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        h[12..16].copy_from_slice(&orig_len.max(data.len() as u32).to_ne_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Which way a captured packet went through the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureDir {
    /// Received on the port (mirrored after the rx burst, before
    /// processing).
    Rx,
    /// Sent on the port (mirrored before the tx burst).
    Tx,
}

/// A mirrored packet: a copy of its bytes (at most [`SNAPLEN`]).
#[derive(Clone, Debug)]
pub struct CapturedPacket {
    /// Since the Unix epoch (one timestamp per burst).
    pub ts: Duration,
    pub dir: CaptureDir,
    /// Length of the frame (`data` may be shorter).
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// What a PMD holds for a captured port: the queue to the writer thread.
/// Shared by every PMD (each of them may poll or send on the port).
pub struct CaptureTap {
    port: u32,
    tx: Sender<CapturedPacket>,
    /// Set by the writer once it wants nothing more (count reached or
    /// stopped): the PMDs stop copying before they get the stop command.
    closed: AtomicBool,
    lost: AtomicU64,
}

impl CaptureTap {
    /// A tap on `port` with a queue of `capacity` packets, and the queue's
    /// receiving end.
    pub fn new(port: u32, capacity: usize) -> (Arc<CaptureTap>, Receiver<CapturedPacket>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        (
            Arc::new(CaptureTap {
                port,
                tx,
                closed: AtomicBool::new(false),
                lost: AtomicU64::new(0),
            }),
            rx,
        )
    }

    /// The OpenFlow port number captured.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Copies `pkts` into the queue without blocking; packets that do not
    /// fit are counted as lost. Called once per burst, only on captured
    /// ports.
    #[inline(never)]
    pub fn mirror<P: Packet>(&self, pkts: &[P], dir: CaptureDir) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut lost = 0u64;
        for p in pkts {
            if self.tx.is_full() {
                lost += 1;
                continue;
            }
            let d = p.data();
            let cp = CapturedPacket {
                ts,
                dir,
                orig_len: d.len() as u32,
                data: d[..d.len().min(SNAPLEN as usize)].to_vec(),
            };
            if self.tx.try_send(cp).is_err() {
                lost += 1;
            }
        }
        if lost > 0 {
            self.lost.fetch_add(lost, Ordering::Relaxed);
        }
    }

    /// Packets dropped because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Tells the PMDs to stop copying (they also get a stop command).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// Why a capture could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("port {port} is already being captured to {} (stop it first: capture-stop)", path.display())]
    Busy { port: u32, path: PathBuf },
    #[error("{} is the file of the capture of port {port}", path.display())]
    FileInUse { port: u32, path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("the packet count must be at least 1")]
    ZeroCount,
    #[error("no capture is running on port {0}")]
    NotRunning(u32),
    #[error("cannot start the capture writer thread: {0}")]
    Spawn(io::Error),
}

/// The state of a capture, as `capture-show` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureInfo {
    /// OpenFlow port number.
    pub port: u32,
    pub path: PathBuf,
    /// Stop after this many packets (`None`: until stopped).
    pub limit: Option<u64>,
    /// Since the capture started.
    pub duration: Duration,
    /// Packets written, received and sent.
    pub written_rx: u64,
    pub written_tx: u64,
    /// Packets lost because the queue to the writer was full.
    pub lost: u64,
    /// Why the writer gave up, if it did (a write error).
    pub error: Option<String>,
}

impl CaptureInfo {
    /// Packets written to the file.
    pub fn written(&self) -> u64 {
        self.written_rx + self.written_tx
    }
}

/// Shared between a capture's writer thread and whoever asks about it.
pub(crate) struct CaptureStatus {
    pub port: u32,
    pub path: PathBuf,
    pub limit: Option<u64>,
    pub started: std::time::Instant,
    pub written_rx: AtomicU64,
    pub written_tx: AtomicU64,
    pub error: parking_lot::Mutex<Option<String>>,
    pub tap: Arc<CaptureTap>,
}

impl CaptureStatus {
    pub fn info(&self) -> CaptureInfo {
        CaptureInfo {
            port: self.port,
            path: self.path.clone(),
            limit: self.limit,
            duration: self.started.elapsed(),
            written_rx: self.written_rx.load(Ordering::Relaxed),
            written_tx: self.written_tx.load(Ordering::Relaxed),
            lost: self.tap.lost(),
            error: self.error.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::VecPacket;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn pcap_header_and_records() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let f1 = vec![0xaau8; 60];
        let f2: Vec<u8> = (0..100u8).collect();
        w.write_packet(Duration::new(1_700_000_000, 123_456_789), 60, &f1)
            .unwrap();
        w.write_packet(Duration::new(5, 1_000), 100, &f2).unwrap();
        assert_eq!(w.records(), 2);
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + 60 + 16 + 100);
        // Header: magic, 2.4, zone 0, sigfigs 0, snaplen, Ethernet.
        assert_eq!(u32_at(&b, 0), 0xa1b2_c3d4);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 4);
        assert_eq!(u32_at(&b, 8), 0);
        assert_eq!(u32_at(&b, 12), 0);
        assert_eq!(u32_at(&b, 16), 65535);
        assert_eq!(u32_at(&b, 20), 1);
        // Record 1: seconds, microseconds, incl_len, orig_len, bytes.
        assert_eq!(u32_at(&b, 24), 1_700_000_000);
        assert_eq!(u32_at(&b, 28), 123_456);
        assert_eq!(u32_at(&b, 32), 60);
        assert_eq!(u32_at(&b, 36), 60);
        assert_eq!(&b[40..100], &f1[..]);
        // Record 2.
        assert_eq!(u32_at(&b, 100), 5);
        assert_eq!(u32_at(&b, 104), 1);
        assert_eq!(u32_at(&b, 108), 100);
        assert_eq!(u32_at(&b, 112), 100);
        assert_eq!(&b[116..], &f2[..]);
    }

    #[test]
    fn pcap_truncates_to_snaplen() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let big = vec![1u8; SNAPLEN as usize + 10];
        w.write_packet(Duration::ZERO, big.len() as u32, &big)
            .unwrap();
        let b = w.into_inner();
        assert_eq!(u32_at(&b, 32), SNAPLEN);
        assert_eq!(u32_at(&b, 36), SNAPLEN + 10);
        assert_eq!(b.len(), 24 + 16 + SNAPLEN as usize);
    }

    #[test]
    fn tap_counts_overflow_and_stops_when_closed() {
        let (tap, rx) = CaptureTap::new(3, 4);
        let pkts: Vec<VecPacket> = (0..6u8).map(|i| VecPacket::new(&[i; 20])).collect();
        tap.mirror(&pkts, CaptureDir::Rx);
        assert_eq!(tap.lost(), 2);
        let got: Vec<CapturedPacket> = rx.try_iter().collect();
        assert_eq!(got.len(), 4);
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.data, vec![i as u8; 20]);
            assert_eq!(p.orig_len, 20);
            assert_eq!(p.dir, CaptureDir::Rx);
        }
        tap.close();
        tap.mirror(&pkts, CaptureDir::Tx);
        assert!(rx.try_recv().is_err());
        assert_eq!(tap.lost(), 2);
    }
}
