//! Repairing one record: regenerating the missing or bad shares of its newest verifiable
//! version (and of its segments) from K good ones, and removing superseded versions and,
//! after the grace period, abandoned partial writes. Used by `repair`, `scrub` and
//! read-repair.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Inner;
use super::fanout::{Listed, TagListing, Verified, group_versions, listed_sources};
use super::shares::Expect;
use crate::backend::{Key, PutMode};
use crate::envelope::Kind;
use crate::error::OutcomeStatus;
use crate::naming::NameTag;
use crate::version::Version;

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
    /// Objects of unfinished writes (fewer than K shares of a version, or segments without
    /// their manifest) kept because they are younger than the grace period: a put may still
    /// be writing them. A repair or scrub after `pending_until` removes them.
    pub pending: usize,
    /// When the youngest of the `pending` objects passes the grace period.
    pub pending_until: Option<SystemTime>,
    /// Objects this repair wrote (backend index, key), for undoing them if the version
    /// was deleted or superseded meanwhile.
    pub(crate) written: Vec<(usize, Key)>,
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

impl Inner {
    /// Repairs one record given its listing (see `VaultDb::repair`); lists it if `None`.
    pub(crate) async fn repair_tag(
        &self,
        tag: NameTag,
        listing: Option<TagListing>,
    ) -> RepairReport {
        let listing = match listing {
            Some(l) => l,
            None => self.fanout.list_tag(tag).await,
        };
        let mut report = RepairReport::default();
        for (i, l) in listing.iter().enumerate() {
            if let Err(e) = l {
                report.problems.push(format!(
                    "{tag}: {} could not list: {}",
                    self.fanout.id(i),
                    e.status()
                ));
            }
        }
        let versions = group_versions(&listing);
        let k = self.k();
        let grace = self.settings.grace_period.as_micros().min(u128::from(u64::MAX)) as u64;
        let now = now_micros();
        let old_enough = |v: &Version| now.saturating_sub(v.micros()) >= grace;
        let deletes = self.fanout.deletes(tag, &self.tombstone_key(), &listing);
        let mut doomed: Vec<(usize, Key)> = Vec::new();
        for &b in &deletes.forged {
            self.fanout.note_bad(b, "listed a tombstone that does not verify");
            report.problems.push(format!(
                "{tag}: {} holds a tombstone that does not verify; removed",
                self.fanout.id(b)
            ));
        }
        // Forged tombstones go (they are a backend's bad data).
        for (idx, l) in listing.iter().enumerate() {
            for e in l.as_deref().unwrap_or_default() {
                if e.tombstone.is_some()
                    && !deletes.valid.get(&e.version).is_some_and(|h| h.contains(&idx))
                {
                    doomed.push((idx, e.key.clone()));
                }
            }
        }
        let deleted_at = deletes.newest();

        let mut target: Option<(Version, Verified)> = None;
        for (v, holders) in versions.iter().rev() {
            if deleted_at.is_some_and(|t| *v < t) {
                // Every version older than the newest tombstone is deleted, however
                // complete: never restored, only removed.
                break;
            }
            if holders.len() < k {
                continue;
            }
            let expect = Expect { kind: Kind::Record, tag, version: *v };
            let sources = self.head_sources(holders);
            match self.fanout.fetch_and_verify(expect, sources, true).await {
                Ok(verified) => {
                    target = Some((*v, verified));
                    break;
                }
                Err(e) => {
                    report.problems.push(format!("{tag}: version {v} cannot be repaired: {e}"))
                }
            }
        }

        match &target {
            None => {
                // Nothing complete (newer than a tombstone): what a tombstone deleted goes
                // now, abandoned partial writes once they are old enough.
                for (v, holders) in &versions {
                    let deleted = deleted_at.is_some_and(|t| *v < t);
                    if deleted || (holders.len() < k && old_enough(v)) {
                        doomed.extend(holders.iter().map(|(i, l)| (*i, l.key.clone())));
                    }
                }
                if let Some(t) = deleted_at {
                    self.settle_tombstone(tag, t, &deletes, &listing, &mut doomed, &mut report)
                        .await;
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
                // Tombstones older than a complete newer version have done their work.
                for (t, holders) in deletes.valid.range(..*tv) {
                    let key =
                        self.tombstone_key().key(self.fanout.keyspace(), tag, *t, self.threshold());
                    doomed.extend(holders.iter().map(|i| (*i, key.clone())));
                }
                let mut older: Vec<&Version> = versions.keys().filter(|v| *v < tv).collect();
                older.sort_by(|a, b| b.cmp(a));
                for v in older.into_iter().skip(self.settings.retain_versions - 1) {
                    doomed.extend(versions[v].iter().map(|(i, l)| (*i, l.key.clone())));
                }
                // A retained version older than a tombstone was deleted all the same.
                if let Some(t) = deleted_at {
                    for holders in versions.range(..t).map(|(_, h)| h) {
                        doomed.extend(holders.iter().map(|(i, l)| (*i, l.key.clone())));
                    }
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
        let doomed_versions: BTreeSet<Version> = versions
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
                let superseded = target_version.is_some_and(|tv| e.version < tv)
                    || deleted_at.is_some_and(|t| e.version < t);
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
            let after = self.fanout.list_tag(tag).await;
            let ours: Vec<usize> = report.written.iter().map(|(i, _)| *i).collect();
            let still = after
                .iter()
                .enumerate()
                .filter(|(i, l)| {
                    !ours.contains(i)
                        && l.as_ref()
                            .is_ok_and(|e| e.iter().any(|e| e.version == tv && e.is_head()))
                })
                .count();
            let unknown = after.iter().filter(|l| l.is_err()).count();
            let deleted = self.fanout.deletes(tag, &self.tombstone_key(), &after).deletes(tv);
            if still + unknown < k || deleted {
                tracing::info!(%tag, "record deleted or superseded during repair; undoing it");
                report.problems.push(format!(
                    "{tag}: version {tv} was removed during the repair; restored shares withdrawn"
                ));
                report.restored.clear();
                doomed.append(&mut report.written);
            }
        }
        doomed.sort();
        doomed.dedup();
        // Unfinished writes kept for now: what the rules above remove once old enough.
        for (idx, l) in listing.iter().enumerate() {
            for e in l.as_deref().unwrap_or_default() {
                let v = e.version;
                let unfinished = match versions.get(&v) {
                    _ if e.tombstone.is_some() || old_enough(&v) => false,
                    None => {
                        e.segment.is_some()
                            && target_version.is_none_or(|tv| v >= tv)
                            && deleted_at.is_none_or(|t| v >= t)
                    }
                    Some(holders) => holders.len() < k && target_version.is_none_or(|tv| v > tv),
                };
                if unfinished && doomed.binary_search(&(idx, e.key.clone())).is_err() {
                    report.pending += 1;
                    let until =
                        UNIX_EPOCH + Duration::from_micros(v.micros().saturating_add(grace));
                    report.pending_until = report.pending_until.max(Some(until));
                }
            }
        }
        // Per backend, concurrently; a backend stops at its first failure.
        let work = (0..self.n()).map(|idx| {
            let keys: Vec<&Key> =
                doomed.iter().filter(|(i, _)| *i == idx).map(|(_, k)| k).collect();
            async move { (idx, self.fanout.delete_keys(idx, keys).await) }
        });
        for (idx, (removed, err)) in futures::future::join_all(work).await {
            report.removed += removed;
            self.stats.objects_removed.fetch_add(removed as u64, Ordering::Relaxed);
            if let Some(e) = err {
                report.problems.push(format!(
                    "{tag}: could not remove an object on {}: {}",
                    self.fanout.id(idx),
                    e.status()
                ));
            }
        }
        if !report.restored.is_empty() || report.removed > 0 {
            tracing::info!(%tag, restored = ?report.restored, removed = report.removed, "repaired");
        }
        report
    }

    /// For a deleted record (newest tombstone `t`): writes the tombstone to every backend
    /// that listed and lacks it, removes older tombstones, and, with a tombstone TTL, removes
    /// the tombstone itself once it is older than the TTL, every backend listed the record,
    /// and no data is left anywhere.
    async fn settle_tombstone(
        &self,
        tag: NameTag,
        t: Version,
        deletes: &super::tombstone::Deletes,
        listing: &TagListing,
        doomed: &mut Vec<(usize, Key)>,
        report: &mut RepairReport,
    ) {
        let tk = self.tombstone_key();
        let threshold = self.threshold();
        for (old, holders) in deletes.valid.range(..t) {
            let key = tk.key(self.fanout.keyspace(), tag, *old, threshold);
            doomed.extend(holders.iter().map(|i| (*i, key.clone())));
        }
        let holders = &deletes.valid[&t];
        let everyone_listed = listing.iter().all(Result::is_ok);
        let data_left = listing.iter().flatten().flatten().any(|e| e.tombstone.is_none());
        let expired = self.settings.tombstone_ttl.is_some_and(|ttl| {
            now_micros().saturating_sub(t.micros())
                >= ttl.as_micros().min(u128::from(u64::MAX)) as u64
        });
        let key = tk.key(self.fanout.keyspace(), tag, t, threshold);
        if expired && everyone_listed && !data_left {
            doomed.extend(holders.iter().map(|i| (*i, key.clone())));
            return;
        }
        for idx in (0..self.n()).filter(|i| listing[*i].is_ok() && !holders.contains(i)) {
            let bytes = tk.envelope(tag, t, threshold, (idx + 1) as u8);
            match self.fanout.put(idx, &key, bytes, PutMode::Create).await {
                Ok(()) => report.restored.push(self.fanout.id(idx).to_owned()),
                Err(e) => report.problems.push(format!(
                    "{tag}: could not write the tombstone on {}: {}",
                    self.fanout.id(idx),
                    e.status()
                )),
            }
        }
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
        let Some((_, id_pos)) = self.shares().recover_id(&self.naming, tag, &id_holders) else {
            report.problems.push(format!("{tag}: the id shares in object names do not verify"));
            return;
        };
        let derive_key = |x: u8| -> Option<Key> {
            let id_share = self.shares().derive_id_share(&id_holders, &id_pos, x)?;
            Some(self.fanout.keyspace().share_key(tag, version, &id_share))
        };
        let existing: Vec<(usize, Key)> =
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
            let key = self.fanout.keyspace().segment_key(tag, version, index);
            // The backends that listed this segment's share, with the size each listed.
            let listed: Vec<(usize, Key, u64)> = reachable
                .iter()
                .filter_map(|i| {
                    let entries = listing[*i].as_deref().unwrap_or_default();
                    entries.iter().find(|e| e.key == key).map(|e| (*i, key.clone(), e.size))
                })
                .collect();
            let existing: Vec<(usize, Key)> =
                listed.iter().map(|(i, k, _)| (*i, k.clone())).collect();
            if existing.len() + unreachable < self.k() {
                lost.push(format!(
                    "{tag}: version {version}: segment {index} has {} shares of {} needed",
                    existing.len(),
                    self.k()
                ));
                continue;
            }
            let expect = Expect { kind: Kind::Segment, tag, version };
            let bound =
                self.shares().max_share_len(Kind::Segment, u64::from(manifest.segment_size));
            let sources = listed_sources(listed, self.k(), bound);
            let verified = match self.fanout.fetch_and_verify(expect, sources, true).await {
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
        existing: &[(usize, Key)],
        key_of: &(dyn Fn(u8) -> Option<Key> + Sync),
        report: &mut RepairReport,
    ) {
        let subset = verified.subset_envelopes();
        for &idx in missing {
            let x = (idx + 1) as u8;
            let derived = self.shares().derive(&subset, x, verified.kind, version, tag);
            let (Ok(bytes), Some(key)) = (derived, key_of(x)) else {
                report.problems.push(format!("{tag}: could not derive share {x}"));
                continue;
            };
            // A bad object at this backend for this version goes first (shares are
            // immutable, so it is replaced by delete + create, never overwritten).
            if let Some((_, bad)) = existing.iter().find(|(i, _)| *i == idx)
                && self.fanout.delete_key(idx, bad).await.is_ok()
            {
                report.removed += 1;
            }
            match self.fanout.put(idx, &key, bytes.into(), PutMode::Create).await {
                Ok(()) => {
                    self.stats.shares_repaired.fetch_add(1, Ordering::Relaxed);
                    report.restored.push(self.fanout.id(idx).to_owned());
                    report.written.push((idx, key.clone()));
                }
                Err(e) => report.problems.push(format!(
                    "{tag}: could not restore the share on {}: {}",
                    self.fanout.id(idx),
                    e.status()
                )),
            }
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
