//! The PMD counters add up, and `--metrics` serves them as Prometheus text.

mod ctl_util;
use ctl_util::*;
use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn counters_add_up_and_metrics_scrape() {
    // 300 frames of 300 different flows (so no packet waits behind another
    // one's upcall) and 3 runts that cannot be parsed.
    let dir = TempDir::new("cnt");
    let mut frames: Vec<Vec<u8>> = (0..300).map(udp_frame).collect();
    for i in [10, 150, 299] {
        frames.insert(i, vec![0xab; 10]);
    }
    let n = frames.len() as u64;
    write_pcap(&dir.path("in.pcap"), &frames);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(
        "cnt",
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap".into(),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", "p2=net_null0"],
            flows: "in_port=1,actions=output:2\n",
            extra: vec!["--metrics".into(), addr.clone()],
        },
        dir,
    );

    // Wait until every packet is received and every miss resolved.
    let stats = || d.json(&["pmd-stats-show"])["pmds"][0]["counters"].clone();
    let settled = |c: &Value| {
        u(&c["rx_packets"]) == n
            && u(&c["simple_hits"])
                + u(&c["emc_hits"])
                + u(&c["smc_hits"])
                + u(&c["megaflow_hits"])
                + u(&c["upcalls"])
                + u(&c["lost_upcalls"])
                + u(&c["drops"]["invalid_packet"])
                == n
    };
    let mut c = stats();
    let ok = wait_until(15, || {
        c = stats();
        settled(&c)
    });
    assert!(
        ok,
        "rx = simple + emc hits + smc hits + megaflow hits + upcalls + lost upcalls + invalid drops does not hold: {c}\n{}",
        d.log()
    );
    assert_eq!(u(&c["recirculations"]), 0);
    assert_eq!(u(&c["drops"]["invalid_packet"]), 3);
    assert!(u(&c["upcalls"]) >= 1);
    // Every valid packet left on port 2.
    assert!(wait_until(10, || d.port_stat("p2", "tx_packets") == n - 3));
    let c = stats();
    assert_eq!(u(&c["tx_packets"]), n - 3);
    assert_eq!(u(&c["drops_total"]), 3);
    assert_eq!(d.port_stat("p1", "rx_packets"), n);
    let text = d.ok(&["pmd-stats-show"]);
    assert!(text.contains(&format!("packets received: {n}")), "{text}");
    assert!(text.contains("invalid_packet: 3"), "{text}");

    // Rule statistics: the megaflow hits are credited to the rule.
    assert!(wait_until(10, || {
        u(&d.json(&["dump-flows"])["flows"][0]["n_packets"]) > 0
    }));

    // Prometheus over HTTP.
    let (head, body) = http_get(&addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let m = parse_prometheus(&body);
    let pmd = [("pmd", "0"), ("core", "1")];
    assert_eq!(
        metric(&m, "vportd_pmd_rx_packets_total", &pmd),
        Some(n as f64)
    );
    let sum: f64 = [
        "vportd_pmd_simple_hits_total",
        "vportd_pmd_emc_hits_total",
        "vportd_pmd_smc_hits_total",
        "vportd_pmd_megaflow_hits_total",
        "vportd_pmd_upcalls_total",
        "vportd_pmd_lost_upcalls_total",
    ]
    .iter()
    .map(|name| metric(&m, name, &pmd).unwrap())
    .sum::<f64>()
        + metric(
            &m,
            "vportd_pmd_drops_total",
            &[("reason", "invalid_packet")],
        )
        .unwrap();
    assert_eq!(sum, n as f64);
    assert_eq!(
        metric(
            &m,
            "vportd_port_rx_packets_total",
            &[("port", "p1"), ("ofport", "1")]
        ),
        Some(n as f64)
    );
    assert_eq!(
        metric(&m, "vportd_port_tx_packets_total", &[("port", "p2")]),
        Some((n - 3) as f64)
    );
    assert!(metric(&m, "vportd_port_drops_total", &[("port", "p1")]).is_some());
    assert!(metric(&m, "vportd_megaflows", &[]).unwrap() >= 1.0);
    assert!(metric(&m, "vportd_flow_limit", &[]).unwrap() > 0.0);
    // Every drop reason is exported.
    let reasons = m
        .iter()
        .filter(|(name, _, _)| name == "vportd_pmd_drops_total")
        .count();
    assert_eq!(reasons, flowcache::actions::DropReason::COUNT);
    // userspace-action packets, one sample per cookie kind.
    for kind in ["controller", "sample", "other"] {
        assert_eq!(
            metric(&m, "vportd_userspace_packets_total", &[("kind", kind)]),
            Some(0.0)
        );
    }
    // Every sample has the prefix.
    assert!(m.iter().all(|(name, _, _)| name.starts_with("vportd_")));
    let (head, _) = http_get(&addr, "/nope");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // pmd-stats-clear zeroes the window, not the Prometheus counters.
    d.ok(&["pmd-stats-clear"]);
    let c = stats();
    assert_eq!(u(&c["rx_packets"]), 0);
    assert_eq!(
        u(&c["simple_hits"])
            + u(&c["emc_hits"])
            + u(&c["smc_hits"])
            + u(&c["megaflow_hits"])
            + u(&c["upcalls"]),
        0
    );
    let (_, body) = http_get(&addr, "/metrics");
    let m = parse_prometheus(&body);
    assert_eq!(
        metric(&m, "vportd_pmd_rx_packets_total", &pmd),
        Some(n as f64)
    );

    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}
