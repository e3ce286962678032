// This file is long because it is one kernel: the key expansion, the keystream and the fused
// split share the AES setup and the unsafe intrinsics, and its tests check all three against
// the `aes` crate and the split's formula byte by byte.
//! The fused split kernel (x86_64, AVX-512 with VAES, GFNI and VBMI): a K-of-N split step
//! (K <= 5) that generates its random bytes, AES-256-CTR, in registers and writes the N
//! shares from them in the same loop, so that the AES rounds of one iteration and the share
//! stores of the previous one overlap in the out-of-order core instead of running as passes.
//!
//! The keystream is the generator's (`rng::CsRng`, docs/FORMAT.md section 3): AES-256 of the
//! 128-bit big-endian counter block `index` under the seed. Coefficient R_j is the keystream
//! from its own byte position on (docs/FORMAT.md section 2: R_1, then R_2, ..., each L bytes),
//! so each of the K-1 streams has its own counter and, when that position is not on a
//! 16-byte block boundary, its own byte offset into the blocks: such a stream's 64-byte
//! vectors are cut out of two consecutive keystream vectors with one VPERMT2B (AVX-512
//! VBMI). The shares are exactly those of the unfused split (checked by `tests/kat.rs` on
//! every kernel and by the tests below).
//!
//! Fewer multiplications: on these CPUs VAESENC and VGF2P8MULB on 512-bit vectors issue on
//! the same execution port, so every multiplication costs as much as an AES round. Squaring
//! is additive in characteristic 2 (`(a + b)^2 = a^2 + b^2`), so for the exponents 1, 2 and
//! 4 the map `x -> x^e * R` is additive in `x`: the kernel computes those terms only at
//! `x = 1, 2, 4, ...` (the "basis", `x = 1` without any multiplication) and every share as the
//! secret plus the XOR of the basis vectors of the bits of its `x`. Only `x^3 * R_3` (K >= 4)
//! is multiplied per share. 2-of-3 then takes one multiplication per 64 bytes instead of three,
//! 3-of-5 three instead of ten (the basis shares one product, `basis_of`).
//!
//! [`AesKeys`] holds the expanded key (AES-NI key expansion) and exists only on CPUs that can
//! run the keystream kernel; every entry point re-checks the CPU anyway and reports `false`
//! so that the caller falls back to the unfused split.

use core::arch::x86_64::{
    __m128i, __m512i, __mmask64, _mm_aeskeygenassist_si128, _mm_loadu_si128, _mm_shuffle_epi32,
    _mm_slli_si128, _mm_storeu_si128, _mm_xor_si128, _mm512_add_epi8, _mm512_add_epi64,
    _mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_broadcast_i32x4, _mm512_gf2p8mul_epi8,
    _mm512_loadu_si512, _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8, _mm512_permutex2var_epi8,
    _mm512_set_epi64, _mm512_set1_epi8, _mm512_setzero_si512, _mm512_shuffle_epi8,
    _mm512_storeu_si512, _mm512_xor_si512,
};

use zeroize::Zeroize;

/// True if this CPU can run the keystream kernel: AES-NI and VAES for the keystream,
/// AVX-512F/BW (with GFNI, which every CPU with VAES on 512-bit vectors has) for the vectors
/// and the masked tails.
fn supported() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("aes") && has!("vaes") && has!("avx512f") && has!("avx512bw") && has!("gfni")
}

/// True if this CPU can run the fused split kernel: the keystream kernel's features and
/// AVX-512 VBMI (VPERMT2B, for coefficients that start inside a keystream block).
fn split_supported() -> bool {
    supported() && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// The most coefficients R_j (K - 1) one fused split step takes: K <= 5, the thresholds one
/// pass of `Kernel::mul_sum` covers.
pub(crate) const MAX_FUSED: usize = 4;

/// The most shares (N) one fused split step writes: the kernel keeps one basis vector per bit
/// of N in registers (see the module docs), three for N <= 7. Larger N takes the unfused
/// split.
pub(crate) const MAX_FUSED_SHARES: usize = 7;

/// The 15 round keys of AES-256, wiped on drop. No `Debug`: they are the generator's key.
pub(crate) struct AesKeys {
    rk: [[u8; 16]; 15],
}

impl Drop for AesKeys {
    fn drop(&mut self) {
        self.rk.zeroize();
    }
}

impl AesKeys {
    /// The expanded key, or `None` if this CPU cannot run the fused kernel.
    pub(crate) fn new(key: &[u8; 32]) -> Option<Self> {
        if !supported() {
            return None;
        }
        // SAFETY: AES-NI (with the rest of the kernel's features) was detected just above.
        Some(Self { rk: unsafe { expand(key) } })
    }

    /// Keystream block `index`: AES-256 of the big-endian counter block (a reference for the
    /// tests).
    #[cfg(test)]
    pub(crate) fn block(&self, index: u64) -> [u8; 16] {
        assert!(supported(), "AesKeys exist only where the CPU has AES-NI");
        // SAFETY: AES-NI was detected just above.
        unsafe { encrypt_block(&self.rk, index) }
    }

    /// True if this CPU can run the fused split kernel ([`AesKeys::split`]).
    pub(crate) fn can_split(&self) -> bool {
        split_supported()
    }

    /// `dest` = the keystream from block `block0` on (the last block may be cut short).
    /// Returns `false`, having written nothing, if the CPU cannot run the kernel.
    pub(crate) fn keystream(&self, block0: u64, dest: &mut [u8]) -> bool {
        if !supported() {
            return false;
        }
        // SAFETY: the features were detected just above.
        unsafe { keystream_kernel(&self.rk, block0, dest) };
        true
    }

    /// One step of a K-of-N split with K - 1 = `at.len()` (1 to [`MAX_FUSED`]) whose
    /// coefficient R_j starts at keystream byte `at[j - 1]`: for every byte `p` and share `i`
    /// (at x = i + 1), `outs[i][p] = secret[p] ^ x * R_1[p] ^ x^2 * R_2[p] ^ ...`, where
    /// `R_j[p]` is keystream byte `at[j - 1] + p`. Returns `false`, having written nothing, if
    /// the CPU cannot run the kernel, `at` has no or more than [`MAX_FUSED`] positions, or
    /// there are more than [`MAX_FUSED_SHARES`] shares.
    ///
    /// # Panics
    /// If there are more than 255 shares, a share's length differs from the secret's, or a
    /// coefficient would run past keystream byte `u64::MAX`.
    pub(crate) fn split(&self, at: &[u64], secret: &[u8], outs: &mut [&mut [u8]]) -> bool {
        assert!(outs.len() <= 255, "split: at most 255 shares");
        assert!(outs.iter().all(|o| o.len() == secret.len()), "split: length mismatch");
        assert!(
            at.iter().all(|a| a.checked_add(secret.len() as u64 + 64).is_some()),
            "split: keystream position overflows u64"
        );
        if at.is_empty() || at.len() > MAX_FUSED || outs.len() > MAX_FUSED_SHARES {
            return false;
        }
        if !split_supported() {
            return false;
        }
        let shifted = at.iter().any(|a| a % 16 != 0);
        macro_rules! run {
            ($k1:literal, $u:literal, $nb:literal) => {{
                let at: [u64; $k1] = at.try_into().expect("checked length");
                if shifted {
                    // SAFETY: the features were detected just above; every share is as long
                    // as the secret and no keystream block index overflows (both checked
                    // above); there are fewer than 2^NB shares (the match below).
                    unsafe { split_kernel::<$k1, $u, $nb, true>(&self.rk, at, secret, outs) }
                } else {
                    // SAFETY: as above, and every coefficient starts on a block boundary.
                    unsafe { split_kernel::<$k1, $u, $nb, false>(&self.rk, at, secret, outs) }
                }
            }};
        }
        match (at.len(), outs.len() <= 3) {
            (1, true) => run!(1, 4, 2),
            (1, false) => run!(1, 4, 3),
            (2, true) => run!(2, 2, 2),
            (2, false) => run!(2, 2, 3),
            (3, true) => run!(3, 1, 2),
            (3, false) => run!(3, 1, 3),
            (_, true) => run!(4, 1, 2),
            (_, false) => run!(4, 1, 3),
        }
        true
    }
}

/// AES-256 key expansion (FIPS-197 section 5.2) with AESKEYGENASSIST, as in Intel's AES-NI
/// white paper.
///
/// # Safety
/// The CPU must support AES-NI.
#[target_feature(enable = "aes")]
unsafe fn expand(key: &[u8; 32]) -> [[u8; 16]; 15] {
    /// Each 32-bit word of `t` XORed with every word below it (`t ^ t << 32 ^ t << 64 ^
    /// t << 96`): the chaining of the words of a round key.
    #[inline]
    #[target_feature(enable = "aes")]
    fn fold(t: __m128i) -> __m128i {
        let mut t = t;
        let mut t4 = _mm_slli_si128::<4>(t);
        t = _mm_xor_si128(t, t4);
        t4 = _mm_slli_si128::<4>(t4);
        t = _mm_xor_si128(t, t4);
        t4 = _mm_slli_si128::<4>(t4);
        _mm_xor_si128(t, t4)
    }
    /// The next even round key from the previous even one and the assist word.
    #[inline]
    #[target_feature(enable = "aes")]
    fn next1(t1: __m128i, t2: __m128i) -> __m128i {
        _mm_xor_si128(fold(t1), _mm_shuffle_epi32::<0xff>(t2))
    }
    /// The next odd round key from the previous odd one and the new even one.
    #[inline]
    #[target_feature(enable = "aes")]
    fn next2(t1: __m128i, t3: __m128i) -> __m128i {
        _mm_xor_si128(fold(t3), _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(t1)))
    }
    let mut ks = [[0u8; 16]; 15];
    // SAFETY: `key` holds 32 bytes: two unaligned 16-byte loads stay inside it.
    let (mut t1, mut t3) = unsafe {
        (_mm_loadu_si128(key.as_ptr().cast()), _mm_loadu_si128(key.as_ptr().add(16).cast()))
    };
    let mut out = [t1; 15];
    out[1] = t3;
    macro_rules! rounds {
        ($rcon:literal, $i:literal) => {
            t1 = next1(t1, _mm_aeskeygenassist_si128::<$rcon>(t3));
            out[$i] = t1;
            t3 = next2(t1, t3);
            out[$i + 1] = t3;
        };
    }
    rounds!(0x01, 2);
    rounds!(0x02, 4);
    rounds!(0x04, 6);
    rounds!(0x08, 8);
    rounds!(0x10, 10);
    rounds!(0x20, 12);
    out[14] = next1(t1, _mm_aeskeygenassist_si128::<0x40>(t3));
    for (k, v) in ks.iter_mut().zip(out) {
        // SAFETY: `k` holds 16 writable bytes; the store is unaligned.
        unsafe { _mm_storeu_si128(k.as_mut_ptr().cast(), v) };
    }
    ks
}

/// One keystream block with AES-NI.
///
/// # Safety
/// The CPU must support AES-NI.
#[cfg(test)]
#[target_feature(enable = "aes")]
unsafe fn encrypt_block(rk: &[[u8; 16]; 15], index: u64) -> [u8; 16] {
    use core::arch::x86_64::{_mm_aesenc_si128, _mm_aesenclast_si128};
    let block = u128::from(index).to_be_bytes();
    let mut out = [0u8; 16];
    // SAFETY: every round key and `block` hold 16 bytes, `out` 16 writable bytes; the loads
    // and stores are unaligned.
    unsafe {
        let mut x = _mm_xor_si128(_mm_loadu_si128(block.as_ptr().cast()), load(&rk[0]));
        for k in &rk[1..14] {
            x = _mm_aesenc_si128(x, load(k));
        }
        x = _mm_aesenclast_si128(x, load(&rk[14]));
        _mm_storeu_si128(out.as_mut_ptr().cast(), x);
    }
    out
}

/// # Safety
/// None beyond SSE2 (baseline on x86_64): `k` holds 16 bytes.
#[inline]
unsafe fn load(k: &[u8; 16]) -> __m128i {
    // SAFETY: `k` holds 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(k.as_ptr().cast()) }
}

/// `K1 x U` counter vectors (4 blocks each) through AES-256, rounds interleaved so that the
/// independent chains hide the VAESENC latency.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn encrypt<const K1: usize, const U: usize>(
    c: [[__m512i; U]; K1],
    k: &[__m512i; 15],
    bswap: __m512i,
) -> [[__m512i; U]; K1] {
    let mut x = c;
    for x in &mut x {
        for v in x {
            *v = _mm512_xor_si512(_mm512_shuffle_epi8(*v, bswap), k[0]);
        }
    }
    for r in &k[1..14] {
        for x in &mut x {
            for v in x {
                *v = _mm512_aesenc_epi128(*v, *r);
            }
        }
    }
    for x in &mut x {
        for v in x {
            *v = _mm512_aesenclast_epi128(*v, k[14]);
        }
    }
    x
}

/// The round keys broadcast to every 128-bit lane, the byte swap that turns the counter
/// lanes into big-endian blocks, the first four counters and the step between them.
///
/// Counter blocks are 16-byte big-endian; positions are u64 bytes, so the high 8 bytes of
/// every block are zero and the low 8 are the block index. Each 128-bit lane holds
/// (0, index) as 64-bit lanes; the shuffle byte-swaps every 64-bit lane into big-endian.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn setup(rk: &[[u8; 16]; 15], block0: u64) -> ([__m512i; 15], __m512i, __m512i, __m512i) {
    let mut k = [_mm512_setzero_si512(); 15];
    for (k, r) in k.iter_mut().zip(rk) {
        // SAFETY: `r` holds 16 bytes.
        *k = _mm512_broadcast_i32x4(unsafe { load(r) });
    }
    let bswap = _mm512_set_epi64(
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
        0x0809_0a0b_0c0d_0e0f,
        0x0001_0203_0405_0607,
    );
    let four = _mm512_set_epi64(4, 0, 4, 0, 4, 0, 4, 0);
    (k, bswap, counters(block0), four)
}

/// The counter vector of blocks `block0` to `block0 + 3`, one per 128-bit lane, as (0, index)
/// 64-bit lanes (byte-swapped into big-endian blocks by `encrypt`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn counters(block0: u64) -> __m512i {
    let b = block0 as i64;
    _mm512_set_epi64(b + 3, 0, b + 2, 0, b + 1, 0, b, 0)
}

/// The next 16 keystream blocks (256 bytes) from the counter vector `ctr` on, as four
/// vectors; `ctr` moves past them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn next16(ctr: &mut __m512i, k: &[__m512i; 15], bswap: __m512i, four: __m512i) -> [__m512i; 4] {
    let c0 = *ctr;
    let c1 = _mm512_add_epi64(c0, four);
    let c2 = _mm512_add_epi64(c1, four);
    let c3 = _mm512_add_epi64(c2, four);
    *ctr = _mm512_add_epi64(c3, four);
    let [x] = encrypt([[c0, c1, c2, c3]], k, bswap);
    x
}

/// The next 4 keystream blocks (64 bytes) from the counter vector `ctr` on; `ctr` moves past
/// them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn next4(ctr: &mut __m512i, k: &[__m512i; 15], bswap: __m512i, four: __m512i) -> __m512i {
    let [[ks]] = encrypt([[*ctr]], k, bswap);
    *ctr = _mm512_add_epi64(*ctr, four);
    ks
}

/// The mask of the first `rem` (1 to 64) bytes of a vector.
#[inline]
fn first_bytes(rem: usize) -> __mmask64 {
    if rem == 64 { u64::MAX } else { (1u64 << rem) - 1 }
}

/// The kernel behind [`AesKeys::keystream`].
///
/// # Safety
/// The CPU must support AVX-512F/BW, GFNI, VAES and AES-NI.
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
unsafe fn keystream_kernel(rk: &[[u8; 16]; 15], block0: u64, dest: &mut [u8]) {
    let (k, bswap, mut ctr, four) = setup(rk, block0);
    let len = dest.len();
    let dp = dest.as_mut_ptr();
    let mut off = 0;
    while off + 256 <= len {
        let ks = next16(&mut ctr, &k, bswap, four);
        for (j, ks) in ks.iter().enumerate() {
            // SAFETY: `off + 256 <= len`: each 64-byte store at `off + 64 * j` (j < 4) stays
            // inside `dest`; the store is unaligned.
            unsafe { _mm512_storeu_si512(dp.add(off + 64 * j).cast(), *ks) };
        }
        off += 256;
    }
    while off < len {
        let rem = (len - off).min(64);
        let m = first_bytes(rem);
        let ks = next4(&mut ctr, &k, bswap, four);
        // SAFETY: the mask selects the first `rem` bytes at `off`, inside `dest`; masked-off
        // bytes are not written.
        unsafe { _mm512_mask_storeu_epi8(dp.add(off).cast(), m, ks) };
        off += rem;
    }
}

/// True if exponent `j + 1` of coefficient R_{j+1} is a power of two, so that
/// `x -> x^(j+1) * R` is additive in `x` (a power of the Frobenius map `a -> a^2`).
const fn additive(j: usize) -> bool {
    (j + 1).is_power_of_two()
}

/// The public constants of a split step: `basis[b][j] = (2^b)^(j+1)` broadcast, for the
/// additive exponents (the basis vector at `x = 2^b` is `sum_j basis[b][j] * R_j`, at `x = 1`
/// the plain sum), and `cube[i] = x^3` broadcast for share `i` (at x = i + 1), the weight of
/// R_3 when K >= 4.
struct Consts<const K1: usize, const NB: usize> {
    basis: [[__m512i; K1]; NB],
    cube: Vec<__m512i>,
}

impl<const K1: usize, const NB: usize> Consts<K1, NB> {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
    fn new(n: usize) -> Self {
        let mut basis = [[_mm512_setzero_si512(); K1]; NB];
        for (b, row) in basis.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                *c = _mm512_set1_epi8(super::pow(1 << b, j as u32 + 1) as i8);
            }
        }
        let cube = if K1 >= 3 {
            (1..=n).map(|x| _mm512_set1_epi8(super::pow(x as u8, 3) as i8)).collect()
        } else {
            Vec::new()
        };
        Self { basis, cube }
    }
}

/// The `NB` basis vectors of one 64-byte column from its coefficient vectors `r` (see the
/// module docs): `basis[b] = sum_j (2^b)^(j+1) * R_{j+1}` over the additive exponents.
///
/// With R_1 and R_2 the only additive coefficients (K - 1 = 2 or 3; R_3 is not additive and
/// `write_shares` adds x^3 R_3 per share), `4 * R_2` is shared: `basis[1] = 2 R_1 + 4 R_2`
/// and `basis[2] = 4 (R_1 + 4 R_2)`, three VGF2P8MULB where the sum takes four. Every
/// VGF2P8MULB waits for the port the AES rounds keep busy, so 3-of-5 went from 32 to 31
/// port-0 instructions per 64 bytes (measured in docs/PERFORMANCE.md). Other thresholds take
/// the sum.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn basis_of<const K1: usize, const NB: usize>(
    r: &[__m512i; K1],
    consts: &Consts<K1, NB>,
) -> [__m512i; NB] {
    let mut basis = [_mm512_setzero_si512(); NB];
    if let ([r1, r2] | [r1, r2, _], [b0, b1, b2]) = (r.as_slice(), basis.as_mut_slice()) {
        // consts.basis[1] = (2, 4, ..), consts.basis[2] = (4, 16, ..).
        let (two, four) = (consts.basis[1][0], consts.basis[2][0]);
        let q = _mm512_gf2p8mul_epi8(*r2, four);
        *b0 = _mm512_xor_si512(*r1, *r2);
        *b1 = _mm512_xor_si512(_mm512_gf2p8mul_epi8(*r1, two), q);
        *b2 = _mm512_gf2p8mul_epi8(_mm512_xor_si512(*r1, q), four);
        return basis;
    }
    for (b, (v, c)) in basis.iter_mut().zip(&consts.basis).enumerate() {
        for j in 0..K1 {
            if additive(j) {
                let t = if b == 0 { r[j] } else { _mm512_gf2p8mul_epi8(r[j], c[j]) };
                *v = _mm512_xor_si512(*v, t);
            }
        }
    }
    basis
}

/// Writes every share's 64 bytes at `$off` from the secret's vector `$s` and the
/// coefficients' vectors `$r` (`[__m512i; K1]`): `secret ^ sum_j x^(j+1) * R_{j+1}`, with
/// `$store(pointer, vector)`. Needs an `unsafe` block: `$store` writes 64 bytes (or a masked
/// part of them) at `$off` of every share.
///
/// The additive part is built from the `NB` basis vectors (see the module docs) in the order
/// of the binary reflected Gray code of 1..2^NB: consecutive codes differ in one bit, so each
/// share's additive part is the previous one's XOR one basis vector. `NB` is a constant, so
/// the loops unroll and the basis stays in registers; codes above N are computed and not
/// stored. A macro rather than a function so that it is always inlined into the kernel's
/// loops (as a function, LLVM called it out of line and passed the vectors on the stack).
macro_rules! write_shares {
    ($K1:ident, $NB:ident, $U:expr, $r:expr, $s:expr, $consts:expr, $outs:expr, $off:expr, $store:expr) => {{
        let r: [[__m512i; $K1]; $U] = $r;
        let consts: &Consts<$K1, $NB> = $consts;
        let mut basis = [[_mm512_setzero_si512(); $U]; $NB];
        for (u, r) in r.iter().enumerate() {
            for (b, v) in basis_of(r, consts).into_iter().enumerate() {
                basis[b][u] = v;
            }
        }
        let n = $outs.len();
        let mut acc: [__m512i; $U] = $s;
        for g in 1..1usize << $NB {
            let (code, before) = (g ^ g >> 1, (g - 1) ^ (g - 1) >> 1);
            let flip = &basis[(code ^ before).trailing_zeros() as usize];
            for (a, f) in acc.iter_mut().zip(flip) {
                *a = _mm512_xor_si512(*a, *f);
            }
            let i = code - 1;
            if i < n {
                // One share's `U` vectors one after the other: whole cache lines in order.
                let op = $outs[i].as_mut_ptr().add($off);
                // The same lines 1 KiB further on prefetched (`_MM_HINT_ET0`, which compiles to
                // PREFETCHT0 here: PREFETCHW needs the PRFCHW feature, not enabled), so that
                // the lines are in the cache before the stores reach them instead of each
                // store missing. 2-of-3 went from about 1.5x to 0.9-1.06x its floor with it.
                // A prefetch never faults; past the end of a share it is wasted, and
                // `wrapping_add` keeps the address computation defined.
                for u in 0..$U {
                    core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(
                        op.wrapping_add(1024 + 64 * u).cast_const().cast(),
                    );
                }
                for (u, (&a, r)) in acc.iter().zip(&r).enumerate() {
                    let v = if $K1 >= 3 {
                        let t =
                            if i == 0 { r[2] } else { _mm512_gf2p8mul_epi8(r[2], consts.cube[i]) };
                        _mm512_xor_si512(a, t)
                    } else {
                        a
                    };
                    $store(op.add(64 * u), v);
                }
            }
        }
    }};
}

/// The kernel behind [`AesKeys::split`], for `K1` coefficients, `U` vectors of each per
/// iteration and, if `SHIFT`, coefficients that may start inside a keystream block.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VBMI, GFNI, VAES and AES-NI; every share is as long as
/// `secret`; `at[j] + secret.len() + 64` does not overflow; if not `SHIFT`, every `at[j]` is a
/// multiple of 16. (There must also be fewer than `2^NB` shares, or the last ones are not
/// written: a matter of correctness, not of memory safety.)
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni,vaes,aes")]
unsafe fn split_kernel<const K1: usize, const U: usize, const NB: usize, const SHIFT: bool>(
    rk: &[[u8; 16]; 15],
    at: [u64; K1],
    secret: &[u8],
    outs: &mut [&mut [u8]],
) {
    let len = secret.len();
    let (k, bswap, _, four) = setup(rk, 0);
    debug_assert!(outs.len() < 1 << NB);
    let consts = Consts::<K1, NB>::new(outs.len());
    let mut ctr = at.map(|a| counters(a / 16));
    // Byte `i` of a coefficient's vector is byte `skip + i` of the two keystream vectors
    // from its block on: VPERMT2B indices `skip..skip + 64` (below 128).
    let iota = _mm512_set_epi64(
        0x3f3e_3d3c_3b3a_3938,
        0x3736_3534_3332_3130,
        0x2f2e_2d2c_2b2a_2928,
        0x2726_2524_2322_2120,
        0x1f1e_1d1c_1b1a_1918,
        0x1716_1514_1312_1110,
        0x0f0e_0d0c_0b0a_0908,
        0x0706_0504_0302_0100,
    );
    let idx = at.map(|a| _mm512_add_epi8(iota, _mm512_set1_epi8((a % 16) as i8)));
    // With `SHIFT`, the keystream vector the next coefficient vector starts in.
    let mut prev = [_mm512_setzero_si512(); K1];
    if SHIFT {
        for (p, c) in prev.iter_mut().zip(&mut ctr) {
            *p = next4(c, &k, bswap, four);
        }
    }
    let sp = secret.as_ptr();
    let mut off = 0;
    while off + 64 * U <= len {
        let mut c = [[_mm512_setzero_si512(); U]; K1];
        for (c, ctr) in c.iter_mut().zip(&mut ctr) {
            for c in c.iter_mut() {
                *c = *ctr;
                *ctr = _mm512_add_epi64(*ctr, four);
            }
        }
        // The secret's vectors are loaded before any share of this iteration is stored:
        // a load issued after a store to an address equal modulo 4096 waits for it (4K
        // aliasing), and the secret and the shares are usually such neighbours.
        let mut sv = [_mm512_setzero_si512(); U];
        for (u, v) in sv.iter_mut().enumerate() {
            // SAFETY: `off + 64 * (u + 1) <= len`: the 64-byte load stays inside the secret;
            // unaligned form.
            *v = unsafe { _mm512_loadu_si512(sp.add(off + 64 * u).cast()) };
        }
        let ks = encrypt(c, &k, bswap);
        let r: [[__m512i; K1]; U] = core::array::from_fn(|u| {
            core::array::from_fn(|j| {
                if SHIFT {
                    let before = if u == 0 { prev[j] } else { ks[j][u - 1] };
                    _mm512_permutex2var_epi8(before, idx[j], ks[j][u])
                } else {
                    ks[j][u]
                }
            })
        });
        // SAFETY: `off + 64 * U <= len`: the stores stay inside every share (each `len` bytes
        // long); unaligned form.
        unsafe {
            let store = |p: *mut u8, v| _mm512_storeu_si512(p.cast(), v);
            write_shares!(K1, NB, U, r, sv, &consts, outs, off, store);
        }
        if SHIFT {
            prev = ks.map(|v| v[U - 1]);
        }
        off += 64 * U;
    }
    // The rest, one vector of each coefficient at a time, the last one masked.
    while off < len {
        let rem = (len - off).min(64);
        let mut r = [_mm512_setzero_si512(); K1];
        for (j, (r, ctr)) in r.iter_mut().zip(&mut ctr).enumerate() {
            let ks = next4(ctr, &k, bswap, four);
            *r = if SHIFT {
                let v = _mm512_permutex2var_epi8(prev[j], idx[j], ks);
                prev[j] = ks;
                v
            } else {
                ks
            };
        }
        // SAFETY: the mask selects the first `rem` bytes at `off`, which the secret and every
        // share hold (`off + rem <= len`); masked-off bytes are not accessed.
        unsafe {
            let m = first_bytes(rem);
            let s = _mm512_maskz_loadu_epi8(m, sp.add(off).cast());
            let store = |p: *mut u8, v| _mm512_mask_storeu_epi8(p.cast(), m, v);
            write_shares!(K1, NB, 1, [r], [s], &consts, outs, off, store);
        }
        off += rem;
    }
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockCipherEncrypt, KeyInit};

    use super::*;

    /// The expanded key and the fused kernel agree with the `aes` crate, for every length
    /// around the vector and loop widths, every first block and several share counts.
    #[test]
    fn fused_split_matches_aes_and_field_ops() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let Some(keys) = AesKeys::new(&key) else {
            return; // The CPU lacks the features: nothing here can run (detection is tested in gf256).
        };
        let aes = aes::Aes256::new(&key.into());
        for index in [0u64, 1, 5, 0x0123_4567_89ab_cdef] {
            let mut want = aes::Block::from(u128::from(index).to_be_bytes());
            aes.encrypt_block(&mut want);
            assert_eq!(keys.block(index)[..], want[..], "block {index}");
        }
        for len in [0usize, 1, 16, 63, 64, 65, 256, 300, 1000] {
            let mut ks = vec![0x5au8; len];
            assert!(keys.keystream(7, &mut ks));
            for (p, &b) in ks.iter().enumerate() {
                assert_eq!(b, keys.block(7 + (p / 16) as u64)[p % 16], "keystream len={len} p={p}");
            }
        }
    }

    /// The keystream byte at position `q`, from single blocks.
    fn ks_byte(keys: &AesKeys, q: u64) -> u8 {
        keys.block(q / 16)[(q % 16) as usize]
    }

    /// The fused split step equals the split's formula over the keystream, byte by byte, for
    /// K - 1 = 1 to 4 coefficients, share counts around the powers of two (the basis; more
    /// than [`MAX_FUSED_SHARES`] are refused), lengths
    /// around the vector and loop widths, and coefficient positions on and off block
    /// boundaries (each coefficient with its own offset).
    #[test]
    fn fused_split_matches_the_formula() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 11 + 3) as u8);
        let Some(keys) = AesKeys::new(&key) else {
            return; // The CPU lacks the features: nothing here can run (detection is tested in gf256).
        };
        let fused = split_supported();
        let secret: Vec<u8> = (0..1100u32).map(|i| (i * 31 + 7) as u8).collect();
        let lens = [0usize, 1, 15, 63, 64, 65, 127, 128, 129, 255, 256, 257, 320, 511, 1037];
        let starts: [&[u64]; 6] = [
            &[0, 1 << 40, 4096, 32],
            &[3, 19, 1 << 33, 77],
            &[16, 5, 48, 15],
            &[1, 2, 3, 4],
            &[(1 << 50) + 9, 160, 8, 31],
            &[0, 1037, 2074, 3111],
        ];
        let mut runs = 0;
        for k1 in 1..=MAX_FUSED {
            for at in starts {
                let at = &at[..k1];
                for len in lens {
                    // R_j, byte by byte from single blocks.
                    let r: Vec<Vec<u8>> = at
                        .iter()
                        .map(|&a| (0..len as u64).map(|p| ks_byte(&keys, a + p)).collect())
                        .collect();
                    for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 17] {
                        let mut shares = vec![vec![0xa5u8; len]; n];
                        let mut outs: Vec<&mut [u8]> =
                            shares.iter_mut().map(Vec::as_mut_slice).collect();
                        let ran = keys.split(at, &secret[..len], &mut outs);
                        assert_eq!(ran, fused && n <= MAX_FUSED_SHARES, "k1={k1} n={n}");
                        if !ran {
                            continue;
                        }
                        runs += 1;
                        for (i, share) in shares.iter().enumerate() {
                            let x = i as u8 + 1;
                            for (p, &got) in share.iter().enumerate() {
                                let mut want = secret[p];
                                for (j, r) in r.iter().enumerate() {
                                    let c = crate::gf256::pow(x, j as u32 + 1);
                                    want ^= crate::gf256::mul(c, r[p]);
                                }
                                let case = format!("k1={k1} n={n} len={len} at={at:?} x={x} p={p}");
                                assert_eq!(got, want, "{case}");
                            }
                        }
                    }
                }
            }
        }
        println!("fused split kernel: {runs} cases checked (fused kernel available: {fused})");
        // More coefficients than the kernel takes: refused, nothing written.
        let mut share = [7u8; 3];
        assert!(!keys.split(&[0; MAX_FUSED + 1], &secret[..3], &mut [&mut share[..]]));
        assert!(!keys.split(&[], &secret[..3], &mut [&mut share[..]]));
        assert_eq!(share, [7; 3]);
    }
}
