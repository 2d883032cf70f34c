//! DPDK ports on the virtual drivers (net_null, net_ring, net_pcap): bring
//! up, forwarding through `DpdkRxq`/`DpdkTxq`, hot-plug, teardown.
//!
//! The EAL can be initialised once per process, so everything runs in one
//! `#[test]`, step by step.

mod dpdk_common;

use dpdk_common::{read_pcap, udp_frame, write_pcap, ScratchDir, TestEal};
use pmd::dpdk::{
    DpdkError, DpdkRxq, DpdkTxq, EthPort, Mbuf, Mempool, PortState, MBUF_DEFAULT_BUF_SIZE,
};
use pmd::{Batch, Packet, RxQueue, TxQueue};
use std::time::{Duration, Instant};

/// Receives until `want` packets arrived or `timeout` passed.
fn recv_n(rxq: &mut DpdkRxq, want: usize, timeout: Duration) -> Vec<Mbuf> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut batch = Batch::new();
    while got.len() < want && Instant::now() < deadline {
        rxq.recv(&mut batch);
        got.extend(batch.drain(..));
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    got
}

/// Sends `frames` built in `pool` in one batch; returns how many went out.
fn send_frames(txq: &mut DpdkTxq, pool: &Mempool, frames: &[Vec<u8>]) -> usize {
    let mut batch = Batch::new();
    for frame in frames {
        batch.push(Mbuf::from_bytes(pool, frame).expect("mbuf from frame"));
    }
    txq.send(&mut batch)
}

#[test]
fn dpdk_ports() {
    let scratch = ScratchDir::new("dpdk-ports");
    let pcap_in = scratch.path("in.pcap");
    let pcap_out = scratch.path("out.pcap");
    let frames: Vec<Vec<u8>> = vec![
        udp_frame(1, 18),
        udp_frame(2, 100),
        udp_frame(3, 1472),
        udp_frame(4, 0),
        udp_frame(5, 555),
    ];
    write_pcap(&pcap_in, &frames);

    let vdevs = format!(
        "--vdev net_null0 --vdev net_ring0 --vdev 'net_pcap0,rx_pcap={},tx_pcap={}'",
        pcap_in.display(),
        pcap_out.display()
    );
    let eal = TestEal::init("ports", &vdevs);
    let pool = Mempool::new("ports_pool", 2047, 32, MBUF_DEFAULT_BUF_SIZE).expect("mempool");
    let pool_start = pool.in_use();
    assert_eq!(pool_start, 0);

    bad_device_names();
    null_port(&pool);
    assert_eq!(pool.in_use(), pool_start, "null port leaked mbufs");
    ring_port(&pool);
    assert_eq!(pool.in_use(), pool_start, "ring port leaked mbufs");
    pcap_forward(&pool, &frames, &pcap_out);
    assert_eq!(pool.in_use(), pool_start, "pcap port leaked mbufs");
    hotplug(&pool, &scratch);
    assert_eq!(pool.in_use(), pool_start, "hot-plugged ports leaked mbufs");

    assert_eq!(eal.eal.as_ref().map(|e| e.users()), Some(1)); // the pool
    drop(pool);
    eal.cleanup().expect("EAL cleanup");
    // Nothing works after cleanup, and there is no second init.
    assert!(!pmd::dpdk::is_initialized());
    assert!(matches!(
        EthPort::open("net_ring0"),
        Err(DpdkError::EalNotInitialized)
    ));
    assert!(matches!(
        Mempool::new("late", 64, 0, MBUF_DEFAULT_BUF_SIZE),
        Err(DpdkError::EalNotInitialized)
    ));
    assert!(matches!(
        pmd::dpdk::Eal::init("--no-huge"),
        Err(DpdkError::EalAlreadyInitialized)
    ));
}

fn bad_device_names() {
    let err = EthPort::open("net_nope0").unwrap_err();
    assert!(matches!(err, DpdkError::NoSuchDevice { ref name } if name == "net_nope0"));
    assert!(err.to_string().contains("net_nope0"), "{err}");
    assert!(matches!(
        EthPort::open(""),
        Err(DpdkError::InvalidName { .. })
    ));
    assert!(matches!(
        EthPort::open("net\0null0"),
        Err(DpdkError::InvalidName { .. })
    ));
    assert!(matches!(
        EthPort::open(&"x".repeat(200)),
        Err(DpdkError::InvalidName { .. })
    ));
}

fn null_port(pool: &Mempool) {
    let mut port = EthPort::open("net_null0").expect("open net_null0");
    assert_eq!(port.driver_name(), "net_null");
    assert_eq!(port.name(), "net_null0");
    assert_eq!(port.state(), PortState::Probed);
    // One owner per device.
    assert!(matches!(
        EthPort::open("net_null0"),
        Err(DpdkError::PortAlreadyOpen { .. })
    ));
    // Not configured yet.
    assert!(matches!(port.start(), Err(DpdkError::PortState { .. })));
    assert!(matches!(port.rxq(0), Err(DpdkError::PortState { .. })));
    assert!(matches!(
        port.configure(0, 1, 0, 0, pool),
        Err(DpdkError::InvalidArgument(_))
    ));

    let info = port.info().expect("info");
    eprintln!("net_null info: {info:?}");
    // Far more queues than the device has: clamped.
    port.configure(u16::MAX, u16::MAX, 512, 512, pool)
        .expect("configure");
    assert_eq!(port.n_rxq(), info.max_rx_queues);
    assert_eq!(port.n_txq(), info.max_tx_queues);
    // Reconfigure to 2 queues each.
    port.configure(2, 2, 256, 256, pool).expect("reconfigure");
    assert_eq!((port.n_rxq(), port.n_txq()), (2, 2));
    eprintln!(
        "net_null descriptors after adjust: rx {} tx {}",
        port.rx_desc(),
        port.tx_desc()
    );
    port.start().expect("start");
    port.start().expect("start is idempotent");
    assert_eq!(port.state(), PortState::Started);
    let link = port.link().expect("link");
    eprintln!("net_null link: {link:?}");
    assert!(link.up);
    eprintln!("net_null promiscuous: {:?}", port.set_promiscuous(true));
    eprintln!("net_null mac: {:02x?}", port.mac_address().expect("mac"));

    let mut rxq = port.rxq(0).expect("rxq 0");
    let mut txq = port.txq(1).expect("txq 1");
    assert!(matches!(port.rxq(0), Err(DpdkError::QueueTaken { .. })));
    assert!(matches!(port.rxq(2), Err(DpdkError::NoSuchQueue { .. })));
    assert_eq!(port.queue_handles(), 2);
    assert!(matches!(
        port.stop(),
        Err(DpdkError::PortBusy { handles: 2, .. })
    ));
    assert!(matches!(port.close(), Err(DpdkError::PortBusy { .. })));

    // net_null makes up packets on receive and swallows them on transmit.
    let mut batch = Batch::new();
    let received = rxq.recv(&mut batch);
    assert_eq!(received, pmd::BURST, "net_null fills a whole burst");
    assert!(batch.iter().all(|m| m.len() == 64 && m.segments() == 1));
    assert_eq!(pool.in_use() as usize, pmd::BURST);
    // A full batch takes nothing more.
    assert_eq!(rxq.recv(&mut batch), 0);
    let sent = txq.send(&mut batch);
    assert_eq!(sent, pmd::BURST);
    assert!(batch.is_empty());
    assert_eq!(txq.dropped(), 0);
    assert_eq!(pool.in_use(), 0);

    let stats = port.stats().expect("stats");
    eprintln!("net_null stats: {stats:?}");
    assert_eq!(stats.ipackets, pmd::BURST as u64);
    assert_eq!(stats.opackets, pmd::BURST as u64);
    let xstats = port.xstats().expect("xstats");
    eprintln!("net_null xstats: {xstats:?}");
    assert!(xstats
        .iter()
        .any(|(name, value)| name == "rx_good_packets" && *value == pmd::BURST as u64));
    port.reset_stats().expect("reset stats");
    assert_eq!(port.stats().expect("stats").ipackets, 0);

    // Handles moved to another thread work there.
    let worker = std::thread::spawn(move || {
        let lcore = pmd::dpdk::register_thread().expect("register");
        let mut batch = Batch::new();
        let received = rxq.recv(&mut batch);
        let sent = txq.send(&mut batch);
        pmd::dpdk::unregister_thread();
        (lcore, received, sent)
    });
    let (lcore, received, sent) = worker.join().expect("worker");
    eprintln!("worker lcore {lcore}: received {received}, sent {sent}");
    assert_eq!((received, sent), (pmd::BURST, pmd::BURST));
    assert_eq!(port.queue_handles(), 0, "handles dropped with the thread");

    port.stop().expect("stop");
    assert_eq!(port.state(), PortState::Configured);
    port.stop().expect("stop is idempotent");
    port.start().expect("restart");
    port.close().expect("close");
    port.close().expect("close is idempotent");
    assert_eq!(port.state(), PortState::Closed);
    assert!(matches!(port.stats(), Err(DpdkError::PortState { .. })));
    assert!(matches!(port.start(), Err(DpdkError::PortState { .. })));
    assert!(matches!(
        port.configure(1, 1, 0, 0, pool),
        Err(DpdkError::PortState { .. })
    ));
    drop(port);
    // Closing released the ethdev, so the name is gone.
    assert!(matches!(
        EthPort::open("net_null0"),
        Err(DpdkError::NoSuchDevice { .. })
    ));
}

fn ring_port(pool: &Mempool) {
    let mut port = EthPort::open("net_ring0").expect("open net_ring0");
    assert_eq!(port.driver_name(), "net_ring");
    let info = port.info().expect("info");
    eprintln!("net_ring info: {info:?}");
    port.configure(1, 1, 0, 0, pool).expect("configure");
    port.start().expect("start");
    let mut rxq = port.rxq(0).expect("rxq");
    let mut txq = port.txq(0).expect("txq");

    // net_ring0 alone is a loopback: what is sent on its tx ring is
    // received on its rx ring, mbufs and all.
    let frames: Vec<Vec<u8>> = (1..=40).map(|i| udp_frame(i, usize::from(i) * 7)).collect();
    let mut sent = 0;
    for chunk in frames.chunks(pmd::BURST) {
        sent += send_frames(&mut txq, pool, chunk);
    }
    assert_eq!(sent, frames.len());
    assert_eq!(
        pool.in_use() as usize,
        frames.len(),
        "mbufs wait in the ring"
    );
    let received = recv_n(&mut rxq, frames.len(), Duration::from_secs(2));
    let received_frames: Vec<Vec<u8>> = received.iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(received_frames, frames);
    drop(received);
    assert_eq!(pool.in_use(), 0);

    chains(pool, port.port_id(), &mut rxq);

    // Packets still queued at close go back to the pool (net_ring frees its
    // rings on close without emptying them; close drains rx first).
    assert_eq!(send_frames(&mut txq, pool, &frames[..3]), 3);
    assert_eq!(pool.in_use(), 3);
    drop((rxq, txq));
    port.close().expect("close");
    assert_eq!(pool.in_use(), 0);
}

/// Multi-segment packets arriving on a queue are linearised, or dropped
/// when the first segment has no room for the rest. The chains are sent
/// through the loopback ring with raw DPDK calls (the safe API only makes
/// single-segment mbufs).
fn chains(pool: &Mempool, port_id: u16, rxq: &mut DpdkRxq) {
    let chain = |head_bytes: &[u8], tail_bytes: &[u8]| {
        let head = Mbuf::from_bytes(pool, head_bytes).expect("head").into_raw();
        let tail = Mbuf::from_bytes(pool, tail_bytes).expect("tail").into_raw();
        // SAFETY: both mbufs are valid and owned here; this links them into
        // one two-segment packet as DPDK expects (next, nb_segs, pkt_len).
        unsafe {
            let head = &mut *head.as_ptr();
            head.next = tail.as_ptr();
            head.nb_segs = 2;
            head.pkt_len = (head_bytes.len() + tail_bytes.len()) as u32;
        }
        head.as_ptr()
    };
    let frame = udp_frame(42, 300);
    let room = usize::from(MBUF_DEFAULT_BUF_SIZE) - 128;
    let mut packets = [
        chain(&frame[..100], &frame[100..]),
        chain(&vec![0x11; room], &[0x22; 10]),
    ];
    // SAFETY: queue 0 of the started port; this thread also holds its
    // handles and uses them only after this call returns; the driver takes
    // ownership of the packets it accepts.
    let sent = unsafe { dpdk_sys::vportd_tx_burst(port_id, 0, packets.as_mut_ptr(), 2) };
    assert_eq!(sent, 2);
    assert_eq!(pool.in_use(), 4);
    let received = recv_n(rxq, 1, Duration::from_secs(2));
    assert_eq!(received.len(), 1, "the unlinearisable chain is dropped");
    assert_eq!(rxq.dropped_chains(), 1);
    assert_eq!(received[0].segments(), 1);
    assert_eq!(received[0].data(), &frame[..]);
    drop(received);
    assert_eq!(pool.in_use(), 0);
}

fn pcap_forward(pool: &Mempool, frames: &[Vec<u8>], pcap_out: &std::path::Path) {
    let mut port = EthPort::open("net_pcap0").expect("open net_pcap0");
    assert_eq!(port.driver_name(), "net_pcap");
    let info = port.info().expect("info");
    eprintln!("net_pcap info: {info:?}");
    // One rx_pcap and one tx_pcap: one queue each, whatever is asked.
    port.configure(4, 4, 0, 0, pool).expect("configure");
    assert_eq!((port.n_rxq(), port.n_txq()), (1, 1));
    port.start().expect("start");
    let mut rxq = port.rxq(0).expect("rxq");
    let mut txq = port.txq(0).expect("txq");

    // Forward rx -> tx, as a PMD thread would.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut batch = Batch::new();
    let mut forwarded = 0;
    while forwarded < frames.len() && Instant::now() < deadline {
        if rxq.recv(&mut batch) == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        forwarded += txq.send(&mut batch);
    }
    assert_eq!(forwarded, frames.len());
    // The file is read once: nothing more arrives.
    assert_eq!(rxq.recv(&mut batch), 0);
    let stats = port.stats().expect("stats");
    assert_eq!(stats.ipackets, frames.len() as u64);
    assert_eq!(stats.opackets, frames.len() as u64);
    let written_before_close = std::fs::metadata(pcap_out).map(|m| m.len()).unwrap_or(0);
    eprintln!("net_pcap: tx_pcap size before close: {written_before_close} bytes");

    drop((rxq, txq));
    port.close().expect("close");
    let out = read_pcap(pcap_out);
    eprintln!(
        "net_pcap: tx_pcap header: nanosecond={} snaplen={} linktype={}",
        out.nanosecond, out.snaplen, out.linktype
    );
    assert_eq!(out.linktype, 1);
    let out = out.frame_data();
    assert_eq!(out.len(), frames.len());
    for (index, (got, want)) in out.iter().zip(frames).enumerate() {
        assert_eq!(got, want, "frame {index} differs");
    }
}

fn hotplug(pool: &Mempool, scratch: &ScratchDir) {
    // Device errors name the device.
    let err = EthPort::attach("net_bogus0").unwrap_err();
    eprintln!("attach net_bogus0: {err}");
    assert!(matches!(err, DpdkError::DeviceProbe { .. }));
    assert!(err.to_string().contains("net_bogus0"));
    assert!(matches!(
        EthPort::attach("net_null9\0,x"),
        Err(DpdkError::InvalidName { .. })
    ));

    let mut null = EthPort::attach("net_null1,size=128").expect("attach net_null1");
    assert_eq!(null.driver_name(), "net_null");
    null.configure(1, 1, 0, 0, pool).expect("configure");
    null.start().expect("start");
    {
        let mut rxq = null.rxq(0).expect("rxq");
        let mut batch = Batch::new();
        assert_eq!(rxq.recv(&mut batch), pmd::BURST);
        assert!(batch.iter().all(|m| m.len() == 128), "size devarg applied");
    }
    null.close().expect("close");
    // Closing a hot-plugged port removes the device: it can be plugged again.
    assert!(matches!(
        EthPort::open("net_null1"),
        Err(DpdkError::NoSuchDevice { .. })
    ));
    let again = EthPort::attach("net_null1").expect("re-attach net_null1");
    drop(again); // closed and removed on drop

    // A pcap port added at run time.
    let input = scratch.path("hot-in.pcap");
    let output = scratch.path("hot-out.pcap");
    let frames = vec![udp_frame(9, 9), udp_frame(10, 10)];
    write_pcap(&input, &frames);
    let mut pcap = EthPort::attach(&format!(
        "net_pcap1,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    ))
    .expect("attach net_pcap1");
    pcap.configure(1, 1, 0, 0, pool).expect("configure");
    pcap.start().expect("start");
    let mut rxq = pcap.rxq(0).expect("rxq");
    let mut txq = pcap.txq(0).expect("txq");
    let received = recv_n(&mut rxq, frames.len(), Duration::from_secs(5));
    assert_eq!(received.len(), frames.len());
    let mut batch: Batch<Mbuf> = received.into_iter().collect();
    assert_eq!(txq.send(&mut batch), frames.len());
    drop((rxq, txq));
    drop(pcap);
    assert_eq!(read_pcap(&output).frame_data(), frames);

    // Frames larger than an mbuf: net_pcap reads them into a chain, which
    // cannot be linearised and is dropped; the others come through.
    let small = Mempool::new("small_pool", 63, 0, 128 + 512).expect("small pool");
    let input = scratch.path("jumbo-in.pcap");
    let frames = vec![udp_frame(1, 100), udp_frame(2, 1400), udp_frame(3, 400)];
    write_pcap(&input, &frames);
    let mut pcap = EthPort::attach(&format!(
        "net_pcap2,rx_pcap={},tx_pcap={}",
        input.display(),
        scratch.path("jumbo-out.pcap").display()
    ))
    .expect("attach net_pcap2");
    pcap.configure(1, 1, 0, 0, &small).expect("configure");
    pcap.start().expect("start");
    let mut rxq = pcap.rxq(0).expect("rxq");
    let received = recv_n(&mut rxq, 2, Duration::from_secs(5));
    let received_frames: Vec<Vec<u8>> = received.iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(received_frames, vec![frames[0].clone(), frames[2].clone()]);
    assert_eq!(rxq.dropped_chains(), 1);
    drop((received, rxq));
    drop(pcap);
    assert_eq!(small.in_use(), 0);
}
