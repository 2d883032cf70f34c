//! IEEE 802.2 LLC header followed by a SNAP header (RFC 1042).

use super::header_view;

/// DSAP/SSAP value announcing SNAP.
pub const SAP_SNAP: u8 = 0xaa;
/// LLC control value of SNAP frames (unnumbered information).
pub const CNTL_SNAP: u8 = 0x03;
/// The SNAP OUI meaning "the protocol ID is an Ethertype".
pub const OUI_ETHERNET: [u8; 3] = [0, 0, 0];

header_view! {
    /// LLC (DSAP, SSAP, control) + SNAP (OUI, protocol ID): 8 bytes.
    pub struct LlcSnap, HEADER_LEN = 8;
    /// Destination service access point.
    dsap, set_dsap: u8 @ 0;
    /// Source service access point.
    ssap, set_ssap: u8 @ 1;
    /// Control field.
    control, set_control: u8 @ 2;
    /// SNAP protocol ID (an Ethertype when the OUI is 0).
    ethertype, set_ethertype: u16 @ 6;
}

impl<T: AsRef<[u8]>> LlcSnap<T> {
    /// SNAP organisation code.
    #[inline(always)]
    pub fn oui(&self) -> [u8; 3] {
        let b = self.as_bytes();
        [b[3], b[4], b[5]]
    }

    /// True for `AA AA 03` with OUI 00:00:00 (an encapsulated Ethertype).
    #[inline(always)]
    pub fn is_ethernet_snap(&self) -> bool {
        self.dsap() == SAP_SNAP
            && self.ssap() == SAP_SNAP
            && self.control() == CNTL_SNAP
            && self.oui() == OUI_ETHERNET
    }
}
