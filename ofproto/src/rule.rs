//! OpenFlow rules as the switch holds them: a match, a priority, and
//! instructions made of OpenFlow actions.
//!
//! This is the parsed form of one `ovs-ofctl add-flows` line (see
//! [`crate::parse`]) and what the tables ([`crate::table`]) store and
//! translation ([`crate::xlate`]) executes.

use crate::fields::{FieldId, SubField};
use flowcache::key::FlowKey;

/// Where `ct`'s zone comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtZone {
    Imm(u16),
    /// `zone=NXM_NX_REG0[0..15]`: a 16-bit subfield read at translation.
    Field(SubField),
}

/// The `ct(...)` action (OVS `struct ofpact_conntrack`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CtSpec {
    pub commit: bool,
    pub force: bool,
    pub zone: CtZone,
    /// `table=T`: the packet comes back through table T after conntrack.
    pub table: Option<TableId>,
    /// `nat(...)` (OVS keeps it as the first action of `exec`).
    pub nat: Option<flowcache::actions::CtNat>,
    /// `exec(...)`: set_field/load/move into `ct_mark`/`ct_label`.
    pub exec: Vec<OfAction>,
    /// `alg=ftp|tftp` (the port OVS keeps: 21 or 69).
    pub alg: Option<u16>,
}

/// OpenFlow table number (0..=254).
pub type TableId = u8;
/// The largest table number.
pub const MAX_TABLE: TableId = 254;

/// A match: `value` under `mask` (value bits outside the mask are zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub value: FlowKey,
    pub mask: FlowKey,
}

impl Match {
    /// The match-everything match.
    pub fn catchall() -> Self {
        Match::default()
    }

    /// Sets the match on a field's bits (value is masked).
    pub fn set_field(&mut self, field: FieldId, value: u128, mask: u128) {
        field.set_masked(&mut self.value, value & mask, mask);
        field.or_mask(&mut self.mask, mask);
        // Keep value within the mask.
        self.value = self.value.masked(&self.mask);
    }

    /// True when `flow` matches.
    #[inline]
    pub fn matches(&self, flow: &FlowKey) -> bool {
        flow.matches(&self.value, &self.mask)
    }
}

/// Where an output action sends the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputPort {
    /// A numbered port.
    Port(u32),
    /// Back out of the ingress port (`in_port`, OFPP_IN_PORT).
    InPort,
    /// Every port but the ingress port (OFPP_ALL).
    All,
    /// Every port but the ingress port (no STP here: same as ALL).
    Flood,
    /// The NORMAL L2 pipeline (not supported yet: rejected by the parser).
    Normal,
    /// The controller (there is none: the packet is dropped, as OVS does
    /// without a controller connection).
    Controller,
    /// The local port (none in vportd: ignored).
    Local,
    /// Send through the OpenFlow pipeline again from table 0 (OFPP_TABLE).
    Table,
}

/// One OpenFlow action (OpenFlow 1.3 plus the OVS extensions the flow
/// language accepts).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OfAction {
    Output(OutputPort),
    /// `output:NXM_NX_REG0[]`: output to the port number held in a subfield.
    OutputReg(SubField),
    /// `set_field:V/M->F` and every `mod_*` that writes one field.
    SetField {
        field: FieldId,
        value: u128,
        mask: u128,
    },
    /// `load:V->F[a..b]`.
    Load {
        dst: SubField,
        value: u128,
    },
    /// `move:F[a..b]->G[c..d]`.
    Move {
        src: SubField,
        dst: SubField,
    },
    /// `dec_ttl`: IPv4 TTL or IPv6 hop limit.
    DecTtl,
    /// `dec_mpls_ttl`.
    DecMplsTtl,
    /// `set_mpls_ttl:N`.
    SetMplsTtl(u8),
    /// `mod_nw_ttl:N`: set the IPv4 TTL / IPv6 hop limit (OpenFlow's
    /// OFPAT_SET_NW_TTL; same effect as a set-field on `nw_ttl`, kept apart
    /// because dump-flows prints it as `mod_nw_ttl:N`).
    SetNwTtl(u8),
    /// `push_vlan:TPID`.
    PushVlan(u16),
    /// `pop_vlan` / `strip_vlan`.
    PopVlan,
    /// `push_mpls:ETHERTYPE`.
    PushMpls(u16),
    /// `pop_mpls:ETHERTYPE`.
    PopMpls(u16),
    /// `resubmit(port,table)`: `None` port = in_port unchanged, `None`
    /// table = the current table.
    Resubmit {
        in_port: Option<u32>,
        table: Option<TableId>,
    },
    /// `controller` (dropped: there is no controller).
    Controller,
    /// `clone(...)`: the actions run on a copy of the packet; their header
    /// and register changes and their action-set writes stay inside.
    Clone(Vec<OfAction>),
    /// `group:N`: run group N (see [`crate::group`]).
    Group(u32),
    /// `check_pkt_larger(N)->dst`: writes 1 to the 1-bit `dst` when the
    /// frame (L2 padding excluded) is longer than N bytes, else 0, and the
    /// rest of the translation runs once per outcome (datapath
    /// `check_pkt_len`).
    CheckPktLarger {
        pkt_len: u16,
        dst: SubField,
    },
    /// `output(port=P,max_len=N)`: send at most the first N bytes to P.
    OutputTrunc {
        port: OutputPort,
        max_len: u32,
    },
    /// `dec_ttl(id,...)`: `dec_ttl` whose TTL exception goes to these
    /// controller ids (there is no controller: it drops like `dec_ttl`).
    DecTtlIds(Vec<u16>),
    /// `note:HEX`: carries bytes, does nothing (kept padded as OVS stores
    /// it: NXAST_NOTE rounds the action to 8 bytes).
    Note(Vec<u8>),
    /// `exit`: stops translation (every level, the action set included).
    Exit,
    /// `ct(...)`: send the packet through the connection tracker.
    Ct(Box<CtSpec>),
    /// `ct_clear`: the packet is untracked again.
    CtClear,
    /// `set_queue:N` / `pop_queue`: the output queue (vportd ports have one
    /// queue: no effect on forwarding).
    SetQueue(u32),
    PopQueue,
    /// `sample(...)`: a flow sample for an IPFIX collector set (vportd has
    /// no collectors: no effect).
    Sample {
        probability: u16,
        collector_set_id: u32,
        obs_domain_id: u32,
        obs_point_id: u32,
    },
    /// `fin_timeout(idle_timeout=I,hard_timeout=H)` (0 = unchanged).
    FinTimeout {
        idle: u16,
        hard: u16,
    },
    /// `learn(...)`: adds or refreshes a rule built from the packet (see
    /// [`Learn`]).
    Learn(Box<Learn>),
    /// `conjunction(id,k/n)`: the rule is clause `k` (1-based) of `n` of
    /// conjunctive match `id` (see [`crate::classifier`]); never executed.
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    /// `multipath(fields,basis,algorithm,n_links,arg,dst)`: writes a link
    /// number in `0..n_links`, chosen by a hash of `fields`, to `dst`.
    Multipath {
        fields: HashFields,
        basis: u16,
        algorithm: MultipathAlgorithm,
        n_links: u32,
        arg: u32,
        dst: SubField,
    },
    /// `bundle(fields,basis,algorithm,ofport,members:P,...)` (outputs to
    /// the chosen live member) and `bundle_load(..., dst, members:...)`
    /// (writes its port number to `dst`).
    Bundle {
        fields: HashFields,
        basis: u16,
        algorithm: BundleAlgorithm,
        members: Vec<u32>,
        dst: Option<SubField>,
    },
}

/// The flow fields `multipath` and `bundle` hash (OVS `nx_hash_fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashFields {
    EthSrc,
    SymmetricL4,
    SymmetricL3L4,
    SymmetricL3L4Udp,
    NwSrc,
    NwDst,
    SymmetricL3,
}

impl HashFields {
    pub const ALL: [HashFields; 7] = [
        HashFields::EthSrc,
        HashFields::SymmetricL4,
        HashFields::SymmetricL3L4,
        HashFields::SymmetricL3L4Udp,
        HashFields::NwSrc,
        HashFields::NwDst,
        HashFields::SymmetricL3,
    ];

    /// OVS `flow_hash_fields_to_str`.
    pub fn name(self) -> &'static str {
        match self {
            HashFields::EthSrc => "eth_src",
            HashFields::SymmetricL4 => "symmetric_l4",
            HashFields::SymmetricL3L4 => "symmetric_l3l4",
            HashFields::SymmetricL3L4Udp => "symmetric_l3l4+udp",
            HashFields::NwSrc => "nw_src",
            HashFields::NwDst => "nw_dst",
            HashFields::SymmetricL3 => "symmetric_l3",
        }
    }
}

/// `multipath`'s link selection (OVS `nx_mp_algorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MultipathAlgorithm {
    ModuloN,
    HashThreshold,
    Hrw,
    IterHash,
}

impl MultipathAlgorithm {
    pub const ALL: [MultipathAlgorithm; 4] = [
        MultipathAlgorithm::ModuloN,
        MultipathAlgorithm::HashThreshold,
        MultipathAlgorithm::Hrw,
        MultipathAlgorithm::IterHash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MultipathAlgorithm::ModuloN => "modulo_n",
            MultipathAlgorithm::HashThreshold => "hash_threshold",
            MultipathAlgorithm::Hrw => "hrw",
            MultipathAlgorithm::IterHash => "iter_hash",
        }
    }
}

/// `bundle`'s member selection (OVS `nx_bd_algorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BundleAlgorithm {
    /// The first live member.
    ActiveBackup,
    /// Highest random weight over the live members.
    Hrw,
}

impl BundleAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            BundleAlgorithm::ActiveBackup => "active_backup",
            BundleAlgorithm::Hrw => "hrw",
        }
    }
}

/// Where one `learn` spec takes its value from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnSrc {
    /// Bits of the packet's flow (as translation has it at the action).
    Field(SubField),
    /// A constant (the spec's `n_bits` low bits).
    Imm(u128),
}

/// What one `learn` spec makes of its value in the learned rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnDst {
    /// A match on these bits.
    Match(SubField),
    /// A `load` into these bits.
    Load(SubField),
    /// `output` to the port number the value holds.
    Output,
}

/// One spec of a `learn` action (OVS `struct ofpact_learn_spec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LearnSpec {
    pub src: LearnSrc,
    pub dst: LearnDst,
    pub n_bits: u32,
    /// The transport protocol the field names spelled (`NXM_OF_UDP_SRC` is
    /// udp), which decides how they print back: source, destination.
    pub src_proto: Option<u8>,
    pub dst_proto: Option<u8>,
}

/// A `learn(...)` action (OVS `struct ofpact_learn`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Learn {
    pub table: TableId,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub fin_idle_timeout: u16,
    pub fin_hard_timeout: u16,
    pub cookie: u64,
    pub send_flow_rem: bool,
    /// Deleting the last rule with this learn deletes the rules it learned
    /// (those of `table` with `cookie`).
    pub delete_learned: bool,
    /// At most this many rules with `cookie` in `table` (0: no limit).
    pub limit: u32,
    /// Gets 1 when the rule was learned (or already there), 0 when the
    /// limit stopped it.
    pub result_dst: Option<SubField>,
    pub specs: Vec<LearnSpec>,
}

impl Learn {
    /// The learn specs' source fields: what translation un-wildcards
    /// (OVS `learn_mask`).
    pub fn src_fields(&self) -> impl Iterator<Item = SubField> + '_ {
        self.specs.iter().filter_map(|s| match s.src {
            LearnSrc::Field(sf) => Some(sf),
            LearnSrc::Imm(_) => None,
        })
    }
}

impl Default for Learn {
    fn default() -> Self {
        Learn {
            table: 1,
            priority: 32768,
            idle_timeout: 0,
            hard_timeout: 0,
            fin_idle_timeout: 0,
            fin_hard_timeout: 0,
            cookie: 0,
            send_flow_rem: false,
            delete_learned: false,
            limit: 0,
            result_dst: None,
            specs: Vec::new(),
        }
    }
}

impl Learn {
    /// OVS `learn_execute`: the rule this action learns from `flow`.
    pub fn execute(&self, flow: &FlowKey) -> Rule {
        let mut m = Match::catchall();
        let mut apply = Vec::new();
        if self.fin_idle_timeout != 0 || self.fin_hard_timeout != 0 {
            apply.push(OfAction::FinTimeout {
                idle: self.fin_idle_timeout,
                hard: self.fin_hard_timeout,
            });
        }
        for spec in &self.specs {
            let value = match spec.src {
                LearnSrc::Field(sf) => sf.read(flow),
                LearnSrc::Imm(v) => v,
            };
            match spec.dst {
                LearnDst::Match(sf) => {
                    sf.field
                        .set_masked(&mut m.value, value << sf.ofs, sf.mask());
                    sf.field.or_mask(&mut m.mask, sf.mask());
                }
                LearnDst::Load(sf) => {
                    if sf.n_bits <= 64 {
                        apply.push(OfAction::Load { dst: sf, value });
                    } else {
                        for (dst, v) in crate::parse::fields::load_segments(
                            sf.field,
                            value << sf.ofs,
                            sf.mask(),
                        ) {
                            apply.push(OfAction::Load { dst, value: v });
                        }
                    }
                }
                LearnDst::Output => {
                    if spec.n_bits <= 16 || value >> 16 == 0 {
                        if let Some(p) = learn_output_port(value as u16) {
                            apply.push(OfAction::Output(p));
                        }
                    }
                }
            }
        }
        m.value = m.value.masked(&m.mask);
        Rule {
            table: self.table,
            priority: self.priority,
            cookie: self.cookie,
            idle_timeout: self.idle_timeout,
            hard_timeout: self.hard_timeout,
            matches: m,
            instructions: Instructions {
                apply,
                ..Default::default()
            },
        }
    }
}

/// The ports a learned `output` may go to (OVS `learn_execute`): a real
/// port, IN_PORT, FLOOD, TABLE, LOCAL or ALL.
fn learn_output_port(p: u16) -> Option<OutputPort> {
    let p = u32::from(p);
    if p < crate::ofp_port::OFPP_MAX {
        return Some(OutputPort::Port(p));
    }
    OutputPort::reserved(p).filter(|o| !matches!(o, OutputPort::Normal | OutputPort::Controller))
}

impl OfAction {
    /// The learn actions in `acts`, those nested in `clone(...)` included.
    pub fn learns(acts: &[OfAction]) -> Vec<&Learn> {
        let mut out = Vec::new();
        for a in acts {
            match a {
                OfAction::Learn(l) => out.push(&**l),
                OfAction::Clone(inner) => out.extend(OfAction::learns(inner)),
                _ => {}
            }
        }
        out
    }
}

/// A rule's instructions, in OpenFlow 1.3's fixed execution order: apply
/// actions, clear the action set, write actions, write metadata, goto
/// table. ovs-ofctl lets them be written mixed into one `actions=` list; the
/// parser sorts them into this form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Instructions {
    /// Apply-actions, executed immediately in order.
    pub apply: Vec<OfAction>,
    /// `clear_actions`.
    pub clear_actions: bool,
    /// `write_actions(...)`: merged into the action set.
    pub write_actions: Option<Vec<OfAction>>,
    /// `write_metadata:V[/M]`.
    pub write_metadata: Option<(u64, u64)>,
    /// `goto_table:N`.
    pub goto_table: Option<TableId>,
}

/// One rule (a flow entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub table: TableId,
    pub priority: u16,
    pub cookie: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub matches: Match,
    pub instructions: Instructions,
}

impl Instructions {
    /// True when any action (nested ones included) is `ct` or
    /// `ct_clear`.
    pub fn uses_conntrack(&self) -> bool {
        fn any(acts: &[OfAction]) -> bool {
            acts.iter().any(|a| match a {
                OfAction::Ct(_) | OfAction::CtClear => true,
                OfAction::Clone(inner) => any(inner),
                _ => false,
            })
        }
        any(&self.apply) || self.write_actions.as_deref().is_some_and(any)
    }
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            table: 0,
            priority: 32768,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            matches: Match::catchall(),
            instructions: Instructions::default(),
        }
    }
}
