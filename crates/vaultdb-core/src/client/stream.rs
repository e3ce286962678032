//! Large records: segmented writes from an [`AsyncRead`], streamed and ranged reads, and the
//! in-flight byte budget that bounds the client's memory.
//!
//! A record with more data than one segment ([`Settings::segment_size`], 4 MiB by default)
//! is stored as segments, each its own secret with its own MAC (see [`crate::manifest`]),
//! followed by a manifest that plays the part of the record's head. Segments are written
//! before the manifest, so a manifest on W backends means the whole version is there; a
//! write that fails part way leaves only segments without a manifest, which reads ignore
//! and `scrub` removes after the grace period.
//!
//! Memory is bounded by [`Settings::max_inflight_bytes`]: every segment being encoded,
//! written or fetched holds a share of that budget, and a writer or reader that would
//! exceed it waits (backpressure) instead of buffering.
//!
//! [`Settings::segment_size`]: super::Settings::segment_size
//! [`Settings::max_inflight_bytes`]: super::Settings::max_inflight_bytes

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{BoxStream, FuturesOrdered, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::SemaphorePermit;

use super::call::CallError;
use super::read::{Expect, Head, Source};
use super::write::PutResult;
use super::{Inner, VaultDb};
use crate::envelope::Kind;
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::manifest::{Manifest, SEGMENT_HEADER_LEN, segment_data, segment_header};
use crate::naming::{NameTag, validate_id};
use crate::record::Record;
use crate::secret::Binding;
use crate::version::Version;
use crate::wipe::SecretVec;

/// Budget units are KiB, so that any budget fits the semaphore's u32 permits.
const UNIT: usize = 1024;

/// The most segments one stream keeps in flight, whatever the budget.
const MAX_WINDOW: usize = 8;

/// Who a record is, without its data: what [`VaultDb::put_stream`] takes and a
/// [`ReadStream`] reports.
///
/// `Debug` shows sizes only (ids and metadata values are sensitive).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// The record's id.
    pub id: String,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
}

impl RecordMeta {
    /// Metadata for `id`, with no content type and no metadata entries.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), ..Self::default() }
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

impl fmt::Debug for RecordMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordMeta")
            .field("id", &format_args!("<{} bytes>", self.id.len()))
            .field("content_type", &self.content_type)
            .field("metadata", &format_args!("<{} entries>", self.metadata.len()))
            .finish()
    }
}

/// A record's data as a stream of verified chunks (one per segment, or one for a small
/// record), from [`VaultDb::get_stream`] or [`VaultDb::get_range`].
///
/// Every chunk is verified before it is yielded. After an error the stream ends. Segments
/// are fetched a few ahead of the consumer, within the client's in-flight budget: a slow
/// consumer slows the fetching instead of growing memory.
pub struct ReadStream {
    meta: RecordMeta,
    version: Version,
    total_len: u64,
    range: Range<u64>,
    segmented: bool,
    outcomes: Vec<BackendOutcome>,
    bad: Arc<Mutex<Vec<String>>>,
    inner: BoxStream<'static, Result<Bytes>>,
    done: bool,
}

impl ReadStream {
    /// The record's id, content type and metadata.
    pub fn meta(&self) -> &RecordMeta {
        &self.meta
    }

    /// The version being read.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The record's whole data length.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// The byte range this stream yields (the requested range clamped to the data).
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// True if the record is stored as segments.
    pub fn segmented(&self) -> bool {
        self.segmented
    }

    /// What each backend did while the record's head (record or manifest) was found and
    /// verified. Segment reads add to [`ReadStream::bad_backends`].
    pub fn outcomes(&self) -> &[BackendOutcome] {
        &self.outcomes
    }

    /// True if a backend failed, lacked its share or served bad data (so far).
    pub fn degraded(&self) -> bool {
        self.outcomes
            .iter()
            .any(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped))
            || !self.bad_backends().is_empty()
    }

    /// Backends that served bad segment shares so far (the read went on without them).
    pub fn bad_backends(&self) -> Vec<String> {
        self.bad.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Reads the rest of the stream into one buffer.
    ///
    /// # Errors
    /// The first error the stream yields.
    pub async fn collect_bytes(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity((self.range.end - self.range.start) as usize);
        while let Some(chunk) = self.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

impl fmt::Debug for ReadStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadStream")
            .field("meta", &self.meta)
            .field("version", &self.version)
            .field("total_len", &self.total_len)
            .field("range", &self.range)
            .field("segmented", &self.segmented)
            .finish_non_exhaustive()
    }
}

impl Stream for ReadStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = self.inner.poll_next_unpin(cx);
        if matches!(item, Poll::Ready(Some(Err(_)) | None)) {
            self.done = true;
        }
        item
    }
}

impl Inner {
    /// Waits until `bytes` fit the in-flight budget and holds them until the permit drops.
    /// A request larger than the whole budget waits for all of it (and so runs alone).
    pub(crate) async fn admit(&self, bytes: usize) -> Option<SemaphorePermit<'_>> {
        let units = bytes.div_ceil(UNIT).clamp(1, self.budget_units);
        // The semaphore is never closed, so acquiring cannot fail.
        self.inflight.acquire_many(units as u32).await.ok()
    }

    /// Bytes an inline put holds at its peak: the secret and N envelopes.
    pub(crate) fn inline_cost(&self, payload: usize) -> usize {
        let secret = self.settings.padding.padded_len(payload.saturating_add(200));
        secret.saturating_mul(self.n() + 1)
    }

    /// Bytes one segment holds while written (plaintext, secret, N envelopes) or read
    /// (up to N fetched shares, the rebuilt secret and the yielded chunk).
    fn segment_cost(&self) -> usize {
        self.settings.segment_size.saturating_mul(self.n() + 2)
    }

    /// How many segments one stream keeps in flight.
    fn window(&self) -> usize {
        (self.settings.max_inflight_bytes / self.segment_cost().max(1)).clamp(1, MAX_WINDOW)
    }

    /// Removes every segment object of an abandoned write (best effort; scrub removes what
    /// this misses after the grace period).
    async fn remove_segments(&self, tag: NameTag, version: Version, count: u32) {
        for i in 0..count {
            let key = self.keyspace.segment_key(tag, version, i);
            let key = key.as_str();
            let deletes = (0..self.n()).map(|idx| async move { self.delete_key(idx, key).await });
            futures::future::join_all(deletes).await;
        }
    }
}

/// Marks `err` as being about one segment.
fn in_segment(err: VaultError, index: u32, count: u32) -> VaultError {
    match err {
        VaultError::HmacFailed { reason, bad_backends } => VaultError::HmacFailed {
            reason: format!("segment {index} of {count}: {reason}"),
            bad_backends,
        },
        VaultError::ReconstructFailed(reason) => {
            VaultError::ReconstructFailed(format!("segment {index} of {count}: {reason}"))
        }
        other => other,
    }
}

/// Reads exactly `buf.len()` bytes, or says how many came.
async fn fill<R: AsyncRead + Unpin + ?Sized>(reader: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = reader
            .read(&mut buf[got..])
            .await
            .map_err(|e| VaultError::SplitFailed(format!("reading the record's data: {e}")))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

impl VaultDb {
    /// Stores a record whose `len` bytes of data come from `reader`, in bounded memory.
    ///
    /// Data up to one segment is stored like [`VaultDb::put`] stores it; more is cut into
    /// segments written as they are read, with at most the client's in-flight budget held
    /// at once (backpressure: the reader is not read faster than backends accept). The
    /// record becomes visible only when all segments and then the manifest are on W
    /// backends; older versions are removed after that.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for an invalid id; `SPLIT_FAILED` if the reader fails or yields
    /// more or fewer than `len` bytes (nothing becomes visible, written segments are
    /// removed); `BACKEND_ERROR` with per-backend outcomes if fewer than W backends took
    /// every segment.
    #[tracing::instrument(name = "vaultdb.put_stream", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        meta: RecordMeta,
        len: u64,
        mut reader: R,
    ) -> Result<PutResult> {
        validate_id(&meta.id)?;
        let inner = &self.inner;
        let tag = inner.naming.tag(&meta.id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        if len <= inner.settings.segment_size as u64 {
            let mut data = vec![0u8; len as usize];
            let got = fill(&mut reader, &mut data).await?;
            if got < data.len() {
                return Err(VaultError::SplitFailed(format!(
                    "the stream ended after {got} of {len} bytes"
                )));
            }
            if fill(&mut reader, &mut [0u8; 1]).await? != 0 {
                return Err(VaultError::SplitFailed(format!(
                    "the stream is longer than {len} bytes"
                )));
            }
            let record = Record {
                id: meta.id,
                data,
                content_type: meta.content_type,
                metadata: meta.metadata,
            };
            return self.put(record).await;
        }
        self.put_segmented(meta, tag, len, &mut reader).await
    }

    /// Writes a segmented record (see [`VaultDb::put_stream`]).
    pub(crate) async fn put_segmented<R: AsyncRead + Unpin + Send + ?Sized>(
        &self,
        meta: RecordMeta,
        tag: NameTag,
        len: u64,
        reader: &mut R,
    ) -> Result<PutResult> {
        let inner = &self.inner;
        let n = inner.n();
        let manifest = Manifest::new(
            meta.id,
            meta.content_type,
            meta.metadata,
            len,
            inner.settings.segment_size,
        )?;
        let count = manifest.segment_count;
        let version = inner.with_rng(|rng| inner.clock.next_version(rng));
        let binding = Binding { kind: Kind::Segment, tag, version, threshold: inner.threshold };
        // Per backend: the first failure of this write there (that backend is then skipped).
        let mut failed: Vec<Option<CallError>> = (0..n).map(|_| None).collect();
        let mut pending = FuturesOrdered::new();
        let window = inner.window();
        let mut issued = 0u32;

        let absorb = |results: Vec<Result<(), CallError>>, failed: &mut Vec<Option<CallError>>| {
            for (idx, r) in results.into_iter().enumerate() {
                if let Err(e) = r
                    && failed[idx].is_none()
                {
                    tracing::warn!(backend = %inner.ids[idx], error = ?e, "segment write failed");
                    failed[idx] = Some(e);
                }
            }
            failed.iter().filter(|f| f.is_none()).count() >= inner.write_quorum
        };
        let outcomes = |failed: &[Option<CallError>]| -> Vec<BackendOutcome> {
            failed
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    inner.outcome(i, f.as_ref().map_or(OutcomeStatus::Ok, CallError::status))
                })
                .collect()
        };

        let mut abort: Option<VaultError> = None;
        for index in 0..count {
            let want = manifest.segment_range(index);
            let want = (want.end - want.start) as usize;
            let permit = inner.admit(inner.segment_cost()).await;
            let mut chunk = SecretVec::zeroed(want);
            let got = match fill(reader, &mut chunk).await {
                Ok(got) => got,
                Err(e) => {
                    abort = Some(e);
                    break;
                }
            };
            if got < want {
                let so_far = u64::from(index) * u64::from(manifest.segment_size) + got as u64;
                abort = Some(VaultError::SplitFailed(format!(
                    "the stream ended after {so_far} of {len} bytes"
                )));
                break;
            }
            let envelopes = inner.with_rng(|rng| {
                inner.split_secret(&binding, SEGMENT_HEADER_LEN + want, rng, |buf| {
                    buf.extend_from_slice(&segment_header(index, count));
                    buf.extend_from_slice(&chunk);
                    Ok(())
                })
            });
            drop(chunk);
            let envelopes = match envelopes {
                Ok(e) => e,
                Err(e) => {
                    abort = Some(e);
                    break;
                }
            };
            let key = inner.keyspace.segment_key(tag, version, index);
            let objects: Vec<(String, Bytes)> =
                envelopes.into_iter().map(|b| (key.clone(), Bytes::from(b))).collect();
            let skip: Vec<bool> = failed.iter().map(Option::is_some).collect();
            issued = index + 1;
            pending.push_back(async move {
                let results = inner.write_all(objects, &skip).await;
                drop(permit);
                results
            });
            while pending.len() >= window {
                if let Some(results) = pending.next().await
                    && !absorb(results, &mut failed)
                {
                    abort =
                        Some(VaultError::Backend { operation: "put", outcomes: outcomes(&failed) });
                    break;
                }
            }
            if abort.is_some() {
                break;
            }
        }
        if abort.is_none() && fill(reader, &mut [0u8; 1]).await.unwrap_or(0) != 0 {
            abort = Some(VaultError::SplitFailed(format!("the stream is longer than {len} bytes")));
        }
        while let Some(results) = pending.next().await {
            if !absorb(results, &mut failed) && abort.is_none() {
                abort = Some(VaultError::Backend { operation: "put", outcomes: outcomes(&failed) });
            }
        }
        if let Some(err) = abort {
            tracing::warn!(%tag, "segmented put abandoned: {err}");
            inner.remove_segments(tag, version, issued).await;
            return Err(err);
        }

        // Every segment is on at least W backends: now the manifest, where they all are.
        let mut hint = 0;
        let head = inner.encode_head(Kind::Manifest, &manifest.id, tag, version, 256, |buf| {
            let start = buf.len();
            manifest.encode_into(buf)?;
            hint = buf.len() - start;
            Ok(())
        })?;
        let skip: Vec<bool> = failed.iter().map(Option::is_some).collect();
        let results = inner.write_all(head, &skip).await;
        absorb(results, &mut failed);
        let outcomes = outcomes(&failed);
        let acks = failed.iter().filter(|f| f.is_none()).count();
        if acks < inner.write_quorum {
            // Manifests may be on K or more backends (readable), so nothing is removed.
            tracing::warn!(%tag, acks, quorum = inner.write_quorum, "put failed: {}",
                crate::error::outcomes_text(&outcomes));
            return Err(VaultError::Backend { operation: "put", outcomes });
        }
        if acks < n {
            tracing::warn!(%tag, acks, "degraded put: {}", crate::error::outcomes_text(&outcomes));
        }
        inner.remove_superseded(tag, version).await;
        Ok(PutResult { version, acks, outcomes })
    }

    /// Reads one segment: fetches K shares of it (fastest first, hedged), rebuilds, verifies
    /// the segment's MAC and position, and returns its data and the backends that served
    /// bad shares of it.
    async fn read_segment(
        &self,
        manifest: &Manifest,
        tag: NameTag,
        version: Version,
        holders: &[usize],
        index: u32,
    ) -> Result<(Bytes, Vec<usize>)> {
        let inner = &self.inner;
        let key = inner.keyspace.segment_key(tag, version, index);
        let expect = Expect { kind: Kind::Segment, tag, version };
        let sources = holders.iter().map(|&i| (i, Source::Fetch(key.clone()))).collect();
        let count = manifest.segment_count;
        let verified = inner
            .fetch_and_verify(expect, sources, false)
            .await
            .map_err(|e| in_segment(e, index, count))?;
        let data = segment_data(manifest, index, verified.payload())?;
        Ok((Bytes::copy_from_slice(data), verified.bad()))
    }

    /// A stream over `range` of a segmented record whose manifest is `head`.
    fn segment_stream(&self, head: &Head, manifest: Manifest, range: Range<u64>) -> ReadStream {
        let meta = RecordMeta {
            id: manifest.id.clone(),
            content_type: manifest.content_type.clone(),
            metadata: manifest.metadata.clone(),
        };
        let bad = Arc::new(Mutex::new(Vec::<String>::new()));
        let total_len = manifest.total_len;
        let segments = manifest.segments_for(&range);
        let manifest = Arc::new(manifest);
        let holders: Arc<[usize]> = head.holders.clone().into();
        let (tag, version) = (head.tag, head.version);
        let window = self.inner.window();
        let db = self.clone();
        let report = Arc::clone(&bad);
        let want = range.clone();
        let inner = futures::stream::iter(segments)
            .map(move |index| {
                let (db, manifest, holders, report) =
                    (db.clone(), Arc::clone(&manifest), Arc::clone(&holders), Arc::clone(&report));
                let want = want.clone();
                async move {
                    let _permit = db.inner.admit(db.inner.segment_cost()).await;
                    let (data, bad) =
                        db.read_segment(&manifest, tag, version, &holders, index).await?;
                    if !bad.is_empty() {
                        let outcomes: Vec<BackendOutcome> = bad
                            .iter()
                            .map(|&i| {
                                db.inner.outcome(
                                    i,
                                    OutcomeStatus::Corrupt {
                                        reason: format!("bad share of segment {index}"),
                                    },
                                )
                            })
                            .collect();
                        db.note_degraded(tag, &outcomes);
                        if let Ok(mut r) = report.lock() {
                            for i in bad {
                                let id = &db.inner.ids[i];
                                if !r.contains(id) {
                                    r.push(id.clone());
                                }
                            }
                        }
                    }
                    let at = manifest.segment_range(index);
                    let from = want.start.max(at.start) - at.start;
                    let to = want.end.min(at.end) - at.start;
                    Ok(data.slice(from as usize..to as usize))
                }
            })
            .buffered(window)
            .boxed();
        ReadStream {
            meta,
            version,
            total_len,
            range,
            segmented: true,
            outcomes: head.outcomes.clone(),
            bad,
            inner,
            done: false,
        }
    }

    /// Opens a stream over bytes `range` of a record's data (clamped to its length),
    /// fetching only the segments that hold them.
    ///
    /// # Errors
    /// As [`VaultDb::get`] for finding and verifying the record's head; `INVALID_CONFIG`
    /// if `range.start > range.end`. Errors reading segments come from the stream, each
    /// naming its segment; the stream ends at the first.
    #[tracing::instrument(name = "vaultdb.get_range", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn get_range(&self, id: &str, range: Range<u64>) -> Result<ReadStream> {
        if range.start > range.end {
            return Err(VaultError::invalid_config("range start is after its end"));
        }
        let head = self.resolve_head(id).await?;
        self.note_degraded(head.tag, &head.outcomes);
        match head.verified.kind {
            Kind::Manifest => {
                let manifest = self.checked_manifest(id, &head)?;
                let clamped =
                    range.start.min(manifest.total_len)..range.end.min(manifest.total_len);
                Ok(self.segment_stream(&head, manifest, clamped))
            }
            _ => {
                let record = Record::decode(head.verified.payload())?;
                if record.id != id {
                    return Err(VaultError::HmacFailed {
                        reason: "rebuilt record carries another id".into(),
                        bad_backends: vec![],
                    });
                }
                let total_len = record.data.len() as u64;
                let range = range.start.min(total_len)..range.end.min(total_len);
                let data = Bytes::from(record.data).slice(range.start as usize..range.end as usize);
                let meta = RecordMeta {
                    id: record.id,
                    content_type: record.content_type,
                    metadata: record.metadata,
                };
                let bad = Arc::new(Mutex::new(head.bad_backends(&self.inner)));
                Ok(ReadStream {
                    meta,
                    version: head.version,
                    total_len,
                    range,
                    segmented: false,
                    outcomes: head.outcomes.clone(),
                    bad,
                    inner: futures::stream::iter([Ok(data)]).boxed(),
                    done: false,
                })
            }
        }
    }

    /// Opens a stream over a record's whole data. See [`VaultDb::get_range`].
    ///
    /// # Errors
    /// As [`VaultDb::get_range`].
    pub async fn get_stream(&self, id: &str) -> Result<ReadStream> {
        self.get_range(id, 0..u64::MAX).await
    }

    /// Decodes a verified manifest and checks it names `id`.
    fn checked_manifest(&self, id: &str, head: &Head) -> Result<Manifest> {
        let manifest = Manifest::decode(head.verified.payload())?;
        if manifest.id != id {
            return Err(VaultError::HmacFailed {
                reason: "rebuilt manifest carries another id".into(),
                bad_backends: vec![],
            });
        }
        Ok(manifest)
    }

    /// Reads a whole segmented record into memory (for [`VaultDb::get`]).
    pub(crate) async fn read_whole(
        &self,
        id: &str,
        head: &Head,
    ) -> Result<(Record, Vec<BackendOutcome>, Vec<String>)> {
        let manifest = self.checked_manifest(id, head)?;
        let max = self.inner.settings.max_record_size as u64;
        if manifest.total_len > max {
            return Err(VaultError::invalid_config(format!(
                "record data is {} bytes, over max_record_size {max}; read it with get_stream",
                manifest.total_len
            )));
        }
        let total = manifest.total_len;
        let stream = self.segment_stream(head, manifest, 0..total);
        let meta = stream.meta().clone();
        let bad = Arc::clone(&stream.bad);
        let data = stream.collect_bytes().await?;
        let mut bad_backends = head.bad_backends(&self.inner);
        let mut outcomes = head.outcomes.clone();
        for b in bad.lock().map(|b| b.clone()).unwrap_or_default() {
            if let Some(o) = outcomes.iter_mut().find(|o| o.backend == b) {
                o.status = OutcomeStatus::Corrupt { reason: "served a bad segment share".into() };
            }
            if !bad_backends.contains(&b) {
                bad_backends.push(b);
            }
        }
        let record =
            Record { id: meta.id, data, content_type: meta.content_type, metadata: meta.metadata };
        Ok((record, outcomes, bad_backends))
    }
}
