//! The exact-match cache (OVS `emc_cache`): per PMD, packet key → megaflow.
//!
//! * 8192 entries; a 32-bit key hash ([`crate::hash::hash_key`], computed
//!   once per packet by the pipeline) gives two candidate slots, bits 0..13
//!   and 13..26, as OVS does.
//! * A hit needs the stored hash and all 33 datapath words to be equal, and
//!   the megaflow to be alive: entries whose megaflow is dead are misses
//!   (they are cleared by [`Emc::sweep_one`] or reused by an insert; lookups
//!   take `&self`, so they cannot clear them).
//! * Insertion is probabilistic ([`Emc::maybe_insert`], 1 in
//!   `insert_inv_prob`, default 100) to avoid thrashing with many flows.
//! * The victim of an insert is, in order: the slot holding the same key,
//!   an empty slot, a slot with a dead megaflow, else the slot whose stored
//!   hash is smaller (OVS's rule: a cheap pseudo-random choice).
//!
//! Storage is structure-of-arrays: the hashes (32 KiB) and the megaflow
//! pointers (64 KiB) are dense, the keys (1.5 MiB) are 3 cache lines each,
//! only read after a hash match.
//!
//! The 33-word key compare uses AVX2 when the CPU has it (run-time
//! detection; ~25% cheaper hits), with a scalar fallback; both are tested
//! to agree.
//!
//! Dead entries are swept one per [`Emc::sweep_one`] call (OVS
//! `emc_cache_slow_sweep`); a dead entry is a miss until then.
//!
//! The EMC is owned by one thread; no locks, no atomics except reading the
//! megaflow's dead flag. Lookups take `&self` and return references into the
//! cache, so the pipeline does its inserts (`&mut self`) after it is done
//! with the batch's results:
//! `lookup_batch` → dpcls for the misses → execute → `maybe_insert` for the
//! packets that hit in dpcls.

#[cfg(target_arch = "x86_64")]
use crate::cpu::eq_words_avx2;
use crate::cpu::prefetch;
use crate::key::{FlowKey, DP_WORDS};
use crate::megaflow::Megaflow;
use core::borrow::Borrow;
use std::sync::Arc;

/// log2 of the number of entries.
pub const EMC_SHIFT: u32 = 13;
/// Number of entries.
pub const EMC_ENTRIES: usize = 1 << EMC_SHIFT;
const EMC_MASK: u32 = EMC_ENTRIES as u32 - 1;
/// Default inverse insertion probability (OVS `emc-insert-inv-prob`).
pub const DEFAULT_EMC_INSERT_INV_PROB: u32 = 100;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct EmcKey([u64; DP_WORDS]);

/// The two candidate slots of a hash.
#[inline(always)]
fn slots(hash: u32) -> (usize, usize) {
    (
        (hash & EMC_MASK) as usize,
        ((hash >> EMC_SHIFT) & EMC_MASK) as usize,
    )
}

#[inline(always)]
fn dp_words(key: &FlowKey) -> &[u64; DP_WORDS] {
    key.words()[..DP_WORDS].try_into().unwrap()
}

/// Branch-free compare of 33 words.
#[inline(always)]
fn eq_words(a: &[u64; DP_WORDS], b: &[u64; DP_WORDS]) -> bool {
    let mut d = 0;
    for i in 0..DP_WORDS {
        d |= a[i] ^ b[i];
    }
    d == 0
}

/// Exact-match cache of one PMD.
pub struct Emc {
    hashes: Box<[u32]>,
    flows: Box<[Option<Arc<Megaflow>>]>,
    keys: Box<[EmcKey]>,
    /// `u32::MAX / insert_inv_prob` (insert when a draw is `<=` this).
    threshold: u32,
    inv_prob: u32,
    rng: u32,
    sweep_pos: usize,
    len: usize,
    /// Use the AVX2 key compare (detected at run time).
    avx2: bool,
}

impl Default for Emc {
    fn default() -> Self {
        Emc::new()
    }
}

impl core::fmt::Debug for Emc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Emc")
            .field("len", &self.len)
            .field("insert_inv_prob", &self.inv_prob)
            .finish()
    }
}

impl Emc {
    /// An empty EMC with the default insertion probability (1/100).
    pub fn new() -> Emc {
        Emc::with_insert_inv_prob(DEFAULT_EMC_INSERT_INV_PROB)
    }

    /// An empty EMC inserting with probability `1/inv_prob` (0: disabled).
    pub fn with_insert_inv_prob(inv_prob: u32) -> Emc {
        let mut e = Emc {
            hashes: vec![0u32; EMC_ENTRIES].into_boxed_slice(),
            flows: (0..EMC_ENTRIES).map(|_| None).collect(),
            keys: vec![EmcKey([0; DP_WORDS]); EMC_ENTRIES].into_boxed_slice(),
            threshold: 0,
            inv_prob: 0,
            rng: 0x2545_f491,
            sweep_pos: 0,
            len: 0,
            avx2: false,
        };
        e.set_simd(true);
        e.set_insert_inv_prob(inv_prob);
        e
    }

    /// Sets the inverse insertion probability: 0 disables the EMC (and
    /// clears it; lookups then miss without touching memory), 1 inserts
    /// every time, N inserts 1 time in N.
    pub fn set_insert_inv_prob(&mut self, inv_prob: u32) {
        self.inv_prob = inv_prob;
        self.threshold = u32::MAX.checked_div(inv_prob).unwrap_or(0);
        if inv_prob == 0 {
            self.clear();
        }
    }

    /// The inverse insertion probability (0: disabled).
    pub fn insert_inv_prob(&self) -> u32 {
        self.inv_prob
    }

    /// False when the EMC is disabled (`insert_inv_prob == 0`); the
    /// pipeline can then skip it altogether.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.inv_prob != 0
    }

    /// Number of occupied entries (dead ones included until swept).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is occupied.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Enables (if the CPU has AVX2) or disables the SIMD key compare of
    /// [`Self::lookup_batch`]; on by default. Results are identical either
    /// way (tested); this exists for tests and benchmarks.
    pub fn set_simd(&mut self, on: bool) {
        self.avx2 = on && crate::cpu::has_avx2();
    }

    /// True when lookups use the AVX2 compare.
    pub fn simd(&self) -> bool {
        self.avx2
    }

    /// Looks one packet up.
    #[inline]
    pub fn lookup(&self, hash: u32, key: &FlowKey) -> Option<&Arc<Megaflow>> {
        self.lookup_with::<false>(hash, key)
    }

    /// `AVX2 = true` only from [`Self::lookup_batch_avx2`] (whose contract
    /// is that the CPU has AVX2): the compare then uses AVX2 instructions.
    #[inline(always)]
    fn lookup_with<const AVX2: bool>(&self, hash: u32, key: &FlowKey) -> Option<&Arc<Megaflow>> {
        let (a, b) = slots(hash);
        self.probe::<AVX2>(a, hash, key)
            .or_else(|| self.probe::<AVX2>(b, hash, key))
    }

    #[inline(always)]
    fn probe<const AVX2: bool>(
        &self,
        i: usize,
        hash: u32,
        key: &FlowKey,
    ) -> Option<&Arc<Megaflow>> {
        if self.hashes[i] != hash {
            return None;
        }
        let eq = |a: &[u64; DP_WORDS], b: &[u64; DP_WORDS]| {
            #[cfg(target_arch = "x86_64")]
            if AVX2 {
                // SAFETY: `AVX2` is true only under `lookup_batch_avx2`,
                // which is only called when the CPU supports AVX2.
                return unsafe { eq_words_avx2(a, b) };
            }
            eq_words(a, b)
        };
        match &self.flows[i] {
            Some(mf) if eq(&self.keys[i].0, dp_words(key)) && !mf.is_dead() => Some(mf),
            _ => None,
        }
    }

    /// Looks up the packets `i` whose bit is set in `map` (`keys.len()` and
    /// `hashes.len()` ≥ the highest set bit + 1, at most 32 packets).
    /// Writes `results[i]` for every packet of `map` (`None` on a miss) and
    /// returns the bitmap of hits. For the whole batch first, the key of the
    /// slot whose hash matches is prefetched; then keys are compared (AVX2
    /// when available, see [`Self::set_simd`]).
    #[inline]
    pub fn lookup_batch<'a, K: Borrow<FlowKey>>(
        &'a self,
        hashes: &[u32],
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
    ) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only set when `cpu::has_avx2()` said yes.
            return unsafe { self.lookup_batch_avx2(hashes, keys, map, results) };
        }
        self.lookup_batch_impl::<false, K>(hashes, keys, map, results)
    }

    /// [`Self::lookup_batch_impl`] compiled with AVX2 enabled, so that the
    /// inlined probes use the 256-bit key compare.
    ///
    /// # Safety
    /// The CPU must support AVX2 (`self.avx2`, set from
    /// [`crate::cpu::has_avx2`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn lookup_batch_avx2<'a, K: Borrow<FlowKey>>(
        &'a self,
        hashes: &[u32],
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
    ) -> u32 {
        self.lookup_batch_impl::<true, K>(hashes, keys, map, results)
    }

    #[inline(always)]
    fn lookup_batch_impl<'a, const AVX2: bool, K: Borrow<FlowKey>>(
        &'a self,
        hashes: &[u32],
        keys: &[K],
        map: u32,
        results: &mut [Option<&'a Arc<Megaflow>>],
    ) -> u32 {
        if !self.is_enabled() {
            let mut m = map;
            while m != 0 {
                results[m.trailing_zeros() as usize] = None;
                m &= m - 1;
            }
            return 0;
        }
        // Pass 1: prefetch the key of the slot whose hash matches (the hash
        // array is small and hot).
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let h = hashes[i];
            let (a, b) = slots(h);
            let c = if self.hashes[a] == h { a } else { b };
            let k = self.keys[c].0.as_ptr() as *const u8;
            prefetch(k);
            prefetch(k.wrapping_add(64));
            prefetch(k.wrapping_add(128));
        }
        // Pass 2: probe.
        let mut hits = 0;
        let mut m = map;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let r = self.lookup_with::<AVX2>(hashes[i], keys[i].borrow());
            hits |= (r.is_some() as u32) << i;
            results[i] = r;
        }
        hits
    }

    /// One draw of the insertion PRNG: true with probability
    /// `1/insert_inv_prob` (never when disabled).
    #[inline]
    pub fn should_insert(&mut self) -> bool {
        if self.threshold == 0 {
            return false;
        }
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x <= self.threshold
    }

    /// Inserts with probability `1/insert_inv_prob`; returns whether it did.
    #[inline]
    pub fn maybe_insert(&mut self, hash: u32, key: &FlowKey, mf: &Arc<Megaflow>) -> bool {
        if self.should_insert() {
            self.insert(hash, key, mf);
            true
        } else {
            false
        }
    }

    /// Inserts unconditionally (even when disabled). `mf` must match `key`.
    pub fn insert(&mut self, hash: u32, key: &FlowKey, mf: &Arc<Megaflow>) {
        debug_assert!(mf.matches(key), "EMC insert of a non-matching megaflow");
        let (a, b) = slots(hash);
        let k = dp_words(key);
        for i in [a, b] {
            if let Some(old) = &self.flows[i] {
                if self.hashes[i] == hash && eq_words(&self.keys[i].0, k) {
                    if !Arc::ptr_eq(old, mf) {
                        self.flows[i] = Some(mf.clone());
                    }
                    return;
                }
            }
        }
        // Victim: empty, then dead, then the smaller stored hash.
        let rank = |i: usize| match &self.flows[i] {
            None => (0u8, 0u32),
            Some(m) if m.is_dead() => (1, 0),
            Some(_) => (2, self.hashes[i]),
        };
        let i = if rank(b) < rank(a) { b } else { a };
        if self.flows[i].is_none() {
            self.len += 1;
        }
        self.hashes[i] = hash;
        self.keys[i].0 = *k;
        self.flows[i] = Some(mf.clone());
    }

    /// Clears one entry if its megaflow is dead, advancing a cursor; call it
    /// once per PMD iteration to purge dead entries over time.
    #[inline]
    pub fn sweep_one(&mut self) {
        let i = self.sweep_pos;
        self.sweep_pos = (i + 1) & (EMC_ENTRIES - 1);
        if matches!(&self.flows[i], Some(mf) if mf.is_dead()) {
            self.flows[i] = None;
            self.len -= 1;
        }
    }

    /// Clears every entry whose megaflow is dead.
    pub fn sweep_all(&mut self) {
        for _ in 0..EMC_ENTRIES {
            self.sweep_one();
        }
    }

    /// Empties the cache.
    pub fn clear(&mut self) {
        self.flows.iter_mut().for_each(|f| *f = None);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_key;

    fn mf_for(key: &FlowKey, id: u64) -> Arc<Megaflow> {
        let mask = FlowKey {
            nw_src: u32::MAX,
            ..FlowKey::default()
        };
        Arc::new(Megaflow::new(id, key, &mask, Vec::new().into(), 0))
    }

    fn key(i: u32) -> FlowKey {
        FlowKey {
            nw_src: i,
            tp_src: 7,
            ..FlowKey::default()
        }
    }

    #[test]
    fn insert_lookup_dead_sweep() {
        let mut emc = Emc::with_insert_inv_prob(1);
        let k = key(1);
        let h = hash_key(&k);
        assert!(emc.lookup(h, &k).is_none());
        let mf = mf_for(&k, 1);
        assert!(emc.maybe_insert(h, &k, &mf));
        assert!(Arc::ptr_eq(emc.lookup(h, &k).unwrap(), &mf));
        // Same hash, other key: miss.
        assert!(emc.lookup(h, &key(2)).is_none());
        // Same key, other hash: miss.
        assert!(emc.lookup(h ^ 1, &k).is_none());
        assert_eq!(emc.len(), 1);
        mf.mark_dead();
        assert!(emc.lookup(h, &k).is_none());
        emc.sweep_all();
        assert_eq!(emc.len(), 0);
    }

    #[test]
    fn collisions_use_both_slots_and_evict() {
        let mut emc = Emc::with_insert_inv_prob(1);
        // Three keys, all with the same hash: only two fit.
        let h = 0x0123_4567;
        let ks: Vec<FlowKey> = (0..3).map(key).collect();
        let mfs: Vec<_> = ks
            .iter()
            .enumerate()
            .map(|(i, k)| mf_for(k, i as u64))
            .collect();
        emc.insert(h, &ks[0], &mfs[0]);
        emc.insert(h, &ks[1], &mfs[1]);
        assert!(emc.lookup(h, &ks[0]).is_some());
        assert!(emc.lookup(h, &ks[1]).is_some());
        emc.insert(h, &ks[2], &mfs[2]);
        assert!(emc.lookup(h, &ks[2]).is_some());
        let alive = (0..2).filter(|&i| emc.lookup(h, &ks[i]).is_some()).count();
        assert_eq!(alive, 1);
        assert_eq!(emc.len(), 2);
        // A dead slot is preferred as victim.
        let survivor = (0..3)
            .find(|&i| emc.lookup(h, &ks[i]).is_some() && i != 2)
            .unwrap();
        mfs[2].mark_dead();
        let k3 = key(3);
        let m3 = mf_for(&k3, 3);
        emc.insert(h, &k3, &m3);
        assert!(emc.lookup(h, &ks[survivor]).is_some());
        assert!(emc.lookup(h, &k3).is_some());
    }

    #[test]
    fn insertion_probability() {
        let mut emc = Emc::new();
        let n = (0..100_000).filter(|_| emc.should_insert()).count();
        assert!((700..1300).contains(&n), "{n}");
        emc.set_insert_inv_prob(0);
        assert!(!emc.is_enabled());
        assert!((0..1000).all(|_| !emc.should_insert()));
        emc.set_insert_inv_prob(1);
        assert!((0..1000).all(|_| emc.should_insert()));
    }

    #[test]
    fn avx2_compare_equals_scalar() {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::has_avx2() {
            let mut x = 0x1234_5678_9abc_def1u64;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for _ in 0..2000 {
                let a: [u64; DP_WORDS] = core::array::from_fn(|_| next());
                let mut b = a;
                if next() % 2 == 0 {
                    let w = (next() % DP_WORDS as u64) as usize;
                    b[w] ^= 1 << (next() % 64);
                }
                // SAFETY: AVX2 detected above.
                assert_eq!(unsafe { eq_words_avx2(&a, &b) }, eq_words(&a, &b));
            }
        }
    }

    #[test]
    fn batch_simd_equals_scalar() {
        let mut emc = Emc::with_insert_inv_prob(1);
        let keys: Vec<FlowKey> = (0..32).map(key).collect();
        let hashes: Vec<u32> = keys.iter().map(hash_key).collect();
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            emc.insert(hashes[i], k, &mf_for(k, i as u64));
        }
        let mut probe = keys.clone();
        for (i, k) in probe.iter_mut().enumerate() {
            if i % 4 == 0 {
                k.words_mut()[i % DP_WORDS] ^= 1 << (i % 64);
            }
        }
        let mut run = |simd: bool| {
            emc.set_simd(simd);
            let mut r = [None; 32];
            let h = emc.lookup_batch(&hashes, &probe, u32::MAX, &mut r);
            (h, r.map(|m| m.map(|m| m.id)))
        };
        let (h1, r1) = run(false);
        let (h2, r2) = run(true);
        assert_eq!(h1, h2);
        assert_eq!(r1, r2);
        assert_eq!(h1.count_ones(), 16);
    }

    #[test]
    fn batch_matches_single() {
        let mut emc = Emc::with_insert_inv_prob(1);
        let keys: Vec<FlowKey> = (0..32).map(key).collect();
        let hashes: Vec<u32> = keys.iter().map(hash_key).collect();
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            emc.insert(hashes[i], k, &mf_for(k, i as u64));
        }
        let mut res = [None; 32];
        let hits = emc.lookup_batch(&hashes, &keys, u32::MAX, &mut res);
        for i in 0..32 {
            assert_eq!(hits >> i & 1 == 1, i % 3 != 0);
            assert_eq!(
                res[i].map(|m| m.id),
                emc.lookup(hashes[i], &keys[i]).map(|m| m.id)
            );
        }
        let refs: Vec<&FlowKey> = keys.iter().collect();
        assert_eq!(emc.lookup_batch(&hashes, &refs, 0b110, &mut res), 0b110);
    }
}
