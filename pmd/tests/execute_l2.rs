//! VLAN and MPLS push/pop byte layouts, and header offsets kept right
//! across them.

mod execute_util;

use execute_util::*;
use flowcache::actions::{DpAction, Ipv4Fields, Masked, PortFields, SetField};
use pmd::execute::execute_actions;
use pmd::VecPacket;

fn run(frame: &[u8], actions: &[DpAction]) -> Vec<u8> {
    let mut rec = Rec::new();
    let mut acts = actions.to_vec();
    acts.push(DpAction::Output(2));
    execute_actions(&mut rec, VecPacket::new(frame), &acts, &mut meta(1));
    assert_eq!(rec.outputs.len(), 1, "drops: {:?}", rec.drops);
    rec.outputs.remove(0).1
}

fn tag(tpid: u16, tci: u16) -> [u8; 4] {
    let mut t = [0u8; 4];
    t[..2].copy_from_slice(&tpid.to_be_bytes());
    t[2..].copy_from_slice(&tci.to_be_bytes());
    t
}

/// `frame` with `bytes` inserted at `at`.
fn insert(frame: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut v = frame[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&frame[at..]);
    v
}

fn push_vlan(tpid: u16, tci: u16) -> DpAction {
    DpAction::PushVlan { tpid, tci }
}

fn lse(label: u32, tc: u32, bos: bool, ttl: u32) -> u32 {
    (label << 12) | (tc << 9) | (u32::from(bos) << 8) | ttl
}

fn set_udp_src(p: u16) -> DpAction {
    DpAction::Set(SetField::Udp(Masked {
        value: PortFields { src: p, dst: 0 },
        mask: PortFields {
            src: 0xffff,
            dst: 0,
        },
    }))
}

fn set_ttl(t: u8) -> DpAction {
    DpAction::Set(SetField::Ipv4(Masked {
        value: Ipv4Fields {
            ttl: t,
            ..Default::default()
        },
        mask: Ipv4Fields {
            ttl: 0xff,
            ..Default::default()
        },
    }))
}

#[test]
fn push_vlan_inserts_after_the_macs() {
    let f = udp4(1234, 53, b"hi");
    let out = run(&f, &[push_vlan(0x8100, 0xe000 | 0x1000 | 10)]);
    // The CFI bit is cleared, as OVS does.
    assert_eq!(out, insert(&f, 12, &tag(0x8100, 0xe000 | 10)));

    // A second tag (802.1ad) goes in front of the first.
    let out2 = run(&out, &[push_vlan(0x88a8, 224)]);
    assert_eq!(out2, insert(&out, 12, &tag(0x88a8, 224)));
}

#[test]
fn rewrites_after_push_vlan_hit_the_moved_headers() {
    let f = udp4(1234, 53, b"hi");
    let out = run(&f, &[push_vlan(0x8100, 7), set_udp_src(4321), set_ttl(9)]);
    let mut want = udp4(4321, 53, b"hi");
    want[L3_TTL] = 9;
    let c = ipv4_hdr_csum(&want, 14);
    put16(&mut want, 24, c);
    assert_eq!(to_hex(&out), to_hex(&insert(&want, 12, &tag(0x8100, 7))));
}

const L3_TTL: usize = 14 + 8;

#[test]
fn pop_vlan_removes_the_outer_tag() {
    let f = udp4(1234, 53, b"hi");
    let tagged = insert(&f, 12, &tag(0x8100, 10));
    assert_eq!(run(&tagged, &[DpAction::PopVlan]), f);

    // QinQ: only the outer tag goes.
    let qinq = insert(&tagged, 12, &tag(0x88a8, 40));
    assert_eq!(run(&qinq, &[DpAction::PopVlan]), tagged);

    // Padding is kept.
    let mut padded = tagged.clone();
    padded.extend_from_slice(&[0; 13]);
    let mut want = f.clone();
    want.extend_from_slice(&[0; 13]);
    assert_eq!(run(&padded, &[DpAction::PopVlan]), want);

    // Untagged, 0x9100 or a truncated tag: nothing happens.
    assert_eq!(run(&f, &[DpAction::PopVlan]), f);
    let t9100 = insert(&f, 12, &tag(0x9100, 10));
    assert_eq!(run(&t9100, &[DpAction::PopVlan]), t9100);
    let short = tagged[..17].to_vec();
    assert_eq!(run(&short, &[DpAction::PopVlan]), short);

    // Rewrites after a pop land in the right place.
    let out = run(&tagged, &[DpAction::PopVlan, set_udp_src(99)]);
    assert_eq!(to_hex(&out), to_hex(&udp4(99, 53, b"hi")));
}

#[test]
fn push_mpls_on_ip() {
    let f = udp4(1234, 53, b"hi");
    let l = lse(849_109, 6, true, 64);
    let out = run(
        &f,
        &[DpAction::PushMpls {
            lse: l,
            ethertype: 0x8847,
        }],
    );
    let mut want = insert(&f, 14, &l.to_be_bytes());
    put16(&mut want, 12, 0x8847);
    assert_eq!(out, want);

    // Behind a VLAN tag: the inner Ethertype changes, the label follows the
    // tag.
    let tagged = insert(&f, 12, &tag(0x8100, 5));
    let out = run(
        &tagged,
        &[DpAction::PushMpls {
            lse: l,
            ethertype: 0x8848,
        }],
    );
    let mut want = insert(&tagged, 18, &l.to_be_bytes());
    put16(&mut want, 16, 0x8848);
    assert_eq!(out, want);

    // A non-MPLS Ethertype is ignored.
    let out = run(
        &f,
        &[DpAction::PushMpls {
            lse: l,
            ethertype: 0x0800,
        }],
    );
    assert_eq!(out, f);
}

#[test]
fn push_mpls_on_mpls_goes_on_top() {
    // From hw_mpls_push_on_mpls: label 6 (tc 2, bos, ttl 17) + IPv4.
    let f = hex("0000000000020000000000018847000645114500001c00010000401166ce0a0000010a00000204d200350008e6d4");
    let new = lse(999, 2, false, 17);
    let out = run(
        &f,
        &[DpAction::PushMpls {
            lse: new,
            ethertype: 0x8847,
        }],
    );
    assert_eq!(out, insert(&f, 14, &new.to_be_bytes()));

    // Push then set: the set hits the new top label.
    let out = run(
        &f,
        &[
            DpAction::PushMpls {
                lse: new,
                ethertype: 0x8847,
            },
            DpAction::Set(SetField::Mpls(Masked {
                value: 5 << 12,
                mask: 0xffff_f000,
            })),
        ],
    );
    assert_eq!(out, insert(&f, 14, &lse(5, 2, false, 17).to_be_bytes()));
}

#[test]
fn pop_mpls() {
    let inner = ipv4(17, IP_A, IP_B, 0, 64, 0, &udp_hdr(1, 2, b""));
    let top = lse(100, 0, false, 64);
    let bottom = lse(200, 1, true, 63);
    let mut stack = top.to_be_bytes().to_vec();
    stack.extend_from_slice(&bottom.to_be_bytes());
    stack.extend_from_slice(&inner);
    let f = eth(MAC_B, MAC_A, 0x8847, &stack);

    // Not the bottom: the next label is on top; the Ethertype is set to the
    // action's (OVS sets it in every case).
    let once = run(&f, &[DpAction::PopMpls { ethertype: 0x8847 }]);
    let mut want = eth(MAC_B, MAC_A, 0x8847, &stack[4..]);
    assert_eq!(once, want);

    // Both: plain IPv4 again; a following IPv4 rewrite finds its header.
    let twice = run(
        &f,
        &[
            DpAction::PopMpls { ethertype: 0x8847 },
            DpAction::PopMpls { ethertype: 0x0800 },
            set_ttl(5),
        ],
    );
    want = eth(MAC_B, MAC_A, 0x0800, &inner);
    want[L3_TTL] = 5;
    let c = ipv4_hdr_csum(&want, 14);
    put16(&mut want, 24, c);
    assert_eq!(to_hex(&twice), to_hex(&want));

    // Behind a VLAN tag.
    let tagged = insert(&f, 12, &tag(0x8100, 3));
    let out = run(&tagged, &[DpAction::PopMpls { ethertype: 0x8847 }]);
    assert_eq!(out, insert(&once, 12, &tag(0x8100, 3)));

    // Not MPLS: nothing.
    let u = udp4(1, 2, b"");
    assert_eq!(run(&u, &[DpAction::PopMpls { ethertype: 0x0800 }]), u);
}

#[test]
fn push_vlan_then_push_mpls() {
    let f = udp4(1, 2, b"");
    let l = lse(7, 0, true, 64);
    let out = run(
        &f,
        &[
            push_vlan(0x8100, 9),
            DpAction::PushMpls {
                lse: l,
                ethertype: 0x8847,
            },
        ],
    );
    let mut want = insert(&f, 14, &l.to_be_bytes());
    put16(&mut want, 12, 0x8847);
    let want = insert(&want, 12, &tag(0x8100, 9));
    assert_eq!(out, want);
}
