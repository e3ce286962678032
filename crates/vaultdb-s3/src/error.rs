//! Mapping SDK errors to [`BackendErrorKind`]s, in one place.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use vaultdb_core::{BackendError, BackendErrorKind, PutMode};

/// The operation that failed, which decides what a status means.
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

/// A mapped error: "no such object" (which `get` and `delete` turn into success) or a
/// [`BackendError`].
#[derive(Debug)]
pub(crate) enum Mapped {
    NotFound,
    Error(BackendError),
}

impl Mapped {
    /// The error, for operations where "not found" is a failure too.
    pub(crate) fn into_error(self) -> BackendError {
        match self {
            Mapped::NotFound => {
                BackendError::new(BackendErrorKind::Other, "unexpected 404 Not Found")
            }
            Mapped::Error(e) => e,
        }
    }
}

impl From<Mapped> for BackendError {
    fn from(m: Mapped) -> Self {
        m.into_error()
    }
}

/// What an HTTP status and S3 error code mean for `op`. `None` means "no such object".
///
/// | status / code | kind |
/// |---|---|
/// | 404 `NoSuchKey` (or no code) on get/delete | not found |
/// | `NoSuchBucket`, other 404s | Permanent |
/// | 412 `PreconditionFailed`, 409 `ConditionalRequestConflict` on a create | AlreadyExists |
/// | 401, 403, 301/307 (wrong region), 400 `AuthorizationHeaderMalformed`, 501 | Permanent |
/// | 408, 409 (other ops), 429, 5xx except 501, `SlowDown`, `RequestTimeout`, `InternalError` | Transient |
/// | anything else | Other |
pub(crate) fn classify(op: Op, status: u16, code: Option<&str>) -> Option<BackendErrorKind> {
    use BackendErrorKind::*;
    let create = matches!(op, Op::Put(PutMode::Create));
    match (status, code) {
        (_, Some("NoSuchBucket")) => Some(Permanent),
        (_, Some("NoSuchKey")) if matches!(op, Op::Get | Op::Delete) => None,
        (404, None) if matches!(op, Op::Get | Op::Delete) => None,
        (_, Some("PreconditionFailed")) | (412, _) if create => Some(AlreadyExists),
        (409, _) if create => Some(AlreadyExists),
        (_, Some("SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable")) => {
            Some(Transient)
        }
        (_, Some("AuthorizationHeaderMalformed" | "InvalidAccessKeyId" | "AccessDenied")) => {
            Some(Permanent)
        }
        (401 | 403, _) => Some(Permanent),
        (301 | 307, _) => Some(Permanent),
        (404, _) => Some(Permanent),
        // Not Implemented: the store lacks a feature the backend needs (conditional writes).
        (501, _) => Some(Permanent),
        (408 | 409 | 429, _) => Some(Transient),
        (500..=599, _) => Some(Transient),
        _ => Some(Other),
    }
}

/// Maps an SDK error for `op` on `key` (a VaultDB key, not the full object key).
pub(crate) fn map_error<E, R>(backend: &str, op: Op, key: &str, err: SdkError<E, R>) -> Mapped
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + HasStatus,
{
    let what = format!("{backend}: {} {key:?}", op.name());
    let (kind, detail) = match &err {
        SdkError::ConstructionFailure(_) => {
            (BackendErrorKind::Permanent, "the request could not be built".to_owned())
        }
        SdkError::TimeoutError(_) => (BackendErrorKind::Transient, "timed out".to_owned()),
        SdkError::DispatchFailure(d) => {
            let kind =
                if d.is_user() { BackendErrorKind::Permanent } else { BackendErrorKind::Transient };
            (kind, "the request could not be sent".to_owned())
        }
        SdkError::ResponseError(_) => {
            (BackendErrorKind::Transient, "the response could not be read".to_owned())
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status_code();
            let code = ctx.err().code();
            let Some(kind) = classify(op, status, code) else {
                return Mapped::NotFound;
            };
            let message = ctx.err().message().unwrap_or("");
            (kind, format!("HTTP {status} {}: {message}", code.unwrap_or("(no code)")))
        }
        _ => (BackendErrorKind::Other, "unexpected SDK error".to_owned()),
    };
    let message = if kind == BackendErrorKind::AlreadyExists {
        format!("{what}: the object already exists ({detail})")
    } else {
        format!("{what}: {detail}; {}", DisplayErrorContext(&err))
    };
    Mapped::Error(BackendError::new(kind, message))
}

/// The HTTP status of a raw response (a seam so the mapping can be tested without the SDK's
/// response type).
pub(crate) trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        use BackendErrorKind::*;
        let create = Op::Put(PutMode::Create);
        let over = Op::Put(PutMode::Overwrite);
        assert_eq!(classify(Op::Get, 404, Some("NoSuchKey")), None);
        assert_eq!(classify(Op::Get, 404, None), None);
        assert_eq!(classify(Op::Delete, 404, Some("NoSuchKey")), None);
        assert_eq!(classify(Op::Get, 404, Some("NoSuchBucket")), Some(Permanent));
        assert_eq!(classify(Op::List, 404, Some("NoSuchBucket")), Some(Permanent));
        assert_eq!(classify(create, 412, Some("PreconditionFailed")), Some(AlreadyExists));
        assert_eq!(classify(create, 409, Some("ConditionalRequestConflict")), Some(AlreadyExists));
        assert_eq!(classify(over, 409, Some("OperationAborted")), Some(Transient));
        assert_eq!(classify(over, 412, None), Some(Other));
        assert_eq!(classify(Op::Get, 403, Some("AccessDenied")), Some(Permanent));
        assert_eq!(classify(Op::Get, 401, None), Some(Permanent));
        assert_eq!(classify(Op::Get, 400, Some("AuthorizationHeaderMalformed")), Some(Permanent));
        assert_eq!(classify(Op::Get, 301, Some("PermanentRedirect")), Some(Permanent));
        assert_eq!(classify(create, 501, Some("NotImplemented")), Some(Permanent));
        assert_eq!(classify(Op::Get, 503, Some("SlowDown")), Some(Transient));
        assert_eq!(classify(Op::Get, 429, None), Some(Transient));
        assert_eq!(classify(Op::Get, 500, Some("InternalError")), Some(Transient));
        assert_eq!(classify(Op::Get, 502, None), Some(Transient));
        assert_eq!(classify(Op::Get, 400, Some("RequestTimeout")), Some(Transient));
        assert_eq!(classify(Op::Get, 400, Some("InvalidArgument")), Some(Other));
    }
}
