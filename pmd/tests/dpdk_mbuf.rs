//! EAL lifecycle, mempools, `Mbuf` as a `Packet`, thread registration.
//!
//! The EAL can be initialised once per process, so everything runs in one
//! `#[test]`, step by step.

mod dpdk_common;

use dpdk_common::{eal_args, runtime_dir, udp_frame};
use pmd::dpdk::{
    self, DpdkError, Eal, EthPort, Mbuf, Mempool, MBUF_DEFAULT_BUF_SIZE, MBUF_HEADROOM,
};
use pmd::Packet;

#[test]
fn dpdk_mbuf() {
    before_init();
    let (args, prefix) = eal_args("mbuf", "");
    let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL init: {e}"));
    let result = std::panic::catch_unwind(|| after_init(eal));
    let _ = std::fs::remove_dir_all(runtime_dir(&prefix));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Everything refuses to work before the EAL is up, with typed errors.
fn before_init() {
    assert!(!dpdk::is_initialized());
    assert!(matches!(
        Mempool::new("early", 64, 0, MBUF_DEFAULT_BUF_SIZE),
        Err(DpdkError::EalNotInitialized)
    ));
    assert!(matches!(
        EthPort::open("net_null0"),
        Err(DpdkError::EalNotInitialized)
    ));
    assert!(matches!(
        dpdk::register_thread(),
        Err(DpdkError::EalNotInitialized)
    ));
    assert_eq!(dpdk::tsc_hz(), 0);
    assert!(matches!(
        Eal::init("-l 0 --vdev 'net_null0"),
        Err(DpdkError::EalArgs { .. })
    ));
    assert!(matches!(
        Eal::init("-l 0 --file-prefix=a\0b"),
        Err(DpdkError::EalArgs { .. })
    ));
}

fn after_init(eal: Eal) {
    assert!(dpdk::is_initialized());
    let (args, _) = eal_args("mbuf-again", "");
    assert!(matches!(
        Eal::init(&args),
        Err(DpdkError::EalAlreadyInitialized)
    ));
    assert!(dpdk::tsc_hz() > 0);
    let t0 = dpdk::tsc();
    assert!(dpdk::tsc() >= t0);
    // rte_eal_init made the calling thread the main lcore.
    assert_eq!(dpdk::lcore_id(), Some(0));
    assert_eq!(dpdk::register_thread().expect("main lcore"), 0);
    dpdk::unregister_thread();
    assert_eq!(dpdk::lcore_id(), Some(0), "EAL lcores stay registered");

    mempool_errors();
    let pool = Mempool::new("mbuf_pool", 255, 16, MBUF_DEFAULT_BUF_SIZE).expect("mempool");
    assert_eq!(pool.capacity(), 255);
    assert_eq!((pool.in_use(), pool.available()), (0, 255));
    packet_ops(&pool);
    assert_eq!(pool.in_use(), 0);
    clone_ops(&pool);
    assert_eq!(pool.in_use(), 0);
    exhaustion();
    threads(&pool);
    assert_eq!(pool.in_use(), 0);

    // Cleanup waits for the pools: `pool`, and the one `exhaustion` leaked
    // (dropped while an mbuf was out), which keeps the EAL up for good.
    assert_eq!(eal.users(), 2);
    assert!(matches!(
        eal.cleanup(),
        Err(DpdkError::EalInUse { users: 2 })
    ));
    assert!(dpdk::is_initialized(), "deferred while the pools live");
    drop(pool);
    assert!(dpdk::is_initialized(), "the leaked pool keeps the EAL up");
    // Still usable: nothing was torn down under the leaked pool.
    drop(Mempool::new("after", 64, 0, MBUF_DEFAULT_BUF_SIZE).expect("pool"));
}

fn mempool_errors() {
    let invalid_name = |name: &str| {
        matches!(
            Mempool::new(name, 64, 0, MBUF_DEFAULT_BUF_SIZE),
            Err(DpdkError::InvalidName { .. })
        )
    };
    assert!(invalid_name(""));
    assert!(invalid_name("a\0b"));
    assert!(invalid_name(&"p".repeat(dpdk::MEMPOOL_NAME_MAX + 1)));
    assert!(matches!(
        Mempool::new("zero", 0, 0, MBUF_DEFAULT_BUF_SIZE),
        Err(DpdkError::InvalidArgument(_))
    ));
    assert!(matches!(
        Mempool::new("tiny", 64, 0, MBUF_HEADROOM - 1),
        Err(DpdkError::InvalidArgument(_))
    ));
    // A cache larger than DPDK allows: DPDK's own error comes through.
    let err = Mempool::new("bigcache", 64, 100_000, MBUF_DEFAULT_BUF_SIZE).unwrap_err();
    eprintln!("oversized cache: {err}");
    assert!(matches!(err, DpdkError::MempoolCreate { .. }));
    let first = Mempool::new("dup", 64, 0, MBUF_DEFAULT_BUF_SIZE).expect("first");
    let err = Mempool::new("dup", 64, 0, MBUF_DEFAULT_BUF_SIZE).unwrap_err();
    eprintln!("duplicate pool: {err}");
    assert!(
        matches!(err, DpdkError::MempoolCreate { ref error, .. } if error.errno == libc::EEXIST)
    );
    drop(first);
    // The name is free again once the pool is freed.
    drop(Mempool::new("dup", 64, 0, MBUF_DEFAULT_BUF_SIZE).expect("re-created"));
}

fn packet_ops(pool: &Mempool) {
    let frame = udp_frame(7, 50);
    let mut mbuf = Mbuf::from_bytes(pool, &frame).expect("from_bytes");
    assert_eq!(pool.in_use(), 1);
    assert_eq!(mbuf.data(), &frame[..]);
    assert_eq!(mbuf.len(), frame.len());
    assert_eq!(mbuf.headroom(), usize::from(MBUF_HEADROOM));
    assert_eq!(
        mbuf.tailroom(),
        usize::from(MBUF_DEFAULT_BUF_SIZE - MBUF_HEADROOM) - frame.len()
    );
    assert_eq!(mbuf.segments(), 1);
    assert_eq!(mbuf.rss_hash(), None);

    // Push a VLAN-sized header in front, then pull it off.
    assert!(mbuf.push_front(4));
    mbuf.data_mut()[..4].copy_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    assert_eq!(&mbuf.data()[..4], &[0x81, 0x00, 0x00, 0x2a]);
    assert_eq!(&mbuf.data()[4..], &frame[..]);
    assert_eq!(mbuf.headroom(), usize::from(MBUF_HEADROOM) - 4);
    assert!(mbuf.pull_front(4));
    assert_eq!(mbuf.data(), &frame[..]);
    // Pull the Ethernet header: the IP packet remains.
    assert!(mbuf.pull_front(14));
    assert_eq!(mbuf.data(), &frame[14..]);
    assert!(mbuf.push_front(14));
    assert_eq!(mbuf.data(), &frame[..]);

    // Out-of-range requests change nothing.
    assert!(!mbuf.push_front(usize::from(MBUF_HEADROOM) + 1));
    assert!(!mbuf.push_front(usize::MAX));
    assert!(!mbuf.pull_front(frame.len() + 1));
    assert!(!mbuf.pull_front(usize::MAX));
    assert_eq!(mbuf.data(), &frame[..]);
    mbuf.truncate(frame.len() + 100);
    assert_eq!(mbuf.data(), &frame[..]);

    mbuf.truncate(20);
    assert_eq!(mbuf.data(), &frame[..20]);
    assert!(mbuf.pull_front(20));
    assert!(mbuf.is_empty());
    assert!(mbuf.push_front(usize::from(MBUF_HEADROOM) + 20));
    assert_eq!(mbuf.headroom(), 0);
    assert_eq!(mbuf.len(), usize::from(MBUF_HEADROOM) + 20);

    // Whole data room, and one byte too many.
    let room = usize::from(MBUF_DEFAULT_BUF_SIZE - MBUF_HEADROOM);
    let full = Mbuf::from_bytes(pool, &vec![0xab; room]).expect("full mbuf");
    assert_eq!(full.len(), room);
    assert_eq!(full.tailroom(), 0);
    let err = Mbuf::from_bytes(pool, &vec![0; room + 1]).unwrap_err();
    assert!(
        matches!(err, DpdkError::FrameTooLarge { len, room: r, .. } if len == room + 1 && r == room)
    );
    assert_eq!(pool.in_use(), 2);
    drop((mbuf, full));

    // A driver-provided RSS hash is reported, and copied by clones.
    let mut hashed = Mbuf::from_bytes(pool, &frame).expect("from_bytes");
    set_rss_hash(&mut hashed, 0xdead_beef);
    assert_eq!(hashed.rss_hash(), Some(0xdead_beef));
    assert_eq!(
        hashed.try_clone().expect("clone").rss_hash(),
        Some(0xdead_beef)
    );
    drop(hashed);

    // Raw round trip.
    let mbuf = Mbuf::from_bytes(pool, &frame).expect("from_bytes");
    let raw = mbuf.into_raw();
    assert_eq!(pool.in_use(), 1);
    // SAFETY: `raw` came from into_raw and is not used afterwards.
    let mbuf = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(mbuf.data(), &frame[..]);
}

/// Sets what a driver with the RSS_HASH offload sets: the flag and the hash.
fn set_rss_hash(mbuf: &mut Mbuf, hash: u32) {
    // SAFETY: the mbuf is valid and exclusively ours (`&mut`); only plain
    // header fields are written.
    unsafe {
        let raw = &mut *mbuf.as_ptr();
        raw.ol_flags |= u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH);
        raw.__bindgen_anon_2.hash.rss = hash;
    }
}

fn clone_ops(pool: &Mempool) {
    let frame = udp_frame(3, 200);
    let mut original = Mbuf::from_bytes(pool, &frame).expect("from_bytes");
    let mut copy = original.try_clone().expect("clone");
    assert_eq!(pool.in_use(), 2);
    assert_eq!(copy.data(), original.data());
    assert_ne!(copy.as_ptr(), original.as_ptr());
    // Independent buffers.
    copy.data_mut()[0] = 0xff;
    assert_eq!(original.data()[0], frame[0]);
    original.truncate(10);
    assert_eq!(copy.len(), frame.len());
    drop((original, copy));

    // A frame with headers pushed deep into the headroom is longer than a
    // fresh mbuf's room: the copy keeps the original layout, one segment.
    let small = Mempool::new("small_pool", 15, 0, MBUF_HEADROOM + 256).expect("small pool");
    let mut deep = Mbuf::from_bytes(&small, &[0x5a; 256]).expect("full");
    assert!(deep.push_front(100));
    deep.data_mut()[..100].fill(0xa5);
    set_rss_hash(&mut deep, 0x1234_5678);
    let copy = deep.try_clone().expect("clone of deep packet");
    assert_eq!(copy.rss_hash(), Some(0x1234_5678), "metadata copied too");
    assert_eq!(copy.segments(), 1);
    assert_eq!(copy.len(), 356);
    assert_eq!(copy.data(), deep.data());
    assert_eq!(copy.headroom(), deep.headroom());
    // An ordinary one gets the full headroom back.
    assert!(deep.pull_front(200));
    let copy2 = deep.try_clone().expect("clone");
    assert_eq!(copy2.headroom(), usize::from(MBUF_HEADROOM));
    assert_eq!(copy2.data(), deep.data());
    assert_eq!(small.in_use(), 3);

    // No free mbuf: None, not a panic.
    let hoard: Vec<Mbuf> = (0..12)
        .map(|_| Mbuf::alloc(&small).expect("alloc"))
        .collect();
    assert_eq!(small.available(), 0);
    assert!(deep.try_clone().is_none());
    drop((hoard, copy, copy2, deep));
    assert_eq!(small.in_use(), 0);
}

fn exhaustion() {
    let pool = Mempool::new("exhaust", 8, 0, MBUF_DEFAULT_BUF_SIZE).expect("pool");
    let all: Vec<Mbuf> = (0..8)
        .map(|i| Mbuf::from_bytes(&pool, &[i; 60]).expect("alloc"))
        .collect();
    let err = Mbuf::from_bytes(&pool, &[0; 60]).unwrap_err();
    assert!(matches!(err, DpdkError::MempoolExhausted { ref pool } if pool == "exhaust"));
    assert_eq!(pool.in_use(), 8);
    drop(all);
    assert_eq!(pool.in_use(), 0);

    // A pool dropped while its mbufs live is leaked, not freed: the mbuf
    // stays usable.
    let orphan = Mbuf::from_bytes(&pool, &[1, 2, 3]).expect("alloc");
    drop(pool);
    assert_eq!(orphan.data(), &[1, 2, 3]);
    drop(orphan);
}

fn threads(pool: &Mempool) {
    // Mbufs move between threads; a registered thread gets its own lcore
    // id (and mempool cache), an unregistered one works without.
    let frames: Vec<Mbuf> = (0..16)
        .map(|i| Mbuf::from_bytes(pool, &udp_frame(i, 10)).expect("alloc"))
        .collect();
    let registered = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            assert_eq!(dpdk::lcore_id(), None);
            let lcore = dpdk::register_thread().expect("register");
            assert_eq!(dpdk::lcore_id(), Some(lcore));
            assert_eq!(dpdk::register_thread().expect("again"), lcore);
            let mine: Vec<Mbuf> = (0..8)
                .map(|_| Mbuf::from_bytes(&pool, &[0; 64]).expect("alloc"))
                .collect();
            drop((frames, mine));
            dpdk::unregister_thread();
            assert_eq!(dpdk::lcore_id(), None);
            lcore
        })
        .join()
        .expect("registered thread")
    };
    assert_ne!(registered, 0);
    let unregistered = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mbuf = Mbuf::from_bytes(&pool, &[9; 9]).expect("alloc");
            let copy = mbuf.try_clone().expect("clone");
            copy.data().to_vec()
        })
        .join()
        .expect("plain thread")
    };
    assert_eq!(unregistered, vec![9; 9]);
}
