//! Native VXLAN, Geneve and GRE against Open vSwitch's own userspace
//! tunnelling (issue 15): the kernel here has no geneve or GRE module, so
//! the remote end is a private `ovs-vswitchd` (netdev datapath, as OVS's
//! `system-userspace-traffic` "ping over geneve/gre tunnel" tests run it)
//! in namespace A: `br-under` holds the kernel side of vportd's underlay
//! net_tap port and the address 192.0.2.2/24, `br0` holds the tunnel port
//! (`remote_ip=192.0.2.1`, `key=42`) and, on its internal port,
//! 10.9.0.2/24. Namespace B is the VM on vportd's second port. OVS
//! resolves vportd's underlay address by ARP (vportd's responder) and
//! vportd resolves OVS's; ping and a TCP transfer (payload compared) must
//! work both ways.
//!
//! Needs root, `ip netns`, `/dev/net/tun`, `ping`, `nc`, `ss`, `timeout` and Open vSwitch
//! (`ovsdb-tool`, `ovsdb-server`, `ovs-vswitchd`, `ovs-vsctl`,
//! `ovs-appctl`); without them it prints why and skips.

mod common;

use common::netns::{self, link_exists, ping, run, transfer, wait_until, Daemon, Netns};
use common::{Prefix, TempDir};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// One busy-polling daemon and one ovs-vswitchd at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const FLOWS: &str = "\
in_port=2,actions=output:3
in_port=3,actions=output:2
";

/// A private ovsdb-server and ovs-vswitchd in a namespace; both are
/// stopped (by their pid files) on drop.
struct Ovs {
    ns: String,
    dir: PathBuf,
}

impl Ovs {
    fn start(ns: &Netns, dir: &Path) -> Ovs {
        let ovs = Ovs {
            ns: ns.0.clone(),
            dir: dir.to_path_buf(),
        };
        let d = dir.to_str().unwrap();
        ovs.must("ovsdb-tool", &["create", &format!("{d}/conf.db"), SCHEMA]);
        ovs.must(
            "ovsdb-server",
            &[
                &format!("{d}/conf.db"),
                &format!("--remote=punix:{d}/db.sock"),
                &format!("--pidfile={d}/ovsdb.pid"),
                &format!("--unixctl={d}/ovsdb.ctl"),
                &format!("--log-file={d}/ovsdb.log"),
                "--detach",
            ],
        );
        ovs.vsctl(&["init"]);
        ovs.must(
            "ovs-vswitchd",
            &[
                &format!("unix:{d}/db.sock"),
                &format!("--pidfile={d}/vs.pid"),
                &format!("--unixctl={d}/vs.ctl"),
                &format!("--log-file={d}/vs.log"),
                "--disable-system",
                "--detach",
            ],
        );
        ovs
    }

    /// Runs an OVS program in the namespace with every OVS directory in
    /// the test's own.
    fn run(&self, prog: &str, args: &[&str]) -> std::process::Output {
        let d = &self.dir;
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, prog])
            .args(args)
            .env("OVS_RUNDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_SYSCONFDIR", d)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {prog}: {e}"))
    }

    fn must(&self, prog: &str, args: &[&str]) -> String {
        let o = self.run(prog, args);
        assert!(
            o.status.success(),
            "{prog} {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}/db.sock", self.dir.display());
        let mut a = vec![db.as_str(), "--no-wait"];
        a.extend_from_slice(args);
        self.must("ovs-vsctl", &a)
    }

    fn appctl(&self, args: &[&str]) -> String {
        let t = format!("{}/vs.ctl", self.dir.display());
        let mut a = vec!["-t", t.as_str()];
        a.extend_from_slice(args);
        String::from_utf8_lossy(&self.run("ovs-appctl", &a).stdout).into_owned()
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for pid in ["vs.pid", "ovsdb.pid"] {
            if let Ok(p) = std::fs::read_to_string(self.dir.join(pid)) {
                let _ = run("kill", &[p.trim()]);
            }
        }
    }
}

fn skip_reason() -> Option<String> {
    let progs: &[(&str, Option<&[&str]>)] = &[
        ("ping", Some(&["-V"][..])),
        ("nc", Some(&["-h"][..])),
        ("ss", Some(&["-V"][..])),
        ("timeout", Some(&["--version"][..])),
        ("ovs-vswitchd", Some(&["--version"][..])),
        ("ovsdb-server", Some(&["--version"][..])),
        ("ovsdb-tool", Some(&["--version"][..])),
        ("ovs-vsctl", Some(&["--version"][..])),
        ("ovs-appctl", Some(&["--version"][..])),
    ];
    if let Some(why) = netns::skip_reason(progs) {
        return Some(why);
    }
    (!Path::new(SCHEMA).exists()).then(|| format!("no {SCHEMA}"))
}

fn ping_over(kind: &str) {
    if let Some(why) = skip_reason() {
        eprintln!("tunnel_ovs: skipped: {why}");
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    let tag = &kind[..2];
    let dir = TempDir::new(&format!("tov{tag}"));
    let prefix = Prefix::new(&format!("tov{tag}"));
    let taps: Vec<String> = ["u", "v"]
        .iter()
        .map(|t| format!("vo{tag}{t}{}", pid % 1_000_000))
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
    let tunnel = format!("tun={kind},remote_ip=192.0.2.2,key=42");
    let mut args = vec!["--eal".to_string(), common::eal(&prefix.0, &vdevs)];
    for a in [
        "--port",
        "under=net_tap0",
        "--port",
        "vm=net_tap1",
        "--port",
        &tunnel,
        "--local-ip",
        "under=192.0.2.1/24",
        "--pmd-cores",
        "1",
        "--flows",
    ] {
        args.push(a.to_string());
    }
    args.push(flows.to_str().unwrap().into());
    // Dropped after the daemon (declared first): OVS, then the namespaces.
    let a: Netns;
    let b: Netns;
    let ovs: Ovs;
    let daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
    let up = wait_until(20, || taps.iter().all(|t| link_exists(t)));
    assert!(up, "tap interfaces never appeared:\n{}", daemon.log());
    let ctl = |args: &[&str]| -> String {
        let o = daemon.ctl(VPORTCTL, args);
        assert!(o.status.success(), "vportctl {args:?} failed");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    a = Netns::new(format!("vto-a{tag}-{pid}"));
    b = Netns::new(format!("vto-b{tag}-{pid}"));
    for ns in [&a, &b] {
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        ns.must(&["ip", "link", "set", "lo", "up"]);
    }
    // Only br-under answers ARP for 192.0.2.2.
    a.must(&["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"]);
    a.take(&taps[0]);
    // Its own MAC (net_tap gives the kernel side the DPDK port's MAC).
    a.must(&[
        "ip",
        "link",
        "set",
        &taps[0],
        "address",
        "02:00:00:00:0a:01",
    ]);
    a.must(&["ip", "link", "set", &taps[0], "up"]);
    b.take(&taps[1]);
    b.must(&["ip", "link", "set", &taps[1], "mtu", "1450"]);
    b.must(&["ip", "addr", "add", "10.9.0.1/24", "dev", &taps[1]]);
    b.must(&["ip", "link", "set", &taps[1], "up"]);

    let odir = dir.path("ovs");
    std::fs::create_dir_all(&odir).unwrap();
    ovs = Ovs::start(&a, &odir);
    ovs.vsctl(&[
        "add-br",
        "br-under",
        "--",
        "set",
        "bridge",
        "br-under",
        "datapath_type=netdev",
        "other_config:hwaddr=02:00:00:00:0a:02",
    ]);
    ovs.vsctl(&["add-port", "br-under", &taps[0]]);
    ovs.vsctl(&[
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "datapath_type=netdev",
    ]);
    let port = format!("at_{kind}");
    ovs.vsctl(&[
        "add-port",
        "br0",
        &port,
        "--",
        "set",
        "interface",
        &port,
        &format!("type={kind}"),
        "options:remote_ip=192.0.2.1",
        "options:key=42",
    ]);
    let internal = wait_until(10, || {
        a.exec(&["ip", "link", "show", "br-under"]).status.success()
            && a.exec(&["ip", "link", "show", "br0"]).status.success()
    });
    assert!(internal, "OVS's internal ports never appeared");
    a.must(&["ip", "addr", "add", "192.0.2.2/24", "dev", "br-under"]);
    a.must(&["ip", "link", "set", "br-under", "up"]);
    a.must(&["ip", "addr", "add", "10.9.0.2/24", "dev", "br0"]);
    a.must(&["ip", "link", "set", "br0", "mtu", "1450", "up"]);
    // OVS reads routes from the kernel as they change; say it outright.
    ovs.appctl(&["ovs/route/add", "192.0.2.0/24", "br-under"]);
    // What the taps sent from the root namespace is forgotten.
    ctl(&["tnl-neigh-flush"]);

    let diag = || {
        format!(
            "vportd:\n{}{}\nOVS:\n{}{}",
            ctl(&["tnl-neigh-show"]),
            ctl(&["dump-megaflows"]),
            ovs.appctl(&["tnl/neigh/show"]),
            ovs.appctl(&["dpctl/dump-flows"])
        )
    };
    assert!(
        ping(&b, "10.9.0.2", 15),
        "B -> A over {kind} failed\n{}",
        diag()
    );
    assert!(
        ping(&a, "10.9.0.1", 5),
        "A -> B over {kind} failed\n{}",
        diag()
    );
    let neigh = ctl(&["tnl-neigh-show"]);
    assert!(
        neigh.contains("02:00:00:00:0a:02"),
        "vportd did not learn br-under's MAC: {neigh}"
    );
    let ovs_neigh = ovs.appctl(&["tnl/neigh/show"]);
    assert!(
        ovs_neigh.contains("192.0.2.1"),
        "OVS did not resolve vportd's address: {ovs_neigh}"
    );
    // TCP both ways, payload compared.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = dir.path("payload");
    std::fs::write(&file, &data).unwrap();
    let got = transfer(&b, &a, "10.9.0.2", 5311, &file);
    assert!(
        got == data,
        "{kind} B -> A: {} of {} bytes, or different",
        got.len(),
        data.len()
    );
    let got = transfer(&a, &b, "10.9.0.1", 5312, &file);
    assert!(
        got == data,
        "{kind} A -> B: {} of {} bytes, or different",
        got.len(),
        data.len()
    );
}

#[test]
fn ping_over_geneve_with_ovs() {
    ping_over("geneve");
}

#[test]
fn ping_over_gre_with_ovs() {
    ping_over("gre");
}

#[test]
fn ping_over_vxlan_with_ovs() {
    ping_over("vxlan");
}
