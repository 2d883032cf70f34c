//! Controller targets in OVS's syntax: active `tcp:IP[:PORT]`,
//! `unix:PATH`; passive `ptcp:PORT[:IP]` (IP defaults to 127.0.0.1),
//! `punix:PATH`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The OpenFlow port IANA assigned.
pub const DEFAULT_PORT: u16 = 6653;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
    Ptcp(SocketAddr),
    Punix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = |a: &SocketAddr| match a.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        match self {
            Target::Tcp(a) => write!(f, "tcp:{}:{}", ip(a), a.port()),
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Ptcp(a) => write!(f, "ptcp:{}:{}", a.port(), ip(a)),
            Target::Punix(p) => write!(f, "punix:{}", p.display()),
        }
    }
}

fn parse_ip(s: &str, what: &str) -> Result<IpAddr, String> {
    let t = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    t.parse::<IpAddr>()
        .map_err(|_| format!("{what}: `{s}` is not an IP address"))
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("{what}: `{s}` is not a port number (0 to 65535)"))
}

/// Splits `IP[:PORT]` where IP may be `[v6]`.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &s[..end + 2];
            let tail = &s[end + 2..];
            return (host, tail.strip_prefix(':'));
        }
    }
    match s.split_once(':') {
        Some((h, p)) if !p.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

/// Parses one `--controller` value.
pub fn parse(s: &str) -> Result<Target, String> {
    let what = format!("--controller {s}");
    let (kind, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("{what}: expected tcp:, unix:, ptcp: or punix:"))?;
    match kind {
        "tcp" => {
            let (host, port) = split_host_port(rest);
            let ip = parse_ip(host, &what)?;
            let port = match port {
                Some(p) => parse_port(p, &what)?,
                None => DEFAULT_PORT,
            };
            Ok(Target::Tcp(SocketAddr::new(ip, port)))
        }
        "ptcp" => {
            let (port, ip) = match rest.split_once(':') {
                Some((p, ip)) => (p, Some(ip)),
                None => (rest, None),
            };
            let port = if port.is_empty() {
                DEFAULT_PORT
            } else {
                parse_port(port, &what)?
            };
            let ip = match ip {
                Some(ip) => parse_ip(ip, &what)?,
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            Ok(Target::Ptcp(SocketAddr::new(ip, port)))
        }
        "unix" | "punix" if rest.is_empty() => Err(format!("{what}: missing PATH")),
        "unix" => Ok(Target::Unix(PathBuf::from(rest))),
        "punix" => Ok(Target::Punix(PathBuf::from(rest))),
        k => Err(format!(
            "{what}: unknown kind `{k}` (tcp:IP[:PORT], unix:PATH, ptcp:PORT[:IP], punix:PATH)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse("ptcp:6653").unwrap(),
            Target::Ptcp("127.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(
            parse("ptcp:7000:0.0.0.0").unwrap(),
            Target::Ptcp("0.0.0.0:7000".parse().unwrap())
        );
        assert_eq!(
            parse("tcp:10.0.0.1").unwrap(),
            Target::Tcp("10.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(
            parse("tcp:[::1]:7").unwrap(),
            Target::Tcp("[::1]:7".parse().unwrap())
        );
        assert_eq!(parse("punix:/x").unwrap(), Target::Punix("/x".into()));
        assert!(parse("tcp:nohost").is_err());
        assert!(parse("ptcp:99999").is_err());
        assert!(parse("udp:1").is_err());
        assert!(parse("unix:").is_err());
        assert_eq!(
            parse("ptcp:6653").unwrap().to_string(),
            "ptcp:6653:127.0.0.1"
        );
    }
}
