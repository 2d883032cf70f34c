//! The daemon: EAL, mempool, datapath, ports, the bridge (OpenFlow tables),
//! the control socket, and the main loop that waits for a signal, for
//! `--exit-when-idle`, and prints `--stats-interval` rates.

use crate::args::{self, Args, MbufMemoryArg, PortSpec};
use crate::ports::Ports;
use crate::switch::Switch;
use anyhow::{Context, Result};
use ofproto::Bridge;
use parking_lot::Mutex;
use pmd::datapath::{Datapath, DatapathConfig};
use pmd::dpdk::{self, Eal, Mbuf, MbufMemory, Mempool, MBUF_DEFAULT_BUF_SIZE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flows of `--fwd`: the built-in rule.
const FWD_RULE: &str = "in_port=1 actions=output:2";

/// Default PMD core: the last core of EAL's `-l` list (core 0 of that list
/// stays EAL's main lcore for the control plane), or core 0 alone.
fn default_pmd_cores(eal: &str) -> Vec<usize> {
    match args::eal_core_list(eal) {
        Some(list) if list.len() > 1 => vec![*list.last().unwrap()],
        Some(list) => vec![list[0]],
        None => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            vec![n.saturating_sub(1)]
        }
    }
}

/// The `--groups` file as a group table (each group may name the groups
/// of earlier lines).
fn load_groups(args: &Args) -> Result<ofproto::group::GroupTable> {
    let mut table = ofproto::group::GroupTable::default();
    if let Some(path) = &args.groups {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--groups {}", path.display()))?;
        let name = path.display().to_string();
        for g in ofproto::group::parse_groups(&text, &name).map_err(|e| anyhow::anyhow!("{e}"))? {
            table = table
                .add(g)
                .map_err(|e| anyhow::anyhow!("--groups {name}: {e}"))?;
        }
    }
    Ok(table)
}

/// The largest `--flows` file read (a 1M-rule file is about 100 MiB): a
/// path such as /dev/zero is refused instead of read until memory runs out.
pub const MAX_FLOW_FILE_BYTES: u64 = 512 << 20;

/// Upcall handler threads at most (`--handler-threads`).
pub const MAX_HANDLER_THREADS: usize = 256;

/// Reads a `--flows` file of at most [`MAX_FLOW_FILE_BYTES`].
fn read_flow_file(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("--flows {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FLOW_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("--flows {}", path.display()))?;
    if bytes.len() as u64 > MAX_FLOW_FILE_BYTES {
        anyhow::bail!(
            "--flows {}: longer than {} MiB",
            path.display(),
            MAX_FLOW_FILE_BYTES >> 20
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "--flows {}: not UTF-8 (byte {})",
            path.display(),
            e.utf8_error().valid_up_to() + 1
        )
    })
}

fn load_rules(args: &Args) -> Result<Vec<ofproto::Rule>> {
    let mut rules = Vec::new();
    if let Some(path) = &args.flows {
        let text = read_flow_file(path)?;
        let name = path.display().to_string();
        rules = ofproto::parse::parse_flows(&text, &name).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if args.fwd {
        rules.push(ofproto::parse::parse_flow(FWD_RULE).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(rules)
}

/// `--db` without `--eal`: the EAL arguments, PMD cores and handler count
/// from `Open_vSwitch.other_config`, as ovs-vswitchd takes them (command
/// line options given still win).
fn startup_from_db(args: &mut Args, target: &crate::ovsdb::conn::Target) -> Result<()> {
    use crate::ovsdb::startup;
    let oc = startup::read(target).map_err(|e| anyhow::anyhow!(e))?;
    let s = startup::from_other_config(&oc, startup::hugepages_free())
        .map_err(|e| anyhow::anyhow!("--db {target}: {e}"))?;
    log::info!("EAL arguments from {target} other_config: {}", s.eal);
    args.eal = s.eal;
    if args.pmd_cores.is_none() {
        // OVS's default without pmd-cpu-mask: a core the main thread is not on.
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        args.pmd_cores = s.pmd_cores.or_else(|| Some((n - 1).to_string()));
    }
    if args.handler_threads.is_none() {
        args.handler_threads = s.handler_threads;
    }
    Ok(())
}

/// Runs the daemon until a signal or `--exit-when-idle`.
pub fn run(mut args: Args) -> Result<()> {
    // Everything that can be checked without DPDK first: a bad argument
    // fails fast with one line.
    let mut specs: Vec<PortSpec> = args
        .ports
        .iter()
        .map(|p| args::parse_port(p))
        .collect::<Result<_, _>>()?;
    args::assign_ofports(&mut specs)?;
    let db = args
        .db
        .as_deref()
        .map(crate::ovsdb::conn::Target::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    if let (Some(target), true) = (&db, args.eal.trim().is_empty()) {
        startup_from_db(&mut args, target)?;
    }
    if args.eal.trim().is_empty() {
        anyhow::bail!("--eal is required (or --db, whose Open_vSwitch other_config gives it)");
    }
    let pmd_cores = match &args.pmd_cores {
        Some(l) => args::parse_core_list(l)?,
        None => default_pmd_cores(&args.eal),
    };
    if let Some(n) = args.handler_threads {
        if n == 0 || n > MAX_HANDLER_THREADS {
            anyhow::bail!("--handler-threads {n}: must be 1 to {MAX_HANDLER_THREADS}");
        }
    }
    crate::ofchan::check_args(&args.openflow)?;
    let groups = load_groups(&args)?;
    // `in_port=p1` / `output:p2` in --flows name the --port ports.
    let names = specs
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.ofport?)));
    let rules = ofproto::parse::with_port_names(names, || load_rules(&args))?;
    for r in &rules {
        if let Some(g) = ofproto::group::missing_groups(r, &groups) {
            anyhow::bail!(
                "--flows: {}: group {g} does not exist (OFPGMFC_INVALID_GROUP)",
                ofproto::format_rule(r)
            );
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .context("installing the SIGINT handler")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
        .context("installing the SIGTERM handler")?;
    let dump = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, dump.clone())
        .context("installing the SIGUSR1 handler")?;
    // SIGHUP (a closed terminal, `kill -HUP`) does not stop the daemon, as
    // with OVS daemons: vportd logs to stderr and has nothing to reopen, so
    // the main loop only notes it. Only SIGINT and SIGTERM stop it.
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())
        .context("installing the SIGHUP handler")?;

    let eal = Eal::init(&args.eal).map_err(|e| anyhow::anyhow!("--eal: {e}"))?;
    let pool = Arc::new(create_pool(&args)?);

    let bridge = Arc::new(Bridge::new());
    bridge.set_groups(groups);
    // --fail-mode standalone without a controller starts with NORMAL
    // (before --flows, which may replace it).
    let rules: Vec<_> = crate::ofchan::initial_rules(&args.openflow)
        .into_iter()
        .chain(rules)
        .collect();
    bridge
        .replace_rules(rules)
        .map_err(|e| anyhow::anyhow!("--flows: {e}"))?;

    let all_cores: std::collections::BTreeSet<usize> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    let handler_cores: Vec<usize> = all_cores
        .iter()
        .copied()
        .filter(|c| !pmd_cores.contains(c))
        .collect();
    let handler_threads = args.handler_threads.unwrap_or(handler_cores.len()).max(1);
    let cfg = DatapathConfig {
        pmd_cores: pmd_cores.iter().map(|c| Some(*c)).collect(),
        handler_threads,
        handler_cores: handler_cores.clone(),
        emc_insert_inv_prob: args.emc_insert_inv_prob,
        ..DatapathConfig::default()
    };
    let mut datapath: Datapath<Mbuf> = Datapath::start(
        &cfg,
        bridge.clone(),
        Arc::new(|| {
            if let Err(e) = dpdk::register_thread() {
                log::warn!("could not register a datapath thread with DPDK: {e}");
            }
        }),
        Arc::new(dpdk::unregister_thread),
    )
    .context("starting the datapath threads")?;
    bridge.attach_conntrack(datapath.conntrack.clone());
    log::info!(
        "datapath: {} PMD thread(s) on core(s) {:?}, {} handler thread(s)",
        datapath.n_pmds(),
        pmd_cores,
        handler_threads
    );

    let local_ips = args
        .local_ips
        .iter()
        .map(|a| crate::tunnel::parse_local_ip(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let routes = args
        .routes
        .iter()
        .map(|a| crate::tunnel::parse_route(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut ports = Ports {
        vhost_sock_mode: Some(args.vhost_sock_mode),
        local_ips,
        ..Ports::default()
    };
    for spec in &specs {
        if let Err(e) = ports.add(spec, &pool, &mut datapath, &bridge) {
            datapath.shutdown();
            ports.close_all();
            drop(pool);
            let _ = eal.cleanup();
            return Err(e);
        }
    }
    if let Err(e) = apply_underlay_routes(&ports, &routes, &bridge) {
        datapath.shutdown();
        ports.close_all();
        drop(pool);
        let _ = eal.cleanup();
        return Err(e);
    }
    ports.start_polling(&mut datapath);

    let switch = Arc::new(Switch {
        bridge,
        datapath: Mutex::new(Some(datapath)),
        ports: Mutex::new(ports),
        pool,
        started: Instant::now(),
        stop: stop.clone(),
        controllers: Arc::default(),
        openflow: Mutex::new(crate::ofchan::Channel {
            args: args.openflow.clone(),
            ..Default::default()
        }),
    });

    // A daemon that cannot be managed is not left running: a control
    // socket or metrics endpoint that cannot be served stops it with the
    // reason (after the same orderly teardown as a signal).
    // Only the default socket path (no --ctl, no --metrics) may be busy
    // and leave the daemon running without one: runs such as the
    // conformance harness start many daemons in parallel without --ctl.
    let ctl = match crate::ctl::start(&switch, args.ctl.clone(), args.metrics.clone()) {
        Err(e) if args.ctl.is_none() && args.metrics.is_none() => {
            log::warn!("control socket disabled: {e:#} (give --ctl PATH to make this fatal)");
            Ok(None)
        }
        other => other.map(Some),
    };
    // The OpenFlow channel: a target that cannot be served (port in use)
    // stops the daemon like a control socket that cannot.
    let ctl = ctl.and_then(|c| match crate::ofchan::start(&switch, &args.openflow) {
        Ok(of) => {
            switch.openflow.lock().handle = of;
            Ok(c)
        }
        Err(e) => {
            if let Some(c) = c {
                c.stop();
            }
            Err(e)
        }
    });
    // With --db, the ports and settings come from OVSDB, applied by the
    // same functions as the control socket's commands.
    let ovsdb = match (&ctl, db) {
        (Ok(handle), Some(target)) => {
            let server = match handle {
                Some(h) => h.server.clone(),
                None => Arc::new(crate::ctl::Server::new(
                    switch.clone(),
                    std::path::PathBuf::new(),
                )),
            };
            log::info!("ovsdb: configuration from {target}");
            match crate::ovsdb::start(target, server) {
                Ok(h) => Some(h),
                Err(e) => {
                    log::error!("starting the OVSDB client: {e:#}");
                    switch.stop.store(true, Ordering::Relaxed);
                    None
                }
            }
        }
        _ => None,
    };
    if ctl.is_ok() {
        main_loop(&switch, &args, &dump, &hangup);
    }
    if let Some(o) = ovsdb {
        o.stop();
    }

    // Shutdown: PMDs stop and flush, then ports stop and close (which
    // completes net_pcap tx files), then EAL.
    log::info!("stopping");
    let ctl_error = match ctl {
        Ok(ctl) => {
            switch.openflow.lock().stop();
            if let Some(ctl) = ctl {
                ctl.stop();
            }
            None
        }
        Err(e) => Some(e),
    };
    if let Some(dp) = switch.datapath.lock().take() {
        dp.shutdown();
    }
    switch.ports.lock().close_all();
    let in_use = switch.pool.in_use()
        + switch
            .ports
            .lock()
            .jumbo_pools
            .iter()
            .map(|p| p.in_use())
            .sum::<u32>();
    if in_use == 0 {
        log::info!("mbufs in use at exit: 0");
    } else {
        log::warn!("mbufs in use at exit: {in_use} (leaked)");
    }
    drop(switch);
    if let Err(e) = eal.cleanup() {
        log::warn!("EAL cleanup: {e}");
    }
    match ctl_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Checks that every `--local-ip` names a DPDK port and gives the tunnel
/// layer the `--route`s.
fn apply_underlay_routes(
    ports: &Ports,
    routes: &[crate::tunnel::RouteArg],
    bridge: &Bridge,
) -> Result<()> {
    for l in &ports.local_ips {
        if ports.by_name(&l.port).is_none() {
            anyhow::bail!("--local-ip {}: no DPDK port of that name", l.port);
        }
    }
    for r in routes {
        let Some(p) = ports.by_name(&r.port) else {
            anyhow::bail!("--route: no DPDK port named {:?}", r.port);
        };
        let route = r.route(p.ofport);
        bridge.tunnels().update(|c| c.routes.push(route));
    }
    Ok(())
}

/// How often the main loop reads the ports' link states.
const LINK_POLL: Duration = Duration::from_millis(100);

fn main_loop(switch: &Switch, args: &Args, dump: &AtomicBool, hangup: &AtomicBool) {
    let tick = Duration::from_millis(20);
    let interval = args.stats_interval.map(|s| Duration::from_secs(s.max(1)));
    let mut last_print = Instant::now();
    let mut last_counts = port_counts(switch);
    let mut last_pmd = pmd_totals(switch);
    let mut last_mac_expiry = Instant::now();
    let mut last_link_poll = Instant::now();
    loop {
        if switch.stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(tick);
        // NORMAL's MAC table: aged-out entries go (and the megaflows that
        // used them are re-checked) within a second of their aging time.
        if last_mac_expiry.elapsed() >= Duration::from_secs(1) {
            last_mac_expiry = Instant::now();
            let n = switch.bridge.expire_macs(last_mac_expiry);
            if n > 0 {
                log::debug!("{n} MAC entries aged out");
            }
            // Rules with idle/hard timeouts (learned ones, mostly) go the
            // same way, with what their `learn(delete_learned)` learned.
            let n = switch.bridge.expire_rules(last_mac_expiry);
            if n > 0 {
                log::debug!("{n} rules timed out");
            }
        }
        // Native tunnelling's ARP requests for unresolved next hops.
        crate::tunnel::send_arp_requests(switch);
        // Link states (fast_failover liveness): polled, never per packet.
        if last_link_poll.elapsed() >= LINK_POLL {
            last_link_poll = Instant::now();
            switch.ports.lock().refresh_liveness(&switch.bridge);
        }
        if dump.swap(false, Ordering::Relaxed) {
            print_counters_json(switch);
        }
        if hangup.swap(false, Ordering::Relaxed) {
            log::info!("SIGHUP: ignored (stop with SIGINT or SIGTERM)");
        }
        if let Some(ms) = args.exit_when_idle {
            let idle = switch
                .datapath
                .lock()
                .as_ref()
                .is_none_or(|dp| dp.is_idle(ms));
            if idle {
                log::info!("idle for {ms} ms: exiting");
                break;
            }
        }
        if let Some(iv) = interval {
            if last_print.elapsed() >= iv {
                let secs = last_print.elapsed().as_secs_f64();
                let counts = port_counts(switch);
                let pmd = pmd_totals(switch);
                print_rates(switch, &last_counts, &counts, &last_pmd, &pmd, secs);
                last_counts = counts;
                last_pmd = pmd;
                last_print = Instant::now();
            }
        }
    }
}

/// (name, rx packets, tx packets, rx missed) per port.
fn port_counts(switch: &Switch) -> Vec<(String, u64, u64, u64)> {
    switch
        .ports
        .lock()
        .by_ofport
        .values()
        .map(|p| {
            let s = p.eth.stats().unwrap_or_default();
            (p.name.clone(), s.ipackets, s.opackets, s.imissed)
        })
        .collect()
}

fn pmd_totals(switch: &Switch) -> pmd::stats::PmdStatsSnapshot {
    let mut total = pmd::stats::PmdStatsSnapshot::default();
    if let Some(dp) = switch.datapath.lock().as_ref() {
        for p in &dp.pmds {
            total.add(&p.stats.snapshot());
        }
    }
    total
}

fn print_rates(
    switch: &Switch,
    before: &[(String, u64, u64, u64)],
    after: &[(String, u64, u64, u64)],
    pmd_before: &pmd::stats::PmdStatsSnapshot,
    pmd_after: &pmd::stats::PmdStatsSnapshot,
    secs: f64,
) {
    let mut line = format!("{:>6.1}s", switch.started.elapsed().as_secs_f64());
    for ((name, rx0, tx0, _), (_, rx1, tx1, _)) in before.iter().zip(after) {
        let rx = (rx1 - rx0) as f64 / secs / 1e6;
        let tx = (tx1 - tx0) as f64 / secs / 1e6;
        line.push_str(&format!("  {name}: rx {rx:6.2} tx {tx:6.2} Mpps"));
    }
    let d = pmd_after.since(pmd_before);
    let hits = d.simple_hits + d.emc_hits + d.smc_hits + d.megaflow_hits;
    let pct = |n: u64| {
        if d.rx_packets > 0 {
            100.0 * n as f64 / d.rx_packets as f64
        } else {
            0.0
        }
    };
    let (simple_pct, emc_pct) = (pct(d.simple_hits), pct(d.emc_hits));
    let megaflows = switch
        .datapath
        .lock()
        .as_ref()
        .map_or(0, |dp| dp.limits.n_megaflows.load(Ordering::Relaxed));
    line.push_str(&format!(
        "  | hits {hits} (simple {simple_pct:.1}% emc {emc_pct:.1}%) upcalls {} drops {} megaflows {megaflows}",
        d.upcalls,
        d.total_drops()
    ));
    print_stdout_line(&line);
}

/// SIGUSR1: one line `COUNTERS {json}` on stdout with every port's and
/// every PMD's counters (the traffic benchmark reads it at the edges of its
/// measurement window).
fn print_counters_json(switch: &Switch) {
    use serde_json::{json, Map, Value};
    let ports: Vec<Value> = port_counts(switch)
        .into_iter()
        .map(|(name, rx, tx, missed)| {
            json!({"name": name, "rx_packets": rx, "tx_packets": tx, "rx_missed": missed})
        })
        .collect();
    let mut pmds = Vec::new();
    let mut megaflows = 0;
    let mut userspace = Map::new();
    if let Some(dp) = switch.datapath.lock().as_ref() {
        for p in &dp.pmds {
            let s = p.stats.snapshot();
            let mut o = Map::new();
            o.insert("core".into(), json!(p.core));
            let thread = match p.core {
                Some(c) => format!("pmd-c{c:02}"),
                None => format!("pmd-{}", p.index),
            };
            o.insert("thread".into(), json!(thread));
            for (name, _, v) in s.counters() {
                o.insert(name.into(), json!(v));
            }
            o.insert("drops".into(), json!(s.total_drops()));
            pmds.push(Value::Object(o));
        }
        megaflows = dp.limits.n_megaflows.load(Ordering::Relaxed);
        for k in flowcache::actions::UserCookieKind::ALL {
            userspace.insert(k.name().into(), json!(dp.userspace_stats.get(k)));
        }
    }
    let v = json!({"ports": ports, "pmds": pmds, "megaflows": megaflows, "userspace": userspace});
    print_stdout_line(&format!("COUNTERS {v}"));
}

/// One line on stdout, flushed. A closed or full stdout (`| head -n 1`)
/// loses the line and nothing else: forwarding never depends on stdout
/// (`println!` would panic on EPIPE). The first failure is logged once.
fn print_stdout_line(line: &str) {
    use std::io::Write;
    static WARNED: AtomicBool = AtomicBool::new(false);
    let mut out = std::io::stdout().lock();
    let res = writeln!(out, "{line}").and_then(|()| out.flush());
    if let Err(e) = res {
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!("stdout: {e}; statistics lines are dropped from now on");
        }
    }
}

/// The packet pool, in the memory `--mbuf-memory` asks for (see
/// `pmd::dpdk::thp` for why `auto` picks transparent huge pages without
/// hugepages).
fn create_pool(args: &Args) -> anyhow::Result<Mempool> {
    let memory = match args.mbuf_memory {
        MbufMemoryArg::Eal => MbufMemory::Eal,
        MbufMemoryArg::Thp => MbufMemory::TransparentHugePages,
        MbufMemoryArg::Auto => {
            // A net_virtio_user port (vportd as the guest of another
            // switch) hands its buffers to that switch: EAL memory only.
            let virtio_user = dpdk::any_device_with_driver("net_virtio_user")
                || args.ports.iter().any(|p| p.contains("=net_virtio_user"));
            if !dpdk::has_hugepages()
                && dpdk::every_device_virtual()
                && !virtio_user
                && dpdk::thp::available()
            {
                MbufMemory::TransparentHugePages
            } else {
                MbufMemory::Eal
            }
        }
    };
    let pool = Mempool::with_memory(
        "vportd_mbufs",
        args.mbufs,
        256,
        MBUF_DEFAULT_BUF_SIZE,
        memory,
    )
    .context("creating the mbuf pool (try a larger -m in --eal or fewer --mbufs)")?;
    match pool.huge_page_backing() {
        Some((bytes, huge)) => log::info!(
            "mbuf pool: {} mbufs, {} MiB of anonymous memory on transparent huge pages ({} MiB backed by huge pages)",
            args.mbufs,
            bytes >> 20,
            huge.map_or_else(|| "?".to_string(), |h| (h >> 20).to_string())
        ),
        None => log::info!("mbuf pool: {} mbufs in the EAL's memory", args.mbufs),
    }
    Ok(pool)
}
