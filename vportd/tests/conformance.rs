//! The OVS conformance corpus (tests/conformance/public: flow tables, input
//! pcaps and the packets real OVS 3.1 sent) run through the vportd binary,
//! exactly as `shared/conformance/check.sh --unordered` runs it: each
//! port's output must hold the same packets as OVS's, byte for byte (order
//! between different flows in one burst may differ, as in OVS-DPDK).

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/public")
}

/// Runs one case; returns a description of the first mismatch.
fn run_case(case: &Path) -> Result<(), String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let n: u32 = std::fs::read_to_string(case.join("ports"))
        .map_err(|e| format!("{name}: ports: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{name}: ports: {e}"))?;
    let dir = TempDir::new("conf");
    let prefix = Prefix::new("cf");
    let mut vdevs = Vec::new();
    let mut args = Vec::new();
    for q in 1..=n {
        let mut v = format!("net_pcap{}", q - 1);
        let inp = case.join(format!("in_{q}.pcap"));
        if inp.exists() {
            v.push_str(&format!(",rx_pcap={}", inp.display()));
        }
        v.push_str(&format!(
            ",tx_pcap={}",
            dir.path(&format!("out_{q}.pcap")).display()
        ));
        vdevs.push(v);
        args.push("--port".to_string());
        args.push(format!("p{q}=net_pcap{}", q - 1));
    }
    let mut full = vec!["--eal".to_string(), eal(&prefix.0, &vdevs)];
    full.extend(args);
    full.extend([
        "--flows".to_string(),
        case.join("flows.txt").display().to_string(),
        "--exit-when-idle".to_string(),
        "300".to_string(),
    ]);
    if case.join("groups.txt").exists() {
        full.push("--groups".to_string());
        full.push(case.join("groups.txt").display().to_string());
    }
    let out = run_vportd(&full, 120);
    if !out.status.success() {
        return Err(format!(
            "{name}: vportd exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    for q in 1..=n {
        let mut want = read_pcap(&case.join(format!("expected/out_{q}.pcap")));
        let mut got = read_pcap(&dir.path(&format!("out_{q}.pcap")));
        if want == got {
            continue;
        }
        want.sort();
        got.sort();
        if want != got {
            let extra: Vec<String> = got
                .iter()
                .filter(|g| !want.contains(g))
                .take(1)
                .map(|v| hex(v))
                .collect();
            let missing: Vec<String> = want
                .iter()
                .filter(|w| !got.contains(w))
                .take(1)
                .map(|v| hex(v))
                .collect();
            return Err(format!(
                "{name}: port {q}: expected {} packets, got {}; first unexpected {:?}, first missing {:?}",
                want.len(),
                got.len(),
                extra,
                missing
            ));
        }
    }
    Ok(())
}

use testkit::hex::encode as hex;

#[test]
fn ovs_conformance_public_cases() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/conformance/public")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("flows.txt").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 100, "the corpus is there");
    let mut failures = Vec::new();
    for c in &cases {
        if let Err(e) = run_case(c) {
            eprintln!("FAIL {e}");
            failures.push(e);
        }
    }
    eprintln!(
        "conformance: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
