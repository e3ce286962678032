//! Deterministic data sources: [`Generator`] for streaming tests and benchmarks,
//! [`Scripted`] random bytes for tests that enumerate a split's coefficients.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use vaultdb_core::rng::RandomSource;

/// `len` deterministic pseudo-random bytes (xorshift64 from `seed`), produced as they are
/// read: a test that streams a large record from a `Generator` proves it never needed the
/// whole record in memory. Reads return at most 1531 bytes, so read boundaries never line
/// up with segment boundaries.
#[derive(Clone, Debug)]
pub struct Generator {
    state: u64,
    left: u64,
}

impl Generator {
    /// `len` bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Self {
        Self { state: seed | 1, left: len }
    }

    /// The same bytes as `Generator::new(seed, len)` yields, in one buffer (for small
    /// expected values).
    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut g = Self::new(seed, len as u64);
        let mut out = vec![0u8; len];
        g.fill(&mut out);
        out
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// Fills `buf` with the next bytes of the sequence (ignoring the length limit).
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state as u8;
        }
    }
}

impl AsyncRead for Generator {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(1531) as usize;
        let mut chunk = [0u8; 1531];
        self.fill(&mut chunk[..n]);
        self.left -= n as u64;
        buf.put_slice(&chunk[..n]);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_match_bytes_and_stop_at_len() {
        let mut g = Generator::new(5, 5000);
        let mut got = Vec::new();
        g.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, Generator::bytes(5, 5000));
        assert_ne!(Generator::bytes(5, 64), Generator::bytes(6, 64));
        assert_eq!(g.remaining(), 0);
    }
}

/// A [`RandomSource`] that hands out exactly the bytes it was given, in order, once: a test
/// that enumerates the random values of a split (every coefficient byte, every key byte)
/// scripts them here, and [`used`](Self::used) says how many the split drew. Drawing more
/// than were scripted panics.
#[derive(Clone, Debug)]
pub struct Scripted {
    bytes: Vec<u8>,
    used: usize,
}

impl Scripted {
    /// A source of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, used: 0 }
    }

    /// How many bytes have been drawn so far.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl RandomSource for Scripted {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.used + dest.len();
        assert!(
            end <= self.bytes.len(),
            "drew {end} random bytes, more than the {} scripted",
            self.bytes.len()
        );
        dest.copy_from_slice(&self.bytes[self.used..end]);
        self.used = end;
    }
}
