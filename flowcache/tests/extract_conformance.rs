//! Parses every input packet of the OVS-oracle conformance corpus and
//! compares the key with OVS 3.1's own parse of the packet (the `Flow:`
//! line of `ofproto/trace` in `expected/trace.txt`).
//!
//! Corpus: `$VPORTD_CONFORMANCE_DIR` (a directory of case directories, or
//! of sets of them), else `<workspace>/../shared/conformance/cases`.  The
//! test is skipped (with a message) when no corpus is found.

use flowcache::extract::{extract, PacketMeta};
use flowcache::key::*;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use testkit::pcap::read_frames as read_pcap;

fn corpus_root() -> Option<PathBuf> {
    let p = match std::env::var_os("VPORTD_CONFORMANCE_DIR") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/cases"),
    };
    p.is_dir().then_some(p)
}

struct TracedPacket {
    pcap: String,
    index: usize,
    hex: String,
    flow: Option<String>,
}

fn parse_trace(text: &str) -> Vec<TracedPacket> {
    let mut v: Vec<TracedPacket> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("packet ") {
            // packet in_1.pcap[0] (70 bytes): 0000...
            let (name, rest) = rest.split_once('[').unwrap();
            let (idx, rest) = rest.split_once(']').unwrap();
            let hex = rest.rsplit_once(": ").map(|x| x.1).unwrap_or("").trim();
            v.push(TracedPacket {
                pcap: name.to_string(),
                index: idx.parse().unwrap(),
                hex: hex.to_string(),
                flow: None,
            });
        } else if let Some(f) = line.strip_prefix("Flow: ") {
            let last = v.last_mut().unwrap();
            if last.flow.is_none() {
                last.flow = Some(f.to_string());
            }
        }
    }
    v
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn tcp_flags_str(f: u16) -> String {
    if f == 0 {
        return "0".into();
    }
    const NAMES: [(u16, &str); 9] = [
        (0x001, "fin"),
        (0x002, "syn"),
        (0x004, "rst"),
        (0x008, "psh"),
        (0x010, "ack"),
        (0x020, "urg"),
        (0x040, "ece"),
        (0x080, "cwr"),
        (0x100, "ns"),
    ];
    let mut parts: Vec<String> = NAMES
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    for bit in [0x200u16, 0x400, 0x800] {
        if f & bit != 0 {
            parts.push(format!("0x{bit:03x}"));
        }
    }
    parts.join("|")
}

fn proto_word(k: &FlowKey) -> Option<&'static str> {
    Some(match k.dl_type {
        ETH_TYPE_IPV4 => match k.nw_proto {
            IPPROTO_ICMP => "icmp",
            2 => "igmp",
            IPPROTO_TCP => "tcp",
            IPPROTO_UDP => "udp",
            IPPROTO_SCTP => "sctp",
            _ => "ip",
        },
        ETH_TYPE_IPV6 => match k.nw_proto {
            IPPROTO_ICMPV6 => "icmp6",
            IPPROTO_TCP => "tcp6",
            IPPROTO_UDP => "udp6",
            IPPROTO_SCTP => "sctp6",
            _ => "ipv6",
        },
        ETH_TYPE_ARP => "arp",
        ETH_TYPE_RARP => "rarp",
        ETH_TYPE_MPLS => "mpls",
        ETH_TYPE_MPLS_MCAST => "mplsm",
        _ => return None,
    })
}

/// Our key, as the OVS field names and formats of `ofproto/trace`'s
/// `Flow:` line.  Fields that are zero may be absent from the trace.
fn our_fields(k: &FlowKey) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let is_icmp = (k.dl_type == ETH_TYPE_IPV4 && k.nw_proto == IPPROTO_ICMP)
        || (k.dl_type == ETH_TYPE_IPV6 && k.nw_proto == IPPROTO_ICMPV6);
    let is_arp = k.dl_type == ETH_TYPE_ARP || k.dl_type == ETH_TYPE_RARP;
    m.insert("in_port", k.in_port.to_string());
    m.insert("dl_src", mac(&k.dl_src));
    m.insert("dl_dst", mac(&k.dl_dst));
    m.insert("dl_type", format!("0x{:04x}", k.dl_type));
    m.insert("vlan_tci", format!("0x{:04x}", k.vlans[0].tci));
    m.insert("vlan_tci1", format!("0x{:04x}", k.vlans[1].tci));
    let (src, dst) = if is_arp {
        ("arp_spa", "arp_tpa")
    } else {
        ("nw_src", "nw_dst")
    };
    m.insert(src, Ipv4Addr::from(k.nw_src).to_string());
    m.insert(dst, Ipv4Addr::from(k.nw_dst).to_string());
    if is_arp {
        m.insert("arp_op", k.nw_proto.to_string());
        m.insert("arp_sha", mac(&k.arp_sha));
        m.insert("arp_tha", mac(&k.arp_tha));
    } else {
        // The shape word (tcp, udp6, ...) already says which protocol.
        if matches!(proto_word(k), Some("ip" | "ipv6") | None) {
            m.insert("nw_proto", k.nw_proto.to_string());
        }
        m.insert("nd_sll", mac(&k.arp_sha));
        m.insert("nd_tll", mac(&k.arp_tha));
    }
    m.insert("nw_tos", (k.nw_tos & 0xfc).to_string());
    m.insert("nw_ecn", (k.nw_tos & 0x03).to_string());
    m.insert("nw_ttl", k.nw_ttl.to_string());
    m.insert(
        "nw_frag",
        match k.nw_frag {
            0 => "no".into(),
            FRAG_ANY => "first".into(),
            x if x == FRAG_ANY | FRAG_LATER => "later".into(),
            x => format!("bad{x}"),
        },
    );
    m.insert("ipv6_src", Ipv6Addr::from(k.ipv6_src).to_string());
    m.insert("ipv6_dst", Ipv6Addr::from(k.ipv6_dst).to_string());
    m.insert("ipv6_label", format!("0x{:05x}", k.ipv6_label));
    m.insert("nd_target", Ipv6Addr::from(k.nd_target).to_string());
    let (tps, tpd) = if is_icmp {
        ("icmp_type", "icmp_code")
    } else {
        ("tp_src", "tp_dst")
    };
    m.insert(tps, k.tp_src.to_string());
    m.insert(tpd, k.tp_dst.to_string());
    m.insert("tcp_flags", tcp_flags_str(k.tcp_flags));
    let lse = k.mpls_lse[0];
    m.insert("mpls_label", (lse >> MPLS_LABEL_SHIFT).to_string());
    m.insert(
        "mpls_tc",
        ((lse & MPLS_TC_MASK) >> MPLS_TC_SHIFT).to_string(),
    );
    m.insert("mpls_ttl", (lse & MPLS_TTL_MASK).to_string());
    m.insert(
        "mpls_bos",
        ((lse & MPLS_BOS_MASK) >> MPLS_BOS_SHIFT).to_string(),
    );
    m.insert("mpls_lse1", k.mpls_lse[1].to_string());
    m
}

fn is_zero_repr(v: &str) -> bool {
    matches!(
        v,
        "0" | "0x0000" | "0x00000" | "0.0.0.0" | "::" | "00:00:00:00:00:00" | "no"
    )
}

/// Compares one `Flow:` line with our key; returns the differences.
fn compare(flow: &str, k: &FlowKey) -> Vec<String> {
    let ours = our_fields(k);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut diffs = Vec::new();
    let mut dl_type_given = false;
    for (i, tok) in flow.split(',').enumerate() {
        let Some((name, val)) = tok.split_once('=') else {
            if i == 0 {
                if proto_word(k) != Some(tok) {
                    diffs.push(format!("shape: ovs {tok} ours {:?}", proto_word(k)));
                }
                dl_type_given = true;
                continue;
            }
            diffs.push(format!("unparsed token {tok}"));
            continue;
        };
        seen.insert(name.to_string(), val.to_string());
    }
    if !dl_type_given && !seen.contains_key("dl_type") {
        diffs.push("no dl_type in trace".into());
    }
    if !dl_type_given && proto_word(k).is_some() {
        diffs.push(format!("shape: ovs none ours {:?}", proto_word(k)));
    }
    // dl_vlan / dl_vlan_pcp are the "tag present" spelling of vlan_tci.
    if let Some(vid) = seen.remove("dl_vlan") {
        let pcp: u16 = seen.remove("dl_vlan_pcp").unwrap().parse().unwrap();
        let tci = vid.parse::<u16>().unwrap() | pcp << 13 | VLAN_CFI;
        seen.insert("vlan_tci".into(), format!("0x{tci:04x}"));
    }
    // mpls_lse2: we keep two labels only.
    seen.remove("mpls_lse2");
    for (name, val) in &seen {
        let val = match name.as_str() {
            "ipv6_src" | "ipv6_dst" | "nd_target" => val
                .parse::<Ipv6Addr>()
                .map(|a| a.to_string())
                .unwrap_or(val.clone()),
            _ => val.clone(),
        };
        match ours.get(name.as_str()) {
            Some(o) if *o == val => {}
            Some(o) => diffs.push(format!("{name}: ovs {val} ours {o}")),
            None => diffs.push(format!("{name}: ovs {val}, unknown to the test")),
        }
    }
    // Whatever OVS does not print must be zero in our key.
    for (name, o) in &ours {
        if !seen.contains_key(*name) && *name != "dl_type" && !is_zero_repr(o) {
            diffs.push(format!("{name}: not in ovs trace, ours {o}"));
        }
    }
    diffs
}

#[test]
fn conformance_corpus_flows_match_ovs() {
    let Some(root) = corpus_root() else {
        eprintln!("conformance corpus not found; set VPORTD_CONFORMANCE_DIR");
        return;
    };
    let mut cases = Vec::new();
    cases.extend(testkit::cases::find(&root, "expected/trace.txt"));
    assert!(!cases.is_empty(), "no cases under {}", root.display());
    let mut n_packets = 0;
    let mut n_compared = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let trace = std::fs::read_to_string(case.join("expected/trace.txt")).unwrap();
        let mut pcaps: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for tp in parse_trace(&trace) {
            n_packets += 1;
            let frames = pcaps
                .entry(tp.pcap.clone())
                .or_insert_with(|| read_pcap(&case.join(&tp.pcap)));
            let frame = frames
                .get(tp.index)
                .unwrap_or_else(|| panic!("{}: {}[{}] missing", case.display(), tp.pcap, tp.index));
            let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, tp.hex, "{}: pcap and trace disagree", case.display());
            let port: u32 = tp
                .pcap
                .trim_start_matches("in_")
                .trim_end_matches(".pcap")
                .parse()
                .unwrap();
            let meta = PacketMeta {
                in_port: port,
                ..Default::default()
            };
            let mut key = FlowKey::default();
            let res = extract(frame, &meta, &mut key);
            let Some(flow) = &tp.flow else {
                // Not injected by the oracle (frames < 14 bytes).
                assert!(
                    res.is_err(),
                    "{}: no Flow for a valid frame",
                    case.display()
                );
                continue;
            };
            assert!(res.is_ok(), "{}: {} rejected", case.display(), tp.hex);
            n_compared += 1;
            let d = compare(flow, &key);
            if !d.is_empty() {
                failures.push(format!(
                    "{} {}[{}]\n  hex  {}\n  ovs  {}\n  diff {}",
                    case.file_name().unwrap().to_string_lossy(),
                    tp.pcap,
                    tp.index,
                    tp.hex,
                    flow,
                    d.join("; ")
                ));
            }
        }
    }
    eprintln!(
        "{} cases, {} packets, {} compared with OVS, {} mismatches",
        cases.len(),
        n_packets,
        n_compared,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} packets parsed differently from OVS:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn tcp_flag_names() {
    assert_eq!(tcp_flags_str(0x12), "syn|ack");
    assert_eq!(tcp_flags_str(0), "0");
}
