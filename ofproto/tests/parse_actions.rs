//! Action and instruction syntax: every action, the OpenFlow 1.3 lowering
//! OVS applies (mod_* -> set_field, mod_vlan_vid -> push_vlan + set_field),
//! and OVS's consistency checks.

use ofproto::parse::{format_rule, parse_flow};
use ofproto::{FieldId, OfAction, OutputPort, SubField};

/// The `actions=` part of the dump-flows form of `line`.
fn acts(line: &str) -> String {
    let r = parse_flow(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let s = format_rule(&r);
    s[s.find("actions=").unwrap() + 8..].to_string()
}

fn apply(line: &str) -> Vec<OfAction> {
    parse_flow(line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .instructions
        .apply
}

fn err(line: &str) -> String {
    match parse_flow(line) {
        Ok(r) => panic!("{line}: accepted as {}", format_rule(&r)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn outputs() {
    assert_eq!(
        apply("actions=output:2"),
        vec![OfAction::Output(OutputPort::Port(2))]
    );
    assert_eq!(acts("actions=output:2,3"), "output:2,output:3");
    assert_eq!(
        acts("actions=in_port,all,flood,local,controller"),
        "IN_PORT,ALL,FLOOD,LOCAL,CONTROLLER:65535"
    );
    assert_eq!(
        acts("actions=output:in_port,output:ALL,output:controller"),
        "IN_PORT,ALL,CONTROLLER:65535"
    );
    assert_eq!(acts("actions=output:65000"), "output:65000");
    assert_eq!(
        apply("actions=output:NXM_NX_REG0[]"),
        vec![OfAction::OutputReg(SubField {
            field: FieldId::Reg(0),
            ofs: 0,
            n_bits: 32
        })]
    );
    assert_eq!(
        acts("actions=output:reg1[0..15]"),
        "output:NXM_NX_REG1[0..15]"
    );
    assert_eq!(acts("actions=OUTPUT:2"), "output:2");
    assert_eq!(acts("actions=normal"), "NORMAL");
    assert_eq!(acts("actions=output:NORMAL"), "NORMAL");
    assert_eq!(
        apply("actions=NORMAL"),
        vec![OfAction::Output(OutputPort::Normal)]
    );
    assert!(err("actions=output:70000").contains("out of range"));
    assert!(err("actions=output:bogus").contains("output to unknown port"));
    assert!(err("actions=output:ANY").contains("unknown port"));
    assert!(err("actions=controller(reason=no_match)").contains("controller with options"));
}

#[test]
fn drop_and_empty() {
    assert_eq!(acts("actions=drop"), "drop");
    assert_eq!(acts("actions="), "drop");
    assert!(apply("actions=drop").is_empty());
    assert!(err("actions=drop,output:1").contains("\"drop\" must not be accompanied"));
    assert!(err("priority=1").contains("must specify an action"));
}

#[test]
fn l2_l3_l4_rewrites_become_set_field() {
    assert_eq!(
        acts("actions=mod_dl_src:02:00:00:00:00:fe,mod_dl_dst:02:00:00:00:02:01"),
        "set_field:02:00:00:00:00:fe->eth_src,set_field:02:00:00:00:02:01->eth_dst"
    );
    assert_eq!(
        apply("actions=mod_dl_src:00:00:00:00:00:01"),
        vec![OfAction::SetField {
            field: FieldId::DlSrc,
            value: 1,
            mask: 0xffff_ffff_ffff
        }]
    );
    assert_eq!(
        acts("ip,actions=mod_nw_src:10.9.9.9,mod_nw_dst:10.0.0.1"),
        "set_field:10.9.9.9->ip_src,set_field:10.0.0.1->ip_dst"
    );
    assert_eq!(acts("ip,actions=mod_nw_tos:0x68"), "set_field:26->ip_dscp");
    assert_eq!(
        apply("ip,actions=mod_nw_tos:184"),
        vec![OfAction::SetField {
            field: FieldId::IpDscp,
            value: 46,
            mask: 0x3f
        }]
    );
    assert_eq!(acts("ipv6,actions=mod_nw_ecn:3"), "set_field:3->nw_ecn");
    assert_eq!(acts("ip,actions=mod_nw_ttl:1"), "mod_nw_ttl:1");
    assert_eq!(
        apply("ip,actions=mod_nw_ttl:9"),
        vec![OfAction::SetNwTtl(9)]
    );
    assert_eq!(acts("ip,actions=set_nw_ttl:7"), "mod_nw_ttl:7");
    assert_eq!(
        acts("udp,actions=mod_tp_src:4321,mod_tp_dst:53"),
        "set_field:4321->udp_src,set_field:53->udp_dst"
    );
    assert_eq!(
        acts("tcp6,actions=mod_tp_dst:8080"),
        "set_field:8080->tcp_dst"
    );
    assert_eq!(acts("sctp,actions=mod_tp_src:1"), "set_field:1->sctp_src");
    assert!(err("actions=mod_nw_src:1.2.3.4").contains("mod_nw_src requires ip"));
    assert!(err("ipv6,actions=mod_nw_dst:1.2.3.4").contains("mod_nw_dst requires ip"));
    assert!(err("ip,actions=mod_nw_tos:1").contains("not a valid TOS"));
    assert!(err("ip,actions=mod_nw_ecn:4").contains("not a valid ECN"));
    assert!(err("arp,actions=mod_nw_ttl:1").contains("requires ip or ipv6"));
    assert!(err("ip,actions=mod_tp_src:1").contains("requires tcp, udp or sctp"));
    assert!(err("udp,nw_frag=later,actions=mod_tp_src:1").contains("nw_frag=later"));
    assert!(err("actions=mod_dl_src:1:2:3").contains("invalid Ethernet address"));
}

#[test]
fn ttl_and_mpls() {
    assert_eq!(
        acts("ip,actions=output:2,dec_ttl,output:3"),
        "output:2,dec_ttl,output:3"
    );
    assert_eq!(acts("ipv6,actions=dec_ttl"), "dec_ttl");
    assert!(err("arp,actions=dec_ttl").contains("dec_ttl requires ip or ipv6"));
    assert_eq!(acts("ip,actions=dec_ttl(1,2)"), "dec_ttl(1,2)");
    assert_eq!(
        acts("mpls,actions=dec_mpls_ttl,set_mpls_ttl:64"),
        "dec_mpls_ttl,set_mpls_ttl(64)"
    );
    assert_eq!(
        apply("mpls,actions=set_mpls_ttl:1"),
        vec![OfAction::SetMplsTtl(1)]
    );
    assert_eq!(
        acts("mpls,actions=set_mpls_label:17,set_mpls_tc:6"),
        "set_field:17->mpls_label,set_field:6->mpls_tc"
    );
    assert!(err("ip,actions=dec_mpls_ttl").contains("requires mpls"));
    assert!(err("ip,actions=set_mpls_label:1").contains("requires mpls"));
    assert!(err("mpls,actions=set_mpls_label:0x100000").contains("not a valid MPLS label"));
    assert!(err("mpls,actions=set_mpls_tc:8").contains("not a valid MPLS TC"));
    // push_mpls makes the packet MPLS for the following actions.
    assert_eq!(
        acts("udp,actions=push_mpls:0x8847,set_field:849109->mpls_label,output:1"),
        "push_mpls:0x8847,set_field:849109->mpls_label,output:1"
    );
    assert_eq!(
        apply("ip,actions=push_mpls:0x8848"),
        vec![OfAction::PushMpls(0x8848)]
    );
    assert!(err("ip,actions=push_mpls:0x0800").contains("not an MPLS ethertype"));
    assert!(err("udp,actions=push_mpls:0x8847,mod_tp_src:1").contains("requires tcp, udp or sctp"));
    assert!(err("tcp,actions=push_mpls:0x8847,dec_ttl").contains("dec_ttl requires ip"));
    assert_eq!(
        acts("mpls,actions=pop_mpls:0x0800,dec_ttl"),
        "pop_mpls:0x0800,dec_ttl"
    );
    assert!(err("ip,actions=pop_mpls:0x0800").contains("pop_mpls requires mpls"));
}

#[test]
fn vlan_actions() {
    // mod_vlan_vid on a flow without a tag pushes one (OpenFlow 1.3).
    assert_eq!(
        acts("actions=mod_vlan_vid:1382"),
        "push_vlan:0x8100,set_field:5478->vlan_vid"
    );
    assert_eq!(
        apply("actions=mod_vlan_vid:10"),
        vec![
            OfAction::PushVlan(0x8100),
            OfAction::SetField {
                field: FieldId::VlanVid,
                value: 0x100a,
                mask: 0x1fff
            }
        ]
    );
    assert_eq!(
        acts("dl_vlan=5,actions=mod_vlan_vid:10"),
        "set_field:4106->vlan_vid"
    );
    assert_eq!(
        acts("vlan_tci=0x1000/0x1000,actions=mod_vlan_vid:10"),
        "set_field:4106->vlan_vid"
    );
    assert_eq!(
        acts("vlan_tci=0,actions=mod_vlan_vid:10"),
        "push_vlan:0x8100,set_field:4106->vlan_vid"
    );
    assert_eq!(
        acts("actions=mod_vlan_vid:10,mod_vlan_vid:11"),
        "push_vlan:0x8100,set_field:4106->vlan_vid,set_field:4107->vlan_vid"
    );
    assert_eq!(
        acts("actions=mod_vlan_pcp:5"),
        "push_vlan:0x8100,set_field:5->vlan_pcp"
    );
    assert_eq!(
        acts("dl_vlan=3,actions=mod_vlan_pcp:5"),
        "set_field:5->vlan_pcp"
    );
    assert_eq!(
        acts("dl_vlan=3,actions=set_vlan_vid:4"),
        "set_field:4100->vlan_vid"
    );
    assert!(err("actions=set_vlan_vid:4").contains("needs a VLAN tag"));
    assert!(err("actions=set_vlan_pcp:4").contains("needs a VLAN tag"));
    assert!(err("actions=mod_vlan_vid:4096").contains("not a valid VLAN VID"));
    assert!(err("actions=mod_vlan_pcp:8").contains("not a valid VLAN PCP"));
    // set_field on vlan_vid needs a tag in the match (or pushed before).
    assert!(err("actions=set_field:4106->vlan_vid").contains("needs a VLAN tag"));
    assert_eq!(
        acts("actions=push_vlan:0x8100,set_field:4106->vlan_vid"),
        "push_vlan:0x8100,set_field:4106->vlan_vid"
    );
    assert_eq!(
        acts("vlan_tci=0,actions=push_vlan:0x88a8,set_field:4320->vlan_vid"),
        "push_vlan:0x88a8,set_field:4320->vlan_vid"
    );
    assert!(err("dl_vlan=1,actions=set_field:10->vlan_vid").contains("0x1000"));
    assert!(err("actions=push_vlan:0x9100").contains("not a valid VLAN ethertype"));
    // pop_vlan needs a tag.
    assert_eq!(
        acts("dl_vlan=10,actions=pop_vlan,output:2"),
        "pop_vlan,output:2"
    );
    assert_eq!(acts("dl_vlan=20,actions=strip_vlan"), "pop_vlan");
    assert_eq!(
        apply("dl_vlan=20,actions=strip_vlan"),
        vec![OfAction::PopVlan]
    );
    let e = err("priority=5,ip,actions=output:1,pop_vlan");
    assert!(e.starts_with("col 32: pop_vlan needs a VLAN tag"), "{e}");
    assert!(err("dl_vlan=10,actions=pop_vlan,pop_vlan").contains("pop_vlan needs"));
    assert_eq!(
        acts("actions=push_vlan:0x8100,pop_vlan"),
        "push_vlan:0x8100,pop_vlan"
    );
    // At most two tags.
    assert_eq!(
        acts("actions=push_vlan:0x8100,push_vlan:0x8100"),
        "push_vlan:0x8100,push_vlan:0x8100"
    );
    assert!(err("dl_vlan=1,actions=push_vlan:0x8100,push_vlan:0x8100").contains("at most 2"));
    // vlan_pcp set_field needs a tag too (OVS: prerequisite VLAN VID).
    assert!(err("actions=set_field:3->vlan_pcp").contains("needs a VLAN tag"));
    assert_eq!(
        acts("dl_vlan=1,actions=set_field:3->vlan_pcp"),
        "set_field:3->vlan_pcp"
    );
}

#[test]
fn set_field_every_field() {
    let cases = [
        (
            "ip",
            "set_field:10.0.0.1->ip_src",
            "set_field:10.0.0.1->ip_src",
        ),
        (
            "ip",
            "set_field:10.0.0.1->nw_src",
            "set_field:10.0.0.1->ip_src",
        ),
        (
            "ip",
            "set_field:10.0.0.1->ipv4_src",
            "set_field:10.0.0.1->ip_src",
        ),
        (
            "ip",
            "set_field:10.0.0.2->ipv4_dst",
            "set_field:10.0.0.2->ip_dst",
        ),
        (
            "",
            "set_field:00:00:00:00:bb:02->eth_dst",
            "set_field:00:00:00:00:bb:02->eth_dst",
        ),
        (
            "",
            "set_field:00:00:00:00:bb:02->dl_src",
            "set_field:00:00:00:00:bb:02->eth_src",
        ),
        (
            "ipv6",
            "set_field:2001:db8::99->ipv6_src",
            "set_field:2001:db8::99->ipv6_src",
        ),
        (
            "ipv6",
            "set_field:fe80::1->ipv6_dst",
            "set_field:fe80::1->ipv6_dst",
        ),
        (
            "ipv6",
            "set_field:0xd8b5d->ipv6_label",
            "set_field:0xd8b5d->ipv6_label",
        ),
        ("ip", "set_field:46->ip_dscp", "set_field:46->ip_dscp"),
        ("ip", "set_field:184->nw_tos", "set_field:184->nw_tos"),
        ("ip", "set_field:2->ip_ecn", "set_field:2->nw_ecn"),
        ("ip", "set_field:250->nw_ttl", "set_field:250->nw_ttl"),
        ("tcp", "set_field:80->tcp_src", "set_field:80->tcp_src"),
        ("tcp", "set_field:80->tp_dst", "set_field:80->tcp_dst"),
        ("udp", "set_field:0->udp_dst", "set_field:0->udp_dst"),
        ("sctp6", "set_field:9->sctp_dst", "set_field:9->sctp_dst"),
        ("icmp", "set_field:3->icmp_type", "set_field:3->icmp_type"),
        ("icmp", "set_field:1->icmp_code", "set_field:1->icmp_code"),
        (
            "icmp6",
            "set_field:129->icmpv6_type",
            "set_field:129->icmpv6_type",
        ),
        ("arp", "set_field:2->arp_op", "set_field:2->arp_op"),
        (
            "arp",
            "set_field:1.2.3.4->arp_spa",
            "set_field:1.2.3.4->arp_spa",
        ),
        (
            "arp",
            "set_field:00:00:00:00:00:2a->arp_sha",
            "set_field:00:00:00:00:00:2a->arp_sha",
        ),
        (
            "mpls",
            "set_field:999->mpls_label",
            "set_field:999->mpls_label",
        ),
        ("mpls", "set_field:7->mpls_tc", "set_field:7->mpls_tc"),
        ("mpls", "set_field:9->mpls_ttl", "set_field:9->mpls_ttl"),
        ("", "set_field:1->reg0", "set_field:0x1->reg0"),
        (
            "",
            "set_field:0xffffffff->reg15",
            "set_field:0xffffffff->reg15",
        ),
        ("", "set_field:0->reg3", "set_field:0->reg3"),
        (
            "",
            "set_field:0x1122334455667788->xreg2",
            "set_field:0x1122334455667788->xreg2",
        ),
        ("", "set_field:0x1->xxreg3", "set_field:0x1->xxreg3"),
        (
            "",
            "set_field:0xdeadbeef00000000->metadata",
            "set_field:0xdeadbeef00000000->metadata",
        ),
        ("", "set_field:0x5->tun_id", "set_field:0x5->tun_id"),
        ("", "set_field:0x5->pkt_mark", "set_field:0x5->pkt_mark"),
        (
            "",
            "set_field:0x1000->vlan_tci",
            "set_field:0x1000->vlan_tci",
        ),
        (
            "icmp6,icmp_type=135",
            "set_field:::1->nd_target",
            "set_field:::1->nd_target",
        ),
        (
            "icmp6,icmp_type=135",
            "set_field:00:00:00:00:00:01->nd_sll",
            "set_field:00:00:00:00:00:01->nd_sll",
        ),
        ("", "set_field:3->in_port", "set_field:3->in_port"),
    ];
    for (m, a, want) in cases {
        let line = format!("{m},actions={a}");
        assert_eq!(acts(&line), want, "{line}");
    }
    assert_eq!(
        apply("ipv6,actions=set_field:2001:db8::1->ipv6_dst"),
        vec![OfAction::SetField {
            field: FieldId::Ipv6Dst,
            value: 0x2001_0db8_0000_0000_0000_0000_0000_0001,
            mask: u128::MAX
        }]
    );
}

#[test]
fn set_field_checks() {
    assert!(err("actions=set_field:1.2.3.4->ip_src").contains("set_field on ip_src requires ip"));
    assert!(err("arp,actions=set_field:1.2.3.4->nw_src").contains("requires ip"));
    assert!(err("udp,actions=set_field:1->tcp_src").contains("requires tcp or tcp6"));
    assert!(err("udp,actions=set_field:1->tp_src").contains("requires tcp or tcp6"));
    assert!(err("ip,actions=set_field:1->icmp_type").contains("requires icmp"));
    assert!(err("ip,actions=set_field:1->mpls_label").contains("requires mpls"));
    assert!(err("ip,actions=set_field:6->nw_proto").contains("read-only"));
    assert!(err("mpls,actions=set_field:1->mpls_bos").contains("read-only"));
    assert!(err("actions=set_field:0x800->eth_type").contains("read-only"));
    assert!(err("actions=set_field:1->bogus").contains("not a valid OXM field name"));
    assert!(err("actions=set_field:1").contains("missing `->'"));
    assert!(err("actions=set_field:1->").contains("missing field name"));
    assert!(err("actions=set_field:0x100000000->reg0").contains("too large"));
    assert!(err("ip,actions=set_field:64->ip_dscp").contains("too large"));
    assert!(err("actions=set_field:1->dl_vlan").contains("vlan_vid"));
    assert!(err("ip,actions=set_field:1/1->nw_ttl").contains("cannot be masked"));
}

#[test]
fn masked_set_field_is_a_load() {
    // OpenFlow 1.3 has no masked set-field; OVS sends NXAST_REG_LOAD.
    assert_eq!(
        acts("actions=set_field:0x1/0xff->reg0"),
        "load:0x1->NXM_NX_REG0[0..7]"
    );
    assert_eq!(
        apply("actions=set_field:0x1/0xff->reg0"),
        vec![OfAction::Load {
            dst: SubField {
                field: FieldId::Reg(0),
                ofs: 0,
                n_bits: 8
            },
            value: 1
        }]
    );
    assert_eq!(
        apply("actions=load:0x1->NXM_NX_XXREG0[]"),
        vec![
            OfAction::Load {
                dst: SubField {
                    field: FieldId::Xxreg(0),
                    ofs: 0,
                    n_bits: 64
                },
                value: 1
            },
            OfAction::Load {
                dst: SubField {
                    field: FieldId::Xxreg(0),
                    ofs: 64,
                    n_bits: 64
                },
                value: 0
            },
        ]
    );
    assert_eq!(
        acts("actions=set_field:0x12/0xf0f->reg1"),
        "load:0x2->NXM_NX_REG1[0..3],load:0->NXM_NX_REG1[8..11]"
    );
    assert_eq!(
        acts("actions=set_field:0x10/0xf0->metadata"),
        "load:0x1->OXM_OF_METADATA[4..7]"
    );
    assert_eq!(
        acts("actions=set_field:00:00:00:00:00:01/00:00:00:00:00:ff->eth_dst"),
        "load:0x1->NXM_OF_ETH_DST[0..7]"
    );
}

#[test]
fn load() {
    assert_eq!(
        acts("actions=load:5->NXM_NX_REG4[]"),
        "load:0x5->NXM_NX_REG4[]"
    );
    assert_eq!(
        apply("actions=load:0x55->NXM_NX_REG5[]"),
        vec![OfAction::Load {
            dst: SubField {
                field: FieldId::Reg(5),
                ofs: 0,
                n_bits: 32
            },
            value: 0x55
        }]
    );
    assert_eq!(
        acts("actions=load:0x1->NXM_OF_ETH_SRC[40]"),
        "load:0x1->NXM_OF_ETH_SRC[40]"
    );
    assert_eq!(
        acts("actions=load:0xaabbccddeeff->NXM_OF_ETH_DST[]"),
        "load:0xaabbccddeeff->NXM_OF_ETH_DST[]"
    );
    assert_eq!(
        acts("actions=load:0->reg2[16..31]"),
        "load:0->NXM_NX_REG2[16..31]"
    );
    assert_eq!(
        acts("dl_vlan=10,actions=load:20->OXM_OF_VLAN_VID[]"),
        "load:0x14->OXM_OF_VLAN_VID[]"
    );
    assert_eq!(
        acts("actions=load:1->NXM_OF_VLAN_TCI[12]"),
        "load:0x1->NXM_OF_VLAN_TCI[12]"
    );
    assert_eq!(
        acts("ip,actions=load:0x0a000001->NXM_OF_IP_SRC[]"),
        "load:0xa000001->NXM_OF_IP_SRC[]"
    );
    assert_eq!(
        acts("udp,actions=load:53->NXM_OF_UDP_DST[]"),
        "load:0x35->NXM_OF_UDP_DST[]"
    );
    assert_eq!(
        acts("actions=load:0x1->OXM_OF_METADATA[]"),
        "load:0x1->OXM_OF_METADATA[]"
    );
    assert_eq!(
        acts("actions=load:9->NXM_OF_IN_PORT[]"),
        "load:0x9->NXM_OF_IN_PORT[]"
    );
    assert_eq!(
        acts("actions=load:0x10->NXM_NX_TUN_ID[]"),
        "load:0x10->NXM_NX_TUN_ID[]"
    );
    assert_eq!(
        acts("actions=load:3->OXM_OF_PKT_REG1[0..3]"),
        "load:0x3->OXM_OF_PKT_REG1[0..3]"
    );
    // Loads wider than 64 bits are printed as several (NXAST_REG_LOAD is 64 bits).
    assert_eq!(
        acts("actions=load:0x1->NXM_NX_XXREG0[]"),
        "load:0x1->NXM_NX_XXREG0[0..63],load:0->NXM_NX_XXREG0[64..127]"
    );
    assert!(err("actions=load:0x100->NXM_NX_REG0[0..7]").contains("does not fit into 8 bits"));
    assert!(err("actions=load:1->NXM_OF_IP_SRC[]").contains("load on NXM_OF_IP_SRC[] requires ip"));
    assert!(err("actions=load:1->OXM_OF_VLAN_VID[]").contains("needs a VLAN tag"));
    assert!(err("actions=load:1->NXM_OF_ETH_TYPE[]").contains("read-only"));
    assert!(err("actions=load:x->NXM_NX_REG0[]").contains("cannot parse integer"));
    assert!(err("actions=load:1->NXM_NX_REG0[0..32]").contains("ending bit 32"));
    assert!(err("actions=load:1->NXM_NX_BOGUS[]").contains("unknown field"));
}

#[test]
fn moves() {
    assert_eq!(
        acts("actions=move:NXM_OF_ETH_SRC[0..31]->NXM_NX_REG0[],move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[]"),
        "move:NXM_OF_ETH_SRC[0..31]->NXM_NX_REG0[],move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[]"
    );
    assert_eq!(
        apply("actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15]"),
        vec![OfAction::Move {
            src: SubField {
                field: FieldId::InPort,
                ofs: 0,
                n_bits: 16
            },
            dst: SubField {
                field: FieldId::Reg(1),
                ofs: 0,
                n_bits: 16
            }
        }]
    );
    assert_eq!(
        acts("tcp,actions=move:NXM_OF_TCP_DST[]->NXM_NX_REG6[0..15]"),
        "move:NXM_OF_TCP_DST[]->NXM_NX_REG6[0..15]"
    );
    assert_eq!(
        acts("udp,actions=move:udp_src[]->reg0[16..31]"),
        "move:NXM_OF_UDP_SRC[]->NXM_NX_REG0[16..31]"
    );
    assert_eq!(
        acts("actions=move:reg0->reg1"),
        "move:NXM_NX_REG0[]->NXM_NX_REG1[]"
    );
    assert!(err("actions=move:NXM_OF_ETH_SRC[]->NXM_NX_REG0[]")
        .contains("48 bits wide but destination is 32"));
    assert!(err("udp,actions=move:NXM_OF_TCP_SRC[]->NXM_NX_REG0[0..15]")
        .contains("move from NXM_OF_TCP_SRC[] requires tcp"));
    assert!(err("actions=move:NXM_NX_REG0[0..15]->NXM_OF_TCP_SRC[]")
        .contains("move to NXM_OF_TCP_SRC[] requires tcp"));
    assert!(err("ip,actions=move:NXM_NX_REG0[0..7]->NXM_OF_IP_PROTO[]").contains("read-only"));
    assert!(err("actions=move:NXM_NX_REG0[]NXM_NX_REG1[]").contains("missing `->'"));
}

#[test]
fn resubmit() {
    assert_eq!(
        apply("actions=resubmit(,1)"),
        vec![OfAction::Resubmit {
            in_port: None,
            table: Some(1)
        }]
    );
    assert_eq!(
        apply("actions=resubmit:3"),
        vec![OfAction::Resubmit {
            in_port: Some(3),
            table: None
        }]
    );
    assert_eq!(
        apply("actions=resubmit(2,4)"),
        vec![OfAction::Resubmit {
            in_port: Some(2),
            table: Some(4)
        }]
    );
    assert_eq!(
        apply("actions=resubmit(in_port,4)"),
        vec![OfAction::Resubmit {
            in_port: None,
            table: Some(4)
        }]
    );
    assert_eq!(
        acts("actions=resubmit(,1),resubmit(3,1),resubmit:2,resubmit(2)"),
        "resubmit(,1),resubmit(3,1),resubmit:2,resubmit:2"
    );
    // A table may be the current or an earlier one (unlike goto_table).
    assert_eq!(
        acts("table=5,actions=resubmit(,5),resubmit(,0)"),
        "resubmit(,5),resubmit(,0)"
    );
    assert!(err("actions=resubmit(,)").contains("at least one"));
    assert!(err("actions=resubmit(in_port)").contains("at least one"));
    assert!(err("actions=resubmit(,300)").contains("unknown table"));
    assert!(err("actions=resubmit(LOCAL,1)").contains("reserved port"));
    assert!(err("actions=resubmit(,1,ct)").contains("not supported"));
}

#[test]
fn instructions() {
    let r = parse_flow(
        "table=1,ip,actions=dec_ttl,clear_actions,write_actions(mod_nw_dst:10.9.9.9,output:2),\
         write_metadata:0x1/0xff,goto_table:3",
    )
    .unwrap();
    let i = &r.instructions;
    assert_eq!(i.apply, vec![OfAction::DecTtl]);
    assert!(i.clear_actions);
    assert_eq!(
        i.write_actions,
        Some(vec![
            OfAction::SetField {
                field: FieldId::NwDst,
                value: 0x0a09_0909,
                mask: 0xffff_ffff
            },
            OfAction::Output(OutputPort::Port(2))
        ])
    );
    assert_eq!(i.write_metadata, Some((1, 0xff)));
    assert_eq!(i.goto_table, Some(3));
    assert_eq!(
        format_rule(&r),
        "table=1, ip actions=dec_ttl,clear_actions,write_actions(set_field:10.9.9.9->ip_dst,output:2),\
         write_metadata:0x1/0xff,goto_table:3"
    );
    assert_eq!(
        acts("actions=write_metadata:0x8000000000000001"),
        "write_metadata:0x8000000000000001"
    );
    assert_eq!(acts("actions=write_actions(drop)"), "write_actions(drop)");
    assert_eq!(
        acts("actions=write_actions(in_port)"),
        "write_actions(IN_PORT)"
    );
    assert_eq!(acts("actions=clear_actions"), "clear_actions");
    // write_actions contents are checked against the match.
    assert!(err("actions=write_actions(dec_ttl)").contains("dec_ttl requires ip"));
    assert!(
        err("actions=write_actions(output:NXM_NX_REG0[])").contains("not allowed in write_actions")
    );
    assert!(err("actions=write_actions(write_actions(output:1))").contains("not allowed here"));
    assert!(err("actions=write_actions(goto_table:1)")
        .contains("goto_table instruction not allowed here"));
    assert_eq!(
        acts("actions=write_actions(mod_vlan_vid:5)"),
        "write_actions(push_vlan:0x8100,set_field:4101->vlan_vid)"
    );
    // Order and uniqueness of instructions (OVS ofpacts_verify).
    let e = err("actions=goto_table:1,output:2");
    assert!(
        e.contains("invalid instruction ordering: apply_actions must appear before goto_table"),
        "{e}"
    );
    assert!(
        err("actions=write_actions(output:1),write_actions(output:2)")
            .contains("duplicate write_actions")
    );
    assert!(err("actions=write_metadata:1,clear_actions")
        .contains("clear_actions must appear before write_metadata"));
    assert!(err("actions=apply_actions(output:1)").contains("default instruction"));
    // goto_table must go forward.
    assert!(err("table=3,actions=goto_table:3").contains("later table"));
    assert!(err("table=3,actions=goto_table:1").contains("later table"));
    assert!(err("actions=goto_table:255").contains("unknown table"));
    assert_eq!(acts("actions=goto_table:254"), "goto_table:254");
}

#[test]
fn unknown_and_unsupported() {
    assert!(err("actions=frobnicate").contains("unknown action frobnicate"));
    assert!(err("actions=ct(commit,alg=ftp)").contains("not supported yet"));
    assert_eq!(acts("actions=group:1"), "group:1");
    assert!(err("actions=2:3").contains("unexpected value"));
    assert_eq!(acts("actions=set_tunnel:0x5"), "set_field:0x5->tun_id");
}

#[test]
fn action_error_columns() {
    let line = "priority=10,ip,actions=output:2,mod_tp_dst:80";
    let e = parse_flow(line).unwrap_err();
    assert_eq!(e.col, line.find("mod_tp_dst").unwrap() + 1);
    let line = "ip,actions=set_field:1.2.3.4->ip_src,load:0x100->NXM_NX_REG0[0..7]";
    let e = parse_flow(line).unwrap_err();
    assert_eq!(e.col, line.find("0x100").unwrap() + 1);
}

// The forms below were checked against `ovs-ofctl -O OpenFlow13 dump-flows`
// of OVS 3.1 (conformance cases hw_clone_isolation, hw_check_pkt_larger_len,
// hw_trunc_output, hw_parse_noop_actions, hw_dec_ttl_ipv6_more,
// hw_parse_prereq_dropped, and try_case.py runs for the errors).

#[test]
fn clone_is_normalised_inside() {
    assert_eq!(
        acts("tcp,actions=clone(push_vlan:0x8100,set_field:4101->vlan_vid,output:2,clone(mod_tp_dst:9,output:3)),mod_dl_dst:00:00:00:00:00:dd,output:4"),
        "clone(push_vlan:0x8100,set_field:4101->vlan_vid,output:2,clone(set_field:9->tcp_dst,output:3)),set_field:00:00:00:00:00:dd->eth_dst,output:4"
    );
    assert_eq!(
        acts("icmp,actions=clone(load:1->NXM_NX_REG0[],mod_dl_src:00:00:00:00:00:ee),resubmit(,1)"),
        "clone(load:0x1->NXM_NX_REG0[],set_field:00:00:00:00:00:ee->eth_src),resubmit(,1)"
    );
    // The clone's actions are checked against the flow at the clone.
    assert!(err("actions=clone(mod_nw_dst:10.0.0.1)").contains("requires ip"));
    assert!(err("ip,actions=write_actions(clone(output:2))").contains("clone"));
}

#[test]
fn check_pkt_larger_forms() {
    assert_eq!(
        acts("ip,actions=check_pkt_larger(100)->NXM_NX_REG0[0],resubmit(,1)"),
        "check_pkt_larger(100)->NXM_NX_REG0[0],resubmit(,1)"
    );
    assert!(err("ip,actions=check_pkt_larger(100)->NXM_NX_REG0[0..1]")
        .contains("Only 1-bit destination field is allowed"));
    assert!(err("ip,actions=check_pkt_larger(100)").contains("->"));
}

#[test]
fn output_trunc_forms() {
    assert_eq!(
        acts("tcp,actions=output(port=2,max_len=34),mod_nw_dst:10.0.0.77,output(port=3,max_len=200),output:4"),
        "output(port=2,max_len=34),set_field:10.0.0.77->ip_dst,output(port=3,max_len=200),output:4"
    );
    assert_eq!(
        acts("actions=output(port=in_port,max_len=40),output(port=LOCAL,max_len=40)"),
        "output(port=IN_PORT,max_len=40),output(port=LOCAL,max_len=40)"
    );
    assert!(err("actions=output(port=2,max_len=10)")
        .contains("max_len 10 is less than the minimum value 14"));
    assert!(err("actions=output(port=2,max_len=60,foo=1)").contains("invalid key 'foo'"));
}

#[test]
fn noop_actions_print_as_ovs_stores_them() {
    assert_eq!(
        acts("udp,actions=note:de.ad.be.ef,set_queue:1,output:2,pop_queue"),
        "note:de.ad.be.ef.00.00,set_queue:1,output:2,pop_queue"
    );
    // 7 note bytes + 10 header bytes round up to 24: 14 bytes of note.
    assert_eq!(
        acts("actions=note:01020304050607"),
        "note:01.02.03.04.05.06.07.00.00.00.00.00.00.00"
    );
    assert_eq!(
        acts("icmp,actions=sample(probability=65535,collector_set_id=1),output:3,exit,output:2"),
        "sample(probability=65535,collector_set_id=1,obs_domain_id=0,obs_point_id=0),output:3,exit,output:2"
    );
    assert_eq!(
        acts("tcp,actions=fin_timeout(idle_timeout=10),output:2"),
        "fin_timeout(idle_timeout=10),output:2"
    );
    assert!(err("actions=note:zz").contains("bad hex digit"));
}

#[test]
fn dec_ttl_with_controller_ids() {
    assert_eq!(
        acts("icmp6,actions=dec_ttl(5,6),output:4"),
        "dec_ttl(5,6),output:4"
    );
    assert_eq!(acts("ip,actions=dec_ttl(0),output:4"), "dec_ttl,output:4");
    assert!(err("arp,actions=dec_ttl(5)").contains("dec_ttl requires ip"));
}

#[test]
fn match_fields_without_prerequisites_are_dropped() {
    let m = |line: &str| {
        let r = parse_flow(line).unwrap();
        format_rule(&r)
    };
    assert!(
        m("priority=50,udp,tcp_flags=+syn,actions=output:2").starts_with("priority=50,udp actions")
    );
    assert!(m("priority=40,ip,tp_dst=53,actions=output:3").starts_with("priority=40,ip actions"));
    assert!(m("priority=30,ipv6,nd_target=2001:db8::1,actions=output:4")
        .starts_with("priority=30,ipv6 actions"));
    assert!(m("priority=20,nw_src=10.0.0.1,actions=output:5").starts_with("priority=20 actions"));
    // What OVS itself rejects stays an error.
    assert!(parse_flow("tcp,nw_frag=later,tp_dst=80,actions=drop").is_err());
}

#[test]
fn new_action_forms_reparse_from_their_dump_form() {
    for line in [
        "tcp,actions=clone(push_vlan:0x8100,set_field:4101->vlan_vid,output:2,clone(mod_tp_dst:9,output:3)),output:4",
        "actions=clone()",
        "ip,actions=check_pkt_larger(100)->NXM_NX_REG0[0],resubmit(,1)",
        "actions=output(port=in_port,max_len=40),output(port=LOCAL,max_len=40),output(port=3,max_len=14)",
        "udp,actions=note:de.ad.be.ef,set_queue:1,output:2,pop_queue",
        "actions=note:",
        "icmp,actions=sample(probability=1,collector_set_id=1,obs_domain_id=2,obs_point_id=3),exit",
        "tcp,actions=fin_timeout(idle_timeout=10,hard_timeout=20),fin_timeout()",
        "icmp6,actions=dec_ttl(5,6),output:4",
    ] {
        let r = parse_flow(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let s = format_rule(&r);
        let again = parse_flow(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(again, r, "{line} -> {s}");
    }
}

#[test]
fn port_names_resolve_through_the_callers_map() {
    use ofproto::parse::with_port_names;
    let names = || vec![("p1".to_string(), 1), ("p2".to_string(), 2)];
    let r = with_port_names(names(), || {
        parse_flow("in_port=p1,actions=output:p2,output(port=p2,max_len=60),resubmit(p1,1),p2")
    })
    .unwrap();
    assert_eq!(
        format_rule(&r),
        "in_port=1 actions=output:2,output(port=2,max_len=60),resubmit(1,1),output:2"
    );
    // Names are case-sensitive and only valid while the map is in force.
    assert!(with_port_names(names(), || parse_flow("in_port=P1,actions=drop")).is_err());
    assert!(parse_flow("in_port=p1,actions=drop").is_err());
    // Reserved names still win.
    assert_eq!(
        with_port_names(vec![("LOCAL".to_string(), 3)], || acts(
            "actions=output:LOCAL"
        )),
        "LOCAL"
    );
}

// Checked against `ovs-ofctl -O OpenFlow13 parse-flow` of OVS 3.1.
#[test]
fn conntrack_actions() {
    assert_eq!(acts("ip,actions=ct"), "ct()");
    assert_eq!(acts("ip,actions=ct(commit,force)"), "ct(commit,force)");
    assert_eq!(
        acts("ip,actions=ct_clear,ct(zone=5,table=3)"),
        "ct_clear,ct(table=3,zone=5)"
    );
    assert_eq!(
        acts("ip,actions=ct(commit,nat(src=10.0.0.1-10.0.0.9:100-200,random,persistent))"),
        "ct(commit,nat(src=10.0.0.1-10.0.0.9:100-200,persistent,random))"
    );
    assert_eq!(
        acts("ipv6,actions=ct(commit,nat(dst=[fd00::1]:80))"),
        "ct(commit,nat(dst=[fd00::1]:80))"
    );
    assert_eq!(
        acts("ip,actions=ct(commit,zone=NXM_NX_REG1[0..15],exec(set_field:1->ct_mark))"),
        "ct(commit,zone=NXM_NX_REG1[0..15],exec(set_field:0x1->ct_mark))"
    );
    assert!(err("ip,actions=ct(commit,exec(set_field:1->reg0))").contains("ct_mark or ct_label"));
    assert!(err("ip,actions=ct(exec(set_field:1->ct_mark))").contains("requires commit"));
    assert!(err("ip,actions=ct(zone=NXM_NX_REG1[0..7])").contains("16 bits"));
    assert!(err("ip,actions=ct(frob)").contains("unknown ct argument"));
    assert!(err("ip,actions=ct(commit,nat(src=1.2.3))").contains("invalid NAT address"));
}

#[test]
fn conntrack_matches() {
    let f = parse_flow(
        "table=1,ct_state=+trk+est-rpl,ct_zone=10,ct_mark=0x5/0xf,ct_label=0x1,ip,actions=drop",
    )
    .unwrap();
    assert_eq!(f.matches.value.ct_state, 0x22);
    assert_eq!(f.matches.mask.ct_state, 0x2a);
    assert_eq!(f.matches.value.ct_zone, 10);
    assert_eq!(f.matches.mask.ct_mark, 0xf);
    assert_eq!(u128::from_be_bytes(f.matches.value.ct_label), 1);
    assert!(parse_flow("ct_state=+foo,actions=drop").is_err());
    assert!(parse_flow("ct_state=+trk+trk,actions=drop").is_err());
}
