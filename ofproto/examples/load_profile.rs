//! Where the time and memory of loading a big flow table go:
//! `cargo run --release -p ofproto --example load_profile -- FLOWS_FILE`.
//! Prints, per stage (read, parse, classifier build), the wall time and
//! the growth of the resident set.

use ofproto::table::Tables;
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: load_profile FLOWS_FILE");
    let mut last = (Instant::now(), rss_kib());
    let mut stage = |name: &str, n: usize| {
        let (t, r) = (Instant::now(), rss_kib());
        let grown = r.saturating_sub(last.1);
        println!(
            "{name:<12} {:>8.2} s  +{:>8} KiB RSS  ({:.0} bytes per rule)",
            (t - last.0).as_secs_f64(),
            grown,
            grown as f64 * 1024.0 / n.max(1) as f64
        );
        last = (t, r);
    };
    let text = std::fs::read_to_string(&path).expect("read flows");
    let lines = text.lines().count();
    stage("read", lines);
    let rules = ofproto::parse_flows(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    let n = rules.len();
    stage("parse", n);
    drop(text);
    let tables = Tables::from_rules(rules);
    stage("classifier", n);
    println!("{n} rules, {} KiB RSS in all", rss_kib());
    drop(tables);
}
