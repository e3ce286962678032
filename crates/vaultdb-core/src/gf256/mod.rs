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

// The SIMD kernels. Each ISA's file holds `#[target_feature] unsafe fn`s; `simd` below is the
// only caller, and it checks the CPU before every call.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

// Compiled on aarch64 with NEON, and in x86_64 test builds against a scalar model of the NEON
// intrinsics (see the module docs).
#[cfg(any(
    all(target_arch = "aarch64", target_feature = "neon"),
    all(test, not(target_arch = "aarch64"))
))]
#[allow(unsafe_code)]
mod neon;

/// SIMD dispatch: run-time CPU detection and the only calls into the `unsafe` kernels.
///
/// Soundness does not rest on [`Kernel`]'s invariant alone: every dispatch re-checks the cached
/// CPUID result (one relaxed atomic load) and falls back to the portable kernel, which gives
/// identical bytes, if the ISA is unavailable. So no safe function can execute an instruction
/// the CPU lacks, whatever `Isa` it is handed.
#[allow(unsafe_code)]
mod simd {
    #[cfg(target_arch = "x86_64")]
    use super::x86;
    use super::{Isa, Kernel, POLY, soft};

    // CPUID-based detection, cached in an atomic (a compile-time constant when the feature is
    // enabled for the whole build; always false under Miri). "avx2" also checks that the OS
    // saves the YMM registers (XCR0).
    #[cfg(target_arch = "x86_64")]
    cpufeatures::new!(cpuid_avx2, "avx2");
    #[cfg(target_arch = "x86_64")]
    cpufeatures::new!(cpuid_ssse3, "ssse3");

    /// NEON is part of every standard aarch64 target, so it is a compile-time property here;
    /// Miri, like cpufeatures under Miri, gets the portable kernel.
    const HAS_NEON: bool = cfg!(all(target_arch = "aarch64", target_feature = "neon", not(miri)));

    /// True only if `isa` is a SIMD ISA this CPU supports.
    pub(super) fn is_available(isa: Isa) -> bool {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => cpuid_avx2::get(),
            #[cfg(target_arch = "x86_64")]
            Isa::Ssse3 => cpuid_ssse3::get(),
            Isa::Neon => HAS_NEON,
            _ => false,
        }
    }

    /// `dst[i] ^= c * src[i]` on `isa` if the CPU has it, else on the portable kernel.
    pub(super) fn mul_acc(isa: Isa, c: u8, src: &[u8], dst: &mut [u8]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 if cpuid_avx2::get() => {
                // SAFETY: AVX2 support (and OS support for YMM state) was detected just above.
                unsafe { x86::mul_acc_avx2(c, src, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Ssse3 if cpuid_ssse3::get() => {
                // SAFETY: SSSE3 support was detected just above.
                unsafe { x86::mul_acc_ssse3(c, src, dst) }
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon if HAS_NEON => {
                // SAFETY: NEON is enabled for the whole build (checked by the cfg above).
                unsafe { super::neon::mul_acc_neon(c, src, dst) }
            }
            _ => soft::mul_acc(c, src, dst),
        }
    }

    /// `dst[i] = base[i] ^ c * src[i]` on `isa` if the CPU has it, else on the portable kernel.
    pub(super) fn mul_add_into(isa: Isa, c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 if cpuid_avx2::get() => {
                // SAFETY: AVX2 support (and OS support for YMM state) was detected just above.
                unsafe { x86::mul_add_into_avx2(c, src, base, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Ssse3 if cpuid_ssse3::get() => {
                // SAFETY: SSSE3 support was detected just above.
                unsafe { x86::mul_add_into_ssse3(c, src, base, dst) }
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon if HAS_NEON => {
                // SAFETY: NEON is enabled for the whole build (checked by the cfg above).
                unsafe { super::neon::mul_add_into_neon(c, src, base, dst) }
            }
            _ => soft::mul_add_into(c, src, base, dst),
        }
    }

    /// `dst = a*x ^ b*y` (or `dst ^= a*x ^ b*y` if `acc`) on `isa` if the CPU has it. The
    /// x86 kernels do it in one pass; elsewhere it is two region passes.
    fn mul2(isa: Isa, acc: bool, a: u8, x: &[u8], b: u8, y: &[u8], dst: &mut [u8]) {
        match (isa, acc) {
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, false) if cpuid_avx2::get() => {
                // SAFETY: AVX2 support (and OS support for YMM state) was detected just above.
                unsafe { x86::mul2_avx2::<false>(a, x, b, y, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, true) if cpuid_avx2::get() => {
                // SAFETY: AVX2 support (and OS support for YMM state) was detected just above.
                unsafe { x86::mul2_avx2::<true>(a, x, b, y, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            (Isa::Ssse3, false) if cpuid_ssse3::get() => {
                // SAFETY: SSSE3 support was detected just above.
                unsafe { x86::mul2_ssse3::<false>(a, x, b, y, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            (Isa::Ssse3, true) if cpuid_ssse3::get() => {
                // SAFETY: SSSE3 support was detected just above.
                unsafe { x86::mul2_ssse3::<true>(a, x, b, y, dst) }
            }
            _ => {
                if !acc {
                    dst.fill(0);
                }
                mul_acc(isa, a, x, dst);
                mul_acc(isa, b, y, dst);
            }
        }
    }

    /// Two-source region operations for rebuild and repair (`Xorida::interpolate`), which
    /// sums K weighted shares: fusing them in pairs saves a pass over the output.
    impl Kernel {
        /// `dst[i] = a * x[i] ^ b * y[i]` for every i.
        ///
        /// # Panics
        /// If the three buffers differ in length.
        pub(crate) fn mul2_into(self, a: u8, x: &[u8], b: u8, y: &[u8], dst: &mut [u8]) {
            assert!(x.len() == dst.len() && y.len() == dst.len(), "mul2_into: length mismatch");
            mul2(self.isa, false, a, x, b, y, dst);
        }

        /// `dst[i] ^= a * x[i] ^ b * y[i]` for every i.
        ///
        /// # Panics
        /// If the three buffers differ in length.
        pub(crate) fn mul2_acc(self, a: u8, x: &[u8], b: u8, y: &[u8], dst: &mut [u8]) {
            assert!(x.len() == dst.len() && y.len() == dst.len(), "mul2_acc: length mismatch");
            mul2(self.isa, true, a, x, b, y, dst);
        }
    }

    /// The split-nibble tables for multiplying by `c`: `(c * n, c * (n << 4))` for every
    /// nibble `n`. Built from `c * x^j` (j = 0..8) by XOR, since multiplication by `c` is
    /// linear over GF(2); `c` is public, and no branch or index depends on anything else.
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64", test)), allow(dead_code))]
    pub(super) fn nibble_tables(c: u8) -> ([u8; 16], [u8; 16]) {
        let mut pw = [0u8; 8];
        let mut v = c;
        for p in &mut pw {
            *p = v;
            v = (v << 1) ^ (0u8.wrapping_sub(v >> 7) & POLY);
        }
        let (mut lo, mut hi) = ([0u8; 16], [0u8; 16]);
        for i in 1..16usize {
            let bit = i.trailing_zeros() as usize;
            let rest = i & (i - 1);
            lo[i] = lo[rest] ^ pw[bit];
            hi[i] = hi[rest] ^ pw[bit + 4];
        }
        (lo, hi)
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

    #[test]
    fn nibble_tables_match_scalar_mul() {
        for c in 0..=255u8 {
            let (lo, hi) = simd::nibble_tables(c);
            for n in 0..16u8 {
                assert_eq!(lo[usize::from(n)], mul(c, n), "c={c} lo[{n}]");
                assert_eq!(hi[usize::from(n)], mul(c, n << 4), "c={c} hi[{n}]");
            }
        }
    }

    /// Detection agrees with the standard library's independent CPUID check, so a kernel
    /// exists exactly for the ISAs this CPU has (and the SIMD kernels are really tested here).
    #[test]
    fn detection_agrees_with_std() {
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(Isa::Avx2.is_available(), std::arch::is_x86_feature_detected!("avx2"));
            assert_eq!(Isa::Ssse3.is_available(), std::arch::is_x86_feature_detected!("ssse3"));
            assert!(!Isa::Neon.is_available());
            assert_eq!(Kernel::new(Isa::Neon), None);
        }
        #[cfg(target_arch = "aarch64")]
        {
            assert_eq!(Isa::Neon.is_available(), std::arch::is_aarch64_feature_detected!("neon"));
            assert!(!Isa::Avx2.is_available() && !Isa::Ssse3.is_available());
        }
        assert!(Isa::Portable.is_available());
        let avail = Kernel::available();
        assert_eq!(avail.last(), Some(&Kernel::portable()));
        for isa in Isa::ALL {
            assert_eq!(avail.iter().any(|k| k.isa() == isa), isa.is_available(), "{isa}");
            assert_eq!(Kernel::new(isa).is_some(), isa.is_available(), "{isa}");
        }
    }

    /// Every available SIMD kernel gives the portable kernel's bytes for every constant, at
    /// lengths that exercise the unrolled loop, the single-vector loop and the scalar tail.
    #[test]
    fn simd_kernels_match_portable_for_every_constant() {
        let src: Vec<u8> = (0..1100u32).map(|i| (i * 167 + 11) as u8).collect();
        let base: Vec<u8> = (0..1100u32).map(|i| (i * 37 + 90) as u8).collect();
        let lens = [0usize, 1, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97, 129, 1000];
        for k in Kernel::available() {
            for c in 0..=255u8 {
                for len in lens {
                    let (s, b) = (&src[1..1 + len], &base[7..7 + len]);
                    let mut want = b.to_vec();
                    soft::mul_acc(c, s, &mut want);
                    let mut got = b.to_vec();
                    k.mul_acc(c, s, &mut got);
                    assert_eq!(got, want, "{} mul_acc c={c} len={len}", k.isa());
                    let mut got = vec![0x5a; len];
                    k.mul_add_into(c, s, b, &mut got);
                    assert_eq!(got, want, "{} mul_add_into c={c} len={len}", k.isa());
                }
            }
        }
    }

    /// The fused two-source operations equal two single-source passes, on every kernel.
    #[test]
    fn two_source_ops_match_two_passes() {
        let x: Vec<u8> = (0..700u32).map(|i| (i * 199 + 3) as u8).collect();
        let y: Vec<u8> = (0..700u32).map(|i| (i * 59 + 120) as u8).collect();
        let d0: Vec<u8> = (0..700u32).map(|i| (i * 11 + 77) as u8).collect();
        let lens = [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 640];
        for k in Kernel::available() {
            for (a, b) in [(0u8, 0u8), (1, 1), (0, 7), (2, 1), (0x53, 0xca), (255, 254)] {
                for len in lens {
                    let (xs, ys) = (&x[3..3 + len], &y[9..9 + len]);
                    let mut want = d0[..len].to_vec();
                    soft::mul_acc(a, xs, &mut want);
                    soft::mul_acc(b, ys, &mut want);
                    let mut got = d0[..len].to_vec();
                    k.mul2_acc(a, xs, b, ys, &mut got);
                    assert_eq!(got, want, "{} mul2_acc a={a} b={b} len={len}", k.isa());
                    let mut want = vec![0u8; len];
                    soft::mul_acc(a, xs, &mut want);
                    soft::mul_acc(b, ys, &mut want);
                    let mut got = d0[..len].to_vec();
                    k.mul2_into(a, xs, b, ys, &mut got);
                    assert_eq!(got, want, "{} mul2_into a={a} b={b} len={len}", k.isa());
                }
            }
        }
    }

    /// Handed an ISA the CPU lacks, the dispatcher falls back to the portable kernel instead
    /// of executing foreign instructions.
    #[test]
    fn dispatch_of_unavailable_isa_falls_back() {
        let src: Vec<u8> = (0..100u8).collect();
        let base = vec![3u8; 100];
        for isa in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
            let mut got = vec![0u8; 100];
            simd::mul_add_into(isa, 0x57, &src, &base, &mut got);
            let mut want = vec![0u8; 100];
            soft::mul_add_into(0x57, &src, &base, &mut want);
            assert_eq!(got, want, "{isa}");
            simd::mul_acc(isa, 0x57, &src, &mut got);
            assert_eq!(got, base, "{isa}");
        }
    }
}
