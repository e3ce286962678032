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
use ctr::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroize;

/// A source of uniformly random bytes.
pub trait RandomSource: Send {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

/// After this many output bytes an OS-seeded [`CsRng`] takes a fresh seed from the OS.
pub const RESEED_BYTES: u64 = 1 << 30;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// AES-256-CTR keystream generator.
///
/// The stream for a seed `s` is AES-256-CTR with key `s`, a 128-bit big-endian counter
/// starting at zero, encrypting zero bytes (docs/FORMAT.md, "Randomness").
pub struct CsRng {
    cipher: Aes256Ctr,
    produced: u64,
    reseed: bool,
}

impl std::fmt::Debug for CsRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsRng").field("reseeding", &self.reseed).finish_non_exhaustive()
    }
}

impl CsRng {
    /// A generator with a fixed seed that never reseeds: for tests and known-answer vectors
    /// only. Never use a fixed seed to protect real data.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut seed = seed;
        let cipher = Aes256Ctr::new(&seed.into(), &[0u8; 16].into());
        seed.zeroize();
        Self { cipher, produced: 0, reseed: false }
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

    fn try_fill(&mut self, dest: &mut [u8]) -> Result<(), getrandom::Error> {
        if self.reseed && self.produced >= RESEED_BYTES {
            *self = Self::from_os()?;
        }
        dest.fill(0);
        self.cipher.apply_keystream(dest);
        self.produced = self.produced.saturating_add(dest.len() as u64);
        Ok(())
    }
}

impl RandomSource for CsRng {
    /// # Panics
    /// If reseeding from the OS fails, which `getrandom` documents as not happening on
    /// supported platforms once it has succeeded.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.try_fill(dest).expect("OS random generator failed while reseeding")
    }
}

/// The default source: a per-thread OS-seeded [`CsRng`]. Cheap to make; holds no state.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRng;

thread_local! {
    static THREAD_RNG: RefCell<Option<CsRng>> = const { RefCell::new(None) };
}

impl RandomSource for ThreadRng {
    /// # Panics
    /// If the OS random generator fails on first use in this thread.
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        THREAD_RNG.with(|cell| {
            let mut slot = cell.borrow_mut();
            let rng = slot
                .get_or_insert_with(|| CsRng::from_os().expect("OS random generator unavailable"));
            rng.fill_bytes(dest);
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
        use aes::cipher::{BlockEncrypt, KeyInit};
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
