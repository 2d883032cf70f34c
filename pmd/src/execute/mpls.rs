//! MPLS label stack entries (OVS `push_mpls`, `pop_mpls`, `set_mpls_lse`,
//! `set_ethertype`).

use super::vlan::is_vlan_tpid;
use super::Offsets;
use crate::packet::Packet;
use flowcache::actions::Masked;
use flowcache::key::{ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST};
use flowcache::wire::{ethernet, mpls};

const MPLS_HLEN: usize = mpls::Lse::<&[u8]>::HEADER_LEN;
const ETH_HLEN: usize = ethernet::Frame::<&[u8]>::HEADER_LEN;

#[inline(always)]
fn is_mpls_type(t: u16) -> bool {
    t == ETH_TYPE_MPLS || t == ETH_TYPE_MPLS_MCAST
}

#[inline(always)]
fn be16(d: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([d[off], d[off + 1]])
}

/// Offset of the top label when the packet is MPLS: `l2_5` is set and the
/// Ethertype in front of it is an MPLS one (`l2_5` may also mark an
/// LLC/SNAP header, which is not MPLS).
#[inline]
fn top_label(d: &[u8], ofs: &Offsets) -> Option<usize> {
    let l2_5 = ofs.l2_5_at()?;
    (l2_5 >= ETH_HLEN && l2_5 + MPLS_HLEN <= d.len() && is_mpls_type(be16(d, l2_5 - 2)))
        .then_some(l2_5)
}

/// Where the L2 headers end and an MPLS label would go on a non-MPLS packet
/// (OVS uses `l3_ofs`, which it always sets for Ethernet frames). Falls back
/// to "after the Ethernet header and up to two VLAN tags" when the parser
/// left `l3` unset.
#[inline]
fn l2_end(d: &[u8], ofs: &Offsets) -> usize {
    if let Some(l3) = ofs.l3_at() {
        return l3;
    }
    let mut pos = ethernet::ETHERTYPE;
    for _ in 0..2 {
        if pos + 6 <= d.len() && is_vlan_tpid(be16(d, pos)) {
            pos += 4;
        } else {
            break;
        }
    }
    pos + 2
}

/// OVS `set_ethertype`: the outer Ethertype, or with VLAN tags the one just
/// in front of `l2_5`.
#[inline]
fn set_ethertype(d: &mut [u8], l2_5: usize, eth_type: u16) {
    let pos = if is_vlan_tpid(be16(d, ethernet::ETHERTYPE)) {
        l2_5 - 2
    } else {
        ethernet::ETHERTYPE
    };
    d[pos..pos + 2].copy_from_slice(&eth_type.to_be_bytes());
}

/// Pushes `lse` as the new top label and sets the Ethertype. Returns false
/// (packet unchanged) when the headroom is too small.
pub(super) fn push_mpls<P: Packet>(
    pkt: &mut P,
    ofs: &mut Offsets,
    lse: u32,
    eth_type: u16,
) -> bool {
    if !is_mpls_type(eth_type) || pkt.len() < ETH_HLEN {
        return true;
    }
    let d = pkt.data();
    let l2_5 = match top_label(d, ofs) {
        Some(p) => p,
        None => l2_end(d, ofs),
    };
    if l2_5 < ETH_HLEN || l2_5 > d.len() {
        return true;
    }
    if !pkt.push_front(MPLS_HLEN) {
        return false;
    }
    let d = pkt.data_mut();
    // Ethertype first (in the old coordinates, i.e. shifted by the push).
    set_ethertype(&mut d[MPLS_HLEN..], l2_5, eth_type);
    d.copy_within(MPLS_HLEN..MPLS_HLEN + l2_5, 0);
    mpls::Lse::new_unchecked(&mut d[l2_5..l2_5 + MPLS_HLEN]).set_value(lse);
    ofs.l2_5 = l2_5 as u16;
    Offsets::adjust(&mut ofs.l3, MPLS_HLEN as i16);
    Offsets::adjust(&mut ofs.l4, MPLS_HLEN as i16);
    true
}

/// Pops the top label and sets the Ethertype to `eth_type` (always, as OVS
/// does).
pub(super) fn pop_mpls<P: Packet>(pkt: &mut P, ofs: &mut Offsets, eth_type: u16) {
    let d = pkt.data_mut();
    let Some(l2_5) = top_label(d, ofs) else {
        return;
    };
    let lse = mpls::Lse::new_unchecked(&d[l2_5..l2_5 + MPLS_HLEN]);
    let bos = lse.bos();
    set_ethertype(d, l2_5, eth_type);
    d.copy_within(0..l2_5, MPLS_HLEN);
    let pulled = pkt.pull_front(MPLS_HLEN);
    debug_assert!(pulled);
    if bos {
        ofs.l2_5 = super::NO_OFFSET;
        if ofs.l3 == super::NO_OFFSET {
            // The payload starts after the popped label (moved below).
            ofs.l3 = (l2_5 + MPLS_HLEN) as u16;
        }
    }
    Offsets::adjust(&mut ofs.l3, -(MPLS_HLEN as i16));
    Offsets::adjust(&mut ofs.l4, -(MPLS_HLEN as i16));
}

/// Masked rewrite of the top label stack entry.
#[inline(never)]
pub(super) fn set_mpls(d: &mut [u8], ofs: &Offsets, m: &Masked<u32>) {
    let Some(p) = top_label(d, ofs) else {
        return;
    };
    let mut lse = mpls::Lse::new_unchecked(&mut d[p..p + MPLS_HLEN]);
    lse.set_value((lse.value() & !m.mask) | (m.value & m.mask));
}
