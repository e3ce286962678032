//! [`Stale`]: `get` returns an older object.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use vaultdb_core::backend::{BackendError, Key, PutMode, StorageBackend};

use crate::{forward_backend, handle_and_inner, handle_debug};

/// What a [`Stale`] wrapper serves for `get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StaleMode {
    /// The real object: the wrapper is transparent.
    Off,
    /// The newest object put *before* the requested key's latest put, in the same group:
    /// an older version of the same record (or the key's own earlier bytes, after an
    /// overwrite). A key that was never put through the wrapper gets the newest object of
    /// its group.
    Older,
    /// The newest object put in a *different* group: another record's object under this
    /// key.
    Swap,
}

impl StaleMode {
    fn to_u8(self) -> u8 {
        match self {
            StaleMode::Off => 0,
            StaleMode::Older => 1,
            StaleMode::Swap => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => StaleMode::Older,
            2 => StaleMode::Swap,
            _ => StaleMode::Off,
        }
    }
}

type GroupFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The default group of a key: its parent "directory", everything up to and including the
/// last `/` (empty for a key without `/`).
pub(crate) fn parent_group(key: &str) -> String {
    key.rfind('/').map_or_else(String::new, |i| key[..=i].to_owned())
}

/// A wrapper that serves stale or misplaced objects, like a lagging replica or a store that
/// mixes objects up.
///
/// It remembers every object successfully put through it (key, bytes, order), including
/// overwritten and deleted ones. While its mode is [`StaleMode::Off`] (the initial mode) it
/// is transparent. Otherwise `get(key)` answers, without asking the inner backend, with
/// another remembered object chosen by the [`StaleMode`] among the objects of the key's
/// *group* (by default its parent "directory", the key up to its last `/`; see
/// [`Stale::with_grouping`]), or a [`TooLarge`](vaultdb_core::BackendErrorKind::TooLarge)
/// error if that object is longer than the `get` allows. When there is no such object the
/// call goes to the inner backend. Puts, deletes and listings always go through.
pub struct Stale<B> {
    inner: B,
    group: GroupFn,
    history: Mutex<Vec<Remembered>>,
    ctl: StaleHandle,
}

struct Remembered {
    seq: u64,
    key: String,
    group: String,
    data: Bytes,
}

/// Controls a [`Stale`] wrapper; clones control the same wrapper.
#[derive(Clone)]
pub struct StaleHandle {
    state: Arc<StaleState>,
}

struct StaleState {
    mode: AtomicU8,
    served: AtomicU64,
    forget: AtomicU64,
}

impl<B: StorageBackend> Stale<B> {
    /// Wraps `inner`, in [`StaleMode::Off`], grouping keys by parent directory.
    pub fn new(inner: B) -> Self {
        let state = StaleState {
            mode: AtomicU8::new(StaleMode::Off.to_u8()),
            served: AtomicU64::new(0),
            forget: AtomicU64::new(0),
        };
        Self {
            inner,
            group: Arc::new(parent_group),
            history: Mutex::new(Vec::new()),
            ctl: StaleHandle { state: Arc::new(state) },
        }
    }

    /// Groups keys with `group` instead of by parent directory: two keys are versions of
    /// the same record when `group` maps them to the same string.
    #[must_use]
    pub fn with_grouping(mut self, group: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.group = Arc::new(group);
        self
    }

    fn history(&self) -> MutexGuard<'_, Vec<Remembered>> {
        // Each critical section is one push, one clear or a read: a poisoned lock still
        // guards a consistent list.
        let mut h = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // A `forget` request from the handle (which cannot reach the list itself).
        if self.ctl.state.forget.swap(0, Ordering::SeqCst) != 0 {
            h.clear();
        }
        h
    }

    /// The remembered object to serve for `key` in `mode`, if any.
    fn pick(&self, key: &str, mode: StaleMode) -> Option<Bytes> {
        if mode == StaleMode::Off {
            return None;
        }
        let group = (self.group)(key);
        let history = self.history();
        let found = match mode {
            StaleMode::Off => None,
            StaleMode::Older => {
                let own = history.iter().rev().find(|r| r.key == key).map_or(u64::MAX, |r| r.seq);
                history.iter().rev().find(|r| r.seq < own && r.group == group)
            }
            StaleMode::Swap => history.iter().rev().find(|r| r.group != group),
        };
        found.map(|r| r.data.clone())
    }
}

handle_and_inner!(Stale, StaleHandle, "The handle that switches the mode.");

impl StaleHandle {
    /// Switches the mode.
    pub fn set_mode(&self, mode: StaleMode) {
        self.state.mode.store(mode.to_u8(), Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> StaleMode {
        StaleMode::from_u8(self.state.mode.load(Ordering::SeqCst))
    }

    /// How many `get` calls have been answered with a remembered object so far.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Forgets every remembered object (takes effect at the wrapper's next call).
    pub fn forget(&self) {
        self.state.forget.store(1, Ordering::SeqCst);
    }
}

handle_debug!(StaleHandle { mode, served });

impl<B: fmt::Debug> fmt::Debug for Stale<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remembered = self.history.lock().map_or(0, |h| h.len());
        f.debug_struct("Stale")
            .field("inner", &self.inner)
            .field("remembered", &remembered)
            .field("ctl", &self.ctl)
            .finish()
    }
}

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Stale<B> {
        forward id, name, delete, list_page to self.inner;

        async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
            self.inner.put(key, data.clone(), mode).await?;
            let group = (self.group)(key.as_str());
            let mut history = self.history();
            let seq = history.last().map_or(0, |r| r.seq + 1);
            history.push(Remembered { seq, key: key.as_str().to_owned(), group, data });
            Ok(())
        }

        async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
            if let Some(data) = self.pick(key.as_str(), self.ctl.mode()) {
                self.ctl.state.served.fetch_add(1, Ordering::SeqCst);
                // A real store holding these bytes would refuse them as too large too.
                if data.len() as u64 > max_len {
                    return Err(BackendError::too_large(key, data.len() as u64, max_len));
                }
                return Ok(Some(data));
            }
            self.inner.get(key, max_len).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_parent() {
        for (key, group) in [("a/b/c", "a/b/"), ("abc", "")] {
            assert_eq!(parent_group(key), group);
        }
    }
}
