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

/// A datapath with the default configuration and `translator`, and
/// in-memory ports 1..=`n` polled by PMD 0, ready to forward.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn start_with_ports(
    translator: std::sync::Arc<dyn flowcache::upcall::Translator>,
    n: u32,
) -> (pmd::datapath::Datapath<pmd::VecPacket>, Vec<pmd::MemPort>) {
    let mut dp = pmd::datapath::Datapath::start(
        &pmd::datapath::DatapathConfig::default(),
        translator,
        std::sync::Arc::new(|| {}),
        std::sync::Arc::new(|| {}),
    )
    .unwrap();
    let ports: Vec<pmd::MemPort> = (0..n).map(|_| pmd::MemPort::new()).collect();
    for (no, p) in (1..).zip(&ports) {
        dp.add_txq(0, no, Box::new(p.txq()));
        dp.add_rxq(no, 0, Box::new(p.rxq()));
    }
    dp.barrier();
    (dp, ports)
}
