//! UDP header (RFC 768).

use super::header_view;

header_view! {
    /// An 8-byte UDP header.
    pub struct Packet, HEADER_LEN = 8;
    /// Source port.
    src_port, set_src_port, SRC_PORT: u16 @ 0;
    /// Destination port.
    dst_port, set_dst_port, DST_PORT: u16 @ 2;
    /// Length of header and payload.
    length, set_length: u16 @ 4;
    /// Checksum (0 = none, IPv4 only).
    checksum, set_checksum, CHECKSUM: u16 @ 6;
}
