//! The match part of a flow line (everything before `actions=`): fields,
//! shorthands (`ip`, `tcp6`, ...), `table`, `priority`, `cookie`, timeouts.
//!
//! Fields are applied in order with OVS's semantics (a later value of the
//! same field replaces an earlier one; `dl_vlan`/`dl_vlan_pcp` combine), then
//! prerequisites are checked and the VLAN part is canonicalised the way an
//! OpenFlow 1.3 round trip through OVS canonicalises it.

use super::error::{PResult, Perr};
use super::fields::{self, Def, Req};
use super::lexer::{Kv, KvIter};
use super::values::{
    parse_port_number, parse_u16, parse_u64, parse_uint, parse_uint_bits, port_to_output,
};
use crate::fields::{FieldId, Prereq};
use crate::rule::{Match, OutputPort, TableId, MAX_TABLE};
use flowcache::key::{FRAG_LATER, VLAN_CFI, VLAN_PCP_MASK, VLAN_VID_MASK};

/// Everything the match part of a line says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    pub m: Match,
    pub table: Option<TableId>,
    pub priority: Option<u16>,
    pub cookie: Option<(u64, u64)>,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub out_port: Option<OutputPort>,
}

/// A rule (`add-flows`) or a filter (`dump-flows`/`del-flows`/`trace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Flow,
    Filter,
}

/// `ip`, `tcp6`, ... -> (dl_type, nw_proto or 0).
pub(crate) fn shorthand(key: &str) -> Option<(u16, u8)> {
    Some(match key {
        "ip" | "ipv4" | "ip4" => (0x0800, 0),
        "icmp" => (0x0800, 1),
        "igmp" => (0x0800, 2),
        "tcp" => (0x0800, 6),
        "udp" => (0x0800, 17),
        "sctp" => (0x0800, 132),
        "arp" => (0x0806, 0),
        "rarp" => (0x8035, 0),
        "ipv6" | "ip6" => (0x86dd, 0),
        "icmp6" => (0x86dd, 58),
        "tcp6" => (0x86dd, 6),
        "udp6" => (0x86dd, 17),
        "sctp6" => (0x86dd, 132),
        "mpls" => (0x8847, 0),
        "mplsm" => (0x8848, 0),
        _ => return None,
    })
}

struct Pending {
    req: Req,
    name: String,
    pos: usize,
    field: FieldId,
}

#[derive(Default)]
struct Builder {
    h: Header,
    pending: Vec<Pending>,
}

/// Replaces the match on a field (OVS `mf_set`: the whole field is
/// rewritten).
fn put(m: &mut Match, f: FieldId, v: u128, mask: u128) {
    f.set(&mut m.value, 0);
    f.set(&mut m.mask, 0);
    m.set_field(f, v & mask, mask);
}

/// What an OpenFlow 1.3 switch makes of a VLAN TCI match: OVS sends it as
/// OXM `vlan_vid` (VID + present bit, bitwise mask) plus an exact
/// `vlan_pcp` when the value has a tag and any PCP bit is matched, and reads
/// it back from those.  So `vlan_tci=0` becomes `0x0000/0x1fff` and a
/// partial PCP mask becomes a full one.
pub(crate) fn of13_vlan(tci: u16, mask: u16) -> (u16, u16) {
    let vid_mask = VLAN_CFI | VLAN_VID_MASK;
    let tci = tci & mask;
    let vid = tci & vid_mask;
    let vmask = mask & vid_mask;
    let (mut t, mut m) = (vid & vmask, vmask);
    if vid != 0 && mask & VLAN_PCP_MASK != 0 {
        t |= (tci & VLAN_PCP_MASK) | VLAN_CFI;
        m |= VLAN_PCP_MASK | VLAN_CFI;
    }
    (t, m)
}

impl Builder {
    fn field(&mut self, def: Def, kv: &Kv) -> PResult<()> {
        let name = kv.key;
        if kv.delim.is_none() || kv.value.is_empty() {
            return Err(Perr::new(kv.key_pos, format!("field {name} missing value")));
        }
        let (v, mask) = super::values::parse_field_value(&def, name, kv.value)
            .map_err(|e| Perr::new(kv.value_pos, e))?;
        let m = &mut self.h.m;
        let storage = match def.id {
            FieldId::VlanPcp => {
                if mask != 0 {
                    set_pcp(m, v as u16);
                }
                return Ok(());
            }
            FieldId::IcmpType | FieldId::Icmpv6Type => {
                put(m, FieldId::TpSrc, v, if mask != 0 { 0xffff } else { 0 });
                FieldId::TpSrc
            }
            FieldId::IcmpCode | FieldId::Icmpv6Code => {
                put(m, FieldId::TpDst, v, if mask != 0 { 0xffff } else { 0 });
                FieldId::TpDst
            }
            FieldId::ArpOp if v > 0xff => {
                return Err(Perr::new(
                    kv.value_pos,
                    format!("{}: arp_op must be between 0 and 255", kv.value),
                ))
            }
            id => {
                put(m, id, v, mask);
                id
            }
        };
        self.pending.push(Pending {
            req: def.mreq,
            name: name.to_string(),
            pos: kv.key_pos,
            field: storage,
        });
        Ok(())
    }

    /// A protocol shorthand sets `nw_proto` as well as `dl_type`, and a later
    /// shorthand replaces only the `dl_type` when it has no protocol of its
    /// own: `tcp6,mpls` would leave `nw_proto=6` on an MPLS match.  OVS drops
    /// such a field when it encodes the match (`tcp6,mpls` is installed as
    /// `mpls`; `tcp,arp` as `arp,arp_op=6`, since ARP keeps its opcode
    /// there), so the last shorthand wins.  A `nw_proto` the user wrote out
    /// is left to the prerequisite check instead.
    fn drop_stale_shorthand_proto(&mut self) {
        let explicit = self
            .pending
            .iter()
            .any(|p| matches!(p.field, FieldId::NwProto | FieldId::ArpOp));
        let m = &mut self.h.m;
        if explicit || FieldId::NwProto.get(&m.mask) == 0 {
            return;
        }
        let carries_proto =
            Prereq::Ip.satisfied(&m.value, &m.mask) || Prereq::Arp.satisfied(&m.value, &m.mask);
        if !carries_proto {
            put(m, FieldId::NwProto, 0, 0);
        }
    }

    /// `reg0[0..7]=5` style subfield match.
    fn subfield(&mut self, kv: &Kv) -> PResult<()> {
        let (def, sf, used) =
            fields::parse_subfield(kv.key).map_err(|e| Perr::new(kv.key_pos, e))?;
        if used != kv.key.len() {
            return Err(Perr::new(
                kv.key_pos,
                format!("{}: trailing garbage", kv.key),
            ));
        }
        let v =
            parse_uint_bits(kv.value, kv.key, sf.n_bits).map_err(|e| Perr::new(kv.value_pos, e))?;
        let m = &mut self.h.m;
        sf.field.set_masked(&mut m.value, v << sf.ofs, sf.mask());
        sf.field.or_mask(&mut m.mask, sf.mask());
        m.value = m.value.masked(&m.mask);
        self.pending.push(Pending {
            req: def.mreq,
            name: kv.key.to_string(),
            pos: kv.key_pos,
            field: sf.field,
        });
        Ok(())
    }

    fn finish(mut self) -> PResult<Header> {
        self.drop_stale_shorthand_proto();
        let m = &mut self.h.m;
        for p in &self.pending {
            if p.field.get(&m.mask) == 0 {
                continue;
            }
            if !p.req.satisfied(&m.value, &m.mask) {
                // ovs-ofctl encodes only the fields whose prerequisites the
                // match has (`nx_put_raw`): `ip,tp_dst=53` is installed as
                // `ip`, `udp,tcp_flags=+syn` as `udp`.
                put(m, p.field, 0, 0);
                continue;
            }
            if p.req.is_l4() && m.value.nw_frag & FRAG_LATER != 0 {
                return Err(Perr::new(
                    p.pos,
                    format!(
                        "{} cannot be matched together with nw_frag=later (a later fragment \
                         has no L4 header; OVS rejects this with OFPBMC_BAD_PREREQ)",
                        p.name
                    ),
                ));
            }
        }
        let (t, mk) = of13_vlan(m.value.vlans[0].tci, m.mask.vlans[0].tci);
        m.value.vlans[0].tci = t;
        m.mask.vlans[0].tci = mk;
        m.value = m.value.masked(&m.mask);
        Ok(self.h)
    }
}

fn set_pcp(m: &mut Match, pcp: u16) {
    let t = &mut m.value.vlans[0].tci;
    *t = (*t & !VLAN_PCP_MASK) | (pcp << 13) | VLAN_CFI;
    m.mask.vlans[0].tci |= VLAN_CFI | VLAN_PCP_MASK;
}

fn set_dl_vlan(m: &mut Match, vid: u16) {
    if vid == 0xffff {
        m.value.vlans[0].tci = 0;
        m.mask.vlans[0].tci = 0xffff;
    } else {
        let t = &mut m.value.vlans[0].tci;
        *t = (*t & !VLAN_VID_MASK) | VLAN_CFI | (vid & VLAN_VID_MASK);
        m.mask.vlans[0].tci |= VLAN_VID_MASK | VLAN_CFI;
    }
}

fn need_value(kv: &Kv) -> PResult<()> {
    if kv.value.is_empty() {
        Err(Perr::new(
            kv.key_pos,
            format!("field {} missing value", kv.key),
        ))
    } else {
        Ok(())
    }
}

fn vpos<T>(kv: &Kv, r: Result<T, String>) -> PResult<T> {
    r.map_err(|e| Perr::new(kv.value_pos, e))
}

/// Parses the match part `s` (at byte offset `base` in its line).
pub(crate) fn parse_header(s: &str, base: usize, mode: Mode) -> PResult<Header> {
    let mut b = Builder::default();
    for kv in KvIter::new(s, base) {
        let key = kv.key;
        if let Some((dl_type, proto)) = shorthand(key) {
            if !kv.value.is_empty() {
                return Err(Perr::new(kv.value_pos, format!("{key} takes no value")));
            }
            put(&mut b.h.m, FieldId::DlType, u128::from(dl_type), 0xffff);
            if proto != 0 {
                put(&mut b.h.m, FieldId::NwProto, u128::from(proto), 0xff);
            }
            continue;
        }
        match key {
            "send_flow_rem"
            | "check_overlap"
            | "reset_counts"
            | "no_packet_counts"
            | "no_byte_counts"
            | "no_readonly_table"
            | "allow_hidden_fields"
            | "eth" => continue,
            "dl_vlan" => {
                need_value(&kv)?;
                let v = vpos(&kv, parse_u16(kv.value, key))?;
                if v > VLAN_VID_MASK && v != 0xffff {
                    return Err(Perr::new(
                        kv.value_pos,
                        format!(
                            "{}: dl_vlan must be 0 to 4095, or 0xffff for no VLAN",
                            kv.value
                        ),
                    ));
                }
                set_dl_vlan(&mut b.h.m, v);
                continue;
            }
            "conj_id" => {
                need_value(&kv)?;
                if kv.value.contains('/') {
                    return Err(Perr::new(
                        kv.value_pos,
                        format!("{}: invalid mask for field conj_id", kv.value),
                    ));
                }
                let v = vpos(&kv, parse_uint_bits(kv.value, key, 32))?;
                b.h.m.value.conj_id = v as u32;
                b.h.m.mask.conj_id = u32::MAX;
                continue;
            }
            "dl_vlan_pcp" => {
                need_value(&kv)?;
                let v = vpos(&kv, parse_uint_bits(kv.value, key, 3))?;
                set_pcp(&mut b.h.m, v as u16);
                continue;
            }
            _ => {}
        }
        if let Some(def) = fields::lookup(key) {
            b.field(def, &kv)?;
            continue;
        }
        if key.contains('[') {
            need_value(&kv)?;
            b.subfield(&kv)?;
            continue;
        }
        match key {
            "table" | "priority" | "idle_timeout" | "hard_timeout" | "importance" | "cookie"
            | "out_port" | "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age" => {
                need_value(&kv)?
            }
            _ => {}
        }
        let h = &mut b.h;
        match key {
            "table" => {
                let t = parse_uint(kv.value).filter(|t| *t <= u128::from(MAX_TABLE));
                h.table = Some(vpos(
                    &kv,
                    t.map(|t| t as TableId).ok_or_else(|| {
                        format!("{}: table must be a number from 0 to {MAX_TABLE}", kv.value)
                    }),
                )?);
            }
            "priority" => h.priority = Some(vpos(&kv, parse_u16(kv.value, key))?),
            "idle_timeout" | "hard_timeout" if mode == Mode::Filter => {
                return Err(Perr::new(
                    kv.key_pos,
                    format!("{key} is not allowed in a flow filter"),
                ))
            }
            "idle_timeout" => h.idle_timeout = vpos(&kv, parse_u16(kv.value, key))?,
            "hard_timeout" => h.hard_timeout = vpos(&kv, parse_u16(kv.value, key))?,
            "importance" => {
                vpos(&kv, parse_u16(kv.value, key))?;
            }
            "cookie" => {
                let (v, m) = match kv.value.split_once('/') {
                    Some((v, m)) => {
                        if mode == Mode::Flow {
                            return Err(Perr::new(
                                kv.value_pos,
                                "flow additions cannot use a cookie mask",
                            ));
                        }
                        (v, Some(m))
                    }
                    None => (kv.value, None),
                };
                let v = vpos(&kv, parse_u64(v, key))?;
                let m = match m {
                    Some(m) => vpos(&kv, parse_u64(m, "cookie mask"))?,
                    None => u64::MAX,
                };
                h.cookie = Some((v, m));
            }
            "out_port" if mode == Mode::Filter => {
                let p = vpos(&kv, parse_port_number(kv.value))?;
                h.out_port = Some(vpos(
                    &kv,
                    port_to_output(p).ok_or_else(|| format!("{}: not a valid port", kv.value)),
                )?);
            }
            "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age" => {}
            _ => return Err(Perr::new(kv.key_pos, format!("unknown keyword {key}"))),
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_round_trip() {
        assert_eq!(of13_vlan(0, 0xffff), (0, 0x1fff));
        assert_eq!(of13_vlan(0x100a, 0x1fff), (0x100a, 0x1fff));
        assert_eq!(of13_vlan(0x1000, 0x1000), (0x1000, 0x1000));
        assert_eq!(of13_vlan(0x7000, 0xf000), (0x7000, 0xf000));
        assert_eq!(of13_vlan(0x2000, 0xe000), (0, 0));
        assert_eq!(of13_vlan(0x3005, 0x3fff), (0x3005, 0xffff));
    }
}
