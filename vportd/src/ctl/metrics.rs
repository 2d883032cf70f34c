//! Prometheus text exposition (format 0.0.4) of the daemon's counters, for
//! the `metrics` command and the `--metrics ADDR` HTTP endpoint.
//!
//! Counters are the raw, monotonic values (`pmd-stats-clear` does not
//! reset them, as Prometheus expects); names have the `vportd_` prefix.

use super::json;
use super::Server;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One metric family.
pub struct Family {
    pub name: String,
    pub help: &'static str,
    /// "counter" or "gauge".
    pub kind: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

struct Families(Vec<Family>);

impl Families {
    fn get(&mut self, name: &str, help: &'static str, kind: &'static str) -> &mut Family {
        if let Some(i) = self.0.iter().position(|f| f.name == name) {
            return &mut self.0[i];
        }
        self.0.push(Family {
            name: name.to_string(),
            help,
            kind,
            samples: Vec::new(),
        });
        self.0.last_mut().expect("just pushed")
    }

    fn add(
        &mut self,
        name: &str,
        help: &'static str,
        kind: &'static str,
        labels: Vec<(&'static str, String)>,
        value: f64,
    ) {
        self.get(name, help, kind).samples.push((labels, value));
    }
}

/// Reads every counter of the switch.
pub fn collect(server: &Server) -> Vec<Family> {
    let sw = &server.switch;
    let mut f = Families(Vec::new());
    f.add(
        "vportd_uptime_seconds",
        "Seconds since the daemon started.",
        "gauge",
        vec![],
        sw.started.elapsed().as_secs_f64(),
    );
    f.add(
        "vportd_openflow_rules",
        "OpenFlow rules in all tables.",
        "gauge",
        vec![],
        sw.bridge.tables().len() as f64,
    );

    // Ports.
    {
        let ports = sw.ports.lock();
        for p in ports.by_ofport.values() {
            let l = || vec![("port", p.name.clone()), ("ofport", p.ofport.to_string())];
            let up = p.eth.link().map(|l| l.up).unwrap_or(false);
            f.add(
                "vportd_port_link_up",
                "1 when the port's link is up.",
                "gauge",
                l(),
                if up { 1.0 } else { 0.0 },
            );
            if let Some(v) = &p.vhost {
                let mut labels = l();
                labels.push(("mode", v.mode.name().to_string()));
                labels.push(("socket", v.socket.display().to_string()));
                f.add(
                    "vportd_vhost_connected",
                    "1 while a guest's virtio driver is up on the vhost-user port.",
                    "gauge",
                    labels,
                    if up { 1.0 } else { 0.0 },
                );
                f.add(
                    "vportd_vhost_queues_enabled",
                    "Tx queues of the vhost-user port the guest has enabled.",
                    "gauge",
                    l(),
                    p.vhost_queues
                        .as_ref()
                        .map_or(0, |q| q.tx_enabled().count_ones()) as f64,
                );
            }
            f.add(
                "vportd_port_rx_queues",
                "Receive queues of the port.",
                "gauge",
                l(),
                p.eth.n_rxq() as f64,
            );
            let Ok(s) = p.eth.stats() else { continue };
            let c: [(&str, &'static str, u64); 11] = [
                (
                    "vportd_port_rx_packets_total",
                    "Packets received by the port.",
                    s.ipackets,
                ),
                (
                    "vportd_port_tx_packets_total",
                    "Packets sent by the port.",
                    s.opackets,
                ),
                (
                    "vportd_port_rx_bytes_total",
                    "Bytes received by the port.",
                    s.ibytes,
                ),
                (
                    "vportd_port_tx_bytes_total",
                    "Bytes sent by the port.",
                    s.obytes,
                ),
                (
                    "vportd_port_rx_missed_total",
                    "Packets dropped by the device, rx queue full (imissed).",
                    s.imissed,
                ),
                (
                    "vportd_port_rx_errors_total",
                    "Erroneous received packets (ierrors).",
                    s.ierrors,
                ),
                (
                    "vportd_port_tx_errors_total",
                    "Failed transmissions (oerrors).",
                    s.oerrors,
                ),
                (
                    "vportd_port_rx_nombuf_total",
                    "Receive failures for lack of mbufs (rx_nombuf).",
                    s.rx_nombuf,
                ),
                (
                    "vportd_port_rx_oversized_total",
                    "Received frames longer than one mbuf, dropped by vportd.",
                    s.rx_oversized,
                ),
                (
                    "vportd_port_tx_full_total",
                    "Packets the tx queue refused (full), dropped by vportd.",
                    s.tx_full,
                ),
                (
                    "vportd_port_tx_link_down_total",
                    "Packets the device refused while its link was down (no guest), dropped by vportd.",
                    s.tx_link_down,
                ),
            ];
            for (name, help, v) in c {
                f.add(name, help, "counter", l(), v as f64);
            }
            f.add(
                "vportd_port_drops_total",
                "rx_missed + rx_errors + tx_errors + rx_nombuf + rx_oversized + tx_full + tx_link_down.",
                "counter",
                l(),
                s.total_drops() as f64,
            );
        }
    }

    // Datapath.
    let dp = sw.datapath.lock();
    if let Some(dp) = dp.as_ref() {
        use std::sync::atomic::Ordering::Relaxed;
        for kind in flowcache::actions::UserCookieKind::ALL {
            f.add(
                "vportd_userspace_packets_total",
                "Packets of userspace actions the handler pool consumed, by cookie kind (no controller or collector: counted, not sent).",
                "counter",
                vec![("kind", kind.name().to_string())],
                dp.userspace_stats.get(kind) as f64,
            );
        }
        f.add(
            "vportd_megaflows",
            "Megaflows installed over all PMDs.",
            "gauge",
            vec![],
            dp.limits.n_megaflows.load(Relaxed) as f64,
        );
        f.add(
            "vportd_flow_limit",
            "Megaflow limit (flow-limit).",
            "gauge",
            vec![],
            dp.limits.flow_limit.load(Relaxed) as f64,
        );
        f.add(
            "vportd_max_idle_seconds",
            "Idle time after which a megaflow is removed (max-idle).",
            "gauge",
            vec![],
            dp.limits.max_idle_ms.load(Relaxed) as f64 / 1000.0,
        );
        {
            let reg = dp.registry.lock();
            f.add(
                "vportd_revalidations_total",
                "Revalidation rounds run after a rule change.",
                "counter",
                vec![],
                reg.revalidations as f64,
            );
            f.add(
                "vportd_megaflows_expired_total",
                "Megaflows removed because they went idle.",
                "counter",
                vec![],
                reg.expired as f64,
            );
            f.add(
                "vportd_megaflows_revalidated_away_total",
                "Megaflows removed because their translation changed.",
                "counter",
                vec![],
                reg.revalidated_away as f64,
            );
        }
        f.add(
            "vportd_tsc_hz",
            "TSC ticks per second (cycles counters are in TSC ticks).",
            "gauge",
            vec![],
            pmd::datapath::clock::tsc_hz() as f64,
        );
        for p in &dp.pmds {
            let s = p.stats.snapshot();
            let l = || {
                vec![
                    ("pmd", p.index.to_string()),
                    ("core", p.core.map_or("none".into(), |c| c.to_string())),
                ]
            };
            for (name, help, v) in s.counters() {
                f.add(
                    &format!("vportd_pmd_{name}_total"),
                    help,
                    "counter",
                    l(),
                    v as f64,
                );
            }
            for r in flowcache::DropReason::ALL {
                let mut lb = l();
                lb.push(("reason", r.name().to_string()));
                f.add(
                    "vportd_pmd_drops_total",
                    "Packets dropped by the PMD, by reason.",
                    "counter",
                    lb,
                    s.drops[r as usize] as f64,
                );
            }
            f.add(
                "vportd_pmd_pending_upcalls",
                "Upcalls in flight.",
                "gauge",
                l(),
                p.stats.pending_upcalls.get() as f64,
            );
        }
    }
    // The tracker's samples take the datapath lock themselves.
    drop(dp);
    for (name, help, kind, labels, v) in super::conntrack::metrics(server) {
        f.add(&name, help, kind, labels, v);
    }
    f.0
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The Prometheus text of `families`.
pub fn render(families: &[Family]) -> String {
    let mut s = String::new();
    for f in families {
        let _ = writeln!(s, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(s, "# TYPE {} {}", f.name, f.kind);
        for (labels, v) in &f.samples {
            s.push_str(&f.name);
            if !labels.is_empty() {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = write!(s, "{{{}}}", l.join(","));
            }
            let _ = writeln!(s, " {}", value(*v));
        }
    }
    s
}

/// The samples of `families`, for the JSON reply.
pub fn samples(families: &[Family]) -> json::Metrics {
    json::Metrics {
        samples: families
            .iter()
            .flat_map(|f| {
                f.samples.iter().map(|(labels, v)| json::Sample {
                    name: f.name.clone(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect::<BTreeMap<_, _>>(),
                    value: *v,
                })
            })
            .collect(),
    }
}
