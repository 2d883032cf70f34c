//! Header-by-header tests of `extract`, well-formed and malformed, with the
//! OVS 3.1 `miniflow_extract` behaviour as the reference.

use bytemuck::Zeroable;
use flowcache::extract::*;
use flowcache::key::*;

const DST: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x02];
const SRC: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
const V6A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

// ---------------------------------------------------------------- builders

fn eth(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Ethernet with VLAN tags `(tpid, tci)` before the final type.
fn eth_tagged(tags: &[(u16, u16)], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST);
    f.extend_from_slice(&SRC);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

struct V4 {
    ver_ihl: u8,
    tos: u8,
    tot_len: Option<u16>,
    frag: u16,
    ttl: u8,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    options: Vec<u8>,
}

impl Default for V4 {
    fn default() -> Self {
        V4 {
            ver_ihl: 0x45,
            tos: 0,
            tot_len: None,
            frag: 0,
            ttl: 64,
            proto: IPPROTO_UDP,
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            options: Vec::new(),
        }
    }
}

impl V4 {
    fn build(&self, payload: &[u8]) -> Vec<u8> {
        let hl = 20 + self.options.len();
        let tot = self.tot_len.unwrap_or((hl + payload.len()) as u16);
        let mut h = vec![self.ver_ihl, self.tos];
        h.extend_from_slice(&tot.to_be_bytes());
        h.extend_from_slice(&[0, 1]);
        h.extend_from_slice(&self.frag.to_be_bytes());
        h.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        h.extend_from_slice(&self.src);
        h.extend_from_slice(&self.dst);
        h.extend_from_slice(&self.options);
        h.extend_from_slice(payload);
        h
    }
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    V4 {
        proto,
        ..Default::default()
    }
    .build(payload)
}

/// IPv6 header; `plen` None = the real payload length.
fn ipv6_raw(vtf: u32, plen: Option<u16>, next: u8, hlim: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vtf.to_be_bytes().to_vec();
    h.extend_from_slice(&plen.unwrap_or(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hlim]);
    h.extend_from_slice(&V6A);
    h.extend_from_slice(&V6B);
    h.extend_from_slice(payload);
    h
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    ipv6_raw(0x6000_0000, None, next, 64, payload)
}

fn udp(sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut u = sp.to_be_bytes().to_vec();
    u.extend_from_slice(&dp.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

/// TCP with the raw offset/flags word and `opts` bytes after 20.
fn tcp(sp: u16, dp: u16, off_flags: u16, opts: &[u8]) -> Vec<u8> {
    let mut t = sp.to_be_bytes().to_vec();
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    t.extend_from_slice(&off_flags.to_be_bytes());
    t.extend_from_slice(&[0x20, 0, 0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t
}

fn arp(htype: u16, ptype: u16, hlen: u8, plen: u8, op: u16) -> Vec<u8> {
    let mut a = htype.to_be_bytes().to_vec();
    a.extend_from_slice(&ptype.to_be_bytes());
    a.extend_from_slice(&[hlen, plen]);
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&[0, 0, 0, 0, 0, 0x10]);
    a.extend_from_slice(&[10, 0, 0, 1]);
    a.extend_from_slice(&[0, 0, 0, 0, 0, 0x20]);
    a.extend_from_slice(&[10, 0, 0, 2]);
    a
}

fn nd(ty: u8, code: u8, target: Option<[u8; 16]>, opts: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0x60, 0, 0, 0];
    if let Some(t) = target {
        m.extend_from_slice(&t);
    }
    m.extend_from_slice(opts);
    m
}

fn lla_opt(ty: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![ty, 1];
    o.extend_from_slice(&mac);
    o
}

fn parse(frame: &[u8]) -> (FlowKey, Offsets) {
    parse_limit(frame, DEFAULT_VLAN_LIMIT)
}

fn parse_limit(frame: &[u8], limit: usize) -> (FlowKey, Offsets) {
    // Start from a dirty key: extract must overwrite everything.
    let mut k = FlowKey::all_ones();
    let o = extract_with_vlan_limit(frame, &PacketMeta::default(), &mut k, limit).unwrap();
    check_invariants(frame, &k, &o);
    (k, o)
}

fn check_invariants(frame: &[u8], k: &FlowKey, o: &Offsets) {
    assert_eq!(k.metadata, 0);
    assert_eq!(k.regs, [0; 16]);
    assert_eq!(k.tun_id, 0);
    assert_eq!((k._pad_l2, k._pad_arp, k._pad_l4), (0, 0, 0));
    for x in [o.l2_5, o.l3, o.l4] {
        assert!(x == NO_OFFSET || usize::from(x) <= frame.len());
    }
    assert_ne!(o.l3, NO_OFFSET);
    if o.l4 != NO_OFFSET {
        assert!(o.l4 > o.l3);
    }
}

fn offs(l2_5: u16, l3: u16, l4: u16) -> Offsets {
    Offsets { l2_5, l3, l4 }
}

const N: u16 = NO_OFFSET;

/// Key with only the Ethernet part (and dl_type) set.
fn l2_only(dl_type: u16) -> FlowKey {
    let mut k = FlowKey::zeroed();
    k.dl_dst = DST;
    k.dl_src = SRC;
    k.dl_type = dl_type;
    k
}

// ---------------------------------------------------------------- Ethernet

#[test]
fn too_short_frames() {
    for len in 0..14 {
        let mut k = FlowKey::all_ones();
        let m = PacketMeta {
            in_port: 7,
            recirc_id: 1,
            dp_hash: 2,
            pkt_mark: 3,
            ..PacketMeta::default()
        };
        assert_eq!(
            extract(&vec![0xffu8; len], &m, &mut k),
            Err(ExtractError::TooShort(len))
        );
        let mut want = FlowKey::zeroed();
        (want.in_port, want.recirc_id, want.dp_hash, want.pkt_mark) = (7, 1, 2, 3);
        assert_eq!(k, want);
    }
}

#[test]
fn bare_ethernet_header() {
    for ty in [0x0800, 0x86dd, 0x0806, 0x8847, 0x8100, 0x1234] {
        let (k, o) = parse(&eth(ty, &[]));
        assert_eq!(k, l2_only(ty));
        let l2_5 = if ty == 0x8847 { 14 } else { N };
        assert_eq!(o, offs(l2_5, 14, N));
    }
}

#[test]
fn metadata_is_copied() {
    let m = PacketMeta {
        in_port: 5,
        recirc_id: 9,
        dp_hash: 0xdead_beef,
        pkt_mark: 42,
        ..PacketMeta::default()
    };
    let mut k = FlowKey::all_ones();
    extract(&eth(0x1234, &[0; 40]), &m, &mut k).unwrap();
    let mut want = l2_only(0x1234);
    want.in_port = 5;
    want.recirc_id = 9;
    want.dp_hash = 0xdead_beef;
    want.pkt_mark = 42;
    assert_eq!(k, want);
}

#[test]
fn unknown_ethertype() {
    let (k, o) = parse(&eth(0x88cc, &[1; 50]));
    assert_eq!(k, l2_only(0x88cc));
    assert_eq!(o, offs(N, 14, N));
}

// ---------------------------------------------------------------- 802.3

#[test]
fn ieee802_3_without_snap_is_none() {
    // 802.2 LLC (STP) in a length frame.
    let (k, o) = parse(&eth(0x0026, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(k, l2_only(ETH_TYPE_NONE));
    assert_eq!(o, offs(N, 14, N));
    // Too short for LLC/SNAP.
    let (k, _) = parse(&eth(0x0005, &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08]));
    assert_eq!(k.dl_type, ETH_TYPE_NONE);
    // Length 0x05ff and 0: still 802.3.
    assert_eq!(parse(&eth(0x05ff, &[])).0.dl_type, ETH_TYPE_NONE);
    assert_eq!(parse(&eth(0x0000, &[])).0.dl_type, ETH_TYPE_NONE);
    // 0x0600 is the first Ethertype.
    assert_eq!(parse(&eth(0x0600, &[])).0.dl_type, 0x0600);
}

#[test]
fn llc_snap_oui_zero_is_parsed() {
    let ip = ipv4(IPPROTO_UDP, &udp(1234, 53, b"hi"));
    let mut payload = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    payload.extend_from_slice(&ip);
    let (k, o) = parse(&eth(payload.len() as u16, &payload));
    assert_eq!(k.dl_type, 0x0800);
    assert_eq!(k.nw_src, 0x0a00_0001);
    assert_eq!((k.tp_src, k.tp_dst), (1234, 53));
    assert_eq!(o, offs(N, 22, 42));
}

#[test]
fn llc_snap_other_oui_or_small_type_is_none() {
    let (k, o) = parse(&eth(30, &[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x08, 0x00, 0x45]));
    assert_eq!(k, l2_only(ETH_TYPE_NONE));
    assert_eq!(o.l3, 14);
    // SNAP with OUI 0 but a protocol ID < 0x600: NONE, yet the LLC/SNAP
    // header has been consumed (OVS data_pull before the check).
    let (k, o) = parse(&eth(30, &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x05, 0xff, 0x45]));
    assert_eq!(k, l2_only(ETH_TYPE_NONE));
    assert_eq!(o.l3, 22);
    // Wrong control byte.
    let (k, _) = parse(&eth(30, &[0xaa, 0xaa, 0x13, 0, 0, 0, 0x08, 0x00]));
    assert_eq!(k.dl_type, ETH_TYPE_NONE);
}

#[test]
fn vlan_then_llc_snap() {
    let ip = ipv4(IPPROTO_UDP, &udp(1, 2, &[]));
    let mut payload = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    payload.extend_from_slice(&ip);
    let (k, o) = parse(&eth_tagged(&[(0x8100, 10)], 40, &payload));
    assert_eq!(k.vlans[0].tci, 10 | VLAN_CFI);
    assert_eq!(k.dl_type, 0x0800);
    assert_eq!((k.tp_src, k.tp_dst), (1, 2));
    assert_eq!(o, offs(N, 26, 46));
}

// ---------------------------------------------------------------- VLAN

#[test]
fn single_tag() {
    let ip = ipv4(IPPROTO_UDP, &udp(1234, 53, &[]));
    let (k, o) = parse(&eth_tagged(&[(0x8100, 0xa005)], 0x0800, &ip));
    assert_eq!(
        k.vlans[0],
        VlanTag {
            tpid: 0x8100,
            tci: 0xa005 | VLAN_CFI
        }
    );
    assert_eq!(k.vlans[1], VlanTag::default());
    assert_eq!(k.dl_type, 0x0800);
    assert_eq!(k.nw_dst, 0x0a00_0002);
    assert_eq!(o, offs(N, 18, 38));
}

#[test]
fn vid_zero_priority_tag_is_present() {
    let (k, _) = parse(&eth_tagged(&[(0x8100, 0x0000)], 0x1234, &[]));
    assert_eq!(k.vlans[0].tci, VLAN_CFI);
}

#[test]
fn dei_bit_is_absorbed_into_cfi() {
    let (k, _) = parse(&eth_tagged(&[(0x8100, 0x1064)], 0x1234, &[]));
    assert_eq!(k.vlans[0].tci, 0x1064);
    let (k2, _) = parse(&eth_tagged(&[(0x8100, 0x0064)], 0x1234, &[]));
    assert_eq!(k, k2, "DEI set or clear reads the same");
}

#[test]
fn tag_8021ad() {
    let (k, o) = parse(&eth_tagged(&[(0x88a8, 100)], 0x0806, &[]));
    assert_eq!(k.vlans[0].tpid, 0x88a8);
    assert_eq!(k.vlans[0].tci, 100 | VLAN_CFI);
    assert_eq!(k.dl_type, 0x0806);
    assert_eq!(o, offs(N, 18, N));
}

#[test]
fn tpid_9100_is_not_a_vlan() {
    let (k, o) = parse(&eth_tagged(&[(0x9100, 100)], 0x0800, &[]));
    assert_eq!(k, l2_only(0x9100));
    assert_eq!(o.l3, 14);
}

#[test]
fn qinq_with_default_limit() {
    let ip = ipv4(IPPROTO_UDP, &udp(1, 2, &[]));
    let f = eth_tagged(&[(0x88a8, 100), (0x8100, 200)], 0x0800, &ip);
    let (k, o) = parse(&f);
    assert_eq!(
        k.vlans[0],
        VlanTag {
            tpid: 0x88a8,
            tci: 100 | VLAN_CFI
        }
    );
    assert_eq!(k.vlans[1], VlanTag::default());
    assert_eq!(k.dl_type, 0x8100);
    assert_eq!(k.nw_src, 0);
    assert_eq!(o, offs(N, 18, N));
}

#[test]
fn qinq_with_limit_2_and_unlimited() {
    let ip = ipv4(IPPROTO_UDP, &udp(1, 2, &[]));
    let f = eth_tagged(&[(0x88a8, 100), (0x8100, 200), (0x8100, 300)], 0x0800, &ip);
    for limit in [0, 2, 5] {
        let (k, o) = parse_limit(&f, limit);
        assert_eq!(k.vlans[0].tci, 100 | VLAN_CFI);
        assert_eq!(
            k.vlans[1],
            VlanTag {
                tpid: 0x8100,
                tci: 200 | VLAN_CFI
            }
        );
        assert_eq!(k.dl_type, 0x8100, "third tag is payload");
        assert_eq!(o.l3, 22);
    }
    let f = eth_tagged(&[(0x88a8, 100), (0x8100, 200)], 0x0800, &ip);
    let (k, o) = parse_limit(&f, 2);
    assert_eq!(k.dl_type, 0x0800);
    assert_eq!((k.tp_src, k.tp_dst), (1, 2));
    assert_eq!(o, offs(N, 22, 42));
}

#[test]
fn truncated_tag_is_not_a_tag() {
    // TPID only, TPID + 1, TPID + TCI (no following type): not a tag.
    for extra in [
        &[][..],
        &[0x0f][..],
        &[0x00, 0x64][..],
        &[0x00, 0x64, 0x08][..],
    ] {
        let f = eth(0x8100, extra);
        let (k, o) = parse(&f);
        assert_eq!(k, l2_only(0x8100), "{} bytes", f.len());
        assert_eq!(o, offs(N, 14, N));
    }
    let (k, _) = parse(&eth(0x88a8, &[0x0f]));
    assert_eq!(k, l2_only(0x88a8));
    // 18 bytes: a tag and the next type, nothing else.
    let (k, o) = parse(&eth(0x8100, &[0x00, 0x64, 0x08, 0x00]));
    assert_eq!(k.vlans[0].tci, 100 | VLAN_CFI);
    assert_eq!(k.dl_type, 0x0800);
    assert_eq!(o, offs(N, 18, N));
    // Inner tag truncated with limit 2.
    let (k, _) = parse_limit(&eth_tagged(&[(0x8100, 5)], 0x8100, &[0, 6, 8]), 2);
    assert_eq!(k.vlans[0].tci, 5 | VLAN_CFI);
    assert_eq!(k.vlans[1].tci, 0);
    assert_eq!(k.dl_type, 0x8100);
}

// ---------------------------------------------------------------- MPLS

fn lse(label: u32, tc: u32, bos: bool, ttl: u32) -> [u8; 4] {
    ((label << 12) | (tc << 9) | (u32::from(bos) << 8) | ttl).to_be_bytes()
}

#[test]
fn mpls_single_label_payload_not_parsed() {
    let mut p = lse(100, 5, true, 64).to_vec();
    p.extend_from_slice(&ipv4(IPPROTO_UDP, &udp(1, 2, &[])));
    let (k, o) = parse(&eth(0x8847, &p));
    assert_eq!(k.mpls_lse, [(100 << 12) | (5 << 9) | 0x100 | 64, 0]);
    assert_eq!(k.dl_type, 0x8847);
    assert_eq!((k.nw_src, k.nw_proto, k.tp_src), (0, 0, 0));
    assert_eq!(o, offs(14, 18, N));
}

#[test]
fn mpls_stacks() {
    let two = [lse(1, 0, false, 1), lse(2, 0, true, 2)].concat();
    let (k, o) = parse(&eth(0x8848, &two));
    assert_eq!(k.dl_type, 0x8848);
    assert_eq!(k.mpls_lse, [(1 << 12) | 1, (2 << 12) | 0x100 | 2]);
    assert_eq!(o, offs(14, 22, N));
    // Three labels: the third is skipped but not stored.
    let three = [lse(1, 0, false, 1), lse(2, 0, false, 2), lse(3, 0, true, 3)].concat();
    let (k, o) = parse(&eth(0x8847, &three));
    assert_eq!(k.mpls_lse, [(1 << 12) | 1, (2 << 12) | 2]);
    assert_eq!(o, offs(14, 26, N));
    // Labels after the bottom of stack are payload.
    let (k, o) = parse(&eth(
        0x8847,
        &[lse(7, 0, true, 9), lse(8, 0, true, 9)].concat(),
    ));
    assert_eq!(k.mpls_lse, [(7 << 12) | 0x100 | 9, 0]);
    assert_eq!(o.l3, 18);
}

#[test]
fn mpls_truncated() {
    // No complete label.
    let (k, o) = parse(&eth(0x8847, &[0x00, 0x06, 0x41]));
    assert_eq!(k, l2_only(0x8847));
    assert_eq!(o, offs(14, 14, N));
    // No bottom of stack before the end of the frame.
    let (k, o) = parse(&eth(
        0x8847,
        &[lse(1, 0, false, 1).as_slice(), &[1, 2]].concat(),
    ));
    assert_eq!(k.mpls_lse, [(1 << 12) | 1, 0]);
    assert_eq!(o, offs(14, 18, N));
}

#[test]
fn mpls_after_vlan() {
    let (k, o) = parse(&eth_tagged(&[(0x8100, 3)], 0x8847, &lse(4, 0, true, 5)));
    assert_eq!(k.vlans[0].tci, 3 | VLAN_CFI);
    assert_eq!(k.mpls_lse[0], (4 << 12) | 0x100 | 5);
    assert_eq!(o, offs(18, 22, N));
}

// ---------------------------------------------------------------- IPv4

#[test]
fn ipv4_udp_full_key() {
    let ip = V4 {
        tos: 0xb9,
        ttl: 7,
        src: [192, 168, 1, 100],
        dst: [10, 0, 0, 2],
        ..Default::default()
    }
    .build(&udp(1234, 53, b"payload"));
    let (k, o) = parse(&eth(0x0800, &ip));
    let mut want = l2_only(0x0800);
    want.nw_src = 0xc0a8_0164;
    want.nw_dst = 0x0a00_0002;
    want.nw_proto = IPPROTO_UDP;
    want.nw_tos = 0xb9;
    want.nw_ttl = 7;
    want.tp_src = 1234;
    want.tp_dst = 53;
    assert_eq!(k, want);
    assert_eq!(o, offs(N, 14, 34));
}

#[test]
fn ipv4_options_move_l4() {
    let ip = V4 {
        ver_ihl: 0x47,
        options: vec![1; 8],
        ..Default::default()
    }
    .build(&udp(5, 6, &[]));
    let (k, o) = parse(&eth(0x0800, &ip));
    assert_eq!((k.tp_src, k.tp_dst), (5, 6));
    assert_eq!(o, offs(N, 14, 42));
}

#[test]
fn ipv4_protocol_without_l4_parser() {
    let (k, o) = parse(&eth(0x0800, &ipv4(47, &[0, 0, 8, 0, 1, 2, 3, 4])));
    assert_eq!(k.nw_proto, 47);
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
    assert_eq!(o.l4, 34);
    // Protocol 0 is a valid header with nw_proto 0.
    let (k, o) = parse(&eth(0x0800, &ipv4(0, &[1, 2, 3, 4])));
    assert_eq!((k.nw_proto, k.nw_ttl, k.nw_src), (0, 64, 0x0a00_0001));
    assert_eq!(o.l4, 34);
}

#[test]
fn ipv4_malformed_headers_zero_l3() {
    let good = ipv4(IPPROTO_UDP, &udp(1, 2, &[]));
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("19 bytes", good[..19].to_vec()));
    cases.push(("0 bytes", Vec::new()));
    for ihl in 0..5u8 {
        let mut b = good.clone();
        b[0] = 0x40 | ihl;
        cases.push(("IHL < 5", b));
    }
    let mut b = good.clone();
    b[0] = 0x4f; // 60-byte header in a 28-byte packet
    cases.push(("IHL beyond frame", b));
    let mut b = good.clone();
    b[2..4].copy_from_slice(&29u16.to_be_bytes());
    cases.push(("total length > frame", b));
    let mut b = good.clone();
    b[2..4].copy_from_slice(&19u16.to_be_bytes());
    cases.push(("total length < IHL", b));
    let mut b = V4 {
        ver_ihl: 0x46,
        options: vec![0; 4],
        ..Default::default()
    }
    .build(&udp(1, 2, &[]));
    b[2..4].copy_from_slice(&22u16.to_be_bytes());
    cases.push(("total length < IHL with options", b));
    for (what, ip) in cases {
        let (k, o) = parse(&eth(0x0800, &ip));
        assert_eq!(k, l2_only(0x0800), "{what}");
        assert_eq!(o, offs(N, 14, N), "{what}");
    }
}

#[test]
fn ip_version_nibble_is_checked() {
    // Real OVS 3.1 (asked with shared/conformance/tools/try_case.py): a
    // version-6 nibble with a sane IHL behind 0x0800 reads as an invalid
    // IPv4 header (megaflow `nw_src=0.0.0.0/5,nw_proto=0`).
    let mut ip = ipv4(IPPROTO_UDP, &udp(1, 2, &[]));
    ip[0] = 0x65;
    let (k, o) = parse(&eth(0x0800, &ip));
    assert_eq!(k, l2_only(0x0800));
    assert_eq!(o.l4, NO_OFFSET);
    // Likewise a version-4 nibble behind 0x86dd (OVS: `ipv6_src=::`).
    let mut ip6 = ipv6(IPPROTO_UDP, &udp(1, 2, &[]));
    ip6[0] = 0x40 | (ip6[0] & 0x0f);
    let (k, _) = parse(&eth(0x86dd, &ip6));
    assert_eq!(k, l2_only(0x86dd));
    // An IPv6 header behind 0x0800 has IHL 0: invalid.
    let (k, _) = parse(&eth(0x0800, &ipv6(IPPROTO_UDP, &udp(1, 2, &[]))));
    assert_eq!(k, l2_only(0x0800));
}

#[test]
fn ipv4_padding_is_ignored() {
    // Total length 28: 8 bytes of UDP; the frame is padded to 60 bytes.
    let mut ip = ipv4(IPPROTO_UDP, &udp(1, 2, &[]));
    ip.resize(46, 0xee);
    let (k, o) = parse(&eth(0x0800, &ip));
    assert_eq!((k.tp_src, k.tp_dst), (1, 2));
    assert_eq!(o.l4, 34);
    // Total length says 4 bytes of L4: the UDP header is in the padding.
    let mut ip = V4 {
        tot_len: Some(24),
        ..Default::default()
    }
    .build(&udp(1, 2, &[]));
    ip.resize(46, 0);
    let (k, o) = parse(&eth(0x0800, &ip));
    assert_eq!(k.nw_proto, IPPROTO_UDP);
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
    assert_eq!(o.l4, 34);
    // TCP whose data offset reaches into the padding: invalid.
    let mut ip = V4 {
        proto: IPPROTO_TCP,
        tot_len: Some(40),
        ..Default::default()
    }
    .build(&tcp(1, 2, 0x6002, &[0; 4]));
    ip.resize(60, 0);
    let (k, _) = parse(&eth(0x0800, &ip));
    assert_eq!((k.tp_src, k.tcp_flags), (0, 0));
}

#[test]
fn ipv4_fragments() {
    let seg = udp(1234, 53, &[0; 8]);
    // DF only: not a fragment.
    let (k, _) = parse(&eth(
        0x0800,
        &V4 {
            frag: 0x4000,
            ..Default::default()
        }
        .build(&seg),
    ));
    assert_eq!(k.nw_frag, 0);
    assert_eq!(k.tp_dst, 53);
    // First fragment (MF, offset 0): FRAG_ANY, L4 parsed.
    let (k, o) = parse(&eth(
        0x0800,
        &V4 {
            frag: 0x2000,
            ..Default::default()
        }
        .build(&seg),
    ));
    assert_eq!(k.nw_frag, FRAG_ANY);
    assert_eq!((k.tp_src, k.tp_dst), (1234, 53));
    assert_eq!(o.l4, 34);
    // Later fragments, with and without MF: no L4, but l4 is set.
    for frag in [0x0025, 0x2025, 0x1fff, 0x4001] {
        let (k, o) = parse(&eth(
            0x0800,
            &V4 {
                frag,
                ..Default::default()
            }
            .build(&seg),
        ));
        assert_eq!(k.nw_frag, FRAG_ANY | FRAG_LATER, "{frag:#x}");
        assert_eq!((k.tp_src, k.tp_dst), (0, 0));
        assert_eq!(k.nw_proto, IPPROTO_UDP);
        assert_eq!(o.l4, 34);
    }
    // Reserved (evil) bit alone: not a fragment.
    let (k, _) = parse(&eth(
        0x0800,
        &V4 {
            frag: 0x8000,
            ..Default::default()
        }
        .build(&seg),
    ));
    assert_eq!(k.nw_frag, 0);
}

// ---------------------------------------------------------------- TCP

#[test]
fn tcp_ports_and_12_bit_flags() {
    for (word, flags) in [
        (0x5002, 0x002),
        (0x5012, 0x012),
        (0x51ff, 0x1ff),
        (0x5fff, 0xfff),
        (0x5000, 0x000),
    ] {
        let (k, o) = parse(&eth(0x0800, &ipv4(IPPROTO_TCP, &tcp(1234, 80, word, &[]))));
        assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (1234, 80, flags));
        assert_eq!(o.l4, 34);
    }
}

#[test]
fn tcp_with_options() {
    let (k, _) = parse(&eth(
        0x0800,
        &ipv4(IPPROTO_TCP, &tcp(1, 2, 0x8010, &[1; 12])),
    ));
    assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (1, 2, 0x10));
}

#[test]
fn tcp_malformed() {
    let full = tcp(1234, 80, 0x5002, &[]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("19 bytes", full[..19].to_vec()),
        ("0 bytes", Vec::new()),
        ("data offset 4", tcp(1234, 80, 0x4002, &[])),
        ("data offset 0", tcp(1234, 80, 0x0002, &[])),
        ("data offset 6 in 20 bytes", tcp(1234, 80, 0x6002, &[])),
        (
            "data offset 15 in 56 bytes",
            tcp(1234, 80, 0xf002, &[0; 36]),
        ),
    ];
    for (what, seg) in cases {
        let (k, o) = parse(&eth(0x0800, &ipv4(IPPROTO_TCP, &seg)));
        assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (0, 0, 0), "{what}");
        assert_eq!(k.nw_proto, IPPROTO_TCP, "{what}");
        assert_eq!(k.nw_src, 0x0a00_0001, "{what}");
        assert_eq!(o.l4, 34, "{what}");
    }
    // 60 bytes with data offset 15: valid.
    let (k, _) = parse(&eth(
        0x0800,
        &ipv4(IPPROTO_TCP, &tcp(1, 2, 0xf002, &[0; 40])),
    ));
    assert_eq!((k.tp_src, k.tcp_flags), (1, 2));
}

// ---------------------------------------------------------------- UDP, SCTP, ICMP, IGMP

#[test]
fn udp_truncated() {
    let seg = udp(1, 2, &[]);
    let (k, o) = parse(&eth(0x0800, &ipv4(IPPROTO_UDP, &seg[..7])));
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
    assert_eq!((k.nw_proto, o.l4), (IPPROTO_UDP, 34));
    let (k, _) = parse(&eth(0x0800, &ipv4(IPPROTO_UDP, &seg)));
    assert_eq!((k.tp_src, k.tp_dst), (1, 2));
}

#[test]
fn sctp_needs_12_bytes() {
    let hdr = [0x0b, 0xb8, 0x00, 0x50, 1, 2, 3, 4, 5, 6, 7, 8];
    let (k, _) = parse(&eth(0x0800, &ipv4(IPPROTO_SCTP, &hdr)));
    assert_eq!((k.tp_src, k.tp_dst), (3000, 80));
    let (k, _) = parse(&eth(0x0800, &ipv4(IPPROTO_SCTP, &hdr[..11])));
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
    let (k, _) = parse(&eth(0x86dd, &ipv6(IPPROTO_SCTP, &hdr)));
    assert_eq!((k.tp_src, k.tp_dst), (3000, 80));
}

#[test]
fn icmp_type_code() {
    let msg = [11, 1, 0xf4, 0xfe, 0, 0, 0, 0];
    let (k, o) = parse(&eth(0x0800, &ipv4(IPPROTO_ICMP, &msg)));
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (1, 11, 1));
    assert_eq!(o.l4, 34);
    let (k, _) = parse(&eth(0x0800, &ipv4(IPPROTO_ICMP, &msg[..7])));
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
    // ICMP fragments: later ones have no type/code.
    let (k, _) = parse(&eth(
        0x0800,
        &V4 {
            proto: IPPROTO_ICMP,
            frag: 0x0010,
            ..Default::default()
        }
        .build(&msg),
    ));
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
}

#[test]
fn igmp_type_code() {
    let msg = [0x16, 0, 0xfa, 0x04, 224, 0, 0, 251];
    let (k, _) = parse(&eth(0x0800, &ipv4(2, &msg)));
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (2, 0x16, 0));
    let (k, _) = parse(&eth(0x0800, &ipv4(2, &msg[..7])));
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
}

// ---------------------------------------------------------------- ARP

#[test]
fn arp_request_and_reply() {
    for (ty, op) in [(0x0806, 1), (0x0806, 2), (0x8035, 3), (0x0806, 0xff)] {
        let (k, o) = parse(&eth(ty, &arp(1, 0x0800, 6, 4, op)));
        let mut want = l2_only(ty);
        want.nw_src = 0x0a00_0001;
        want.nw_dst = 0x0a00_0002;
        want.nw_proto = op as u8;
        want.arp_sha = [0, 0, 0, 0, 0, 0x10];
        want.arp_tha = [0, 0, 0, 0, 0, 0x20];
        assert_eq!(k, want);
        assert_eq!(o, offs(N, 14, N));
    }
}

#[test]
fn arp_opcode_above_255_keeps_addresses() {
    let (k, _) = parse(&eth(0x0806, &arp(1, 0x0800, 6, 4, 0x0101)));
    assert_eq!(k.nw_proto, 0);
    assert_eq!((k.nw_src, k.nw_dst), (0x0a00_0001, 0x0a00_0002));
    assert_eq!(k.arp_sha, [0, 0, 0, 0, 0, 0x10]);
}

#[test]
fn arp_malformed() {
    let good = arp(1, 0x0800, 6, 4, 1);
    let cases = [
        ("27 bytes", good[..27].to_vec()),
        ("htype 6", arp(6, 0x0800, 6, 4, 1)),
        ("ptype ipv6", arp(1, 0x86dd, 6, 4, 1)),
        ("hlen 8", arp(1, 0x0800, 8, 4, 1)),
        ("plen 16", arp(1, 0x0800, 6, 16, 1)),
    ];
    for (what, a) in cases {
        let (k, o) = parse(&eth(0x0806, &a));
        assert_eq!(k, l2_only(0x0806), "{what}");
        assert_eq!(o, offs(N, 14, N));
    }
    // Padding after the 28 bytes is fine.
    let mut a = good.clone();
    a.extend_from_slice(&[0; 18]);
    assert_eq!(parse(&eth(0x0806, &a)).0.nw_proto, 1);
}

// ---------------------------------------------------------------- IPv6

#[test]
fn ipv6_udp_full_key() {
    let ip = ipv6_raw(0x6b9f_edcb, None, IPPROTO_UDP, 5, &udp(1, 53, b"x"));
    let (k, o) = parse(&eth(0x86dd, &ip));
    let mut want = l2_only(0x86dd);
    want.ipv6_src = V6A;
    want.ipv6_dst = V6B;
    want.ipv6_label = 0xfedcb;
    want.nw_tos = 0xb9;
    want.nw_ttl = 5;
    want.nw_proto = IPPROTO_UDP;
    want.tp_src = 1;
    want.tp_dst = 53;
    assert_eq!(k, want);
    assert_eq!(o, offs(N, 14, 54));
}

#[test]
fn ipv6_malformed() {
    let good = ipv6(IPPROTO_UDP, &udp(1, 2, &[]));
    let (k, o) = parse(&eth(0x86dd, &good[..39]));
    assert_eq!(k, l2_only(0x86dd));
    assert_eq!(o, offs(N, 14, N));
    // Payload length beyond the frame.
    let ip = ipv6_raw(0x6000_0000, Some(9), IPPROTO_UDP, 64, &udp(1, 2, &[]));
    let (k, o) = parse(&eth(0x86dd, &ip));
    assert_eq!(k, l2_only(0x86dd));
    assert_eq!(o.l4, N);
    // A wrong version nibble is an invalid header (real OVS 3.1).
    let ip = ipv6_raw(0x4000_0000, None, IPPROTO_UDP, 64, &udp(1, 2, &[]));
    assert_eq!(parse(&eth(0x86dd, &ip)).0, l2_only(0x86dd));
}

#[test]
fn ipv6_padding_is_ignored() {
    // Payload length 4: the UDP header runs into the padding.
    let mut ip = ipv6_raw(0x6000_0000, Some(4), IPPROTO_UDP, 64, &udp(1, 2, &[]));
    ip.resize(100, 0);
    let (k, o) = parse(&eth(0x86dd, &ip));
    assert_eq!(k.nw_proto, IPPROTO_UDP);
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
    assert_eq!(o.l4, 54);
    // Payload length 0 with next header UDP: no L4.
    let ip = ipv6_raw(0x6000_0000, Some(0), IPPROTO_UDP, 64, &udp(1, 2, &[]));
    let (k, _) = parse(&eth(0x86dd, &ip));
    assert_eq!((k.nw_proto, k.tp_src), (IPPROTO_UDP, 0));
}

/// Generic extension header (hop-by-hop / routing / dest-opts) of
/// `(len+1)*8` bytes.
fn ext(next: u8, len: u8) -> Vec<u8> {
    let mut e = vec![next, len];
    e.resize((usize::from(len) + 1) * 8, 0);
    e
}

fn ah(next: u8, len: u8) -> Vec<u8> {
    let mut e = vec![next, len];
    e.resize((usize::from(len) + 2) * 4, 0);
    e
}

fn frag_hdr(next: u8, offlg: u16) -> Vec<u8> {
    let mut e = vec![next, 0];
    e.extend_from_slice(&offlg.to_be_bytes());
    e.extend_from_slice(&[0, 0, 0, 7]);
    e
}

#[test]
fn ipv6_extension_header_chain() {
    let mut p = ext(60, 0); // hop-by-hop -> dest opts
    p.extend(ext(43, 1)); // dest opts (16 bytes) -> routing
    p.extend(ext(51, 0)); // routing -> AH
    p.extend(ah(IPPROTO_TCP, 4)); // AH (24 bytes) -> TCP
    let ext_len = p.len();
    p.extend(tcp(443, 8080, 0x5018, &[]));
    let (k, o) = parse(&eth(0x86dd, &ipv6(0, &p)));
    assert_eq!(k.nw_proto, IPPROTO_TCP);
    assert_eq!((k.tp_src, k.tp_dst, k.tcp_flags), (443, 8080, 0x18));
    assert_eq!(k.nw_frag, 0);
    assert_eq!(usize::from(o.l4), 54 + ext_len);
}

#[test]
fn ipv6_unknown_next_header_stops() {
    // ESP (50) is not walked.
    let (k, o) = parse(&eth(0x86dd, &ipv6(50, &[0; 16])));
    assert_eq!(k.nw_proto, 50);
    assert_eq!(o.l4, 54);
    // No next header (59).
    let (k, _) = parse(&eth(0x86dd, &ipv6(59, &[])));
    assert_eq!((k.nw_proto, k.nw_ttl), (59, 64));
}

#[test]
fn ipv6_truncated_extension_header_keeps_only_addresses() {
    let ip_vtf = 0x6280_0005;
    // Fewer than 8 bytes left for the hop-by-hop header.
    let mut cases = vec![ipv6_raw(ip_vtf, None, 0, 9, &[IPPROTO_UDP, 0, 0, 0])];
    // Length field beyond the payload.
    cases.push(ipv6_raw(ip_vtf, None, 0, 9, &ext(IPPROTO_UDP, 2)[..16]));
    // Fragment header cut short.
    cases.push(ipv6_raw(ip_vtf, None, 44, 9, &frag_hdr(17, 0x0001)[..7]));
    // AH cut short.
    cases.push(ipv6_raw(ip_vtf, None, 51, 9, &ah(17, 4)[..20]));
    // First fragment then a truncated header: nw_frag is lost too.
    let mut p = frag_hdr(60, 0x0001);
    p.extend_from_slice(&[17, 0, 0]);
    cases.push(ipv6_raw(ip_vtf, None, 44, 9, &p));
    for ip in cases {
        let (k, o) = parse(&eth(0x86dd, &ip));
        let mut want = l2_only(0x86dd);
        want.ipv6_src = V6A;
        want.ipv6_dst = V6B;
        assert_eq!(k, want, "{ip:02x?}");
        assert_eq!(o, offs(N, 14, N));
    }
}

#[test]
fn ipv6_fragments() {
    let seg = udp(1234, 53, &[0; 8]);
    // First fragment: FRAG_ANY, walk continues, L4 parsed.
    let p = [frag_hdr(IPPROTO_UDP, 0x0001), seg.clone()].concat();
    let (k, o) = parse(&eth(0x86dd, &ipv6(44, &p)));
    assert_eq!(k.nw_frag, FRAG_ANY);
    assert_eq!(k.nw_proto, IPPROTO_UDP);
    assert_eq!((k.tp_src, k.tp_dst), (1234, 53));
    assert_eq!(o.l4, 62);
    // Later fragment: nw_proto is 44 (the walk stops at the fragment
    // header), l4 after it, no ports.
    for offlg in [37 << 3, (37 << 3) | 1] {
        let p = [frag_hdr(IPPROTO_UDP, offlg), seg.clone()].concat();
        let (k, o) = parse(&eth(0x86dd, &ipv6(44, &p)));
        assert_eq!(k.nw_frag, FRAG_ANY | FRAG_LATER);
        assert_eq!(k.nw_proto, 44);
        assert_eq!((k.tp_src, k.tp_dst), (0, 0));
        assert_eq!(o.l4, 62);
        assert_eq!(k.ipv6_label, 0);
        assert_eq!(k.nw_ttl, 64);
    }
    // Atomic fragment (offset 0, M 0): not a fragment.
    let p = [frag_hdr(IPPROTO_UDP, 0), seg.clone()].concat();
    let (k, _) = parse(&eth(0x86dd, &ipv6(44, &p)));
    assert_eq!(k.nw_frag, 0);
    assert_eq!((k.nw_proto, k.tp_dst), (IPPROTO_UDP, 53));
    // Only reserved bits set: OVS compares the whole word with 0.
    let p = [frag_hdr(IPPROTO_UDP, 0x0006), seg.clone()].concat();
    let (k, _) = parse(&eth(0x86dd, &ipv6(44, &p)));
    assert_eq!(k.nw_frag, FRAG_ANY);
    assert_eq!(k.tp_dst, 53);
    // Fragment header after hop-by-hop.
    let p = [ext(44, 0), frag_hdr(IPPROTO_UDP, 8 << 3), seg].concat();
    let (k, o) = parse(&eth(0x86dd, &ipv6(0, &p)));
    assert_eq!((k.nw_frag, k.nw_proto), (FRAG_ANY | FRAG_LATER, 44));
    assert_eq!(o.l4, 70);
}

// ---------------------------------------------------------------- ICMPv6 / ND

const TARGET: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
const MAC_A: [u8; 6] = [0, 0, 0, 0, 0, 0xaa];
const MAC_B: [u8; 6] = [0, 0, 0, 0, 0, 0xbb];

fn parse_icmp6(msg: &[u8]) -> FlowKey {
    let (k, o) = parse(&eth(0x86dd, &ipv6(IPPROTO_ICMPV6, msg)));
    assert_eq!(o.l4, 54);
    assert_eq!(k.nw_proto, IPPROTO_ICMPV6);
    k
}

#[test]
fn icmpv6_echo() {
    let k = parse_icmp6(&[128, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!((k.tp_src, k.tp_dst), (128, 0));
    assert_eq!((k.nd_target, k.arp_sha), ([0; 16], [0; 6]));
    let k = parse_icmp6(&[128, 0, 0, 0, 0, 1, 0]);
    assert_eq!((k.tp_src, k.tp_dst), (0, 0));
}

#[test]
fn nd_solicit_with_sll() {
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &lla_opt(1, MAC_A)));
    assert_eq!((k.tp_src, k.tp_dst), (135, 0));
    assert_eq!(k.nd_target, TARGET);
    assert_eq!((k.arp_sha, k.arp_tha), (MAC_A, [0; 6]));
    assert_eq!(k.tcp_flags, 0);
}

#[test]
fn nd_advert_with_tll_and_both() {
    let k = parse_icmp6(&nd(136, 0, Some(TARGET), &lla_opt(2, MAC_B)));
    assert_eq!((k.nd_target, k.arp_sha, k.arp_tha), (TARGET, [0; 6], MAC_B));
    let opts = [lla_opt(2, MAC_B), lla_opt(1, MAC_A)].concat();
    let k = parse_icmp6(&nd(136, 0, Some(TARGET), &opts));
    assert_eq!((k.arp_sha, k.arp_tha), (MAC_A, MAC_B));
    // Other options are skipped (a 16-byte nonce option).
    let mut opts = vec![14, 2];
    opts.resize(16, 0x55);
    opts.extend(lla_opt(1, MAC_A));
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &opts));
    assert_eq!(k.arp_sha, MAC_A);
}

#[test]
fn nd_without_options_or_target() {
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &[]));
    assert_eq!(
        (k.nd_target, k.arp_sha, k.arp_tha),
        (TARGET, [0; 6], [0; 6])
    );
    // Target truncated: no target, type/code kept.
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &[])[..23]);
    assert_eq!((k.tp_src, k.tp_dst, k.nd_target), (135, 0, [0; 16]));
}

#[test]
fn nd_duplicate_option_invalidates() {
    let opts = [lla_opt(1, MAC_A), lla_opt(2, MAC_B), lla_opt(1, MAC_B)].concat();
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &opts));
    assert_eq!((k.tp_src, k.tp_dst), (135, 0));
    assert_eq!(
        (k.nd_target, k.arp_sha, k.arp_tha),
        ([0; 16], [0; 6], [0; 6])
    );
    let opts = [lla_opt(2, MAC_A), lla_opt(2, MAC_A)].concat();
    let k = parse_icmp6(&nd(136, 0, Some(TARGET), &opts));
    assert_eq!(k.nd_target, [0; 16]);
    // A repeated option whose first copy was all-zero is accepted (OVS
    // tests "is the stored address zero").
    let opts = [lla_opt(1, [0; 6]), lla_opt(1, MAC_A)].concat();
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &opts));
    assert_eq!((k.nd_target, k.arp_sha), (TARGET, MAC_A));
}

#[test]
fn nd_bad_option_length_stops_but_keeps() {
    // Length 0 after a valid SLL: walk stops, SLL and target kept.
    let opts = [lla_opt(1, MAC_A), vec![2, 0, 1, 2, 3, 4, 5, 6]].concat();
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &opts));
    assert_eq!((k.nd_target, k.arp_sha, k.arp_tha), (TARGET, MAC_A, [0; 6]));
    // Option longer than the rest of the message: same.
    let opts = [lla_opt(1, MAC_A), vec![2, 2, 1, 2, 3, 4, 5, 6]].concat();
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &opts));
    assert_eq!((k.nd_target, k.arp_sha, k.arp_tha), (TARGET, MAC_A, [0; 6]));
    // An SLL option of length 2 (16 bytes) is not an Ethernet address.
    let mut o = lla_opt(1, MAC_A);
    o[1] = 2;
    o.resize(16, 0);
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &o));
    assert_eq!((k.nd_target, k.arp_sha), (TARGET, [0; 6]));
    // Fewer than 8 bytes of options are ignored.
    let k = parse_icmp6(&nd(135, 0, Some(TARGET), &lla_opt(1, MAC_A)[..7]));
    assert_eq!((k.nd_target, k.arp_sha), (TARGET, [0; 6]));
}

#[test]
fn nd_needs_code_zero() {
    let k = parse_icmp6(&nd(135, 1, Some(TARGET), &lla_opt(1, MAC_A)));
    assert_eq!((k.tp_src, k.tp_dst), (135, 1));
    assert_eq!((k.nd_target, k.arp_sha), ([0; 16], [0; 6]));
    // Router solicitation is not parsed as ND.
    let k = parse_icmp6(&nd(133, 0, Some(TARGET), &lla_opt(1, MAC_A)));
    assert_eq!((k.nd_target, k.arp_sha), ([0; 16], [0; 6]));
}

#[test]
fn l4_dispatch_ignores_ip_version() {
    // OVS dispatches on nw_proto alone: ICMPv6 (with ND) inside IPv4 ...
    let msg = nd(135, 0, Some(TARGET), &lla_opt(1, MAC_A));
    let (k, _) = parse(&eth(0x0800, &ipv4(IPPROTO_ICMPV6, &msg)));
    assert_eq!((k.tp_src, k.nd_target, k.arp_sha), (135, TARGET, MAC_A));
    // ... and ICMPv4 inside IPv6.
    let (k, _) = parse(&eth(0x86dd, &ipv6(IPPROTO_ICMP, &[3, 3, 0, 0, 0, 0, 0, 0])));
    assert_eq!((k.tp_src, k.tp_dst), (3, 3));
}

// ---------------------------------------------------------------- batch

#[test]
fn batch_matches_single() {
    let frames: Vec<Vec<u8>> = vec![
        eth(0x0800, &ipv4(IPPROTO_UDP, &udp(1, 2, &[]))),
        vec![0; 5],
        eth(0x86dd, &ipv6(IPPROTO_TCP, &tcp(3, 4, 0x5002, &[]))),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let metas: Vec<PacketMeta> = (0..3)
        .map(|i| PacketMeta {
            in_port: i,
            ..Default::default()
        })
        .collect();
    let mut keys = vec![FlowKey::all_ones(); 3];
    let mut ofs = vec![Ok(Offsets::default()); 3];
    extract_batch(&refs, &metas, &mut keys, &mut ofs);
    for i in 0..3 {
        let mut k = FlowKey::default();
        let r = extract(refs[i], &metas[i], &mut k);
        assert_eq!(r, ofs[i]);
        assert_eq!(k, keys[i]);
    }
    assert!(ofs[1].is_err());
}
