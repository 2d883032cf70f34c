//! The flow key: every header field the switch can match on, in a fixed
//! layout of 64-bit words.
//!
//! The layout follows OVS's `struct flow`: fields that are matched together
//! sit in the same word, so a megaflow mask touches few words and the
//! masked compare/hash in the classifiers is a short loop over `u64`s.
//!
//! Representation rules (used by the parser, the flow language and the
//! action executor alike):
//! * Multi-byte integers (`dl_type`, `nw_src`, `tp_src`, VLAN TCI, MPLS LSE,
//!   registers) are stored as host-order integers: `10.0.0.1` is `0x0a000001`.
//! * MAC and IPv6 addresses are byte arrays in network order.
//! * A zero field means "absent": a packet with no VLAN has `vlans[0].tci == 0`
//!   (a present tag always has the CFI/"present" bit [`VLAN_CFI`] set, as in
//!   OVS), a non-IP packet has `nw_proto == 0`, and so on.
//! * ICMP type/code live in `tp_src`/`tp_dst`, ND SLL/TLL in
//!   `arp_sha`/`arp_tha`, ARP SPA/TPA and opcode in `nw_src`/`nw_dst`/`nw_proto`
//!   (all as OVS does).
//!
//! Words `0..DP_WORDS` are what the datapath sees (packet headers plus
//! datapath metadata). The words after them hold OpenFlow pipeline state
//! (`metadata`, registers) that exists only while the slow path translates a
//! packet; a megaflow mask never has bits there.

use bytemuck::{Pod, Zeroable};

/// The "tag present" bit of a stored VLAN TCI (OVS's `VLAN_CFI`). A real
/// tag's CFI/DEI bit is not kept (OVS reads a tag with DEI set as an
/// ordinary tag).
pub const VLAN_CFI: u16 = 0x1000;
/// VID bits of a TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// PCP bits of a TCI.
pub const VLAN_PCP_MASK: u16 = 0xe000;
pub const VLAN_PCP_SHIFT: u16 = 13;

/// `nw_frag` bits.
pub const FRAG_ANY: u8 = 1;
pub const FRAG_LATER: u8 = 2;

/// `ct_state` bits (OVS `CS_*`).
pub const CS_NEW: u8 = 0x01;
pub const CS_ESTABLISHED: u8 = 0x02;
pub const CS_RELATED: u8 = 0x04;
pub const CS_REPLY_DIR: u8 = 0x08;
pub const CS_INVALID: u8 = 0x10;
pub const CS_TRACKED: u8 = 0x20;
pub const CS_SRC_NAT: u8 = 0x40;
pub const CS_DST_NAT: u8 = 0x80;

/// Ethertypes the parser knows.
pub const ETH_TYPE_IPV4: u16 = 0x0800;
pub const ETH_TYPE_ARP: u16 = 0x0806;
pub const ETH_TYPE_RARP: u16 = 0x8035;
pub const ETH_TYPE_VLAN: u16 = 0x8100;
pub const ETH_TYPE_VLAN_8021AD: u16 = 0x88a8;
pub const ETH_TYPE_IPV6: u16 = 0x86dd;
pub const ETH_TYPE_MPLS: u16 = 0x8847;
pub const ETH_TYPE_MPLS_MCAST: u16 = 0x8848;
/// `dl_type` of an 802.3 frame without SNAP (OVS's `FLOW_DL_TYPE_NONE`).
pub const ETH_TYPE_NONE: u16 = 0x05ff;
/// Smallest value of the type/length field that is an Ethertype.
pub const ETH_TYPE_MIN: u16 = 0x0600;

/// IP protocol numbers.
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;

/// MPLS label stack entry layout (host order u32).
pub const MPLS_LABEL_MASK: u32 = 0xffff_f000;
pub const MPLS_LABEL_SHIFT: u32 = 12;
pub const MPLS_TC_MASK: u32 = 0x0000_0e00;
pub const MPLS_TC_SHIFT: u32 = 9;
pub const MPLS_BOS_MASK: u32 = 0x0000_0100;
pub const MPLS_BOS_SHIFT: u32 = 8;
pub const MPLS_TTL_MASK: u32 = 0x0000_00ff;

/// One VLAN header as stored in the key: TPID and TCI (with [`VLAN_CFI`]
/// meaning "present").
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct VlanTag {
    pub tpid: u16,
    pub tci: u16,
}

/// The flow key. `#[repr(C)]` with explicit padding fields, so it has no
/// implicit padding and can be viewed as `[u64; KEY_WORDS]` (checked by
/// `bytemuck::Pod`).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowKey {
    // word 0-1: datapath metadata
    pub recirc_id: u32,
    pub in_port: u32,
    pub dp_hash: u32,
    pub pkt_mark: u32,
    // word 2-8: tunnel metadata
    pub tun_id: u64,
    pub tun_src: u32,
    pub tun_dst: u32,
    pub tun_ipv6_src: [u8; 16],
    pub tun_ipv6_dst: [u8; 16],
    pub tun_flags: u16,
    pub tun_tos: u8,
    pub tun_ttl: u8,
    pub tun_tp_src: u16,
    pub tun_tp_dst: u16,
    // word 9-10: Ethernet
    pub dl_dst: [u8; 6],
    pub dl_src: [u8; 6],
    pub dl_type: u16,
    pub _pad_l2: u16,
    // word 11: VLAN tags, outer first
    pub vlans: [VlanTag; 2],
    // word 12: MPLS label stack entries, top first
    pub mpls_lse: [u32; 2],
    // word 13: IPv4 addresses / ARP SPA, TPA
    pub nw_src: u32,
    pub nw_dst: u32,
    // word 14-17: IPv6 addresses
    pub ipv6_src: [u8; 16],
    pub ipv6_dst: [u8; 16],
    // word 18: IP scalars (nw_proto also holds the ARP opcode's low byte)
    pub ipv6_label: u32,
    pub nw_frag: u8,
    pub nw_tos: u8,
    pub nw_ttl: u8,
    pub nw_proto: u8,
    // word 19-20: ND target
    pub nd_target: [u8; 16],
    // word 21-22: ARP SHA/THA, ND SLL/TLL
    pub arp_sha: [u8; 6],
    pub arp_tha: [u8; 6],
    pub _pad_arp: u32,
    // word 23: L4 ports (ICMP type/code), TCP flags
    pub tp_src: u16,
    pub tp_dst: u16,
    pub tcp_flags: u16,
    pub _pad_l4: u16,
    // word 24: connection tracking state (OVS `ct_state`, `ct_nw_proto`,
    // `ct_zone`, `ct_mark`); all ct words are 0 for an untracked packet
    pub ct_state: u8,
    pub ct_nw_proto: u8,
    pub ct_zone: u16,
    pub ct_mark: u32,
    // word 25: IPv4 addresses of the connection's original direction
    pub ct_nw_src: u32,
    pub ct_nw_dst: u32,
    // word 26: L4 ports (ICMP type/code) of the original direction
    pub ct_tp_src: u16,
    pub ct_tp_dst: u16,
    pub _pad_ct: u32,
    // word 27-28: the 128-bit ct_label, big-endian
    pub ct_label: [u8; 16],
    // word 29-32: IPv6 addresses of the original direction
    pub ct_ipv6_src: [u8; 16],
    pub ct_ipv6_dst: [u8; 16],
    // ---- end of the datapath part (DP_WORDS) ----
    // word 33: OpenFlow metadata
    pub metadata: u64,
    // word 34-41: OpenFlow registers reg0..reg15
    pub regs: [u32; 16],
    // word 42: the conjunction id a `conj_id=` rule is looked up with (OVS
    // `flow.conj_id`: set only during the classifier's second lookup of a
    // conjunctive match)
    pub conj_id: u32,
    pub _pad_conj: u32,
}

/// Number of u64 words in a [`FlowKey`].
pub const KEY_WORDS: usize = core::mem::size_of::<FlowKey>() / 8;
/// Number of leading words that the datapath uses (headers + datapath
/// metadata). Words from here on are OpenFlow-only state.
pub const DP_WORDS: usize = 33;

const _: () = assert!(core::mem::size_of::<FlowKey>().is_multiple_of(8));
const _: () = assert!(core::mem::offset_of!(FlowKey, metadata) == DP_WORDS * 8);
const _: () = assert!(KEY_WORDS == 43);

impl FlowKey {
    /// The key as words.
    #[inline(always)]
    pub fn words(&self) -> &[u64; KEY_WORDS] {
        bytemuck::cast_ref(self)
    }

    /// The key as mutable words.
    #[inline(always)]
    pub fn words_mut(&mut self) -> &mut [u64; KEY_WORDS] {
        bytemuck::cast_mut(self)
    }

    /// The datapath words only.
    #[inline(always)]
    pub fn dp_words(&self) -> &[u64] {
        &self.words()[..DP_WORDS]
    }

    /// A key with every bit set (the all-ones mask).
    pub fn all_ones() -> FlowKey {
        let mut k = FlowKey::zeroed();
        k.words_mut().iter_mut().for_each(|w| *w = u64::MAX);
        k
    }

    /// `self & mask`, word by word.
    #[inline]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = *self;
        for (o, m) in out.words_mut().iter_mut().zip(mask.words()) {
            *o &= *m;
        }
        out
    }

    /// Bitwise OR of two keys (used to widen masks).
    #[inline]
    pub fn or_with(&mut self, other: &FlowKey) {
        for (o, m) in self.words_mut().iter_mut().zip(other.words()) {
            *o |= *m;
        }
    }

    /// True when `self` and `other` agree on every bit set in `mask`.
    #[inline]
    pub fn matches(&self, other: &FlowKey, mask: &FlowKey) -> bool {
        self.words()
            .iter()
            .zip(other.words())
            .zip(mask.words())
            .all(|((a, b), m)| (a ^ b) & m == 0)
    }

    /// True when the key has no bit set.
    pub fn is_zero(&self) -> bool {
        self.words().iter().all(|w| *w == 0)
    }

    /// Outer VLAN TCI as OpenFlow sees it (0 when untagged).
    #[inline]
    pub fn vlan_tci(&self) -> u16 {
        self.vlans[0].tci
    }

    /// `xreg N` (N in 0..8): `reg(2N)` is the upper half, `reg(2N+1)` the lower.
    pub fn xreg(&self, n: usize) -> u64 {
        ((self.regs[2 * n] as u64) << 32) | self.regs[2 * n + 1] as u64
    }

    /// Sets `xreg N`.
    pub fn set_xreg(&mut self, n: usize, v: u64) {
        self.regs[2 * n] = (v >> 32) as u32;
        self.regs[2 * n + 1] = v as u32;
    }

    /// `xxreg N` (N in 0..4): `reg(4N)` is the most significant word.
    pub fn xxreg(&self, n: usize) -> u128 {
        (0..4).fold(0u128, |acc, i| (acc << 32) | self.regs[4 * n + i] as u128)
    }

    /// Sets `xxreg N`.
    pub fn set_xxreg(&mut self, n: usize, v: u128) {
        for i in 0..4 {
            self.regs[4 * n + i] = (v >> (32 * (3 - i))) as u32;
        }
    }

    /// True when the key is an IPv4 packet with a parsed header.
    #[inline]
    pub fn is_ipv4(&self) -> bool {
        self.dl_type == ETH_TYPE_IPV4
    }

    /// True when the key is an IPv6 packet.
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.dl_type == ETH_TYPE_IPV6
    }

    /// True when the key is an IPv4 or IPv6 packet.
    #[inline]
    pub fn is_ip(&self) -> bool {
        self.is_ipv4() || self.is_ipv6()
    }

    /// True for MPLS unicast or multicast.
    #[inline]
    pub fn is_mpls(&self) -> bool {
        self.dl_type == ETH_TYPE_MPLS || self.dl_type == ETH_TYPE_MPLS_MCAST
    }
}

/// Compile-time description of where a named field lives in the key, used
/// by the flow language, translation (to widen megaflow masks field by field)
/// and the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpan {
    /// Byte offset in [`FlowKey`].
    pub offset: usize,
    /// Size in bytes.
    pub len: usize,
}

/// Sets every bit of a byte span of a key (e.g. to mark a field as consulted
/// in a megaflow mask).
pub fn set_span_ones(key: &mut FlowKey, span: FieldSpan) {
    let bytes: &mut [u8] = bytemuck::bytes_of_mut(key);
    bytes[span.offset..span.offset + span.len].fill(0xff);
}

/// Byte span of a field: `span!(nw_src)`.
#[macro_export]
macro_rules! span {
    ($($field:tt)+) => {
        $crate::key::FieldSpan {
            offset: core::mem::offset_of!($crate::key::FlowKey, $($field)+),
            len: {
                let k = <$crate::key::FlowKey as bytemuck::Zeroable>::zeroed();
                core::mem::size_of_val(&k.$($field)+)
            },
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_word_aligned() {
        assert_eq!(core::mem::size_of::<FlowKey>(), KEY_WORDS * 8);
        assert_eq!(core::mem::offset_of!(FlowKey, dl_dst), 9 * 8);
        assert_eq!(core::mem::offset_of!(FlowKey, vlans), 11 * 8);
        assert_eq!(core::mem::offset_of!(FlowKey, nw_src), 13 * 8);
        assert_eq!(core::mem::offset_of!(FlowKey, tp_src), 23 * 8);
    }

    #[test]
    fn xreg_and_xxreg_overlay_regs() {
        let mut k = FlowKey::default();
        k.set_xreg(1, 0x1122_3344_5566_7788);
        assert_eq!(k.regs[2], 0x1122_3344);
        assert_eq!(k.regs[3], 0x5566_7788);
        k.set_xxreg(1, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(k.regs[4], 0x0102_0304);
        assert_eq!(k.regs[7], 0x0d0e_0f10);
        assert_eq!(k.xxreg(1), 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
    }

    #[test]
    fn masked_match() {
        let a = FlowKey {
            nw_src: 0x0a00_0001,
            ..FlowKey::default()
        };
        let mut b = a;
        b.nw_src = 0x0a00_00ff;
        let mut m = FlowKey {
            nw_src: 0xffff_ff00,
            ..FlowKey::default()
        };
        assert!(a.matches(&b, &m));
        m.nw_src = 0xffff_ffff;
        assert!(!a.matches(&b, &m));
        let s = span!(nw_src);
        assert_eq!(s.len, 4);
        let mut mm = FlowKey::default();
        set_span_ones(&mut mm, s);
        assert_eq!(mm.nw_src, u32::MAX);
    }
}
