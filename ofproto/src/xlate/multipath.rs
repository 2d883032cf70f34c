//! `multipath(...)` and `bundle(...)`/`bundle_load(...)` (OVS
//! `lib/multipath.c`, `lib/bundle.c`): a hash of the flow's fields
//! (`flow_hash_fields`, with OVS's own jhash and murmur-style hash so that
//! the same flow picks the same link or member as OVS does) chooses a link
//! number written to a subfield, or a live member port to output to. The
//! hashed fields are unwildcarded in the megaflow
//! (`flow_mask_hash_fields`), so every packet of a flow takes the same way.

use super::{port_from_u16, Ctx};
use crate::fields::SubField;
use crate::ofp_port::{
    OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_NONE, OFPP_NORMAL, OFPP_TABLE,
};
use crate::rule::{BundleAlgorithm, HashFields, MultipathAlgorithm};
use flowcache::key::*;

// ---------------------------------------------------------------------
// OVS lib/hash.h (the portable, non-SSE4.2 build that Debian ships) and
// lib/jhash.c.

fn mhash_add(hash: u32, data: u32) -> u32 {
    let mut d = data.wrapping_mul(0xcc9e_2d51);
    d = d.rotate_left(15);
    d = d.wrapping_mul(0x1b87_3593);
    let h = (hash ^ d).rotate_left(13);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

fn mhash_finish(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// OVS `hash_add`.
pub(crate) fn hash_add(hash: u32, data: u32) -> u32 {
    mhash_add(hash, data)
}

/// OVS `hash_add64`: the low half, then the high half.
fn hash_add64(hash: u32, data: u64) -> u32 {
    hash_add(hash_add(hash, data as u32), (data >> 32) as u32)
}

/// OVS `hash_finish`.
pub(crate) fn hash_finish(hash: u32, fin: u32) -> u32 {
    mhash_finish(hash ^ fin)
}

/// OVS `hash_2words`.
pub(crate) fn hash_2words(x: u32, y: u32) -> u32 {
    hash_finish(hash_add(hash_add(x, 0), y), 8)
}

fn jhash_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn jhash_final(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// OVS `jhash_bytes` (Bob Jenkins' lookup3 over little-endian words, as
/// on x86).
pub(crate) fn jhash_bytes(p: &[u8], basis: u32) -> u32 {
    let word = |s: &[u8]| {
        let mut w = [0u8; 4];
        w[..s.len()].copy_from_slice(s);
        u32::from_le_bytes(w)
    };
    let init = 0xdead_beef_u32
        .wrapping_add(p.len() as u32)
        .wrapping_add(basis);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = p;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        jhash_mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if !rest.is_empty() {
        let mut tmp = [0u8; 12];
        tmp[..rest.len()].copy_from_slice(rest);
        a = a.wrapping_add(word(&tmp[0..4]));
        b = b.wrapping_add(word(&tmp[4..8]));
        c = c.wrapping_add(word(&tmp[8..12]));
        jhash_final(&mut a, &mut b, &mut c);
    }
    c
}

// ---------------------------------------------------------------------
// OVS lib/flow.c: flow_hash_fields and flow_mask_hash_fields.

/// A big-endian 32-bit field as OVS's `struct flow` holds it, read as a
/// native (little-endian) word.
fn be32_word(v: u32) -> u32 {
    v.swap_bytes()
}

fn be16_word(v: u16) -> u32 {
    u32::from(v.swap_bytes())
}

fn xor16(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    let mut o = [0u8; 16];
    for i in 0..16 {
        o[i] = a[i] ^ b[i];
    }
    o
}

fn is_l4_with_ports(proto: u8, udp: bool) -> bool {
    proto == IPPROTO_TCP || proto == IPPROTO_SCTP || (udp && proto == IPPROTO_UDP)
}

/// OVS `flow_hash_symmetric_l4`: jhash of a 32-byte struct.
fn symmetric_l4(f: &FlowKey, basis: u32) -> u32 {
    let mut s = [0u8; 32];
    if f.dl_type == ETH_TYPE_IPV4 {
        s[0..4].copy_from_slice(&(f.nw_src ^ f.nw_dst).to_be_bytes());
    } else if f.dl_type == ETH_TYPE_IPV6 {
        s[0..16].copy_from_slice(&xor16(&f.ipv6_src, &f.ipv6_dst));
    }
    s[16..18].copy_from_slice(&f.dl_type.to_be_bytes());
    let tci = f
        .vlans
        .iter()
        .fold(0u16, |t, v| t ^ (v.tci & VLAN_VID_MASK));
    s[18..20].copy_from_slice(&tci.to_be_bytes());
    if (f.dl_type == ETH_TYPE_IPV4 || f.dl_type == ETH_TYPE_IPV6)
        && (f.nw_proto == IPPROTO_TCP || f.nw_proto == IPPROTO_SCTP)
    {
        s[20..22].copy_from_slice(&(f.tp_src ^ f.tp_dst).to_be_bytes());
    }
    for i in 0..6 {
        s[22 + i] = f.dl_src[i] ^ f.dl_dst[i];
    }
    if f.dl_type == ETH_TYPE_IPV4 || f.dl_type == ETH_TYPE_IPV6 {
        s[28] = f.nw_proto;
    }
    jhash_bytes(&s, basis)
}

/// OVS `flow_hash_symmetric_l2` (what `symmetric_l3l4` falls back to for
/// non-IP flows).
fn symmetric_l2(f: &FlowKey, basis: u32) -> u32 {
    let mut s = [0u8; 12];
    s[0..2].copy_from_slice(&f.dl_type.to_be_bytes());
    let tci = f
        .vlans
        .iter()
        .fold(0u16, |t, v| t ^ (v.tci & VLAN_VID_MASK));
    s[2..4].copy_from_slice(&tci.to_be_bytes());
    for i in 0..6 {
        s[4 + i] = f.dl_src[i] ^ f.dl_dst[i];
    }
    let mut h = basis;
    for w in s.chunks(4) {
        h = hash_add(h, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    }
    hash_finish(h, basis)
}

/// OVS `flow_hash_symmetric_l3l4`.
fn symmetric_l3l4(f: &FlowKey, basis: u32, udp: bool) -> u32 {
    let mut h = basis;
    if f.dl_type == ETH_TYPE_IPV4 {
        h = hash_add(h, be32_word(f.nw_src ^ f.nw_dst));
    } else if f.dl_type == ETH_TYPE_IPV6 {
        let x = xor16(&f.ipv6_src, &f.ipv6_dst);
        for i in 0..2 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&x[8 * i..8 * i + 8]);
            h = hash_add64(h, u64::from_le_bytes(w));
        }
    } else {
        return symmetric_l2(f, basis);
    }
    h = hash_add(h, u32::from(f.nw_proto));
    if f.nw_frag & (FRAG_ANY | FRAG_LATER) == 0 && is_l4_with_ports(f.nw_proto, udp) {
        h = hash_add(h, be16_word(f.tp_src ^ f.tp_dst));
    }
    hash_finish(h, basis)
}

/// OVS `flow_hash_symmetric_l3`: jhash of a 20-byte struct.
fn symmetric_l3(f: &FlowKey, basis: u32) -> u32 {
    let mut s = [0u8; 20];
    if f.dl_type == ETH_TYPE_IPV4 {
        s[0..4].copy_from_slice(&(f.nw_src ^ f.nw_dst).to_be_bytes());
    } else if f.dl_type == ETH_TYPE_IPV6 {
        s[0..16].copy_from_slice(&xor16(&f.ipv6_src, &f.ipv6_dst));
    }
    s[16..18].copy_from_slice(&f.dl_type.to_be_bytes());
    jhash_bytes(&s, basis)
}

/// OVS `flow_hash_fields`.
pub(crate) fn flow_hash_fields(f: &FlowKey, fields: HashFields, basis: u16) -> u32 {
    let basis = u32::from(basis);
    match fields {
        HashFields::EthSrc => jhash_bytes(&f.dl_src, basis),
        HashFields::SymmetricL4 => symmetric_l4(f, basis),
        HashFields::SymmetricL3L4 => symmetric_l3l4(f, basis, false),
        HashFields::SymmetricL3L4Udp => symmetric_l3l4(f, basis, true),
        HashFields::NwSrc | HashFields::NwDst => {
            let dst = fields == HashFields::NwDst;
            if f.dl_type == ETH_TYPE_IPV4 {
                let a = if dst { f.nw_dst } else { f.nw_src };
                jhash_bytes(&a.to_be_bytes(), basis)
            } else if f.dl_type == ETH_TYPE_IPV6 {
                jhash_bytes(if dst { &f.ipv6_dst } else { &f.ipv6_src }, basis)
            } else {
                basis
            }
        }
        HashFields::SymmetricL3 => symmetric_l3(f, basis),
    }
}

/// OVS `flow_unwildcard_tp_ports`.
fn unwildcard_tp_ports(f: &FlowKey, wc: &mut FlowKey) {
    if f.nw_proto != IPPROTO_ICMP {
        wc.tp_src = 0xffff;
        wc.tp_dst = 0xffff;
    } else {
        wc.tp_src |= 0xff;
        wc.tp_dst |= 0xff;
    }
}

fn mask_addrs(f: &FlowKey, wc: &mut FlowKey, src: bool, dst: bool) -> bool {
    if f.dl_type == ETH_TYPE_IPV4 {
        if src {
            wc.nw_src = u32::MAX;
        }
        if dst {
            wc.nw_dst = u32::MAX;
        }
        true
    } else if f.dl_type == ETH_TYPE_IPV6 {
        if src {
            wc.ipv6_src = [0xff; 16];
        }
        if dst {
            wc.ipv6_dst = [0xff; 16];
        }
        true
    } else {
        false
    }
}

/// OVS `flow_mask_hash_fields`.
pub(crate) fn flow_mask_hash_fields(f: &FlowKey, wc: &mut FlowKey, fields: HashFields) {
    let is_ip = f.dl_type == ETH_TYPE_IPV4 || f.dl_type == ETH_TYPE_IPV6;
    let frag = f.nw_frag & (FRAG_ANY | FRAG_LATER) != 0;
    match fields {
        HashFields::EthSrc => wc.dl_src = [0xff; 6],
        HashFields::SymmetricL4 => {
            wc.dl_src = [0xff; 6];
            wc.dl_dst = [0xff; 6];
            mask_addrs(f, wc, true, true);
            if is_ip {
                wc.nw_proto = 0xff;
                if f.nw_proto != IPPROTO_UDP {
                    unwildcard_tp_ports(f, wc);
                }
            }
            for v in wc.vlans.iter_mut() {
                v.tci |= VLAN_VID_MASK | VLAN_CFI;
            }
        }
        HashFields::SymmetricL3L4 | HashFields::SymmetricL3L4Udp => {
            if fields == HashFields::SymmetricL3L4Udp && is_ip && f.nw_proto == IPPROTO_UDP && !frag
            {
                wc.tp_src = 0xffff;
                wc.tp_dst = 0xffff;
            }
            if mask_addrs(f, wc, true, true) {
                wc.nw_proto = 0xff;
                if (f.nw_proto == IPPROTO_TCP || f.nw_proto == IPPROTO_SCTP) && !frag {
                    wc.tp_src = 0xffff;
                    wc.tp_dst = 0xffff;
                }
            }
        }
        HashFields::NwSrc => {
            mask_addrs(f, wc, true, false);
        }
        HashFields::NwDst => {
            mask_addrs(f, wc, false, true);
        }
        HashFields::SymmetricL3 => {
            mask_addrs(f, wc, true, true);
        }
    }
}

// ---------------------------------------------------------------------
// OVS lib/multipath.c.

fn algorithm_hrw(hash: u32, n_links: u32) -> u32 {
    let mut best_link = 0;
    let mut best_weight = hash_2words(hash, 0);
    for link in 1..n_links {
        let w = hash_2words(hash, link);
        if w > best_weight {
            best_link = link;
            best_weight = w;
        }
    }
    best_link
}

fn round_up_pow2(x: u32) -> u32 {
    x.checked_next_power_of_two().unwrap_or(0)
}

fn algorithm_iter_hash(hash: u32, n_links: u32, modulo: u32) -> u32 {
    let modulo = if modulo < n_links || modulo / 2 > n_links {
        round_up_pow2(n_links)
    } else {
        modulo
    };
    let mut i = 0;
    loop {
        let link = hash_2words(hash, i) % modulo;
        i = i.wrapping_add(1);
        if link < n_links {
            return link;
        }
    }
}

/// OVS `multipath_algorithm`: the link (0..n_links) for `hash`.
pub(crate) fn multipath_algorithm(
    hash: u32,
    alg: MultipathAlgorithm,
    n_links: u32,
    arg: u32,
) -> u32 {
    match alg {
        MultipathAlgorithm::ModuloN => hash % n_links,
        MultipathAlgorithm::HashThreshold => {
            if n_links == 1 {
                0
            } else {
                hash / (u32::MAX / n_links + 1)
            }
        }
        MultipathAlgorithm::Hrw => {
            if n_links <= 64 {
                algorithm_hrw(hash, n_links)
            } else {
                algorithm_iter_hash(hash, n_links, 0)
            }
        }
        MultipathAlgorithm::IterHash => algorithm_iter_hash(hash, n_links, arg),
    }
}

impl Ctx<'_> {
    /// `multipath(fields,basis,algorithm,n_links,arg,dst)` (OVS
    /// `multipath_execute`).
    pub(super) fn multipath(
        &mut self,
        fields: HashFields,
        basis: u16,
        alg: MultipathAlgorithm,
        n_links: u32,
        arg: u32,
        dst: &SubField,
    ) {
        let hash = flow_hash_fields(&self.flow, fields, basis);
        let link = multipath_algorithm(hash, alg, n_links, arg);
        flow_mask_hash_fields(&self.flow, &mut self.wc, fields);
        self.load_subfield(dst, u128::from(link));
    }

    /// Writes `value` to `dst`, exact in the megaflow (OVS `nxm_reg_load`).
    fn load_subfield(&mut self, dst: &SubField, value: u128) {
        let mask = dst.mask();
        dst.field.or_mask(&mut self.wc, mask);
        dst.field.set_masked(&mut self.flow, value << dst.ofs, mask);
    }

    /// OVS `member_enabled_cb`: reserved ports but CONTROLLER count as
    /// enabled; a real port while it exists and is live.
    fn member_enabled(&self, port: u32) -> bool {
        match port {
            OFPP_IN_PORT | OFPP_TABLE | OFPP_NORMAL | OFPP_FLOOD | OFPP_ALL | OFPP_NONE => true,
            OFPP_CONTROLLER => false,
            p => self.ports.is_live(p),
        }
    }

    /// `bundle(...)` / `bundle_load(...)` (OVS `bundle_execute` and
    /// `xlate_bundle_action`).
    pub(super) fn bundle(
        &mut self,
        fields: HashFields,
        basis: u16,
        alg: BundleAlgorithm,
        members: &[u32],
        dst: Option<&SubField>,
    ) {
        let port = match alg {
            BundleAlgorithm::ActiveBackup => members
                .iter()
                .copied()
                .find(|m| self.member_enabled(*m))
                .unwrap_or(OFPP_NONE),
            BundleAlgorithm::Hrw => {
                if members.len() > 1 {
                    flow_mask_hash_fields(&self.flow, &mut self.wc, fields);
                }
                let flow_hash = flow_hash_fields(&self.flow, fields, basis);
                let mut best: Option<(usize, u32)> = None;
                for (i, m) in members.iter().enumerate() {
                    if self.member_enabled(*m) {
                        let h = hash_2words(i as u32, flow_hash);
                        if best.is_none_or(|(_, b)| h > b) {
                            best = Some((i, h));
                        }
                    }
                }
                best.map_or(OFPP_NONE, |(i, _)| members[i])
            }
        };
        match dst {
            Some(d) => self.load_subfield(d, u128::from(port & 0xffff)),
            None => match port_from_u16(u128::from(port)) {
                Some(p) => self.output(p),
                None => self.note(" >> no live bundle member"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_primitives_match_ovs() {
        // (hash_2words is checked through the links OVS chose, below.)
        // lookup3's published check value: hashlittle("", 0) = 0xdeadbeef.
        assert_eq!(jhash_bytes(b"", 0), 0xdead_beef);
        // hashlittle("Four score and seven years ago", 0) = 0x17770551.
        assert_eq!(
            jhash_bytes(b"Four score and seven years ago", 0),
            0x1777_0551
        );
        assert_eq!(
            jhash_bytes(b"Four score and seven years ago", 1),
            0xcd62_8161
        );
    }

    #[test]
    fn algorithms_stay_in_range_and_modulo_is_modulo() {
        for h in [0u32, 1, 7, 0xdead_beef, u32::MAX] {
            for n in [1u32, 2, 3, 4, 63, 64, 65, 1000] {
                for alg in [
                    MultipathAlgorithm::ModuloN,
                    MultipathAlgorithm::HashThreshold,
                    MultipathAlgorithm::Hrw,
                    MultipathAlgorithm::IterHash,
                ] {
                    assert!(multipath_algorithm(h, alg, n, 0) < n);
                }
                assert_eq!(
                    multipath_algorithm(h, MultipathAlgorithm::ModuloN, n, 0),
                    h % n
                );
            }
        }
        assert_eq!(
            multipath_algorithm(u32::MAX, MultipathAlgorithm::HashThreshold, 4, 0),
            3
        );
        assert_eq!(
            multipath_algorithm(0x3fff_ffff, MultipathAlgorithm::HashThreshold, 4, 0),
            0
        );
    }

    #[test]
    fn symmetric_hashes_are_symmetric() {
        let a = FlowKey {
            dl_src: [0, 0, 0, 0, 0, 1],
            dl_dst: [0, 0, 0, 0, 0, 2],
            dl_type: ETH_TYPE_IPV4,
            nw_proto: IPPROTO_TCP,
            nw_src: 0x0a00_0001,
            nw_dst: 0x0a00_0002,
            tp_src: 1234,
            tp_dst: 80,
            ..Default::default()
        };
        let b = FlowKey {
            dl_src: a.dl_dst,
            dl_dst: a.dl_src,
            nw_src: a.nw_dst,
            nw_dst: a.nw_src,
            tp_src: a.tp_dst,
            tp_dst: a.tp_src,
            ..a
        };
        for f in [
            HashFields::SymmetricL4,
            HashFields::SymmetricL3L4,
            HashFields::SymmetricL3L4Udp,
            HashFields::SymmetricL3,
        ] {
            assert_eq!(
                flow_hash_fields(&a, f, 7),
                flow_hash_fields(&b, f, 7),
                "{f:?}"
            );
        }
        assert_ne!(
            flow_hash_fields(&a, HashFields::NwSrc, 7),
            flow_hash_fields(&b, HashFields::NwSrc, 7)
        );
    }

    #[test]
    fn links_are_the_ones_ovs_chose() {
        // From ofproto/trace in OVS 3.1 (tests/conformance/public/
        // hw_multipath_symmetric_l3l4, packet 18 and 0): a non-IP frame
        // (symmetric_l3l4 falls back to the L2 hash) and a TCP flow.
        let eth = FlowKey {
            dl_src: [0, 0, 0, 0, 0, 1],
            dl_dst: [0, 0, 0, 0, 0, 2],
            dl_type: 0x88b5,
            ..Default::default()
        };
        let tcp = FlowKey {
            dl_src: [0, 0, 0, 0, 0, 1],
            dl_dst: [0, 0, 0, 0, 0, 0x10],
            dl_type: ETH_TYPE_IPV4,
            nw_proto: IPPROTO_TCP,
            nw_src: 0x0a00_0001,
            nw_dst: 0x0a01_0002,
            tp_src: 1000,
            tp_dst: 80,
            ..Default::default()
        };
        let run = |f: &FlowKey, fields| {
            let h = |b| flow_hash_fields(f, fields, b);
            (
                multipath_algorithm(h(50), MultipathAlgorithm::ModuloN, 7, 0),
                multipath_algorithm(h(0), MultipathAlgorithm::HashThreshold, 1000, 0),
                multipath_algorithm(h(1), MultipathAlgorithm::Hrw, 5, 0),
                multipath_algorithm(h(65535), MultipathAlgorithm::IterHash, 12, 16),
                multipath_algorithm(h(9), MultipathAlgorithm::Hrw, 100, 0),
            )
        };
        assert_eq!(run(&eth, HashFields::SymmetricL3L4), (0, 0x37a, 3, 2, 0x52));
        assert_eq!(run(&tcp, HashFields::SymmetricL4), (4, 0x3ae, 4, 0xb, 0x3e));
    }
}
