//! list, repair, scrub and health.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::StreamExt;

use super::call::CallError;
use super::read::{Expect, Listed, Source, TagListing, Verified, for_each_subset, group_versions};
use super::{Inner, VaultDb};
use crate::envelope::{self, Header, Kind};
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{NameTag, unpad_id, validate_id};
use crate::version::Version;
use crate::xorida::SharePoint;

/// The ids `list` found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ListResult {
    /// Live record ids (a version with at least K shares whose id checks against its name
    /// tag), sorted.
    pub ids: Vec<String>,
    /// What each backend's listing did.
    pub outcomes: Vec<BackendOutcome>,
    /// Records that had K listed shares but whose id could not be verified.
    pub unverified: usize,
}

/// What `repair` did for one record.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RepairReport {
    /// The version repaired (the newest that verifies), if any.
    pub version: Option<Version>,
    /// Backends whose share was rewritten.
    pub restored: Vec<String>,
    /// Objects removed (superseded versions, abandoned partial writes, bad shares).
    pub removed: usize,
    /// What could not be repaired, and why.
    pub problems: Vec<String>,
    /// Objects this repair wrote (backend index, key), for undoing them if the version
    /// was deleted or superseded meanwhile.
    pub(crate) written: Vec<(usize, String)>,
}

/// What `scrub` did for the whole store.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Records (name tags) examined.
    pub records: usize,
    /// Shares rewritten (records and keyring).
    pub restored: usize,
    /// Objects removed.
    pub removed: usize,
    /// What could not be repaired, and why (by name tag, never by id).
    pub problems: Vec<String>,
    /// What each backend's listing did.
    pub outcomes: Vec<BackendOutcome>,
}

/// One backend's health.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackendHealth {
    /// The backend's id.
    pub id: String,
    /// Its human-readable name.
    pub name: String,
    /// True if it answered a listing.
    pub up: bool,
    /// How long it took to answer (or to fail).
    pub latency: Duration,
    /// The error, if it failed.
    pub error: Option<String>,
}

/// The store's health.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Health {
    /// K.
    pub k: usize,
    /// N.
    pub n: usize,
    /// Per backend.
    pub backends: Vec<BackendHealth>,
    /// Backends up.
    pub up: usize,
    /// `up - K`: how many more backends can fail before reads fail (negative: already
    /// failing).
    pub margin: isize,
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

impl CallError {
    /// A copy without the source chain (for fanning one listing failure out to many
    /// records).
    fn duplicate(&self) -> CallError {
        match self {
            CallError::TimedOut => CallError::TimedOut,
            CallError::NotAwaited => CallError::NotAwaited,
            CallError::Backend(e) => {
                CallError::Backend(crate::backend::BackendError::new(e.kind(), e.to_string()))
            }
        }
    }
}

impl Inner {
    /// Lists every record share on every backend, with per-backend outcomes; fails unless
    /// at least K backends answered (nothing can be rebuilt from fewer).
    async fn list_everything(
        &self,
    ) -> Result<(Vec<Result<Vec<(NameTag, Listed)>, CallError>>, Vec<BackendOutcome>)> {
        let listing = self.list_shares(&self.keyspace.records_prefix(), |_| true).await;
        let outcomes = self.outcomes_of(&listing);
        let answered = listing.iter().filter(|l| l.is_ok()).count();
        if answered < self.k() {
            return Err(VaultError::InsufficientShares { need: self.k(), got: answered, outcomes });
        }
        Ok((listing, outcomes))
    }

    /// Rebuilds an id from K id shares and checks it against its tag, trying subsets.
    fn recover_id(&self, tag: NameTag, holders: &[(usize, &[u8])]) -> Option<(String, Vec<usize>)> {
        let mut found = None;
        for_each_subset(holders.len(), self.k(), &mut |pos| {
            let pts: Vec<SharePoint<'_>> = pos
                .iter()
                .map(|&p| SharePoint { x: (holders[p].0 + 1) as u8, y: holders[p].1 })
                .collect();
            if pts.iter().any(|p| p.y.len() != pts[0].y.len()) {
                return true;
            }
            if let Ok(padded) = self.xorida.rebuild(self.threshold, &pts)
                && let Some(id) = unpad_id(&padded)
                && self.naming.tag(&id).ct_eq(&tag)
            {
                found = Some((id, pos.to_vec()));
                return false;
            }
            true
        });
        found
    }

    /// Repairs one record given its listing (see [`VaultDb::repair`]).
    pub(crate) async fn repair_tag(
        &self,
        tag: NameTag,
        listing: Option<TagListing>,
    ) -> RepairReport {
        let listing = match listing {
            Some(l) => l,
            None => self.list_tag(tag).await,
        };
        let mut report = RepairReport::default();
        for (i, l) in listing.iter().enumerate() {
            if let Err(e) = l {
                report.problems.push(format!(
                    "{tag}: {} could not list: {}",
                    self.ids[i],
                    e.status()
                ));
            }
        }
        let versions = group_versions(&listing);
        let k = self.k();
        let grace = self.settings.grace_period.as_micros().min(u128::from(u64::MAX)) as u64;
        let now = now_micros();
        let old_enough = |v: &Version| now.saturating_sub(v.micros()) >= grace;

        let mut target: Option<(Version, Verified)> = None;
        for (v, holders) in versions.iter().rev() {
            if holders.len() < k {
                continue;
            }
            let expect = Expect { kind: Kind::Record, tag, version: *v };
            let sources = holders.iter().map(|(i, l)| (*i, Source::Fetch(l.key.clone()))).collect();
            match self.fetch_and_verify(expect, sources, true).await {
                Ok(verified) => {
                    target = Some((*v, verified));
                    break;
                }
                Err(e) => {
                    report.problems.push(format!("{tag}: version {v} cannot be repaired: {e}"))
                }
            }
        }

        let mut doomed: Vec<(usize, String)> = Vec::new();
        match &target {
            None => {
                // Nothing complete: remove abandoned partial writes once they are old enough.
                for (v, holders) in &versions {
                    if holders.len() < k && old_enough(v) {
                        doomed.extend(holders.iter().map(|(i, l)| (*i, l.key.clone())));
                    }
                }
            }
            Some((tv, verified)) => {
                report.version = Some(*tv);
                self.restore_shares(tag, *tv, verified, &versions[tv], &listing, &mut report).await;
                let lost = if verified.kind == Kind::Manifest {
                    self.restore_segments(tag, *tv, verified, &listing, &mut report).await
                } else {
                    Vec::new()
                };
                if !lost.is_empty() && old_enough(tv) {
                    // A manifest whose segments are gone for good (a delete that ran while
                    // the put wrote them, or an abandoned write): unreadable, so it goes,
                    // like any abandoned write once past the grace period.
                    tracing::warn!(%tag, version = %tv, "removing a version that lost segments: {}",
                        lost.join("; "));
                    doomed.extend(versions[tv].iter().map(|(i, l)| (*i, l.key.clone())));
                    doomed.append(&mut report.written);
                } else {
                    report.problems.extend(lost);
                }
                let mut older: Vec<&Version> = versions.keys().filter(|v| *v < tv).collect();
                older.sort_by(|a, b| b.cmp(a));
                for v in older.into_iter().skip(self.settings.retain_versions - 1) {
                    doomed.extend(versions[v].iter().map(|(i, l)| (*i, l.key.clone())));
                }
                for (v, holders) in versions.range(tv..).skip(1) {
                    if holders.len() < k && old_enough(v) {
                        doomed.extend(holders.iter().map(|(i, l)| (*i, l.key.clone())));
                    }
                }
            }
        }
        // Segments follow their version: removed with it, or (with no manifest anywhere)
        // once older than the grace period or older than the repaired version.
        let doomed_versions: std::collections::BTreeSet<Version> = versions
            .iter()
            .filter(|(_, holders)| {
                holders.iter().any(|(i, l)| doomed.contains(&(*i, l.key.clone())))
            })
            .map(|(v, _)| *v)
            .collect();
        let target_version = target.as_ref().map(|(v, _)| *v);
        for (idx, l) in listing.iter().enumerate() {
            for e in l.as_deref().unwrap_or_default().iter().filter(|e| e.segment.is_some()) {
                let headless = !versions.contains_key(&e.version);
                let superseded = target_version.is_some_and(|tv| e.version < tv);
                if doomed_versions.contains(&e.version)
                    || (headless && (old_enough(&e.version) || superseded))
                {
                    doomed.push((idx, e.key.clone()));
                }
            }
        }
        // A delete, or a newer put's cleanup, may have removed the version while this repair
        // restored shares of it from what it had read before. Check, and undo: a repair must
        // never bring back what was deleted.
        if let Some(tv) = target_version
            && !report.written.is_empty()
        {
            let after = self.list_tag(tag).await;
            let ours: Vec<usize> = report.written.iter().map(|(i, _)| *i).collect();
            let still = after
                .iter()
                .enumerate()
                .filter(|(i, l)| {
                    !ours.contains(i)
                        && l.as_ref()
                            .is_ok_and(|e| e.iter().any(|e| e.version == tv && e.segment.is_none()))
                })
                .count();
            let unknown = after.iter().filter(|l| l.is_err()).count();
            if still + unknown < k {
                tracing::info!(%tag, "record deleted or superseded during repair; undoing it");
                report.problems.push(format!(
                    "{tag}: version {tv} was removed during the repair; restored shares withdrawn"
                ));
                report.restored.clear();
                doomed.append(&mut report.written);
            }
        }
        for (idx, key) in doomed {
            match self.delete_key(idx, &key).await {
                Ok(()) => {
                    report.removed += 1;
                    self.stats.objects_removed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => report.problems.push(format!(
                    "{tag}: could not remove an object on {}: {}",
                    self.ids[idx],
                    e.status()
                )),
            }
        }
        if !report.restored.is_empty() || report.removed > 0 {
            tracing::info!(%tag, restored = ?report.restored, removed = report.removed, "repaired");
        }
        report
    }

    /// Rewrites the target version's share on every reachable backend lacking a good one.
    async fn restore_shares(
        &self,
        tag: NameTag,
        version: Version,
        verified: &Verified,
        holders: &[(usize, Listed)],
        listing: &TagListing,
        report: &mut RepairReport,
    ) {
        let good: Vec<usize> = verified.good.iter().map(|(i, _)| *i).collect();
        let missing: Vec<usize> = (0..self.n())
            .filter(|i| listing[*i].is_ok() && !good.contains(i) && needs_share(verified, *i))
            .collect();
        if missing.is_empty() {
            return;
        }
        // The id shares of the holders whose secret shares verified.
        let id_holders: Vec<(usize, &[u8])> = holders
            .iter()
            .filter(|(i, _)| good.contains(i))
            .map(|(i, l)| (*i, l.id_share.as_slice()))
            .collect();
        let Some((_, id_pos)) = self.recover_id(tag, &id_holders) else {
            report.problems.push(format!("{tag}: the id shares in object names do not verify"));
            return;
        };
        let id_pts: Vec<SharePoint<'_>> = id_pos
            .iter()
            .map(|&p| SharePoint { x: (id_holders[p].0 + 1) as u8, y: id_holders[p].1 })
            .collect();
        let derive_key = |x: u8| -> Option<String> {
            let id_share = self.xorida.derive(self.threshold, &id_pts, x).ok()?;
            Some(self.keyspace.share_key(tag, version, &id_share))
        };
        let existing: Vec<(usize, String)> =
            holders.iter().map(|(i, l)| (*i, l.key.clone())).collect();
        self.restore_object(tag, version, verified, &missing, &existing, &derive_key, report).await;
    }

    /// Rewrites every missing or bad segment share of a segmented record's version. Returns
    /// what makes the version broken for good, if anything: segments with fewer than K
    /// shares even counting every backend that could not list.
    async fn restore_segments(
        &self,
        tag: NameTag,
        version: Version,
        manifest_verified: &Verified,
        listing: &TagListing,
        report: &mut RepairReport,
    ) -> Vec<String> {
        let manifest = match crate::manifest::Manifest::decode(manifest_verified.payload()) {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(format!("{tag}: version {version}: {e}"));
                return Vec::new();
            }
        };
        let reachable: Vec<usize> = (0..self.n()).filter(|i| listing[*i].is_ok()).collect();
        let unreachable = self.n() - reachable.len();
        let mut lost = Vec::new();
        for index in 0..manifest.segment_count {
            let key = self.keyspace.segment_key(tag, version, index);
            let existing: Vec<(usize, String)> = reachable
                .iter()
                .filter(|i| {
                    listing[**i].as_deref().unwrap_or_default().iter().any(|e| e.key == key)
                })
                .map(|i| (*i, key.clone()))
                .collect();
            if existing.len() + unreachable < self.k() {
                lost.push(format!(
                    "{tag}: version {version}: segment {index} has {} shares of {} needed",
                    existing.len(),
                    self.k()
                ));
                continue;
            }
            let expect = Expect { kind: Kind::Segment, tag, version };
            let sources = existing.iter().map(|(i, k)| (*i, Source::Fetch(k.clone()))).collect();
            let verified = match self.fetch_and_verify(expect, sources, true).await {
                Ok(v) => v,
                Err(e) => {
                    report.problems.push(format!(
                        "{tag}: version {version}: segment {index} cannot be repaired: {e}"
                    ));
                    continue;
                }
            };
            let good: Vec<usize> = verified.good.iter().map(|(i, _)| *i).collect();
            let missing: Vec<usize> = reachable
                .iter()
                .copied()
                .filter(|i| !good.contains(i) && needs_share(&verified, *i))
                .collect();
            let key_of = |_x: u8| Some(key.clone());
            self.restore_object(tag, version, &verified, &missing, &existing, &key_of, report)
                .await;
        }
        lost
    }

    /// Derives the shares of `missing` backends from the verified subset and writes them
    /// create-only under `key_of(x)`, first removing a bad object a backend holds there.
    #[allow(clippy::too_many_arguments)]
    async fn restore_object(
        &self,
        tag: NameTag,
        version: Version,
        verified: &Verified,
        missing: &[usize],
        existing: &[(usize, String)],
        key_of: &(dyn Fn(u8) -> Option<String> + Sync),
        report: &mut RepairReport,
    ) {
        let shares: Vec<(usize, &[u8])> = verified
            .good
            .iter()
            .filter(|(i, _)| verified.subset.contains(i))
            .map(|(i, b)| (*i, &b[envelope::HEADER_LEN..b.len() - envelope::TRAILER_LEN]))
            .collect();
        let pts: Vec<SharePoint<'_>> =
            shares.iter().map(|(i, s)| SharePoint { x: (*i + 1) as u8, y: s }).collect();
        let secret_len = pts[0].y.len() as u32;
        for &idx in missing {
            let x = (idx + 1) as u8;
            let (Ok(share), Some(key)) = (self.xorida.derive(self.threshold, &pts, x), key_of(x))
            else {
                report.problems.push(format!("{tag}: could not derive share {x}"));
                continue;
            };
            let header = Header {
                kind: verified.kind,
                threshold: self.threshold,
                x,
                version,
                tag,
                secret_len,
            };
            let bytes = envelope::encode(&header, &share);
            // A bad object at this backend for this version goes first (shares are
            // immutable, so it is replaced by delete + create, never overwritten).
            if let Some((_, bad)) = existing.iter().find(|(i, _)| *i == idx)
                && self.delete_key(idx, bad).await.is_ok()
            {
                report.removed += 1;
            }
            match self.put_create(idx, &key, bytes.into()).await {
                Ok(()) => {
                    self.stats.shares_repaired.fetch_add(1, Ordering::Relaxed);
                    report.restored.push(self.ids[idx].clone());
                    report.written.push((idx, key.clone()));
                }
                Err(e) => report.problems.push(format!(
                    "{tag}: could not restore the share on {}: {}",
                    self.ids[idx],
                    e.status()
                )),
            }
        }
    }
}

impl VaultDb {
    /// Lists the ids of all live records, using only LIST calls: each id is rebuilt from K
    /// id shares carried in object names and checked against its name tag.
    ///
    /// # Errors
    /// `INSUFFICIENT_SHARES` if fewer than K backends can list.
    #[tracing::instrument(name = "vaultdb.list", skip_all)]
    pub async fn list(&self) -> Result<ListResult> {
        let inner = &self.inner;
        let (listing, outcomes) = inner.list_everything().await?;
        // tag -> version -> (backend, id share)
        type IdShares<'a> = BTreeMap<Version, Vec<(usize, &'a [u8])>>;
        let mut by_tag: BTreeMap<NameTag, IdShares<'_>> = BTreeMap::new();
        for (idx, l) in listing.iter().enumerate() {
            for (tag, e) in l
                .as_ref()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|(_, e)| e.segment.is_none())
            {
                let holders = by_tag.entry(*tag).or_default().entry(e.version).or_default();
                if !holders.iter().any(|(i, _)| *i == idx) {
                    holders.push((idx, e.id_share.as_slice()));
                }
            }
        }
        let mut ids = Vec::new();
        let mut unverified = 0;
        for (tag, versions) in &by_tag {
            let mut complete = false;
            let mut found = None;
            for holders in versions.values().rev().filter(|h| h.len() >= inner.k()) {
                complete = true;
                if let Some((id, _)) = inner.recover_id(*tag, holders) {
                    found = Some(id);
                    break;
                }
            }
            match found {
                Some(id) => ids.push(id),
                None if complete => {
                    unverified += 1;
                    tracing::warn!(%tag, "listed record whose id does not verify");
                }
                None => {}
            }
        }
        ids.sort();
        Ok(ListResult { ids, outcomes, unverified })
    }

    /// Repairs one record: regenerates every missing or bad share of its newest verifiable
    /// version from K good shares (no plaintext needed), removes superseded versions and,
    /// after the grace period, abandoned partial writes.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for an invalid id. Problems repairing are in the report.
    pub async fn repair(&self, id: &str) -> Result<RepairReport> {
        validate_id(id)?;
        self.repair_tag(self.inner.naming.tag(id), None).await
    }

    pub(crate) async fn repair_tag(
        &self,
        tag: NameTag,
        listing: Option<TagListing>,
    ) -> Result<RepairReport> {
        Ok(self.inner.repair_tag(tag, listing).await)
    }

    /// Repairs every record and the keyring. See [`VaultDb::scrub_with_progress`].
    ///
    /// # Errors
    /// `INSUFFICIENT_SHARES` if fewer than K backends can list.
    pub async fn scrub(&self) -> Result<ScrubReport> {
        self.scrub_with_progress(|_, _| {}).await
    }

    /// Repairs every record and the keyring, calling `progress(done, total)` after each
    /// record.
    ///
    /// # Errors
    /// `INSUFFICIENT_SHARES` if fewer than K backends can list.
    #[tracing::instrument(name = "vaultdb.scrub", skip_all)]
    pub async fn scrub_with_progress(
        &self,
        progress: impl Fn(usize, usize),
    ) -> Result<ScrubReport> {
        let inner = &self.inner;
        let (listing, outcomes) = inner.list_everything().await?;
        let mut per_tag: BTreeMap<NameTag, TagListing> = BTreeMap::new();
        for (idx, l) in listing.iter().enumerate() {
            if let Ok(entries) = l {
                for (tag, e) in entries {
                    per_tag.entry(*tag).or_insert_with(|| empty_listing(&listing))[idx]
                        .as_mut()
                        .map(|v| v.push(e.clone()))
                        .ok();
                }
            }
        }
        let mut report = ScrubReport { records: per_tag.len(), outcomes, ..ScrubReport::default() };
        let total = per_tag.len();
        let mut done = 0;
        let mut stream = futures::stream::iter(per_tag)
            .map(|(tag, l)| inner.repair_tag(tag, Some(l)))
            .buffer_unordered(8);
        while let Some(r) = stream.next().await {
            report.restored += r.restored.len();
            report.removed += r.removed;
            report.problems.extend(r.problems);
            done += 1;
            progress(done, total);
        }
        match super::open::repair_keyring(inner).await {
            Ok(n) => report.restored += n,
            Err(e) => report.problems.push(format!("keyring: {e}")),
        }
        Ok(report)
    }

    /// Asks every backend for a cheap listing and reports who is up.
    pub async fn health(&self) -> Health {
        let inner = &self.inner;
        let key = inner.keyspace.keyring_key();
        let checks = inner.backends.iter().map(|b| {
            let key = key.as_str();
            async move {
                let start = Instant::now();
                let r = tokio::time::timeout(
                    inner.settings.call_policy.timeout,
                    b.list_page(key, None),
                )
                .await;
                let latency = start.elapsed();
                let error = match r {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("timed out".to_owned()),
                };
                BackendHealth {
                    id: b.id().to_owned(),
                    name: b.name().to_owned(),
                    up: error.is_none(),
                    latency,
                    error,
                }
            }
        });
        let backends = futures::future::join_all(checks).await;
        let up = backends.iter().filter(|b| b.up).count();
        Health {
            k: inner.k(),
            n: inner.n(),
            up,
            margin: up as isize - inner.k() as isize,
            backends,
        }
    }
}

/// True if backend `idx` lacks a good share of a verified object: it has none, or a bad
/// one. A backend whose fetch failed or timed out is left alone: its share may be fine, and
/// replacing it (delete, then create) on a flaky backend could lose it.
fn needs_share(verified: &Verified, idx: usize) -> bool {
    matches!(
        verified.status.get(idx),
        None | Some(None | Some(OutcomeStatus::Missing | OutcomeStatus::Corrupt { .. }))
    )
}

fn empty_listing<T>(like: &[Result<T, CallError>]) -> TagListing {
    like.iter()
        .map(|l| match l {
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(e.duplicate()),
        })
        .collect()
}
