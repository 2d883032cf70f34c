//! Datapath actions: what a megaflow does with the packets that hit it.
//!
//! These are the userspace-datapath counterpart of OVS's ODP actions
//! (`OVS_ACTION_ATTR_*`). The slow path (ofproto translation) produces a
//! list of them per megaflow; the PMD executes the list on every packet of a
//! batch that hit the megaflow. A list is immutable once built and shared by
//! `Arc`, so the PMD and the control plane can hold it without copying.
//!
//! Field values follow the representation of [`crate::key::FlowKey`]: host
//! order integers, network-order byte arrays for MAC and IPv6 addresses.

use crate::text::{ipv4, ipv6, mac};
use std::sync::Arc;

/// A shared, immutable action list.
pub type ActionList = Arc<[DpAction]>;

/// A value and the mask of the bits to write (OVS `set_masked`): bits clear
/// in `mask` keep the packet's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Masked<T> {
    pub value: T,
    pub mask: T,
}

/// Ethernet addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EthFields {
    pub src: [u8; 6],
    pub dst: [u8; 6],
}

/// IPv4 header fields a datapath may rewrite. `tos` is the whole byte
/// (DSCP << 2 | ECN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ipv4Fields {
    pub src: u32,
    pub dst: u32,
    pub tos: u8,
    pub ttl: u8,
}

/// IPv6 header fields a datapath may rewrite. `label` is 20 bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ipv6Fields {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub label: u32,
    pub tclass: u8,
    pub hlimit: u8,
}

/// TCP, UDP or SCTP ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortFields {
    pub src: u16,
    pub dst: u16,
}

/// ICMPv4 / ICMPv6 type and code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IcmpFields {
    pub icmp_type: u8,
    pub icmp_code: u8,
}

/// ARP fields (`op` is the 16-bit opcode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ArpFields {
    pub op: u16,
    pub spa: u32,
    pub tpa: u32,
    pub sha: [u8; 6],
    pub tha: [u8; 6],
}

/// IPv6 neighbour discovery fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NdFields {
    pub target: [u8; 16],
    pub sll: [u8; 6],
    pub tll: [u8; 6],
}

/// One header's worth of masked rewrite (OVS `set_masked(...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetField {
    Ethernet(Masked<EthFields>),
    Ipv4(Masked<Ipv4Fields>),
    Ipv6(Masked<Ipv6Fields>),
    Tcp(Masked<PortFields>),
    Udp(Masked<PortFields>),
    Sctp(Masked<PortFields>),
    Icmpv4(Masked<IcmpFields>),
    Icmpv6(Masked<IcmpFields>),
    Arp(Masked<ArpFields>),
    Nd(Masked<NdFields>),
    /// The top MPLS label stack entry (host-order LSE).
    Mpls(Masked<u32>),
    /// Packet mark (metadata, not written into the packet).
    PktMark(Masked<u32>),
}

/// Why the datapath dropped a packet. Every drop is counted under one of
/// these (the control plane shows them per PMD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// The action list says drop (explicit `drop`, or an empty list).
    Action = 0,
    /// Table miss in the OpenFlow pipeline.
    TableMiss,
    /// TTL expired in `dec_ttl` / `dec_mpls_ttl` (no controller).
    InvalidTtl,
    /// Too many nested resubmits during translation.
    RecursionLimit,
    /// Too many recirculations.
    RecirculationLimit,
    /// Frame shorter than an Ethernet header.
    InvalidPacket,
    /// The upcall queue to the handler pool was full.
    UpcallQueueFull,
    /// The handler failed to translate the packet.
    UpcallError,
    /// Transmit queue full.
    TxFull,
    /// Output to a port that does not exist (any more).
    NoSuchPort,
    /// No mbuf available (clone, push header).
    NoMbuf,
    /// A push of a header would not fit in the headroom.
    NoHeadroom,
    /// The megaflow limit is reached and the flow could not be installed.
    FlowLimit,
    /// A recirculated packet's `recirc_id` names no frozen translation
    /// (any more).
    NoRecircContext,
    /// A `userspace` action's packet could not be queued to the handler
    /// pool (queue full).
    UserspaceQueueFull,
    /// Output to a port whose link is down (a vhost-user port with no
    /// guest, or a guest whose driver is not up).
    LinkDown,
    /// `tnl_pop`: the outer IPv4 or UDP checksum is wrong.
    TunnelBadChecksum,
    /// `tnl_pop`: the outer headers are cut short, a fragment, or their
    /// lengths disagree with the frame.
    TunnelTruncated,
    /// `tnl_pop`: the tunnel header is malformed (VXLAN flags or reserved
    /// bits, an unknown GRE version).
    TunnelBadHeader,
    /// A decapsulated packet no tunnel port takes (wrong VNI/key or remote).
    TunnelNoPort,
    /// `tnl_push`: the next hop is not resolved yet (an ARP request is sent).
    TunnelNeighMiss,
    /// `tnl_push`: no route to the tunnel's remote address.
    TunnelNoRoute,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 22] = [
        DropReason::Action,
        DropReason::TableMiss,
        DropReason::InvalidTtl,
        DropReason::RecursionLimit,
        DropReason::RecirculationLimit,
        DropReason::InvalidPacket,
        DropReason::UpcallQueueFull,
        DropReason::UpcallError,
        DropReason::TxFull,
        DropReason::NoSuchPort,
        DropReason::NoMbuf,
        DropReason::NoHeadroom,
        DropReason::FlowLimit,
        DropReason::NoRecircContext,
        DropReason::UserspaceQueueFull,
        DropReason::LinkDown,
        DropReason::TunnelBadChecksum,
        DropReason::TunnelTruncated,
        DropReason::TunnelBadHeader,
        DropReason::TunnelNoPort,
        DropReason::TunnelNeighMiss,
        DropReason::TunnelNoRoute,
    ];
    /// Number of reasons (size of a counter array).
    pub const COUNT: usize = Self::ALL.len();

    /// Stable name used in statistics output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Action => "action",
            DropReason::TableMiss => "table_miss",
            DropReason::InvalidTtl => "invalid_ttl",
            DropReason::RecursionLimit => "recursion_limit",
            DropReason::RecirculationLimit => "recirculation_limit",
            DropReason::InvalidPacket => "invalid_packet",
            DropReason::UpcallQueueFull => "upcall_queue_full",
            DropReason::UpcallError => "upcall_error",
            DropReason::TxFull => "tx_full",
            DropReason::NoSuchPort => "no_such_port",
            DropReason::NoMbuf => "no_mbuf",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::FlowLimit => "flow_limit",
            DropReason::NoRecircContext => "no_recirc_context",
            DropReason::UserspaceQueueFull => "userspace_queue_full",
            DropReason::LinkDown => "link_down",
            DropReason::TunnelBadChecksum => "tunnel_bad_checksum",
            DropReason::TunnelTruncated => "tunnel_truncated",
            DropReason::TunnelBadHeader => "tunnel_bad_header",
            DropReason::TunnelNoPort => "tunnel_no_port",
            DropReason::TunnelNeighMiss => "tunnel_neigh_miss",
            DropReason::TunnelNoRoute => "tunnel_no_route",
        }
    }
}

/// Why a `userspace` action sends a packet to the slow path (OVS `struct
/// user_action_cookie`); the handler counts packets by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserCookie {
    /// An OpenFlow `controller` action (or a packet-in OVS would send).
    Controller {
        /// OpenFlow packet-in reason: 0 no_match, 1 action, 2 invalid_ttl,
        /// 6 explicit table miss.
        reason: u8,
        /// Frozen translation the packet-in refers to.
        recirc_id: u32,
        /// Cookie of the rule that sent it.
        rule_cookie: u64,
        controller_id: u16,
        max_len: u16,
    },
    /// A sample (sFlow / IPFIX / flow sample) with its userdata.
    Sample(u64),
    /// Anything else, with its userdata.
    Other(u64),
}

/// Kinds of [`UserCookie`], for per-kind counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum UserCookieKind {
    Controller = 0,
    Sample,
    Other,
}

impl UserCookieKind {
    /// Every kind, in counter order.
    pub const ALL: [UserCookieKind; 3] = [
        UserCookieKind::Controller,
        UserCookieKind::Sample,
        UserCookieKind::Other,
    ];
    /// Number of kinds.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable name used in statistics output.
    pub fn name(self) -> &'static str {
        match self {
            UserCookieKind::Controller => "controller",
            UserCookieKind::Sample => "sample",
            UserCookieKind::Other => "other",
        }
    }
}

impl UserCookie {
    /// The cookie's kind.
    pub fn kind(&self) -> UserCookieKind {
        match self {
            UserCookie::Controller { .. } => UserCookieKind::Controller,
            UserCookie::Sample(_) => UserCookieKind::Sample,
            UserCookie::Other(_) => UserCookieKind::Other,
        }
    }
}

impl From<u64> for UserCookie {
    fn from(v: u64) -> UserCookie {
        UserCookie::Other(v)
    }
}

impl std::fmt::Display for UserCookie {
    /// OVS's `userspace(...)` argument text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserCookie::Controller {
                reason,
                recirc_id,
                rule_cookie,
                controller_id,
                max_len,
            } => {
                // C's %#x: no prefix for zero.
                let rc = if *rule_cookie == 0 {
                    "0".to_string()
                } else {
                    format!("{rule_cookie:#x}")
                };
                write!(
                    f,
                    "pid=0,controller(reason={reason},dont_send=0,continuation=0,recirc_id={recirc_id},rule_cookie={rc},controller_id={controller_id},max_len={max_len})"
                )
            }
            UserCookie::Sample(v) => write!(f, "pid=0,flow_sample(userdata={v:#x})"),
            UserCookie::Other(v) => write!(f, "pid=0,userdata({v:016x})"),
        }
    }
}

/// One datapath action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DpAction {
    /// Send to a datapath port (datapath port numbers are the OpenFlow port
    /// numbers in vportd).
    Output(u32),
    /// Masked rewrite of one header, with incremental checksum updates.
    Set(SetField),
    /// Push an 802.1Q/802.1ad tag. `tci` is the wire TCI (PCP, DEI, VID).
    PushVlan { tpid: u16, tci: u16 },
    /// Pop the outer VLAN tag.
    PopVlan,
    /// Push an MPLS label stack entry; the frame's Ethertype becomes
    /// `ethertype` (0x8847 or 0x8848).
    PushMpls { lse: u32, ethertype: u16 },
    /// Pop the top MPLS label; if it was the bottom of stack, the frame's
    /// Ethertype becomes `ethertype`.
    PopMpls { ethertype: u16 },
    /// Re-extract the packet's key and look it up again with this recirc_id.
    Recirc(u32),
    /// Compute `dp_hash` from the packet's 5-tuple with this basis.
    Hash { basis: u32 },
    /// Truncate the packet to at most this many bytes for the following
    /// outputs.
    Truncate(u32),
    /// Run `actions` on a clone of the packet with probability
    /// `probability / u32::MAX`.
    Sample {
        probability: u32,
        actions: ActionList,
    },
    /// Send a copy of the packet to the slow path (handler pool).
    Userspace { cookie: UserCookie },
    /// Run `actions` on a copy of the packet; changes made there do not leak
    /// into the actions that follow.
    Clone(ActionList),
    /// Run `gt` when the frame (without its L2 padding) is longer than
    /// `size` bytes, `le` otherwise (OVS `check_pkt_len`), on the packet
    /// itself when this is its last consumer, else on a copy.
    CheckPktLen {
        size: u16,
        gt: ActionList,
        le: ActionList,
    },
    /// Send the packet through the connection tracker (OVS `ct(...)`): sets
    /// its ct metadata, may commit a connection and apply NAT.
    Ct(Box<CtAction>),
    /// Clear the packet's ct metadata (OVS `ct_clear`).
    CtClear,
    /// Encapsulate the packet in the prebuilt outer headers and send it
    /// out of the underlay port (OVS `tnl_push`).
    TunnelPush(Box<crate::tunnel::TnlPush>),
    /// Strip the outer headers of a `kind` tunnel packet for the local
    /// address, set the tunnel metadata and look the inner frame up again
    /// as received on tunnel port `port` (OVS `tnl_pop`).
    TunnelPop {
        port: u32,
        kind: crate::tunnel::TunnelKind,
    },
    /// Drop the packet, counted under `reason`.
    Drop(DropReason),
}

/// The datapath `ct` action: every parameter is resolved at translation
/// time (a zone from a field is the field's value in the flow).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtAction {
    pub zone: u16,
    pub commit: bool,
    /// With `commit`: a connection found in the reply direction is ended
    /// and a new one committed for this packet's direction.
    pub force: bool,
    /// With `commit`: `ct_mark = (ct_mark & !mask) | (value & mask)`.
    pub mark: Option<(u32, u32)>,
    /// With `commit`: the same for `ct_label`.
    pub label: Option<(u128, u128)>,
    pub nat: Option<CtNat>,
}

/// Which translation a `nat` sets up for a new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// `nat` alone: apply the connection's NAT, set up none.
    #[default]
    Existing,
    Src,
    Dst,
}

/// `nat(src|dst=ADDR[-ADDR][:PORT[-PORT]],random|hash,persistent)`.
/// Addresses are IPv6-sized; an IPv4 range has `ipv6 == false` and the
/// address in the low 4 bytes (big-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtNat {
    pub kind: NatKind,
    pub ipv6: bool,
    pub addr_min: [u8; 16],
    pub addr_max: [u8; 16],
    /// 0..0 means "keep the port when free".
    pub port_min: u16,
    pub port_max: u16,
    pub random: bool,
    pub hash: bool,
    pub persistent: bool,
}

impl CtNat {
    /// True when an address range is given.
    pub fn has_addr(&self) -> bool {
        self.addr_min != [0; 16] || self.addr_max != [0; 16]
    }

    fn format(&self) -> String {
        let kind = match self.kind {
            NatKind::Existing => return "nat".into(),
            NatKind::Src => "src",
            NatKind::Dst => "dst",
        };
        let addr = |a: &[u8; 16]| {
            if self.ipv6 {
                crate::text::ipv6(a)
            } else {
                crate::text::ipv4(u32::from_be_bytes([a[12], a[13], a[14], a[15]]))
            }
        };
        let mut s = format!("nat({kind}");
        if self.has_addr() {
            s.push('=');
            let (lo, hi) = (addr(&self.addr_min), addr(&self.addr_max));
            if self.ipv6 && self.port_min != 0 {
                s.push_str(&format!("[{lo}]"));
            } else {
                s.push_str(&lo);
            }
            if self.addr_max != self.addr_min {
                s.push('-');
                s.push_str(&hi);
            }
            if self.port_min != 0 {
                s.push_str(&format!(":{}", self.port_min));
                if self.port_max != self.port_min {
                    s.push_str(&format!("-{}", self.port_max));
                }
            }
        }
        if self.random {
            s.push_str(",random");
        }
        if self.hash {
            s.push_str(",hash");
        }
        if self.persistent {
            s.push_str(",persistent");
        }
        s.push(')');
        s
    }
}

impl CtAction {
    fn format(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.commit {
            parts.push("commit".into());
        }
        if self.force {
            parts.push("force".into());
        }
        if self.zone != 0 {
            parts.push(format!("zone={}", self.zone));
        }
        if let Some((v, m)) = self.mark {
            parts.push(format!("mark={v:#x}/{m:#x}"));
        }
        if let Some((v, m)) = self.label {
            parts.push(format!("label={v:#x}/{m:#x}"));
        }
        if let Some(n) = &self.nat {
            parts.push(n.format());
        }
        if parts.is_empty() {
            "ct".into()
        } else {
            format!("ct({})", parts.join(","))
        }
    }
}

impl DpAction {
    /// True when the action sends the packet somewhere (used to decide
    /// whether an action list needs a packet copy).
    pub fn is_output(&self) -> bool {
        matches!(
            self,
            DpAction::Output(_) | DpAction::Userspace { .. } | DpAction::TunnelPush(_)
        )
    }
}

/// Formats an action list in OVS's `Datapath actions:` style (for traces,
/// dumps and logs).
pub fn format_actions(actions: &[DpAction]) -> String {
    if actions.is_empty() {
        return "drop".to_string();
    }
    let parts: Vec<String> = actions.iter().map(format_action).collect();
    parts.join(",")
}

fn format_action(a: &DpAction) -> String {
    match a {
        DpAction::Output(p) => p.to_string(),
        DpAction::Set(s) => format_set(s),
        DpAction::PushVlan { tpid, tci } => format!(
            "push_vlan(tpid=0x{:04x},vid={},pcp={})",
            tpid,
            tci & 0x0fff,
            tci >> 13
        ),
        DpAction::PopVlan => "pop_vlan".into(),
        DpAction::PushMpls { lse, ethertype } => format!(
            "push_mpls(label={},tc={},ttl={},bos={},eth_type=0x{:x})",
            lse >> 12,
            (lse >> 9) & 7,
            lse & 0xff,
            (lse >> 8) & 1,
            ethertype
        ),
        DpAction::PopMpls { ethertype } => format!("pop_mpls(eth_type=0x{:x})", ethertype),
        DpAction::Recirc(id) => format!("recirc(0x{:x})", id),
        DpAction::Hash { basis } => format!("hash(l4({}))", basis),
        DpAction::Truncate(n) => format!("trunc({})", n),
        DpAction::Sample {
            probability,
            actions,
        } => format!(
            "sample(sample={:.1}%,actions({}))",
            *probability as f64 * 100.0 / u32::MAX as f64,
            format_actions(actions)
        ),
        DpAction::Userspace { cookie } => format!("userspace({cookie})"),
        DpAction::Clone(actions) => format!("clone({})", format_actions(actions)),
        DpAction::CheckPktLen { size, gt, le } => format!(
            "check_pkt_len(size={size},gt({}),le({}))",
            format_actions(gt),
            format_actions(le)
        ),
        DpAction::Ct(ct) => ct.format(),
        DpAction::CtClear => "ct_clear".into(),
        DpAction::TunnelPush(t) => t.to_string(),
        DpAction::TunnelPop { port, .. } => format!("tnl_pop({port})"),
        DpAction::Drop(r) => format!("drop({})", r.name()),
    }
}

fn format_set(s: &SetField) -> String {
    // Only the fields with a non-zero mask are shown, as OVS does.
    let mut f: Vec<String> = Vec::new();
    let name = match s {
        SetField::Ethernet(m) => {
            if m.mask.src != [0; 6] {
                f.push(format!("src={}", mac(&m.value.src)));
            }
            if m.mask.dst != [0; 6] {
                f.push(format!("dst={}", mac(&m.value.dst)));
            }
            "eth"
        }
        SetField::Ipv4(m) => {
            if m.mask.src != 0 {
                f.push(format!("src={}", ipv4(m.value.src)));
            }
            if m.mask.dst != 0 {
                f.push(format!("dst={}", ipv4(m.value.dst)));
            }
            if m.mask.tos != 0 {
                f.push(format!("tos=0x{:x}/0x{:x}", m.value.tos, m.mask.tos));
            }
            if m.mask.ttl != 0 {
                f.push(format!("ttl={}", m.value.ttl));
            }
            "ipv4"
        }
        SetField::Ipv6(m) => {
            if m.mask.src != [0; 16] {
                f.push(format!("src={}", ipv6(&m.value.src)));
            }
            if m.mask.dst != [0; 16] {
                f.push(format!("dst={}", ipv6(&m.value.dst)));
            }
            if m.mask.label != 0 {
                f.push(format!("label=0x{:x}", m.value.label));
            }
            if m.mask.tclass != 0 {
                f.push(format!(
                    "tclass=0x{:x}/0x{:x}",
                    m.value.tclass, m.mask.tclass
                ));
            }
            if m.mask.hlimit != 0 {
                f.push(format!("hlimit={}", m.value.hlimit));
            }
            "ipv6"
        }
        SetField::Tcp(m) | SetField::Udp(m) | SetField::Sctp(m) => {
            if m.mask.src != 0 {
                f.push(format!("src={}", m.value.src));
            }
            if m.mask.dst != 0 {
                f.push(format!("dst={}", m.value.dst));
            }
            match s {
                SetField::Tcp(_) => "tcp",
                SetField::Udp(_) => "udp",
                _ => "sctp",
            }
        }
        SetField::Icmpv4(m) | SetField::Icmpv6(m) => {
            if m.mask.icmp_type != 0 {
                f.push(format!("type={}", m.value.icmp_type));
            }
            if m.mask.icmp_code != 0 {
                f.push(format!("code={}", m.value.icmp_code));
            }
            if matches!(s, SetField::Icmpv4(_)) {
                "icmp"
            } else {
                "icmpv6"
            }
        }
        SetField::Arp(m) => {
            if m.mask.spa != 0 {
                f.push(format!("sip={}", ipv4(m.value.spa)));
            }
            if m.mask.tpa != 0 {
                f.push(format!("tip={}", ipv4(m.value.tpa)));
            }
            if m.mask.op != 0 {
                f.push(format!("op={}", m.value.op));
            }
            if m.mask.sha != [0; 6] {
                f.push(format!("sha={}", mac(&m.value.sha)));
            }
            if m.mask.tha != [0; 6] {
                f.push(format!("tha={}", mac(&m.value.tha)));
            }
            "arp"
        }
        SetField::Nd(m) => {
            if m.mask.target != [0; 16] {
                f.push(format!("target={}", ipv6(&m.value.target)));
            }
            if m.mask.sll != [0; 6] {
                f.push(format!("sll={}", mac(&m.value.sll)));
            }
            if m.mask.tll != [0; 6] {
                f.push(format!("tll={}", mac(&m.value.tll)));
            }
            "nd"
        }
        SetField::Mpls(m) => {
            f.push(format!(
                "label={},tc={},ttl={},bos={}",
                m.value >> 12,
                (m.value >> 9) & 7,
                m.value & 0xff,
                (m.value >> 8) & 1
            ));
            "mpls"
        }
        SetField::PktMark(m) => {
            f.push(format!("0x{:x}/0x{:x}", m.value, m.mask));
            "skb_mark"
        }
    };
    format!("set({}({}))", name, f.join(","))
}
