//! The control socket server: binding the Unix socket safely, accepting
//! clients (a bounded number, each timed out when idle), reading requests
//! line by line under [`proto::MAX_REQUEST_BYTES`], answering each with one
//! line; and starting the `--metrics` endpoint ([`super::http`]).
//!
//! Threads: one accept loop, one per connected client (at most
//! [`MAX_CLIENTS`]), one accept loop for HTTP. All of them poll a stop
//! flag (reads time out every 200 ms), so [`CtlHandle::stop`] joins every
//! one of them before the daemon tears the datapath down.

use super::{commands, http, proto, unixctl, Server};
use crate::switch::Switch;
use anyhow::{bail, Context, Result};
use parking_lot::Mutex;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Control clients served at once; one more is told so and closed.
pub const MAX_CLIENTS: usize = 256;

/// A client that sends nothing for this long is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often blocked reads wake up to look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// A counting limit on concurrent connections; a [`Slot`] gives its place
/// back when dropped.
pub struct Slots {
    used: AtomicUsize,
    max: usize,
}

/// One taken place in [`Slots`].
pub struct Slot(Arc<Slots>);

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// A place, or `None` when `max` are taken.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The running control server.
pub struct CtlHandle {
    stop: Arc<AtomicBool>,
    path: PathBuf,
    /// Device and inode of the socket this daemon bound: only that file is
    /// removed at exit (not one somebody put in its place).
    bound: Option<(u64, u64)>,
    accept: Option<JoinHandle<()>>,
    metrics: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// What the commands reach (the OVSDB client runs them too).
    pub server: Arc<Server>,
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
        if let Some((dev, ino)) = self.bound.take() {
            match std::fs::symlink_metadata(&self.path) {
                Ok(md) if md.dev() == dev && md.ino() == ino => {
                    let _ = std::fs::remove_file(&self.path);
                }
                Ok(_) => log::warn!(
                    "{}: not the socket this daemon created; left in place",
                    self.path.display()
                ),
                Err(_) => {}
            }
        }
    }
}

impl Drop for CtlHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Refuses a socket directory another user could tamper with: it must be
/// owned by this daemon's uid (or root), and not group- or world-writable
/// unless it has the sticky bit (as `/tmp`), where nobody else can remove
/// or rename our socket.
fn check_socket_dir(dir: &Path) -> Result<()> {
    let md = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if !md.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mode = md.mode();
    if md.uid() != euid && md.uid() != 0 {
        bail!(
            "{}: owned by uid {}, not by this daemon's uid {euid}: refusing to put the control socket there",
            dir.display(),
            md.uid()
        );
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        bail!(
            "{}: mode {:04o} lets other users replace the control socket (chmod go-w, or use --ctl PATH)",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// A bound control socket and the (device, inode) of its file, so that
/// exit removes only the socket this daemon created.
type Bound = (UnixListener, (u64, u64));

/// Binds the socket: creates its directory (0700) or checks an existing
/// one, replaces a stale socket, refuses to take over one a live daemon
/// listens on; mode 0600.
fn bind(path: &Path) -> Result<Bound> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() {
            check_socket_dir(dir)?;
        } else {
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
    let md = std::fs::symlink_metadata(path)?;
    Ok((listener, (md.dev(), md.ino())))
}

/// Binds the default control socket, as OVS daemons do with theirs: the
/// well-known path when it is free, else (another daemon holds it, e.g.
/// parallel conformance runs) `vportd.<pid>.ctl` beside it, logged so that
/// `vportctl --ctl` can be pointed at it. Only an explicit `--ctl` that
/// cannot be bound is fatal by itself.
fn bind_default() -> Result<(PathBuf, Bound)> {
    let path = proto::default_ctl_path();
    match bind(&path) {
        Ok(bound) => Ok((path, bound)),
        Err(first) => {
            let own = path.with_file_name(format!("vportd.{}.ctl", std::process::id()));
            let bound = bind(&own)
                .with_context(|| format!("default control socket: {first:#}"))
                .context("--ctl")?;
            log::warn!(
                "default control socket unavailable ({first:#}); listening on {} instead",
                own.display()
            );
            Ok((own, bound))
        }
    }
}

/// Starts the control socket server (and the metrics endpoint when
/// `metrics` names an address). Either failing to bind is an error: the
/// daemon does not run unmanageable.
pub fn start(
    switch: &Arc<Switch>,
    path: Option<PathBuf>,
    metrics: Option<String>,
) -> Result<CtlHandle> {
    let (path, (listener, bound)) = match path {
        Some(path) => {
            let bound = bind(&path).context("--ctl")?;
            (path, bound)
        }
        None => bind_default()?,
    };
    let server = Arc::new(Server::new(switch.clone(), path.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
    let mut handle = CtlHandle {
        stop: stop.clone(),
        path: path.clone(),
        bound: Some(bound),
        accept: None,
        metrics: None,
        conns: conns.clone(),
        server: server.clone(),
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
        handle.metrics =
            Some(http::start(&addr, server, stop).with_context(|| format!("--metrics {addr}"))?);
    }
    Ok(handle)
}

fn accept_loop(
    listener: UnixListener,
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let slots = Slots::new(MAX_CLIENTS);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let Some(slot) = slots.try_take() else {
                    let r = proto::Reply::err(format!(
                        "too many control clients (at most {MAX_CLIENTS}); try again"
                    ));
                    let _ = stream.set_nonblocking(true);
                    let _ = writeln!(stream, "{}", r.to_line());
                    log::warn!("control socket: {MAX_CLIENTS} clients connected; refused one");
                    continue;
                };
                let server = server.clone();
                let stop = stop.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("ctl-conn".into())
                        .spawn(move || {
                            let _slot = slot;
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

/// Reads requests line by line and answers each with one line. The size
/// limit is checked on every read, so a request streamed without a pause
/// never grows past it; a client silent for [`IDLE_TIMEOUT`] is closed.
fn serve_client(mut stream: UnixStream, server: &Server, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut last_input = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                // EOF; a last request without a newline still gets an answer.
                if !buf.is_empty() {
                    answer(&mut out, server, &buf)?;
                }
                return Ok(());
            }
            Ok(n) => {
                last_input = Instant::now();
                if buf.is_empty() && unixctl::is_unixctl(chunk[0]) {
                    return serve_unixctl(stream, out, server, stop, &chunk[..n]);
                }
                let mut data = &chunk[..n];
                while let Some(nl) = data.iter().position(|&b| b == b'\n') {
                    if buf.len() + nl > proto::MAX_REQUEST_BYTES {
                        return refuse_long(&mut out);
                    }
                    buf.extend_from_slice(&data[..=nl]);
                    answer(&mut out, server, &buf)?;
                    buf.clear();
                    data = &data[nl + 1..];
                }
                if buf.len() + data.len() > proto::MAX_REQUEST_BYTES {
                    return refuse_long(&mut out);
                }
                buf.extend_from_slice(data);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if last_input.elapsed() >= IDLE_TIMEOUT {
                    let r = proto::Reply::err(format!(
                        "idle for {} s: closing the connection",
                        IDLE_TIMEOUT.as_secs()
                    ));
                    let _ = writeln!(out, "{}", r.to_line());
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Serves a client that speaks OVS's unixctl (`ovs-appctl`): JSON-RPC
/// objects back to back, `first` being what was read already. Same idle
/// timeout and stop flag as the line protocol.
fn serve_unixctl(
    mut stream: UnixStream,
    mut out: UnixStream,
    server: &Server,
    stop: &AtomicBool,
    first: &[u8],
) -> std::io::Result<()> {
    let mut split = unixctl::ObjectSplitter::default();
    split.push(first);
    let mut chunk = vec![0u8; 64 << 10];
    let mut last_input = Instant::now();
    loop {
        loop {
            match split.next_object() {
                Ok(Some(object)) => {
                    unixctl::write_reply(&mut out, &unixctl::answer(server, &object))?
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("control socket: unixctl client: {e:?}; closing it");
                    return Ok(());
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                last_input = Instant::now();
                split.push(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if last_input.elapsed() >= IDLE_TIMEOUT {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn refuse_long(out: &mut UnixStream) -> std::io::Result<()> {
    let r = proto::Reply::err(format!(
        "request longer than {} bytes",
        proto::MAX_REQUEST_BYTES
    ));
    writeln!(out, "{}", r.to_line())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_past_the_limit_and_come_back() {
        let s = Slots::new(2);
        let a = s.try_take().unwrap();
        let _b = s.try_take().unwrap();
        assert!(s.try_take().is_none());
        drop(a);
        assert!(s.try_take().is_some());
    }

    #[test]
    fn a_group_writable_socket_dir_is_refused() {
        let d = std::env::temp_dir().join(format!("vportd-defects-dir-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = check_socket_dir(&d).unwrap_err().to_string();
        assert!(e.contains("mode 0775"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_socket_dir(&d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
