//! The control socket: a Unix stream socket on which `vportctl` (or anything
//! that writes a line) sends one request per line and gets one JSON reply
//! per line; and, with `--metrics ADDR`, a Prometheus endpoint over HTTP.
//!
//! * [`proto`]: the envelope and the default path (shared with vportctl);
//! * [`commands`]: parsing and running the commands;
//! * [`format`]: the human tables; [`json`]: the `data` schemas;
//! * [`metrics`]: Prometheus text and the HTTP server.
//!
//! Threads: one accept loop for the socket, one per connected client, one
//! for the HTTP endpoint. All of them poll a stop flag (socket reads time
//! out every 200 ms), so [`CtlHandle::stop`] joins every one of them before
//! the daemon tears the datapath down.

pub mod commands;
pub mod fdb;
pub mod format;
pub mod json;
pub mod metrics;
pub mod proto;

use crate::daemon::Switch;
use anyhow::{bail, Context, Result};
use parking_lot::Mutex;
use pmd::stats::PmdStatsSnapshot;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `pmd-stats-clear`'s baseline: a snapshot per PMD and when it was taken.
pub struct Baseline {
    pub at: Instant,
    /// Indexed by PMD index; missing entries are all zeros.
    pub snaps: Vec<PmdStatsSnapshot>,
}

/// What every command can reach.
pub struct Server {
    pub switch: Arc<Switch>,
    pub baseline: Mutex<Baseline>,
    /// Last `set emc-insert-inv-prob` value (the datapath does not report
    /// its current one).
    pub emc_insert_inv_prob: Mutex<Option<u32>>,
    pub ctl_path: PathBuf,
    /// Serialises port and rule changes requested over the socket.
    pub edit: Mutex<()>,
}

impl Server {
    pub fn new(switch: Arc<Switch>, ctl_path: PathBuf) -> Server {
        Server {
            baseline: Mutex::new(Baseline {
                at: switch.started,
                snaps: Vec::new(),
            }),
            switch,
            emc_insert_inv_prob: Mutex::new(None),
            ctl_path,
            edit: Mutex::new(()),
        }
    }
}

/// The running control server.
pub struct CtlHandle {
    stop: Arc<AtomicBool>,
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl CtlHandle {
    /// Stops serving, waits for every client thread, removes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        if let Some(t) = self.metrics.take() {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock());
        for c in conns {
            let _ = c.join();
        }
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            self.path = PathBuf::new();
        }
    }
}

impl Drop for CtlHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds the socket: creates its directory, replaces a stale socket,
/// refuses to take over one a live daemon listens on; mode 0600.
fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "{}: another daemon is listening on this control socket (use --ctl PATH)",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
            log::info!("removed stale control socket {}", path.display());
        }
        Ok(_) => bail!("{}: exists and is not a socket", path.display()),
        Err(_) => {}
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Starts the control socket server (and the metrics endpoint when
/// `metrics` names an address).
pub fn start(
    switch: &Arc<Switch>,
    path: Option<PathBuf>,
    metrics: Option<String>,
) -> Result<CtlHandle> {
    let path = path.unwrap_or_else(proto::default_ctl_path);
    let listener = bind(&path)?;
    let server = Arc::new(Server::new(switch.clone(), path.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
    let mut handle = CtlHandle {
        stop: stop.clone(),
        path: path.clone(),
        accept: None,
        metrics: None,
        conns: conns.clone(),
    };
    {
        let server = server.clone();
        let stop = stop.clone();
        handle.accept = Some(
            std::thread::Builder::new()
                .name("ctl-accept".into())
                .spawn(move || accept_loop(listener, server, stop, conns))
                .context("spawning the control thread")?,
        );
    }
    log::info!("control socket {}", path.display());
    if let Some(addr) = metrics {
        match std::net::TcpListener::bind(&addr) {
            Ok(l) => {
                let local = l.local_addr().map_or(addr.clone(), |a| a.to_string());
                l.set_nonblocking(true)?;
                let server = server.clone();
                let stop = stop.clone();
                handle.metrics = Some(
                    std::thread::Builder::new()
                        .name("ctl-metrics".into())
                        .spawn(move || metrics::serve(l, server, stop))
                        .context("spawning the metrics thread")?,
                );
                log::info!("metrics on http://{local}/metrics");
            }
            Err(e) => log::error!("--metrics {addr}: {e}: metrics endpoint disabled"),
        }
    }
    Ok(handle)
}

fn accept_loop(
    listener: UnixListener,
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let server = server.clone();
                let stop = stop.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("ctl-conn".into())
                        .spawn(move || {
                            if let Err(e) = serve_client(stream, &server, &stop) {
                                log::debug!("control client: {e}");
                            }
                        });
                let mut c = conns.lock();
                c.retain(|h| !h.is_finished());
                match spawned {
                    Ok(h) => c.push(h),
                    Err(e) => log::warn!("control socket: cannot spawn a client thread: {e}"),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                log::warn!("control socket: accept: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Reads requests line by line and answers each with one line.
fn serve_client(stream: UnixStream, server: &Server, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => {
                // EOF; a last request without a newline still gets an answer.
                if !buf.is_empty() {
                    answer(&mut out, server, &buf)?;
                }
                return Ok(());
            }
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    answer(&mut out, server, &buf)?;
                    buf.clear();
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if buf.len() > proto::MAX_REQUEST_BYTES {
            let r = proto::Reply::err(format!(
                "request longer than {} bytes",
                proto::MAX_REQUEST_BYTES
            ));
            writeln!(out, "{}", r.to_line())?;
            return Ok(());
        }
    }
}

fn answer(out: &mut UnixStream, server: &Server, raw: &[u8]) -> std::io::Result<()> {
    let reply = match std::str::from_utf8(raw) {
        Ok(line) => {
            let line = line.trim_end_matches(['\n', '\r']);
            // A panic in a command must not take the daemon down.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                commands::execute(server, line)
            })) {
                Ok(r) => r,
                Err(_) => proto::Reply::err(
                    "internal error while running the command (see the daemon log)",
                ),
            }
        }
        Err(e) => proto::Reply::err(format!(
            "request is not UTF-8 (byte {})",
            e.valid_up_to() + 1
        )),
    };
    out.write_all(reply.to_line().as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}
