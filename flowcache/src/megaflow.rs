//! Megaflows: a masked key, its actions and its statistics.
//!
//! A megaflow is created by the slow path, installed in one PMD's
//! [`crate::dpcls::Dpcls`] and shared as `Arc<Megaflow>` with that PMD's
//! EMC and with the control plane (dumps, revalidation, expiry).
//!
//! Ownership of the mutable parts:
//! * [`MegaflowStats`] are written only by the PMD that owns the megaflow,
//!   with relaxed load + store (no read-modify-write), so a hit costs plain
//!   stores; any thread may read them.
//! * `dead` may be set by anyone ([`Megaflow::mark_dead`]); once set it
//!   stays set. Caches never return a dead megaflow.
//! * Everything else is immutable. Changing the actions of a flow means
//!   installing a new megaflow and marking the old one dead.

use crate::actions::ActionList;
use crate::hash::{hash_words, MaskWords};
use crate::key::{FlowKey, DP_WORDS, KEY_WORDS};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Per-megaflow counters, single writer (the owning PMD).
#[derive(Debug, Default)]
pub struct MegaflowStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    used: AtomicU64,
    tcp_flags: AtomicU64,
}

/// A copy of a megaflow's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub packets: u64,
    pub bytes: u64,
    /// Timestamp of the last hit (caller's clock), or the creation time.
    pub used: u64,
    /// OR of the TCP flags seen.
    pub tcp_flags: u16,
}

impl MegaflowStats {
    /// Accounts `packets` packets of `bytes` bytes in total, seen at `now`.
    /// Must only be called by the owning PMD (single writer): it is a
    /// relaxed load + store, not an atomic add.
    #[inline]
    pub fn record(&self, packets: u64, bytes: u64, now: u64, tcp_flags: u16) {
        self.packets
            .store(self.packets.load(Relaxed).wrapping_add(packets), Relaxed);
        self.bytes
            .store(self.bytes.load(Relaxed).wrapping_add(bytes), Relaxed);
        self.used.store(now, Relaxed);
        if tcp_flags != 0 {
            let f = self.tcp_flags.load(Relaxed);
            if f | tcp_flags as u64 != f {
                self.tcp_flags.store(f | tcp_flags as u64, Relaxed);
            }
        }
    }

    /// Reads the counters (any thread; the fields are read independently).
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            used: self.used.load(Relaxed),
            tcp_flags: self.tcp_flags.load(Relaxed) as u16,
        }
    }

    /// Timestamp of the last hit (or creation).
    #[inline]
    pub fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }
}

/// A datapath flow: `key` (already masked) / `mask` → `actions`.
///
/// The layout is `repr(C, align(64))`: the first two cache lines hold
/// everything a classifier hit touches (dead flag, actions, counters, then
/// the packed key words it compares, the first 9 of them); the `Arc` counts
/// sit in the line before, away from the counters.
#[repr(C, align(64))]
pub struct Megaflow {
    dead: AtomicBool,
    n_packed: u8,
    /// The actions, immutable.
    pub actions: ActionList,
    /// Counters (written by the owning PMD only).
    pub stats: MegaflowStats,
    /// `key[i] & mask[i]` for the non-zero mask words, in word order; what
    /// a dpcls subtable compares and hashes.
    packed: [u64; DP_WORDS],
    /// Index in the owning [`crate::dpcls::Dpcls`]'s flow slab (for the
    /// SMC); `u32::MAX` when not installed.
    slot: AtomicU32,
    /// Owning PMD (`u32::MAX` when unset).
    pub pmd_id: u32,
    /// Unique id (the control plane's handle, e.g. the ufid).
    pub id: u64,
    /// Creation timestamp (caller's clock).
    pub created: u64,
    /// Hash of `packed` (the subtable hash).
    packed_hash: u64,
    key: FlowKey,
    mask: FlowKey,
}

impl Megaflow {
    /// Builds a megaflow. `key` is masked with `mask`; mask bits past the
    /// datapath words ([`DP_WORDS`]) are cleared, since the datapath cannot
    /// match on OpenFlow-only state.
    pub fn new(id: u64, key: &FlowKey, mask: &FlowKey, actions: ActionList, now: u64) -> Megaflow {
        let mut mask = *mask;
        mask.words_mut()[DP_WORDS..KEY_WORDS].fill(0);
        let key = key.masked(&mask);
        let mw = MaskWords::new(&mask);
        let mut packed = [0u64; DP_WORDS];
        mw.pack(&key, &mut packed);

        let stats = MegaflowStats::default();
        stats.used.store(now, Relaxed);
        Megaflow {
            dead: AtomicBool::new(false),
            n_packed: mw.n as u8,
            actions,
            stats,
            packed,
            slot: AtomicU32::new(u32::MAX),
            pmd_id: u32::MAX,
            id,
            created: now,
            packed_hash: hash_words(&packed[..mw.n]),
            key,
            mask,
        }
    }

    /// Sets the owning PMD.
    pub fn with_pmd_id(mut self, pmd_id: u32) -> Megaflow {
        self.pmd_id = pmd_id;
        self
    }

    /// Sets the id and the owning PMD of a megaflow built before its
    /// owner was known (by an upcall handler).
    pub fn set_owner(&mut self, id: u64, pmd_id: u32) {
        self.id = id;
        self.pmd_id = pmd_id;
    }

    /// The masked key.
    #[inline]
    pub fn key(&self) -> &FlowKey {
        &self.key
    }

    /// The mask (zero past the datapath words).
    #[inline]
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }

    /// True when `key` matches this megaflow (datapath words under the mask).
    #[inline]
    pub fn matches(&self, key: &FlowKey) -> bool {
        let k = key.words();
        let m = self.mask.words();
        let s = self.key.words();
        let mut d = 0;
        for i in 0..DP_WORDS {
            d |= (k[i] & m[i]) ^ s[i];
        }
        d == 0
    }

    /// Slab index in the owning classifier (`u32::MAX`: none).
    #[inline(always)]
    pub(crate) fn slot(&self) -> u32 {
        self.slot.load(Relaxed)
    }

    #[inline]
    pub(crate) fn set_slot(&self, slot: u32) {
        self.slot.store(slot, Relaxed);
    }

    /// True once the megaflow has been deleted; caches then ignore it.
    #[inline(always)]
    pub fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    /// Marks the megaflow deleted (any thread; irreversible).
    #[inline]
    pub fn mark_dead(&self) {
        self.dead.store(true, Relaxed);
    }

    /// The packed masked key words (non-zero mask words only).
    #[inline(always)]
    pub(crate) fn packed(&self) -> &[u64] {
        &self.packed[..self.n_packed as usize]
    }

    /// The packed words as a fixed array (only `..packed().len()` is
    /// meaningful; the rest is zero).
    #[inline(always)]
    pub(crate) fn packed_array(&self) -> &[u64; DP_WORDS] {
        &self.packed
    }

    /// Hash of [`Self::packed`] (equals `hash_masked(key, mask)`).
    #[inline(always)]
    pub(crate) fn packed_hash(&self) -> u64 {
        self.packed_hash
    }

    /// Where [`Self::packed_hash`] lives (for prefetching).
    #[inline(always)]
    pub(crate) fn packed_hash_addr(&self) -> *const u64 {
        &self.packed_hash
    }

    /// Number of mask bits set (specificity).
    pub fn mask_bits(&self) -> u32 {
        self.mask.dp_words().iter().map(|w| w.count_ones()).sum()
    }
}

impl core::fmt::Debug for Megaflow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Megaflow")
            .field("id", &self.id)
            .field("dead", &self.is_dead())
            .field("pmd_id", &self.pmd_id)
            .field("key", &self.key)
            .field("mask", &self.mask)
            .field("actions", &crate::actions::format_actions(&self.actions))
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_masked;

    #[test]
    fn new_masks_and_packs() {
        let mut key = FlowKey {
            nw_src: 0x0a00_0001,
            tp_src: 99,
            ..FlowKey::default()
        };
        key.regs[3] = 5;
        let mut mask = FlowKey {
            nw_src: 0xffff_0000,
            ..FlowKey::default()
        };
        mask.regs[3] = u32::MAX;
        let mf = Megaflow::new(7, &key, &mask, Vec::new().into(), 42);
        assert_eq!(mf.key().nw_src, 0x0a00_0000);
        assert_eq!(mf.key().tp_src, 0);
        assert_eq!(mf.mask().regs[3], 0);
        assert_eq!(mf.packed().len(), 1);
        assert_eq!(mf.packed_hash(), hash_masked(&key, &MaskWords::new(&mask)));
        assert!(mf.matches(&key));
        key.nw_src = 0x0b00_0000;
        assert!(!mf.matches(&key));
        assert_eq!(mf.stats.snapshot().used, 42);
        mf.stats.record(2, 128, 50, 0x02);
        mf.stats.record(1, 64, 51, 0x10);
        assert_eq!(
            mf.stats.snapshot(),
            StatsSnapshot {
                packets: 3,
                bytes: 192,
                used: 51,
                tcp_flags: 0x12
            }
        );
        assert!(!mf.is_dead());
        mf.mark_dead();
        assert!(mf.is_dead());
    }

    #[test]
    fn layout() {
        assert_eq!(core::mem::align_of::<Megaflow>(), 64);
        assert!(core::mem::offset_of!(Megaflow, stats) + 32 <= 64);
        assert_eq!(core::mem::offset_of!(Megaflow, packed), 56);
    }
}
