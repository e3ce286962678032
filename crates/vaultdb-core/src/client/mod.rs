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
//!   budget.
//!
//! Within the operations, `read` uses `head`, `head` uses `repair` (read-repair), and
//! `maintain` uses `repair` and `open`; `write` uses only the layers below. No two modules
//! import each other. docs/SECURITY.md gives the invariants each operation keeps.

mod budget;
mod call;
mod fanout;
mod head;
mod maintain;
mod open;
mod read;
mod repair;
mod shares;
mod tombstone;
mod write;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use call::CallPolicy;
pub use maintain::{BackendHealth, Health, ListResult, ScrubReport};
pub use read::{GetResult, ReadStream};
pub use repair::RepairReport;
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

/// The default key prefix under which VaultDB keeps its objects in every backend.
pub const DEFAULT_PREFIX: &str = "vaultdb";

/// The largest record `put` accepts by default (bytes of data).
pub const DEFAULT_MAX_RECORD_SIZE: usize = 256 << 20;

/// The default in-flight byte budget (see [`Settings::max_inflight_bytes`]).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 << 20;

/// Settings of a [`VaultDb`], with their defaults.
///
/// Start from [`Settings::default`] and assign the fields to change, then pass the result
/// to [`VaultDb::builder_with`]; or set single fields with the builder's setters. New
/// settings may be added in minor releases, so the struct cannot be built by a literal.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Settings {
    /// Write quorum W: a put succeeds once W backends hold the new version (K <= W <= N).
    /// `None` means N.
    pub write_quorum: Option<usize>,
    /// Versions of each record kept after a successful put (at least 1).
    pub retain_versions: usize,
    /// How secrets are padded before splitting.
    pub padding: Padding,
    /// Key prefix in every backend.
    pub prefix: String,
    /// Timeouts and retries for every backend call.
    pub call_policy: CallPolicy,
    /// After this long without K good shares, a read asks one more backend. With hedging
    /// on, a read also does not wait for the listings of backends that cannot change the
    /// version it reads (so a slow backend does not slow reads; a backend that is down may
    /// then go unnoticed by that read, not by writes, scrub or `health`). `None` disables
    /// both.
    pub hedge_after: Option<Duration>,
    /// After a degraded read, repair the record in the background.
    pub read_repair: bool,
    /// Scrub removes abandoned partial writes and superseded versions only when they are
    /// older than this (so it never races a put in progress).
    pub grace_period: Duration,
    /// The largest record data `put` accepts (and `get` returns whole), in bytes.
    /// [`VaultDb::put_stream`] and [`VaultDb::get_stream`] have no such limit.
    pub max_record_size: usize,
    /// Records with more data than this are stored as segments of this size, each with
    /// its own MAC (1 KiB to 1 GiB).
    pub segment_size: usize,
    /// The client's in-flight byte budget: puts and segment reads wait (backpressure)
    /// rather than hold more than this in buffers at once. A single operation larger than
    /// the budget waits for all of it.
    pub max_inflight_bytes: usize,
    /// How many backends may be rolled back (restored from an old backup, or missing a
    /// delete they were down for) at once without a deleted record coming back: a read waits
    /// for the listings of at least K plus this many backends (or of every backend that
    /// answers) before it decides, so that it sees a tombstone left by the delete
    /// (docs/SECURITY.md, "Deletes and tombstones"). Default 1; 0 lets reads decide on the
    /// fastest K listings, as before tombstones existed.
    pub rollback_tolerance: usize,
    /// How long tombstones are kept. `None` (the default): forever, so no backup restored
    /// at any time can bring a deleted record back. With `Some(ttl)`, scrub removes a
    /// tombstone older than `ttl` once every backend listed the record and none holds older
    /// data; a backup older than that can then resurrect what it holds.
    pub tombstone_ttl: Option<Duration>,
    /// The storage mode ([`Mode`]): how a new store splits its secrets, recorded in its
    /// keyring. `None` (the default): open a store in whatever mode it has, and create a
    /// new one as [`Mode::Shamir`]. `Some(mode)`: create a new store in `mode`, and refuse
    /// (`INVALID_CONFIG`) to open a store in another mode.
    pub mode: Option<Mode>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            write_quorum: None,
            retain_versions: 1,
            padding: Padding::Padme,
            prefix: DEFAULT_PREFIX.to_owned(),
            call_policy: CallPolicy::default(),
            hedge_after: Some(Duration::from_millis(50)),
            read_repair: true,
            grace_period: Duration::from_secs(15 * 60),
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            segment_size: crate::manifest::DEFAULT_SEGMENT_SIZE,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            rollback_tolerance: 1,
            tombstone_ttl: None,
            mode: None,
        }
    }
}

impl Settings {
    /// Checks these settings for a store of threshold `k` over backends with the ids
    /// `backend_ids` (in share order) without opening anything: what
    /// [`VaultDbBuilder::open`] checks before it touches a backend, so configuration
    /// files can be checked up front.
    ///
    /// # Errors
    /// `INVALID_CONFIG` saying what is wrong: fewer than 2 or more than 255 backends, a
    /// threshold below 2 or above the number of backends, a write quorum outside K..=N,
    /// `retain_versions` 0, an empty (or blank) or repeated backend id, a `segment_size`
    /// outside 1 KiB..=1 GiB, a `max_inflight_bytes` below 1 KiB, or an invalid prefix.
    pub fn validate<S: AsRef<str>>(&self, k: usize, backend_ids: &[S]) -> Result<Threshold> {
        let n = backend_ids.len();
        let invalid = |m: String| Err(VaultError::invalid_config(m));
        if n < 2 {
            return invalid(format!("at least 2 backends are needed, {n} configured"));
        }
        if n > 255 {
            return invalid(format!("at most 255 backends are supported, {n} configured"));
        }
        if k < 2 {
            return invalid(format!(
                "threshold must be at least 2 (a threshold of {k} would let a single backend \
                 rebuild every record)"
            ));
        }
        if k > n {
            return invalid(format!("threshold {k} is larger than the number of backends ({n})"));
        }
        if let Some(w) = self.write_quorum
            && (w < k || w > n)
        {
            return invalid(format!(
                "write_quorum {w} must be between the threshold {k} and the number of backends {n}"
            ));
        }
        if self.retain_versions == 0 {
            return invalid("retain_versions must be at least 1".to_owned());
        }
        for (i, id) in backend_ids.iter().map(AsRef::as_ref).enumerate() {
            if id.trim().is_empty() {
                return invalid(format!("backend #{} has an empty id", i + 1));
            }
            if backend_ids[..i].iter().any(|o| o.as_ref() == id) {
                return invalid(format!("backend id {id:?} is used twice"));
            }
        }
        let (lo, hi) = (crate::manifest::MIN_SEGMENT_SIZE, crate::manifest::MAX_SEGMENT_SIZE);
        if !(lo..=hi).contains(&self.segment_size) {
            return invalid(format!("segment_size must be between {lo} and {hi} bytes"));
        }
        if self.max_inflight_bytes < budget::MIN_BUDGET {
            return invalid("the in-flight budget must be at least 1 KiB".to_owned());
        }
        KeySpace::new(&self.prefix)?;
        Threshold::new(k, n)
    }
}

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

    /// The write quorum W (default N).
    pub fn write_quorum(mut self, w: usize) -> Self {
        self.settings.write_quorum = Some(w);
        self
    }

    /// Versions kept per record (default 1).
    pub fn retain_versions(mut self, n: usize) -> Self {
        self.settings.retain_versions = n;
        self
    }

    /// The padding policy (default Padmé).
    pub fn padding(mut self, p: Padding) -> Self {
        self.settings.padding = p;
        self
    }

    /// The key prefix in every backend (default `vaultdb`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.prefix = prefix.into();
        self
    }

    /// Timeouts and retries for backend calls.
    pub fn call_policy(mut self, p: CallPolicy) -> Self {
        self.settings.call_policy = p;
        self
    }

    /// Hedging delay for reads (`None` disables hedging).
    pub fn hedge_after(mut self, d: Option<Duration>) -> Self {
        self.settings.hedge_after = d;
        self
    }

    /// Whether degraded reads trigger a background repair (default true).
    pub fn read_repair(mut self, on: bool) -> Self {
        self.settings.read_repair = on;
        self
    }

    /// Grace period before scrub removes partial writes and superseded versions.
    pub fn grace_period(mut self, d: Duration) -> Self {
        self.settings.grace_period = d;
        self
    }

    /// The largest record data accepted by `put`.
    pub fn max_record_size(mut self, bytes: usize) -> Self {
        self.settings.max_record_size = bytes;
        self
    }

    /// Sets the segment size (see [`Settings::segment_size`]).
    pub fn segment_size(mut self, bytes: usize) -> Self {
        self.settings.segment_size = bytes;
        self
    }

    /// Sets the in-flight byte budget (see [`Settings::max_inflight_bytes`]).
    pub fn max_inflight_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_inflight_bytes = bytes;
        self
    }

    /// The storage mode of a new store, and the one an existing store must have (see
    /// [`Settings::mode`]; default: [`Mode::Shamir`] for a new store, any for an existing one).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.settings.mode = Some(mode);
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

    /// Checks the configuration, reads (or on an empty store, creates) the keyring, and
    /// returns the client.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for a bad threshold, quorum or backend list, or a configuration that
    /// differs from the store's keyring; `INSUFFICIENT_SHARES` or `BACKEND_ERROR` if the
    /// keyring cannot be read or created.
    pub async fn open(self) -> Result<VaultDb> {
        let Checked { threshold, write_quorum, ids, keyspace } = self.checked()?;
        let s = &self.settings;
        // The system namespace (see `VaultDb::system`): the same backends, under
        // `<prefix>/sys/`, named with a key derived from the store's naming key.
        let sys_keyspace = KeySpace::new(&system_prefix(&s.prefix))?;
        let system_parts = (self.backends.clone(), ids.clone());
        let mut inner = Inner::new(
            self.backends,
            ids,
            threshold,
            write_quorum,
            keyspace,
            self.settings.clone(),
            self.rng.map(Mutex::new),
        );
        let (keyring, all_slots_good) =
            open::load_or_create_keyring(&inner, self.naming_key.as_ref()).await?;
        keyring.check_mode(s.mode)?;
        inner.fanout.set_mode(keyring.mode);
        let mut system = Inner::new(
            system_parts.0,
            system_parts.1,
            threshold,
            write_quorum,
            sys_keyspace,
            self.settings,
            None,
        );
        system.fanout.set_mode(keyring.mode);
        system.naming = keyring.naming_key.derive(SYSTEM_NAMING_PURPOSE);
        inner.naming = keyring.naming_key;
        inner.system = Some(Arc::new(system));
        let db = VaultDb { inner: Arc::new(inner) };
        // The open stopped reading at K good keyring shares: check (and rewrite) the other
        // slots in the background, as a degraded read repairs its record, so that a lost or
        // swapped keyring share does not wait for a scrub.
        if !all_slots_good
            && db.inner.settings.read_repair
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let db = db.clone();
            handle.spawn(async move {
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
        Ok(Checked { threshold, write_quorum: w, ids, keyspace })
    }
}

/// What [`VaultDbBuilder::checked`] derives from a valid configuration.
struct Checked {
    threshold: Threshold,
    write_quorum: usize,
    ids: Vec<String>,
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
    /// The system namespace's client ([`VaultDb::system`]); `None` in that client itself.
    system: Option<Arc<Inner>>,
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

    #[allow(clippy::too_many_arguments)]
    fn new(
        backends: Vec<Arc<dyn StorageBackend>>,
        ids: Vec<String>,
        threshold: Threshold,
        write_quorum: usize,
        keyspace: KeySpace,
        settings: Settings,
        rng: Option<Mutex<Box<dyn RandomSource>>>,
    ) -> Self {
        let n = ids.len();
        let shares = Shares::new(threshold, settings.padding);
        let fanout = Fanout::new(
            backends,
            ids,
            settings.call_policy,
            settings.hedge_after,
            keyspace,
            shares,
        );
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
            system: None,
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
            Some(system) => VaultDb { inner: Arc::clone(system) },
            None => self.clone(),
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
        }
    }
}
