//! The userspace datapath (OVS `dpif-netdev`): PMD threads, the upcall
//! handler pool and the revalidator, wired together.
//!
//! ```text
//!  rx queues ──► PMD thread (pmd-cNN) ── extract → EMC → dpcls → execute → tx queues
//!                   │  miss (bounded queue, never blocks)    ▲ install + execute parked
//!                   ▼                                        │
//!               handler-N threads ── Translator (ofproto) ───┘ reply
//!                   PMD ── Installed events ──► revalidator ── RemoveMegaflows ──► PMD
//! ```
//!
//! [`Datapath`] is generic over the packet type, so the same code runs on
//! DPDK mbufs in the daemon and on [`crate::VecPacket`]s in tests.

mod capture;
pub mod clock;
pub mod handlers;
pub mod pmd_thread;
pub mod revalidator;
mod simple;

pub use pmd_thread::{
    spawn_pmd, DatapathLimits, PmdCommand, PmdConfig, PmdEvent, PmdHandle, PmdWiring, RxqInfo,
};
pub use revalidator::{MegaflowEntry, Registry, RevalidatorCommand};

use crate::packet::Packet;
use crate::port::{RxQueue, TxQueue};
use crate::stats::UserspaceStats;
use crossbeam_channel::Sender;
use flowcache::upcall::Translator;
use handlers::HandlerPool;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Default depth of each PMD's upcall queue.
pub const DEFAULT_UPCALL_QUEUE: usize = 4096;
/// Packets of `userspace` actions that may wait for the handler pool
/// (shared by all PMDs); more are dropped (`userspace_queue_full`).
pub const USERSPACE_QUEUE: usize = 1024;

/// How the datapath is laid out.
#[derive(Clone, Debug)]
pub struct DatapathConfig {
    /// One entry per PMD thread: the core it is pinned to (`None`: not
    /// pinned).
    pub pmd_cores: Vec<Option<usize>>,
    /// Number of upcall handler threads (at least 1).
    pub handler_threads: usize,
    /// Cores the handler threads may run on (empty: not pinned).
    pub handler_cores: Vec<usize>,
    /// OVS `emc-insert-inv-prob` (0 disables the EMC).
    pub emc_insert_inv_prob: u32,
    /// Depth of each PMD's upcall queue.
    pub upcall_queue: usize,
    /// The connection tracker datapath `ct` actions use (shared by every
    /// PMD; the control plane dumps and flushes it).
    pub conntrack: Arc<conntrack::Conntrack>,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            pmd_cores: vec![None],
            handler_threads: 1,
            handler_cores: Vec::new(),
            emc_insert_inv_prob: flowcache::emc::DEFAULT_EMC_INSERT_INV_PROB,
            upcall_queue: DEFAULT_UPCALL_QUEUE,
            conntrack: Arc::new(conntrack::Conntrack::new()),
        }
    }
}

/// A hook run at the start or end of every datapath thread that touches
/// packets (the DPDK layer registers the thread with EAL there).
pub type ThreadHook = Arc<dyn Fn() + Send + Sync>;

/// The running datapath.
pub struct Datapath<P: Packet + 'static> {
    pub pmds: Vec<PmdHandle<P>>,
    /// Packets of `userspace` actions the handler pool consumed, by kind.
    pub userspace_stats: Arc<UserspaceStats>,
    pub limits: Arc<DatapathLimits>,
    pub registry: Arc<Mutex<Registry>>,
    reval_tx: Sender<RevalidatorCommand>,
    pmd_stop: Arc<AtomicBool>,
    reval_stop: Arc<AtomicBool>,
    handlers: Option<HandlerPool>,
    revalidator: Option<JoinHandle<()>>,
    /// Round-robin cursor for rx queue assignment.
    next_rxq_pmd: usize,
    /// Running `capture` sessions.
    captures: Arc<capture::Sessions>,
    /// The connection tracker (see [`DatapathConfig::conntrack`]).
    pub conntrack: Arc<conntrack::Conntrack>,
    /// Removes expired connections in the background.
    ct_sweeper: Option<JoinHandle<()>>,
}

/// How often the conntrack sweeper wakes, and how many of the tracker's
/// shards it sweeps each time (a full pass every 256 / 16 * 50 ms = 0.8 s).
const CT_SWEEP_INTERVAL_MS: u64 = 50;
const CT_SWEEP_SHARDS: usize = 16;

impl<P: Packet + 'static> Datapath<P> {
    /// Starts the PMD threads (polling nothing yet), the handler pool and
    /// the revalidator.
    pub fn start(
        cfg: &DatapathConfig,
        translator: Arc<dyn Translator>,
        thread_init: ThreadHook,
        thread_exit: ThreadHook,
    ) -> std::io::Result<Datapath<P>> {
        let n_pmds = cfg.pmd_cores.len().max(1);
        let limits = Arc::new(DatapathLimits::default());
        let pmd_stop = Arc::new(AtomicBool::new(false));
        let (event_tx, event_rx) = crossbeam_channel::unbounded();
        let mut request_rxs = Vec::new();
        let mut reply_txs = Vec::new();
        let mut pmds = Vec::new();
        let (userspace_tx, userspace_rx) = crossbeam_channel::bounded(USERSPACE_QUEUE);
        let userspace_stats = Arc::new(UserspaceStats::default());
        for (index, core) in cfg.pmd_cores.iter().enumerate().take(n_pmds) {
            let (upcall_tx, upcall_rx) = crossbeam_channel::bounded(cfg.upcall_queue.max(1));
            // Bounded, and large enough that a handler never waits: every
            // reply answers one of the PMD's upcalls in flight, of which
            // there are at most MAX_PENDING_UPCALLS. A preallocated ring
            // also spares the handler an allocation every few replies.
            let (reply_tx, reply_rx) = crossbeam_channel::bounded(pmd_thread::MAX_PENDING_UPCALLS);
            request_rxs.push(upcall_rx);
            reply_txs.push(reply_tx);
            let wiring = PmdWiring {
                upcall_tx,
                userspace_tx: Some(userspace_tx.clone()),
                reply_rx,
                event_tx: event_tx.clone(),
                limits: limits.clone(),
                stop: pmd_stop.clone(),
                conntrack: cfg.conntrack.clone(),
                translator: translator.clone(),
            };
            let pcfg = PmdConfig {
                index,
                core: *core,
                emc_insert_inv_prob: cfg.emc_insert_inv_prob,
            };
            pmds.push(spawn_pmd::<P>(
                pcfg,
                wiring,
                thread_init.clone(),
                thread_exit.clone(),
            )?);
        }
        drop(event_tx);
        drop(userspace_tx);
        let handlers = HandlerPool::spawn(
            cfg.handler_threads,
            &cfg.handler_cores,
            request_rxs,
            reply_txs,
            translator.clone(),
            userspace_rx,
            userspace_stats.clone(),
        )?;
        let registry = Arc::new(Mutex::new(Registry::default()));
        let (reval_tx, reval_rx) = crossbeam_channel::unbounded();
        {
            let kick = reval_tx.clone();
            translator.on_rules_changed(Arc::new(move || {
                let _ = kick.send(RevalidatorCommand::RulesChanged);
            }));
        }
        let reval_stop = Arc::new(AtomicBool::new(false));
        let revalidator = {
            let pmd_cmds: Vec<_> = pmds.iter().map(|p| p.cmd_tx.clone()).collect();
            let registry = registry.clone();
            let limits = limits.clone();
            let stop = reval_stop.clone();
            std::thread::Builder::new()
                .name("revalidator".into())
                .spawn(move || {
                    revalidator::run::<P>(
                        event_rx, reval_rx, pmd_cmds, registry, translator, limits, stop,
                    )
                })?
        };
        let ct_sweeper = {
            let ct = cfg.conntrack.clone();
            let stop = reval_stop.clone();
            std::thread::Builder::new()
                .name("ct-sweep".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        ct.sweep(clock::now_ms(), CT_SWEEP_SHARDS);
                        std::thread::sleep(std::time::Duration::from_millis(CT_SWEEP_INTERVAL_MS));
                    }
                })?
        };
        Ok(Datapath {
            conntrack: cfg.conntrack.clone(),
            ct_sweeper: Some(ct_sweeper),
            pmds,
            userspace_stats,
            limits,
            registry,
            reval_tx,
            pmd_stop,
            reval_stop,
            handlers: Some(handlers),
            revalidator: Some(revalidator),
            next_rxq_pmd: 0,
            captures: Arc::new(capture::Sessions::default()),
        })
    }

    /// Number of PMD threads.
    pub fn n_pmds(&self) -> usize {
        self.pmds.len()
    }

    /// Gives an rx queue to a PMD (round-robin over the PMDs); returns the
    /// PMD's index.
    pub fn add_rxq(&mut self, port: u32, queue: u16, rxq: Box<dyn RxQueue<Pkt = P>>) -> usize {
        let idx = self.next_rxq_pmd % self.pmds.len();
        self.next_rxq_pmd += 1;
        self.pmds[idx].send(PmdCommand::AddRxq { port, queue, rxq });
        idx
    }

    /// Moves rx queue `queue` of `port` to PMD `to` (OVS
    /// `pmd-rxq-rebalance`): the PMD polling it stops at its next burst
    /// boundary and hands the queue over, so it is never polled by two
    /// threads. Its cycle count starts again from zero on the new PMD.
    pub fn move_rxq(&self, port: u32, queue: u16, to: usize) -> Result<(), MoveRxqError> {
        let target = self.pmds.get(to).ok_or(MoveRxqError::NoSuchPmd(to))?;
        let from = self
            .pmds
            .iter()
            .find(|p| {
                p.rxqs
                    .lock()
                    .iter()
                    .any(|r| r.port == port && r.queue == queue)
            })
            .ok_or(MoveRxqError::NotPolled { port, queue })?;
        if from.index == to {
            return Ok(());
        }
        let (reply, taken) = crossbeam_channel::bounded(1);
        from.send(PmdCommand::TakeRxq { port, queue, reply });
        let rxq = taken
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| MoveRxqError::Timeout(from.index))?
            .ok_or(MoveRxqError::NotPolled { port, queue })?;
        target.send(PmdCommand::AddRxq { port, queue, rxq });
        target.barrier(Duration::from_secs(5));
        Ok(())
    }

    /// Gives PMD `pmd` its tx queue for `port`.
    pub fn add_txq(&self, pmd: usize, port: u32, txq: Box<dyn TxQueue<Pkt = P>>) {
        self.pmds[pmd].send(PmdCommand::AddTxq { port, txq });
    }

    /// Stops every PMD from polling and sending on `port`, waiting until
    /// they all have (so the port can then be closed).
    pub fn remove_port(&self, port: u32) {
        // A capture of the port ends with it (its file is completed).
        let _ = self.stop_capture(port);
        let mut acks = Vec::new();
        for p in &self.pmds {
            let (tx, rx) = crossbeam_channel::bounded(1);
            p.send(PmdCommand::RemovePort { port, done: tx });
            acks.push(rx);
        }
        for rx in acks {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Waits until every PMD has applied the commands sent so far.
    pub fn barrier(&self) {
        for p in &self.pmds {
            p.barrier(Duration::from_secs(5));
        }
    }

    /// Re-translates every megaflow now and waits for the round to end
    /// and for every PMD to finish the burst it was in. The first barrier
    /// makes the PMDs report what they installed so far, so the round
    /// checks it too; megaflows installed later were translated after the
    /// rules in force now (the PMDs check the generation at install).
    pub fn revalidate_now(&self) {
        self.barrier();
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self
            .reval_tx
            .send(RevalidatorCommand::RevalidateNow(tx))
            .is_ok()
        {
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
        self.barrier();
    }

    /// Removes every megaflow.
    pub fn flush_megaflows(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.reval_tx.send(RevalidatorCommand::FlushAll(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(30));
        }
        self.barrier();
    }

    /// OVS `emc-insert-inv-prob`, on every PMD.
    pub fn set_emc_insert_inv_prob(&self, inv_prob: u32) {
        for p in &self.pmds {
            p.send(PmdCommand::SetEmcInsertInvProb(inv_prob));
        }
    }

    /// OVS `smc-enable`, on every PMD: `true` gives each PMD's dpcls a
    /// signature match cache of [`flowcache::smc::DEFAULT_SMC_ENTRIES`]
    /// entries (allocated on first use), `false` frees it.
    pub fn set_smc_enabled(&self, enabled: bool) {
        let entries = if enabled {
            flowcache::smc::DEFAULT_SMC_ENTRIES
        } else {
            0
        };
        for p in &self.pmds {
            p.send(PmdCommand::SetSmcEntries(entries));
        }
    }

    /// True when no PMD has received, sent or resolved anything for
    /// `idle_ms` milliseconds and no upcall is in flight.
    ///
    /// Each PMD's last activity is loaded before the clock is read: a PMD
    /// that records activity after our clock reading would otherwise look
    /// active "in the future", and an unsigned difference would wrap to an
    /// enormous idle time (issue 20, item 1).
    pub fn is_idle(&self, idle_ms: u64) -> bool {
        let idle_ticks = idle_ms.saturating_mul(clock::tsc_hz()) / 1000;
        self.pmds.iter().all(|p| {
            let pending = p.stats.pending_upcalls.get();
            let last = p.stats.last_activity_tsc.get();
            pending == 0 && idle_ticks_since(last, clock::tsc()) >= idle_ticks
        })
    }

    /// Stops the PMDs (each flushes its tx batches), the handlers and the
    /// revalidator, and waits for all of them.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        // Captures first: their writers stop the PMDs' mirroring.
        self.stop_all_captures();
        self.pmd_stop.store(true, Ordering::Relaxed);
        for p in &mut self.pmds {
            if let Some(t) = p.thread.take() {
                let _ = t.join();
            }
        }
        // The PMDs held the upcall senders; with them gone the handlers end.
        if let Some(h) = self.handlers.take() {
            h.join();
        }
        self.reval_stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.revalidator.take() {
            let _ = t.join();
        }
        if let Some(t) = self.ct_sweeper.take() {
            let _ = t.join();
        }
    }
}

impl<P: Packet + 'static> Drop for Datapath<P> {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Why [`Datapath::move_rxq`] did not move a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveRxqError {
    #[error("no PMD thread {0}")]
    NoSuchPmd(usize),
    #[error("rx queue {queue} of port {port} is not polled by any PMD thread")]
    NotPolled { port: u32, queue: u16 },
    #[error("PMD thread {0} did not hand the queue over within 5 s")]
    Timeout(usize),
}

/// Ticks from `last` to `now`, zero when `last` is not before `now` (an
/// activity stamp taken after `now`, or a TSC a few ticks ahead on
/// another core): never a wrapped difference.
fn idle_ticks_since(last: u64, now: u64) -> u64 {
    now.saturating_sub(last)
}

#[cfg(test)]
mod idle_tests {
    use super::idle_ticks_since;

    #[test]
    fn activity_stamped_after_the_clock_reading_is_not_idle() {
        // A PMD stamped activity at 1_000_005 after the main thread read
        // the clock at 1_000_000: no idle time at all, not 2^64 - 5.
        assert_eq!(idle_ticks_since(1_000_005, 1_000_000), 0);
    }

    #[test]
    fn idle_ticks_count_from_the_last_activity() {
        assert_eq!(idle_ticks_since(1_000, 4_000), 3_000);
        assert_eq!(idle_ticks_since(4_000, 4_000), 0);
    }
}
