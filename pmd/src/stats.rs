//! Per-PMD counters.
//!
//! Each counter has exactly one writer, the PMD thread that owns it, which
//! updates it with a relaxed load + store (no locked read-modify-write, no
//! contention: the cache line stays in the PMD's core). The control plane
//! reads them with relaxed loads; a reader may see a value a few
//! nanoseconds old, never a torn one.

use flowcache::DropReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Sets the value. Only the owning thread may call this.
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    /// Reads the value (any thread).
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Counters of one PMD thread. Names follow OVS's `pmd-stats-show`.
#[derive(Debug, Default)]
pub struct PmdStats {
    /// Packets received from rx queues.
    pub rx_packets: Counter,
    /// Rx bursts that returned at least one packet.
    pub rx_bursts: Counter,
    /// Packets that went through lookup again after `recirc`.
    pub recirculations: Counter,
    /// Simple-match hits (bursts of ports whose megaflows only match
    /// in_port, dl_type, VLAN and nw_frag skip extract, EMC and dpcls).
    pub simple_hits: Counter,
    /// Exact-match cache hits.
    pub emc_hits: Counter,
    /// Signature-match-cache hits (megaflows found through the SMC).
    pub smc_hits: Counter,
    /// Megaflow (dpcls) hits found by subtable search.
    pub megaflow_hits: Counter,
    /// Subtables probed for the megaflow hits (lookups per hit =
    /// this / megaflow_hits).
    pub subtable_lookups: Counter,
    /// Misses that an upcall resolved.
    pub upcalls: Counter,
    /// TSC cycles the handler took for those upcalls, summed (round trip
    /// as seen by the PMD).
    pub upcall_cycles: Counter,
    /// Misses that could not be handed to the handler pool (queue full or
    /// too many pending): the packet was dropped.
    pub lost_upcalls: Counter,
    /// Megaflows this PMD installed.
    pub megaflows_installed: Counter,
    /// Translations not installed because the flow limit was reached (the
    /// packet was still forwarded).
    pub flow_limit_hits: Counter,
    /// Packets transmitted.
    pub tx_packets: Counter,
    /// Tx bursts.
    pub tx_batches: Counter,
    /// TSC cycles spent in iterations that received packets.
    pub busy_cycles: Counter,
    /// TSC cycles spent in iterations that received nothing.
    pub idle_cycles: Counter,
    /// Iterations of the poll loop.
    pub iterations: Counter,
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [Counter; DropReason::COUNT],
    /// Upcalls in flight right now (set by the PMD each iteration).
    pub pending_upcalls: Counter,
    /// TSC value of the last iteration in which anything happened (rx, tx
    /// or an upcall reply); the daemon's `--exit-when-idle` reads it.
    pub last_activity_tsc: Counter,
}

impl PmdStats {
    /// Counts `n` drops for `reason`.
    #[inline(always)]
    pub fn add_drop(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].add(n);
    }

    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }

    /// A plain copy of every counter.
    pub fn snapshot(&self) -> PmdStatsSnapshot {
        PmdStatsSnapshot {
            rx_packets: self.rx_packets.get(),
            rx_bursts: self.rx_bursts.get(),
            recirculations: self.recirculations.get(),
            simple_hits: self.simple_hits.get(),
            emc_hits: self.emc_hits.get(),
            smc_hits: self.smc_hits.get(),
            megaflow_hits: self.megaflow_hits.get(),
            subtable_lookups: self.subtable_lookups.get(),
            upcalls: self.upcalls.get(),
            upcall_cycles: self.upcall_cycles.get(),
            lost_upcalls: self.lost_upcalls.get(),
            megaflows_installed: self.megaflows_installed.get(),
            flow_limit_hits: self.flow_limit_hits.get(),
            tx_packets: self.tx_packets.get(),
            tx_batches: self.tx_batches.get(),
            busy_cycles: self.busy_cycles.get(),
            idle_cycles: self.idle_cycles.get(),
            iterations: self.iterations.get(),
            drops: std::array::from_fn(|i| self.drops[i].get()),
        }
    }
}

/// A copy of [`PmdStats`] at one moment (subtract two to get a window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmdStatsSnapshot {
    pub rx_packets: u64,
    pub rx_bursts: u64,
    pub recirculations: u64,
    pub simple_hits: u64,
    pub emc_hits: u64,
    pub smc_hits: u64,
    pub megaflow_hits: u64,
    pub subtable_lookups: u64,
    pub upcalls: u64,
    pub upcall_cycles: u64,
    pub lost_upcalls: u64,
    pub megaflows_installed: u64,
    pub flow_limit_hits: u64,
    pub tx_packets: u64,
    pub tx_batches: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub iterations: u64,
    pub drops: [u64; DropReason::COUNT],
}

impl PmdStatsSnapshot {
    /// Field-wise `self - earlier` (for "since clear" and windows).
    pub fn since(&self, earlier: &PmdStatsSnapshot) -> PmdStatsSnapshot {
        PmdStatsSnapshot {
            rx_packets: self.rx_packets.wrapping_sub(earlier.rx_packets),
            rx_bursts: self.rx_bursts.wrapping_sub(earlier.rx_bursts),
            recirculations: self.recirculations.wrapping_sub(earlier.recirculations),
            simple_hits: self.simple_hits.wrapping_sub(earlier.simple_hits),
            emc_hits: self.emc_hits.wrapping_sub(earlier.emc_hits),
            smc_hits: self.smc_hits.wrapping_sub(earlier.smc_hits),
            megaflow_hits: self.megaflow_hits.wrapping_sub(earlier.megaflow_hits),
            subtable_lookups: self.subtable_lookups.wrapping_sub(earlier.subtable_lookups),
            upcalls: self.upcalls.wrapping_sub(earlier.upcalls),
            upcall_cycles: self.upcall_cycles.wrapping_sub(earlier.upcall_cycles),
            lost_upcalls: self.lost_upcalls.wrapping_sub(earlier.lost_upcalls),
            megaflows_installed: self
                .megaflows_installed
                .wrapping_sub(earlier.megaflows_installed),
            flow_limit_hits: self.flow_limit_hits.wrapping_sub(earlier.flow_limit_hits),
            tx_packets: self.tx_packets.wrapping_sub(earlier.tx_packets),
            tx_batches: self.tx_batches.wrapping_sub(earlier.tx_batches),
            busy_cycles: self.busy_cycles.wrapping_sub(earlier.busy_cycles),
            idle_cycles: self.idle_cycles.wrapping_sub(earlier.idle_cycles),
            iterations: self.iterations.wrapping_sub(earlier.iterations),
            drops: std::array::from_fn(|i| self.drops[i].wrapping_sub(earlier.drops[i])),
        }
    }

    /// Adds `other`'s counters to these (totals over several PMDs).
    pub fn add(&mut self, other: &PmdStatsSnapshot) {
        // `since` with the operands' roles swapped: self - (0 - other).
        let neg = PmdStatsSnapshot::default().since(other);
        *self = self.since(&neg);
    }

    /// Total drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sums_every_counter() {
        let a = PmdStatsSnapshot {
            rx_packets: 5,
            simple_hits: 3,
            smc_hits: 1,
            drops: std::array::from_fn(|i| i as u64),
            ..Default::default()
        };
        let mut t = a;
        t.add(&a);
        assert_eq!(t.rx_packets, 10);
        assert_eq!((t.simple_hits, t.smc_hits), (6, 2));
        assert_eq!(t.drops[3], 6);
        assert_eq!(t.since(&a), a);
    }

    #[test]
    fn counters_and_windows() {
        let s = PmdStats::default();
        s.rx_packets.add(5);
        s.add_drop(DropReason::TxFull, 2);
        let a = s.snapshot();
        s.rx_packets.add(3);
        let b = s.snapshot();
        assert_eq!(b.since(&a).rx_packets, 3);
        assert_eq!(a.total_drops(), 2);
        assert_eq!(a.drops[DropReason::TxFull as usize], 2);
    }
}

/// What the handler pool did with the packets of `userspace` actions,
/// by cookie kind (several handler threads write: atomic adds).
#[derive(Debug, Default)]
pub struct UserspaceStats {
    /// Packets consumed, indexed by `UserCookieKind as usize`.
    pub by_kind: [AtomicU64; flowcache::actions::UserCookieKind::COUNT],
}

impl UserspaceStats {
    /// Counts one packet of `kind`.
    pub fn count(&self, kind: flowcache::actions::UserCookieKind) {
        self.by_kind[kind as usize].fetch_add(1, Relaxed);
    }

    /// Packets of `kind` so far.
    pub fn get(&self, kind: flowcache::actions::UserCookieKind) -> u64 {
        self.by_kind[kind as usize].load(Relaxed)
    }
}
