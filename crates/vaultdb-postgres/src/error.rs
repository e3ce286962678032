//! The mapping of sqlx's errors onto [`BackendErrorKind`]s, by SQLSTATE for the server's
//! errors (<https://www.postgresql.org/docs/current/errcodes-appendix.html>):
//!
//! | error | kind |
//! |---|---|
//! | I/O (connection refused, reset, timed out), pool timed out or closed | transient |
//! | I/O of kind `InvalidData`: the server's certificate is not trusted, a TLS protocol error | permanent |
//! | class 08 (connection exception), 40 (transaction rollback: serialization failure, deadlock), 53 (insufficient resources), 55P03 (lock not available), 57014 (query canceled), 57P01 to 57P05 (shutdown, cannot connect now, idle timeout) | transient |
//! | class 28 (authentication), 3D (no such database), 42 (no such table, insufficient privilege), 22 (data exception: a value out of range), TLS, configuration | permanent |
//! | anything else | other |
//!
//! Messages name the operation and the key, and carry sqlx's text: the server's message
//! (never a row's data) or the transport's, never a password.

use std::fmt;

use vaultdb_core::{BackendError, BackendErrorKind};

/// The SQLSTATE of a database error.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The kind of an error with SQLSTATE `code`.
fn kind_of_sqlstate(code: &str) -> BackendErrorKind {
    let class = code.get(..2).unwrap_or_default();
    match (class, code) {
        ("08" | "40" | "53", _)
        | (_, "55P03" | "57014" | "57P01" | "57P02" | "57P03")
        | (_, "57P04" | "57P05") => BackendErrorKind::Transient,
        ("28" | "3D" | "42" | "22", _) => BackendErrorKind::Permanent,
        _ => BackendErrorKind::Other,
    }
}

/// The kind of `e`.
fn kind_of(e: &sqlx::Error) -> BackendErrorKind {
    match e {
        sqlx::Error::Database(_) => {
            sqlstate(e).map_or(BackendErrorKind::Other, |c| kind_of_sqlstate(&c))
        }
        // rustls reports a certificate it does not trust (or a TLS protocol error) during
        // the handshake as I/O of kind InvalidData: retrying cannot help.
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            BackendErrorKind::Permanent
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            BackendErrorKind::Transient
        }
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => BackendErrorKind::Permanent,
        _ => BackendErrorKind::Other,
    }
}

/// Maps an error of `op` (`put`, `get`, ...) on `what` (a key, a prefix, the table).
pub(crate) fn map_error(op: &str, what: &dyn fmt::Display, e: sqlx::Error) -> BackendError {
    let code = sqlstate(&e).map(|c| format!(" [SQLSTATE {c}]")).unwrap_or_default();
    BackendError::new(kind_of(&e), format!("PostgreSQL {op} {what}: {e}{code}"))
}

/// What is wrong with a URL sqlx refused, with any password in it redacted.
pub(crate) fn url_error(e: &sqlx::Error, url: &str) -> String {
    crate::url::redact_in(&e.to_string(), url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        use BackendErrorKind::{Other, Permanent, Transient};
        for (code, kind) in [
            ("08006", Transient), // connection failure
            ("40001", Transient), // serialization failure
            ("40P01", Transient), // deadlock
            ("53300", Transient), // too many connections
            ("57P01", Transient), // admin shutdown
            ("57P03", Transient), // cannot connect now (starting up)
            ("28P01", Permanent), // password authentication failed
            ("3D000", Permanent), // database does not exist
            ("42P01", Permanent), // undefined table
            ("42501", Permanent), // insufficient privilege
            ("22001", Permanent), // string data right truncation
            ("23505", Other),     // unique violation (creates do not raise it)
            ("XX000", Other),     // internal error
        ] {
            assert_eq!(kind_of_sqlstate(code), kind, "{code}");
        }
        assert_eq!(kind_of(&sqlx::Error::PoolTimedOut), Transient);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(kind_of(&sqlx::Error::Io(io)), Transient);
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, "UnknownIssuer");
        assert_eq!(kind_of(&sqlx::Error::Io(tls)), Permanent);
    }
}
