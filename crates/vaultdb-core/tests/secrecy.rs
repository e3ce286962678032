//! Perfect secrecy, checked exhaustively for one-byte secrets: for (K, N) in {(2, 3), (3, 4)}
//! and every set of K-1 share indices, the joint distribution of those K-1 share bytes over
//! all 256^(K-1) random coefficient values is the same for every one of the 256 secrets, and
//! it is uniform (each tuple occurs exactly once).
//!
//! The real `Xorida::split_into` runs on every kernel; the coefficients come from a
//! `RandomSource` that hands out the enumerated bytes, so a split that skipped, biased or
//! reordered random bytes, or drew more of them, would fail here.

use vaultdb_core::gf256::Kernel;
use vaultdb_core::{Threshold, Xorida};
use vaultdb_testkit::Scripted;

/// All subsets of `0..n` of size `m`, as sorted index lists.
fn subsets(n: usize, m: usize) -> Vec<Vec<usize>> {
    (0u32..1 << n)
        .filter(|mask| mask.count_ones() as usize == m)
        .map(|mask| (0..n).filter(|i| mask >> i & 1 == 1).collect())
        .collect()
}

fn exhaustive(k: usize, n: usize, kernel: Kernel) {
    let t = Threshold::new(k, n).unwrap();
    let x = Xorida::with_kernel(kernel);
    let sets = subsets(n, k - 1);
    let cells = 1usize << (8 * (k - 1)); // 256^(K-1) tuples and as many coefficient choices
    let mut reference: Option<Vec<Vec<u32>>> = None;
    let mut shares = vec![[0u8; 1]; n];
    for secret in 0..=255u8 {
        // One histogram of share-byte tuples per subset.
        let mut hist = vec![vec![0u32; cells]; sets.len()];
        for r in 0..cells {
            let coeffs: Vec<u8> = (0..k - 1).map(|j| (r >> (8 * j)) as u8).collect();
            let mut rng = Scripted::new(coeffs);
            let mut outs: Vec<&mut [u8]> = shares.iter_mut().map(|s| &mut s[..]).collect();
            x.split_into(t, &[secret], &mut rng, &mut outs);
            assert_eq!(rng.used(), k - 1, "split must draw exactly K-1 bytes per secret byte");
            for (h, set) in hist.iter_mut().zip(&sets) {
                let tuple = set.iter().fold(0usize, |acc, &i| acc << 8 | usize::from(shares[i][0]));
                h[tuple] += 1;
            }
        }
        for (h, set) in hist.iter().zip(&sets) {
            assert!(
                h.iter().all(|&c| c == 1),
                "{t} on {}: shares {set:?} are not uniform for secret {secret}",
                kernel.isa()
            );
        }
        match &reference {
            None => reference = Some(hist),
            Some(first) => assert!(
                *first == hist,
                "{t} on {}: the distribution depends on the secret ({secret} vs 0)",
                kernel.isa()
            ),
        }
    }
}

#[test]
fn two_of_three_is_perfectly_secret() {
    for kernel in Kernel::available() {
        exhaustive(2, 3, kernel);
    }
}

#[test]
fn three_of_four_is_perfectly_secret() {
    // 256 secrets x 65536 coefficient pairs = 16.8 million splits: the best kernel only (the
    // kernels agree byte for byte, tests/engine.rs and tests/properties.rs).
    exhaustive(3, 4, Kernel::best());
}

/// A sanity check that the test can fail: K-1+1 = K shares do depend on the secret.
#[test]
fn k_shares_are_not_secret() {
    let t = Threshold::new(2, 3).unwrap();
    let x = Xorida::new();
    let mut seen = std::collections::HashSet::new();
    for secret in 0..=255u8 {
        // With R fixed, two shares determine the secret: all 256 pairs differ.
        let shares = x.split(t, &[secret], &mut Scripted::new(vec![0x42]));
        seen.insert((shares[0][0], shares[1][0]));
    }
    assert_eq!(seen.len(), 256);
}
