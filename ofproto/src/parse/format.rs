//! `ovs-ofctl dump-flows` style output (OVS `match_format` and
//! `ofpacts_format`, as seen after an OpenFlow 1.3 round trip).

use super::fields::{canon_name, fmt_of, format_subfield, l4_proto, load_segments, ovs_bits, Fmt};
use super::values::{
    cidr_bits, fmt_ct_state, fmt_ipv4, fmt_ipv6, fmt_mac, fmt_port, fmt_tcp_flags, hex,
};
use crate::fields::FieldId;
use crate::rule::{Instructions, Learn, LearnDst, LearnSrc, Match, OfAction, OutputPort, Rule};
use flowcache::key::{
    MPLS_BOS_MASK, MPLS_BOS_SHIFT, MPLS_LABEL_MASK, MPLS_LABEL_SHIFT, MPLS_TC_MASK, MPLS_TC_SHIFT,
    MPLS_TTL_MASK, VLAN_CFI, VLAN_PCP_MASK, VLAN_VID_MASK,
};

/// One rule as `ovs-ofctl -O OpenFlow13 --no-stats dump-flows` prints it
/// (without the leading space):
/// `table=5, priority=772,metadata=0 actions=output:4,goto_table:7`.
pub fn format_rule(rule: &Rule) -> String {
    let mut s = String::new();
    if rule.cookie != 0 {
        s.push_str(&format!("cookie={:#x}, ", rule.cookie));
    }
    if rule.table != 0 {
        s.push_str(&format!("table={}, ", rule.table));
    }
    if rule.idle_timeout != 0 {
        s.push_str(&format!("idle_timeout={}, ", rule.idle_timeout));
    }
    if rule.hard_timeout != 0 {
        s.push_str(&format!("hard_timeout={}, ", rule.hard_timeout));
    }
    let start = s.len();
    match_into(&mut s, &rule.matches, Some(rule.priority));
    if s.len() != start {
        s.push(' ');
    }
    s.push_str("actions=");
    s.push_str(&format_instructions(&rule.instructions, &rule.matches));
    s
}

/// A match as OVS prints it (`tcp,nw_src=10.0.0.0/8,tp_dst=80`); empty for
/// the catch-all match.
pub fn format_match(m: &Match) -> String {
    let mut s = String::new();
    match_into(&mut s, m, None);
    s
}

/// The instructions of a rule whose match is `m` (the match decides how
/// `tp_src` is named: `tcp_src`, `udp_src` or `sctp_src`).
pub fn format_instructions(ins: &Instructions, m: &Match) -> String {
    let proto = l4_proto(&m.value, &m.mask);
    let mut parts: Vec<String> = ins.apply.iter().map(|a| format_action(a, proto)).collect();
    if ins.clear_actions {
        parts.push("clear_actions".into());
    }
    if let Some(w) = &ins.write_actions {
        let inner: Vec<String> = w.iter().map(|a| format_action(a, proto)).collect();
        let inner = if inner.is_empty() {
            "drop".to_string()
        } else {
            inner.join(",")
        };
        parts.push(format!("write_actions({inner})"));
    }
    if let Some((v, m)) = ins.write_metadata {
        let mut p = format!("write_metadata:{}", hex(u128::from(v)));
        if m != u64::MAX {
            p.push_str(&format!("/{}", hex(u128::from(m))));
        }
        parts.push(p);
    }
    if let Some(t) = ins.goto_table {
        parts.push(format!("goto_table:{t}"));
    }
    if parts.is_empty() {
        "drop".into()
    } else {
        parts.join(",")
    }
}

/// A field value as OVS's `mf_format` prints it.
pub(crate) fn format_value(id: FieldId, v: u128) -> String {
    match fmt_of(id) {
        Fmt::Dec | Fmt::Frag => v.to_string(),
        Fmt::Hex => hex(v),
        Fmt::Mac => fmt_mac(v),
        Fmt::Ipv4 => fmt_ipv4(v as u32),
        Fmt::Ipv6 => fmt_ipv6(v),
        Fmt::Port => fmt_port(v as u32),
        Fmt::TcpFlags => fmt_tcp_flags(v as u16, 0x0fff),
        Fmt::CtState => fmt_ct_state(v as u8, 0xff),
    }
}

/// `load:` actions for the bits of `mask`: one per contiguous run of at
/// most 64 bits, as OpenFlow 1.3 carries a partial set-field
/// (NXAST_REG_LOAD).
fn loads(field: FieldId, value: u128, mask: u128, proto: Option<u8>) -> String {
    load_segments(field, value, mask)
        .iter()
        .map(|(sf, v)| format!("load:{}->{}", hex(*v), format_subfield(sf, proto)))
        .collect::<Vec<_>>()
        .join(",")
}

/// One action, OVS style.
pub(crate) fn format_action(a: &OfAction, proto: Option<u8>) -> String {
    match a {
        OfAction::Output(p) => match p {
            OutputPort::Port(n) => format!("output:{n}"),
            OutputPort::Controller => "CONTROLLER:65535".into(),
            reserved => reserved_port_name(reserved),
        },
        OfAction::OutputReg(sf) => format!("output:{}", format_subfield(sf, proto)),
        OfAction::SetField { field, value, mask } => {
            let valid = field.valid_mask();
            if mask & valid == valid {
                format!(
                    "set_field:{}->{}",
                    format_value(*field, *value),
                    canon_name(*field, proto)
                )
            } else {
                loads(*field, *value, *mask, proto)
            }
        }
        OfAction::Load { dst, value } => loads(dst.field, *value << dst.ofs, dst.mask(), proto),
        OfAction::Move { src, dst } => format!(
            "move:{}->{}",
            format_subfield(src, proto),
            format_subfield(dst, proto)
        ),
        OfAction::DecTtl => "dec_ttl".into(),
        OfAction::DecMplsTtl => "dec_mpls_ttl".into(),
        OfAction::SetMplsTtl(t) => format!("set_mpls_ttl({t})"),
        OfAction::SetNwTtl(t) => format!("mod_nw_ttl:{t}"),
        OfAction::PushVlan(t) => format!("push_vlan:{t:#x}"),
        OfAction::PopVlan => "pop_vlan".into(),
        OfAction::PushMpls(t) => format!("push_mpls:0x{t:04x}"),
        OfAction::PopMpls(t) => format!("pop_mpls:0x{t:04x}"),
        OfAction::Resubmit { in_port, table } => match (in_port, table) {
            (Some(p), None) => format!("resubmit:{}", fmt_port(*p)),
            _ => format!(
                "resubmit({},{})",
                in_port.map(fmt_port).unwrap_or_default(),
                table.map(|t| t.to_string()).unwrap_or_default()
            ),
        },
        OfAction::Controller => "CONTROLLER:65535".into(),
        OfAction::Clone(acts) => format!(
            "clone({})",
            acts.iter()
                .map(|a| format_action(a, proto))
                .collect::<Vec<_>>()
                .join(",")
        ),
        OfAction::CheckPktLarger { pkt_len, dst } => {
            format!(
                "check_pkt_larger({pkt_len})->{}",
                format_subfield(dst, proto)
            )
        }
        OfAction::OutputTrunc { port, max_len } => {
            format!(
                "output(port={},max_len={max_len})",
                reserved_port_name(port)
            )
        }
        OfAction::DecTtlIds(ids) => format!(
            "dec_ttl({})",
            ids.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
        ),
        OfAction::Note(bytes) => format!(
            "note:{}",
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(".")
        ),
        OfAction::Exit => "exit".into(),
        OfAction::CtClear => "ct_clear".into(),
        OfAction::Ct(c) => {
            let mut s = String::from("ct(");
            if c.commit {
                s.push_str("commit,");
            }
            if c.force {
                s.push_str("force,");
            }
            if let Some(t) = c.table {
                s.push_str(&format!("table={t},"));
            }
            match c.zone {
                crate::rule::CtZone::Imm(0) => {}
                crate::rule::CtZone::Imm(z) => s.push_str(&format!("zone={z},")),
                crate::rule::CtZone::Field(sf) => {
                    s.push_str(&format!("zone={},", format_subfield(&sf, proto)))
                }
            }
            if let Some(n) = &c.nat {
                s.push_str(&super::actions::ct::format_nat(n));
                s.push(',');
            }
            if !c.exec.is_empty() {
                let inner: Vec<String> = c.exec.iter().map(|a| format_action(a, proto)).collect();
                s.push_str(&format!("exec({}),", inner.join(",")));
            }
            if let Some(p) = c.alg {
                s.push_str(if p == 21 { "alg=ftp," } else { "alg=tftp," });
            }
            if s.ends_with(',') {
                s.pop();
            }
            s.push(')');
            s
        }
        OfAction::Group(g) => format!("group:{g}"),
        OfAction::Multipath {
            fields,
            basis,
            algorithm,
            n_links,
            arg,
            dst,
        } => format!(
            "multipath({},{basis},{},{n_links},{arg},{})",
            fields.name(),
            algorithm.name(),
            format_subfield(dst, proto)
        ),
        OfAction::Bundle {
            fields,
            basis,
            algorithm,
            members,
            dst,
        } => {
            let members: Vec<String> = members.iter().map(|p| fmt_port(*p)).collect();
            match dst {
                Some(d) => format!(
                    "bundle_load({},{basis},{},ofport,{},members:{})",
                    fields.name(),
                    algorithm.name(),
                    format_subfield(d, proto),
                    members.join(",")
                ),
                None => format!(
                    "bundle({},{basis},{},ofport,members:{})",
                    fields.name(),
                    algorithm.name(),
                    members.join(",")
                ),
            }
        }
        OfAction::SetQueue(q) => format!("set_queue:{q}"),
        OfAction::PopQueue => "pop_queue".into(),
        OfAction::Sample {
            probability,
            collector_set_id,
            obs_domain_id,
            obs_point_id,
        } => format!(
            "sample(probability={probability},collector_set_id={collector_set_id},\
             obs_domain_id={obs_domain_id},obs_point_id={obs_point_id})"
        ),
        OfAction::Conjunction {
            id,
            clause,
            n_clauses,
        } => format!("conjunction({id},{clause}/{n_clauses})"),
        OfAction::Learn(l) => format_learn(l),
        OfAction::FinTimeout { idle, hard } => {
            let mut parts = Vec::new();
            if *idle != 0 {
                parts.push(format!("idle_timeout={idle}"));
            }
            if *hard != 0 {
                parts.push(format!("hard_timeout={hard}"));
            }
            format!("fin_timeout({})", parts.join(","))
        }
    }
}

/// OVS `learn_format`.
fn format_learn(l: &Learn) -> String {
    let mut s = format!("learn(table={}", l.table);
    if l.idle_timeout != 0 {
        s.push_str(&format!(",idle_timeout={}", l.idle_timeout));
    }
    if l.hard_timeout != 0 {
        s.push_str(&format!(",hard_timeout={}", l.hard_timeout));
    }
    if l.fin_idle_timeout != 0 {
        s.push_str(&format!(",fin_idle_timeout={}", l.fin_idle_timeout));
    }
    if l.fin_hard_timeout != 0 {
        s.push_str(&format!(",fin_hard_timeout={}", l.fin_hard_timeout));
    }
    if l.priority != 32768 {
        s.push_str(&format!(",priority={}", l.priority));
    }
    if l.send_flow_rem {
        s.push_str(",send_flow_rem");
    }
    if l.delete_learned {
        s.push_str(",delete_learned");
    }
    if l.cookie != 0 {
        s.push_str(&format!(",cookie={:#x}", l.cookie));
    }
    if l.limit != 0 {
        s.push_str(&format!(",limit={}", l.limit));
    }
    if let Some(r) = &l.result_dst {
        s.push_str(&format!(",result_dst={}", format_subfield(r, None)));
    }
    for spec in &l.specs {
        s.push(',');
        let (sp, dp) = (spec.src_proto, spec.dst_proto);
        match (spec.src, spec.dst) {
            (LearnSrc::Imm(v), LearnDst::Match(d)) => {
                if d.ofs == 0 && d.n_bits == ovs_bits(d.field) {
                    s.push_str(&format!(
                        "{}={}",
                        canon_name(d.field, dp),
                        format_value(d.field, v)
                    ));
                } else {
                    s.push_str(&format!("{}={}", format_subfield(&d, dp), hex(v)));
                }
            }
            (LearnSrc::Field(src), LearnDst::Match(d)) => {
                s.push_str(&format_subfield(&d, dp));
                if src.field != d.field || src.ofs != d.ofs || sp != dp {
                    s.push('=');
                    s.push_str(&format_subfield(&src, sp));
                }
            }
            (LearnSrc::Imm(v), LearnDst::Load(d)) => {
                s.push_str(&format!("load:{}->{}", hex(v), format_subfield(&d, dp)));
            }
            (LearnSrc::Field(src), LearnDst::Load(d)) => s.push_str(&format!(
                "load:{}->{}",
                format_subfield(&src, sp),
                format_subfield(&d, dp)
            )),
            (LearnSrc::Field(src), LearnDst::Output) => {
                s.push_str(&format!("output:{}", format_subfield(&src, sp)));
            }
            (LearnSrc::Imm(v), LearnDst::Output) => {
                s.push_str(&format!("output:{}", hex(v)));
            }
        }
    }
    s.push(')');
    s
}

/// A port as OVS `ofputil_format_port` names it inside `output(port=...)`.
fn reserved_port_name(p: &OutputPort) -> String {
    match p.reserved_name() {
        Some(name) => name.into(),
        None => p.ofp10_number().to_string(),
    }
}

fn hex_masked(s: &mut String, name: &str, v: u128, m: u128, full: u128) {
    if m != 0 {
        s.push_str(&format!("{name}={}", hex(v)));
        if m != full {
            s.push_str(&format!("/{}", hex(m)));
        }
        s.push(',');
    }
}

fn u32_masked(s: &mut String, name: &str, v: u32, m: u32) {
    hex_masked(s, name, v.into(), m.into(), u32::MAX.into());
}

fn u64_masked(s: &mut String, name: &str, v: u64, m: u64) {
    hex_masked(s, name, v.into(), m.into(), u64::MAX.into());
}

fn u16_masked(s: &mut String, name: &str, v: u16, m: u16) {
    if m != 0 {
        if m == u16::MAX {
            s.push_str(&format!("{name}={v},"));
        } else {
            s.push_str(&format!("{name}=0x{v:x}/0x{m:x},"));
        }
    }
}

fn eth_masked(s: &mut String, name: &str, v: &[u8; 6], m: &[u8; 6]) {
    let to = |a: &[u8; 6]| a.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let (v, m) = (to(v), to(m));
    if m != 0 {
        s.push_str(&format!("{name}={}", fmt_mac(v)));
        if m != 0xffff_ffff_ffff {
            s.push_str(&format!("/{}", fmt_mac(m)));
        }
        s.push(',');
    }
}

fn ip_masked(s: &mut String, name: &str, v: u32, m: u32) {
    if m != 0 {
        s.push_str(&format!("{name}={}", fmt_ipv4(v)));
        if m != u32::MAX {
            match cidr_bits(u128::from(m), 32) {
                Some(n) => s.push_str(&format!("/{n}")),
                None => s.push_str(&format!("/{}", fmt_ipv4(m))),
            }
        }
        s.push(',');
    }
}

fn ipv6_masked(s: &mut String, name: &str, v: &[u8; 16], m: &[u8; 16]) {
    let (v, m) = (u128::from_be_bytes(*v), u128::from_be_bytes(*m));
    if m != 0 {
        s.push_str(&format!("{name}={}", fmt_ipv6(v)));
        if m != u128::MAX {
            match cidr_bits(m, 128) {
                Some(n) => s.push_str(&format!("/{n}")),
                None => s.push_str(&format!("/{}", fmt_ipv6(m))),
            }
        }
        s.push(',');
    }
}

/// The ct fields of a match, in OVS `match_format`'s order.
fn ct_match_into(s: &mut String, f: &flowcache::key::FlowKey, w: &flowcache::key::FlowKey) {
    if w.ct_state != 0 {
        s.push_str(&format!(
            "ct_state={},",
            fmt_ct_state(f.ct_state, w.ct_state)
        ));
    }
    u16_masked(s, "ct_zone", f.ct_zone, w.ct_zone);
    u32_masked(s, "ct_mark", f.ct_mark, w.ct_mark);
    let (lv, lm) = (
        u128::from_be_bytes(f.ct_label),
        u128::from_be_bytes(w.ct_label),
    );
    hex_masked(s, "ct_label", lv, lm, u128::MAX);
    ip_masked(s, "ct_nw_src", f.ct_nw_src, w.ct_nw_src);
    ip_masked(s, "ct_nw_dst", f.ct_nw_dst, w.ct_nw_dst);
    ipv6_masked(s, "ct_ipv6_src", &f.ct_ipv6_src, &w.ct_ipv6_src);
    ipv6_masked(s, "ct_ipv6_dst", &f.ct_ipv6_dst, &w.ct_ipv6_dst);
    if w.ct_nw_proto != 0 {
        s.push_str(&format!("ct_nw_proto={},", f.ct_nw_proto));
    }
    u16_masked(s, "ct_tp_src", f.ct_tp_src, w.ct_tp_src);
    u16_masked(s, "ct_tp_dst", f.ct_tp_dst, w.ct_tp_dst);
}

/// OVS `match_format`.
fn match_into(s: &mut String, m: &Match, priority: Option<u16>) {
    let f = &m.value;
    let w = &m.mask;
    let start = s.len();
    if let Some(p) = priority {
        if p != 32768 {
            s.push_str(&format!("priority={p},"));
        }
    }
    u32_masked(s, "pkt_mark", f.pkt_mark, w.pkt_mark);
    u32_masked(s, "recirc_id", f.recirc_id, w.recirc_id);
    u32_masked(s, "dp_hash", f.dp_hash, w.dp_hash);
    if w.conj_id != 0 {
        s.push_str(&format!("conj_id={},", f.conj_id));
    }
    ct_match_into(s, f, w);

    let dl_type = f.dl_type & w.dl_type;
    let mut skip_type = false;
    let mut skip_proto = false;
    if w.dl_type == 0xffff {
        skip_type = true;
        let proto_known = w.nw_proto == 0xff;
        let name = match dl_type {
            0x0800 => {
                skip_proto = proto_known;
                match (proto_known, f.nw_proto) {
                    (true, 1) => "icmp",
                    (true, 2) => "igmp",
                    (true, 6) => "tcp",
                    (true, 17) => "udp",
                    (true, 132) => "sctp",
                    _ => {
                        skip_proto = false;
                        "ip"
                    }
                }
            }
            0x86dd => {
                skip_proto = proto_known;
                match (proto_known, f.nw_proto) {
                    (true, 58) => "icmp6",
                    (true, 6) => "tcp6",
                    (true, 17) => "udp6",
                    (true, 132) => "sctp6",
                    _ => {
                        skip_proto = false;
                        "ipv6"
                    }
                }
            }
            0x0806 => "arp",
            0x8035 => "rarp",
            0x8847 => "mpls",
            0x8848 => "mplsm",
            _ => {
                skip_type = false;
                ""
            }
        };
        if skip_type {
            s.push_str(name);
            s.push(',');
        }
    }
    for i in 0..16 {
        u32_masked(s, &format!("reg{i}"), f.regs[i], w.regs[i]);
    }
    u64_masked(s, "tun_id", f.tun_id, w.tun_id);
    ip_masked(s, "tun_src", f.tun_src, w.tun_src);
    ip_masked(s, "tun_dst", f.tun_dst, w.tun_dst);
    ipv6_masked(s, "tun_ipv6_src", &f.tun_ipv6_src, &w.tun_ipv6_src);
    ipv6_masked(s, "tun_ipv6_dst", &f.tun_ipv6_dst, &w.tun_ipv6_dst);
    hex_masked(s, "tun_tos", f.tun_tos.into(), w.tun_tos.into(), 0xff);
    hex_masked(s, "tun_ttl", f.tun_ttl.into(), w.tun_ttl.into(), 0xff);
    hex_masked(
        s,
        "tun_flags",
        f.tun_flags.into(),
        w.tun_flags.into(),
        0xffff,
    );
    u16_masked(s, "tun_tp_src", f.tun_tp_src, w.tun_tp_src);
    u16_masked(s, "tun_tp_dst", f.tun_tp_dst, w.tun_tp_dst);
    u64_masked(s, "metadata", f.metadata, w.metadata);
    if w.in_port != 0 {
        s.push_str(&format!("in_port={},", fmt_port(f.in_port)));
    }
    for (i, (fv, wv)) in f.vlans.iter().zip(w.vlans.iter()).enumerate() {
        let (t, mk) = (fv.tci, wv.tci);
        if mk == 0 {
            break;
        }
        let sfx = if i == 0 { String::new() } else { i.to_string() };
        let vid_mask = mk & VLAN_VID_MASK;
        let pcp_mask = mk & VLAN_PCP_MASK;
        let cfi = mk & VLAN_CFI;
        if cfi != 0
            && t & VLAN_CFI != 0
            && (vid_mask == 0 || vid_mask == VLAN_VID_MASK)
            && (pcp_mask == 0 || pcp_mask == VLAN_PCP_MASK)
            && (vid_mask != 0 || pcp_mask != 0)
        {
            if vid_mask != 0 {
                s.push_str(&format!("dl_vlan{sfx}={},", t & VLAN_VID_MASK));
            }
            if pcp_mask != 0 {
                s.push_str(&format!("dl_vlan_pcp{sfx}={},", t >> 13));
            }
        } else if mk == 0xffff {
            s.push_str(&format!("vlan_tci{sfx}=0x{t:04x},"));
        } else {
            s.push_str(&format!("vlan_tci{sfx}=0x{t:04x}/0x{mk:04x},"));
        }
    }
    eth_masked(s, "dl_src", &f.dl_src, &w.dl_src);
    eth_masked(s, "dl_dst", &f.dl_dst, &w.dl_dst);
    if !skip_type && w.dl_type != 0 {
        if w.dl_type == 0xffff {
            s.push_str(&format!("dl_type=0x{:04x},", f.dl_type));
        } else {
            s.push_str(&format!("dl_type=0x{:04x}/0x{:04x},", f.dl_type, w.dl_type));
        }
    }
    let is_arp = dl_type == 0x0806 || dl_type == 0x8035;
    if dl_type == 0x86dd {
        ipv6_masked(s, "ipv6_src", &f.ipv6_src, &w.ipv6_src);
        ipv6_masked(s, "ipv6_dst", &f.ipv6_dst, &w.ipv6_dst);
        let lm = w.ipv6_label & 0x000f_ffff;
        if lm != 0 {
            if lm == 0x000f_ffff {
                s.push_str(&format!("ipv6_label=0x{:05x},", f.ipv6_label));
            } else {
                s.push_str(&format!("ipv6_label=0x{:05x}/0x{:05x},", f.ipv6_label, lm));
            }
        }
    } else if is_arp {
        ip_masked(s, "arp_spa", f.nw_src, w.nw_src);
        ip_masked(s, "arp_tpa", f.nw_dst, w.nw_dst);
    } else {
        ip_masked(s, "nw_src", f.nw_src, w.nw_src);
        ip_masked(s, "nw_dst", f.nw_dst, w.nw_dst);
    }
    if !skip_proto && w.nw_proto != 0 {
        let name = if is_arp { "arp_op" } else { "nw_proto" };
        s.push_str(&format!("{name}={},", f.nw_proto));
    }
    if is_arp {
        eth_masked(s, "arp_sha", &f.arp_sha, &w.arp_sha);
        eth_masked(s, "arp_tha", &f.arp_tha, &w.arp_tha);
    }
    if w.nw_tos & 0xfc != 0 {
        s.push_str(&format!("nw_tos={},", f.nw_tos & 0xfc));
    }
    if w.nw_tos & 0x03 != 0 {
        s.push_str(&format!("nw_ecn={},", f.nw_tos & 0x03));
    }
    if w.nw_ttl != 0 {
        s.push_str(&format!("nw_ttl={},", f.nw_ttl));
    }
    let (lse, lm) = (f.mpls_lse[0], w.mpls_lse[0]);
    if lm & MPLS_LABEL_MASK != 0 {
        s.push_str(&format!(
            "mpls_label={},",
            (lse & MPLS_LABEL_MASK) >> MPLS_LABEL_SHIFT
        ));
    }
    if lm & MPLS_TC_MASK != 0 {
        s.push_str(&format!(
            "mpls_tc={},",
            (lse & MPLS_TC_MASK) >> MPLS_TC_SHIFT
        ));
    }
    if lm & MPLS_TTL_MASK != 0 {
        s.push_str(&format!("mpls_ttl={},", lse & MPLS_TTL_MASK));
    }
    if lm & MPLS_BOS_MASK != 0 {
        s.push_str(&format!(
            "mpls_bos={},",
            (lse & MPLS_BOS_MASK) >> MPLS_BOS_SHIFT
        ));
    }
    u32_masked(s, "mpls_lse1", f.mpls_lse[1], w.mpls_lse[1]);
    let (fr, fm) = (f.nw_frag & 3, w.nw_frag & 3);
    let frag = match fm {
        3 => Some(match fr {
            0 => "no",
            1 => "first",
            3 => "later",
            _ => "<error>",
        }),
        1 => Some(if fr & 1 != 0 { "yes" } else { "no" }),
        2 => Some(if fr & 2 != 0 { "later" } else { "not_later" }),
        _ => None,
    };
    if let Some(fs) = frag {
        s.push_str(&format!("nw_frag={fs},"));
    }
    if dl_type == 0x0800 && f.nw_proto == 1 {
        u16_masked(s, "icmp_type", f.tp_src, w.tp_src);
        u16_masked(s, "icmp_code", f.tp_dst, w.tp_dst);
    } else if dl_type == 0x0800 && f.nw_proto == 2 {
        u16_masked(s, "igmp_type", f.tp_src, w.tp_src);
        u16_masked(s, "igmp_code", f.tp_dst, w.tp_dst);
    } else if dl_type == 0x86dd && f.nw_proto == 58 {
        u16_masked(s, "icmp_type", f.tp_src, w.tp_src);
        u16_masked(s, "icmp_code", f.tp_dst, w.tp_dst);
        ipv6_masked(s, "nd_target", &f.nd_target, &w.nd_target);
        eth_masked(s, "nd_sll", &f.arp_sha, &w.arp_sha);
        eth_masked(s, "nd_tll", &f.arp_tha, &w.arp_tha);
    } else {
        u16_masked(s, "tp_src", f.tp_src, w.tp_src);
        u16_masked(s, "tp_dst", f.tp_dst, w.tp_dst);
    }
    if (dl_type == 0x0800 || dl_type == 0x86dd) && f.nw_proto == 6 && w.tcp_flags & 0x0fff != 0 {
        s.push_str(&format!(
            "tcp_flags={}",
            fmt_tcp_flags(f.tcp_flags, w.tcp_flags & 0x0fff)
        ));
    }
    if s.len() > start && s.ends_with(',') {
        s.pop();
    }
}

/// A group bucket's actions as `dump-groups` prints them (no match to name
/// the L4 protocol; an empty list is `drop`).
pub(crate) fn format_action_list(acts: &[OfAction]) -> String {
    if acts.is_empty() {
        return "drop".into();
    }
    acts.iter()
        .map(|a| format_action(a, None))
        .collect::<Vec<_>>()
        .join(",")
}
