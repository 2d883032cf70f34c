//! An mbuf pool on transparent huge pages (`MbufMemory::TransparentHugePages`)
//! under an EAL without hugepages: frames go through a virtual device and
//! come back intact, every mbuf returns, and the pool is freed and unmapped.

mod dpdk_common;

use dpdk_common::{udp_frame, TestEal};
use pmd::dpdk::{self, EthPort, Mbuf, MbufMemory, Mempool, MBUF_DEFAULT_BUF_SIZE};
use pmd::{Batch, Packet, RxQueue, TxQueue};
use std::time::{Duration, Instant};

#[test]
fn pool_on_transparent_huge_pages() {
    let eal = TestEal::init("thp", "--vdev net_ring0");
    assert!(!dpdk::has_hugepages(), "the test EAL runs with --no-huge");
    assert!(dpdk::every_device_virtual());

    // More mbufs than one huge page holds, so the pool spans several.
    let n = 4095;
    let pool = Mempool::with_memory(
        "thp_pool",
        n,
        32,
        MBUF_DEFAULT_BUF_SIZE,
        MbufMemory::TransparentHugePages,
    )
    .expect("pool on anonymous memory");
    assert_eq!(pool.memory(), MbufMemory::TransparentHugePages);
    assert_eq!(pool.capacity(), n);
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.available(), n);
    let (bytes, huge) = pool.huge_page_backing().expect("a region");
    assert!(bytes >= u64::from(n) * u64::from(MBUF_DEFAULT_BUF_SIZE));
    eprintln!("thp pool: {bytes} bytes, {huge:?} on huge pages");

    // A second pool of the same name is refused, and its memory given back.
    let again = Mempool::with_memory(
        "thp_pool",
        64,
        0,
        MBUF_DEFAULT_BUF_SIZE,
        MbufMemory::TransparentHugePages,
    );
    assert!(
        matches!(again, Err(dpdk::DpdkError::MempoolCreate { .. })),
        "{again:?}"
    );

    // Every mbuf can be taken at once and is a proper pktmbuf.
    let all: Vec<Mbuf> = (0..n)
        .map(|i| Mbuf::alloc(&pool).unwrap_or_else(|e| panic!("mbuf {i}: {e}")))
        .collect();
    assert_eq!(pool.in_use(), n);
    assert!(Mbuf::alloc(&pool).is_err(), "the pool is exhausted");
    assert!(all.iter().all(|m| m.len() == 0 && m.segments() == 1));
    drop(all);
    assert_eq!(pool.in_use(), 0);

    // net_ring0 alone is a loopback: frames sent come back byte for byte.
    let mut port = EthPort::open("net_ring0").expect("open net_ring0");
    port.configure(1, 1, 0, 0, &pool)
        .expect("a virtual device takes the pool");
    port.start().expect("start");
    let mut rxq = port.rxq(0).expect("rxq");
    let mut txq = port.txq(0).expect("txq");
    let frames: Vec<Vec<u8>> = (1..=20)
        .map(|i| udp_frame(i, usize::from(i) * 50))
        .collect();
    let mut batch: Batch<Mbuf> = Batch::new();
    for f in &frames {
        batch.push(Mbuf::from_bytes(&pool, f).expect("mbuf"));
    }
    assert_eq!(txq.send(&mut batch), frames.len());
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while received.len() < frames.len() && Instant::now() < deadline {
        let rx = rxq.recv_counted(&mut batch);
        if rx.packets > 0 {
            let lengths: u64 = batch.iter().map(|m| m.len() as u64).sum();
            assert_eq!(rx.bytes, lengths);
        }
        received.extend(batch.drain(..).map(|m| m.data().to_vec()));
    }
    assert_eq!(received, frames);
    assert_eq!(pool.in_use(), 0, "every mbuf is back");

    drop((rxq, txq));
    port.close().expect("close");
    drop(port);
    drop(pool);
    eal.cleanup().expect("EAL cleanup (the pool is freed)");
}
