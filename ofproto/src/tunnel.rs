//! Native tunnelling's control plane (OVS `ofproto/tunnel.c`,
//! `lib/tnl-neigh-cache.c`, `lib/ovs-router.c`): the tunnel ports, the
//! underlay addresses, the route table and the neighbour (ARP) cache, and
//! the three places translation consults them:
//!
//! * a packet received on an underlay port ([`Tunnels::underlay_receive`]):
//!   ARP for the local address is answered with datapath actions (or, a
//!   reply, consumed), every ARP teaches the neighbour cache, and a
//!   tunnel packet for the local address becomes `tnl_pop`;
//! * a decapsulated packet ([`Tunnels::receive_port`]): its tunnel
//!   metadata picks the tunnel port it arrived on (the megaflow matches
//!   the tunnel fields that choice read);
//! * output to a tunnel port ([`Tunnels::push_action`]): the route and the
//!   neighbour give the outer headers, built once into the megaflow's
//!   `tnl_push`; an unresolved next hop queues an ARP request.
//!
//! Every change of the tables bumps [`Tunnels::version`], which the bridge
//! adds to its generation: the revalidator then re-translates the
//! megaflows, so a learned neighbour takes effect at once.

use arc_swap::ArcSwap;
use flowcache::actions::{ArpFields, DpAction, DropReason, EthFields, Masked, SetField};
use flowcache::key::{FlowKey, ETH_TYPE_ARP, ETH_TYPE_IPV4, FRAG_ANY, FRAG_LATER, IPPROTO_UDP};
use flowcache::text::{ipv4, mac};
use flowcache::tunnel::{TnlHeaderSpec, TnlPush, TunnelKind, IPPROTO_GRE, TNL_F_KEY};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `tun_flags` bits a megaflow after a pop matches (df, csum, key: OVS
/// shows `flags(-df+csum+key)`).
const TUN_FLAGS_MASK: u16 = 0x000e;
/// ARP requests for one next hop, at most one per this interval.
const ARP_INTERVAL: Duration = Duration::from_millis(500);
/// Default outer TTL (OVS `DEFAULT_TTL`).
pub const DEFAULT_TTL: u8 = 64;

/// A tunnel port's configuration (`--port NAME=vxlan,remote_ip=...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelPort {
    pub name: String,
    pub kind: TunnelKind,
    /// `None`: `remote_ip=flow` (from `tun_dst`).
    pub remote_ip: Option<u32>,
    /// `None`: the underlay address of the route's port.
    pub local_ip: Option<u32>,
    /// `None`: `key=flow` (from `tun_id`); GRE without `key=` has
    /// `Some(0)` and [`TunnelPort::gre_key`] false.
    pub key: Option<u64>,
    /// GRE: whether the header carries a key.
    pub gre_key: bool,
    pub dst_port: u16,
    pub ttl: u8,
    /// `None`: `tos=inherit` (the inner IP TOS).
    pub tos: Option<u8>,
    pub csum: bool,
    /// Set DF in the outer header (OVS `df_default=true`).
    pub df: bool,
}

/// An address of an underlay port (`--local-ip PORT=IP/PREFIX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub ofport: u32,
    pub ip: u32,
    pub prefix_len: u8,
    pub mac: [u8; 6],
}

/// A route (`--route PREFIX,via=GW,port=PORT`; an underlay address adds
/// its own prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: u32,
    pub len: u8,
    /// `None`: the destination is on the link.
    pub via: Option<u32>,
    pub ofport: u32,
    /// Added by `--local-ip` (OVS "Cached") or by the user.
    pub user: bool,
}

impl Route {
    fn covers(&self, ip: u32) -> bool {
        ip & prefix_mask(self.len) == self.prefix & prefix_mask(self.len)
    }
}

/// The netmask of a prefix length.
pub fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// One neighbour cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: [u8; 6],
    pub ofport: u32,
    /// Set by `tnl-neigh-set`: never replaced by what is learned.
    pub pinned: bool,
}

/// An ARP request the slow path wants sent (the daemon transmits it on
/// the port's control queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRequest {
    pub ofport: u32,
    pub frame: [u8; 42],
}

/// The configuration translation reads (swapped whole on a change).
#[derive(Clone, Debug, Default)]
pub struct TunnelConfig {
    pub ports: BTreeMap<u32, TunnelPort>,
    pub underlays: Vec<Underlay>,
    pub routes: Vec<Route>,
}

impl TunnelConfig {
    /// The longest-prefix route to `ip`.
    pub fn route(&self, ip: u32) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.covers(ip))
            .max_by_key(|r| r.len)
    }

    fn underlay(&self, ofport: u32) -> Option<&Underlay> {
        self.underlays.iter().find(|u| u.ofport == ofport)
    }

    /// The tunnel port that takes decapsulated packets of `kind` on UDP
    /// port `dst_port` first (the `tnl_pop` target): the lowest numbered.
    fn pop_port(&self, kind: TunnelKind, dst_port: u16) -> Option<u32> {
        self.ports
            .iter()
            .find(|(_, p)| p.kind == kind && (kind == TunnelKind::Gre || p.dst_port == dst_port))
            .map(|(n, _)| *n)
    }
}

/// The tunnel layer's state, shared by the bridge (translation) and the
/// daemon (configuration, ARP transmission, `tnl-*` commands).
#[derive(Default)]
pub struct Tunnels {
    config: ArcSwap<TunnelConfig>,
    neigh: Mutex<BTreeMap<u32, Neighbour>>,
    /// ARP requests waiting for the daemon, and when each next hop was
    /// last asked for.
    arp: Mutex<(Vec<ArpRequest>, BTreeMap<u32, Instant>)>,
    version: AtomicU64,
}

impl Tunnels {
    /// The configuration now.
    pub fn config(&self) -> Arc<TunnelConfig> {
        self.config.load_full()
    }

    /// Changes the configuration (ports, underlays, routes).
    pub fn update(&self, f: impl FnOnce(&mut TunnelConfig)) {
        let mut c = (**self.config.load()).clone();
        f(&mut c);
        self.config.store(Arc::new(c));
        self.bump();
    }

    /// Bumped by every change of configuration or neighbours.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The neighbour cache, ascending by address.
    pub fn neighbours(&self) -> Vec<(u32, Neighbour)> {
        self.neigh.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// `tnl-neigh-set`: pins `ip` to `mac` on `ofport`.
    pub fn set_neighbour(&self, ip: u32, mac: [u8; 6], ofport: u32) {
        self.neigh.lock().insert(
            ip,
            Neighbour {
                mac,
                ofport,
                pinned: true,
            },
        );
        self.bump();
    }

    /// `tnl-neigh-flush`: forgets every learned neighbour.
    pub fn flush_neighbours(&self) -> usize {
        let mut n = self.neigh.lock();
        let before = n.len();
        n.retain(|_, e| e.pinned);
        let gone = before - n.len();
        drop(n);
        if gone > 0 {
            self.bump();
        }
        gone
    }

    /// Learns `ip` at `mac` on `ofport` (a pinned entry stays). True when
    /// the cache changed.
    fn learn(&self, ip: u32, mac: [u8; 6], ofport: u32) -> bool {
        let mut n = self.neigh.lock();
        let new = Neighbour {
            mac,
            ofport,
            pinned: false,
        };
        match n.get(&ip) {
            Some(e) if e.pinned || (e.mac == mac && e.ofport == ofport) => false,
            _ => {
                n.insert(ip, new);
                drop(n);
                self.bump();
                true
            }
        }
    }

    /// The ARP requests queued since the last call.
    pub fn take_arp_requests(&self) -> Vec<ArpRequest> {
        std::mem::take(&mut self.arp.lock().0)
    }

    fn request_arp(&self, u: &Underlay, src_ip: u32, target: u32) {
        let now = Instant::now();
        let mut a = self.arp.lock();
        if a.1.get(&target).is_some_and(|t| now - *t < ARP_INTERVAL) {
            return;
        }
        a.1.insert(target, now);
        a.0.push(ArpRequest {
            ofport: u.ofport,
            frame: arp_request(u.mac, src_ip, target),
        });
    }

    /// A packet received on a port: the tunnel layer's actions for it if
    /// the port is an underlay and the packet is ARP for its address or a
    /// tunnel packet to it, `None` if it is for the OpenFlow tables. Adds
    /// what the decision read to `wc` either way. Learns neighbours from
    /// ARP when `may_learn`.
    pub fn underlay_receive(
        &self,
        flow: &FlowKey,
        may_learn: bool,
        wc: &mut FlowKey,
    ) -> Option<Vec<DpAction>> {
        let cfg = self.config.load();
        if flow.recirc_id != 0 || flow.tun_dst != 0 {
            return None;
        }
        let u = cfg.underlay(flow.in_port)?;
        wc.dl_type = 0xffff;
        match flow.dl_type {
            ETH_TYPE_ARP => {
                // ARP SPA/TPA and opcode are in nw_src/nw_dst/nw_proto.
                if may_learn && flow.nw_src != 0 && flow.arp_sha != [0; 6] {
                    self.learn(flow.nw_src, flow.arp_sha, flow.in_port);
                }
                wc.nw_dst = u32::MAX;
                if flow.nw_dst != u.ip {
                    return None;
                }
                // What learning read: the megaflow must miss when it changes.
                wc.nw_src = u32::MAX;
                wc.arp_sha = [0xff; 6];
                wc.nw_proto = 0xff;
                Some(match flow.nw_proto {
                    1 => arp_reply_actions(u, flow),
                    _ => vec![DpAction::Drop(DropReason::Action)],
                })
            }
            ETH_TYPE_IPV4 => {
                wc.nw_dst = u32::MAX;
                wc.dl_dst = [0xff; 6];
                if flow.nw_dst != u.ip || flow.dl_dst != u.mac {
                    return None;
                }
                wc.nw_proto = 0xff;
                wc.nw_frag = FRAG_ANY | FRAG_LATER;
                if flow.nw_frag != 0 {
                    return None;
                }
                let (kind, port) = match flow.nw_proto {
                    IPPROTO_UDP => {
                        wc.tp_dst = 0xffff;
                        [TunnelKind::Vxlan, TunnelKind::Geneve]
                            .into_iter()
                            .find_map(|k| cfg.pop_port(k, flow.tp_dst).map(|p| (k, p)))
                            .map_or((None, 0), |(k, p)| (Some(k), p))
                    }
                    IPPROTO_GRE => cfg
                        .pop_port(TunnelKind::Gre, 0)
                        .map_or((None, 0), |p| (Some(TunnelKind::Gre), p)),
                    _ => (None, 0),
                };
                kind.map(|kind| vec![DpAction::TunnelPop { port, kind }])
            }
            _ => None,
        }
    }

    /// The tunnel port a decapsulated packet (`flow.tun_dst != 0`, in_port
    /// the `tnl_pop` target) arrived on, OVS `tnl_port_receive`: the port
    /// of the same kind and UDP port whose key and remote match, exact
    /// ones before `flow` ones. Adds the tunnel fields read to `wc`.
    pub fn receive_port(&self, flow: &FlowKey, wc: &mut FlowKey) -> Option<u32> {
        let cfg = self.config.load();
        let first = cfg.ports.get(&flow.in_port)?;
        wc.tun_id = u64::MAX;
        wc.tun_src = u32::MAX;
        wc.tun_dst = u32::MAX;
        wc.tun_flags = TUN_FLAGS_MASK;
        if first.kind != TunnelKind::Gre {
            wc.tun_tp_dst = 0xffff;
        }
        let has_key = flow.tun_flags & TNL_F_KEY != 0;
        let candidates = cfg.ports.iter().filter(|(_, p)| {
            p.kind == first.kind
                && (p.kind == TunnelKind::Gre || p.dst_port == flow.tun_tp_dst)
                && p.local_ip.is_none_or(|l| l == flow.tun_dst)
        });
        let key_ok = |p: &TunnelPort| match p.key {
            None => true,
            Some(_) if p.kind == TunnelKind::Gre && !p.gre_key => !has_key,
            Some(k) => has_key && k == flow.tun_id,
        };
        let mut best: Option<(u8, u32)> = None;
        for (n, p) in candidates {
            let remote_ok = p.remote_ip.is_none_or(|r| r == flow.tun_src);
            if !remote_ok || !key_ok(p) {
                continue;
            }
            // Exact remote and key first, flow-based last.
            let rank = u8::from(p.remote_ip.is_none()) * 2 + u8::from(p.key.is_none());
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, *n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// True when `port` is a tunnel port.
    pub fn is_tunnel(&self, port: u32) -> bool {
        self.config.load().ports.contains_key(&port)
    }

    /// The `tnl_push` that sends `flow` out of tunnel port `port` (`None`
    /// for any other port), or why it cannot be sent: no route to the
    /// remote, or an unresolved next hop (an ARP request is queued).
    pub fn push_action(
        &self,
        port: u32,
        flow: &FlowKey,
        wc: &mut FlowKey,
    ) -> Option<Result<DpAction, DropReason>> {
        let cfg = self.config.load();
        let t = cfg.ports.get(&port)?;
        Some(self.build_push(&cfg, port, t, flow, wc))
    }

    fn build_push(
        &self,
        cfg: &TunnelConfig,
        port: u32,
        t: &TunnelPort,
        flow: &FlowKey,
        wc: &mut FlowKey,
    ) -> Result<DpAction, DropReason> {
        let remote = match t.remote_ip {
            Some(r) => r,
            None => {
                wc.tun_dst = u32::MAX;
                flow.tun_dst
            }
        };
        let key = match t.key {
            Some(k) => k,
            None => {
                wc.tun_id = u64::MAX;
                flow.tun_id
            }
        };
        let tos = match t.tos {
            Some(v) => v,
            None if flow.is_ip() => {
                wc.nw_tos = 0xff;
                flow.nw_tos
            }
            None => 0,
        };
        let route = cfg.route(remote).ok_or(DropReason::TunnelNoRoute)?;
        let u = cfg
            .underlay(route.ofport)
            .ok_or(DropReason::TunnelNoRoute)?;
        let src_ip = t.local_ip.unwrap_or(u.ip);
        let next_hop = route.via.unwrap_or(remote);
        let neigh = self.neigh.lock().get(&next_hop).copied();
        let Some(n) = neigh else {
            self.request_arp(u, src_ip, next_hop);
            return Err(DropReason::TunnelNeighMiss);
        };
        let spec = TnlHeaderSpec {
            kind: t.kind,
            eth_src: u.mac,
            eth_dst: n.mac,
            ip_src: src_ip,
            ip_dst: remote,
            tos,
            ttl: t.ttl,
            df: t.df,
            dst_port: t.dst_port,
            key: (t.kind != TunnelKind::Gre || t.gre_key).then_some(key),
            csum: t.csum,
        };
        Ok(DpAction::TunnelPush(Box::new(TnlPush::new(
            port,
            route.ofport,
            &spec,
        ))))
    }

    /// `tnl-neigh-show` (OVS `tnl/neigh/show`, with the port).
    pub fn format_neighbours(&self, port_name: impl Fn(u32) -> String) -> String {
        let mut s = format!("{:<47} {:<19} {:<10} {}\n", "IP", "MAC", "Port", "Type");
        s.push_str(&"=".repeat(86));
        s.push('\n');
        for (ip, n) in self.neighbours() {
            s.push_str(&format!(
                "{:<47} {:<19} {:<10} {}\n",
                ipv4(ip),
                mac(&n.mac),
                port_name(n.ofport),
                if n.pinned { "static" } else { "dynamic" }
            ));
        }
        s
    }

    /// `tnl-route-show` (OVS `ovs/route/show`).
    pub fn format_routes(&self, port_name: impl Fn(u32) -> String) -> String {
        let cfg = self.config();
        let mut routes = cfg.routes.clone();
        routes.sort_by(|a, b| b.len.cmp(&a.len).then(a.prefix.cmp(&b.prefix)));
        let mut s = String::from("Route Table:\n");
        for r in routes {
            let src = cfg.underlay(r.ofport).map(|u| u.ip);
            s.push_str(&format!(
                "{}: {}/{} dev {}",
                if r.user { "User" } else { "Cached" },
                ipv4(r.prefix & prefix_mask(r.len)),
                r.len,
                port_name(r.ofport)
            ));
            if let Some(gw) = r.via {
                s.push_str(&format!(" GW {}", ipv4(gw)));
            }
            if let Some(src) = src {
                s.push_str(&format!(" SRC {}", ipv4(src)));
            }
            s.push('\n');
        }
        s
    }
}

/// The ARP responder: the request turned into the reply in place and sent
/// back out of the port it came in on.
fn arp_reply_actions(u: &Underlay, flow: &FlowKey) -> Vec<DpAction> {
    vec![
        DpAction::Set(SetField::Ethernet(Masked {
            value: EthFields {
                src: u.mac,
                dst: flow.arp_sha,
            },
            mask: EthFields {
                src: [0xff; 6],
                dst: [0xff; 6],
            },
        })),
        DpAction::Set(SetField::Arp(Masked {
            value: ArpFields {
                op: 2,
                spa: u.ip,
                tpa: flow.nw_src,
                sha: u.mac,
                tha: flow.arp_sha,
            },
            mask: ArpFields {
                op: 0xffff,
                spa: u32::MAX,
                tpa: u32::MAX,
                sha: [0xff; 6],
                tha: [0xff; 6],
            },
        })),
        DpAction::Output(flow.in_port),
    ]
}

/// A broadcast ARP request from `mac`/`src` for `target`.
pub fn arp_request(mac: [u8; 6], src: u32, target: u32) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_TYPE_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&src.to_be_bytes());
    f[38..42].copy_from_slice(&target.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn tunnels() -> Tunnels {
        let t = Tunnels::default();
        t.update(|c| {
            c.underlays.push(Underlay {
                ofport: 1,
                ip: 0xc000_0201,
                prefix_len: 24,
                mac: MAC,
            });
            c.routes.push(Route {
                prefix: 0xc000_0200,
                len: 24,
                via: None,
                ofport: 1,
                user: false,
            });
            c.ports.insert(
                3,
                TunnelPort {
                    name: "vx0".into(),
                    kind: TunnelKind::Vxlan,
                    remote_ip: Some(0xc000_0202),
                    local_ip: None,
                    key: Some(42),
                    gre_key: false,
                    dst_port: 4789,
                    ttl: DEFAULT_TTL,
                    tos: Some(0),
                    csum: false,
                    df: true,
                },
            );
        });
        t
    }

    fn arp(op: u8, spa: u32, tpa: u32) -> FlowKey {
        FlowKey {
            in_port: 1,
            dl_type: ETH_TYPE_ARP,
            dl_src: PEER,
            nw_proto: op,
            nw_src: spa,
            nw_dst: tpa,
            arp_sha: PEER,
            ..FlowKey::default()
        }
    }

    #[test]
    fn neighbour_miss_asks_then_learns_and_pushes() {
        let t = tunnels();
        let inner = FlowKey {
            in_port: 2,
            ..FlowKey::default()
        };
        let mut wc = FlowKey::default();
        assert_eq!(
            t.push_action(3, &inner, &mut wc),
            Some(Err(DropReason::TunnelNeighMiss))
        );
        let reqs = t.take_arp_requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].frame, arp_request(MAC, 0xc000_0201, 0xc000_0202));
        // Asked again at once: rate-limited.
        let _ = t.push_action(3, &inner, &mut wc);
        assert!(t.take_arp_requests().is_empty());
        // The peer's reply teaches the cache and bumps the version.
        let v = t.version();
        let mut wc = FlowKey::default();
        assert_eq!(
            t.underlay_receive(&arp(2, 0xc000_0202, 0xc000_0201), true, &mut wc),
            Some(vec![DpAction::Drop(DropReason::Action)]),
            "a reply for the local address is consumed"
        );
        assert!(t.version() > v);
        let Some(Ok(DpAction::TunnelPush(p))) = t.push_action(3, &inner, &mut wc) else {
            panic!("resolved")
        };
        assert_eq!(p.out_port, 1);
        assert_eq!(&p.header()[0..6], &PEER);
    }

    #[test]
    fn request_for_local_ip_is_answered() {
        let t = tunnels();
        let mut wc = FlowKey::default();
        let actions = t
            .underlay_receive(&arp(1, 0xc000_0202, 0xc000_0201), true, &mut wc)
            .expect("answered");
        assert_eq!(actions.last(), Some(&DpAction::Output(1)));
        assert_eq!(wc.arp_sha, [0xff; 6]);
        // Someone else's ARP goes through the tables.
        let mut wc = FlowKey::default();
        assert_eq!(
            t.underlay_receive(&arp(1, 0xc000_0202, 0xc000_0209), true, &mut wc),
            None
        );
        assert_eq!(wc.nw_dst, u32::MAX);
    }

    #[test]
    fn vxlan_to_local_ip_pops_and_picks_port_by_vni() {
        let t = tunnels();
        let outer = FlowKey {
            in_port: 1,
            dl_type: ETH_TYPE_IPV4,
            dl_dst: MAC,
            nw_dst: 0xc000_0201,
            nw_src: 0xc000_0202,
            nw_proto: IPPROTO_UDP,
            tp_dst: 4789,
            ..FlowKey::default()
        };
        let mut wc = FlowKey::default();
        assert_eq!(
            t.underlay_receive(&outer, true, &mut wc),
            Some(vec![DpAction::TunnelPop {
                port: 3,
                kind: TunnelKind::Vxlan
            }])
        );
        let mut inner = FlowKey {
            in_port: 3,
            tun_id: 42,
            tun_src: 0xc000_0202,
            tun_dst: 0xc000_0201,
            tun_flags: TNL_F_KEY,
            tun_tp_dst: 4789,
            ..FlowKey::default()
        };
        let mut wc = FlowKey::default();
        assert_eq!(t.receive_port(&inner, &mut wc), Some(3));
        assert_eq!(wc.tun_id, u64::MAX);
        inner.tun_id = 43;
        assert_eq!(t.receive_port(&inner, &mut wc), None, "wrong VNI");
    }

    #[test]
    fn longest_prefix_route() {
        let t = tunnels();
        t.update(|c| {
            c.routes.push(Route {
                prefix: 0x0a00_0000,
                len: 8,
                via: Some(0xc000_02fe),
                ofport: 1,
                user: true,
            })
        });
        let c = t.config();
        assert_eq!(c.route(0x0a01_0203).and_then(|r| r.via), Some(0xc000_02fe));
        assert_eq!(c.route(0xc000_0207).map(|r| r.len), Some(24));
        assert!(c.route(0x0b00_0001).is_none());
        assert!(t
            .format_routes(|p| format!("p{p}"))
            .contains("User: 10.0.0.0/8 dev p1 GW 192.0.2.254 SRC 192.0.2.1"));
    }
}
