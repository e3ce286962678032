//! Finding a record's newest readable version and verifying its head (the record itself,
//! or a segmented record's manifest), for every read; and reporting degraded reads, which
//! start a read-repair.

use std::sync::atomic::Ordering;

use super::VaultDb;
use super::call::CallError;
use super::fanout::{Verified, group_versions};
use super::fast::Fast;
use super::marks::MarkKind;
use super::shares::Expect;
use crate::envelope::Kind;
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{NameTag, validate_id};
use crate::version::Version;

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
    /// The ids of the backends that served bad shares of the head.
    pub(crate) fn bad_backends(&self, db: &VaultDb) -> Vec<String> {
        self.verified.bad().into_iter().map(|i| db.inner.fanout.id(i).to_owned()).collect()
    }

    /// The integrity failure of a head that verified but names another record.
    pub(crate) fn wrong_id(&self, what: &str) -> VaultError {
        VaultError::HmacFailed {
            reason: format!("rebuilt {what} carries another id"),
            bad_backends: vec![],
            outcomes: self.outcomes.clone(),
        }
    }
}

impl VaultDb {
    /// Lists a record's versions and verifies the head of the newest one that has K shares.
    pub(crate) async fn resolve_head(&self, id: &str) -> Result<Head> {
        validate_id(id)?;
        let inner = &self.inner;
        let tag = inner.naming.tag(id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        let mut seen = match self.fast_head(tag).await {
            Fast::Found(head) => return Ok(head),
            Fast::Deleted => return Err(VaultError::RecordNotFound),
            Fast::Slow(seen) => seen,
        };
        let k = inner.k();
        let mut last_err = None;
        for attempt in 0..3 {
            // With hedging on, the first attempt does not wait for backends that cannot
            // change the outcome; a retry (shares listed but gone, or too few good), and any
            // read with hedging off, hears everyone.
            let listing = if attempt == 0 && inner.settings.hedge_after.is_some() {
                inner.fanout.list_tag_for_read(tag, inner.read_listings()).await
            } else {
                inner.fanout.list_tag(tag).await
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
                                entries.iter().any(|e| e.version == *v && e.is_head())
                            }) =>
                        {
                            inner.outcome(i, OutcomeStatus::Skipped)
                        }
                        Ok(_) => inner.outcome(i, OutcomeStatus::Missing),
                    })
                    .collect()
            };
            let deletes = inner.fanout.deletes(tag, &inner.tombstone_key(), &listing);
            for &b in &deletes.forged {
                inner.fanout.note_bad(b, "listed a tombstone that does not verify");
            }
            let candidate = versions.iter().rev().find(|(_, holders)| holders.len() >= k);
            if let Some(t) = deletes.newest()
                && candidate.is_none_or(|(v, _)| *v < t)
            {
                // Deleted (at t). Leftovers older than the tombstone (a backend restored
                // from a backup, or one that was down during the delete), or a backend
                // without the tombstone, are cleaned up in the background.
                let leftovers = listing.iter().any(|l| {
                    l.as_deref()
                        .unwrap_or_default()
                        .iter()
                        .any(|e| e.tombstone.is_none() && e.version < t)
                });
                let spread = listing.iter().filter(|l| l.is_ok()).count() > deletes.valid[&t].len();
                if leftovers || spread || !deletes.forged.is_empty() {
                    self.repair_in_background(tag, "deleted record with leftovers");
                }
                self.settle_later(tag, seen.take(), MarkKind::Tombstone, t);
                return Err(VaultError::RecordNotFound);
            }
            let Some((version, holders)) = candidate else {
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
            let sources = inner.head_sources(holders);
            // A retry fetches every holder's share, so that each bad one seen is named.
            let want_all = attempt > 0;
            let verified = match inner.fanout.fetch_and_verify(expect, sources, want_all).await {
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
            self.settle_later(tag, seen.take(), MarkKind::Data, *version);
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
    pub(crate) fn note_degraded(&self, tag: NameTag, outcomes: &[BackendOutcome]) {
        let inner = &self.inner;
        if super::degraded(outcomes) {
            inner.stats.degraded_reads.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%tag, "degraded read: {}", crate::error::outcomes_text(outcomes));
            self.repair_in_background(tag, "degraded read");
        }
    }

    /// Starts a repair of `tag` in the background, if read-repair is on.
    pub(crate) fn repair_in_background(&self, tag: NameTag, why: &'static str) {
        if self.inner.settings.read_repair {
            tracing::debug!(%tag, why, "starting a repair");
            let db = self.clone();
            // Its report is not needed here: what it restores or removes is logged.
            // Optional work: when the client is busy, scrub (or the next degraded read) does it.
            let _ = self.inner.background.spawn_bounded(async move {
                db.inner.repair_tag(tag, None).await;
            });
        }
    }
}
