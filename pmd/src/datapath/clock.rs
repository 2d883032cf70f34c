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
        let (t0, c0) = stamp();
        std::thread::sleep(Duration::from_millis(20));
        let (t1, c1) = stamp();
        let ns = t1.duration_since(t0).as_nanos().max(1);
        (u128::from(c1.wrapping_sub(c0)) * 1_000_000_000 / ns) as u64
    })
}

/// A monotonic-clock reading and a TSC reading taken at the same moment:
/// the TSC is read between two clock reads, retried until they are close
/// together, so a preemption in between cannot skew the calibration.
fn stamp() -> (Instant, u64) {
    let mut best: Option<(Duration, Instant, u64)> = None;
    for _ in 0..32 {
        let before = Instant::now();
        let c = tsc();
        let after = Instant::now();
        let window = after.duration_since(before);
        if best.is_none_or(|(w, _, _)| window < w) {
            best = Some((window, before + window / 2, c));
        }
        if window < Duration::from_micros(20) {
            break;
        }
    }
    let (_, t, c) = best.expect("at least one reading");
    (t, c)
}

/// Converts TSC ticks to milliseconds.
pub fn tsc_to_ms(ticks: u64) -> u64 {
    (ticks as u128 * 1000 / tsc_hz().max(1) as u128) as u64
}

/// Milliseconds since the first call in this process (the timestamps of
/// megaflow `used`/`created`), from the time-stamp counter: a TSC read and
/// one multiply, several times cheaper than `clock_gettime`.
#[inline]
pub fn now_ms() -> u64 {
    ms_at(tsc())
}

/// [`now_ms`] at the moment `tsc` was read (a PMD reuses the reading it
/// took for its cycle counters).
#[inline]
pub fn ms_at(tsc_reading: u64) -> u64 {
    // (TSC at the first call, milliseconds per tick as a 0.64 fixed-point
    // fraction: 1000 * 2^64 / tsc_hz, which fits u64 for any rate above
    // 1 kHz).
    static CLOCK: OnceLock<(u64, u64)> = OnceLock::new();
    let (start, ms_per_tick) = *CLOCK.get_or_init(|| {
        let per_tick = (1000u128 << 64) / u128::from(tsc_hz().max(1001));
        (tsc(), per_tick as u64)
    });
    // A reading from before the first call counts as time 0.
    let ticks = tsc_reading.saturating_sub(start);
    ((u128::from(ticks) * u128::from(ms_per_tick)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_ms_follows_the_wall_clock() {
        let t0 = Instant::now();
        let a = now_ms();
        std::thread::sleep(Duration::from_millis(120));
        let b = now_ms();
        let wall = t0.elapsed().as_millis() as u64;
        // The TSC clock may differ from the monotonic one by the
        // calibration error (well under 1%) plus rounding; 10 ms of slack
        // allows for both without letting a wrong unit through.
        assert!(
            b >= a + 110,
            "now_ms advanced {} ms over a 120 ms sleep",
            b - a
        );
        assert!(
            b - a <= wall + 10,
            "now_ms advanced {} ms in {wall} ms",
            b - a
        );
    }
}
