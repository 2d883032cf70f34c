//! OVS's unixctl protocol on the control socket: raw JSON-RPC requests,
//! and the real `ovs-appctl -t SOCKET` (from Debian's openvswitch-common;
//! those checks skip, saying so, where it is not installed).

mod ctl_util;

use ctl_util::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

/// Sends `requests` back to back on one connection and reads `n` reply
/// objects.
fn rpc(d: &Daemon, requests: &str, n: usize) -> Vec<Value> {
    let mut s = UnixStream::connect(&d.ctl).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(requests.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.len() < n {
        let k = s.read(&mut chunk).expect("reply");
        assert!(k > 0, "connection closed after {} replies", got.len());
        buf.extend_from_slice(&chunk[..k]);
        // Replies are objects back to back: parse as many as are whole.
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
        let mut used = 0;
        while let Some(Ok(v)) = it.next() {
            used = it.byte_offset();
            got.push(v);
        }
        buf.drain(..used);
    }
    got
}

#[test]
fn json_rpc_requests_back_to_back_get_one_reply_each() {
    let d = traffic_daemon("ux", "in_port=1,actions=output:2\n");
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > 1000));
    let replies = rpc(
        &d,
        concat!(
            r#"{"id":0,"method":"version","params":[]}"#,
            r#"{"id":1,"method":"dpif-netdev/pmd-stats-show","params":[]} "#,
            "\n",
            r#"{"id":"x","method":"ofproto/trace","params":["br0","in_port=1,udp"]}"#,
            r#"{"id":3,"method":"no/such","params":[]}"#,
            r#"{"id":4,"method":"version","params":[7]}"#,
        ),
        5,
    );
    assert_eq!(replies[0]["id"], 0);
    assert!(replies[0]["error"].is_null());
    assert!(replies[0]["result"]
        .as_str()
        .unwrap()
        .starts_with("vportd "));
    let stats = replies[1]["result"].as_str().unwrap();
    assert!(stats.contains("packets received:"), "{stats}");
    assert_eq!(replies[2]["id"], "x");
    let trace = replies[2]["result"].as_str().unwrap();
    assert!(trace.contains("Datapath actions: 2"), "{trace}");
    assert!(replies[3]["result"].is_null());
    assert!(
        replies[3]["error"]
            .as_str()
            .unwrap()
            .contains("\"no/such\" is not a valid command"),
        "{}",
        replies[3]
    );
    assert!(replies[4]["error"]
        .as_str()
        .unwrap()
        .contains("must be strings"));

    // Garbage after a request closes the connection; the daemon goes on.
    let mut s = UnixStream::connect(&d.ctl).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(br#"{"id":0,"method":"version"} nonsense"#)
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("vportd "), "{text}");
    // vportctl's line protocol on the same socket is unaffected.
    assert!(d.ok(&["version"]).starts_with("vportd "));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
}

fn ovs_appctl() -> Option<&'static str> {
    let ok = Command::new("ovs-appctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("ovs-appctl")
}

#[test]
fn ovs_appctl_drives_the_daemon() {
    let Some(appctl) = ovs_appctl() else {
        eprintln!("ctl_unixctl: skipped: ovs-appctl not installed (Debian openvswitch-common)");
        return;
    };
    let d = traffic_daemon("ua", "in_port=1,actions=output:2\n");
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > 1000));
    let sock = d.ctl.display().to_string();
    let appctl_run = |args: &[&str]| {
        let o = Command::new(appctl)
            .arg("-t")
            .arg(&sock)
            .args(args)
            .output()
            .expect("running ovs-appctl");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str], want: &str| {
        let (code, out, err) = appctl_run(args);
        assert_eq!(code, Some(0), "ovs-appctl {args:?}: {err}");
        assert!(
            out.contains(want),
            "ovs-appctl {args:?} lacks {want:?}:\n{out}"
        );
    };
    ok(&["version"], "vportd");
    ok(&["list-commands"], "dpif-netdev/pmd-stats-show");
    ok(&["dpif-netdev/pmd-stats-show"], "packets received:");
    ok(&["dpif-netdev/pmd-stats-clear"], "");
    ok(&["dpif-netdev/pmd-perf-show"], "");
    ok(&["dpif-netdev/pmd-rxq-show"], "p1");
    ok(&["dpif-netdev/pmd-rxq-rebalance"], "");
    // OVS's layout: the datapath, its lookups, then one line per port.
    ok(&["dpctl/show"], "netdev@ovs-netdev:\n  lookups: hit:");
    ok(&["dpctl/show"], "  port 2: p2 (dpdk: ");
    ok(
        &["dpctl/show", "-s", "netdev@ovs-netdev"],
        "    TX packets:",
    );
    ok(&["dpctl/dump-flows"], "actions:2");
    ok(
        &["ofproto/trace", "br0", "in_port=1,udp"],
        "Datapath actions: 2",
    );
    ok(&["fdb/show", "br0"], "MAC");
    ok(&["upcall/show"], "flows");
    ok(&["coverage/show"], "pmd_rx_packets");
    ok(&["vlog/set", "ANY:dbg"], "");
    ok(&["vlog/set", "info"], "");
    let (code, _, err) = appctl_run(&["no/such-command"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not a valid command"), "{err}");
    // `exit` stops the daemon the orderly way.
    ok(&["exit"], "");
    let log_path = d.dir.path("vportd.log");
    assert!(
        wait_until(15, || std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("mbufs in use at exit")),
        "the daemon did not stop:\n{}",
        d.log()
    );
    let log = d.stop();
    assert!(log.contains("exit requested over unixctl"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
