//! Translation (OVS `ofproto-dpif-xlate.c`): runs a packet's flow key
//! through the OpenFlow tables and produces the datapath actions for it plus
//! the megaflow mask under which those actions are valid for every packet.
//!
//! Behaviour copied from OVS 3.1 (see the conformance README):
//! * table 0 first; `goto_table`, `resubmit(port,table)` (the port replaces
//!   `in_port` for that lookup only); registers and metadata written in a
//!   resubmitted table persist; a table miss drops (for that lookup only:
//!   the caller's remaining actions and the action set still run);
//! * translation depth: resubmits to the same or an earlier table nest; more
//!   than 64 nested (or 4096 in all) is an error and the whole packet is
//!   dropped, earlier outputs included;
//! * fragments are looked up with `tp_src`/`tp_dst` (ICMP type/code) 0;
//! * outputs to the ingress port are skipped (`in_port` sends back), to
//!   missing ports ignored, ALL/FLOOD go to every other existing port in
//!   ascending order, `controller` emits `userspace(controller(...))` (the
//!   handler pool counts the packet-in: there is no controller);
//! * `dec_ttl`/`dec_mpls_ttl` at TTL ≤ 1 abandon the rest of the rule's
//!   actions and instructions (nothing after them; outputs before them
//!   stand; a resubmitting caller continues; the action set still runs);
//! * `write_actions` accumulate into the action set (a later write of the
//!   same kind wins; set-field/move/load are all kept in order), executed at
//!   the end of the pipeline in OpenFlow's order (pop VLAN, pop MPLS, push
//!   MPLS, push VLAN, dec TTL, dec MPLS TTL, sets, output/resubmit);
//! * header changes are committed (see [`commit`]) before each output.
//!
//! The megaflow mask (`wc`) always holds `recirc_id`, `in_port`, `dl_type`,
//! `nw_frag` (IP) and the VLAN "present" bits, plus every bit the lookups
//! and actions consulted; it never has bits in the OpenFlow-only words
//! (`metadata`, registers).

mod clone;
pub mod commit;
mod ct;
mod group;
mod multipath;
pub mod normal;

use crate::fields::{FieldId, Prereq, SubField};
use crate::ofp_port::{OFPP_IN_PORT, OFPP_NONE};
use crate::parse::{format_instructions, format_match};
use crate::recirc::{FrozenState, FrozenStep, RecircNode, RecircRegistry};
use crate::rule::{Instructions, Learn, Match, OfAction, OutputPort, Rule, TableId};
use crate::table::{RuleEntry, Tables};
use commit::{count_vlans, mpls_stack, set_mpls_stack, DeepMpls};
use flowcache::actions::{format_actions, DpAction, DropReason, UserCookie};
use flowcache::key::*;
use std::collections::BTreeSet;
use std::sync::Arc;

pub use normal::{L2Switch, MacDeps, PortVlan, VlanMode};

/// OVS `MAX_DEPTH`: nested resubmits allowed.
pub const MAX_DEPTH: u32 = 64;
/// OVS `MAX_RESUBMITS`: resubmits allowed in one translation.
pub const MAX_RESUBMITS: u32 = MAX_DEPTH * MAX_DEPTH;

/// The OpenFlow ports that exist (for output, ALL and FLOOD).
pub trait PortSet {
    /// True when `port` exists.
    fn contains(&self, port: u32) -> bool;
    /// Every port, ascending.
    fn ports(&self) -> Vec<u32>;
    /// True when `port` can carry packets (exists, link up, not admin
    /// down): fast_failover liveness.
    fn is_live(&self, port: u32) -> bool {
        self.contains(port)
    }
    /// For a tunnel port: the datapath action that sends `flow` through it
    /// (native tunnelling's `tnl_push`, adding what it read to `wc`), or
    /// why it cannot go now. `None` for any other port.
    fn tunnel_output(
        &self,
        port: u32,
        flow: &FlowKey,
        wc: &mut FlowKey,
    ) -> Option<Result<DpAction, DropReason>> {
        let _ = (port, flow, wc);
        None
    }
}

impl PortSet for [u32] {
    fn contains(&self, port: u32) -> bool {
        <[u32]>::contains(self, &port)
    }
    fn ports(&self) -> Vec<u32> {
        let mut v = self.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl PortSet for Vec<u32> {
    fn contains(&self, port: u32) -> bool {
        self.as_slice().contains(&port)
    }
    fn ports(&self) -> Vec<u32> {
        self.as_slice().ports()
    }
}

impl PortSet for BTreeSet<u32> {
    fn contains(&self, port: u32) -> bool {
        BTreeSet::contains(self, &port)
    }
    fn ports(&self) -> Vec<u32> {
        self.iter().copied().collect()
    }
}

/// Ports `1..=n`.
#[derive(Clone, Copy, Debug)]
pub struct PortRange(pub u32);

impl PortSet for PortRange {
    fn contains(&self, port: u32) -> bool {
        port >= 1 && port <= self.0
    }
    fn ports(&self) -> Vec<u32> {
        (1..=self.0).collect()
    }
}

/// Where `learn` actions put the rules they learn: the bridge's tables
/// (translation only looks at the snapshot it started with, as OVS looks
/// at one tables version, so a rule learned here is first seen by the next
/// translation).
pub trait Learner {
    /// Learns `rule` ([`Learn::limit`] `limit`, see
    /// [`crate::table::Tables::learn`]); true when the rule is in its
    /// table afterwards (added, replaced or refreshed), false when the limit
    /// stopped it.
    fn learn(&self, rule: &Rule, limit: u32) -> bool;
}

/// Translation options.
#[derive(Clone, Copy, Debug, Default)]
pub struct XlateOptions {
    /// Produce `ofproto/trace`-like lines in [`XlateOutput::trace`].
    pub trace: bool,
}

/// The result of a translation.
#[derive(Clone, Debug)]
pub struct XlateOutput {
    /// Datapath actions; empty means drop (see `drop_reason`).
    pub actions: Vec<DpAction>,
    /// Megaflow mask: the packet's key masked with it identifies every
    /// packet these actions are right for. No bits in words `>= DP_WORDS`.
    pub wc: FlowKey,
    /// The rules the packet went through, in order (credit megaflow stats to
    /// them).
    pub rules: Vec<Arc<RuleEntry>>,
    /// Why nothing is output, when `actions` has no output.
    pub drop_reason: Option<DropReason>,
    /// The flow as OpenFlow left it (OVS "Final flow").
    pub final_flow: FlowKey,
    /// Trace lines (only with [`XlateOptions::trace`]).
    pub trace: Vec<String>,
    /// The recirculation ids this translation uses (the one it thawed, the
    /// one it froze): whoever keeps the actions keeps these, so the ids
    /// stay valid as long as a megaflow refers to them.
    pub recircs: Vec<Arc<RecircNode>>,
    /// What NORMAL read from and taught the MAC table: the actions are
    /// right only while the entries it read stay as they were.
    pub mac_deps: MacDeps,
    /// The rules `learn` actions learned (with their `limit`), in order;
    /// empty without a [`Learner`].
    pub learned: Vec<(Rule, u32)>,
    /// The groups the packet went through and the bucket each used (credit
    /// megaflow stats to them, as to `rules`).
    pub groups: Vec<GroupUse>,
}

impl XlateOutput {
    /// A translation that drops `flow` for `reason` having read `wc`.
    pub fn dropped(flow: &FlowKey, reason: DropReason, wc: FlowKey) -> XlateOutput {
        XlateOutput::datapath_only(flow, vec![DpAction::Drop(reason)], wc)
    }

    /// A translation made without the tables (native tunnelling's ARP
    /// responder, `tnl_pop`): `actions` having read `wc` (in_port and
    /// recirc_id are added).
    pub fn datapath_only(flow: &FlowKey, actions: Vec<DpAction>, mut wc: FlowKey) -> XlateOutput {
        wc.recirc_id = u32::MAX;
        wc.in_port = u32::MAX;
        let drop_reason = match actions.as_slice() {
            [DpAction::Drop(r)] => Some(*r),
            _ => None,
        };
        XlateOutput {
            actions,
            wc,
            rules: Vec::new(),
            drop_reason,
            final_flow: *flow,
            trace: Vec::new(),
            recircs: Vec::new(),
            mac_deps: MacDeps::default(),
            learned: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// One pass through a group (OVS `xlate_group_stats`): the group and the
/// bucket used, or `None` for all buckets (all and indirect groups).
#[derive(Clone, Debug)]
pub struct GroupUse {
    pub group: Arc<crate::group::GroupEntry>,
    pub bucket: Option<usize>,
}

impl GroupUse {
    /// Adds a megaflow's packets and bytes to the group and its bucket(s).
    pub fn credit(&self, packets: u64, bytes: u64) {
        self.group.credit(self.bucket, packets, bytes);
    }
}

/// One step of a rule's instructions (borrowed form of [`FrozenStep`]).
#[derive(Clone, Copy)]
enum Step<'r> {
    Action(&'r OfAction),
    ClearActions,
    WriteActions(&'r [OfAction]),
    WriteMetadata(u64, u64),
    GotoTable(TableId),
}

impl Step<'_> {
    fn to_frozen(self) -> FrozenStep {
        match self {
            Step::Action(a) => FrozenStep::Action(a.clone()),
            Step::ClearActions => FrozenStep::ClearActions,
            Step::WriteActions(w) => FrozenStep::WriteActions(w.to_vec()),
            Step::WriteMetadata(v, m) => FrozenStep::WriteMetadata(v, m),
            Step::GotoTable(t) => FrozenStep::GotoTable(t),
        }
    }

    fn from_frozen(f: &FrozenStep) -> Step<'_> {
        match f {
            FrozenStep::Action(a) => Step::Action(a),
            FrozenStep::ClearActions => Step::ClearActions,
            FrozenStep::WriteActions(w) => Step::WriteActions(w),
            FrozenStep::WriteMetadata(v, m) => Step::WriteMetadata(*v, *m),
            FrozenStep::GotoTable(t) => Step::GotoTable(*t),
        }
    }

    /// OVS `recirc_for_mpls`: after a `pop_mpls` to a non-MPLS type, this
    /// step needs the headers under the label, so translation freezes
    /// before it. Outputs, `controller` and writes of L2 fields, metadata
    /// and registers do not.
    fn needs_l3(self) -> bool {
        match self {
            Step::Action(a) => match a {
                OfAction::Output(_) | OfAction::OutputReg(_) | OfAction::Controller => false,
                OfAction::SetField { field, .. } => field_is_l3_or_higher(*field),
                OfAction::Load { dst, .. } => field_is_l3_or_higher(dst.field),
                _ => true,
            },
            _ => true,
        }
    }
}

/// The action set `set` as the list it executes (OVS
/// `ofpacts_execute_action_set`): pops, pushes, TTLs, sets, then a group or
/// else the output and resubmit.
fn action_set_order(set: &[OfAction]) -> Vec<OfAction> {
    let last = |pred: &dyn Fn(&OfAction) -> bool| set.iter().rev().find(|a| pred(a)).cloned();
    let mut list = Vec::new();
    list.extend(last(&|a| matches!(a, OfAction::PopVlan)));
    list.extend(last(&|a| matches!(a, OfAction::PopMpls(_))));
    list.extend(last(&|a| matches!(a, OfAction::PushMpls(_))));
    list.extend(last(&|a| matches!(a, OfAction::PushVlan(_))));
    list.extend(last(&|a| matches!(a, OfAction::DecTtl)));
    list.extend(last(&|a| matches!(a, OfAction::DecMplsTtl)));
    list.extend(
        set.iter()
            .filter(|a| {
                matches!(
                    a,
                    OfAction::SetField { .. }
                        | OfAction::Load { .. }
                        | OfAction::Move { .. }
                        | OfAction::SetMplsTtl(_)
                        | OfAction::SetNwTtl(_)
                )
            })
            .cloned(),
    );
    // OpenFlow: with both a group and an output, only the group runs.
    if let Some(g) = last(&|a| matches!(a, OfAction::Group(_))) {
        list.push(g);
    } else {
        list.extend(last(&|a| {
            matches!(
                a,
                OfAction::Output(_) | OfAction::OutputReg(_) | OfAction::Controller
            )
        }));
        list.extend(last(&|a| matches!(a, OfAction::Resubmit { .. })));
    }
    list
}

/// OVS `mf_is_l3_or_higher`.
fn field_is_l3_or_higher(f: FieldId) -> bool {
    !matches!(f.prereq(), Prereq::None | Prereq::Mpls)
}

/// Result of running an action list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Stop the current rule's actions (TTL exception) or an error.
    Stop,
}

struct Ctx<'a> {
    tables: &'a Tables,
    ports: &'a dyn PortSet,
    orig: FlowKey,
    flow: FlowKey,
    base: FlowKey,
    wc: FlowKey,
    actions: Vec<DpAction>,
    rules: Vec<Arc<RuleEntry>>,
    action_set: Vec<OfAction>,
    table_id: TableId,
    depth: u32,
    resubmits: u32,
    error: Option<DropReason>,
    invalid_ttl: bool,
    table_miss: bool,
    /// An MPLS pop to a non-MPLS type happened (OVS would recirculate
    /// before looking at L3 again).
    was_mpls: bool,
    /// MPLS labels below the two the keys hold.
    deep: DeepMpls,
    trace: Option<Vec<String>>,
    indent: usize,
    /// Match of the rule being executed (names fields in trace lines).
    cur_match: Match,
    /// Priority and cookie of the rule being executed (packet-in cookie).
    cur_prio: u16,
    cur_cookie: u64,
    /// Where frozen states get their ids.
    recirc: &'a RecircRegistry,
    /// Translation is being frozen: every level appends what it has left
    /// to `frozen` and returns (OVS `ctx->freezing`).
    freezing: bool,
    frozen: Vec<FrozenStep>,
    recircs: Vec<Arc<RecircNode>>,
    /// An action ran whose translation depends on what the packet is (a
    /// header change, a push or pop, TTL, controller, a resumed frozen
    /// state...): anything but output to ports and resubmit.
    typed_action: bool,
    /// `exit` (or `check_pkt_larger`, which translated the rest itself)
    /// ended the translation at every level.
    exit: bool,
    /// While a rule's apply-actions run: its instructions after them (what
    /// `check_pkt_larger` must translate as the rest of the list).
    rule_tail: Option<Vec<FrozenStep>>,
    /// The L2 switch NORMAL uses (none: NORMAL drops).
    l2: Option<&'a L2Switch<'a>>,
    /// MAC table entries NORMAL consulted.
    mac_deps: MacDeps,
    /// Groups used (see [`XlateOutput::groups`]).
    groups: Vec<GroupUse>,
    /// Where `learn` installs rules (none: learning is a side effect this
    /// translation must not have, e.g. a trace or a revalidation).
    learner: Option<&'a dyn Learner>,
    learned: Vec<(Rule, u32)>,
}

/// Translates `flow` (a datapath key: registers and metadata 0) through
/// `tables`, with a private recirculation registry (the ids of a
/// `recirc(ID)` in the result mean nothing to anyone else; use
/// [`xlate_recirc`] with the bridge's registry for the datapath).
pub fn xlate(
    tables: &Tables,
    flow: &FlowKey,
    ports: &dyn PortSet,
    opts: &XlateOptions,
) -> XlateOutput {
    xlate_recirc(tables, flow, ports, opts, &RecircRegistry::new())
}

/// Translates `flow` through `tables`. A translation that needs headers
/// the key does not have yet (a lookup after `pop_mpls`) freezes into
/// `recirc` and ends with `recirc(ID)`; a key with `recirc_id` ≠ 0 resumes
/// the frozen translation of that id.
pub fn xlate_recirc(
    tables: &Tables,
    flow: &FlowKey,
    ports: &dyn PortSet,
    opts: &XlateOptions,
    recirc: &RecircRegistry,
) -> XlateOutput {
    xlate_l2(tables, flow, ports, opts, recirc, None)
}

/// [`xlate_recirc`] with the L2 switch NORMAL learns in and looks up.
pub fn xlate_l2<'a>(
    tables: &'a Tables,
    flow: &FlowKey,
    ports: &'a dyn PortSet,
    opts: &XlateOptions,
    recirc: &'a RecircRegistry,
    l2: Option<&'a L2Switch<'a>>,
) -> XlateOutput {
    xlate_full(tables, flow, ports, opts, recirc, l2, None)
}

/// [`xlate_l2`] where `learn` actions learn into `learner` (none: they
/// only un-wildcard their source fields, as OVS without side effects).
pub fn xlate_full<'a>(
    tables: &'a Tables,
    flow: &FlowKey,
    ports: &'a dyn PortSet,
    opts: &XlateOptions,
    recirc: &'a RecircRegistry,
    l2: Option<&'a L2Switch<'a>>,
    learner: Option<&'a dyn Learner>,
) -> XlateOutput {
    let mut start = *flow;
    for w in &mut start.words_mut()[DP_WORDS..] {
        *w = 0;
    }
    // The Ethernet type, IP fragment bits and VLAN tag presence that OVS
    // always puts in a megaflow are added by `finish` (see
    // `pins_packet_type`).
    let wc = FlowKey {
        recirc_id: u32::MAX,
        in_port: u32::MAX,
        ..Default::default()
    };
    let mut ctx = Ctx {
        tables,
        ports,
        orig: start,
        flow: start,
        base: start,
        wc,
        actions: Vec::new(),
        rules: Vec::new(),
        action_set: Vec::new(),
        table_id: 0,
        depth: 0,
        resubmits: 0,
        error: None,
        invalid_ttl: false,
        table_miss: false,
        was_mpls: false,
        deep: DeepMpls::for_packet(&start),
        trace: opts.trace.then(Vec::new),
        indent: 0,
        cur_match: Match::catchall(),
        cur_prio: 0,
        cur_cookie: 0,
        recirc,
        freezing: false,
        frozen: Vec::new(),
        recircs: Vec::new(),
        typed_action: false,
        exit: false,
        rule_tail: None,
        l2,
        mac_deps: MacDeps::default(),
        groups: Vec::new(),
        learner,
        learned: Vec::new(),
    };
    if ctx.trace.is_some() {
        ctx.note_line(format!("Flow: {}", describe_key(&start)));
        ctx.note_line(String::new());
    }
    if start.recirc_id != 0 {
        ctx.typed_action = true;
        ctx.thaw(start.recirc_id);
        return ctx.finish();
    }
    match ctx.lookup(0, start.in_port) {
        Some(e) => {
            ctx.trace_table(0, Some(e));
            ctx.rules.push(e.clone());
            ctx.exec_rule(e);
        }
        None => {
            ctx.trace_table(0, None);
            ctx.table_miss = true;
        }
    }
    if ctx.error.is_none() && !ctx.freezing && !ctx.exit {
        ctx.exec_action_set();
    }
    ctx.finish()
}

/// Actions whose translation reads nothing of the packet but its in_port:
/// output to ports and resubmit (whose lookup records what it consults).
fn is_port_action(a: &OfAction) -> bool {
    matches!(
        a,
        OfAction::Output(
            OutputPort::Port(_)
                | OutputPort::InPort
                | OutputPort::All
                | OutputPort::Flood
                | OutputPort::Table
        ) | OfAction::Resubmit { .. }
    )
}

/// The prerequisite translation checks before writing a field (OVS
/// `mf_are_prereqs_ok` on the written field).
fn write_prereq(field: FieldId) -> Prereq {
    match field {
        FieldId::NwSrc | FieldId::NwDst => Prereq::Ipv4,
        f => f.prereq(),
    }
}

/// A short key description for trace lines.
pub(crate) fn describe_key(k: &FlowKey) -> String {
    let mut m = Match {
        value: *k,
        mask: FlowKey::default(),
    };
    m.mask.in_port = u32::MAX;
    m.mask.dl_type = 0xffff;
    m.mask.dl_src = [0xff; 6];
    m.mask.dl_dst = [0xff; 6];
    if k.vlans[0].tci & VLAN_CFI != 0 {
        m.mask.vlans[0].tci = 0xffff;
    }
    if k.is_ipv4() || k.dl_type == ETH_TYPE_ARP {
        m.mask.nw_src = u32::MAX;
        m.mask.nw_dst = u32::MAX;
    }
    if k.is_ipv6() {
        m.mask.ipv6_src = [0xff; 16];
        m.mask.ipv6_dst = [0xff; 16];
    }
    if k.is_ip() {
        m.mask.nw_proto = 0xff;
        m.mask.nw_ttl = 0xff;
        m.mask.nw_tos = 0xff;
        m.mask.nw_frag = 0xff;
        if matches!(k.nw_proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) {
            m.mask.tp_src = 0xffff;
            m.mask.tp_dst = 0xffff;
        }
    }
    if k.is_mpls() {
        m.mask.mpls_lse[0] = u32::MAX;
    }
    format_match(&m)
}

impl<'a> Ctx<'a> {
    fn note_line(&mut self, s: String) {
        if let Some(t) = self.trace.as_mut() {
            t.push(s);
        }
    }

    fn note(&mut self, s: &str) {
        if self.trace.is_some() {
            let pad = " ".repeat(4 + self.indent * 4);
            self.note_line(format!("{pad}{s}"));
        }
    }

    /// Like [`Ctx::note`], formatting only when tracing.
    fn notef(&mut self, f: impl FnOnce() -> String) {
        if self.trace.is_some() {
            let s = f();
            self.note(&s);
        }
    }

    fn trace_table(&mut self, table: TableId, rule: Option<&Arc<RuleEntry>>) {
        if self.trace.is_none() {
            return;
        }
        let pad = " ".repeat(self.indent * 4);
        let line = match rule {
            Some(e) => {
                let m = format_match(&e.rule.matches);
                if m.is_empty() {
                    format!("{pad}{:2}. priority {}", table, e.rule.priority)
                } else {
                    format!("{pad}{:2}. {}, priority {}", table, m, e.rule.priority)
                }
            }
            None => format!("{pad}{:2}. No match.\n{pad}    drop", table),
        };
        for l in line.split('\n') {
            self.note_line(l.to_string());
        }
    }

    fn trace_action(&mut self, a: &OfAction) {
        if self.trace.is_some() {
            let ins = Instructions {
                apply: vec![a.clone()],
                ..Default::default()
            };
            let s = format_instructions(&ins, &self.cur_match);
            self.note(&s);
        }
    }

    /// Looks `table` up with `in_port` as the input port (OVS
    /// `rule_dpif_lookup_from_table`): fragments are looked up with the
    /// transport ports zeroed, and the port bits that lookup consulted say
    /// nothing about the packet, so they stay out of the megaflow (every
    /// packet of the megaflow is a fragment of the same kind).
    fn lookup(&mut self, table: TableId, in_port: u32) -> Option<&'a Arc<RuleEntry>> {
        let tables: &'a Tables = self.tables;
        let mut f = self.flow;
        f.in_port = in_port;
        let frag = f.is_ip() && f.nw_frag & FRAG_ANY != 0;
        if frag {
            f.tp_src = 0;
            f.tp_dst = 0;
        }
        let mut lwc = FlowKey::default();
        let r = tables.table(table).lookup(&f, &mut lwc);
        if frag {
            lwc.tp_src = 0;
            lwc.tp_dst = 0;
        }
        self.wc.or_with(&lwc);
        r
    }

    /// `resubmit`/`goto_table`/`output:TABLE` (OVS `xlate_table_action`).
    fn table_action(&mut self, in_port: u32, table: TableId) {
        if self.depth >= MAX_DEPTH || self.resubmits >= MAX_RESUBMITS {
            self.notef(|| format!(">>>> over max translation depth {MAX_DEPTH} <<<<"));
            self.error = Some(DropReason::RecursionLimit);
            return;
        }
        if self.was_mpls {
            // Only `output:TABLE` gets here (resubmit and goto_table
            // freeze first); OVS looks up with the L3 fields unknown too.
            self.note(">> lookup after pop_mpls: L3 fields unknown");
        }
        let old_table = self.table_id;
        self.table_id = table;
        self.indent += 1;
        match self.lookup(table, in_port) {
            Some(e) => {
                self.trace_table(table, Some(e));
                self.rules.push(e.clone());
                self.resubmits += 1;
                let deepens = (table <= old_table) as u32;
                self.depth += deepens;
                let saved = (self.cur_match, self.cur_prio, self.cur_cookie);
                self.exec_rule(e);
                (self.cur_match, self.cur_prio, self.cur_cookie) = saved;
                self.depth -= deepens;
            }
            None => {
                self.trace_table(table, None);
                self.table_miss = true;
            }
        }
        self.indent -= 1;
        self.table_id = old_table;
    }

    /// Runs a rule's instructions in OpenFlow order.
    fn exec_rule(&mut self, e: &Arc<RuleEntry>) {
        self.cur_match = e.rule.matches;
        self.cur_prio = e.rule.priority;
        self.cur_cookie = e.rule.cookie;
        let ins = &e.rule.instructions;
        let mut steps: [Option<Step>; 4] = [None; 4];
        if ins.clear_actions {
            steps[0] = Some(Step::ClearActions);
        }
        if let Some(w) = &ins.write_actions {
            steps[1] = Some(Step::WriteActions(w));
        }
        if let Some((v, m)) = ins.write_metadata {
            steps[2] = Some(Step::WriteMetadata(v, m));
        }
        if let Some(t) = ins.goto_table {
            steps[3] = Some(Step::GotoTable(t));
        }
        let checks_len = ins
            .apply
            .iter()
            .any(|a| matches!(a, OfAction::CheckPktLarger { .. }));
        let tail = checks_len.then(|| steps.iter().flatten().map(|s| s.to_frozen()).collect());
        let saved_tail = std::mem::replace(&mut self.rule_tail, tail);
        let flow = self.do_actions(&ins.apply);
        self.rule_tail = saved_tail;
        if self.exit {
            return;
        }
        if self.freezing {
            self.frozen
                .extend(steps.iter().flatten().map(|s| s.to_frozen()));
            return;
        }
        if flow == Flow::Stop || self.error.is_some() {
            return;
        }
        let steps: Vec<Step> = steps.iter().flatten().copied().collect();
        self.do_steps(&steps);
    }

    /// Runs steps in order; on a freeze, the steps not run yet go into the
    /// frozen state.
    fn do_steps(&mut self, steps: &[Step]) -> Flow {
        for (i, s) in steps.iter().enumerate() {
            if self.error.is_some() || self.exit {
                return Flow::Stop;
            }
            if let Step::Action(OfAction::CheckPktLarger { pkt_len, dst }) = s {
                let rest = steps[i + 1..].iter().map(|s| s.to_frozen()).collect();
                return self.check_pkt_larger(*pkt_len, dst, rest);
            }
            self.check_freeze(*s);
            if self.freezing {
                self.frozen.extend(steps[i..].iter().map(|s| s.to_frozen()));
                return Flow::Stop;
            }
            if self.do_step(*s) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn do_step(&mut self, s: Step) -> Flow {
        match s {
            Step::Action(a) => {
                self.trace_action(a);
                return self.do_action(a);
            }
            Step::ClearActions => {
                self.note("clear_actions");
                self.action_set.clear();
            }
            Step::WriteActions(w) => {
                if self.trace.is_some() {
                    let i = Instructions {
                        write_actions: Some(w.to_vec()),
                        ..Default::default()
                    };
                    let s = format_instructions(&i, &self.cur_match);
                    self.note(&s);
                }
                self.action_set.extend(w.iter().cloned());
            }
            Step::WriteMetadata(v, m) => {
                self.notef(|| format!("write_metadata:{v:#x}/{m:#x}"));
                self.flow.metadata = (self.flow.metadata & !m) | (v & m);
            }
            Step::GotoTable(t) => {
                self.notef(|| format!("goto_table:{t}"));
                self.table_action(self.flow.in_port, t);
            }
        }
        Flow::Continue
    }

    /// Starts freezing when `step` needs headers a `pop_mpls` hid from the
    /// key (OVS `recirc_for_mpls` + `ctx_trigger_freeze`).
    fn check_freeze(&mut self, step: Step) {
        if self.was_mpls && !self.freezing && step.needs_l3() {
            self.freezing = true;
        }
    }

    /// Ends a frozen translation (OVS `finish_freezing`): registers the
    /// state and emits the pending header changes and `recirc(ID)`.
    fn finish_freezing(&mut self) {
        let steps = std::mem::take(&mut self.frozen);
        let action_set = std::mem::take(&mut self.action_set);
        let id = self.freeze_and_commit(steps, action_set);
        self.actions.push(DpAction::Recirc(id));
    }

    /// Emits the header changes made since the last commit as datapath
    /// set actions (OVS `xlate_commit_actions`).
    fn commit_pending(&mut self) {
        commit::commit(
            &self.flow,
            &mut self.base,
            &mut self.wc,
            &mut self.actions,
            &mut self.deep,
        );
    }

    /// Registers a frozen state (the current table and metadata, with
    /// `steps` and `action_set` left to run), emits the pending header
    /// changes, and returns the state's recirculation id (held by this
    /// translation's megaflow).
    fn freeze_and_commit(&mut self, steps: Vec<FrozenStep>, action_set: Vec<OfAction>) -> u32 {
        let mut metadata = [0u64; crate::recirc::META_WORDS];
        metadata.copy_from_slice(&self.flow.words()[DP_WORDS..]);
        let node = self.recirc.freeze(FrozenState {
            table_id: self.table_id,
            steps,
            action_set,
            metadata,
        });
        self.commit_pending();
        let id = node.id();
        self.recircs.push(node);
        id
    }

    /// Resumes the translation frozen under `id` (OVS thaw: the key now
    /// has the headers the pop exposed).
    fn thaw(&mut self, id: u32) {
        let Some(node) = self.recirc.thaw(id) else {
            self.notef(|| format!(">> no recirculation context for recirc_id 0x{id:x}: drop"));
            self.error = Some(DropReason::NoRecircContext);
            return;
        };
        let state = node.state();
        let nmeta = self.flow.words().len() - DP_WORDS;
        self.flow.words_mut()[DP_WORDS..].copy_from_slice(&state.metadata[..nmeta]);
        self.table_id = state.table_id;
        self.action_set = state.action_set.clone();
        self.notef(|| {
            format!(
                "thaw: resume in table {} after recirculation",
                state.table_id
            )
        });
        let steps: Vec<Step> = state.steps.iter().map(Step::from_frozen).collect();
        self.do_steps(&steps);
        drop(steps);
        if self.error.is_none() && !self.freezing && !self.exit {
            self.exec_action_set();
        }
        self.recircs.push(node);
    }

    /// Executes the action set (OVS `ofpacts_execute_action_set` order).
    fn exec_action_set(&mut self) {
        let set = std::mem::take(&mut self.action_set);
        if set.is_empty() {
            return;
        }
        let list = action_set_order(&set);
        if list.is_empty() {
            return;
        }
        self.note_line(String::new());
        self.note_line("--. Executing action set:".into());
        let saved = self.indent;
        let saved_tail = self.rule_tail.take();
        self.indent = 0;
        self.do_actions(&list);
        self.indent = saved;
        self.rule_tail = saved_tail;
    }

    fn do_actions(&mut self, acts: &[OfAction]) -> Flow {
        if acts.is_empty() {
            self.note("drop");
        }
        for (i, a) in acts.iter().enumerate() {
            if self.error.is_some() || self.exit {
                return Flow::Stop;
            }
            if let OfAction::CheckPktLarger { pkt_len, dst } = a {
                self.trace_action(a);
                self.typed_action = true;
                let mut rest: Vec<FrozenStep> = acts[i + 1..]
                    .iter()
                    .map(|a| FrozenStep::Action(a.clone()))
                    .collect();
                rest.extend(self.rule_tail.take().unwrap_or_default());
                return self.check_pkt_larger(*pkt_len, dst, rest);
            }
            self.check_freeze(Step::Action(a));
            if self.freezing {
                self.frozen
                    .extend(acts[i..].iter().map(|a| FrozenStep::Action(a.clone())));
                return Flow::Stop;
            }
            self.trace_action(a);
            if self.do_action(a) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn do_action(&mut self, a: &OfAction) -> Flow {
        if !is_port_action(a) {
            self.typed_action = true;
        }
        match a {
            OfAction::Output(p) => self.output(*p),
            OfAction::Controller => self.output(OutputPort::Controller),
            OfAction::OutputReg(sf) => {
                let port = sf.read(&self.flow);
                sf.field.or_mask(&mut self.wc, sf.mask());
                match port_from_u16(port) {
                    Some(p) => self.output(p),
                    None => self.notef(|| format!(">> output port {port} is out of range")),
                }
            }
            OfAction::SetField { field, value, mask } => self.set_field(*field, *value, *mask),
            OfAction::Load { dst, value } => {
                self.set_field(dst.field, *value << dst.ofs, dst.mask())
            }
            OfAction::Move { src, dst } => self.move_field(src, dst),
            OfAction::DecTtl => return self.dec_ttl(),
            OfAction::DecMplsTtl => return self.dec_mpls_ttl(),
            OfAction::SetMplsTtl(ttl) => {
                if self.flow.is_mpls() {
                    self.wc.mpls_lse[0] |= MPLS_TTL_MASK;
                    self.flow.mpls_lse[0] = (self.flow.mpls_lse[0] & !MPLS_TTL_MASK) | *ttl as u32;
                }
            }
            OfAction::SetNwTtl(ttl) => {
                if self.flow.is_ip() {
                    self.wc.nw_ttl = 0xff;
                    self.flow.nw_ttl = *ttl;
                }
            }
            OfAction::PushVlan(tpid) => self.push_vlan(*tpid),
            OfAction::PopVlan => self.pop_vlan(),
            OfAction::PushMpls(ethertype) => self.push_mpls(*ethertype),
            OfAction::PopMpls(ethertype) => self.pop_mpls(*ethertype),
            OfAction::Clone(acts) => self.clone_actions(acts),
            OfAction::Ct(c) => self.ct_action(c),
            OfAction::CtClear => self.ct_clear(),
            OfAction::Group(g) => self.group_action(*g),
            OfAction::Multipath {
                fields,
                basis,
                algorithm,
                n_links,
                arg,
                dst,
            } => self.multipath(*fields, *basis, *algorithm, *n_links, *arg, dst),
            OfAction::Bundle {
                fields,
                basis,
                algorithm,
                members,
                dst,
            } => self.bundle(*fields, *basis, *algorithm, members, dst.as_ref()),
            OfAction::OutputTrunc { port, max_len } => self.output_trunc(*port, *max_len),
            OfAction::DecTtlIds(_) => return self.dec_ttl(),
            OfAction::Exit => {
                self.exit = true;
                return Flow::Stop;
            }
            // Handled by `do_actions`/`do_steps` (they hand it the rest).
            OfAction::CheckPktLarger { .. } => {}
            OfAction::Learn(l) => self.learn(l),
            // A clause of a conjunctive match is never the rule a lookup
            // returns; OVS does nothing if one runs anyway.
            OfAction::Conjunction { .. } => self.note(" >> executing \"conjunction\" action"),
            // No datapath effect in vportd (no queues, no IPFIX collectors,
            // no FIN-driven rule timeouts).
            OfAction::Note(_)
            | OfAction::SetQueue(_)
            | OfAction::PopQueue
            | OfAction::Sample { .. }
            | OfAction::FinTimeout { .. } => {}
            OfAction::Resubmit { in_port, table } => {
                let port = match in_port {
                    Some(p) if *p != OFPP_IN_PORT => *p,
                    _ => self.flow.in_port,
                };
                let table = table.unwrap_or(self.table_id);
                self.table_action(port, table);
            }
        }
        Flow::Continue
    }

    /// OVS `xlate_learn_action`: the source fields go into the megaflow;
    /// with a learner, the learned rule is installed at once (the next
    /// translation sees it, this one does not) and `result_dst` says
    /// whether it was.
    fn learn(&mut self, l: &Learn) {
        for sf in l.src_fields() {
            sf.field.or_mask(&mut self.wc, sf.mask());
        }
        let Some(learner) = self.learner else {
            self.note(" >> suppressing side effects, so learn action ignored");
            return;
        };
        let rule = l.execute(&self.flow);
        let ok = learner.learn(&rule, l.limit);
        self.notef(|| {
            if ok {
                format!(
                    " >> learned table={}, priority={} {}",
                    rule.table,
                    rule.priority,
                    format_match(&rule.matches)
                )
            } else {
                format!(" >> learn limit {} reached: nothing learned", l.limit)
            }
        });
        self.learned.push((rule, l.limit));
        if let Some(dst) = l.result_dst {
            dst.field.or_mask(&mut self.wc, dst.mask());
            dst.write(&mut self.flow, u128::from(ok));
        }
    }

    /// OVS `xlate_output_action`.
    fn output(&mut self, port: OutputPort) {
        match port {
            OutputPort::Port(p) => {
                if p != self.flow.in_port {
                    self.compose_output(p);
                } else {
                    self.note(" >> skipping output to input port");
                }
            }
            OutputPort::InPort => self.compose_output(self.flow.in_port),
            OutputPort::All => {
                for p in self.ports.ports() {
                    if p != self.flow.in_port {
                        self.compose_output(p);
                    }
                }
            }
            OutputPort::Flood => {
                for p in self.ports.ports() {
                    if p != self.flow.in_port && self.floods_to(p) {
                        self.compose_output(p);
                    }
                }
            }
            OutputPort::Controller => self.controller(),
            OutputPort::Normal => self.normal(),
            OutputPort::Local => self.note(" >> no local port"),
            OutputPort::Table => self.table_action(self.flow.in_port, 0),
        }
    }

    /// OVS `xlate_controller_action` (no pause, default max_len): the
    /// packet goes to the slow path as a packet-in with a frozen state for
    /// its continuation. vportd has no controller connection, so the
    /// handler pool counts it and goes no further; OVS without a connected
    /// controller emits the same `userspace(...controller(...))` action.
    fn controller(&mut self) {
        // OpenFlow 1.3: a packet-in from the table-miss rule (priority 0,
        // match-all) is an explicit table miss.
        let reason = if self.cur_prio == 0 && self.cur_match.mask == FlowKey::default() {
            6
        } else {
            1
        };
        let recirc_id = self.freeze_and_commit(Vec::new(), Vec::new());
        self.actions.push(DpAction::Userspace {
            cookie: UserCookie::Controller {
                reason,
                recirc_id,
                rule_cookie: self.cur_cookie,
                controller_id: 0,
                max_len: 65535,
            },
        });
    }

    fn compose_output(&mut self, port: u32) {
        if !self.ports.contains(port) {
            self.note(" >> Nonexistent output port");
            return;
        }
        if let Some(push) = self.ports.tunnel_output(port, &self.flow, &mut self.wc) {
            match push {
                Ok(a) => {
                    self.commit_pending();
                    self.actions.push(a);
                }
                Err(r) => self.notef(|| format!(" >> tunnel port {port}: {}: not sent", r.name())),
            }
            return;
        }
        self.commit_pending();
        self.actions.push(DpAction::Output(port));
    }

    /// OVS `mf_are_prereqs_ok` with megaflow tracking.
    fn prereq_ok(&mut self, p: Prereq) -> bool {
        match p {
            Prereq::None => return true,
            Prereq::Vlan => self.wc.vlans[0].tci |= VLAN_CFI,
            Prereq::Arp
            | Prereq::Ipv4
            | Prereq::Ipv6
            | Prereq::Ip
            | Prereq::IpOrArp
            | Prereq::Mpls => {}
            Prereq::Tcp
            | Prereq::Udp
            | Prereq::Sctp
            | Prereq::L4
            | Prereq::Icmpv4
            | Prereq::Icmpv6 => self.wc.nw_proto = 0xff,
            Prereq::Nd | Prereq::NdSolicit | Prereq::NdAdvert => {
                self.wc.nw_proto = 0xff;
                self.wc.tp_src |= 0xff;
            }
        }
        p.satisfied(&self.flow, &FlowKey::all_ones())
    }

    fn set_field(&mut self, field: FieldId, value: u128, mask: u128) {
        if !self.prereq_ok(write_prereq(field)) {
            self.notef(|| {
                format!(
                    " >> unmet prerequisites for {}, set_field ignored",
                    field.name()
                )
            });
            return;
        }
        let mask = mask & field.max_value();
        field.or_mask(&mut self.wc, mask);
        field.set_masked(&mut self.flow, value, mask);
        match field {
            // OVS `flow_set_vlan_pcp` also marks the tag present.
            FieldId::VlanPcp => {
                self.flow.vlans[0].tci |= VLAN_CFI;
                self.wc.vlans[0].tci |= VLAN_CFI;
            }
            FieldId::VlanVid | FieldId::VlanTci => self.wc.vlans[0].tci |= VLAN_CFI,
            _ => {}
        }
        if matches!(
            field,
            FieldId::VlanPcp | FieldId::VlanVid | FieldId::VlanTci
        ) && self.flow.vlans[0].tci & VLAN_CFI != 0
            && self.flow.vlans[0].tpid == 0
        {
            self.flow.vlans[0].tpid = ETH_TYPE_VLAN;
        }
    }

    fn move_field(&mut self, src: &SubField, dst: &SubField) {
        if !self.prereq_ok(write_prereq(dst.field)) || !self.prereq_ok(src.field.prereq()) {
            self.note(" >> unmet prerequisites, move ignored");
            return;
        }
        src.field.or_mask(&mut self.wc, src.mask());
        dst.field.or_mask(&mut self.wc, dst.mask());
        let v = src.read(&self.flow);
        dst.write(&mut self.flow, v);
        if dst.field == FieldId::VlanPcp {
            self.flow.vlans[0].tci |= VLAN_CFI;
        }
    }

    /// OVS `compose_dec_ttl`.
    fn dec_ttl(&mut self) -> Flow {
        if !self.flow.is_ip() {
            return Flow::Continue;
        }
        self.wc.nw_ttl = 0xff;
        self.wc.nw_proto = 0xff;
        if self.flow.nw_ttl > 1 {
            self.flow.nw_ttl -= 1;
            Flow::Continue
        } else {
            let v = if self.flow.is_ipv4() { 4 } else { 6 };
            self.notef(|| format!(" >> IPv{v} decrement TTL exception"));
            self.invalid_ttl = true;
            Flow::Stop
        }
    }

    /// OVS `compose_dec_mpls_ttl_action` (also stops on a non-MPLS packet,
    /// as OVS does).
    fn dec_mpls_ttl(&mut self) -> Flow {
        if self.flow.is_mpls() {
            self.wc.mpls_lse[0] |= MPLS_TTL_MASK;
            let ttl = self.flow.mpls_lse[0] & MPLS_TTL_MASK;
            if ttl > 1 {
                self.flow.mpls_lse[0] = (self.flow.mpls_lse[0] & !MPLS_TTL_MASK) | (ttl - 1);
                return Flow::Continue;
            }
        }
        self.note(" >> MPLS decrement TTL exception");
        self.invalid_ttl = true;
        Flow::Stop
    }

    /// OVS `flow_push_vlan_uninit` + new tag VID 0, PCP 0.
    fn push_vlan(&mut self, tpid: u16) {
        let n = count_vlans(&self.flow);
        for i in 0..n {
            self.wc.vlans[i] = VlanTag {
                tpid: 0xffff,
                tci: 0xffff,
            };
        }
        let len = self.flow.vlans.len();
        for i in (1..len).rev() {
            self.flow.vlans[i] = self.flow.vlans[i - 1];
        }
        self.flow.vlans[0] = VlanTag {
            tpid,
            tci: VLAN_CFI,
        };
    }

    /// OVS `flow_pop_vlan`.
    fn pop_vlan(&mut self) {
        let n = count_vlans(&self.flow);
        if n > 1 {
            for i in 1..n {
                self.wc.vlans[i] = VlanTag {
                    tpid: 0xffff,
                    tci: 0xffff,
                };
            }
            for i in 1..n {
                self.flow.vlans[i - 1] = self.flow.vlans[i];
            }
        }
        if n > 0 {
            self.flow.vlans[n - 1] = VlanTag::default();
        }
    }

    /// The flow's label stack (OVS `flow_count_mpls_labels`: the BoS bits
    /// read are un-wildcarded).
    fn flow_mpls(&mut self) -> Vec<Option<u32>> {
        let s = mpls_stack(&self.flow, &self.deep.flow);
        for i in 0..s.len().min(self.wc.mpls_lse.len()) {
            self.wc.mpls_lse[i] |= MPLS_BOS_MASK;
        }
        s
    }

    /// OVS `compose_mpls_push_action` / `flow_push_mpls`.
    fn push_mpls(&mut self, ethertype: u16) {
        let mut stack = self.flow_mpls();
        if stack.is_empty() {
            self.commit_pending();
            let f = &mut self.flow;
            let label: u32 = if f.is_ipv6() { 2 } else { 0 };
            let mut tc = 0u32;
            let mut ttl = 64u32;
            if f.is_ip() {
                tc = ((f.nw_tos & 0xfc) >> 2) as u32;
                self.wc.nw_tos |= 0xfc;
                self.wc.nw_ttl = 0xff;
                if f.nw_ttl != 0 {
                    ttl = f.nw_ttl as u32;
                }
            }
            f.mpls_lse = [0; 2];
            f.mpls_lse[0] = (label << MPLS_LABEL_SHIFT)
                | ((tc << MPLS_TC_SHIFT) & MPLS_TC_MASK)
                | MPLS_BOS_MASK
                | (ttl & MPLS_TTL_MASK);
            // The L3/L4 fields are no longer visible.
            let start = core::mem::offset_of!(FlowKey, nw_src);
            let end = core::mem::offset_of!(FlowKey, metadata);
            bytemuck::bytes_of_mut(f)[start..end].fill(0);
        } else {
            for i in 0..stack.len().min(self.wc.mpls_lse.len()) {
                self.wc.mpls_lse[i] = u32::MAX;
            }
            let top = stack[0].unwrap_or(0) & !MPLS_BOS_MASK;
            stack.insert(0, Some(top));
            set_mpls_stack(&mut self.flow, &mut self.deep.flow, &stack);
        }
        self.flow.dl_type = ethertype;
    }

    /// OVS `flow_pop_mpls`.
    fn pop_mpls(&mut self, ethertype: u16) {
        let mut stack = self.flow_mpls();
        if stack.is_empty() {
            return;
        }
        for i in 1..stack.len().min(self.wc.mpls_lse.len()) {
            self.wc.mpls_lse[i] = u32::MAX;
        }
        stack.remove(0);
        set_mpls_stack(&mut self.flow, &mut self.deep.flow, &stack);
        self.flow.dl_type = ethertype;
        if ethertype != ETH_TYPE_MPLS && ethertype != ETH_TYPE_MPLS_MCAST {
            self.was_mpls = true;
        }
    }

    /// Whether the megaflow must hold the Ethernet type, the fragment bits
    /// of IP and VLAN tag presence even where no lookup consulted them.
    /// OVS always puts them in (`xlate_wc_init`), and much of translation
    /// relies on that (prerequisite checks, commits read `dl_type` freely).
    /// The one exception: a translation whose lookups consulted nothing of
    /// the packet but its in_port, and whose actions only sent it to ports
    /// (`in_port=1 actions=output:2`), forwards every packet of that port
    /// alike, so its megaflow is the port alone, and the PMD forwards that
    /// port's bursts without reading a frame.
    fn pins_packet_type(&self) -> bool {
        if self.typed_action {
            return true;
        }
        let mut rest = self.wc;
        rest.in_port = 0;
        rest.recirc_id = 0;
        rest.dp_words().iter().any(|w| *w != 0)
    }

    /// OVS `xlate_wc_finish` plus the result.
    fn finish(mut self) -> XlateOutput {
        if self.freezing && self.error.is_none() {
            self.finish_freezing();
        }
        let orig = self.orig;
        let pins_type = self.pins_packet_type();
        let wc = &mut self.wc;
        for w in &mut wc.words_mut()[DP_WORDS..] {
            *w = 0;
        }
        if pins_type {
            wc.dl_type = 0xffff;
            if orig.is_ip() {
                wc.nw_frag |= FRAG_ANY | FRAG_LATER;
            }
        }
        if (orig.dl_type == ETH_TYPE_IPV4 && orig.nw_proto == IPPROTO_ICMP)
            || (orig.dl_type == ETH_TYPE_IPV6 && orig.nw_proto == IPPROTO_ICMPV6)
        {
            wc.tp_src &= 0xff;
            wc.tp_dst &= 0xff;
        }
        if orig.is_ip() && orig.nw_frag & FRAG_LATER != 0 {
            wc.tp_src = 0;
            wc.tp_dst = 0;
        }
        if !orig.is_mpls() {
            wc.mpls_lse = [0; 2];
        }
        // Only TCP packets have TCP flags (they are 0 in every other key);
        // the datapath mask of OVS carries them for TCP only.
        if wc.nw_proto == 0xff && !(orig.is_ip() && orig.nw_proto == IPPROTO_TCP) {
            wc.tcp_flags = 0;
        }
        for i in 0..wc.vlans.len() {
            let consulted = wc.vlans[i] != VlanTag::default();
            if orig.vlans[i].tci & VLAN_CFI == 0 {
                wc.vlans[i] = VlanTag::default();
            }
            // Tag presence is part of every megaflow that looks at the
            // packet (OVS gets it from the ODP key's Ethertype).
            if pins_type || consulted {
                wc.vlans[i].tci |= VLAN_CFI;
            }
        }

        let has_output = clone::emits_output(&self.actions);
        let drop_reason = if let Some(e) = self.error {
            self.actions.clear();
            Some(e)
        } else if has_output {
            None
        } else {
            self.actions.clear();
            Some(if self.invalid_ttl {
                DropReason::InvalidTtl
            } else if self.table_miss {
                DropReason::TableMiss
            } else {
                DropReason::Action
            })
        };
        if self.trace.is_some() {
            let final_flow = if self.flow == self.orig {
                "unchanged".to_string()
            } else {
                describe_key(&self.flow)
            };
            let mf = Match {
                value: self.orig.masked(&self.wc),
                mask: self.wc,
            };
            let mf = format_match(&mf);
            let acts = format_actions(&self.actions);
            self.note_line(String::new());
            self.note_line(format!("Final flow: {final_flow}"));
            self.note_line(format!("Megaflow: {mf}"));
            self.note_line(format!("Datapath actions: {acts}"));
        }
        XlateOutput {
            actions: self.actions,
            wc: self.wc,
            rules: self.rules,
            drop_reason,
            final_flow: self.flow,
            trace: self.trace.unwrap_or_default(),
            recircs: self.recircs,
            mac_deps: self.mac_deps,
            groups: self.groups,
            learned: self.learned,
        }
    }
}

/// A port number read from a field (`output:NXM_NX_REG0[]`, `bundle`) as
/// a destination: every 16-bit number but `OFPP_NONE`.
fn port_from_u16(v: u128) -> Option<OutputPort> {
    if v > 0xffff {
        return None;
    }
    let v = v as u32;
    if v == OFPP_NONE {
        return None;
    }
    Some(OutputPort::reserved(v).unwrap_or(OutputPort::Port(v)))
}
