//! Arithmetic in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B).
//!
//! Scalar operations ([`mul`], [`inv`]) are branch-free and table-free, so their timing does
//! not depend on their operands. Region operations (a constant times a whole buffer) go
//! through a [`Kernel`]: a SIMD implementation chosen at run time (on x86_64: GFNI with
//! AVX-512 or AVX2, AVX-512BW, AVX2 or SSSE3; NEON on aarch64) or the portable one. Every
//! kernel computes exactly the same bytes; the tests check each available one against the
//! portable kernel.
//!
//! Region constants (`c` below) are public values (Lagrange weights, powers of a share's x
//! coordinate); the buffers are secret. No kernel branches on, or indexes memory with, a
//! buffer byte: the GFNI kernels multiply in hardware (GF2P8MULB computes in this very
//! field, with the AES polynomial), the other SIMD kernels look up nibbles in tables held in
//! registers (PSHUFB/TBL), and the portable kernel multiplies eight bytes at a time with
//! shifts and masks.

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
    /// x86_64 AVX-512 (F, BW) with GFNI: VGF2P8MULB, 64 bytes per instruction.
    Avx512Gfni,
    /// x86_64 AVX-512BW (VPSHUFB split-nibble tables, 64 bytes at a time).
    Avx512,
    /// x86_64 AVX2 with GFNI: the 256-bit VEX form of VGF2P8MULB, for CPUs with GFNI but
    /// without AVX-512.
    Avx2Gfni,
    /// x86_64 SSSE3 (PSHUFB, 16 bytes at a time).
    Ssse3,
    /// x86_64 AVX2 (VPSHUFB, 32 bytes at a time).
    Avx2,
    /// aarch64 NEON (TBL, 16 bytes at a time).
    Neon,
}

impl Isa {
    /// Every ISA, fastest first.
    pub const ALL: [Isa; 7] = [
        Isa::Avx512Gfni,
        Isa::Avx512,
        Isa::Avx2Gfni,
        Isa::Avx2,
        Isa::Ssse3,
        Isa::Neon,
        Isa::Portable,
    ];

    /// True if this CPU can run kernels for this ISA.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            _ => simd::is_available(self),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Portable => "portable",
            Isa::Avx512Gfni => "avx512-gfni",
            Isa::Avx512 => "avx512bw",
            Isa::Avx2Gfni => "avx2-gfni",
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
        if c != 0 {
            self.mul_sum(&[(c, src)], Base::Dst, dst);
        }
    }

    /// `dst[i] = base[i] ^ c * src[i]` for every i.
    ///
    /// # Panics
    /// If the three buffers differ in length.
    pub fn mul_add_into(self, c: u8, src: &[u8], base: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "mul_add_into: length mismatch");
        assert_eq!(base.len(), dst.len(), "mul_add_into: length mismatch");
        self.mul_sum(&[(c, src)], Base::Slice(base), dst);
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
            _ => self.mul_sum(&[(c, src)], Base::Zero, dst),
        }
    }

    /// `dst[i] = b[i] ^ c_1 * s_1[i] ^ c_2 * s_2[i] ^ ...` for every i, where `terms` is
    /// `[(c_1, s_1), (c_2, s_2), ...]` and `b` is chosen by `base`. The SIMD kernels do up to
    /// [`MAX_TERMS`] terms in one pass over `dst` (every source is read once and `dst` written
    /// once); more terms take one more pass per [`MAX_TERMS`].
    ///
    /// Split (one share from the secret and K-1 coefficients) and rebuild (K weighted
    /// shares) are both this operation. With every constant 1 it is the XOR of the sources,
    /// which the benchmarks use as the least work a rebuild can do.
    ///
    /// # Panics
    /// If a source or the base differs in length from `dst`.
    pub fn mul_sum(self, terms: &[(u8, &[u8])], base: Base<'_>, dst: &mut [u8]) {
        let len = dst.len();
        let base_ok = match base {
            Base::Slice(b) => b.len() == len,
            Base::Zero | Base::Dst => true,
        };
        assert!(base_ok && terms.iter().all(|t| t.1.len() == len), "mul_sum: length mismatch");
        if terms.is_empty() {
            match base {
                Base::Zero => dst.fill(0),
                Base::Dst => {}
                Base::Slice(b) => dst.copy_from_slice(b),
            }
            return;
        }
        let mut base = base;
        for group in terms.chunks(MAX_TERMS) {
            match self.isa {
                Isa::Portable => soft::mul_sum(group, base, dst),
                isa => simd::mul_sum(isa, group, base, dst),
            }
            base = Base::Dst;
        }
    }
}

/// What [`Kernel::mul_sum`] adds its terms to.
/// No `Debug`: it may hold secret bytes.
#[derive(Clone, Copy)]
pub enum Base<'a> {
    /// Nothing: `dst` is overwritten with the sum of the terms.
    Zero,
    /// `dst`'s own bytes: the terms are accumulated into it.
    Dst,
    /// Another buffer of `dst`'s length.
    Slice(&'a [u8]),
}

/// Terms per pass of the SIMD [`Kernel::mul_sum`] kernels: with four, split 2-of-3 to 5-of-N
/// and rebuild up to K = 4 write each output once.
pub const MAX_TERMS: usize = 4;

/// Hands the cache lines of `buf`, just written here, from this core's caches to the one
/// the cores share (x86 `CLDEMOTE`), for another thread that reads them next
/// (docs/PERFORMANCE.md, "The get's hand-over"). No byte changes, and the lines touched
/// depend on where `buf` is, never on its bytes. Returns whether the CPU has the
/// instruction; without it this does nothing.
pub fn demote(buf: &[u8]) -> bool {
    simd::demote(buf)
}

// The SIMD kernels. Each ISA's file holds `#[target_feature] unsafe fn`s; `simd` below is the
// only caller, and it checks the CPU before every call.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

// The fused split kernel: AES-256-CTR keystream (VAES) and the K-of-N shares (K <= 5) in one
// loop.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod vaes;
#[cfg(target_arch = "x86_64")]
pub(crate) use vaes::{AesKeys, MAX_FUSED};

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
/// CPUID result (one relaxed atomic load per feature) and falls back to the portable kernel,
/// which gives identical bytes, if the ISA is unavailable. So no safe function can execute an
/// instruction the CPU lacks, whatever `Isa` it is handed.
#[allow(unsafe_code)]
mod simd {
    #[cfg(target_arch = "x86_64")]
    use super::x86;
    use super::{Base, Isa, POLY, soft};

    /// x86_64 detection: the standard library's CPUID check, cached in atomics (always false
    /// under Miri). For AVX, AVX2 and AVX-512 it also checks that the OS saves the vector
    /// registers (XCR0). GFNI is a CPUID bit of its own; its 256-bit form needs AVX2 and its
    /// 512-bit form AVX-512 (F and BW, which the kernels' masked tails use).
    #[cfg(target_arch = "x86_64")]
    mod cpu {
        use std::arch::is_x86_feature_detected as has;

        pub(super) fn avx512_gfni() -> bool {
            avx512() && has!("gfni")
        }
        pub(super) fn avx512() -> bool {
            has!("avx512f") && has!("avx512bw")
        }
        pub(super) fn avx2_gfni() -> bool {
            avx2() && has!("gfni")
        }
        pub(super) fn avx2() -> bool {
            has!("avx2")
        }
        pub(super) fn ssse3() -> bool {
            has!("ssse3")
        }
        /// CLDEMOTE: CPUID leaf 7, ECX bit 25 (which the standard library does not detect).
        pub(super) fn cldemote() -> bool {
            static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            !cfg!(miri)
                && *HAS.get_or_init(|| {
                    use core::arch::x86_64::{__cpuid, __cpuid_count};
                    __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ecx & (1 << 25) != 0
                })
        }
    }

    /// NEON is part of every standard aarch64 target, so it is a compile-time property here;
    /// Miri gets the portable kernel.
    const HAS_NEON: bool = cfg!(all(target_arch = "aarch64", target_feature = "neon", not(miri)));

    /// True only if `isa` is a SIMD ISA this CPU supports.
    pub(super) fn is_available(isa: Isa) -> bool {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Gfni => cpu::avx512_gfni(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => cpu::avx512(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Gfni => cpu::avx2_gfni(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => cpu::avx2(),
            #[cfg(target_arch = "x86_64")]
            Isa::Ssse3 => cpu::ssse3(),
            Isa::Neon => HAS_NEON,
            _ => false,
        }
    }

    /// [`super::demote`].
    pub(super) fn demote(buf: &[u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if cpu::cldemote() {
            x86::demote(buf);
            return true;
        }
        let _ = buf;
        false
    }

    /// [`super::Kernel::mul_sum`] for one group of 1 to [`super::MAX_TERMS`] terms, on `isa`
    /// if the CPU has it, else on the portable kernel.
    pub(super) fn mul_sum(isa: Isa, terms: &[(u8, &[u8])], base: Base<'_>, dst: &mut [u8]) {
        match terms.len() {
            1 => fixed::<1>(isa, terms, base, dst),
            2 => fixed::<2>(isa, terms, base, dst),
            3 => fixed::<3>(isa, terms, base, dst),
            4 => fixed::<4>(isa, terms, base, dst),
            _ => soft::mul_sum(terms, base, dst),
        }
    }

    /// [`mul_sum`] with the number of terms known at compile time, so that the kernels keep
    /// every constant in a register and unroll the loop over the terms.
    fn fixed<const N: usize>(isa: Isa, terms: &[(u8, &[u8])], base: Base<'_>, dst: &mut [u8]) {
        let c: [u8; N] = std::array::from_fn(|j| terms[j].0);
        let s: [&[u8]; N] = std::array::from_fn(|j| terms[j].1);
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Gfni if cpu::avx512_gfni() => {
                // SAFETY: AVX-512F, AVX-512BW and GFNI (and OS support for ZMM state) were
                // detected just above.
                unsafe { x86::avx512_gfni::mul_sum(c, s, base, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if cpu::avx512() => {
                // SAFETY: AVX-512F and AVX-512BW (and OS support for ZMM state) were detected
                // just above.
                unsafe { x86::avx512::mul_sum(c, s, base, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Gfni if cpu::avx2_gfni() => {
                // SAFETY: AVX2 and GFNI (and OS support for YMM state) were detected just above.
                unsafe { x86::avx2_gfni::mul_sum(c, s, base, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 if cpu::avx2() => {
                // SAFETY: AVX2 (and OS support for YMM state) was detected just above.
                unsafe { x86::avx2::mul_sum(c, s, base, dst) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Ssse3 if cpu::ssse3() => {
                // SAFETY: SSSE3 was detected just above.
                unsafe { x86::ssse3::mul_sum(c, s, base, dst) }
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon if HAS_NEON => neon_sum(&c, &s, base, dst),
            _ => soft::mul_sum(terms, base, dst),
        }
    }

    /// NEON has single-term kernels only: the first term (with the base) and then one
    /// accumulating pass per further term.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    fn neon_sum(c: &[u8], s: &[&[u8]], base: Base<'_>, dst: &mut [u8]) {
        use super::neon;
        let mut rest = c.iter().zip(s);
        match base {
            Base::Zero => dst.fill(0),
            Base::Dst => {}
            Base::Slice(b) => {
                if let Some((&c0, s0)) = rest.next() {
                    // SAFETY: NEON is enabled for the whole build (checked by the cfg above).
                    unsafe { neon::mul_add_into_neon(c0, s0, b, dst) };
                } else {
                    dst.copy_from_slice(b);
                }
            }
        }
        for (&ci, si) in rest {
            // SAFETY: NEON is enabled for the whole build (checked by the cfg above).
            unsafe { neon::mul_acc_neon(ci, si, dst) };
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

    /// Detection agrees with the CPU's flags as Linux reports them in /proc/cpuinfo (an
    /// independent source: the kernel's own CPUID and XCR0 checks), and with the standard
    /// library, so a kernel exists exactly for the ISAs this CPU has (and the SIMD kernels are
    /// really tested here).
    #[test]
    fn detection_agrees_with_the_cpu_flags() {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            assert_eq!(Isa::Avx2.is_available(), has!("avx2"));
            assert_eq!(Isa::Ssse3.is_available(), has!("ssse3"));
            let avx512 = has!("avx512f") && has!("avx512bw");
            assert_eq!(Isa::Avx512.is_available(), avx512);
            assert_eq!(Isa::Avx512Gfni.is_available(), avx512 && has!("gfni"));
            assert_eq!(Isa::Avx2Gfni.is_available(), has!("avx2") && has!("gfni"));
            assert!(!Isa::Neon.is_available());
            assert_eq!(Kernel::new(Isa::Neon), None);
            if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
                let flags: Vec<&str> = info
                    .lines()
                    .find(|l| l.starts_with("flags"))
                    .map(|l| l.split_whitespace().collect())
                    .unwrap_or_default();
                let flag = |f: &str| flags.contains(&f);
                assert_eq!(Isa::Avx2.is_available(), flag("avx2"));
                assert_eq!(Isa::Avx512.is_available(), flag("avx512f") && flag("avx512bw"));
                assert_eq!(
                    Isa::Avx512Gfni.is_available(),
                    flag("avx512f") && flag("avx512bw") && flag("gfni")
                );
                assert_eq!(Isa::Avx2Gfni.is_available(), flag("avx2") && flag("gfni"));
            }
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

    /// `mul_sum` with 1 to 6 terms (one and two passes of the SIMD kernels), every base and
    /// lengths around the vector widths equals single-term passes of the portable kernel, on
    /// every kernel, and writes nothing outside `dst`.
    #[test]
    fn mul_sum_matches_single_passes() {
        let bytes = |mul: u32, add: u32| -> Vec<u8> {
            (0..800u32).map(|i| (i.wrapping_mul(mul) + add) as u8 ^ (i >> 5) as u8).collect()
        };
        let srcs: Vec<Vec<u8>> = (0..6).map(|j| bytes(199 + 2 * j, 3 + 17 * j)).collect();
        let base = bytes(59, 120);
        let d0 = bytes(11, 77);
        let consts = [0x53u8, 0xca, 1, 0, 255, 2];
        let lens = [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 640];
        for k in Kernel::available() {
            for n in 1..=6 {
                for len in lens {
                    let terms: Vec<(u8, &[u8])> =
                        (0..n).map(|j| (consts[j], &srcs[j][j + 1..j + 1 + len])).collect();
                    let b = &base[5..5 + len];
                    for which in 0..3 {
                        // Reference: the base (or zero, or dst), then one term at a time.
                        let mut want = d0[..len + 2].to_vec();
                        match which {
                            0 => want[1..=len].fill(0),
                            1 => {}
                            _ => want[1..=len].copy_from_slice(b),
                        }
                        for (c, s) in &terms {
                            soft::mul_acc(*c, s, &mut want[1..=len]);
                        }
                        let base = match which {
                            0 => Base::Zero,
                            1 => Base::Dst,
                            _ => Base::Slice(b),
                        };
                        let mut got = d0[..len + 2].to_vec();
                        k.mul_sum(&terms, base, &mut got[1..=len]);
                        assert_eq!(got, want, "{} terms={n} base={which} len={len}", k.isa());
                    }
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
            simd::mul_sum(isa, &[(0x57, &src)], Base::Slice(&base), &mut got);
            let mut want = vec![0u8; 100];
            soft::mul_add_into(0x57, &src, &base, &mut want);
            assert_eq!(got, want, "{isa}");
            simd::mul_sum(isa, &[(0x57, &src)], Base::Dst, &mut got);
            assert_eq!(got, base, "{isa}");
        }
    }
}
