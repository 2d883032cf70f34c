//! NORMAL with the kernel as a real peer: net_tap ports whose kernel
//! interfaces live in network namespaces this test creates, under the
//! table `priority=0,actions=NORMAL`.
//!
//! * three hosts on three ports: every pair pings, `fdb-show` lists each
//!   host's MAC on its port; then one host moves to a fourth port (its
//!   interface on port 3 goes down, an interface with the same MAC and
//!   address comes up on port 4, as a migrated VM does) and traffic
//!   follows it: the MAC is learned on port 4 and pings work both ways;
//! * access ports on two VLANs (ports 1 and 2 `tag=10`, port 3 `tag=20`,
//!   all hosts in one IP subnet): hosts of VLAN 10 reach each other, the
//!   host of VLAN 20 reaches neither.
//!
//! Needs root, `ip netns`, `/dev/net/tun` and `ping`; without them the
//! tests print why and skip. Only the namespaces and interfaces created
//! here are touched; they go away on drop, also when a check fails.

mod common;

use common::netns::{self, link_exists, wait_until, Daemon, Host};
use common::{Prefix, TempDir};
use std::sync::Mutex;
use std::time::Instant;

const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");

/// The two tests each run a busy-polling daemon: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn skip_reason() -> Option<String> {
    netns::skip_reason(&[("ping", Some(&["-V"][..]))])
}

/// A vportd on `n` net_tap ports (extra `--port` options per port in
/// `opts`) with `priority=0,actions=NORMAL`, and its tap interfaces'
/// names. Fields drop in order: the daemon (its taps vanish), then the
/// DPDK runtime directory and the temporary directory.
struct Switch {
    daemon: Daemon,
    taps: Vec<String>,
    _prefix: Prefix,
    _dir: TempDir,
}

impl Switch {
    fn start(tag: &str, opts: &[&str]) -> Switch {
        let pid = std::process::id();
        let dir = TempDir::new(tag);
        let prefix = Prefix::new(tag);
        // Interface names are at most 15 characters.
        let taps: Vec<String> = (1..=opts.len())
            .map(|i| format!("vn{tag}{i}{}", pid % 1_000_000))
            .collect();
        for t in &taps {
            assert!(!link_exists(t), "interface {t} exists already");
        }
        let flows = dir.path("flows.txt");
        std::fs::write(&flows, "priority=0,actions=NORMAL\n").unwrap();
        let vdevs: Vec<String> = taps
            .iter()
            .enumerate()
            .map(|(i, t)| format!("net_tap{i},iface={t}"))
            .collect();
        let mut args = vec!["--eal".to_string(), common::eal(&prefix.0, &vdevs)];
        for (i, o) in opts.iter().enumerate() {
            args.push("--port".into());
            args.push(format!("p{}=net_tap{i}{o}", i + 1));
        }
        args.extend(["--pmd-cores", "1", "--flows"].map(String::from));
        args.push(flows.to_str().unwrap().into());
        let daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
        let up = wait_until(20, || taps.iter().all(|t| link_exists(t)));
        assert!(up, "tap interfaces never appeared:\n{}", daemon.log());
        Switch {
            daemon,
            taps,
            _prefix: prefix,
            _dir: dir,
        }
    }

    fn ctl(&self, args: &[&str]) -> String {
        let o = self.daemon.ctl(VPORTCTL, args);
        assert!(
            o.status.success(),
            "vportctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `fdb-show` as (port, VLAN, MAC).
    fn fdb(&self) -> Vec<(u32, u16, String)> {
        let text = self.ctl(&["fdb-show"]);
        text.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 4, "fdb-show line {l:?}");
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].to_string(),
                )
            })
            .collect()
    }
}

fn sorted(mut v: Vec<(u32, u16, String)>) -> Vec<(u32, u16, String)> {
    v.sort();
    v
}

#[test]
fn normal_learns_three_hosts_and_follows_a_move() {
    if let Some(why) = skip_reason() {
        eprintln!("normal_peer: skipped: {why}");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let pid = std::process::id();
    // Hosts before the switch: the daemon (and its taps) goes first.
    let mut hosts: Vec<Host> = Vec::new();
    let mut sw = Switch::start("m", &["", "", "", ""]);
    for i in 0..3 {
        hosts.push(Host::new(
            format!("vpn-m{}-{pid}", i + 1),
            &sw.taps[i],
            &format!("10.78.1.{}", i + 1),
        ));
    }
    // Port 4's interface waits, down, in host 3's namespace. While it was
    // up in the root namespace the kernel may have sent from it (IPv6
    // router solicitations): forget what that taught the switch.
    let new_dev = &sw.taps[3];
    hosts[2].ns.take(new_dev);
    let _ = hosts[2].ns.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{new_dev}.disable_ipv6=1"),
    ]);
    // A frame it sent may still be on its way through the upcall path:
    // flush until the table stays empty for a quiet half second.
    let quiet = wait_until(20, || {
        sw.ctl(&["fdb-flush"]);
        std::thread::sleep(std::time::Duration::from_millis(500));
        sw.fdb().is_empty()
    });
    assert!(quiet, "fdb-show never stayed empty: {:?}", sw.fdb());
    let log = || sw.daemon.log();

    // Every pair, both ways (the first ping waits for the links).
    let first = wait_until(20, || hosts[0].ping(&hosts[1].addr, 1));
    assert!(first, "host 1 never reached host 2:\n{}", log());
    for a in &hosts {
        for b in &hosts {
            if a.addr != b.addr {
                assert!(
                    a.ping(&b.addr, 3),
                    "{} cannot ping {}:\n{}",
                    a.addr,
                    b.addr,
                    log()
                );
            }
        }
    }
    let want: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (i as u32 + 1, 0u16, h.mac.clone()))
        .collect();
    assert_eq!(sorted(sw.fdb()), sorted(want), "fdb-show");

    // Host 3 moves to port 4: its old interface goes down, one with the
    // same MAC and address comes up on port 4.
    let h3 = &hosts[2];
    h3.ns.must(&["ip", "link", "set", &h3.dev, "down"]);
    h3.ns.must(&["ip", "addr", "flush", "dev", &h3.dev]);
    h3.ns
        .must(&["ip", "link", "set", new_dev, "address", &h3.mac]);
    h3.ns.must(&[
        "ip",
        "addr",
        "add",
        &format!("{}/24", h3.addr),
        "dev",
        new_dev,
    ]);
    h3.ns.must(&["ip", "link", "set", new_dev, "up"]);

    // The moved host speaks first (as a migrated VM announces itself);
    // the replies must come to port 4, where the MAC now is, although
    // megaflows to port 3 were installed for it.
    let moved = Instant::now();
    let mut tries = 0;
    let back = wait_until(10, || {
        tries += 1;
        h3.ping(&hosts[0].addr, 1)
    });
    let took = moved.elapsed();
    assert!(back, "the moved host cannot reach host 1:\n{}", log());
    assert!(
        hosts[1].ping(&h3.addr, 3),
        "host 2 cannot reach the moved host:\n{}",
        log()
    );
    assert!(
        hosts[0].ping(&h3.addr, 3),
        "host 1 cannot reach the moved host:\n{}",
        log()
    );
    let fdb = sw.fdb();
    assert!(
        fdb.contains(&(4, 0, h3.mac.clone())),
        "the moved MAC is not on port 4: {fdb:?}"
    );
    assert!(
        !fdb.iter().any(|(p, _, _)| *p == 3),
        "port 3 still has a MAC: {fdb:?}"
    );
    let stats = sw.ctl(&["fdb-stats-show"]);
    assert!(
        stats.contains("port moved MAC entries  : 1"),
        "fdb-stats-show after one move:\n{stats}"
    );
    eprintln!(
        "normal_peer: the moved host got its first reply {:.0} ms after the move ({tries} ping(s) of 1 s)",
        took.as_secs_f64() * 1e3
    );

    let code = sw.daemon.stop();
    assert_eq!(code, Some(0), "vportd exit:\n{}", sw.daemon.log());
    eprintln!("normal_peer: passed in {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn normal_access_ports_isolate_vlans() {
    if let Some(why) = skip_reason() {
        eprintln!("normal_peer: skipped: {why}");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    let mut hosts: Vec<Host> = Vec::new();
    // Ports 1, 2 in VLAN 10; 3 (and 4, to show VLAN 20 works) in 20.
    let vlans = [10u16, 10, 20, 20];
    let opts = vlans.map(|v| format!(",tag={v}"));
    let sw = Switch::start("v", &opts.each_ref().map(String::as_str));
    for i in 0..4 {
        hosts.push(Host::new(
            format!("vpn-v{}-{pid}", i + 1),
            &sw.taps[i],
            &format!("10.78.2.{}", i + 1),
        ));
    }
    let log = || sw.daemon.log();
    let up = wait_until(20, || hosts[0].ping(&hosts[1].addr, 1));
    assert!(up, "VLAN 10 hosts cannot reach each other:\n{}", log());
    for a in 0..4 {
        for b in 0..4 {
            if a == b {
                continue;
            }
            let same = vlans[a] == vlans[b];
            // A host on another VLAN gets two tries; the ARP request must
            // not reach it, so none can succeed.
            let reached = hosts[a].ping(&hosts[b].addr, if same { 3 } else { 2 });
            assert_eq!(
                reached,
                same,
                "host {} (VLAN {}) -> host {} (VLAN {}):\n{}",
                a + 1,
                vlans[a],
                b + 1,
                vlans[b],
                log()
            );
        }
    }
    // Every host's MAC was learned on its port, in its port's VLAN.
    let want: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (i as u32 + 1, vlans[i], h.mac.clone()))
        .collect();
    assert_eq!(sorted(sw.fdb()), sorted(want), "fdb-show");
}
