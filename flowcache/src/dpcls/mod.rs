//! The megaflow classifier (OVS `dpcls`): tuple-space search.
//!
//! One [`Subtable`] per distinct megaflow mask. A subtable knows the
//! non-zero words of its mask (indices and values, precomputed) and keeps a
//! hash table of its megaflows keyed by their *packed* masked words (the
//! mask's non-zero words, ANDed, in order).
//!
//! A burst is looked up subtable by subtable: every unresolved packet
//! against the first subtable, the packets still unresolved against the
//! second, and so on (a `u32` bitmap of pending packets). Within a subtable
//! the burst goes through three passes, so that the cache misses of the 32
//! packets overlap instead of queueing behind each other (OVS
//! `cmap_find_batch`): (1) pack + hash every packet and prefetch its
//! bucket; (2) scan the buckets' 32-bit signatures and prefetch the
//! candidate megaflows; (3) compare the packed words and check `dead`.
//! Small subtables (≤ 256 buckets, cache-resident) skip the prefetching and
//! do it in one pass. The pack/hash/compare loops are unrolled for masks of
//! 1 to 8 words.
//!
//! The hash table ([`FlowTable`]) is a two-choice bucketized table in the
//! style of OVS's cmap: 64-byte buckets of 5 (signature, megaflow) slots;
//! an entry lives in its primary bucket, or in its secondary one when the
//! primary is full, counted in the primary's `spill`, so a lookup touches a
//! single bucket unless that count is non-zero. It grows at 50% load. (An
//! earlier version used `hashbrown::HashTable`, which cannot prefetch: with
//! 100k flows it cost 5-6× more per lookup.) `hashbrown` still indexes the
//! megaflows by id.
//!
//! Subtables count their hits; [`Dpcls::optimize`], called periodically by
//! the owner (OVS: every second), sorts them by hits so that the hot ones
//! are searched first, and resets the counts. New subtables go last.
//!
//! **SMC.** [`Dpcls::lookup_batch_hashed`] first consults a signature match
//! cache ([`crate::smc`]) keyed by the packet hash, which maps to a slot of
//! the classifier's megaflow slab; a hit is verified with the subtable's
//! mask words. This skips the subtable walk: with 16 or 64 subtables it is
//! 5-15× cheaper than the walk.
//!
//! **Overlapping megaflows.** The slow path guarantees that at most one
//! installed megaflow matches any packet. If several do anyway, a lookup
//! returns the first matching one in the current subtable order, i.e. *one
//! of them*, not a well-defined one (as in OVS).
//!
//! **Dead megaflows** (marked by [`Megaflow::mark_dead`] before the owner
//! got to remove them) are treated as absent by lookups, and replaced by an
//! insert of the same key and mask.
//!
//! The classifier is owned by one thread (the PMD); lookups take `&self`
//! (hit counters are `Cell`s), changes take `&mut self`. It is `Send`, not
//! `Sync`. The flow limit is the installer's business ([`Dpcls::len`]);
//! idle expiry uses [`Dpcls::iter`] / [`Dpcls::remove_if`] with the
//! megaflows' `stats.used()`.

use crate::cpu::prefetch;
use crate::hash::{hash_words, hash_words_with, key_word, MaskWords};
use crate::key::{FlowKey, DP_WORDS};
use crate::megaflow::Megaflow;
use crate::smc::{Smc, DEFAULT_SMC_ENTRIES};
use core::borrow::Borrow;
use core::cell::{Cell, OnceCell};
use hashbrown::HashMap;

mod flow_table;
use std::sync::Arc;

/// Maximum burst size of [`Dpcls::lookup_batch`] (bits of the `u32` map).
pub const MAX_BATCH: usize = 32;

/// Outcome of a batch lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchResult {
    /// Bitmap of the packets that found a megaflow.
    pub hits: u32,
    /// Sum over the hits of the rank (1-based) of the subtable that matched,
    /// i.e. the subtables searched per hit (OVS "subtable lookups/hit" =
    /// `subtable_lookups / hits.count_ones()`; SMC hits not included).
    pub subtable_lookups: u32,
    /// Bitmap of the hits served by the SMC ([`Dpcls::lookup_batch_hashed`]).
    pub smc_hits: u32,
}

/// Why [`Dpcls::insert`] refused a megaflow.
#[derive(Clone, Debug)]
pub enum InsertError {
    /// A live megaflow with the same mask and key is installed.
    DuplicateKey(Arc<Megaflow>),
    /// A megaflow with the same id is installed.
    DuplicateId(Arc<Megaflow>),
}

impl core::fmt::Display for InsertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InsertError::DuplicateKey(m) => write!(f, "same key and mask as megaflow {}", m.id),
            InsertError::DuplicateId(m) => write!(f, "megaflow id {} already installed", m.id),
        }
    }
}

impl std::error::Error for InsertError {}

pub use flow_table::FlowTable;
use flow_table::{secondary, sig_of, SMALL_TABLE_BUCKETS, WAYS};

/// The megaflows sharing one mask.
pub struct Subtable {
    mw: MaskWords,
    /// A shared copy of `mw` for the slab entries (SMC verification).
    mw_shared: Arc<MaskWords>,
    mask: FlowKey,
    mask_hash: u64,
    table: FlowTable,
    hits: Cell<u64>,
}

impl Subtable {
    fn new(mask: &FlowKey) -> Subtable {
        let mw = MaskWords::new(mask);
        Subtable {
            mw,
            mw_shared: Arc::new(mw),
            mask: *mask,
            mask_hash: hash_words(mask.dp_words()),
            table: FlowTable::default(),
            hits: Cell::new(0),
        }
    }

    /// The mask.
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }

    /// Number of megaflows.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the subtable holds no megaflow (never for a subtable in a
    /// [`Dpcls`]: empty subtables are removed).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Hits since the last [`Dpcls::optimize`].
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Number of non-zero mask words.
    pub fn n_words(&self) -> usize {
        self.mw.n
    }

    /// The hash table.
    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// The megaflows.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Megaflow>> {
        self.table.iter()
    }

    /// Looks up the packets of `map`; writes `results` for the hits only and
    /// returns the hit bitmap. `N` is the number of mask words (0: read it
    /// at run time); a constant `N` unrolls the pack/hash/compare loops.
    #[inline(always)]
    fn lookup_batch_n<'a, const N: usize, K: Borrow<FlowKey>>(
        &'a self,
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
        small: usize,
    ) -> u32 {
        let n = if N == 0 { self.mw.n } else { N };
        let idx = &self.mw.idx;
        let bits = &self.mw.bits;
        let buckets = &*self.table.buckets;
        let tmask = self.table.mask;
        let sec = crate::hash::secrets();

        if buckets.len() <= small && self.table.stash.is_empty() {
            // Small table (cache-resident): one pass, no prefetching.
            let mut found = 0;
            let mut m = map;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let w = keys[i].borrow().words();
                let mut packed = [0u64; DP_WORDS];
                for j in 0..n {
                    packed[j] = key_word(w, idx[j] as usize) & bits[j];
                }
                let h = hash_words_with(&packed[..n], sec);
                let sig = sig_of(h);
                let mut b = &buckets[h as usize & tmask];
                let mut sm = b.matches(sig);
                if sm == 0 && b.spill != 0 {
                    b = &buckets[secondary(h) & tmask];
                    sm = b.matches(sig);
                }
                while sm != 0 {
                    let j = sm.trailing_zeros() as usize;
                    sm &= sm - 1;
                    if let Some(mf) = &b.flows[j] {
                        let p = mf.packed_array();
                        let mut d = 0;
                        for k in 0..n {
                            d |= p[k] ^ packed[k];
                        }
                        if d == 0 {
                            if !mf.is_dead() {
                                results[i] = Some(mf);
                                found |= 1 << i;
                            }
                            break;
                        }
                    }
                }
            }
            return found;
        }

        // Pass 1: pack, hash, prefetch the primary bucket.
        let mut hashes = [0u64; MAX_BATCH];
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let w = keys[i].borrow().words();
            let mut packed = [0u64; DP_WORDS];
            for j in 0..n {
                packed[j] = key_word(w, idx[j] as usize) & bits[j];
            }
            let h = hash_words_with(&packed[..n], sec);
            hashes[i] = h;
            prefetch(&buckets[h as usize & tmask]);
        }

        // Pass 2: signatures; prefetch the candidates' first two lines.
        // Branch-free but for the (rare) spill: whether a packet hits is
        // unpredictable. A packet goes to pass 3 (bit in `cmap`) with its
        // candidate, or with `None` when only a slow search can tell
        // (empty slot with a stale signature, stash).
        let stash = !self.table.stash.is_empty();
        let mut cand: [Option<&'a Arc<Megaflow>>; MAX_BATCH] = [None; MAX_BATCH];
        let mut cmap = 0u32;
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let h = hashes[i];
            let sig = sig_of(h);
            let mut b = &buckets[h as usize & tmask];
            let mut sm = b.matches(sig);
            if sm == 0 && b.spill != 0 {
                b = &buckets[secondary(h) & tmask];
                sm = b.matches(sig);
            }
            let j = (sm.trailing_zeros() as usize).min(WAYS - 1);
            let c = if sm != 0 { b.flows[j].as_ref() } else { None };
            let p = c.map_or(core::ptr::null(), |c| Arc::as_ptr(c) as *const u8);
            prefetch(p);
            prefetch(p.wrapping_add(64));
            cand[i] = c;
            cmap |= ((sm != 0 || stash) as u32) << i;
        }

        // Pass 3: compare.
        let mut found = 0;
        let mut m = cmap;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let key = keys[i].borrow();
            let w = key.words();
            let mut d = 1;
            if let Some(mf) = cand[i] {
                let p = mf.packed_array();
                d = 0;
                for j in 0..n {
                    d |= (key_word(w, idx[j] as usize) & bits[j]) ^ p[j];
                }
            }
            let mf = if d == 0 {
                cand[i].unwrap()
            } else {
                // Signature collision, or stash: search properly.
                match self.find_slow(hashes[i], key) {
                    Some(f) => f,
                    None => continue,
                }
            };
            if !mf.is_dead() {
                results[i] = Some(mf);
                found |= 1 << i;
            }
        }
        found
    }

    #[cold]
    #[inline(never)]
    fn find_slow(&self, h: u64, key: &FlowKey) -> Option<&Arc<Megaflow>> {
        let mut packed = [0u64; DP_WORDS];
        self.mw.pack(key, &mut packed);
        self.table.find_packed(h, &packed[..self.mw.n])
    }

    #[inline]
    fn lookup_batch<'a, K: Borrow<FlowKey>>(
        &'a self,
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
        small: usize,
    ) -> u32 {
        match self.mw.n {
            1 => self.lookup_batch_n::<1, K>(keys, map, results, small),
            2 => self.lookup_batch_n::<2, K>(keys, map, results, small),
            3 => self.lookup_batch_n::<3, K>(keys, map, results, small),
            4 => self.lookup_batch_n::<4, K>(keys, map, results, small),
            5 => self.lookup_batch_n::<5, K>(keys, map, results, small),
            6 => self.lookup_batch_n::<6, K>(keys, map, results, small),
            7 => self.lookup_batch_n::<7, K>(keys, map, results, small),
            8 => self.lookup_batch_n::<8, K>(keys, map, results, small),
            _ => self.lookup_batch_n::<0, K>(keys, map, results, small),
        }
    }
}

/// A megaflow and its subtable's mask words (what the SMC needs to verify a
/// hit without touching the subtable).
struct SlabEntry {
    mf: Arc<Megaflow>,
    mw: Arc<MaskWords>,
}

impl SlabEntry {
    /// True when `key` matches the megaflow: compares the packed words
    /// (the megaflow's first two lines) under the subtable's mask words.
    #[inline(always)]
    fn matches(&self, key: &FlowKey) -> bool {
        let w = key.words();
        let n = self.mw.n;
        let mut d = 0;
        for ((&i, &b), &p) in self.mw.idx[..n]
            .iter()
            .zip(&self.mw.bits[..n])
            .zip(&self.mf.packed_array()[..n])
        {
            d |= (key_word(w, i as usize) & b) ^ p;
        }
        d == 0
    }
}

/// The megaflow classifier of one PMD (or one PMD and in_port), with its
/// signature match cache.
pub struct Dpcls {
    /// In search order.
    subtables: Vec<Subtable>,
    /// Installed megaflows by slot (the SMC's index); `None` = free.
    slab: Vec<Option<SlabEntry>>,
    free: Vec<u32>,
    by_id: HashMap<u64, u32>,
    /// Allocated by the first [`Self::lookup_batch_hashed`].
    smc: OnceCell<Smc>,
    smc_entries: usize,
    /// Subtables of at most this many buckets use the one-pass lookup.
    small_table: usize,
}

impl Default for Dpcls {
    fn default() -> Self {
        Dpcls {
            subtables: Vec::new(),
            slab: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            smc: OnceCell::new(),
            smc_entries: DEFAULT_SMC_ENTRIES,
            small_table: SMALL_TABLE_BUCKETS,
        }
    }
}

impl core::fmt::Debug for Dpcls {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dpcls")
            .field("megaflows", &self.len())
            .field("subtables", &self.subtables.len())
            .field("smc_entries", &self.smc_entries)
            .finish()
    }
}

impl Dpcls {
    /// An empty classifier, with an SMC of [`DEFAULT_SMC_ENTRIES`] entries
    /// (8 MiB, allocated by the first [`Self::lookup_batch_hashed`]).
    pub fn new() -> Dpcls {
        Dpcls::default()
    }

    /// Sets the SMC size in entries (0 disables it) and empties it.
    pub fn set_smc_entries(&mut self, entries: usize) {
        self.smc_entries = entries;
        self.smc = OnceCell::new();
    }

    /// Tests and benchmarks: subtables of at most `buckets` buckets are
    /// searched in one pass, larger ones with the prefetching passes
    /// (default 256; 0 = always prefetch). Results do not depend on it.
    #[doc(hidden)]
    pub fn set_small_table_limit(&mut self, buckets: usize) {
        self.small_table = buckets;
    }

    /// The SMC size in entries (0: disabled).
    pub fn smc_entries(&self) -> usize {
        self.smc_entries
    }

    /// Number of installed megaflows.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no megaflow is installed.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// The subtables in search order.
    pub fn subtables(&self) -> impl Iterator<Item = &Subtable> {
        self.subtables.iter()
    }

    /// Every installed megaflow (arbitrary order).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Megaflow>> {
        self.slab.iter().flatten().map(|e| &e.mf)
    }

    /// The megaflow with this id.
    pub fn get(&self, id: u64) -> Option<&Arc<Megaflow>> {
        let slot = *self.by_id.get(&id)?;
        self.slab[slot as usize].as_ref().map(|e| &e.mf)
    }

    fn add_to_slab(&mut self, mf: &Arc<Megaflow>, mw: Arc<MaskWords>) {
        let e = SlabEntry { mf: mf.clone(), mw };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(e);
                s
            }
            None => {
                assert!(
                    self.slab.len() < u32::MAX as usize - 1,
                    "too many megaflows"
                );
                self.slab.push(Some(e));
                (self.slab.len() - 1) as u32
            }
        };
        mf.set_slot(slot);
        self.by_id.insert(mf.id, slot);
    }

    fn remove_from_slab(&mut self, id: u64) -> Option<Arc<Megaflow>> {
        let slot = self.by_id.remove(&id)?;
        let e = self.slab[slot as usize].take();
        self.free.push(slot);
        e.map(|e| e.mf)
    }

    fn subtable_pos(&self, mask: &FlowKey) -> Option<usize> {
        let h = hash_words(mask.dp_words());
        self.subtables
            .iter()
            .position(|s| s.mask_hash == h && s.mask.dp_words() == mask.dp_words())
    }

    /// Installs a megaflow. Fails if a megaflow with the same id, or a live
    /// one with the same mask and key, is installed (a dead one with the
    /// same mask and key is replaced and dropped from the classifier).
    pub fn insert(&mut self, mf: Arc<Megaflow>) -> Result<(), InsertError> {
        if let Some(old) = self.get(mf.id) {
            return Err(InsertError::DuplicateId(old.clone()));
        }
        let pos = match self.subtable_pos(mf.mask()) {
            Some(p) => p,
            None => {
                self.subtables.push(Subtable::new(mf.mask()));
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[pos];
        let mw = st.mw_shared.clone();
        if let Some(e) = st.table.find_same(&mf) {
            if !e.is_dead() {
                return Err(InsertError::DuplicateKey(e.clone()));
            }
            let old = st.table.replace_same(mf.clone()).ok().unwrap();
            self.remove_from_slab(old.id);
        } else {
            st.table.insert(mf.clone());
        }
        self.add_to_slab(&mf, mw);
        Ok(())
    }

    /// Removes the megaflow with this id, marks it dead (so the EMC drops
    /// it) and returns it. Removing the last megaflow of a subtable removes
    /// the subtable.
    pub fn remove(&mut self, id: u64) -> Option<Arc<Megaflow>> {
        let mf = self.remove_from_slab(id)?;
        mf.mark_dead();
        let pos = self
            .subtable_pos(mf.mask())
            .expect("installed megaflow without a subtable");
        let st = &mut self.subtables[pos];
        let present = st.table.remove(&mf);
        assert!(present, "installed megaflow missing from its subtable");
        if st.table.is_empty() {
            self.subtables.remove(pos);
        }
        Some(mf)
    }

    /// Removes (and marks dead) every megaflow for which `pred` is true,
    /// e.g. `|m| now - m.stats.used() > max_idle`; returns them.
    pub fn remove_if(
        &mut self,
        mut pred: impl FnMut(&Arc<Megaflow>) -> bool,
    ) -> Vec<Arc<Megaflow>> {
        let ids: Vec<u64> = self.iter().filter(|m| pred(m)).map(|m| m.id).collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Removes (and marks dead) everything.
    pub fn clear(&mut self) {
        for mf in self.iter() {
            mf.mark_dead();
        }
        self.by_id.clear();
        self.slab.clear();
        self.free.clear();
        self.subtables.clear();
        if let Some(smc) = self.smc.get() {
            smc.clear();
        }
    }

    /// Re-sorts the subtables by hits since the last call (most first,
    /// stable) and resets the counts.
    pub fn optimize(&mut self) {
        self.subtables
            .sort_by_key(|s| core::cmp::Reverse(s.hits.get()));
        for s in &self.subtables {
            s.hits.set(0);
        }
    }

    /// Looks up the packets whose bit is set in `map` (`keys[i]` for bit
    /// `i`; at most [`MAX_BATCH`] packets). `results[i]` is set for every
    /// packet of `map`: the matching megaflow, or `None`.
    /// This searches the subtables only; see [`Self::lookup_batch_hashed`]
    /// for the SMC.
    #[inline]
    pub fn lookup_batch<'a, K: Borrow<FlowKey>>(
        &'a self,
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
    ) -> BatchResult {
        let mut m = map;
        while m != 0 {
            results[m.trailing_zeros() as usize] = None;
            m &= m - 1;
        }
        self.search_subtables(keys, map, results)
    }

    /// Like [`Self::lookup_batch`], but first through the SMC, keyed by
    /// `hashes[i]` (the packets' [`crate::hash::hash_key`], as for the EMC);
    /// the packets found in the subtables are then cached in the SMC. Same
    /// results as [`Self::lookup_batch`] (for non-overlapping megaflows).
    /// The SMC is bypassed while there is a single subtable (a subtable
    /// probe is then cheaper than an SMC hit).
    #[inline]
    pub fn lookup_batch_hashed<'a, K: Borrow<FlowKey>>(
        &'a self,
        keys: &[K],
        hashes: &[u32],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
    ) -> BatchResult {
        let mut m = map;
        while m != 0 {
            results[m.trailing_zeros() as usize] = None;
            m &= m - 1;
        }
        if self.smc_entries == 0 || self.subtables.len() < 2 {
            // With one subtable the SMC costs more than it saves.
            return self.search_subtables(keys, map, results);
        }
        let smc = self.smc.get_or_init(|| Smc::new(self.smc_entries));
        // Pass 1: prefetch the SMC buckets.
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            smc.prefetch(hashes[i]);
        }
        // Pass 2: signature → slot; prefetch the slab entry.
        let mut slots = [u32::MAX; MAX_BATCH];
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(s) = smc.find(hashes[i]) {
                slots[i] = s;
                prefetch(self.slab.as_ptr().wrapping_add(s as usize));
            }
        }
        // Pass 3: slab entry → megaflow; prefetch its first two lines.
        let mut cand: [Option<&'a SlabEntry>; MAX_BATCH] = [None; MAX_BATCH];
        let mut cmap = 0u32;
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if let Some(Some(e)) = self.slab.get(slots[i] as usize) {
                let p = Arc::as_ptr(&e.mf) as *const u8;
                prefetch(p);
                prefetch(p.wrapping_add(64));
                cand[i] = Some(e);
                cmap |= 1 << i;
            }
        }
        // Pass 4: verify.
        let mut smc_hits = 0u32;
        let mut m = cmap;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let e = cand[i].unwrap();
            if e.matches(keys[i].borrow()) && !e.mf.is_dead() {
                results[i] = Some(&e.mf);
                smc_hits |= 1 << i;
            }
        }
        let mut r = self.search_subtables(keys, map & !smc_hits, results);
        let mut m = r.hits;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            smc.insert(hashes[i], results[i].unwrap().slot());
        }
        r.hits |= smc_hits;
        r.smc_hits = smc_hits;
        r
    }

    /// Searches the subtables for the packets of `map` (results already
    /// cleared).
    #[inline(always)]
    fn search_subtables<'a, K: Borrow<FlowKey>>(
        &'a self,
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
    ) -> BatchResult {
        let mut remaining = map;
        let mut lookups = 0;
        for (rank, st) in self.subtables.iter().enumerate() {
            if remaining == 0 {
                break;
            }
            let found = st.lookup_batch(keys, remaining, results, self.small_table);
            if found != 0 {
                let n = found.count_ones();
                st.hits.set(st.hits.get() + n as u64);
                lookups += n * (rank as u32 + 1);
                remaining &= !found;
            }
        }
        BatchResult {
            hits: map & !remaining,
            subtable_lookups: lookups,
            smc_hits: 0,
        }
    }

    /// Looks one packet up (counts the hit like [`Self::lookup_batch`]).
    pub fn lookup(&self, key: &FlowKey) -> Option<&Arc<Megaflow>> {
        let mut r = [None];
        self.lookup_batch(core::slice::from_ref(key), 1, &mut r);
        r[0]
    }

    /// The installed live megaflow with exactly this mask and key (masked
    /// here), if any: what an installer checks before installing.
    pub fn find_exact(&self, key: &FlowKey, mask: &FlowKey) -> Option<&Arc<Megaflow>> {
        let probe = Megaflow::new(0, key, mask, Vec::new().into(), 0);
        let pos = self.subtable_pos(probe.mask())?;
        self.subtables[pos]
            .table
            .find_same(&probe)
            .filter(|m| !m.is_dead())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mf(id: u64, nw_src: u32, mask_src: u32, tp_dst: Option<u16>) -> Arc<Megaflow> {
        let mut k = FlowKey::default();
        let mut m = FlowKey::default();
        k.nw_src = nw_src;
        m.nw_src = mask_src;
        if let Some(p) = tp_dst {
            k.tp_dst = p;
            m.tp_dst = 0xffff;
        }
        Arc::new(Megaflow::new(id, &k, &m, Vec::new().into(), 0))
    }

    fn pkt(nw_src: u32, tp_dst: u16) -> FlowKey {
        FlowKey {
            nw_src,
            tp_dst,
            tp_src: 1234,
            ..FlowKey::default()
        }
    }

    #[test]
    fn thread_safety() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Dpcls>();
        send::<crate::emc::Emc>();
        sync::<crate::emc::Emc>();
        send::<Arc<Megaflow>>();
        sync::<Megaflow>();
    }

    #[test]
    fn insert_lookup_remove() {
        let mut c = Dpcls::new();
        c.insert(mf(1, 0x0a00_0000, 0xff00_0000, None)).unwrap();
        c.insert(mf(2, 0x0b01_0000, 0xffff_0000, Some(80))).unwrap();
        c.insert(mf(3, 0x0b01_0000, 0xffff_0000, Some(443)))
            .unwrap();
        assert_eq!(c.n_subtables(), 2);
        assert_eq!(c.len(), 3);
        assert_eq!(c.lookup(&pkt(0x0a01_0203, 9)).unwrap().id, 1);
        assert_eq!(c.lookup(&pkt(0x0b01_0203, 443)).unwrap().id, 3);
        assert!(c.lookup(&pkt(0x0b01_0203, 22)).is_none());
        assert!(matches!(
            c.insert(mf(4, 0x0a00_0000, 0xff00_0000, None)),
            Err(InsertError::DuplicateKey(m)) if m.id == 1
        ));
        assert!(matches!(
            c.insert(mf(1, 0x0c00_0000, 0xff00_0000, None)),
            Err(InsertError::DuplicateId(_))
        ));
        assert_eq!(
            c.find_exact(&pkt(0x0b01_ffff, 80), c.get(2).unwrap().mask())
                .unwrap()
                .id,
            2
        );
        let r = c.remove(1).unwrap();
        assert!(r.is_dead());
        assert_eq!(c.n_subtables(), 1);
        assert!(c.lookup(&pkt(0x0a01_0203, 9)).is_none());
        assert!(c.remove(1).is_none());
        // Dead but not removed: ignored, and replaced by an insert.
        c.get(2).unwrap().mark_dead();
        assert!(c.lookup(&pkt(0x0b01_0203, 80)).is_none());
        c.insert(mf(5, 0x0b01_0000, 0xffff_0000, Some(80))).unwrap();
        assert!(c.get(2).is_none());
        assert_eq!(c.lookup(&pkt(0x0b01_0203, 80)).unwrap().id, 5);
        assert_eq!(c.len(), 2);
        let gone = c.remove_if(|m| m.id == 3);
        assert_eq!(gone.len(), 1);
        c.clear();
        assert!(c.is_empty() && c.n_subtables() == 0);
    }

    #[test]
    fn optimize_ranks_by_hits() {
        let mut c = Dpcls::new();
        c.insert(mf(1, 0x0a00_0000, 0xff00_0000, None)).unwrap();
        c.insert(mf(2, 0x0b01_0000, 0xffff_0000, Some(80))).unwrap();
        let keys = [pkt(0x0b01_0001, 80); 32];
        let mut res = [None; 32];
        let r = c.lookup_batch(&keys, u32::MAX, &mut res);
        assert_eq!(r.hits, u32::MAX);
        assert_eq!(r.subtable_lookups, 64);
        c.optimize();
        assert_eq!(c.subtables().next().unwrap().n_words(), 2);
        let mut res = [None; 32];
        let r = c.lookup_batch(&keys, 0xff, &mut res);
        assert_eq!(
            r,
            BatchResult {
                hits: 0xff,
                subtable_lookups: 8,
                smc_hits: 0,
            }
        );
        assert_eq!(c.subtables().next().unwrap().hits(), 8);
    }

    /// Forced hash collisions (weak hash functions): signature collisions,
    /// spills, identical hashes (stash) must not change any result.
    #[test]
    fn weak_hashes() {
        use crate::hash::WEAK_HASH;
        fn sum(w: &[u64]) -> u64 {
            w.iter().fold(0u64, |a, x| {
                a.wrapping_add(x.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            })
        }
        let weak: [fn(&[u64]) -> u64; 6] = [
            // Crowded primary buckets, spread secondaries: spills, no stash.
            |w| sum(w) & 0x3f | (sum(w) >> 8 & 0xfff) << 43,
            |_| 0,
            |w| sum(w) & 0x3,
            |w| (sum(w) & 0x1) << 32 | (sum(w) >> 60),
            |w| sum(w) & 0xffff_0000_00ff,
            |w| sum(w).rotate_left(43) & 0x7,
        ];
        for (f, small) in weak
            .iter()
            .flat_map(|&f| [(f, 0), (f, SMALL_TABLE_BUCKETS)])
        {
            WEAK_HASH.with(|w| w.set(Some(f)));
            let mut c = Dpcls::new();
            c.set_small_table_limit(small);
            let mut flows = Vec::new();
            for id in 0..300u64 {
                let m = mf(
                    id,
                    id as u32 * 0x100,
                    0xffff_ff00,
                    if id % 3 == 0 { Some(id as u16) } else { None },
                );
                c.insert(m.clone()).unwrap();
                flows.push(m);
            }
            let check = |c: &Dpcls, flows: &[Arc<Megaflow>]| {
                for m in flows {
                    let tp = if m.mask().tp_dst != 0 {
                        m.key().tp_dst
                    } else {
                        9999
                    };
                    let p = pkt(m.key().nw_src | 0x42, tp);
                    let keys = [p; 3];
                    let mut res = [None; 3];
                    c.lookup_batch(&keys, 0b101, &mut res);
                    let live = flows.iter().find(|f| f.matches(&p) && !f.is_dead());
                    assert_eq!(res[0].map(|r| r.id), live.map(|f| f.id));
                    assert_eq!(res[2].map(|r| r.id), live.map(|f| f.id));
                    assert!(c.get(m.id).is_some());
                    assert!(c
                        .find_exact(m.key(), m.mask())
                        .map_or(m.is_dead(), |f| Arc::ptr_eq(f, m)));
                }
                let mut p = pkt(0x0100_0042, 1);
                p.nw_src = 0xdead_0000;
                assert!(c.lookup(&p).is_none());
            };
            check(&c, &flows);
            if f(&[0]) == 0 && f(&[1, 2]) == 0 {
                assert!(c.subtables().any(|s| s.table().n_stashed() > 0));
            }
            // Dead ones are misses; replacing them works in any location.
            for m in flows.iter().step_by(7) {
                m.mark_dead();
            }
            check(&c, &flows);
            for m in flows.iter_mut().step_by(7) {
                let n = Arc::new(Megaflow::new(
                    m.id + 1000,
                    m.key(),
                    m.mask(),
                    Vec::new().into(),
                    0,
                ));
                c.insert(n.clone()).unwrap();
                *m = n;
            }
            check(&c, &flows);
            // Remove two thirds (shrinks the tables), check the rest.
            let (gone, kept): (Vec<_>, Vec<_>) =
                flows.into_iter().enumerate().partition(|(i, _)| i % 3 != 0);
            for (_, m) in &gone {
                assert!(c.remove(m.id).is_some());
            }
            let kept: Vec<_> = kept.into_iter().map(|(_, m)| m).collect();
            check(&c, &kept);
            assert_eq!(c.len(), kept.len());
            assert_eq!(
                c.subtables().map(|s| s.iter().count()).sum::<usize>(),
                kept.len()
            );
            WEAK_HASH.with(|w| w.set(None));
        }
    }
}
