//! The control socket: a Unix stream socket on which `vportctl` (or anything
//! that writes a line) sends one request per line and gets one JSON reply
//! per line; and, with `--metrics ADDR`, a Prometheus endpoint over HTTP.
//!
//! * [`proto`]: the envelope and the default path (shared with vportctl);
//! * [`commands`]: parsing and running the commands;
//! * [`format`]: the human tables; [`json`]: the `data` schemas;
//! * [`metrics`]: Prometheus text; [`http`]: the bounded HTTP endpoint;
//! * [`server`]: binding the socket, the bounded client loop, [`start`];
//! * [`unixctl`]: OVS's JSON-RPC protocol on the same socket (`ovs-appctl`).

pub mod commands;
pub mod conntrack;
pub mod fdb;
pub mod format;
pub mod groups;
pub mod http;
pub mod json;
pub mod metrics;
pub mod proto;
pub mod rxq_assign;
pub mod server;
pub mod tnl;
pub mod unixctl;

pub use server::start;

use crate::switch::Switch;
use parking_lot::Mutex;
use pmd::stats::PmdStatsSnapshot;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// `pmd-stats-clear`'s baseline: a snapshot per PMD and when it was taken.
pub struct Baseline {
    pub at: Instant,
    /// Indexed by PMD index; missing entries are all zeros.
    pub snaps: Vec<PmdStatsSnapshot>,
}

/// What every command can reach.
pub struct Server {
    pub switch: Arc<Switch>,
    pub baseline: Mutex<Baseline>,
    /// Last `set emc-insert-inv-prob` value (the datapath does not report
    /// its current one).
    pub emc_insert_inv_prob: Mutex<Option<u32>>,
    /// `set smc-enable` (vportd's default: on).
    pub smc_enabled: Mutex<bool>,
    /// `set pmd-rxq-assign` (OVS's default: cycles).
    pub rxq_assign: Mutex<rxq_assign::RxqAssign>,
    pub ctl_path: PathBuf,
    /// Serialises port and rule changes requested over the socket.
    pub edit: Mutex<()>,
}

impl Server {
    pub fn new(switch: Arc<Switch>, ctl_path: PathBuf) -> Server {
        Server {
            baseline: Mutex::new(Baseline {
                at: switch.started,
                snaps: Vec::new(),
            }),
            switch,
            emc_insert_inv_prob: Mutex::new(None),
            smc_enabled: Mutex::new(true),
            rxq_assign: Mutex::new(rxq_assign::RxqAssign::default()),
            ctl_path,
            edit: Mutex::new(()),
        }
    }
}
