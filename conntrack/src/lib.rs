//! A userspace connection tracker with the semantics of OVS 3.1's
//! (`lib/conntrack.c`): connections keyed by zone and 5-tuple in both
//! directions, IPv4 and IPv6, TCP with sequence/window tracking
//! ([`tcp`]), UDP, ICMP/ICMPv6 queries and the errors related to a
//! connection, other IP protocols by address pair; mark and label per
//! connection; timeouts with OVS's defaults ([`timeout`]); a global limit
//! (3,000,000 by default) and per-zone limits; SNAT/DNAT ([`nat`]).
//!
//! Concurrency: the connection table is split into [`N_SHARDS`] shards
//! by key hash, each a `RwLock`ed hash table; a connection is entered
//! under its original and its reply key (possibly in two shards) and
//! carries its own small mutex for the protocol state. An established
//! packet takes one shard read lock and the connection's mutex, both for a
//! few dozen instructions, and allocates nothing; only a new connection
//! takes write locks (and allocates the connection). Expired connections
//! are invisible to lookups at once and removed by [`Conntrack::sweep`],
//! which a background thread runs a few shards at a time, so expiry never
//! stalls a packet thread. Counters are per caller slot (one per PMD),
//! cache-line padded.

pub mod key;
pub mod nat;
pub mod packet;
pub mod tcp;
pub mod timeout;

pub use key::ConnKey;
pub use tcp::TcpState;
pub use timeout::Timeout;

use flowcache::actions::{CtAction, CtNat, NatKind};
use flowcache::extract::CtMeta;
use flowcache::key::{
    CS_DST_NAT, CS_ESTABLISHED, CS_INVALID, CS_NEW, CS_RELATED, CS_REPLY_DIR, CS_SRC_NAT,
    CS_TRACKED,
};
use packet::{Parsed, L4};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Shards of the connection table (a power of two).
pub const N_SHARDS: usize = 256;
/// OVS's default `ct-set-maxconns`.
pub const DEFAULT_MAX_CONNS: u32 = 3_000_000;
/// Counter slots (callers pass their PMD index; taken modulo this).
pub const N_SLOTS: usize = 64;
/// A zone without its own limit uses the default.
const ZONE_LIMIT_UNSET: u32 = u32::MAX;
/// Ports NAT picks from when the rule gives no range and the packet's own
/// port is taken.
const NAT_MIN_EPHEMERAL: u16 = 1024;

const NAT_SRC: u8 = 1;
const NAT_DST: u8 = 2;

/// Protocol state of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProtoState {
    Tcp(tcp::TcpConn),
    /// UDP, ICMP and others: whether a reply was seen (until then every
    /// packet is `+new`, as OVS 3.1 userspace conntrack).
    Other {
        icmp: bool,
        reply_seen: bool,
    },
}

#[derive(Debug)]
struct ConnInner {
    proto: ProtoState,
    mark: u32,
    label: u128,
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    key: ConnKey,
    rev: ConnKey,
    nat: u8,
    expires: AtomicU64,
    removed: AtomicBool,
    inner: Mutex<ConnInner>,
}

struct Entry {
    hash: u64,
    key: ConnKey,
    conn: Arc<Conn>,
    reply: bool,
}

#[derive(Default)]
struct Shard {
    table: RwLock<hashbrown::HashTable<Entry>>,
}

macro_rules! counters {
    ($($name:ident: $doc:literal,)*) => {
        /// Counters of one slot (cache-line aligned).
        #[repr(align(64))]
        #[derive(Default)]
        struct SlotCounters { $($name: AtomicU64,)* }

        /// Tracker counters, summed over the slots.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Counters { $(#[doc = $doc] pub $name: u64,)* }

        impl Counters {
            /// `(name, description, value)` of every counter.
            pub fn list(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), $doc, self.$name),)*]
            }
        }

        fn sum(slots: &[SlotCounters]) -> Counters {
            let mut c = Counters::default();
            for s in slots {
                $(c.$name += s.$name.load(Ordering::Relaxed);)*
            }
            c
        }
    };
}

counters! {
    packets: "packets sent through ct",
    new: "packets that were +new",
    established: "packets that were +est",
    related: "packets that were +rel",
    invalid: "packets that were +inv",
    reply: "packets that were +rpl",
    created: "connections committed",
    removed: "connections expired, flushed or replaced",
    limit_hits: "commits refused by the global limit (ct-set-maxconns)",
    zone_limit_hits: "commits refused by a zone limit",
    nat_exhausted: "commits refused because NAT had no free tuple",
}

/// What `dump-conntrack` shows of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub orig: ConnKey,
    pub reply: ConnKey,
    pub zone: u16,
    pub mark: u32,
    pub label: u128,
    /// TCP: both peers' states (original sender first).
    pub tcp: Option<(TcpState, TcpState)>,
    /// Milliseconds until expiry.
    pub expires_in_ms: u64,
}

/// The tracker.
pub struct Conntrack {
    shards: Box<[Shard]>,
    n_conns: AtomicU32,
    max_conns: AtomicU32,
    zone_counts: Box<[AtomicU32]>,
    zone_limits: Box<[AtomicU32]>,
    default_zone_limit: AtomicU32,
    slots: Box<[SlotCounters]>,
    in_use: AtomicBool,
    sweep_pos: AtomicUsize,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("n_conns", &self.n_conns.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack::new()
    }
}

/// Why a limit command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("zone {0} is out of range 0..65535")]
    BadZone(u32),
}

/// A zone's limit as `ct-get-limits` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneLimit {
    pub zone: u16,
    /// 0: unlimited.
    pub limit: u32,
    pub count: u32,
}

impl Conntrack {
    /// An empty tracker with OVS's defaults.
    pub fn new() -> Conntrack {
        Conntrack {
            shards: (0..N_SHARDS).map(|_| Shard::default()).collect(),
            n_conns: AtomicU32::new(0),
            max_conns: AtomicU32::new(DEFAULT_MAX_CONNS),
            zone_counts: (0..=u16::MAX as usize).map(|_| AtomicU32::new(0)).collect(),
            zone_limits: (0..=u16::MAX as usize)
                .map(|_| AtomicU32::new(ZONE_LIMIT_UNSET))
                .collect(),
            default_zone_limit: AtomicU32::new(0),
            slots: (0..N_SLOTS).map(|_| SlotCounters::default()).collect(),
            in_use: AtomicBool::new(false),
            sweep_pos: AtomicUsize::new(0),
        }
    }

    /// Marks whether some rule uses `ct` (the datapath then orders packet
    /// processing so that each packet sees the commits before it).
    pub fn set_in_use(&self, v: bool) {
        self.in_use.store(v, Ordering::Relaxed);
    }

    /// See [`Self::set_in_use`].
    pub fn in_use(&self) -> bool {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Connections in the table (expired ones not yet swept included).
    pub fn len(&self) -> u32 {
        self.n_conns.load(Ordering::Relaxed)
    }

    /// True when there is no connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The global limit.
    pub fn max_conns(&self) -> u32 {
        self.max_conns.load(Ordering::Relaxed)
    }

    /// Sets the global limit (existing connections stay).
    pub fn set_max_conns(&self, n: u32) {
        self.max_conns.store(n, Ordering::Relaxed);
    }

    /// Sets the default zone limit (`zone == None`) or one zone's; 0 means
    /// unlimited.
    pub fn set_zone_limit(&self, zone: Option<u32>, limit: u32) -> Result<(), LimitError> {
        match zone {
            None => self.default_zone_limit.store(limit, Ordering::Relaxed),
            Some(z) if z <= u32::from(u16::MAX) => {
                self.zone_limits[z as usize].store(limit, Ordering::Relaxed)
            }
            Some(z) => return Err(LimitError::BadZone(z)),
        }
        Ok(())
    }

    /// Removes a zone's own limit (it falls back to the default).
    pub fn del_zone_limit(&self, zone: u32) -> Result<(), LimitError> {
        if zone > u32::from(u16::MAX) {
            return Err(LimitError::BadZone(zone));
        }
        self.zone_limits[zone as usize].store(ZONE_LIMIT_UNSET, Ordering::Relaxed);
        Ok(())
    }

    /// The default zone limit and every zone with its own limit.
    pub fn zone_limits(&self) -> (u32, Vec<ZoneLimit>) {
        let mut v = Vec::new();
        for (z, l) in self.zone_limits.iter().enumerate() {
            let l = l.load(Ordering::Relaxed);
            if l != ZONE_LIMIT_UNSET {
                v.push(ZoneLimit {
                    zone: z as u16,
                    limit: l,
                    count: self.zone_counts[z].load(Ordering::Relaxed),
                });
            }
        }
        (self.default_zone_limit.load(Ordering::Relaxed), v)
    }

    /// Connections in `zone`.
    pub fn zone_count(&self, zone: u16) -> u32 {
        self.zone_counts[zone as usize].load(Ordering::Relaxed)
    }

    fn zone_limit(&self, zone: u16) -> u32 {
        match self.zone_limits[zone as usize].load(Ordering::Relaxed) {
            ZONE_LIMIT_UNSET => self.default_zone_limit.load(Ordering::Relaxed),
            l => l,
        }
    }

    /// The counters, summed over the slots.
    pub fn counters(&self) -> Counters {
        sum(&self.slots)
    }

    fn shard(&self, h: u64) -> &Shard {
        &self.shards[shard_index(h)]
    }

    fn lookup(&self, key: &ConnKey, now: u64) -> Option<(Arc<Conn>, bool)> {
        let h = key.hash();
        let t = self.shard(h).table.read();
        let e = t.find(h, |e| e.key == *key)?;
        if e.conn.expires.load(Ordering::Relaxed) <= now {
            return None;
        }
        Some((e.conn.clone(), e.reply))
    }

    /// True when some live connection uses `key` (in either direction).
    fn key_in_use(&self, key: &ConnKey, now: u64) -> bool {
        self.lookup(key, now).is_some()
    }

    fn remove(&self, c: &Arc<Conn>) {
        if c.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        for k in [&c.key, &c.rev] {
            let h = k.hash();
            let mut t = self.shard(h).table.write();
            if let Ok(e) = t.find_entry(h, |e| e.key == *k && Arc::ptr_eq(&e.conn, c)) {
                e.remove();
            }
        }
        self.n_conns.fetch_sub(1, Ordering::Relaxed);
        self.zone_counts[c.key.zone as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// Inserts a new connection under both keys; if a live connection
    /// already holds either key (committed meanwhile by another thread),
    /// returns that one instead.
    fn insert(&self, conn: Arc<Conn>, now: u64) -> Result<Arc<Conn>, (Arc<Conn>, bool)> {
        let (h1, h2) = (conn.key.hash(), conn.rev.hash());
        let i1 = shard_index(h1);
        let i2 = shard_index(h2);
        // Expired holders of the keys go first.
        for (k, h) in [(&conn.key, h1), (&conn.rev, h2)] {
            let old = {
                let t = self.shard(h).table.read();
                t.find(h, |e| e.key == *k)
                    .map(|e| (e.conn.clone(), e.reply))
            };
            if let Some((old, reply)) = old {
                if old.expires.load(Ordering::Relaxed) > now {
                    return Err((old, reply));
                }
                self.remove(&old);
            }
        }
        // Both shards locked in index order.
        let (lo, hi) = (i1.min(i2), i1.max(i2));
        let mut g_lo = self.shards[lo].table.write();
        let mut g_hi = if hi != lo {
            Some(self.shards[hi].table.write())
        } else {
            None
        };
        {
            let t1 = if i1 == lo {
                &*g_lo
            } else {
                g_hi.as_deref().unwrap()
            };
            if let Some(e) = t1.find(h1, |e| e.key == conn.key) {
                return Err((e.conn.clone(), e.reply));
            }
            let t2 = if i2 == lo {
                &*g_lo
            } else {
                g_hi.as_deref().unwrap()
            };
            if let Some(e) = t2.find(h2, |e| e.key == conn.rev) {
                return Err((e.conn.clone(), e.reply));
            }
        }
        for (k, h, idx, reply) in [(conn.key, h1, i1, false), (conn.rev, h2, i2, true)] {
            let t = if idx == lo {
                &mut *g_lo
            } else {
                g_hi.as_deref_mut().unwrap()
            };
            t.insert_unique(
                h,
                Entry {
                    hash: h,
                    key: k,
                    conn: conn.clone(),
                    reply,
                },
                |e| e.hash,
            );
        }
        Ok(conn)
    }

    /// Picks the translated tuple for a new connection: returns the reply
    /// key, or `None` when every candidate is taken.
    fn nat_reply_key(&self, key: &ConnKey, nat: &CtNat, now: u64) -> Option<ConnKey> {
        let src = nat.kind == NatKind::Src;
        // The address: from the range, starting at a hash of the key (OVS
        // `nat_get_unique_tuple` hashes too), each address tried in turn.
        let (amin, amax) = if nat.has_addr() {
            (
                u128::from_be_bytes(nat.addr_min),
                u128::from_be_bytes(nat.addr_max).max(u128::from_be_bytes(nat.addr_min)),
            )
        } else {
            let a = u128::from_be_bytes(if src { key.src } else { key.dst });
            (a, a)
        };
        let n_addr = amax - amin + 1;
        let start_addr = amin + u128::from(key.hash()) % n_addr;
        let orig_port = if src { key.sport } else { key.dport };
        let (pmin, pmax) = if nat.port_min != 0 {
            (nat.port_min, nat.port_max.max(nat.port_min))
        } else if key.has_ports() {
            (NAT_MIN_EPHEMERAL, u16::MAX)
        } else {
            (orig_port, orig_port)
        };
        let keep_port = nat.port_min == 0 || (orig_port >= pmin && orig_port <= pmax);
        let n_ports = u32::from(pmax - pmin) + 1;
        let port_start = if keep_port && !nat.random {
            orig_port
        } else {
            pmin + (key.hash() >> 20) as u16 % (n_ports as u16).max(1)
        };
        let candidate = |addr: u128, port: u16| {
            let mut t = *key;
            if src {
                t.src = addr.to_be_bytes();
                t.sport = port;
            } else {
                t.dst = addr.to_be_bytes();
                t.dport = port;
            }
            t.reverse()
        };
        let tries_addr = n_addr.min(256) as u32;
        for ai in 0..tries_addr {
            let addr = amin + (start_addr - amin + u128::from(ai)) % n_addr;
            // The packet's own port first (kept when free), then the range.
            let first = candidate(
                addr,
                if keep_port && !nat.random {
                    orig_port
                } else {
                    port_start
                },
            );
            if !self.key_in_use(&first, now) {
                return Some(first);
            }
            if !key.has_ports() && !key.is_icmp() {
                continue;
            }
            let max_tries = n_ports.min(4096);
            for pi in 0..max_tries {
                let port = pmin.wrapping_add(
                    ((u32::from(port_start - pmin.min(port_start)) + pi) % n_ports) as u16,
                );
                let rk = candidate(addr, port);
                if !self.key_in_use(&rk, now) {
                    return Some(rk);
                }
            }
        }
        None
    }

    fn slot(&self, slot: usize) -> &SlotCounters {
        &self.slots[slot % N_SLOTS]
    }

    /// Runs the `ct` action `act` on the IP packet at `frame[l3..]`
    /// (Ethertype `dl_type`): looks its connection up in `act.zone`,
    /// updates the connection's state, commits a new one when asked,
    /// applies NAT, and leaves the result in `meta`. `slot` picks the
    /// counters (the caller's PMD index), `now` is in milliseconds on the
    /// caller's monotonic clock (the one [`Self::sweep`] is given).
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        &self,
        slot: usize,
        frame: &mut [u8],
        l3: usize,
        dl_type: u16,
        act: &CtAction,
        meta: &mut CtMeta,
        now: u64,
    ) {
        let cnt = self.slot(slot);
        bump(&cnt.packets);
        let zone = act.zone;
        let Some(p) = packet::parse(frame, l3, dl_type) else {
            *meta = CtMeta {
                state: CS_TRACKED | CS_INVALID,
                zone,
                ..CtMeta::default()
            };
            bump(&cnt.invalid);
            return;
        };
        let mut key = p.key;
        key.zone = zone;
        let (state, conn, related) = self.track(&p, key, act, now, cnt);
        let mut state = state;
        if let (Some(c), Some(_)) = (&conn, &act.nat) {
            let reply = state & CS_REPLY_DIR != 0;
            if c.nat != 0 && !related && state & CS_INVALID == 0 {
                let (from, to) = if reply {
                    (c.rev, c.key.reverse())
                } else {
                    (c.key, c.rev.reverse())
                };
                nat::rewrite(frame, p.l3, p.l4, p.l4_len, &from, &to);
                let (s, d) = (c.nat & NAT_SRC != 0, c.nat & NAT_DST != 0);
                // A reply is translated the other way round.
                if (s && !reply) || (d && reply) {
                    state |= CS_SRC_NAT;
                }
                if (d && !reply) || (s && reply) {
                    state |= CS_DST_NAT;
                }
            } else if c.nat != 0 && related && reply {
                // An ICMP error travelling back to the NATted side: its
                // quoted packet (the translated original direction) goes
                // back to the original addresses, and so does the outer
                // header (OVS `reverse_nat_packet`).
                if let L4::IcmpError {
                    inner_l3, inner_l4, ..
                } = p.l4_info
                {
                    let mut quoted = c.rev.reverse();
                    let mut orig = c.key;
                    quoted.zone = 0;
                    orig.zone = 0;
                    let outer_dst = (c.nat & NAT_SRC != 0).then_some(c.key.src);
                    let outer_src = (c.nat & NAT_DST != 0).then_some(c.key.dst);
                    nat::rewrite_icmp_error(
                        frame, p.l3, p.l4, p.l4_len, inner_l3, inner_l4, &quoted, &orig, outer_src,
                        outer_dst,
                    );
                }
            }
        }
        let count = |s: u8, bit: u8, c: &AtomicU64| {
            if s & bit != 0 {
                bump(c);
            }
        };
        count(state, CS_NEW, &cnt.new);
        count(state, CS_ESTABLISHED, &cnt.established);
        count(state, CS_RELATED, &cnt.related);
        count(state, CS_INVALID, &cnt.invalid);
        count(state, CS_REPLY_DIR, &cnt.reply);
        let mut m = CtMeta {
            state: state | CS_TRACKED,
            zone,
            ..CtMeta::default()
        };
        let tuple = match &conn {
            Some(c) => {
                // One lock for the commit's mark/label and the read.
                let mut g = c.inner.lock();
                if act.commit {
                    if let Some((v, mk)) = act.mark {
                        g.mark = (g.mark & !mk) | (v & mk);
                    }
                    if let Some((v, mk)) = act.label {
                        g.label = (g.label & !mk) | (v & mk);
                    }
                }
                m.mark = g.mark;
                m.label = g.label;
                Some(c.key)
            }
            None if state & CS_INVALID == 0 => Some(key),
            None => None,
        };
        if let Some(t) = tuple {
            m.nw_proto = t.proto;
            if t.v6 {
                m.ipv6_src = t.src;
                m.ipv6_dst = t.dst;
            } else {
                m.nw_src = t.src4();
                m.nw_dst = t.dst4();
            }
            if t.is_icmp() {
                m.tp_src = t.dport >> 8;
                m.tp_dst = t.dport & 0xff;
            } else if t.has_ports() {
                m.tp_src = t.sport;
                m.tp_dst = t.dport;
            }
        }
        *meta = m;
    }

    /// The lookup and state update: (ct_state without TRK and NAT bits,
    /// the connection, whether the packet is related to it).
    fn track(
        &self,
        p: &Parsed,
        key: ConnKey,
        act: &CtAction,
        now: u64,
        cnt: &SlotCounters,
    ) -> (u8, Option<Arc<Conn>>, bool) {
        if let L4::IcmpError { inner, .. } = p.l4_info {
            let mut ik = inner;
            ik.zone = key.zone;
            return match self.lookup(&ik, now) {
                Some((c, reply)) => {
                    let rpl = if reply { CS_REPLY_DIR } else { 0 };
                    (CS_RELATED | rpl, Some(c), true)
                }
                None => (CS_INVALID, None, false),
            };
        }
        if let Some((c, reply)) = self.lookup(&key, now) {
            if act.force && act.commit && reply {
                self.remove(&c);
            } else {
                match self.update(&c, p, reply, now) {
                    Upd::Est => {
                        let rpl = if reply { CS_REPLY_DIR } else { 0 };
                        return (CS_ESTABLISHED | rpl, Some(c), false);
                    }
                    Upd::StillNew => return (CS_NEW, Some(c), false),
                    Upd::Invalid => return (CS_INVALID, Some(c), false),
                    Upd::Restart => self.remove(&c),
                }
            }
        }
        // A packet with no connection.
        let valid = match &p.l4_info {
            L4::Tcp(t) => tcp::valid_new(t),
            L4::IcmpQuery { request } => *request,
            _ => true,
        };
        if !valid {
            return (CS_INVALID, None, false);
        }
        if !act.commit {
            return (CS_NEW, None, false);
        }
        match self.create(p, key, act, now, cnt) {
            Some((c, None)) => (CS_NEW, Some(c), false),
            // Committed meanwhile by another thread: a packet of it.
            Some((c, Some(reply))) => match self.update(&c, p, reply, now) {
                Upd::Est => (
                    CS_ESTABLISHED | if reply { CS_REPLY_DIR } else { 0 },
                    Some(c),
                    false,
                ),
                Upd::StillNew => (CS_NEW, Some(c), false),
                _ => (CS_INVALID, Some(c), false),
            },
            None => (CS_NEW, None, false),
        }
    }

    /// Creates and inserts a connection for `p`: `(conn, None)`, or an
    /// existing live one with the direction it was found in, or `None`
    /// when a limit or NAT refused it (counted).
    fn create(
        &self,
        p: &Parsed,
        key: ConnKey,
        act: &CtAction,
        now: u64,
        cnt: &SlotCounters,
    ) -> Option<(Arc<Conn>, Option<bool>)> {
        let zl = self.zone_limit(key.zone);
        if zl != 0 && self.zone_counts[key.zone as usize].load(Ordering::Relaxed) >= zl {
            cnt.zone_limit_hits.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.n_conns.load(Ordering::Relaxed) >= self.max_conns() {
            cnt.limit_hits.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let (rev, nat) = match act.nat.filter(|n| n.kind != NatKind::Existing) {
            Some(n) => match self.nat_reply_key(&key, &n, now) {
                Some(r) => (
                    r,
                    if n.kind == NatKind::Src {
                        NAT_SRC
                    } else {
                        NAT_DST
                    },
                ),
                None => {
                    cnt.nat_exhausted.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            None => (key.reverse(), 0),
        };
        let (proto, tm) = match &p.l4_info {
            L4::Tcp(t) => (ProtoState::Tcp(tcp::TcpConn::new(t)), Timeout::TcpFirst),
            L4::IcmpQuery { .. } => (
                ProtoState::Other {
                    icmp: true,
                    reply_seen: false,
                },
                Timeout::IcmpFirst,
            ),
            _ => (
                ProtoState::Other {
                    icmp: false,
                    reply_seen: false,
                },
                Timeout::OtherFirst,
            ),
        };
        let conn = Arc::new(Conn {
            key,
            rev,
            nat,
            expires: AtomicU64::new(now + tm.default_ms()),
            removed: AtomicBool::new(false),
            inner: Mutex::new(ConnInner {
                proto,
                mark: 0,
                label: 0,
            }),
        });
        match self.insert(conn, now) {
            Ok(c) => {
                self.n_conns.fetch_add(1, Ordering::Relaxed);
                self.zone_counts[key.zone as usize].fetch_add(1, Ordering::Relaxed);
                cnt.created.fetch_add(1, Ordering::Relaxed);
                Some((c, None))
            }
            Err((c, reply)) => Some((c, Some(reply))),
        }
    }

    fn update(&self, c: &Conn, p: &Parsed, reply: bool, now: u64) -> Upd {
        let mut g = c.inner.lock();
        let (res, tm) = match (&mut g.proto, &p.l4_info) {
            (ProtoState::Tcp(t), L4::Tcp(seg)) => match t.update(seg, reply) {
                tcp::Update::Valid(tm) => (Upd::Est, tm),
                tcp::Update::Invalid => (Upd::Invalid, Timeout::Keep),
                tcp::Update::New => (Upd::Restart, Timeout::Keep),
            },
            (ProtoState::Other { icmp, reply_seen }, _) => {
                if reply {
                    *reply_seen = true;
                }
                let tm = match (*icmp, *reply_seen) {
                    (true, false) => Timeout::IcmpFirst,
                    (true, true) => Timeout::IcmpReply,
                    (false, false) => Timeout::OtherMultiple,
                    (false, true) => Timeout::OtherBidir,
                };
                (if *reply_seen { Upd::Est } else { Upd::StillNew }, tm)
            }
            _ => (Upd::Invalid, Timeout::Keep),
        };
        if tm != Timeout::Keep {
            c.expires.store(now + tm.default_ms(), Ordering::Relaxed);
        }
        res
    }

    /// Every live connection (of `zone` when given), original direction.
    pub fn dump(&self, zone: Option<u16>, now: u64) -> Vec<ConnInfo> {
        let mut v = Vec::new();
        for s in self.shards.iter() {
            let t = s.table.read();
            for e in t.iter().filter(|e| !e.reply) {
                let c = &e.conn;
                let exp = c.expires.load(Ordering::Relaxed);
                if exp <= now || zone.is_some_and(|z| z != c.key.zone) {
                    continue;
                }
                let g = c.inner.lock();
                v.push(ConnInfo {
                    orig: c.key,
                    reply: c.rev,
                    zone: c.key.zone,
                    mark: g.mark,
                    label: g.label,
                    tcp: match &g.proto {
                        ProtoState::Tcp(t) => Some((t.peer[0].state, t.peer[1].state)),
                        _ => None,
                    },
                    expires_in_ms: exp - now,
                });
            }
        }
        v.sort_by_key(|a| (a.zone, a.orig));
        v
    }

    /// Removes every connection (of `zone` when given; only the one whose
    /// original or reply key is `tuple` when given). Returns how many.
    pub fn flush(&self, zone: Option<u16>, tuple: Option<&ConnKey>) -> usize {
        let mut victims = Vec::new();
        for s in self.shards.iter() {
            let t = s.table.read();
            for e in t.iter().filter(|e| !e.reply) {
                let c = &e.conn;
                if zone.is_some_and(|z| z != c.key.zone) {
                    continue;
                }
                if tuple.is_some_and(|k| *k != c.key && *k != c.rev) {
                    continue;
                }
                victims.push(c.clone());
            }
        }
        for c in &victims {
            self.remove(c);
        }
        self.slots[0]
            .removed
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        victims.len()
    }

    /// Removes the expired connections of the next `n_shards` shards
    /// (round robin); returns how many were removed. A background thread
    /// calls this every few milliseconds, so lookups never do the work.
    pub fn sweep(&self, now: u64, n_shards: usize) -> usize {
        let mut victims = Vec::new();
        for _ in 0..n_shards.min(N_SHARDS) {
            let i = self.sweep_pos.fetch_add(1, Ordering::Relaxed) % N_SHARDS;
            let t = self.shards[i].table.read();
            for e in t.iter() {
                if !e.reply && e.conn.expires.load(Ordering::Relaxed) <= now {
                    victims.push(e.conn.clone());
                }
            }
        }
        for c in &victims {
            self.remove(c);
        }
        self.slots[0]
            .removed
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        victims.len()
    }
}

/// Adds 1 to a counter of the caller's slot: one writer per slot (a PMD),
/// so a plain load and store, no locked instruction. (With more PMDs than
/// [`N_SLOTS`] two may share a slot and lose a count now and then.)
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// The shard of a key hash: bits 32.., which neither the shard's table
/// index (low bits) nor its control tags (top 7 bits) use, so the keys of
/// one shard still spread over its table.
#[inline]
fn shard_index(h: u64) -> usize {
    (h >> 32) as usize & (N_SHARDS - 1)
}

enum Upd {
    Est,
    StillNew,
    Invalid,
    Restart,
}

/// Formats one connection as OVS `dpctl/dump-conntrack` does.
pub fn format_conn(c: &ConnInfo) -> String {
    let proto = match (c.orig.proto, c.orig.v6) {
        (6, _) => "tcp",
        (17, _) => "udp",
        (132, _) => "sctp",
        (1, false) => "icmp",
        (58, true) => "icmpv6",
        _ => "",
    };
    let mut s = if proto.is_empty() {
        format!("{},", c.orig.proto)
    } else {
        format!("{proto},")
    };
    s.push_str(&format!("orig=({})", format_tuple(&c.orig)));
    s.push_str(&format!(",reply=({})", format_tuple(&c.reply)));
    if c.zone != 0 {
        s.push_str(&format!(",zone={}", c.zone));
    }
    if c.mark != 0 {
        s.push_str(&format!(",mark={}", c.mark));
    }
    if c.label != 0 {
        s.push_str(&format!(",labels={:#x}", c.label));
    }
    if let Some((a, _)) = c.tcp {
        s.push_str(&format!(",protoinfo=(state={})", a.name()));
    }
    s
}

/// `src=..,dst=..,sport=..,dport=..` (or `id=,type=,code=` for ICMP).
pub fn format_tuple(k: &ConnKey) -> String {
    let addr = |a: &[u8; 16]| {
        if k.v6 {
            flowcache::text::ipv6(a)
        } else {
            flowcache::text::ipv4(u32::from_be_bytes([a[12], a[13], a[14], a[15]]))
        }
    };
    let mut s = format!("src={},dst={}", addr(&k.src), addr(&k.dst));
    if k.is_icmp() {
        s.push_str(&format!(
            ",id={},type={},code={}",
            k.sport,
            k.dport >> 8,
            k.dport & 0xff
        ));
    } else if k.has_ports() {
        s.push_str(&format!(",sport={},dport={}", k.sport, k.dport));
    }
    s
}
