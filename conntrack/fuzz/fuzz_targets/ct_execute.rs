//! Arbitrary frames through `ct`: the first bytes pick the action (commit,
//! zone, NAT) and the rest is a sequence of frames run against one
//! tracker, so that later frames meet the connections earlier ones made.
//! Nothing may panic; every packet comes out tracked.
#![no_main]

use conntrack::Conntrack;
use flowcache::actions::{CtAction, CtNat, NatKind};
use flowcache::extract::CtMeta;
use flowcache::key::CS_TRACKED;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = Conntrack::new();
    t.set_max_conns(64);
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() > 3 {
        let (hdr, tail) = rest.split_at(3);
        let len = usize::from(hdr[2]).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        let mut nat = CtNat {
            kind: match hdr[0] & 3 {
                0 => NatKind::Existing,
                1 => NatKind::Src,
                _ => NatKind::Dst,
            },
            port_min: if hdr[0] & 4 != 0 { 1000 } else { 0 },
            port_max: if hdr[0] & 4 != 0 { 1003 } else { 0 },
            ..CtNat::default()
        };
        nat.addr_min[12..].copy_from_slice(&[192, 168, 0, 1]);
        nat.addr_max[12..].copy_from_slice(&[192, 168, 0, 2]);
        let act = CtAction {
            zone: u16::from(hdr[1] & 3),
            commit: hdr[0] & 8 != 0,
            force: hdr[0] & 16 != 0,
            mark: (hdr[0] & 32 != 0).then_some((7, 0xff)),
            label: None,
            nat: (hdr[0] & 64 != 0).then_some(nat),
        };
        let mut f = frame.to_vec();
        let dl = if hdr[1] & 4 != 0 { 0x86dd } else { 0x0800 };
        let mut m = CtMeta::default();
        let l3 = 14.min(f.len());
        t.execute(0, &mut f, l3, dl, &act, &mut m, now);
        assert!(m.state & CS_TRACKED != 0);
        now += u64::from(hdr[1] >> 3) * 1000;
        if hdr[1] & 0x80 != 0 {
            t.sweep(now, 16);
        }
    }
});
