//! Flow key extraction (OVS `miniflow_extract`): parse a frame into a
//! [`FlowKey`] plus the offsets of its headers.
//!
//! STUB: the signatures below are the contract; the body is being written.

use crate::key::FlowKey;

/// Offset value meaning "this header is not present".
pub const NO_OFFSET: u16 = u16::MAX;

/// Where the headers of a parsed frame start (OVS `l2_5_ofs`, `l3_ofs`,
/// `l4_ofs`). [`NO_OFFSET`] when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// First MPLS label (or the LLC/SNAP header), if any.
    pub l2_5: u16,
    /// IPv4/IPv6/ARP header.
    pub l3: u16,
    /// TCP/UDP/SCTP/ICMP header (set whenever the IP header was valid,
    /// later fragments included, as OVS does).
    pub l4: u16,
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets {
            l2_5: NO_OFFSET,
            l3: NO_OFFSET,
            l4: NO_OFFSET,
        }
    }
}

/// Datapath metadata that is not in the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub in_port: u32,
    pub recirc_id: u32,
    pub dp_hash: u32,
    pub pkt_mark: u32,
}

/// Why a frame could not be parsed at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// Shorter than an Ethernet header (14 bytes): dropped and counted.
    #[error("frame of {0} bytes is shorter than an Ethernet header")]
    TooShort(usize),
}

/// Number of VLAN tags parsed into the key (OVS `vlan-limit`, default 1).
pub const DEFAULT_VLAN_LIMIT: usize = 1;

/// Parses `frame` into `key` (fully overwritten) and returns the header
/// offsets.
pub fn extract(frame: &[u8], meta: &PacketMeta, key: &mut FlowKey) -> Result<Offsets, ExtractError> {
    let _ = (frame, meta, key);
    unimplemented!("extract is being written")
}
