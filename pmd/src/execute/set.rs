//! Masked header rewrites (OVS `odp_execute_masked_set_action` and the
//! `packet_set_*` functions of `lib/packets.c`), with OVS's incremental
//! checksum updates.
//!
//! Every rewrite first checks that the header it writes is inside the frame;
//! a header that is absent or cut short is left alone (the translator does
//! not emit such rewrites anyway).

use super::checksum::{put_raw16, raw16, recalc_csum16, recalc_csum48, update128, update32};
use super::{at, l4_span, mpls, Offsets};
use flowcache::actions::{
    ArpFields, EthFields, IcmpFields, Ipv4Fields, Ipv6Fields, Masked, NdFields, PortFields,
    SetField,
};
use flowcache::key::{IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use flowcache::wire;

// Header lengths and codes from the wire views (flowcache::wire).
const TCP_HEADER_LEN: usize = wire::tcp::Packet::<&[u8]>::HEADER_LEN;
const UDP_HEADER_LEN: usize = wire::udp::Packet::<&[u8]>::HEADER_LEN;
const SCTP_HEADER_LEN: usize = wire::sctp::Packet::<&[u8]>::HEADER_LEN;
const ICMP_HEADER_LEN: usize = wire::icmp::Packet::<&[u8]>::HEADER_LEN;
/// Type, code and checksum: what an ICMPv6 rewrite needs (the 4 data
/// bytes may be absent).
const ICMP6_HEADER_LEN: usize = 4;
const IPV4_HEADER_LEN: usize = wire::ipv4::Packet::<&[u8]>::HEADER_LEN;
const IPV6_HEADER_LEN: usize = wire::ipv6::Packet::<&[u8]>::HEADER_LEN;
const ARP_ETH_HEADER_LEN: usize = wire::arp::Packet::<&[u8]>::HEADER_LEN;
const ND_MSG_LEN: usize = wire::icmpv6::NeighborMessage::<&[u8]>::HEADER_LEN;
const ND_LLA_OPT_LEN: usize = wire::icmpv6::NdOption::<&[u8]>::HEADER_LEN;
use wire::icmpv6::{ND_OPT_SOURCE_LINKADDR, ND_OPT_TARGET_LINKADDR};

/// Applies one masked set action to `frame` (whose headers are at `ofs`).
///
/// Inlined into the executor, with one out-of-line function per header
/// (except the tiny Ethernet rewrite), so a rewrite pays for the registers
/// its own header needs, not for those of the largest one.
#[inline(always)]
pub(super) fn set_field(frame: &mut [u8], ofs: &Offsets, f: &SetField) {
    match f {
        SetField::Ethernet(m) => set_eth(frame, m),
        SetField::Ipv4(m) => set_ipv4(frame, ofs, m),
        SetField::Ipv6(m) => set_ipv6(frame, ofs, m),
        SetField::Tcp(m) => set_tcp(frame, ofs, m),
        SetField::Udp(m) => set_udp(frame, ofs, m),
        SetField::Sctp(m) => set_sctp(frame, ofs, m),
        SetField::Icmpv4(m) | SetField::Icmpv6(m) => set_icmp(frame, ofs, m),
        SetField::Arp(m) => set_arp(frame, ofs, m),
        SetField::Nd(m) => set_nd(frame, ofs, m),
        SetField::Mpls(m) => mpls::set_mpls(frame, ofs, m),
        // Metadata only, handled by the caller.
        SetField::PktMark(_) => {}
    }
}

#[inline(always)]
fn masked32(old: u32, value: u32, mask: u32) -> u32 {
    (old & !mask) | (value & mask)
}

#[inline(always)]
fn masked16(old: u16, value: u16, mask: u16) -> u16 {
    (old & !mask) | (value & mask)
}

#[inline(always)]
fn masked8(old: u8, value: u8, mask: u8) -> u8 {
    (old & !mask) | (value & mask)
}

#[inline(always)]
fn masked_bytes<const N: usize>(old: &[u8], value: &[u8; N], mask: &[u8; N]) -> [u8; N] {
    let mut out = [0u8; N];
    for i in 0..N {
        out[i] = masked8(old[i], value[i], mask[i]);
    }
    out
}

#[inline(always)]
fn get<const N: usize>(d: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&d[off..off + N]);
    out
}

#[inline(always)]
fn be16(d: &[u8], off: usize) -> u16 {
    u16::from_be_bytes(get(d, off))
}

#[inline(always)]
fn be32(d: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(get(d, off))
}

// ---------------------------------------------------------------------------
// Ethernet.

#[inline(always)]
fn set_eth(d: &mut [u8], m: &Masked<EthFields>) {
    let Some(hdr) = d.first_chunk_mut::<14>() else {
        return;
    };
    // Destination and source are the first 12 bytes: rewrite them as one
    // 8-byte and one 4-byte word.
    let join = |f: &EthFields| -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..6].copy_from_slice(&f.dst);
        b[6..].copy_from_slice(&f.src);
        b
    };
    let (value, mask) = (join(&m.value), join(&m.mask));
    let word = |b: &[u8]| u64::from_ne_bytes(b[..8].try_into().unwrap());
    let tail = |b: &[u8]| u32::from_ne_bytes(b[8..12].try_into().unwrap());
    let lo = (word(hdr) & !word(&mask)) | (word(&value) & word(&mask));
    let hi = (tail(hdr) & !tail(&mask)) | (tail(&value) & tail(&mask));
    hdr[..8].copy_from_slice(&lo.to_ne_bytes());
    hdr[8..12].copy_from_slice(&hi.to_ne_bytes());
}

// ---------------------------------------------------------------------------
// IPv4 (OVS `odp_set_ipv4`, `packet_set_ipv4_addr`).

#[inline(never)]
fn set_ipv4(d: &mut [u8], ofs: &Offsets, m: &Masked<Ipv4Fields>) {
    let Some(l3) = at(ofs.l3) else {
        return;
    };
    if l3 + IPV4_HEADER_LEN > d.len() {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    if k.src != 0 {
        let old = be32(d, l3 + 12);
        let new = masked32(old, v.src, k.src);
        if new != old {
            set_ipv4_addr(d, ofs, l3, l3 + 12, new);
        }
    }
    if k.dst != 0 {
        let old = be32(d, l3 + 16);
        let new = masked32(old, v.dst, k.dst);
        if new != old {
            set_ipv4_addr(d, ofs, l3, l3 + 16, new);
        }
    }
    if k.tos != 0 {
        let old = d[l3 + 1];
        let new = masked8(old, v.tos, k.tos);
        if new != old {
            let c = recalc_csum16(
                raw16(d, l3 + 10),
                u16::from_le_bytes([0, old]),
                u16::from_le_bytes([0, new]),
            );
            put_raw16(d, l3 + 10, c);
            d[l3 + 1] = new;
        }
    }
    if k.ttl != 0 {
        let old = d[l3 + 8];
        let new = masked8(old, v.ttl, k.ttl);
        if new != old {
            let c = recalc_csum16(
                raw16(d, l3 + 10),
                u16::from_le_bytes([old, 0]),
                u16::from_le_bytes([new, 0]),
            );
            put_raw16(d, l3 + 10, c);
            d[l3 + 8] = new;
        }
    }
}

/// Rewrites the address at `addr_off`, updating the TCP/UDP checksum when
/// the protocol says so and a header's worth of L4 bytes is there (later
/// fragments included, as OVS), and the IPv4 header checksum.
fn set_ipv4_addr(d: &mut [u8], ofs: &Offsets, l3: usize, addr_off: usize, new: u32) {
    let old_b: [u8; 4] = get(d, addr_off);
    let new_b = new.to_be_bytes();
    let proto = d[l3 + 9];
    if let Some((l4, l4_size)) = l4_span(d, ofs) {
        if proto == IPPROTO_TCP && l4_size >= TCP_HEADER_LEN {
            update32(d, l4 + 16, old_b, new_b);
        } else if proto == IPPROTO_UDP && l4_size >= UDP_HEADER_LEN && raw16(d, l4 + 6) != 0 {
            update32(d, l4 + 6, old_b, new_b);
            if raw16(d, l4 + 6) == 0 {
                put_raw16(d, l4 + 6, 0xffff);
            }
        }
    }
    update32(d, l3 + 10, old_b, new_b);
    d[addr_off..addr_off + 4].copy_from_slice(&new_b);
}

// ---------------------------------------------------------------------------
// IPv6 (OVS `odp_set_ipv6`, `packet_set_ipv6`, `packet_rh_present`).

use wire::ipv6::{
    NEXT_AH as IPPROTO_AH, NEXT_DEST_OPTS as IPPROTO_DSTOPTS, NEXT_FRAGMENT as IPPROTO_FRAGMENT,
    NEXT_HOP_BY_HOP as IPPROTO_HOPOPTS, NEXT_ROUTING as IPPROTO_ROUTING,
};

/// What OVS's `packet_rh_present` finds walking the extension headers
/// between `l3` and `l4`.
struct Ipv6Walk {
    /// The last next-header value reached (the L4 protocol normally).
    proto: u8,
    /// A routing header with segments left > 0 is present.
    rh_present: bool,
    /// False for a fragment that is not a first fragment (offset 0, M=1):
    /// its L4 checksum is not updated.
    recalc_csum: bool,
}

fn ipv6_walk(d: &[u8], l3: usize, l4: Option<usize>) -> Ipv6Walk {
    let mut w = Ipv6Walk {
        proto: 0,
        rh_present: false,
        recalc_csum: true,
    };
    let end = l4.unwrap_or(d.len()).min(d.len());
    let mut remaining = end.saturating_sub(l3);
    if remaining < IPV6_HEADER_LEN {
        return w;
    }
    let mut p = l3 + IPV6_HEADER_LEN;
    remaining -= IPV6_HEADER_LEN;
    w.proto = d[l3 + 6];
    loop {
        if !matches!(
            w.proto,
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH | IPPROTO_FRAGMENT
        ) {
            return w;
        }
        if remaining < 8 {
            return w;
        }
        let len = match w.proto {
            IPPROTO_AH => {
                w.proto = d[p];
                (usize::from(d[p + 1]) + 2) * 4
            }
            IPPROTO_FRAGMENT => {
                let offlg = be16(d, p + 2);
                w.recalc_csum = offlg & 0xfff8 == 0 && offlg & 0x0001 != 0;
                w.proto = d[p];
                8
            }
            IPPROTO_ROUTING => {
                if d[p + 3] > 0 {
                    w.rh_present = true;
                    return w;
                }
                w.proto = d[p];
                (usize::from(d[p + 1]) + 1) * 8
            }
            _ => {
                w.proto = d[p];
                (usize::from(d[p + 1]) + 1) * 8
            }
        };
        if remaining < len {
            return w;
        }
        remaining -= len;
        p += len;
    }
}

/// OVS `packet_update_csum128`: an address covered by the L4 pseudo-header
/// (or, for ND, by the ICMPv6 body) changed.
fn update_l4_csum128(d: &mut [u8], ofs: &Offsets, proto: u8, old: &[u8; 16], new: &[u8; 16]) {
    let Some((l4, l4_size)) = l4_span(d, ofs) else {
        return;
    };
    if proto == IPPROTO_TCP && l4_size >= TCP_HEADER_LEN {
        update128(d, l4 + 16, old, new);
    } else if proto == IPPROTO_UDP && l4_size >= UDP_HEADER_LEN {
        if raw16(d, l4 + 6) != 0 {
            update128(d, l4 + 6, old, new);
            if raw16(d, l4 + 6) == 0 {
                put_raw16(d, l4 + 6, 0xffff);
            }
        }
    } else if proto == IPPROTO_ICMPV6 && l4_size >= ICMP6_HEADER_LEN {
        update128(d, l4 + 2, old, new);
    }
}

#[inline(never)]
fn set_ipv6(d: &mut [u8], ofs: &Offsets, m: &Masked<Ipv6Fields>) {
    let Some(l3) = at(ofs.l3) else {
        return;
    };
    if l3 + IPV6_HEADER_LEN > d.len() {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    let walk = ipv6_walk(d, l3, at(ofs.l4));

    let old_src: [u8; 16] = get(d, l3 + 8);
    let new_src = masked_bytes(&old_src, &v.src, &k.src);
    if new_src != old_src {
        if walk.recalc_csum {
            update_l4_csum128(d, ofs, walk.proto, &old_src, &new_src);
        }
        d[l3 + 8..l3 + 24].copy_from_slice(&new_src);
    }
    let old_dst: [u8; 16] = get(d, l3 + 24);
    let new_dst = masked_bytes(&old_dst, &v.dst, &k.dst);
    if new_dst != old_dst {
        if walk.recalc_csum && !walk.rh_present {
            update_l4_csum128(d, ofs, walk.proto, &old_dst, &new_dst);
        }
        d[l3 + 24..l3 + 40].copy_from_slice(&new_dst);
    }

    let vtcfl = be32(d, l3);
    let tc = masked8((vtcfl >> 20) as u8, v.tclass, k.tclass);
    let fl = masked32(vtcfl & 0x000f_ffff, v.label, k.label) & 0x000f_ffff;
    let vtcfl = (vtcfl & 0xf000_0000) | (u32::from(tc) << 20) | fl;
    d[l3..l3 + 4].copy_from_slice(&vtcfl.to_be_bytes());
    d[l3 + 7] = masked8(d[l3 + 7], v.hlimit, k.hlimit);
}

// ---------------------------------------------------------------------------
// TCP, UDP, SCTP ports (OVS `packet_set_{tcp,udp,sctp}_port`).

/// New port values, or `None` when nothing changes.
#[inline]
fn new_ports(d: &[u8], l4: usize, m: &Masked<PortFields>) -> (u16, u16) {
    (
        masked16(be16(d, l4), m.value.src, m.mask.src),
        masked16(be16(d, l4 + 2), m.value.dst, m.mask.dst),
    )
}

/// OVS `packet_set_port`: writes one port, updating the checksum at
/// `csum_off` if given.
#[inline]
fn set_port(d: &mut [u8], port_off: usize, new: u16, csum_off: Option<usize>) {
    let old = raw16(d, port_off);
    let new = u16::from_le_bytes(new.to_be_bytes());
    if old != new {
        if let Some(c) = csum_off {
            let v = recalc_csum16(raw16(d, c), old, new);
            put_raw16(d, c, v);
        }
        put_raw16(d, port_off, new);
    }
}

#[inline(never)]
fn set_tcp(d: &mut [u8], ofs: &Offsets, m: &Masked<PortFields>) {
    let Some((l4, l4_size)) = l4_span(d, ofs) else {
        return;
    };
    // OVS `dp_packet_get_tcp_payload`: a whole, sane TCP header.
    if l4_size < TCP_HEADER_LEN {
        return;
    }
    let tcp_len = usize::from(d[l4 + 12] >> 4) * 4;
    if tcp_len < TCP_HEADER_LEN || tcp_len > l4_size {
        return;
    }
    let (src, dst) = new_ports(d, l4, m);
    set_port(d, l4, src, Some(l4 + 16));
    set_port(d, l4 + 2, dst, Some(l4 + 16));
}

#[inline(never)]
fn set_udp(d: &mut [u8], ofs: &Offsets, m: &Masked<PortFields>) {
    let Some((l4, l4_size)) = l4_span(d, ofs) else {
        return;
    };
    if l4_size < UDP_HEADER_LEN {
        return;
    }
    let (src, dst) = new_ports(d, l4, m);
    // A zero checksum means "none" and stays zero.
    let csum = (raw16(d, l4 + 6) != 0).then_some(l4 + 6);
    set_port(d, l4, src, csum);
    set_port(d, l4 + 2, dst, csum);
    if csum.is_some() && raw16(d, l4 + 6) == 0 {
        put_raw16(d, l4 + 6, 0xffff);
    }
}

#[inline(never)]
fn set_sctp(d: &mut [u8], ofs: &Offsets, m: &Masked<PortFields>) {
    let Some((l4, l4_size)) = l4_span(d, ofs) else {
        return;
    };
    if l4_size < SCTP_HEADER_LEN {
        return;
    }
    let (src, dst) = new_ports(d, l4, m);
    let old: [u8; 4] = get(d, l4);
    let mut new = [0u8; 4];
    new[..2].copy_from_slice(&src.to_be_bytes());
    new[2..].copy_from_slice(&dst.to_be_bytes());
    if new == old {
        return;
    }
    // OVS stores `old_csum ^ crc32c(old) ^ crc32c(new)` (both over the L4
    // bytes with a zero checksum field); the difference of the two CRCs only
    // depends on the changed bytes and the length.
    let delta = [
        old[0] ^ new[0],
        old[1] ^ new[1],
        old[2] ^ new[2],
        old[3] ^ new[3],
    ];
    let crc_delta = super::checksum::crc32c_prefix_delta(delta, l4_size).to_le_bytes();
    for i in 0..4 {
        d[l4 + 8 + i] ^= crc_delta[i];
    }
    d[l4..l4 + 4].copy_from_slice(&new);
}

// ---------------------------------------------------------------------------
// ICMP / ICMPv6 type and code (OVS `packet_set_icmp`).

#[inline(never)]
fn set_icmp(d: &mut [u8], ofs: &Offsets, m: &Masked<IcmpFields>) {
    let Some((l4, l4_size)) = l4_span(d, ofs) else {
        return;
    };
    if l4_size < ICMP_HEADER_LEN {
        return;
    }
    let ty = masked8(d[l4], m.value.icmp_type, m.mask.icmp_type);
    let code = masked8(d[l4 + 1], m.value.icmp_code, m.mask.icmp_code);
    let orig = raw16(d, l4);
    let new = u16::from_le_bytes([ty, code]);
    if orig != new {
        d[l4] = ty;
        d[l4 + 1] = code;
        let c = recalc_csum16(raw16(d, l4 + 2), orig, new);
        put_raw16(d, l4 + 2, c);
    }
}

// ---------------------------------------------------------------------------
// ARP (OVS `set_arp`).

#[inline(never)]
fn set_arp(d: &mut [u8], ofs: &Offsets, m: &Masked<ArpFields>) {
    let Some(l3) = at(ofs.l3) else {
        return;
    };
    if l3 + ARP_ETH_HEADER_LEN > d.len() {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    let op = masked16(be16(d, l3 + 6), v.op, k.op);
    d[l3 + 6..l3 + 8].copy_from_slice(&op.to_be_bytes());
    let sha = masked_bytes(&d[l3 + 8..l3 + 14], &v.sha, &k.sha);
    d[l3 + 8..l3 + 14].copy_from_slice(&sha);
    let spa = masked32(be32(d, l3 + 14), v.spa, k.spa);
    d[l3 + 14..l3 + 18].copy_from_slice(&spa.to_be_bytes());
    let tha = masked_bytes(&d[l3 + 18..l3 + 24], &v.tha, &k.tha);
    d[l3 + 18..l3 + 24].copy_from_slice(&tha);
    let tpa = masked32(be32(d, l3 + 24), v.tpa, k.tpa);
    d[l3 + 24..l3 + 28].copy_from_slice(&tpa.to_be_bytes());
}

// ---------------------------------------------------------------------------
// IPv6 neighbour discovery (OVS `odp_set_nd`, `packet_set_nd`).

/// The first source/target link-layer address option (length 1), walked the
/// way OVS does (including its habit of subtracting the length of the
/// option it lands on rather than the one it skipped). Returns the option
/// offset and type.
fn find_lla_opt(d: &[u8], l4: usize, l4_size: usize) -> Option<(usize, u8)> {
    let end = l4 + l4_size;
    let mut p = l4 + ND_MSG_LEN;
    let mut remain = l4_size as isize - ND_MSG_LEN as isize;
    while remain >= ND_LLA_OPT_LEN as isize && p + ND_LLA_OPT_LEN <= end && d[p + 1] != 0 {
        let (ty, len) = (d[p], d[p + 1]);
        if len == 1 && (ty == ND_OPT_SOURCE_LINKADDR || ty == ND_OPT_TARGET_LINKADDR) {
            return Some((p, ty));
        }
        p += usize::from(len) * ND_LLA_OPT_LEN;
        if p + 2 > end {
            return None;
        }
        remain -= isize::from(d[p + 1]) * ND_LLA_OPT_LEN as isize;
    }
    None
}

#[inline(never)]
fn set_nd(d: &mut [u8], ofs: &Offsets, m: &Masked<NdFields>) {
    let Some((l4, l4_size)) = l4_span(d, ofs) else {
        return;
    };
    if l4_size < ND_MSG_LEN {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    let old_target: [u8; 16] = get(d, l4 + 8);
    let new_target = masked_bytes(&old_target, &v.target, &k.target);
    if new_target != old_target {
        update_l4_csum128(d, ofs, IPPROTO_ICMPV6, &old_target, &new_target);
        d[l4 + 8..l4 + 24].copy_from_slice(&new_target);
    }
    if let Some((p, ty)) = find_lla_opt(d, l4, l4_size) {
        let old: [u8; 6] = get(d, p + 2);
        let new = if ty == ND_OPT_SOURCE_LINKADDR {
            masked_bytes(&old, &v.sll, &k.sll)
        } else {
            masked_bytes(&old, &v.tll, &k.tll)
        };
        if new != old {
            let c = recalc_csum48(raw16(d, l4 + 2), old, new);
            put_raw16(d, l4 + 2, c);
            d[p + 2..p + 8].copy_from_slice(&new);
        }
    }
}
