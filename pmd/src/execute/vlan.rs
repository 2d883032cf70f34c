//! 802.1Q / 802.1ad tags (OVS `eth_push_vlan`, `eth_pop_vlan`).

use super::Offsets;
use crate::packet::Packet;
use flowcache::key::{ETH_TYPE_VLAN, ETH_TYPE_VLAN_8021AD, VLAN_CFI};
use flowcache::wire::{ethernet, vlan};

const VLAN_HEADER_LEN: usize = vlan::Tag::<&[u8]>::HEADER_LEN;
/// The MAC addresses: what stays in front of a pushed tag.
const ETH_ADDRS_LEN: usize = ethernet::ETHERTYPE;

/// True for a TPID OVS treats as a VLAN tag (`eth_type_vlan`).
#[inline(always)]
pub(super) fn is_vlan_tpid(t: u16) -> bool {
    t == ETH_TYPE_VLAN || t == ETH_TYPE_VLAN_8021AD
}

/// Inserts a tag right after the MAC addresses. The CFI/DEI bit of `tci` is
/// cleared, as OVS does. Returns false (packet unchanged) when the headroom
/// is too small.
pub(super) fn push_vlan<P: Packet>(pkt: &mut P, ofs: &mut Offsets, tpid: u16, tci: u16) -> bool {
    if pkt.len() < ETH_ADDRS_LEN {
        return true;
    }
    if !pkt.push_front(VLAN_HEADER_LEN) {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(VLAN_HEADER_LEN..VLAN_HEADER_LEN + ETH_ADDRS_LEN, 0);
    let mut tag = vlan::Tag::new_unchecked(&mut d[ETH_ADDRS_LEN..ETH_ADDRS_LEN + VLAN_HEADER_LEN]);
    tag.set_tpid(tpid);
    tag.set_tci(tci & !VLAN_CFI);
    ofs.shift(VLAN_HEADER_LEN as i16);
    true
}

/// Removes the outer tag, if the frame has one (TPID 0x8100 or 0x88a8 and
/// at least 18 bytes).
pub(super) fn pop_vlan<P: Packet>(pkt: &mut P, ofs: &mut Offsets) {
    let d = pkt.data_mut();
    if d.len() < ETH_ADDRS_LEN + VLAN_HEADER_LEN + 2
        || !is_vlan_tpid(vlan::Tag::new_unchecked(&d[ETH_ADDRS_LEN..]).tpid())
    {
        return;
    }
    d.copy_within(0..ETH_ADDRS_LEN, VLAN_HEADER_LEN);
    let pulled = pkt.pull_front(VLAN_HEADER_LEN);
    debug_assert!(pulled);
    ofs.shift(-(VLAN_HEADER_LEN as i16));
}
