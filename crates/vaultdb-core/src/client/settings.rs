//! [`Settings`] of a client, their defaults, and every check of them that needs no backend
//! call ([`Settings::validate`]).

use std::time::Duration;

use super::{CallPolicy, budget};
use crate::compact::Mode;
use crate::error::{Result, VaultError};
use crate::naming::KeySpace;
use crate::padding::Padding;
use crate::xorida::Threshold;

/// The default key prefix under which VaultDB keeps its objects in every backend.
pub const DEFAULT_PREFIX: &str = "vaultdb";

/// The largest record `put` accepts by default (bytes of data).
pub const DEFAULT_MAX_RECORD_SIZE: usize = 256 << 20;

/// The default in-flight byte budget (see [`Settings::max_inflight_bytes`]).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 << 20;

/// Settings of a [`VaultDb`](super::VaultDb), with their defaults.
///
/// Start from [`Settings::default`] and assign the fields to change, then pass the result
/// to [`VaultDb::builder_with`](super::VaultDb::builder_with); or set single fields with the builder's setters. New
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
    /// [`VaultDb::put_stream`](super::VaultDb::put_stream) and [`VaultDb::get_stream`](super::VaultDb::get_stream) have no such limit.
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
    /// (docs/SECURITY.md, "Durability and deletion"). With hedging on, a read that has
    /// decided its version waits for those extra listings `max(1 s, 4 x hedge_after)` at
    /// most, so a hung backend costs each read that long, not a call timeout: a backend that
    /// does not answer in that time counts against this tolerance. Default 1; 0 lets reads
    /// decide on the fastest K listings, as before tombstones existed.
    pub rollback_tolerance: usize,
    /// How long tombstones are kept. `None` (the default): forever, so no backup restored
    /// at any time can bring a deleted record back. With `Some(ttl)`, scrub removes a
    /// tombstone older than `ttl` once every backend listed the record and none holds older
    /// data; a backup older than that can then resurrect what it holds.
    pub tombstone_ttl: Option<Duration>,
    /// Reads try the one-round-trip path first (marks and settled objects, docs/SECURITY.md
    /// "One-round-trip reads") and list only when it cannot prove the newest version.
    /// Writes leave marks either way. Default on.
    pub fast_reads: bool,
    /// How old a write must be before a read may settle it (certify it as the newest, so
    /// that later reads take one round trip). It must exceed twice the longest a write's
    /// calls can take ([`CallPolicy::longest_call`]) plus the clock skew between clients:
    /// `None` (the default) means that bound plus 30 s.
    pub settle_after: Option<Duration>,
    /// The storage mode ([`Mode`]): how a new store splits its secrets, recorded in its
    /// keyring. `None` (the default): open a store in whatever mode it has, and create a
    /// new one as [`Mode::Shamir`]. `Some(mode)`: create a new store in `mode`, and refuse
    /// (`INVALID_CONFIG`) to open a store in another mode.
    pub mode: Option<Mode>,
    /// How often a client re-reads its store's re-share notices (docs/SECURITY.md
    /// "Re-sharing"), in the background while it is busy. An operation starts only while the
    /// last check that heard K backends began less than twice this long ago (the lease);
    /// otherwise it checks first. A re-share waits out the lease of its old configuration
    /// ([`Settings::fence_wait`]), so every client of a store must use the same value, or a
    /// smaller one. `None` turns the checks off: such a client never notices a re-share
    /// after it opened (it obeys the notices it read then), so a store with such clients
    /// must not be re-shared while they run; a re-share refuses to run from a handle of the
    /// old store with the checks off, and [`VaultDbBuilder::migrating_from`] needs them on.
    /// Default 10 s.
    ///
    /// [`VaultDbBuilder::migrating_from`]: super::VaultDbBuilder::migrating_from
    pub fence_check: Option<Duration>,
}

/// The clock skew between clients the default settle delay allows for.
const SETTLE_SKEW: Duration = Duration::from_secs(30);

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
            fast_reads: true,
            settle_after: None,
            mode: None,
            fence_check: Some(Duration::from_secs(10)),
        }
    }
}

impl Settings {
    /// How long an operation that already has what it needs from some backends (a read
    /// that decided its version, a put with W acknowledgements, a delete with N-K+1
    /// tombstones, a list with K listings) waits for the others before it goes on without
    /// them: `max(1 s, 4 x hedge_after)`, `None` with hedging off (as long as the calls
    /// take). Tools built on the client (the `vaultdb` binary's store lookup) use the same
    /// bound.
    pub fn straggler_wait(&self) -> Option<Duration> {
        straggler_wait(self.hedge_after)
    }

    /// Checks these settings for a store of threshold `k` over backends with the ids
    /// `backend_ids` (in share order) without opening anything: what
    /// [`VaultDbBuilder::open`](super::VaultDbBuilder::open) checks before it touches a backend, so configuration
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
        let floor = self.call_policy.longest_call().saturating_mul(2);
        if let Some(d) = self.settle_after
            && d < floor
        {
            return invalid(format!(
                "settle_after ({d:?}) must be at least twice the longest a backend call can                  take with its retries ({floor:?}), plus the clock skew between clients"
            ));
        }
        if self.fence_check.is_some_and(|d| d.is_zero()) {
            return invalid("fence_check must be longer than zero (or off)".to_owned());
        }
        KeySpace::new(&self.prefix)?;
        Threshold::new(k, n)
    }

    /// How long a re-share waits after fencing a store of these settings before it reads
    /// the store for the last time: the lease (twice [`Settings::fence_check`]), during which
    /// a client may still start operations, plus four times the longest call (the longest
    /// operation a client starts: a delete's three round trips, a put's one, each call with
    /// its retries; a segmented put checks the lease again before its manifest). Zero with
    /// the checks off.
    pub fn fence_wait(&self) -> Duration {
        self.fence_check.map_or(Duration::ZERO, |every| {
            every
                .saturating_mul(2)
                .saturating_add(self.call_policy.longest_call().saturating_mul(4))
        })
    }

    /// The settle delay in effect (see [`Settings::settle_after`]).
    pub fn settle_delay(&self) -> Duration {
        self.settle_after.unwrap_or_else(|| {
            self.call_policy.longest_call().saturating_mul(2).saturating_add(SETTLE_SKEW)
        })
    }

    /// The clock skew between clients these settings assume (docs/SECURITY.md, A2): the
    /// settle delay less twice the longest call, 30 s by default. A version stamped further
    /// ahead of this client's wall clock than that was written by no client.
    pub(crate) fn max_clock_skew(&self) -> Duration {
        self.settle_delay().saturating_sub(self.call_policy.longest_call().saturating_mul(2))
    }
}

/// How long an operation that already has what it needs (a read that has decided its
/// version, a put with W acknowledgements, a delete with N-K+1 tombstones, a list page with
/// K listings) waits for the other backends before it goes on without them: four times
/// `hedge_after`, and at least one second (a healthy cloud answers well within that, so in
/// normal operation every backend is heard). `None` (hedging off): as long as the calls
/// take, timeouts and retries included. A hung backend so costs an operation this long
/// instead of a whole call timeout with its retries (90 s by default).
pub(crate) fn straggler_wait(hedge_after: Option<Duration>) -> Option<Duration> {
    hedge_after.map(|h| h.saturating_mul(4).max(Duration::from_secs(1)))
}
