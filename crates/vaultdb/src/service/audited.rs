//! The audited runner: every store operation, on the command line and in the server, runs
//! through [`Auditor::run`], which writes one audit line (actor, [`Operation`], the record's
//! name tag, outcome) whatever the operation's result.

use std::fmt;
use std::future::Future;

use vaultdb_core::VaultDb;

use crate::audit::Event;

/// What an audit line says was done (its `op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `record.put`: a record stored from JSON, a file or standard input.
    RecordPut,
    /// `record.put_raw`: a record stored from a raw HTTP body.
    RecordPutRaw,
    /// `record.get`: a record read.
    RecordGet,
    /// `record.get_raw`: a record's bytes read over HTTP (whole, or a range).
    RecordGetRaw,
    /// `record.delete`: every version of a record deleted.
    RecordDelete,
    /// `record.list`: the ids listed.
    RecordList,
    /// `record.repair`: a record's shares repaired.
    RecordRepair,
    /// `store.status`: the backends' health.
    StoreStatus,
    /// `store.scrub`: every record repaired.
    StoreScrub,
    /// `metrics`: the server's metrics read.
    Metrics,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 10] = [
        Self::RecordPut,
        Self::RecordPutRaw,
        Self::RecordGet,
        Self::RecordGetRaw,
        Self::RecordDelete,
        Self::RecordList,
        Self::RecordRepair,
        Self::StoreStatus,
        Self::StoreScrub,
        Self::Metrics,
    ];

    /// The name written in the audit log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RecordPut => "record.put",
            Self::RecordPutRaw => "record.put_raw",
            Self::RecordGet => "record.get",
            Self::RecordGetRaw => "record.get_raw",
            Self::RecordDelete => "record.delete",
            Self::RecordList => "record.list",
            Self::RecordRepair => "record.repair",
            Self::StoreStatus => "store.status",
            Self::StoreScrub => "store.scrub",
            Self::Metrics => "metrics",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where audit events go: the command line appends to the log and warns on standard error
/// when it cannot; the server appends off the async threads and counts failures.
pub trait AuditSink {
    /// Whether events are written at all (if not, name tags are not even computed).
    fn enabled(&self) -> bool {
        true
    }

    /// Writes one event. A failure never fails the operation, which has happened: the sink
    /// reports it its own way.
    fn write(&self, event: Event<'_>) -> impl Future<Output = ()> + Send;
}

/// Runs store operations and writes their audit lines to a sink; records are named in the
/// log by their name tag in the store, never by id.
#[derive(Debug)]
pub struct Auditor<'a, S> {
    db: &'a VaultDb,
    sink: &'a S,
}

impl<'a, S: AuditSink + Sync> Auditor<'a, S> {
    /// An auditor for operations on `db`, writing to `sink`.
    pub fn new(db: &'a VaultDb, sink: &'a S) -> Self {
        Self { db, sink }
    }

    /// Writes one line: `actor` did `op` (to the record `id`, if one) with `outcome` (`OK`
    /// or an error code).
    pub async fn record(&self, actor: &str, op: Operation, id: Option<&str>, outcome: &str) {
        if !self.sink.enabled() {
            return;
        }
        let tag = id.map(|i| self.db.name_tag(i).to_text());
        self.sink.write(Event { actor, op: op.as_str(), tag: tag.as_deref(), outcome }).await;
    }

    /// Runs `operation` and writes its line: `OK`, or the error's code.
    ///
    /// # Errors
    /// The operation's.
    pub async fn run<T>(
        &self,
        actor: &str,
        op: Operation,
        id: Option<&str>,
        operation: impl Future<Output = vaultdb_core::Result<T>>,
    ) -> vaultdb_core::Result<T> {
        let r = operation.await;
        let outcome = match &r {
            Ok(_) => "OK",
            Err(e) => e.code().as_str(),
        };
        self.record(actor, op, id, outcome).await;
        r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vaultdb_core::{MemoryBackend, Record, VaultDb};

    use super::*;

    /// An event as `(actor, op, tag, outcome)`.
    type Row = (String, String, Option<String>, String);

    /// Keeps every event.
    #[derive(Default)]
    struct Memory(Mutex<Vec<Row>>);

    impl AuditSink for Memory {
        async fn write(&self, e: Event<'_>) {
            let row = (e.actor.into(), e.op.into(), e.tag.map(Into::into), e.outcome.into());
            self.0.lock().unwrap().push(row);
        }
    }

    #[test]
    fn operation_names_are_distinct_dotted_words() {
        let names: std::collections::BTreeSet<&str> =
            Operation::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names.len(), Operation::ALL.len());
        for n in names {
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'), "{n}");
        }
    }

    #[tokio::test]
    async fn run_records_the_outcome_and_the_tag_never_the_id() {
        let mut b = VaultDb::builder().threshold(2);
        for i in 1..=3 {
            b = b.backend(MemoryBackend::new(format!("m{i}"), "memory"));
        }
        let db = b.open().await.unwrap();
        let sink = Memory::default();
        let audit = Auditor::new(&db, &sink);
        let put = db.put(Record::new("secret-id", b"x".to_vec()));
        audit.run("alice", Operation::RecordPut, Some("secret-id"), put).await.unwrap();
        let e = audit.run("bob", Operation::RecordGet, Some("nope"), db.get("nope")).await;
        assert!(e.is_err());
        audit.record("anonymous", Operation::Metrics, None, "UNAUTHORIZED").await;
        let rows = sink.0.into_inner().unwrap();
        let tag = |id: &str| Some(db.name_tag(id).to_text());
        let row = |a: &str, o: &str, t: Option<String>, c: &str| {
            (a.to_owned(), o.to_owned(), t, c.to_owned())
        };
        assert_eq!(
            rows,
            [
                row("alice", "record.put", tag("secret-id"), "OK"),
                row("bob", "record.get", tag("nope"), "RECORD_NOT_FOUND"),
                row("anonymous", "metrics", None, "UNAUTHORIZED"),
            ]
        );
    }
}
