//! The bridge: the OpenFlow pipeline of one switch as the datapath sees it.
//!
//! It holds the current [`Tables`] behind an atomic pointer swap (RCU
//! style: a handler translating a packet keeps the `Arc<Tables>` it
//! loaded, so no packet ever sees a half-applied change) and the set of
//! ports, and implements [`Translator`] for the upcall handlers and the
//! revalidator. Every change bumps the generation, which makes the
//! revalidator re-check installed megaflows.

use crate::mac_learning::MacTable;
use crate::parse::FlowFilter;
use crate::recirc::{RecircNode, RecircRegistry};
use crate::rule::{Instructions, Rule};
use crate::table::{RuleEntry, Tables};
use crate::xlate::{xlate_l2, L2Switch, MacDeps, PortSet, PortVlan, XlateOptions, XlateOutput};
use arc_swap::ArcSwap;
use flowcache::actions::DpAction;
use flowcache::key::{FlowKey, DP_WORDS, KEY_WORDS};
use flowcache::upcall::{Translation, Translator};
use parking_lot::Mutex;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The ports of the bridge: OpenFlow number → name.
#[derive(Clone, Debug, Default)]
pub struct PortMap {
    pub ports: BTreeMap<u32, String>,
}

impl PortSet for PortMap {
    fn contains(&self, port: u32) -> bool {
        self.ports.contains_key(&port)
    }
    fn ports(&self) -> Vec<u32> {
        self.ports.keys().copied().collect()
    }
}

/// The rules behind one megaflow (what [`Translation::rules`] carries),
/// the recirculation ids it uses (held as long as the megaflow is) and
/// what NORMAL read from the MAC table for it.
struct MegaflowRules(
    Vec<Arc<RuleEntry>>,
    #[allow(dead_code)] Vec<Arc<RecircNode>>,
    MacDeps,
);

/// One OpenFlow bridge.
pub struct Bridge {
    tables: ArcSwap<Tables>,
    ports: ArcSwap<PortMap>,
    generation: AtomicU64,
    /// Serialises changes (readers never take it).
    edit: Mutex<()>,
    /// Recirculation ids of frozen translations.
    recirc: RecircRegistry,
    /// NORMAL's MAC learning table (translation only, never the PMDs).
    macs: Mutex<MacTable>,
    /// VLAN settings of the ports (absent: trunk of every VLAN).
    vlans: ArcSwap<BTreeMap<u32, PortVlan>>,
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
            recirc: RecircRegistry::new(),
            macs: Mutex::new(MacTable::new()),
            vlans: ArcSwap::from_pointee(BTreeMap::new()),
        }
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
        self.tables.store(Arc::new(tables));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces every rule at once (`replace-flows`, `--flows`): no packet
    /// sees a half-loaded table.
    pub fn replace_rules(&self, rules: Vec<Rule>) -> Result<(), std::convert::Infallible> {
        let _g = self.edit.lock();
        let groups = self.tables.load().groups().clone();
        self.publish(Tables::from_rules(rules).with_groups(groups));
        Ok(())
    }

    /// Replaces the group table (`--groups`); the rules stay.
    pub fn set_groups(&self, groups: crate::group::GroupTable) {
        let _g = self.edit.lock();
        let t = self.tables.load().with_groups(Arc::new(groups));
        self.publish(t);
    }

    /// Adds rules (`add-flow`, `add-flows`).
    pub fn add_rules(&self, rules: Vec<Rule>) {
        let _g = self.edit.lock();
        let t = self.tables.load().add_all(rules);
        self.publish(t);
    }

    /// Deletes the rules `filter` selects; returns how many.
    pub fn delete_rules(&self, filter: &FlowFilter, strict: bool) -> usize {
        let _g = self.edit.lock();
        let (t, removed) = self.tables.load().delete(filter, strict);
        if !removed.is_empty() {
            self.publish(t);
        }
        removed.len()
    }

    /// Gives the rules `filter` selects new instructions; returns how many.
    pub fn modify_rules(&self, filter: &FlowFilter, strict: bool, ins: &Instructions) -> usize {
        let _g = self.edit.lock();
        let (t, n) = self.tables.load().modify(filter, strict, ins, false);
        if n > 0 {
            self.publish(t);
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
        self.publish(t);
        removed.len()
    }

    /// Adds a port (ALL/FLOOD and output validity depend on the set).
    pub fn add_port(&self, ofport: u32, name: &str) {
        let _g = self.edit.lock();
        let mut p = (**self.ports.load()).clone();
        p.ports.insert(ofport, name.to_string());
        self.ports.store(Arc::new(p));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Removes a port.
    pub fn remove_port(&self, ofport: u32) {
        let _g = self.edit.lock();
        let mut p = (**self.ports.load()).clone();
        p.ports.remove(&ofport);
        self.ports.store(Arc::new(p));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Sets a port's VLAN configuration (`tag=`, `trunks=`, `vlan_mode=`,
    /// `no-flood`).
    pub fn set_port_vlan(&self, ofport: u32, cfg: PortVlan) {
        let _g = self.edit.lock();
        let mut v = (**self.vlans.load()).clone();
        v.insert(ofport, cfg);
        self.vlans.store(Arc::new(v));
        self.generation.fetch_add(1, Ordering::Release);
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
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Removes aged-out MAC entries; returns how many. The megaflows that
    /// forwarded to them are re-checked.
    pub fn expire_macs(&self, now: Instant) -> usize {
        self.macs.lock().expire(now).len()
    }

    /// Translates `flow`; NORMAL learns only when `may_learn`.
    fn xlate(&self, flow: &FlowKey, opts: &XlateOptions, may_learn: bool) -> XlateOutput {
        let tables = self.tables.load();
        let ports = self.ports.load();
        let vlans = self.vlans.load();
        let l2 = L2Switch {
            macs: &self.macs,
            vlans: &vlans,
            may_learn,
            now: Instant::now(),
        };
        xlate_l2(&tables, flow, &**ports, opts, &self.recirc, Some(&l2))
    }

    /// Translates a flow with a trace (`vportctl trace`). Like OVS's
    /// `ofproto/trace` of a flow, it learns nothing.
    pub fn trace(&self, flow: &FlowKey) -> XlateOutput {
        self.xlate(flow, &XlateOptions { trace: true }, false)
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

    fn revalidate(&self, key: &FlowKey) -> Translation {
        self.translation(key, false)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
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
            .is_some_and(|r| !r.2.is_empty() && r.2.stale(&self.macs.lock()))
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
            if packets > 0 && !r.2.learns.is_empty() {
                let mut macs = self.macs.lock();
                let mut evicted = Vec::new();
                for (vlan, mac, port) in &r.2.learns {
                    macs.refresh(*vlan, mac, *port, now, &mut evicted);
                }
            }
        }
    }
}

impl Bridge {
    fn translation(&self, key: &FlowKey, may_learn: bool) -> Translation {
        let out = self.xlate(key, &XlateOptions::default(), may_learn);
        let mut mask = out.wc;
        mask.words_mut()[DP_WORDS..KEY_WORDS].fill(0);
        let now = Instant::now();
        for r in &out.rules {
            r.stats.touch(now);
        }
        let actions: Vec<DpAction> = out.actions;
        Translation {
            actions: actions.into(),
            mask,
            install: !out.mac_deps.unlearned,
            drop_reason: out.drop_reason,
            rules: Some(Arc::new(MegaflowRules(
                out.rules,
                out.recircs,
                out.mac_deps,
            ))),
        }
    }
}
