//! Bytes as lower-case hex text and back.

/// `[0x0a, 0xff]` → `"0aff"`.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex text → bytes, white space ignored; panics on a character that is
/// not a hex digit (the test data is wrong then). An odd last digit is
/// ignored.
pub fn decode(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digits"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0x0a, 0xff, 0]), "0aff00");
        assert_eq!(super::decode("0aff00"), [0x0a, 0xff, 0]);
    }
}
