//! `ct(...)` and `ct_clear` (OVS 3.1 `parse_CT`, `parse_NAT`,
//! `format_CT`, `format_NAT`).

use super::{parse_list, Inst, Lower};
use crate::parse::error::{PResult, Perr};
use crate::parse::fields;
use crate::parse::lexer::{Kv, KvIter};
use crate::parse::values::{parse_ipv4, parse_ipv6, parse_u16, parse_u8};
use crate::rule::{CtZone, MAX_TABLE};
use flowcache::actions::{CtNat, NatKind};

/// `ct(...)` before its `exec` actions are checked against the flow.
#[derive(Clone, Debug)]
pub(super) struct CtParsed {
    pub(super) commit: bool,
    pub(super) force: bool,
    pub(super) zone: CtZone,
    pub(super) table: Option<u8>,
    pub(super) nat: Option<CtNat>,
    pub(super) exec: Vec<(Lower, usize)>,
    pub(super) alg: Option<u16>,
}

pub(super) fn parse_ct(kv: &Kv) -> PResult<Lower> {
    let mut ct = CtParsed {
        commit: false,
        force: false,
        zone: CtZone::Imm(0),
        table: None,
        nat: None,
        exec: Vec::new(),
        alg: None,
    };
    for a in KvIter::new(kv.value, kv.value_pos) {
        let err = |m: String| Perr::new(a.value_pos, m);
        match a.key {
            "commit" => ct.commit = true,
            "force" => ct.force = true,
            "table" => {
                let t = parse_u8(a.value, "ct table").map_err(err)?;
                if t > MAX_TABLE {
                    return Err(err(format!("{}: invalid table", a.value)));
                }
                ct.table = Some(t);
            }
            "zone" => {
                ct.zone = if a.value.starts_with(|c: char| c.is_ascii_digit()) {
                    CtZone::Imm(parse_u16(a.value, "ct zone").map_err(err)?)
                } else {
                    let (_, sf, used) = fields::parse_subfield(a.value).map_err(err)?;
                    if used != a.value.len() {
                        return Err(err(format!("{}: trailing garbage after subfield", a.value)));
                    }
                    if sf.n_bits != 16 {
                        return Err(err(format!(
                            "{}: zone field must be 16 bits wide ({} given)",
                            a.value, sf.n_bits
                        )));
                    }
                    CtZone::Field(sf)
                };
            }
            "alg" => {
                let port = match a.value {
                    "ftp" => 21,
                    "tftp" => 69,
                    v => return Err(err(format!("{v}: unknown ct alg"))),
                };
                ct.alg = Some(port);
                return Err(Perr::new(
                    a.key_pos,
                    format!("ct alg={}: not supported yet by vportd", a.value),
                ));
            }
            "nat" => ct.nat = Some(parse_nat(&a)?),
            "exec" => {
                for (inst, pos) in parse_list(a.value, a.value_pos, false)? {
                    match inst {
                        Inst::Apply(l) => ct.exec.push((l, pos)),
                        other => {
                            return Err(Perr::new(
                                pos,
                                format!("{} instruction not allowed inside ct", other.kind().1),
                            ))
                        }
                    }
                }
            }
            k => return Err(Perr::new(a.key_pos, format!("{k}: unknown ct argument"))),
        }
    }
    let nat_args = ct.nat.is_some_and(|n| n.kind != NatKind::Existing);
    if (!ct.exec.is_empty() || nat_args) && !ct.commit {
        return Err(Perr::new(
            kv.key_pos,
            "CT action requires commit flag if actions other than NAT without arguments are specified",
        ));
    }
    if ct.force && !ct.commit {
        return Err(Perr::new(kv.key_pos, "ct: force requires commit"));
    }
    Ok(Lower::Ct(Box::new(ct)))
}

/// An address of a NAT range: (IPv6?, 16 bytes).
fn nat_addr(s: &str) -> Option<(bool, [u8; 16])> {
    if let Some(a) = parse_ipv4(s) {
        let mut b = [0u8; 16];
        b[12..].copy_from_slice(&a.to_be_bytes());
        return Some((false, b));
    }
    parse_ipv6(s).map(|a| (true, a.to_be_bytes()))
}

/// `nat` or `nat(src|dst[=ADDR[-ADDR][:PORT[-PORT]]],random|hash,persistent)`.
fn parse_nat(kv: &Kv) -> PResult<CtNat> {
    let mut n = CtNat::default();
    if kv.delim.is_none() {
        return Ok(n);
    }
    for a in KvIter::new(kv.value, kv.value_pos) {
        let err = |m: String| Perr::new(a.value_pos, m);
        match a.key {
            "src" | "dst" => {
                if n.kind != NatKind::Existing {
                    return Err(Perr::new(a.key_pos, "nat: only one of src or dst"));
                }
                n.kind = if a.key == "src" {
                    NatKind::Src
                } else {
                    NatKind::Dst
                };
                if a.value.is_empty() {
                    continue;
                }
                // [v6]:port, v4:port, or a bare address (range).
                let (addrs, ports) = if let Some(rest) = a.value.strip_prefix('[') {
                    let (ad, tail) = rest
                        .split_once(']')
                        .ok_or_else(|| err(format!("{}: missing `]'", a.value)))?;
                    (ad, tail.strip_prefix(':'))
                } else if a.value.matches(':').count() > 1 {
                    (a.value, None)
                } else {
                    match a.value.split_once(':') {
                        Some((ad, p)) => (ad, Some(p)),
                        None => (a.value, None),
                    }
                };
                let (lo, hi) = addrs.split_once('-').unwrap_or((addrs, addrs));
                let bad = || err(format!("{}: invalid NAT address", a.value));
                let (v6a, amin) = nat_addr(lo).ok_or_else(bad)?;
                let (v6b, amax) = nat_addr(hi).ok_or_else(bad)?;
                if v6a != v6b || u128::from_be_bytes(amax) < u128::from_be_bytes(amin) {
                    return Err(bad());
                }
                n.ipv6 = v6a;
                n.addr_min = amin;
                n.addr_max = amax;
                if let Some(p) = ports {
                    let (plo, phi) = p.split_once('-').unwrap_or((p, p));
                    n.port_min = parse_u16(plo, "NAT port").map_err(err)?;
                    n.port_max = parse_u16(phi, "NAT port").map_err(err)?;
                    if n.port_min == 0 || n.port_max < n.port_min {
                        return Err(err(format!("{p}: invalid NAT port range")));
                    }
                }
            }
            "random" => n.random = true,
            "hash" => n.hash = true,
            "persistent" => n.persistent = true,
            k => return Err(Perr::new(a.key_pos, format!("{k}: unknown nat argument"))),
        }
    }
    if n.random && n.hash {
        return Err(Perr::new(kv.key_pos, "nat: random and hash are exclusive"));
    }
    if n.kind == NatKind::Existing && (n.random || n.hash || n.persistent) {
        return Err(Perr::new(kv.key_pos, "nat: flags need src or dst"));
    }
    Ok(n)
}

/// OVS `format_NAT`.
pub(crate) fn format_nat(n: &CtNat) -> String {
    let kind = match n.kind {
        NatKind::Existing => return "nat".into(),
        NatKind::Src => "src",
        NatKind::Dst => "dst",
    };
    let mut s = format!("nat({kind}");
    if n.has_addr() {
        let addr = |a: &[u8; 16]| {
            if n.ipv6 {
                flowcache::text::ipv6(a)
            } else {
                flowcache::text::ipv4(u32::from_be_bytes([a[12], a[13], a[14], a[15]]))
            }
        };
        s.push('=');
        let v6_ports = n.ipv6 && n.port_min != 0;
        if v6_ports {
            s.push('[');
        }
        s.push_str(&addr(&n.addr_min));
        if n.addr_max != n.addr_min {
            s.push('-');
            s.push_str(&addr(&n.addr_max));
        }
        if v6_ports {
            s.push(']');
        }
        if n.port_min != 0 {
            s.push_str(&format!(":{}", n.port_min));
            if n.port_max != n.port_min {
                s.push_str(&format!("-{}", n.port_max));
            }
        }
    }
    if n.persistent {
        s.push_str(",persistent");
    }
    if n.hash {
        s.push_str(",hash");
    }
    if n.random {
        s.push_str(",random");
    }
    s.push(')');
    s
}
