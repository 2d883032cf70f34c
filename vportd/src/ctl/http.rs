//! The `--metrics ADDR` HTTP endpoint: `GET /metrics` answers the
//! Prometheus text of [`super::metrics`].
//!
//! Bounded against slow or hostile clients: at most [`MAX_CONNECTIONS`]
//! served at once (each on its own thread, so one slow client never holds
//! up a scrape), a request head of at most [`MAX_HEAD_BYTES`], and a total
//! [`DEADLINE`] per connection whatever the pace of its bytes. A bind to a
//! non-loopback address is logged as a warning: the counters are readable
//! by anyone who can reach it, with no authentication.

use super::metrics::{collect, render};
use super::server::Slots;
use super::Server;
use anyhow::{Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 16;

/// Request line plus headers.
pub const MAX_HEAD_BYTES: usize = 8 << 10;

/// A connection's whole life: reading the request and writing the reply.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Binds `addr` and starts the accept thread.
pub fn start(addr: &str, server: Arc<Server>, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).context("cannot bind")?;
    let local = listener.local_addr().context("local address")?;
    listener.set_nonblocking(true)?;
    if !local.ip().is_loopback() {
        log::warn!(
            "--metrics {local}: NOT a loopback address: every counter is readable, without \
             authentication, by anyone who can reach it (bind 127.0.0.1:PORT unless that is meant)"
        );
    }
    let h = std::thread::Builder::new()
        .name("ctl-metrics".into())
        .spawn(move || serve(listener, server, stop))
        .context("spawning the metrics thread")?;
    log::info!("metrics on http://{local}/metrics");
    Ok(h)
}

fn serve(listener: TcpListener, server: Arc<Server>, stop: Arc<AtomicBool>) {
    let slots = Slots::new(MAX_CONNECTIONS);
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let Some(slot) = slots.try_take() else {
                    log::debug!("metrics: {MAX_CONNECTIONS} connections open; closed {peer}");
                    continue;
                };
                let server = server.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("ctl-http".into())
                        .spawn(move || {
                            let _slot = slot;
                            if let Err(e) = answer(stream, &server) {
                                log::debug!("metrics: {peer}: {e}");
                            }
                        });
                conns.retain(|h| !h.is_finished());
                match spawned {
                    Ok(h) => conns.push(h),
                    Err(e) => log::warn!("metrics: cannot spawn a connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                log::warn!("metrics: accept: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // Every connection ends by its deadline.
    for h in conns {
        let _ = h.join();
    }
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    Deadline,
    Closed,
}

/// Reads up to the blank line ending the head, within `MAX_HEAD_BYTES`
/// and before `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Deadline);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| HeadError::Closed)?;
        let want = chunk.len().min(MAX_HEAD_BYTES - head.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(HeadError::Deadline)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// Where the blank line ending the request head starts (the head is
/// `buf[..end]`): the first `\r\n\r\n` or bare `\n\n`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One HTTP/1.x exchange; the connection is closed afterwards.
fn answer(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    stream.set_nonblocking(false)?;
    let head = match read_head(&mut stream, deadline) {
        Ok(h) => h,
        Err(HeadError::TooLarge) => {
            return reply(
                &mut stream,
                deadline,
                "431 Request Header Fields Too Large",
                format!("request head longer than {MAX_HEAD_BYTES} bytes\n"),
                true,
            )
        }
        Err(HeadError::Deadline) => {
            return reply(
                &mut stream,
                deadline + Duration::from_secs(1),
                "408 Request Timeout",
                format!("request not complete within {} s\n", DEADLINE.as_secs()),
                true,
            )
        }
        Err(HeadError::Closed) => return Ok(()),
    };
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let with_body = method != "HEAD";
    if method != "GET" && method != "HEAD" {
        reply(
            &mut stream,
            deadline,
            "405 Method Not Allowed",
            "only GET\n".into(),
            true,
        )
    } else if path == "/metrics" {
        let body = render(&collect(server));
        reply_typed(
            &mut stream,
            deadline,
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            body,
            with_body,
        )
    } else if path == "/" {
        reply(
            &mut stream,
            deadline,
            "200 OK",
            "vportd: metrics at /metrics\n".into(),
            with_body,
        )
    } else {
        reply(
            &mut stream,
            deadline,
            "404 Not Found",
            "not found\n".into(),
            with_body,
        )
    }
}

fn reply(
    out: &mut TcpStream,
    deadline: Instant,
    status: &str,
    body: String,
    with_body: bool,
) -> std::io::Result<()> {
    reply_typed(
        out,
        deadline,
        status,
        "text/plain; charset=utf-8",
        body,
        with_body,
    )
}

fn reply_typed(
    out: &mut TcpStream,
    deadline: Instant,
    status: &str,
    ctype: &str,
    body: String,
    with_body: bool,
) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    out.set_write_timeout(Some(left.max(Duration::from_millis(100))))?;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if with_body {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::find_head_end;

    #[test]
    fn head_ends_at_the_first_blank_line() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"),
            Some(20)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\n"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
