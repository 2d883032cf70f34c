//! Rule churn under traffic, without misforwarding (issue 19).
//!
//! vportd has three net_tap ports whose kernel interfaces live in a
//! network namespace this test creates. A sender paces numbered frames
//! into port 1 (20,000/s) while the test replaces the one rule for them
//! 2,000 times a second over the control socket: version `k` writes `k` into the frame's
//! source MAC and outputs to port 2 when `k` is even, port 3 when odd.
//! Every few milliseconds the test also runs `revalidator/wait`. Each frame
//! that comes out therefore says which rule version forwarded it, and the
//! test checks, for every frame:
//!
//! * it left by a port its version outputs to (no misforwarding);
//! * its version had been requested before the frame was received (no
//!   frame is forwarded by a rule from the future);
//! * a frame sent after a `revalidator/wait` that returned while version
//!   `v` was in force carries a version `>= v` (no stale megaflow survives
//!   the revalidation barrier);
//!
//! and that every frame sent is accounted for: received, or counted as
//! dropped by vportd, by the kernel's tap queue or by the receiving
//! socket. How stale frames got (sent after the next version was
//! acknowledged) is printed, not asserted.
//!
//! `CHURN_SECONDS` sets the run time (default 5; `make soak` runs 30).
//! Needs root, `ip netns` and `/dev/net/tun`; skips and says why without.

mod common;

use common::netns::{self, link_exists, wait_until, Daemon, Netns};
use common::{Prefix, TempDir};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// IEEE 802 local experimental ethertype: the kernel ignores it.
const ETHERTYPE: u16 = 0x88b5;
const FRAME_LEN: usize = 64;
/// Frames per second the sender paces (well below what a tap carries, so
/// losses are exceptional; they are accounted for either way).
const RATE_PPS: u64 = 20_000;
/// Rule replacements per second the churner paces.
const CHANGES_PER_S: u64 = 2_000;
/// How often the churner runs `revalidator/wait`.
const SYNC_EVERY: Duration = Duration::from_millis(20);

/// A raw `AF_PACKET` socket bound to one interface, for `ETHERTYPE`.
struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens it in the calling thread's network namespace.
    fn bind(ifname: &str) -> RawSocket {
        let proto = ETHERTYPE.to_be();
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: `name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(index != 0, "no interface {ifname}");
        // SAFETY: sockaddr_ll is plain data; zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = index as i32;
        // SAFETY: `addr` is a sockaddr_ll of the length given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert!(
            rc == 0,
            "bind {ifname}: {}",
            std::io::Error::last_os_error()
        );
        let s = RawSocket { fd };
        s.set_opt(libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20);
        s
    }

    fn set_opt(&self, level: i32, name: i32, value: i32) {
        // SAFETY: an int option, passed with its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&value as *const i32).cast(),
                4,
            )
        };
        assert!(rc == 0, "setsockopt: {}", std::io::Error::last_os_error());
    }

    fn set_recv_timeout(&self, t: Duration) {
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: t.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: a timeval option, passed with its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        assert!(rc == 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
    }

    fn send(&self, frame: &[u8]) -> bool {
        // SAFETY: `frame` is valid for its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        n == frame.len() as isize
    }

    /// One frame that arrived on the interface (not one sent from it), or
    /// `None` on timeout.
    fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            // SAFETY: sockaddr_ll is plain data; zero is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `from` are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if from.sll_pkttype != libc::PACKET_OUTGOING {
                return Some(n as usize);
            }
        }
    }

    /// Frames the kernel dropped because this socket's buffer was full.
    fn drops(&self) -> u64 {
        let mut st = [0u32; 2];
        let mut len = 8u32;
        // SAFETY: tpacket_stats is two u32s, passed with its size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                st.as_mut_ptr().cast(),
                &mut len,
            )
        };
        assert!(
            rc == 0,
            "PACKET_STATISTICS: {}",
            std::io::Error::last_os_error()
        );
        u64::from(st[1])
    }
}

/// Opens sockets on `ifnames` inside namespace `ns` (a thread enters it;
/// the sockets stay in it wherever they are used).
fn sockets_in(ns: &str, ifnames: &[String]) -> Vec<RawSocket> {
    let path = format!("/var/run/netns/{ns}");
    let names = ifnames.to_vec();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: setns(2) on an open namespace file; it only changes this
        // thread's network namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert!(rc == 0, "setns {path}: {}", std::io::Error::last_os_error());
        names.iter().map(|n| RawSocket::bind(n)).collect()
    })
    .join()
    .unwrap()
}

fn frame(seq: u64) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..22].copy_from_slice(&seq.to_le_bytes());
    f
}

/// Rule version `k`: its mark in the source MAC and its output port.
fn rule(k: u32) -> String {
    let m = k.to_be_bytes();
    format!(
        "priority=100,in_port=1,dl_type=0x88b5,actions=mod_dl_src:02:00:{:02x}:{:02x}:{:02x}:{:02x},output:{}",
        m[0],
        m[1],
        m[2],
        m[3],
        port_of(k)
    )
}

fn port_of(k: u32) -> u32 {
    if k.is_multiple_of(2) {
        2
    } else {
        3
    }
}

/// One request on a persistent control connection; panics on an error
/// reply.
fn request(conn: &mut (UnixStream, BufReader<UnixStream>), line: &str) {
    conn.0.write_all(line.as_bytes()).unwrap();
    conn.0.write_all(b"\n").unwrap();
    let mut reply = String::new();
    conn.1.read_line(&mut reply).unwrap();
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["ok"], true, "{line}: {reply}");
}

struct Received {
    seq: u64,
    version: u32,
    port: u32,
    at: Instant,
}

#[test]
fn rule_churn_under_traffic_never_misforwards() {
    if let Some(why) = netns::skip_reason(&[]) {
        eprintln!("churn: skipped: {why}");
        return;
    }
    let secs: u64 = std::env::var("CHURN_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let pid = std::process::id();
    let dir = TempDir::new("churn");
    let prefix = Prefix::new("churn");
    let taps: Vec<String> = (1..=3)
        .map(|i| format!("vch{i}{}", pid % 1_000_000))
        .collect();
    for t in &taps {
        assert!(!link_exists(t), "interface {t} exists already");
    }
    let vdevs: Vec<String> = taps
        .iter()
        .enumerate()
        .map(|(i, t)| format!("net_tap{i},iface={t}"))
        .collect();
    let flows = dir.path("flows.txt");
    std::fs::write(&flows, format!("{}\n", rule(0))).unwrap();
    let mut args = vec!["--eal".to_string(), common::eal(&prefix.0, &vdevs)];
    for i in 0..3 {
        args.push("--port".into());
        args.push(format!("p{}=net_tap{i}", i + 1));
    }
    args.extend(["--pmd-cores", "1", "--flows"].map(String::from));
    args.push(flows.to_str().unwrap().into());
    let daemon = Daemon::start(&args, dir.path("v.ctl"), dir.path("vportd.log"));
    assert!(
        wait_until(20, || taps.iter().all(|t| link_exists(t))),
        "tap interfaces never appeared:\n{}",
        daemon.log()
    );
    let ns = Netns::new(format!("vch{pid}"));
    for t in &taps {
        ns.take(t);
        ns.must(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{t}.disable_ipv6=1"),
        ]);
        ns.must(&["ip", "link", "set", t, "up"]);
    }
    let socks = Arc::new(sockets_in(&ns.0, &taps));

    // Receivers on ports 2 and 3.
    let stop = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = [(1usize, 2u32), (2, 3)]
        .into_iter()
        .map(|(i, port)| {
            let socks = socks.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = &socks[i];
                s.set_recv_timeout(Duration::from_millis(100));
                let mut got = Vec::new();
                let mut buf = [0u8; 2048];
                let mut quiet_since: Option<Instant> = None;
                loop {
                    match s.recv(&mut buf) {
                        Some(n) if n >= 22 => {
                            quiet_since = None;
                            got.push(Received {
                                seq: u64::from_le_bytes(buf[14..22].try_into().unwrap()),
                                version: u32::from_be_bytes(buf[8..12].try_into().unwrap()),
                                port,
                                at: Instant::now(),
                            });
                        }
                        Some(_) => {}
                        None if stop.load(Ordering::Relaxed) => {
                            // Stopped and nothing for 500 ms: done.
                            let q = *quiet_since.get_or_insert_with(Instant::now);
                            if q.elapsed() > Duration::from_millis(500) {
                                return got;
                            }
                        }
                        None => {}
                    }
                }
            })
        })
        .collect();

    // The sender, paced.
    let sender = {
        let socks = socks.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let total = RATE_PPS * secs;
            let mut sent_at = Vec::with_capacity(total as usize);
            let mut refused = 0u64;
            for seq in 0..total {
                // Paced by sleeping (frames due are sent together): a
                // spinning sender would take the core the handlers need.
                let due = start + Duration::from_nanos(seq * 1_000_000_000 / RATE_PPS);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                sent_at.push(Instant::now());
                if !socks[0].send(&frame(seq)) {
                    refused += 1;
                }
            }
            (sent_at, refused)
        })
    };

    // The churner: replace the rule, and now and then wait for the
    // revalidator.
    let stream = UnixStream::connect(&daemon.ctl).unwrap();
    let mut conn = (stream.try_clone().unwrap(), BufReader::new(stream));
    let mut requested: Vec<Instant> = vec![Instant::now()];
    let mut acked: Vec<Instant> = vec![Instant::now()];
    // (returned at, version in force when it was asked)
    let mut syncs: Vec<(Instant, u32)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut next_sync = Instant::now() + SYNC_EVERY;
    let churn_start = Instant::now();
    while Instant::now() < end {
        let k = requested.len() as u32;
        let due = churn_start + Duration::from_nanos(u64::from(k) * 1_000_000_000 / CHANGES_PER_S);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        requested.push(Instant::now());
        request(&mut conn, &format!("add-flow {}", shlex_quote(&rule(k))));
        acked.push(Instant::now());
        if Instant::now() >= next_sync {
            request(&mut conn, "revalidator-wait");
            syncs.push((Instant::now(), k));
            next_sync = Instant::now() + SYNC_EVERY;
        }
    }
    let (sent_at, refused) = sender.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut got: Vec<Received> = Vec::new();
    for r in receivers {
        got.extend(r.join().unwrap());
    }
    let versions = requested.len();
    let changes_per_s = (versions - 1) as f64 / secs as f64;

    // Every frame: the right port, a version already asked for, not older
    // than the last barrier before it was sent.
    let mut seen = vec![false; sent_at.len()];
    let mut max_stale = Duration::ZERO;
    let mut stale_frames = 0u64;
    for r in &got {
        let k = r.version;
        assert!(
            (k as usize) < versions,
            "frame {} carries version {k}, never requested",
            r.seq
        );
        assert_eq!(
            r.port,
            port_of(k),
            "frame {} left by port {} under version {k} (which outputs to {})",
            r.seq,
            r.port,
            port_of(k)
        );
        assert!(
            r.at >= requested[k as usize],
            "frame {} forwarded by version {k} before it was requested",
            r.seq
        );
        let seq = r.seq as usize;
        assert!(seq < sent_at.len(), "unknown frame {seq}");
        assert!(!seen[seq], "frame {seq} received twice");
        seen[seq] = true;
        let sent = sent_at[seq];
        // The last barrier that returned before this frame was sent.
        let barrier = syncs.partition_point(|(t, _)| *t < sent);
        if barrier > 0 {
            let (t, v) = syncs[barrier - 1];
            assert!(
                k >= v,
                "frame {seq} sent {:?} after a revalidator/wait under version {v} was forwarded by version {k}",
                sent - t
            );
        }
        if let Some(next) = acked.get(k as usize + 1) {
            if sent > *next {
                stale_frames += 1;
                max_stale = max_stale.max(sent - *next);
            }
        }
    }

    // Every frame is accounted for.
    let received = got.len() as u64;
    let socket_drops: u64 = socks[1..].iter().map(|s| s.drops()).sum();
    let tap_drops: u64 = {
        let out = ns.must(&["ip", "-j", "-s", "link", "show", "dev", &taps[0]]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["stats64"]["tx"]["dropped"].as_u64().unwrap_or(0)
    };
    let show = ctl_util_json(&daemon);
    let rx_drops = rx_drops(&show, "p1");
    // Every drop after rx (tx queue full, upcall queue full, ...) is
    // counted once, by reason, per PMD.
    // Frames the kernel itself sends on the taps (IPv6 before it is
    // disabled, ...) match no rule: the only table misses.
    // A test frame always matches a rule that outputs it: a table miss or
    // a drop action never applies to one, so those reasons are left out.
    let pmd_drops = pmd_counter(&daemon, "drops", None)
        - pmd_counter(&daemon, "drops", Some(("reason", "table_miss")))
        - pmd_counter(&daemon, "drops", Some(("reason", "action")));
    let by_reason = drop_reasons(&daemon);
    let upcalls = pmd_counter(&daemon, "upcalls", None);
    let stale_translations = pmd_counter(&daemon, "stale_translations", None);
    let installed = pmd_counter(&daemon, "megaflows_installed", None);
    let sent = sent_at.len() as u64;
    eprintln!(
        "churn: {secs} s, {versions} rule versions ({changes_per_s:.0}/s), {} barriers; \
         {sent} frames sent ({refused} refused by the socket), {received} received; \
         drops: p1 rx {rx_drops}, PMD {pmd_drops} {by_reason:?}, \
         tap queue {tap_drops}, sockets {socket_drops}; {upcalls} upcalls, \
         {stale_translations} stale translations, {installed} megaflows installed; \
         {stale_frames} frames sent after the next version's ack, at most {max_stale:?} after",
        syncs.len()
    );
    assert!(
        versions as u64 > CHANGES_PER_S * secs / 2,
        "only {versions} rule versions in {secs} s"
    );
    assert_eq!(
        sent,
        received + refused + rx_drops + pmd_drops + tap_drops + socket_drops,
        "frames unaccounted for"
    );
    drop(conn);
    let mut daemon = daemon;
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert!(
        daemon.log().contains("mbufs in use at exit: 0"),
        "{}",
        daemon.log()
    );
}

/// A flow for the control protocol's shell-quoted request line.
fn shlex_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn ctl_util_json(d: &Daemon) -> serde_json::Value {
    let o = d.ctl(env!("CARGO_BIN_EXE_vportctl"), &["--json", "show"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What port `name` lost before a PMD saw it (NIC queue full, errors, no
/// mbuf, oversized).
fn rx_drops(show: &serde_json::Value, name: &str) -> u64 {
    let port = show["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no port {name} in {show}"));
    ["rx_missed", "rx_errors", "rx_nombuf", "rx_oversized"]
        .iter()
        .map(|k| port["stats"][k].as_u64().unwrap_or(0))
        .sum()
}

/// `/metrics` samples: (name, labels, value).
type Sample = (String, Vec<(String, String)>, f64);

fn metrics(d: &Daemon) -> Vec<Sample> {
    let o = d.ctl(env!("CARGO_BIN_EXE_vportctl"), &["metrics"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((name.to_string(), labels, value.parse().ok()?))
        })
        .collect()
}

/// A PMD counter summed over the PMDs (and reasons, unless one is given).
fn pmd_counter(d: &Daemon, name: &str, label: Option<(&str, &str)>) -> u64 {
    let metric = format!("vportd_pmd_{name}_total");
    metrics(d)
        .iter()
        .filter(|(n, labels, _)| {
            *n == metric
                && label.is_none_or(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v as u64)
        .sum()
}

/// The PMDs' non-zero drop counters by reason.
fn drop_reasons(d: &Daemon) -> Vec<(String, u64)> {
    metrics(d)
        .iter()
        .filter(|(n, _, v)| n == "vportd_pmd_drops_total" && *v > 0.0)
        .map(|(_, labels, v)| {
            let reason = labels
                .iter()
                .find(|(k, _)| k == "reason")
                .map_or(String::new(), |(_, r)| r.clone());
            (reason, *v as u64)
        })
        .collect()
}
