//! One-round-trip reads: the fast path that finds a record's newest version from its marks
//! and settled objects (`marks.rs`) without listing, and the settler that writes settled
//! objects after a read had to list.
//!
//! The rule (docs/SECURITY.md, "One-round-trip reads", has the argument): a read GETs the
//! mark and the settled object of the record on every backend at once, and answers from
//! them only when `R` backends (`Inner::fast_quorum`) each hold a settled object that
//! certifies the very mark they hold, all for one version. Anything else (a write since the
//! settle, a backend rolled back, lying or withholding, too few answers in time) falls back
//! to the listing path, which then settles the record in the background if it may.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use super::fanout::{Expected, Source, agreed_size, group_versions};
use super::head::Head;
use super::marks::{INLINE_MAX, MARK_LEN, MarkKind, SETTLED_MAX, Settled, Stored, digest};
use super::shares::Expect;
use super::{Inner, VaultDb};
use crate::backend::{Key, PutMode};
use crate::envelope::Kind;
use crate::error::OutcomeStatus;
use crate::naming::NameTag;
use crate::version::Version;

/// The marks a fast read saw (some, or all): a hint whether settling is worth trying.
pub(crate) struct MarksSeen {
    /// Per backend, the mark's bytes (`None`: absent, or no answer).
    marks: Vec<Option<Bytes>>,
    /// The reader's clock (microseconds) after the marks were read.
    at: u64,
}

/// What the fast path found.
pub(crate) enum Fast {
    /// The newest version, verified.
    Found(Head),
    /// Deleted.
    Deleted,
    /// Not provable from marks alone: list. Carries the marks seen, if any were read.
    Slow(Option<MarksSeen>),
}

impl Inner {
    /// How many backends must agree for the fast path to answer: enough that any acknowledged
    /// put (W backends) and any successful delete (N-K+1) reached at least
    /// `rollback_tolerance + 1` of them, so that with that many backends rolled back or lying
    /// at least one still shows the newer write.
    pub(crate) fn fast_quorum(&self) -> usize {
        let n = self.n();
        let reach = self.k().max(n + 1 - self.write_quorum);
        (reach + self.settings.rollback_tolerance).min(n)
    }

    /// The settle delay in microseconds: how old every mark must be before a settler may
    /// certify it.
    fn settle_after_micros(&self) -> u64 {
        self.settings.settle_delay().as_micros() as u64
    }
}

impl VaultDb {
    /// Tries to find the newest version of `tag` from marks and settled objects alone.
    pub(crate) async fn fast_head(&self, tag: NameTag) -> Fast {
        let inner = &self.inner;
        if !inner.settings.fast_reads {
            return Fast::Slow(None);
        }
        let (n, r) = (inner.n(), inner.fast_quorum());
        let mk = inner.mark_key();
        let ks = inner.fanout.keyspace();
        let (mark_key, settled_key) = (ks.mark_key(tag), ks.settled_key(tag));
        let mut calls: FuturesUnordered<_> = (0..n)
            .map(|idx| {
                let (mark_key, settled_key) = (&mark_key, &settled_key);
                async move {
                    let (m, s) = futures::future::join(
                        inner.fanout.get_one(idx, mark_key, MARK_LEN as u64),
                        inner.fanout.get_one(idx, settled_key, SETTLED_MAX as u64),
                    )
                    .await;
                    (idx, m.ok().flatten(), s.ok().flatten())
                }
            })
            .collect();
        // A backend that does not answer soon does not hold the read up: the listing path
        // has its own hedging.
        let patience = inner.settings.hedge_after.map(|h| h * 4).unwrap_or(Duration::MAX);
        let deadline = tokio::time::sleep(patience.min(Duration::from_secs(3600)));
        tokio::pin!(deadline);
        let mut marks: Vec<Option<Bytes>> = vec![None; n];
        let mut groups: BTreeMap<(MarkKind, Version), Vec<(usize, Stored)>> = BTreeMap::new();
        let mut answered = 0;
        let mut decided = None;
        loop {
            let (idx, m, s) = tokio::select! {
                next = calls.next() => match next { Some(x) => x, None => break },
                () = &mut deadline => break,
            };
            answered += 1;
            marks[idx] = m.clone();
            let consistent = m.zip(s).and_then(|(m, s)| {
                let mark = mk.read_mark(tag, &m)?;
                let settled: Settled = mk.read_settled(tag, &s)?;
                (settled.certifies == digest(&m)
                    && settled.version == mark.version
                    && settled.kind == mark.kind)
                    .then_some(settled)
            });
            if let Some(s) = consistent {
                groups.entry((s.kind, s.version)).or_default().push((idx, s.stored));
            }
            let best = groups.iter().max_by_key(|(_, m)| m.len());
            if let Some((key, members)) = best
                && members.len() >= r
                && (2 * r > n || answered == n)
                && groups.values().filter(|m| m.len() >= r).count() == 1
            {
                decided = Some((*key, members.clone()));
                break;
            }
            if best.map_or(0, |(_, m)| m.len()) + (n - answered) < r {
                break; // R can no longer agree: list now (the settler reads marks itself)
            }
        }
        drop(calls);
        let seen = MarksSeen { marks, at: (inner.wall)() };
        let Some(((kind, version), members)) = decided else {
            return Fast::Slow(Some(seen));
        };
        inner.clock.observe(version.micros());
        if kind == MarkKind::Tombstone {
            inner.stats.fast_reads.fetch_add(1, Ordering::Relaxed);
            return Fast::Deleted;
        }
        let prefix = ks.record_prefix(tag);
        // A named size is what the backend listed when it was settled: never read more than
        // the largest share the settings allow (the listing path's bound).
        let bound =
            inner.shares().max_share_len(Kind::Record, inner.settings.max_record_size as u64);
        let sources: Vec<(usize, Source)> = members
            .iter()
            .filter_map(|(idx, stored)| match stored {
                Stored::Inline(b) => Some((*idx, Source::Have(b.clone()))),
                Stored::Named { name, size } => {
                    let key = Key::new(format!("{}{name}", prefix.as_str())).ok()?;
                    let expected = Expected { max_len: (*size).min(bound), len: Some(*size) };
                    Some((*idx, Source::Fetch(key, expected)))
                }
                Stored::Nothing => None,
            })
            .collect();
        let expect = Expect { kind: Kind::Record, tag, version };
        match inner.fanout.fetch_and_verify(expect, sources, false).await {
            Ok(verified) => {
                inner.stats.fast_reads.fetch_add(1, Ordering::Relaxed);
                let holders: Vec<usize> = members.iter().map(|(i, _)| *i).collect();
                let outcomes = (0..n)
                    .map(|i| {
                        inner.outcome(
                            i,
                            verified.status[i].clone().unwrap_or(OutcomeStatus::Skipped),
                        )
                    })
                    .collect();
                let others = (0..n).filter(|i| !holders.contains(i));
                Fast::Found(Head {
                    tag,
                    version,
                    verified,
                    outcomes,
                    holders: holders.iter().copied().chain(others).collect(),
                })
            }
            Err(e) => {
                tracing::debug!(%tag, error = %e, "fast read fell back to listing");
                Fast::Slow(Some(seen))
            }
        }
    }

    /// After a read that had to list found `tag` at `version` (`kind`), settles it in the
    /// background (see `Inner::settle`), if a mark the read saw shows that write old enough
    /// to settle: a record just written is not tried again on every read.
    pub(crate) fn settle_later(
        &self,
        tag: NameTag,
        seen: Option<MarksSeen>,
        kind: MarkKind,
        version: Version,
    ) {
        let Some(seen) = seen else { return };
        let inner = &self.inner;
        let mk = inner.mark_key();
        let delay = inner.settle_after_micros();
        let worth_it = seen.marks.iter().flatten().filter_map(|m| mk.read_mark(tag, m)).any(|m| {
            m.kind == kind && m.version == version && m.issued_at.saturating_add(delay) <= seen.at
        });
        if worth_it {
            let inner = Arc::clone(&self.inner);
            // Optional work: when the client is busy, the next slow read tries again.
            let _ = self.inner.background.spawn_bounded(async move {
                inner.settle(tag, kind, version).await;
            });
        }
    }
}

impl Inner {
    /// Writes the settled objects of `tag` at `version` (`kind`) on every backend where it
    /// may (docs/FORMAT.md section 17, "Settling"): it reads every backend's mark, then lists
    /// every backend; a backend is settled if its mark is this write's and older than the
    /// settle delay at the time the marks had been read, and the listing (all N backends
    /// answered) shows this write as the newest.
    pub(crate) async fn settle(&self, tag: NameTag, kind: MarkKind, version: Version) {
        let mk = self.mark_key();
        let ks = self.fanout.keyspace();
        let mark_key = ks.mark_key(tag);
        let marks = futures::future::join_all(
            (0..self.n()).map(|idx| self.fanout.get_one(idx, &mark_key, MARK_LEN as u64)),
        )
        .await;
        let at = (self.wall)();
        let delay = self.settle_after_micros();
        let due: Vec<(usize, Bytes)> = marks
            .into_iter()
            .enumerate()
            .filter_map(|(idx, m)| {
                let m = m.ok().flatten()?;
                let mark = mk.read_mark(tag, &m)?;
                (mark.kind == kind
                    && mark.version == version
                    && mark.issued_at.saturating_add(delay) <= at)
                    .then_some((idx, m))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let listing = self.fanout.list_tag(tag).await;
        if listing.iter().any(Result::is_err) {
            return; // only a listing of every backend proves "newest"
        }
        let versions = group_versions(&listing);
        let newest_data = versions.iter().rev().find(|(_, h)| h.len() >= self.k()).map(|(v, _)| *v);
        let newest_tomb = self.fanout.deletes(tag, &self.tombstone_key(), &listing).newest();
        let newest = match (newest_data, newest_tomb) {
            (d, Some(t)) if d.is_none_or(|d| d < t) => (MarkKind::Tombstone, t),
            (Some(d), _) => (MarkKind::Data, d),
            _ => return,
        };
        if newest != (kind, version) {
            return;
        }
        let settled_key = ks.settled_key(tag);
        let prefix = ks.record_prefix(tag);
        // The size K holders of the version listed: a backend that lists another size for
        // its share is not settled, so that no settled object names a size only it claimed
        // (a fast read fetches exactly the size named).
        let heads = listing.iter().flat_map(|l| l.as_deref().unwrap_or_default());
        let size = agreed_size(
            heads.filter(|e| e.version == version && e.is_head()).map(|e| e.size),
            self.k(),
        );
        let work = due.into_iter().map(|(idx, mark)| {
            let (listing, mk, settled_key, prefix) = (&listing, &mk, &settled_key, &prefix);
            async move {
                let stored = match kind {
                    MarkKind::Tombstone => Stored::Nothing,
                    MarkKind::Data => {
                        let entries = listing[idx].as_deref().unwrap_or_default();
                        let Some(e) = entries
                            .iter()
                            .find(|e| e.version == version && e.is_head() && Some(e.size) == size)
                        else {
                            return;
                        };
                        if e.size as usize <= INLINE_MAX {
                            match self.fanout.get_one(idx, &e.key, e.size).await {
                                Ok(Some(b)) if b.len() as u64 == e.size => Stored::Inline(b),
                                _ => return,
                            }
                        } else {
                            let Some(name) = e.key.as_str().strip_prefix(prefix.as_str()) else {
                                return;
                            };
                            Stored::Named { name: name.to_owned(), size: e.size }
                        }
                    }
                };
                let settled = Settled { kind, version, certifies: digest(&mark), stored };
                let bytes = mk.settled(tag, &settled);
                if let Err(e) = self.fanout.put(idx, settled_key, bytes, PutMode::Overwrite).await {
                    tracing::debug!(%tag, backend = %self.fanout.id(idx), error = ?e,
                        "could not write a settled object");
                }
            }
        });
        futures::future::join_all(work).await;
    }
}
