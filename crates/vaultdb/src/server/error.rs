//! Error answers: `{"error": {"code", "message", "backends"?}}` with the code's status.
//! [`ERROR_CODES`] lists every code the server answers with; every one is made here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use vaultdb_core::{ErrorCode, OutcomeStatus, VaultError};

use super::extract::JsonLine;

/// Every error code the server answers with, and its status: the store's eight (see
/// [`ApiError::status_of`]) and the server's own. The OpenAPI document lists exactly these
/// as the values of `code`, and crates/vaultdb/README.md documents them.
pub const ERROR_CODES: [(&str, StatusCode); 17] = [
    ("INVALID_REQUEST", StatusCode::BAD_REQUEST),
    ("INVALID_INPUT", StatusCode::BAD_REQUEST),
    ("INVALID_CONFIG", StatusCode::BAD_REQUEST),
    ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
    ("FORBIDDEN", StatusCode::FORBIDDEN),
    ("RECORD_NOT_FOUND", StatusCode::NOT_FOUND),
    ("NOT_FOUND", StatusCode::NOT_FOUND),
    ("METHOD_NOT_ALLOWED", StatusCode::METHOD_NOT_ALLOWED),
    ("PAYLOAD_TOO_LARGE", StatusCode::PAYLOAD_TOO_LARGE),
    ("RANGE_NOT_SATISFIABLE", StatusCode::RANGE_NOT_SATISFIABLE),
    ("SPLIT_FAILED", StatusCode::INTERNAL_SERVER_ERROR),
    ("RECONSTRUCT_FAILED", StatusCode::INTERNAL_SERVER_ERROR),
    ("HMAC_FAILED", StatusCode::BAD_GATEWAY),
    ("INSUFFICIENT_SHARES", StatusCode::SERVICE_UNAVAILABLE),
    ("BACKEND_ERROR", StatusCode::SERVICE_UNAVAILABLE),
    ("REQUEST_TIMEOUT", StatusCode::SERVICE_UNAVAILABLE),
    ("AUDIT_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
];

/// The code of an error answer, kept in its extensions for the audit middleware.
#[derive(Clone, Debug)]
pub(super) struct Outcome(pub(super) String);

/// One backend's part in a failed operation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BackendStatus {
    /// The backend's id.
    pub backend: String,
    /// `ok`, `missing`, `failed`, `timed_out`, `corrupt` or `skipped`.
    pub status: String,
}

/// The error object.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: one of the store's or one of the server's; each has one status
    /// (crates/vaultdb/README.md has the table).
    #[schema(example = "RECORD_NOT_FOUND")]
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Per-backend outcomes, for availability errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendStatus>,
}

/// Every error response: `{"error": {...}}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// An error answer: status, code, message. Internals (backend messages, paths) stay in
/// the logs; clients get the code, a short message and per-backend statuses.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                backends: Vec::new(),
            },
        }
    }

    /// 400 `INVALID_REQUEST`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 401 `UNAUTHORIZED` (with `WWW-Authenticate: Bearer`).
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "a valid bearer token is required (Authorization: Bearer <token>)",
        )
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    /// 404 `NOT_FOUND`: no such route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "method not allowed on this route",
        )
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 416 `RANGE_NOT_SATISFIABLE` (the caller adds `Content-Range: bytes */<total>`).
    pub fn range_not_satisfiable(start: u64, total: u64) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_NOT_SATISFIABLE",
            format!("the range starts at {start}; the record has {total} bytes"),
        )
    }

    /// 503 `REQUEST_TIMEOUT`.
    pub fn timed_out(after: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "REQUEST_TIMEOUT",
            format!("the request took longer than {after:?}"),
        )
    }

    /// 400 `INVALID_CONFIG` for every request once the store has moved (a re-share to a new
    /// configuration fenced it): the server must be restarted on the new configuration.
    pub fn moved() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_CONFIG",
            "this store has moved to a new configuration (`vaultdb reshare`); this server still \
             runs on the old one and refuses every request: restart `vaultdb serve` with the \
             new configuration file (--config NEW.toml)",
        )
    }

    /// 503 `AUDIT_UNAVAILABLE`: the audit log cannot be written (and fails closed).
    pub fn audit_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, crate::service::AUDIT_UNAVAILABLE, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.detail.code
    }

    /// The HTTP status for each of the store's codes.
    pub fn status_of(code: ErrorCode) -> StatusCode {
        match code {
            ErrorCode::InvalidConfig | ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::RecordNotFound => StatusCode::NOT_FOUND,
            ErrorCode::InsufficientShares | ErrorCode::BackendError => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::HmacFailed => StatusCode::BAD_GATEWAY,
            ErrorCode::SplitFailed | ErrorCode::ReconstructFailed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn short_status(s: &OutcomeStatus) -> &'static str {
    match s {
        OutcomeStatus::Ok => "ok",
        OutcomeStatus::Missing => "missing",
        OutcomeStatus::Failed { .. } => "failed",
        OutcomeStatus::TimedOut => "timed_out",
        OutcomeStatus::Corrupt { .. } => "corrupt",
        OutcomeStatus::Skipped => "skipped",
        _ => "other",
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let code = e.code();
        let status = Self::status_of(code);
        let message = match &e {
            // Client errors say exactly what is wrong (never the id itself).
            VaultError::InvalidConfig(_)
            | VaultError::InvalidInput(_)
            | VaultError::RecordNotFound => e.to_string(),
            VaultError::InsufficientShares { need, got, .. } => {
                format!("not enough backends answered: need {need} good shares, got {got}")
            }
            VaultError::HmacFailed { .. } => {
                "the rebuilt record failed its integrity check; bad shares are being reported"
                    .to_owned()
            }
            VaultError::Backend { operation, .. } => {
                format!("too few backends completed the {operation}")
            }
            _ => "the record could not be processed".to_owned(),
        };
        if status.is_server_error() {
            tracing::warn!(code = %code, "request failed: {e}");
        }
        let mut err = Self::new(status, code.as_str(), message);
        err.detail.backends = e
            .outcomes()
            .iter()
            .map(|o| BackendStatus {
                backend: o.backend.clone(),
                status: short_status(&o.status).to_owned(),
            })
            .collect();
        if let VaultError::HmacFailed { bad_backends, .. } = &e {
            err.detail.backends = bad_backends
                .iter()
                .map(|b| BackendStatus { backend: b.clone(), status: "corrupt".to_owned() })
                .collect();
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let outcome = Outcome(self.detail.code.clone());
        let mut resp =
            (self.status, JsonLine(ErrorResponse { error: self.detail })).into_response();
        resp.extensions_mut().insert(outcome);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_store_code_has_a_status() {
        for code in ErrorCode::ALL {
            let s = ApiError::status_of(code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}");
        }
        assert_eq!(ApiError::status_of(ErrorCode::RecordNotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::status_of(ErrorCode::InsufficientShares),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    /// The list is exactly what the constructors make: the store's codes and the server's.
    #[test]
    fn error_codes_lists_every_code_made_and_no_other() {
        let mut made: Vec<ApiError> = vec![
            ApiError::invalid_request("m"),
            ApiError::unauthorized(),
            ApiError::forbidden("m"),
            ApiError::no_route(),
            ApiError::method_not_allowed(),
            ApiError::too_large(1),
            ApiError::range_not_satisfiable(9, 8),
            ApiError::timed_out(Duration::from_secs(1)),
            ApiError::audit_unavailable("m"),
            ApiError::moved(),
        ];
        for code in ErrorCode::ALL {
            made.push(ApiError::new(ApiError::status_of(code), code.as_str(), "m"));
        }
        let made: BTreeSet<(String, u16)> =
            made.iter().map(|e| (e.code().to_owned(), e.status().as_u16())).collect();
        let listed: BTreeSet<(String, u16)> =
            ERROR_CODES.iter().map(|(c, s)| ((*c).to_owned(), s.as_u16())).collect();
        assert_eq!(made, listed);
        assert_eq!(listed.len(), ERROR_CODES.len(), "no code listed twice");
    }
}
