//! The VaultDb client: versioned split storage over N backends.
//!
//! ```no_run
//! # async fn demo() -> vaultdb_core::Result<()> {
//! use vaultdb_core::{MemoryBackend, Record, VaultDb};
//!
//! let db = VaultDb::builder()
//!     .backend(MemoryBackend::new("aws", "AWS S3"))
//!     .backend(MemoryBackend::new("gcp", "Google Cloud"))
//!     .backend(MemoryBackend::new("azure", "Azure Blob"))
//!     .threshold(2)
//!     .open()
//!     .await?;
//! db.put(Record::json("user-42", &serde_json::json!({"name": "Alice"}))?).await?;
//! let got = db.get("user-42").await?;
//! assert_eq!(got.record.data_json::<serde_json::Value>()?["name"], "Alice");
//! # Ok(()) }
//! ```
//!
//! # Layers
//!
//! The client is built in layers, each module calling only the layers below it (and this
//! module's shared state, [`VaultDb`] and its `Inner`):
//!
//! - operations: `write` (`put`, `put_stream`, `delete`), `read` (`get`, `get_range`,
//!   `get_stream`) and `maintain` (`list`, `repair`, `scrub`, `health`); beneath them
//!   `head` (finding and verifying a record's newest version; read-repair), `repair`
//!   (repairing one record) and `open` (the keyring: open, and scrub's keyring step);
//! - fan-out: `fanout`, the per-backend calls (write one version's objects, delete keys,
//!   list a tag, fetch and verify with hedging, probe), the only module that calls
//!   backends;
//! - base: `shares`, the pure share codec (seal, check, open, confirm, derive; no I/O, no
//!   async); `call`, timeouts and retries ([`CallPolicy`]); `budget`, the in-flight byte
//!   budget; `settings`, [`Settings`] and their checks; `marks`, the encoding of marks and
//!   settled objects; `background`, work that outlives the operation that started it.
//!
//! The operations also use `fast` (one-round-trip reads from marks and settled objects;
//! the settler), `tombstone`, and `gate`, which every operation passes first (the store's
//! re-share notices, encoded by `notice` in the base layer, read on a lease; a migrating
//! client's read-through to the old store). `reshare` ([`VaultDb::reshare`]) moves a store to
//! a new configuration with the operations of both.
//!
//! Within the operations, `read` uses `head`, `head` uses `repair` (read-repair), and
//! `maintain` uses `repair` and `open`; `write` uses only the layers below. No two modules
//! import each other. docs/SECURITY.md gives the invariants each operation keeps.

mod background;
mod budget;
mod call;
mod fanout;
mod fast;
mod gate;
mod head;
mod maintain;
mod marks;
mod notice;
mod open;
mod read;
mod repair;
mod reshare;
mod settings;
mod shares;
mod tombstone;
mod write;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use call::CallPolicy;
pub use maintain::{BackendHealth, Health, ListResult, RecordPage, ScrubReport};
pub use notice::ResharePhase;
pub use read::{GetResult, ReadStream};
pub use repair::RepairReport;
pub use reshare::{ReshareOptions, ReshareProgress, ReshareReport};
pub use settings::{DEFAULT_MAX_INFLIGHT_BYTES, DEFAULT_MAX_RECORD_SIZE, DEFAULT_PREFIX, Settings};
pub use write::{DeleteResult, PutResult};

pub use crate::record::RecordMeta;

use self::budget::Budget;
use self::fanout::{Fanout, Source};
use self::shares::Shares;
use crate::backend::StorageBackend;
use crate::compact::Mode;
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{KeySpace, NamingKey};
use crate::padding::Padding;
use crate::rng::{RandomSource, ThreadRng};
use crate::version::Clock;
use crate::xorida::Threshold;

/// Builds a [`VaultDb`].
///
/// [`VaultDb::builder`] starts from the default [`Settings`], [`VaultDb::builder_with`]
/// from given ones; each setter then changes one setting. Settings are only ever given
/// whole at the start, so no call can undo an earlier setter.
pub struct VaultDbBuilder {
    backends: Vec<Arc<dyn StorageBackend>>,
    threshold: Option<usize>,
    settings: Settings,
    naming_key: Option<NamingKey>,
    rng: Option<Box<dyn RandomSource>>,
    wall: Option<WallClock>,
    migrating_from: Option<VaultDb>,
}

impl fmt::Debug for VaultDbBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultDbBuilder")
            .field("backends", &self.backends.iter().map(|b| b.id()).collect::<Vec<_>>())
            .field("threshold", &self.threshold)
            .field("settings", &self.settings)
            .field("naming_key", &self.naming_key.as_ref().map(|_| "<configured>"))
            .finish_non_exhaustive()
    }
}

impl VaultDbBuilder {
    /// Adds a backend. Order matters: backend i holds the shares at x = i + 1, and the
    /// keyring records the order.
    pub fn backend(mut self, backend: impl StorageBackend) -> Self {
        self.backends.push(Arc::new(backend));
        self
    }

    /// Adds a shared backend.
    pub fn backend_arc(mut self, backend: Arc<dyn StorageBackend>) -> Self {
        self.backends.push(backend);
        self
    }

    /// The threshold K (required).
    pub fn threshold(mut self, k: usize) -> Self {
        self.threshold = Some(k);
        self
    }

    /// The key prefix in every backend (default `vaultdb`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// Supplies the naming key from configuration (e.g. a KMS) instead of generating one and
    /// keeping it in the keyring.
    pub fn naming_key(mut self, key: NamingKey) -> Self {
        self.naming_key = Some(key);
        self
    }

    /// Replaces the random source (tests and known-answer runs only: real deployments keep
    /// the default OS-seeded CSPRNG).
    pub fn rng(mut self, rng: Box<dyn RandomSource>) -> Self {
        self.rng = Some(rng);
        self
    }

    /// Replaces the wall clock that marks are stamped with and settle decisions read
    /// (tests that run on virtual time only: real deployments keep the system clock).
    #[doc(hidden)]
    pub fn wall_clock(mut self, wall: WallClock) -> Self {
        self.wall = Some(wall);
        self
    }

    /// Opens this store as the target of a re-share from `old` (docs/SECURITY.md
    /// "Re-sharing"): until the re-share is done, a read that finds nothing at all here
    /// (no version and no tombstone) reads `old`, and `list` returns both stores' records.
    /// Writes and deletes go here only, and wait until the re-share has recorded its
    /// version floor. Once the re-share is done the client stands alone.
    pub fn migrating_from(mut self, old: VaultDb) -> Self {
        self.migrating_from = Some(VaultDb { fenced: false, ..old });
        self
    }

    /// Checks the configuration, reads (or on an empty store, creates) the keyring, and
    /// returns the client.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for a bad threshold, quorum or backend list, or a configuration that
    /// differs from the store's keyring; `INSUFFICIENT_SHARES` or `BACKEND_ERROR` if the
    /// keyring cannot be read or created.
    pub async fn open(self) -> Result<VaultDb> {
        let Checked { threshold, write_quorum, keyspace } = self.checked()?;
        let s = &self.settings;
        if self.migrating_from.is_some() && s.fence_check.is_none() {
            // It would never learn that the floor was recorded, nor that the re-share is done.
            return Err(VaultError::invalid_config(
                "a client opened with migrating_from needs the re-share checks on \
                 (fence_check)"
                    .to_owned(),
            ));
        }
        // The system namespace (see `VaultDb::system`): the same backends, under
        // `<prefix>/sys/`, named with a key derived from the store's naming key.
        let sys_keyspace = KeySpace::new(&system_prefix(&s.prefix))?;
        let system_backends = self.backends.clone();
        let gate = Arc::new(gate::Gate::new(&keyspace, s.fence_check));
        let mut inner = Inner::new(
            self.backends,
            threshold,
            write_quorum,
            keyspace,
            self.settings.clone(),
            self.rng.map(Mutex::new),
            Arc::clone(&gate),
        );
        // The re-share notices are read in the keyring's round trip, and checked once the
        // keyring gives their key.
        let (keyring, notices) = futures::future::join(
            open::load_or_create_keyring(&inner, self.naming_key.as_ref()),
            gate.fetch(&inner.fanout),
        )
        .await;
        let (keyring, all_slots_good) = keyring?;
        keyring.check_mode(s.mode)?;
        inner.fanout.set_mode(keyring.mode);
        let mut system = Inner::new(
            system_backends,
            threshold,
            write_quorum,
            sys_keyspace,
            self.settings,
            None,
            Arc::clone(&gate),
        );
        if let Some(wall) = self.wall {
            inner.wall = Arc::clone(&wall);
            system.wall = wall;
        }
        system.fanout.set_mode(keyring.mode);
        system.naming = keyring.naming_key.derive(SYSTEM_NAMING_PURPOSE);
        gate.set_key(notice::NoticeKey::new(&keyring.naming_key));
        if let (Some(floor), _) = gate.absorb(notices, inner.k()) {
            inner.clock.observe(floor.micros());
        }
        if let Some(old) = self.migrating_from {
            let _ = system.migrating_from.set(old.system());
            let _ = inner.migrating_from.set(old);
        }
        inner.naming = keyring.naming_key;
        inner.system = Some(Arc::new(system));
        let db = VaultDb { inner: Arc::new(inner), fenced: true };
        // The open stopped reading at K good keyring shares: check (and rewrite) the other
        // slots in the background, as a degraded read repairs its record, so that a lost or
        // swapped keyring share does not wait for a scrub.
        if !all_slots_good && db.inner.settings.read_repair {
            let db2 = db.clone();
            db.inner.background.spawn(async move {
                let db = db2;
                if let Err(e) = open::repair_keyring(&db.inner).await {
                    tracing::debug!(error = %e, "background keyring check");
                }
            });
        }
        Ok(db)
    }

    /// Every check of the configuration that needs no backend call, in one place
    /// ([`Settings::validate`], which configuration files call too).
    fn checked(&self) -> Result<Checked> {
        let k =
            self.threshold.ok_or_else(|| VaultError::invalid_config("no threshold configured"))?;
        let ids: Vec<String> = self.backends.iter().map(|b| b.id().to_owned()).collect();
        let threshold = self.settings.validate(k, &ids)?;
        let w = self.settings.write_quorum.unwrap_or(ids.len());
        let keyspace = KeySpace::new(&self.settings.prefix)?;
        Ok(Checked { threshold, write_quorum: w, keyspace })
    }
}

/// Writes [`VaultDbBuilder`]'s setters that set one field of its [`Settings`] (each documented
/// on the field).
macro_rules! settings_setters {
    ($($setter:ident($arg:ty) => $field:ident $(in $wrap:ident)?),* $(,)?) => {
        impl VaultDbBuilder {
            $(
                #[doc = concat!("Sets [`Settings::", stringify!($field), "`].")]
                pub fn $setter(mut self, value: $arg) -> Self {
                    self.settings.$field = settings_setters!(@value value $($wrap)?);
                    self
                }
            )*
        }
    };
    (@value $v:ident) => {
        $v
    };
    (@value $v:ident $wrap:ident) => {
        $wrap($v)
    };
}

settings_setters! {
    write_quorum(usize) => write_quorum in Some,
    retain_versions(usize) => retain_versions,
    padding(Padding) => padding,
    call_policy(CallPolicy) => call_policy,
    hedge_after(Option<Duration>) => hedge_after,
    read_repair(bool) => read_repair,
    grace_period(Duration) => grace_period,
    max_record_size(usize) => max_record_size,
    segment_size(usize) => segment_size,
    max_inflight_bytes(usize) => max_inflight_bytes,
    fast_reads(bool) => fast_reads,
    settle_after(Duration) => settle_after in Some,
    mode(Mode) => mode in Some,
    fence_check(Option<Duration>) => fence_check,
}

/// What [`VaultDbBuilder::checked`] derives from a valid configuration.
struct Checked {
    threshold: Threshold,
    write_quorum: usize,
    keyspace: KeySpace,
}

/// Counters of degraded and repaired operations (never silent: also logged). The fan-out
/// layer counts bad shares itself.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Reads that succeeded with a backend missing, failing or serving bad data.
    pub(crate) degraded_reads: AtomicU64,
    /// Shares rewritten by repair.
    pub(crate) shares_repaired: AtomicU64,
    /// Objects removed by cleanup (superseded versions, abandoned partial writes).
    pub(crate) objects_removed: AtomicU64,
    /// Reads answered from marks and settled objects, without listing.
    pub(crate) fast_reads: AtomicU64,
}

/// Counters of degraded and repaired operations since a client was opened (see
/// [`VaultDb::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Reads that succeeded with a backend missing, failing or serving bad data.
    pub degraded_reads: u64,
    /// Shares found bad (CRC, format, binding or polynomial check).
    pub bad_shares: u64,
    /// Shares rewritten by repair.
    pub shares_repaired: u64,
    /// Objects removed by cleanup (superseded versions, abandoned partial writes).
    pub objects_removed: u64,
    /// Reads (and deletes found) answered from marks and settled objects, without listing.
    pub fast_reads: u64,
}

/// The state of one client, shared by its clones.
pub(crate) struct Inner {
    /// The backends and how to call them (and, through it, the share codec).
    pub(crate) fanout: Fanout,
    pub(crate) write_quorum: usize,
    pub(crate) naming: NamingKey,
    pub(crate) settings: Settings,
    pub(crate) clock: &'static Clock,
    rng: Option<Mutex<Box<dyn RandomSource>>>,
    pub(crate) stats: Stats,
    pub(crate) budget: Budget,
    /// The wall clock (microseconds since the epoch) marks are stamped with and settle
    /// decisions read; replaceable for tests that run on virtual time.
    pub(crate) wall: WallClock,
    /// Work started by operations that have returned (`background.rs`).
    pub(crate) background: Arc<background::Background>,
    /// The system namespace's client ([`VaultDb::system`]); `None` in that client itself.
    system: Option<Arc<Inner>>,
    /// The store's re-share notices as last read (`gate.rs`), shared with the system
    /// namespace's client.
    pub(crate) gate: Arc<gate::Gate>,
    /// The store a re-share fills this one from, read through while it is not done
    /// ([`VaultDbBuilder::migrating_from`], or later [`VaultDb::follow_reshare`]).
    pub(crate) migrating_from: OnceLock<VaultDb>,
    /// The ids `list_page` cuts its pages from during a re-share, and when they were listed
    /// (`maintain.rs`, [`maintain::MigratingUnion`]).
    pub(crate) migrating_union: maintain::UnionCache,
}

/// A source of wall-clock time in microseconds since the epoch.
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What the system namespace's naming key is derived for (docs/FORMAT.md section 9).
const SYSTEM_NAMING_PURPOSE: &str = "system-records";

/// The key prefix of the system namespace under a store's prefix.
fn system_prefix(prefix: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => "sys".to_owned(),
        p => format!("{p}/sys"),
    }
}

impl Inner {
    /// The key that authenticates this store's marks and settled objects.
    pub(crate) fn mark_key(&self) -> marks::MarkKey {
        marks::MarkKey::new(&self.naming)
    }

    /// The key that authenticates this store's tombstones.
    pub(crate) fn tombstone_key(&self) -> tombstone::TombstoneKey {
        tombstone::TombstoneKey::new(&self.naming)
    }

    /// Where a store keeps data: its records' key space, and its system namespace's.
    pub(crate) fn data_keyspaces(&self) -> Vec<KeySpace> {
        let sys = KeySpace::new(&system_prefix(&self.settings.prefix)).ok();
        std::iter::once(self.fanout.keyspace().clone()).chain(sys).collect()
    }

    /// How many listings a read waits for (see [`Settings::rollback_tolerance`]).
    pub(crate) fn read_listings(&self) -> usize {
        (self.k() + self.settings.rollback_tolerance).min(self.n())
    }

    fn new(
        backends: Vec<Arc<dyn StorageBackend>>,
        threshold: Threshold,
        write_quorum: usize,
        keyspace: KeySpace,
        settings: Settings,
        rng: Option<Mutex<Box<dyn RandomSource>>>,
        gate: Arc<gate::Gate>,
    ) -> Self {
        let n = backends.len();
        let shares = Shares::new(threshold, settings.padding);
        let fanout = Fanout::new(backends, &settings, keyspace, shares);
        let budget =
            Budget::new(settings.max_inflight_bytes, settings.segment_size, n, settings.padding);
        Self {
            fanout,
            write_quorum,
            naming: NamingKey::from_bytes([0; 32]),
            settings,
            clock: Clock::global(),
            rng,
            stats: Stats::default(),
            budget,
            background: Arc::default(),
            wall: Arc::new(wall_micros),
            system: None,
            gate,
            migrating_from: OnceLock::new(),
            migrating_union: maintain::UnionCache::default(),
        }
    }
}

impl Inner {
    /// Runs `f` with the configured random source (the per-thread CSPRNG by default).
    pub(crate) fn with_rng<R>(&self, f: impl FnOnce(&mut dyn RandomSource) -> R) -> R {
        match &self.rng {
            Some(m) => {
                let mut guard = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                f(guard.as_mut())
            }
            None => f(&mut ThreadRng),
        }
    }

    pub(crate) fn shares(&self) -> &Shares {
        self.fanout.shares()
    }

    pub(crate) fn threshold(&self) -> Threshold {
        self.shares().threshold()
    }

    pub(crate) fn n(&self) -> usize {
        self.fanout.n()
    }

    pub(crate) fn k(&self) -> usize {
        self.fanout.k()
    }

    /// How many backends must list record objects for a store without a keyring to count
    /// as holding data (a lost keyring, never replaced; docs/SECURITY.md "A lost keyring"):
    /// min(K, W-K+1). A record written with W acknowledgements is on W backends, so with
    /// fewer than K of them hiding it at least W-K+1 still list it; and with W >= K+1, one
    /// backend planting objects cannot make an empty store look full.
    pub(crate) fn data_holders(&self) -> usize {
        let (k, w) = (self.k(), self.write_quorum);
        k.min(w.saturating_sub(k) + 1).max(1)
    }

    /// Whether this store holds record objects on [`Inner::data_holders`] backends: what was
    /// found (for an error message), or `None`. Fewer holders are logged and ignored when
    /// `creating` (a store is about to be made over them).
    pub(crate) async fn holds_data(&self, creating: bool) -> Option<String> {
        let found = self.fanout.record_holders(&self.data_keyspaces()).await;
        if found.len() >= self.data_holders() {
            return Some(found.join("; "));
        }
        if creating && !found.is_empty() {
            tracing::warn!(
                holders = %found.join("; "),
                "too few backends list record objects to hold a record; a new store is made \
                 over them (docs/SECURITY.md, \"A lost keyring\")"
            );
        }
        None
    }

    pub(crate) fn outcome(&self, idx: usize, status: OutcomeStatus) -> BackendOutcome {
        self.fanout.outcome(idx, status)
    }

    /// The sources of one version's head shares (record or manifest) on its holders, read no
    /// further than their listed size or, failing that, the largest head the settings allow
    /// (see [`Shares::max_share_len`]).
    pub(crate) fn head_sources(&self, holders: &[(usize, fanout::Listed)]) -> Vec<(usize, Source)> {
        let bound = self
            .shares()
            .max_share_len(crate::envelope::Kind::Record, self.settings.max_record_size as u64);
        let listed = holders.iter().map(|(i, l)| (*i, l.key.clone(), l.size));
        fanout::listed_sources(listed, self.k(), bound)
    }
}

/// True if an operation's outcomes show a backend that failed, lacked its share or served
/// bad data (a backend not asked because others answered first does not count).
pub(crate) fn degraded(outcomes: &[BackendOutcome]) -> bool {
    outcomes.iter().any(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped))
}

/// A client for one VaultDB store. Cheap to clone (an `Arc` inside); safe to share across
/// tasks.
#[derive(Clone)]
pub struct VaultDb {
    pub(crate) inner: Arc<Inner>,
    /// Whether operations pass the gate (`gate.rs`); off only in the handles a re-share
    /// uses on the stores it moves between, and in a migrating client's handle of the old
    /// store.
    pub(crate) fenced: bool,
}

impl fmt::Debug for VaultDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultDb")
            .field("backends", &self.inner.fanout.ids())
            .field("threshold", &self.inner.threshold())
            .field("write_quorum", &self.inner.write_quorum)
            .finish_non_exhaustive()
    }
}

impl VaultDb {
    /// A builder with default settings and no backends.
    pub fn builder() -> VaultDbBuilder {
        Self::builder_with(Settings::default())
    }

    /// A builder starting from `settings` (no backends). The builder's setters change
    /// single settings from there:
    ///
    /// ```
    /// use vaultdb_core::{Settings, VaultDb};
    ///
    /// let mut settings = Settings::default();
    /// settings.prefix = "tenant-7".into();
    /// let builder = VaultDb::builder_with(settings).threshold(2).write_quorum(2);
    /// # let _ = builder;
    /// ```
    pub fn builder_with(settings: Settings) -> VaultDbBuilder {
        VaultDbBuilder {
            backends: Vec::new(),
            threshold: None,
            settings,
            naming_key: None,
            rng: None,
            wall: None,
            migrating_from: None,
        }
    }

    /// The threshold K-of-N.
    pub fn threshold(&self) -> Threshold {
        self.inner.threshold()
    }

    /// The store's storage mode, as its keyring records it.
    pub fn mode(&self) -> Mode {
        self.inner.shares().mode()
    }

    /// The write quorum W.
    pub fn write_quorum(&self) -> usize {
        self.inner.write_quorum
    }

    /// The backends' ids, in share order.
    pub fn backend_ids(&self) -> &[String] {
        self.inner.fanout.ids()
    }

    /// The backends, in share order.
    pub fn backends(&self) -> &[Arc<dyn StorageBackend>] {
        self.inner.fanout.backends()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The name tag of a record id: what backends and logs see instead of the id.
    pub fn name_tag(&self, id: &str) -> crate::naming::NameTag {
        self.inner.naming.tag(id)
    }

    /// The store's system namespace: a client over the same backends whose records live
    /// under `<prefix>/sys/` and are named with a key derived from the store's naming key,
    /// so they never mix with (or show up in [`VaultDb::list`] among) the callers' records.
    /// The `vaultdb` binary keeps its audit checkpoints there. Every operation of
    /// [`VaultDb`] works on it, with the same guarantees. (The system namespace's own
    /// `system()` is itself.)
    pub fn system(&self) -> VaultDb {
        match &self.inner.system {
            Some(system) => VaultDb { inner: Arc::clone(system), fenced: self.fenced },
            None => self.clone(),
        }
    }

    /// Waits until the work this client (and its system namespace) started in the
    /// background has finished: removing the versions that puts superseded, read-repairs,
    /// the keyring check after an open. None of it is needed for correctness (scrub does
    /// all of it), but a short-lived process calls this before it exits so that it leaves
    /// no superseded versions behind.
    pub async fn flush(&self) {
        loop {
            self.inner.background.idle().await;
            if let Some(system) = &self.inner.system {
                system.background.idle().await;
            }
            let system_idle =
                self.inner.system.as_ref().is_none_or(|s| s.background.pending() == 0);
            if self.inner.background.pending() == 0 && system_idle {
                return;
            }
        }
    }

    /// A 256-bit key derived from the store's naming key for `purpose` (HMAC-SHA256, docs/
    /// FORMAT.md section 9): known to every client of the store, and to no set of fewer than K
    /// backends. The `vaultdb` binary keys its audit log's chain with one.
    pub fn derived_key(&self, purpose: &str) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(*self.inner.naming.derive(purpose).as_bytes())
    }

    /// Counters of degraded reads, bad shares, repairs and cleanups since this client was
    /// opened.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.inner.stats;
        StatsSnapshot {
            degraded_reads: s.degraded_reads.load(Ordering::Relaxed),
            bad_shares: self.inner.fanout.bad_shares(),
            shares_repaired: s.shares_repaired.load(Ordering::Relaxed),
            objects_removed: s.objects_removed.load(Ordering::Relaxed),
            fast_reads: s.fast_reads.load(Ordering::Relaxed),
        }
    }
}
