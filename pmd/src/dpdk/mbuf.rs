//! One DPDK packet buffer as a [`Packet`].

use super::error::DpdkError;
use super::mempool::{Mempool, MBUF_HEADROOM};
use crate::packet::Packet;
use dpdk_sys::rte_mbuf;
use std::fmt;
use std::ptr::NonNull;

/// An owned single-segment `rte_mbuf`.
///
/// `#[repr(transparent)]` over a non-null pointer, so a `[Mbuf]` has the
/// layout of the `struct rte_mbuf **` array that `rte_eth_rx_burst` fills.
///
/// Invariants, relied on by every `unsafe` block of this module:
/// - the pointer is a valid mbuf of which this value owns one reference,
///   with writable (direct, unshared) data;
/// - its pool outlives it ([`Mempool`] leaks itself rather than free a pool
///   with mbufs in use);
/// - it has one segment (`nb_segs == 1`, `pkt_len == data_len`): receive
///   linearises or drops chains, and nothing here builds one;
/// - `data_off + data_len <= buf_len`, so the data lies inside the buffer
///   at `buf_addr` (DPDK's invariant; every method below keeps it).
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an Mbuf owns its buffer exclusively; moving it to another thread
// moves that ownership (freeing from any thread is allowed by DPDK).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// A new mbuf of `pool` holding a copy of `frame`, after the default
    /// headroom.
    pub fn from_bytes(pool: &Mempool, frame: &[u8]) -> Result<Mbuf, DpdkError> {
        let mut mbuf = Self::alloc(pool)?;
        let room = mbuf.tailroom();
        if frame.len() > room {
            return Err(DpdkError::FrameTooLarge {
                pool: pool.name().to_string(),
                len: frame.len(),
                room,
            });
        }
        // frame.len() <= tailroom <= u16::MAX.
        let len = frame.len() as u16;
        mbuf.set_data_len(len);
        mbuf.data_mut().copy_from_slice(frame);
        Ok(mbuf)
    }

    /// A new, empty mbuf of `pool` (default headroom).
    pub fn alloc(pool: &Mempool) -> Result<Mbuf, DpdkError> {
        // SAFETY: `pool` is a live pktmbuf pool.
        let raw = unsafe { dpdk_sys::vportd_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(raw)
            .map(Mbuf)
            .ok_or_else(|| DpdkError::MempoolExhausted {
                pool: pool.name().to_string(),
            })
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid single-segment mbuf with writable data, whose
    /// reference the caller gives up, from a pool that outlives it.
    pub unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(raw)
    }

    /// Gives up ownership, returning the raw mbuf (which the caller must
    /// free or pass on to DPDK).
    pub fn into_raw(self) -> NonNull<rte_mbuf> {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// The raw mbuf, still owned by `self`.
    pub fn as_ptr(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    fn header(&self) -> &rte_mbuf {
        // SAFETY: valid mbuf owned by `self` (type invariant); the shared
        // borrow of `self` prevents mutation through it.
        unsafe { self.0.as_ref() }
    }

    fn header_mut(&mut self) -> &mut rte_mbuf {
        // SAFETY: valid mbuf exclusively owned by `self` (type invariant).
        unsafe { self.0.as_mut() }
    }

    /// Free bytes in front of the data.
    pub fn headroom(&self) -> usize {
        usize::from(self.header().data_off)
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        let m = self.header();
        usize::from(m.buf_len) - usize::from(m.data_off) - usize::from(m.data_len)
    }

    /// The ethdev port the packet was received on (as set by the driver).
    pub fn input_port(&self) -> u16 {
        self.header().port
    }

    /// The mbuf's offload flags (`RTE_MBUF_F_*`).
    pub fn ol_flags(&self) -> u64 {
        self.header().ol_flags
    }

    /// Number of segments (1 for every `Mbuf` handed out by this module).
    pub fn segments(&self) -> u16 {
        self.header().nb_segs
    }

    /// Sets the length of the (single) segment; `len` must fit in the
    /// tailroom plus the current length.
    fn set_data_len(&mut self, len: u16) {
        let m = self.header_mut();
        debug_assert!(usize::from(m.data_off) + usize::from(len) <= usize::from(m.buf_len));
        m.data_len = len;
        m.pkt_len = u32::from(len);
    }

    /// Turns a multi-segment chain into one segment; false when the first
    /// segment has no room for the rest (the mbuf is left unchanged).
    pub(crate) fn linearize(&mut self) -> bool {
        if self.header().nb_segs == 1 {
            return true;
        }
        // SAFETY: valid mbuf chain owned by `self`; rte_pktmbuf_linearize
        // copies the tail segments into the first one and frees them, or
        // fails leaving the chain as is.
        unsafe { dpdk_sys::vportd_pktmbuf_linearize(self.0.as_ptr()) == 0 }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own one reference on a valid mbuf of a live pool; it is
        // given back exactly once.
        unsafe { dpdk_sys::vportd_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.header();
        f.debug_struct("Mbuf")
            .field("addr", &self.0)
            .field("data_off", &m.data_off)
            .field("data_len", &m.data_len)
            .field("buf_len", &m.buf_len)
            .field("nb_segs", &m.nb_segs)
            .field("port", &m.port)
            .finish()
    }
}

impl Packet for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.header();
        // SAFETY: single segment with data_off + data_len <= buf_len, so
        // buf_addr + data_off .. + data_len lies inside the mbuf's buffer;
        // the buffer is owned by `self` and not written while `&self` is
        // borrowed.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.header_mut();
        let (start, len) = (usize::from(m.data_off), usize::from(m.data_len));
        // SAFETY: as in `data`, and the buffer is writable and exclusively
        // ours (direct, unshared mbuf) for the `&mut self` borrow.
        unsafe { std::slice::from_raw_parts_mut(m.buf_addr.cast::<u8>().add(start), len) }
    }

    #[inline]
    fn push_front(&mut self, n: usize) -> bool {
        let m = self.header_mut();
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        if n > m.data_off {
            return false;
        }
        // data_off + data_len is unchanged, so still <= buf_len (<= u16::MAX).
        m.data_off -= n;
        m.data_len += n;
        m.pkt_len += u32::from(n);
        true
    }

    #[inline]
    fn pull_front(&mut self, n: usize) -> bool {
        let m = self.header_mut();
        let Ok(n) = u16::try_from(n) else {
            return false;
        };
        if n > m.data_len {
            return false;
        }
        m.data_off += n;
        m.data_len -= n;
        m.pkt_len -= u32::from(n);
        true
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        if len < usize::from(self.header().data_len) {
            // len < data_len <= u16::MAX.
            self.set_data_len(len as u16);
        }
    }

    fn try_clone(&self) -> Option<Self> {
        let m = self.header();
        let fresh_headroom = usize::from(m.buf_len.min(MBUF_HEADROOM));
        let copy = if usize::from(m.data_len) + fresh_headroom <= usize::from(m.buf_len) {
            // SAFETY: valid single-segment mbuf of the live pool `m.pool`.
            // The data fits after a fresh mbuf's headroom (same pool, same
            // buf_len), so the copy has a single segment too.
            unsafe { dpdk_sys::rte_pktmbuf_copy(self.0.as_ptr(), m.pool, 0, u32::MAX) }
        } else {
            // Headers pushed deep into the headroom: keep the same layout so
            // the copy still fits one segment.
            // SAFETY: valid single-segment mbuf of the live pool `m.pool`.
            unsafe { dpdk_sys::vportd_pktmbuf_copy_same_layout(self.0.as_ptr()) }
        };
        // A fresh direct mbuf holding its own copy: satisfies the invariants.
        NonNull::new(copy).map(Mbuf)
    }

    #[inline]
    fn rss_hash(&self) -> Option<u32> {
        let m = self.header();
        if m.ol_flags & u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: every variant of the hash union is plain integers; the
        // flag says the driver stored the RSS hash there.
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }
}
