//! Randomness: the seeded generator plans are drawn from.

use std::time::Duration;

use crate::Ops;

/// splitmix64: small, seedable, and good enough to pick operations and faults.
#[derive(Clone, Debug)]
pub(super) struct Prng(u64);

impl Prng {
    pub(super) fn new(seed: u64) -> Self {
        Prng(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// A number in `lo..=hi`.
    pub(super) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` percent.
    pub(super) fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    /// A duration in `lo..=hi` milliseconds.
    pub(super) fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }

    /// A non-empty random set of backend operations.
    pub(super) fn ops(&mut self) -> Ops {
        loop {
            let ops = Ops::from_bits(self.next() as u8);
            if !ops.is_empty() {
                return ops;
            }
        }
    }
}
