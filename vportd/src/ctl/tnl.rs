//! `tnl-neigh-show`, `tnl-neigh-set`, `tnl-neigh-flush`, `tnl-route-show`
//! (OVS `tnl/neigh/show`, `tnl/neigh/set`, `tnl/neigh/flush`,
//! `ovs/route/show`): native tunnelling's neighbour cache and routes.

use super::commands::{out, port_names, CmdResult};
use super::Server;
use flowcache::text::{ipv4, mac};
use serde::Serialize;
use std::net::Ipv4Addr;

#[derive(Debug, Serialize)]
struct NeighEntry {
    ip: String,
    mac: String,
    port: u32,
    port_name: Option<String>,
    pinned: bool,
}

#[derive(Debug, Serialize)]
struct RouteEntry {
    prefix: String,
    len: u8,
    via: Option<String>,
    port: u32,
    port_name: Option<String>,
    user: bool,
}

fn name_of(s: &Server) -> impl Fn(u32) -> String {
    let names = port_names(s);
    move |p| names.get(&p).cloned().unwrap_or_else(|| p.to_string())
}

/// `tnl-neigh-show`.
pub fn neigh_show(s: &Server) -> CmdResult {
    let t = s.switch.bridge.tunnels();
    let names = port_names(s);
    let entries: Vec<NeighEntry> = t
        .neighbours()
        .into_iter()
        .map(|(ip, n)| NeighEntry {
            ip: ipv4(ip),
            mac: mac(&n.mac),
            port: n.ofport,
            port_name: names.get(&n.ofport).cloned(),
            pinned: n.pinned,
        })
        .collect();
    out(t.format_neighbours(name_of(s)), &entries)
}

/// `tnl-route-show`.
pub fn route_show(s: &Server) -> CmdResult {
    let t = s.switch.bridge.tunnels();
    let names = port_names(s);
    let entries: Vec<RouteEntry> = t
        .config()
        .routes
        .iter()
        .map(|r| RouteEntry {
            prefix: ipv4(r.prefix & ofproto::tunnel::prefix_mask(r.len)),
            len: r.len,
            via: r.via.map(ipv4),
            port: r.ofport,
            port_name: names.get(&r.ofport).cloned(),
            user: r.user,
        })
        .collect();
    out(t.format_routes(name_of(s)), &entries)
}

/// `tnl-neigh-set PORT IP MAC` (OVS `tnl/neigh/set BRIDGE IP MAC`).
pub fn neigh_set(s: &Server, args: &[String]) -> CmdResult {
    let usage = "usage: tnl-neigh-set PORT IP MAC";
    let [port, ip, m] = args else {
        return Err(format!("tnl-neigh-set: {usage}"));
    };
    let ofport = s
        .switch
        .ports
        .lock()
        .ofport_named(port)
        .ok_or_else(|| format!("tnl-neigh-set: no port named {port:?}"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("tnl-neigh-set: {ip:?} is not an IPv4 address ({usage})"))?;
    let mac = parse_mac(m).ok_or_else(|| format!("tnl-neigh-set: {m:?} is not a MAC ({usage})"))?;
    s.switch
        .bridge
        .tunnels()
        .set_neighbour(u32::from(ip), mac, ofport);
    out("OK\n".into(), &serde_json::json!({"ok": true}))
}

/// `tnl-neigh-flush`: forgets the learned neighbours (pinned ones stay).
pub fn neigh_flush(s: &Server) -> CmdResult {
    let n = s.switch.bridge.tunnels().flush_neighbours();
    out(
        format!("neighbour cache flushed ({n} entries)\n"),
        &serde_json::json!({ "flushed": n }),
    )
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}
