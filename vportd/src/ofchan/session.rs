//! One OpenFlow connection: HELLO, then a loop that reads messages (with a
//! short timeout, so it also drains the connection's asynchronous queue and
//! notices shutdown), answers them, and applies flow and port changes.
//!
//! Flow mods go through the bridge calls `vportctl` uses (`add_rules`,
//! `modify_rules`, `delete_rules`): each publishes new tables atomically and
//! the revalidator re-checks the megaflows, exactly as for a flow added on
//! the control socket.

use super::{role_name, Conn, Ctx, Stream, ROLE_EQUAL, ROLE_MASTER, ROLE_NOCHANGE, ROLE_SLAVE};
use ofproto::parse::FlowFilter;
use ofproto::rule::OutputPort;
use ofproto::table::filter_selects;
use openflow::msg::{self, FlowModCommand, Header, Message, MultipartRequest, OFP13_VERSION};
use openflow::{ErrCode, OfError};
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Versions vportd speaks (bitmap bit N = wire version N).
pub const VERSION_BITMAP: u32 = 1 << OFP13_VERSION;
/// The tables a switch reports (0..=253, as OVS does).
pub const N_TABLES: u8 = 254;
/// Default `miss_send_len` (OpenFlow 1.3).
const DEFAULT_MISS_SEND_LEN: u16 = 128;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Flow mod adds batched at most before they are applied.
const MAX_PENDING: usize = 20_000;

struct Session<'a> {
    ctx: &'a Ctx,
    conn: Arc<Conn>,
    version: u8,
    config_flags: u16,
    miss_send_len: u16,
    /// Validated FLOW_MOD adds not applied yet: consecutive adds that a
    /// controller pipelines go to the bridge as one batch (one table
    /// rebuild). `ovs-ofctl add-flows` waits for a barrier after every
    /// flow mod, so it gets no batching (see docs/operating.md). Applied before
    /// any other message is handled (a barrier, a dump), when the
    /// controller pauses (a read times out after 50 ms), at
    /// [`MAX_PENDING`], and when the connection ends.
    pending: Vec<ofproto::Rule>,
}

/// At most this many of them (a flood of packet-outs mostly shares ids).
const MAX_PACKET_OUTS_HELD: usize = 4096;
/// How long a packet-out keeps its recirculation id alive.
const PACKET_OUT_HOLD: Duration = Duration::from_secs(2);

/// Serves one connection until it closes or the daemon stops; returns the
/// error that ended it, if any.
pub fn run(ctx: &Ctx, target: &str, mut stream: Stream) -> Option<String> {
    let (conn, rx) = ctx.registry.add_conn(target, stream.peer());
    let res = serve(ctx, &conn, &rx, &mut stream);
    stream.shutdown();
    ctx.registry.remove_conn(conn.id);
    match &res {
        Ok(()) => log::info!("OpenFlow {target}: connection closed"),
        Err(e) => log::info!("OpenFlow {target}: connection closed: {e}"),
    }
    res.err()
}

fn note_error(conn: &Conn, e: &str) {
    conn.status.lock().last_error = Some(e.to_string());
}

fn serve(
    ctx: &Ctx,
    conn: &Arc<Conn>,
    rx: &crossbeam_channel::Receiver<Vec<u8>>,
    stream: &mut Stream,
) -> Result<(), String> {
    stream
        .set_timeouts(super::POLL, WRITE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let mut s = Session {
        ctx,
        conn: conn.clone(),
        version: 0,
        config_flags: 0,
        miss_send_len: DEFAULT_MISS_SEND_LEN,
        pending: Vec::new(),
    };
    s.send(stream, &msg::hello(OFP13_VERSION, 0, VERSION_BITMAP))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let mut probe = Probe::new(Duration::from_millis(
        ctx.registry.probe_ms.load(Ordering::Relaxed).max(1000),
    ));
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match probe.check(Instant::now()) {
            ProbeAction::None => {}
            ProbeAction::Echo if s.version != 0 => {
                s.send(stream, &msg::echo_request(s.version, 0))?
            }
            ProbeAction::Echo => {}
            ProbeAction::Close => {
                let e = format!(
                    "no message for {} s (inactivity probe): closing",
                    probe.interval.as_secs() * 2
                );
                note_error(conn, &e);
                s.flush(stream)?;
                return Err(e);
            }
        }
        if s.version != 0 {
            while let Ok(m) = rx.try_recv() {
                s.send(stream, &m)?;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                s.flush(stream)?;
                return Ok(());
            }
            Ok(n) => {
                probe.heard(Instant::now());
                buf.extend_from_slice(&chunk[..n])
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The controller paused: what it sent so far takes effect.
                s.flush(stream)?;
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                s.flush(stream)?;
                note_error(conn, &e.to_string());
                return Err(e.to_string());
            }
        }
        let mut at = 0;
        while let Some(h) = Header::parse(&buf[at..]) {
            let len = h.length as usize;
            if len < 8 {
                let e = format!("message with length {len} (below the 8-byte header)");
                note_error(conn, &e);
                let v = if s.version != 0 { s.version } else { h.version };
                let _ = s.send(
                    stream,
                    &msg::error(v, h.xid, ErrCode::BAD_LEN, &buf[at..at + 8]),
                );
                return Err(e);
            }
            if buf.len() - at < len {
                break;
            }
            let m = buf[at..at + len].to_vec();
            at += len;
            s.conn.status.lock().msgs_in += 1;
            if h.type_ != msg::OFPT_FLOW_MOD {
                s.flush(stream)?;
            }
            s.handle(stream, &m)?;
        }
        buf.drain(..at);
        if s.pending.len() >= MAX_PENDING {
            s.flush(stream)?;
        }
    }
}

/// OVS rconn's inactivity probe: after `interval` without a message an
/// echo request goes out; after as long again the connection is closed.
struct Probe {
    interval: Duration,
    last_heard: Instant,
    echo_sent: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum ProbeAction {
    None,
    Echo,
    Close,
}

impl Probe {
    fn new(interval: Duration) -> Probe {
        Probe {
            interval,
            last_heard: Instant::now(),
            echo_sent: false,
        }
    }

    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.echo_sent = false;
    }

    fn check(&mut self, now: Instant) -> ProbeAction {
        let idle = now.saturating_duration_since(self.last_heard);
        if idle >= self.interval * 2 {
            ProbeAction::Close
        } else if idle >= self.interval && !self.echo_sent {
            self.echo_sent = true;
            ProbeAction::Echo
        } else {
            ProbeAction::None
        }
    }
}

impl Session<'_> {
    /// Applies the pending adds.
    fn flush(&mut self, stream: &mut Stream) -> Result<(), String> {
        let _ = stream;
        if !self.pending.is_empty() {
            let rules = std::mem::take(&mut self.pending);
            self.ctx.switch.bridge.add_rules(rules);
        }
        Ok(())
    }

    fn send(&self, stream: &mut Stream, m: &[u8]) -> Result<(), String> {
        stream.write_all(m).map_err(|e| {
            note_error(&self.conn, &e.to_string());
            format!("write: {e}")
        })?;
        self.conn.status.lock().msgs_out += 1;
        Ok(())
    }

    fn send_error(
        &self,
        stream: &mut Stream,
        xid: u32,
        e: &OfError,
        m: &[u8],
    ) -> Result<(), String> {
        log::info!("OpenFlow {}: {e}", self.conn.target);
        note_error(&self.conn, &e.to_string());
        self.send(stream, &msg::error(self.version, xid, e.code, m))
    }

    fn role(&self) -> u32 {
        self.conn.status.lock().role
    }

    fn handle(&mut self, stream: &mut Stream, m: &[u8]) -> Result<(), String> {
        let h = Header::parse(m).expect("a whole message has a header");
        if self.version == 0 {
            return self.hello(stream, &h, m);
        }
        if h.version != self.version {
            let e = OfError::new(
                ErrCode::BAD_VERSION,
                format!("version {:#04x} on an OpenFlow 1.3 connection", h.version),
            );
            return self.send_error(stream, h.xid, &e, m);
        }
        let decoded = match msg::decode(m) {
            Ok(d) => d,
            Err(e) => return self.send_error(stream, h.xid, &e, m),
        };
        match self.apply(stream, h.xid, decoded) {
            Ok(()) => Ok(()),
            Err(Fail::Of(e)) => self.send_error(stream, h.xid, &e, m),
            Err(Fail::Io(e)) => Err(e),
        }
    }

    fn hello(&mut self, stream: &mut Stream, h: &Header, m: &[u8]) -> Result<(), String> {
        let bitmap = match msg::decode(m) {
            Ok(Message::Hello { bitmap }) => bitmap,
            _ if h.type_ == msg::OFPT_HELLO => None,
            _ => {
                let e = "the first message was not HELLO".to_string();
                let _ = self.send(
                    stream,
                    &msg::error_text(h.version, h.xid, ErrCode::HELLO_INCOMPATIBLE, &e),
                );
                note_error(&self.conn, &e);
                return Err(e);
            }
        };
        let ok = match bitmap {
            Some(b) => b & VERSION_BITMAP != 0,
            None => h.version >= OFP13_VERSION,
        };
        if !ok {
            let e = format!(
                "peer offers OpenFlow version(s) {}; vportd speaks only OpenFlow 1.3 (0x04) \
                 (with ovs-ofctl, give -O OpenFlow13)",
                match bitmap {
                    Some(b) => format!("bitmap {b:#x}"),
                    None => format!("up to {:#04x}", h.version),
                }
            );
            let v = h.version.min(OFP13_VERSION);
            let _ = self.send(
                stream,
                &msg::error_text(v, h.xid, ErrCode::HELLO_INCOMPATIBLE, &e),
            );
            note_error(&self.conn, &e);
            return Err(e);
        }
        self.version = OFP13_VERSION;
        let mut st = self.conn.status.lock();
        st.version = OFP13_VERSION;
        st.state = "connected";
        Ok(())
    }
}

enum Fail {
    Of(OfError),
    Io(String),
}

impl From<OfError> for Fail {
    fn from(e: OfError) -> Self {
        Fail::Of(e)
    }
}

fn of(code: ErrCode, reason: impl Into<String>) -> Fail {
    Fail::Of(OfError::new(code, reason))
}

/// 32-bit port (`OFPP_ANY` = none) → an out_port filter.
fn out_port_filter(p: u32) -> Result<Option<OutputPort>, Fail> {
    if p == openflow::actions::OFPP13_ANY {
        return Ok(None);
    }
    match openflow::actions::output_port(p) {
        Some(op) => Ok(Some(op)),
        None => Err(of(ErrCode::BAD_PORT, format!("out_port {p:#x}"))),
    }
}

fn cookie_filter(cookie: u64, mask: u64) -> Option<(u64, u64)> {
    (mask != 0).then_some((cookie & mask, mask))
}

impl Session<'_> {
    fn reply(&self, stream: &mut Stream, m: &[u8]) -> Result<(), Fail> {
        self.send(stream, m).map_err(Fail::Io)
    }

    fn writable(&self) -> Result<(), Fail> {
        if self.role() == ROLE_SLAVE {
            return Err(of(ErrCode::IS_SLAVE, "this controller is a slave"));
        }
        Ok(())
    }

    fn apply(&mut self, stream: &mut Stream, xid: u32, m: Message<'_>) -> Result<(), Fail> {
        let v = self.version;
        let reg = &self.ctx.registry;
        match m {
            Message::Hello { .. } | Message::EchoReply => {}
            Message::Error { type_, code, .. } => {
                log::info!(
                    "OpenFlow {}: controller sent {}",
                    self.conn.target,
                    ErrCode { type_, code }.name()
                );
            }
            Message::EchoRequest(data) => self.reply(stream, &msg::echo_reply(v, xid, data))?,
            Message::FeaturesRequest => {
                let dpid = reg.datapath_id.load(Ordering::Relaxed);
                self.reply(stream, &msg::features_reply(v, xid, dpid, N_TABLES))?
            }
            Message::GetConfigRequest => self.reply(
                stream,
                &msg::get_config_reply(v, xid, self.config_flags, self.miss_send_len),
            )?,
            Message::SetConfig {
                flags,
                miss_send_len,
            } => {
                if flags & !3 != 0 {
                    return Err(of(ErrCode::SCFC_BAD_FLAGS, format!("flags {flags:#x}")));
                }
                self.config_flags = flags;
                self.miss_send_len = miss_send_len;
            }
            Message::BarrierRequest => self.reply(stream, &msg::barrier_reply(v, xid))?,
            Message::GetAsyncRequest => {
                let c = self.conn.status.lock().async_config;
                self.reply(stream, &msg::get_async_reply(v, xid, &c))?
            }
            Message::SetAsync(c) => self.conn.status.lock().async_config = c,
            Message::RoleRequest {
                role,
                generation_id,
            } => self.role_request(stream, xid, role, generation_id)?,
            Message::FlowMod(fm) => {
                self.writable()?;
                if fm.command != FlowModCommand::Add || fm.flags & msg::OFPFF_CHECK_OVERLAP != 0 {
                    self.flush(stream).map_err(Fail::Io)?;
                }
                self.flow_mod(&fm)?;
            }
            Message::PortMod(pm) => {
                self.writable()?;
                self.port_mod(&pm)?;
            }
            Message::GroupMod(gm) => {
                self.writable()?;
                self.group_mod(gm)?;
            }
            Message::PacketOut(po) => {
                self.writable()?;
                self.packet_out(&po)?;
            }
            Message::Multipart { req, .. } => self.multipart(stream, xid, req)?,
        }
        Ok(())
    }

    fn role_request(&self, stream: &mut Stream, xid: u32, role: u32, gen: u64) -> Result<(), Fail> {
        if role > ROLE_SLAVE {
            return Err(of(ErrCode::RRFC_BAD_ROLE, format!("role {role}")));
        }
        let reg = &self.ctx.registry;
        let mut g = reg.generation.lock();
        if role == ROLE_MASTER || role == ROLE_SLAVE {
            if let Some(cur) = *g {
                if (gen.wrapping_sub(cur) as i64) < 0 {
                    return Err(of(
                        ErrCode::RRFC_STALE,
                        format!("generation {gen} is older than {cur}"),
                    ));
                }
            }
            *g = Some(gen);
        }
        if role != ROLE_NOCHANGE {
            if role == ROLE_MASTER {
                for c in reg.conns.lock().iter() {
                    if c.id != self.conn.id {
                        let mut st = c.status.lock();
                        if st.role == ROLE_MASTER {
                            st.role = ROLE_SLAVE;
                        }
                    }
                }
            }
            self.conn.status.lock().role = role;
        }
        let cur = self.role();
        let gen_reply = g.unwrap_or(0);
        drop(g);
        log::info!("OpenFlow {}: role {}", self.conn.target, role_name(cur));
        self.reply(stream, &msg::role_reply(self.version, xid, cur, gen_reply))
    }

    fn flow_mod(&mut self, fm: &msg::FlowMod) -> Result<(), Fail> {
        let bridge = &self.ctx.switch.bridge;
        let reg = &self.ctx.registry;
        if fm.buffer_id != msg::OFP_NO_BUFFER {
            return Err(of(
                ErrCode::BUFFER_UNKNOWN,
                format!("buffer {} (vportd buffers no packets)", fm.buffer_id),
            ));
        }
        match fm.command {
            FlowModCommand::Add => {
                let rule = openflow::flow_mod_rule(fm)?;
                let tables = bridge.tables();
                if let Some(g) = ofproto::group::missing_groups(&rule, tables.groups()) {
                    return Err(of(
                        ErrCode::BAC_BAD_OUT_GROUP,
                        format!("group {g} does not exist"),
                    ));
                }
                if fm.flags & msg::OFPFF_CHECK_OVERLAP != 0 {
                    let t = tables.table(rule.table);
                    let overlap = t.rules().any(|e| {
                        let r = &e.rule;
                        let common = r.matches.mask.masked(&rule.matches.mask);
                        r.priority == rule.priority
                            && r.matches.value.masked(&common) == rule.matches.value.masked(&common)
                            && !(r.matches == rule.matches)
                    });
                    if overlap {
                        return Err(of(
                            ErrCode::FMFC_OVERLAP,
                            "overlaps a rule of equal priority",
                        ));
                    }
                }
                let key = (rule.table, rule.priority, rule.matches);
                let mut flags = reg.flow_flags.lock();
                if fm.flags & msg::OFPFF_SEND_FLOW_REM != 0 {
                    flags.insert(key, fm.flags);
                } else {
                    flags.remove(&key);
                }
                drop(flags);
                self.pending.push(rule);
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                let strict = fm.command == FlowModCommand::ModifyStrict;
                // The new actions are checked against the request's match,
                // as ovs-ofctl mod-flows' text goes through the parser.
                let check = openflow::flow_mod_rule(&msg::FlowMod {
                    table_id: if fm.table_id == msg::OFPTT_ALL {
                        0
                    } else {
                        fm.table_id
                    },
                    idle_timeout: 0,
                    hard_timeout: 0,
                    cookie: 0,
                    ..fm.clone()
                })?;
                if let Some(g) = ofproto::group::missing_groups(&check, bridge.tables().groups()) {
                    return Err(of(
                        ErrCode::BAC_BAD_OUT_GROUP,
                        format!("group {g} does not exist"),
                    ));
                }
                let filter = FlowFilter {
                    matches: fm.matches,
                    table: (fm.table_id != msg::OFPTT_ALL).then_some(fm.table_id),
                    priority: strict.then_some(fm.priority),
                    cookie: cookie_filter(fm.cookie, fm.cookie_mask),
                    out_port: None,
                };
                bridge.modify_rules(&filter, strict, &check.instructions);
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                let strict = fm.command == FlowModCommand::DeleteStrict;
                if fm.out_group != msg::OFPG_ANY {
                    return Err(of(
                        ErrCode::FMFC_UNKNOWN,
                        "delete with an out_group filter is not supported yet",
                    ));
                }
                let filter = FlowFilter {
                    matches: fm.matches,
                    table: (fm.table_id != msg::OFPTT_ALL).then_some(fm.table_id),
                    priority: strict.then_some(fm.priority),
                    cookie: cookie_filter(fm.cookie, fm.cookie_mask),
                    out_port: out_port_filter(fm.out_port)?,
                };
                for e in bridge.take_rules(&filter, strict) {
                    flow_removed(reg, &e, msg::OFPRR_DELETE);
                }
            }
        }
        Ok(())
    }

    fn packet_out(&self, po: &msg::PacketOut<'_>) -> Result<(), Fail> {
        if po.buffer_id != msg::OFP_NO_BUFFER {
            return Err(of(
                ErrCode::BUFFER_UNKNOWN,
                format!("buffer {} (vportd buffers no packets)", po.buffer_id),
            ));
        }
        if po.actions.is_empty() {
            return Ok(());
        }
        let Some(port) = openflow::oxm::port_from_of13(po.in_port).filter(|p| *p < 0xff00) else {
            return Err(of(
                ErrCode::BAD_PORT,
                format!(
                    "packet-out in_port {:#x}: only a switch port is supported yet",
                    po.in_port
                ),
            ));
        };
        if po.data.len() < 14 {
            return Err(of(
                ErrCode::BAD_PACKET,
                "packet shorter than an Ethernet header",
            ));
        }
        // output:TABLE alone: the pipeline from table 0. Anything else: a
        // frozen translation of the actions (see inject.rs).
        let recirc_id = if po.actions == [ofproto::OfAction::Output(OutputPort::Table)] {
            0
        } else {
            if po
                .actions
                .contains(&ofproto::OfAction::Output(OutputPort::Table))
            {
                return Err(of(
                    ErrCode::BAC_BAD_TYPE,
                    "output:TABLE with other packet-out actions is not supported yet",
                ));
            }
            let now = Instant::now();
            let mut held = self.ctx.registry.packet_outs.lock();
            while held.front().is_some_and(|(t, _)| {
                now.duration_since(*t) > PACKET_OUT_HOLD || held.len() >= MAX_PACKET_OUTS_HELD
            }) {
                held.pop_front();
            }
            let node = self.ctx.switch.bridge.freeze_actions(&po.actions);
            let id = node.id();
            held.push_back((now, node));
            id
        };
        self.ctx
            .registry
            .injector
            .inject(&self.ctx.switch, port, recirc_id, po.data)
            .map_err(|e| of(ErrCode::BAD_PORT, e))
    }

    /// GROUP_MOD: `add-group`, `mod-group`, `del-groups` as vportctl's
    /// (deleting a group deletes the rules that use it).
    fn group_mod(&self, gm: openflow::group::GroupMod) -> Result<(), Fail> {
        use ofproto::group::GroupError;
        use openflow::group::GroupMod;
        let bridge = &self.ctx.switch.bridge;
        let res = match gm {
            GroupMod::Add(g) => bridge.add_groups(vec![g]),
            GroupMod::Modify(g) => bridge.modify_groups(vec![g]),
            GroupMod::Delete(id) => {
                bridge.delete_groups(id);
                Ok(())
            }
        };
        res.map_err(|e| {
            let code = match e {
                GroupError::Exists(_) => ErrCode::GMFC_GROUP_EXISTS,
                GroupError::Unknown(_) => ErrCode::GMFC_UNKNOWN_GROUP,
            };
            of(code, e.to_string())
        })
    }

    fn port_mod(&self, pm: &msg::PortMod) -> Result<(), Fail> {
        let sw = &self.ctx.switch;
        let mut ports = sw.ports.lock();
        let Some(p) = ports.by_ofport.get(&pm.port_no) else {
            return Err(of(
                ErrCode::PMFC_BAD_PORT,
                format!("no port {}", pm.port_no),
            ));
        };
        if p.eth.mac_address().is_ok_and(|m| m != pm.hw_addr) {
            return Err(of(ErrCode::PMFC_BAD_HW_ADDR, "hw_addr is not the port's"));
        }
        if pm.mask & !msg::OFPPC_PORT_DOWN != 0 {
            return Err(of(
                ErrCode::PMFC_BAD_CONFIG,
                format!(
                    "config mask {:#x}: only PORT_DOWN is supported yet",
                    pm.mask
                ),
            ));
        }
        if pm.mask & msg::OFPPC_PORT_DOWN != 0 {
            let up = pm.config & msg::OFPPC_PORT_DOWN == 0;
            if let Err(e) = ports.set_admin(pm.port_no, up, &sw.bridge) {
                log::warn!("OpenFlow port_mod: {e:#}");
            }
        }
        Ok(())
    }

    fn multipart(&self, stream: &mut Stream, xid: u32, req: MultipartRequest) -> Result<(), Fail> {
        let v = self.version;
        let sw = &self.ctx.switch;
        let reply_one = |this: &Self, stream: &mut Stream, ty: u16, body: &[u8]| {
            let mut r = msg::MultipartReply::new(v, xid, ty);
            r.push(body);
            for m in r.finish() {
                this.reply(stream, &m)?;
            }
            Ok::<(), Fail>(())
        };
        match req {
            MultipartRequest::Desc => {
                let body = msg::desc_body(
                    "vportd",
                    "vportd userspace switch (DPDK)",
                    env!("CARGO_PKG_VERSION"),
                    "None",
                    "vportd",
                );
                reply_one(self, stream, msg::OFPMP_DESC, &body)?;
            }
            MultipartRequest::Flow(_) | MultipartRequest::Aggregate(_) => {
                let (f, aggregate) = match req {
                    MultipartRequest::Flow(f) => (f, false),
                    MultipartRequest::Aggregate(f) => (f, true),
                    _ => unreachable!("matched above"),
                };
                if f.out_group != msg::OFPG_ANY {
                    return Err(of(
                        ErrCode::BAD_MULTIPART,
                        "out_group filter not supported yet",
                    ));
                }
                let filter = FlowFilter {
                    matches: f.matches,
                    table: (f.table_id != msg::OFPTT_ALL).then_some(f.table_id),
                    priority: None,
                    cookie: cookie_filter(f.cookie, f.cookie_mask),
                    out_port: out_port_filter(f.out_port)?,
                };
                let tables = sw.bridge.tables();
                let flags = self.ctx.registry.flow_flags.lock().clone();
                let now = Instant::now();
                let selected = tables
                    .iter()
                    .filter(|e| filter_selects(&filter, &e.rule, false));
                if aggregate {
                    let (mut p, mut b, mut n) = (0u64, 0u64, 0u32);
                    for e in selected {
                        p += e.stats.n_packets();
                        b += e.stats.n_bytes();
                        n += 1;
                    }
                    reply_one(
                        self,
                        stream,
                        msg::OFPMP_AGGREGATE,
                        &msg::aggregate_body(p, b, n),
                    )?;
                } else {
                    let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_FLOW);
                    let mut skipped = 0;
                    for e in selected {
                        let rule = &e.rule;
                        let d = now.saturating_duration_since(e.stats.created());
                        let entry = msg::flow_stats_entry(&msg::FlowStats {
                            table_id: rule.table,
                            duration_sec: d.as_secs() as u32,
                            duration_nsec: d.subsec_nanos(),
                            priority: rule.priority,
                            idle_timeout: rule.idle_timeout,
                            hard_timeout: rule.hard_timeout,
                            flags: flags
                                .get(&(rule.table, rule.priority, rule.matches))
                                .copied()
                                .unwrap_or(0),
                            cookie: rule.cookie,
                            packet_count: e.stats.n_packets(),
                            byte_count: e.stats.n_bytes(),
                            matches: &rule.matches,
                            instructions: &rule.instructions,
                        });
                        match entry {
                            Ok(b) if b.len() <= msg::MAX_MSG - 16 => r.push(&b),
                            Ok(_) => skipped += 1,
                            Err(err) => {
                                skipped += 1;
                                log::warn!(
                                    "OpenFlow flow stats: {}: {err}; left out of the reply",
                                    ofproto::format_rule(rule)
                                );
                            }
                        }
                    }
                    if skipped > 0 {
                        note_error(
                            &self.conn,
                            &format!("{skipped} rule(s) not encodable in a flow stats reply"),
                        );
                    }
                    for m in r.finish() {
                        self.reply(stream, &m)?;
                    }
                }
            }
            MultipartRequest::Table => {
                let tables = sw.bridge.tables();
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_TABLE);
                for t in 0..N_TABLES {
                    let n = tables.table(t).len() as u32;
                    r.push(&msg::table_stats_entry(t, n, 0, 0));
                }
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::TableFeatures => {
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_TABLE_FEATURES);
                for t in 0..N_TABLES {
                    r.push(&msg::table_features_entry(t, N_TABLES, 1_000_000));
                }
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::PortDesc => {
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_PORT_DESC);
                for p in port_descs(sw) {
                    r.push(&msg::port_desc(&p));
                }
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::PortStats { port_no } => {
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_PORT_STATS);
                let up = sw.started.elapsed();
                let ports = sw.ports.lock();
                if port_no != openflow::actions::OFPP13_ANY
                    && !ports.by_ofport.contains_key(&port_no)
                {
                    return Err(of(ErrCode::BAD_PORT, format!("no port {port_no}")));
                }
                for p in ports.by_ofport.values() {
                    if port_no != openflow::actions::OFPP13_ANY && p.ofport != port_no {
                        continue;
                    }
                    let s = p.eth.stats().unwrap_or_default();
                    let c = msg::PortCounters {
                        rx_packets: s.ipackets,
                        tx_packets: s.opackets,
                        rx_bytes: s.ibytes,
                        tx_bytes: s.obytes,
                        rx_dropped: s.imissed + s.rx_nombuf + s.rx_oversized,
                        tx_dropped: s.tx_full,
                        rx_errors: s.ierrors,
                        tx_errors: s.oerrors,
                    };
                    r.push(&msg::port_stats_entry(
                        p.ofport,
                        &c,
                        up.as_secs() as u32,
                        up.subsec_nanos(),
                    ));
                }
                drop(ports);
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::GroupDesc => {
                let tables = sw.bridge.tables();
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_GROUP_DESC);
                for e in tables.groups().iter() {
                    r.push(&openflow::group::group_desc(&e.group)?);
                }
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::Group { group_id } => {
                let tables = sw.bridge.tables();
                let now = Instant::now();
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_GROUP);
                for e in tables.groups().iter() {
                    let id = e.group.group_id;
                    if group_id == openflow::group::OFPG_ALL || group_id == id {
                        let refs = ofproto::group::ref_count(tables.iter().map(|e| &e.rule), id);
                        r.push(&openflow::group::group_stats(e, refs, now));
                    }
                }
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::GroupFeatures => {
                let mut r = msg::MultipartReply::new(v, xid, msg::OFPMP_GROUP_FEATURES);
                r.push(&openflow::group::group_features());
                for m in r.finish() {
                    self.reply(stream, &m)?;
                }
            }
            MultipartRequest::MeterFeatures | MultipartRequest::Other(_) => {
                return Err(of(
                    ErrCode::BAD_MULTIPART,
                    "multipart type not supported yet",
                ));
            }
        }
        Ok(())
    }
}

/// The ports as OpenFlow describes them.
pub fn port_descs(sw: &crate::switch::Switch) -> Vec<msg::PortDesc> {
    let ports = sw.ports.lock();
    ports
        .by_ofport
        .values()
        .map(|p| {
            let link = p.eth.link().ok();
            let up = link.as_ref().is_none_or(|l| l.up);
            let mbps = link.as_ref().and_then(|l| l.speed_mbps).unwrap_or(0);
            let curr = match mbps {
                0 => 0,
                10 => 1 << 1,
                100 => 1 << 3,
                1000 => 1 << 5,
                10_000 => 1 << 6,
                40_000 => 1 << 7,
                100_000 => 1 << 8,
                1_000_000 => 1 << 9,
                _ => 1 << 10,
            };
            msg::PortDesc {
                port_no: p.ofport,
                hw_addr: p.eth.mac_address().unwrap_or([0; 6]),
                name: p.name.clone(),
                config: if p.admin_down {
                    msg::OFPPC_PORT_DOWN
                } else {
                    0
                },
                state: if up {
                    if p.admin_down {
                        0
                    } else {
                        msg::OFPPS_LIVE
                    }
                } else {
                    msg::OFPPS_LINK_DOWN
                },
                curr,
                curr_speed: mbps.saturating_mul(1000),
                max_speed: mbps.saturating_mul(1000),
            }
        })
        .collect()
}

/// The async mask index for a role (slaves have their own).
fn mask_index(role: u32) -> usize {
    usize::from(role == ROLE_SLAVE)
}

/// FLOW_REMOVED for `e` to the controllers that want it, if its flow mod
/// asked (SEND_FLOW_REM).
pub fn flow_removed(reg: &super::Registry, e: &ofproto::table::RuleEntry, reason: u8) {
    let r = &e.rule;
    let key = (r.table, r.priority, r.matches);
    let Some(flags) = reg.flow_flags.lock().remove(&key) else {
        return;
    };
    if flags & msg::OFPFF_SEND_FLOW_REM == 0 {
        return;
    }
    let d = Instant::now().saturating_duration_since(e.stats.created());
    reg.broadcast(
        |st| st.async_config.flow_removed[mask_index(st.role)] & (1 << reason) != 0,
        |v| {
            msg::flow_removed(
                v,
                &msg::FlowRemoved {
                    cookie: r.cookie,
                    priority: r.priority,
                    reason,
                    table_id: r.table,
                    duration_sec: d.as_secs() as u32,
                    duration_nsec: d.subsec_nanos(),
                    idle_timeout: r.idle_timeout,
                    hard_timeout: r.hard_timeout,
                    packet_count: e.stats.n_packets(),
                    byte_count: e.stats.n_bytes(),
                    matches: &r.matches,
                },
            )
        },
    );
}

/// Watches the ports (every 100 ms, never per packet) and sends
/// PORT_STATUS on add, delete and link or admin change.
pub fn port_watch(ctx: Ctx) {
    let mut last: std::collections::BTreeMap<u32, msg::PortDesc> = port_descs(&ctx.switch)
        .into_iter()
        .map(|p| (p.port_no, p))
        .collect();
    while !ctx.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now: std::collections::BTreeMap<u32, msg::PortDesc> = port_descs(&ctx.switch)
            .into_iter()
            .map(|p| (p.port_no, p))
            .collect();
        let mut events = Vec::new();
        for (n, p) in &now {
            match last.get(n) {
                None => events.push((msg::OFPPR_ADD, p.clone())),
                Some(o) if o.config != p.config || o.state != p.state || o.name != p.name => {
                    events.push((msg::OFPPR_MODIFY, p.clone()))
                }
                _ => {}
            }
        }
        for (n, p) in &last {
            if !now.contains_key(n) {
                events.push((msg::OFPPR_DELETE, p.clone()));
            }
        }
        for (reason, p) in events {
            ctx.registry.broadcast(
                |st| st.async_config.port_status[mask_index(st.role)] & (1 << reason) != 0,
                |v| msg::port_status(v, reason, &p),
            );
        }
        last = now;
    }
}

/// Role names for `show` (re-exported for the control socket).
pub fn role_label(r: u32) -> &'static str {
    if r == ROLE_EQUAL {
        "equal"
    } else {
        role_name(r)
    }
}

/// PACKET_IN to every controller whose role and async config want it,
/// each through its own token bucket (`--controller-rate-limit`) and
/// bounded queue (drops counted). Runs on a handler thread: no blocking.
pub fn packet_in(
    reg: &super::Registry,
    rate: u32,
    up: &flowcache::upcall::UserspacePacket,
    frozen: Option<&ofproto::recirc::FrozenState>,
) {
    let flowcache::actions::UserCookie::Controller {
        reason,
        rule_cookie,
        max_len,
        ..
    } = up.cookie
    else {
        return;
    };
    // The match OVS puts in a packet-in: in_port, and the metadata,
    // registers and tunnel id the packet had at the action.
    let mut key = flowcache::key::FlowKey {
        in_port: up.meta.in_port,
        pkt_mark: up.meta.pkt_mark,
        ..Default::default()
    };
    let mut table_id = 0;
    if let Some(f) = frozen {
        table_id = f.table_id;
        let words = key.words_mut();
        for (i, w) in f.metadata.iter().enumerate() {
            if let Some(slot) = words.get_mut(flowcache::key::DP_WORDS + i) {
                *slot = *w;
            }
        }
    }
    let mut fields = vec![ofproto::FieldId::InPort, ofproto::FieldId::Metadata];
    fields.extend((0..16).map(ofproto::FieldId::Reg));
    fields.push(ofproto::FieldId::PktMark);
    let m = openflow::oxm::key_field_match(&key, &fields);
    // OpenFlow 1.3 has no "explicit miss" reason: a table-miss rule's
    // packet-in says no_match.
    let reason = if reason == 6 {
        msg::OFPR_NO_MATCH
    } else {
        reason
    };
    let now = Instant::now();
    for c in reg.conns.lock().iter() {
        let st = c.status.lock();
        if st.version == 0 || st.async_config.packet_in[mask_index(st.role)] & (1 << reason) == 0 {
            continue;
        }
        drop(st);
        let mut b = c.bucket.lock();
        if !b
            .get_or_insert_with(|| super::TokenBucket::new(rate))
            .take(now)
        {
            c.rate_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        drop(b);
        let n = up.data.len().min(usize::from(max_len));
        c.send_async(msg::packet_in(
            OFP13_VERSION,
            &msg::PacketIn {
                total_len: up.data.len().min(u16::MAX as usize) as u16,
                reason,
                table_id,
                cookie: rule_cookie,
                matches: &m,
                data: &up.data[..n],
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactivity_probe_echoes_then_closes() {
        let t0 = Instant::now();
        let mut p = Probe::new(Duration::from_secs(5));
        p.heard(t0);
        assert_eq!(p.check(t0 + Duration::from_secs(4)), ProbeAction::None);
        assert_eq!(p.check(t0 + Duration::from_secs(5)), ProbeAction::Echo);
        assert_eq!(p.check(t0 + Duration::from_secs(6)), ProbeAction::None);
        assert_eq!(p.check(t0 + Duration::from_secs(10)), ProbeAction::Close);
        // Anything heard (the echo reply) starts over.
        p.heard(t0 + Duration::from_secs(7));
        assert_eq!(p.check(t0 + Duration::from_secs(11)), ProbeAction::None);
        assert_eq!(p.check(t0 + Duration::from_secs(12)), ProbeAction::Echo);
    }
}
