//! The hash table of one dpcls subtable: a two-choice bucketized table in
//! the style of OVS's cmap (see the [`super`] module documentation). The
//! subtable's batch lookup reads the buckets directly (`pub(super)`
//! fields) to pipeline its prefetches.

use crate::cpu::{eq_mask_u32x4, prefetch};
use crate::megaflow::Megaflow;
use std::sync::Arc;

pub(super) const WAYS: usize = 5;
/// Tables up to this many buckets (16 KiB, 160 megaflows at most) are
/// searched in a single pass, without the prefetching passes.
pub(super) const SMALL_TABLE_BUCKETS: usize = 256;

/// 64 bytes: 5 signatures, the spill count, 5 megaflow pointers.
#[repr(C, align(64))]
#[derive(Default)]
pub(super) struct Bucket {
    pub(super) sigs: [u32; WAYS],
    /// Entries whose primary bucket is this one but which live in their
    /// secondary bucket.
    pub(super) spill: u32,
    pub(super) flows: [Option<Arc<Megaflow>>; WAYS],
}

impl Bucket {
    /// Bitmap of the slots whose signature is `sig` (possibly empty ones:
    /// an empty slot keeps a stale signature).
    #[inline(always)]
    pub(super) fn matches(&self, sig: u32) -> u32 {
        let (first4, _) = self.sigs.split_first_chunk::<4>().expect("WAYS >= 4");
        eq_mask_u32x4(first4, sig) | ((self.sigs[4] == sig) as u32) << 4
    }

    fn free_slot(&self) -> Option<usize> {
        self.flows.iter().position(|f| f.is_none())
    }
}

#[inline(always)]
pub(super) fn sig_of(h: u64) -> u32 {
    (h >> 32) as u32
}

#[inline(always)]
pub(super) fn secondary(h: u64) -> usize {
    // Bits 43.. then 0.. (rotated): independent of the primary index (the
    // low bits) for tables of up to 2^21 buckets.
    h.rotate_right(43) as usize
}

/// Where an entry lives.
#[derive(Clone, Copy)]
enum Loc {
    Bucket(usize, usize),
    Stash(usize),
}

/// A two-choice bucketized hash table of megaflows, keyed by their packed
/// words (see the module documentation).
///
/// Entries that fit in neither of their buckets make the table double,
/// but only up to 4× the size its load calls for; past that (many entries
/// with colliding hashes, e.g. crafted ones) they go to a stash that is
/// searched linearly by the lookups that miss the buckets: the table
/// degrades instead of growing without bound.
pub struct FlowTable {
    pub(super) buckets: Box<[Bucket]>,
    pub(super) mask: usize,
    len: usize,
    pub(super) stash: Vec<Arc<Megaflow>>,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::with_buckets(1)
    }
}

impl FlowTable {
    fn with_buckets(n: usize) -> FlowTable {
        debug_assert!(n.is_power_of_two());
        FlowTable {
            buckets: (0..n).map(|_| Bucket::default()).collect(),
            mask: n - 1,
            len: 0,
            stash: Vec::new(),
        }
    }

    /// Number of megaflows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of buckets (5 slots each; the table grows at 50% load).
    pub fn n_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Number of entries in the overflow stash (0 unless hashes collide
    /// massively).
    pub fn n_stashed(&self) -> usize {
        self.stash.len()
    }

    /// Every megaflow.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Megaflow>> {
        self.buckets
            .iter()
            .flat_map(|b| b.flows.iter().flatten())
            .chain(self.stash.iter())
    }

    /// Where the entry for which `eq` holds lives, among the entries with
    /// hash `h` (bucket entries are filtered by signature first).
    fn position(&self, h: u64, mut eq: impl FnMut(&Megaflow) -> bool) -> Option<Loc> {
        let sig = sig_of(h);
        let b1 = h as usize & self.mask;
        let check = |b: usize, eq: &mut dyn FnMut(&Megaflow) -> bool| {
            let bucket = &self.buckets[b];
            let mut m = bucket.matches(sig);
            while m != 0 {
                let j = m.trailing_zeros() as usize;
                m &= m - 1;
                if bucket.flows[j].as_ref().is_some_and(|f| eq(f)) {
                    return Some(Loc::Bucket(b, j));
                }
            }
            None
        };
        if let Some(l) = check(b1, &mut eq) {
            return Some(l);
        }
        if self.buckets[b1].spill != 0 {
            if let Some(l) = check(secondary(h) & self.mask, &mut eq) {
                return Some(l);
            }
        }
        self.stash
            .iter()
            .position(|e| e.packed_hash() == h && eq(e))
            .map(Loc::Stash)
    }

    fn get(&self, loc: Loc) -> &Arc<Megaflow> {
        match loc {
            Loc::Bucket(b, j) => self.buckets[b].flows[j].as_ref().unwrap(),
            Loc::Stash(k) => &self.stash[k],
        }
    }

    /// The entry with the same packed words as `mf`.
    pub fn find_same(&self, mf: &Megaflow) -> Option<&Arc<Megaflow>> {
        let loc = self.position(mf.packed_hash(), |e| e.packed() == mf.packed())?;
        Some(self.get(loc))
    }

    /// The entry whose packed words are `packed` (hash `h`).
    pub(super) fn find_packed(&self, h: u64, packed: &[u64]) -> Option<&Arc<Megaflow>> {
        let loc = self.position(h, |e| e.packed() == packed)?;
        Some(self.get(loc))
    }

    /// Replaces the entry with the same packed words as `mf` by `mf` and
    /// returns it; `Err(mf)` when there is none.
    pub(super) fn replace_same(
        &mut self,
        mf: Arc<Megaflow>,
    ) -> Result<Arc<Megaflow>, Arc<Megaflow>> {
        match self.position(mf.packed_hash(), |e| e.packed() == mf.packed()) {
            Some(Loc::Bucket(b, j)) => Ok(self.buckets[b].flows[j].replace(mf).unwrap()),
            Some(Loc::Stash(k)) => Ok(core::mem::replace(&mut self.stash[k], mf)),
            None => Err(mf),
        }
    }

    /// The most buckets the table may have for `len` entries.
    fn max_buckets(len: usize) -> usize {
        (len * 2 / WAYS + 1).next_power_of_two() * 4
    }

    /// Inserts `mf` (the caller made sure no entry has the same packed
    /// words).
    pub fn insert(&mut self, mf: Arc<Megaflow>) {
        self.len += 1;
        if self.len * 2 > self.buckets.len() * WAYS {
            self.resize(self.buckets.len() * 2);
        }
        let mut mf = mf;
        loop {
            match self.try_place(mf) {
                Ok(()) => return,
                Err(back) => mf = back,
            }
            if self.buckets.len() * 2 > Self::max_buckets(self.len) {
                self.stash.push(mf);
                return;
            }
            self.resize(self.buckets.len() * 2);
        }
    }

    fn try_place(&mut self, mf: Arc<Megaflow>) -> Result<(), Arc<Megaflow>> {
        let h = mf.packed_hash();
        let b1 = h as usize & self.mask;
        if let Some(j) = self.buckets[b1].free_slot() {
            self.buckets[b1].sigs[j] = sig_of(h);
            self.buckets[b1].flows[j] = Some(mf);
            return Ok(());
        }
        let b2 = secondary(h) & self.mask;
        if b2 != b1 {
            if let Some(j) = self.buckets[b2].free_slot() {
                self.buckets[b2].sigs[j] = sig_of(h);
                self.buckets[b2].flows[j] = Some(mf);
                self.buckets[b1].spill += 1;
                return Ok(());
            }
        }
        Err(mf)
    }

    /// Rebuilds with `n` buckets; what does not fit goes to the stash.
    fn resize(&mut self, n: usize) {
        /// How many entries ahead the megaflows are prefetched.
        const AHEAD: usize = 8;
        let mut t = FlowTable::with_buckets(n.max(1));
        t.len = self.len;
        let old = core::mem::take(&mut self.buckets);
        let stash = core::mem::take(&mut self.stash);
        let mut all: std::collections::VecDeque<Arc<Megaflow>> = old
            .into_vec()
            .into_iter()
            .flat_map(|b| b.flows.into_iter().flatten())
            .chain(stash)
            .collect();
        // Placing an entry reads its hash from the megaflow, a cache miss
        // per entry when the megaflows were installed long ago (a storm of
        // new flows doubles a large table every so often): prefetch the
        // hashes AHEAD entries in advance.
        for mf in all.iter().take(AHEAD) {
            prefetch(mf.packed_hash_addr());
        }
        while let Some(mf) = all.pop_front() {
            if let Some(next) = all.get(AHEAD) {
                prefetch(next.packed_hash_addr());
            }
            if let Err(mf) = t.try_place(mf) {
                t.stash.push(mf);
            }
        }
        *self = t;
    }

    /// Removes `mf` (by identity); returns whether it was present.
    pub fn remove(&mut self, mf: &Arc<Megaflow>) -> bool {
        let h = mf.packed_hash();
        match self.position(h, |e| core::ptr::eq(e, &**mf)) {
            None => return false,
            Some(Loc::Stash(k)) => {
                self.stash.swap_remove(k);
            }
            Some(Loc::Bucket(b, j)) => {
                self.buckets[b].flows[j] = None;
                let b1 = h as usize & self.mask;
                if b != b1 {
                    self.buckets[b1].spill -= 1;
                }
            }
        }
        self.len -= 1;
        if self.len * 16 < self.buckets.len() * WAYS && self.buckets.len() > 1 {
            self.resize(self.buckets.len() / 2);
        }
        true
    }
}
