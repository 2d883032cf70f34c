//! The daemon's ports: DPDK ethdev ports wired into the datapath.
//!
//! Bringing a port up: find the DPDK device by name, configure one rx queue
//! per `rxq=` (default 1) and one tx queue per PMD thread (so every PMD
//! transmits on its own queue, without locks), start it, then hand the rx
//! queues to PMDs round-robin and every PMD its tx queue. Taking it down is
//! the reverse: PMDs stop using it (and flush), then the port is stopped and
//! closed, which is what completes a net_pcap `tx_pcap` file.

use anyhow::{Context, Result};
use ofproto::Bridge;
use pmd::datapath::Datapath;
use pmd::dpdk::{DpdkRxq, EthPort, Mbuf, Mempool, SharedTxq, VhostQueueState, VhostTxq};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::args::PortSpec;
use crate::tunnel::LocalIp;
use crate::vhost::VhostSpec;
use ofproto::tunnel::{Route, Underlay};
use parking_lot::Mutex;
use pmd::dpdk::DpdkTxq;
use pmd::TxQueue;

/// rx/tx descriptors per queue (OVS's default is 2048).
pub const RX_DESCRIPTORS: u16 = 2048;
pub const TX_DESCRIPTORS: u16 = 2048;

/// One port of the switch.
pub struct SwitchPort {
    pub name: String,
    pub device: String,
    pub ofport: u32,
    pub eth: EthPort,
    /// Which PMD polls each rx queue (empty until polling starts).
    pub rxq_pmds: Vec<usize>,
    /// Rx queues not handed to a PMD yet.
    idle_rxqs: Vec<DpdkRxq>,
    /// `mod-port NAME down` (OpenFlow `OFPPC_PORT_DOWN`).
    pub admin_down: bool,
    /// Liveness as last told to the bridge (link up and not admin down).
    pub live: bool,
    /// A vhost-user port's socket, mode and queues.
    pub vhost: Option<VhostSpec>,
    /// A vhost-user port's tx queues the guest has enabled.
    pub vhost_queues: Option<Arc<VhostQueueState>>,
    /// An underlay port's tx queue for the control plane (native
    /// tunnelling's ARP requests), one more than the PMDs use.
    ctl_txq: Option<Mutex<DpdkTxq>>,
}

impl SwitchPort {
    /// Sends `frame` on the port's control tx queue.
    pub fn send_control(&self, pool: &Mempool, frame: &[u8]) -> Result<()> {
        let q = self
            .ctl_txq
            .as_ref()
            .context("the port has no control tx queue")?;
        let m = Mbuf::from_bytes(pool, frame)?;
        let mut b: pmd::Batch<Mbuf> = pmd::Batch::new();
        b.push(m);
        if q.lock().send(&mut b) == 0 {
            anyhow::bail!("the tx queue is full");
        }
        Ok(())
    }
}

/// All ports, by OpenFlow number.
#[derive(Default)]
pub struct Ports {
    pub by_ofport: BTreeMap<u32, SwitchPort>,
    /// Pools of larger mbufs for ports with `mtu=` above 1500, one per
    /// buffer size (as OVS keeps a mempool per MTU), made when first needed.
    pub jumbo_pools: Vec<Arc<Mempool>>,
    /// `--vhost-sock-mode` (`None`: 0600).
    pub vhost_sock_mode: Option<u32>,
    /// Tunnel ports (no device): OpenFlow number → name.
    pub tunnels: BTreeMap<u32, String>,
    /// `--local-ip`: the underlay ports' addresses, applied as they come up.
    pub local_ips: Vec<LocalIp>,
}

/// OVS `MTU_TO_MAX_FRAME_LEN`: Ethernet header, CRC and two VLAN tags.
const FRAME_OVERHEAD: u32 = 14 + 4 + 2 * 4;
/// The MTU the default mbufs are sized for.
const STANDARD_MTU: u16 = 1500;
/// Mbufs in a jumbo pool, at most (9 KiB buffers: ~150 MiB).
const JUMBO_POOL_MBUFS: u32 = 16_383;

impl Ports {
    /// The pool a port with `mtu` receives into: the standard one up to
    /// 1500, else a pool whose buffers hold a frame of that MTU in one
    /// segment (data room rounded up to 1 KiB, plus the headroom).
    fn pool_for(&mut self, mtu: Option<u16>, standard: &Arc<Mempool>) -> Result<Arc<Mempool>> {
        let mtu = mtu.unwrap_or(STANDARD_MTU);
        let frame = u32::from(mtu) + FRAME_OVERHEAD;
        let need = frame.div_ceil(1024) * 1024 + u32::from(pmd::dpdk::MBUF_HEADROOM);
        if u32::from(standard.data_room()) >= need {
            return Ok(standard.clone());
        }
        if let Some(p) = self
            .jumbo_pools
            .iter()
            .find(|p| u32::from(p.data_room()) >= need)
        {
            return Ok(p.clone());
        }
        let room = u16::try_from(need).expect("MAX_MTU keeps the data room under 64 KiB");
        let n = standard.capacity().min(JUMBO_POOL_MBUFS);
        let pool = Mempool::with_memory(
            &format!("vportd_mbufs_{room}"),
            n,
            256,
            room,
            standard.memory(),
        )
        .with_context(|| format!("a pool of {n} mbufs of {room} bytes for mtu={mtu}"))?;
        log::info!("mbuf pool for mtu {mtu}: {n} mbufs of {room} bytes");
        let pool = Arc::new(pool);
        self.jumbo_pools.push(pool.clone());
        Ok(pool)
    }
}

impl Ports {
    /// Brings a port up and gives every PMD its tx queue and the bridge the
    /// port; its rx queues are polled only after [`Ports::start_polling`],
    /// so that at start-up no packet is looked up before every port exists
    /// (a packet that arrives first would otherwise be translated with
    /// outputs to ports not there yet).
    pub fn add(
        &mut self,
        spec: &PortSpec,
        pool: &Arc<Mempool>,
        datapath: &mut Datapath<Mbuf>,
        bridge: &Bridge,
    ) -> Result<()> {
        let ofport = spec
            .ofport
            .expect("ofports are assigned before ports are added");
        if self.by_ofport.contains_key(&ofport) || self.tunnels.contains_key(&ofport) {
            anyhow::bail!("--port {}: ofport {ofport} is already in use", spec.name);
        }
        if self.by_ofport.values().any(|p| p.name == spec.name)
            || self.tunnels.values().any(|n| *n == spec.name)
        {
            anyhow::bail!("--port {}: a port with this name exists", spec.name);
        }
        if let Some(t) = &spec.tunnel {
            bridge.add_port(ofport, &spec.name);
            bridge.tunnels().update(|c| {
                c.ports.insert(ofport, t.clone());
            });
            self.tunnels.insert(ofport, spec.name.clone());
            log::info!(
                "port {} is OpenFlow port {ofport}: {} tunnel",
                spec.name,
                t.kind.name()
            );
            return Ok(());
        }
        let local_ip = self.local_ips.iter().find(|l| l.port == spec.name).cloned();
        let vhost = VhostSpec::parse(&spec.device)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--port {}={}: {e}", spec.name, spec.device))?;
        // A device EAL already knows (--vdev, PCI) is opened; anything else
        // is hot-plugged from its devargs (e.g. `net_pcap5,rx_pcap=in.pcap`
        // from `vportctl add-port`), and removed again when the port closes.
        // A vhost-user port is a `net_vhost` device vportd makes itself.
        let mut eth = match &vhost {
            Some(v) => {
                v.prepare()
                    .map_err(|e| anyhow::anyhow!("--port {}: {e}", spec.name))?;
                EthPort::attach(&v.devargs(&spec.name))
                    .with_context(|| format!("--port {}={}", spec.name, spec.device))?
            }
            None => match EthPort::open(&spec.device) {
                Ok(eth) => eth,
                Err(open_err) => EthPort::attach(&spec.device)
                    .map_err(|attach_err| anyhow::anyhow!("{open_err}; hot-plug: {attach_err}"))
                    .with_context(|| format!("--port {}={}", spec.name, spec.device))?,
            },
        };
        // A vhost-user port has one rx and one tx queue per virtio queue
        // pair the guest may enable.
        let n_rxq = spec.rxq.unwrap_or(vhost.as_ref().map_or(1, |v| v.queues));
        // One tx queue per PMD; a vhost-user port gets every queue it
        // offers, so that its PMDs can follow the ones the guest enables.
        let n_pmds = datapath.n_pmds() as u16;
        let n_txq = vhost.as_ref().map_or(n_pmds, |v| v.queues.max(n_pmds));
        // An underlay port has one more, for the control plane, and (as
        // net_tap wants as many rx as tx queues) as many rx queues.
        let n_txq_dev = n_txq + u16::from(local_ip.is_some());
        let n_rxq = if local_ip.is_some() {
            n_rxq.max(n_txq_dev)
        } else {
            n_rxq
        };
        let pool = self.pool_for(spec.mtu, pool)?;
        eth.configure(n_rxq, n_txq_dev, RX_DESCRIPTORS, TX_DESCRIPTORS, &pool)
            .with_context(|| format!("--port {}={}: configure", spec.name, spec.device))?;
        if let Some(mtu) = spec.mtu {
            let set = eth
                .set_mtu(mtu)
                .with_context(|| format!("--port {}={}: mtu={mtu}", spec.name, spec.device))?;
            if !set {
                log::info!(
                    "port {}: the {} driver has no MTU setting; frames up to mtu {mtu} fit its mbufs",
                    spec.name,
                    eth.driver_name()
                );
            }
        }
        eth.start()
            .with_context(|| format!("--port {}={}: start", spec.name, spec.device))?;
        if let Some(v) = &vhost {
            let mode = self
                .vhost_sock_mode
                .unwrap_or(crate::vhost::DEFAULT_SOCK_MODE);
            if let Err(e) = v.set_socket_mode(mode) {
                let _ = eth.stop();
                anyhow::bail!("--port {}: {e}", spec.name);
            }
        }
        // Every PMD transmits on a queue of its own; a device with fewer tx
        // queues than PMDs (a vhost-user port has one per queue pair) has
        // them shared, PMD i on queue i mod n, with a lock per burst. A
        // vhost-user port's PMDs send on the queues the guest has enabled
        // (see pmd::dpdk::VhostTxq), each under its lock.
        let mut txqs = eth.n_txq();
        let ctl_txq = match &local_ip {
            Some(_) if txqs > n_txq => {
                txqs -= 1;
                Some(Mutex::new(eth.txq(txqs).with_context(|| {
                    format!("--port {}: control tx queue", spec.name)
                })?))
            }
            Some(_) => {
                log::warn!(
                    "port {}: no tx queue to spare: ARP requests for tunnel next hops are not sent",
                    spec.name
                );
                None
            }
            None => None,
        };
        let vhost_queues = vhost.as_ref().map(|_| Arc::new(VhostQueueState::default()));
        if let Some(state) = &vhost_queues {
            let all = (0..txqs)
                .map(|q| eth.txq(q))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--port {}: tx queues", spec.name))?;
            let handles = VhostTxq::for_pmds(all, state.clone(), datapath.n_pmds());
            for (pmd, txq) in handles.into_iter().enumerate() {
                datapath.add_txq(pmd, ofport, Box::new(txq));
            }
        } else if txqs < n_txq {
            let shared = (0..txqs)
                .map(|q| eth.txq(q).map(SharedTxq::new))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--port {}: tx queues", spec.name))?;
            log::info!(
                "port {}: {txqs} tx queue(s) for {n_txq} PMD threads: shared, with a lock",
                spec.name
            );
            for pmd in 0..datapath.n_pmds() {
                datapath.add_txq(pmd, ofport, Box::new(shared[pmd % shared.len()].clone()));
            }
        } else {
            for pmd in 0..datapath.n_pmds() {
                let txq = eth
                    .txq(pmd as u16)
                    .with_context(|| format!("--port {}: tx queue {pmd}", spec.name))?;
                datapath.add_txq(pmd, ofport, Box::new(txq));
            }
        }
        let mut idle_rxqs = Vec::new();
        for q in 0..eth.n_rxq() {
            let rxq = eth
                .rxq(q)
                .with_context(|| format!("--port {}: rx queue {q}", spec.name))?;
            idle_rxqs.push(rxq);
        }
        if let Some(l) = &local_ip {
            let mac = eth
                .mac_address()
                .with_context(|| format!("--local-ip {}: the port's MAC", spec.name))?;
            add_underlay(bridge, ofport, l, mac);
        }
        bridge.add_port(ofport, &spec.name);
        if spec.vlan != Default::default() {
            bridge.set_port_vlan(ofport, spec.vlan.clone());
        }
        log::info!(
            "port {} ({}) is OpenFlow port {ofport}: driver {}, {} rxq, {} txq",
            spec.name,
            spec.device,
            eth.driver_name(),
            eth.n_rxq(),
            eth.n_txq()
        );
        self.by_ofport.insert(
            ofport,
            SwitchPort {
                name: spec.name.clone(),
                device: spec.device.clone(),
                ofport,
                eth,
                rxq_pmds: Vec::new(),
                idle_rxqs,
                admin_down: false,
                live: true,
                vhost,
                vhost_queues,
                ctl_txq,
            },
        );
        self.refresh_liveness(bridge);
        Ok(())
    }

    /// Reads every port's link state (`rte_eth_link_get_nowait`, never
    /// waiting) and tells the bridge which ports are live: link up and not
    /// admin down. A change revalidates the megaflows (fast_failover watch
    /// ports, bundle members). Called from the main loop, not per packet.
    /// A driver that cannot report its link counts as up.
    pub fn refresh_liveness(&mut self, bridge: &Bridge) {
        for p in self.by_ofport.values_mut() {
            let link_up = p.eth.link().map_or(true, |l| l.up);
            if let Some(q) = &p.vhost_queues {
                if !link_up {
                    q.reset();
                }
                if q.poll(p.eth.port_id()) {
                    log::info!(
                        "port {}: guest's enabled tx queues: {:#b}",
                        p.name,
                        q.tx_enabled()
                    );
                }
            }
            let live = link_up && !p.admin_down;
            if bridge.set_port_live(p.ofport, live) || live != p.live {
                log::info!(
                    "port {} (OpenFlow port {}): {} (link {}{})",
                    p.name,
                    p.ofport,
                    if live { "live" } else { "not live" },
                    if link_up { "up" } else { "down" },
                    if p.admin_down { ", admin down" } else { "" }
                );
            }
            p.live = live;
        }
    }

    /// `mod-port NAME up|down`: the admin state, as OVS-DPDK applies it
    /// (the device's link is set up or down where the driver can). Returns
    /// whether the driver changed its link.
    pub fn set_admin(&mut self, ofport: u32, up: bool, bridge: &Bridge) -> Result<bool> {
        let p = self
            .by_ofport
            .get_mut(&ofport)
            .ok_or_else(|| anyhow::anyhow!("no OpenFlow port {ofport}"))?;
        p.admin_down = !up;
        let changed = p
            .eth
            .set_link(up)
            .with_context(|| format!("port {}", p.name));
        self.refresh_liveness(bridge);
        changed
    }

    /// Hands every rx queue not polled yet to a PMD (round-robin).
    pub fn start_polling(&mut self, datapath: &mut Datapath<Mbuf>) {
        // Every tx queue must be in place first.
        datapath.barrier();
        for p in self.by_ofport.values_mut() {
            for (q, rxq) in std::mem::take(&mut p.idle_rxqs).into_iter().enumerate() {
                p.rxq_pmds
                    .push(datapath.add_rxq(p.ofport, q as u16, Box::new(rxq)));
            }
        }
    }

    /// Takes a port out of the datapath and closes it.
    pub fn remove(&mut self, ofport: u32, datapath: &Datapath<Mbuf>, bridge: &Bridge) -> bool {
        if let Some(name) = self.tunnels.remove(&ofport) {
            bridge.remove_port(ofport);
            bridge.tunnels().update(|c| {
                c.ports.remove(&ofport);
            });
            log::info!("port {name} (OpenFlow port {ofport}) removed");
            return true;
        }
        bridge.tunnels().update(|c| {
            c.underlays.retain(|u| u.ofport != ofport);
            c.routes.retain(|r| r.ofport != ofport);
        });
        let Some(mut port) = self.by_ofport.remove(&ofport) else {
            return false;
        };
        bridge.remove_port(ofport);
        datapath.remove_port(ofport);
        port.idle_rxqs.clear();
        close_port(&mut port.eth, &port.name);
        log::info!("port {} (OpenFlow port {ofport}) removed", port.name);
        true
    }

    /// Closes every port (after the datapath has stopped).
    pub fn close_all(&mut self) {
        for (_, mut p) in std::mem::take(&mut self.by_ofport) {
            p.idle_rxqs.clear();
            close_port(&mut p.eth, &p.name);
        }
    }

    /// The OpenFlow number of the port (tunnel ports included) named `name`.
    pub fn ofport_named(&self, name: &str) -> Option<u32> {
        self.by_name(name).map(|p| p.ofport).or_else(|| {
            self.tunnels
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(o, _)| *o)
        })
    }

    /// Finds a port by name.
    pub fn by_name(&self, name: &str) -> Option<&SwitchPort> {
        self.by_ofport.values().find(|p| p.name == name)
    }
}

/// Gives the bridge's tunnel layer the underlay address `l` of port
/// `ofport` (MAC `mac`) and the route to its prefix.
fn add_underlay(bridge: &Bridge, ofport: u32, l: &LocalIp, mac: [u8; 6]) {
    bridge.tunnels().update(|c| {
        c.underlays.push(Underlay {
            ofport,
            ip: l.ip,
            prefix_len: l.prefix_len,
            mac,
        });
        c.routes.push(Route {
            prefix: l.ip & ofproto::tunnel::prefix_mask(l.prefix_len),
            len: l.prefix_len,
            via: None,
            ofport,
            user: false,
        });
    });
}

/// Closes a port, logging (not failing on) errors. `close` stops the
/// port itself after draining its rx queues: stopping it first would skip
/// the drain and strand the mbufs waiting in a driver ring (net_ring).
fn close_port(eth: &mut EthPort, name: &str) {
    if let Err(e) = eth.close() {
        log::warn!("port {name}: close: {e}");
    }
}
