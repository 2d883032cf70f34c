//! Helpers shared by the datapath tests over in-memory ports.

use std::time::{Duration, Instant};

/// Polls `cond` every 5 ms until it holds; fails the test after 10 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
