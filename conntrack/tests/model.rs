//! Property test: random sequences of UDP and ICMP echo packets (both
//! directions, several hosts, ports and zones, commit or not, a small
//! global limit) through the tracker; every packet's ct_state must equal
//! what a simple reference model of OVS's semantics says, and so must the
//! table's size. A concurrency test checks that connections committed by
//! one thread are found by others.

mod util;

use conntrack::Conntrack;
use flowcache::actions::CtAction;
use flowcache::extract::CtMeta;
use flowcache::key::*;
use proptest::prelude::*;
use std::collections::HashMap;
use util::*;

#[derive(Clone, Debug)]
struct Pkt {
    icmp: bool,
    a: u8,
    b: u8,
    sport: u16,
    dport: u16,
    zone: u16,
    commit: bool,
    /// ICMP: a reply (type 0) rather than a request.
    echo_reply: bool,
}

fn pkt() -> impl Strategy<Value = Pkt> {
    (
        any::<bool>(),
        1u8..4,
        1u8..4,
        1u16..4,
        1u16..4,
        0u16..2,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(icmp, a, b, sport, dport, zone, commit, echo_reply)| Pkt {
            icmp,
            a,
            b,
            sport,
            dport,
            zone,
            commit,
            echo_reply,
        })
}

/// The model: connections by (zone, orig tuple) with "reply seen".
#[derive(Default)]
struct Model {
    conns: HashMap<(u16, bool, u8, u8, u16, u16), bool>,
}

impl Model {
    fn step(&mut self, p: &Pkt, limit: usize) -> u8 {
        // Keys: ICMP (id = sport) by the request direction.
        let (fwd, rev) = if p.icmp {
            // A request from a to b is the original direction a->b; a reply
            // from a to b belongs to a request b->a.
            let k = (p.zone, true, p.a, p.b, p.sport, 0);
            let r = (p.zone, true, p.b, p.a, p.sport, 0);
            if p.echo_reply {
                (None, Some(r))
            } else {
                (Some(k), None)
            }
        } else {
            (
                Some((p.zone, false, p.a, p.b, p.sport, p.dport)),
                Some((p.zone, false, p.b, p.a, p.dport, p.sport)),
            )
        };
        if let Some(k) = fwd {
            if let Some(seen) = self.conns.get(&k) {
                return if *seen {
                    CS_TRACKED | CS_ESTABLISHED
                } else {
                    CS_TRACKED | CS_NEW
                };
            }
        }
        if let Some(r) = rev {
            if let Some(seen) = self.conns.get_mut(&r) {
                *seen = true;
                return CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR;
            }
        }
        // No connection.
        if p.icmp && p.echo_reply {
            return CS_TRACKED | CS_INVALID;
        }
        if p.commit && self.conns.len() < limit {
            self.conns.insert(fwd.unwrap(), false);
        }
        CS_TRACKED | CS_NEW
    }
}

fn frame(p: &Pkt) -> Vec<u8> {
    let a = [10, 0, 0, p.a];
    let b = [10, 0, 0, p.b];
    if p.icmp {
        icmp4(a, b, if p.echo_reply { 0 } else { 8 }, p.sport, b"x")
    } else {
        udp4(a, b, p.sport, p.dport)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn tracker_matches_model(pkts in proptest::collection::vec(pkt(), 1..80), limit in 1usize..20) {
        let t = Conntrack::new();
        t.set_max_conns(limit as u32);
        let mut m = Model::default();
        for (i, p) in pkts.iter().enumerate() {
            let act = CtAction { zone: p.zone, commit: p.commit, ..CtAction::default() };
            let mut f = frame(p);
            let mut meta = CtMeta::default();
            t.execute(0, &mut f, L3, 0x0800, &act, &mut meta, i as u64);
            let want = m.step(p, limit);
            prop_assert_eq!(meta.state, want, "packet {} {:?}", i, p);
            prop_assert_eq!(meta.zone, p.zone);
            prop_assert_eq!(t.len() as usize, m.conns.len());
        }
    }

    /// Arbitrary bytes through `ct`: never a panic, always tracked.
    #[test]
    fn arbitrary_frames_never_panic(mut f in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        let t = Conntrack::new();
        let act = CtAction { commit: true, ..CtAction::default() };
        let mut meta = CtMeta::default();
        let l3 = L3.min(f.len());
        t.execute(0, &mut f, l3, if v6 { 0x86dd } else { 0x0800 }, &act, &mut meta, 0);
        prop_assert!(meta.state & CS_TRACKED != 0);
    }
}

#[test]
fn connections_are_shared_between_threads() {
    let t = std::sync::Arc::new(Conntrack::new());
    let n = 2000u16;
    std::thread::scope(|s| {
        for th in 0..2u16 {
            let t = t.clone();
            s.spawn(move || {
                for i in 0..n / 2 {
                    let port = 1 + th * (n / 2) + i;
                    let act = CtAction {
                        commit: true,
                        ..CtAction::default()
                    };
                    let mut meta = CtMeta::default();
                    t.execute(
                        th as usize,
                        &mut udp4([10, 0, 0, 1], [10, 0, 0, 2], port, 53),
                        L3,
                        0x0800,
                        &act,
                        &mut meta,
                        0,
                    );
                }
            });
        }
    });
    assert_eq!(t.len(), u32::from(n));
    // Replies looked up by other threads, concurrently.
    std::thread::scope(|s| {
        for th in 0..2u16 {
            let t = t.clone();
            s.spawn(move || {
                for i in 0..n / 2 {
                    let port = 1 + (1 - th) * (n / 2) + i;
                    let mut meta = CtMeta::default();
                    t.execute(
                        th as usize,
                        &mut udp4([10, 0, 0, 2], [10, 0, 0, 1], 53, port),
                        L3,
                        0x0800,
                        &CtAction::default(),
                        &mut meta,
                        1,
                    );
                    assert_eq!(meta.state, CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR);
                }
            });
        }
    });
    assert_eq!(t.counters().reply, u64::from(n));
}
