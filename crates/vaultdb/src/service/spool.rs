//! The spool: data of unknown length (a put from standard input, a raw REST put without
//! `Content-Length`) kept in an anonymous temporary file until its length is known, since a
//! stored record's length is written before its segments.
//!
//! The file never holds the plaintext: each spool draws a fresh 32-byte key from the
//! operating system, held only in memory and wiped on drop, and the bytes are XOR-ed with
//! the AES-256-CTR keystream of that key ([`CsRng::from_seed`], docs/FORMAT.md section 3) as
//! they are written, and again as they are read back. A key is used for one spool only, and
//! each position of its keystream encrypts one byte, so the keystream is a sound stream
//! cipher here; the unlinked file's blocks, which stay on the host's disk after the put, are
//! ciphertext under a key that is gone. Memory stays bounded: the data passes through one
//! buffer of [`CHUNK`] bytes, and the keystream is made [`CHUNK`] bytes at a time; both
//! buffers are wiped on drop.

use std::io::{self, Read, Seek, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, ReadBuf};
use vaultdb_core::rng::{CsRng, RandomSource};
use zeroize::Zeroizing;

/// The bytes read, encrypted and written at a time, and the keystream buffer's size.
pub const CHUNK: usize = 64 << 10;

/// Why a spool stopped.
#[derive(Debug)]
pub enum SpoolError {
    /// The caller's stop flag was set (Ctrl-C).
    Stopped,
    /// The data is over the limit: reading stopped once it had more than `max` bytes.
    TooLarge,
    /// The data could not be read.
    Read(io::Error),
    /// The temporary file (or its key) could not be made, written or rewound.
    Temp(io::Error),
}

/// The keystream of one spool: AES-256-CTR under a key drawn from the OS.
struct Keystream {
    key: Zeroizing<[u8; 32]>,
    /// Boxed: the expanded key is large, and a spool is moved about.
    rng: Box<CsRng>,
    buf: Zeroizing<Vec<u8>>,
}

impl Keystream {
    /// A fresh key from the operating system.
    fn from_os() -> io::Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(&mut key[..])
            .map_err(|e| io::Error::other(format!("the OS random generator failed: {e}")))?;
        let rng = Box::new(CsRng::from_seed(*key));
        Ok(Self { key, rng, buf: Zeroizing::new(vec![0u8; CHUNK]) })
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    fn apply(&mut self, data: &mut [u8]) {
        for piece in data.chunks_mut(CHUNK) {
            let ks = &mut self.buf[..piece.len()];
            self.rng.fill_bytes(ks);
            for (d, k) in piece.iter_mut().zip(ks.iter()) {
                *d ^= k;
            }
        }
    }

    /// Back to the keystream's start (to read the file again from its start).
    fn restart(&mut self) {
        *self.rng = CsRng::from_seed(*self.key);
    }
}

/// One chunk read into a spool: counted against `max` (refused past it, before anything of
/// it is written) and encrypted in place, ready to be written. Both copies (from a blocking
/// reader and from a request body) go through here.
fn seal_chunk(
    ks: &mut Keystream,
    chunk: &mut [u8],
    len: &mut u64,
    max: u64,
) -> Result<(), SpoolError> {
    *len += chunk.len() as u64;
    if *len > max {
        return Err(SpoolError::TooLarge);
    }
    ks.apply(chunk);
    Ok(())
}

/// A spooled copy of some data: an anonymous temporary file holding it encrypted, read
/// back (decrypted) from its start with [`Read`] or [`AsyncRead`]. `F` is the file:
/// `std::fs::File`, or `tokio::fs::File` ([`Spool::into_async`]).
pub struct Spool<F = std::fs::File> {
    file: F,
    ks: Keystream,
    len: u64,
}

impl<F> std::fmt::Debug for Spool<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Spool").field("len", &self.len).finish_non_exhaustive()
    }
}

impl<F> Spool<F> {
    /// The data's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The temporary file itself, as it lies on disk (encrypted): for tests.
    #[cfg(test)]
    pub(crate) fn raw_file(&mut self) -> &mut F {
        &mut self.file
    }
}

impl Spool<std::fs::File> {
    /// Copies `from` into a new spool (in `TMPDIR`), [`CHUNK`] bytes at a time, and returns
    /// it rewound. Checks `stop` before each read. Stops with [`SpoolError::TooLarge`] once
    /// it has read more than `max` bytes: an endless input costs `max` bytes of disk, not
    /// all of it.
    ///
    /// # Errors
    /// See [`SpoolError`]; reads interrupted by a signal are retried.
    pub fn copy(
        mut from: impl Read,
        max: u64,
        stop: impl Fn() -> bool,
    ) -> Result<Self, SpoolError> {
        let mut file = tempfile::tempfile().map_err(SpoolError::Temp)?;
        let mut ks = Keystream::from_os().map_err(SpoolError::Temp)?;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut len = 0u64;
        loop {
            if stop() {
                return Err(SpoolError::Stopped);
            }
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SpoolError::Read(e)),
            };
            seal_chunk(&mut ks, &mut buf[..n], &mut len, max)?;
            file.write_all(&buf[..n]).map_err(SpoolError::Temp)?;
        }
        file.rewind().map_err(SpoolError::Temp)?;
        ks.restart();
        Ok(Self { file, ks, len })
    }

    /// Back to the data's start.
    ///
    /// # Errors
    /// If the file cannot be rewound.
    pub fn rewind(&mut self) -> io::Result<()> {
        self.file.rewind()?;
        self.ks.restart();
        Ok(())
    }

    /// The same spool, read through tokio, from where it is.
    pub fn into_async(self) -> Spool<tokio::fs::File> {
        let Self { file, ks, len } = self;
        Spool { file: tokio::fs::File::from_std(file), ks, len }
    }
}

impl Spool<tokio::fs::File> {
    /// [`Spool::copy`] for an asynchronous reader (a request body), without a stop flag.
    ///
    /// # Errors
    /// See [`SpoolError`] (never `Stopped`).
    pub async fn copy_async(
        from: &mut (impl AsyncRead + Unpin),
        max: u64,
    ) -> Result<Self, SpoolError> {
        let file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(|e| SpoolError::Temp(io::Error::other(e)))?
            .map_err(SpoolError::Temp)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut ks = Keystream::from_os().map_err(SpoolError::Temp)?;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut len = 0u64;
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SpoolError::Read(e)),
            };
            seal_chunk(&mut ks, &mut buf[..n], &mut len, max)?;
            file.write_all(&buf[..n]).await.map_err(SpoolError::Temp)?;
        }
        file.flush().await.map_err(SpoolError::Temp)?;
        file.rewind().await.map_err(SpoolError::Temp)?;
        ks.restart();
        Ok(Self { file, ks, len })
    }
}

impl Read for Spool<std::fs::File> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.ks.apply(&mut buf[..n]);
        Ok(n)
    }
}

impl AsyncRead for Spool<tokio::fs::File> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.file).poll_read(cx, buf))?;
        this.ks.apply(&mut buf.filled_mut()[before..]);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recognizable 1 MiB (plus a partial chunk): numbered lines of text.
    fn pattern() -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0u64;
        while v.len() < (1 << 20) + 1000 {
            v.extend_from_slice(format!("plaintext record line {i:010}\n").as_bytes());
            i += 1;
        }
        v
    }

    /// Whether `raw` holds a 64-byte window of `plain` at a multiple of 64: it does if it
    /// holds any run of 127 bytes or more of `plain`.
    fn leaks(plain: &[u8], raw: &[u8]) -> bool {
        let windows: std::collections::HashSet<&[u8]> = plain.windows(64).collect();
        raw.chunks_exact(64).any(|c| windows.contains(c))
    }

    /// A reader that gives at most 1000 bytes a call, so chunks do not line up.
    struct Dribble<'a>(&'a [u8]);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_file_holds_ciphertext_and_reads_back_exactly() {
        let plain = pattern();
        let mut s = Spool::copy(Dribble(&plain), 2 << 20, || false).unwrap();
        assert_eq!(s.len(), plain.len() as u64);
        let mut raw = Vec::new();
        s.raw_file().read_to_end(&mut raw).unwrap();
        assert_eq!(raw.len(), plain.len());
        assert!(!leaks(&plain, &raw), "the temporary file holds the plaintext");
        assert!(leaks(&plain, &plain), "the check finds the plaintext");
        // Read back through the spool, after a rewind, in odd-sized reads.
        s.rewind().unwrap();
        let mut back = Vec::new();
        let mut piece = vec![0u8; 70_001];
        loop {
            let n = s.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&piece[..n]);
        }
        assert!(back == plain, "read back differs");
        // Again from the start, as `put --json-input` reads it twice.
        s.rewind().unwrap();
        let mut again = Vec::new();
        s.read_to_end(&mut again).unwrap();
        assert!(again == plain, "read back after a rewind differs");
        // A second spool of the same data: a fresh key, other ciphertext.
        let mut t = Spool::copy(&plain[..], 2 << 20, || false).unwrap();
        let mut raw2 = Vec::new();
        t.raw_file().read_to_end(&mut raw2).unwrap();
        assert!(raw2 != raw, "two spools share a key");
    }

    #[tokio::test]
    async fn the_async_spool_holds_ciphertext_and_reads_back_exactly() {
        let plain = pattern();
        let mut s = Spool::copy_async(&mut &plain[..], 2 << 20).await.unwrap();
        assert_eq!(s.len(), plain.len() as u64);
        let mut raw = Vec::new();
        s.raw_file().read_to_end(&mut raw).await.unwrap();
        assert_eq!(raw.len(), plain.len());
        assert!(!leaks(&plain, &raw), "the temporary file holds the plaintext");
        s.raw_file().rewind().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert!(back == plain, "read back differs");
        // A synchronous spool read through tokio.
        let mut t = Spool::copy(&plain[..], 2 << 20, || false).unwrap().into_async();
        let mut back = Vec::new();
        t.read_to_end(&mut back).await.unwrap();
        assert!(back == plain, "read back through tokio differs");
    }

    #[test]
    fn limits_hold() {
        let data = vec![7u8; 3 * CHUNK];
        let over = Spool::copy(&data[..], data.len() as u64 - 1, || false);
        assert!(matches!(over, Err(SpoolError::TooLarge)), "{over:?}");
        let exact = Spool::copy(&data[..], data.len() as u64, || false).unwrap();
        assert_eq!(exact.len(), data.len() as u64);
        let stopped = Spool::copy(&data[..], u64::MAX, || true);
        assert!(matches!(stopped, Err(SpoolError::Stopped)), "{stopped:?}");
        let empty = Spool::copy(&[][..], 0, || false).unwrap();
        assert!(empty.is_empty());
    }

    #[tokio::test]
    async fn the_async_limit_holds() {
        let data = vec![7u8; 3 * CHUNK];
        let over = Spool::copy_async(&mut &data[..], data.len() as u64 - 1).await;
        assert!(matches!(over, Err(SpoolError::TooLarge)), "{over:?}");
        let exact = Spool::copy_async(&mut &data[..], data.len() as u64).await.unwrap();
        assert_eq!(exact.len(), data.len() as u64);
    }
}
