//! Stable-toolchain fuzzing of `extract` (the cargo-fuzz target in
//! `flowcache/fuzz` needs nightly):
//! * arbitrary bytes never panic and always give a well-formed result;
//! * mutated/truncated real packets agree with `model`, a deliberately
//!   naive transliteration of OVS `miniflow_extract` written with the C
//!   code's `data_pull`/`data_try_pull` cursor.

use flowcache::extract::*;
use flowcache::key::*;
use proptest::prelude::*;

/// Invariants that hold for every input.
fn check(frame: &[u8], limit: usize) -> Result<(FlowKey, Option<Offsets>), TestCaseError> {
    let meta = PacketMeta {
        in_port: 1,
        recirc_id: 2,
        dp_hash: 3,
        pkt_mark: 4,
        ..PacketMeta::default()
    };
    let mut k = FlowKey::all_ones();
    let r = extract_with_vlan_limit(frame, &meta, &mut k, limit);
    prop_assert_eq!(
        (k.in_port, k.recirc_id, k.dp_hash, k.pkt_mark),
        (1, 2, 3, 4)
    );
    prop_assert_eq!(k.metadata, 0);
    prop_assert_eq!(k.regs, [0; 16]);
    prop_assert_eq!((k.tun_id, k.tun_src, k.tun_dst, k.tun_flags), (0, 0, 0, 0));
    prop_assert_eq!((k._pad_l2, k._pad_arp, k._pad_l4), (0, 0, 0));
    let mut again = FlowKey::default();
    prop_assert_eq!(extract_with_vlan_limit(frame, &meta, &mut again, limit), r);
    prop_assert_eq!(again, k);
    if limit == DEFAULT_VLAN_LIMIT {
        // The hashed variant (with its IPv4/L4 fast path) agrees exactly.
        let mut fast = FlowKey::all_ones();
        let rh = extract_hashed(frame, &meta, &mut fast);
        prop_assert_eq!(rh.map(|(o, _)| o), r);
        prop_assert_eq!(fast, k);
        if let Ok((_, h)) = rh {
            prop_assert_eq!(h, flowcache::hash::hash_key(&k));
        }
    }
    let o = match r {
        Err(ExtractError::TooShort(n)) => {
            prop_assert!(frame.len() < 14);
            prop_assert_eq!(n, frame.len());
            return Ok((k, None));
        }
        Ok(o) => o,
    };
    prop_assert!(frame.len() >= 14);
    prop_assert!(usize::from(o.l3) <= frame.len() && o.l3 >= 14);
    if o.l2_5 != NO_OFFSET {
        prop_assert!(o.l2_5 <= o.l3);
        prop_assert!(k.is_mpls());
    }
    if o.l4 == NO_OFFSET {
        prop_assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags, k.nw_frag), (0, 0, 0, 0));
    } else {
        prop_assert!(k.is_ip());
        prop_assert!(o.l4 > o.l3 && usize::from(o.l4) <= frame.len());
    }
    prop_assert!(matches!(k.nw_frag, 0 | FRAG_ANY | 3));
    prop_assert!(k.tcp_flags <= 0xfff);
    prop_assert!(k.ipv6_label <= 0xf_ffff);
    for v in k.vlans {
        prop_assert_eq!(v.tpid == 0, v.tci == 0);
        if v.tpid != 0 {
            prop_assert!(v.tci & VLAN_CFI != 0);
        }
    }
    Ok((k, Some(o)))
}

// ---------------------------------------------------------------- model

/// OVS's `const void *data; size_t size;` pair.
struct Cur<'a> {
    frame: &'a [u8],
    pos: usize,
    size: usize,
}

impl<'a> Cur<'a> {
    fn at(&self, i: usize) -> u8 {
        self.frame[self.pos + i]
    }
    fn be16(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.at(i), self.at(i + 1)])
    }
    fn be32(&self, i: usize) -> u32 {
        u32::from_be_bytes([self.at(i), self.at(i + 1), self.at(i + 2), self.at(i + 3)])
    }
    fn pull(&mut self, n: usize) -> usize {
        let p = self.pos;
        self.pos += n;
        self.size -= n;
        p
    }
    fn try_pull(&mut self, n: usize) -> Option<usize> {
        (self.size >= n).then(|| self.pull(n))
    }
    fn bytes<const N: usize>(&self, i: usize) -> [u8; N] {
        self.frame[self.pos + i..self.pos + i + N]
            .try_into()
            .unwrap()
    }
}

fn model(frame: &[u8], limit: usize) -> Option<(FlowKey, Offsets)> {
    let mut k = FlowKey::default();
    let mut o = Offsets::default();
    if frame.len() < 14 {
        return None;
    }
    let mut d = Cur {
        frame,
        pos: 0,
        size: frame.len(),
    };
    k.dl_dst = d.bytes(0);
    k.dl_src = d.bytes(6);
    // parse_vlan (limit 0 means as many tags as the key holds, as
    // `extract_with_vlan_limit` documents)
    let limit = if limit == 0 { 2 } else { limit.min(2) };
    d.pull(12);
    let mut n = 0;
    while (d.be16(0) == 0x8100 || d.be16(0) == 0x88a8) && n < limit {
        if d.size < 6 {
            break;
        }
        k.vlans[n] = VlanTag {
            tpid: d.be16(0),
            tci: d.be16(2) | 0x1000,
        };
        d.pull(4);
        n += 1;
    }
    // parse_ethertype
    let mut dl_type = d.be16(0);
    d.pull(2);
    if dl_type < 0x600 {
        let t = dl_type;
        dl_type = 0x05ff;
        if d.size >= 8
            && d.at(0) == 0xaa
            && d.at(1) == 0xaa
            && d.at(2) == 3
            && d.bytes::<3>(3) == [0, 0, 0]
        {
            let snap = d.be16(6);
            d.pull(8);
            if snap >= 0x600 {
                dl_type = snap;
            }
        }
        let _ = t;
    }
    k.dl_type = dl_type;
    if dl_type == 0x8847 || dl_type == 0x8848 {
        o.l2_5 = d.pos as u16;
        let mut count = 0;
        while let Some(p) = d.try_pull(4) {
            let lse = u32::from_be_bytes(frame[p..p + 4].try_into().unwrap());
            if count < 2 {
                k.mpls_lse[count] = lse;
            }
            count += 1;
            if lse & 0x100 != 0 {
                break;
            }
        }
    }
    o.l3 = d.pos as u16;
    let (mut nw_frag, nw_tos, nw_ttl, mut nw_proto) = (0u8, 0u8, 0u8, 0u8);
    let _ = (nw_tos, nw_ttl, nw_proto);
    let (nw_tos, nw_ttl);
    if dl_type == 0x0800 {
        if d.size < 20 {
            return Some((k, o));
        }
        let ip_len = usize::from(d.at(0) & 0xf) * 4;
        if d.at(0) >> 4 != 4 || ip_len < 20 || d.size < ip_len {
            return Some((k, o));
        }
        let tot_len = usize::from(d.be16(2));
        if tot_len > d.size || ip_len > tot_len || d.size - tot_len > 65535 {
            return Some((k, o));
        }
        d.size = tot_len;
        k.nw_src = d.be32(12);
        k.nw_dst = d.be32(16);
        nw_tos = d.at(1);
        nw_ttl = d.at(8);
        nw_proto = d.at(9);
        let fo = d.be16(6);
        if fo & 0x3fff != 0 {
            nw_frag = FRAG_ANY;
            if fo & 0x1fff != 0 {
                nw_frag |= FRAG_LATER;
            }
        }
        d.pull(ip_len);
    } else if dl_type == 0x86dd {
        if d.size < 40 {
            return Some((k, o));
        }
        let plen = usize::from(d.be16(4));
        if d.at(0) >> 4 != 6 || plen + 40 > d.size || d.size - (plen + 40) > 65535 {
            return Some((k, o));
        }
        let h = d.pull(40);
        d.size = plen;
        k.ipv6_src = frame[h + 8..h + 24].try_into().unwrap();
        k.ipv6_dst = frame[h + 24..h + 40].try_into().unwrap();
        let tc_flow = u32::from_be_bytes(frame[h..h + 4].try_into().unwrap());
        nw_tos = (tc_flow >> 20) as u8;
        nw_ttl = frame[h + 7];
        nw_proto = frame[h + 6];
        loop {
            if ![0, 43, 60, 51, 44].contains(&nw_proto) {
                break;
            }
            if d.size < 8 {
                return Some((k, o));
            }
            if nw_proto == 44 {
                nw_proto = d.at(0);
                let offlg = d.be16(2);
                d.pull(8);
                if offlg != 0 {
                    nw_frag = FRAG_ANY;
                    if offlg & 0xfff8 != 0 {
                        nw_frag |= FRAG_LATER;
                        nw_proto = 44;
                        break;
                    }
                }
            } else {
                let len = if nw_proto == 51 {
                    (usize::from(d.at(1)) + 2) * 4
                } else {
                    (usize::from(d.at(1)) + 1) * 8
                };
                nw_proto = d.at(0);
                if d.try_pull(len).is_none() {
                    return Some((k, o));
                }
            }
        }
        k.ipv6_label = tc_flow & 0xfffff;
    } else {
        if (dl_type == 0x0806 || dl_type == 0x8035)
            && d.size >= 28
            && d.be16(0) == 1
            && d.be16(2) == 0x0800
            && d.at(4) == 6
            && d.at(5) == 4
        {
            k.nw_src = d.be32(14);
            k.nw_dst = d.be32(24);
            if d.be16(6) <= 0xff {
                k.nw_proto = d.be16(6) as u8;
            }
            k.arp_sha = d.bytes(8);
            k.arp_tha = d.bytes(18);
        }
        return Some((k, o));
    }
    o.l4 = d.pos as u16;
    (k.nw_frag, k.nw_tos, k.nw_ttl, k.nw_proto) = (nw_frag, nw_tos, nw_ttl, nw_proto);
    if nw_frag & FRAG_LATER != 0 {
        return Some((k, o));
    }
    match nw_proto {
        6 if d.size >= 20 => {
            let hl = usize::from(d.at(12) >> 4) * 4;
            if hl >= 20 && d.size >= hl {
                k.tp_src = d.be16(0);
                k.tp_dst = d.be16(2);
                k.tcp_flags = d.be16(12) & 0xfff;
            }
        }
        17 if d.size >= 8 => (k.tp_src, k.tp_dst) = (d.be16(0), d.be16(2)),
        132 if d.size >= 12 => (k.tp_src, k.tp_dst) = (d.be16(0), d.be16(2)),
        1 | 2 if d.size >= 8 => (k.tp_src, k.tp_dst) = (d.at(0).into(), d.at(1).into()),
        58 if d.size >= 8 => {
            let (ty, code) = (d.at(0), d.at(1));
            (k.tp_src, k.tp_dst) = (ty.into(), code.into());
            d.pull(8);
            if code == 0 && (ty == 135 || ty == 136) {
                let Some(t) = d.try_pull(16) else {
                    return Some((k, o));
                };
                let target: [u8; 16] = frame[t..t + 16].try_into().unwrap();
                let (mut sll, mut tll) = ([0u8; 6], [0u8; 6]);
                while d.size >= 8 {
                    let opt_len = usize::from(d.at(1)) * 8;
                    if opt_len == 0 || opt_len > d.size {
                        break;
                    }
                    if d.at(0) == 1 && opt_len == 8 {
                        if sll != [0; 6] {
                            return Some((k, o));
                        }
                        sll = d.bytes(2);
                    } else if d.at(0) == 2 && opt_len == 8 {
                        if tll != [0; 6] {
                            return Some((k, o));
                        }
                        tll = d.bytes(2);
                    }
                    d.pull(opt_len);
                }
                (k.nd_target, k.arp_sha, k.arp_tha) = (target, sll, tll);
            }
        }
        _ => {}
    }
    Some((k, o))
}

// ---------------------------------------------------------------- inputs

fn hx(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Real frames (most from the conformance corpus), one per header type.
fn templates() -> Vec<Vec<u8>> {
    [
        // IPv4/UDP
        "000000000002000000000001080045000024000100004011f9c30a0000010a00000204d200350010c0b5000102030405060708",
        // IPv4/TCP SYN
        "00000000000200000000000108004500002800010000400666cd0a0000010a00000204d200500000000100000000500220007bbb0000",
        // VLAN/IPv4/ICMP
        "00000000000200000000000181000064080045000020000100004001f9d70a0000010a0000020b01f4fe0000000000010002",
        // QinQ/IPv4/UDP
        "00000000000200000000000188a800648100012c080045000024000100004011f9c30a0000010a00000204d200350010c0b5",
        // IPv6 hop-by-hop + dest-opts/UDP
        "00000000000200000000000186dd600000000018004020010db800000000000000000000000120010db80000000000000000000000023c000104000000001100010400000000000100350008a433",
        // IPv6 fragment (first)/UDP
        "00000000000200000000000186dd6000000000102c4020010db800000000000000000000000120010db800000000000000000000000211000001000012340001003500080000",
        // IPv6 ND NS with SLL
        "00000000000233330000000186dd6000000000203aff20010db800000000000000000000000120010db8000000000000000000000002870000000000000020010db80000000000000000000000020101000000000001",
        // ARP request
        "ffffffffffff000000000010080600010800060400010000000000100a000001000000000000000a000002",
        // MPLS two labels + IPv4
        "0000000000020000000000018847000640400006514045000014000100004000f9d80a0000010a000002",
        // LLC/SNAP IPv4/UDP
        "0000000000020000000000010028aaaa030000000800450000200001000040110000c0a80101c0a8010204d20035000c000000010203",
        // IPv4 with options/SCTP
        "00000000000200000000000108004600002800010000408400000a0000010a000002010101010bb80050000000010000000000000000",
        // IPv6 AH/TCP
        "00000000000200000000000186dd6000000000203340fe800000000000000000000000000001fe8000000000000000000000000000020601000000000001000000020001000200000001000000005002200000000000",
    ]
    .iter()
    .map(|s| hx(s))
    .collect()
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = templates().len();
    (
        0..n,
        prop::collection::vec(
            prop_oneof![
                6 => (0usize..120, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
                1 => (0usize..120).prop_map(Mutation::Truncate),
                1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Mutation::Extend),
            ],
            0..6,
        ),
    )
        .prop_map(|(t, muts)| {
            let mut f = templates()[t].clone();
            for m in muts {
                match m {
                    Mutation::Set(i, b) if i < f.len() => f[i] = b,
                    Mutation::Set(..) => {}
                    Mutation::Truncate(n) => f.truncate(n),
                    Mutation::Extend(v) => f.extend(v),
                }
            }
            f
        })
}

fn agree_with_model(frame: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let (k, o) = check(frame, limit)?;
    match model(frame, limit) {
        None => prop_assert!(o.is_none()),
        Some((mut mk, mo)) => {
            (mk.in_port, mk.recirc_id, mk.dp_hash, mk.pkt_mark) = (1, 2, 3, 4);
            prop_assert_eq!(o, Some(mo));
            prop_assert_eq!(k, mk);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..256), limit in 0usize..4) {
        agree_with_model(&frame, limit)?;
    }

    /// Random bytes behind a plausible L2 header, so that the L3/L4 parsers
    /// are reached.
    #[test]
    fn arbitrary_l3_never_panics(
        ty in prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8035, 0x8847, 0x8100, 0x88a8, 0x0030]),
        body in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(&body);
        agree_with_model(&f, 1)?;
        agree_with_model(&f, 2)?;
    }

    #[test]
    fn mutated_packets_match_model(frame in mutated(), limit in 1usize..=2) {
        agree_with_model(&frame, limit)?;
    }
}

#[test]
fn templates_parse_deep() {
    // The templates reach the layer they were picked for.
    for (i, t) in templates().iter().enumerate() {
        let (k, o) = check(t, 1).unwrap();
        let o = o.unwrap();
        match i {
            0 | 1 | 2 | 4 | 5 | 6 | 9 | 10 | 11 => {
                assert_ne!(o.l4, NO_OFFSET, "template {i}");
                assert!(k.tp_src != 0 || k.tp_dst != 0, "template {i}: {k:?}");
            }
            3 => assert_eq!(k.dl_type, 0x8100),
            7 => assert_eq!(k.nw_proto, 1),
            8 => assert_ne!(k.mpls_lse[1], 0),
            _ => {}
        }
        agree_with_model(t, 1).unwrap();
    }
}

#[test]
fn large_frame() {
    // 70000 bytes of MPLS labels without BOS: offsets saturate, no panic.
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x88, 0x47]);
    f.resize(70_000, 0);
    let (k, o) = check(&f, 1).unwrap();
    assert_eq!(o.unwrap().l3, NO_OFFSET - 1);
    assert_eq!(k.mpls_lse, [0, 0]);
}
