//! Property tests of the sharing scheme: any K shares rebuild the secret, fewer fail with
//! INSUFFICIENT_SHARES, repair (`derive`) reproduces lost shares exactly, and every kernel
//! produces the same shares from the same random stream.

use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::strategy::ValueTree;
use vaultdb_core::gf256::Kernel;
use vaultdb_core::rng::CsRng;
use vaultdb_core::{ErrorCode, SharePoint, Threshold, Xorida};

/// `(k, n)` with `2 <= k <= n <= max_n`.
fn k_n(max_n: usize) -> impl Strategy<Value = (usize, usize)> {
    (2..=max_n).prop_flat_map(|n| (2..=n, Just(n)))
}

/// A threshold, a secret, a seed, a K-subset of share indices (0-based) in random order, a
/// share index to derive, and a count below K.
#[allow(clippy::type_complexity)]
fn case(
    kn: impl Strategy<Value = (usize, usize)>,
    max_len: usize,
) -> impl Strategy<Value = (usize, usize, Vec<u8>, [u8; 32], Vec<usize>, usize, usize)> {
    kn.prop_flat_map(move |(k, n)| {
        (
            Just(k),
            Just(n),
            proptest::collection::vec(any::<u8>(), 0..=max_len),
            any::<[u8; 32]>(),
            subsequence((0..n).collect::<Vec<_>>(), k).prop_shuffle(),
            0..n,
            0..k,
        )
    })
}

fn points<'a>(shares: &'a [Vec<u8>], idx: &[usize]) -> Vec<SharePoint<'a>> {
    idx.iter().map(|&i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect()
}

/// Checks every property for one case; shared by the small-N and N = 255 strategies.
fn check(
    k: usize,
    n: usize,
    secret: &[u8],
    seed: [u8; 32],
    subset: &[usize],
    target: usize,
    fewer: usize,
) -> Result<(), TestCaseError> {
    let t = Threshold::new(k, n).unwrap();
    let x = Xorida::new();
    let shares = x.split(t, secret, &mut CsRng::from_seed(seed));
    prop_assert_eq!(shares.len(), n);
    prop_assert!(shares.iter().all(|s| s.len() == secret.len()));

    // Any K shares, in any order, rebuild the secret.
    let pts = points(&shares, subset);
    prop_assert_eq!(&x.rebuild(t, &pts).unwrap()[..], secret);

    // Repair: the polynomial through the K shares, evaluated at x_j, is share j.
    let derived = x.derive(t, &pts, target as u8 + 1).unwrap();
    prop_assert_eq!(&derived, &shares[target]);

    // Fewer than K shares is INSUFFICIENT_SHARES, for rebuild and for derive.
    let few = &pts[..fewer];
    prop_assert_eq!(x.rebuild(t, few).unwrap_err().code(), ErrorCode::InsufficientShares);
    prop_assert_eq!(
        x.derive(t, few, target as u8 + 1).unwrap_err().code(),
        ErrorCode::InsufficientShares
    );

    // Every kernel makes the same shares from the same seeded stream.
    for kernel in Kernel::available() {
        let other = Xorida::with_kernel(kernel).split(t, secret, &mut CsRng::from_seed(seed));
        prop_assert!(other == shares, "{} split differs", kernel.isa());
        let rebuilt = Xorida::with_kernel(kernel).rebuild(t, &pts).unwrap();
        prop_assert_eq!(&rebuilt[..], secret, "{} rebuild", kernel.isa());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_small_n((k, n, secret, seed, subset, target, fewer) in case(k_n(16), 2000)) {
        check(k, n, &secret, seed, &subset, target, fewer)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// N = 255, the largest share count, with small thresholds.
    #[test]
    fn prop_n_255((k, n, secret, seed, subset, target, fewer) in
        case((2usize..=8).prop_map(|k| (k, 255)), 2000))
    {
        check(k, n, &secret, seed, &subset, target, fewer)?;
    }
}

/// 255-of-255 once: every share is needed, and the order of the points does not matter.
#[test]
fn all_255_of_255() {
    let secret: Vec<u8> = (0..600u32).map(|i| (i * 89 + 5) as u8).collect();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let subset = subsequence((0..255).collect::<Vec<usize>>(), 255)
        .prop_shuffle()
        .new_tree(&mut runner)
        .unwrap()
        .current();
    assert_ne!(subset, (0..255).collect::<Vec<_>>(), "the order should be shuffled");
    check(255, 255, &secret, [0x25; 32], &subset, 77, 254).unwrap();
}

/// Having more than K shares is fine: the first K are used.
#[test]
fn extra_shares_are_ignored() {
    let t = Threshold::new(3, 6).unwrap();
    let x = Xorida::new();
    let secret = b"more than enough".to_vec();
    let shares = x.split(t, &secret, &mut CsRng::from_seed([9; 32]));
    let pts = points(&shares, &[5, 0, 3, 2, 1]);
    assert_eq!(*x.rebuild(t, &pts).unwrap(), secret);
}

/// Secrets longer than the 16 KiB step in which split and rebuild work, for K = 2 (one sweep)
/// and K > 2 (one sweep per coefficient), with a step boundary inside, at and after the end.
#[test]
fn secrets_longer_than_a_step() {
    for (k, n) in [(2, 3), (3, 5), (5, 8)] {
        for len in [16_383usize, 16_384, 16_385, 50_000] {
            let secret: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
            let subset: Vec<usize> = (n - k..n).rev().collect();
            check(k, n, &secret, [len as u8; 32], &subset, 0, k - 1).unwrap();
        }
    }
}
