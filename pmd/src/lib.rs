//! `pmd`: ports, PMD threads, packet batches and datapath action execution.

pub mod packet;
pub mod port;
pub mod execute;

pub use packet::{Batch, Packet, VecPacket, BURST};
pub use port::{MemPort, RxQueue, TxQueue};
pub mod datapath;
pub mod stats;
pub mod dpdk;
pub use dpdk::{DpdkError, DpdkRxq, DpdkTxq, Eal, EthPort, Mbuf, Mempool};
