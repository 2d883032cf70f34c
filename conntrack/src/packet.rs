//! Reading a frame for the tracker (OVS `conn_key_extract`): the
//! connection key of its L3/L4 headers, the TCP fields the state machine
//! needs, and for ICMP errors the key of the packet they quote. Anything
//! malformed (bad lengths, bad checksums, fragments, an ICMP type that is
//! neither a query nor an error) makes the packet invalid (`+inv`).

use crate::key::{icmp_reply_type, ConnKey};
use flowcache::key::{
    ETH_TYPE_IPV4, ETH_TYPE_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
};

/// TCP fields of a segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub seq: u32,
    pub ack: u32,
    /// The 12 flag bits.
    pub flags: u16,
    pub win: u16,
    /// Window scale option (`WSCALE_FLAG | shift`), 0 when absent.
    pub wscale: u8,
    /// Payload bytes.
    pub payload: u32,
}

/// What a packet's L4 header is for the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp(TcpInfo),
    Udp,
    /// An ICMP/ICMPv6 query (echo, timestamp, information); `request`
    /// when it may start a connection.
    IcmpQuery {
        request: bool,
    },
    /// An ICMP error quoting a packet: the key of the quoted packet,
    /// reversed (the direction the error travels in), and where the quoted
    /// IP and L4 headers are.
    IcmpError {
        inner: ConnKey,
        inner_l3: usize,
        inner_l4: usize,
    },
    Other,
}

/// A packet as the tracker reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The packet's key (zone 0).
    pub key: ConnKey,
    pub l3: usize,
    pub l4: usize,
    /// Bytes of L4 (header + payload) within the IP length.
    pub l4_len: usize,
    pub l4_info: L4,
}

pub(crate) const TCP_FIN: u16 = 0x01;
pub(crate) const TCP_SYN: u16 = 0x02;
pub(crate) const TCP_RST: u16 = 0x04;
pub(crate) const TCP_PSH: u16 = 0x08;
pub(crate) const TCP_ACK: u16 = 0x10;
pub(crate) const TCP_URG: u16 = 0x20;

/// Window-scale byte: the option was present.
pub(crate) const WSCALE_FLAG: u8 = 0x80;
/// Window-scale byte: the connection was picked up mid-stream.
pub(crate) const WSCALE_UNKNOWN: u8 = 0x40;
pub(crate) const WSCALE_MASK: u8 = 0x0f;
const TCP_MAX_WSCALE: u8 = 14;

fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

fn be32(d: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

/// Ones-complement sum of `d` (not folded).
pub(crate) fn csum_add(mut acc: u32, d: &[u8]) -> u32 {
    let mut chunks = d.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [b] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*b) << 8);
    }
    acc
}

pub(crate) fn csum_fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// True when the L4 checksum over the pseudo header is right.
fn l4_csum_ok(frame: &[u8], l3: usize, l4: usize, len: usize, proto: u8, v6: bool) -> bool {
    let mut acc = 0u32;
    if v6 {
        acc = csum_add(acc, &frame[l3 + 8..l3 + 40]);
        acc = csum_add(acc, &(len as u32).to_be_bytes());
        acc = acc.wrapping_add(u32::from(proto));
    } else if proto != IPPROTO_ICMP {
        acc = csum_add(acc, &frame[l3 + 12..l3 + 20]);
        acc = acc.wrapping_add(u32::from(proto)).wrapping_add(len as u32);
    }
    acc = csum_add(acc, &frame[l4..l4 + len]);
    csum_fold(acc) == 0xffff
}

/// (protocol, L4 offset, L4 length, source, destination) of an IP header.
type IpHdr = (u8, usize, usize, [u8; 16], [u8; 16]);

/// IPv4 or IPv6 header: (protocol, L4 offset, L4 length, addresses) or
/// `None` when invalid. `strict` checks the header checksum and rejects
/// fragments; the quoted header of an ICMP error is read loosely (it may
/// be cut short after 8 bytes of L4).
fn ip_header(frame: &[u8], l3: usize, v6: bool, strict: bool) -> Option<IpHdr> {
    let d = frame.get(l3..)?;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    if !v6 {
        if d.len() < 20 || d[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        let total = usize::from(be16(d, 2));
        if ihl < 20 || d.len() < ihl {
            return None;
        }
        if strict && (total < ihl || total > d.len() || csum_fold(csum_add(0, &d[..ihl])) != 0xffff)
        {
            return None;
        }
        let frag = be16(d, 6);
        if strict && frag & 0x3fff != 0 {
            // Fragments are not reassembled (OVS ipf is not implemented).
            return None;
        }
        src[12..].copy_from_slice(&d[12..16]);
        dst[12..].copy_from_slice(&d[16..20]);
        let end = if strict {
            total
        } else {
            d.len().min(total.max(ihl))
        };
        Some((d[9], l3 + ihl, end - ihl, src, dst))
    } else {
        if d.len() < 40 || d[0] >> 4 != 6 {
            return None;
        }
        let plen = usize::from(be16(d, 4));
        if strict && 40 + plen > d.len() {
            return None;
        }
        let end = if strict {
            40 + plen
        } else {
            d.len().min(40 + plen)
        };
        src.copy_from_slice(&d[8..24]);
        dst.copy_from_slice(&d[24..40]);
        let mut next = d[6];
        let mut off = 40;
        loop {
            match next {
                // Hop-by-hop, routing, destination options.
                0 | 43 | 60 => {
                    if off + 8 > end {
                        return None;
                    }
                    next = d[off];
                    off += (usize::from(d[off + 1]) + 1) * 8;
                }
                // A fragment header (atomic fragments included): not
                // reassembled.
                44 => return None,
                _ => break,
            }
        }
        if off > end {
            return None;
        }
        Some((next, l3 + off, end - off, src, dst))
    }
}

fn tcp_wscale(opts: &[u8]) -> u8 {
    let mut i = 0;
    let mut ws = 0;
    while i + 3 <= opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            k => {
                if k == 3 {
                    ws = opts[i + 2].min(TCP_MAX_WSCALE) | WSCALE_FLAG;
                }
                i += usize::from(opts[i + 1]).max(2);
            }
        }
    }
    ws
}

/// ICMP type classes.
fn icmp_is_error(v6: bool, t: u8) -> bool {
    if v6 {
        matches!(t, 1..=4)
    } else {
        matches!(t, 3 | 4 | 5 | 11 | 12)
    }
}

/// Reads the packet at `l3` (ethertype `dl_type`); `None` when it is
/// invalid for the tracker (or not IP).
pub fn parse(frame: &[u8], l3: usize, dl_type: u16) -> Option<Parsed> {
    let v6 = match dl_type {
        ETH_TYPE_IPV4 => false,
        ETH_TYPE_IPV6 => true,
        _ => return None,
    };
    let (proto, l4, l4_len, src, dst) = ip_header(frame, l3, v6, true)?;
    let mut key = ConnKey {
        src,
        dst,
        sport: 0,
        dport: 0,
        zone: 0,
        proto,
        v6,
    };
    let d = &frame[l4..l4 + l4_len];
    let info = match proto {
        IPPROTO_TCP => {
            if d.len() < 20 {
                return None;
            }
            let hl = usize::from(d[12] >> 4) * 4;
            if hl < 20 || hl > d.len() || !l4_csum_ok(frame, l3, l4, l4_len, proto, v6) {
                return None;
            }
            key.sport = be16(d, 0);
            key.dport = be16(d, 2);
            L4::Tcp(TcpInfo {
                seq: be32(d, 4),
                ack: be32(d, 8),
                flags: be16(d, 12) & 0x0fff,
                win: be16(d, 14),
                wscale: tcp_wscale(&d[20..hl]),
                payload: (d.len() - hl) as u32,
            })
        }
        IPPROTO_UDP => {
            if d.len() < 8 || usize::from(be16(d, 4)) < 8 || usize::from(be16(d, 4)) > d.len() {
                return None;
            }
            let zero_ok = !v6 && be16(d, 6) == 0;
            if !zero_ok && !l4_csum_ok(frame, l3, l4, l4_len, proto, v6) {
                return None;
            }
            key.sport = be16(d, 0);
            key.dport = be16(d, 2);
            L4::Udp
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 if (proto == IPPROTO_ICMPV6) == v6 => {
            if d.len() < 8 || !l4_csum_ok(frame, l3, l4, l4_len, proto, v6) {
                return None;
            }
            let (t, code) = (d[0], d[1]);
            if icmp_is_error(v6, t) {
                let inner_l3 = l4 + 8;
                let (iproto, il4, ilen, isrc, idst) = ip_header(frame, inner_l3, v6, false)?;
                if ilen < 8 {
                    return None;
                }
                let id = &frame[il4..];
                let mut inner = ConnKey {
                    src: isrc,
                    dst: idst,
                    sport: 0,
                    dport: 0,
                    zone: 0,
                    proto: iproto,
                    v6,
                };
                match iproto {
                    IPPROTO_TCP | IPPROTO_UDP => {
                        inner.sport = be16(id, 0);
                        inner.dport = be16(id, 2);
                    }
                    IPPROTO_ICMP | IPPROTO_ICMPV6 => {
                        // Only a quoted query can belong to a connection.
                        icmp_reply_type(v6, id[0])?;
                        inner.sport = be16(id, 4);
                        inner.dport = u16::from(id[0]) << 8 | u16::from(id[1]);
                    }
                    _ => {}
                }
                L4::IcmpError {
                    inner: inner.reverse(),
                    inner_l3,
                    inner_l4: il4,
                }
            } else {
                icmp_reply_type(v6, t)?;
                key.sport = be16(d, 4);
                key.dport = u16::from(t) << 8 | u16::from(code);
                let request = matches!((v6, t), (false, 8 | 13 | 15) | (true, 128));
                L4::IcmpQuery { request }
            }
        }
        _ => L4::Other,
    };
    Some(Parsed {
        key,
        l3,
        l4,
        l4_len,
        l4_info: info,
    })
}
