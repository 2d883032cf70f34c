//! os-ken's `simple_switch_13` (the L2 learning app nobody on the team
//! wrote) drives vportd over OpenFlow 1.3 as its active controller: two
//! hosts in network namespaces on net_tap ports ping each other and pass a
//! TCP transfer (`nc`), and the flows the app learned appear in
//! `dump-flows`. The app floods and forwards with PACKET_OUT action lists
//! (`output:FLOOD`, `output:N`) and installs a table-miss
//! `CONTROLLER:65535` rule and per-MAC rules.
//!
//! os-ken comes from `make osken` (a venv under out/: `osken-manager` of
//! os-ken 3.x, and `simple_switch_13.py` from the os-ken 1.4.1 wheel, the
//! last that ships the apps), which this test runs. Needs root, `ip netns`,
//! `/dev/net/tun`, `ping`, `nc` and `ss`; without them it prints why and
//! skips. Everything started here is stopped by PID on drop.

mod common;

use common::netns::{self, link_exists, wait_until, Daemon, Netns};
use common::{Prefix, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `make osken`; the venv directory.
fn osken_venv() -> PathBuf {
    let o = Command::new("make")
        .arg("-C")
        .arg(root())
        .arg("--no-print-directory")
        .arg("osken")
        .output()
        .expect("running make osken");
    assert!(
        o.status.success(),
        "make osken failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    root().join("out/venv-osken")
}

/// osken-manager running an app, stopped by PID on drop.
struct OsKen {
    child: Child,
    log: PathBuf,
}

impl OsKen {
    fn start(venv: &Path, app: &Path, port: u16, log: PathBuf) -> OsKen {
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(venv.join("bin/osken-manager"))
            .args(["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port"])
            .arg(port.to_string())
            .arg(app)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawning osken-manager");
        OsKen { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OsKen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening(ns: Option<&Netns>, port: u16) -> bool {
    let out = match ns {
        Some(ns) => ns.exec(&["ss", "-ltn"]),
        None => netns::run("ss", &["-ltn"]),
    };
    String::from_utf8_lossy(&out.stdout).contains(&format!(":{port} "))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A namespace with `dev` in it at `addr`/24 (IPv6 off, so the only
/// traffic is the test's).
fn host(name: String, dev: &str, addr: &str) -> Netns {
    let ns = Netns::new(name);
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    ns.take(dev);
    ns.must(&["ip", "link", "set", "lo", "up"]);
    ns.must(&["ip", "addr", "add", &format!("{addr}/24"), "dev", dev]);
    ns.must(&["ip", "link", "set", dev, "up"]);
    ns
}

fn ping(ns: &Netns, addr: &str, tries: u32) -> bool {
    (0..tries).any(|_| {
        ns.exec(&["ping", "-c", "1", "-W", "1", addr])
            .status
            .success()
    })
}

#[test]
fn simple_switch_13_learns_and_forwards_ping_and_tcp() {
    let extra: &[(&str, Option<&[&str]>)] = &[
        ("ping", Some(&["-V"][..])),
        ("nc", Some(&["-h"][..])),
        ("ss", Some(&["-V"][..])),
        ("make", Some(&["--version"][..])),
    ];
    if let Some(why) = netns::skip_reason(extra) {
        eprintln!("openflow_osken: skipped: {why}");
        return;
    }
    let venv = osken_venv();
    let pid = std::process::id();
    let dir = TempDir::new("osken");
    let port = free_port();
    let osken = OsKen::start(
        &venv,
        &venv.join("apps/simple_switch_13.py"),
        port,
        dir.path("osken.log"),
    );
    assert!(
        wait_until(60, || listening(None, port)),
        "osken-manager never listened:\n{}",
        osken.log()
    );

    let prefix = Prefix::new("osken");
    let taps: Vec<String> = (1..=2)
        .map(|i| format!("vok{i}{}", pid % 1_000_000))
        .collect();
    for t in &taps {
        assert!(!link_exists(t), "interface {t} exists already");
    }
    let flows = dir.path("flows.txt");
    std::fs::write(&flows, "").unwrap();
    let vdevs: Vec<String> = taps
        .iter()
        .enumerate()
        .map(|(i, t)| format!("net_tap{i},iface={t}"))
        .collect();
    let mut args = vec!["--eal".to_string(), common::eal(&prefix.0, &vdevs)];
    for i in 0..taps.len() {
        args.push("--port".into());
        args.push(format!("p{}=net_tap{i}", i + 1));
    }
    args.extend(["--pmd-cores", "1", "--flows"].map(String::from));
    args.push(flows.to_str().unwrap().into());
    args.extend(["--controller".to_string(), format!("tcp:127.0.0.1:{port}")]);
    let daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
    assert!(
        wait_until(20, || taps.iter().all(|t| link_exists(t))),
        "tap interfaces never appeared:\n{}",
        daemon.log()
    );
    let ctl = |a: &[&str]| {
        let o = daemon.ctl(VPORTCTL, a);
        assert!(o.status.success(), "vportctl {a:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The app installs its table-miss rule once it has the features.
    assert!(
        wait_until(30, || ctl(&["dump-flows"])
            .contains("actions=CONTROLLER:65535")),
        "no table-miss rule from simple_switch_13:\n{}\n--- os-ken:\n{}",
        daemon.log(),
        osken.log()
    );
    let a = host(format!("vpok1-{pid}"), &taps[0], "10.81.0.1");
    let b = host(format!("vpok2-{pid}"), &taps[1], "10.81.0.2");
    let diag = || {
        format!(
            "--- vportd:\n{}\n--- os-ken:\n{}",
            daemon.log(),
            osken.log()
        )
    };

    assert!(ping(&a, "10.81.0.2", 20), "A cannot ping B\n{}", diag());
    assert!(ping(&b, "10.81.0.1", 5), "B cannot ping A\n{}", diag());

    // A TCP transfer A -> B (200 kB).
    let data: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let src = dir.path("data.txt");
    std::fs::write(&src, &data).unwrap();
    let dst = dir.path("received.txt");
    let server = b.spawn(
        &[
            "bash",
            "-c",
            &format!(
                "exec timeout 30 nc -l 5301 > {} < <(sleep 30)",
                dst.display()
            ),
        ],
        Stdio::null(),
    );
    let mut server = Guard(server);
    assert!(
        wait_until(10, || listening(Some(&b), 5301)),
        "nc never listened in B"
    );
    let sent = a.exec(&[
        "sh",
        "-c",
        &format!("timeout 20 nc -N -w 5 10.81.0.2 5301 < {}", src.display()),
    ]);
    assert!(
        sent.status.success(),
        "nc A -> B failed: {sent:?}\n{}",
        diag()
    );
    let _ = server.0.wait();
    assert_eq!(
        std::fs::read(&dst).unwrap_or_default().len(),
        data.len(),
        "B received the whole transfer\n{}",
        diag()
    );

    // The flows the app learned: one per direction, per MAC pair.
    let (ma, mb) = (a.mac(&taps[0]), b.mac(&taps[1]));
    let dump = ctl(&["dump-flows"]);
    for (in_port, src, dst, out) in [(1, &ma, &mb, 2), (2, &mb, &ma, 1)] {
        let want =
            format!("priority=1,in_port={in_port},dl_src={src},dl_dst={dst} actions=output:{out}");
        assert!(
            dump.lines().any(|l| l.ends_with(&want)),
            "no learned flow {want:?} in:\n{dump}"
        );
    }
    drop((a, b));
    drop(daemon);
    drop(osken);
}

/// A child killed on drop (the nc server, also when a check fails).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
