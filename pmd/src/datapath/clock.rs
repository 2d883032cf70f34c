//! A cheap clock for the PMD loop: the CPU's time-stamp counter, calibrated
//! once against the monotonic clock.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads the time-stamp counter (a monotonic cycle count on every x86 CPU
/// made in the last fifteen years: constant_tsc).
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions; it only reads a counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// TSC ticks per second, measured once (20 ms) on first use.
pub fn tsc_hz() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        let t0 = Instant::now();
        let c0 = tsc();
        std::thread::sleep(Duration::from_millis(20));
        let c1 = tsc();
        let ns = t0.elapsed().as_nanos().max(1) as u64;
        ((c1.wrapping_sub(c0)) as u128 * 1_000_000_000 / ns as u128) as u64
    })
}

/// Converts TSC ticks to milliseconds.
pub fn tsc_to_ms(ticks: u64) -> u64 {
    (ticks as u128 * 1000 / tsc_hz().max(1) as u128) as u64
}

/// Milliseconds since the first call in this process (the timestamps of
/// megaflow `used`/`created`).
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}
