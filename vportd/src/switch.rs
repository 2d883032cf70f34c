//! The switch: what the control plane (control socket, OpenFlow channel,
//! OVSDB) reaches of the running daemon. [`crate::daemon`] builds it; the
//! control side only uses it, so neither depends on the other.

use crate::ports::Ports;
use ofproto::Bridge;
use parking_lot::Mutex;
use pmd::datapath::Datapath;
use pmd::dpdk::{Mbuf, Mempool};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Everything the control plane can reach.
pub struct Switch {
    pub bridge: Arc<Bridge>,
    /// `None` once shut down.
    pub datapath: Mutex<Option<Datapath<Mbuf>>>,
    pub ports: Mutex<Ports>,
    pub pool: Arc<Mempool>,
    pub started: Instant,
    pub stop: Arc<AtomicBool>,
    /// OpenFlow controller connections (`--controller`).
    pub controllers: Arc<crate::ofchan::Registry>,
    /// The OpenFlow channel; its run-time targets come from OVSDB.
    pub openflow: Mutex<crate::ofchan::Channel>,
}
