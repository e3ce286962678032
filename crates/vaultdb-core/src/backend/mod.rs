//! The storage backend contract.
//!
//! A backend is a flat key-value object store: S3, GCS, Azure Blob, a directory, memory.
//! VaultDB asks very little of it (four calls), and everything that is not storage (retries,
//! timeouts, hedging, integrity) lives in the client, once, not in every backend.
//!
//! # Contract
//!
//! - Keys are [`Key`]s, checked when they are made ([`validate_key`]): 1 to [`MAX_KEY_LEN`]
//!   bytes of printable ASCII, `/`-separated segments, none of them empty, `.` or `..`.
//!   Backends must store every such key distinctly (mind case-insensitive filesystems) and
//!   give it back unchanged in listings.
//! - `put` with [`PutMode::Create`] must be atomic: of concurrent creates of one key,
//!   exactly one succeeds and the others get [`BackendErrorKind::AlreadyExists`]; a reader
//!   never sees a partly written object.
//! - `get` of a missing key is `Ok(None)`, not an error. `get` reads at most `max_len`
//!   bytes: an object longer than that is a [`BackendErrorKind::TooLarge`] error, and the
//!   backend must not read (or hold in memory) much more than `max_len + 1` bytes of it to
//!   find out. Something at the key that is not an object the backend could have written (a
//!   directory, a FIFO, a symbolic link in a directory backend) is an error, found without
//!   blocking.
//! - `delete` is idempotent: deleting a missing key is `Ok(())`.
//! - `list_page` returns the keys that start with a [`KeyPrefix`] (a plain string prefix)
//!   with their sizes, a page at a time, starting as [`ListFrom`] says; `next` is an opaque
//!   cursor for the following page. Entries come in ascending key order (byte order) within
//!   a page and from one page to the next (see each backend's documentation for
//!   exceptions); a page may be empty and still have a `next`. Objects whose names are not
//!   valid keys are skipped. Keys created or deleted during a listing may or may not
//!   appear.
//! - Errors say what kind they are ([`BackendErrorKind`]); the client retries only
//!   [`BackendErrorKind::Transient`] ones. Backends must not retry on their own.
//! - Building a backend sends no request and needs no credentials: configuration that is
//!   wrong in itself fails construction; anything found out by talking to the service
//!   (credentials that do not work, a missing bucket, a token endpoint that does not answer)
//!   fails the calls, so that one backend's trouble never stops a store that has K others.
//! - Nothing a backend formats (`Debug`, `Display`, error messages) may contain credentials
//!   or object contents.
//!
//! The cloud backends share [`http`] (the mapping of HTTP answers to error kinds, and
//! bounded response bodies), [`ObjectNames`] (their prefix inside a bucket),
//! [`ListStart`] (where a listing starts or resumes) and [`CloudCommon`] (their id, name and
//! object names, and the listing pages and `Debug` built from them).

pub mod http;
mod key;
mod names;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use key::{Key, KeyError, KeyPrefix, MAX_KEY_LEN, validate_key, validate_prefix};
pub use names::{CloudCommon, Escaping, ListStart, ObjectNames};

/// Writes a backend configuration's builder setters: for each `with_x(field: Type)`, a
/// method `with_x(mut self, field: Type) -> Self` that sets `self.field` to the argument, or
/// to the expression after `=>`, documented as setting that field.
///
/// ```
/// #[derive(Default)]
/// pub struct Config {
///     pub prefix: String,
///     pub endpoint: Option<String>,
///     pub page_size: usize,
/// }
///
/// vaultdb_core::config_setters!(Config {
///     with_prefix(prefix: impl Into<String>) => prefix.into(),
///     with_endpoint(endpoint: impl Into<String>) => Some(endpoint.into()),
///     with_page_size(page_size: usize),
/// });
///
/// let c = Config::default().with_prefix("p").with_endpoint("e").with_page_size(5);
/// assert_eq!((c.prefix.as_str(), c.endpoint.as_deref(), c.page_size), ("p", Some("e"), 5));
/// ```
#[macro_export]
macro_rules! config_setters {
    ($ty:ty { $($setter:ident($field:ident: $arg:ty) $(=> $value:expr)?),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                pub fn $setter(mut self, $field: $arg) -> Self {
                    self.$field = $crate::config_setters!(@value $field $($value)?);
                    self
                }
            )*
        }
    };
    (@value $field:ident) => {
        $field
    };
    (@value $field:ident $value:expr) => {
        $value
    };
}

/// Writes [`StorageBackend::id`] and [`StorageBackend::name`] inside a backend's `impl
/// StorageBackend`: from its own `id` and `name` fields (`backend_identity!()`), or from
/// those of a field that has `id()` and `name()` methods (`backend_identity!(common)`, a
/// [`CloudCommon`], or `backend_identity!(0)` for a wrapper of another backend).
///
/// ```
/// use async_trait::async_trait;
/// use bytes::Bytes;
/// use vaultdb_core::{BackendResult, Key, KeyPrefix, ListFrom, ListPage, MemoryBackend};
/// use vaultdb_core::{PutMode, StorageBackend};
///
/// #[derive(Debug)]
/// struct Wrapper(MemoryBackend);
///
/// #[async_trait]
/// impl StorageBackend for Wrapper {
///     vaultdb_core::backend_identity!(0);
///     async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
///         self.0.put(key, data, mode).await
///     }
///     async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
///         self.0.get(key, max_len).await
///     }
///     async fn delete(&self, key: &Key) -> BackendResult<()> {
///         self.0.delete(key).await
///     }
///     async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
///         self.0.list_page(prefix, from).await
///     }
/// }
///
/// let w = Wrapper(MemoryBackend::new("m1", "first memory"));
/// assert_eq!((w.id(), w.name()), ("m1", "first memory"));
/// ```
#[macro_export]
macro_rules! backend_identity {
    () => {
        fn id(&self) -> &str {
            &self.id
        }

        fn name(&self) -> &str {
            &self.name
        }
    };
    ($field:tt) => {
        fn id(&self) -> &str {
            self.$field.id()
        }

        fn name(&self) -> &str {
            self.$field.name()
        }
    };
}

/// The most keys [`StorageBackendExt::list_all`] accepts from one listing.
pub const MAX_LISTED_KEYS: usize = 10_000_000;

/// The most pages [`StorageBackendExt::list_all`] follows in one listing (an honest backend
/// returns up to 1,000 keys a page: [`MAX_LISTED_KEYS`] takes 10,000).
pub const MAX_LISTED_PAGES: usize = 1_000_000;

/// What a backend call returns: its value, or a [`BackendError`].
pub type BackendResult<T> = Result<T, BackendError>;

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
    /// A `get` found an object longer than the caller allows: to the client, a bad share.
    TooLarge,
    /// Anything else (treated like `Permanent`: not retried).
    Other,
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AlreadyExists => "already-exists",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::TooLarge => "too-large",
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
    pub fn already_exists(key: &Key) -> Self {
        Self::new(BackendErrorKind::AlreadyExists, format!("object {key} already exists"))
    }

    /// A `get` of `what` that found at least `len` bytes where `max_len` were allowed.
    pub fn too_large(what: &dyn fmt::Display, len: u64, max_len: u64) -> Self {
        Self::new(
            BackendErrorKind::TooLarge,
            format!("object {what} is too large: {len} bytes or more, {max_len} allowed"),
        )
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

/// Where a listing starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ListFrom {
    /// At the first key under the prefix.
    #[default]
    Start,
    /// At the first key strictly greater than this one (in byte order).
    After(Key),
    /// Where the page that returned this cursor (its `next`) left off.
    Cursor(String),
}

/// One object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Its key.
    pub key: Key,
    /// Its size in bytes, as the listing reports it.
    pub size: u64,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects on this page, in ascending key order.
    pub entries: Vec<ListEntry>,
    /// Cursor for the next page ([`ListFrom::Cursor`]); `None` when this is the last.
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
    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()>;

    /// Reads the object at `key`, if it is at most `max_len` bytes long; `Ok(None)` if there
    /// is none, a [`BackendErrorKind::TooLarge`] error if it is longer.
    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>>;

    /// Deletes the object at `key`; succeeds if there is none.
    async fn delete(&self, key: &Key) -> BackendResult<()>;

    /// Lists the objects whose keys start with `prefix`, one page at a time, from `from`.
    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage>;
}

/// Conveniences over [`StorageBackend`], for every backend (kept out of the trait so that
/// wrappers cannot get them out of step).
#[async_trait]
pub trait StorageBackendExt: StorageBackend {
    /// Lists every object under `prefix`, following cursors to the end.
    ///
    /// A backend is not trusted to end its listing: cursors that come round in a cycle,
    /// more than [`MAX_LISTED_KEYS`] keys, or more than [`MAX_LISTED_PAGES`] pages (empty
    /// pages under ever new cursors) are an error rather than an endless loop or unbounded
    /// memory.
    async fn list_all(&self, prefix: &KeyPrefix) -> Result<Vec<ListEntry>, BackendError> {
        Ok(self.list_while(prefix, ListFrom::Start, |_| true).await?.0)
    }

    /// Lists the objects under `prefix` from `from`, following cursors, until `take` says
    /// no to an entry (which is left out) or the listing ends; returns the entries taken
    /// and whether the listing ended. The same guards as [`list_all`](Self::list_all).
    async fn list_while<F>(
        &self,
        prefix: &KeyPrefix,
        from: ListFrom,
        mut take: F,
    ) -> Result<(Vec<ListEntry>, bool), BackendError>
    where
        F: FnMut(&ListEntry) -> bool + Send,
    {
        let caps = (MAX_LISTED_KEYS, MAX_LISTED_PAGES);
        let visit = |e: ListEntry| if take(&e) { Visit::Keep(e) } else { Visit::Stop };
        list_with(self, prefix, from, caps, visit).await
    }
}

/// What [`list_with`] does with one listed entry.
pub(crate) enum Visit<T> {
    /// Keep this (counts toward the cap on kept entries).
    Keep(T),
    /// Leave the entry out and go on (it costs no memory).
    Skip,
    /// Leave the entry out and end the listing there.
    Stop,
}

/// Lists the objects under `prefix` from `from`, following cursors, and hands each entry
/// to `visit` as it arrives; returns what it kept and whether the listing ended. A backend
/// is not trusted to end its listing: cursors that come round in a cycle, more than
/// `max_kept` kept entries or more than `max_pages` pages (empty pages under ever new
/// cursors) are an error rather than an endless loop or unbounded memory. Entries the caller
/// skips are not kept, so keys it has no use for (foreign, malformed, another record's)
/// cost a page each, never memory.
pub(crate) async fn list_with<B, T, F>(
    backend: &B,
    prefix: &KeyPrefix,
    from: ListFrom,
    (max_kept, max_pages): (usize, usize),
    mut visit: F,
) -> Result<(Vec<T>, bool), BackendError>
where
    B: StorageBackend + ?Sized,
    F: FnMut(ListEntry) -> Visit<T>,
{
    let mut kept = Vec::new();
    let mut from = from;
    // Cycle detection in constant memory (Brent's): compare each cursor with one saved
    // cursor, saved again at every power of two pages. A cycle of cursors is caught within
    // about twice its length plus its start; a listing of ever new cursors by the page cap.
    let (mut saved, mut power, mut pages) = (None::<String>, 1usize, 0usize);
    loop {
        let page = backend.list_page(prefix, from).await?;
        for e in page.entries {
            match visit(e) {
                Visit::Keep(t) => kept.push(t),
                Visit::Skip => {}
                Visit::Stop => return Ok((kept, false)),
            }
        }
        pages += 1;
        if kept.len() > max_kept || pages > max_pages {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!(
                    "listing returned more than {max_kept} keys or {max_pages} pages: \
                     the backend's listing does not end"
                ),
            ));
        }
        let Some(next) = page.next else { return Ok((kept, true)) };
        if saved.as_ref() == Some(&next) {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                "listing cursor repeated: the backend's listing does not end",
            ));
        }
        if pages == power {
            saved = Some(next.clone());
            power *= 2;
        }
        from = ListFrom::Cursor(next);
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
    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        (**self).put(key, data, mode).await
    }
    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        (**self).get(key, max_len).await
    }
    async fn delete(&self, key: &Key) -> BackendResult<()> {
        (**self).delete(key).await
    }
    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        (**self).list_page(prefix, from).await
    }
}
