//! `tnl_push` and `tnl_pop` in the executor: a pushed frame pops back to
//! the inner frame with the tunnel metadata (through `recirculate`), the
//! outer checksums are right (the UDP one checked from scratch with
//! `csum=true`), the UDP source port follows the inner flow, a push that is
//! not the last consumer leaves the original untouched, and a pop of a bad
//! frame is a counted drop.

mod execute_util;

use execute_util::*;
use flowcache::actions::{DpAction, DropReason};
use flowcache::tunnel::{TnlHeaderSpec, TnlPush, TunnelKind, TNL_F_CSUM, TNL_F_KEY};
use pmd::execute::execute_actions;
use pmd::VecPacket;

const UNDER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn push_action(kind: TunnelKind, csum: bool) -> DpAction {
    DpAction::TunnelPush(Box::new(TnlPush::new(
        3,
        1,
        &TnlHeaderSpec {
            kind,
            eth_src: UNDER_MAC,
            eth_dst: PEER_MAC,
            ip_src: 0xc000_0201,
            ip_dst: 0xc000_0202,
            tos: 0,
            ttl: 64,
            df: true,
            dst_port: kind.default_port(),
            key: Some(42),
            csum,
        },
    )))
}

fn inner(sport: u16) -> Vec<u8> {
    eth(
        [0xaa; 6],
        [0xbb; 6],
        0x0800,
        &ipv4(
            17,
            [10, 9, 0, 1],
            [10, 9, 0, 2],
            0,
            64,
            0,
            &udp_hdr(sport, 5001, b"payload!"),
        ),
    )
}

fn pushed(kind: TunnelKind, csum: bool, frame: &[u8]) -> Vec<u8> {
    let mut rec = Rec::new();
    let mut m = meta(2);
    execute_actions(
        &mut rec,
        VecPacket::new(frame),
        &[push_action(kind, csum)],
        &mut m,
    );
    assert_eq!(rec.ports(), vec![1]);
    rec.outputs.remove(0).1
}

#[test]
fn push_then_pop_gives_the_inner_frame_and_metadata() {
    for kind in [TunnelKind::Vxlan, TunnelKind::Geneve, TunnelKind::Gre] {
        for csum in [false, true] {
            let f = pushed(kind, csum, &inner(1000));
            assert_eq!(
                ipv4_hdr_csum(&f, 14),
                be16(&f, 24),
                "{kind:?}: IPv4 checksum"
            );
            if kind != TunnelKind::Gre {
                let udp_len = usize::from(be16(&f, 38));
                let stored = be16(&f, 40);
                if csum {
                    assert_eq!(l4_csum(&f, 14, 34, udp_len, 17, 6), stored);
                } else {
                    assert_eq!(stored, 0);
                }
            }
            let mut rec = Rec::new();
            let mut m = meta(1);
            execute_actions(
                &mut rec,
                VecPacket::new(&f),
                &[DpAction::TunnelPop { port: 3, kind }],
                &mut m,
            );
            assert!(rec.drops.is_empty(), "{kind:?}: {:?}", rec.drops);
            let (frame, pm) = &rec.recircs[0];
            assert_eq!(frame, &inner(1000), "{kind:?} csum={csum}");
            assert_eq!(pm.in_port, 3);
            assert_eq!(pm.recirc_id, 0);
            assert_eq!(pm.tun.id, 42);
            assert_eq!((pm.tun.src, pm.tun.dst), (0xc000_0201, 0xc000_0202));
            assert_ne!(pm.tun.flags & TNL_F_KEY, 0);
            assert_eq!(pm.tun.flags & TNL_F_CSUM != 0, csum);
        }
    }
}

#[test]
fn udp_source_port_follows_the_inner_flow() {
    let a = pushed(TunnelKind::Vxlan, false, &inner(1000));
    let a2 = pushed(TunnelKind::Vxlan, false, &inner(1000));
    let b = pushed(TunnelKind::Vxlan, false, &inner(1001));
    let sport = |f: &[u8]| be16(f, 34);
    assert_eq!(sport(&a), sport(&a2), "one flow, one source port");
    assert_ne!(sport(&a), sport(&b), "another flow, another port");
    assert!((32768..=61000).contains(&sport(&a)));
}

#[test]
fn push_before_another_output_leaves_the_original() {
    let mut rec = Rec::new();
    let mut m = meta(2);
    let f = inner(7);
    execute_actions(
        &mut rec,
        VecPacket::new(&f),
        &[push_action(TunnelKind::Vxlan, false), DpAction::Output(4)],
        &mut m,
    );
    assert_eq!(rec.ports(), vec![1, 4]);
    assert_eq!(rec.outputs[0].1.len(), f.len() + 50);
    assert_eq!(rec.outputs[1].1, f);
}

#[test]
fn bad_frames_are_dropped_by_reason() {
    let good = pushed(TunnelKind::Vxlan, true, &inner(9));
    let mut bad_csum = good.clone();
    let last = bad_csum.len() - 1;
    bad_csum[last] ^= 0xff;
    let cases: [(&[u8], DropReason); 2] = [
        (&good[..40], DropReason::TunnelTruncated),
        (&bad_csum, DropReason::TunnelBadChecksum),
    ];
    for (frame, reason) in cases {
        let mut rec = Rec::new();
        let mut m = meta(1);
        execute_actions(
            &mut rec,
            VecPacket::new(frame),
            &[DpAction::TunnelPop {
                port: 3,
                kind: TunnelKind::Vxlan,
            }],
            &mut m,
        );
        assert_eq!(rec.drops, vec![reason]);
        assert!(rec.recircs.is_empty());
    }
}
