//! The gate every operation passes first: the notices of a re-share (docs/FORMAT.md section
//! 18, docs/SECURITY.md "Re-sharing"), read on a lease.
//!
//! A client reads its store's two notices (`<prefix>/moved` and `<prefix>/migration`, one
//! object per backend) when it opens, in the same round trip as the keyring, and again in
//! the background once its last check is [`Settings::fence_check`] old. An operation starts
//! only while the last check that heard K backends *started* less than the lease (twice
//! `fence_check`) ago; after that it waits for a check itself. So a busy client never waits
//! for a check, and a client that cannot hear K backends stops within one lease.
//!
//! What the notices say:
//! - a moved notice (any one copy that verifies): the store has moved, every operation
//!   fails with `INVALID_CONFIG` telling the caller to reload its configuration;
//! - a migration state before `done`: the store is being filled by a re-share; only clients
//!   opened with [`VaultDbBuilder::migrating_from`] may use it, and they write only once the
//!   state carries the floor (every write's version is then above every old version).
//!
//! [`Settings::fence_check`]: super::Settings::fence_check
//! [`VaultDbBuilder::migrating_from`]: super::VaultDbBuilder::migrating_from

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::call::CallError;
use super::fanout::Fanout;
use super::notice::{Migration, Moved, NOTICE_MAX, NoticeKey, ResharePhase};
use super::{Inner, VaultDb};
use crate::backend::Key;
use crate::error::{Result, VaultError};
use crate::naming::KeySpace;

/// What an operation is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// One backend's answer to a notice check: its moved notice and migration state objects.
type Answer = Result<(Option<Bytes>, Option<Bytes>), CallError>;

/// The notices as read from every backend, not yet verified.
pub(crate) struct Fetched {
    started: Instant,
    answers: Vec<Answer>,
}

/// A store's notices as last read, shared by a client and its system namespace.
pub(crate) struct Gate {
    every: Option<Duration>,
    moved_key: Key,
    migration_key: Key,
    key: OnceLock<NoticeKey>,
    state: Mutex<State>,
    refreshing: AtomicBool,
}

#[derive(Default)]
struct State {
    /// When the last check that heard K backends started.
    checked: Option<Instant>,
    /// The moved notice, once seen (it stays).
    moved: Option<Moved>,
    /// The newest migration state seen.
    migration: Option<Migration>,
}

impl Gate {
    pub(crate) fn new(keyspace: &KeySpace, every: Option<Duration>) -> Self {
        Self {
            every,
            moved_key: keyspace.moved_key(),
            migration_key: keyspace.migration_key(),
            key: OnceLock::new(),
            state: Mutex::default(),
            refreshing: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the key the notices are checked with (once the keyring is read).
    pub(crate) fn set_key(&self, key: NoticeKey) {
        let _ = self.key.set(key);
    }

    /// The key of the moved notice and of the migration state.
    pub(crate) fn keys(&self) -> (&Key, &Key) {
        (&self.moved_key, &self.migration_key)
    }

    /// Reads both notices on every backend, until K backends answered (then stragglers as
    /// [`Fanout::gather`] says).
    pub(crate) async fn fetch(&self, fanout: &Fanout) -> Fetched {
        let started = Instant::now();
        let calls = (0..fanout.n()).map(|idx| async move {
            let (m, s) = futures::future::join(
                fanout.get_one(idx, &self.moved_key, NOTICE_MAX),
                fanout.get_one(idx, &self.migration_key, NOTICE_MAX),
            )
            .await;
            Ok((m?, s?))
        });
        let answers =
            fanout.gather(calls, fanout.k(), Result::is_ok, || Err(CallError::NotAwaited)).await;
        Fetched { started, answers }
    }

    /// Takes in what a check read: a moved notice or a newer migration state is kept; the
    /// check renews the lease if K backends answered. Returns the floor to observe, if any,
    /// and whether the lease was renewed.
    pub(crate) fn absorb(
        &self,
        fetched: Fetched,
        k: usize,
    ) -> (Option<crate::version::Version>, bool) {
        let Some(key) = self.key.get() else { return (None, false) };
        let mut state = self.state();
        let mut answered = 0;
        for answer in &fetched.answers {
            let Ok((moved, migration)) = answer else { continue };
            answered += 1;
            if let Some(m) = moved.as_deref().and_then(|b| key.open_moved(b))
                && state.moved.is_none()
            {
                tracing::warn!(to = %m.to, "this store has moved (re-shared)");
                state.moved = Some(m);
            }
            if let Some(m) = migration.as_deref().and_then(|b| key.open_migration(b))
                && state.migration.as_ref().is_none_or(|old| m.phase > old.phase)
            {
                state.migration = Some(m);
            }
        }
        let renewed = answered >= k;
        if renewed && state.checked.is_none_or(|c| c < fetched.started) {
            state.checked = Some(fetched.started);
        }
        let floor =
            state.migration.as_ref().filter(|m| m.phase >= ResharePhase::Copying).map(|m| m.floor);
        (floor, renewed)
    }

    /// Whether a moved notice was seen.
    pub(crate) fn moved(&self) -> bool {
        self.state().moved.is_some()
    }

    /// The newest migration state seen.
    pub(crate) fn migration(&self) -> Option<Migration> {
        self.state().migration.clone()
    }

    /// Whether a re-share into this store is unfinished (or not started) as far as this
    /// client knows: a migrating client then reads through to the old store.
    pub(crate) fn migrating(&self) -> bool {
        self.state().migration.as_ref().is_none_or(|m| m.phase < ResharePhase::Done)
    }

    /// The verdict on an operation, from what was last read.
    fn verdict(&self, access: Access, migrating_client: bool) -> Result<()> {
        let state = self.state();
        if let Some(m) = &state.moved {
            return Err(VaultError::invalid_config(format!(
                "this store has moved to a new configuration ({}); reload the configuration \
                 and open the new store",
                m.to
            )));
        }
        match (&state.migration, migrating_client, access) {
            (Some(m), false, _) if m.phase < ResharePhase::Done => {
                Err(VaultError::invalid_config(format!(
                    "this store is being filled by a re-share from {} (not done yet): open it \
                     with the old store as `migrating_from`, or wait until the re-share is done",
                    m.from
                )))
            }
            (None, true, Access::Write) => Err(VaultError::invalid_config(
                "no re-share into this store has started yet: writes wait until it has fenced \
                 the old store and recorded the version floor"
                    .to_owned(),
            )),
            (Some(m), true, Access::Write) if m.phase < ResharePhase::Copying => {
                Err(VaultError::invalid_config(
                    "the re-share into this store is still fencing the old store: writes wait \
                     until it has recorded the version floor"
                        .to_owned(),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl Inner {
    /// Reads the notices now and takes them in; fails if fewer than K backends answered:
    /// for a read with `INSUFFICIENT_SHARES`, as a read that hears fewer than K backends
    /// does; for a write with `BACKEND_ERROR`, as a write does.
    pub(crate) async fn check_notices(&self, access: Access) -> Result<()> {
        let fetched = self.gate.fetch(&self.fanout).await;
        let outcomes = self.fanout.outcomes_of(&fetched.answers);
        let answered = fetched.answers.iter().filter(|a| a.is_ok()).count();
        let (floor, renewed) = self.gate.absorb(fetched, self.k());
        if let Some(floor) = floor {
            self.clock.observe(floor.micros());
        }
        match (renewed, access) {
            (true, _) => Ok(()),
            (false, Access::Read) => {
                Err(VaultError::InsufficientShares { need: self.k(), got: answered, outcomes })
            }
            (false, Access::Write) => Err(VaultError::Backend {
                operation: "the check of the store's re-share notices",
                outcomes,
            }),
        }
    }
}

impl VaultDb {
    /// Lets an operation start, or says why not (see the module docs).
    pub(crate) async fn admit(&self, access: Access) -> Result<()> {
        let gate = &self.inner.gate;
        if !self.fenced {
            return Ok(());
        }
        // With the checks off, the notices read when the client opened still count.
        let Some(every) = gate.every else {
            return gate.verdict(access, self.inner.migrating_from.get().is_some());
        };
        if gate.state().moved.is_none() {
            let age = gate.state().checked.map(|c| c.elapsed());
            match age {
                Some(age) if age < every => {}
                Some(age) if age < every.saturating_mul(2) => self.check_in_background(),
                _ => self.inner.check_notices(access).await?,
            }
        }
        gate.verdict(access, self.inner.migrating_from.get().is_some())
    }

    /// Starts a check of the notices in the background, unless one is running.
    fn check_in_background(&self) {
        let gate = &self.inner.gate;
        if gate.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        self.inner.background.spawn(async move {
            if let Err(e) = inner.check_notices(Access::Read).await {
                tracing::debug!(error = %e, "background check of the re-share notices");
            }
            inner.gate.refreshing.store(false, Ordering::Release);
        });
    }

    /// The old store a migrating client reads through to, while the re-share is not done.
    pub(crate) fn read_through(&self) -> Option<&VaultDb> {
        let old = self.inner.migrating_from.get()?;
        self.inner.gate.migrating().then_some(old)
    }
}

impl VaultDb {
    /// The old store to read `id` from, after it was not found here: `Some` while a re-share
    /// into this store is not done and this store holds no tombstone of `id` (a delete made
    /// here hides the old store's copy). One listing of the record, on reads that found
    /// nothing only.
    pub(crate) async fn read_through_for(&self, id: &str) -> Result<Option<&VaultDb>> {
        let Some(old) = self.read_through() else { return Ok(None) };
        let inner = &self.inner;
        let tag = inner.naming.tag(id);
        let listing = inner.list_tag_from_k(tag).await?;
        let deletes = inner.fanout.deletes(tag, &inner.tombstone_key(), &listing);
        Ok(deletes.newest().is_none().then_some(old))
    }
}

impl VaultDb {
    /// The phase of the re-share into this store, as this client last read it (`None`: no
    /// re-share into it seen).
    pub fn reshare_phase(&self) -> Option<ResharePhase> {
        self.inner.gate.migration().map(|m| m.phase)
    }

    /// Whether this client has seen that its store moved (a re-share from it): its
    /// operations then fail with `INVALID_CONFIG`.
    pub fn has_moved(&self) -> bool {
        self.inner.gate.moved()
    }

    /// The old store of the re-share into this store, in words (the migration state's
    /// description: K, N, mode, backend ids, prefix and fingerprint; docs/FORMAT.md section
    /// 18), as this client last read it; `None`: no re-share into it seen.
    pub fn reshare_from(&self) -> Option<String> {
        self.inner.gate.migration().map(|m| m.from)
    }

    /// Whether this client reads through to an old store while a re-share into its store
    /// is not done (opened with
    /// [`migrating_from`](super::VaultDbBuilder::migrating_from), or told so later with
    /// [`VaultDb::follow_reshare`]).
    pub fn is_migrating_client(&self) -> bool {
        self.inner.migrating_from.get().is_some()
    }

    /// Reads the store's re-share notices now (the check a client otherwise makes once a
    /// `fence_check` on its operations): afterwards [`VaultDb::reshare_phase`] and
    /// [`VaultDb::has_moved`] say what the backends hold. A no-op with the checks off.
    ///
    /// # Errors
    /// `INSUFFICIENT_SHARES` when fewer than K backends answered.
    pub async fn refresh_notices(&self) -> Result<()> {
        if self.inner.gate.every.is_none() {
            return Ok(());
        }
        self.inner.check_notices(Access::Read).await
    }

    /// Makes this client, opened alone, a migrating client of `old` (as if opened with
    /// [`migrating_from`](super::VaultDbBuilder::migrating_from)): for a re-share into this
    /// store that started after the client opened. From then on, until the re-share is
    /// done, reads that find nothing here read `old`, `list` returns both stores' records,
    /// and writes go here once the floor is recorded. Calling it again with the same old
    /// store does nothing.
    ///
    /// # Errors
    /// `INVALID_CONFIG` if this client has the re-share checks off, has seen no re-share
    /// into its store, if `old` is not the store that re-share comes from (its description
    /// and fingerprint differ from the migration state's), or if the client already follows
    /// another store.
    pub fn follow_reshare(&self, old: &VaultDb) -> Result<()> {
        if self.inner.gate.every.is_none() {
            return Err(VaultError::invalid_config(
                "a migrating client needs the re-share checks on (fence_check)".to_owned(),
            ));
        }
        let Some(from) = self.reshare_from() else {
            return Err(VaultError::invalid_config(
                "no re-share into this store has been seen: nothing to follow".to_owned(),
            ));
        };
        let named = super::reshare::describe_clipped(old);
        if named != from {
            return Err(VaultError::invalid_config(format!(
                "the re-share into this store comes from {from}, not from {named}"
            )));
        }
        if let Some(set) = self.inner.migrating_from.get() {
            return match super::reshare::describe_clipped(set) == from {
                true => Ok(()),
                false => Err(VaultError::invalid_config(
                    "this client already reads through to another store".to_owned(),
                )),
            };
        }
        let old = VaultDb { fenced: false, ..old.clone() };
        if let Some(system) = &self.inner.system {
            let _ = system.migrating_from.set(old.system());
        }
        let _ = self.inner.migrating_from.set(old);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::notice::Cursor;
    use crate::naming::NamingKey;
    use crate::version::Version;

    fn gate(naming: &NamingKey) -> Gate {
        let g = Gate::new(&KeySpace::new("p").unwrap(), Some(Duration::from_secs(10)));
        g.set_key(NoticeKey::new(naming));
        g
    }

    fn state(phase: ResharePhase, floor: u64) -> Migration {
        Migration {
            phase,
            floor: Version::from_parts(floor, 0),
            cursor: Cursor::Start,
            copied: 0,
            skipped: 0,
            at: 0,
            from: "old".into(),
        }
    }

    fn fetched(answers: Vec<Answer>) -> Fetched {
        Fetched { started: Instant::now(), answers }
    }

    #[test]
    fn a_check_renews_the_lease_only_with_k_answers_and_keeps_the_newest_phase() {
        let naming = NamingKey::from_bytes([7; 32]);
        let key = NoticeKey::new(&naming);
        let g = gate(&naming);
        let fencing = key.migration(&state(ResharePhase::Fencing, 0));
        let copying = key.migration(&state(ResharePhase::Copying, 42));
        let down = || Err(CallError::NotAwaited);

        // One answer of three, K = 2: no lease, but what it said is kept.
        let (floor, renewed) =
            g.absorb(fetched(vec![Ok((None, Some(fencing.clone()))), down(), down()]), 2);
        assert_eq!((floor, renewed), (None, false));
        assert_eq!(g.migration().map(|m| m.phase), Some(ResharePhase::Fencing));
        assert!(g.verdict(Access::Write, true).is_err(), "no floor yet: writes wait");
        assert!(g.verdict(Access::Read, true).is_ok());
        assert!(g.verdict(Access::Read, false).is_err(), "only migrating clients");

        // Two answers, one newer: the floor is given to observe, the lease renewed.
        let (floor, renewed) = g.absorb(
            fetched(vec![Ok((None, Some(copying))), Ok((None, Some(fencing.clone()))), down()]),
            2,
        );
        assert_eq!((floor, renewed), (Some(Version::from_parts(42, 0)), true));
        assert!(g.verdict(Access::Write, true).is_ok());
        // An older state read later (a rolled-back backend) does not take the phase back.
        g.absorb(fetched(vec![Ok((None, Some(fencing))), Ok((None, None)), down()]), 2);
        assert_eq!(g.migration().map(|m| m.phase), Some(ResharePhase::Copying));
    }

    #[test]
    fn one_valid_moved_notice_is_enough_and_a_forged_one_is_ignored() {
        let naming = NamingKey::from_bytes([7; 32]);
        let g = gate(&naming);
        let forged = NoticeKey::new(&NamingKey::from_bytes([8; 32]))
            .moved(&Moved { at: 1, to: "elsewhere".into() });
        g.absorb(fetched(vec![Ok((Some(forged), None)), Ok((None, None))]), 2);
        assert!(!g.moved());
        assert!(g.verdict(Access::Write, false).is_ok());
        let real = NoticeKey::new(&naming).moved(&Moved { at: 1, to: "3-of-5".into() });
        g.absorb(fetched(vec![Ok((None, None)), Ok((Some(real), None)), Ok((None, None))]), 2);
        assert!(g.moved());
        let err = g.verdict(Access::Read, false).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidConfig);
        assert!(err.to_string().contains("3-of-5"), "{err}");
    }
}
