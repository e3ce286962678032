//! The command line's error: a code and a one-line message, printed as
//! `error: <CODE>: <message>`.

use std::fmt;

use vaultdb_core::VaultError;

/// Code for a broken audit chain (`vaultdb audit verify`).
pub const AUDIT_CHAIN_BROKEN: &str = "AUDIT_CHAIN_BROKEN";

/// An error the command line reports and exits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// A code of docs/DESIGN.md section 6 (`INVALID_CONFIG`, `RECORD_NOT_FOUND`, ...) or one
    /// of this crate's (`AUDIT_CHAIN_BROKEN`).
    pub code: &'static str,
    /// One line, without ids or record data.
    pub message: String,
}

impl CliError {
    /// An error with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: one_line(&message.into()) }
    }

    /// An `INVALID_CONFIG` error (bad configuration, bad input).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new("INVALID_CONFIG", message)
    }
}

impl From<VaultError> for CliError {
    fn from(e: VaultError) -> Self {
        Self::new(e.code().as_str(), e.to_string())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: {}", self.code, self.message)
    }
}

impl std::error::Error for CliError {}

/// Collapses whitespace runs (newlines included) into single spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
