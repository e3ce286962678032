//! Mapping `gcloud-storage` errors to [`BackendErrorKind`]s, in one place.

use gcloud_storage::http::Error;
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

/// "No such object" (success for `get` and `delete`) or an error.
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

/// What an HTTP status (and the error message, to tell a missing bucket from a missing
/// object) means for `op`; `None` is "no such object".
///
/// | status | kind |
/// |---|---|
/// | 404 on get / delete, unless the message names the bucket | not found |
/// | 404 for a missing bucket, any 404 on put / list | Permanent |
/// | 412 (and 409) on a create-only put | AlreadyExists |
/// | 401, 403 | Permanent |
/// | 408, 429, 5xx, 409 on other operations | Transient |
/// | anything else | Other |
pub(crate) fn classify(op: Op, status: u16, message: &str) -> Option<BackendErrorKind> {
    use BackendErrorKind::*;
    let create = matches!(op, Op::Put(PutMode::Create));
    let missing_bucket = {
        let m = message.to_ascii_lowercase();
        m.contains("bucket") && !m.contains("no such object")
    };
    match status {
        404 if matches!(op, Op::Get | Op::Delete) && !missing_bucket => None,
        404 => Some(Permanent),
        412 | 409 if create => Some(AlreadyExists),
        401 | 403 => Some(Permanent),
        408 | 409 | 429 | 500..=599 => Some(Transient),
        _ => Some(Other),
    }
}

/// Maps an error of `op` on `key` (a VaultDB key).
pub(crate) fn map_error(backend: &str, op: Op, key: &str, err: Error) -> Mapped {
    let what = format!("{backend}: {} {key:?}", op.name());
    let kind = match &err {
        Error::Response(r) => match classify(op, r.code, &r.message) {
            Some(kind) => kind,
            None => return Mapped::NotFound,
        },
        Error::HttpClient(e) | Error::RawResponse(e, _) => match e.status() {
            Some(s) => match classify(op, s.as_u16(), "") {
                Some(kind) => kind,
                None => return Mapped::NotFound,
            },
            None if e.is_builder() => BackendErrorKind::Permanent,
            // Connect, timeout, request, body and decode errors: the network or a cut-off
            // response.
            None => BackendErrorKind::Transient,
        },
        Error::HttpMiddleware(_) => BackendErrorKind::Transient,
        // Fetching or refreshing an access token failed (token endpoint or metadata server
        // unreachable); credentials that cannot work fail when the backend is created.
        Error::TokenSource(_) => BackendErrorKind::Transient,
        _ => BackendErrorKind::Other,
    };
    let message = if kind == BackendErrorKind::AlreadyExists {
        format!("{what}: the object already exists ({err})")
    } else {
        format!("{what}: {err}")
    };
    Mapped::Error(BackendError::new(kind, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        use BackendErrorKind::*;
        let create = Op::Put(PutMode::Create);
        let over = Op::Put(PutMode::Overwrite);
        assert_eq!(classify(Op::Get, 404, "No such object: b/k"), None);
        assert_eq!(classify(Op::Delete, 404, ""), None);
        assert_eq!(classify(Op::Get, 404, "The specified bucket does not exist."), Some(Permanent));
        assert_eq!(classify(Op::List, 404, "Not Found"), Some(Permanent));
        assert_eq!(classify(create, 404, ""), Some(Permanent));
        assert_eq!(classify(create, 412, "conditionNotMet"), Some(AlreadyExists));
        assert_eq!(classify(over, 412, ""), Some(Other));
        assert_eq!(classify(over, 409, ""), Some(Transient));
        assert_eq!(classify(Op::Get, 401, ""), Some(Permanent));
        assert_eq!(classify(Op::Get, 403, ""), Some(Permanent));
        assert_eq!(classify(Op::Get, 429, ""), Some(Transient));
        assert_eq!(classify(Op::Get, 503, ""), Some(Transient));
        assert_eq!(classify(Op::Get, 500, ""), Some(Transient));
        assert_eq!(classify(Op::Get, 400, "invalid"), Some(Other));
    }
}
