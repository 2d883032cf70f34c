//! The kernel as a real peer: two net_tap ports whose kernel interfaces
//! live in two network namespaces, cross-connected by two OpenFlow rules.
//! Ping and a TCP transfer must work through the switch; after a
//! higher-priority `tcp actions=drop` rule is added over the control
//! socket, ping must still work while a new TCP connection fails.
//!
//! Needs root, `ip netns`, `/dev/net/tun`, `ping` and OpenBSD `nc`;
//! without them the test prints why and skips.

mod common;

use common::netns::{self, link_exists, must, run, wait_until, Daemon, Netns};
use common::{Prefix, TempDir};
use std::path::Path;
use std::process::Child;
use std::time::Instant;

const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");
const ADDR_A: &str = "10.77.0.1";
const ADDR_B: &str = "10.77.0.2";

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    netns::skip_reason(&[
        ("ping", Some(&["-V"][..])),
        ("nc", None),
        ("timeout", Some(&["--version"][..])),
        ("ss", Some(&["-V"][..])),
    ])
}

/// A background process in a namespace (an `nc -l`); killed on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ping(ns: &Netns, addr: &str) -> bool {
    ns.exec(&["ping", "-c", "3", "-W", "2", addr])
        .status
        .success()
}

/// Starts `nc -l PORT > out` in `ns` and waits until it listens.
fn listen(ns: &Netns, port: u16, out: &Path) -> Bg {
    let f = std::fs::File::create(out).unwrap();
    let p = port.to_string();
    let bg = Bg(ns.spawn(&["timeout", "30", "nc", "-l", &p], f.into()));
    let filter = format!("sport = :{port}");
    let up = wait_until(10, || !ns.must(&["ss", "-Hltn", &filter]).trim().is_empty());
    assert!(up, "nc -l {port} never listened");
    bg
}

/// Sends `data` to `addr:port` from `ns` with nc; true if nc succeeded.
fn send(ns: &Netns, addr: &str, port: u16, data: &Path) -> bool {
    let cmd = format!("timeout 5 nc -N -w 3 {addr} {port} < {}", data.display());
    ns.exec(&["sh", "-c", &cmd]).status.success()
}

/// Waits for the listener to exit (it does at the sender's EOF).
fn finish(mut bg: Bg) {
    wait_until(15, || matches!(bg.0.try_wait(), Ok(Some(_))));
}

#[test]
fn kernel_namespaces_talk_through_the_switch() {
    if let Some(why) = skip_reason() {
        eprintln!("tap_peer: skipped: {why}");
        return;
    }
    let t0 = Instant::now();
    let pid = std::process::id();
    let dir = TempDir::new("tap");
    let prefix = Prefix::new("tap");
    let ns_a = Netns::new(format!("vpt-a-{pid}"));
    let ns_b = Netns::new(format!("vpt-b-{pid}"));
    // Interface names are at most 15 characters.
    let tap_a = format!("vpta{}", pid % 10_000_000);
    let tap_b = format!("vptb{}", pid % 10_000_000);
    for t in [&tap_a, &tap_b] {
        if link_exists(t) {
            let _ = run("ip", &["link", "del", t]);
        }
    }

    let flows = dir.path("flows.txt");
    std::fs::write(
        &flows,
        "in_port=1 actions=output:2\nin_port=2 actions=output:1\n",
    )
    .unwrap();
    let eal = common::eal(
        &prefix.0,
        &[
            format!("net_tap0,iface={tap_a}"),
            format!("net_tap1,iface={tap_b}"),
        ],
    );
    let args: Vec<String> = [
        "--eal",
        &eal,
        "--port",
        "p1=net_tap0",
        "--port",
        "p2=net_tap1",
        "--pmd-cores",
        "1",
        "--flows",
        flows.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
    let taps = wait_until(20, || link_exists(&tap_a) && link_exists(&tap_b));
    assert!(taps, "tap interfaces never appeared:\n{}", daemon.log());

    for (tap, ns, addr) in [(&tap_a, &ns_a, ADDR_A), (&tap_b, &ns_b, ADDR_B)] {
        must("ip", &["link", "set", tap, "netns", &ns.0]);
        ns.must(&["ip", "link", "set", "lo", "up"]);
        ns.must(&["ip", "addr", "add", &format!("{addr}/24"), "dev", tap]);
        ns.must(&["ip", "link", "set", tap, "up"]);
    }

    // Ping, with retries while the links come up and ARP resolves.
    let mut tries = 0;
    let pinged = wait_until(30, || {
        tries += 1;
        ping(&ns_a, ADDR_B)
    });
    assert!(
        pinged,
        "A cannot ping B after {tries} tries:\n{}",
        daemon.log()
    );
    assert!(ping(&ns_b, ADDR_A), "B cannot ping A:\n{}", daemon.log());

    // A TCP transfer from A to B.
    let data = dir.path("data");
    let payload: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&data, &payload).unwrap();
    let out = dir.path("out");
    let bg = listen(&ns_b, 5555, &out);
    assert!(
        send(&ns_a, ADDR_B, 5555, &data),
        "TCP transfer A -> B failed:\n{}",
        daemon.log()
    );
    finish(bg);
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), payload.len(), "bytes received by B");
    assert!(got == payload, "B received different bytes");

    // Drop TCP above the default rules (priority 32768).
    let o = daemon.ctl(VPORTCTL, &["add-flow", "priority=40000,tcp actions=drop"]);
    assert!(
        o.status.success(),
        "add-flow failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    assert!(
        ping(&ns_a, ADDR_B),
        "ping fails after the TCP drop rule:\n{}",
        daemon.log()
    );
    let out2 = dir.path("out2");
    let bg = listen(&ns_b, 5556, &out2);
    assert!(
        !send(&ns_a, ADDR_B, 5556, &data),
        "TCP connection succeeded despite the drop rule"
    );
    drop(bg);
    let got = std::fs::read(&out2).unwrap();
    assert!(got.is_empty(), "B received {} bytes over TCP", got.len());
    // The drop rule is what stopped it: it counted the SYNs.
    let o = daemon.ctl(VPORTCTL, &["dump-flows", "tcp"]);
    assert!(o.status.success(), "dump-flows failed");
    let dump = String::from_utf8_lossy(&o.stdout);
    let line = dump
        .lines()
        .find(|l| l.contains("priority=40000"))
        .unwrap_or_else(|| panic!("no drop rule in dump-flows:\n{dump}"));
    assert!(
        !line.contains(" n_packets=0,"),
        "the drop rule matched nothing: {line}"
    );

    let code = daemon.stop();
    let log = daemon.log();
    assert_eq!(code, Some(0), "vportd exit status after SIGTERM:\n{log}");
    drop(prefix);
    eprintln!("tap_peer: passed in {:.1} s", t0.elapsed().as_secs_f64());
}
