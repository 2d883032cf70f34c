//! Changes under traffic: replace-flows switches the output port at once,
//! add-port/del-port do not disturb the other ports.

mod ctl_util;
use ctl_util::*;

fn traffic_setup(extra_vdevs: &[&str]) -> (TempDir, Vec<String>) {
    let dir = TempDir::new("rt");
    write_pcap(
        &dir.path("in.pcap"),
        &(0..64).map(udp_frame).collect::<Vec<_>>(),
    );
    let mut vdevs = vec![
        "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".to_string(),
        "net_null0,no-rx=1".to_string(),
    ];
    vdevs.extend(extra_vdevs.iter().map(|s| s.to_string()));
    (dir, vdevs)
}

#[test]
fn replace_flows_under_traffic_switches_the_output_port() {
    let (dir, vdevs) = traffic_setup(&["net_null1,no-rx=1"]);
    let d = Daemon::start(
        "rf",
        Setup {
            vdevs,
            ports: vec!["p1=net_pcap0", "p2=net_null0", "p3=net_null1"],
            flows: "in_port=1,actions=output:2\n",
            extra: vec![],
        },
        dir,
    );
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > 10_000));
    assert_eq!(d.port_stat("p3", "tx_packets"), 0);

    let file = d.dir.path("new.txt");
    std::fs::write(&file, "# to port 3 now\nin_port=1,actions=output:3\n").unwrap();
    let out = d.ok(&["replace-flows", &file.display().to_string()]);
    assert_eq!(
        out,
        "1 rule(s) loaded (replacing every rule); 1 rule(s) in the tables\n"
    );

    // Port 3 starts to grow; from then on port 2 gets nothing more.
    assert!(
        wait_until(15, || d.port_stat("p3", "tx_packets") > 10_000),
        "port 3 never got traffic"
    );
    let p2 = d.port_stat("p2", "tx_packets");
    let p3 = d.port_stat("p3", "tx_packets");
    assert!(wait_until(15, || d.port_stat("p3", "tx_packets") > p3 + 50_000));
    assert_eq!(d.port_stat("p2", "tx_packets"), p2, "port 2 still receives");
    // Input never stopped.
    let rx = d.port_stat("p1", "rx_packets");
    assert!(wait_until(10, || d.port_stat("p1", "rx_packets") > rx));

    // A rule with a new mask (a second megaflow subtable) under traffic:
    // one flow is dropped, the others keep going to port 3.
    d.ok(&[
        "add-flow",
        "priority=40000,in_port=1,ip,nw_src=10.0.0.7,actions=drop",
    ]);
    let p3 = d.port_stat("p3", "tx_packets");
    assert!(
        wait_until(15, || d.port_stat("p3", "tx_packets") > p3 + 50_000),
        "forwarding stopped after add-flow:\n{}",
        d.log()
    );
    assert!(
        wait_until(10, || {
            let v = d.json(&["dump-flows", "ip,nw_src=10.0.0.7"]);
            v["flows"][0]["n_packets"].as_u64().unwrap_or(0) > 0
        }),
        "the new rule never matched:\n{}",
        d.log()
    );
    let p3 = d.port_stat("p3", "tx_packets");
    assert!(
        wait_until(15, || d.port_stat("p3", "tx_packets") > p3 + 50_000),
        "forwarding stopped after add-flow:\n{}",
        d.log()
    );
    d.ok(&[
        "del-flows",
        "--strict",
        "priority=40000,in_port=1,ip,nw_src=10.0.0.7",
    ]);

    let v = d.json(&["dump-flows"]);
    assert_eq!(v["flows"].as_array().unwrap().len(), 1);
    assert_eq!(v["flows"][0]["actions"], "output:3");
    // The megaflows now output to 3 only.
    assert!(wait_until(10, || {
        let v = d.json(&["dump-megaflows"]);
        v["megaflows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["actions"] == "3")
    }));
    let upcalls = d.json(&["upcall-show"]);
    assert!(upcalls["revalidations"].as_u64().unwrap() >= 1, "{upcalls}");

    // replace-flows with the rule unchanged (plus a new one) keeps its
    // counters, as `ovs-ofctl replace-flows` leaves unchanged flows alone.
    let packets = |d: &Daemon| {
        let v = d.json(&["dump-flows", "in_port=1"]);
        v["flows"][0]["n_packets"].as_u64().unwrap()
    };
    let before = packets(&d);
    assert!(before > 0);
    std::fs::write(
        &file,
        "in_port=1,actions=output:3\nin_port=9,actions=drop\n",
    )
    .unwrap();
    d.ok(&["replace-flows", &file.display().to_string()]);
    let after = packets(&d);
    assert!(after >= before, "counters reset: {before} -> {after}");

    // replace-flows from stdin, back to port 2.
    let o = d.run_stdin(
        &["replace-flows", "-"],
        Some("in_port=1,actions=output:2\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p2 = d.port_stat("p2", "tx_packets");
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > p2 + 10_000));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}

#[test]
fn add_and_del_port_under_traffic() {
    let (dir, vdevs) = traffic_setup(&["net_ring0"]);
    let d = Daemon::start(
        "ap",
        Setup {
            vdevs,
            ports: vec!["p1=net_pcap0", "p2=net_null0"],
            flows: "in_port=1,actions=output:2\n",
            extra: vec![],
        },
        dir,
    );
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > 10_000));

    // A hot-plugged sink (devargs) and a device EAL already has.
    let v = d.json(&["add-port", "p3", "net_null5,no-rx=1"]);
    assert_eq!(v["ofport"], 3);
    assert_eq!(v["driver"], "net_null");
    let text = d.ok(&["add-port", "ring", "net_ring0,ofport=7"]);
    assert!(text.contains("OpenFlow port 7"), "{text}");
    // A hot-plugged port with traffic of its own.
    let pcap = d.dir.path("in.pcap").display().to_string();
    let v = d.json(&[
        "add-port",
        &format!("p4=net_pcap4,rx_pcap={pcap},infinite_rx=1"),
    ]);
    assert_eq!(v["ofport"], 4);
    assert_eq!(
        v["device"],
        format!("net_pcap4,rx_pcap={pcap},infinite_rx=1")
    );

    d.ok(&["add-flow", "in_port=1,actions=output:2,output:3,output:7"]);
    d.ok(&["add-flow", "in_port=4,actions=output:3"]);
    assert!(wait_until(15, || d.port_stat("p3", "tx_packets") > 10_000));
    assert!(wait_until(15, || d.port_stat("ring", "tx_packets") > 10_000));
    assert!(wait_until(15, || d.port_stat("p4", "rx_packets") > 10_000));
    let show = d.ok(&["show"]);
    for w in ["p3", "ring", "p4", "net_ring", "p4/0"] {
        assert!(show.contains(w), "show lacks {w}: {show}");
    }
    let rxq = d.json(&["pmd-rxq-show"]);
    assert_eq!(rxq["pmds"][0]["rxqs"].as_array().unwrap().len(), 5);

    // Removing ports: the others keep forwarding.
    assert!(d.ok(&["del-port", "p4"]).contains("removed"));
    assert!(d.ok(&["del-port", "p3"]).contains("removed"));
    let p2 = d.port_stat("p2", "tx_packets");
    let ring = d.port_stat("ring", "tx_packets");
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > p2 + 10_000));
    assert!(wait_until(15, || d.port_stat("ring", "tx_packets") > ring + 10_000));
    let v = d.json(&["show"]);
    let names: Vec<&str> = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p1", "p2", "ring"]);
    // Output to the removed port 3 is counted, not fatal.
    let drops = &d.json(&["pmd-stats-show"])["pmds"][0]["counters"]["drops"];
    assert!(drops["no_such_port"].is_u64());
    // The ring is removed while traffic still goes into it: the mbufs
    // waiting in it go back to the pool (checked at exit below).
    d.ok(&["del-port", "ring"]);
    // The hot-plugged device was detached: its name can be plugged again.
    let v = d.json(&["add-port", "p3", "net_null5,no-rx=1"]);
    assert_eq!(v["ofport"], 3);
    let p2 = d.port_stat("p2", "tx_packets");
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > p2 + 10_000));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}
