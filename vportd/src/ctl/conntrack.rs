//! The conntrack commands (OVS `dpctl/dump-conntrack`,
//! `dpctl/flush-conntrack`, `dpctl/ct-stats-show`, `dpctl/ct-get-limits`,
//! `dpctl/ct-set-limits`, `dpctl/ct-del-limits`, `dpctl/ct-set-maxconns`,
//! `dpctl/ct-get-maxconns`, `dpctl/ct-get-nconns`).

use super::commands::{out, CmdResult};
use super::Server;
use conntrack::{ConnInfo, Conntrack};
use serde::Serialize;
use std::fmt::Write;
use std::sync::Arc;

fn tracker(s: &Server) -> Result<Arc<Conntrack>, String> {
    let g = s.switch.datapath.lock();
    g.as_ref()
        .map(|dp| dp.conntrack.clone())
        .ok_or_else(|| "the datapath is shut down".to_string())
}

/// `zone=N` among `args` (the only argument these commands take besides
/// their own).
fn zone_arg(cmd: &str, args: &[String]) -> Result<Option<u16>, String> {
    let mut zone = None;
    for a in args {
        match a.strip_prefix("zone=") {
            Some(z) => {
                zone = Some(
                    z.parse::<u16>()
                        .map_err(|_| format!("{cmd}: zone={z}: not a zone (0..65535)"))?,
                )
            }
            None => {
                return Err(format!(
                    "{cmd}: unexpected argument {a:?} (usage: {cmd} [zone=N])"
                ))
            }
        }
    }
    Ok(zone)
}

#[derive(Debug, Serialize)]
struct TupleJson {
    src: String,
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
}

#[derive(Debug, Serialize)]
struct ConnJson {
    proto: u8,
    ipv6: bool,
    orig: TupleJson,
    reply: TupleJson,
    zone: u16,
    mark: u32,
    labels: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_state: Option<String>,
    expires_in_ms: u64,
    /// The line `dump-conntrack` prints.
    text: String,
}

fn tuple_json(k: &conntrack::ConnKey) -> TupleJson {
    let addr = |a: &[u8; 16]| {
        if k.v6 {
            flowcache::text::ipv6(a)
        } else {
            flowcache::text::ipv4(u32::from_be_bytes([a[12], a[13], a[14], a[15]]))
        }
    };
    let icmp = k.is_icmp();
    let ports = k.has_ports();
    TupleJson {
        src: addr(&k.src),
        dst: addr(&k.dst),
        sport: ports.then_some(k.sport),
        dport: ports.then_some(k.dport),
        icmp_id: icmp.then_some(k.sport),
        icmp_type: icmp.then_some((k.dport >> 8) as u8),
        icmp_code: icmp.then_some(k.dport as u8),
    }
}

fn conn_json(c: &ConnInfo) -> ConnJson {
    ConnJson {
        proto: c.orig.proto,
        ipv6: c.orig.v6,
        orig: tuple_json(&c.orig),
        reply: tuple_json(&c.reply),
        zone: c.zone,
        mark: c.mark,
        labels: format!("{:#x}", c.label),
        tcp_state: c.tcp.map(|(a, _)| a.name().to_string()),
        expires_in_ms: c.expires_in_ms,
        text: conntrack::format_conn(c),
    }
}

/// `dump-conntrack [zone=N]`: one connection per line, OVS format.
pub fn dump(s: &Server, args: &[String]) -> CmdResult {
    let zone = zone_arg("dump-conntrack", args)?;
    let ct = tracker(s)?;
    let conns = ct.dump(zone, pmd::datapath::clock::now_ms());
    let mut text = String::new();
    let mut lines: Vec<ConnJson> = conns.iter().map(conn_json).collect();
    lines.sort_by(|a, b| a.text.cmp(&b.text));
    for c in &lines {
        let _ = writeln!(text, "{}", c.text);
    }
    out(text, &lines)
}

#[derive(Debug, Serialize)]
struct Flushed {
    flushed: usize,
}

/// An OVS `ct-orig-tuple` (`ct_nw_src=A,ct_nw_dst=B,ct_nw_proto=P,
/// ct_tp_src=S,ct_tp_dst=D`, or `ct_ipv6_src=`/`ct_ipv6_dst=`, and for ICMP
/// `icmp_id=,icmp_type=,icmp_code=`) as a connection key of `zone`.
fn parse_tuple(s: &str, zone: u16) -> Result<conntrack::ConnKey, String> {
    let mut k = conntrack::ConnKey {
        zone,
        ..Default::default()
    };
    let (mut icmp_type, mut icmp_code) = (None, 0u8);
    let bad = |f: &str| format!("flush-conntrack: bad tuple field {f:?}");
    for f in s.split(',') {
        let (name, v) = f.split_once('=').ok_or_else(|| bad(f))?;
        let v4 = |v: &str| -> Result<[u8; 16], String> {
            let a: std::net::Ipv4Addr = v.parse().map_err(|_| bad(f))?;
            let mut b = [0u8; 16];
            b[12..].copy_from_slice(&a.octets());
            Ok(b)
        };
        let v6 = |v: &str| -> Result<[u8; 16], String> {
            let a: std::net::Ipv6Addr = v.parse().map_err(|_| bad(f))?;
            Ok(a.octets())
        };
        match name {
            "ct_nw_src" => k.src = v4(v)?,
            "ct_nw_dst" => k.dst = v4(v)?,
            "ct_ipv6_src" => (k.src, k.v6) = (v6(v)?, true),
            "ct_ipv6_dst" => (k.dst, k.v6) = (v6(v)?, true),
            "ct_nw_proto" => k.proto = v.parse().map_err(|_| bad(f))?,
            "ct_tp_src" => k.sport = v.parse().map_err(|_| bad(f))?,
            "ct_tp_dst" => k.dport = v.parse().map_err(|_| bad(f))?,
            "icmp_id" => k.sport = v.parse().map_err(|_| bad(f))?,
            "icmp_type" => icmp_type = Some(v.parse::<u8>().map_err(|_| bad(f))?),
            "icmp_code" => icmp_code = v.parse().map_err(|_| bad(f))?,
            _ => return Err(bad(f)),
        }
    }
    if let Some(t) = icmp_type {
        k.dport = u16::from(t) << 8 | u16::from(icmp_code);
    }
    if k.proto == 0 {
        return Err("flush-conntrack: the tuple needs ct_nw_proto".into());
    }
    Ok(k)
}

/// `flush-conntrack [zone=N] [TUPLE]`: every connection, those of zone N,
/// or the one whose original (or reply) direction is TUPLE.
pub fn flush(s: &Server, args: &[String]) -> CmdResult {
    let usage = "usage: flush-conntrack [zone=N] [ct_nw_src=A,ct_nw_dst=B,ct_nw_proto=P,ct_tp_src=S,ct_tp_dst=D]";
    let (mut zone, mut tuple) = (None, None);
    for a in args {
        if let Some(z) = a.strip_prefix("zone=") {
            zone = Some(
                z.parse::<u16>()
                    .map_err(|_| format!("flush-conntrack: zone={z}: not a zone ({usage})"))?,
            );
        } else if a.starts_with("ct_") {
            tuple = Some(a.clone());
        } else {
            return Err(format!(
                "flush-conntrack: unexpected argument {a:?} ({usage})"
            ));
        }
    }
    let key = match &tuple {
        Some(t) => Some(parse_tuple(t, zone.unwrap_or(0))?),
        None => None,
    };
    let n = tracker(s)?.flush(zone, key.as_ref());
    out(
        format!("flushed {n} connection(s)\n"),
        &Flushed { flushed: n },
    )
}

#[derive(Debug, Serialize)]
struct Stats {
    connections: u32,
    max_connections: u32,
    by_protocol: std::collections::BTreeMap<String, usize>,
    by_tcp_state: std::collections::BTreeMap<String, usize>,
    counters: std::collections::BTreeMap<&'static str, u64>,
}

fn proto_name(p: u8, v6: bool) -> String {
    match (p, v6) {
        (6, _) => "TCP".into(),
        (17, _) => "UDP".into(),
        (132, _) => "SCTP".into(),
        (1, false) => "ICMP".into(),
        (58, true) => "ICMPv6".into(),
        (p, _) => format!("proto {p}"),
    }
}

/// `ct-stats-show [zone=N]`: connections by protocol (and TCP state), the
/// tracker's counters.
pub fn stats(s: &Server, args: &[String]) -> CmdResult {
    let zone = zone_arg("ct-stats-show", args)?;
    let ct = tracker(s)?;
    let conns = ct.dump(zone, pmd::datapath::clock::now_ms());
    let mut d = Stats {
        connections: conns.len() as u32,
        max_connections: ct.max_conns(),
        by_protocol: Default::default(),
        by_tcp_state: Default::default(),
        counters: ct
            .counters()
            .list()
            .into_iter()
            .map(|(n, _, v)| (n, v))
            .collect(),
    };
    for c in &conns {
        *d.by_protocol
            .entry(proto_name(c.orig.proto, c.orig.v6))
            .or_default() += 1;
        if let Some((a, _)) = c.tcp {
            *d.by_tcp_state.entry(a.name().to_string()).or_default() += 1;
        }
    }
    let mut t = format!("Connections Stats:\n    Total: {}\n", d.connections);
    for (p, n) in &d.by_protocol {
        let _ = writeln!(t, "    {p}: {n}");
        if p == "TCP" {
            for (st, m) in &d.by_tcp_state {
                let _ = writeln!(t, "      {st}: {m}");
            }
        }
    }
    let _ = writeln!(t, "Limit: {}", d.max_connections);
    let _ = writeln!(t, "Counters:");
    for (n, v) in &d.counters {
        let _ = writeln!(t, "    {n}: {v}");
    }
    out(t, &d)
}

#[derive(Debug, Serialize)]
struct Limit {
    zone: Option<u16>,
    limit: u32,
    count: Option<u32>,
}

/// `ct-get-limits [zone=N[,zone=M...]]`: OVS's `default limit=N` line and
/// one `zone=N,limit=M,count=C` line per zone.
pub fn get_limits(s: &Server, args: &[String]) -> CmdResult {
    let ct = tracker(s)?;
    let mut zones: Vec<u16> = Vec::new();
    for a in args.iter().flat_map(|a| a.split(',')) {
        match a.strip_prefix("zone=").map(str::parse::<u16>) {
            Some(Ok(z)) => zones.push(z),
            _ => {
                return Err(format!(
                    "ct-get-limits: bad argument {a:?} (usage: ct-get-limits [zone=N[,zone=M]...])"
                ))
            }
        }
    }
    let (default, own) = ct.zone_limits();
    let mut v = vec![Limit {
        zone: None,
        limit: default,
        count: None,
    }];
    if zones.is_empty() {
        v.extend(own.iter().map(|z| Limit {
            zone: Some(z.zone),
            limit: z.limit,
            count: Some(z.count),
        }));
    } else {
        for z in zones {
            let limit = own
                .iter()
                .find(|l| l.zone == z)
                .map_or(default, |l| l.limit);
            v.push(Limit {
                zone: Some(z),
                limit,
                count: Some(ct.zone_count(z)),
            });
        }
    }
    let mut t = String::new();
    for l in &v {
        match l.zone {
            None => {
                let _ = writeln!(t, "default limit={}", l.limit);
            }
            Some(z) => {
                let _ = writeln!(
                    t,
                    "zone={z},limit={},count={}",
                    l.limit,
                    l.count.unwrap_or(0)
                );
            }
        }
    }
    out(t, &v)
}

/// `ct-set-limits [default=N] [zone=Z,limit=N]...` (0 = unlimited).
pub fn set_limits(s: &Server, args: &[String]) -> CmdResult {
    let ct = tracker(s)?;
    let usage = "usage: ct-set-limits [default=N] [zone=Z,limit=N]...";
    if args.is_empty() {
        return Err(format!("ct-set-limits: nothing to set ({usage})"));
    }
    let mut todo = Vec::new();
    for a in args {
        if let Some(n) = a.strip_prefix("default=") {
            let n: u32 = n
                .parse()
                .map_err(|_| format!("ct-set-limits: {a:?}: bad limit ({usage})"))?;
            todo.push((None, n));
            continue;
        }
        let (mut zone, mut limit) = (None, None);
        for kv in a.split(',') {
            match kv.split_once('=') {
                Some(("zone", z)) => zone = z.parse::<u32>().ok(),
                Some(("limit", l)) => limit = l.parse::<u32>().ok(),
                _ => return Err(format!("ct-set-limits: {a:?}: bad argument ({usage})")),
            }
        }
        match (zone, limit) {
            (Some(z), Some(l)) => todo.push((Some(z), l)),
            _ => {
                return Err(format!(
                    "ct-set-limits: {a:?}: needs zone= and limit= ({usage})"
                ))
            }
        }
    }
    for (z, l) in &todo {
        ct.set_zone_limit(*z, *l)
            .map_err(|e| format!("ct-set-limits: {e}"))?;
    }
    get_limits(s, &[])
}

/// `ct-del-limits zone=Z[,zone=Z...]`: back to the default limit.
pub fn del_limits(s: &Server, args: &[String]) -> CmdResult {
    let ct = tracker(s)?;
    if args.is_empty() {
        return Err("ct-del-limits: usage: ct-del-limits zone=Z[,zone=Z...]".into());
    }
    for a in args.iter().flat_map(|a| a.split(',')) {
        let z = a
            .strip_prefix("zone=")
            .and_then(|z| z.parse::<u32>().ok())
            .ok_or_else(|| format!("ct-del-limits: bad argument {a:?}"))?;
        ct.del_zone_limit(z)
            .map_err(|e| format!("ct-del-limits: {e}"))?;
    }
    get_limits(s, &[])
}

#[derive(Debug, Serialize)]
struct MaxConns {
    max_connections: u32,
}

/// `ct-set-maxconns N`.
pub fn set_maxconns(s: &Server, args: &[String]) -> CmdResult {
    let ct = tracker(s)?;
    let [n] = args else {
        return Err("ct-set-maxconns: usage: ct-set-maxconns N".into());
    };
    let n: u32 = n
        .parse()
        .map_err(|_| format!("ct-set-maxconns: {n:?} is not a number"))?;
    ct.set_max_conns(n);
    out(
        "setting maxconns successful\n".into(),
        &MaxConns { max_connections: n },
    )
}

/// `ct-get-maxconns`.
pub fn get_maxconns(s: &Server) -> CmdResult {
    let n = tracker(s)?.max_conns();
    out(format!("{n}\n"), &MaxConns { max_connections: n })
}

#[derive(Debug, Serialize)]
struct NConns {
    connections: u32,
}

/// `ct-get-nconns`.
pub fn get_nconns(s: &Server) -> CmdResult {
    let n = tracker(s)?.len();
    out(format!("{n}\n"), &NConns { connections: n })
}

/// One Prometheus sample: (name, help, kind, labels, value).
pub type Sample = (
    String,
    &'static str,
    &'static str,
    Vec<(&'static str, String)>,
    f64,
);

/// The tracker's Prometheus samples.
pub fn metrics(s: &Server) -> Vec<Sample> {
    let Ok(ct) = tracker(s) else {
        return Vec::new();
    };
    let mut v = vec![
        (
            "vportd_conntrack_connections".to_string(),
            "Connections in the conntrack table.",
            "gauge",
            vec![],
            f64::from(ct.len()),
        ),
        (
            "vportd_conntrack_max_connections".to_string(),
            "The conntrack table's global limit (ct-set-maxconns).",
            "gauge",
            vec![],
            f64::from(ct.max_conns()),
        ),
    ];
    for (name, help, val) in ct.counters().list() {
        v.push((
            format!("vportd_conntrack_{name}_total"),
            help,
            "counter",
            vec![],
            val as f64,
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::parse_tuple;

    #[test]
    fn tuples_as_ovs_writes_them() {
        let k = parse_tuple(
            "ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=17,ct_tp_src=1000,ct_tp_dst=53",
            7,
        )
        .unwrap();
        assert_eq!(
            (k.src4(), k.dst4(), k.proto, k.sport, k.dport, k.zone),
            (0x0a000001, 0x0a000002, 17, 1000, 53, 7)
        );
        let k = parse_tuple("ct_ipv6_src=fd00::1,ct_ipv6_dst=fd00::2,ct_nw_proto=58,icmp_id=5,icmp_type=128,icmp_code=0", 0).unwrap();
        assert!(k.v6);
        assert_eq!((k.sport, k.dport), (5, 128 << 8));
        assert!(parse_tuple("ct_nw_src=10.0.0.1", 0).is_err());
        assert!(parse_tuple("ct_nw_src=10.0.0.999,ct_nw_proto=6", 0).is_err());
        assert!(parse_tuple("bogus=1,ct_nw_proto=6", 0).is_err());
    }
}
