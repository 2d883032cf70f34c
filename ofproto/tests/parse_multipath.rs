//! `multipath`, `bundle` and `bundle_load` syntax: what ovs-ofctl 3.1
//! accepts and how dump-flows prints it back, and the errors it gives
//! (inputs and outputs recorded from ovs-ofctl add-flow / dump-flows).

use ofproto::parse::{format_rule, parse_flow};

fn acts(line: &str) -> String {
    let r = parse_flow(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let s = format_rule(&r);
    s[s.find("actions=").unwrap() + 8..].to_string()
}

fn err(line: &str) -> String {
    match parse_flow(line) {
        Ok(r) => panic!("{line}: accepted as {}", format_rule(&r)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn printed_back_as_ovs_does() {
    for (input, want) in [
        (
            "actions=multipath(SYMMETRIC_L4,70000,HRW,4,0,reg0[0..1])",
            "multipath(symmetric_l4,4464,hrw,4,0,NXM_NX_REG0[0..1])",
        ),
        (
            "actions=bundle(eth_src,0,hrw,ofport,members:2,IN_PORT,LOCAL,65000)",
            "bundle(eth_src,0,hrw,ofport,members:2,IN_PORT,LOCAL,65000)",
        ),
        (
            "actions=bundle(eth_src,0,hrw,ofport,slaves:2,3)",
            "bundle(eth_src,0,hrw,ofport,members:2,3)",
        ),
        (
            "actions=bundle_load(eth_src,0,active_backup,ofport,reg1[],members:2,3)",
            "bundle_load(eth_src,0,active_backup,ofport,NXM_NX_REG1[],members:2,3)",
        ),
        (
            "actions=bundle(eth_src,0,hrw,ofport,members:)",
            "bundle(eth_src,0,hrw,ofport,members:)",
        ),
        (
            "actions=multipath(nw_src, 5, iter_hash, 4, -1, NXM_NX_REG3[2..5])",
            "multipath(nw_src,5,iter_hash,4,4294967295,NXM_NX_REG3[2..5])",
        ),
        (
            "actions=bundle(symmetric_l3,x,active_backup,ofport,members:[2,3])",
            "bundle(symmetric_l3,0,active_backup,ofport,members:2,3)",
        ),
        (
            "actions=multipath(symmetric_l4,50,modulo_n,4,0,reg0[]),output:3",
            "multipath(symmetric_l4,50,modulo_n,4,0,NXM_NX_REG0[]),output:3",
        ),
        (
            "actions=multipath(symmetric_l3l4+udp,1,hash_threshold,65536,0,reg2[])",
            "multipath(symmetric_l3l4+udp,1,hash_threshold,65536,0,NXM_NX_REG2[])",
        ),
    ] {
        assert_eq!(acts(input), want, "{input}");
    }
}

#[test]
fn refused_with_ovs_reasons() {
    for (input, want) in [
        (
            "actions=multipath(symmetric_l4,50,modulo_n,4,0)",
            "symmetric_l4,50,modulo_n,4,0: not enough arguments to multipath action",
        ),
        (
            "actions=multipath(bogus,50,modulo_n,4,0,reg0[])",
            "unknown fields `bogus'",
        ),
        (
            "actions=multipath(symmetric_l4,50,frob,4,0,reg0[])",
            "unknown algorithm `frob'",
        ),
        (
            "actions=multipath(symmetric_l4,50,modulo_n,0,0,reg0[])",
            "n_links 0 is not in valid range 1 to 65536",
        ),
        (
            "actions=multipath(symmetric_l4,50,modulo_n,5,0,reg0[0..1])",
            "2-bit destination field has 4 possible values, less than specified n_links 5",
        ),
        (
            "actions=bundle(eth_src,0,hrw,ofport)",
            "not enough arguments to bundle action",
        ),
        (
            "actions=bundle(eth_src,0,hrw,ofport,foo:2)",
            "missing member delimiter, expected `members', got `foo'",
        ),
        (
            "actions=bundle(eth_src,0,hrw,port,members:2)",
            "unknown member_type `port'",
        ),
        (
            "actions=bundle(eth_src,0,hrw,ofport,members:2,CONTROLLER)",
            "OFPBAC_BAD_OUT_PORT",
        ),
        (
            "actions=bundle_load(eth_src,0,hrw,ofport,reg0[0..7],members:2)",
            "bundle_load action requires at least 16 bit destination",
        ),
        (
            "ip,actions=write_actions(multipath(symmetric_l4,50,modulo_n,4,0,reg0[]))",
            "not allowed in write_actions",
        ),
        (
            "actions=multipath(symmetric_l4,50,modulo_n,4,0,NXM_OF_IP_SRC[0..7])",
            "requires",
        ),
    ] {
        let e = err(input);
        assert!(e.contains(want), "{input}: {e}");
        assert!(e.contains("col "), "{input}: no position in {e}");
    }
}
