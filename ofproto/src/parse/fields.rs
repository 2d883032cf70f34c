//! Field names of the flow syntax: OVS `meta-flow` names and aliases
//! (`nw_src`, `ip_src`), NXM/OXM names (`NXM_OF_IP_SRC`, `OXM_OF_IPV4_SRC`),
//! prerequisites as OVS enforces them, and subfield syntax (`NAME[a..b]`).

use crate::fields::{FieldId, Prereq, SubField};
use flowcache::key::{FlowKey, FRAG_LATER, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};

/// How a field's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fmt {
    Dec,
    Hex,
    Mac,
    Ipv4,
    Ipv6,
    Port,
    Frag,
    TcpFlags,
    CtState,
}

/// A prerequisite: OVS's `mf_prereqs` plus "icmp or icmp6", which is what a
/// match on `icmp_type`/`icmp_code` needs (OVS stores ICMP and ICMPv6 type
/// and code in the same place and accepts `icmp6,icmp_type=135`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Req {
    P(Prereq),
    IcmpAny,
}

impl Req {
    pub(crate) const NONE: Req = Req::P(Prereq::None);

    /// True when `key`/`mask` satisfy the prerequisite.  L4 prerequisites
    /// also require that the flow is not a later fragment (OVS: a later
    /// fragment has no L4 header).
    pub(crate) fn satisfied(self, key: &FlowKey, mask: &FlowKey) -> bool {
        match self {
            Req::P(p) => p.satisfied(key, mask),
            Req::IcmpAny => {
                Prereq::Icmpv4.satisfied(key, mask) || Prereq::Icmpv6.satisfied(key, mask)
            }
        }
    }

    /// True for the TCP/UDP/SCTP prerequisites, which OVS refuses on
    /// `nw_frag=later` flows.
    pub(crate) fn is_l4(self) -> bool {
        matches!(
            self,
            Req::P(Prereq::Tcp | Prereq::Udp | Prereq::Sctp | Prereq::L4)
        )
    }

    /// True when the prerequisite holds and, for L4 ones, the flow is not a
    /// later fragment.
    pub(crate) fn ok(self, key: &FlowKey, mask: &FlowKey) -> bool {
        self.satisfied(key, mask) && !(self.is_l4() && key.nw_frag & FRAG_LATER != 0)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Req::P(p) => p.describe(),
            Req::IcmpAny => "icmp or icmp6",
        }
    }
}

/// What the syntax knows about one named field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Def {
    pub id: FieldId,
    /// Prerequisite for matching on the field.
    pub mreq: Req,
    /// Prerequisite for reading/writing it in actions (OVS's `mf_prereqs`;
    /// stricter for `nw_src`, which is IPv4-only there, and `tp_src`, which
    /// is `tcp_src` there).
    pub areq: Req,
    pub fmt: Fmt,
    pub maskable: bool,
    pub writable: bool,
}

fn def(id: FieldId, mreq: Req, areq: Req, fmt: Fmt, maskable: bool, writable: bool) -> Def {
    Def {
        id,
        mreq,
        areq,
        fmt,
        maskable,
        writable,
    }
}

/// Canonical decimal index suffix (`reg12` -> 12), no leading zeros.
fn index_suffix(s: &str, limit: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (n < limit).then_some(n)
}

fn reg_def(id: FieldId) -> Def {
    def(id, Req::NONE, Req::NONE, Fmt::Hex, true, true)
}

/// Looks up a plain field name (OVS `mf_from_name`, plus `ipv4_src`/
/// `ipv4_dst`).  `dl_vlan` and `dl_vlan_pcp` are handled by the match parser
/// (they have no [`FieldId`]).
pub(crate) fn lookup(name: &str) -> Option<Def> {
    use FieldId::*;
    use Fmt::*;
    let p = Req::P;
    let none = Req::NONE;
    Some(match name {
        "in_port" => def(InPort, none, none, Port, false, true),
        "eth_src" | "dl_src" => def(DlSrc, none, none, Mac, true, true),
        "eth_dst" | "dl_dst" => def(DlDst, none, none, Mac, true, true),
        "eth_type" | "dl_type" => def(DlType, none, none, Hex, false, false),
        "vlan_tci" => def(VlanTci, none, none, Hex, true, true),
        "vlan_vid" => def(VlanVid, none, p(Prereq::Vlan), Dec, true, true),
        "vlan_pcp" => def(VlanPcp, none, p(Prereq::Vlan), Dec, false, true),
        "mpls_label" => def(
            MplsLabel,
            p(Prereq::Mpls),
            p(Prereq::Mpls),
            Dec,
            false,
            true,
        ),
        "mpls_tc" => def(MplsTc, p(Prereq::Mpls), p(Prereq::Mpls), Dec, false, true),
        "mpls_bos" => def(MplsBos, p(Prereq::Mpls), p(Prereq::Mpls), Dec, false, false),
        "mpls_ttl" => def(MplsTtl, p(Prereq::Mpls), p(Prereq::Mpls), Dec, false, true),
        "ip_src" | "nw_src" | "ipv4_src" => {
            def(NwSrc, p(Prereq::IpOrArp), p(Prereq::Ipv4), Ipv4, true, true)
        }
        "ip_dst" | "nw_dst" | "ipv4_dst" => {
            def(NwDst, p(Prereq::IpOrArp), p(Prereq::Ipv4), Ipv4, true, true)
        }
        "ipv6_src" => def(Ipv6Src, p(Prereq::Ipv6), p(Prereq::Ipv6), Ipv6, true, true),
        "ipv6_dst" => def(Ipv6Dst, p(Prereq::Ipv6), p(Prereq::Ipv6), Ipv6, true, true),
        "ipv6_label" => def(Ipv6Label, p(Prereq::Ipv6), p(Prereq::Ipv6), Hex, true, true),
        "nw_proto" | "ip_proto" => def(NwProto, p(Prereq::Ip), p(Prereq::Ip), Dec, false, false),
        "nw_tos" => def(NwTos, p(Prereq::Ip), p(Prereq::Ip), Dec, false, true),
        "ip_dscp" => def(IpDscp, p(Prereq::Ip), p(Prereq::Ip), Dec, false, true),
        "nw_ecn" | "ip_ecn" => def(NwEcn, p(Prereq::Ip), p(Prereq::Ip), Dec, false, true),
        "nw_ttl" => def(NwTtl, p(Prereq::Ip), p(Prereq::Ip), Dec, false, true),
        "ip_frag" | "nw_frag" => def(NwFrag, p(Prereq::Ip), p(Prereq::Ip), Frag, true, false),
        "arp_op" => def(ArpOp, p(Prereq::Arp), p(Prereq::Arp), Dec, false, true),
        "arp_spa" => def(ArpSpa, p(Prereq::Arp), p(Prereq::Arp), Ipv4, true, true),
        "arp_tpa" => def(ArpTpa, p(Prereq::Arp), p(Prereq::Arp), Ipv4, true, true),
        "arp_sha" => def(ArpSha, p(Prereq::Arp), p(Prereq::Arp), Mac, true, true),
        "arp_tha" => def(ArpTha, p(Prereq::Arp), p(Prereq::Arp), Mac, true, true),
        "tcp_src" => def(TpSrc, p(Prereq::Tcp), p(Prereq::Tcp), Dec, true, true),
        "tcp_dst" => def(TpDst, p(Prereq::Tcp), p(Prereq::Tcp), Dec, true, true),
        "tp_src" => def(TpSrc, p(Prereq::L4), p(Prereq::Tcp), Dec, true, true),
        "tp_dst" => def(TpDst, p(Prereq::L4), p(Prereq::Tcp), Dec, true, true),
        "udp_src" => def(TpSrc, p(Prereq::Udp), p(Prereq::Udp), Dec, true, true),
        "udp_dst" => def(TpDst, p(Prereq::Udp), p(Prereq::Udp), Dec, true, true),
        "sctp_src" => def(TpSrc, p(Prereq::Sctp), p(Prereq::Sctp), Dec, true, true),
        "sctp_dst" => def(TpDst, p(Prereq::Sctp), p(Prereq::Sctp), Dec, true, true),
        "tcp_flags" => def(
            FieldId::TcpFlags,
            p(Prereq::Tcp),
            p(Prereq::Tcp),
            Fmt::TcpFlags,
            true,
            false,
        ),
        "icmp_type" => def(IcmpType, Req::IcmpAny, p(Prereq::Icmpv4), Dec, false, true),
        "icmp_code" => def(IcmpCode, Req::IcmpAny, p(Prereq::Icmpv4), Dec, false, true),
        "icmpv6_type" => def(
            Icmpv6Type,
            p(Prereq::Icmpv6),
            p(Prereq::Icmpv6),
            Dec,
            false,
            true,
        ),
        "icmpv6_code" => def(
            Icmpv6Code,
            p(Prereq::Icmpv6),
            p(Prereq::Icmpv6),
            Dec,
            false,
            true,
        ),
        "nd_target" => def(NdTarget, p(Prereq::Nd), p(Prereq::Nd), Ipv6, true, true),
        "nd_sll" => def(
            NdSll,
            p(Prereq::NdSolicit),
            p(Prereq::NdSolicit),
            Mac,
            true,
            true,
        ),
        "nd_tll" => def(
            NdTll,
            p(Prereq::NdAdvert),
            p(Prereq::NdAdvert),
            Mac,
            true,
            true,
        ),
        "metadata" => def(Metadata, none, none, Hex, true, true),
        "tun_id" | "tunnel_id" => def(TunId, none, none, Hex, true, true),
        "tun_src" => def(TunSrc, none, none, Ipv4, true, true),
        "tun_dst" => def(TunDst, none, none, Ipv4, true, true),
        "pkt_mark" => def(PktMark, none, none, Hex, true, true),
        "ct_state" => def(FieldId::CtState, none, none, Fmt::CtState, true, false),
        "ct_zone" => def(FieldId::CtZone, none, none, Hex, false, false),
        "ct_mark" => def(FieldId::CtMark, none, none, Hex, true, true),
        "ct_label" => def(FieldId::CtLabel, none, none, Hex, true, true),
        "ct_nw_src" => def(FieldId::CtNwSrc, none, none, Ipv4, true, false),
        "ct_nw_dst" => def(FieldId::CtNwDst, none, none, Ipv4, true, false),
        "ct_ipv6_src" => def(FieldId::CtIpv6Src, none, none, Ipv6, true, false),
        "ct_ipv6_dst" => def(FieldId::CtIpv6Dst, none, none, Ipv6, true, false),
        "ct_nw_proto" => def(FieldId::CtNwProto, none, none, Dec, false, false),
        "ct_tp_src" => def(FieldId::CtTpSrc, none, none, Dec, true, false),
        "ct_tp_dst" => def(FieldId::CtTpDst, none, none, Dec, true, false),
        _ => {
            if let Some(n) = name.strip_prefix("xxreg") {
                return index_suffix(n, 4).map(|n| reg_def(Xxreg(n)));
            }
            if let Some(n) = name.strip_prefix("xreg") {
                return index_suffix(n, 8).map(|n| reg_def(Xreg(n)));
            }
            if let Some(n) = name.strip_prefix("reg") {
                return index_suffix(n, 16).map(|n| reg_def(Reg(n)));
            }
            return None;
        }
    })
}

/// Looks up an NXM or OXM field name (`NXM_NX_REG0`, `OXM_OF_VLAN_VID`),
/// with or without the `_W` (masked) suffix.
pub(crate) fn lookup_nxm(name: &str) -> Option<Def> {
    let name = name.strip_suffix("_W").unwrap_or(name);
    let plain = match name {
        "NXM_OF_IN_PORT" => "in_port",
        "NXM_OF_ETH_SRC" | "OXM_OF_ETH_SRC" => "eth_src",
        "NXM_OF_ETH_DST" | "OXM_OF_ETH_DST" => "eth_dst",
        "NXM_OF_ETH_TYPE" | "OXM_OF_ETH_TYPE" => "eth_type",
        "NXM_OF_VLAN_TCI" => "vlan_tci",
        "OXM_OF_VLAN_VID" => "vlan_vid",
        "OXM_OF_VLAN_PCP" => "vlan_pcp",
        "OXM_OF_MPLS_LABEL" => "mpls_label",
        "OXM_OF_MPLS_TC" => "mpls_tc",
        "OXM_OF_MPLS_BOS" => "mpls_bos",
        "NXM_NX_MPLS_TTL" => "mpls_ttl",
        "NXM_OF_IP_SRC" | "OXM_OF_IPV4_SRC" => "ip_src",
        "NXM_OF_IP_DST" | "OXM_OF_IPV4_DST" => "ip_dst",
        "NXM_NX_IPV6_SRC" | "OXM_OF_IPV6_SRC" => "ipv6_src",
        "NXM_NX_IPV6_DST" | "OXM_OF_IPV6_DST" => "ipv6_dst",
        "NXM_NX_IPV6_LABEL" | "OXM_OF_IPV6_FLABEL" => "ipv6_label",
        "NXM_OF_IP_PROTO" | "OXM_OF_IP_PROTO" => "nw_proto",
        "NXM_OF_IP_TOS" => "nw_tos",
        "OXM_OF_IP_DSCP" => "ip_dscp",
        "NXM_NX_IP_ECN" | "OXM_OF_IP_ECN" => "nw_ecn",
        "NXM_NX_IP_TTL" => "nw_ttl",
        "NXM_NX_IP_FRAG" => "ip_frag",
        "NXM_OF_ARP_OP" | "OXM_OF_ARP_OP" => "arp_op",
        "NXM_OF_ARP_SPA" | "OXM_OF_ARP_SPA" => "arp_spa",
        "NXM_OF_ARP_TPA" | "OXM_OF_ARP_TPA" => "arp_tpa",
        "NXM_NX_ARP_SHA" | "OXM_OF_ARP_SHA" => "arp_sha",
        "NXM_NX_ARP_THA" | "OXM_OF_ARP_THA" => "arp_tha",
        "NXM_OF_TCP_SRC" | "OXM_OF_TCP_SRC" => "tcp_src",
        "NXM_OF_TCP_DST" | "OXM_OF_TCP_DST" => "tcp_dst",
        "NXM_NX_TCP_FLAGS" | "OXM_OF_TCP_FLAGS" | "ONFOXM_ET_TCP_FLAGS" => "tcp_flags",
        "NXM_OF_UDP_SRC" | "OXM_OF_UDP_SRC" => "udp_src",
        "NXM_OF_UDP_DST" | "OXM_OF_UDP_DST" => "udp_dst",
        "OXM_OF_SCTP_SRC" => "sctp_src",
        "OXM_OF_SCTP_DST" => "sctp_dst",
        "NXM_OF_ICMP_TYPE" | "OXM_OF_ICMPV4_TYPE" => "icmp_type",
        "NXM_OF_ICMP_CODE" | "OXM_OF_ICMPV4_CODE" => "icmp_code",
        "NXM_NX_ICMPV6_TYPE" | "OXM_OF_ICMPV6_TYPE" => "icmpv6_type",
        "NXM_NX_ICMPV6_CODE" | "OXM_OF_ICMPV6_CODE" => "icmpv6_code",
        "NXM_NX_ND_TARGET" | "OXM_OF_IPV6_ND_TARGET" => "nd_target",
        "NXM_NX_ND_SLL" | "OXM_OF_IPV6_ND_SLL" => "nd_sll",
        "NXM_NX_ND_TLL" | "OXM_OF_IPV6_ND_TLL" => "nd_tll",
        "OXM_OF_METADATA" => "metadata",
        "NXM_NX_TUN_ID" | "OXM_OF_TUNNEL_ID" => "tun_id",
        "NXM_NX_PKT_MARK" => "pkt_mark",
        "NXM_NX_CT_STATE" => "ct_state",
        "NXM_NX_CT_ZONE" => "ct_zone",
        "NXM_NX_CT_MARK" => "ct_mark",
        "NXM_NX_CT_LABEL" => "ct_label",
        "NXM_NX_CT_NW_SRC" => "ct_nw_src",
        "NXM_NX_CT_NW_DST" => "ct_nw_dst",
        "NXM_NX_CT_IPV6_SRC" => "ct_ipv6_src",
        "NXM_NX_CT_IPV6_DST" => "ct_ipv6_dst",
        "NXM_NX_CT_NW_PROTO" => "ct_nw_proto",
        "NXM_NX_CT_TP_SRC" => "ct_tp_src",
        "NXM_NX_CT_TP_DST" => "ct_tp_dst",
        _ => {
            if let Some(n) = name.strip_prefix("NXM_NX_XXREG") {
                return index_suffix(n, 4).map(|n| reg_def(FieldId::Xxreg(n)));
            }
            if let Some(n) = name.strip_prefix("OXM_OF_PKT_REG") {
                return index_suffix(n, 8).map(|n| reg_def(FieldId::Xreg(n)));
            }
            if let Some(n) = name.strip_prefix("NXM_NX_REG") {
                return index_suffix(n, 16).map(|n| reg_def(FieldId::Reg(n)));
            }
            return None;
        }
    };
    lookup(plain)
}

/// Width of the field as OVS counts it for subfields (`vlan_vid` is 12
/// bits there; the "present" bit is not part of `OXM_OF_VLAN_VID[]`).
pub(crate) fn ovs_bits(id: FieldId) -> u32 {
    match id {
        FieldId::VlanVid => 12,
        _ => id.n_bits(),
    }
}

/// The transport protocol a match pins down (for naming `tp_src` as
/// `tcp_src`/`udp_src`/`sctp_src`), if any.
pub(crate) fn l4_proto(key: &FlowKey, mask: &FlowKey) -> Option<u8> {
    let ip = mask.dl_type == 0xffff && (key.dl_type == 0x0800 || key.dl_type == 0x86dd);
    (ip && mask.nw_proto == 0xff).then_some(key.nw_proto)
}

/// The name OVS prints for a field in `set_field:...->NAME`.
pub(crate) fn canon_name(id: FieldId, proto: Option<u8>) -> String {
    use FieldId::*;
    let l4 = |tcp: &'static str, udp: &'static str, sctp: &'static str| match proto {
        Some(IPPROTO_UDP) => udp,
        Some(IPPROTO_SCTP) => sctp,
        _ => tcp,
    };
    // The OXM-era names where they differ from ovs-ofctl's match names.
    match id {
        DlSrc => "eth_src",
        DlDst => "eth_dst",
        DlType => "eth_type",
        NwSrc => "ip_src",
        NwDst => "ip_dst",
        NwFrag => "ip_frag",
        TpSrc => l4("tcp_src", "udp_src", "sctp_src"),
        TpDst => l4("tcp_dst", "udp_dst", "sctp_dst"),
        _ => return id.name(),
    }
    .to_string()
}

/// The NXM/OXM name OVS prints for a field in `load:`/`move:` subfields
/// (the first NXM name, else the OXM name).
pub(crate) fn nxm_name(id: FieldId, proto: Option<u8>) -> String {
    use FieldId::*;
    let l4 = |tcp: &'static str, udp: &'static str, sctp: &'static str| match proto {
        Some(IPPROTO_UDP) => udp,
        Some(IPPROTO_SCTP) => sctp,
        Some(IPPROTO_TCP) | Some(_) | None => tcp,
    };
    let s = match id {
        InPort => "NXM_OF_IN_PORT",
        DlSrc => "NXM_OF_ETH_SRC",
        DlDst => "NXM_OF_ETH_DST",
        DlType => "NXM_OF_ETH_TYPE",
        VlanTci => "NXM_OF_VLAN_TCI",
        VlanVid => "OXM_OF_VLAN_VID",
        VlanPcp => "OXM_OF_VLAN_PCP",
        MplsLabel => "OXM_OF_MPLS_LABEL",
        MplsTc => "OXM_OF_MPLS_TC",
        MplsBos => "OXM_OF_MPLS_BOS",
        MplsTtl => "NXM_NX_MPLS_TTL",
        NwSrc => "NXM_OF_IP_SRC",
        NwDst => "NXM_OF_IP_DST",
        NwProto => "NXM_OF_IP_PROTO",
        NwTos => "NXM_OF_IP_TOS",
        IpDscp => "OXM_OF_IP_DSCP",
        NwEcn => "NXM_NX_IP_ECN",
        NwTtl => "NXM_NX_IP_TTL",
        NwFrag => "NXM_NX_IP_FRAG",
        ArpOp => "NXM_OF_ARP_OP",
        ArpSpa => "NXM_OF_ARP_SPA",
        ArpTpa => "NXM_OF_ARP_TPA",
        ArpSha => "NXM_NX_ARP_SHA",
        ArpTha => "NXM_NX_ARP_THA",
        Ipv6Src => "NXM_NX_IPV6_SRC",
        Ipv6Dst => "NXM_NX_IPV6_DST",
        Ipv6Label => "NXM_NX_IPV6_LABEL",
        NdTarget => "NXM_NX_ND_TARGET",
        NdSll => "NXM_NX_ND_SLL",
        NdTll => "NXM_NX_ND_TLL",
        TpSrc => l4("NXM_OF_TCP_SRC", "NXM_OF_UDP_SRC", "OXM_OF_SCTP_SRC"),
        TpDst => l4("NXM_OF_TCP_DST", "NXM_OF_UDP_DST", "OXM_OF_SCTP_DST"),
        TcpFlags => "NXM_NX_TCP_FLAGS",
        IcmpType => "NXM_OF_ICMP_TYPE",
        IcmpCode => "NXM_OF_ICMP_CODE",
        Icmpv6Type => "NXM_NX_ICMPV6_TYPE",
        Icmpv6Code => "NXM_NX_ICMPV6_CODE",
        Metadata => "OXM_OF_METADATA",
        Reg(n) => return format!("NXM_NX_REG{n}"),
        Xreg(n) => return format!("OXM_OF_PKT_REG{n}"),
        Xxreg(n) => return format!("NXM_NX_XXREG{n}"),
        TunId => "NXM_NX_TUN_ID",
        TunSrc => "NXM_NX_TUN_IPV4_SRC",
        TunDst => "NXM_NX_TUN_IPV4_DST",
        PktMark => "NXM_NX_PKT_MARK",
        CtState => "NXM_NX_CT_STATE",
        CtZone => "NXM_NX_CT_ZONE",
        CtMark => "NXM_NX_CT_MARK",
        CtLabel => "NXM_NX_CT_LABEL",
        CtNwSrc => "NXM_NX_CT_NW_SRC",
        CtNwDst => "NXM_NX_CT_NW_DST",
        CtIpv6Src => "NXM_NX_CT_IPV6_SRC",
        CtIpv6Dst => "NXM_NX_CT_IPV6_DST",
        CtNwProto => "NXM_NX_CT_NW_PROTO",
        CtTpSrc => "NXM_NX_CT_TP_SRC",
        CtTpDst => "NXM_NX_CT_TP_DST",
    };
    s.to_string()
}

/// How OVS prints the field's values.
pub(crate) fn fmt_of(id: FieldId) -> Fmt {
    use FieldId::*;
    match id {
        InPort => Fmt::Port,
        DlSrc | DlDst | ArpSha | ArpTha | NdSll | NdTll => Fmt::Mac,
        DlType | VlanTci | Ipv6Label | Metadata | Reg(_) | Xreg(_) | Xxreg(_) | TunId | PktMark => {
            Fmt::Hex
        }
        NwSrc | NwDst | ArpSpa | ArpTpa | TunSrc | TunDst => Fmt::Ipv4,
        Ipv6Src | Ipv6Dst | NdTarget => Fmt::Ipv6,
        NwFrag => Fmt::Frag,
        TcpFlags => Fmt::TcpFlags,
        CtState => Fmt::CtState,
        CtZone | CtMark | CtLabel => Fmt::Hex,
        CtNwSrc | CtNwDst => Fmt::Ipv4,
        CtIpv6Src | CtIpv6Dst => Fmt::Ipv6,
        _ => Fmt::Dec,
    }
}

/// Parses `NAME`, `NAME[]`, `NAME[bit]` or `NAME[start..end]` at the start
/// of `s` (NXM/OXM or plain names).  Returns the field, the subfield and how
/// many bytes were consumed.
pub(crate) fn parse_subfield(s: &str) -> Result<(Def, SubField, usize), String> {
    let name_len = s.find(['[', '-']).unwrap_or(s.len());
    let name = &s[..name_len];
    let def = lookup_nxm(name)
        .or_else(|| lookup(name))
        .ok_or_else(|| format!("{s}: unknown field `{name}'"))?;
    let bits = ovs_bits(def.id);
    let rest = &s[name_len..];
    let (start, end, used) = if let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| {
            format!("{s}: syntax error expecting [] or [<bit>] or [<start>..<end>]")
        })?;
        let body = &inner[..close];
        let num = |t: &str| -> Result<u32, String> {
            if t.is_empty() || t.len() > 9 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "{s}: syntax error expecting [] or [<bit>] or [<start>..<end>]"
                ));
            }
            t.parse::<u32>().map_err(|e| e.to_string())
        };
        let (a, b) = if body.is_empty() {
            (0, bits - 1)
        } else if let Some((a, b)) = body.split_once("..") {
            (num(a)?, num(b)?)
        } else {
            let a = num(body)?;
            (a, a)
        };
        (a, b, name_len + close + 2)
    } else {
        (0, bits - 1, name_len)
    };
    if start > end {
        return Err(format!(
            "{s}: starting bit {start} is after ending bit {end}"
        ));
    }
    if start >= bits {
        return Err(format!(
            "{s}: starting bit {start} is not valid because field is only {bits} bits wide"
        ));
    }
    if end >= bits {
        return Err(format!(
            "{s}: ending bit {end} is not valid because field is only {bits} bits wide"
        ));
    }
    Ok((
        def,
        SubField {
            field: def.id,
            ofs: start,
            n_bits: end - start + 1,
        },
        used,
    ))
}

/// Splits the bits of `mask` (field-value space) into the contiguous runs
/// of at most 64 bits that OVS's `next_load_segment` produces (one
/// NXAST_REG_LOAD each): `(subfield, value of those bits)`.
pub(crate) fn load_segments(field: FieldId, value: u128, mask: u128) -> Vec<(SubField, u128)> {
    let bits = ovs_bits(field);
    let bit = |i: u32| i < 128 && (mask >> i) & 1 != 0;
    let mut out = Vec::new();
    let mut start = 0;
    while start < bits {
        let Some(ofs) = (start..bits).find(|i| bit(*i)) else {
            break;
        };
        let limit = (ofs + 64).min(bits);
        let end = (ofs + 1..limit).find(|i| !bit(*i)).unwrap_or(limit);
        let n = end - ofs;
        let ones = if n >= 128 {
            u128::MAX
        } else {
            (1u128 << n) - 1
        };
        let sf = SubField {
            field,
            ofs,
            n_bits: n,
        };
        out.push((sf, (value >> ofs) & ones));
        start = end;
    }
    out
}

/// Formats a subfield the way OVS does (`NXM_NX_REG0[]`, `NXM_OF_ETH_SRC[40]`,
/// `NXM_NX_REG1[0..15]`).
pub(crate) fn format_subfield(sf: &SubField, proto: Option<u8>) -> String {
    let name = nxm_name(sf.field, proto);
    if sf.ofs == 0 && sf.n_bits == ovs_bits(sf.field) {
        format!("{name}[]")
    } else if sf.n_bits == 1 {
        format!("{name}[{}]", sf.ofs)
    } else {
        format!(
            "{name}[{}..{}]",
            sf.ofs,
            sf.ofs + sf.n_bits.saturating_sub(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(lookup("nw_src").unwrap().id, FieldId::NwSrc);
        assert_eq!(lookup("ip_src").unwrap().id, FieldId::NwSrc);
        assert_eq!(lookup("reg15").unwrap().id, FieldId::Reg(15));
        assert!(lookup("reg16").is_none());
        assert!(lookup("reg01").is_none());
        assert_eq!(lookup("xreg7").unwrap().id, FieldId::Xreg(7));
        assert_eq!(lookup("xxreg3").unwrap().id, FieldId::Xxreg(3));
        assert!(lookup("xxreg4").is_none());
        assert_eq!(lookup_nxm("NXM_NX_REG3").unwrap().id, FieldId::Reg(3));
        assert_eq!(lookup_nxm("NXM_NX_XXREG1").unwrap().id, FieldId::Xxreg(1));
        assert_eq!(lookup_nxm("OXM_OF_PKT_REG2").unwrap().id, FieldId::Xreg(2));
        assert_eq!(
            lookup_nxm("NXM_OF_UDP_SRC").unwrap().areq,
            Req::P(Prereq::Udp)
        );
        assert_eq!(lookup_nxm("NXM_OF_ETH_SRC_W").unwrap().id, FieldId::DlSrc);
        assert!(lookup_nxm("NXM_NX_FOO").is_none());
    }

    #[test]
    fn subfields() {
        let (_, sf, used) = parse_subfield("NXM_NX_REG1[0..15]->x").unwrap();
        assert_eq!((sf.ofs, sf.n_bits, used), (0, 16, 18));
        let (_, sf, _) = parse_subfield("NXM_OF_ETH_SRC[40]").unwrap();
        assert_eq!((sf.ofs, sf.n_bits), (40, 1));
        let (_, sf, _) = parse_subfield("reg2").unwrap();
        assert_eq!((sf.ofs, sf.n_bits), (0, 32));
        let (_, sf, _) = parse_subfield("OXM_OF_VLAN_VID[]").unwrap();
        assert_eq!(sf.n_bits, 12);
        assert!(parse_subfield("NXM_NX_REG1[16..40]")
            .unwrap_err()
            .contains("ending bit 40"));
        assert!(parse_subfield("NXM_NX_REG1[9..3]")
            .unwrap_err()
            .contains("after ending"));
        assert!(parse_subfield("NXM_NX_REG1[x]")
            .unwrap_err()
            .contains("syntax error"));
        assert!(parse_subfield("FOO[]")
            .unwrap_err()
            .contains("unknown field"));
        let sf = SubField {
            field: FieldId::TpSrc,
            ofs: 0,
            n_bits: 16,
        };
        assert_eq!(format_subfield(&sf, Some(17)), "NXM_OF_UDP_SRC[]");
        let sf = SubField {
            field: FieldId::DlSrc,
            ofs: 32,
            n_bits: 16,
        };
        assert_eq!(format_subfield(&sf, None), "NXM_OF_ETH_SRC[32..47]");
    }
}
