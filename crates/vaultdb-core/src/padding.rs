//! Padding policies: how much a secret is padded before it is split, so that stored sizes
//! reveal a size class rather than the exact size.

use serde::{Deserialize, Serialize};

/// How a secret's length is rounded up before splitting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "size")]
pub enum Padding {
    /// Padmé (Nikitin et al., PETS 2019): at most 12% overhead, and a padded length leaks
    /// only O(log log L) bits about L. The default.
    #[default]
    Padme,
    /// No padding: stored sizes reveal exact record sizes.
    None,
    /// Round up to the next power of two (at most 100% overhead, leaks O(log log L) bits).
    PowerOfTwo,
    /// Round up to a multiple of a fixed block size (bytes, at least 1).
    Block(u32),
}

impl Padding {
    /// The padded length for a secret of `len` bytes (always `>= len`).
    pub fn padded_len(self, len: usize) -> usize {
        match self {
            Padding::None => len,
            Padding::Padme => padme(len),
            Padding::PowerOfTwo => len.checked_next_power_of_two().unwrap_or(len),
            Padding::Block(b) => {
                let b = (b.max(1)) as usize;
                len.div_ceil(b).checked_mul(b).unwrap_or(len)
            }
        }
    }
}

/// Padmé: keep the top `floor(log2(E)) + 1` bits of L's `E + 1` significant bits (where
/// `E = floor(log2 L)`), rounding the rest up.
pub fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 L)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 E) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    len.checked_add(mask).map_or(len, |v| v & !mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_examples() {
        // Values from the Padmé paper's reference implementation.
        let examples =
            [(0, 0), (1, 1), (2, 2), (9, 10), (100, 104), (1000, 1024), (1_000_000, 1_015_808)];
        for (len, padded) in examples {
            assert_eq!(padme(len), padded, "{len}");
        }
        for len in 2..100_000usize {
            let p = padme(len);
            assert!(p >= len && (p - len) * 100 <= len * 12, "{len} -> {p}");
            assert_eq!(padme(p), p, "padded lengths are fixed points");
        }
    }

    #[test]
    fn other_policies() {
        assert_eq!(Padding::None.padded_len(77), 77);
        assert_eq!(Padding::PowerOfTwo.padded_len(77), 128);
        assert_eq!(Padding::PowerOfTwo.padded_len(128), 128);
        assert_eq!(Padding::Block(64).padded_len(77), 128);
        assert_eq!(Padding::Block(64).padded_len(0), 0);
        assert_eq!(Padding::Block(0).padded_len(5), 5);
    }
}
