//! Unit tests of translation, one per OVS behaviour it copies.

use flowcache::actions::*;
use flowcache::key::*;
use ofproto::parse_flows;
use ofproto::table::Tables;
use ofproto::xlate::{xlate, PortRange, XlateOptions, XlateOutput};

fn tables(flows: &str) -> Tables {
    Tables::from_rules(parse_flows(flows, "test").unwrap())
}

fn run(flows: &str, key: &FlowKey) -> XlateOutput {
    xlate(
        &tables(flows),
        key,
        &PortRange(4),
        &XlateOptions { trace: true },
    )
}

fn udp(in_port: u32) -> FlowKey {
    FlowKey {
        in_port,
        dl_src: [0, 0, 0, 0, 0, 1],
        dl_dst: [0, 0, 0, 0, 0, 2],
        dl_type: ETH_TYPE_IPV4,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        nw_proto: IPPROTO_UDP,
        nw_ttl: 64,
        tp_src: 1234,
        tp_dst: 53,
        ..Default::default()
    }
}

fn tcp(in_port: u32) -> FlowKey {
    FlowKey {
        nw_proto: IPPROTO_TCP,
        tp_dst: 80,
        tcp_flags: 0x002,
        ..udp(in_port)
    }
}

fn arp(in_port: u32) -> FlowKey {
    FlowKey {
        in_port,
        dl_type: ETH_TYPE_ARP,
        nw_proto: 1,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        ..Default::default()
    }
}

fn mpls(in_port: u32, label: u32, tc: u32, ttl: u32) -> FlowKey {
    FlowKey {
        in_port,
        dl_type: ETH_TYPE_MPLS,
        mpls_lse: [(label << 12) | (tc << 9) | MPLS_BOS_MASK | ttl, 0],
        ..Default::default()
    }
}

fn outs(o: &XlateOutput) -> Vec<u32> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            DpAction::Output(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn s(o: &XlateOutput) -> String {
    format_actions(&o.actions)
}

// ------------------------------------------------------------ pipeline

#[test]
fn table_miss_drops_only_that_lookup() {
    let f = "priority=10 actions=output:2,goto_table:1\ntable=1,priority=10,udp actions=output:3";
    let o = run(f, &udp(1));
    assert_eq!(outs(&o), vec![2, 3]);
    let o = run(f, &tcp(1));
    assert_eq!(outs(&o), vec![2]);
    assert_eq!(o.drop_reason, None);
    let o = run("table=1,priority=1 actions=output:2", &udp(1));
    assert!(o.actions.is_empty());
    assert_eq!(o.drop_reason, Some(DropReason::TableMiss));
    let o = run("priority=1 actions=drop", &udp(1));
    assert_eq!(o.drop_reason, Some(DropReason::Action));
}

#[test]
fn resubmit_port_changes_in_port_for_the_lookup_only_and_registers_persist() {
    let f = "priority=10,in_port=1 actions=load:0x9->NXM_NX_REG0[],resubmit(3,1),resubmit(,2)
table=1,priority=10,reg0=0x9,in_port=3 actions=output:2,load:0x5->NXM_NX_REG1[],output:in_port
table=2,priority=10,reg0=0x9,reg1=0x5,in_port=1 actions=output:4";
    let o = run(f, &udp(1));
    // output:in_port inside the resubmit goes to the real ingress port 1.
    assert_eq!(outs(&o), vec![2, 1, 4]);
    assert_eq!(o.rules.len(), 3);
    assert!(o.wc.words()[DP_WORDS..].iter().all(|w| *w == 0));
}

#[test]
fn metadata_written_in_resubmit_persists() {
    let f = "priority=10 actions=set_field:0x7->metadata,resubmit(,1),goto_table:2
table=1,priority=10,metadata=0x7 actions=output:2,set_field:0x9->metadata
table=2,priority=10,metadata=0x9 actions=output:3
table=2,priority=1 actions=output:4";
    assert_eq!(outs(&run(f, &udp(1))), vec![2, 3]);
}

#[test]
fn recursion_limit_drops_the_whole_packet() {
    let f = "priority=10,udp actions=output:2,resubmit(,1)\ntable=1,priority=10 actions=output:3,resubmit(,1)";
    let o = run(f, &udp(1));
    assert!(o.actions.is_empty());
    assert_eq!(o.drop_reason, Some(DropReason::RecursionLimit));
    assert!(o
        .trace
        .iter()
        .any(|l| l.contains("over max translation depth 64")));
    // 1 non-deepening + 64 nested lookups of table 1, as OVS.
    assert_eq!(o.rules.len(), 66);
    // Resubmits to later tables do not nest.
    let mut chain = String::new();
    for t in 0..100u32 {
        chain.push_str(&format!(
            "table={t},priority=1 actions=resubmit(,{})\n",
            t + 1
        ));
    }
    chain.push_str("table=100,priority=1 actions=output:2\n");
    assert_eq!(outs(&run(&chain, &udp(1))), vec![2]);
}

// ------------------------------------------------------------ megaflow basics

/// OVS puts the Ethernet type, IP fragment bits and VLAN presence in every
/// megaflow; vportd does too as soon as the translation looks at the packet
/// (a lookup consulting a packet field, or an action other than output).
#[test]
fn always_exact_fields() {
    for flows in [
        "priority=1,udp actions=output:2",
        "priority=1 actions=load:1->NXM_NX_REG0[],output:2",
        "priority=1 actions=push_vlan:0x8100,output:2",
    ] {
        let o = run(flows, &udp(1));
        assert_eq!(o.wc.recirc_id, u32::MAX, "{flows}");
        assert_eq!(o.wc.in_port, u32::MAX, "{flows}");
        assert_eq!(o.wc.dl_type, 0xffff, "{flows}");
        assert_eq!(o.wc.nw_frag, FRAG_ANY | FRAG_LATER, "{flows}");
        assert_eq!(o.wc.vlans[0].tci, VLAN_CFI, "{flows}: VLAN presence");
        assert_eq!(
            o.wc.nw_src | o.wc.nw_dst | o.wc.tp_src as u32 | o.wc.tp_dst as u32,
            0,
            "{flows}"
        );
    }
    let o = run("priority=1 actions=load:1->NXM_NX_REG0[],output:2", &arp(1));
    assert_eq!(o.wc.dl_type, 0xffff);
    assert_eq!(o.wc.nw_frag, 0);
}

/// A translation that consulted nothing of the packet but its in_port and
/// only sent it to ports forwards every packet of that port alike: its
/// megaflow is the port alone (the PMD then forwards without parsing).
#[test]
fn port_forwarding_megaflow_is_the_port() {
    let flows =
        "in_port=1,priority=1 actions=output:2\nin_port=3,priority=1 actions=output:1,output:2";
    for pkt in [udp(1), arp(1), udp(3)] {
        let o = run(flows, &pkt);
        let mut port_only = FlowKey {
            recirc_id: u32::MAX,
            in_port: u32::MAX,
            ..Default::default()
        };
        for w in &mut port_only.words_mut()[DP_WORDS..] {
            *w = 0;
        }
        assert_eq!(o.wc, port_only, "in_port {}", pkt.in_port);
        assert!(!outs(&o).is_empty());
    }
    // A rule that looks at the packet brings the usual fields back, for
    // the packets it was consulted on.
    let o = run(
        "in_port=1,priority=2,tcp actions=output:3\nin_port=1,priority=1 actions=output:2",
        &udp(1),
    );
    assert_eq!(o.wc.dl_type, 0xffff);
    assert_eq!(o.wc.vlans[0].tci, VLAN_CFI);
}

#[test]
fn prefix_table_megaflow_is_minimal() {
    let f = "priority=10,ip,nw_dst=10.0.0.0/8 actions=output:2
priority=10,ip,nw_dst=11.0.0.0/8 actions=output:3
priority=10,ip,nw_dst=192.0.0.0/8 actions=output:4";
    let t = tables(f);
    let mut megaflows = std::collections::HashSet::new();
    for (i, dst) in [
        0x0a01_0203u32,
        0x0aff_0001,
        0x0b00_0001,
        0xc0a8_0101,
        0x0808_0808,
    ]
    .into_iter()
    .enumerate()
    {
        for sport in [1u16, 1000, 60000] {
            let mut k = udp(1);
            k.nw_dst = dst;
            k.tp_src = sport;
            let o = xlate(&t, &k, &PortRange(4), &XlateOptions::default());
            assert_eq!(o.wc.tp_src, 0);
            assert_eq!(o.wc.tp_dst, 0);
            assert_eq!(o.wc.nw_src, 0);
            assert_eq!(o.wc.nw_proto, 0);
            assert!(o.wc.nw_dst.leading_ones() <= 8, "{i}: {:#x}", o.wc.nw_dst);
            assert_eq!(
                o.wc.nw_dst.count_ones(),
                o.wc.nw_dst.leading_ones(),
                "prefix mask"
            );
            megaflows.insert((k.masked(&o.wc), o.wc));
        }
    }
    // One megaflow per destination /8 (8.8.8.8 gets 8.0.0.0/7), not per
    // packet.
    assert_eq!(megaflows.len(), 4);
}

#[test]
fn fragments_are_looked_up_with_zero_ports() {
    let f = "priority=10,udp,tp_dst=53 actions=output:2
priority=10,udp,tp_dst=0 actions=output:3
priority=1,ip actions=output:4
priority=20,tcp,tcp_flags=+syn actions=output:4";
    let mut first = udp(1);
    first.nw_frag = FRAG_ANY;
    let o = run(f, &first);
    assert_eq!(outs(&o), vec![3]);
    assert_eq!(o.wc.nw_frag, FRAG_ANY | FRAG_LATER);
    // The decision did not depend on the packet's ports.
    assert_eq!(o.wc.tp_dst, 0);
    let mut later = udp(1);
    later.nw_frag = FRAG_ANY | FRAG_LATER;
    later.tp_src = 0;
    later.tp_dst = 0;
    assert_eq!(outs(&run(f, &later)), vec![3]);
    assert_eq!(outs(&run(f, &udp(1))), vec![2]);
    // TCP flags are still seen in a fragment.
    let mut tf = tcp(1);
    tf.nw_frag = FRAG_ANY;
    assert_eq!(outs(&run(f, &tf)), vec![4]);
}

// ------------------------------------------------------------ outputs

#[test]
fn output_to_ingress_port_is_skipped_in_port_sends_back() {
    let f = "priority=10 actions=output:1,output:2,output:3,IN_PORT";
    assert_eq!(outs(&run(f, &udp(3))), vec![1, 2, 3]);
    assert_eq!(outs(&run(f, &udp(1))), vec![2, 3, 1]);
}

#[test]
fn nonexistent_port_ignored_all_flood_skip_ingress_controller_drops() {
    let o = run("priority=10 actions=output:9,output:2", &udp(1));
    assert_eq!(outs(&o), vec![2]);
    let o = run(
        "priority=10 actions=mod_dl_src:00:00:00:00:00:aa,output:9",
        &udp(1),
    );
    assert!(
        o.actions.is_empty(),
        "no set is committed for a missing port: {}",
        s(&o)
    );
    assert_eq!(
        outs(&run("priority=10 actions=ALL", &udp(2))),
        vec![1, 3, 4]
    );
    assert_eq!(
        outs(&run("priority=10 actions=FLOOD", &udp(4))),
        vec![1, 2, 3]
    );
    // OVS 3.1 without a controller connection (try_case.py):
    // userspace(pid=0,controller(reason=1,...,recirc_id=1,...,max_len=65535)),2
    let o = run("priority=10 actions=CONTROLLER:65535,output:2", &udp(1));
    assert_eq!(
        s(&o),
        "userspace(pid=0,controller(reason=1,dont_send=0,continuation=0,recirc_id=1,rule_cookie=0,controller_id=0,max_len=65535)),2"
    );
    assert_eq!(o.drop_reason, None);
    // From the table-miss rule: reason 6 (explicit miss), as OVS.
    let o = run("priority=0 actions=controller", &udp(1));
    assert_eq!(
        s(&o),
        "userspace(pid=0,controller(reason=6,dont_send=0,continuation=0,recirc_id=1,rule_cookie=0,controller_id=0,max_len=65535))"
    );
    // In a later table, pending header changes are committed first.
    let o = run(
        "table=0,priority=10,ip actions=mod_nw_tos:0x20,goto_table:1\ntable=1,priority=10,actions=controller",
        &udp(1),
    );
    assert!(
        s(&o).starts_with("set(ipv4(tos=0x20/0xfc)),userspace(pid=0,controller(reason=1,"),
        "{}",
        s(&o)
    );
}

#[test]
fn output_reg_reads_the_register() {
    let f = "priority=10 actions=load:0x3->NXM_NX_REG2[],output:NXM_NX_REG2[]";
    assert_eq!(outs(&run(f, &udp(1))), vec![3]);
    let f =
        "priority=10 actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15],output:NXM_NX_REG2[0..15]";
    // The register holds the ingress port: skipped.
    assert!(outs(&run(f, &udp(1))).is_empty());
}

// ------------------------------------------------------------ rewrites

#[test]
fn rewrites_are_committed_before_each_output_with_changed_fields_only() {
    let f = "priority=10,udp actions=output:2,mod_nw_dst:192.168.0.1,output:3,mod_tp_dst:99,mod_dl_src:00:00:00:00:00:aa,output:4";
    let o = run(f, &udp(1));
    assert_eq!(
        s(&o),
        "2,set(ipv4(dst=192.168.0.1)),3,set(eth(src=00:00:00:00:00:aa)),set(udp(dst=99)),4"
    );
    // Written fields are in the megaflow (the sets depend on their values).
    assert_eq!(o.wc.nw_dst, u32::MAX);
    assert_eq!(o.wc.tp_dst, 0xffff);
    assert_eq!(o.wc.dl_src, [0xff; 6]);
    // A set to the value the packet already has is not committed.
    let f = "priority=10,udp actions=mod_nw_dst:10.0.0.2,output:2";
    assert_eq!(s(&run(f, &udp(1))), "2");
}

#[test]
fn masked_set_field_keeps_other_bits() {
    let f = "priority=10,udp actions=mod_nw_tos:0x68,output:2";
    let mut k = udp(1);
    k.nw_tos = 0x03;
    let o = run(f, &k);
    assert_eq!(s(&o), "set(ipv4(tos=0x68/0xfc)),2");
    assert_eq!(o.wc.nw_tos, 0xfc);
}

#[test]
fn no_ip_rewrite_when_nw_proto_is_zero() {
    let f = "priority=10,ip actions=mod_nw_dst:1.2.3.4,dec_ttl,output:2";
    let mut k = udp(1);
    k.nw_proto = 0;
    k.tp_src = 0;
    k.tp_dst = 0;
    let o = run(f, &k);
    assert_eq!(s(&o), "2");
    assert_eq!(o.wc.nw_proto, 0xff);
    // A malformed header reads TTL 0: dec_ttl drops it.
    k.nw_ttl = 0;
    let o = run(f, &k);
    assert!(o.actions.is_empty());
    assert_eq!(o.drop_reason, Some(DropReason::InvalidTtl));
}

#[test]
fn dec_ttl_expiry_abandons_the_rest_outputs_before_stay() {
    let f = "priority=10,ip actions=output:2,dec_ttl,output:3,dec_ttl,output:4";
    let mut k = udp(1);
    k.nw_ttl = 5;
    let o = run(f, &k);
    assert_eq!(s(&o), "2,set(ipv4(ttl=4)),3,set(ipv4(ttl=3)),4");
    assert_eq!(o.wc.nw_ttl, 0xff);
    k.nw_ttl = 2;
    let o = run(f, &k);
    assert_eq!(s(&o), "2,set(ipv4(ttl=1)),3");
    assert!(o
        .trace
        .iter()
        .any(|l| l.contains("IPv4 decrement TTL exception")));
    k.nw_ttl = 1;
    assert_eq!(s(&run(f, &k)), "2");
    k.nw_ttl = 0;
    assert_eq!(s(&run(f, &k)), "2");
    // IPv6 hop limit.
    let mut k6 = udp(1);
    k6.dl_type = ETH_TYPE_IPV6;
    k6.nw_ttl = 1;
    let o = run("priority=10,ipv6 actions=dec_ttl,output:2", &k6);
    assert!(o.actions.is_empty());
    assert_eq!(o.drop_reason, Some(DropReason::InvalidTtl));
}

#[test]
fn dec_ttl_expiry_skips_goto_but_not_parent_or_action_set() {
    // Expiry in a resubmitted table: the caller continues.
    let f = "priority=10 actions=resubmit(,1),output:3\ntable=1,priority=10,ip actions=dec_ttl,output:2";
    let mut k = udp(1);
    k.nw_ttl = 1;
    assert_eq!(outs(&run(f, &k)), vec![3]);
    // Expiry skips this rule's goto_table and write_actions; an action set
    // written earlier still runs.
    let f = "priority=10 actions=write_actions(output:4),goto_table:1
table=1,priority=10,ip actions=dec_ttl,write_actions(output:2),goto_table:2
table=2,priority=10 actions=output:3";
    assert_eq!(outs(&run(f, &k)), vec![4]);
    k.nw_ttl = 9;
    assert_eq!(outs(&run(f, &k)), vec![3, 2]);
}

#[test]
fn dec_mpls_ttl_expiry() {
    let f = "priority=10,mpls actions=output:2,dec_mpls_ttl,output:3";
    assert_eq!(
        s(&run(f, &mpls(1, 5, 0, 2))),
        "2,set(mpls(label=0,tc=0,ttl=1,bos=0)),3"
    );
    let o = run(f, &mpls(1, 5, 0, 1));
    assert_eq!(s(&o), "2");
    assert_eq!(o.wc.mpls_lse[0] & MPLS_TTL_MASK, MPLS_TTL_MASK);
}

// ------------------------------------------------------------ action set

#[test]
fn write_actions_later_output_replaces_earlier_set_kept_clear_empties() {
    let f = "priority=10,ip actions=write_actions(set_field:10.9.9.9->ip_dst,output:2),goto_table:1
table=1,priority=10,tcp actions=clear_actions,write_actions(output:4)
table=1,priority=10,udp actions=write_actions(output:3)";
    assert_eq!(s(&run(f, &udp(1))), "set(ipv4(dst=10.9.9.9)),3");
    assert_eq!(s(&run(f, &tcp(1))), "4");
}

#[test]
fn action_set_runs_in_openflow_order() {
    // Written as set, dec_ttl, push_vlan, output: executed push_vlan,
    // dec_ttl, set, output.
    let f = "priority=10,ip actions=write_actions(output:2,set_field:99->nw_ttl,dec_ttl,push_vlan:0x8100),goto_table:1
table=1,priority=1 actions=drop";
    let o = run(f, &udp(1));
    assert_eq!(
        s(&o),
        "set(ipv4(ttl=99)),push_vlan(tpid=0x8100,vid=0,pcp=0),2"
    );
    // dec_ttl in the action set at TTL 1 stops the set: no output.
    let mut k = udp(1);
    k.nw_ttl = 1;
    let o = run("priority=10,ip actions=write_actions(dec_ttl,output:2)", &k);
    assert_eq!(o.drop_reason, Some(DropReason::InvalidTtl));
}

// ------------------------------------------------------------ VLAN / MPLS

#[test]
fn push_vlan_starts_at_vid0_pcp0_and_pushes_on_tagged() {
    let mut k = udp(1);
    k.vlans[0] = VlanTag {
        tpid: ETH_TYPE_VLAN,
        tci: VLAN_CFI | (5 << 13) | 7,
    };
    let o = run("priority=10 actions=push_vlan:0x88a8,output:2", &k);
    assert_eq!(
        o.actions,
        vec![
            DpAction::PushVlan {
                tpid: 0x88a8,
                tci: 0
            },
            DpAction::Output(2)
        ]
    );
    assert_eq!(o.wc.vlans[0].tci, 0xffff);
    let o = run(
        "priority=10 actions=push_vlan:0x8100,set_field:4106->vlan_vid,output:2",
        &udp(1),
    );
    assert_eq!(s(&o), "push_vlan(tpid=0x8100,vid=10,pcp=0),2");
    // The pushed tag is not in the megaflow of an untagged packet, but its
    // absence is.
    assert_eq!(o.wc.vlans[0].tci, VLAN_CFI);
}

#[test]
fn pop_vlan_on_qinq_leaves_no_vlan_and_dl_type_8100() {
    let f = "priority=10,vlan_tci=0x1000/0x1000 actions=pop_vlan,goto_table:1
table=1,priority=20,vlan_tci=0x1000/0x1000 actions=output:2
table=1,priority=10,dl_type=0x8100 actions=output:3";
    let mut k = udp(1);
    k.dl_type = ETH_TYPE_VLAN;
    k.nw_proto = 0;
    k.vlans[0] = VlanTag {
        tpid: ETH_TYPE_VLAN,
        tci: VLAN_CFI | 100,
    };
    let o = run(f, &k);
    assert_eq!(s(&o), "pop_vlan,3");
    assert_eq!(o.wc.vlans[0].tci, 0xffff);
}

#[test]
fn mod_vlan_vid_on_tagged_is_pop_push() {
    let mut k = udp(1);
    k.vlans[0] = VlanTag {
        tpid: ETH_TYPE_VLAN,
        tci: VLAN_CFI | (2 << 13) | 20,
    };
    let o = run(
        "priority=10,dl_vlan=20 actions=mod_vlan_vid:30,output:2",
        &k,
    );
    assert_eq!(s(&o), "pop_vlan,push_vlan(tpid=0x8100,vid=30,pcp=2),2");
}

#[test]
fn push_mpls_on_ip_copies_ttl_label0_tc_from_dscp() {
    let mut k = udp(1);
    k.nw_ttl = 17;
    let o = run("priority=10,ip actions=push_mpls:0x8847,output:2", &k);
    assert_eq!(
        o.actions,
        vec![
            DpAction::PushMpls {
                lse: MPLS_BOS_MASK | 17,
                ethertype: ETH_TYPE_MPLS
            },
            DpAction::Output(2)
        ]
    );
    assert_eq!(o.wc.nw_ttl, 0xff);
    // IP rewrites before the push are committed first; after it none.
    let mut rules = parse_flows(
        "priority=10,ip actions=mod_nw_dst:1.1.1.1,push_mpls:0x8847,output:2",
        "t",
    )
    .unwrap();
    // ovs-ofctl rejects an IP write after push_mpls; the switch ignores it.
    rules[0].instructions.apply.insert(
        2,
        ofproto::OfAction::SetField {
            field: ofproto::FieldId::NwSrc,
            value: 0x0202_0202,
            mask: u32::MAX as u128,
        },
    );
    let o = xlate(
        &Tables::from_rules(rules),
        &k,
        &PortRange(4),
        &XlateOptions::default(),
    );
    assert_eq!(
        s(&o),
        "set(ipv4(dst=1.1.1.1)),push_mpls(label=0,tc=0,ttl=17,bos=1,eth_type=0x8847),2"
    );
    // TTL 0 becomes 64.
    k.nw_ttl = 0;
    let o = run("priority=10,ip actions=push_mpls:0x8847,output:2", &k);
    assert!(s(&o).contains("ttl=64"));
}

#[test]
fn push_mpls_on_mpls_copies_tc_and_ttl() {
    let o = run(
        "priority=10,mpls actions=push_mpls:0x8847,set_field:999->mpls_label,output:2",
        &mpls(1, 100, 2, 17),
    );
    assert_eq!(
        s(&o),
        "push_mpls(label=999,tc=2,ttl=17,bos=0,eth_type=0x8847),2"
    );
    assert_eq!(o.wc.mpls_lse[0], u32::MAX);
    // Two labels deep: the third stays below.
    let mut k = mpls(1, 100, 0, 64);
    k.mpls_lse[0] &= !MPLS_BOS_MASK;
    k.mpls_lse[1] = (200 << 12) | MPLS_BOS_MASK | 64;
    let o = run(
        "priority=10,mpls actions=push_mpls:0x8847,set_field:999->mpls_label,output:2",
        &k,
    );
    assert_eq!(
        s(&o),
        "push_mpls(label=999,tc=0,ttl=64,bos=0,eth_type=0x8847),2"
    );
    // Pop back to IP.
    let o = run(
        "priority=10,mpls actions=pop_mpls:0x0800,output:2",
        &mpls(1, 5, 0, 9),
    );
    assert_eq!(s(&o), "pop_mpls(eth_type=0x800),2");
}

#[test]
fn set_field_needs_its_prerequisite() {
    // A TCP port write on an ARP packet is ignored.
    // ovs-ofctl rejects tcp_dst without tcp; build the rule by hand.
    let mut rules = parse_flows(
        "priority=10 actions=resubmit(,1),output:2\ntable=1,priority=1 actions=drop",
        "t",
    )
    .unwrap();
    rules[1]
        .instructions
        .apply
        .push(ofproto::OfAction::SetField {
            field: ofproto::FieldId::TpDst,
            value: 7,
            mask: 0xffff,
        });
    let t = Tables::from_rules(rules);
    let o = xlate(&t, &arp(1), &PortRange(4), &XlateOptions::default());
    assert_eq!(format_actions(&o.actions), "2");
    let o = xlate(&t, &tcp(1), &PortRange(4), &XlateOptions::default());
    assert_eq!(format_actions(&o.actions), "set(tcp(dst=7)),2");
    assert_eq!(o.wc.nw_proto, 0xff);
}

#[test]
fn trace_and_rules() {
    let f = "priority=10,ip actions=output:2,goto_table:1\ntable=1,priority=5 actions=output:3";
    let t = tables(f);
    let o = xlate(&t, &udp(1), &PortRange(4), &XlateOptions { trace: true });
    let text = o.trace.join("\n");
    assert!(text.contains(" 0. ip, priority 10"), "{text}");
    assert!(text.contains("output:2"), "{text}");
    assert!(text.contains(" 1. priority 5"), "{text}");
    assert!(text.contains("Datapath actions: 2,3"), "{text}");
    assert_eq!(o.rules.len(), 2);
    let o2 = xlate(&t, &udp(1), &PortRange(4), &XlateOptions::default());
    assert!(o2.trace.is_empty());
    // Rule stats are shared with the tables.
    o.rules[0].stats.credit(1, 100, std::time::Instant::now());
    assert_eq!(t.iter().next().unwrap().stats.n_packets(), 1);
}

// clone / check_pkt_larger / output trunc / exit: the expected datapath
// actions are OVS 3.1's (`Datapath actions:` of the conformance cases
// hw_clone_isolation, hw_check_pkt_larger_len, hw_trunc_output and of
// try_case.py runs).

fn dp(flows: &str, key: &FlowKey) -> String {
    format_actions(&run(flows, key).actions)
}

#[test]
fn clone_is_inlined_and_undone_by_the_next_commit() {
    let f = "udp,actions=clone(mod_nw_dst:10.0.0.99,output:2),output:3";
    assert_eq!(
        dp(f, &udp(1)),
        "set(ipv4(dst=10.0.0.99)),2,set(ipv4(dst=10.0.0.2)),3"
    );
    // Register writes and header changes without an output leave nothing.
    let f = "udp,actions=clone(load:1->NXM_NX_REG0[],mod_dl_src:00:00:00:00:00:ee),resubmit(,1)\n\
             table=1,reg0=1,actions=output:2\ntable=1,priority=5,actions=output:3";
    assert_eq!(dp(f, &udp(1)), "3");
}

#[test]
fn clone_with_truncation_is_a_datapath_clone() {
    let f = "udp,actions=clone(output(port=2,max_len=20)),output:3";
    assert_eq!(dp(f, &udp(1)), "clone(trunc(20),2),3");
}

#[test]
fn output_trunc_goes_only_to_real_other_ports() {
    let f = "udp,actions=output(port=in_port,max_len=40),output(port=LOCAL,max_len=40),\
             output(port=7,max_len=40),output(port=1,max_len=40),output(port=3,max_len=20)";
    assert_eq!(dp(f, &udp(1)), "trunc(20),3");
    let f = "tcp,actions=output(port=2,max_len=34),mod_nw_dst:10.0.0.77,output(port=3,max_len=200),output:4";
    assert_eq!(
        dp(f, &tcp(1)),
        "trunc(34),2,trunc(200),set(ipv4(dst=10.0.0.77)),3,4"
    );
}

#[test]
fn check_pkt_larger_translates_the_rest_twice() {
    let f = "ip,actions=check_pkt_larger(100)->NXM_NX_REG0[0],resubmit(,1)\n\
             table=1,priority=10,reg0=0x1/0x1,actions=output:2\n\
             table=1,priority=5,actions=output:3";
    let out = run(f, &udp(1));
    assert_eq!(
        format_actions(&out.actions),
        "check_pkt_len(size=100,gt(2),le(3))"
    );
    // The length is the datapath's: nothing of it is in the megaflow, and
    // the register is not either.
    assert_eq!(out.drop_reason, None);
    assert!(out.wc.words()[DP_WORDS..].iter().all(|w| *w == 0));
    // The rest includes the rule's action set and goto_table.
    let f =
        "ip,actions=check_pkt_larger(64)->NXM_NX_REG1[3],write_actions(output:4),goto_table:1\n\
             table=1,reg1=0x8/0x8,actions=output:2\ntable=1,priority=0,actions=drop";
    assert_eq!(dp(f, &udp(1)), "check_pkt_len(size=64,gt(2,4),le(4))");
}

#[test]
fn exit_ends_everything_including_the_action_set() {
    let f =
        "udp,actions=write_actions(output:2),goto_table:1\ntable=1,actions=output:3,exit,output:4";
    assert_eq!(dp(f, &udp(1)), "3");
}
