//! The actions beyond plain header rewriting: `clone(...)`,
//! `check_pkt_larger(N)->dst`, `output(port=P,max_len=N)`, `dec_ttl(ids)`,
//! and the ones that change nothing in vportd's datapath but must load and
//! print back as OVS prints them (`note`, `exit`, `set_queue`, `pop_queue`,
//! `sample`, `fin_timeout`). Syntax and checks follow OVS 3.1
//! `lib/ofp-actions.c` (`parse_CLONE`, `parse_CHECK_PKT_LARGER`,
//! `parse_truncate_subfield`, `parse_NOTE`, `parse_SAMPLE`, ...).

use super::{parse_list, Inst, Lower};
use crate::parse::error::{PResult, Perr};
use crate::parse::fields;
use crate::parse::lexer::Kv;
use crate::parse::values::{parse_port_number, parse_u16, parse_u32, port_to_output};
use crate::rule::OfAction;

/// `clone(ACTIONS)`: apply-actions only, as OVS (`ofpacts_parse` with
/// `OFPACT_CLONE` nesting refuses instructions).
pub(super) fn parse_clone(kv: &Kv) -> PResult<Lower> {
    let inner = parse_list(kv.value, kv.value_pos, false)?;
    let mut acts = Vec::with_capacity(inner.len());
    for (inst, pos) in inner {
        match inst {
            Inst::Apply(l) => acts.push((l, pos)),
            other => {
                return Err(Perr::new(
                    pos,
                    format!("{} instruction not allowed inside clone", other.kind().1),
                ))
            }
        }
    }
    Ok(Lower::Clone(acts))
}

/// `check_pkt_larger(N)->DST`: DST a writable 1-bit subfield.
pub(super) fn parse_check_pkt_larger(kv: &Kv) -> PResult<Lower> {
    // The lexer hands `check_pkt_larger(N)->DST` over as value `N` and
    // the rest after the parenthesis.
    let full = kv.value;
    let (len_s, dst_s) = match full.split_once(")->") {
        Some((l, d)) => (l, d),
        None => full.split_once("->").ok_or_else(|| {
            Perr::new(
                kv.value_pos,
                format!("{full}: missing `->' (check_pkt_larger(N)->DST)"),
            )
        })?,
    };
    let pkt_len = parse_u16(len_s.trim_start_matches('('), "check_pkt_larger length")
        .map_err(|e| Perr::new(kv.value_pos, e))?;
    let (def, dst, used) = fields::parse_subfield(dst_s).map_err(|e| Perr::new(kv.value_pos, e))?;
    if used != dst_s.len() {
        return Err(Perr::new(
            kv.value_pos,
            format!("{dst_s}: trailing garbage after subfield"),
        ));
    }
    if dst.n_bits != 1 {
        return Err(Perr::new(
            kv.value_pos,
            format!("{dst_s}: Only 1-bit destination field is allowed"),
        ));
    }
    if !def.writable {
        return Err(Perr::new(
            kv.value_pos,
            format!("{dst_s}: destination field is read-only"),
        ));
    }
    Ok(Lower::CheckPktLarger {
        name: dst_s.to_string(),
        def,
        dst,
        pkt_len,
    })
}

/// `output(port=P,max_len=N)` (OVS `parse_truncate_subfield`).
pub(super) fn parse_output_trunc(v: &str) -> Result<Lower, String> {
    let mut port = None;
    let mut max_len = None;
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part}: invalid key '{part}' in output_trunc argument"))?;
        match key.trim() {
            "port" => {
                let p = parse_port_number(value.trim())
                    .ok()
                    .and_then(port_to_output)
                    .ok_or_else(|| format!("output to unknown port: {value}"))?;
                port = Some(p);
            }
            "max_len" => max_len = Some(parse_u32(value.trim(), "max_len")?),
            k => return Err(format!("invalid key '{k}' in output_trunc argument")),
        }
    }
    let port = port.ok_or("output_trunc needs port=")?;
    let max_len = max_len.ok_or("output_trunc needs max_len=")?;
    if max_len < 14 {
        // ovs-ofctl: an Ethernet header is the least that can be sent.
        return Err(format!(
            "max_len {max_len} is less than the minimum value 14"
        ));
    }
    Ok(Lower::OutputTrunc { port, max_len })
}

/// `dec_ttl(ID,...)`: controller ids (OVS `parse_dec_ttl`).
pub(super) fn parse_dec_ttl_ids(v: &str) -> Result<Lower, String> {
    let mut ids = Vec::new();
    for id in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        ids.push(parse_u16(id, "controller id")?);
    }
    if ids.is_empty() {
        return Err("dec_ttl_cnt_ids: expected at least one controller id.".into());
    }
    Ok(Lower::DecTtl(ids))
}

/// `note:HEX[.HEX...]`, padded the way NXAST_NOTE stores it (10 header
/// bytes + the note, rounded up to 8).
pub(super) fn parse_note(v: &str) -> Result<Lower, String> {
    let mut bytes = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
            if i == b.len() {
                break;
            }
        }
        let hexits = v
            .get(i..i + 2)
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
        let byte = hexits
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or("bad hex digit in `note' argument")?;
        bytes.push(byte);
        i += 2;
    }
    let padded = (bytes.len() + 10).div_ceil(8) * 8 - 10;
    bytes.resize(padded, 0);
    Ok(Lower::Plain(OfAction::Note(bytes)))
}

/// `sample(probability=P,collector_set_id=C,obs_domain_id=D,obs_point_id=O)`.
pub(super) fn parse_sample(v: &str) -> Result<Lower, String> {
    let (mut probability, mut collector_set_id, mut obs_domain_id, mut obs_point_id) =
        (None, 0, 0, 0);
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match key {
            "probability" => {
                let p = parse_u16(value, "probability")?;
                if p == 0 {
                    return Err("invalid probability value \"0\"".into());
                }
                probability = Some(p);
            }
            "collector_set_id" => collector_set_id = parse_u32(value, "collector_set_id")?,
            "obs_domain_id" => obs_domain_id = parse_u32(value, "obs_domain_id")?,
            "obs_point_id" => obs_point_id = parse_u32(value, "obs_point_id")?,
            _ => {
                return Err(format!(
                    "invalid key \"{key}\" in \"sample\" argument (vportd has no sampling_port \
                     or ingress/egress sampling)"
                ))
            }
        }
    }
    let probability = probability.ok_or("non-zero \"probability\" must be specified on sample")?;
    Ok(Lower::Plain(OfAction::Sample {
        probability,
        collector_set_id,
        obs_domain_id,
        obs_point_id,
    }))
}

/// `fin_timeout(idle_timeout=I,hard_timeout=H)`.
pub(super) fn parse_fin_timeout(v: &str) -> Result<Lower, String> {
    let (mut idle, mut hard) = (0, 0);
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match key {
            "idle_timeout" => idle = parse_u16(value, "idle_timeout")?,
            "hard_timeout" => hard = parse_u16(value, "hard_timeout")?,
            _ => return Err(format!("invalid key '{key}' in 'fin_timeout' argument")),
        }
    }
    Ok(Lower::Plain(OfAction::FinTimeout { idle, hard }))
}

/// `set_queue:N`.
pub(super) fn parse_set_queue(v: &str) -> Result<Lower, String> {
    Ok(Lower::Plain(OfAction::SetQueue(parse_u32(v, "queue id")?)))
}
