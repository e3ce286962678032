//! Writing: `put` (serialize, pad, MAC, split, write create-only to all N, succeed at W),
//! `put_stream` (the same in bounded memory, as segments then a manifest), and `delete`
//! (remove every version everywhere, succeed when at most K-1 shares can remain).
//!
//! A record with more data than one segment ([`Settings::segment_size`], 4 MiB by default)
//! is stored as segments, each its own secret with its own MAC (see [`crate::manifest`]),
//! followed by a manifest that plays the part of the record's head. Segments are written
//! before the manifest, so a manifest on W backends means the whole version is there; a
//! write that fails part way leaves only segments without a manifest, which reads ignore
//! and `scrub` removes after the grace period. Every segment being encoded or written holds
//! a share of the in-flight budget (`budget.rs`).
//!
//! [`Settings::segment_size`]: super::Settings::segment_size

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::call::CallError;
use super::fanout::{Listed, TagListing};
use super::gate::Access;
use super::marks::MarkKind;
use super::{Inner, VaultDb};
use crate::backend::{Key, PutMode};
use crate::bufpool;
use crate::envelope::Kind;
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::manifest::{Manifest, segment_header};
use crate::naming::{NameTag, validate_id};
use crate::record::{Record, RecordMeta};
use crate::secret::Binding;
use crate::version::Version;
use crate::wipe::SecretVec;

/// A successful `put`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PutResult {
    /// The version written.
    pub version: Version,
    /// Backends that acknowledged the write.
    pub acks: usize,
    /// What each backend did.
    pub outcomes: Vec<BackendOutcome>,
}

impl PutResult {
    /// True if a backend did not acknowledge.
    pub fn degraded(&self) -> bool {
        super::degraded(&self.outcomes)
    }
}

/// A successful `delete`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeleteResult {
    /// Share objects removed.
    pub removed: usize,
    /// What each backend did.
    pub outcomes: Vec<BackendOutcome>,
}

impl DeleteResult {
    /// True if a backend did not confirm (it may keep fewer than K shares until a scrub).
    pub fn degraded(&self) -> bool {
        super::degraded(&self.outcomes)
    }
}

impl Inner {
    /// Splits a head secret (a record or a manifest) of a new version, its payload `parts`
    /// concatenated, and names its N objects, each key carrying that backend's share of the
    /// padded id.
    fn encode_head(
        &self,
        kind: Kind,
        id: &str,
        tag: NameTag,
        version: Version,
        parts: &[&[u8]],
    ) -> Result<Vec<(Key, Bytes)>> {
        let binding = Binding { kind, tag, version, threshold: self.threshold() };
        let keyspace = self.fanout.keyspace();
        self.with_rng(|rng| {
            let bufs = self.shares().seal(&binding, parts, rng)?;
            let id_shares = self.shares().split_id(id, rng)?;
            Ok(bufs
                .into_iter()
                .zip(id_shares)
                .map(|(buf, id_share)| {
                    (keyspace.share_key(tag, version, &id_share), bufpool::into_bytes(buf))
                })
                .collect())
        })
    }

    /// Builds the N envelopes and N object keys of one version of an inline record.
    fn encode_record(
        &self,
        record: &Record,
        tag: NameTag,
        version: Option<Version>,
    ) -> Result<(Version, Vec<(Key, Bytes)>)> {
        let version = version.unwrap_or_else(|| self.with_rng(|rng| self.clock.next_version(rng)));
        let encoded = record.encoded_parts()?;
        let objects = self.encode_head(Kind::Record, &record.id, tag, version, &encoded.parts())?;
        Ok((version, objects))
    }

    /// Removes every segment object of an abandoned write (best effort; scrub removes what
    /// this misses after the grace period).
    async fn remove_segments(&self, tag: NameTag, version: Version, count: u32) {
        for i in 0..count {
            let key = self.fanout.keyspace().segment_key(tag, version, i);
            self.fanout.delete_everywhere(&key).await;
        }
    }

    /// Lists one record on every backend; `INSUFFICIENT_SHARES` if fewer than K answered.
    pub(crate) async fn list_tag_from_k(&self, tag: NameTag) -> Result<TagListing> {
        let listing = self.fanout.list_tag(tag).await;
        let answered = listing.iter().filter(|l| l.is_ok()).count();
        if answered < self.k() {
            return Err(VaultError::InsufficientShares {
                need: self.k(),
                got: answered,
                outcomes: self.fanout.outcomes_of(&listing),
            });
        }
        Ok(listing)
    }

    /// The newest version (tombstones aside) in a record's listing that some client can
    /// have written: one that K backends list, or one stamped no further ahead of this
    /// machine's clock (which versions are stamped with) than the clock skew the settings
    /// allow. Names carry no MAC, so
    /// one backend can list any version; taken as a writer's, a made-up version a century
    /// ahead made a delete write its tombstone past it (every later put of the id then
    /// acknowledged and unreadable) and moved this process's clock there. Versions passed
    /// over are logged with the backends that listed them.
    fn newest_credible(&self, listing: &TagListing) -> Option<Version> {
        let mut holders: BTreeMap<Version, Vec<usize>> = BTreeMap::new();
        for (idx, l) in listing.iter().enumerate() {
            for e in l.as_deref().unwrap_or_default().iter().filter(|e| e.tombstone.is_none()) {
                let h = holders.entry(e.version).or_default();
                if !h.contains(&idx) {
                    h.push(idx);
                }
            }
        }
        let skew = u64::try_from(self.settings.max_clock_skew().as_micros()).unwrap_or(u64::MAX);
        let horizon = crate::version::Clock::wall_micros().saturating_add(skew);
        let (credible, made_up): (Vec<_>, Vec<_>) =
            holders.into_iter().partition(|(v, h)| h.len() >= self.k() || v.micros() <= horizon);
        for (v, h) in made_up {
            let backends: Vec<&str> = h.iter().map(|&i| self.fanout.id(i)).collect();
            tracing::warn!(%v, ?backends, "a version listed ahead of every client's clock; ignored");
        }
        credible.into_iter().map(|(v, _)| v).max()
    }

    /// After a successful put of `version`: on every backend, delete versions older than it,
    /// keeping the `retain_versions - 1` newest of them.
    async fn remove_superseded(&self, tag: NameTag, version: Version) {
        let keep_older = self.settings.retain_versions.saturating_sub(1);
        let listing = self.fanout.list_tag(tag).await;
        let work = listing.into_iter().enumerate().filter_map(|(idx, l)| {
            let mut older: Vec<Listed> =
                l.ok()?.into_iter().filter(|e| e.version < version).collect();
            older.sort_by_key(|e| std::cmp::Reverse(e.version));
            let doomed: Vec<Listed> = older.into_iter().skip(keep_older).collect();
            Some(async move {
                let (removed, err) =
                    self.fanout.delete_keys(idx, doomed.into_iter().map(|e| e.key)).await;
                self.stats.objects_removed.fetch_add(removed as u64, Ordering::Relaxed);
                if let Some(err) = err {
                    tracing::warn!(
                        backend = %self.fanout.id(idx), error = ?err,
                        "could not remove a superseded share; scrub will"
                    );
                }
            })
        });
        futures::future::join_all(work).await;
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
    /// After a successful put of `version`, removes the versions it superseded: off the
    /// put's critical path ([`VaultDb::flush`] waits for it), unless the client already
    /// runs as many background tasks as it allows; then before returning.
    ///
    /// The removal is started here, polled once: its listings go out at once, and where
    /// every backend answers within that poll (memory backends) it also ends there, with no
    /// hand-over to another thread. That hand-over (a task spawned, a worker woken, the
    /// two threads then contending for the backends' locks) cost a 1 KiB put on memory
    /// backends more than the removal's own work: p50 22.4 us handed over, 16.3 us started
    /// here, 13.0 us with no removal at all (2-of-3, a multi-threaded runtime, the three
    /// interleaved on one loaded 2-core machine, 2026-12-06). Only a removal still waiting
    /// for a backend goes to the background.
    ///
    /// Having spawned the removal, the put yields once so that it starts: on a current-thread
    /// runtime, a put whose backends answer at once (memory backends) never waits, and the
    /// removal would wait for a later await that does. Put in a loop, such a client kept
    /// every superseded version until then (170 MB resident after 50 puts of a 1 MiB
    /// record, 2026-12-06), and their envelope buffers could not be recycled (`bufpool`).
    async fn remove_superseded_later(&self, tag: NameTag, version: Version) {
        let inner = Arc::clone(&self.inner);
        let mut work = Box::pin(async move { inner.remove_superseded(tag, version).await });
        if futures::poll!(work.as_mut()).is_ready() {
            // Still a yield point, as every put was before: a loop of puts on backends that
            // answer at once (memory) must not starve the other tasks of its runtime.
            tokio::task::yield_now().await;
            return;
        }
        match self.inner.background.spawn_bounded(work) {
            Some(work) => work.await,
            None => tokio::task::yield_now().await,
        }
    }

    /// Stores a record: a new version, written create-only to all N backends concurrently.
    /// Succeeds once W backends acknowledged: one round trip. The versions it superseded
    /// are removed afterwards, in the background ([`VaultDb::flush`] waits for that).
    ///
    /// # Errors
    /// `INVALID_INPUT` for an invalid id or a record over `max_record_size`; `SPLIT_FAILED`
    /// if serialization fails; `BACKEND_ERROR` with per-backend outcomes if fewer than W
    /// backends acknowledged (the previous version, or this one, stays readable).
    #[tracing::instrument(name = "vaultdb.put", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn put(&self, record: Record) -> Result<PutResult> {
        validate_id(&record.id)?;
        self.admit(Access::Write).await?;
        self.put_at(record, None).await
    }

    /// [`VaultDb::put`] past the gate, at `version` if given (a re-share's copy keeps the
    /// old store's version), else at a new one.
    pub(crate) async fn put_at(
        &self,
        record: Record,
        version: Option<Version>,
    ) -> Result<PutResult> {
        let inner = &self.inner;
        if record.data.len() > inner.settings.max_record_size {
            return Err(VaultError::invalid_input(format!(
                "record data is {} bytes; the limit is {}",
                record.data.len(),
                inner.settings.max_record_size
            )));
        }
        let tag = inner.naming.tag(&record.id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        if record.data.len() > inner.settings.segment_size {
            let len = record.data.len() as u64;
            let meta = RecordMeta {
                id: record.id,
                content_type: record.content_type,
                metadata: record.metadata,
            };
            let data = SecretVec::from(record.data);
            return self.put_segmented(meta, tag, len, &mut &data[..], version).await;
        }
        let _permit = inner.budget.admit(inner.budget.inline_cost(record.encoded_len_hint())).await;
        let (version, objects) = inner.encode_record(&record, tag, version)?;
        drop(record);
        let mark = inner.new_mark(tag, MarkKind::Data, version);
        let results = inner.fanout.write_all(objects, &[], Some(&mark), inner.write_quorum).await;
        let outcomes = inner.fanout.outcomes_of(&results);
        let acks = results.iter().filter(|r| r.is_ok()).count();
        if acks < inner.write_quorum {
            tracing::warn!(%tag, acks, quorum = inner.write_quorum, "put failed: {}",
                crate::error::outcomes_text(&outcomes));
            return Err(VaultError::Backend { operation: "put", outcomes });
        }
        if acks < inner.n() {
            tracing::warn!(%tag, acks, "degraded put: {}", crate::error::outcomes_text(&outcomes));
        }
        self.remove_superseded_later(tag, version).await;
        Ok(PutResult { version, acks, outcomes })
    }

    /// Stores a record whose `len` bytes of data come from `reader`, in bounded memory.
    ///
    /// Data up to one segment is stored like [`VaultDb::put`] stores it; more is cut into
    /// segments written as they are read, with at most the client's in-flight budget held
    /// at once (backpressure: the reader is not read faster than backends accept). The
    /// record becomes visible only when all segments and then the manifest are on W
    /// backends; older versions are removed after that.
    ///
    /// # Errors
    /// `INVALID_INPUT` for an invalid id, or if the reader yields more or fewer than `len`
    /// bytes; `SPLIT_FAILED` if the reader fails (in both cases nothing becomes visible and
    /// written segments are removed); `BACKEND_ERROR` with per-backend outcomes if fewer
    /// than W backends took every segment.
    #[tracing::instrument(name = "vaultdb.put_stream", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn put_stream<R: AsyncRead + Unpin + Send>(
        &self,
        meta: RecordMeta,
        len: u64,
        mut reader: R,
    ) -> Result<PutResult> {
        validate_id(&meta.id)?;
        self.admit(Access::Write).await?;
        let inner = &self.inner;
        let tag = inner.naming.tag(&meta.id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        if len <= inner.settings.segment_size as u64 {
            let mut data = vec![0u8; len as usize];
            let got = fill(&mut reader, &mut data).await?;
            if got < data.len() {
                return Err(VaultError::invalid_input(format!(
                    "the stream ended after {got} of {len} bytes"
                )));
            }
            if fill(&mut reader, &mut [0u8; 1]).await? != 0 {
                return Err(VaultError::invalid_input(format!(
                    "the stream is longer than {len} bytes"
                )));
            }
            let record = Record {
                id: meta.id,
                data,
                content_type: meta.content_type,
                metadata: meta.metadata,
            };
            return self.put_at(record, None).await;
        }
        self.put_segmented(meta, tag, len, &mut reader, None).await
    }

    /// Writes a segmented record (see [`VaultDb::put_stream`]).
    pub(crate) async fn put_segmented<R: AsyncRead + Unpin + Send + ?Sized>(
        &self,
        meta: RecordMeta,
        tag: NameTag,
        len: u64,
        reader: &mut R,
        version: Option<Version>,
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
        let version =
            version.unwrap_or_else(|| inner.with_rng(|rng| inner.clock.next_version(rng)));
        let binding = Binding { kind: Kind::Segment, tag, version, threshold: inner.threshold() };
        // Per backend: the first failure of this write there (that backend is then skipped).
        let mut failed: Vec<Option<CallError>> = (0..n).map(|_| None).collect();
        let mut pending = FuturesOrdered::new();
        let window = inner.budget.window();
        let mut issued = 0u32;

        let absorb = |results: Vec<Result<(), CallError>>, failed: &mut Vec<Option<CallError>>| {
            for (idx, r) in results.into_iter().enumerate() {
                if let Err(e) = r
                    && failed[idx].is_none()
                {
                    tracing::warn!(backend = %inner.fanout.id(idx), error = ?e, "segment write failed");
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
            let permit = inner.budget.admit(inner.budget.segment_cost()).await;
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
                abort = Some(VaultError::invalid_input(format!(
                    "the stream ended after {so_far} of {len} bytes"
                )));
                break;
            }
            let envelopes = inner.with_rng(|rng| {
                inner.shares().seal(&binding, &[&segment_header(index, count), &chunk], rng)
            });
            drop(chunk);
            let envelopes = match envelopes {
                Ok(e) => e,
                Err(e) => {
                    abort = Some(e);
                    break;
                }
            };
            let key = inner.fanout.keyspace().segment_key(tag, version, index);
            let objects: Vec<(Key, Bytes)> =
                envelopes.into_iter().map(|b| (key.clone(), bufpool::into_bytes(b))).collect();
            let skip: Vec<bool> = failed.iter().map(Option::is_some).collect();
            issued = index + 1;
            pending.push_back(async move {
                let results =
                    inner.fanout.write_all(objects, &skip, None, inner.write_quorum).await;
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
            abort =
                Some(VaultError::invalid_input(format!("the stream is longer than {len} bytes")));
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

        // A long stream may have outlived the lease on the store's notices: the manifest,
        // which makes the version visible, is written only under a valid one.
        if let Err(err) = self.admit(Access::Write).await {
            inner.remove_segments(tag, version, issued).await;
            return Err(err);
        }
        // Every segment is on at least W backends: now the manifest, where they all are.
        // The manifest holds the id and metadata: wiped when dropped.
        let mut encoded = zeroize::Zeroizing::new(Vec::with_capacity(256));
        manifest.encode_into(&mut encoded)?;
        let head = inner.encode_head(Kind::Manifest, &manifest.id, tag, version, &[&encoded])?;
        let skip: Vec<bool> = failed.iter().map(Option::is_some).collect();
        let mark = inner.new_mark(tag, MarkKind::Data, version);
        let results = inner.fanout.write_all(head, &skip, Some(&mark), inner.write_quorum).await;
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
        self.remove_superseded_later(tag, version).await;
        Ok(PutResult { version, acks, outcomes })
    }

    /// Deletes a record: leaves an authenticated tombstone on every backend (so that no
    /// backend restored from a backup, or that missed the delete, can bring the record back)
    /// and removes every older version everywhere. Two round trips: the listing and the
    /// tombstone at once, then the removals. Succeeds only when at least N-K+1 backends
    /// confirmed both, so at most K-1 shares can remain anywhere and the record is
    /// unrecoverable.
    ///
    /// # Errors
    /// `INVALID_INPUT` for an invalid id; `RECORD_NOT_FOUND` if no backend that answered
    /// holds it (and enough answered to be sure); `BACKEND_ERROR` naming the backends that
    /// failed otherwise.
    #[tracing::instrument(name = "vaultdb.delete", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn delete(&self, id: &str) -> Result<DeleteResult> {
        validate_id(id)?;
        self.admit(Access::Write).await?;
        let inner = &self.inner;
        let tag = inner.naming.tag(id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        let n = inner.n();
        // Round trip 1, on every backend at once: list the record, write the tombstone.
        let mut vt = inner.with_rng(|rng| inner.clock.next_version(rng));
        let (mut listing, mut marked) = {
            let work = (0..n).map(|idx| async move {
                let list = inner.fanout.list_tag_at(idx, tag);
                let mark = inner.write_tombstone(idx, tag, vt);
                futures::future::join(list, mark).await
            });
            let both_ok =
                |(l, m): &(Result<_, CallError>, Result<_, CallError>)| l.is_ok() && m.is_ok();
            let not_awaited = || (Err(CallError::NotAwaited), Err(CallError::NotAwaited));
            let both = inner.fanout.gather(work, n - inner.k() + 1, both_ok, not_awaited).await;
            both.into_iter().unzip::<_, _, Vec<_>, Vec<_>>()
        };
        // A version at least as new as the tombstone (a writer whose clock is ahead) would
        // survive it: write a newer tombstone (a third round trip, in that case only).
        let newest_listed = inner.newest_credible(&listing);
        if let Some(v) = newest_listed
            && v >= vt
        {
            inner.clock.observe(v.micros());
            let vt2 = inner.with_rng(|rng| inner.clock.next_version(rng));
            let work = (0..n).map(|idx| inner.write_tombstone(idx, tag, vt2));
            let again = futures::future::join_all(work).await;
            for (m, a) in marked.iter_mut().zip(again) {
                // A backend confirms the delete only with the newer tombstone.
                *m = a;
            }
            vt = vt2;
        }
        let found = listing
            .iter()
            .filter_map(|l| l.as_ref().ok())
            .flatten()
            .any(|e| e.tombstone.is_none() && e.version < vt);
        let needed = n - inner.k() + 1;
        let marked_and_listed =
            listing.iter().zip(&marked).filter(|(l, m)| l.is_ok() && m.is_ok()).count();
        if marked_and_listed < needed {
            // The delete cannot succeed: withdraw the tombstones before anything is removed,
            // so that a failed delete leaves the record as it was (not deleted on some
            // backends and readable on others).
            inner.withdraw_tombstone(tag, vt).await;
            let outcomes = (0..n)
                .map(|i| {
                    let status = match (&listing[i], &marked[i]) {
                        (Err(e), _) | (_, Err(e)) => e.status(),
                        _ => OutcomeStatus::Ok,
                    };
                    inner.fanout.outcome(i, status)
                })
                .collect();
            return Err(VaultError::Backend { operation: "delete", outcomes });
        }
        // Round trip 2: remove everything older than the tombstone (older tombstones too).
        let work = listing.iter_mut().zip(&marked).enumerate().map(|(idx, (l, mark))| {
            let entries = match (l.as_mut(), mark) {
                (Ok(entries), Ok(())) => std::mem::take(entries),
                (Err(e), _) => {
                    return futures::future::Either::Left(std::future::ready(Err(e.duplicate())));
                }
                (_, Err(e)) => {
                    return futures::future::Either::Left(std::future::ready(Err(e.duplicate())));
                }
            };
            futures::future::Either::Right(async move {
                let older = entries.into_iter().filter(|e| e.version < vt).map(|e| e.key);
                match inner.fanout.delete_keys(idx, older).await {
                    (removed, None) => Ok(removed),
                    (_, Some(e)) => Err(e),
                }
            })
        });
        let results: Vec<Result<usize, CallError>> =
            inner.fanout.gather(work, needed, Result::is_ok, || Err(CallError::NotAwaited)).await;
        let confirmed = results.iter().filter(|r| r.is_ok()).count();
        let removed = results.iter().filter_map(|r| r.as_ref().ok()).sum();
        let outcomes = inner.fanout.outcomes_of(&results);
        if confirmed < needed {
            tracing::warn!(%tag, confirmed, needed, "delete failed: {}",
                crate::error::outcomes_text(&outcomes));
            return Err(VaultError::Backend { operation: "delete", outcomes });
        }
        if !found && let Some(old) = self.read_through() {
            // Nothing here, but the store a re-share fills this one from may hold the record:
            // then the tombstone stays and hides the copy (older than it, by the floor).
            // If the old store cannot be read, whether there was anything to delete is
            // unknown: the tombstone stays (it hides the copy, if there is one) and the
            // delete fails as a delete does, naming the old store's backends.
            match old.resolve_head(id).await {
                Ok(_) => return Ok(DeleteResult { removed, outcomes }),
                Err(VaultError::RecordNotFound) => {}
                Err(e) => {
                    return Err(VaultError::Backend {
                        operation: "delete (the lookup in the store being re-shared from)",
                        outcomes: e.outcomes().to_vec(),
                    });
                }
            }
        }
        if !found {
            // Nothing to delete. When every backend answered, the tombstone protects
            // nothing and goes again; otherwise it stays (a backend that did not answer may
            // hold up to K-1 shares of the record, which it then keeps from coming back).
            if confirmed == n {
                inner.withdraw_tombstone(tag, vt).await;
            }
            return Err(VaultError::RecordNotFound);
        }
        if confirmed < n {
            tracing::warn!(%tag, "degraded delete: {}", crate::error::outcomes_text(&outcomes));
        }
        Ok(DeleteResult { removed, outcomes })
    }
}

impl Inner {
    /// Writes the tombstone of `tag` at `version` on backend `idx`, create-only.
    async fn write_tombstone(
        &self,
        idx: usize,
        tag: NameTag,
        version: Version,
    ) -> Result<(), CallError> {
        let t = self.threshold();
        let tk = self.tombstone_key();
        let key = tk.key(self.fanout.keyspace(), tag, version, t);
        let bytes = tk.envelope(tag, version, t, (idx + 1) as u8);
        let (mkey, mbytes) = self.new_mark(tag, MarkKind::Tombstone, version);
        let (tomb, mark) = futures::future::join(
            self.fanout.put(idx, &key, bytes, PutMode::Create),
            self.fanout.put(idx, &mkey, mbytes, PutMode::Overwrite),
        )
        .await;
        tomb.and(mark)
    }

    /// Removes the tombstone of `tag` at `version` everywhere, and the mark it left (removing
    /// a mark is always safe: a backend without one never serves a fast read, and a
    /// concurrent writer's mark removed with it only sends reads to the listing path).
    async fn withdraw_tombstone(&self, tag: NameTag, version: Version) {
        let key = self.tombstone_key().key(self.fanout.keyspace(), tag, version, self.threshold());
        let mark = self.fanout.keyspace().mark_key(tag);
        futures::future::join(
            self.fanout.delete_everywhere(&key),
            self.fanout.delete_everywhere(&mark),
        )
        .await;
    }

    /// The mark a write of `tag` at `version` leaves (docs/FORMAT.md section 17): its key
    /// and bytes.
    pub(crate) fn new_mark(&self, tag: NameTag, kind: MarkKind, version: Version) -> (Key, Bytes) {
        let bytes = self.mark_key().mark(tag, kind, version, (self.wall)());
        (self.fanout.keyspace().mark_key(tag), bytes)
    }
}
