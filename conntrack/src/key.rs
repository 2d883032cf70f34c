//! Connection keys: zone, protocol and both endpoints of one direction.

use flowcache::key::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};

/// One direction of a connection. Addresses are 16 bytes (an IPv4
/// address in the last 4, big-endian). TCP/UDP: the ports. ICMP queries:
/// `sport` is the identifier and `dport` the type (high byte) and code of
/// a packet in this direction, so a request and its reply have reverse
/// keys and a second request the other way does not match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub zone: u16,
    pub proto: u8,
    pub v6: bool,
}

/// The reply type of an ICMP query type, `None` for every other type.
pub fn icmp_reply_type(v6: bool, t: u8) -> Option<u8> {
    Some(match (v6, t) {
        (false, 8) => 0,
        (false, 0) => 8,
        (false, 13) => 14,
        (false, 14) => 13,
        (false, 15) => 16,
        (false, 16) => 15,
        (true, 128) => 129,
        (true, 129) => 128,
        _ => return None,
    })
}

impl ConnKey {
    /// True for an ICMP or ICMPv6 key.
    pub fn is_icmp(&self) -> bool {
        self.proto == IPPROTO_ICMP || self.proto == IPPROTO_ICMPV6
    }

    /// True when the key carries ports.
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
    }

    /// The key of the other direction.
    pub fn reverse(&self) -> ConnKey {
        let mut r = *self;
        r.src = self.dst;
        r.dst = self.src;
        if self.is_icmp() {
            let t = (self.dport >> 8) as u8;
            let rt = icmp_reply_type(self.v6, t).unwrap_or(t);
            r.dport = u16::from(rt) << 8 | (self.dport & 0xff);
        } else {
            r.sport = self.dport;
            r.dport = self.sport;
        }
        r
    }

    /// IPv4 source (for an IPv4 key).
    pub fn src4(&self) -> u32 {
        u32::from_be_bytes([self.src[12], self.src[13], self.src[14], self.src[15]])
    }

    /// IPv4 destination (for an IPv4 key).
    pub fn dst4(&self) -> u32 {
        u32::from_be_bytes([self.dst[12], self.dst[13], self.dst[14], self.dst[15]])
    }

    /// A 64-bit hash (shard selection and table hash): multiply-fold over
    /// the key's words.
    #[inline]
    pub fn hash(&self) -> u64 {
        let w = |b: &[u8; 16], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let tail = u64::from(self.sport)
            | u64::from(self.dport) << 16
            | u64::from(self.zone) << 32
            | u64::from(self.proto) << 48
            | u64::from(self.v6) << 56;
        let mut h: u64 = 0x243f_6a88_85a3_08d3;
        for x in [
            w(&self.src, 0),
            w(&self.src, 8),
            w(&self.dst, 0),
            w(&self.dst, 8),
            tail,
        ] {
            let m = u128::from(h ^ x) * 0x9e37_79b9_7f4a_7c15u128;
            h = (m as u64) ^ ((m >> 64) as u64);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_is_an_involution() {
        let k = ConnKey {
            src: [1; 16],
            dst: [2; 16],
            sport: 10,
            dport: 20,
            zone: 3,
            proto: IPPROTO_UDP,
            v6: true,
        };
        assert_eq!(k.reverse().reverse(), k);
        assert_eq!(k.reverse().sport, 20);
        let icmp = ConnKey {
            proto: IPPROTO_ICMP,
            sport: 77,
            dport: 8 << 8,
            v6: false,
            ..k
        };
        assert_eq!(icmp.reverse().dport, 0);
        assert_eq!(icmp.reverse().sport, 77);
        assert_eq!(icmp.reverse().reverse(), icmp);
    }
}
