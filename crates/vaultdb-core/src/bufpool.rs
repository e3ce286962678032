//! Recycled envelope buffers: large share envelopes go back to a small process-wide pool
//! when the last handle to their bytes is dropped (a backend finished uploading them, or a
//! memory backend deleted them), and the next put takes its envelope buffers from there.
//!
//! A fresh 1 MiB buffer costs its page faults (the kernel maps and zeroes every 4 KiB page
//! at first touch) and, when the allocator reuses memory, `calloc`'s zero fill: `perf` of
//! 1 MiB puts over memory backends (2-of-3, 2026-12-06) found 0.6-0.7x the HMAC's CPU
//! time in page faults on the calling thread, plus 5-8% of the put in `calloc`'s memset,
//! most of the put's cost over the HMAC. A recycled buffer has neither: its pages are
//! mapped, and it was wiped when it came back (a memset, cheaper than faulting the pages in
//! again).
//!
//! The pool holds at most [`MAX_POOLED`] buffers and [`MAX_POOLED_BYTES`] bytes, and
//! only buffers of at least [`MIN_POOLED`] bytes. It holds envelopes that were stored
//! (shares, each revealing nothing of its secret without K-1 others), never secrets, and
//! holds them wiped: it never keeps the K shares that would rebuild a recent record.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use zeroize::Zeroize;

/// Buffers smaller than this are not pooled: the allocator serves them from memory it
/// already holds, with few page faults to save.
pub(crate) const MIN_POOLED: usize = 128 << 10;

/// The most buffers the pool holds.
pub(crate) const MAX_POOLED: usize = 16;

/// The most bytes (capacity) the pool holds.
pub(crate) const MAX_POOLED_BYTES: usize = 32 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A pooled buffer of `len` bytes, all zero (wiped when it was pooled),
/// if the pool has one whose capacity is between `len` and an eighth more.
pub(crate) fn take(len: usize) -> Option<Vec<u8>> {
    if len < MIN_POOLED {
        return None;
    }
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let at = pool.iter().position(|v| v.capacity() >= len && v.capacity() - len <= len / 8)?;
    let mut v = pool.swap_remove(at);
    drop(pool);
    // Only bytes past the old length are written (zeroed) here.
    v.resize(len, 0);
    Some(v)
}

/// `buf` as `Bytes` that return it to the pool when the last clone is dropped (if it is
/// large enough to pool).
pub(crate) fn into_bytes(buf: Vec<u8>) -> Bytes {
    if buf.capacity() < MIN_POOLED {
        return Bytes::from(buf);
    }
    Bytes::from_owner(Pooled(buf))
}

/// An envelope buffer that goes back to the pool when dropped.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        {
            let pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
            let held: usize = pool.iter().map(Vec::capacity).sum();
            if pool.len() >= MAX_POOLED || held + buf.capacity() > MAX_POOLED_BYTES {
                return;
            }
        }
        // Wiped before it is pooled (outside the lock): the pool would otherwise keep the
        // N shares of recent records, K of which rebuild them, and a byte a later put did
        // not overwrite would carry one record's share to another record's backend.
        buf.as_mut_slice().zeroize();
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        let held: usize = pool.iter().map(Vec::capacity).sum();
        if pool.len() < MAX_POOLED && held + buf.capacity() <= MAX_POOLED_BYTES {
            pool.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large buffer handed out as `Bytes` comes back when its last clone is dropped, and
    /// is handed out again for a request of about its size; small ones never are. (Other
    /// tests may use the pool at the same time, so only this test's buffer is looked for.)
    #[test]
    fn large_buffers_are_recycled() {
        let len = MIN_POOLED + 4321;
        let buf = vec![7u8; len];
        let ptr = buf.as_ptr();
        let bytes = into_bytes(buf);
        let clone = bytes.clone();
        assert_eq!(&clone[..], &vec![7u8; len][..]);
        drop(bytes);
        drop(clone);
        let mut found = None;
        let mut others = Vec::new();
        while let Some(v) = take(len - 100) {
            if v.as_ptr() == ptr {
                found = Some(v);
                break;
            }
            others.push(v);
        }
        let v = found.expect("the buffer came back to the pool");
        assert_eq!(v.len(), len - 100);
        assert!(v.iter().all(|&b| b == 0), "a pooled buffer comes back wiped");
        assert!(take(MIN_POOLED - 1).is_none(), "small requests are not served");
        let small = into_bytes(vec![1u8; 10]);
        assert_eq!(&small[..], &[1u8; 10]);
    }
}
