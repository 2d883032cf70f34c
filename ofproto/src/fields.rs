//! The OpenFlow field registry (OVS `meta-flow`): every field a rule can
//! match, set, load or move, with its width, its prerequisites and how it is
//! read from and written into a [`FlowKey`].
//!
//! A field value is handled as a `u128` holding the field's `n_bits` low
//! bits (MAC and IPv6 addresses big-endian, so `00:00:00:00:00:01` is 1).
//! `set` only touches the field's own bits of the key, which is what lets
//! [`FieldId::or_mask`] widen a megaflow mask field by field: a mask is a
//! `FlowKey` too, and marking bits of a field as consulted is
//! `set(mask, get(mask) | bits)`.

use flowcache::key::*;

/// Identifies one OpenFlow-visible field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldId {
    InPort,
    DlSrc,
    DlDst,
    DlType,
    /// Outer 802.1Q TCI as OVS stores it (bit 12 = tag present).
    VlanTci,
    /// OXM `vlan_vid`: 13 bits, bit 12 = tag present.
    VlanVid,
    /// `vlan_pcp`: 3 bits.
    VlanPcp,
    MplsLabel,
    MplsTc,
    MplsBos,
    MplsTtl,
    /// IPv4 source (also ARP SPA, by storage).
    NwSrc,
    NwDst,
    NwProto,
    /// `nw_tos`: the DSCP bits of the TOS byte, in place (mask 0xfc).
    NwTos,
    /// `ip_dscp`: the 6 DSCP bits, shifted down.
    IpDscp,
    NwEcn,
    NwTtl,
    NwFrag,
    ArpOp,
    ArpSpa,
    ArpTpa,
    ArpSha,
    ArpTha,
    Ipv6Src,
    Ipv6Dst,
    Ipv6Label,
    NdTarget,
    NdSll,
    NdTll,
    TpSrc,
    TpDst,
    TcpFlags,
    IcmpType,
    IcmpCode,
    Icmpv6Type,
    Icmpv6Code,
    Metadata,
    /// `reg0`..`reg15`.
    Reg(u8),
    /// `xreg0`..`xreg7`: `reg(2N)` is the upper half.
    Xreg(u8),
    /// `xxreg0`..`xxreg3`: `reg(4N)` is the most significant word.
    Xxreg(u8),
    TunId,
    /// The outer IPv4 source and destination of a decapsulated packet
    /// (`tun_src`, `tun_dst`).
    TunSrc,
    TunDst,
    PktMark,
    /// Connection tracking: `ct_state` (`CS_*` bits).
    CtState,
    CtZone,
    CtMark,
    CtLabel,
    /// The connection's original direction (`ct_nw_src`, ...).
    CtNwSrc,
    CtNwDst,
    CtIpv6Src,
    CtIpv6Dst,
    CtNwProto,
    CtTpSrc,
    CtTpDst,
}

/// What a packet must be for a field to be meaningful (OVS `mf_prereqs`).
/// A rule that matches a field must also match its prerequisite; a
/// `set_field`/`load` into a field needs it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prereq {
    None,
    /// VLAN tag present (`vlan_pcp` has none in OVS, but push/set on a
    /// VLAN field needs a tag; used by translation only).
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    /// IPv4 or IPv6.
    Ip,
    /// IPv4 or ARP (`nw_src`/`nw_dst` in ovs-ofctl).
    IpOrArp,
    Mpls,
    Tcp,
    Udp,
    Sctp,
    /// TCP, UDP or SCTP over IPv4 or IPv6.
    L4,
    Icmpv4,
    Icmpv6,
    /// ICMPv6 neighbour solicitation or advertisement.
    Nd,
    /// ICMPv6 NS (type 135).
    NdSolicit,
    /// ICMPv6 NA (type 136).
    NdAdvert,
}

impl Prereq {
    /// Human description used in error messages ("nw_src requires ip or arp").
    pub fn describe(self) -> &'static str {
        match self {
            Prereq::None => "nothing",
            Prereq::Vlan => "a VLAN match",
            Prereq::Arp => "arp or rarp",
            Prereq::Ipv4 => "ip",
            Prereq::Ipv6 => "ipv6",
            Prereq::Ip => "ip or ipv6",
            Prereq::IpOrArp => "ip or arp",
            Prereq::Mpls => "mpls",
            Prereq::Tcp => "tcp or tcp6",
            Prereq::Udp => "udp or udp6",
            Prereq::Sctp => "sctp or sctp6",
            Prereq::L4 => "tcp, udp or sctp",
            Prereq::Icmpv4 => "icmp",
            Prereq::Icmpv6 => "icmp6",
            Prereq::Nd => "icmp6 with icmp_type=135 or 136",
            Prereq::NdSolicit => "icmp6 with icmp_type=135",
            Prereq::NdAdvert => "icmp6 with icmp_type=136",
        }
    }

    /// True when a flow (or a match's value under its mask) satisfies the
    /// prerequisite. `key` holds the values, `mask` says which bits are
    /// known; an unknown (wildcarded) bit does not satisfy it.
    pub fn satisfied(self, key: &FlowKey, mask: &FlowKey) -> bool {
        let dl = |t: u16| mask.dl_type == 0xffff && key.dl_type == t;
        let proto = |p: u8| mask.nw_proto == 0xff && key.nw_proto == p;
        let ip4 = dl(ETH_TYPE_IPV4);
        let ip6 = dl(ETH_TYPE_IPV6);
        let icmp6_type =
            |t: u16| ip6 && proto(IPPROTO_ICMPV6) && mask.tp_src == 0xffff && key.tp_src == t;
        match self {
            Prereq::None => true,
            Prereq::Vlan => mask.vlans[0].tci & VLAN_CFI != 0 && key.vlans[0].tci & VLAN_CFI != 0,
            Prereq::Arp => dl(ETH_TYPE_ARP) || dl(ETH_TYPE_RARP),
            Prereq::Ipv4 => ip4,
            Prereq::Ipv6 => ip6,
            Prereq::Ip => ip4 || ip6,
            Prereq::IpOrArp => ip4 || dl(ETH_TYPE_ARP) || dl(ETH_TYPE_RARP),
            Prereq::Mpls => dl(ETH_TYPE_MPLS) || dl(ETH_TYPE_MPLS_MCAST),
            Prereq::Tcp => (ip4 || ip6) && proto(IPPROTO_TCP),
            Prereq::Udp => (ip4 || ip6) && proto(IPPROTO_UDP),
            Prereq::Sctp => (ip4 || ip6) && proto(IPPROTO_SCTP),
            Prereq::L4 => {
                (ip4 || ip6) && (proto(IPPROTO_TCP) || proto(IPPROTO_UDP) || proto(IPPROTO_SCTP))
            }
            Prereq::Icmpv4 => ip4 && proto(IPPROTO_ICMP),
            Prereq::Icmpv6 => ip6 && proto(IPPROTO_ICMPV6),
            Prereq::Nd => icmp6_type(135) || icmp6_type(136),
            Prereq::NdSolicit => icmp6_type(135),
            Prereq::NdAdvert => icmp6_type(136),
        }
    }
}

fn mac_to_u128(m: &[u8; 6]) -> u128 {
    m.iter().fold(0u128, |acc, b| (acc << 8) | *b as u128)
}

fn u128_to_mac(v: u128) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, b) in m.iter_mut().enumerate() {
        *b = (v >> (8 * (5 - i))) as u8;
    }
    m
}

fn lse_get(key: &FlowKey, mask: u32, shift: u32) -> u128 {
    ((key.mpls_lse[0] & mask) >> shift) as u128
}

fn lse_set(key: &mut FlowKey, mask: u32, shift: u32, v: u128) {
    key.mpls_lse[0] = (key.mpls_lse[0] & !mask) | (((v as u32) << shift) & mask);
}

impl FieldId {
    /// Width in bits.
    pub fn n_bits(self) -> u32 {
        use FieldId::*;
        match self {
            InPort => 16,
            DlSrc | DlDst | ArpSha | ArpTha | NdSll | NdTll => 48,
            DlType => 16,
            VlanTci => 16,
            VlanVid => 13,
            VlanPcp => 3,
            MplsLabel => 20,
            MplsTc => 3,
            MplsBos => 1,
            MplsTtl => 8,
            NwSrc | NwDst | ArpSpa | ArpTpa => 32,
            NwProto => 8,
            NwTos => 8,
            IpDscp => 6,
            NwEcn => 2,
            NwTtl => 8,
            NwFrag => 2,
            ArpOp => 16,
            Ipv6Src | Ipv6Dst | NdTarget => 128,
            Ipv6Label => 20,
            TpSrc | TpDst => 16,
            TcpFlags => 12,
            IcmpType | IcmpCode | Icmpv6Type | Icmpv6Code => 8,
            Metadata => 64,
            Reg(_) => 32,
            Xreg(_) => 64,
            Xxreg(_) => 128,
            TunId => 64,
            TunSrc | TunDst => 32,
            PktMark => 32,
            CtState | CtNwProto => 8,
            CtZone | CtTpSrc | CtTpDst => 16,
            CtMark | CtNwSrc | CtNwDst => 32,
            CtLabel | CtIpv6Src | CtIpv6Dst => 128,
        }
    }

    /// All-ones value of the field's width.
    pub fn max_value(self) -> u128 {
        let n = self.n_bits();
        if n == 128 {
            u128::MAX
        } else {
            (1u128 << n) - 1
        }
    }

    /// The bits of the field that can be non-zero (all of them, except
    /// `nw_tos`, whose two ECN bits are not part of the field).
    pub fn valid_mask(self) -> u128 {
        match self {
            FieldId::NwTos => 0xfc,
            _ => self.max_value(),
        }
    }

    /// The field's prerequisite.
    pub fn prereq(self) -> Prereq {
        use FieldId::*;
        match self {
            InPort | DlSrc | DlDst | DlType | VlanTci | VlanVid | VlanPcp | Metadata | Reg(_)
            | Xreg(_) | Xxreg(_) | TunId | TunSrc | TunDst | PktMark => Prereq::None,
            CtState | CtZone | CtMark | CtLabel | CtNwSrc | CtNwDst | CtIpv6Src | CtIpv6Dst
            | CtNwProto | CtTpSrc | CtTpDst => Prereq::None,
            MplsLabel | MplsTc | MplsBos | MplsTtl => Prereq::Mpls,
            NwSrc | NwDst => Prereq::IpOrArp,
            NwProto | NwTos | IpDscp | NwEcn | NwTtl | NwFrag => Prereq::Ip,
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => Prereq::Arp,
            Ipv6Src | Ipv6Dst | Ipv6Label => Prereq::Ipv6,
            NdTarget => Prereq::Nd,
            NdSll => Prereq::NdSolicit,
            NdTll => Prereq::NdAdvert,
            TpSrc | TpDst => Prereq::L4,
            TcpFlags => Prereq::Tcp,
            IcmpType | IcmpCode => Prereq::Icmpv4,
            Icmpv6Type | Icmpv6Code => Prereq::Icmpv6,
        }
    }

    /// True when `set_field`/`load`/`move` may write the field.
    pub fn is_writable(self) -> bool {
        !matches!(
            self,
            FieldId::DlType
                | FieldId::NwProto
                | FieldId::NwFrag
                | FieldId::TcpFlags
                | FieldId::CtState
                | FieldId::CtZone
                | FieldId::CtNwSrc
                | FieldId::CtNwDst
                | FieldId::CtIpv6Src
                | FieldId::CtIpv6Dst
                | FieldId::CtNwProto
                | FieldId::CtTpSrc
                | FieldId::CtTpDst
        )
    }

    /// Reads the field from a key.
    pub fn get(self, key: &FlowKey) -> u128 {
        use FieldId::*;
        match self {
            InPort => key.in_port as u128,
            DlSrc => mac_to_u128(&key.dl_src),
            DlDst => mac_to_u128(&key.dl_dst),
            DlType => key.dl_type as u128,
            VlanTci => key.vlans[0].tci as u128,
            VlanVid => (key.vlans[0].tci & (VLAN_CFI | VLAN_VID_MASK)) as u128,
            VlanPcp => (key.vlans[0].tci >> VLAN_PCP_SHIFT) as u128,
            MplsLabel => lse_get(key, MPLS_LABEL_MASK, MPLS_LABEL_SHIFT),
            MplsTc => lse_get(key, MPLS_TC_MASK, MPLS_TC_SHIFT),
            MplsBos => lse_get(key, MPLS_BOS_MASK, MPLS_BOS_SHIFT),
            MplsTtl => lse_get(key, MPLS_TTL_MASK, 0),
            NwSrc | ArpSpa => key.nw_src as u128,
            NwDst | ArpTpa => key.nw_dst as u128,
            NwProto => key.nw_proto as u128,
            NwTos => (key.nw_tos & 0xfc) as u128,
            IpDscp => (key.nw_tos >> 2) as u128,
            NwEcn => (key.nw_tos & 0x03) as u128,
            NwTtl => key.nw_ttl as u128,
            NwFrag => key.nw_frag as u128,
            ArpOp => key.nw_proto as u128,
            ArpSha | NdSll => mac_to_u128(&key.arp_sha),
            ArpTha | NdTll => mac_to_u128(&key.arp_tha),
            Ipv6Src => u128::from_be_bytes(key.ipv6_src),
            Ipv6Dst => u128::from_be_bytes(key.ipv6_dst),
            Ipv6Label => (key.ipv6_label & 0x000f_ffff) as u128,
            NdTarget => u128::from_be_bytes(key.nd_target),
            TpSrc | IcmpType | Icmpv6Type => {
                if matches!(self, TpSrc) {
                    key.tp_src as u128
                } else {
                    (key.tp_src & 0xff) as u128
                }
            }
            TpDst | IcmpCode | Icmpv6Code => {
                if matches!(self, TpDst) {
                    key.tp_dst as u128
                } else {
                    (key.tp_dst & 0xff) as u128
                }
            }
            TcpFlags => (key.tcp_flags & 0x0fff) as u128,
            Metadata => key.metadata as u128,
            Reg(n) => key.regs[n as usize] as u128,
            Xreg(n) => key.xreg(n as usize) as u128,
            Xxreg(n) => key.xxreg(n as usize),
            TunId => key.tun_id as u128,
            TunSrc => key.tun_src as u128,
            TunDst => key.tun_dst as u128,
            PktMark => key.pkt_mark as u128,
            CtState => key.ct_state as u128,
            CtZone => key.ct_zone as u128,
            CtMark => key.ct_mark as u128,
            CtLabel => u128::from_be_bytes(key.ct_label),
            CtNwSrc => key.ct_nw_src as u128,
            CtNwDst => key.ct_nw_dst as u128,
            CtIpv6Src => u128::from_be_bytes(key.ct_ipv6_src),
            CtIpv6Dst => u128::from_be_bytes(key.ct_ipv6_dst),
            CtNwProto => key.ct_nw_proto as u128,
            CtTpSrc => key.ct_tp_src as u128,
            CtTpDst => key.ct_tp_dst as u128,
        }
    }

    /// Writes the field into a key (the value is cut to the field's width);
    /// other fields are untouched.
    pub fn set(self, key: &mut FlowKey, v: u128) {
        use FieldId::*;
        let v = v & self.max_value();
        match self {
            InPort => key.in_port = v as u32,
            DlSrc => key.dl_src = u128_to_mac(v),
            DlDst => key.dl_dst = u128_to_mac(v),
            DlType => key.dl_type = v as u16,
            VlanTci => key.vlans[0].tci = v as u16,
            VlanVid => {
                let m = VLAN_CFI | VLAN_VID_MASK;
                key.vlans[0].tci = (key.vlans[0].tci & !m) | (v as u16 & m)
            }
            VlanPcp => {
                key.vlans[0].tci =
                    (key.vlans[0].tci & !VLAN_PCP_MASK) | ((v as u16) << VLAN_PCP_SHIFT)
            }
            MplsLabel => lse_set(key, MPLS_LABEL_MASK, MPLS_LABEL_SHIFT, v),
            MplsTc => lse_set(key, MPLS_TC_MASK, MPLS_TC_SHIFT, v),
            MplsBos => lse_set(key, MPLS_BOS_MASK, MPLS_BOS_SHIFT, v),
            MplsTtl => lse_set(key, MPLS_TTL_MASK, 0, v),
            NwSrc | ArpSpa => key.nw_src = v as u32,
            NwDst | ArpTpa => key.nw_dst = v as u32,
            NwProto => key.nw_proto = v as u8,
            NwTos => key.nw_tos = (key.nw_tos & 0x03) | (v as u8 & 0xfc),
            IpDscp => key.nw_tos = (key.nw_tos & 0x03) | ((v as u8) << 2),
            NwEcn => key.nw_tos = (key.nw_tos & 0xfc) | (v as u8 & 0x03),
            NwTtl => key.nw_ttl = v as u8,
            NwFrag => key.nw_frag = v as u8,
            ArpOp => key.nw_proto = v as u8,
            ArpSha | NdSll => key.arp_sha = u128_to_mac(v),
            ArpTha | NdTll => key.arp_tha = u128_to_mac(v),
            Ipv6Src => key.ipv6_src = v.to_be_bytes(),
            Ipv6Dst => key.ipv6_dst = v.to_be_bytes(),
            Ipv6Label => key.ipv6_label = v as u32,
            NdTarget => key.nd_target = v.to_be_bytes(),
            TpSrc => key.tp_src = v as u16,
            TpDst => key.tp_dst = v as u16,
            IcmpType | Icmpv6Type => key.tp_src = (key.tp_src & 0xff00) | v as u16,
            IcmpCode | Icmpv6Code => key.tp_dst = (key.tp_dst & 0xff00) | v as u16,
            TcpFlags => key.tcp_flags = (key.tcp_flags & 0xf000) | v as u16,
            Metadata => key.metadata = v as u64,
            Reg(n) => key.regs[n as usize] = v as u32,
            Xreg(n) => key.set_xreg(n as usize, v as u64),
            Xxreg(n) => key.set_xxreg(n as usize, v),
            TunId => key.tun_id = v as u64,
            TunSrc => key.tun_src = v as u32,
            TunDst => key.tun_dst = v as u32,
            PktMark => key.pkt_mark = v as u32,
            CtState => key.ct_state = v as u8,
            CtZone => key.ct_zone = v as u16,
            CtMark => key.ct_mark = v as u32,
            CtLabel => key.ct_label = v.to_be_bytes(),
            CtNwSrc => key.ct_nw_src = v as u32,
            CtNwDst => key.ct_nw_dst = v as u32,
            CtIpv6Src => key.ct_ipv6_src = v.to_be_bytes(),
            CtIpv6Dst => key.ct_ipv6_dst = v.to_be_bytes(),
            CtNwProto => key.ct_nw_proto = v as u8,
            CtTpSrc => key.ct_tp_src = v as u16,
            CtTpDst => key.ct_tp_dst = v as u16,
        }
    }

    /// Writes `value` into the bits selected by `mask`, keeping the others.
    pub fn set_masked(self, key: &mut FlowKey, value: u128, mask: u128) {
        let old = self.get(key);
        self.set(key, (old & !mask) | (value & mask));
    }

    /// Marks `bits` of the field as consulted in a megaflow mask (or as
    /// matched in a rule's mask).
    pub fn or_mask(self, mask: &mut FlowKey, bits: u128) {
        let old = self.get(mask);
        self.set(mask, old | bits);
    }

    /// Marks the whole field as consulted.
    pub fn mask_all(self, mask: &mut FlowKey) {
        self.or_mask(mask, self.max_value());
    }

    /// The name ovs-ofctl prints for the field.
    pub fn name(self) -> String {
        use FieldId::*;
        let s = match self {
            InPort => "in_port",
            DlSrc => "dl_src",
            DlDst => "dl_dst",
            DlType => "dl_type",
            VlanTci => "vlan_tci",
            VlanVid => "vlan_vid",
            VlanPcp => "vlan_pcp",
            MplsLabel => "mpls_label",
            MplsTc => "mpls_tc",
            MplsBos => "mpls_bos",
            MplsTtl => "mpls_ttl",
            NwSrc => "nw_src",
            NwDst => "nw_dst",
            NwProto => "nw_proto",
            NwTos => "nw_tos",
            IpDscp => "ip_dscp",
            NwEcn => "nw_ecn",
            NwTtl => "nw_ttl",
            NwFrag => "nw_frag",
            ArpOp => "arp_op",
            ArpSpa => "arp_spa",
            ArpTpa => "arp_tpa",
            ArpSha => "arp_sha",
            ArpTha => "arp_tha",
            Ipv6Src => "ipv6_src",
            Ipv6Dst => "ipv6_dst",
            Ipv6Label => "ipv6_label",
            NdTarget => "nd_target",
            NdSll => "nd_sll",
            NdTll => "nd_tll",
            TpSrc => "tp_src",
            TpDst => "tp_dst",
            TcpFlags => "tcp_flags",
            IcmpType => "icmp_type",
            IcmpCode => "icmp_code",
            Icmpv6Type => "icmpv6_type",
            Icmpv6Code => "icmpv6_code",
            Metadata => "metadata",
            Reg(n) => return format!("reg{n}"),
            Xreg(n) => return format!("xreg{n}"),
            Xxreg(n) => return format!("xxreg{n}"),
            TunId => "tun_id",
            TunSrc => "tun_src",
            TunDst => "tun_dst",
            PktMark => "pkt_mark",
            CtState => "ct_state",
            CtZone => "ct_zone",
            CtMark => "ct_mark",
            CtLabel => "ct_label",
            CtNwSrc => "ct_nw_src",
            CtNwDst => "ct_nw_dst",
            CtIpv6Src => "ct_ipv6_src",
            CtIpv6Dst => "ct_ipv6_dst",
            CtNwProto => "ct_nw_proto",
            CtTpSrc => "ct_tp_src",
            CtTpDst => "ct_tp_dst",
        };
        s.to_string()
    }
}

/// A bit range of a field (`NXM_NX_REG2[0..15]`): `n_bits` bits starting
/// at bit `ofs` (bit 0 = least significant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubField {
    pub field: FieldId,
    pub ofs: u32,
    pub n_bits: u32,
}

impl SubField {
    /// The whole field.
    pub fn whole(field: FieldId) -> Self {
        SubField {
            field,
            ofs: 0,
            n_bits: field.n_bits(),
        }
    }

    /// The mask of the selected bits in field-value space.
    pub fn mask(&self) -> u128 {
        let ones = if self.n_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << self.n_bits) - 1
        };
        ones << self.ofs
    }

    /// Reads the selected bits, shifted down to bit 0.
    pub fn read(&self, key: &FlowKey) -> u128 {
        (self.field.get(key) & self.mask()) >> self.ofs
    }

    /// Writes `v` (its low `n_bits` bits) into the selected bits.
    pub fn write(&self, key: &mut FlowKey, v: u128) {
        self.field.set_masked(key, v << self.ofs, self.mask());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_touches_only_its_field() {
        let all = [
            FieldId::InPort,
            FieldId::DlSrc,
            FieldId::VlanVid,
            FieldId::VlanPcp,
            FieldId::MplsTc,
            FieldId::NwTos,
            FieldId::NwEcn,
            FieldId::IcmpType,
            FieldId::IcmpCode,
            FieldId::Reg(3),
            FieldId::Xreg(1),
            FieldId::Xxreg(0),
            FieldId::Ipv6Label,
        ];
        for f in all {
            let mut k = FlowKey::default();
            f.set(&mut k, u128::MAX);
            assert_eq!(f.get(&k), f.valid_mask(), "{f:?}");
            let mut other = k;
            f.set(&mut other, 0);
            for g in all {
                if g != f && f.get(&k) != 0 {
                    // A field sharing storage with f may change; the others must not.
                    let shares = matches!(
                        (f, g),
                        (FieldId::VlanVid, FieldId::VlanPcp)
                            | (FieldId::VlanPcp, FieldId::VlanVid)
                            | (FieldId::NwTos, FieldId::NwEcn)
                            | (FieldId::NwEcn, FieldId::NwTos)
                            | (FieldId::Reg(3), FieldId::Xreg(1))
                            | (FieldId::Xreg(1), FieldId::Reg(3))
                            | (FieldId::Xxreg(0), _)
                            | (_, FieldId::Xxreg(0))
                    );
                    if !shares {
                        assert_eq!(g.get(&other), g.get(&FlowKey::default()), "{f:?} vs {g:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn subfield_read_write() {
        let mut k = FlowKey::default();
        let sf = SubField {
            field: FieldId::Reg(2),
            ofs: 0,
            n_bits: 16,
        };
        sf.write(&mut k, 0x1_2345);
        assert_eq!(k.regs[2], 0x2345);
        let hi = SubField {
            field: FieldId::Reg(2),
            ofs: 16,
            n_bits: 16,
        };
        hi.write(&mut k, 0xabcd);
        assert_eq!(k.regs[2], 0xabcd_2345);
        assert_eq!(hi.read(&k), 0xabcd);
    }

    #[test]
    fn mac_roundtrip() {
        let mut k = FlowKey::default();
        FieldId::DlSrc.set(&mut k, 0x0000_0000_0011);
        assert_eq!(k.dl_src, [0, 0, 0, 0, 0, 0x11]);
    }
}
