//! Record versions: 64-bit hybrid-logical-clock microseconds and 64 random bits.
//!
//! Versions order writes: the newest complete version of a record wins. They are unique per
//! write (the random half), sortable as bytes and as their text form, and monotonic within
//! a process even if the wall clock steps back (the hybrid logical clock never goes below
//! the last value it gave or observed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::rng::RandomSource;

/// Length of a version's text form (base32hex, lowercase, unpadded).
pub const VERSION_TEXT_LEN: usize = 26;

/// A record version. Ordered by time, then by the random half.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    micros: u64,
    random: u64,
}

impl Version {
    /// A version from its parts.
    pub const fn from_parts(micros: u64, random: u64) -> Self {
        Self { micros, random }
    }

    /// The HLC timestamp in microseconds since the Unix epoch.
    pub const fn micros(self) -> u64 {
        self.micros
    }

    /// The random half.
    pub const fn random(self) -> u64 {
        self.random
    }

    /// The 16-byte big-endian encoding: micros then random.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.micros.to_be_bytes());
        b[8..].copy_from_slice(&self.random.to_be_bytes());
        b
    }

    /// Decodes [`Version::to_bytes`].
    pub fn from_bytes(b: [u8; 16]) -> Self {
        let (hi, lo) = b.split_at(8);
        Self {
            micros: u64::from_be_bytes(hi.try_into().unwrap_or_default()),
            random: u64::from_be_bytes(lo.try_into().unwrap_or_default()),
        }
    }

    /// The text form used in object keys: 26 characters of lowercase base32hex, which
    /// sorts in the same order as the version.
    pub fn to_text(self) -> String {
        crate::base32::BASE32.encode(&self.to_bytes())
    }

    /// Parses [`Version::to_text`]; `None` if it is not exactly that form.
    pub fn from_text(s: &str) -> Option<Self> {
        if s.len() != VERSION_TEXT_LEN {
            return None;
        }
        let bytes = crate::base32::decode_base32(s)?;
        Some(Self::from_bytes(bytes.try_into().ok()?))
    }
}

crate::base32::base32_fmt!(Version);

/// A hybrid logical clock: wall-clock microseconds, but never below what it gave or saw.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicU64,
}

impl Clock {
    /// A clock that has seen nothing yet.
    pub const fn new() -> Self {
        Self { last: AtomicU64::new(0) }
    }

    /// The process-wide clock.
    pub fn global() -> &'static Clock {
        static GLOBAL: Clock = Clock::new();
        &GLOBAL
    }

    /// This machine's wall clock, in microseconds since the Unix epoch: what versions are
    /// stamped with (before `max` with the last one).
    pub(crate) fn wall_micros() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
    }

    /// The next timestamp: `max(wall clock, last + 1)`.
    pub fn tick(&self) -> u64 {
        let now = Self::wall_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last.saturating_add(1));
            match self.last.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Records a timestamp seen elsewhere (another writer's version), so later ticks exceed
    /// it even if this machine's clock is behind.
    pub fn observe(&self, micros: u64) {
        self.last.fetch_max(micros, Ordering::AcqRel);
    }

    /// A fresh version: the next tick and 64 random bits.
    pub fn next_version(&self, rng: &mut dyn RandomSource) -> Version {
        let mut r = [0u8; 8];
        rng.fill_bytes(&mut r);
        Version { micros: self.tick(), random: u64::from_be_bytes(r) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CsRng;

    #[test]
    fn text_order_is_version_order() {
        let mut rng = CsRng::from_seed([3; 32]);
        let clock = Clock::new();
        let mut vs: Vec<Version> = (0..200).map(|_| clock.next_version(&mut rng)).collect();
        vs.push(Version::from_parts(0, 0));
        vs.push(Version::from_parts(u64::MAX, u64::MAX));
        vs.push(Version::from_parts(5, u64::MAX));
        vs.push(Version::from_parts(6, 0));
        for v in &vs {
            assert_eq!(v.to_text().len(), VERSION_TEXT_LEN);
            assert_eq!(Version::from_text(&v.to_text()), Some(*v));
            assert_eq!(Version::from_bytes(v.to_bytes()), *v);
        }
        let mut by_value = vs.clone();
        by_value.sort();
        let mut by_text = vs;
        by_text.sort_by_key(|v| v.to_text());
        assert_eq!(by_value, by_text);
    }

    #[test]
    fn clock_is_monotonic_and_observes() {
        let c = Clock::new();
        let a = c.tick();
        let b = c.tick();
        assert!(b > a);
        c.observe(b + 10_000_000_000);
        assert!(c.tick() > b + 10_000_000_000);
    }

    #[test]
    fn bad_text_is_rejected() {
        assert_eq!(Version::from_text(""), None);
        assert_eq!(Version::from_text("0000000000000000000000000"), None); // 25 chars
        assert_eq!(Version::from_text("000000000000000000000000000"), None); // 27 chars
        assert_eq!(Version::from_text("zzzzzzzzzzzzzzzzzzzzzzzzzz"), None); // not base32hex
        assert_eq!(Version::from_text("ABCDEFGHIJKLMNOPQRSTUV0000"), None); // uppercase
        // The last character carries 3 unused bits, which must be zero.
        assert_eq!(Version::from_text("00000000000000000000000001"), None);
    }
}
