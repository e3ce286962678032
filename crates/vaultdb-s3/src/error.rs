//! What S3 adds to the shared HTTP mapping ([`vaultdb_core::backend::http`]): its error
//! codes, and reading the status and code out of the SDK's errors.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use vaultdb_core::BackendErrorKind;
use vaultdb_core::backend::http::{self, Hint, Mapped, Op};

/// What an S3 error code adds to the status:
///
/// | code | hint |
/// |---|---|
/// | `NoSuchBucket`, any code but `NoSuchKey` on a 404 | not about the object: Permanent |
/// | `SlowDown`, `RequestTimeout`, `InternalError`, `ServiceUnavailable` | Transient |
/// | `AuthorizationHeaderMalformed`, `InvalidAccessKeyId`, `AccessDenied` | Permanent |
/// | others (`NoSuchKey`, `PreconditionFailed`, ...) and none | the status decides |
pub(crate) fn hint(status: u16, code: Option<&str>) -> Hint {
    use BackendErrorKind::{Permanent, Transient};
    match code {
        Some("NoSuchBucket") => Hint::NotTheObject,
        None | Some("NoSuchKey") => Hint::Status,
        Some(_) if status == 404 => Hint::NotTheObject,
        Some("SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable") => {
            Hint::Kind(Transient)
        }
        Some("AuthorizationHeaderMalformed" | "InvalidAccessKeyId" | "AccessDenied") => {
            Hint::Kind(Permanent)
        }
        Some(_) => Hint::Status,
    }
}

/// Maps an SDK error of `op` on `key` (a VaultDB key, not the full object name).
pub(crate) fn map_error<E, R>(backend: &str, op: Op, key: &str, err: SdkError<E, R>) -> Mapped
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + HasStatus,
{
    let (kind, detail) = match &err {
        SdkError::ConstructionFailure(_) => {
            (BackendErrorKind::Permanent, "the request could not be built".to_owned())
        }
        SdkError::TimeoutError(_) => (BackendErrorKind::Transient, "timed out".to_owned()),
        SdkError::DispatchFailure(d) => {
            // Credentials that could not be loaded end here too. Those of an SSO profile
            // (token missing or expired) stay so until someone signs in again: Permanent.
            if let Some(login) = sso_login(&err) {
                let kind = BackendErrorKind::Permanent;
                return Mapped::Error(http::error(backend, op, &key, kind, &login));
            }
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
            let message = ctx.err().message().unwrap_or("");
            let detail = format!("HTTP {status} {}: {message}", code.unwrap_or("(no code)"));
            let class = http::classify(op, status, hint(status, code));
            return Mapped::new(class, backend, op, &key, &detail);
        }
        _ => (BackendErrorKind::Other, "unexpected SDK error".to_owned()),
    };
    let detail = format!("{detail}; {}", DisplayErrorContext(&err));
    Mapped::Error(http::error(backend, op, &key, kind, &detail))
}

/// The message of an SSO sign-in that is needed, if that is why `err` happened.
#[cfg(feature = "credential-chain")]
fn sso_login(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    crate::sso::login_message(err)
}

#[cfg(not(feature = "credential-chain"))]
fn sso_login(_err: &(dyn std::error::Error + 'static)) -> Option<String> {
    None
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
    use vaultdb_core::PutMode;
    use vaultdb_core::backend::http::Class;

    use super::*;

    /// What S3 answers mean, through the shared table.
    fn classify(op: Op, status: u16, code: Option<&str>) -> Class {
        http::classify(op, status, hint(status, code))
    }

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        use BackendErrorKind::*;
        use Class::Kind;
        use PutMode::*;
        let cases = [
            (Op::Get, 404, Some("NoSuchKey"), Class::NotFound),
            (Op::Get, 404, None, Class::NotFound),
            (Op::Delete, 404, Some("NoSuchKey"), Class::NotFound),
            (Op::Get, 404, Some("NoSuchBucket"), Kind(Permanent)),
            (Op::List, 404, Some("NoSuchBucket"), Kind(Permanent)),
            (Op::Get, 404, Some("NoSuchVersion"), Kind(Permanent)),
            (Op::Get, 416, Some("InvalidRange"), Class::Empty),
            (Op::Put(Create), 412, Some("PreconditionFailed"), Kind(AlreadyExists)),
            (Op::Put(Create), 409, Some("ConditionalRequestConflict"), Kind(AlreadyExists)),
            (Op::Put(Overwrite), 409, Some("OperationAborted"), Kind(Transient)),
            (Op::Put(Overwrite), 412, None, Kind(Other)),
            (Op::Get, 403, Some("AccessDenied"), Kind(Permanent)),
            (Op::Get, 401, None, Kind(Permanent)),
            (Op::Get, 400, Some("AuthorizationHeaderMalformed"), Kind(Permanent)),
            (Op::Get, 301, Some("PermanentRedirect"), Kind(Permanent)),
            (Op::Put(Create), 501, Some("NotImplemented"), Kind(Permanent)),
            (Op::Get, 503, Some("SlowDown"), Kind(Transient)),
            (Op::Get, 429, None, Kind(Transient)),
            (Op::Get, 500, Some("InternalError"), Kind(Transient)),
            (Op::Get, 502, None, Kind(Transient)),
            (Op::Get, 400, Some("RequestTimeout"), Kind(Transient)),
            (Op::Get, 400, Some("InvalidArgument"), Kind(Other)),
        ];
        for (op, status, code, want) in cases {
            assert_eq!(classify(op, status, code), want, "{op:?} {status} {code:?}");
        }
    }
}
