//! The signature match cache (OVS SMC): packet hash → megaflow slot.
//!
//! A cache in front of the subtables, keyed like the EMC by the packet's
//! 32-bit key hash ([`crate::hash::hash_key`]), but storing only a 32-bit
//! signature (the hash itself) and the index of the megaflow in its
//! [`crate::dpcls::Dpcls`]'s slab: 8 bytes per entry, so 1M entries (8 MiB)
//! cover far more flows than the EMC's 8192. A hit must still be verified
//! against the megaflow (masked compare), so a stale or colliding entry is
//! just a miss. Entries are never invalidated: a removed megaflow's slab
//! slot is empty or reused, and the verification catches both.
//!
//! Buckets of 4 entries, 32-byte aligned. Insertion (after every subtable
//! hit) overwrites the entry with the same signature, else an empty one,
//! else a pseudo-random one.
//!
//! Owned by the [`crate::dpcls::Dpcls`] (interior mutability through
//! `Cell`: lookups take `&self`).

use core::cell::Cell;

/// Default number of entries (OVS `SMC_ENTRIES`).
pub const DEFAULT_SMC_ENTRIES: usize = 1 << 20;
const WAYS: usize = 4;

#[repr(C, align(32))]
struct Bucket([Cell<u64>; WAYS]);

/// Signature match cache.
pub struct Smc {
    buckets: Box<[Bucket]>,
    mask: usize,
}

impl core::fmt::Debug for Smc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Smc")
            .field("entries", &self.entries())
            .finish()
    }
}

#[inline(always)]
fn entry(hash: u32, slot: u32) -> u64 {
    (hash as u64) << 32 | (slot as u64 + 1)
}

impl Smc {
    /// A cache of `entries` entries (rounded up to a power of two, at least
    /// 4).
    pub fn new(entries: usize) -> Smc {
        let n = (entries.max(WAYS) / WAYS).next_power_of_two();
        let layout = std::alloc::Layout::array::<Bucket>(n).expect("SMC too large");
        // SAFETY: an all-zero `Bucket` is valid (four `Cell<u64>` = 0, i.e.
        // empty); the allocation has the layout `Box<[Bucket]>` frees with.
        // A zeroed allocation is not touched until used (fast for 8 MiB).
        let buckets = unsafe {
            let p = std::alloc::alloc_zeroed(layout) as *mut Bucket;
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, n))
        };
        Smc {
            buckets,
            mask: n - 1,
        }
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.buckets.len() * WAYS
    }

    #[inline(always)]
    fn bucket(&self, hash: u32) -> &Bucket {
        &self.buckets[hash as usize & self.mask]
    }

    /// Prefetches the bucket of `hash`.
    #[inline(always)]
    pub fn prefetch(&self, hash: u32) {
        crate::cpu::prefetch(self.bucket(hash));
    }

    /// The slot cached for `hash`, if any.
    #[inline(always)]
    pub fn find(&self, hash: u32) -> Option<u32> {
        let b = self.bucket(hash);
        let mut r = 0u64;
        for e in &b.0 {
            let v = e.get();
            // Branch-free select of the (at most one) matching entry.
            r |= v & 0u64.wrapping_sub(((v >> 32) as u32 == hash && v != 0) as u64);
        }
        if r != 0 {
            Some((r as u32).wrapping_sub(1))
        } else {
            None
        }
    }

    /// Caches `slot` for `hash`.
    #[inline]
    pub fn insert(&self, hash: u32, slot: u32) {
        debug_assert!(slot != u32::MAX);
        let b = self.bucket(hash);
        let new = entry(hash, slot);
        let mut empty = None;
        for e in &b.0 {
            let v = e.get();
            if v != 0 && (v >> 32) as u32 == hash {
                e.set(new);
                return;
            }
            if v == 0 && empty.is_none() {
                empty = Some(e);
            }
        }
        empty.unwrap_or(&b.0[(hash >> 27) as usize % WAYS]).set(new);
    }

    /// Empties the cache.
    pub fn clear(&self) {
        for b in self.buckets.iter() {
            for e in &b.0 {
                e.set(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_replace() {
        let smc = Smc::new(8);
        assert_eq!(smc.entries(), 8);
        assert_eq!(smc.find(5), None);
        smc.insert(5, 0);
        assert_eq!(smc.find(5), Some(0));
        smc.insert(5, 7);
        assert_eq!(smc.find(5), Some(7));
        // Same bucket (mask 1), other signatures: 4 ways, then eviction.
        for h in [7u32, 9, 11, 13] {
            smc.insert(h, h);
        }
        let present = [5u32, 7, 9, 11, 13]
            .iter()
            .filter(|&&h| smc.find(h).is_some())
            .count();
        assert_eq!(present, 4);
        assert_eq!(smc.find(13), Some(13));
        smc.insert(u32::MAX, u32::MAX - 1);
        assert_eq!(smc.find(u32::MAX), Some(u32::MAX - 1));
        smc.clear();
        assert_eq!(smc.find(13), None);
    }
}
