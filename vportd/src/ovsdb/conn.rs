//! One JSON-RPC connection to an OVSDB server (RFC 7047 §4): a unix or
//! tcp stream carrying JSON objects back to back.

use crate::ctl::unixctl::{ObjectSplitter, SplitError};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Longest message read: a monitor reply carries the whole database.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Where the database is: `unix:PATH` or `tcp:IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(String),
    Tcp(String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("--db {s:?}: unix: needs a socket path"));
            }
            return Ok(Target::Unix(path.to_string()));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            let ok = addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(format!("--db {s:?}: expected tcp:IP:PORT"));
            }
            return Ok(Target::Tcp(addr.to_string()));
        }
        Err(format!(
            "--db {s:?}: expected unix:PATH or tcp:IP:PORT (ovsdb-server's --remote)"
        ))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{p}"),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// A connected session.
pub struct Conn {
    stream: Stream,
    split: ObjectSplitter,
    chunk: Vec<u8>,
}

/// What reading the connection gave.
pub enum Incoming {
    Message(Value),
    /// Nothing within the poll interval.
    Idle,
}

impl Conn {
    /// Connects; reads time out after `poll` so the caller can look at
    /// its stop flag and timers.
    pub fn connect(target: &Target, poll: Duration) -> std::io::Result<Conn> {
        let stream = match target {
            Target::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(poll))?;
                s.set_write_timeout(Some(Duration::from_secs(10)))?;
                Stream::Unix(s)
            }
            Target::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_read_timeout(Some(poll))?;
                s.set_write_timeout(Some(Duration::from_secs(10)))?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        Ok(Conn {
            stream,
            split: ObjectSplitter::new(MAX_MESSAGE_BYTES),
            chunk: vec![0u8; 64 << 10],
        })
    }

    pub fn send(&mut self, msg: &Value) -> std::io::Result<()> {
        let bytes = msg.to_string();
        match &mut self.stream {
            Stream::Unix(s) => s.write_all(bytes.as_bytes()),
            Stream::Tcp(s) => s.write_all(bytes.as_bytes()),
        }
    }

    /// The next message, or [`Incoming::Idle`] when none came in time.
    pub fn recv(&mut self) -> std::io::Result<Incoming> {
        loop {
            match self.split.next_object() {
                Ok(Some(object)) => {
                    return serde_json::from_slice(&object)
                        .map(Incoming::Message)
                        .map_err(|e| bad(format!("invalid JSON from the server: {e}")));
                }
                Ok(None) => {}
                Err(SplitError::TooLong) => {
                    return Err(bad(format!(
                        "message longer than {MAX_MESSAGE_BYTES} bytes"
                    )))
                }
                Err(SplitError::Garbage { byte, .. }) => {
                    return Err(bad(format!("byte {byte:#04x} outside any JSON object")))
                }
            }
            let read = match &mut self.stream {
                Stream::Unix(s) => s.read(&mut self.chunk),
                Stream::Tcp(s) => s.read(&mut self.chunk),
            };
            match read {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(n) => self.split.push(&self.chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Incoming::Idle)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("unix:/run/db.sock"),
            Ok(Target::Unix("/run/db.sock".into()))
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6640"),
            Ok(Target::Tcp("127.0.0.1:6640".into()))
        );
        assert!(Target::parse("tcp:127.0.0.1").is_err());
        assert!(Target::parse("unix:").is_err());
        assert!(Target::parse("/run/db.sock").is_err());
    }
}
