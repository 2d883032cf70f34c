//! The `data` part of every reply: one serialisable type per command. The
//! schemas are documented in docs/ctl-json.md; fields are only ever added
//! (a removal or a change of meaning bumps [`super::proto::PROTOCOL_VERSION`]).

use serde::Serialize;
use std::collections::BTreeMap;

/// `show`.
#[derive(Debug, Clone, Serialize)]
pub struct Show {
    pub version: String,
    pub uptime_s: f64,
    /// The control socket's path.
    pub control_socket: String,
    pub ports: Vec<PortInfo>,
    pub pmds: Vec<PmdInfo>,
    pub megaflows: usize,
    pub flow_limit: usize,
    pub openflow_rules: usize,
    /// The standard packet pool (jumbo pools not included).
    pub mbuf_pool: MbufPool,
    /// OpenFlow controller targets and connections (`--controller`).
    pub controllers: Vec<ControllerInfo>,
    /// Tunnel ports (native tunnelling; no device).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tunnels: Vec<TunnelInfo>,
}

/// A tunnel port in `show`.
#[derive(Debug, Clone, Serialize)]
pub struct TunnelInfo {
    pub name: String,
    pub ofport: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// `flow` for `remote_ip=flow`.
    pub remote_ip: String,
    /// `flow` for `key=flow`, absent for GRE without key.
    pub key: Option<String>,
    pub dst_port: u16,
}

/// A packet pool's fill.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MbufPool {
    pub capacity: u32,
    /// Mbufs out of the pool (in rx rings, in flight, leaked).
    pub in_use: u32,
}

/// A vhost-user port's side of `show`.
#[derive(Debug, Clone, Serialize)]
pub struct VhostInfo {
    /// `vhost-user-client` (vportd connects) or `vhost-user` (listens).
    pub mode: &'static str,
    pub socket: String,
    /// A guest's virtio driver is up (the port's link).
    pub connected: bool,
    /// Queue pairs offered to the guest (`queues=`).
    pub queues: u16,
    /// The guest's enabled rx virtqueues (vportd's tx queues), as reported
    /// by the vhost PMD's queue events.
    pub queues_enabled: u32,
    /// The vhost PMD's extended counters.
    pub xstats: BTreeMap<String, u64>,
}

/// One `--controller` target or one connection on it, in `show`.
#[derive(Debug, Clone, Serialize)]
pub struct ControllerInfo {
    pub target: String,
    /// `listening`, `connecting`, `backoff` (targets); `hello`,
    /// `connected` (connections).
    pub state: String,
    /// The peer address of a connection; `null` for a target's own line.
    pub peer: Option<String>,
    pub role: Option<String>,
    /// The negotiated OpenFlow version (`1.3`).
    pub version: Option<String>,
    pub msgs_in: u64,
    pub msgs_out: u64,
    /// Asynchronous messages dropped because the controller's queue was full.
    pub async_dropped: u64,
    pub last_error: Option<String>,
}

/// One port in `show` and `add-port`.
#[derive(Debug, Clone, Serialize)]
pub struct PortInfo {
    pub name: String,
    pub ofport: u32,
    /// The device (or devargs string) the port was opened from.
    pub device: String,
    /// The ethdev name.
    pub ethdev: String,
    pub driver: String,
    pub n_rxq: u16,
    pub n_txq: u16,
    /// Index of the PMD that polls each rx queue.
    pub rxq_pmds: Vec<usize>,
    /// `null` when the driver could not report it.
    pub link: Option<Link>,
    /// `null` when the driver could not report them.
    pub stats: Option<PortCounters>,
    /// Only for vhost-user ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhost: Option<VhostInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub up: bool,
    pub speed_mbps: Option<u32>,
    pub full_duplex: bool,
    pub autoneg: bool,
}

/// `rte_eth_stats` of a port.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the NIC, rx queue full (`imissed`).
    pub rx_missed: u64,
    /// `ierrors`.
    pub rx_errors: u64,
    /// `oerrors`.
    pub tx_errors: u64,
    /// `rx_nombuf`.
    pub rx_nombuf: u64,
    /// Frames longer than one mbuf, dropped by vportd.
    pub rx_oversized: u64,
    /// Packets the tx queue refused (full), dropped by vportd.
    pub tx_full: u64,
    /// Packets the device refused while its link was down (no guest).
    pub tx_link_down: u64,
    /// `rx_missed + rx_errors + tx_errors + rx_nombuf + rx_oversized + tx_full + tx_link_down`.
    pub drops: u64,
}

/// One PMD in `show`.
#[derive(Debug, Clone, Serialize)]
pub struct PmdInfo {
    pub index: usize,
    pub core: Option<usize>,
    pub thread: String,
    pub rxqs: Vec<RxqRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RxqRef {
    pub port: String,
    pub ofport: u32,
    pub queue: u16,
}

/// `del-port`.
#[derive(Debug, Clone, Serialize)]
pub struct PortRemoved {
    pub name: String,
    pub ofport: u32,
}

/// `add-flow`, `add-flows`, `mod-flows`, `del-flows`, `replace-flows`.
#[derive(Debug, Clone, Serialize)]
pub struct FlowChange {
    /// "add", "modify", "delete" or "replace".
    pub op: &'static str,
    /// Rules added, modified, deleted, or loaded.
    pub count: usize,
    /// Rules in all tables afterwards.
    pub rules_total: usize,
}

/// `dump-flows`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpFlows {
    pub flows: Vec<FlowEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowEntry {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    pub duration_s: f64,
    /// Seconds since a packet last hit the rule (or since it was added).
    pub idle_age_s: f64,
    pub n_packets: u64,
    pub n_bytes: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    /// `format_match` of the rule's match ("" = all packets).
    #[serde(rename = "match")]
    pub matches: String,
    pub actions: String,
    /// The whole `ovs-ofctl dump-flows` style line.
    pub line: String,
}

/// `dump-megaflows`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpMegaflows {
    pub megaflows: Vec<MegaflowInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MegaflowInfo {
    pub id: u64,
    pub pmd: usize,
    /// Datapath-style key/mask (`recirc_id(0),in_port(1),eth_type(0x0800),...`).
    pub key: String,
    /// The same as an OpenFlow match (`format_match` of key/mask).
    #[serde(rename = "match")]
    pub matches: String,
    pub actions: String,
    pub packets: u64,
    pub bytes: u64,
    /// Milliseconds since the last packet; `null` if none yet.
    pub used_ms_ago: Option<u64>,
    pub age_ms: u64,
    pub tcp_flags: u16,
}

/// PMD counters (raw, or since `pmd-stats-clear`): every counter of
/// [`pmd::stats::PmdStatsSnapshot::counters`] under its name, then
/// `drops` (by reason, every reason present) and `drops_total`.
#[derive(Debug, Clone)]
pub struct PmdCounters(pub pmd::stats::PmdStatsSnapshot);

impl std::ops::Deref for PmdCounters {
    type Target = pmd::stats::PmdStatsSnapshot;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Serialize for PmdCounters {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let counters = self.0.counters();
        let mut m = ser.serialize_map(Some(counters.len() + 2))?;
        for (name, _, value) in counters {
            m.serialize_entry(name, &value)?;
        }
        let drops: BTreeMap<&str, u64> = flowcache::DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.0.drops[*r as usize]))
            .collect();
        m.serialize_entry("drops", &drops)?;
        m.serialize_entry("drops_total", &self.0.total_drops())?;
        m.end()
    }
}

/// Values derived from [`PmdCounters`], as OVS prints them.
#[derive(Debug, Clone, Serialize)]
pub struct PmdDerived {
    pub avg_passes_per_packet: f64,
    pub avg_subtable_lookups_per_megaflow_hit: f64,
    pub avg_packets_per_output_batch: f64,
    pub idle_cycles_pct: f64,
    pub processing_cycles_pct: f64,
    pub avg_cycles_per_packet: f64,
    pub avg_processing_cycles_per_packet: f64,
    pub us_per_upcall: f64,
    pub us_per_iteration: f64,
    pub rx_kpps: f64,
    pub tx_kpps: f64,
}

/// `pmd-stats-show` and `pmd-perf-show`.
#[derive(Debug, Clone, Serialize)]
pub struct PmdStats {
    /// Seconds since `pmd-stats-clear` (or since the daemon started).
    pub duration_s: f64,
    pub tsc_hz: u64,
    pub pmds: Vec<PmdStatsEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PmdStatsEntry {
    pub index: usize,
    pub core: Option<usize>,
    pub thread: String,
    pub counters: PmdCounters,
    pub derived: PmdDerived,
}

/// `pmd-stats-clear`.
#[derive(Debug, Clone, Serialize)]
pub struct Cleared {
    pub pmds: usize,
}

/// `pmd-rxq-show`.
#[derive(Debug, Clone, Serialize)]
pub struct RxqShow {
    /// `pmd-rxq-assign`: the policy `pmd-rxq-rebalance` follows.
    pub assignment: String,
    pub pmds: Vec<RxqPmd>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RxqPmd {
    pub index: usize,
    pub core: Option<usize>,
    pub thread: String,
    pub isolated: bool,
    /// The PMD's busy + idle cycles since it started.
    pub total_cycles: u64,
    pub rxqs: Vec<RxqLoad>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RxqLoad {
    pub port: String,
    pub ofport: u32,
    pub queue: u16,
    /// Cycles spent on this queue's bursts since it was added.
    pub cycles: u64,
    /// `cycles` in percent of all cycles this PMD spent on its queues.
    pub share_pct: f64,
    /// `cycles` in percent of the PMD's total cycles (OVS "pmd usage").
    pub usage_pct: f64,
}

/// `pmd-rxq-rebalance`.
#[derive(Debug, Clone, Serialize)]
pub struct Rebalance {
    /// Whether queues were moved.
    pub applied: bool,
    pub reason: String,
    /// The moves of the cycle-based assignment (made when `applied`).
    pub proposed_moves: Vec<RxqMove>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RxqMove {
    pub port: String,
    pub ofport: u32,
    pub queue: u16,
    pub cycles: u64,
    pub from_pmd: usize,
    pub to_pmd: usize,
}

/// `trace` and `detrace`.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The megaflow id (`detrace` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub megaflow_id: Option<u64>,
    /// The flow translated, as a match.
    pub flow: String,
    pub in_port: u32,
    pub trace: Vec<String>,
    /// Datapath actions ("drop" for none).
    pub actions: String,
    pub drop_reason: Option<String>,
    /// The megaflow translation would install: datapath-style key/mask.
    pub megaflow_key: String,
    /// The same as an OpenFlow match.
    pub megaflow_match: String,
    /// The rules visited, in order.
    pub rules: Vec<RuleRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleRef {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    pub n_packets: u64,
    pub n_bytes: u64,
    /// `format_rule`.
    pub rule: String,
}

/// `revalidator-wait`.
#[derive(Debug, Clone, Serialize)]
pub struct RevalidatorWait {
    /// How long the round and the PMD barrier took.
    pub elapsed_us: u64,
}

/// `upcall-show`.
#[derive(Debug, Clone, Serialize)]
pub struct UpcallShow {
    pub megaflows: usize,
    pub flow_limit: usize,
    pub max_idle_ms: u64,
    /// `null` until set with `set emc-insert-inv-prob` (the daemon's
    /// `--emc-insert-inv-prob` applies until then).
    pub emc_insert_inv_prob: Option<u32>,
    /// `smc-enable`: the signature match cache in front of each dpcls.
    pub smc_enabled: bool,
    pub revalidations: u64,
    pub expired: u64,
    pub revalidated_away: u64,
    /// Packets of `userspace` actions the handler pool consumed, by cookie
    /// kind (`controller`, `sample`, `other`).
    pub userspace: std::collections::BTreeMap<String, u64>,
    pub pmds: Vec<UpcallPmd>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpcallPmd {
    pub index: usize,
    pub core: Option<usize>,
    pub thread: String,
    pub upcalls: u64,
    pub lost_upcalls: u64,
    pub pending_upcalls: u64,
    pub megaflows_installed: u64,
    pub flow_limit_hits: u64,
    pub us_per_upcall: f64,
}

/// `set`.
#[derive(Debug, Clone, Serialize)]
pub struct SetValue {
    pub key: String,
    pub value: u64,
    pub previous: Option<u64>,
}

/// `set` of a setting whose value is a word (`smc-enable`,
/// `pmd-rxq-assign`).
#[derive(Debug, Clone, Serialize)]
pub struct SetText {
    pub key: String,
    pub value: String,
    pub previous: String,
}

/// One capture in `capture`, `capture-show` and `capture-stop`.
#[derive(Debug, Clone, Serialize)]
pub struct Capture {
    /// Port name (`null` if the port is gone).
    pub port: Option<String>,
    pub ofport: u32,
    /// The pcap file.
    pub file: String,
    /// `--count N` (`null`: until `capture-stop`).
    pub count: Option<u64>,
    /// Packets written to the file: received and sent on the port.
    pub written: u64,
    pub written_rx: u64,
    pub written_tx: u64,
    /// Packets not written because the queue to the writer was full.
    pub lost: u64,
    pub duration_s: f64,
    /// Why writing failed, if it did.
    pub error: Option<String>,
}

/// `capture-show`.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureShow {
    pub captures: Vec<Capture>,
}

/// `metrics`: every sample of the Prometheus text.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// `version`.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub version: String,
    pub protocol: u32,
}

/// `help`.
#[derive(Debug, Clone, Serialize)]
pub struct Help {
    pub commands: Vec<HelpEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelpEntry {
    pub name: String,
    pub usage: String,
    pub summary: String,
    /// OVS commands that are accepted as aliases.
    pub aliases: Vec<String>,
}
