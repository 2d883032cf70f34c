//! vportd configured the OVS way: a private `ovsdb-server` holding OVS's
//! own `vswitch.ovsschema`, driven by the real `ovs-vsctl` (Debian's
//! openvswitch-common; without it the test says so and skips).
//!
//! The sequence a new user types: add-br with datapath_type=netdev,
//! add-port of DPDK devices by devargs, traffic, `list interface` with
//! statistics, other_config settings, bad rows getting an `error`,
//! del-port; then a restart that brings the same ports back, with the same
//! OpenFlow numbers, from the database alone.

mod ctl_util;

use ctl_util::*;
use std::process::{Child, Command, Output, Stdio};

/// A private ovsdb-server in its own directory, ended by PID on drop.
struct OvsdbServer {
    child: Child,
    dir: TempDir,
}

impl OvsdbServer {
    fn start() -> OvsdbServer {
        let dir = TempDir::new("ovsdb");
        let db = dir.path("conf.db");
        let o = Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg(SCHEMA)
            .output()
            .expect("ovsdb-tool");
        assert!(
            o.status.success(),
            "ovsdb-tool create: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let child = Command::new("ovsdb-server")
            .arg(&db)
            .arg(format!("--remote=punix:{}", dir.path("db.sock").display()))
            .arg(format!("--unixctl={}", dir.path("ovsdb.ctl").display()))
            .arg(format!("--log-file={}", dir.path("ovsdb.log").display()))
            .arg("--no-chdir")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning ovsdb-server");
        let s = OvsdbServer { child, dir };
        assert!(
            wait_until(10, || s.dir.path("db.sock").exists()),
            "ovsdb-server never made its socket"
        );
        s
    }

    fn target(&self) -> String {
        format!("unix:{}", self.dir.path("db.sock").display())
    }

    /// `ovs-vsctl --db=... ARGS` (waiting for vportd to apply, at most 30 s).
    fn vsctl(&self, args: &[&str]) -> Output {
        Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.target()))
            .arg("--timeout=30")
            .args(args)
            .output()
            .expect("running ovs-vsctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.vsctl(args);
        assert!(
            o.status.success(),
            "ovs-vsctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for OvsdbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

fn skip_reason() -> Option<String> {
    for tool in ["ovsdb-server", "ovsdb-tool", "ovs-vsctl"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} not installed (Debian openvswitch-common)"));
        }
    }
    if !std::path::Path::new(SCHEMA).exists() {
        return Some(format!("{SCHEMA} missing"));
    }
    None
}

/// vportd with no ports of its own, configured from `db`.
fn daemon(tag: &str, db: &OvsdbServer) -> Daemon {
    let dir = TempDir::new(tag);
    Daemon::start(
        tag,
        Setup {
            vdevs: vec![],
            ports: vec![],
            flows: "in_port=1,actions=output:2\n",
            extra: vec!["--db".into(), db.target()],
        },
        dir,
    )
}

#[test]
fn ovs_vsctl_configures_vportd_and_the_config_survives_a_restart() {
    if let Some(why) = skip_reason() {
        eprintln!("ovsdb_peer: skipped: {why}");
        return;
    }
    let db = OvsdbServer::start();
    let data = TempDir::new("ovsdb-data");
    let pcap = data.path("in.pcap");
    write_pcap(&pcap, &traffic_frames());
    let d = daemon("od1", &db);

    db.ok(&[
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "datapath_type=netdev",
    ]);
    db.ok(&[
        "add-port",
        "br0",
        "p1",
        "--",
        "set",
        "Interface",
        "p1",
        "type=dpdk",
        &format!(
            "options:dpdk-devargs=net_pcap0,rx_pcap={},infinite_rx=1",
            pcap.display()
        ),
    ]);
    db.ok(&[
        "add-port",
        "br0",
        "p2",
        "--",
        "set",
        "Interface",
        "p2",
        "type=dpdk",
        "options:dpdk-devargs=net_null0,no-rx=1",
    ]);
    // ovs-vsctl returned: vportd has applied both (cur_cfg caught up).
    assert_eq!(db.ok(&["get", "Interface", "p1", "ofport"]), "1");
    assert_eq!(db.ok(&["get", "Interface", "p2", "ofport"]), "2");
    assert_eq!(db.ok(&["get", "Interface", "p2", "link_state"]), "up");
    assert_eq!(db.ok(&["get", "Interface", "br0", "ofport"]), "65534");
    assert!(db
        .ok(&["get", "Open_vSwitch", ".", "dpdk_version"])
        .contains("DPDK"));
    assert_eq!(
        db.ok(&["get", "Open_vSwitch", ".", "dpdk_initialized"]),
        "true"
    );
    assert!(
        wait_until(15, || d.port_stat("p2", "tx_packets") > 1000),
        "{}",
        d.log()
    );
    // Statistics reach the database within a write interval or two.
    let stats = || {
        db.ok(&["get", "Interface", "p2", "statistics:tx_packets"])
            .trim_matches('"')
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert!(wait_until(20, || stats() > 0), "statistics never written");
    let list = db.ok(&["list", "Interface", "p2"]);
    for col in ["mac_in_use", "statistics", "admin_state"] {
        assert!(list.contains(col), "{list}");
    }

    // A controller target from the database: the OpenFlow channel serves
    // it (ovs-ofctl reads the rules over it).
    let of_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let of_target = format!("ptcp:{of_port}:127.0.0.1");
    db.ok(&["set-controller", "br0", &of_target]);
    let of_dump = || {
        Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "--timeout=5", "dump-flows"])
            .arg(format!("tcp:127.0.0.1:{of_port}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    assert!(
        wait_until(15, || of_dump()
            .is_some_and(|t| t.contains("actions=output:"))),
        "ovs-ofctl cannot reach the controller target from the database:\n{}",
        d.log()
    );

    // Settings from other_config, applied at run time.
    db.ok(&["set", "Open_vSwitch", ".", "other_config:flow-limit=5000"]);
    assert!(wait_until(10, || d.json(&["upcall-show"])["flow_limit"] == 5000));
    db.ok(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:smc-enable=false",
        "other_config:pmd-rxq-assign=roundrobin",
    ]);
    assert!(wait_until(10, || d.json(&["upcall-show"])["smc_enabled"] == false));
    assert!(wait_until(10, || d.json(&["pmd-rxq-show"])["assignment"]
        == "roundrobin"));
    // A policy OVS does not have: logged, the previous one kept.
    db.ok(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:pmd-rxq-assign=balanced",
    ]);
    assert!(wait_until(10, || d
        .log()
        .contains("\"balanced\" is not a policy")));
    assert_eq!(d.json(&["pmd-rxq-show"])["assignment"], "roundrobin");
    // The bridge's datapath id, as ovs-vswitchd takes it from
    // other_config: in FEATURES_REPLY and written back.
    db.ok(&[
        "set",
        "bridge",
        "br0",
        "other_config:datapath-id=00000000000000ab",
    ]);
    assert!(wait_until(10, || db
        .ok(&["get", "bridge", "br0", "datapath_id"])
        .contains("00000000000000ab")));
    // The channel restarts with the new id: ask until it answers.
    let of_show = || {
        Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "--timeout=5", "show"])
            .arg(format!("tcp:127.0.0.1:{of_port}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    assert!(
        wait_until(10, || of_show().contains("dpid:00000000000000ab")),
        "{}",
        of_show()
    );

    // Bad rows: an error in the row, a warning from ovs-vsctl, and the
    // switch goes on forwarding.
    let o = db.vsctl(&[
        "add-port",
        "br0",
        "p3",
        "--",
        "set",
        "Interface",
        "p3",
        "type=geneve",
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Error detected while setting up 'p3'"));
    assert!(db
        .ok(&["get", "Interface", "p3", "error"])
        .contains("not supported"));
    let o = db.vsctl(&[
        "add-port",
        "br0",
        "p4",
        "--",
        "set",
        "Interface",
        "p4",
        "type=dpdk",
        "options:dpdk-devargs=net_nosuchdriver0",
    ]);
    assert!(o.status.success());
    assert!(db
        .ok(&["get", "Interface", "p4", "error"])
        .contains("net_nosuchdriver0"));
    assert_eq!(db.ok(&["get", "Interface", "p4", "ofport"]), "-1");
    let tx = d.port_stat("p2", "tx_packets");
    assert!(wait_until(10, || d.port_stat("p2", "tx_packets") > tx));
    db.ok(&["del-port", "br0", "p3"]);
    db.ok(&["del-port", "br0", "p4"]);

    // A port with a requested number, then removed.
    db.ok(&[
        "add-port",
        "br0",
        "p5",
        "--",
        "set",
        "Interface",
        "p5",
        "type=dpdk",
        "options:dpdk-devargs=net_null5,no-rx=1",
        "ofport_request=7",
    ]);
    assert_eq!(db.ok(&["get", "Interface", "p5", "ofport"]), "7");
    assert!(d.ok(&["show"]).contains("p5"));
    db.ok(&["del-port", "br0", "p5"]);
    assert!(!d.ok(&["show"]).contains("p5"));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");

    // Restart: the ports come back from the database with their numbers,
    // and traffic flows again under the same rule.
    let d = daemon("od2", &db);
    assert!(
        wait_until(20, || d.port_stat("p2", "tx_packets") > 1000),
        "no traffic after the restart:\n{}",
        d.log()
    );
    let v = d.json(&["show"]);
    let ports: Vec<(String, u64)> = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["ofport"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [("p1".to_string(), 1), ("p2".to_string(), 2)]);
    // The controller came back too; removing it closes the listener.
    assert!(
        wait_until(15, || of_dump().is_some()),
        "no controller target after the restart:\n{}",
        d.log()
    );
    db.ok(&["del-controller", "br0"]);
    assert!(
        wait_until(15, || of_dump().is_none()),
        "the controller target stayed after del-controller"
    );
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");

    // No --eal: the EAL arguments come from other_config, as OVS takes them.
    let prefix = format!("vcod3{}", std::process::id());
    db.ok(&[
        "--no-wait",
        "set",
        "Open_vSwitch",
        ".",
        &format!(
            "other_config:dpdk-extra=--no-huge -m 1024 --no-pci --no-shconf --no-telemetry --file-prefix={prefix}"
        ),
        "other_config:pmd-cpu-mask=0x2",
    ]);
    let dir = TempDir::new("od3");
    let flows = dir.path("flows.txt");
    std::fs::write(&flows, "in_port=1,actions=output:2\n").unwrap();
    let ctl = dir.path("v.ctl");
    let log_file = std::fs::File::create(dir.path("vportd.log")).unwrap();
    let mut child = Command::new(VPORTD)
        .arg("--db")
        .arg(db.target())
        .arg("--ctl")
        .arg(&ctl)
        .arg("--flows")
        .arg(&flows)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("spawning vportd");
    let read_log = || std::fs::read_to_string(dir.path("vportd.log")).unwrap_or_default();
    let forwarding = wait_until(30, || {
        let o = Command::new(VPORTCTL)
            .arg("--ctl")
            .arg(&ctl)
            .args(["--json", "show"])
            .output();
        o.ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| {
                v["ports"].as_array().map(|ports| {
                    ports.iter().any(|p| {
                        p["name"] == "p2" && p["stats"]["tx_packets"].as_u64().unwrap_or(0) > 1000
                    })
                })
            })
            .unwrap_or(false)
    });
    // SAFETY: kill(2) on the pid of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let log = read_log();
    assert!(
        forwarding,
        "no forwarding with the EAL from the database:\n{log}"
    );
    assert!(log.contains("EAL arguments from"), "{log}");
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}
