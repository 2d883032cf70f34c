//! OpenFlow 1.3 groups on the wire: GROUP_MOD (decoded into
//! [`ofproto::group::Group`]) and the GROUP_DESC, GROUP (statistics) and
//! GROUP_FEATURES multipart replies (OpenFlow 1.3 §7.3.4.2, §7.3.5.9-11).
//!
//! A decoded group is checked the way a flow mod is: it must read back
//! from its own `add-group` text form unchanged, so a group added over the
//! wire and the same group given with `--groups` are the same group.

use crate::actions::{decode_actions, encode_actions};
use crate::buf::{Reader, Writer};
use crate::error::{ErrCode, OfError};
use ofproto::group::{Bucket, Group, GroupEntry, GroupType, SelectionMethod};
use std::time::Instant;

pub const OFPGC_ADD: u16 = 0;
pub const OFPGC_MODIFY: u16 = 1;
pub const OFPGC_DELETE: u16 = 2;
/// `group_id` of a delete that deletes every group.
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// The highest group number a group may have.
pub const OFPG_MAX: u32 = 0xffff_ff00;

/// A GROUP_MOD command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupMod {
    Add(Group),
    Modify(Group),
    /// `None`: every group.
    Delete(Option<u32>),
}

fn group_type(t: u8) -> Result<GroupType, OfError> {
    Ok(match t {
        0 => GroupType::All,
        1 => GroupType::Select,
        2 => GroupType::Indirect,
        3 => GroupType::FastFailover,
        t => {
            return Err(OfError::new(
                ErrCode::GMFC_BAD_TYPE,
                format!("group type {t}"),
            ))
        }
    })
}

fn type_number(t: GroupType) -> u8 {
    match t {
        GroupType::All => 0,
        GroupType::Select => 1,
        GroupType::Indirect => 2,
        GroupType::FastFailover => 3,
    }
}

/// Decodes a GROUP_MOD body (after the 8-byte header).
pub fn decode_group_mod(r: &mut Reader<'_>) -> Result<GroupMod, OfError> {
    let command = r.u16("command")?;
    let ty = r.u8("type")?;
    r.skip(1, "pad")?;
    let group_id = r.u32("group_id")?;
    if command == OFPGC_DELETE {
        return Ok(GroupMod::Delete((group_id != OFPG_ALL).then_some(group_id)));
    }
    if command != OFPGC_ADD && command != OFPGC_MODIFY {
        return Err(OfError::new(
            ErrCode::GMFC_BAD_COMMAND,
            format!("group mod command {command}"),
        ));
    }
    if group_id > OFPG_MAX {
        return Err(OfError::new(
            ErrCode::GMFC_INVALID_GROUP,
            format!("group id {group_id:#x} is reserved"),
        ));
    }
    let kind = group_type(ty)?;
    let mut buckets = Vec::new();
    while !r.is_empty() {
        let len = r.peek_u16("bucket len")? as usize;
        if len < 16 || !len.is_multiple_of(8) {
            return Err(OfError::new(
                ErrCode::GMFC_BAD_BUCKET,
                format!("bucket length {len}"),
            ));
        }
        let mut b = r.sub(len, "bucket")?;
        b.skip(2, "len")?;
        let weight = b.u16("weight")?;
        let watch_port = b.u32("watch_port")?;
        let watch_group = b.u32("watch_group")?;
        b.skip(4, "pad")?;
        let actions = decode_actions(b)?;
        buckets.push(Bucket {
            bucket_id: buckets.len() as u32,
            // Only select groups weigh buckets: OVS sends 0 for the others,
            // whose text form (and so --groups) has 1.
            weight: if kind == GroupType::Select { weight } else { 1 },
            // OFPP_ANY / OFPG_ANY are the text form's "none" too.
            watch_port,
            watch_group,
            actions,
            explicit_id: false,
        });
    }
    let g = validate(Group {
        group_id,
        kind,
        buckets,
        selection: SelectionMethod::Default,
    })?;
    Ok(if command == OFPGC_ADD {
        GroupMod::Add(g)
    } else {
        GroupMod::Modify(g)
    })
}

/// The group as its own text form parses it (see the module docs).
fn validate(g: Group) -> Result<Group, OfError> {
    let text = ofproto::group::format_group(&g);
    match ofproto::group::parse_group(&text) {
        Ok(parsed) if parsed == g => Ok(g),
        Ok(_) => Err(OfError::new(
            ErrCode::GMFC_BAD_BUCKET,
            format!("group not representable as the add-group language has it: {text}"),
        )),
        Err(e) => Err(OfError::new(
            ErrCode::GMFC_BAD_BUCKET,
            format!("{text}: {e}"),
        )),
    }
}

fn encode_buckets(w: &mut Writer, g: &Group) -> Result<(), OfError> {
    for b in &g.buckets {
        let at = w.len();
        w.u16(0)
            .u16(if g.kind == GroupType::Select {
                b.weight
            } else {
                0
            })
            .u32(b.watch_port)
            .u32(b.watch_group)
            .zeros(4);
        encode_actions(w, &b.actions, None).map_err(|e| {
            OfError::new(ErrCode::BAD_MULTIPART, format!("group {}: {e}", g.group_id))
        })?;
        let len = w.len() - at;
        w.set_u16(at, len as u16);
    }
    Ok(())
}

/// One `ofp_group_desc` entry.
pub fn group_desc(g: &Group) -> Result<Vec<u8>, OfError> {
    let mut w = Writer::new();
    w.u16(0).u8(type_number(g.kind)).u8(0).u32(g.group_id);
    encode_buckets(&mut w, g)?;
    let len = w.len();
    w.set_u16(0, len as u16);
    Ok(w.buf)
}

/// One `ofp_group_stats` entry; `ref_count`: the rules that use it.
pub fn group_stats(e: &GroupEntry, ref_count: usize, now: Instant) -> Vec<u8> {
    let age = now.saturating_duration_since(e.created);
    let mut w = Writer::new();
    w.u16(0)
        .zeros(2)
        .u32(e.group.group_id)
        .u32(ref_count as u32)
        .zeros(4)
        .u64(e.stats.n_packets())
        .u64(e.stats.n_bytes())
        .u32(age.as_secs() as u32)
        .u32(age.subsec_nanos());
    for b in &e.bucket_stats {
        w.u64(b.n_packets()).u64(b.n_bytes());
    }
    let len = w.len();
    w.set_u16(0, len as u16);
    w.buf
}

/// The `ofp_group_features` body: all four types; select groups weighted
/// and live-checked; chaining; the actions every type supports (the
/// OpenFlow 1.3 action bitmap of output, copy TTL, set/dec TTLs, push/pop
/// VLAN and MPLS, set queue, group, set field).
pub fn group_features() -> Vec<u8> {
    const TYPES: u32 = 0b1111;
    // OFPGFC_SELECT_WEIGHT | SELECT_LIVENESS | CHAINING.
    const CAPABILITIES: u32 = 1 | 2 | 4;
    const MAX_GROUPS: u32 = OFPG_MAX;
    let actions: u32 = [
        0u32, 11, 12, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
    ]
    .iter()
    .fold(0, |m, a| m | (1 << a));
    let mut w = Writer::new();
    w.u32(TYPES).u32(CAPABILITIES);
    for _ in 0..4 {
        w.u32(MAX_GROUPS);
    }
    for _ in 0..4 {
        w.u32(actions);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_mod_round_trips_through_desc() {
        let g = ofproto::group::parse_group(
            "group_id=7,type=select,bucket=weight:3,actions=output:1,bucket=weight:5,actions=output:2",
        )
        .unwrap();
        let desc = group_desc(&g).unwrap();
        // A GROUP_MOD body is the desc entry with a command in front of
        // type/group_id instead of the length.
        let mut body = Writer::new();
        body.u16(OFPGC_ADD).bytes(&desc[2..]);
        let got = decode_group_mod(&mut Reader::new(&body.buf)).unwrap();
        assert_eq!(got, GroupMod::Add(g));
    }

    #[test]
    fn bad_group_mods_are_errors() {
        let mut w = Writer::new();
        w.u16(OFPGC_ADD).u8(9).u8(0).u32(1);
        let e = decode_group_mod(&mut Reader::new(&w.buf)).unwrap_err();
        assert_eq!(e.code, ErrCode::GMFC_BAD_TYPE);
        let mut w = Writer::new();
        w.u16(OFPGC_ADD).u8(0).u8(0).u32(1).u16(40).zeros(6);
        let e = decode_group_mod(&mut Reader::new(&w.buf)).unwrap_err();
        assert!(e.reason.contains("bucket"), "{e}");
        let mut w = Writer::new();
        w.u16(OFPGC_DELETE).u8(0).u8(0).u32(OFPG_ALL);
        assert_eq!(
            decode_group_mod(&mut Reader::new(&w.buf)).unwrap(),
            GroupMod::Delete(None)
        );
    }
}
