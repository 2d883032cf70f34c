//! Groups through the bridge as the upcall handlers and the revalidator use
//! it: group changes and liveness change the generation and the actions,
//! deleting a group deletes the rules that use it, and megaflow statistics
//! are credited to the groups and buckets a megaflow went through.

use flowcache::actions::format_actions;
use flowcache::key::{FlowKey, ETH_TYPE_IPV4, IPPROTO_UDP};
use flowcache::upcall::Translator;
use ofproto::group::{parse_group, parse_groups, GroupError};
use ofproto::{parse_flows, Bridge};

fn bridge(flows: &str, groups: &str) -> Bridge {
    let b = Bridge::new();
    for p in 1..=4 {
        b.add_port(p, &format!("p{p}"));
    }
    b.add_groups(parse_groups(groups, "g").unwrap()).unwrap();
    b.replace_rules(parse_flows(flows, "f").unwrap()).unwrap();
    b
}

fn key(in_port: u32, tp_src: u16) -> FlowKey {
    FlowKey {
        in_port,
        dl_type: ETH_TYPE_IPV4,
        nw_proto: IPPROTO_UDP,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        tp_src,
        tp_dst: 53,
        ..Default::default()
    }
}

fn acts(b: &Bridge, k: &FlowKey) -> String {
    format_actions(&b.translate(k).actions)
}

/// Translates `k` and credits `packets` packets of 100 bytes to what the
/// megaflow went through, as the revalidator does.
fn run_packets(b: &Bridge, k: &FlowKey, packets: u64) {
    let t = b.translate(k);
    b.credit(t.rules.as_deref().unwrap(), packets, packets * 100, 0);
}

fn stats(b: &Bridge, id: u32) -> (u64, Vec<u64>) {
    let t = b.tables();
    let e = t.groups().get(id).unwrap();
    (
        e.stats.n_packets(),
        e.bucket_stats.iter().map(|s| s.n_packets()).collect(),
    )
}

#[test]
fn megaflow_stats_reach_groups_and_buckets() {
    let b = bridge(
        "in_port=1,actions=group:1\nin_port=2,actions=group:2\nin_port=3,actions=group:3",
        "group_id=1,type=all,bucket=output:2,bucket=output:3\n\
         group_id=2,type=ff,bucket=watch_port:4,output:4,bucket=watch_port:1,output:1\n\
         group_id=3,type=select,bucket=output:1,bucket=output:2,bucket=output:4",
    );
    run_packets(&b, &key(1, 1), 5);
    assert_eq!(stats(&b, 1), (5, vec![5, 5]));
    let t = b.tables();
    let e = t.groups().get(1).unwrap();
    assert_eq!(e.stats.n_bytes(), 500);
    assert_eq!(e.bucket_stats[1].n_bytes(), 500);

    run_packets(&b, &key(2, 1), 3);
    assert_eq!(stats(&b, 2), (3, vec![3, 0]));
    // Port 4 goes down: the next translation uses bucket 1.
    assert!(b.set_port_live(4, false));
    assert_eq!(acts(&b, &key(2, 1)), "1");
    run_packets(&b, &key(2, 1), 2);
    assert_eq!(stats(&b, 2), (5, vec![3, 2]));

    // A select group credits only the bucket each flow chose.
    let mut total = 0;
    for sport in 0..50 {
        run_packets(&b, &key(3, sport), 1);
        total += 1;
    }
    let (n, per) = stats(&b, 3);
    assert_eq!(n, total);
    assert_eq!(per.iter().sum::<u64>(), total);
    assert!(per.iter().filter(|n| **n > 0).count() >= 2, "{per:?}");
}

#[test]
fn liveness_changes_revalidate_and_pick_the_next_live_bucket() {
    let b = bridge(
        "in_port=1,actions=group:7",
        "group_id=7,type=fast_failover,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3",
    );
    assert_eq!(acts(&b, &key(1, 9)), "2");
    let g = b.generation();
    assert!(b.set_port_live(2, false));
    assert_ne!(b.generation(), g);
    assert_eq!(acts(&b, &key(1, 9)), "3");
    // No change, no new generation.
    let g = b.generation();
    assert!(!b.set_port_live(2, false));
    assert_eq!(b.generation(), g);
    assert!(b.set_port_live(3, false));
    assert_eq!(acts(&b, &key(1, 9)), "drop");
    assert!(b.set_port_live(2, true));
    assert_eq!(acts(&b, &key(1, 9)), "2");
}

#[test]
fn modify_changes_actions_keeps_creation_and_resets_counters() {
    let b = bridge(
        "in_port=1,actions=group:1",
        "group_id=1,type=all,bucket=output:2",
    );
    run_packets(&b, &key(1, 1), 4);
    let created = b.tables().groups().get(1).unwrap().created;
    let g = b.generation();
    b.modify_groups(vec![parse_group(
        "group_id=1,type=all,bucket=output:3,bucket=output:4",
    )
    .unwrap()])
        .unwrap();
    assert_ne!(b.generation(), g);
    assert_eq!(acts(&b, &key(1, 1)), "3,4");
    let t = b.tables();
    let e = t.groups().get(1).unwrap();
    assert_eq!(e.created, created);
    assert_eq!(e.stats.n_packets(), 0);
    assert_eq!(e.bucket_stats.len(), 2);
}

#[test]
fn refused_changes_leave_the_table_as_it_was() {
    // OVS refuses an existing id (OFPGMFC_GROUP_EXISTS) and modifying a
    // missing group (OFPGMFC_UNKNOWN_GROUP).
    let b = bridge(
        "in_port=1,actions=group:1",
        "group_id=1,type=all,bucket=output:2\ngroup_id=2,type=all,bucket=group:1",
    );
    let g = b.generation();
    let add = |s: &str| b.add_groups(vec![parse_group(s).unwrap()]);
    assert_eq!(
        add("group_id=1,type=all,bucket=output:3"),
        Err(GroupError::Exists(1))
    );
    assert_eq!(
        b.modify_groups(vec![
            parse_group("group_id=5,type=all,bucket=output:3").unwrap()
        ]),
        Err(GroupError::Unknown(5))
    );
    // A batch with one bad group adds none.
    assert!(b
        .add_groups(vec![
            parse_group("group_id=10,type=all,bucket=output:3").unwrap(),
            parse_group("group_id=2,type=all,bucket=output:3").unwrap(),
        ])
        .is_err());
    assert!(b.tables().groups().get(10).is_none());
    assert_eq!(b.generation(), g);
    assert_eq!(acts(&b, &key(1, 1)), "2");
}

#[test]
fn deleting_a_group_deletes_the_rules_that_use_it() {
    let b = bridge(
        "in_port=1,actions=group:1\n\
         in_port=2,actions=write_actions(group:2)\n\
         in_port=3,actions=clone(group:2),output:1\n\
         in_port=4,actions=output:1",
        "group_id=1,type=all,bucket=output:2\ngroup_id=2,type=indirect,bucket=output:3",
    );
    assert_eq!(b.tables().len(), 4);
    let (ids, rules) = b.delete_groups(Some(2));
    assert_eq!((ids, rules), (vec![2], 2));
    assert_eq!(b.tables().len(), 2);
    assert_eq!(acts(&b, &key(1, 1)), "2");
    // Deleting what does not exist changes nothing.
    let g = b.generation();
    assert_eq!(b.delete_groups(Some(2)), (vec![], 0));
    assert_eq!(b.generation(), g);
    let (ids, rules) = b.delete_groups(None);
    assert_eq!((ids, rules), (vec![1], 1));
    assert_eq!(b.tables().len(), 1);
    assert!(b.tables().groups().is_empty());
}

#[test]
fn missing_targets_and_chains_are_accepted_as_ovs_does() {
    // OVS 3.1 takes a bucket naming a group that does not exist, and a
    // modification that chains a group back to itself; translation drops
    // the missing group's output and stops a loop at the depth limit.
    let b = bridge(
        "in_port=1,actions=group:1\nin_port=2,actions=group:3",
        "group_id=1,type=all,bucket=output:2,bucket=group:9\n\
         group_id=3,type=all,bucket=output:4,bucket=group:1",
    );
    assert_eq!(acts(&b, &key(1, 1)), "2");
    b.modify_groups(vec![
        parse_group("group_id=1,type=all,bucket=group:3").unwrap()
    ])
    .unwrap();
    let t = b.translate(&key(1, 1));
    assert!(t.actions.is_empty(), "{}", format_actions(&t.actions));
    assert_eq!(
        t.drop_reason,
        Some(flowcache::actions::DropReason::RecursionLimit)
    );
    // Deleting group 1 deletes the rule that names it, not group 3 nor
    // the rule of group 3.
    assert_eq!(b.delete_groups(Some(1)), (vec![1], 1));
    assert!(b.tables().groups().get(3).is_some());
    assert_eq!(b.tables().len(), 1);
    assert_eq!(acts(&b, &key(2, 1)), "4");
}

#[test]
fn bundle_members_follow_liveness() {
    // OVS member_enabled_cb: a member is enabled while its port exists and
    // is live; active_backup takes the first enabled one, hrw the best of
    // the enabled ones; none enabled outputs nothing.
    let b = bridge(
        "in_port=1,udp,actions=bundle(symmetric_l4,0,active_backup,ofport,members:9,3,2)\n\
         in_port=1,tcp,actions=bundle(eth_src,0,hrw,ofport,members:2,3,4)",
        "",
    );
    assert_eq!(acts(&b, &key(1, 1)), "3");
    assert!(b.set_port_live(3, false));
    assert_eq!(acts(&b, &key(1, 1)), "2");
    assert!(b.set_port_live(2, false));
    assert_eq!(acts(&b, &key(1, 1)), "drop");
    let mut tcp = key(1, 1);
    tcp.nw_proto = flowcache::key::IPPROTO_TCP;
    assert_eq!(acts(&b, &tcp), "4");
    b.set_port_live(2, true);
    b.set_port_live(3, true);
    let chosen = acts(&b, &tcp);
    // The chosen member goes down: hrw moves to another live one.
    let p: u32 = chosen.parse().unwrap();
    b.set_port_live(p, false);
    let next = acts(&b, &tcp);
    assert!(
        next != chosen && ["2", "3", "4"].contains(&next.as_str()),
        "{chosen} -> {next}"
    );
}

#[test]
fn stats_after_a_modification_go_to_the_new_group() {
    // A megaflow that a mod-group did not change (its bucket is the same)
    // stays installed; what it counts afterwards belongs to the new group.
    let b = bridge(
        "in_port=1,actions=group:1",
        "group_id=1,type=ff,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3",
    );
    let t = b.translate(&key(1, 1));
    b.credit(t.rules.as_deref().unwrap(), 2, 200, 0);
    b.modify_groups(vec![parse_group(
        "group_id=1,type=ff,bucket=watch_port:2,output:2,bucket=watch_port:4,output:4",
    )
    .unwrap()])
        .unwrap();
    assert_eq!(stats(&b, 1), (0, vec![0, 0]));
    b.credit(t.rules.as_deref().unwrap(), 3, 300, 0);
    assert_eq!(stats(&b, 1), (3, vec![3, 0]));
    // A deleted group gets nothing (and nothing panics).
    b.delete_groups(Some(1));
    b.credit(t.rules.as_deref().unwrap(), 1, 100, 0);
}
