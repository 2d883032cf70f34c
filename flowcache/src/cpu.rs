//! CPU intrinsics behind safe (or narrowly `unsafe`) functions: cache-line
//! prefetch and the SIMD compares the caches use. This is the one module of
//! `flowcache` that calls `core::arch`; everything else uses these.

/// Asks the CPU to bring the cache line at `p` into L1 (a hint: any
/// address, even an invalid one, is allowed).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bitmap of the lanes of `lanes` equal to `x` (bit `j` for `lanes[j]`).
#[inline(always)]
pub fn eq_mask_u32x4(lanes: &[u32; 4], x: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load
        // reads exactly the 16 bytes of `lanes`.
        unsafe {
            let v = _mm_loadu_si128(lanes.as_ptr() as *const __m128i);
            let eq = _mm_cmpeq_epi32(v, _mm_set1_epi32(x as i32));
            _mm_movemask_ps(_mm_castsi128_ps(eq)) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = 0;
        for (j, l) in lanes.iter().enumerate() {
            m |= ((*l == x) as u32) << j;
        }
        m
    }
}

/// True when the CPU can run [`eq_words_avx2`].
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `a == b` for `N` words with AVX2: `N / 4` 256-bit XOR/OR and one
/// `vptest`, plus the `N % 4` remaining words as scalars.
///
/// # Safety
/// The CPU must support AVX2 ([`has_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub unsafe fn eq_words_avx2<const N: usize>(a: &[u64; N], b: &[u64; N]) -> bool {
    use core::arch::x86_64::*;
    let pa = a.as_ptr() as *const __m256i;
    let pb = b.as_ptr() as *const __m256i;
    let mut acc = _mm256_setzero_si256();
    for k in 0..N / 4 {
        // SAFETY: (k + 1) * 4 <= N: both loads are in bounds; they are
        // unaligned loads, so the arrays' alignment does not matter.
        let (x, y) = unsafe { (_mm256_loadu_si256(pa.add(k)), _mm256_loadu_si256(pb.add(k))) };
        acc = _mm256_or_si256(acc, _mm256_xor_si256(x, y));
    }
    // The words after the last full 4-word lane (N need not be a
    // multiple of 4).
    let mut tail = 0u64;
    for k in (N / 4) * 4..N {
        tail |= a[k] ^ b[k];
    }
    _mm256_testz_si256(acc, acc) != 0 && tail == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq_mask_marks_equal_lanes() {
        assert_eq!(eq_mask_u32x4(&[7, 1, 7, 2], 7), 0b0101);
        assert_eq!(eq_mask_u32x4(&[0, 0, 0, 0], 1), 0);
        assert_eq!(eq_mask_u32x4(&[u32::MAX; 4], u32::MAX), 0b1111);
    }
}
