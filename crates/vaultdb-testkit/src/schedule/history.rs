//! The history: what each operation of a run asked and got back.

use std::fmt::Write as _;
use std::ops::Range;

use vaultdb_core::{ErrorCode, Version};

use super::plan::{OpSpec, spec_text};

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// A put succeeded.
    Put {
        /// The version written.
        version: Version,
        /// Backends (index) that acknowledged it.
        acks: Vec<usize>,
    },
    /// A read returned data.
    Read {
        /// The version read.
        version: Version,
        /// The bytes.
        data: Vec<u8>,
        /// The record's content type.
        content_type: Option<String>,
        /// The byte range the bytes are (clamped by the client).
        range: Range<u64>,
        /// The record's whole length.
        total: u64,
        /// False if the record carried another id than the one asked for.
        id_ok: bool,
        /// Backends (index) that failed, lacked their share or served bad data while the
        /// record's head was read (a degraded read starts a read-repair, if enabled).
        degraded: Vec<usize>,
    },
    /// A delete succeeded (`found`: false when it answered `RECORD_NOT_FOUND`).
    Deleted {
        /// Whether anything was there.
        found: bool,
        /// Backends (index) that confirmed (empty when it answered `RECORD_NOT_FOUND`).
        confirmed: Vec<usize>,
    },
    /// The client abandoned the put (its writer "crashed").
    Cancelled,
    /// The operation failed.
    Failed {
        /// The error code.
        code: ErrorCode,
        /// The error's text.
        message: String,
        /// For a failed put: the backends that acknowledged it anyway (backend numbers, as
        /// everywhere in a history: see [`Reshare`](super::Reshare)).
        acks: Vec<usize>,
    },
}

impl OpResult {
    /// `ok`, `not-found`, `cancelled`, or the error code, for summaries.
    pub fn outcome(&self) -> &'static str {
        match self {
            OpResult::Put { .. }
            | OpResult::Read { .. }
            | OpResult::Deleted { found: true, .. } => "ok",
            OpResult::Deleted { found: false, .. } => "RECORD_NOT_FOUND",
            OpResult::Cancelled => "cancelled",
            OpResult::Failed { code, .. } => code.as_str(),
        }
    }
}

/// The configuration a client used for an operation (docs/FAULTS.md "Re-sharing").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Store {
    /// The store the run starts with (the only one without a re-share).
    Old,
    /// The store a re-share fills, through a client opened with `migrating_from` the old
    /// one (or, after the run, on its own).
    New,
}

/// One operation of a run: what was asked, when, and what came back.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// The operation's number in the plan.
    pub op: u32,
    /// The client that ran it.
    pub client: usize,
    /// The round it ran in.
    pub round: usize,
    /// What was asked.
    pub spec: OpSpec,
    /// Through a client of which configuration.
    pub store: Store,
    /// Logical time of the invocation.
    pub inv: u64,
    /// Logical time of the response (after `inv`; one clock for the whole run).
    pub res: u64,
    /// For a put: the value written.
    pub value: Vec<u8>,
    /// What came back.
    pub result: OpResult,
    /// How long it took (virtual time).
    pub took: std::time::Duration,
}

impl OpRecord {
    pub(super) fn acked_put(&self) -> Option<(&Version, &[usize])> {
        match &self.result {
            OpResult::Put { version, acks } => Some((version, acks)),
            _ => None,
        }
    }

    pub(super) fn deleted(&self) -> bool {
        matches!(self.result, OpResult::Deleted { .. })
    }

    pub(super) fn succeeded_write(&self) -> bool {
        self.acked_put().is_some() || self.deleted()
    }

    pub(super) fn text(&self, ids: &[String]) -> String {
        let result = match &self.result {
            OpResult::Put { version, acks } => format!("ok version {version} acks {acks:?}"),
            OpResult::Read { version, data, range, total, degraded, .. } => {
                let head: String =
                    String::from_utf8_lossy(&data[..data.len().min(40)]).chars().collect();
                format!(
                    "version {version} bytes {}..{} of {total}: {head:?}{}{}",
                    range.start,
                    range.end,
                    if data.len() > 40 { "..." } else { "" },
                    if degraded.is_empty() {
                        String::new()
                    } else {
                        format!(" (degraded: {degraded:?})")
                    }
                )
            }
            OpResult::Deleted { found, confirmed } => {
                format!("deleted (found: {found}, confirmed by {confirmed:?})")
            }
            OpResult::Cancelled => "abandoned by its writer".to_owned(),
            OpResult::Failed { code, message, acks } => {
                let mut s = format!("{}: {message}", code.as_str());
                if self.spec.is_put() {
                    let _ = write!(s, " [acks {acks:?}]");
                }
                s
            }
        };
        format!(
            "[{:>5}..{:>5}] r{} c{}{} #{} {} -> {result}",
            self.inv,
            self.res,
            self.round,
            self.client,
            if self.store == Store::New { " (new config)" } else { "" },
            self.op,
            spec_text(&self.spec, ids)
        )
    }
}
