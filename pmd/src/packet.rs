//! The packet abstraction the pipeline works on.
//!
//! The datapath never touches `rte_mbuf` directly: it works on [`Packet`],
//! which DPDK mbufs implement (in [`crate::dpdk`]) and so does the in-memory
//! [`VecPacket`] used by unit tests and the in-memory ports (the role OVS's
//! netdev-dummy plays).

use arrayvec::ArrayVec;

/// Packets per rx burst and per batch (OVS's `NETDEV_MAX_BURST`).
pub const BURST: usize = 32;

/// A fixed-capacity batch of packets: one rx burst, or one tx queue's
/// pending output.
pub type Batch<P> = ArrayVec<P, BURST>;

/// One packet buffer with room to grow at the front (for pushed headers).
pub trait Packet: Send + Sized {
    /// The frame bytes.
    fn data(&self) -> &[u8];
    /// The frame bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Frame length in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for an empty frame.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Grows the frame by `n` bytes at the front (uninitialised content is
    /// zeroed or left as is; the caller writes it). Returns false, changing
    /// nothing, when the headroom is too small.
    fn push_front(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns false, changing nothing,
    /// when the frame is shorter than `n`.
    fn pull_front(&mut self, n: usize) -> bool;
    /// Cuts the frame to at most `len` bytes.
    fn truncate(&mut self, len: usize);
    /// A copy of the packet (a new buffer), or `None` when no buffer is free.
    fn try_clone(&self) -> Option<Self>;
    /// The NIC's RSS hash, when the driver provided one.
    fn rss_hash(&self) -> Option<u32> {
        None
    }
}

/// Headroom of a [`VecPacket`], like DPDK's `RTE_PKTMBUF_HEADROOM`.
pub const VEC_HEADROOM: usize = 128;

/// A heap packet for tests and in-memory ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecPacket {
    buf: Vec<u8>,
    start: usize,
}

impl VecPacket {
    /// A packet holding a copy of `frame`, with [`VEC_HEADROOM`] bytes of
    /// headroom.
    pub fn new(frame: &[u8]) -> Self {
        let mut buf = vec![0u8; VEC_HEADROOM + frame.len()];
        buf[VEC_HEADROOM..].copy_from_slice(frame);
        VecPacket {
            buf,
            start: VEC_HEADROOM,
        }
    }
}

impl Packet for VecPacket {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
    fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }
    fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.buf.truncate(self.start + len);
        }
    }
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_packet_push_pull_truncate() {
        let mut p = VecPacket::new(&[1, 2, 3, 4]);
        assert!(p.push_front(2));
        p.data_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(p.data(), &[9, 9, 1, 2, 3, 4]);
        assert!(p.pull_front(3));
        assert_eq!(p.data(), &[2, 3, 4]);
        p.truncate(2);
        assert_eq!(p.data(), &[2, 3]);
        assert!(!p.pull_front(5));
        assert!(!p.push_front(VEC_HEADROOM * 2));
    }
}
