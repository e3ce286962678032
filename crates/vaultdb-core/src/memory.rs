//! An in-memory [`StorageBackend`], for tests, examples and the conformance suite.
//!
//! [`MemoryBackend`] keeps its objects in a `BTreeMap` behind a `std::sync::Mutex`. Every
//! operation takes the lock once, does its work and releases it before returning, so the lock
//! is never held across an `.await` and each operation is atomic: of concurrent
//! [`PutMode::Create`] puts of one key exactly one succeeds.
//!
//! Listing walks the ordered map: keys come back sorted, [`MemoryBackend::page_size`] at a
//! time, and the cursor is the last key of the previous page (the next page starts strictly
//! after it, as with [`ListFrom::After`]), so a listing is deterministic and never repeats a
//! key. A `get` longer than its limit is refused by a length check: nothing is copied.
//!
//! The `raw_*` helpers, [`MemoryBackend::snapshot`] and [`MemoryBackend::clear`] bypass the
//! trait so that tests can inspect and tamper with what is stored (even under names that are
//! not valid keys, which listings then skip).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;

use crate::backend::{
    BackendError, BackendResult, Key, KeyPrefix, ListEntry, ListFrom, ListPage, PutMode,
    StorageBackend,
};

/// The default number of keys per [`list_page`](StorageBackend::list_page) page.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// A [`StorageBackend`] that keeps objects in memory. See the [module docs](self).
pub struct MemoryBackend {
    id: String,
    name: String,
    page_size: usize,
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryBackend {
    /// An empty backend with the given id and human-readable name.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            page_size: DEFAULT_PAGE_SIZE,
            objects: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets the number of keys per listing page (at least 1; 0 is taken as 1).
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The number of keys per listing page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The number of stored objects.
    pub fn object_count(&self) -> usize {
        self.lock().len()
    }

    /// Every stored key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Every stored object as `(key, bytes)`, sorted by key.
    pub fn snapshot(&self) -> Vec<(String, Bytes)> {
        self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The stored bytes of `key`, without going through the trait.
    pub fn raw_get(&self, key: &str) -> Option<Bytes> {
        self.lock().get(key).cloned()
    }

    /// Stores `data` under `key` unconditionally, without validating the key: for tests that
    /// tamper with stored objects. Returns the bytes it replaced, if any.
    pub fn raw_put(&self, key: impl Into<String>, data: impl Into<Bytes>) -> Option<Bytes> {
        self.lock().insert(key.into(), data.into())
    }

    /// Removes `key`, without going through the trait. Returns the bytes it held, if any.
    pub fn raw_delete(&self, key: &str) -> Option<Bytes> {
        self.lock().remove(key)
    }

    /// Removes every object.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Bytes>> {
        // Every critical section is a single map operation that cannot leave the map half
        // updated, so a poisoned lock (a panic elsewhere while holding it) is still consistent.
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("objects", &self.object_count())
            .finish()
    }
}

#[async_trait]
impl StorageBackend for MemoryBackend {
    crate::backend_identity!();

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        let mut objects = self.lock();
        if mode == PutMode::Create && objects.contains_key(key.as_str()) {
            return Err(BackendError::already_exists(key));
        }
        objects.insert(key.as_str().to_owned(), data);
        Ok(())
    }

    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        match self.lock().get(key.as_str()) {
            Some(data) if data.len() as u64 > max_len => {
                Err(BackendError::too_large(key, data.len() as u64, max_len))
            }
            other => Ok(other.cloned()),
        }
    }

    async fn delete(&self, key: &Key) -> BackendResult<()> {
        self.lock().remove(key.as_str());
        Ok(())
    }

    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        let objects = self.lock();
        let prefix = prefix.as_str();
        // Start at the prefix, or strictly after the given key or cursor if that is further.
        let after = match from {
            ListFrom::Start => None,
            ListFrom::After(key) => Some(key.as_str().to_owned()),
            ListFrom::Cursor(c) => Some(c),
        };
        let start = match after {
            Some(a) if a.as_str() >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut entries: Vec<ListEntry> = objects
            .range::<String, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            // Names `raw_put` stored that are not valid keys are skipped, as a real store's.
            .filter_map(|(k, v)| {
                Key::new(k).ok().map(|key| ListEntry { key, size: v.len() as u64 })
            })
            .take(self.page_size + 1)
            .collect();
        let next = if entries.len() > self.page_size {
            entries.truncate(self.page_size);
            entries.last().map(|e| e.key.as_str().to_owned())
        } else {
            None
        };
        Ok(ListPage { entries, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendErrorKind, StorageBackendExt};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn key(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    fn prefix(s: &str) -> KeyPrefix {
        KeyPrefix::new(s).unwrap()
    }

    fn keys(entries: &[ListEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn create_only_and_overwrite() {
        let m = MemoryBackend::new("m", "memory");
        let k = key("a/b");
        block_on(async {
            m.put(&k, Bytes::from_static(b"1"), PutMode::Create).await.unwrap();
            let e = m.put(&k, Bytes::from_static(b"2"), PutMode::Create).await.unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::AlreadyExists);
            assert_eq!(m.get(&k, 1).await.unwrap().unwrap(), Bytes::from_static(b"1"));
            m.put(&k, Bytes::from_static(b"3"), PutMode::Overwrite).await.unwrap();
            assert_eq!(m.raw_get("a/b").unwrap(), Bytes::from_static(b"3"));
            m.delete(&k).await.unwrap();
            m.delete(&k).await.unwrap();
            assert_eq!(m.get(&k, 1).await.unwrap(), None);
        });
    }

    #[test]
    fn gets_are_bounded() {
        let m = MemoryBackend::new("m", "memory");
        m.raw_put("k", Bytes::from_static(b"four"));
        block_on(async {
            assert_eq!(m.get(&key("k"), 4).await.unwrap().unwrap(), Bytes::from_static(b"four"));
            let e = m.get(&key("k"), 3).await.unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::TooLarge);
            assert!(e.message().contains("3 allowed"), "{e}");
        });
    }

    #[test]
    fn pagination_follows_cursor() {
        let m = MemoryBackend::new("m", "memory").with_page_size(3);
        for i in 0..10 {
            m.raw_put(format!("p/{i:02}"), Bytes::from(vec![0; i]));
        }
        m.raw_put("o", Bytes::new());
        m.raw_put("q", Bytes::new());
        m.raw_put("p/a//b", Bytes::new());
        block_on(async {
            let first = m.list_page(&prefix("p/"), ListFrom::Start).await.unwrap();
            assert_eq!(keys(&first.entries), ["p/00", "p/01", "p/02"]);
            assert_eq!(first.entries[2].size, 2);
            assert_eq!(first.next.as_deref(), Some("p/02"));
            let all = m.list_all(&prefix("p/")).await.unwrap();
            let want: Vec<String> = (0..10).map(|i| format!("p/{i:02}")).collect();
            assert_eq!(keys(&all), want, "the invalid name is skipped");
            let after = m.list_page(&prefix("p/"), ListFrom::After(key("p/05"))).await.unwrap();
            assert_eq!(keys(&after.entries), ["p/06", "p/07", "p/08"]);
            let before = m.list_page(&prefix("p/"), ListFrom::After(key("a"))).await.unwrap();
            assert_eq!(keys(&before.entries), ["p/00", "p/01", "p/02"]);
            // A page that ends exactly at the end has no cursor.
            let m3 = MemoryBackend::new("m", "memory").with_page_size(5);
            for i in 0..5 {
                m3.raw_put(format!("k{i}"), Bytes::new());
            }
            assert_eq!(m3.list_page(&prefix("k"), ListFrom::Start).await.unwrap().next, None);
            assert!(m.list_page(&prefix("zz"), ListFrom::Start).await.unwrap().entries.is_empty());
            assert_eq!(m.list_all(&KeyPrefix::default()).await.unwrap().len(), 12);
        });
    }

    #[test]
    fn debug_shows_no_contents() {
        let m = MemoryBackend::new("mem-1", "Memory one");
        m.raw_put("k", Bytes::from_static(b"secret-bytes"));
        let d = format!("{m:?}");
        assert!(d.contains("mem-1") && d.contains("Memory one") && d.contains("objects: 1"));
        assert!(!d.contains("secret") && !d.contains("\"k\""));
        m.clear();
        assert_eq!(m.object_count(), 0);
        assert!(m.keys().is_empty() && m.snapshot().is_empty());
    }
}
