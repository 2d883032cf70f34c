//! `tnl_push` and `tnl_pop` (OVS `netdev_tnl_push_*_header` /
//! `netdev_*_pop_header`): the outer headers are prebuilt per megaflow
//! ([`flowcache::tunnel::TnlPush`]); a push copies them in front of the
//! frame and fills in the lengths, the IPv4 checksum, the UDP source port
//! (from the inner flow's hash, RFC 7348) and the UDP checksum when the
//! port asks for one. A pop validates the outer headers, strips them and
//! leaves the tunnel metadata for the recirculation.

use super::PktState;
use crate::packet::Packet;
use flowcache::actions::DropReason;
use flowcache::tunnel::{parse_outer, TnlPush, TunnelKind};

/// Pushes the outer headers of `t` onto `pkt`. `hash` is the inner flow's
/// hash (for the UDP source port). The header offsets are stale
/// afterwards (the next action that needs them parses again).
#[inline]
pub(super) fn push<P: Packet>(
    pkt: &mut P,
    st: &mut PktState,
    t: &TnlPush,
    hash: u32,
) -> Result<(), DropReason> {
    let n = t.header().len();
    if !pkt.push_front(n) {
        return Err(DropReason::NoHeadroom);
    }
    let src_port = match t.kind {
        TunnelKind::Gre => 0,
        _ => TnlPush::src_port(hash),
    };
    t.write(pkt.data_mut(), src_port);
    st.ofs = None;
    Ok(())
}

/// Strips the outer headers of a `kind` tunnel frame and sets the
/// packet's tunnel metadata and in_port (`port`).
#[inline]
pub(super) fn pop<P: Packet>(
    pkt: &mut P,
    st: &mut PktState,
    kind: TunnelKind,
    port: u32,
) -> Result<(), DropReason> {
    let outer = parse_outer(pkt.data(), kind)?;
    pkt.truncate(outer.end);
    // `parse_outer` checked `inner < end`.
    let _ = pkt.pull_front(outer.inner);
    st.meta.tun = outer.tun;
    st.meta.in_port = port;
    st.ofs = None;
    Ok(())
}
