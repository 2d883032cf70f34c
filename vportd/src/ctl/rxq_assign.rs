//! Rx queue to PMD assignment, as OVS's `other_config:pmd-rxq-assign`
//! chooses it (lib/dpif-netdev.c, `sched_numa_list_schedule`):
//!
//! * `roundrobin`: queues in port and queue order, handed to the PMDs in
//!   turn; measured cycles are ignored.
//! * `cycles` (OVS's default): queues busiest first, handed to the PMDs in
//!   "up/down" order (0, 1, .., n-1, n-1, .., 1, 0, 0, 1, ..), so the
//!   busiest and the idlest queues pair up.
//! * `group`: queues busiest first, each to the PMD whose assigned load is
//!   lowest so far (fewest queues on a tie).

use std::fmt;
use std::str::FromStr;

/// The assignment policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxqAssign {
    RoundRobin,
    #[default]
    Cycles,
    Group,
}

impl RxqAssign {
    pub const NAMES: &'static str = "roundrobin, cycles or group";

    pub fn name(self) -> &'static str {
        match self {
            RxqAssign::RoundRobin => "roundrobin",
            RxqAssign::Cycles => "cycles",
            RxqAssign::Group => "group",
        }
    }
}

impl fmt::Display for RxqAssign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RxqAssign {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "roundrobin" => Ok(RxqAssign::RoundRobin),
            "cycles" => Ok(RxqAssign::Cycles),
            "group" => Ok(RxqAssign::Group),
            other => Err(format!(
                "pmd-rxq-assign: {other:?} is not a policy ({})",
                RxqAssign::NAMES
            )),
        }
    }
}

/// One rx queue to place: its position in port/queue order and the
/// cycles measured on it.
#[derive(Clone, Copy, Debug)]
pub struct QueueLoad {
    pub order: usize,
    pub cycles: u64,
}

/// The PMD (index below `n_pmds`) for each queue of `queues`, in the same
/// order. `n_pmds` must not be 0.
pub fn plan(policy: RxqAssign, queues: &[QueueLoad], n_pmds: usize) -> Vec<usize> {
    assert!(n_pmds > 0, "no PMD to assign rx queues to");
    let mut by: Vec<usize> = (0..queues.len()).collect();
    match policy {
        RxqAssign::RoundRobin => by.sort_by_key(|&i| queues[i].order),
        // Busiest first; port order breaks ties so plans are stable.
        RxqAssign::Cycles | RxqAssign::Group => {
            by.sort_by_key(|&i| (std::cmp::Reverse(queues[i].cycles), queues[i].order))
        }
    }
    let mut to = vec![0; queues.len()];
    let mut load = vec![0u64; n_pmds];
    let mut count = vec![0usize; n_pmds];
    for (step, &i) in by.iter().enumerate() {
        let pmd = match policy {
            RxqAssign::RoundRobin => step % n_pmds,
            RxqAssign::Cycles => up_down(step, n_pmds),
            RxqAssign::Group => (0..n_pmds)
                .min_by_key(|&p| (load[p], count[p], p))
                .unwrap_or(0),
        };
        load[pmd] = load[pmd].saturating_add(queues[i].cycles);
        count[pmd] += 1;
        to[i] = pmd;
    }
    to
}

/// The `step`-th PMD of the sequence 0, 1, .., n-1, n-1, .., 1, 0, 0, ..
fn up_down(step: usize, n: usize) -> usize {
    let pos = step % (2 * n);
    if pos < n {
        pos
    } else {
        2 * n - 1 - pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(cycles: &[u64]) -> Vec<QueueLoad> {
        cycles
            .iter()
            .enumerate()
            .map(|(order, &cycles)| QueueLoad { order, cycles })
            .collect()
    }

    #[test]
    fn roundrobin_ignores_cycles() {
        assert_eq!(
            plan(RxqAssign::RoundRobin, &q(&[1, 900, 5, 7, 0]), 2),
            vec![0, 1, 0, 1, 0]
        );
    }

    #[test]
    fn cycles_goes_up_and_down_over_the_pmds() {
        // Sorted: 900 (q1), 400 (q3), 300 (q2), 100 (q0): PMDs 0, 1, 1, 0.
        assert_eq!(
            plan(RxqAssign::Cycles, &q(&[100, 900, 300, 400]), 2),
            vec![0, 0, 1, 1]
        );
        assert_eq!(up_down(0, 3), 0);
        assert_eq!(up_down(3, 3), 2);
        assert_eq!(up_down(5, 3), 0);
        assert_eq!(up_down(6, 3), 0);
    }

    #[test]
    fn group_fills_the_least_loaded_pmd() {
        // 900 → PMD 0; 400 → PMD 1; 300 → PMD 1 (400 < 900); 100 → PMD 1
        // (700 < 900).
        assert_eq!(
            plan(RxqAssign::Group, &q(&[100, 900, 300, 400]), 2),
            vec![1, 0, 1, 1]
        );
    }

    #[test]
    fn one_pmd_takes_everything_and_names_round_trip() {
        for p in [RxqAssign::RoundRobin, RxqAssign::Cycles, RxqAssign::Group] {
            assert_eq!(plan(p, &q(&[3, 2, 1]), 1), vec![0, 0, 0]);
            assert_eq!(p.name().parse::<RxqAssign>(), Ok(p));
        }
        assert!("balanced".parse::<RxqAssign>().is_err());
    }
}
