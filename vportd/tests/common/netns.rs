//! The kernel as a peer: network namespaces and the vportd a test starts,
//! both cleaned up on drop (also when the test panics), and the checks of
//! whether this machine can run such a test at all.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {prog} {args:?}: {e}"))
}

/// Runs a command, panicking with its output if it fails.
pub fn must(prog: &str, args: &[&str]) -> String {
    let o = run(prog, args);
    assert!(
        o.status.success(),
        "{prog} {args:?} failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub use super::wait_until;

/// Why a namespace test cannot run here, if it cannot: not root, no
/// `/dev/net/tun`, or one of `progs` (program, arguments that succeed)
/// missing or failing. A program listed with `None` only has to exist.
pub fn skip_reason(progs: &[(&str, Option<&[&str]>)]) -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    for (prog, args) in [("ip", Some(&["netns", "list"][..]))].iter().chain(progs) {
        match Command::new(prog)
            .args(args.unwrap_or(&["-h"]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(st) if args.is_some() && !st.success() => {
                return Some(format!(
                    "`{prog} {}` fails ({st})",
                    args.unwrap_or_default().join(" ")
                ))
            }
            Ok(_) => {}
            Err(e) => return Some(format!("cannot run {prog}: {e}")),
        }
    }
    None
}

/// A network namespace this test created; deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: String) -> Netns {
        let _ = run("ip", &["netns", "del", &name]);
        must("ip", &["netns", "add", &name]);
        Netns(name)
    }

    /// `ip netns exec NS ARGS...`
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", &self.0];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    pub fn must(&self, args: &[&str]) -> String {
        let mut a = vec!["netns", "exec", &self.0];
        a.extend_from_slice(args);
        must("ip", &a)
    }

    pub fn spawn(&self, args: &[&str], stdout: Stdio) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Moves the (root namespace) interface `dev` in here.
    pub fn take(&self, dev: &str) {
        must("ip", &["link", "set", dev, "netns", &self.0]);
    }

    /// The MAC address of `dev` in this namespace, as `ip` prints it.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.must(&["ip", "-br", "link", "show", "dev", dev]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC in `ip -br link show dev {dev}`: {out}"))
            .to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// One host: a namespace with an address on one (tap) interface.
pub struct Host {
    pub ns: Netns,
    pub dev: String,
    pub addr: String,
    pub mac: String,
}

impl Host {
    /// Moves `dev` into a new namespace `ns` and gives it `addr`/24.
    pub fn new(ns: String, dev: &str, addr: &str) -> Host {
        let ns = Netns::new(ns);
        // IPv6 off: the only frames a host sends are the test's own (ARP,
        // ICMP, TCP), so what the switch sees is what the test caused.
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        let _ = ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        ns.take(dev);
        let _ = ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
        ]);
        ns.must(&["ip", "link", "set", "lo", "up"]);
        ns.must(&["ip", "addr", "add", &format!("{addr}/24"), "dev", dev]);
        ns.must(&["ip", "link", "set", dev, "up"]);
        let mac = ns.mac(dev);
        Host {
            ns,
            dev: dev.to_string(),
            addr: addr.to_string(),
            mac,
        }
    }

    /// One `ping -c 1 -W 1` to `addr`, up to `tries` times.
    pub fn ping(&self, addr: &str, tries: u32) -> bool {
        (0..tries).any(|_| {
            self.ns
                .exec(&["ping", "-c", "1", "-W", "1", addr])
                .status
                .success()
        })
    }
}

/// The vportd a test started: SIGTERM (then SIGKILL) on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub log: PathBuf,
    pub ctl: PathBuf,
}

impl Daemon {
    /// Starts vportd with `args` (its control socket at `ctl`, output in
    /// `log`) and waits until the control socket accepts, which is once
    /// its ports are started.
    pub fn start(args: &[String], ctl: PathBuf, log: PathBuf) -> Daemon {
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new(super::VPORTD)
            .args(args)
            .arg("--ctl")
            .arg(&ctl)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("spawning vportd");
        let mut d = Daemon {
            child: Some(child),
            log,
            ctl,
        };
        let ready = wait_until(30, || {
            if let Some(c) = d.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("vportd exited early ({st}):\n{}", d.log());
                }
            }
            std::os::unix::net::UnixStream::connect(&d.ctl).is_ok()
        });
        assert!(ready, "control socket never appeared:\n{}", d.log());
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `vportctl --ctl CTL ARGS...`
    pub fn ctl(&self, vportctl: &str, args: &[&str]) -> Output {
        let mut a = vec!["--ctl", self.ctl.to_str().unwrap()];
        a.extend_from_slice(args);
        run(vportctl, &a)
    }

    /// SIGTERM by pid; waits up to 15 s; returns the exit code (None if it
    /// had to be killed or died from a signal).
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on the pid of the child this test started.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let mut status = None;
        wait_until(15, || {
            status = c.try_wait().ok().flatten();
            status.is_some()
        });
        match status {
            Some(st) => st.code(),
            None => {
                let _ = c.kill();
                let _ = c.wait();
                None
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name]).status.success()
}

/// One `ping -c 1 -W 1` from `ns` to `addr`, up to `tries` times.
pub fn ping(ns: &Netns, addr: &str, tries: u32) -> bool {
    (0..tries).any(|_| {
        ns.exec(&["ping", "-c", "1", "-W", "1", addr])
            .status
            .success()
    })
}

/// Sends the file `data` from `from` to `to_addr:port` (where `to` runs
/// `nc -l`) and returns what the listener received.
pub fn transfer(
    from: &Netns,
    to: &Netns,
    to_addr: &str,
    port: u16,
    data: &std::path::Path,
) -> Vec<u8> {
    // Its stdin stays open (a sleep): nc must not end its side of the
    // connection on stdin EOF while the client is still sending.
    let srv = to.spawn(
        &[
            "bash",
            "-c",
            &format!("exec timeout 30 nc -l {port} < <(sleep 30)"),
        ],
        Stdio::piped(),
    );
    let listening = wait_until(10, || {
        to.must(&["ss", "-ltnH"]).contains(&format!(":{port} "))
    });
    assert!(listening, "the listener on {port} never listened");
    let sent = from
        .exec(&[
            "sh",
            "-c",
            &format!(
                "timeout 20 nc -N -w 5 {to_addr} {port} < {}",
                data.display()
            ),
        ])
        .status
        .success();
    assert!(sent, "nc to {to_addr}:{port} failed");
    srv.wait_with_output().unwrap().stdout
}
