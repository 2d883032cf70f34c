//! IEEE 802.1Q / 802.1ad tag, viewed from its TPID.

use super::header_view;

header_view! {
    /// A VLAN tag as it sits in a frame: TPID (0x8100 or 0x88a8) then TCI.
    /// The next Ethertype follows the tag.
    pub struct Tag, HEADER_LEN = 4;
    /// Tag protocol identifier.
    tpid, set_tpid: u16 @ 0;
    /// Tag control information (PCP, DEI, VID) as on the wire.
    tci, set_tci: u16 @ 2;
}

impl<T: AsRef<[u8]>> Tag<T> {
    /// VLAN ID (low 12 bits of the TCI).
    #[inline(always)]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// Priority code point.
    #[inline(always)]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator (formerly CFI).
    #[inline(always)]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }
}
