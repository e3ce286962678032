//! x86_64 region kernels: SSSE3 (PSHUFB, 16 bytes per vector) and AVX2 (VPSHUFB, 32 bytes
//! per vector), with split-nibble tables in the style of ISA-L's `gf_vect_mul`.
//!
//! For a constant `c`, multiplication by `c` is linear over GF(2), so for a byte
//! `v = hi << 4 | lo`, `c * v = c * lo ^ c * (hi << 4)`. Two 16-entry tables hold `c * lo` and
//! `c * (hi << 4)` for every nibble; they are built from the public constant with scalar
//! arithmetic and then live in registers, where PSHUFB looks up 16 (or 32) nibbles at once.
//! No buffer byte ever selects a memory address or a branch.
//!
//! Every function here is an `unsafe fn` with `#[target_feature]`: the caller must have checked
//! that the CPU supports the feature (the dispatcher in `gf256::simd` does, with
//! `cpufeatures`). Loads and stores are unaligned and stay inside the slices they come from
//! (`chunks_exact` hands out whole vectors only). Lengths that are not a multiple of the vector
//! width finish on the portable kernel.

use core::arch::x86_64::{
    __m128i, __m256i, _mm_and_si128, _mm_loadu_si128, _mm_set1_epi8, _mm_shuffle_epi8,
    _mm_srli_epi64, _mm_storeu_si128, _mm_xor_si128, _mm256_and_si256, _mm256_broadcastsi128_si256,
    _mm256_loadu_si256, _mm256_set1_epi8, _mm256_shuffle_epi8, _mm256_srli_epi64,
    _mm256_storeu_si256, _mm256_xor_si256,
};

use super::{simd::nibble_tables, soft};

/// Bytes per AVX2 loop iteration: two 32-byte vectors.
const AVX2_STEP: usize = 64;
/// Bytes per SSSE3 loop iteration: four 16-byte vectors.
const SSSE3_STEP: usize = 64;

// ---------------------------------------------------------------------------------------------
// AVX2

/// The nibble tables for `c`, each broadcast to both 128-bit lanes (VPSHUFB looks up within a
/// lane), and the low-nibble mask.
#[inline]
#[target_feature(enable = "avx2")]
fn avx2_tables(c: u8) -> (__m256i, __m256i, __m256i) {
    let (lo, hi) = nibble_tables(c);
    // SAFETY: `lo` and `hi` are 16-byte arrays; `_mm_loadu_si128` reads exactly 16 bytes and
    // has no alignment requirement.
    let (lo, hi) =
        unsafe { (_mm_loadu_si128(lo.as_ptr().cast()), _mm_loadu_si128(hi.as_ptr().cast())) };
    (_mm256_broadcastsi128_si256(lo), _mm256_broadcastsi128_si256(hi), _mm256_set1_epi8(0x0f))
}

/// `c * v` for the 32 bytes of `v`, given `c`'s tables.
#[inline]
#[target_feature(enable = "avx2")]
fn avx2_mul(v: __m256i, lo: __m256i, hi: __m256i, mask: __m256i) -> __m256i {
    let l = _mm256_and_si256(v, mask);
    // A 64-bit shift moves neighbouring bytes' bits into the high nibble; the mask drops them.
    let h = _mm256_and_si256(_mm256_srli_epi64::<4>(v), mask);
    _mm256_xor_si256(_mm256_shuffle_epi8(lo, l), _mm256_shuffle_epi8(hi, h))
}

/// `dst[i] ^= c * src[i]`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mul_acc_avx2(c: u8, src: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    let (lo, hi, mask) = avx2_tables(c);
    let mut s = src.chunks_exact(AVX2_STEP);
    let mut d = dst.chunks_exact_mut(AVX2_STEP);
    for (s, d) in (&mut s).zip(&mut d) {
        let (sp, dp) = (s.as_ptr(), d.as_mut_ptr());
        // SAFETY: `s` and `d` are 64 bytes long, so the 32-byte loads and stores at offsets 0
        // and 32 stay inside them; the unaligned forms need no alignment. AVX2 is enabled on
        // this function and its caller guarantees the CPU has it.
        unsafe {
            let s0 = _mm256_loadu_si256(sp.cast());
            let s1 = _mm256_loadu_si256(sp.add(32).cast());
            let d0 = _mm256_loadu_si256(dp.cast());
            let d1 = _mm256_loadu_si256(dp.add(32).cast());
            let r0 = _mm256_xor_si256(d0, avx2_mul(s0, lo, hi, mask));
            let r1 = _mm256_xor_si256(d1, avx2_mul(s1, lo, hi, mask));
            _mm256_storeu_si256(dp.cast(), r0);
            _mm256_storeu_si256(dp.add(32).cast(), r1);
        }
    }
    let (s, d) = (s.remainder(), d.into_remainder());
    let mut s = s.chunks_exact(32);
    let mut d = d.chunks_exact_mut(32);
    for (s, d) in (&mut s).zip(&mut d) {
        // SAFETY: `s` and `d` are 32 bytes long: one unaligned load or store each stays inside.
        unsafe {
            let s0 = _mm256_loadu_si256(s.as_ptr().cast());
            let d0 = _mm256_loadu_si256(d.as_ptr().cast());
            let r0 = _mm256_xor_si256(d0, avx2_mul(s0, lo, hi, mask));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), r0);
        }
    }
    soft::mul_acc(c, s.remainder(), d.into_remainder());
}

/// `dst[i] = base[i] ^ c * src[i]`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mul_add_into_avx2(c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    debug_assert_eq!(base.len(), dst.len());
    let (lo, hi, mask) = avx2_tables(c);
    let mut s = src.chunks_exact(AVX2_STEP);
    let mut b = base.chunks_exact(AVX2_STEP);
    let mut d = dst.chunks_exact_mut(AVX2_STEP);
    for ((s, b), d) in (&mut s).zip(&mut b).zip(&mut d) {
        let (sp, bp, dp) = (s.as_ptr(), b.as_ptr(), d.as_mut_ptr());
        // SAFETY: `s`, `b` and `d` are 64 bytes long, so the 32-byte accesses at offsets 0 and
        // 32 stay inside them; the unaligned forms need no alignment. AVX2 is enabled on this
        // function and its caller guarantees the CPU has it.
        unsafe {
            let s0 = _mm256_loadu_si256(sp.cast());
            let s1 = _mm256_loadu_si256(sp.add(32).cast());
            let b0 = _mm256_loadu_si256(bp.cast());
            let b1 = _mm256_loadu_si256(bp.add(32).cast());
            let r0 = _mm256_xor_si256(b0, avx2_mul(s0, lo, hi, mask));
            let r1 = _mm256_xor_si256(b1, avx2_mul(s1, lo, hi, mask));
            _mm256_storeu_si256(dp.cast(), r0);
            _mm256_storeu_si256(dp.add(32).cast(), r1);
        }
    }
    let (s, b, d) = (s.remainder(), b.remainder(), d.into_remainder());
    let mut s = s.chunks_exact(32);
    let mut b = b.chunks_exact(32);
    let mut d = d.chunks_exact_mut(32);
    for ((s, b), d) in (&mut s).zip(&mut b).zip(&mut d) {
        // SAFETY: `s`, `b` and `d` are 32 bytes long: one unaligned access each stays inside.
        unsafe {
            let s0 = _mm256_loadu_si256(s.as_ptr().cast());
            let b0 = _mm256_loadu_si256(b.as_ptr().cast());
            let r0 = _mm256_xor_si256(b0, avx2_mul(s0, lo, hi, mask));
            _mm256_storeu_si256(d.as_mut_ptr().cast(), r0);
        }
    }
    soft::mul_add_into(c, s.remainder(), b.remainder(), d.into_remainder());
}

// ---------------------------------------------------------------------------------------------
// SSSE3

/// The nibble tables for `c` and the low-nibble mask.
#[inline]
#[target_feature(enable = "ssse3")]
fn ssse3_tables(c: u8) -> (__m128i, __m128i, __m128i) {
    let (lo, hi) = nibble_tables(c);
    // SAFETY: `lo` and `hi` are 16-byte arrays; `_mm_loadu_si128` reads exactly 16 bytes and
    // has no alignment requirement.
    let (lo, hi) =
        unsafe { (_mm_loadu_si128(lo.as_ptr().cast()), _mm_loadu_si128(hi.as_ptr().cast())) };
    (lo, hi, _mm_set1_epi8(0x0f))
}

/// `c * v` for the 16 bytes of `v`, given `c`'s tables.
#[inline]
#[target_feature(enable = "ssse3")]
fn ssse3_mul(v: __m128i, lo: __m128i, hi: __m128i, mask: __m128i) -> __m128i {
    let l = _mm_and_si128(v, mask);
    let h = _mm_and_si128(_mm_srli_epi64::<4>(v), mask);
    _mm_xor_si128(_mm_shuffle_epi8(lo, l), _mm_shuffle_epi8(hi, h))
}

/// `dst[i] ^= c * src[i]`.
///
/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn mul_acc_ssse3(c: u8, src: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    let (lo, hi, mask) = ssse3_tables(c);
    let mut s = src.chunks_exact(SSSE3_STEP);
    let mut d = dst.chunks_exact_mut(SSSE3_STEP);
    for (s, d) in (&mut s).zip(&mut d) {
        let (sp, dp) = (s.as_ptr(), d.as_mut_ptr());
        for off in [0, 16, 32, 48] {
            // SAFETY: `s` and `d` are 64 bytes long and `off <= 48`, so each 16-byte access
            // stays inside them; the unaligned forms need no alignment. SSSE3 is enabled on
            // this function and its caller guarantees the CPU has it.
            unsafe {
                let sv = _mm_loadu_si128(sp.add(off).cast());
                let dv = _mm_loadu_si128(dp.add(off).cast());
                let r = _mm_xor_si128(dv, ssse3_mul(sv, lo, hi, mask));
                _mm_storeu_si128(dp.add(off).cast(), r);
            }
        }
    }
    let (s, d) = (s.remainder(), d.into_remainder());
    let mut s = s.chunks_exact(16);
    let mut d = d.chunks_exact_mut(16);
    for (s, d) in (&mut s).zip(&mut d) {
        // SAFETY: `s` and `d` are 16 bytes long: one unaligned access each stays inside.
        unsafe {
            let sv = _mm_loadu_si128(s.as_ptr().cast());
            let dv = _mm_loadu_si128(d.as_ptr().cast());
            let r = _mm_xor_si128(dv, ssse3_mul(sv, lo, hi, mask));
            _mm_storeu_si128(d.as_mut_ptr().cast(), r);
        }
    }
    soft::mul_acc(c, s.remainder(), d.into_remainder());
}

/// `dst[i] = base[i] ^ c * src[i]`.
///
/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn mul_add_into_ssse3(c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    debug_assert_eq!(base.len(), dst.len());
    let (lo, hi, mask) = ssse3_tables(c);
    let mut s = src.chunks_exact(SSSE3_STEP);
    let mut b = base.chunks_exact(SSSE3_STEP);
    let mut d = dst.chunks_exact_mut(SSSE3_STEP);
    for ((s, b), d) in (&mut s).zip(&mut b).zip(&mut d) {
        let (sp, bp, dp) = (s.as_ptr(), b.as_ptr(), d.as_mut_ptr());
        for off in [0, 16, 32, 48] {
            // SAFETY: `s`, `b` and `d` are 64 bytes long and `off <= 48`, so each 16-byte
            // access stays inside them; the unaligned forms need no alignment. SSSE3 is
            // enabled on this function and its caller guarantees the CPU has it.
            unsafe {
                let sv = _mm_loadu_si128(sp.add(off).cast());
                let bv = _mm_loadu_si128(bp.add(off).cast());
                let r = _mm_xor_si128(bv, ssse3_mul(sv, lo, hi, mask));
                _mm_storeu_si128(dp.add(off).cast(), r);
            }
        }
    }
    let (s, b, d) = (s.remainder(), b.remainder(), d.into_remainder());
    let mut s = s.chunks_exact(16);
    let mut b = b.chunks_exact(16);
    let mut d = d.chunks_exact_mut(16);
    for ((s, b), d) in (&mut s).zip(&mut b).zip(&mut d) {
        // SAFETY: `s`, `b` and `d` are 16 bytes long: one unaligned access each stays inside.
        unsafe {
            let sv = _mm_loadu_si128(s.as_ptr().cast());
            let bv = _mm_loadu_si128(b.as_ptr().cast());
            let r = _mm_xor_si128(bv, ssse3_mul(sv, lo, hi, mask));
            _mm_storeu_si128(d.as_mut_ptr().cast(), r);
        }
    }
    soft::mul_add_into(c, s.remainder(), b.remainder(), d.into_remainder());
}

// ---------------------------------------------------------------------------------------------
// Two sources at once (rebuild): `dst = a*x ^ b*y`, or `dst ^= a*x ^ b*y` when `ACC`. One pass
// instead of two halves the loads and stores of `dst`.

/// `dst[i] = a * x[i] ^ b * y[i]`, or `dst[i] ^= a * x[i] ^ b * y[i]` if `ACC`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mul2_avx2<const ACC: bool>(a: u8, x: &[u8], b: u8, y: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(x.len(), dst.len());
    debug_assert_eq!(y.len(), dst.len());
    let (alo, ahi, mask) = avx2_tables(a);
    let (blo, bhi, _) = avx2_tables(b);
    let mut xs = x.chunks_exact(AVX2_STEP);
    let mut ys = y.chunks_exact(AVX2_STEP);
    let mut d = dst.chunks_exact_mut(AVX2_STEP);
    for ((xc, yc), d) in (&mut xs).zip(&mut ys).zip(&mut d) {
        let (xp, yp, dp) = (xc.as_ptr(), yc.as_ptr(), d.as_mut_ptr());
        // SAFETY: `xc`, `yc` and `d` are 64 bytes long, so the 32-byte accesses at offsets 0
        // and 32 stay inside them; the unaligned forms need no alignment. AVX2 is enabled on
        // this function and its caller guarantees the CPU has it.
        unsafe {
            let x0 = _mm256_loadu_si256(xp.cast());
            let x1 = _mm256_loadu_si256(xp.add(32).cast());
            let y0 = _mm256_loadu_si256(yp.cast());
            let y1 = _mm256_loadu_si256(yp.add(32).cast());
            let mut r0 =
                _mm256_xor_si256(avx2_mul(x0, alo, ahi, mask), avx2_mul(y0, blo, bhi, mask));
            let mut r1 =
                _mm256_xor_si256(avx2_mul(x1, alo, ahi, mask), avx2_mul(y1, blo, bhi, mask));
            if ACC {
                r0 = _mm256_xor_si256(r0, _mm256_loadu_si256(dp.cast()));
                r1 = _mm256_xor_si256(r1, _mm256_loadu_si256(dp.add(32).cast()));
            }
            _mm256_storeu_si256(dp.cast(), r0);
            _mm256_storeu_si256(dp.add(32).cast(), r1);
        }
    }
    let (xt, yt, dt) = (xs.remainder(), ys.remainder(), d.into_remainder());
    if !ACC {
        dt.fill(0);
    }
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        mul_acc_avx2(a, xt, dt);
        mul_acc_avx2(b, yt, dt);
    }
}

/// `dst[i] = a * x[i] ^ b * y[i]`, or `dst[i] ^= a * x[i] ^ b * y[i]` if `ACC`.
///
/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn mul2_ssse3<const ACC: bool>(a: u8, x: &[u8], b: u8, y: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(x.len(), dst.len());
    debug_assert_eq!(y.len(), dst.len());
    let (alo, ahi, mask) = ssse3_tables(a);
    let (blo, bhi, _) = ssse3_tables(b);
    let mut xs = x.chunks_exact(SSSE3_STEP);
    let mut ys = y.chunks_exact(SSSE3_STEP);
    let mut d = dst.chunks_exact_mut(SSSE3_STEP);
    for ((xc, yc), d) in (&mut xs).zip(&mut ys).zip(&mut d) {
        let (xp, yp, dp) = (xc.as_ptr(), yc.as_ptr(), d.as_mut_ptr());
        for off in [0, 16, 32, 48] {
            // SAFETY: `xc`, `yc` and `d` are 64 bytes long and `off <= 48`, so each 16-byte
            // access stays inside them; the unaligned forms need no alignment. SSSE3 is
            // enabled on this function and its caller guarantees the CPU has it.
            unsafe {
                let xv = _mm_loadu_si128(xp.add(off).cast());
                let yv = _mm_loadu_si128(yp.add(off).cast());
                let mut r =
                    _mm_xor_si128(ssse3_mul(xv, alo, ahi, mask), ssse3_mul(yv, blo, bhi, mask));
                if ACC {
                    r = _mm_xor_si128(r, _mm_loadu_si128(dp.add(off).cast()));
                }
                _mm_storeu_si128(dp.add(off).cast(), r);
            }
        }
    }
    let (xt, yt, dt) = (xs.remainder(), ys.remainder(), d.into_remainder());
    if !ACC {
        dt.fill(0);
    }
    // SAFETY: the caller guarantees SSSE3.
    unsafe {
        mul_acc_ssse3(a, xt, dt);
        mul_acc_ssse3(b, yt, dt);
    }
}
