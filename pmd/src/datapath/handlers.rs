//! The upcall handler pool: threads `handler-N` that translate missed keys
//! through the slow path ([`Translator`]) and answer the PMD that asked.

use crate::stats::UserspaceStats;
use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use flowcache::actions::UserCookie;
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

/// One handler's loop: wait on all PMD queues and the userspace-action
/// queue; translate and reply, or consume; ends when every PMD has dropped
/// its senders.
fn serve(
    requests: &[Receiver<UpcallRequest>],
    replies: &[Sender<UpcallReply>],
    translator: &dyn Translator,
    userspace: &Receiver<UserspacePacket>,
    userspace_stats: &UserspaceStats,
) {
    let mut select = Select::new();
    for r in requests {
        select.recv(r);
    }
    let us_idx = select.recv(userspace);
    let mut open = requests.len();
    let mut us_open = true;
    while open > 0 || us_open {
        let idx = select.ready();
        if idx == us_idx {
            match userspace.try_recv() {
                Ok(up) => consume_userspace(&up, userspace_stats),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    select.remove(idx);
                    us_open = false;
                }
            }
            continue;
        }
        match requests[idx].try_recv() {
            Ok(req) => {
                let translation = translator.translate(&req.key);
                if let Some(tx) = replies.get(req.pmd) {
                    let _ = tx.send(UpcallReply {
                        key: req.key,
                        sent_tsc: req.sent_tsc,
                        translation,
                    });
                }
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                select.remove(idx);
                open -= 1;
            }
        }
    }
}
