//! `multipath(...)`, `bundle(...)` and `bundle_load(...)`, parsed as OVS
//! 3.1 `multipath_parse` and `bundle_parse`/`bundle_parse_load` do: the
//! arguments are split at commas and spaces (`strtok`), numbers read as
//! `atoi` reads them, field and algorithm names compared without case.

use super::Lower;
use crate::ofp_port::OFPP_CONTROLLER;
use crate::parse::error::{PResult, Perr};
use crate::parse::fields::{self, Def};
use crate::parse::lexer::Kv;
use crate::parse::values::parse_port_number;
use crate::rule::{BundleAlgorithm, HashFields, MultipathAlgorithm};

/// OVS `BUNDLE_MAX_MEMBERS`.
const BUNDLE_MAX_MEMBERS: usize = 2048;

/// C `atoi`: optional blanks and sign, then digits; 0 when there are none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    let v = v.min(i64::from(i32::MAX) + 1);
    if neg {
        -v
    } else {
        v.min(i64::from(i32::MAX))
    }
}

/// `strtok_r`-style tokens with their byte offsets in `s`.
struct Tok<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Tok<'a> {
    fn next(&mut self, delims: &[u8]) -> Option<(&'a str, usize)> {
        let b = self.s.as_bytes();
        while self.pos < b.len() && delims.contains(&b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        while self.pos < b.len() && !delims.contains(&b[self.pos]) {
            self.pos += 1;
        }
        let tok = &self.s[start..self.pos];
        if self.pos < b.len() {
            self.pos += 1;
        }
        Some((tok, start))
    }
}

fn hash_fields(s: &str) -> Option<HashFields> {
    HashFields::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(s))
}

/// A destination subfield (`NXM_NX_REG0[0..1]`, `reg0[]`...).
fn dst_subfield(s: &str, pos: usize) -> PResult<(String, Def, crate::fields::SubField)> {
    let (def, sf, used) = fields::parse_subfield(s).map_err(|e| Perr::new(pos, e))?;
    if used != s.len() {
        return Err(Perr::new(
            pos + used,
            format!("{s}: trailing garbage after subfield"),
        ));
    }
    if !def.writable {
        return Err(Perr::new(
            pos,
            format!("{s}: destination field is read-only"),
        ));
    }
    Ok((s.to_string(), def, sf))
}

/// `multipath(fields, basis, algorithm, n_links, arg, dst)`.
pub(super) fn parse_multipath(kv: &Kv) -> PResult<Lower> {
    let s = kv.value;
    let base = kv.value_pos;
    let mut t = Tok { s, pos: 0 };
    let mut toks = Vec::new();
    for _ in 0..6 {
        match t.next(b", ") {
            Some(x) => toks.push(x),
            None => {
                return Err(Perr::new(
                    base,
                    format!("{s}: not enough arguments to multipath action"),
                ))
            }
        }
    }
    let (fields_s, fpos) = toks[0];
    let fields = hash_fields(fields_s)
        .ok_or_else(|| Perr::new(base + fpos, format!("{s}: unknown fields `{fields_s}'")))?;
    let basis = atoi(toks[1].0) as u16;
    let (alg_s, apos) = toks[2];
    let algorithm = MultipathAlgorithm::ALL
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(alg_s))
        .ok_or_else(|| Perr::new(base + apos, format!("{s}: unknown algorithm `{alg_s}'")))?;
    let n_links = atoi(toks[3].0);
    if !(1..=65536).contains(&n_links) {
        return Err(Perr::new(
            base + toks[3].1,
            format!("{s}: n_links {n_links} is not in valid range 1 to 65536"),
        ));
    }
    let arg = atoi(toks[4].0) as u32;
    let (dst_s, dpos) = toks[5];
    let (name, def, dst) = dst_subfield(dst_s, base + dpos)?;
    if dst.n_bits < 16 && n_links > (1i64 << dst.n_bits) {
        return Err(Perr::new(
            base + dpos,
            format!(
                "{s}: {}-bit destination field has {} possible values, less than specified n_links {n_links}",
                dst.n_bits,
                1u32 << dst.n_bits
            ),
        ));
    }
    Ok(Lower::Multipath {
        fields,
        basis,
        algorithm,
        n_links: n_links as u32,
        arg,
        name,
        def,
        dst,
    })
}

/// `bundle(fields, basis, algorithm, ofport, members:P,...)` and, with
/// `load`, `bundle_load(fields, basis, algorithm, ofport, dst,
/// members:P,...)`.
pub(super) fn parse_bundle(kv: &Kv, load: bool) -> PResult<Lower> {
    let s = kv.value;
    let base = kv.value_pos;
    let what = if load { "bundle_load" } else { "bundle" };
    let mut t = Tok { s, pos: 0 };
    let fields = t.next(b", ");
    let basis = t.next(b", ");
    let algorithm = t.next(b", ");
    let member_type = t.next(b", ");
    let dst = if load { t.next(b", ") } else { None };
    let delim = t.next(b": ");
    let (Some((fields_s, fpos)), Some((basis_s, _)), Some((alg_s, apos)), Some((mt, mpos))) =
        (fields, basis, algorithm, member_type)
    else {
        return Err(Perr::new(
            base,
            format!("{s}: not enough arguments to {what} action"),
        ));
    };
    if load && dst.is_none() {
        return Err(Perr::new(
            base,
            format!("{s}: not enough arguments to {what} action"),
        ));
    }
    let Some((delim_s, dlpos)) = delim else {
        return Err(Perr::new(
            base,
            format!("{s}: not enough arguments to {what} action"),
        ));
    };
    if !delim_s.eq_ignore_ascii_case("members") && !delim_s.eq_ignore_ascii_case("slaves") {
        return Err(Perr::new(
            base + dlpos,
            format!("{s}: missing member delimiter, expected `members', got `{delim_s}'"),
        ));
    }
    let mut members = Vec::new();
    while members.len() < BUNDLE_MAX_MEMBERS {
        let Some((m, mp)) = t.next(b", []") else {
            break;
        };
        let port = parse_port_number(m)
            .map_err(|_| Perr::new(base + mp, format!("{m}: bad port number")))?;
        if port == OFPP_CONTROLLER {
            return Err(Perr::new(
                base + mp,
                format!("{m}: a {what} member cannot be CONTROLLER (OFPBAC_BAD_OUT_PORT)"),
            ));
        }
        members.push(port);
    }
    let fields = hash_fields(fields_s)
        .ok_or_else(|| Perr::new(base + fpos, format!("{s}: unknown fields `{fields_s}'")))?;
    let algorithm = match alg_s.to_ascii_lowercase().as_str() {
        "active_backup" => BundleAlgorithm::ActiveBackup,
        "hrw" => BundleAlgorithm::Hrw,
        _ => {
            return Err(Perr::new(
                base + apos,
                format!("{s}: unknown algorithm `{alg_s}'"),
            ))
        }
    };
    if !mt.eq_ignore_ascii_case("ofport") {
        return Err(Perr::new(
            base + mpos,
            format!("{s}: unknown member_type `{mt}'"),
        ));
    }
    let dst = match dst {
        Some((d, dp)) => {
            let (name, def, sf) = dst_subfield(d, base + dp)?;
            if sf.n_bits < 16 {
                return Err(Perr::new(
                    base + dp,
                    format!("{d}: bundle_load action requires at least 16 bit destination"),
                ));
            }
            Some((name, def, sf))
        }
        None => None,
    };
    Ok(Lower::Bundle {
        fields,
        basis: atoi(basis_s) as u16,
        algorithm,
        members,
        dst,
    })
}

#[cfg(test)]
mod tests {
    use super::atoi;

    #[test]
    fn atoi_reads_like_c() {
        assert_eq!(atoi("50"), 50);
        assert_eq!(atoi("  7x"), 7);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("-3"), -3);
    }
}
