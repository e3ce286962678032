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
//!
//! A returning buffer is wiped by a background thread (`vaultdb-wipe`, started on first
//! use) before it enters the pool, not by the thread that drops it: that thread is often
//! a put removing the version it superseded, and wiping three 1 MiB envelopes there cost
//! the put about 0.1 ms after its HMAC pass (2-of-3, 2026-12-07). Until it is wiped a
//! buffer is in no pool and is handed out to no one (as with any freed memory, its bytes
//! stay in the process until overwritten); if the thread cannot be started, the dropping
//! thread wipes it as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock, PoisonError};

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

/// Bytes (capacity) on their way to the pool through the wiping thread: counted against
/// [`MAX_POOLED_BYTES`] like the pool's own.
static WIPING: AtomicUsize = AtomicUsize::new(0);

/// The wiping thread's inbox, if it could be started.
static WIPER: OnceLock<Option<Mutex<Sender<Vec<u8>>>>> = OnceLock::new();

fn wiper() -> Option<&'static Mutex<Sender<Vec<u8>>>> {
    WIPER
        .get_or_init(|| {
            let (tx, rx) = channel::<Vec<u8>>();
            std::thread::Builder::new()
                .name("vaultdb-wipe".into())
                .spawn(move || {
                    for buf in rx {
                        let cap = buf.capacity();
                        wipe_and_pool(buf);
                        WIPING.fetch_sub(cap, Ordering::Relaxed);
                    }
                })
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// Wipes `buf` and pools it if there is room.
fn wipe_and_pool(mut buf: Vec<u8>) {
    // Wiped before it is pooled: the pool would otherwise keep the N shares of recent
    // records, K of which rebuild them, and a byte a later put did not overwrite would
    // carry one record's share to another record's backend.
    buf.as_mut_slice().zeroize();
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    // The oldest buffers make room (they may be of a size no longer asked for: a store of
    // another mode or threshold, an earlier record size).
    let mut held: usize = pool.iter().map(Vec::capacity).sum();
    while !pool.is_empty() && (pool.len() >= MAX_POOLED || held + buf.capacity() > MAX_POOLED_BYTES)
    {
        held -= pool.remove(0).capacity();
    }
    if held + buf.capacity() <= MAX_POOLED_BYTES {
        pool.push(buf);
    }
}

/// A pooled buffer of `len` bytes, all zero (wiped when it was pooled),
/// if the pool has one whose capacity is between `len` and an eighth more.
pub(crate) fn take(len: usize) -> Option<Vec<u8>> {
    if len < MIN_POOLED {
        return None;
    }
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let at = pool.iter().position(|v| v.capacity() >= len && v.capacity() - len <= len / 8)?;
    // `remove`, not `swap_remove`: the pool stays oldest first, for eviction.
    let mut v = pool.remove(at);
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
        let buf = std::mem::take(&mut self.0);
        let cap = buf.capacity();
        // More than the pool can hold on its way there already: freed, not pooled.
        if cap > MAX_POOLED_BYTES || WIPING.load(Ordering::Relaxed) + cap > MAX_POOLED_BYTES {
            return;
        }
        // To the wiping thread, or, without one, wiped here.
        let buf = match wiper() {
            Some(tx) => {
                WIPING.fetch_add(cap, Ordering::Relaxed);
                match tx.lock().unwrap_or_else(PoisonError::into_inner).send(buf) {
                    Ok(()) => return,
                    Err(returned) => {
                        WIPING.fetch_sub(cap, Ordering::Relaxed);
                        returned.0
                    }
                }
            }
            None => buf,
        };
        wipe_and_pool(buf);
    }
}

/// Waits (up to `limit`) until every buffer on its way to the pool has arrived: for tests.
#[cfg(test)]
fn settle(limit: std::time::Duration) {
    let start = std::time::Instant::now();
    while WIPING.load(Ordering::Relaxed) > 0 && start.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large buffer handed out as `Bytes` comes back when its last clone is dropped, and
    /// is handed out again for a request of about its size; small ones never are. (Other
    /// tests may use the pool at the same time, so only this test's buffer is looked for,
    /// and a few tries are allowed: their buffers may push it out.)
    #[test]
    fn large_buffers_are_recycled() {
        let len = MIN_POOLED + 4321;
        let mut found = None;
        for _ in 0..20 {
            let buf = vec![7u8; len];
            let ptr = buf.as_ptr();
            let bytes = into_bytes(buf);
            let clone = bytes.clone();
            assert_eq!(&clone[..], &vec![7u8; len][..]);
            drop(bytes);
            drop(clone);
            settle(std::time::Duration::from_secs(10));
            let mut others = Vec::new();
            while let Some(v) = take(len - 100) {
                if v.as_ptr() == ptr {
                    found = Some(v);
                    break;
                }
                others.push(v);
            }
            if found.is_some() {
                break;
            }
        }
        let v = found.expect("the buffer came back to the pool");
        assert_eq!(v.len(), len - 100);
        assert!(v.iter().all(|&b| b == 0), "a pooled buffer comes back wiped");
        assert!(take(MIN_POOLED - 1).is_none(), "small requests are not served");
        let small = into_bytes(vec![1u8; 10]);
        assert_eq!(&small[..], &[1u8; 10]);
    }
}
