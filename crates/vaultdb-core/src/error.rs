//! The client-level error type and the product's error codes.
//!
//! Every fallible public operation returns [`VaultError`]. Its [`VaultError::code`] is one of
//! the product's seven codes, plus `INVALID_INPUT` for a caller's mistake in one request (an
//! invalid id, an oversized record, a backwards range, a stream of the wrong length), kept
//! apart from `INVALID_CONFIG` (the store's or the client's configuration is wrong). The CLI
//! and the REST server pass the codes on verbatim.
//! Messages never contain record ids, record bytes or key material: an id is sensitive
//! metadata (think `alice@example.com`), so errors speak of "the record" instead.

use std::fmt;

use crate::backend::BackendErrorKind;

/// The error codes: the product's seven, then [`ErrorCode::InvalidInput`].
/// [`ErrorCode::as_str`] gives the wire spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Bad threshold, backend list, prefix, segment size or other configuration, or a
    /// configuration that differs from the store's keyring.
    InvalidConfig,
    /// Splitting or serialization failed during `put`.
    SplitFailed,
    /// The integrity check (HMAC-SHA256 tag, zero padding) failed: possible tampering.
    HmacFailed,
    /// Reconstruction or deserialization failed during `get`.
    ReconstructFailed,
    /// Fewer shares reachable than the threshold needs.
    InsufficientShares,
    /// No shares found for the record.
    RecordNotFound,
    /// A storage backend operation failed.
    BackendError,
    /// The caller's request is invalid: a bad record id, a record over `max_record_size`,
    /// a range that starts after its end, a stream longer or shorter than its stated length.
    /// Nothing was read or written. Not one of the product's seven codes: it separates the
    /// caller's mistakes from `INVALID_CONFIG`.
    InvalidInput,
}

impl ErrorCode {
    /// The code's wire spelling, e.g. `"HMAC_FAILED"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "INVALID_CONFIG",
            Self::SplitFailed => "SPLIT_FAILED",
            Self::HmacFailed => "HMAC_FAILED",
            Self::ReconstructFailed => "RECONSTRUCT_FAILED",
            Self::InsufficientShares => "INSUFFICIENT_SHARES",
            Self::RecordNotFound => "RECORD_NOT_FOUND",
            Self::BackendError => "BACKEND_ERROR",
            Self::InvalidInput => "INVALID_INPUT",
        }
    }

    /// Every code: the product's seven in their documented order, then `INVALID_INPUT`.
    pub const ALL: [ErrorCode; 8] = [
        Self::InvalidConfig,
        Self::SplitFailed,
        Self::HmacFailed,
        Self::ReconstructFailed,
        Self::InsufficientShares,
        Self::RecordNotFound,
        Self::BackendError,
        Self::InvalidInput,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened at one backend during one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendOutcome {
    /// The backend's id ([`crate::StorageBackend::id`]).
    pub backend: String,
    /// What happened there.
    pub status: OutcomeStatus,
}

impl BackendOutcome {
    /// A new outcome for `backend`.
    pub fn new(backend: impl Into<String>, status: OutcomeStatus) -> Self {
        Self { backend: backend.into(), status }
    }
}

impl fmt::Display for BackendOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend, self.status)
    }
}

/// The result of one operation at one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutcomeStatus {
    /// The backend did its part.
    Ok,
    /// The backend did not hold the object (not an error for `delete`).
    Missing,
    /// The backend failed with an error of this kind. The message comes from the backend
    /// and never holds object contents.
    Failed {
        /// The kind of failure.
        kind: BackendErrorKind,
        /// The backend's message.
        message: String,
    },
    /// The call did not finish within the per-call timeout.
    TimedOut,
    /// The backend served data that failed a check (CRC, format, or the rebuilt
    /// polynomial): the backend is named as bad.
    Corrupt {
        /// Which check failed.
        reason: String,
    },
    /// The backend was not asked (enough others answered first).
    Skipped,
}

impl OutcomeStatus {
    /// True for [`OutcomeStatus::Ok`] and [`OutcomeStatus::Missing`]: the backend answered.
    pub fn answered(&self) -> bool {
        matches!(self, Self::Ok | Self::Missing)
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Missing => f.write_str("missing"),
            Self::Failed { kind, message } => write!(f, "{kind} error: {message}"),
            Self::TimedOut => f.write_str("timed out"),
            Self::Corrupt { reason } => write!(f, "served bad data ({reason})"),
            Self::Skipped => f.write_str("not asked"),
        }
    }
}

/// Formats a list of outcomes as `a: ok; b: timed out`.
struct Outcomes<'a>(&'a [BackendOutcome]);

impl fmt::Display for Outcomes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, o) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{o}")?;
        }
        Ok(())
    }
}

/// `a: ok; b: timed out`, for logs.
pub(crate) fn outcomes_text(outcomes: &[BackendOutcome]) -> String {
    Outcomes(outcomes).to_string()
}

/// Every error VaultDB returns. See [`VaultError::code`] for the code of each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Configuration is invalid (threshold, backends, prefix, keyring mismatch).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The request is invalid (id, size, range, stream length); nothing was done.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// Serialization or splitting failed during `put`.
    #[error("split failed: {0}")]
    SplitFailed(String),

    /// The rebuilt record failed its integrity check. `bad_backends` names the backends
    /// whose shares were found to be bad, where that could be determined; `outcomes` says
    /// what each backend asked did (empty when the check failed after the shares were
    /// fetched, e.g. while decoding).
    #[error("integrity check failed: {reason}{}", bad_list(.bad_backends))]
    HmacFailed {
        /// Which check failed.
        reason: String,
        /// Backends known to have served bad shares.
        bad_backends: Vec<String>,
        /// What each backend did.
        outcomes: Vec<BackendOutcome>,
    },

    /// Reconstruction or deserialization failed.
    #[error("reconstruction failed: {0}")]
    ReconstructFailed(String),

    /// Fewer than `need` good shares could be had.
    #[error("insufficient shares: need {need}, got {got} ({})", Outcomes(.outcomes))]
    InsufficientShares {
        /// The threshold K.
        need: usize,
        /// Good shares obtained.
        got: usize,
        /// What each backend did.
        outcomes: Vec<BackendOutcome>,
    },

    /// The store's keyring cannot be read, and none may be created: the store holds data
    /// (a new keyring would make all of it unreadable), or a backend that may hold the keyring
    /// cannot be reached. Its code is `INSUFFICIENT_SHARES`.
    #[error("keyring unavailable: {reason} ({})", Outcomes(.outcomes))]
    KeyringUnavailable {
        /// What was found, and what to do.
        reason: String,
        /// What each backend's keyring slot held, or why it could not be read.
        outcomes: Vec<BackendOutcome>,
    },

    /// No shares of the record exist on any reachable backend.
    #[error("record not found")]
    RecordNotFound,

    /// Backend operations failed so that the operation could not complete.
    #[error("backend error during {operation}: {}", Outcomes(.outcomes))]
    Backend {
        /// The operation (`put`, `delete`, ...).
        operation: &'static str,
        /// What each backend did.
        outcomes: Vec<BackendOutcome>,
    },
}

fn bad_list(bad: &[String]) -> String {
    if bad.is_empty() { String::new() } else { format!(" (bad shares from: {})", bad.join(", ")) }
}

impl VaultError {
    /// The error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidConfig(_) => ErrorCode::InvalidConfig,
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::SplitFailed(_) => ErrorCode::SplitFailed,
            Self::HmacFailed { .. } => ErrorCode::HmacFailed,
            Self::ReconstructFailed(_) => ErrorCode::ReconstructFailed,
            Self::InsufficientShares { .. } | Self::KeyringUnavailable { .. } => {
                ErrorCode::InsufficientShares
            }
            Self::RecordNotFound => ErrorCode::RecordNotFound,
            Self::Backend { .. } => ErrorCode::BackendError,
        }
    }

    /// Per-backend outcomes carried by the error, if any.
    pub fn outcomes(&self) -> &[BackendOutcome] {
        match self {
            Self::InsufficientShares { outcomes, .. }
            | Self::KeyringUnavailable { outcomes, .. }
            | Self::Backend { outcomes, .. }
            | Self::HmacFailed { outcomes, .. } => outcomes,
            _ => &[],
        }
    }

    pub(crate) fn invalid_config(msg: impl Into<String>) -> Self {
        Self::InvalidConfig(msg.into())
    }

    pub(crate) fn invalid_input(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }

    /// An integrity failure found without per-backend detail (while decoding a payload
    /// that verified, or a check on the rebuilt secret itself).
    pub(crate) fn hmac_failed(reason: impl Into<String>) -> Self {
        Self::HmacFailed { reason: reason.into(), bad_backends: Vec::new(), outcomes: Vec::new() }
    }
}

/// `Result` with [`VaultError`].
pub type Result<T, E = VaultError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_seven_and_invalid_input() {
        let names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "INVALID_CONFIG",
                "SPLIT_FAILED",
                "HMAC_FAILED",
                "RECONSTRUCT_FAILED",
                "INSUFFICIENT_SHARES",
                "RECORD_NOT_FOUND",
                "BACKEND_ERROR",
                "INVALID_INPUT"
            ]
        );
        let e = VaultError::invalid_input("range start is after its end");
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        assert_eq!(e.to_string(), "invalid input: range start is after its end");
    }

    #[test]
    fn display_names_backends() {
        let e = VaultError::InsufficientShares {
            need: 2,
            got: 1,
            outcomes: vec![
                BackendOutcome::new("aws", OutcomeStatus::Ok),
                BackendOutcome::new("gcp", OutcomeStatus::TimedOut),
            ],
        };
        assert_eq!(e.code(), ErrorCode::InsufficientShares);
        assert_eq!(e.to_string(), "insufficient shares: need 2, got 1 (aws: ok; gcp: timed out)");
        let e = VaultError::hmac_failed("tag mismatch");
        assert_eq!(e.to_string(), "integrity check failed: tag mismatch");
        let e = VaultError::HmacFailed {
            reason: "no 2 shares verify".into(),
            bad_backends: vec!["aws".into()],
            outcomes: vec![
                BackendOutcome::new("aws", OutcomeStatus::Corrupt { reason: "crc".into() }),
                BackendOutcome::new("gcp", OutcomeStatus::Ok),
            ],
        };
        assert_eq!(e.outcomes().len(), 2);
        assert_eq!(e.outcomes()[1].backend, "gcp");
        assert_eq!(
            e.to_string(),
            "integrity check failed: no 2 shares verify (bad shares from: aws)"
        );
    }
}
