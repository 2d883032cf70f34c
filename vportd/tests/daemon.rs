//! The daemon as a user runs it: real DPDK virtual devices, the vportd
//! binary, its exit status and its output files.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn pcap_in_pcap_out_byte_exact_with_exit_when_idle() {
    let dir = TempDir::new("exact");
    let prefix = Prefix::new("ex");
    let frames: Vec<Vec<u8>> = (0..300).map(|i| udp_frame(i % 37)).collect();
    let inp = dir.path("in.pcap");
    write_pcap(&inp, &frames);
    let out2 = dir.path("out2.pcap");
    let out1 = dir.path("out1.pcap");
    let eal_args = eal(
        &prefix.0,
        &[
            format!(
                "net_pcap0,rx_pcap={},tx_pcap={}",
                inp.display(),
                out1.display()
            ),
            format!("net_pcap1,tx_pcap={}", out2.display()),
        ],
    );
    let out = run_vportd(
        &[
            s("--eal"),
            eal_args,
            s("--port"),
            s("p1=net_pcap0"),
            s("--port"),
            s("p2=net_pcap1"),
            s("--fwd"),
            s("--exit-when-idle"),
            s("300"),
            s("--pmd-cores"),
            s("1"),
        ],
        60,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vportd failed: {stderr}");
    let got = read_pcap(&out2);
    // One flow per key; per-flow order is kept, and every frame arrives.
    let mut a = got.clone();
    let mut b = frames.clone();
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len(), "every frame forwarded");
    assert_eq!(a, b, "byte-exact");
    assert!(read_pcap(&out1).is_empty(), "nothing back out of port 1");
    assert!(
        stderr.contains("mbufs in use at exit: 0"),
        "mbuf pool back to its start value: {stderr}"
    );
}

#[test]
fn sigterm_under_traffic_exits_zero() {
    let dir = TempDir::new("term");
    let prefix = Prefix::new("tm");
    let inp = dir.path("in.pcap");
    write_pcap(&inp, &(0..64).map(udp_frame).collect::<Vec<_>>());
    let eal_args = eal(
        &prefix.0,
        &[
            format!("net_pcap0,rx_pcap={},infinite_rx=1", inp.display()),
            s("net_null0,no-rx=1"),
        ],
    );
    let mut child = Command::new(VPORTD)
        .args([
            s("--eal"),
            eal_args,
            s("--port"),
            s("p1=net_pcap0"),
            s("--port"),
            s("p2=net_null0"),
            s("--fwd"),
            s("--pmd-cores"),
            s("1"),
            s("--stats-interval"),
            s("1"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("vportd did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "exit status {status}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("p2: rx"), "rates were printed: {stdout}");
}

#[test]
fn bad_port_is_one_clear_line() {
    let prefix = Prefix::new("bp");
    let out = run_vportd(
        &[
            s("--eal"),
            eal(&prefix.0, &[s("net_null0")]),
            s("--port"),
            s("p1=net_nosuch7"),
        ],
        30,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("vportd: "), "{stderr}");
    assert!(
        last.contains("p1=net_nosuch7"),
        "names the argument: {last}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = run_vportd(&[s("--eal"), s("-l 0"), s("--port"), s("p1")], 30);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--port \"p1\""), "{stderr}");

    let out = run_vportd(
        &[
            s("--eal"),
            s("-l 0"),
            s("--port"),
            s("a=x"),
            s("--port"),
            s("a=y"),
        ],
        30,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate port name"));
}

#[test]
fn bad_eal_is_one_clear_line() {
    let out = run_vportd(&[s("--eal"), s("--no-such-eal-option")], 30);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("vportd: --eal"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_flow_file_names_line_and_column() {
    let dir = TempDir::new("flows");
    let flows = dir.path("flows.txt");
    std::fs::write(&flows, "in_port=1 actions=output:2\ntcp,nw_src=10.0.0.1,tp_dst=80,actions=output:2\nip,nw_src=10.0.0.1 actions=frob\n").unwrap();
    let out = run_vportd(
        &[
            s("--eal"),
            s("-l 0"),
            s("--flows"),
            flows.display().to_string(),
        ],
        30,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.contains("flows.txt:3:"), "line number: {last}");
    assert!(last.contains("col"), "column: {last}");
}

/// `mtu=` (OVS `mtu_request`): jumbo frames are received into mbufs big
/// enough for one segment and forwarded byte for byte; a frame that does
/// not fit even those is counted, never silently lost.
#[test]
fn jumbo_frames_with_mtu_are_forwarded_exactly() {
    let dir = TempDir::new("jumbo");
    let prefix = Prefix::new("jm");
    let mut frames: Vec<Vec<u8>> = (0..8).map(udp_frame).collect();
    for (i, len) in [1600usize, 8960, 9018].into_iter().enumerate() {
        let mut f = udp_frame(100 + i as u32);
        f.resize(len, 0x5a + i as u8);
        frames.push(f);
    }
    let inp = dir.path("in.pcap");
    write_pcap(&inp, &frames);
    let out = dir.path("out.pcap");
    let o = run_vportd(
        &[
            s("--eal"),
            eal(
                &prefix.0,
                &[
                    format!("net_pcap0,rx_pcap={}", inp.display()),
                    format!("net_pcap1,tx_pcap={}", out.display()),
                ],
            ),
            s("--port"),
            s("p1=net_pcap0,mtu=9000"),
            s("--port"),
            s("p2=net_pcap1,mtu=9000"),
            s("--fwd"),
            s("--pmd-cores"),
            s("1"),
            s("--exit-when-idle"),
            s("500"),
        ],
        60,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("mbuf pool for mtu 9000"), "{err}");
    assert_eq!(read_pcap(&out), frames, "{err}");
    assert!(err.contains("mbufs in use at exit: 0"), "{err}");
}
