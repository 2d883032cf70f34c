//! A stateful firewall with the kernel as real peers: two namespaces on
//! net_tap ports, and an OpenStack-style table where new connections may
//! only start from host A (port 1) towards host B (port 2); established
//! and related traffic passes both ways, everything else is dropped.
//!
//! * ping A→B works, ping B→A does not;
//! * a TCP transfer (`nc`) A→B works, B→A is refused (its SYN dropped);
//! * `dump-conntrack` shows the connections; `flush-conntrack` in the
//!   middle of an established A→B transfer makes its next packets `+new`,
//!   which the table commits again (from A's side), so the transfer goes
//!   on, as it does on OVS (a mid-stream ACK may start a connection).
//!
//! Needs root, `ip netns`, `/dev/net/tun`, `ping`, `nc` (OpenBSD netcat)
//! and `timeout`; without them the test prints why and skips. Only the
//! namespaces and interfaces created here are touched.

mod common;

use common::netns::{self, link_exists, wait_until, Daemon, Host};
use common::{Prefix, TempDir};
use std::process::Stdio;

const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");

const FLOWS: &str = "\
table=0,priority=100,arp,actions=FLOOD
table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)
table=1,priority=20,ip,ct_state=+trk+inv,actions=drop
table=1,priority=10,ip,in_port=1,ct_state=+trk+new,actions=ct(commit),output:2
table=1,priority=10,ip,in_port=1,ct_state=+trk+est,actions=output:2
table=1,priority=10,ip,in_port=2,ct_state=+trk+est,actions=output:1
table=1,priority=10,ip,in_port=1,ct_state=+trk+rel,actions=output:2
table=1,priority=10,ip,in_port=2,ct_state=+trk+rel,actions=output:1
table=1,priority=1,actions=drop
";

/// What this test does with a host beyond pinging: TCP with `nc`.
impl Host {
    /// `nc -l PORT` for at most `secs` seconds; its stdout is the data.
    fn listen(&self, port: u16, secs: u32) -> std::process::Child {
        // Its stdin stays open (a sleep): nc must not end its side of the
        // connection on stdin EOF while the client is still sending.
        self.ns.spawn(
            &[
                "bash",
                "-c",
                &format!("exec timeout {secs} nc -l {port} < <(sleep {secs})"),
            ],
            Stdio::piped(),
        )
    }

    /// Sends `data` to `addr:port` over TCP; true when the connection and
    /// the transfer succeeded.
    fn send(&self, addr: &str, port: u16, data: &str) -> bool {
        self.ns
            .exec(&[
                "sh",
                "-c",
                &format!("printf '{data}' | timeout 10 nc -N -w 3 {addr} {port}"),
            ])
            .status
            .success()
    }
}

fn output(c: std::process::Child) -> String {
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn stateful_firewall_between_namespaces() {
    let extra: &[(&str, Option<&[&str]>)] = &[
        ("ping", Some(&["-V"][..])),
        ("nc", Some(&["-h"][..])),
        ("timeout", Some(&["--version"][..])),
    ];
    if let Some(why) = netns::skip_reason(extra) {
        eprintln!("ct_firewall: skipped: {why}");
        return;
    }
    let pid = std::process::id();
    let dir = TempDir::new("ctfw");
    let prefix = Prefix::new("ctfw");
    let taps: Vec<String> = (1..=2)
        .map(|i| format!("vct{i}{}", pid % 1_000_000))
        .collect();
    for t in &taps {
        assert!(!link_exists(t), "interface {t} exists already");
    }
    let flows = dir.path("flows.txt");
    std::fs::write(&flows, FLOWS).unwrap();
    let vdevs: Vec<String> = taps
        .iter()
        .enumerate()
        .map(|(i, t)| format!("net_tap{i},iface={t}"))
        .collect();
    let mut args = vec!["--eal".to_string(), common::eal(&prefix.0, &vdevs)];
    for i in 0..2 {
        args.push("--port".into());
        args.push(format!("p{}=net_tap{i}", i + 1));
    }
    args.extend(["--pmd-cores", "1", "--flows"].map(String::from));
    args.push(flows.to_str().unwrap().into());
    // Hosts are declared before the daemon: the daemon drops first.
    let a;
    let b;
    let daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
    assert!(
        wait_until(20, || taps.iter().all(|t| link_exists(t))),
        "tap interfaces never appeared:\n{}",
        daemon.log()
    );
    a = Host::new(format!("vpn-cta-{pid}"), &taps[0], "10.79.1.1");
    b = Host::new(format!("vpn-ctb-{pid}"), &taps[1], "10.79.1.2");
    let log = || daemon.log();
    let ctl = |args: &[&str]| {
        let o = daemon.ctl(VPORTCTL, args);
        assert!(
            o.status.success(),
            "vportctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    // Ping: A→B works (the first waits for the links), B→A does not.
    assert!(
        wait_until(20, || a.ping(&b.addr, 1)),
        "A cannot ping B:\n{}",
        log()
    );
    assert!(!b.ping(&a.addr, 2), "B could ping A through the firewall");
    assert!(a.ping(&b.addr, 2), "A cannot ping B any more");
    let dump = ctl(&["dump-conntrack"]);
    assert!(
        dump.contains("icmp,orig=(src=10.79.1.1,dst=10.79.1.2,"),
        "no A→B ICMP connection in:\n{dump}"
    );
    assert!(
        !dump.contains("orig=(src=10.79.1.2,"),
        "a connection from B:\n{dump}"
    );

    // TCP: A→B works.
    let srv = b.listen(5201, 20);
    let sent = wait_until(15, || a.send(&b.addr, 5201, "hello-ct\\n"));
    assert!(sent, "A could not send to B over TCP:\n{}", log());
    assert!(
        output(srv).contains("hello-ct"),
        "B did not receive A's data"
    );

    // B→A is refused: the SYN from B is +new on port 2 and dropped.
    let srv = a.listen(5202, 8);
    assert!(!b.send(&a.addr, 5202, "nope\\n"), "B connected to A");
    assert!(!output(srv).contains("nope"), "A received B's data");

    // flush-conntrack in the middle of an A→B transfer: the client sends
    // one line, waits for the go file, sends another.
    let go = dir.path("go");
    let srv = b.listen(5203, 30);
    // The client must not connect before the server listens (a refused
    // SYN is a reset connection, not the transfer this step needs).
    let listening = wait_until(10, || {
        let o = b.ns.exec(&["ss", "-ltnH", "sport = :5203"]);
        o.status.success() && !o.stdout.is_empty()
    });
    assert!(listening, "B's server never listened on 5203");
    let client = a.ns.spawn(
        &[
            "sh",
            "-c",
            &format!(
                "(echo one; while [ ! -e {} ]; do sleep 0.1; done; echo two) | timeout 25 nc -N -w 20 {} 5203",
                go.display(),
                b.addr
            ),
        ],
        Stdio::null(),
    );
    let est = wait_until(15, || {
        ctl(&["dump-conntrack"])
            .contains("dport=5203),reply=(src=10.79.1.2,dst=10.79.1.1,sport=5203")
            && ctl(&["dump-conntrack"]).contains("state=ESTABLISHED")
    });
    assert!(
        est,
        "the transfer's connection is not established:\n{}",
        ctl(&["dump-conntrack"])
    );
    let flushed = ctl(&["flush-conntrack"]);
    assert!(flushed.starts_with("flushed "), "{flushed}");
    assert!(
        !ctl(&["dump-conntrack"]).contains("5203"),
        "flush left the connection"
    );
    std::fs::write(&go, "").unwrap();
    let got = output(srv);
    let _ = output(client);
    assert!(
        got.contains("one") && got.contains("two"),
        "the transfer broke after the flush: {got:?}\n{}",
        log()
    );
    // The next segments from A were +new and committed again.
    let stats = ctl(&["ct-stats-show"]);
    assert!(stats.contains("Total:"), "{stats}");
    let json = ctl(&["--json", "ct-get-limits"]);
    assert!(json.contains("limit"), "{json}");
    let metrics = ctl(&["metrics"]);
    assert!(
        metrics.contains("vportd_conntrack_connections ")
            && metrics.contains("vportd_conntrack_created_total "),
        "{metrics}"
    );
    // The control socket still answers after the metrics.
    assert!(ctl(&["ct-get-nconns"]).trim().parse::<u32>().is_ok());
}
