//! Whole-file parsing: comments, blank lines, line/column reporting.

use ofproto::parse::{parse_flow, parse_flows, ParseError};

#[test]
fn comments_and_blank_lines() {
    let text = "# header comment\n\
                \n\
                priority=1,ip actions=output:1   # trailing comment\n\
                \t  \n\
                table=1 actions=drop\r\n\
                # done\n";
    let rules = parse_flows(text, "flows.txt").unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0],
        parse_flow("priority=1,ip actions=output:1").unwrap()
    );
    assert_eq!(rules[1].table, 1);
    assert!(parse_flows("", "empty.txt").unwrap().is_empty());
    assert!(parse_flows("# only\n\n", "c.txt").unwrap().is_empty());
}

#[test]
fn first_bad_line_rejects_the_file_with_location() {
    let text = "priority=1,ip,actions=drop\n\n# comment\npriority=1,ip,actions=frob\nbogus\n";
    let e = parse_flows(text, "flows.txt").unwrap_err();
    assert_eq!(
        e,
        ParseError {
            file: "flows.txt".into(),
            line: 4,
            col: 23,
            reason: "unknown action frob".into()
        }
    );
    assert_eq!(e.to_string(), "flows.txt:4: col 23: unknown action frob");
}

#[test]
fn columns_point_at_the_token() {
    let e = parse_flows("ip,nw_ttl=300,actions=drop", "f").unwrap_err();
    assert_eq!((e.line, e.col), (1, 11));
    assert!(e.reason.contains("too large"), "{e}");
    let e = parse_flows("ip,frob=1,actions=drop", "f").unwrap_err();
    assert_eq!(e.col, 4);
    assert_eq!(e.reason, "unknown keyword frob");
    let e = parse_flows("ip actions=output:1,frob", "f").unwrap_err();
    assert_eq!(e.col, 21);
    // Columns count characters, not bytes.
    let e = parse_flows("ip,nw_src=1.2.3.4 actions=output:é", "f").unwrap_err();
    assert_eq!(e.col, 34);
    // Single lines: no file prefix.
    let e = parse_flow("ip actions=output:1,frob").unwrap_err();
    assert_eq!(e.to_string(), "col 21: unknown action frob");
}

#[test]
fn actions_keyword() {
    assert!(parse_flow("ip action=drop").is_ok());
    assert!(parse_flow("ip actions = drop").is_ok());
    assert!(parse_flow("ip actionsx=drop")
        .unwrap_err()
        .reason
        .contains("actions="));
    assert!(parse_flow("ip actions")
        .unwrap_err()
        .reason
        .contains("must specify an action"));
}

/// Issue 20 item 5: a rule's actions are capped at OVS's 64 KB, with the
/// position and the reason.
#[test]
fn actions_above_64k_are_refused() {
    let outputs: Vec<String> = (0..20_000)
        .map(|i| format!("output:{}", i % 60 + 1))
        .collect();
    let line = format!("priority=1 actions={}", outputs.join(","));
    let e = parse_flow(&line).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("above the limit of 65535"), "{msg}");
    assert!(msg.starts_with("col 20:"), "column of actions: {msg}");
    // Just under the limit parses.
    let n = (65535 - 9) / 9;
    let ok: Vec<&str> = std::iter::repeat_n("output:1", n).collect();
    assert!(parse_flow(&format!("actions={}", ok.join(","))).is_ok());
}

/// Issue 20 item 12: error reasons quote a bounded excerpt of the input.
#[test]
fn error_reasons_are_bounded() {
    let token = "z".repeat(1 << 20);
    let e = parse_flows(&format!("{token}=1,actions=drop\n"), "f.txt").unwrap_err();
    let msg = e.to_string();
    assert!(msg.len() < 1000, "{} bytes", msg.len());
    assert!(msg.contains("more bytes cut"), "{msg}");
}

/// Issue 20 item 12: a UTF-8 byte order mark before the first line is not
/// a keyword.
#[test]
fn utf8_bom_is_skipped() {
    let rules = parse_flows("\u{feff}priority=5,actions=drop\n", "bom.txt").unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].priority, 5);
}
