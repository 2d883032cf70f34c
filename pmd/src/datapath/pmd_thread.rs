//! One PMD (poll-mode driver) thread: polls its rx queues in bursts of 32
//! and runs each burst through extract → EMC → dpcls → execute → tx; misses
//! go to the handler pool without ever blocking.
//!
//! Everything in [`Pmd`] is owned by its thread: the EMC, the dpcls, the tx
//! batches, the parked packets of pending upcalls. The control plane talks
//! to it only through [`PmdCommand`] messages (applied between bursts) and
//! reads its [`PmdStats`].

use super::clock::{ms_at, now_ms, tsc};
use super::simple::{self, SimpleTable};
use crate::capture::{CaptureDir, CaptureTap};
use crate::execute::{execute_actions, ActionPlan, ExecContext};
use crate::packet::{Batch, Packet, BURST};
use crate::port::{Received, RxQueue, TxQueue};
use crate::stats::PmdStats;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use flowcache::actions::{DpAction, DropReason, UserCookie};
use flowcache::dpcls::Dpcls;
use flowcache::emc::Emc;
use flowcache::extract::{extract_hashed, Offsets, PacketMeta};
use flowcache::key::{FlowKey, IPPROTO_TCP};
use flowcache::megaflow::Megaflow;
use flowcache::prefetch;
use flowcache::upcall::{UpcallReply, UpcallRequest, UserspacePacket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Packets of one flow parked while its upcall is in flight, at most.
const MAX_PARKED_PER_FLOW: usize = 64;
/// Upcalls in flight per PMD, at most (requests queued or being
/// translated, and replies not yet taken).
pub(crate) const MAX_PENDING_UPCALLS: usize = 4096;
/// Nested recirculations, at most (OVS `MAX_RECIRC_DEPTH`).
const MAX_RECIRC_DEPTH: u8 = 8;
/// Upcall replies handled per iteration, at most (bounds the time between
/// two rx polls).
const MAX_REPLIES_PER_ITERATION: usize = 64;
/// While upcalls are in flight, installed megaflows are reported to the
/// revalidator at most this often (µs); the control plane sees a new
/// megaflow within about this long.
const INSTALLED_EVENT_INTERVAL_US: u64 = 1000;
/// How often the dpcls re-ranks its subtables (OVS: 1 s).
const DPCLS_OPTIMIZE_INTERVAL_MS: u64 = 1000;

/// Messages from the control plane to a PMD, applied between bursts.
pub enum PmdCommand<P: Packet> {
    /// Start polling an rx queue of port `port`.
    AddRxq {
        port: u32,
        queue: u16,
        rxq: Box<dyn RxQueue<Pkt = P>>,
    },
    /// Use this tx queue for output to `port`.
    AddTxq {
        port: u32,
        txq: Box<dyn TxQueue<Pkt = P>>,
    },
    /// Stop polling and sending on `port`; acknowledged once done.
    RemovePort { port: u32, done: Sender<()> },
    /// Stop polling rx queue `queue` of `port` and hand it back (`None`
    /// when this PMD does not poll it), to move it to another PMD.
    TakeRxq {
        port: u32,
        queue: u16,
        reply: Sender<Option<Box<dyn RxQueue<Pkt = P>>>>,
    },
    /// Forget these megaflows (already marked dead by the revalidator).
    RemoveMegaflows(Vec<Arc<Megaflow>>),
    /// Forget every megaflow and EMC entry.
    FlushMegaflows,
    /// OVS `emc-insert-inv-prob`.
    SetEmcInsertInvProb(u32),
    /// OVS `smc-enable`: the signature match cache in front of the dpcls
    /// (its size in entries; 0 disables it).
    SetSmcEntries(usize),
    /// Mirror what `port` receives and sends into `tap` (`capture`).
    StartCapture { port: u32, tap: Arc<CaptureTap> },
    /// Stop mirroring `port`.
    StopCapture { port: u32 },
    /// Acknowledge at the next burst boundary (a barrier for tests and the
    /// control plane).
    Barrier(Sender<()>),
}

/// Rules behind a megaflow, opaque to the datapath (a translation's
/// [`flowcache::upcall::Translation::rules`]).
pub type OpaqueRules = Option<Arc<dyn std::any::Any + Send + Sync>>;

/// Events from a PMD to the revalidator.
pub enum PmdEvent {
    /// Megaflows were installed (one event per PMD iteration, not per
    /// megaflow, so a storm of installs wakes the revalidator once per
    /// iteration); each with its translation's opaque rule list (for
    /// statistics).
    Installed {
        pmd: usize,
        flows: Vec<InstalledMegaflow>,
    },
}

/// One megaflow a PMD installed, as the revalidator registers it.
pub struct InstalledMegaflow {
    pub megaflow: Arc<Megaflow>,
    /// The translation's opaque rule list (for statistics).
    pub rules: OpaqueRules,
    /// The rule generation it was translated under.
    pub generation: u64,
}

/// Settings shared by all PMDs, changeable at run time.
#[derive(Debug)]
pub struct DatapathLimits {
    /// Megaflows installed over all PMDs.
    pub n_megaflows: AtomicUsize,
    /// OVS `flow-limit`.
    pub flow_limit: AtomicUsize,
    /// Source of megaflow ids.
    pub next_megaflow_id: AtomicU64,
    /// OVS `max-idle`: a megaflow unused for this long is removed (ms).
    pub max_idle_ms: AtomicU64,
}

impl Default for DatapathLimits {
    fn default() -> Self {
        DatapathLimits {
            n_megaflows: AtomicUsize::new(0),
            flow_limit: AtomicUsize::new(200_000),
            next_megaflow_id: AtomicU64::new(1),
            max_idle_ms: AtomicU64::new(10_000),
        }
    }
}

/// One polled rx queue.
struct RxSlot<P: Packet> {
    port: u32,
    queue: u16,
    rxq: Box<dyn RxQueue<Pkt = P>>,
    /// TSC cycles spent on this queue's bursts (for rxq-show and
    /// rebalancing).
    cycles: Arc<AtomicU64>,
    /// Set while the port is captured: each rx burst is mirrored into it.
    capture: Option<Arc<CaptureTap>>,
}

/// Everything a PMD needs to know about one of its rx queues, for
/// `pmd-rxq-show`.
#[derive(Clone, Debug)]
pub struct RxqInfo {
    pub port: u32,
    pub queue: u16,
    pub cycles: Arc<AtomicU64>,
}

/// Output side of a PMD: per-port tx queues with their pending batches, the
/// counters, and the recirculation queue. Kept apart from the lookup
/// structures so action execution can borrow it mutably while reading a
/// megaflow.
struct PmdIo<P: Packet> {
    /// Indexed by port number.
    tx: Vec<Option<TxSlot<P>>>,
    stats: Arc<PmdStats>,
    /// Packets to look up again: (packet, in_port, recirc_id, depth).
    recirc: Vec<(P, PacketMeta, u8)>,
    /// Current packet's recirculation depth (set before each execution).
    cur_depth: u8,
    rng: u32,
    /// Ports with a non-empty tx batch.
    dirty: Vec<u32>,
    /// `userspace` action packets to the handler pool (bounded, never
    /// blocks).
    userspace_tx: Option<Sender<UserspacePacket>>,
    pmd: usize,
    /// The connection tracker and the current burst's time for it (ms).
    ct: Arc<conntrack::Conntrack>,
    ct_now: u64,
}

struct TxSlot<P: Packet> {
    txq: Box<dyn TxQueue<Pkt = P>>,
    batch: Batch<P>,
    /// Set while the port is captured: each tx batch is mirrored into it
    /// before it is sent.
    capture: Option<Arc<CaptureTap>>,
}

/// Sends `batch` on `txq` (mirrored first when the port is captured),
/// counting what was sent and, as `tx_full` drops (`link_down` when the
/// port's link is down), what the queue refused.
fn transmit<P: Packet>(
    txq: &mut dyn TxQueue<Pkt = P>,
    capture: Option<&CaptureTap>,
    batch: &mut Batch<P>,
    stats: &PmdStats,
) {
    let n = batch.len();
    if n == 0 {
        return;
    }
    if let Some(tap) = capture {
        tap.mirror(batch, CaptureDir::Tx);
    }
    let sent = txq.send(batch);
    stats.tx_packets.add(sent as u64);
    stats.tx_batches.add(1);
    if sent < n {
        let reason = if txq.link_down() {
            DropReason::LinkDown
        } else {
            DropReason::TxFull
        };
        stats.add_drop(reason, (n - sent) as u64);
    }
}

impl<P: Packet> PmdIo<P> {
    fn flush_port(&mut self, port: u32) {
        if let Some(Some(slot)) = self.tx.get_mut(port as usize) {
            transmit(
                &mut *slot.txq,
                slot.capture.as_deref(),
                &mut slot.batch,
                &self.stats,
            );
        }
    }

    /// Sends the whole of `batch` to `port` at once when nothing is queued
    /// for that port yet (what `output` per packet and a flush would do,
    /// without moving packets between batches); leaves `batch` untouched
    /// and returns false otherwise.
    #[inline]
    fn send_batch(&mut self, port: u32, batch: &mut Batch<P>) -> bool {
        match self.tx.get_mut(port as usize) {
            Some(Some(slot)) if slot.batch.is_empty() => {
                transmit(&mut *slot.txq, slot.capture.as_deref(), batch, &self.stats);
                true
            }
            _ => false,
        }
    }

    fn flush_all(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &port in &dirty {
            self.flush_port(port);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }
}

/// Consecutive packets of a burst that hit the same megaflow, with their
/// keys and header offsets.
struct HitRun<'a, P> {
    pkts: &'a mut [Option<P>],
    keys: &'a [FlowKey],
    offsets: &'a [Offsets],
}

impl<P: Packet> PmdIo<P> {
    /// Records the stats of a run of packets that hit `mf` and executes its
    /// actions on them.
    #[inline(always)]
    fn execute_run(
        &mut self,
        mf: &Megaflow,
        run: HitRun<'_, P>,
        meta: PacketMeta,
        depth: u8,
        now: u64,
    ) {
        let mut bytes = 0u64;
        let mut tcp_flags = 0u16;
        for (p, k) in run.pkts.iter().zip(run.keys) {
            if let Some(p) = p {
                bytes += p.len() as u64;
            }
            if k.nw_proto == IPPROTO_TCP {
                tcp_flags |= k.tcp_flags;
            }
        }
        mf.stats
            .record(run.pkts.len() as u64, bytes, now, tcp_flags);
        if let [DpAction::Output(port)] = &mf.actions[..] {
            for pkt in run.pkts.iter_mut().filter_map(Option::take) {
                self.output(*port, pkt);
            }
            return;
        }
        let plan = ActionPlan::new(&mf.actions);
        self.cur_depth = depth;
        for (pkt, ofs) in run.pkts.iter_mut().zip(run.offsets) {
            if let Some(pkt) = pkt.take() {
                let mut m = meta;
                plan.execute_with_offsets(self, pkt, &mut m, *ofs);
            }
        }
    }
}

impl<P: Packet> PmdIo<P> {
    /// Executes `mf`'s actions on a run of simple-path packets (stats
    /// already recorded by the caller).
    fn execute_simple_run(&mut self, mf: &Megaflow, run: &mut [Option<P>], meta: PacketMeta) {
        if let [DpAction::Output(port)] = &mf.actions[..] {
            for pkt in run.iter_mut().filter_map(Option::take) {
                self.output(*port, pkt);
            }
            return;
        }
        let plan = ActionPlan::new(&mf.actions);
        self.cur_depth = 0;
        for pkt in run.iter_mut().filter_map(Option::take) {
            let mut m = meta;
            plan.execute(self, pkt, &mut m);
        }
    }
}

impl<P: Packet> ExecContext<P> for PmdIo<P> {
    fn output(&mut self, port: u32, pkt: P) {
        let Some(Some(slot)) = self.tx.get_mut(port as usize) else {
            self.stats.add_drop(DropReason::NoSuchPort, 1);
            return;
        };
        if slot.batch.is_empty() {
            self.dirty.push(port);
        }
        slot.batch.push(pkt);
        if slot.batch.is_full() {
            self.flush_port(port);
        }
    }

    fn recirculate(&mut self, pkt: P, meta: PacketMeta) {
        if self.cur_depth >= MAX_RECIRC_DEPTH {
            self.stats.add_drop(DropReason::RecirculationLimit, 1);
            return;
        }
        self.recirc.push((pkt, meta, self.cur_depth + 1));
    }

    fn userspace(&mut self, cookie: UserCookie, pkt: P, meta: &PacketMeta) {
        // A copy goes to the handler pool; the mbuf is freed here, so the
        // slow path never holds datapath buffers.
        let Some(tx) = &self.userspace_tx else {
            self.stats.add_drop(DropReason::UserspaceQueueFull, 1);
            return;
        };
        let up = UserspacePacket {
            pmd: self.pmd,
            cookie,
            meta: *meta,
            data: pkt.data().to_vec(),
        };
        if tx.try_send(up).is_err() {
            self.stats.add_drop(DropReason::UserspaceQueueFull, 1);
        }
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.stats.add_drop(reason, 1);
    }

    fn conntrack(
        &mut self,
        frame: &mut [u8],
        l3: usize,
        dl_type: u16,
        act: &flowcache::actions::CtAction,
        ct: &mut flowcache::extract::CtMeta,
    ) {
        self.ct
            .execute(self.pmd, frame, l3, dl_type, act, ct, self.ct_now);
    }

    fn random_u32(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }
}

/// The packets parked behind one upcall in flight.
struct Parked<P> {
    key: FlowKey,
    /// [`pending_hash`] of `key`.
    hash: u64,
    /// The packet that caused the upcall (there is always one, so the
    /// common case of a single packet per new flow allocates nothing).
    first: (P, PacketMeta),
    /// Later packets of the same key, in arrival order (at most
    /// `MAX_PARKED_PER_FLOW - 1`); taken from `UpcallState::spare`.
    more: Vec<LaterPacket<P>>,
}

/// A packet parked behind an upcall already sent, with the rule
/// generation when it arrived (nondecreasing along `Parked::more`): the
/// reply's translation applies to it only if it was made under that
/// generation or a later one.
type LaterPacket<P> = (P, PacketMeta, u64);

/// Vectors of parked packets kept for reuse, at most.
const MAX_SPARE_PARKED_VECS: usize = 64;

/// The hash of a key in the pending table: [`flowcache::hash_key`] (the
/// datapath words only, which are all a request carries), spread over 64
/// bits because the table takes its 7-bit tags from the top bits.
#[inline]
fn pending_hash(key: &FlowKey) -> u64 {
    u64::from(flowcache::hash_key(key)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Upcalls in flight: the parked packets by exact key, and the queue to
/// the handler pool.
struct UpcallState<P: Packet> {
    pmd: usize,
    /// At most [`MAX_PENDING_UPCALLS`] entries, each with its upcall
    /// queued or being translated: exactly one reply removes it.
    pending: hashbrown::HashTable<Parked<P>>,
    /// Empty vectors with capacity, recycled from answered upcalls.
    spare: Vec<Vec<LaterPacket<P>>>,
    upcall_tx: Sender<UpcallRequest>,
}

impl<P: Packet> UpcallState<P> {
    fn new(pmd: usize, upcall_tx: Sender<UpcallRequest>) -> Self {
        UpcallState {
            pmd,
            pending: hashbrown::HashTable::with_capacity(MAX_PENDING_UPCALLS),
            spare: Vec::new(),
            upcall_tx,
        }
    }

    /// Parks a missed packet that arrived under rule generation
    /// `generation` and sends its upcall, or drops it (counted) when the
    /// handler pool cannot take it.
    fn park(&mut self, pkt: P, key: &FlowKey, meta: PacketMeta, generation: u64, stats: &PmdStats) {
        let hash = pending_hash(key);
        if let Some(parked) = self.pending.find_mut(hash, |e| e.key == *key) {
            if parked.more.len() + 1 < MAX_PARKED_PER_FLOW {
                if parked.more.capacity() == 0 {
                    if let Some(v) = self.spare.pop() {
                        parked.more = v;
                    }
                }
                parked.more.push((pkt, meta, generation));
            } else {
                stats.lost_upcalls.add(1);
                stats.add_drop(DropReason::UpcallQueueFull, 1);
            }
            return;
        }
        if self.pending.len() >= MAX_PENDING_UPCALLS {
            stats.lost_upcalls.add(1);
            stats.add_drop(DropReason::UpcallQueueFull, 1);
            return;
        }
        let req = UpcallRequest {
            pmd: self.pmd,
            key: *key,
            sent_tsc: tsc(),
        };
        match self.upcall_tx.try_send(req) {
            Ok(()) => {
                self.pending.insert_unique(
                    hash,
                    Parked {
                        key: *key,
                        hash,
                        first: (pkt, meta),
                        more: Vec::new(),
                    },
                    |e| e.hash,
                );
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                stats.lost_upcalls.add(1);
                stats.add_drop(DropReason::UpcallQueueFull, 1);
            }
        }
    }

    /// Takes the packets parked behind the upcall for `key`, if any.
    fn take(&mut self, key: &FlowKey) -> Option<Parked<P>> {
        let hash = pending_hash(key);
        self.pending
            .find_entry(hash, |e| e.key == *key)
            .ok()
            .map(|e| e.remove().0)
    }

    /// Keeps an emptied vector of parked packets for reuse.
    fn recycle(&mut self, mut v: Vec<LaterPacket<P>>) {
        if v.capacity() > 0 && self.spare.len() < MAX_SPARE_PARKED_VECS {
            v.clear();
            self.spare.push(v);
        }
    }
}

/// Per-burst scratch space, reused (no allocation per burst).
struct Scratch {
    keys: [FlowKey; BURST],
    hashes: [u32; BURST],
    offsets: [Offsets; BURST],
}

/// Configuration of one PMD thread.
pub struct PmdConfig {
    /// Index of the PMD (0..n).
    pub index: usize,
    /// CPU core to pin to (`None`: not pinned, used by tests).
    pub core: Option<usize>,
    pub emc_insert_inv_prob: u32,
}

/// A PMD's state (owned by its thread).
pub struct Pmd<P: Packet> {
    index: usize,
    rxqs: Vec<RxSlot<P>>,
    io: PmdIo<P>,
    emc: Emc,
    dpcls: Dpcls,
    /// Simple-match state, kept in step with `dpcls`.
    simple: SimpleTable,
    /// Per recirculation depth: a packet recirculated in the middle of a
    /// burst (see `process_burst_ordered`) is looked up with the next
    /// depth's scratch while its burst's keys stay where they are.
    scratch: Box<[Scratch]>,
    /// Packets waiting for an upcall before them to finish, in arrival
    /// order (only while conntrack is in use: each packet must see the
    /// connections committed by the packets before it).
    backlog: Vec<(P, PacketMeta, u8)>,
    /// An empty vector with capacity, swapped with `io.recirc` when the
    /// recirculations are drained.
    recirc_spare: Vec<(P, PacketMeta, u8)>,
    upcalls: UpcallState<P>,
    reply_rx: Receiver<UpcallReply>,
    cmd_rx: Receiver<PmdCommand<P>>,
    event_tx: Sender<PmdEvent>,
    /// Megaflows installed since the last [`PmdEvent::Installed`].
    installed: Vec<InstalledMegaflow>,
    /// The slow path, for its rule generation when a megaflow is installed.
    translator: Arc<dyn flowcache::upcall::Translator>,
    /// TSC of the last [`PmdEvent::Installed`].
    last_installed_tsc: u64,
    limits: Arc<DatapathLimits>,
    rxq_info: Arc<parking_lot::Mutex<Vec<RxqInfo>>>,
    last_optimize_ms: u64,
    /// Ports being captured (`StartCapture`), so that queues added later
    /// are mirrored too.
    captures: Vec<Arc<CaptureTap>>,
    /// The TSC reading taken just before the current burst was received:
    /// the burst's time for megaflow `used` stamps, without another read.
    burst_tsc: u64,
}

/// What the control plane keeps of a PMD.
pub struct PmdHandle<P: Packet> {
    pub index: usize,
    pub core: Option<usize>,
    pub cmd_tx: Sender<PmdCommand<P>>,
    pub stats: Arc<PmdStats>,
    /// The rx queues it polls (updated by the PMD on add/remove).
    pub rxqs: Arc<parking_lot::Mutex<Vec<RxqInfo>>>,
    pub thread: Option<std::thread::JoinHandle<()>>,
}

impl<P: Packet> PmdHandle<P> {
    /// Sends a command (the PMD applies it at its next burst boundary).
    pub fn send(&self, cmd: PmdCommand<P>) {
        let _ = self.cmd_tx.send(cmd);
    }

    /// Waits until the PMD has applied every command sent before.
    pub fn barrier(&self, timeout: Duration) -> bool {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.cmd_tx.send(PmdCommand::Barrier(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }
}

/// Channels and shared state a new PMD is wired to.
pub struct PmdWiring {
    pub upcall_tx: Sender<UpcallRequest>,
    /// Where `userspace` actions send their packets (None: counted as
    /// `userspace_queue_full` drops).
    pub userspace_tx: Option<Sender<UserspacePacket>>,
    pub reply_rx: Receiver<UpcallReply>,
    pub event_tx: Sender<PmdEvent>,
    pub limits: Arc<DatapathLimits>,
    pub stop: Arc<AtomicBool>,
    pub conntrack: Arc<conntrack::Conntrack>,
    /// The slow path, for its rule generation when a megaflow is installed.
    pub translator: Arc<dyn flowcache::upcall::Translator>,
}

/// Starts a PMD thread named `pmd-cNN` (NN = its core), pinned to its core,
/// calling `thread_init` first (the DPDK layer registers the thread with
/// EAL there) and `thread_exit` last.
pub fn spawn_pmd<P: Packet + 'static>(
    cfg: PmdConfig,
    wiring: PmdWiring,
    thread_init: Arc<dyn Fn() + Send + Sync>,
    thread_exit: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<PmdHandle<P>> {
    let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
    let stats = Arc::new(PmdStats::default());
    let rxq_info = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let name = match cfg.core {
        Some(c) => format!("pmd-c{:02}", c),
        None => format!("pmd-{}", cfg.index),
    };
    let mut pmd = Pmd::new(
        &cfg,
        wiring.clone_parts(),
        cmd_rx,
        stats.clone(),
        rxq_info.clone(),
    );
    let stop = wiring.stop;
    let core = cfg.core;
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        if let Some(c) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                log::warn!("could not pin PMD thread to core {c}");
            }
        }
        thread_init();
        pmd.run(&stop);
        drop(pmd);
        thread_exit();
    })?;
    Ok(PmdHandle {
        index: cfg.index,
        core: cfg.core,
        cmd_tx,
        stats,
        rxqs: rxq_info,
        thread: Some(thread),
    })
}

impl PmdWiring {
    fn clone_parts(&self) -> PmdWiring {
        PmdWiring {
            upcall_tx: self.upcall_tx.clone(),
            userspace_tx: self.userspace_tx.clone(),
            reply_rx: self.reply_rx.clone(),
            event_tx: self.event_tx.clone(),
            limits: self.limits.clone(),
            stop: self.stop.clone(),
            conntrack: self.conntrack.clone(),
            translator: self.translator.clone(),
        }
    }
}

/// Prefetches the first line of every frame of `batch`: the headers the
/// parse reads next. A NIC (or net_null) writes frames by DMA or not at all,
/// so they are not in the cache; asking for all of them at once overlaps
/// the misses instead of taking them one after the other.
#[inline(always)]
fn prefetch_frames<P: Packet>(batch: &Batch<P>) {
    for pkt in batch.iter() {
        prefetch(pkt.data().as_ptr());
    }
}

/// Iterates the set bits of a burst bitmap.
#[inline(always)]
fn bits(mut map: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if map == 0 {
            None
        } else {
            let i = map.trailing_zeros() as usize;
            map &= map - 1;
            Some(i)
        }
    })
}

impl<P: Packet> Pmd<P> {
    fn new(
        cfg: &PmdConfig,
        wiring: PmdWiring,
        cmd_rx: Receiver<PmdCommand<P>>,
        stats: Arc<PmdStats>,
        rxq_info: Arc<parking_lot::Mutex<Vec<RxqInfo>>>,
    ) -> Self {
        Pmd {
            index: cfg.index,
            rxqs: Vec::new(),
            io: PmdIo {
                tx: Vec::new(),
                stats,
                recirc: Vec::new(),
                cur_depth: 0,
                rng: 0x9e37_79b9 ^ (cfg.index as u32 + 1),
                dirty: Vec::with_capacity(16),
                userspace_tx: wiring.userspace_tx.clone(),
                pmd: cfg.index,
                ct: wiring.conntrack.clone(),
                ct_now: 0,
            },
            emc: Emc::with_insert_inv_prob(cfg.emc_insert_inv_prob),
            dpcls: Dpcls::new(),
            simple: SimpleTable::default(),
            scratch: (0..=MAX_RECIRC_DEPTH)
                .map(|_| Scratch {
                    keys: [FlowKey::default(); BURST],
                    hashes: [0; BURST],
                    offsets: [Offsets::default(); BURST],
                })
                .collect(),
            backlog: Vec::new(),
            recirc_spare: Vec::new(),
            upcalls: UpcallState::new(cfg.index, wiring.upcall_tx),
            reply_rx: wiring.reply_rx,
            cmd_rx,
            event_tx: wiring.event_tx,
            installed: Vec::new(),
            translator: wiring.translator,
            last_installed_tsc: 0,
            limits: wiring.limits,
            rxq_info,
            last_optimize_ms: 0,
            captures: Vec::new(),
            burst_tsc: 0,
        }
    }

    /// The poll loop: runs until `stop` is set, then flushes every tx batch.
    ///
    /// Time is read once after each rx queue that had packets, and once at
    /// the end of an iteration in which none had; each reading closes the
    /// interval since the previous one. A queue's interval holds its
    /// burst's processing and tx, plus whatever ran since the last reading
    /// (control messages, upcall replies, empty polls). Every cycle lands
    /// in exactly one iteration, so busy + idle is the thread's whole
    /// running time, at one TSC read per busy burst.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut batch: Batch<P> = Batch::new();
        let mut last = tsc();
        let mut iter_start = last;
        self.io.stats.last_activity_tsc.set(last);
        let mut iter: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut did_work = false;

            // Control messages and upcall replies, between bursts.
            if iter & 0xff == 0 || !self.cmd_rx.is_empty() {
                self.apply_commands();
            }
            if !self.upcalls.pending.is_empty() {
                did_work |= self.handle_replies();
            } else {
                self.report_installed(last);
            }

            if self.rxqs.is_empty() {
                // Nothing to poll: sleep instead of spinning.
                self.io
                    .stats
                    .pending_upcalls
                    .set(self.upcalls.pending.len() as u64);
                std::thread::sleep(Duration::from_millis(1));
                last = tsc();
                iter_start = last;
                iter = iter.wrapping_add(1);
                continue;
            }

            // While conntrack is in use, packets wait for the upcalls of
            // the packets before them (see `process_burst_ordered`).
            if self.io.ct.in_use() && (!self.upcalls.pending.is_empty() || !self.backlog.is_empty())
            {
                if self.upcalls.pending.is_empty() {
                    self.burst_tsc = tsc();
                    self.process_backlog();
                    self.io.flush_all();
                    did_work = true;
                }
                // The backlog counts as upcalls in flight: the datapath is
                // not idle while packets wait.
                self.io
                    .stats
                    .pending_upcalls
                    .set((self.upcalls.pending.len() + self.backlog.len()) as u64);
                last = tsc();
                let spent = last.wrapping_sub(iter_start);
                iter_start = last;
                if did_work {
                    self.io.stats.busy_cycles.add(spent);
                    self.io.stats.last_activity_tsc.set(last);
                } else {
                    self.io.stats.idle_cycles.add(spent);
                }
                iter = iter.wrapping_add(1);
                continue;
            }
            let mut received = false;
            for i in 0..self.rxqs.len() {
                let rx = self.rxqs[i].rxq.recv_counted(&mut batch);
                let n = rx.packets;
                if n == 0 {
                    continue;
                }
                received = true;
                if let Some(tap) = &self.rxqs[i].capture {
                    tap.mirror(&batch, CaptureDir::Rx);
                }
                let port = self.rxqs[i].port;
                self.io.stats.rx_packets.add(n as u64);
                self.io.stats.rx_bursts.add(1);
                let meta = PacketMeta {
                    in_port: port,
                    recirc_id: self.rxqs[i].rxq.recirc_id(),
                    ..PacketMeta::default()
                };
                self.burst_tsc = last;
                if self.io.ct.in_use()
                    || meta.recirc_id != 0
                    || !self.process_burst_simple(&mut batch, meta, rx)
                {
                    self.process_burst(&mut batch, meta, 0);
                }
                self.drain_recirculations();
                self.io.flush_all();
                let now = tsc();
                let c = &self.rxqs[i].cycles;
                c.store(
                    c.load(Ordering::Relaxed)
                        .wrapping_add(now.wrapping_sub(last)),
                    Ordering::Relaxed,
                );
                last = now;
            }
            if !received {
                last = tsc();
            }

            let spent = last.wrapping_sub(iter_start);
            iter_start = last;
            if did_work || received {
                self.io.stats.busy_cycles.add(spent);
                self.io.stats.last_activity_tsc.set(last);
            } else {
                self.io.stats.idle_cycles.add(spent);
            }
            self.io.stats.iterations.add(1);
            self.io
                .stats
                .pending_upcalls
                .set(self.upcalls.pending.len() as u64);
            iter = iter.wrapping_add(1);
            if iter & 0x3ff == 0 {
                self.housekeeping();
            }
        }
        // Drain: replies that are already here, then every pending batch.
        self.handle_replies();
        self.io.flush_all();
    }

    fn housekeeping(&mut self) {
        self.emc.sweep_one();
        let now = now_ms();
        if now.wrapping_sub(self.last_optimize_ms) >= DPCLS_OPTIMIZE_INTERVAL_MS {
            self.dpcls.optimize();
            self.last_optimize_ms = now;
        }
    }

    fn apply_commands(&mut self) {
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            match cmd {
                PmdCommand::AddRxq { port, queue, rxq } => {
                    let cycles = Arc::new(AtomicU64::new(0));
                    self.rxq_info.lock().push(RxqInfo {
                        port,
                        queue,
                        cycles: cycles.clone(),
                    });
                    let capture = self.capture_of(port);
                    self.rxqs.push(RxSlot {
                        port,
                        queue,
                        rxq,
                        cycles,
                        capture,
                    });
                }
                PmdCommand::AddTxq { port, txq } => {
                    let idx = port as usize;
                    if self.io.tx.len() <= idx {
                        self.io.tx.resize_with(idx + 1, || None);
                    }
                    self.io.flush_port(port);
                    self.io.tx[idx] = Some(TxSlot {
                        txq,
                        batch: Batch::new(),
                        capture: self.capture_of(port),
                    });
                }
                PmdCommand::TakeRxq { port, queue, reply } => {
                    let taken = self
                        .rxqs
                        .iter()
                        .position(|r| r.port == port && r.queue == queue)
                        .map(|i| self.rxqs.remove(i).rxq);
                    self.rxq_info
                        .lock()
                        .retain(|r| !(r.port == port && r.queue == queue));
                    let _ = reply.send(taken);
                }
                PmdCommand::RemovePort { port, done } => {
                    self.io.flush_port(port);
                    self.rxqs.retain(|r| r.port != port);
                    self.rxq_info.lock().retain(|r| r.port != port);
                    if let Some(slot) = self.io.tx.get_mut(port as usize) {
                        *slot = None;
                    }
                    self.io.dirty.retain(|p| *p != port);
                    self.set_capture(port, None);
                    let _ = done.send(());
                }
                PmdCommand::RemoveMegaflows(flows) => {
                    for mf in flows {
                        if let Some(removed) = self.dpcls.remove(mf.id) {
                            self.simple.remove(&removed);
                        }
                    }
                }
                PmdCommand::FlushMegaflows => {
                    let smc_entries = self.dpcls.smc_entries();
                    self.emc.clear();
                    self.dpcls = Dpcls::new();
                    self.dpcls.set_smc_entries(smc_entries);
                    self.simple.clear();
                }
                PmdCommand::SetEmcInsertInvProb(p) => self.emc.set_insert_inv_prob(p),
                PmdCommand::SetSmcEntries(n) => self.dpcls.set_smc_entries(n),
                PmdCommand::StartCapture { port, tap } => self.set_capture(port, Some(tap)),
                PmdCommand::StopCapture { port } => self.set_capture(port, None),
                PmdCommand::Barrier(ack) => {
                    // Whoever waits on the barrier (`revalidate_now`) may
                    // then count on the revalidator knowing every megaflow
                    // installed before it.
                    self.send_installed();
                    let _ = ack.send(());
                }
            }
        }
    }

    /// The tap of `port`, if it is captured.
    fn capture_of(&self, port: u32) -> Option<Arc<CaptureTap>> {
        self.captures.iter().find(|t| t.port() == port).cloned()
    }

    /// Starts (`Some`) or stops (`None`) mirroring `port`'s rx queues and
    /// tx queue.
    fn set_capture(&mut self, port: u32, tap: Option<Arc<CaptureTap>>) {
        self.captures.retain(|t| t.port() != port);
        if let Some(t) = &tap {
            self.captures.push(t.clone());
        }
        for r in self.rxqs.iter_mut().filter(|r| r.port == port) {
            r.capture = tap.clone();
        }
        if let Some(Some(slot)) = self.io.tx.get_mut(port as usize) {
            slot.capture = tap;
        }
    }

    /// Runs one burst of packets that share `meta` (in_port, recirc_id).
    fn process_burst(&mut self, batch: &mut Batch<P>, meta: PacketMeta, depth: u8) {
        let n = batch.len();
        let mut slots: [Option<P>; BURST] = std::array::from_fn(|_| None);
        if self.io.ct.in_use() {
            self.io.ct_now = ms_at(self.burst_tsc);
            if !self.upcalls.pending.is_empty() {
                // An earlier packet is still being translated.
                for pkt in batch.drain(..) {
                    self.backlog.push((pkt, meta, depth));
                }
                return;
            }
        }
        let scratch = &mut self.scratch[depth as usize];
        let mut live: u32 = 0;

        // 1. Extract the keys and hash them once.
        prefetch_frames(batch);
        for (i, pkt) in batch.drain(..).enumerate() {
            match extract_hashed(pkt.data(), &meta, &mut scratch.keys[i]) {
                Ok((ofs, key_hash)) => {
                    scratch.offsets[i] = ofs;
                    scratch.hashes[i] = match pkt.rss_hash() {
                        Some(h) if meta.recirc_id == 0 => h,
                        _ => key_hash,
                    };
                    slots[i] = Some(pkt);
                    live |= 1 << i;
                }
                Err(_) => self.io.stats.add_drop(DropReason::InvalidPacket, 1),
            }
        }
        if live == 0 {
            return;
        }

        // 2. EMC, then dpcls for the misses. `flows` borrows the entries of
        // the EMC and the dpcls, which therefore stay unchanged until the
        // burst is executed; the EMC takes the dpcls hits afterwards.
        let mut flows: [Option<&Arc<Megaflow>>; BURST] = [None; BURST];
        let keys = &scratch.keys[..n];
        let hashes = &scratch.hashes[..n];
        let mut missed = live;
        if self.emc.is_enabled() {
            let hits = self.emc.lookup_batch(hashes, keys, live, &mut flows);
            self.io.stats.emc_hits.add(hits.count_ones() as u64);
            missed &= !hits;
        }
        let mut dpcls_hits: [Option<&Arc<Megaflow>>; BURST] = [None; BURST];
        let mut learned: u32 = 0;
        if missed != 0 {
            let found = self
                .dpcls
                .lookup_batch_hashed(keys, hashes, missed, &mut dpcls_hits);
            for i in bits(found.hits) {
                flows[i] = dpcls_hits[i];
            }
            learned = found.hits;
            let good = found.hits;
            self.io
                .stats
                .smc_hits
                .add(found.smc_hits.count_ones() as u64);
            self.io
                .stats
                .megaflow_hits
                .add((good & !found.smc_hits).count_ones() as u64);
            self.io
                .stats
                .subtable_lookups
                .add(found.subtable_lookups as u64);
            missed &= !good;
        }

        if self.io.ct.in_use() {
            let hits = live & !missed;
            let owned: arrayvec::ArrayVec<Option<Arc<Megaflow>>, BURST> = (0..n)
                .map(|i| flows[i].filter(|_| hits & (1 << i) != 0).cloned())
                .collect();
            for i in bits(learned) {
                if let Some(mf) = dpcls_hits[i] {
                    self.emc.maybe_insert(hashes[i], &keys[i], mf);
                }
            }
            self.process_burst_ordered(&mut slots[..n], &owned, meta, depth);
            return;
        }

        // 3. Misses: park the packet and ask the handler pool.
        let generation = self.translator.generation();
        for i in bits(missed) {
            if let Some(pkt) = slots[i].take() {
                self.upcalls
                    .park(pkt, &keys[i], meta, generation, &self.io.stats);
            }
        }

        // 4. Hits: execute per run of consecutive packets that share a
        // megaflow (one stats update and one action plan per run). Runs keep
        // the packets in arrival order on every port, and a burst of one
        // flow is a single run.
        let hits = live & !missed;
        // The megaflows' first lines (dead flag, actions, counters) for the
        // whole burst, so their cache misses overlap.
        for mf in flows[..n].iter().flatten() {
            prefetch(Arc::as_ptr(mf));
        }
        let now = ms_at(self.burst_tsc);
        let mut i = 0;
        while i < n {
            let Some(mf) = flows[i].filter(|_| hits & (1 << i) != 0) else {
                i += 1;
                continue;
            };
            let mut end = i + 1;
            while end < n
                && hits & (1 << end) != 0
                && flows[end].is_some_and(|f| Arc::ptr_eq(f, mf))
            {
                end += 1;
            }
            let run = HitRun {
                pkts: &mut slots[i..end],
                keys: &keys[i..end],
                offsets: &scratch.offsets[i..end],
            };
            self.io.execute_run(mf, run, meta, depth, now);
            i = end;
        }

        // 5. The EMC learns the dpcls hits (1/emc-insert-inv-prob of them).
        for i in bits(learned) {
            if let Some(mf) = dpcls_hits[i] {
                self.emc.maybe_insert(hashes[i], &keys[i], mf);
            }
        }
    }

    /// Executes a looked-up burst one packet after the other, each with
    /// its recirculations, so that every packet meets the connection
    /// tracker as the packets before it left it (a reply in the same burst
    /// as its request sees the request's commit). A miss parks its packet
    /// and puts the rest of the burst in the backlog, which runs once the
    /// upcall is done. `flows[i]` is packet i's megaflow (`None`: a miss).
    fn process_burst_ordered(
        &mut self,
        slots: &mut [Option<P>],
        flows: &[Option<Arc<Megaflow>>],
        meta: PacketMeta,
        depth: u8,
    ) {
        let now = ms_at(self.burst_tsc);
        let d = depth as usize;
        for i in 0..slots.len() {
            if slots[i].is_none() {
                continue;
            }
            if !self.upcalls.pending.is_empty() {
                // A recirculation of an earlier packet missed.
                for pkt in slots[i..].iter_mut().filter_map(Option::take) {
                    self.backlog.push((pkt, meta, depth));
                }
                return;
            }
            match &flows[i] {
                Some(mf) => {
                    let run = HitRun {
                        pkts: &mut slots[i..=i],
                        keys: &self.scratch[d].keys[i..=i],
                        offsets: &self.scratch[d].offsets[i..=i],
                    };
                    self.io.execute_run(mf, run, meta, depth, now);
                    if !self.io.recirc.is_empty() {
                        self.drain_recirculations();
                    }
                }
                None => {
                    if let Some(pkt) = slots[i].take() {
                        let key = self.scratch[d].keys[i];
                        let generation = self.translator.generation();
                        self.upcalls
                            .park(pkt, &key, meta, generation, &self.io.stats);
                    }
                }
            }
        }
    }

    /// Runs the backlog (see [`Pmd::backlog`]) once no upcall is in
    /// flight, until it is empty or a packet misses again.
    fn process_backlog(&mut self) {
        let mut todo = std::mem::take(&mut self.backlog).into_iter();
        while let Some((pkt, meta, depth)) = todo.next() {
            if !self.upcalls.pending.is_empty() {
                // Stalled again: what the packets just run left in the
                // backlog goes first, then the rest of the old one.
                self.backlog.push((pkt, meta, depth));
                self.backlog.extend(todo);
                return;
            }
            let mut b: Batch<P> = Batch::new();
            b.push(pkt);
            self.process_burst(&mut b, meta, depth);
            self.drain_recirculations();
        }
    }

    /// The simple-match path for a freshly received burst: when every
    /// megaflow that can match `meta.in_port` is simple and every packet of
    /// the burst resolves through the mini-parse to exactly one of them,
    /// executes the burst and returns true. Otherwise changes nothing and
    /// returns false (the full path then runs on the whole burst, so packet
    /// order and results are those of the full path).
    ///
    /// `meta` is that of a received burst (in_port only) and `rx` its
    /// sizes, as the rx queue counted them.
    fn process_burst_simple(
        &mut self,
        batch: &mut Batch<P>,
        meta: PacketMeta,
        rx: Received,
    ) -> bool {
        let Some(table) = self.simple.port_flows(meta.in_port) else {
            return false;
        };
        let n = batch.len();
        if n == 0 {
            return true;
        }
        // 1. Find the burst's megaflow when it has one. A port whose only
        // megaflow matches every frame needs no parsing at all; otherwise
        // mini-parse every frame (the usual burst is still one flow from
        // end to end).
        let mut parsed = [0u64; BURST];
        let mut total_bytes = 0u64;
        let port_wide = simple::port_wide(table).filter(|_| rx.shortest >= simple::ETH_HEADER_LEN);
        let one_flow = if let Some(mf) = port_wide {
            // Every frame is at least an Ethernet header (runts take the
            // full path, which drops them as invalid).
            total_bytes = rx.bytes;
            Some(mf)
        } else {
            let mut same = true;
            prefetch_frames(batch);
            for (i, pkt) in batch.iter().enumerate() {
                let data = pkt.data();
                let Some(v) = simple::mini_parse(data) else {
                    return false;
                };
                parsed[i] = v;
                same &= v == parsed[0];
                total_bytes += data.len() as u64;
            }
            if same {
                let Some(mf) = simple::lookup(table, parsed[0]) else {
                    return false;
                };
                Some(mf)
            } else {
                None
            }
        };
        // 2. The megaflow of every packet; a whole burst for one output
        // leaves at once. Every packet must resolve before anything runs.
        let mut flows: [Option<&Arc<Megaflow>>; BURST] = [None; BURST];
        if let Some(mf) = one_flow {
            if let [DpAction::Output(port)] = &mf.actions[..] {
                if self.io.send_batch(*port, batch) {
                    self.io.stats.simple_hits.add(n as u64);
                    mf.stats
                        .record(n as u64, total_bytes, ms_at(self.burst_tsc), 0);
                    return true;
                }
            }
            flows[..n].fill(Some(mf));
        } else {
            for (flow, v) in flows.iter_mut().zip(&parsed[..n]) {
                let Some(mf) = simple::lookup(table, *v) else {
                    return false;
                };
                *flow = Some(mf);
            }
        }
        self.io.stats.simple_hits.add(n as u64);

        // 3. Execute per run of consecutive packets of one megaflow, in
        // arrival order (as `process_burst` does).
        let mut slots: [Option<P>; BURST] = std::array::from_fn(|_| None);
        for (slot, pkt) in slots.iter_mut().zip(batch.drain(..)) {
            *slot = Some(pkt);
        }
        let now = ms_at(self.burst_tsc);
        let mut i = 0;
        while i < n {
            let Some(mf) = flows[i] else { break };
            let end = i + flows[i..n]
                .iter()
                .take_while(|f| f.is_some_and(|f| Arc::ptr_eq(f, mf)))
                .count();
            let run = &mut slots[i..end];
            let bytes: u64 = run.iter().flatten().map(|p| p.len() as u64).sum();
            // Simple-path packets are never TCP: no flags to record.
            mf.stats.record(run.len() as u64, bytes, now, 0);
            self.io.execute_simple_run(mf, run, meta);
            i = end;
        }
        true
    }

    /// Installs the megaflows the handlers answered with and executes the
    /// parked packets. Returns whether any reply was handled.
    fn handle_replies(&mut self) -> bool {
        let mut handled = false;
        for _ in 0..MAX_REPLIES_PER_ITERATION {
            let Ok(reply) = self.reply_rx.try_recv() else {
                break;
            };
            handled = true;
            let Some(mut parked) = self.upcalls.take(&reply.key) else {
                continue;
            };
            let stats = &self.io.stats;
            // Every packet parked behind this upcall was resolved by it.
            stats.upcalls.add(1 + parked.more.len() as u64);
            let now_tsc = tsc();
            stats
                .upcall_cycles
                .add(now_tsc.wrapping_sub(reply.sent_tsc));
            let t = reply.translation;
            // The rules changed while the handler translated: the actions
            // are right for the packets that came before the change (the
            // one that asked, and those parked behind it until then), not
            // for later ones. Not installed; the later packets ask again.
            let stale = reply.generation != self.translator.generation();
            if stale {
                stats.stale_translations.add(1);
            }
            let megaflow = if t.install && !stale {
                self.install(&reply.key, &t, reply.megaflow, reply.generation)
            } else {
                None
            };
            let now = ms_at(now_tsc);
            self.io.ct_now = now;
            let tcp = if reply.key.nw_proto == IPPROTO_TCP {
                reply.key.tcp_flags
            } else {
                0
            };
            let mut more = std::mem::take(&mut parked.more);
            // Packets the translation does not apply to ask again (the
            // first re-parked one sends the upcall, the others wait behind
            // it): after a state change, all of them (what the first packet
            // learned may change what the next ones get); else those that
            // came under rules newer than the translation's.
            let ask_again = if t.state_changed {
                0
            } else {
                more.partition_point(|(_, _, g)| *g <= reply.generation)
            };
            for (pkt, meta, generation) in more.drain(ask_again..) {
                self.upcalls
                    .park(pkt, &reply.key, meta, generation, &self.io.stats);
            }
            let under_its_rules = more.drain(..).map(|(pkt, meta, _)| (pkt, meta));
            for (pkt, meta) in std::iter::once(parked.first).chain(under_its_rules) {
                if let Some(mf) = &megaflow {
                    mf.stats.record(1, pkt.len() as u64, now, tcp);
                }
                if t.actions.is_empty() {
                    self.io
                        .stats
                        .add_drop(t.drop_reason.unwrap_or(DropReason::Action), 1);
                    continue;
                }
                self.io.cur_depth = 0;
                let mut m = meta;
                execute_actions(&mut self.io, pkt, &t.actions, &mut m);
            }
            self.upcalls.recycle(more);
        }
        self.report_installed(tsc());
        if handled {
            self.drain_recirculations();
            self.io.flush_all();
        }
        handled
    }

    /// Sends the megaflows installed so far to the revalidator, at most
    /// once per [`INSTALLED_EVENT_INTERVAL_US`] while upcalls are still in
    /// flight (each send may wake the revalidator: a futex syscall here),
    /// and at once when none is left.
    fn report_installed(&mut self, now_tsc: u64) {
        if self.installed.is_empty() {
            return;
        }
        let interval = INSTALLED_EVENT_INTERVAL_US * super::clock::tsc_hz() / 1_000_000;
        if !self.upcalls.pending.is_empty()
            && now_tsc.wrapping_sub(self.last_installed_tsc) < interval
        {
            return;
        }
        self.last_installed_tsc = now_tsc;
        self.send_installed();
    }

    /// Sends the megaflows installed since the last report, if any.
    fn send_installed(&mut self) {
        if self.installed.is_empty() {
            return;
        }
        let _ = self.event_tx.send(PmdEvent::Installed {
            pmd: self.index,
            flows: std::mem::take(&mut self.installed),
        });
    }

    /// Installs the megaflow of a translation unless an equivalent one is
    /// already there or the flow limit is reached.
    /// `prepared` is the megaflow the handler built from `key` and `t`
    /// (used when it is still unshared, built here otherwise).
    fn install(
        &mut self,
        key: &FlowKey,
        t: &flowcache::upcall::Translation,
        prepared: Option<Arc<Megaflow>>,
        generation: u64,
    ) -> Option<Arc<Megaflow>> {
        if let Some(existing) = self.dpcls.lookup(key) {
            if !existing.is_dead() {
                return Some(existing.clone());
            }
        }
        let limits = &self.limits;
        if limits.n_megaflows.load(Ordering::Relaxed) >= limits.flow_limit.load(Ordering::Relaxed) {
            self.io.stats.flow_limit_hits.add(1);
            return None;
        }
        let id = limits.next_megaflow_id.fetch_add(1, Ordering::Relaxed);
        let owned = prepared.and_then(|mut mf| {
            Arc::get_mut(&mut mf)?.set_owner(id, self.index as u32);
            Some(mf)
        });
        let mf = owned.unwrap_or_else(|| {
            Arc::new(
                Megaflow::new(id, key, &t.mask, t.actions.clone(), now_ms())
                    .with_pmd_id(self.index as u32),
            )
        });
        if let Err(e) = self.dpcls.insert(mf.clone()) {
            // An equivalent live megaflow is there: use it.
            log::debug!("megaflow not installed: {e}");
            return None;
        }
        self.simple.insert(&mf);
        limits.n_megaflows.fetch_add(1, Ordering::Relaxed);
        self.io.stats.megaflows_installed.add(1);
        self.installed.push(InstalledMegaflow {
            megaflow: mf.clone(),
            rules: t.rules.clone(),
            generation,
        });
        Some(mf)
    }

    /// Looks recirculated packets up again, in batches by metadata.
    fn drain_recirculations(&mut self) {
        while !self.io.recirc.is_empty() {
            // Swapped with the spare vector, so that a recirculation per
            // packet (conntrack) allocates nothing.
            let spare = std::mem::take(&mut self.recirc_spare);
            let mut pending = std::mem::replace(&mut self.io.recirc, spare);
            for (pkt, meta, depth) in pending.drain(..) {
                self.io.stats.recirculations.add(1);
                let mut b: Batch<P> = Batch::new();
                b.push(pkt);
                self.process_burst(&mut b, meta, depth);
            }
            if pending.capacity() > self.recirc_spare.capacity() {
                self.recirc_spare = pending;
            }
        }
    }
}
