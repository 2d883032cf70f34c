//! Native tunnelling's wire formats: the outer headers a `tnl_push` writes
//! (built once per megaflow, see [`TnlPush`]) and the checks a `tnl_pop`
//! makes before stripping them ([`parse_outer`]), as OVS's
//! `lib/netdev-native-tnl.c` does.
//!
//! Supported: outer Ethernet (untagged) + IPv4 + UDP + VXLAN (RFC 7348),
//! UDP + Geneve (RFC 8926, options carried but not interpreted), and GRE
//! (RFC 2784/2890, with or without key and checksum) carrying Ethernet.

use crate::extract::TunMeta;
use crate::text::{ipv4, mac};

/// `tun_flags` bits (OVS `FLOW_TNL_F_*`).
pub const TNL_F_OAM: u16 = 1 << 0;
pub const TNL_F_DONT_FRAGMENT: u16 = 1 << 1;
pub const TNL_F_CSUM: u16 = 1 << 2;
pub const TNL_F_KEY: u16 = 1 << 3;

/// IANA UDP ports.
pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
/// IP protocol of GRE.
pub const IPPROTO_GRE: u8 = 47;
/// GRE protocol type of Ethernet frames (transparent Ethernet bridging).
pub const GRE_PROTO_TEB: u16 = 0x6558;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
const VXLAN_LEN: usize = 8;
const GENEVE_LEN: usize = 8;
/// VXLAN flags word with the "VNI valid" bit (the only one allowed).
const VXLAN_FLAGS: u32 = 0x0800_0000;
/// GRE flag bits (first 16 bits of the header).
const GRE_CSUM: u16 = 0x8000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQ: u16 = 0x1000;
const GRE_VERSION: u16 = 0x0007;
/// Geneve's "OAM" and "critical options present" bits (byte 1).
const GENEVE_OAM: u8 = 0x80;
const GENEVE_CRIT: u8 = 0x40;

/// Largest outer header a push writes: Ethernet, IPv4, UDP and VXLAN or
/// Geneve without options (GRE with checksum and key is shorter).
pub const MAX_HEADER: usize = ETH_LEN + IPV4_LEN + UDP_LEN + VXLAN_LEN;

/// The tunnel protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Vxlan,
    Geneve,
    Gre,
}

impl TunnelKind {
    /// The name in `--port NAME=KIND,...` and in `show`.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
        }
    }

    /// Parses a port type name.
    pub fn from_name(s: &str) -> Option<TunnelKind> {
        match s {
            "vxlan" => Some(TunnelKind::Vxlan),
            "geneve" => Some(TunnelKind::Geneve),
            "gre" => Some(TunnelKind::Gre),
            _ => None,
        }
    }

    /// The default UDP destination port (0 for GRE, which has none).
    pub fn default_port(self) -> u16 {
        match self {
            TunnelKind::Vxlan => VXLAN_PORT,
            TunnelKind::Geneve => GENEVE_PORT,
            TunnelKind::Gre => 0,
        }
    }

    /// OVS `OVS_VPORT_TYPE_*` (the `type=` of a `tnl_push` header).
    fn vport_type(self) -> u8 {
        match self {
            TunnelKind::Gre => 3,
            TunnelKind::Vxlan => 4,
            TunnelKind::Geneve => 6,
        }
    }
}

/// What a push needs to know to build the outer headers (resolved by the
/// slow path from the tunnel port, the route and the neighbour tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TnlHeaderSpec {
    pub kind: TunnelKind,
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub ip_src: u32,
    pub ip_dst: u32,
    pub tos: u8,
    pub ttl: u8,
    pub df: bool,
    /// UDP destination port (VXLAN, Geneve).
    pub dst_port: u16,
    /// VNI (24 bits) or GRE key (32 bits); `None`: GRE without key.
    pub key: Option<u64>,
    /// UDP checksum (VXLAN/Geneve) or GRE checksum.
    pub csum: bool,
}

/// A prebuilt `tnl_push`: the outer headers with everything but the
/// lengths, the IPv4 checksum, the UDP source port and checksum filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TnlPush {
    /// The tunnel port (OVS `tnl_port(N)`).
    pub tnl_port: u32,
    /// The underlay port the packet leaves by.
    pub out_port: u32,
    pub kind: TunnelKind,
    header: [u8; MAX_HEADER],
    len: u8,
    csum: bool,
    /// Ones'-complement sum of the IPv4 header with length and checksum 0.
    ip_sum: u32,
}

impl TnlPush {
    /// Builds the header for `spec`.
    pub fn new(tnl_port: u32, out_port: u32, spec: &TnlHeaderSpec) -> TnlPush {
        let mut h = [0u8; MAX_HEADER];
        h[0..6].copy_from_slice(&spec.eth_dst);
        h[6..12].copy_from_slice(&spec.eth_src);
        h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut h[ETH_LEN..ETH_LEN + IPV4_LEN];
        ip[0] = 0x45;
        ip[1] = spec.tos;
        if spec.df {
            ip[6] = 0x40;
        }
        ip[8] = spec.ttl;
        ip[9] = if spec.kind == TunnelKind::Gre {
            IPPROTO_GRE
        } else {
            crate::key::IPPROTO_UDP
        };
        ip[12..16].copy_from_slice(&spec.ip_src.to_be_bytes());
        ip[16..20].copy_from_slice(&spec.ip_dst.to_be_bytes());
        let ip_sum = sum_be16(ip);
        let l4 = ETH_LEN + IPV4_LEN;
        let len = match spec.kind {
            TunnelKind::Vxlan | TunnelKind::Geneve => {
                h[l4 + 2..l4 + 4].copy_from_slice(&spec.dst_port.to_be_bytes());
                let t = l4 + UDP_LEN;
                let vni = (spec.key.unwrap_or(0) as u32 & 0x00ff_ffff) << 8;
                if spec.kind == TunnelKind::Vxlan {
                    h[t..t + 4].copy_from_slice(&VXLAN_FLAGS.to_be_bytes());
                } else {
                    // Version 0, no options; protocol Ethernet.
                    h[t + 2..t + 4].copy_from_slice(&GRE_PROTO_TEB.to_be_bytes());
                }
                h[t + 4..t + 8].copy_from_slice(&vni.to_be_bytes());
                t + 8
            }
            TunnelKind::Gre => {
                let mut flags = 0u16;
                let mut at = l4 + 4;
                if spec.csum {
                    flags |= GRE_CSUM;
                    at += 4;
                }
                if let Some(k) = spec.key {
                    flags |= GRE_KEY;
                    h[at..at + 4].copy_from_slice(&(k as u32).to_be_bytes());
                    at += 4;
                }
                h[l4..l4 + 2].copy_from_slice(&flags.to_be_bytes());
                h[l4 + 2..l4 + 4].copy_from_slice(&GRE_PROTO_TEB.to_be_bytes());
                at
            }
        };
        TnlPush {
            tnl_port,
            out_port,
            kind: spec.kind,
            header: h,
            len: len as u8,
            csum: spec.csum,
            ip_sum,
        }
    }

    /// The outer headers (as written before the per-packet fields).
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.len)]
    }

    /// Writes the outer headers into `frame[..header().len()]`, the inner
    /// frame being the rest of `frame`: lengths, the IPv4 checksum, the
    /// UDP source port `src_port` (ignored for GRE) and the checksum the
    /// port asks for.
    #[inline]
    pub fn write(&self, frame: &mut [u8], src_port: u16) {
        let hl = usize::from(self.len);
        frame[..hl].copy_from_slice(self.header());
        let ip_total = (frame.len() - ETH_LEN) as u16;
        let ip = ETH_LEN;
        frame[ip + 2..ip + 4].copy_from_slice(&ip_total.to_be_bytes());
        let csum = fold(self.ip_sum + u32::from(ip_total));
        frame[ip + 10..ip + 12].copy_from_slice(&(!csum).to_be_bytes());
        let l4 = ip + IPV4_LEN;
        match self.kind {
            TunnelKind::Vxlan | TunnelKind::Geneve => {
                let udp_len = ip_total - IPV4_LEN as u16;
                frame[l4..l4 + 2].copy_from_slice(&src_port.to_be_bytes());
                frame[l4 + 4..l4 + 6].copy_from_slice(&udp_len.to_be_bytes());
                if self.csum {
                    let sum = pseudo_sum(&frame[ip..], crate::key::IPPROTO_UDP, udp_len)
                        + sum_be16(&frame[l4..]);
                    let c = !fold(sum);
                    // 0 means "no checksum": send its other form.
                    let c = if c == 0 { 0xffff } else { c };
                    frame[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
                }
            }
            TunnelKind::Gre => {
                if self.csum {
                    let c = !fold(sum_be16(&frame[l4..]));
                    frame[l4 + 4..l4 + 6].copy_from_slice(&c.to_be_bytes());
                }
            }
        }
    }

    /// The UDP source port of a packet whose flow hash is `hash` (OVS
    /// `netdev_tnl_get_src_port`: the ephemeral range 32768..=61000).
    #[inline]
    pub fn src_port(hash: u32) -> u16 {
        const MIN: u32 = 32768;
        const MAX: u32 = 61000;
        ((((hash >> 16) * (MAX - MIN + 1)) >> 16) + MIN) as u16
    }
}

impl std::fmt::Display for TnlPush {
    /// OVS's `tnl_push(...)` text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.header();
        let be16 = |o: usize| u16::from_be_bytes([h[o], h[o + 1]]);
        let be32 = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let dst: [u8; 6] = h[0..6].try_into().expect("6 bytes");
        let src: [u8; 6] = h[6..12].try_into().expect("6 bytes");
        let ip = ETH_LEN;
        write!(
            f,
            "tnl_push(tnl_port({}),header(size={},type={},eth(dst={},src={},dl_type=0x0800),\
             ipv4(src={},dst={},proto={},tos={},ttl={},frag={:#x}),",
            self.tnl_port,
            h.len(),
            self.kind.vport_type(),
            mac(&dst),
            mac(&src),
            ipv4(be32(ip + 12)),
            ipv4(be32(ip + 16)),
            h[ip + 9],
            c_hex(h[ip + 1].into()),
            h[ip + 8],
            be16(ip + 6),
        )?;
        let l4 = ip + IPV4_LEN;
        match self.kind {
            TunnelKind::Vxlan | TunnelKind::Geneve => {
                write!(
                    f,
                    "udp(src=0,dst={},csum={:#x}),",
                    be16(l4 + 2),
                    if self.csum { 0xffff } else { 0 }
                )?;
                let t = l4 + UDP_LEN;
                if self.kind == TunnelKind::Vxlan {
                    write!(f, "vxlan(flags={:#x},vni={:#x})", be32(t), be32(t + 4) >> 8)?;
                } else {
                    write!(f, "geneve(vni={:#x})", be32(t + 4) >> 8)?;
                }
            }
            TunnelKind::Gre => {
                let flags = be16(l4);
                write!(f, "gre((flags={:#x},proto={:#x})", flags, be16(l4 + 2))?;
                let mut at = l4 + 4;
                if flags & GRE_CSUM != 0 {
                    write!(f, ",csum=0x0")?;
                    at += 4;
                }
                if flags & GRE_KEY != 0 {
                    write!(f, ",key={:#x}", be32(at))?;
                }
                write!(f, ")")?;
            }
        }
        write!(f, "),out_port({}))", self.out_port)
    }
}

/// C's `%#x`: no prefix for zero.
fn c_hex(v: u32) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// Why a `tnl_pop` refused a frame (each is a drop counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// Cut short, a fragment, or lengths that disagree with the frame.
    Truncated,
    /// The outer IPv4, UDP or GRE checksum is wrong.
    BadChecksum,
    /// The tunnel header is malformed or carries an unknown critical
    /// option.
    BadHeader,
}

impl From<PopError> for crate::actions::DropReason {
    fn from(e: PopError) -> Self {
        match e {
            PopError::Truncated => crate::actions::DropReason::TunnelTruncated,
            PopError::BadChecksum => crate::actions::DropReason::TunnelBadChecksum,
            PopError::BadHeader => crate::actions::DropReason::TunnelBadHeader,
        }
    }
}

/// A validated outer header: the tunnel metadata, the inner frame's
/// offset and its end (the outer IPv4 total length; L2 padding after it
/// is not part of the inner frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub tun: TunMeta,
    pub inner: usize,
    pub end: usize,
}

/// Checks the outer headers of a `kind` tunnel frame (OVS
/// `netdev_*_pop_header`): an IPv4 header with a right checksum, not a
/// fragment; UDP whose checksum, when not 0, is right (VXLAN, Geneve), or
/// GRE version 0 carrying Ethernet, its checksum right when present.
pub fn parse_outer(frame: &[u8], kind: TunnelKind) -> Result<Outer, PopError> {
    use PopError::*;
    if frame.len() < ETH_LEN + IPV4_LEN || frame[12..14] != [0x08, 0x00] {
        return Err(Truncated);
    }
    let ip = &frame[ETH_LEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < IPV4_LEN || total < ihl || total > ip.len() {
        return Err(Truncated);
    }
    if fold(sum_be16(&ip[..ihl])) != 0xffff {
        return Err(BadChecksum);
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if frag & 0x3fff != 0 {
        return Err(Truncated);
    }
    let mut tun = TunMeta {
        src: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
        dst: u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
        tos: ip[1],
        ttl: ip[8],
        flags: if frag & 0x4000 != 0 {
            TNL_F_DONT_FRAGMENT
        } else {
            0
        },
        ..TunMeta::default()
    };
    let ip = &ip[..total];
    let l4 = &ip[ihl..];
    let tnl_off = match kind {
        TunnelKind::Vxlan | TunnelKind::Geneve => {
            if l4.len() < UDP_LEN {
                return Err(Truncated);
            }
            let udp_len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if udp_len < UDP_LEN || udp_len > l4.len() {
                return Err(Truncated);
            }
            if l4[6..8] != [0, 0] {
                let sum = pseudo_sum(ip, crate::key::IPPROTO_UDP, udp_len as u16)
                    + sum_be16(&l4[..udp_len]);
                if fold(sum) != 0xffff {
                    return Err(BadChecksum);
                }
                tun.flags |= TNL_F_CSUM;
            }
            tun.tp_src = u16::from_be_bytes([l4[0], l4[1]]);
            tun.tp_dst = u16::from_be_bytes([l4[2], l4[3]]);
            let t = &l4[UDP_LEN..udp_len];
            match kind {
                TunnelKind::Vxlan => {
                    if t.len() < VXLAN_LEN {
                        return Err(Truncated);
                    }
                    let flags = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
                    let vni = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
                    if flags != VXLAN_FLAGS || vni & 0xff != 0 {
                        return Err(BadHeader);
                    }
                    tun.id = u64::from(vni >> 8);
                    tun.flags |= TNL_F_KEY;
                    UDP_LEN + VXLAN_LEN
                }
                _ => {
                    if t.len() < GENEVE_LEN {
                        return Err(Truncated);
                    }
                    let opt_len = usize::from(t[0] & 0x3f) * 4;
                    let proto = u16::from_be_bytes([t[2], t[3]]);
                    if t[0] >> 6 != 0 || proto != GRE_PROTO_TEB {
                        return Err(BadHeader);
                    }
                    if t.len() < GENEVE_LEN + opt_len {
                        return Err(Truncated);
                    }
                    // vportd interprets no option: a critical one cannot
                    // be processed (RFC 8926 §3.5.1).
                    if t[1] & GENEVE_CRIT != 0 {
                        return Err(BadHeader);
                    }
                    if t[1] & GENEVE_OAM != 0 {
                        tun.flags |= TNL_F_OAM;
                    }
                    tun.id = u64::from(u32::from_be_bytes([t[4], t[5], t[6], t[7]]) >> 8);
                    tun.flags |= TNL_F_KEY;
                    UDP_LEN + GENEVE_LEN + opt_len
                }
            }
        }
        TunnelKind::Gre => {
            if l4.len() < 4 {
                return Err(Truncated);
            }
            let flags = u16::from_be_bytes([l4[0], l4[1]]);
            let proto = u16::from_be_bytes([l4[2], l4[3]]);
            if flags & GRE_VERSION != 0 || proto != GRE_PROTO_TEB {
                return Err(BadHeader);
            }
            let mut at = 4;
            if flags & GRE_CSUM != 0 {
                if l4.len() < at + 4 {
                    return Err(Truncated);
                }
                if fold(sum_be16(l4)) != 0xffff {
                    return Err(BadChecksum);
                }
                tun.flags |= TNL_F_CSUM;
                at += 4;
            }
            if flags & GRE_KEY != 0 {
                if l4.len() < at + 4 {
                    return Err(Truncated);
                }
                tun.id = u64::from(u32::from_be_bytes([
                    l4[at],
                    l4[at + 1],
                    l4[at + 2],
                    l4[at + 3],
                ]));
                tun.flags |= TNL_F_KEY;
                at += 4;
            }
            if flags & GRE_SEQ != 0 {
                at += 4;
            }
            if l4.len() < at {
                return Err(Truncated);
            }
            at
        }
    };
    let inner = ETH_LEN + ihl + tnl_off;
    let end = ETH_LEN + total;
    if end < inner + ETH_LEN {
        return Err(Truncated);
    }
    Ok(Outer { tun, inner, end })
}

/// Ones'-complement sum of `data` as big-endian 16-bit words (an odd last
/// byte padded with 0), not folded.
#[inline]
pub fn sum_be16(data: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    sum += u64::from(u32::from_be_bytes(tail));
    // Fold 64 -> 32 bits keeping the ones'-complement value mod 0xffff.
    let s = (sum & 0xffff_ffff) + (sum >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = s as u32;
    (s >> 16) + (s & 0xffff)
}

/// Folds a 32-bit ones'-complement sum to 16 bits.
#[inline]
pub fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The IPv4 pseudo-header sum of the header at `ip` for protocol `proto`
/// with L4 length `len`.
#[inline]
fn pseudo_sum(ip: &[u8], proto: u8, len: u16) -> u32 {
    sum_be16(&ip[12..20]) + u32::from(proto) + u32::from(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: TunnelKind, csum: bool, key: Option<u64>) -> TnlHeaderSpec {
        TnlHeaderSpec {
            kind,
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 2],
            ip_src: 0xc000_0201,
            ip_dst: 0xc000_0202,
            tos: 0,
            ttl: 64,
            df: true,
            dst_port: kind.default_port(),
            key,
            csum,
        }
    }

    fn push(p: &TnlPush, inner: &[u8], src_port: u16) -> Vec<u8> {
        let mut f = vec![0u8; p.header().len()];
        f.extend_from_slice(inner);
        p.write(&mut f, src_port);
        f
    }

    fn inner() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xaa; 6]);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        for (i, b) in f[14..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in [TunnelKind::Vxlan, TunnelKind::Geneve, TunnelKind::Gre] {
            for csum in [false, true] {
                for key in [Some(42), None] {
                    if kind != TunnelKind::Gre && key.is_none() {
                        continue;
                    }
                    let p = TnlPush::new(3, 1, &spec(kind, csum, key));
                    let f = push(&p, &inner(), 40000);
                    let o = parse_outer(&f, kind).expect("valid");
                    assert_eq!(&f[o.inner..o.end], &inner()[..]);
                    assert_eq!(o.tun.id, key.unwrap_or(0));
                    assert_eq!(o.tun.src, 0xc000_0201);
                    assert_eq!(o.tun.dst, 0xc000_0202);
                    assert_eq!(o.tun.ttl, 64);
                    let mut want = TNL_F_DONT_FRAGMENT;
                    if csum {
                        want |= TNL_F_CSUM;
                    }
                    if key.is_some() {
                        want |= TNL_F_KEY;
                    }
                    assert_eq!(o.tun.flags, want, "{kind:?} csum={csum} key={key:?}");
                    if kind != TunnelKind::Gre {
                        assert_eq!(o.tun.tp_src, 40000);
                        assert_eq!(o.tun.tp_dst, kind.default_port());
                    }
                }
            }
        }
    }

    /// A VXLAN frame laid out as Linux sends it (`ip link add vx0 type
    /// vxlan id 42 dstport 4789`: DF clear, a random source port, UDP
    /// checksum set), an ARP request inside. Written by hand: the
    /// checksums are filled in by the test.
    const KERNEL_VXLAN: &str = "02000000000102000000000208004500004e\
        1d3f000040112e7ec0000202c0000201c7e112b5003a7ea3\
        0800000000002a00\
        ffffffffffff3a1c4d6f2e9108060001080006040001\
        3a1c4d6f2e910a0900020000000000000a090001";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn kernel_frame_checksums() {
        let mut f = hex(KERNEL_VXLAN);
        // Fix the recorded checksums up from the bytes (the recording's
        // MACs were rewritten), so that the check is of the algorithm.
        f[24..26].copy_from_slice(&[0, 0]);
        let c = !fold(sum_be16(&f[14..34]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f[40..42].copy_from_slice(&[0, 0]);
        let udp_len = u16::from_be_bytes([f[38], f[39]]);
        let c = !fold(pseudo_sum(&f[14..], 17, udp_len) + sum_be16(&f[34..34 + udp_len as usize]));
        f[40..42].copy_from_slice(&c.to_be_bytes());
        let o = parse_outer(&f, TunnelKind::Vxlan).expect("valid");
        assert_eq!(o.tun.id, 42);
        assert_eq!(o.tun.flags, TNL_F_KEY | TNL_F_CSUM);
        // A flipped payload bit breaks the UDP checksum.
        let mut bad = f.clone();
        *bad.last_mut().expect("byte") ^= 1;
        assert_eq!(
            parse_outer(&bad, TunnelKind::Vxlan),
            Err(PopError::BadChecksum)
        );
        // A flipped bit in the IPv4 header breaks its checksum.
        let mut bad = f.clone();
        bad[22] ^= 1;
        assert_eq!(
            parse_outer(&bad, TunnelKind::Vxlan),
            Err(PopError::BadChecksum)
        );
        // Cut short.
        assert_eq!(
            parse_outer(&f[..60], TunnelKind::Vxlan),
            Err(PopError::Truncated)
        );
        // VXLAN flags without the I bit.
        let mut bad = f.clone();
        bad[40..42].copy_from_slice(&[0, 0]);
        bad[42] = 0;
        assert_eq!(
            parse_outer(&bad, TunnelKind::Vxlan),
            Err(PopError::BadHeader)
        );
    }

    #[test]
    fn ipv4_checksum_is_right() {
        let p = TnlPush::new(3, 1, &spec(TunnelKind::Vxlan, false, Some(42)));
        let f = push(&p, &inner(), 50000);
        assert_eq!(fold(sum_be16(&f[14..34])), 0xffff);
        assert_eq!(&f[40..42], &[0, 0], "UDP checksum 0 without csum=true");
        assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, f.len() - 14);
    }

    #[test]
    fn geneve_critical_option_is_refused() {
        let p = TnlPush::new(3, 1, &spec(TunnelKind::Geneve, false, Some(7)));
        let mut f = push(&p, &inner(), 50000);
        f[43] |= GENEVE_CRIT;
        assert_eq!(
            parse_outer(&f, TunnelKind::Geneve),
            Err(PopError::BadHeader)
        );
    }

    #[test]
    fn format_is_ovs() {
        let p = TnlPush::new(3, 1, &spec(TunnelKind::Vxlan, false, Some(42)));
        assert_eq!(
            p.to_string(),
            "tnl_push(tnl_port(3),header(size=50,type=4,eth(dst=02:00:00:00:00:02,src=02:00:00:00:00:01,dl_type=0x0800),\
             ipv4(src=192.0.2.1,dst=192.0.2.2,proto=17,tos=0,ttl=64,frag=0x4000),udp(src=0,dst=4789,csum=0x0),\
             vxlan(flags=0x8000000,vni=0x2a)),out_port(1))"
        );
    }

    /// Arbitrary bytes, and valid frames with bytes flipped and cut, never
    /// panic, and an accepted frame's inner span is inside it.
    #[test]
    fn hostile_frames_do_not_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid: Vec<Vec<u8>> = [TunnelKind::Vxlan, TunnelKind::Geneve, TunnelKind::Gre]
            .into_iter()
            .map(|k| {
                push(
                    &TnlPush::new(3, 1, &spec(k, true, Some(5))),
                    &inner(),
                    40000,
                )
            })
            .collect();
        for i in 0..20_000 {
            let mut f = valid[i % 3].clone();
            let n = (next() % 4) as usize;
            for _ in 0..n {
                let at = (next() as usize) % f.len();
                f[at] = next() as u8;
            }
            let cut = (next() as usize) % (f.len() + 1);
            f.truncate(cut);
            for kind in [TunnelKind::Vxlan, TunnelKind::Geneve, TunnelKind::Gre] {
                if let Ok(o) = parse_outer(&f, kind) {
                    assert!(o.inner + 14 <= o.end && o.end <= f.len());
                }
            }
        }
    }

    #[test]
    fn src_port_range() {
        assert_eq!(TnlPush::src_port(0), 32768);
        assert_eq!(TnlPush::src_port(u32::MAX), 61000);
    }
}
