//! Port queues as [`RxQueue`]/[`TxQueue`] of [`Mbuf`]s.

use super::error::QueueDir;
use super::mbuf::Mbuf;
use super::port::PortShared;
use crate::packet::{Batch, Packet};
use crate::port::{Received, RxQueue, TxQueue};
use dpdk_sys::rte_mbuf;
use std::sync::Arc;

/// A receive queue of a started port, used by one thread.
///
/// Made by [`EthPort::rxq`](super::EthPort::rxq); keeps the port open and
/// blocks its stop/reconfigure/close until dropped.
#[derive(Debug)]
pub struct DpdkRxq {
    port_id: u16,
    queue_id: u16,
    /// Multi-segment packets that could not be linearised (dropped).
    dropped_chains: u64,
    port: Arc<PortShared>,
}

impl DpdkRxq {
    pub(crate) fn new(port: Arc<PortShared>, queue_id: u16) -> Self {
        DpdkRxq {
            port_id: port.port_id,
            queue_id,
            dropped_chains: 0,
            port,
        }
    }

    /// The ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The queue id.
    pub fn queue_id(&self) -> u16 {
        self.queue_id
    }

    /// The port's device name.
    pub fn port_name(&self) -> &str {
        &self.port.name
    }

    /// Received multi-segment packets dropped because they did not fit in
    /// one mbuf.
    pub fn dropped_chains(&self) -> u64 {
        self.dropped_chains
    }

    /// Linearises the multi-segment mbufs among `batch[first..]`, dropping
    /// those that do not fit one segment. Cold: only jumbo frames received
    /// into small mbufs take this path.
    #[cold]
    #[inline(never)]
    fn fix_chains(&mut self, batch: &mut Batch<Mbuf>, first: usize) {
        let mut index = first;
        while index < batch.len() {
            if batch[index].linearize() {
                index += 1;
            } else {
                // Dropping the Mbuf frees the whole chain.
                batch.remove(index);
                self.dropped_chains += 1;
                self.port
                    .drops
                    .rx_oversized
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

impl Drop for DpdkRxq {
    fn drop(&mut self) {
        self.port.release_queue(QueueDir::Rx, self.queue_id);
    }
}

impl RxQueue for DpdkRxq {
    type Pkt = Mbuf;

    #[inline]
    fn recv(&mut self, batch: &mut Batch<Mbuf>) -> usize {
        self.recv_counted(batch).packets
    }

    #[inline]
    fn recv_counted(&mut self, batch: &mut Batch<Mbuf>) -> Received {
        let first = batch.len();
        // BURST (32) fits u16.
        let room = batch.remaining_capacity() as u16;
        if room == 0 {
            return Received::default();
        }
        // SAFETY: `first + room` is within the ArrayVec's capacity, and
        // `Mbuf` is `repr(transparent)` over `NonNull<rte_mbuf>`, so the
        // spare slots are `room` writable `*mut rte_mbuf`s.
        let spare = unsafe { batch.as_mut_ptr().add(first) }.cast::<*mut rte_mbuf>();
        // SAFETY: this handle exclusively owns queue `queue_id` of a started
        // port (checked by EthPort::rxq; the port cannot be stopped or
        // closed while the handle lives); `spare` has room for `room`
        // pointers.
        let received =
            unsafe { dpdk_sys::vportd_rx_burst(self.port_id, self.queue_id, spare, room) };
        // SAFETY: the driver wrote `received` (<= room) non-null mbuf
        // pointers whose ownership passes to us; they are valid `Mbuf`s
        // except possibly for being multi-segment, fixed just below.
        unsafe { batch.set_len(first + usize::from(received)) };
        // One pass over the new mbufs' headers: chains, and the sizes.
        let mut chained = false;
        let mut bytes = 0u64;
        let mut shortest = usize::MAX;
        for m in &batch[first..] {
            chained |= m.segments() != 1;
            bytes += m.len() as u64;
            shortest = shortest.min(m.len());
        }
        if chained {
            self.fix_chains(batch, first);
            return Received::of(&batch[first..], batch.len() - first);
        }
        Received {
            packets: batch.len() - first,
            bytes,
            shortest,
        }
    }
}

/// A transmit queue of a started port, used by one thread.
///
/// Made by [`EthPort::txq`](super::EthPort::txq); keeps the port open and
/// blocks its stop/reconfigure/close until dropped.
#[derive(Debug)]
pub struct DpdkTxq {
    port_id: u16,
    queue_id: u16,
    /// Packets the driver did not take (freed).
    dropped: u64,
    port: Arc<PortShared>,
}

impl DpdkTxq {
    pub(crate) fn new(port: Arc<PortShared>, queue_id: u16) -> Self {
        DpdkTxq {
            port_id: port.port_id,
            queue_id,
            dropped: 0,
            port,
        }
    }

    /// The ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.port_id
    }

    /// The queue id.
    pub fn queue_id(&self) -> u16 {
        self.queue_id
    }

    /// The port's device name.
    pub fn port_name(&self) -> &str {
        &self.port.name
    }

    /// Packets dropped because the driver's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for DpdkTxq {
    fn drop(&mut self) {
        self.port.release_queue(QueueDir::Tx, self.queue_id);
    }
}

impl TxQueue for DpdkTxq {
    type Pkt = Mbuf;

    #[inline]
    fn send(&mut self, batch: &mut Batch<Mbuf>) -> usize {
        let count = batch.len();
        if count == 0 {
            return 0;
        }
        let packets = batch.as_mut_ptr().cast::<*mut rte_mbuf>();
        // The mbufs now belong to this function: each is either taken by
        // the driver or freed below.
        // SAFETY: shrinking the length only forgets the elements.
        unsafe { batch.set_len(0) };
        let mut sent = 0usize;
        while sent < count {
            // count <= BURST (32), fits u16.
            let pending = (count - sent) as u16;
            // SAFETY: this handle exclusively owns queue `queue_id` of a
            // started port (see DpdkRxq::recv); `packets[sent..count]` are
            // valid owned mbufs (Mbuf is repr(transparent) over the
            // pointer); the driver takes ownership of those it returns as
            // sent.
            let accepted = unsafe {
                dpdk_sys::vportd_tx_burst(self.port_id, self.queue_id, packets.add(sent), pending)
            };
            if accepted == 0 {
                break;
            }
            sent += usize::from(accepted);
        }
        if sent < count {
            self.dropped += (count - sent) as u64;
            // Cold (the queue is full, or nobody is there to take the
            // packets): the port's count for operators.
            let counter = if self.link_down() {
                &self.port.drops.tx_link_down
            } else {
                &self.port.drops.tx_full
            };
            counter.fetch_add((count - sent) as u64, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: `packets[sent..count]` are still ours (not taken by
            // the driver) and not otherwise referenced: the batch forgot
            // them. rte_pktmbuf_free_bulk frees each once.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(packets.add(sent), (count - sent) as u32) };
        }
        sent
    }

    fn link_down(&self) -> bool {
        self.port
            .link_down
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A transmit queue shared by several PMD threads, for a device with fewer
/// tx queues than PMDs (a vhost-user port has as many as the guest's
/// virtio queue pairs). Each burst takes the queue's lock (OVS's
/// `txq_needs_locking`); the lock is per burst, never per packet, and is
/// uncontended when only one PMD sends to the queue.
#[derive(Debug, Clone)]
pub struct SharedTxq(Arc<parking_lot::Mutex<DpdkTxq>>);

impl SharedTxq {
    /// Shares `txq`; clone the result for every further user.
    pub fn new(txq: DpdkTxq) -> Self {
        SharedTxq(Arc::new(parking_lot::Mutex::new(txq)))
    }
}

impl TxQueue for SharedTxq {
    type Pkt = Mbuf;

    #[inline]
    fn send(&mut self, batch: &mut Batch<Mbuf>) -> usize {
        self.0.lock().send(batch)
    }

    fn link_down(&self) -> bool {
        self.0.lock().link_down()
    }
}
