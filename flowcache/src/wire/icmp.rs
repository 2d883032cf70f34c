//! ICMPv4 header (RFC 792).  IGMP shares the type/code layout.

use super::header_view;

header_view! {
    /// The 8-byte ICMP header (type, code, checksum, 4 bytes of rest).
    pub struct Packet, HEADER_LEN = 8;
    /// Message type.
    msg_type, set_msg_type, MSG_TYPE: u8 @ 0;
    /// Message code.
    msg_code, set_msg_code, MSG_CODE: u8 @ 1;
    /// Checksum.
    checksum, set_checksum, CHECKSUM: u16 @ 2;
    /// The 4 bytes after the checksum (identifier/sequence, pointer, ...).
    rest, set_rest: u32 @ 4;
}
