//! Hashing of flow keys for the caches.
//!
//! One primitive, [`hash_words`], serves every cache: the EMC hashes the 33
//! datapath words of a key ([`hash_key`]), a dpcls subtable hashes the
//! *packed* masked words of a key (the words where its mask is non-zero,
//! ANDed with the mask, in word order: [`hash_masked`]).
//!
//! The construction is XXH3's mid-size path: words are taken in pairs, each
//! pair is XORed with a per-position secret and multiplied 64×64→128 bits,
//! the two halves of the product are folded together (XOR), and the folded
//! products are summed. The pairs are independent, so the cost is bounded by
//! multiplier throughput (one `mul` per two words), not latency; an XXH3
//! avalanche finishes the hash.
//!
//! Megaflows are installed from packets, so an attacker who knew the
//! secrets could craft colliding keys (e.g. a word equal to its secret
//! zeroes a product). The secrets are therefore XORed with a random
//! per-process seed ([`secrets`]): hashes are stable within a process
//! only. (The dpcls table also survives collisions, degraded: see
//! [`crate::dpcls::FlowTable`].)

use crate::key::{FlowKey, DP_WORDS};

/// Per-position secrets (random odd constants). One per word position, so
/// pairs at different positions are mixed differently.
const SECRETS: [u64; 36] = [
    0xdaeb8ebd244a330d,
    0x685bd8519d0023db,
    0x959ef8713231c2cb,
    0xd1ea2fa4dd9af44d,
    0xa402cba46b82bddd,
    0x4f7580cd7b17a39f,
    0xc8b045b99d6fb287,
    0xceca0ca0c351e0a7,
    0x38987f53584df3c9,
    0xbb74476ee0b6e30f,
    0x9474c83868219521,
    0xa309f5fba2117b35,
    0xf901131499f29aad,
    0x6568525f65be34af,
    0xe61c980e7426b629,
    0xf330a10b9efe9905,
    0x39381640553d574d,
    0x0e6c783bd0d3aac1,
    0x992877185800058b,
    0xe2b445a3cb88bb31,
    0x42381838bf9d61af,
    0x475b2af9c112b40f,
    0x9d73761a2479742f,
    0xa5869770cc27fdbb,
    0x0ce9fcba3e066d3b,
    0x40254dfc5f952ddb,
    0xbe90976fa0b88c67,
    0xc764b0449a0fcae9,
    0x0d50e066aa379227,
    0x1c89878831d2174b,
    0x5192725a6354374f,
    0xccd9e6665a015063,
    0xc3e6acee47500cf7,
    0x3ccbcd51ad9bec8b,
    0xeaa54832abc0d043,
    0x1b447ae964c1c89b,
];

const PRIME_LEN: u64 = 0x9e37_79b9_7f4a_7c15;

static SEEDED: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();

/// The per-process secrets: [`SECRETS`] XORed with a random seed. Fetch
/// them once per burst and pass them to [`hash_words_with`] to avoid the
/// `OnceLock` check per packet.
pub type Secrets = [u64; 36];

/// The per-process secrets (initialised on first use).
#[inline(always)]
pub fn secrets() -> &'static Secrets {
    SEEDED.get_or_init(|| {
        use std::hash::{BuildHasher, RandomState};
        let seed = RandomState::new().hash_one(0x5eed_u64);
        let mut s = SECRETS;
        s.iter_mut().for_each(|x| *x ^= seed);
        s
    })
}

/// 64×64→128 multiply with the halves folded together.
#[inline(always)]
pub fn folded_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// XXH3 avalanche.
#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9e37_79f9);
    h ^ (h >> 32)
}

/// Sums the folded pair products of `words` (at most `SECRETS.len()` words).
#[inline(always)]
fn accumulate(words: &[u64], mut acc: u64, sec: &Secrets) -> u64 {
    debug_assert!(words.len() <= sec.len());
    let mut chunks = words.chunks_exact(2);
    let mut i = 0;
    for c in &mut chunks {
        acc = acc.wrapping_add(folded_mul(c[0] ^ sec[i], c[1] ^ sec[i + 1]));
        i += 2;
    }
    if let [w] = chunks.remainder() {
        acc = acc.wrapping_add(folded_mul(*w ^ sec[i], sec[i + 1]));
    }
    acc
}

/// 64-bit hash of a word sequence. Inlined, so a call with a slice of
/// constant length is fully unrolled.
#[inline(always)]
pub fn hash_words(words: &[u64]) -> u64 {
    hash_words_with(words, secrets())
}

/// [`hash_words`] with the secrets fetched by the caller ([`secrets`]).
#[inline(always)]
pub fn hash_words_with(words: &[u64], sec: &Secrets) -> u64 {
    #[cfg(test)]
    if let Some(f) = WEAK_HASH.with(|w| w.get()) {
        return f(words);
    }
    let len = words.len() as u64;
    if words.len() <= sec.len() {
        avalanche(accumulate(words, len.wrapping_mul(PRIME_LEN), sec))
    } else {
        hash_words_long(words, sec)
    }
}

#[cfg(test)]
thread_local! {
    /// Unit tests only: replaces [`hash_words`] on this thread (to force
    /// collisions in the tables).
    pub(crate) static WEAK_HASH: core::cell::Cell<Option<WeakHash>> =
        const { core::cell::Cell::new(None) };
}

#[cfg(test)]
pub(crate) type WeakHash = fn(&[u64]) -> u64;

#[cold]
#[inline(never)]
fn hash_words_long(words: &[u64], sec: &Secrets) -> u64 {
    let mut acc = (words.len() as u64).wrapping_mul(PRIME_LEN);
    for block in words.chunks(sec.len()) {
        acc = avalanche(accumulate(block, acc, sec));
    }
    acc
}

/// Folds a 64-bit hash to 32 bits.
#[inline(always)]
pub fn fold32(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

/// The EMC hash of a key: a 32-bit hash of its datapath words (the
/// OpenFlow-only words are ignored). Computed once per packet by the
/// pipeline and passed to [`crate::emc::Emc`] and the SMC.
///
/// The 33 words are XOR-folded into the 6 that vary most between flows
/// (metadata, MACs, dl_type, IPv4 addresses, IP proto/TOS/TTL/frag, L4
/// ports; see [`FOLDS`]) and those 6 are hashed. Keys that differ only in a
/// way the fold cancels collide, which costs a cache slot, never a wrong
/// answer: every cache hit is verified against the key.
#[inline]
pub fn hash_key(key: &FlowKey) -> u32 {
    let w = key.words();
    let fold = |words: &[usize]| words.iter().fold(0u64, |acc, &i| acc ^ w[i]);
    let f: [u64; 6] = core::array::from_fn(|j| fold(FOLDS[j]));
    fold32(hash_words(&f))
}

/// Which datapath words [`hash_key`] XORs into each of its 6 hashed words:
/// each of the 33 exactly once. The first word of each group is the one
/// set for an Ethernet/IPv4/TCP-or-UDP frame (see [`hash_key_ipv4_l4`]).
const FOLDS: [&[usize]; 6] = [
    &[0, 24],                             // recirc_id, in_port; ct_state/zone/mark
    &[9, 25, 27],                         // dl_dst, dl_src (start); ct_nw_src/dst; ct_label
    &[10, 11, 12, 26, 28],                // dl_src (end), dl_type; VLANs; MPLS; ct ports; ct_label
    &[13, 2, 14, 16, 19, 21],             // nw_src/dst; tun_id; IPv6; ND; ARP
    &[18, 1, 3, 15, 17, 20, 22],          // frag/tos/ttl/proto; dp_hash/mark; ...
    &[23, 4, 5, 6, 7, 8, 29, 30, 31, 32], // tp_src/dst, tcp_flags; tunnel rest; ct IPv6
];
// The ct tuple words are never folded with the packet words they copy
// (ct_nw_src/dst with nw_src/dst, ct ports with tp ports, ct IPv6 with
// IPv6): in the original direction they are equal, and the XOR would
// cancel, giving every recirculated packet of a connection table one hash.

/// [`hash_key`] of a key whose only non-zero datapath words are those an
/// Ethernet/IPv4/L4 frame of an untracked packet sets (0, 1, 9, 10, 13,
/// 18 and 23), as
/// [`crate::extract::extract_hashed`]'s fast path leaves it: the folds
/// reduce to those words, so this reads 7 words instead of 33.
#[inline(always)]
pub fn hash_key_ipv4_l4(key: &FlowKey) -> u32 {
    let w = key.words();
    let h = fold32(hash_words(&[w[0], w[9], w[10], w[13], w[18] ^ w[1], w[23]]));
    debug_assert_eq!(h, hash_key(key));
    h
}

/// Loads word `i` of a key as a scalar load that the compiler cannot turn
/// into a vector gather: with AVX2/AVX-512 enabled (`-C target-cpu=native`)
/// LLVM vectorizes the pack loops into `vpgatherqq`, which is 2-4× slower
/// here (microcoded on AMD, mitigated on Intel since GDS).
#[inline(always)]
pub fn key_word(w: &[u64; crate::key::KEY_WORDS], i: usize) -> u64 {
    let r: &u64 = &w[i];
    // SAFETY: `r` is a valid, aligned reference.
    unsafe { core::ptr::read_volatile(r) }
}

/// Precomputed description of a mask for masked hashing: the indices of
/// its non-zero datapath words and the mask values there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskWords {
    /// Number of non-zero datapath words.
    pub n: usize,
    /// Word indices (`0..DP_WORDS`), ascending; only `..n` is valid.
    pub idx: [u8; DP_WORDS],
    /// Mask value of each word; only `..n` is valid.
    pub bits: [u64; DP_WORDS],
}

impl MaskWords {
    /// The non-zero datapath words of `mask` (words past [`DP_WORDS`] are
    /// ignored: a megaflow never matches on them).
    pub fn new(mask: &FlowKey) -> MaskWords {
        let mut m = MaskWords {
            n: 0,
            idx: [0; DP_WORDS],
            bits: [0; DP_WORDS],
        };
        for (i, &w) in mask.dp_words().iter().enumerate() {
            if w != 0 {
                m.idx[m.n] = i as u8;
                m.bits[m.n] = w;
                m.n += 1;
            }
        }
        m
    }

    /// Writes the packed masked words of `key` into `out[..self.n]`.
    #[inline(always)]
    pub fn pack(&self, key: &FlowKey, out: &mut [u64; DP_WORDS]) {
        let w = key.words();
        let n = self.n;
        for ((o, &i), &b) in out.iter_mut().zip(&self.idx[..n]).zip(&self.bits[..n]) {
            *o = key_word(w, i as usize) & b;
        }
    }

    /// Number of mask bits (specificity).
    pub fn n_bits(&self) -> u32 {
        self.bits[..self.n].iter().map(|b| b.count_ones()).sum()
    }
}

/// Masked hash of `key` under the mask described by `mw`: the 64-bit hash
/// of the packed words `key[idx[j]] & bits[j]`. A megaflow stored in a
/// subtable is hashed the same way from its (already masked) key, so a
/// packet and the megaflow it matches hash equal.
#[inline]
pub fn hash_masked(key: &FlowKey, mw: &MaskWords) -> u64 {
    let mut packed = [0u64; DP_WORDS];
    mw.pack(key, &mut packed);
    hash_words(&packed[..mw.n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_cover_every_datapath_word_once() {
        let mut seen = [0; DP_WORDS];
        for group in FOLDS {
            for &i in group {
                seen[i] += 1;
            }
        }
        assert_eq!(seen, [1; DP_WORDS]);
    }

    #[test]
    fn deterministic_and_length_sensitive() {
        assert_eq!(hash_words(&[1, 2, 3]), hash_words(&[1, 2, 3]));
        assert_ne!(hash_words(&[1, 2, 0]), hash_words(&[1, 2]));
        assert_ne!(hash_words(&[]), hash_words(&[0]));
        assert_ne!(hash_words(&[1, 2]), hash_words(&[2, 1]));
        let long: Vec<u64> = (0..100).collect();
        let mut long2 = long.clone();
        long2[77] ^= 1;
        assert_ne!(hash_words(&long), hash_words(&long2));
    }

    #[test]
    fn single_bit_flips_change_the_hash() {
        let base = [0u64; DP_WORDS];
        let h0 = hash_words(&base);
        let mut seen = std::collections::HashSet::new();
        for w in 0..DP_WORDS {
            for b in 0..64 {
                let mut k = base;
                k[w] ^= 1 << b;
                let h = hash_words(&k);
                assert_ne!(h, h0);
                assert!(seen.insert(h));
            }
        }
    }

    #[test]
    fn low_bits_are_spread() {
        // Sequential keys (as in a port scan) must fill the EMC's 13-bit
        // index space evenly.
        let mut buckets = vec![0u32; 8192];
        for i in 0..8192u32 {
            let k = FlowKey {
                nw_src: 0x0a00_0000 + i,
                ..FlowKey::default()
            };
            buckets[(hash_key(&k) & 8191) as usize] += 1;
        }
        let max = *buckets.iter().max().unwrap();
        assert!(max <= 10, "max bucket load {max}");
    }

    #[test]
    fn masked_hash_ignores_unmasked_bits() {
        let mask = FlowKey {
            nw_src: 0xffff_ff00,
            tp_dst: 0xffff,
            ..FlowKey::default()
        };
        let mw = MaskWords::new(&mask);
        assert_eq!(mw.n, 2);
        let a = FlowKey {
            nw_src: 0x0a00_0001,
            tp_dst: 80,
            tp_src: 1234,
            ..FlowKey::default()
        };
        let mut b = a;
        b.nw_src = 0x0a00_00fe;
        b.tp_src = 4321;
        b.in_port = 7;
        assert_eq!(hash_masked(&a, &mw), hash_masked(&b, &mw));
        assert_eq!(hash_masked(&a, &mw), hash_masked(&a.masked(&mask), &mw));
        b.tp_dst = 81;
        assert_ne!(hash_masked(&a, &mw), hash_masked(&b, &mw));
    }
}
