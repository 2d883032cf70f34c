//! The whole datapath (PMD thread, handler pool, revalidator) over
//! in-memory ports, with a small translator standing in for ofproto.

#[path = "mem_common/mod.rs"]
mod mem_common;
use flowcache::actions::{DpAction, DropReason};
use flowcache::key::{FlowKey, ETH_TYPE_IPV4};
use flowcache::upcall::{Translation, Translator};
use mem_common::wait_for;
use pmd::datapath::{Datapath, DatapathConfig};
use pmd::{MemPort, VecPacket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// in_port=1,ip → output:<out_port>; everything else dropped. The mask is
/// in_port + dl_type, so every IPv4 packet of port 1 shares one megaflow.
struct PortForward {
    out_port: AtomicU32,
    generation: AtomicU64,
    translations: AtomicU64,
}

impl Translator for PortForward {
    fn translate(&self, key: &FlowKey) -> Translation {
        self.translations.fetch_add(1, Ordering::Relaxed);
        let mask = FlowKey {
            in_port: u32::MAX,
            recirc_id: u32::MAX,
            dl_type: u16::MAX,
            ..FlowKey::default()
        };
        let (actions, drop_reason) = if key.in_port == 1 && key.dl_type == ETH_TYPE_IPV4 {
            (
                vec![DpAction::Output(self.out_port.load(Ordering::Relaxed))],
                None,
            )
        } else {
            (vec![], Some(DropReason::TableMiss))
        };
        Translation {
            actions: actions.into(),
            mask,
            install: true,
            state_changed: false,
            drop_reason,
            rules: None,
        }
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

fn udp_frame(src_ip: u32, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src_ip.to_be_bytes());
    f[30..34].copy_from_slice(&0xc0a8_0001u32.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&5001u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}

fn arp_frame() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f
}

struct Setup {
    dp: Datapath<VecPacket>,
    p1: MemPort,
    p2: MemPort,
    p3: MemPort,
    translator: Arc<PortForward>,
}

fn setup(emc_inv_prob: u32) -> Setup {
    let translator = Arc::new(PortForward {
        out_port: AtomicU32::new(2),
        generation: AtomicU64::new(0),
        translations: AtomicU64::new(0),
    });
    let cfg = DatapathConfig {
        emc_insert_inv_prob: emc_inv_prob,
        ..DatapathConfig::default()
    };
    let mut dp: Datapath<VecPacket> =
        Datapath::start(&cfg, translator.clone(), Arc::new(|| {}), Arc::new(|| {})).unwrap();
    let (p1, p2, p3) = (MemPort::new(), MemPort::new(), MemPort::new());
    for (no, p) in [(1, &p1), (2, &p2), (3, &p3)] {
        dp.add_txq(0, no, Box::new(p.txq()));
        dp.add_rxq(no, 0, Box::new(p.rxq()));
    }
    dp.barrier();
    Setup {
        dp,
        p1,
        p2,
        p3,
        translator,
    }
}

#[test]
fn forwards_through_upcall_then_megaflow_and_emc() {
    let s = setup(1);
    // 20 flows, 10 rounds: repeats hit the EMC.
    let frames: Vec<Vec<u8>> = (0..200u32)
        .map(|i| udp_frame(0x0a00_0001 + i % 20, 1024 + (i % 20) as u16))
        .collect();
    // The first packet alone, so exactly one upcall happens.
    s.p1.inject(&frames[0]);
    wait_for("first packet", || s.p2.state.lock().tx.len() == 1);
    for f in &frames[1..] {
        s.p1.inject(f);
    }
    s.p1.inject(&arp_frame());
    wait_for("all packets", || s.p2.state.lock().tx.len() == 200);
    let sent = s.p2.take_sent();
    assert_eq!(sent, frames, "forwarded unchanged and in order");
    assert!(s.p3.take_sent().is_empty());

    wait_for("arp drop", || {
        s.dp.pmds[0].stats.drops[DropReason::TableMiss as usize].get() == 1
    });
    let st = s.dp.pmds[0].stats.snapshot();
    assert_eq!(st.rx_packets, 201);
    assert_eq!(st.upcalls, 2, "one upcall for IPv4, one for ARP");
    assert_eq!(
        st.simple_hits + st.emc_hits + st.smc_hits + st.megaflow_hits + st.upcalls,
        201
    );
    assert!(
        st.simple_hits + st.emc_hits > 0,
        "later packets hit the simple match (port-only megaflows) or the EMC"
    );
    assert_eq!(st.tx_packets, 200);
    assert_eq!(s.dp.limits.n_megaflows.load(Ordering::Relaxed), 2);
    // rx = hits + upcalls + drops before lookup
    assert_eq!(
        st.rx_packets,
        st.simple_hits
            + st.emc_hits
            + st.smc_hits
            + st.megaflow_hits
            + st.upcalls
            + st.lost_upcalls
    );
    s.dp.shutdown();
}

#[test]
fn revalidation_follows_a_rule_change() {
    let s = setup(100);
    s.p1.inject(&udp_frame(0x0a00_0001, 1));
    wait_for("to p2", || s.p2.state.lock().tx.len() == 1);
    // The "rules" change: output to port 3 now.
    s.translator.out_port.store(3, Ordering::Relaxed);
    s.translator.generation.fetch_add(1, Ordering::Relaxed);
    s.dp.revalidate_now();
    assert_eq!(s.dp.registry.lock().revalidated_away, 1);
    s.p1.inject(&udp_frame(0x0a00_0001, 1));
    wait_for("to p3", || s.p3.state.lock().tx.len() == 1);
    assert_eq!(s.p2.take_sent().len(), 1, "nothing more on the old port");
    s.dp.shutdown();
}

#[test]
fn short_frames_are_counted_and_dropped() {
    let s = setup(100);
    s.p1.inject(&[0u8; 13]);
    s.p1.inject(&[0u8; 14]);
    wait_for("both received", || s.dp.pmds[0].stats.rx_packets.get() == 2);
    wait_for("short frame counted", || {
        s.dp.pmds[0].stats.drops[DropReason::InvalidPacket as usize].get() == 1
    });
    s.dp.shutdown();
}

#[test]
fn removed_port_stops_receiving_and_sending() {
    let s = setup(100);
    s.dp.remove_port(2);
    s.p1.inject(&udp_frame(0x0a00_0001, 1));
    wait_for("drop counted", || {
        s.dp.pmds[0].stats.drops[DropReason::NoSuchPort as usize].get() == 1
    });
    assert!(s.p2.take_sent().is_empty());
    s.dp.shutdown();
}

#[test]
fn idle_detection_waits_for_pending_upcalls() {
    let s = setup(100);
    assert!(!s.dp.is_idle(60_000));
    std::thread::sleep(Duration::from_millis(60));
    assert!(s.dp.is_idle(50));
    s.p1.inject(&udp_frame(0x0a00_0001, 1));
    wait_for("forwarded", || s.p2.state.lock().tx.len() == 1);
    assert!(!s.dp.is_idle(50));
    s.dp.shutdown();
}

/// Frames of a classic pcap written by the capture (native byte order).
fn pcap_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() >= 24, "no pcap header");
    let rd = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(rd(0), 0xa1b2_c3d4);
    assert_eq!(rd(20), 1, "linktype Ethernet");
    let mut out = Vec::new();
    let mut off = 24;
    while off < b.len() {
        let incl = rd(off + 8) as usize;
        assert_eq!(rd(off + 12) as usize, incl);
        off += 16;
        out.push(b[off..off + incl].to_vec());
        off += incl;
    }
    out
}

#[test]
fn capture_mirrors_rx_and_tx_into_pcap_files() {
    let s = setup(1);
    let dir = std::env::temp_dir().join(format!("pmd-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (rx_file, tx_file) = (dir.join("p1.pcap"), dir.join("p2.pcap"));
    let frames: Vec<Vec<u8>> = (0..20).map(|i| udp_frame(0x0a00_0001 + i, 1000)).collect();

    s.dp.start_capture(1, &rx_file, None, false).unwrap();
    s.dp.start_capture(2, &tx_file, Some(5), false).unwrap();
    // One capture per port.
    let e = s.dp.start_capture(2, &tx_file, None, false).unwrap_err();
    assert!(e.to_string().contains("already being captured"), "{e}");
    assert!(s
        .dp
        .start_capture(3, &dir.join("x"), Some(0), false)
        .is_err());
    let e = s.dp.start_capture(3, &rx_file, None, false).unwrap_err();
    assert!(e.to_string().contains("capture of port 1"), "{e}");
    let e =
        s.dp.start_capture(3, &dir.join("no/such/dir/x.pcap"), None, false)
            .unwrap_err();
    assert!(e.to_string().contains("cannot write"), "{e}");
    assert_eq!(s.dp.captures().len(), 2);

    for f in &frames {
        s.p1.inject(f);
    }
    wait_for("the capture of port 2 to end", || {
        s.dp.captures().iter().all(|c| c.port != 2)
    });
    // Port 2's capture ended by itself after 5 packets.
    assert_eq!(pcap_frames(&tx_file), frames[..5].to_vec());
    wait_for("20 packets captured on p1", || {
        s.dp.captures()[0].written_rx == 20
    });
    let info = s.dp.stop_capture(1).unwrap();
    assert_eq!((info.written_rx, info.written_tx, info.lost), (20, 0, 0));
    assert_eq!(pcap_frames(&rx_file), frames);
    assert!(s.dp.captures().is_empty());
    assert!(s.dp.stop_capture(1).is_err());
    let _ = std::fs::remove_dir_all(&dir);
    s.dp.shutdown();
}

#[test]
fn an_rx_queue_moves_between_pmds_and_keeps_forwarding() {
    let translator = Arc::new(PortForward {
        out_port: AtomicU32::new(2),
        generation: AtomicU64::new(0),
        translations: AtomicU64::new(0),
    });
    let cfg = DatapathConfig {
        pmd_cores: vec![None, None],
        ..DatapathConfig::default()
    };
    let mut dp: Datapath<VecPacket> =
        Datapath::start(&cfg, translator, Arc::new(|| {}), Arc::new(|| {})).unwrap();
    let (p1, p2) = (MemPort::new(), MemPort::new());
    for pmd in 0..2 {
        dp.add_txq(pmd, 1, Box::new(p1.txq()));
        dp.add_txq(pmd, 2, Box::new(p2.txq()));
    }
    // Round-robin: p1's queue on PMD 0, p2's on PMD 1.
    assert_eq!(dp.add_rxq(1, 0, Box::new(p1.rxq())), 0);
    assert_eq!(dp.add_rxq(2, 0, Box::new(p2.rxq())), 1);
    dp.barrier();
    let polled =
        |pmd: usize| -> Vec<u32> { dp.pmds[pmd].rxqs.lock().iter().map(|r| r.port).collect() };

    p1.inject(&udp_frame(0x0a00_0001, 1));
    wait_for("forwarded by PMD 0", || p2.state.lock().tx.len() == 1);
    assert_eq!(dp.pmds[0].stats.rx_packets.get(), 1);

    dp.move_rxq(1, 0, 1).unwrap();
    assert_eq!((polled(0), polled(1)), (vec![], vec![2, 1]));
    for i in 0..50 {
        p1.inject(&udp_frame(0x0a00_0001, 1 + i));
    }
    wait_for("forwarded by PMD 1", || p2.state.lock().tx.len() == 51);
    assert_eq!(
        dp.pmds[0].stats.rx_packets.get(),
        1,
        "PMD 0 no longer polls p1"
    );
    assert_eq!(dp.pmds[1].stats.rx_packets.get(), 50);

    use pmd::datapath::MoveRxqError;
    assert_eq!(dp.move_rxq(1, 0, 1), Ok(()), "already there");
    assert_eq!(dp.move_rxq(1, 0, 7), Err(MoveRxqError::NoSuchPmd(7)));
    assert_eq!(
        dp.move_rxq(9, 0, 0),
        Err(MoveRxqError::NotPolled { port: 9, queue: 0 })
    );
    dp.shutdown();
}

/// in_port=1 → output:2 whatever the packet, with the port-only megaflow
/// ofproto makes for such a rule (`in_port=1 actions=output:2`).
struct PortOnly;

impl Translator for PortOnly {
    fn translate(&self, _key: &FlowKey) -> Translation {
        let mask = FlowKey {
            in_port: u32::MAX,
            recirc_id: u32::MAX,
            ..FlowKey::default()
        };
        Translation {
            actions: vec![DpAction::Output(2)].into(),
            mask,
            install: true,
            state_changed: false,
            drop_reason: None,
            rules: None,
        }
    }
    fn generation(&self) -> u64 {
        0
    }
}

/// A port whose one megaflow matches every frame is forwarded without
/// parsing: any mix of frame types leaves in order through that megaflow,
/// and runts are still dropped as invalid (by the full path).
#[test]
fn port_wide_megaflow_forwards_every_frame_type_but_runts() {
    let (dp, ports) = mem_common::start_with_ports(Arc::new(PortOnly), 2);
    let (p1, p2) = (&ports[0], &ports[1]);
    p1.inject(&udp_frame(0x0a00_0001, 1));
    wait_for("first packet", || p2.state.lock().tx.len() == 1);

    let mut frames = Vec::new();
    for i in 0..40u32 {
        frames.push(match i % 4 {
            0 => udp_frame(0x0a00_0001 + i, 7),
            1 => arp_frame(),
            2 => vec![0u8; 64],
            _ => {
                let mut tagged = udp_frame(0x0a00_0002, 9);
                tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
                tagged
            }
        });
    }
    for f in &frames {
        p1.inject(f);
    }
    p1.inject(&[0u8; 13]);
    wait_for("all forwarded", || p2.state.lock().tx.len() == 41);
    wait_for("runt counted", || {
        dp.pmds[0].stats.drops[DropReason::InvalidPacket as usize].get() == 1
    });
    let sent = p2.take_sent();
    assert_eq!(sent[1..], frames[..], "forwarded unchanged and in order");
    let st = dp.pmds[0].stats.snapshot();
    assert_eq!(st.upcalls, 1, "one megaflow serves every frame type");
    assert_eq!(dp.limits.n_megaflows.load(Ordering::Relaxed), 1);
    assert_eq!(st.rx_packets, 42);
    assert_eq!(
        st.simple_hits + st.emc_hits + st.smc_hits + st.megaflow_hits + st.upcalls + 1,
        42
    );
    dp.shutdown();
}
