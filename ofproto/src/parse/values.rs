//! Scalar syntax: integers, MAC/IPv4/IPv6 addresses with masks, port names,
//! `nw_frag` and `tcp_flags` values; and their OVS-style formatting.

use super::fields::{Def, Fmt};
use crate::fields::FieldId;
use crate::ofp_port::{OFPP_MAX, PORT_NAMES};
use crate::rule::OutputPort;
use std::net::Ipv6Addr;

/// Parses an unsigned integer like C's `strtoull(s, NULL, 0)` as OVS uses
/// it: `0x` hex, a leading `0` means octal, otherwise decimal.  No sign, no
/// white space, nothing after the number.
pub(crate) fn parse_uint(s: &str) -> Option<u128> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let h = h.trim_start_matches('0');
        if h.is_empty() {
            return Some(0);
        }
        return u128::from_str_radix(h, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return u128::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

/// Parses an integer that must fit in `bits` bits.
pub(crate) fn parse_uint_bits(s: &str, what: &str, bits: u32) -> Result<u128, String> {
    let v = parse_uint(s).ok_or_else(|| format!("{s}: invalid number for {what}"))?;
    if bits < 128 && v >> bits != 0 {
        return Err(format!(
            "{s}: value too large for {what} (maximum {})",
            (1u128 << bits) - 1
        ));
    }
    Ok(v)
}

pub(crate) fn parse_u8(s: &str, what: &str) -> Result<u8, String> {
    parse_uint_bits(s, what, 8).map(|v| v as u8)
}

pub(crate) fn parse_u16(s: &str, what: &str) -> Result<u16, String> {
    parse_uint_bits(s, what, 16).map(|v| v as u16)
}

pub(crate) fn parse_u32(s: &str, what: &str) -> Result<u32, String> {
    parse_uint_bits(s, what, 32).map(|v| v as u32)
}

pub(crate) fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    parse_uint_bits(s, what, 64).map(|v| v as u64)
}

/// `a.b.c.d` with decimal octets.
pub(crate) fn parse_ipv4(s: &str) -> Option<u32> {
    let mut out = 0u32;
    let mut n = 0;
    for part in s.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: u32 = part.parse().ok()?;
        if v > 255 {
            return None;
        }
        out = (out << 8) | v;
        n += 1;
    }
    (n == 4).then_some(out)
}

fn prefix_mask(bits: u32, width: u32) -> u128 {
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    if bits == 0 {
        0
    } else {
        (all << (width - bits)) & all
    }
}

/// `a.b.c.d`, `a.b.c.d/N` or `a.b.c.d/m.m.m.m`.
pub(crate) fn parse_ipv4_masked(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s}: invalid IP address");
    match s.split_once('/') {
        None => Ok((parse_ipv4(s).ok_or_else(bad)?, u32::MAX)),
        Some((a, m)) => {
            let a = parse_ipv4(a).ok_or_else(bad)?;
            if m.contains('.') {
                Ok((a, parse_ipv4(m).ok_or_else(bad)?))
            } else {
                let n = parse_uint(m).filter(|n| *n <= 32).ok_or_else(|| {
                    format!("{s}: IPv4 network prefix bits not between 0 and 32, inclusive")
                })?;
                Ok((a, prefix_mask(n as u32, 32) as u32))
            }
        }
    }
}

pub(crate) fn parse_ipv6(s: &str) -> Option<u128> {
    s.parse::<Ipv6Addr>().ok().map(u128::from)
}

/// `addr`, `addr/N` or `addr/mask`.
pub(crate) fn parse_ipv6_masked(s: &str) -> Result<(u128, u128), String> {
    let bad = || format!("{s}: invalid IPv6 address");
    match s.split_once('/') {
        None => Ok((parse_ipv6(s).ok_or_else(bad)?, u128::MAX)),
        Some((a, m)) => {
            let a = parse_ipv6(a).ok_or_else(bad)?;
            if m.contains(':') {
                Ok((a, parse_ipv6(m).ok_or_else(bad)?))
            } else {
                let n = parse_uint(m).filter(|n| *n <= 128).ok_or_else(|| {
                    format!("{s}: IPv6 network prefix bits not between 0 and 128, inclusive")
                })?;
                Ok((a, prefix_mask(n as u32, 128)))
            }
        }
    }
}

/// `xx:xx:xx:xx:xx:xx` (1 or 2 hex digits per byte), as a 48-bit number.
pub(crate) fn parse_mac(s: &str) -> Option<u128> {
    let mut out = 0u128;
    let mut n = 0;
    for part in s.split(':') {
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        out = (out << 8) | u128::from(u8::from_str_radix(part, 16).ok()?);
        n += 1;
    }
    (n == 6).then_some(out)
}

pub(crate) fn parse_mac_masked(s: &str) -> Result<(u128, u128), String> {
    let bad = || format!("{s}: invalid Ethernet address");
    match s.split_once('/') {
        None => Ok((parse_mac(s).ok_or_else(bad)?, 0xffff_ffff_ffff)),
        Some((a, m)) => Ok((parse_mac(a).ok_or_else(bad)?, parse_mac(m).ok_or_else(bad)?)),
    }
}

/// A port number (decimal, below 0xff00) or a reserved port name
/// (case-insensitive), as an OpenFlow 1.0 16-bit number.
pub(crate) fn parse_port_number(s: &str) -> Result<u32, String> {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return match s.parse::<u32>() {
            Ok(n) if n < OFPP_MAX => Ok(n),
            _ => Err(format!(
                "{s}: port number out of range (0 to 65279, or a name such as IN_PORT or LOCAL)"
            )),
        };
    }
    PORT_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
        .or_else(|| super::port_names::lookup(s))
        .ok_or_else(|| format!("{s}: unknown port"))
}

/// Port as an output destination.
pub(crate) fn port_to_output(p: u32) -> Option<OutputPort> {
    if p < OFPP_MAX {
        return Some(OutputPort::Port(p));
    }
    OutputPort::reserved(p)
}

/// OVS `ofputil_format_port` for a 16-bit port.
pub(crate) fn fmt_port(p: u32) -> String {
    if p < OFPP_MAX {
        return p.to_string();
    }
    match PORT_NAMES.iter().find(|(_, v)| *v == p) {
        Some((n, _)) => n.to_string(),
        None => p.to_string(),
    }
}

/// `nw_frag` keywords -> (value, mask), as OVS's `all_frags` table.
pub(crate) fn parse_frag(s: &str) -> Result<(u128, u128), String> {
    let t = [
        ("no", 0, 3),
        ("first", 1, 3),
        ("later", 3, 3),
        ("yes", 1, 1),
        ("not_later", 0, 2),
    ];
    t.iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v, m)| (*v, *m))
        .ok_or_else(|| {
            format!(
                "{s}: unknown fragment type (valid types are \"no\", \"yes\", \"first\", \
                 \"later\", \"not_later\")"
            )
        })
}

const TCP_FLAG_NAMES: [&str; 12] = [
    "fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns", "[200]", "[400]", "[800]",
];

fn tcp_flag_bit(name: &str) -> Option<u32> {
    TCP_FLAG_NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| 1u32 << i)
}

/// `tcp_flags` values: `0x012`, `0x002/0x012`, `+syn-ack`, `syn|ack`.
/// `ct_state` flag names in bit order (OVS `ct_state_to_string`).
pub(crate) const CT_STATE_FLAGS: [(&str, u8); 8] = [
    ("new", 0x01),
    ("est", 0x02),
    ("rel", 0x04),
    ("rpl", 0x08),
    ("inv", 0x10),
    ("trk", 0x20),
    ("snat", 0x40),
    ("dnat", 0x80),
];

/// `ct_state`: `+trk+new-rpl` (set/unset flags), `VALUE/MASK`, a bare
/// number, or `new|trk` (exactly those flags, as an exact match prints).
pub(crate) fn parse_ct_state(s: &str) -> Result<(u128, u128), String> {
    if s.starts_with('+') || s.starts_with('-') {
        let (mut flags, mut mask) = (0u128, 0u128);
        let mut rest = s;
        while !rest.is_empty() {
            let set = rest.starts_with('+');
            if !set && !rest.starts_with('-') {
                return Err(format!(
                    "{s}: ct_state flags must be preceded by '+' (for SET) or '-' (NOT SET)"
                ));
            }
            rest = &rest[1..];
            let len = rest.find(['+', '-']).unwrap_or(rest.len());
            let name = &rest[..len];
            let bit = CT_STATE_FLAGS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| u128::from(*b))
                .ok_or_else(|| format!("{s}: unknown ct_state flag `{name}'"))?;
            if mask & bit != 0 {
                return Err(format!(
                    "{s}: each ct_state flag can be specified only once"
                ));
            }
            mask |= bit;
            if set {
                flags |= bit;
            }
            rest = &rest[len..];
        }
        return Ok((flags, mask));
    }
    let bad = || format!("{s}: invalid ct_state value");
    match s.split_once('/') {
        Some((v, m)) => {
            let v = parse_uint(v).ok_or_else(bad)?;
            let m = parse_uint(m).ok_or_else(bad)?;
            if v > 0xff || m > 0xff {
                return Err(bad());
            }
            Ok((v & m, m))
        }
        None => {
            if let Some(v) = parse_uint(s) {
                if v > 0xff {
                    return Err(bad());
                }
                return Ok((v, 0xff));
            }
            // `new|trk`: exactly these flags set, every other one clear
            // (how an exact ct_state is printed).
            let mut flags = 0u128;
            for name in s.split('|') {
                let (_, bit) = CT_STATE_FLAGS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(bad)?;
                flags |= u128::from(*bit);
            }
            Ok((flags, 0xff))
        }
    }
}

pub(crate) fn parse_tcp_flags(s: &str) -> Result<(u128, u128), String> {
    const ALLOWED: u128 = 0x0fff;
    let unknown = || format!("{s}: unknown tcp_flags flag or invalid value");
    if s.starts_with('+') || s.starts_with('-') {
        let (mut flags, mut mask) = (0u128, 0u128);
        let mut rest = s;
        while !rest.is_empty() {
            let set = rest.starts_with('+');
            if !set && !rest.starts_with('-') {
                return Err(format!(
                    "{s}: tcp_flags must be preceded by '+' (for SET) or '-' (NOT SET)"
                ));
            }
            rest = &rest[1..];
            let len = rest.find(['+', '-']).unwrap_or(rest.len());
            let bit = u128::from(tcp_flag_bit(&rest[..len]).ok_or_else(unknown)?);
            if mask & bit != 0 {
                return Err(format!(
                    "{s}: Each tcp_flags flag can be specified only once"
                ));
            }
            mask |= bit;
            if set {
                flags |= bit;
            }
            rest = &rest[len..];
        }
        return Ok((flags, mask));
    }
    if let Some((v, m)) = s.split_once('/') {
        let v = parse_uint(v).ok_or_else(unknown)?;
        let m = parse_uint(m).ok_or_else(unknown)?;
        if v & !ALLOWED != 0 || m & !ALLOWED != 0 {
            return Err(unknown());
        }
        return Ok((v & m, m));
    }
    let mut flags = 0u128;
    for part in s.split('|') {
        if let Some(v) = parse_uint(part) {
            if v & !ALLOWED != 0 {
                return Err(unknown());
            }
            flags |= v;
        } else {
            flags |= u128::from(tcp_flag_bit(part).ok_or_else(unknown)?);
        }
    }
    Ok((flags, ALLOWED))
}

/// OVS `format_flags_masked` for TCP flags (mask limited to 12 bits).
pub(crate) fn fmt_tcp_flags(flags: u16, mask: u16) -> String {
    let (flags, mask) = (flags & 0x0fff, mask & 0x0fff);
    let mut s = String::new();
    if mask == 0x0fff {
        if flags == 0 {
            return "0".into();
        }
        let names: Vec<&str> = (0..12)
            .filter(|i| flags & (1 << i) != 0)
            .map(|i| TCP_FLAG_NAMES[i])
            .collect();
        return names.join("|");
    }
    if mask == 0 {
        return "0/0".into();
    }
    for (i, name) in TCP_FLAG_NAMES.iter().enumerate() {
        if mask & (1 << i) != 0 {
            s.push(if flags & (1 << i) != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

/// OVS `format_flags_masked` for `ct_state`.
pub(crate) fn fmt_ct_state(flags: u8, mask: u8) -> String {
    if mask == 0xff {
        if flags == 0 {
            return "0".into();
        }
        let names: Vec<&str> = CT_STATE_FLAGS
            .iter()
            .filter(|(_, b)| flags & b != 0)
            .map(|(n, _)| *n)
            .collect();
        return names.join("|");
    }
    if mask == 0 {
        return "0/0".into();
    }
    let mut s = String::new();
    for (name, b) in CT_STATE_FLAGS {
        if mask & b != 0 {
            s.push(if flags & b != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

/// Hex as OVS's `%#x` / `ds_put_hex`: `0` for zero, else `0x...`.
pub(crate) fn hex(v: u128) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

pub(crate) fn fmt_mac(v: u128) -> String {
    let b = (v as u64).to_be_bytes();
    flowcache::text::mac(&[b[2], b[3], b[4], b[5], b[6], b[7]])
}

pub(crate) fn fmt_ipv4(v: u32) -> String {
    flowcache::text::ipv4(v)
}

/// IPv6 text exactly as glibc's `inet_ntop` (which OVS uses).
pub(crate) fn fmt_ipv6(v: u128) -> String {
    flowcache::text::ipv6(&v.to_be_bytes())
}

/// Number of leading one bits if `mask` (of `width` bits) is a prefix mask.
pub(crate) fn cidr_bits(mask: u128, width: u32) -> Option<u32> {
    let n = mask.count_ones();
    (n <= width && mask == prefix_mask(n, width)).then_some(n)
}

/// Parses a field value with optional mask (`V`, `V/M`, `*`), in the
/// field's syntax.  Returns (value, mask) in field-value space; the value
/// is not yet ANDed with the mask.
pub(crate) fn parse_field_value(def: &Def, name: &str, s: &str) -> Result<(u128, u128), String> {
    let id = def.id;
    if s == "*" {
        return Ok((0, 0));
    }
    let full = id.max_value();
    let (v, m) = match def.fmt {
        Fmt::Dec | Fmt::Hex => {
            let (a, b) = match s.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (s, None),
            };
            let v = parse_uint(a).ok_or_else(|| format!("{s}: invalid value for {name}"))?;
            let m = match b {
                Some(b) => parse_uint(b).ok_or_else(|| format!("{s}: invalid mask for {name}"))?,
                None => full,
            };
            (v, m)
        }
        Fmt::Mac => parse_mac_masked(s)?,
        Fmt::Ipv4 => {
            let (v, m) = parse_ipv4_masked(s)?;
            (u128::from(v), u128::from(m))
        }
        Fmt::Ipv6 => parse_ipv6_masked(s)?,
        Fmt::Port => (u128::from(parse_port_number(s)?), full),
        Fmt::Frag => parse_frag(s)?,
        Fmt::TcpFlags => parse_tcp_flags(s)?,
        Fmt::CtState => parse_ct_state(s)?,
    };
    let valid = id.valid_mask();
    if v & !valid != 0 {
        return Err(match id {
            FieldId::NwTos => {
                format!("{s}: nw_tos must be a multiple of 4 below 256 (ECN bits are nw_ecn)")
            }
            _ => format!(
                "{s}: value too large for {name} (maximum {})",
                fmt_plain(def.fmt, valid)
            ),
        });
    }
    if m & !full != 0 {
        return Err(format!("{s}: mask too large for {name}"));
    }
    if !def.maskable && m != full && m != 0 {
        return Err(format!("{s}: {name} cannot be masked"));
    }
    Ok((v, m & valid))
}

fn fmt_plain(fmt: Fmt, v: u128) -> String {
    match fmt {
        Fmt::Hex => hex(v),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("42"), Some(42));
        assert_eq!(parse_uint("0x2a"), Some(42));
        assert_eq!(parse_uint("0X00002A"), Some(42));
        assert_eq!(parse_uint("010"), Some(8));
        assert_eq!(parse_uint("08"), None);
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("+1"), None);
        assert_eq!(parse_uint("0x"), None);
        assert_eq!(parse_uint(""), None);
        assert_eq!(parse_uint("1 "), None);
        assert_eq!(parse_uint(&format!("0x{}", "f".repeat(33))), None);
        assert!(parse_u16("70000", "tp_dst")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_ipv4("10.0.0.1"), Some(0x0a00_0001));
        assert_eq!(parse_ipv4("10.0.0.256"), None);
        assert_eq!(parse_ipv4("10.0.0"), None);
        assert_eq!(
            parse_ipv4_masked("10.2.0.0/16").unwrap(),
            (0x0a02_0000, 0xffff_0000)
        );
        assert_eq!(
            parse_ipv4_masked("10.2.0.0/255.255.0.0").unwrap().1,
            0xffff_0000
        );
        assert_eq!(parse_ipv4_masked("0.0.0.0/0").unwrap().1, 0);
        assert!(parse_ipv4_masked("1.2.3.4/33").is_err());
        assert_eq!(parse_mac("1:2:3:4:5:ff"), Some(0x0102_0304_05ff));
        assert_eq!(parse_mac("01:02:03:04:05"), None);
        assert_eq!(
            parse_ipv6_masked("2001:db8::/64").unwrap().1,
            u128::MAX << 64
        );
        assert!(parse_ipv6_masked("2001:db8::/129").is_err());
    }

    #[test]
    fn ipv6_text_is_flowcache_text() {
        // The formatting itself is tested in flowcache::text.
        assert_eq!(
            fmt_ipv6(parse_ipv6("2001:db8:0:0:1:0:0:1").unwrap()),
            "2001:db8::1:0:0:1"
        );
    }

    #[test]
    fn flags_and_frags() {
        assert_eq!(parse_tcp_flags("+syn-ack").unwrap(), (0x002, 0x012));
        assert_eq!(parse_tcp_flags("0x002/0x012").unwrap(), (0x002, 0x012));
        assert_eq!(parse_tcp_flags("syn|ack").unwrap(), (0x012, 0xfff));
        assert_eq!(parse_tcp_flags("0x10").unwrap(), (0x010, 0xfff));
        assert!(parse_tcp_flags("+syn+syn").is_err());
        assert!(parse_tcp_flags("+bogus").is_err());
        assert_eq!(fmt_tcp_flags(0x002, 0x012), "+syn-ack");
        assert_eq!(fmt_tcp_flags(0x012, 0xfff), "syn|ack");
        assert_eq!(parse_frag("first").unwrap(), (1, 3));
        assert_eq!(parse_frag("not_later").unwrap(), (0, 2));
        assert!(parse_frag("maybe").is_err());
    }
}
