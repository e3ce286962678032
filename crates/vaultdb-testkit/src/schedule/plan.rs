// This file is long because a plan is one pure function of the seed: every choice, the
// re-share's included, is drawn in a fixed order from seeded streams defined here.
//! The plan: everything a run does, derived from one seed.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use vaultdb_core::{BackendErrorKind, Mode};

use super::prng::Prng;
use super::{CONFIGS, IDS, SEGMENT_SIZE};
use crate::{CorruptMode, Ops, StaleMode};

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
    /// The chosen operations sleep [`STALL`](super::STALL), longer than the call timeout.
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
    /// Restored from a snapshot taken when the round began, once the round's operations
    /// (and their background repairs) are done: everything it took during the round (puts,
    /// deletes, tombstones, repairs) is undone, and everything removed from it comes back
    /// (a backend restored from a backup, or rolled back by its provider).
    Rollback,
    /// Its keyring object is deleted when the round begins.
    KeyringLost,
    /// Its keyring object is replaced by another backend's when the round begins.
    KeyringSwapped,
}

impl Fault {
    /// A short name for summaries (`down`, `fail`, `stall`, `corrupt`, `stale`, `crash`,
    /// `flaky`, `flap`, `rollback`, `keyring-lost`, `keyring-swapped`).
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
            Fault::Rollback => "rollback",
            Fault::KeyringLost => "keyring-lost",
            Fault::KeyringSwapped => "keyring-swapped",
        }
    }

    /// True if the backend may serve bad bytes (the only faults that can explain an
    /// `HMAC_FAILED`).
    pub fn serves_bad_data(&self) -> bool {
        matches!(self, Fault::Corrupt(_) | Fault::Stale(_))
    }

    /// The faults added after the first eight, drawn from a stream of their own (see
    /// [`Plan::generate`]), so that the plans of older seeds keep their operations.
    fn generate_damage(rng: &mut Prng) -> Fault {
        match rng.below(5) {
            0 | 1 => Fault::Rollback,
            2 => Fault::KeyringLost,
            3 => Fault::KeyringSwapped,
            _ => Fault::Corrupt(CorruptMode::Oversize),
        }
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
            Fault::Rollback => f.write_str("rollback(to the round's start)"),
            Fault::KeyringLost => f.write_str("keyring lost"),
            Fault::KeyringSwapped => f.write_str("keyring swapped"),
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

    pub(super) fn is_put(&self) -> bool {
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
    /// Per backend: the most the seeded [`Randomized`](crate::Randomized) wrapper sleeps
    /// before a call.
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
    /// The store's storage mode. Not drawn from the seed (a seed's plan is the same in
    /// both modes): [`Mode::Shamir`] unless the caller sets it.
    pub mode: Mode,
    /// The rounds.
    pub rounds: Vec<Round>,
    /// A re-share of the store to a new configuration, if the seed drew one (about half
    /// the seeds; docs/FAULTS.md "Re-sharing").
    pub reshare: Option<Reshare>,
}

/// The id that a re-share plan only reads from the re-share's round on ([`IDS`]'s last).
const ARCHIVED: usize = IDS.len() - 1;

/// A re-share of the plan's store (the *old* configuration: backends `0..n`, prefix
/// `vaultdb`) to a new configuration ([`VaultDb::reshare`](vaultdb_core::VaultDb::reshare)),
/// run concurrently with the clients of its round and the rounds after it.
///
/// Backends are numbered across both stores: `0..n` are the old store's; the new store
/// uses some of them (under the prefix `v2`, on the same fault stack) and backends of its
/// own, numbered from `n` on. Every round's faults name backends by that number, so a
/// fault on a backend both stores use hits both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshare {
    /// The round whose start begins the first run (concurrently with its clients).
    pub round: usize,
    /// The new threshold K.
    pub k: usize,
    /// The new write quorum W.
    pub w: usize,
    /// The new store's backends, by number (its N is their count).
    pub nodes: Vec<usize>,
    /// The new store is in the other storage mode than the old one.
    pub flip_mode: bool,
    /// An old backend that goes down when the re-share starts and stays down until the
    /// store is healed after the last round (the new store does without it).
    pub lost: Option<usize>,
    /// The runs that crash: run `i` (from 0) is cut after `crashes[i]` backend calls, as if
    /// its process died; later runs go on until the re-share is done.
    pub crashes: Vec<u64>,
    /// Records copied between two saves of the progress cursor.
    pub checkpoint_every: usize,
    /// Per client: the round from which it uses a client of the new configuration (opened
    /// with `migrating_from` the old one), or `None`: it keeps the old configuration.
    pub switch: Vec<Option<usize>>,
}

impl Reshare {
    /// The new store's N.
    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    /// The new store's fault budget, `W - K`.
    pub fn budget(&self) -> usize {
        self.w - self.k
    }

    /// The new store's mode, when the old store is in `old`.
    pub fn mode(&self, old: Mode) -> Mode {
        match (self.flip_mode, old) {
            (false, m) => m,
            (true, Mode::Shamir) => Mode::Compact,
            (true, _) => Mode::Shamir,
        }
    }

    /// Whether client `c` uses the new configuration in round `r`.
    pub fn switched(&self, c: usize, r: usize) -> bool {
        self.switch.get(c).copied().flatten().is_some_and(|s| r >= s)
    }

    /// Draws the re-share of a plan whose rounds are generated, and changes those rounds
    /// from its round on: the new store's own backends get faults and latencies, the lost
    /// backend is down, and the faults that undo a backend's past (rollbacks, keyring
    /// damage) are replaced by others, outside the re-share's model (docs/FAULTS.md), and
    /// the writes of the last id become reads.
    fn generate(rng: &mut Prng, plan: &mut Plan) -> Reshare {
        let (n, rounds) = (plan.n, plan.rounds.len());
        let round = rng.below((rounds * 2 / 3).max(1));
        let (k, n2, w) = CONFIGS[rng.below(CONFIGS.len())];
        let lost = rng.percent(50).then(|| rng.below(n));
        let mut old: Vec<usize> = (0..n).filter(|i| Some(*i) != lost).collect();
        let most = n2.min(old.len());
        let keep = rng.between(most.saturating_sub(2), most);
        let mut nodes = Vec::new();
        for _ in 0..keep {
            nodes.push(old.remove(rng.below(old.len())));
        }
        nodes.sort_unstable();
        nodes.extend(n..n + (n2 - keep));
        let flip_mode = rng.percent(30);
        let crashes =
            (0..[0, 1, 1, 2, 3][rng.below(5)]).map(|_| rng.between(1, 400) as u64).collect();
        let checkpoint_every = rng.between(1, 3);
        let mut switch: Vec<Option<usize>> =
            (0..plan.clients).map(|_| rng.percent(70).then(|| round + rng.below(4))).collect();
        if switch.iter().all(Option::is_none) {
            switch[0] = Some(round);
        }
        let total = n + (n2 - keep);
        let budget = w - k;
        for (r, rd) in plan.rounds.iter_mut().enumerate() {
            rd.latency.resize(total, Duration::ZERO);
            rd.jitter.resize(total, Duration::ZERO);
            if r < round {
                continue;
            }
            // The last id is archived by the move: written before it, only read from the
            // re-share's round on, so that its reads and the final read-back judge a value
            // that crossed the move (the other ids are soon overwritten by new clients).
            for step in rd.clients.iter_mut().flatten() {
                if step.spec.is_write() && step.spec.id() == ARCHIVED {
                    step.spec = OpSpec::Get { id: ARCHIVED };
                }
            }
            for (_, f) in &mut rd.faults {
                if matches!(f, Fault::Rollback | Fault::KeyringLost | Fault::KeyringSwapped) {
                    *f = Fault::generate(rng);
                }
            }
            for b in n..total {
                if rng.percent(20) {
                    rd.faults.push((b, Fault::generate(rng)));
                }
                if rng.percent(50) {
                    rd.latency[b] = rng.millis(1, 40);
                }
                rd.jitter[b] = rng.millis(0, 5);
            }
            if let Some(l) = lost {
                rd.faults.retain(|(b, _)| *b != l);
                rd.faults.push((l, Fault::Down));
            }
            rd.faults.sort_by_key(|(b, _)| *b);
            // From the re-share on, a round's kind counts the new store's backends.
            let faulty = nodes.iter().filter(|b| rd.faults.iter().any(|(f, _)| f == *b)).count();
            rd.kind = match faulty {
                0 => RoundKind::Healthy,
                f if f <= budget => RoundKind::Budget,
                _ => RoundKind::Chaos,
            };
        }
        Reshare { round, k, w, nodes, flip_mode, lost, crashes, checkpoint_every, switch }
    }
}

impl Plan {
    /// The plan of `seed`, with at least `ops` operations, and a re-share in about half the
    /// seeds. A pure function of its arguments.
    pub fn generate(seed: u64, ops: usize) -> Plan {
        let mut plan = Plan::generate_plain(seed, ops);
        // The re-share is drawn from a stream of its own: a seed without one has the plan
        // it had before re-sharing was part of the checker.
        let mut rs = Prng::new(seed ^ 0x2E5A_4AE0_0000_0002);
        if rs.percent(50) {
            plan.reshare = Some(Reshare::generate(&mut rs, &mut plan));
        }
        plan
    }

    /// The plan of `seed` without a re-share, whether or not the seed draws one: the plan
    /// every seed had before re-sharing was part of the checker (the regressions found
    /// then replay it).
    pub fn generate_plain(seed: u64, ops: usize) -> Plan {
        let mut rng = Prng::new(seed);
        // Rollbacks and keyring damage replace some faults, drawn from their own stream.
        let mut damage = Prng::new(seed ^ 0xDA3A_6E00_0000_0001);
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
                let fault = Fault::generate(&mut rng);
                let fault =
                    if damage.percent(30) { Fault::generate_damage(&mut damage) } else { fault };
                faults.push((b, fault));
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
        let mode = Mode::Shamir;
        Plan {
            seed,
            k,
            n,
            w,
            clients,
            handles,
            ids,
            hedge_after,
            read_repair,
            mode,
            rounds,
            reshare: None,
        }
    }

    /// Every backend of the run, of both stores when there is a re-share.
    pub fn backends(&self) -> usize {
        self.rounds.first().map_or(self.n, |r| r.latency.len()).max(self.n)
    }

    /// The same plan without round `r` (the re-share's rounds follow).
    pub fn without_round(&self, r: usize) -> Plan {
        let mut plan = self.clone();
        plan.rounds.remove(r);
        if let Some(rs) = &mut plan.reshare {
            let shift = |x: &mut usize| {
                if *x > r {
                    *x -= 1;
                }
            };
            shift(&mut rs.round);
            rs.round = rs.round.min(plan.rounds.len().saturating_sub(1));
            for s in rs.switch.iter_mut().flatten() {
                shift(s);
            }
        }
        plan
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
        let start = plan.reshare.as_ref().map(|rs| rs.round);
        for r in (0..plan.rounds.len()).rev() {
            if plan.rounds[r].ops() == 0 && Some(r) != start {
                plan = plan.without_round(r);
            }
        }
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
            "seed {} ({:#x}): {}-of-{} {} W={} clients={} handles={} hedge={} read_repair={} \
             rounds={} ops={}{}",
            self.seed,
            self.seed,
            self.k,
            self.n,
            self.mode,
            self.w,
            self.clients,
            self.handles,
            self.hedge_after.map_or("off".to_owned(), |d| format!("{}ms", d.as_millis())),
            self.read_repair,
            self.rounds.len(),
            self.ops(),
            self.reshare.as_ref().map_or(String::new(), |rs| format!(
                " reshare=round {} to {}-of-{} {} W={}",
                rs.round,
                rs.k,
                rs.n(),
                rs.mode(self.mode),
                rs.w
            ))
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if let Some(rs) = &self.reshare {
            let switch: Vec<String> = rs
                .switch
                .iter()
                .enumerate()
                .map(|(c, s)| match s {
                    Some(r) => format!("c{c} from round {r}"),
                    None => format!("c{c} stays"),
                })
                .collect();
            writeln!(
                f,
                "re-share at round {} to {}-of-{} {} W={} over backends {:?}{}; runs crash after \
                 {:?} calls; checkpoint every {}; new configuration: {}",
                rs.round,
                rs.k,
                rs.n(),
                rs.mode(self.mode),
                rs.w,
                rs.nodes,
                rs.lost.map_or(String::new(), |l| format!(" (b{l} lost)")),
                rs.crashes,
                rs.checkpoint_every,
                switch.join(", ")
            )?;
        }
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

pub(super) fn round_faults(round: &Round) -> String {
    if round.faults.is_empty() {
        return "no faults".to_owned();
    }
    let faults: Vec<String> = round.faults.iter().map(|(b, f)| format!("b{b}:{f}")).collect();
    faults.join(", ")
}

pub(super) fn spec_text(spec: &OpSpec, ids: &[String]) -> String {
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
        for seed in 1..40 {
            let p = Plan::generate(seed, 200);
            for (i, r) in p.rounds.iter().enumerate() {
                // From a re-share on, a round's kind counts the new store's backends.
                let (faulty, budget) = match &p.reshare {
                    Some(rs) if i >= rs.round => {
                        (rs.nodes.iter().filter(|b| r.faulty().contains(b)).count(), rs.budget())
                    }
                    _ => (r.faulty().len(), p.budget()),
                };
                match r.kind {
                    RoundKind::Healthy => assert_eq!(faulty, 0),
                    RoundKind::Budget => assert!(faulty >= 1 && faulty <= budget),
                    RoundKind::Chaos => assert!(faulty > budget),
                }
                assert_eq!(r.latency.len(), p.backends());
            }
        }
    }

    #[test]
    fn about_half_the_seeds_re_share_and_the_others_keep_their_plans() {
        let with: Vec<Plan> =
            (1..=200).map(|s| Plan::generate(s, 100)).filter(|p| p.reshare.is_some()).collect();
        assert!((70..=130).contains(&with.len()), "{} of 200", with.len());
        for seed in (1..=200).filter(|s| with.iter().all(|p| p.seed != *s)) {
            let (a, b) = (Plan::generate(seed, 100), Plan::generate_plain(seed, 100));
            assert_eq!(a.to_string(), b.to_string());
        }
        for p in &with {
            let rs = p.reshare.as_ref().unwrap();
            assert!(rs.round < p.rounds.len());
            assert_eq!(rs.n(), rs.nodes.len());
            assert!(rs.nodes.iter().all(|b| Some(*b) != rs.lost && *b < p.backends()));
            assert!(rs.switch.iter().any(Option::is_some));
            // Before its round, the plan is the plain plan of the seed.
            let plain = Plan::generate_plain(p.seed, 100);
            assert_eq!(plain.rounds.len(), p.rounds.len());
            for (a, b) in plain.rounds[..rs.round].iter().zip(&p.rounds) {
                assert_eq!((&a.faults, &a.clients), (&b.faults, &b.clients));
            }
            // The lost backend is down in every round from the re-share on, and no round
            // from then on rolls a backend back or damages a keyring.
            for r in &p.rounds[rs.round..] {
                if let Some(l) = rs.lost {
                    assert!(r.faults.contains(&(l, Fault::Down)), "{p}");
                }
                let archived = r.clients.iter().flatten().filter(|s| s.spec.id() == ARCHIVED);
                assert!(archived.clone().all(|s| s.spec.is_read()));
                assert!(r.faults.iter().all(|(_, f)| !matches!(
                    f,
                    Fault::Rollback | Fault::KeyringLost | Fault::KeyringSwapped
                )));
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
