//! vhost-user ports against a real guest: `dpdk-testpmd` with a
//! `net_virtio_user` port stands in for the VM (its `io` forwarding sends
//! every frame back unchanged). Both processes run on `--no-huge`; the
//! guest gets its own file prefix. Tests that need the guest skip with a
//! printed reason when dpdk-testpmd is not installed.

mod ctl_util;
use ctl_util::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// dpdk-testpmd on PATH, or None (the test prints why it skips).
fn testpmd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("dpdk-testpmd"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped: dpdk-testpmd is not installed (Debian package dpdk-dev)");
    }
    found
}

/// A testpmd guest on one `net_virtio_user` port, forwarding in `io` mode
/// back out of the same port. Killed (SIGKILL, as a crashing VM) on drop.
struct Guest {
    child: Option<Child>,
    prefix: String,
    log: PathBuf,
}

impl Guest {
    /// `server`: the guest owns the socket (vportd is a vhost-user client).
    fn start(
        bin: &Path,
        dir: &TempDir,
        tag: &str,
        socket: &Path,
        server: bool,
        queues: u16,
    ) -> Guest {
        Self::start_mode(bin, dir, tag, socket, server, queues, "io")
    }

    /// The same, in testpmd forwarding mode `mode` (`io`, `txonly`, ...).
    fn start_mode(
        bin: &Path,
        dir: &TempDir,
        tag: &str,
        socket: &Path,
        server: bool,
        queues: u16,
        mode: &str,
    ) -> Guest {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let prefix = format!(
            "vhg{tag}{}x{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        if server {
            // A socket a killed guest left behind.
            let _ = std::fs::remove_file(socket);
        }
        let log = dir.path(&format!("{prefix}.log"));
        let vdev = format!(
            "--vdev=net_virtio_user0,path={},queues={queues}{}",
            socket.display(),
            if server { ",server=1" } else { "" }
        );
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args([
                "--lcores=(0,1)@0",
                "--no-huge",
                "-m",
                "512",
                "--no-pci",
                "--no-shconf",
                "--no-telemetry",
                &format!("--file-prefix={prefix}"),
                &vdev,
                "--",
                &format!("--forward-mode={mode}"),
                "--port-topology=loop",
                "--auto-start",
                "--stats-period=1",
                "--total-num-mbufs=4096",
                "--nb-cores=1",
                &format!("--rxq={queues}"),
                &format!("--txq={queues}"),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawning dpdk-testpmd");
        Guest {
            child: Some(child),
            prefix,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL (the VM dies), and wait for it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
    }
}

fn port<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {show}"))
}

fn connected(d: &Daemon, name: &str) -> bool {
    port(&d.json(&["show"]), name)["vhost"]["connected"] == true
}

fn mbufs_in_use(d: &Daemon) -> u64 {
    d.json(&["show"])["mbuf_pool"]["in_use"].as_u64().unwrap()
}

/// Sum of every `link_down` counter in a JSON tree (the PMDs' drops).
fn sum_key(v: &Value, key: &str) -> u64 {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| {
                if k == key {
                    x.as_u64().unwrap_or(0)
                } else {
                    sum_key(x, key)
                }
            })
            .sum(),
        Value::Array(a) => a.iter().map(|x| sum_key(x, key)).sum(),
        _ => 0,
    }
}

fn wait_or_panic(secs: u64, what: &str, d: &Daemon, guests: &[&Guest], cond: impl FnMut() -> bool) {
    if !wait_until(secs, cond) {
        let g: Vec<String> = guests.iter().map(|g| g.log()).collect();
        panic!(
            "{what} (within {secs} s)\n--- show ---\n{}\n--- vportd ---\n{}\n--- guests ---\n{}",
            d.ok(&["show"]),
            d.log(),
            g.join("\n---\n")
        );
    }
}

/// p1 → vm1 (vportd listens) → vm2 (vportd connects) → p2, byte-exact:
/// every frame goes into a guest and comes back out of it, through two
/// guests, with the source port added at run time once both are up. (The
/// first frames after a guest's link comes up may find its rx ring not yet
/// filled and are dropped, counted: so the source replays its 64 frames
/// until a thousand have come through.)
#[test]
fn two_guests_forward_byte_exact() {
    let Some(bin) = testpmd() else { return };
    let dir = TempDir::new("vh2g");
    let frames: Vec<Vec<u8>> = (0..64).map(udp_frame).collect();
    write_pcap(&dir.path("in.pcap"), &frames);
    let s1 = dir.path("vm1.sock");
    let s2 = dir.path("vm2.sock");
    let vm1 = format!("vm1=vhost-user:{}", s1.display());
    let vm2 = format!("vm2=vhost-user-client:{}", s2.display());
    let d = Daemon::start(
        "vh2g",
        Setup {
            vdevs: vec!["net_pcap1,tx_pcap={dir}/out.pcap".into()],
            ports: vec![&vm1, &vm2, "p2=net_pcap1"],
            flows: "in_port=4,actions=output:1\nin_port=1,actions=output:2\nin_port=2,actions=output:3\n",
            extra: vec![],
        },
        dir,
    );
    // vportd made the server socket, owner-only.
    let mode = std::fs::metadata(&s1).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", d.log());
    let show = d.json(&["show"]);
    for (name, m) in [("vm1", "vhost-user"), ("vm2", "vhost-user-client")] {
        let p = port(&show, name);
        assert_eq!(p["driver"], "net_vhost");
        assert_eq!(p["vhost"]["mode"], m);
        assert_eq!(p["vhost"]["connected"], false);
        assert_eq!(p["link"]["up"], false);
    }
    let g1 = Guest::start(&bin, &d.dir, "a", &s1, false, 1);
    let g2 = Guest::start(&bin, &d.dir, "b", &s2, true, 1);
    wait_or_panic(60, "guests never connected", &d, &[&g1, &g2], || {
        connected(&d, "vm1") && connected(&d, "vm2")
    });
    let src = format!(
        "net_pcap9,rx_pcap={},infinite_rx=1,ofport=4",
        d.dir.path("in.pcap").display()
    );
    d.ok(&["add-port", "p1", &src]);
    wait_or_panic(60, "p2 never sent 1000 frames", &d, &[&g1, &g2], || {
        d.port_stat("p2", "tx_packets") >= 1000
    });
    d.ok(&["del-port", "p1"]);
    let show = d.json(&["show"]);
    for name in ["vm1", "vm2"] {
        let st = &port(&show, name)["stats"];
        assert!(st["tx_packets"].as_u64().unwrap() >= 1000, "{name}: {st}");
        assert!(st["rx_packets"].as_u64().unwrap() >= 1000, "{name}: {st}");
    }
    // Closing p2 completes its pcap.
    d.ok(&["del-port", "p2"]);
    let got = read_pcap_file(&d.dir.path("out.pcap"));
    assert!(got.len() >= 1000, "{} frames\n{}", got.len(), d.log());
    let known: std::collections::HashSet<&Vec<u8>> = frames.iter().collect();
    let changed = got.iter().filter(|f| !known.contains(f)).count();
    assert_eq!(changed, 0, "frames changed on the way through the guests");
    let seen: std::collections::HashSet<&Vec<u8>> = got.iter().collect();
    assert_eq!(seen.len(), frames.len(), "some flows never came back");
}

fn read_pcap_file(p: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(p).unwrap_or_default();
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16;
        if off + incl > data.len() {
            break;
        }
        frames.push(data[off..off + incl].to_vec());
        off += incl;
    }
    frames
}

/// The link follows the guest: down (and output counted as `link_down`)
/// until it comes, down again when it is killed, up when it is back, with
/// traffic resuming and vportd never restarted; afterwards the pool is
/// back to its baseline.
#[test]
fn guest_restart_link_state_and_no_leak() {
    let Some(bin) = testpmd() else { return };
    let dir = TempDir::new("vhrc");
    write_pcap(
        &dir.path("in.pcap"),
        &(0..64).map(udp_frame).collect::<Vec<_>>(),
    );
    let sock = dir.path("vm1.sock");
    let vm1 = format!("vm1=vhost-user-client:{}", sock.display());
    let d = Daemon::start(
        "vhrc",
        Setup {
            vdevs: vec!["net_null0,no-rx=1".into()],
            ports: vec![&vm1, "p2=net_null0"],
            flows: "in_port=3,actions=output:1\nin_port=1,actions=output:2\n",
            extra: vec![],
        },
        dir,
    );
    let baseline = mbufs_in_use(&d);
    let src = format!(
        "net_pcap9,rx_pcap={},infinite_rx=1,ofport=3",
        d.dir.path("in.pcap").display()
    );
    d.ok(&["add-port", "p1", &src]);
    // No guest: everything for vm1 is dropped as link_down, nothing stalls.
    wait_or_panic(30, "no link_down drops", &d, &[], || {
        d.port_stat("vm1", "tx_link_down") > 1000
    });
    assert!(sum_key(&d.json(&["pmd-stats-show"]), "link_down") > 0);
    assert!(!connected(&d, "vm1"));

    let mut g = Guest::start(&bin, &d.dir, "r1", &sock, true, 1);
    wait_or_panic(60, "guest 1 never connected", &d, &[&g], || {
        connected(&d, "vm1")
    });
    wait_or_panic(60, "no traffic through guest 1", &d, &[&g], || {
        d.port_stat("p2", "tx_packets") > 10_000
    });

    g.kill();
    wait_or_panic(30, "link stayed up after the guest died", &d, &[], || {
        !connected(&d, "vm1")
    });
    let down = d.port_stat("vm1", "tx_link_down");
    wait_or_panic(
        30,
        "no link_down drops after the guest died",
        &d,
        &[],
        || d.port_stat("vm1", "tx_link_down") > down + 1000,
    );
    let through = d.port_stat("p2", "tx_packets");

    let g2 = Guest::start(&bin, &d.dir, "r2", &sock, true, 1);
    wait_or_panic(60, "vportd never reconnected", &d, &[&g2], || {
        connected(&d, "vm1")
    });
    wait_or_panic(60, "traffic did not resume", &d, &[&g2], || {
        d.port_stat("p2", "tx_packets") > through + 10_000
    });

    // Stop the source: every mbuf comes home.
    d.ok(&["del-port", "p1"]);
    wait_or_panic(30, "mbufs not back to the baseline", &d, &[&g2], || {
        mbufs_in_use(&d) == baseline
    });
    drop(g2);
    wait_or_panic(30, "link stayed up", &d, &[], || !connected(&d, "vm1"));
    assert_eq!(mbufs_in_use(&d), baseline);
    let log = d.stop();
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}

/// queues=2: two rx queues dealt to the two PMDs, two tx queues; with one
/// queue pair and two PMDs the tx queue is shared.
#[test]
fn two_queue_pairs_and_shared_tx() {
    let Some(bin) = testpmd() else { return };
    let dir = TempDir::new("vhmq");
    write_pcap(
        &dir.path("in.pcap"),
        &(0..64).map(udp_frame).collect::<Vec<_>>(),
    );
    let s1 = dir.path("vm1.sock");
    let vm1 = format!("vm1=vhost-user:{},queues=2", s1.display());
    let d = Daemon::start(
        "vhmq",
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into(),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", &vm1, "p2=net_null0"],
            flows: "in_port=1,actions=output:2\nin_port=2,actions=output:3\n",
            extra: vec!["--pmd-cores".into(), "0,1".into()],
        },
        dir,
    );
    let show = d.json(&["show"]);
    let p = port(&show, "vm1");
    assert_eq!(p["n_rxq"], 2);
    assert_eq!(p["n_txq"], 2);
    assert_eq!(p["vhost"]["queues"], 2);
    let mut pmds: Vec<u64> = p["rxq_pmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    pmds.sort_unstable();
    assert_eq!(pmds, vec![0, 1], "one rx queue per PMD: {p}");
    let rxqs = d.ok(&["pmd-rxq-show"]);
    assert!(rxqs.contains("vm1"), "{rxqs}");
    // p1 (net_pcap) has one tx queue for two PMDs.
    assert!(
        d.log()
            .contains("port p1: 1 tx queue(s) for 2 PMD threads: shared"),
        "{}",
        d.log()
    );
    let g = Guest::start(&bin, &d.dir, "q", &s1, false, 2);
    wait_or_panic(60, "guest never connected", &d, &[&g], || {
        connected(&d, "vm1")
    });
    wait_or_panic(60, "no traffic through the guest", &d, &[&g], || {
        d.port_stat("p2", "tx_packets") > 10_000
    });
}

/// vhost-user ports added and removed at run time (no guest needed): the
/// socket appears with `--vhost-sock-mode`, goes with the port, and bad
/// specs are refused with the reason.
#[test]
fn add_and_delete_vhost_ports_at_run_time() {
    let dir = TempDir::new("vhad");
    let d = Daemon::start(
        "vhad",
        Setup {
            vdevs: vec!["net_null0,no-rx=1".into()],
            ports: vec!["p1=net_null0"],
            flows: "",
            extra: vec!["--vhost-sock-mode".into(), "0660".into()],
        },
        dir,
    );
    let sock = d.dir.path("vm3.sock");
    let spec = format!("vhost-user:{},queues=2", sock.display());
    let v = d.json(&["add-port", "vm3", &spec]);
    assert_eq!(v["driver"], "net_vhost");
    assert_eq!(v["n_rxq"], 2);
    assert_eq!(v["vhost"]["connected"], false);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let show = d.json(&["show"]);
    assert_eq!(port(&show, "vm3")["link"]["up"], false);
    d.ok(&["del-port", "vm3"]);
    assert!(
        wait_until(10, || !sock.exists()),
        "socket left behind after del-port"
    );
    // The same socket again, then a client port on a socket nobody serves.
    d.ok(&["add-port", "vm3", &spec]);
    let client = format!("vhost-user-client:{}", d.dir.path("none.sock").display());
    d.ok(&["add-port", "vm4", &client]);
    assert!(!connected(&d, "vm4"));
    let e = d.err(&["add-port", "vm5", "vhost-user:/tmp/x.sock,queues=99"]);
    assert!(e.contains("queues"), "{e}");
    let e = d.err(&["add-port", "vm5", &spec]);
    assert!(e.contains("in use"), "{e}");
    d.ok(&["del-port", "vm4"]);
    d.ok(&["del-port", "vm3"]);
    let log = d.stop();
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}

/// A guest that enables one queue pair of the two offered: every PMD sends
/// on the enabled queue (here the source is polled by the second PMD, whose
/// own queue would be queue 1), so traffic flows and nothing is refused.
#[test]
fn guest_enabling_fewer_queues_than_offered() {
    let Some(bin) = testpmd() else { return };
    let dir = TempDir::new("vhfq");
    write_pcap(
        &dir.path("in.pcap"),
        &(0..64).map(udp_frame).collect::<Vec<_>>(),
    );
    let s1 = dir.path("vm1.sock");
    let vm1 = format!("vm1=vhost-user:{},queues=2", s1.display());
    let d = Daemon::start(
        "vhfq",
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into(),
                "net_null0,no-rx=1".into(),
            ],
            // p2's rx queue goes to PMD 0, p1's to PMD 1.
            ports: vec!["p2=net_null0", "p1=net_pcap0", &vm1],
            flows: "in_port=2,actions=output:3\nin_port=3,actions=output:1\n",
            extra: vec!["--pmd-cores".into(), "0,1".into()],
        },
        dir,
    );
    let show = d.json(&["show"]);
    eprintln!("p1 polled by PMD {}", port(&show, "p1")["rxq_pmds"]);
    let g = Guest::start(&bin, &d.dir, "f", &s1, false, 1);
    wait_or_panic(60, "guest never connected", &d, &[&g], || {
        connected(&d, "vm1") && port(&d.json(&["show"]), "vm1")["vhost"]["queues_enabled"] == 1
    });
    wait_or_panic(60, "no traffic through the guest", &d, &[&g], || {
        d.port_stat("p2", "tx_packets") > 10_000
    });
}

/// A guest that sends but never reads its rx ring (testpmd `txonly`): its
/// frames come through vportd to p2, while vportd's output to it fills the
/// ring and the rest is counted as `tx_full`, without stalling the PMD.
#[test]
fn guest_that_never_reads_fills_its_ring_and_the_rest_is_counted() {
    let Some(bin) = testpmd() else { return };
    let dir = TempDir::new("vhtx");
    write_pcap(
        &dir.path("in.pcap"),
        &(0..64).map(udp_frame).collect::<Vec<_>>(),
    );
    let s1 = dir.path("vm1.sock");
    let vm1 = format!("vm1=vhost-user:{}", s1.display());
    let d = Daemon::start(
        "vhtx",
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into(),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", &vm1, "p2=net_null0"],
            flows: "in_port=1,actions=output:2\nin_port=2,actions=output:3\n",
            extra: vec![],
        },
        dir,
    );
    let g = Guest::start_mode(&bin, &d.dir, "t", &s1, false, 1, "txonly");
    wait_or_panic(60, "guest never connected", &d, &[&g], || {
        connected(&d, "vm1")
    });
    // The guest's own frames reach p2 ...
    wait_or_panic(60, "the guest's frames never reached p2", &d, &[&g], || {
        d.port_stat("p2", "tx_packets") > 10_000
    });
    // ... while what vportd sends it piles up: counted, and the PMD goes on.
    let full = d.port_stat("vm1", "tx_full");
    let p2 = d.port_stat("p2", "tx_packets");
    wait_or_panic(60, "tx_full did not grow", &d, &[&g], || {
        d.port_stat("vm1", "tx_full") > full + 10_000
            && d.port_stat("p2", "tx_packets") > p2 + 10_000
    });
    let show = d.json(&["show"]);
    let st = &port(&show, "vm1")["stats"];
    let sent = st["tx_packets"].as_u64().unwrap();
    assert!(
        sent < st["tx_full"].as_u64().unwrap(),
        "a guest that never reads took {sent} frames: {st}"
    );
    assert!(sum_key(&d.json(&["pmd-stats-show"]), "tx_full") > 0);
}

/// vportd as the guest of another vportd: a `net_virtio_user` port on the
/// first one's vhost-user socket. `--mbuf-memory auto` puts the second
/// one's pool in the EAL's (shared) memory, as virtio-user needs, and
/// traffic flows from one switch to the other. No testpmd needed.
#[test]
fn vportd_as_the_guest_of_vportd() {
    let dir = TempDir::new("vhvv");
    write_pcap(
        &dir.path("in.pcap"),
        &(0..64).map(udp_frame).collect::<Vec<_>>(),
    );
    let sock = dir.path("host.sock");
    let vm = format!("vm=vhost-user:{}", sock.display());
    let host = Daemon::start(
        "vhvh",
        Setup {
            vdevs: vec!["net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into()],
            ports: vec!["p1=net_pcap0", &vm],
            flows: "in_port=1,actions=output:2\n",
            extra: vec![],
        },
        dir,
    );
    let guest = Daemon::start(
        "vhvg",
        Setup {
            vdevs: vec![
                format!("net_virtio_user0,path={}", sock.display()),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["vu=net_virtio_user0", "p2=net_null0"],
            flows: "in_port=1,actions=output:2\n",
            extra: vec![],
        },
        TempDir::new("vhvg"),
    );
    assert!(
        guest.log().contains("mbufs in the EAL's memory"),
        "{}",
        guest.log()
    );
    assert!(
        wait_until(60, || connected(&host, "vm")),
        "the guest vportd never connected:\n{}\n{}",
        host.log(),
        guest.log()
    );
    assert!(
        wait_until(60, || guest.port_stat("p2", "tx_packets") > 10_000),
        "nothing came through:\n{}\n{}",
        host.log(),
        guest.log()
    );
}
