//! The upcall handler pool: threads `handler-N` that translate missed keys
//! through the slow path ([`Translator`]) and answer the PMD that asked.

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use flowcache::upcall::{Translator, UpcallReply, UpcallRequest};
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
    ) -> std::io::Result<HandlerPool> {
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let requests = requests.clone();
            let replies = replies.clone();
            let translator = translator.clone();
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
                    serve(&requests, &replies, &*translator);
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

/// One handler's loop: wait on all PMD queues, translate, reply; ends when
/// every PMD has dropped its sender.
fn serve(
    requests: &[Receiver<UpcallRequest>],
    replies: &[Sender<UpcallReply>],
    translator: &dyn Translator,
) {
    let mut select = Select::new();
    for r in requests {
        select.recv(r);
    }
    let mut open = requests.len();
    while open > 0 {
        let idx = select.ready();
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
