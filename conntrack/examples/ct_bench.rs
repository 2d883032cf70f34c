//! Tracker micro-benchmark: connection setup rate, established-path cost
//! (one and two threads), memory per connection.
//!
//! `cargo run --release -p conntrack --example ct_bench [N_CONNS]`

use conntrack::Conntrack;
use flowcache::actions::CtAction;
use flowcache::extract::CtMeta;
use std::sync::Arc;
use std::time::Instant;

fn udp(src: u32, dst: u32, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8];
    f[12] = 0x08;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&28u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.to_be_bytes());
    ip[16..20].copy_from_slice(&dst.to_be_bytes());
    let mut acc: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let c = !(acc as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let l4 = &mut f[34..42];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&8u16.to_be_bytes());
    // UDP checksum 0: none (IPv4).
    f
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn frames(n: u32, reply: bool) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let src = 0x0a00_0000 | (i >> 16);
            let sport = (i & 0xffff) as u16;
            if reply {
                udp(0x0b00_0001, src, 53, sport)
            } else {
                udp(src, 0x0b00_0001, sport, 53)
            }
        })
        .collect()
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t = Arc::new(Conntrack::new());
    let mut orig = frames(n, false);
    let mut rep = frames(n, true);
    let commit = CtAction {
        commit: true,
        ..CtAction::default()
    };
    let look = CtAction::default();
    let rss0 = rss_kib();
    let t0 = Instant::now();
    for f in orig.iter_mut() {
        let mut m = CtMeta::default();
        t.execute(0, f, 14, 0x0800, &commit, &mut m, 0);
    }
    let setup = t0.elapsed();
    let rss1 = rss_kib();
    println!(
        "setup: {n} connections in {:.3} s = {:.0} conn/s; memory {:.0} B/connection (RSS)",
        setup.as_secs_f64(),
        f64::from(n) / setup.as_secs_f64(),
        (rss1 - rss0) as f64 * 1024.0 / f64::from(n)
    );
    // Established path: replies then originals, single thread.
    for round in 0..2 {
        let t0 = Instant::now();
        for (a, b) in rep.iter_mut().zip(orig.iter_mut()) {
            let mut m = CtMeta::default();
            t.execute(0, a, 14, 0x0800, &look, &mut m, 1);
            t.execute(0, b, 14, 0x0800, &look, &mut m, 1);
        }
        let el = t0.elapsed();
        println!(
            "established (1 thread, round {round}): {:.1} ns/packet",
            el.as_nanos() as f64 / (2.0 * f64::from(n))
        );
    }
    // Two threads, each one direction.
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let (ta, tb) = (t.clone(), t.clone());
        let (ra, rb) = (&mut rep, &mut orig);
        let (la, lb) = (&look, &look);
        s.spawn(move || {
            for f in ra.iter_mut() {
                let mut m = CtMeta::default();
                ta.execute(0, f, 14, 0x0800, la, &mut m, 2);
            }
        });
        s.spawn(move || {
            for f in rb.iter_mut() {
                let mut m = CtMeta::default();
                tb.execute(1, f, 14, 0x0800, lb, &mut m, 2);
            }
        });
    });
    let el = t0.elapsed();
    println!(
        "established (2 threads): {:.1} M packets/s total",
        2.0 * f64::from(n) / el.as_secs_f64() / 1e6
    );
    let c = t.counters();
    println!("counters: {:?}", c);
}
