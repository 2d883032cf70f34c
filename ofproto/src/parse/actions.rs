//! The `actions=` part: OVS action and instruction syntax, validated the
//! way OVS validates a flow under OpenFlow 1.3 (`ofpacts_verify` for the
//! instruction order, `ofpacts_check` for consistency with the match), and
//! lowered to what an OpenFlow 1.3 switch ends up holding: `mod_dl_src`
//! becomes a set-field, `mod_vlan_vid` becomes `push_vlan` + set-field when
//! the flow has no VLAN tag, `strip_vlan` is `pop_vlan`, and so on.

use super::error::{PResult, Perr};
use super::fields::{self, Def, Req};
use super::lexer::{Kv, KvIter};
use super::values::{
    parse_field_value, parse_ipv4, parse_mac, parse_port_number, parse_u16, parse_u32, parse_u64,
    parse_u8, parse_uint, port_to_output,
};
use crate::fields::{FieldId, Prereq, SubField};
use crate::ofp_port::OFPP_MAX;
use crate::rule::{Instructions, OfAction, OutputPort, TableId, MAX_TABLE};
pub(crate) mod ct;
mod learn;
mod more;
mod multipath;

use flowcache::key::{
    FlowKey, VlanTag, ETH_TYPE_IPV4, ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST, ETH_TYPE_VLAN,
    ETH_TYPE_VLAN_8021AD, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, VLAN_CFI,
};

/// The flow as action validation sees it (OVS `ofpacts_check`): the match,
/// updated by the actions that change what the packet is (push/pop VLAN or
/// MPLS, setting the TCI).
#[derive(Clone, Debug)]
pub(crate) struct State {
    pub key: FlowKey,
    pub mask: FlowKey,
    pub table: TableId,
    /// Group buckets: there is no match to check prerequisites against
    /// (OVS checks them only as packets are translated).
    pub lenient: bool,
}

impl State {
    fn ok(&self, r: Req) -> bool {
        self.lenient || r.ok(&self.key, &self.mask)
    }

    fn has_vlan(&self) -> bool {
        self.lenient || self.key.vlans[0].tci & VLAN_CFI != 0
    }

    fn push_vlan(&mut self) {
        self.key.vlans[1] = self.key.vlans[0];
        self.mask.vlans[1] = self.mask.vlans[0];
        self.key.vlans[0].tci |= VLAN_CFI;
        self.mask.vlans[0].tci |= VLAN_CFI;
    }

    fn pop_vlan(&mut self) {
        self.key.vlans[0] = self.key.vlans[1];
        self.mask.vlans[0] = self.mask.vlans[1];
        self.key.vlans[1] = VlanTag::default();
        self.mask.vlans[1] = VlanTag::default();
    }

    fn set_dl_type(&mut self, t: u16) {
        self.key.dl_type = t;
        self.mask.dl_type = 0xffff;
    }

    fn is_ip(&self) -> bool {
        self.ok(Req::P(Prereq::Ip))
    }

    fn is_mpls(&self) -> bool {
        self.ok(Req::P(Prereq::Mpls))
    }
}

/// One parsed action, before validation against the flow.
#[derive(Clone, Debug)]
enum Lower {
    Output(OutputPort),
    OutputReg {
        name: String,
        def: Def,
        src: SubField,
    },
    SetField {
        name: String,
        def: Def,
        value: u128,
        mask: u128,
    },
    Load {
        name: String,
        def: Def,
        dst: SubField,
        value: u128,
    },
    Move {
        sname: String,
        sdef: Def,
        src: SubField,
        dname: String,
        ddef: Def,
        dst: SubField,
    },
    SetVlanVid {
        vid: u16,
        push: bool,
    },
    SetVlanPcp {
        pcp: u8,
        push: bool,
    },
    PopVlan,
    PushVlan(u16),
    PushMpls(u16),
    PopMpls(u16),
    SetMplsLabel(u32),
    SetMplsTc(u8),
    SetMplsTtl(u8),
    DecMplsTtl,
    /// `dec_ttl`, with its controller ids (none written: plain `dec_ttl`).
    DecTtl(Vec<u16>),
    SetNwTtl(u8),
    SetIpv4 {
        dst: bool,
        addr: u32,
    },
    SetTos(u8),
    SetEcn(u8),
    SetTp {
        dst: bool,
        port: u16,
    },
    SetEth {
        dst: bool,
        mac: u128,
    },
    Resubmit {
        in_port: Option<u32>,
        table: Option<TableId>,
    },
    SetTunnel(u64),
    /// `clone(...)`, its actions with their positions.
    Clone(Vec<(Lower, usize)>),
    CheckPktLarger {
        name: String,
        def: Def,
        dst: SubField,
        pkt_len: u16,
    },
    OutputTrunc {
        port: OutputPort,
        max_len: u32,
    },
    Multipath {
        fields: crate::rule::HashFields,
        basis: u16,
        algorithm: crate::rule::MultipathAlgorithm,
        n_links: u32,
        arg: u32,
        name: String,
        def: Def,
        dst: SubField,
    },
    Bundle {
        fields: crate::rule::HashFields,
        basis: u16,
        algorithm: crate::rule::BundleAlgorithm,
        members: Vec<u32>,
        /// `bundle_load`'s destination.
        dst: Option<(String, Def, SubField)>,
    },
    /// `learn(...)`, with the source prerequisites to check.
    Learn(Box<learn::LearnParsed>),
    /// `ct(...)`, with its `exec` actions still to check.
    Ct(Box<ct::CtParsed>),
    /// An action that needs no check against the flow.
    Plain(OfAction),
}

/// One instruction (OpenFlow 1.1+), in OVS's fixed order.
#[derive(Clone, Debug)]
enum Inst {
    Apply(Lower),
    Clear,
    Write(Vec<(Lower, usize)>),
    Meta(u64, u64),
    Goto(TableId),
}

impl Inst {
    fn kind(&self) -> (u8, &'static str) {
        match self {
            Inst::Apply(_) => (1, "apply_actions"),
            Inst::Clear => (2, "clear_actions"),
            Inst::Write(_) => (3, "write_actions"),
            Inst::Meta(..) => (4, "write_metadata"),
            Inst::Goto(_) => (5, "goto_table"),
        }
    }
}

const UNSUPPORTED: &[&str] = &[
    "group",
    "enqueue",
    "nat",
    "output_trunc",
    "meter",
    "push",
    "pop",
    "dec_nsh_ttl",
    "encap",
    "decap",
    "delete_field",
    "debug_recirc",
    "debug_slow",
];

fn split_arrow(v: &str) -> Result<(&str, &str), String> {
    let (a, b) = v
        .split_once("->")
        .ok_or_else(|| format!("{v}: missing `->'"))?;
    if b.is_empty() {
        return Err(format!("{v}: missing field name following `->'"));
    }
    Ok((a, b))
}

fn parse_output(v: &str) -> Result<Lower, String> {
    if v.contains("port") && v.contains("max_len") {
        return more::parse_output_trunc(v);
    }
    match parse_port_number(v) {
        Ok(p) => match port_to_output(p) {
            Some(o) => Ok(Lower::Output(o)),
            None => Err(format!("{v}: output to unknown port")),
        },
        Err(e) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => Err(e),
        Err(_) => match fields::parse_subfield(v) {
            Ok((def, src, used)) if used == v.len() => Ok(Lower::OutputReg {
                name: v.to_string(),
                def,
                src,
            }),
            _ => Err(format!("{v}: output to unknown port")),
        },
    }
}

fn parse_set_field(v: &str) -> Result<Lower, String> {
    let (val, name) = split_arrow(v)?;
    if name == "dl_vlan" || name == "dl_vlan_pcp" {
        return Err(format!(
            "set_field on {name} is not supported: use vlan_vid (with the 0x1000 present bit) \
             or vlan_pcp"
        ));
    }
    let def = fields::lookup(name)
        .or_else(|| fields::lookup_nxm(name))
        .ok_or_else(|| format!("{name} is not a valid OXM field name"))?;
    if !def.writable {
        return Err(format!("{name} is read-only"));
    }
    if val == "*" {
        return Err(format!("{v}: set_field needs a value"));
    }
    let (value, mask) = parse_field_value(&def, name, val)?;
    if mask == 0 {
        return Err(format!("{v}: set_field with an all-zero mask does nothing"));
    }
    match def.id {
        FieldId::VlanVid => {
            if mask != def.id.max_value() {
                return Err(format!(
                    "{v}: masked set_field on vlan_vid is not supported"
                ));
            }
            if value & u128::from(VLAN_CFI) == 0 {
                return Err(format!(
                    "{v}: set_field on vlan_vid needs the 0x1000 (tag present) bit, e.g. \
                     set_field:{}->vlan_vid for VID {}",
                    value | u128::from(VLAN_CFI),
                    value
                ));
            }
        }
        FieldId::ArpOp if value > 0xff => {
            return Err(format!("{v}: arp_op must be between 0 and 255"));
        }
        _ => {}
    }
    Ok(Lower::SetField {
        name: name.to_string(),
        def,
        value: value & mask,
        mask,
    })
}

fn parse_load(v: &str) -> Result<Lower, String> {
    let (val, dst_s) = split_arrow(v)?;
    let (def, dst, used) = fields::parse_subfield(dst_s)?;
    if used != dst_s.len() {
        return Err(format!("{dst_s}: trailing garbage after subfield"));
    }
    if !def.writable {
        return Err(format!("{dst_s}: destination field is read-only"));
    }
    let value = parse_uint(val).ok_or_else(|| format!("{v}: cannot parse integer value"))?;
    if dst.n_bits < 128 && value >> dst.n_bits != 0 {
        return Err(format!(
            "{v}: value {} does not fit into {} bits",
            super::values::hex(value),
            dst.n_bits
        ));
    }
    Ok(Lower::Load {
        name: dst_s.to_string(),
        def,
        dst,
        value,
    })
}

fn parse_move(v: &str) -> Result<Lower, String> {
    let (sdef, src, used) = fields::parse_subfield(v)?;
    let rest = v[used..]
        .strip_prefix("->")
        .ok_or_else(|| format!("{v}: missing `->' following source"))?;
    let (ddef, dst, used2) = fields::parse_subfield(rest)?;
    if used2 != rest.len() {
        return Err(format!("{rest}: trailing garbage after subfield"));
    }
    if src.n_bits != dst.n_bits {
        return Err(format!(
            "{v}: source field is {} bits wide but destination is {} bits wide",
            src.n_bits, dst.n_bits
        ));
    }
    if !ddef.writable {
        return Err(format!("{rest}: destination field is read-only"));
    }
    Ok(Lower::Move {
        sname: v[..used].to_string(),
        sdef,
        src,
        dname: rest.to_string(),
        ddef,
        dst,
    })
}

fn parse_resubmit(v: &str) -> Result<Lower, String> {
    let parts: Vec<&str> = v.split(',').collect();
    if parts.len() > 3 {
        return Err(format!("{v}: too many arguments to resubmit"));
    }
    if let Some(ct) = parts.get(2).filter(|c| !c.is_empty()) {
        return Err(if *ct == "ct" {
            "resubmit with conntrack (ct) is not supported".to_string()
        } else {
            format!("{ct}: unknown parameter")
        });
    }
    let port_s = parts.first().copied().unwrap_or("");
    let in_port = if port_s.is_empty() || port_s.eq_ignore_ascii_case("in_port") {
        None
    } else {
        let p =
            parse_port_number(port_s).map_err(|_| format!("{port_s}: resubmit to unknown port"))?;
        if p >= OFPP_MAX {
            return Err(format!(
                "{port_s}: resubmit to a reserved port is not supported"
            ));
        }
        Some(p)
    };
    let table_s = parts.get(1).copied().unwrap_or("");
    let table = if table_s.is_empty() {
        None
    } else {
        match parse_uint(table_s) {
            Some(255) => None,
            Some(t) if t <= u128::from(MAX_TABLE) => Some(t as TableId),
            _ => return Err(format!("{table_s}: resubmit to unknown table")),
        }
    };
    if in_port.is_none() && table.is_none() {
        return Err("at least one \"in_port\" or \"table\" must be specified on resubmit".into());
    }
    Ok(Lower::Resubmit { in_port, table })
}

fn parse_action(key: &str, kv: &Kv) -> PResult<Lower> {
    let v = kv.value;
    let vp = kv.value_pos;
    let at = |r: Result<Lower, String>| r.map_err(|e| Perr::new(vp, e));
    let num = |r: Result<Lower, String>| r.map_err(|e| Perr::new(vp, e));
    match key {
        "output" | "output_reg" => at(parse_output(v)),
        "controller" => {
            if v.is_empty() || v.bytes().all(|c| c.is_ascii_digit()) {
                Ok(Lower::Output(OutputPort::Controller))
            } else {
                Err(Perr::new(
                    vp,
                    "controller with options is not supported (there is no controller; use \
                     plain `controller`)",
                ))
            }
        }
        "mod_vlan_vid" | "set_vlan_vid" => num(parse_u16(v, "VLAN VID").and_then(|vid| {
            if vid > 0x0fff {
                Err(format!("{v}: not a valid VLAN VID"))
            } else {
                Ok(Lower::SetVlanVid {
                    vid,
                    push: key == "mod_vlan_vid",
                })
            }
        })),
        "mod_vlan_pcp" | "set_vlan_pcp" => num(parse_u8(v, "VLAN PCP").and_then(|pcp| {
            if pcp > 7 {
                Err(format!("{v}: not a valid VLAN PCP"))
            } else {
                Ok(Lower::SetVlanPcp {
                    pcp,
                    push: key == "mod_vlan_pcp",
                })
            }
        })),
        "strip_vlan" | "pop_vlan" => Ok(Lower::PopVlan),
        "push_vlan" => num(parse_u16(v, "ethertype").and_then(|t| {
            if t == ETH_TYPE_VLAN || t == ETH_TYPE_VLAN_8021AD {
                Ok(Lower::PushVlan(t))
            } else {
                Err(format!("{v}: not a valid VLAN ethertype"))
            }
        })),
        "mod_dl_src" | "mod_dl_dst" => num(parse_mac(v)
            .map(|mac| Lower::SetEth {
                dst: key == "mod_dl_dst",
                mac,
            })
            .ok_or_else(|| format!("{v}: invalid Ethernet address"))),
        "mod_nw_src" | "mod_nw_dst" => num(parse_ipv4(v)
            .map(|addr| Lower::SetIpv4 {
                dst: key == "mod_nw_dst",
                addr,
            })
            .ok_or_else(|| format!("{v}: invalid IP address"))),
        "mod_nw_tos" => num(parse_u8(v, "TOS").and_then(|t| {
            if t & 3 != 0 {
                Err(format!("{v}: not a valid TOS"))
            } else {
                Ok(Lower::SetTos(t))
            }
        })),
        "mod_nw_ecn" => num(parse_u8(v, "ECN").and_then(|e| {
            if e > 3 {
                Err(format!("{v}: not a valid ECN"))
            } else {
                Ok(Lower::SetEcn(e))
            }
        })),
        "mod_nw_ttl" | "set_nw_ttl" => num(parse_u8(v, "TTL").map(Lower::SetNwTtl)),
        "mod_tp_src" | "mod_tp_dst" => num(parse_u16(v, "port").map(|port| Lower::SetTp {
            dst: key == "mod_tp_dst",
            port,
        })),
        "set_field" => at(parse_set_field(v)),
        "load" => at(parse_load(v)),
        "move" => at(parse_move(v)),
        "resubmit" => at(parse_resubmit(v)),
        "push_mpls" => num(parse_u16(v, "push_mpls").and_then(|t| {
            if t == ETH_TYPE_MPLS || t == ETH_TYPE_MPLS_MCAST {
                Ok(Lower::PushMpls(t))
            } else {
                Err(format!("{v}: not an MPLS ethertype (0x8847 or 0x8848)"))
            }
        })),
        "pop_mpls" => num(parse_u16(v, "pop_mpls").map(Lower::PopMpls)),
        "set_mpls_label" => num(parse_u32(v, "MPLS label").and_then(|l| {
            if l > 0xfffff {
                Err(format!("{v}: not a valid MPLS label"))
            } else {
                Ok(Lower::SetMplsLabel(l))
            }
        })),
        "set_mpls_tc" => num(parse_u8(v, "MPLS TC").and_then(|t| {
            if t > 7 {
                Err(format!("{v}: not a valid MPLS TC"))
            } else {
                Ok(Lower::SetMplsTc(t))
            }
        })),
        "set_mpls_ttl" => num(parse_u8(v, "MPLS TTL").map(Lower::SetMplsTtl)),
        "dec_mpls_ttl" => Ok(Lower::DecMplsTtl),
        "dec_ttl" => {
            if v.is_empty() {
                Ok(Lower::DecTtl(Vec::new()))
            } else {
                num(more::parse_dec_ttl_ids(v))
            }
        }
        "clone" => more::parse_clone(kv),
        "ct" => ct::parse_ct(kv),
        "ct_clear" if v.is_empty() => Ok(Lower::Plain(OfAction::CtClear)),
        "multipath" => multipath::parse_multipath(kv),
        "bundle" => multipath::parse_bundle(kv, false),
        "bundle_load" => multipath::parse_bundle(kv, true),
        "learn" => learn::parse_learn(kv),
        "conjunction" => learn::parse_conjunction(kv),
        "check_pkt_larger" => more::parse_check_pkt_larger(kv),
        "note" => num(more::parse_note(v)),
        "exit" => Ok(Lower::Plain(OfAction::Exit)),
        "group" => num(parse_u32(v, "group_id").map(|g| Lower::Plain(OfAction::Group(g)))),
        "set_queue" => num(more::parse_set_queue(v)),
        "pop_queue" => Ok(Lower::Plain(OfAction::PopQueue)),
        "sample" => num(more::parse_sample(v)),
        "fin_timeout" => num(more::parse_fin_timeout(v)),
        "set_tunnel" | "set_tunnel64" => num(parse_u64(v, "tunnel id").map(Lower::SetTunnel)),
        "normal" if v.is_empty() => Ok(Lower::Output(OutputPort::Normal)),
        _ if UNSUPPORTED.contains(&key) => Err(Perr::new(
            kv.key_pos,
            format!("action {key} is not supported by vportd"),
        )),
        _ => match parse_port_number(kv.key).ok().and_then(port_to_output) {
            Some(o) if kv.delim.is_none() => Ok(Lower::Output(o)),
            Some(_) => Err(Perr::new(
                vp,
                format!("unexpected value after port {}", kv.key),
            )),
            None => Err(Perr::new(kv.key_pos, format!("unknown action {}", kv.key))),
        },
    }
}

/// Parses an action list; `top` allows instructions (not inside
/// `write_actions`).
fn parse_list(s: &str, base: usize, top: bool) -> PResult<Vec<(Inst, usize)>> {
    let mut out: Vec<(Inst, usize)> = Vec::new();
    let mut drop_pos = None;
    for kv in KvIter::new(s, base) {
        let key = kv.key.to_ascii_lowercase();
        let pos = kv.key_pos;
        let inst = match key.as_str() {
            "drop" => {
                drop_pos = Some(pos);
                continue;
            }
            "apply_actions" => {
                return Err(Perr::new(pos, "apply_actions is the default instruction"))
            }
            "clear_actions" => Inst::Clear,
            "write_actions" => {
                if !top {
                    return Err(Perr::new(pos, "write_actions instruction not allowed here"));
                }
                let inner = parse_list(kv.value, kv.value_pos, false)?;
                Inst::Write(
                    inner
                        .into_iter()
                        .filter_map(|(i, p)| match i {
                            Inst::Apply(l) => Some((l, p)),
                            _ => None,
                        })
                        .collect(),
                )
            }
            "write_metadata" => {
                let (v, m) = match kv.value.split_once('/') {
                    Some((v, m)) => (v, Some(m)),
                    None => (kv.value, None),
                };
                let vp = kv.value_pos;
                let v = parse_u64(v, "metadata").map_err(|e| Perr::new(vp, e))?;
                let m = match m {
                    Some(m) => parse_u64(m, "metadata mask").map_err(|e| Perr::new(vp, e))?,
                    None => u64::MAX,
                };
                Inst::Meta(v, m)
            }
            "goto_table" => match parse_uint(kv.value) {
                Some(t) if t <= u128::from(MAX_TABLE) => Inst::Goto(t as TableId),
                _ => {
                    return Err(Perr::new(
                        kv.value_pos,
                        format!(
                            "unknown table \"{}\" (tables are 0 to {MAX_TABLE})",
                            kv.value
                        ),
                    ))
                }
            },
            _ => Inst::Apply(parse_action(&key, &kv)?),
        };
        if !top && !matches!(inst, Inst::Apply(_)) {
            return Err(Perr::new(
                pos,
                format!("{} instruction not allowed here", inst.kind().1),
            ));
        }
        out.push((inst, pos));
    }
    if let Some(pos) = drop_pos {
        if !out.is_empty() {
            return Err(Perr::new(
                pos,
                "\"drop\" must not be accompanied by any other action or instruction",
            ));
        }
    }
    // OVS ofpacts_verify: apply-actions first, then each other instruction
    // at most once, in OpenFlow order.
    let mut prev: Option<(u8, &'static str)> = None;
    for (inst, pos) in &out {
        let (k, name) = inst.kind();
        if let Some((p, pname)) = prev {
            if (p == 1 && k < p) || (p != 1 && k <= p) {
                return Err(Perr::new(
                    *pos,
                    if k == p {
                        format!(
                            "duplicate {name} instruction not allowed, for OpenFlow 1.1+ \
                             compatibility"
                        )
                    } else {
                        format!(
                            "invalid instruction ordering: {name} must appear before {pname}, \
                             for OpenFlow 1.1+ compatibility"
                        )
                    },
                ));
            }
        }
        prev = Some((k, name));
    }
    Ok(out)
}

fn need(ok: bool, pos: usize, msg: impl FnOnce() -> String) -> PResult<()> {
    if ok {
        Ok(())
    } else {
        Err(Perr::new(pos, msg()))
    }
}

fn vlan_needed(what: &str) -> String {
    format!(
        "{what} needs a VLAN tag: match one (e.g. dl_vlan=10 or vlan_tci=0x1000/0x1000) or push \
         one first (push_vlan, mod_vlan_vid)"
    )
}

/// Validates one action against the flow and appends what it becomes.
fn lower(
    l: &Lower,
    pos: usize,
    st: &mut State,
    out: &mut Vec<OfAction>,
    in_set: bool,
) -> PResult<()> {
    let ip_needed = |what: &str| format!("{what} requires ip or ipv6 in the match");
    let mpls_needed = |what: &str| format!("{what} requires mpls or mplsm in the match");
    match l {
        Lower::Output(p) => out.push(OfAction::Output(*p)),
        Lower::OutputReg { name, def, src } => {
            need(!in_set, pos, || {
                format!("output:{name} is not allowed in write_actions (not an action-set action)")
            })?;
            need(st.ok(def.areq), pos, || {
                format!(
                    "output:{name} requires {} in the match",
                    def.areq.describe()
                )
            })?;
            out.push(OfAction::OutputReg(*src));
        }
        Lower::SetField {
            name,
            def,
            value,
            mask,
        } => {
            check_write(def, name, "set_field", pos, st)?;
            if def.id == FieldId::VlanTci {
                st.key.vlans[0].tci = *value as u16;
                st.mask.vlans[0].tci = 0xffff;
            }
            let valid = def.id.valid_mask();
            if mask & valid == valid {
                out.push(OfAction::SetField {
                    field: def.id,
                    value: *value,
                    mask: *mask,
                });
            } else {
                // OpenFlow 1.3 has no masked set-field: OVS sends (and the
                // switch holds) one register load per run of mask bits.
                push_loads(out, def.id, *value, *mask);
            }
        }
        Lower::Load {
            name,
            def,
            dst,
            value,
        } => {
            check_write(def, name, "load", pos, st)?;
            if def.id == FieldId::VlanTci {
                st.key.vlans[0].tci = (*value << dst.ofs) as u16;
                st.mask.vlans[0].tci = 0xffff;
            }
            if dst.n_bits <= 64 {
                out.push(OfAction::Load {
                    dst: *dst,
                    value: *value,
                });
            } else {
                // NXAST_REG_LOAD carries at most 64 bits.
                push_loads(out, dst.field, *value << dst.ofs, dst.mask());
            }
        }
        Lower::Move {
            sname,
            sdef,
            src,
            dname,
            ddef,
            dst,
        } => {
            need(st.ok(sdef.areq), pos, || {
                format!(
                    "move from {sname} requires {} in the match",
                    sdef.areq.describe()
                )
            })?;
            let dreq = if ddef.id == FieldId::VlanVid {
                Req::NONE
            } else {
                ddef.areq
            };
            need(st.ok(dreq), pos, || {
                format!("move to {dname} requires {} in the match", dreq.describe())
            })?;
            out.push(OfAction::Move {
                src: *src,
                dst: *dst,
            });
        }
        Lower::SetVlanVid { vid, push } => {
            if !st.has_vlan() {
                need(*push, pos, || vlan_needed("set_vlan_vid"))?;
                out.push(OfAction::PushVlan(ETH_TYPE_VLAN));
                st.push_vlan();
            }
            out.push(OfAction::SetField {
                field: FieldId::VlanVid,
                value: u128::from(*vid | VLAN_CFI),
                mask: FieldId::VlanVid.max_value(),
            });
        }
        Lower::SetVlanPcp { pcp, push } => {
            if !st.has_vlan() {
                need(*push, pos, || vlan_needed("set_vlan_pcp"))?;
                out.push(OfAction::PushVlan(ETH_TYPE_VLAN));
                st.push_vlan();
            }
            out.push(OfAction::SetField {
                field: FieldId::VlanPcp,
                value: u128::from(*pcp),
                mask: FieldId::VlanPcp.max_value(),
            });
        }
        Lower::PopVlan => {
            need(st.has_vlan(), pos, || vlan_needed("pop_vlan"))?;
            st.pop_vlan();
            out.push(OfAction::PopVlan);
        }
        Lower::PushVlan(t) => {
            need(st.key.vlans[1].tci & VLAN_CFI == 0, pos, || {
                "push_vlan: at most 2 VLAN headers are supported".to_string()
            })?;
            st.push_vlan();
            out.push(OfAction::PushVlan(*t));
        }
        Lower::PushMpls(t) => {
            st.set_dl_type(*t);
            st.key.nw_proto = 0;
            out.push(OfAction::PushMpls(*t));
        }
        Lower::PopMpls(t) => {
            need(st.is_mpls(), pos, || mpls_needed("pop_mpls"))?;
            st.set_dl_type(*t);
            out.push(OfAction::PopMpls(*t));
        }
        Lower::SetMplsLabel(v) => {
            need(st.is_mpls(), pos, || mpls_needed("set_mpls_label"))?;
            out.push(OfAction::SetField {
                field: FieldId::MplsLabel,
                value: u128::from(*v),
                mask: FieldId::MplsLabel.max_value(),
            });
        }
        Lower::SetMplsTc(v) => {
            need(st.is_mpls(), pos, || mpls_needed("set_mpls_tc"))?;
            out.push(OfAction::SetField {
                field: FieldId::MplsTc,
                value: u128::from(*v),
                mask: FieldId::MplsTc.max_value(),
            });
        }
        Lower::SetMplsTtl(v) => {
            need(st.is_mpls(), pos, || mpls_needed("set_mpls_ttl"))?;
            out.push(OfAction::SetMplsTtl(*v));
        }
        Lower::DecMplsTtl => {
            need(st.is_mpls(), pos, || mpls_needed("dec_mpls_ttl"))?;
            out.push(OfAction::DecMplsTtl);
        }
        Lower::DecTtl(ids) => {
            need(st.is_ip(), pos, || ip_needed("dec_ttl"))?;
            // OVS prints `dec_ttl(0)` as `dec_ttl`: id 0 is the default.
            out.push(if ids.is_empty() || ids[..] == [0] {
                OfAction::DecTtl
            } else {
                OfAction::DecTtlIds(ids.clone())
            });
        }
        Lower::SetNwTtl(v) => {
            need(st.is_ip(), pos, || ip_needed("mod_nw_ttl"))?;
            out.push(OfAction::SetNwTtl(*v));
        }
        Lower::SetIpv4 { dst, addr } => {
            let what = if *dst { "mod_nw_dst" } else { "mod_nw_src" };
            need(
                st.lenient || (st.mask.dl_type == 0xffff && st.key.dl_type == ETH_TYPE_IPV4),
                pos,
                || format!("{what} requires ip in the match"),
            )?;
            out.push(OfAction::SetField {
                field: if *dst { FieldId::NwDst } else { FieldId::NwSrc },
                value: u128::from(*addr),
                mask: u128::from(u32::MAX),
            });
        }
        Lower::SetTos(t) => {
            need(st.is_ip(), pos, || ip_needed("mod_nw_tos"))?;
            out.push(OfAction::SetField {
                field: FieldId::IpDscp,
                value: u128::from(*t >> 2),
                mask: FieldId::IpDscp.max_value(),
            });
        }
        Lower::SetEcn(e) => {
            need(st.is_ip(), pos, || ip_needed("mod_nw_ecn"))?;
            out.push(OfAction::SetField {
                field: FieldId::NwEcn,
                value: u128::from(*e),
                mask: FieldId::NwEcn.max_value(),
            });
        }
        Lower::SetTp { dst, port } => {
            let what = if *dst { "mod_tp_dst" } else { "mod_tp_src" };
            let proto_ok = st.mask.nw_proto == 0xff
                && matches!(st.key.nw_proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP);
            need(st.lenient || (st.is_ip() && proto_ok), pos, || {
                format!("{what} requires tcp, udp or sctp (v4 or v6) in the match")
            })?;
            need(
                st.key.nw_frag & flowcache::key::FRAG_LATER == 0,
                pos,
                || format!("{what} cannot be used with nw_frag=later (no L4 header)"),
            )?;
            out.push(OfAction::SetField {
                field: if *dst { FieldId::TpDst } else { FieldId::TpSrc },
                value: u128::from(*port),
                mask: 0xffff,
            });
        }
        Lower::SetEth { dst, mac } => out.push(OfAction::SetField {
            field: if *dst { FieldId::DlDst } else { FieldId::DlSrc },
            value: *mac,
            mask: FieldId::DlSrc.max_value(),
        }),
        Lower::Resubmit { in_port, table } => out.push(OfAction::Resubmit {
            in_port: *in_port,
            table: *table,
        }),
        Lower::SetTunnel(v) => out.push(OfAction::SetField {
            field: FieldId::TunId,
            value: u128::from(*v),
            mask: u128::from(u64::MAX),
        }),
        Lower::Ct(c) => {
            need(!in_set, pos, || {
                "ct is not allowed in write_actions (not an action-set action)".to_string()
            })?;
            // OVS `check_CT`: OFPBAC_MATCH_INCONSISTENT without IP.
            need(st.is_ip(), pos, || {
                "ct requires ip or ipv6 in the match".to_string()
            })?;
            if let Some(n) = &c.nat {
                need(
                    n.kind == flowcache::actions::NatKind::Existing || st.is_ip(),
                    pos,
                    || "nat requires ip or ipv6 in the match".to_string(),
                )?;
            }
            let mut inner_st = st.clone();
            let mut exec = Vec::with_capacity(c.exec.len());
            for (l, p) in &c.exec {
                lower(l, *p, &mut inner_st, &mut exec, false)?;
                let dst = match exec.last() {
                    Some(OfAction::SetField { field, .. }) => Some(*field),
                    Some(OfAction::Load { dst, .. }) | Some(OfAction::Move { dst, .. }) => {
                        Some(dst.field)
                    }
                    _ => None,
                };
                need(
                    matches!(dst, Some(FieldId::CtMark | FieldId::CtLabel)),
                    *p,
                    || "ct(exec(...)) may only set ct_mark or ct_label".to_string(),
                )?;
            }
            out.push(OfAction::Ct(Box::new(crate::rule::CtSpec {
                commit: c.commit,
                force: c.force,
                zone: c.zone,
                table: c.table,
                nat: c.nat,
                exec,
                alg: c.alg,
            })));
        }
        Lower::Clone(inner) => {
            need(!in_set, pos, || {
                "clone is not allowed in write_actions (not an action-set action)".to_string()
            })?;
            // OVS `check_CLONE`: the inner actions are checked against the
            // flow as it is here; what they change does not leak out.
            let mut inner_st = st.clone();
            let mut acts = Vec::with_capacity(inner.len());
            for (l, p) in inner {
                lower(l, *p, &mut inner_st, &mut acts, false)?;
            }
            out.push(OfAction::Clone(acts));
        }
        Lower::CheckPktLarger {
            name,
            def,
            dst,
            pkt_len,
        } => {
            need(!in_set, pos, || {
                "check_pkt_larger is not allowed in write_actions".to_string()
            })?;
            check_write(def, name, "check_pkt_larger", pos, st)?;
            out.push(OfAction::CheckPktLarger {
                pkt_len: *pkt_len,
                dst: *dst,
            });
        }
        Lower::OutputTrunc { port, max_len } => {
            need(!in_set, pos, || {
                "output_trunc is not allowed in write_actions (not an action-set action)"
                    .to_string()
            })?;
            out.push(OfAction::OutputTrunc {
                port: *port,
                max_len: *max_len,
            });
        }
        Lower::Multipath {
            fields,
            basis,
            algorithm,
            n_links,
            arg,
            name,
            def,
            dst,
        } => {
            need(!in_set, pos, || {
                "multipath is not allowed in write_actions (not an action-set action)".to_string()
            })?;
            check_write(def, name, "multipath", pos, st)?;
            out.push(OfAction::Multipath {
                fields: *fields,
                basis: *basis,
                algorithm: *algorithm,
                n_links: *n_links,
                arg: *arg,
                dst: *dst,
            });
        }
        Lower::Bundle {
            fields,
            basis,
            algorithm,
            members,
            dst,
        } => {
            need(!in_set, pos, || {
                "bundle is not allowed in write_actions (not an action-set action)".to_string()
            })?;
            if let Some((name, def, _)) = dst {
                check_write(def, name, "bundle_load", pos, st)?;
            }
            out.push(OfAction::Bundle {
                fields: *fields,
                basis: *basis,
                algorithm: *algorithm,
                members: members.clone(),
                dst: dst.as_ref().map(|(_, _, sf)| *sf),
            });
        }
        Lower::Learn(p) => {
            need(!in_set, pos, || {
                "learn is not allowed in write_actions (not an action-set action)".to_string()
            })?;
            // OVS `learn_check`: what the learn reads must exist in every
            // packet the rule matches.
            for (req, name, at) in &p.src_checks {
                need(st.ok(*req), *at, || {
                    format!(
                        "learn: source field {name} requires {} in the match (OVS rejects                          the flow with OFPBAC_MATCH_INCONSISTENT)",
                        req.describe()
                    )
                })?;
            }
            out.push(OfAction::Learn(Box::new(p.learn.clone())));
        }
        Lower::Plain(OfAction::Conjunction { .. }) if in_set => {
            return Err(Perr::new(
                pos,
                "conjunction is not allowed in write_actions (not an action-set action)",
            ))
        }
        Lower::Plain(a) => out.push(a.clone()),
    }
    Ok(())
}

/// The keyword of the action or instruction at `pos` of the action text
/// `s` (which starts at `base` in its line): `output` for a bare port.
fn keyword_at(s: &str, base: usize, pos: usize) -> String {
    let t = s.get(pos.saturating_sub(base)..).unwrap_or("");
    let end = t.find([':', '=', '(', ',', ' ', '\t']).unwrap_or(t.len());
    let k = &t[..end];
    if k.is_empty() || k.bytes().all(|c| c.is_ascii_digit()) {
        "output".into()
    } else {
        k.to_ascii_lowercase()
    }
}

/// OVS `ofpacts_verify`: a rule with `conjunction` actions may have `note`
/// actions too, nothing else.
fn check_conjunction(list: &[(Inst, usize)], s: &str, base: usize) -> PResult<()> {
    let is_conj = |i: &Inst| matches!(i, Inst::Apply(Lower::Plain(OfAction::Conjunction { .. })));
    if !list.iter().any(|(i, _)| is_conj(i)) {
        return Ok(());
    }
    for (inst, pos) in list {
        if is_conj(inst) || matches!(inst, Inst::Apply(Lower::Plain(OfAction::Note(_)))) {
            continue;
        }
        return Err(Perr::new(
            *pos,
            format!(
                "\"conjunction\" actions may be used along with \"note\" but not any other \
                 kind of action (such as the \"{}\" action used here)",
                keyword_at(s, base, *pos)
            ),
        ));
    }
    Ok(())
}

fn push_loads(out: &mut Vec<OfAction>, field: FieldId, value: u128, mask: u128) {
    for (dst, v) in fields::load_segments(field, value, mask) {
        out.push(OfAction::Load { dst, value: v });
    }
}

/// OVS `check_SET_FIELD`: the field's prerequisites must hold, and
/// `vlan_vid`/`vlan_pcp` need a tag.
fn check_write(def: &Def, name: &str, what: &str, pos: usize, st: &State) -> PResult<()> {
    if matches!(def.id, FieldId::VlanVid | FieldId::VlanPcp) {
        return need(st.has_vlan(), pos, || {
            vlan_needed(&format!("{what} on {name}"))
        });
    }
    need(st.ok(def.areq), pos, || {
        format!(
            "{what} on {name} requires {} in the match",
            def.areq.describe()
        )
    })
}

/// Parses and validates the actions `s` (at offset `base` in the line) for
/// a rule in `st.table` whose match is `st`.
pub(crate) fn parse_instructions(s: &str, base: usize, mut st: State) -> PResult<Instructions> {
    let list = parse_list(s, base, true)?;
    check_conjunction(&list, s, base)?;
    let mut ins = Instructions::default();
    for (inst, pos) in list {
        match inst {
            Inst::Apply(l) => lower(&l, pos, &mut st, &mut ins.apply, false)?,
            Inst::Clear => ins.clear_actions = true,
            Inst::Write(v) => {
                let mut st2 = st.clone();
                let mut acts = Vec::new();
                for (l, p) in &v {
                    lower(l, *p, &mut st2, &mut acts, true)?;
                }
                ins.write_actions = Some(acts);
            }
            Inst::Meta(v, m) => ins.write_metadata = Some((v, m)),
            Inst::Goto(t) => {
                if t <= st.table {
                    return Err(Perr::new(
                        pos,
                        format!(
                            "goto_table:{t} must go to a later table than this rule's table {}",
                            st.table
                        ),
                    ));
                }
                ins.goto_table = Some(t);
            }
        }
    }
    Ok(ins)
}

/// Parses a group bucket's actions `s` (at offset `base` in the line):
/// apply-style actions, no match to check them against.
pub(crate) fn parse_bucket_actions(s: &str, base: usize) -> PResult<Vec<OfAction>> {
    let mut st = State {
        key: FlowKey::default(),
        mask: FlowKey::default(),
        table: 0,
        lenient: true,
    };
    let mut out = Vec::new();
    for (inst, pos) in parse_list(s, base, false)? {
        match inst {
            Inst::Apply(l) => lower(&l, pos, &mut st, &mut out, false)?,
            other => {
                return Err(Perr::new(
                    pos,
                    format!(
                        "{} instruction not allowed in a group bucket",
                        other.kind().1
                    ),
                ))
            }
        }
    }
    Ok(out)
}
