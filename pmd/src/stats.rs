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

/// Defines the PMD counters once: [`PmdStats`] (the live counters),
/// [`PmdStatsSnapshot`] (a copy), `snapshot`, `since` and
/// [`PmdStatsSnapshot::counters`] (name, help, value), which the control
/// socket's JSON, `/metrics` and the SIGUSR1 line all iterate. A new
/// counter is one line here.
macro_rules! pmd_counters {
    ($($name:ident: $help:literal,)*) => {
        /// Counters of one PMD thread. Names follow OVS's `pmd-stats-show`.
        #[derive(Debug, Default)]
        pub struct PmdStats {
            $(#[doc = $help] pub $name: Counter,)*
            /// Drops by reason, indexed by `DropReason as usize`.
            pub drops: [Counter; DropReason::COUNT],
            /// Upcalls in flight right now (set by the PMD each iteration).
            pub pending_upcalls: Counter,
            /// TSC value of the last iteration in which anything happened
            /// (rx, tx or an upcall reply); `--exit-when-idle` reads it.
            pub last_activity_tsc: Counter,
        }

        /// A copy of [`PmdStats`] at one moment (subtract two to get a
        /// window).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct PmdStatsSnapshot {
            $(#[doc = $help] pub $name: u64,)*
            /// Drops by reason, indexed by `DropReason as usize`.
            pub drops: [u64; DropReason::COUNT],
        }

        /// Number of counters in [`PmdStatsSnapshot::counters`].
        pub const PMD_COUNTERS: usize = [$(stringify!($name)),*].len();

        impl PmdStats {
            /// A plain copy of every counter.
            pub fn snapshot(&self) -> PmdStatsSnapshot {
                PmdStatsSnapshot {
                    $($name: self.$name.get(),)*
                    drops: std::array::from_fn(|i| self.drops[i].get()),
                }
            }
        }

        impl PmdStatsSnapshot {
            /// Field-wise `self - earlier` (for "since clear" and windows).
            pub fn since(&self, earlier: &PmdStatsSnapshot) -> PmdStatsSnapshot {
                PmdStatsSnapshot {
                    $($name: self.$name.wrapping_sub(earlier.$name),)*
                    drops: std::array::from_fn(|i| self.drops[i].wrapping_sub(earlier.drops[i])),
                }
            }

            /// Every counter but the drops, in definition order: its name
            /// (the JSON key; `vportd_pmd_NAME_total` in `/metrics`), a
            /// one-line help and the value.
            pub fn counters(&self) -> [(&'static str, &'static str, u64); PMD_COUNTERS] {
                [$((stringify!($name), $help, self.$name),)*]
            }
        }
    };
}

pmd_counters! {
    rx_packets: "Packets received from rx queues.",
    rx_bursts: "Rx bursts that returned at least one packet.",
    recirculations: "Packets looked up again after a recirculation.",
    simple_hits: "Simple-match hits (ports whose megaflows match only in_port, dl_type, VLAN and nw_frag skip extract, EMC and dpcls).",
    emc_hits: "Exact match cache hits.",
    smc_hits: "Signature match cache hits (megaflows found through the SMC).",
    megaflow_hits: "Megaflow (dpcls) hits found by subtable search.",
    subtable_lookups: "dpcls subtables probed for the megaflow hits.",
    upcalls: "Misses resolved by an upcall.",
    upcall_cycles: "TSC cycles the upcalls took, as the PMD saw the round trip.",
    lost_upcalls: "Misses dropped because the upcall queue was full or too many were pending.",
    megaflows_installed: "Megaflows the PMD installed.",
    flow_limit_hits: "Translations not installed because of the flow limit (the packet was still forwarded).",
    stale_translations: "Translations not installed because the rules changed while they were made (the packets behind them asked again).",
    tx_packets: "Packets transmitted.",
    tx_batches: "Tx bursts.",
    busy_cycles: "TSC cycles of iterations that received packets.",
    idle_cycles: "TSC cycles of iterations that received nothing.",
    iterations: "Iterations of the poll loop.",
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
}

impl PmdStatsSnapshot {
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

    #[test]
    fn counters_lists_every_field_once() {
        let s = PmdStatsSnapshot {
            emc_hits: 7,
            iterations: 9,
            ..Default::default()
        };
        let c = s.counters();
        let names: std::collections::BTreeSet<_> = c.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names.len(), PMD_COUNTERS);
        assert!(c.contains(&("emc_hits", "Exact match cache hits.", 7)));
        assert_eq!(c.iter().find(|(n, _, _)| *n == "iterations").unwrap().2, 9);
        assert!(c.iter().all(|(_, h, _)| h.ends_with('.')));
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
