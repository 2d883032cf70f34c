//! Address and port rewrites for NAT with incremental checksum updates
//! (RFC 1624), the way OVS's `packet_set_ipv4_addr` and friends do them.

use crate::key::ConnKey;
use flowcache::key::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

fn upd16(csum: u16, old: u16, new: u16) -> u16 {
    // ~(~csum + ~old + new), folded.
    let mut acc = u32::from(!csum) + u32::from(!old) + u32::from(new);
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn upd_bytes(mut csum: u16, old: &[u8], new: &[u8]) -> u16 {
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        csum = upd16(
            csum,
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([n[0], n[1]]),
        );
    }
    csum
}

fn get16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

fn put16(d: &mut [u8], o: usize, v: u16) {
    d[o..o + 2].copy_from_slice(&v.to_be_bytes());
}

/// Offset of the L4 checksum for a protocol whose checksum covers the
/// pseudo header (and so the addresses).
fn l4_csum_ofs(proto: u8, v6: bool) -> Option<usize> {
    match proto {
        IPPROTO_TCP => Some(16),
        IPPROTO_UDP => Some(6),
        IPPROTO_ICMPV6 if v6 => Some(2),
        _ => None,
    }
}

/// Rewrites the packet at `l3`/`l4` (protocol `proto`) from the addresses
/// and ports of `from` to those of `to` (same direction, same protocol).
/// `l4_len` is how many bytes of the L4 header are there to patch (the
/// ports need 4, a checksum its offset + 2; a header quoted by an ICMP error
/// has only 8).
pub fn rewrite(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    l4_len: usize,
    from: &ConnKey,
    to: &ConnKey,
) {
    let l4_len = l4_len.min(frame.len().saturating_sub(l4));
    let l4_ok = l4_len >= 8;
    let v6 = from.v6;
    let proto = from.proto;
    let (sa, da, alen) = if v6 {
        (l3 + 8, l3 + 24, 16)
    } else {
        (l3 + 12, l3 + 16, 4)
    };
    let old_src = if v6 { &from.src[..] } else { &from.src[12..] };
    let new_src = if v6 { &to.src[..] } else { &to.src[12..] };
    let old_dst = if v6 { &from.dst[..] } else { &from.dst[12..] };
    let new_dst = if v6 { &to.dst[..] } else { &to.dst[12..] };
    let csum_ofs = l4_csum_ofs(proto, v6).filter(|o| l4_len >= o + 2);
    let mut l4csum = csum_ofs.map(|o| get16(frame, l4 + o));
    // UDP over IPv4 without a checksum stays without one.
    let udp_zero = proto == IPPROTO_UDP && !v6 && l4csum == Some(0);
    if frame[sa..sa + alen] != *new_src {
        if !v6 {
            let c = upd_bytes(get16(frame, l3 + 10), old_src, new_src);
            put16(frame, l3 + 10, c);
        }
        if let Some(c) = l4csum.as_mut() {
            *c = upd_bytes(*c, old_src, new_src);
        }
        frame[sa..sa + alen].copy_from_slice(new_src);
    }
    if frame[da..da + alen] != *new_dst {
        if !v6 {
            let c = upd_bytes(get16(frame, l3 + 10), old_dst, new_dst);
            put16(frame, l3 + 10, c);
        }
        if let Some(c) = l4csum.as_mut() {
            *c = upd_bytes(*c, old_dst, new_dst);
        }
        frame[da..da + alen].copy_from_slice(new_dst);
    }
    if l4_ok && from.has_ports() {
        if from.sport != to.sport {
            if let Some(c) = l4csum.as_mut() {
                *c = upd16(*c, from.sport, to.sport);
            }
            put16(frame, l4, to.sport);
        }
        if from.dport != to.dport {
            if let Some(c) = l4csum.as_mut() {
                *c = upd16(*c, from.dport, to.dport);
            }
            put16(frame, l4 + 2, to.dport);
        }
    } else if l4_ok && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) && from.sport != to.sport
    {
        // The ICMP query identifier.
        if let Some(c) = l4csum.as_mut() {
            *c = upd16(*c, from.sport, to.sport);
        } else {
            let c = upd16(get16(frame, l4 + 2), from.sport, to.sport);
            put16(frame, l4 + 2, c);
        }
        put16(frame, l4 + 4, to.sport);
    }
    if let (Some(o), Some(mut c)) = (csum_ofs, l4csum) {
        if udp_zero {
            return;
        }
        if proto == IPPROTO_UDP && c == 0 {
            c = 0xffff;
        }
        put16(frame, l4 + o, c);
    }
}

/// Translates an ICMP error at `l3`/`l4` (message length `l4_len`) that
/// quotes a packet of a NATted connection (OVS `reverse_nat_packet`): the
/// quoted header at `inner_l3`/`inner_l4` goes from `inner_from` to
/// `inner_to` (its own checksums updated), the outer source and/or
/// destination become `outer_src`/`outer_dst`, and the ICMP checksum is
/// computed again (it covers the quoted bytes; the message's checksum was
/// checked when the packet was read).
#[allow(clippy::too_many_arguments)]
pub fn rewrite_icmp_error(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    l4_len: usize,
    inner_l3: usize,
    inner_l4: usize,
    inner_from: &ConnKey,
    inner_to: &ConnKey,
    outer_src: Option<[u8; 16]>,
    outer_dst: Option<[u8; 16]>,
) {
    let v6 = inner_from.v6;
    let end = (l4 + l4_len).min(frame.len());
    rewrite(
        frame,
        inner_l3,
        inner_l4,
        end.saturating_sub(inner_l4),
        inner_from,
        inner_to,
    );
    // Outer addresses (the ICMP type has no ports): a key pair that
    // differs in the addresses only.
    let (sa, da, alen) = if v6 {
        (l3 + 8, l3 + 24, 16)
    } else {
        (l3 + 12, l3 + 16, 4)
    };
    let mut cur = ConnKey {
        v6,
        proto: if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP },
        ..ConnKey::default()
    };
    let off = if v6 { 0 } else { 12 };
    cur.src[off..].copy_from_slice(&frame[sa..sa + alen]);
    cur.dst[off..].copy_from_slice(&frame[da..da + alen]);
    let mut new = cur;
    if let Some(a) = outer_src {
        new.src = a;
    }
    if let Some(a) = outer_dst {
        new.dst = a;
    }
    // Outer IPv4 header checksum (incremental) and the addresses.
    if !v6 {
        for (o, n, at) in [(&cur.src, &new.src, sa), (&cur.dst, &new.dst, da)] {
            if o != n {
                let c = upd_bytes(get16(frame, l3 + 10), &o[12..], &n[12..]);
                put16(frame, l3 + 10, c);
                frame[at..at + 4].copy_from_slice(&n[12..]);
            }
        }
    } else {
        frame[sa..sa + 16].copy_from_slice(&new.src);
        frame[da..da + 16].copy_from_slice(&new.dst);
    }
    // The ICMP checksum over the whole message (ICMPv6: with the pseudo
    // header of the new outer addresses).
    put16(frame, l4 + 2, 0);
    let mut acc = 0u32;
    if v6 {
        acc = crate::packet::csum_add(acc, &frame[l3 + 8..l3 + 40]);
        acc = crate::packet::csum_add(acc, &((end - l4) as u32).to_be_bytes());
        acc = acc.wrapping_add(u32::from(IPPROTO_ICMPV6));
    }
    acc = crate::packet::csum_add(acc, &frame[l4..end]);
    let c = !crate::packet::csum_fold(acc);
    put16(frame, l4 + 2, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{csum_add, csum_fold};

    #[test]
    fn incremental_update_matches_recompute() {
        // IPv4/UDP with valid checksums.
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12] = 0x08;
        let ip = 14;
        f[ip] = 0x45;
        put16(&mut f, ip + 2, 32);
        f[ip + 8] = 64;
        f[ip + 9] = IPPROTO_UDP;
        f[ip + 12..ip + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[ip + 16..ip + 20].copy_from_slice(&[10, 0, 0, 2]);
        let c = !csum_fold(csum_add(0, &f[ip..ip + 20]));
        put16(&mut f, ip + 10, c);
        let l4 = ip + 20;
        put16(&mut f, l4, 1000);
        put16(&mut f, l4 + 2, 53);
        put16(&mut f, l4 + 4, 12);
        f[l4 + 8..].copy_from_slice(b"abcd");
        let udp_csum = |f: &[u8]| {
            let mut acc = csum_add(0, &f[ip + 12..ip + 20]);
            acc = acc.wrapping_add(17 + 12);
            acc = csum_add(acc, &f[l4..l4 + 12]);
            csum_fold(acc)
        };
        let c = !udp_csum(&f);
        put16(&mut f, l4 + 6, c);
        let from = crate::packet::parse(&f, ip, 0x0800).unwrap().key;
        let mut to = from;
        to.src[12..].copy_from_slice(&[192, 168, 0, 100]);
        to.sport = 2000;
        rewrite(&mut f, ip, l4, 12, &from, &to);
        let p = crate::packet::parse(&f, ip, 0x0800).expect("checksums still valid");
        assert_eq!(p.key, to);
    }
}
