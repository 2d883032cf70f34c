//! Native VXLAN against the Linux kernel's own VXLAN device (issue 15).
//!
//! * namespace A plays a remote host: the kernel side of the underlay
//!   net_tap port with 192.0.2.2/24 and `vx0` (`type vxlan id 42 remote
//!   192.0.2.1 dstport 4789`) holding 10.9.0.2/24, MTU 1450;
//! * namespace B plays a local VM on a second net_tap port, 10.9.0.1/24;
//! * vportd has `--local-ip under=192.0.2.1/24`, a tunnel port
//!   `vx=vxlan,remote_ip=192.0.2.2,key=42` and rules joining the VM port
//!   and the tunnel port.
//!
//! ping both ways (ARP across the overlay included; the underlay's ARP
//! is vportd's own responder and resolver), then a TCP transfer each way
//! with the payload compared. The kernel sends a UDP checksum and DF
//! clear, so decap verifies a checksum on every packet. Last, a second
//! kernel VXLAN device with VNI 43 sends: no tunnel port takes it, and the
//! drop is counted (`tunnel_no_port`).
//!
//! Needs root, `ip netns`, `/dev/net/tun`, the kernel's vxlan module,
//! `ping`, `nc`, `ss` and `timeout`; without them it prints why and skips.

mod common;

use common::netns::{self, link_exists, ping, transfer, wait_until, Daemon, Netns};
use common::{Prefix, TempDir};

const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");

/// The remote host's underlay MAC.
const A_MAC: &str = "02:00:00:00:0a:01";

const FLOWS: &str = "\
in_port=2,actions=output:3
in_port=3,actions=output:2
";

fn quiet_ipv6(ns: &Netns) {
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
}

#[test]
fn vxlan_with_the_kernel_as_peer() {
    let extra: &[(&str, Option<&[&str]>)] = &[
        ("ping", Some(&["-V"][..])),
        ("nc", Some(&["-h"][..])),
        ("ss", Some(&["-V"][..])),
        ("timeout", Some(&["--version"][..])),
    ];
    if let Some(why) = netns::skip_reason(extra) {
        eprintln!("tunnel_vxlan: skipped: {why}");
        return;
    }
    let pid = std::process::id();
    // The kernel's VXLAN device: probe in a scratch namespace.
    let probe = Netns::new(format!("vtx-probe-{pid}"));
    if !probe
        .exec(&[
            "ip", "link", "add", "vxp", "type", "vxlan", "id", "1", "dstport", "4789",
        ])
        .status
        .success()
    {
        eprintln!("tunnel_vxlan: skipped: the kernel has no vxlan devices");
        return;
    }
    drop(probe);

    let dir = TempDir::new("tvx");
    let prefix = Prefix::new("tvx");
    let taps: Vec<String> = ["u", "v"]
        .iter()
        .map(|t| format!("vtx{t}{}", pid % 1_000_000))
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
    for a in [
        "--port",
        "under=net_tap0",
        "--port",
        "vm=net_tap1",
        "--port",
        "vx=vxlan,remote_ip=192.0.2.2,key=42",
        "--local-ip",
        "under=192.0.2.1/24",
        "--pmd-cores",
        "1",
        "--flows",
    ] {
        args.push(a.to_string());
    }
    args.push(flows.to_str().unwrap().into());
    // Declared before the daemon, so that the daemon (and its taps) drops
    // first.
    let a: Netns;
    let b: Netns;
    let daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
    let up = wait_until(20, || taps.iter().all(|t| link_exists(t)));
    assert!(up, "tap interfaces never appeared:\n{}", daemon.log());
    let ctl = |a: &[&str]| -> String {
        let o = daemon.ctl(VPORTCTL, a);
        assert!(
            o.status.success(),
            "vportctl {a:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    // A: the remote host with the kernel VXLAN endpoint.
    a = Netns::new(format!("vtx-a-{pid}"));
    quiet_ipv6(&a);
    a.take(&taps[0]);
    // Its own MAC (net_tap gives the kernel side the DPDK port's MAC).
    a.must(&["ip", "link", "set", &taps[0], "address", A_MAC]);
    a.must(&["ip", "link", "set", "lo", "up"]);
    a.must(&["ip", "addr", "add", "192.0.2.2/24", "dev", &taps[0]]);
    a.must(&["ip", "link", "set", &taps[0], "up"]);
    a.must(&[
        "ip",
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "42",
        "remote",
        "192.0.2.1",
        "dstport",
        "4789",
        "dev",
        &taps[0],
    ]);
    a.must(&["ip", "link", "set", "vx0", "mtu", "1450"]);
    a.must(&["ip", "addr", "add", "10.9.0.2/24", "dev", "vx0"]);
    a.must(&["ip", "link", "set", "vx0", "up"]);
    // B: the local VM.
    b = Netns::new(format!("vtx-b-{pid}"));
    quiet_ipv6(&b);
    b.take(&taps[1]);
    b.must(&["ip", "link", "set", "lo", "up"]);
    b.must(&["ip", "link", "set", &taps[1], "mtu", "1450"]);
    b.must(&["ip", "addr", "add", "10.9.0.1/24", "dev", &taps[1]]);
    b.must(&["ip", "link", "set", &taps[1], "up"]);

    // What the taps sent from the root namespace (whose own addresses may
    // answer ARP) is forgotten.
    ctl(&["tnl-neigh-flush"]);
    // B first: vportd must resolve 192.0.2.2 by ARP itself (the first
    // packets wait for it and are counted as tunnel_neigh_miss).
    assert!(
        ping(&b, "10.9.0.2", 15),
        "B -> A over VXLAN failed\nneigh: {}\nflows: {}\n{}",
        ctl(&["tnl-neigh-show"]),
        ctl(&["dump-megaflows"]),
        daemon.log()
    );
    assert!(ping(&a, "10.9.0.1", 5), "A -> B over VXLAN failed");

    let neigh = ctl(&["tnl-neigh-show"]);
    assert!(neigh.contains("192.0.2.2"), "tnl-neigh-show: {neigh}");
    let a_mac = a.mac(&taps[0]);
    assert!(
        neigh.contains(&a_mac),
        "tnl-neigh-show lacks {a_mac}: {neigh}"
    );
    let routes = ctl(&["tnl-route-show"]);
    assert!(
        routes.contains("Cached: 192.0.2.0/24 dev under SRC 192.0.2.1"),
        "tnl-route-show: {routes}"
    );
    let show = ctl(&["show"]);
    assert!(
        show.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["vx", "3", "vxlan", "192.0.2.2", "42", "4789"]),
        "show lacks the tunnel port:\n{show}"
    );
    let mf = ctl(&["dump-megaflows"]);
    eprintln!("{neigh}\n{routes}\n{mf}");
    assert!(mf.contains("tnl_push(tnl_port(3)"), "no tnl_push: {mf}");
    assert!(mf.contains("tnl_pop(3)"), "no tnl_pop: {mf}");

    // TCP both ways, payload compared (larger than one MSS).
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path("payload");
    std::fs::write(&file, &data).unwrap();
    let got = transfer(&b, &a, "10.9.0.2", 5301, &file);
    assert!(
        got == data,
        "B -> A: {} of {} bytes, or different",
        got.len(),
        data.len()
    );
    let got = transfer(&a, &b, "10.9.0.1", 5302, &file);
    assert!(
        got == data,
        "A -> B: {} of {} bytes, or different",
        got.len(),
        data.len()
    );

    // A VNI no tunnel port takes: dropped, counted.
    a.must(&[
        "ip",
        "link",
        "add",
        "vx1",
        "type",
        "vxlan",
        "id",
        "43",
        "remote",
        "192.0.2.1",
        "dstport",
        "4789",
        "dev",
        &taps[0],
    ]);
    a.must(&["ip", "addr", "add", "10.9.1.2/24", "dev", "vx1"]);
    a.must(&["ip", "link", "set", "vx1", "up"]);
    assert!(!ping(&a, "10.9.1.1", 2), "VNI 43 must not get through");
    let dropped = wait_until(10, || {
        ctl(&["metrics"]).lines().any(|l| {
            l.starts_with("vportd_pmd_drops_total")
                && l.contains("reason=\"tunnel_no_port\"")
                && !l.ends_with(" 0")
        })
    });
    assert!(
        dropped,
        "no tunnel_no_port drop counted:\n{}",
        ctl(&["metrics"])
    );
}
