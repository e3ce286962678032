//! An in-memory [`StorageBackend`], for tests, examples and the conformance suite.
//!
//! [`MemoryBackend`] keeps its objects in a `BTreeMap` behind a `std::sync::Mutex`. Every
//! operation takes the lock once, does its work and releases it before returning, so the lock
//! is never held across an `.await` and each operation is atomic: of concurrent
//! [`PutMode::Create`] puts of one key exactly one succeeds.
//!
//! Listing walks the ordered map: keys come back sorted, [`MemoryBackend::page_size`] at a
//! time, and the cursor is the last key of the previous page (the next page starts strictly
//! after it), so a listing is deterministic and never repeats a key.
//!
//! Keys are checked with [`validate_key`]; an invalid key is a
//! [`BackendErrorKind::Permanent`](crate::BackendErrorKind::Permanent) error, as a real store
//! would reject it. The `raw_*` helpers, [`MemoryBackend::snapshot`] and
//! [`MemoryBackend::clear`] bypass the trait so that tests can inspect and tamper with what is
//! stored.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;

use crate::backend::{BackendError, ListPage, PutMode, StorageBackend, validate_key};

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

fn check_key(key: &str) -> Result<(), BackendError> {
    validate_key(key).map_err(|e| BackendError::permanent(format!("invalid key: {e}")))
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
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        check_key(key)?;
        let mut objects = self.lock();
        match mode {
            PutMode::Create => {
                if objects.contains_key(key) {
                    return Err(BackendError::already_exists(key));
                }
                objects.insert(key.to_owned(), data);
            }
            PutMode::Overwrite => {
                objects.insert(key.to_owned(), data);
            }
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        check_key(key)?;
        Ok(self.lock().get(key).cloned())
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        check_key(key)?;
        self.lock().remove(key);
        Ok(())
    }

    async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<ListPage, BackendError> {
        let objects = self.lock();
        // Start at the prefix, or strictly after the cursor if that is further on.
        let start = match cursor {
            Some(c) if c.as_str() >= prefix => Bound::Excluded(c),
            _ => Bound::Included(prefix.to_owned()),
        };
        let mut keys: Vec<String> = objects
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(self.page_size + 1)
            .cloned()
            .collect();
        let next = if keys.len() > self.page_size {
            keys.truncate(self.page_size);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ListPage { keys, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendErrorKind, StorageBackendExt};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn create_only_and_overwrite() {
        let m = MemoryBackend::new("m", "memory");
        block_on(async {
            m.put("a/b", Bytes::from_static(b"1"), PutMode::Create).await.unwrap();
            let e = m.put("a/b", Bytes::from_static(b"2"), PutMode::Create).await.unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::AlreadyExists);
            assert_eq!(m.get("a/b").await.unwrap().unwrap(), Bytes::from_static(b"1"));
            m.put("a/b", Bytes::from_static(b"3"), PutMode::Overwrite).await.unwrap();
            assert_eq!(m.raw_get("a/b").unwrap(), Bytes::from_static(b"3"));
            m.delete("a/b").await.unwrap();
            m.delete("a/b").await.unwrap();
            assert_eq!(m.get("a/b").await.unwrap(), None);
        });
    }

    #[test]
    fn invalid_keys_are_permanent_errors() {
        let m = MemoryBackend::new("m", "memory");
        block_on(async {
            for bad in ["", "a//b", "../x", "a b"] {
                let e = m.put(bad, Bytes::new(), PutMode::Overwrite).await.unwrap_err();
                assert_eq!(e.kind(), BackendErrorKind::Permanent, "{bad:?}");
                assert_eq!(m.get(bad).await.unwrap_err().kind(), BackendErrorKind::Permanent);
                assert_eq!(m.delete(bad).await.unwrap_err().kind(), BackendErrorKind::Permanent);
            }
        });
        assert_eq!(m.object_count(), 0);
    }

    #[test]
    fn pagination_follows_cursor() {
        let m = MemoryBackend::new("m", "memory").with_page_size(3);
        for i in 0..10 {
            m.raw_put(format!("p/{i:02}"), Bytes::new());
        }
        m.raw_put("o", Bytes::new());
        m.raw_put("q", Bytes::new());
        block_on(async {
            let first = m.list_page("p/", None).await.unwrap();
            assert_eq!(first.keys, ["p/00", "p/01", "p/02"]);
            assert_eq!(first.next.as_deref(), Some("p/02"));
            let all = m.list_all("p/").await.unwrap();
            let want: Vec<String> = (0..10).map(|i| format!("p/{i:02}")).collect();
            assert_eq!(all, want);
            // A page that ends exactly at the end has no cursor.
            let m3 = MemoryBackend::new("m", "memory").with_page_size(5);
            for i in 0..5 {
                m3.raw_put(format!("k{i}"), Bytes::new());
            }
            assert_eq!(m3.list_page("k", None).await.unwrap().next, None);
            assert!(m.list_page("zz", None).await.unwrap().keys.is_empty());
            assert_eq!(m.list_all("").await.unwrap().len(), 12);
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
