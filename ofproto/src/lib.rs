//! `ofproto`: the OpenFlow layer of vportd (the slow path).
//!
//! * [`fields`]: the field registry (names, widths, prerequisites, access).
//! * [`rule`]: rules, matches, instructions and OpenFlow actions.

#![forbid(unsafe_code)]

pub mod bridge;
pub mod classifier;
pub mod fields;
pub mod group;
pub mod mac_learning;
pub mod ofp_port;
pub mod parse;
pub mod recirc;
pub mod rule;
pub mod table;
pub mod tunnel;
pub mod xlate;

pub use bridge::Bridge;
pub use fields::{FieldId, Prereq, SubField};
pub use parse::{format_match, format_rule, parse_flow, parse_flows, parse_match, ParseError};
pub use rule::{Instructions, Match, OfAction, OutputPort, Rule, TableId};
