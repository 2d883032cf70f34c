//! `pmd`: ports, PMD threads, packet batches and datapath action execution.

pub mod packet;
pub mod port;

pub use packet::{Batch, Packet, VecPacket, BURST};
pub use port::{MemPort, RxQueue, TxQueue};
