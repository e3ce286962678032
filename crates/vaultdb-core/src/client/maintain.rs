//! Maintenance operations: `list`, `repair`, `scrub` and `health` (and [`Health::probe`],
//! which needs no open store).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::StreamExt;

use super::call::CallError;
use super::fanout::{self, Listed, Listing, Probed, TagListing, TagsFrom};
use super::gate::Access;
use super::repair::RepairReport;
use super::{Inner, Settings, VaultDb};
use crate::backend::StorageBackend;
use crate::error::{BackendOutcome, Result, VaultError};
use crate::naming::{KeySpace, NameTag, validate_id};
use crate::version::Version;

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

/// One page of [`VaultDb::list_page`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecordPage {
    /// Live record ids, in name-tag order.
    pub ids: Vec<String>,
    /// The cursor of the next page, opaque; `None` when this is the last page.
    pub next: Option<String>,
    /// What each backend's listing did.
    pub outcomes: Vec<BackendOutcome>,
    /// Records in this page's range that had K listed shares but whose id could not be
    /// verified.
    pub unverified: usize,
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
    /// Objects of unfinished writes kept until they pass the grace period (see
    /// [`RepairReport::pending`]).
    pub pending: usize,
    /// When the last of them passes it.
    pub pending_until: Option<std::time::SystemTime>,
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
    /// True if it can serve reads and accept writes (`readable && writable`).
    pub up: bool,
    /// True if it listed and read its keyring slot.
    pub readable: bool,
    /// True if it wrote (and removed) a probe object.
    pub writable: bool,
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

impl Health {
    /// Probes `backends` directly, without opening the store (for reporting on a store that
    /// cannot be opened): each is checked, concurrently, as [`VaultDb::health`] checks an
    /// open store's backends (its keyring slot under `settings.prefix` read, a probe
    /// written; once `threshold` passed, the others get [`Settings::straggler_wait`] more).
    /// `threshold` is K, for the margin.
    ///
    /// # Errors
    /// `INVALID_CONFIG` if `settings.prefix` is not a valid key prefix.
    pub async fn probe(
        backends: &[Arc<dyn StorageBackend>],
        threshold: usize,
        settings: &Settings,
    ) -> Result<Health> {
        let ks = KeySpace::new(&settings.prefix)?;
        let (keyring, probe) = (ks.keyring_key(), ks.probe_key());
        let patience = (threshold, settings.straggler_wait());
        let probed =
            fanout::probe(backends, &keyring, &probe, &settings.call_policy, patience).await;
        Ok(Health::of(threshold, backends, probed))
    }

    fn of(k: usize, backends: &[Arc<dyn StorageBackend>], probed: Vec<Probed>) -> Health {
        let backends: Vec<BackendHealth> = backends
            .iter()
            .zip(probed)
            .map(|(b, p)| BackendHealth {
                id: b.id().to_owned(),
                name: b.name().to_owned(),
                up: p.readable && p.writable,
                readable: p.readable,
                writable: p.writable,
                latency: p.latency,
                error: p.error,
            })
            .collect();
        let up = backends.iter().filter(|b| b.up).count();
        Health { k, n: backends.len(), up, margin: up as isize - k as isize, backends }
    }
}

/// The backends whose page of the listing is mostly decoys: of the records they listed,
/// fewer than half are listed by any other backend, while at least K others answered. An
/// honest backend lists the records every backend holds (all but leftovers of crashed
/// writes); one that lists `limit` records of its own making just after wherever a page
/// starts would otherwise end every page there, with no id in it, and a page walk would
/// never reach a real record. Left out of the page's end, such a backend counts as one not
/// heard beyond its own end, as a hung one does.
fn decoy_listers(listing: &[Result<TagsFrom, CallError>], k: usize) -> Vec<usize> {
    let tags_of = |entries: &[(NameTag, Listed)]| -> BTreeSet<NameTag> {
        entries.iter().map(|(t, _)| *t).collect()
    };
    let per_backend: Vec<Option<BTreeSet<NameTag>>> =
        listing.iter().map(|l| l.as_ref().ok().map(|(e, _)| tags_of(e))).collect();
    let answered = per_backend.iter().filter(|t| t.is_some()).count();
    let mut holders: BTreeMap<NameTag, usize> = BTreeMap::new();
    for tags in per_backend.iter().flatten() {
        for t in tags {
            *holders.entry(*t).or_default() += 1;
        }
    }
    let decoys: Vec<usize> = per_backend
        .iter()
        .enumerate()
        .filter_map(|(idx, tags)| {
            let tags = tags.as_ref()?;
            let shared = tags.iter().filter(|t| holders[*t] > 1).count();
            let bounded = matches!(&listing[idx], Ok((_, Some(_))));
            (bounded && 2 * shared < tags.len()).then_some(idx)
        })
        .collect();
    if answered - decoys.len() < k {
        return Vec::new(); // too few others to go on without them
    }
    decoys
}

/// What list cursors start with (a format tag, so that other strings are refused).
const CURSOR_PREFIX: &str = "c1.";

/// How long the ids listed for `list_page` during a re-share serve later pages.
const UNION_FOR: Duration = Duration::from_secs(1);

/// Both stores' live ids during a re-share, sorted by this store's name tags, with what the
/// listing that found them did ([`VaultDb::list_page`]).
pub(crate) struct MigratingUnion {
    tagged: Vec<(NameTag, String)>,
    outcomes: Vec<BackendOutcome>,
    unverified: usize,
}

/// The last [`MigratingUnion`] listed, and when.
#[derive(Default)]
pub(crate) struct UnionCache(
    tokio::sync::Mutex<Option<(tokio::time::Instant, Arc<MigratingUnion>)>>,
);

/// A listing's head shares by record and version (each backend once, with its id share),
/// and its tombstones by record.
type Heads<'a> = BTreeMap<NameTag, BTreeMap<Version, Vec<(usize, &'a [u8])>>>;
type Tombs<'a> =
    BTreeMap<NameTag, Vec<(usize, Version, &'a [u8; crate::naming::TOMBSTONE_NAME_MAC_LEN])>>;

fn group_listing(listing: &Listing) -> (Heads<'_>, Tombs<'_>) {
    let mut by_tag: Heads<'_> = BTreeMap::new();
    let mut tombs: Tombs<'_> = BTreeMap::new();
    for (idx, l) in listing.iter().enumerate() {
        for (tag, e) in l.as_ref().map(Vec::as_slice).unwrap_or_default() {
            if let Some(mac) = &e.tombstone {
                tombs.entry(*tag).or_default().push((idx, e.version, mac));
            }
            if e.is_head() {
                let holders = by_tag.entry(*tag).or_default().entry(e.version).or_default();
                if !holders.iter().any(|(i, _)| *i == idx) {
                    holders.push((idx, e.id_share.as_slice()));
                }
            }
        }
    }
    (by_tag, tombs)
}

impl Inner {
    /// The live records in a listing, in name-tag order, with their ids (a version with at
    /// least K shares, not deleted by a newer tombstone, whose id checks against its tag),
    /// and how many records had K listed shares but no id that verifies.
    pub(super) fn live_ids(&self, listing: &Listing) -> (Vec<(NameTag, String)>, usize) {
        let (by_tag, mut tombs) = group_listing(listing);
        let mut ids = Vec::new();
        let mut unverified = 0;
        let tk = self.tombstone_key();
        for (tag, versions) in &by_tag {
            let deletes = tk.sort(*tag, self.threshold(), tombs.remove(tag).unwrap_or_default());
            let newest_complete = versions.iter().rev().find(|(_, h)| h.len() >= self.k());
            if newest_complete.is_some_and(|(v, _)| deletes.deletes(*v)) {
                // Deleted; leftovers of a restored backup or a missed delete, for scrub.
                continue;
            }
            let mut complete = false;
            let mut found = None;
            let live = versions
                .iter()
                .rev()
                .filter(|(v, h)| h.len() >= self.k() && !deletes.deletes(**v))
                .map(|(_, h)| h);
            for holders in live {
                complete = true;
                if let Some((id, _)) = self.shares().recover_id(&self.naming, *tag, holders) {
                    found = Some(id);
                    break;
                }
            }
            match found {
                Some(id) => ids.push((*tag, id)),
                None if complete => {
                    unverified += 1;
                    tracing::warn!(%tag, "listed record whose id does not verify");
                }
                None => {}
            }
        }
        (ids, unverified)
    }

    /// The records of a listing that may be live with the shares of backends that did not
    /// answer: a version listed by fewer than K backends but by K with those, newer than
    /// the record's newest complete version and not deleted by a tombstone. [`live_ids`]
    /// leaves them out (an id is rebuilt from K id shares), so whoever must see every
    /// record (a re-share, before it removes the old store) cannot finish without them.
    ///
    /// [`live_ids`]: Inner::live_ids
    pub(super) fn uncertain_tags(&self, listing: &Listing) -> Vec<NameTag> {
        let unanswered = listing.iter().filter(|l| l.is_err()).count();
        if unanswered == 0 {
            return Vec::new();
        }
        let k = self.k();
        let (by_tag, mut tombs) = group_listing(listing);
        let tk = self.tombstone_key();
        by_tag
            .into_iter()
            .filter(|(tag, versions)| {
                let deletes =
                    tk.sort(*tag, self.threshold(), tombs.remove(tag).unwrap_or_default());
                let complete = versions.iter().rev().find(|(_, h)| h.len() >= k).map(|(v, _)| *v);
                versions.iter().any(|(v, h)| {
                    h.len() < k
                        && h.len() + unanswered >= k
                        && complete.is_none_or(|c| *v > c)
                        && !deletes.deletes(*v)
                })
            })
            .map(|(tag, _)| tag)
            .collect()
    }

    /// Lists every record share on every backend, with per-backend outcomes; fails unless
    /// at least K backends answered (nothing can be rebuilt from fewer). Once `enough`
    /// backends listed, the others are waited for as `Fanout::gather` says.
    pub(super) async fn list_everything(
        &self,
        enough: usize,
    ) -> Result<(Listing, Vec<BackendOutcome>)> {
        let prefix = self.fanout.keyspace().records_prefix();
        let listing = self.fanout.list_shares(&prefix, |_| true, enough).await;
        let outcomes = self.fanout.outcomes_of(&listing);
        let answered = listing.iter().filter(|l| l.is_ok()).count();
        if answered < self.k() {
            return Err(VaultError::InsufficientShares { need: self.k(), got: answered, outcomes });
        }
        Ok((listing, outcomes))
    }
}

impl VaultDb {
    /// Lists the ids of all live records, using only LIST calls: each id is rebuilt from K
    /// id shares carried in object names and checked against its name tag.
    ///
    /// # Errors
    /// `INSUFFICIENT_SHARES` if fewer than K backends can list.
    #[tracing::instrument(name = "vaultdb.list", skip_all)]
    ///
    /// A client opened with [`VaultDbBuilder::migrating_from`](super::VaultDbBuilder::migrating_from)
    /// lists both stores while the re-share is not done, and returns each id once: an id only
    /// the old store holds costs one more listing of that record here (to leave out those
    /// deleted here), so such a list costs a listing of both stores plus one per record not
    /// yet copied.
    pub async fn list(&self) -> Result<ListResult> {
        self.list_waiting(false).await
    }

    /// [`VaultDb::list`], waiting for every backend's listing (as long as its calls take)
    /// when `every` is set, instead of K and stragglers for a bounded time: for a re-share's
    /// copy, where an id left out is removed with the old store.
    pub(crate) async fn list_waiting(&self, every: bool) -> Result<ListResult> {
        self.admit(Access::Read).await?;
        let mut here = self.list_here(every).await?;
        let Some(old) = self.read_through() else { return Ok(here) };
        let there = old.list_here(every).await?;
        let known: std::collections::BTreeSet<String> = here.ids.iter().cloned().collect();
        for id in there.ids.into_iter().filter(|id| !known.contains(id)) {
            if self.read_through_for(&id).await?.is_some() {
                here.ids.push(id);
            }
        }
        here.ids.sort();
        here.unverified += there.unverified;
        Ok(here)
    }

    /// [`VaultDb::list`] of this store only.
    async fn list_here(&self, every: bool) -> Result<ListResult> {
        let inner = &self.inner;
        let (listing, outcomes) =
            inner.list_everything(if every { inner.n() } else { inner.k() }).await?;
        let (found, unverified) = inner.live_ids(&listing);
        let mut ids: Vec<String> = found.into_iter().map(|(_, id)| id).collect();
        ids.sort();
        Ok(ListResult { ids, outcomes, unverified })
    }

    /// One page of the ids of live records, in name-tag order (an order that reveals
    /// nothing about the ids, stable while the store changes): at most `limit` ids after
    /// `cursor` (`None`: from the start), and the cursor of the next page (`None`: this was
    /// the last). Each backend lists only as far as the page needs, so a page costs
    /// `O(limit)` backend work whatever the store's size. A page may hold fewer than `limit`
    /// ids (records deleted or incomplete in its range) while a next cursor remains: follow
    /// it until it is `None`.
    ///
    /// # Errors
    /// `INVALID_INPUT` for a cursor this store did not hand out, or a `limit` of 0;
    /// `INSUFFICIENT_SHARES` if fewer than K backends can list.
    ///
    /// While a re-share into this store is unfinished (a client opened with
    /// [`VaultDbBuilder::migrating_from`](super::VaultDbBuilder::migrating_from)), the old
    /// store's records are listed too: each page is then cut from [`VaultDb::list`] (the
    /// union of both stores: a whole listing of each, made at most once a second for all
    /// pages), in this store's name-tag order, so its cursors stay valid after the re-share
    /// is done.
    #[tracing::instrument(name = "vaultdb.list_page", skip_all)]
    pub async fn list_page(&self, cursor: Option<&str>, limit: usize) -> Result<RecordPage> {
        self.admit(Access::Read).await?;
        if limit == 0 {
            return Err(VaultError::invalid_input("a page holds at least one id".to_owned()));
        }
        let after = match cursor {
            None => None,
            Some(c) => Some(
                c.strip_prefix(CURSOR_PREFIX)
                    .and_then(NameTag::from_text)
                    .ok_or_else(|| VaultError::invalid_input("not a list cursor".to_owned()))?,
            ),
        };
        if self.read_through().is_some() {
            return self.list_page_migrating(after, limit).await;
        }
        let inner = &self.inner;
        let ks = inner.fanout.keyspace();
        let prefix = ks.records_prefix();
        // Start after every key of the cursor's tag: `r/<tag>/~` sorts after all of them.
        let from = after.map(|t| ks.after_tag(t));
        let listing = inner.fanout.list_tags_from(&prefix, from.as_ref(), limit).await;
        let outcomes = inner.fanout.outcomes_of(&listing);
        let answered = listing.iter().filter(|l| l.is_ok()).count();
        if answered < inner.k() {
            return Err(VaultError::InsufficientShares {
                need: inner.k(),
                got: answered,
                outcomes,
            });
        }
        // Each backend's listing is complete up to its `limit`-th tag (or to the end): the
        // page covers tags up to the smallest of those, leaving out backends that listed
        // mostly decoys (see `decoy_listers`), which count as not heard beyond their end.
        let decoys = decoy_listers(&listing, inner.k());
        for &idx in &decoys {
            tracing::warn!(
                backend = %inner.fanout.id(idx),
                "a listing page of records no other backend lists; not waited for"
            );
        }
        let bound: Option<NameTag> = listing
            .iter()
            .enumerate()
            .filter(|(idx, _)| !decoys.contains(idx))
            .filter_map(|(_, l)| l.as_ref().ok())
            .filter_map(|(_, b)| *b)
            .min();
        let listing: Listing = listing
            .into_iter()
            .map(|l| {
                l.map(|(entries, _)| {
                    entries.into_iter().filter(|(t, _)| bound.is_none_or(|b| *t <= b)).collect()
                })
            })
            .collect();
        let (mut found, unverified) = inner.live_ids(&listing);
        let mut next = bound;
        if found.len() > limit {
            found.truncate(limit);
            next = found.last().map(|(t, _)| *t);
        }
        Ok(RecordPage {
            ids: found.into_iter().map(|(_, id)| id).collect(),
            next: next.map(|t| format!("{CURSOR_PREFIX}{}", t.to_text())),
            outcomes,
            unverified,
        })
    }

    /// [`VaultDb::list_page`] while a re-share into this store is unfinished: the page is
    /// cut from the union of both stores' ids ([`VaultDb::list`]), ordered by this store's
    /// name tags, so a cursor means the same before and after the re-share is done.
    ///
    /// The union costs a whole listing of both stores (and a listing per record not copied
    /// yet), so it is listed at most once per [`UNION_FOR`] for all of this client's pages
    /// (one listing at a time, the others wait for it): a walk costs about one listing per
    /// second, however many pages are asked for, and a page may miss what was written in
    /// the last second.
    async fn list_page_migrating(
        &self,
        after: Option<NameTag>,
        limit: usize,
    ) -> Result<RecordPage> {
        let union = {
            let mut cached = self.inner.migrating_union.0.lock().await;
            match &*cached {
                Some((at, union)) if at.elapsed() < UNION_FOR => Arc::clone(union),
                _ => {
                    let all = self.list().await?;
                    let naming = &self.inner.naming;
                    let mut tagged: Vec<(NameTag, String)> =
                        all.ids.into_iter().map(|id| (naming.tag(&id), id)).collect();
                    tagged.sort_unstable_by_key(|a| a.0);
                    let union = Arc::new(MigratingUnion {
                        tagged,
                        outcomes: all.outcomes,
                        unverified: all.unverified,
                    });
                    *cached = Some((tokio::time::Instant::now(), Arc::clone(&union)));
                    union
                }
            }
        };
        let from = after.map_or(0, |a| union.tagged.partition_point(|(t, _)| *t <= a));
        let rest = &union.tagged[from..];
        let page = &rest[..rest.len().min(limit)];
        let next = (rest.len() > limit).then(|| page[limit - 1].0);
        Ok(RecordPage {
            ids: page.iter().map(|(_, id)| id.clone()).collect(),
            next: next.map(|t| format!("{CURSOR_PREFIX}{}", t.to_text())),
            outcomes: union.outcomes.clone(),
            unverified: union.unverified,
        })
    }

    /// Repairs one record: regenerates every missing or bad share of its newest verifiable
    /// version from K good shares (no plaintext needed), removes superseded versions and,
    /// after the grace period, abandoned partial writes.
    ///
    /// # Errors
    /// `INVALID_INPUT` for an invalid id. Problems repairing are in the report.
    pub async fn repair(&self, id: &str) -> Result<RepairReport> {
        validate_id(id)?;
        self.admit(Access::Read).await?;
        Ok(self.inner.repair_tag(self.inner.naming.tag(id), None).await)
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
        self.admit(Access::Read).await?;
        let inner = &self.inner;
        // Scrub waits for every backend: reaching each one is its job.
        let (listing, outcomes) = inner.list_everything(inner.n()).await?;
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
            report.pending += r.pending;
            report.pending_until = report.pending_until.max(r.pending_until);
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

    /// Checks every backend (a read of its keyring slot and a probe write, one attempt each,
    /// bounded by the call policy's timeout) and reports who is up. Once K backends passed,
    /// the others get [`Settings::straggler_wait`] more and are then down ("no answer"), so
    /// a hung backend costs a health check about a second, not a call timeout. See
    /// [`Health::probe`] for a store that cannot be opened.
    pub async fn health(&self) -> Health {
        let inner = &self.inner;
        let probed = inner.fanout.probe().await;
        Health::of(inner.k(), inner.fanout.backends(), probed)
    }
}

fn empty_listing<T>(like: &[Result<T, CallError>]) -> TagListing {
    like.iter()
        .map(|l| match l {
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(e.duplicate()),
        })
        .collect()
}
