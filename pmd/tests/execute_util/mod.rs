//! Helpers shared by the `execute_*` tests: a recording [`ExecContext`],
//! a packet type that counts (and can refuse) clones, packet builders, and
//! from-scratch checksum computations to check the executor's incremental
//! updates against.
// Each test binary uses some of these (re-exports included).
#![allow(dead_code, unused_imports)]

use flowcache::actions::{DropReason, UserCookie};
use flowcache::extract::{extract, Offsets, PacketMeta};
use flowcache::key::FlowKey;
use pmd::execute::ExecContext;
use pmd::{Packet, VecPacket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

// ---------------------------------------------------------------------------
// Recording context.

#[derive(Default)]
pub struct Rec {
    pub outputs: Vec<(u32, Vec<u8>)>,
    pub recircs: Vec<(Vec<u8>, PacketMeta)>,
    pub upcalls: Vec<(UserCookie, Vec<u8>, PacketMeta)>,
    pub drops: Vec<DropReason>,
    /// Values `random_u32` returns, in order (then 0).
    pub randoms: Vec<u32>,
}

impl Rec {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn out_frames(&self) -> Vec<Vec<u8>> {
        self.outputs.iter().map(|(_, f)| f.clone()).collect()
    }
    pub fn ports(&self) -> Vec<u32> {
        self.outputs.iter().map(|(p, _)| *p).collect()
    }
}

impl<P: Packet> ExecContext<P> for Rec {
    fn output(&mut self, port: u32, pkt: P) {
        self.outputs.push((port, pkt.data().to_vec()));
    }
    fn recirculate(&mut self, pkt: P, meta: PacketMeta) {
        self.recircs.push((pkt.data().to_vec(), meta));
    }
    fn userspace(&mut self, cookie: UserCookie, pkt: P, meta: &PacketMeta) {
        self.upcalls.push((cookie, pkt.data().to_vec(), *meta));
    }
    fn count_drop(&mut self, reason: DropReason) {
        self.drops.push(reason);
    }
    fn random_u32(&mut self) -> u32 {
        if self.randoms.is_empty() {
            0
        } else {
            self.randoms.remove(0)
        }
    }
}

// ---------------------------------------------------------------------------
// A packet that counts its clones and can run out of buffers.

pub struct ClonePool {
    pub clones: AtomicUsize,
    /// Clones allowed before `try_clone` fails.
    pub budget: AtomicUsize,
}

impl ClonePool {
    pub fn new(budget: usize) -> Arc<Self> {
        Arc::new(ClonePool {
            clones: AtomicUsize::new(0),
            budget: AtomicUsize::new(budget),
        })
    }
    pub fn clones(&self) -> usize {
        self.clones.load(Ordering::SeqCst)
    }
}

pub struct CountingPacket {
    pub inner: VecPacket,
    pub pool: Arc<ClonePool>,
    pub rss: Option<u32>,
}

impl CountingPacket {
    pub fn new(frame: &[u8], pool: &Arc<ClonePool>) -> Self {
        CountingPacket {
            inner: VecPacket::new(frame),
            pool: pool.clone(),
            rss: None,
        }
    }
}

impl Packet for CountingPacket {
    fn data(&self) -> &[u8] {
        self.inner.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.inner.data_mut()
    }
    fn push_front(&mut self, n: usize) -> bool {
        self.inner.push_front(n)
    }
    fn pull_front(&mut self, n: usize) -> bool {
        self.inner.pull_front(n)
    }
    fn truncate(&mut self, len: usize) {
        self.inner.truncate(len)
    }
    fn try_clone(&self) -> Option<Self> {
        let left = self.pool.budget.load(Ordering::SeqCst);
        if left == 0 {
            return None;
        }
        self.pool.budget.store(left - 1, Ordering::SeqCst);
        self.pool.clones.fetch_add(1, Ordering::SeqCst);
        Some(CountingPacket {
            inner: self.inner.clone(),
            pool: self.pool.clone(),
            rss: self.rss,
        })
    }
    fn rss_hash(&self) -> Option<u32> {
        self.rss
    }
}

/// A packet with no headroom at all (for push failures).
pub struct TightPacket(pub Vec<u8>);

impl Packet for TightPacket {
    fn data(&self) -> &[u8] {
        &self.0
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn push_front(&mut self, _n: usize) -> bool {
        false
    }
    fn pull_front(&mut self, n: usize) -> bool {
        if n > self.0.len() {
            return false;
        }
        self.0.drain(..n);
        true
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
    fn try_clone(&self) -> Option<Self> {
        Some(TightPacket(self.0.clone()))
    }
}

// ---------------------------------------------------------------------------
// Parsing helpers.

pub fn meta(in_port: u32) -> PacketMeta {
    PacketMeta {
        in_port,
        ..PacketMeta::default()
    }
}

/// Header offsets as the pipeline gets them.
pub fn offsets(frame: &[u8]) -> Offsets {
    let mut key = FlowKey::default();
    extract(frame, &meta(1), &mut key).expect("frame parses")
}

pub use testkit::hex::decode as hex;

pub use testkit::hex::encode as to_hex;

// ---------------------------------------------------------------------------
// From-scratch checksums (independent of the executor's code).

/// Ones-complement sum of big-endian words, fully folded.
pub fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        acc += u32::from(w);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The IPv4 header checksum of the header at `l3` (checksum field taken as 0).
pub fn ipv4_hdr_csum(f: &[u8], l3: usize) -> u16 {
    let ihl = usize::from(f[l3] & 0xf) * 4;
    let mut h = f[l3..l3 + ihl].to_vec();
    h[10] = 0;
    h[11] = 0;
    !fold(ones_sum(0, &h))
}

/// The L4 checksum (TCP/UDP/ICMPv6 style, with pseudo-header) of
/// `f[l4..l4+len]`, the checksum field at `l4 + csum_at` taken as 0.
pub fn l4_csum(f: &[u8], l3: usize, l4: usize, len: usize, proto: u8, csum_at: usize) -> u16 {
    let mut acc = 0u32;
    if f[l3] >> 4 == 4 {
        acc = ones_sum(acc, &f[l3 + 12..l3 + 20]);
    } else {
        acc = ones_sum(acc, &f[l3 + 8..l3 + 40]);
    }
    acc = ones_sum(acc, &[0, proto]);
    acc = ones_sum(acc, &(len as u16).to_be_bytes());
    let mut body = f[l4..l4 + len].to_vec();
    body[csum_at] = 0;
    body[csum_at + 1] = 0;
    acc = ones_sum(acc, &body);
    !fold(acc)
}

/// ICMPv4 checksum (no pseudo-header) of `f[l4..l4+len]`.
pub fn icmp4_csum(f: &[u8], l4: usize, len: usize) -> u16 {
    let mut body = f[l4..l4 + len].to_vec();
    body[2] = 0;
    body[3] = 0;
    !fold(ones_sum(0, &body))
}

/// Ones-complement difference `a - b` (how far a stored checksum is off).
pub fn csum_delta(stored: u16, correct: u16) -> u16 {
    fold(u32::from(stored) + u32::from(!correct))
}

/// True when two checksums are the same ones-complement value (0 == 0xffff).
pub fn csum_eq(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

pub fn be16(f: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([f[off], f[off + 1]])
}

pub fn put16(f: &mut [u8], off: usize, v: u16) {
    f[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Bitwise CRC32c, as stored in an SCTP header (little-endian bytes).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The correct SCTP checksum field bytes for `f[l4..l4+len]`.
pub fn sctp_csum(f: &[u8], l4: usize, len: usize) -> [u8; 4] {
    let mut body = f[l4..l4 + len].to_vec();
    body[8..12].fill(0);
    crc32c(&body).to_le_bytes()
}

// ---------------------------------------------------------------------------
// Packet builders (checksums right unless changed afterwards).

pub const MAC_A: [u8; 6] = [0, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [0, 0, 0, 0, 0, 2];

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header plus `l4` (header checksum right). `frag` is the
/// flags/offset word.
pub fn ipv4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    tos: u8,
    ttl: u8,
    frag: u16,
    l4: &[u8],
) -> Vec<u8> {
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = ipv4_hdr_csum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(l4);
    h
}

/// An IPv6 header (no extension headers unless in `payload`).
pub fn ipv6(
    next: u8,
    src: [u8; 16],
    dst: [u8; 16],
    tclass: u8,
    label: u32,
    hlim: u8,
    payload: &[u8],
) -> Vec<u8> {
    let w = (6u32 << 28) | (u32::from(tclass) << 20) | (label & 0xfffff);
    let mut h = w.to_be_bytes().to_vec();
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hlim);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

pub fn udp_hdr(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub fn tcp_hdr(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0x00, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

pub const IP_A: [u8; 4] = [10, 0, 0, 1];
pub const IP_B: [u8; 4] = [10, 0, 0, 2];
pub const IP6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const IP6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// Eth + IPv4 + UDP with a correct UDP checksum.
pub fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ip = ipv4(17, IP_A, IP_B, 0, 64, 0, &udp_hdr(sport, dport, payload));
    let mut f = eth(MAC_B, MAC_A, 0x0800, &ip);
    fix_l4_csum(&mut f);
    f
}

/// Eth + IPv4 + TCP with a correct TCP checksum.
pub fn tcp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ip = ipv4(6, IP_A, IP_B, 0, 64, 0, &tcp_hdr(sport, dport, payload));
    let mut f = eth(MAC_B, MAC_A, 0x0800, &ip);
    fix_l4_csum(&mut f);
    f
}

/// Eth + IPv6 + UDP/TCP/ICMPv6 with a correct checksum.
pub fn l4_6(next: u8, l4: &[u8]) -> Vec<u8> {
    let ip = ipv6(next, IP6_A, IP6_B, 0, 0x12345, 64, l4);
    let mut f = eth(MAC_B, MAC_A, 0x86dd, &ip);
    fix_l4_csum(&mut f);
    f
}

/// Where the checksum of protocol `proto` sits in its header.
pub fn csum_at(proto: u8) -> usize {
    match proto {
        6 => 16,
        17 => 6,
        _ => 2,
    }
}

/// Sets the L4 checksum of a simple (no extension header) IPv4/IPv6 frame
/// to its correct value.
pub fn fix_l4_csum(f: &mut [u8]) {
    let o = offsets(f);
    let (l3, l4) = (o.l3 as usize, o.l4 as usize);
    let (proto, end) = if f[l3] >> 4 == 4 {
        (f[l3 + 9], l3 + be16(f, l3 + 2) as usize)
    } else {
        (f[l3 + 6], l3 + 40 + be16(f, l3 + 4) as usize)
    };
    let at = csum_at(proto);
    let c = if proto == 1 {
        icmp4_csum(f, l4, end - l4)
    } else {
        l4_csum(f, l3, l4, end - l4, proto, at)
    };
    put16(f, l4 + at, c);
}

/// Checks the L4 checksum of a simple frame from scratch: returns
/// (stored, correct).
pub fn l4_check(f: &[u8]) -> (u16, u16) {
    let o = offsets(f);
    let (l3, l4) = (o.l3 as usize, o.l4 as usize);
    let (proto, end) = if f[l3] >> 4 == 4 {
        (f[l3 + 9], l3 + be16(f, l3 + 2) as usize)
    } else {
        (f[l3 + 6], l3 + 40 + be16(f, l3 + 4) as usize)
    };
    let at = csum_at(proto);
    let correct = if proto == 1 {
        icmp4_csum(f, l4, end - l4)
    } else {
        l4_csum(f, l3, l4, end - l4, proto, at)
    };
    (be16(f, l4 + at), correct)
}
