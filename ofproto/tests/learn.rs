//! `learn(...)` end to end through the bridge as the upcall handlers use
//! it: parsing and printing as `ovs-ofctl` does, the learned rule installed
//! during the upcall translation and used by the next packet, its megaflow
//! mask, timeouts, `delete_learned`, `limit=`/`result_dst=`, and no
//! learning from traces or revalidations. Expected strings come from OVS
//! 3.1 (`ovs-ofctl parse-flow`, `dump-flows` after the packets).

use flowcache::actions::format_actions;
use flowcache::key::{FlowKey, ETH_TYPE_IPV4, ETH_TYPE_VLAN, IPPROTO_TCP, IPPROTO_UDP, VLAN_CFI};
use flowcache::upcall::Translator;
use ofproto::parse::parse_filter;
use ofproto::table::{LearnOutcome, Tables};
use ofproto::{format_rule, parse_flow, parse_flows, Bridge};
use std::time::{Duration, Instant};

fn bridge(n: u32, flows: &str) -> Bridge {
    let b = Bridge::new();
    for p in 1..=n {
        b.add_port(p, &format!("p{p}"));
    }
    b.replace_rules(parse_flows(flows, "t").unwrap()).unwrap();
    b
}

fn dump(b: &Bridge) -> Vec<String> {
    b.tables().iter().map(|e| format_rule(&e.rule)).collect()
}

fn dump_table(b: &Bridge, t: u8) -> Vec<String> {
    b.tables()
        .iter()
        .filter(|e| e.rule.table == t)
        .map(|e| format_rule(&e.rule))
        .collect()
}

fn tcp(in_port: u32, src: u32, dst: u32, sport: u16, dport: u16) -> FlowKey {
    FlowKey {
        in_port,
        dl_src: [0, 0, 0, 0, 0, 1],
        dl_dst: [0, 0, 0, 0, 0, 2],
        dl_type: ETH_TYPE_IPV4,
        nw_src: src,
        nw_dst: dst,
        nw_proto: IPPROTO_TCP,
        nw_ttl: 64,
        tp_src: sport,
        tp_dst: dport,
        ..Default::default()
    }
}

fn udp(in_port: u32, sport: u16) -> FlowKey {
    FlowKey {
        nw_proto: IPPROTO_UDP,
        ..tcp(in_port, 0x0a00_0001, 0x0a00_0002, sport, 53)
    }
}

fn eth(in_port: u32, src: u8, dst: u8, vid: u16) -> FlowKey {
    let mut k = FlowKey {
        in_port,
        dl_src: [0, 0, 0, 0, 0, src],
        dl_dst: [0, 0, 0, 0, 0, dst],
        dl_type: ETH_TYPE_IPV4,
        ..Default::default()
    };
    k.vlans[0].tpid = ETH_TYPE_VLAN;
    k.vlans[0].tci = VLAN_CFI | vid;
    k
}

fn acts(b: &Bridge, k: &FlowKey) -> String {
    format_actions(&b.translate(k).actions)
}

#[test]
fn parses_and_prints_like_ovs_ofctl() {
    // Left: what was written; right: `ovs-ofctl -O OpenFlow13 parse-flow`.
    let cases = [
        (
            "ip,actions=learn(table=3,idle_timeout=10,hard_timeout=20,fin_idle_timeout=5,\
             fin_hard_timeout=6,priority=7,cookie=0x99,send_flow_rem,delete_learned,limit=10,\
             result_dst=reg0[3],eth_type=0x800,ip_dst=10.0.0.1,NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],\
             load:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15],load:0x5->NXM_NX_REG2[],\
             load:5->reg3[1..4],output:NXM_NX_REG1[0..15])",
            "ip actions=learn(table=3,idle_timeout=10,hard_timeout=20,fin_idle_timeout=5,\
             fin_hard_timeout=6,priority=7,send_flow_rem,delete_learned,cookie=0x99,limit=10,\
             result_dst=NXM_NX_REG0[3],eth_type=0x800,ip_dst=10.0.0.1,\
             NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],load:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15],\
             load:0x5->NXM_NX_REG2[],load:0x5->NXM_NX_REG3[1..4],output:NXM_NX_REG1[0..15])",
        ),
        (
            "udp,actions=learn(table=2,eth_type=0x800,nw_proto=17,NXM_OF_UDP_DST[]=NXM_OF_UDP_SRC[],\
             udp_src=53,load:0->reg0[],in_port=3,vlan_tci=0x1005,eth_src=aa:bb:cc:dd:ee:ff,\
             reg1=7,NXM_NX_REG2[0..3]=0xf,ip_src=10.1.2.3)",
            "udp actions=learn(table=2,eth_type=0x800,nw_proto=17,\
             NXM_OF_UDP_DST[]=NXM_OF_UDP_SRC[],udp_src=53,load:0->NXM_NX_REG0[],in_port=3,\
             vlan_tci=0x1005,eth_src=aa:bb:cc:dd:ee:ff,reg1=0x7,NXM_NX_REG2[0..3]=0xf,\
             ip_src=10.1.2.3)",
        ),
        (
            "tcp6,actions=learn(eth_type=0x86dd,nw_proto=6,NXM_NX_IPV6_SRC[]=NXM_NX_IPV6_DST[],\
             ipv6_dst=::1,tcp_dst=80)",
            "tcp6 actions=learn(table=1,eth_type=0x86dd,nw_proto=6,\
             NXM_NX_IPV6_SRC[]=NXM_NX_IPV6_DST[],ipv6_dst=::1,tcp_dst=80)",
        ),
        (
            "actions=learn(load:0xaabbccddeeff->NXM_OF_ETH_DST[],load:0->NXM_NX_REG0[0..3],\
             output:reg0[0..15],load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[])",
            "actions=learn(table=1,load:0xaabbccddeeff->NXM_OF_ETH_DST[],\
             load:0->NXM_NX_REG0[0..3],output:NXM_NX_REG0[0..15],\
             load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[])",
        ),
        (
            "actions=learn(table=1,priority=32768,idle_timeout=0,hard_timeout=0,cookie=0)",
            "actions=learn(table=1)",
        ),
        (
            "actions=learn(reg0,in_port),learn(table=2,NXM_OF_VLAN_TCI[0..11]),output:2",
            "actions=learn(table=1,NXM_NX_REG0[],NXM_OF_IN_PORT[]),\
             learn(table=2,NXM_OF_VLAN_TCI[0..11]),output:2",
        ),
        (
            "actions=learn(result_dst=in_port[0],dl_type=0x800,NXM_OF_IP_SRC[0..7]=0x5)",
            "actions=learn(table=1,result_dst=NXM_OF_IN_PORT[0],eth_type=0x800,\
             NXM_OF_IP_SRC[0..7]=0x5)",
        ),
    ];
    for (flow, want) in cases {
        let r = parse_flow(flow).unwrap_or_else(|e| panic!("{flow}: {e}"));
        assert_eq!(format_rule(&r), want);
        // The printed form reads back as the same rule.
        assert_eq!(parse_flow(&format_rule(&r)).unwrap(), r);
    }
}

#[test]
fn rejects_what_ovs_rejects_with_the_position() {
    let cases = [
        // (flow, text of the offending token, part of the reason)
        (
            "actions=learn(table=255)",
            "table=255",
            "table id 255 not valid",
        ),
        (
            "actions=learn(NXM_OF_TCP_DST[]=NXM_OF_TCP_SRC[])",
            "NXM_OF_TCP_DST[]",
            "OFPBAC_MATCH_INCONSISTENT",
        ),
        (
            "tcp,actions=learn(eth_type=0x800,nw_proto=17,NXM_OF_UDP_DST[]=NXM_OF_UDP_SRC[])",
            "NXM_OF_UDP_SRC[]",
            "requires udp",
        ),
        (
            "actions=learn(reg0[0..7]=reg1[0..3])",
            "reg0[0..7]",
            "bit widths of reg0[0..7] (4) and reg1[0..3] (8) differ",
        ),
        (
            "actions=learn(NXM_NX_REG2[0..3]=0x1f)",
            "NXM_NX_REG2[0..3]",
            "does not fit into 4 bits",
        ),
        (
            "actions=learn(vlan_tci=0x1005/0x1fff)",
            "vlan_tci",
            "wildcards not allowed",
        ),
        (
            "actions=learn(result_dst=reg0[0..1])",
            "result_dst",
            "single bit",
        ),
        ("actions=learn(foo=1)", "foo", "unknown keyword foo"),
        ("actions=learn(load:1->eth_type)", "load", "not writable"),
        ("actions=learn(dl_vlan=10)", "dl_vlan", "not supported"),
        (
            "actions=write_actions(learn(reg1[]))",
            "learn",
            "not allowed in write_actions",
        ),
    ];
    for (flow, token, reason) in cases {
        let e = parse_flow(flow).expect_err(flow);
        assert!(e.reason.contains(reason), "{flow}: {}", e.reason);
        let col = flow.find(token).unwrap() + 1;
        assert_eq!(e.col, col, "{flow}: {e}");
    }
}

/// The per-VLAN MAC learning switch of the OVS documentation: each packet
/// teaches table 2 where its source is, for the packets after it.
const MAC_LEARNING: &str = "\
table=0,priority=10,actions=resubmit(,1)
table=1,priority=10,actions=learn(table=2,hard_timeout=300,priority=20,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,2)
table=2,priority=0,actions=output:1,output:2,output:3
";

#[test]
fn learned_rule_is_installed_and_used_by_the_next_packet() {
    let b = bridge(3, MAC_LEARNING);
    let g = b.generation();
    // A (port 1) to B: unknown, flooded; A is learned.
    let t = b.translate(&eth(1, 0xa, 0xb, 10));
    assert_eq!(format_actions(&t.actions), "2,3");
    assert_ne!(b.generation(), g, "a learned rule changes the tables");
    // Its megaflow would be stale at once: not installed, and the packets
    // parked behind the upcall get translated again.
    assert!(t.state_changed && !t.install);
    assert_eq!(
        dump_table(&b, 2)[0],
        "table=2, hard_timeout=300, priority=20,vlan_tci=0x000a/0x0fff,\
         dl_dst=00:00:00:00:00:0a actions=output:1"
    );
    // The learn's source fields are in the megaflow (OVS learn_mask).
    assert_eq!(t.mask.dl_src, [0xff; 6]);
    assert_eq!(t.mask.vlans[0].tci & 0x0fff, 0x0fff);
    // B (port 2) to A: forwarded by what A taught; B is learned too.
    assert_eq!(acts(&b, &eth(2, 0xb, 0xa, 10)), "1");
    assert_eq!(acts(&b, &eth(1, 0xa, 0xb, 10)), "2");
    // Learning is per VLAN.
    assert_eq!(acts(&b, &eth(3, 0xc, 0xa, 20)), "1,2");
    // Learning the same thing again changes nothing: installed.
    let g = b.generation();
    let t = b.translate(&eth(1, 0xa, 0xb, 10));
    assert_eq!(format_actions(&t.actions), "2");
    assert!(t.install && !t.state_changed);
    assert_eq!(b.generation(), g);
    assert_eq!(dump_table(&b, 2).len(), 4);
}

#[test]
fn traces_and_revalidations_learn_nothing() {
    let b = bridge(3, MAC_LEARNING);
    let out = b.trace(&eth(1, 0xa, 0xb, 10));
    assert!(out
        .trace
        .iter()
        .any(|l| l.contains("suppressing side effects, so learn action ignored")));
    b.revalidate(&eth(1, 0xa, 0xb, 10));
    assert_eq!(dump_table(&b, 2).len(), 1);
    // The megaflow of a revalidation still has the learn's source fields.
    let t = b.revalidate(&eth(1, 0xa, 0xb, 10));
    assert_eq!(t.mask.dl_src, [0xff; 6]);
    assert_eq!(acts(&b, &eth(2, 0xb, 0xa, 10)), "1,3");
}

/// Reverse-flow learning with timeouts and loads, recorded from OVS 3.1.
#[test]
fn reverse_flow_learning_with_timeouts_and_loads() {
    let b = bridge(
        3,
        "table=0,priority=10,tcp,in_port=1,actions=learn(table=1,idle_timeout=30,hard_timeout=60,\
         fin_idle_timeout=5,fin_hard_timeout=10,priority=100,cookie=0x42,eth_type=0x800,\
         nw_proto=6,NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],NXM_OF_IP_DST[]=NXM_OF_IP_SRC[],\
         NXM_OF_TCP_SRC[]=NXM_OF_TCP_DST[],NXM_OF_TCP_DST[]=NXM_OF_TCP_SRC[],\
         load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0x7->NXM_NX_REG3[0..3],\
         output:NXM_OF_IN_PORT[]),output:2\n\
         table=0,priority=5,tcp,actions=resubmit(,1)\n\
         table=1,priority=0,actions=output:3",
    );
    let t = b.translate(&tcp(1, 0x0a00_0001, 0x0a00_0002, 1000, 80));
    assert_eq!(format_actions(&t.actions), "2");
    assert_eq!((t.mask.nw_src, t.mask.nw_dst), (u32::MAX, u32::MAX));
    assert_eq!((t.mask.tp_src, t.mask.tp_dst), (0xffff, 0xffff));
    assert_eq!(
        dump_table(&b, 1)[0],
        "cookie=0x42, table=1, idle_timeout=30, hard_timeout=60, priority=100,tcp,\
         nw_src=10.0.0.2,nw_dst=10.0.0.1,tp_src=80,tp_dst=1000 actions=fin_timeout(\
         idle_timeout=5,hard_timeout=10),load:0x1->NXM_OF_ETH_DST[],\
         load:0x7->NXM_NX_REG3[0..3],output:1"
    );
    // The reply (port 2) takes the learned rule: back to port 1, with
    // the learned destination MAC.
    let t = b.translate(&tcp(2, 0x0a00_0002, 0x0a00_0001, 80, 1000));
    assert_eq!(
        format_actions(&t.actions),
        "set(eth(dst=00:00:00:00:00:01)),1"
    );
    // Another reply is not covered.
    assert_eq!(acts(&b, &tcp(2, 0x0a00_0002, 0x0a00_0001, 80, 1001)), "3");

    // Timeouts: idle after 30 s without use, hard 60 s after the last
    // learn.
    let now = Instant::now();
    assert_eq!(b.expire_rules(now + Duration::from_secs(29)), 0);
    assert_eq!(b.expire_rules(now + Duration::from_secs(31)), 1);
    assert_eq!(dump_table(&b, 1).len(), 1);
    assert_eq!(acts(&b, &tcp(2, 0x0a00_0002, 0x0a00_0001, 80, 1000)), "3");
}

#[test]
fn relearning_restarts_the_hard_timeout() {
    let learning = parse_flow(
        "actions=learn(table=1,hard_timeout=60,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],\
         output:NXM_OF_IN_PORT[])",
    )
    .unwrap();
    let ofproto::rule::OfAction::Learn(l) = &learning.instructions.apply[0] else {
        panic!("not a learn")
    };
    let rule = l.execute(&eth(1, 0xa, 0xb, 0));
    let t0 = Instant::now();
    let LearnOutcome::Installed(t) = Tables::new().learn(rule.clone(), 0, t0) else {
        panic!("not installed")
    };
    let e = t.iter().next().unwrap().clone();
    assert!(e.expired(t0 + Duration::from_secs(61)).is_some());
    assert!(matches!(
        t.learn(rule.clone(), 0, t0 + Duration::from_secs(50)),
        LearnOutcome::Refreshed
    ));
    assert!(e.expired(t0 + Duration::from_secs(61)).is_none());
    assert!(e.expired(t0 + Duration::from_secs(111)).is_some());
    // Different actions: the rule is replaced, statistics kept.
    let mut other = rule;
    other.instructions.apply.clear();
    let LearnOutcome::Installed(t2) = t.learn(other, 0, t0) else {
        panic!("not replaced")
    };
    assert_eq!(t2.len(), 1);
    assert!(std::sync::Arc::ptr_eq(
        &t2.iter().next().unwrap().stats,
        &e.stats
    ));
}

#[test]
fn delete_learned_deletes_what_the_rule_learned() {
    let flows = "\
table=0,priority=10,in_port=1,actions=learn(table=1,cookie=0x5,delete_learned,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:2
table=0,priority=10,in_port=2,actions=learn(table=1,cookie=0x6,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:1
table=1,priority=0,cookie=0x5,actions=drop
";
    let b = bridge(2, flows);
    b.translate(&eth(1, 0xa, 0xb, 0));
    b.translate(&eth(2, 0xb, 0xa, 0));
    assert_eq!(dump_table(&b, 1).len(), 3);
    // Deleting the port-2 learner (no delete_learned) keeps its rule.
    assert_eq!(
        b.delete_rules(&parse_filter("in_port=2").unwrap(), false),
        1
    );
    assert_eq!(dump_table(&b, 1).len(), 3);
    // Deleting the port-1 learner deletes every cookie-0x5 rule of table 1.
    assert_eq!(
        b.delete_rules(&parse_filter("in_port=1").unwrap(), false),
        1
    );
    assert_eq!(
        dump_table(&b, 1),
        vec!["cookie=0x6, table=1, dl_dst=00:00:00:00:00:0b actions=output:2"]
    );
    assert_eq!(dump(&b).len(), 1);
}

#[test]
fn replacing_the_learner_without_its_learn_deletes_what_it_learned() {
    let b = bridge(
        2,
        "priority=10,in_port=1,actions=learn(table=1,cookie=0x5,delete_learned,         NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:2",
    );
    b.translate(&eth(1, 0xa, 0xb, 0));
    assert_eq!(dump_table(&b, 1).len(), 1);
    // Same match and priority, same learn: what it learned stays.
    b.add_rules(parse_flows(
        "priority=10,in_port=1,actions=learn(table=1,cookie=0x5,delete_learned,         NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:2",
        "t",
    )
    .unwrap());
    assert_eq!(dump_table(&b, 1).len(), 1);
    // Without the learn: gone (OVS learned_cookies_dec on the replace).
    b.add_rules(parse_flows("priority=10,in_port=1,actions=output:2", "t").unwrap());
    assert!(dump_table(&b, 1).is_empty());
}

#[test]
fn limit_and_result_dst() {
    let flows = "\
table=0,priority=10,udp,actions=learn(table=1,limit=2,result_dst=reg0[0],eth_type=0x800,nw_proto=17,NXM_OF_UDP_DST[]=NXM_OF_UDP_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,2)
table=2,priority=10,reg0=0x1/0x1,actions=output:2
table=2,priority=5,actions=output:3
";
    let b = bridge(3, flows);
    assert_eq!(acts(&b, &udp(1, 1001)), "2");
    assert_eq!(acts(&b, &udp(1, 1002)), "2");
    // Two rules with cookie 0 in table 1: the third is not learned.
    let g = b.generation();
    assert_eq!(acts(&b, &udp(1, 1003)), "3");
    assert_eq!(b.generation(), g);
    assert_eq!(dump_table(&b, 1).len(), 2);
    // One already learned counts as learned.
    assert_eq!(acts(&b, &udp(1, 1001)), "2");
    // Without a learner (a trace), result_dst is left alone.
    let tr = b.trace(&udp(1, 1001));
    assert_eq!(format_actions(&tr.actions), "3");
}

#[test]
fn learning_into_its_own_table() {
    // The learned rule outranks the learning one, for later packets only.
    let b = bridge(
        3,
        "priority=1,actions=learn(table=0,priority=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],\
         output:NXM_OF_IN_PORT[]),output:3",
    );
    assert_eq!(acts(&b, &eth(1, 0xa, 0xb, 0)), "3");
    // Taken by the learned rule: B is not learned from it.
    assert_eq!(acts(&b, &eth(2, 0xb, 0xa, 0)), "1");
    assert_eq!(acts(&b, &eth(1, 0xa, 0xb, 0)), "3");
    assert_eq!(acts(&b, &eth(2, 0xb, 0xc, 0)), "3");
    assert_eq!(acts(&b, &eth(1, 0xa, 0xb, 0)), "2");
    assert_eq!(
        dump(&b),
        vec![
            "priority=10,dl_dst=00:00:00:00:00:0a actions=output:1",
            "priority=10,dl_dst=00:00:00:00:00:0b actions=output:2",
            "priority=1 actions=learn(table=0,priority=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],\
             output:NXM_OF_IN_PORT[]),output:3",
        ]
    );
}
