//! Helpers for the control-socket tests: a vportd started on DPDK virtual
//! devices with its own control socket, and vportctl runs against it.
// Each test binary uses some of these (re-exports included).
#![allow(dead_code, unused_imports)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const VPORTD: &str = env!("CARGO_BIN_EXE_vportd");
pub const VPORTCTL: &str = env!("CARGO_BIN_EXE_vportctl");

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// The temp-dir, pcap and frame helpers are the ones every daemon test uses.
#[path = "../common/mod.rs"]
mod common;
pub use common::{udp_frame, wait_until, write_pcap, TempDir};

/// Hex of a frame.
/// The 64 UDP frames the traffic daemons replay.
pub fn traffic_frames() -> Vec<Vec<u8>> {
    (0..64).map(udp_frame).collect()
}

/// vportd with p1 = net_pcap replaying [`traffic_frames`] forever, p2 and
/// p3 = net_null sinks, and `flows`.
pub fn traffic_daemon(tag: &str, flows: &str) -> Daemon {
    let dir = TempDir::new(tag);
    write_pcap(&dir.path("in.pcap"), &traffic_frames());
    Daemon::start(
        tag,
        Setup {
            vdevs: vec![
                "net_pcap0,rx_pcap={dir}/in.pcap,infinite_rx=1".into(),
                "net_null0,no-rx=1".into(),
                "net_null1,no-rx=1".into(),
            ],
            ports: vec!["p1=net_pcap0", "p2=net_null0", "p3=net_null1"],
            flows,
            extra: vec![],
        },
        dir,
    )
}

pub use testkit::hex::encode as hex;

/// A running vportd with its own DPDK prefix, directory and socket.
pub struct Daemon {
    child: Option<Child>,
    pub dir: TempDir,
    pub ctl: PathBuf,
    prefix: String,
}

/// What to start.
pub struct Setup<'a> {
    pub vdevs: Vec<String>,
    /// `NAME=DEVICE` per port.
    pub ports: Vec<&'a str>,
    pub flows: &'a str,
    pub extra: Vec<String>,
}

impl Daemon {
    /// Starts vportd; `setup` may refer to files in the directory via
    /// `{dir}`.
    pub fn start(tag: &str, setup: Setup<'_>, dir: TempDir) -> Daemon {
        let prefix = unique(&format!("vc{tag}"));
        let ctl = dir.path("vportd.ctl");
        let flows = dir.path("flows.txt");
        std::fs::write(&flows, setup.flows).unwrap();
        let dirs = dir.0.display().to_string();
        let mut eal = format!(
            "-l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry --file-prefix={prefix}"
        );
        for v in &setup.vdevs {
            eal.push_str(" --vdev=");
            eal.push_str(&v.replace("{dir}", &dirs));
        }
        let mut args = vec![
            "--eal".to_string(),
            eal,
            "--ctl".into(),
            ctl.display().to_string(),
            "--flows".into(),
            flows.display().to_string(),
            "--mbufs".into(),
            "16383".into(),
        ];
        for p in &setup.ports {
            args.push("--port".into());
            args.push(p.to_string());
        }
        // One PMD on core 1 unless `extra` says otherwise.
        if !setup.extra.iter().any(|a| a == "--pmd-cores") {
            args.extend(["--pmd-cores".to_string(), "1".into()]);
        }
        args.extend(setup.extra.iter().map(|a| a.replace("{dir}", &dirs)));
        let log = std::fs::File::create(dir.path("vportd.log")).unwrap();
        let child = Command::new(VPORTD)
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning vportd");
        let mut d = Daemon {
            child: Some(child),
            dir,
            ctl,
            prefix,
        };
        let up = wait_until(20, || {
            if let Some(c) = d.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("vportd exited early ({st}):\n{}", d.log());
                }
            }
            UnixStream::connect(&d.ctl).is_ok()
        });
        assert!(up, "control socket never appeared:\n{}", d.log());
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("vportd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Runs `vportctl --ctl SOCKET ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new(VPORTCTL);
        c.arg("--ctl").arg(&self.ctl).args(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawning vportctl");
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs vportctl, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(
            o.status.success(),
            "vportctl {args:?} failed ({}): {err}\n{out}",
            o.status
        );
        assert!(err.is_empty(), "vportctl {args:?} wrote to stderr: {err}");
        out
    }

    /// Runs vportctl --json, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}: {out}"))
    }

    /// Runs vportctl, asserts exit status 1 and nothing on stdout, returns
    /// stderr.
    pub fn err(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(
            o.status.code(),
            Some(1),
            "vportctl {args:?} should fail with 1: {err} {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(o.stdout.is_empty(), "{args:?}: stdout on error");
        assert!(err.starts_with("vportctl: "), "{err}");
        err
    }

    /// One raw request line on a fresh connection; the raw reply line.
    pub fn raw(&self, request: &[u8]) -> Value {
        let mut s = UnixStream::connect(&self.ctl).unwrap();
        s.write_all(request).unwrap();
        s.write_all(b"\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "reply is one line: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    /// tx (or rx) packets of port `name` from `show --json`.
    pub fn port_stat(&self, name: &str, what: &str) -> u64 {
        let v = self.json(&["show"]);
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map_or(0, |p| p["stats"][what].as_u64().unwrap_or(0))
    }

    /// SIGTERM, wait (SIGKILL after 15 s); returns the log.
    pub fn stop(mut self) -> String {
        self.terminate();
        self.log()
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child this test started.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let done = wait_until(15, || matches!(c.try_wait(), Ok(Some(_))));
            if !done {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Reads a whole HTTP response from `addr` for `GET path`.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (head.to_string(), body.to_string())
}

/// Parses Prometheus text: every non-comment line is
/// `name{label="v",...} value`. Returns (name, labels, value) triples.
/// One Prometheus sample: name, labels, value.
pub type PromSample = (String, Vec<(String, String)>, f64);

pub fn parse_prometheus(text: &str) -> Vec<PromSample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let c = c.trim_start();
            assert!(
                c.starts_with("HELP ") || c.starts_with("TYPE "),
                "bad comment line {line:?}"
            );
            if let Some(t) = c.strip_prefix("TYPE ") {
                let kind = t.split_whitespace().nth(1).unwrap_or("");
                assert!(
                    ["counter", "gauge", "untyped", "histogram", "summary"].contains(&kind),
                    "bad TYPE line {line:?}"
                );
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                let mut labels = Vec::new();
                // Label values here never contain `",`.
                for kv in inner.split("\",").filter(|s| !s.is_empty()) {
                    let (k, v) = kv
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label {kv:?} in {line:?}"));
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "bad label name in {line:?}"
                    );
                    labels.push((k.to_string(), v.trim_end_matches('"').to_string()));
                }
                (n.to_string(), labels)
            }
            None => (series.to_string(), Vec::new()),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        out.push((name, labels, value));
    }
    out
}

/// The value of `name` with the given labels (all of them must match).
pub fn metric(samples: &[PromSample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.2)
}
