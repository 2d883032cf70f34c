//! A wildcard-tracking tuple-space-search classifier (OVS `lib/classifier.c`).
//!
//! One [`Classifier`] holds the rules of one OpenFlow table. Rules with the
//! same match mask share a *subtable*: a hash map from the masked value to
//! the rules with that value (highest priority first). A lookup walks the
//! subtables in decreasing order of their highest rule priority and stops as
//! soon as no remaining subtable can beat the best match found so far.
//!
//! Every lookup also reports, in a caller-supplied mask (`wc`, a
//! [`FlowKey`] used as a bit mask), the bits of the flow it had to look at to
//! reach its answer. That mask becomes the megaflow mask, so it is kept as
//! small as correctness allows, with the two techniques OVS uses:
//!
//! * **Staged lookup.** A subtable's mask is split into up to four stages
//!   (metadata → L2 → L3 → L4, the same segments as OVS's `struct flow`).
//!   For every stage but the last the subtable keeps the set of
//!   `value & cumulative-stage-mask` of its rules; when the flow's masked
//!   value is not in that set, no rule of the subtable can match and only the
//!   stages up to that one are un-wildcarded.
//! * **Prefix tries.** For the configured address fields (by default IPv4
//!   and IPv6 source and destination), the classifier keeps a binary trie of
//!   the prefixes used by its rules. Before un-wildcarding the L3 stage of a
//!   subtable that matches a CIDR prefix on such a field, the trie tells
//!   whether any rule with that prefix length can match at all; if not, only
//!   the address bits needed to tell the flow apart from the rules' longer
//!   prefixes are un-wildcarded (OVS `check_tries` / `trie_lookup`). A
//!   table of `/24` routes therefore does not force exact-address megaflows.
//!   Likewise, a per-subtable trie over the transport ports un-wildcards only
//!   a prefix of the port bits when the final (L4) stage finds no match.
//!
//! Equal-priority overlapping rules in different subtables (undefined in
//! OpenFlow): the rule of the subtable that sorts first wins, and subtables
//! with the same highest priority are ordered by creation, i.e. by the
//! insertion order of the first rule that had their mask. This reproduces
//! OVS's choice for tables loaded in one go. Two entries with identical match
//! and priority: the earlier one wins (the table layer replaces duplicates,
//! as OpenFlow `add` does).
//!
//! A classifier is immutable once built; tables are rebuilt on change.

use crate::fields::FieldId;
use crate::rule::Match;
use flowcache::key::FlowKey;
use hashbrown::{HashMap, HashTable};
use std::sync::OnceLock;

/// A 64-bit hash of a (masked) key. The staged indices keep only these
/// (as OVS's do): a miss is exact, a collision only makes the lookup go one
/// stage further, and the last stage compares whole keys.
pub fn key_hash(k: &FlowKey) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for w in k.words() {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    h ^ (h >> 32)
}

/// Number of lookup stages (metadata, L2, L3, L4).
pub const N_STAGES: usize = 4;
/// Index of the L3 stage (where the address prefix tries apply).
const STAGE_L3: usize = 2;

/// The lookup stage of each byte of a [`FlowKey`], as masks: `stage_masks()[s]`
/// has every bit of the fields of stage `s` set.
///
/// * 0 metadata: `recirc_id`, `in_port`, `dp_hash`, `pkt_mark`, tunnel,
///   the ct fields, `metadata`, registers;
/// * 1 L2: `dl_dst`, `dl_src`, `dl_type`, VLANs, MPLS;
/// * 2 L3: IPv4/IPv6 addresses, label, `nw_frag`, `nw_tos`, `nw_ttl`,
///   `nw_proto`, ND target, ARP SHA/THA, `tcp_flags`;
/// * 3 L4: `tp_src`, `tp_dst`.
pub fn stage_masks() -> &'static [FlowKey; N_STAGES] {
    static MASKS: OnceLock<[FlowKey; N_STAGES]> = OnceLock::new();
    MASKS.get_or_init(|| {
        use core::mem::offset_of;
        let mut m = [FlowKey::default(); N_STAGES];
        let size = core::mem::size_of::<FlowKey>();
        let l2 = offset_of!(FlowKey, dl_dst);
        let l3 = offset_of!(FlowKey, nw_src);
        let l4 = offset_of!(FlowKey, tp_src);
        let tcp_flags = offset_of!(FlowKey, tcp_flags);
        // The ct words (after the L4 word) are metadata, as in OVS.
        let dp_end = offset_of!(FlowKey, ct_state);
        for (s, mask) in m.iter_mut().enumerate() {
            let bytes: &mut [u8] = bytemuck::bytes_of_mut(mask);
            for (i, b) in bytes.iter_mut().enumerate().take(size) {
                let stage = if i < l2 || i >= dp_end {
                    0
                } else if i < l3 {
                    1
                } else if i < l4 || (tcp_flags..tcp_flags + 2).contains(&i) {
                    2
                } else {
                    3
                };
                if stage == s {
                    *b = 0xff;
                }
            }
        }
        m
    })
}

/// Which fields get a prefix trie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassifierConfig {
    /// Address fields with a prefix trie, checked in this order. OVS's
    /// default is `[NwDst, NwSrc]`; IPv6 tries are an extension.
    pub prefix_fields: Vec<FieldId>,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            prefix_fields: vec![
                FieldId::NwDst,
                FieldId::NwSrc,
                FieldId::Ipv6Dst,
                FieldId::Ipv6Src,
            ],
        }
    }
}

impl ClassifierConfig {
    /// Exactly OVS 3.1's default (`prefixes=ip_dst,ip_src`); useful to
    /// compare megaflows with OVS.
    pub fn ovs_default() -> Self {
        ClassifierConfig {
            prefix_fields: vec![FieldId::NwDst, FieldId::NwSrc],
        }
    }
}

/// An uncompressed binary prefix trie over values of up to 128 bits,
/// left-aligned in a `u128` (bit 127 is the first bit of the field).
#[derive(Clone, Debug, Default)]
pub struct PrefixTrie {
    /// `nodes[0]` is the root when the trie is not empty.
    nodes: Vec<TrieNode>,
}

#[derive(Clone, Copy, Debug, Default)]
struct TrieNode {
    /// Child indices (0 = none; the root is never a child).
    child: [u32; 2],
    /// Number of rules whose prefix ends exactly here.
    n_rules: u32,
    /// Number of rules whose prefix ends here or below (0: the node is
    /// left over from removed rules and counts as absent).
    n_below: u32,
}

#[inline]
fn bit_at(v: u128, depth: u32) -> usize {
    ((v >> (127 - depth)) & 1) as usize
}

/// The top `n` bits of a left-aligned 128-bit value.
#[inline]
fn prefix_mask128(n: u32) -> u128 {
    if n == 0 {
        0
    } else {
        u128::MAX << (128 - n)
    }
}

impl PrefixTrie {
    /// True when no prefix was inserted.
    pub fn is_empty(&self) -> bool {
        self.nodes.first().is_none_or(|n| n.n_below == 0)
    }

    /// Inserts a prefix of `plen` bits of the left-aligned `value`.
    pub fn insert(&mut self, value: u128, plen: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut node = 0usize;
        self.nodes[0].n_below += 1;
        for depth in 0..plen {
            let b = bit_at(value, depth);
            let next = self.nodes[node].child[b];
            node = if next == 0 {
                self.nodes.push(TrieNode::default());
                let idx = self.nodes.len() - 1;
                self.nodes[node].child[b] = idx as u32;
                idx
            } else {
                next as usize
            };
            self.nodes[node].n_below += 1;
        }
        self.nodes[node].n_rules += 1;
    }

    /// Removes one prefix [`PrefixTrie::insert`] inserted.
    pub fn remove(&mut self, value: u128, plen: u32) {
        let mut node = 0usize;
        self.nodes[0].n_below -= 1;
        for depth in 0..plen {
            node = self.nodes[node].child[bit_at(value, depth)] as usize;
            self.nodes[node].n_below -= 1;
        }
        self.nodes[node].n_rules -= 1;
    }

    /// Child `b` of `node`, if it has rules below it.
    #[inline]
    fn child(&self, node: usize, b: usize) -> u32 {
        let c = self.nodes[node].child[b];
        if c != 0 && self.nodes[c as usize].n_below > 0 {
            c
        } else {
            0
        }
    }

    /// OVS `trie_lookup_value`: walks the trie along the left-aligned
    /// `value` (a field of `n_bits` bits). Returns the number of leading bits
    /// needed to tell `value` apart from every longer prefix in the trie, and
    /// a bit set (bit `plen - 1` for prefix length `plen`) of the prefix
    /// lengths that have rules matching `value`.
    pub fn lookup(&self, value: u128, n_bits: u32) -> (u32, u128) {
        let mut plens = 0u128;
        if self.nodes.is_empty() || self.nodes[0].n_below == 0 {
            return (0, plens);
        }
        let mut node = 0usize;
        let mut depth = 0u32;
        loop {
            let n = &self.nodes[node];
            if n.n_rules > 0 && depth > 0 {
                plens |= 1u128 << (depth - 1);
            }
            if depth >= n_bits {
                return (n_bits, plens);
            }
            let b = bit_at(value, depth);
            let next = self.child(node, b);
            if next != 0 {
                node = next as usize;
                depth += 1;
                continue;
            }
            // Tried to follow a missing branch: the first bit that differs
            // from the other branch (if any) is needed too.
            let other = self.child(node, 1 - b);
            return (if other != 0 { depth + 1 } else { depth }, plens);
        }
    }
}

/// The prefix length of a field's mask if it is a CIDR prefix (0 when the
/// field is wildcarded or the mask is not contiguous).
fn prefix_len(field: FieldId, mask: &FlowKey) -> u32 {
    let n_bits = field.n_bits();
    let m = field.get(mask) << (128 - n_bits);
    if m == 0 {
        return 0;
    }
    let ones = m.leading_ones();
    if ones + m.trailing_zeros() == 128 {
        ones
    } else {
        0
    }
}

/// A field value, left-aligned.
#[inline]
fn left_aligned(field: FieldId, key: &FlowKey) -> u128 {
    field.get(key) << (128 - field.n_bits())
}

/// Marks the top `n` bits of `field` in `wc`.
fn mask_prefix_bits(field: FieldId, wc: &mut FlowKey, n: u32) {
    let bits = prefix_mask128(n) >> (128 - field.n_bits());
    field.or_mask(wc, bits);
}

/// True when the top `n` bits of `field` are already set in `wc`.
fn prefix_bits_set(field: FieldId, wc: &FlowKey, n: u32) -> bool {
    let bits = prefix_mask128(n) >> (128 - field.n_bits());
    field.get(wc) & bits == bits
}

/// The 32-bit ports word (`tp_src` high, `tp_dst` low).
#[inline]
fn ports_of(k: &FlowKey) -> u32 {
    ((k.tp_src as u32) << 16) | k.tp_dst as u32
}

/// One rule as the classifier sees it.
#[derive(Clone, Debug)]
pub struct ClsEntry<T> {
    pub matches: Match,
    pub priority: u16,
    pub data: T,
    /// The conjunctive matches the rule is a clause of (empty: an ordinary
    /// rule). A rule with clauses is never the result of a lookup.
    pub conj: Vec<Conj>,
}

impl<T> ClsEntry<T> {
    /// An ordinary (not conjunctive) entry.
    pub fn new(matches: Match, priority: u16, data: T) -> Self {
        ClsEntry {
            matches,
            priority,
            data,
            conj: Vec::new(),
        }
    }
}

/// One `conjunction(id,k/n)` of a rule (OVS `struct cls_conjunction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conj {
    pub id: u32,
    /// 0-based clause index (`k - 1`).
    pub clause: u8,
    pub n_clauses: u8,
}

/// OVS `find_conjunctive_match`: adds the clauses of `conj` to `matches`
/// (id → bit set of the clauses seen, pre-filled above `n_clauses`);
/// returns the first id whose clauses are all there.
fn find_conjunctive_match(
    conj: &[Conj],
    max_n_clauses: usize,
    matches: &mut Vec<(u32, u64)>,
) -> Option<u32> {
    let min = conj.iter().map(|c| c.n_clauses).min().unwrap_or(0) as usize;
    if max_n_clauses < min {
        return None;
    }
    for c in conj {
        if c.n_clauses as usize > max_n_clauses {
            continue;
        }
        let i = match matches.iter().position(|(id, _)| *id == c.id) {
            Some(i) => i,
            None => {
                matches.push((c.id, u64::MAX << (c.n_clauses & 63)));
                matches.len() - 1
            }
        };
        matches[i].1 |= 1u64 << c.clause;
        if matches[i].1 == u64::MAX {
            return Some(c.id);
        }
    }
    None
}

#[derive(Clone, Debug)]
struct Subtable {
    mask: FlowKey,
    max_priority: u16,
    /// Cumulative masks of the non-empty stages; the last one is `mask`.
    cum: Vec<FlowKey>,
    /// Stage number (0..N_STAGES) of each element of `cum`.
    stage_of: Vec<usize>,
    /// Hashes of `value & cum[i]` of the rules, for every stage but the
    /// last.
    indices: Vec<HashMap<u64, u32>>,
    /// Number of rules per priority (the highest is `max_priority`).
    priorities: std::collections::BTreeMap<u16, u32>,
    /// Removed from the classifier (its last rule went).
    dead: bool,
    /// Entry indices with one masked value, best first, hashed by
    /// [`key_hash`] of that value (the value itself is the first entry's).
    buckets: HashTable<(u64, Vec<usize>)>,
    /// Prefix length per classifier trie (0 = the trie does not apply).
    trie_plen: Vec<u32>,
    /// Ports word mask and its "prefix" length (up to its last set bit).
    ports_mask: u32,
    ports_mask_len: u32,
    ports_trie: PrefixTrie,
}

/// Per-lookup trie state (OVS `struct trie_ctx`).
#[derive(Clone, Copy, Default)]
struct TrieCtx {
    done: bool,
    maskbits: u32,
    plens: u128,
}

/// The classifier of one table.
#[derive(Clone, Debug)]
pub struct Classifier<T> {
    /// Every entry ever inserted, removed ones too (their index stays
    /// theirs until the table is rebuilt).
    entries: Vec<ClsEntry<T>>,
    /// `removed[i]`: entry `i` was removed.
    removed: Vec<bool>,
    n_removed: usize,
    /// In creation order.
    subtables: Vec<Subtable>,
    /// Subtable indices sorted by max priority (descending), then creation.
    order: Vec<usize>,
    by_mask: HashMap<FlowKey, usize>,
    tries: Vec<(FieldId, PrefixTrie)>,
    /// Some entry is a conjunction clause.
    has_conj: bool,
    /// `order` needs sorting (a subtable was created or its highest
    /// priority changed since the last sort).
    order_dirty: bool,
}

impl<T> Default for Classifier<T> {
    fn default() -> Self {
        Self::new(&ClassifierConfig::default())
    }
}

impl<T> Classifier<T> {
    /// An empty classifier.
    pub fn new(config: &ClassifierConfig) -> Self {
        Classifier {
            entries: Vec::new(),
            removed: Vec::new(),
            n_removed: 0,
            subtables: Vec::new(),
            order: Vec::new(),
            by_mask: HashMap::new(),
            has_conj: false,
            order_dirty: false,
            tries: config
                .prefix_fields
                .iter()
                .map(|f| (*f, PrefixTrie::default()))
                .collect(),
        }
    }

    /// Builds a classifier from entries in insertion order.
    pub fn build(entries: Vec<ClsEntry<T>>, config: &ClassifierConfig) -> Self {
        let mut cls = Self::new(config);
        cls.entries.reserve(entries.len());
        for e in entries {
            cls.insert_unsorted(e);
        }
        cls.sort_subtables();
        cls
    }

    /// Adds an entry after all existing ones (it loses equal-priority ties
    /// to them within its subtable). Returns its index.
    pub fn insert(&mut self, e: ClsEntry<T>) -> usize {
        let idx = self.insert_unsorted(e);
        self.sort_subtables();
        idx
    }

    /// [`Classifier::insert`] without re-sorting the subtables: call
    /// [`Classifier::sort`] after a batch, before any lookup.
    pub fn insert_deferred(&mut self, e: ClsEntry<T>) -> usize {
        self.insert_unsorted(e)
    }

    /// Re-sorts the subtables after [`Classifier::insert_deferred`] (only
    /// when their order may have changed).
    pub fn sort(&mut self) {
        if self.order_dirty {
            self.sort_subtables();
        }
    }

    /// Replaces the data of entry `idx` (same match and priority).
    pub fn replace_data(&mut self, idx: usize, data: T) {
        self.entries[idx].data = data;
    }

    /// Replaces entry `idx` by `e`, which has the same match and priority
    /// (its data and conjunctions change).
    pub fn replace_entry(&mut self, idx: usize, e: ClsEntry<T>) {
        debug_assert_eq!(self.entries[idx].priority, e.priority);
        self.has_conj |= !e.conj.is_empty();
        self.entries[idx].data = e.data;
        self.entries[idx].conj = e.conj;
    }

    fn sort_subtables(&mut self) {
        self.order_dirty = false;
        let st = &self.subtables;
        self.order = (0..st.len()).filter(|i| !st[*i].dead).collect();
        self.order
            .sort_by(|a, b| st[*b].max_priority.cmp(&st[*a].max_priority).then(a.cmp(b)));
    }

    fn insert_unsorted(&mut self, e: ClsEntry<T>) -> usize {
        let idx = self.entries.len();
        let mask = e.matches.mask;
        let value = e.matches.value.masked(&mask);
        let priority = e.priority;
        self.has_conj |= !e.conj.is_empty();
        self.entries.push(e);
        self.removed.push(false);
        let st_idx = match self.by_mask.get(&mask) {
            Some(i) => *i,
            None => {
                self.subtables
                    .push(Subtable::new(mask, &self.tries, stage_masks()));
                self.by_mask.insert(mask, self.subtables.len() - 1);
                self.order_dirty = true;
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[st_idx];
        if priority > st.max_priority {
            st.max_priority = priority;
            self.order_dirty = true;
        }
        *st.priorities.entry(priority).or_default() += 1;
        for (i, cum) in st.cum.iter().enumerate().take(st.indices.len()) {
            *st.indices[i]
                .entry(key_hash(&value.masked(cum)))
                .or_default() += 1;
        }
        let entries = &self.entries;
        let hash = key_hash(&value);
        let found = st.buckets.find_mut(hash, |(h, l)| {
            let m = &entries[l[0]].matches;
            *h == hash && m.value.masked(&m.mask) == value
        });
        match found {
            Some((_, list)) => {
                // Best first: priority descending, then insertion order.
                let pos = list.partition_point(|i| entries[*i].priority >= priority);
                list.insert(pos, idx);
            }
            None => {
                st.buckets
                    .insert_unique(hash, (hash, vec![idx]), |(h, _)| *h);
            }
        }
        for (j, (field, trie)) in self.tries.iter_mut().enumerate() {
            let plen = st.trie_plen[j];
            if plen > 0 {
                trie.insert(left_aligned(*field, &value), plen);
            }
        }
        if st.ports_mask_len > 0 {
            st.ports_trie
                .insert((ports_of(&value) as u128) << 96, st.ports_mask_len);
        }
        idx
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.entries.len() - self.n_removed
    }

    /// True when there is no rule.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.iter().filter(|s| !s.dead).count()
    }

    /// Every entry by index, removed ones included (see
    /// [`Classifier::is_removed`]).
    pub fn entries(&self) -> &[ClsEntry<T>] {
        &self.entries
    }

    /// The entries not removed, in insertion order.
    pub fn live(&self) -> impl Iterator<Item = &ClsEntry<T>> {
        self.entries
            .iter()
            .zip(&self.removed)
            .filter(|(_, r)| !**r)
            .map(|(e, _)| e)
    }

    /// True when entry `idx` was removed.
    pub fn is_removed(&self, idx: usize) -> bool {
        self.removed[idx]
    }

    /// True when more entries were removed than are left (and enough to
    /// matter): rebuilding from [`Classifier::live`] then pays off.
    pub fn wants_rebuild(&self) -> bool {
        self.n_removed > 64 && self.n_removed > self.len()
    }

    /// Removes entry `idx` from the lookup structures (OVS
    /// `classifier_remove`): its bucket, the staged indices, the prefix
    /// tries, its subtable's priority count (the subtable goes when its
    /// last rule does). Call [`Classifier::sort`] afterwards.
    pub fn remove(&mut self, idx: usize) {
        if self.removed[idx] {
            return;
        }
        self.removed[idx] = true;
        self.n_removed += 1;
        let e = &self.entries[idx];
        let mask = e.matches.mask;
        let value = e.matches.value.masked(&mask);
        let priority = e.priority;
        let Some(&st_idx) = self.by_mask.get(&mask) else {
            return;
        };
        let entries = &self.entries;
        let st = &mut self.subtables[st_idx];
        let hash = key_hash(&value);
        if let Ok(mut occ) = st.buckets.find_entry(hash, |(h, l)| {
            let m = &entries[l[0]].matches;
            *h == hash && m.value.masked(&m.mask) == value
        }) {
            let list = &mut occ.get_mut().1;
            list.retain(|i| *i != idx);
            if list.is_empty() {
                occ.remove();
            }
        }
        for (i, cum) in st.cum.iter().enumerate().take(st.indices.len()) {
            let k = key_hash(&value.masked(cum));
            if let Some(n) = st.indices[i].get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    st.indices[i].remove(&k);
                }
            }
        }
        if let Some(n) = st.priorities.get_mut(&priority) {
            *n -= 1;
            if *n == 0 {
                st.priorities.remove(&priority);
            }
        }
        let max = st.priorities.keys().next_back().copied().unwrap_or(0);
        if max != st.max_priority {
            st.max_priority = max;
            self.order_dirty = true;
        }
        for (j, (field, trie)) in self.tries.iter_mut().enumerate() {
            let plen = st.trie_plen[j];
            if plen > 0 {
                trie.remove(left_aligned(*field, &value), plen);
            }
        }
        if st.ports_mask_len > 0 {
            st.ports_trie
                .remove((ports_of(&value) as u128) << 96, st.ports_mask_len);
        }
        if st.buckets.is_empty() {
            st.dead = true;
            self.by_mask.remove(&mask);
            self.order_dirty = true;
        }
    }

    /// Finds the highest-priority entry matching `flow`, and ORs into `wc`
    /// the bits of `flow` the decision depended on.
    ///
    /// Conjunctive matches as OVS 3.1 (`classifier_lookup__`): a matching
    /// rule with `conjunction` actions is a *soft* match; when the best soft
    /// matches outrank the best ordinary (*hard*) match and one of each
    /// clause of a conjunction is among the soft matches of that priority,
    /// the table is looked up again with `conj_id` set to its id (soft
    /// matches ignored), and that lookup's result, if any, is the answer.
    /// Otherwise the soft matches drop back to lower-priority rules with
    /// the same match, until the hard match wins.
    pub fn lookup(&self, flow: &FlowKey, wc: &mut FlowKey) -> Option<&ClsEntry<T>> {
        self.lookup_conj(flow, wc, true)
    }

    fn lookup_conj(
        &self,
        flow: &FlowKey,
        wc: &mut FlowKey,
        allow_conj: bool,
    ) -> Option<&ClsEntry<T>> {
        let mut tctx = [TrieCtx::default(); 8];
        let mut tctx_vec;
        let tctx: &mut [TrieCtx] = if self.tries.len() <= tctx.len() {
            &mut tctx[..self.tries.len()]
        } else {
            tctx_vec = vec![TrieCtx::default(); self.tries.len()];
            &mut tctx_vec
        };
        let mut best: Option<usize> = None;
        let mut hard_pri: i32 = -1;
        // Soft matches: (subtable, position in its bucket), or None once
        // dropped.
        let mut soft: Vec<Option<(usize, usize)>> = Vec::new();
        let mut soft_pri: i32 = -1;
        for &si in &self.order {
            let st = &self.subtables[si];
            if st.max_priority as i32 <= hard_pri {
                break;
            }
            if let Some(idx) = self.find_match_wc(st, flow, tctx, wc) {
                let e = &self.entries[idx];
                let p = e.priority as i32;
                if p <= hard_pri {
                    continue;
                }
                if e.conj.is_empty() {
                    hard_pri = p;
                    best = Some(idx);
                } else if allow_conj {
                    soft.push(Some((si, 0)));
                    soft_pri = soft_pri.max(p);
                }
            }
        }
        if hard_pri >= soft_pri {
            return best.map(|i| &self.entries[i]);
        }
        let entry_of = |s: (usize, usize)| -> usize {
            let st = &self.subtables[s.0];
            self.bucket(st, &flow.masked(&st.mask))
                .expect("a soft match is in its bucket")[s.1]
        };
        loop {
            let mut i = 0;
            while i < soft.len() {
                match soft[i] {
                    Some(s) if self.entries[entry_of(s)].priority as i32 > hard_pri => i += 1,
                    _ => {
                        soft.swap_remove(i);
                    }
                }
            }
            if soft.is_empty() {
                break;
            }
            let prio = |s: &Option<(usize, usize)>| {
                s.map_or(-1, |s| self.entries[entry_of(s)].priority as i32)
            };
            let top = soft.iter().map(prio).max().unwrap_or(-1);
            let n_top = soft.iter().filter(|s| prio(s) == top).count();
            let mut matches: Vec<(u32, u64)> = Vec::new();
            for s in soft.iter().flatten() {
                let e = &self.entries[entry_of(*s)];
                if e.priority as i32 != top {
                    continue;
                }
                if let Some(id) = find_conjunctive_match(&e.conj, n_top, &mut matches) {
                    let mut f = *flow;
                    f.conj_id = id;
                    if let Some(r) = self.lookup_conj(&f, wc, false) {
                        return Some(r);
                    }
                }
            }
            // No conjunction at this priority: the next lower-priority rule
            // with the same match takes each top soft match's place.
            for slot in soft.iter_mut() {
                let Some((si, pos)) = *slot else { continue };
                if prio(&Some((si, pos))) != top {
                    continue;
                }
                let st = &self.subtables[si];
                let list = self
                    .bucket(st, &flow.masked(&st.mask))
                    .expect("a soft match is in its bucket");
                match list.get(pos + 1) {
                    Some(&next) => {
                        let e = &self.entries[next];
                        if e.conj.is_empty() {
                            if e.priority as i32 > hard_pri {
                                hard_pri = e.priority as i32;
                                best = Some(next);
                            }
                            *slot = None;
                        } else {
                            *slot = Some((si, pos + 1));
                        }
                    }
                    None => *slot = None,
                }
            }
        }
        best.map(|i| &self.entries[i])
    }

    /// Lookup without wildcard tracking.
    pub fn lookup_exact(&self, flow: &FlowKey) -> Option<&ClsEntry<T>> {
        if self.has_conj {
            return self.lookup(flow, &mut FlowKey::default());
        }
        let mut best: Option<usize> = None;
        let mut hard_pri: i32 = -1;
        for &si in &self.order {
            let st = &self.subtables[si];
            if st.max_priority as i32 <= hard_pri {
                break;
            }
            if let Some(list) = self.bucket(st, &flow.masked(&st.mask)) {
                let idx = list[0];
                let p = self.entries[idx].priority as i32;
                if p > hard_pri {
                    hard_pri = p;
                    best = Some(idx);
                }
            }
        }
        best.map(|i| &self.entries[i])
    }

    /// The entries of `st` whose masked value is `value` (already masked).
    fn bucket<'s>(&'s self, st: &'s Subtable, value: &FlowKey) -> Option<&'s Vec<usize>> {
        let hash = key_hash(value);
        st.buckets
            .find(hash, |(h, l)| {
                let m = &self.entries[l[0]].matches;
                *h == hash && m.value.masked(&m.mask) == *value
            })
            .map(|(_, l)| l)
    }

    /// OVS `check_tries`: true when a trie proves that no rule of `st` can
    /// match (the needed address bits are then already in `wc`).
    fn check_tries(
        &self,
        st: &Subtable,
        stage: usize,
        flow: &FlowKey,
        tctx: &mut [TrieCtx],
        wc: &mut FlowKey,
    ) -> bool {
        if stage != STAGE_L3 {
            return false;
        }
        for (j, (field, trie)) in self.tries.iter().enumerate() {
            let plen = st.trie_plen[j];
            if plen == 0 {
                continue;
            }
            let ctx = &mut tctx[j];
            if !ctx.done {
                ctx.done = true;
                let all = FlowKey::all_ones();
                if trie_prereq(*field).satisfied(flow, &all) {
                    let (maskbits, plens) = trie.lookup(left_aligned(*field, flow), field.n_bits());
                    ctx.maskbits = maskbits;
                    ctx.plens = plens;
                } else {
                    // All prefixes possible: never skip.
                    ctx.maskbits = 0;
                    ctx.plens = u128::MAX;
                }
            }
            if ctx.plens & (1u128 << (plen - 1)) == 0 {
                if ctx.maskbits <= plen {
                    mask_prefix_bits(*field, wc, ctx.maskbits);
                    return true;
                }
                if prefix_bits_set(*field, wc, ctx.maskbits) {
                    return true;
                }
            }
        }
        false
    }

    /// OVS `find_match_wc`.
    fn find_match_wc(
        &self,
        st: &Subtable,
        flow: &FlowKey,
        tctx: &mut [TrieCtx],
        wc: &mut FlowKey,
    ) -> Option<usize> {
        let n = st.cum.len();
        if n == 0 {
            // Catch-all subtable.
            return self.bucket(st, &FlowKey::default()).map(|l| l[0]);
        }
        for i in 0..n - 1 {
            if self.check_tries(st, st.stage_of[i], flow, tctx, wc) {
                if i > 0 {
                    wc.or_with(&st.cum[i - 1]);
                }
                return None;
            }
            if !st.indices[i].contains_key(&key_hash(&flow.masked(&st.cum[i]))) {
                wc.or_with(&st.cum[i]);
                return None;
            }
        }
        let last = n - 1;
        if self.check_tries(st, st.stage_of[last], flow, tctx, wc) {
            if last > 0 {
                wc.or_with(&st.cum[last - 1]);
            }
            return None;
        }
        match self.bucket(st, &flow.masked(&st.mask)) {
            Some(list) => {
                wc.or_with(&st.mask);
                Some(list[0])
            }
            None if st.ports_mask_len > 0 && st.stage_of[last] == N_STAGES - 1 => {
                let value = ports_of(flow) & st.ports_mask;
                let (mbits, _) = st.ports_trie.lookup((value as u128) << 96, 32);
                let bits = st.ports_mask & ((prefix_mask128(mbits) >> 96) as u32);
                wc.tp_src |= (bits >> 16) as u16;
                wc.tp_dst |= bits as u16;
                if last > 0 {
                    wc.or_with(&st.cum[last - 1]);
                }
                None
            }
            None => {
                wc.or_with(&st.mask);
                None
            }
        }
    }
}

/// What a packet must be for a trie field to be meaningful (OVS
/// `mf_are_prereqs_ok` on the trie field: `ip_src`/`ip_dst` need IPv4, not
/// ARP).
fn trie_prereq(field: FieldId) -> crate::fields::Prereq {
    use crate::fields::Prereq;
    match field {
        FieldId::NwSrc | FieldId::NwDst => Prereq::Ipv4,
        f => f.prereq(),
    }
}

impl Subtable {
    fn new(
        mask: FlowKey,
        tries: &[(FieldId, PrefixTrie)],
        stages: &[FlowKey; N_STAGES],
    ) -> Subtable {
        let mut cum = Vec::new();
        let mut stage_of = Vec::new();
        let mut acc = FlowKey::default();
        for (s, sm) in stages.iter().enumerate() {
            let part = mask.masked(sm);
            if !part.is_zero() {
                acc.or_with(&part);
                cum.push(acc);
                stage_of.push(s);
            }
        }
        let n_idx = cum.len().saturating_sub(1);
        let ports_mask = ports_of(&mask);
        let ports_mask_len = if ports_mask == 0 {
            0
        } else {
            32 - ports_mask.trailing_zeros()
        };
        Subtable {
            mask,
            max_priority: 0,
            cum,
            stage_of,
            indices: vec![HashMap::new(); n_idx],
            priorities: Default::default(),
            dead: false,
            buckets: HashTable::new(),
            trie_plen: tries.iter().map(|(f, _)| prefix_len(*f, &mask)).collect(),
            ports_mask,
            ports_mask_len,
            ports_trie: PrefixTrie::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowcache::key::{ETH_TYPE_IPV4, IPPROTO_TCP};

    fn ip_rule(dst: u32, plen: u32, prio: u16) -> ClsEntry<u32> {
        let mut m = Match::catchall();
        m.set_field(FieldId::DlType, ETH_TYPE_IPV4 as u128, 0xffff);
        let mask = if plen == 0 {
            0
        } else {
            u32::MAX << (32 - plen)
        };
        m.set_field(FieldId::NwDst, dst as u128, mask as u128);
        ClsEntry::new(m, prio, dst)
    }

    fn ip_flow(dst: u32) -> FlowKey {
        let mut k = FlowKey {
            dl_type: ETH_TYPE_IPV4,
            nw_dst: dst,
            nw_src: 0x0101_0101,
            nw_proto: IPPROTO_TCP,
            tp_src: 1234,
            tp_dst: 80,
            ..Default::default()
        };
        k.in_port = 1;
        k
    }

    #[test]
    fn trie_lookup_semantics() {
        let mut t = PrefixTrie::default();
        // 10.0.0.0/8 and 10.1.0.0/16
        t.insert((0x0a00_0000u128) << 96, 8);
        t.insert((0x0a01_0000u128) << 96, 16);
        // 10.1.2.3 matches both.
        let (bits, plens) = t.lookup((0x0a01_0203u128) << 96, 32);
        assert_eq!(plens, (1 << 7) | (1 << 15));
        // A leaf at /16.
        assert_eq!(bits, 16);
        // 10.2.0.0: matches /8 only; needs 15 bits to rule out 10.1/16.
        let (bits, plens) = t.lookup((0x0a02_0000u128) << 96, 32);
        assert_eq!(plens, 1 << 7);
        assert_eq!(bits, 15);
        // 11.0.0.0: differs in bit 7 (0-based): 8 bits needed.
        let (bits, plens) = t.lookup((0x0b00_0000u128) << 96, 32);
        assert_eq!(plens, 0);
        assert_eq!(bits, 8);
        assert_eq!(PrefixTrie::default().lookup(0, 32), (0, 0));
    }

    #[test]
    fn prefix_len_detects_cidr() {
        let mut m = FlowKey {
            nw_dst: 0xffff_ff00,
            ..Default::default()
        };
        assert_eq!(prefix_len(FieldId::NwDst, &m), 24);
        m.nw_dst = 0xff00_ff00;
        assert_eq!(prefix_len(FieldId::NwDst, &m), 0);
        m.nw_dst = u32::MAX;
        assert_eq!(prefix_len(FieldId::NwDst, &m), 32);
    }

    #[test]
    fn highest_priority_wins_and_minimal_wc() {
        let cls = Classifier::build(
            vec![
                ip_rule(0x0a00_0000, 8, 10),
                ip_rule(0x0a01_0000, 16, 20),
                ip_rule(0, 0, 1),
            ],
            &ClassifierConfig::default(),
        );
        let mut wc = FlowKey::default();
        let r = cls.lookup(&ip_flow(0x0a01_0203), &mut wc).unwrap();
        assert_eq!(r.data, 0x0a01_0000);
        assert_eq!(wc.nw_dst, 0xffff_0000);
        assert_eq!(wc.tp_src, 0);
        assert_eq!(wc.nw_src, 0);

        let mut wc = FlowKey::default();
        let r = cls.lookup(&ip_flow(0x0a02_0304), &mut wc).unwrap();
        assert_eq!(r.data, 0x0a00_0000);
        // /16 ruled out with 15 bits, /8 matched: 15 bits in all.
        assert_eq!(wc.nw_dst, 0xfffe_0000);

        let mut wc = FlowKey::default();
        let r = cls.lookup(&ip_flow(0xc0a8_0001), &mut wc).unwrap();
        assert_eq!(r.data, 0);
        // 192.x differs from 10.x in the first bit: one bit suffices.
        assert_eq!(wc.nw_dst, 0x8000_0000);
        assert_eq!(wc.tp_dst, 0);
    }

    #[test]
    fn staged_lookup_stops_early() {
        // Rules on in_port + tp_dst: a flow from another port only needs
        // in_port un-wildcarded.
        let mut m = Match::catchall();
        m.set_field(FieldId::InPort, 7, 0xffff);
        m.set_field(FieldId::DlType, ETH_TYPE_IPV4 as u128, 0xffff);
        m.set_field(FieldId::NwProto, IPPROTO_TCP as u128, 0xff);
        m.set_field(FieldId::TpDst, 80, 0xffff);
        let cls = Classifier::build(
            vec![ClsEntry::new(m, 5, 1u32)],
            &ClassifierConfig::default(),
        );
        let mut wc = FlowKey::default();
        assert!(cls.lookup(&ip_flow(1), &mut wc).is_none());
        assert_eq!(wc.in_port, 0xffff);
        assert_eq!(wc.dl_type, 0);
        assert_eq!(wc.tp_dst, 0);
        let mut f = ip_flow(1);
        f.in_port = 7;
        f.tp_dst = 81;
        let mut wc = FlowKey::default();
        assert!(cls.lookup(&f, &mut wc).is_none());
        // Final stage missed: the ports trie needs only up to the first
        // differing bit of tp_dst (80 = 0x50, 81 = 0x51: all 16 bits).
        assert_eq!(wc.dl_type, 0xffff);
        assert_eq!(wc.nw_proto, 0xff);
        assert_eq!(wc.tp_dst, 0xffff);
        f.tp_dst = 0x8050;
        let mut wc = FlowKey::default();
        assert!(cls.lookup(&f, &mut wc).is_none());
        assert_eq!(wc.tp_dst, 0x8000);
    }

    #[test]
    fn equal_priority_tie_is_first_created_subtable() {
        let mut a = Match::catchall();
        a.set_field(FieldId::DlType, ETH_TYPE_IPV4 as u128, 0xffff);
        let mut b = Match::catchall();
        b.set_field(FieldId::InPort, 1, 0xffff);
        let cls = Classifier::build(
            vec![ClsEntry::new(a, 10, 'a'), ClsEntry::new(b, 10, 'b')],
            &ClassifierConfig::default(),
        );
        let mut wc = FlowKey::default();
        assert_eq!(cls.lookup(&ip_flow(1), &mut wc).unwrap().data, 'a');
        // The second subtable was never visited.
        assert_eq!(wc.in_port, 0);
    }

    #[test]
    fn lookup_agrees_with_linear_scan() {
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::default();
        let strat = (
            proptest::collection::vec((0u32..4, 0u32..33, 0u16..4, any::<u32>(), 0u16..50), 1..12),
            proptest::collection::vec((any::<u32>(), 0u16..4, 0u8..3), 1..16),
        );
        runner
            .run(&strat, |(rules, flows)| {
                let entries: Vec<ClsEntry<usize>> = rules
                    .iter()
                    .enumerate()
                    .map(|(i, (kind, plen, port, addr, prio))| {
                        let mut m = Match::catchall();
                        m.set_field(FieldId::DlType, ETH_TYPE_IPV4 as u128, 0xffff);
                        let mask = if *plen == 0 {
                            0
                        } else {
                            u32::MAX << (32 - plen)
                        };
                        match kind {
                            0 => m.set_field(FieldId::NwDst, *addr as u128, mask as u128),
                            1 => m.set_field(FieldId::NwSrc, *addr as u128, mask as u128),
                            2 => {
                                m.set_field(FieldId::NwProto, 6, 0xff);
                                m.set_field(FieldId::TpDst, *port as u128, 0xfff0 | 3);
                            }
                            _ => m.set_field(FieldId::InPort, *port as u128, 0xffff),
                        }
                        ClsEntry::new(m, *prio, i)
                    })
                    .collect();
                let mut cls = Classifier::build(
                    entries[..entries.len() - 1].to_vec(),
                    &ClassifierConfig::default(),
                );
                cls.insert(entries.last().unwrap().clone());
                let built = Classifier::build(entries.clone(), &ClassifierConfig::default());
                for (addr, port, proto) in flows {
                    let mut f = ip_flow(addr);
                    f.nw_src = addr.rotate_left(7);
                    f.tp_dst = port;
                    f.in_port = port as u32;
                    f.nw_proto = [6, 17, 0][proto as usize];
                    let mut wc = FlowKey::default();
                    let got = cls.lookup(&f, &mut wc).map(|e| e.priority);
                    let mut wc2 = FlowKey::default();
                    let got_b = built.lookup(&f, &mut wc2).map(|e| e.data);
                    prop_assert_eq!(
                        cls.lookup(&f, &mut FlowKey::default()).map(|e| e.data),
                        got_b
                    );
                    prop_assert_eq!(wc, wc2);
                    let want = entries
                        .iter()
                        .filter(|e| e.matches.matches(&f))
                        .map(|e| e.priority)
                        .max();
                    prop_assert_eq!(got, want);
                    // Soundness of wc: any flow agreeing on wc gets the same
                    // priority. Probe by flipping unmasked bits.
                    let mut g = f;
                    for w in 0..flowcache::key::DP_WORDS {
                        let m = wc.words()[w];
                        g.words_mut()[w] ^= !m & 0x5555_5555_5555_5555;
                    }
                    // Keep dl_type valid (it is always in the megaflow).
                    g.dl_type = f.dl_type;
                    let got2 = cls.lookup_exact(&g).map(|e| e.priority);
                    if g.matches(&f, &wc) {
                        prop_assert_eq!(got2, got);
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
