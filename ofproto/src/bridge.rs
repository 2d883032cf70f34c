//! The bridge: the OpenFlow pipeline of one switch as the datapath sees it.
//!
//! It holds the current [`Tables`] behind an atomic pointer swap (RCU
//! style: a handler translating a packet keeps the `Arc<Tables>` it
//! loaded, so no packet ever sees a half-applied change) and the set of
//! ports, and implements [`Translator`] for the upcall handlers and the
//! revalidator. Every change bumps the generation, which makes the
//! revalidator re-check installed megaflows.

use crate::group::{Group, GroupError, GroupTable};
use crate::mac_learning::MacTable;
use crate::parse::FlowFilter;
use crate::recirc::{RecircNode, RecircRegistry};
use crate::rule::{Instructions, Rule};
use crate::table::{Edit, LearnOutcome, RuleEntry, Tables};
use crate::tunnel::Tunnels;
use crate::xlate::{
    xlate_full, GroupUse, L2Switch, Learner, MacDeps, PortSet, PortVlan, XlateOptions, XlateOutput,
};
use arc_swap::ArcSwap;
use flowcache::actions::{DpAction, DropReason};
use flowcache::key::{FlowKey, DP_WORDS, KEY_WORDS};
use flowcache::upcall::{Translation, Translator};
use parking_lot::Mutex;
use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The ports of the bridge: OpenFlow number → name.
#[derive(Clone, Debug, Default)]
pub struct PortMap {
    pub ports: BTreeMap<u32, String>,
    /// Ports whose link is down or that are admin down (not live).
    pub down: std::collections::BTreeSet<u32>,
}

impl PortSet for PortMap {
    fn contains(&self, port: u32) -> bool {
        self.ports.contains_key(&port)
    }
    fn ports(&self) -> Vec<u32> {
        self.ports.keys().copied().collect()
    }
    fn is_live(&self, port: u32) -> bool {
        self.ports.contains_key(&port) && !self.down.contains(&port)
    }
}

/// A translation, and whether it must not be installed: a tunnel output
/// waited for a neighbour, or the tunnel layer took an ARP packet.
struct TunnelXlate {
    out: XlateOutput,
    no_install: bool,
}

/// The bridge's ports as translation sees them, tunnel ports included:
/// output to one becomes its `tnl_push` (or is not sent, the reason kept
/// in `miss`).
struct TunnelPorts<'a> {
    map: &'a PortMap,
    tunnels: &'a Tunnels,
    miss: Cell<Option<DropReason>>,
}

impl PortSet for TunnelPorts<'_> {
    fn contains(&self, port: u32) -> bool {
        self.map.contains(port)
    }
    fn ports(&self) -> Vec<u32> {
        self.map.ports()
    }
    fn is_live(&self, port: u32) -> bool {
        self.map.is_live(port)
    }
    fn tunnel_output(
        &self,
        port: u32,
        flow: &FlowKey,
        wc: &mut FlowKey,
    ) -> Option<Result<DpAction, DropReason>> {
        let r = self.tunnels.push_action(port, flow, wc)?;
        if let Err(e) = r {
            self.miss.set(Some(e));
        }
        Some(r)
    }
}

/// The rules behind one megaflow (what [`Translation::rules`] carries),
/// the recirculation ids it uses (held as long as the megaflow is), the
/// groups it went through, the rules its `learn` actions learned (learned
/// again whenever the megaflow forwards packets, as OVS's xlate cache does:
/// that keeps them from timing out, and puts an expired one back), and what
/// NORMAL read from the MAC table for it.
struct MegaflowRules(
    Vec<Arc<RuleEntry>>,
    #[allow(dead_code)] Vec<Arc<RecircNode>>,
    Vec<GroupUse>,
    /// The learn actions the translation ran (re-learned on every credit).
    Vec<(Rule, u32)>,
    MacDeps,
);

/// Left-right editing of the tables: rules added one flow mod at a time
/// (ovs-ofctl sends a barrier after each, so each is published alone) must
/// not copy the whole pipeline each time. The tables published before the
/// current ones are kept here; once no reader holds them any more (readers
/// keep a snapshot only while they translate a packet or answer a
/// request), the next edit replays on them what they lack and applies
/// itself there, in place, at the cost of the classifier insertions; they
/// are then published and the displaced tables become the spare. When a
/// reader holds the spare for long, or another kind of edit (replace,
/// delete, modify, groups) published a new pipeline, the edit falls back
/// to a copy of the current tables.
#[derive(Default)]
struct Spare {
    tables: Option<Arc<Tables>>,
    /// The edits the published tables have and `tables` lacks.
    behind: Vec<Edit>,
}

/// How long an edit waits for the readers of the spare tables before it
/// copies the current ones instead.
const SPARE_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// `t` once it is no longer shared, waiting up to [`SPARE_WAIT`].
fn exclusive(mut t: Arc<Tables>) -> Option<Arc<Tables>> {
    let deadline = Instant::now() + SPARE_WAIT;
    loop {
        if Arc::get_mut(&mut t).is_some() {
            return Some(t);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::yield_now();
    }
}

/// One OpenFlow bridge.
pub struct Bridge {
    tables: ArcSwap<Tables>,
    ports: ArcSwap<PortMap>,
    generation: AtomicU64,
    /// Serialises changes (readers never take it).
    edit: Mutex<()>,
    /// OVS fail-open (`--fail-mode standalone` with every controller
    /// gone for long enough): translations use `fail_open_tables` (a
    /// hidden `actions=NORMAL` above every rule) instead of the tables.
    fail_open: std::sync::atomic::AtomicBool,
    fail_open_tables: Tables,
    /// The second copy of the tables for incremental edits (taken under
    /// `edit`); see [`Spare`].
    spare: Mutex<Spare>,
    /// Recirculation ids of frozen translations.
    recirc: RecircRegistry,
    /// NORMAL's MAC learning table (translation only, never the PMDs).
    macs: Mutex<MacTable>,
    /// VLAN settings of the ports (absent: trunk of every VLAN).
    vlans: ArcSwap<BTreeMap<u32, PortVlan>>,
    /// The datapath's connection tracker, told whether some rule uses
    /// `ct` at every table change (the PMDs then order their bursts).
    conntrack: Mutex<Option<Arc<conntrack::Conntrack>>>,
    /// Told of the rules that timed out (the OpenFlow channel's
    /// FLOW_REMOVED) and of the packets of `controller` actions
    /// (PACKET_IN); see [`Bridge::set_hooks`].
    hooks: Mutex<Option<Arc<dyn BridgeHooks>>>,
    /// Called after every generation change (the datapath's revalidator
    /// wakes up on it); see [`Translator::on_rules_changed`].
    changed: Mutex<Option<flowcache::upcall::ChangeHook>>,
    /// Native tunnelling: tunnel ports, underlay, routes, neighbours.
    tunnels: Arc<Tunnels>,
}

/// What the OpenFlow channel hears from the bridge. Both run on control
/// threads (the main loop's expiry, a handler thread), never on a PMD, and
/// must not block.
pub trait BridgeHooks: Send + Sync {
    /// Rules removed because their idle or hard timeout passed.
    fn rules_expired(&self, expired: &[(Arc<RuleEntry>, crate::table::ExpiryReason)]);
    /// The packet of a datapath `userspace(controller(...))` action, with
    /// the frozen translation its recirculation id names (table, metadata
    /// and registers at the `controller` action), if it is still there.
    fn packet_in(
        &self,
        up: &flowcache::upcall::UserspacePacket,
        frozen: Option<&crate::recirc::FrozenState>,
    );
}

impl Default for Bridge {
    fn default() -> Self {
        Self::new()
    }
}

impl Bridge {
    /// An empty bridge: no ports, no rules (every packet is a table miss).
    pub fn new() -> Bridge {
        Bridge {
            tables: ArcSwap::from_pointee(Tables::new()),
            ports: ArcSwap::from_pointee(PortMap::default()),
            generation: AtomicU64::new(0),
            edit: Mutex::new(()),
            spare: Mutex::new(Spare::default()),
            fail_open: std::sync::atomic::AtomicBool::new(false),
            fail_open_tables: Tables::from_rules(vec![Rule {
                priority: 0,
                instructions: Instructions {
                    apply: vec![crate::rule::OfAction::Output(
                        crate::rule::OutputPort::Normal,
                    )],
                    ..Default::default()
                },
                ..Default::default()
            }]),
            recirc: RecircRegistry::new(),
            macs: Mutex::new(MacTable::new()),
            vlans: ArcSwap::from_pointee(BTreeMap::new()),
            conntrack: Mutex::new(None),
            hooks: Mutex::new(None),
            changed: Mutex::new(None),
            tunnels: Arc::new(Tunnels::default()),
        }
    }

    /// A new generation: what translation depends on changed (rules,
    /// ports, liveness). Published before the generation moves, so a
    /// reader that sees the new generation sees the new state.
    fn rules_changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
        if let Some(hook) = &*self.changed.lock() {
            hook();
        }
    }

    /// The tunnel layer (ports, underlay, routes, neighbours).
    pub fn tunnels(&self) -> &Arc<Tunnels> {
        &self.tunnels
    }

    /// Connects the datapath's connection tracker (see the field).
    pub fn attach_conntrack(&self, ct: Arc<conntrack::Conntrack>) {
        ct.set_in_use(self.tables.load().uses_conntrack());
        *self.conntrack.lock() = Some(ct);
    }

    /// The current tables (a snapshot that stays valid while held).
    pub fn tables(&self) -> Arc<Tables> {
        self.tables.load_full()
    }

    /// The current ports.
    pub fn ports(&self) -> Arc<PortMap> {
        self.ports.load_full()
    }

    fn publish(&self, tables: Tables) {
        *self.spare.lock() = Spare::default();
        self.publish_arc(Arc::new(tables));
    }

    /// Publishes `tables`; returns the ones they displace.
    fn publish_arc(&self, tables: Arc<Tables>) -> Arc<Tables> {
        if let Some(ct) = &*self.conntrack.lock() {
            ct.set_in_use(tables.uses_conntrack());
        }
        let old = self.tables.swap(tables);
        self.rules_changed();
        old
    }

    /// Publishes the current tables with `edits` applied, editing the
    /// spare copy in place when it is free (see [`Spare`]).
    fn publish_edits(&self, edits: Vec<Edit>) {
        let mut spare = self.spare.lock();
        let next = match spare.tables.take().and_then(exclusive) {
            Some(mut t) => {
                let tables = Arc::get_mut(&mut t).expect("exclusive() checked");
                tables.edit_in_place(spare.behind.drain(..));
                tables.edit_in_place(edits.iter().cloned());
                t
            }
            None => {
                let mut t = self.tables.load().shallow_copy();
                t.edit_in_place(edits.iter().cloned());
                Arc::new(t)
            }
        };
        let old = self.publish_arc(next);
        *spare = Spare {
            tables: Some(old),
            behind: edits,
        };
    }

    /// Replaces every rule at once (`replace-flows`, `--flows`): no packet
    /// sees a half-loaded table, and rules that did not change keep their
    /// counters.
    pub fn replace_rules(&self, rules: Vec<Rule>) -> Result<(), std::convert::Infallible> {
        let _g = self.edit.lock();
        let t = self.tables.load().replace_all(rules);
        self.publish(t);
        Ok(())
    }

    /// Replaces the group table (`--groups`); the rules stay.
    pub fn set_groups(&self, groups: crate::group::GroupTable) {
        let _g = self.edit.lock();
        let t = self.tables.load().with_groups(Arc::new(groups));
        self.publish(t);
    }

    /// Adds groups (`add-group`, `add-groups`): all or none. Each may name
    /// the groups before it. The megaflows are revalidated.
    pub fn add_groups(&self, groups: Vec<Group>) -> Result<(), GroupError> {
        self.edit_groups(|mut t| {
            for g in groups {
                t = t.add(g)?;
            }
            Ok(t)
        })
    }

    /// Replaces groups by id (`mod-group`): all or none. Megaflows that went
    /// through the old buckets are revalidated.
    pub fn modify_groups(&self, groups: Vec<Group>) -> Result<(), GroupError> {
        self.edit_groups(|mut t| {
            for g in groups {
                t = t.modify(g)?;
            }
            Ok(t)
        })
    }

    fn edit_groups(
        &self,
        f: impl FnOnce(GroupTable) -> Result<GroupTable, GroupError>,
    ) -> Result<(), GroupError> {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        let t = f((**cur.groups()).clone())?;
        self.publish(cur.with_groups(Arc::new(t)));
        Ok(())
    }

    /// Deletes group `id` (every group with `None`), the groups that name
    /// it, and the rules that use any of them (as OVS does). Returns the
    /// group ids and the number of rules removed.
    pub fn delete_groups(&self, id: Option<u32>) -> (Vec<u32>, usize) {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        let (groups, removed) = cur.groups().delete(id);
        if removed.is_empty() {
            return (removed, 0);
        }
        let (t, rules) = cur.remove_where(|r| crate::group::rule_uses_groups(r, &removed));
        self.publish(t.with_groups(Arc::new(groups)));
        (removed, rules.len())
    }

    /// Marks `ofport` live or not (link up and not admin down:
    /// fast_failover watch ports, bundle members). A change revalidates the
    /// megaflows; returns true when it changed.
    pub fn set_port_live(&self, ofport: u32, live: bool) -> bool {
        let _g = self.edit.lock();
        let cur = self.ports.load();
        if cur.down.contains(&ofport) != live {
            return false;
        }
        let mut p = (**cur).clone();
        if live {
            p.down.remove(&ofport);
        } else {
            p.down.insert(ofport);
        }
        self.ports.store(Arc::new(p));
        self.rules_changed();
        true
    }

    /// Adds rules (`add-flow`, `add-flows`). A rule replaced by one
    /// without its `learn(delete_learned)` takes what it learned along.
    pub fn add_rules(&self, rules: Vec<Rule>) {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        let replaced: Vec<Arc<RuleEntry>> = rules.iter().filter_map(|r| cur.identical(r)).collect();
        if replaced
            .iter()
            .any(|e| crate::table::has_delete_learned(&e.rule))
        {
            let t = cur.add_all(rules);
            self.publish(Self::without_learned(t, &replaced));
            return;
        }
        drop((cur, replaced));
        let entries = crate::table::new_entries(rules, Instant::now());
        self.publish_edits(entries.into_iter().map(Edit::Upsert).collect());
    }

    /// Deletes the rules `filter` selects, and what their
    /// `learn(delete_learned)` actions learned; returns how many rules
    /// `filter` selected.
    pub fn delete_rules(&self, filter: &FlowFilter, strict: bool) -> usize {
        self.take_rules(filter, strict).len()
    }

    /// [`Bridge::delete_rules`], returning the rules `filter` selected.
    /// They are removed in place (see [`Spare`]) unless one has a
    /// `learn(delete_learned)`.
    pub fn take_rules(&self, filter: &FlowFilter, strict: bool) -> Vec<Arc<RuleEntry>> {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        let removed = cur.selected(filter, strict);
        if removed.is_empty() {
            return removed;
        }
        if removed
            .iter()
            .any(|e| crate::table::has_delete_learned(&e.rule))
        {
            let (t, removed) = cur.delete(filter, strict);
            self.publish(Self::without_learned(t, &removed));
            return removed;
        }
        drop(cur);
        self.publish_edits(removed.iter().cloned().map(Edit::Remove).collect());
        removed
    }

    /// `tables` after `removed` went: without the rules learned by their
    /// `learn(delete_learned)` actions that no remaining rule has.
    fn without_learned(tables: Tables, removed: &[Arc<RuleEntry>]) -> Tables {
        match tables.flush_learned(removed) {
            Some((t, _)) => t,
            None => tables,
        }
    }

    /// Gives the rules `filter` selects new instructions; returns how many.
    pub fn modify_rules(&self, filter: &FlowFilter, strict: bool, ins: &Instructions) -> usize {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        let (t, n) = cur.modify(filter, strict, ins, false);
        if n > 0 {
            // A learn(delete_learned) the new actions no longer have takes
            // its learned rules with it (OVS learned_cookies_dec).
            let old: Vec<Arc<RuleEntry>> = cur
                .iter()
                .filter(|e| crate::table::filter_selects(filter, &e.rule, strict))
                .cloned()
                .collect();
            self.publish(Self::without_learned(t, &old));
        }
        n
    }

    /// Removes rules whose idle or hard timeout passed; returns how many.
    pub fn expire_rules(&self, now: Instant) -> usize {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        let expired = cur.expired(now);
        if expired.is_empty() {
            return 0;
        }
        let (t, removed) =
            cur.remove_where(|r| expired.iter().any(|(e, _)| std::ptr::eq(&e.rule, r)));
        self.publish(Self::without_learned(t, &removed));
        if let Some(h) = self.hooks.lock().clone() {
            h.rules_expired(&expired);
        }
        removed.len()
    }

    /// Installs the OpenFlow channel's hooks (replacing any).
    pub fn set_hooks(&self, hooks: Option<Arc<dyn BridgeHooks>>) {
        *self.hooks.lock() = hooks;
    }

    /// Hands a `userspace` action's packet to the hooks; false when there
    /// are none (nobody listens: the caller counts and drops it).
    pub fn packet_in(&self, up: &flowcache::upcall::UserspacePacket) -> bool {
        match self.hooks.lock().clone() {
            Some(h) => {
                let node = match up.cookie {
                    flowcache::actions::UserCookie::Controller { recirc_id, .. }
                        if recirc_id != 0 =>
                    {
                        self.recirc.thaw(recirc_id)
                    }
                    _ => None,
                };
                h.packet_in(up, node.as_ref().map(|n| n.state()));
                true
            }
            None => false,
        }
    }

    /// Adds a port (ALL/FLOOD and output validity depend on the set).
    pub fn add_port(&self, ofport: u32, name: &str) {
        let _g = self.edit.lock();
        let mut p = (**self.ports.load()).clone();
        p.ports.insert(ofport, name.to_string());
        self.ports.store(Arc::new(p));
        self.rules_changed();
    }

    /// Removes a port.
    pub fn remove_port(&self, ofport: u32) {
        let _g = self.edit.lock();
        let mut p = (**self.ports.load()).clone();
        p.ports.remove(&ofport);
        p.down.remove(&ofport);
        self.ports.store(Arc::new(p));
        self.rules_changed();
    }

    /// Sets a port's VLAN configuration (`tag=`, `trunks=`, `vlan_mode=`,
    /// `no-flood`).
    pub fn set_port_vlan(&self, ofport: u32, cfg: PortVlan) {
        let _g = self.edit.lock();
        let mut v = (**self.vlans.load()).clone();
        v.insert(ofport, cfg);
        self.vlans.store(Arc::new(v));
        self.rules_changed();
    }

    /// The MAC learning table (for `fdb-show`, `fdb-flush`, settings).
    /// A caller that changes it must call [`Bridge::mac_table_changed`].
    pub fn mac_table(&self) -> &Mutex<MacTable> {
        &self.macs
    }

    /// Makes the revalidator re-check every megaflow after a change of
    /// the MAC table's settings (its aging time changes which entries
    /// lookups see). Changes of entries need no call: the revalidator
    /// re-checks the megaflows that read them (see [`Translator::affected`]).
    pub fn mac_table_changed(&self) {
        self.rules_changed();
    }

    /// Removes aged-out MAC entries; returns how many. The megaflows that
    /// forwarded to them are re-checked.
    pub fn expire_macs(&self, now: Instant) -> usize {
        self.macs.lock().expire(now).len()
    }

    /// Installs a learned rule now (see [`Tables::learn`]): under the edit
    /// lock, published like any other change (which makes the revalidator
    /// re-check the megaflows), except a refresh of an identical rule,
    /// which changes no table.
    fn learn_rule(&self, rule: &Rule, limit: u32) -> bool {
        let _g = self.edit.lock();
        let cur = self.tables.load_full();
        match cur.learn(rule.clone(), limit, Instant::now()) {
            LearnOutcome::Refreshed => true,
            LearnOutcome::Installed(t) => {
                self.publish(t);
                true
            }
            LearnOutcome::LimitReached => false,
        }
    }

    /// Enters (`true`) or leaves fail-open mode: while in it, every packet
    /// is switched by NORMAL whatever the tables say (OVS's hidden
    /// fail-open flow; the tables themselves stay as they are). Returns
    /// true when the mode changed (the megaflows are then revalidated).
    pub fn set_fail_open(&self, on: bool) -> bool {
        let changed = self.fail_open.swap(on, Ordering::AcqRel) != on;
        if changed {
            self.rules_changed();
        }
        changed
    }

    /// True in fail-open mode (see [`Bridge::set_fail_open`]).
    pub fn is_fail_open(&self) -> bool {
        self.fail_open.load(Ordering::Acquire)
    }

    /// Translates `flow`; NORMAL, `learn` and the neighbour cache learn
    /// only when `may_learn`. The tunnel layer comes first: an underlay
    /// port's ARP and tunnel packets are its own, and a decapsulated
    /// packet is translated as received on the tunnel port its metadata
    /// names.
    fn xlate(&self, flow: &FlowKey, opts: &XlateOptions, may_learn: bool) -> TunnelXlate {
        let mut extra = FlowKey::default();
        if let Some(actions) = self.tunnels.underlay_receive(flow, may_learn, &mut extra) {
            let mut out = crate::xlate::XlateOutput::datapath_only(flow, actions, extra);
            if opts.trace {
                out.trace.push(format!(
                    "Flow: {}\n\nunderlay port {}: native tunnelling takes the packet",
                    crate::xlate::describe_key(flow),
                    flow.in_port
                ));
            }
            // ARP for the local address always comes here, so that every
            // one of them teaches the neighbour cache (OVS refreshes the
            // entry from the megaflow's statistics instead).
            return TunnelXlate {
                out,
                no_install: flow.dl_type == flowcache::key::ETH_TYPE_ARP,
            };
        }
        let mut start = *flow;
        if flow.tun_dst != 0 && self.tunnels.is_tunnel(flow.in_port) {
            match self.tunnels.receive_port(flow, &mut extra) {
                Some(p) => start.in_port = p,
                None => {
                    let mut out =
                        crate::xlate::XlateOutput::dropped(flow, DropReason::TunnelNoPort, extra);
                    if opts.trace {
                        out.trace
                            .push("no tunnel port takes the packet's tunnel metadata".into());
                    }
                    return TunnelXlate {
                        out,
                        no_install: false,
                    };
                }
            }
        }
        let tables = if self.is_fail_open() {
            Arc::new(
                self.fail_open_tables
                    .with_groups(self.tables.load().groups().clone()),
            )
        } else {
            self.tables.load_full()
        };
        let ports = self.ports.load();
        let vlans = self.vlans.load();
        let l2 = L2Switch {
            macs: &self.macs,
            vlans: &vlans,
            may_learn,
            now: Instant::now(),
        };
        let learner: Option<&dyn Learner> = if may_learn { Some(self) } else { None };
        let tports = TunnelPorts {
            map: &ports,
            tunnels: &self.tunnels,
            miss: Cell::new(None),
        };
        let mut out = xlate_full(
            &tables,
            &start,
            &tports,
            opts,
            &self.recirc,
            Some(&l2),
            learner,
        );
        for (w, e) in out.wc.words_mut().iter_mut().zip(extra.words()) {
            *w |= e;
        }
        let miss = tports.miss.get();
        if let Some(r) = miss {
            // The copy for the tunnel is counted where it was lost.
            if out.actions.iter().any(DpAction::is_output) {
                out.actions
                    .push(DpAction::Clone(vec![DpAction::Drop(r)].into()));
            } else {
                out.actions = vec![DpAction::Drop(r)];
                out.drop_reason = Some(r);
            }
        }
        TunnelXlate {
            out,
            no_install: miss == Some(DropReason::TunnelNeighMiss),
        }
    }

    /// Translates a flow with a trace (`vportctl trace`). Like OVS's
    /// `ofproto/trace` of a flow, it learns nothing.
    pub fn trace(&self, flow: &FlowKey) -> XlateOutput {
        self.xlate(flow, &XlateOptions { trace: true }, false).out
    }

    /// A recirculation id whose translation runs `actions` from table 0
    /// with zero metadata (OpenFlow PACKET_OUT's action list); the id
    /// lives as long as the node, or the translations holding it.
    pub fn freeze_actions(&self, actions: &[crate::rule::OfAction]) -> Arc<RecircNode> {
        self.recirc.freeze(crate::recirc::FrozenState {
            table_id: 0,
            steps: actions
                .iter()
                .cloned()
                .map(crate::recirc::FrozenStep::Action)
                .collect(),
            action_set: Vec::new(),
            metadata: [0; crate::recirc::META_WORDS],
        })
    }

    /// Recirculation ids in use (held by megaflows and translations).
    pub fn recirc_ids(&self) -> usize {
        self.recirc.len()
    }
}

impl Translator for Bridge {
    fn translate(&self, key: &FlowKey) -> Translation {
        self.translation(key, true)
    }

    fn userspace(&self, up: &flowcache::upcall::UserspacePacket) {
        self.packet_in(up);
    }

    fn revalidate(&self, key: &FlowKey) -> Translation {
        self.translation(key, false)
    }

    /// Rule, port and setting changes, plus the tunnel layer's (a learned
    /// neighbour re-translates the megaflows, see [`Tunnels::version`]).
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire) + self.tunnels.version()
    }

    fn on_rules_changed(&self, hook: flowcache::upcall::ChangeHook) {
        *self.changed.lock() = Some(hook);
    }

    /// The MAC table's version: it changes when an entry is learned,
    /// moves or goes.
    fn state_version(&self) -> u64 {
        self.macs.lock().version()
    }

    /// True when a MAC entry the megaflow's NORMAL looked up changed since
    /// (the precise form of OVS's MAC tags: a learned, moved or removed
    /// MAC re-checks only the megaflows that forwarded to it, or flooded
    /// because it was unknown).
    fn affected(&self, rules: &(dyn Any + Send + Sync)) -> bool {
        rules
            .downcast_ref::<MegaflowRules>()
            .is_some_and(|r| !r.4.is_empty() && r.4.stale(&self.macs.lock()))
    }

    /// Credits the rules, and (OVS `xlate_push_stats` of an `XC_NORMAL`
    /// entry) keeps the sources the megaflow's packets came from learned:
    /// they never reach the slow path again, and must not age out while
    /// they send. A source that moved elsewhere is left there (the stats
    /// may predate the move); the revalidator removes the megaflow (see
    /// [`MacDeps::unlearned`]), so a frame from the old port is learned
    /// again by the slow path.
    fn credit(&self, rules: &(dyn Any + Send + Sync), packets: u64, bytes: u64, _used_ms: u64) {
        if let Some(r) = rules.downcast_ref::<MegaflowRules>() {
            let now = Instant::now();
            for e in &r.0 {
                e.stats.credit(packets, bytes, now);
            }
            let tables = self.tables.load_full();
            // To the group of that id now: a megaflow whose actions
            // survived a `mod-group` keeps counting for the new group (as
            // OVS's revalidator re-translates with a fresh xlate cache).
            for g in &r.2 {
                if let Some(cur) = tables.groups().get(g.group.group.group_id) {
                    cur.credit(g.bucket, packets, bytes);
                }
            }
            // Only while the rules that learned are still there (a deleted
            // learning rule must not bring back what it learned).
            if packets > 0
                && !r.3.is_empty()
                && r.0
                    .iter()
                    .all(|e| tables.table(e.rule.table).contains_entry(e))
            {
                for (rule, limit) in &r.3 {
                    self.learn_rule(rule, *limit);
                }
            }
            if packets > 0 && !r.4.learns.is_empty() {
                let mut macs = self.macs.lock();
                let mut evicted = Vec::new();
                for (vlan, mac, port) in &r.4.learns {
                    macs.refresh(*vlan, mac, *port, now, &mut evicted);
                }
            }
        }
    }
}

impl Learner for Bridge {
    fn learn(&self, rule: &Rule, limit: u32) -> bool {
        self.learn_rule(rule, limit)
    }
}

impl Bridge {
    fn translation(&self, key: &FlowKey, may_learn: bool) -> Translation {
        let before = self.generation();
        let TunnelXlate { out, no_install } = self.xlate(key, &XlateOptions::default(), may_learn);
        let mut mask = out.wc;
        mask.words_mut()[DP_WORDS..KEY_WORDS].fill(0);
        let now = Instant::now();
        for r in &out.rules {
            r.stats.touch(now);
        }
        let actions: Vec<DpAction> = out.actions;
        let state_changed = self.generation() != before;
        Translation {
            actions: actions.into(),
            mask,
            // Until the next hop answers, every packet comes back here
            // (and asks again, rate-limited).
            install: !state_changed && !out.mac_deps.unlearned && !no_install,
            state_changed,
            drop_reason: out.drop_reason,
            rules: Some(Arc::new(MegaflowRules(
                out.rules,
                out.recircs,
                out.groups,
                out.learned,
                out.mac_deps,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::FieldId;
    use crate::rule::{OfAction, OutputPort};
    use crate::table::match_field;

    fn rule(table: u8, prio: u16, port: u32, out: u32) -> Rule {
        Rule {
            table,
            priority: prio,
            matches: match_field(FieldId::InPort, port as u128, 0xffff),
            instructions: Instructions {
                apply: vec![OfAction::Output(OutputPort::Port(out))],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn listing(t: &Tables) -> Vec<String> {
        t.iter().map(|e| format!("{:?}", e.rule)).collect()
    }

    /// Rules added one at a time (the left-right spare edited in place, or
    /// copied while a reader holds it) give the same tables and lookups as
    /// the same rules loaded at once.
    #[test]
    fn one_at_a_time_adds_equal_a_bulk_load() {
        let b = Bridge::new();
        let mut all = Vec::new();
        let mut held = Vec::new();
        for i in 0..300u32 {
            // Some replace an earlier rule (same match and priority).
            let mut r = rule((i % 3) as u8, (i % 7) as u16, i % 120, i);
            if i % 2 == 1 {
                // Some with an IPv4 prefix too: the tries see removals.
                r.matches.set_field(FieldId::DlType, 0x0800, 0xffff);
                let plen = 8 + (i % 25);
                let mask = (u32::MAX << (32 - plen)) as u128;
                r.matches
                    .set_field(FieldId::NwDst, ((i as u128) << 20) & mask, mask);
            }
            all.push(r.clone());
            b.add_rules(vec![r]);
            if i % 50 == 0 {
                // A long-lived reader: the next edits cannot use the spare.
                held.push(b.tables());
            }
            if i % 5 == 4 {
                // A strict delete of one earlier rule, in place.
                let victim = all.remove((i as usize * 7) % all.len());
                b.delete_rules(
                    &FlowFilter {
                        matches: victim.matches,
                        table: Some(victim.table),
                        priority: Some(victim.priority),
                        cookie: None,
                        out_port: None,
                    },
                    true,
                );
                all.retain(|r| {
                    !(r.table == victim.table
                        && r.priority == victim.priority
                        && r.matches == victim.matches)
                });
            }
            if i % 97 == 0 {
                // Another kind of edit resets the spare.
                b.delete_rules(
                    &FlowFilter {
                        matches: crate::rule::Match::catchall(),
                        table: Some(2),
                        priority: None,
                        cookie: None,
                        out_port: None,
                    },
                    false,
                );
                all.retain(|r| r.table != 2);
            }
        }
        let want = Tables::from_rules(all);
        let got = b.tables();
        assert_eq!(listing(&got), listing(&want));
        for port in 0..130u32 {
            let mut flow = FlowKey {
                in_port: port,
                ..Default::default()
            };
            FieldId::DlType.set(&mut flow, 0x0800);
            FieldId::NwDst.set(&mut flow, ((port as u128) << 20) | 0x1234);
            for t in 0..3u8 {
                let (mut w1, mut w2) = (FlowKey::default(), FlowKey::default());
                let a = got.table(t).lookup(&flow, &mut w1).map(|e| e.rule.clone());
                let b = want.table(t).lookup(&flow, &mut w2).map(|e| e.rule.clone());
                assert_eq!(a, b, "table {t} port {port}");
                assert_eq!(w1, w2);
            }
        }
        drop(held);
    }
}
