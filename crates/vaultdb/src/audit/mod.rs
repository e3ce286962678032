//! The audit log: one JSON object per line, each line authenticated with a key that only
//! the store's clients hold and chained to the line before it, and the chain's head
//! checkpointed as a record of the store itself.
//!
//! A line looks like this (one line in the file; wrapped here):
//!
//! ```text
//! {"seq":2,"ts":"2026-05-01T12:00:00.123Z","log":"<32 hex>","actor":"admin",
//!  "op":"record.put","tag":"k2mf0q4v8s1c9u3e5g7i2k4m6o","outcome":"OK",
//!  "prev":"<64 hex>","mac":"<64 hex>"}
//! ```
//!
//! - `seq` is the line's number in the file, from 1; `ts` is UTC; `log` names the log (a
//!   random id, drawn by its first line); `actor` is the token's name (`cli` for the command
//!   line, `anonymous` for a request without a valid token); `op` is the operation; `tag`
//!   is the record's name tag ([`vaultdb_core::VaultDb::name_tag`]), never its id, and
//!   `null` for operations on no single record; `outcome` is `OK` or the error code; an
//!   optional `count` says how many requests one line stands for (the server aggregates
//!   refused requests without a valid token). Record data never appears.
//! - `mac` is the hex HMAC-SHA256 of the line's text without its `mac` field, keyed with
//!   [`AuditKey`], a key derived from the store's naming key: someone holding the log file
//!   but fewer than K backends cannot compute it, so cannot edit, forge, reorder or extend
//!   lines. `prev` is the previous line's `mac`.
//! - The first line of a log is its genesis line (`op` `audit.genesis`, actor `vaultdb`),
//!   which draws the log id; its `prev` is 64 zeros, or, when it continues an old unkeyed
//!   log (format v1, lines with a `hash` field), the SHA-256 of the last v1 line.
//! - The chain's head (log id, `seq`, `mac`) is checkpointed as a record of the store's
//!   system namespace ([`Checkpoint`]), so that lines cut off the end, up to the last
//!   checkpoint, show: [`verify_bytes`] requires the checkpointed line, with its `mac`.
//!
//! docs/FORMAT.md section 15 specifies the format byte by byte; docs/SECURITY.md says what
//! the log proves and what it cannot. Appends take an exclusive lock on the file (`flock`),
//! read the last line, and write the new one, so a server and command-line runs can share
//! one log.
//!
//! Modules: `line` (one line: [`AuditKey`], [`Line`], parsing), `log` ([`AuditLog`]:
//! appends and checkpoints), `checkpoint` ([`Checkpoint`]) and `verify` ([`verify_bytes`]).

mod checkpoint;
mod line;
mod log;
mod verify;

use std::time::{SystemTime, UNIX_EPOCH};

pub use checkpoint::{
    CHECKPOINT_PREFIX, Checkpoint, checkpoint_id, list_checkpoints, read_checkpoint,
};
pub use line::{
    AuditKey, GENESIS_ACTOR, GENESIS_OP, KEY_PURPOSE, Line, V1_GENESIS_TEXT, ZERO_PREV, v1_genesis,
};
pub use log::{AuditLog, CHECKPOINT_TIMEOUT, CheckpointError, Head, check_writable};
pub use verify::{Broken, Verified, log_id, verify_bytes};

/// The actor of the command line's lines.
pub const CLI_ACTOR: &str = "cli";

/// The actor of requests without a valid token (counted on aggregated lines).
pub const ANONYMOUS_ACTOR: &str = "anonymous";

/// Actor names the log gives to itself, the command line and unauthenticated requests:
/// no token may be named so (the configuration is refused), so that a line's actor cannot
/// be passed off as one of them.
pub const RESERVED_ACTORS: [&str; 3] = [GENESIS_ACTOR, CLI_ACTOR, ANONYMOUS_ACTOR];

/// One audit event.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Who: the token's name, `cli`, or `anonymous`.
    pub actor: &'a str,
    /// What: `record.put`, `record.get`, ...
    pub op: &'a str,
    /// The record's name tag (text form), if the operation concerns one record.
    pub tag: Option<&'a str>,
    /// `OK` or the error code.
    pub outcome: &'a str,
    /// How many requests this line stands for, when it aggregates several.
    pub count: Option<u64>,
}

/// The current UTC time as RFC 3339 with milliseconds, e.g. `2026-05-01T12:00:00.123Z`.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

/// Formats seconds since the Unix epoch (UTC).
pub fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_767_225_599, 999), "2025-12-31T23:59:59.999Z");
    }
}
