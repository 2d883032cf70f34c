//! The simple-match path (port-only megaflows skip extract/EMC/dpcls) over
//! in-memory ports: same results as the full path, and fallback as soon as
//! a megaflow of the port looks at anything else.

#[path = "mem_common/mod.rs"]
mod mem_common;
use flowcache::actions::{DpAction, DropReason};
use flowcache::key::{FlowKey, ETH_TYPE_ARP, VLAN_CFI};
use flowcache::upcall::{Translation, Translator};
use mem_common::wait_for;
use pmd::datapath::{Datapath, DatapathConfig};
use pmd::{MemPort, VecPacket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// in_port=1 → output:2, with the mask xlate gives a port-only rule
/// (recirc_id, in_port, dl_type, the VLAN TCIs' CFI). With `arp_nonsimple`
/// set, ARP megaflows also match the sender address, nw_src (not simple),
/// and drop.
struct PortOnly {
    arp_nonsimple: AtomicBool,
    generation: AtomicU64,
}

impl Translator for PortOnly {
    fn translate(&self, key: &FlowKey) -> Translation {
        let mut mask = FlowKey {
            in_port: u32::MAX,
            recirc_id: u32::MAX,
            dl_type: u16::MAX,
            ..FlowKey::default()
        };
        mask.vlans[0].tci = u16::MAX;
        mask.vlans[1].tci = VLAN_CFI;
        let arp_nonsimple =
            key.dl_type == ETH_TYPE_ARP && self.arp_nonsimple.load(Ordering::Relaxed);
        if arp_nonsimple {
            mask.nw_src = u32::MAX;
        }
        let (actions, drop_reason) = if key.in_port == 1 && !arp_nonsimple {
            (vec![DpAction::Output(2)], None)
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

fn frame(ty: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(ty);
    f.extend_from_slice(rest);
    f.resize(f.len().max(60), 0);
    f
}

fn udp(src: u8, frag: u16) -> Vec<u8> {
    let mut ip = vec![0u8; 28];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&28u16.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[15] = src;
    ip
}

/// UDP, fragments, VLAN, QinQ, 802.3, LLC/SNAP, TCP, IPv6 and ARP frames.
fn mixed_frames() -> Vec<Vec<u8>> {
    let mut v = vec![0x00, 0x05, 0x08, 0x00];
    v.extend_from_slice(&udp(3, 0));
    let mut qinq = vec![0x00, 0x07, 0x81, 0x00, 0x00, 0x08, 0x08, 0x00];
    qinq.extend_from_slice(&udp(4, 0));
    let mut tcp = udp(5, 0);
    tcp[9] = 6;
    tcp.extend_from_slice(&[0u8; 20]);
    tcp[2..4].copy_from_slice(&48u16.to_be_bytes());
    tcp[20 + 12] = 0x50;
    tcp[20 + 13] = 0x12;
    vec![
        frame(&[0x08, 0x00], &udp(1, 0)),
        frame(&[0x08, 0x00], &udp(2, 0x2000)),
        frame(&[0x08, 0x00], &udp(2, 0x0008)),
        frame(&[0x81, 0x00], &v),
        frame(&[0x88, 0xa8], &qinq),
        frame(&[0x00, 0x30], &[0x42, 0x42, 0x03]),
        frame(&[0x00, 0x30], &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]),
        frame(&[0x08, 0x00], &tcp),
        frame(&[0x86, 0xdd], &[0x60; 40]),
        frame(&[0x08, 0x06], &[0, 1, 8, 0, 6, 4, 0, 1]),
        vec![0u8; 14],
    ]
}

struct Setup {
    dp: Datapath<VecPacket>,
    p1: MemPort,
    p2: MemPort,
    translator: Arc<PortOnly>,
}

fn setup() -> Setup {
    let translator = Arc::new(PortOnly {
        arp_nonsimple: AtomicBool::new(false),
        generation: AtomicU64::new(0),
    });
    let cfg = DatapathConfig {
        emc_insert_inv_prob: 1,
        ..DatapathConfig::default()
    };
    let mut dp: Datapath<VecPacket> =
        Datapath::start(&cfg, translator.clone(), Arc::new(|| {}), Arc::new(|| {})).unwrap();
    let (p1, p2) = (MemPort::new(), MemPort::new());
    for (no, p) in [(1, &p1), (2, &p2)] {
        dp.add_txq(0, no, Box::new(p.txq()));
        dp.add_rxq(no, 0, Box::new(p.rxq()));
    }
    dp.barrier();
    Setup {
        dp,
        p1,
        p2,
        translator,
    }
}

/// Sends every frame once alone (so each miss is one upcall), then
/// `rounds` more times back to back; returns what port 2 sent.
fn run_rounds(s: &Setup, frames: &[Vec<u8>], rounds: usize) -> Vec<Vec<u8>> {
    let done = || {
        let st = s.dp.pmds[0].stats.snapshot();
        st.tx_packets + st.total_drops()
    };
    let base = done();
    for (expected, f) in (base + 1..).zip(frames) {
        s.p1.inject(f);
        wait_for("first round", || done() == expected);
    }
    for _ in 0..rounds {
        for f in frames {
            s.p1.inject(f);
        }
    }
    let total = base + (frames.len() * (rounds + 1)) as u64;
    wait_for("all rounds", || done() == total);
    s.p2.take_sent()
}

fn check_counters(s: &Setup) -> pmd::stats::PmdStatsSnapshot {
    let st = s.dp.pmds[0].stats.snapshot();
    assert_eq!(
        st.rx_packets,
        st.simple_hits
            + st.emc_hits
            + st.smc_hits
            + st.megaflow_hits
            + st.upcalls
            + st.lost_upcalls
            + st.drops[DropReason::InvalidPacket as usize]
    );
    st
}

#[test]
fn port_only_megaflows_take_the_simple_path() {
    let s = setup();
    let mut frames = mixed_frames();
    frames.push(vec![0u8; 13]);
    let sent = run_rounds(&s, &frames, 20);
    let forwarded: Vec<Vec<u8>> = frames.iter().filter(|f| f.len() >= 14).cloned().collect();
    let want: Vec<Vec<u8>> = (0..21).flat_map(|_| forwarded.clone()).collect();
    assert_eq!(sent.len(), want.len());
    // Per frame content, order is kept (bursts are all-or-nothing).
    for f in &forwarded {
        let got: Vec<&Vec<u8>> = sent.iter().filter(|x| *x == f).collect();
        assert_eq!(got.len(), 21, "frame {f:02x?}");
    }
    let st = check_counters(&s);
    assert_eq!(st.drops[DropReason::InvalidPacket as usize], 21);
    // Bursts with a TCP, IPv6 or LLC/SNAP frame take the full path; a
    // burst of only port-only frames the simple one.
    s.p2.take_sent();
    let before = st.simple_hits;
    let simple: Vec<Vec<u8>> = frames[..6].to_vec();
    for _ in 0..50 {
        for f in &simple {
            s.p1.inject(f);
        }
    }
    let total = st.tx_packets + 300;
    wait_for("simple rounds", || {
        s.dp.pmds[0].stats.tx_packets.get() == total
    });
    let st = check_counters(&s);
    assert!(st.simple_hits > before, "no simple hits: {st:?}");
    assert_eq!(s.p2.take_sent().len(), 300);
    s.dp.shutdown();
}

#[test]
fn a_non_simple_megaflow_on_the_port_disables_the_simple_path() {
    let s = setup();
    s.translator.arp_nonsimple.store(true, Ordering::Relaxed);
    let udp_only = vec![frame(&[0x08, 0x00], &udp(1, 0))];
    run_rounds(&s, &udp_only, 5);
    let st = check_counters(&s);
    assert!(st.simple_hits > 0, "port-only so far: {st:?}");
    // An ARP megaflow that matches nw_src: no more simple hits.
    let arp = vec![frame(&[0x08, 0x06], &[0, 1, 8, 0, 6, 4, 0, 1])];
    run_rounds(&s, &arp, 0);
    let before = check_counters(&s).simple_hits;
    s.p2.take_sent();
    for _ in 0..40 {
        s.p1.inject(&udp_only[0]);
    }
    let total = st.tx_packets + 40;
    wait_for("udp again", || s.dp.pmds[0].stats.tx_packets.get() == total);
    let st = check_counters(&s);
    assert_eq!(st.simple_hits, before, "fell back to the full path");
    assert_eq!(s.p2.take_sent(), vec![udp_only[0].clone(); 40]);

    // The rule changes: the ARP megaflow is revalidated away (removed) and
    // the port is simple again once only port-only megaflows are left.
    s.translator.arp_nonsimple.store(false, Ordering::Relaxed);
    s.translator.generation.fetch_add(1, Ordering::Relaxed);
    s.dp.revalidate_now();
    s.dp.barrier();
    let before = check_counters(&s).simple_hits;
    for _ in 0..40 {
        s.p1.inject(&udp_only[0]);
    }
    let total = total + 40;
    wait_for("udp simple again", || {
        s.dp.pmds[0].stats.tx_packets.get() == total
    });
    let st = check_counters(&s);
    assert!(st.simple_hits > before, "simple again: {st:?}");
    s.dp.shutdown();
}
