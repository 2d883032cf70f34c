//! Datapath action execution (OVS `lib/odp-execute.c` plus the packet
//! rewrites of `lib/packets.c`).
//!
//! The pipeline hands every packet of a batch that hit a megaflow, together
//! with its [`PacketMeta`] and the header [`Offsets`] found by
//! [`flowcache::extract::extract`], to [`execute_batch`] (or one packet to
//! [`execute_actions`]). Actions that need the datapath (output,
//! recirculation, upcalls, drop accounting, randomness) go through an
//! [`ExecContext`] the caller implements.
//!
//! Packet ownership follows OVS's "steal" rule, generalised: the last action
//! that consumes the packet (output, userspace, recirc, clone, sample, drop)
//! takes the packet itself; earlier consumers get a copy
//! ([`Packet::try_clone`]; a failed copy is counted as
//! [`DropReason::NoMbuf`]). Rewrites after the last consumer would be dead
//! work and are skipped. An action list with no consumer drops the packet
//! ([`DropReason::Action`]).
//!
//! Header offsets are kept up to date through VLAN/MPLS pushes and pops, as
//! OVS's `dp_packet_resize_l2*` do, so rewrites after a push hit the right
//! bytes. Checksums are only ever updated incrementally, never recomputed.

mod check_len;
mod checksum;
mod mpls;
mod set;
mod tunnel;
mod vlan;

pub use checksum::{
    crc32c, crc32c_prefix_delta, recalc_csum128, recalc_csum16, recalc_csum32, recalc_csum48,
};
pub use flowcache::extract::{Offsets, PacketMeta, NO_OFFSET};

use crate::packet::Packet;
use flowcache::actions::{DpAction, DropReason, SetField, UserCookie};
use flowcache::key::{FlowKey, ETH_TYPE_IPV6};

/// What the executor needs from the datapath around it.
pub trait ExecContext<P: Packet> {
    /// Queues `pkt` for transmission on datapath port `port`. A port that
    /// does not exist is the context's to count
    /// ([`DropReason::NoSuchPort`]).
    fn output(&mut self, port: u32, pkt: P);
    /// Hands `pkt` back to the pipeline for re-extraction and a new lookup.
    /// `meta` is the packet's metadata as the actions left it (`dp_hash`
    /// from a preceding `hash`, `pkt_mark`, ...), with `recirc_id` already
    /// set to the new id.
    fn recirculate(&mut self, pkt: P, meta: PacketMeta);
    /// Sends `pkt` to the slow path (handler pool) with `cookie`.
    fn userspace(&mut self, cookie: UserCookie, pkt: P, meta: &PacketMeta);
    /// Counts one packet dropped for `reason` when there is no packet to
    /// free (a failed clone: [`DropReason::NoMbuf`]).
    fn count_drop(&mut self, reason: DropReason);
    /// Counts and frees a dropped packet.
    fn drop_packet(&mut self, reason: DropReason, pkt: P) {
        self.count_drop(reason);
        drop(pkt);
    }
    /// A uniformly distributed random number (for `sample`).
    fn random_u32(&mut self) -> u32;
    /// Runs the datapath `ct` action on the IP packet at `frame[l3..]`
    /// (Ethertype `dl_type`), leaving the result in `ct`. A context
    /// without a connection tracker marks the packet tracked and invalid.
    fn conntrack(
        &mut self,
        frame: &mut [u8],
        l3: usize,
        dl_type: u16,
        act: &flowcache::actions::CtAction,
        ct: &mut flowcache::extract::CtMeta,
    ) {
        let _ = (frame, l3, dl_type);
        *ct = flowcache::extract::CtMeta {
            state: flowcache::key::CS_TRACKED | flowcache::key::CS_INVALID,
            zone: act.zone,
            ..Default::default()
        };
    }
}

/// An action list prepared for execution: the per-list analysis (which
/// action takes the packet itself) is done once per batch, or once per
/// megaflow if the caller keeps the plan, not per packet.
#[derive(Clone, Copy, Debug)]
pub struct ActionPlan<'a> {
    actions: &'a [DpAction],
    /// Index of the action that takes the packet itself; `None` when no
    /// action consumes it (the packet is dropped).
    last: Option<usize>,
    /// When the list is header rewrites followed by one output (the
    /// common shape, e.g. `set(eth(..)),set(ipv4(ttl=..)),2`): the output
    /// port. Such a list runs without the general executor's state.
    rewrite_then_output: Option<u32>,
}

impl<'a> ActionPlan<'a> {
    /// Analyses `actions`.
    pub fn new(actions: &'a [DpAction]) -> Self {
        ActionPlan {
            actions,
            last: last_consumer(actions),
            rewrite_then_output: rewrite_then_output(actions),
        }
    }

    /// The actions this plan runs.
    pub fn actions(&self) -> &'a [DpAction] {
        self.actions
    }

    /// Runs the plan on one packet whose header offsets are not known: they
    /// are found with [`flowcache::extract::extract`] when the first action
    /// that touches headers runs (lists that only output never parse).
    /// `meta` is left as the actions leave it.
    #[inline]
    pub fn execute<P: Packet, C: ExecContext<P>>(
        &self,
        ctx: &mut C,
        pkt: P,
        meta: &mut PacketMeta,
    ) {
        self.run_top(ctx, pkt, meta, None);
    }

    /// Runs the plan on one packet whose header offsets `ofs` (from
    /// `extract` on this very frame) the caller already has.
    #[inline]
    pub fn execute_with_offsets<P: Packet, C: ExecContext<P>>(
        &self,
        ctx: &mut C,
        pkt: P,
        meta: &mut PacketMeta,
        ofs: Offsets,
    ) {
        if let Some(port) = self.rewrite_then_output {
            let mut pkt = pkt;
            let (rewrites, _) = self.actions.split_at(self.actions.len() - 1);
            for a in rewrites {
                if let DpAction::Set(field) = a {
                    set::set_field(pkt.data_mut(), &ofs, field);
                }
            }
            ctx.output(port, pkt);
            return;
        }
        self.run_top(ctx, pkt, meta, Some(ofs));
    }

    #[inline]
    fn run_top<P: Packet, C: ExecContext<P>>(
        &self,
        ctx: &mut C,
        pkt: P,
        meta: &mut PacketMeta,
        ofs: Option<Offsets>,
    ) {
        let mut st = PktState {
            meta: *meta,
            ofs,
            cutlen: 0,
        };
        run(ctx, self.actions, self.last, pkt, &mut st, Origin::Original);
        *meta = st.meta;
    }
}

/// Executes `actions` on one packet (offsets found lazily, see
/// [`ActionPlan::execute`]). `meta` is left as the actions leave it.
pub fn execute_actions<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    pkt: P,
    actions: &[DpAction],
    meta: &mut PacketMeta,
) {
    ActionPlan::new(actions).execute(ctx, pkt, meta);
}

/// Executes `actions` on one packet whose header offsets are known.
pub fn execute_actions_with_offsets<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    pkt: P,
    actions: &[DpAction],
    meta: &mut PacketMeta,
    ofs: Offsets,
) {
    ActionPlan::new(actions).execute_with_offsets(ctx, pkt, meta, ofs);
}

/// Executes `actions` on every packet of a batch, one packet after the
/// other (per port, packets leave in batch order). Offsets are found lazily.
pub fn execute_batch<P, C, I>(ctx: &mut C, pkts: I, actions: &[DpAction])
where
    P: Packet,
    C: ExecContext<P>,
    I: IntoIterator<Item = (P, PacketMeta)>,
{
    let plan = ActionPlan::new(actions);
    for (pkt, mut meta) in pkts {
        plan.execute(ctx, pkt, &mut meta);
    }
}

/// [`execute_batch`] for packets whose header offsets are known.
pub fn execute_batch_with_offsets<P, C, I>(ctx: &mut C, pkts: I, actions: &[DpAction])
where
    P: Packet,
    C: ExecContext<P>,
    I: IntoIterator<Item = (P, PacketMeta, Offsets)>,
{
    let plan = ActionPlan::new(actions);
    for (pkt, mut meta, ofs) in pkts {
        plan.execute_with_offsets(ctx, pkt, &mut meta, ofs);
    }
}

/// Index of the action that must take the packet itself: the last
/// consuming action, or the first `drop` (nothing after a drop runs).
fn last_consumer(actions: &[DpAction]) -> Option<usize> {
    let mut last = None;
    for (i, a) in actions.iter().enumerate() {
        match a {
            DpAction::Drop(_) => return Some(i),
            DpAction::Output(_)
            | DpAction::Userspace { .. }
            | DpAction::Recirc(_)
            | DpAction::Clone(_)
            | DpAction::CheckPktLen { .. }
            | DpAction::TunnelPush(_)
            | DpAction::TunnelPop { .. }
            | DpAction::Sample { .. } => last = Some(i),
            DpAction::Set(_)
            | DpAction::PushVlan { .. }
            | DpAction::PopVlan
            | DpAction::PushMpls { .. }
            | DpAction::PopMpls { .. }
            | DpAction::Hash { .. }
            | DpAction::Ct(_)
            | DpAction::CtClear
            | DpAction::Truncate(_) => {}
        }
    }
    last
}

/// The output port of a list made of header rewrites (no metadata-only
/// `pkt_mark`) followed by exactly one output.
fn rewrite_then_output(actions: &[DpAction]) -> Option<u32> {
    let (DpAction::Output(port), rewrites) = actions.split_last()? else {
        return None;
    };
    rewrites
        .iter()
        .all(|a| matches!(a, DpAction::Set(f) if !matches!(f, SetField::PktMark(_))))
        .then_some(*port)
}

/// Per-packet state carried along the action list (OVS keeps it in
/// `struct dp_packet`).
#[derive(Clone, Copy, Debug)]
struct PktState {
    meta: PacketMeta,
    /// Header offsets; `None` until first needed.
    ofs: Option<Offsets>,
    /// Bytes to cut from the end at the next output (OVS `cutlen`).
    cutlen: u32,
}

impl PktState {
    /// The header offsets, parsing the frame the first time.
    #[inline]
    fn offsets<P: Packet>(&mut self, pkt: &P) -> &mut Offsets {
        let meta = &self.meta;
        self.ofs.get_or_insert_with(|| {
            let mut key = FlowKey::default();
            flowcache::extract::extract(pkt.data(), meta, &mut key).unwrap_or_default()
        })
    }
}

/// Whether the packet being run is the one the caller handed in (its loss
/// is a drop) or a copy made for `clone`/`sample` (silently freed when its
/// list does not consume it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Original,
    Copy,
}

/// Runs a nested action list (`check_pkt_len`'s branch, `sample`'s
/// actions). As the last action it takes the packet itself (`None`
/// back); otherwise it runs on a copy with its own state, and the packet
/// comes back for the actions after it.
fn run_nested<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    list: &[DpAction],
    pkt: P,
    st: &mut PktState,
    origin: Origin,
    steal: bool,
) -> Option<P> {
    let sub_last = last_consumer(list);
    if steal {
        run(ctx, list, sub_last, pkt, st, origin);
        return None;
    }
    let mut sub = *st;
    match pkt.try_clone() {
        Some(c) => run(ctx, list, sub_last, c, &mut sub, Origin::Copy),
        None => ctx.count_drop(DropReason::NoMbuf),
    }
    Some(pkt)
}

fn run<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    actions: &[DpAction],
    last: Option<usize>,
    mut pkt: P,
    st: &mut PktState,
    origin: Origin,
) {
    let Some(last) = last else {
        if origin == Origin::Original {
            ctx.drop_packet(DropReason::Action, pkt);
        }
        return;
    };
    for (i, a) in actions[..=last].iter().enumerate() {
        let steal = i == last;
        match a {
            DpAction::Output(port) => {
                if steal {
                    apply_cutlen(&mut pkt, st);
                    ctx.output(*port, pkt);
                    return;
                }
                if let Some(c) = clone_for_output(ctx, &pkt, st) {
                    ctx.output(*port, c);
                }
            }
            DpAction::Userspace { cookie } => {
                if steal {
                    apply_cutlen(&mut pkt, st);
                    ctx.userspace(*cookie, pkt, &st.meta);
                    return;
                }
                if let Some(c) = clone_for_output(ctx, &pkt, st) {
                    ctx.userspace(*cookie, c, &st.meta);
                }
            }
            DpAction::Recirc(id) => {
                // OVS does not apply a pending truncation to recirculated
                // packets.
                let mut meta = st.meta;
                meta.recirc_id = *id;
                if steal {
                    ctx.recirculate(pkt, meta);
                    return;
                }
                match pkt.try_clone() {
                    Some(c) => ctx.recirculate(c, meta),
                    None => ctx.count_drop(DropReason::NoMbuf),
                }
            }
            DpAction::Clone(list) => {
                let sub_last = last_consumer(list);
                if steal {
                    run(ctx, list, sub_last, pkt, st, origin);
                    return;
                }
                // The copy inherits the pending truncation; the original
                // loses it (OVS `odp_execute_clone`).
                let copy = pkt.try_clone();
                let mut sub = *st;
                st.cutlen = 0;
                match copy {
                    Some(c) => run(ctx, list, sub_last, c, &mut sub, Origin::Copy),
                    None => ctx.count_drop(DropReason::NoMbuf),
                }
            }
            DpAction::CheckPktLen { size, gt, le } => {
                let ofs = *st.offsets(&pkt);
                let len = pkt.len() - check_len::l2_pad_len(pkt.data(), &ofs);
                let list = if len > usize::from(*size) { gt } else { le };
                // Not the last action: the branch runs on a copy and its
                // changes stay inside it (OVS `odp_execute_check_pkt_len`).
                match run_nested(ctx, list, pkt, st, origin, steal) {
                    Some(p) => pkt = p,
                    None => return,
                }
            }
            DpAction::Sample {
                probability,
                actions: list,
            } => {
                if ctx.random_u32() >= *probability {
                    if steal {
                        if origin == Origin::Original {
                            ctx.drop_packet(DropReason::Action, pkt);
                        }
                        return;
                    }
                    continue;
                }
                // OVS `odp_execute_sample` leaves the original's cutlen.
                match run_nested(ctx, list, pkt, st, origin, steal) {
                    Some(p) => pkt = p,
                    None => return,
                }
            }
            DpAction::TunnelPush(t) => {
                let hash = l4_hash(&pkt, &st.meta, 0);
                if steal {
                    apply_cutlen(&mut pkt, st);
                    tunnel_push(ctx, pkt, st, t, hash);
                    return;
                }
                if let Some(c) = clone_for_output(ctx, &pkt, st) {
                    tunnel_push(ctx, c, st, t, hash);
                }
            }
            DpAction::TunnelPop { port, kind } => {
                if steal {
                    tunnel_pop(ctx, pkt, st, *kind, *port);
                    return;
                }
                match pkt.try_clone() {
                    Some(c) => tunnel_pop(ctx, c, st, *kind, *port),
                    None => ctx.count_drop(DropReason::NoMbuf),
                }
            }
            DpAction::Drop(reason) => {
                ctx.drop_packet(*reason, pkt);
                return;
            }
            DpAction::Set(SetField::PktMark(m)) => {
                st.meta.pkt_mark = (st.meta.pkt_mark & !m.mask) | (m.value & m.mask);
            }
            DpAction::Set(field) => {
                let ofs = *st.offsets(&pkt);
                set::set_field(pkt.data_mut(), &ofs, field);
            }
            DpAction::PushVlan { tpid, tci } => {
                let ofs = st.offsets(&pkt);
                if !vlan::push_vlan(&mut pkt, ofs, *tpid, *tci) {
                    ctx.drop_packet(DropReason::NoHeadroom, pkt);
                    return;
                }
            }
            DpAction::PopVlan => {
                let ofs = st.offsets(&pkt);
                vlan::pop_vlan(&mut pkt, ofs);
            }
            DpAction::PushMpls { lse, ethertype } => {
                let ofs = st.offsets(&pkt);
                if !mpls::push_mpls(&mut pkt, ofs, *lse, *ethertype) {
                    ctx.drop_packet(DropReason::NoHeadroom, pkt);
                    return;
                }
            }
            DpAction::PopMpls { ethertype } => {
                let ofs = st.offsets(&pkt);
                mpls::pop_mpls(&mut pkt, ofs, *ethertype);
            }
            DpAction::Hash { basis } => st.meta.dp_hash = l4_hash(&pkt, &st.meta, *basis),
            DpAction::Ct(act) => {
                let ofs = *st.offsets(&pkt);
                let l3 = usize::from(ofs.l3);
                let data = pkt.data_mut();
                // The Ethertype just before L3 (after VLAN tags or SNAP);
                // an MPLS packet is not IP for the tracker.
                let dl_type = if ofs.l2_5 == NO_OFFSET && l3 >= 14 && l3 <= data.len() {
                    u16::from_be_bytes([data[l3 - 2], data[l3 - 1]])
                } else {
                    0
                };
                ctx.conntrack(data, l3, dl_type, act, &mut st.meta.ct);
            }
            DpAction::CtClear => st.meta.ct = Default::default(),
            DpAction::Truncate(max_len) => {
                // OVS `dp_packet_set_cutlen`: never below an Ethernet header.
                let max_len = (*max_len).max(14) as usize;
                let len = pkt.len();
                st.cutlen = if max_len >= len {
                    0
                } else {
                    (len - max_len) as u32
                };
            }
        }
    }
    // Not reached: the action at `last` always returns.
    if origin == Origin::Original {
        ctx.drop_packet(DropReason::Action, pkt);
    }
}

/// Encapsulates `pkt` (the packet itself or a copy, whose state is the
/// original's) and sends it out of the underlay port.
fn tunnel_push<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    mut pkt: P,
    st: &PktState,
    t: &flowcache::tunnel::TnlPush,
    hash: u32,
) {
    let mut out_st = *st;
    match tunnel::push(&mut pkt, &mut out_st, t, hash) {
        Ok(()) => ctx.output(t.out_port, pkt),
        Err(r) => ctx.drop_packet(r, pkt),
    }
}

/// Decapsulates `pkt` and recirculates the inner frame. OVS keeps the
/// recirc_id: the inner frame is looked up as received on the tunnel port.
fn tunnel_pop<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    mut pkt: P,
    st: &PktState,
    kind: flowcache::tunnel::TunnelKind,
    port: u32,
) {
    let mut pop_st = *st;
    match tunnel::pop(&mut pkt, &mut pop_st, kind, port) {
        Ok(()) => ctx.recirculate(pkt, pop_st.meta),
        Err(r) => ctx.drop_packet(r, pkt),
    }
}

/// A copy of `pkt` for an output that is not the last, with the pending
/// truncation moved to the copy (OVS `dp_execute_output_action`).
#[inline]
fn clone_for_output<P: Packet, C: ExecContext<P>>(
    ctx: &mut C,
    pkt: &P,
    st: &mut PktState,
) -> Option<P> {
    let copy = pkt.try_clone();
    let cut = st.cutlen;
    st.cutlen = 0;
    match copy {
        Some(mut c) => {
            if cut != 0 {
                c.truncate(c.len().saturating_sub(cut as usize));
            }
            Some(c)
        }
        None => {
            ctx.count_drop(DropReason::NoMbuf);
            None
        }
    }
}

#[inline]
fn apply_cutlen<P: Packet>(pkt: &mut P, st: &mut PktState) {
    if st.cutlen != 0 {
        let len = pkt.len().saturating_sub(st.cutlen as usize);
        pkt.truncate(len);
        st.cutlen = 0;
    }
}

// ---------------------------------------------------------------------------
// dp_hash (OVS `OVS_HASH_ALG_L4`).

#[inline(always)]
fn mhash_add(hash: u32, data: u32) -> u32 {
    let mut h = hash;
    if data != 0 {
        let d = data
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593);
        h ^= d;
    }
    h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn mhash_finish(hash: u32, fin: u32) -> u32 {
    let mut h = hash ^ fin;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The packet's 5-tuple hash with `basis`: from the NIC's RSS hash when the
/// driver gave one (as OVS does), else from the parsed flow.
fn l4_hash<P: Packet>(pkt: &P, meta: &PacketMeta, basis: u32) -> u32 {
    if let Some(rss) = pkt.rss_hash() {
        return mhash_finish(mhash_add(mhash_add(rss, 0), basis), 8);
    }
    let mut key = FlowKey::default();
    if flowcache::extract::extract(pkt.data(), meta, &mut key).is_err() {
        return mhash_finish(basis, 42);
    }
    hash_5tuple(&key, basis)
}

/// OVS `flow_hash_5tuple` in structure (not bit-exact: OVS's own value
/// depends on the build's CPU flags).
fn hash_5tuple(key: &FlowKey, basis: u32) -> u32 {
    let mut h = basis;
    if key.dl_type == ETH_TYPE_IPV6 {
        for a in [&key.ipv6_src, &key.ipv6_dst] {
            for w in a.chunks_exact(4) {
                h = mhash_add(h, u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
            }
        }
    } else {
        h = mhash_add(h, key.nw_src);
        h = mhash_add(h, key.nw_dst);
    }
    h = mhash_add(h, (u32::from(key.tp_src) << 16) | u32::from(key.tp_dst));
    h = mhash_add(h, u32::from(key.nw_proto));
    mhash_finish(h, 42)
}
