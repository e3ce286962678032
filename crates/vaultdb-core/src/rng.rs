//! Randomness for sharing: a fast CSPRNG seeded from the operating system.
//!
//! Splitting a secret of `L` bytes with threshold K needs `(K-1)*L` uniformly random bytes.
//! The OS generator (`getrandom`) runs at only about 0.3 GB/s here, so VaultDB expands a
//! 256-bit OS seed with AES-256 in counter mode ([`CsRng`]), reseeding from the OS every
//! [`RESEED_BYTES`] bytes. "Information-theoretic" secrecy holds for a perfect random source;
//! in practice it rests on this CSPRNG, as everything that uses the OS generator does.
//!
//! The source is injectable ([`RandomSource`]) so that tests and known-answer vectors are
//! deterministic: [`CsRng::from_seed`] gives a fixed stream, specified in docs/FORMAT.md.

use std::cell::RefCell;

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

/// Where one step of a fused split ([`RandomSource::split_step_at`]) reads its K - 1
/// coefficients: R_j lies `offset + (j - 1) * stride` bytes ahead of the generator's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitStep {
    /// The threshold K (at least 2).
    pub k: usize,
    /// Where R_1 starts, in bytes ahead of the position.
    pub offset: u64,
    /// The distance between R_j and R_{j+1}, in bytes.
    pub stride: u64,
}

/// A source of uniformly random bytes: a stream, read in order by [`fill_bytes`], and
/// optionally readable ahead of its position ([`fill_bytes_at`], then [`advance`]).
///
/// [`fill_bytes`]: RandomSource::fill_bytes
/// [`fill_bytes_at`]: RandomSource::fill_bytes_at
/// [`advance`]: RandomSource::advance
pub trait RandomSource: Send {
    /// Fills `dest` with the next random bytes of the stream.
    fn fill_bytes(&mut self, dest: &mut [u8]);

    /// Fills `dest` with the bytes that lie `offset..offset + dest.len()` bytes ahead of the
    /// stream's position, the same bytes that reading on with [`RandomSource::fill_bytes`]
    /// would give there, without moving the position; returns `true`.
    ///
    /// A split that is not fused ([`RandomSource::split_step_at`]) uses this to draw R_1, ...,
    /// R_{K-1} (which follow each other in the stream, docs/FORMAT.md section 2) side by side,
    /// in one pass over the shares, and then calls [`RandomSource::advance`] past all of them.
    /// A source that can only be read in order returns `false` and leaves `dest` as it is (the
    /// default); the split then reads the stream in order, in one pass per coefficient. Either
    /// way the shares are the same.
    fn fill_bytes_at(&mut self, offset: u64, dest: &mut [u8]) -> bool {
        let _ = (offset, dest);
        false
    }

    /// One step of a K-of-N split straight from the stream, without storing the random bytes
    /// and without moving the position: with `step` = `SplitStep { k, offset, stride }` and
    /// R_j the `secret.len()` bytes that lie
    /// `offset + (j - 1) * stride` bytes ahead of the position (j = 1..K; the bytes
    /// [`RandomSource::fill_bytes_at`] gives there), writes for every byte `p` and share `i`
    /// (at x = i + 1) `outs[i][p] = secret[p] ^ x * R_1[p] ^ x^2 * R_2[p] ^ ...` (GF(2^8)), so
    /// that generating and writing the shares run in one loop. The split calls it once per
    /// step and [`RandomSource::advance`] past all K - 1 coefficients at the end.
    ///
    /// Returns `false`, writing nothing, if this source cannot (the default; [`CsRng`] can
    /// for K <= 5 and N <= 7 on CPUs with VAES, AVX-512 and GFNI); the split then draws the
    /// coefficients with `fill_bytes_at` and combines them itself. Either way the shares are
    /// the same. A source that returns `true` must also support `fill_bytes_at`.
    ///
    /// # Panics
    /// May panic if `k < 2`, a share's length differs from the secret's, or there are more
    /// than 255 shares.
    fn split_step_at(&mut self, step: SplitStep, secret: &[u8], outs: &mut [&mut [u8]]) -> bool {
        let _ = (step, secret, outs);
        false
    }

    /// Moves the stream's position `n` bytes forward, as if `n` bytes had been read. The
    /// default reads them and throws them away.
    fn advance(&mut self, n: u64) {
        let mut scratch = [0u8; 256];
        let mut left = n;
        while left > 0 {
            let take = left.min(scratch.len() as u64) as usize;
            self.fill_bytes(&mut scratch[..take]);
            left -= take as u64;
        }
        scratch.zeroize();
    }
}

/// After this many output bytes an OS-seeded [`CsRng`] takes a fresh seed from the OS.
pub const RESEED_BYTES: u64 = 1 << 30;

/// Blocks per call of the block cipher: 1024 blocks (16 KiB) are written as counters and
/// encrypted in place while they are in the L1 cache, in one call of the `aes` crate (which
/// broadcasts the round keys and picks its backend once per call; with 1 KiB batches that
/// cost about a quarter of the throughput, docs/PERFORMANCE.md).
const BATCH_BLOCKS: usize = 1024;

/// AES-256-CTR keystream generator.
///
/// The stream for a seed `s` is AES-256-CTR with key `s`, a 128-bit big-endian counter
/// starting at zero, encrypting zero bytes (docs/FORMAT.md, "Randomness"). The counter mode
/// is done here, on the `aes` crate's block cipher, which picks its backend at run time:
/// VAES on 512-bit vectors (AVX-512F and VAES), VAES on 256-bit vectors, AES-NI, or a
/// constant-time software implementation. The counter blocks are written straight into the
/// caller's buffer, 16 KiB at a time, and encrypted there in place: no zero fill and no XOR,
/// and none of the `ctr` crate's per-block work (which ran about 35% below the block
/// cipher's own rate with VAES-512; docs/PERFORMANCE.md). Counter mode can be read at any offset, so the generator supports
/// [`RandomSource::fill_bytes_at`].
pub struct CsRng {
    aes: Aes256,
    /// The same key expanded for the fused split kernel, where the CPU can run it (x86_64
    /// with AVX-512, VAES and GFNI): [`RandomSource::split_step_at`].
    #[cfg(target_arch = "x86_64")]
    fused: Option<crate::gf256::AesKeys>,
    /// The keystream position in bytes.
    pos: u64,
    produced: u64,
    reseed: bool,
}

impl std::fmt::Debug for CsRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsRng").field("reseeding", &self.reseed).finish_non_exhaustive()
    }
}

impl CsRng {
    /// A generator with a fixed seed that never reseeds: for tests and known-answer
    /// vectors, and as a keystream under a key used once (compact mode encrypts each secret
    /// under a fresh random key, docs/FORMAT.md section 16). Never use a seed twice, or one
    /// that is not secret and random, to protect real data.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut seed = seed;
        let aes = Aes256::new(&seed.into());
        #[cfg(target_arch = "x86_64")]
        let fused = crate::gf256::AesKeys::new(&seed);
        seed.zeroize();
        Self {
            aes,
            #[cfg(target_arch = "x86_64")]
            fused,
            pos: 0,
            produced: 0,
            reseed: false,
        }
    }

    /// A generator seeded from the operating system, reseeded every [`RESEED_BYTES`].
    ///
    /// # Errors
    /// If the OS generator fails.
    pub fn from_os() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)?;
        let mut rng = Self::from_seed(seed);
        seed.zeroize();
        rng.reseed = true;
        Ok(rng)
    }

    /// True if this generator computes split steps itself, in the fused kernel
    /// ([`RandomSource::split_step_at`] for K <= 5 and N <= 7): on x86_64 CPUs with VAES, AVX-512
    /// (F, BW, VBMI) and GFNI. Tests use it to report which path they checked.
    pub fn has_fused_split(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Some(keys) = &self.fused {
            return keys.can_split();
        }
        false
    }

    /// Takes a fresh OS seed if this generator reseeds and has produced [`RESEED_BYTES`].
    ///
    /// # Panics
    /// If the OS generator fails, which `getrandom` documents as not happening on supported
    /// platforms once it has succeeded.
    fn reseed_if_due(&mut self) {
        if self.reseed && self.produced >= RESEED_BYTES {
            *self = Self::from_os().expect("OS random generator failed while reseeding");
        }
    }

    /// Writes the keystream bytes at positions `pos..pos + dest.len()` into `dest`.
    fn keystream_at(&self, pos: u64, dest: &mut [u8]) {
        let end = pos.checked_add(dest.len() as u64).expect("keystream position overflows u64");
        // A partial first block.
        let skip = (pos % 16) as usize;
        let head = if skip == 0 { 0 } else { (16 - skip).min(dest.len()) };
        let (first, rest) = dest.split_at_mut(head);
        if head > 0 {
            self.partial_block(pos / 16, skip, first);
        }
        // The rest from a block boundary on: with the VAES kernel where the CPU has it
        // (counters and rounds in registers); else whole blocks in batches, counters written
        // in place and then encrypted in place, and a partial last block.
        #[cfg(target_arch = "x86_64")]
        if let Some(keys) = &self.fused
            && keys.keystream(pos.div_ceil(16), rest)
        {
            return;
        }
        let (blocks, last) = aes::Block::slice_as_chunks_mut(rest);
        let mut index = pos.div_ceil(16);
        for batch in blocks.chunks_mut(BATCH_BLOCKS) {
            for block in batch.iter_mut() {
                block.copy_from_slice(&u128::from(index).to_be_bytes());
                index += 1;
            }
            self.aes.encrypt_blocks(batch);
        }
        if !last.is_empty() {
            debug_assert_eq!(index, end / 16);
            self.partial_block(index, 0, last);
        }
    }

    /// `dest` (at most 16 - `skip` bytes) = bytes `skip..` of keystream block `index`.
    fn partial_block(&self, index: u64, skip: usize, dest: &mut [u8]) {
        let mut block = counter_block(index);
        self.aes.encrypt_block(&mut block);
        dest.copy_from_slice(&block[skip..skip + dest.len()]);
        block.zeroize();
    }
}

/// Counter block `index`: the 128-bit big-endian counter (docs/FORMAT.md section 3). Positions
/// are `u64` bytes, so the counter never wraps.
fn counter_block(index: u64) -> aes::Block {
    u128::from(index).to_be_bytes().into()
}

impl RandomSource for CsRng {
    /// # Panics
    /// If reseeding from the OS fails (see [`CsRng::from_os`]).
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.reseed_if_due();
        self.keystream_at(self.pos, dest);
        self.pos += dest.len() as u64;
        self.produced = self.produced.saturating_add(dest.len() as u64);
    }

    /// A reseed that is due happens before the first read of a window (the position, and so
    /// the need, does not change until [`RandomSource::advance`]), so one window is always
    /// read under one key.
    fn fill_bytes_at(&mut self, offset: u64, dest: &mut [u8]) -> bool {
        self.reseed_if_due();
        let at = self.pos.checked_add(offset).expect("keystream position overflows u64");
        self.keystream_at(at, dest);
        true
    }

    fn advance(&mut self, n: u64) {
        self.pos = self.pos.checked_add(n).expect("keystream position overflows u64");
        self.produced = self.produced.saturating_add(n);
    }

    /// The fused kernel (`gf256::AesKeys::split`), for K <= 5 and N <= 7; a reseed that is due happens
    /// first, as in [`RandomSource::fill_bytes_at`].
    #[cfg(target_arch = "x86_64")]
    fn split_step_at(&mut self, step: SplitStep, secret: &[u8], outs: &mut [&mut [u8]]) -> bool {
        let SplitStep { k, offset, stride } = step;
        assert!(k >= 2, "split_step_at: K must be at least 2");
        if k - 1 > crate::gf256::MAX_FUSED {
            return false;
        }
        self.reseed_if_due();
        let Some(keys) = &self.fused else {
            return false;
        };
        let mut at = [0u64; crate::gf256::MAX_FUSED];
        for (j, a) in at.iter_mut().enumerate().take(k - 1) {
            *a = (j as u64)
                .checked_mul(stride)
                .and_then(|d| d.checked_add(offset))
                .and_then(|d| d.checked_add(self.pos))
                .expect("keystream position overflows u64");
        }
        keys.split(&at[..k - 1], secret, outs)
    }
}

/// The default source: a per-thread OS-seeded [`CsRng`]. Cheap to make; holds no state.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRng;

thread_local! {
    static THREAD_RNG: RefCell<Option<CsRng>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's generator, seeding it from the OS on first use.
///
/// # Panics
/// If the OS random generator fails on first use in this thread.
fn with_thread_rng<T>(f: impl FnOnce(&mut CsRng) -> T) -> T {
    THREAD_RNG.with(|cell| {
        let mut slot = cell.borrow_mut();
        f(slot.get_or_insert_with(|| CsRng::from_os().expect("OS random generator unavailable")))
    })
}

impl RandomSource for ThreadRng {
    /// # Panics
    /// If the OS random generator fails on first use in this thread.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        with_thread_rng(|rng| rng.fill_bytes(dest));
    }

    fn fill_bytes_at(&mut self, offset: u64, dest: &mut [u8]) -> bool {
        with_thread_rng(|rng| rng.fill_bytes_at(offset, dest))
    }

    fn split_step_at(&mut self, step: SplitStep, secret: &[u8], outs: &mut [&mut [u8]]) -> bool {
        with_thread_rng(|rng| rng.split_step_at(step, secret, outs))
    }

    fn advance(&mut self, n: u64) {
        THREAD_RNG.with(|cell| {
            if let Some(rng) = cell.borrow_mut().as_mut() {
                rng.advance(n);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_stream_is_aes256_ctr_of_zeros() {
        // FIPS-197 Appendix C.3: AES-256 with key 00 01 .. 1f encrypts 00 11 22 .. ff to
        // 8e a2 b7 ca 51 67 45 bf ea fc 49 90 4b 49 60 89. With counter block 0 the first
        // block of our stream is AES(key, 0^128); check it against the cipher directly.
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let aes = Aes256::new(&key.into());
        let mut block = aes::Block::from([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        aes.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "8ea2b7ca516745bfeafc49904b496089");

        let mut zero = aes::Block::default();
        aes.encrypt_block(&mut zero);
        let mut out = [0u8; 16];
        CsRng::from_seed(key).fill_bytes(&mut out);
        assert_eq!(out[..], zero[..]);
    }

    #[test]
    fn stream_is_continuous_across_calls() {
        let mut a = CsRng::from_seed([7; 32]);
        let mut b = CsRng::from_seed([7; 32]);
        let mut whole = [0u8; 100];
        a.fill_bytes(&mut whole);
        let mut parts = [0u8; 100];
        let (x, y) = parts.split_at_mut(37);
        b.fill_bytes(x);
        b.fill_bytes(y);
        assert_eq!(whole, parts);
    }

    /// Reading ahead at offsets and then advancing gives the same bytes as reading in order,
    /// for offsets inside and across 16-byte blocks, and the position moves only on advance.
    #[test]
    fn random_access_matches_the_stream() {
        let mut whole = vec![0u8; 3000];
        CsRng::from_seed([9; 32]).fill_bytes(&mut whole);
        let mut rng = CsRng::from_seed([9; 32]);
        let mut head = [0u8; 5];
        rng.fill_bytes(&mut head);
        assert_eq!(head[..], whole[..5]);
        for (off, len) in [(0usize, 16usize), (3, 40), (1000, 1), (17, 1500), (2990 - 5, 5)] {
            let mut got = vec![0u8; len];
            assert!(rng.fill_bytes_at(off as u64, &mut got));
            assert_eq!(got[..], whole[5 + off..5 + off + len], "offset {off} len {len}");
        }
        rng.advance(1234);
        let mut next = [0u8; 100];
        rng.fill_bytes(&mut next);
        assert_eq!(next[..], whole[5 + 1234..5 + 1334]);
        // The default `advance` of an in-order source reads and discards.
        struct InOrder(CsRng);
        impl RandomSource for InOrder {
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                self.0.fill_bytes(dest)
            }
        }
        let mut in_order = InOrder(CsRng::from_seed([9; 32]));
        assert!(!in_order.fill_bytes_at(0, &mut next));
        in_order.advance(1000);
        in_order.fill_bytes(&mut next);
        assert_eq!(next[..], whole[1000..1100]);
    }

    /// The stream equals the `ctr` crate's AES-256-CTR (128-bit big-endian counter, zero IV)
    /// of the generator before this one, at every offset and length mix.
    #[test]
    fn stream_equals_the_ctr_crate() {
        use ctr09::cipher::{KeyIvInit, StreamCipher};
        let seed = [0x3c; 32];
        let mut reference = ctr09::Ctr128BE::<aes08::Aes256>::new(&seed.into(), &[0u8; 16].into());
        let mut want = vec![0u8; 40_000];
        reference.apply_keystream(&mut want);
        let mut rng = CsRng::from_seed(seed);
        let mut at = 0usize;
        for len in [0usize, 1, 15, 16, 17, 1, 1023, 1024, 1025, 16 * 64 + 3, 5000, 20_000] {
            let mut got = vec![0u8; len];
            rng.fill_bytes(&mut got);
            assert_eq!(got[..], want[at..at + len], "at {at} len {len}");
            at += len;
        }
        for (off, len) in [(0u64, 7usize), (5, 3000), (16, 16), (100, 1100)] {
            let mut got = vec![0u8; len];
            assert!(rng.fill_bytes_at(off, &mut got));
            let from = at + off as usize;
            assert_eq!(got[..], want[from..from + len], "ahead {off} len {len}");
        }
    }

    #[test]
    fn os_seeded_generators_differ() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        CsRng::from_os().unwrap().fill_bytes(&mut a);
        ThreadRng.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
