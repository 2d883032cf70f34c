//! The executor against real OVS: for each input packet of the conformance
//! corpus, the `Datapath actions:` that OVS 3.1 recorded in `trace.txt` are
//! turned into [`DpAction`]s, executed on the input frame, and what comes
//! out of each port must equal, byte for byte, the packets OVS transmitted
//! for that input (`outputs:` attribution into `expected/out_N.pcap`).
//!
//! The corpus is read from `$VPORTD_CONFORMANCE` or
//! `/work/shared/conformance`; without it the tests say so and pass.

mod execute_util;

use execute_util::*;
use flowcache::actions::{
    ArpFields, DpAction, EthFields, IcmpFields, Ipv4Fields, Ipv6Fields, Masked, NdFields,
    PortFields, SetField,
};
use pmd::execute::execute_actions;
use pmd::VecPacket;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VPORTD_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/conformance"));
    let cases = dir.join("cases/public");
    if cases.is_dir() {
        Some(cases)
    } else {
        eprintln!(
            "conformance corpus not found at {}: skipped",
            cases.display()
        );
        None
    }
}

// ---------------------------------------------------------------------------
// pcap.

use testkit::pcap::read_frames as read_pcap;

// ---------------------------------------------------------------------------
// trace.txt.

struct TracedPacket {
    in_file: String,
    index: usize,
    frame: Vec<u8>,
    /// (port, index in out_<port>.pcap)
    outputs: Vec<(u32, usize)>,
    actions: String,
}

fn parse_trace(text: &str) -> Vec<TracedPacket> {
    let mut v: Vec<TracedPacket> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("packet ") {
            // in_1.pcap[0] (45 bytes): 0000...
            let (name, rest) = rest.split_once('[').unwrap();
            let (idx, rest) = rest.split_once(']').unwrap();
            let hexs = rest.rsplit(' ').next().unwrap();
            v.push(TracedPacket {
                in_file: name.to_string(),
                index: idx.parse().unwrap(),
                frame: hex(hexs),
                outputs: Vec::new(),
                actions: String::new(),
            });
        } else if let Some(rest) = line.strip_prefix("outputs: ") {
            let t = v.last_mut().unwrap();
            if rest.trim() != "none" {
                for o in rest.split(", ") {
                    // out_2.pcap[0]
                    let o = o.trim().strip_prefix("out_").unwrap();
                    let (port, rest) = o.split_once(".pcap[").unwrap();
                    let idx = rest.trim_end_matches(']');
                    t.outputs
                        .push((port.parse().unwrap(), idx.parse().unwrap()));
                }
            }
        } else if let Some(rest) = line.strip_prefix("Datapath actions: ") {
            let t = v.last_mut().unwrap();
            if t.actions.is_empty() {
                t.actions = rest.trim().to_string();
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------
// OVS `Datapath actions:` syntax -> DpAction.

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// `name(inner)` -> (name, inner).
fn call(s: &str) -> Option<(&str, &str)> {
    let open = s.find('(')?;
    let inner = s[open + 1..].strip_suffix(')')?;
    Some((&s[..open], inner))
}

fn num(s: &str) -> u64 {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).unwrap()
    } else {
        s.parse().unwrap_or_else(|_| panic!("number {s:?}"))
    }
}

fn mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate() {
        m[i] = u8::from_str_radix(p, 16).unwrap();
    }
    m
}

/// `key=value[/mask]` pairs.
fn fields(s: &str) -> Vec<(&str, &str, Option<&str>)> {
    split_top(s)
        .into_iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match v.split_once('/') {
                Some((v, m)) => (k, v, Some(m)),
                None => (k, v, None),
            }
        })
        .collect()
}

fn parse_set(kind: &str, body: &str) -> Result<SetField, String> {
    let fs = fields(body);
    macro_rules! masked {
        ($v:expr, $m:expr, $val:expr, $mask:expr, $all:expr) => {{
            $v = $val;
            $m = $mask.unwrap_or($all);
        }};
    }
    Ok(match kind {
        "eth" => {
            let (mut v, mut m) = (EthFields::default(), EthFields::default());
            for (k, val, msk) in fs {
                match k {
                    "src" => masked!(v.src, m.src, mac(val), msk.map(mac), [0xff; 6]),
                    "dst" => masked!(v.dst, m.dst, mac(val), msk.map(mac), [0xff; 6]),
                    _ => return Err(format!("eth field {k}")),
                }
            }
            SetField::Ethernet(Masked { value: v, mask: m })
        }
        "ipv4" => {
            let (mut v, mut m) = (Ipv4Fields::default(), Ipv4Fields::default());
            let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
            for (k, val, msk) in fs {
                match k {
                    "src" => masked!(v.src, m.src, ip(val), msk.map(ip), !0),
                    "dst" => masked!(v.dst, m.dst, ip(val), msk.map(ip), !0),
                    "tos" => masked!(
                        v.tos,
                        m.tos,
                        num(val) as u8,
                        msk.map(|x| num(x) as u8),
                        0xff
                    ),
                    "ttl" => masked!(
                        v.ttl,
                        m.ttl,
                        num(val) as u8,
                        msk.map(|x| num(x) as u8),
                        0xff
                    ),
                    _ => return Err(format!("ipv4 field {k}")),
                }
            }
            SetField::Ipv4(Masked { value: v, mask: m })
        }
        "ipv6" => {
            let (mut v, mut m) = (Ipv6Fields::default(), Ipv6Fields::default());
            let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap().octets();
            for (k, val, msk) in fs {
                match k {
                    "src" => masked!(v.src, m.src, ip(val), msk.map(ip), [0xff; 16]),
                    "dst" => masked!(v.dst, m.dst, ip(val), msk.map(ip), [0xff; 16]),
                    "label" => masked!(
                        v.label,
                        m.label,
                        num(val) as u32,
                        msk.map(|x| num(x) as u32),
                        0xfffff
                    ),
                    "tclass" => masked!(
                        v.tclass,
                        m.tclass,
                        num(val) as u8,
                        msk.map(|x| num(x) as u8),
                        0xff
                    ),
                    "hlimit" => masked!(
                        v.hlimit,
                        m.hlimit,
                        num(val) as u8,
                        msk.map(|x| num(x) as u8),
                        0xff
                    ),
                    _ => return Err(format!("ipv6 field {k}")),
                }
            }
            SetField::Ipv6(Masked { value: v, mask: m })
        }
        "tcp" | "udp" | "sctp" => {
            let (mut v, mut m) = (PortFields::default(), PortFields::default());
            for (k, val, msk) in fs {
                match k {
                    "src" => masked!(
                        v.src,
                        m.src,
                        num(val) as u16,
                        msk.map(|x| num(x) as u16),
                        0xffff
                    ),
                    "dst" => masked!(
                        v.dst,
                        m.dst,
                        num(val) as u16,
                        msk.map(|x| num(x) as u16),
                        0xffff
                    ),
                    _ => return Err(format!("{kind} field {k}")),
                }
            }
            let mk = Masked { value: v, mask: m };
            match kind {
                "tcp" => SetField::Tcp(mk),
                "udp" => SetField::Udp(mk),
                _ => SetField::Sctp(mk),
            }
        }
        "icmp" | "icmpv6" => {
            let (mut v, mut m) = (IcmpFields::default(), IcmpFields::default());
            for (k, val, msk) in fs {
                match k {
                    "type" => masked!(
                        v.icmp_type,
                        m.icmp_type,
                        num(val) as u8,
                        msk.map(|x| num(x) as u8),
                        0xff
                    ),
                    "code" => masked!(
                        v.icmp_code,
                        m.icmp_code,
                        num(val) as u8,
                        msk.map(|x| num(x) as u8),
                        0xff
                    ),
                    _ => return Err(format!("icmp field {k}")),
                }
            }
            let mk = Masked { value: v, mask: m };
            if kind == "icmp" {
                SetField::Icmpv4(mk)
            } else {
                SetField::Icmpv6(mk)
            }
        }
        "arp" => {
            let (mut v, mut m) = (ArpFields::default(), ArpFields::default());
            let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
            for (k, val, msk) in fs {
                match k {
                    "sip" => masked!(v.spa, m.spa, ip(val), msk.map(ip), !0),
                    "tip" => masked!(v.tpa, m.tpa, ip(val), msk.map(ip), !0),
                    "op" => masked!(
                        v.op,
                        m.op,
                        num(val) as u16,
                        msk.map(|x| num(x) as u16),
                        0xffff
                    ),
                    "sha" => masked!(v.sha, m.sha, mac(val), msk.map(mac), [0xff; 6]),
                    "tha" => masked!(v.tha, m.tha, mac(val), msk.map(mac), [0xff; 6]),
                    _ => return Err(format!("arp field {k}")),
                }
            }
            SetField::Arp(Masked { value: v, mask: m })
        }
        "nd" => {
            let (mut v, mut m) = (NdFields::default(), NdFields::default());
            let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap().octets();
            for (k, val, msk) in fs {
                match k {
                    "target" => masked!(v.target, m.target, ip(val), msk.map(ip), [0xff; 16]),
                    "sll" => masked!(v.sll, m.sll, mac(val), msk.map(mac), [0xff; 6]),
                    "tll" => masked!(v.tll, m.tll, mac(val), msk.map(mac), [0xff; 6]),
                    _ => return Err(format!("nd field {k}")),
                }
            }
            SetField::Nd(Masked { value: v, mask: m })
        }
        "mpls" => {
            let (mut v, mut m) = (0u32, 0u32);
            for (k, val, msk) in fs {
                let (shift, width) = match k {
                    "label" => (12, 20),
                    "tc" => (9, 3),
                    "bos" => (8, 1),
                    "ttl" => (0, 8),
                    _ => return Err(format!("mpls field {k}")),
                };
                let all = (1u32 << width) - 1;
                let fm = msk.map(|x| num(x) as u32).unwrap_or(all) & all;
                v |= ((num(val) as u32) & all) << shift;
                m |= fm << shift;
            }
            SetField::Mpls(Masked { value: v, mask: m })
        }
        _ => return Err(format!("set({kind})")),
    })
}

fn parse_actions(s: &str) -> Result<Vec<DpAction>, String> {
    let mut out = Vec::new();
    if s == "drop" {
        return Ok(out);
    }
    for a in split_top(s) {
        let a = a.trim();
        if a.is_empty() {
            continue;
        }
        if a.chars().all(|c| c.is_ascii_digit()) {
            out.push(DpAction::Output(a.parse().unwrap()));
            continue;
        }
        if a == "pop_vlan" {
            out.push(DpAction::PopVlan);
            continue;
        }
        let (name, inner) = call(a).ok_or_else(|| format!("action {a}"))?;
        match name {
            "set" => {
                let (kind, body) = call(inner).ok_or_else(|| format!("set {inner}"))?;
                out.push(DpAction::Set(parse_set(kind, body)?));
            }
            "push_vlan" => {
                let (mut tpid, mut tci) = (0x8100u16, 0x1000u16);
                for (k, v, _) in fields(inner) {
                    match k {
                        "tpid" => tpid = num(v) as u16,
                        "vid" => tci |= num(v) as u16 & 0xfff,
                        "pcp" => tci |= (num(v) as u16) << 13,
                        "cfi" => {
                            if num(v) == 0 {
                                tci &= !0x1000
                            }
                        }
                        _ => return Err(format!("push_vlan {k}")),
                    }
                }
                out.push(DpAction::PushVlan { tpid, tci });
            }
            "push_mpls" => {
                let (mut lse, mut ethertype) = (0u32, 0u16);
                for (k, v, _) in fields(inner) {
                    let v = num(v);
                    match k {
                        "label" => lse |= (v as u32) << 12,
                        "tc" => lse |= (v as u32) << 9,
                        "bos" => lse |= (v as u32) << 8,
                        "ttl" => lse |= v as u32,
                        "eth_type" => ethertype = v as u16,
                        _ => return Err(format!("push_mpls {k}")),
                    }
                }
                out.push(DpAction::PushMpls { lse, ethertype });
            }
            "pop_mpls" => {
                let (_, v, _) = fields(inner)[0];
                out.push(DpAction::PopMpls {
                    ethertype: num(v) as u16,
                });
            }
            "userspace" => out.push(DpAction::Userspace { cookie: 0.into() }),
            "recirc" => out.push(DpAction::Recirc(num(inner) as u32)),
            "trunc" => out.push(DpAction::Truncate(num(inner) as u32)),
            "clone" => out.push(DpAction::Clone(Arc::from(parse_actions(inner)?))),
            "check_pkt_len" => {
                // check_pkt_len(size=N,gt(ACTIONS),le(ACTIONS))
                let (mut size, mut gt, mut le) = (None, None, None);
                for part in split_top(inner) {
                    if let Some(n) = part.strip_prefix("size=") {
                        size = Some(num(n) as u16);
                    } else if let Some(("gt", acts)) = call(part) {
                        gt = Some(Arc::from(parse_actions(acts)?));
                    } else if let Some(("le", acts)) = call(part) {
                        le = Some(Arc::from(parse_actions(acts)?));
                    } else {
                        return Err(format!("check_pkt_len {part}"));
                    }
                }
                let missing = || format!("check_pkt_len({inner}): incomplete");
                out.push(DpAction::CheckPktLen {
                    size: size.ok_or_else(missing)?,
                    gt: gt.ok_or_else(missing)?,
                    le: le.ok_or_else(missing)?,
                });
            }
            _ => return Err(format!("action {name}")),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Running a case.

struct CaseResult {
    packets: usize,
    /// Packets whose actions need conntrack (`ct(...)`): their trace is of
    /// the first pass only (`ct,recirc(N)`, the outputs happen after the
    /// recirculation, with the tracker's state), so they are reported,
    /// not executed here; check.sh runs them end to end.
    conntrack: usize,
    /// Packets whose OVS actions vportd's translation does not produce.
    not_emitted: usize,
    unsupported: Vec<String>,
    failures: Vec<String>,
}

fn run_case(dir: &Path) -> CaseResult {
    let trace = std::fs::read_to_string(dir.join("expected/trace.txt")).unwrap();
    let mut expected: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    let mut res = CaseResult {
        packets: 0,
        conntrack: 0,
        not_emitted: 0,
        unsupported: Vec::new(),
        failures: Vec::new(),
    };
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let n_ports: u32 = std::fs::read_to_string(dir.join("ports"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX);
    for t in parse_trace(&trace) {
        let inputs = read_pcap(&dir.join(&t.in_file));
        assert_eq!(inputs[t.index], t.frame, "{name}: trace and pcap disagree");
        let in_port: u32 = t.in_file[3..t.in_file.len() - 5].parse().unwrap();
        let acts = split_top(&t.actions);
        if acts
            .iter()
            .any(|a| *a == "ct" || a.starts_with("ct(") || *a == "ct_clear")
        {
            res.conntrack += 1;
            continue;
        }
        // Datapath actions vportd's translation never emits: a select
        // group is hashed in the slow path (the hashed fields go into the
        // megaflow) instead of `hash(...)` + recirculation, and vportd has
        // no QoS queues for `set_queue`'s skb_priority to select.
        if acts
            .iter()
            .any(|a| a.starts_with("hash(") || a.starts_with("set(skb_priority("))
        {
            res.not_emitted += 1;
            continue;
        }
        let actions = match parse_actions(&t.actions) {
            Ok(a) => a,
            Err(e) => {
                res.unsupported.push(format!("{name}[{}]: {e}", t.index));
                continue;
            }
        };
        res.packets += 1;
        let mut rec = Rec::new();
        let mut m = meta(in_port);
        execute_actions(&mut rec, VecPacket::new(&t.frame), &actions, &mut m);

        let mut got: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
        // OVS's datapath port 100 is the bridge's LOCAL port, which the
        // recordings do not capture (and vportd does not have).
        for (p, f) in rec.outputs.into_iter().filter(|(p, _)| *p <= n_ports) {
            got.entry(p).or_default().push(f);
        }
        let mut want: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
        for (p, i) in &t.outputs {
            let pcap = expected
                .entry(*p)
                .or_insert_with(|| read_pcap(&dir.join(format!("expected/out_{p}.pcap"))));
            want.entry(*p).or_default().push(pcap[*i].clone());
        }
        if got != want {
            let show = |m: &BTreeMap<u32, Vec<Vec<u8>>>| {
                m.iter()
                    .map(|(p, fs)| {
                        let fs: Vec<String> = fs.iter().map(|f| to_hex(f)).collect();
                        format!("  port {p}: {}", fs.join(" "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            res.failures.push(format!(
                "{name} packet {}: actions {}\n input {}\n got:\n{}\n want:\n{}",
                t.index,
                t.actions,
                to_hex(&t.frame),
                show(&got),
                show(&want)
            ));
        }
    }
    res
}

/// The cases this module is mainly about: each must be present and pass.
#[test]
fn selected_cases_match_ovs() {
    let Some(cases) = corpus() else {
        return;
    };
    let mut failures = Vec::new();
    for name in [
        "hw_set_ipv4_udp_zero_csum",
        "hw_set_l4_udp_ports",
        "hw_set_ipv6_addrs",
        "hw_set_ipv4_tos_ecn_ttl",
        "hw_set_eth_addrs",
        "hw_vlan_pop",
        "hw_mpls_push_on_mpls",
        "hw_set_l2_l3_l4_combo",
        "hw_mpls_match",
        "hw_vlan_push_then_match",
        "hw_reg_mac_swap",
    ] {
        let dir = cases.join(name);
        assert!(dir.is_dir(), "missing case {name}");
        let r = run_case(&dir);
        assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
        assert!(r.packets > 0, "{name}: no packets");
        failures.extend(r.failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every packet of every public case whose datapath actions we can express.
#[test]
fn all_public_cases_match_ovs() {
    let Some(cases) = corpus() else {
        return;
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&cases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected/trace.txt").is_file())
        .collect();
    dirs.sort();
    let (mut packets, mut conntrack, mut not_emitted, mut unsupported, mut failures) =
        (0, 0, 0, Vec::new(), Vec::new());
    for d in &dirs {
        let r = run_case(d);
        packets += r.packets;
        conntrack += r.conntrack;
        not_emitted += r.not_emitted;
        unsupported.extend(r.unsupported);
        failures.extend(r.failures);
    }
    eprintln!(
        "{} cases, {packets} packets executed, {} with unsupported actions, \
         {conntrack} skipped (conntrack: stateful, checked end to end by check.sh), \
         {not_emitted} skipped (hash/skb_priority: never emitted by vportd)",
        dirs.len(),
        unsupported.len()
    );
    assert!(unsupported.is_empty(), "{}", unsupported.join("\n"));
    assert!(packets > 1000);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
