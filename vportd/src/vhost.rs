//! vhost-user ports: a virtual machine's virtio-net device, reached over a
//! unix socket (QEMU's vhost-user protocol) and the guest's shared memory.
//!
//! `--port NAME=vhost-user-client:PATH[,queues=N]` (OVS
//! `dpdkvhostuserclient`): the VM (QEMU) owns the socket, vportd connects
//! to it and reconnects whenever the VM goes away and comes back.
//! `--port NAME=vhost-user:PATH[,queues=N]` (OVS `dpdkvhostuser`): vportd
//! creates and listens on the socket (mode `--vhost-sock-mode`, 0600 by
//! default) and the VM connects.
//!
//! Either way vportd makes the DPDK `net_vhost` device itself
//! (`net_vhost_NAME,iface=PATH,queues=N,client=0|1`); the vhost PMD copies
//! packets between vportd's mbufs and the guest's rings, so vportd's own
//! pool may live anywhere. Its link is up while a guest's driver is up.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The most queue pairs a vhost-user port takes (`queues=`).
pub const MAX_QUEUES: u16 = 32;
/// The longest socket path (`sun_path` holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The socket mode of a `vhost-user` (server) port without `--vhost-sock-mode`.
pub const DEFAULT_SOCK_MODE: u32 = 0o600;

/// Who owns the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhostMode {
    /// vportd connects (and reconnects); the VM listens.
    Client,
    /// vportd listens; the VM connects.
    Server,
}

impl VhostMode {
    /// As in the port spec: `vhost-user-client` or `vhost-user`.
    pub fn name(self) -> &'static str {
        match self {
            VhostMode::Client => "vhost-user-client",
            VhostMode::Server => "vhost-user",
        }
    }
}

/// A vhost-user port's DEVICE, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostSpec {
    pub mode: VhostMode,
    pub socket: PathBuf,
    /// Queue pairs offered to the guest (`queues=`, default 1).
    pub queues: u16,
}

impl VhostSpec {
    /// Parses a port's DEVICE when it names a vhost-user socket
    /// (`vhost-user-client:PATH[,queues=N]`, `vhost-user:PATH[,queues=N]`);
    /// `None` for any other device.
    pub fn parse(device: &str) -> Option<Result<VhostSpec, String>> {
        let (mode, rest) = if let Some(r) = device.strip_prefix("vhost-user-client:") {
            (VhostMode::Client, r)
        } else if let Some(r) = device.strip_prefix("vhost-user:") {
            (VhostMode::Server, r)
        } else if device == "vhost-user" || device == "vhost-user-client" {
            return Some(Err(format!("{device}: missing :SOCKET_PATH")));
        } else {
            return None;
        };
        Some(Self::parse_rest(mode, rest))
    }

    fn parse_rest(mode: VhostMode, rest: &str) -> Result<VhostSpec, String> {
        let m = mode.name();
        let mut parts = rest.split(',');
        let path = parts.next().unwrap_or("");
        if path.is_empty() {
            return Err(format!("{m}: missing SOCKET_PATH after ':'"));
        }
        if path.len() > MAX_SOCKET_PATH {
            return Err(format!(
                "{m}: socket path is {} bytes, a unix socket path holds at most {MAX_SOCKET_PATH}",
                path.len()
            ));
        }
        if path
            .bytes()
            .any(|b| b == 0 || b == b'=' || b.is_ascii_whitespace())
        {
            return Err(format!(
                "{m}: socket path {path:?} contains '=', a space or a NUL byte"
            ));
        }
        let mut spec = VhostSpec {
            mode,
            socket: PathBuf::from(path),
            queues: 1,
        };
        for opt in parts {
            match opt.split_once('=') {
                Some(("queues", v)) => {
                    spec.queues = match v.parse::<u16>() {
                        Ok(n) if (1..=MAX_QUEUES).contains(&n) => n,
                        _ => {
                            return Err(format!(
                                "{m}: queues={v:?} is not a number in 1..{MAX_QUEUES}"
                            ))
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "{m}: unknown option {opt:?} (queues=N; a socket path cannot contain ',')"
                    ))
                }
            }
        }
        Ok(spec)
    }

    /// The ethdev name of port `port`.
    pub fn ethdev_name(port: &str) -> String {
        format!("net_vhost_{port}")
    }

    /// The `net_vhost` devargs for port `port`.
    pub fn devargs(&self, port: &str) -> String {
        format!(
            "{},iface={},queues={},client={}",
            Self::ethdev_name(port),
            self.socket.display(),
            self.queues,
            u8::from(self.mode == VhostMode::Client)
        )
    }

    /// Before the device is made: a server's socket path must be free. A
    /// socket left behind by an earlier run (nobody listens on it) is
    /// removed; anything else there is an error.
    pub fn prepare(&self) -> Result<(), String> {
        if self.mode == VhostMode::Client {
            return Ok(());
        }
        let path = &self.socket;
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(());
        };
        if !meta.file_type().is_socket() {
            return Err(format!(
                "vhost-user: {} exists and is not a socket",
                path.display()
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "vhost-user: {} is in use (something listens on it)",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("vhost-user: removing stale socket {}: {e}", path.display()))?;
        log::info!("vhost-user: removed stale socket {}", path.display());
        Ok(())
    }

    /// After the device has started: a server's socket gets `mode`.
    pub fn set_socket_mode(&self, mode: u32) -> Result<(), String> {
        if self.mode == VhostMode::Client {
            return Ok(());
        }
        set_mode(&self.socket, mode)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("vhost-user: chmod {:o} {}: {e}", mode, path.display()))
}

/// Parses `--vhost-sock-mode` (octal, e.g. 0660).
pub fn parse_sock_mode(arg: &str) -> Result<u32, String> {
    let digits = arg.strip_prefix("0o").unwrap_or(arg);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "--vhost-sock-mode {arg:?}: an octal mode 0..0777 (e.g. 0660)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(VhostSpec::parse("net_pcap0"), None);
        let c = VhostSpec::parse("vhost-user-client:/tmp/vm1.sock,queues=2")
            .unwrap()
            .unwrap();
        assert_eq!(c.mode, VhostMode::Client);
        assert_eq!(c.socket, PathBuf::from("/tmp/vm1.sock"));
        assert_eq!(c.queues, 2);
        assert_eq!(
            c.devargs("vm1"),
            "net_vhost_vm1,iface=/tmp/vm1.sock,queues=2,client=1"
        );
        let s = VhostSpec::parse("vhost-user:rel.sock").unwrap().unwrap();
        assert_eq!((s.mode, s.queues), (VhostMode::Server, 1));
        assert_eq!(
            s.devargs("v"),
            "net_vhost_v,iface=rel.sock,queues=1,client=0"
        );
        for bad in [
            "vhost-user",
            "vhost-user:",
            "vhost-user-client:/x,queues=0",
            "vhost-user-client:/x,queues=33",
            "vhost-user-client:/x,queues=two",
            "vhost-user:/x,speed=1",
            "vhost-user:/a b",
        ] {
            assert!(VhostSpec::parse(bad).unwrap().is_err(), "{bad}");
        }
        let long = format!("vhost-user:/{}", "x".repeat(200));
        let e = VhostSpec::parse(&long).unwrap().unwrap_err();
        assert!(e.contains("at most 107"), "{e}");
    }

    #[test]
    fn sock_modes() {
        assert_eq!(parse_sock_mode("0660"), Ok(0o660));
        assert_eq!(parse_sock_mode("600"), Ok(0o600));
        assert!(parse_sock_mode("0999").is_err());
        assert!(parse_sock_mode("1777").is_err());
        assert!(parse_sock_mode("rw").is_err());
    }
}
