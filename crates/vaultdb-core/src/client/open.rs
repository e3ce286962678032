//! Opening a store: reading the keyring, or creating it on an empty store.
//!
//! Each backend has one keyring slot (`<prefix>/keyring`). On open the client reads the N
//! slots at once, and stops waiting as soon as K of them verify: that is the keyring (a
//! backend that hangs or answers slowly delays nothing). The client checks its own
//! configuration against it and rewrites the slots that hold no good share, naming their
//! backends. A slot that holds garbage, another position's share (one backend's keyring
//! swapped in from another) or another threshold's is a bad share like any other, as long
//! as K good ones remain; only when K or more slots agree on another shape is the client's
//! configuration the problem (`INVALID_CONFIG`).
//!
//! A keyring is created only when *every* backend answered, *no* slot holds anything and
//! *no* backend holds any record object: a store that has data but has lost its keyring
//! (every slot deleted, or fewer than K readable) is an error, never a new store, since a
//! new naming key would make every record unreadable (`KEYRING_UNAVAILABLE`, with the code
//! `INSUFFICIENT_SHARES`; docs/SECURITY.md says how to recover). Creation is decided by
//! backend 0's slot, written create-only: of two clients opening an empty store at once,
//! exactly one wins it; the winner then writes the other slots, and the loser waits for the
//! winner's keyring to become readable and uses it. If any backend cannot be reached,
//! nothing is created (the keyring might live there).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::Inner;
use super::call::CallError;
use super::fanout::{Source, Verified};
use super::shares::{Expect, MAX_KEYRING_SHARE_LEN};
use crate::backend::PutMode;
use crate::envelope::{self, Kind};
use crate::error::{OutcomeStatus, Result, VaultError};
use crate::keyring::{KEYRING_TAG, Keyring};
use crate::naming::NamingKey;
use crate::version::Version;

/// How long a client waits for another client's keyring creation to finish.
const CREATION_WAIT: Duration = Duration::from_secs(10);

/// How long an open that found K good keyring shares still waits for the other slots, so
/// that a bad one is named and rewritten at once (slower ones are checked in the background).
const SLOT_GRACE: Duration = Duration::from_millis(200);

/// One backend's slot as read.
enum Slot {
    Empty,
    Share(Version, Bytes),
    /// A well-formed keyring share for another backend position.
    Misplaced(Bytes),
    Bad(String),
    Unreachable(CallError),
}

/// Sorts one backend's answer for its keyring slot: an object larger than
/// [`MAX_KEYRING_SHARE_LEN`] is a bad slot (named, and rewritten like any bad slot), not an
/// unreachable backend.
fn slot_of(idx: usize, r: Result<Option<Bytes>, CallError>) -> Slot {
    match r {
        Err(CallError::Backend(e)) if e.kind() == crate::BackendErrorKind::TooLarge => {
            Slot::Bad(e.message().to_owned())
        }
        Err(e) => Slot::Unreachable(e),
        Ok(None) => Slot::Empty,
        Ok(Some(bytes)) => match envelope::decode(&bytes) {
            Err(e) => Slot::Bad(e.to_string()),
            Ok(env) if env.header.kind != Kind::Keyring => Slot::Bad("not a keyring share".into()),
            Ok(env) => {
                let h = env.header;
                if usize::from(h.x) != idx + 1 {
                    Slot::Misplaced(bytes)
                } else {
                    Slot::Share(h.version, bytes)
                }
            }
        },
    }
}

/// Reads every backend's slot, no further than [`MAX_KEYRING_SHARE_LEN`] (for the repair and
/// creation paths, which need them all).
async fn read_slots(inner: &Inner) -> Vec<Slot> {
    let key = inner.fanout.keyspace().keyring_key();
    let reads = inner.fanout.get_all(&key, MAX_KEYRING_SHARE_LEN).await;
    reads.into_iter().enumerate().map(|(idx, r)| slot_of(idx, r)).collect()
}

/// Reads the slots until K of them verify as one keyring: the slots (those not heard from
/// yet are `Unreachable(NotAwaited)`) and the keyring, if found.
async fn read_until_keyring(inner: &Inner) -> (Vec<Slot>, Option<(Version, Verified)>) {
    use futures::stream::{FuturesUnordered, StreamExt};
    let key = inner.fanout.keyspace().keyring_key();
    let key = &key;
    let mut reads: FuturesUnordered<_> = (0..inner.n())
        .map(
            |idx| async move { (idx, inner.fanout.get_one(idx, key, MAX_KEYRING_SHARE_LEN).await) },
        )
        .collect();
    let mut slots: Vec<Slot> =
        (0..inner.n()).map(|_| Slot::Unreachable(CallError::NotAwaited)).collect();
    let mut shares = 0;
    while let Some((idx, r)) = reads.next().await {
        slots[idx] = slot_of(idx, r);
        if matches!(slots[idx], Slot::Share(..)) {
            shares += 1;
            if shares >= inner.k()
                && let Some(found) = find_keyring(inner, &slots).await
            {
                // The other slots get a moment more, so that a bad one that answers is named
                // and rewritten now; one that is slow does not hold the open up.
                let grace = tokio::time::sleep(SLOT_GRACE);
                tokio::pin!(grace);
                loop {
                    tokio::select! {
                        next = reads.next() => match next {
                            Some((idx, r)) => slots[idx] = slot_of(idx, r),
                            None => break,
                        },
                        () = &mut grace => break,
                    }
                }
                // Verify again with every share now at hand (no I/O: the bytes are read), so
                // that a store whose slots are all good needs no background check.
                let found = find_keyring(inner, &slots).await.unwrap_or(found);
                return (slots, Some(found));
            }
        }
    }
    (slots, None)
}

/// The client's configuration is not the store's when K or more slots agree on another
/// threshold, or hold shares of other positions: say so rather than fail to read. Fewer
/// such slots are bad shares (see [`bad_slots`]).
fn check_shape(inner: &Inner, slots: &[Slot]) -> Result<()> {
    let headers: Vec<(usize, envelope::Header)> = slots
        .iter()
        .enumerate()
        .filter_map(|(idx, s)| match s {
            Slot::Share(_, b) | Slot::Misplaced(b) => {
                envelope::decode(b).ok().map(|e| (idx, e.header))
            }
            _ => None,
        })
        .collect();
    let k = inner.k();
    let other_threshold: Vec<&envelope::Header> =
        headers.iter().map(|(_, h)| h).filter(|h| h.threshold != inner.threshold()).collect();
    // K slots agree on another shape; or every slot that holds a share holds one of that
    // other shape (no slot speaks for the client's configuration).
    if let Some(first) = other_threshold.first()
        && (other_threshold.iter().filter(|h| h.threshold == first.threshold).count() >= k
            || other_threshold.iter().all(|h| h.threshold == first.threshold)
                && other_threshold.len() == headers.len())
    {
        return Err(VaultError::invalid_config(format!(
            "the store was created as {} but the client is configured as {}",
            first.threshold,
            inner.threshold()
        )));
    }
    let misplaced: Vec<&(usize, envelope::Header)> =
        headers.iter().filter(|(idx, h)| usize::from(h.x) != idx + 1).collect();
    if misplaced.len() >= k {
        let (idx, h) = misplaced[0];
        return Err(VaultError::invalid_config(format!(
            "backend {} holds the keyring share of position {}, not {} (and {} other backends \
             hold another position's): the backend list is in another order than when the \
             store was created",
            inner.fanout.id(*idx),
            h.x,
            idx + 1,
            misplaced.len() - 1
        )));
    }
    Ok(())
}

/// What each slot held, as per-backend outcomes.
fn slot_outcomes(inner: &Inner, slots: &[Slot]) -> Vec<crate::error::BackendOutcome> {
    slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            inner.outcome(
                i,
                match s {
                    Slot::Empty => OutcomeStatus::Missing,
                    Slot::Share(..) => OutcomeStatus::Ok,
                    Slot::Bad(reason) => OutcomeStatus::Corrupt { reason: reason.clone() },
                    Slot::Misplaced(_) => OutcomeStatus::Corrupt {
                        reason: "another backend position's keyring share".into(),
                    },
                    Slot::Unreachable(e) => e.status(),
                },
            )
        })
        .collect()
}

/// Finds a keyring version whose shares verify; returns it with the verification.
async fn find_keyring(inner: &Inner, slots: &[Slot]) -> Option<(Version, Verified)> {
    let mut by_version: BTreeMap<Version, Vec<(usize, Bytes)>> = BTreeMap::new();
    for (idx, s) in slots.iter().enumerate() {
        if let Slot::Share(v, b) = s {
            by_version.entry(*v).or_default().push((idx, b.clone()));
        }
    }
    for (v, shares) in by_version.into_iter().rev() {
        if shares.len() < inner.k() {
            continue;
        }
        let expect = Expect { kind: Kind::Keyring, tag: KEYRING_TAG, version: v };
        let sources = shares.into_iter().map(|(i, b)| (i, Source::Have(b))).collect();
        if let Ok(verified) = inner.fanout.fetch_and_verify(expect, sources, true).await {
            return Some((v, verified));
        }
    }
    None
}

/// Rewrites every reachable slot that does not hold a good share of the keyring `verified`;
/// returns how many were rewritten.
async fn fix_slots(inner: &Inner, slots: &[Slot], version: Version, verified: &Verified) -> usize {
    let good: Vec<usize> = verified.good.iter().map(|(i, _)| *i).collect();
    let subset = verified.subset_envelopes();
    let key = inner.fanout.keyspace().keyring_key();
    let mut fixed = 0;
    for (idx, slot) in slots.iter().enumerate() {
        let unusable = matches!(slot, Slot::Unreachable(CallError::Backend(e))
            if e.kind() != crate::BackendErrorKind::Transient);
        if good.contains(&idx) || matches!(slot, Slot::Unreachable(_)) && !unusable {
            continue;
        }
        let x = (idx + 1) as u8;
        let Ok(envelope) = inner.shares().derive(&subset, x, Kind::Keyring, version, KEYRING_TAG)
        else {
            continue;
        };
        match inner.fanout.put(idx, &key, Bytes::from(envelope), PutMode::Overwrite).await {
            Ok(()) => {
                tracing::info!(backend = %inner.fanout.id(idx), "restored keyring share");
                fixed += 1;
            }
            Err(e) => {
                tracing::warn!(backend = %inner.fanout.id(idx), error = ?e, "could not restore keyring share")
            }
        }
    }
    fixed
}

fn decode_keyring(verified: &Verified, external: Option<&NamingKey>) -> Result<Keyring> {
    Keyring::decode(verified.payload(), external)
}

/// Reads the keyring (creating it on an empty store) and checks the configuration. Also
/// says whether every slot was seen to hold a good share (reads stop at K good ones: the
/// others are then checked by [`repair_keyring`], in the background).
pub(crate) async fn load_or_create_keyring(
    inner: &Inner,
    external: Option<&NamingKey>,
) -> Result<(Keyring, bool)> {
    let deadline = tokio::time::Instant::now() + CREATION_WAIT;
    let mut delay = Duration::from_millis(20);
    loop {
        let (mut slots, found) = read_until_keyring(inner).await;
        if let Some((version, verified)) = found {
            let keyring = decode_keyring(&verified, external)?;
            keyring.check_config(inner.threshold(), inner.fanout.ids())?;
            for (idx, s) in slots.iter().enumerate() {
                match s {
                    Slot::Bad(_) | Slot::Misplaced(_) => {
                        inner.fanout.note_bad(idx, "its keyring share is bad; rewriting it");
                    }
                    // Not an outage but something else at the slot (a special file, a
                    // directory): name it, and try to rewrite it like a bad share.
                    Slot::Unreachable(CallError::Backend(e))
                        if e.kind() != crate::BackendErrorKind::Transient =>
                    {
                        tracing::warn!(
                            backend = %inner.fanout.id(idx), error = %e,
                            "its keyring share cannot be read; rewriting it"
                        );
                    }
                    _ => {}
                }
            }
            fix_slots(inner, &slots, version, &verified).await;
            let complete = verified.good.len() == inner.n();
            return Ok((keyring, complete));
        }
        check_shape(inner, &slots)?;
        let unreachable = slots.iter().filter(|s| matches!(s, Slot::Unreachable(_))).count();
        if unreachable > 0 {
            // Give the slow ones their answer (bounded by the call policy) before deciding.
            slots = read_slots(inner).await;
            if let Some((version, verified)) = find_keyring(inner, &slots).await {
                let keyring = decode_keyring(&verified, external)?;
                keyring.check_config(inner.threshold(), inner.fanout.ids())?;
                fix_slots(inner, &slots, version, &verified).await;
                return Ok((keyring, true));
            }
            check_shape(inner, &slots)?;
        }
        let empty = slots.iter().all(|s| matches!(s, Slot::Empty));
        let reachable = slots.iter().all(|s| !matches!(s, Slot::Unreachable(_)));
        if empty && reachable {
            if let Some(what) = inner.holds_data(true).await {
                return Err(VaultError::KeyringUnavailable {
                    reason: format!(
                        "the store holds data ({what}) but no backend holds a keyring share: a \
                         new keyring would make every record unreadable, so none is created; \
                         restore the keyring objects (`{}`) of at least {} backends from a \
                         backup (docs/SECURITY.md, \"A lost keyring\")",
                        inner.fanout.keyspace().keyring_key(),
                        inner.k()
                    ),
                    outcomes: slot_outcomes(inner, &slots),
                });
            }
            if let Some(keyring) = try_create(inner, external).await? {
                return Ok((keyring, true));
            }
        } else if empty || slots.iter().all(|s| matches!(s, Slot::Empty | Slot::Unreachable(_))) {
            // Nothing readable, and a backend that may hold the keyring cannot be reached.
            let answered = slots.iter().filter(|s| !matches!(s, Slot::Unreachable(_))).count();
            return Err(VaultError::KeyringUnavailable {
                reason: format!(
                    "{answered} of {} backends answered and hold no keyring share; a keyring is \
                     neither read nor created while a backend that may hold it cannot be reached",
                    inner.n()
                ),
                outcomes: slot_outcomes(inner, &slots),
            });
        }
        // Some slots hold something, but fewer than K verify: another client is creating
        // the keyring, or it was damaged. Wait a while for the first.
        if tokio::time::Instant::now() >= deadline {
            return Err(VaultError::KeyringUnavailable {
                reason: format!(
                    "fewer than {} keyring shares verify{}",
                    inner.k(),
                    if inner.holds_data(false).await.is_some() {
                        " and the store holds data: restore the keyring objects from a backup \
                         (docs/SECURITY.md, \"A lost keyring\")"
                    } else {
                        ""
                    }
                ),
                outcomes: slot_outcomes(inner, &slots),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Tries to create the keyring; `None` if another client won backend 0's slot.
async fn try_create(inner: &Inner, external: Option<&NamingKey>) -> Result<Option<Keyring>> {
    let naming_key = match external {
        Some(k) => k.clone(),
        None => inner.with_rng(|rng| NamingKey::generate(rng)),
    };
    let keyring = Keyring {
        naming_key,
        threshold: inner.threshold(),
        backends: inner.fanout.ids().to_vec(),
        stores_key: external.is_none(),
        mode: inner.settings.mode.unwrap_or_default(),
    };
    let version = inner.with_rng(|rng| inner.clock.next_version(rng));
    let envelopes = inner.with_rng(|rng| inner.shares().seal_keyring(&keyring, version, rng))?;
    let key = inner.fanout.keyspace().keyring_key();
    match inner.fanout.put(0, &key, envelopes[0].clone(), PutMode::Create).await {
        Ok(()) => {}
        Err(CallError::Backend(e)) if e.kind() == crate::BackendErrorKind::AlreadyExists => {
            return Ok(None);
        }
        Err(e) => {
            return Err(VaultError::Backend {
                operation: "keyring creation",
                outcomes: vec![inner.outcome(0, e.status())],
            });
        }
    }
    // Backend 0's slot is ours: we are the creator. Write the other slots.
    let writes = envelopes
        .iter()
        .enumerate()
        .skip(1)
        .map(|(idx, bytes)| inner.fanout.put(idx, &key, bytes.clone(), PutMode::Overwrite));
    let results = futures::future::join_all(writes).await;
    let written = 1 + results.iter().filter(|r| r.is_ok()).count();
    if written < inner.k() {
        let mut outcomes = vec![inner.outcome(0, OutcomeStatus::Ok)];
        outcomes.extend(results.iter().enumerate().map(|(i, r)| {
            inner.outcome(i + 1, r.as_ref().map_or_else(CallError::status, |_| OutcomeStatus::Ok))
        }));
        return Err(VaultError::Backend { operation: "keyring creation", outcomes });
    }
    tracing::info!(k = inner.k(), n = inner.n(), "created the store's keyring");
    Ok(Some(keyring))
}

/// Scrub's keyring step: rewrites missing or bad keyring slots.
pub(crate) async fn repair_keyring(inner: &Inner) -> Result<usize> {
    let slots = read_slots(inner).await;
    let Some((version, verified)) = find_keyring(inner, &slots).await else {
        return Err(VaultError::InsufficientShares { need: inner.k(), got: 0, outcomes: vec![] });
    };
    Ok(fix_slots(inner, &slots, version, &verified).await)
}
