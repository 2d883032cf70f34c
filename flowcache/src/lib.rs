//! `flowcache`: the fast path's data structures, free of DPDK.
//!
//! * [`key`]: the fixed-layout flow key ([`key::FlowKey`]).
//! * [`actions`]: datapath actions attached to megaflows.
//! * [`extract`]: frame -> flow key parsing (OVS `miniflow_extract`).
//! * [`wire`]: zero-copy typed views of protocol headers.

pub mod actions;
pub mod cpu;
pub mod dpcls;
pub mod emc;
pub mod extract;
pub mod hash;
pub mod key;
pub mod megaflow;
pub mod smc;
pub mod text;
pub mod tunnel;
pub mod upcall;
pub mod wire;

pub use actions::{ActionList, DpAction, DropReason, SetField};
pub use cpu::prefetch;
pub use dpcls::{BatchResult, Dpcls, InsertError};
pub use emc::Emc;
pub use hash::hash_key;
pub use key::FlowKey;
pub use megaflow::{Megaflow, MegaflowStats, StatsSnapshot};
pub use smc::Smc;
