//! What GCS adds to the shared HTTP mapping ([`vaultdb_core::backend::http`]): telling a
//! missing bucket from a missing object, and reading the status out of `gcloud-storage`'s
//! errors.

use gcloud_storage::http::Error;
use vaultdb_core::BackendErrorKind;
use vaultdb_core::backend::http::{self, Hint, Mapped, Op};

/// A 404 whose message names the bucket (and not a missing object) is about the bucket.
pub(crate) fn hint(status: u16, message: &str) -> Hint {
    let m = message.to_ascii_lowercase();
    if status == 404 && m.contains("bucket") && !m.contains("no such object") {
        Hint::NotTheObject
    } else {
        Hint::Status
    }
}

/// Maps an error of `op` on `key` (a VaultDB key).
///
/// Besides the status table: connection, timeout, request, body and decode errors without a
/// status, a failed middleware and a failed token refresh (the token endpoint or metadata
/// server did not answer) are Transient; a request that could not be built is Permanent.
pub(crate) fn map_error(backend: &str, op: Op, key: &str, err: Error) -> Mapped {
    let kind = match &err {
        Error::Response(r) => {
            let class = http::classify(op, r.code, hint(r.code, &r.message));
            return Mapped::new(class, backend, op, &key, &err);
        }
        Error::HttpClient(e) | Error::RawResponse(e, _) => match e.status() {
            Some(s) => {
                let class = http::classify(op, s.as_u16(), Hint::Status);
                return Mapped::new(class, backend, op, &key, &err);
            }
            None if e.is_builder() => BackendErrorKind::Permanent,
            None => BackendErrorKind::Transient,
        },
        Error::HttpMiddleware(_) | Error::TokenSource(_) => BackendErrorKind::Transient,
        _ => BackendErrorKind::Other,
    };
    Mapped::Error(http::error(backend, op, &key, kind, &err))
}

#[cfg(test)]
mod tests {
    use vaultdb_core::PutMode;
    use vaultdb_core::backend::http::Class;

    use super::*;

    fn classify(op: Op, status: u16, message: &str) -> Class {
        http::classify(op, status, hint(status, message))
    }

    #[test]
    fn statuses_map_to_kinds() {
        use BackendErrorKind::*;
        use Class::Kind;
        use PutMode::*;
        let cases = [
            (Op::Get, 404, "No such object: b/k", Class::NotFound),
            (Op::Delete, 404, "", Class::NotFound),
            (Op::Get, 404, "The specified bucket does not exist.", Kind(Permanent)),
            (Op::List, 404, "Not Found", Kind(Permanent)),
            (Op::Put(Create), 404, "", Kind(Permanent)),
            (Op::Get, 416, "Requested range not satisfiable", Class::Empty),
            (Op::Put(Create), 412, "conditionNotMet", Kind(AlreadyExists)),
            (Op::Put(Overwrite), 412, "", Kind(Other)),
            (Op::Put(Overwrite), 409, "", Kind(Transient)),
            (Op::Get, 401, "", Kind(Permanent)),
            (Op::Get, 403, "", Kind(Permanent)),
            (Op::Get, 429, "", Kind(Transient)),
            (Op::Get, 503, "", Kind(Transient)),
            (Op::Get, 500, "", Kind(Transient)),
            (Op::Get, 400, "invalid", Kind(Other)),
        ];
        for (op, status, message, want) in cases {
            assert_eq!(classify(op, status, message), want, "{op:?} {status} {message:?}");
        }
    }
}
