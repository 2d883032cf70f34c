//! The upcall handler pool: threads `handler-N` that translate missed keys
//! through the slow path ([`Translator`]) and answer the PMD that asked.

use super::clock::now_ms;
use crate::stats::UserspaceStats;
use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use flowcache::actions::UserCookie;
use flowcache::megaflow::Megaflow;
use flowcache::upcall::{Translator, UpcallReply, UpcallRequest, UserspacePacket};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The running pool. Dropping the request senders (the PMDs) ends the
/// threads; [`HandlerPool::join`] waits for them.
pub struct HandlerPool {
    threads: Vec<JoinHandle<()>>,
}

impl HandlerPool {
    /// Starts `n` handler threads (at least one) serving every PMD's
    /// request queue (`requests[pmd]`) and replying on
    /// `replies[request.pmd]`, optionally pinned to `cores` (round-robin).
    pub fn spawn(
        n: usize,
        cores: &[usize],
        requests: Vec<Receiver<UpcallRequest>>,
        replies: Vec<Sender<UpcallReply>>,
        translator: Arc<dyn Translator>,
        userspace: Receiver<UserspacePacket>,
        userspace_stats: Arc<UserspaceStats>,
    ) -> std::io::Result<HandlerPool> {
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let requests = requests.clone();
            let replies = replies.clone();
            let translator = translator.clone();
            let userspace = userspace.clone();
            let userspace_stats = userspace_stats.clone();
            let core = if cores.is_empty() {
                None
            } else {
                Some(cores[i % cores.len()])
            };
            let t = std::thread::Builder::new()
                .name(format!("handler-{i}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(core_affinity::CoreId { id: c });
                    }
                    serve(
                        &requests,
                        &replies,
                        &*translator,
                        &userspace,
                        &userspace_stats,
                    );
                })?;
            threads.push(t);
        }
        Ok(HandlerPool { threads })
    }

    /// Number of threads.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// True when the pool has no thread.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Waits for every thread to end (after every request sender is gone).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Consumes the packet of a `userspace` action. vportd has no OpenFlow
/// controller connection and no sFlow/IPFIX exporter, so (like OVS with
/// none configured) the packet goes no further: it is counted by cookie
/// kind, and packet-ins are logged at debug level.
pub fn consume_userspace(up: &UserspacePacket, stats: &UserspaceStats) {
    stats.count(up.cookie.kind());
    if let UserCookie::Controller { reason, .. } = up.cookie {
        log::debug!(
            "packet-in (reason {reason}) from pmd {} in_port {}: {} bytes, no controller: dropped",
            up.pmd,
            up.meta.in_port,
            up.data.len()
        );
    }
}

/// Requests a handler takes from one PMD's queue before looking at the
/// next queue (fairness between PMDs; the userspace queue is drained the
/// same way).
const HANDLER_BATCH: usize = 64;

/// One handler's loop: drain every PMD queue and the userspace-action
/// queue in batches, translating and replying; block only when all of them
/// are empty. Ends when every PMD has dropped its senders.
///
/// Blocking per request (one `Select::ready` per message) cost a wake-up
/// of this thread, and a futex syscall on the PMD that woke it, for every
/// upcall of a storm; draining means a PMD only wakes a handler that ran
/// out of work.
fn serve(
    requests: &[Receiver<UpcallRequest>],
    replies: &[Sender<UpcallReply>],
    translator: &dyn Translator,
    userspace: &Receiver<UserspacePacket>,
    userspace_stats: &UserspaceStats,
) {
    let mut select = Select::new();
    // `select` indices of the open request queues, by queue.
    let mut req_sel: Vec<Option<usize>> = requests.iter().map(|r| Some(select.recv(r))).collect();
    let mut us_sel = Some(select.recv(userspace));
    let mut open = requests.len();
    while open > 0 || us_sel.is_some() {
        let mut busy = false;
        for (i, r) in requests.iter().enumerate() {
            let Some(sel) = req_sel[i] else { continue };
            for _ in 0..HANDLER_BATCH {
                match r.try_recv() {
                    Ok(req) => {
                        busy = true;
                        // Read before the tables are: a change while
                        // translating then shows as a generation mismatch.
                        let generation = translator.generation();
                        let translation = translator.translate(&req.key);
                        // Built here rather than on the PMD: a storm of new
                        // flows makes the PMD's heap grow page by page
                        // (glibc grows a thread arena with one mprotect per
                        // page), which was most of its install cost.
                        let megaflow = translation.install.then(|| {
                            Arc::new(Megaflow::new(
                                0,
                                &req.key,
                                &translation.mask,
                                translation.actions.clone(),
                                now_ms(),
                            ))
                        });
                        if let Some(tx) = replies.get(req.pmd) {
                            // Never blocks: the reply queue holds as many
                            // replies as the PMD can have upcalls in flight.
                            let _ = tx.send(UpcallReply {
                                key: req.key,
                                sent_tsc: req.sent_tsc,
                                generation,
                                translation,
                                megaflow,
                            });
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        select.remove(sel);
                        req_sel[i] = None;
                        open -= 1;
                        break;
                    }
                }
            }
        }
        if let Some(sel) = us_sel {
            for _ in 0..HANDLER_BATCH {
                match userspace.try_recv() {
                    Ok(up) => {
                        busy = true;
                        consume_userspace(&up, userspace_stats);
                        // The OpenFlow channel's packet-in, when one listens.
                        translator.userspace(&up);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        select.remove(sel);
                        us_sel = None;
                        break;
                    }
                }
            }
        }
        if !busy && (open > 0 || us_sel.is_some()) {
            // Every queue was empty: wait until one has a message or is
            // closed (the loop above then takes it).
            select.ready();
        }
    }
}
