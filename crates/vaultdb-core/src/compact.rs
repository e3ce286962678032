//! The compact storage mode: Krawczyk's "secret sharing made short" (CRYPTO 1993) over the
//! XorIDA engine, so each backend stores about `L/K` bytes of an `L`-byte secret instead of
//! `L`.
//!
//! To split a secret (docs/FORMAT.md section 16):
//!
//! 1. draw a fresh 256-bit key `k` from the writer's CSPRNG and encrypt the secret, extended
//!    with zero bytes to `K·S` bytes, with AES-256-CTR under `k` (the keystream of
//!    [`CsRng::from_seed(k)`](crate::rng::CsRng::from_seed): a 128-bit big-endian counter
//!    from zero; `k` encrypts one secret only, so a fixed initial counter is safe);
//! 2. cut the ciphertext into K shards of `S` bytes and add `N - K` recovery shards of the
//!    Leopard-RS erasure code (`reed-solomon-simd`): share `x <= K` holds original shard
//!    `x - 1`, share `x > K` recovery shard `x - K - 1`;
//! 3. split `k` with XorIDA (docs/FORMAT.md section 2), K of N, and put key part `x` in
//!    front of shard `x`.
//!
//! Any K shares give `k` (XorIDA) and the ciphertext (the erasure code), so the secret; fewer
//! than K give no information about `k` and only ciphertext, so nothing about the secret
//! beyond its length, as long as AES-256 is a pseudorandom permutation. The erasure code
//! sees only ciphertext: no backend ever holds plaintext, even with a systematic code.
//!
//! Everything around the split (the MAC of the secret, padding, envelopes, id shares,
//! keyring) is unchanged; the keyring itself is always split with XorIDA, since it says
//! which mode the store is in.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::rng::{CsRng, RandomSource};
use crate::wipe::SecretVec;
use crate::xorida::{SharePoint, Threshold, Xorida};

/// Bytes of the AES-256 key, and of its XorIDA share at the start of every compact share.
pub const KEY_LEN: usize = 32;

/// How a store splits its secrets, chosen when the store is created and recorded in its
/// keyring (docs/FORMAT.md section 9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// XorIDA threshold sharing of the whole secret: every backend stores a share as long as
    /// the secret, and fewer than K backends learn nothing whatever their computing power
    /// (information-theoretic). The default.
    #[default]
    Shamir,
    /// Krawczyk's scheme (this module): each backend stores about `1/K` of the secret's
    /// length plus 32 bytes; fewer than K backends learn nothing as long as AES-256 is secure
    /// (computational).
    Compact,
}

impl Mode {
    /// The mode's byte in the keyring (docs/FORMAT.md section 9).
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Shamir => 0,
            Self::Compact => 1,
        }
    }

    /// The mode of a keyring byte, if it names one.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Shamir),
            1 => Some(Self::Compact),
            _ => None,
        }
    }

    /// The mode's name in configuration and on the command line: `shamir` or `compact`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shamir => "shamir",
            Self::Compact => "compact",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = VaultError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "shamir" => Ok(Self::Shamir),
            "compact" => Ok(Self::Compact),
            other => Err(VaultError::invalid_config(format!(
                "unknown storage mode {other:?} (expected \"shamir\" or \"compact\")"
            ))),
        }
    }
}

/// The shard length `S` for a secret of `secret_len` bytes split K of N: `ceil(len / K)`
/// rounded up to an even number (the erasure code works on 16-bit symbols), at least 2.
pub fn shard_len(t: Threshold, secret_len: usize) -> usize {
    let s = secret_len.div_ceil(t.k()).max(2);
    s + s % 2
}

/// The length of each compact share of a `secret_len`-byte secret: the key part, then the
/// shard.
pub fn share_len(t: Threshold, secret_len: usize) -> usize {
    KEY_LEN + shard_len(t, secret_len)
}

/// The compact scheme's split, rebuild and derive (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Compact {
    xorida: Xorida,
}

impl Compact {
    /// The scheme on the fastest XorIDA kernel this CPU runs.
    pub fn new() -> Self {
        Self { xorida: Xorida::new() }
    }

    /// Splits `secret` into N shares of [`share_len`] bytes (share x = i + 1 at position i),
    /// drawing the key and then its XorIDA coefficients from `rng`.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if the erasure code refuses the shape (it does not, for N <= 255).
    pub fn split(
        &self,
        t: Threshold,
        secret: &[u8],
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<Vec<u8>>> {
        let mut shares = vec![vec![0u8; share_len(t, secret.len())]; t.n()];
        let mut outs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        self.encrypt_into(t, secret, rng, &mut outs);
        self.disperse(t, &mut outs)?;
        Ok(shares)
    }

    /// The first step of [`Compact::split`], into `outs` (N buffers of [`share_len`] bytes):
    /// draws the key, writes its XorIDA parts into every share and the encrypted secret into
    /// the shards of shares 1..=K. The recovery shards are left for [`Compact::disperse`], so
    /// that a caller can change ciphertext bytes in between (bytes of a keystream cipher are
    /// changed by XOR-ing the change into them: the put adds the MAC this way).
    ///
    /// # Panics
    /// If `outs` does not hold N buffers of [`share_len`] bytes.
    pub fn encrypt_into(
        &self,
        t: Threshold,
        secret: &[u8],
        rng: &mut dyn RandomSource,
        outs: &mut [&mut [u8]],
    ) {
        let s = shard_len(t, secret.len());
        assert!(
            outs.len() == t.n() && outs.iter().all(|o| o.len() == KEY_LEN + s),
            "compact split: N buffers of the share length"
        );
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        {
            let mut parts: Vec<&mut [u8]> = outs.iter_mut().map(|o| &mut o[..KEY_LEN]).collect();
            self.xorida.split_into(t, key.as_ref(), rng, &mut parts);
        }
        let mut cipher = CsRng::from_seed(*key);
        for (i, out) in outs.iter_mut().take(t.k()).enumerate() {
            let shard = &mut out[KEY_LEN..];
            let from = (i * s).min(secret.len());
            let to = ((i + 1) * s).min(secret.len());
            shard[..to - from].copy_from_slice(&secret[from..to]);
            shard[to - from..].fill(0);
            apply_keystream(&mut cipher, shard);
        }
    }

    /// The second step of [`Compact::split`]: the recovery shards of shares K+1..=N from the
    /// original shards of shares 1..=K.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if the erasure code refuses the shape.
    pub fn disperse(&self, t: Threshold, outs: &mut [&mut [u8]]) -> Result<()> {
        let (k, n) = (t.k(), t.n());
        if n == k {
            return Ok(());
        }
        let s = outs[0].len() - KEY_LEN;
        let failed = |e: reed_solomon_simd::Error| VaultError::SplitFailed(e.to_string());
        let (originals, recoveries) = outs.split_at_mut(k);
        // Column by column (the code works on each CHUNK-byte column on its own, so this
        // gives the same bytes as one pass over whole shards), so that the encoder's work
        // buffer and the columns it reads and writes stay in the cache.
        let mut from = KEY_LEN;
        while from < KEY_LEN + s {
            let to = (from + DISPERSE_COLUMNS).min(KEY_LEN + s);
            with_encoder(k, n - k, to - from, |encoder| {
                for out in originals.iter() {
                    encoder.add_original_shard(&out[from..to])?;
                }
                let result = encoder.encode()?;
                for (out, recovery) in recoveries.iter_mut().zip(result.recovery_iter()) {
                    out[from..to].copy_from_slice(recovery);
                }
                Ok(())
            })
            .map_err(failed)?;
            from = to;
        }
        Ok(())
    }

    /// Changes the first [`CHUNK`] ciphertext bytes of shard 1 by XOR-ing `delta` into them,
    /// and the recovery shards to match, in shares already dispersed ([`Compact::disperse`]):
    /// the code is linear and works on each [`CHUNK`]-byte column of the shards on its own,
    /// so only the recovery shards' first chunk changes, by the code of `delta`. The put
    /// disperses the ciphertext while the MAC is computed, and adds the MAC this way.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if the shards are shorter than [`CHUNK`] bytes.
    pub fn add_to_first_chunk(
        &self,
        t: Threshold,
        outs: &mut [&mut [u8]],
        delta: &[u8; CHUNK],
    ) -> Result<()> {
        let (k, n) = (t.k(), t.n());
        if outs[0].len() < KEY_LEN + CHUNK {
            return Err(VaultError::SplitFailed("shards shorter than one chunk".into()));
        }
        for (o, d) in outs[0][KEY_LEN..KEY_LEN + CHUNK].iter_mut().zip(delta) {
            *o ^= d;
        }
        if n == k {
            return Ok(());
        }
        let zero = [0u8; CHUNK];
        let failed = |e: reed_solomon_simd::Error| VaultError::SplitFailed(e.to_string());
        let mut encoder = ReedSolomonEncoder::new(k, n - k, CHUNK).map_err(failed)?;
        encoder.add_original_shard(delta).map_err(failed)?;
        for _ in 1..k {
            encoder.add_original_shard(zero).map_err(failed)?;
        }
        let result = encoder.encode().map_err(failed)?;
        for (out, recovery) in outs.iter_mut().skip(k).zip(result.recovery_iter()) {
            for (o, d) in out[KEY_LEN..KEY_LEN + CHUNK].iter_mut().zip(recovery) {
                *o ^= d;
            }
        }
        Ok(())
    }

    /// Rebuilds the secret (`K·S` bytes: the secret the writer split, extended with zeros)
    /// from K shares at distinct x.
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` for fewer than K shares, shares of different or impossible
    /// lengths, or x out of range or repeated.
    pub fn rebuild(&self, t: Threshold, shares: &[SharePoint<'_>]) -> Result<SecretVec> {
        let s = check_shares(t, shares)?;
        if let Some(secret) = self.decrypt_originals(t, shares, s)? {
            return Ok(secret);
        }
        let (key, cipher) = self.key_and_ciphertext(t, shares)?;
        let mut secret = cipher;
        let mut stream = CsRng::from_seed(*key);
        apply_keystream(&mut stream, &mut secret);
        Ok(secret)
    }

    /// The secret (`K·S` bytes) from K shares that are shares `1..=K`: the key from their
    /// key parts, and the ciphertext decrypted straight from their shards into the output
    /// (no zeroing or copy of the ciphertext into the output first, and nothing to decode).
    /// `None` if a share past K is among them (then the erasure code must be decoded).
    fn decrypt_originals(
        &self,
        t: Threshold,
        shares: &[SharePoint<'_>],
        s: usize,
    ) -> Result<Option<SecretVec>> {
        let k = t.k();
        let shards: Option<Vec<&[u8]>> = (1..=k)
            .map(|x| shares[..k].iter().find(|p| usize::from(p.x) == x).map(|p| &p.y[KEY_LEN..]))
            .collect();
        let Some(shards) = shards else {
            return Ok(None);
        };
        let key = self.key_of(t, shares)?;
        let mut stream = CsRng::from_seed(*key);
        // Appended to, not zeroed first: every byte is written once.
        let mut out = SecretVec::with_capacity(k * s);
        let mut ks = Zeroizing::new(vec![0u8; KEYSTREAM_BLOCK.min(s)]);
        for src in shards.into_iter().flat_map(|shard| shard.chunks(KEYSTREAM_BLOCK)) {
            let ks = &mut ks[..src.len()];
            stream.fill_bytes(ks);
            out.extend(src.iter().zip(ks.iter()).map(|(c, k)| c ^ k));
        }
        Ok(Some(out))
    }

    /// The share at `x` that K shares at other (or the same) positions define, without
    /// decrypting anything.
    ///
    /// # Errors
    /// As [`Compact::rebuild`], and for `x` out of `1..=N`.
    pub fn derive(&self, t: Threshold, shares: &[SharePoint<'_>], x: u8) -> Result<Vec<u8>> {
        if x == 0 || usize::from(x) > t.n() {
            return Err(VaultError::ReconstructFailed(format!("share index {x} out of range")));
        }
        if let Some(p) = shares.iter().find(|p| p.x == x) {
            return Ok(p.y.to_vec());
        }
        let parts = key_parts(t, shares)?;
        let mut share = self.xorida.derive(t, &parts, x)?;
        let (_, cipher) = self.key_and_ciphertext(t, shares)?;
        let s = cipher.len() / t.k();
        let (k, n, at) = (t.k(), t.n(), usize::from(x) - 1);
        if at < k {
            share.extend_from_slice(&cipher[at * s..(at + 1) * s]);
        } else {
            let failed = |e: reed_solomon_simd::Error| VaultError::ReconstructFailed(e.to_string());
            with_encoder(k, n - k, s, |encoder| {
                for shard in cipher.chunks_exact(s) {
                    encoder.add_original_shard(shard)?;
                }
                Ok(encoder.encode()?.recovery(at - k).map(|r| share.extend_from_slice(r)))
            })
            .map_err(failed)?
            .ok_or_else(|| failed_index(x))?;
        }
        Ok(share)
    }

    /// The key, from the key parts of the first K of `shares` (checked by [`check_shares`]).
    fn key_of(&self, t: Threshold, shares: &[SharePoint<'_>]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let parts = key_parts(t, shares)?;
        let key_vec = self.xorida.rebuild(t, &parts)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&key_vec);
        Ok(key)
    }

    /// The key (from the key parts) and the ciphertext, `K·S` bytes (from the shards).
    fn key_and_ciphertext(
        &self,
        t: Threshold,
        shares: &[SharePoint<'_>],
    ) -> Result<(Zeroizing<[u8; KEY_LEN]>, SecretVec)> {
        let (k, n) = (t.k(), t.n());
        let s = check_shares(t, shares)?;
        let shares = &shares[..k];
        let key = self.key_of(t, shares)?;
        let mut cipher = SecretVec::zeroed(k * s);
        let mut missing = false;
        for i in 0..k {
            match shares.iter().find(|p| usize::from(p.x) == i + 1) {
                Some(p) => cipher[i * s..(i + 1) * s].copy_from_slice(&p.y[KEY_LEN..]),
                None => missing = true,
            }
        }
        if missing {
            let failed = |e: reed_solomon_simd::Error| VaultError::ReconstructFailed(e.to_string());
            with_decoder(k, n - k, s, |decoder| {
                for p in shares {
                    let at = usize::from(p.x) - 1;
                    if at < k {
                        decoder.add_original_shard(at, &p.y[KEY_LEN..])?;
                    } else {
                        decoder.add_recovery_shard(at - k, &p.y[KEY_LEN..])?;
                    }
                }
                let result = decoder.decode()?;
                for (at, restored) in result.restored_original_iter() {
                    cipher[at * s..(at + 1) * s].copy_from_slice(restored);
                }
                Ok(())
            })
            .map_err(failed)?;
        }
        Ok((key, cipher))
    }
}

/// Checks that the first K of `shares` can rebuild a compact secret (same, possible
/// lengths; x in `1..=N`) and returns their shard length `S`.
fn check_shares(t: Threshold, shares: &[SharePoint<'_>]) -> Result<usize> {
    let bad = |m: &str| Err(VaultError::ReconstructFailed(m.to_owned()));
    let (k, n) = (t.k(), t.n());
    if shares.len() < k {
        return bad("fewer than K compact shares");
    }
    let shares = &shares[..k];
    let len = shares[0].y.len();
    if len < KEY_LEN + 2
        || !(len - KEY_LEN).is_multiple_of(2)
        || shares.iter().any(|p| p.y.len() != len)
    {
        return bad("compact shares of different or impossible lengths");
    }
    if shares.iter().any(|p| p.x == 0 || usize::from(p.x) > n) {
        return bad("compact share index out of range");
    }
    Ok(len - KEY_LEN)
}

/// The erasure code's column width: it works on each `CHUNK`-byte column of the shards
/// (32 symbols of 16 bits) on its own.
pub const CHUNK: usize = 64;

/// How many bytes of each shard [`Compact::disperse`] codes at a time: a multiple of
/// [`CHUNK`], small enough that K + N - K columns and the encoder's work stay in the cache.
const DISPERSE_COLUMNS: usize = 256 * CHUNK;

/// Shards up to this long are coded with a per-thread encoder and decoder whose work
/// buffers are kept between calls (they hold ciphertext only); longer ones with fresh ones,
/// so that no thread keeps a large buffer.
const REUSE_MAX_SHARD: usize = 4 << 20;

thread_local! {
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

type RsResult<T> = std::result::Result<T, reed_solomon_simd::Error>;

/// An encoder or a decoder of the erasure code, kept per thread by [`with_coder`].
trait Coder: Sized + 'static {
    fn new(k: usize, r: usize, s: usize) -> RsResult<Self>;
    fn reset(&mut self, k: usize, r: usize, s: usize) -> RsResult<()>;
}

impl Coder for ReedSolomonEncoder {
    fn new(k: usize, r: usize, s: usize) -> RsResult<Self> {
        ReedSolomonEncoder::new(k, r, s)
    }
    fn reset(&mut self, k: usize, r: usize, s: usize) -> RsResult<()> {
        ReedSolomonEncoder::reset(self, k, r, s)
    }
}

impl Coder for ReedSolomonDecoder {
    fn new(k: usize, r: usize, s: usize) -> RsResult<Self> {
        ReedSolomonDecoder::new(k, r, s)
    }
    fn reset(&mut self, k: usize, r: usize, s: usize) -> RsResult<()> {
        ReedSolomonDecoder::reset(self, k, r, s)
    }
}

/// Runs `f` with a coder for `k` original and `r` recovery shards of `s` bytes: this
/// thread's (in `slot`) for shards up to [`REUSE_MAX_SHARD`], a fresh one for longer ones.
fn with_coder<C: Coder, T>(
    slot: &'static std::thread::LocalKey<RefCell<Option<C>>>,
    (k, r, s): (usize, usize, usize),
    f: impl FnOnce(&mut C) -> RsResult<T>,
) -> RsResult<T> {
    if s > REUSE_MAX_SHARD {
        return f(&mut C::new(k, r, s)?);
    }
    slot.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some(c) => c.reset(k, r, s)?,
            None => *slot = Some(C::new(k, r, s)?),
        }
        f(slot.as_mut().expect("set above"))
    })
}

/// Runs `f` with an encoder for `k` original and `r` recovery shards of `s` bytes.
fn with_encoder<T>(
    k: usize,
    r: usize,
    s: usize,
    f: impl FnOnce(&mut ReedSolomonEncoder) -> RsResult<T>,
) -> RsResult<T> {
    with_coder(&ENCODER, (k, r, s), f)
}

/// Runs `f` with a decoder for `k` original and `r` recovery shards of `s` bytes.
fn with_decoder<T>(
    k: usize,
    r: usize,
    s: usize,
    f: impl FnOnce(&mut ReedSolomonDecoder) -> RsResult<T>,
) -> RsResult<T> {
    with_coder(&DECODER, (k, r, s), f)
}

/// The key parts (the first [`KEY_LEN`] bytes) of the first K shares.
fn key_parts<'a>(t: Threshold, shares: &[SharePoint<'a>]) -> Result<Vec<SharePoint<'a>>> {
    shares
        .iter()
        .take(t.k())
        .map(|p| match p.y.get(..KEY_LEN) {
            Some(y) => Ok(SharePoint { x: p.x, y }),
            None => Err(VaultError::ReconstructFailed("compact share too short".into())),
        })
        .collect()
}

fn failed_index(x: u8) -> VaultError {
    VaultError::ReconstructFailed(format!("no recovery shard for x = {x}"))
}

/// The keystream is drawn this many bytes at a time (it stays in the L1 cache).
const KEYSTREAM_BLOCK: usize = 16 << 10;

/// XORs the next `data.len()` bytes of `stream` into `data` (encrypts or decrypts in counter
/// mode), a cache-sized block at a time.
fn apply_keystream(stream: &mut CsRng, data: &mut [u8]) {
    let mut ks = Zeroizing::new(vec![0u8; KEYSTREAM_BLOCK.min(data.len())]);
    for chunk in data.chunks_mut(KEYSTREAM_BLOCK) {
        let ks = &mut ks[..chunk.len()];
        stream.fill_bytes(ks);
        for (d, k) in chunk.iter_mut().zip(ks.iter()) {
            *d ^= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: usize, n: usize) -> Threshold {
        Threshold::new(k, n).unwrap()
    }

    #[test]
    fn mode_names_and_bytes_round_trip() {
        for m in [Mode::Shamir, Mode::Compact] {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
            assert_eq!(Mode::from_byte(m.to_byte()), Some(m));
        }
        assert_eq!(Mode::default(), Mode::Shamir);
        assert!("Compact".parse::<Mode>().is_err());
        assert_eq!(Mode::from_byte(2), None);
    }

    #[test]
    fn shard_lengths_are_even_and_cover_the_secret() {
        for (k, len, s) in [(2, 0, 2), (2, 1, 2), (2, 104, 52), (2, 105, 54), (3, 104, 36)] {
            assert_eq!(shard_len(t(k, 5), len), s, "{k} {len}");
        }
        for len in 0..300 {
            for k in 2..6 {
                let s = shard_len(t(k, 6), len);
                assert!(
                    s.is_multiple_of(2) && s * k >= len && s * k < len + 2 * k + 2,
                    "{k} {len}"
                );
            }
        }
    }

    /// Every K-subset rebuilds the secret (zero-extended), derive gives the split's shares,
    /// and no shard holds the plaintext.
    #[test]
    fn any_k_rebuild_and_derive() {
        let c = Compact::new();
        for (k, n) in [(2, 2), (2, 3), (3, 5), (4, 4)] {
            let th = t(k, n);
            let secret: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 1) as u8).collect();
            let mut rng = CsRng::from_seed([9; 32]);
            let shares = c.split(th, &secret, &mut rng).unwrap();
            assert!(shares.iter().all(|s| s.len() == share_len(th, secret.len())));
            for share in &shares {
                assert!(!share.windows(16).any(|w| w == &secret[100..116]));
            }
            for mask in (0u32..1 << n).filter(|m| m.count_ones() as usize == k) {
                let pos: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
                let pts: Vec<SharePoint<'_>> =
                    pos.iter().map(|&i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect();
                let got = c.rebuild(th, &pts).unwrap();
                assert_eq!(&got[..secret.len()], &secret[..], "{k}-of-{n} {pos:?}");
                assert!(got[secret.len()..].iter().all(|&b| b == 0));
                for x in 1..=n {
                    assert_eq!(c.derive(th, &pts, x as u8).unwrap(), shares[x - 1]);
                }
            }
        }
    }

    /// Changing ciphertext bytes of the first chunk after dispersal gives the shares of the
    /// changed ciphertext.
    #[test]
    fn a_first_chunk_change_after_dispersal_equals_dispersing_the_change() {
        let c = Compact::new();
        for (k, n, len) in
            [(2, 3, 1000), (3, 5, 70_001), (2, 2, 200), (4, 7, 1290), (5, 9, 100_000)]
        {
            let th = t(k, n);
            let secret: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            let mut changed = secret.clone();
            let mut delta = [0u8; CHUNK];
            for (i, d) in delta.iter_mut().enumerate().skip(32) {
                *d = (i as u8).wrapping_mul(37) | 1;
                changed[i] ^= *d;
            }
            let want = c.split(th, &changed, &mut CsRng::from_seed([3; 32])).unwrap();
            let mut got = c.split(th, &secret, &mut CsRng::from_seed([3; 32])).unwrap();
            let mut outs: Vec<&mut [u8]> = got.iter_mut().map(Vec::as_mut_slice).collect();
            c.add_to_first_chunk(th, &mut outs, &delta).unwrap();
            assert_eq!(got, want, "{k}-of-{n}, {len} bytes");
        }
        let mut short = vec![vec![0u8; KEY_LEN + 62]; 3];
        let mut outs: Vec<&mut [u8]> = short.iter_mut().map(Vec::as_mut_slice).collect();
        assert!(c.add_to_first_chunk(t(2, 3), &mut outs, &[1; CHUNK]).is_err());
    }

    #[test]
    fn malformed_shares_are_refused() {
        let c = Compact::new();
        let th = t(2, 3);
        let a = [1u8; 40];
        let b = [2u8; 41];
        let pts = [SharePoint { x: 1, y: &a }, SharePoint { x: 2, y: &b }];
        assert!(c.rebuild(th, &pts).is_err());
        let short = [1u8; 33];
        let pts = [SharePoint { x: 1, y: &short }, SharePoint { x: 2, y: &short }];
        assert!(c.rebuild(th, &pts).is_err());
        let pts = [SharePoint { x: 1, y: &a }, SharePoint { x: 4, y: &a }];
        assert!(c.rebuild(th, &pts).is_err());
        assert!(c.rebuild(th, &pts[..1]).is_err());
        assert!(c.derive(th, &pts, 0).is_err());
    }
}
