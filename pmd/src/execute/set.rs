//! Masked header rewrites (OVS `odp_execute_masked_set_action` and the
//! `packet_set_*` functions of `lib/packets.c`), with OVS's incremental
//! checksum updates.
//!
//! Every rewrite first checks that the header it writes is inside the frame;
//! a header that is absent or cut short is left alone (the translator does
//! not emit such rewrites anyway).

use super::checksum::{put_raw16, raw16, recalc_csum16, recalc_csum48, update128, update32};
use super::{mpls, Offsets};
use flowcache::actions::{
    ArpFields, EthFields, IcmpFields, Ipv4Fields, Ipv6Fields, Masked, NdFields, PortFields,
    SetField,
};
use flowcache::key::{IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use flowcache::wire;
use wire::{arp, icmp, icmpv6, ipv4, ipv6, sctp, tcp, udp};

// Header lengths and codes from the wire views (flowcache::wire).
const TCP_HEADER_LEN: usize = tcp::Packet::<&[u8]>::HEADER_LEN;
const UDP_HEADER_LEN: usize = udp::Packet::<&[u8]>::HEADER_LEN;
const SCTP_HEADER_LEN: usize = sctp::Packet::<&[u8]>::HEADER_LEN;
const ICMP_HEADER_LEN: usize = icmp::Packet::<&[u8]>::HEADER_LEN;
/// Type, code and checksum: what an ICMPv6 rewrite needs (the 4 data
/// bytes may be absent).
const ICMP6_HEADER_LEN: usize = 4;
const IPV4_HEADER_LEN: usize = ipv4::Packet::<&[u8]>::HEADER_LEN;
const IPV6_HEADER_LEN: usize = ipv6::Packet::<&[u8]>::HEADER_LEN;
const IPV6_EXT_HEADER_LEN: usize = ipv6::ExtHeader::<&[u8]>::HEADER_LEN;
const ARP_ETH_HEADER_LEN: usize = arp::Packet::<&[u8]>::HEADER_LEN;
const ND_MSG_LEN: usize = icmpv6::NeighborMessage::<&[u8]>::HEADER_LEN;
const ND_LLA_OPT_LEN: usize = icmpv6::NdOption::<&[u8]>::HEADER_LEN;
use icmpv6::{ND_OPT_SOURCE_LINKADDR, ND_OPT_TARGET_LINKADDR};

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
    let Some(l3) = ofs.l3_at() else {
        return;
    };
    if l3 + IPV4_HEADER_LEN > d.len() {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    if k.src != 0 {
        let old = be32(d, l3 + ipv4::SRC_ADDR);
        let new = masked32(old, v.src, k.src);
        if new != old {
            set_ipv4_addr(d, ofs, l3, l3 + ipv4::SRC_ADDR, new);
        }
    }
    if k.dst != 0 {
        let old = be32(d, l3 + ipv4::DST_ADDR);
        let new = masked32(old, v.dst, k.dst);
        if new != old {
            set_ipv4_addr(d, ofs, l3, l3 + ipv4::DST_ADDR, new);
        }
    }
    // TOS is the second byte of its 16-bit word, TTL the first.
    if k.tos != 0 {
        let old = d[l3 + ipv4::TOS];
        let new = masked8(old, v.tos, k.tos);
        if new != old {
            let c = recalc_csum16(
                raw16(d, l3 + ipv4::CHECKSUM),
                u16::from_le_bytes([0, old]),
                u16::from_le_bytes([0, new]),
            );
            put_raw16(d, l3 + ipv4::CHECKSUM, c);
            d[l3 + ipv4::TOS] = new;
        }
    }
    if k.ttl != 0 {
        let old = d[l3 + ipv4::TTL];
        let new = masked8(old, v.ttl, k.ttl);
        if new != old {
            let c = recalc_csum16(
                raw16(d, l3 + ipv4::CHECKSUM),
                u16::from_le_bytes([old, 0]),
                u16::from_le_bytes([new, 0]),
            );
            put_raw16(d, l3 + ipv4::CHECKSUM, c);
            d[l3 + ipv4::TTL] = new;
        }
    }
}

/// Rewrites the address at `addr_off`, updating the TCP/UDP checksum when
/// the protocol says so and a header's worth of L4 bytes is there (later
/// fragments included, as OVS), and the IPv4 header checksum.
fn set_ipv4_addr(d: &mut [u8], ofs: &Offsets, l3: usize, addr_off: usize, new: u32) {
    let old_b: [u8; 4] = get(d, addr_off);
    let new_b = new.to_be_bytes();
    let proto = d[l3 + ipv4::PROTOCOL];
    if let Some((l4, l4_size)) = ofs.l4_span(d) {
        if proto == IPPROTO_TCP && l4_size >= TCP_HEADER_LEN {
            update32(d, l4 + tcp::CHECKSUM, old_b, new_b);
        } else if proto == IPPROTO_UDP
            && l4_size >= UDP_HEADER_LEN
            && raw16(d, l4 + udp::CHECKSUM) != 0
        {
            update32(d, l4 + udp::CHECKSUM, old_b, new_b);
            if raw16(d, l4 + udp::CHECKSUM) == 0 {
                put_raw16(d, l4 + udp::CHECKSUM, 0xffff);
            }
        }
    }
    update32(d, l3 + ipv4::CHECKSUM, old_b, new_b);
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
    w.proto = d[l3 + ipv6::NEXT_HEADER];
    loop {
        if !matches!(
            w.proto,
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_AH | IPPROTO_FRAGMENT
        ) {
            return w;
        }
        if remaining < IPV6_EXT_HEADER_LEN {
            return w;
        }
        let ext = ipv6::ExtHeader::new_unchecked(&d[p..p + IPV6_EXT_HEADER_LEN]);
        let len = match w.proto {
            IPPROTO_AH => ext.ah_len(),
            IPPROTO_FRAGMENT => {
                let frag = ipv6::Fragment::new_unchecked(ext.as_bytes());
                w.recalc_csum = frag.offset() == 0 && frag.more_fragments();
                IPV6_EXT_HEADER_LEN
            }
            IPPROTO_ROUTING => {
                if ipv6::Routing::new_unchecked(ext.as_bytes()).segments_left() > 0 {
                    w.rh_present = true;
                    return w;
                }
                ext.generic_len()
            }
            _ => ext.generic_len(),
        };
        w.proto = ext.next_header();
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
    let Some((l4, l4_size)) = ofs.l4_span(d) else {
        return;
    };
    if proto == IPPROTO_TCP && l4_size >= TCP_HEADER_LEN {
        update128(d, l4 + tcp::CHECKSUM, old, new);
    } else if proto == IPPROTO_UDP && l4_size >= UDP_HEADER_LEN {
        if raw16(d, l4 + udp::CHECKSUM) != 0 {
            update128(d, l4 + udp::CHECKSUM, old, new);
            if raw16(d, l4 + udp::CHECKSUM) == 0 {
                put_raw16(d, l4 + udp::CHECKSUM, 0xffff);
            }
        }
    } else if proto == IPPROTO_ICMPV6 && l4_size >= ICMP6_HEADER_LEN {
        update128(d, l4 + icmpv6::CHECKSUM, old, new);
    }
}

#[inline(never)]
fn set_ipv6(d: &mut [u8], ofs: &Offsets, m: &Masked<Ipv6Fields>) {
    let Some(l3) = ofs.l3_at() else {
        return;
    };
    if l3 + IPV6_HEADER_LEN > d.len() {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    let walk = ipv6_walk(d, l3, ofs.l4_at());

    let src = l3 + ipv6::SRC_ADDR;
    let old_src: [u8; 16] = get(d, src);
    let new_src = masked_bytes(&old_src, &v.src, &k.src);
    if new_src != old_src {
        if walk.recalc_csum {
            update_l4_csum128(d, ofs, walk.proto, &old_src, &new_src);
        }
        d[src..src + 16].copy_from_slice(&new_src);
    }
    let dst = l3 + ipv6::DST_ADDR;
    let old_dst: [u8; 16] = get(d, dst);
    let new_dst = masked_bytes(&old_dst, &v.dst, &k.dst);
    if new_dst != old_dst {
        if walk.recalc_csum && !walk.rh_present {
            update_l4_csum128(d, ofs, walk.proto, &old_dst, &new_dst);
        }
        d[dst..dst + 16].copy_from_slice(&new_dst);
    }

    let mut ip = ipv6::Packet::new_unchecked(&mut d[l3..l3 + IPV6_HEADER_LEN]);
    let vtcfl = ip.version_tc_flow();
    let tc = masked8(ip.traffic_class(), v.tclass, k.tclass);
    let fl = masked32(ip.flow_label(), v.label, k.label) & 0x000f_ffff;
    ip.set_version_tc_flow((vtcfl & 0xf000_0000) | (u32::from(tc) << 20) | fl);
    ip.set_hop_limit(masked8(ip.hop_limit(), v.hlimit, k.hlimit));
}

// ---------------------------------------------------------------------------
// TCP, UDP, SCTP ports (OVS `packet_set_{tcp,udp,sctp}_port`).

/// The new source and destination ports (TCP, UDP and SCTP have them at
/// the same offsets).
#[inline]
fn new_ports(d: &[u8], l4: usize, m: &Masked<PortFields>) -> (u16, u16) {
    (
        masked16(be16(d, l4 + udp::SRC_PORT), m.value.src, m.mask.src),
        masked16(be16(d, l4 + udp::DST_PORT), m.value.dst, m.mask.dst),
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
    let Some((l4, l4_size)) = ofs.l4_span(d) else {
        return;
    };
    // OVS `dp_packet_get_tcp_payload`: a whole, sane TCP header.
    if l4_size < TCP_HEADER_LEN {
        return;
    }
    let tcp_len = tcp::Packet::new_unchecked(&d[l4..l4 + TCP_HEADER_LEN]).header_len();
    if tcp_len < TCP_HEADER_LEN || tcp_len > l4_size {
        return;
    }
    let (src, dst) = new_ports(d, l4, m);
    let csum = Some(l4 + tcp::CHECKSUM);
    set_port(d, l4 + tcp::SRC_PORT, src, csum);
    set_port(d, l4 + tcp::DST_PORT, dst, csum);
}

#[inline(never)]
fn set_udp(d: &mut [u8], ofs: &Offsets, m: &Masked<PortFields>) {
    let Some((l4, l4_size)) = ofs.l4_span(d) else {
        return;
    };
    if l4_size < UDP_HEADER_LEN {
        return;
    }
    let (src, dst) = new_ports(d, l4, m);
    // A zero checksum means "none" and stays zero.
    let at_csum = l4 + udp::CHECKSUM;
    let csum = (raw16(d, at_csum) != 0).then_some(at_csum);
    set_port(d, l4 + udp::SRC_PORT, src, csum);
    set_port(d, l4 + udp::DST_PORT, dst, csum);
    if csum.is_some() && raw16(d, at_csum) == 0 {
        put_raw16(d, at_csum, 0xffff);
    }
}

#[inline(never)]
fn set_sctp(d: &mut [u8], ofs: &Offsets, m: &Masked<PortFields>) {
    let Some((l4, l4_size)) = ofs.l4_span(d) else {
        return;
    };
    if l4_size < SCTP_HEADER_LEN {
        return;
    }
    let (src, dst) = new_ports(d, l4, m);
    // Both ports as one 4-byte word.
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
        d[l4 + sctp::CHECKSUM + i] ^= crc_delta[i];
    }
    d[l4..l4 + 4].copy_from_slice(&new);
}

// ---------------------------------------------------------------------------
// ICMP / ICMPv6 type and code (OVS `packet_set_icmp`).

#[inline(never)]
fn set_icmp(d: &mut [u8], ofs: &Offsets, m: &Masked<IcmpFields>) {
    let Some((l4, l4_size)) = ofs.l4_span(d) else {
        return;
    };
    if l4_size < ICMP_HEADER_LEN {
        return;
    }
    // ICMPv6 has type, code and checksum where ICMP has them.
    let (at_type, at_code) = (l4 + icmp::MSG_TYPE, l4 + icmp::MSG_CODE);
    let ty = masked8(d[at_type], m.value.icmp_type, m.mask.icmp_type);
    let code = masked8(d[at_code], m.value.icmp_code, m.mask.icmp_code);
    // Type and code are one 16-bit word of the checksum.
    let orig = raw16(d, at_type);
    let new = u16::from_le_bytes([ty, code]);
    if orig != new {
        d[at_type] = ty;
        d[at_code] = code;
        let c = recalc_csum16(raw16(d, l4 + icmp::CHECKSUM), orig, new);
        put_raw16(d, l4 + icmp::CHECKSUM, c);
    }
}

// ---------------------------------------------------------------------------
// ARP (OVS `set_arp`).

#[inline(never)]
fn set_arp(d: &mut [u8], ofs: &Offsets, m: &Masked<ArpFields>) {
    let Some(l3) = ofs.l3_at() else {
        return;
    };
    if l3 + ARP_ETH_HEADER_LEN > d.len() {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    let mut a = arp::Packet::new_unchecked(&mut d[l3..l3 + ARP_ETH_HEADER_LEN]);
    a.set_operation(masked16(a.operation(), v.op, k.op));
    a.set_sender_hw_addr(masked_bytes(&a.sender_hw_addr(), &v.sha, &k.sha));
    let spa = masked32(u32::from_be_bytes(a.sender_proto_addr()), v.spa, k.spa);
    a.set_sender_proto_addr(spa.to_be_bytes());
    a.set_target_hw_addr(masked_bytes(&a.target_hw_addr(), &v.tha, &k.tha));
    let tpa = masked32(u32::from_be_bytes(a.target_proto_addr()), v.tpa, k.tpa);
    a.set_target_proto_addr(tpa.to_be_bytes());
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
    let len_at = |p: usize| d[p + icmpv6::ND_OPT_LEN_UNITS];
    while remain >= ND_LLA_OPT_LEN as isize && p + ND_LLA_OPT_LEN <= end && len_at(p) != 0 {
        let (ty, len) = (d[p + icmpv6::ND_OPT_TYPE], len_at(p));
        if len == 1 && (ty == ND_OPT_SOURCE_LINKADDR || ty == ND_OPT_TARGET_LINKADDR) {
            return Some((p, ty));
        }
        p += usize::from(len) * ND_LLA_OPT_LEN;
        if p + 2 > end {
            return None;
        }
        remain -= isize::from(len_at(p)) * ND_LLA_OPT_LEN as isize;
    }
    None
}

#[inline(never)]
fn set_nd(d: &mut [u8], ofs: &Offsets, m: &Masked<NdFields>) {
    let Some((l4, l4_size)) = ofs.l4_span(d) else {
        return;
    };
    if l4_size < ND_MSG_LEN {
        return;
    }
    let (v, k) = (&m.value, &m.mask);
    let target = l4 + icmpv6::ND_TARGET_ADDR;
    let old_target: [u8; 16] = get(d, target);
    let new_target = masked_bytes(&old_target, &v.target, &k.target);
    if new_target != old_target {
        update_l4_csum128(d, ofs, IPPROTO_ICMPV6, &old_target, &new_target);
        d[target..target + 16].copy_from_slice(&new_target);
    }
    if let Some((p, ty)) = find_lla_opt(d, l4, l4_size) {
        let lla = p + icmpv6::ND_OPT_LINK_LAYER_ADDR;
        let old: [u8; 6] = get(d, lla);
        let new = if ty == ND_OPT_SOURCE_LINKADDR {
            masked_bytes(&old, &v.sll, &k.sll)
        } else {
            masked_bytes(&old, &v.tll, &k.tll)
        };
        if new != old {
            let c = recalc_csum48(raw16(d, l4 + icmpv6::CHECKSUM), old, new);
            put_raw16(d, l4 + icmpv6::CHECKSUM, c);
            d[lla..lla + 6].copy_from_slice(&new);
        }
    }
}
