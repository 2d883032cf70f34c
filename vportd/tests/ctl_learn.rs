//! `learn(...)` in the running daemon: packets from the wire teach rules
//! that `dump-flows` lists, `trace` learns nothing, learned rules time out,
//! and deleting the learning rule with `delete_learned` takes them along.

mod ctl_util;
use ctl_util::*;

/// Learned rules: those of table 1.
fn learned(d: &Daemon) -> Vec<String> {
    let v = d.json(&["dump-flows", "table=1"]);
    v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} actions={}", f["match"], f["actions"]))
        .collect()
}

#[test]
fn learned_rules_are_listed_time_out_and_go_with_their_learner() {
    let dir = TempDir::new("ln");
    // 8 flows, from 10.0.0.1 .. 10.0.0.8, each once.
    write_pcap(
        &dir.path("in.pcap"),
        &(0..8).map(udp_frame).collect::<Vec<_>>(),
    );
    let d = Daemon::start(
        "ln",
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap".to_string(),
                "net_null0,no-rx=1".to_string(),
            ],
            ports: vec!["p1=net_pcap0", "p2=net_null0"],
            flows: "table=0,priority=10,in_port=1,udp,actions=learn(table=1,hard_timeout=3,\
                    cookie=0x9,delete_learned,eth_type=0x800,NXM_OF_IP_DST[]=NXM_OF_IP_SRC[],\
                    output:NXM_OF_IN_PORT[]),output:2\n\
                    table=0,priority=10,in_port=2,udp,actions=learn(table=1,cookie=0x9,\
                    delete_learned,eth_type=0x800,NXM_OF_IP_DST[]=NXM_OF_IP_SRC[],\
                    output:NXM_OF_IN_PORT[]),output:1\n",
            extra: vec![],
        },
        dir,
    );
    assert!(
        wait_until(15, || learned(&d).len() == 8),
        "learned: {:?}\n{}",
        learned(&d),
        d.log()
    );
    let text = d.ok(&["dump-flows", "table=1,ip,nw_dst=10.0.0.1"]);
    for part in [
        "cookie=0x9,",
        "table=1,",
        "hard_timeout=3,",
        "ip,nw_dst=10.0.0.1 actions=output:1",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    // A trace learns nothing.
    let t = d.ok(&["trace", "in_port=1,udp,nw_src=10.9.9.9,nw_dst=192.168.0.1"]);
    assert!(t.contains("learn action ignored"), "{t}");
    assert_eq!(learned(&d).len(), 8);
    // No more traffic: the hard timeout takes them.
    assert!(
        wait_until(20, || learned(&d).is_empty()),
        "still learned: {:?}",
        learned(&d)
    );

    // A rule with the learners' cookie in their table goes when the last
    // rule with such a learn does.
    d.ok(&[
        "add-flow",
        "table=1,priority=5,cookie=0x9,ip,nw_dst=10.0.0.77,actions=output:2",
    ]);
    assert_eq!(learned(&d).len(), 1);
    d.ok(&["del-flows", "in_port=1"]);
    assert_eq!(learned(&d).len(), 1, "the port-2 learner still has it");
    d.ok(&["del-flows", "in_port=2"]);
    assert!(learned(&d).is_empty());
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
}
