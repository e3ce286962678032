//! aarch64 NEON region kernels (TBL, 16 bytes per vector) with split-nibble tables, the same
//! algorithm as the x86 kernels in `x86.rs`: for a constant `c`, `c * v = T_lo[v & 15] ^
//! T_hi[v >> 4]`, with both 16-entry tables built from the public constant and held in
//! registers, so no buffer byte selects a memory address or a branch.
//!
//! **Status: not compiled or run on aarch64 hardware by us.** The development machine is
//! x86_64 and has no aarch64 target installed, so this file was written against the
//! documented signatures of `core::arch::aarch64` (`vld1q_u8`, `vst1q_u8` and the lane-wise
//! `vandq_u8`, `veorq_u8`, `vshrq_n_u8`, `vdupq_n_u8`, `vqtbl1q_u8`) without a compiler check
//! for that target. What *is* checked here: in x86_64 test builds the same kernel source is
//! compiled against a scalar model of those intrinsics (`model` below, following the Arm
//! definitions: `TBL` yields 0 for an index >= 16) and compared byte for byte with the
//! portable kernel, which exercises the loop structure, offsets, table construction and
//! tails. The first aarch64 CI run (`cargo test -p vaultdb-core` there runs the cross-engine
//! tests against the real instructions) is the remaining check.
//!
//! The module is compiled for aarch64 only when NEON is enabled at compile time (it is part of
//! every standard aarch64 target), which is also how `simd::is_available` reports it.

#[cfg(target_arch = "aarch64")]
use core::arch::aarch64::{
    uint8x16_t, vandq_u8, vdupq_n_u8, veorq_u8, vld1q_u8, vqtbl1q_u8, vshrq_n_u8, vst1q_u8,
};

#[cfg(not(target_arch = "aarch64"))]
use self::model::{
    uint8x16_t, vandq_u8, vdupq_n_u8, veorq_u8, vld1q_u8, vqtbl1q_u8, vshrq_n_u8, vst1q_u8,
};
use super::{simd::nibble_tables, soft};

/// Bytes per loop iteration: four 16-byte vectors.
const STEP: usize = 64;

/// The nibble tables for `c` and the low-nibble mask.
#[inline]
#[cfg_attr(target_arch = "aarch64", target_feature(enable = "neon"))]
fn tables(c: u8) -> (uint8x16_t, uint8x16_t, uint8x16_t) {
    let (lo, hi) = nibble_tables(c);
    // SAFETY: `lo` and `hi` are 16-byte arrays; `vld1q_u8` reads exactly 16 bytes with no
    // alignment requirement beyond that of `u8`. NEON is enabled for this function.
    let (lo, hi) = unsafe { (vld1q_u8(lo.as_ptr()), vld1q_u8(hi.as_ptr())) };
    (lo, hi, vdupq_n_u8(0x0f))
}

/// `c * v` for the 16 bytes of `v`, given `c`'s tables.
#[inline]
#[cfg_attr(target_arch = "aarch64", target_feature(enable = "neon"))]
fn mul16(v: uint8x16_t, lo: uint8x16_t, hi: uint8x16_t, mask: uint8x16_t) -> uint8x16_t {
    // `vshrq_n_u8` shifts each byte on its own, so the high nibble needs no mask.
    veorq_u8(vqtbl1q_u8(lo, vandq_u8(v, mask)), vqtbl1q_u8(hi, vshrq_n_u8::<4>(v)))
}

/// `dst[i] ^= c * src[i]`.
///
/// # Safety
/// The CPU must support NEON.
#[cfg_attr(target_arch = "aarch64", target_feature(enable = "neon"))]
pub(super) unsafe fn mul_acc_neon(c: u8, src: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    let (lo, hi, mask) = tables(c);
    let mut s = src.chunks_exact(STEP);
    let mut d = dst.chunks_exact_mut(STEP);
    for (s, d) in (&mut s).zip(&mut d) {
        let (sp, dp) = (s.as_ptr(), d.as_mut_ptr());
        // SAFETY: `s` and `d` are 64 bytes long, so the 16-byte loads and stores at offsets 0,
        // 16, 32 and 48 stay inside them; `vld1q_u8`/`vst1q_u8` need only byte alignment. The
        // caller guarantees NEON.
        unsafe {
            let s0 = vld1q_u8(sp);
            let s1 = vld1q_u8(sp.add(16));
            let s2 = vld1q_u8(sp.add(32));
            let s3 = vld1q_u8(sp.add(48));
            let d0 = vld1q_u8(dp);
            let d1 = vld1q_u8(dp.add(16));
            let d2 = vld1q_u8(dp.add(32));
            let d3 = vld1q_u8(dp.add(48));
            vst1q_u8(dp, veorq_u8(d0, mul16(s0, lo, hi, mask)));
            vst1q_u8(dp.add(16), veorq_u8(d1, mul16(s1, lo, hi, mask)));
            vst1q_u8(dp.add(32), veorq_u8(d2, mul16(s2, lo, hi, mask)));
            vst1q_u8(dp.add(48), veorq_u8(d3, mul16(s3, lo, hi, mask)));
        }
    }
    let (s, d) = (s.remainder(), d.into_remainder());
    let mut s = s.chunks_exact(16);
    let mut d = d.chunks_exact_mut(16);
    for (s, d) in (&mut s).zip(&mut d) {
        // SAFETY: `s` and `d` are 16 bytes long: one load or store each stays inside. The
        // caller guarantees NEON.
        unsafe {
            let r = veorq_u8(vld1q_u8(d.as_ptr()), mul16(vld1q_u8(s.as_ptr()), lo, hi, mask));
            vst1q_u8(d.as_mut_ptr(), r);
        }
    }
    soft::mul_acc(c, s.remainder(), d.into_remainder());
}

/// `dst[i] = base[i] ^ c * src[i]`.
///
/// # Safety
/// The CPU must support NEON.
#[cfg_attr(target_arch = "aarch64", target_feature(enable = "neon"))]
pub(super) unsafe fn mul_add_into_neon(c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    debug_assert_eq!(base.len(), dst.len());
    let (lo, hi, mask) = tables(c);
    let mut s = src.chunks_exact(STEP);
    let mut b = base.chunks_exact(STEP);
    let mut d = dst.chunks_exact_mut(STEP);
    for ((s, b), d) in (&mut s).zip(&mut b).zip(&mut d) {
        let (sp, bp, dp) = (s.as_ptr(), b.as_ptr(), d.as_mut_ptr());
        // SAFETY: `s`, `b` and `d` are 64 bytes long, so the 16-byte accesses at offsets 0,
        // 16, 32 and 48 stay inside them; `vld1q_u8`/`vst1q_u8` need only byte alignment. The
        // caller guarantees NEON.
        unsafe {
            let s0 = vld1q_u8(sp);
            let s1 = vld1q_u8(sp.add(16));
            let s2 = vld1q_u8(sp.add(32));
            let s3 = vld1q_u8(sp.add(48));
            let b0 = vld1q_u8(bp);
            let b1 = vld1q_u8(bp.add(16));
            let b2 = vld1q_u8(bp.add(32));
            let b3 = vld1q_u8(bp.add(48));
            vst1q_u8(dp, veorq_u8(b0, mul16(s0, lo, hi, mask)));
            vst1q_u8(dp.add(16), veorq_u8(b1, mul16(s1, lo, hi, mask)));
            vst1q_u8(dp.add(32), veorq_u8(b2, mul16(s2, lo, hi, mask)));
            vst1q_u8(dp.add(48), veorq_u8(b3, mul16(s3, lo, hi, mask)));
        }
    }
    let (s, b, d) = (s.remainder(), b.remainder(), d.into_remainder());
    let mut s = s.chunks_exact(16);
    let mut b = b.chunks_exact(16);
    let mut d = d.chunks_exact_mut(16);
    for ((s, b), d) in (&mut s).zip(&mut b).zip(&mut d) {
        // SAFETY: `s`, `b` and `d` are 16 bytes long: one load or store each stays inside. The
        // caller guarantees NEON.
        unsafe {
            let r = veorq_u8(vld1q_u8(b.as_ptr()), mul16(vld1q_u8(s.as_ptr()), lo, hi, mask));
            vst1q_u8(d.as_mut_ptr(), r);
        }
    }
    soft::mul_add_into(c, s.remainder(), b.remainder(), d.into_remainder());
}

/// A scalar model of the NEON intrinsics used above, with the same names and signatures, so
/// that the kernel source can be compiled and tested on x86_64 (see the module docs). It
/// follows the Arm Architecture Reference Manual: `TBL` with one table register returns 0 for
/// an index of 16 or more; `USHR` shifts each byte independently.
#[cfg(not(target_arch = "aarch64"))]
#[allow(non_camel_case_types, clippy::missing_safety_doc)]
mod model {
    /// Sixteen bytes, one per lane.
    #[derive(Clone, Copy)]
    pub(super) struct uint8x16_t([u8; 16]);

    fn map2(a: uint8x16_t, b: uint8x16_t, f: impl Fn(u8, u8) -> u8) -> uint8x16_t {
        uint8x16_t(core::array::from_fn(|i| f(a.0[i], b.0[i])))
    }

    pub(super) unsafe fn vld1q_u8(ptr: *const u8) -> uint8x16_t {
        // SAFETY: the caller guarantees 16 readable bytes at `ptr`, as for the real intrinsic.
        uint8x16_t(unsafe { ptr.cast::<[u8; 16]>().read_unaligned() })
    }

    pub(super) unsafe fn vst1q_u8(ptr: *mut u8, a: uint8x16_t) {
        // SAFETY: the caller guarantees 16 writable bytes at `ptr`, as for the real intrinsic.
        unsafe { ptr.cast::<[u8; 16]>().write_unaligned(a.0) }
    }

    pub(super) fn vdupq_n_u8(v: u8) -> uint8x16_t {
        uint8x16_t([v; 16])
    }

    pub(super) fn vandq_u8(a: uint8x16_t, b: uint8x16_t) -> uint8x16_t {
        map2(a, b, |x, y| x & y)
    }

    pub(super) fn veorq_u8(a: uint8x16_t, b: uint8x16_t) -> uint8x16_t {
        map2(a, b, |x, y| x ^ y)
    }

    pub(super) fn vshrq_n_u8<const N: i32>(a: uint8x16_t) -> uint8x16_t {
        uint8x16_t(a.0.map(|x| x >> N))
    }

    pub(super) fn vqtbl1q_u8(t: uint8x16_t, idx: uint8x16_t) -> uint8x16_t {
        uint8x16_t(idx.0.map(|i| t.0.get(usize::from(i)).copied().unwrap_or(0)))
    }
}

#[cfg(all(test, not(target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// The NEON kernel source, run on the scalar intrinsic model, matches the portable kernel
    /// for every constant and for lengths around the vector and loop widths.
    #[test]
    fn neon_source_on_model_matches_portable() {
        let buf: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8).collect();
        let base: Vec<u8> = (0..300u32).map(|i| (i * 29 + 200) as u8).collect();
        for c in 0..=255u8 {
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200] {
                let (src, b) = (&buf[3..3 + len], &base[5..5 + len]);
                let mut want = b.to_vec();
                soft::mul_acc(c, src, &mut want);
                let mut got = b.to_vec();
                // SAFETY: on this target the intrinsics are the scalar model, which needs no
                // CPU feature.
                unsafe { mul_acc_neon(c, src, &mut got) };
                assert_eq!(got, want, "mul_acc c={c} len={len}");
                let mut got = vec![0xa5; len];
                // SAFETY: as above.
                unsafe { mul_add_into_neon(c, src, b, &mut got) };
                assert_eq!(got, want, "mul_add_into c={c} len={len}");
            }
        }
    }

    /// The model's TBL follows the architecture: out-of-range indices give 0.
    #[test]
    fn model_tbl_out_of_range_is_zero() {
        let t = model::vdupq_n_u8(7);
        let r = model::vqtbl1q_u8(t, model::vdupq_n_u8(16));
        let mut out = [1u8; 16];
        // SAFETY: `out` has 16 writable bytes.
        unsafe { model::vst1q_u8(out.as_mut_ptr(), r) };
        assert_eq!(out, [0; 16]);
    }
}
