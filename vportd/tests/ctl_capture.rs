//! `capture PORT FILE [--count N]`, `capture-show`, `capture-stop`: pcap
//! files of what a port sends and receives, on DPDK virtual devices.

mod ctl_util;
use ctl_util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// p1 (net_pcap, the 64 frames of `traffic_frames()` forever) → p2; p3
/// idle.
fn daemon(tag: &str) -> Daemon {
    traffic_daemon(tag, "in_port=1,actions=output:2\n")
}

/// Checks the classic pcap header byte for byte and returns the records
/// as (seconds, microseconds, frame).
fn pcap_records(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() >= 24, "{}: no pcap header", path.display());
    let rd = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(rd(0), 0xa1b2_c3d4, "magic (microsecond pcap)");
    assert_eq!(&b[4..6], &2u16.to_ne_bytes(), "major version");
    assert_eq!(&b[6..8], &4u16.to_ne_bytes(), "minor version");
    assert_eq!((rd(8), rd(12)), (0, 0), "thiszone, sigfigs");
    assert_eq!(rd(16), 65535, "snaplen");
    assert_eq!(rd(20), 1, "linktype Ethernet");
    let mut recs = Vec::new();
    let mut off = 24;
    while off < b.len() {
        assert!(off + 16 <= b.len(), "truncated record header");
        let (sec, usec, incl, orig) = (rd(off), rd(off + 4), rd(off + 8), rd(off + 12));
        assert!(usec < 1_000_000);
        assert_eq!(incl, orig);
        off += 16;
        assert!(off + incl as usize <= b.len(), "truncated record");
        recs.push((sec, usec, b[off..off + incl as usize].to_vec()));
        off += incl as usize;
    }
    recs
}

/// The frames are consecutive packets of the replayed input (which
/// cycles through `traffic_frames()` in order), with non-decreasing timestamps
/// close to now.
fn assert_consecutive_input(recs: &[(u32, u32, Vec<u8>)]) {
    let inp = traffic_frames();
    let idx = |f: &Vec<u8>| {
        inp.iter()
            .position(|x| x == f)
            .unwrap_or_else(|| panic!("captured frame is not an input frame: {}", hex(f)))
    };
    let first = idx(&recs[0].2);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(
            idx(&r.2),
            (first + i) % inp.len(),
            "record {i} out of order"
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    for w in recs.windows(2) {
        assert!((w[0].0, w[0].1) <= (w[1].0, w[1].1), "timestamps go back");
    }
    assert!(
        recs[0].0 + 120 >= now && recs[0].0 <= now + 1,
        "timestamp not now"
    );
}

/// Polls `capture-show` until no capture is running on `port`.
fn wait_capture_done(d: &Daemon, port: &str) -> bool {
    wait_until(20, || {
        let v = d.json(&["capture-show"]);
        !v["captures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["port"] == port)
    })
}

#[test]
fn capture_tx_and_rx_of_a_forwarding_port() {
    let d = daemon("cap");
    assert!(wait_until(15, || d.port_stat("p2", "tx_packets") > 1000));

    // Sent on p2: exactly 50 records, the frames forwarded from p1.
    let tx_file = d.dir.path("p2.pcap");
    let out = d.ok(&[
        "capture",
        "p2",
        &tx_file.display().to_string(),
        "--count",
        "50",
    ]);
    assert_eq!(
        out,
        format!(
            "capturing port p2 (OpenFlow port 2) rx and tx to {}: stops after 50 packet(s)\n",
            tx_file.display()
        )
    );
    assert!(
        wait_capture_done(&d, "p2"),
        "capture never ended:\n{}",
        d.log()
    );
    let recs = pcap_records(&tx_file);
    assert_eq!(recs.len(), 50);
    assert_consecutive_input(&recs);
    assert!(d.log().contains(&format!(
        "capture of port 2 to {} ended: 50 packet(s) written",
        tx_file.display()
    )));

    // Received on p1, with a path relative to vportctl's directory and
    // `--count=N` before the file.
    let o = Command::new(VPORTCTL)
        .current_dir(&d.dir.0)
        .args(["--ctl", &d.ctl.display().to_string(), "--json"])
        .args(["capture", "--count=100", "p1", "p1.pcap"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rx_file = d.dir.path("p1.pcap");
    assert_eq!(v["port"], "p1");
    assert_eq!(v["ofport"], 1);
    assert_eq!(v["count"], 100);
    assert_eq!(v["file"], rx_file.display().to_string());
    assert!(
        wait_capture_done(&d, "p1"),
        "capture never ended:\n{}",
        d.log()
    );
    let recs = pcap_records(&rx_file);
    assert_eq!(recs.len(), 100);
    assert_consecutive_input(&recs);

    // Until capture-stop: capture-show reports it, a second capture of
    // the same port is refused, capture-stop completes the file.
    let all_file = d.dir.path("all.pcap");
    let all = all_file.display().to_string();
    d.ok(&["capture", "p1", &all]);
    let e = d.err(&[
        "capture",
        "p1",
        &d.dir.path("again.pcap").display().to_string(),
    ]);
    assert_eq!(
        e,
        format!(
            "vportctl: capture: port p1 is already being captured to {all} (capture-stop p1 first)\n"
        )
    );
    let e = d.err(&["capture", "p2", &all]);
    assert!(e.contains("is the file of the capture of port p1"), "{e}");
    assert!(wait_until(10, || {
        d.json(&["capture-show"])["captures"][0]["written_rx"]
            .as_u64()
            .unwrap()
            > 1000
    }));
    let show = d.json(&["capture-show"]);
    let c = &show["captures"][0];
    assert_eq!(show["captures"].as_array().unwrap().len(), 1);
    assert_eq!(
        (c["port"].as_str(), c["ofport"].as_u64()),
        (Some("p1"), Some(1))
    );
    assert_eq!(c["count"], Value::Null);
    assert_eq!(c["written_tx"], 0);
    assert_eq!(c["file"], all.as_str());
    let text = d.ok(&["capture-show"]);
    assert!(text.starts_with("port  ofport  written"), "{text}");
    assert!(text.contains(&all), "{text}");
    let v = d.json(&["capture-stop", "p1"]);
    let written = v["written"].as_u64().unwrap();
    assert_eq!(written, v["written_rx"].as_u64().unwrap());
    let recs = pcap_records(&all_file);
    assert_eq!(recs.len() as u64, written);
    assert!(recs.iter().all(|r| traffic_frames().contains(&r.2)));
    assert_eq!(d.ok(&["capture-show"]), "no capture running\n");

    // A capture ends with its port.
    d.ok(&[
        "capture",
        "p3",
        &d.dir.path("p3.pcap").display().to_string(),
    ]);
    d.ok(&["del-port", "p3"]);
    assert_eq!(d.json(&["capture-show"])["captures"], serde_json::json!([]));
    assert_eq!(pcap_records(&d.dir.path("p3.pcap")).len(), 0);

    // Forwarding went on.
    let tx = d.port_stat("p2", "tx_packets");
    assert!(wait_until(10, || d.port_stat("p2", "tx_packets") > tx));
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("mbufs in use at exit: 0"), "{log}");
}

#[test]
fn capture_errors_leave_the_daemon_running() {
    let d = daemon("caperr");
    let file = d.dir.path("x.pcap").display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["capture", "p9", &file], "capture: no port named \"p9\""),
        (
            &["capture", "p1", "/nonexistent/dir/x.pcap"],
            "capture: cannot write /nonexistent/dir/x.pcap: No such file or directory",
        ),
        (
            &["capture", "p1", &file, "--count", "0"],
            "capture: --count \"0\": not a positive integer",
        ),
        (
            &["capture", "p1", &file, "--count", "ten"],
            "capture: --count \"ten\": not a positive integer",
        ),
        (
            &["capture", "p1", &file, "--count"],
            "capture: --count needs a number",
        ),
        (
            &["capture", "p1"],
            "capture: usage: capture PORT FILE [--count N]",
        ),
        (
            &["capture", "p1", &file, "--frob"],
            "capture: unknown option \"--frob\"",
        ),
        (
            &["capture-stop", "p2"],
            "capture-stop: no capture is running on port p2",
        ),
        (
            &["capture-stop", "p9"],
            "capture-stop: no port named \"p9\"",
        ),
        (&["capture-stop"], "capture-stop: usage: capture-stop PORT"),
        (&["capture-show", "p1"], "capture-show: unexpected argument"),
    ];
    for (args, want) in cases {
        let e = d.err(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Over the raw socket, a relative path is refused (the daemon's
    // directory is not the client's).
    let r = d.raw(b"capture p1 rel.pcap");
    assert_eq!(r["ok"], false);
    assert!(
        r["error"].as_str().unwrap().contains("absolute path"),
        "{r}"
    );
    assert!(!d.dir.path("x.pcap").exists());
    // Nothing is running, and the daemon still works.
    assert_eq!(d.ok(&["capture-show"]), "no capture running\n");
    d.ok(&["capture", "p2", &file, "--count", "5"]);
    assert!(wait_capture_done(&d, "p2"));
    assert_eq!(pcap_records(Path::new(&file)).len(), 5);
    let log = d.stop();
    assert!(!log.contains("panicked"), "{log}");
}
