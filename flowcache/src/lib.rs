//! `flowcache`: the fast path's data structures, free of DPDK.
//!
//! * [`key`]: the fixed-layout flow key ([`key::FlowKey`]).
//! * [`actions`]: datapath actions attached to megaflows.

pub mod actions;
pub mod extract;
pub mod key;

pub use actions::{ActionList, DpAction, DropReason, SetField};
pub use key::FlowKey;
