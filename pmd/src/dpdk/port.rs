//! DPDK ethdev ports.
//!
//! Lifecycle: [`EthPort::open`] (or [`EthPort::attach`] to hot-plug a
//! device) → [`EthPort::configure`] → [`EthPort::start`] → take queue
//! handles with [`EthPort::rxq`]/[`EthPort::txq`] and give them to the PMD
//! threads → drop the handles → [`EthPort::stop`] / reconfigure /
//! [`EthPort::close`].
//!
//! Safety model: the datapath calls (`rte_eth_rx_burst`/`tx_burst`) must
//! not race with control calls that change the port (configure, start,
//! stop, close), and one queue must be used by one thread at a time.
//! Both are enforced here: queue handles exist only while the port is
//! started, at most one per queue, and state changes need every handle to
//! be dropped ([`DpdkError::PortBusy`] otherwise). A handle keeps the port
//! open, so dropping an [`EthPort`] while its queues are still in use
//! closes the device only when the last handle goes.

use super::eal::{eal_ref, EalRef};
use super::error::{DpdkError, QueueDir, RteError};
use super::mempool::{MbufMemory, Mempool};
use super::queue::{DpdkRxq, DpdkTxq};
use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Number of ethdev port ids of this DPDK build (`RTE_MAX_ETHPORTS`).
pub const MAX_ETHPORTS: usize = dpdk_sys::RTE_MAX_ETHPORTS as usize;

/// Longest device name (`RTE_ETH_NAME_MAX_LEN` minus the NUL).
pub const ETH_NAME_MAX: usize = dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize - 1;

/// Which port ids an [`EthPort`] owns, so that one device never has two
/// owners (a second close could hit a reused port id).
static PORT_OWNED: [AtomicBool; MAX_ETHPORTS] = [const { AtomicBool::new(false) }; MAX_ETHPORTS];

/// Where a port is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// Found or attached, not configured (or a configuration failed).
    Probed,
    /// Queues set up, not started (or stopped).
    Configured,
    /// Started: packets flow, queue handles can be taken.
    Started,
    /// Closed: the port id is released and nothing works any more.
    Closed,
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortState::Probed => "not configured",
            PortState::Configured => "configured but not started",
            PortState::Started => "started",
            PortState::Closed => "closed",
        })
    }
}

/// Link status of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s, `None` when the driver does not know it.
    pub speed_mbps: Option<u32>,
    /// Full duplex.
    pub full_duplex: bool,
    /// Autonegotiated.
    pub autoneg: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the hardware (rx queue full).
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive failures for lack of mbufs.
    pub rx_nombuf: u64,
    /// Received frames longer than one mbuf, dropped by vportd (counted in
    /// software: the device took them).
    pub rx_oversized: u64,
    /// Packets the device's tx queue refused (queue full), freed by vportd.
    pub tx_full: u64,
    /// Packets the device refused while its link was down (a vhost-user
    /// port without a running guest), freed by vportd.
    pub tx_link_down: u64,
}

impl PortStats {
    /// Every packet this port lost, whatever the reason.
    pub fn total_drops(&self) -> u64 {
        self.imissed
            + self.ierrors
            + self.oerrors
            + self.rx_nombuf
            + self.rx_oversized
            + self.tx_full
            + self.tx_link_down
    }
}

/// Drops counted by vportd's queue handles (the device does not see them).
#[derive(Debug, Default)]
pub(crate) struct SoftwareDrops {
    pub(crate) rx_oversized: AtomicU64,
    pub(crate) tx_full: AtomicU64,
    pub(crate) tx_link_down: AtomicU64,
}

/// A device a port was hot-plugged from, removed again on close.
#[derive(Debug)]
struct HotplugDevice(NonNull<dpdk_sys::rte_device>);

// SAFETY: the pointer is only handed to rte_dev_remove (once, under the
// exclusive access of close/drop); DPDK's hotplug calls take their own lock.
unsafe impl Send for HotplugDevice {}
// SAFETY: nothing reads through `&HotplugDevice`.
unsafe impl Sync for HotplugDevice {}

/// State of a port shared with its queue handles.
#[derive(Debug)]
pub(crate) struct PortShared {
    pub(crate) port_id: u16,
    pub(crate) name: String,
    state: PortState,
    n_rxq: u16,
    n_txq: u16,
    rx_desc: u16,
    tx_desc: u16,
    /// One flag per queue: a handle exists.
    rxq_taken: Box<[AtomicBool]>,
    txq_taken: Box<[AtomicBool]>,
    hotplug: Option<HotplugDevice>,
    /// The pools the rx queues may reference, the current one last: after
    /// a failed reconfiguration some queues still use the previous pool.
    /// Dropped after the close.
    mempools: Vec<Mempool>,
    /// Drops the queue handles count (cold paths only).
    pub(crate) drops: SoftwareDrops,
    /// The link was down when last read ([`EthPort::link`]); the tx
    /// queues read it only to name the reason of a drop.
    pub(crate) link_down: AtomicBool,
    _eal: EalRef,
}

impl PortShared {
    /// Marks queue `queue` as having a handle.
    pub(crate) fn take_queue(&self, dir: QueueDir, queue: u16) -> Result<(), DpdkError> {
        let (flags, configured) = match dir {
            QueueDir::Rx => (&self.rxq_taken, self.n_rxq),
            QueueDir::Tx => (&self.txq_taken, self.n_txq),
        };
        let flag = flags
            .get(usize::from(queue))
            .ok_or_else(|| DpdkError::NoSuchQueue {
                port: self.name.clone(),
                dir,
                queue,
                configured,
            })?;
        if flag.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::QueueTaken {
                port: self.name.clone(),
                dir,
                queue,
            });
        }
        Ok(())
    }

    /// Marks queue `queue` as free again (its handle is dropped).
    pub(crate) fn release_queue(&self, dir: QueueDir, queue: u16) {
        let flags = match dir {
            QueueDir::Rx => &self.rxq_taken,
            QueueDir::Tx => &self.txq_taken,
        };
        if let Some(flag) = flags.get(usize::from(queue)) {
            flag.store(false, Ordering::Release);
        }
    }

    /// Stops (if started) and closes the device, removes a hot-plugged
    /// device, and releases the port id. Idempotent; the first error is
    /// returned but every step is attempted.
    fn close_now(&mut self) -> Result<(), DpdkError> {
        if self.state == PortState::Closed {
            return Ok(());
        }
        let mut result = Ok(());
        if self.state == PortState::Started {
            self.drain_rx_queues();
            // SAFETY: the port id is owned by us and still open; no queue
            // handle exists (close runs with exclusive access or from the
            // last reference's drop).
            let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.port_id) };
            if ret < 0 {
                result = Err(self.op_error("stop", ret));
            }
        }
        // SAFETY: as above; after this call the port id may be reused by
        // another device, so the state becomes Closed unconditionally.
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(self.port_id) };
        if ret < 0 && result.is_ok() {
            result = Err(self.op_error("close", ret));
        }
        self.state = PortState::Closed;
        if let Some(device) = self.hotplug.take() {
            // SAFETY: the device was probed by `attach` and is removed once
            // (taken out of the Option); its ethdev is closed.
            let ret = unsafe { dpdk_sys::rte_dev_remove(device.0.as_ptr()) };
            if ret < 0 && result.is_ok() {
                result = Err(self.op_error("device remove", ret));
            }
        }
        PORT_OWNED[usize::from(self.port_id)].store(false, Ordering::Release);
        result
    }

    /// Receives and frees what waits in the rx queues of a started port.
    /// Some drivers free their queues on close without returning the
    /// mbufs inside (net_ring frees its rings as they are), which would
    /// leak them from the pool. Bounded, as some never run dry (net_null).
    fn drain_rx_queues(&self) {
        /// Most bursts taken per queue.
        const MAX_DRAIN_BURSTS: usize = 64;
        let mut packets = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>(); crate::packet::BURST];
        for queue in 0..self.n_rxq {
            for _ in 0..MAX_DRAIN_BURSTS {
                // SAFETY: started port, queue < n_rxq, and no queue handle
                // exists (exclusive access or last reference); `packets`
                // has room for BURST pointers.
                let received = unsafe {
                    dpdk_sys::vportd_rx_burst(
                        self.port_id,
                        queue,
                        packets.as_mut_ptr(),
                        crate::packet::BURST as u16,
                    )
                };
                if received == 0 {
                    break;
                }
                // SAFETY: the driver handed us `received` owned mbufs.
                unsafe {
                    dpdk_sys::rte_pktmbuf_free_bulk(packets.as_mut_ptr(), u32::from(received))
                };
            }
        }
    }

    fn op_error(&self, op: &'static str, ret: i32) -> DpdkError {
        DpdkError::PortOp {
            port: self.name.clone(),
            op,
            error: RteError::from_ret(ret),
        }
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        if let Err(e) = self.close_now() {
            log::warn!("closing DPDK port {:?}: {e}", self.name);
        }
    }
}

/// An ethdev port (`rte_eth_dev_*`), closed on drop.
#[derive(Debug)]
pub struct EthPort {
    shared: Arc<PortShared>,
    driver_name: String,
}

impl EthPort {
    /// Opens the existing ethdev called `name` (a `--vdev` or an allowed
    /// PCI device, named as DPDK names it: `net_null0`,
    /// `0000:01:00.0`, ...).
    pub fn open(name: &str) -> Result<EthPort, DpdkError> {
        let eal = eal_ref()?;
        let port_id = find_port(name)?;
        Self::own(eal, port_id, name, None)
    }

    /// Hot-plugs a device from a devargs string (`rte_dev_probe`, e.g.
    /// `net_pcap1,rx_pcap=in.pcap,tx_pcap=out.pcap`) and opens its ethdev,
    /// named like the device (the devargs up to the first comma). The
    /// device is removed again when the port is closed.
    pub fn attach(devargs: &str) -> Result<EthPort, DpdkError> {
        let eal = eal_ref()?;
        let name = devargs.split(',').next().unwrap_or_default().trim();
        check_name("device", name)?;
        let c_devargs = CString::new(devargs).map_err(|_| DpdkError::InvalidName {
            what: "devargs",
            name: devargs.to_string(),
            reason: "contains a NUL byte",
        })?;
        // SAFETY: the EAL is initialised; c_devargs is NUL-terminated and
        // only read.
        let ret = unsafe { dpdk_sys::rte_dev_probe(c_devargs.as_ptr()) };
        if ret < 0 {
            return Err(DpdkError::DeviceProbe {
                devargs: devargs.to_string(),
                error: RteError::from_ret(ret),
            });
        }
        let port_id = match find_port(name) {
            Ok(port_id) => port_id,
            Err(e) => {
                log::warn!("device {devargs:?} was probed but has no ethdev named {name:?}; it stays plugged");
                return Err(e);
            }
        };
        let info = dev_info(port_id, name)?;
        let hotplug = NonNull::new(info.device).map(HotplugDevice);
        Self::own(eal, port_id, name, hotplug)
    }

    /// Takes ownership of `port_id`.
    fn own(
        eal: EalRef,
        port_id: u16,
        name: &str,
        hotplug: Option<HotplugDevice>,
    ) -> Result<EthPort, DpdkError> {
        let owned = &PORT_OWNED[usize::from(port_id)];
        if owned.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::PortAlreadyOpen {
                name: name.to_string(),
                port_id,
            });
        }
        let info = match dev_info(port_id, name) {
            Ok(info) => info,
            Err(e) => {
                owned.store(false, Ordering::Release);
                return Err(e);
            }
        };
        let driver_name = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: non-null driver_name is a NUL-terminated static string
            // of the driver.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // From here on, dropping `shared` closes the port and clears `owned`.
        let shared = Arc::new(PortShared {
            port_id,
            name: name.to_string(),
            state: PortState::Probed,
            n_rxq: 0,
            n_txq: 0,
            rx_desc: 0,
            tx_desc: 0,
            rxq_taken: Box::new([]),
            drops: SoftwareDrops::default(),
            link_down: AtomicBool::new(false),
            txq_taken: Box::new([]),
            hotplug,
            mempools: Vec::new(),
            _eal: eal,
        });
        Ok(EthPort {
            shared,
            driver_name,
        })
    }

    /// Exclusive access to the shared state for an operation that changes
    /// the port; refused while queue handles are alive.
    fn exclusive(&mut self, op: &'static str) -> Result<&mut PortShared, DpdkError> {
        let handles = Arc::strong_count(&self.shared) - 1;
        let port = self.shared.name.clone();
        Arc::get_mut(&mut self.shared).ok_or(DpdkError::PortBusy { port, op, handles })
    }

    fn state_error(&self, op: &'static str) -> DpdkError {
        DpdkError::PortState {
            port: self.shared.name.clone(),
            op,
            state: self.shared.state,
        }
    }

    fn check_open(&self, op: &'static str) -> Result<(), DpdkError> {
        if self.shared.state == PortState::Closed {
            return Err(self.state_error(op));
        }
        Ok(())
    }

    /// Sets up `n_rxq` receive queues of `rx_desc` descriptors, allocating
    /// from `pool`, and `n_txq` transmit queues of `tx_desc` descriptors.
    ///
    /// Queue counts are clamped to what the device supports and descriptor
    /// counts adjusted to its limits (`0` = driver default); read the
    /// result with [`n_rxq`](Self::n_rxq), [`rx_desc`](Self::rx_desc), ...
    /// RSS is enabled when the device supports it, so that received mbufs
    /// carry a hash. The port must not be started. On failure the port is
    /// left unconfigured.
    pub fn configure(
        &mut self,
        n_rxq: u16,
        n_txq: u16,
        rx_desc: u16,
        tx_desc: u16,
        pool: &Mempool,
    ) -> Result<(), DpdkError> {
        const OP: &str = "configure";
        if n_rxq == 0 || n_txq == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "port {:?}: at least one rx and one tx queue are needed (got {n_rxq} rx, {n_txq} tx)",
                self.shared.name
            )));
        }
        if matches!(self.shared.state, PortState::Started | PortState::Closed) {
            return Err(self.state_error(OP));
        }
        let shared = self.exclusive(OP)?;
        let port_id = shared.port_id;
        let info = dev_info(port_id, &shared.name)?;
        if pool.memory() != MbufMemory::Eal && !is_virtual_device(&info) {
            return Err(DpdkError::InvalidArgument(format!(
                "port {:?}: a device that does DMA cannot use mbuf pool {:?}, which is on {:?} memory; use the EAL's memory (hugepages) for it",
                shared.name,
                pool.name(),
                pool.memory()
            )));
        }
        if info.max_rx_queues == 0 || info.max_tx_queues == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "port {:?}: device supports {} rx and {} tx queues",
                shared.name, info.max_rx_queues, info.max_tx_queues
            )));
        }
        let n_rxq_used = n_rxq.min(info.max_rx_queues);
        let n_txq_used = n_txq.min(info.max_tx_queues);
        if (n_rxq_used, n_txq_used) != (n_rxq, n_txq) {
            log::info!(
                "port {:?}: {n_rxq} rx/{n_txq} tx queues requested, device supports {}/{}; using {n_rxq_used}/{n_txq_used}",
                shared.name,
                info.max_rx_queues,
                info.max_tx_queues
            );
        }

        // From here on the DPDK port is (being) reconfigured: until every
        // step succeeds it counts as unconfigured, and the queues may use
        // the old or the new pool, so both stay alive.
        shared.state = PortState::Probed;
        shared.mempools.push(pool.clone());
        let conf = port_conf(&info);
        // SAFETY: owned, open, stopped port (state checked above); `conf` is
        // a valid rte_eth_conf that DPDK copies.
        let ret =
            unsafe { dpdk_sys::rte_eth_dev_configure(port_id, n_rxq_used, n_txq_used, &conf) };
        if ret < 0 {
            return Err(shared.op_error(OP, ret));
        }
        let (mut rx_desc_used, mut tx_desc_used) = (rx_desc, tx_desc);
        // SAFETY: configured port; the pointers are to live local u16s.
        let ret = unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(
                port_id,
                &mut rx_desc_used,
                &mut tx_desc_used,
            )
        };
        if ret < 0 {
            return Err(shared.op_error("descriptor count adjustment", ret));
        }
        // SAFETY: valid port id; returns -1 (SOCKET_ID_ANY) when unknown.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(port_id) };
        let socket = u32::try_from(socket).unwrap_or(dpdk_sys::SOCKET_ID_ANY as u32);
        for queue in 0..n_rxq_used {
            // SAFETY: configured port, queue < configured count; a NULL
            // rx_conf selects the driver defaults; the pool is a live
            // pktmbuf pool kept alive by `shared.mempools` until after close.
            let ret = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    port_id,
                    queue,
                    rx_desc_used,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if ret < 0 {
                let op = if driver_name(&info) == "net_pcap" {
                    // The one refusal users hit: DPDK 22.11's net_pcap
                    // preloads an `infinite_rx` pcap into single mbufs.
                    "rx queue setup (net_pcap with infinite_rx=1 refuses a pcap holding a frame larger than one mbuf)"
                } else {
                    "rx queue setup"
                };
                return Err(shared.op_error(op, ret));
            }
        }
        for queue in 0..n_txq_used {
            // SAFETY: configured port, queue < configured count; NULL tx_conf
            // selects the driver defaults.
            let ret = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(
                    port_id,
                    queue,
                    tx_desc_used,
                    socket,
                    std::ptr::null(),
                )
            };
            if ret < 0 {
                return Err(shared.op_error("tx queue setup", ret));
            }
        }

        shared.n_rxq = n_rxq_used;
        shared.n_txq = n_txq_used;
        shared.rx_desc = rx_desc_used;
        shared.tx_desc = tx_desc_used;
        shared.rxq_taken = (0..n_rxq_used).map(|_| AtomicBool::new(false)).collect();
        shared.txq_taken = (0..n_txq_used).map(|_| AtomicBool::new(false)).collect();
        // Every queue uses `pool` now; older pools can go.
        shared.mempools = vec![pool.clone()];
        shared.state = PortState::Configured;
        Ok(())
    }

    /// Starts the port (`rte_eth_dev_start`). Starting a started port is a
    /// no-op.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        const OP: &str = "start";
        match self.shared.state {
            PortState::Started => return Ok(()),
            PortState::Configured => {}
            PortState::Probed | PortState::Closed => return Err(self.state_error(OP)),
        }
        let shared = self.exclusive(OP)?;
        // SAFETY: owned, configured port with every queue set up; no queue
        // handle exists (exclusive access).
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(shared.port_id) };
        if ret < 0 {
            return Err(shared.op_error(OP, ret));
        }
        shared.state = PortState::Started;
        Ok(())
    }

    /// Stops the port (`rte_eth_dev_stop`); every queue handle must have
    /// been dropped. Stopping a stopped port is a no-op.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        const OP: &str = "stop";
        match self.shared.state {
            PortState::Started => {}
            PortState::Probed | PortState::Configured => return Ok(()),
            PortState::Closed => return Err(self.state_error(OP)),
        }
        let shared = self.exclusive(OP)?;
        // SAFETY: owned, started port; no queue handle exists, so no burst
        // call runs concurrently.
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(shared.port_id) };
        if ret < 0 {
            return Err(shared.op_error(OP, ret));
        }
        shared.state = PortState::Configured;
        Ok(())
    }

    /// Stops and closes the port (and removes a hot-plugged device); every
    /// queue handle must have been dropped. Packets waiting in the rx
    /// queues are received and freed first, so that no mbuf stays lost in
    /// a driver ring. Idempotent; also done on drop.
    pub fn close(&mut self) -> Result<(), DpdkError> {
        if self.shared.state == PortState::Closed {
            return Ok(());
        }
        self.exclusive("close")?.close_now()
    }

    /// Sets the device MTU (`rte_eth_dev_set_mtu`); `Ok(false)` when the
    /// driver has no MTU setting (most virtual devices: their frame size is
    /// bounded only by the mbufs they receive into).
    pub fn set_mtu(&self, mtu: u16) -> Result<bool, DpdkError> {
        self.check_open("set MTU")?;
        // SAFETY: owned, open port; a control call with no pointers.
        let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.shared.port_id, mtu) };
        match ret {
            0 => Ok(true),
            r if r == -libc::ENOTSUP => Ok(false),
            r => Err(self.shared.op_error("set MTU", r)),
        }
    }

    /// Enables or disables promiscuous mode; `Ok(false)` when the driver
    /// does not support changing it.
    pub fn set_promiscuous(&self, enabled: bool) -> Result<bool, DpdkError> {
        self.check_open("set promiscuous mode")?;
        let port_id = self.shared.port_id;
        // SAFETY: owned, open port; a control call DPDK allows at any time.
        let ret = unsafe {
            if enabled {
                dpdk_sys::rte_eth_promiscuous_enable(port_id)
            } else {
                dpdk_sys::rte_eth_promiscuous_disable(port_id)
            }
        };
        match ret {
            0 => Ok(true),
            r if r == -libc::ENOTSUP => Ok(false),
            r => Err(self.shared.op_error("set promiscuous mode", r)),
        }
    }

    /// Sets the link up or down (`rte_eth_dev_set_link_up`/`_down`, what
    /// OVS-DPDK does for an admin up/down port). Returns false when the
    /// driver cannot (ENOTSUP), as OVS ignores that too.
    pub fn set_link(&self, up: bool) -> Result<bool, DpdkError> {
        self.check_open("set link")?;
        let port_id = self.shared.port_id;
        // SAFETY: owned, open port; setting the link state is a control
        // operation the driver serialises itself.
        let ret = unsafe {
            if up {
                dpdk_sys::rte_eth_dev_set_link_up(port_id)
            } else {
                dpdk_sys::rte_eth_dev_set_link_down(port_id)
            }
        };
        match ret {
            0 => Ok(true),
            r if r == -libc::ENOTSUP => Ok(false),
            r => Err(self.shared.op_error("set link", r)),
        }
    }

    /// The link status, without waiting for autonegotiation.
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        self.check_open("read link")?;
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: owned, open port; `link` is a live rte_eth_link to fill.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.shared.port_id, &mut link) };
        if ret < 0 {
            return Err(self.shared.op_error("link get", ret));
        }
        let speed = link.link_speed;
        self.shared
            .link_down
            .store(link.link_status() == 0, Ordering::Relaxed);
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: (speed != dpdk_sys::RTE_ETH_SPEED_NUM_UNKNOWN
                && speed != dpdk_sys::RTE_ETH_SPEED_NUM_NONE)
                .then_some(speed),
            full_duplex: link.link_duplex() != 0,
            autoneg: link.link_autoneg() != 0,
        })
    }

    /// The basic counters (`rte_eth_stats_get`).
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        self.check_open("read stats")?;
        let mut stats = dpdk_sys::rte_eth_stats::default();
        // SAFETY: owned, open port; `stats` is a live struct to fill.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.shared.port_id, &mut stats) };
        if ret < 0 {
            return Err(self.shared.op_error("stats get", ret));
        }
        Ok(PortStats {
            ipackets: stats.ipackets,
            opackets: stats.opackets,
            ibytes: stats.ibytes,
            obytes: stats.obytes,
            imissed: stats.imissed,
            ierrors: stats.ierrors,
            oerrors: stats.oerrors,
            rx_nombuf: stats.rx_nombuf,
            rx_oversized: self.shared.drops.rx_oversized.load(Ordering::Relaxed),
            tx_full: self.shared.drops.tx_full.load(Ordering::Relaxed),
            tx_link_down: self.shared.drops.tx_link_down.load(Ordering::Relaxed),
        })
    }

    /// Resets the basic and extended counters.
    pub fn reset_stats(&self) -> Result<(), DpdkError> {
        self.check_open("reset stats")?;
        self.shared.drops.rx_oversized.store(0, Ordering::Relaxed);
        self.shared.drops.tx_full.store(0, Ordering::Relaxed);
        self.shared.drops.tx_link_down.store(0, Ordering::Relaxed);
        // SAFETY: owned, open port.
        let ret = unsafe { dpdk_sys::rte_eth_stats_reset(self.shared.port_id) };
        if ret < 0 {
            return Err(self.shared.op_error("stats reset", ret));
        }
        // SAFETY: owned, open port.
        let ret = unsafe { dpdk_sys::rte_eth_xstats_reset(self.shared.port_id) };
        if ret < 0 && ret != -libc::ENOTSUP {
            return Err(self.shared.op_error("xstats reset", ret));
        }
        Ok(())
    }

    /// The driver's extended counters, as (name, value) pairs.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        self.check_open("read xstats")?;
        let port_id = self.shared.port_id;
        // SAFETY: owned, open port; a NULL array with size 0 asks for the
        // count.
        let count = unsafe { dpdk_sys::rte_eth_xstats_get_names(port_id, std::ptr::null_mut(), 0) };
        let count =
            u32::try_from(count).map_err(|_| self.shared.op_error("xstats names", count))?;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name { name: [0; 64] }; count as usize];
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); count as usize];
        // SAFETY: `names` has room for `count` entries.
        let got_names =
            unsafe { dpdk_sys::rte_eth_xstats_get_names(port_id, names.as_mut_ptr(), count) };
        let got_names = usize::try_from(got_names)
            .map_err(|_| self.shared.op_error("xstats names", got_names))?;
        // SAFETY: `values` has room for `count` entries.
        let got_values =
            unsafe { dpdk_sys::rte_eth_xstats_get(port_id, values.as_mut_ptr(), count) };
        let got_values = usize::try_from(got_values)
            .map_err(|_| self.shared.op_error("xstats get", got_values))?;
        // The counter set cannot change under `&self` (reconfiguring needs
        // `&mut`); should the driver still report more than it announced,
        // DPDK filled nothing: report it rather than return zeros.
        if got_names > names.len() || got_values > values.len() {
            return Err(self.shared.op_error("xstats get", -libc::EAGAIN));
        }
        names.truncate(got_names);
        values.truncate(got_values);
        Ok(values
            .iter()
            .filter_map(|xstat| {
                let name = names.get(usize::try_from(xstat.id).ok()?)?;
                Some((c_name(&name.name), xstat.value))
            })
            .collect())
    }

    /// The port's MAC address.
    pub fn mac_address(&self) -> Result<[u8; 6], DpdkError> {
        self.check_open("read MAC address")?;
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: owned, open port; `addr` is a live struct to fill.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.shared.port_id, &mut addr) };
        if ret < 0 {
            return Err(self.shared.op_error("MAC address get", ret));
        }
        Ok(addr.addr_bytes)
    }

    /// A handle on receive queue `queue`, for one PMD thread. The port must
    /// be started; one handle per queue at a time.
    pub fn rxq(&self, queue: u16) -> Result<DpdkRxq, DpdkError> {
        if self.shared.state != PortState::Started {
            return Err(self.state_error("take an rx queue"));
        }
        self.shared.take_queue(QueueDir::Rx, queue)?;
        Ok(DpdkRxq::new(self.shared.clone(), queue))
    }

    /// A handle on transmit queue `queue`, for one PMD thread. The port
    /// must be started; one handle per queue at a time.
    pub fn txq(&self, queue: u16) -> Result<DpdkTxq, DpdkError> {
        if self.shared.state != PortState::Started {
            return Err(self.state_error("take a tx queue"));
        }
        self.shared.take_queue(QueueDir::Tx, queue)?;
        Ok(DpdkTxq::new(self.shared.clone(), queue))
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The ethdev port id.
    pub fn port_id(&self) -> u16 {
        self.shared.port_id
    }

    /// The driver's name (`net_null`, `net_pcap`, ...).
    pub fn driver_name(&self) -> &str {
        &self.driver_name
    }

    /// Where the port is in its lifecycle.
    pub fn state(&self) -> PortState {
        self.shared.state
    }

    /// Configured receive queues (0 before configure).
    pub fn n_rxq(&self) -> u16 {
        self.shared.n_rxq
    }

    /// Configured transmit queues (0 before configure).
    pub fn n_txq(&self) -> u16 {
        self.shared.n_txq
    }

    /// Descriptors per receive queue (0 = driver default).
    pub fn rx_desc(&self) -> u16 {
        self.shared.rx_desc
    }

    /// Descriptors per transmit queue (0 = driver default).
    pub fn tx_desc(&self) -> u16 {
        self.shared.tx_desc
    }

    /// The pool the receive queues allocate from, once configured.
    pub fn mempool(&self) -> Option<&Mempool> {
        self.shared.mempools.last()
    }

    /// Live queue handles.
    pub fn queue_handles(&self) -> usize {
        Arc::strong_count(&self.shared) - 1
    }

    /// The device's capabilities (`rte_eth_dev_info_get`).
    pub fn info(&self) -> Result<DeviceInfo, DpdkError> {
        self.check_open("read device info")?;
        let info = dev_info(self.shared.port_id, &self.shared.name)?;
        Ok(DeviceInfo {
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rx_desc_max: info.rx_desc_lim.nb_max,
            tx_desc_max: info.tx_desc_lim.nb_max,
            rx_offload_capa: info.rx_offload_capa,
            tx_offload_capa: info.tx_offload_capa,
            flow_type_rss_offloads: info.flow_type_rss_offloads,
        })
    }
}

/// What a device supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Receive queues.
    pub max_rx_queues: u16,
    /// Transmit queues.
    pub max_tx_queues: u16,
    /// Descriptors per receive queue.
    pub rx_desc_max: u16,
    /// Descriptors per transmit queue.
    pub tx_desc_max: u16,
    /// `RTE_ETH_RX_OFFLOAD_*` capabilities.
    pub rx_offload_capa: u64,
    /// `RTE_ETH_TX_OFFLOAD_*` capabilities.
    pub tx_offload_capa: u64,
    /// `RTE_ETH_RSS_*` hash types.
    pub flow_type_rss_offloads: u64,
}

/// Checks a device name before handing it to DPDK.
fn check_name(what: &'static str, name: &str) -> Result<CString, DpdkError> {
    let invalid = |reason| DpdkError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > ETH_NAME_MAX {
        return Err(invalid("longer than RTE_ETH_NAME_MAX_LEN - 1 bytes"));
    }
    CString::new(name).map_err(|_| invalid("contains a NUL byte"))
}

/// The port id of the ethdev called `name`.
fn find_port(name: &str) -> Result<u16, DpdkError> {
    let c_name = check_name("device", name)?;
    let mut port_id = 0u16;
    // SAFETY: the EAL is initialised (callers hold an EalRef); c_name is
    // NUL-terminated; port_id is a live u16 to fill.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut port_id) };
    if ret != 0 || usize::from(port_id) >= MAX_ETHPORTS {
        return Err(DpdkError::NoSuchDevice {
            name: name.to_string(),
        });
    }
    Ok(port_id)
}

/// Whether the device sits on DPDK's virtual-device bus (`--vdev`:
/// net_null, net_pcap, net_tap, net_ring, ...), which does no DMA.
/// The device's driver name (`net_pcap`, `net_ixgbe`, ...).
fn driver_name(info: &dpdk_sys::rte_eth_dev_info) -> String {
    if info.driver_name.is_null() {
        return String::new();
    }
    // SAFETY: `driver_name` points to the driver's static NUL-terminated
    // name, valid as long as the driver is loaded (the process lifetime).
    unsafe { std::ffi::CStr::from_ptr(info.driver_name) }
        .to_string_lossy()
        .into_owned()
}

fn is_virtual_device(info: &dpdk_sys::rte_eth_dev_info) -> bool {
    if info.device.is_null() {
        return false;
    }
    // SAFETY: `info.device` is the ethdev's live rte_device; the bus name
    // is a NUL-terminated literal; both calls only read.
    unsafe {
        let vdev = dpdk_sys::rte_bus_find_by_name(c"vdev".as_ptr());
        !vdev.is_null() && dpdk_sys::rte_dev_bus(info.device) == vdev.cast_const()
    }
}

/// Whether every ethdev of the process is a virtual device (see
/// [`EthPort::configure`]: only those can use pools outside the EAL's
/// memory).
pub fn every_device_virtual() -> bool {
    let mut port_id = 0u16;
    loop {
        // SAFETY: any port id may be passed; returns RTE_MAX_ETHPORTS when
        // there is no further valid port.
        port_id = unsafe { dpdk_sys::rte_eth_find_next(port_id) };
        if u32::from(port_id) >= dpdk_sys::RTE_MAX_ETHPORTS {
            return true;
        }
        match dev_info(port_id, "") {
            Ok(info) if is_virtual_device(&info) => {}
            _ => return false,
        }
        port_id += 1;
    }
}

/// Whether some ethdev of the process has the driver `driver`
/// (`net_virtio_user`: a port that hands its mbufs' memory to another
/// process, so the pool must be in the EAL's shared memory).
pub fn any_device_with_driver(driver: &str) -> bool {
    let mut port_id = 0u16;
    loop {
        // SAFETY: any port id may be passed; returns RTE_MAX_ETHPORTS when
        // there is no further valid port.
        port_id = unsafe { dpdk_sys::rte_eth_find_next(port_id) };
        if u32::from(port_id) >= dpdk_sys::RTE_MAX_ETHPORTS {
            return false;
        }
        if matches!(dev_info(port_id, ""), Ok(info) if driver_name(&info) == driver) {
            return true;
        }
        port_id += 1;
    }
}

/// `rte_eth_dev_info_get`.
fn dev_info(port_id: u16, name: &str) -> Result<dpdk_sys::rte_eth_dev_info, DpdkError> {
    let mut info = dpdk_sys::rte_eth_dev_info::default();
    // SAFETY: valid port id; `info` is a live struct to fill.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(port_id, &mut info) };
    if ret < 0 {
        return Err(DpdkError::PortOp {
            port: name.to_string(),
            op: "device info get",
            error: RteError::from_ret(ret),
        });
    }
    Ok(info)
}

/// Port configuration: defaults, plus RSS over IP/TCP/UDP (and the hash
/// delivered in the mbuf) when the device can.
fn port_conf(info: &dpdk_sys::rte_eth_dev_info) -> dpdk_sys::rte_eth_conf {
    let mut conf = dpdk_sys::rte_eth_conf::default();
    let wanted =
        u64::from(dpdk_sys::RTE_ETH_RSS_IP | dpdk_sys::RTE_ETH_RSS_TCP | dpdk_sys::RTE_ETH_RSS_UDP);
    let rss_hf = wanted & info.flow_type_rss_offloads;
    if rss_hf != 0 {
        conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        let rss_hash = u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH);
        if info.rx_offload_capa & rss_hash != 0 {
            conf.rxmode.offloads |= rss_hash;
        }
    }
    conf
}

/// A NUL-terminated C name in a fixed array, as a String.
fn c_name(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
