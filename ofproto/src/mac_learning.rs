//! The MAC learning table of a bridge (OVS `lib/mac-learning.c`): which
//! port each (VLAN, MAC) was last seen on, for the NORMAL action.
//!
//! * an entry is (re)learned from the source of every frame that reaches
//!   NORMAL; a MAC seen on another port moves its entry;
//! * entries older than the aging time (default 300 s) are removed by
//!   [`MacTable::expire`], and lookups never return them;
//! * at most `max_entries` (default 8192): learning one more evicts the
//!   entry least recently learned (OVS keeps an LRU list of the same kind).
//!
//! Every change (a new entry, a move, an expiry, an eviction, a flush)
//! bumps [`MacTable::version`]; an entry remembers the version it last
//! changed at, and the table the version of its last removal, so that
//! [`MacTable::changed_since`] tells whether a translation made at some
//! version still saw the entry as it is (OVS keeps a MAC tag per megaflow
//! for the same purpose): only the megaflows that depended on a changed
//! entry are revalidated. The table is consulted only by translation and
//! the revalidator, never by the PMDs.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// OVS `MAC_ENTRY_DEFAULT_IDLE_TIME`.
pub const DEFAULT_AGING: Duration = Duration::from_secs(300);
/// OVS `MAC_DEFAULT_MAX`.
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

/// What a frame's source taught the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Nothing new (same port, age refreshed).
    Refreshed,
    /// A MAC the table did not have.
    New,
    /// A MAC that was on another port.
    Moved { from: u32 },
    /// Multicast sources are never learned.
    Ignored,
}

/// One learned address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    pub vlan: u16,
    pub mac: [u8; 6],
    pub port: u32,
    /// When it was last learned (its age is counted from here).
    pub learned: Instant,
}

/// Counters for `fdb-stats-show` (OVS `fdb/stats-show`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacStats {
    pub learned: u64,
    pub expired: u64,
    pub evicted: u64,
    pub moved: u64,
}

/// The table.
#[derive(Debug)]
pub struct MacTable {
    entries: HashMap<(u16, [u8; 6]), Slot>,
    /// Learning order: sequence number → key (oldest first), for eviction.
    lru: BTreeMap<u64, (u16, [u8; 6])>,
    next_seq: u64,
    aging: Duration,
    max_entries: usize,
    version: u64,
    /// The version of the last removal (expiry, eviction, flush).
    removed_at: u64,
    stats: MacStats,
}

/// One entry as stored.
#[derive(Clone, Copy, Debug)]
struct Slot {
    port: u32,
    learned: Instant,
    /// Position in the LRU order.
    seq: u64,
    /// The table version at which it was created or last moved.
    changed: u64,
}

impl Default for MacTable {
    fn default() -> Self {
        Self::new()
    }
}

/// True for group (multicast/broadcast) addresses.
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// OVS `eth_addr_is_reserved`: link-local control protocols NORMAL never
/// forwards (STP, pause, LACP, LLDP and the rest of 01:80:c2:00:00:0x,
/// and the Cisco and Extreme protocol addresses).
pub fn is_reserved(mac: &[u8; 6]) -> bool {
    let v = mac.iter().fold(0u64, |a, b| (a << 8) | *b as u64);
    matches!(
        v,
        0x0180_c200_0000..=0x0180_c200_000f
            | 0x00e0_2b00_0000
            | 0x00e0_2b00_0004
            | 0x00e0_2b00_0006
            | 0x0100_0c00_0000
            | 0x0100_0ccc_cccc
            | 0x0100_0ccc_cccd
            | 0x0100_0ccd_cdcd
            | 0x0100_0ccc_ccc0..=0x0100_0ccc_ccc7
    )
}

impl MacTable {
    /// An empty table with the default aging time and size.
    pub fn new() -> MacTable {
        MacTable {
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            next_seq: 0,
            aging: DEFAULT_AGING,
            max_entries: DEFAULT_MAX_ENTRIES,
            version: 0,
            removed_at: 0,
            stats: MacStats::default(),
        }
    }

    /// Changes at every learn, move, expiry, eviction and flush.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn aging(&self) -> Duration {
        self.aging
    }

    pub fn set_aging(&mut self, aging: Duration) {
        self.aging = aging;
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Changes the size limit; entries over it are evicted oldest first
    /// (returned).
    pub fn set_max_entries(&mut self, n: usize) -> Vec<MacEntry> {
        self.max_entries = n.max(1);
        let mut out = Vec::new();
        while self.entries.len() > self.max_entries {
            out.extend(self.evict_oldest());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> MacStats {
        self.stats
    }

    /// The port `mac` was learned on in `vlan`, unless it aged out.
    pub fn lookup(&self, vlan: u16, mac: &[u8; 6], now: Instant) -> Option<u32> {
        let e = self.entries.get(&(vlan, *mac))?;
        (now.saturating_duration_since(e.learned) < self.aging).then_some(e.port)
    }

    /// True when the entry of (`vlan`, `mac`) may differ from what a
    /// lookup at `version` saw: it was created or moved after it, or it is
    /// absent and some entry was removed after it (removals are not
    /// remembered per address, so this errs on the side of "changed").
    pub fn changed_since(&self, vlan: u16, mac: &[u8; 6], version: u64) -> bool {
        match self.entries.get(&(vlan, *mac)) {
            Some(e) => e.changed > version,
            None => self.removed_at > version,
        }
    }

    /// Learns that `mac` is on `port` in `vlan`. An eviction the learning
    /// forced is returned in `evicted`.
    pub fn learn(
        &mut self,
        vlan: u16,
        mac: &[u8; 6],
        port: u32,
        now: Instant,
        evicted: &mut Vec<MacEntry>,
    ) -> Learned {
        if is_multicast(mac) {
            return Learned::Ignored;
        }
        let key = (vlan, *mac);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(e) = self.entries.get_mut(&key) {
            self.lru.remove(&e.seq);
            self.lru.insert(seq, key);
            e.seq = seq;
            e.learned = now;
            if e.port == port {
                return Learned::Refreshed;
            }
            let from = e.port;
            e.port = port;
            self.stats.moved += 1;
            self.version += 1;
            e.changed = self.version;
            return Learned::Moved { from };
        }
        while self.entries.len() >= self.max_entries {
            evicted.extend(self.evict_oldest());
        }
        self.version += 1;
        self.entries.insert(
            key,
            Slot {
                port,
                learned: now,
                seq,
                changed: self.version,
            },
        );
        self.lru.insert(seq, key);
        self.stats.learned += 1;
        Learned::New
    }

    /// Keeps `mac` fresh on `port` from traffic the slow path did not see
    /// (a megaflow's statistics): refreshed if it is there, learned again
    /// if it went (aged out, evicted), left alone if it is on another port
    /// (statistics may be older than the move; only the slow path moves an
    /// entry).
    pub fn refresh(
        &mut self,
        vlan: u16,
        mac: &[u8; 6],
        port: u32,
        now: Instant,
        evicted: &mut Vec<MacEntry>,
    ) -> Learned {
        match self.entries.get(&(vlan, *mac)) {
            Some(e) if e.port != port => Learned::Ignored,
            _ => self.learn(vlan, mac, port, now, evicted),
        }
    }

    fn evict_oldest(&mut self) -> Option<MacEntry> {
        let (_, key) = self.lru.pop_first()?;
        let e = self.entries.remove(&key)?;
        self.stats.evicted += 1;
        self.version += 1;
        self.removed_at = self.version;
        Some(MacEntry {
            vlan: key.0,
            mac: key.1,
            port: e.port,
            learned: e.learned,
        })
    }

    /// Removes the entries older than the aging time; returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<MacEntry> {
        let aging = self.aging;
        let old: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.learned) >= aging)
            .map(|(k, _)| *k)
            .collect();
        let out = self.remove_keys(old);
        self.stats.expired += out.len() as u64;
        out
    }

    /// Removes the entries on `port` (a port that went away), or all.
    pub fn flush(&mut self, port: Option<u32>) -> Vec<MacEntry> {
        let keys: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| port.is_none_or(|want| e.port == want))
            .map(|(k, _)| *k)
            .collect();
        self.remove_keys(keys)
    }

    /// Removes the entries `keys` names and returns them; a removal bumps
    /// the version (and `removed_at`) once.
    fn remove_keys(&mut self, keys: Vec<(u16, [u8; 6])>) -> Vec<MacEntry> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(e) = self.entries.remove(&key) {
                self.lru.remove(&e.seq);
                out.push(MacEntry {
                    vlan: key.0,
                    mac: key.1,
                    port: e.port,
                    learned: e.learned,
                });
            }
        }
        if !out.is_empty() {
            self.version += 1;
            self.removed_at = self.version;
        }
        out
    }

    /// Every entry, by port, VLAN, MAC (the `fdb/show` order used here).
    pub fn entries(&self) -> Vec<MacEntry> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .map(|((vlan, mac), e)| MacEntry {
                vlan: *vlan,
                mac: *mac,
                port: e.port,
                learned: e.learned,
            })
            .collect();
        v.sort_by_key(|e| (e.port, e.vlan, e.mac));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [0, 0, 0, 0, 0, 0xb];

    #[test]
    fn learns_moves_and_separates_vlans() {
        let mut t = MacTable::new();
        let now = Instant::now();
        let mut ev = Vec::new();
        assert_eq!(t.learn(0, &A, 1, now, &mut ev), Learned::New);
        assert_eq!(t.learn(0, &A, 1, now, &mut ev), Learned::Refreshed);
        assert_eq!(t.lookup(0, &A, now), Some(1));
        assert_eq!(t.lookup(10, &A, now), None);
        let v = t.version();
        assert_eq!(t.learn(0, &A, 2, now, &mut ev), Learned::Moved { from: 1 });
        assert_ne!(t.version(), v);
        assert_eq!(t.lookup(0, &A, now), Some(2));
        assert_eq!(
            t.learn(0, &[1, 0, 0x5e, 0, 0, 1], 1, now, &mut ev),
            Learned::Ignored
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ages_out_and_evicts_oldest() {
        let mut t = MacTable::new();
        t.set_aging(Duration::from_secs(10));
        let now = Instant::now();
        let mut ev = Vec::new();
        t.learn(0, &A, 1, now, &mut ev);
        t.learn(0, &B, 2, now + Duration::from_secs(5), &mut ev);
        let later = now + Duration::from_secs(11);
        assert_eq!(t.lookup(0, &A, later), None);
        assert_eq!(t.lookup(0, &B, later), Some(2));
        let gone = t.expire(later);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].mac, A);
        t.set_max_entries(2);
        t.learn(0, &A, 3, later, &mut ev);
        t.learn(5, &A, 3, later, &mut ev);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].mac, B);
        assert_eq!(t.stats().evicted, 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn changed_since_tracks_each_entry() {
        let mut t = MacTable::new();
        let now = Instant::now();
        let mut ev = Vec::new();
        t.learn(0, &A, 1, now, &mut ev);
        let v = t.version();
        // Unknown B at v: learning B changes it, not A.
        assert!(!t.changed_since(0, &B, v));
        t.learn(0, &B, 2, now, &mut ev);
        assert!(t.changed_since(0, &B, v));
        assert!(!t.changed_since(0, &A, v));
        // A refresh is no change; a move is.
        let v = t.version();
        t.learn(0, &A, 1, now, &mut ev);
        assert!(!t.changed_since(0, &A, v));
        t.learn(0, &A, 3, now, &mut ev);
        assert!(t.changed_since(0, &A, v));
        assert!(!t.changed_since(0, &B, v));
        assert!(!t.changed_since(7, &A, v));
        // A removal: the removed entry has changed (and, conservatively,
        // every absent one); entries still present have not.
        let v = t.version();
        t.flush(Some(2));
        assert!(t.changed_since(0, &B, v));
        assert!(!t.changed_since(0, &A, v));
    }

    #[test]
    fn refresh_never_moves() {
        let mut t = MacTable::new();
        let now = Instant::now();
        let mut ev = Vec::new();
        assert_eq!(t.refresh(0, &A, 1, now, &mut ev), Learned::New);
        assert_eq!(t.refresh(0, &A, 1, now, &mut ev), Learned::Refreshed);
        assert_eq!(t.refresh(0, &A, 2, now, &mut ev), Learned::Ignored);
        assert_eq!(t.lookup(0, &A, now), Some(1));
    }

    #[test]
    fn reserved_addresses() {
        assert!(is_reserved(&[0x01, 0x80, 0xc2, 0, 0, 0x0e]));
        assert!(is_reserved(&[0x01, 0x80, 0xc2, 0, 0, 0]));
        assert!(!is_reserved(&[0x01, 0x80, 0xc2, 0, 0, 0x10]));
        assert!(!is_reserved(&[0xff; 6]));
    }
}
