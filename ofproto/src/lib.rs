//! `ofproto`: the OpenFlow layer of vportd (the slow path).
//!
//! * [`fields`]: the field registry (names, widths, prerequisites, access).
//! * [`rule`]: rules, matches, instructions and OpenFlow actions.

pub mod fields;
pub mod rule;

pub use fields::{FieldId, Prereq, SubField};
pub use rule::{Instructions, Match, OfAction, OutputPort, Rule, TableId};
