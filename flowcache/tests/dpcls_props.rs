//! Property tests: the dpcls against a naive linear scan.
//!
//! Tie rule: when several installed megaflows match a packet, the dpcls may
//! return any of them (OVS semantics; the slow path never installs
//! overlapping megaflows). So the checks are: a megaflow is returned iff the
//! naive scan finds one, the returned one is installed, alive and matches the
//! packet, and, when the generated set has no overlaps, it is exactly the one
//! the naive scan finds.
//!
//! Contents (masks, keys, packets) come from a SplitMix64 seeded by proptest;
//! proptest controls the sizes and the seed.

use flowcache::dpcls::{Dpcls, InsertError, MAX_BATCH};
use flowcache::hash::hash_key;
use flowcache::key::{FlowKey, DP_WORDS, KEY_WORDS};
use flowcache::Megaflow;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Mask bits: dense, sparse, single bit, or all ones.
    fn mask_word(&mut self) -> u64 {
        match self.below(4) {
            0 => self.next(),
            1 => self.next() & self.next() & self.next(),
            2 => 1 << self.below(64),
            _ => u64::MAX,
        }
    }
    /// Key values from a small domain, so random packets sometimes match.
    fn value_word(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(4),
            _ => self.next(),
        }
    }
}

fn random_mask(rng: &mut Rng) -> FlowKey {
    let mut m = FlowKey::default();
    let n = 1 + rng.below(4);
    for _ in 0..n {
        let w = rng.below(DP_WORDS as u64) as usize;
        m.words_mut()[w] = rng.mask_word();
    }
    m
}

fn random_key(rng: &mut Rng) -> FlowKey {
    let mut k = FlowKey::default();
    for w in k.words_mut().iter_mut() {
        *w = rng.value_word();
    }
    k
}

fn masks(rng: &mut Rng, n: usize) -> Vec<FlowKey> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let m = random_mask(rng);
        if seen.insert(*m.words()) {
            out.push(m);
        }
    }
    out
}

fn overlap(a: &Megaflow, b: &Megaflow) -> bool {
    (0..DP_WORDS).all(|i| {
        (a.key().words()[i] ^ b.key().words()[i]) & a.mask().words()[i] & b.mask().words()[i] == 0
    })
}

/// A packet matching `mf`: its key with random bits outside the mask
/// (OpenFlow-only words random too).
fn packet_for(rng: &mut Rng, mf: &Megaflow) -> FlowKey {
    let mut k = *mf.key();
    for i in 0..KEY_WORDS {
        let r = rng.value_word();
        k.words_mut()[i] |= r & !mf.mask().words()[i];
    }
    k
}

fn packets(rng: &mut Rng, flows: &[Arc<Megaflow>], n: usize) -> Vec<FlowKey> {
    (0..n)
        .map(|_| {
            if !flows.is_empty() && rng.below(2) == 0 {
                let mf = &flows[rng.below(flows.len() as u64) as usize];
                let mut k = packet_for(rng, mf);
                if rng.below(4) == 0 {
                    // Near miss: flip one datapath bit.
                    let w = rng.below(DP_WORDS as u64) as usize;
                    k.words_mut()[w] ^= 1 << rng.below(64);
                }
                k
            } else {
                random_key(rng)
            }
        })
        .collect()
}

fn naive<'a>(flows: &'a [Arc<Megaflow>], key: &FlowKey) -> Vec<&'a Arc<Megaflow>> {
    flows
        .iter()
        .filter(|m| !m.is_dead() && m.matches(key))
        .collect()
}

/// Looks `pkts` up in bursts with random maps and checks every result
/// against the naive scan over `installed`.
fn check_lookups(
    rng: &mut Rng,
    cls: &Dpcls,
    installed: &[Arc<Megaflow>],
    pkts: &[FlowKey],
    exact: bool,
) -> Result<(), TestCaseError> {
    let sentinel = Arc::new(Megaflow::new(
        u64::MAX,
        &FlowKey::default(),
        &FlowKey::default(),
        Vec::new().into(),
        0,
    ));
    for burst in pkts.chunks(MAX_BATCH) {
        let map = match rng.below(3) {
            0 => rng.next() as u32,
            _ => u32::MAX,
        } & if burst.len() == 32 {
            u32::MAX
        } else {
            (1u32 << burst.len()) - 1
        };
        let refs: Vec<&FlowKey> = burst.iter().collect();
        // SMC keys: the real hash, or a weak one (collisions, stale slots).
        let weak = rng.below(2) == 0;
        let hashes: Vec<u32> = burst
            .iter()
            .map(|k| {
                if weak {
                    hash_key(k) & 0x1f
                } else {
                    hash_key(k)
                }
            })
            .collect();
        let mut res = [Some(&sentinel); MAX_BATCH];
        let r = match rng.below(4) {
            0 => cls.lookup_batch(burst, map, &mut res),
            1 => cls.lookup_batch(&refs, map, &mut res),
            _ => cls.lookup_batch_hashed(&refs, &hashes, map, &mut res),
        };
        prop_assert_eq!(r.hits & !map, 0);
        prop_assert_eq!(r.smc_hits & !r.hits, 0);
        let sub_hits = (r.hits & !r.smc_hits).count_ones();
        prop_assert!(r.subtable_lookups >= sub_hits);
        prop_assert!(r.subtable_lookups <= sub_hits * cls.n_subtables() as u32);
        for (i, key) in burst.iter().enumerate() {
            if map >> i & 1 == 0 {
                prop_assert!(
                    Arc::ptr_eq(res[i].unwrap(), &sentinel),
                    "result outside map written"
                );
                continue;
            }
            let want = naive(installed, key);
            prop_assert_eq!(
                res[i].is_some(),
                !want.is_empty(),
                "packet {}: hit mismatch",
                i
            );
            prop_assert_eq!(r.hits >> i & 1 == 1, !want.is_empty());
            if let Some(got) = res[i] {
                prop_assert!(got.matches(key));
                prop_assert!(!got.is_dead());
                prop_assert!(
                    want.iter().any(|w| Arc::ptr_eq(w, got)),
                    "returned megaflow not installed"
                );
                if exact {
                    prop_assert_eq!(want.len(), 1);
                    prop_assert!(Arc::ptr_eq(want[0], got));
                }
            }
            // The single lookup agrees.
            prop_assert_eq!(cls.lookup(key).is_some(), !want.is_empty());
            // So does the SMC path, now that the SMC may hold the packet.
            let mut one = [None];
            let h = [hashes[i]];
            let r1 = cls.lookup_batch_hashed(core::slice::from_ref(key), &h, 1, &mut one);
            prop_assert_eq!(one[0].is_some(), !want.is_empty());
            prop_assert_eq!(r1.hits, !want.is_empty() as u32);
            if let Some(got) = one[0] {
                prop_assert!(got.matches(key) && !got.is_dead());
                prop_assert!(want.iter().any(|w| Arc::ptr_eq(w, got)));
                if exact {
                    prop_assert!(Arc::ptr_eq(want[0], got));
                }
            }
        }
    }
    Ok(())
}

fn check_structure(cls: &Dpcls, installed: &[Arc<Megaflow>]) -> Result<(), TestCaseError> {
    prop_assert_eq!(cls.len(), installed.len());
    let ids: HashSet<u64> = cls.iter().map(|m| m.id).collect();
    let want: HashSet<u64> = installed.iter().map(|m| m.id).collect();
    prop_assert_eq!(ids, want);
    let masks: HashSet<[u64; KEY_WORDS]> = installed.iter().map(|m| *m.mask().words()).collect();
    prop_assert_eq!(cls.n_subtables(), masks.len());
    let mut total = 0;
    for st in cls.subtables() {
        prop_assert!(!st.is_empty());
        total += st.len();
        for m in st.iter() {
            prop_assert_eq!(m.mask(), st.mask());
        }
    }
    prop_assert_eq!(total, installed.len());
    for m in installed {
        prop_assert!(Arc::ptr_eq(cls.get(m.id).unwrap(), m));
    }
    Ok(())
}

fn build(
    rng: &mut Rng,
    n_masks: usize,
    n_flows: usize,
    non_overlapping: bool,
) -> Result<(Dpcls, Vec<Arc<Megaflow>>), TestCaseError> {
    let ms = masks(rng, n_masks);
    let mut cls = Dpcls::new();
    cls.set_smc_entries([0, 16, 1 << 20][rng.below(3) as usize]);
    // One-pass (small tables) or prefetching lookup.
    cls.set_small_table_limit([0, 256][rng.below(2) as usize]);
    let mut installed: Vec<Arc<Megaflow>> = Vec::new();
    for id in 0..n_flows as u64 {
        let mask = &ms[rng.below(ms.len() as u64) as usize];
        let mf = Arc::new(Megaflow::new(
            id,
            &random_key(rng),
            mask,
            Vec::new().into(),
            0,
        ));
        if non_overlapping && installed.iter().any(|o| overlap(o, &mf)) {
            continue;
        }
        let dup = installed
            .iter()
            .any(|o| o.mask() == mf.mask() && o.key() == mf.key());
        match cls.insert(mf.clone()) {
            Ok(()) => {
                prop_assert!(!dup);
                installed.push(mf);
            }
            Err(InsertError::DuplicateKey(o)) => {
                prop_assert!(dup);
                prop_assert!(o.key() == mf.key() && o.mask() == mf.mask());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
    }
    Ok((cls, installed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any set (overlaps allowed): hit iff naive hit, the result matches.
    #[test]
    fn lookup_agrees_with_naive_scan(
        seed in any::<u64>(),
        n_masks in 1usize..=64,
        n_flows in 0usize..300,
        n_pkts in 1usize..200,
    ) {
        let mut rng = Rng(seed);
        let (mut cls, installed) = build(&mut rng, n_masks, n_flows, false)?;
        check_structure(&cls, &installed)?;
        let pkts = packets(&mut rng, &installed, n_pkts);
        check_lookups(&mut rng, &cls, &installed, &pkts, false)?;
        cls.optimize();
        check_lookups(&mut rng, &cls, &installed, &pkts, false)?;
    }

    /// Non-overlapping set: the result is exactly the naive scan's.
    #[test]
    fn non_overlapping_lookup_is_exact(
        seed in any::<u64>(),
        n_masks in 1usize..=64,
        n_flows in 0usize..300,
        n_pkts in 1usize..200,
    ) {
        let mut rng = Rng(seed);
        let (mut cls, installed) = build(&mut rng, n_masks, n_flows, true)?;
        let pkts = packets(&mut rng, &installed, n_pkts);
        check_lookups(&mut rng, &cls, &installed, &pkts, true)?;
        cls.optimize();
        check_lookups(&mut rng, &cls, &installed, &pkts, true)?;
    }

    /// Random insert / remove / mark-dead / optimize sequences (no overlaps
    /// among live megaflows) keep the classifier equal to the model.
    #[test]
    fn insert_remove_sequences(
        seed in any::<u64>(),
        n_masks in 1usize..=16,
        ops in prop::collection::vec(0u8..10, 1..150),
    ) {
        let mut rng = Rng(seed);
        let ms = masks(&mut rng, n_masks);
        let mut cls = Dpcls::new();
        cls.set_smc_entries([16, 1 << 20][rng.below(2) as usize]);
        cls.set_small_table_limit([0, 256][rng.below(2) as usize]);
        let mut installed: Vec<Arc<Megaflow>> = Vec::new();
        let mut next_id = 0u64;
        for op in ops {
            match op {
                0..=4 => {
                    let mask = &ms[rng.below(ms.len() as u64) as usize];
                    // Sometimes reuse an installed key (duplicate / dead replacement).
                    let key = if !installed.is_empty() && rng.below(4) == 0 {
                        *installed[rng.below(installed.len() as u64) as usize].key()
                    } else {
                        random_key(&mut rng)
                    };
                    let mf = Arc::new(Megaflow::new(next_id, &key, mask, Vec::new().into(), 0));
                    next_id += 1;
                    if installed.iter().any(|o| !o.is_dead() && overlap(o, &mf)) {
                        // The slow path never installs an overlapping flow,
                        // except an exact duplicate, which must be refused.
                        let dup = installed.iter().find(|o| !o.is_dead() && o.mask() == mf.mask() && o.key() == mf.key());
                        if let Some(d) = dup {
                            match cls.insert(mf.clone()) {
                                Err(InsertError::DuplicateKey(o)) => prop_assert!(Arc::ptr_eq(&o, d)),
                                other => prop_assert!(false, "expected DuplicateKey, got {:?}", other.map(|_| ())),
                            }
                        }
                        continue;
                    }
                    cls.insert(mf.clone()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                    // A dead megaflow with the same key and mask was replaced.
                    installed.retain(|o| !(o.is_dead() && o.mask() == mf.mask() && o.key() == mf.key()));
                    installed.push(mf);
                }
                5 | 6 => {
                    if !installed.is_empty() {
                        let i = rng.below(installed.len() as u64) as usize;
                        let m = installed.swap_remove(i);
                        let r = cls.remove(m.id);
                        prop_assert!(r.is_some_and(|r| Arc::ptr_eq(&r, &m)));
                        prop_assert!(m.is_dead());
                    }
                    prop_assert!(cls.remove(u64::MAX).is_none());
                }
                7 => {
                    if !installed.is_empty() {
                        let i = rng.below(installed.len() as u64) as usize;
                        installed[i].mark_dead();
                    }
                }
                8 => cls.optimize(),
                _ => {
                    let live: Vec<Arc<Megaflow>> = installed.iter().filter(|m| !m.is_dead()).cloned().collect();
                    let pkts = packets(&mut rng, &live, 64);
                    check_lookups(&mut rng, &cls, &installed, &pkts, true)?;
                }
            }
            check_structure(&cls, &installed)?;
        }
        let live: Vec<Arc<Megaflow>> = installed.iter().filter(|m| !m.is_dead()).cloned().collect();
        let pkts = packets(&mut rng, &live, 64);
        check_lookups(&mut rng, &cls, &installed, &pkts, true)?;
        // Expire everything through remove_if.
        let gone = cls.remove_if(|_| true);
        prop_assert_eq!(gone.len(), installed.len());
        prop_assert!(cls.is_empty());
        prop_assert_eq!(cls.n_subtables(), 0);
    }
}

/// Many flows in one subtable (table growth) and the hit counts.
#[test]
fn large_subtable() {
    let mut rng = Rng(7);
    let mask = FlowKey {
        nw_src: u32::MAX,
        nw_dst: u32::MAX,
        tp_dst: u16::MAX,
        ..FlowKey::default()
    };
    let mut cls = Dpcls::new();
    cls.set_small_table_limit(0);
    let mut flows = Vec::new();
    let mut seen = HashMap::new();
    for id in 0..20_000u64 {
        let k = FlowKey {
            nw_src: rng.next() as u32,
            nw_dst: rng.next() as u32,
            tp_dst: rng.next() as u16,
            ..FlowKey::default()
        };
        if seen.insert((k.nw_src, k.nw_dst, k.tp_dst), id).is_some() {
            continue;
        }
        let mf = Arc::new(Megaflow::new(id, &k, &mask, Vec::new().into(), 0));
        cls.insert(mf.clone()).unwrap();
        flows.push(mf);
    }
    for mf in &flows {
        let k = packet_for(&mut rng, mf);
        assert!(Arc::ptr_eq(cls.lookup(&k).unwrap(), mf));
    }
    assert_eq!(cls.subtables().next().unwrap().hits(), flows.len() as u64);
    for mf in flows.iter().step_by(2) {
        cls.remove(mf.id).unwrap();
    }
    for (i, mf) in flows.iter().enumerate() {
        let k = packet_for(&mut rng, mf);
        assert_eq!(cls.lookup(&k).is_some(), i % 2 == 1);
    }
}
