//! [`Crashing`]: the writer dies after `m` puts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use vaultdb_core::backend::{BackendError, Key, PutMode, StorageBackend};

use crate::{forward_backend, handle_and_inner, handle_debug};

/// No limit: the wrapper is transparent.
const UNLIMITED: u64 = u64::MAX;

/// A wrapper that lets `m` puts through and then behaves as if the writing process had died:
/// every later `put` and `delete` fails with a transient error without reaching the inner
/// backend, so whatever the writer had done so far stays as it was. Reads (`get`,
/// `list_page`) keep working, so a test can look at what the "crash" left behind.
///
/// Every put call that reaches the inner backend counts against the budget, whether it
/// succeeds or not. [`CrashingHandle::reset`] brings the writer back (no limit any more);
/// [`CrashingHandle::arm`] sets a new budget.
#[derive(Debug)]
pub struct Crashing<B> {
    inner: B,
    ctl: CrashingHandle,
}

/// Controls a [`Crashing`] wrapper; clones control the same wrapper.
#[derive(Clone)]
pub struct CrashingHandle {
    state: Arc<CrashState>,
}

struct CrashState {
    remaining: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl<B: StorageBackend> Crashing<B> {
    /// Wraps `inner`, accepting `puts` puts before the crash.
    pub fn new(inner: B, puts: u64) -> Self {
        let state = CrashState {
            remaining: AtomicU64::new(puts),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        };
        Self { inner, ctl: CrashingHandle { state: Arc::new(state) } }
    }

    fn crashed_error(&self, what: &str) -> BackendError {
        self.ctl.state.refused.fetch_add(1, Ordering::SeqCst);
        BackendError::transient(format!("injected crash: {what} on {} refused", self.inner.id()))
    }
}

handle_and_inner!(Crashing, CrashingHandle, "The handle that re-arms or resets the crash.");

impl CrashingHandle {
    /// Accept `puts` more puts from now on, then crash again.
    pub fn arm(&self, puts: u64) {
        // `UNLIMITED` is reserved for "no crash"; a budget that large is the same thing.
        self.state.remaining.store(puts, Ordering::SeqCst);
    }

    /// Bring the writer back: from now on nothing fails.
    pub fn reset(&self) {
        self.state.remaining.store(UNLIMITED, Ordering::SeqCst);
    }

    /// True once the budget is used up (puts and deletes fail).
    pub fn crashed(&self) -> bool {
        self.state.remaining.load(Ordering::SeqCst) == 0
    }

    /// Puts still accepted before the crash (`None` when there is no limit).
    pub fn remaining(&self) -> Option<u64> {
        let r = self.state.remaining.load(Ordering::SeqCst);
        (r != UNLIMITED).then_some(r)
    }

    /// Puts passed to the inner backend so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Puts and deletes refused because of the crash so far.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

handle_debug!(CrashingHandle { remaining, accepted, refused });

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Crashing<B> {
        forward id, name, get, list_page to self.inner;

        async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
            let remaining = &self.ctl.state.remaining;
            let took = remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| match r {
                UNLIMITED => Some(UNLIMITED),
                0 => None,
                r => Some(r - 1),
            });
            if took.is_err() {
                return Err(self.crashed_error("put"));
            }
            self.ctl.state.accepted.fetch_add(1, Ordering::SeqCst);
            self.inner.put(key, data, mode).await
        }

        async fn delete(&self, key: &Key) -> Result<(), BackendError> {
            if self.ctl.crashed() {
                return Err(self.crashed_error("delete"));
            }
            self.inner.delete(key).await
        }
    }
}
