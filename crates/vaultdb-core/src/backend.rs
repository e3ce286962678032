//! The storage backend contract.
//!
//! A backend is a flat key-value object store: S3, GCS, Azure Blob, a directory, memory.
//! VaultDB asks very little of it (five calls), and everything that is not storage (retries,
//! timeouts, hedging, integrity) lives in the client, once, not in every backend.
//!
//! # Contract
//!
//! - Keys are [valid keys](validate_key): 1 to [`MAX_KEY_LEN`] bytes of printable ASCII,
//!   `/`-separated segments, none of them empty, `.` or `..`. Backends must store every such
//!   key distinctly (mind case-insensitive filesystems) and give it back unchanged in
//!   `list`.
//! - `put` with [`PutMode::Create`] must be atomic: of concurrent creates of one key,
//!   exactly one succeeds and the others get [`BackendErrorKind::AlreadyExists`]; a reader
//!   never sees a partly written object.
//! - `get` of a missing key is `Ok(None)`, not an error.
//! - `delete` is idempotent: deleting a missing key is `Ok(())`.
//! - `list_page` returns the keys that start with `prefix` (a plain string prefix), in any
//!   order, a page at a time; `next` is an opaque cursor for the following page. Keys
//!   created or deleted during a listing may or may not appear.
//! - Errors say what kind they are ([`BackendErrorKind`]); the client retries only
//!   [`BackendErrorKind::Transient`] ones. Backends must not retry on their own.
//! - Nothing a backend formats (`Debug`, `Display`, error messages) may contain credentials
//!   or object contents.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

/// The longest key VaultDB writes or a backend must accept, in bytes.
pub const MAX_KEY_LEN: usize = 900;

/// The most keys [`StorageBackendExt::list_all`] accepts from one listing.
pub const MAX_LISTED_KEYS: usize = 10_000_000;

/// How `put` treats an existing object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Create the object; fail with [`BackendErrorKind::AlreadyExists`] if it exists.
    Create,
    /// Create or replace the object.
    Overwrite,
}

/// The kind of a backend failure, which decides what the client does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// A create-only put found the object already there.
    AlreadyExists,
    /// Worth retrying: timeouts, throttling, 5xx, connection resets.
    Transient,
    /// Not worth retrying: authentication, permissions, missing bucket, bad configuration.
    Permanent,
    /// Anything else (treated like `Permanent`: not retried).
    Other,
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AlreadyExists => "already-exists",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Other => "other",
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a [`StorageBackend`].
#[derive(Debug)]
pub struct BackendError {
    kind: BackendErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl BackendError {
    /// A new error of `kind` with a message (no secrets, no object contents).
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A create-only conflict on `key`.
    pub fn already_exists(key: &str) -> Self {
        Self::new(BackendErrorKind::AlreadyExists, format!("object {key} already exists"))
    }

    /// A transient failure.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(BackendErrorKind::Transient, message)
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(BackendErrorKind::Permanent, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True if the client should retry the call.
    pub fn is_transient(&self) -> bool {
        self.kind == BackendErrorKind::Transient
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys on this page.
    pub keys: Vec<String>,
    /// Cursor for the next page; `None` when this is the last.
    pub next: Option<String>,
}

/// A storage backend: one of the N places shares live. See the [module docs](self) for the
/// contract every implementation must meet; the `vaultdb-testkit` crate's conformance suite
/// checks it.
#[async_trait]
pub trait StorageBackend: fmt::Debug + Send + Sync + 'static {
    /// A short stable identifier (`"aws"`, `"disk-1"`). The keyring records the ordered
    /// list of ids, so renaming a backend is a configuration change.
    fn id(&self) -> &str;

    /// A human-readable name (`"AWS S3 us-west-2"`).
    fn name(&self) -> &str;

    /// Stores `data` under `key`.
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError>;

    /// Reads the object at `key`; `Ok(None)` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError>;

    /// Deletes the object at `key`; succeeds if there is none.
    async fn delete(&self, key: &str) -> Result<(), BackendError>;

    /// Lists keys starting with `prefix`, one page at a time, starting from `cursor`.
    async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<ListPage, BackendError>;
}

/// Conveniences over [`StorageBackend`], for every backend (kept out of the trait so that
/// wrappers cannot get them out of step).
#[async_trait]
pub trait StorageBackendExt: StorageBackend {
    /// Lists every key starting with `prefix`, following cursors to the end.
    ///
    /// A backend is not trusted to end its listing: a cursor it has given before, or more
    /// than [`MAX_LISTED_KEYS`] keys, is an error rather than an endless loop or unbounded
    /// memory.
    async fn list_all(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.list_page(prefix, cursor.clone()).await?;
            keys.extend(page.keys);
            if keys.len() > MAX_LISTED_KEYS {
                return Err(BackendError::new(
                    BackendErrorKind::Other,
                    format!("listing returned more than {MAX_LISTED_KEYS} keys"),
                ));
            }
            match page.next {
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(BackendError::new(
                        BackendErrorKind::Other,
                        "listing cursor repeated: the backend's listing does not end",
                    ));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }
}

impl<T: StorageBackend + ?Sized> StorageBackendExt for T {}

#[async_trait]
impl<T: StorageBackend + ?Sized> StorageBackend for Arc<T> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        (**self).put(key, data, mode).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        (**self).get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        (**self).delete(key).await
    }
    async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<ListPage, BackendError> {
        (**self).list_page(prefix, cursor).await
    }
}

/// Why a key is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty or longer than [`MAX_KEY_LEN`].
    #[error("key length must be 1..={MAX_KEY_LEN} bytes")]
    Length,
    /// A byte outside printable ASCII (0x21..=0x7E).
    #[error("key holds a byte outside printable ASCII")]
    Byte,
    /// An empty, `.` or `..` segment.
    #[error("key has an empty, '.' or '..' segment")]
    Segment,
}

/// Checks that `key` is a valid object key (see the [module docs](self)).
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(KeyError::Length);
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(KeyError::Byte);
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(KeyError::Segment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(validate_key("vdb/r/abc/def.ghi"), Ok(()));
        assert_eq!(validate_key("A~b%c+d=e!f"), Ok(()));
        assert_eq!(validate_key(""), Err(KeyError::Length));
        assert_eq!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)), Err(KeyError::Length));
        assert_eq!(validate_key(&"a".repeat(MAX_KEY_LEN)), Ok(()));
        assert_eq!(validate_key("a b"), Err(KeyError::Byte));
        assert_eq!(validate_key("a\u{e9}"), Err(KeyError::Byte));
        assert_eq!(validate_key("a\0"), Err(KeyError::Byte));
        for bad in ["/a", "a/", "a//b", "./a", "a/..", "..", "."] {
            assert_eq!(validate_key(bad), Err(KeyError::Segment), "{bad}");
        }
    }
}
