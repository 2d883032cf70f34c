//! `learn(...)` and `conjunction(id,k/n)` (OVS 3.1 `lib/learn.c`
//! `learn_parse__`/`learn_parse_spec`/`learn_check`, and
//! `parse_CONJUNCTION` in `lib/ofp-actions.c`).
//!
//! A learn spec is `FIELD[=VALUE|=SRC]` (a match in the learned rule),
//! `load:VALUE|SRC->DST` or `output:SRC`. Checks as OVS makes them when the
//! flow is added: a source field's prerequisites must hold in the learning
//! rule's match (checked by the caller, see [`LearnParsed::src_checks`]); a
//! matched or loaded destination's prerequisites must be met by the
//! whole-value matches written before it in the same learn (`eth_type=0x800,
//! nw_proto=6,NXM_OF_TCP_DST[]` is fine, `NXM_OF_TCP_DST[]` alone is not).

use super::Lower;
use crate::fields::{FieldId, Prereq, SubField};
use crate::parse::error::{PResult, Perr};
use crate::parse::fields::{self, Def, Req};
use crate::parse::lexer::{Kv, KvIter};
use crate::parse::values::{self, parse_field_value, parse_uint};
use crate::rule::{Learn, LearnDst, LearnSpec, LearnSrc, OfAction, MAX_TABLE};
use flowcache::key::FlowKey;

/// A parsed `learn`, with the source-field prerequisites still to check
/// against the learning rule's match: (prerequisite, field name, position).
#[derive(Clone, Debug)]
pub(crate) struct LearnParsed {
    pub learn: Learn,
    pub src_checks: Vec<(Req, String, usize)>,
}

/// The transport protocol a field name spells (`tcp_src` is TCP): how the
/// field prints back.
fn proto_of(def: &Def) -> Option<u8> {
    match def.areq {
        Req::P(Prereq::Tcp) => Some(6),
        Req::P(Prereq::Udp) => Some(17),
        Req::P(Prereq::Sctp) => Some(132),
        _ => None,
    }
}

/// `mf_parse_subfield` on the whole of `s`.
fn subfield(s: &str) -> Result<(Def, SubField), String> {
    if s.starts_with("dl_vlan") && matches!(s, "dl_vlan" | "dl_vlan_pcp") {
        return Err(format!("experimenter OXM field '{s}' not supported"));
    }
    let (def, sf, used) = fields::parse_subfield(s)?;
    if used != s.len() {
        return Err(format!("{s}: trailing garbage after subfield"));
    }
    Ok((def, sf))
}

fn num<T: TryFrom<u128>>(v: &str, what: &str, orig: &str) -> Result<T, String> {
    parse_uint(v)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{orig}: {v}: invalid {what}"))
}

/// The learned match as far as the specs written so far make it (for the
/// destination prerequisite checks).
#[derive(Default)]
struct DstMatch {
    key: FlowKey,
    mask: FlowKey,
}

impl DstMatch {
    fn check(&self, def: &Def, name: &str, what: &str) -> Result<(), String> {
        if def.areq.ok(&self.key, &self.mask) {
            return Ok(());
        }
        Err(format!(
            "{what} {name} needs {} matched earlier in the learn (e.g. eth_type=0x800 before \
             an IPv4 field, and nw_proto=6 before a TCP one): OVS rejects the flow with \
             OFPBAC_MATCH_INCONSISTENT",
            def.areq.describe()
        ))
    }

    fn write(&mut self, sf: &SubField, v: u128) {
        sf.field.set_masked(&mut self.key, v << sf.ofs, sf.mask());
        sf.field.or_mask(&mut self.mask, sf.mask());
    }
}

/// One spec (`name[=value]`) of `learn(...)`.
fn parse_spec(
    orig: &str,
    kv: &Kv,
    dm: &mut DstMatch,
    src_checks: &mut Vec<(Req, String, usize)>,
) -> Result<LearnSpec, String> {
    let (name, value) = (kv.key, kv.value);
    // A field spec: `dl_dst`, `NXM_OF_VLAN_TCI[0..11]`, ...
    let dst_parsed = subfield(name);
    if let Ok((ddef, dst)) = dst_parsed {
        dm.check(&ddef, name, "the learned match on")?;
        let dst_proto = proto_of(&ddef);
        if value.is_empty() {
            src_checks.push((ddef.areq, name.to_string(), kv.key_pos));
            return Ok(LearnSpec {
                src: LearnSrc::Field(dst),
                dst: LearnDst::Match(dst),
                n_bits: dst.n_bits,
                src_proto: dst_proto,
                dst_proto,
            });
        }
        match subfield(value) {
            Ok((sdef, src)) => {
                if src.n_bits != dst.n_bits {
                    return Err(format!(
                        "{orig}: bit widths of {name} ({}) and {value} ({}) differ",
                        src.n_bits, dst.n_bits
                    ));
                }
                src_checks.push((sdef.areq, value.to_string(), kv.value_pos));
                Ok(LearnSpec {
                    src: LearnSrc::Field(src),
                    dst: LearnDst::Match(dst),
                    n_bits: dst.n_bits,
                    src_proto: proto_of(&sdef),
                    dst_proto,
                })
            }
            Err(sub_err) => {
                let whole = dst.ofs == 0 && dst.n_bits == fields::ovs_bits(dst.field);
                let imm = if whole {
                    if value.contains('/') {
                        Err(format!("{value}: wildcards not allowed here"))
                    } else {
                        parse_field_value(&ddef, name, value).map(|(v, m)| v & m)
                    }
                } else {
                    match parse_uint(value) {
                        None => Err(format!("{orig}: cannot parse integer value")),
                        Some(v) if dst.n_bits < 128 && v >> dst.n_bits != 0 => Err(format!(
                            "{orig}: value {} does not fit into {} bits",
                            values::hex(v),
                            dst.n_bits
                        )),
                        Some(v) => Ok(v),
                    }
                };
                let v = imm.map_err(|imm_err| {
                    format!(
                        "{orig}: {name} value {value} cannot be parsed as a subfield \
                         ({sub_err}) or an immediate value ({imm_err})"
                    )
                })?;
                // The value in subfield space.
                let v = if whole && dst.field == FieldId::VlanVid {
                    v & 0x0fff
                } else {
                    v
                };
                dm.write(&dst, v);
                Ok(LearnSpec {
                    src: LearnSrc::Imm(v),
                    dst: LearnDst::Match(dst),
                    n_bits: dst.n_bits,
                    src_proto: None,
                    dst_proto,
                })
            }
        }
    } else if name == "load" {
        let Some(arrow) = value.find("->") else {
            return Err(format!("{name}: missing `->' in `{value}'"));
        };
        if arrow == 0 {
            return Err(format!("{name}: missing source before `->' in `{value}'"));
        }
        let (src_s, dst_s) = (&value[..arrow], &value[arrow + 2..]);
        let (ddef, dst) = subfield(dst_s)?;
        if !ddef.writable {
            return Err(format!(
                "{dst_s}: destination field is not writable (OVS rejects the flow with \
                 OFPBAC_BAD_SET_ARGUMENT)"
            ));
        }
        dm.check(&ddef, dst_s, "the learned load into")?;
        let dst_proto = proto_of(&ddef);
        if src_s.as_bytes()[0].is_ascii_digit() {
            let v = parse_uint(src_s)
                .ok_or_else(|| format!("{name}: garbage before `->' in `{value}'"))?;
            if dst.n_bits < 128 && v >> dst.n_bits != 0 {
                return Err(format!(
                    "{value}: value does not fit into {} bits",
                    dst.n_bits
                ));
            }
            return Ok(LearnSpec {
                src: LearnSrc::Imm(v),
                dst: LearnDst::Load(dst),
                n_bits: dst.n_bits,
                src_proto: None,
                dst_proto,
            });
        }
        let (sdef, src) = subfield(src_s)?;
        if src.n_bits != dst.n_bits {
            return Err(format!(
                "{value}: source field is {} bits wide but destination is {} bits wide",
                src.n_bits, dst.n_bits
            ));
        }
        src_checks.push((sdef.areq, src_s.to_string(), kv.value_pos));
        Ok(LearnSpec {
            src: LearnSrc::Field(src),
            dst: LearnDst::Load(dst),
            n_bits: dst.n_bits,
            src_proto: proto_of(&sdef),
            dst_proto,
        })
    } else if name == "output" {
        let (sdef, src) = subfield(value)?;
        src_checks.push((sdef.areq, value.to_string(), kv.value_pos));
        Ok(LearnSpec {
            src: LearnSrc::Field(src),
            dst: LearnDst::Output,
            n_bits: src.n_bits,
            src_proto: proto_of(&sdef),
            dst_proto: None,
        })
    } else if let Err(e) = dst_parsed.as_ref().map(|_| ()) {
        if name.contains('[') || fields::lookup(name).is_some() || name.starts_with("dl_vlan") {
            Err(e.clone())
        } else {
            Err(format!("{orig}: unknown keyword {name}"))
        }
    } else {
        Err(format!("{orig}: unknown keyword {name}"))
    }
}

/// `learn(ARGS)`.
pub(super) fn parse_learn(kv: &Kv) -> PResult<Lower> {
    let orig = kv.value;
    let mut learn = Learn::default();
    let mut dm = DstMatch::default();
    let mut src_checks = Vec::new();
    for a in KvIter::new(kv.value, kv.value_pos) {
        let at = |r: Result<(), String>| r.map_err(|e| Perr::new(a.key_pos, e));
        let v = a.value;
        match a.key {
            "table" => at(match parse_uint(v) {
                Some(255) => Err(format!(
                    "table={v}: table id 255 not valid for `learn' action"
                )),
                Some(t) if t <= u128::from(MAX_TABLE) => {
                    learn.table = t as u8;
                    Ok(())
                }
                _ => Err(format!("unknown table \"{v}\"")),
            })?,
            "priority" => at(num(v, "priority", orig).map(|n| learn.priority = n))?,
            "idle_timeout" => at(num(v, "idle_timeout", orig).map(|n| learn.idle_timeout = n))?,
            "hard_timeout" => at(num(v, "hard_timeout", orig).map(|n| learn.hard_timeout = n))?,
            "fin_idle_timeout" => {
                at(num(v, "fin_idle_timeout", orig).map(|n| learn.fin_idle_timeout = n))?
            }
            "fin_hard_timeout" => {
                at(num(v, "fin_hard_timeout", orig).map(|n| learn.fin_hard_timeout = n))?
            }
            "cookie" => at(num(v, "cookie", orig).map(|n| learn.cookie = n))?,
            "send_flow_rem" => learn.send_flow_rem = true,
            "delete_learned" => learn.delete_learned = true,
            "limit" => at(num(v, "limit", orig).map(|n| learn.limit = n))?,
            "result_dst" => at(subfield(v).and_then(|(def, sf)| {
                if !def.writable {
                    Err(format!("{v} is read-only"))
                } else if sf.n_bits != 1 {
                    Err("result_dst in 'learn' action must be a single bit".to_string())
                } else {
                    learn.result_dst = Some(sf);
                    Ok(())
                }
            }))?,
            _ => {
                let spec = parse_spec(orig, &a, &mut dm, &mut src_checks)
                    .map_err(|e| Perr::new(a.key_pos, e))?;
                learn.specs.push(spec);
            }
        }
    }
    Ok(Lower::Learn(Box::new(LearnParsed { learn, src_checks })))
}

/// `conjunction(ID,K/N)`.
pub(super) fn parse_conjunction(kv: &Kv) -> PResult<Lower> {
    let err = |m: &str| Perr::new(kv.value_pos, m.to_string());
    let syntax = || err("\"conjunction\" syntax is \"conjunction(id,i/n)\"");
    let (id_s, rest) = kv.value.split_once(',').ok_or_else(syntax)?;
    let (k_s, n_s) = rest.split_once('/').ok_or_else(syntax)?;
    let id = parse_uint(id_s.trim())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(syntax)?;
    let k = parse_uint(k_s.trim()).ok_or_else(syntax)?;
    let n = parse_uint(n_s.trim()).ok_or_else(syntax)?;
    if n < 2 {
        return Err(err("conjunction must have at least 2 clauses"));
    }
    if n > 64 {
        return Err(err("conjunction must have at most 64 clauses"));
    }
    if k < 1 {
        return Err(err("clause index must be positive"));
    }
    if k > n {
        return Err(err(
            "clause index must be less than or equal to number of clauses",
        ));
    }
    Ok(Lower::Plain(OfAction::Conjunction {
        id,
        clause: k as u8,
        n_clauses: n as u8,
    }))
}
