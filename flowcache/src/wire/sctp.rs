//! SCTP common header (RFC 9260).

use super::header_view;

header_view! {
    /// The 12-byte SCTP common header.
    pub struct Packet, HEADER_LEN = 12;
    /// Source port.
    src_port, set_src_port: u16 @ 0;
    /// Destination port.
    dst_port, set_dst_port: u16 @ 2;
    /// Verification tag.
    verification_tag, set_verification_tag: u32 @ 4;
    /// CRC32c checksum (stored little-endian on the wire; this is the raw
    /// big-endian reading of the 4 bytes).
    checksum, set_checksum, CHECKSUM: u32 @ 8;
}
