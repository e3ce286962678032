//! Reading: `get` (a whole record), and `get_range`/`get_stream` (a record's data as a
//! stream of verified chunks, in bounded memory).
//!
//! Every read first finds and verifies the record's head (`head.rs`). An inline record is
//! then decoded; a segmented record's segments are fetched a few ahead of the consumer,
//! each holding a share of the in-flight budget (`budget.rs`) while its buffers live, each
//! rebuilt and verified on its own.

use std::fmt;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};

use super::VaultDb;
use super::fanout::{Expected, Source};
use super::gate::Access;
use super::head::Head;
use super::shares::Expect;
use crate::envelope::Kind;
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::manifest::{Manifest, segment_data};
use crate::naming::NameTag;
use crate::record::{Record, RecordMeta};
use crate::version::Version;

/// A successful `get`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GetResult {
    /// The record.
    pub record: Record,
    /// The version read.
    pub version: Version,
    /// What each backend did.
    pub outcomes: Vec<BackendOutcome>,
    /// Backends that served bad shares (also in `outcomes`, as `Corrupt`).
    pub bad_backends: Vec<String>,
}

impl GetResult {
    /// True if a backend failed, lacked its share or served bad data (the read went on
    /// without it, and started a read-repair if that is on).
    pub fn degraded(&self) -> bool {
        super::degraded(&self.outcomes)
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
        super::degraded(&self.outcomes) || !self.bad_backends().is_empty()
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

/// Marks `err` as being about one segment.
fn in_segment(err: VaultError, index: u32, count: u32) -> VaultError {
    match err {
        VaultError::HmacFailed { reason, bad_backends, outcomes } => VaultError::HmacFailed {
            reason: format!("segment {index} of {count}: {reason}"),
            bad_backends,
            outcomes,
        },
        VaultError::ReconstructFailed(reason) => {
            VaultError::ReconstructFailed(format!("segment {index} of {count}: {reason}"))
        }
        other => other,
    }
}

impl VaultDb {
    /// Reads a record: lists its versions, rebuilds the newest one that has K shares from
    /// the fastest backends, and verifies it. A segmented record is read whole (see
    /// [`VaultDb::get_stream`] for bounded memory).
    ///
    /// # Errors
    /// `RECORD_NOT_FOUND` if no backend holds it; `INSUFFICIENT_SHARES` if too few backends
    /// answer; `HMAC_FAILED` if no K shares verify (never wrong data); `INVALID_INPUT` for
    /// an invalid id, or a segmented record larger than `max_record_size`.
    #[tracing::instrument(name = "vaultdb.get", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn get(&self, id: &str) -> Result<GetResult> {
        self.admit(Access::Read).await?;
        match self.get_here(id).await {
            Err(VaultError::RecordNotFound) => match self.read_through_for(id).await? {
                Some(old) => old.get_here(id).await,
                None => Err(VaultError::RecordNotFound),
            },
            r => r,
        }
    }

    /// [`VaultDb::get`] in this store only.
    async fn get_here(&self, id: &str) -> Result<GetResult> {
        let mut head = self.resolve_head(id).await?;
        let (record, outcomes, bad_backends) = match head.verified.kind {
            Kind::Manifest => self.read_whole(id, &head).await?,
            _ => {
                let record = head.verified.take_record()?;
                if record.id != id {
                    return Err(head.wrong_id("record"));
                }
                let bad = head.bad_backends(self);
                (record, head.outcomes, bad)
            }
        };
        self.note_degraded(head.tag, &outcomes);
        Ok(GetResult { record, version: head.version, outcomes, bad_backends })
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
        let key = inner.fanout.keyspace().segment_key(tag, version, index);
        let expect = Expect { kind: Kind::Segment, tag, version };
        // The manifest (verified) gives the segment size, so the largest share of a segment.
        let bound = inner.shares().max_share_len(Kind::Segment, u64::from(manifest.segment_size));
        let sources = holders
            .iter()
            .map(|&i| (i, Source::Fetch(key.clone(), Expected::at_most(bound))))
            .collect();
        let count = manifest.segment_count;
        let verified = inner
            .fanout
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
        let window = self.inner.budget.window();
        let db = self.clone();
        let report = Arc::clone(&bad);
        let want = range.clone();
        let inner = futures::stream::iter(segments)
            .map(move |index| {
                let (db, manifest, holders, report) =
                    (db.clone(), Arc::clone(&manifest), Arc::clone(&holders), Arc::clone(&report));
                let want = want.clone();
                async move {
                    let budget = &db.inner.budget;
                    let _permit = budget.admit(budget.segment_cost()).await;
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
                                let id = db.inner.fanout.id(i);
                                if !r.iter().any(|b| b == id) {
                                    r.push(id.to_owned());
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
    /// As [`VaultDb::get`] for finding and verifying the record's head; `INVALID_INPUT`
    /// if `range.start > range.end`. Errors reading segments come from the stream, each
    /// naming its segment; the stream ends at the first.
    #[tracing::instrument(name = "vaultdb.get_range", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn get_range(&self, id: &str, range: Range<u64>) -> Result<ReadStream> {
        if range.start > range.end {
            return Err(VaultError::invalid_input("range start is after its end"));
        }
        self.admit(Access::Read).await?;
        match self.get_range_here(id, range.clone()).await {
            Err(VaultError::RecordNotFound) => match self.read_through_for(id).await? {
                Some(old) => old.get_range_here(id, range).await,
                None => Err(VaultError::RecordNotFound),
            },
            r => r,
        }
    }

    /// [`VaultDb::get_range`] in this store only.
    async fn get_range_here(&self, id: &str, range: Range<u64>) -> Result<ReadStream> {
        let mut head = self.resolve_head(id).await?;
        self.note_degraded(head.tag, &head.outcomes);
        match head.verified.kind {
            Kind::Manifest => {
                let manifest = self.checked_manifest(id, &head)?;
                let clamped =
                    range.start.min(manifest.total_len)..range.end.min(manifest.total_len);
                Ok(self.segment_stream(&head, manifest, clamped))
            }
            _ => {
                let record = head.verified.take_record()?;
                if record.id != id {
                    return Err(head.wrong_id("record"));
                }
                let total_len = record.data.len() as u64;
                let range = range.start.min(total_len)..range.end.min(total_len);
                let data = Bytes::from(record.data).slice(range.start as usize..range.end as usize);
                let meta = RecordMeta {
                    id: record.id,
                    content_type: record.content_type,
                    metadata: record.metadata,
                };
                let bad = Arc::new(Mutex::new(head.bad_backends(self)));
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
            return Err(head.wrong_id("manifest"));
        }
        Ok(manifest)
    }

    /// Reads a whole segmented record into memory (for [`VaultDb::get`]).
    async fn read_whole(
        &self,
        id: &str,
        head: &Head,
    ) -> Result<(Record, Vec<BackendOutcome>, Vec<String>)> {
        let manifest = self.checked_manifest(id, head)?;
        let max = self.inner.settings.max_record_size as u64;
        if manifest.total_len > max {
            return Err(VaultError::invalid_input(format!(
                "record data is {} bytes, over max_record_size {max}; read it with get_stream",
                manifest.total_len
            )));
        }
        let total = manifest.total_len;
        let stream = self.segment_stream(head, manifest, 0..total);
        let meta = stream.meta().clone();
        let bad = Arc::clone(&stream.bad);
        let data = stream.collect_bytes().await?;
        let mut bad_backends = head.bad_backends(self);
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
