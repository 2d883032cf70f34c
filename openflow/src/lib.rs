//! `openflow`: the OpenFlow 1.3 wire protocol for vportd.
//!
//! * [`buf`]: length-checked big-endian reading ([`buf::Reader`]) and
//!   writing; no read can go past the message.
//! * [`error`]: [`OfError`], an OpenFlow error (type, code) and a reason.
//! * [`oxm`]: OXM/NXM fields ↔ [`ofproto::FieldId`], `ofp_match` ↔
//!   [`ofproto::Match`].
//! * [`actions`]: actions and instructions ↔ [`ofproto::OfAction`] /
//!   [`ofproto::Instructions`], Nicira extensions included.
//! * [`msg`]: the messages: [`msg::decode`] for what a controller sends,
//!   encoders for the switch's replies and asynchronous messages.
//! * [`flow_mod_rule`]: a FLOW_MOD as the [`ofproto::Rule`] the text parser
//!   gives for the same flow (checked by re-parsing its text form, so a rule
//!   added over the wire passes exactly the validation `--flows` applies).
//!
//! Decoding never panics on any input (see the fuzz target in
//! `openflow/fuzz` and the property tests): malformed input is an
//! [`OfError`].

#![forbid(unsafe_code)]

pub mod actions;
pub mod buf;
pub mod error;
pub mod group;
pub mod msg;
pub mod oxm;

pub use error::{ErrCode, OfError};

use ofproto::Rule;

/// The rule a FLOW_MOD (add) describes, validated as the flow language
/// validates it: the decoded rule is printed the way dump-flows prints it
/// and parsed back; a rule the text parser refuses (a prerequisite
/// missing, an action inconsistent with the match) is refused with the
/// parser's reason, and a decoded rule must equal its re-parse.
pub fn flow_mod_rule(fm: &msg::FlowMod) -> Result<Rule, OfError> {
    let rule = Rule {
        table: fm.table_id,
        priority: fm.priority,
        cookie: fm.cookie,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        matches: fm.matches,
        instructions: fm.instructions.clone(),
    };
    validate(rule)
}

/// Checks `rule` against the text parser (see [`flow_mod_rule`]).
pub fn validate(rule: Rule) -> Result<Rule, OfError> {
    let text = ofproto::format_rule(&rule);
    match ofproto::parse_flow(&text) {
        Ok(parsed) if parsed == rule => Ok(rule),
        Ok(parsed) => {
            // The text form is the reference: a decoded rule that differs
            // from the parse of its own text would behave differently
            // from the same flow given with --flows.
            if parsed.matches != rule.matches {
                Err(OfError::new(
                    ErrCode::BMC_BAD_VALUE,
                    format!("match not representable as the flow language has it: {text}"),
                ))
            } else {
                Err(OfError::new(
                    ErrCode::BAC_BAD_ARGUMENT,
                    format!("actions differ from the flow language's for: {text}"),
                ))
            }
        }
        Err(e) => {
            let msg = e.to_string();
            let code = if msg.contains("requires") || msg.contains("prerequisite") {
                if text
                    .find("actions=")
                    .is_some_and(|p| e_col(&msg).is_some_and(|c| c > p))
                {
                    ErrCode::BAC_MATCH_INCONSISTENT
                } else {
                    ErrCode::BMC_BAD_PREREQ
                }
            } else if text
                .find("actions=")
                .is_some_and(|p| e_col(&msg).is_some_and(|c| c > p))
            {
                ErrCode::BAC_BAD_ARGUMENT
            } else {
                ErrCode::BMC_BAD_VALUE
            };
            Err(OfError::new(code, format!("{msg} [{text}]")))
        }
    }
}

/// The column of a parse error message (`:1:COL:`), if it has one.
fn e_col(msg: &str) -> Option<usize> {
    let mut it = msg.split(':');
    while let Some(p) = it.next() {
        if p.trim() == "1" {
            if let Some(c) = it.next().and_then(|c| c.trim().parse::<usize>().ok()) {
                return Some(c.saturating_sub(1));
            }
        }
    }
    None
}
