//! `cargo +nightly fuzz run tnl_pop` (from `flowcache/`).
//!
//! Feeds arbitrary bytes to `tunnel::parse_outer` as VXLAN, Geneve and
//! GRE, and checks an accepted frame's inner span lies in the frame and
//! holds at least an Ethernet header. A panic anywhere is a bug.

#![no_main]

use flowcache::tunnel::{parse_outer, TunnelKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [TunnelKind::Vxlan, TunnelKind::Geneve, TunnelKind::Gre] {
        if let Ok(o) = parse_outer(data, kind) {
            assert!(o.inner + 14 <= o.end && o.end <= data.len());
        }
    }
});
