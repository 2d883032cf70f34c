//! IPv6 header (RFC 8200) and the extension headers the parser walks.

use super::header_view;

/// Hop-by-hop options.
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// Routing header.
pub const NEXT_ROUTING: u8 = 43;
/// Fragment header.
pub const NEXT_FRAGMENT: u8 = 44;
/// Authentication header.
pub const NEXT_AH: u8 = 51;
/// Destination options.
pub const NEXT_DEST_OPTS: u8 = 60;

/// Fragment offset bits of [`Fragment::offset_flags`] (in 8-byte units,
/// shifted left by 3).
pub const FRAG_OFF_MASK: u16 = 0xfff8;
/// M ("more fragments") bit of [`Fragment::offset_flags`].
pub const FRAG_MORE: u16 = 0x0001;

header_view! {
    /// The fixed 40-byte IPv6 header.
    pub struct Packet, HEADER_LEN = 40;
    /// Version, traffic class and flow label as one word.
    version_tc_flow, set_version_tc_flow, VERSION_TC_FLOW: u32 @ 0;
    /// Payload length (everything after the fixed header).
    payload_len, set_payload_len, PAYLOAD_LEN: u16 @ 4;
    /// Next header.
    next_header, set_next_header, NEXT_HEADER: u8 @ 6;
    /// Hop limit.
    hop_limit, set_hop_limit, HOP_LIMIT: u8 @ 7;
    /// Source address.
    src_addr, set_src_addr, SRC_ADDR: ip6 @ 8;
    /// Destination address.
    dst_addr, set_dst_addr, DST_ADDR: ip6 @ 24;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Version nibble.
    #[inline(always)]
    pub fn version(&self) -> u8 {
        (self.version_tc_flow() >> 28) as u8
    }

    /// Traffic class byte.
    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        (self.version_tc_flow() >> 20) as u8
    }

    /// 20-bit flow label.
    #[inline(always)]
    pub fn flow_label(&self) -> u32 {
        self.version_tc_flow() & 0x000f_ffff
    }
}

header_view! {
    /// The common start of hop-by-hop, routing, destination-options and
    /// authentication headers.  All extension headers are at least 8 bytes.
    pub struct ExtHeader, HEADER_LEN = 8;
    /// Next header.
    next_header, set_next_header: u8 @ 0;
    /// Length field (units depend on the header type).
    len_field, set_len_field: u8 @ 1;
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Length in bytes of a hop-by-hop, routing or destination-options
    /// header: `(len + 1) * 8`.
    #[inline(always)]
    pub fn generic_len(&self) -> usize {
        (usize::from(self.len_field()) + 1) * 8
    }

    /// Length in bytes of an authentication header: `(len + 2) * 4`.
    #[inline(always)]
    pub fn ah_len(&self) -> usize {
        (usize::from(self.len_field()) + 2) * 4
    }
}

header_view! {
    /// The start of a routing header (RFC 8200 4.4).
    pub struct Routing, HEADER_LEN = 4;
    /// Next header.
    next_header, set_next_header: u8 @ 0;
    /// Length in 8-byte units, not counting the first 8 bytes.
    len_field, set_len_field: u8 @ 1;
    /// Routing type.
    routing_type, set_routing_type: u8 @ 2;
    /// Segments left.
    segments_left, set_segments_left: u8 @ 3;
}

header_view! {
    /// The 8-byte fragment header.
    pub struct Fragment, HEADER_LEN = 8;
    /// Next header.
    next_header, set_next_header: u8 @ 0;
    /// Offset (13 bits, shifted left by 3), 2 reserved bits, M flag.
    offset_flags, set_offset_flags: u16 @ 2;
    /// Identification.
    ident, set_ident: u32 @ 4;
}

impl<T: AsRef<[u8]>> Fragment<T> {
    /// Fragment offset in 8-byte units.
    #[inline(always)]
    pub fn offset(&self) -> u16 {
        self.offset_flags() >> 3
    }

    /// M flag.
    #[inline(always)]
    pub fn more_fragments(&self) -> bool {
        self.offset_flags() & FRAG_MORE != 0
    }
}
