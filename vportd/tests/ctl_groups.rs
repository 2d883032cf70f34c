//! The group commands against a running vportd (human and JSON form,
//! errors), megaflow revalidation on group changes, group statistics, and
//! fast_failover following the link state of a net_tap port and the admin
//! state of `mod-port`.

mod ctl_util;
use ctl_util::*;
use serde_json::Value;

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The actions of the megaflows of packets from OpenFlow port 1.
fn port1_megaflow_actions(d: &Daemon) -> Vec<String> {
    let v = d.json(&["dump-megaflows"]);
    arr(&v["megaflows"])
        .iter()
        .filter(|m| m["key"].as_str().unwrap_or("").contains("in_port(1)"))
        .map(|m| m["actions"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Waits until there are megaflows from port 1 and all have `actions`.
fn wait_actions(d: &Daemon, actions: &str) -> bool {
    wait_until(15, || {
        let a = port1_megaflow_actions(d);
        !a.is_empty() && a.iter().all(|x| x == actions)
    })
}

fn group_stats(d: &Daemon, id: u32) -> Value {
    let v = d.json(&["dump-group-stats", &id.to_string()]);
    let g = arr(&v["groups"]);
    assert_eq!(g.len(), 1, "{v}");
    g[0].clone()
}

#[test]
fn group_commands_revalidate_count_and_refuse_bad_input() {
    let d = traffic_daemon("grp", "in_port=2,actions=drop\n");

    // add-group, then a rule that uses it.
    let text = d.ok(&["add-group", "group_id=1,type=all,bucket=output:2"]);
    assert_eq!(text, "group(s) 1 added; 1 group(s) in the table\n");
    d.ok(&["add-flow", "in_port=1,actions=group:1"]);
    assert!(wait_actions(&d, "2"), "{}", d.log());
    assert_eq!(
        d.ok(&["dump-groups"]),
        " group_id=1,type=all,bucket=actions=output:2\n"
    );

    // Statistics: credited from the megaflow, to the group and its bucket.
    assert!(wait_until(15, || u(&group_stats(&d, 1)["packet_count"]) > 0));
    let g = group_stats(&d, 1);
    assert_eq!(g["ref_count"], 1);
    assert_eq!(g["type"], "all");
    let b = arr(&g["buckets"]);
    assert_eq!(b.len(), 1);
    assert!(u(&b[0]["packet_count"]) > 0 && u(&b[0]["byte_count"]) > 0);
    let line = d.ok(&["dump-group-stats"]);
    assert!(
        line.starts_with(" group_id=1,duration=") && line.contains(",ref_count=1,packet_count="),
        "{line}"
    );
    assert!(line.contains(",bucket0:packet_count="), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");

    // mod-group: the megaflow that went to port 2 is revalidated to the
    // new buckets; the counters restart.
    let text = d.ok(&[
        "mod-group",
        "group_id=1,type=all,bucket=output:3,bucket=set_field:10.9.9.9->ip_dst,output:2",
    ]);
    assert_eq!(text, "group(s) 1 modified; 1 group(s) in the table\n");
    assert!(
        wait_until(15, || {
            let a = port1_megaflow_actions(&d);
            !a.is_empty() && a.iter().all(|x| x.starts_with("3,") && x.ends_with(",2"))
        }),
        "{:?}",
        port1_megaflow_actions(&d)
    );
    let tx3 = d.port_stat("p3", "tx_packets");
    assert!(wait_until(15, || d.port_stat("p3", "tx_packets") > tx3 + 100));
    assert!(wait_until(15, || {
        let g = group_stats(&d, 1);
        let b = arr(&g["buckets"]);
        b.len() == 2 && u(&b[1]["packet_count"]) > 0
    }));

    // add-groups FILE: all or none.
    let file = d.dir.path("groups.txt");
    std::fs::write(
        &file,
        "# two groups\ngroup_id=5,type=select,bucket=weight:3,output:2,bucket=output:3\n\n\
         group_id=6,type=fast_failover,bucket=watch_port:3,output:3,bucket=watch_port:2,output:2\n",
    )
    .unwrap();
    let v = d.json(&["add-groups", file.to_str().unwrap()]);
    assert_eq!(v["groups"], serde_json::json!([5, 6]));
    assert_eq!(v["groups_total"], 3);
    let bad = d.dir.path("bad.txt");
    std::fs::write(
        &bad,
        "group_id=7,type=all,bucket=output:2\ngroup_id=8,type=all,bucket=output:2,frob\n",
    )
    .unwrap();
    let e = d.err(&["add-groups", bad.to_str().unwrap()]);
    assert!(e.contains("bad.txt:2:") && e.contains("frob"), "{e}");
    let e = d.err(&["add-groups", file.to_str().unwrap()]);
    assert!(e.contains("OFPGMFC_GROUP_EXISTS"), "{e}");
    let v = d.json(&["dump-groups"]);
    let ids: Vec<u64> = arr(&v["groups"])
        .iter()
        .map(|g| u(&g["group_id"]))
        .collect();
    assert_eq!(ids, vec![1, 5, 6]);
    let g5 = &arr(&v["groups"])[1];
    assert_eq!(g5["type"], "select");
    assert_eq!(g5["buckets"][0]["weight"], 3);
    assert_eq!(g5["buckets"][1]["actions"], "output:3");
    assert_eq!(
        d.ok(&["dump-groups", "6"]),
        " group_id=6,type=ff,bucket=watch_port:3,actions=output:3,bucket=watch_port:2,actions=output:2\n"
    );

    // Errors: reason and position, and the daemon keeps running.
    let e = d.err(&["add-group", "group_id=1,type=all,bucket=output:4"]);
    assert!(
        e.contains("group 1 already exists (OFPGMFC_GROUP_EXISTS)"),
        "{e}"
    );
    let e = d.err(&["mod-group", "group_id=9,type=all,bucket=output:4"]);
    assert!(
        e.contains("group 9 does not exist (OFPGMFC_UNKNOWN_GROUP)"),
        "{e}"
    );
    let e = d.err(&["add-group", "group_id=9,type=bogus,bucket=output:4"]);
    assert!(e.contains("col 17") && e.contains("bogus"), "{e}");
    let e = d.err(&["add-group", "group_id=9,type=all,bucket=output:4,frob:1"]);
    assert!(e.contains("col") && e.contains("frob"), "{e}");
    let e = d.err(&["add-flow", "in_port=3,actions=group:42"]);
    assert!(
        e.contains("group 42 does not exist (OFPBAC_BAD_OUT_GROUP)"),
        "{e}"
    );
    let e = d.err(&["del-groups", "group_id=x"]);
    assert!(e.contains("col 10"), "{e}");
    // mod-group --may-create adds.
    let v = d.json(&[
        "mod-group",
        "--may-create",
        "group_id=9,type=indirect,bucket=output:3",
    ]);
    assert_eq!(v["op"], "add");

    // Deleting a group deletes the rules that use it (as OVS).
    d.ok(&["add-flow", "in_port=3,actions=write_actions(group:5)"]);
    assert_eq!(arr(&d.json(&["dump-flows"])["flows"]).len(), 3);
    let v = d.json(&["del-groups", "group_id=1"]);
    assert_eq!(v["groups"], serde_json::json!([1]));
    assert_eq!(v["rules_deleted"], 1);
    let flows = d.ok(&["dump-flows"]);
    assert!(!flows.contains("group:1"), "{flows}");
    assert!(flows.contains("write_actions(group:5)"), "{flows}");
    // The megaflows of port 1 now miss the table.
    assert!(wait_actions(&d, "drop"), "{:?}", port1_megaflow_actions(&d));
    let v = d.json(&["del-groups"]);
    assert_eq!(v["groups"], serde_json::json!([5, 6, 9]));
    assert_eq!(v["rules_deleted"], 1);
    assert_eq!(d.ok(&["dump-groups"]), "");
    assert_eq!(arr(&d.json(&["dump-flows"])["flows"]).len(), 1);
    d.ok(&["version"]);
    d.stop();
}

/// Root and /dev/net/tun, which net_tap needs.
fn tap_skip() -> Option<&'static str> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root");
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun");
    }
    None
}

fn ip_link(dev: &str, state: &str) {
    let st = std::process::Command::new("ip")
        .args(["link", "set", dev, state])
        .status()
        .expect("running ip");
    assert!(st.success(), "ip link set {dev} {state}");
}

#[test]
fn fast_failover_follows_link_and_admin_state() {
    if let Some(why) = tap_skip() {
        eprintln!("skipped: {why}");
        return;
    }
    let tag = "ff";
    let dir = TempDir::new(tag);
    write_pcap(&dir.path("in.pcap"), &traffic_frames());
    let tap = format!("vpff{}", std::process::id() % 100_000);
    std::fs::write(
        dir.path("groups.txt"),
        "group_id=1,type=fast_failover,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3\n",
    )
    .unwrap();
    let d = Daemon::start(
        tag,
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into(),
                format!("net_tap0,iface={tap}"),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", "p2=net_tap0", "p3=net_null0"],
            flows: "in_port=1,actions=group:1\n",
            extra: vec!["--groups".into(), "{dir}/groups.txt".into()],
        },
        dir,
    );
    assert!(wait_actions(&d, "2"), "{}", d.log());

    // The kernel takes the tap's link down: bucket 1.
    ip_link(&tap, "down");
    assert!(wait_actions(&d, "3"), "{}", d.log());
    let v = d.json(&["show"]);
    let p2 = arr(&v["ports"])
        .iter()
        .find(|p| p["name"] == "p2")
        .unwrap()
        .clone();
    assert_eq!(p2["link"]["up"], false);
    ip_link(&tap, "up");
    assert!(wait_actions(&d, "2"), "{}", d.log());

    // Admin down (ovs-ofctl mod-port br0 p2 down): net_tap takes its link
    // down too, as OVS-DPDK does.
    let v = d.json(&["mod-port", "p2", "down"]);
    assert_eq!(v["live"], false);
    assert_eq!(v["link_set"], true);
    assert!(wait_actions(&d, "3"), "{}", d.log());
    // net_null cannot change its link: only liveness changes. No live
    // bucket: dropped.
    let v = d.json(&["mod-port", "p3", "down"]);
    assert_eq!(
        (v["live"].clone(), v["link_set"].clone()),
        (false.into(), false.into())
    );
    assert!(wait_actions(&d, "drop"), "{:?}", port1_megaflow_actions(&d));
    d.ok(&["mod-port", "p3", "up"]);
    assert!(wait_actions(&d, "3"));
    d.ok(&["mod-port", "p2", "up"]);
    assert!(wait_actions(&d, "2"), "{}", d.log());
    let e = d.err(&["mod-port", "p2", "sideways"]);
    assert!(e.contains("unknown action"), "{e}");
    assert!(d.err(&["mod-port", "p9", "down"]).contains("no port named"));

    // Both buckets carried traffic and were counted.
    assert!(wait_until(15, || {
        let g = group_stats(&d, 1);
        let b = arr(&g["buckets"]);
        u(&b[0]["packet_count"]) > 0 && u(&b[1]["packet_count"]) > 0
    }));
    let log = d.stop();
    assert!(
        log.contains("p2 (OpenFlow port 2): not live (link down)"),
        "{log}"
    );
}
