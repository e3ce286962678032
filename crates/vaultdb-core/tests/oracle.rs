//! An independent oracle: vsss-rs, a byte-wise Shamir implementation over GF(2^8) with the
//! AES polynomial and x coordinates 1, 2, 3, ...
//!
//! Its shares are `[x, y_0, y_1, ...]` (the x coordinate as a leading byte). Shares that
//! VaultDB makes must rebuild to the secret with `vsss_rs::Gf256::combine_array`, and shares
//! vsss-rs makes must rebuild with ours. Both fail if the field, the x coordinates or the
//! polynomial layout differ from the textbook scheme.

use proptest::prelude::*;
use proptest::sample::subsequence;
use vaultdb_core::gf256::{Kernel, mul};
use vaultdb_core::rng::CsRng;
use vaultdb_core::{SharePoint, Threshold, Xorida};

/// Our share `y` at x, in vsss-rs's layout.
fn to_vsss(x: u8, y: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(y.len() + 1);
    v.push(x);
    v.extend_from_slice(y);
    v
}

#[test]
fn same_field_multiplication() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let theirs = vsss_rs::Gf256(a) * vsss_rs::Gf256(b);
            assert_eq!(mul(a, b), theirs.0, "{a:#04x} * {b:#04x}");
        }
    }
}

#[test]
fn vsss_rs_combines_our_shares() {
    let mut seed = 0u8;
    for (k, n) in [(2, 2), (2, 3), (3, 5), (4, 7), (5, 5), (8, 16), (2, 255), (16, 255)] {
        let t = Threshold::new(k, n).unwrap();
        for len in [1usize, 2, 31, 100, 1000] {
            seed = seed.wrapping_add(1);
            let mut secret = vec![0u8; len];
            vaultdb_core::rng::RandomSource::fill_bytes(
                &mut CsRng::from_seed([seed ^ 0x80; 32]),
                &mut secret,
            );
            for kernel in Kernel::available() {
                let x = Xorida::with_kernel(kernel);
                let shares = x.split(t, &secret, &mut CsRng::from_seed([seed; 32]));
                // The last K shares in reverse order, and the first K.
                let last: Vec<Vec<u8>> =
                    (n - k..n).rev().map(|i| to_vsss(i as u8 + 1, &shares[i])).collect();
                let first: Vec<Vec<u8>> =
                    (0..k).map(|i| to_vsss(i as u8 + 1, &shares[i])).collect();
                for subset in [last, first] {
                    let got = vsss_rs::Gf256::combine_array(&subset).unwrap();
                    assert_eq!(got, secret, "{t}, {len} bytes, {}", kernel.isa());
                }
            }
        }
    }
}

#[test]
fn we_rebuild_vsss_rs_shares() {
    let mut rng = rand::rng();
    for (k, n) in [(2, 3), (3, 5), (5, 9), (10, 20)] {
        let t = Threshold::new(k, n).unwrap();
        for len in [1usize, 17, 500] {
            let secret: Vec<u8> = (0..len).map(|i| (i * 73 + k) as u8).collect();
            let shares = vsss_rs::Gf256::split_array(k, n, &secret, &mut rng).unwrap();
            let pts: Vec<SharePoint<'_>> =
                shares.iter().rev().take(k).map(|s| SharePoint { x: s[0], y: &s[1..] }).collect();
            for kernel in Kernel::available() {
                let got = Xorida::with_kernel(kernel).rebuild(t, &pts).unwrap();
                assert_eq!(*got, secret, "{t}, {len} bytes, {}", kernel.isa());
                // Repair agrees with vsss-rs's share at another x, too.
                let derived = Xorida::with_kernel(kernel).derive(t, &pts, shares[0][0]).unwrap();
                assert_eq!(derived[..], shares[0][1..]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_vsss_rs_combines_any_k_subset(
        (k, n, subset) in (2usize..=12)
            .prop_flat_map(|n| (2..=n, Just(n)))
            .prop_flat_map(|(k, n)| {
                (Just(k), Just(n), subsequence((0..n).collect::<Vec<_>>(), k).prop_shuffle())
            }),
        secret in proptest::collection::vec(any::<u8>(), 1..600),
        seed in any::<[u8; 32]>(),
    ) {
        let t = Threshold::new(k, n).unwrap();
        let shares = Xorida::new().split(t, &secret, &mut CsRng::from_seed(seed));
        let theirs: Vec<Vec<u8>> =
            subset.iter().map(|&i| to_vsss(i as u8 + 1, &shares[i])).collect();
        prop_assert_eq!(vsss_rs::Gf256::combine_array(&theirs).unwrap(), secret);
    }
}
