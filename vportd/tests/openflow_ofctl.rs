//! The OpenFlow channel driven by the real `ovs-ofctl -O OpenFlow13`
//! against `--controller ptcp:PORT` (skipped, with the reason, when
//! ovs-ofctl is not installed): every command an operator runs, the public
//! conformance corpus loaded over the wire compared with the same flows
//! loaded from a file, and malformed messages that must not hurt the
//! daemon.

mod ctl_util;
use ctl_util::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn have_ofctl() -> bool {
    let ok = Command::new("ovs-ofctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipped: ovs-ofctl not installed (Debian package openvswitch-common)");
    }
    ok
}

/// A TCP port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Of {
    d: Daemon,
    target: String,
}

impl Of {
    fn start(tag: &str, flows: &str, n_null: usize) -> Of {
        Self::start_with(tag, flows, n_null, &[])
    }

    fn start_with(tag: &str, flows: &str, n_null: usize, more: &[&str]) -> Of {
        let port = free_port();
        let dir = TempDir::new(tag);
        write_pcap(&dir.path("in.pcap"), &traffic_frames());
        let mut vdevs = vec!["net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".to_string()];
        let mut ports = vec!["p1=net_pcap0".to_string()];
        for i in 0..n_null {
            vdevs.push(format!("net_null{i},no-rx=1"));
            ports.push(format!("p{}=net_null{i}", i + 2));
        }
        let ports: Vec<&str> = ports.iter().map(|s| s.as_str()).collect();
        let d = Daemon::start(
            tag,
            Setup {
                vdevs,
                ports,
                flows,
                extra: ["--controller".to_string(), format!("ptcp:{port}")]
                    .into_iter()
                    .chain(more.iter().map(|s| s.to_string()))
                    .collect(),
            },
            dir,
        );
        let target = format!("tcp:127.0.0.1:{port}");
        assert!(
            wait_until(20, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "never listened:\n{}",
            d.log()
        );
        Of { d, target }
    }

    fn ofctl(&self, args: &[&str]) -> Output {
        let mut c = Command::new("ovs-ofctl");
        c.arg("-O").arg("OpenFlow13");
        let (opts, rest): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| a.starts_with("--"));
        c.args(opts);
        c.arg(rest[0]).arg(&self.target).args(&rest[1..]);
        c.output().expect("running ovs-ofctl")
    }

    /// Runs ovs-ofctl, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.ofctl(args);
        assert!(
            o.status.success(),
            "ovs-ofctl {args:?}: {}\n{}\n{}\n--- vportd log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout),
            self.d.log()
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// vportctl dump-flows as (table, priority, cookie, timeouts, match, actions).
    fn rules(&self) -> Vec<String> {
        let v = self.d.json(&["dump-flows"]);
        let mut out: Vec<String> = v["flows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "table={} priority={} cookie={} idle={} hard={} {} actions={}",
                    f["table"],
                    f["priority"],
                    f["cookie"],
                    f["idle_timeout"],
                    f["hard_timeout"],
                    f["match"].as_str().unwrap(),
                    f["actions"].as_str().unwrap()
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// `n_packets=N` of the first flow line of an ovs-ofctl dump-flows that
/// contains `pat`.
fn n_packets(dump: &str, pat: &str) -> Option<u64> {
    let line = dump.lines().find(|l| l.contains(pat))?;
    let p = line.find("n_packets=")? + 10;
    line[p..].split(',').next()?.parse().ok()
}

/// ovs-ofctl dump-flows without the statistics (duration, counters).
fn strip_stats(dump: &str) -> Vec<String> {
    let mut v: Vec<String> = dump
        .lines()
        .skip(1)
        .map(|l| {
            l.split(", ")
                .filter(|f| {
                    !f.trim_start().starts_with("duration=")
                        && !f.starts_with("n_packets=")
                        && !f.starts_with("n_bytes=")
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn ovs_ofctl_commands() {
    if !have_ofctl() {
        return;
    }
    let of = Of::start("ofc", "", 2);
    // show needs FEATURES, PORT_DESC, GET_CONFIG and, first, TABLE_FEATURES
    // (ovs-ofctl's side connections).
    let show = of.ok(&["show"]);
    assert!(show.contains("n_tables:254"), "{show}");
    assert!(show.contains("1(p1): addr:"), "{show}");
    assert!(show.contains("3(p3): addr:"), "{show}");

    // add-flow (with port names resolved over PORT_DESC), then traffic
    // makes the counters grow.
    of.ok(&["add-flow", "in_port=p1,ip,actions=output:p2"]);
    assert_eq!(
        of.rules(),
        ["table=0 priority=32768 cookie=0 idle=0 hard=0 ip,in_port=1 actions=output:2"]
    );
    let mut first = 0;
    assert!(
        wait_until(20, || {
            first = n_packets(&of.ok(&["dump-flows"]), "in_port=1").unwrap_or(0);
            first > 0
        }),
        "no packets counted:\n{}",
        of.d.log()
    );
    assert!(
        wait_until(20, || n_packets(&of.ok(&["dump-flows"]), "in_port=1")
            .unwrap_or(0)
            > first),
        "counters do not grow"
    );
    let agg = of.ok(&["dump-aggregate"]);
    assert!(agg.contains("flow_count=1"), "{agg}");

    // add-flows FILE, mod-flows, del-flows --strict, del-flows.
    let file = of.d.dir.path("more.flows");
    std::fs::write(
        &file,
        "priority=10,tcp,tp_dst=80,actions=drop\ntable=1,priority=5,reg0=7,actions=load:0x3->NXM_NX_REG1[0..3],resubmit(,2)\n\
         priority=10,udp,actions=output:3\n",
    )
    .unwrap();
    of.ok(&["add-flows", file.to_str().unwrap()]);
    assert_eq!(of.rules().len(), 4);
    of.ok(&["mod-flows", "udp,actions=output:2"]);
    assert!(
        of.rules()
            .iter()
            .any(|r| r.contains("udp actions=output:2")),
        "{:?}",
        of.rules()
    );
    // Not strict: tcp covers only the tcp rule.
    of.ok(&["--strict", "del-flows", "priority=11,tcp,tp_dst=80"]);
    assert_eq!(
        of.rules().len(),
        4,
        "strict delete with another priority deleted"
    );
    of.ok(&["--strict", "del-flows", "priority=10,tcp,tp_dst=80"]);
    assert_eq!(of.rules().len(), 3);
    of.ok(&["del-flows", "table=1"]);
    assert_eq!(of.rules().len(), 2);

    // replace-flows dumps, diffs and sends the difference.
    let repl = of.d.dir.path("repl.flows");
    std::fs::write(
        &repl,
        "in_port=p1,ip,actions=output:p2\npriority=3,arp,actions=drop\n",
    )
    .unwrap();
    of.ok(&["replace-flows", repl.to_str().unwrap()]);
    let r = of.rules();
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r.iter().any(|x| x.contains("arp actions=drop")), "{r:?}");
    // The rule replace-flows kept kept its counters.
    assert!(n_packets(&of.ok(&["dump-flows"]), "in_port=1").unwrap_or(0) > 0);

    // Tables, ports.
    let tables = of.ok(&["dump-tables"]);
    assert!(
        tables.contains("table 0:") && tables.contains("active=2"),
        "{tables}"
    );
    let ports = of.ok(&["dump-ports"]);
    assert!(ports.contains("3 ports"), "{ports}");
    let desc = of.ok(&["dump-ports-desc"]);
    assert!(desc.contains("2(p2)"), "{desc}");
    of.ok(&["mod-port", "p3", "down"]);
    let desc = of.ok(&["dump-ports-desc"]);
    let p3 = desc.split(" 3(p3)").nth(1).unwrap();
    assert!(p3.lines().nth(1).unwrap().contains("PORT_DOWN"), "{desc}");
    of.ok(&["mod-port", "p3", "up"]);

    // Errors come back as OpenFlow errors and the connection (and daemon)
    // carry on: a flow that fails OVS's consistency check in vportd too.
    let o = of.ofctl(&["add-flow", "actions=group:9"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("OFPBAC_BAD_OUT_GROUP"),
        "{o:?}"
    );

    // vportctl show lists the connections.
    let show = of.d.ok(&["show"]);
    assert!(
        show.contains("ptcp:") && show.contains("listening"),
        "{show}"
    );
    let v = of.d.json(&["show"]);
    assert!(!v["controllers"].as_array().unwrap().is_empty());

    // packet-out output:TABLE runs the packet through the pipeline as if
    // port 3 (which receives nothing) had received it.
    of.ok(&["add-flow", "priority=100,in_port=3,actions=output:2"]);
    let frame = "ffffffffffff000000000001080045000014000000004000000000000a0000010a000002";
    for _ in 0..3 {
        of.ok(&["packet-out", "3", "TABLE", frame]);
    }
    assert!(
        wait_until(20, || n_packets(&of.ok(&["dump-flows"]), "in_port=3")
            == Some(3)),
        "packet-outs not counted: {}",
        of.ok(&["dump-flows"])
    );
    // Any other action list is run as given (not through the table: see
    // packet_out_actions_and_groups_over_the_wire for where it goes).
    let o = of.ofctl(&["packet-out", "3", "2", frame]);
    assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");

    // del-flows empties everything.
    of.ok(&["del-flows"]);
    assert!(of.rules().is_empty());
    of.d.ok(&["show"]);
}

/// Sends raw bytes on a fresh connection (after HELLO) and returns what
/// came back until the peer closed or 2 s passed.
fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let end = std::time::Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

/// The OpenFlow messages in `b` as (type, error type/code).
fn types(b: &[u8]) -> Vec<(u8, Option<(u16, u16)>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= b.len() {
        let len = u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize;
        let ty = b[at + 1];
        let err = (ty == 1 && at + 12 <= b.len()).then(|| {
            (
                u16::from_be_bytes([b[at + 8], b[at + 9]]),
                u16::from_be_bytes([b[at + 10], b[at + 11]]),
            )
        });
        out.push((ty, err));
        if len < 8 {
            break;
        }
        at += len;
    }
    out
}

#[test]
fn malformed_messages_get_errors_and_the_daemon_carries_on() {
    let of = Of::start("ofbad", "in_port=1,actions=output:2\n", 1);
    let port: u16 = of.target.rsplit(':').next().unwrap().parse().unwrap();
    // A flow mod whose action length runs past the message.
    let mut fm = vec![4, 14, 0, 0, 0, 0, 0, 9];
    fm.extend([0u8; 40]);
    fm.extend([0, 1, 0, 4, 0, 0, 0, 0]); // empty OXM match
    fm.extend([0, 4, 0, 24, 0, 0, 0, 0]); // apply_actions claiming 24 bytes
    fm.extend([0, 0, 0, 64, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]); // output, length 64
    let n = fm.len() as u16;
    fm[2..4].copy_from_slice(&n.to_be_bytes());
    fm[8 + 26..8 + 28].copy_from_slice(&[0xff, 0xff]); // buffer_id high half
    fm[8 + 28..8 + 30].copy_from_slice(&[0xff, 0xff]);
    let got = types(&raw_exchange(port, &fm));
    assert!(
        got.iter()
            .any(|(t, e)| *t == 1 && matches!(e, Some((2, 1)))),
        "expected OFPBAC_BAD_LEN, got {got:?}"
    );
    // An unknown message type.
    let got = types(&raw_exchange(port, &[4, 200, 0, 8, 0, 0, 0, 3]));
    assert!(
        got.iter()
            .any(|(t, e)| *t == 1 && matches!(e, Some((1, 1)))),
        "{got:?}"
    );
    // A length below the header: an error, then the connection closes.
    let got = types(&raw_exchange(port, &[4, 2, 0, 4, 0, 0, 0, 3]));
    assert!(
        got.iter()
            .any(|(t, e)| *t == 1 && matches!(e, Some((1, 6)))),
        "{got:?}"
    );
    // Random garbage of every type: the daemon answers the next client.
    for ty in 0..32u8 {
        let mut m = vec![4, ty, 0, 40, 0, 0, 0, 5];
        m.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(ty)));
        raw_exchange(port, &m);
    }
    if have_ofctl() {
        let dump = of.ok(&["dump-flows"]);
        assert!(dump.contains("in_port=1 actions=output:2"), "{dump}");
    }
    of.d.ok(&["show"]);
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/public")
}

/// Every public conformance case's flows.txt: loaded from the file
/// (`vportctl replace-flows`, the --flows path) and loaded with
/// `ovs-ofctl add-flows` over the wire give the same tables, and the same
/// `ovs-ofctl dump-flows`. Cases whose flows ovs-ofctl cannot put in
/// OpenFlow 1.3 or vportd's codec does not carry yet are counted and
/// printed.
#[test]
fn conformance_flows_over_the_wire() {
    if !have_ofctl() {
        return;
    }
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("flows.txt").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 100, "the corpus is there");
    let max_ports = cases
        .iter()
        .filter_map(|c| {
            std::fs::read_to_string(c.join("ports"))
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(2);
    let of = Of::start("ofconf", "", max_ports.max(2) - 1);
    let mut same = 0;
    let mut skipped: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for c in &cases {
        let name = c.file_name().unwrap().to_string_lossy().to_string();
        let flows = c.join("flows.txt");
        of.d.ok(&["del-flows"]);
        of.d.ok(&["del-groups"]);
        if c.join("groups.txt").exists() {
            of.d.ok(&["add-groups", c.join("groups.txt").to_str().unwrap()]);
        }
        if !of
            .d
            .run(&["replace-flows", flows.to_str().unwrap()])
            .status
            .success()
        {
            skipped.push(format!("{name}: vportctl refuses the file"));
            continue;
        }
        let from_file = of.rules();
        let dump_file = of.ofctl(&["dump-flows"]);
        of.ok(&["del-flows"]);
        let o = of.ofctl(&["add-flows", flows.to_str().unwrap()]);
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            skipped.push(format!(
                "{name}: {}",
                err.lines()
                    .find(|l| l.contains("OFPT_ERROR") || l.contains("ovs-ofctl:"))
                    .unwrap_or("")
                    .trim()
            ));
            continue;
        }
        let over_wire = of.rules();
        if over_wire != from_file {
            failures.push(format!(
                "{name}: tables differ\n  file: {from_file:?}\n  wire: {over_wire:?}"
            ));
            continue;
        }
        let dump_wire = of.ofctl(&["dump-flows"]);
        if dump_file.status.success() && dump_wire.status.success() {
            let (a, b) = (
                strip_stats(&String::from_utf8_lossy(&dump_file.stdout)),
                strip_stats(&String::from_utf8_lossy(&dump_wire.stdout)),
            );
            if a != b {
                failures.push(format!(
                    "{name}: ovs-ofctl dump-flows differ\n  {a:?}\n  {b:?}"
                ));
                continue;
            }
        }
        same += 1;
    }
    println!(
        "conformance over the wire: {same} cases identical, {} skipped, {} failed",
        skipped.len(),
        failures.len()
    );
    for s in &skipped {
        println!("  skipped {s}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        same >= cases.len() / 2,
        "fewer than half the cases loaded over the wire"
    );
}

/// `ovs-ofctl monitor` until `stop(output so far)` or 30 s; returns what it printed.
fn monitor(of: &Of, before: impl FnOnce(), stop: impl Fn(&str) -> bool) -> String {
    use std::io::BufRead;
    let mut c = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13"])
        .arg(format!("--unixctl={}", of.d.dir.path("mon.ctl").display()))
        .arg("monitor")
        .arg(&of.target)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ovs-ofctl monitor");
    // Without a terminal, monitor prints the messages on stderr.
    let (tx, rx) = std::sync::mpsc::channel();
    let out: Box<dyn Read + Send> = Box::new(c.stdout.take().unwrap());
    let err: Box<dyn Read + Send> = Box::new(c.stderr.take().unwrap());
    for r in [out, err] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
    }
    // The monitor is connected once the daemon shows a connection.
    assert!(
        wait_until(20, || of.d.ok(&["show"]).contains("connected")),
        "monitor never connected"
    );
    before();
    let mut text = String::new();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < end && !stop(&text) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    let _ = c.kill();
    let _ = c.wait();
    text
}

#[test]
fn packet_in_and_flow_removed_reach_ovs_ofctl_monitor() {
    if !have_ofctl() {
        return;
    }
    let of = Of::start_with("ofpin", "", 1, &["--controller-rate-limit", "50"]);
    // Table-miss packet-ins (the pcap replays UDP frames forever); the
    // rate limit (50/s) drops and counts the rest, shown per connection.
    let dropped = std::cell::Cell::new(0u64);
    let text = monitor(
        &of,
        || {
            of.ok(&["add-flow", "priority=0,actions=controller"]);
        },
        |t| {
            let v = of.d.json(&["show"]);
            let d = v["controllers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["async_dropped"].as_u64().unwrap_or(0))
                .sum::<u64>();
            dropped.set(d);
            t.matches("OFPT_PACKET_IN").count() >= 3 && d > 0
        },
    );
    assert!(
        text.contains("OFPT_PACKET_IN (OF1.3)") && text.contains("in_port=1 (via no_match)"),
        "{text}\n{}",
        of.d.log()
    );
    assert!(text.contains("udp,"), "the packet is decodable: {text}");
    assert!(dropped.get() > 0, "no packet-in was rate limited");
    of.ok(&["del-flows"]);

    // FLOW_REMOVED with the right reason for rules that asked.
    let text = monitor(
        &of,
        || {
            of.ok(&[
                "add-flow",
                "hard_timeout=1,send_flow_rem,priority=5,udp,actions=output:2",
            ]);
            of.ok(&[
                "add-flow",
                "idle_timeout=1,send_flow_rem,priority=6,tcp,actions=output:2",
            ]);
            of.ok(&["add-flow", "hard_timeout=1,priority=7,arp,actions=output:2"]);
        },
        |t| t.matches("OFPT_FLOW_REMOVED").count() >= 2,
    );
    assert!(text.contains("priority=5,udp reason=hard"), "{text}");
    assert!(text.contains("priority=6,tcp reason=idle"), "{text}");
    assert!(
        !text.contains("priority=7"),
        "no FLOW_REMOVED without send_flow_rem: {text}"
    );
    assert!(
        wait_until(20, || of.rules().is_empty()),
        "timed-out rules stay: {:?}",
        of.rules()
    );
}

/// PACKET_OUT with an action list, and groups over the wire: GROUP_MOD
/// (add, an add that exists, modify, delete taking its rules along) and
/// the GROUP_DESC / GROUP / GROUP_FEATURES replies, read by ovs-ofctl and
/// compared with what vportctl shows.
#[test]
fn packet_out_actions_and_groups_over_the_wire() {
    if !have_ofctl() {
        return;
    }
    let of = Of::start("ofgrp", "", 2);
    // No rule: p1's frames miss. A packet-out to port 3 is the one frame
    // p3 sends.
    let frame = hex(&udp_frame(7));
    of.ok(&[
        "packet-out",
        &format!("in_port=1 packet={frame} actions=output:3"),
    ]);
    assert!(
        wait_until(10, || of.d.port_stat("p3", "tx_packets") == 1),
        "packet-out output:3 never left p3:\n{}",
        of.d.log()
    );

    of.ok(&[
        "add-group",
        "group_id=1,type=select,bucket=weight:3,actions=output:2,bucket=weight:5,actions=output:3",
    ]);
    of.ok(&[
        "add-group",
        "group_id=2,type=all,bucket=actions=output:2,bucket=actions=mod_vlan_vid:10,output:3",
    ]);
    of.ok(&[
        "add-group",
        "group_id=3,type=ff,bucket=watch_port:2,actions=output:2,bucket=watch_port:3,actions=output:3",
    ]);
    let exists = of.ofctl(&["add-group", "group_id=1,type=all,bucket=actions=output:2"]);
    assert!(!exists.status.success());
    assert!(
        String::from_utf8_lossy(&exists.stderr).contains("OFPGMFC_GROUP_EXISTS"),
        "{exists:?}"
    );
    let desc: Vec<String> = of
        .ok(&["dump-groups"])
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .collect();
    let ours: Vec<String> =
        of.d.ok(&["dump-groups"])
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
    assert_eq!(desc, ours);
    assert_eq!(desc.len(), 3, "{desc:?}");
    assert!(
        desc[0].starts_with("group_id=1,type=select,bucket=weight:3,"),
        "{desc:?}"
    );

    // Traffic through group 2: its counters (and ref_count) show it.
    of.ok(&["add-flow", "priority=5,ip,actions=group:2"]);
    assert!(
        wait_until(20, || {
            let s = of.ok(&["dump-group-stats"]);
            s.lines().any(|l| {
                l.contains("group_id=2,")
                    && l.contains("ref_count=1")
                    && !l.contains("packet_count=0,")
            })
        }),
        "group 2 counts nothing:\n{}",
        of.ok(&["dump-group-stats"])
    );
    let features = of.ok(&["dump-group-features"]);
    assert!(features.contains("Types:  0xf"), "{features}");

    of.ok(&["mod-group", "group_id=2,type=all,bucket=actions=output:2"]);
    assert!(of
        .ok(&["dump-groups"])
        .contains("group_id=2,type=all,bucket=actions=output:2\n"));
    // Deleting a group deletes the rules that use it.
    of.ok(&["del-groups", "group_id=2"]);
    assert!(of.rules().is_empty(), "{:?}", of.rules());
    assert_eq!(of.ok(&["dump-groups"]).lines().count(), 3);
    of.ok(&["del-groups"]);
    assert_eq!(of.ok(&["dump-groups"]).lines().count(), 1);
}
