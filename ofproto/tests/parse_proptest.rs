//! The parser never panics, and whatever it accepts formats to a line that
//! parses back to the same rule.

use ofproto::parse::{
    format_match, format_rule, parse_filter, parse_flow, parse_flows, parse_match,
};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "priority=10,udp,tp_dst=53,actions=output:2",
    "table=1,priority=24,ip,nw_dst=10.2.0.0/24,actions=dec_ttl,mod_dl_src:02:00:00:00:00:fe,output:2",
    "priority=20,arp,dl_vlan=5,arp_sha=00:00:00:00:00:00/00:00:00:00:00:01,actions=output:2",
    "priority=30,tcp,tcp_flags=+syn-ack,actions=output:2",
    "table=0,priority=10,actions=set_field:1->reg0,load:5->NXM_NX_REG4[],goto_table:1",
    "priority=10,actions=move:NXM_OF_ETH_SRC[0..31]->NXM_NX_REG0[],in_port",
    "priority=10,in_port=1,actions=load:9->NXM_NX_REG0[],resubmit(3,1),resubmit(,2)",
    "priority=10,ip,actions=write_actions(mod_nw_dst:10.9.9.9,output:2),goto_table:1",
    "priority=10,vlan_tci=0,actions=push_vlan:0x8100,set_field:4106->vlan_vid,goto_table:1",
    "priority=20,icmp6,icmp_type=135,nd_target=2001:db8::/64,actions=output:2",
    "priority=10,mpls,mpls_label=200,mpls_tc=5,actions=dec_mpls_ttl,output:3",
    "priority=693,icmp,nw_ecn=3,nw_frag=not_later,icmp_type=3,actions=mod_nw_dst:172.16.0.208,push_mpls:0x8847,set_field:397646->mpls_label,in_port",
    "table=2,priority=117,icmp,nw_src=172.16.0.221/255.255.0.255,icmp_type=8,reg5=0x1/0xff,actions=output:1,set_field:3->icmp_type,write_metadata:0x1/0xff,goto_table:5",
    "priority=396,ipv6,ipv6_label=0x000fe/0x000ff,ipv6_src=2001:db8:1::/64,actions=output:5",
    "priority=285,mpls,mpls_tc=5,actions=mod_vlan_vid:1382,set_mpls_tc:2",
    "priority=10,metadata=0xdeadbeef00000000/0xffffffff00000000,actions=output:3",
    "cookie=0x5,idle_timeout=3,priority=1,xreg1=0x55/0xff,xxreg0=0x1,actions=set_field:0xff/0xf0->reg3",
    "priority=1,udp6,tp_src=0x0/0xfc00,ip_dscp=46,actions=mod_tp_dst:67,dec_ttl",
];

const ALPHABET: &[char] = &[
    ',', '=', ':', '/', '(', ')', '[', ']', '.', '-', '>', ' ', '#', '0', '1', '9', 'a', 'f', 'x',
    '_', 'é', '\t', '*', '+',
];

/// 3000 cases by default; `PROPTEST_CASES=N` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn check_roundtrip(line: &str) -> Result<(), TestCaseError> {
    if let Ok(r) = parse_flow(line) {
        let s = format_rule(&r);
        match parse_flow(&s) {
            Ok(again) => prop_assert_eq!(again, r, "{} -> {}", line, s),
            Err(e) => prop_assert!(false, "{line} formats to {s} which does not parse: {e}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}") {
        let _ = parse_flow(&s);
        let _ = parse_flows(&s, "x");
        if let Ok((m, _, _)) = parse_match(&s) {
            let _ = format_match(&m);
        }
        let _ = parse_filter(&s);
        check_roundtrip(&s)?;
    }

    #[test]
    fn syntax_soup_never_panics(s in "[a-z_0-9=,:/()\\[\\].>x# -]{0,120}") {
        let _ = parse_flows(&s, "x");
        let _ = parse_match(&s);
        check_roundtrip(&s)?;
    }

    #[test]
    fn mutated_valid_lines(
        idx in 0..SEEDS.len(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(ALPHABET)),
            1..6,
        ),
    ) {
        let mut chars: Vec<char> = SEEDS[idx].chars().collect();
        for (pos, op, c) in edits {
            let i = pos.index(chars.len() + 1);
            match op {
                0 if i < chars.len() => {
                    chars.remove(i);
                }
                1 => chars.insert(i, c),
                _ if i < chars.len() => chars[i] = c,
                _ => {}
            }
        }
        let line: String = chars.into_iter().collect();
        let _ = parse_match(&line);
        check_roundtrip(&line)?;
    }
}

#[test]
fn seeds_are_valid() {
    for s in SEEDS {
        let r = parse_flow(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(parse_flow(&format_rule(&r)).unwrap(), r, "{s}");
    }
}
