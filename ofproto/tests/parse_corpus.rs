//! The flow parser against OVS itself: every conformance case's flows.txt
//! must parse, and `format_rule` of the parsed rules must reproduce
//! expected/flows_dump.txt (what `ovs-ofctl -O OpenFlow13 --no-stats
//! dump-flows` printed after `add-flows`), line for line.  The peer
//! benchmark tables must parse too.

use ofproto::parse::{format_rule, parse_flows};
use ofproto::Rule;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const CASES: &str = "/work/shared/conformance/cases/public";
const PEER: &str = "/work/shared/peer/flows";

/// `\bNAME=(\d+)` as the oracle's `sort_flow_dump` finds it.
fn find_num(line: &str, name: &str) -> Option<u64> {
    // Only the match part: `ct(table=1)` in the actions is no table.
    let line = line.split(" actions=").next().unwrap_or(line);
    let pat = format!("{name}=");
    let mut from = 0;
    while let Some(i) = line[from..].find(&pat) {
        let at = from + i;
        let boundary = at == 0
            || !line[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let digits: String = line[at + pat.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        if boundary && !digits.is_empty() {
            return digits.parse().ok();
        }
        from = at + pat.len();
    }
    None
}

/// The oracle's order: table, then descending priority, then the text.
fn sort_dump(lines: &mut [String]) {
    lines.sort_by_key(|l| {
        (
            find_num(l, "table").unwrap_or(0),
            std::cmp::Reverse(find_num(l, "priority").unwrap_or(32768)),
            l.clone(),
        )
    });
}

/// What the switch holds after `add-flows`: a later rule with the same
/// table, priority and match replaces an earlier one.
fn installed(rules: Vec<Rule>) -> Vec<Rule> {
    let mut idx: HashMap<(u8, u16, ofproto::Match), usize> = HashMap::new();
    let mut out: Vec<Option<Rule>> = Vec::new();
    for r in rules {
        let k = (r.table, r.priority, r.matches);
        if let Some(i) = idx.get(&k) {
            out[*i] = None;
        }
        idx.insert(k, out.len());
        out.push(Some(r));
    }
    out.into_iter().flatten().collect()
}

fn case_dirs() -> Vec<PathBuf> {
    let mut v = testkit::cases::subdirs(Path::new(CASES));
    v.retain(|p| p.join("flows.txt").exists());
    v
}

#[test]
fn conformance_flows_match_ovs_dump_exactly() {
    let dirs = case_dirs();
    if dirs.is_empty() {
        eprintln!("conformance corpus not found at {CASES}; skipping");
        return;
    }
    assert!(
        dirs.len() >= 101,
        "expected the 101 public cases, found {}",
        dirs.len()
    );
    let (mut total, mut exact) = (0usize, 0usize);
    let mut failures = Vec::new();
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(d.join("flows.txt")).unwrap();
        let rules = match parse_flows(&text, "flows.txt") {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: parse error: {e}"));
                continue;
            }
        };
        let mut ours: Vec<String> = installed(rules).iter().map(format_rule).collect();
        sort_dump(&mut ours);
        let dump = std::fs::read_to_string(d.join("expected/flows_dump.txt")).unwrap();
        let theirs: Vec<String> = dump
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        total += theirs.len();
        if ours.len() != theirs.len() {
            failures.push(format!(
                "{name}: {} rules, OVS dump has {}",
                ours.len(),
                theirs.len()
            ));
        }
        for (o, t) in ours.iter().zip(&theirs) {
            if o == t {
                exact += 1;
            } else {
                failures.push(format!("{name}:\n  ours: {o}\n  ovs:  {t}"));
            }
        }
    }
    eprintln!(
        "flows_dump.txt: {exact}/{total} lines reproduced exactly over {} cases",
        dirs.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(exact, total);
}

#[test]
fn peer_benchmark_tables_parse() {
    let Ok(rd) = std::fs::read_dir(PEER) else {
        eprintln!("peer flows not found at {PEER}; skipping");
        return;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("txt") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let rules = parse_flows(&text, &name).unwrap_or_else(|e| panic!("{e}"));
        let lines = text
            .lines()
            .filter(|l| !l.split('#').next().unwrap().trim().is_empty())
            .count();
        assert_eq!(rules.len(), lines, "{name}");
        // Formatting and re-parsing gives the same rules.
        for r in &rules {
            let again = ofproto::parse::parse_flow(&format_rule(r)).unwrap();
            assert_eq!(&again, r, "{}", format_rule(r));
        }
        n += 1;
    }
    assert!(n >= 4, "expected the 4 peer tables, found {n}");
}

#[test]
fn conformance_rules_reparse_from_their_dump_form() {
    // format_rule's output is itself valid flow syntax with the same meaning.
    for d in case_dirs() {
        let text = std::fs::read_to_string(d.join("flows.txt")).unwrap();
        // Tables of features still being added on other branches (the
        // dump-exact test above reports them) are left out here.
        let Ok(rules) = parse_flows(&text, "flows.txt") else {
            continue;
        };
        for r in rules {
            let s = format_rule(&r);
            let again = ofproto::parse::parse_flow(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(again, r, "{}: {s}", d.display());
        }
    }
}

#[allow(dead_code)]
fn exists(p: &str) -> bool {
    Path::new(p).exists()
}
