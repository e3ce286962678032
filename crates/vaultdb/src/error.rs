//! The command line's error: a code and a one-line message, printed as
//! `error: <CODE>: <message>`.

use std::fmt;

use vaultdb_core::VaultError;

/// Code for a broken audit chain (`vaultdb audit verify`).
pub const AUDIT_CHAIN_BROKEN: &str = "AUDIT_CHAIN_BROKEN";

/// Code for a command line the parser refused (unknown command or flag, missing argument).
pub const USAGE_ERROR: &str = "USAGE_ERROR";

/// Code for a command stopped by Ctrl-C (SIGINT); what it wrote was removed.
pub const INTERRUPTED: &str = "INTERRUPTED";

/// Code for output that could not be written because its reader went away (`vaultdb get
/// big | head -c 100`): the command stops quietly, as Unix tools do.
pub const BROKEN_PIPE: &str = "BROKEN_PIPE";

/// The exit status of each error code, documented in the README ("Exit codes"); anything
/// else exits 1. Codes of the store's errors keep their own status, so that scripts can
/// tell a missing record (5) from a missing store (6) or an outage (7, 8).
pub const EXIT_CODES: &[(&str, u8)] = &[
    ("INTERNAL_ERROR", 1),
    (USAGE_ERROR, 2),
    ("INVALID_CONFIG", 3),
    ("INVALID_INPUT", 4),
    ("RECORD_NOT_FOUND", 5),
    (crate::service::STORE_NOT_FOUND, 6),
    ("INSUFFICIENT_SHARES", 7),
    ("BACKEND_ERROR", 8),
    ("HMAC_FAILED", 9),
    ("RECONSTRUCT_FAILED", 10),
    ("SPLIT_FAILED", 11),
    (crate::service::AUDIT_UNAVAILABLE, 12),
    (AUDIT_CHAIN_BROKEN, 13),
    // The server's answers to a missing or wrong token, or a role without the right
    // (remote mode: `vaultdb --server URL`).
    ("UNAUTHORIZED", 14),
    ("FORBIDDEN", 15),
    (INTERRUPTED, 130),
    (BROKEN_PIPE, 141),
];

/// The exit status for an error `code` ([`EXIT_CODES`]; 1 for a code not listed).
pub fn exit_code(code: &str) -> u8 {
    EXIT_CODES.iter().find(|(c, _)| *c == code).map_or(1, |(_, s)| *s)
}

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

    /// An `INVALID_CONFIG` error (bad configuration).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new("INVALID_CONFIG", message)
    }

    /// An `INVALID_INPUT` error: the command's input (a file, standard input, a flag's
    /// value) is unusable; nothing was written.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new("INVALID_INPUT", message)
    }

    /// This error's exit status ([`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        exit_code(self.code)
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

/// Collapses whitespace runs (newlines included) into single spaces, and shows other
/// control characters (a terminal's escape sequences start with one) as `\u{fffd}`, so that
/// no message, whoever wrote it (a backend, a server), can rewrite the user's terminal.
pub fn one_line(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect())
        .collect::<Vec<String>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_without_control_characters() {
        assert_eq!(one_line(" a\n b\t\tc "), "a b c");
        assert_eq!(one_line("x\u{1b}]0;t\u{7}\u{9b}2J"), "x\u{fffd}]0;t\u{fffd}\u{fffd}2J");
        assert_eq!(CliError::new("X", "\u{1b}[2J").message, "\u{fffd}[2J");
    }

    #[test]
    fn every_code_has_its_own_exit_status() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, status) in EXIT_CODES {
            assert!(seen.insert(*status), "{code}: status {status} is used twice");
            assert_eq!(exit_code(code), *status);
        }
        for code in vaultdb_core::ErrorCode::ALL {
            assert_ne!(exit_code(code.as_str()), 1, "{} has its own status", code.as_str());
        }
        assert_eq!(exit_code("SOMETHING_ELSE"), 1);
    }

    #[test]
    fn the_readme_documents_each_codes_exit_status() {
        let readme = include_str!("../README.md");
        let table = &readme[readme.find("### Exit codes").unwrap()..];
        let table = &table[..table.find("\n## ").unwrap()];
        let rows: Vec<(u8, &str)> = table
            .lines()
            .filter_map(|l| {
                let mut cells = l.strip_prefix('|')?.split('|');
                let status = cells.next()?.trim().parse().ok()?;
                Some((status, cells.next()?.trim().trim_matches('`')))
            })
            .collect();
        for (code, status) in EXIT_CODES {
            let code = if *status == 141 { "" } else { *code };
            assert!(rows.contains(&(*status, code)), "README: {status} {code:?} in {rows:?}");
        }
        assert_eq!(rows.len(), EXIT_CODES.len() + 1, "and success: {rows:?}");
        // Elsewhere, "`CODE` ... exit N" says the table's status.
        let mut mentions = 0;
        for (at, _) in readme.match_indices("exit ") {
            let Ok(n) = readme[at + 5..].split([')', ',', ';']).next().unwrap().parse::<u8>()
            else {
                continue;
            };
            let near = &readme.as_bytes()[at.saturating_sub(30)..at];
            for (c, status) in EXIT_CODES {
                if near.windows(c.len()).any(|w| w == c.as_bytes()) {
                    mentions += 1;
                    assert_eq!(n, *status, "README says {c} exits {n}");
                }
            }
        }
        assert!(mentions >= 3, "{mentions}");
    }
}
