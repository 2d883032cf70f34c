//! vportd as a client of OVS's own `ovsdb-server` holding OVS's
//! `vswitch.ovsschema` (`--db unix:PATH`), so `ovs-vsctl` configures it as
//! it configures ovs-vswitchd.
//!
//! One thread keeps a session to the server: it `monitor`s the
//! configuration columns of `Open_vSwitch`, `Bridge`, `Port`, `Interface`
//! and `Controller` into a local replica, and after every update
//! reconciles the switch with it ([`Reconciler`]): ports of the served
//! bridge are opened, changed or removed through the same functions as
//! `vportctl add-port`/`del-port`, datapath settings go through `set`.
//! Then it writes back what ovs-vswitchd writes: `Interface` `ofport`,
//! `link_state`, `admin_state`, `mac_in_use`, `error` and (every
//! [`STATS_INTERVAL`]) `statistics`; `Bridge` `datapath_id`;
//! `Open_vSwitch` `cur_cfg` (so `ovs-vsctl` without `--no-wait` returns
//! once the change is applied), `dpdk_initialized`, `dpdk_version`.
//!
//! vportd serves one bridge: the first of `Open_vSwitch.bridges` by name.
//! Interfaces of other bridges get an `error`. Ports given with `--port`
//! or added with `vportctl` are not the database's and are left alone.
//! A lost session is retried (1 s doubling to 8 s); the switch keeps its
//! configuration meanwhile, and the full replica comes back on reconnect.

pub mod conn;
pub mod datum;
pub mod startup;

use crate::args;
use crate::ctl::{commands, Server};
use crate::ofchan;
use conn::{Conn, Incoming, Target};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The database vportd reads.
const DB: &str = "Open_vSwitch";

/// How often `Interface.statistics` is written.
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// How often blocked reads wake up to look at the stop flag and timers.
const POLL: Duration = Duration::from_millis(200);

/// OpenFlow's LOCAL port: what OVS writes as the `ofport` of a bridge's
/// internal interface.
const OFPP_LOCAL: i64 = 65534;

/// `Open_vSwitch.other_config` keys vportd applies, and the `set` key.
const OTHER_CONFIG: &[(&str, &str)] = &[
    ("flow-limit", "flow-limit"),
    ("max-idle", "max-idle"),
    ("emc-insert-inv-prob", "emc-insert-inv-prob"),
    ("smc-enable", "smc-enable"),
    ("pmd-rxq-assign", "pmd-rxq-assign"),
];

/// `Bridge.other_config` keys vportd applies.
const BRIDGE_CONFIG: &[(&str, &str)] = &[
    ("mac-aging-time", "mac-aging-time"),
    ("mac-table-size", "mac-table-size"),
];

/// The running client; [`OvsdbHandle::stop`] ends it.
pub struct OvsdbHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OvsdbHandle {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OvsdbHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the client of the database at `target`.
pub fn start(target: Target, server: Arc<Server>) -> anyhow::Result<OvsdbHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("ovsdb".into())
            .spawn(move || {
                let mut r = Reconciler::new(server);
                session_loop(&target, &mut r, &stop);
            })?
    };
    Ok(OvsdbHandle {
        stop,
        thread: Some(thread),
    })
}

/// Connects, runs sessions, and reconnects with backoff until stopped.
fn session_loop(target: &Target, r: &mut Reconciler, stop: &AtomicBool) {
    let mut backoff = Duration::from_secs(1);
    let mut logged_down = false;
    while !stop.load(Ordering::Relaxed) {
        match Conn::connect(target, POLL) {
            Ok(mut conn) => {
                log::info!("ovsdb: connected to {target}");
                backoff = Duration::from_secs(1);
                logged_down = false;
                match session(&mut conn, r, stop) {
                    Ok(()) => return,
                    Err(e) => log::warn!("ovsdb: {target}: {e}; reconnecting"),
                }
            }
            Err(e) => {
                if !logged_down {
                    log::warn!("ovsdb: cannot connect to {target}: {e}; retrying");
                    logged_down = true;
                }
            }
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
        }
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// The columns monitored: configuration, and `Interface.ofport` (the
/// number an interface had before a restart is kept, as OVS keeps it).
/// vportd's own writes come back as updates that change nothing.
fn monitor_request() -> Value {
    json!({
        "id": "monitor",
        "method": "monitor",
        "params": [DB, null, {
            "Open_vSwitch": {"columns": ["bridges", "next_cfg", "other_config"]},
            "Bridge": {"columns": ["name", "ports", "datapath_type", "fail_mode",
                                   "controller", "other_config", "protocols"]},
            "Port": {"columns": ["name", "interfaces", "tag", "trunks", "vlan_mode"]},
            "Interface": {"columns": ["name", "type", "options", "ofport_request",
                                      "mtu_request", "ofport"]},
            "Controller": {"columns": ["target"]},
        }]
    })
}

/// One session: monitor, then answer echoes, apply updates, write back.
/// `Ok` only when stopped.
fn session(conn: &mut Conn, r: &mut Reconciler, stop: &AtomicBool) -> std::io::Result<()> {
    r.replica.clear();
    r.written.clear();
    conn.send(&monitor_request())?;
    let mut last_stats = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut dirty = false;
        match conn.recv()? {
            Incoming::Idle => {}
            Incoming::Message(msg) => {
                let method = msg.get("method").and_then(|m| m.as_str());
                match method {
                    Some("echo") => conn.send(&json!({
                        "id": msg.get("id").cloned().unwrap_or(Value::Null),
                        "result": msg.get("params").cloned().unwrap_or(json!([])),
                        "error": null,
                    }))?,
                    Some("update") => {
                        if let Some(updates) = msg.get("params").and_then(|p| p.get(1)) {
                            r.apply_updates(updates);
                            dirty = true;
                        }
                    }
                    Some(other) => log::debug!("ovsdb: ignoring {other:?} from the server"),
                    None if msg.get("id") == Some(&json!("monitor")) => {
                        if let Some(e) = msg.get("error").filter(|e| !e.is_null()) {
                            return Err(std::io::Error::other(format!("monitor refused: {e}")));
                        }
                        r.replica.clear();
                        r.apply_updates(msg.get("result").unwrap_or(&Value::Null));
                        dirty = true;
                    }
                    None => r.check_reply(&msg),
                }
            }
        }
        let stats_due = last_stats.elapsed() >= STATS_INTERVAL;
        if dirty || stats_due {
            if dirty {
                if let Some(op) = r.reconcile() {
                    conn.send(&r.transact(vec![op]))?;
                }
            }
            if stats_due {
                last_stats = Instant::now();
            }
            let ops = r.write_back(stats_due);
            if !ops.is_empty() {
                conn.send(&r.transact(ops))?;
            }
        }
    }
}

/// A row as the replica holds it.
type Row = Map<String, Value>;

/// An interface the served bridge asks for.
struct WantedIface {
    uuid: String,
    name: String,
    what: IfaceKind,
    /// The `ofport` the row holds (from an earlier run).
    previous_ofport: Option<u32>,
}

enum IfaceKind {
    /// A DPDK port: its devargs, then its `--port` options (after a `,`).
    Port(String),
    /// The bridge's own (internal) interface: no device, OpenFlow LOCAL.
    Local,
    /// Cannot be configured: why (the row's `error`).
    Bad(String),
}

/// The replica and what has been applied from it.
pub struct Reconciler {
    server: Arc<Server>,
    /// Table → UUID → row.
    replica: BTreeMap<String, BTreeMap<String, Row>>,
    /// Interface name → the spec it was opened with (only the database's
    /// ports).
    applied: BTreeMap<String, String>,
    /// Interface UUID → the error of its last attempt.
    errors: BTreeMap<String, String>,
    /// (table, UUID) → the columns last written, to write only changes.
    written: BTreeMap<(String, String), Row>,
    /// `other_config` values applied, by `set` key.
    settings: BTreeMap<String, String>,
    /// Whether the missing `Open_vSwitch` row was inserted already.
    inserted_root: bool,
    next_id: u64,
}

impl Reconciler {
    fn new(server: Arc<Server>) -> Reconciler {
        Reconciler {
            server,
            replica: BTreeMap::new(),
            applied: BTreeMap::new(),
            errors: BTreeMap::new(),
            written: BTreeMap::new(),
            settings: BTreeMap::new(),
            inserted_root: false,
            next_id: 0,
        }
    }

    /// RFC 7047 `<table-updates>` into the replica: a row with `new` is
    /// (re)placed, one without is deleted.
    fn apply_updates(&mut self, updates: &Value) {
        let Some(tables) = updates.as_object() else {
            return;
        };
        for (table, rows) in tables {
            let t = self.replica.entry(table.clone()).or_default();
            for (uuid, change) in rows.as_object().into_iter().flatten() {
                match change.get("new").and_then(|n| n.as_object()) {
                    Some(new) => {
                        t.insert(uuid.clone(), new.clone());
                    }
                    None => {
                        t.remove(uuid);
                    }
                }
            }
        }
    }

    fn rows(&self, table: &str) -> impl Iterator<Item = (&String, &Row)> {
        self.replica.get(table).into_iter().flatten()
    }

    fn row(&self, table: &str, uuid: &str) -> Option<&Row> {
        self.replica.get(table).and_then(|t| t.get(uuid))
    }

    fn root(&self) -> Option<(&String, &Row)> {
        self.rows("Open_vSwitch").next()
    }

    fn transact(&mut self, ops: Vec<Value>) -> Value {
        self.next_id += 1;
        let mut params = vec![json!(DB)];
        params.extend(ops);
        json!({"id": self.next_id, "method": "transact", "params": params})
    }

    /// Logs what a transaction reply says went wrong.
    fn check_reply(&self, msg: &Value) {
        if let Some(e) = msg.get("error").filter(|e| !e.is_null()) {
            log::warn!("ovsdb: request {} failed: {e}", msg["id"]);
        }
        for r in msg
            .get("result")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(e) = r.get("error") {
                log::warn!(
                    "ovsdb: transaction {} failed: {e}: {}",
                    msg["id"],
                    r.get("details").and_then(|d| d.as_str()).unwrap_or("")
                );
            }
        }
    }

    /// The served bridge (UUID, name) and the interfaces of every bridge.
    fn wanted(&self) -> (Option<(String, String)>, Vec<WantedIface>) {
        let Some((_, root)) = self.root() else {
            return (None, Vec::new());
        };
        let mut bridges: Vec<(String, String)> = datum::uuids(root.get("bridges"))
            .into_iter()
            .filter_map(|u| {
                let name = datum::string(self.row("Bridge", &u)?.get("name"));
                Some((u, name))
            })
            .collect();
        bridges.sort_by(|a, b| a.1.cmp(&b.1));
        let served = bridges.first().cloned();
        let mut ifaces = Vec::new();
        for (i, (buuid, bname)) in bridges.iter().enumerate() {
            let Some(bridge) = self.row("Bridge", buuid) else {
                continue;
            };
            for puuid in datum::uuids(bridge.get("ports")) {
                let Some(port) = self.row("Port", &puuid) else {
                    continue;
                };
                let members = datum::uuids(port.get("interfaces"));
                for iuuid in &members {
                    let Some(iface) = self.row("Interface", iuuid) else {
                        continue;
                    };
                    let name = datum::string(iface.get("name"));
                    let what = if i > 0 {
                        IfaceKind::Bad(format!(
                            "vportd serves one bridge ({}); bridge {bname} is not served",
                            bridges[0].1
                        ))
                    } else if members.len() > 1 {
                        IfaceKind::Bad(format!(
                            "port {}: bonds are not supported (one interface per port)",
                            datum::string(port.get("name"))
                        ))
                    } else {
                        iface_kind(&name, bname, port, iface)
                    };
                    let previous_ofport = datum::integer(iface.get("ofport"))
                        .filter(|n| (1..0xff00).contains(n))
                        .map(|n| n as u32);
                    ifaces.push(WantedIface {
                        uuid: iuuid.clone(),
                        name,
                        what,
                        previous_ofport,
                    });
                }
            }
        }
        // Opened in name order: numbers handed out without a request or a
        // previous number do not depend on UUIDs.
        ifaces.sort_by(|a, b| a.name.cmp(&b.name));
        (served, ifaces)
    }

    /// Makes the switch match the replica. Returns an operation to send
    /// first when the database has no `Open_vSwitch` row yet (vportd
    /// creates it, as `ovs-vsctl init` would).
    fn reconcile(&mut self) -> Option<Value> {
        if self.root().is_none() {
            if self.inserted_root {
                return None;
            }
            self.inserted_root = true;
            log::info!("ovsdb: the database has no Open_vSwitch row: creating it");
            return Some(json!({"op": "insert", "table": "Open_vSwitch", "row": {}}));
        }
        let (served, ifaces) = self.wanted();
        let specs: BTreeMap<&str, &str> = ifaces
            .iter()
            .filter_map(|w| match &w.what {
                IfaceKind::Port(spec) => Some((w.name.as_str(), spec.as_str())),
                _ => None,
            })
            .collect();
        // Ports gone from the database, or changed: removed first.
        let stale: Vec<String> = self
            .applied
            .iter()
            .filter(|(name, spec)| specs.get(name.as_str()) != Some(&spec.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            match commands::del_port_named(&self.server, &name) {
                Ok(ofport) => log::info!("ovsdb: port {name} (OpenFlow port {ofport}) removed"),
                Err(e) => log::warn!("ovsdb: removing port {name}: {e}"),
            }
            self.applied.remove(&name);
        }
        self.errors.clear();
        for w in &ifaces {
            match &w.what {
                IfaceKind::Port(spec) if !self.applied.contains_key(&w.name) => {
                    match self.open(spec, w.previous_ofport) {
                        Ok(ofport) => {
                            log::info!("ovsdb: port {} (OpenFlow port {ofport}) added", w.name);
                            self.applied.insert(w.name.clone(), spec.clone());
                        }
                        Err(e) => {
                            log::warn!("ovsdb: interface {}: {e}", w.name);
                            self.errors.insert(w.uuid.clone(), e);
                        }
                    }
                }
                IfaceKind::Bad(e) => {
                    self.errors.insert(w.uuid.clone(), e.clone());
                }
                _ => {}
            }
        }
        self.apply_settings(served.as_ref().map(|(u, _)| u.as_str()));
        self.apply_controllers(served.as_ref().map(|(u, _)| u.as_str()));
        None
    }

    /// The served bridge's `Controller` targets, in UUID order.
    fn controllers(&self, bridge: Option<&str>) -> Vec<(String, String)> {
        let Some(b) = bridge.and_then(|u| self.row("Bridge", u)) else {
            return Vec::new();
        };
        datum::uuids(b.get("controller"))
            .into_iter()
            .filter_map(|u| {
                let target = datum::string(self.row("Controller", &u)?.get("target"));
                (!target.is_empty()).then_some((u, target))
            })
            .collect()
    }

    /// Serves the bridge's controllers besides `--controller`'s, and its
    /// `other_config:datapath-id` (the channel restarts when they change).
    fn apply_controllers(&mut self, bridge: Option<&str>) {
        let targets: Vec<String> = self
            .controllers(bridge)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let datapath_id = bridge
            .and_then(|u| self.row("Bridge", u))
            .and_then(|b| datum::string_map(b.get("other_config")).remove("datapath-id"));
        let wanted = ofchan::RuntimeConfig {
            targets,
            datapath_id,
        };
        let switch = self.server.switch.clone();
        let mut channel = switch.openflow.lock();
        if channel.runtime == wanted {
            return;
        }
        match channel.reconfigure(&switch, wanted.clone()) {
            Ok(()) => log::info!("ovsdb: OpenFlow channel {wanted:?}"),
            Err(e) => log::warn!("ovsdb: OpenFlow channel {wanted:?}: {e:#}"),
        }
    }

    /// Opens a port; without an `ofport_request` it gets its previous
    /// number when that is free.
    fn open(&self, spec: &str, previous: Option<u32>) -> Result<u32, String> {
        let mut spec = port_spec(spec)?;
        if spec.ofport.is_none() {
            let ports = self.server.switch.ports.lock();
            spec.ofport = previous.filter(|n| !ports.by_ofport.contains_key(n));
        }
        commands::add_port_spec(&self.server, spec).map(|p| p.ofport)
    }

    /// `other_config` settings that changed since last applied.
    fn apply_settings(&mut self, bridge: Option<&str>) {
        let mut wanted: Vec<(&str, String)> = Vec::new();
        if let Some((_, root)) = self.root() {
            let oc = datum::string_map(root.get("other_config"));
            for (col, key) in OTHER_CONFIG {
                if let Some(v) = oc.get(*col) {
                    wanted.push((key, v.clone()));
                }
            }
        }
        if let Some(b) = bridge.and_then(|u| self.row("Bridge", u)) {
            let oc = datum::string_map(b.get("other_config"));
            for (col, key) in BRIDGE_CONFIG {
                if let Some(v) = oc.get(*col) {
                    wanted.push((key, v.clone()));
                }
            }
        }
        for (key, value) in wanted {
            if self.settings.get(key) == Some(&value) {
                continue;
            }
            match commands::run_words(&self.server, "set", &[key.to_string(), value.clone()]) {
                Ok(_) => log::info!("ovsdb: {key} = {value}"),
                Err(e) => log::warn!("ovsdb: other_config:{key}={value}: {e}"),
            }
            self.settings.insert(key.to_string(), value);
        }
    }

    /// The status columns that changed since last written, as `update`
    /// operations.
    fn write_back(&mut self, with_stats: bool) -> Vec<Value> {
        let mut rows: Vec<(String, String, Row)> = Vec::new();
        let (served, ifaces) = self.wanted();
        {
            let ports = self.server.switch.ports.lock();
            for w in &ifaces {
                let mut row = Row::new();
                if let Some(e) = self.errors.get(&w.uuid) {
                    row.insert("ofport".into(), json!(-1));
                    row.insert("error".into(), json!(e));
                    row.insert("link_state".into(), datum::optional(None));
                } else if matches!(w.what, IfaceKind::Local) {
                    row.insert("ofport".into(), json!(OFPP_LOCAL));
                    row.insert("error".into(), datum::optional(None));
                    row.insert("admin_state".into(), json!("down"));
                    row.insert("link_state".into(), json!("down"));
                } else if let Some(p) = ports.by_name(&w.name) {
                    let up = p.eth.link().is_ok_and(|l| l.up);
                    row.insert("ofport".into(), json!(p.ofport));
                    row.insert("error".into(), datum::optional(None));
                    row.insert(
                        "admin_state".into(),
                        json!(if p.admin_down { "down" } else { "up" }),
                    );
                    row.insert("link_state".into(), json!(if up { "up" } else { "down" }));
                    if let Ok(mac) = p.eth.mac_address() {
                        row.insert("mac_in_use".into(), json!(flowcache::text::mac(&mac)));
                    }
                    if let Ok(s) = p.eth.stats() {
                        let stats = datum::map([
                            ("rx_packets", s.ipackets),
                            ("tx_packets", s.opackets),
                            ("rx_bytes", s.ibytes),
                            ("tx_bytes", s.obytes),
                            ("rx_dropped", s.imissed + s.rx_nombuf + s.rx_oversized),
                            ("tx_dropped", s.tx_full),
                            ("rx_errors", s.ierrors),
                            ("tx_errors", s.oerrors),
                        ]);
                        let key = ("Interface".to_string(), w.uuid.clone());
                        let first = self
                            .written
                            .get(&key)
                            .is_none_or(|r| !r.contains_key("statistics"));
                        if with_stats || first {
                            row.insert("statistics".into(), stats);
                        } else if let Some(old) = self.written.get(&key) {
                            row.insert("statistics".into(), old["statistics"].clone());
                        }
                    }
                } else {
                    continue;
                }
                rows.push(("Interface".into(), w.uuid.clone(), row));
            }
        }
        if let Some((buuid, _)) = &served {
            let dpid = self
                .server
                .switch
                .openflow
                .lock()
                .datapath_id(&self.server.switch);
            if let Some(dpid) = dpid {
                let mut row = Row::new();
                row.insert("datapath_id".into(), json!(format!("{dpid:016x}")));
                rows.push(("Bridge".into(), buuid.clone(), row));
            }
        }
        let status = crate::ofchan::show(&self.server.switch.controllers);
        for (uuid, target) in self.controllers(served.as_ref().map(|(u, _)| u.as_str())) {
            let conns: Vec<_> = status
                .iter()
                .filter(|c| c.target == target && c.peer.is_some())
                .collect();
            let connected = conns.iter().any(|c| c.state == "connected");
            let state = status
                .iter()
                .find(|c| c.target == target && c.peer.is_none())
                .map(|c| c.state.clone())
                .unwrap_or_else(|| "not served".into());
            let mut row = Row::new();
            row.insert("is_connected".into(), json!(connected));
            row.insert("status".into(), datum::map([("state", json!(state))]));
            if let Some(role) = conns.iter().find_map(|c| c.role.clone()) {
                let role = match role.as_str() {
                    "equal" => "other".to_string(),
                    r => r.to_string(),
                };
                row.insert("role".into(), json!(role));
            }
            rows.push(("Controller".into(), uuid, row));
        }
        if let Some((uuid, root)) = self.root() {
            let mut row = Row::new();
            row.insert(
                "cur_cfg".into(),
                json!(datum::integer(root.get("next_cfg")).unwrap_or(0)),
            );
            row.insert("dpdk_initialized".into(), json!(true));
            row.insert("dpdk_version".into(), json!(pmd::dpdk::version()));
            rows.push(("Open_vSwitch".into(), uuid.clone(), row));
        }
        let mut ops = Vec::new();
        for (table, uuid, row) in rows {
            let key = (table.clone(), uuid.clone());
            if self.written.get(&key) == Some(&row) {
                continue;
            }
            ops.push(json!({
                "op": "update",
                "table": table,
                "where": [["_uuid", "==", datum::uuid_atom(&uuid)]],
                "row": row.clone(),
            }));
            self.written.insert(key, row);
        }
        ops
    }
}

/// The port an [`IfaceKind::Port`] spec describes: its options checked
/// by the `--port` parser (VLAN rules included), then its devargs.
fn port_spec(spec: &str) -> Result<args::PortSpec, String> {
    let (device, options) = spec
        .split_once('\t')
        .ok_or_else(|| format!("internal error: bad spec {spec:?}"))?;
    let mut p = args::parse_port(options).map_err(|e| match e {
        args::ArgError::Port { reason, .. } => reason,
        other => other.to_string(),
    })?;
    p.device = device.to_string();
    Ok(p)
}

/// What an interface of the served bridge is, from its row and its port's.
fn iface_kind(name: &str, bridge: &str, port: &Row, iface: &Row) -> IfaceKind {
    let kind = datum::string(iface.get("type"));
    let options = datum::string_map(iface.get("options"));
    let device = match kind.as_str() {
        "internal" if name == bridge => return IfaceKind::Local,
        "dpdk" => match options.get("dpdk-devargs") {
            Some(d) if !d.is_empty() => d.clone(),
            _ => return IfaceKind::Bad("type dpdk needs options:dpdk-devargs".into()),
        },
        "dpdkvhostuserclient" => match options.get("vhost-server-path") {
            Some(p) if !p.is_empty() => format!("vhost-user-client:{p}"),
            _ => {
                return IfaceKind::Bad(
                    "type dpdkvhostuserclient needs options:vhost-server-path".into(),
                )
            }
        },
        "" | "system" => {
            return IfaceKind::Bad(
                "type system (a kernel device) is not supported by vportd: use type=dpdk \
                 options:dpdk-devargs=DEVARGS (a net_tap vdev reaches a kernel interface)"
                    .into(),
            )
        }
        other => {
            return IfaceKind::Bad(format!(
                "interface type {other:?} is not supported by vportd (dpdk, dpdkvhostuserclient, \
                 and the bridge's internal interface)"
            ))
        }
    };
    // Devargs hold commas of their own: they are kept apart from the
    // options by a tab (see `port_spec`).
    let mut spec = format!("{device}\t{name}=dev");
    if let Some(n) = datum::integer(iface.get("ofport_request")) {
        spec.push_str(&format!(",ofport={n}"));
    }
    if let Some(n) = options.get("n_rxq") {
        spec.push_str(&format!(",rxq={n}"));
    }
    if let Some(n) = datum::integer(iface.get("mtu_request")) {
        spec.push_str(&format!(",mtu={n}"));
    }
    if let Some(t) = datum::integer(port.get("tag")) {
        spec.push_str(&format!(",tag={t}"));
    }
    let trunks = datum::integers(port.get("trunks"));
    if !trunks.is_empty() {
        let list: Vec<String> = trunks.iter().map(|t| t.to_string()).collect();
        spec.push_str(&format!(",trunks={}", list.join(",")));
    }
    let mode = datum::string(port.get("vlan_mode"));
    if !mode.is_empty() {
        spec.push_str(&format!(",vlan_mode={mode}"));
    }
    IfaceKind::Port(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Value) -> Row {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn interface_rows_become_port_specs() {
        let port = row(json!({"name": "p1", "tag": 10, "trunks": ["set", []],
                              "vlan_mode": ["set", []]}));
        let iface = row(json!({"name": "p1", "type": "dpdk",
            "options": ["map", [["dpdk-devargs", "net_pcap0,rx_pcap=/in.pcap"], ["n_rxq", "2"]]],
            "ofport_request": 7, "mtu_request": ["set", []]}));
        match iface_kind("p1", "br0", &port, &iface) {
            IfaceKind::Port(s) => {
                assert_eq!(
                    s,
                    "net_pcap0,rx_pcap=/in.pcap\tp1=dev,ofport=7,rxq=2,tag=10"
                );
                let spec = port_spec(&s).unwrap();
                assert_eq!(spec.device, "net_pcap0,rx_pcap=/in.pcap");
                assert_eq!(spec.ofport, Some(7));
                assert_eq!(spec.vlan.tag, 10);
            }
            _ => panic!("not a port"),
        }
        let trunk = row(json!({"name": "p2", "trunks": ["set", [10, 20]]}));
        let iface = row(json!({"name": "p2", "type": "dpdk",
            "options": ["map", [["dpdk-devargs", "net_null1"]]]}));
        match iface_kind("p2", "br0", &trunk, &iface) {
            IfaceKind::Port(s) => {
                let spec = port_spec(&s).unwrap();
                assert_eq!(spec.device, "net_null1");
                assert_eq!(spec.vlan.trunks.unwrap().len(), 2);
            }
            _ => panic!("not a port"),
        }
        let local = row(json!({"name": "br0", "type": "internal"}));
        assert!(matches!(
            iface_kind("br0", "br0", &row(json!({})), &local),
            IfaceKind::Local
        ));
        for bad in [
            json!({"type": ""}),
            json!({"type": "dpdk"}),
            json!({"type": "geneve"}),
        ] {
            assert!(matches!(
                iface_kind("x", "br0", &row(json!({})), &row(bad)),
                IfaceKind::Bad(_)
            ));
        }
    }
}
