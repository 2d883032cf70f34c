//! `fdb-show`, `fdb-flush`, `fdb-stats-show` (OVS `fdb/show`, `fdb/flush`,
//! `fdb/stats-show`) and the MAC table settings of `set`.

use super::commands::{out, CmdResult};
use super::Server;
use serde::Serialize;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// One entry of `fdb-show --json`.
#[derive(Debug, Serialize)]
struct FdbEntry {
    port: u32,
    port_name: Option<String>,
    vlan: u16,
    mac: String,
    age_s: u64,
}

fn mac_str(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// `fdb-show`: OVS's ` port  VLAN  MAC                Age` layout.
pub fn show(s: &Server) -> CmdResult {
    let bridge = &s.switch.bridge;
    let names = super::commands::port_names(s);
    let now = Instant::now();
    let entries: Vec<FdbEntry> = bridge
        .mac_table()
        .lock()
        .entries()
        .into_iter()
        .map(|e| FdbEntry {
            port: e.port,
            port_name: names.get(&e.port).cloned(),
            vlan: e.vlan,
            mac: mac_str(&e.mac),
            age_s: now.saturating_duration_since(e.learned).as_secs(),
        })
        .collect();
    let mut t = String::from(" port  VLAN  MAC                Age\n");
    for e in &entries {
        let _ = writeln!(t, "{:>5}  {:>4}  {}  {:>3}", e.port, e.vlan, e.mac, e.age_s);
    }
    out(t, &entries)
}

#[derive(Debug, Serialize)]
struct Flushed {
    flushed: usize,
}

/// `fdb-flush`: forget every learned MAC.
pub fn flush(s: &Server) -> CmdResult {
    let bridge = &s.switch.bridge;
    // The megaflows that forwarded to a flushed MAC are re-checked.
    let n = bridge.mac_table().lock().flush(None).len();
    out(
        format!("table successfully flushed ({n} entries)\n"),
        &Flushed { flushed: n },
    )
}

#[derive(Debug, Serialize)]
struct FdbStats {
    current: usize,
    max: usize,
    aging_s: u64,
    learned: u64,
    expired: u64,
    evicted: u64,
    moved: u64,
}

/// `fdb-stats-show`.
pub fn stats(s: &Server) -> CmdResult {
    let t = s.switch.bridge.mac_table().lock();
    let st = t.stats();
    let d = FdbStats {
        current: t.len(),
        max: t.max_entries(),
        aging_s: t.aging().as_secs(),
        learned: st.learned,
        expired: st.expired,
        evicted: st.evicted,
        moved: st.moved,
    };
    let text = format!(
        "Statistics for bridge:\n  Current/maximum MAC entries in the table: {}/{}\n  \
         MAC aging time (s): {}\n  Total number of learned MAC entries     : {}\n  \
         Total number of expired MAC entries     : {}\n  \
         Total number of evicted MAC entries     : {}\n  \
         Total number of port moved MAC entries  : {}\n",
        d.current, d.max, d.aging_s, d.learned, d.expired, d.evicted, d.moved
    );
    out(text, &d)
}

/// `set mac-aging-time N` / `set mac-table-size N`: the previous value,
/// or `None` when `key` is not a MAC table setting.
pub fn set(s: &Server, key: &str, n: u64) -> Option<Result<Option<u64>, String>> {
    let bridge = &s.switch.bridge;
    let mut t = bridge.mac_table().lock();
    let r = match key {
        "mac-aging-time" => {
            if n == 0 {
                return Some(Err("set mac-aging-time: must be at least 1 s".into()));
            }
            let prev = t.aging().as_secs();
            t.set_aging(Duration::from_secs(n));
            Ok(Some(prev))
        }
        "mac-table-size" => {
            let Ok(n) = usize::try_from(n) else {
                return Some(Err(format!("set mac-table-size: {n} is too large")));
            };
            if n == 0 {
                return Some(Err("set mac-table-size: must be at least 1".into()));
            }
            let prev = t.max_entries() as u64;
            t.set_max_entries(n);
            Ok(Some(prev))
        }
        _ => return None,
    };
    drop(t);
    bridge.mac_table_changed();
    Some(r)
}
