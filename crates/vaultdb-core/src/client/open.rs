//! Opening a store: reading the keyring, or creating it on an empty store.
//!
//! Each backend has one keyring slot (`<prefix>/keyring`). On open the client reads all N
//! slots. If some version has K shares that verify, that is the keyring; the client checks
//! its own configuration against it and rewrites missing or bad slots.
//!
//! Only when *every* backend answered and *no* slot holds anything does the client create
//! a keyring. Creation is decided by backend 0's slot, written create-only: of two clients
//! opening an empty store at once, exactly one wins it; the winner then writes the other
//! slots, and the loser waits for the winner's keyring to become readable and uses it. So
//! both end up with one keyring. If any backend cannot be reached, nothing is created (the
//! keyring might live there), and open fails with `INSUFFICIENT_SHARES`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::Inner;
use super::call::CallError;
use super::fanout::{Source, Verified};
use super::shares::{Expect, MAX_KEYRING_SHARE_LEN};
use crate::envelope::{self, Kind};
use crate::error::{OutcomeStatus, Result, VaultError};
use crate::keyring::{KEYRING_TAG, Keyring};
use crate::naming::NamingKey;
use crate::version::Version;

/// How long a client waits for another client's keyring creation to finish.
const CREATION_WAIT: Duration = Duration::from_secs(10);

/// One backend's slot as read.
enum Slot {
    Empty,
    Share(Version, Bytes),
    /// A well-formed keyring share for another backend position.
    Misplaced(Bytes),
    Bad(String),
    Unreachable(CallError),
}

/// Reads every backend's slot, no further than [`MAX_KEYRING_SHARE_LEN`]: a larger object
/// there is a bad slot (named, and rewritten like any bad slot), not an unreachable backend.
async fn read_slots(inner: &Inner) -> Vec<Slot> {
    let key = inner.fanout.keyspace().keyring_key();
    let reads = inner.fanout.get_all(&key, MAX_KEYRING_SHARE_LEN).await;
    reads
        .into_iter()
        .enumerate()
        .map(|(idx, r)| match r {
            Err(CallError::Backend(e)) if e.kind() == crate::BackendErrorKind::TooLarge => {
                Slot::Bad(e.message().to_owned())
            }
            Err(e) => Slot::Unreachable(e),
            Ok(None) => Slot::Empty,
            Ok(Some(bytes)) => match envelope::decode(&bytes) {
                Err(e) => Slot::Bad(e.to_string()),
                Ok(env) if env.header.kind != Kind::Keyring => {
                    Slot::Bad("not a keyring share".into())
                }
                Ok(env) => {
                    let h = env.header;
                    if usize::from(h.x) != idx + 1 {
                        Slot::Misplaced(bytes)
                    } else {
                        Slot::Share(h.version, bytes)
                    }
                }
            },
        })
        .collect()
}

/// A keyring share written for another threshold, or at another backend position, means
/// the client's configuration is not the store's: say so rather than fail to read.
fn check_shape(inner: &Inner, slots: &[Slot]) -> Result<()> {
    for (idx, s) in slots.iter().enumerate() {
        let bytes = match s {
            Slot::Share(_, b) | Slot::Misplaced(b) => b,
            _ => continue,
        };
        let Ok(env) = envelope::decode(bytes) else {
            continue;
        };
        if env.header.threshold != inner.threshold() {
            return Err(VaultError::invalid_config(format!(
                "the store was created as {} but the client is configured as {}",
                env.header.threshold,
                inner.threshold()
            )));
        }
        if usize::from(env.header.x) != idx + 1 {
            return Err(VaultError::invalid_config(format!(
                "backend {} holds the keyring share of position {}, not {}: the backend list \
                 is in another order than when the store was created",
                inner.fanout.id(idx),
                env.header.x,
                idx + 1
            )));
        }
    }
    Ok(())
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
        if good.contains(&idx) || matches!(slot, Slot::Unreachable(_)) {
            continue;
        }
        let x = (idx + 1) as u8;
        let Ok(envelope) = inner.shares().derive(&subset, x, Kind::Keyring, version, KEYRING_TAG)
        else {
            continue;
        };
        match inner.fanout.put_overwrite(idx, &key, Bytes::from(envelope)).await {
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

/// Reads the keyring (creating it on an empty store) and checks the configuration.
pub(crate) async fn load_or_create_keyring(
    inner: &Inner,
    external: Option<&NamingKey>,
) -> Result<Keyring> {
    let deadline = tokio::time::Instant::now() + CREATION_WAIT;
    let mut delay = Duration::from_millis(20);
    loop {
        let slots = read_slots(inner).await;
        check_shape(inner, &slots)?;
        if let Some((version, verified)) = find_keyring(inner, &slots).await {
            let keyring = decode_keyring(&verified, external)?;
            keyring.check_config(inner.threshold(), inner.fanout.ids())?;
            fix_slots(inner, &slots, version, &verified).await;
            return Ok(keyring);
        }
        let unreachable: Vec<_> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Unreachable(e) => Some(inner.outcome(i, e.status())),
                _ => None,
            })
            .collect();
        if !unreachable.is_empty() {
            let present = slots.iter().filter(|s| matches!(s, Slot::Share(..))).count();
            return Err(VaultError::InsufficientShares {
                need: inner.k(),
                got: present,
                outcomes: unreachable,
            });
        }
        if slots.iter().all(|s| matches!(s, Slot::Empty))
            && let Some(keyring) = try_create(inner, external).await?
        {
            return Ok(keyring);
        }
        // Another client is creating the keyring (or a creation was interrupted): wait.
        if tokio::time::Instant::now() >= deadline {
            let outcomes = slots
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    inner.outcome(
                        i,
                        match s {
                            Slot::Empty => OutcomeStatus::Missing,
                            Slot::Share(..) => OutcomeStatus::Ok,
                            Slot::Bad(reason) => OutcomeStatus::Corrupt { reason: reason.clone() },
                            Slot::Misplaced(_) => {
                                OutcomeStatus::Corrupt { reason: "misplaced keyring share".into() }
                            }
                            Slot::Unreachable(e) => e.status(),
                        },
                    )
                })
                .collect();
            return Err(VaultError::InsufficientShares {
                need: inner.k(),
                got: slots.iter().filter(|s| matches!(s, Slot::Share(..))).count(),
                outcomes,
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
    };
    let version = inner.with_rng(|rng| inner.clock.next_version(rng));
    let envelopes = inner.with_rng(|rng| inner.shares().seal_keyring(&keyring, version, rng))?;
    let key = inner.fanout.keyspace().keyring_key();
    match inner.fanout.put_create(0, &key, envelopes[0].clone()).await {
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
        .map(|(idx, bytes)| inner.fanout.put_overwrite(idx, &key, bytes.clone()));
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
