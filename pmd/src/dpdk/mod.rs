//! DPDK ports and packet buffers behind safe types.
//!
//! - [`Eal`]: process-wide EAL initialisation and cleanup;
//! - [`Mempool`]: a packet buffer pool; [`Mbuf`]: one buffer, a
//!   [`Packet`](crate::Packet);
//! - [`EthPort`]: an ethdev port (open/attach, configure, start, stop,
//!   close, link, stats) handing out [`DpdkRxq`]/[`DpdkTxq`], the
//!   [`RxQueue`](crate::RxQueue)/[`TxQueue`](crate::TxQueue) a PMD thread
//!   polls;
//! - [`register_thread`], [`tsc`], [`tsc_hz`]: PMD thread helpers.
//!
//! The receive/transmit/data-access paths allocate nothing, take no lock
//! and make no system call.

mod eal;
mod error;
mod mbuf;
mod mempool;
mod port;
mod queue;
pub mod thp;
mod thread;
mod vhost;

pub use eal::{has_hugepages, is_initialized, remove_owned_runtime_dir, Eal};
pub use error::{DpdkError, QueueDir, RteError};
pub use mbuf::Mbuf;
pub use mempool::{MbufMemory, Mempool, MBUF_DEFAULT_BUF_SIZE, MBUF_HEADROOM, MEMPOOL_NAME_MAX};
pub use port::{
    any_device_with_driver, every_device_virtual, DeviceInfo, EthPort, LinkStatus, PortState,
    PortStats, ETH_NAME_MAX, MAX_ETHPORTS,
};
pub use queue::{DpdkRxq, DpdkTxq, SharedTxq};
pub use thread::{lcore_id, register_thread, tsc, tsc_hz, unregister_thread};
pub use vhost::{VhostQueueState, VhostTxq};

/// The DPDK release vportd was built against, as `rte_version()` spells it
/// (`DPDK 22.11.4`): OVS writes it to `Open_vSwitch.dpdk_version`.
pub fn version() -> String {
    format!(
        "DPDK {}.{:02}.{}",
        dpdk_sys::RTE_VER_YEAR,
        dpdk_sys::RTE_VER_MONTH,
        dpdk_sys::RTE_VER_MINOR
    )
}
