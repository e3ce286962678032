//! The compact storage mode's split (docs/FORMAT.md section 16): known-answer vectors, the
//! vectors' construction re-derived from the format's description with another AES-CTR
//! implementation, property tests (any K of N rebuild; repair derives lost shares exactly),
//! and the secrecy of the key parts (those of any K-1 shares are independent of the key).
//!
//! The known answers are SHA-256 digests of each share of a pattern secret
//! (`secret[i] = (31 * i + 7) mod 256`) split with `CsRng::from_seed([seed; 32])`. They were
//! produced once by the generator below; regenerating is only right when the scheme changes
//! on purpose (and docs/FORMAT.md with it):
//!
//! ```text
//! cargo test -p vaultdb-core --test compact -- --ignored regen --nocapture
//! ```

use proptest::prelude::*;
use proptest::sample::subsequence;
use sha2::{Digest, Sha256};
use vaultdb_core::compact::{Compact, KEY_LEN, shard_len, share_len};
use vaultdb_core::gf256;
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::{SharePoint, Threshold, Xorida};
use vaultdb_testkit::Scripted;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (31 * i + 7) as u8).collect()
}

fn t(k: usize, n: usize) -> Threshold {
    Threshold::new(k, n).unwrap()
}

/// (seed byte, K, N, secret length, SHA-256 of each share).
type Kat = (u8, usize, usize, usize, &'static [&'static str]);

const KATS: &[Kat] = &[
    (
        0x42,
        2,
        3,
        104,
        &[
            "1e368832e2529f0055b9203ab0ec45ec16083ef71fab79da89e257e8e51daa5a",
            "596d04eaee47ea9715e9fc4af970e305ccce1faba1d231eb8c0165f421cd94a0",
            "0f52daf64a87a3d67a8dffaa38b3b2a793ba1d881a4034262734b2c89cd1f13d",
        ],
    ),
    (
        0x01,
        3,
        5,
        1000,
        &[
            "4aa3501415b377d51f57452bd3949c73314ac06ca0c75fe293c36c6c1df56aba",
            "3bdab7336eaae97231725aa6260c061b4aed82b6c77aacfc83ffd5ca759e244b",
            "bb2c943aeac65e97932e9d0c1e53407c01579ca7b9b2f428ea418a11eb01c8a9",
            "d32306fe5d282287cb3ab5c9b8aea47d5cf54d9d3e7d235dc6f94537efbd3c15",
            "498d11139a5df7a3f6e98fa4ef41a19f6804adf39f1f6be274f925a595d38278",
        ],
    ),
    (
        0x02,
        2,
        2,
        77,
        &[
            "a813344b7d16d105559140caebd8880d82c83f17fc0fef2b243c52e3a9382c53",
            "02a048b1abd3a51e9283caea770da7a4d6c96a82e7f25d1060f007bdf16db0a0",
        ],
    ),
    (
        0x03,
        4,
        7,
        3,
        &[
            "2b2bca2bd58520635c1399f9f456a1f4caf59082e399137253360900bb2ef15c",
            "14f1e643290773933424ead163a6670655866dfaf1dc9898a568d8d1bb6ddbd0",
            "9eec7fa6cfc2b10fa648878f09c4ee019969e99357488567d35c8178f0836a0f",
            "24e838bb3a7c3b225066ff5210102f25fec5ae9619d0d443623881f847d3d9da",
            "65bb9cdd1f4a10e0e16dc1134abff09f1c592311c3c15536783be6738df0efb7",
            "9f81dfa6fbdb5db822f5dafbcbb022a03d4d2a5f84f8b27618a0eaa73ca4a891",
            "dcba19f8e2599fe1e19a63c210d9f2ffe61dd31670d60379b69b5af18ea6c5e6",
        ],
    ),
    (
        0x04,
        3,
        4,
        101,
        &[
            "dbe1d7f9b0ffdaf0daaec39ad1e9255b57b62e189de0f9865f21b30c308d4087",
            "78657627888e9faec11ac9f86284d05f30fd0aebf02928b0352a0b2c683d8405",
            "4f5f75a361f23c0b1b2d25a5c70e7fa9ee71b533c23815e872108cb93b3cb2a7",
            "7d26822f46cd024eaee2e58859840a8f0f3ccde619ab8bda31de1618a1e41295",
        ],
    ),
    (
        0x05,
        2,
        3,
        70001,
        &[
            "8b611f2a585defa280ca691792110034bccfc4d51563b5958b2b1179ffd3f7ea",
            "1209a7221a87ee5a7468199c5535712428e3d55a0860c3415c138b38daeafbe2",
            "ae638cb68c61168e540b7221df25d3ffc237efc38886384925fbb0ad6290f16a",
        ],
    ),
    (
        0x06,
        5,
        9,
        100000,
        &[
            "48bb294eb4596011396cf86be9c78e9066993436a8910588d23d306e9b55381b",
            "17795eb92c98717745a0a7431593e18fdb264b29f4ed12873df1710ac038d165",
            "304af140e93c64133089778676151e868aa54834774f71ee35677280a661640b",
            "58fba57a85f943bf73c1454a2e10605fc6180fb17a5dec7cb633a1f91dda8033",
            "aa1df7604476e8c346a8310acb00a4d41323b708ddc12ec06394a70054f4604e",
            "164135275626d9ce640db4650225350fe04963f2ed3a685b9d1284369ada70dd",
            "aa54e3d2f85cf8c9629b806d4ac15d04fdad1e1af000ffe30230a1a9582ae57c",
            "d674085c7a7dd6db3f2d1e57995782fe69f3763c0ec03d25a22d4a05584ad6f9",
            "70fa48a2246f207f2f8b20857ad961ca162b31a42d5deb3dd71c840f60f3d2cf",
        ],
    ),
];

fn digests(shares: &[Vec<u8>]) -> Vec<String> {
    shares.iter().map(|s| hex::encode(Sha256::digest(s))).collect()
}

fn split(seed: u8, k: usize, n: usize, len: usize) -> Vec<Vec<u8>> {
    Compact::new().split(t(k, n), &pattern(len), &mut CsRng::from_seed([seed; 32])).unwrap()
}

/// The shapes of the vectors: 2-of-3 (the default), 3-of-5, K = N, a secret shorter than
/// K bytes, an odd shard, and secrets longer than the 16 KiB blocks of the keystream.
const SHAPES: &[(u8, usize, usize, usize)] = &[
    (0x42, 2, 3, 104),
    (0x01, 3, 5, 1000),
    (0x02, 2, 2, 77),
    (0x03, 4, 7, 3),
    (0x04, 3, 4, 101),
    (0x05, 2, 3, 70_001),
    (0x06, 5, 9, 100_000),
];

#[test]
fn known_answer_vectors() {
    assert_eq!(KATS.len(), SHAPES.len(), "regenerate the vectors");
    for &(seed, k, n, len, want) in KATS {
        let shares = split(seed, k, n, len);
        assert_eq!(digests(&shares), want, "{k}-of-{n}, {len} bytes");
        let last: Vec<SharePoint<'_>> =
            (n - k..n).map(|i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect();
        let rebuilt = Compact::new().rebuild(t(k, n), &last).unwrap();
        assert_eq!(&rebuilt[..len], &pattern(len)[..]);
    }
}

#[test]
#[ignore = "prints the known answers, only when the scheme changes on purpose: \
            cargo test -p vaultdb-core --test compact -- --ignored regen --nocapture"]
fn regen() {
    println!("const KATS: &[Kat] = &[");
    for &(seed, k, n, len) in SHAPES {
        let d = digests(&split(seed, k, n, len));
        println!("    ({seed:#04x}, {k}, {n}, {len}, &[");
        for s in d {
            println!("        \"{s}\",");
        }
        println!("    ]),");
    }
    println!("];");
}

/// Every vector's shares built from docs/FORMAT.md section 16 with another AES-CTR (the
/// `aes` 0.8 and `ctr` 0.9 crates) and schoolbook field arithmetic: the key is the first 32
/// bytes of the seed's stream and R_1, ..., R_{K-1} the next; key part `x` is
/// `key + x·R_1 + ... + x^(K-1)·R_(K-1)`; shard `x <= K` is bytes `(x-1)·S .. x·S` of the
/// zero-extended secret encrypted with AES-256-CTR under the key (counter from zero); shard
/// `x > K` is Leopard-RS recovery shard `x - K - 1` of the K original shards.
#[test]
fn vectors_follow_the_format() {
    use ctr09::cipher::{KeyIvInit, StreamCipher};
    for &(seed, k, n, len) in SHAPES {
        let th = t(k, n);
        let shares = split(seed, k, n, len);
        let s = shard_len(th, len);
        assert!(
            shares.iter().all(|sh| sh.len() == KEY_LEN + s && s.is_multiple_of(2) && s * k >= len)
        );
        let mut stream = vec![0u8; KEY_LEN * k];
        ctr09::Ctr128BE::<aes08::Aes256>::new(&[seed; 32].into(), &[0u8; 16].into())
            .apply_keystream(&mut stream);
        let (key, coeffs) = stream.split_at(KEY_LEN);
        for (i, share) in shares.iter().enumerate() {
            let x = i as u8 + 1;
            for p in 0..KEY_LEN {
                let mut y = key[p];
                let mut xp = 1u8;
                for r in coeffs.chunks(KEY_LEN) {
                    xp = gf256::mul(xp, x);
                    y ^= gf256::mul(xp, r[p]);
                }
                assert_eq!(share[p], y, "{k}-of-{n}: key part {x}, byte {p}");
            }
        }
        let mut cipher = pattern(len);
        cipher.resize(k * s, 0);
        ctr09::Ctr128BE::<aes08::Aes256>::new(key.into(), &[0u8; 16].into())
            .apply_keystream(&mut cipher);
        for (i, share) in shares.iter().take(k).enumerate() {
            assert_eq!(share[KEY_LEN..], cipher[i * s..(i + 1) * s], "{k}-of-{n}: shard {i}");
        }
        if n > k {
            let recovery =
                reed_solomon_simd::encode(k, n - k, cipher.chunks(s).collect::<Vec<_>>()).unwrap();
            for (j, share) in shares.iter().skip(k).enumerate() {
                assert_eq!(share[KEY_LEN..], recovery[j], "{k}-of-{n}: recovery {j}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any K shares, in any order, rebuild the secret (zero-extended to K·S bytes); repair
    /// derives any share exactly; a change in any share's bytes changes what it rebuilds.
    #[test]
    fn any_k_rebuild_and_derive(
        (k, n, secret, seed, subset, target, flip) in (2usize..=7)
            .prop_flat_map(|n| (2..=n, Just(n)))
            .prop_flat_map(|(k, n)| (
                Just(k),
                Just(n),
                proptest::collection::vec(any::<u8>(), 0..3000),
                any::<[u8; 32]>(),
                subsequence((0..n).collect::<Vec<_>>(), k).prop_shuffle(),
                0..n,
                any::<prop::sample::Index>(),
            ))
    ) {
        let th = t(k, n);
        let c = Compact::new();
        let shares = c.split(th, &secret, &mut CsRng::from_seed(seed)).unwrap();
        prop_assert!(shares.iter().all(|s| s.len() == share_len(th, secret.len())));
        let pts: Vec<SharePoint<'_>> =
            subset.iter().map(|&i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect();
        let rebuilt = c.rebuild(th, &pts).unwrap();
        prop_assert_eq!(&rebuilt[..secret.len()], &secret[..]);
        prop_assert!(rebuilt[secret.len()..].iter().all(|&b| b == 0));
        prop_assert_eq!(&c.derive(th, &pts, target as u8 + 1).unwrap(), &shares[target]);
        // Fewer than K: refused.
        prop_assert!(c.rebuild(th, &pts[..k - 1]).is_err());
        // One changed byte in one of the K shares: a different secret.
        let victim = subset[0];
        let mut bad = shares[victim].clone();
        let at = flip.index(bad.len());
        bad[at] ^= 0x10;
        let mut pts = pts;
        pts[0] = SharePoint { x: victim as u8 + 1, y: &bad };
        prop_assert_ne!(&c.rebuild(th, &pts).unwrap()[..], &rebuilt[..]);
    }

    /// The key parts are an XorIDA split of the key with the next (K-1)·32 bytes of the
    /// stream, so tests/secrecy.rs's exhaustive proof applies to them; and the shards do not
    /// depend on those coefficients (only on the key and the secret).
    #[test]
    fn key_parts_are_an_xorida_split_of_the_key(
        (k, n) in (2usize..=6).prop_flat_map(|n| (2..=n, Just(n))),
        secret in proptest::collection::vec(any::<u8>(), 0..500),
        seed in any::<[u8; 32]>(),
    ) {
        let th = t(k, n);
        let shares = Compact::new().split(th, &secret, &mut CsRng::from_seed(seed)).unwrap();
        let mut rng = CsRng::from_seed(seed);
        let mut key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut key);
        let parts = Xorida::new().split(th, &key, &mut rng);
        for (share, part) in shares.iter().zip(&parts) {
            prop_assert_eq!(&share[..KEY_LEN], &part[..]);
        }
    }
}

/// The real compact split, 2-of-3, exhaustively over one key byte and its coefficient byte
/// (the others fixed): for every key value the key-part byte of any single share takes each
/// of the 256 values exactly once as the coefficient runs over its 256 values, so one share's
/// key part says nothing about the key. Two shares do determine it (the test can fail).
#[test]
fn the_key_parts_of_k_minus_1_shares_are_independent_of_the_key() {
    let th = t(2, 3);
    let c = Compact::new();
    let secret = pattern(40);
    let mut pairs = std::collections::HashSet::new();
    for key0 in 0..=255u8 {
        let mut hist = vec![vec![0u32; 256]; 3];
        for r0 in 0..=255u8 {
            let mut bytes = vec![0x5c; 2 * KEY_LEN];
            bytes[0] = key0;
            bytes[KEY_LEN] = r0;
            let mut rng = Scripted::new(bytes);
            let shares = c.split(th, &secret, &mut rng).unwrap();
            assert_eq!(rng.used(), 2 * KEY_LEN, "one key and K-1 coefficients");
            for (h, share) in hist.iter_mut().zip(&shares) {
                h[usize::from(share[0])] += 1;
            }
            if r0 == 0x17 {
                pairs.insert((shares[0][0], shares[1][0]));
            }
        }
        // Uniform for every key byte, so the same distribution whatever the key.
        assert!(hist.iter().all(|h| h.iter().all(|&c| c == 1)), "key byte {key0}: not uniform");
    }
    assert_eq!(pairs.len(), 256, "two shares determine the key byte");
}
