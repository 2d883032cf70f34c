//! Kernels of the flow caches: EMC hit, dpcls lookup (subtables only, and
//! through a warm SMC), hashing.
//!
//! Every benchmark processes bursts of 32 packets and reports throughput in
//! packets (`Elements(32)`), so criterion's "time" per iteration / 32 is the
//! cost per packet. Keys are read from a pool walked sequentially (as the
//! pipeline reads freshly extracted keys) while the flows they hit are
//! spread over the whole table.
//!
//! Run: `cargo bench -p vportd-benches --bench flowcache` (about a minute).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowcache::dpcls::Dpcls;
use flowcache::emc::Emc;
use flowcache::hash::{hash_key, hash_masked, MaskWords};
use flowcache::key::{FlowKey, ETH_TYPE_IPV4, IPPROTO_TCP};
use flowcache::Megaflow;
use std::sync::Arc;
use std::time::Duration;

const BATCH: usize = 32;
/// Keys in the traffic pool (cycled).
const POOL: usize = 1 << 15;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A TCP/IPv4 packet key with random addresses and ports.
fn packet(rng: &mut Rng) -> FlowKey {
    let mut k = FlowKey {
        in_port: 1,
        dl_type: ETH_TYPE_IPV4,
        nw_proto: IPPROTO_TCP,
        nw_ttl: 64,
        nw_src: rng.next() as u32,
        nw_dst: rng.next() as u32,
        tp_src: rng.next() as u16,
        tp_dst: rng.next() as u16,
        ..FlowKey::default()
    };
    k.dl_src = [0, 1, 2, 3, 4, 5];
    k.dl_dst = [0, 1, 2, 3, 4, 6];
    k
}

/// Mask of subtable `s` (all distinct for s < 75): recirc_id+in_port,
/// dl_type, nw_proto, nw_dst/32, nw_src/(8 + s % 25), tp_src (set to `s` in
/// the flows, so subtables never overlap) and, for s ≥ 25, tp_dst.
fn mask(s: usize) -> FlowKey {
    let plen = 8 + (s % 25) as u32;
    FlowKey {
        recirc_id: u32::MAX,
        in_port: u32::MAX,
        dl_type: u16::MAX,
        nw_proto: u8::MAX,
        nw_dst: u32::MAX,
        nw_src: u32::MAX << (32 - plen),
        tp_src: u16::MAX,
        tp_dst: if s >= 25 { u16::MAX } else { 0 },
        nw_tos: if s >= 50 { 0xfc } else { 0 },
        ..FlowKey::default()
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

fn emc(c: &mut Criterion) {
    let mut g = c.benchmark_group("emc_hit");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n_flows in [32usize, 4096] {
        let mut rng = Rng(1);
        let mut emc = Emc::with_insert_inv_prob(1);
        let mut flows = Vec::new();
        for id in 0..n_flows {
            let k = packet(&mut rng);
            let mf = Arc::new(Megaflow::new(id as u64, &k, &mask(0), Vec::new().into(), 0));
            emc.insert(hash_key(&k), &k, &mf);
            flows.push((k, mf));
        }
        // Keep only the flows still in the EMC (2-way collisions evict some).
        flows.retain(|(k, _)| emc.lookup(hash_key(k), k).is_some());
        let keys: Vec<FlowKey> = (0..POOL).map(|_| flows[rng.below(flows.len())].0).collect();
        let hashes: Vec<u32> = keys.iter().map(hash_key).collect();
        let mut b = 0;
        for simd in [true, false] {
            emc.set_simd(simd);
            let id = if emc.simd() {
                format!("{n_flows}flows/avx2")
            } else {
                format!("{n_flows}flows/scalar")
            };
            g.bench_function(BenchmarkId::from_parameter(id), |bench| {
                bench.iter(|| {
                    let ks = &keys[b..b + BATCH];
                    let hs = &hashes[b..b + BATCH];
                    b = (b + BATCH) % POOL;
                    let mut res = [None; BATCH];
                    let hits = emc.lookup_batch(hs, ks, u32::MAX, &mut res);
                    debug_assert_eq!(hits, u32::MAX);
                    black_box((hits, res[31].map(|m| m.id)))
                })
            });
            if !emc.simd() && simd {
                break; // no AVX2: the scalar run was the only one
            }
        }
    }
    g.finish();
}

fn dpcls(c: &mut Criterion) {
    let mut g = c.benchmark_group("dpcls");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n_sub in [1usize, 4, 16, 64] {
        for n_flows in [1usize, 1000, 100_000] {
            let n_flows = n_flows.max(n_sub);
            let mut rng = Rng(2);
            let mut cls = Dpcls::new();
            let mut flows = Vec::new();
            let mut id = 0;
            while flows.len() < n_flows {
                let s = flows.len() % n_sub;
                let mut k = packet(&mut rng);
                k.tp_src = s as u16;
                let mf = Arc::new(Megaflow::new(id, &k, &mask(s), Vec::new().into(), 0));
                id += 1;
                if cls.insert(mf.clone()).is_ok() {
                    flows.push(mf);
                }
            }
            assert_eq!(cls.n_subtables(), n_sub);
            // Traffic: uniform over the flows, random bits outside the masks.
            let keys: Vec<FlowKey> = (0..POOL)
                .map(|_| {
                    let mf = &flows[rng.below(flows.len())];
                    let mut k = packet(&mut rng);
                    for (w, (m, v)) in k
                        .words_mut()
                        .iter_mut()
                        .zip(mf.mask().words().iter().zip(mf.key().words()))
                    {
                        *w = (*w & !m) | v;
                    }
                    k
                })
                .collect();
            let mut res = [None; BATCH];
            let mut lookups = 0u64;
            for ks in keys.chunks(BATCH) {
                let r = cls.lookup_batch(ks, u32::MAX, &mut res);
                assert_eq!(r.hits, u32::MAX);
                lookups += r.subtable_lookups as u64;
            }
            cls.optimize();
            eprintln!(
                "dpcls {n_sub} subtables, {n_flows} flows: {:.2} subtable lookups/hit",
                lookups as f64 / POOL as f64
            );
            let mut b = 0;
            g.bench_function(
                BenchmarkId::from_parameter(format!("{n_sub}sub/{n_flows}flows")),
                |bench| {
                    bench.iter(|| {
                        let ks = &keys[b..b + BATCH];
                        b = (b + BATCH) % POOL;
                        let mut res = [None; BATCH];
                        let r = cls.lookup_batch(ks, u32::MAX, &mut res);
                        black_box((r, res[31].map(|m| m.id)))
                    })
                },
            );
            // The same through the SMC (bypassed with one subtable), warm:
            // every key of the pool has been seen.
            if n_sub > 1 {
                let hashes: Vec<u32> = keys.iter().map(hash_key).collect();
                for (ks, hs) in keys.chunks(BATCH).zip(hashes.chunks(BATCH)) {
                    let mut res = [None; BATCH];
                    cls.lookup_batch_hashed(ks, hs, u32::MAX, &mut res);
                }
                g.bench_function(
                    BenchmarkId::from_parameter(format!("{n_sub}sub/{n_flows}flows/smc")),
                    |bench| {
                        bench.iter(|| {
                            let ks = &keys[b..b + BATCH];
                            let hs = &hashes[b..b + BATCH];
                            b = (b + BATCH) % POOL;
                            let mut res = [None; BATCH];
                            let r = cls.lookup_batch_hashed(ks, hs, u32::MAX, &mut res);
                            black_box((r, res[31].map(|m| m.id)))
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut rng = Rng(3);
    let keys: Vec<FlowKey> = (0..BATCH).map(|_| packet(&mut rng)).collect();
    let mw = MaskWords::new(&mask(30));
    g.bench_function(format!("masked_{}words", mw.n), |bench| {
        bench.iter(|| {
            let mut acc = 0u64;
            for k in black_box(&keys) {
                acc ^= hash_masked(k, black_box(&mw));
            }
            acc
        })
    });
    g.bench_function("hash_key_24words", |bench| {
        bench.iter(|| {
            let mut acc = 0u32;
            for k in black_box(&keys) {
                acc ^= hash_key(k);
            }
            acc
        })
    });
    g.finish();
}

/// A minimum-size Ethernet/IPv4/UDP frame (the traffic benchmark's).
fn udp_frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&(0x0a00_0001 + i).to_be_bytes());
    f[30..34].copy_from_slice(&0xc0a8_0001u32.to_be_bytes());
    f[34..36].copy_from_slice(&(1024 + i as u16).to_be_bytes());
    f[36..38].copy_from_slice(&5001u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}

/// Flow key extraction, per packet, on a burst of 32 IPv4/UDP frames and
/// on 32 VLAN-tagged IPv6/TCP frames.
fn extract(c: &mut Criterion) {
    use flowcache::extract::{extract, PacketMeta};
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(32));
    let v4: Vec<Vec<u8>> = (0..32).map(udp_frame).collect();
    let v6: Vec<Vec<u8>> = (0..32u8)
        .map(|i| {
            let mut f = vec![0u8; 78];
            f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
            f[14..16].copy_from_slice(&100u16.to_be_bytes());
            f[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
            f[18] = 0x60;
            f[22..24].copy_from_slice(&20u16.to_be_bytes());
            f[24] = 6;
            f[25] = 64;
            f[26 + 15] = i;
            f[42 + 15] = 1;
            f[58..60].copy_from_slice(&1234u16.to_be_bytes());
            f[60..62].copy_from_slice(&80u16.to_be_bytes());
            f[70] = 0x50;
            f[71] = 0x02;
            f
        })
        .collect();
    let meta = PacketMeta {
        in_port: 1,
        ..PacketMeta::default()
    };
    for (name, frames) in [("ipv4_udp", &v4), ("vlan_ipv6_tcp", &v6)] {
        let mut keys = vec![FlowKey::default(); 32];
        g.bench_function(name, |b| {
            b.iter(|| {
                for (f, k) in frames.iter().zip(keys.iter_mut()) {
                    let _ = black_box(extract(black_box(f), &meta, k));
                }
                black_box(&keys);
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = extract, emc, dpcls, hashing
}
criterion_main!(benches);
