//! Action-list semantics: packet ownership and clones, drops, truncation,
//! clone/sample, recirculation, userspace, hash, metadata.

mod execute_util;

use execute_util::*;
use flowcache::actions::{DpAction, DropReason, EthFields, Masked, SetField, UserCookie};
use flowcache::extract::PacketMeta;
use pmd::execute::{
    execute_actions, execute_actions_with_offsets, execute_batch, execute_batch_with_offsets,
    ActionPlan,
};
use pmd::VecPacket;
use std::sync::Arc;

fn set_dst(mac: [u8; 6]) -> DpAction {
    DpAction::Set(SetField::Ethernet(Masked {
        value: EthFields {
            src: [0; 6],
            dst: mac,
        },
        mask: EthFields {
            src: [0; 6],
            dst: [0xff; 6],
        },
    }))
}

fn run(frame: &[u8], actions: &[DpAction]) -> Rec {
    let mut rec = Rec::new();
    let mut m = meta(1);
    execute_actions(&mut rec, VecPacket::new(frame), actions, &mut m);
    rec
}

#[test]
fn empty_list_drops_as_action() {
    let rec = run(&udp4(1, 2, b"x"), &[]);
    assert!(rec.outputs.is_empty());
    assert_eq!(rec.drops, vec![DropReason::Action]);
}

#[test]
fn list_without_consumer_drops_as_action() {
    let rec = run(&udp4(1, 2, b"x"), &[set_dst([9; 6]), DpAction::PopVlan]);
    assert!(rec.outputs.is_empty());
    assert_eq!(rec.drops, vec![DropReason::Action]);
}

#[test]
fn three_outputs_make_two_clones() {
    let frame = udp4(1, 2, b"hello");
    let pool = ClonePool::new(100);
    let mut rec = Rec::new();
    let mut m = meta(1);
    let acts = [
        DpAction::Output(2),
        DpAction::Output(3),
        DpAction::Output(4),
    ];
    execute_actions(&mut rec, CountingPacket::new(&frame, &pool), &acts, &mut m);
    assert_eq!(rec.ports(), vec![2, 3, 4]);
    for f in rec.out_frames() {
        assert_eq!(f, frame);
    }
    assert_eq!(pool.clones(), 2);
    assert!(rec.drops.is_empty());
}

#[test]
fn single_output_takes_the_packet() {
    let pool = ClonePool::new(100);
    let mut rec = Rec::new();
    let acts = [DpAction::Output(2)];
    execute_actions(
        &mut rec,
        CountingPacket::new(&udp4(1, 2, b""), &pool),
        &acts,
        &mut meta(1),
    );
    assert_eq!(pool.clones(), 0);
    assert_eq!(rec.ports(), vec![2]);
}

#[test]
fn rewrites_after_the_last_output_are_skipped_and_not_a_drop() {
    let frame = udp4(1, 2, b"");
    let pool = ClonePool::new(100);
    let mut rec = Rec::new();
    let acts = [DpAction::Output(2), set_dst([7; 6])];
    execute_actions(
        &mut rec,
        CountingPacket::new(&frame, &pool),
        &acts,
        &mut meta(1),
    );
    assert_eq!(pool.clones(), 0);
    assert_eq!(rec.out_frames(), vec![frame]);
    assert!(rec.drops.is_empty());
}

#[test]
fn rewrites_between_outputs() {
    let frame = udp4(1, 2, b"");
    let pool = ClonePool::new(100);
    let mut rec = Rec::new();
    let acts = [
        set_dst([7; 6]),
        DpAction::Output(2),
        set_dst([8; 6]),
        DpAction::Output(3),
    ];
    execute_actions(
        &mut rec,
        CountingPacket::new(&frame, &pool),
        &acts,
        &mut meta(1),
    );
    assert_eq!(pool.clones(), 1);
    let out = rec.out_frames();
    assert_eq!(&out[0][..6], &[7; 6]);
    assert_eq!(&out[1][..6], &[8; 6]);
    assert_eq!(&out[0][6..], &frame[6..]);
    assert_eq!(&out[1][6..], &frame[6..]);
}

#[test]
fn failed_clone_counts_no_mbuf_and_goes_on() {
    let frame = udp4(1, 2, b"");
    let pool = ClonePool::new(0);
    let mut rec = Rec::new();
    let acts = [DpAction::Output(2), DpAction::Output(3)];
    execute_actions(
        &mut rec,
        CountingPacket::new(&frame, &pool),
        &acts,
        &mut meta(1),
    );
    assert_eq!(rec.ports(), vec![3]);
    assert_eq!(rec.drops, vec![DropReason::NoMbuf]);
}

#[test]
fn drop_action_ends_the_list() {
    let pool = ClonePool::new(100);
    let mut rec = Rec::new();
    let acts = [
        DpAction::Output(2),
        DpAction::Drop(DropReason::InvalidTtl),
        DpAction::Output(3),
    ];
    execute_actions(
        &mut rec,
        CountingPacket::new(&udp4(1, 2, b""), &pool),
        &acts,
        &mut meta(1),
    );
    assert_eq!(rec.ports(), vec![2]);
    assert_eq!(rec.drops, vec![DropReason::InvalidTtl]);
    assert_eq!(pool.clones(), 1);
}

#[test]
fn truncate_applies_to_the_next_output_only() {
    let frame = udp4(1, 2, &[0xaa; 40]);
    let rec = run(
        &frame,
        &[
            DpAction::Truncate(20),
            DpAction::Output(2),
            DpAction::Output(3),
        ],
    );
    let out = rec.out_frames();
    assert_eq!(out[0], frame[..20].to_vec());
    assert_eq!(out[1], frame);

    // Last output: the packet itself is cut.
    let rec = run(&frame, &[DpAction::Truncate(30), DpAction::Output(2)]);
    assert_eq!(rec.out_frames(), vec![frame[..30].to_vec()]);

    // Never below an Ethernet header; larger than the frame: no cut.
    let rec = run(&frame, &[DpAction::Truncate(3), DpAction::Output(2)]);
    assert_eq!(rec.out_frames()[0].len(), 14);
    let rec = run(&frame, &[DpAction::Truncate(1000), DpAction::Output(2)]);
    assert_eq!(rec.out_frames()[0], frame);

    // The cut length is fixed when `trunc` runs (OVS cutlen): a later push
    // makes the output 4 bytes longer.
    let rec = run(
        &frame,
        &[
            DpAction::Truncate(30),
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 5,
            },
            DpAction::Output(2),
        ],
    );
    assert_eq!(rec.out_frames()[0].len(), 34);

    // Userspace applies it too.
    let rec = run(
        &frame,
        &[
            DpAction::Truncate(20),
            DpAction::Userspace { cookie: 9.into() },
            DpAction::Output(3),
        ],
    );
    assert_eq!(rec.upcalls[0].1, frame[..20].to_vec());
    assert_eq!(rec.out_frames(), vec![frame.clone()]);
}

#[test]
fn clone_action_isolates_its_changes() {
    let frame = udp4(1, 2, b"abc");
    let acts = [
        DpAction::Clone(Arc::from(vec![set_dst([7; 6]), DpAction::Output(2)])),
        DpAction::Output(3),
    ];
    let rec = run(&frame, &acts);
    let out = rec.out_frames();
    assert_eq!(rec.ports(), vec![2, 3]);
    assert_eq!(&out[0][..6], &[7; 6]);
    assert_eq!(out[1], frame);
    assert!(rec.drops.is_empty());
}

#[test]
fn clone_as_last_action_takes_the_packet() {
    let pool = ClonePool::new(100);
    let mut rec = Rec::new();
    let acts = [
        DpAction::Output(3),
        DpAction::Clone(Arc::from(vec![set_dst([7; 6]), DpAction::Output(2)])),
    ];
    execute_actions(
        &mut rec,
        CountingPacket::new(&udp4(1, 2, b""), &pool),
        &acts,
        &mut meta(1),
    );
    assert_eq!(pool.clones(), 1);
    assert_eq!(rec.ports(), vec![3, 2]);
}

#[test]
fn clone_without_consumer_frees_the_copy_silently() {
    let acts = [
        DpAction::Clone(Arc::from(vec![set_dst([7; 6])])),
        DpAction::Output(3),
    ];
    let rec = run(&udp4(1, 2, b""), &acts);
    assert_eq!(rec.ports(), vec![3]);
    assert!(rec.drops.is_empty());
}

#[test]
fn truncate_moves_into_a_clone() {
    let frame = udp4(1, 2, &[1; 40]);
    let acts = [
        DpAction::Truncate(20),
        DpAction::Clone(Arc::from(vec![DpAction::Output(2)])),
        DpAction::Output(3),
    ];
    let rec = run(&frame, &acts);
    assert_eq!(rec.out_frames(), vec![frame[..20].to_vec(), frame.clone()]);
}

#[test]
fn sample_uses_probability() {
    let frame = udp4(1, 2, b"");
    let acts = [
        DpAction::Sample {
            probability: 10,
            actions: Arc::from(vec![DpAction::Output(9)]),
        },
        DpAction::Output(2),
    ];
    let mut rec = Rec::new();
    rec.randoms = vec![9, 10];
    execute_actions(&mut rec, VecPacket::new(&frame), &acts, &mut meta(1));
    execute_actions(&mut rec, VecPacket::new(&frame), &acts, &mut meta(1));
    assert_eq!(rec.ports(), vec![9, 2, 2]);

    // A sample as the last action that does not fire drops the packet.
    let last = [DpAction::Sample {
        probability: 0,
        actions: Arc::from(vec![DpAction::Output(9)]),
    }];
    let mut rec = Rec::new();
    execute_actions(&mut rec, VecPacket::new(&frame), &last, &mut meta(1));
    assert!(rec.outputs.is_empty());
    assert_eq!(rec.drops, vec![DropReason::Action]);
}

#[test]
fn recirc_carries_the_metadata() {
    let frame = udp4(1, 2, b"");
    let acts = [
        DpAction::Set(SetField::PktMark(Masked {
            value: 0xab,
            mask: 0xff,
        })),
        DpAction::Recirc(7),
        DpAction::Output(2),
    ];
    let mut rec = Rec::new();
    let mut m = PacketMeta {
        in_port: 5,
        recirc_id: 1,
        dp_hash: 3,
        pkt_mark: 0x1100,
        ..PacketMeta::default()
    };
    execute_actions(&mut rec, VecPacket::new(&frame), &acts, &mut m);
    assert_eq!(rec.recircs.len(), 1);
    let (f, rm) = &rec.recircs[0];
    assert_eq!(f, &frame);
    assert_eq!(
        *rm,
        PacketMeta {
            in_port: 5,
            recirc_id: 7,
            dp_hash: 3,
            pkt_mark: 0x11ab,
            ..PacketMeta::default()
        }
    );
    // The original keeps its recirc_id; the caller sees the mark.
    assert_eq!(m.recirc_id, 1);
    assert_eq!(m.pkt_mark, 0x11ab);
    assert_eq!(rec.ports(), vec![2]);
}

#[test]
fn userspace_gets_cookie_and_meta() {
    let frame = udp4(1, 2, b"");
    let rec = run(
        &frame,
        &[DpAction::Userspace {
            cookie: 0xfeed.into(),
        }],
    );
    assert_eq!(rec.upcalls.len(), 1);
    assert_eq!(rec.upcalls[0].0, UserCookie::Other(0xfeed));
    assert_eq!(rec.upcalls[0].1, frame);
    assert_eq!(rec.upcalls[0].2.in_port, 1);
}

#[test]
fn hash_sets_dp_hash() {
    let hash_of = |frame: &[u8], basis: u32, rss: Option<u32>| {
        let pool = ClonePool::new(10);
        let mut p = CountingPacket::new(frame, &pool);
        p.rss = rss;
        let mut rec = Rec::new();
        let mut m = meta(1);
        execute_actions(
            &mut rec,
            p,
            &[DpAction::Hash { basis }, DpAction::Recirc(1)],
            &mut m,
        );
        assert_eq!(rec.recircs[0].1.dp_hash, m.dp_hash);
        m.dp_hash
    };
    let a = udp4(1000, 53, b"");
    let b = udp4(1001, 53, b"");
    assert_eq!(hash_of(&a, 0, None), hash_of(&a, 0, None));
    assert_ne!(hash_of(&a, 0, None), hash_of(&b, 0, None));
    assert_ne!(hash_of(&a, 0, None), hash_of(&a, 1, None));
    // With an RSS hash, the packet contents do not matter.
    assert_eq!(hash_of(&a, 5, Some(77)), hash_of(&b, 5, Some(77)));
    assert_ne!(hash_of(&a, 5, Some(77)), hash_of(&a, 6, Some(77)));
}

#[test]
fn push_without_headroom_drops() {
    let mut rec = Rec::new();
    let acts = [
        DpAction::Output(3),
        DpAction::PushVlan {
            tpid: 0x8100,
            tci: 1,
        },
        DpAction::Output(2),
    ];
    execute_actions(&mut rec, TightPacket(udp4(1, 2, b"")), &acts, &mut meta(1));
    assert_eq!(rec.ports(), vec![3]);
    assert_eq!(rec.drops, vec![DropReason::NoHeadroom]);
}

#[test]
fn batches_keep_order_and_share_the_plan() {
    let frames: Vec<Vec<u8>> = (0..5).map(|i| udp4(100 + i, 53, b"")).collect();
    let acts = [set_dst([3; 6]), DpAction::Output(2), DpAction::Output(4)];

    let mut rec = Rec::new();
    execute_batch(
        &mut rec,
        frames.iter().map(|f| (VecPacket::new(f), meta(1))),
        &acts,
    );
    let mut rec2 = Rec::new();
    execute_batch_with_offsets(
        &mut rec2,
        frames
            .iter()
            .map(|f| (VecPacket::new(f), meta(1), offsets(f))),
        &acts,
    );
    let mut rec3 = Rec::new();
    let plan = ActionPlan::new(&acts);
    for f in &frames {
        plan.execute(&mut rec3, VecPacket::new(f), &mut meta(1));
    }
    assert_eq!(rec.outputs, rec2.outputs);
    assert_eq!(rec.outputs, rec3.outputs);
    assert_eq!(rec.outputs.len(), 10);
    for (i, f) in frames.iter().enumerate() {
        let mut want = f.clone();
        want[..6].copy_from_slice(&[3; 6]);
        assert_eq!(rec.outputs[2 * i], (2, want.clone()));
        assert_eq!(rec.outputs[2 * i + 1], (4, want));
    }
}

#[test]
fn explicit_offsets_match_lazy_parsing() {
    let frame = udp4(1, 2, b"abc");
    let acts = [
        DpAction::PushVlan {
            tpid: 0x8100,
            tci: 7,
        },
        DpAction::Set(SetField::Udp(Masked {
            value: flowcache::actions::PortFields { src: 9, dst: 0 },
            mask: flowcache::actions::PortFields {
                src: 0xffff,
                dst: 0,
            },
        })),
        DpAction::Output(2),
    ];
    let lazy = run(&frame, &acts);
    let mut rec = Rec::new();
    execute_actions_with_offsets(
        &mut rec,
        VecPacket::new(&frame),
        &acts,
        &mut meta(1),
        offsets(&frame),
    );
    assert_eq!(lazy.outputs, rec.outputs);
    assert_eq!(be16(&rec.outputs[0].1, 38), 9);
}

fn check_len(size: u16, gt: Vec<DpAction>, le: Vec<DpAction>) -> DpAction {
    DpAction::CheckPktLen {
        size,
        gt: Arc::from(gt),
        le: Arc::from(le),
    }
}

#[test]
fn check_pkt_len_picks_the_branch_per_packet() {
    // One action list (one megaflow) for frames of different lengths.
    let acts = [check_len(
        60,
        vec![DpAction::Output(2)],
        vec![DpAction::Output(3)],
    )];
    let short = udp4(1, 2, b"");
    let long = udp4(1, 2, &[0u8; 100]);
    assert!(short.len() <= 60 && long.len() > 60);
    assert_eq!(run(&short, &acts).ports(), vec![3]);
    assert_eq!(run(&long, &acts).ports(), vec![2]);
    // Exactly `size` bytes is not larger.
    let exact_payload = 60 - short.len();
    let exact = udp4(1, 2, &vec![0u8; exact_payload]);
    assert_eq!(exact.len(), 60);
    assert_eq!(run(&exact, &acts).ports(), vec![3]);
}

#[test]
fn check_pkt_len_ignores_ethernet_padding() {
    let acts = [check_len(
        50,
        vec![DpAction::Output(2)],
        vec![DpAction::Output(3)],
    )];
    let mut padded = udp4(1, 2, b"");
    assert!(padded.len() <= 50);
    padded.resize(64, 0); // padding after the IP datagram
    assert_eq!(run(&padded, &acts).ports(), vec![3]);
}

#[test]
fn check_pkt_len_branch_changes_stay_inside_when_not_last() {
    let frame = udp4(1, 2, b"abc");
    let acts = [
        check_len(
            10,
            vec![set_dst([7; 6]), DpAction::Output(2)],
            vec![DpAction::Output(3)],
        ),
        DpAction::Output(4),
    ];
    let rec = run(&frame, &acts);
    let out = rec.out_frames();
    assert_eq!(rec.ports(), vec![2, 4]);
    assert_eq!(&out[0][..6], &[7; 6]);
    assert_eq!(out[1], frame);
    assert!(rec.drops.is_empty());
}

#[test]
fn check_pkt_len_empty_branch_drops_as_action() {
    let frame = udp4(1, 2, b"abc");
    let rec = run(&frame, &[check_len(10, vec![], vec![DpAction::Output(3)])]);
    assert!(rec.ports().is_empty());
    assert_eq!(rec.drops, vec![DropReason::Action]);
}

#[test]
fn truncated_output_inside_a_clone() {
    let frame = udp4(1, 2, &[0u8; 100]);
    let acts = [
        DpAction::Clone(Arc::from(vec![DpAction::Truncate(20), DpAction::Output(2)])),
        DpAction::Output(3),
    ];
    let rec = run(&frame, &acts);
    let out = rec.out_frames();
    assert_eq!(rec.ports(), vec![2, 3]);
    assert_eq!(out[0], frame[..20]);
    assert_eq!(out[1], frame);
}
