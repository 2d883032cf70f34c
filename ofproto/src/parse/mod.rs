//! The OpenFlow flow language: `ovs-ofctl add-flows` syntax with the
//! meaning `ovs-ofctl -O OpenFlow13 add-flows` gives it.
//!
//! * [`parse_flows`] reads a flow file (blank lines and `#` comments are
//!   skipped; the first bad line rejects the whole file), [`parse_flow`] one
//!   line, [`parse_match`]/[`parse_filter`] the field part alone (for
//!   `dump-flows`/`del-flows` filters and `trace`).
//! * [`format_rule`]/[`format_match`] print rules the way
//!   `ovs-ofctl -O OpenFlow13 --no-stats dump-flows` does.
//!
//! What a parsed rule holds is what an OpenFlow 1.3 switch holds after OVS
//! sent it: OpenFlow 1.0 style actions are already translated
//! (`mod_dl_src` is a set-field, `mod_vlan_vid` on a flow without a VLAN tag
//! is `push_vlan:0x8100` plus a set-field on `vlan_vid`, `strip_vlan` is
//! `pop_vlan`), the VLAN match is what OXM can carry (`vlan_tci=0` is
//! `vlan_tci=0x0000/0x1fff`), and OVS's consistency checks have been
//! applied (prerequisites of matched and written fields, `pop_vlan` needs a
//! tag, `goto_table` goes forward, instruction order, ...).
//!
//! Module map: `lexer` (key/value splitting), `fields` (name tables,
//! prerequisites, subfields), `values` (numbers, addresses, flags),
//! `matches` (the match part), `actions` (actions and instructions),
//! `format` (dump-flows output), `error`.

pub(crate) mod actions;
pub(crate) mod error;
pub(crate) mod fields;
pub(crate) mod format;
mod lexer;
mod matches;
mod port_names;
mod values;

pub use error::ParseError;
pub use format::{format_instructions, format_match, format_rule};
pub use port_names::with_port_names;

use error::{PResult, Perr};
use matches::{parse_header, Header, Mode};

use crate::rule::{Match, OutputPort, Rule, TableId};

/// A flow filter as `dump-flows`/`del-flows` take it: fields plus the
/// optional `table=`, `priority=`, `cookie=V[/M]` and `out_port=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    pub matches: Match,
    pub table: Option<TableId>,
    pub priority: Option<u16>,
    /// `(cookie, mask)`; a cookie without a mask matches exactly.
    pub cookie: Option<(u64, u64)>,
    pub out_port: Option<OutputPort>,
}

/// Splits a line at `actions=` (OVS looks for the first `action` and the
/// `=` after it).  Returns the match part and the actions with their offset.
fn split_actions(line: &str) -> PResult<(&str, Option<(&str, usize)>)> {
    let Some(p) = line.find("action") else {
        return Ok((line, None));
    };
    let after = &line[p + 6..];
    let Some(eq) = after.find('=') else {
        return Err(Perr::new(p, "expected `actions=` (must specify an action)"));
    };
    let between = after[..eq].trim();
    if !(between.is_empty() || between == "s") {
        return Err(Perr::new(p, "expected `actions=`"));
    }
    Ok((&line[..p], Some((&after[eq + 1..], p + 6 + eq + 1))))
}

/// The longest `actions=` text of one rule. OVS refuses a rule whose
/// actions do not fit OpenFlow's 16-bit length ("input too big"); the text
/// bound keeps every rule's translation small (at most a few thousand
/// actions) whatever the encoding.
pub const MAX_ACTIONS_BYTES: usize = 65535;

fn parse_rule_line(line: &str) -> PResult<Rule> {
    let (mpart, acts) = split_actions(line)?;
    let Some((astr, apos)) = acts else {
        return Err(Perr::new(
            line.trim_end().len(),
            "must specify an action (`actions=...`, `actions=drop` for none)",
        ));
    };
    if astr.len() > MAX_ACTIONS_BYTES {
        return Err(Perr::new(
            apos,
            format!(
                "actions are {} bytes, above the limit of {MAX_ACTIONS_BYTES} \
                 (OVS refuses a rule whose actions exceed 64 KB)",
                astr.len()
            ),
        ));
    }
    let h = parse_header(mpart, 0, Mode::Flow)?;
    let table = h.table.unwrap_or(0);
    let st = actions::State {
        key: h.m.value,
        mask: h.m.mask,
        table,
        lenient: false,
    };
    let instructions = actions::parse_instructions(astr, apos, st)?;
    Ok(Rule {
        table,
        priority: h.priority.unwrap_or(32768),
        cookie: h.cookie.map(|c| c.0).unwrap_or(0),
        idle_timeout: h.idle_timeout,
        hard_timeout: h.hard_timeout,
        matches: h.m,
        instructions,
    })
}

/// Parses one flow (`priority=10,tcp,tp_dst=80,actions=output:2`).
/// Errors carry the column; the file name is empty and the line is 1.
pub fn parse_flow(line: &str) -> Result<Rule, ParseError> {
    parse_rule_line(line).map_err(|e| e.locate("", 1, line))
}

/// Parses a flow file: one flow per line, `#` starts a comment, blank lines
/// are skipped.  The first bad line rejects the whole file; the error names
/// `file_name`, the line and the column.
pub fn parse_flows(text: &str, file_name: &str) -> Result<Vec<Rule>, ParseError> {
    // A UTF-8 byte order mark (editors on Windows write one) is not part
    // of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        if line.bytes().all(|c| c.is_ascii_whitespace()) {
            continue;
        }
        out.push(parse_rule_line(line).map_err(|e| e.locate(file_name, i + 1, raw))?);
    }
    Ok(out)
}

fn filter_header(s: &str) -> PResult<Header> {
    let (mpart, acts) = split_actions(s)?;
    if acts.is_some() {
        let p = s.find("action").unwrap_or(0);
        return Err(Perr::new(p, "actions are not allowed in a flow filter"));
    }
    parse_header(mpart, 0, Mode::Filter)
}

/// Parses a `dump-flows`/`del-flows` filter.
pub fn parse_filter(s: &str) -> Result<FlowFilter, ParseError> {
    let h = filter_header(s).map_err(|e| e.locate("", 1, s))?;
    Ok(FlowFilter {
        matches: h.m,
        table: h.table,
        priority: h.priority,
        cookie: h.cookie,
        out_port: h.out_port,
    })
}

/// Parses the field part of a flow (no `actions=`): the match, `table=` and
/// `priority=` if given.  For filters with `cookie=`/`out_port=` use
/// [`parse_filter`].
pub fn parse_match(s: &str) -> Result<(Match, Option<TableId>, Option<u16>), ParseError> {
    let h = filter_header(s).map_err(|e| e.locate("", 1, s))?;
    for (present, key) in [
        (h.cookie.is_some(), "cookie"),
        (h.out_port.is_some(), "out_port"),
    ] {
        if present {
            let p = s.find(key).unwrap_or(0);
            return Err(
                Perr::new(p, format!("{key} is not allowed here (use a flow filter)"))
                    .locate("", 1, s),
            );
        }
    }
    Ok((h.m, h.table, h.priority))
}
