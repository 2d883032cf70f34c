//! The control protocol, shared by the daemon and `vportctl` (the client
//! includes this file with `#[path]`): the reply envelope, the default
//! socket path and the encoding of flow files.
//!
//! A request is one line: the command and its arguments, shell-quoted
//! (POSIX `sh` rules, as `shlex` implements them). A reply is one line of
//! JSON, [`Reply`]. See docs/ctl-json.md.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Version of the reply envelope and of the `data` schemas.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads (a whole flow file may be in one).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// The reply envelope: `{"version":1,"ok":true,"text":"...","data":{...}}`
/// or `{"version":1,"ok":false,"error":"..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub version: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[allow(dead_code)]
impl Reply {
    /// A successful reply.
    pub fn ok(text: String, data: serde_json::Value) -> Reply {
        Reply {
            version: PROTOCOL_VERSION,
            ok: true,
            text: Some(text),
            data: Some(data),
            error: None,
        }
    }

    /// A failed request.
    pub fn err(error: impl Into<String>) -> Reply {
        Reply {
            version: PROTOCOL_VERSION,
            ok: false,
            text: None,
            data: None,
            error: Some(error.into()),
        }
    }

    /// The reply as one line (no trailing newline): JSON escapes every
    /// newline inside strings.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"version":{PROTOCOL_VERSION},"ok":false,"error":"reply not serialisable: {e}"}}"#
            )
        })
    }
}

/// The default control socket: `/run/vportd/vportd.ctl` for root,
/// `$XDG_RUNTIME_DIR/vportd/vportd.ctl` otherwise, and
/// `/tmp/vportd-UID/vportd.ctl` when `XDG_RUNTIME_DIR` is not set.
pub fn default_ctl_path() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/vportd/vportd.ctl");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("vportd").join("vportd.ctl"),
        _ => PathBuf::from(format!("/tmp/vportd-{uid}/vportd.ctl")),
    }
}

/// The marker argument with which a client sends a flow file's contents:
/// `add-flows --inline NAME LINE...` (one argument per line of the file,
/// blank lines included so that error line numbers are the file's).
pub const INLINE: &str = "--inline";
