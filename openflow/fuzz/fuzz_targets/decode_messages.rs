//! Any bytes through the OpenFlow message decoder and, for flow mods, the
//! rule validation: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = data.to_vec();
    if b.len() >= 4 {
        // Mostly consistent lengths, so the fuzzer reaches the bodies.
        let n = b.len().min(65535) as u16;
        b[2..4].copy_from_slice(&n.to_be_bytes());
    }
    if let Ok(openflow::msg::Message::FlowMod(fm)) = openflow::msg::decode(&b) {
        let _ = openflow::flow_mod_rule(&fm);
    }
    let _ = openflow::msg::decode(data);
});
