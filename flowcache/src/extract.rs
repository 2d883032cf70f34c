//! Flow key extraction (OVS `miniflow_extract`): parse a frame into a
//! [`FlowKey`] plus the offsets of its headers.
//!
//! This is a line-by-line port of OVS 3.1 `lib/flow.c` `miniflow_extract()`
//! (and its helpers `parse_vlan`, `parse_ethertype`, `parse_mpls`,
//! `ipv4_sanity_check`, `ipv6_sanity_check`, `parse_ipv6_ext_hdrs__`,
//! `parse_icmpv6`) for Ethernet frames, including its quirks:
//!
//! * Frames shorter than 14 bytes are rejected ([`ExtractError::TooShort`]);
//!   a bare 14-byte header is a valid packet.
//! * VLAN: TPIDs 0x8100 and 0x88a8 only; at most `vlan_limit` tags
//!   (OVS `vlan-limit`, default 1), so a QinQ frame has the outer tag in
//!   `vlans[0]` and `dl_type` = the inner TPID.  A tag is only taken when the
//!   TPID, the TCI *and* the following type fit (6 bytes), else the TPID is
//!   the `dl_type`.  The stored TCI is the wire TCI with [`VLAN_CFI`] ORed in
//!   (the DEI bit is thereby lost).
//! * Type/length < 0x600 (802.3): LLC/SNAP `AA AA 03` with OUI 0 gives the
//!   SNAP protocol ID as `dl_type` (if it is >= 0x600) and parsing goes on
//!   after the 8-byte LLC/SNAP header; anything else is
//!   [`ETH_TYPE_NONE`] (0x05ff).  `l2_5` is *not* set for LLC (OVS uses
//!   `l2_5_ofs` only for MPLS); `l3` points after the LLC/SNAP header.
//! * MPLS: every label up to and including the bottom of stack is skipped,
//!   the first two are stored (`mpls_lse[0]` = top).  L3 under MPLS is not
//!   parsed.  `l2_5` = first label, `l3` = after the last label read.
//! * `l3` is set for every Ethernet frame (just past the L2 / MPLS headers),
//!   like OVS `l3_ofs`, whatever the `dl_type`.
//! * IPv4 is valid only when: >= 20 bytes, IHL >= 5, IHL*4 <= remaining,
//!   total length <= remaining, total length >= IHL*4 (and at most 65535
//!   bytes of L2 padding), and the version nibble is 4 (checked against
//!   real OVS 3.1 with `shared/conformance/tools/try_case.py`: a version-6
//!   nibble reads as an invalid header).  Invalid: `dl_type` stays 0x0800, every L3/L4 field is 0 and
//!   `l4` is absent.  Bytes after the total length are padding and ignored.
//! * IPv6 is valid when >= 40 bytes, the version nibble is 6 (checked
//!   against real OVS 3.1) and the payload length fits.  Extension headers 0/43/60/51/44 are walked; if one is
//!   truncated only `ipv6_src`/`ipv6_dst` are kept (OVS has already pushed
//!   them; label, TOS, TTL, proto, frag stay 0) and `l4` is absent.  A later
//!   fragment (offset != 0) stops the walk with `nw_proto` = 44 (OVS
//!   quirk, visible as `nw_proto=44` in `ofproto/trace`).  A fragment header
//!   with offset 0 and M = 0 is not a fragment unless its reserved bits are
//!   set (OVS tests the whole offset/flags word against 0).
//! * `l4` is set whenever the IP header (and IPv6 extension headers) were
//!   valid, later fragments included (OVS sets `l4_ofs` before testing
//!   `FLOW_NW_FRAG_LATER`).  L4 fields are parsed unless the packet is a
//!   later fragment.
//! * L4 dispatch is on `nw_proto` only, not on the IP version (as in OVS):
//!   TCP (needs 20 bytes, data offset >= 5 and data offset*4 <= remaining;
//!   `tcp_flags` = low 12 bits of the offset/flags word), UDP (8), SCTP (12),
//!   ICMP and IGMP (8; type/code in `tp_src`/`tp_dst`), ICMPv6 (8;
//!   type/code; NS/NA with code 0: `nd_target` and the SLL/TLL options in
//!   `arp_sha`/`arp_tha`).
//! * ND options: an option of length 0 or longer than the rest ends the
//!   option walk *keeping* what was found; only a repeated SLL (or TLL)
//!   option when the first one was non-zero invalidates the message (target,
//!   SLL and TLL all 0).  ICMPv6 type/code are kept in every case.  OVS also
//!   stores the first option type in `tcp_flags` and the ND reserved word in
//!   `igmp_group_ip4` (`nd_options_type`, `nd_reserved`); [`FlowKey`] has no
//!   such fields and leaves `tcp_flags` 0 for ICMPv6.
//! * ARP/RARP: only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6,
//!   plen 4, 28 bytes) is parsed: SPA/TPA/SHA/THA always, the opcode into
//!   `nw_proto` only when it is <= 0xff (else `nw_proto` stays 0 while the
//!   addresses are still stored).  `l4` is not set.
//!
//! Offsets are `u16` like OVS's; they saturate at `u16::MAX - 1` for frames
//! longer than 64 KiB (which DPDK single-segment mbufs cannot carry).

use crate::key::{
    FlowKey, VlanTag, ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6, ETH_TYPE_MIN, ETH_TYPE_MPLS,
    ETH_TYPE_MPLS_MCAST, ETH_TYPE_NONE, ETH_TYPE_RARP, ETH_TYPE_VLAN, ETH_TYPE_VLAN_8021AD,
    FRAG_ANY, FRAG_LATER, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
    MPLS_BOS_MASK, VLAN_CFI,
};
use crate::wire::{arp, ethernet, icmp, icmpv6, ipv4, ipv6, llc, tcp, udp};
use bytemuck::Zeroable;

/// Offset value meaning "this header is not present".
pub const NO_OFFSET: u16 = u16::MAX;

/// Where the headers of a parsed frame start (OVS `l2_5_ofs`, `l3_ofs`,
/// `l4_ofs`). [`NO_OFFSET`] when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// First MPLS label, if any (OVS `l2_5_ofs`; not set for LLC/SNAP).
    pub l2_5: u16,
    /// Just past the L2 headers (Ethernet, VLAN tags, LLC/SNAP, MPLS
    /// labels): the IPv4/IPv6/ARP header when there is one.  Set for every
    /// frame of at least 14 bytes, like OVS `l3_ofs`.
    pub l3: u16,
    /// TCP/UDP/SCTP/ICMP header (set whenever the IP header was valid,
    /// later fragments included, as OVS does; for IPv6 after the extension
    /// headers).
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

impl Offsets {
    /// A header offset, or `None` for [`NO_OFFSET`].
    #[inline(always)]
    pub fn at(o: u16) -> Option<usize> {
        (o != NO_OFFSET).then_some(o as usize)
    }

    /// The MPLS label stack (or LLC/SNAP header), if any.
    #[inline(always)]
    pub fn l2_5_at(&self) -> Option<usize> {
        Self::at(self.l2_5)
    }

    /// The L3 header, if any.
    #[inline(always)]
    pub fn l3_at(&self) -> Option<usize> {
        Self::at(self.l3)
    }

    /// The L4 header, if any.
    #[inline(always)]
    pub fn l4_at(&self) -> Option<usize> {
        Self::at(self.l4)
    }

    /// Moves a present offset by `delta` bytes.
    #[inline(always)]
    pub fn adjust(o: &mut u16, delta: i16) {
        if *o != NO_OFFSET {
            *o = o.wrapping_add_signed(delta);
        }
    }

    /// Moves every present offset by `delta` bytes (OVS
    /// `dp_packet_resize_l2`: headers added or removed in front).
    #[inline(always)]
    pub fn shift(&mut self, delta: i16) {
        Self::adjust(&mut self.l2_5, delta);
        Self::adjust(&mut self.l3, delta);
        Self::adjust(&mut self.l4, delta);
    }

    /// The L4 header offset and the L4 size of `frame` (OVS
    /// `dp_packet_l4_size`: up to the end of the IP payload, L2 padding
    /// excluded).
    #[inline]
    pub fn l4_span(&self, frame: &[u8]) -> Option<(usize, usize)> {
        let l4 = self.l4_at()?;
        let len = frame.len();
        let mut end = len;
        if let Some(l3) = self.l3_at() {
            if l3 < len {
                let ip = &frame[l3..];
                match ip[0] >> 4 {
                    4 if ip.len() >= ipv4::TOTAL_LEN + 2 => {
                        let tot = ipv4::Packet::new_unchecked(ip).total_len();
                        end = end.min(l3 + usize::from(tot));
                    }
                    6 if ip.len() >= ipv6::PAYLOAD_LEN + 2 => {
                        let plen = ipv6::Packet::new_unchecked(ip).payload_len();
                        end = end.min(l3 + ipv6::Packet::<&[u8]>::HEADER_LEN + usize::from(plen));
                    }
                    _ => {}
                }
            }
        }
        Some((l4, end.saturating_sub(l4)))
    }
}

/// Datapath metadata that is not in the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub in_port: u32,
    pub recirc_id: u32,
    pub dp_hash: u32,
    pub pkt_mark: u32,
    /// Connection tracking state left by a datapath `ct` action (all zero
    /// for an untracked packet).
    pub ct: CtMeta,
    /// Tunnel metadata set by a datapath `tnl_pop` (all zero for a packet
    /// that did not arrive through a tunnel).
    pub tun: TunMeta,
}

/// The tunnel metadata of a decapsulated packet (OVS `md.tunnel`), carried
/// into the key's tunnel words. `dst == 0` means "no tunnel".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunMeta {
    pub id: u64,
    pub src: u32,
    pub dst: u32,
    /// `FLOW_TNL_F_*` bits.
    pub flags: u16,
    pub tos: u8,
    pub ttl: u8,
    pub tp_src: u16,
    pub tp_dst: u16,
}

impl TunMeta {
    /// Copies the metadata into the key's tunnel words.
    #[inline]
    pub fn write_key(&self, key: &mut FlowKey) {
        key.tun_id = self.id;
        key.tun_src = self.src;
        key.tun_dst = self.dst;
        key.tun_flags = self.flags;
        key.tun_tos = self.tos;
        key.tun_ttl = self.ttl;
        key.tun_tp_src = self.tp_src;
        key.tun_tp_dst = self.tp_dst;
    }
}

/// The connection tracking metadata of a packet (OVS `md.ct_*`): what a
/// `ct` action found, carried into the key of the recirculated packet.
/// Everything is 0 while `state` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtMeta {
    /// `CS_*` bits.
    pub state: u8,
    pub zone: u16,
    pub mark: u32,
    pub label: u128,
    /// The original direction of the connection (OVS `ct_orig_tuple`);
    /// `nw_proto` 0 when there is none.
    pub nw_proto: u8,
    pub nw_src: u32,
    pub nw_dst: u32,
    pub ipv6_src: [u8; 16],
    pub ipv6_dst: [u8; 16],
    pub tp_src: u16,
    pub tp_dst: u16,
}

impl CtMeta {
    /// Copies the metadata into the key's ct words.
    #[inline]
    pub fn write_key(&self, key: &mut FlowKey) {
        key.ct_state = self.state;
        key.ct_zone = self.zone;
        key.ct_mark = self.mark;
        key.ct_label = self.label.to_be_bytes();
        key.ct_nw_proto = self.nw_proto;
        key.ct_nw_src = self.nw_src;
        key.ct_nw_dst = self.nw_dst;
        key.ct_ipv6_src = self.ipv6_src;
        key.ct_ipv6_dst = self.ipv6_dst;
        key.ct_tp_src = self.tp_src;
        key.ct_tp_dst = self.tp_dst;
    }

    /// The metadata held in a key's ct words.
    pub fn from_key(key: &FlowKey) -> CtMeta {
        CtMeta {
            state: key.ct_state,
            zone: key.ct_zone,
            mark: key.ct_mark,
            label: u128::from_be_bytes(key.ct_label),
            nw_proto: key.ct_nw_proto,
            nw_src: key.ct_nw_src,
            nw_dst: key.ct_nw_dst,
            ipv6_src: key.ct_ipv6_src,
            ipv6_dst: key.ct_ipv6_dst,
            tp_src: key.ct_tp_src,
            tp_dst: key.ct_tp_dst,
        }
    }
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

/// Most VLAN tags a key can hold (`FlowKey::vlans`); larger limits are
/// clamped to this.
pub const MAX_VLAN_HEADERS: usize = 2;

/// IGMP protocol number (parsed like ICMP: type/code into `tp_src`/`tp_dst`).
const IPPROTO_IGMP: u8 = 2;

/// Parses `frame` into `key` (fully overwritten) and returns the header
/// offsets.  Same as [`extract_with_vlan_limit`] with
/// [`DEFAULT_VLAN_LIMIT`].
///
/// On [`ExtractError::TooShort`] the key still holds the metadata and zeros
/// elsewhere.
#[inline]
pub fn extract(
    frame: &[u8],
    meta: &PacketMeta,
    key: &mut FlowKey,
) -> Result<Offsets, ExtractError> {
    extract_with_vlan_limit(frame, meta, key, DEFAULT_VLAN_LIMIT)
}

/// [`extract`] with an explicit VLAN limit (OVS `other_config:vlan-limit`;
/// 0 means "as many as the key holds", i.e. [`MAX_VLAN_HEADERS`]).
#[inline]
pub fn extract_with_vlan_limit(
    frame: &[u8],
    meta: &PacketMeta,
    key: &mut FlowKey,
    vlan_limit: usize,
) -> Result<Offsets, ExtractError> {
    // Datapath words and OpenFlow words alike end up 0 unless set below.
    *key = FlowKey::zeroed();
    key.recirc_id = meta.recirc_id;
    key.in_port = meta.in_port;
    key.dp_hash = meta.dp_hash;
    key.pkt_mark = meta.pkt_mark;
    if meta.ct.state != 0 {
        meta.ct.write_key(key);
    }
    if meta.tun.dst != 0 {
        meta.tun.write_key(key);
    }

    let Some(eth) = frame.first_chunk::<{ ethernet::Frame::<&[u8]>::HEADER_LEN }>() else {
        return Err(ExtractError::TooShort(frame.len()));
    };
    let eth = ethernet::Frame::new_unchecked(eth);
    key.dl_dst = eth.dst_addr();
    key.dl_src = eth.src_addr();

    let limit = if vlan_limit == 0 || vlan_limit > MAX_VLAN_HEADERS {
        MAX_VLAN_HEADERS
    } else {
        vlan_limit
    };
    Ok(parse_after_macs(frame, key, limit))
}

/// [`extract`] plus the key's hash ([`crate::hash::hash_key`]), cheaper
/// than the two apart for the most common frame: untagged Ethernet, IPv4
/// without options, not a fragment, UDP or TCP. That frame is parsed by
/// [`extract_ipv4_l4`] and hashed from the few key words it can set.
#[inline]
pub fn extract_hashed(
    frame: &[u8],
    meta: &PacketMeta,
    key: &mut FlowKey,
) -> Result<(Offsets, u32), ExtractError> {
    *key = FlowKey::zeroed();
    key.recirc_id = meta.recirc_id;
    key.in_port = meta.in_port;
    key.dp_hash = meta.dp_hash;
    key.pkt_mark = meta.pkt_mark;
    if meta.ct.state != 0 || meta.tun.dst != 0 {
        // A tracked or decapsulated packet's ct and tunnel words are not
        // among the fast path's.
        let ofs = extract_with_vlan_limit(frame, meta, key, DEFAULT_VLAN_LIMIT)?;
        return Ok((ofs, crate::hash::hash_key(key)));
    }
    if let Some(ofs) = extract_ipv4_l4(frame, key) {
        return Ok((ofs, crate::hash::hash_key_ipv4_l4(key)));
    }
    let ofs = extract_with_vlan_limit(frame, meta, key, DEFAULT_VLAN_LIMIT)?;
    Ok((ofs, crate::hash::hash_key(key)))
}

/// The lengths of a valid IPv4 header (see [`ipv4_lengths`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IPv4Lengths {
    /// IHL * 4: at least 20, at most the bytes available.
    pub header: usize,
    /// The total length field: from `header` up to the bytes available
    /// (what follows it is L2 padding).
    pub total: usize,
}

/// OVS `ipv4_sanity_check` on `l3`, the bytes from the IPv4 header to the
/// end of the frame: the header and total lengths when the header is valid
/// (version 4, IHL >= 5, both lengths within `l3`, total >= header, at most
/// 65535 bytes of padding), else `None` (OVS then keeps `dl_type` and
/// leaves every L3/L4 field zero). Shared with the PMD's simple-match
/// mini-parse, which must agree with the extractor exactly.
#[inline(always)]
pub fn ipv4_lengths(l3: &[u8]) -> Option<IPv4Lengths> {
    let h = l3.first_chunk::<{ ipv4::Packet::<&[u8]>::HEADER_LEN }>()?;
    let header = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let valid = h[0] >> 4 == 4
        && header >= ipv4::Packet::<&[u8]>::HEADER_LEN
        && header <= total
        && total <= l3.len()
        && l3.len() - total <= usize::from(u16::MAX);
    valid.then_some(IPv4Lengths { header, total })
}

/// Ethernet + IPv4 header (no options) + UDP header.
const IPV4_UDP_MIN: usize = 14 + 20 + 8;
/// IPv4 "more fragments" flag and fragment offset.
const IPV4_FRAG_BITS: u16 = 0x3fff;

/// The fast path of [`extract_hashed`]: when `frame` is untagged Ethernet
/// carrying IPv4 with a 20-byte header, not a fragment, and a complete UDP
/// or TCP header, sets the MACs, `dl_type`, the IPv4 and the L4 fields of
/// `key` (whose other fields the caller has set) exactly as the general
/// parser does, and returns the offsets. Otherwise returns `None` having
/// written nothing the general parser does not overwrite.
#[inline(always)]
fn extract_ipv4_l4(frame: &[u8], key: &mut FlowKey) -> Option<Offsets> {
    let h = frame.first_chunk::<IPV4_UDP_MIN>()?;
    if h[12..14] != ETH_TYPE_IPV4.to_be_bytes() || h[14] != 0x45 {
        return None;
    }
    // h[14] == 0x45: version 4 with a 20-byte header.
    let tot_len = ipv4_lengths(&frame[14..])?.total;
    if u16::from_be_bytes([h[20], h[21]]) & IPV4_FRAG_BITS != 0 {
        return None;
    }
    let proto = h[23];
    let l4_len = tot_len - 20;
    let ports = [h[34], h[35], h[36], h[37]];
    match proto {
        IPPROTO_UDP if l4_len >= 8 => {}
        IPPROTO_TCP if l4_len >= 20 => {
            // `frame` holds at least `14 + tot_len` bytes.
            let t = &frame[34..54];
            let off_flags = u16::from_be_bytes([t[12], t[13]]);
            let hl = usize::from(off_flags >> 12) * 4;
            if hl < 20 || hl > l4_len {
                return None;
            }
            key.tcp_flags = off_flags & 0x0fff;
        }
        _ => return None,
    }
    key.dl_dst = [h[0], h[1], h[2], h[3], h[4], h[5]];
    key.dl_src = [h[6], h[7], h[8], h[9], h[10], h[11]];
    key.dl_type = ETH_TYPE_IPV4;
    key.nw_tos = h[15];
    key.nw_ttl = h[22];
    key.nw_proto = proto;
    key.nw_src = u32::from_be_bytes([h[26], h[27], h[28], h[29]]);
    key.nw_dst = u32::from_be_bytes([h[30], h[31], h[32], h[33]]);
    key.tp_src = u16::from_be_bytes([ports[0], ports[1]]);
    key.tp_dst = u16::from_be_bytes([ports[2], ports[3]]);
    Some(Offsets {
        l2_5: NO_OFFSET,
        l3: 14,
        l4: 34,
    })
}

/// Extracts a batch: `keys[i]`/`offsets[i]` for `frames[i]` with
/// `metas[i]`.  Frames shorter than 14 bytes get `Err` in `offsets[i]`.
/// Processes `min(len)` of the four slices.
pub fn extract_batch(
    frames: &[&[u8]],
    metas: &[PacketMeta],
    keys: &mut [FlowKey],
    offsets: &mut [Result<Offsets, ExtractError>],
) {
    for (((frame, meta), key), ofs) in frames.iter().zip(metas).zip(keys).zip(offsets) {
        *ofs = extract(frame, meta, key);
    }
}

/// Offset as stored in [`Offsets`].
#[inline(always)]
fn ofs16(p: usize) -> u16 {
    if p < NO_OFFSET as usize {
        p as u16
    } else {
        NO_OFFSET - 1
    }
}

/// `frame[p..]`, empty when `p` is past the end (never happens by
/// construction; this keeps the code free of panicking paths).
#[inline(always)]
fn tail(frame: &[u8], p: usize) -> &[u8] {
    frame.get(p..).unwrap_or(&[])
}

#[inline(always)]
fn be16(b: &[u8; 2]) -> u16 {
    u16::from_be_bytes(*b)
}

/// Everything after the two MAC addresses.  `frame.len() >= 14`.
#[inline(always)]
fn parse_after_macs(frame: &[u8], key: &mut FlowKey, vlan_limit: usize) -> Offsets {
    let mut ofs = Offsets::default();

    // ---- VLAN (OVS parse_vlan) ----
    // `p` is the offset of a type field; `p + 2 <= frame.len()` holds
    // throughout (a tag is only consumed when 6 bytes remain).
    let mut p = 12usize;
    let mut n = 0usize;
    while n < vlan_limit {
        let Some(q) = tail(frame, p).first_chunk::<6>() else {
            break;
        };
        let tpid = u16::from_be_bytes([q[0], q[1]]);
        if tpid != ETH_TYPE_VLAN && tpid != ETH_TYPE_VLAN_8021AD {
            break;
        }
        if let Some(slot) = key.vlans.get_mut(n) {
            *slot = VlanTag {
                tpid,
                tci: u16::from_be_bytes([q[2], q[3]]) | VLAN_CFI,
            };
        }
        p += 4;
        n += 1;
    }

    // ---- Ethertype (OVS parse_ethertype) ----
    let Some(t) = tail(frame, p).first_chunk::<2>() else {
        return ofs; // unreachable: see the invariant above
    };
    let mut dl_type = be16(t);
    p += 2;
    if dl_type < ETH_TYPE_MIN {
        dl_type = ETH_TYPE_NONE;
        if let Some(h) = tail(frame, p).first_chunk::<8>() {
            let snap = llc::LlcSnap::new_unchecked(h);
            if snap.is_ethernet_snap() {
                p += 8;
                let t = snap.ethertype();
                if t >= ETH_TYPE_MIN {
                    dl_type = t;
                }
            }
        }
    }
    key.dl_type = dl_type;

    // ---- MPLS (OVS parse_mpls) ----
    if dl_type == ETH_TYPE_MPLS || dl_type == ETH_TYPE_MPLS_MCAST {
        ofs.l2_5 = ofs16(p);
        let mut count = 0usize;
        while let Some(h) = tail(frame, p).first_chunk::<4>() {
            let lse = u32::from_be_bytes(*h);
            if let Some(slot) = key.mpls_lse.get_mut(count) {
                *slot = lse;
            }
            count += 1;
            p += 4;
            if lse & MPLS_BOS_MASK != 0 {
                break;
            }
        }
    }

    // ---- Network layer ----
    ofs.l3 = ofs16(p);
    let rest = tail(frame, p);

    let mut nw_frag = 0u8;
    let nw_tos;
    let nw_ttl;
    let mut nw_proto;
    let l4: &[u8];
    if dl_type == ETH_TYPE_IPV4 {
        let Some(IPv4Lengths {
            header: ip_len,
            total: tot_len,
        }) = ipv4_lengths(rest)
        else {
            return ofs;
        };
        let ip = ipv4::Packet::new_unchecked(&rest[..ip_len]);
        key.nw_src = u32::from_be_bytes(ip.src_addr());
        key.nw_dst = u32::from_be_bytes(ip.dst_addr());
        nw_tos = ip.tos();
        nw_ttl = ip.ttl();
        nw_proto = ip.protocol();
        if ip.is_fragment() {
            nw_frag = FRAG_ANY;
            if ip.is_later_fragment() {
                nw_frag |= FRAG_LATER;
            }
        }
        // Never look at the L2 padding after the total length.
        l4 = rest.get(ip_len..tot_len).unwrap_or(&[]);
        p += ip_len;
    } else if dl_type == ETH_TYPE_IPV6 {
        // OVS ipv6_sanity_check.
        let Some(h) = rest.first_chunk::<{ ipv6::Packet::<&[u8]>::HEADER_LEN }>() else {
            return ofs;
        };
        let ip = ipv6::Packet::new_unchecked(h);
        let hl = ipv6::Packet::<&[u8]>::HEADER_LEN;
        let plen = usize::from(ip.payload_len());
        if ip.version() != 6
            || plen + hl > rest.len()
            || rest.len() - (plen + hl) > usize::from(u16::MAX)
        {
            return ofs;
        }
        key.ipv6_src = ip.src_addr();
        key.ipv6_dst = ip.dst_addr();
        let tc_flow = ip.version_tc_flow();
        nw_tos = (tc_flow >> 20) as u8;
        nw_ttl = ip.hop_limit();
        nw_proto = ip.next_header();
        let payload = rest.get(hl..hl + plen).unwrap_or(&[]);
        let mut data = payload;
        if !parse_ipv6_ext_hdrs(&mut data, &mut nw_proto, &mut nw_frag) {
            // OVS has pushed only the addresses at this point.
            return ofs;
        }
        key.ipv6_label = tc_flow & 0x000f_ffff;
        l4 = data;
        p += hl + (payload.len() - data.len());
    } else {
        if dl_type == ETH_TYPE_ARP || dl_type == ETH_TYPE_RARP {
            parse_arp(rest, key);
        }
        return ofs;
    }

    ofs.l4 = ofs16(p);
    key.nw_frag = nw_frag;
    key.nw_tos = nw_tos;
    key.nw_ttl = nw_ttl;
    key.nw_proto = nw_proto;

    if nw_frag & FRAG_LATER == 0 {
        parse_l4(l4, nw_proto, key);
    }
    ofs
}

/// OVS `parse_ipv6_ext_hdrs__`: walks hop-by-hop, routing, destination
/// options, AH and fragment headers.  Returns false when one is truncated.
#[inline(always)]
fn parse_ipv6_ext_hdrs(data: &mut &[u8], nw_proto: &mut u8, nw_frag: &mut u8) -> bool {
    loop {
        let proto = *nw_proto;
        if proto != ipv6::NEXT_HOP_BY_HOP
            && proto != ipv6::NEXT_ROUTING
            && proto != ipv6::NEXT_DEST_OPTS
            && proto != ipv6::NEXT_AH
            && proto != ipv6::NEXT_FRAGMENT
        {
            return true;
        }
        // Every extension header is at least 8 bytes.
        let Some(h) = data.first_chunk::<8>() else {
            return false;
        };
        if proto == ipv6::NEXT_FRAGMENT {
            let frag = ipv6::Fragment::new_unchecked(h);
            *nw_proto = frag.next_header();
            let offlg = frag.offset_flags();
            *data = data.get(8..).unwrap_or(&[]);
            if offlg != 0 {
                *nw_frag = FRAG_ANY;
                if offlg & ipv6::FRAG_OFF_MASK != 0 {
                    *nw_frag |= FRAG_LATER;
                    *nw_proto = ipv6::NEXT_FRAGMENT;
                    return true;
                }
            }
        } else {
            let ext = ipv6::ExtHeader::new_unchecked(h);
            *nw_proto = ext.next_header();
            let len = if proto == ipv6::NEXT_AH {
                ext.ah_len()
            } else {
                ext.generic_len()
            };
            match data.get(len..) {
                Some(d) => *data = d,
                None => return false,
            }
        }
    }
}

/// ARP/RARP (Ethernet/IPv4 only).
#[inline(never)]
fn parse_arp(rest: &[u8], key: &mut FlowKey) {
    let Some(h) = rest.first_chunk::<{ arp::Packet::<&[u8]>::HEADER_LEN }>() else {
        return;
    };
    let a = arp::Packet::new_unchecked(h);
    if !a.is_ethernet_ipv4() {
        return;
    }
    key.nw_src = u32::from_be_bytes(a.sender_proto_addr());
    key.nw_dst = u32::from_be_bytes(a.target_proto_addr());
    // "We only match on the lower 8 bits of the opcode."
    let op = a.operation();
    if op <= 0xff {
        key.nw_proto = op as u8;
    }
    key.arp_sha = a.sender_hw_addr();
    key.arp_tha = a.target_hw_addr();
}

/// Transport layer; `l4` is bounded by the IP total/payload length.
#[inline(always)]
fn parse_l4(l4: &[u8], nw_proto: u8, key: &mut FlowKey) {
    match nw_proto {
        IPPROTO_TCP => {
            if let Some(h) = l4.first_chunk::<{ tcp::Packet::<&[u8]>::HEADER_LEN }>() {
                let t = tcp::Packet::new_unchecked(h);
                let hl = t.header_len();
                if hl >= tcp::Packet::<&[u8]>::HEADER_LEN && l4.len() >= hl {
                    key.tp_src = t.src_port();
                    key.tp_dst = t.dst_port();
                    key.tcp_flags = t.flags();
                }
            }
        }
        IPPROTO_UDP => {
            if let Some(h) = l4.first_chunk::<{ udp::Packet::<&[u8]>::HEADER_LEN }>() {
                let u = udp::Packet::new_unchecked(h);
                key.tp_src = u.src_port();
                key.tp_dst = u.dst_port();
            }
        }
        _ => parse_l4_other(l4, nw_proto, key),
    }
}

/// The less common transports, out of line to keep the TCP/UDP path short.
#[inline(never)]
fn parse_l4_other(l4: &[u8], nw_proto: u8, key: &mut FlowKey) {
    match nw_proto {
        IPPROTO_SCTP => {
            // Ports at the same offsets as UDP; 12-byte minimum.
            if let Some(h) = l4.first_chunk::<12>() {
                key.tp_src = u16::from_be_bytes([h[0], h[1]]);
                key.tp_dst = u16::from_be_bytes([h[2], h[3]]);
            }
        }
        IPPROTO_ICMP | IPPROTO_IGMP => {
            if let Some(h) = l4.first_chunk::<{ icmp::Packet::<&[u8]>::HEADER_LEN }>() {
                let i = icmp::Packet::new_unchecked(h);
                key.tp_src = u16::from(i.msg_type());
                key.tp_dst = u16::from(i.msg_code());
            }
        }
        IPPROTO_ICMPV6 => {
            if let Some(h) = l4.first_chunk::<{ icmpv6::Packet::<&[u8]>::HEADER_LEN }>() {
                let i = icmpv6::Packet::new_unchecked(h);
                let (ty, code) = (i.msg_type(), i.msg_code());
                key.tp_src = u16::from(ty);
                key.tp_dst = u16::from(code);
                if code == 0
                    && (ty == icmpv6::ND_NEIGHBOR_SOLICIT || ty == icmpv6::ND_NEIGHBOR_ADVERT)
                {
                    parse_nd(l4.get(8..).unwrap_or(&[]), key);
                }
            }
        }
        _ => {}
    }
}

/// OVS `parse_icmpv6` for NS/NA after the 8-byte ICMPv6 header.
fn parse_nd(data: &[u8], key: &mut FlowKey) {
    let Some(target) = data.first_chunk::<16>() else {
        return; // no target: nd_target, SLL, TLL stay 0
    };
    let mut data = data.get(16..).unwrap_or(&[]);
    let mut sll = [0u8; 6];
    let mut tll = [0u8; 6];
    while let Some(h) = data.first_chunk::<8>() {
        let opt = icmpv6::NdOption::new_unchecked(h);
        let opt_len = opt.len_bytes();
        if opt_len == 0 || opt_len > data.len() {
            break; // keeps what was found so far
        }
        if opt_len == 8 {
            match opt.opt_type() {
                icmpv6::ND_OPT_SOURCE_LINKADDR => {
                    if sll == [0; 6] {
                        sll = opt.link_layer_addr();
                    } else {
                        return; // duplicate: invalid, all ND fields 0
                    }
                }
                icmpv6::ND_OPT_TARGET_LINKADDR => {
                    if tll == [0; 6] {
                        tll = opt.link_layer_addr();
                    } else {
                        return;
                    }
                }
                _ => {}
            }
        }
        data = data.get(opt_len..).unwrap_or(&[]);
    }
    key.nd_target = *target;
    key.arp_sha = sll;
    key.arp_tha = tll;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(t: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1];
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn short_frame_is_rejected_but_key_is_reset() {
        let mut k = FlowKey::all_ones();
        let m = PacketMeta {
            in_port: 3,
            ..Default::default()
        };
        assert_eq!(
            extract(&[0u8; 13], &m, &mut k),
            Err(ExtractError::TooShort(13))
        );
        let mut want = FlowKey::zeroed();
        want.in_port = 3;
        assert_eq!(k, want);
    }

    #[test]
    fn bare_header() {
        let mut k = FlowKey::zeroed();
        let o = extract(&eth(0x0800, &[]), &PacketMeta::default(), &mut k).unwrap();
        assert_eq!(k.dl_type, 0x0800);
        assert_eq!(o.l3, 14);
        assert_eq!(o.l4, NO_OFFSET);
        assert_eq!(k.dl_dst, [0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn ofs16_saturates() {
        assert_eq!(ofs16(70000), NO_OFFSET - 1);
        assert_eq!(ofs16(100), 100);
    }
}
