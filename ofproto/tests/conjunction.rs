//! Conjunctive matches (`conjunction(id,k/n)` + `conj_id=`) as OVS 3.1's
//! classifier does them: every dimension must match, soft matches only
//! count when they outrank the best ordinary match, incomplete ones drop
//! back to lower-priority rules with the same match; and the parser's
//! rejections. Expected outputs were recorded from OVS 3.1.

use flowcache::actions::format_actions;
use flowcache::key::{FlowKey, ETH_TYPE_IPV4, IPPROTO_TCP};
use flowcache::upcall::Translator;
use ofproto::{format_rule, parse_flow, parse_flows, Bridge};

fn bridge(n: u32, flows: &str) -> Bridge {
    let b = Bridge::new();
    for p in 1..=n {
        b.add_port(p, &format!("p{p}"));
    }
    b.replace_rules(parse_flows(flows, "t").unwrap()).unwrap();
    b
}

fn tcp(src: u8, dst: u8, sport: u16, dport: u16) -> FlowKey {
    FlowKey {
        in_port: 1,
        dl_src: [0, 0, 0, 0, 0, 1],
        dl_dst: [0, 0, 0, 0, 0, 2],
        dl_type: ETH_TYPE_IPV4,
        nw_src: 0x0a00_0000 | src as u32,
        nw_dst: 0x0a00_0000 | dst as u32,
        nw_proto: IPPROTO_TCP,
        nw_ttl: 64,
        tp_src: sport,
        tp_dst: dport,
        ..Default::default()
    }
}

fn acts(b: &Bridge, k: &FlowKey) -> String {
    format_actions(&b.translate(k).actions)
}

/// hw_conj_basic: source in {.1,.3} AND TCP port in {80,443}.
const BASIC: &str = "\
priority=10,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)
priority=10,ip,nw_src=10.0.0.3,actions=conjunction(1,1/2)
priority=10,tcp,tp_dst=80,actions=conjunction(1,2/2)
priority=10,tcp,tp_dst=443,actions=conjunction(1,2/2)
priority=10,conj_id=1,actions=output:2
priority=1,ip,actions=output:3
";

#[test]
fn every_dimension_must_match() {
    let b = bridge(3, BASIC);
    let t = b.translate(&tcp(1, 2, 1234, 80));
    assert_eq!(format_actions(&t.actions), "2");
    // OVS: nw_src=10.0.0.1,tp_dst=80 in the megaflow.
    assert_eq!((t.mask.nw_src, t.mask.tp_dst), (u32::MAX, 0xffff));
    assert_eq!(t.mask.conj_id, 0, "conj_id never reaches the datapath");
    assert_eq!(acts(&b, &tcp(3, 2, 1234, 443)), "2");
    // One dimension alone falls through to the ordinary rule.
    assert_eq!(acts(&b, &tcp(1, 2, 1234, 22)), "3");
    assert_eq!(acts(&b, &tcp(2, 2, 1234, 80)), "3");
    // The trace names the conj_id rule.
    let tr = b.trace(&tcp(1, 2, 1234, 80));
    assert!(
        tr.trace
            .iter()
            .any(|l| l.contains("conj_id=1, priority 10")),
        "{:?}",
        tr.trace
    );
}

#[test]
fn priorities_and_drop_back() {
    let b = bridge(
        5,
        "priority=20,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)
priority=10,ip,nw_src=10.0.0.1,actions=conjunction(2,1/2)
priority=10,tcp,tp_dst=80,actions=conjunction(2,2/2),conjunction(3,1/3)
priority=10,tcp,tp_src=1234,actions=conjunction(3,2/3)
priority=10,conj_id=2,actions=output:2
priority=10,conj_id=1,actions=output:4
priority=15,ip,nw_dst=10.0.0.9,actions=output:5
priority=1,actions=output:3",
    );
    // Conjunction 1 (priority 20) misses its second clause: the same
    // match at priority 10 completes conjunction 2. (OVS: output 2.)
    assert_eq!(acts(&b, &tcp(1, 2, 1234, 80)), "2");
    // Conjunction 3 has 2 of its 3 clauses: nothing.
    assert_eq!(acts(&b, &tcp(1, 2, 1234, 81)), "3");
    assert_eq!(acts(&b, &tcp(2, 2, 1234, 80)), "3");
    // An ordinary priority-15 match beats the priority-10 conjunction.
    assert_eq!(acts(&b, &tcp(1, 9, 1234, 80)), "5");
}

#[test]
fn the_conj_id_lookup_returns_its_best_ordinary_match() {
    // Recorded from OVS 3.1: the second lookup (with conj_id set) returns
    // whatever rule wins it, so a priority-40 `tcp` rule beats the
    // priority-5 `conj_id=1` rule; three clauses must all match.
    let b = bridge(
        5,
        "priority=50,ip,nw_src=10.0.0.1,actions=conjunction(1,1/3),conjunction(2,1/2)
priority=50,ip,nw_dst=10.0.0.2,actions=conjunction(1,2/3)
priority=50,tcp,tp_dst=80,actions=conjunction(1,3/3),conjunction(2,2/2)
priority=5,conj_id=1,actions=output:2
priority=60,conj_id=2,ip,nw_dst=10.0.0.9,actions=output:4
priority=40,tcp,actions=output:5
priority=1,actions=output:3",
    );
    assert_eq!(acts(&b, &tcp(1, 2, 1234, 80)), "5");
    assert_eq!(acts(&b, &tcp(1, 9, 1234, 80)), "4");
    assert_eq!(acts(&b, &tcp(1, 8, 1234, 80)), "5");
    assert_eq!(acts(&b, &tcp(1, 2, 1234, 81)), "5");
}

#[test]
fn conjunction_above_an_ordinary_match_wins() {
    let b = bridge(
        3,
        "priority=30,ip,nw_src=10.0.0.1,actions=conjunction(7,1/2)
priority=30,tcp,tp_dst=80,actions=conjunction(7,2/2)
priority=30,conj_id=7,actions=output:2
priority=20,tcp,actions=output:3",
    );
    assert_eq!(acts(&b, &tcp(1, 2, 1, 80)), "2");
    assert_eq!(acts(&b, &tcp(1, 2, 1, 81)), "3");
}

#[test]
fn conjunctions_learned_by_add_and_removed_by_delete() {
    let b = bridge(3, BASIC);
    assert_eq!(acts(&b, &tcp(5, 2, 1, 80)), "3");
    b.add_rules(vec![parse_flow(
        "priority=10,ip,nw_src=10.0.0.5,actions=conjunction(1,1/2)",
    )
    .unwrap()]);
    assert_eq!(acts(&b, &tcp(5, 2, 1, 80)), "2");
    b.delete_rules(&ofproto::parse::parse_filter("conj_id=1").unwrap(), false);
    assert_eq!(acts(&b, &tcp(5, 2, 1, 80)), "3");
}

#[test]
fn parses_and_prints_like_ovs_ofctl() {
    let cases = [
        (
            "priority=10,conj_id=1,actions=output:2",
            "priority=10,conj_id=1 actions=output:2",
        ),
        (
            "actions=conjunction(1,1/2),conjunction(2,2/3),note:1234",
            "actions=conjunction(1,1/2),conjunction(2,2/3),note:12.34.00.00.00.00",
        ),
        (
            "actions=conjunction(0x10,1/64)",
            "actions=conjunction(16,1/64)",
        ),
        (
            "actions=conjunction( 1 , 1 / 2 )",
            "actions=conjunction(1,1/2)",
        ),
        (
            "conj_id=5,actions=conjunction(1,1/2)",
            "conj_id=5 actions=conjunction(1,1/2)",
        ),
    ];
    for (flow, want) in cases {
        let r = parse_flow(flow).unwrap_or_else(|e| panic!("{flow}: {e}"));
        assert_eq!(format_rule(&r), want);
    }
}

#[test]
fn rejects_what_ovs_rejects_with_the_position() {
    let cases = [
        (
            "actions=output:1,conjunction(1,1/2)",
            "output",
            "\"conjunction\" actions may be used along with \"note\" but not any other kind of \
             action (such as the \"output\" action used here)",
        ),
        (
            "actions=conjunction(1,1/2),goto_table:3",
            "goto_table",
            "(such as the \"goto_table\" action used here)",
        ),
        (
            "actions=conjunction(1,1/1)",
            "1,1/1",
            "conjunction must have at least 2 clauses",
        ),
        (
            "actions=conjunction(1,0/2)",
            "1,0/2",
            "clause index must be positive",
        ),
        (
            "actions=conjunction(1,3/2)",
            "1,3/2",
            "clause index must be less than or equal to number of clauses",
        ),
        (
            "actions=conjunction(1,1/65)",
            "1,1/65",
            "at most 64 clauses",
        ),
        ("actions=conjunction(1)", "1)", "syntax is"),
        (
            "actions=write_actions(conjunction(1,1/2))",
            "conjunction",
            "not allowed in write_actions",
        ),
        (
            "conj_id=0x10/0xff,actions=drop",
            "0x10/0xff",
            "invalid mask for field conj_id",
        ),
    ];
    for (flow, token, reason) in cases {
        let e = parse_flow(flow).expect_err(flow);
        assert!(e.reason.contains(reason), "{flow}: {}", e.reason);
        assert_eq!(e.col, flow.find(token).unwrap() + 1, "{flow}: {e}");
    }
}
