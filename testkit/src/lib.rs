//! Test support for the workspace's tests (a dev-dependency only): the
//! pieces every crate's tests need and that used to be written again in
//! each of them.
//!
//! * [`pcap`]: classic pcap files, written and read.
//! * [`hex`]: frames as hex text (conformance traces, assertions).
//! * [`ScratchDir`]: a temporary directory removed on drop.
//! * [`cases`]: finding conformance-case directories.

#![forbid(unsafe_code)]

pub mod cases;
pub mod hex;
pub mod pcap;
mod scratch;

pub use scratch::ScratchDir;
