//! `pmd`: ports, PMD threads, packet batches and datapath action execution.

pub mod capture;
pub mod execute;
pub mod packet;
pub mod port;

pub use packet::{Batch, Packet, VecPacket, BURST};
pub use port::{MemPort, RxQueue, TxQueue};
pub mod datapath;
pub mod dpdk;
pub mod stats;
pub use dpdk::{DpdkError, DpdkRxq, DpdkTxq, Eal, EthPort, Mbuf, Mempool};
