//! vhost-user ports: which virtio queues the guest has enabled, and tx
//! queues that follow them.
//!
//! A guest may enable fewer queue pairs than the port offers (`queues=2`
//! to a VM using one). A transmit on a queue the guest has not enabled is
//! refused by the vhost library, so every PMD sends on an *enabled* queue:
//! PMD i on the (i mod n)-th of the n enabled ones, under that queue's
//! lock (once per burst), as OVS maps its vhost tx queues.
//!
//! The enable/disable events come from the net_vhost driver
//! (`rte_eth_vhost_get_queue_event`). vportd does not link that driver: EAL
//! loads it as a plugin, so the function is looked up in the loaded
//! library at run time.

use super::mbuf::Mbuf;
use super::queue::DpdkTxq;
use crate::packet::Batch;
use crate::port::TxQueue;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// `struct rte_eth_vhost_queue_event` (rte_eth_vhost.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct RawQueueEvent {
    queue_id: u16,
    rx: bool,
    enable: bool,
}

type QueueEventFn = unsafe extern "C" fn(u16, *mut RawQueueEvent) -> c_int;

/// `rte_eth_vhost_get_queue_event` of the loaded net_vhost plugin.
fn queue_event_fn() -> Option<QueueEventFn> {
    static F: OnceLock<Option<QueueEventFn>> = OnceLock::new();
    *F.get_or_init(|| {
        for lib in [c"librte_net_vhost.so.23", c"librte_net_vhost.so"] {
            // SAFETY: RTLD_NOLOAD only returns a handle on a library that
            // is already loaded (EAL's plugin), never loads one; the name
            // is NUL-terminated.
            let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
            if handle.is_null() {
                continue;
            }
            // SAFETY: a live handle and a NUL-terminated symbol name. The
            // handle is kept (never dlclose'd), so the symbol stays valid.
            let sym = unsafe { libc::dlsym(handle, c"rte_eth_vhost_get_queue_event".as_ptr()) };
            if !sym.is_null() {
                // SAFETY: the symbol is DPDK 22.11's
                // `int rte_eth_vhost_get_queue_event(uint16_t, struct
                // rte_eth_vhost_queue_event *)`, which QueueEventFn spells.
                return Some(unsafe { std::mem::transmute::<*mut libc::c_void, QueueEventFn>(sym) });
            }
        }
        log::warn!("net_vhost's rte_eth_vhost_get_queue_event not found: vhost tx queues assumed all enabled");
        None
    })
}

/// The guest's enabled queues of one vhost-user port: bit q is host tx
/// queue q (the guest's rx virtqueue).
#[derive(Debug, Default)]
pub struct VhostQueueState {
    tx_enabled: AtomicU64,
}

impl VhostQueueState {
    /// Reads the driver's pending queue events for `port_id` (a net_vhost
    /// port); returns whether the set of enabled tx queues changed. Call
    /// from the control thread, never per packet.
    pub fn poll(&self, port_id: u16) -> bool {
        let Some(f) = queue_event_fn() else {
            return false;
        };
        let before = self.tx_enabled.load(Ordering::Relaxed);
        let mut mask = before;
        // Bounded: the driver has at most 2 x RTE_MAX_QUEUES_PER_PORT states.
        for _ in 0..4096 {
            let mut ev = RawQueueEvent::default();
            // SAFETY: `ev` is a live struct to fill; the driver checks the
            // port id (and returns -1 for a port it does not own).
            if unsafe { f(port_id, &mut ev) } != 0 {
                break;
            }
            if ev.rx || ev.queue_id >= 64 {
                continue;
            }
            if ev.enable {
                mask |= 1 << ev.queue_id;
            } else {
                mask &= !(1 << ev.queue_id);
            }
        }
        self.tx_enabled.store(mask, Ordering::Relaxed);
        mask != before
    }

    /// The guest went away: no queue is enabled until it is back (the
    /// driver forgets the states without reporting them disabled).
    pub fn reset(&self) {
        self.tx_enabled.store(0, Ordering::Relaxed);
    }

    /// The enabled tx queues, as a bit mask.
    pub fn tx_enabled(&self) -> u64 {
        self.tx_enabled.load(Ordering::Relaxed)
    }
}

/// One PMD's transmit side of a vhost-user port: all the port's tx queues,
/// each behind a lock, and the queue state that picks one per burst.
pub struct VhostTxq {
    queues: Arc<[parking_lot::Mutex<DpdkTxq>]>,
    state: Arc<VhostQueueState>,
    pmd: usize,
}

impl VhostTxq {
    /// Handles for `pmds` PMDs over `txqs` (every tx queue of the port).
    pub fn for_pmds(txqs: Vec<DpdkTxq>, state: Arc<VhostQueueState>, pmds: usize) -> Vec<VhostTxq> {
        let queues: Arc<[parking_lot::Mutex<DpdkTxq>]> =
            txqs.into_iter().map(parking_lot::Mutex::new).collect();
        (0..pmds)
            .map(|pmd| VhostTxq {
                queues: queues.clone(),
                state: state.clone(),
                pmd,
            })
            .collect()
    }

    /// The queue this PMD sends on now.
    #[inline]
    fn queue(&self) -> usize {
        let n = self.queues.len();
        let mask = self.state.tx_enabled() & (u64::MAX >> (64 - n.min(64)));
        if mask == 0 {
            // Nothing known enabled (no guest, or no events): the PMD's own
            // queue; a refusal is counted there.
            return self.pmd % n;
        }
        // The k-th set bit of the mask, k = pmd mod (enabled queues).
        let mut k = self.pmd % mask.count_ones() as usize;
        let mut m = mask;
        while k > 0 {
            m &= m - 1;
            k -= 1;
        }
        m.trailing_zeros() as usize
    }
}

impl TxQueue for VhostTxq {
    type Pkt = Mbuf;

    #[inline]
    fn send(&mut self, batch: &mut Batch<Mbuf>) -> usize {
        let q = self.queue();
        self.queues[q].lock().send(batch)
    }

    fn link_down(&self) -> bool {
        self.queues[self.pmd % self.queues.len()].lock().link_down()
    }
}
