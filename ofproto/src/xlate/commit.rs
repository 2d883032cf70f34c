//! Committing header changes to the datapath (OVS `commit_odp_actions`).
//!
//! Translation keeps two keys: `base`, what the packet is in the datapath
//! right now, and `flow`, what the OpenFlow actions made of it. Before an
//! output (and before a `push_mpls` onto a non-MPLS packet) the differences
//! are turned into datapath actions, in OVS's order: Ethernet, MPLS pop to a
//! non-MPLS type, IPv4/IPv6/ND/ARP, TCP/UDP/SCTP ports, ICMP, other MPLS
//! changes, VLAN pops/pushes, packet mark. Afterwards `base == flow` for
//! every committed field.
//!
//! Rewrites are masked sets: for each field of the header that changed, the
//! mask holds the field's megaflow bits (`wc`, which include every bit an
//! action wrote) plus the changed bits, as OVS does with masked set actions.
//! Registers and metadata are never committed.
//!
//! Megaflow bits added here (beyond OVS where needed for soundness): the
//! decisions "is there an L3/L4 header to rewrite" read `nw_proto`, so
//! `nw_proto` is un-wildcarded whenever an IP/ARP/port/ICMP field differs
//! (no rewrite is written when `nw_proto` is 0, as in OVS
//! `commit_set_nw_action`); VLAN pops un-wildcard the popped tags.

use flowcache::actions::*;
use flowcache::key::*;

/// Number of VLAN headers in a key (tags with the present bit).
pub(crate) fn count_vlans(k: &FlowKey) -> usize {
    k.vlans.iter().take_while(|v| v.tci & VLAN_CFI != 0).count()
}

fn mac_or(a: &[u8; 6], b: &[u8; 6]) -> [u8; 6] {
    std::array::from_fn(|i| a[i] | b[i])
}

fn mac_and(a: &[u8; 6], b: &[u8; 6]) -> [u8; 6] {
    std::array::from_fn(|i| a[i] & b[i])
}

fn mac_xor(a: &[u8; 6], b: &[u8; 6]) -> [u8; 6] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn a16_or(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    std::array::from_fn(|i| a[i] | b[i])
}

fn a16_and(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    std::array::from_fn(|i| a[i] & b[i])
}

fn a16_xor(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Mask for one field: nothing if unchanged, else its megaflow bits plus the
/// changed bits.
macro_rules! fmask {
    ($flow:expr, $base:expr, $wc:expr, $zero:expr, $xor:expr, $or:expr) => {{
        let d = $xor;
        if d == $zero {
            $zero
        } else {
            $or
        }
    }};
}

fn m8(f: u8, b: u8, w: u8) -> u8 {
    fmask!(f, b, w, 0, f ^ b, w | (f ^ b))
}
fn m16(f: u16, b: u16, w: u16) -> u16 {
    fmask!(f, b, w, 0, f ^ b, w | (f ^ b))
}
fn m32(f: u32, b: u32, w: u32) -> u32 {
    fmask!(f, b, w, 0, f ^ b, w | (f ^ b))
}
fn mmac(f: &[u8; 6], b: &[u8; 6], w: &[u8; 6]) -> [u8; 6] {
    fmask!(f, b, w, [0u8; 6], mac_xor(f, b), mac_or(w, &mac_xor(f, b)))
}
fn m128(f: &[u8; 16], b: &[u8; 16], w: &[u8; 16]) -> [u8; 16] {
    fmask!(f, b, w, [0u8; 16], a16_xor(f, b), a16_or(w, &a16_xor(f, b)))
}

/// Emits the actions that turn `base` into `flow` and updates `base`.
pub(crate) fn commit(
    flow: &FlowKey,
    base: &mut FlowKey,
    wc: &mut FlowKey,
    out: &mut Vec<DpAction>,
    deep: &mut DeepMpls,
) {
    commit_eth(flow, base, wc, out);
    let mut mpls_done = false;
    if base.is_mpls() && !flow.is_mpls() {
        commit_mpls(flow, base, out, wc, deep);
        mpls_done = true;
    }
    commit_nw(flow, base, wc, out);
    commit_ports(flow, base, wc, out);
    commit_icmp(flow, base, wc, out);
    if !mpls_done {
        commit_mpls(flow, base, out, wc, deep);
    }
    commit_vlan(flow, base, wc, out);
    commit_pkt_mark(flow, base, wc, out);
}

fn commit_eth(flow: &FlowKey, base: &mut FlowKey, wc: &FlowKey, out: &mut Vec<DpAction>) {
    let mask = EthFields {
        src: mmac(&flow.dl_src, &base.dl_src, &wc.dl_src),
        dst: mmac(&flow.dl_dst, &base.dl_dst, &wc.dl_dst),
    };
    if mask == EthFields::default() {
        return;
    }
    let value = EthFields {
        src: mac_and(&flow.dl_src, &mask.src),
        dst: mac_and(&flow.dl_dst, &mask.dst),
    };
    out.push(DpAction::Set(SetField::Ethernet(Masked { value, mask })));
    base.dl_src = flow.dl_src;
    base.dl_dst = flow.dl_dst;
}

fn commit_nw(flow: &FlowKey, base: &mut FlowKey, wc: &mut FlowKey, out: &mut Vec<DpAction>) {
    match base.dl_type {
        ETH_TYPE_IPV4 => {
            let mask = Ipv4Fields {
                src: m32(flow.nw_src, base.nw_src, wc.nw_src),
                dst: m32(flow.nw_dst, base.nw_dst, wc.nw_dst),
                tos: m8(flow.nw_tos, base.nw_tos, wc.nw_tos),
                ttl: m8(flow.nw_ttl, base.nw_ttl, wc.nw_ttl),
            };
            if mask == Ipv4Fields::default() {
                return;
            }
            wc.nw_proto = 0xff;
            if flow.nw_proto == 0 {
                return;
            }
            let value = Ipv4Fields {
                src: flow.nw_src & mask.src,
                dst: flow.nw_dst & mask.dst,
                tos: flow.nw_tos & mask.tos,
                ttl: flow.nw_ttl & mask.ttl,
            };
            out.push(DpAction::Set(SetField::Ipv4(Masked { value, mask })));
            base.nw_src = flow.nw_src;
            base.nw_dst = flow.nw_dst;
            base.nw_tos = flow.nw_tos;
            base.nw_ttl = flow.nw_ttl;
        }
        ETH_TYPE_IPV6 => {
            let mask = Ipv6Fields {
                src: m128(&flow.ipv6_src, &base.ipv6_src, &wc.ipv6_src),
                dst: m128(&flow.ipv6_dst, &base.ipv6_dst, &wc.ipv6_dst),
                label: m32(flow.ipv6_label, base.ipv6_label, wc.ipv6_label) & 0x000f_ffff,
                tclass: m8(flow.nw_tos, base.nw_tos, wc.nw_tos),
                hlimit: m8(flow.nw_ttl, base.nw_ttl, wc.nw_ttl),
            };
            if mask != Ipv6Fields::default() {
                wc.nw_proto = 0xff;
                if flow.nw_proto == 0 {
                    return;
                }
                let value = Ipv6Fields {
                    src: a16_and(&flow.ipv6_src, &mask.src),
                    dst: a16_and(&flow.ipv6_dst, &mask.dst),
                    label: flow.ipv6_label & mask.label,
                    tclass: flow.nw_tos & mask.tclass,
                    hlimit: flow.nw_ttl & mask.hlimit,
                };
                out.push(DpAction::Set(SetField::Ipv6(Masked { value, mask })));
                base.ipv6_src = flow.ipv6_src;
                base.ipv6_dst = flow.ipv6_dst;
                base.ipv6_label = flow.ipv6_label;
                base.nw_tos = flow.nw_tos;
                base.nw_ttl = flow.nw_ttl;
            }
            let mask = NdFields {
                target: m128(&flow.nd_target, &base.nd_target, &wc.nd_target),
                sll: mmac(&flow.arp_sha, &base.arp_sha, &wc.arp_sha),
                tll: mmac(&flow.arp_tha, &base.arp_tha, &wc.arp_tha),
            };
            if mask == NdFields::default() {
                return;
            }
            wc.nw_proto = 0xff;
            if flow.nw_proto == 0 || base.nw_proto != IPPROTO_ICMPV6 {
                return;
            }
            let value = NdFields {
                target: a16_and(&flow.nd_target, &mask.target),
                sll: mac_and(&flow.arp_sha, &mask.sll),
                tll: mac_and(&flow.arp_tha, &mask.tll),
            };
            out.push(DpAction::Set(SetField::Nd(Masked { value, mask })));
            base.nd_target = flow.nd_target;
            base.arp_sha = flow.arp_sha;
            base.arp_tha = flow.arp_tha;
        }
        ETH_TYPE_ARP => {
            let mask = ArpFields {
                op: m8(flow.nw_proto, base.nw_proto, wc.nw_proto) as u16,
                spa: m32(flow.nw_src, base.nw_src, wc.nw_src),
                tpa: m32(flow.nw_dst, base.nw_dst, wc.nw_dst),
                sha: mmac(&flow.arp_sha, &base.arp_sha, &wc.arp_sha),
                tha: mmac(&flow.arp_tha, &base.arp_tha, &wc.arp_tha),
            };
            if mask == ArpFields::default() {
                return;
            }
            wc.nw_proto = 0xff;
            if flow.nw_proto == 0 {
                return;
            }
            let mask = ArpFields {
                op: if mask.op != 0 { 0xffff } else { 0 },
                ..mask
            };
            let value = ArpFields {
                op: flow.nw_proto as u16 & mask.op,
                spa: flow.nw_src & mask.spa,
                tpa: flow.nw_dst & mask.tpa,
                sha: mac_and(&flow.arp_sha, &mask.sha),
                tha: mac_and(&flow.arp_tha, &mask.tha),
            };
            out.push(DpAction::Set(SetField::Arp(Masked { value, mask })));
            base.nw_proto = flow.nw_proto;
            base.nw_src = flow.nw_src;
            base.nw_dst = flow.nw_dst;
            base.arp_sha = flow.arp_sha;
            base.arp_tha = flow.arp_tha;
        }
        _ => {}
    }
}

fn commit_ports(flow: &FlowKey, base: &mut FlowKey, wc: &mut FlowKey, out: &mut Vec<DpAction>) {
    if !base.is_ip() {
        return;
    }
    let mask = PortFields {
        src: m16(flow.tp_src, base.tp_src, wc.tp_src),
        dst: m16(flow.tp_dst, base.tp_dst, wc.tp_dst),
    };
    if mask == PortFields::default() {
        return;
    }
    wc.nw_proto = 0xff;
    let value = PortFields {
        src: flow.tp_src & mask.src,
        dst: flow.tp_dst & mask.dst,
    };
    let m = Masked { value, mask };
    let set = match flow.nw_proto {
        IPPROTO_TCP => SetField::Tcp(m),
        IPPROTO_UDP => SetField::Udp(m),
        IPPROTO_SCTP => SetField::Sctp(m),
        _ => return,
    };
    out.push(DpAction::Set(set));
    base.tp_src = flow.tp_src;
    base.tp_dst = flow.tp_dst;
}

fn commit_icmp(flow: &FlowKey, base: &mut FlowKey, wc: &mut FlowKey, out: &mut Vec<DpAction>) {
    let (t, c) = (flow.tp_src as u8, flow.tp_dst as u8);
    if (t, c) == (base.tp_src as u8, base.tp_dst as u8) {
        return;
    }
    let v4 = flow.dl_type == ETH_TYPE_IPV4 && flow.nw_proto == IPPROTO_ICMP;
    let v6 = flow.dl_type == ETH_TYPE_IPV6 && flow.nw_proto == IPPROTO_ICMPV6;
    if flow.is_ip() {
        wc.nw_proto = 0xff;
    }
    if !v4 && !v6 {
        return;
    }
    // OVS writes ICMP type and code with a full (unmasked) set.
    wc.tp_src |= 0xff;
    wc.tp_dst |= 0xff;
    let m = Masked {
        value: IcmpFields {
            icmp_type: t,
            icmp_code: c,
        },
        mask: IcmpFields {
            icmp_type: 0xff,
            icmp_code: 0xff,
        },
    };
    out.push(DpAction::Set(if v4 {
        SetField::Icmpv4(m)
    } else {
        SetField::Icmpv6(m)
    }));
    base.tp_src = (base.tp_src & 0xff00) | t as u16;
    base.tp_dst = (base.tp_dst & 0xff00) | c as u16;
}

/// A full MPLS label stack, top first. The key holds the top two labels;
/// labels below them live in a side list (`None` = a label of the received
/// packet that was never parsed).
pub(crate) fn mpls_stack(k: &FlowKey, deep: &[Option<u32>]) -> Vec<Option<u32>> {
    let mut s = Vec::new();
    if !k.is_mpls() {
        return s;
    }
    for l in k.mpls_lse {
        if l == 0 && s.len() == 1 {
            // A zero second slot under a non-BoS top: nothing parsed there.
            break;
        }
        s.push(Some(l));
        if l & MPLS_BOS_MASK != 0 {
            return s;
        }
    }
    s.extend_from_slice(deep);
    s
}

/// Stores a full label stack back into a key and its side list.
pub(crate) fn set_mpls_stack(k: &mut FlowKey, deep: &mut Vec<Option<u32>>, s: &[Option<u32>]) {
    for i in 0..k.mpls_lse.len() {
        k.mpls_lse[i] = s.get(i).copied().flatten().unwrap_or(0);
    }
    deep.clear();
    if s.len() > k.mpls_lse.len() {
        deep.extend_from_slice(&s[k.mpls_lse.len()..]);
    }
}

/// The parts of the label stacks the keys cannot hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeepMpls {
    pub flow: Vec<Option<u32>>,
    pub base: Vec<Option<u32>>,
}

impl DeepMpls {
    /// For a received packet: labels below the second are unknown.
    pub fn for_packet(k: &FlowKey) -> Self {
        let mut d = DeepMpls::default();
        if k.is_mpls()
            && k.mpls_lse[0] & MPLS_BOS_MASK == 0
            && k.mpls_lse[1] != 0
            && k.mpls_lse[1] & MPLS_BOS_MASK == 0
        {
            d.flow.push(None);
            d.base.push(None);
        }
        d
    }
}

fn commit_mpls(
    flow: &FlowKey,
    base: &mut FlowKey,
    out: &mut Vec<DpAction>,
    wc: &FlowKey,
    deep: &mut DeepMpls,
) {
    let fs = mpls_stack(flow, &deep.flow);
    let mut bs = mpls_stack(base, &deep.base);
    let flow_n = fs.len();
    // Labels in common, counted from the bottom of the stacks.
    let mut common = 0;
    for i in 0..bs.len().min(flow_n) {
        if bs[bs.len() - 1 - i] != fs[flow_n - 1 - i] {
            break;
        }
        common += 1;
    }
    while bs.len() > common {
        let base_n = bs.len();
        if base_n - 1 == common && flow_n > common {
            let lse = fs[flow_n - base_n].unwrap_or(0);
            let diff = lse ^ bs[0].unwrap_or(0);
            let mask = wc.mpls_lse[0] | diff;
            out.push(DpAction::Set(SetField::Mpls(Masked {
                value: lse & mask,
                mask,
            })));
            bs[0] = Some(lse);
            common += 1;
        } else {
            let ethertype = if !flow.is_mpls() && base_n > 1 {
                ETH_TYPE_MPLS
            } else {
                flow.dl_type
            };
            out.push(DpAction::PopMpls { ethertype });
            bs.remove(0);
            base.dl_type = flow.dl_type;
        }
    }
    while bs.len() < flow_n {
        let lse = fs[flow_n - bs.len() - 1].unwrap_or(0);
        out.push(DpAction::PushMpls {
            lse,
            ethertype: flow.dl_type,
        });
        bs.insert(0, Some(lse));
        base.dl_type = flow.dl_type;
    }
    set_mpls_stack(base, &mut deep.base, &bs);
}

fn commit_vlan(flow: &FlowKey, base: &mut FlowKey, wc: &mut FlowKey, out: &mut Vec<DpAction>) {
    let mut bi = count_vlans(base) as isize - 1;
    let mut fi = count_vlans(flow) as isize - 1;
    while bi >= 0 && fi >= 0 && base.vlans[bi as usize] == flow.vlans[fi as usize] {
        bi -= 1;
        fi -= 1;
    }
    while bi >= 0 {
        out.push(DpAction::PopVlan);
        wc.vlans[bi as usize] = VlanTag {
            tpid: 0xffff,
            tci: 0xffff,
        };
        bi -= 1;
    }
    while fi >= 0 {
        let v = flow.vlans[fi as usize];
        out.push(DpAction::PushVlan {
            tpid: v.tpid,
            tci: v.tci & !VLAN_CFI,
        });
        fi -= 1;
    }
    base.vlans = flow.vlans;
}

fn commit_pkt_mark(flow: &FlowKey, base: &mut FlowKey, wc: &FlowKey, out: &mut Vec<DpAction>) {
    let mask = m32(flow.pkt_mark, base.pkt_mark, wc.pkt_mark);
    if mask != 0 {
        out.push(DpAction::Set(SetField::PktMark(Masked {
            value: flow.pkt_mark & mask,
            mask,
        })));
        base.pkt_mark = flow.pkt_mark;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp() -> FlowKey {
        FlowKey {
            dl_type: ETH_TYPE_IPV4,
            nw_proto: IPPROTO_UDP,
            nw_ttl: 64,
            nw_src: 0x0a00_0001,
            nw_dst: 0x0a00_0002,
            tp_src: 1234,
            tp_dst: 53,
            ..Default::default()
        }
    }

    #[test]
    fn nothing_to_commit() {
        let f = udp();
        let mut b = f;
        let mut wc = FlowKey::default();
        let mut out = vec![];
        commit(&f, &mut b, &mut wc, &mut out, &mut DeepMpls::default());
        assert!(out.is_empty());
        assert!(wc.is_zero());
    }

    #[test]
    fn masked_ipv4_and_port_sets_in_ovs_order() {
        let mut f = udp();
        let mut b = f;
        let mut wc = FlowKey::default();
        f.tp_dst = 5353;
        wc.tp_dst = 0xffff;
        f.nw_tos = 0x68;
        wc.nw_tos = 0xfc;
        let mut out = vec![];
        commit(&f, &mut b, &mut wc, &mut out, &mut DeepMpls::default());
        assert_eq!(
            out,
            vec![
                DpAction::Set(SetField::Ipv4(Masked {
                    value: Ipv4Fields {
                        tos: 0x68,
                        ..Default::default()
                    },
                    mask: Ipv4Fields {
                        tos: 0xfc,
                        ..Default::default()
                    }
                })),
                DpAction::Set(SetField::Udp(Masked {
                    value: PortFields { src: 0, dst: 5353 },
                    mask: PortFields {
                        src: 0,
                        dst: 0xffff
                    }
                })),
            ]
        );
        assert_eq!(b, f);
        assert_eq!(wc.nw_proto, 0xff);
    }

    #[test]
    fn proto_zero_gets_no_ip_rewrite() {
        let mut f = udp();
        f.nw_proto = 0;
        let mut b = f;
        let mut wc = FlowKey::default();
        f.nw_ttl = 63;
        let mut out = vec![];
        commit(&f, &mut b, &mut wc, &mut out, &mut DeepMpls::default());
        assert!(out.is_empty());
        assert_eq!(wc.nw_proto, 0xff);
    }

    #[test]
    fn vlan_change_is_pop_push() {
        let mut f = udp();
        f.vlans[0] = VlanTag {
            tpid: ETH_TYPE_VLAN,
            tci: VLAN_CFI | 20,
        };
        let mut b = f;
        f.vlans[0].tci = VLAN_CFI | 10 | (2 << 13);
        let mut wc = FlowKey::default();
        let mut out = vec![];
        commit(&f, &mut b, &mut wc, &mut out, &mut DeepMpls::default());
        assert_eq!(
            out,
            vec![
                DpAction::PopVlan,
                DpAction::PushVlan {
                    tpid: ETH_TYPE_VLAN,
                    tci: 10 | (2 << 13)
                }
            ]
        );
        assert_eq!(wc.vlans[0].tci, 0xffff);
    }

    #[test]
    fn mpls_push_and_set() {
        let mut f = udp();
        let mut b = f;
        f.dl_type = ETH_TYPE_MPLS;
        f.mpls_lse[0] = (5 << MPLS_LABEL_SHIFT) | MPLS_BOS_MASK | 64;
        let mut wc = FlowKey::default();
        let mut out = vec![];
        commit(&f, &mut b, &mut wc, &mut out, &mut DeepMpls::default());
        assert_eq!(
            out,
            vec![DpAction::PushMpls {
                lse: f.mpls_lse[0],
                ethertype: ETH_TYPE_MPLS
            }]
        );
        f.mpls_lse[0] -= 1;
        wc.mpls_lse[0] = MPLS_TTL_MASK;
        out.clear();
        commit(&f, &mut b, &mut wc, &mut out, &mut DeepMpls::default());
        assert_eq!(
            out,
            vec![DpAction::Set(SetField::Mpls(Masked {
                value: 63,
                mask: MPLS_TTL_MASK
            }))]
        );
    }
}
