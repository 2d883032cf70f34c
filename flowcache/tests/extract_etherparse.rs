//! Property test: random well-formed Ethernet/VLAN/IPv4|IPv6/TCP|UDP|ICMP
//! packets serialized by `etherparse`'s `PacketBuilder`; the key must hold
//! exactly the values given to the builder (and `etherparse`'s own parser
//! must agree on the header layout).

use etherparse::{
    DoubleVlanHeader, EtherType, IpFragOffset, IpHeaders, IpNumber, Ipv4Dscp, Ipv4Ecn,
    Ipv4Extensions, Ipv4Header, Ipv4Options, Ipv6Extensions, Ipv6FlowLabel, Ipv6FragmentHeader,
    Ipv6Header, Ipv6RawExtHeader, PacketBuilder, SingleVlanHeader, SlicedPacket, TcpHeader,
    VlanHeader, VlanId, VlanPcp,
};
use flowcache::extract::{extract, extract_with_vlan_limit, PacketMeta};
use flowcache::key::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Tag {
    pcp: u8,
    dei: bool,
    vid: u16,
}

#[derive(Clone, Debug)]
enum L3 {
    V4 {
        dscp: u8,
        ecn: u8,
        ttl: u8,
        src: [u8; 4],
        dst: [u8; 4],
        df: bool,
        mf: bool,
        frag_off: u16,
        opt_words: usize,
    },
    V6 {
        tc: u8,
        label: u32,
        hlim: u8,
        src: [u8; 16],
        dst: [u8; 16],
        /// Hop-by-hop header with a payload of 6 + 8n bytes.
        hbh: Option<usize>,
        /// Fragment header (offset, M).
        frag: Option<(u16, bool)>,
    },
}

#[derive(Clone, Debug)]
enum L4 {
    Udp(u16, u16),
    Tcp {
        sp: u16,
        dp: u16,
        flags: u16,
        opt_words: usize,
    },
    Icmp(u8, u8),
}

#[derive(Clone, Debug)]
struct Spec {
    src: [u8; 6],
    dst: [u8; 6],
    tags: Vec<Tag>,
    l3: L3,
    l4: L4,
    payload: Vec<u8>,
}

fn tag() -> impl Strategy<Value = Tag> {
    (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| Tag { pcp, dei, vid })
}

fn frag_off() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(0u16), 1 => 1u16..0x2000]
}

fn l3() -> impl Strategy<Value = L3> {
    prop_oneof![
        (
            (0u8..64, 0u8..4, any::<u8>()),
            (any::<[u8; 4]>(), any::<[u8; 4]>()),
            (
                any::<bool>(),
                prop::bool::weighted(0.2),
                frag_off(),
                0usize..=10
            ),
        )
            .prop_map(
                |((dscp, ecn, ttl), (src, dst), (df, mf, frag_off, opt_words))| L3::V4 {
                    dscp,
                    ecn,
                    ttl,
                    src,
                    dst,
                    df,
                    mf,
                    frag_off,
                    opt_words,
                }
            ),
        (
            (any::<u8>(), 0u32..0x10_0000, any::<u8>()),
            (any::<[u8; 16]>(), any::<[u8; 16]>()),
            (
                prop::option::weighted(0.3, 0usize..4),
                prop::option::weighted(0.3, (frag_off(), any::<bool>())),
            ),
        )
            .prop_map(|((tc, label, hlim), (src, dst), (hbh, frag))| L3::V6 {
                tc,
                label,
                hlim,
                src,
                dst,
                hbh,
                frag,
            }),
    ]
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(s, d)| L4::Udp(s, d)),
        (any::<u16>(), any::<u16>(), 0u16..0x200, 0usize..=10).prop_map(
            |(sp, dp, flags, opt_words)| L4::Tcp {
                sp,
                dp,
                flags,
                opt_words
            }
        ),
        (any::<u8>(), any::<u8>()).prop_map(|(t, c)| L4::Icmp(t, c)),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        prop::collection::vec(tag(), 0..=2),
        l3(),
        l4(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(src, dst, tags, l3, mut l4, payload)| {
            // Keep ICMPv6 clear of ND (its body would be the random payload;
            // ND is covered by the header tests).
            if let (L3::V6 { .. }, L4::Icmp(t, _)) = (&l3, &mut l4) {
                if *t == 135 || *t == 136 {
                    *t = 128;
                }
            }
            Spec {
                src,
                dst,
                tags,
                l3,
                l4,
                payload,
            }
        })
}

fn single(t: &Tag) -> SingleVlanHeader {
    SingleVlanHeader {
        pcp: VlanPcp::try_new(t.pcp).unwrap(),
        drop_eligible_indicator: t.dei,
        vlan_id: VlanId::try_new(t.vid).unwrap(),
        ether_type: EtherType(0),
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(s.src, s.dst);
    let ip = match &s.l3 {
        L3::V4 {
            dscp,
            ecn,
            ttl,
            src,
            dst,
            df,
            mf,
            frag_off,
            opt_words,
        } => {
            let mut h = Ipv4Header::new(0, *ttl, IpNumber(0), *src, *dst).unwrap();
            h.dscp = Ipv4Dscp::try_new(*dscp).unwrap();
            h.ecn = Ipv4Ecn::try_new(*ecn).unwrap();
            h.dont_fragment = *df;
            h.more_fragments = *mf;
            h.fragment_offset = IpFragOffset::try_new(*frag_off).unwrap();
            h.options = Ipv4Options::try_from(&vec![1u8; opt_words * 4][..]).unwrap();
            IpHeaders::Ipv4(h, Ipv4Extensions::default())
        }
        L3::V6 {
            tc,
            label,
            hlim,
            src,
            dst,
            hbh,
            frag,
        } => {
            let h = Ipv6Header {
                traffic_class: *tc,
                flow_label: Ipv6FlowLabel::try_new(*label).unwrap(),
                payload_length: 0,
                next_header: IpNumber(0),
                hop_limit: *hlim,
                source: *src,
                destination: *dst,
            };
            let mut exts = Ipv6Extensions::default();
            if let Some(n) = hbh {
                exts.hop_by_hop_options =
                    Some(Ipv6RawExtHeader::new_raw(IpNumber(0), &vec![0u8; 6 + 8 * n]).unwrap());
            }
            if let Some((off, m)) = frag {
                exts.fragment = Some(Ipv6FragmentHeader::new(
                    IpNumber(0),
                    IpFragOffset::try_new(*off).unwrap(),
                    *m,
                    0x1234,
                ));
            }
            IpHeaders::Ipv6(h, exts)
        }
    };
    let mut out = Vec::new();
    macro_rules! finish {
        ($step:expr) => {{
            let step = $step.ip(ip);
            match &s.l4 {
                L4::Udp(sp, dp) => step.udp(*sp, *dp).write(&mut out, &s.payload),
                L4::Tcp {
                    sp,
                    dp,
                    flags,
                    opt_words,
                } => {
                    let mut t = TcpHeader::new(*sp, *dp, 1, 1000);
                    t.fin = flags & 0x001 != 0;
                    t.syn = flags & 0x002 != 0;
                    t.rst = flags & 0x004 != 0;
                    t.psh = flags & 0x008 != 0;
                    t.ack = flags & 0x010 != 0;
                    t.urg = flags & 0x020 != 0;
                    t.ece = flags & 0x040 != 0;
                    t.cwr = flags & 0x080 != 0;
                    t.ns = flags & 0x100 != 0;
                    t.set_options_raw(&vec![1u8; opt_words * 4]).unwrap();
                    step.tcp_header(t).write(&mut out, &s.payload)
                }
                L4::Icmp(ty, code) => match &s.l3 {
                    L3::V4 { .. } => step
                        .icmpv4_raw(*ty, *code, [1, 2, 3, 4])
                        .write(&mut out, &s.payload),
                    L3::V6 { .. } => step
                        .icmpv6_raw(*ty, *code, [1, 2, 3, 4])
                        .write(&mut out, &s.payload),
                },
            }
            .unwrap()
        }};
    }
    match s.tags.as_slice() {
        [] => finish!(b),
        [t] => finish!(b.vlan(VlanHeader::Single(single(t)))),
        [o, i, ..] => finish!(b.vlan(VlanHeader::Double(DoubleVlanHeader {
            outer: single(o),
            inner: single(i),
        }))),
    }
    // etherparse 0.16 writes the IPv6 fragment header's offset/M word in the
    // wrong layout (low offset bits unshifted, M as bit 7 of the second
    // byte); rewrite it as RFC 8200 says: offset << 3 | M.
    if let L3::V6 {
        hbh,
        frag: Some((off, m)),
        ..
    } = &s.l3
    {
        let at = 14 + 4 * s.tags.len() + 40 + hbh.map_or(0, |n| 8 + 8 * n) + 2;
        let offlg = off << 3 | u16::from(*m);
        out[at..at + 2].copy_from_slice(&offlg.to_be_bytes());
    }
    out
}

fn tci(t: &Tag) -> u16 {
    u16::from(t.pcp) << 13 | t.vid | VLAN_CFI
}

/// Checks the key of `frame` parsed with room for every tag.
fn check_full(s: &Spec, frame: &[u8]) -> Result<(), TestCaseError> {
    let mut k = FlowKey::all_ones();
    let meta = PacketMeta {
        in_port: 4,
        ..Default::default()
    };
    let o = extract_with_vlan_limit(frame, &meta, &mut k, 2).unwrap();
    prop_assert_eq!(k.in_port, 4);
    prop_assert_eq!((k.metadata, k.regs), (0, [0; 16]));
    prop_assert_eq!(k.dl_src, s.src);
    prop_assert_eq!(k.dl_dst, s.dst);
    let tpids: &[u16] = match s.tags.len() {
        0 => &[],
        1 => &[0x8100],
        _ => &[0x88a8, 0x8100],
    };
    for (i, got) in k.vlans.iter().enumerate() {
        let want = match (s.tags.get(i), tpids.get(i)) {
            (Some(t), Some(&tpid)) => VlanTag { tpid, tci: tci(t) },
            _ => VlanTag::default(),
        };
        prop_assert_eq!(*got, want);
    }
    let l3 = 14 + 4 * s.tags.len();
    prop_assert_eq!(usize::from(o.l3), l3);
    prop_assert_eq!(o.l2_5, flowcache::extract::NO_OFFSET);

    let l4_proto = match (&s.l4, &s.l3) {
        (L4::Udp(..), _) => IPPROTO_UDP,
        (L4::Tcp { .. }, _) => IPPROTO_TCP,
        (L4::Icmp(..), L3::V4 { .. }) => IPPROTO_ICMP,
        (L4::Icmp(..), L3::V6 { .. }) => IPPROTO_ICMPV6,
    };
    let later;
    match &s.l3 {
        L3::V4 {
            dscp,
            ecn,
            ttl,
            src,
            dst,
            mf,
            frag_off,
            opt_words,
            ..
        } => {
            prop_assert_eq!(k.dl_type, ETH_TYPE_IPV4);
            prop_assert_eq!(k.nw_src, u32::from_be_bytes(*src));
            prop_assert_eq!(k.nw_dst, u32::from_be_bytes(*dst));
            prop_assert_eq!(k.nw_tos, dscp << 2 | ecn);
            prop_assert_eq!(k.nw_ttl, *ttl);
            prop_assert_eq!(k.nw_proto, l4_proto);
            later = *frag_off != 0;
            let frag = if later {
                FRAG_ANY | FRAG_LATER
            } else if *mf {
                FRAG_ANY
            } else {
                0
            };
            prop_assert_eq!(k.nw_frag, frag);
            prop_assert_eq!(k.ipv6_src, [0; 16]);
            prop_assert_eq!(usize::from(o.l4), l3 + 20 + 4 * opt_words);
        }
        L3::V6 {
            tc,
            label,
            hlim,
            src,
            dst,
            hbh,
            frag,
        } => {
            prop_assert_eq!(k.dl_type, ETH_TYPE_IPV6);
            prop_assert_eq!(k.ipv6_src, *src);
            prop_assert_eq!(k.ipv6_dst, *dst);
            prop_assert_eq!(k.ipv6_label, *label);
            prop_assert_eq!(k.nw_tos, *tc);
            prop_assert_eq!(k.nw_ttl, *hlim);
            prop_assert_eq!((k.nw_src, k.nw_dst), (0, 0));
            later = matches!(frag, Some((off, _)) if *off != 0);
            let nw_frag = match frag {
                Some((off, _)) if *off != 0 => FRAG_ANY | FRAG_LATER,
                Some((_, true)) => FRAG_ANY,
                _ => 0,
            };
            prop_assert_eq!(k.nw_frag, nw_frag);
            prop_assert_eq!(k.nw_proto, if later { 44 } else { l4_proto });
            let ext = hbh.map_or(0, |n| 8 + 8 * n) + frag.map_or(0, |_| 8);
            prop_assert_eq!(usize::from(o.l4), l3 + 40 + ext);
        }
    }
    let (tp_src, tp_dst, flags) = if later {
        (0, 0, 0)
    } else {
        match s.l4 {
            L4::Udp(sp, dp) => (sp, dp, 0),
            L4::Tcp { sp, dp, flags, .. } => (sp, dp, flags),
            L4::Icmp(t, c) => (u16::from(t), u16::from(c), 0),
        }
    };
    prop_assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (tp_src, tp_dst, flags));
    prop_assert_eq!(
        (k.nd_target, k.arp_sha, k.arp_tha),
        ([0; 16], [0; 6], [0; 6])
    );
    prop_assert_eq!(k.mpls_lse, [0, 0]);

    // etherparse's parser agrees on where the transport header starts.
    let sliced = SlicedPacket::from_ethernet(frame).unwrap();
    if let Some(net) = &sliced.net {
        let ip_payload = match net {
            etherparse::NetSlice::Ipv4(v4) => v4.payload().payload,
            etherparse::NetSlice::Ipv6(v6) => v6.payload().payload,
        };
        prop_assert_eq!(
            usize::from(o.l4),
            frame.len() - ip_payload.len(),
            "l4 offset vs etherparse"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn built_packets_parse_to_their_fields(s in spec()) {
        let frame = build(&s);
        check_full(&s, &frame)?;

        // Default vlan-limit 1: same as above for 0 or 1 tag; with two tags
        // only the outer one is parsed and the inner TPID is the dl_type.
        let mut k = FlowKey::default();
        let o = extract(&frame, &PacketMeta::default(), &mut k).unwrap();
        if s.tags.len() == 2 {
            prop_assert_eq!(k.vlans[0].tci, tci(&s.tags[0]));
            prop_assert_eq!(k.vlans[1], VlanTag::default());
            prop_assert_eq!(k.dl_type, ETH_TYPE_VLAN);
            prop_assert_eq!(o.l3, 18);
            prop_assert_eq!(o.l4, flowcache::extract::NO_OFFSET);
            prop_assert_eq!((k.nw_proto, k.nw_ttl, k.tp_src), (0, 0, 0));
        } else {
            let mut k2 = FlowKey::default();
            let o2 = extract_with_vlan_limit(&frame, &PacketMeta::default(), &mut k2, 2).unwrap();
            prop_assert_eq!(k, k2);
            prop_assert_eq!(o, o2);
        }

        // Any truncation parses without panicking and never reports more
        // than the full frame did.
        for cut in [14, frame.len() / 2, frame.len().saturating_sub(1)] {
            if cut >= 14 && cut < frame.len() {
                let mut kt = FlowKey::default();
                let ot = extract(&frame[..cut], &PacketMeta::default(), &mut kt).unwrap();
                prop_assert!(ot.l3 == o.l3 || (!s.tags.is_empty() && cut < 18));
                prop_assert_eq!(kt.dl_src, s.src);
            }
        }
    }
}
