//! Datapath text: MAC and IP addresses as OVS prints them, and the
//! ODP-style (`dpctl/dump-flows`) text of a megaflow key and mask. The
//! datapath actions' text is [`crate::actions::format_actions`].

use crate::key::*;

/// `00:11:22:33:44:55`.
pub fn mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Dotted quad of a host-order address.
pub fn ipv4(a: u32) -> String {
    let b = a.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// IPv6 text exactly as glibc's `inet_ntop` (which OVS uses).
pub fn ipv6(b: &[u8; 16]) -> String {
    let w: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]))
        .collect();
    // Longest run of zero words (first one on ties), at least 2 long.
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_base = Some(start);
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = None;
    }
    let mut s = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some(base) = best_base {
            if i >= base && i < base + best_len {
                if i == base {
                    s.push(':');
                }
                i += 1;
                continue;
            }
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6 && best_base == Some(0) && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            s.push_str(&ipv4(u32::from_be_bytes([b[12], b[13], b[14], b[15]])));
            return s;
        }
        s.push_str(&format!("{:x}", w[i]));
        i += 1;
    }
    if let Some(base) = best_base {
        if base + best_len == 8 {
            s.push(':');
        }
    }
    s
}

// ---------------------------------------------------------------------
// Datapath-style key/mask text.

/// Pushes `name=value` (or `name=value/mask` for a partial mask) when the
/// mask is not zero.
fn field<T: PartialEq + Copy>(
    parts: &mut Vec<String>,
    name: &str,
    v: T,
    m: T,
    zero: T,
    ones: T,
    show: impl Fn(T) -> String,
) {
    if m == zero {
        return;
    }
    if m == ones {
        parts.push(format!("{name}={}", show(v)));
    } else {
        parts.push(format!("{name}={}/{}", show(v), show(m)));
    }
}

/// OVS `format_flags_masked` of `tun_flags`: `+name` / `-name` for each
/// bit in the mask (oam, df, csum, key).
pub fn tun_flags(v: u16, m: u16) -> String {
    let mut s = String::new();
    for (bit, name) in [(1u16, "oam"), (2, "df"), (4, "csum"), (8, "key")] {
        if m & bit != 0 {
            s.push(if v & bit != 0 { '+' } else { '-' });
            s.push_str(name);
        }
    }
    s
}

fn hex_u<T: Into<u64>>(v: T) -> String {
    format!("{:#x}", v.into())
}

fn group(out: &mut Vec<String>, name: &str, parts: Vec<String>) {
    if !parts.is_empty() {
        out.push(format!("{name}({})", parts.join(",")));
    }
}

/// A megaflow as `ovs-appctl dpctl/dump-flows` prints its key:
/// `recirc_id(0),in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,frag=no)`.
/// Fields whose mask is zero are left out; partial masks print as
/// `value/mask`.
pub fn odp_key(key: &FlowKey, mask: &FlowKey) -> String {
    let k = key.masked(mask);
    let m = mask;
    let mut out: Vec<String> = Vec::new();
    let single = |out: &mut Vec<String>, name: &str, v: u32, mk: u32, hex: bool| {
        if mk == 0 {
            return;
        }
        let f = |x: u32| {
            if hex && x != 0 {
                format!("{x:#x}")
            } else {
                x.to_string()
            }
        };
        if mk == u32::MAX {
            out.push(format!("{name}({})", f(v)));
        } else {
            out.push(format!("{name}({}/{:#x})", f(v), mk));
        }
    };
    single(&mut out, "recirc_id", k.recirc_id, m.recirc_id, true);
    single(&mut out, "dp_hash", k.dp_hash, m.dp_hash, true);
    single(&mut out, "skb_mark", k.pkt_mark, m.pkt_mark, true);
    if m.words()[2..9].iter().any(|w| *w != 0) {
        let mut p = Vec::new();
        field(&mut p, "tun_id", k.tun_id, m.tun_id, 0, u64::MAX, |x| {
            format!("{x:#x}")
        });
        field(&mut p, "src", k.tun_src, m.tun_src, 0, u32::MAX, ipv4);
        field(&mut p, "dst", k.tun_dst, m.tun_dst, 0, u32::MAX, ipv4);
        field(&mut p, "tos", k.tun_tos, m.tun_tos, 0, 0xff, hex_u);
        field(&mut p, "ttl", k.tun_ttl, m.tun_ttl, 0, 0xff, |x| {
            x.to_string()
        });
        field(
            &mut p,
            "tp_src",
            k.tun_tp_src,
            m.tun_tp_src,
            0,
            0xffff,
            |x| x.to_string(),
        );
        field(
            &mut p,
            "tp_dst",
            k.tun_tp_dst,
            m.tun_tp_dst,
            0,
            0xffff,
            |x| x.to_string(),
        );
        if m.tun_flags != 0 {
            p.push(format!("flags({})", tun_flags(k.tun_flags, m.tun_flags)));
        }
        group(&mut out, "tunnel", p);
    }
    single(&mut out, "in_port", k.in_port, m.in_port, false);

    let mut p = Vec::new();
    field(&mut p, "src", k.dl_src, m.dl_src, [0; 6], [0xff; 6], |x| {
        mac(&x)
    });
    field(&mut p, "dst", k.dl_dst, m.dl_dst, [0; 6], [0xff; 6], |x| {
        mac(&x)
    });
    group(&mut out, "eth", p);

    let tagged = k.vlans[0].tci & VLAN_CFI != 0;
    if tagged {
        let tci = k.vlans[0].tci;
        let mt = m.vlans[0].tci;
        let mut p = Vec::new();
        field(
            &mut p,
            "vid",
            tci & VLAN_VID_MASK,
            mt & VLAN_VID_MASK,
            0,
            VLAN_VID_MASK,
            |x| x.to_string(),
        );
        field(
            &mut p,
            "pcp",
            (tci & VLAN_PCP_MASK) >> VLAN_PCP_SHIFT,
            (mt & VLAN_PCP_MASK) >> VLAN_PCP_SHIFT,
            0,
            7,
            |x| x.to_string(),
        );
        out.push(format!("vlan({})", p.join(",")));
    }
    if m.dl_type != 0 {
        if m.dl_type == 0xffff {
            out.push(format!("eth_type({:#06x})", k.dl_type));
        } else {
            out.push(format!("eth_type({:#06x}/{:#06x})", k.dl_type, m.dl_type));
        }
    }
    if m.mpls_lse[0] != 0 {
        let (v, mk) = (k.mpls_lse[0], m.mpls_lse[0]);
        let mut p = Vec::new();
        let sub = |p: &mut Vec<String>, name: &str, msk: u32, shift: u32| {
            field(
                p,
                name,
                (v & msk) >> shift,
                (mk & msk) >> shift,
                0,
                msk >> shift,
                |x| x.to_string(),
            );
        };
        sub(&mut p, "label", MPLS_LABEL_MASK, MPLS_LABEL_SHIFT);
        sub(&mut p, "tc", MPLS_TC_MASK, MPLS_TC_SHIFT);
        sub(&mut p, "ttl", MPLS_TTL_MASK, 0);
        sub(&mut p, "bos", MPLS_BOS_MASK, MPLS_BOS_SHIFT);
        group(&mut out, "mpls", p);
    }
    let frag = |p: &mut Vec<String>| {
        if m.nw_frag == 0 {
            return;
        }
        if m.nw_frag == FRAG_ANY | FRAG_LATER {
            let s = match k.nw_frag {
                0 => "no",
                FRAG_ANY => "first",
                _ => "later",
            };
            p.push(format!("frag={s}"));
        } else {
            p.push(format!("frag={:#x}/{:#x}", k.nw_frag, m.nw_frag));
        }
    };
    let dl_type = k.dl_type & m.dl_type;
    let l3 = |p: &mut Vec<String>, proto_name: &str, tos_name: &str, ttl_name: &str| {
        field(p, proto_name, k.nw_proto, m.nw_proto, 0, 0xff, |x| {
            x.to_string()
        });
        field(p, tos_name, k.nw_tos, m.nw_tos, 0, 0xff, hex_u);
        field(p, ttl_name, k.nw_ttl, m.nw_ttl, 0, 0xff, |x| x.to_string());
    };
    let mut l4 = false;
    if dl_type == ETH_TYPE_IPV4 {
        let mut p = Vec::new();
        field(&mut p, "src", k.nw_src, m.nw_src, 0, u32::MAX, ipv4);
        field(&mut p, "dst", k.nw_dst, m.nw_dst, 0, u32::MAX, ipv4);
        l3(&mut p, "proto", "tos", "ttl");
        frag(&mut p);
        group(&mut out, "ipv4", p);
        l4 = true;
    } else if dl_type == ETH_TYPE_IPV6 {
        let mut p = Vec::new();
        field(
            &mut p,
            "src",
            k.ipv6_src,
            m.ipv6_src,
            [0; 16],
            [0xff; 16],
            |x| ipv6(&x),
        );
        field(
            &mut p,
            "dst",
            k.ipv6_dst,
            m.ipv6_dst,
            [0; 16],
            [0xff; 16],
            |x| ipv6(&x),
        );
        field(
            &mut p,
            "label",
            k.ipv6_label,
            m.ipv6_label,
            0,
            0xfffff,
            hex_u,
        );
        l3(&mut p, "proto", "tclass", "hlimit");
        frag(&mut p);
        group(&mut out, "ipv6", p);
        l4 = true;
    } else if dl_type == ETH_TYPE_ARP || dl_type == ETH_TYPE_RARP {
        let mut p = Vec::new();
        field(&mut p, "sip", k.nw_src, m.nw_src, 0, u32::MAX, ipv4);
        field(&mut p, "tip", k.nw_dst, m.nw_dst, 0, u32::MAX, ipv4);
        field(&mut p, "op", k.nw_proto, m.nw_proto, 0, 0xff, |x| {
            x.to_string()
        });
        field(
            &mut p,
            "sha",
            k.arp_sha,
            m.arp_sha,
            [0; 6],
            [0xff; 6],
            |x| mac(&x),
        );
        field(
            &mut p,
            "tha",
            k.arp_tha,
            m.arp_tha,
            [0; 6],
            [0xff; 6],
            |x| mac(&x),
        );
        group(&mut out, "arp", p);
    }
    if l4 && m.nw_proto != 0 {
        let ports = |out: &mut Vec<String>, name: &str, sname: &str, dname: &str| {
            let mut p = Vec::new();
            field(&mut p, sname, k.tp_src, m.tp_src, 0, 0xffff, |x| {
                x.to_string()
            });
            field(&mut p, dname, k.tp_dst, m.tp_dst, 0, 0xffff, |x| {
                x.to_string()
            });
            group(out, name, p);
        };
        match k.nw_proto {
            IPPROTO_TCP => {
                ports(&mut out, "tcp", "src", "dst");
                if m.tcp_flags != 0 {
                    if m.tcp_flags == 0x0fff || m.tcp_flags == 0xffff {
                        out.push(format!("tcp_flags({:#x})", k.tcp_flags));
                    } else {
                        out.push(format!("tcp_flags({:#x}/{:#x})", k.tcp_flags, m.tcp_flags));
                    }
                }
            }
            IPPROTO_UDP => ports(&mut out, "udp", "src", "dst"),
            IPPROTO_SCTP => ports(&mut out, "sctp", "src", "dst"),
            IPPROTO_ICMP if dl_type == ETH_TYPE_IPV4 => ports(&mut out, "icmp", "type", "code"),
            IPPROTO_ICMPV6 if dl_type == ETH_TYPE_IPV6 => {
                ports(&mut out, "icmpv6", "type", "code");
                let mut p = Vec::new();
                field(
                    &mut p,
                    "target",
                    k.nd_target,
                    m.nd_target,
                    [0; 16],
                    [0xff; 16],
                    |x| ipv6(&x),
                );
                field(
                    &mut p,
                    "sll",
                    k.arp_sha,
                    m.arp_sha,
                    [0; 6],
                    [0xff; 6],
                    |x| mac(&x),
                );
                field(
                    &mut p,
                    "tll",
                    k.arp_tha,
                    m.arp_tha,
                    [0; 6],
                    [0xff; 6],
                    |x| mac(&x),
                );
                group(&mut out, "nd", p);
            }
            _ => {}
        }
    }
    if out.is_empty() {
        "(all packets)".to_string()
    } else {
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odp_key_text() {
        let mut k = FlowKey::default();
        let mut m = FlowKey::default();
        k.in_port = 1;
        m.in_port = u32::MAX;
        m.recirc_id = u32::MAX;
        k.dl_type = ETH_TYPE_IPV4;
        m.dl_type = 0xffff;
        k.nw_dst = 0x0a00_0001;
        m.nw_dst = 0xff00_0000;
        m.nw_frag = 3;
        m.vlans[0].tci = VLAN_CFI;
        assert_eq!(
            odp_key(&k, &m),
            "recirc_id(0),in_port(1),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,frag=no)"
        );
        k.nw_proto = IPPROTO_UDP;
        m.nw_proto = 0xff;
        k.tp_dst = 53;
        m.tp_dst = 0xffff;
        assert!(odp_key(&k, &m).ends_with("proto=17,frag=no),udp(dst=53)"));
    }

    #[test]
    fn ipv6_text_like_inet_ntop() {
        let f = |s: &str| ipv6(&s.parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(f("2001:db8::1"), "2001:db8::1");
        assert_eq!(f("::"), "::");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("fe80::"), "fe80::");
        assert_eq!(f("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(f("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
        assert_eq!(f("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(f("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(f("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(f("ffff:ffff:ffff:ffff::"), "ffff:ffff:ffff:ffff::");
        assert_eq!(mac(&[0, 0x11, 0x22, 0x33, 0x44, 0xff]), "00:11:22:33:44:ff");
        assert_eq!(ipv4(0x0a00_0001), "10.0.0.1");
    }
}
