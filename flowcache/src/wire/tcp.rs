//! TCP header (RFC 9293).

use super::header_view;

header_view! {
    /// The fixed 20 bytes of a TCP header.
    pub struct Packet, HEADER_LEN = 20;
    /// Source port.
    src_port, set_src_port, SRC_PORT: u16 @ 0;
    /// Destination port.
    dst_port, set_dst_port, DST_PORT: u16 @ 2;
    /// Sequence number.
    seq_number, set_seq_number: u32 @ 4;
    /// Acknowledgement number.
    ack_number, set_ack_number: u32 @ 8;
    /// Data offset (top nibble), reserved bits, NS and the 8 flag bits.
    offset_flags, set_offset_flags, OFFSET_FLAGS: u16 @ 12;
    /// Window.
    window, set_window: u16 @ 14;
    /// Checksum.
    checksum, set_checksum, CHECKSUM: u16 @ 16;
    /// Urgent pointer.
    urgent, set_urgent: u16 @ 18;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Header length in bytes (data offset * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.as_bytes()[12] >> 4) * 4
    }

    /// The low 12 bits of the offset/flags word (OVS `TCP_FLAGS`): the
    /// eight classic flags, NS and the three reserved bits.
    #[inline(always)]
    pub fn flags(&self) -> u16 {
        self.offset_flags() & 0x0fff
    }
}
