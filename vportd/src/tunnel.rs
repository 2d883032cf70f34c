//! Native tunnelling in the daemon: the tunnel port options
//! (`--port NAME=vxlan,remote_ip=...`), `--local-ip` and `--route`, and
//! the ARP requests translation asks for (sent on the underlay port's
//! control tx queue, one the PMDs never use). The datapath side is
//! `pmd::execute` (`tnl_push`, `tnl_pop`); the tables and the decisions
//! are `ofproto::tunnel`.

use flowcache::tunnel::TunnelKind;
use ofproto::tunnel::{Route, TunnelPort, DEFAULT_TTL};
use std::net::Ipv4Addr;

/// Parses the options of a tunnel port (what follows `NAME=KIND,`);
/// `ofport=` is left to the caller (returned).
pub fn parse_options<'a>(
    name: &str,
    kind: TunnelKind,
    opts: impl Iterator<Item = &'a str>,
) -> Result<(TunnelPort, Option<&'a str>), String> {
    let mut t = TunnelPort {
        name: name.to_string(),
        kind,
        remote_ip: None,
        local_ip: None,
        key: Some(0),
        gre_key: false,
        dst_port: kind.default_port(),
        ttl: DEFAULT_TTL,
        tos: Some(0),
        csum: false,
        df: true,
    };
    let mut remote = false;
    let mut ofport = None;
    for opt in opts {
        let (k, v) = opt
            .split_once('=')
            .ok_or_else(|| format!("option {opt:?} is not KEY=VALUE"))?;
        match k {
            "ofport" => ofport = Some(v),
            "remote_ip" => {
                remote = true;
                t.remote_ip = if v == "flow" { None } else { Some(ip(k, v)?) };
            }
            "local_ip" => t.local_ip = Some(ip(k, v)?),
            "key" | "in_key" | "out_key" => {
                if v == "flow" {
                    t.key = None;
                } else {
                    let n = parse_num(v).ok_or_else(|| format!("key {v:?} is not a number"))?;
                    let max = if kind == TunnelKind::Gre {
                        u64::from(u32::MAX)
                    } else {
                        0xff_ffff
                    };
                    if n > max {
                        return Err(format!("key {n} is over {max} for {}", kind.name()));
                    }
                    t.key = Some(n);
                }
                t.gre_key = true;
            }
            "dst_port" => {
                if kind == TunnelKind::Gre {
                    return Err("dst_port: GRE has no UDP port".into());
                }
                t.dst_port = v
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("dst_port {v:?} is not a port number"))?;
            }
            "ttl" => {
                t.ttl = v
                    .parse()
                    .ok()
                    .filter(|n| *n != 0)
                    .ok_or_else(|| format!("ttl {v:?} is not in 1..255"))?
            }
            "tos" => {
                t.tos = if v == "inherit" {
                    None
                } else {
                    Some(
                        parse_num(v)
                            .and_then(|n| u8::try_from(n).ok())
                            .ok_or_else(|| format!("tos {v:?} is not in 0..255 or inherit"))?,
                    )
                }
            }
            "csum" => t.csum = boolean(k, v)?,
            "df_default" => t.df = boolean(k, v)?,
            _ => {
                return Err(format!(
                    "unknown tunnel option {k:?} (remote_ip, local_ip, key, dst_port, ttl, tos, csum, df_default, ofport)"
                ))
            }
        }
    }
    if !remote {
        return Err(format!("a {} port needs remote_ip=IP|flow", kind.name()));
    }
    Ok((t, ofport))
}

fn ip(k: &str, v: &str) -> Result<u32, String> {
    v.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| format!("{k} {v:?} is not an IPv4 address"))
}

fn boolean(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{k} {v:?} is not true or false")),
    }
}

fn parse_num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// `IP/PREFIX` (a bare IP is a /32).
fn prefix(v: &str) -> Result<(u32, u8), String> {
    let (a, l) = v.split_once('/').unwrap_or((v, "32"));
    let len: u8 = l
        .parse()
        .ok()
        .filter(|n| *n <= 32)
        .ok_or_else(|| format!("prefix length {l:?} is not in 0..32"))?;
    Ok((ip("address", a)?, len))
}

/// One `--local-ip PORT=IP/PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIp {
    pub port: String,
    pub ip: u32,
    pub prefix_len: u8,
}

/// Parses `--local-ip PORT=IP/PREFIX`.
pub fn parse_local_ip(arg: &str) -> Result<LocalIp, String> {
    let e = |r: String| format!("--local-ip {arg:?}: {r}");
    let (port, v) = arg
        .split_once('=')
        .ok_or_else(|| e("expected PORT=IP/PREFIX".into()))?;
    let (ip, prefix_len) = prefix(v).map_err(e)?;
    Ok(LocalIp {
        port: port.to_string(),
        ip,
        prefix_len,
    })
}

/// One `--route PREFIX,via=GW,port=PORT`, the port by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteArg {
    pub prefix: u32,
    pub len: u8,
    pub via: Option<u32>,
    pub port: String,
}

/// Parses `--route PREFIX[,via=GW],port=PORT`.
pub fn parse_route(arg: &str) -> Result<RouteArg, String> {
    let e = |r: String| format!("--route {arg:?}: {r}");
    let mut parts = arg.split(',');
    let (prefix, len) = prefix(parts.next().unwrap_or("")).map_err(e)?;
    let mut r = RouteArg {
        prefix,
        len,
        via: None,
        port: String::new(),
    };
    for opt in parts {
        match opt.split_once('=') {
            Some(("via", v)) => r.via = Some(ip("via", v).map_err(e)?),
            Some(("port", v)) => r.port = v.to_string(),
            _ => return Err(e(format!("option {opt:?} (via=GW, port=PORT)"))),
        }
    }
    if r.port.is_empty() {
        return Err(e("port=PORT is required".into()));
    }
    Ok(r)
}

impl RouteArg {
    /// The route, with the port's number.
    pub fn route(&self, ofport: u32) -> Route {
        Route {
            prefix: self.prefix,
            len: self.len,
            via: self.via,
            ofport,
            user: true,
        }
    }
}

/// Sends the ARP requests translation queued (called from the main loop).
/// A request whose port is gone, or that the port's queue refuses, is
/// logged and forgotten: the next packet to the next hop asks again.
pub fn send_arp_requests(switch: &crate::switch::Switch) {
    let reqs = switch.bridge.tunnels().take_arp_requests();
    if reqs.is_empty() {
        return;
    }
    let ports = switch.ports.lock();
    for r in reqs {
        let Some(p) = ports.by_ofport.get(&r.ofport) else {
            continue;
        };
        match p.send_control(&switch.pool, &r.frame) {
            Ok(()) => log::debug!(
                "port {}: ARP request for {}",
                p.name,
                Ipv4Addr::from(u32::from_be_bytes([
                    r.frame[38],
                    r.frame[39],
                    r.frame[40],
                    r.frame[41]
                ]))
            ),
            Err(e) => log::warn!("port {}: ARP request not sent: {e}", p.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let (t, of) = parse_options(
            "vx",
            TunnelKind::Vxlan,
            "remote_ip=192.0.2.2,key=42,ofport=9,csum=true,tos=inherit".split(','),
        )
        .unwrap();
        assert_eq!(t.remote_ip, Some(0xc000_0202));
        assert_eq!(t.key, Some(42));
        assert_eq!(t.dst_port, 4789);
        assert!(t.csum);
        assert_eq!(t.tos, None);
        assert_eq!(of, Some("9"));
        let (t, _) =
            parse_options("g", TunnelKind::Gre, "remote_ip=flow,key=flow".split(',')).unwrap();
        assert_eq!((t.remote_ip, t.key), (None, None));
        let (t, _) = parse_options("g", TunnelKind::Gre, "remote_ip=1.2.3.4".split(',')).unwrap();
        assert!(!t.gre_key);
        for bad in [
            "key=42",
            "remote_ip=1.2.3",
            "remote_ip=1.2.3.4,key=16777216",
            "remote_ip=1.2.3.4,ttl=0",
            "remote_ip=1.2.3.4,bogus=1",
        ] {
            assert!(
                parse_options("v", TunnelKind::Vxlan, bad.split(',')).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_ip_and_route() {
        assert_eq!(
            parse_local_ip("under=192.0.2.1/24").unwrap(),
            LocalIp {
                port: "under".into(),
                ip: 0xc000_0201,
                prefix_len: 24
            }
        );
        assert!(parse_local_ip("under=192.0.2.1/33").is_err());
        let r = parse_route("10.0.0.0/8,via=192.0.2.254,port=under").unwrap();
        assert_eq!(
            (r.len, r.via, r.port.as_str()),
            (8, Some(0xc000_02fe), "under")
        );
        assert!(parse_route("10.0.0.0/8,via=192.0.2.254").is_err());
    }
}
