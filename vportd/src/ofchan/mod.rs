//! The OpenFlow channel: vportd as an OpenFlow 1.3 switch that controllers
//! and `ovs-ofctl` drive over TCP or Unix sockets (`--controller`).
//!
//! * [`target`]: the `tcp:`/`unix:` targets (active, reconnect with 1 s → 8 s backoff)
//!   and `ptcp:`/`punix:` (passive) targets.
//! * [`session`]: one connection, HELLO negotiation, then every message
//!   decoded with the `openflow` crate and applied to the bridge through the
//!   same `Bridge` calls `vportctl add-flow`/`mod-flows`/`del-flows` use (so
//!   megaflow revalidation is the same).
//! * This module: the arguments, the threads (one per listener, one per
//!   active target, one per connection; none of them is a PMD and none
//!   holds a lock a PMD takes), the registry `vportctl show` reads, and the
//!   asynchronous messages (PORT_STATUS, FLOW_REMOVED) fanned out to every
//!   connection over a bounded queue (a controller that stops reading
//!   loses messages, counted, instead of growing vportd's memory).

pub mod inject;
pub mod session;
pub mod target;

use crate::switch::Switch;
use anyhow::{Context, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
pub use target::Target;

/// `--fail-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FailMode {
    /// With no controller connected the tables stay as they are.
    #[default]
    Secure,
    /// With no controller configured, table 0 starts with
    /// `priority=0,actions=NORMAL`; with controllers configured and none
    /// connected for three inactivity-probe intervals, every packet is
    /// switched by NORMAL (fail-open) until one connects.
    Standalone,
}

/// The OpenFlow channel's command-line options (flattened into the
/// daemon's).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OfArgs {
    /// An OpenFlow controller: tcp:IP[:PORT] or unix:PATH (vportd
    /// connects, and reconnects with backoff), ptcp:PORT[:IP] (listens;
    /// IP defaults to 127.0.0.1) or punix:PATH (mode 0600). Repeatable.
    #[arg(long = "controller", value_name = "TARGET")]
    pub controllers: Vec<String>,

    /// The datapath id in FEATURES_REPLY (hex, up to 16 digits). Default:
    /// the first port's MAC address, as OVS derives it.
    #[arg(long, value_name = "HEX")]
    pub datapath_id: Option<String>,

    /// What happens with no controller connected: `secure` keeps the
    /// tables as they are; `standalone` falls back to NORMAL forwarding
    /// (as OVS: see docs/operating.md).
    #[arg(long, value_enum, default_value_t = FailMode::Secure)]
    pub fail_mode: FailMode,

    /// Seconds a connection may be idle before vportd sends an echo
    /// request; with no answer within as long again it is closed (OVS's
    /// Controller inactivity_probe). Fail-open starts after three of
    /// these with no controller connected.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub inactivity_probe: u32,

    /// Packet-ins per second per controller (token bucket).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub controller_rate_limit: u32,
}

/// Parses `--datapath-id`.
pub fn parse_dpid(s: &str) -> Result<u64, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.is_empty() || h.len() > 16 {
        return Err(format!("--datapath-id {s}: expected 1 to 16 hex digits"));
    }
    u64::from_str_radix(h, 16).map_err(|_| format!("--datapath-id {s}: not hexadecimal"))
}

/// OpenFlow 1.3 controller roles.
pub const ROLE_NOCHANGE: u32 = 0;
pub const ROLE_EQUAL: u32 = 1;
pub const ROLE_MASTER: u32 = 2;
pub const ROLE_SLAVE: u32 = 3;

pub fn role_name(r: u32) -> &'static str {
    match r {
        ROLE_MASTER => "master",
        ROLE_SLAVE => "slave",
        _ => "equal",
    }
}

/// Asynchronous messages queued per connection, at most.
pub const ASYNC_QUEUE: usize = 1024;

/// What `vportctl show` prints of one connection.
#[derive(Clone, Debug, Default)]
pub struct ConnStatus {
    pub state: &'static str,
    pub peer: String,
    pub role: u32,
    pub version: u8,
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub last_error: Option<String>,
    pub async_config: openflow::msg::AsyncConfig,
}

/// One live connection, as the registry sees it.
pub struct Conn {
    pub id: u64,
    pub target: String,
    pub status: Mutex<ConnStatus>,
    /// Asynchronous messages (encoded once the version is known: the
    /// closure gets it).
    queue: crossbeam_channel::Sender<Vec<u8>>,
    pub async_dropped: AtomicU64,
    /// Packet-ins over `--controller-rate-limit`, dropped.
    pub rate_dropped: AtomicU64,
    pub bucket: Mutex<Option<TokenBucket>>,
}

impl Conn {
    /// Queues an asynchronous message; a full queue drops and counts it.
    pub fn send_async(&self, msg: Vec<u8>) {
        if self.queue.try_send(msg).is_err() {
            self.async_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One configured target's state.
#[derive(Clone, Debug)]
pub struct TargetStatus {
    pub target: String,
    pub state: String,
    pub last_error: Option<String>,
    pub connects: u64,
}

/// Everything the channel shares: connections, targets, role election,
/// the rules added with SEND_FLOW_REM.
#[derive(Default)]
pub struct Registry {
    pub conns: Mutex<Vec<Arc<Conn>>>,
    pub targets: Mutex<Vec<TargetStatus>>,
    next_id: AtomicU64,
    /// The highest generation id a master/slave role request carried.
    pub generation: Mutex<Option<u64>>,
    /// (table, priority, match) of rules whose flow mod asked for
    /// FLOW_REMOVED, with the flags it carried.
    pub flow_flags: Mutex<HashMap<(u8, u16, ofproto::Match), u16>>,
    pub datapath_id: AtomicU64,
    /// `--inactivity-probe` in milliseconds.
    pub probe_ms: AtomicU64,
    /// The frozen translations of recent packet-outs' action lists: held
    /// for a while (also after the connection that sent them closed, as
    /// `ovs-ofctl packet-out` does at once) so that their ids live until
    /// the PMD has looked the packets up (the translation then holds them).
    pub packet_outs: Mutex<std::collections::VecDeque<(Instant, Arc<ofproto::recirc::RecircNode>)>>,
    /// PACKET_OUT's way into the datapath.
    pub injector: inject::Injector,
}

impl Registry {
    fn set_target(&self, i: usize, state: &str, err: Option<String>, connected: bool) {
        let mut t = self.targets.lock();
        if let Some(t) = t.get_mut(i) {
            t.state = state.to_string();
            if err.is_some() {
                t.last_error = err;
            }
            if connected {
                t.connects += 1;
            }
        }
    }

    /// Sends `make(version)` to every connection whose role and async
    /// config `wants(status)`.
    pub fn broadcast(&self, wants: impl Fn(&ConnStatus) -> bool, make: impl Fn(u8) -> Vec<u8>) {
        for c in self.conns.lock().iter() {
            let st = c.status.lock();
            if st.version != 0 && wants(&st) {
                let v = st.version;
                drop(st);
                c.send_async(make(v));
            }
        }
    }
}

/// A socket of either kind.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_timeouts(&self, read: Duration, write: Duration) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(read))?;
                s.set_write_timeout(Some(write))?;
                s.set_nodelay(true)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(read))?;
                s.set_write_timeout(Some(write))
            }
        }
    }

    fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s.peer_addr().map_or("?".into(), |a| a.to_string()),
            Stream::Unix(_) => "unix".into(),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(b),
            Stream::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// Connections served at once over all passive targets.
pub const MAX_CONNS: usize = 64;

/// The running channel.
pub struct OfHandle {
    switch: Arc<Switch>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    unix_paths: Vec<std::path::PathBuf>,
}

impl OfHandle {
    /// Closes every connection and listener and waits for their threads.
    pub fn stop(mut self) {
        self.switch.bridge.set_hooks(None);
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock());
        for t in conns {
            let _ = t.join();
        }
        for p in &self.unix_paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What a session needs.
#[derive(Clone)]
pub struct Ctx {
    pub switch: Arc<Switch>,
    pub registry: Arc<Registry>,
    pub stop: Arc<AtomicBool>,
}

/// The datapath id: `--datapath-id`, else the lowest-numbered port's MAC.
fn datapath_id(switch: &Switch, args: &OfArgs) -> Result<u64> {
    if let Some(s) = &args.datapath_id {
        return parse_dpid(s).map_err(|e| anyhow::anyhow!(e));
    }
    let ports = switch.ports.lock();
    let mac = ports
        .by_ofport
        .values()
        .next()
        .and_then(|p| p.eth.mac_address().ok())
        .unwrap_or([0; 6]);
    Ok(mac.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
}

/// Checks the options before anything starts.
pub fn check_args(args: &OfArgs) -> Result<Vec<Target>> {
    if let Some(s) = &args.datapath_id {
        parse_dpid(s).map_err(|e| anyhow::anyhow!(e))?;
    }
    args.controllers
        .iter()
        .map(|c| target::parse(c).map_err(|e| anyhow::anyhow!(e)))
        .collect()
}

/// Starts listeners and active connections; `None` when there is no
/// `--controller`.
pub fn start(switch: &Arc<Switch>, args: &OfArgs) -> Result<Option<OfHandle>> {
    let targets = check_args(args)?;
    if targets.is_empty() {
        // No controller to fail over from (a restart without targets
        // leaves fail-open too).
        if switch.bridge.set_fail_open(false) {
            log::info!("OpenFlow: leaving fail-open mode (no controller configured)");
        }
        return Ok(None);
    }
    let registry = switch.controllers.clone();
    registry
        .datapath_id
        .store(datapath_id(switch, args)?, Ordering::Relaxed);
    *registry.targets.lock() = targets
        .iter()
        .map(|t| TargetStatus {
            target: t.to_string(),
            state: "starting".into(),
            last_error: None,
            connects: 0,
        })
        .collect();
    switch.bridge.set_hooks(Some(Arc::new(Hooks {
        registry: registry.clone(),
        rate: args.controller_rate_limit,
    })));
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx {
        switch: switch.clone(),
        registry: registry.clone(),
        stop: stop.clone(),
    };
    let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let mut threads = Vec::new();
    let mut unix_paths = Vec::new();
    for (i, t) in targets.into_iter().enumerate() {
        let name = t.to_string();
        match t {
            Target::Ptcp(addr) => {
                let l = TcpListener::bind(addr).with_context(|| format!("--controller {name}"))?;
                l.set_nonblocking(true)?;
                log::info!("OpenFlow: listening on {name}");
                registry.set_target(i, "listening", None, false);
                let (ctx, conns) = (ctx.clone(), conns.clone());
                threads.push(spawn(format!("of-listen-{i}"), move || {
                    accept_loop(ctx, i, name, conns, || {
                        l.accept().map(|(s, _)| {
                            let _ = s.set_nonblocking(false);
                            Stream::Tcp(s)
                        })
                    })
                })?);
            }
            Target::Punix(path) => {
                if std::fs::symlink_metadata(&path)
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                {
                    let _ = std::fs::remove_file(&path);
                }
                let l =
                    UnixListener::bind(&path).with_context(|| format!("--controller {name}"))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("--controller {name}: chmod 0600"))?;
                l.set_nonblocking(true)?;
                unix_paths.push(path.clone());
                log::info!("OpenFlow: listening on {name}");
                registry.set_target(i, "listening", None, false);
                let (ctx, conns) = (ctx.clone(), conns.clone());
                threads.push(spawn(format!("of-listen-{i}"), move || {
                    accept_loop(ctx, i, name, conns, || {
                        l.accept().map(|(s, _)| {
                            let _ = s.set_nonblocking(false);
                            Stream::Unix(s)
                        })
                    })
                })?);
            }
            Target::Tcp(_) | Target::Unix(_) => {
                let ctx = ctx.clone();
                threads.push(spawn(format!("of-active-{i}"), move || {
                    active_loop(ctx, i, t)
                })?);
            }
        }
    }
    {
        let ctx = ctx.clone();
        threads.push(spawn("of-ports".into(), move || session::port_watch(ctx))?);
    }
    let probe = probe_interval(args);
    if args.fail_mode == FailMode::Standalone {
        let ctx = ctx.clone();
        threads.push(spawn("of-fail-open".into(), move || {
            fail_open_watch(ctx, probe * 3)
        })?);
    } else if switch.bridge.set_fail_open(false) {
        log::info!("OpenFlow: leaving fail-open mode (--fail-mode secure)");
    }
    registry
        .probe_ms
        .store(probe.as_millis() as u64, Ordering::Relaxed);
    Ok(Some(OfHandle {
        switch: switch.clone(),
        stop,
        threads,
        conns,
        unix_paths,
    }))
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .with_context(|| format!("spawning thread {name}"))
}

const POLL: Duration = Duration::from_millis(50);

fn accept_loop(
    ctx: Ctx,
    index: usize,
    name: String,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: impl Fn() -> std::io::Result<Stream>,
) {
    while !ctx.stop.load(Ordering::Relaxed) {
        match accept() {
            Ok(stream) => {
                let mut list = conns.lock();
                list.retain(|h| !h.is_finished());
                if list.len() >= MAX_CONNS {
                    log::warn!("OpenFlow {name}: {MAX_CONNS} connections already; refusing one");
                    stream.shutdown();
                    continue;
                }
                let (ctx, tname) = (ctx.clone(), name.clone());
                match spawn(format!("of-conn-{index}"), move || {
                    session::run(&ctx, &tname, stream);
                }) {
                    Ok(h) => list.push(h),
                    Err(e) => log::warn!("OpenFlow {name}: {e:#}"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                log::warn!("OpenFlow {name}: accept: {e}");
                ctx.registry
                    .set_target(index, "listening", Some(e.to_string()), false);
                std::thread::sleep(POLL);
            }
        }
    }
}

/// `--inactivity-probe` (at least 1 s).
pub fn probe_interval(args: &OfArgs) -> Duration {
    Duration::from_secs(u64::from(args.inactivity_probe.max(1)))
}

/// The rules a bridge starts with besides `--flows`: OVS's
/// `connmgr_flushed`: in standalone mode with no controller configured,
/// `priority=0,actions=NORMAL` in table 0 (an ordinary, visible rule).
pub fn initial_rules(args: &OfArgs) -> Vec<ofproto::Rule> {
    if args.fail_mode != FailMode::Standalone || !args.controllers.is_empty() {
        return Vec::new();
    }
    vec![ofproto::Rule {
        priority: 0,
        instructions: ofproto::Instructions {
            apply: vec![ofproto::OfAction::Output(ofproto::OutputPort::Normal)],
            ..Default::default()
        },
        ..Default::default()
    }]
}

/// True when some connection finished its HELLO exchange.
fn any_connected(reg: &Registry) -> bool {
    reg.conns
        .lock()
        .iter()
        .any(|c| c.status.lock().version != 0)
}

/// OVS `fail_open_run` / `fail_open_maybe_recover`: once no controller has
/// been connected for `delay` (three probe intervals, counted from the
/// start or the last disconnection), the bridge switches every packet by
/// NORMAL; as soon as a controller completes its handshake it goes back to
/// the tables, which fail-open never changed.
fn fail_open_watch(ctx: Ctx, delay: Duration) {
    let bridge = &ctx.switch.bridge;
    let mut last_connected = Instant::now();
    while !ctx.stop.load(Ordering::Relaxed) {
        if any_connected(&ctx.registry) {
            last_connected = Instant::now();
            if bridge.set_fail_open(false) {
                log::info!("OpenFlow: a controller connected: leaving fail-open mode");
            }
        } else if last_connected.elapsed() >= delay && bridge.set_fail_open(true) {
            log::warn!(
                "OpenFlow: no controller connected for {} s: entering fail-open mode \
                 (NORMAL switching; the tables are kept)",
                delay.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Backoff between connection attempts: 1 s, doubling to 8 s.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);

fn active_loop(ctx: Ctx, index: usize, t: Target) {
    let name = t.to_string();
    let mut backoff = BACKOFF_MIN;
    while !ctx.stop.load(Ordering::Relaxed) {
        ctx.registry.set_target(index, "connecting", None, false);
        let res = match &t {
            Target::Tcp(a) => {
                TcpStream::connect_timeout(a, Duration::from_secs(2)).map(Stream::Tcp)
            }
            Target::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            _ => unreachable!("passive targets have listeners"),
        };
        match res {
            Ok(s) => {
                log::info!("OpenFlow {name}: connected");
                ctx.registry.set_target(index, "connected", None, true);
                let started = Instant::now();
                let err = session::run(&ctx, &name, s);
                ctx.registry
                    .set_target(index, "backoff", err.clone(), false);
                // A connection that lasted resets the backoff.
                if started.elapsed() > BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
            }
            Err(e) => {
                log::debug!("OpenFlow {name}: connect: {e}");
                ctx.registry
                    .set_target(index, "backoff", Some(e.to_string()), false);
            }
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !ctx.stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

impl Registry {
    /// Adds a connection; returns it and the receiving end of its queue.
    pub fn add_conn(
        &self,
        target: &str,
        peer: String,
    ) -> (Arc<Conn>, crossbeam_channel::Receiver<Vec<u8>>) {
        let (tx, rx) = crossbeam_channel::bounded(ASYNC_QUEUE);
        let c = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            target: target.to_string(),
            status: Mutex::new(ConnStatus {
                state: "hello",
                peer,
                role: ROLE_EQUAL,
                ..Default::default()
            }),
            queue: tx,
            async_dropped: AtomicU64::new(0),
            rate_dropped: AtomicU64::new(0),
            bucket: Mutex::new(None),
        });
        self.conns.lock().push(c.clone());
        (c, rx)
    }

    pub fn remove_conn(&self, id: u64) {
        self.conns.lock().retain(|c| c.id != id);
    }
}

/// The rows `vportctl show` prints: each target, then its connections.
pub fn show(reg: &Registry) -> Vec<crate::ctl::json::ControllerInfo> {
    let targets = reg.targets.lock().clone();
    let conns = reg.conns.lock().clone();
    let mut out = Vec::new();
    for t in &targets {
        out.push(crate::ctl::json::ControllerInfo {
            target: t.target.clone(),
            state: t.state.clone(),
            peer: None,
            role: None,
            version: None,
            msgs_in: 0,
            msgs_out: 0,
            async_dropped: 0,
            last_error: t.last_error.clone(),
        });
        for c in conns.iter().filter(|c| c.target == t.target) {
            let st = c.status.lock().clone();
            out.push(crate::ctl::json::ControllerInfo {
                target: t.target.clone(),
                state: st.state.to_string(),
                peer: Some(st.peer.clone()),
                role: Some(session::role_label(st.role).to_string()),
                version: (st.version != 0).then(|| "1.3".to_string()),
                msgs_in: st.msgs_in,
                msgs_out: st.msgs_out,
                async_dropped: c.async_dropped.load(Ordering::Relaxed)
                    + c.rate_dropped.load(Ordering::Relaxed),
                last_error: st.last_error.clone(),
            });
        }
    }
    out
}

/// A token bucket: `rate` tokens per second, bursts of up to `rate`.
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32) -> Self {
        TokenBucket {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The bridge's hooks into the channel: FLOW_REMOVED for expired rules,
/// PACKET_IN for `controller` actions.
pub struct Hooks {
    pub registry: Arc<Registry>,
    pub rate: u32,
}

impl ofproto::bridge::BridgeHooks for Hooks {
    fn rules_expired(
        &self,
        expired: &[(Arc<ofproto::table::RuleEntry>, ofproto::table::ExpiryReason)],
    ) {
        for (e, why) in expired {
            let reason = match why {
                ofproto::table::ExpiryReason::Idle => openflow::msg::OFPRR_IDLE_TIMEOUT,
                ofproto::table::ExpiryReason::Hard => openflow::msg::OFPRR_HARD_TIMEOUT,
            };
            session::flow_removed(&self.registry, e, reason);
        }
    }

    fn packet_in(
        &self,
        up: &flowcache::upcall::UserspacePacket,
        frozen: Option<&ofproto::recirc::FrozenState>,
    ) {
        session::packet_in(&self.registry, self.rate, up, frozen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datapath_ids() {
        assert_eq!(parse_dpid("0x00000000000000ab").unwrap(), 0xab);
        assert_eq!(parse_dpid("ffffffffffffffff").unwrap(), u64::MAX);
        assert!(parse_dpid("").is_err());
        assert!(parse_dpid("12345678901234567").is_err());
        assert!(parse_dpid("xyz").is_err());
    }

    #[test]
    fn token_bucket_refills_at_its_rate() {
        let mut b = TokenBucket::new(2);
        let t0 = b.last;
        assert!(b.take(t0));
        assert!(b.take(t0));
        assert!(!b.take(t0), "a burst is at most `rate`");
        assert!(
            b.take(t0 + Duration::from_millis(500)),
            "one token per 1/rate s"
        );
        assert!(!b.take(t0 + Duration::from_millis(500)));
        // Idle for long: still at most `rate` at once.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(later) && b.take(later) && !b.take(later));
    }
}

/// The running channel and what it serves: the command line's options
/// (`--controller`, `--datapath-id`) plus what is set at run time (OVSDB's
/// `Bridge.controller` and `other_config:datapath-id`). A change restarts
/// the channel, as ovs-vswitchd reconnects when `set-controller` changes
/// the targets.
#[derive(Default)]
pub struct Channel {
    pub args: OfArgs,
    /// What is set at run time.
    pub runtime: RuntimeConfig,
    pub handle: Option<OfHandle>,
}

/// The channel's settings from OVSDB's `Bridge` row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Targets served besides the command line's, in order.
    pub targets: Vec<String>,
    /// `other_config:datapath-id`, over `--datapath-id`.
    pub datapath_id: Option<String>,
}

impl Channel {
    /// Serves `runtime` on top of the command line's options; a no-op
    /// when it is what is served already. A setting that cannot be served
    /// (bad syntax, port in use) is the error; the command line's options
    /// then keep running.
    pub fn reconfigure(&mut self, switch: &Arc<Switch>, runtime: RuntimeConfig) -> Result<()> {
        if runtime == self.runtime {
            return Ok(());
        }
        let mut args = self.args.clone();
        args.controllers.extend(runtime.targets.iter().cloned());
        if runtime.datapath_id.is_some() {
            args.datapath_id = runtime.datapath_id.clone();
        }
        check_args(&args)?;
        if let Some(h) = self.handle.take() {
            h.stop();
        }
        match start(switch, &args) {
            Ok(h) => {
                self.handle = h;
                self.runtime = runtime;
                Ok(())
            }
            Err(e) => {
                self.runtime = RuntimeConfig::default();
                self.handle = start(switch, &self.args).unwrap_or_else(|e2| {
                    log::warn!("OpenFlow: restarting the command line's targets: {e2:#}");
                    None
                });
                Err(e)
            }
        }
    }

    /// The datapath id FEATURES_REPLY carries: the configured one, else
    /// the one derived from the first port's MAC (`None` when that cannot
    /// be read or there is no port).
    pub fn datapath_id(&self, switch: &Switch) -> Option<u64> {
        let configured = self
            .runtime
            .datapath_id
            .as_ref()
            .or(self.args.datapath_id.as_ref());
        match configured {
            Some(s) => parse_dpid(s).ok(),
            None => datapath_id(switch, &self.args).ok().filter(|&d| d != 0),
        }
    }

    /// Stops the channel (at shutdown).
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}
