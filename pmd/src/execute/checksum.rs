//! Incremental checksum updates (OVS `lib/csum.c`) and the SCTP CRC32c
//! update of `packet_set_sctp_port`.
//!
//! OVS does its RFC 1624 arithmetic on the raw memory words (`ovs_be16`
//! loaded as a host integer). Ones-complement sums do not depend on the byte
//! order, except in one corner: `recalc_csum16` folds the carry only once,
//! and the carry it drops depends on how the bytes were loaded. To be
//! byte-exact with OVS on x86 (the reference platform), every word here is
//! loaded little-endian ([`raw16`]), whatever the host.

/// The 16-bit word at `b[off..off + 2]`, loaded as OVS does on x86.
#[inline(always)]
pub(crate) fn raw16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Stores a word loaded with [`raw16`].
#[inline(always)]
pub(crate) fn put_raw16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// OVS `recalc_csum16`: the checksum after a 16-bit word changed from `old`
/// to `new` (all three as [`raw16`] words). Mirrors OVS exactly, including
/// its single carry fold.
#[inline]
pub fn recalc_csum16(old_csum: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!old_csum) + u32::from(!old) + u32::from(new);
    let hc_prime_complement = (sum + (sum >> 16)) as u16;
    !hc_prime_complement
}

/// OVS `recalc_csum32`: a 4-byte field (network-order bytes) changed.
#[inline]
pub fn recalc_csum32(csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let c = recalc_csum16(
        csum,
        u16::from_le_bytes([old[0], old[1]]),
        u16::from_le_bytes([new[0], new[1]]),
    );
    recalc_csum16(
        c,
        u16::from_le_bytes([old[2], old[3]]),
        u16::from_le_bytes([new[2], new[3]]),
    )
}

/// OVS `recalc_csum48`: a MAC address changed.
#[inline]
pub fn recalc_csum48(csum: u16, old: [u8; 6], new: [u8; 6]) -> u16 {
    let mut c = csum;
    for i in 0..3 {
        c = recalc_csum16(
            c,
            u16::from_le_bytes([old[2 * i], old[2 * i + 1]]),
            u16::from_le_bytes([new[2 * i], new[2 * i + 1]]),
        );
    }
    c
}

/// OVS `recalc_csum128`: an IPv6 address changed.
#[inline]
pub fn recalc_csum128(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    let mut c = csum;
    for i in 0..4 {
        let o = [old[4 * i], old[4 * i + 1], old[4 * i + 2], old[4 * i + 3]];
        let n = [new[4 * i], new[4 * i + 1], new[4 * i + 2], new[4 * i + 3]];
        c = recalc_csum32(c, o, n);
    }
    c
}

/// Updates the checksum stored at `frame[csum_off..+2]` for a 4-byte field
/// change.
#[inline]
pub(crate) fn update32(frame: &mut [u8], csum_off: usize, old: [u8; 4], new: [u8; 4]) {
    let c = raw16(frame, csum_off);
    put_raw16(frame, csum_off, recalc_csum32(c, old, new));
}

/// Updates the checksum stored at `frame[csum_off..+2]` for a 16-byte field
/// change.
#[inline]
pub(crate) fn update128(frame: &mut [u8], csum_off: usize, old: &[u8; 16], new: &[u8; 16]) {
    let c = raw16(frame, csum_off);
    put_raw16(frame, csum_off, recalc_csum128(c, old, new));
}

// ---------------------------------------------------------------------------
// CRC32c (Castagnoli), reflected polynomial.

const CRC32C_POLY: u32 = 0x82F6_3B78;

/// `a * b mod P` in the reflected representation (bit 31 is x^0), as zlib's
/// `multmodp`.
const fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m: u32 = 1 << 31;
    let mut p: u32 = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
    }
    p
}

/// `X2N[k]` = x^(2^k) mod P.
const X2N: [u32; 32] = {
    let mut t = [0u32; 32];
    let mut p: u32 = 1 << 30; // x^1
    t[0] = p;
    let mut k = 1;
    while k < 32 {
        p = multmodp(p, p);
        t[k] = p;
        k += 1;
    }
    t
};

/// x^(n * 2^k) mod P.
fn x2nmodp(mut n: usize, mut k: usize) -> u32 {
    let mut p: u32 = 1 << 31; // x^0
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(X2N[k & 31], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

/// The CRC register after `data`, starting from `crc`, with no pre- or
/// post-conditioning (bitwise; used for a few bytes only).
fn crc_raw(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC32C_POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// How the CRC32c of a `len`-byte message changes when its first four bytes
/// are XORed with `delta`: `crc32c(m ^ (delta || 0..)) == crc32c(m) ^
/// result`. CRC32c is affine, so the difference of two equal-length
/// messages is the unconditioned CRC of their XOR, computed here in
/// O(log len) without touching the message.
pub fn crc32c_prefix_delta(delta: [u8; 4], len: usize) -> u32 {
    debug_assert!(len >= 4);
    let r = crc_raw(0, &delta);
    multmodp(x2nmodp(len.saturating_sub(4), 3), r)
}

/// CRC32c of `data` (standard: init and final XOR `!0`). Bitwise; for tests
/// and slow paths.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc_raw(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ones-complement checksum over `data` (big-endian words), folded
    /// properly.
    fn csum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += u32::from(w);
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc_prefix_delta_matches_recomputation() {
        let mut msg: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [4usize, 5, 12, 13, 64, 299] {
            let m = &mut msg[..len];
            let before = crc32c(m);
            let delta = [0x12, 0x00, 0xff, 0x80];
            for i in 0..4 {
                m[i] ^= delta[i];
            }
            let after = crc32c(m);
            assert_eq!(before ^ after, crc32c_prefix_delta(delta, len), "len {len}");
        }
    }

    #[test]
    fn recalc_matches_fresh_checksum() {
        // An IPv4 header; change TTL and an address incrementally.
        let mut h = [
            0x45, 0x00, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2,
        ];
        let c = csum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(csum(&h), 0);
        let old = [h[12], h[13], h[14], h[15]];
        let new = [192, 168, 77, 9];
        let c = recalc_csum32(raw16(&h, 10), old, new);
        put_raw16(&mut h, 10, c);
        h[12..16].copy_from_slice(&new);
        assert_eq!(csum(&h), 0);
        let c = recalc_csum16(
            raw16(&h, 10),
            u16::from_le_bytes([h[8], 0]),
            u16::from_le_bytes([0x3f, 0]),
        );
        put_raw16(&mut h, 10, c);
        h[8] = 0x3f;
        assert_eq!(csum(&h), 0);
    }

    #[test]
    fn single_fold_quirk_is_kept() {
        // ~hc + ~m + m' == 0x1ffff: OVS drops the second carry.
        assert_eq!(recalc_csum16(0x0000, 0x0000, 0x0001), 0xffff);
    }
}
