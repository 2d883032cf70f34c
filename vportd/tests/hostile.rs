//! Regression tests for the defects found probing vportd as a hostile user
//! would (issue 20): each fails on the code before its fix.

mod ctl_util;
use ctl_util::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn s(v: &str) -> String {
    v.to_string()
}

fn unique_prefix(tag: &str) -> String {
    format!("vptdefects{tag}{}", std::process::id())
}

/// vportd forwarding an infinite pcap to net_null, stdout piped, control
/// socket in `dir`.
fn spawn_forwarding(tag: &str, dir: &TempDir, extra: &[String]) -> (Child, String) {
    let mut args = vec![s("--ctl"), dir.path("vportd.ctl").display().to_string()];
    args.extend_from_slice(extra);
    spawn_forwarding_with(tag, dir, &args)
}

/// vportd forwarding an infinite pcap to net_null with exactly `extra`
/// after the ports and rules (no `--ctl` unless it is there).
fn spawn_forwarding_with(tag: &str, dir: &TempDir, extra: &[String]) -> (Child, String) {
    let prefix = unique_prefix(tag);
    let inp = dir.path("in.pcap");
    write_pcap(&inp, &traffic_frames());
    let eal = format!(
        "-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry --file-prefix={prefix} \
         --vdev=net_pcap0,rx_pcap={},infinite_rx=1 --vdev=net_null0,no-rx=1",
        inp.display()
    );
    let mut args = vec![
        s("--eal"),
        eal,
        s("--port"),
        s("p1=net_pcap0"),
        s("--port"),
        s("p2=net_null0"),
        s("--fwd"),
        s("--pmd-cores"),
        s("1"),
    ];
    args.extend_from_slice(extra);
    let child = Command::new(VPORTD)
        .args(&args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, prefix)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the PID of a child this test started.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits up to 30 s for the child to exit; kills it otherwise.
fn wait_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    let mut st = None;
    wait_until(30, || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    st
}

fn stderr_of(child: &mut Child) -> String {
    let mut e = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut e);
    }
    e
}

/// Item 6: `--stats-interval 1 | head -n 1` must not stop forwarding.
#[test]
fn closed_stdout_does_not_stop_the_daemon() {
    let dir = TempDir::new("defects-stdout");
    let (mut child, prefix) = spawn_forwarding("so", &dir, &[s("--stats-interval"), s("1")]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("rx"), "a rate line first: {line:?}");
    drop(out);
    // At least two more intervals print into the closed pipe.
    std::thread::sleep(Duration::from_millis(3000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "vportd stopped after stdout closed: {}",
        stderr_of(&mut child)
    );
    signal(&child, libc::SIGTERM);
    let st = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    assert!(st.is_some_and(|s| s.success()), "{st:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("mbufs in use at exit: 0"), "{err}");
}

/// Item 7: SIGHUP is ignored; SIGTERM then stops cleanly and removes the
/// socket.
#[test]
fn sighup_is_ignored_and_sigterm_stops_cleanly() {
    let dir = TempDir::new("defects-hup");
    let (mut child, prefix) = spawn_forwarding("hu", &dir, &[]);
    let ctl = dir.path("vportd.ctl");
    assert!(wait_until(20, || UnixStream::connect(&ctl).is_ok()));
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped vportd: {}",
        stderr_of(&mut child)
    );
    assert!(UnixStream::connect(&ctl).is_ok(), "still managed");
    signal(&child, libc::SIGTERM);
    let st = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    assert!(st.is_some_and(|s| s.success()), "{st:?}: {err}");
    assert!(err.contains("SIGHUP: ignored"), "{err}");
    assert!(!ctl.exists(), "socket removed at exit");
}

/// Item 9: an endpoint that cannot be bound stops the daemon with exit 1
/// and the reason.
#[test]
fn unbindable_metrics_or_ctl_exits_one() {
    for (tag, extra, want) in [
        (
            "mb",
            vec![s("--metrics"), s("not-an-address")],
            "--metrics not-an-address",
        ),
        (
            "mc",
            vec![s("--metrics"), s("127.0.0.1:1")],
            "--metrics 127.0.0.1:1",
        ),
    ] {
        let dir = TempDir::new("defects-bind");
        let (mut child, prefix) = spawn_forwarding(tag, &dir, &extra);
        let st = wait_exit(&mut child);
        let err = stderr_of(&mut child);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        // Port 1 needs root to bind: skip that case when running as root.
        // SAFETY: geteuid has no preconditions.
        if tag == "mc" && unsafe { libc::geteuid() } == 0 {
            continue;
        }
        assert_eq!(st.and_then(|s| s.code()), Some(1), "{err}");
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("vportd: ") && last.contains(want), "{err}");
    }
    // A control socket that a live daemon already serves.
    let d = traffic_daemon("defects-busy", "actions=drop\n");
    let dir = TempDir::new("defects-busy2");
    let prefix = unique_prefix("bz");
    let out = Command::new(VPORTD)
        .args([
            s("--eal"),
            format!(
                "-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry \
                 --file-prefix={prefix} --vdev=net_null0"
            ),
            s("--port"),
            s("p1=net_null0"),
            s("--ctl"),
            d.ctl.display().to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    drop(dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("another daemon is listening"), "{err}");
    assert!(
        UnixStream::connect(&d.ctl).is_ok(),
        "the first daemon keeps its socket"
    );
    d.stop();
}

/// Item 3: the request limit holds while the client is still streaming
/// (no pause needed): the daemon answers and closes before 3x the limit.
#[test]
fn ctl_request_limit_is_enforced_while_reading() {
    let d = traffic_daemon("defects-long", "actions=drop\n");
    let mut c = UnixStream::connect(&d.ctl).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    let refused = loop {
        if sent >= 192 << 20 {
            break false;
        }
        match c.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break true,
        }
    };
    assert!(refused, "192 MiB accepted without a newline");
    let mut reply = String::new();
    let _ = BufReader::new(&c).read_line(&mut reply);
    assert!(reply.contains("request longer than"), "{reply:?}");
    // The daemon still answers others.
    assert_eq!(d.raw(b"version")["ok"], true);
    d.stop();
}

/// Item 3: clients past the cap are told so, not given a thread each.
#[test]
fn ctl_clients_are_bounded() {
    let d = traffic_daemon("defects-many", "actions=drop\n");
    let mut idle: Vec<UnixStream> = Vec::new();
    for _ in 0..vportd_max_clients() {
        idle.push(UnixStream::connect(&d.ctl).unwrap());
    }
    // Let the accept loop take every one of them.
    std::thread::sleep(Duration::from_millis(1500));
    let mut extra = UnixStream::connect(&d.ctl).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&mut extra).read_line(&mut line).unwrap();
    assert!(line.contains("too many control clients"), "{line:?}");
    idle.truncate(0);
    assert!(wait_until(20, || {
        let mut s = UnixStream::connect(&d.ctl).unwrap();
        s.write_all(b"version\n").unwrap();
        let mut l = String::new();
        let _ = BufReader::new(s).read_line(&mut l);
        l.contains("\"ok\":true")
    }));
    d.stop();
}

fn vportd_max_clients() -> usize {
    256
}

/// Item 2: a slow client does not hold up a scrape, and an oversized
/// head is refused with 431 instead of being buffered.
#[test]
fn metrics_serves_past_a_slow_client_and_caps_the_head() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let d = {
        let dir = TempDir::new("defects-http");
        write_pcap(&dir.path("in.pcap"), &traffic_frames());
        Daemon::start(
            "defects-http",
            Setup {
                vdevs: vec!["net_null0,no-rx=1".into()],
                ports: vec!["p1=net_null0"],
                flows: "actions=drop\n",
                extra: vec![s("--metrics"), addr.clone()],
            },
            dir,
        )
    };
    assert!(wait_until(20, || TcpStream::connect(&addr).is_ok()));
    // The slow client: one byte, then silence (it stays open for the
    // whole scrape below).
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"G").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut fast = TcpStream::connect(&addr).unwrap();
    fast.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    fast.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("vportd_"), "{body}");
    // The slow one is still open (it had no answer yet) ...
    slow.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(slow.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the slow client was answered or closed before the scrape"
    );
    // ... and is timed out with 408 by the deadline.
    slow.set_nonblocking(false).unwrap();
    let mut r = String::new();
    let _ = slow.read_to_string(&mut r);
    assert!(r.starts_with("HTTP/1.1 408"), "{r:?}");

    // An oversized head.
    let mut big = TcpStream::connect(&addr).unwrap();
    big.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
    let mut answer = String::new();
    for _ in 0..64 {
        if big.write_all(filler.as_bytes()).is_err() {
            break;
        }
    }
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    d.stop();
}

/// Item 10: at exit the daemon removes only the socket it created.
#[test]
fn exit_leaves_a_socket_it_did_not_create() {
    let d = traffic_daemon("defects-inode", "actions=drop\n");
    let ctl = d.ctl.clone();
    std::fs::remove_file(&ctl).unwrap();
    let other = std::os::unix::net::UnixListener::bind(&ctl).unwrap();
    // (stop() also removes the test directory: the log is the witness.)
    let log = d.stop();
    assert!(log.contains("not the socket this daemon created"), "{log}");
    drop(other);
}

/// Two daemons started without `--ctl` (as `check.sh -j 2` starts them) both
/// run: the one that finds the default socket taken listens on
/// `vportd.<pid>.ctl` beside it and says so, instead of exiting 1.
#[test]
fn default_ctl_socket_taken_falls_back_to_a_pid_socket() {
    if unsafe_geteuid() != 0 {
        eprintln!("skipped: the default socket is /run/vportd only for root");
        return;
    }
    let dir = TempDir::new("defects-defctl");
    let (mut first, p1) = spawn_forwarding_with("d1", &dir, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let (mut second, p2) = spawn_forwarding_with("d2", &dir, &[]);
    let own = std::path::PathBuf::from("/run/vportd").join(format!("vportd.{}.ctl", second.id()));
    let listening = wait_until(20, || UnixStream::connect(&own).is_ok());
    let both_running = first.try_wait().unwrap().is_none() && second.try_wait().unwrap().is_none();
    for child in [&first, &second] {
        signal(child, libc::SIGTERM);
    }
    let st1 = wait_exit(&mut first);
    let st2 = wait_exit(&mut second);
    let err2 = stderr_of(&mut second);
    for p in [p1, p2] {
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{p}"));
    }
    assert!(both_running, "a daemon exited: {err2}");
    assert!(listening, "second daemon not on {}: {err2}", own.display());
    assert!(err2.contains("instead"), "{err2}");
    assert!(st1.is_some_and(|s| s.success()) && st2.is_some_and(|s| s.success()));
    assert!(!own.exists(), "its own socket removed at exit");
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Item 8: arguments past what the machine or OVS allow are one line and
/// exit 1, before anything is allocated.
#[test]
fn out_of_range_arguments_are_one_line() {
    for (args, want) in [
        (vec!["--pmd-cores", "0-1000000000000"], "is above 1023"),
        (
            vec!["--pmd-cores", "0-18446744073709551615"],
            "is above 1023",
        ),
        (
            vec!["--handler-threads", "20000"],
            "--handler-threads 20000",
        ),
        (vec!["--handler-threads", "0"], "--handler-threads 0"),
        (vec!["--flows", "/dev/zero"], "longer than 512 MiB"),
    ] {
        let mut a: Vec<String> = vec![s("--eal"), s("-l 0"), s("--port"), s("p1=net_null0")];
        a.extend(args.iter().map(|x| x.to_string()));
        let out = Command::new(VPORTD)
            .args(&a)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let d = traffic_daemon("defects-limits", "actions=drop\n");
    assert!(d.err(&["set", "flow-limit", "0"]).contains("out of range"));
    assert!(d
        .err(&["set", "flow-limit", "4294967296"])
        .contains("out of range"));
    assert!(d
        .err(&["set", "max-idle", "18446744073709551615"])
        .contains("above OVS's maximum"));
    d.ok(&["set", "flow-limit", "4294967295"]);
    d.stop();
}

/// Item 4: frames longer than one mbuf are counted on their port with a
/// reason, in `show`, `show --json` and the metrics.
#[test]
fn oversized_frames_are_counted_per_port() {
    let dir = TempDir::new("defects-jumbo");
    let mut frames = traffic_frames();
    for len in [8960usize, 65440] {
        let mut f = udp_frame(7);
        f.resize(len, 0xab);
        frames.push(f);
    }
    write_pcap(&dir.path("in.pcap"), &frames);
    let d = Daemon::start(
        "defects-jumbo",
        Setup {
            vdevs: vec![
                // Not infinite_rx: net_pcap preloads those into single mbufs.
                "net_pcap0,rx_pcap={dir}/in.pcap".into(),
                "net_null0,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", "p2=net_null0"],
            flows: "in_port=1,actions=output:2\n",
            extra: vec![],
        },
        dir,
    );
    let oversized = || -> u64 {
        let v = d.json(&["show"]);
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "p1")
            .map_or(0, |p| p["stats"]["rx_oversized"].as_u64().unwrap_or(0))
    };
    assert!(wait_until(20, || oversized() > 0), "{}", d.log());
    let v = d.json(&["show"]);
    let p1 = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "p1")
        .unwrap()
        .clone();
    assert!(
        p1["stats"]["drops"].as_u64().unwrap() >= p1["stats"]["rx_oversized"].as_u64().unwrap()
    );
    let m = d.ok(&["metrics"]);
    assert!(
        m.lines()
            .any(|l| l.starts_with("vportd_port_rx_oversized_total{")
                && l.contains("p1")
                && !l.ends_with(" 0")),
        "{m}"
    );
    assert!(m.contains("vportd_port_tx_full_total"), "{m}");
    d.stop();
}

/// Item 10: `capture` never follows a symlink and refuses an existing file
/// unless `--force`.
#[test]
fn capture_refuses_symlinks_and_existing_files() {
    let d = traffic_daemon("defects-cap", "actions=drop\n");
    let victim = d.dir.path("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = d.dir.path("link.pcap");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = d.err(&["capture", "p2", link.to_str().unwrap(), "--count", "1"]);
    assert!(e.contains("symbolic link"), "{e}");
    let e = d.err(&["capture", "p2", link.to_str().unwrap(), "--force"]);
    assert!(
        e.contains("symbolic link"),
        "not followed even with --force: {e}"
    );
    let e = d.err(&["capture", "p2", victim.to_str().unwrap(), "--count", "1"]);
    assert!(e.contains("exists: refused"), "{e}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    d.ok(&[
        "capture",
        "p2",
        victim.to_str().unwrap(),
        "--count",
        "1",
        "--force",
    ]);
    assert!(wait_until(20, || std::fs::read(&victim).unwrap() != b"precious"));
    d.stop();
}

/// Item 11: the DPDK runtime directory goes with the process, after a
/// clean exit and after an EAL or port set-up that failed (net_pcap keeps
/// mbufs when its infinite_rx set-up refuses a jumbo frame, which keeps the
/// EAL up), and the failure says why.
#[test]
fn runtime_dir_is_removed_on_every_exit() {
    let dir = TempDir::new("defects-rtdir");
    let mut frames = traffic_frames();
    let mut jumbo = udp_frame(7);
    jumbo.resize(8960, 0xab);
    frames.push(jumbo);
    write_pcap(&dir.path("jumbo.pcap"), &frames);
    let base = "-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry";
    let cases = [
        // A clean exit (idle after a finite pcap).
        (
            "ok",
            format!(
                "--vdev=net_pcap0,rx_pcap={} --vdev=net_null0,no-rx=1",
                dir.path("jumbo.pcap").display()
            ),
            true,
        ),
        // A port whose set-up fails after the driver took mbufs.
        (
            "port",
            format!(
                "--vdev=net_pcap0,rx_pcap={},infinite_rx=1 --vdev=net_null0,no-rx=1",
                dir.path("jumbo.pcap").display()
            ),
            false,
        ),
        // An EAL that refuses its arguments.
        ("eal", s("--no-such-eal-option"), false),
    ];
    for (tag, vdevs, ok) in cases {
        let prefix = unique_prefix(&format!("rt{tag}"));
        let run_dir = std::path::PathBuf::from(format!("/var/run/dpdk/{prefix}"));
        let out = Command::new(VPORTD)
            .args([
                "--eal",
                &format!("{base} --file-prefix={prefix} {vdevs}"),
                "--port",
                "p1=net_pcap0",
                "--port",
                "p2=net_null0",
                "--fwd",
                "--exit-when-idle",
                "300",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let existed = run_dir.exists();
        let _ = std::fs::remove_dir_all(&run_dir);
        assert_eq!(out.status.success(), ok, "{tag}: {err}");
        assert!(!existed, "{tag}: {} left behind: {err}", run_dir.display());
        if tag == "port" {
            assert!(err.contains("infinite_rx"), "{err}");
        }
    }
}
