//! `--fail-mode`: what vportd does with no controller connected, as OVS
//! 3.1 does it. `standalone` without a controller starts with a visible
//! `priority=0,actions=NORMAL`; with a controller configured, once none has
//! been connected for three inactivity-probe intervals every packet is
//! switched by NORMAL (fail-open, the tables untouched) until a controller
//! completes its HELLO. `secure` never forwards on its own.
//!
//! p1 replays UDP frames forever; p2 is a sink: NORMAL floods the unknown
//! destination to p2, the table (`in_port=1,actions=drop`) drops it.

mod ctl_util;
use ctl_util::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn daemon(tag: &str, flows: &str, extra: &[String]) -> Daemon {
    let dir = TempDir::new(tag);
    write_pcap(&dir.path("in.pcap"), &traffic_frames());
    Daemon::start(
        tag,
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into(),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", "p2=net_null0"],
            flows,
            extra: extra.to_vec(),
        },
        dir,
    )
}

/// True when p2's tx counter grows within 10 s.
fn p2_grows(d: &Daemon) -> bool {
    let before = d.port_stat("p2", "tx_packets");
    wait_until(10, || d.port_stat("p2", "tx_packets") > before + 100)
}

/// True when p2's tx counter stops growing (two reads 300 ms apart
/// equal) within 10 s.
fn p2_stops(d: &Daemon) -> bool {
    wait_until(10, || {
        let a = d.port_stat("p2", "tx_packets");
        std::thread::sleep(Duration::from_millis(300));
        d.port_stat("p2", "tx_packets") == a
    })
}

fn flows(d: &Daemon) -> Vec<String> {
    d.json(&["dump-flows"])["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "table={} priority={} {} actions={}",
                f["table"],
                f["priority"],
                f["match"].as_str().unwrap(),
                f["actions"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn standalone_without_controller_starts_with_a_normal_rule() {
    let d = daemon("fmnone", "", &["--fail-mode".into(), "standalone".into()]);
    let f = flows(&d);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].starts_with("table=0 priority=0 "), "{f:?}");
    assert!(f[0].ends_with("actions=NORMAL"), "{f:?}");
    assert!(
        p2_grows(&d),
        "NORMAL floods p1's frames to p2:\n{}",
        d.log()
    );
}

/// A controller that completes the HELLO exchange and then answers echo
/// requests (the inactivity probe) until dropped.
struct FakeController {
    stream: TcpStream,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeController {
    fn accept(l: &TcpListener) -> FakeController {
        let (mut stream, _) = l.accept().unwrap();
        // OpenFlow 1.3 HELLO.
        stream.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).unwrap();
        let mut rd = stream.try_clone().unwrap();
        let thread = std::thread::spawn(move || {
            let mut h = [0u8; 8];
            while rd.read_exact(&mut h).is_ok() {
                let len = u16::from_be_bytes([h[2], h[3]]) as usize;
                let mut body = vec![0u8; len.saturating_sub(8)];
                if rd.read_exact(&mut body).is_err() {
                    break;
                }
                if h[1] == 2 {
                    // ECHO_REQUEST -> ECHO_REPLY with its xid.
                    let mut reply = h;
                    reply[1] = 3;
                    reply[2..4].copy_from_slice(&8u16.to_be_bytes());
                    if rd.write_all(&reply).is_err() {
                        break;
                    }
                }
            }
        });
        FakeController {
            stream,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeController {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn standalone_fails_open_without_controller_and_recovers_when_one_connects() {
    let port = free_port();
    let d = daemon(
        "fmopen",
        "priority=10,in_port=1,actions=drop\n",
        &[
            "--fail-mode".into(),
            "standalone".into(),
            "--inactivity-probe".into(),
            "1".into(),
            "--controller".into(),
            format!("tcp:127.0.0.1:{port}"),
        ],
    );
    let table = flows(&d);
    assert_eq!(table.len(), 1, "{table:?}");
    // No controller for 3 s: fail-open switches by NORMAL.
    assert!(p2_grows(&d), "fail-open never started:\n{}", d.log());
    assert!(d.log().contains("entering fail-open mode"), "{}", d.log());
    assert_eq!(flows(&d), table, "fail-open leaves the tables alone");

    // A controller connects: the table (drop) applies again.
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let c = FakeController::accept(&l);
    assert!(
        wait_until(20, || d.log().contains("leaving fail-open mode")),
        "{}",
        d.log()
    );
    assert!(p2_stops(&d), "the drop rule applies again:\n{}", d.log());

    // It goes away (and nothing listens any more): fail-open again.
    drop(c);
    drop(l);
    assert!(p2_grows(&d), "fail-open never came back:\n{}", d.log());
    assert_eq!(flows(&d), table);
    d.stop();
}

#[test]
fn secure_keeps_the_tables_with_no_controller() {
    let port = free_port();
    let d = daemon(
        "fmsecure",
        "priority=10,in_port=1,actions=drop\n",
        &[
            "--fail-mode".into(),
            "secure".into(),
            "--inactivity-probe".into(),
            "1".into(),
            "--controller".into(),
            format!("tcp:127.0.0.1:{port}"),
        ],
    );
    // Well past the 3 s after which standalone would fail open.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(d.port_stat("p2", "tx_packets"), 0, "{}", d.log());
    assert!(d.port_stat("p1", "rx_packets") > 0, "traffic arrives");
    assert!(!d.log().contains("fail-open"), "{}", d.log());
    assert_eq!(flows(&d).len(), 1);
    d.stop();
}

/// A silent controller (TCP up, no HELLO back) is closed by the inactivity
/// probe, and counts as no controller for fail-open.
#[test]
fn silent_controller_is_probed_out_and_standalone_fails_open() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let d = daemon(
        "fmsilent",
        "priority=10,in_port=1,actions=drop\n",
        &[
            "--fail-mode".into(),
            "standalone".into(),
            "--inactivity-probe".into(),
            "1".into(),
            "--controller".into(),
            format!("tcp:127.0.0.1:{port}"),
        ],
    );
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    // vportd's HELLO, then EOF when the probe gives up on us.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "vportd never closed the silent connection: {e}\n{}",
                d.log()
            ),
        }
    }
    assert_eq!(got.first(), Some(&4), "an OpenFlow 1.3 HELLO first");
    assert!(p2_grows(&d), "fail-open never started:\n{}", d.log());
    d.stop();
}
