//! [`Counting`]: counts calls per operation.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use vaultdb_core::backend::{BackendError, StorageBackend};

use crate::{Ops, forward_backend, handle_and_inner};

/// A transparent wrapper that counts the calls made to each operation (every call,
/// whether it succeeds or fails), readable through its [`CountingHandle`].
#[derive(Debug)]
pub struct Counting<B> {
    inner: B,
    ctl: CountingHandle,
}

/// Reads and resets the counters of a [`Counting`] wrapper; clones share the counters.
#[derive(Clone, Default)]
pub struct CountingHandle {
    state: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    puts: AtomicU64,
    gets: AtomicU64,
    deletes: AtomicU64,
    list_pages: AtomicU64,
}

/// A snapshot of a [`Counting`] wrapper's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls to `put`.
    pub puts: u64,
    /// Calls to `get`.
    pub gets: u64,
    /// Calls to `delete`.
    pub deletes: u64,
    /// Calls to `list_page`.
    pub list_pages: u64,
}

impl CallCounts {
    /// All calls together.
    pub fn total(&self) -> u64 {
        self.puts + self.gets + self.deletes + self.list_pages
    }
}

impl<B: StorageBackend> Counting<B> {
    /// Wraps `inner` with all counters at zero.
    pub fn new(inner: B) -> Self {
        Self { inner, ctl: CountingHandle::default() }
    }

    /// Counts a call to `op`; run before every forwarded call, it never fails one.
    async fn admit(&self, op: Ops) -> Result<(), BackendError> {
        let s = &self.ctl.state;
        let counter = match op {
            Ops::PUT => &s.puts,
            Ops::GET => &s.gets,
            Ops::DELETE => &s.deletes,
            _ => &s.list_pages,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

handle_and_inner!(Counting, CountingHandle, "The handle that reads the counters.");

impl CountingHandle {
    /// Calls to `put` so far.
    pub fn puts(&self) -> u64 {
        self.state.puts.load(Ordering::SeqCst)
    }

    /// Calls to `get` so far.
    pub fn gets(&self) -> u64 {
        self.state.gets.load(Ordering::SeqCst)
    }

    /// Calls to `delete` so far.
    pub fn deletes(&self) -> u64 {
        self.state.deletes.load(Ordering::SeqCst)
    }

    /// Calls to `list_page` so far.
    pub fn list_pages(&self) -> u64 {
        self.state.list_pages.load(Ordering::SeqCst)
    }

    /// All counters at once.
    pub fn counts(&self) -> CallCounts {
        CallCounts {
            puts: self.puts(),
            gets: self.gets(),
            deletes: self.deletes(),
            list_pages: self.list_pages(),
        }
    }

    /// All calls together.
    pub fn total(&self) -> u64 {
        self.counts().total()
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        for c in [&self.state.puts, &self.state.gets, &self.state.deletes, &self.state.list_pages] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for CountingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CountingHandle").field(&self.counts()).finish()
    }
}

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Counting<B> {
        forward id, name, put, get, delete, list_page to self.inner after self.admit;
    }
}
