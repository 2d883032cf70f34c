//! Every vportctl command against a running vportd, in human and JSON
//! form, and the error replies for bad input.

mod ctl_util;
use ctl_util::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn every_command_human_and_json() {
    let d = traffic_daemon(
        "cmd",
        "in_port=1,ip,actions=output:2\npriority=10,in_port=2,actions=drop\n",
    );
    assert!(
        wait_until(15, || d.port_stat("p2", "tx_packets") > 1000),
        "no forwarding:\n{}",
        d.log()
    );

    // show
    let text = d.ok(&["show"]);
    for w in [
        "p1", "p2", "p3", "net_pcap", "net_null", "pmd-c01", "megaflow", "rx_pkts",
    ] {
        assert!(text.contains(w), "show lacks {w}: {text}");
    }
    let v = d.json(&["show"]);
    let ports = arr(&v["ports"]);
    assert_eq!(ports.len(), 3);
    assert_eq!(ports[0]["name"], "p1");
    assert_eq!(ports[0]["ofport"], 1);
    assert_eq!(ports[0]["driver"], "net_pcap");
    assert_eq!(ports[0]["n_rxq"], 1);
    assert_eq!(ports[0]["link"]["up"], true);
    assert!(u(&ports[0]["stats"]["rx_packets"]) > 0);
    assert_eq!(v["pmds"][0]["core"], 1);
    assert_eq!(arr(&v["pmds"][0]["rxqs"]).len(), 3);
    assert!(u(&v["megaflows"]) >= 1);
    assert_eq!(v["openflow_rules"], 2);
    // The OVS name is an alias.
    assert_eq!(d.json(&["dpctl/show"])["openflow_rules"], 2);

    // dump-flows: the rule statistics are credited by the revalidator.
    assert!(wait_until(10, || {
        u(&d.json(&["dump-flows"])["flows"][0]["n_packets"]) > 0
    }));
    let text = d.ok(&["dump-flows"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with(" cookie=0x0, duration="), "{text}");
    assert!(lines[0].contains("n_packets=") && lines[0].contains("n_bytes="));
    assert!(
        lines[0].ends_with("ip,in_port=1 actions=output:2"),
        "{text}"
    );
    assert!(
        lines[1].ends_with("priority=10,in_port=2 actions=drop"),
        "{text}"
    );
    let v = d.json(&["dump-flows", "in_port=2"]);
    assert_eq!(arr(&v["flows"]).len(), 1);
    assert_eq!(v["flows"][0]["priority"], 10);
    assert_eq!(v["flows"][0]["actions"], "drop");

    // dump-megaflows
    let text = d.ok(&["dump-megaflows"]);
    assert!(
        text.contains("in_port(1)") && text.contains("actions:2"),
        "{text}"
    );
    let v = d.json(&["dump-megaflows"]);
    let mf = arr(&v["megaflows"])
        .iter()
        .find(|m| m["actions"] == "2")
        .unwrap_or_else(|| panic!("no megaflow to port 2: {v}"))
        .clone();
    assert!(mf["key"]
        .as_str()
        .unwrap()
        .starts_with("recirc_id(0),in_port(1)"));
    assert!(mf["match"].as_str().unwrap().contains("in_port=1"));
    assert_eq!(mf["pmd"], 0);
    let mf_id = u(&mf["id"]);

    // pmd-stats-show (OVS line names)
    let text = d.ok(&["pmd-stats-show"]);
    for w in [
        "pmd thread numa_id 0 core_id 1:",
        "packets received:",
        "packet recirculations:",
        "avg. datapath passes per packet:",
        "emc hits:",
        "smc hits:",
        "megaflow hits:",
        "avg. subtable lookups per megaflow hit:",
        "miss with success upcall:",
        "miss with failed upcall:",
        "avg. packets per output batch:",
        "idle cycles:",
        "processing cycles:",
        "avg cycles per packet:",
        "avg processing cycles per packet:",
    ] {
        assert!(text.contains(w), "pmd-stats-show lacks {w:?}: {text}");
    }
    let v = d.json(&["pmd-stats-show"]);
    let c = &v["pmds"][0]["counters"];
    let rx = u(&c["rx_packets"]);
    let accounted = u(&c["simple_hits"])
        + u(&c["emc_hits"])
        + u(&c["smc_hits"])
        + u(&c["megaflow_hits"])
        + u(&c["upcalls"])
        + u(&c["lost_upcalls"])
        + u(&c["drops"]["invalid_packet"]);
    assert!(
        rx > 0 && accounted > 0 && accounted <= rx + u(&c["recirculations"]),
        "{c}"
    );
    assert!(
        v["pmds"][0]["derived"]["avg_passes_per_packet"]
            .as_f64()
            .unwrap()
            >= 1.0
    );

    let text = d.ok(&["pmd-perf-show"]);
    for w in [
        "Iterations:",
        "Rx packets:",
        "EMC hits:",
        "Megaflow hits:",
        "Upcalls:",
        "us/upcall",
        "Tx batches:",
    ] {
        assert!(text.contains(w), "pmd-perf-show lacks {w:?}: {text}");
    }
    assert!(
        d.json(&["dpif-netdev/pmd-perf-show"])["duration_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // pmd-stats-clear: afterwards the window only holds what came after.
    let raw_rx = |d: &Daemon| {
        let m = d.json(&["metrics"]);
        arr(&m["samples"])
            .iter()
            .find(|s| s["name"] == "vportd_pmd_rx_packets_total")
            .map(|s| s["value"].as_f64().unwrap() as u64)
            .unwrap()
    };
    let before = raw_rx(&d);
    assert!(d.ok(&["pmd-stats-clear"]).contains("cleared"));
    let since = u(&d.json(&["pmd-stats-show"])["pmds"][0]["counters"]["rx_packets"]);
    let after = raw_rx(&d);
    assert!(
        since <= after - before,
        "since clear {since} > {after} - {before}"
    );

    // pmd-rxq-show / pmd-rxq-rebalance
    let text = d.ok(&["pmd-rxq-show"]);
    assert!(
        text.contains("port: p1") && text.contains("queue-id:") && text.contains("pmd usage:"),
        "{text}"
    );
    let v = d.json(&["pmd-rxq-show"]);
    let q = arr(&v["pmds"][0]["rxqs"]);
    assert_eq!(q.len(), 3);
    let p1 = q.iter().find(|q| q["port"] == "p1").unwrap();
    assert!(p1["share_pct"].as_f64().unwrap() > 50.0, "{v}");
    assert!(d.ok(&["pmd-rxq-rebalance"]).contains("nothing to move"));
    assert_eq!(d.json(&["pmd-rxq-rebalance"])["applied"], false);

    // trace FLOW
    let text = d.ok(&[
        "trace",
        "in_port=1,udp,nw_src=10.0.0.1,nw_dst=192.168.0.1,tp_dst=5001",
    ]);
    assert!(text.contains("Datapath actions: 2"), "{text}");
    assert!(text.contains("Megaflow"), "{text}");
    let v = d.json(&["trace", "in_port=1,udp,nw_dst=192.168.0.1"]);
    assert_eq!(v["actions"], "2");
    assert_eq!(v["in_port"], 1);
    assert!(v["megaflow_key"].as_str().unwrap().contains("in_port(1)"));
    assert!(v["rules"][0]["rule"]
        .as_str()
        .unwrap()
        .contains("in_port=1"));
    let v = d.json(&["ofproto/trace", "in_port=2,ip"]);
    assert_eq!(v["actions"], "drop");
    assert!(v["drop_reason"].is_string());
    // trace --packet HEX
    let frame = hex(&udp_frame(3));
    let v = d.json(&["trace", "--packet", &frame, "in_port=1"]);
    assert_eq!(v["actions"], "2", "{v}");
    let text = d.ok(&["trace", "--packet", &frame, "in_port=3"]);
    assert!(text.contains("Datapath actions: drop"), "{text}");

    // detrace
    let text = d.ok(&["detrace", &mf_id.to_string()]);
    assert!(
        text.contains("Rules visited:") && text.contains("in_port=1"),
        "{text}"
    );
    let v = d.json(&["detrace", &format!("id:{mf_id}")]);
    assert_eq!(u(&v["megaflow_id"]), mf_id);
    assert_eq!(v["actions"], "2");
    assert!(!arr(&v["rules"]).is_empty());

    // upcall-show and set
    let text = d.ok(&["upcall-show"]);
    assert!(
        text.contains("limit 200000") && text.contains("max-idle"),
        "{text}"
    );
    assert_eq!(
        d.ok(&["set", "flow-limit", "5000"]),
        "flow-limit = 5000 (was 200000)\n"
    );
    assert!(d.ok(&["set", "max-idle", "2000"]).contains("was 10000"));
    let v = d.json(&["set", "emc-insert-inv-prob", "50"]);
    assert_eq!(v["key"], "emc-insert-inv-prob");
    assert_eq!(v["value"], 50);
    let v = d.json(&["upcall-show"]);
    assert_eq!(v["flow_limit"], 5000);
    assert_eq!(v["max_idle_ms"], 2000);
    assert_eq!(v["emc_insert_inv_prob"], 50);
    assert!(u(&v["pmds"][0]["upcalls"]) > 0);
    d.ok(&["upcall/set-flow-limit", "200000"]);
    assert_eq!(d.json(&["upcall/show"])["flow_limit"], 200000);

    // metrics (command)
    let text = d.ok(&["metrics"]);
    let m = parse_prometheus(&text);
    assert!(
        metric(
            &m,
            "vportd_pmd_rx_packets_total",
            &[("pmd", "0"), ("core", "1")]
        )
        .unwrap()
            > 0.0
    );
    assert!(metric(&m, "vportd_port_tx_packets_total", &[("port", "p2")]).unwrap() > 0.0);
    assert!(metric(&m, "vportd_megaflows", &[]).unwrap() >= 1.0);

    // Rule changes.
    let v = d.json(&[
        "add-flow",
        "priority=200,in_port=1,ip,nw_src=10.0.0.1,actions=output:3",
    ]);
    assert_eq!((u(&v["count"]), u(&v["rules_total"])), (1, 3));
    let v = d.json(&[
        "mod-flows",
        "--strict",
        "priority=200,in_port=1,ip,nw_src=10.0.0.1,actions=drop",
    ]);
    assert_eq!(v["count"], 1);
    let v = d.json(&["dump-flows", "ip,nw_src=10.0.0.1"]);
    assert_eq!(v["flows"][0]["actions"], "drop");
    // Non-strict: every rule at least as specific as in_port=2.
    assert_eq!(
        d.json(&["mod-flows", "in_port=2 actions=output:1"])["count"],
        1
    );
    assert!(d
        .ok(&["dump-flows", "in_port=2"])
        .contains("actions=output:1"));
    assert_eq!(
        d.json(&[
            "del-flows",
            "--strict",
            "priority=200,in_port=1,ip,nw_src=10.0.0.1"
        ])["count"],
        1
    );
    std::fs::write(
        d.dir.path("more.txt"),
        "# more rules\n\ntable=1,in_port=3,actions=drop\ntable=1,in_port=2,actions=drop\n",
    )
    .unwrap();
    let more = d.dir.path("more.txt").display().to_string();
    assert_eq!(
        d.ok(&["add-flows", &more]),
        "2 rule(s) added; 4 rule(s) in the tables\n"
    );
    let o = d.run_stdin(&["add-flows", "-"], Some("table=2,actions=drop\n"));
    assert!(o.status.success());
    assert_eq!(
        d.json(&["dump-flows", "table=1"])["flows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(d.json(&["del-flows", "table=1"])["count"], 2);
    assert_eq!(d.json(&["del-flows", "table=2"])["count"], 1);
    assert_eq!(d.json(&["show"])["openflow_rules"], 2);

    // version, help
    assert!(d.ok(&["version"]).starts_with("vportd "));
    assert_eq!(d.json(&["version"])["protocol"], 1);
    let help = d.ok(&["help"]);
    for c in [
        "show",
        "add-port",
        "del-port",
        "add-flow",
        "add-flows",
        "mod-flows",
        "del-flows",
        "dump-flows",
        "replace-flows",
        "dump-megaflows",
        "pmd-stats-show",
        "pmd-stats-clear",
        "pmd-perf-show",
        "pmd-rxq-show",
        "pmd-rxq-rebalance",
        "trace",
        "detrace",
        "upcall-show",
        "set",
        "metrics",
        "capture",
        "capture-show",
        "capture-stop",
        "version",
    ] {
        assert!(help.contains(c), "help lacks {c}");
    }
    assert!(!help.contains("not implemented"), "{help}");
    assert!(d
        .err(&["capture-stop", "p1"])
        .contains("no capture is running on port p1"));

    // The forwarding never stopped.
    let tx = d.port_stat("p2", "tx_packets");
    assert!(wait_until(10, || d.port_stat("p2", "tx_packets") > tx));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn bad_requests_get_errors_and_the_daemon_keeps_running() {
    let dir = TempDir::new("err");
    let d = Daemon::start(
        "err",
        Setup {
            vdevs: vec!["net_null0,no-rx=1".into(), "net_null1,no-rx=1".into()],
            ports: vec!["p1=net_null0", "p2=net_null1"],
            flows: "in_port=1,actions=output:2\n",
            extra: vec![],
        },
        dir,
    );
    let mode = std::fs::metadata(&d.ctl).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode");

    // Errors name the position and the reason.
    assert!(d.err(&["bogus"]).contains("unknown command \"bogus\""));
    let e = d.err(&["add-flow", "in_port=1,actions=output:2,frobnicate"]);
    assert!(e.contains("col 28") && e.contains("frobnicate"), "{e}");
    // A match OVS itself rejects (a later fragment has no L4 header); a
    // field merely missing its prerequisite is dropped, as ovs-ofctl does.
    let e = d.err(&[
        "add-flow",
        "in_port=1,tcp,nw_frag=later,tp_dst=80,actions=output:2",
    ]);
    assert!(e.contains("col") && e.contains("nw_frag=later"), "{e}");
    std::fs::write(
        d.dir.path("bad.txt"),
        "# c\nin_port=1,actions=output:2\nin_port=2,actions=output:bogus\n",
    )
    .unwrap();
    let bad = d.dir.path("bad.txt").display().to_string();
    let e = d.err(&["add-flows", &bad]);
    assert!(e.contains("bad.txt:3: col"), "{e}");
    let e = d.err(&["replace-flows", &bad]);
    assert!(e.contains("bad.txt:3: col"), "{e}");
    let o = d.run_stdin(
        &["add-flows", "-"],
        Some("in_port=1,actions=output:2\nin_port=2,actoins=drop\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("stdin:2: col"));
    // Nothing was loaded by the failed commands.
    assert_eq!(d.json(&["show"])["openflow_rules"], 1);
    let e = d.err(&["add-flows", "/nonexistent/flows.txt"]);
    assert!(e.contains("/nonexistent/flows.txt"), "{e}");
    assert!(d.err(&["mod-flows", "in_port=1"]).contains("action"));
    assert!(d
        .err(&["del-flows", "in_port=1,tcp,tcp_dst=x"])
        .contains("col"));
    assert!(d
        .err(&["dump-flows", "ip,nw_src=1.2.3.400"])
        .contains("col"));
    assert!(d
        .err(&["trace", "ip,nw_dst=10.0.0.1"])
        .contains("in_port is required"));
    assert!(d
        .err(&["trace", "--packet", "zz00", "in_port=1"])
        .contains("not a hex digit"));
    assert!(d.err(&["trace", "--packet", "00"]).contains("in_port"));
    assert!(d.err(&["detrace", "999999"]).contains("no megaflow"));
    assert!(d.err(&["detrace", "abc"]).contains("not a megaflow id"));
    assert!(d
        .err(&["set", "flow-limit", "-1"])
        .contains("not a non-negative integer"));
    assert!(d.err(&["set", "max-idle", "5"]).contains("minimum"));
    assert!(d.err(&["set", "colour", "5"]).contains("unknown setting"));
    assert!(d
        .err(&["add-port", "bad/name", "net_null9"])
        .contains("bad port name"));
    assert!(d.err(&["add-port", "p1", "net_null9"]).contains("exists"));
    assert!(d
        .err(&["add-port", "p9", "net_null9,ofport=2"])
        .contains("in use by port p2"));
    let e = d.err(&["add-port", "p9", "no_such_driver0"]);
    assert!(e.contains("no_such_driver0"), "{e}");
    assert!(d.err(&["del-port", "nope"]).contains("no port named"));
    assert!(d.err(&["show", "extra"]).contains("unexpected argument"));

    // The raw protocol: one JSON line per request.
    let v = d.raw(b"show");
    assert_eq!(v["version"], 1);
    assert_eq!(v["ok"], true);
    assert!(v["text"].is_string() && v["data"].is_object());
    let v = d.raw(b"add-flow 'in_port=1,actions=output:2");
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("col 10: unterminated quote"),
        "{v}"
    );
    assert!(v.get("data").is_none());
    assert!(d
        .raw(b"")
        .get("error")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("empty request"));
    assert!(d
        .raw(&[0x73, 0xff, 0xfe])
        .get("error")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    // Several requests on one connection, answered in order.
    let mut s = UnixStream::connect(&d.ctl).unwrap();
    s.write_all(b"version\nbogus\ndump-flows in_port=1\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        replies.push(serde_json::from_str::<Value>(&l).unwrap());
    }
    assert_eq!(replies[0]["ok"], true);
    assert_eq!(replies[1]["ok"], false);
    assert_eq!(replies[2]["data"]["flows"].as_array().unwrap().len(), 1);

    // Many clients at once, while an idle one stays connected.
    let _idle = UnixStream::connect(&d.ctl).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..6 {
            sc.spawn(|| {
                for _ in 0..10 {
                    assert_eq!(d.raw(b"pmd-stats-show")["ok"], true);
                }
            });
        }
    });

    // An unreachable socket: exit 2, naming the path.
    let o = std::process::Command::new(VPORTCTL)
        .args(["--ctl", "/nonexistent/vportd.ctl", "show"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/vportd.ctl"));

    // Still alive; the socket goes away on stop.
    assert!(d.ok(&["version"]).starts_with("vportd"));
    let ctl = d.ctl.clone();
    let log = d.stop();
    assert!(!ctl.exists(), "socket left behind");
    assert!(!log.contains("panicked"), "{log}");
}
