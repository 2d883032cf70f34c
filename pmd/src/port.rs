//! Port queues as the pipeline sees them.
//!
//! A PMD thread owns a set of [`RxQueue`]s (the queues assigned to it) and,
//! for every port, one [`TxQueue`] of its own, so transmit needs no lock.
//! DPDK ethdev queues implement these traits in [`crate::dpdk`]; the
//! in-memory [`MemPort`] implements them for tests without DPDK.

use crate::packet::{Batch, Packet, VecPacket};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// A receive queue.
pub trait RxQueue: Send {
    type Pkt: Packet;
    /// Appends up to `batch.remaining_capacity()` received packets to
    /// `batch`; returns how many were added.
    fn recv(&mut self, batch: &mut Batch<Self::Pkt>) -> usize;

    /// Like [`recv`](RxQueue::recv), and also sizes up the packets added.
    /// Queues that look at every packet as they receive it do this in that
    /// same pass, so that a PMD forwarding bursts whole never has to touch
    /// the packets itself.
    fn recv_counted(&mut self, batch: &mut Batch<Self::Pkt>) -> Received {
        let first = batch.len();
        let packets = self.recv(batch);
        Received::of(&batch[first..], packets)
    }

    /// The recirculation id the packets of the last `recv` start with: 0
    /// (a fresh lookup) for every queue of a port; OpenFlow PACKET_OUT's
    /// queue sets it to run the packet-out's own actions (the frozen
    /// translation of that id).
    fn recirc_id(&self) -> u32 {
        0
    }
}

/// What a [`RxQueue::recv_counted`] added to a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub packets: usize,
    /// Frame bytes of those packets.
    pub bytes: u64,
    /// Length of the shortest of them (`usize::MAX` when none).
    pub shortest: usize,
}

impl Received {
    /// Sizes up `pkts`, the `packets` just received.
    pub fn of<P: Packet>(pkts: &[P], packets: usize) -> Self {
        let mut r = Received {
            packets,
            bytes: 0,
            shortest: usize::MAX,
        };
        for p in pkts {
            r.bytes += p.len() as u64;
            r.shortest = r.shortest.min(p.len());
        }
        r
    }
}

/// A transmit queue.
pub trait TxQueue: Send {
    type Pkt: Packet;
    /// Transmits the packets of `batch` and empties it. Packets the queue
    /// could not take are freed; returns how many were sent.
    fn send(&mut self, batch: &mut Batch<Self::Pkt>) -> usize;

    /// Whether the port's link was down when last looked at: packets
    /// [`send`](TxQueue::send) could not take are then counted as
    /// `link_down` drops rather than `tx_full`. Only read after a
    /// short send (cold).
    fn link_down(&self) -> bool {
        false
    }
}

/// Shared state of an in-memory port: what tests inject and what the
/// switch sent.
#[derive(Default)]
pub struct MemPortState {
    pub rx: VecDeque<VecPacket>,
    pub tx: Vec<VecPacket>,
}

/// An in-memory port (tests): packets pushed with [`MemPort::inject`] are
/// received, transmitted packets are collected.
#[derive(Clone, Default)]
pub struct MemPort {
    pub state: Arc<Mutex<MemPortState>>,
}

impl MemPort {
    pub fn new() -> Self {
        Self::default()
    }
    /// Queues a frame for reception.
    pub fn inject(&self, frame: &[u8]) {
        self.state.lock().rx.push_back(VecPacket::new(frame));
    }
    /// Takes every frame transmitted so far.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.state.lock().tx)
            .into_iter()
            .map(|p| p.data().to_vec())
            .collect()
    }
    /// An rx queue handle.
    pub fn rxq(&self) -> MemRxq {
        MemRxq {
            state: self.state.clone(),
        }
    }
    /// A tx queue handle.
    pub fn txq(&self) -> MemTxq {
        MemTxq {
            state: self.state.clone(),
        }
    }
}

/// Receive side of a [`MemPort`].
pub struct MemRxq {
    state: Arc<Mutex<MemPortState>>,
}

impl RxQueue for MemRxq {
    type Pkt = VecPacket;
    fn recv(&mut self, batch: &mut Batch<VecPacket>) -> usize {
        let mut st = self.state.lock();
        let mut n = 0;
        while !batch.is_full() {
            match st.rx.pop_front() {
                Some(p) => {
                    batch.push(p);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }
}

/// Transmit side of a [`MemPort`].
pub struct MemTxq {
    state: Arc<Mutex<MemPortState>>,
}

impl TxQueue for MemTxq {
    type Pkt = VecPacket;
    fn send(&mut self, batch: &mut Batch<VecPacket>) -> usize {
        let n = batch.len();
        self.state.lock().tx.extend(batch.drain(..));
        n
    }
}
