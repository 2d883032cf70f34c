//! ARP / RARP for Ethernet and IPv4 (RFC 826).

use super::header_view;

header_view! {
    /// An ARP packet; the address fields are at the Ethernet/IPv4 offsets,
    /// meaningful only when [`is_ethernet_ipv4`](Packet::is_ethernet_ipv4).
    pub struct Packet, HEADER_LEN = 28;
    /// Hardware type (1 = Ethernet).
    hardware_type, set_hardware_type: u16 @ 0;
    /// Protocol type (0x0800 = IPv4).
    protocol_type, set_protocol_type: u16 @ 2;
    /// Hardware address length.
    hardware_len, set_hardware_len: u8 @ 4;
    /// Protocol address length.
    protocol_len, set_protocol_len: u8 @ 5;
    /// Operation.
    operation, set_operation, OPERATION: u16 @ 6;
    /// Sender hardware address.
    sender_hw_addr, set_sender_hw_addr, SENDER_HW_ADDR: mac @ 8;
    /// Sender protocol address.
    sender_proto_addr, set_sender_proto_addr, SENDER_PROTO_ADDR: ip4 @ 14;
    /// Target hardware address.
    target_hw_addr, set_target_hw_addr, TARGET_HW_ADDR: mac @ 18;
    /// Target protocol address.
    target_proto_addr, set_target_proto_addr, TARGET_PROTO_ADDR: ip4 @ 24;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// True for htype 1, ptype 0x0800, hlen 6, plen 4 (the only ARP that
    /// is parsed into a flow key).
    #[inline(always)]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == 1
            && self.protocol_type() == 0x0800
            && self.hardware_len() == 6
            && self.protocol_len() == 4
    }
}
