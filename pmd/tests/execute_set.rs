//! Masked header rewrites, byte-exact, and OVS's incremental checksum
//! updates checked against from-scratch computations.

mod execute_util;

use execute_util::*;
use flowcache::actions::{
    ArpFields, DpAction, EthFields, IcmpFields, Ipv4Fields, Ipv6Fields, Masked, NdFields,
    PortFields, SetField,
};
use pmd::execute::execute_actions;
use pmd::VecPacket;

/// Runs `set` then output on `frame`; returns the output frame.
fn apply(frame: &[u8], set: SetField) -> Vec<u8> {
    let mut rec = Rec::new();
    let acts = [DpAction::Set(set), DpAction::Output(2)];
    execute_actions(&mut rec, VecPacket::new(frame), &acts, &mut meta(1));
    assert_eq!(rec.outputs.len(), 1);
    rec.outputs.remove(0).1
}

fn full<T: Copy>(value: T, mask: T) -> Masked<T> {
    Masked { value, mask }
}

fn v4(src: Option<[u8; 4]>, dst: Option<[u8; 4]>) -> SetField {
    let mut v = Ipv4Fields::default();
    let mut m = Ipv4Fields::default();
    if let Some(s) = src {
        v.src = u32::from_be_bytes(s);
        m.src = !0;
    }
    if let Some(d) = dst {
        v.dst = u32::from_be_bytes(d);
        m.dst = !0;
    }
    SetField::Ipv4(full(v, m))
}

fn v6(src: Option<[u8; 16]>, dst: Option<[u8; 16]>) -> SetField {
    let mut v = Ipv6Fields::default();
    let mut m = Ipv6Fields::default();
    if let Some(s) = src {
        v.src = s;
        m.src = [0xff; 16];
    }
    if let Some(d) = dst {
        v.dst = d;
        m.dst = [0xff; 16];
    }
    SetField::Ipv6(full(v, m))
}

fn ports(src: Option<u16>, dst: Option<u16>) -> Masked<PortFields> {
    full(
        PortFields {
            src: src.unwrap_or(0),
            dst: dst.unwrap_or(0),
        },
        PortFields {
            src: if src.is_some() { 0xffff } else { 0 },
            dst: if dst.is_some() { 0xffff } else { 0 },
        },
    )
}

const L3: usize = 14;
const L4: usize = 34;
const L4_6: usize = 54;

// ---------------------------------------------------------------------------
// Ethernet.

#[test]
fn eth_masked() {
    let f = udp4(1, 2, b"");
    let out = apply(
        &f,
        SetField::Ethernet(full(
            EthFields {
                src: [0x01, 0, 0, 0, 0, 0],
                dst: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
            },
            EthFields {
                src: [0x01, 0, 0, 0, 0, 0],
                dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
            },
        )),
    );
    let mut want = f.clone();
    want[..6].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
    want[6] |= 1;
    assert_eq!(out, want);
}

// ---------------------------------------------------------------------------
// IPv4.

#[test]
fn ipv4_addresses_update_ip_and_l4_checksums_byte_exact() {
    for build in [udp4 as fn(u16, u16, &[u8]) -> Vec<u8>, tcp4] {
        let f = build(1234, 80, b"payload!");
        let out = apply(&f, v4(Some([192, 168, 7, 9]), Some([172, 16, 0, 254])));
        // The same packet built from scratch with the new addresses.
        let mut want = f.clone();
        want[L3 + 12..L3 + 16].copy_from_slice(&[192, 168, 7, 9]);
        want[L3 + 16..L3 + 20].copy_from_slice(&[172, 16, 0, 254]);
        let c = ipv4_hdr_csum(&want, L3);
        put16(&mut want, L3 + 10, c);
        fix_l4_csum(&mut want);
        assert_eq!(to_hex(&out), to_hex(&want));
    }
}

#[test]
fn wrong_checksums_stay_wrong_by_the_same_amount() {
    let mut f = tcp4(1234, 80, b"data");
    let (s, c) = l4_check(&f);
    assert_eq!(s, c);
    put16(&mut f, L4 + 16, s.wrapping_add(0x0123));
    let ip_c = be16(&f, L3 + 10);
    put16(&mut f, L3 + 10, ip_c ^ 0x0f00);
    let (s0, c0) = l4_check(&f);
    let l4_off = csum_delta(s0, c0);
    let ip_off = csum_delta(be16(&f, L3 + 10), ipv4_hdr_csum(&f, L3));
    assert_ne!(l4_off, 0);

    let out = apply(&f, v4(Some([1, 2, 3, 4]), None));
    let out = apply(&out, SetField::Tcp(ports(Some(4321), Some(8080))));
    let (s1, c1) = l4_check(&out);
    assert_eq!(csum_delta(s1, c1), l4_off);
    assert_eq!(
        csum_delta(be16(&out, L3 + 10), ipv4_hdr_csum(&out, L3)),
        ip_off
    );
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let mut f = udp4(1234, 53, b"abc");
    put16(&mut f, L4 + 6, 0);
    let out = apply(&f, v4(Some([10, 9, 9, 9]), None));
    assert_eq!(be16(&out, L4 + 6), 0);
    assert_eq!(be16(&out, L3 + 10), ipv4_hdr_csum(&out, L3));
    let out = apply(&f, SetField::Udp(ports(Some(4321), Some(99))));
    assert_eq!(be16(&out, L4 + 6), 0);
    assert_eq!(be16(&out, L4), 4321);
    assert_eq!(be16(&out, L4 + 2), 99);
    // IPv6 as well.
    let mut f6 = l4_6(17, &udp_hdr(1, 2, b"xyz"));
    put16(&mut f6, L4_6 + 6, 0);
    let out = apply(&f6, v6(Some(IP6_B), None));
    assert_eq!(be16(&out, L4_6 + 6), 0);
}

#[test]
fn udp_checksum_result_zero_becomes_ffff() {
    // Find a destination port for which the correct checksum is 0.
    let f = udp4(1234, 53, b"zero?");
    let mut found = false;
    for p in 0..=u16::MAX {
        let mut g = f.clone();
        put16(&mut g, L4 + 2, p);
        let (_, correct) = l4_check(&g);
        if correct != 0 {
            continue;
        }
        let out = apply(&f, SetField::Udp(ports(None, Some(p))));
        assert_eq!(be16(&out, L4 + 2), p);
        assert_eq!(be16(&out, L4 + 6), 0xffff, "port {p}");
        found = true;
        break;
    }
    assert!(found);
    // Same through an address rewrite.
    let mut found = false;
    for last in 0..=255u8 {
        for third in 0..=255u8 {
            let mut g = f.clone();
            g[L3 + 14] = third;
            g[L3 + 15] = last;
            if l4_check(&g).1 != 0 {
                continue;
            }
            let out = apply(&f, v4(Some([10, 0, third, last]), None));
            assert_eq!(be16(&out, L4 + 6), 0xffff);
            found = true;
            break;
        }
        if found {
            break;
        }
    }
    assert!(found);
}

#[test]
fn ipv4_tos_and_ttl_masked() {
    let ip = ipv4(17, IP_A, IP_B, 0x03, 64, 0, &udp_hdr(1, 2, b"hello"));
    let mut f = eth(MAC_B, MAC_A, 0x0800, &ip);
    fix_l4_csum(&mut f);
    let udp_before = f[L4..].to_vec();
    let out = apply(
        &f,
        SetField::Ipv4(full(
            Ipv4Fields {
                tos: 0x68,
                ttl: 9,
                ..Default::default()
            },
            Ipv4Fields {
                tos: 0xfc,
                ttl: 0xff,
                ..Default::default()
            },
        )),
    );
    assert_eq!(out[L3 + 1], 0x6b);
    assert_eq!(out[L3 + 8], 9);
    assert_eq!(be16(&out, L3 + 10), ipv4_hdr_csum(&out, L3));
    assert_eq!(out[L4..], udp_before[..]);
    // ECN only.
    let out = apply(
        &f,
        SetField::Ipv4(full(
            Ipv4Fields {
                tos: 0x2,
                ..Default::default()
            },
            Ipv4Fields {
                tos: 0x3,
                ..Default::default()
            },
        )),
    );
    assert_eq!(out[L3 + 1], 0x02);
    assert_eq!(be16(&out, L3 + 10), ipv4_hdr_csum(&out, L3));
}

#[test]
fn ipv4_address_rewrite_leaves_icmp_alone() {
    let icmp = [8, 0, 0, 0, 0, 1, 0, 1, b'a', b'b'];
    let ip = ipv4(1, IP_A, IP_B, 0, 64, 0, &icmp);
    let mut f = eth(MAC_B, MAC_A, 0x0800, &ip);
    fix_l4_csum(&mut f);
    let out = apply(&f, v4(Some([8, 8, 8, 8]), None));
    assert_eq!(out[L4..], f[L4..]);
    assert_eq!(be16(&out, L3 + 10), ipv4_hdr_csum(&out, L3));
}

/// The ones-complement sum of a checksum field and the address it covers:
/// invariant under a correct incremental update.
fn sum_with(f: &[u8], csum_off: usize, addr_off: usize) -> u16 {
    let mut b = f[csum_off..csum_off + 2].to_vec();
    b.extend_from_slice(&f[addr_off..addr_off + 4]);
    fold(ones_sum(0, &b))
}

#[test]
fn ipv4_later_fragment_patches_l4_checksum_bytes() {
    // A later fragment (offset 100*8) of a UDP datagram: bytes 6..8 of the
    // fragment payload are updated as if they were a UDP checksum.
    let payload: Vec<u8> = (0..24u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(1))
        .collect();
    let ip = ipv4(17, IP_A, IP_B, 0, 64, 100, &payload);
    let f = eth(MAC_B, MAC_A, 0x0800, &ip);
    let out = apply(&f, v4(Some([10, 1, 2, 3]), None));
    assert_ne!(out[L4 + 6..L4 + 8], f[L4 + 6..L4 + 8]);
    let a = sum_with(&f, L4 + 6, L3 + 12);
    let b = sum_with(&out, L4 + 6, L3 + 12);
    assert!(csum_eq(a, b), "{a:04x} {b:04x}");
    assert_eq!(be16(&out, L3 + 10), ipv4_hdr_csum(&out, L3));
    assert_eq!(out[L4..L4 + 6], f[L4..L4 + 6]);
    assert_eq!(out[L4 + 8..], f[L4 + 8..]);

    // TCP: bytes 16..18, but only with at least 20 bytes of L4.
    let ip = ipv4(6, IP_A, IP_B, 0, 64, 100, &payload);
    let f = eth(MAC_B, MAC_A, 0x0800, &ip);
    let out = apply(&f, v4(None, Some([10, 1, 2, 3])));
    assert!(csum_eq(
        sum_with(&f, L4 + 16, L3 + 16),
        sum_with(&out, L4 + 16, L3 + 16)
    ));
    assert_ne!(out[L4 + 16..L4 + 18], f[L4 + 16..L4 + 18]);
    let ip = ipv4(6, IP_A, IP_B, 0, 64, 100, &payload[..19]);
    let f = eth(MAC_B, MAC_A, 0x0800, &ip);
    let out = apply(&f, v4(None, Some([10, 1, 2, 3])));
    assert_eq!(out[L4..], f[L4..]);
    // UDP with fewer than 8 bytes: not touched either.
    let ip = ipv4(17, IP_A, IP_B, 0, 64, 100, &payload[..7]);
    let f = eth(MAC_B, MAC_A, 0x0800, &ip);
    let out = apply(&f, v4(None, Some([10, 1, 2, 3])));
    assert_eq!(out[L4..], f[L4..]);
}

#[test]
fn padded_frame_keeps_padding_and_uses_ip_length() {
    let mut f = udp4(1234, 53, b"pad");
    let real_len = f.len();
    f.extend_from_slice(&[0u8; 12]);
    let out = apply(&f, v4(Some([10, 7, 7, 7]), None));
    let out = apply(&out, SetField::Udp(ports(Some(7), None)));
    assert_eq!(out.len(), f.len());
    assert_eq!(out[real_len..], [0u8; 12]);
    let (s, c) = l4_check(&out[..real_len]);
    assert_eq!(s, c);
}

#[test]
fn set_on_missing_or_short_headers_does_nothing() {
    // Bare Ethernet header.
    let f = eth(MAC_B, MAC_A, 0x0800, &[]);
    assert_eq!(apply(&f, v4(Some([1, 1, 1, 1]), None)), f);
    assert_eq!(apply(&f, SetField::Udp(ports(Some(1), None))), f);
    // IPv4 with IHL 4: invalid, no l4.
    let mut f = udp4(1, 2, b"abc");
    f[L3] = 0x44;
    assert_eq!(apply(&f, SetField::Udp(ports(Some(9), Some(9)))), f);
    // TCP with a data offset beyond the segment.
    let mut f = tcp4(1, 2, b"");
    f[L4 + 12] = 0xf0;
    assert_eq!(apply(&f, SetField::Tcp(ports(Some(9), None))), f);
    // ICMP with 4 bytes only.
    let ip = ipv4(1, IP_A, IP_B, 0, 64, 0, &[8, 0, 0xf7, 0xff]);
    let f = eth(MAC_B, MAC_A, 0x0800, &ip);
    let icmp = full(
        IcmpFields {
            icmp_type: 0,
            icmp_code: 0,
        },
        IcmpFields {
            icmp_type: 0xff,
            icmp_code: 0xff,
        },
    );
    assert_eq!(apply(&f, SetField::Icmpv4(icmp)), f);
}

// ---------------------------------------------------------------------------
// IPv6.

#[test]
fn ipv6_addresses_update_udp_tcp_icmpv6_checksums_byte_exact() {
    let icmp6 = [128, 0, 0, 0, 0, 1, 0, 1, b'a', b'b', b'c', b'd'];
    let frames = [
        l4_6(17, &udp_hdr(1234, 53, b"hello")),
        l4_6(6, &tcp_hdr(1234, 80, b"")),
        l4_6(58, &icmp6),
    ];
    let new_src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc2, 0xfc];
    let new_dst = [
        0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    for f in frames {
        let out = apply(&f, v6(Some(new_src), Some(new_dst)));
        let mut want = f.clone();
        want[22..38].copy_from_slice(&new_src);
        want[38..54].copy_from_slice(&new_dst);
        fix_l4_csum(&mut want);
        assert_eq!(to_hex(&out), to_hex(&want));
    }
}

#[test]
fn ipv6_label_tclass_hlimit_masked() {
    let f = l4_6(17, &udp_hdr(1, 2, b""));
    let out = apply(
        &f,
        SetField::Ipv6(full(
            Ipv6Fields {
                label: 0xf9199,
                tclass: 0xb8,
                hlimit: 200,
                ..Default::default()
            },
            Ipv6Fields {
                label: 0xfffff,
                tclass: 0xfc,
                hlimit: 0xff,
                ..Default::default()
            },
        )),
    );
    let w = u32::from_be_bytes([out[14], out[15], out[16], out[17]]);
    assert_eq!(w >> 28, 6);
    assert_eq!((w >> 20) & 0xff, 0xb8);
    assert_eq!(w & 0xfffff, 0xf9199);
    assert_eq!(out[21], 200);
    assert_eq!(out[22..], f[22..]);
}

/// An IPv6 frame whose UDP header follows one extension header `ext`
/// (next header 17); the UDP checksum is right.
fn ipv6_ext(ext_type: u8, ext: &[u8]) -> Vec<u8> {
    let udp = udp_hdr(1234, 53, b"ext");
    let mut payload = ext.to_vec();
    payload.extend_from_slice(&udp);
    let ip = ipv6(ext_type, IP6_A, IP6_B, 0, 0, 64, &payload);
    let mut f = eth(MAC_B, MAC_A, 0x86dd, &ip);
    let l4 = 54 + ext.len();
    let c = l4_csum(&f, 14, l4, udp.len(), 17, 6);
    put16(&mut f, l4 + 6, c);
    f
}

#[test]
fn ipv6_fragments_and_routing_headers() {
    // First fragment (offset 0, M=1): updated.
    let f = ipv6_ext(44, &[17, 0, 0x00, 0x01, 0, 0, 0, 7]);
    let out = apply(&f, v6(Some(IP6_B), None));
    let l4 = 62;
    assert_eq!(be16(&out, l4 + 6), l4_csum(&out, 14, l4, 11, 17, 6));
    // Later fragment: not updated.
    let f = ipv6_ext(44, &[17, 0, 0x00, 0x08, 0, 0, 0, 7]);
    let out = apply(&f, v6(Some(IP6_B), None));
    assert_eq!(out[l4..], f[l4..]);
    // Atomic fragment (offset 0, M=0): OVS does not update either.
    let f = ipv6_ext(44, &[17, 0, 0x00, 0x00, 0, 0, 0, 7]);
    let out = apply(&f, v6(Some(IP6_B), None));
    assert_eq!(out[l4..], f[l4..]);
    // Hop-by-hop options: updated.
    let f = ipv6_ext(0, &[17, 0, 1, 4, 0, 0, 0, 0]);
    let out = apply(&f, v6(Some(IP6_B), Some(IP6_A)));
    assert_eq!(be16(&out, l4 + 6), l4_csum(&out, 14, l4, 11, 17, 6));
    // Routing header with segments left: neither address updates the
    // checksum (OVS stops at the routing header).
    let rh = [17, 0, 0, 1, 0, 0, 0, 0];
    let f = ipv6_ext(43, &rh);
    let out = apply(&f, v6(Some(IP6_B), Some(IP6_A)));
    assert_eq!(out[l4..], f[l4..]);
    assert_eq!(out[22..38], IP6_B);
    // Routing header with no segments left: both update.
    let rh = [17, 0, 0, 0, 0, 0, 0, 0];
    let f = ipv6_ext(43, &rh);
    let out = apply(&f, v6(Some(IP6_B), Some(IP6_A)));
    assert_eq!(be16(&out, l4 + 6), l4_csum(&out, 14, l4, 11, 17, 6));
}

// ---------------------------------------------------------------------------
// L4 ports.

#[test]
fn tcp_and_udp_ports_byte_exact() {
    let f = tcp4(1234, 80, b"GET /");
    let out = apply(&f, SetField::Tcp(ports(Some(4321), Some(8080))));
    let want = tcp4(4321, 8080, b"GET /");
    assert_eq!(to_hex(&out), to_hex(&want));

    let f = udp4(1234, 53, b"q");
    let out = apply(&f, SetField::Udp(ports(None, Some(5353))));
    assert_eq!(to_hex(&out), to_hex(&udp4(1234, 5353, b"q")));

    // Masked: only the low byte of the source port.
    let out = apply(
        &f,
        SetField::Udp(full(
            PortFields {
                src: 0x00ff,
                dst: 0,
            },
            PortFields {
                src: 0x00ff,
                dst: 0,
            },
        )),
    );
    assert_eq!(be16(&out, L4), 0x04ff);
    let (s, c) = l4_check(&out);
    assert_eq!(s, c);

    // IPv6 UDP.
    let f = l4_6(17, &udp_hdr(1234, 53, b"hello"));
    let out = apply(&f, SetField::Udp(ports(Some(9999), None)));
    assert_eq!(
        to_hex(&out),
        to_hex(&l4_6(17, &udp_hdr(9999, 53, b"hello")))
    );
}

fn sctp4(sport: u16, dport: u16, pad: usize) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    // A DATA chunk.
    s.extend_from_slice(&[
        0, 3, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'd', b'a', b't', b'a',
    ]);
    let ip = ipv4(132, IP_A, IP_B, 0, 64, 0, &s);
    let mut f = eth(MAC_B, MAC_A, 0x0800, &ip);
    let c = sctp_csum(&f, L4, s.len());
    f[L4 + 8..L4 + 12].copy_from_slice(&c);
    f.extend(std::iter::repeat_n(0u8, pad));
    f
}

#[test]
fn sctp_ports_update_crc32c() {
    let f = sctp4(5000, 6000, 0);
    let len = f.len() - L4;
    let out = apply(&f, SetField::Sctp(ports(Some(5001), Some(7))));
    assert_eq!(be16(&out, L4), 5001);
    assert_eq!(be16(&out, L4 + 2), 7);
    assert_eq!(out[L4 + 8..L4 + 12], sctp_csum(&out, L4, len));
    assert_eq!(to_hex(&out), to_hex(&sctp4(5001, 7, 0)));

    // Padding after the IP datagram is not part of the CRC.
    let f = sctp4(5000, 6000, 10);
    let out = apply(&f, SetField::Sctp(ports(None, Some(80))));
    assert_eq!(out[L4 + 8..L4 + 12], sctp_csum(&out, L4, len));
    assert_eq!(out.len(), f.len());

    // A wrong CRC stays wrong by the same XOR.
    let mut f = sctp4(5000, 6000, 0);
    f[L4 + 9] ^= 0x5a;
    let off: Vec<u8> = f[L4 + 8..L4 + 12]
        .iter()
        .zip(sctp_csum(&f, L4, len))
        .map(|(a, b)| a ^ b)
        .collect();
    let out = apply(&f, SetField::Sctp(ports(Some(1), Some(2))));
    let off2: Vec<u8> = out[L4 + 8..L4 + 12]
        .iter()
        .zip(sctp_csum(&out, L4, len))
        .map(|(a, b)| a ^ b)
        .collect();
    assert_eq!(off, off2);
}

// ---------------------------------------------------------------------------
// ICMP.

#[test]
fn icmp_type_code_fix_the_checksum() {
    let icmp = [8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    let ip = ipv4(1, IP_A, IP_B, 0, 64, 0, &icmp);
    let mut f = eth(MAC_B, MAC_A, 0x0800, &ip);
    fix_l4_csum(&mut f);
    let set = |t: u8, c: u8| {
        full(
            IcmpFields {
                icmp_type: t,
                icmp_code: c,
            },
            IcmpFields {
                icmp_type: 0xff,
                icmp_code: 0xff,
            },
        )
    };
    let out = apply(&f, SetField::Icmpv4(set(0, 3)));
    let mut want = f.clone();
    want[L4] = 0;
    want[L4 + 1] = 3;
    fix_l4_csum(&mut want);
    assert_eq!(to_hex(&out), to_hex(&want));

    let f6 = l4_6(58, &[128, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4]);
    let out = apply(&f6, SetField::Icmpv6(set(129, 0)));
    let mut want = f6.clone();
    want[L4_6] = 129;
    fix_l4_csum(&mut want);
    assert_eq!(to_hex(&out), to_hex(&want));
}

// ---------------------------------------------------------------------------
// ARP, ND, MPLS.

fn arp_frame() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&MAC_A);
    a.extend_from_slice(&IP_A);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&IP_B);
    eth([0xff; 6], MAC_A, 0x0806, &a)
}

#[test]
fn arp_fields_masked() {
    let f = arp_frame();
    let out = apply(
        &f,
        SetField::Arp(full(
            ArpFields {
                op: 2,
                spa: 0x0a00_0063,
                tpa: 0,
                sha: [0, 0, 0, 0, 0, 0x2a],
                tha: [0xff, 0, 0, 0, 0, 0],
            },
            ArpFields {
                op: 0xffff,
                spa: 0x0000_00ff,
                tpa: 0,
                sha: [0xff; 6],
                tha: [0xf0, 0, 0, 0, 0, 0],
            },
        )),
    );
    let mut want = f.clone();
    want[21] = 2;
    want[22..28].copy_from_slice(&[0, 0, 0, 0, 0, 0x2a]);
    want[31] = 0x63;
    want[32] = 0xf0;
    assert_eq!(to_hex(&out), to_hex(&want));
}

/// A neighbour solicitation (type 135) or advertisement (136) with one
/// link-layer address option (1 = SLL, 2 = TLL), checksum right.
fn nd_frame(icmp_type: u8, opt_type: u8, extra_opts: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0, 0x60, 0, 0, 0];
    m.extend_from_slice(&IP6_B);
    m.extend_from_slice(extra_opts);
    m.extend_from_slice(&[opt_type, 1, 0, 0, 0, 0, 0, 0x11]);
    let ip = ipv6(58, IP6_A, IP6_B, 0, 0, 255, &m);
    let mut f = eth(MAC_B, MAC_A, 0x86dd, &ip);
    fix_l4_csum(&mut f);
    f
}

#[test]
fn nd_target_and_lla_update_icmpv6_checksum() {
    let target = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
    let set = full(
        NdFields {
            target,
            sll: [0, 0, 0, 0, 0, 0x5a],
            tll: [0, 0, 0, 0, 0, 0x7b],
        },
        NdFields {
            target: [0xff; 16],
            sll: [0xff; 6],
            tll: [0xff; 6],
        },
    );
    for (ty, opt, mac) in [(135u8, 1u8, 0x5au8), (136, 2, 0x7b)] {
        let f = nd_frame(ty, opt, &[]);
        let out = apply(&f, SetField::Nd(set));
        let mut want = f.clone();
        want[L4_6 + 8..L4_6 + 24].copy_from_slice(&target);
        want[L4_6 + 24 + 7] = mac;
        fix_l4_csum(&mut want);
        assert_eq!(to_hex(&out), to_hex(&want));
    }
    // An unrelated option (nonce, type 14) first: skipped.
    let f = nd_frame(135, 1, &[14, 1, 1, 2, 3, 4, 5, 6]);
    let out = apply(&f, SetField::Nd(set));
    assert_eq!(out[L4_6 + 32 + 7], 0x5a);
    let (s, c) = l4_check(&out);
    assert_eq!(s, c);
}

#[test]
fn mpls_set_masked_top_label() {
    let lse = (16u32 << 12) | (3 << 9) | (1 << 8) | 64;
    let inner = ipv4(17, IP_A, IP_B, 0, 64, 0, &udp_hdr(1, 2, b""));
    let mut payload = lse.to_be_bytes().to_vec();
    payload.extend_from_slice(&inner);
    let f = eth(MAC_B, MAC_A, 0x8847, &payload);
    let out = apply(&f, SetField::Mpls(full(999 << 12 | 63, 0xffff_f000 | 0xff)));
    let got = u32::from_be_bytes([out[14], out[15], out[16], out[17]]);
    assert_eq!(got, (999 << 12) | (3 << 9) | (1 << 8) | 63);
    assert_eq!(out[18..], f[18..]);
    // Not MPLS: nothing happens.
    let f = udp4(1, 2, b"");
    assert_eq!(apply(&f, SetField::Mpls(full(5, !0))), f);
}
