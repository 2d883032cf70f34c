//! The commands: split the request line, run the command against the
//! switch, and answer with a human table (`text`) and its data (`data`).

use super::json::{self, RxqRef};
use super::proto::{Reply, INLINE, PROTOCOL_VERSION};
use super::{conntrack, fdb, format, groups, metrics, rxq_assign, Server};
use crate::args::PortSpec;
use crate::ports::SwitchPort;
use flowcache::extract::{extract, PacketMeta};
use flowcache::key::FlowKey;
use flowcache::megaflow::Megaflow;
use ofproto::parse::{
    format_match, format_rule, parse_filter, parse_flow, parse_flows, parse_match,
};
use ofproto::table::filter_selects;
use ofproto::xlate::XlateOutput;
use ofproto::Match;
use pmd::capture::{CaptureError, CaptureInfo};
use pmd::datapath::clock;
use pmd::datapath::Datapath;
use pmd::dpdk::Mbuf;
use pmd::stats::PmdStatsSnapshot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// What a command produces.
pub struct Out {
    pub text: String,
    pub data: serde_json::Value,
}

pub(super) type CmdResult = Result<Out, String>;

pub(super) fn out<T: Serialize>(text: String, data: &T) -> CmdResult {
    let data = serde_json::to_value(data).map_err(|e| format!("internal error: {e}"))?;
    Ok(Out { text, data })
}

/// What a command accepts after its name.
enum Args {
    /// Nothing: an argument is an error naming the usage.
    None,
    /// Whatever the handler parses (it reports its own errors).
    Any,
}

/// One command: its help entry and how it runs. The table drives the
/// dispatch, the help and [`is_command`].
struct Cmd {
    name: &'static str,
    usage: &'static str,
    summary: &'static str,
    /// OVS names for it (`ovs-appctl`'s); shown by `help`.
    aliases: &'static [&'static str],
    args: Args,
    run: fn(&Server, &[String]) -> CmdResult,
}

/// `upcall/set-flow-limit N` is `set flow-limit N` (its help alias).
const SET_FLOW_LIMIT: &str = "upcall/set-flow-limit";

const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "show",
        usage: "show",
        summary: "ports, PMD threads and megaflow count",
        aliases: &["dpctl/show", "dpif/show"],
        args: Args::None,
        run: |s, _| show(s),
    },
    Cmd {
        name: "add-port",
        usage: "add-port NAME DEVICE[,ofport=N][,rxq=N]",
        summary: "add a port at run time (DEVICE: ethdev name or vdev devargs)",
        aliases: &[],
        args: Args::Any,
        run: add_port,
    },
    Cmd {
        name: "del-port",
        usage: "del-port NAME",
        summary: "remove a port at run time",
        aliases: &[],
        args: Args::Any,
        run: del_port,
    },
    Cmd {
        name: "add-flow",
        usage: "add-flow FLOW",
        summary: "add one OpenFlow rule (ovs-ofctl syntax)",
        aliases: &[],
        args: Args::Any,
        run: add_flow,
    },
    Cmd {
        name: "add-flows",
        usage: "add-flows FILE|-",
        summary: "add the rules of a flow file (- = stdin)",
        aliases: &[],
        args: Args::Any,
        run: |s, a| add_flows(s, a, false),
    },
    Cmd {
        name: "mod-flows",
        usage: "mod-flows [--strict] FLOW",
        summary: "change the actions of the rules FLOW's match selects",
        aliases: &[],
        args: Args::Any,
        run: mod_flows,
    },
    Cmd {
        name: "del-flows",
        usage: "del-flows [--strict] [MATCH]",
        summary: "delete the rules MATCH selects (all without MATCH)",
        aliases: &[],
        args: Args::Any,
        run: del_flows,
    },
    Cmd {
        name: "dump-flows",
        usage: "dump-flows [MATCH]",
        summary: "list rules with n_packets, n_bytes, duration",
        aliases: &[],
        args: Args::Any,
        run: dump_flows,
    },
    Cmd {
        name: "replace-flows",
        usage: "replace-flows FILE|-",
        summary: "replace every rule with a flow file, atomically",
        aliases: &[],
        args: Args::Any,
        run: |s, a| add_flows(s, a, true),
    },
    Cmd {
        name: "add-group",
        usage: "add-group GROUP",
        summary: "add a group (ovs-ofctl syntax: group_id=1,type=all,bucket=output:2)",
        aliases: &[],
        args: Args::Any,
        run: groups::add_group,
    },
    Cmd {
        name: "add-groups",
        usage: "add-groups FILE|-",
        summary: "add the groups of a file, all or none (- = stdin)",
        aliases: &[],
        args: Args::Any,
        run: groups::add_groups,
    },
    Cmd {
        name: "mod-group",
        usage: "mod-group [--may-create] GROUP",
        summary: "replace a group's type and buckets (its counters restart)",
        aliases: &[],
        args: Args::Any,
        run: groups::mod_group,
    },
    Cmd {
        name: "del-groups",
        usage: "del-groups [group_id=N]",
        summary: "delete a group (all without N) and the rules that use it",
        aliases: &[],
        args: Args::Any,
        run: groups::del_groups,
    },
    Cmd {
        name: "dump-groups",
        usage: "dump-groups [N]",
        summary: "list groups as ovs-ofctl -O OpenFlow13 dump-groups",
        aliases: &[],
        args: Args::Any,
        run: groups::dump_groups,
    },
    Cmd {
        name: "dump-group-stats",
        usage: "dump-group-stats [N]",
        summary: "packet and byte counts per group and per bucket",
        aliases: &[],
        args: Args::Any,
        run: groups::dump_group_stats,
    },
    Cmd {
        name: "mod-port",
        usage: "mod-port NAME up|down",
        summary: "admin state of a port (down: not live for fast_failover, link down)",
        aliases: &[],
        args: Args::Any,
        run: groups::mod_port,
    },
    Cmd {
        name: "dump-conntrack",
        usage: "dump-conntrack [zone=N]",
        summary: "list the tracked connections (OVS dpctl/dump-conntrack format)",
        aliases: &["dpctl/dump-conntrack"],
        args: Args::Any,
        run: conntrack::dump,
    },
    Cmd {
        name: "flush-conntrack",
        usage: "flush-conntrack [zone=N] [ct_nw_src=A,ct_nw_dst=B,ct_nw_proto=P,ct_tp_src=S,ct_tp_dst=D]",
        summary: "remove every connection (of zone N), or the one with that original tuple",
        aliases: &["dpctl/flush-conntrack"],
        args: Args::Any,
        run: conntrack::flush,
    },
    Cmd {
        name: "ct-stats-show",
        usage: "ct-stats-show [zone=N]",
        summary: "connections by protocol and TCP state, tracker counters",
        aliases: &["dpctl/ct-stats-show"],
        args: Args::Any,
        run: conntrack::stats,
    },
    Cmd {
        name: "ct-get-limits",
        usage: "ct-get-limits [zone=N[,zone=M]...]",
        summary: "the default and per-zone connection limits with their counts",
        aliases: &["dpctl/ct-get-limits"],
        args: Args::Any,
        run: conntrack::get_limits,
    },
    Cmd {
        name: "ct-set-limits",
        usage: "ct-set-limits [default=N] [zone=Z,limit=N]...",
        summary: "set the default or a zone's connection limit (0: unlimited)",
        aliases: &["dpctl/ct-set-limits"],
        args: Args::Any,
        run: conntrack::set_limits,
    },
    Cmd {
        name: "ct-del-limits",
        usage: "ct-del-limits zone=Z[,zone=Z...]",
        summary: "a zone goes back to the default limit",
        aliases: &["dpctl/ct-del-limits"],
        args: Args::Any,
        run: conntrack::del_limits,
    },
    Cmd {
        name: "ct-set-maxconns",
        usage: "ct-set-maxconns N",
        summary: "the global connection limit (default 3000000)",
        aliases: &["dpctl/ct-set-maxconns"],
        args: Args::Any,
        run: conntrack::set_maxconns,
    },
    Cmd {
        name: "ct-get-maxconns",
        usage: "ct-get-maxconns",
        summary: "the global connection limit",
        aliases: &["dpctl/ct-get-maxconns"],
        args: Args::None,
        run: |s, _| conntrack::get_maxconns(s),
    },
    Cmd {
        name: "ct-get-nconns",
        usage: "ct-get-nconns",
        summary: "the number of connections",
        aliases: &["dpctl/ct-get-nconns"],
        args: Args::None,
        run: |s, _| conntrack::get_nconns(s),
    },
    Cmd {
        name: "tnl-neigh-show",
        usage: "tnl-neigh-show",
        summary: "native tunnelling's neighbour (ARP) cache (OVS tnl/neigh/show)",
        aliases: &["tnl/neigh/show", "tnl/arp/show"],
        args: Args::None,
        run: |s, _| super::tnl::neigh_show(s),
    },
    Cmd {
        name: "tnl-neigh-set",
        usage: "tnl-neigh-set PORT IP MAC",
        summary: "pin a tunnel next hop's MAC (OVS tnl/neigh/set)",
        aliases: &["tnl/neigh/set"],
        args: Args::Any,
        run: super::tnl::neigh_set,
    },
    Cmd {
        name: "tnl-neigh-flush",
        usage: "tnl-neigh-flush",
        summary: "forget the learned neighbours (OVS tnl/neigh/flush)",
        aliases: &["tnl/neigh/flush"],
        args: Args::None,
        run: |s, _| super::tnl::neigh_flush(s),
    },
    Cmd {
        name: "tnl-route-show",
        usage: "tnl-route-show",
        summary: "routes of tunnel traffic (OVS ovs/route/show)",
        aliases: &["ovs/route/show"],
        args: Args::None,
        run: |s, _| super::tnl::route_show(s),
    },
    Cmd {
        name: "fdb-show",
        usage: "fdb-show",
        summary: "list NORMAL's learned MACs: port, VLAN, MAC, age (OVS fdb/show)",
        aliases: &["fdb/show"],
        args: Args::Any,
        run: |s, _| fdb::show(s),
    },
    Cmd {
        name: "fdb-flush",
        usage: "fdb-flush",
        summary: "forget every learned MAC",
        aliases: &["fdb/flush"],
        args: Args::Any,
        run: |s, _| fdb::flush(s),
    },
    Cmd {
        name: "fdb-stats-show",
        usage: "fdb-stats-show",
        summary: "MAC table size, aging time, learned/expired/evicted/moved counts",
        aliases: &["fdb/stats-show"],
        args: Args::Any,
        run: |s, _| fdb::stats(s),
    },
    Cmd {
        name: "dump-megaflows",
        usage: "dump-megaflows",
        summary: "list the datapath megaflows",
        aliases: &["dpctl/dump-flows", "dpif/dump-flows"],
        args: Args::None,
        run: |s, _| dump_megaflows(s),
    },
    Cmd {
        name: "pmd-stats-show",
        usage: "pmd-stats-show",
        summary: "per-PMD counters since pmd-stats-clear",
        aliases: &["dpif-netdev/pmd-stats-show"],
        args: Args::None,
        run: |s, _| pmd_stats(s).and_then(|d| out(format::pmd_stats(&d), &d)),
    },
    Cmd {
        name: "pmd-stats-clear",
        usage: "pmd-stats-clear",
        summary: "restart the pmd-stats-show/pmd-perf-show window",
        aliases: &["dpif-netdev/pmd-stats-clear"],
        args: Args::None,
        run: |s, _| pmd_stats_clear(s),
    },
    Cmd {
        name: "pmd-perf-show",
        usage: "pmd-perf-show",
        summary: "per-PMD performance since pmd-stats-clear",
        aliases: &["dpif-netdev/pmd-perf-show"],
        args: Args::None,
        run: |s, _| pmd_stats(s).and_then(|d| out(format::pmd_perf(&d), &d)),
    },
    Cmd {
        name: "pmd-rxq-show",
        usage: "pmd-rxq-show",
        summary: "rx queue to PMD assignment and cycle shares",
        aliases: &["dpif-netdev/pmd-rxq-show"],
        args: Args::None,
        run: |s, _| rxq_show(s),
    },
    Cmd {
        name: "pmd-rxq-rebalance",
        usage: "pmd-rxq-rebalance",
        summary: "move rx queues to balance the PMDs' cycles (policy: set pmd-rxq-assign)",
        aliases: &["dpif-netdev/pmd-rxq-rebalance"],
        args: Args::None,
        run: |s, _| rebalance(s),
    },
    Cmd {
        name: "revalidator-wait",
        usage: "revalidator-wait",
        summary: "re-check every megaflow against the rules now and return when done",
        aliases: &["revalidator/wait"],
        args: Args::None,
        run: |s, _| revalidator_wait(s),
    },
    Cmd {
        name: "trace",
        usage: "trace FLOW | trace --packet HEX in_port=N",
        summary: "run a flow or a packet through the OpenFlow tables",
        aliases: &["ofproto/trace"],
        args: Args::Any,
        run: trace,
    },
    Cmd {
        name: "detrace",
        usage: "detrace MEGAFLOW-ID",
        summary: "re-translate a megaflow and list the rules behind it",
        aliases: &["ofproto/detrace"],
        args: Args::Any,
        run: detrace,
    },
    Cmd {
        name: "upcall-show",
        usage: "upcall-show",
        summary: "megaflow count and limit, max-idle, revalidator and upcall counters",
        aliases: &["upcall/show"],
        args: Args::None,
        run: |s, _| upcall_show(s),
    },
    Cmd {
        name: "set",
        usage: "set KEY VALUE",
        summary: "flow-limit N, max-idle MS, emc-insert-inv-prob N, smc-enable BOOL, pmd-rxq-assign POLICY, mac-aging-time S or mac-table-size N",
        aliases: &["upcall/set-flow-limit N"],
        args: Args::Any,
        run: set,
    },
    Cmd {
        name: "metrics",
        usage: "metrics",
        summary: "every counter in Prometheus text format",
        aliases: &[],
        args: Args::None,
        run: |s, _| metrics_cmd(s),
    },
    Cmd {
        name: "capture",
        usage: "capture PORT FILE [--count N] [--force]",
        summary:
            "write what PORT receives and sends to a pcap file (N packets, or until capture-stop)",
        aliases: &[],
        args: Args::Any,
        run: capture,
    },
    Cmd {
        name: "capture-show",
        usage: "capture-show",
        summary: "running captures: packets written and lost",
        aliases: &[],
        args: Args::None,
        run: |s, _| capture_show(s),
    },
    Cmd {
        name: "capture-stop",
        usage: "capture-stop PORT",
        summary: "stop a capture and complete its file",
        aliases: &[],
        args: Args::Any,
        run: capture_stop,
    },
    Cmd {
        name: "version",
        usage: "version",
        summary: "daemon and protocol version",
        aliases: &[],
        args: Args::None,
        run: |_, _| version(),
    },
    Cmd {
        name: "help",
        usage: "help",
        summary: "this list",
        aliases: &[],
        args: Args::Any,
        run: |_, _| help(),
    },
];

/// Runs one request line and builds the reply.
pub fn execute(server: &Server, line: &str) -> Reply {
    let words = match split_request(line) {
        Ok(w) => w,
        Err(e) => return Reply::err(e),
    };
    let Some((cmd, args)) = words.split_first() else {
        return Reply::err("empty request (try: help)");
    };
    match run(server, cmd, args) {
        Ok(o) => Reply::ok(o.text, o.data),
        Err(e) => Reply::err(e),
    }
}

/// Splits a request like `sh` would, reporting the column of an
/// unterminated quote.
pub fn split_request(line: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum St {
        Plain,
        Single(usize),
        Double(usize),
    }
    let mut st = St::Plain;
    let mut chars = line.chars().enumerate();
    while let Some((i, c)) = chars.next() {
        match (&st, c) {
            (St::Plain | St::Double(_), '\\') => {
                let Some(_escaped) = chars.next() else {
                    return Err(format!(
                        "malformed request: col {}: backslash at the end of the line",
                        i + 1
                    ));
                };
            }
            (St::Plain, '\'') => st = St::Single(i + 1),
            (St::Plain, '"') => st = St::Double(i + 1),
            (St::Single(_), '\'') | (St::Double(_), '"') => st = St::Plain,
            _ => {}
        }
    }
    match st {
        St::Single(col) | St::Double(col) => {
            return Err(format!("malformed request: col {col}: unterminated quote"))
        }
        St::Plain => {}
    }
    shlex::split(line).ok_or_else(|| "malformed request: cannot split it into words".to_string())
}

/// Runs one command given as words and returns its text (unixctl).
pub fn run_words(server: &Server, cmd: &str, args: &[String]) -> Result<String, String> {
    run(server, cmd, args).map(|o| o.text)
}

/// Whether `name` is a command of the table (or an alias of one).
pub fn is_command(name: &str) -> bool {
    COMMANDS
        .iter()
        .any(|c| c.name == name || c.aliases.contains(&name))
}

/// Every PMD counter summed over the PMDs, since start (`coverage/show`).
pub fn coverage_counters(s: &Server) -> Result<Vec<(String, u64)>, String> {
    with_dp(s, |dp| {
        let mut sums: Vec<(String, u64)> = Vec::new();
        for p in &dp.pmds {
            for (i, (name, _, v)) in p.stats.snapshot().counters().iter().enumerate() {
                match sums.get_mut(i) {
                    Some(e) => e.1 += v,
                    None => sums.push((format!("pmd_{name}"), *v)),
                }
            }
        }
        Ok(sums)
    })
}

fn run(s: &Server, cmd: &str, args: &[String]) -> CmdResult {
    if cmd == SET_FLOW_LIMIT {
        let mut a = vec!["flow-limit".to_string()];
        a.extend_from_slice(args);
        return set(s, &a);
    }
    // An OVS alias, else the name (`dpif-netdev/` dropped, as OVS's
    // commands of that family are vportd's without it).
    let found = COMMANDS.iter().find(|c| c.aliases.contains(&cmd));
    let name = cmd.strip_prefix("dpif-netdev/").unwrap_or(cmd);
    let Some(c) = found.or_else(|| COMMANDS.iter().find(|c| c.name == name)) else {
        return Err(format!("unknown command {name:?} (try: help)"));
    };
    if let (Args::None, Some(a)) = (&c.args, args.first()) {
        return Err(format!(
            "{}: unexpected argument {a:?} (usage: {})",
            c.name, c.name
        ));
    }
    (c.run)(s, args)
}

fn metrics_cmd(s: &Server) -> CmdResult {
    let f = metrics::collect(s);
    out(metrics::render(&f), &metrics::samples(&f))
}

fn version() -> CmdResult {
    let d = json::Version {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: PROTOCOL_VERSION,
    };
    out(
        format!("vportd {} (control protocol {})\n", d.version, d.protocol),
        &d,
    )
}

fn help() -> CmdResult {
    let d = json::Help {
        commands: COMMANDS
            .iter()
            .map(|c| json::HelpEntry {
                name: c.name.into(),
                usage: c.usage.into(),
                summary: c.summary.into(),
                aliases: c.aliases.iter().map(|a| a.to_string()).collect(),
            })
            .collect(),
    };
    out(format::help(&d), &d)
}

// ---------------------------------------------------------------------
// Helpers.

fn thread_name(index: usize, core: Option<usize>) -> String {
    match core {
        Some(c) => format!("pmd-c{c:02}"),
        None => format!("pmd-{index}"),
    }
}

/// Runs `f` on the datapath, or fails when it is shut down.
fn with_dp<T>(
    s: &Server,
    f: impl FnOnce(&Datapath<Mbuf>) -> Result<T, String>,
) -> Result<T, String> {
    let g = s.switch.datapath.lock();
    match g.as_ref() {
        Some(dp) => f(dp),
        None => Err("the datapath is shut down".into()),
    }
}

/// Runs a flow-syntax parse with the bridge's port names resolvable
/// (`in_port=p1`, `output:p2`, as ovs-ofctl accepts them).
pub(super) fn with_names<R>(s: &Server, parse: impl FnOnce() -> R) -> R {
    let names = port_names(s)
        .into_iter()
        .map(|(ofport, name)| (name, ofport));
    ofproto::parse::with_port_names(names, parse)
}

/// OpenFlow number → port name.
pub(super) fn port_names(s: &Server) -> BTreeMap<u32, String> {
    let ports = s.switch.ports.lock();
    let mut names: BTreeMap<u32, String> = ports
        .by_ofport
        .values()
        .map(|p| (p.ofport, p.name.clone()))
        .collect();
    names.extend(ports.tunnels.iter().map(|(o, n)| (*o, n.clone())));
    names
}

fn port_info(p: &SwitchPort) -> json::PortInfo {
    let link = p.eth.link().ok().map(|l| json::Link {
        up: l.up,
        speed_mbps: l.speed_mbps,
        full_duplex: l.full_duplex,
        autoneg: l.autoneg,
    });
    let stats = p.eth.stats().ok().map(|s| json::PortCounters {
        rx_packets: s.ipackets,
        tx_packets: s.opackets,
        rx_bytes: s.ibytes,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
        rx_oversized: s.rx_oversized,
        tx_full: s.tx_full,
        tx_link_down: s.tx_link_down,
        drops: s.total_drops(),
    });
    let vhost = p.vhost.as_ref().map(|v| json::VhostInfo {
        mode: v.mode.name(),
        socket: v.socket.display().to_string(),
        connected: link.as_ref().is_some_and(|l| l.up),
        queues: v.queues,
        queues_enabled: p
            .vhost_queues
            .as_ref()
            .map_or(0, |q| q.tx_enabled().count_ones()),
        xstats: p.eth.xstats().unwrap_or_default().into_iter().collect(),
    });
    json::PortInfo {
        name: p.name.clone(),
        ofport: p.ofport,
        device: p.device.clone(),
        ethdev: p.eth.name().to_string(),
        driver: p.eth.driver_name().to_string(),
        n_rxq: p.eth.n_rxq(),
        n_txq: p.eth.n_txq(),
        rxq_pmds: p.rxq_pmds.clone(),
        link,
        stats,
        vhost,
    }
}

fn counters(d: &PmdStatsSnapshot) -> json::PmdCounters {
    json::PmdCounters(*d)
}

fn us(cycles: u64, n: u64, hz: u64) -> f64 {
    if n == 0 || hz == 0 {
        0.0
    } else {
        cycles as f64 / n as f64 / hz as f64 * 1e6
    }
}

fn derived(d: &PmdStatsSnapshot, secs: f64, hz: u64) -> json::PmdDerived {
    use format::{pct, ratio};
    let total = d.busy_cycles + d.idle_cycles;
    let kpps = |n: u64| {
        if secs > 0.0 {
            n as f64 / secs / 1000.0
        } else {
            0.0
        }
    };
    json::PmdDerived {
        avg_passes_per_packet: ratio(d.rx_packets + d.recirculations, d.rx_packets),
        avg_subtable_lookups_per_megaflow_hit: ratio(d.subtable_lookups, d.megaflow_hits),
        avg_packets_per_output_batch: ratio(d.tx_packets, d.tx_batches),
        idle_cycles_pct: pct(d.idle_cycles, total),
        processing_cycles_pct: pct(d.busy_cycles, total),
        avg_cycles_per_packet: ratio(total, d.rx_packets),
        avg_processing_cycles_per_packet: ratio(d.busy_cycles, d.rx_packets),
        us_per_upcall: us(d.upcall_cycles, d.upcalls, hz),
        us_per_iteration: us(total, d.iterations, hz),
        rx_kpps: kpps(d.rx_packets),
        tx_kpps: kpps(d.tx_packets),
    }
}

/// The text of a flow file: `--inline NAME LINE...` (from vportctl) or a
/// path the daemon reads itself.
pub(super) fn flow_text(cmd: &str, args: &[String]) -> Result<(String, String), String> {
    match args {
        [flag, name, lines @ ..] if flag == INLINE => Ok((lines.join("\n"), name.clone())),
        [path] if path == "-" => Err(format!(
            "{cmd}: '-' (standard input) only works through vportctl"
        )),
        [path] => std::fs::read_to_string(path)
            .map(|t| (t, path.clone()))
            .map_err(|e| format!("{cmd}: {path}: {e}")),
        _ => Err(format!(
            "{cmd}: expected one FILE argument (or - for stdin)"
        )),
    }
}

fn take_flag(args: &[String], flag: &str) -> (bool, Vec<String>) {
    let present = args.iter().any(|a| a == flag);
    (
        present,
        args.iter().filter(|a| *a != flag).cloned().collect(),
    )
}

/// Refuses rules that name a group the table lacks, as OVS does
/// (`OFPBAC_BAD_OUT_GROUP`); with a file, the error names its line.
fn check_groups(
    s: &Server,
    cmd: &str,
    rules: &[ofproto::Rule],
    file: Option<(&str, &str)>,
) -> Result<(), String> {
    let tables = s.switch.bridge.tables();
    for (i, r) in rules.iter().enumerate() {
        if let Some(g) = ofproto::group::missing_groups(r, tables.groups()) {
            let at = match file {
                // Rules are in file order; find the line that made rule i.
                Some((name, text)) => match flow_line(text, i) {
                    Some(n) => format!("{name}:{n}: "),
                    None => format!("{name}: "),
                },
                None => String::new(),
            };
            return Err(format!(
                "{cmd}: {at}{}: group {g} does not exist (OFPBAC_BAD_OUT_GROUP)",
                format_rule(r)
            ));
        }
    }
    Ok(())
}

/// The 1-based line number of the `index`th flow of a flow file (blank
/// lines and comments hold none).
fn flow_line(text: &str, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.split('#').next().unwrap_or("");
            !t.bytes().all(|c| c.is_ascii_whitespace())
        })
        .nth(index)
        .map(|(n, _)| n + 1)
}

fn rules_total(s: &Server) -> usize {
    s.switch.bridge.tables().len()
}

// ---------------------------------------------------------------------
// Commands.

fn show(s: &Server) -> CmdResult {
    let d = show_data(s)?;
    out(format::show(&d), &d)
}

/// What `show` reports (also `dpctl/show` in OVS's layout).
pub fn show_data(s: &Server) -> Result<json::Show, String> {
    let sw = &s.switch;
    let ports: Vec<json::PortInfo> = sw.ports.lock().by_ofport.values().map(port_info).collect();
    let names: BTreeMap<u32, String> = ports.iter().map(|p| (p.ofport, p.name.clone())).collect();
    let (pmds, megaflows, flow_limit) = with_dp(s, |dp| {
        let pmds = dp
            .pmds
            .iter()
            .map(|p| json::PmdInfo {
                index: p.index,
                core: p.core,
                thread: thread_name(p.index, p.core),
                rxqs: p
                    .rxqs
                    .lock()
                    .iter()
                    .map(|r| RxqRef {
                        port: names
                            .get(&r.port)
                            .cloned()
                            .unwrap_or_else(|| r.port.to_string()),
                        ofport: r.port,
                        queue: r.queue,
                    })
                    .collect(),
            })
            .collect();
        Ok((
            pmds,
            dp.limits.n_megaflows.load(Relaxed),
            dp.limits.flow_limit.load(Relaxed),
        ))
    })?;
    let d = json::Show {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: sw.started.elapsed().as_secs_f64(),
        control_socket: s.ctl_path.display().to_string(),
        ports,
        pmds,
        megaflows,
        flow_limit,
        openflow_rules: rules_total(s),
        mbuf_pool: json::MbufPool {
            capacity: sw.pool.capacity(),
            in_use: sw.pool.in_use(),
        },
        controllers: crate::ofchan::show(&sw.controllers),
        tunnels: tunnel_infos(s),
    };
    Ok(d)
}

fn tunnel_infos(s: &Server) -> Vec<json::TunnelInfo> {
    let cfg = s.switch.bridge.tunnels().config();
    cfg.ports
        .iter()
        .map(|(ofport, t)| json::TunnelInfo {
            name: t.name.clone(),
            ofport: *ofport,
            kind: t.kind.name().into(),
            remote_ip: t
                .remote_ip
                .map_or_else(|| "flow".into(), flowcache::text::ipv4),
            key: match t.key {
                None => Some("flow".into()),
                Some(_) if t.kind == flowcache::tunnel::TunnelKind::Gre && !t.gre_key => None,
                Some(k) => Some(k.to_string()),
            },
            dst_port: t.dst_port,
        })
        .collect()
}

/// `NAME DEVICE[,ofport=N][,rxq=N]` or `NAME=DEVICE...`. Options other than
/// ofport/rxq stay in DEVICE (vdev devargs).
fn parse_add_port(args: &[String]) -> Result<PortSpec, String> {
    let usage = "usage: add-port NAME DEVICE[,ofport=N][,rxq=N]";
    let (name, dev) = match args {
        [name, dev] => (name.clone(), dev.clone()),
        [one] => match one.split_once('=') {
            Some((n, d)) => (n.to_string(), d.to_string()),
            None => return Err(format!("add-port: missing DEVICE ({usage})")),
        },
        _ => return Err(format!("add-port: {usage}")),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(format!(
            "add-port: bad port name {name:?} (letters, digits, '_', '-', '.')"
        ));
    }
    let mut parts = dev.split(',');
    let device = parts.next().unwrap_or("").trim().to_string();
    if device.is_empty() {
        return Err(format!("add-port: missing DEVICE ({usage})"));
    }
    if flowcache::tunnel::TunnelKind::from_name(&device).is_some() {
        return Err(format!(
            "add-port: {device}: tunnel ports are configured with --port at start-up (not at run time yet)"
        ));
    }
    let mut spec = PortSpec {
        name,
        device,
        ofport: None,
        rxq: None,
        mtu: None,
        vlan: Default::default(),
        tunnel: None,
    };
    let mut devargs: Vec<&str> = Vec::new();
    for opt in parts {
        match opt.split_once('=') {
            Some(("ofport", v)) => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| format!("add-port: ofport {v:?} is not a number"))?;
                if n == 0 || n >= 0xff00 {
                    return Err(format!("add-port: ofport {n} out of range 1..65279"));
                }
                spec.ofport = Some(n);
            }
            Some(("rxq", v)) => {
                let n: u16 = v
                    .parse()
                    .map_err(|_| format!("add-port: rxq {v:?} is not a number"))?;
                if n == 0 {
                    return Err("add-port: rxq must be at least 1".into());
                }
                spec.rxq = Some(n);
            }
            Some(("mtu", v)) => {
                let n: u16 = v
                    .parse()
                    .map_err(|_| format!("add-port: mtu {v:?} is not a number"))?;
                if !(crate::args::MIN_MTU..=crate::args::MAX_MTU).contains(&n) {
                    return Err(format!(
                        "add-port: mtu {n} out of range {}..{}",
                        crate::args::MIN_MTU,
                        crate::args::MAX_MTU
                    ));
                }
                spec.mtu = Some(n);
            }
            _ => devargs.push(opt),
        }
    }
    if !devargs.is_empty() {
        spec.device = format!("{},{}", spec.device, devargs.join(","));
    }
    Ok(spec)
}

fn add_port(s: &Server, args: &[String]) -> CmdResult {
    let spec = parse_add_port(args)?;
    let p = add_port_spec(s, spec)?;
    out(format::port_added(&p), &p)
}

/// Opens, configures and starts the port `spec` describes, then polls it
/// (`add-port`, and the ports of the OVSDB configuration).
pub fn add_port_spec(s: &Server, mut spec: PortSpec) -> Result<json::PortInfo, String> {
    let sw = &s.switch;
    let _edit = s.edit.lock();
    let mut ports = sw.ports.lock();
    if ports.by_name(&spec.name).is_some() {
        return Err(format!("add-port: a port named {:?} exists", spec.name));
    }
    let ofport = match spec.ofport {
        Some(n) => {
            if let Some(p) = ports.by_ofport.get(&n) {
                return Err(format!(
                    "add-port: OpenFlow port {n} is in use by port {}",
                    p.name
                ));
            }
            n
        }
        None => (1..0xff00)
            .find(|n| !ports.by_ofport.contains_key(n))
            .ok_or("add-port: no free OpenFlow port number")?,
    };
    spec.ofport = Some(ofport);
    {
        let mut dpg = sw.datapath.lock();
        let dp = dpg.as_mut().ok_or("the datapath is shut down")?;
        ports
            .add(&spec, &sw.pool, dp, &sw.bridge)
            .map_err(|e| format!("add-port: {e:#}"))?;
        // Its tx queues are in every PMD; now poll its rx queues.
        ports.start_polling(dp);
    }
    ports
        .by_ofport
        .get(&ofport)
        .map(port_info)
        .ok_or_else(|| "add-port: the port vanished".to_string())
}

fn del_port(s: &Server, args: &[String]) -> CmdResult {
    let [name] = args else {
        return Err("del-port: usage: del-port NAME".into());
    };
    let ofport = del_port_named(s, name)?;
    let d = json::PortRemoved {
        name: name.clone(),
        ofport,
    };
    out(
        format!("port {name} (OpenFlow port {ofport}) removed\n"),
        &d,
    )
}

/// Removes port `name`; returns its OpenFlow number.
pub fn del_port_named(s: &Server, name: &str) -> Result<u32, String> {
    let sw = &s.switch;
    let _edit = s.edit.lock();
    let mut ports = sw.ports.lock();
    let ofport = ports
        .by_name(name)
        .map(|p| p.ofport)
        .ok_or_else(|| format!("del-port: no port named {name:?}"))?;
    let dpg = sw.datapath.lock();
    let dp = dpg.as_ref().ok_or("the datapath is shut down")?;
    ports.remove(ofport, dp, &sw.bridge);
    Ok(ofport)
}

fn add_flow(s: &Server, args: &[String]) -> CmdResult {
    if args.is_empty() {
        return Err("add-flow: usage: add-flow FLOW (e.g. in_port=1,actions=output:2)".into());
    }
    let line = args.join(" ");
    let rule = with_names(s, || parse_flow(&line)).map_err(|e| format!("add-flow: {e}"))?;
    let _edit = s.edit.lock();
    check_groups(s, "add-flow", std::slice::from_ref(&rule), None)?;
    s.switch.bridge.add_rules(vec![rule]);
    let d = json::FlowChange {
        op: "add",
        count: 1,
        rules_total: rules_total(s),
    };
    out(format::flow_change(&d), &d)
}

fn add_flows(s: &Server, args: &[String], replace: bool) -> CmdResult {
    let cmd = if replace {
        "replace-flows"
    } else {
        "add-flows"
    };
    let (text, name) = flow_text(cmd, args)?;
    let rules = with_names(s, || parse_flows(&text, &name)).map_err(|e| format!("{cmd}: {e}"))?;
    let count = rules.len();
    let _edit = s.edit.lock();
    check_groups(s, cmd, &rules, Some((&name, &text)))?;
    if replace {
        s.switch
            .bridge
            .replace_rules(rules)
            .map_err(|e| format!("{cmd}: {e}"))?;
    } else {
        s.switch.bridge.add_rules(rules);
    }
    let d = json::FlowChange {
        op: if replace { "replace" } else { "add" },
        count,
        rules_total: rules_total(s),
    };
    out(format::flow_change(&d), &d)
}

fn mod_flows(s: &Server, args: &[String]) -> CmdResult {
    let (strict, rest) = take_flag(args, "--strict");
    if rest.is_empty() {
        return Err("mod-flows: usage: mod-flows [--strict] FLOW".into());
    }
    let line = rest.join(" ");
    let rule = with_names(s, || parse_flow(&line)).map_err(|e| format!("mod-flows: {e}"))?;
    let mpart = line
        .find("action")
        .map_or(line.as_str(), |p| &line[..p])
        .trim_end_matches(|c: char| c == ',' || c.is_whitespace());
    let mut filter =
        with_names(s, || parse_filter(mpart)).map_err(|e| format!("mod-flows: {e}"))?;
    if strict {
        filter.priority = Some(rule.priority);
    } else {
        filter.priority = None;
    }
    let _edit = s.edit.lock();
    check_groups(s, "mod-flows", std::slice::from_ref(&rule), None)?;
    let n = s
        .switch
        .bridge
        .modify_rules(&filter, strict, &rule.instructions);
    let d = json::FlowChange {
        op: "modify",
        count: n,
        rules_total: rules_total(s),
    };
    out(format::flow_change(&d), &d)
}

fn del_flows(s: &Server, args: &[String]) -> CmdResult {
    let (strict, rest) = take_flag(args, "--strict");
    let line = rest.join(" ");
    let filter = with_names(s, || parse_filter(&line)).map_err(|e| format!("del-flows: {e}"))?;
    let _edit = s.edit.lock();
    let n = s.switch.bridge.delete_rules(&filter, strict);
    let d = json::FlowChange {
        op: "delete",
        count: n,
        rules_total: rules_total(s),
    };
    out(format::flow_change(&d), &d)
}

fn dump_flows(s: &Server, args: &[String]) -> CmdResult {
    let line = args.join(" ");
    let filter = with_names(s, || parse_filter(&line)).map_err(|e| format!("dump-flows: {e}"))?;
    let tables = s.switch.bridge.tables();
    let now = Instant::now();
    let flows = tables
        .iter()
        .filter(|e| filter_selects(&filter, &e.rule, false))
        .map(|e| {
            let r = &e.rule;
            let duration = now
                .saturating_duration_since(e.stats.created())
                .as_secs_f64();
            let idle = now
                .saturating_duration_since(e.stats.last_used())
                .as_secs_f64();
            let bare = ofproto::Rule {
                cookie: 0,
                table: 0,
                idle_timeout: 0,
                hard_timeout: 0,
                ..r.clone()
            };
            let mut line = format!(
                "cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={}, ",
                r.cookie,
                duration,
                r.table,
                e.stats.n_packets(),
                e.stats.n_bytes()
            );
            if r.idle_timeout != 0 {
                line.push_str(&format!("idle_timeout={}, ", r.idle_timeout));
            }
            if r.hard_timeout != 0 {
                line.push_str(&format!("hard_timeout={}, ", r.hard_timeout));
            }
            line.push_str(&format!("idle_age={}, ", idle as u64));
            line.push_str(&format_rule(&bare));
            json::FlowEntry {
                table: r.table,
                priority: r.priority,
                cookie: r.cookie,
                duration_s: duration,
                idle_age_s: idle,
                n_packets: e.stats.n_packets(),
                n_bytes: e.stats.n_bytes(),
                idle_timeout: r.idle_timeout,
                hard_timeout: r.hard_timeout,
                matches: format_match(&r.matches),
                actions: ofproto::parse::format_instructions(&r.instructions, &r.matches),
                line,
            }
        })
        .collect();
    let d = json::DumpFlows { flows };
    out(format::dump_flows(&d), &d)
}

fn megaflows(s: &Server) -> Result<Vec<(Arc<Megaflow>, usize)>, String> {
    with_dp(s, |dp| {
        let reg = dp.registry.lock();
        let mut v: Vec<(Arc<Megaflow>, usize)> = reg
            .flows
            .values()
            .filter(|e| !e.megaflow.is_dead())
            .map(|e| (e.megaflow.clone(), e.pmd))
            .collect();
        v.sort_by_key(|(m, _)| m.id);
        Ok(v)
    })
}

fn dump_megaflows(s: &Server) -> CmdResult {
    let now = clock::now_ms();
    let megaflows = megaflows(s)?
        .iter()
        .map(|(m, pmd)| {
            let st = m.stats.snapshot();
            json::MegaflowInfo {
                id: m.id,
                pmd: *pmd,
                key: format::odp_key(m.key(), m.mask()),
                matches: format_match(&Match {
                    value: *m.key(),
                    mask: *m.mask(),
                }),
                actions: flowcache::actions::format_actions(&m.actions),
                packets: st.packets,
                bytes: st.bytes,
                used_ms_ago: (st.packets > 0).then(|| now.saturating_sub(st.used)),
                age_ms: now.saturating_sub(m.created),
                tcp_flags: st.tcp_flags,
            }
        })
        .collect();
    let d = json::DumpMegaflows { megaflows };
    out(format::dump_megaflows(&d), &d)
}

fn pmd_stats(s: &Server) -> Result<json::PmdStats, String> {
    let hz = clock::tsc_hz();
    let base = s.baseline.lock();
    let secs = base.at.elapsed().as_secs_f64();
    let pmds = with_dp(s, |dp| {
        Ok(dp
            .pmds
            .iter()
            .map(|p| {
                let cur = p.stats.snapshot();
                let b = base.snaps.get(p.index).copied().unwrap_or_default();
                let d = cur.since(&b);
                json::PmdStatsEntry {
                    index: p.index,
                    core: p.core,
                    thread: thread_name(p.index, p.core),
                    counters: counters(&d),
                    derived: derived(&d, secs, hz),
                }
            })
            .collect())
    })?;
    Ok(json::PmdStats {
        duration_s: secs,
        tsc_hz: hz,
        pmds,
    })
}

fn pmd_stats_clear(s: &Server) -> CmdResult {
    let snaps: Vec<PmdStatsSnapshot> = with_dp(s, |dp| {
        let mut v = vec![PmdStatsSnapshot::default(); dp.pmds.len()];
        for p in &dp.pmds {
            if let Some(slot) = v.get_mut(p.index) {
                *slot = p.stats.snapshot();
            }
        }
        Ok(v)
    })?;
    let n = snaps.len();
    {
        let mut b = s.baseline.lock();
        b.snaps = snaps;
        b.at = Instant::now();
    }
    let d = json::Cleared { pmds: n };
    out(format!("statistics of {n} PMD thread(s) cleared\n"), &d)
}

fn rxq_data(s: &Server) -> Result<json::RxqShow, String> {
    let names = port_names(s);
    with_dp(s, |dp| {
        let pmds = dp
            .pmds
            .iter()
            .map(|p| {
                let snap = p.stats.snapshot();
                let total = snap.busy_cycles + snap.idle_cycles;
                let qs: Vec<(u32, u16, u64)> = p
                    .rxqs
                    .lock()
                    .iter()
                    .map(|r| (r.port, r.queue, r.cycles.load(Relaxed)))
                    .collect();
                let sum: u64 = qs.iter().map(|q| q.2).sum();
                json::RxqPmd {
                    index: p.index,
                    core: p.core,
                    thread: thread_name(p.index, p.core),
                    isolated: false,
                    total_cycles: total,
                    rxqs: qs
                        .iter()
                        .map(|(port, queue, cycles)| json::RxqLoad {
                            port: names.get(port).cloned().unwrap_or_else(|| port.to_string()),
                            ofport: *port,
                            queue: *queue,
                            cycles: *cycles,
                            share_pct: format::pct(*cycles, sum),
                            usage_pct: format::pct(*cycles, total).min(100.0),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(json::RxqShow {
            assignment: s.rxq_assign.lock().to_string(),
            pmds,
        })
    })
}

fn rxq_show(s: &Server) -> CmdResult {
    let d = rxq_data(s)?;
    out(format::rxq_show(&d), &d)
}

fn rebalance(s: &Server) -> CmdResult {
    let d = rxq_data(s)?;
    let n = d.pmds.len();
    let policy = *s.rxq_assign.lock();
    // Every queue in port and queue order (the round-robin order).
    let mut queues: Vec<(usize, &json::RxqLoad)> = d
        .pmds
        .iter()
        .flat_map(|p| p.rxqs.iter().map(move |q| (p.index, q)))
        .collect();
    queues.sort_by_key(|(_, q)| (q.ofport, q.queue));
    let mut moves = Vec::new();
    let reason = if n <= 1 {
        format!("{n} PMD thread: every rx queue is on it; nothing to move")
    } else if queues.is_empty() {
        "no rx queues; nothing to move".to_string()
    } else {
        let loads: Vec<rxq_assign::QueueLoad> = queues
            .iter()
            .enumerate()
            .map(|(order, (_, q))| rxq_assign::QueueLoad {
                order,
                cycles: q.cycles,
            })
            .collect();
        let plan = rxq_assign::plan(policy, &loads, n);
        for ((from, q), to) in queues.iter().zip(plan) {
            if to != *from {
                moves.push(json::RxqMove {
                    port: q.port.clone(),
                    ofport: q.ofport,
                    queue: q.queue,
                    cycles: q.cycles,
                    from_pmd: *from,
                    to_pmd: to,
                });
            }
        }
        if moves.is_empty() {
            format!("the assignment is already what pmd-rxq-assign={policy} gives; nothing to move")
        } else {
            format!(
                "{} rx queue(s) moved (pmd-rxq-assign={policy}):",
                moves.len()
            )
        }
    };
    with_dp(s, |dp| {
        for m in &moves {
            dp.move_rxq(m.ofport, m.queue, m.to_pmd).map_err(|e| {
                format!("pmd-rxq-rebalance: port {} queue {}: {e}", m.port, m.queue)
            })?;
        }
        Ok(())
    })?;
    let r = json::Rebalance {
        applied: !moves.is_empty(),
        reason,
        proposed_moves: moves,
    };
    out(format::rebalance(&r), &r)
}

fn parse_hex(h: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<(usize, char)> = h
        .chars()
        .enumerate()
        .filter(|(_, c)| !matches!(c, ':' | '.' | '-' | ' '))
        .collect();
    if let Some((i, c)) = digits.iter().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "trace: --packet: col {}: {c:?} is not a hex digit",
            i + 1
        ));
    }
    if digits.len() & 1 == 1 {
        return Err("trace: --packet: odd number of hex digits".into());
    }
    Ok(digits
        .chunks(2)
        .map(|p| {
            let hi = p[0].1.to_digit(16).unwrap_or(0);
            let lo = p[1].1.to_digit(16).unwrap_or(0);
            (hi * 16 + lo) as u8
        })
        .collect())
}

fn trace_data(s: &Server, key: &FlowKey, flow: String, id: Option<u64>) -> json::Trace {
    let o: XlateOutput = s.switch.bridge.trace(key);
    let mf_value = key.masked(&o.wc);
    let flow = match o.trace.first().and_then(|l| l.strip_prefix("Flow: ")) {
        Some(f) if flow.is_empty() => f.to_string(),
        _ => flow,
    };
    json::Trace {
        megaflow_id: id,
        flow,
        in_port: key.in_port,
        trace: o.trace.clone(),
        actions: flowcache::actions::format_actions(&o.actions),
        drop_reason: o.drop_reason.map(|r| r.name().to_string()),
        megaflow_key: format::odp_key(&mf_value, &o.wc),
        megaflow_match: format_match(&Match {
            value: mf_value,
            mask: o.wc,
        }),
        rules: o
            .rules
            .iter()
            .map(|e| json::RuleRef {
                table: e.rule.table,
                priority: e.rule.priority,
                cookie: e.rule.cookie,
                n_packets: e.stats.n_packets(),
                n_bytes: e.stats.n_bytes(),
                rule: format_rule(&e.rule),
            })
            .collect(),
    }
}

fn trace(s: &Server, args: &[String]) -> CmdResult {
    let usage =
        "usage: trace FLOW (e.g. in_port=1,udp,nw_dst=10.0.0.1) | trace --packet HEX in_port=N";
    let (key, flow) = if let Some(i) = args.iter().position(|a| a == "--packet") {
        let hex = args
            .get(i + 1)
            .ok_or_else(|| format!("trace: --packet needs the frame in hex ({usage})"))?;
        let rest: Vec<String> = args
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i && *j != i + 1)
            .map(|(_, a)| a.clone())
            .collect();
        let (m, _, _) = parse_match(&rest.join(" ")).map_err(|e| format!("trace: {e}"))?;
        if m.mask.in_port == 0 {
            return Err(format!(
                "trace: in_port=N is required with --packet ({usage})"
            ));
        }
        let frame = parse_hex(hex)?;
        let meta = PacketMeta {
            in_port: m.value.in_port,
            ..PacketMeta::default()
        };
        let mut key = FlowKey::default();
        extract(&frame, &meta, &mut key).map_err(|e| format!("trace: --packet: {e}"))?;
        (key, String::new())
    } else {
        if args.is_empty() {
            return Err(format!("trace: {usage}"));
        }
        let line = args.join(" ");
        let (m, _, _) = parse_match(&line).map_err(|e| format!("trace: {e}"))?;
        if m.mask.in_port == 0 {
            return Err(format!("trace: in_port is required ({usage})"));
        }
        (m.value, line)
    };
    let d = trace_data(s, &key, flow, None);
    out(format::trace(&d), &d)
}

fn detrace(s: &Server, args: &[String]) -> CmdResult {
    let [arg] = args else {
        return Err("detrace: usage: detrace MEGAFLOW-ID (see dump-megaflows)".into());
    };
    let num = arg
        .strip_prefix("id:")
        .or_else(|| arg.strip_prefix("ufid:"))
        .unwrap_or(arg);
    let id: u64 = num
        .parse()
        .map_err(|_| format!("detrace: {arg:?} is not a megaflow id (a number)"))?;
    let mf = with_dp(s, |dp| {
        dp.registry
            .lock()
            .flows
            .get(&id)
            .map(|e| e.megaflow.clone())
            .ok_or_else(|| format!("detrace: no megaflow with id {id}"))
    })?;
    let key = *mf.key();
    let flow = format::odp_key(mf.key(), mf.mask());
    let d = trace_data(s, &key, flow, Some(id));
    out(format::trace(&d), &d)
}

/// OVS `revalidator/wait`: one full revalidation round, then a barrier on
/// every PMD. When it returns, no packet is forwarded by a megaflow that
/// disagrees with the rules as they were when it was asked.
fn revalidator_wait(s: &Server) -> CmdResult {
    let started = Instant::now();
    with_dp(s, |dp| {
        dp.revalidate_now();
        Ok(())
    })?;
    let d = json::RevalidatorWait {
        elapsed_us: started.elapsed().as_micros() as u64,
    };
    out(String::new(), &d)
}

fn upcall_show(s: &Server) -> CmdResult {
    let hz = clock::tsc_hz();
    let emc = *s.emc_insert_inv_prob.lock();
    let d = with_dp(s, |dp| {
        let (revalidations, expired, revalidated_away) = {
            let r = dp.registry.lock();
            (r.revalidations, r.expired, r.revalidated_away)
        };
        Ok(json::UpcallShow {
            megaflows: dp.limits.n_megaflows.load(Relaxed),
            flow_limit: dp.limits.flow_limit.load(Relaxed),
            max_idle_ms: dp.limits.max_idle_ms.load(Relaxed),
            emc_insert_inv_prob: emc,
            smc_enabled: *s.smc_enabled.lock(),
            revalidations,
            expired,
            revalidated_away,
            userspace: flowcache::actions::UserCookieKind::ALL
                .iter()
                .map(|k| (k.name().to_string(), dp.userspace_stats.get(*k)))
                .collect(),
            pmds: dp
                .pmds
                .iter()
                .map(|p| {
                    let st = p.stats.snapshot();
                    json::UpcallPmd {
                        index: p.index,
                        core: p.core,
                        thread: thread_name(p.index, p.core),
                        upcalls: st.upcalls,
                        lost_upcalls: st.lost_upcalls,
                        pending_upcalls: p.stats.pending_upcalls.get(),
                        megaflows_installed: st.megaflows_installed,
                        flow_limit_hits: st.flow_limit_hits,
                        us_per_upcall: us(st.upcall_cycles, st.upcalls, hz),
                    }
                })
                .collect(),
        })
    })?;
    out(format::upcall_show(&d), &d)
}

/// The settings whose values are words, not numbers: `Some((new,
/// previous))` when `key` is one of them.
fn set_text(s: &Server, key: &str, val: &str) -> Option<Result<(String, String), String>> {
    match key {
        "smc-enable" => Some(set_smc_enable(s, val)),
        "pmd-rxq-assign" => Some(set_rxq_assign(s, val)),
        _ => None,
    }
}

/// `set smc-enable true|false`: (new, previous).
fn set_smc_enable(s: &Server, val: &str) -> Result<(String, String), String> {
    let on = match val {
        "true" => true,
        "false" => false,
        other => return Err(format!("set smc-enable: {other:?} is not true or false")),
    };
    with_dp(s, |dp| {
        dp.set_smc_enabled(on);
        Ok(())
    })?;
    let was = std::mem::replace(&mut *s.smc_enabled.lock(), on);
    Ok((on.to_string(), was.to_string()))
}

/// `set pmd-rxq-assign POLICY`: (new, previous). OVS reassigns the queues
/// when the policy changes; so does this.
fn set_rxq_assign(s: &Server, val: &str) -> Result<(String, String), String> {
    let policy: rxq_assign::RxqAssign = val.parse()?;
    let was = std::mem::replace(&mut *s.rxq_assign.lock(), policy);
    if was != policy {
        rebalance(s)?;
    }
    Ok((policy.to_string(), was.to_string()))
}

fn set(s: &Server, args: &[String]) -> CmdResult {
    let usage = "usage: set flow-limit N | set max-idle MS | set emc-insert-inv-prob N | set mac-aging-time S | set mac-table-size N | set smc-enable true|false | set pmd-rxq-assign roundrobin|cycles|group";
    let (key, val) = match args {
        [k, v] => (k.clone(), v.clone()),
        [kv] if kv.contains('=') => {
            let (k, v) = kv.split_once('=').unwrap_or_default();
            (k.to_string(), v.to_string())
        }
        _ => return Err(format!("set: {usage}")),
    };
    if let Some(r) = set_text(s, &key, &val) {
        let (value, previous) = r?;
        let d = json::SetText {
            key: key.clone(),
            value: value.clone(),
            previous: previous.clone(),
        };
        return out(format!("{key} = {value} (was {previous})\n"), &d);
    }
    let n: u64 = val
        .parse()
        .map_err(|_| format!("set {key}: {val:?} is not a non-negative integer"))?;
    if let Some(r) = super::fdb::set(s, &key, n) {
        let previous = r?;
        let d = json::SetValue {
            key: key.clone(),
            value: n,
            previous,
        };
        let prev = previous.map_or(String::new(), |p| format!(" (was {p})"));
        return out(format!("{key} = {n}{prev}\n"), &d);
    }
    let previous = with_dp(s, |dp| match key.as_str() {
        "flow-limit" => {
            // OVS's flow limit is an unsigned int; 0 would refuse every
            // megaflow.
            if n == 0 || n > u64::from(u32::MAX) {
                return Err(format!(
                    "set flow-limit: {n} is out of range (1 to {})",
                    u32::MAX
                ));
            }
            let n = n as usize;
            Ok(Some(dp.limits.flow_limit.swap(n, Relaxed) as u64))
        }
        "max-idle" => {
            if n < 100 {
                return Err(format!(
                    "set max-idle: {n} ms is below the minimum of 100 ms"
                ));
            }
            if n > u64::from(u32::MAX) {
                return Err(format!(
                    "set max-idle: {n} ms is above OVS's maximum of {} ms",
                    u32::MAX
                ));
            }
            Ok(Some(dp.limits.max_idle_ms.swap(n, Relaxed)))
        }
        "emc-insert-inv-prob" => {
            let p = u32::try_from(n)
                .map_err(|_| format!("set emc-insert-inv-prob: {n} is above {}", u32::MAX))?;
            dp.set_emc_insert_inv_prob(p);
            Ok(s.emc_insert_inv_prob.lock().replace(p).map(u64::from))
        }
        other => Err(format!("set: unknown setting {other:?} ({usage})")),
    })?;
    let d = json::SetValue {
        key: key.clone(),
        value: n,
        previous,
    };
    let prev = previous.map_or(String::new(), |p| format!(" (was {p})"));
    out(format!("{key} = {n}{prev}\n"), &d)
}

// ---------------------------------------------------------------------
// Packet capture.

fn capture_json(c: &CaptureInfo, names: &BTreeMap<u32, String>) -> json::Capture {
    json::Capture {
        port: names.get(&c.port).cloned(),
        ofport: c.port,
        file: c.path.display().to_string(),
        count: c.limit,
        written: c.written(),
        written_rx: c.written_rx,
        written_tx: c.written_tx,
        lost: c.lost,
        duration_s: c.duration.as_secs_f64(),
        error: c.error.clone(),
    }
}

/// `capture PORT FILE [--count N] [--force]`: the file, the packet limit,
/// and whether an existing file may be overwritten.
type CaptureArgs = (String, PathBuf, Option<u64>, bool);

fn parse_capture(args: &[String]) -> Result<CaptureArgs, String> {
    let usage = "usage: capture PORT FILE [--count N] [--force]";
    let mut words = Vec::new();
    let mut count = None;
    let mut force = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--force" {
            force = true;
            continue;
        }
        let v = if a == "--count" {
            Some(
                it.next()
                    .ok_or_else(|| format!("capture: --count needs a number ({usage})"))?
                    .as_str(),
            )
        } else {
            a.strip_prefix("--count=")
        };
        match v {
            Some(v) => {
                let n = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("capture: --count {v:?}: not a positive integer"))?;
                count = Some(n);
            }
            None if a.starts_with("--") => {
                return Err(format!("capture: unknown option {a:?} ({usage})"))
            }
            None => words.push(a.clone()),
        }
    }
    let [port, file] = &words[..] else {
        return Err(format!("capture: {usage}"));
    };
    let file = PathBuf::from(file);
    if !file.is_absolute() {
        return Err(format!(
            "capture: {}: the file must be an absolute path (the daemon writes it; vportctl makes paths absolute)",
            file.display()
        ));
    }
    Ok((port.clone(), file, count, force))
}

fn ofport_of(s: &Server, cmd: &str, name: &str) -> Result<u32, String> {
    s.switch
        .ports
        .lock()
        .by_name(name)
        .map(|p| p.ofport)
        .ok_or_else(|| format!("{cmd}: no port named {name:?}"))
}

fn capture(s: &Server, args: &[String]) -> CmdResult {
    let (name, file, count, force) = parse_capture(args)?;
    let ofport = ofport_of(s, "capture", &name)?;
    // Taken before the datapath lock (del-port takes the port lock first).
    let names = port_names(s);
    let info = with_dp(s, |dp| {
        dp.start_capture(ofport, &file, count, force)
            .map_err(|e| match e {
                CaptureError::Busy { path, .. } => format!(
                "capture: port {name} is already being captured to {} (capture-stop {name} first)",
                path.display()
            ),
                CaptureError::FileInUse { port, path } => format!(
                    "capture: {} is the file of the capture of port {}",
                    path.display(),
                    port_names(s)
                        .get(&port)
                        .map_or(port.to_string(), Clone::clone)
                ),
                e => format!("capture: {e}"),
            })
    })?;
    let d = capture_json(&info, &names);
    out(format::capture_started(&d), &d)
}

fn capture_show(s: &Server) -> CmdResult {
    let names = port_names(s);
    let caps = with_dp(s, |dp| Ok(dp.captures()))?;
    let d = json::CaptureShow {
        captures: caps.iter().map(|c| capture_json(c, &names)).collect(),
    };
    out(format::capture_show(&d), &d)
}

fn capture_stop(s: &Server, args: &[String]) -> CmdResult {
    let [name] = args else {
        return Err("capture-stop: usage: capture-stop PORT".into());
    };
    let ofport = ofport_of(s, "capture-stop", name)?;
    let info = with_dp(s, |dp| match dp.stop_capture(ofport) {
        Ok(i) => Ok(i),
        Err(CaptureError::NotRunning(_)) => Err(format!(
            "capture-stop: no capture is running on port {name}"
        )),
        Err(e) => Err(format!("capture-stop: {e}")),
    })?;
    let d = capture_json(&info, &port_names(s));
    out(format::capture_stopped(&d), &d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_splitting() {
        assert_eq!(
            split_request("add-flow 'in_port=1 actions=2'").unwrap(),
            vec!["add-flow", "in_port=1 actions=2"]
        );
        let e = split_request("add-flow 'in_port=1").unwrap_err();
        assert!(e.contains("col 10: unterminated quote"), "{e}");
        assert!(split_request("a \\").unwrap_err().contains("backslash"));
        assert!(split_request("").unwrap().is_empty());
    }

    #[test]
    fn add_port_args() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = parse_add_port(&a(&["p3", "net_pcap3,rx_pcap=/x.pcap,ofport=7,rxq=2"])).unwrap();
        assert_eq!(p.device, "net_pcap3,rx_pcap=/x.pcap");
        assert_eq!(p.ofport, Some(7));
        assert_eq!(p.rxq, Some(2));
        let p = parse_add_port(&a(&["p4=net_null4"])).unwrap();
        assert_eq!((p.name.as_str(), p.device.as_str()), ("p4", "net_null4"));
        assert!(parse_add_port(&a(&["p4"])).is_err());
        assert!(parse_add_port(&a(&["p/4", "x"])).is_err());
        assert!(parse_add_port(&a(&["p4", "x,ofport=0"])).is_err());
    }

    #[test]
    fn capture_args() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (port, file, n, force) =
            parse_capture(&a(&["p2", "/t/x.pcap", "--count", "50"])).unwrap();
        assert!(!force);
        assert!(parse_capture(&a(&["p2", "/x", "--force"])).unwrap().3);
        assert_eq!(
            (port.as_str(), file.to_str(), n),
            ("p2", Some("/t/x.pcap"), Some(50))
        );
        let (_, _, n, _) = parse_capture(&a(&["--count=7", "p2", "/x"])).unwrap();
        assert_eq!(n, Some(7));
        assert_eq!(parse_capture(&a(&["p2", "/x"])).unwrap().2, None);
        for bad in [
            &["p2"][..],
            &["p2", "x.pcap"],
            &["p2", "/x", "--count", "0"],
            &["p2", "/x", "--count", "-1"],
            &["p2", "/x", "--count"],
            &["p2", "/x", "/y"],
            &["p2", "/x", "--snaplen", "5"],
        ] {
            assert!(parse_capture(&a(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_frames() {
        assert_eq!(parse_hex("0a:0B ff").unwrap(), vec![0x0a, 0x0b, 0xff]);
        assert!(parse_hex("0g").unwrap_err().contains("col 2"));
        assert!(parse_hex("abc").is_err());
    }
}
