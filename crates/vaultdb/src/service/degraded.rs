//! What counts as degraded: an operation that succeeded although a backend it asked did not
//! answer as it should (the record was missing there, the call failed or timed out, or the
//! backend served bad data). A backend that was not asked because enough others answered
//! first ([`OutcomeStatus::Skipped`]) is no problem. The server flags degraded answers
//! (`x-vaultdb-degraded: true`); the command line prints a warning naming the backends.

use vaultdb_core::{BackendOutcome, OutcomeStatus};

/// Whether this outcome is a problem.
pub fn is_problem(status: &OutcomeStatus) -> bool {
    !matches!(status, OutcomeStatus::Ok | OutcomeStatus::Skipped)
}

/// The outcomes that are problems.
pub fn problems(outcomes: &[BackendOutcome]) -> impl Iterator<Item = &BackendOutcome> {
    outcomes.iter().filter(|o| is_problem(&o.status))
}

/// Whether an operation with these outcomes was degraded.
pub fn degraded(outcomes: &[BackendOutcome]) -> bool {
    problems(outcomes).next().is_some()
}

#[cfg(test)]
mod tests {
    use vaultdb_core::BackendErrorKind;

    use super::*;

    #[test]
    fn skipped_is_fine_everything_else_but_ok_is_not() {
        let o = |status| BackendOutcome { backend: "b".into(), status };
        assert!(!degraded(&[]));
        assert!(!degraded(&[o(OutcomeStatus::Ok), o(OutcomeStatus::Skipped)]));
        for bad in [
            OutcomeStatus::Missing,
            OutcomeStatus::TimedOut,
            OutcomeStatus::Failed { kind: BackendErrorKind::Transient, message: "x".into() },
            OutcomeStatus::Corrupt { reason: "crc".into() },
        ] {
            assert!(degraded(&[o(OutcomeStatus::Ok), o(bad.clone())]), "{bad:?}");
            assert_eq!(problems(&[o(OutcomeStatus::Skipped), o(bad)]).count(), 1);
        }
    }
}
