//! The key/value splitter of the flow syntax: a port of OVS's
//! `ofputil_parse_key_value()`, keeping byte offsets for error columns.
//!
//! * Pairs are separated by commas and/or white space.
//! * A key ends at `:`, `=`, `(`, a comma or white space.  After `:` or `=`
//!   the value runs to the next comma or white space; after `(` it runs to
//!   the matching `)`.  Parentheses inside a value are balanced, so
//!   `write_actions(output:1,output:2)` is one pair.
//! * `key(x)->y` keeps `x)->y` as the value (OVS special case).

const PAIR_DELIMS: &[u8] = b", \t\r\n";
const KEY_END: &[u8] = b":=(, \t\r\n";

/// One `key[=value]` pair with the byte offsets (in the whole line) of the
/// key and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kv<'a> {
    pub key: &'a str,
    pub key_pos: usize,
    pub value: &'a str,
    pub value_pos: usize,
    /// The delimiter that ended the key when it introduces a value
    /// (`b':'`, `b'='` or `b'('`), `None` for a bare key.
    pub delim: Option<u8>,
}

/// Iterator over the pairs of `s`; `base` is the offset of `s` in its line.
pub(crate) struct KvIter<'a> {
    s: &'a str,
    pos: usize,
    base: usize,
}

impl<'a> KvIter<'a> {
    pub(crate) fn new(s: &'a str, base: usize) -> Self {
        KvIter { s, pos: 0, base }
    }
}

/// Length of the value at the start of `b`: up to one of `delims` (or the
/// end), skipping balanced parentheses.
fn value_len(b: &[u8], delims: &[u8]) -> usize {
    let mut n = 0;
    while n < b.len() && !delims.contains(&b[n]) {
        if b[n] == b'(' {
            let mut level = 0i32;
            loop {
                if n >= b.len() {
                    return n;
                }
                match b[n] {
                    b'(' => level += 1,
                    b')' => level -= 1,
                    _ => {}
                }
                n += 1;
                if level <= 0 {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

impl<'a> Iterator for KvIter<'a> {
    type Item = Kv<'a>;

    fn next(&mut self) -> Option<Kv<'a>> {
        let b = self.s.as_bytes();
        while self.pos < b.len() && PAIR_DELIMS.contains(&b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let ks = self.pos;
        while self.pos < b.len() && !KEY_END.contains(&b[self.pos]) {
            self.pos += 1;
        }
        let ke = self.pos;
        let delim = b.get(ke).copied();
        if delim.is_some() {
            self.pos += 1;
        }
        let key = &self.s[ks..ke];
        let value_delims: &[u8] = match delim {
            Some(b':') | Some(b'=') => PAIR_DELIMS,
            Some(b'(') => b")",
            _ => {
                return Some(Kv {
                    key,
                    key_pos: self.base + ks,
                    value: "",
                    value_pos: self.base + ke,
                    delim: None,
                })
            }
        };
        let vs = self.pos;
        let mut vlen = value_len(&b[vs..], value_delims);
        if delim == Some(b'(') && b[vs..].get(vlen..vlen + 3) == Some(b")->".as_slice()) {
            vlen += value_len(&b[vs + vlen..], PAIR_DELIMS);
        }
        let ve = vs + vlen;
        self.pos = if ve < b.len() { ve + 1 } else { ve };
        Some(Kv {
            key,
            key_pos: self.base + ks,
            value: &self.s[vs..ve],
            value_pos: self.base + vs,
            delim,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(&str, &str)> {
        KvIter::new(s, 0).map(|kv| (kv.key, kv.value)).collect()
    }

    #[test]
    fn splits_like_ovs() {
        assert_eq!(
            pairs("priority=10, ip  nw_src=1.2.3.4,tcp"),
            vec![
                ("priority", "10"),
                ("ip", ""),
                ("nw_src", "1.2.3.4"),
                ("tcp", "")
            ]
        );
        assert_eq!(
            pairs("output:1,write_actions(output:2,set_field:1->reg0),resubmit(,3)"),
            vec![
                ("output", "1"),
                ("write_actions", "output:2,set_field:1->reg0"),
                ("resubmit", ",3")
            ]
        );
        assert_eq!(
            pairs("check_pkt_larger(100)->reg0[0]"),
            vec![("check_pkt_larger", "100)->reg0[0]")]
        );
        assert_eq!(
            pairs("a(b(c)d)e,f"),
            vec![("a", "b(c)d"), ("e", ""), ("f", "")]
        );
        assert_eq!(pairs("x=(1,2),y"), vec![("x", "(1,2)"), ("y", "")]);
        assert_eq!(pairs("unterminated(abc"), vec![("unterminated", "abc")]);
        assert!(pairs(" ,, \t").is_empty());
    }

    #[test]
    fn offsets_are_absolute() {
        let kv: Vec<_> = KvIter::new("ip, nw_src=1.2.3.4", 10).collect();
        assert_eq!(kv[1].key_pos, 14);
        assert_eq!(kv[1].value_pos, 21);
        assert_eq!(kv[0].delim, None);
        assert_eq!(kv[1].delim, Some(b'='));
    }
}
