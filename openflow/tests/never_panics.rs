//! Arbitrary bytes never panic the decoder; truncations of valid
//! messages are errors.

use proptest::prelude::*;

const FLOW_MOD: &str = "040e00a800000006000000000000000000000000000000000000000000008000ffffffffffffffffffffffff000000000001003b80000a0208008000140106ffff55084f4e46000002000280004d10000000000000000500000000000000ff0001070800";

use testkit::hex::decode as unhex;

fn with_len(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 4 {
        let n = b.len().min(65535) as u16;
        b[2..4].copy_from_slice(&n.to_be_bytes());
    }
    b
}

proptest! {
    #[test]
    fn random_messages(ty in 0u8..32, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = vec![4, ty, 0, 0, 0, 0, 0, 1];
        b.extend(body);
        let b = with_len(b);
        let _ = openflow::msg::decode(&b);
    }

    #[test]
    fn mutated_flow_mods(pos in 0usize..168, val in any::<u8>(), cut in 8usize..168) {
        let mut b = unhex(FLOW_MOD);
        b.truncate(cut.max(8));
        let b = with_len(b);
        if let Ok(openflow::msg::Message::FlowMod(fm)) = openflow::msg::decode(&b) {
            let _ = openflow::flow_mod_rule(&fm);
        }
        let mut m = unhex(FLOW_MOD);
        if pos < m.len() && pos >= 4 {
            m[pos] = val;
        }
        if let Ok(openflow::msg::Message::FlowMod(fm)) = openflow::msg::decode(&m) {
            let _ = openflow::flow_mod_rule(&fm);
        }
    }
}

#[test]
fn truncated_flow_mod_is_an_error() {
    let full = unhex(FLOW_MOD);
    for cut in 8..full.len() {
        let b = with_len(full[..cut].to_vec());
        assert!(openflow::msg::decode(&b).is_err(), "cut at {cut}");
    }
}
