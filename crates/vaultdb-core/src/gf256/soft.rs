//! The portable kernel: eight field elements at a time in a `u64`, with no table lookups and
//! no branches on data. Branches on the constant `c` are fine: it is public.

use super::Base;

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const LOW1: u64 = 0x0101_0101_0101_0101;

/// Multiplies each of the eight bytes of `v` by x (the element 0x02).
#[inline(always)]
fn xtime8(v: u64) -> u64 {
    ((v & LOW7) << 1) ^ (((v >> 7) & LOW1) * u64::from(super::POLY))
}

/// `c * v` for each byte of `v`.
#[inline(always)]
fn mul8(c: u8, mut v: u64) -> u64 {
    let mut acc = 0;
    let mut c = c;
    while c != 0 {
        if c & 1 == 1 {
            acc ^= v;
        }
        v = xtime8(v);
        c >>= 1;
    }
    acc
}

#[inline(always)]
fn load(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_le_bytes(w)
}

/// `dst = base ^ sum of c * src` over `terms` (see `Kernel::mul_sum`), eight bytes at a time.
pub(super) fn mul_sum(terms: &[(u8, &[u8])], base: Base<'_>, dst: &mut [u8]) {
    let words = dst.len() / 8 * 8;
    for (w, d) in dst[..words].chunks_exact_mut(8).enumerate() {
        let at = w * 8..w * 8 + 8;
        let mut acc = match base {
            Base::Zero => 0,
            Base::Dst => load(d),
            Base::Slice(b) => load(&b[at.clone()]),
        };
        for &(c, s) in terms {
            acc ^= mul8(c, load(&s[at.clone()]));
        }
        d.copy_from_slice(&acc.to_le_bytes());
    }
    for i in words..dst.len() {
        let mut acc = match base {
            Base::Zero => 0,
            Base::Dst => dst[i],
            Base::Slice(b) => b[i],
        };
        for &(c, s) in terms {
            acc ^= super::mul(c, s[i]);
        }
        dst[i] = acc;
    }
}

// The single-term forms: the NEON kernels' tails, and references for the tests.

#[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
pub(super) fn mul_acc(c: u8, src: &[u8], dst: &mut [u8]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        d.copy_from_slice(&(load(d) ^ mul8(c, load(s))).to_le_bytes());
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d ^= super::mul(c, *s);
    }
}

#[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
pub(super) fn mul_add_into(c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    let mut b = base.chunks_exact(8);
    for ((d, s), b) in (&mut d).zip(&mut s).zip(&mut b) {
        d.copy_from_slice(&(load(b) ^ mul8(c, load(s))).to_le_bytes());
    }
    for ((d, s), b) in d.into_remainder().iter_mut().zip(s.remainder()).zip(b.remainder()) {
        *d = b ^ super::mul(c, *s);
    }
}
