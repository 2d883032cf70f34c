//! `cargo +nightly fuzz run extract` (from `flowcache/`).
//!
//! Feeds arbitrary bytes to `extract`, and the same bytes minus the first
//! to `extract_with_vlan_limit` with a limit taken from the first byte, and
//! checks the result is well-formed.  A panic anywhere is a bug.

#![no_main]

use flowcache::extract::{
    extract, extract_with_vlan_limit, ExtractError, Offsets, PacketMeta, NO_OFFSET,
};
use flowcache::key::FlowKey;
use libfuzzer_sys::fuzz_target;

fn check(frame: &[u8], r: Result<Offsets, ExtractError>, key: &FlowKey) {
    match r {
        Err(ExtractError::TooShort(n)) => assert!(n == frame.len() && n < 14),
        Ok(o) => {
            assert!(frame.len() >= 14);
            assert!(usize::from(o.l3) <= frame.len());
            assert!(o.l4 == NO_OFFSET || (o.l4 > o.l3 && usize::from(o.l4) <= frame.len()));
            assert!(o.l2_5 == NO_OFFSET || o.l2_5 <= o.l3);
        }
    }
    assert_eq!(key.metadata, 0);
    assert_eq!(key.regs, [0; 16]);
}

fuzz_target!(|data: &[u8]| {
    let meta = PacketMeta {
        in_port: 1,
        ..Default::default()
    };
    let mut key = FlowKey::default();
    let r = extract(data, &meta, &mut key);
    check(data, r, &key);

    if let Some((&b, frame)) = data.split_first() {
        let r = extract_with_vlan_limit(frame, &meta, &mut key, usize::from(b % 4));
        check(frame, r, &key);
    }
});
