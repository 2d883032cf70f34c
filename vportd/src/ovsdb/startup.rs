//! What ovs-vswitchd reads from `Open_vSwitch.other_config` before DPDK
//! starts: with `--db` and no `--eal`, vportd builds its EAL arguments,
//! PMD cores and handler count from the same keys (OVS `lib/dpdk.c`,
//! `dpif-netdev`'s `pmd-cpu-mask`), read once at start-up.

use super::conn::{Conn, Incoming, Target};
use super::datum;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long start-up waits for the database.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings taken from the database at start.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Startup {
    /// The EAL arguments (when `--eal` was not given).
    pub eal: String,
    /// `pmd-cpu-mask` as a core list.
    pub pmd_cores: Option<String>,
    /// `n-handler-threads`.
    pub handler_threads: Option<usize>,
}

/// Reads `Open_vSwitch.other_config` once.
pub fn read(target: &Target) -> Result<BTreeMap<String, String>, String> {
    let mut conn = Conn::connect(target, Duration::from_millis(200))
        .map_err(|e| format!("--db {target}: {e}"))?;
    conn.send(&json!({
        "id": "startup",
        "method": "transact",
        "params": ["Open_vSwitch",
                   {"op": "select", "table": "Open_vSwitch", "where": [],
                    "columns": ["other_config"]}],
    }))
    .map_err(|e| format!("--db {target}: {e}"))?;
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        match conn.recv().map_err(|e| format!("--db {target}: {e}"))? {
            Incoming::Idle => continue,
            Incoming::Message(m) if m.get("id") == Some(&json!("startup")) => {
                if let Some(e) = m.get("error").filter(|e| !e.is_null()) {
                    return Err(format!("--db {target}: {e}"));
                }
                let rows = &m["result"][0]["rows"];
                let oc = rows.get(0).and_then(|r| r.get("other_config"));
                return Ok(datum::string_map(oc));
            }
            Incoming::Message(_) => {}
        }
    }
    Err(format!(
        "--db {target}: no answer within {} s",
        STARTUP_TIMEOUT.as_secs()
    ))
}

/// The start-up settings `other_config` gives. `hugepages` says whether
/// the machine has free hugepages (without them, and without a memory
/// setting, the EAL gets `--no-huge -m 1024`, as vportd's README runs).
pub fn from_other_config(
    oc: &BTreeMap<String, String>,
    hugepages: bool,
) -> Result<Startup, String> {
    let mut eal: Vec<String> = Vec::new();
    match oc.get("dpdk-lcore-mask") {
        Some(mask) => eal.extend(["-c".to_string(), mask.clone()]),
        None => eal.extend(["-l".to_string(), "0".to_string()]),
    }
    let mut memory = false;
    if let Some(m) = oc.get("dpdk-socket-mem") {
        eal.extend(["--socket-mem".to_string(), m.clone()]);
        memory = true;
    }
    if let Some(m) = oc.get("dpdk-alloc-mem") {
        eal.extend(["-m".to_string(), m.clone()]);
        memory = true;
    }
    if let Some(d) = oc.get("dpdk-hugepage-dir") {
        eal.extend(["--huge-dir".to_string(), d.clone()]);
    }
    let extra: Vec<String> = match oc.get("dpdk-extra") {
        Some(x) => shlex::split(x)
            .ok_or_else(|| format!("other_config:dpdk-extra {x:?}: unbalanced quotes"))?,
        None => Vec::new(),
    };
    let mentions = |flag: &str| {
        extra
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !memory
        && !mentions("-m")
        && !mentions("--socket-mem")
        && !mentions("--no-huge")
        && !hugepages
    {
        eal.extend([
            "--no-huge".to_string(),
            "-m".to_string(),
            "1024".to_string(),
        ]);
    }
    if !mentions("--file-prefix") && !mentions("--in-memory") {
        eal.push("--file-prefix=vportd".to_string());
    }
    eal.extend(extra);
    let pmd_cores = oc
        .get("pmd-cpu-mask")
        .map(|m| mask_to_list(m).map_err(|e| format!("other_config:pmd-cpu-mask {m:?}: {e}")))
        .transpose()?;
    let handler_threads = oc
        .get("n-handler-threads")
        .map(|n| {
            n.parse::<usize>()
                .map_err(|_| format!("other_config:n-handler-threads {n:?} is not a number"))
        })
        .transpose()?;
    Ok(Startup {
        eal: eal.join(" "),
        pmd_cores,
        handler_threads,
    })
}

/// A hex CPU mask (`0x6`, `6`) as a core list (`1,2`).
fn mask_to_list(mask: &str) -> Result<String, String> {
    let hex = mask.trim_start_matches("0x").trim_start_matches("0X");
    let bits = u128::from_str_radix(hex, 16).map_err(|_| "not a hex mask".to_string())?;
    if bits == 0 {
        return Err("no core in the mask".into());
    }
    let cores: Vec<String> = (0..128)
        .filter(|i| bits & (1u128 << i) != 0)
        .map(|i| i.to_string())
        .collect();
    Ok(cores.join(","))
}

/// Whether the kernel has free hugepages to give the EAL.
pub fn hugepages_free() -> bool {
    std::fs::read_to_string("/proc/meminfo").is_ok_and(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("HugePages_Free:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oc(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn other_config_becomes_eal_arguments_as_ovs_builds_them() {
        let s = from_other_config(
            &oc(&[
                ("dpdk-lcore-mask", "0x1"),
                ("dpdk-socket-mem", "1024"),
                ("dpdk-extra", "--vdev=net_null0 --no-pci"),
                ("pmd-cpu-mask", "0x6"),
                ("n-handler-threads", "2"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(
            s.eal,
            "-c 0x1 --socket-mem 1024 --file-prefix=vportd --vdev=net_null0 --no-pci"
        );
        assert_eq!(s.pmd_cores.as_deref(), Some("1,2"));
        assert_eq!(s.handler_threads, Some(2));
        // No hugepages and no memory setting: the no-huge default.
        let s = from_other_config(&oc(&[]), false).unwrap();
        assert_eq!(s.eal, "-l 0 --no-huge -m 1024 --file-prefix=vportd");
        let s = from_other_config(
            &oc(&[("dpdk-extra", "--no-huge -m 512 --file-prefix=x")]),
            false,
        )
        .unwrap();
        assert_eq!(s.eal, "-l 0 --no-huge -m 512 --file-prefix=x");
        assert!(from_other_config(&oc(&[("pmd-cpu-mask", "zz")]), true).is_err());
        assert!(from_other_config(&oc(&[("dpdk-extra", "'open")]), true).is_err());
    }
}
