//! Fuzz the flow parser: `cargo +nightly fuzz run parse_flows` (from
//! ofproto/).  Seed corpus suggestion:
//! `mkdir -p corpus/parse_flows && cp /work/shared/conformance/cases/public/*/flows.txt corpus/parse_flows/`.
//!
//! Properties: no panic on any input; every rule that parses formats to a
//! line that parses back to the same rule; filters never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ofproto::parse::{
    format_match, format_rule, parse_filter, parse_flow, parse_flows, parse_match,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rules) = parse_flows(text, "fuzz") {
        for r in &rules {
            let line = format_rule(r);
            let again = parse_flow(&line)
                .unwrap_or_else(|e| panic!("formatted rule does not parse: {line}: {e}"));
            assert_eq!(&again, r, "round trip changed the rule: {line}");
        }
    }
    if let Ok((m, _, _)) = parse_match(text) {
        let _ = format_match(&m);
    }
    let _ = parse_filter(text);
});
