//! A randomized, seeded fault-schedule checker for [`VaultDb`].
//!
//! One `u64` seed determines a [`Plan`]: the store's configuration (K-of-N, write quorum W,
//! number of clients and client handles, hedging, read-repair, a 1 KiB segment size), and a
//! sequence of rounds. Each round switches faults on some backends (down, failing chosen
//! operations, stalled past the call timeout, corrupting, serving stale or misplaced
//! objects, crashing after `m` puts, randomly flaky with ambiguous failures, flapping) and
//! gives every client a few operations (put, segmented put, `put_stream`, a put whose
//! writer "crashes" part way, get, `get_range`, delete) on a handful of record ids.
//!
//! [`run`] executes a plan against N [`MemoryBackend`]s wrapped in the fault injectors of
//! [`crate::testkit`], recording each operation's invocation and response on one logical
//! clock; at the end it heals every backend, scrubs, and reads every id back. [`check`]
//! judges that history against the consistency model of DESIGN.md section 5 and returns
//! the [`Violation`]s; [`Summary`] adds runs up. docs/FAULTS.md describes the model and the
//! fault budget.
//!
//! Rounds are separated by barriers: a round's faults are fixed while its clients run
//! (except for the faults that act by themselves: a crash after `m` puts, random
//! failures, flapping), and a round ends only when its clients are done and every
//! background task (read-repair) has finished. A read's "healthy backends" are the
//! backends without a fault in its round.
//!
//! Run a plan on a current-thread Tokio runtime with paused time (`start_paused(true)`):
//! every delay is virtual, and the schedule of tasks is then a function of the seed, except
//! where the client itself reads the real clock (it ranks backends by measured latency),
//! which can change which backends a read asks first.
//!
//! ```no_run
//! # async fn demo() {
//! use vaultdb_core::testkit::schedule::{Plan, RunOptions, check, run};
//! let plan = Plan::generate(42, 300);
//! let result = run(&plan, &RunOptions::default()).await.expect("the store opens");
//! let report = check(&result);
//! assert!(report.violations.is_empty(), "{}", report.explain(&result));
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{
    CorruptMode, Corrupting, CorruptingHandle, Counting, CountingHandle, Crashing, CrashingHandle,
    Failing, FailingHandle, Ops, Randomized, RandomizedHandle, Slow, SlowHandle, Stale,
    StaleHandle, StaleMode,
};
use crate::backend::{BackendErrorKind, StorageBackend};
use crate::client::{CallPolicy, RecordMeta, VaultDb, VaultDbBuilder};
use crate::error::{BackendOutcome, ErrorCode, OutcomeStatus, VaultError};
use crate::memory::MemoryBackend;
use crate::record::Record;
use crate::rng::CsRng;
use crate::version::Version;

/// The per-attempt timeout of every backend call during a run (virtual time).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a stalled backend sleeps before it answers: longer than [`CALL_TIMEOUT`].
pub const STALL: Duration = Duration::from_secs(3);

/// The segment size of every run: records above 1 KiB are stored as segments.
pub const SEGMENT_SIZE: usize = 1024;

/// The (K, N, W) configurations a seed chooses from.
pub const CONFIGS: [(usize, usize, usize); 4] = [(2, 3, 3), (3, 5, 5), (3, 5, 4), (2, 3, 2)];

/// Record ids of a run (a few, so that clients contend for them).
const IDS: [&str; 5] = ["rec-0", "rec-1", "user/42", "notes.txt", "r-4"];

// ---------------------------------------------------------------------------------------
// Randomness.

/// splitmix64: small, seedable, and good enough to pick operations and faults.
#[derive(Clone, Debug)]
struct Prng(u64);

impl Prng {
    fn new(seed: u64) -> Self {
        Prng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` percent.
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    /// A duration in `lo..=hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }

    /// A non-empty random set of backend operations.
    fn ops(&mut self) -> Ops {
        loop {
            let ops = Ops::from_bits(self.next() as u8);
            if !ops.is_empty() {
                return ops;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The plan.

/// How many faults a round has, relative to the fault budget `W - K`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoundKind {
    /// No faults (backends may still be slow).
    Healthy,
    /// 1 to `W - K` backends faulty: every acknowledged write stays readable.
    Budget,
    /// More than `W - K` backends faulty: only "never wrong data" must hold.
    Chaos,
}

impl RoundKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RoundKind::Healthy => "healthy",
            RoundKind::Budget => "budget",
            RoundKind::Chaos => "chaos",
        }
    }
}

/// A fault switched on for one backend for one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Unreachable: every call fails with a transient error (a partition).
    Down,
    /// The chosen operations fail with errors of the chosen kind.
    Fail {
        /// Which operations fail.
        ops: Ops,
        /// With which kind of error.
        kind: BackendErrorKind,
    },
    /// The chosen operations sleep [`STALL`], longer than the call timeout.
    Stall {
        /// Which operations stall.
        ops: Ops,
    },
    /// `get` returns altered bytes.
    Corrupt(CorruptMode),
    /// `get` returns an older object of the same record, or another record's object.
    Stale(StaleMode),
    /// Accepts this many puts, then every put and delete fails (the writer died mid-write);
    /// it comes back at the end of the round.
    Crash {
        /// Puts accepted before the crash.
        puts: u64,
    },
    /// This percentage of calls fails with a transient error; half of the failed puts and
    /// deletes fail *after* taking effect (a lost response); random delays.
    Flaky {
        /// Failure probability, in percent.
        percent: u32,
    },
    /// Goes down and comes back up every `period` while the round runs.
    Flap {
        /// Time between switches.
        period: Duration,
    },
}

impl Fault {
    /// A short name for summaries (`down`, `fail`, `stall`, `corrupt`, `stale`, `crash`,
    /// `flaky`, `flap`).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Down => "down",
            Fault::Fail { .. } => "fail",
            Fault::Stall { .. } => "stall",
            Fault::Corrupt(_) => "corrupt",
            Fault::Stale(_) => "stale",
            Fault::Crash { .. } => "crash",
            Fault::Flaky { .. } => "flaky",
            Fault::Flap { .. } => "flap",
        }
    }

    /// True if the backend may serve bad bytes (the only faults that can explain an
    /// `HMAC_FAILED`).
    pub fn serves_bad_data(&self) -> bool {
        matches!(self, Fault::Corrupt(_) | Fault::Stale(_))
    }

    fn generate(rng: &mut Prng) -> Fault {
        match rng.below(8) {
            0 => Fault::Down,
            1 => Fault::Fail {
                ops: rng.ops(),
                kind: if rng.percent(50) {
                    BackendErrorKind::Transient
                } else {
                    BackendErrorKind::Permanent
                },
            },
            2 => Fault::Stall { ops: if rng.percent(40) { Ops::ALL } else { rng.ops() } },
            3 => Fault::Corrupt(
                [CorruptMode::FlipBit, CorruptMode::Rewrite, CorruptMode::Truncate][rng.below(3)],
            ),
            4 => Fault::Stale(if rng.percent(60) { StaleMode::Older } else { StaleMode::Swap }),
            5 => Fault::Crash { puts: rng.below(7) as u64 },
            6 => Fault::Flaky { percent: [10, 25, 50][rng.below(3)] },
            _ => Fault::Flap { period: rng.millis(3, 25) },
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Down => f.write_str("down"),
            Fault::Fail { ops, kind } => write!(f, "fail({ops:?}, {kind})"),
            Fault::Stall { ops } => write!(f, "stall({ops:?})"),
            Fault::Corrupt(m) => write!(f, "corrupt({m:?})"),
            Fault::Stale(m) => write!(f, "stale({m:?})"),
            Fault::Crash { puts } => write!(f, "crash(after {puts} puts)"),
            Fault::Flaky { percent } => write!(f, "flaky({percent}%, ambiguous)"),
            Fault::Flap { period } => write!(f, "flap(every {}ms)", period.as_millis()),
        }
    }
}

/// One client operation of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpSpec {
    /// `put` (or `put_stream`) of a fresh value of at least `len` bytes; above
    /// [`SEGMENT_SIZE`] the record is segmented.
    Put {
        /// Index into [`Plan::ids`].
        id: usize,
        /// Value length (at least; a value is never shorter than its header).
        len: usize,
        /// Through `put_stream` rather than `put`.
        stream: bool,
    },
    /// A `put` abandoned after `after` (the writing client crashes mid-write).
    CrashPut {
        /// Index into [`Plan::ids`].
        id: usize,
        /// Value length.
        len: usize,
        /// When the client gives up (drops the put).
        after: Duration,
    },
    /// `get`.
    Get {
        /// Index into [`Plan::ids`].
        id: usize,
    },
    /// `get_range(start..end)`, read to the end of the stream.
    Range {
        /// Index into [`Plan::ids`].
        id: usize,
        /// First byte.
        start: u64,
        /// End (exclusive; clamped by the client).
        end: u64,
    },
    /// `delete`.
    Delete {
        /// Index into [`Plan::ids`].
        id: usize,
    },
}

impl OpSpec {
    /// The record id index.
    pub fn id(&self) -> usize {
        match *self {
            OpSpec::Put { id, .. }
            | OpSpec::CrashPut { id, .. }
            | OpSpec::Get { id }
            | OpSpec::Range { id, .. }
            | OpSpec::Delete { id } => id,
        }
    }

    /// The kind of operation, for summaries.
    pub fn kind(&self) -> &'static str {
        match *self {
            OpSpec::Put { stream: true, .. } => "put_stream",
            OpSpec::Put { len, .. } if len > SEGMENT_SIZE => "put (segmented)",
            OpSpec::Put { .. } => "put",
            OpSpec::CrashPut { .. } => "put (writer crashes)",
            OpSpec::Get { .. } => "get",
            OpSpec::Range { .. } => "get_range",
            OpSpec::Delete { .. } => "delete",
        }
    }

    /// True for puts and deletes.
    pub fn is_write(&self) -> bool {
        !self.is_read()
    }

    /// True for get and get_range.
    pub fn is_read(&self) -> bool {
        matches!(self, OpSpec::Get { .. } | OpSpec::Range { .. })
    }

    fn is_put(&self) -> bool {
        matches!(self, OpSpec::Put { .. } | OpSpec::CrashPut { .. })
    }
}

/// One step of a client: think, then do an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The operation's number in the plan (unique; part of every value a put writes).
    pub op: u32,
    /// Virtual time the client waits before the operation.
    pub think: Duration,
    /// The operation.
    pub spec: OpSpec,
}

/// One round: faults, backend latencies, and each client's steps.
#[derive(Clone, Debug)]
pub struct Round {
    /// Healthy, within the budget, or beyond it.
    pub kind: RoundKind,
    /// Faulty backends (index) and their fault.
    pub faults: Vec<(usize, Fault)>,
    /// Per backend: a fixed delay before every call (not a fault: below the call timeout).
    pub latency: Vec<Duration>,
    /// Per backend: the most the seeded [`Randomized`] wrapper sleeps before a call.
    pub jitter: Vec<Duration>,
    /// Per client: its steps, in order.
    pub clients: Vec<Vec<Step>>,
}

impl Round {
    /// The backends with a fault in this round.
    pub fn faulty(&self) -> BTreeSet<usize> {
        self.faults.iter().map(|(i, _)| *i).collect()
    }

    /// True if some backend may serve bad bytes in this round.
    pub fn serves_bad_data(&self) -> bool {
        self.faults.iter().any(|(_, f)| f.serves_bad_data())
    }

    /// Operations in this round.
    pub fn ops(&self) -> usize {
        self.clients.iter().map(Vec::len).sum()
    }
}

/// Everything a run does, derived from one seed by [`Plan::generate`].
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// Threshold K.
    pub k: usize,
    /// Backends N.
    pub n: usize,
    /// Write quorum W (the fault budget is `W - K` faulty backends).
    pub w: usize,
    /// Concurrent clients (tasks).
    pub clients: usize,
    /// Client handles opened over the same backends (client `c` uses handle
    /// `c % handles`).
    pub handles: usize,
    /// Record ids.
    pub ids: Vec<String>,
    /// The client's hedging delay.
    pub hedge_after: Option<Duration>,
    /// Whether degraded reads repair in the background.
    pub read_repair: bool,
    /// The rounds.
    pub rounds: Vec<Round>,
}

impl Plan {
    /// The plan of `seed`, with at least `ops` operations. A pure function of its
    /// arguments.
    pub fn generate(seed: u64, ops: usize) -> Plan {
        let mut rng = Prng::new(seed);
        let (k, n, w) = CONFIGS[rng.below(CONFIGS.len())];
        let clients = rng.between(4, 8);
        let handles = rng.between(1, 3);
        let hedge_after =
            [None, Some(Duration::from_millis(10)), Some(Duration::from_millis(50))][rng.below(3)];
        let read_repair = rng.percent(67);
        let ids: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
        let budget = w - k;
        let mut rounds = Vec::new();
        let mut total = 0;
        let mut next_op = 0u32;
        while total < ops {
            let roll = rng.below(100);
            let kind = if roll < 20 {
                RoundKind::Healthy
            } else if roll < 70 && budget > 0 {
                RoundKind::Budget
            } else {
                RoundKind::Chaos
            };
            let faulty = match kind {
                RoundKind::Healthy => 0,
                RoundKind::Budget => rng.between(1, budget),
                RoundKind::Chaos => rng.between(budget + 1, n),
            };
            let mut backends: Vec<usize> = (0..n).collect();
            let mut faults = Vec::new();
            for _ in 0..faulty {
                let b = backends.remove(rng.below(backends.len()));
                faults.push((b, Fault::generate(&mut rng)));
            }
            faults.sort_by_key(|(b, _)| *b);
            let latency = (0..n)
                .map(|_| if rng.percent(50) { Duration::ZERO } else { rng.millis(1, 40) })
                .collect();
            let jitter = (0..n).map(|_| rng.millis(0, 5)).collect();
            let mut steps = Vec::new();
            for _ in 0..clients {
                let count = rng.between(1, 4);
                let mut mine = Vec::new();
                for _ in 0..count {
                    let think = if rng.percent(30) { Duration::ZERO } else { rng.millis(0, 20) };
                    let spec = Self::op(&mut rng, ids.len());
                    mine.push(Step { op: next_op, think, spec });
                    next_op += 1;
                }
                total += mine.len();
                steps.push(mine);
            }
            rounds.push(Round { kind, faults, latency, jitter, clients: steps });
        }
        Plan { seed, k, n, w, clients, handles, ids, hedge_after, read_repair, rounds }
    }

    fn op(rng: &mut Prng, ids: usize) -> OpSpec {
        let id = rng.below(ids);
        let small = |rng: &mut Prng| rng.between(0, 120);
        let big = |rng: &mut Prng| rng.between(SEGMENT_SIZE + 1, 4 * SEGMENT_SIZE + 500);
        match rng.below(100) {
            0..28 => OpSpec::Put { id, len: small(rng), stream: false },
            28..32 => OpSpec::Put { id, len: big(rng), stream: false },
            32..36 => {
                let len = if rng.percent(75) { big(rng) } else { small(rng) };
                OpSpec::Put { id, len, stream: true }
            }
            36..40 => {
                let len = if rng.percent(50) { big(rng) } else { small(rng) };
                OpSpec::CrashPut { id, len, after: rng.millis(0, 30) }
            }
            40..72 => OpSpec::Get { id },
            72..86 => {
                if rng.percent(20) {
                    OpSpec::Range { id, start: 0, end: u64::MAX }
                } else {
                    let start = rng.below(5000) as u64;
                    OpSpec::Range { id, start, end: start + rng.below(3000) as u64 }
                }
            }
            _ => OpSpec::Delete { id },
        }
    }

    /// The same plan with only the operations numbered in `ops` (their rounds keep their
    /// faults and latencies; rounds left without operations are dropped): how a shrunk
    /// failure is written down (docs/FAULTS.md).
    pub fn restrict(&self, ops: &[u32]) -> Plan {
        let mut plan = self.clone();
        for round in &mut plan.rounds {
            for steps in &mut round.clients {
                steps.retain(|s| ops.contains(&s.op));
            }
        }
        plan.rounds.retain(|r| r.ops() > 0);
        plan
    }

    /// Operations in the plan.
    pub fn ops(&self) -> usize {
        self.rounds.iter().map(Round::ops).sum()
    }

    /// The fault budget: at most this many faulty backends keep every acknowledged write
    /// readable (`W - K`).
    pub fn budget(&self) -> usize {
        self.w - self.k
    }

    /// One line: seed, configuration, size.
    pub fn headline(&self) -> String {
        format!(
            "seed {} ({:#x}): {}-of-{} W={} clients={} handles={} hedge={} read_repair={} \
             rounds={} ops={}",
            self.seed,
            self.seed,
            self.k,
            self.n,
            self.w,
            self.clients,
            self.handles,
            self.hedge_after.map_or("off".to_owned(), |d| format!("{}ms", d.as_millis())),
            self.read_repair,
            self.rounds.len(),
            self.ops()
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        for (r, round) in self.rounds.iter().enumerate() {
            writeln!(f, "round {r} [{}] {}", round.kind.name(), round_faults(round))?;
            for (c, steps) in round.clients.iter().enumerate() {
                let ops: Vec<String> = steps
                    .iter()
                    .map(|s| format!("#{} {}", s.op, spec_text(&s.spec, &self.ids)))
                    .collect();
                writeln!(f, "  client {c}: {}", ops.join("; "))?;
            }
        }
        Ok(())
    }
}

fn round_faults(round: &Round) -> String {
    if round.faults.is_empty() {
        return "no faults".to_owned();
    }
    let faults: Vec<String> = round.faults.iter().map(|(b, f)| format!("b{b}:{f}")).collect();
    faults.join(", ")
}

fn spec_text(spec: &OpSpec, ids: &[String]) -> String {
    match spec {
        OpSpec::Put { id, len, stream } => {
            format!("{}({:?}, {len}B)", if *stream { "put_stream" } else { "put" }, ids[*id])
        }
        OpSpec::CrashPut { id, len, after } => {
            format!("put({:?}, {len}B) abandoned after {}ms", ids[*id], after.as_millis())
        }
        OpSpec::Get { id } => format!("get({:?})", ids[*id]),
        OpSpec::Range { id, start, end } => format!("get_range({:?}, {start}..{end})", ids[*id]),
        OpSpec::Delete { id } => format!("delete({:?})", ids[*id]),
    }
}

/// The bytes the put numbered `op` writes: `<id>|<seed>|<op>|` and then filler derived from
/// them, `len` bytes in all (or just the header, if that is longer). Unique per put, and
/// never a prefix of another put's value.
pub fn value_of(seed: u64, op: u32, id: &str, len: usize) -> Vec<u8> {
    let mut v = format!("{id}|{seed:016x}|{op}|").into_bytes();
    let mut x = (seed ^ (u64::from(op) << 32) ^ 0xA076_1D64_78BD_642F) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

/// The content type the put numbered `op` stores.
pub fn content_type_of(op: u32) -> String {
    format!("application/x-vaultdb-fault.{op}")
}

// ---------------------------------------------------------------------------------------
// The history.

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// A put succeeded.
    Put {
        /// The version written.
        version: Version,
        /// Backends (index) that acknowledged it.
        acks: Vec<usize>,
    },
    /// A read returned data.
    Read {
        /// The version read.
        version: Version,
        /// The bytes.
        data: Vec<u8>,
        /// The record's content type.
        content_type: Option<String>,
        /// The byte range the bytes are (clamped by the client).
        range: Range<u64>,
        /// The record's whole length.
        total: u64,
        /// False if the record carried another id than the one asked for.
        id_ok: bool,
        /// Backends (index) that failed, lacked their share or served bad data while the
        /// record's head was read (a degraded read starts a read-repair, if enabled).
        degraded: Vec<usize>,
    },
    /// A delete succeeded (`found`: false when it answered `RECORD_NOT_FOUND`).
    Deleted {
        /// Whether anything was there.
        found: bool,
        /// Backends (index) that confirmed (empty when it answered `RECORD_NOT_FOUND`).
        confirmed: Vec<usize>,
    },
    /// The client abandoned the put (its writer "crashed").
    Cancelled,
    /// The operation failed.
    Failed {
        /// The error code.
        code: ErrorCode,
        /// The error's text.
        message: String,
        /// For a failed put: the backends that acknowledged it anyway.
        acks: Vec<usize>,
    },
}

impl OpResult {
    /// `ok`, `not-found`, `cancelled`, or the error code, for summaries.
    pub fn outcome(&self) -> &'static str {
        match self {
            OpResult::Put { .. }
            | OpResult::Read { .. }
            | OpResult::Deleted { found: true, .. } => "ok",
            OpResult::Deleted { found: false, .. } => "RECORD_NOT_FOUND",
            OpResult::Cancelled => "cancelled",
            OpResult::Failed { code, .. } => code.as_str(),
        }
    }
}

/// One operation of a run: what was asked, when, and what came back.
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// The operation's number in the plan.
    pub op: u32,
    /// The client that ran it.
    pub client: usize,
    /// The round it ran in.
    pub round: usize,
    /// What was asked.
    pub spec: OpSpec,
    /// Logical time of the invocation.
    pub inv: u64,
    /// Logical time of the response (after `inv`; one clock for the whole run).
    pub res: u64,
    /// For a put: the value written.
    pub value: Vec<u8>,
    /// What came back.
    pub result: OpResult,
}

impl OpRecord {
    fn acked_put(&self) -> Option<(&Version, &[usize])> {
        match &self.result {
            OpResult::Put { version, acks } => Some((version, acks)),
            _ => None,
        }
    }

    fn deleted(&self) -> bool {
        matches!(self.result, OpResult::Deleted { .. })
    }

    fn succeeded_write(&self) -> bool {
        self.acked_put().is_some() || self.deleted()
    }

    fn text(&self, ids: &[String]) -> String {
        let result = match &self.result {
            OpResult::Put { version, acks } => format!("ok version {version} acks {acks:?}"),
            OpResult::Read { version, data, range, total, degraded, .. } => {
                let head: String =
                    String::from_utf8_lossy(&data[..data.len().min(40)]).chars().collect();
                format!(
                    "version {version} bytes {}..{} of {total}: {head:?}{}{}",
                    range.start,
                    range.end,
                    if data.len() > 40 { "..." } else { "" },
                    if degraded.is_empty() {
                        String::new()
                    } else {
                        format!(" (degraded: {degraded:?})")
                    }
                )
            }
            OpResult::Deleted { found, confirmed } => {
                format!("deleted (found: {found}, confirmed by {confirmed:?})")
            }
            OpResult::Cancelled => "abandoned by its writer".to_owned(),
            OpResult::Failed { code, message, acks } => {
                let mut s = format!("{}: {message}", code.as_str());
                if self.spec.is_put() {
                    let _ = write!(s, " [acks {acks:?}]");
                }
                s
            }
        };
        format!(
            "[{:>5}..{:>5}] r{} c{} #{} {} -> {result}",
            self.inv,
            self.res,
            self.round,
            self.client,
            self.op,
            spec_text(&self.spec, ids)
        )
    }
}

// ---------------------------------------------------------------------------------------
// The cluster.

/// A function wrapped around each backend's fault stack (outermost), e.g. a deliberately
/// broken backend in a test that shows the checker can fail. Gets the backend index.
pub type Wrap =
    Arc<dyn Fn(usize, Arc<dyn StorageBackend>) -> Arc<dyn StorageBackend> + Send + Sync>;

/// Options of [`run`].
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Wraps each backend's fault stack.
    pub wrap: Option<Wrap>,
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions").field("wrap", &self.wrap.is_some()).finish()
    }
}

/// One backend: a [`MemoryBackend`] under the fault stack (outside in) Failing, Slow,
/// Randomized, Crashing, Stale, Corrupting, Counting.
struct Node {
    mem: Arc<MemoryBackend>,
    fail: FailingHandle,
    slow: SlowHandle,
    random: RandomizedHandle,
    crash: CrashingHandle,
    stale: StaleHandle,
    corrupt: CorruptingHandle,
    count: CountingHandle,
    backend: Arc<dyn StorageBackend>,
}

impl Node {
    fn new(i: usize, seed: u64, wrap: Option<&Wrap>) -> Node {
        let mem = Arc::new(MemoryBackend::new(format!("b{i}"), format!("memory backend {i}")));
        let counting = Counting::new(mem.clone());
        let count = counting.handle();
        let corrupting = Corrupting::new(counting);
        let corrupt = corrupting.handle();
        corrupt.set_enabled(false);
        let stale = Stale::new(corrupting);
        let stale_h = stale.handle();
        let crashing = Crashing::new(stale, 0);
        let crash = crashing.handle();
        crash.reset();
        let rseed = seed ^ (0x5EED_0000 + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let random = Randomized::new(crashing, rseed, Duration::ZERO, 0.0);
        let random_h = random.handle();
        let slow = Slow::new(random, Duration::ZERO);
        let slow_h = slow.handle();
        let failing = Failing::new(slow);
        let fail = failing.handle();
        let mut backend: Arc<dyn StorageBackend> = Arc::new(failing);
        if let Some(w) = wrap {
            backend = w(i, backend);
        }
        Node {
            mem,
            fail,
            slow: slow_h,
            random: random_h,
            crash,
            stale: stale_h,
            corrupt,
            count,
            backend,
        }
    }

    /// No fault, the given latency and jitter.
    fn heal(&self, latency: Duration, jitter: Duration) {
        self.fail.heal();
        self.slow.set_ops(Ops::ALL);
        self.slow.set_delay(latency);
        self.random.set_failure_probability(0.0);
        self.random.set_ambiguous(false);
        self.random.set_failing_ops(Ops::ALL);
        self.random.set_max_delay(jitter);
        self.crash.reset();
        self.stale.set_mode(StaleMode::Off);
        self.corrupt.set_enabled(false);
    }

    fn apply(&self, fault: Fault) {
        match fault {
            Fault::Down => self.fail.set_down(true),
            Fault::Fail { ops, kind } => self.fail.fail(ops, kind),
            Fault::Stall { ops } => {
                self.slow.set_ops(ops);
                self.slow.set_delay(STALL);
            }
            Fault::Corrupt(mode) => {
                self.corrupt.set_mode(mode);
                self.corrupt.set_enabled(true);
            }
            Fault::Stale(mode) => self.stale.set_mode(mode),
            Fault::Crash { puts } => self.crash.arm(puts),
            Fault::Flaky { percent } => {
                self.random.set_failure_probability(f64::from(percent) / 100.0);
                self.random.set_ambiguous(true);
                self.random.set_max_delay(Duration::from_millis(5));
            }
            // Driven by a task while the round runs.
            Fault::Flap { .. } => {}
        }
    }
}

fn builder(plan: &Plan, nodes: &[Node], handle: usize) -> VaultDbBuilder {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&plan.seed.to_le_bytes());
    seed[8] = handle as u8 + 1;
    let mut b = VaultDb::builder()
        .threshold(plan.k)
        .write_quorum(plan.w)
        .call_policy(CallPolicy {
            timeout: CALL_TIMEOUT,
            max_attempts: 2,
            // No backoff: the client's backoff jitter is not seeded.
            base_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        })
        .hedge_after(plan.hedge_after)
        .read_repair(plan.read_repair)
        .segment_size(SEGMENT_SIZE)
        .rng(Box::new(CsRng::from_seed(seed)));
    for n in nodes {
        b = b.backend_arc(n.backend.clone());
    }
    b
}

/// What the store looked like after the run: healed, drained, scrubbed twice, read back.
#[derive(Clone, Debug)]
pub struct FinalState {
    /// The first scrub: (shares restored, objects removed, problems), or its error.
    pub scrub: Result<(usize, usize, Vec<String>), String>,
    /// A second scrub, which must find nothing to do.
    pub rescrub: Result<(usize, usize, Vec<String>), String>,
    /// Per id: two reads, one after the other.
    pub reads: Vec<(OpResult, OpResult)>,
    /// What `list` returned.
    pub listed: Result<Vec<String>, String>,
    /// Per id, per backend: (head shares, segment shares) stored under the id's name tag.
    pub objects: Vec<Vec<(usize, usize)>>,
}

/// A finished run: the plan, the history, the final state, and fault counters.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The plan that ran.
    pub plan: Plan,
    /// Every operation, in order of invocation.
    pub history: Vec<OpRecord>,
    /// After healing and scrubbing.
    pub final_state: FinalState,
    /// Faults the wrappers injected, by kind (calls failed, gets corrupted, stale objects
    /// served, puts and deletes refused after a crash, random failures).
    pub injected: BTreeMap<String, u64>,
    /// Calls that reached the memory backends.
    pub backend_calls: u64,
    /// Virtual time the run took.
    pub elapsed: Duration,
}

struct Ctx {
    seed: u64,
    ids: Vec<String>,
    clock: AtomicU64,
}

impl Ctx {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }
}

fn acks_of(db: &VaultDb, outcomes: &[BackendOutcome]) -> Vec<usize> {
    outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Ok)
        .filter_map(|o| db.backend_ids().iter().position(|b| *b == o.backend))
        .collect()
}

fn degraded_of(db: &VaultDb, outcomes: &[BackendOutcome]) -> Vec<usize> {
    outcomes
        .iter()
        .filter(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped))
        .filter_map(|o| db.backend_ids().iter().position(|b| *b == o.backend))
        .collect()
}

fn failed(db: &VaultDb, e: &VaultError) -> OpResult {
    OpResult::Failed { code: e.code(), message: e.to_string(), acks: acks_of(db, e.outcomes()) }
}

fn put_result(db: &VaultDb, r: crate::Result<crate::PutResult>) -> OpResult {
    match r {
        Ok(p) => OpResult::Put { version: p.version, acks: acks_of(db, &p.outcomes) },
        Err(e) => failed(db, &e),
    }
}

async fn read_whole(db: &VaultDb, id: &str) -> OpResult {
    match db.get(id).await {
        Ok(g) => {
            let total = g.record.data.len() as u64;
            OpResult::Read {
                degraded: degraded_of(db, &g.outcomes),
                version: g.version,
                id_ok: g.record.id == id,
                content_type: g.record.content_type,
                data: g.record.data,
                range: 0..total,
                total,
            }
        }
        Err(e) => failed(db, &e),
    }
}

async fn execute(db: &VaultDb, ctx: &Ctx, client: usize, round: usize, step: Step) -> OpRecord {
    let id = ctx.ids[step.spec.id()].as_str();
    let value = match step.spec {
        OpSpec::Put { len, .. } | OpSpec::CrashPut { len, .. } => {
            value_of(ctx.seed, step.op, id, len)
        }
        _ => Vec::new(),
    };
    let ct = content_type_of(step.op);
    let inv = ctx.tick();
    let result = match step.spec {
        OpSpec::Put { stream: false, .. } => {
            let record = Record::new(id, value.clone()).with_content_type(ct);
            put_result(db, db.put(record).await)
        }
        OpSpec::Put { stream: true, .. } => {
            let meta = RecordMeta::new(id).with_content_type(ct);
            put_result(db, db.put_stream(meta, value.len() as u64, &value[..]).await)
        }
        OpSpec::CrashPut { after, .. } => {
            let record = Record::new(id, value.clone()).with_content_type(ct);
            match tokio::time::timeout(after, db.put(record)).await {
                Ok(r) => put_result(db, r),
                Err(_) => OpResult::Cancelled,
            }
        }
        OpSpec::Get { .. } => read_whole(db, id).await,
        OpSpec::Range { start, end, .. } => match db.get_range(id, start..end).await {
            Ok(stream) => {
                let version = stream.version();
                let range = stream.range();
                let total = stream.total_len();
                let id_ok = stream.meta().id == id;
                let content_type = stream.meta().content_type.clone();
                let degraded = degraded_of(db, stream.outcomes());
                match stream.collect_bytes().await {
                    Ok(data) => OpResult::Read {
                        version,
                        data,
                        content_type,
                        range,
                        total,
                        id_ok,
                        degraded,
                    },
                    Err(e) => failed(db, &e),
                }
            }
            Err(e) => failed(db, &e),
        },
        OpSpec::Delete { .. } => match db.delete(id).await {
            Ok(d) => OpResult::Deleted { found: true, confirmed: acks_of(db, &d.outcomes) },
            Err(e) if e.code() == ErrorCode::RecordNotFound => {
                OpResult::Deleted { found: false, confirmed: Vec::new() }
            }
            Err(e) => failed(db, &e),
        },
    };
    let res = ctx.tick();
    OpRecord { op: step.op, client, round, spec: step.spec, inv, res, value, result }
}

/// Waits (in virtual time) until no task but the caller's is left: the round's background
/// read-repairs have finished.
async fn drain() {
    let handle = tokio::runtime::Handle::current();
    for _ in 0..10_000 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if handle.metrics().num_alive_tasks() == 0 {
            return;
        }
    }
}

fn scrub_summary(
    r: crate::Result<crate::ScrubReport>,
) -> Result<(usize, usize, Vec<String>), String> {
    r.map(|s| (s.restored, s.removed, s.problems)).map_err(|e| e.to_string())
}

/// Runs `plan`: opens the client handles, runs every round (faults, concurrent clients,
/// then a barrier that waits for background tasks), heals every backend, scrubs twice with
/// a grace period of zero, and reads every id back.
///
/// Call it on a current-thread runtime with paused time (see the module documentation).
///
/// # Errors
/// If the store cannot be opened (its backends are healthy then, so this is a bug).
pub async fn run(plan: &Plan, opts: &RunOptions) -> crate::Result<RunResult> {
    let started = tokio::time::Instant::now();
    let nodes: Vec<Node> =
        (0..plan.n).map(|i| Node::new(i, plan.seed, opts.wrap.as_ref())).collect();
    let mut dbs = Vec::new();
    for h in 0..plan.handles {
        dbs.push(builder(plan, &nodes, h).open().await?);
    }
    let ctx = Arc::new(Ctx { seed: plan.seed, ids: plan.ids.clone(), clock: AtomicU64::new(0) });
    let mut history = Vec::with_capacity(plan.ops());
    for (r, round) in plan.rounds.iter().enumerate() {
        for (i, node) in nodes.iter().enumerate() {
            node.heal(round.latency[i], round.jitter[i]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut flappers = Vec::new();
        for &(i, fault) in &round.faults {
            nodes[i].apply(fault);
            if let Fault::Flap { period } = fault {
                let (ctl, stop) = (nodes[i].fail.clone(), Arc::clone(&stop));
                flappers.push(tokio::spawn(async move {
                    let mut down = false;
                    while !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(period).await;
                        down = !down;
                        ctl.set_down(down);
                    }
                }));
            }
        }
        let tasks: Vec<_> = round
            .clients
            .iter()
            .enumerate()
            .map(|(c, steps)| {
                let db = dbs[c % dbs.len()].clone();
                let ctx = Arc::clone(&ctx);
                let steps = steps.clone();
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(steps.len());
                    for step in steps {
                        if !step.think.is_zero() {
                            tokio::time::sleep(step.think).await;
                        }
                        out.push(execute(&db, &ctx, c, r, step).await);
                    }
                    out
                })
            })
            .collect();
        for t in tasks {
            match t.await {
                Ok(ops) => history.extend(ops),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        stop.store(true, Ordering::SeqCst);
        for f in flappers {
            let _ = f.await;
        }
        // Background read-repairs finish under this round's faults.
        drain().await;
    }
    for node in &nodes {
        node.heal(Duration::ZERO, Duration::ZERO);
    }
    drain().await;
    history.sort_by_key(|o| o.inv);

    let mut injected = BTreeMap::new();
    let mut add = |k: &str, v: u64| *injected.entry(k.to_owned()).or_insert(0) += v;
    for node in &nodes {
        add("calls failed (fail/down/flap)", node.fail.injected());
        add("gets corrupted", node.corrupt.corrupted());
        add("stale objects served", node.stale.served());
        add("puts/deletes refused after a crash", node.crash.refused());
        add("random transient failures", node.random.injected());
    }
    let backend_calls = nodes.iter().map(|n| n.count.total()).sum();

    // Heal, settle, read back, with a maintenance handle that removes partial writes at once.
    let fin = builder(plan, &nodes, plan.handles)
        .grace_period(Duration::ZERO)
        .read_repair(false)
        .hedge_after(None)
        .open()
        .await?;
    let scrub = scrub_summary(fin.scrub().await);
    let rescrub = scrub_summary(fin.scrub().await);
    let mut reads = Vec::new();
    let mut objects = Vec::new();
    for id in &plan.ids {
        let first = read_whole(&fin, id).await;
        let second = read_whole(&fin, id).await;
        reads.push((first, second));
        let dir = format!("r/{}/", fin.name_tag(id).to_text());
        objects.push(
            nodes
                .iter()
                .map(|n| {
                    let keys: Vec<String> =
                        n.mem.keys().into_iter().filter(|k| k.contains(&dir)).collect();
                    let segments = keys.iter().filter(|k| is_segment_key(k)).count();
                    (keys.len() - segments, segments)
                })
                .collect(),
        );
    }
    let listed = fin.list().await.map(|l| l.ids).map_err(|e| e.to_string());
    let final_state = FinalState { scrub, rescrub, reads, listed, objects };
    Ok(RunResult {
        plan: plan.clone(),
        history,
        final_state,
        injected,
        backend_calls,
        elapsed: started.elapsed(),
    })
}

impl RunResult {
    /// A hash of what happened (every operation's logical times and outcome, the bytes reads
    /// returned, the backends that acknowledged puts), without versions (which carry the
    /// wall clock): equal fingerprints mean the same history. Compare two runs of a seed to
    /// see whether it replays exactly.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for o in &self.history {
            eat(&o.op.to_le_bytes());
            eat(&o.inv.to_le_bytes());
            eat(&o.res.to_le_bytes());
            eat(o.result.outcome().as_bytes());
            match &o.result {
                OpResult::Put { acks, .. } | OpResult::Failed { acks, .. } => {
                    for a in acks {
                        eat(&a.to_le_bytes());
                    }
                }
                OpResult::Read { data, .. } => eat(data),
                _ => {}
            }
        }
        for (first, _) in &self.final_state.reads {
            eat(first.outcome().as_bytes());
        }
        h
    }
}

/// A segment key ends in `<version>-<index>`; a head share's in `<version>.<id share>`.
fn is_segment_key(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|last| last.contains('-'))
}

// ---------------------------------------------------------------------------------------
// The checker.

/// The invariant a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// (1) A read returned bytes no put of that id wrote (corrupted, another id's, or
    /// another version's), or a record with another id or content type.
    WrongData,
    /// (1) An operation failed with an error the model does not allow (wrong code, or
    /// `HMAC_FAILED` while no backend served bad data, or a put acknowledged below W).
    BadError,
    /// (2) An acknowledged write is lost: a read within the fault budget after it (and no
    /// later write) did not return it.
    LostWrite,
    /// (3) A deleted record came back.
    Resurrected,
    /// (4) A read returned a value older than an acknowledged write that finished before
    /// the read started (and is readable: K healthy backends acknowledged it).
    StaleRead,
    /// After healing and scrubbing: the store did not settle, or holds the wrong value.
    FinalState,
}

impl Invariant {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::WrongData => "(1) wrong data",
            Invariant::BadError => "(1) improper error",
            Invariant::LostWrite => "(2) lost acknowledged write",
            Invariant::Resurrected => "(3) resurrected delete",
            Invariant::StaleRead => "(4) older than the newest acknowledged",
            Invariant::FinalState => "final state",
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// The operation (plan number), if one.
    pub op: Option<u32>,
    /// The record id (index), if one.
    pub id: Option<usize>,
    /// What happened.
    pub detail: String,
    /// The write the broken invariant is about (plan number), if one: the put that should
    /// have been read (2), the delete that was undone (3), the newer write (4).
    pub related: Option<u32>,
}

/// What [`check`] found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Broken invariants (must be empty).
    pub violations: Vec<Violation>,
    /// How many reads each invariant's precondition applied to (how hard it was tested).
    pub checks: BTreeMap<String, u64>,
    /// Observations that are allowed by the model but worth counting.
    pub notes: BTreeMap<String, u64>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_owned()).or_insert(0) += 1;
}

/// Errors a read may answer with.
const READ_ERRORS: [ErrorCode; 4] = [
    ErrorCode::HmacFailed,
    ErrorCode::InsufficientShares,
    ErrorCode::RecordNotFound,
    ErrorCode::BackendError,
];

/// Judges a run against the model (docs/FAULTS.md):
///
/// 1. every read returns bytes some put of that id wrote (and its content type), or one of
///    `HMAC_FAILED`, `INSUFFICIENT_SHARES`, `RECORD_NOT_FOUND`, `BACKEND_ERROR`
///    (`HMAC_FAILED` only while some backend serves bad data); puts fail only with
///    `BACKEND_ERROR` and succeed only with W acknowledgements;
/// 2. after an acknowledged put P, with no other write of the id invoked after P's
///    invocation, a read returns P's value, if K of the backends that acknowledged P are
///    healthy in the read's round;
/// 3. after an acknowledged delete D, with every put of the id finished before D started,
///    a read never returns a value (only `RECORD_NOT_FOUND` or `INSUFFICIENT_SHARES`);
/// 4. a read never returns a value older (in real time or version) than a write X that
///    finished before the read started, if X is a delete, or an acknowledged put that K
///    healthy backends acknowledged and after which every write of the id is such a put;
///
/// and that after healing and scrubbing the store settled (no scrub problems, a second
/// scrub has nothing to do, one version per live id on every backend, nothing left of
/// deleted ids), holding for each id a value allowed by the history.
pub fn check(run: &RunResult) -> Report {
    let plan = &run.plan;
    let mut report = Report::default();
    let mut by_id: Vec<Vec<&OpRecord>> = vec![Vec::new(); plan.ids.len()];
    for o in &run.history {
        by_id[o.spec.id()].push(o);
    }
    for o in &run.history {
        check_write_result(plan, o, &mut report);
    }
    for (id, ops) in by_id.iter().enumerate() {
        let writes: Vec<&OpRecord> = ops.iter().copied().filter(|o| o.spec.is_write()).collect();
        let puts: Vec<&OpRecord> = writes.iter().copied().filter(|o| o.spec.is_put()).collect();
        for g in ops.iter().filter(|o| o.spec.is_read()) {
            let round = &plan.rounds[g.round];
            let cond = Conditions { faulty: round.faulty(), bad_data: round.serves_bad_data() };
            check_read(plan, id, g, &writes, &puts, &cond, &mut report);
        }
        check_final(run, id, &writes, &puts, &mut report);
    }
    let fin = &run.final_state;
    let mut settle = |detail: String| {
        report.violations.push(Violation {
            invariant: Invariant::FinalState,
            op: None,
            id: None,
            detail,
            related: None,
        })
    };
    match &fin.scrub {
        Ok((_, _, problems)) if !problems.is_empty() => {
            settle(format!("scrub after healing reported problems: {problems:?}"))
        }
        Err(e) => settle(format!("scrub after healing failed: {e}")),
        _ => {}
    }
    match &fin.rescrub {
        Ok((0, 0, problems)) if problems.is_empty() => {}
        Ok((restored, removed, problems)) => settle(format!(
            "a second scrub still restored {restored} and removed {removed} ({problems:?})"
        )),
        Err(e) => settle(format!("a second scrub failed: {e}")),
    }
    if let Ok(listed) = &run.final_state.listed {
        let live: Vec<String> = plan
            .ids
            .iter()
            .zip(&run.final_state.reads)
            .filter(|(_, (r, _))| matches!(r, OpResult::Read { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        let mut live = live;
        live.sort();
        if *listed != live {
            report.violations.push(Violation {
                invariant: Invariant::FinalState,
                op: None,
                id: None,
                detail: format!("list returned {listed:?}, the readable ids are {live:?}"),
                related: None,
            });
        }
    } else if let Err(e) = &run.final_state.listed {
        report.violations.push(Violation {
            invariant: Invariant::FinalState,
            op: None,
            id: None,
            detail: format!("list failed after healing: {e}"),
            related: None,
        });
    }
    report
}

fn check_write_result(plan: &Plan, o: &OpRecord, report: &mut Report) {
    let mut bad = |detail: String| {
        report.violations.push(Violation {
            invariant: Invariant::BadError,
            op: Some(o.op),
            id: Some(o.spec.id()),
            detail,
            related: None,
        })
    };
    match (&o.spec, &o.result) {
        (s, OpResult::Put { acks, .. }) if s.is_put() && acks.len() < plan.w => {
            bad(format!("put acknowledged by {} backends, W is {}", acks.len(), plan.w))
        }
        (s, OpResult::Failed { code, .. }) if s.is_put() && *code != ErrorCode::BackendError => {
            bad(format!("put failed with {}", code.as_str()))
        }
        (OpSpec::Delete { .. }, OpResult::Failed { code, .. })
            if *code != ErrorCode::BackendError =>
        {
            bad(format!("delete failed with {}", code.as_str()))
        }
        (s, OpResult::Failed { code, .. }) if s.is_read() && !READ_ERRORS.contains(code) => {
            bad(format!("read failed with {}", code.as_str()))
        }
        _ => {}
    }
}

/// The puts whose value (at the read's range) and content type the read returned.
fn matching_puts<'a>(g: &OpRecord, puts: &[&'a OpRecord]) -> Vec<&'a OpRecord> {
    let OpResult::Read { data, content_type, range, total, .. } = &g.result else {
        return Vec::new();
    };
    puts.iter()
        .copied()
        .filter(|p| {
            p.inv < g.res
                && p.value.len() as u64 == *total
                && *content_type == Some(content_type_of(p.op))
                && range.end <= *total
                && p.value[range.start as usize..range.end as usize] == data[..]
        })
        .collect()
}

/// The faults a read ran under: the faulty backends, and whether one served bad data.
struct Conditions {
    faulty: BTreeSet<usize>,
    bad_data: bool,
}

fn check_read(
    plan: &Plan,
    id: usize,
    g: &OpRecord,
    writes: &[&OpRecord],
    puts: &[&OpRecord],
    cond: &Conditions,
    report: &mut Report,
) {
    let faulty = &cond.faulty;
    let k = plan.k;
    // Writes invoked before the read returned: the only ones it can see.
    let writes: Vec<&OpRecord> = writes.iter().copied().filter(|x| x.inv < g.res).collect();
    let healthy_acks = |x: &OpRecord| {
        x.acked_put().map_or(0, |(_, acks)| acks.iter().filter(|i| !faulty.contains(i)).count())
    };
    let visible = |x: &OpRecord| x.acked_put().is_some() && healthy_acks(x) >= k;
    // A put whose value (or a newer one) every read must see: acknowledged on K healthy
    // backends, and every write invoked after it started is such a put too.
    let protected = |x: &OpRecord| {
        x.res < g.inv
            && visible(x)
            && writes.iter().all(|y| std::ptr::eq(*y, x) || y.res < x.inv || visible(y))
    };
    // (2): the last write, isolated and acknowledged on K healthy backends.
    let last = writes.iter().copied().max_by_key(|x| x.inv).filter(|l| {
        l.acked_put().is_some()
            && l.res < g.inv
            && healthy_acks(l) >= k
            && writes.iter().all(|y| std::ptr::eq(*y, *l) || y.res < l.inv)
    });
    // (3): an acknowledged delete after which no put was invoked (every put finished
    // before it started).
    let deleted_by = writes.iter().copied().find(|d| {
        d.deleted()
            && d.res < g.inv
            && writes.iter().filter(|p| p.spec.is_put()).all(|p| p.res < d.inv)
    });
    let protected_puts: Vec<&OpRecord> =
        writes.iter().copied().filter(|x| x.spec.is_put() && protected(x)).collect();
    if last.is_some() {
        bump(&mut report.checks, Invariant::LostWrite.name());
    }
    if deleted_by.is_some() {
        bump(&mut report.checks, Invariant::Resurrected.name());
    }
    if !protected_puts.is_empty() {
        bump(&mut report.checks, Invariant::StaleRead.name());
    }
    let mut violate = |invariant: Invariant, related: Option<u32>, detail: String| {
        report.violations.push(Violation {
            invariant,
            op: Some(g.op),
            id: Some(id),
            detail,
            related,
        });
    };

    match &g.result {
        OpResult::Read { version, id_ok, .. } => {
            if !id_ok {
                violate(Invariant::WrongData, None, "the record carries another id".to_owned());
                return;
            }
            let mut m = matching_puts(g, puts);
            if m.is_empty() {
                violate(
                    Invariant::WrongData,
                    None,
                    "the bytes (or content type) match no put of this id invoked before the \
                     read returned"
                        .to_owned(),
                );
                return;
            }
            // The version pins the put down when it is an acknowledged one.
            if let Some(a) = puts.iter().find(|p| p.acked_put().is_some_and(|(v, _)| v == version))
            {
                if !m.iter().any(|p| std::ptr::eq(*p, *a)) {
                    violate(
                        Invariant::WrongData,
                        Some(a.op),
                        format!("version {version} is put #{}'s, the bytes are not", a.op),
                    );
                    return;
                }
                m = vec![a];
            }
            let names = |m: &[&OpRecord]| {
                m.iter().map(|p| format!("#{}", p.op)).collect::<Vec<_>>().join(", ")
            };
            if let Some(l) = last
                && !m.iter().any(|p| std::ptr::eq(*p, l))
            {
                violate(
                    Invariant::LostWrite,
                    Some(l.op),
                    format!(
                        "returned put {} instead of put #{}, the last write (acknowledged by \
                         {} healthy backends)",
                        names(&m),
                        l.op,
                        healthy_acks(l)
                    ),
                );
            }
            if let Some(d) = deleted_by {
                violate(
                    Invariant::Resurrected,
                    Some(d.op),
                    format!("returned put {} after delete #{} (no put since)", names(&m), d.op),
                );
                return;
            }
            // (4) in real time: a later write between the put and the read.
            let culprit = |p: &OpRecord| {
                writes
                    .iter()
                    .copied()
                    .filter(|x| x.inv > p.res && x.res < g.inv && (x.deleted() || protected(x)))
                    .max_by_key(|x| x.inv)
            };
            let culprits: Vec<Option<&OpRecord>> = m.iter().map(|p| culprit(p)).collect();
            if culprits.iter().all(Option::is_some) {
                let x = culprits[0].expect("all some");
                let invariant =
                    if x.deleted() { Invariant::Resurrected } else { Invariant::StaleRead };
                violate(
                    invariant,
                    Some(x.op),
                    format!(
                        "returned put {}, but {} #{} finished after it and before the read began",
                        names(&m),
                        if x.deleted() { "delete" } else { "acknowledged put" },
                        x.op
                    ),
                );
                return;
            }
            // (4) by version: an acknowledged, protected put with a newer version.
            if let Some(q) =
                protected_puts.iter().find(|q| q.acked_put().is_some_and(|(v, _)| v > version))
            {
                violate(
                    Invariant::StaleRead,
                    Some(q.op),
                    format!(
                        "returned version {version}, older than put #{}'s {} (acknowledged by \
                         {} healthy backends before the read began)",
                        q.op,
                        q.acked_put().map(|(v, _)| v.to_string()).unwrap_or_default(),
                        healthy_acks(q)
                    ),
                );
            }
        }
        OpResult::Failed { code, .. } => {
            if !READ_ERRORS.contains(code) {
                return; // reported by check_write_result
            }
            if *code == ErrorCode::HmacFailed && !cond.bad_data {
                violate(
                    Invariant::BadError,
                    None,
                    "HMAC_FAILED although no backend serves bad data in this round".to_owned(),
                );
            }
            if let Some(l) = last {
                violate(
                    Invariant::LostWrite,
                    Some(l.op),
                    format!(
                        "{} after put #{}, the last write (acknowledged by {} healthy backends)",
                        code.as_str(),
                        l.op,
                        healthy_acks(l)
                    ),
                );
            } else if *code == ErrorCode::RecordNotFound
                && let Some(p) = protected_puts.first()
            {
                violate(
                    Invariant::LostWrite,
                    Some(p.op),
                    format!(
                        "RECORD_NOT_FOUND after put #{} (acknowledged by {} healthy backends, \
                         no delete since)",
                        p.op,
                        healthy_acks(p)
                    ),
                );
            }
            if let Some(d) = deleted_by
                && !matches!(code, ErrorCode::RecordNotFound | ErrorCode::InsufficientShares)
            {
                violate(
                    Invariant::Resurrected,
                    Some(d.op),
                    format!(
                        "{} after delete #{}: a complete version is listed again",
                        code.as_str(),
                        d.op
                    ),
                );
            }
            // Allowed, but counted: an acknowledged put followed only by failed puts, and
            // the record unreadable ("never neither" of DESIGN.md section 5).
            let after_failed_puts = writes.iter().copied().any(|x| {
                x.res < g.inv
                    && visible(x)
                    && writes.iter().all(|y| {
                        std::ptr::eq(*y, x)
                            || y.res < x.inv
                            || (y.spec.is_put() && y.acked_put().is_none() && y.res < g.inv)
                    })
            });
            if last.is_none() && after_failed_puts {
                bump(
                    &mut report.notes,
                    &format!("{} after failed puts that followed a readable put", code.as_str()),
                );
            }
        }
        _ => {}
    }
}

fn check_final(
    run: &RunResult,
    id: usize,
    writes: &[&OpRecord],
    puts: &[&OpRecord],
    report: &mut Report,
) {
    let plan = &run.plan;
    let fin = &run.final_state;
    let mut violate = |detail: String| {
        report.violations.push(Violation {
            invariant: Invariant::FinalState,
            op: None,
            id: Some(id),
            detail,
            related: None,
        })
    };
    let (first, second) = &fin.reads[id];
    if first != second {
        violate("two reads of the healed store differ".to_owned());
    }
    // The read of the healed store is judged like a read in a fault-free round that began
    // after every operation had returned.
    let probe = OpRecord {
        op: u32::MAX,
        client: usize::MAX,
        round: usize::MAX,
        spec: OpSpec::Get { id },
        inv: u64::MAX - 1,
        res: u64::MAX,
        value: Vec::new(),
        result: first.clone(),
    };
    let healthy = Conditions { faulty: BTreeSet::new(), bad_data: false };
    let before = report.violations.len();
    check_read(plan, id, &probe, writes, puts, &healthy, report);
    for v in &mut report.violations[before..] {
        v.op = None;
        v.detail = format!("reading the healed store: {}", v.detail);
    }
    let mut violate = |detail: String| {
        report.violations.push(Violation {
            invariant: Invariant::FinalState,
            op: None,
            id: Some(id),
            detail,
            related: None,
        })
    };
    // Stricter than the model, counted only: the value should come from a write that no
    // later write succeeded over (a failed delete that removed the newest version can
    // expose an older one whose cleanup had failed).
    let frontier: Vec<&OpRecord> = writes
        .iter()
        .copied()
        .filter(|x| !writes.iter().any(|y| y.succeeded_write() && y.inv > x.res))
        .collect();
    let objects = &fin.objects[id];
    match first {
        OpResult::Read { data, .. } => {
            let m = matching_puts(&probe, puts);
            if !m.is_empty() && !m.iter().any(|p| frontier.iter().any(|f| std::ptr::eq(*f, *p))) {
                bump(&mut report.notes, "healed store returns a value a later write superseded");
            }
            let segments =
                if data.len() > SEGMENT_SIZE { data.len().div_ceil(SEGMENT_SIZE) } else { 0 };
            for (b, (heads, segs)) in objects.iter().enumerate() {
                if *heads != 1 || *segs != segments {
                    violate(format!(
                        "after scrub b{b} holds {heads} head shares and {segs} segment shares \
                         (expected 1 and {segments})"
                    ));
                }
            }
        }
        OpResult::Failed { code: ErrorCode::RecordNotFound, .. } => {
            for (b, (heads, segs)) in objects.iter().enumerate() {
                if heads + segs != 0 {
                    violate(format!(
                        "after scrub b{b} still holds {heads} head and {segs} segment shares of \
                         a record that is gone"
                    ));
                }
            }
        }
        other => violate(format!(
            "the healed, scrubbed store cannot read the record: {}",
            match other {
                OpResult::Failed { message, .. } => message.clone(),
                other => other.outcome().to_owned(),
            }
        )),
    }
}

impl Report {
    /// A description of the violations, with the history of each record involved and the
    /// faults of the rounds it ran in.
    pub fn explain(&self, run: &RunResult) -> String {
        let plan = &run.plan;
        let mut s = String::new();
        let _ = writeln!(s, "{}", plan.headline());
        for v in &self.violations {
            let _ = writeln!(
                s,
                "VIOLATION {}: {}{}{}",
                v.invariant.name(),
                v.op.map(|o| format!("op #{o}: ")).unwrap_or_default(),
                v.id.map(|i| format!("[{:?}] ", plan.ids[i])).unwrap_or_default(),
                v.detail
            );
        }
        // One history per record: up to its last violating operation (or the end).
        let mut until: BTreeMap<usize, u64> = BTreeMap::new();
        for v in &self.violations {
            let Some(id) = v.id else { continue };
            let t =
                v.op.and_then(|op| run.history.iter().find(|o| o.op == op))
                    .map_or(u64::MAX, |o| o.res);
            let e = until.entry(id).or_insert(0);
            *e = (*e).max(t);
        }
        for (&id, &until) in &until {
            let ops: Vec<&OpRecord> =
                run.history.iter().filter(|o| o.spec.id() == id && o.inv <= until).collect();
            let from = ops.len().saturating_sub(24);
            let _ = writeln!(
                s,
                "history of {:?} up to {} (last {} of {} operations):",
                plan.ids[id],
                if until == u64::MAX { "the end".to_owned() } else { format!("time {until}") },
                ops.len() - from,
                ops.len()
            );
            let mut round = usize::MAX;
            for o in &ops[from..] {
                if o.round != round {
                    round = o.round;
                    let r = &plan.rounds[round];
                    let _ =
                        writeln!(s, "  -- round {round} [{}] {}", r.kind.name(), round_faults(r));
                }
                let _ = writeln!(s, "  {}", o.text(&plan.ids));
            }
            if until == u64::MAX {
                let fin = &run.final_state;
                let _ = writeln!(s, "  final read: {}", fin.reads[id].0.outcome());
                let _ = writeln!(
                    s,
                    "  final objects per backend (heads, segments): {:?}",
                    fin.objects[id]
                );
            }
        }
        s
    }
}

// ---------------------------------------------------------------------------------------
// Summaries.

/// Totals over runs, for the test's output and `cargo xtask faults`.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Operations run.
    pub ops: u64,
    /// Operations by kind, then by outcome (`ok`, an error code, `cancelled`).
    pub by_kind: BTreeMap<String, BTreeMap<String, u64>>,
    /// Runs by configuration (`2-of-3 W=3`).
    pub configs: BTreeMap<String, u64>,
    /// Rounds by kind (healthy, budget, chaos).
    pub rounds: BTreeMap<String, u64>,
    /// Faults switched on (one per backend per round), by kind.
    pub faults: BTreeMap<String, u64>,
    /// Faults the wrappers injected into calls, by kind.
    pub injected: BTreeMap<String, u64>,
    /// Calls that reached the memory backends.
    pub backend_calls: u64,
    /// Reads each invariant's precondition applied to.
    pub checks: BTreeMap<String, u64>,
    /// Allowed observations worth counting.
    pub notes: BTreeMap<String, u64>,
    /// Violations by invariant (must be empty).
    pub violations: BTreeMap<String, u64>,
    /// Seeds with violations.
    pub failing_seeds: Vec<u64>,
    /// Failing seeds by what made their violations go away when the seed was run again
    /// with a client feature switched off (filled in by the caller, see docs/FAULTS.md).
    pub triage: BTreeMap<String, Vec<u64>>,
    /// Virtual time, in seconds.
    pub virtual_secs: f64,
}

fn add_all(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

impl Summary {
    /// Adds one run and its report.
    pub fn add(&mut self, run: &RunResult, report: &Report) {
        let plan = &run.plan;
        self.seeds += 1;
        self.ops += run.history.len() as u64;
        for o in &run.history {
            *self
                .by_kind
                .entry(o.spec.kind().to_owned())
                .or_default()
                .entry(o.result.outcome().to_owned())
                .or_insert(0) += 1;
        }
        *self.configs.entry(format!("{}-of-{} W={}", plan.k, plan.n, plan.w)).or_insert(0) += 1;
        for r in &plan.rounds {
            *self.rounds.entry(r.kind.name().to_owned()).or_insert(0) += 1;
            for (_, f) in &r.faults {
                *self.faults.entry(f.name().to_owned()).or_insert(0) += 1;
            }
        }
        add_all(&mut self.injected, &run.injected);
        self.backend_calls += run.backend_calls;
        add_all(&mut self.checks, &report.checks);
        add_all(&mut self.notes, &report.notes);
        for v in &report.violations {
            *self.violations.entry(v.invariant.name().to_owned()).or_insert(0) += 1;
        }
        if !report.violations.is_empty() {
            self.failing_seeds.push(plan.seed);
        }
        self.virtual_secs += run.elapsed.as_secs_f64();
    }

    /// Adds another summary.
    pub fn merge(&mut self, other: &Summary) {
        self.seeds += other.seeds;
        self.ops += other.ops;
        for (k, m) in &other.by_kind {
            add_all(self.by_kind.entry(k.clone()).or_default(), m);
        }
        add_all(&mut self.configs, &other.configs);
        add_all(&mut self.rounds, &other.rounds);
        add_all(&mut self.faults, &other.faults);
        add_all(&mut self.injected, &other.injected);
        self.backend_calls += other.backend_calls;
        add_all(&mut self.checks, &other.checks);
        add_all(&mut self.notes, &other.notes);
        add_all(&mut self.violations, &other.violations);
        self.failing_seeds.extend(&other.failing_seeds);
        for (k, seeds) in &other.triage {
            self.triage.entry(k.clone()).or_default().extend(seeds);
        }
        self.virtual_secs += other.virtual_secs;
    }

    /// Total violations.
    pub fn violation_count(&self) -> u64 {
        self.violations.values().sum()
    }

    /// The summary as one line of JSON (what `cargo xtask faults` reads).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "seeds": self.seeds,
            "ops": self.ops,
            "by_kind": self.by_kind,
            "configs": self.configs,
            "rounds": self.rounds,
            "faults": self.faults,
            "injected": self.injected,
            "backend_calls": self.backend_calls,
            "checks": self.checks,
            "notes": self.notes,
            "violations": self.violations,
            "failing_seeds": self.failing_seeds,
            "triage": self.triage,
            "virtual_secs": self.virtual_secs,
        })
        .to_string()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |m: &BTreeMap<String, u64>| {
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        writeln!(
            f,
            "seeds: {}   operations: {}   backend calls: {}",
            self.seeds, self.ops, self.backend_calls
        )?;
        writeln!(f, "configurations: {}", line(&self.configs))?;
        writeln!(f, "operations by kind and outcome:")?;
        for (kind, outcomes) in &self.by_kind {
            let total: u64 = outcomes.values().sum();
            writeln!(f, "  {kind:<22} {total:>6}  ({})", line(outcomes))?;
        }
        writeln!(f, "rounds: {}", line(&self.rounds))?;
        writeln!(f, "faults switched on (backend x round): {}", line(&self.faults))?;
        writeln!(f, "faults injected into calls: {}", line(&self.injected))?;
        writeln!(f, "reads checked per invariant: {}", line(&self.checks))?;
        if !self.notes.is_empty() {
            writeln!(f, "allowed but noted: {}", line(&self.notes))?;
        }
        writeln!(f, "virtual time: {:.0}s", self.virtual_secs)?;
        if self.violations.is_empty() {
            writeln!(f, "violations: 0")
        } else {
            writeln!(
                f,
                "violations: {} ({}) in seeds {:?}",
                self.violation_count(),
                line(&self.violations),
                self.failing_seeds
            )?;
            for (cause, seeds) in &self.triage {
                writeln!(f, "  {cause}: seeds {seeds:?}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_a_function_of_the_seed() {
        let a = Plan::generate(7, 200);
        let b = Plan::generate(7, 200);
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(a.to_string(), Plan::generate(8, 200).to_string());
        assert!(a.ops() >= 200);
        for r in &a.rounds {
            let faulty = r.faulty().len();
            match r.kind {
                RoundKind::Healthy => assert_eq!(faulty, 0),
                RoundKind::Budget => assert!(faulty >= 1 && faulty <= a.budget()),
                RoundKind::Chaos => assert!(faulty > a.budget()),
            }
        }
    }

    #[test]
    fn values_are_unique_and_sized() {
        let a = value_of(1, 2, "x", 100);
        assert_eq!(a.len(), 100);
        assert_ne!(a, value_of(1, 3, "x", 100));
        assert_ne!(a, value_of(2, 2, "x", 100));
        assert!(value_of(1, 2, "x", 0).starts_with(b"x|"));
    }
}
