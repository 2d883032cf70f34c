//! Property tests for the EMC: it never returns a megaflow that does not
//! match the packet, never a dead one, and a hit is always the megaflow
//! most recently inserted for exactly that key. Hash collisions are forced
//! by optionally using a tiny hash function.

use flowcache::emc::Emc;
use flowcache::hash::hash_key;
use flowcache::key::{FlowKey, DP_WORDS};
use flowcache::Megaflow;
use proptest::prelude::*;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    /// Insert (key, megaflow): the megaflow is chosen among those matching
    /// the key (or a fresh one).
    Insert {
        key: usize,
        pick: usize,
        forced: bool,
    },
    MarkDead(usize),
    Lookup(Vec<usize>),
    Sweep(u16),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..64, any::<usize>(), any::<bool>()).prop_map(|(key, pick, forced)| Op::Insert { key, pick, forced }),
        1 => any::<usize>().prop_map(Op::MarkDead),
        4 => prop::collection::vec(0usize..64, 1..=32).prop_map(Op::Lookup),
        1 => (0u16..9000).prop_map(Op::Sweep),
        1 => Just(Op::Clear),
    ]
}

/// 64 keys differing in few bits (so masks group them), with words in and
/// out of the datapath part.
fn keys() -> Vec<FlowKey> {
    (0..64u32)
        .map(|i| {
            let mut k = FlowKey {
                nw_src: 0x0a00_0000 | (i & 7),
                tp_dst: (i >> 3) as u16,
                in_port: 1,
                ..FlowKey::default()
            };
            k.regs[0] = i; // OpenFlow-only: ignored by the EMC
            k
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn emc_never_returns_wrong_or_dead(
        tiny_hash in any::<bool>(),
        inv_prob in prop_oneof![Just(1u32), Just(2), Just(100)],
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let keys = keys();
        let hash = |k: &FlowKey| if tiny_hash { (k.nw_src & 3) * 0x0100_2001 } else { hash_key(k) };
        // Masks: exact on nw_src+tp_dst, nw_src only, nw_src/30 only.
        let mut masks = vec![FlowKey::default(); 3];
        masks[0].nw_src = u32::MAX;
        masks[0].tp_dst = u16::MAX;
        masks[1].nw_src = u32::MAX;
        masks[2].nw_src = 0xffff_fffc;
        for m in &mut masks {
            m.in_port = u32::MAX;
        }
        let mut emc = Emc::with_insert_inv_prob(inv_prob);
        let mut flows: Vec<Arc<Megaflow>> = Vec::new();
        // Model: the last megaflow inserted per key (may have been evicted).
        let mut last: Vec<Option<Arc<Megaflow>>> = vec![None; keys.len()];
        for op in ops {
            match op {
                Op::Insert { key, pick, forced } => {
                    let k = &keys[key];
                    let matching: Vec<&Arc<Megaflow>> = flows.iter().filter(|m| m.matches(k)).collect();
                    let mf = if matching.is_empty() || pick % 3 == 0 {
                        let m = Arc::new(Megaflow::new(flows.len() as u64, k, &masks[pick % masks.len()], Vec::new().into(), 0));
                        flows.push(m.clone());
                        m
                    } else {
                        matching[pick % matching.len()].clone()
                    };
                    let inserted = if forced {
                        emc.insert(hash(k), k, &mf);
                        true
                    } else {
                        emc.maybe_insert(hash(k), k, &mf)
                    };
                    if inserted {
                        last[key] = Some(mf.clone());
                        let got = emc.lookup(hash(k), k);
                        if mf.is_dead() {
                            prop_assert!(got.is_none());
                        } else {
                            prop_assert!(got.is_some_and(|g| Arc::ptr_eq(g, &mf)));
                        }
                    }
                }
                Op::MarkDead(i) => {
                    if !flows.is_empty() {
                        flows[i % flows.len()].mark_dead();
                    }
                }
                Op::Lookup(idx) => {
                    let batch: Vec<&FlowKey> = idx.iter().map(|&i| &keys[i]).collect();
                    let hashes: Vec<u32> = batch.iter().map(|k| hash(k)).collect();
                    let map = if batch.len() == 32 { u32::MAX } else { (1u32 << batch.len()) - 1 };
                    let mut res = [None; 32];
                    let hits = emc.lookup_batch(&hashes, &batch, map, &mut res);
                    for (j, &ki) in idx.iter().enumerate() {
                        let k = &keys[ki];
                        prop_assert_eq!(hits >> j & 1 == 1, res[j].is_some());
                        if let Some(got) = res[j] {
                            prop_assert!(got.matches(k), "EMC returned a non-matching megaflow");
                            prop_assert!(!got.is_dead(), "EMC returned a dead megaflow");
                            let want = last[ki].as_ref();
                            prop_assert!(want.is_some_and(|w| Arc::ptr_eq(w, got)), "EMC returned a stale megaflow");
                        }
                        prop_assert_eq!(res[j].map(|m| m.id), emc.lookup(hashes[j], k).map(|m| m.id));
                    }
                }
                Op::Sweep(n) => {
                    for _ in 0..n {
                        emc.sweep_one();
                    }
                }
                Op::Clear => {
                    emc.clear();
                    prop_assert!(emc.is_empty());
                    last.iter_mut().for_each(|l| *l = None);
                }
            }
            prop_assert!(emc.len() <= 2 * keys.len());
        }
        // After a full sweep no dead megaflow is referenced any more.
        emc.sweep_all();
        let live = keys.iter().filter(|k| emc.lookup(hash(k), k).is_some()).count();
        prop_assert!(emc.len() >= live);
    }
}

/// Keys that differ only in an OpenFlow-only word share an entry; keys that
/// differ in any datapath word do not.
#[test]
fn compares_all_datapath_words() {
    let mut emc = Emc::with_insert_inv_prob(1);
    let base = FlowKey::default();
    let mf = Arc::new(Megaflow::new(
        1,
        &base,
        &FlowKey::default(),
        Vec::new().into(),
        0,
    ));
    let h = 0xdead_beef;
    emc.insert(h, &base, &mf);
    for w in 0..DP_WORDS {
        let mut k = base;
        k.words_mut()[w] ^= 1 << 63;
        assert!(emc.lookup(h, &k).is_none(), "word {w} ignored");
    }
    let mut k = base;
    k.regs[5] = 9;
    assert!(emc.lookup(h, &k).is_some());
}
