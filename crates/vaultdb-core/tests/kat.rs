//! Known-answer tests for XorIDA splitting.
//!
//! `tests/data/xorida_kat.json` holds vectors (seed, K, N, secret) -> the exact bytes of every
//! share, with the random coefficients drawn from `CsRng::from_seed(seed)` (AES-256-CTR,
//! docs/FORMAT.md sections 2 and 3: R_1, then R_2, ..., each |S| bytes). Every kernel this CPU
//! can run must reproduce them. Two vectors are too big to spell out; for those the secret is
//! a byte pattern (`secret[i] = (31 * i + 7) mod 256`) and the file holds SHA-256 digests of
//! the shares. They are longer than the 16 KiB step in which `split_into` works, so they check
//! that stepping does not change the order in which random bytes are used.
//!
//! `tests/data/verify_kat.py` re-derives every vector from docs/FORMAT.md alone (OpenSSL's
//! AES, schoolbook field arithmetic), sharing no code with VaultDB.
//!
//! The file was produced once by the generator below, on the portable kernel:
//!
//! ```text
//! cargo test -p vaultdb-core --test kat -- --ignored regen
//! ```
//!
//! Regenerating is only right when the sharing scheme or the stream layout changes on purpose
//! (and then docs/FORMAT.md changes with it); a failing KAT is otherwise a bug.
//!
//! The vectors are anchored independently of our own code by `hand_computed_*` below: shares
//! worked out by hand from `Y_i = S + x_i*R_1 + x_i^2*R_2` with FIPS-197 field arithmetic,
//! using a random source that returns fixed bytes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vaultdb_core::gf256::Kernel;
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::{SharePoint, Threshold, Xorida};

#[derive(Serialize, Deserialize)]
struct KatFile {
    about: String,
    vectors: Vec<Vector>,
}

#[derive(Serialize, Deserialize)]
struct Vector {
    name: String,
    /// 32 bytes, hex: the `CsRng::from_seed` seed.
    seed: String,
    k: usize,
    n: usize,
    /// The secret, hex; absent for pattern vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// The length of a pattern secret `secret[i] = (31 * i + 7) mod 256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pattern_len: Option<usize>,
    /// Share i (x = i + 1), hex; for pattern vectors, the SHA-256 of share i, hex.
    shares: Vec<String>,
}

impl Vector {
    fn secret(&self) -> Vec<u8> {
        match (&self.secret, self.pattern_len) {
            (Some(hex_secret), None) => hex::decode(hex_secret).unwrap(),
            (None, Some(len)) => pattern(len),
            _ => panic!("{}: give exactly one of secret and pattern_len", self.name),
        }
    }

    fn seed(&self) -> [u8; 32] {
        hex::decode(&self.seed).unwrap().try_into().expect("seed must be 32 bytes")
    }

    /// What the file stores for a share: the bytes, or their digest for pattern vectors.
    fn encode_share(&self, share: &[u8]) -> String {
        if self.pattern_len.is_some() {
            hex::encode(Sha256::digest(share))
        } else {
            hex::encode(share)
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (31 * i + 7) as u8).collect()
}

fn kat_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/xorida_kat.json")
}

fn load() -> KatFile {
    let text = std::fs::read_to_string(kat_path()).expect("tests/data/xorida_kat.json");
    serde_json::from_str(&text).expect("valid KAT file")
}

#[test]
fn kat_vectors_match_on_every_kernel() {
    vaultdb_testkit::report_kernels("kat", &Kernel::available());
    let file = load();
    assert!(file.vectors.len() >= 10, "the KAT file lost vectors");
    for v in &file.vectors {
        let t = Threshold::new(v.k, v.n).unwrap();
        let secret = v.secret();
        assert_eq!(v.shares.len(), v.n, "{}", v.name);
        for kernel in Kernel::available() {
            let x = Xorida::with_kernel(kernel);
            let shares = x.split(t, &secret, &mut CsRng::from_seed(v.seed()));
            // A source that can only be read in order takes the split's other path (one
            // sweep per coefficient when K > 2); the shares must be the same.
            let in_order = x.split(t, &secret, &mut InOrder(CsRng::from_seed(v.seed())));
            assert!(in_order == shares, "{} on {}: in-order source", v.name, kernel.isa());
            for (i, (got, want)) in shares.iter().zip(&v.shares).enumerate() {
                assert_eq!(
                    v.encode_share(got),
                    *want,
                    "{} on {}: share x={}",
                    v.name,
                    kernel.isa(),
                    i + 1
                );
            }
            // And the last K shares rebuild the secret.
            let pts: Vec<SharePoint<'_>> =
                (v.n - v.k..v.n).map(|i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect();
            assert!(*x.rebuild(t, &pts).unwrap() == secret, "{} on {}", v.name, kernel.isa());
        }
    }
}

/// The vectors the generator writes: (name, seed, K, N, secret or pattern length).
fn vector_specs() -> Vec<Vector> {
    let v = |name: &str, seed: [u8; 32], k, n, secret: Option<&[u8]>, pattern_len| Vector {
        name: name.into(),
        seed: hex::encode(seed),
        k,
        n,
        secret: secret.map(hex::encode),
        pattern_len,
        shares: Vec::new(),
    };
    let counting: [u8; 32] = std::array::from_fn(|i| i as u8);
    let hundred: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37) ^ 0x5c).collect();
    vec![
        v("2-of-3, short text", counting, 2, 3, Some(b"VaultDB"), None),
        v("3-of-5, short text", [0x42; 32], 3, 5, Some(b"threshold sharing"), None),
        v("2-of-2, 16 bytes", [0x01; 32], 2, 2, Some(&[0xff; 16]), None),
        v("2-of-3, empty secret", [0x07; 32], 2, 3, Some(b""), None),
        v("3-of-5, empty secret", [0x08; 32], 3, 5, Some(b""), None),
        v("2-of-3, 1-byte secret", [0x09; 32], 2, 3, Some(&[0x5a]), None),
        v("3-of-5, 1-byte secret", [0x0a; 32], 3, 5, Some(&[0x00]), None),
        v("2-of-3, 100-byte secret", [0x11; 32], 2, 3, Some(&hundred), None),
        v("4-of-7, 100-byte secret", [0x12; 32], 4, 7, Some(&hundred), None),
        v("255-of-255, 4 bytes", [0xfe; 32], 255, 255, Some(&[0xde, 0xad, 0xbe, 0xef]), None),
        v("2-of-255, 3 bytes", [0xfd; 32], 2, 255, Some(b"abc"), None),
        v("2-of-3, 20000-byte pattern", [0x21; 32], 2, 3, None, Some(20_000)),
        v("3-of-4, 40000-byte pattern", [0x22; 32], 3, 4, None, Some(40_000)),
    ]
}

/// The generator. It rewrites the data file from the current code on the portable kernel.
#[test]
#[ignore = "regenerates tests/data/xorida_kat.json, only when the scheme changes on purpose: \
            cargo test -p vaultdb-core --test kat -- regen --ignored"]
fn regen() {
    let mut vectors = vector_specs();
    let x = Xorida::with_kernel(Kernel::portable());
    for v in &mut vectors {
        let t = Threshold::new(v.k, v.n).unwrap();
        let shares = x.split(t, &v.secret(), &mut CsRng::from_seed(v.seed()));
        v.shares = shares.iter().map(|s| v.encode_share(s)).collect();
    }
    let file = KatFile {
        about: "XorIDA known-answer vectors: share i (x = i + 1) of secret under K-of-N with \
                coefficients from CsRng::from_seed(seed) (AES-256-CTR of zeros, 128-bit \
                big-endian counter from 0) cut into R_1, R_2, ..., R_{K-1} of |secret| bytes \
                each (docs/FORMAT.md sections 2-3). pattern_len vectors: secret[i] = \
                (31*i + 7) mod 256, shares given as SHA-256. Generated by `cargo test -p \
                vaultdb-core --test kat -- --ignored regen`; checked independently by \
                tests/data/verify_kat.py."
            .into(),
        vectors,
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap();
    text.push('\n');
    std::fs::write(kat_path(), text).unwrap();
}

/// A generator that does not offer random access (`fill_bytes_at`), like any source that
/// can only be read in order.
struct InOrder(CsRng);

impl RandomSource for InOrder {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
}

/// A random source that returns the given bytes and then refuses to give more.
struct Fixed(Vec<u8>);

impl RandomSource for Fixed {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "split asked for more random bytes than expected");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

/// 2-of-3 worked by hand. S = 00 57 ff 01, R_1 = 02 83 02 13; Y_i = S + x_i * R_1.
///
/// In GF(2^8) mod x^8+x^4+x^3+x+1: 2*02 = 04; 2*83 = 106 - 11b = 1d; 2*13 = 26;
/// 3*r = 2*r + r: 3*02 = 06, 3*83 = 1d+83 = 9e, 3*13 = 26+13 = 35.
/// Y_1 = S+R = 02 d4 fd 12; Y_2 = S+2R = 04 4a fb 27; Y_3 = S+3R = 06 c9 f9 34.
#[test]
fn hand_computed_two_of_three() {
    let t = Threshold::new(2, 3).unwrap();
    let secret = [0x00, 0x57, 0xff, 0x01];
    for kernel in Kernel::available() {
        let mut rng = Fixed(vec![0x02, 0x83, 0x02, 0x13]);
        let shares = Xorida::with_kernel(kernel).split(t, &secret, &mut rng);
        assert!(rng.0.is_empty(), "split must use exactly |S| * (K-1) random bytes");
        assert_eq!(shares[0], [0x02, 0xd4, 0xfd, 0x12], "{}", kernel.isa());
        assert_eq!(shares[1], [0x04, 0x4a, 0xfb, 0x27], "{}", kernel.isa());
        assert_eq!(shares[2], [0x06, 0xc9, 0xf9, 0x34], "{}", kernel.isa());
    }
}

/// 3-of-4 worked by hand. S = 57 00, R_1 = 83 01, R_2 = 13 80 (the generator yields R_1, then
/// R_2); Y_i = S + x_i*R_1 + x_i^2*R_2 with x^2 = 1, 4, 5, 10 for x = 1, 2, 3, 4.
///
/// Products: 2*83 = 1d, 4*83 = 3a, 3*83 = 9e; 4*13 = 4c, 5*13 = 4c+13 = 5f, 10*13 = 2b;
/// 4*80 = 36, 5*80 = 36+80 = b6, 10*80 = d8 (80 -> 1b -> 36 -> 6c -> d8 by doubling).
/// Y_1 = 57+83+13, 00+01+80 = c7 81;   Y_2 = 57+1d+4c, 00+02+36 = 06 34;
/// Y_3 = 57+9e+5f, 00+03+b6 = 96 b5;   Y_4 = 57+3a+2b, 00+04+d8 = 46 dc.
#[test]
fn hand_computed_three_of_four() {
    let t = Threshold::new(3, 4).unwrap();
    for kernel in Kernel::available() {
        let mut rng = Fixed(vec![0x83, 0x01, 0x13, 0x80]);
        let shares = Xorida::with_kernel(kernel).split(t, &[0x57, 0x00], &mut rng);
        assert!(rng.0.is_empty());
        let want: [[u8; 2]; 4] = [[0xc7, 0x81], [0x06, 0x34], [0x96, 0xb5], [0x46, 0xdc]];
        for (got, want) in shares.iter().zip(want) {
            assert_eq!(got[..], want, "{}", kernel.isa());
        }
    }
}

/// The FIPS-197 section 4.2 products that the hand computations rely on.
#[test]
fn field_products_from_fips_197() {
    use vaultdb_core::gf256::mul;
    assert_eq!(mul(0x57, 0x83), 0xc1);
    assert_eq!(mul(0x57, 0x13), 0xfe);
    assert_eq!(mul(0x57, 0x02), 0xae);
    assert_eq!(mul(0x57, 0x10), 0x07);
}
