//! OVS's unixctl protocol on the control socket, so that `ovs-appctl -t
//! SOCKET COMMAND [ARG...]` drives vportd as it drives ovs-vswitchd.
//!
//! unixctl is JSON-RPC 1.0 over a stream: requests `{"id":N,"method":
//! "dpif-netdev/pmd-stats-show","params":["-pmd","1"]}` follow each other
//! with no delimiter, and each gets `{"error":null,"id":N,"result":TEXT}`
//! or `{"error":TEXT,"id":N,"result":null}`. A connection whose first byte
//! is `{` speaks it ([`is_unixctl`]); every other connection speaks
//! vportctl's line protocol. The commands are the control socket's own,
//! under OVS's names (see `commands::run`), with OVS's arguments that name
//! the only bridge or datapath accepted and dropped.

use super::{commands, Server};
use std::io::Write;

/// Longest request object read; unixctl requests are a command line.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The commands `list-commands` names (OVS spellings first).
const OVS_COMMANDS: &[(&str, &str)] = &[
    ("coverage/show", ""),
    ("dpctl/dump-flows", "[DP]"),
    ("dpctl/show", "[DP]"),
    ("dpif-netdev/pmd-perf-show", ""),
    ("dpif-netdev/pmd-rxq-rebalance", ""),
    ("dpif-netdev/pmd-rxq-show", ""),
    ("dpif-netdev/pmd-stats-clear", ""),
    ("dpif-netdev/pmd-stats-show", ""),
    ("exit", ""),
    ("fdb/flush", "[BRIDGE]"),
    ("fdb/show", "BRIDGE"),
    ("fdb/stats-show", "BRIDGE"),
    ("list-commands", ""),
    ("ofproto/trace", "[BRIDGE] FLOW"),
    ("revalidator/wait", ""),
    ("upcall/set-flow-limit", "N"),
    ("upcall/show", ""),
    ("version", ""),
    ("vlog/list", ""),
    ("vlog/set", "[MODULE:]LEVEL"),
];

/// Whether a connection that starts with `first` speaks unixctl.
pub fn is_unixctl(first: u8) -> bool {
    first == b'{'
}

/// Splits a byte stream into top-level JSON objects: strings (with their
/// escapes) are skipped, braces counted. Also the framing of OVSDB's
/// JSON-RPC ([`crate::ovsdb`]).
pub struct ObjectSplitter {
    /// Longest object accepted.
    max: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// What the stream held that is not a JSON object.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A byte outside any object that is neither `{` nor white space.
    Garbage { offset: usize, byte: u8 },
    /// An object longer than the splitter's limit.
    TooLong,
}

impl Default for ObjectSplitter {
    fn default() -> Self {
        Self::new(MAX_REQUEST_BYTES)
    }
}

impl ObjectSplitter {
    /// A splitter that refuses objects longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        ObjectSplitter {
            max,
            buf: Vec::new(),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete object, if the bytes so far hold one.
    pub fn next_object(&mut self) -> Result<Option<Vec<u8>>, SplitError> {
        while self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            self.scanned += 1;
            if self.depth == 0 {
                match b {
                    b'{' => {
                        // Drop what came before the object (white space).
                        self.buf.drain(..self.scanned - 1);
                        self.scanned = 1;
                        self.depth = 1;
                    }
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    byte => {
                        return Err(SplitError::Garbage {
                            offset: self.scanned - 1,
                            byte,
                        })
                    }
                }
                continue;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let object: Vec<u8> = self.buf.drain(..self.scanned).collect();
                        self.scanned = 0;
                        return Ok(Some(object));
                    }
                }
                _ => {}
            }
        }
        if self.depth > 0 && self.buf.len() > self.max {
            return Err(SplitError::TooLong);
        }
        if self.depth == 0 {
            self.buf.clear();
            self.scanned = 0;
        }
        Ok(None)
    }
}

/// The reply to one request object (already split off the stream).
pub fn answer(server: &Server, object: &[u8]) -> serde_json::Value {
    let request: serde_json::Value = match serde_json::from_slice(object) {
        Ok(v) => v,
        Err(e) => return reply(serde_json::Value::Null, Err(format!("invalid JSON: {e}"))),
    };
    let id = request
        .get("id")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let Some(method) = request.get("method").and_then(|m| m.as_str()) else {
        return reply(id, Err("request has no \"method\" string".into()));
    };
    let params: Result<Vec<String>, String> = match request.get("params") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("\"params\" must be strings, got {p}"))
            })
            .collect(),
        Some(other) => Err(format!("\"params\" must be an array, got {other}")),
    };
    let result = params.and_then(|params| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(server, method, &params)
        }))
        .unwrap_or_else(|_| {
            Err("internal error while running the command (see the daemon log)".into())
        })
    });
    reply(id, result)
}

fn reply(id: serde_json::Value, result: Result<String, String>) -> serde_json::Value {
    match result {
        Ok(text) => serde_json::json!({"error": null, "id": id, "result": text}),
        // ovs-appctl prints the error as it is, before its own line.
        Err(mut e) => {
            if !e.ends_with('\n') {
                e.push('\n');
            }
            serde_json::json!({"error": e, "id": id, "result": null})
        }
    }
}

/// Writes a reply object.
pub fn write_reply(out: &mut impl Write, v: &serde_json::Value) -> std::io::Result<()> {
    out.write_all(v.to_string().as_bytes())?;
    out.flush()
}

/// One unixctl command: the OVS-only ones here, the rest through the
/// control socket's command table.
fn run(server: &Server, method: &str, params: &[String]) -> Result<String, String> {
    match method {
        "list-commands" => Ok(list_commands()),
        "exit" => {
            log::info!("exit requested over unixctl");
            server
                .switch
                .stop
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(String::new())
        }
        "vlog/set" => vlog_set(params),
        "vlog/list" => Ok(format!(
            "vportd log level: {}\n",
            log::max_level().to_string().to_lowercase()
        )),
        "coverage/show" => coverage_show(server),
        "version" => Ok(format!(
            "vportd {} (Open vSwitch unixctl compatible)\n",
            env!("CARGO_PKG_VERSION")
        )),
        "ofproto/trace" => {
            // `ofproto/trace BRIDGE FLOW`: the one bridge is implied.
            let args = match params {
                [bridge, rest @ ..] if !rest.is_empty() && !looks_like_flow(bridge) => rest,
                all => all,
            };
            commands::run_words(server, method, args)
        }
        "dpctl/show" => dpctl_show(server, params),
        "fdb/show" | "fdb/flush" | "fdb/stats-show" | "dpctl/dump-flows" | "dpif/show"
        | "dpif/dump-flows" => {
            // A bridge or datapath name (`br0`, `netdev@ovs-netdev`).
            let args = match params {
                [name] if !looks_like_flow(name) && !name.starts_with('-') => &[],
                all => all,
            };
            commands::run_words(server, method, args)
        }
        m if OVS_COMMANDS.iter().any(|(c, _)| *c == m) || commands::is_command(m) => {
            commands::run_words(server, m, params)
        }
        m => Err(format!(
            "\"{m}\" is not a valid command (use \"list-commands\" to see a list of valid commands)"
        )),
    }
}

/// `dpctl/show [-s] [DP]` in OVS's layout (lib/dpctl.c `show_dpif`): the
/// datapath's lookups and flows, then each port with its datapath number
/// and type, and with `-s` its counters.
fn dpctl_show(server: &Server, params: &[String]) -> Result<String, String> {
    let with_stats = params.iter().any(|p| p == "-s" || p == "--statistics");
    let d = commands::show_data(server)?;
    let counter = |counters: &[(String, u64)], name: &str| {
        counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    };
    let c = commands::coverage_counters(server)?;
    let hit = ["simple_hits", "emc_hits", "smc_hits", "megaflow_hits"]
        .iter()
        .map(|n| counter(&c, &format!("pmd_{n}")))
        .sum::<u64>();
    let mut text = String::from("netdev@ovs-netdev:\n");
    text.push_str(&format!(
        "  lookups: hit:{hit} missed:{} lost:{}\n",
        counter(&c, "pmd_upcalls"),
        counter(&c, "pmd_lost_upcalls")
    ));
    text.push_str(&format!("  flows: {}\n", d.megaflows));
    for p in &d.ports {
        let kind = if p.vhost.is_some() {
            "dpdkvhostuserclient".to_string()
        } else {
            format!(
                "dpdk: configured_rx_queues={}, configured_tx_queues={}, devargs={}",
                p.n_rxq, p.n_txq, p.device
            )
        };
        text.push_str(&format!("  port {}: {} ({kind})\n", p.ofport, p.name));
        if let (true, Some(st)) = (with_stats, &p.stats) {
            text.push_str(&format!(
                "    RX packets:{} errors:{} dropped:{} overruns:0 frame:0\n",
                st.rx_packets,
                st.rx_errors,
                st.rx_missed + st.rx_nombuf + st.rx_oversized
            ));
            text.push_str(&format!(
                "    TX packets:{} errors:{} dropped:{} aborted:0 carrier:0\n",
                st.tx_packets,
                st.tx_errors,
                st.tx_full + st.tx_link_down
            ));
            text.push_str("    collisions:0\n");
            text.push_str(&format!(
                "    RX bytes:{}  TX bytes:{}\n",
                st.rx_bytes, st.tx_bytes
            ));
        }
    }
    Ok(text)
}

fn looks_like_flow(s: &str) -> bool {
    s.contains('=') || s.contains(',') || s.contains('(')
}

fn list_commands() -> String {
    let mut text = String::from("The available commands are:\n");
    for (name, usage) in OVS_COMMANDS {
        if usage.is_empty() {
            text.push_str(&format!("  {name}\n"));
        } else {
            text.push_str(&format!("  {name:<30}{usage}\n"));
        }
    }
    text
}

/// `vlog/set [MODULE:][DESTINATION:]LEVEL`, OVS's levels mapped onto the
/// `log` crate's (vportd has one log for every module).
fn vlog_set(params: &[String]) -> Result<String, String> {
    if params.is_empty() {
        return Err(
            "vlog/set: usage: vlog/set [MODULE:]LEVEL (off, emer, err, warn, info, dbg)".into(),
        );
    }
    for p in params {
        let level = p.rsplit(':').next().unwrap_or(p);
        let filter = match level.to_ascii_lowercase().as_str() {
            "off" => log::LevelFilter::Off,
            "emer" | "err" => log::LevelFilter::Error,
            "warn" => log::LevelFilter::Warn,
            "info" => log::LevelFilter::Info,
            "dbg" | "debug" => log::LevelFilter::Debug,
            "any" | "console" | "syslog" | "file" => continue,
            other => {
                return Err(format!(
                    "vlog/set: unknown level {other:?} (off, emer, err, warn, info, dbg)"
                ))
            }
        };
        log::set_max_level(filter);
    }
    Ok(String::new())
}

/// `coverage/show`: vportd's event counters in OVS's layout, from the
/// PMD and upcall counters the other commands show.
fn coverage_show(server: &Server) -> Result<String, String> {
    let counters = commands::coverage_counters(server)?;
    let uptime = server.switch.started.elapsed().as_secs().max(1);
    // OVS shows rates over 5 s, 1 min and 1 h; vportd keeps totals only,
    // so the three columns are the average since start.
    let mut text = format!("Event coverage, avg rate since start ({uptime} s):\n");
    let mut zero = 0;
    for (name, total) in counters {
        if total == 0 {
            zero += 1;
            continue;
        }
        let rate = total as f64 / uptime as f64;
        text.push_str(&format!(
            "{name:<25} {rate:>8.1}/sec {rate:>8.3}/sec {rate:>10.4}/sec   total: {total}\n"
        ));
    }
    text.push_str(&format!("{zero} events never hit\n"));
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> Result<Vec<String>, SplitError> {
        let mut s = ObjectSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c);
            while let Some(o) = s.next_object()? {
                out.push(String::from_utf8(o).unwrap());
            }
        }
        Ok(out)
    }

    #[test]
    fn splits_back_to_back_objects_across_reads() {
        let got = split_all(&[
            br#"{"id":0,"method":"a","params":["}"]}{"id":1,"#,
            br#""method":"b\"}","params":[]} "#,
            b"\n{\"id\":2}",
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                r#"{"id":0,"method":"a","params":["}"]}"#,
                r#"{"id":1,"method":"b\"}","params":[]}"#,
                r#"{"id":2}"#,
            ]
        );
    }

    #[test]
    fn garbage_between_objects_is_an_error() {
        let e = split_all(&[b"{\"id\":0} x"]).unwrap_err();
        assert_eq!(
            e,
            SplitError::Garbage {
                offset: 1,
                byte: b'x'
            }
        );
    }

    #[test]
    fn an_endless_object_is_refused() {
        let mut s = ObjectSplitter::default();
        s.push(b"{\"a\":\"");
        s.push(&vec![b'x'; MAX_REQUEST_BYTES]);
        assert_eq!(s.next_object(), Err(SplitError::TooLong));
    }

    #[test]
    fn vlog_levels() {
        assert!(vlog_set(&["ANY:console:dbg".into()]).is_ok());
        assert!(vlog_set(&["info".into()]).is_ok());
        assert!(vlog_set(&["loud".into()])
            .unwrap_err()
            .contains("unknown level"));
        assert!(vlog_set(&[]).is_err());
    }
}
