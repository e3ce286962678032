//! The fused split kernel (x86_64, AVX-512 with VAES and GFNI): a 2-of-N split step that
//! generates its random bytes, AES-256-CTR, in registers and writes the N shares from them
//! in the same loop, so that the AES rounds of one 256-byte block and the share stores of
//! the previous one overlap in the out-of-order core instead of running as two passes.
//!
//! The keystream is the generator's (`rng::CsRng`, docs/FORMAT.md section 3): AES-256 of the
//! 128-bit big-endian counter block `index` under the seed, so the shares are exactly those of
//! the unfused split (checked by `tests/kat.rs` on every kernel and by the tests below).
//!
//! [`AesKeys`] holds the expanded key (AES-NI key expansion) and exists only on CPUs that can
//! run this module; every entry point re-checks the CPU anyway and reports `false` so that the
//! caller falls back to the unfused split.

use core::arch::x86_64::{
    __m128i, __m512i, __mmask64, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128,
    _mm_loadu_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128, _mm_xor_si128,
    _mm512_add_epi64, _mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_broadcast_i32x4,
    _mm512_gf2p8mul_epi8, _mm512_loadu_si512, _mm512_mask_storeu_epi8, _mm512_maskz_loadu_epi8,
    _mm512_set_epi64, _mm512_set1_epi8, _mm512_setzero_si512, _mm512_shuffle_epi8,
    _mm512_storeu_si512, _mm512_xor_si512,
};

use zeroize::Zeroize;

/// True if this CPU can run the fused kernel: AES-NI and VAES for the keystream, AVX-512F/BW
/// and GFNI for the field arithmetic and masked tails.
fn supported() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("aes") && has!("vaes") && has!("avx512f") && has!("avx512bw") && has!("gfni")
}

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

    /// Keystream block `index`: AES-256 of the big-endian counter block.
    pub(crate) fn block(&self, index: u64) -> [u8; 16] {
        assert!(supported(), "AesKeys exist only where the CPU has AES-NI");
        // SAFETY: AES-NI was detected just above.
        unsafe { encrypt_block(&self.rk, index) }
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

    /// For every byte `p`: `outs[i][p] = secret[p] ^ xs[i] * KS[16 * block0 + p]`, where KS is
    /// the keystream: one step of a 2-of-N split whose coefficient R_1 starts at keystream block
    /// `block0`. Returns `false`, having written nothing, if the CPU cannot run the kernel.
    ///
    /// # Panics
    /// If `xs` and `outs` differ in length or a share's length differs from the secret's.
    pub(crate) fn split2(
        &self,
        block0: u64,
        xs: &[u8],
        secret: &[u8],
        outs: &mut [&mut [u8]],
    ) -> bool {
        assert_eq!(xs.len(), outs.len(), "split2: one x per share");
        assert!(outs.iter().all(|o| o.len() == secret.len()), "split2: length mismatch");
        if !supported() {
            return false;
        }
        // SAFETY: the features were detected just above; the lengths were checked.
        unsafe { split2_kernel(&self.rk, block0, xs, secret, outs) };
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
#[target_feature(enable = "aes")]
unsafe fn encrypt_block(rk: &[[u8; 16]; 15], index: u64) -> [u8; 16] {
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

/// Four counter vectors (16 blocks) through AES-256, rounds interleaved so that the four
/// independent chains hide the VAESENC latency.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn encrypt16(c: [__m512i; 4], k: &[__m512i; 15], bswap: __m512i) -> [__m512i; 4] {
    let mut x = c;
    for v in &mut x {
        *v = _mm512_xor_si512(_mm512_shuffle_epi8(*v, bswap), k[0]);
    }
    for r in &k[1..14] {
        for v in &mut x {
            *v = _mm512_aesenc_epi128(*v, *r);
        }
    }
    for v in &mut x {
        *v = _mm512_aesenclast_epi128(*v, k[14]);
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
    let b = block0 as i64;
    let ctr = _mm512_set_epi64(b + 3, 0, b + 2, 0, b + 1, 0, b, 0);
    let four = _mm512_set_epi64(4, 0, 4, 0, 4, 0, 4, 0);
    (k, bswap, ctr, four)
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
    encrypt16([c0, c1, c2, c3], k, bswap)
}

/// The next 4 keystream blocks (64 bytes) from the counter vector `ctr` on; `ctr` moves past
/// them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
fn next4(ctr: &mut __m512i, k: &[__m512i; 15], bswap: __m512i, four: __m512i) -> __m512i {
    let [ks, _, _, _] = encrypt16([*ctr; 4], k, bswap);
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

/// The kernel behind [`AesKeys::split2`].
///
/// # Safety
/// The CPU must support AVX-512F/BW, GFNI, VAES and AES-NI; every share is as long as
/// `secret` and `xs.len() == outs.len()`.
#[target_feature(enable = "avx512f,avx512bw,gfni,vaes,aes")]
unsafe fn split2_kernel(
    rk: &[[u8; 16]; 15],
    block0: u64,
    xs: &[u8],
    secret: &[u8],
    outs: &mut [&mut [u8]],
) {
    let len = secret.len();
    let (k, bswap, mut ctr, four) = setup(rk, block0);
    let sp = secret.as_ptr();
    let mut off = 0;
    // 256 bytes (16 blocks) per iteration.
    while off + 256 <= len {
        let ks = next16(&mut ctr, &k, bswap, four);
        // SAFETY: `off + 256 <= len` and the secret and every share are `len` bytes long, so
        // each 64-byte access at `off + 64 * j` (j < 4) stays inside them; the forms are
        // unaligned. The features are enabled here and guaranteed by the caller.
        unsafe {
            let mut s = [_mm512_setzero_si512(); 4];
            for (j, s) in s.iter_mut().enumerate() {
                *s = _mm512_loadu_si512(sp.add(off + 64 * j).cast());
            }
            for (o, &x) in outs.iter_mut().zip(xs) {
                let xv = _mm512_set1_epi8(x as i8);
                let op = o.as_mut_ptr().add(off);
                for (j, (s, ks)) in s.iter().zip(&ks).enumerate() {
                    let v = _mm512_xor_si512(*s, _mm512_gf2p8mul_epi8(*ks, xv));
                    _mm512_storeu_si512(op.add(64 * j).cast(), v);
                }
            }
        }
        off += 256;
    }
    // The rest, one counter vector (64 bytes) at a time, the last one masked.
    while off < len {
        let rem = (len - off).min(64);
        let m = first_bytes(rem);
        let ks = next4(&mut ctr, &k, bswap, four);
        // SAFETY: the mask selects the first `rem` bytes at `off`, which the secret and every
        // share hold (`off + rem <= len`); masked-off bytes are not accessed.
        unsafe {
            let s = _mm512_maskz_loadu_epi8(m, sp.add(off).cast());
            for (o, &x) in outs.iter_mut().zip(xs) {
                let v = _mm512_xor_si512(s, _mm512_gf2p8mul_epi8(ks, _mm512_set1_epi8(x as i8)));
                _mm512_mask_storeu_epi8(o.as_mut_ptr().add(off).cast(), m, v);
            }
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
        let secret: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
        for n in [1usize, 2, 3, 5] {
            let xs: Vec<u8> = (1..=n as u8).collect();
            for len in [0usize, 1, 63, 64, 65, 255, 256, 257, 511, 640, 1000] {
                for block0 in [0u64, 3, 1 << 40] {
                    let mut shares = vec![vec![0xa5u8; len]; n];
                    let mut outs: Vec<&mut [u8]> =
                        shares.iter_mut().map(Vec::as_mut_slice).collect();
                    assert!(keys.split2(block0, &xs, &secret[..len], &mut outs));
                    for (i, share) in shares.iter().enumerate() {
                        for (p, &got) in share.iter().enumerate() {
                            let ks = keys.block(block0 + (p / 16) as u64)[p % 16];
                            let want = secret[p] ^ crate::gf256::mul(xs[i], ks);
                            assert_eq!(got, want, "n={n} len={len} block0={block0} i={i} p={p}");
                        }
                    }
                }
            }
        }
    }
}
