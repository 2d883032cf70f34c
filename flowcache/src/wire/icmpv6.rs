//! ICMPv6 header (RFC 4443) and Neighbor Discovery (RFC 4861).

use super::header_view;

/// Neighbor solicitation.
pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
/// Neighbor advertisement.
pub const ND_NEIGHBOR_ADVERT: u8 = 136;
/// Source link-layer address option.
pub const ND_OPT_SOURCE_LINKADDR: u8 = 1;
/// Target link-layer address option.
pub const ND_OPT_TARGET_LINKADDR: u8 = 2;

header_view! {
    /// The 8-byte ICMPv6 header (type, code, checksum, 4 data bytes).
    pub struct Packet, HEADER_LEN = 8;
    /// Message type.
    msg_type, set_msg_type: u8 @ 0;
    /// Message code.
    msg_code, set_msg_code: u8 @ 1;
    /// Checksum.
    checksum, set_checksum, CHECKSUM: u16 @ 2;
    /// The 4 data bytes (ND: R/S/O flags and reserved bits).
    data, set_data: u32 @ 4;
}

header_view! {
    /// A neighbor solicitation/advertisement: ICMPv6 header + target.
    pub struct NeighborMessage, HEADER_LEN = 24;
    /// Message type.
    msg_type, set_msg_type: u8 @ 0;
    /// Message code.
    msg_code, set_msg_code: u8 @ 1;
    /// Target address.
    target_addr, set_target_addr, ND_TARGET_ADDR: ip6 @ 8;
}

header_view! {
    /// An ND option header with a 6-byte link-layer address (an 8-byte
    /// option); other option types share the type/length bytes.
    pub struct NdOption, HEADER_LEN = 8;
    /// Option type.
    opt_type, set_opt_type, ND_OPT_TYPE: u8 @ 0;
    /// Length in units of 8 bytes (0 is invalid).
    len_units, set_len_units, ND_OPT_LEN_UNITS: u8 @ 1;
    /// Link-layer address (for SLL/TLL options of length 1).
    link_layer_addr, set_link_layer_addr, ND_OPT_LINK_LAYER_ADDR: mac @ 2;
}

impl<T: AsRef<[u8]>> NdOption<T> {
    /// Length of the option in bytes.
    #[inline(always)]
    pub fn len_bytes(&self) -> usize {
        usize::from(self.len_units()) * 8
    }
}
