// This file is long because the read path is one algorithm over shared state: listing a record's
// versions, fetching shares fastest first with hedging, verifying them and naming bad backends, and
// choosing the version; stream.rs and maintain.rs reuse its fetch-and-verify engine.
//! Reading: listing a record's versions, fetching shares (fastest first, hedged), rebuilding,
//! verifying, and naming every backend that served bad data.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

// Tokio's clock: the same as std's at run time, and virtual under a paused test clock, so
// latency ranking is deterministic in seeded fault-schedule runs.
use tokio::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};

use super::call::CallError;
use super::{Inner, VaultDb};
use crate::backend::StorageBackendExt;
use crate::envelope::{self, Kind};
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{NameTag, ParsedKey, validate_id};
use crate::record::Record;
use crate::secret::{self, Binding, SECRET_HEADER_LEN};
use crate::version::Version;
use crate::wipe::SecretVec;
use crate::xorida::SharePoint;

/// The most K-subsets tried when looking for shares that verify.
const MAX_SUBSETS: usize = 4096;

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
    /// True if any backend failed, lacked its share or served bad data.
    pub degraded: bool,
}

/// One share object seen in a listing.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    pub(crate) version: Version,
    pub(crate) key: String,
    /// This backend's id share (empty for a segment).
    pub(crate) id_share: Vec<u8>,
    /// `Some(index)` for a segment share, `None` for a record or manifest share.
    pub(crate) segment: Option<u32>,
}

/// Per backend: the shares it listed for a tag, or why it could not list.
pub(crate) type TagListing = Vec<Result<Vec<Listed>, CallError>>;

/// Where a share comes from.
pub(crate) enum Source {
    /// Fetch this key.
    Fetch(String),
    /// Already fetched.
    Have(Bytes),
}

/// What the read must match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect {
    pub(crate) kind: Kind,
    pub(crate) tag: NameTag,
    pub(crate) version: Version,
}

/// A secret that verified: its bytes, where its payload is, the positions (in the list of
/// good shares) of the shares that rebuilt it, and its kind.
type Rebuilt = (SecretVec, Range<usize>, Vec<usize>, Kind);

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

    pub(crate) fn bad(&self) -> Vec<usize> {
        bad_of(&self.status)
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

impl Inner {
    /// Lists the share objects under `prefix` on every backend, parsed: per backend, the
    /// (tag, entry) pairs whose tag `keep` accepts, or why the backend could not list.
    pub(crate) async fn list_shares(
        &self,
        prefix: &str,
        keep: impl Fn(NameTag) -> bool + Copy,
    ) -> Vec<Result<Vec<(NameTag, Listed)>, CallError>> {
        let calls = self.backends.iter().map(|b| async move {
            let keys = self.settings.call_policy.run(|| b.list_all(prefix)).await?.value;
            Ok(keys
                .into_iter()
                .filter_map(|key| match self.keyspace.parse(&key) {
                    Some(ParsedKey::Share { tag, version, id_share }) if keep(tag) => {
                        Some((tag, Listed { version, key, id_share, segment: None }))
                    }
                    Some(ParsedKey::Segment { tag, version, index }) if keep(tag) => Some((
                        tag,
                        Listed { version, key, id_share: Vec::new(), segment: Some(index) },
                    )),
                    _ => None,
                })
                .collect())
        });
        futures::future::join_all(calls).await
    }

    /// Lists one record's shares on every backend.
    pub(crate) async fn list_tag(&self, tag: NameTag) -> TagListing {
        let prefix = self.keyspace.record_prefix(tag);
        self.list_shares(&prefix, |t| t == tag)
            .await
            .into_iter()
            .map(|l| l.map(|entries| entries.into_iter().map(|(_, e)| e).collect()))
            .collect()
    }

    /// Lists one record's shares for a read, without waiting for backends whose answers can
    /// no longer change the version the read picks: once the newest version listed by K
    /// backends is known, fewer than K backends are still to answer (so no version they alone
    /// hold could reach K), and no newer version could reach K with their help, the rest are
    /// `NotAwaited`. A slow or hung backend then delays no read that the others can serve.
    pub(crate) async fn list_tag_for_read(&self, tag: NameTag) -> TagListing {
        let prefix = self.keyspace.record_prefix(tag);
        let prefix = prefix.as_str();
        let k = self.k();
        let mut calls: FuturesUnordered<_> = self
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| async move {
                let r = self.settings.call_policy.run(|| b.list_all(prefix)).await.map(|c| {
                    c.value
                        .into_iter()
                        .filter_map(|key| match self.keyspace.parse(&key) {
                            Some(ParsedKey::Share { tag: t, version, id_share }) if t == tag => {
                                Some(Listed { version, key, id_share, segment: None })
                            }
                            Some(ParsedKey::Segment { tag: t, version, index }) if t == tag => {
                                Some(Listed {
                                    version,
                                    key,
                                    id_share: Vec::new(),
                                    segment: Some(index),
                                })
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                });
                (i, r)
            })
            .collect();
        let mut listing: TagListing = (0..self.n()).map(|_| Err(CallError::NotAwaited)).collect();
        let mut waiting = self.n();
        while let Some((i, r)) = calls.next().await {
            listing[i] = r;
            waiting -= 1;
            if waiting == 0 || waiting >= k {
                continue;
            }
            let versions = group_versions(&listing);
            let Some(best) = versions.iter().rev().find(|(_, h)| h.len() >= k).map(|(v, _)| *v)
            else {
                continue;
            };
            let newer_could_win =
                versions.range(best..).skip(1).any(|(_, h)| h.len() + waiting >= k);
            if !newer_could_win {
                break;
            }
        }
        // Answers that are already there are taken (a backend that failed fast is reported
        // as failed, not as skipped); only the ones still running are left behind.
        while let Some(Some((i, r))) = calls.next().now_or_never() {
            listing[i] = r;
        }
        listing
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

    /// Checks a fetched envelope against what the read expects.
    fn check_share(&self, idx: usize, bytes: &[u8], expect: &Expect) -> Result<(), String> {
        let env = envelope::decode(bytes).map_err(|e| e.to_string())?;
        let h = env.header;
        // A record read accepts either an inline record or a segmented record's manifest;
        // the MAC binds the kind, so a backend cannot turn one into the other.
        if h.kind != expect.kind && !(expect.kind == Kind::Record && h.kind == Kind::Manifest) {
            return Err("wrong kind of share".into());
        }
        if h.threshold != self.threshold {
            return Err(format!("share is for {}, store is {}", h.threshold, self.threshold));
        }
        if usize::from(h.x) != idx + 1 {
            return Err(format!("share has x = {}, backend holds x = {}", h.x, idx + 1));
        }
        if h.version != expect.version {
            return Err("share belongs to another version".into());
        }
        if !h.tag.ct_eq(&expect.tag) {
            return Err("share belongs to another record".into());
        }
        Ok(())
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
        let mut inflight = FuturesUnordered::new();
        // When each backend's fetch started, until it answers (for abandoned fetches).
        let mut pending: Vec<Option<Instant>> = vec![None; self.n()];

        let fetch = |idx: usize, src: Source| async move {
            let start = Instant::now();
            let res = match src {
                Source::Have(b) => Ok(Some(b)),
                Source::Fetch(key) => {
                    let b = &self.backends[idx];
                    self.settings.call_policy.run(|| b.get(&key)).await.map(|c| c.value)
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
        while want_all || good.len() < k {
            let next = match (self.settings.hedge_after, want_all) {
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
            let ok = self.absorb(idx, res, elapsed, &expect, &mut status, &mut good);
            if !ok
                && !want_all
                && let Some((i, s)) = queue.pop_front()
            {
                pending[i] = Some(Instant::now());
                inflight.push(fetch(i, s));
            }
        }
        if good.len() >= k
            && let Some(v) = self.try_subsets(&expect, &good, 1)?
        {
            // Hedged fetches still in flight are not needed: dropping cancels them. Their
            // backends were slower than the time waited, which is what their latency learns.
            drop(inflight);
            for (idx, started) in pending.iter().enumerate() {
                if let Some(t) = started {
                    self.latency[idx].record_at_least(t.elapsed());
                }
            }
            return self.finish(v, good, status);
        }
        // Phase 2: the first K did not verify (or too few were good): hear out the fetches
        // still in flight (a hedged one may hold the good share) and ask everyone left.
        for (i, s) in queue.drain(..) {
            inflight.push(fetch(i, s));
        }
        while let Some((idx, res, elapsed)) = inflight.next().await {
            self.absorb(idx, res, elapsed, &expect, &mut status, &mut good);
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
            });
        }
        if good.len() < k {
            return Err(VaultError::InsufficientShares {
                need: k,
                got: good.len(),
                outcomes: outcomes(&status),
            });
        }
        match self.try_subsets(&expect, &good, MAX_SUBSETS)? {
            Some(v) => self.finish(v, good, status),
            None => {
                let bad = bad_named();
                tracing::warn!(tag = %expect.tag, "no {k} shares verify: possible tampering");
                Err(VaultError::HmacFailed {
                    reason: format!(
                        "no {k} of the {} shares fetched rebuild a record that verifies",
                        good.len()
                    ),
                    bad_backends: bad,
                })
            }
        }
    }

    /// Files one fetch result; true if it yielded a good share.
    fn absorb(
        &self,
        idx: usize,
        res: Result<Option<Bytes>, CallError>,
        elapsed: Duration,
        expect: &Expect,
        status: &mut [Option<OutcomeStatus>],
        good: &mut Vec<(usize, Bytes)>,
    ) -> bool {
        match res {
            Ok(Some(bytes)) => {
                self.latency[idx].record(elapsed);
                match self.check_share(idx, &bytes, expect) {
                    Ok(()) => {
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
            Ok(None) => {
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
        self.stats.bad_shares.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(backend = %self.ids[idx], reason, "backend served a bad share");
    }

    /// Tries K-subsets of `good` (at most `limit`), returning the first that verifies, as
    /// (secret, payload range, positions in `good`).
    fn try_subsets(
        &self,
        expect: &Expect,
        good: &[(usize, Bytes)],
        limit: usize,
    ) -> Result<Option<Rebuilt>> {
        let k = self.k();
        let mut tried = 0;
        let mut found = None;
        for_each_subset(good.len(), k, &mut |pos: &[usize]| {
            if tried >= limit {
                return false;
            }
            tried += 1;
            let pts: Vec<SharePoint<'_>> = pos
                .iter()
                .map(|&p| {
                    let (idx, bytes) = &good[p];
                    let share = &bytes[envelope::HEADER_LEN..bytes.len() - envelope::TRAILER_LEN];
                    SharePoint { x: (*idx + 1) as u8, y: share }
                })
                .collect();
            if pts.iter().any(|p| p.y.len() != pts[0].y.len()) {
                return true;
            }
            // check_share accepted every good share, so its kind byte is valid; the subset
            // must agree on it, and the MAC label binds it.
            let kinds: Vec<Option<Kind>> =
                pos.iter().map(|&p| envelope::kind_of(&good[p].1)).collect();
            let Some(kind) = kinds[0] else {
                return true;
            };
            if kinds.iter().any(|k| *k != Some(kind)) {
                return true;
            }
            let Ok(secret) = self.xorida.rebuild(self.threshold, &pts) else {
                return true;
            };
            let binding = Binding {
                kind,
                tag: expect.tag,
                version: expect.version,
                threshold: self.threshold,
            };
            if let Ok(payload) = secret::open(&binding, &secret) {
                let range = SECRET_HEADER_LEN..SECRET_HEADER_LEN + payload.len();
                found = Some((secret, range, pos.to_vec(), kind));
                return false;
            }
            true
        });
        Ok(found)
    }

    /// Checks the shares beyond the verified subset against the rebuilt polynomial.
    fn finish(
        &self,
        (secret, payload, pos, kind): Rebuilt,
        good: Vec<(usize, Bytes)>,
        mut status: Vec<Option<OutcomeStatus>>,
    ) -> Result<Verified> {
        let share_of = |b: &Bytes| b.slice(envelope::HEADER_LEN..b.len() - envelope::TRAILER_LEN);
        let subset: Vec<(usize, Bytes)> = pos.iter().map(|&p| good[p].clone()).collect();
        let subset_shares: Vec<Bytes> = subset.iter().map(|(_, b)| share_of(b)).collect();
        let pts: Vec<SharePoint<'_>> = subset
            .iter()
            .zip(&subset_shares)
            .map(|((i, _), s)| SharePoint { x: (*i + 1) as u8, y: s })
            .collect();
        let mut verified_good = subset.clone();
        for (p, (idx, bytes)) in good.iter().enumerate() {
            if pos.contains(&p) {
                continue;
            }
            let expected = self.xorida.derive(self.threshold, &pts, (*idx + 1) as u8)?;
            if expected[..] == share_of(bytes)[..] {
                verified_good.push((*idx, bytes.clone()));
            } else {
                let reason = "share does not match the verified polynomial".to_owned();
                self.note_bad(*idx, &reason);
                status[*idx] = Some(OutcomeStatus::Corrupt { reason });
            }
        }
        Ok(Verified {
            kind,
            secret,
            payload,
            good: verified_good,
            subset: subset.iter().map(|(i, _)| *i).collect(),
            status,
        })
    }
}

/// Calls `f` with every k-subset of 0..n (as sorted positions) until it returns false.
pub(crate) fn for_each_subset(n: usize, k: usize, f: &mut dyn FnMut(&[usize]) -> bool) {
    if k > n || k == 0 {
        return;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        if !f(&idx) {
            return;
        }
        // Advance to the next combination in lexicographic order.
        let mut i = k;
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            if idx[i] != i + n - k {
                break;
            }
            if i == 0 {
                return;
            }
        }
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// Versions seen in a listing, newest first, each with the backends holding a share.
pub(crate) fn group_versions(listing: &TagListing) -> BTreeMap<Version, Vec<(usize, Listed)>> {
    let mut by_version: BTreeMap<Version, Vec<(usize, Listed)>> = BTreeMap::new();
    for (idx, l) in listing.iter().enumerate() {
        if let Ok(entries) = l {
            for e in entries.iter().filter(|e| e.segment.is_none()) {
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

/// The newest readable version of a record, with its head (record or manifest) verified.
pub(crate) struct Head {
    pub(crate) tag: NameTag,
    pub(crate) version: Version,
    pub(crate) verified: Verified,
    /// Per backend outcomes of the listing and the head fetch.
    pub(crate) outcomes: Vec<BackendOutcome>,
    /// Backends holding a share of the head of this version, then the backends whose
    /// listing the read did not wait for (they may hold it too): where segments are read.
    pub(crate) holders: Vec<usize>,
}

impl Head {
    pub(crate) fn bad_backends(&self, inner: &Inner) -> Vec<String> {
        self.verified.bad().into_iter().map(|i| inner.ids[i].clone()).collect()
    }
}

impl VaultDb {
    /// Lists a record's versions and verifies the head of the newest one that has K shares.
    pub(crate) async fn resolve_head(&self, id: &str) -> Result<Head> {
        validate_id(id)?;
        let inner = &self.inner;
        let tag = inner.naming.tag(id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        let k = inner.k();
        let mut last_err = None;
        for attempt in 0..3 {
            // With hedging on, the first attempt does not wait for backends that cannot
            // change the outcome; a retry (shares listed but gone, or too few good), and any
            // read with hedging off, hears everyone.
            let listing = if attempt == 0 && inner.settings.hedge_after.is_some() {
                inner.list_tag_for_read(tag).await
            } else {
                inner.list_tag(tag).await
            };
            let skipped = listing.iter().any(|l| matches!(l, Err(CallError::NotAwaited)));
            let unanswered = listing.iter().filter(|l| l.is_err()).count();
            let versions = group_versions(&listing);
            let base_outcomes = |v: Option<&Version>| -> Vec<BackendOutcome> {
                listing
                    .iter()
                    .enumerate()
                    .map(|(i, l)| match l {
                        Err(e) => inner.outcome(i, e.status()),
                        Ok(entries)
                            if v.is_some_and(|v| {
                                entries.iter().any(|e| e.version == *v && e.segment.is_none())
                            }) =>
                        {
                            inner.outcome(i, OutcomeStatus::Skipped)
                        }
                        Ok(_) => inner.outcome(i, OutcomeStatus::Missing),
                    })
                    .collect()
            };
            let Some((version, holders)) =
                versions.iter().rev().find(|(_, holders)| holders.len() >= k)
            else {
                let best = versions.values().map(Vec::len).max().unwrap_or(0);
                if best + unanswered >= k {
                    return Err(VaultError::InsufficientShares {
                        need: k,
                        got: best,
                        outcomes: base_outcomes(None),
                    });
                }
                return Err(VaultError::RecordNotFound);
            };
            inner.clock.observe(version.micros());
            let expect = Expect { kind: Kind::Record, tag, version: *version };
            let sources = holders.iter().map(|(i, l)| (*i, Source::Fetch(l.key.clone()))).collect();
            let verified = match inner.fetch_and_verify(expect, sources, false).await {
                Ok(v) => v,
                Err(e @ VaultError::InsufficientShares { .. })
                    if e.outcomes().iter().any(|o| o.status == OutcomeStatus::Missing) =>
                {
                    // Listed but gone: a concurrent put's cleanup or a delete. Look again.
                    last_err = Some(e);
                    continue;
                }
                Err(
                    e @ (VaultError::InsufficientShares { .. } | VaultError::HmacFailed { .. }),
                ) if skipped => {
                    // A backend not waited for may hold the good share: ask everyone.
                    last_err = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut outcomes = base_outcomes(Some(version));
            for (i, s) in verified.status.iter().enumerate() {
                if let Some(s) = s {
                    outcomes[i].status = s.clone();
                }
            }
            return Ok(Head {
                tag,
                version: *version,
                verified,
                outcomes,
                holders: holders
                    .iter()
                    .map(|(i, _)| *i)
                    .chain(
                        listing
                            .iter()
                            .enumerate()
                            .filter(|(_, l)| matches!(l, Err(CallError::NotAwaited)))
                            .map(|(i, _)| i),
                    )
                    .collect(),
            });
        }
        Err(last_err.unwrap_or(VaultError::RecordNotFound))
    }

    /// Reports a degraded read (log, metrics) and starts read-repair if configured.
    pub(crate) fn note_degraded(&self, tag: NameTag, outcomes: &[BackendOutcome]) -> bool {
        let inner = &self.inner;
        let degraded = outcomes
            .iter()
            .any(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped));
        if degraded {
            inner.stats.degraded_reads.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%tag, "degraded read: {}", crate::error::outcomes_text(outcomes));
            if inner.settings.read_repair
                && let Ok(handle) = tokio::runtime::Handle::try_current()
            {
                let db = self.clone();
                handle.spawn(async move {
                    if let Err(e) = db.repair_tag(tag, None).await {
                        tracing::warn!(%tag, error = %e, "read-repair failed");
                    }
                });
            }
        }
        degraded
    }

    /// Reads a record: lists its versions, rebuilds the newest one that has K shares from
    /// the fastest backends, and verifies it. A segmented record is read whole (see
    /// [`VaultDb::get_stream`] for bounded memory).
    ///
    /// # Errors
    /// `RECORD_NOT_FOUND` if no backend holds it; `INSUFFICIENT_SHARES` if too few backends
    /// answer; `HMAC_FAILED` if no K shares verify (never wrong data); `INVALID_CONFIG` for
    /// an invalid id, or a segmented record larger than `max_record_size`.
    #[tracing::instrument(name = "vaultdb.get", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn get(&self, id: &str) -> Result<GetResult> {
        let inner = &self.inner;
        let head = self.resolve_head(id).await?;
        let (record, outcomes, bad_backends) = match head.verified.kind {
            Kind::Manifest => self.read_whole(id, &head).await?,
            _ => {
                let record = Record::decode(head.verified.payload())?;
                if record.id != id {
                    return Err(VaultError::HmacFailed {
                        reason: "rebuilt record carries another id".into(),
                        bad_backends: vec![],
                    });
                }
                let bad = head.bad_backends(inner);
                (record, head.outcomes, bad)
            }
        };
        let degraded = self.note_degraded(head.tag, &outcomes);
        Ok(GetResult { record, version: head.version, outcomes, bad_backends, degraded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_all_combinations() {
        let mut seen = Vec::new();
        for_each_subset(5, 3, &mut |s| {
            seen.push(s.to_vec());
            true
        });
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.first().unwrap(), &vec![0, 1, 2]);
        assert_eq!(seen.last().unwrap(), &vec![2, 3, 4]);
        let mut n = 0;
        for_each_subset(4, 4, &mut |_| {
            n += 1;
            true
        });
        assert_eq!(n, 1);
        for_each_subset(2, 3, &mut |_| panic!("no subsets"));
        let mut stop = 0;
        for_each_subset(10, 2, &mut |_| {
            stop += 1;
            stop < 3
        });
        assert_eq!(stop, 3);
    }
}
