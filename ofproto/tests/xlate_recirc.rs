//! Freeze and thaw: a table lookup after `pop_mpls` recirculates (OVS
//! `recirc_for_mpls`), and the upcall of the recirculated packet resumes
//! the frozen translation. Expected datapath actions are OVS 3.1's, from
//! `tools/try_case.py` (also recorded as the conformance cases
//! `hw_mpls_pop_recirc_goto` and `hw_mpls_pop_recirc_resubmit`).

use flowcache::actions::{format_actions, DropReason};
use flowcache::extract::{extract, PacketMeta};
use flowcache::key::FlowKey;
use flowcache::upcall::Translator;
use ofproto::xlate::{xlate, PortRange, XlateOptions};
use ofproto::{parse_flows, Bridge};

const GOTO_FLOWS: &str = "table=0,mpls,actions=pop_mpls:0x0800,goto_table:1
table=1,ip,nw_dst=10.0.0.1,actions=output:2
table=1,ip,nw_dst=10.0.0.2,actions=output:3";

const RESUBMIT_FLOWS: &str = "table=0,mpls,actions=load:0x2->NXM_NX_REG0[],pop_mpls:0x0800,resubmit(,1),output:3,write_actions(output:4)
table=1,reg0=2,ip,nw_dst=10.0.0.1,actions=output:2
table=1,reg0=2,ip,nw_dst=10.0.0.2,actions=clear_actions
table=1,priority=0,actions=resubmit(,2)
table=2,udp,tp_dst=53,actions=mod_nw_dst:10.9.9.9,output:2";

/// MPLS (label 100) over Ethernet carrying UDP 10.0.0.1 -> 10.0.0.`dst`.
const MPLS_TO_1: &str =
    "0000000000020000000000018847000641404500001c00010000401166cf0a0000010a00000104d200350008e6d5";
const MPLS_TO_2: &str =
    "0000000000020000000000018847000641404500001c00010000401166ce0a0000010a00000204d200350008e6d4";
const MPLS_TO_3: &str =
    "0000000000020000000000018847000641404500001c00010000401166cd0a0000010a00000304d200350008e6d3";

use testkit::hex::decode as unhex;

fn key_of(frame: &[u8], recirc_id: u32) -> FlowKey {
    let meta = PacketMeta {
        in_port: 1,
        recirc_id,
        ..Default::default()
    };
    let mut k = FlowKey::default();
    extract(frame, &meta, &mut k).unwrap();
    k
}

/// The frame after `pop_mpls:0x0800` (what the datapath re-extracts).
fn popped(mpls_hex: &str) -> Vec<u8> {
    let f = unhex(mpls_hex);
    let mut out = f[..12].to_vec();
    out.extend_from_slice(&[0x08, 0x00]);
    out.extend_from_slice(&f[18..]);
    out
}

fn bridge(flows: &str, nports: u32) -> Bridge {
    let b = Bridge::new();
    for p in 1..=nports {
        b.add_port(p, &format!("p{p}"));
    }
    b.replace_rules(parse_flows(flows, "test").unwrap())
        .unwrap();
    b
}

fn recirc_id_of(actions: &str) -> u32 {
    let s = actions.split("recirc(0x").nth(1).expect("recirc action");
    u32::from_str_radix(s.trim_end_matches(')'), 16).unwrap()
}

#[test]
fn goto_after_pop_mpls_freezes_and_recirculates() {
    let b = bridge(GOTO_FLOWS, 3);
    let t = b.translate(&key_of(&unhex(MPLS_TO_1), 0));
    let acts = format_actions(&t.actions);
    assert!(
        acts.starts_with("pop_mpls(eth_type=0x800),recirc(0x"),
        "{acts}"
    );
    assert_eq!(t.drop_reason, None);
    assert_eq!(t.mask.recirc_id, u32::MAX, "megaflow matches recirc_id");
    // OVS: Megaflow: recirc_id=0,eth,mpls,in_port=1,mpls_bos=1 — the
    // destination decides nothing before the recirculation.
    assert_eq!(t.mask.nw_dst, 0);
    assert_eq!(b.recirc_ids(), 1);
}

#[test]
fn thaw_resumes_in_the_frozen_table_with_l3_fields() {
    let b = bridge(GOTO_FLOWS, 3);
    let first = b.translate(&key_of(&unhex(MPLS_TO_1), 0));
    let id = recirc_id_of(&format_actions(&first.actions));
    // Same frozen state (the headers are not part of it): same id.
    let second = b.translate(&key_of(&unhex(MPLS_TO_2), 0));
    assert_eq!(recirc_id_of(&format_actions(&second.actions)), id);
    assert_eq!(b.recirc_ids(), 1);

    let r1 = b.translate(&key_of(&popped(MPLS_TO_1), id));
    assert_eq!(format_actions(&r1.actions), "2");
    assert_eq!(r1.mask.recirc_id, u32::MAX);
    assert_eq!(r1.mask.nw_dst, u32::MAX);
    let r2 = b.translate(&key_of(&popped(MPLS_TO_2), id));
    assert_eq!(format_actions(&r2.actions), "3");
    let r3 = b.translate(&key_of(&popped(MPLS_TO_3), id));
    assert_eq!(format_actions(&r3.actions), "drop");
    assert_eq!(r3.drop_reason, Some(DropReason::TableMiss));

    // The id lives while a translation (megaflow) holds it.
    drop((first, second));
    assert_eq!(b.recirc_ids(), 1, "the thawed megaflows still hold it");
    drop((r1, r2, r3));
    assert_eq!(b.recirc_ids(), 0, "freed with the last megaflow");
    let gone = b.translate(&key_of(&popped(MPLS_TO_1), id));
    assert_eq!(gone.drop_reason, Some(DropReason::NoRecircContext));
}

#[test]
fn resubmit_freezes_remaining_actions_action_set_and_registers() {
    let b = bridge(RESUBMIT_FLOWS, 4);
    let f = b.translate(&key_of(&unhex(MPLS_TO_1), 0));
    let id = recirc_id_of(&format_actions(&f.actions));
    // OVS: out_2, out_3 (rest of table 0's list), out_4 (action set).
    let t = b.translate(&key_of(&popped(MPLS_TO_1), id));
    assert_eq!(format_actions(&t.actions), "2,3,4");
    // clear_actions in table 1 runs before table 0's write_actions.
    let t = b.translate(&key_of(&popped(MPLS_TO_2), id));
    assert_eq!(format_actions(&t.actions), "3,4");
    // Nested resubmit after the thaw; the rewrite applies to what follows.
    let t = b.translate(&key_of(&popped(MPLS_TO_3), id));
    assert_eq!(format_actions(&t.actions), "set(ipv4(dst=10.9.9.9)),2,3,4");
}

#[test]
fn l2_writes_and_outputs_after_pop_mpls_do_not_freeze() {
    let flows = "mpls,actions=pop_mpls:0x0800,set_field:00:00:00:00:00:09->eth_dst,output:2,load:0x1->NXM_NX_REG1[],output:3";
    let out = xlate(
        &ofproto::table::Tables::from_rules(parse_flows(flows, "t").unwrap()),
        &key_of(&unhex(MPLS_TO_1), 0),
        &PortRange(3),
        &XlateOptions::default(),
    );
    // OVS: set(eth(dst=00:00:00:00:00:09)),pop_mpls(eth_type=0x800),2,3
    let a = format_actions(&out.actions);
    assert!(!a.contains("recirc"), "{a}");
    assert!(a.ends_with("pop_mpls(eth_type=0x800),2,3"), "{a}");
}

#[test]
fn dec_ttl_move_and_write_actions_after_pop_mpls_freeze() {
    for (flows, want_prefix) in [
        (
            "mpls,actions=pop_mpls:0x0800,dec_ttl,output:2",
            "pop_mpls(eth_type=0x800),recirc(0x",
        ),
        (
            "mpls,actions=pop_mpls:0x0800,move:NXM_OF_IP_DST[]->NXM_NX_REG0[],output:2",
            "pop_mpls(eth_type=0x800),recirc(0x",
        ),
        (
            "mpls,actions=pop_mpls:0x0800,output:2,write_actions(output:3)",
            "pop_mpls(eth_type=0x800),2,recirc(0x",
        ),
    ] {
        let b = bridge(flows, 3);
        let a = format_actions(&b.translate(&key_of(&unhex(MPLS_TO_1), 0)).actions);
        assert!(a.starts_with(want_prefix), "{flows}: {a}");
    }
    // The thawed dec_ttl sees the real TTL (64), not an unknown 0.
    let b = bridge("mpls,actions=pop_mpls:0x0800,dec_ttl,output:2", 3);
    let f = b.translate(&key_of(&unhex(MPLS_TO_1), 0));
    let id = recirc_id_of(&format_actions(&f.actions));
    let t = b.translate(&key_of(&popped(MPLS_TO_1), id));
    assert_eq!(format_actions(&t.actions), "set(ipv4(ttl=63)),2");
}

#[test]
fn trace_shows_the_recirculation() {
    let b = bridge(GOTO_FLOWS, 3);
    let tr = b.trace(&key_of(&unhex(MPLS_TO_1), 0));
    let text = tr.trace.join("\n");
    assert!(text.contains("pop_mpls:0x0800"), "{text}");
    assert!(!text.contains("goto_table"), "frozen before goto: {text}");
    assert!(
        text.contains("Datapath actions: pop_mpls(eth_type=0x800),recirc(0x"),
        "{text}"
    );
    assert!(text.contains("Megaflow: recirc_id=0,"), "{text}");
    let id = recirc_id_of(text.lines().find(|l| l.starts_with("Datapath")).unwrap());
    // The traced thaw (while the trace holds the id).
    let t2 = b.trace(&key_of(&popped(MPLS_TO_1), id));
    let text2 = t2.trace.join("\n");
    assert!(text2.contains("resume in table 0"), "{text2}");
    assert!(text2.contains("goto_table:1"), "{text2}");
    assert!(text2.contains("Datapath actions: 2"), "{text2}");
    drop((tr, t2));
    assert_eq!(b.recirc_ids(), 0);
}
