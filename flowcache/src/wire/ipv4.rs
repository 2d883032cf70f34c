//! IPv4 header (RFC 791).

use super::header_view;

/// "More fragments" flag in [`Packet::flags_frag_off`].
pub const MORE_FRAGMENTS: u16 = 0x2000;
/// "Don't fragment" flag in [`Packet::flags_frag_off`].
pub const DONT_FRAGMENT: u16 = 0x4000;
/// Fragment offset bits (in 8-byte units) of [`Packet::flags_frag_off`].
pub const FRAG_OFF_MASK: u16 = 0x1fff;

header_view! {
    /// An IPv4 header; options and payload follow the fixed 20 bytes.
    pub struct Packet, HEADER_LEN = 20;
    /// Version (high nibble) and IHL (low nibble).
    version_ihl, set_version_ihl: u8 @ 0;
    /// The whole TOS byte (DSCP and ECN).
    tos, set_tos, TOS: u8 @ 1;
    /// Total length of header and payload.
    total_len, set_total_len, TOTAL_LEN: u16 @ 2;
    /// Identification.
    ident, set_ident: u16 @ 4;
    /// Flags (top 3 bits) and fragment offset.
    flags_frag_off, set_flags_frag_off: u16 @ 6;
    /// Time to live.
    ttl, set_ttl, TTL: u8 @ 8;
    /// Protocol of the payload.
    protocol, set_protocol, PROTOCOL: u8 @ 9;
    /// Header checksum.
    checksum, set_checksum, CHECKSUM: u16 @ 10;
    /// Source address.
    src_addr, set_src_addr, SRC_ADDR: ip4 @ 12;
    /// Destination address.
    dst_addr, set_dst_addr, DST_ADDR: ip4 @ 16;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Version nibble.
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.version_ihl() >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.version_ihl() & 0x0f) * 4
    }

    /// True when MF is set or the offset is not 0 (OVS `IP_IS_FRAGMENT`).
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag_off() & (MORE_FRAGMENTS | FRAG_OFF_MASK) != 0
    }

    /// True when the fragment offset is not 0.
    #[inline(always)]
    pub fn is_later_fragment(&self) -> bool {
        self.flags_frag_off() & FRAG_OFF_MASK != 0
    }
}
