//! OpenFlow 1.3 actions and instructions ↔ [`OfAction`]/[`Instructions`],
//! with the Nicira extension actions (`NXAST_*`) `ovs-ofctl -O OpenFlow13`
//! emits: resubmit, reg_load, reg_move, set_tunnel, note, exit, output_reg,
//! dec_ttl_cnt_ids, conjunction, fin_timeout, clone, output_trunc,
//! pop_queue, controller.

use crate::buf::{Reader, Writer};
use crate::error::{fail, ErrCode, OfError};
use crate::oxm::{self, nxm_id, oxm_id, port_from_of13, port_to_of13, OxmId};
use ofproto::rule::{
    BundleAlgorithm, HashFields, Instructions, MultipathAlgorithm, OfAction, OutputPort,
};
use ofproto::{ofp_port, FieldId, SubField};

/// Nicira's experimenter id.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;

pub const OFPAT_OUTPUT: u16 = 0;
pub const OFPAT_SET_MPLS_TTL: u16 = 15;
pub const OFPAT_DEC_MPLS_TTL: u16 = 16;
pub const OFPAT_PUSH_VLAN: u16 = 17;
pub const OFPAT_POP_VLAN: u16 = 18;
pub const OFPAT_PUSH_MPLS: u16 = 19;
pub const OFPAT_POP_MPLS: u16 = 20;
pub const OFPAT_SET_QUEUE: u16 = 21;
pub const OFPAT_GROUP: u16 = 22;
pub const OFPAT_SET_NW_TTL: u16 = 23;
pub const OFPAT_DEC_NW_TTL: u16 = 24;
pub const OFPAT_SET_FIELD: u16 = 25;
pub const OFPAT_EXPERIMENTER: u16 = 0xffff;

const NXAST_RESUBMIT: u16 = 1;
const NXAST_SET_TUNNEL: u16 = 2;
const NXAST_POP_QUEUE: u16 = 5;
const NXAST_REG_MOVE: u16 = 6;
const NXAST_REG_LOAD: u16 = 7;
const NXAST_NOTE: u16 = 8;
const NXAST_SET_TUNNEL64: u16 = 9;
const NXAST_RESUBMIT_TABLE: u16 = 14;
const NXAST_OUTPUT_REG: u16 = 15;
const NXAST_EXIT: u16 = 17;
const NXAST_FIN_TIMEOUT: u16 = 19;
const NXAST_CONTROLLER: u16 = 20;
const NXAST_DEC_TTL_CNT_IDS: u16 = 21;
const NXAST_CONJUNCTION: u16 = 34;
const NXAST_OUTPUT_TRUNC: u16 = 39;
const NXAST_CLONE: u16 = 42;
const NXAST_SAMPLE: u16 = 29;
const NXAST_MULTIPATH: u16 = 10;
const NXAST_BUNDLE: u16 = 12;
const NXAST_BUNDLE_LOAD: u16 = 13;
const NXAST_CHECK_PKT_LARGER: u16 = 49;

/// OpenFlow 1.1+ reserved ports: the OpenFlow 1.0 numbers with the upper
/// 16 bits set.
pub const OFPP13_IN_PORT: u32 = 0xffff_0000 | ofp_port::OFPP_IN_PORT;
pub const OFPP13_TABLE: u32 = 0xffff_0000 | ofp_port::OFPP_TABLE;
pub const OFPP13_NORMAL: u32 = 0xffff_0000 | ofp_port::OFPP_NORMAL;
pub const OFPP13_FLOOD: u32 = 0xffff_0000 | ofp_port::OFPP_FLOOD;
pub const OFPP13_ALL: u32 = 0xffff_0000 | ofp_port::OFPP_ALL;
pub const OFPP13_CONTROLLER: u32 = 0xffff_0000 | ofp_port::OFPP_CONTROLLER;
pub const OFPP13_LOCAL: u32 = 0xffff_0000 | ofp_port::OFPP_LOCAL;
pub const OFPP13_ANY: u32 = 0xffff_0000 | ofp_port::OFPP_NONE;

/// Nesting depth of `clone` accepted.
const MAX_NESTING: u32 = 16;

/// Output port (32-bit) → [`OutputPort`]: a real port, or a reserved one
/// (its OpenFlow 1.0 number with the upper 16 bits set).
pub fn output_port(p: u32) -> Option<OutputPort> {
    if p < ofp_port::OFPP_MAX {
        return Some(OutputPort::Port(p));
    }
    match p >> 16 {
        0xffff => OutputPort::reserved(p & 0xffff),
        _ => None,
    }
}

/// [`OutputPort`] → 32-bit port.
pub fn output_port_number(p: &OutputPort) -> u32 {
    match p {
        OutputPort::Port(n) => *n,
        reserved => 0xffff_0000 | reserved.ofp10_number(),
    }
}

fn bad_len(what: &str, len: usize) -> OfError {
    OfError::new(ErrCode::BAC_BAD_LEN, format!("{what}: length {len}"))
}

/// A subfield from an NXM header and `ofs_nbits`, range-checked.
fn subfield(h: &oxm::FieldHeader, ofs: u32, n_bits: u32) -> Result<SubField, OfError> {
    let width = h.field.n_bits();
    if n_bits == 0 || ofs + n_bits > width {
        return fail(
            ErrCode::BAC_BAD_ARGUMENT,
            format!(
                "{}[{ofs}..{}] outside the {width}-bit field",
                h.field.name(),
                ofs + n_bits.max(1) - 1
            ),
        );
    }
    Ok(SubField {
        field: h.field,
        ofs,
        n_bits,
    })
}

fn nx_field_header(r: &mut Reader<'_>) -> Result<oxm::FieldHeader, OfError> {
    let h =
        oxm::pull_field_header(r).map_err(|e| OfError::new(ErrCode::BAC_BAD_ARGUMENT, e.reason))?;
    if h.hasmask {
        return fail(
            ErrCode::BAC_BAD_ARGUMENT,
            "masked field header in an action",
        );
    }
    Ok(h)
}

/// Decodes an action list (apply-actions, write-actions, packet-out).
pub fn decode_actions(mut r: Reader<'_>) -> Result<Vec<OfAction>, OfError> {
    decode_actions_depth(&mut r, 0)
}

fn decode_actions_depth(r: &mut Reader<'_>, depth: u32) -> Result<Vec<OfAction>, OfError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let ty = r.u16("action type")?;
        let len = r.u16("action length")? as usize;
        if len < 8 || !len.is_multiple_of(8) || len - 4 > r.remaining() {
            return Err(bad_len("action", len));
        }
        let mut b = r.sub(len - 4, "action")?;
        out.push(decode_one(ty, len, &mut b, depth)?);
    }
    Ok(out)
}

fn exact(len: usize, want: usize, what: &str) -> Result<(), OfError> {
    if len != want {
        return Err(bad_len(what, len));
    }
    Ok(())
}

fn decode_one(ty: u16, len: usize, b: &mut Reader<'_>, depth: u32) -> Result<OfAction, OfError> {
    Ok(match ty {
        OFPAT_OUTPUT => {
            exact(len, 16, "output")?;
            let port = b.u32("port")?;
            let _max_len = b.u16("max_len")?;
            match output_port(port) {
                Some(p) => OfAction::Output(p),
                None => {
                    return fail(
                        ErrCode::BAC_BAD_OUT_PORT,
                        format!("output to port {port:#x}"),
                    )
                }
            }
        }
        OFPAT_SET_MPLS_TTL => {
            exact(len, 8, "set_mpls_ttl")?;
            OfAction::SetMplsTtl(b.u8("ttl")?)
        }
        OFPAT_DEC_MPLS_TTL => {
            exact(len, 8, "dec_mpls_ttl")?;
            OfAction::DecMplsTtl
        }
        OFPAT_PUSH_VLAN | OFPAT_PUSH_MPLS | OFPAT_POP_MPLS => {
            exact(len, 8, "push/pop")?;
            let et = b.u16("ethertype")?;
            match ty {
                OFPAT_PUSH_VLAN => {
                    if et != 0x8100 && et != 0x88a8 {
                        return fail(ErrCode::BAC_BAD_ARGUMENT, format!("push_vlan {et:#06x}"));
                    }
                    OfAction::PushVlan(et)
                }
                OFPAT_PUSH_MPLS => {
                    if et != 0x8847 && et != 0x8848 {
                        return fail(ErrCode::BAC_BAD_ARGUMENT, format!("push_mpls {et:#06x}"));
                    }
                    OfAction::PushMpls(et)
                }
                _ => OfAction::PopMpls(et),
            }
        }
        OFPAT_POP_VLAN => {
            exact(len, 8, "pop_vlan")?;
            OfAction::PopVlan
        }
        OFPAT_SET_QUEUE => {
            exact(len, 8, "set_queue")?;
            OfAction::SetQueue(b.u32("queue")?)
        }
        OFPAT_GROUP => {
            exact(len, 8, "group")?;
            OfAction::Group(b.u32("group")?)
        }
        OFPAT_SET_NW_TTL => {
            exact(len, 8, "set_nw_ttl")?;
            OfAction::SetNwTtl(b.u8("ttl")?)
        }
        OFPAT_DEC_NW_TTL => {
            exact(len, 8, "dec_nw_ttl")?;
            OfAction::DecTtl
        }
        OFPAT_SET_FIELD => {
            let (field, value, _mask, hasmask) = oxm::pull_entry(b)
                .map_err(|e| OfError::new(ErrCode::BAC_BAD_SET_ARGUMENT, e.reason))?;
            if hasmask {
                return fail(
                    ErrCode::BAC_BAD_SET_ARGUMENT,
                    "masked set_field (OpenFlow 1.5)",
                );
            }
            if !field.is_writable() {
                return fail(
                    ErrCode::BAC_BAD_SET_TYPE,
                    format!("{} is read-only", field.name()),
                );
            }
            if b.rest().iter().any(|x| *x != 0) {
                return fail(ErrCode::BAC_BAD_SET_ARGUMENT, "non-zero set_field padding");
            }
            OfAction::SetField {
                field,
                value,
                mask: field.valid_mask(),
            }
        }
        OFPAT_EXPERIMENTER => {
            let vendor = b.u32("experimenter")?;
            if vendor != NX_VENDOR_ID {
                return fail(
                    ErrCode::BAC_BAD_EXPERIMENTER,
                    format!("experimenter {vendor:#x}"),
                );
            }
            let sub = b.u16("subtype")?;
            decode_nx(sub, len, b, depth)?
        }
        t => {
            return fail(
                ErrCode::BAC_BAD_TYPE,
                format!("action type {t} not supported yet"),
            )
        }
    })
}

fn decode_nx(sub: u16, len: usize, b: &mut Reader<'_>, depth: u32) -> Result<OfAction, OfError> {
    Ok(match sub {
        NXAST_RESUBMIT | NXAST_RESUBMIT_TABLE => {
            exact(len, 16, "resubmit")?;
            let port = u32::from(b.u16("in_port")?);
            let in_port = (port != 0xfff8).then_some(port);
            let table = if sub == NXAST_RESUBMIT_TABLE {
                let t = b.u8("table")?;
                if b.rest().iter().any(|x| *x != 0) {
                    return fail(ErrCode::BAC_BAD_ARGUMENT, "resubmit padding not zero");
                }
                (t != 255).then_some(t)
            } else {
                None
            };
            if sub == NXAST_RESUBMIT_TABLE && in_port.is_none() && table.is_none() {
                return fail(
                    ErrCode::BAC_BAD_ARGUMENT,
                    "resubmit(IN_PORT,255) resubmits nothing",
                );
            }
            OfAction::Resubmit { in_port, table }
        }
        NXAST_SET_TUNNEL => {
            exact(len, 16, "set_tunnel")?;
            b.skip(2, "pad")?;
            OfAction::SetField {
                field: FieldId::TunId,
                value: u128::from(b.u32("tun_id")?),
                mask: FieldId::TunId.valid_mask(),
            }
        }
        NXAST_SET_TUNNEL64 => {
            exact(len, 24, "set_tunnel64")?;
            b.skip(6, "pad")?;
            OfAction::SetField {
                field: FieldId::TunId,
                value: u128::from(b.u64("tun_id")?),
                mask: FieldId::TunId.valid_mask(),
            }
        }
        NXAST_POP_QUEUE => {
            exact(len, 16, "pop_queue")?;
            OfAction::PopQueue
        }
        NXAST_EXIT => {
            exact(len, 16, "exit")?;
            OfAction::Exit
        }
        NXAST_REG_LOAD => {
            exact(len, 24, "reg_load")?;
            let ofs_nbits = u32::from(b.u16("ofs_nbits")?);
            let h = nx_field_header(b)?;
            let value = b.u64("value")?;
            let dst = subfield(&h, ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)?;
            if !h.field.is_writable() {
                return fail(
                    ErrCode::BAC_BAD_SET_TYPE,
                    format!("{} is read-only", h.field.name()),
                );
            }
            if dst.n_bits < 64 && value >> dst.n_bits != 0 {
                return fail(
                    ErrCode::BAC_BAD_ARGUMENT,
                    format!("load value {value:#x} wider than {} bits", dst.n_bits),
                );
            }
            OfAction::Load {
                dst,
                value: u128::from(value),
            }
        }
        NXAST_REG_MOVE => {
            let n_bits = u32::from(b.u16("n_bits")?);
            let src_ofs = u32::from(b.u16("src_ofs")?);
            let dst_ofs = u32::from(b.u16("dst_ofs")?);
            let sh = nx_field_header(b)?;
            let dh = nx_field_header(b)?;
            if b.rest().iter().any(|x| *x != 0) {
                return fail(ErrCode::BAC_BAD_ARGUMENT, "reg_move padding not zero");
            }
            if !dh.field.is_writable() {
                return fail(
                    ErrCode::BAC_BAD_SET_TYPE,
                    format!("{} is read-only", dh.field.name()),
                );
            }
            OfAction::Move {
                src: subfield(&sh, src_ofs, n_bits)?,
                dst: subfield(&dh, dst_ofs, n_bits)?,
            }
        }
        NXAST_NOTE => OfAction::Note(b.rest().to_vec()),
        NXAST_OUTPUT_REG => {
            exact(len, 24, "output_reg")?;
            let ofs_nbits = u32::from(b.u16("ofs_nbits")?);
            let h = nx_field_header(b)?;
            let _max_len = b.u16("max_len")?;
            OfAction::OutputReg(subfield(&h, ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)?)
        }
        NXAST_FIN_TIMEOUT => {
            exact(len, 16, "fin_timeout")?;
            OfAction::FinTimeout {
                idle: b.u16("idle")?,
                hard: b.u16("hard")?,
            }
        }
        NXAST_CONTROLLER => {
            exact(len, 16, "controller")?;
            let max_len = b.u16("max_len")?;
            let id = b.u16("controller_id")?;
            let reason = b.u8("reason")?;
            if max_len != u16::MAX || id != 0 || reason != 1 {
                return fail(
                    ErrCode::BAC_BAD_ARGUMENT,
                    "controller(...) with options is not supported yet",
                );
            }
            OfAction::Output(OutputPort::Controller)
        }
        NXAST_DEC_TTL_CNT_IDS => {
            let n = b.u16("n_controllers")? as usize;
            b.skip(4, "pad")?;
            if n == 0 || 16 + 2 * n > len + 7 || len != (16 + 2 * n).div_ceil(8) * 8 {
                return Err(bad_len("dec_ttl_cnt_ids", len));
            }
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(b.u16("controller id")?);
            }
            OfAction::DecTtlIds(ids)
        }
        NXAST_CONJUNCTION => {
            exact(len, 16, "conjunction")?;
            let clause = b.u8("clause")?;
            let n_clauses = b.u8("n_clauses")?;
            let id = b.u32("id")?;
            if !(2..=64).contains(&n_clauses) || clause >= n_clauses {
                return fail(
                    ErrCode::BAC_BAD_ARGUMENT,
                    format!("conjunction clause {}/{n_clauses}", clause + 1),
                );
            }
            OfAction::Conjunction {
                id,
                clause: clause + 1,
                n_clauses,
            }
        }
        NXAST_OUTPUT_TRUNC => {
            exact(len, 16, "output_trunc")?;
            let port = u32::from(b.u16("port")?);
            let max_len = b.u32("max_len")?;
            let Some(port) = ofport16(port) else {
                return fail(
                    ErrCode::BAC_BAD_OUT_PORT,
                    format!("output_trunc to {port:#x}"),
                );
            };
            OfAction::OutputTrunc { port, max_len }
        }
        NXAST_MULTIPATH => {
            exact(len, 32, "multipath")?;
            let fields = hash_fields(b.u16("fields")?)?;
            let basis = b.u16("basis")?;
            b.skip(2, "pad")?;
            let algorithm = match b.u16("algorithm")? {
                a @ 0..=3 => MultipathAlgorithm::ALL[a as usize],
                a => {
                    return fail(
                        ErrCode::BAC_BAD_ARGUMENT,
                        format!("multipath algorithm {a}"),
                    )
                }
            };
            let max_link = u32::from(b.u16("max_link")?);
            let arg = b.u32("arg")?;
            b.skip(2, "pad")?;
            let ofs_nbits = u32::from(b.u16("ofs_nbits")?);
            let h = nx_field_header(b)?;
            let dst = subfield(&h, ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)?;
            OfAction::Multipath {
                fields,
                basis,
                algorithm,
                n_links: max_link + 1,
                arg,
                dst,
            }
        }
        NXAST_BUNDLE | NXAST_BUNDLE_LOAD => {
            let algorithm = match b.u16("algorithm")? {
                0 => BundleAlgorithm::ActiveBackup,
                1 => BundleAlgorithm::Hrw,
                a => return fail(ErrCode::BAC_BAD_ARGUMENT, format!("bundle algorithm {a}")),
            };
            let fields = hash_fields(b.u16("fields")?)?;
            let basis = b.u16("basis")?;
            let slave_type = b.u32("slave_type")?;
            if slave_type != 0x0000_0002 {
                return fail(ErrCode::BAC_BAD_ARGUMENT, "bundle members must be ofports");
            }
            let n = b.u16("n_members")? as usize;
            let ofs_nbits = u32::from(b.u16("ofs_nbits")?);
            let dst_header = b.peek_u16("dst")?;
            let dst = if sub == NXAST_BUNDLE_LOAD {
                let h = nx_field_header(b)?;
                Some(subfield(&h, ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)?)
            } else {
                if dst_header != 0 || ofs_nbits != 0 {
                    return fail(ErrCode::BAC_BAD_ARGUMENT, "bundle with a destination");
                }
                b.skip(4, "dst")?;
                None
            };
            b.skip(4, "pad")?;
            if len != (32 + 2 * n).div_ceil(8) * 8 {
                return Err(bad_len("bundle", len));
            }
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                members.push(u32::from(b.u16("member")?));
            }
            OfAction::Bundle {
                fields,
                basis,
                algorithm,
                members,
                dst,
            }
        }
        NXAST_SAMPLE => {
            exact(len, 24, "sample")?;
            OfAction::Sample {
                probability: b.u16("probability")?,
                collector_set_id: b.u32("collector_set_id")?,
                obs_domain_id: b.u32("obs_domain_id")?,
                obs_point_id: b.u32("obs_point_id")?,
            }
        }
        NXAST_CHECK_PKT_LARGER => {
            exact(len, 24, "check_pkt_larger")?;
            let pkt_len = b.u16("pkt_len")?;
            let ofs = u32::from(b.u16("offset")?);
            let h = nx_field_header(b)?;
            OfAction::CheckPktLarger {
                pkt_len,
                dst: subfield(&h, ofs, 1)?,
            }
        }
        NXAST_CLONE => {
            if depth >= MAX_NESTING {
                return fail(ErrCode::BAC_BAD_ARGUMENT, "clone nested too deeply");
            }
            b.skip(6, "pad")?;
            let mut inner = *b;
            let acts = decode_actions_depth(&mut inner, depth + 1)?;
            OfAction::Clone(acts)
        }
        s => {
            return fail(
                ErrCode::BAC_BAD_EXP_TYPE,
                format!("Nicira action subtype {s} not supported yet"),
            )
        }
    })
}

fn hash_fields(v: u16) -> Result<HashFields, OfError> {
    HashFields::ALL
        .get(v as usize)
        .copied()
        .ok_or_else(|| OfError::new(ErrCode::BAC_BAD_ARGUMENT, format!("hash fields {v}")))
}

fn ofport16(p: u32) -> Option<OutputPort> {
    output_port(port_to_of13(p))
}

/// Why an action cannot be put on the wire (yet).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {0} (not supported yet)")]
pub struct EncodeError(pub String);

fn exp_start(w: &mut Writer, sub: u16) -> usize {
    let at = w.len();
    w.u16(OFPAT_EXPERIMENTER).u16(0).u32(NX_VENDOR_ID).u16(sub);
    at
}

fn finish(w: &mut Writer, at: usize) {
    w.pad_to(8);
    let len = w.len() - at;
    w.set_u16(at + 2, len as u16);
}

fn put_value(w: &mut Writer, v: u128, len: u8) {
    let bytes = v.to_be_bytes();
    w.bytes(&bytes[16 - len as usize..]);
}

fn put_nx(w: &mut Writer, id: OxmId) {
    oxm::put_header(w, id, false);
}

/// Encodes `acts` (the match's L4 protocol names the port headers).
pub fn encode_actions(
    w: &mut Writer,
    acts: &[OfAction],
    proto: Option<u8>,
) -> Result<(), EncodeError> {
    for a in acts {
        encode_one(w, a, proto)?;
    }
    Ok(())
}

fn simple(w: &mut Writer, ty: u16) -> usize {
    let at = w.len();
    w.u16(ty).u16(8);
    at
}

fn encode_one(w: &mut Writer, a: &OfAction, proto: Option<u8>) -> Result<(), EncodeError> {
    match a {
        OfAction::Output(p) => {
            w.u16(OFPAT_OUTPUT).u16(16).u32(output_port_number(p));
            w.u16(if *p == OutputPort::Controller {
                u16::MAX
            } else {
                0
            });
            w.zeros(6);
        }
        OfAction::SetMplsTtl(t) => {
            simple(w, OFPAT_SET_MPLS_TTL);
            w.u8(*t).zeros(3);
        }
        OfAction::DecMplsTtl => {
            simple(w, OFPAT_DEC_MPLS_TTL);
            w.zeros(4);
        }
        OfAction::PushVlan(e) | OfAction::PushMpls(e) | OfAction::PopMpls(e) => {
            let ty = match a {
                OfAction::PushVlan(_) => OFPAT_PUSH_VLAN,
                OfAction::PushMpls(_) => OFPAT_PUSH_MPLS,
                _ => OFPAT_POP_MPLS,
            };
            simple(w, ty);
            w.u16(*e).zeros(2);
        }
        OfAction::PopVlan => {
            simple(w, OFPAT_POP_VLAN);
            w.zeros(4);
        }
        OfAction::SetQueue(q) => {
            simple(w, OFPAT_SET_QUEUE);
            w.u32(*q);
        }
        OfAction::Group(g) => {
            simple(w, OFPAT_GROUP);
            w.u32(*g);
        }
        OfAction::SetNwTtl(t) => {
            simple(w, OFPAT_SET_NW_TTL);
            w.u8(*t).zeros(3);
        }
        OfAction::DecTtl => {
            simple(w, OFPAT_DEC_NW_TTL);
            w.zeros(4);
        }
        OfAction::SetField { field, value, mask } => {
            if *mask != field.valid_mask() {
                // A partial write: OVS sends it as NXAST_REG_LOAD when the
                // bits are contiguous.
                let ofs = mask.trailing_zeros();
                let n_bits = 128 - mask.leading_zeros() - ofs;
                let contiguous = (mask >> ofs).count_ones() == n_bits;
                if !contiguous || n_bits > 64 {
                    return Err(EncodeError(format!("masked set_field on {}", field.name())));
                }
                let dst = SubField {
                    field: *field,
                    ofs,
                    n_bits,
                };
                return encode_one(
                    w,
                    &OfAction::Load {
                        dst,
                        value: (value & mask) >> ofs,
                    },
                    proto,
                );
            }
            let at = w.len();
            w.u16(OFPAT_SET_FIELD).u16(0);
            let id = oxm_id(*field, proto);
            oxm::put_header(w, id, false);
            let v = if *field == FieldId::InPort {
                u128::from(port_to_of13(*value as u32))
            } else {
                *value
            };
            put_value(w, v, id.len);
            finish(w, at);
        }
        OfAction::Load { dst, value } => {
            if dst.n_bits > 64 {
                return Err(EncodeError(format!("load of {} bits", dst.n_bits)));
            }
            let at = exp_start(w, NXAST_REG_LOAD);
            w.u16(((dst.ofs << 6) | (dst.n_bits - 1)) as u16);
            put_nx(w, nxm_id(dst.field, proto));
            w.u64(*value as u64);
            finish(w, at);
        }
        OfAction::Move { src, dst } => {
            let at = exp_start(w, NXAST_REG_MOVE);
            w.u16(src.n_bits as u16)
                .u16(src.ofs as u16)
                .u16(dst.ofs as u16);
            put_nx(w, nxm_id(src.field, proto));
            put_nx(w, nxm_id(dst.field, proto));
            finish(w, at);
        }
        OfAction::Resubmit { in_port, table } => {
            let port = in_port.unwrap_or(0xfff8) as u16;
            match table {
                None => {
                    let at = exp_start(w, NXAST_RESUBMIT);
                    w.u16(port);
                    finish(w, at);
                }
                Some(t) => {
                    let at = exp_start(w, NXAST_RESUBMIT_TABLE);
                    w.u16(port).u8(*t);
                    finish(w, at);
                }
            }
        }
        OfAction::PopQueue => {
            let at = exp_start(w, NXAST_POP_QUEUE);
            finish(w, at);
        }
        OfAction::Exit => {
            let at = exp_start(w, NXAST_EXIT);
            finish(w, at);
        }
        OfAction::Note(bytes) => {
            let at = exp_start(w, NXAST_NOTE);
            w.bytes(bytes);
            finish(w, at);
        }
        OfAction::OutputReg(sf) => {
            let at = exp_start(w, NXAST_OUTPUT_REG);
            w.u16(((sf.ofs << 6) | (sf.n_bits - 1)) as u16);
            put_nx(w, nxm_id(sf.field, proto));
            w.u16(0);
            finish(w, at);
        }
        OfAction::FinTimeout { idle, hard } => {
            let at = exp_start(w, NXAST_FIN_TIMEOUT);
            w.u16(*idle).u16(*hard);
            finish(w, at);
        }
        OfAction::DecTtlIds(ids) => {
            let at = exp_start(w, NXAST_DEC_TTL_CNT_IDS);
            w.u16(ids.len() as u16).zeros(4);
            for i in ids {
                w.u16(*i);
            }
            finish(w, at);
        }
        OfAction::Conjunction {
            id,
            clause,
            n_clauses,
        } => {
            let at = exp_start(w, NXAST_CONJUNCTION);
            w.u8(clause - 1).u8(*n_clauses).u32(*id);
            finish(w, at);
        }
        OfAction::OutputTrunc { port, max_len } => {
            let at = exp_start(w, NXAST_OUTPUT_TRUNC);
            w.u16(output_port_number(port) as u16).u32(*max_len);
            finish(w, at);
        }
        OfAction::Clone(inner) => {
            let at = exp_start(w, NXAST_CLONE);
            w.zeros(6);
            encode_actions(w, inner, proto)?;
            finish(w, at);
        }
        OfAction::Multipath {
            fields,
            basis,
            algorithm,
            n_links,
            arg,
            dst,
        } => {
            let at = exp_start(w, NXAST_MULTIPATH);
            let f = HashFields::ALL
                .iter()
                .position(|x| x == fields)
                .unwrap_or(0) as u16;
            let a = MultipathAlgorithm::ALL
                .iter()
                .position(|x| x == algorithm)
                .unwrap_or(0) as u16;
            w.u16(f)
                .u16(*basis)
                .u16(0)
                .u16(a)
                .u16((n_links - 1) as u16)
                .u32(*arg)
                .u16(0);
            w.u16(((dst.ofs << 6) | (dst.n_bits - 1)) as u16);
            put_nx(w, nxm_id(dst.field, proto));
            finish(w, at);
        }
        OfAction::Bundle {
            fields,
            basis,
            algorithm,
            members,
            dst,
        } => {
            let at = exp_start(
                w,
                if dst.is_some() {
                    NXAST_BUNDLE_LOAD
                } else {
                    NXAST_BUNDLE
                },
            );
            let f = HashFields::ALL
                .iter()
                .position(|x| x == fields)
                .unwrap_or(0) as u16;
            let a = match algorithm {
                BundleAlgorithm::ActiveBackup => 0,
                BundleAlgorithm::Hrw => 1,
            };
            w.u16(a).u16(f).u16(*basis).u32(2).u16(members.len() as u16);
            match dst {
                Some(d) => {
                    w.u16(((d.ofs << 6) | (d.n_bits - 1)) as u16);
                    put_nx(w, nxm_id(d.field, proto));
                }
                None => {
                    w.u16(0).u32(0);
                }
            }
            w.zeros(4);
            for m in members {
                w.u16(*m as u16);
            }
            finish(w, at);
        }
        OfAction::Sample {
            probability,
            collector_set_id,
            obs_domain_id,
            obs_point_id,
        } => {
            let at = exp_start(w, NXAST_SAMPLE);
            w.u16(*probability)
                .u32(*collector_set_id)
                .u32(*obs_domain_id)
                .u32(*obs_point_id);
            finish(w, at);
        }
        OfAction::CheckPktLarger { pkt_len, dst } => {
            let at = exp_start(w, NXAST_CHECK_PKT_LARGER);
            w.u16(*pkt_len).u16(dst.ofs as u16);
            put_nx(w, nxm_id(dst.field, proto));
            finish(w, at);
        }
        OfAction::Controller => {
            w.u16(OFPAT_OUTPUT)
                .u16(16)
                .u32(OFPP13_CONTROLLER)
                .u16(u16::MAX)
                .zeros(6);
        }
        other => {
            let name = format!("{other:?}");
            let name = name
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("action")
                .to_string();
            return Err(EncodeError(name));
        }
    }
    Ok(())
}

pub const OFPIT_GOTO_TABLE: u16 = 1;
pub const OFPIT_WRITE_METADATA: u16 = 2;
pub const OFPIT_WRITE_ACTIONS: u16 = 3;
pub const OFPIT_APPLY_ACTIONS: u16 = 4;
pub const OFPIT_CLEAR_ACTIONS: u16 = 5;
pub const OFPIT_METER: u16 = 6;

/// Decodes the instruction list of a flow mod or flow stats entry.
pub fn decode_instructions(mut r: Reader<'_>) -> Result<Instructions, OfError> {
    let mut ins = Instructions::default();
    let mut seen = 0u32;
    while !r.is_empty() {
        let ty = r.u16("instruction type")?;
        let len = r.u16("instruction length")? as usize;
        if len < 8 || !len.is_multiple_of(8) || len - 4 > r.remaining() {
            return fail(ErrCode::BIC_BAD_LEN, format!("instruction length {len}"));
        }
        let mut b = r.sub(len - 4, "instruction")?;
        if ty < 32 {
            if seen & (1 << ty) != 0 {
                return fail(ErrCode::BIC_DUP_INST, format!("instruction {ty} twice"));
            }
            seen |= 1 << ty;
        }
        match ty {
            OFPIT_GOTO_TABLE => {
                if len != 8 {
                    return fail(ErrCode::BIC_BAD_LEN, "goto_table length");
                }
                let t = b.u8("table")?;
                if t > ofproto::rule::MAX_TABLE {
                    return fail(ErrCode::BIC_BAD_TABLE_ID, format!("goto_table:{t}"));
                }
                ins.goto_table = Some(t);
            }
            OFPIT_WRITE_METADATA => {
                if len != 24 {
                    return fail(ErrCode::BIC_BAD_LEN, "write_metadata length");
                }
                b.skip(4, "pad")?;
                let v = b.u64("metadata")?;
                let m = b.u64("metadata mask")?;
                ins.write_metadata = Some((v & m, m));
            }
            OFPIT_WRITE_ACTIONS | OFPIT_APPLY_ACTIONS => {
                b.skip(4, "pad")?;
                let acts = decode_actions(b)?;
                if ty == OFPIT_APPLY_ACTIONS {
                    ins.apply = acts;
                } else {
                    ins.write_actions = Some(acts);
                }
            }
            OFPIT_CLEAR_ACTIONS => {
                if len != 8 {
                    return fail(ErrCode::BIC_BAD_LEN, "clear_actions length");
                }
                ins.clear_actions = true;
            }
            OFPIT_METER => {
                return fail(ErrCode::BIC_UNSUP_INST, "meter instruction (no meters yet)")
            }
            t => return fail(ErrCode::BIC_UNKNOWN_INST, format!("instruction type {t}")),
        }
    }
    Ok(ins)
}

/// Encodes a rule's instructions (`proto`: the match's L4 protocol).
pub fn encode_instructions(
    w: &mut Writer,
    ins: &Instructions,
    proto: Option<u8>,
) -> Result<(), EncodeError> {
    let list = |w: &mut Writer, ty: u16, acts: &[OfAction]| -> Result<(), EncodeError> {
        let at = w.len();
        w.u16(ty).u16(0).zeros(4);
        encode_actions(w, acts, proto)?;
        let len = w.len() - at;
        w.set_u16(at + 2, len as u16);
        Ok(())
    };
    if !ins.apply.is_empty() {
        list(w, OFPIT_APPLY_ACTIONS, &ins.apply)?;
    }
    if ins.clear_actions {
        w.u16(OFPIT_CLEAR_ACTIONS).u16(8).zeros(4);
    }
    if let Some(acts) = &ins.write_actions {
        list(w, OFPIT_WRITE_ACTIONS, acts)?;
    }
    if let Some((v, m)) = ins.write_metadata {
        w.u16(OFPIT_WRITE_METADATA).u16(24).zeros(4).u64(v).u64(m);
    }
    if let Some(t) = ins.goto_table {
        w.u16(OFPIT_GOTO_TABLE).u16(8).u8(t).zeros(3);
    }
    Ok(())
}

/// Port number of an output for `out_port` filters (16-bit space).
pub fn filter_port(p: u32) -> Option<OutputPort> {
    port_from_of13(p).and_then(|p| output_port(port_to_of13(p)))
}
