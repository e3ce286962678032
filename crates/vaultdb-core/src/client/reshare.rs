//! Re-sharing: moving a live store to a new configuration ([`VaultDb::reshare`]; the
//! guarantees and their limits are in docs/SECURITY.md "Re-sharing", the objects in
//! docs/FORMAT.md section 18).
//!
//! 1. **Fence.** A migration state in phase `fencing` goes to the new store (whose clients
//!    then wait), a moved notice to the old one; then the re-share waits out the old
//!    configuration's lease plus its longest operation ([`Settings::fence_wait`]), after
//!    which no client of the old configuration writes.
//! 2. **Floor.** The old store is listed whole; its newest version (shares, segments and
//!    tombstones, in both namespaces) is the floor, recorded in the migration state (phase
//!    `copying`). Clients of the new store observe it, so all they write is newer than
//!    anything copied.
//! 3. **Copy.** Every live record of the old store (its system namespace first) is read and
//!    written to the new one at its old version, unless the new store already has that
//!    version or a newer complete one, or a tombstone (a delete there, newer by the floor).
//!    Progress is saved in the migration state every few records; running again resumes.
//! 4. **Finish.** The migration state goes to `done`; every object of the old store is
//!    removed, except (unless asked) its keyring and moved notice, which stay so that a
//!    client started later on the old configuration is told to reload instead of creating a
//!    new, empty store there.
//!
//! [`Settings::fence_wait`]: super::Settings::fence_wait

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use tokio_util::io::StreamReader;

use super::fanout::group_versions;
use super::notice::{self, Cursor, Migration, Moved, NOTICE_MAX, NoticeKey, ResharePhase, clip};
use super::{Inner, VaultDb};
use crate::backend::{Key, PutMode};
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{KeySpace, NameTag};
use crate::record::{Record, RecordMeta};
use crate::version::Version;

/// How [`VaultDb::reshare`] runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReshareOptions {
    /// Records copied between two saves of the progress cursor (at least 1; default 64).
    pub checkpoint_every: usize,
    /// At the end, also remove the old store's keyring and moved notice (default off: they
    /// stay, a few hundred bytes per backend and no record data, so that a client started
    /// later with the old configuration is told the store moved).
    pub remove_fence: bool,
    /// Ids of old backends declared lost for good (default none). The copy needs every
    /// other old backend's listing: a record held by exactly K backends (written with a
    /// write quorum below N, or repaired on fewer) would otherwise be left out while one of
    /// them cannot list, and removed with the old store. A lost backend's listing is not
    /// waited for; what it alone could have completed is gone with it.
    pub lost: Vec<String>,
}

impl Default for ReshareOptions {
    fn default() -> Self {
        Self { checkpoint_every: 64, remove_fence: false, lost: Vec::new() }
    }
}

/// Where a re-share is, passed to its progress callback.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReshareProgress {
    /// The phase being worked on.
    pub phase: ResharePhase,
    /// Records written to the new store (this run and the runs before it).
    pub copied: u64,
    /// Records the new store already had (or had deleted), or that were gone.
    pub skipped: u64,
    /// Records that could not be copied in this run.
    pub failed: u64,
    /// Records to go through in the namespace being copied (this run).
    pub total: u64,
}

/// What a finished [`VaultDb::reshare`] did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReshareReport {
    /// Every version of the old store was older than this.
    pub floor: Option<Version>,
    /// How long this run waited for the old configuration's clients to stop.
    pub waited: Duration,
    /// Records written to the new store (all runs).
    pub copied: u64,
    /// Records the new store already had, had deleted, or that were gone (all runs).
    pub skipped: u64,
    /// Per backend of the old store: its id and how many objects were removed from it.
    pub removed: Vec<(String, usize)>,
    /// Objects of the old store left in place on purpose (keyring and moved notice shares).
    pub kept: usize,
    /// Old backends that could not be cleared (down, or failing), with why. Running the
    /// re-share again retries them.
    pub problems: Vec<String>,
}

/// The state a run carries along: the migration state and what this run did.
struct Run<'a, P> {
    old: VaultDb,
    new: VaultDb,
    state: Migration,
    options: &'a ReshareOptions,
    progress: P,
    failed: u64,
    total: u64,
}

impl VaultDb {
    /// Moves this store to the configuration of `new` (another store: its own backends,
    /// keyring and naming key, K, N and mode; opened, and empty but for an unfinished
    /// re-share from this store), while clients keep using it. Every record gets fresh
    /// shares. See the module docs of `reshare.rs` for the steps and docs/SECURITY.md
    /// "Re-sharing" for what clients see. Safe to run again after a crash or an error: it
    /// resumes where the new store's migration state says. `progress` is called after each
    /// record copied and at each phase.
    ///
    /// ```no_run
    /// # async fn demo(old: vaultdb_core::VaultDb) -> vaultdb_core::Result<()> {
    /// use vaultdb_core::{MemoryBackend, ReshareOptions, VaultDb};
    ///
    /// // The new configuration: 3-of-5 over the old backends (another prefix) and two more.
    /// let mut new = VaultDb::builder().threshold(3).prefix("v2").migrating_from(old.clone());
    /// for b in old.backends().iter().cloned() {
    ///     new = new.backend_arc(b);
    /// }
    /// let new = new
    ///     .backend(MemoryBackend::new("d", "D"))
    ///     .backend(MemoryBackend::new("e", "E"))
    ///     .open()
    ///     .await?;
    /// let report = old
    ///     .reshare(&new, &ReshareOptions::default(), |p| {
    ///         eprintln!("{:?}: {} copied, {} skipped", p.phase, p.copied, p.skipped)
    ///     })
    ///     .await?;
    /// assert!(report.problems.is_empty());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `INVALID_CONFIG` if the two stores share a backend id with nested (or equal) prefixes,
    /// share their naming key, or `new` holds records of its own or the migration state of a
    /// re-share from another store, or if this handle has the re-share checks off
    /// (`fence_check = None`: there would be no lease to wait out), if this store is itself
    /// still being filled by an unfinished re-share, if `new` has moved on to another
    /// configuration, or if `options.lost` names a backend this store does not have; the
    /// error of the first
    /// record that could not be copied (its progress is saved: run again); a backend error
    /// if fewer than N-K+1 backends of a store took a notice, or fewer than K answered.
    pub async fn reshare(
        &self,
        new: &VaultDb,
        options: &ReshareOptions,
        progress: impl FnMut(&ReshareProgress),
    ) -> Result<ReshareReport> {
        let old = VaultDb { inner: self.inner.clone(), fenced: false };
        let new = VaultDb { inner: new.inner.clone(), fenced: false };
        check_distinct(&old, &new)?;
        // Chains are run one link at a time: a store still being filled by a re-share is not
        // re-shared on (its copy would go on into a store that moved away, and be lost), and
        // nothing is copied into a store that has itself moved on.
        let _ = old.inner.check_notices(super::gate::Access::Read).await;
        if let Some(state) = old.inner.gate.migration().filter(|m| m.phase != ResharePhase::Done) {
            return Err(VaultError::invalid_config(format!(
                "this store is still being filled by a re-share from {}; run that re-share to \
                 the end first",
                state.from
            )));
        }
        let _ = new.inner.check_notices(super::gate::Access::Read).await;
        if new.inner.gate.moved() {
            return Err(VaultError::invalid_config(
                "the new store has itself moved to another configuration; re-share into that one"
                    .to_owned(),
            ));
        }
        if let Some(unknown) = options.lost.iter().find(|id| !old.backend_ids().contains(id)) {
            return Err(VaultError::invalid_config(format!(
                "backend {unknown:?} declared lost is not a backend of the old store"
            )));
        }
        if old.settings().fence_check.is_none() {
            // The wait is the lease of the old store's clients, as this process's settings
            // say: with the checks off here it would be zero, while they write on.
            return Err(VaultError::invalid_config(
                "the old store is opened with the re-share checks off (fence_check = None): \
                 open it with the fence_check its clients use, so that the re-share waits out \
                 their lease"
                    .to_owned(),
            ));
        }
        let mut report = ReshareReport::default();
        let state = match read_state(&new.inner).await? {
            // Only the re-share that started it may resume it (or, done, finish its removal):
            // another store's run would skip its own fence and copy and remove its records.
            Some(state) if state.from != clip(&describe(&old)) => {
                return Err(VaultError::invalid_config(format!(
                    "the new store is being filled, or was filled, by a re-share from another store ({}); a re-share fills an empty store",
                    state.from
                )));
            }
            Some(state) => state,
            None => {
                if let Some(found) = new.inner.holds_data(true).await {
                    return Err(VaultError::invalid_config(format!(
                        "the new store is not empty ({found}); a re-share fills an empty store"
                    )));
                }
                let state = Migration {
                    phase: ResharePhase::Fencing,
                    floor: Version::from_parts(0, 0),
                    cursor: Cursor::Start,
                    copied: 0,
                    skipped: 0,
                    at: (new.inner.wall)(),
                    from: describe(&old),
                };
                write_state(&new.inner, &state).await?;
                state
            }
        };
        let mut run = Run { old, new, state, options, progress, failed: 0, total: 0 };
        if run.state.phase == ResharePhase::Fencing {
            report.waited = run.fence().await?;
        }
        if run.state.phase == ResharePhase::Copying {
            run.new.inner.clock.observe(run.state.floor.micros());
            run.report();
            let (old_sys, new_sys) = (run.old.system(), run.new.system());
            run.copy_namespace(&old_sys, &new_sys, true).await?;
            let (old_db, new_db) = (run.old.clone(), run.new.clone());
            run.copy_namespace(&old_db, &new_db, false).await?;
            run.state.phase = ResharePhase::Done;
            run.state.at = (run.new.inner.wall)();
            write_state(&run.new.inner, &run.state).await?;
            run.report();
        }
        report.floor = Some(run.state.floor);
        report.copied = run.state.copied;
        report.skipped = run.state.skipped;
        // The copy's reads of the old store may have left background work on it (settling a
        // record writes objects there): it ends before the old store is removed, or what it
        // writes would be left behind.
        run.old.flush().await;
        run.remove_old(&mut report).await;
        Ok(report)
    }
}

impl<P: FnMut(&ReshareProgress)> Run<'_, P> {
    fn report(&mut self) {
        let p = ReshareProgress {
            phase: self.state.phase,
            copied: self.state.copied,
            skipped: self.state.skipped,
            failed: self.failed,
            total: self.total,
        };
        (self.progress)(&p);
    }

    /// Step 1 and 2: the moved notice, the wait, the floor. Returns how long it waited.
    async fn fence(&mut self) -> Result<Duration> {
        self.report();
        let old = &self.old.inner;
        let key = NoticeKey::new(&old.naming);
        let bytes = key.moved(&Moved { at: (old.wall)(), to: describe(&self.new) });
        let (moved_key, _) = old.gate.keys();
        write_everywhere(old, moved_key, bytes, "the write of the moved notice").await?;
        // This process's own clients of the old store stop at once.
        let _ = old.check_notices(super::gate::Access::Read).await;
        let wait = old.settings.fence_wait();
        tracing::info!(?wait, "old store fenced; waiting for its clients' leases to run out");
        tokio::time::sleep(wait).await;
        let floor = old_floor(old).await?;
        self.new.inner.clock.observe(floor.micros());
        self.state.phase = ResharePhase::Copying;
        self.state.floor = floor;
        self.state.at = (self.new.inner.wall)();
        write_state(&self.new.inner, &self.state).await?;
        Ok(wait)
    }

    /// Step 3 for one namespace: copies every live record, in old name-tag order, from the
    /// cursor on.
    async fn copy_namespace(&mut self, old: &VaultDb, new: &VaultDb, system: bool) -> Result<()> {
        let cursor_of = |tag| if system { Cursor::System(tag) } else { Cursor::Records(tag) };
        // Every backend is heard (or fails): a record whose shares are partly on backends
        // that did not answer (and are not declared lost) has no id here, and counts as a
        // record that failed to copy, so the cursor stops before it and the re-share does
        // not finish without it.
        let (listing, outcomes) = old.inner.list_everything(old.inner.n()).await?;
        let silent: Vec<BackendOutcome> = outcomes
            .iter()
            .filter(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Missing))
            .filter(|o| !self.options.lost.contains(&o.backend))
            .cloned()
            .collect();
        let live = old.inner.live_ids(&listing).0.into_iter().map(|(tag, id)| (tag, Some(id)));
        let uncertain = match silent.is_empty() {
            true => Vec::new(),
            false => old.inner.uncertain_tags(&listing),
        };
        let uncertain = uncertain.into_iter().map(|tag| (tag, None));
        let mut todo: Vec<(NameTag, Option<String>)> =
            live.chain(uncertain).filter(|(tag, _)| cursor_of(*tag) > self.state.cursor).collect();
        todo.sort();
        self.total = todo.len() as u64;
        self.failed = 0;
        let mut first_err = None;
        let mut since_save = 0;
        for (tag, id) in todo {
            let copied = match &id {
                Some(id) => copy_one(old, new, id).await,
                None => Err(VaultError::Backend {
                    operation: "the copy of a record that may have shares on old backends \
                                that did not answer (run again when they answer, or declare \
                                them lost)",
                    outcomes: silent.clone(),
                }),
            };
            match copied {
                Ok(true) => self.state.copied += 1,
                Ok(false) => self.state.skipped += 1,
                Err(e) => {
                    tracing::warn!(%tag, error = %e, "re-share: a record could not be copied");
                    self.failed += 1;
                    first_err.get_or_insert(e);
                }
            }
            // The cursor never passes a record that failed: a resumed run retries it.
            if first_err.is_none() {
                self.state.cursor = cursor_of(tag);
            }
            since_save += 1;
            if since_save >= self.options.checkpoint_every.max(1) {
                since_save = 0;
                self.state.at = (self.new.inner.wall)();
                write_state(&self.new.inner, &self.state).await?;
            }
            self.report();
        }
        if self.state.cursor < cursor_of(NameTag([0xff; 16])) && first_err.is_none() {
            self.state.cursor = cursor_of(NameTag([0xff; 16]));
        }
        self.state.at = (self.new.inner.wall)();
        write_state(&self.new.inner, &self.state).await?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Step 4: removes the old store's objects from every old backend.
    async fn remove_old(&mut self, report: &mut ReshareReport) {
        let old = &self.old.inner;
        let keep_fence = !self.options.remove_fence;
        let ks = old.fanout.keyspace().clone();
        let work = (0..old.n()).map(|idx| {
            let ks = ks.clone();
            async move {
                let listed = old.fanout.list_raw(idx, &ks.root_prefix()).await?;
                let mut doomed: Vec<(u8, Key)> = listed
                    .into_iter()
                    .filter_map(|e| {
                        let rank = rank_of(&ks, e.key.as_str())?;
                        Some((rank, e.key))
                    })
                    .collect();
                let total = doomed.len();
                if keep_fence {
                    doomed.retain(|(rank, _)| *rank == 0);
                }
                // Record objects first, then the moved notice, the keyring last.
                doomed.sort_by_key(|(rank, _)| *rank);
                let kept = total - doomed.len();
                match old.fanout.delete_keys(idx, doomed.into_iter().map(|(_, k)| k)).await {
                    (removed, None) => Ok((removed, kept)),
                    (_, Some(e)) => Err(e),
                }
            }
        });
        let results = futures::future::join_all(work).await;
        for (idx, r) in results.into_iter().enumerate() {
            let id = old.fanout.id(idx).to_owned();
            match r {
                Ok((removed, kept)) => {
                    report.removed.push((id, removed));
                    report.kept += kept;
                }
                Err(e) => report.problems.push(format!("{id}: {}", e.status())),
            }
        }
    }
}

/// Copies one record; `true` if written, `false` if skipped.
async fn copy_one(old: &VaultDb, new: &VaultDb, id: &str) -> Result<bool> {
    let stream = match old.get_stream(id).await {
        Ok(s) => s,
        Err(VaultError::RecordNotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    let version = stream.version();
    let inner = &new.inner;
    let tag = inner.naming.tag(id);
    let listing = inner.list_tag_from_k(tag).await?;
    // A tombstone here is a delete made here, newer than every old version (the floor).
    if inner.fanout.deletes(tag, &inner.tombstone_key(), &listing).newest().is_some() {
        return Ok(false);
    }
    let versions = group_versions(&listing);
    let (k, w) = (inner.k(), inner.write_quorum);
    if versions
        .iter()
        .any(|(v, h)| (*v > version && h.len() >= k) || (*v == version && h.len() >= w))
    {
        return Ok(false);
    }
    // Objects of this very version are an earlier, interrupted copy (fewer than W shares):
    // remove them first (they were split with other randomness, and segment keys would
    // collide). A backend that did not answer may hold some, and a new share beside an old
    // one mixes two splits: the copy waits for a run whose listing every backend answers.
    if listing.iter().any(Result::is_err) {
        return Err(VaultError::Backend {
            operation: "the copy (a backend that did not answer its listing may hold shares of \
                        an interrupted copy of the record)",
            outcomes: inner.fanout.outcomes_of(&listing),
        });
    }
    let leftovers = listing.iter().enumerate().filter_map(|(idx, l)| {
        let keys: Vec<Key> = l
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|e| e.version == version)
            .map(|e| e.key.clone())
            .collect();
        (!keys.is_empty()).then_some((idx, keys))
    });
    for (idx, keys) in leftovers.collect::<Vec<_>>() {
        if let (_, Some(e)) = inner.fanout.delete_keys(idx, keys).await {
            return Err(VaultError::Backend {
                operation: "the removal of an interrupted copy",
                outcomes: vec![inner.fanout.outcome(idx, e.status())],
            });
        }
    }
    let meta: RecordMeta = stream.meta().clone();
    let len = stream.total_len();
    if len <= inner.settings.segment_size as u64 {
        let data = stream.collect_bytes().await?;
        let record =
            Record { id: meta.id, data, content_type: meta.content_type, metadata: meta.metadata };
        new.put_at(record, Some(version)).await?;
    } else {
        let mut reader =
            StreamReader::new(stream.map_err(|e| std::io::Error::other(e.to_string())));
        new.put_segmented(meta, tag, len, &mut reader, Some(version)).await?;
    }
    Ok(true)
}

/// Checks that a re-share between these stores is safe to run.
fn check_distinct(old: &VaultDb, new: &VaultDb) -> Result<()> {
    let (a, b) =
        (old.inner.fanout.keyspace().root_prefix(), new.inner.fanout.keyspace().root_prefix());
    let nested = a.as_str().starts_with(b.as_str()) || b.as_str().starts_with(a.as_str());
    let shared = old.backend_ids().iter().find(|id| new.backend_ids().contains(id));
    if let Some(id) = shared
        && nested
    {
        return Err(VaultError::invalid_config(format!(
            "both stores use backend {id:?} with prefixes {:?} and {:?}, one inside the other: \
             removing the old store would remove the new one; give the new store another prefix",
            old.settings().prefix,
            new.settings().prefix
        )));
    }
    if old.inner.naming == new.inner.naming {
        return Err(VaultError::invalid_config(
            "the new store has the old store's naming key; a re-share needs a fresh one".to_owned(),
        ));
    }
    Ok(())
}

/// A store's configuration in words (for the notices; no secrets), and its fingerprint: 8
/// bytes of a key derived from its naming key, so that two stores described alike (the same
/// backend ids and prefix, other locations) are told apart when a re-share resumes.
///
/// A description longer than the notices carry ([`notice::MAX_DESCRIPTION`]: long backend
/// ids or prefix) starts with the fingerprint instead of ending with it, so that clipping
/// never cuts it off: a look-alike store (the same ids and prefix) must not pass for the
/// old one when a client follows the re-share ([`VaultDb::follow_reshare`]).
fn describe(db: &VaultDb) -> String {
    let t = db.threshold();
    let fingerprint: String = db.inner.naming.derive(FINGERPRINT).as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let what = format!(
        "{}-of-{} {} over {} under prefix {:?}",
        t.k(),
        t.n(),
        db.mode(),
        db.backend_ids().join(", "),
        db.settings().prefix
    );
    let described = format!("{what}, store {fingerprint}");
    if described.len() <= notice::MAX_DESCRIPTION {
        described
    } else {
        format!("store {fingerprint}: {what}")
    }
}

/// [`describe`], clipped as the notices carry it.
pub(crate) fn describe_clipped(db: &VaultDb) -> String {
    clip(&describe(db)).to_owned()
}

/// What a store's fingerprint is derived for (see [`describe`]).
const FINGERPRINT: &str = "reshare/fingerprint";

/// Writes a notice on every backend of a store; needs N-K+1 of them (so that any K that a
/// check hears include one).
async fn write_everywhere(
    inner: &Inner,
    key: &Key,
    bytes: bytes::Bytes,
    operation: &'static str,
) -> Result<()> {
    let writes =
        (0..inner.n()).map(|idx| inner.fanout.put(idx, key, bytes.clone(), PutMode::Overwrite));
    let results = futures::future::join_all(writes).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    if ok < inner.n() - inner.k() + 1 {
        return Err(VaultError::Backend {
            operation,
            outcomes: inner.fanout.outcomes_of(&results),
        });
    }
    Ok(())
}

/// Writes the migration state to the new store, and lets this process's clients of it know.
async fn write_state(inner: &Inner, state: &Migration) -> Result<()> {
    let bytes = NoticeKey::new(&inner.naming).migration(state);
    let (_, key) = inner.gate.keys();
    write_everywhere(inner, key, bytes, "the write of the migration state").await?;
    let _ = inner.check_notices(super::gate::Access::Read).await;
    Ok(())
}

/// The newest migration state among K or more backends' copies (`None`: none there).
async fn read_state(inner: &Inner) -> Result<Option<Migration>> {
    let (_, key) = inner.gate.keys();
    let answers = inner.fanout.get_all(key, NOTICE_MAX).await;
    let answered = answers.iter().filter(|a| a.is_ok()).count();
    if answered < inner.k() {
        return Err(VaultError::Backend {
            operation: "the read of the migration state",
            outcomes: inner.fanout.outcomes_of(&answers),
        });
    }
    let nk = NoticeKey::new(&inner.naming);
    Ok(answers
        .iter()
        .filter_map(|a| a.as_ref().ok()?.as_deref().and_then(|b| nk.open_migration(b)))
        .max_by_key(|m| (m.phase, m.cursor, m.copied + m.skipped)))
}

/// The newest version the old store holds (records and system namespace; shares, segments
/// and tombstones), from N-K+1 or more backends' listings (any version K backends hold is
/// then seen).
async fn old_floor(inner: &Inner) -> Result<Version> {
    let need = (inner.n() - inner.k() + 1).max(inner.k());
    let mut floor = Version::from_parts(0, 0);
    let spaces = [Some(inner), inner.system.as_deref()];
    for ns in spaces.into_iter().flatten() {
        let prefix = ns.fanout.keyspace().records_prefix();
        let listing = ns.fanout.list_shares(&prefix, |_| true, ns.n()).await;
        let answered = listing.iter().filter(|l| l.is_ok()).count();
        if answered < need {
            return Err(VaultError::InsufficientShares {
                need,
                got: answered,
                outcomes: ns.fanout.outcomes_of(&listing),
            });
        }
        // Names carry no MAC: one backend can list any version. One stamped further ahead of
        // this machine's clock than the allowed skew counts only if K backends list it (as
        // for a delete, `VaultDb::newest_credible`): every client of the new store observes
        // the floor, and one at the end of time would leave their versions ordered by their
        // random half alone.
        let mut holders: BTreeMap<(NameTag, Version), Vec<usize>> = BTreeMap::new();
        for (idx, l) in listing.iter().enumerate() {
            for (tag, e) in l.as_deref().unwrap_or_default() {
                let h = holders.entry((*tag, e.version)).or_default();
                if !h.contains(&idx) {
                    h.push(idx);
                }
            }
        }
        let skew = u64::try_from(ns.settings.max_clock_skew().as_micros()).unwrap_or(u64::MAX);
        let horizon = crate::version::Clock::wall_micros().saturating_add(skew);
        for ((_, version), h) in holders {
            if version.micros() <= horizon || h.len() >= ns.k() {
                floor = floor.max(version);
            } else {
                let backends: Vec<&str> = h.iter().map(|&i| ns.fanout.id(i)).collect();
                tracing::warn!(
                    %version, ?backends,
                    "re-share: a version listed ahead of every client's clock; not a floor"
                );
            }
        }
    }
    Ok(floor)
}

/// The order an old object is removed in, or `None` for a key that is not the store's
/// (left alone): 0 record objects (shares, segments, tombstones, marks, settled objects,
/// the probe, in both namespaces), 1 the moved notice, 2 the keyring.
fn rank_of(ks: &KeySpace, key: &str) -> Option<u8> {
    use crate::naming::ParsedKey;
    let root = ks.root_prefix();
    let rest = key.strip_prefix(root.as_str())?;
    if key == ks.moved_key().as_str() {
        return Some(1);
    }
    if let Some(parsed) = ks.parse(key) {
        return Some(if parsed == ParsedKey::Keyring { 2 } else { 0 });
    }
    let rest = rest.strip_prefix("sys/").unwrap_or(rest);
    if let Ok(sys) = KeySpace::new(&format!("{}sys", root.as_str()))
        && sys.parse(key).is_some()
    {
        return Some(0);
    }
    let tagged = |p: &str| rest.strip_prefix(p).is_some_and(|t| NameTag::from_text(t).is_some());
    (tagged("m/") || tagged("s/") || rest == "probe" || rest == "migration").then_some(0)
}
