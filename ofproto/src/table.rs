//! The OpenFlow pipeline state: tables 0..=254, each a [`Classifier`] of
//! rules with shared statistics.
//!
//! [`Tables`] is immutable once built: the daemon publishes a whole new
//! `Arc<Tables>` on every change (`replace-flows` builds one from scratch
//! with [`Tables::from_rules`]; `add`/`delete`/`modify` build one from the
//! old one, sharing every untouched table and the statistics of every rule
//! that survives). Each rule's statistics live in an `Arc<RuleStats>` so the
//! datapath can credit megaflow hits back to the rules a translation used.

use crate::classifier::{key_hash, Classifier, ClassifierConfig, ClsEntry, Conj};
use crate::fields::FieldId;
use crate::parse::FlowFilter;
use crate::rule::{Instructions, Match, OfAction, OutputPort, Rule, TableId, MAX_TABLE};
use flowcache::key::FlowKey;
use hashbrown::HashTable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Number of OpenFlow tables.
pub const N_TABLES: usize = MAX_TABLE as usize + 1;

/// Packet/byte counters and timestamps of one rule, shared between the
/// tables (for dump-flows), the translation results and the megaflows built
/// from them.
#[derive(Debug)]
pub struct RuleStats {
    n_packets: AtomicU64,
    n_bytes: AtomicU64,
    created: Instant,
    /// Nanoseconds after `created` of the last use; `u64::MAX` = never.
    last_used_ns: AtomicU64,
    /// Nanoseconds after `created` of the last modification (a `learn`
    /// of the same rule): the hard timeout runs from it (OVS
    /// `rule->modified`).
    modified_ns: AtomicU64,
}

impl RuleStats {
    /// Fresh counters, created now.
    pub fn new() -> Self {
        Self::created_at(Instant::now())
    }

    /// Fresh counters with a given creation time.
    pub fn created_at(created: Instant) -> Self {
        RuleStats {
            n_packets: AtomicU64::new(0),
            n_bytes: AtomicU64::new(0),
            created,
            last_used_ns: AtomicU64::new(u64::MAX),
            modified_ns: AtomicU64::new(0),
        }
    }

    /// Records a modification at `now` (restarts the hard timeout).
    pub fn set_modified(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.created).as_nanos() as u64;
        self.modified_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// When the rule was last modified (its creation time if never).
    pub fn modified(&self) -> Instant {
        self.created + Duration::from_nanos(self.modified_ns.load(Ordering::Relaxed))
    }

    /// Adds `packets`/`bytes` used at `now`.
    pub fn credit(&self, packets: u64, bytes: u64, now: Instant) {
        self.n_packets.fetch_add(packets, Ordering::Relaxed);
        self.n_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.touch(now);
    }

    /// Records a use at `now` without counting packets.
    pub fn touch(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.created).as_nanos() as u64;
        let mut cur = self.last_used_ns.load(Ordering::Relaxed);
        while cur == u64::MAX || cur < ns {
            match self.last_used_ns.compare_exchange_weak(
                cur,
                ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
    }

    pub fn n_packets(&self) -> u64 {
        self.n_packets.load(Ordering::Relaxed)
    }

    pub fn n_bytes(&self) -> u64 {
        self.n_bytes.load(Ordering::Relaxed)
    }

    pub fn created(&self) -> Instant {
        self.created
    }

    /// When the rule was last used (its creation time if never).
    pub fn last_used(&self) -> Instant {
        match self.last_used_ns.load(Ordering::Relaxed) {
            u64::MAX => self.created,
            ns => self.created + Duration::from_nanos(ns),
        }
    }
}

impl Default for RuleStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a rule timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryReason {
    Idle,
    Hard,
}

/// A rule in a table, with its statistics.
#[derive(Debug)]
pub struct RuleEntry {
    pub rule: Rule,
    pub stats: Arc<RuleStats>,
}

impl RuleEntry {
    /// A new entry with fresh statistics.
    pub fn new(rule: Rule) -> Self {
        RuleEntry {
            rule,
            stats: Arc::new(RuleStats::new()),
        }
    }

    /// Whether the rule's idle or hard timeout has passed at `now` (hard
    /// first, as OVS checks it).
    pub fn expired(&self, now: Instant) -> Option<ExpiryReason> {
        let r = &self.rule;
        if r.hard_timeout != 0
            && now.saturating_duration_since(self.stats.modified())
                >= Duration::from_secs(r.hard_timeout as u64)
        {
            return Some(ExpiryReason::Hard);
        }
        if r.idle_timeout != 0
            && now.saturating_duration_since(self.stats.last_used())
                >= Duration::from_secs(r.idle_timeout as u64)
        {
            return Some(ExpiryReason::Idle);
        }
        None
    }
}

/// What makes two rules of a table the same flow entry: priority, mask and
/// masked value.
/// What makes two rules of a table the same rule (OpenFlow: match and
/// priority), hashed: the index keeps only entry numbers.
fn ident_hash(r: &Rule) -> u64 {
    let m = &r.matches;
    key_hash(&m.value.masked(&m.mask)) ^ key_hash(&m.mask).rotate_left(17) ^ u64::from(r.priority)
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    let (ma, mb) = (&a.matches, &b.matches);
    a.priority == b.priority
        && ma.mask == mb.mask
        && ma.value.masked(&ma.mask) == mb.value.masked(&mb.mask)
}

fn uses_ct(e: &RuleEntry) -> bool {
    e.rule.instructions.uses_conntrack()
}

/// The classifier entry of a rule: a rule whose actions are
/// `conjunction(...)` is a clause of those conjunctive matches.
fn cls_entry(e: Arc<RuleEntry>) -> ClsEntry<Arc<RuleEntry>> {
    let conj = e
        .rule
        .instructions
        .apply
        .iter()
        .filter_map(|a| match a {
            OfAction::Conjunction {
                id,
                clause,
                n_clauses,
            } => Some(Conj {
                id: *id,
                clause: clause - 1,
                n_clauses: *n_clauses,
            }),
            _ => None,
        })
        .collect();
    ClsEntry {
        matches: e.rule.matches,
        priority: e.rule.priority,
        data: e,
        conj,
    }
}

/// One in-place change of [`Tables::edit_in_place`].
#[derive(Clone, Debug)]
pub enum Edit {
    /// Add, or replace the rule with the same table, match and priority.
    Upsert(Arc<RuleEntry>),
    /// Remove the rule with this entry's table, match and priority.
    Remove(Arc<RuleEntry>),
}

/// What a `learn` did to the tables (OVS `ofproto_flow_mod_learn`).
#[derive(Debug)]
pub enum LearnOutcome {
    /// An identical rule was there: its hard timeout restarts.
    Refreshed,
    /// The rule was added (or replaced one with the same match and
    /// priority): the new tables.
    Installed(Tables),
    /// `limit=` rules with the learned cookie are in the table already.
    LimitReached,
}

/// One OpenFlow table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    id: TableId,
    cls: Classifier<Arc<RuleEntry>>,
    /// Entry index of every rule in `cls`, by [`ident_hash`].
    index: HashTable<(u64, usize)>,
    /// Number of rules that use `ct` or `ct_clear`.
    n_conntrack: usize,
}

impl Table {
    fn build(id: TableId, rules: Vec<Arc<RuleEntry>>, config: &ClassifierConfig) -> Table {
        let mut t = Table {
            id,
            cls: Classifier::new(config),
            index: HashTable::new(),
            n_conntrack: 0,
        };
        let entries: Vec<_> = rules.into_iter().map(cls_entry).collect();
        for (i, e) in entries.iter().enumerate() {
            let rule = &e.data.rule;
            let hash = ident_hash(rule);
            match t.index.find_mut(hash, |(h, j)| {
                *h == hash && same_rule(&entries[*j].data.rule, rule)
            }) {
                Some((_, j)) => *j = i,
                None => {
                    t.index.insert_unique(hash, (hash, i), |(h, _)| *h);
                }
            }
        }
        t.cls = Classifier::build(entries, config);
        t.n_conntrack = t.rules().filter(|e| uses_ct(e)).count();
        t
    }

    /// Adds or replaces (identical match and priority) a rule in place;
    /// call `self.cls.sort()` afterwards.
    fn upsert(&mut self, entry: Arc<RuleEntry>) {
        let hash = ident_hash(&entry.rule);
        self.n_conntrack += usize::from(uses_ct(&entry));
        match self.position(&entry.rule) {
            Some(i) => {
                self.n_conntrack -= usize::from(uses_ct(&self.cls.entries()[i].data));
                self.cls.replace_entry(i, cls_entry(entry))
            }
            None => {
                let i = self.cls.insert_deferred(cls_entry(entry));
                self.index.insert_unique(hash, (hash, i), |(h, _)| *h);
            }
        }
    }

    /// Removes the rule with `rule`'s match and priority; returns it.
    /// Call `self.cls.sort()` afterwards.
    fn remove(&mut self, rule: &Rule) -> Option<Arc<RuleEntry>> {
        let hash = ident_hash(rule);
        let entries = self.cls.entries();
        let occ = self
            .index
            .find_entry(hash, |(h, j)| {
                *h == hash && same_rule(&entries[*j].data.rule, rule)
            })
            .ok()?;
        let ((_, i), _) = occ.remove();
        let e = self.cls.entries()[i].data.clone();
        self.cls.remove(i);
        self.n_conntrack -= usize::from(uses_ct(&e));
        Some(e)
    }

    /// The entry with `rule`'s match and priority, if any.
    fn entry_like(&self, rule: &Rule) -> Option<&Arc<RuleEntry>> {
        self.position(rule).map(|i| &self.cls.entries()[i].data)
    }

    /// True when `entry` itself (not a copy) is in the table.
    pub fn contains_entry(&self, entry: &Arc<RuleEntry>) -> bool {
        self.position(&entry.rule)
            .is_some_and(|i| Arc::ptr_eq(&self.cls.entries()[i].data, entry))
    }

    /// The entry index of the rule with `rule`'s match and priority.
    fn position(&self, rule: &Rule) -> Option<usize> {
        let hash = ident_hash(rule);
        let entries = self.cls.entries();
        self.index
            .find(hash, |(h, j)| {
                *h == hash && same_rule(&entries[*j].data.rule, rule)
            })
            .map(|(_, j)| *j)
    }

    /// The table number.
    pub fn id(&self) -> TableId {
        self.id
    }

    /// The highest-priority rule matching `flow`; ORs into `wc` the bits of
    /// `flow` the lookup consulted (see [`crate::classifier`]).
    pub fn lookup(&self, flow: &FlowKey, wc: &mut FlowKey) -> Option<&Arc<RuleEntry>> {
        self.cls.lookup(flow, wc).map(|e| &e.data)
    }

    /// Lookup without wildcard tracking.
    pub fn lookup_exact(&self, flow: &FlowKey) -> Option<&Arc<RuleEntry>> {
        self.cls.lookup_exact(flow).map(|e| &e.data)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.cls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cls.is_empty()
    }

    /// Number of distinct match masks (classifier subtables).
    pub fn n_subtables(&self) -> usize {
        self.cls.n_subtables()
    }

    /// Rules in insertion order.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<RuleEntry>> {
        self.cls.live().map(|e| &e.data)
    }

    /// Rules by priority (highest first), ties in insertion order.
    pub fn rules_by_priority(&self) -> Vec<&Arc<RuleEntry>> {
        let mut v: Vec<&Arc<RuleEntry>> = self.rules().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.rule.priority));
        v
    }
}

/// The whole pipeline: 255 tables.
#[derive(Debug)]
pub struct Tables {
    tables: Vec<Arc<Table>>,
    config: ClassifierConfig,
    /// The group table (published with the rules).
    groups: Arc<crate::group::GroupTable>,
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

/// True when a rule's match is at least as specific as `m` (OpenFlow
/// non-strict matching for modify/delete).
fn covers(m: &Match, rule: &Match) -> bool {
    let extra = m.mask.masked(&invert(&rule.mask));
    extra.is_zero() && rule.value.matches(&m.value, &m.mask)
}

fn invert(k: &FlowKey) -> FlowKey {
    let mut out = *k;
    out.words_mut().iter_mut().for_each(|w| *w = !*w);
    out
}

fn action_outputs_to(a: &OfAction, port: &OutputPort) -> bool {
    match a {
        OfAction::Output(p) => p == port,
        OfAction::OutputReg(_) => false,
        _ => false,
    }
}

/// True when the rule has an output to `port` (OpenFlow `out_port`
/// filtering looks at apply-actions and write-actions).
pub fn rule_outputs_to(rule: &Rule, port: &OutputPort) -> bool {
    rule.instructions
        .apply
        .iter()
        .any(|a| action_outputs_to(a, port))
        || rule
            .instructions
            .write_actions
            .as_ref()
            .is_some_and(|w| w.iter().any(|a| action_outputs_to(a, port)))
}

/// True when `entry` is selected by `filter` (`strict`: same match and
/// priority; otherwise the rule's match is at least as specific as the
/// filter's and the priority, if given, is equal).
pub fn filter_selects(filter: &FlowFilter, rule: &Rule, strict: bool) -> bool {
    if let Some(t) = filter.table {
        if rule.table != t {
            return false;
        }
    }
    if strict {
        if rule.priority != filter.priority.unwrap_or(32768) {
            return false;
        }
        let m = &filter.matches;
        if rule.matches.mask != m.mask
            || rule.matches.value.masked(&m.mask) != m.value.masked(&m.mask)
        {
            return false;
        }
    } else {
        if let Some(p) = filter.priority {
            if rule.priority != p {
                return false;
            }
        }
        if !covers(&filter.matches, &rule.matches) {
            return false;
        }
    }
    if let Some((c, m)) = filter.cookie {
        if (rule.cookie ^ c) & m != 0 {
            return false;
        }
    }
    if let Some(p) = &filter.out_port {
        if !rule_outputs_to(rule, p) {
            return false;
        }
    }
    true
}

impl Tables {
    /// An empty pipeline (every table misses).
    pub fn new() -> Tables {
        Self::with_config(ClassifierConfig::default())
    }

    /// An empty pipeline with a classifier configuration.
    pub fn with_config(config: ClassifierConfig) -> Tables {
        Tables {
            tables: (0..N_TABLES)
                .map(|i| {
                    Arc::new(Table {
                        id: i as TableId,
                        ..Default::default()
                    })
                })
                .collect(),
            config,
            groups: Arc::default(),
        }
    }

    /// The group table.
    pub fn groups(&self) -> &Arc<crate::group::GroupTable> {
        &self.groups
    }

    /// A copy sharing every table with this one (copy-on-write).
    pub fn shallow_copy(&self) -> Tables {
        self.with_groups(self.groups.clone())
    }

    /// The same rules with `groups` as the group table.
    pub fn with_groups(&self, groups: Arc<crate::group::GroupTable>) -> Tables {
        Tables {
            tables: self.tables.clone(),
            config: self.config.clone(),
            groups,
        }
    }

    /// A pipeline holding `rules` (added in order; a rule identical in
    /// table, match and priority to an earlier one replaces it).
    pub fn from_rules(rules: Vec<Rule>) -> Tables {
        Self::from_rules_with_config(rules, ClassifierConfig::default())
    }

    /// [`Tables::from_rules`] with a classifier configuration.
    pub fn from_rules_with_config(rules: Vec<Rule>, config: ClassifierConfig) -> Tables {
        Tables::with_config(config).add_all(rules)
    }

    /// The classifier configuration.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Table `id`.
    pub fn table(&self, id: TableId) -> &Table {
        &self.tables[id as usize]
    }

    /// Total number of rules.
    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every rule, by table then priority (highest first), as
    /// `dump-flows` lists them.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RuleEntry>> {
        self.tables.iter().flat_map(|t| t.rules_by_priority())
    }

    /// True when some rule uses `ct` or `ct_clear`.
    pub fn uses_conntrack(&self) -> bool {
        self.tables.iter().any(|t| t.n_conntrack > 0)
    }

    fn rebuild(&self, changed: Vec<(TableId, Vec<Arc<RuleEntry>>)>) -> Tables {
        let mut tables = self.tables.clone();
        for (id, rules) in changed {
            tables[id as usize] = Arc::new(Table::build(id, rules, &self.config));
        }
        Tables {
            tables,
            config: self.config.clone(),
            groups: self.groups.clone(),
        }
    }

    /// A new pipeline with `rule` added (replacing an identical rule, whose
    /// statistics are dropped, as OpenFlow `add` without `reset_counts`
    /// keeps none in OVS either).
    pub fn add(&self, rule: Rule) -> Tables {
        self.add_all(vec![rule])
    }

    /// A new pipeline with `rules` added in order.
    pub fn add_all(&self, rules: Vec<Rule>) -> Tables {
        self.add_entries(self.tables.clone(), new_entries(rules, Instant::now()))
    }

    /// A pipeline holding exactly `rules` (`replace-flows`). A rule equal
    /// in every respect to one of `self` keeps that entry, with its
    /// counters, age and the megaflows that credit it, as `ovs-ofctl
    /// replace-flows` leaves unchanged flows alone; every other rule is new.
    pub fn replace_all(&self, rules: Vec<Rule>) -> Tables {
        let now = Instant::now();
        let entries: Vec<Arc<RuleEntry>> = rules
            .into_iter()
            .map(|rule| {
                let old = self.tables[rule.table as usize].entry_like(&rule);
                match old {
                    Some(e) if e.rule == rule => e.clone(),
                    _ => Arc::new(RuleEntry {
                        rule,
                        stats: Arc::new(RuleStats::created_at(now)),
                    }),
                }
            })
            .collect();
        let empty = Tables::with_config(self.config.clone());
        self.add_entries(empty.tables, entries)
    }

    /// `tables` with `entries` upserted in order, and this pipeline's
    /// configuration and groups.
    fn add_entries(
        &self,
        tables: Vec<Arc<Table>>,
        entries: impl IntoIterator<Item = Arc<RuleEntry>>,
    ) -> Tables {
        let mut t = Tables {
            tables,
            config: self.config.clone(),
            groups: self.groups.clone(),
        };
        t.upsert_in_place(entries);
        t
    }

    /// Upserts `entries` in order into this pipeline itself (a rule
    /// identical in table, match and priority to one there replaces it).
    pub fn upsert_in_place(&mut self, entries: impl IntoIterator<Item = Arc<RuleEntry>>) {
        self.edit_in_place(entries.into_iter().map(Edit::Upsert));
    }

    /// Applies `edits` in order to this pipeline itself. The cost is that
    /// of the classifier insertions and removals: a table this pipeline
    /// shares with another (copy-on-write) is copied first, once, and a
    /// table with more removed entries than rules is rebuilt.
    pub fn edit_in_place(&mut self, edits: impl IntoIterator<Item = Edit>) {
        let mut touched = [false; N_TABLES];
        for edit in edits {
            let (Edit::Upsert(e) | Edit::Remove(e)) = &edit;
            let t = e.rule.table as usize;
            touched[t] = true;
            let table = Arc::make_mut(&mut self.tables[t]);
            match edit {
                Edit::Upsert(e) => table.upsert(e),
                Edit::Remove(e) => {
                    table.remove(&e.rule);
                    if table.cls.wants_rebuild() {
                        *table =
                            Table::build(table.id, table.rules().cloned().collect(), &self.config);
                    }
                }
            }
        }
        for (t, touched) in self.tables.iter_mut().zip(touched) {
            if touched {
                Arc::make_mut(t).cls.sort();
            }
        }
    }

    /// The rules `filter` selects (strict with a priority: found by match
    /// and priority, without a scan).
    pub fn selected(&self, filter: &FlowFilter, strict: bool) -> Vec<Arc<RuleEntry>> {
        if !strict {
            return self
                .iter()
                .filter(|e| filter_selects(filter, &e.rule, false))
                .cloned()
                .collect();
        }
        let ids: Vec<TableId> = match filter.table {
            Some(t) => vec![t],
            None => (0..N_TABLES).map(|t| t as TableId).collect(),
        };
        ids.into_iter()
            .filter_map(|table| {
                let probe = Rule {
                    table,
                    priority: filter.priority.unwrap_or(32768),
                    matches: filter.matches,
                    ..Default::default()
                };
                self.identical(&probe)
            })
            .filter(|e| filter_selects(filter, &e.rule, true))
            .collect()
    }

    /// A new pipeline without the rules `filter` selects; also returns the
    /// removed rules.
    pub fn delete(&self, filter: &FlowFilter, strict: bool) -> (Tables, Vec<Arc<RuleEntry>>) {
        self.remove_where(|r| filter_selects(filter, r, strict))
    }

    /// A new pipeline without the rules for which `pred` is true (e.g.
    /// expired ones); also returns the removed rules.
    pub fn remove_where(
        &self,
        mut pred: impl FnMut(&Rule) -> bool,
    ) -> (Tables, Vec<Arc<RuleEntry>>) {
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for t in &self.tables {
            if t.is_empty() {
                continue;
            }
            let (gone, keep): (Vec<_>, Vec<_>) = t.rules().cloned().partition(|e| pred(&e.rule));
            if !gone.is_empty() {
                removed.extend(gone);
                changed.push((t.id, keep));
            }
        }
        (self.rebuild(changed), removed)
    }

    /// A new pipeline where the rules `filter` selects get `instructions`
    /// (OpenFlow modify: match, priority, cookie and timeouts are kept;
    /// statistics too unless `reset_counts`). Returns the number modified.
    pub fn modify(
        &self,
        filter: &FlowFilter,
        strict: bool,
        instructions: &Instructions,
        reset_counts: bool,
    ) -> (Tables, usize) {
        let mut n = 0;
        let mut changed = Vec::new();
        for t in &self.tables {
            if t.is_empty() {
                continue;
            }
            let mut any = false;
            let list: Vec<Arc<RuleEntry>> = t
                .rules()
                .map(|e| {
                    if filter_selects(filter, &e.rule, strict) {
                        any = true;
                        n += 1;
                        let mut rule = e.rule.clone();
                        rule.instructions = instructions.clone();
                        Arc::new(RuleEntry {
                            rule,
                            stats: if reset_counts {
                                Arc::new(RuleStats::new())
                            } else {
                                e.stats.clone()
                            },
                        })
                    } else {
                        e.clone()
                    }
                })
                .collect();
            if any {
                changed.push((t.id, list));
            }
        }
        (self.rebuild(changed), n)
    }

    /// The rule with `rule`'s table, match and priority, if any.
    pub fn identical(&self, rule: &Rule) -> Option<Arc<RuleEntry>> {
        let t = self.table(rule.table);
        t.position(rule).map(|i| t.cls.entries()[i].data.clone())
    }

    /// OVS `ofproto_flow_mod_learn` of `rule` (a MODIFY_STRICT flow mod):
    /// an identical rule (match, priority, timeouts, cookie, actions) is
    /// refreshed; otherwise, unless `limit` rules with the rule's cookie
    /// are in its table already, the rule is added, replacing one with the
    /// same match and priority (whose statistics it keeps).
    pub fn learn(&self, rule: Rule, limit: u32, now: Instant) -> LearnOutcome {
        let t = self.table(rule.table);
        let old = self.identical(&rule);
        if let Some(e) = &old {
            let r = &e.rule;
            if r.idle_timeout == rule.idle_timeout
                && r.hard_timeout == rule.hard_timeout
                && r.cookie == rule.cookie
                && r.instructions == rule.instructions
            {
                e.stats.set_modified(now);
                return LearnOutcome::Refreshed;
            }
        }
        if limit != 0 {
            let n = t.rules().filter(|e| e.rule.cookie == rule.cookie).count();
            if n >= limit as usize {
                return LearnOutcome::LimitReached;
            }
        }
        let table = rule.table as usize;
        let entry = Arc::new(RuleEntry {
            rule,
            stats: match old {
                Some(e) => {
                    e.stats.set_modified(now);
                    e.stats.clone()
                }
                None => Arc::new(RuleStats::created_at(now)),
            },
        });
        let mut tables = self.tables.clone();
        let mut copy = (*tables[table]).clone();
        copy.upsert(entry);
        copy.cls.sort();
        tables[table] = Arc::new(copy);
        LearnOutcome::Installed(Tables {
            tables,
            config: self.config.clone(),
            groups: self.groups.clone(),
        })
    }

    /// OVS `learned_cookies_flush`: after `removed` left the tables (or
    /// lost their actions), the rules learned by a `learn(delete_learned)`
    /// of theirs go too, i.e. every rule of the learn's table with its
    /// cookie, unless a remaining rule still has such a learn. Returns the
    /// new tables and how many learned rules went, or `None` if none did.
    pub fn flush_learned(&self, removed: &[Arc<RuleEntry>]) -> Option<(Tables, usize)> {
        let mut cookies: Vec<(TableId, u64)> = removed
            .iter()
            .flat_map(|e| delete_learned_of(&e.rule))
            .collect();
        if cookies.is_empty() {
            return None;
        }
        cookies.sort_unstable();
        cookies.dedup();
        let still: Vec<(TableId, u64)> = self
            .tables
            .iter()
            .flat_map(|t| t.rules())
            .flat_map(|e| delete_learned_of(&e.rule))
            .collect();
        cookies.retain(|c| !still.contains(c));
        if cookies.is_empty() {
            return None;
        }
        let (t, gone) = self.remove_where(|r| cookies.contains(&(r.table, r.cookie)));
        let n = gone.len();
        (n > 0).then_some((t, n))
    }

    /// The rules whose timeout has passed at `now`.
    pub fn expired(&self, now: Instant) -> Vec<(Arc<RuleEntry>, ExpiryReason)> {
        self.tables
            .iter()
            .flat_map(|t| t.rules())
            .filter_map(|e| e.expired(now).map(|r| (e.clone(), r)))
            .collect()
    }
}

/// Entries with fresh statistics created at `now` for `rules`.
pub fn new_entries(rules: Vec<Rule>, now: Instant) -> Vec<Arc<RuleEntry>> {
    rules
        .into_iter()
        .map(|rule| {
            Arc::new(RuleEntry {
                rule,
                stats: Arc::new(RuleStats::created_at(now)),
            })
        })
        .collect()
}

/// True when some `learn(delete_learned)` of `rule` would take its learned
/// rules along when `rule` goes.
pub fn has_delete_learned(rule: &Rule) -> bool {
    !delete_learned_of(rule).is_empty()
}

/// The (table, cookie) of every `learn(delete_learned)` of `rule`.
fn delete_learned_of(rule: &Rule) -> Vec<(TableId, u64)> {
    OfAction::learns(&rule.instructions.apply)
        .into_iter()
        .filter(|l| l.delete_learned)
        .map(|l| (l.table, l.cookie))
        .collect()
}

/// Convenience for tests and tools: a match on one field.
pub fn match_field(field: FieldId, value: u128, mask: u128) -> Match {
    let mut m = Match::catchall();
    m.set_field(field, value, mask);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Instructions;

    fn rule(table: TableId, prio: u16, port: u32, out: u32) -> Rule {
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

    #[test]
    fn replace_all_keeps_the_counters_of_unchanged_rules_only() {
        let t = Tables::from_rules(vec![rule(0, 10, 1, 2), rule(0, 10, 2, 3), rule(0, 9, 3, 3)]);
        for e in t.iter() {
            e.stats.credit(5, 500, Instant::now());
        }
        // Unchanged, changed actions, gone; plus a new one.
        let t2 = t.replace_all(vec![rule(0, 10, 1, 2), rule(0, 10, 2, 4), rule(1, 1, 1, 1)]);
        assert_eq!(t2.len(), 3);
        let packets = |tables: &Tables, port: u32, table: TableId| {
            tables
                .iter()
                .find(|e| e.rule.table == table && e.rule.matches.value.in_port == port)
                .map(|e| e.stats.n_packets())
        };
        assert_eq!(
            packets(&t2, 1, 0),
            Some(5),
            "unchanged rule keeps its counters"
        );
        assert_eq!(packets(&t2, 2, 0), Some(0), "changed rule starts afresh");
        assert_eq!(packets(&t2, 3, 0), None, "rule not in the new set is gone");
        assert_eq!(packets(&t2, 1, 1), Some(0));
    }

    #[test]
    fn add_replaces_identical_and_shares_other_tables() {
        let t = Tables::from_rules(vec![rule(0, 10, 1, 2), rule(1, 10, 1, 3)]);
        let t2 = t.add(rule(0, 10, 1, 4));
        assert_eq!(t2.len(), 2);
        assert!(Arc::ptr_eq(&t.tables[1], &t2.tables[1]));
        let mut f = FlowKey {
            in_port: 1,
            ..Default::default()
        };
        let mut wc = FlowKey::default();
        let r = t2.table(0).lookup(&f, &mut wc).unwrap();
        assert_eq!(
            r.rule.instructions.apply[0],
            OfAction::Output(OutputPort::Port(4))
        );
        f.in_port = 2;
        assert!(t2.table(0).lookup(&f, &mut wc).is_none());
    }

    #[test]
    fn delete_strict_and_loose() {
        let t = Tables::from_rules(vec![
            rule(0, 10, 1, 2),
            rule(0, 20, 1, 3),
            rule(0, 10, 2, 3),
        ]);
        let loose = FlowFilter {
            matches: match_field(FieldId::InPort, 1, 0xffff),
            ..Default::default()
        };
        let (t2, gone) = t.delete(&loose, false);
        assert_eq!(gone.len(), 2);
        assert_eq!(t2.len(), 1);
        let strict = FlowFilter {
            matches: match_field(FieldId::InPort, 1, 0xffff),
            priority: Some(20),
            ..Default::default()
        };
        let (t3, gone) = t.delete(&strict, true);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].rule.priority, 20);
        assert_eq!(t3.len(), 2);
        let by_port = FlowFilter {
            out_port: Some(OutputPort::Port(3)),
            ..Default::default()
        };
        let (t4, gone) = t.delete(&by_port, false);
        assert_eq!(gone.len(), 2);
        assert_eq!(t4.len(), 1);
    }

    #[test]
    fn modify_keeps_stats() {
        let t = Tables::from_rules(vec![rule(0, 10, 1, 2)]);
        let e = t.iter().next().unwrap().clone();
        e.stats.credit(3, 300, Instant::now());
        let ins = Instructions {
            apply: vec![OfAction::Output(OutputPort::Port(9))],
            ..Default::default()
        };
        let (t2, n) = t.modify(&FlowFilter::default(), false, &ins, false);
        assert_eq!(n, 1);
        let e2 = t2.iter().next().unwrap();
        assert_eq!(e2.stats.n_packets(), 3);
        assert_eq!(e2.rule.instructions, ins);
    }

    #[test]
    fn timeouts() {
        let mut r = rule(0, 10, 1, 2);
        r.idle_timeout = 5;
        r.hard_timeout = 20;
        let e = RuleEntry::new(r);
        let t0 = e.stats.created();
        assert_eq!(e.expired(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            e.expired(t0 + Duration::from_secs(5)),
            Some(ExpiryReason::Idle)
        );
        e.stats.credit(1, 60, t0 + Duration::from_secs(4));
        assert_eq!(e.expired(t0 + Duration::from_secs(8)), None);
        assert_eq!(
            e.expired(t0 + Duration::from_secs(20)),
            Some(ExpiryReason::Hard)
        );
        assert_eq!(e.stats.n_bytes(), 60);
    }

    #[test]
    fn iter_orders_by_table_then_priority() {
        let t = Tables::from_rules(vec![rule(1, 5, 1, 2), rule(0, 1, 1, 2), rule(0, 9, 2, 2)]);
        let v: Vec<(u8, u16)> = t.iter().map(|e| (e.rule.table, e.rule.priority)).collect();
        assert_eq!(v, vec![(0, 9), (0, 1), (1, 5)]);
    }
}
