// This file is long because it is the only module that calls backends: writes, deletes,
// listings, hedged fetches with verification and probes share one call path and its
// bookkeeping of what each backend did, which splitting would duplicate.
//! The fan-out layer: the per-backend calls, and the only module that calls backends.
//!
//! It writes one version's objects (create-only, concurrently), deletes keys, lists a
//! record's shares (optionally without waiting for backends that cannot change what a read
//! picks), fetches shares fastest first with hedging until K verify, and probes backends.
//! Every fetch carries a limit ([`Expected`]): a share longer than it, or of another size
//! than its listing said, is a bad share, named like one that fails its CRC.
//! Every call goes through the [`CallPolicy`] (timeouts, retries); each backend's read
//! latency is tracked to order the next read. It knows backends, keys and shares, not
//! operations: what to write, read or remove is decided above it, and what the bytes mean
//! is decided by the shares layer below it.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// Tokio's clock: the same as std's at run time, and virtual under a paused test clock, so
// latency ranking is deterministic in seeded fault-schedule runs.
use tokio::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};

use super::call::{CallError, CallPolicy, Latency};
use super::settings::{Settings, straggler_wait};
use super::shares::{Expect, MAX_KEYRING_SHARE_LEN, Opened, Shares};
use super::tombstone::{Deletes, TombstoneKey};
use crate::backend::{
    BackendError, BackendErrorKind, Key, KeyPrefix, ListEntry, ListFrom, MAX_LISTED_KEYS,
    MAX_LISTED_PAGES, PutMode, StorageBackend, StorageBackendExt, Visit, list_with,
};
use crate::envelope::Kind;
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{KeySpace, NameTag, ParsedKey, TOMBSTONE_NAME_MAC_LEN};
use crate::record::Record;
use crate::version::Version;
use crate::wipe::SecretVec;

/// The most K-subsets tried when looking for shares that verify.
const MAX_SUBSETS: usize = 4096;

/// One share object seen in a listing.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    pub(crate) version: Version,
    pub(crate) key: Key,
    /// Its size, as the listing reports it.
    pub(crate) size: u64,
    /// This backend's id share (empty for a segment).
    pub(crate) id_share: Vec<u8>,
    /// `Some(index)` for a segment share, `None` for a record or manifest share.
    pub(crate) segment: Option<u32>,
    /// `Some(mac)` for a tombstone (the MAC its name carries, not yet checked).
    pub(crate) tombstone: Option<[u8; TOMBSTONE_NAME_MAC_LEN]>,
}

impl Listed {
    /// True for a share of a version's head: a record, or a segmented record's manifest.
    pub(crate) fn is_head(&self) -> bool {
        self.segment.is_none() && self.tombstone.is_none()
    }
}

/// Per backend: the shares it listed for a tag, or why it could not list.
pub(crate) type TagListing = Vec<Result<Vec<Listed>, CallError>>;

/// One backend's answer to [`Fanout::list_tags_from`]: the entries, and the last record up
/// to which they are complete (`None`: to the end).
pub(crate) type TagsFrom = (Vec<(NameTag, Listed)>, Option<NameTag>);

/// Per backend: the (tag, share) pairs it listed, or why it could not list.
pub(crate) type Listing = Vec<Result<Vec<(NameTag, Listed)>, CallError>>;

/// Where a share comes from.
pub(crate) enum Source {
    /// Fetch this key, reading no more than it may have.
    Fetch(Key, Expected),
    /// Already fetched.
    Have(Bytes),
}

/// What a fetch of one share object may read, and what it must find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expected {
    /// The most bytes the fetch reads: a longer object is a bad share, found without
    /// reading it whole.
    pub(crate) max_len: u64,
    /// The size the object must have, when a listing told it: another size is a bad share.
    pub(crate) len: Option<u64>,
}

impl Expected {
    /// At most `max_len` bytes, size unknown.
    pub(crate) fn at_most(max_len: u64) -> Self {
        Self { max_len, len: None }
    }
}

/// The sources of one object (a version's share, or a segment's) on the backends that
/// listed it, `(backend, key, listed size)`. If one size was listed by at least `k` of them,
/// it is the size (K good shares of one object are all the same size, so a size fewer than K
/// list cannot be the right one when K others agree): each share is read up to that size and
/// must have it. Otherwise each is read up to `bound` (the largest share the settings allow)
/// and must have the size its own listing gave.
pub(crate) fn listed_sources(
    listed: impl IntoIterator<Item = (usize, Key, u64)>,
    k: usize,
    bound: u64,
) -> Vec<(usize, Source)> {
    let listed: Vec<(usize, Key, u64)> = listed.into_iter().collect();
    let agreed = agreed_size(listed.iter().map(|(_, _, size)| *size), k);
    listed
        .into_iter()
        .map(|(idx, key, size)| {
            let expected = match agreed {
                Some(s) => Expected { max_len: s, len: Some(s) },
                None => Expected { max_len: bound, len: Some(size) },
            };
            (idx, Source::Fetch(key, expected))
        })
        .collect()
}

/// The one size that at least `k` of `sizes` (the listed sizes of one object's shares) give,
/// if there is exactly one: K good shares of one object are all the same size.
pub(crate) fn agreed_size(sizes: impl IntoIterator<Item = u64>, k: usize) -> Option<u64> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for size in sizes {
        *counts.entry(size).or_default() += 1;
    }
    let mut agreed = counts.iter().filter(|(_, n)| **n >= k).map(|(size, _)| *size);
    match (agreed.next(), agreed.next()) {
        (Some(size), None) => Some(size),
        _ => None,
    }
}

/// A version rebuilt and verified.
pub(crate) struct Verified {
    /// What the secret holds (a record read may find a manifest).
    pub(crate) kind: Kind,
    pub(crate) secret: SecretVec,
    pub(crate) payload: Range<usize>,
    /// Good shares by backend index (envelope bytes), subset first.
    pub(crate) good: Vec<(usize, Bytes)>,
    /// The backend indices whose shares rebuilt the secret.
    pub(crate) subset: Vec<usize>,
    /// Per backend status (None: not asked).
    pub(crate) status: Vec<Option<OutcomeStatus>>,
}

impl Verified {
    pub(crate) fn payload(&self) -> &[u8] {
        &self.secret[self.payload.clone()]
    }

    /// Decodes the payload as a record, in the secret's allocation
    /// ([`Record::decode_secret`]); the secret is left empty.
    pub(crate) fn take_record(&mut self) -> Result<Record> {
        Record::decode_secret(std::mem::take(&mut self.secret), self.payload.clone())
    }

    /// Backends that served bad shares.
    pub(crate) fn bad(&self) -> Vec<usize> {
        bad_of(&self.status)
    }

    /// The envelopes that rebuilt the secret (backend index, envelope), for deriving
    /// others.
    pub(crate) fn subset_envelopes(&self) -> Vec<(usize, &[u8])> {
        self.good
            .iter()
            .filter(|(i, _)| self.subset.contains(i))
            .map(|(i, b)| (*i, &b[..]))
            .collect()
    }
}

/// What one fetch found.
enum Fetched {
    /// The object's bytes, of an acceptable size.
    Bytes(Bytes),
    /// No object.
    Missing,
    /// An object of the wrong size (longer than allowed, or not the listed size).
    Bad(String),
}

impl Fetched {
    fn check(value: Option<Bytes>, expected: Expected) -> Self {
        match value {
            None => Fetched::Missing,
            Some(b) => match expected.len {
                Some(len) if b.len() as u64 != len => {
                    Fetched::Bad(format!("share is {} bytes, but {len} were listed", b.len()))
                }
                _ if b.len() as u64 > expected.max_len => Fetched::Bad(format!(
                    "share is {} bytes, more than the {} allowed",
                    b.len(),
                    expected.max_len
                )),
                _ => Fetched::Bytes(b),
            },
        }
    }
}

fn bad_of(status: &[Option<OutcomeStatus>]) -> Vec<usize> {
    status
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Some(OutcomeStatus::Corrupt { .. })))
        .map(|(i, _)| i)
        .collect()
}

/// One backend's answer to a probe.
#[derive(Debug)]
pub(crate) struct Probed {
    /// How long the read check took to answer (or to fail).
    pub(crate) latency: Duration,
    /// True if the backend listed and read.
    pub(crate) readable: bool,
    /// True if the backend wrote (and removed) a probe object.
    pub(crate) writable: bool,
    /// What failed, if anything.
    pub(crate) error: Option<String>,
}

fn call_error_text(e: CallError) -> String {
    match e {
        CallError::Backend(e) => e.to_string(),
        CallError::TimedOut => "timed out".to_owned(),
        e @ CallError::NotAwaited => e.status().to_string(),
    }
}

/// Checks that each backend can serve reads and accept writes, concurrently, one attempt
/// per call bounded by the policy's timeout: it lists `keyring_key`'s prefix and reads that
/// slot (read check), then writes and removes `probe_key` (write check). A backend whose
/// directory is gone, whose credentials only allow reading, or that is full is down for
/// writes; one that hangs is down. Needs no open store (for `status` when the store cannot
/// be opened). The probe object holds no data of the store.
///
/// Once `enough` backends passed both checks, the others get `straggler_wait` more (as the
/// data path gives them, [`Fanout::gather`]) and are then down with "no answer": one hung
/// backend costs a health check that long, not a call timeout, so that the server's
/// `/health` answers within the readiness probe's limit while K backends do. A backend
/// whose read check timed out is not asked to write (that would time out as well).
pub(crate) async fn probe(
    backends: &[Arc<dyn StorageBackend>],
    keyring_key: &Key,
    probe_key: &Key,
    policy: &CallPolicy,
    (enough, straggler_wait): (usize, Option<Duration>),
) -> Vec<Probed> {
    let once = CallPolicy { max_attempts: 1, ..*policy };
    let once = &once;
    let start = tokio::time::Instant::now();
    let calls = backends.iter().map(|b| async move {
        let start = std::time::Instant::now();
        let slot_prefix = keyring_key.as_prefix();
        let read = match once.run(|| b.list_page(&slot_prefix, ListFrom::Start)).await {
            Ok(_) => once.run(|| b.get(keyring_key, MAX_KEYRING_SHARE_LEN)).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let latency = start.elapsed();
        let write = match &read {
            Err(CallError::TimedOut) => Err(CallError::TimedOut),
            _ => match once
                .run(|| {
                    let probe = bytes::Bytes::from_static(b"vaultdb probe");
                    b.put(probe_key, probe, PutMode::Overwrite)
                })
                .await
            {
                Ok(_) => once.run(|| b.delete(probe_key)).await.map(|_| ()),
                Err(e) => Err(e),
            },
        };
        let (readable, writable) = (read.is_ok(), write.is_ok());
        let error = match (read, write) {
            (Err(e), _) => Some(format!("cannot read: {}", call_error_text(e))),
            (Ok(()), Err(e)) => Some(format!("cannot write: {}", call_error_text(e))),
            (Ok(()), Ok(())) => None,
        };
        Probed { latency, readable, writable, error }
    });
    let not_awaited = || Probed {
        latency: start.elapsed(),
        readable: false,
        writable: false,
        error: Some(format!(
            "no answer within {:.1} s (after {enough} other backends passed)",
            start.elapsed().as_secs_f64()
        )),
    };
    gather(calls, enough, |p: &Probed| p.readable && p.writable, not_awaited, straggler_wait).await
}

/// Versions seen in a listing, newest last, each with the backends holding a share of its
/// head (segments aside).
pub(crate) fn group_versions(listing: &TagListing) -> BTreeMap<Version, Vec<(usize, Listed)>> {
    let mut by_version: BTreeMap<Version, Vec<(usize, Listed)>> = BTreeMap::new();
    for (idx, l) in listing.iter().enumerate() {
        if let Ok(entries) = l {
            for e in entries.iter().filter(|e| e.is_head()) {
                let holders = by_version.entry(e.version).or_default();
                // A backend holds one share per version; ignore duplicates.
                if !holders.iter().any(|(i, _)| *i == idx) {
                    holders.push((idx, e.clone()));
                }
            }
        }
    }
    by_version
}

/// [`Fanout::gather`] with the wait for stragglers given: `None` waits for every call.
async fn gather<T, Fut>(
    calls: impl IntoIterator<Item = Fut>,
    enough: usize,
    done: impl Fn(&T) -> bool,
    not_awaited: impl Fn() -> T,
    straggler_wait: Option<Duration>,
) -> Vec<T>
where
    Fut: std::future::Future<Output = T>,
{
    let mut running: FuturesUnordered<_> =
        calls.into_iter().enumerate().map(|(i, f)| async move { (i, f.await) }).collect();
    let mut answers: Vec<Option<T>> = (0..running.len()).map(|_| None).collect();
    let mut ok = 0;
    let start = tokio::time::Instant::now();
    let mut patience: Patience = None;
    while let Some((i, answer)) = next_within(&mut running, &mut patience).await {
        ok += usize::from(done(&answer));
        answers[i] = Some(answer);
        if ok >= enough
            && patience.is_none()
            && let Some(wait) = straggler_wait
        {
            patience = Some(Box::pin(tokio::time::sleep(wait.max(start.elapsed()))));
        }
    }
    answers.into_iter().map(|a| a.unwrap_or_else(&not_awaited)).collect()
}

/// A deadline that, once armed, ends a wait for more answers.
type Patience = Option<std::pin::Pin<Box<tokio::time::Sleep>>>;

/// The next of `running`'s answers, or `None` when there are none left or `patience` is armed
/// and runs out first.
async fn next_within<S: futures::Stream + Unpin>(
    running: &mut S,
    patience: &mut Patience,
) -> Option<S::Item> {
    match patience.as_mut() {
        Some(deadline) => tokio::select! {
            next = running.next() => next,
            () = deadline => None,
        },
        None => running.next().await,
    }
}

/// The backends of one store, in share order, and how to call them.
pub(crate) struct Fanout {
    backends: Vec<Arc<dyn StorageBackend>>,
    ids: Vec<String>,
    policy: CallPolicy,
    hedge_after: Option<Duration>,
    keyspace: KeySpace,
    shares: Shares,
    latency: Vec<Latency>,
    /// Shares found bad (CRC, format, binding or polynomial check).
    bad_shares: AtomicU64,
    /// The most objects one record's listing may hold ([`record_listing_cap`]).
    record_cap: usize,
}

/// The most objects one backend may list for one record: 64 versions of the largest record
/// the settings allow (each its segments and its head) and 4,096 more (tombstones,
/// abandoned writes). An honest listing is far smaller (the versions kept, writes in flight,
/// leftovers of crashed ones); one that is larger comes from a backend flooding it, and is
/// that backend's error instead of gigabytes held by every put's cleanup, repair and scrub.
fn record_listing_cap(settings: &Settings) -> usize {
    let segments = settings.max_record_size.div_ceil(settings.segment_size.max(1));
    segments.saturating_add(1).saturating_mul(64).saturating_add(4096).min(MAX_LISTED_KEYS)
}

impl Fanout {
    /// Calls `backends` under the call policy of `settings`, hedging reads as it says.
    pub(crate) fn new(
        backends: Vec<Arc<dyn StorageBackend>>,
        settings: &Settings,
        keyspace: KeySpace,
        shares: Shares,
    ) -> Self {
        let ids = backends.iter().map(|b| b.id().to_owned()).collect();
        let latency = (0..backends.len()).map(|_| Latency::default()).collect();
        Self {
            backends,
            ids,
            policy: settings.call_policy,
            hedge_after: settings.hedge_after,
            keyspace,
            shares,
            latency,
            bad_shares: AtomicU64::new(0),
            record_cap: record_listing_cap(settings),
        }
    }

    pub(crate) fn backends(&self) -> &[Arc<dyn StorageBackend>] {
        &self.backends
    }

    /// The backends' ids, in share order.
    pub(crate) fn ids(&self) -> &[String] {
        &self.ids
    }

    pub(crate) fn id(&self, idx: usize) -> &str {
        &self.ids[idx]
    }

    pub(crate) fn keyspace(&self) -> &KeySpace {
        &self.keyspace
    }

    pub(crate) fn shares(&self) -> &Shares {
        &self.shares
    }

    /// Sets the store's storage mode, once its keyring is read.
    pub(crate) fn set_mode(&mut self, mode: crate::compact::Mode) {
        self.shares = self.shares.with_mode(mode);
    }

    pub(crate) fn n(&self) -> usize {
        self.backends.len()
    }

    pub(crate) fn k(&self) -> usize {
        self.shares.threshold().k()
    }

    /// Shares found bad so far.
    pub(crate) fn bad_shares(&self) -> u64 {
        self.bad_shares.load(Ordering::Relaxed)
    }

    pub(crate) fn outcome(&self, idx: usize, status: OutcomeStatus) -> BackendOutcome {
        BackendOutcome::new(self.ids[idx].clone(), status)
    }

    /// Per-backend outcomes of a fan-out: `Ok` where the call succeeded.
    pub(crate) fn outcomes_of<T>(&self, results: &[Result<T, CallError>]) -> Vec<BackendOutcome> {
        results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                self.outcome(i, r.as_ref().map_or_else(CallError::status, |_| OutcomeStatus::Ok))
            })
            .collect()
    }

    /// Probes every backend (see [`probe`]): reads its keyring slot, writes a probe object.
    pub(crate) async fn probe(&self) -> Vec<Probed> {
        probe(
            &self.backends,
            &self.keyspace.keyring_key(),
            &self.keyspace.probe_key(),
            &self.policy,
            (self.k(), straggler_wait(self.hedge_after)),
        )
        .await
    }

    /// Runs `calls` (one per backend, in backend order) concurrently and returns their
    /// answers in that order. Once `enough` of them are `done`, the others get
    /// [`straggler_wait`] more, or as long again as the calls took until then if that is
    /// longer (a walk of a whole large store is not cut short because one backend lists
    /// more slowly); those still running then are dropped and answer `not_awaited()`.
    /// Dropping a call is what a crash of this client would do to it, which every operation
    /// already tolerates. With `enough` equal to the number of calls it waits for all.
    pub(crate) async fn gather<T, Fut>(
        &self,
        calls: impl IntoIterator<Item = Fut>,
        enough: usize,
        done: impl Fn(&T) -> bool,
        not_awaited: impl Fn() -> T,
    ) -> Vec<T>
    where
        Fut: std::future::Future<Output = T>,
    {
        gather(calls, enough, done, not_awaited, straggler_wait(self.hedge_after)).await
    }

    // --- Writes and deletes -------------------------------------------------------------

    /// Writes one object on backend `idx`: create-only (share objects, which are immutable),
    /// or overwriting (keyring slots, marks and settled objects). An `AlreadyExists` on a
    /// retried create means an earlier attempt landed: that counts as success when the
    /// stored bytes are ours.
    pub(crate) async fn put(
        &self,
        idx: usize,
        key: &Key,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<(), CallError> {
        let b = &self.backends[idx];
        match self.policy.run(|| b.put(key, bytes.clone(), mode)).await {
            Ok(_) => Ok(()),
            Err(CallError::Backend(e))
                if mode == PutMode::Create && e.kind() == BackendErrorKind::AlreadyExists =>
            {
                // Anything longer than our bytes is not ours: no need to read it.
                match self.policy.run(|| b.get(key, bytes.len() as u64)).await {
                    Ok(c) if c.value.as_deref() == Some(&bytes[..]) => Ok(()),
                    _ => Err(CallError::Backend(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Writes one version's objects (one per backend) create-only, concurrently; a backend
    /// marked in `skip` is not asked and reported as failed. With a `mark` (the write of a
    /// record's version, not of a segment), each backend also overwrites the record's mark,
    /// in the same round trip, and counts as written only if both calls succeeded. Once
    /// `enough` backends wrote, the others are waited for as [`Fanout::gather`] says.
    pub(crate) async fn write_all(
        &self,
        objects: Vec<(Key, Bytes)>,
        skip: &[bool],
        mark: Option<&(Key, Bytes)>,
        enough: usize,
    ) -> Vec<Result<(), CallError>> {
        let writes = objects.into_iter().enumerate().map(|(idx, (key, bytes))| async move {
            if skip.get(idx).copied().unwrap_or(false) {
                return Err(CallError::Backend(BackendError::new(
                    BackendErrorKind::Other,
                    "skipped: an earlier segment of this write failed here",
                )));
            }
            match mark {
                None => self.put(idx, &key, bytes, PutMode::Create).await,
                Some((mkey, mbytes)) => {
                    let (share, mark) = futures::future::join(
                        self.put(idx, &key, bytes, PutMode::Create),
                        self.put(idx, mkey, mbytes.clone(), PutMode::Overwrite),
                    )
                    .await;
                    share.and(mark)
                }
            }
        });
        self.gather(writes, enough, Result::is_ok, || Err(CallError::NotAwaited)).await
    }

    pub(crate) async fn delete_key(&self, idx: usize, key: &Key) -> Result<(), CallError> {
        let b = &self.backends[idx];
        self.policy.run(|| b.delete(key)).await.map(|_| ())
    }

    /// Deletes `keys` on backend `idx`, one after the other, and stops at the first failure:
    /// a backend that is down or hanging costs one call (with its retries), not one per key.
    /// Returns how many were removed, and the failure.
    pub(crate) async fn delete_keys<K: std::borrow::Borrow<Key>>(
        &self,
        idx: usize,
        keys: impl IntoIterator<Item = K>,
    ) -> (usize, Option<CallError>) {
        let mut removed = 0;
        for key in keys {
            match self.delete_key(idx, key.borrow()).await {
                Ok(()) => removed += 1,
                Err(e) => return (removed, Some(e)),
            }
        }
        (removed, None)
    }

    /// Deletes `key` on every backend, concurrently (best effort).
    pub(crate) async fn delete_everywhere(&self, key: &Key) {
        let deletes = (0..self.n()).map(|idx| self.delete_key(idx, key));
        futures::future::join_all(deletes).await;
    }

    /// Reads `key` (at most `max_len` bytes of it) on every backend, concurrently.
    pub(crate) async fn get_all(
        &self,
        key: &Key,
        max_len: u64,
    ) -> Vec<Result<Option<Bytes>, CallError>> {
        let reads = self
            .backends
            .iter()
            .map(|b| async move { self.policy.run(|| b.get(key, max_len)).await.map(|c| c.value) });
        futures::future::join_all(reads).await
    }

    /// Reads `key` (at most `max_len` bytes of it) on backend `idx`.
    pub(crate) async fn get_one(
        &self,
        idx: usize,
        key: &Key,
        max_len: u64,
    ) -> Result<Option<Bytes>, CallError> {
        let b = &self.backends[idx];
        self.policy.run(|| b.get(key, max_len)).await.map(|c| c.value)
    }

    // --- Listings -----------------------------------------------------------------------

    /// The backends that hold record objects (shares, segments or tombstones) of any of
    /// `keyspaces` (first listing page of each), or could not list (they may hold them),
    /// each described for a message. Keys that are not VaultDB's objects do not count.
    /// [`Inner::data_holders`](super::Inner::data_holders) says how many make a store hold
    /// data.
    pub(crate) async fn record_holders(&self, keyspaces: &[KeySpace]) -> Vec<String> {
        let calls = self.backends.iter().enumerate().map(|(idx, b)| async move {
            for ks in keyspaces {
                let prefix = ks.records_prefix();
                // A backend that cannot list may hold anything: it counts as a holder (else
                // one failing listing could get a store that lost its keyring a new one).
                let Ok(c) = self.policy.run(|| b.list_page(&prefix, ListFrom::Start)).await else {
                    return Some(format!("{} could not list {prefix}", self.ids[idx]));
                };
                let ours = c
                    .value
                    .entries
                    .iter()
                    .filter(|e| {
                        matches!(
                            ks.parse(e.key.as_str()),
                            Some(
                                ParsedKey::Share { .. }
                                    | ParsedKey::Segment { .. }
                                    | ParsedKey::Tombstone { .. }
                            )
                        )
                    })
                    .count();
                if ours > 0 {
                    return Some(format!(
                        "{} holds {ours}{} record objects under {prefix}",
                        self.ids[idx],
                        if c.value.next.is_some() { " or more" } else { "" },
                    ));
                }
            }
            None
        });
        futures::future::join_all(calls).await.into_iter().flatten().collect()
    }

    /// Parses one listed object: the (tag, share) it names if `keep` accepts its tag.
    fn parse_listed(
        &self,
        entry: ListEntry,
        keep: impl Fn(NameTag) -> bool,
    ) -> Option<(NameTag, Listed)> {
        let ListEntry { key, size } = entry;
        let (tag, version, id_share, segment, tombstone) =
            match self.keyspace.parse(key.as_str())? {
                ParsedKey::Share { tag, version, id_share } => (tag, version, id_share, None, None),
                ParsedKey::Segment { tag, version, index } => {
                    (tag, version, Vec::new(), Some(index), None)
                }
                ParsedKey::Tombstone { tag, version, mac } => {
                    (tag, version, Vec::new(), None, Some(mac))
                }
                _ => return None,
            };
        keep(tag).then_some((tag, Listed { version, key, size, id_share, segment, tombstone }))
    }

    /// Lists the share objects under `prefix` on every backend, parsed: per backend, the
    /// (tag, entry) pairs whose tag `keep` accepts, or why the backend could not list. Once
    /// `enough` backends listed, the others are waited for as [`Fanout::gather`] says.
    pub(crate) async fn list_shares(
        &self,
        prefix: &KeyPrefix,
        keep: impl Fn(NameTag) -> bool + Copy,
        enough: usize,
    ) -> Listing {
        // Parsed as the pages arrive: keys that are not share objects cost no memory.
        let calls = self.backends.iter().map(|b| async move {
            let caps = (MAX_LISTED_KEYS, MAX_LISTED_PAGES);
            let parse = |e| self.parse_listed(e, keep).map_or(Visit::Skip, Visit::Keep);
            let listed =
                self.policy.run(|| list_with(b.as_ref(), prefix, ListFrom::Start, caps, parse));
            Ok(listed.await?.value.0)
        });
        self.gather(calls, enough, Result::is_ok, || Err(CallError::NotAwaited)).await
    }

    /// Lists record shares on every backend from `from` (exclusive; `None`: the start) until
    /// more than `tags` distinct records were seen or the listing ends. Per backend: the
    /// entries, and the `tags`-th record, up to which the entries are complete (`None`: to
    /// the end). Each backend lists `O(tags)` keys, plus the segments and tombstones of those
    /// records. Once K backends listed, the others are waited for as [`Fanout::gather`] says.
    pub(crate) async fn list_tags_from(
        &self,
        prefix: &KeyPrefix,
        from: Option<&Key>,
        tags: usize,
    ) -> Vec<Result<TagsFrom, CallError>> {
        let calls = self.backends.iter().map(|b| async move {
            let at = from.map_or(ListFrom::Start, |k| ListFrom::After(k.clone()));
            // Takes entries up to the first of the (tags+1)-th record, so everything taken
            // is complete. The whole walk is one call under the policy: a backend whose
            // listing does not end fails, not the page.
            let (listed, ended) = self
                .policy
                .run(|| {
                    let mut seen: Vec<NameTag> = Vec::new();
                    b.list_while(prefix, at.clone(), move |e| {
                        let Some(tag) = self.keyspace.parse(e.key.as_str()).and_then(|p| p.tag())
                        else {
                            return true;
                        };
                        if seen.last() == Some(&tag) {
                            return true;
                        }
                        if seen.len() == tags {
                            return false;
                        }
                        seen.push(tag);
                        true
                    })
                })
                .await?
                .value;
            let entries: Vec<(NameTag, Listed)> =
                listed.into_iter().filter_map(|e| self.parse_listed(e, |_| true)).collect();
            let last = if ended { None } else { entries.last().map(|(t, _)| *t) };
            Ok((entries, last))
        });
        self.gather(calls, self.k(), Result::is_ok, || Err(CallError::NotAwaited)).await
    }

    /// Lists every object under `prefix` on backend `idx`, unparsed.
    pub(crate) async fn list_raw(
        &self,
        idx: usize,
        prefix: &KeyPrefix,
    ) -> Result<Vec<ListEntry>, CallError> {
        let b = &self.backends[idx];
        Ok(self.policy.run(|| b.list_all(prefix)).await?.value)
    }

    /// Lists one record's shares on every backend.
    pub(crate) async fn list_tag(&self, tag: NameTag) -> TagListing {
        let calls = (0..self.n()).map(|idx| self.list_tag_at(idx, tag));
        futures::future::join_all(calls).await
    }

    /// Lists one record's shares on backend `idx`.
    pub(crate) async fn list_tag_at(
        &self,
        idx: usize,
        tag: NameTag,
    ) -> Result<Vec<Listed>, CallError> {
        let prefix = self.keyspace.record_prefix(tag);
        let b = &self.backends[idx];
        // Parsed as the pages arrive, at most `record_cap` of them: a backend that floods
        // one record's listing fails it, and keys that are not this record's cost nothing.
        let caps = (self.record_cap, self.record_cap);
        let parse =
            |e| self.parse_listed(e, |t| t == tag).map_or(Visit::Skip, |(_, l)| Visit::Keep(l));
        let listed =
            self.policy.run(|| list_with(b.as_ref(), &prefix, ListFrom::Start, caps, parse));
        Ok(listed.await?.value.0)
    }

    /// The tombstones in one record's listing, checked against the store's tombstone key.
    pub(crate) fn deletes(&self, tag: NameTag, tk: &TombstoneKey, listing: &TagListing) -> Deletes {
        let listed = listing.iter().enumerate().flat_map(|(idx, l)| {
            l.as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(move |e| e.tombstone.as_ref().map(|mac| (idx, e.version, mac)))
        });
        tk.sort(tag, self.shares.threshold(), listed)
    }

    /// Lists one record's shares for a read, without waiting for backends whose answers can
    /// no longer change the version the read picks: once at least `min_ok` backends listed
    /// (or every backend answered), the newest version listed by K backends is known, fewer
    /// than K backends are still to answer (so no version they alone hold could reach K),
    /// and no newer version could reach K with their help, the rest are `NotAwaited`. A
    /// slow or hung backend then delays no read that the others can serve. `min_ok` is
    /// what makes a tombstone visible although some of its holders were rolled back (see
    /// `Settings::rollback_tolerance`); once everything else is decided, the read waits for
    /// those extra listings [`straggler_wait`] at most, so that a hung backend costs each
    /// read that long instead of a whole call timeout with its retries.
    pub(crate) async fn list_tag_for_read(&self, tag: NameTag, min_ok: usize) -> TagListing {
        let prefix = self.keyspace.record_prefix(tag);
        let prefix = &prefix;
        let k = self.k();
        let mut calls: FuturesUnordered<_> = self
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| async move {
                let r = self.policy.run(|| b.list_all(prefix)).await.map(|c| {
                    c.value
                        .into_iter()
                        .filter_map(|e| self.parse_listed(e, |t| t == tag))
                        .map(|(_, e)| e)
                        .collect::<Vec<_>>()
                });
                (i, r)
            })
            .collect();
        let mut listing: TagListing = (0..self.n()).map(|_| Err(CallError::NotAwaited)).collect();
        let mut waiting = self.n();
        // Armed while the version is decided and only the extra listings are missing.
        let mut patience: Patience = None;
        while let Some((i, r)) = next_within(&mut calls, &mut patience).await {
            listing[i] = r;
            waiting -= 1;
            if waiting == 0 || waiting >= k {
                continue;
            }
            let versions = group_versions(&listing);
            // Decided: no version newer than the newest with K holders (or, without one, no
            // version at all) could reach K with the backends still to answer.
            let best = versions.iter().rev().find(|(_, h)| h.len() >= k).map(|(v, _)| *v);
            let decided = !versions
                .iter()
                .filter(|(v, _)| best.is_none_or(|b| **v > b))
                .any(|(_, h)| h.len() + waiting >= k);
            if !decided {
                patience = None;
                continue;
            }
            if listing.iter().filter(|l| l.is_ok()).count() >= min_ok {
                break;
            }
            if patience.is_none()
                && let Some(wait) = straggler_wait(self.hedge_after)
            {
                patience = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
        // Answers that are already there are taken (a backend that failed fast is reported
        // as failed, not as skipped); only the ones still running are left behind.
        while let Some(Some((i, r))) = calls.next().now_or_never() {
            listing[i] = r;
        }
        listing
    }

    // --- Reads --------------------------------------------------------------------------

    /// Backend indices, fastest readers first (counting what rebuilding from each costs:
    /// [`Shares::read_cost_us`]).
    fn by_latency(&self, mut idxs: Vec<usize>) -> Vec<usize> {
        idxs.sort_by_key(|&i| self.latency[i].get().saturating_add(self.shares.read_cost_us(i)));
        idxs
    }

    /// Fetches shares from `sources` until K verify (or, with `want_all`, all of them), and
    /// rebuilds the secret. Every share beyond the rebuilding K is checked against the
    /// rebuilt polynomial, so a bad backend is named, not just detected.
    pub(crate) async fn fetch_and_verify(
        &self,
        expect: Expect,
        sources: Vec<(usize, Source)>,
        want_all: bool,
    ) -> Result<Verified> {
        let k = self.k();
        let mut status: Vec<Option<OutcomeStatus>> = vec![None; self.n()];
        let order = self.by_latency(sources.iter().map(|(i, _)| *i).collect());
        let mut by_idx: BTreeMap<usize, Source> = sources.into_iter().collect();
        let mut queue: VecDeque<(usize, Source)> =
            order.into_iter().filter_map(|i| by_idx.remove(&i).map(|s| (i, s))).collect();
        let mut good: Vec<(usize, Bytes)> = Vec::new();
        // Positions in `good` whose CRC is still to be checked (by the first `open`).
        let mut unchecked: Vec<usize> = Vec::new();
        let mut inflight = FuturesUnordered::new();
        // When each backend's fetch started, until it answers (for abandoned fetches).
        let mut pending: Vec<Option<Instant>> = vec![None; self.n()];

        let fetch = |idx: usize, src: Source| async move {
            let start = Instant::now();
            let res = match src {
                Source::Have(b) => Ok(Fetched::Bytes(b)),
                Source::Fetch(key, expected) => {
                    let b = &self.backends[idx];
                    match self.policy.run(|| b.get(&key, expected.max_len)).await {
                        Ok(c) => Ok(Fetched::check(c.value, expected)),
                        Err(CallError::Backend(e)) if e.kind() == BackendErrorKind::TooLarge => {
                            Ok(Fetched::Bad(e.message().to_owned()))
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            (idx, res, start.elapsed())
        };

        let first = if want_all { queue.len() } else { k.min(queue.len()) };
        for _ in 0..first {
            if let Some((i, s)) = queue.pop_front() {
                pending[i] = Some(Instant::now());
                inflight.push(fetch(i, s));
            }
        }
        // Phase 1: K good shares (or all), asking one more backend on each failure and
        // whenever the hedging delay passes without enough answers.
        loop {
            while want_all || good.len() < k {
                let next = match (self.hedge_after, want_all) {
                    (Some(d), false) if !queue.is_empty() => {
                        match tokio::time::timeout(d, inflight.next()).await {
                            Ok(n) => n,
                            Err(_) => {
                                if let Some((i, s)) = queue.pop_front() {
                                    tracing::debug!(backend = %self.ids[i], "hedging read");
                                    pending[i] = Some(Instant::now());
                                    inflight.push(fetch(i, s));
                                }
                                continue;
                            }
                        }
                    }
                    _ => inflight.next().await,
                };
                let Some((idx, res, elapsed)) = next else {
                    break;
                };
                pending[idx] = None;
                let defer = (!want_all).then_some(&mut unchecked);
                let ok = self.absorb(idx, res, elapsed, &expect, &mut status, &mut good, defer);
                if !ok
                    && !want_all
                    && let Some((i, s)) = queue.pop_front()
                {
                    pending[i] = Some(Instant::now());
                    inflight.push(fetch(i, s));
                }
            }
            // The first K (their CRCs checked beside the rebuild where that is deferred), or, if
            // too few arrived good, just the deferred CRCs: after this every share in `good` has
            // passed its CRC, and those that failed are named as they would have been on arrival.
            let (opened, bad_sums) = if good.len() >= k {
                self.shares.open(&expect, &good, 1, &unchecked)
            } else {
                self.shares.open(&expect, &good, 0, &unchecked)
            };
            let rejected = bad_sums.len();
            for (p, reason) in bad_sums.into_iter().rev() {
                let (idx, _) = good.remove(p);
                self.note_bad(idx, &reason);
                status[idx] = Some(OutcomeStatus::Corrupt { reason });
            }
            unchecked.clear();
            if let Some(opened) = opened {
                // Hedged fetches still in flight are not needed: dropping cancels them. Their
                // backends were slower than the time waited, which is what their latency learns.
                drop(inflight);
                for (idx, started) in pending.iter().enumerate() {
                    if let Some(t) = started {
                        self.latency[idx].record_at_least(t.elapsed());
                    }
                }
                return self.finish(opened, good, status);
            }
            // An envelope that failed its CRC is replaced as on arrival: one more backend asked
            // per failure, and phase 1 again.
            if rejected == 0 || queue.is_empty() {
                break;
            }
            for _ in 0..rejected {
                if let Some((i, s)) = queue.pop_front() {
                    pending[i] = Some(Instant::now());
                    inflight.push(fetch(i, s));
                }
            }
        }
        // Phase 2: the first K did not verify (or too few were good): hear out the fetches
        // still in flight (a hedged one may hold the good share) and ask everyone left.
        for (i, s) in queue.drain(..) {
            inflight.push(fetch(i, s));
        }
        while let Some((idx, res, elapsed)) = inflight.next().await {
            self.absorb(idx, res, elapsed, &expect, &mut status, &mut good, None);
        }
        let outcomes = |status: &[Option<OutcomeStatus>]| -> Vec<BackendOutcome> {
            status
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.clone().map(|s| self.outcome(i, s)))
                .collect()
        };
        let bad_named = || bad_of(&status).into_iter().map(|i| self.ids[i].clone()).collect();
        if good.len() < k && !bad_of(&status).is_empty() {
            // Enough shares exist but some are bad: an integrity failure, not an outage.
            tracing::warn!(tag = %expect.tag, "bad shares leave fewer than {k} good ones");
            return Err(VaultError::HmacFailed {
                reason: format!(
                    "only {} good shares of {k} needed; the others are bad",
                    good.len()
                ),
                bad_backends: bad_named(),
                outcomes: outcomes(&status),
            });
        }
        if good.len() < k {
            return Err(VaultError::InsufficientShares {
                need: k,
                got: good.len(),
                outcomes: outcomes(&status),
            });
        }
        match self.shares.open(&expect, &good, MAX_SUBSETS, &[]).0 {
            Some(opened) => self.finish(opened, good, status),
            None => {
                tracing::warn!(tag = %expect.tag, "no {k} shares verify: possible tampering");
                Err(VaultError::HmacFailed {
                    reason: format!(
                        "no {k} of the {} shares fetched rebuild a record that verifies",
                        good.len()
                    ),
                    bad_backends: bad_named(),
                    outcomes: outcomes(&status),
                })
            }
        }
    }

    /// Files one fetch result; true if it yielded a good share. With `defer`, a large
    /// envelope's CRC is left to [`Shares::open`] ([`Shares::defers_checksum`]) and its
    /// position in `good` noted there.
    #[allow(clippy::too_many_arguments)]
    fn absorb(
        &self,
        idx: usize,
        res: Result<Fetched, CallError>,
        elapsed: Duration,
        expect: &Expect,
        status: &mut [Option<OutcomeStatus>],
        good: &mut Vec<(usize, Bytes)>,
        defer: Option<&mut Vec<usize>>,
    ) -> bool {
        match res {
            Ok(Fetched::Bytes(bytes)) => {
                self.latency[idx].record(elapsed);
                let defer = defer.filter(|_| self.shares.defers_checksum(bytes.len()));
                let checked = match defer {
                    Some(_) => self.shares.check_header(idx, &bytes, expect),
                    None => self.shares.check(idx, &bytes, expect),
                };
                match checked {
                    Ok(()) => {
                        if let Some(unchecked) = defer {
                            unchecked.push(good.len());
                        }
                        status[idx] = Some(OutcomeStatus::Ok);
                        good.push((idx, bytes));
                        true
                    }
                    Err(reason) => {
                        self.note_bad(idx, &reason);
                        status[idx] = Some(OutcomeStatus::Corrupt { reason });
                        false
                    }
                }
            }
            Ok(Fetched::Bad(reason)) => {
                self.latency[idx].record(elapsed);
                self.note_bad(idx, &reason);
                status[idx] = Some(OutcomeStatus::Corrupt { reason });
                false
            }
            Ok(Fetched::Missing) => {
                self.latency[idx].record(elapsed);
                status[idx] = Some(OutcomeStatus::Missing);
                false
            }
            Err(e) => {
                self.latency[idx].penalize();
                tracing::warn!(backend = %self.ids[idx], error = ?e, "share fetch failed");
                status[idx] = Some(e.status());
                false
            }
        }
    }

    pub(crate) fn note_bad(&self, idx: usize, reason: &str) {
        self.bad_shares.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(backend = %self.ids[idx], reason, "backend served a bad share");
    }

    /// Checks the shares beyond the opened subset against the rebuilt polynomial, naming
    /// the backends whose shares do not fit.
    fn finish(
        &self,
        opened: Opened,
        good: Vec<(usize, Bytes)>,
        mut status: Vec<Option<OutcomeStatus>>,
    ) -> Result<Verified> {
        let fits = self.shares.confirm(&opened, &good)?;
        let subset: Vec<(usize, Bytes)> = opened.subset.iter().map(|&p| good[p].clone()).collect();
        let mut verified_good = subset.clone();
        for (p, (idx, bytes)) in good.into_iter().enumerate() {
            if opened.subset.contains(&p) {
                continue;
            }
            if fits[p] {
                verified_good.push((idx, bytes));
            } else {
                let reason = "share does not match the verified polynomial".to_owned();
                self.note_bad(idx, &reason);
                status[idx] = Some(OutcomeStatus::Corrupt { reason });
            }
        }
        Ok(Verified {
            kind: opened.kind,
            secret: opened.secret,
            payload: opened.payload,
            good: verified_good,
            subset: subset.iter().map(|(i, _)| *i).collect(),
            status,
        })
    }
}
