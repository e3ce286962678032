//! Mapping object_store errors to [`BackendErrorKind`]s, in one place.

use std::error::Error as StdError;

use object_store::client::HttpError;
use vaultdb_core::{BackendError, BackendErrorKind, PutMode};

/// The operation that failed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Put(PutMode),
    Get,
    Delete,
    List,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put(PutMode::Create) => "create",
            Op::Put(PutMode::Overwrite) => "put",
            Op::Get => "get",
            Op::Delete => "delete",
            Op::List => "list",
        }
    }
}

/// "No such blob" (success for `get` and `delete`) or an error.
#[derive(Debug)]
pub(crate) enum Mapped {
    NotFound,
    Error(BackendError),
}

impl Mapped {
    pub(crate) fn into_error(self) -> BackendError {
        match self {
            Mapped::NotFound => {
                BackendError::new(BackendErrorKind::Other, "unexpected 404 Not Found")
            }
            Mapped::Error(e) => e,
        }
    }
}

/// The text of an error and its sources, with anything that looks like a SAS signature
/// removed (object_store already leaves URLs out of errors of SAS-signed requests; this is a
/// second line).
pub(crate) fn redact(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = s.source();
    }
    while let Some(i) = text.find("sig=") {
        let end =
            text[i..].find(|c: char| c == '&' || c.is_whitespace()).map_or(text.len(), |j| i + j);
        text.replace_range(i..end, "sig=<redacted>");
        if text[i..].starts_with("sig=<redacted>") && !text[i + 14..].contains("sig=") {
            break;
        }
    }
    text
}

/// The HTTP status in an error's text ("... status code: 503 Service Unavailable ...").
/// object_store keeps the status in a private type, so its message is the only place to read
/// it from.
fn status_in(text: &str) -> Option<u16> {
    let i = text.find("status code: ")? + "status code: ".len();
    text.get(i..i + 3)?.parse().ok()
}

/// True if a transport-level [`HttpError`] (connect, timeout, reset) is in the source chain.
fn is_transport(err: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// What a status means for an error object_store left generic.
pub(crate) fn classify_status(status: u16) -> BackendErrorKind {
    match status {
        401 | 403 | 404 => BackendErrorKind::Permanent,
        408 | 429 | 500..=599 => BackendErrorKind::Transient,
        _ => BackendErrorKind::Other,
    }
}

/// Maps an error of `op` on `key` (a VaultDB key).
///
/// | object_store error (HTTP status) | kind |
/// |---|---|
/// | `NotFound` (404) on get / delete | not found, unless the container is missing |
/// | `NotFound` for a missing container (`ContainerNotFound`), other 404s | Permanent |
/// | `AlreadyExists` (409) or `Precondition` (412) on a create-only put | AlreadyExists |
/// | `AlreadyExists` (409) on other operations (lease or container conflicts) | Transient |
/// | `PermissionDenied` (403), `Unauthenticated` (401) | Permanent |
/// | `Generic` with 401, 403, 404 (a listing of a missing container) | Permanent |
/// | `Generic` with 408, 429, 5xx, or a transport error (connect, timeout, reset) | Transient |
/// | `NotSupported`, `NotImplemented`, `InvalidPath`, configuration errors | Permanent |
/// | anything else | Other |
pub(crate) fn map_error(backend: &str, op: Op, key: &str, err: object_store::Error) -> Mapped {
    use BackendErrorKind::*;
    use object_store::Error as E;
    let text = redact(&err);
    let create = matches!(op, Op::Put(PutMode::Create));
    let kind = match &err {
        E::NotFound { .. } => {
            if text.contains("ContainerNotFound") {
                Permanent
            } else if matches!(op, Op::Get | Op::Delete) {
                return Mapped::NotFound;
            } else {
                Permanent
            }
        }
        E::AlreadyExists { .. } | E::Precondition { .. } if create => AlreadyExists,
        E::AlreadyExists { .. } => Transient,
        E::Precondition { .. } | E::NotModified { .. } => Other,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => Permanent,
        E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::InvalidPath { .. }
        | E::UnknownConfigurationKey { .. } => Permanent,
        E::Generic { source, .. } => match status_in(&text) {
            Some(s) => classify_status(s),
            None if is_transport(source.as_ref()) => Transient,
            // Credential fetches (token endpoint, metadata service) that failed without a
            // status: most likely the network.
            None if text.contains("credential") || text.contains("token") => Transient,
            None => Other,
        },
        _ => Other,
    };
    let message = if kind == AlreadyExists {
        format!("{backend}: {} {key:?}: the blob already exists", op.name())
    } else {
        format!("{backend}: {} {key:?}: {text}", op.name())
    };
    Mapped::Error(BackendError::new(kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_redaction() {
        assert_eq!(
            status_in("Server returned non-2xx status code: 503 Service Unavailable: x"),
            Some(503)
        );
        assert_eq!(status_in("no status"), None);
        assert_eq!(classify_status(503), BackendErrorKind::Transient);
        assert_eq!(classify_status(429), BackendErrorKind::Transient);
        assert_eq!(classify_status(500), BackendErrorKind::Transient);
        assert_eq!(classify_status(403), BackendErrorKind::Permanent);
        assert_eq!(classify_status(404), BackendErrorKind::Permanent);
        assert_eq!(classify_status(400), BackendErrorKind::Other);
        let e = std::io::Error::other("GET https://a/c/k?sv=1&sig=SECRET%3D&se=2 failed");
        let r = redact(&e);
        assert!(!r.contains("SECRET"), "{r}");
        assert!(r.contains("sig=<redacted>&se=2"), "{r}");
    }

    #[test]
    fn typed_errors_map_to_kinds() {
        use object_store::Error as E;
        let src = || -> Box<dyn StdError + Send + Sync> { "x".into() };
        let m = |op, e| map_error("az", op, "k", e);
        let create = Op::Put(PutMode::Create);
        assert!(matches!(
            m(Op::Get, E::NotFound { path: "k".into(), source: src() }),
            Mapped::NotFound
        ));
        let container =
            E::NotFound { path: "k".into(), source: "404 <Code>ContainerNotFound</Code>".into() };
        let Mapped::Error(e) = m(Op::Get, container) else { panic!() };
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let Mapped::Error(e) = m(create, E::AlreadyExists { path: "k".into(), source: src() })
        else {
            panic!()
        };
        assert_eq!(e.kind(), BackendErrorKind::AlreadyExists);
        let Mapped::Error(e) = m(create, E::Precondition { path: "k".into(), source: src() })
        else {
            panic!()
        };
        assert_eq!(e.kind(), BackendErrorKind::AlreadyExists);
        let Mapped::Error(e) = m(Op::List, E::PermissionDenied { path: "k".into(), source: src() })
        else {
            panic!()
        };
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let generic = E::Generic {
            store: "MicrosoftAzure",
            source: "Server returned non-2xx status code: 503 Service Unavailable: busy".into(),
        };
        let Mapped::Error(e) = m(Op::Get, generic) else { panic!() };
        assert_eq!(e.kind(), BackendErrorKind::Transient);
    }
}
