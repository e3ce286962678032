//! The audited runner: every store operation, on the command line and in the server, is
//! logged through an [`Auditor`]: one audit line (actor, [`Operation`], the record's name
//! tag, outcome) whatever the operation's result.
//!
//! The log fails closed unless configured otherwise (`[audit] fail_open`): an operation is
//! checked against its sink before it runs ([`AuditSink::ready`]), and a result whose line
//! could not be written is withheld ([`AuditUnavailable`], code `AUDIT_UNAVAILABLE`). Data
//! read as a stream is released chunk by chunk, but its last chunk only once the line is
//! written ([`AuditedStream`]). Refused requests without a valid token are counted
//! ([`Tally`]) and written one line per second per kind, with a `count`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use vaultdb_core::{VaultDb, VaultError};

use crate::audit::Event;
use crate::error::CliError;

/// The code of an operation refused, or whose result was withheld, because its audit line
/// could not be written.
pub const AUDIT_UNAVAILABLE: &str = "AUDIT_UNAVAILABLE";

/// The outcome logged for a stream its reader dropped before the end (the client went
/// away, or the command line could not write its output).
pub const CLIENT_CLOSED: &str = "CLIENT_CLOSED";

/// What an audit line says was done (its `op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// `store.reshare`: the store moved to a new configuration (`vaultdb reshare`), written
    /// to the audit logs of both.
    StoreReshare,
    /// `metrics`: the server's metrics read.
    Metrics,
    /// `http.unrouted`: a request under `/v1/` that no route or method serves.
    Unrouted,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 12] = [
        Self::RecordPut,
        Self::RecordPutRaw,
        Self::RecordGet,
        Self::RecordGetRaw,
        Self::RecordDelete,
        Self::RecordList,
        Self::RecordRepair,
        Self::StoreStatus,
        Self::StoreScrub,
        Self::StoreReshare,
        Self::Metrics,
        Self::Unrouted,
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
            Self::StoreReshare => "store.reshare",
            Self::Metrics => "metrics",
            Self::Unrouted => "http.unrouted",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An audit line could not be written, and the log fails closed: the operation was refused
/// (or its result withheld). The message says which, for the front end to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditUnavailable {
    /// For people: what could not be written, and what happened to the operation.
    pub message: String,
}

impl fmt::Display for AuditUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuditUnavailable {}

/// Why an audited operation gives no result: its own error, or the audit log's.
#[derive(Debug)]
pub enum Audited {
    /// The store's error (the operation's line says so).
    Store(VaultError),
    /// The audit log could not be written.
    Audit(AuditUnavailable),
}

impl From<VaultError> for Audited {
    fn from(e: VaultError) -> Self {
        Self::Store(e)
    }
}

impl From<AuditUnavailable> for Audited {
    fn from(e: AuditUnavailable) -> Self {
        Self::Audit(e)
    }
}

impl fmt::Display for Audited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::Audit(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Audited {}

impl From<AuditUnavailable> for CliError {
    fn from(e: AuditUnavailable) -> Self {
        CliError::new(AUDIT_UNAVAILABLE, e.message)
    }
}

impl From<Audited> for CliError {
    fn from(e: Audited) -> Self {
        match e {
            Audited::Store(e) => e.into(),
            Audited::Audit(e) => e.into(),
        }
    }
}

/// Where audit events go: the command line appends to the log in place; the server appends
/// off the async threads and counts failures. Each decides, by its configuration, whether a
/// line that cannot be written refuses the operation (fails closed, the default) or only
/// warns (fails open).
pub trait AuditSink {
    /// Whether events are written at all (if not, name tags are not even computed).
    fn enabled(&self) -> bool {
        true
    }

    /// Before an operation runs: whether its line can be written. `Err` refuses it.
    fn ready(&self) -> impl Future<Output = Result<(), AuditUnavailable>> + Send;

    /// Writes one event. `Err` when the line could not be written and the log fails
    /// closed: the operation's result is then withheld.
    fn write(&self, event: Event<'_>) -> impl Future<Output = Result<(), AuditUnavailable>> + Send;
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

    /// The name tag (text form) the log gives the record `id`.
    pub fn tag(&self, id: &str) -> String {
        self.db.name_tag(id).to_text()
    }

    /// Whether an operation may run: its line can be written (or the log fails open).
    ///
    /// # Errors
    /// [`AuditUnavailable`] when it may not.
    pub async fn ready(&self) -> Result<(), AuditUnavailable> {
        if self.sink.enabled() { self.sink.ready().await } else { Ok(()) }
    }

    /// Writes one line: `actor` did `op` (to the record `id`, if one) with `outcome` (`OK`
    /// or an error code).
    ///
    /// # Errors
    /// [`AuditUnavailable`] if the line could not be written and the log fails closed.
    pub async fn record(
        &self,
        actor: &str,
        op: Operation,
        id: Option<&str>,
        outcome: &str,
    ) -> Result<(), AuditUnavailable> {
        if !self.sink.enabled() {
            return Ok(());
        }
        let tag = id.map(|i| self.tag(i));
        let event = Event { actor, op: op.as_str(), tag: tag.as_deref(), outcome, count: None };
        self.sink.write(event).await
    }

    /// Checks that the line can be written, runs `operation`, and writes its line: `OK`, or
    /// the error's code. A result whose line could not be written is withheld.
    ///
    /// # Errors
    /// The operation's; [`Audited::Audit`] if the log fails closed and cannot be written
    /// (before the operation: it did not run; after: it ran, its result is withheld).
    pub async fn run<T>(
        &self,
        actor: &str,
        op: Operation,
        id: Option<&str>,
        operation: impl Future<Output = vaultdb_core::Result<T>>,
    ) -> Result<T, Audited> {
        self.ready().await?;
        let r = operation.await;
        let outcome = match &r {
            Ok(_) => "OK",
            Err(e) => e.code().as_str(),
        };
        self.record(actor, op, id, outcome).await?;
        Ok(r?)
    }
}

impl<S: AuditSink + Clone + Send + Sync + 'static> Auditor<'_, S> {
    /// Checks that the line can be written, then opens a read stream: if it cannot be
    /// opened, its line is written now with the error's code; otherwise the line is
    /// written when the stream ends ([`AuditedStream`]).
    ///
    /// # Errors
    /// The store's, once logged; [`Audited::Audit`] as [`Auditor::run`].
    pub async fn open_stream<St>(
        &self,
        actor: &str,
        op: Operation,
        id: Option<&str>,
        open: impl Future<Output = vaultdb_core::Result<St>>,
    ) -> Result<AuditedStream<S, St>, Audited>
    where
        St: Stream<Item = vaultdb_core::Result<Bytes>> + Unpin,
    {
        self.ready().await?;
        match open.await {
            Ok(stream) => {
                let tag = if self.sink.enabled() { id.map(|i| self.tag(i)) } else { None };
                let line = StreamLine { actor: actor.to_owned(), op, tag };
                Ok(AuditedStream::new(self.sink.clone(), line, stream))
            }
            Err(e) => {
                self.record(actor, op, id, e.code().as_str()).await?;
                Err(Audited::Store(e))
            }
        }
    }
}

/// Who did what to which record: the line an [`AuditedStream`] writes when it ends.
#[derive(Clone, Debug)]
pub struct StreamLine {
    /// The actor.
    pub actor: String,
    /// The operation.
    pub op: Operation,
    /// The record's name tag ([`Auditor::tag`]).
    pub tag: Option<String>,
}

type Writing = Pin<Box<dyn Future<Output = Result<(), AuditUnavailable>> + Send>>;

/// A stream of verified chunks whose audit line is written when it ends: `OK` after the
/// last chunk was read, or the error's code, or [`CLIENT_CLOSED`] if it is dropped before
/// the end. The last chunk is held back until the line is written, so a small record (one
/// chunk) is never released unlogged; if the line cannot be written and the log fails
/// closed, the stream ends with [`Audited::Audit`] instead of that chunk.
pub struct AuditedStream<S: AuditSink + Clone + Send + Sync + 'static, St> {
    inner: St,
    sink: S,
    /// The line, until it is written.
    line: Option<StreamLine>,
    /// The chunk read last, not yet released.
    held: Option<Bytes>,
    /// The line being written, and the error to yield after it (if the read failed).
    writing: Option<(Writing, Option<VaultError>)>,
    done: bool,
}

// Nothing in it is pinned in place (the write in flight is boxed, the inner stream Unpin).
impl<S: AuditSink + Clone + Send + Sync + 'static, St: Unpin> Unpin for AuditedStream<S, St> {}

impl<S: AuditSink + Clone + Send + Sync + 'static, St> fmt::Debug for AuditedStream<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditedStream").field("line", &self.line).finish_non_exhaustive()
    }
}

impl<S, St> AuditedStream<S, St>
where
    S: AuditSink + Clone + Send + Sync + 'static,
    St: Stream<Item = vaultdb_core::Result<Bytes>> + Unpin,
{
    /// Wraps `inner`, whose line `line` goes to `sink`.
    pub fn new(sink: S, line: StreamLine, inner: St) -> Self {
        Self { inner, sink, line: Some(line), held: None, writing: None, done: false }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &St {
        &self.inner
    }

    /// Ends the stream early, writing its line with `outcome` (if it was not written).
    ///
    /// # Errors
    /// [`AuditUnavailable`] if the line could not be written and the log fails closed.
    pub async fn finish(mut self, outcome: &str) -> Result<(), AuditUnavailable> {
        match self.line.take() {
            Some(line) => write_line(self.sink.clone(), line, outcome.to_owned()).await,
            None => Ok(()),
        }
    }

    /// Starts writing the line with `outcome`; `then` is the error to yield afterwards.
    fn start_write(&mut self, outcome: &str, then: Option<VaultError>) {
        let fut: Writing = match self.line.take() {
            Some(line) => Box::pin(write_line(self.sink.clone(), line, outcome.to_owned())),
            None => Box::pin(std::future::ready(Ok(()))),
        };
        self.writing = Some((fut, then));
    }
}

/// Writes a stream's line to `sink` (nothing if the sink is disabled).
async fn write_line<S: AuditSink>(
    sink: S,
    line: StreamLine,
    outcome: String,
) -> Result<(), AuditUnavailable> {
    if !sink.enabled() {
        return Ok(());
    }
    let event = Event {
        actor: &line.actor,
        op: line.op.as_str(),
        tag: line.tag.as_deref(),
        outcome: &outcome,
        count: None,
    };
    sink.write(event).await
}

impl<S, St> Stream for AuditedStream<S, St>
where
    S: AuditSink + Clone + Send + Sync + 'static,
    St: Stream<Item = vaultdb_core::Result<Bytes>> + Unpin,
{
    type Item = Result<Bytes, Audited>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some((fut, _)) = this.writing.as_mut() {
                let written = ready!(fut.as_mut().poll(cx));
                let then = this.writing.take().and_then(|(_, then)| then);
                this.done = true;
                return Poll::Ready(match (written, then) {
                    (Err(a), _) => Some(Err(Audited::Audit(a))),
                    (Ok(()), Some(e)) => Some(Err(Audited::Store(e))),
                    (Ok(()), None) => this.held.take().map(Ok),
                });
            }
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(chunk)) => {
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Some(Err(e)) => {
                    this.held = None;
                    let code = e.code().as_str();
                    this.start_write(code, Some(e));
                }
                None => this.start_write("OK", None),
            }
        }
    }
}

impl<S: AuditSink + Clone + Send + Sync + 'static, St> Drop for AuditedStream<S, St> {
    fn drop(&mut self) {
        // Dropped before the end: the reader went away. The line is written on the runtime
        // (there is no other way to wait in `drop`).
        if let Some(line) = self.line.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let sink = self.sink.clone();
            rt.spawn(async move {
                let _ = write_line(sink, line, CLIENT_CLOSED.to_owned()).await;
            });
        }
    }
}

/// Refused requests without a valid token, counted by (operation, outcome) until they are
/// written as one line each, with a `count` (the server does so once a second): a flood of
/// them costs a few lines a second, not one synced line per request, and every one is
/// still accounted for.
#[derive(Debug, Default)]
pub struct Tally(Mutex<BTreeMap<(Operation, String), u64>>);

impl Tally {
    /// Counts `n` more requests of this kind.
    pub fn add(&self, op: Operation, outcome: &str, n: u64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry((op, outcome.to_owned())).or_default() += n;
        }
    }

    /// Takes every count, leaving none.
    pub fn drain(&self) -> Vec<(Operation, String, u64)> {
        self.0
            .lock()
            .map(|mut m| std::mem::take(&mut *m).into_iter().map(|((o, c), n)| (o, c, n)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::StreamExt;
    use vaultdb_core::{MemoryBackend, Record, VaultDb};

    use super::*;

    /// An event as `(actor, op, tag, outcome)`.
    type Row = (String, String, Option<String>, String);

    /// Keeps every event; refuses everything once `broken`.
    #[derive(Clone, Default)]
    struct Memory {
        rows: Arc<Mutex<Vec<Row>>>,
        broken: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Memory {
        fn check(&self) -> Result<(), AuditUnavailable> {
            if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
                Err(AuditUnavailable { message: "broken".into() })
            } else {
                Ok(())
            }
        }

        fn rows(&self) -> Vec<Row> {
            self.rows.lock().unwrap().clone()
        }
    }

    impl AuditSink for Memory {
        async fn ready(&self) -> Result<(), AuditUnavailable> {
            self.check()
        }

        async fn write(&self, e: Event<'_>) -> Result<(), AuditUnavailable> {
            self.check()?;
            let row = (e.actor.into(), e.op.into(), e.tag.map(Into::into), e.outcome.into());
            self.rows.lock().unwrap().push(row);
            Ok(())
        }
    }

    fn row(a: &str, o: &str, t: Option<String>, c: &str) -> Row {
        (a.to_owned(), o.to_owned(), t, c.to_owned())
    }

    async fn store(segment_size: usize) -> VaultDb {
        let mut b = VaultDb::builder().threshold(2).segment_size(segment_size);
        for i in 1..=3 {
            b = b.backend(MemoryBackend::new(format!("m{i}"), "memory"));
        }
        b.open().await.unwrap()
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
        let db = store(1 << 20).await;
        let sink = Memory::default();
        let audit = Auditor::new(&db, &sink);
        let put = db.put(Record::new("secret-id", b"x".to_vec()));
        audit.run("alice", Operation::RecordPut, Some("secret-id"), put).await.unwrap();
        let e = audit.run("bob", Operation::RecordGet, Some("nope"), db.get("nope")).await;
        assert!(matches!(e, Err(Audited::Store(VaultError::RecordNotFound))));
        audit.record("anonymous", Operation::Metrics, None, "UNAUTHORIZED").await.unwrap();
        let tag = |id: &str| Some(db.name_tag(id).to_text());
        assert_eq!(
            sink.rows(),
            [
                row("alice", "record.put", tag("secret-id"), "OK"),
                row("bob", "record.get", tag("nope"), "RECORD_NOT_FOUND"),
                row("anonymous", "metrics", None, "UNAUTHORIZED"),
            ]
        );
    }

    #[tokio::test]
    async fn a_sink_that_cannot_write_refuses_the_operation_before_it_runs() {
        let db = store(1 << 20).await;
        let sink = Memory::default();
        sink.broken.store(true, std::sync::atomic::Ordering::SeqCst);
        let audit = Auditor::new(&db, &sink);
        let put = db.put(Record::new("r", b"x".to_vec()));
        let r = audit.run("alice", Operation::RecordPut, Some("r"), put).await;
        assert!(matches!(r, Err(Audited::Audit(_))));
        assert!(matches!(db.get("r").await, Err(VaultError::RecordNotFound)), "never ran");
    }

    #[tokio::test]
    async fn a_stream_is_logged_when_it_ends_and_holds_its_last_chunk_until_then() {
        let db = store(1024).await;
        db.put(Record::new("big", vec![5u8; 3000])).await.unwrap();
        let line = StreamLine { actor: "cli".into(), op: Operation::RecordGet, tag: None };

        let sink = Memory::default();
        let mut s =
            AuditedStream::new(sink.clone(), line.clone(), db.get_stream("big").await.unwrap());
        let mut got = Vec::new();
        while let Some(chunk) = s.next().await {
            if got.len() + chunk.as_ref().unwrap().len() == 3000 {
                assert_eq!(sink.rows().len(), 1, "logged before the last chunk");
            } else {
                assert!(sink.rows().is_empty());
            }
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got.len(), 3000);
        drop(s);
        assert_eq!(sink.rows(), [row("cli", "record.get", None, "OK")]);

        // The log breaks while the stream runs: its last chunk is withheld.
        let sink = Memory::default();
        let mut s =
            AuditedStream::new(sink.clone(), line.clone(), db.get_stream("big").await.unwrap());
        let first = s.next().await.unwrap().unwrap();
        sink.broken.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut released = first.len();
        let mut refused = false;
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(c) => released += c.len(),
                Err(e) => refused = matches!(e, Audited::Audit(_)),
            }
        }
        assert!(refused && released < 3000, "{released} bytes released");

        // Dropped part way: the reader went away.
        let sink = Memory::default();
        let mut s = AuditedStream::new(sink.clone(), line, db.get_stream("big").await.unwrap());
        s.next().await.unwrap().unwrap();
        drop(s);
        for _ in 0..100 {
            if !sink.rows().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(sink.rows(), [row("cli", "record.get", None, CLIENT_CLOSED)]);
    }

    #[test]
    fn a_tally_counts_by_kind_and_drains() {
        let t = Tally::default();
        t.add(Operation::RecordGet, "UNAUTHORIZED", 1);
        t.add(Operation::RecordGet, "UNAUTHORIZED", 2);
        t.add(Operation::RecordPut, "UNAUTHORIZED", 1);
        assert_eq!(
            t.drain(),
            [
                (Operation::RecordPut, "UNAUTHORIZED".to_owned(), 1),
                (Operation::RecordGet, "UNAUTHORIZED".to_owned(), 3),
            ]
        );
        assert!(t.drain().is_empty());
    }
}
