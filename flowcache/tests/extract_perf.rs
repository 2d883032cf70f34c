//! Rough throughput of `extract` (not a criterion bench; run with
//! `cargo test --release -p flowcache --test extract_perf -- --ignored --nocapture`).

use flowcache::extract::{extract, PacketMeta};
use flowcache::key::FlowKey;
use std::hint::black_box;
use std::time::Instant;

fn hx(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn run(name: &str, frame: &[u8]) {
    let frames: Vec<Vec<u8>> = (0..32u8)
        .map(|i| {
            let mut f = frame.to_vec();
            f[5] = i;
            f
        })
        .collect();
    let mut keys = vec![FlowKey::default(); 32];
    let meta = PacketMeta {
        in_port: 1,
        ..Default::default()
    };
    let bursts = 200_000;
    let t = Instant::now();
    for _ in 0..bursts {
        for (f, k) in frames.iter().zip(keys.iter_mut()) {
            let _ = black_box(extract(black_box(f), &meta, k));
        }
        black_box(&keys);
    }
    let ns = t.elapsed().as_nanos() as f64 / (bursts * 32) as f64;
    println!("{name:>12}: {ns:.1} ns/packet");
}

#[test]
#[ignore]
fn extract_throughput() {
    for _ in 0..2 {
        run(
        "ipv4/udp",
        &hx("000000000002000000000001080045000024000100004011f9c30a0000010a00000204d200350010c0b5000102030405060708"),
    );
        run(
        "vlan/ipv4/tcp",
        &hx("0000000000020000000000018100006408004500002800010000400666cd0a0000010a00000204d200500000000100000000500220007bbb0000"),
    );
        run(
        "ipv6/udp",
        &hx("00000000000200000000000186dd600000000010114020010db800000000000000000000000120010db800000000000000000000000204d2003500100000000102030405060708"),
    );
    }
}
