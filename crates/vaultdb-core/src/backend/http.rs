//! What the cloud backends share: the mapping of HTTP answers to [`BackendErrorKind`]s, and
//! reading a response body no longer than a `get` allows.
//!
//! S3, GCS and Azure answer alike: a status, and sometimes a service error code or message
//! that tells more. [`classify`] holds the one status table; each backend crate only says
//! what its service's codes and messages add (a [`Hint`]) and how to read the status out of
//! its SDK's error.
//!
//! | status | kind |
//! |---|---|
//! | 404 on get / delete | no such object ([`Class::NotFound`]) |
//! | 404 on put / list, or any 404 whose hint says it is not about the object (a missing bucket or container) | Permanent |
//! | 409, 412 on a create-only put | AlreadyExists |
//! | 416 on a get (a ranged read from byte 0 of an empty object) | empty object ([`Class::Empty`]) |
//! | 401, 403, 301, 307 (wrong region or endpoint), 501 (a feature the store lacks) | Permanent |
//! | 408, 409 (other operations), 429, 5xx but 501 | Transient |
//! | anything else | Other |
//!
//! A [`Hint::Kind`] (an error code that decides, such as S3's `SlowDown`) overrides the table,
//! except for a create-only put's conflict and a 404 on get or delete.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::{BackendError, BackendErrorKind, PutMode};

/// The operation that failed, which decides what a status means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `put` in a mode.
    Put(PutMode),
    /// `get`.
    Get,
    /// `delete`.
    Delete,
    /// `list_page`.
    List,
}

impl Op {
    /// The operation's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Put(PutMode::Create) => "create",
            Op::Put(PutMode::Overwrite) => "put",
            Op::Get => "get",
            Op::Delete => "delete",
            Op::List => "list",
        }
    }

    fn is_create(self) -> bool {
        self == Op::Put(PutMode::Create)
    }
}

/// What a service's error code or message adds to the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hint {
    /// Nothing: the status decides.
    #[default]
    Status,
    /// The error is about something other than the object (a missing bucket or container):
    /// Permanent, for every operation.
    NotTheObject,
    /// The code decides the kind (except for a create-only put's conflict, and a 404 on get
    /// or delete).
    Kind(BackendErrorKind),
}

/// What an answer means for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// No such object: `get` returns `None`, `delete` succeeds.
    NotFound,
    /// A ranged `get` from byte 0 was not satisfiable: the object is empty.
    Empty,
    /// A failure of this kind.
    Kind(BackendErrorKind),
}

/// What `status` (with the service's `hint`) means for `op`; see the [module docs](self).
pub fn classify(op: Op, status: u16, hint: Hint) -> Class {
    use BackendErrorKind::{AlreadyExists, Other, Permanent, Transient};
    let read_or_delete = matches!(op, Op::Get | Op::Delete);
    match (status, hint) {
        (_, Hint::NotTheObject) => Class::Kind(Permanent),
        (409 | 412, _) if op.is_create() => Class::Kind(AlreadyExists),
        (404, _) if read_or_delete => Class::NotFound,
        (416, _) if op == Op::Get => Class::Empty,
        (_, Hint::Kind(kind)) => Class::Kind(kind),
        (401 | 403 | 404 | 301 | 307 | 501, _) => Class::Kind(Permanent),
        (408 | 409 | 429 | 500..=599, _) => Class::Kind(Transient),
        _ => Class::Kind(Other),
    }
}

/// An error mapped for one call: no such object, an empty object, or a [`BackendError`].
#[derive(Debug)]
pub enum Mapped {
    /// No such object.
    NotFound,
    /// The object is empty (see [`Class::Empty`]).
    Empty,
    /// A failure.
    Error(BackendError),
}

impl Mapped {
    /// Maps `class` for `op` on `key` of backend `backend`, with `detail` (the service's
    /// message; never credentials or object contents) in the error's message.
    pub fn new(
        class: Class,
        backend: &str,
        op: Op,
        key: &dyn fmt::Display,
        detail: &dyn fmt::Display,
    ) -> Self {
        match class {
            Class::NotFound => Mapped::NotFound,
            Class::Empty => Mapped::Empty,
            Class::Kind(kind) => Mapped::Error(error(backend, op, key, kind, detail)),
        }
    }

    /// The error, for operations where "not found" or "empty" is a failure too.
    pub fn into_error(self) -> BackendError {
        match self {
            Mapped::NotFound => BackendError::new(BackendErrorKind::Other, "unexpected 404"),
            Mapped::Empty => BackendError::new(BackendErrorKind::Other, "unexpected 416"),
            Mapped::Error(e) => e,
        }
    }

    /// A failed `get`: `None` for no such object, the empty object, or the error.
    ///
    /// # Errors
    /// The error.
    pub fn into_get(self) -> Result<Option<Bytes>, BackendError> {
        match self {
            Mapped::NotFound => Ok(None),
            Mapped::Empty => Ok(Some(Bytes::new())),
            Mapped::Error(e) => Err(e),
        }
    }

    /// A failed `delete`: success for no such object, else the error.
    ///
    /// # Errors
    /// The error.
    pub fn into_delete(self) -> Result<(), BackendError> {
        match self {
            Mapped::NotFound => Ok(()),
            other => Err(other.into_error()),
        }
    }
}

impl From<Mapped> for BackendError {
    fn from(m: Mapped) -> Self {
        m.into_error()
    }
}

/// The error of `op` on `key` of backend `backend`: `"<backend>: <op> <key>: <detail>"`
/// (`"... the object already exists (<detail>)"` for a create-only conflict).
pub fn error(
    backend: &str,
    op: Op,
    key: &dyn fmt::Display,
    kind: BackendErrorKind,
    detail: &dyn fmt::Display,
) -> BackendError {
    let what = format!("{backend}: {} \"{key}\"", op.name());
    let message = if kind == BackendErrorKind::AlreadyExists {
        format!("{what}: the object already exists ({detail})")
    } else {
        format!("{what}: {detail}")
    };
    BackendError::new(kind, message)
}

/// Collects a response body in chunks, failing with [`BackendErrorKind::TooLarge`] as soon as
/// it holds more than `max_len` bytes: a `get` never keeps more than `max_len` plus one chunk.
#[derive(Debug)]
pub struct BoundedBody {
    max_len: u64,
    len: u64,
    chunks: Vec<Bytes>,
}

impl BoundedBody {
    /// An empty body that may grow to `max_len` bytes.
    pub fn new(max_len: u64) -> Self {
        Self { max_len, len: 0, chunks: Vec::new() }
    }

    /// Fails at once if the service declared a length (`Content-Length`, or the total of a
    /// `Content-Range`) over the limit.
    ///
    /// # Errors
    /// [`BackendErrorKind::TooLarge`].
    pub fn check_declared(
        &self,
        what: &dyn fmt::Display,
        len: Option<u64>,
    ) -> Result<(), BackendError> {
        match len {
            Some(len) if len > self.max_len => {
                Err(BackendError::too_large(what, len, self.max_len))
            }
            _ => Ok(()),
        }
    }

    /// Adds a chunk.
    ///
    /// # Errors
    /// [`BackendErrorKind::TooLarge`] once the body is longer than the limit.
    pub fn push(&mut self, what: &dyn fmt::Display, chunk: Bytes) -> Result<(), BackendError> {
        self.len += chunk.len() as u64;
        if self.len > self.max_len {
            self.chunks.clear();
            return Err(BackendError::too_large(what, self.len, self.max_len));
        }
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
        Ok(())
    }

    /// The body (one chunk is returned as it is, without a copy).
    pub fn finish(mut self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.pop().unwrap_or_default(),
            _ => {
                let mut out = BytesMut::with_capacity(self.len as usize);
                for c in &self.chunks {
                    out.extend_from_slice(c);
                }
                out.freeze()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        use BackendErrorKind::*;
        let create = Op::Put(PutMode::Create);
        let over = Op::Put(PutMode::Overwrite);
        let c = |op, status| classify(op, status, Hint::Status);
        assert_eq!(c(Op::Get, 404), Class::NotFound);
        assert_eq!(c(Op::Delete, 404), Class::NotFound);
        assert_eq!(c(Op::List, 404), Class::Kind(Permanent));
        assert_eq!(c(create, 404), Class::Kind(Permanent));
        assert_eq!(c(Op::Get, 416), Class::Empty);
        assert_eq!(c(Op::List, 416), Class::Kind(Other));
        assert_eq!(c(create, 412), Class::Kind(AlreadyExists));
        assert_eq!(c(create, 409), Class::Kind(AlreadyExists));
        assert_eq!(c(over, 412), Class::Kind(Other));
        assert_eq!(c(over, 409), Class::Kind(Transient));
        for s in [401, 403, 301, 307, 501] {
            assert_eq!(c(Op::Get, s), Class::Kind(Permanent), "{s}");
        }
        for s in [408, 429, 500, 502, 503, 599] {
            assert_eq!(c(Op::Get, s), Class::Kind(Transient), "{s}");
        }
        assert_eq!(c(Op::Get, 400), Class::Kind(Other));
        assert_eq!(c(Op::Get, 200), Class::Kind(Other));
    }

    #[test]
    fn hints() {
        use BackendErrorKind::*;
        let create = Op::Put(PutMode::Create);
        assert_eq!(classify(Op::Get, 404, Hint::NotTheObject), Class::Kind(Permanent));
        assert_eq!(classify(Op::Delete, 404, Hint::NotTheObject), Class::Kind(Permanent));
        assert_eq!(classify(Op::Get, 400, Hint::Kind(Transient)), Class::Kind(Transient));
        assert_eq!(classify(Op::Get, 503, Hint::Kind(Permanent)), Class::Kind(Permanent));
        // A conflict on create and a missing object are not overridden by a code.
        assert_eq!(classify(create, 409, Hint::Kind(Transient)), Class::Kind(AlreadyExists));
        assert_eq!(classify(Op::Get, 404, Hint::Kind(Permanent)), Class::NotFound);
    }

    #[test]
    fn mapped_answers() {
        let m = |class| Mapped::new(class, "b", Op::Get, &"k", &"detail");
        assert_eq!(m(Class::NotFound).into_get().unwrap(), None);
        assert_eq!(m(Class::Empty).into_get().unwrap(), Some(Bytes::new()));
        let e = m(Class::Kind(BackendErrorKind::Transient)).into_get().unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Transient);
        assert_eq!(e.message(), "b: get \"k\": detail");
        assert!(m(Class::NotFound).into_delete().is_ok());
        let e = error("b", Op::Put(PutMode::Create), &"k", BackendErrorKind::AlreadyExists, &"412");
        assert_eq!(e.message(), "b: create \"k\": the object already exists (412)");
    }

    #[test]
    fn bodies_are_bounded() {
        let mut b = BoundedBody::new(5);
        b.check_declared(&"k", Some(5)).unwrap();
        assert_eq!(b.check_declared(&"k", Some(6)).unwrap_err().kind(), BackendErrorKind::TooLarge);
        let one = Bytes::from_static(b"abc");
        b.push(&"k", one.clone()).unwrap();
        b.push(&"k", Bytes::new()).unwrap();
        let single = BoundedBody { chunks: vec![one.clone()], ..BoundedBody::new(5) }.finish();
        assert_eq!(single.as_ptr(), one.as_ptr(), "one chunk is not copied");
        b.push(&"k", Bytes::from_static(b"de")).unwrap();
        assert_eq!(b.finish(), Bytes::from_static(b"abcde"));
        let mut b = BoundedBody::new(5);
        b.push(&"k", Bytes::from_static(b"abc")).unwrap();
        let e = b.push(&"k", Bytes::from_static(b"def")).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::TooLarge);
        assert!(BoundedBody::new(0).finish().is_empty());
    }
}
