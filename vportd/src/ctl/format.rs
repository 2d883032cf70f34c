//! Human output: aligned tables and the `ovs-appctl`-style reports (the
//! datapath-style text of a megaflow key/mask is `flowcache::text`).

use super::json;
pub use flowcache::text::odp_key;
use std::fmt::Write as _;

/// A table with a header row; numeric columns are right-aligned.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders with two spaces between columns and no trailing blanks.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        let mut numeric = vec![true; n];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
                if !is_numeric(c) {
                    numeric[i] = false;
                }
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate().take(n) {
                if i > 0 {
                    l.push_str("  ");
                }
                let pad = width[i].saturating_sub(c.chars().count());
                if numeric[i] {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                } else {
                    l.push_str(c);
                    l.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.headers);
        for r in &self.rows {
            line(r);
        }
        out
    }
}

fn is_numeric(s: &str) -> bool {
    s == "-"
        || (!s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '%')))
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Percentage `100 * a / b`, 0 when `b` is 0.
pub fn pct(a: u64, b: u64) -> f64 {
    100.0 * ratio(a, b)
}

/// Seconds with millisecond precision (`1.234s`).
pub fn secs(s: f64) -> String {
    format!("{s:.3}s")
}

// ---------------------------------------------------------------------
// Reports.

/// The NUMA node of a core, from sysfs (0 when unknown).
pub fn numa_of(core: Option<usize>) -> u32 {
    let Some(c) = core else { return 0 };
    let dir = format!("/sys/devices/system/cpu/cpu{c}");
    std::fs::read_dir(dir)
        .ok()
        .and_then(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("node"))
                        .and_then(|n| n.parse().ok())
                })
                .next()
        })
        .unwrap_or(0)
}

/// `pmd thread numa_id 0 core_id 1:` as OVS heads each PMD's block.
pub fn pmd_header(core: Option<usize>, thread: &str) -> String {
    match core {
        Some(c) => format!("pmd thread numa_id {} core_id {c}:", numa_of(core)),
        None => format!("pmd thread {thread} (not pinned):"),
    }
}

pub fn show(d: &json::Show) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "vportd {} (up {}): {} port(s), {} PMD(s), {} megaflow(s) (limit {}), {} OpenFlow rule(s)",
        d.version,
        secs(d.uptime_s),
        d.ports.len(),
        d.pmds.len(),
        d.megaflows,
        d.flow_limit,
        d.openflow_rules
    );
    s.push('\n');
    let mut t = Table::new(&[
        "port", "ofport", "device", "driver", "rxq", "txq", "link", "rx_pkts", "tx_pkts", "drops",
        "missed", "rx_err", "tx_err", "nombuf",
    ]);
    for p in &d.ports {
        let link = match &p.link {
            Some(l) if l.up => match l.speed_mbps {
                Some(sp) if sp >= 1000 && sp % 1000 == 0 => format!("up {}G", sp / 1000),
                Some(sp) => format!("up {sp}M"),
                None => "up".into(),
            },
            Some(_) => "down".into(),
            None => "?".into(),
        };
        let st = p.stats.unwrap_or_default();
        let q = |v: u64| {
            if p.stats.is_some() {
                v.to_string()
            } else {
                "-".into()
            }
        };
        t.row(vec![
            p.name.clone(),
            p.ofport.to_string(),
            p.ethdev.clone(),
            p.driver.clone(),
            p.n_rxq.to_string(),
            p.n_txq.to_string(),
            link,
            q(st.rx_packets),
            q(st.tx_packets),
            q(st.drops),
            q(st.rx_missed),
            q(st.rx_errors),
            q(st.tx_errors),
            q(st.rx_nombuf),
        ]);
    }
    if t.is_empty() {
        s.push_str("no ports\n");
    } else {
        s.push_str(&t.render());
    }
    if !d.tunnels.is_empty() {
        s.push('\n');
        let mut t = Table::new(&["tunnel", "ofport", "type", "remote_ip", "key", "dst_port"]);
        for p in &d.tunnels {
            t.row(vec![
                p.name.clone(),
                p.ofport.to_string(),
                p.kind.clone(),
                p.remote_ip.clone(),
                p.key.clone().unwrap_or_else(|| "-".into()),
                if p.kind == "gre" {
                    "-".into()
                } else {
                    p.dst_port.to_string()
                },
            ]);
        }
        s.push_str(&t.render());
    }
    for p in &d.ports {
        if let Some(v) = &p.vhost {
            let _ = writeln!(
                s,
                "{}: {} {} ({}), {} queue pair(s), {} enabled",
                p.name,
                v.mode,
                v.socket,
                if v.connected {
                    "guest connected"
                } else {
                    "no guest"
                },
                v.queues,
                v.queues_enabled
            );
        }
    }
    let _ = writeln!(
        s,
        "mbufs: {} of {} in use",
        d.mbuf_pool.in_use, d.mbuf_pool.capacity
    );
    s.push('\n');
    let mut t = Table::new(&["pmd", "core", "thread", "rx queues"]);
    for p in &d.pmds {
        let q: Vec<String> = p
            .rxqs
            .iter()
            .map(|r| format!("{}/{}", r.port, r.queue))
            .collect();
        t.row(vec![
            p.index.to_string(),
            p.core.map_or("-".into(), |c| c.to_string()),
            p.thread.clone(),
            if q.is_empty() {
                "(none)".into()
            } else {
                q.join(" ")
            },
        ]);
    }
    s.push_str(&t.render());
    if !d.controllers.is_empty() {
        s.push('\n');
        let mut t = Table::new(&[
            "controller",
            "peer",
            "state",
            "role",
            "version",
            "msgs_in",
            "msgs_out",
            "dropped",
            "last_error",
        ]);
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        for c in &d.controllers {
            t.row(vec![
                c.target.clone(),
                dash(&c.peer),
                c.state.clone(),
                dash(&c.role),
                dash(&c.version),
                c.msgs_in.to_string(),
                c.msgs_out.to_string(),
                c.async_dropped.to_string(),
                dash(&c.last_error),
            ]);
        }
        s.push_str(&t.render());
    }
    s
}

pub fn port_added(p: &json::PortInfo) -> String {
    format!(
        "port {} added: OpenFlow port {}, device {} ({}), {} rxq, {} txq, rx queues on PMD {:?}\n",
        p.name, p.ofport, p.ethdev, p.driver, p.n_rxq, p.n_txq, p.rxq_pmds
    )
}

pub fn flow_change(d: &json::FlowChange) -> String {
    let verb = match d.op {
        "add" => "added",
        "modify" => "modified",
        "delete" => "deleted",
        _ => "loaded (replacing every rule)",
    };
    format!(
        "{} rule(s) {verb}; {} rule(s) in the tables\n",
        d.count, d.rules_total
    )
}

pub fn dump_flows(d: &json::DumpFlows) -> String {
    let mut s = String::new();
    for f in &d.flows {
        s.push(' ');
        s.push_str(&f.line);
        s.push('\n');
    }
    s
}

pub fn dump_megaflows(d: &json::DumpMegaflows) -> String {
    let mut s = String::new();
    for m in &d.megaflows {
        let used = match m.used_ms_ago {
            Some(ms) => format!("{:.3}s", ms as f64 / 1000.0),
            None => "never".into(),
        };
        let _ = writeln!(
            s,
            "id:{}, pmd:{}, {}, packets:{}, bytes:{}, used:{}, actions:{}",
            m.id, m.pmd, m.key, m.packets, m.bytes, used, m.actions
        );
    }
    if d.megaflows.is_empty() {
        s.push_str("no megaflows\n");
    }
    s
}

fn counter_lines(s: &mut String, c: &json::PmdCounters) {
    let total = c.total_drops();
    if total == 0 {
        let _ = writeln!(s, "  drops: 0");
    } else {
        let _ = writeln!(s, "  drops: {total}");
        let by_name: std::collections::BTreeMap<&str, u64> = flowcache::DropReason::ALL
            .iter()
            .map(|r| (r.name(), c.drops[*r as usize]))
            .collect();
        for (reason, n) in &by_name {
            if *n > 0 {
                let _ = writeln!(s, "    {reason}: {n}");
            }
        }
    }
}

/// `pmd-stats-show`, with OVS's line names.
pub fn pmd_stats(d: &json::PmdStats) -> String {
    let mut s = String::new();
    for p in &d.pmds {
        let c = &p.counters;
        let v = &p.derived;
        let _ = writeln!(s, "{}", pmd_header(p.core, &p.thread));
        let _ = writeln!(s, "  packets received: {}", c.rx_packets);
        let _ = writeln!(s, "  packet recirculations: {}", c.recirculations);
        let _ = writeln!(
            s,
            "  avg. datapath passes per packet: {:.2}",
            v.avg_passes_per_packet
        );
        let _ = writeln!(s, "  simple match hits: {}", c.simple_hits);
        let _ = writeln!(s, "  emc hits: {}", c.emc_hits);
        let _ = writeln!(s, "  smc hits: {}", c.smc_hits);
        let _ = writeln!(s, "  megaflow hits: {}", c.megaflow_hits);
        let _ = writeln!(
            s,
            "  avg. subtable lookups per megaflow hit: {:.2}",
            v.avg_subtable_lookups_per_megaflow_hit
        );
        let _ = writeln!(s, "  miss with success upcall: {}", c.upcalls);
        let _ = writeln!(s, "  miss with failed upcall: {}", c.lost_upcalls);
        let _ = writeln!(
            s,
            "  avg. packets per output batch: {:.2}",
            v.avg_packets_per_output_batch
        );
        let _ = writeln!(
            s,
            "  idle cycles: {} ({:.2}%)",
            c.idle_cycles, v.idle_cycles_pct
        );
        let _ = writeln!(
            s,
            "  processing cycles: {} ({:.2}%)",
            c.busy_cycles, v.processing_cycles_pct
        );
        if c.rx_packets > 0 {
            let _ = writeln!(
                s,
                "  avg cycles per packet: {:.2} ({}/{})",
                v.avg_cycles_per_packet,
                c.busy_cycles + c.idle_cycles,
                c.rx_packets
            );
            let _ = writeln!(
                s,
                "  avg processing cycles per packet: {:.2} ({}/{})",
                v.avg_processing_cycles_per_packet, c.busy_cycles, c.rx_packets
            );
        }
        let _ = writeln!(s, "  us per upcall: {:.2}", v.us_per_upcall);
        counter_lines(&mut s, c);
    }
    s
}

/// `pmd-perf-show`, laid out like OVS's.
pub fn pmd_perf(d: &json::PmdStats) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Measurement duration: {:.3} s", d.duration_s);
    let _ = writeln!(s, "TSC frequency: {:.3} GHz", d.tsc_hz as f64 / 1e9);
    for p in &d.pmds {
        let c = &p.counters;
        let v = &p.derived;
        let rx = c.rx_packets;
        let passes = c.rx_packets + c.recirculations;
        let total = c.busy_cycles + c.idle_cycles;
        s.push('\n');
        let _ = writeln!(s, "{}", pmd_header(p.core, &p.thread));
        s.push('\n');
        let _ = writeln!(
            s,
            "  Iterations:        {:>12}  ({:.2} us/it)",
            c.iterations, v.us_per_iteration
        );
        let _ = writeln!(s, "  - Used TSC cycles: {:>12}", total);
        let _ = writeln!(
            s,
            "  - idle cycles:     {:>12}  ({:5.1} % of used cycles)",
            c.idle_cycles, v.idle_cycles_pct
        );
        let _ = writeln!(
            s,
            "  - busy cycles:     {:>12}  ({:5.1} % of used cycles)",
            c.busy_cycles, v.processing_cycles_pct
        );
        let _ = writeln!(
            s,
            "  Rx packets:        {:>12}  ({:.0} Kpps, {:.0} cycles/pkt)",
            rx, v.rx_kpps, v.avg_processing_cycles_per_packet
        );
        let _ = writeln!(
            s,
            "  Datapath passes:   {:>12}  ({:.2} passes/pkt)",
            passes, v.avg_passes_per_packet
        );
        let _ = writeln!(
            s,
            "  - Simple Match hits: {:>10}  ({:5.1} %)",
            c.simple_hits,
            pct(c.simple_hits, passes)
        );
        let _ = writeln!(
            s,
            "  - EMC hits:        {:>12}  ({:5.1} %)",
            c.emc_hits,
            pct(c.emc_hits, passes)
        );
        let _ = writeln!(
            s,
            "  - SMC hits:        {:>12}  ({:5.1} %)",
            c.smc_hits,
            pct(c.smc_hits, passes)
        );
        let _ = writeln!(
            s,
            "  - Megaflow hits:   {:>12}  ({:5.1} %, {:.2} subtbl lookups/hit)",
            c.megaflow_hits,
            pct(c.megaflow_hits, passes),
            v.avg_subtable_lookups_per_megaflow_hit
        );
        let _ = writeln!(
            s,
            "  - Upcalls:         {:>12}  ({:5.1} %, {:.1} us/upcall)",
            c.upcalls,
            pct(c.upcalls, passes),
            v.us_per_upcall
        );
        let _ = writeln!(
            s,
            "  - Lost upcalls:    {:>12}  ({:5.1} %)",
            c.lost_upcalls,
            pct(c.lost_upcalls, passes)
        );
        let _ = writeln!(
            s,
            "  Tx packets:        {:>12}  ({:.0} Kpps)",
            c.tx_packets, v.tx_kpps
        );
        let _ = writeln!(
            s,
            "  Tx batches:        {:>12}  ({:.2} pkts/batch)",
            c.tx_batches, v.avg_packets_per_output_batch
        );
        counter_lines(&mut s, c);
    }
    s
}

pub fn rxq_show(d: &json::RxqShow) -> String {
    let mut s = String::new();
    for p in &d.pmds {
        let _ = writeln!(s, "{}", pmd_header(p.core, &p.thread));
        let _ = writeln!(s, "  isolated : {}", p.isolated);
        if p.rxqs.is_empty() {
            let _ = writeln!(s, "  (no rx queues)");
        }
        for q in &p.rxqs {
            let _ = writeln!(
                s,
                "  port: {:<16} queue-id: {:>2} (enabled)   pmd usage: {:>3.0} %   share of rx cycles: {:>3.0} %",
                q.port, q.queue, q.usage_pct, q.share_pct
            );
        }
    }
    s
}

pub fn rebalance(d: &json::Rebalance) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", d.reason);
    let verb = if d.applied { "moved" } else { "would move" };
    for m in &d.proposed_moves {
        let _ = writeln!(
            s,
            "  {verb} port {} queue {} ({} cycles): pmd {} -> pmd {}",
            m.port, m.queue, m.cycles, m.from_pmd, m.to_pmd
        );
    }
    s
}

pub fn trace(d: &json::Trace) -> String {
    let mut s = String::new();
    if let Some(id) = d.megaflow_id {
        let _ = writeln!(s, "Megaflow id:{id}: {}", d.flow);
        s.push('\n');
    }
    for l in &d.trace {
        s.push_str(l);
        s.push('\n');
    }
    let has = |p: &str| d.trace.iter().any(|l| l.starts_with(p));
    if !has("Megaflow:") {
        let _ = writeln!(s, "Megaflow: {}", d.megaflow_match);
    }
    if !has("Datapath actions:") {
        let _ = writeln!(s, "Datapath actions: {}", d.actions);
    }
    let _ = writeln!(s, "Datapath megaflow key: {}", d.megaflow_key);
    if let Some(r) = &d.drop_reason {
        let _ = writeln!(s, "Drop reason: {r}");
    }
    if d.megaflow_id.is_some() {
        s.push('\n');
        let _ = writeln!(s, "Rules visited:");
        for r in &d.rules {
            let _ = writeln!(
                s,
                "  {} (n_packets={}, n_bytes={})",
                r.rule, r.n_packets, r.n_bytes
            );
        }
    }
    s
}

pub fn upcall_show(d: &json::UpcallShow) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  flows         : (current {}) (limit {})",
        d.megaflows, d.flow_limit
    );
    let _ = writeln!(s, "  max-idle      : {} ms", d.max_idle_ms);
    if let Some(p) = d.emc_insert_inv_prob {
        let _ = writeln!(s, "  emc-insert-inv-prob : {p}");
    }
    let _ = writeln!(s, "  smc-enable    : {}", d.smc_enabled);
    let _ = writeln!(
        s,
        "  revalidations : {} (megaflows expired {}, revalidated away {})",
        d.revalidations, d.expired, d.revalidated_away
    );
    let us: Vec<String> = d
        .userspace
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(s, "  userspace     : {}", us.join(", "));
    s.push('\n');
    let mut t = Table::new(&[
        "pmd",
        "core",
        "upcalls",
        "lost",
        "pending",
        "installed",
        "limit_hits",
        "us/upcall",
    ]);
    for p in &d.pmds {
        t.row(vec![
            p.index.to_string(),
            p.core.map_or("-".into(), |c| c.to_string()),
            p.upcalls.to_string(),
            p.lost_upcalls.to_string(),
            p.pending_upcalls.to_string(),
            p.megaflows_installed.to_string(),
            p.flow_limit_hits.to_string(),
            format!("{:.2}", p.us_per_upcall),
        ]);
    }
    s.push_str(&t.render());
    s
}

/// `capture`: what was started.
pub fn capture_started(c: &json::Capture) -> String {
    let port = c.port.as_deref().unwrap_or("?");
    let until = match c.count {
        Some(n) => format!("stops after {n} packet(s)"),
        None => format!("until `capture-stop {port}`"),
    };
    format!(
        "capturing port {port} (OpenFlow port {}) rx and tx to {}: {until}\n",
        c.ofport, c.file
    )
}

/// `capture-stop`: the final counts.
pub fn capture_stopped(c: &json::Capture) -> String {
    let mut s = format!(
        "capture of port {} stopped: {} packet(s) written to {} (rx {}, tx {}), {} lost\n",
        c.port.as_deref().unwrap_or("?"),
        c.written,
        c.file,
        c.written_rx,
        c.written_tx,
        c.lost
    );
    if let Some(e) = &c.error {
        let _ = writeln!(s, "write error: {e}");
    }
    s
}

/// `capture-show`.
pub fn capture_show(d: &json::CaptureShow) -> String {
    if d.captures.is_empty() {
        return "no capture running\n".into();
    }
    let mut t = Table::new(&[
        "port", "ofport", "written", "rx", "tx", "lost", "count", "duration", "file",
    ]);
    for c in &d.captures {
        let mut file = c.file.clone();
        if let Some(e) = &c.error {
            file.push_str(&format!(" (write error: {e})"));
        }
        t.row(vec![
            c.port.clone().unwrap_or_else(|| "?".into()),
            c.ofport.to_string(),
            c.written.to_string(),
            c.written_rx.to_string(),
            c.written_tx.to_string(),
            c.lost.to_string(),
            c.count.map_or("-".into(), |n| n.to_string()),
            secs(c.duration_s),
            file,
        ]);
    }
    t.render()
}

pub fn help(d: &json::Help) -> String {
    let mut s = String::from("vportctl [--ctl PATH] [--json] COMMAND [ARG...]\n\nCommands:\n");
    let w = d.commands.iter().map(|c| c.usage.len()).max().unwrap_or(0);
    for c in &d.commands {
        let _ = writeln!(s, "  {:<w$}  {}", c.usage, c.summary);
    }
    s.push_str("\nOVS names (dpctl/..., dpif-netdev/..., ofproto/trace, upcall/show) are accepted as aliases.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_alignment() {
        let mut t = Table::new(&["name", "n"]);
        t.row(vec!["a".into(), "10".into()]);
        t.row(vec!["bbb".into(), "2".into()]);
        assert_eq!(t.render(), "name   n\na     10\nbbb    2\n");
    }
}
