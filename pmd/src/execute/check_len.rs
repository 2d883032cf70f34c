//! The frame length `check_pkt_len` compares (OVS `odp_execute_check_pkt_len`):
//! the frame without the Ethernet padding after its IP datagram
//! (`dp_packet_l2_pad_size`), since tunnel encapsulation and the wire would
//! not carry that padding.

use super::{Offsets, NO_OFFSET};
use flowcache::key::{ETH_TYPE_IPV4, ETH_TYPE_IPV6};
use flowcache::wire::{ipv4, ipv6};

/// Bytes after the IPv4/IPv6 datagram (its total length, or payload
/// length + 40) up to the end of the frame; 0 for anything else, for MPLS
/// (OVS does not parse under labels) and for headers that do not fit.
pub(super) fn l2_pad_len(frame: &[u8], ofs: &Offsets) -> usize {
    if ofs.l3 == NO_OFFSET || ofs.l2_5 != NO_OFFSET {
        return 0;
    }
    let l3 = usize::from(ofs.l3);
    let Some(ethertype) = frame.get(l3.wrapping_sub(2)..l3) else {
        return 0;
    };
    let be16_at = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let ip_len = match u16::from_be_bytes([ethertype[0], ethertype[1]]) {
        ETH_TYPE_IPV4 => be16_at(l3 + ipv4::TOTAL_LEN),
        ETH_TYPE_IPV6 => {
            be16_at(l3 + ipv6::PAYLOAD_LEN).map(|n| n + ipv6::Packet::<&[u8]>::HEADER_LEN)
        }
        _ => None,
    };
    match ip_len {
        Some(n) if l3 + n <= frame.len() => frame.len() - l3 - n,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_frame(total_len: u16, frame_len: usize) -> Vec<u8> {
        let mut f = vec![0u8; frame_len];
        f[12..14].copy_from_slice(&ETH_TYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&total_len.to_be_bytes());
        f
    }

    fn ofs(l3: u16) -> Offsets {
        Offsets {
            l3,
            ..Default::default()
        }
    }

    #[test]
    fn padding_after_the_datagram_is_counted() {
        // A 28-byte datagram padded to a 60-byte frame: 18 bytes of pad.
        assert_eq!(l2_pad_len(&ipv4_frame(28, 60), &ofs(14)), 18);
        assert_eq!(l2_pad_len(&ipv4_frame(46, 60), &ofs(14)), 0);
    }

    #[test]
    fn a_total_length_beyond_the_frame_means_no_pad() {
        assert_eq!(l2_pad_len(&ipv4_frame(200, 60), &ofs(14)), 0);
    }

    #[test]
    fn mpls_and_non_ip_have_no_pad() {
        let f = ipv4_frame(28, 60);
        let mpls = Offsets {
            l2_5: 14,
            l3: 18,
            l4: NO_OFFSET,
        };
        assert_eq!(l2_pad_len(&f, &mpls), 0);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(l2_pad_len(&arp, &ofs(14)), 0);
    }
}
