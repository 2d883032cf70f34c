//! OXM/NXM match fields ↔ [`FieldId`], and `ofp_match` ↔ [`Match`].
//!
//! Decoding accepts the OpenFlow 1.3 basic class (0x8000), the packet
//! registers class (0x8001, `xreg`), OVS's NXM classes 0 and 1 (`NXM_OF_*`,
//! `NXM_NX_*`: registers, tunnel id, IP TTL and fragments, ...) and the ONF
//! experimenter `tcp_flags` that `ovs-ofctl -O OpenFlow13` sends. Encoding
//! writes what OVS writes for OpenFlow 1.3: OXM where the field has one,
//! NXM for the Nicira-only fields.

use crate::buf::{Reader, Writer};
use crate::error::{fail, ErrCode, OfError};
use flowcache::key::{
    FlowKey, ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6, ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST,
    ETH_TYPE_RARP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
};
use ofproto::{FieldId, Match};

pub const OFPXMC_NXM_0: u16 = 0x0000;
pub const OFPXMC_NXM_1: u16 = 0x0001;
pub const OFPXMC_BASIC: u16 = 0x8000;
pub const OFPXMC_PACKET_REGS: u16 = 0x8001;
pub const OFPXMC_EXPERIMENTER: u16 = 0xffff;
/// ONF's experimenter id (OXM `tcp_flags` in OpenFlow 1.3).
pub const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
const ONFOXM_ET_TCP_FLAGS: u8 = 42;

/// An OXM/NXM field header without the has-mask bit and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OxmId {
    pub class: u16,
    pub field: u8,
    /// Value length in bytes.
    pub len: u8,
    /// 0 except for experimenter OXMs.
    pub experimenter: u32,
}

/// How a field's wire value maps to the [`FieldId`] value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conv {
    Plain,
    /// OpenFlow 1.1+ 32-bit port number (reserved ports at 0xffffff00+).
    Port32,
}

struct Def {
    class: u16,
    field: u8,
    len: u8,
    id: FieldId,
    conv: Conv,
    maskable: bool,
}

const fn d(class: u16, field: u8, len: u8, id: FieldId, maskable: bool) -> Def {
    Def {
        class,
        field,
        len,
        id,
        conv: Conv::Plain,
        maskable,
    }
}

use FieldId::*;
const B: u16 = OFPXMC_BASIC;
const N0: u16 = OFPXMC_NXM_0;
const N1: u16 = OFPXMC_NXM_1;

/// Every field header decoding understands (fixed ones; registers are
/// computed in [`lookup`]).
const DEFS: &[Def] = &[
    Def {
        class: B,
        field: 0,
        len: 4,
        id: InPort,
        conv: Conv::Port32,
        maskable: false,
    },
    d(B, 2, 8, Metadata, true),
    d(B, 3, 6, DlDst, true),
    d(B, 4, 6, DlSrc, true),
    d(B, 5, 2, DlType, false),
    d(B, 6, 2, VlanVid, true),
    d(B, 7, 1, VlanPcp, false),
    d(B, 8, 1, IpDscp, false),
    d(B, 9, 1, NwEcn, false),
    d(B, 10, 1, NwProto, false),
    d(B, 11, 4, NwSrc, true),
    d(B, 12, 4, NwDst, true),
    d(B, 13, 2, TpSrc, true),
    d(B, 14, 2, TpDst, true),
    d(B, 15, 2, TpSrc, true),
    d(B, 16, 2, TpDst, true),
    d(B, 17, 2, TpSrc, true),
    d(B, 18, 2, TpDst, true),
    d(B, 19, 1, IcmpType, false),
    d(B, 20, 1, IcmpCode, false),
    d(B, 21, 2, ArpOp, false),
    d(B, 22, 4, ArpSpa, true),
    d(B, 23, 4, ArpTpa, true),
    d(B, 24, 6, ArpSha, true),
    d(B, 25, 6, ArpTha, true),
    d(B, 26, 16, Ipv6Src, true),
    d(B, 27, 16, Ipv6Dst, true),
    d(B, 28, 4, Ipv6Label, true),
    d(B, 29, 1, Icmpv6Type, false),
    d(B, 30, 1, Icmpv6Code, false),
    d(B, 31, 16, NdTarget, true),
    d(B, 32, 6, NdSll, true),
    d(B, 33, 6, NdTll, true),
    d(B, 34, 4, MplsLabel, false),
    d(B, 35, 1, MplsTc, false),
    d(B, 36, 1, MplsBos, false),
    d(B, 38, 8, TunId, true),
    d(N0, 0, 2, InPort, false),
    d(N0, 1, 6, DlDst, true),
    d(N0, 2, 6, DlSrc, true),
    d(N0, 3, 2, DlType, false),
    d(N0, 4, 2, VlanTci, true),
    d(N0, 5, 1, NwTos, false),
    d(N0, 6, 1, NwProto, false),
    d(N0, 7, 4, NwSrc, true),
    d(N0, 8, 4, NwDst, true),
    d(N0, 9, 2, TpSrc, true),
    d(N0, 10, 2, TpDst, true),
    d(N0, 11, 2, TpSrc, true),
    d(N0, 12, 2, TpDst, true),
    d(N0, 13, 1, IcmpType, false),
    d(N0, 14, 1, IcmpCode, false),
    d(N0, 15, 2, ArpOp, false),
    d(N0, 16, 4, ArpSpa, true),
    d(N0, 17, 4, ArpTpa, true),
    d(N1, 16, 8, TunId, true),
    d(N1, 17, 6, ArpSha, true),
    d(N1, 18, 6, ArpTha, true),
    d(N1, 19, 16, Ipv6Src, true),
    d(N1, 20, 16, Ipv6Dst, true),
    d(N1, 21, 1, Icmpv6Type, false),
    d(N1, 22, 1, Icmpv6Code, false),
    d(N1, 23, 16, NdTarget, true),
    d(N1, 24, 6, NdSll, true),
    d(N1, 25, 6, NdTll, true),
    d(N1, 26, 1, NwFrag, true),
    d(N1, 27, 4, Ipv6Label, true),
    d(N1, 28, 1, NwEcn, false),
    d(N1, 29, 1, NwTtl, false),
    d(N1, 30, 1, MplsTtl, false),
    d(N1, 33, 4, PktMark, true),
    d(N1, 34, 2, TcpFlags, true),
];

/// The field a header names, with its conversion and maskability.
fn lookup(id: OxmId) -> Option<(FieldId, Conv, bool, u8)> {
    if id.class == OFPXMC_EXPERIMENTER {
        return (id.experimenter == ONF_EXPERIMENTER && id.field == ONFOXM_ET_TCP_FLAGS)
            .then_some((TcpFlags, Conv::Plain, true, 2));
    }
    if id.class == N1 && id.field < 16 {
        return Some((Reg(id.field), Conv::Plain, true, 4));
    }
    if id.class == N1 && (111..115).contains(&id.field) {
        return Some((Xxreg(id.field - 111), Conv::Plain, true, 16));
    }
    if id.class == OFPXMC_PACKET_REGS && id.field < 8 {
        return Some((Xreg(id.field), Conv::Plain, true, 8));
    }
    DEFS.iter()
        .find(|d| d.class == id.class && d.field == id.field)
        .map(|d| (d.id, d.conv, d.maskable, d.len))
}

/// The L4 protocol a match pins (decides TCP/UDP/SCTP port headers).
pub fn l4_proto(m: &Match) -> Option<u8> {
    (m.mask.nw_proto == 0xff && m.mask.dl_type == 0xffff).then_some(m.value.nw_proto)
}

/// The header OVS uses for `field` in OpenFlow 1.3 `set_field` and in
/// matches: OXM where there is one. `proto` picks the TCP/UDP/SCTP port
/// header.
pub fn oxm_id(field: FieldId, proto: Option<u8>) -> OxmId {
    let basic = |f: u8, len: u8| OxmId {
        class: B,
        field: f,
        len,
        experimenter: 0,
    };
    match field {
        InPort => basic(0, 4),
        Metadata => basic(2, 8),
        DlDst => basic(3, 6),
        DlSrc => basic(4, 6),
        DlType => basic(5, 2),
        VlanVid => basic(6, 2),
        VlanPcp => basic(7, 1),
        IpDscp => basic(8, 1),
        NwEcn => basic(9, 1),
        NwProto => basic(10, 1),
        NwSrc => basic(11, 4),
        NwDst => basic(12, 4),
        TpSrc => match proto {
            Some(IPPROTO_UDP) => basic(15, 2),
            Some(IPPROTO_SCTP) => basic(17, 2),
            _ => basic(13, 2),
        },
        TpDst => match proto {
            Some(IPPROTO_UDP) => basic(16, 2),
            Some(IPPROTO_SCTP) => basic(18, 2),
            _ => basic(14, 2),
        },
        IcmpType => basic(19, 1),
        IcmpCode => basic(20, 1),
        ArpOp => basic(21, 2),
        ArpSpa => basic(22, 4),
        ArpTpa => basic(23, 4),
        ArpSha => basic(24, 6),
        ArpTha => basic(25, 6),
        Ipv6Src => basic(26, 16),
        Ipv6Dst => basic(27, 16),
        Ipv6Label => basic(28, 4),
        Icmpv6Type => basic(29, 1),
        Icmpv6Code => basic(30, 1),
        NdTarget => basic(31, 16),
        NdSll => basic(32, 6),
        NdTll => basic(33, 6),
        MplsLabel => basic(34, 4),
        MplsTc => basic(35, 1),
        MplsBos => basic(36, 1),
        TunId => basic(38, 8),
        Xreg(n) => OxmId {
            class: OFPXMC_PACKET_REGS,
            field: n,
            len: 8,
            experimenter: 0,
        },
        _ => nxm_id(field, proto),
    }
}

/// The NXM header OVS uses for `field` in `reg_load`/`reg_move`/
/// `output_reg` (NXM where there is one, else OXM).
pub fn nxm_id(field: FieldId, proto: Option<u8>) -> OxmId {
    let n = |class: u16, f: u8, len: u8| OxmId {
        class,
        field: f,
        len,
        experimenter: 0,
    };
    match field {
        InPort => n(N0, 0, 2),
        DlDst => n(N0, 1, 6),
        DlSrc => n(N0, 2, 6),
        DlType => n(N0, 3, 2),
        VlanTci => n(N0, 4, 2),
        NwTos => n(N0, 5, 1),
        NwProto => n(N0, 6, 1),
        NwSrc => n(N0, 7, 4),
        NwDst => n(N0, 8, 4),
        TpSrc => match proto {
            Some(IPPROTO_UDP) => n(N0, 11, 2),
            Some(IPPROTO_SCTP) => n(B, 17, 2),
            _ => n(N0, 9, 2),
        },
        TpDst => match proto {
            Some(IPPROTO_UDP) => n(N0, 12, 2),
            Some(IPPROTO_SCTP) => n(B, 18, 2),
            _ => n(N0, 10, 2),
        },
        IcmpType => n(N0, 13, 1),
        IcmpCode => n(N0, 14, 1),
        ArpOp => n(N0, 15, 2),
        ArpSpa => n(N0, 16, 4),
        ArpTpa => n(N0, 17, 4),
        Reg(r) => n(N1, r, 4),
        TunId => n(N1, 16, 8),
        ArpSha => n(N1, 17, 6),
        ArpTha => n(N1, 18, 6),
        Ipv6Src => n(N1, 19, 16),
        Ipv6Dst => n(N1, 20, 16),
        Icmpv6Type => n(N1, 21, 1),
        Icmpv6Code => n(N1, 22, 1),
        NdTarget => n(N1, 23, 16),
        NdSll => n(N1, 24, 6),
        NdTll => n(N1, 25, 6),
        NwFrag => n(N1, 26, 1),
        Ipv6Label => n(N1, 27, 4),
        NwEcn => n(N1, 28, 1),
        NwTtl => n(N1, 29, 1),
        MplsTtl => n(N1, 30, 1),
        PktMark => n(N1, 33, 4),
        TcpFlags => n(N1, 34, 2),
        Xxreg(x) => n(N1, 111 + x, 16),
        _ => oxm_id(field, proto),
    }
}

/// Reads a 4-byte (or, experimenter, 8-byte) field header; returns the id
/// and the has-mask bit.
pub fn pull_header(r: &mut Reader<'_>) -> Result<(OxmId, bool), OfError> {
    let h = r.u32("OXM header")?;
    let class = (h >> 16) as u16;
    let field = ((h >> 9) & 0x7f) as u8;
    let hasmask = h & 0x100 != 0;
    let mut len = (h & 0xff) as u8;
    let mut experimenter = 0;
    if class == OFPXMC_EXPERIMENTER {
        experimenter = r.u32("OXM experimenter id")?;
        if len < 4 {
            return fail(ErrCode::BMC_BAD_LEN, "experimenter OXM shorter than its id");
        }
        len -= 4;
    }
    if hasmask {
        if !len.is_multiple_of(2) {
            return fail(ErrCode::BMC_BAD_LEN, "masked OXM with an odd length");
        }
        len /= 2;
    }
    Ok((
        OxmId {
            class,
            field,
            len,
            experimenter,
        },
        hasmask,
    ))
}

/// Writes a header (`hasmask` doubles the length).
pub fn put_header(w: &mut Writer, id: OxmId, hasmask: bool) {
    let exp = if id.class == OFPXMC_EXPERIMENTER {
        4
    } else {
        0
    };
    let len = if hasmask { id.len * 2 } else { id.len } + exp;
    let h = (u32::from(id.class) << 16)
        | (u32::from(id.field) << 9)
        | (u32::from(hasmask) << 8)
        | u32::from(len);
    w.u32(h);
    if exp != 0 {
        w.u32(id.experimenter);
    }
}

fn be_value(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x))
}

fn put_value(w: &mut Writer, v: u128, len: u8) {
    let bytes = v.to_be_bytes();
    w.bytes(&bytes[16 - len as usize..]);
}

/// OpenFlow 1.1+ port number → the 16-bit one the rules hold.
pub fn port_from_of13(p: u32) -> Option<u32> {
    if p < 0xff00 {
        Some(p)
    } else if p >= 0xffff_ff00 {
        Some(p - 0xffff_0000)
    } else {
        None
    }
}

/// 16-bit port number → OpenFlow 1.1+.
pub fn port_to_of13(p: u32) -> u32 {
    if p >= 0xff00 {
        p | 0xffff_0000
    } else {
        p
    }
}

/// A field header resolved against the registry.
#[derive(Clone, Copy, Debug)]
pub struct FieldHeader {
    pub field: FieldId,
    pub id: OxmId,
    pub hasmask: bool,
    conv: Conv,
    maskable: bool,
}

/// Reads and resolves a field header.
pub fn pull_field_header(r: &mut Reader<'_>) -> Result<FieldHeader, OfError> {
    let (id, hasmask) = pull_header(r)?;
    let Some((field, conv, maskable, len)) = lookup(id) else {
        return fail(
            ErrCode::BMC_BAD_FIELD,
            format!(
                "unknown field class {:#06x} field {} (not supported yet)",
                id.class, id.field
            ),
        );
    };
    if id.len != len {
        return fail(
            ErrCode::BMC_BAD_LEN,
            format!("{}: {} bytes, expected {len}", field.name(), id.len),
        );
    }
    Ok(FieldHeader {
        field,
        id,
        hasmask,
        conv,
        maskable,
    })
}

/// One decoded TLV: field, value and mask (all ones without a mask), in
/// [`FieldId`] value space.
pub fn pull_entry(r: &mut Reader<'_>) -> Result<(FieldId, u128, u128, bool), OfError> {
    let h = pull_field_header(r)?;
    let len = h.id.len as usize;
    let raw = be_value(r.bytes(len, "OXM value")?);
    let raw_mask = if h.hasmask {
        Some(be_value(r.bytes(len, "OXM mask")?))
    } else {
        None
    };
    let f = h.field;
    if raw_mask.is_some() && !h.maskable {
        return fail(
            ErrCode::BMC_BAD_MASK,
            format!("{} is not maskable", f.name()),
        );
    }
    let value = match h.conv {
        Conv::Plain => raw,
        Conv::Port32 => match port_from_of13(raw as u32) {
            Some(p) => u128::from(p),
            None => {
                return fail(
                    ErrCode::BMC_BAD_VALUE,
                    format!("in_port {raw:#x} is outside the port range"),
                )
            }
        },
    };
    let full = storage_mask(f);
    let mask = raw_mask.unwrap_or(f.valid_mask()) & f.valid_mask();
    if value & !full != 0 || raw_mask.unwrap_or(0) & !f.valid_mask() != 0 {
        return fail(
            ErrCode::BMC_BAD_VALUE,
            format!(
                "{}: value {value:#x} or mask {mask:#x} wider than the field",
                f.name()
            ),
        );
    }
    Ok((f, value, mask, h.hasmask))
}

/// Decodes an `ofp_match` (type OXM), consuming it and its padding.
pub fn decode_match(r: &mut Reader<'_>) -> Result<Match, OfError> {
    let ty = r.u16("match type")?;
    let len = r.u16("match length")? as usize;
    if ty != 1 {
        return fail(
            ErrCode::BMC_BAD_TYPE,
            format!("match type {ty} (only OXM, 1)"),
        );
    }
    if len < 4 {
        return fail(ErrCode::BMC_BAD_LEN, format!("match length {len}"));
    }
    let mut body = r.sub(len - 4, "match")?;
    let pad = (8 - len % 8) % 8;
    r.skip(pad, "match padding")?;
    let mut m = Match::catchall();
    let mut seen: Vec<FieldId> = Vec::new();
    while !body.is_empty() {
        // NXM_NX_CONJ_ID (class 1, field 37): not a FieldId (it is only
        // matched, never set).
        if body.remaining() >= 8 && body.rest()[..4] == [0x00, 0x01, 0x4a, 0x04] {
            if m.mask.conj_id != 0 {
                return fail(ErrCode::BMC_DUP_FIELD, "conj_id twice");
            }
            body.skip(4, "conj_id header")?;
            m.value.conj_id = body.u32("conj_id")?;
            m.mask.conj_id = u32::MAX;
            continue;
        }
        let (f, v, mask, _) = pull_entry(&mut body)?;
        if seen.contains(&f) {
            return fail(ErrCode::BMC_DUP_FIELD, format!("{} twice", f.name()));
        }
        seen.push(f);
        if mask == 0 {
            continue;
        }
        match f {
            // The flow language (as OVS) matches an ICMP type or code as
            // the whole 16-bit transport port it is stored in.
            IcmpType | Icmpv6Type => m.set_field(TpSrc, v, 0xffff),
            IcmpCode | Icmpv6Code => m.set_field(TpDst, v, 0xffff),
            _ => m.set_field(f, v, mask),
        }
    }
    Ok(m)
}

/// The bits of `f` a key can hold (`arp_op` is 16 bits on the wire, 8 in
/// the key).
pub fn storage_mask(f: FieldId) -> u128 {
    let mut k = FlowKey::default();
    f.set(&mut k, u128::MAX);
    f.get(&k) & f.valid_mask()
}

fn put_entry(w: &mut Writer, id: OxmId, value: u128, mask: u128, full: u128) {
    if mask == 0 {
        return;
    }
    let masked = mask != full;
    put_header(w, id, masked);
    put_value(w, value & mask, id.len);
    if masked {
        put_value(w, mask, id.len);
    }
}

/// Writes the OXM fields of `m` (no `ofp_match` header).
pub fn put_oxms(w: &mut Writer, m: &Match) {
    let (v, k) = (&m.value, &m.mask);
    let field = |w: &mut Writer, f: FieldId, id: OxmId| {
        let mask = f.get(k);
        put_entry(w, id, f.get(v), mask, storage_mask(f));
    };
    let proto = l4_proto(m);
    if k.in_port != 0 {
        put_entry(
            w,
            oxm_id(InPort, None),
            u128::from(port_to_of13(v.in_port)),
            u128::from(u32::MAX),
            u128::from(u32::MAX),
        );
    }
    field(w, DlDst, oxm_id(DlDst, None));
    field(w, DlSrc, oxm_id(DlSrc, None));
    field(w, DlType, oxm_id(DlType, None));
    let tci_mask = k.vlans[0].tci;
    if tci_mask != 0 {
        let pcp_mask = tci_mask >> 13;
        if pcp_mask == 0 || pcp_mask == 7 {
            field(w, VlanVid, oxm_id(VlanVid, None));
            field(w, VlanPcp, oxm_id(VlanPcp, None));
        } else {
            field(w, VlanTci, nxm_id(VlanTci, None));
        }
    }
    let dl = (k.dl_type == 0xffff).then_some(v.dl_type);
    match dl {
        Some(ETH_TYPE_MPLS) | Some(ETH_TYPE_MPLS_MCAST) => {
            for f in [MplsLabel, MplsTc, MplsBos] {
                field(w, f, oxm_id(f, None));
            }
            field(w, MplsTtl, nxm_id(MplsTtl, None));
        }
        Some(ETH_TYPE_IPV4) | Some(ETH_TYPE_IPV6) => {
            field(w, NwProto, oxm_id(NwProto, None));
            if k.nw_tos & 0xfc != 0 {
                field(w, IpDscp, oxm_id(IpDscp, None));
            }
            field(w, NwEcn, oxm_id(NwEcn, None));
            field(w, NwTtl, nxm_id(NwTtl, None));
            field(w, NwFrag, nxm_id(NwFrag, None));
            if dl == Some(ETH_TYPE_IPV4) {
                field(w, NwSrc, oxm_id(NwSrc, None));
                field(w, NwDst, oxm_id(NwDst, None));
            } else {
                field(w, Ipv6Src, oxm_id(Ipv6Src, None));
                field(w, Ipv6Dst, oxm_id(Ipv6Dst, None));
                field(w, Ipv6Label, oxm_id(Ipv6Label, None));
            }
            match proto {
                Some(IPPROTO_TCP) | Some(IPPROTO_UDP) | Some(IPPROTO_SCTP) => {
                    field(w, TpSrc, oxm_id(TpSrc, proto));
                    field(w, TpDst, oxm_id(TpDst, proto));
                    if proto == Some(IPPROTO_TCP) {
                        field(w, TcpFlags, nxm_id(TcpFlags, None));
                    }
                }
                Some(IPPROTO_ICMP) if dl == Some(ETH_TYPE_IPV4) => {
                    field(w, IcmpType, oxm_id(IcmpType, None));
                    field(w, IcmpCode, oxm_id(IcmpCode, None));
                }
                Some(IPPROTO_ICMPV6) if dl == Some(ETH_TYPE_IPV6) => {
                    field(w, Icmpv6Type, oxm_id(Icmpv6Type, None));
                    field(w, Icmpv6Code, oxm_id(Icmpv6Code, None));
                    field(w, NdTarget, oxm_id(NdTarget, None));
                    field(w, NdSll, oxm_id(NdSll, None));
                    field(w, NdTll, oxm_id(NdTll, None));
                }
                _ => {}
            }
        }
        Some(ETH_TYPE_ARP) | Some(ETH_TYPE_RARP) => {
            for f in [ArpOp, ArpSpa, ArpTpa, ArpSha, ArpTha] {
                field(w, f, oxm_id(f, None));
            }
        }
        _ => {}
    }
    field(w, TunId, oxm_id(TunId, None));
    field(w, Metadata, oxm_id(Metadata, None));
    for r in 0..16 {
        field(w, Reg(r), nxm_id(Reg(r), None));
    }
    field(w, PktMark, nxm_id(PktMark, None));
    if k.conj_id != 0 {
        w.u32(0x0001_4a04).u32(v.conj_id);
    }
}

/// The fields of a match [`put_oxms`] cannot carry (so a reply would lie):
/// checked by comparing the match with its own decoded encoding.
pub fn encodable(m: &Match) -> bool {
    let mut w = Writer::new();
    encode_match(&mut w, m);
    let mut r = Reader::new(&w.buf);
    matches!(decode_match(&mut r), Ok(d) if d == *m)
}

/// Writes an `ofp_match` (type OXM) with its padding.
pub fn encode_match(w: &mut Writer, m: &Match) {
    let start = w.len();
    w.u16(1).u16(0);
    put_oxms(w, m);
    let len = w.len() - start;
    w.set_u16(start + 2, len as u16);
    w.pad_to(8);
}

/// A key with only `field` set (for packet-in matches).
pub fn key_field_match(key: &FlowKey, fields: &[FieldId]) -> Match {
    let mut m = Match::catchall();
    for f in fields {
        let v = f.get(key);
        if v != 0 || *f == InPort {
            m.set_field(*f, v, f.valid_mask());
        }
    }
    m
}
