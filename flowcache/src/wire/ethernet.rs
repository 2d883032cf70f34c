//! Ethernet II / IEEE 802.3 header.

use super::header_view;

header_view! {
    /// An Ethernet header: destination, source, type/length.
    pub struct Frame, HEADER_LEN = 14;
    /// Destination MAC.
    dst_addr, set_dst_addr: mac @ 0;
    /// Source MAC.
    src_addr, set_src_addr: mac @ 6;
    /// Ethertype, or the length of an 802.3 frame when below
    /// [`ETH_TYPE_MIN`](crate::key::ETH_TYPE_MIN).
    ethertype, set_ethertype, ETHERTYPE: u16 @ 12;
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// The bytes after the 14-byte header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.as_bytes()[Self::HEADER_LEN..]
    }
}
