// This file is long because the runner (`run`) and the re-share's driver share the round
// loop's state (the backends of both stores, the client handles, the history's clock).
//! The cluster: N memory backends under fault stacks, the client handles over them, and
//! [`run`], which executes a plan and records its history.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use vaultdb_core::naming::KeySpace;
use vaultdb_core::rng::CsRng;
use vaultdb_core::{
    BackendError, BackendErrorKind, BackendOutcome, CallPolicy, ErrorCode, MemoryBackend, Mode,
    OutcomeStatus, PutResult, Record, RecordMeta, ReshareOptions, ResharePhase, ScrubReport,
    StorageBackend, VaultDb, VaultDbBuilder, VaultError,
};

use super::history::{OpRecord, OpResult, Store};
use super::plan::{Fault, OpSpec, Plan, Reshare, Step, content_type_of, value_of};
use super::{CALL_TIMEOUT, FENCE_CHECK, SEGMENT_SIZE, SETTLE_AFTER, STALL};
use crate::{
    CorruptingHandle, CountingHandle, Crashing, CrashingHandle, Failing, FailingHandle,
    MemoryStack, Ops, Randomized, RandomizedHandle, Slow, SlowHandle, StaleHandle, StaleMode,
};

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
    /// A [`Fault::Rollback`]'s snapshot, restored when the round ends.
    snapshot: Mutex<Option<Vec<(String, Bytes)>>>,
}

impl Node {
    fn new(i: usize, seed: u64, wrap: Option<&Wrap>) -> Node {
        let stack = MemoryStack::new(format!("b{i}"), format!("memory backend {i}"));
        let crashing = Crashing::new(stack.backend, 0);
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
            mem: stack.mem,
            fail,
            slow: slow_h,
            random: random_h,
            crash,
            stale: stack.stale,
            corrupt: stack.corrupt,
            count: stack.count,
            backend,
            snapshot: Mutex::new(None),
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
            Fault::Rollback => {
                *self.snapshot.lock().expect("snapshot lock") = Some(self.mem.snapshot());
            }
            // Applied by `run`, which sees every backend.
            Fault::KeyringLost | Fault::KeyringSwapped => {}
        }
    }

    /// Ends a [`Fault::Rollback`]: the backend holds exactly what it held when the round
    /// began.
    fn roll_back(&self) -> bool {
        let Some(snapshot) = self.snapshot.lock().expect("snapshot lock").take() else {
            return false;
        };
        self.mem.clear();
        for (key, bytes) in snapshot {
            self.mem.raw_put(key, bytes);
        }
        true
    }
}

/// A store's configuration: threshold, write quorum, mode, prefix, backends.
#[derive(Clone)]
struct Config {
    k: usize,
    w: usize,
    mode: Mode,
    prefix: &'static str,
    backends: Vec<Arc<dyn StorageBackend>>,
}

impl Config {
    /// The plan's store: backends `0..n`.
    fn old_store(plan: &Plan, nodes: &[Node]) -> Config {
        let backends = nodes[..plan.n].iter().map(|n| n.backend.clone()).collect();
        Config { k: plan.k, w: plan.w, mode: plan.mode, prefix: OLD_PREFIX, backends }
    }

    /// The store a re-share fills.
    fn new_store(plan: &Plan, rs: &Reshare, nodes: &[Node]) -> Config {
        let backends = rs.nodes.iter().map(|i| nodes[*i].backend.clone()).collect();
        Config { k: rs.k, w: rs.w, mode: rs.mode(plan.mode), prefix: NEW_PREFIX, backends }
    }

    /// The same configuration over other handles to the backends.
    fn with_backends(
        mut self,
        wrap: impl Fn(Arc<dyn StorageBackend>) -> Arc<dyn StorageBackend>,
    ) -> Config {
        self.backends = self.backends.into_iter().map(wrap).collect();
        self
    }

    /// A client builder: `handle` seeds its random source.
    fn builder(&self, plan: &Plan, handle: usize, started: tokio::time::Instant) -> VaultDbBuilder {
        // The clients' wall clock follows virtual time, so that the settle delay is measured
        // on the same clock as the calls' timeouts.
        let wall: vaultdb_core::WallClock =
            Arc::new(move || 1_700_000_000_000_000 + started.elapsed().as_micros() as u64);
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&plan.seed.to_le_bytes());
        seed[8..10].copy_from_slice(&(handle as u16).wrapping_add(1).to_le_bytes());
        let mut b = VaultDb::builder()
            .threshold(self.k)
            .write_quorum(self.w)
            .call_policy(CallPolicy {
                timeout: CALL_TIMEOUT,
                max_attempts: 2,
                // No backoff: the client's backoff jitter is not seeded.
                base_backoff: Duration::ZERO,
                max_backoff: Duration::ZERO,
            })
            .hedge_after(plan.hedge_after)
            .read_repair(plan.read_repair)
            .mode(self.mode)
            .segment_size(SEGMENT_SIZE)
            .settle_after(SETTLE_AFTER)
            .wall_clock(wall)
            .rng(Box::new(CsRng::from_seed(seed)));
        if self.prefix != OLD_PREFIX {
            b = b.prefix(self.prefix);
        }
        if plan.reshare.is_some() {
            b = b.fence_check(Some(FENCE_CHECK));
        }
        for backend in &self.backends {
            b = b.backend_arc(backend.clone());
        }
        b
    }
}

/// The plan's store's prefix (the client's default).
const OLD_PREFIX: &str = "vaultdb";
/// The prefix of the store a re-share fills.
const NEW_PREFIX: &str = "v2";

fn builder(
    plan: &Plan,
    nodes: &[Node],
    handle: usize,
    started: tokio::time::Instant,
) -> VaultDbBuilder {
    Config::old_store(plan, nodes).builder(plan, handle, started)
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
    /// Per id, per backend: (head shares, segment shares, tombstones) stored under the id's
    /// name tag.
    pub objects: Vec<Vec<(usize, usize, usize)>>,
    /// Backends whose keyring object is not the one the store was created with, after the
    /// scrubs (a lost or swapped keyring share that was never repaired).
    pub bad_keyrings: Vec<usize>,
    /// With a re-share: what is left of the old store on its backends besides its keyring
    /// and moved notice (backend number and key), after the re-share was done.
    pub old_left: Vec<(usize, String)>,
}

/// What the re-share of a run did (docs/FAULTS.md "Re-sharing"): logical times on the
/// history's clock (an operation with `inv >= t` began after the event at `t`, one with
/// `res < t` had returned before it), and each run.
#[derive(Clone, Debug, Default)]
pub struct ReshareLog {
    /// The first run began (fencing the old store).
    pub started: u64,
    /// A run first reported the copy phase (the floor was recorded before).
    pub copying: Option<u64>,
    /// A run first returned done (every record copied; the old store's objects removed,
    /// maybe not from every backend).
    pub done: Option<u64>,
    /// A run returned done with every old backend cleared, before the final read-back.
    pub finished: bool,
    /// Every run, in order.
    pub runs: Vec<ReshareRun>,
}

/// One run of a re-share (a process that started it, or resumed it).
#[derive(Clone, Debug)]
pub struct ReshareRun {
    /// The round it started in (`None`: after the last round, on the healed store).
    pub round: Option<usize>,
    /// Logical time it began.
    pub start: u64,
    /// Logical time it ended.
    pub end: u64,
    /// `done`, `crashed`, or `failed`.
    pub outcome: &'static str,
    /// What happened, in words.
    pub detail: String,
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
    /// `(round, backend)`: the backends rolled back when a round ended (undoing what they
    /// took in that round).
    pub rollbacks: Vec<(usize, usize)>,
    /// One fresh client opened in each round with faults, after the faults were applied.
    pub opens: Vec<ProbeOpen>,
    /// The re-share, if the plan has one.
    pub reshare: Option<ReshareLog>,
}

/// A client opened in a round with faults: whether it could open the store.
#[derive(Clone, Debug)]
pub struct ProbeOpen {
    /// The round.
    pub round: usize,
    /// Backends that are not faulty in the round and whose keyring object is the one the
    /// store was created with: with K of them, opening must succeed.
    pub good_slots: usize,
    /// `Ok` or the error.
    pub result: Result<(), String>,
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

    /// The logical time now, without taking a tick.
    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }
}

/// The number of the backend with this id (`b<number>`, unique across both stores).
fn node_of(id: &str) -> Option<usize> {
    id.strip_prefix('b')?.parse().ok()
}

fn acks_of(_db: &VaultDb, outcomes: &[BackendOutcome]) -> Vec<usize> {
    outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Ok)
        .filter_map(|o| node_of(&o.backend))
        .collect()
}

fn degraded_of(_db: &VaultDb, outcomes: &[BackendOutcome]) -> Vec<usize> {
    outcomes
        .iter()
        .filter(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped))
        .filter_map(|o| node_of(&o.backend))
        .collect()
}

fn failed(db: &VaultDb, e: &VaultError) -> OpResult {
    OpResult::Failed { code: e.code(), message: e.to_string(), acks: acks_of(db, e.outcomes()) }
}

fn put_result(db: &VaultDb, r: vaultdb_core::Result<PutResult>) -> OpResult {
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

async fn execute(
    db: &VaultDb,
    store: Store,
    ctx: &Ctx,
    client: usize,
    round: usize,
    step: Step,
) -> OpRecord {
    let id = ctx.ids[step.spec.id()].as_str();
    let value = match step.spec {
        OpSpec::Put { len, .. } | OpSpec::CrashPut { len, .. } => {
            value_of(ctx.seed, step.op, id, len)
        }
        _ => Vec::new(),
    };
    let ct = content_type_of(step.op);
    let started = tokio::time::Instant::now();
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
    let took = started.elapsed();
    OpRecord { op: step.op, client, round, spec: step.spec, store, inv, res, value, result, took }
}

/// Waits (in virtual time) until no task but the caller's is left: the round's background
/// read-repairs have finished. A re-share still running (`driver`) is one task that may go
/// on (its process's own background tasks must have finished too).
async fn drain(driver: Option<&tokio::task::JoinHandle<ReshareLog>>) {
    let handle = tokio::runtime::Handle::current();
    for _ in 0..10_000 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let allowed = usize::from(driver.is_some_and(|d| !d.is_finished()));
        if handle.metrics().num_alive_tasks() <= allowed {
            return;
        }
    }
}

/// A handle of the re-sharing process on a backend: it counts the calls the process may
/// still make (`left`; negative: no limit), and once they are used up every call fails at
/// once, as nothing of a crashed process reaches a backend any more.
#[derive(Debug)]
struct Budgeted {
    inner: Arc<dyn StorageBackend>,
    left: Arc<AtomicI64>,
}

impl Budgeted {
    async fn admit(&self, _op: crate::Ops) -> Result<(), BackendError> {
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(BackendError::new(
                BackendErrorKind::Permanent,
                "the re-sharing process crashed",
            ));
        }
        if left > 0 {
            self.left.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

crate::forward_backend! {
    impl StorageBackend for Budgeted {
        forward id, name, put, get, delete, list_page to self.inner after self.admit;
    }
}

/// How many runs a re-share gets before the checker gives up on it (a violation).
const MAX_RESHARE_RUNS: usize = 100;

/// Round number sent to the re-share once the rounds are over and every backend is healed.
const HEALED: usize = usize::MAX;

/// Runs the plan's re-share until it is done: each run is a new process (new client
/// handles of both configurations); a run that crashes (its call budget from the plan runs
/// out, and it is dropped where it stands) or fails is run again when the next round
/// starts, or a second later once the store is healed.
async fn drive_reshare(
    plan: Plan,
    old: Config,
    new: Config,
    ctx: Arc<Ctx>,
    mut rounds: tokio::sync::watch::Receiver<usize>,
    started: tokio::time::Instant,
) -> ReshareLog {
    let rs = plan.reshare.clone().expect("a plan with a re-share");
    let mut log = ReshareLog { started: ctx.now(), ..ReshareLog::default() };
    let copying = Arc::new(AtomicU64::new(u64::MAX));
    for attempt in 0..MAX_RESHARE_RUNS {
        let round = *rounds.borrow_and_update();
        let left = Arc::new(AtomicI64::new(-1));
        let wrap = |b: Arc<dyn StorageBackend>| -> Arc<dyn StorageBackend> {
            Arc::new(Budgeted { inner: b, left: Arc::clone(&left) })
        };
        let (old_cfg, new_cfg) = (old.clone().with_backends(wrap), new.clone().with_backends(wrap));
        let start = ctx.now();
        let handle = 500 + 2 * attempt;
        let crash = rs.crashes.get(attempt).copied();
        let run = async {
            let old_db = old_cfg.builder(&plan, handle, started).open().await?;
            let new_db = new_cfg
                .builder(&plan, handle + 1, started)
                .migrating_from(old_db.clone())
                .open()
                .await?;
            if let Some(calls) = crash {
                left.store(calls as i64, Ordering::SeqCst);
            }
            let mut options = ReshareOptions::default();
            options.checkpoint_every = rs.checkpoint_every;
            let copying = Arc::clone(&copying);
            let ctx = Arc::clone(&ctx);
            let resharing = old_db.reshare(&new_db, &options, move |p| {
                if p.phase >= ResharePhase::Copying {
                    copying.fetch_min(ctx.now(), Ordering::SeqCst);
                }
            });
            Ok::<_, VaultError>(cut(&left, resharing).await)
        };
        let (outcome, detail) = match run.await {
            Ok(Some(Ok(report))) => {
                log.done.get_or_insert(ctx.now());
                if report.problems.is_empty() {
                    ("done", "done".to_owned())
                } else {
                    ("done", format!("done, old backends not cleared: {:?}", report.problems))
                }
            }
            Ok(Some(Err(e))) | Err(e) => ("failed", e.to_string()),
            Ok(None) => ("crashed", format!("crashed after {} calls", crash.unwrap_or(0))),
        };
        let finished = detail == "done";
        log.runs.push(ReshareRun {
            round: (round != HEALED).then_some(round),
            start,
            end: ctx.now(),
            outcome,
            detail,
        });
        if finished {
            log.finished = true;
            break;
        }
        if *rounds.borrow() == HEALED || rounds.changed().await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let c = copying.load(Ordering::SeqCst);
    log.copying = (c != u64::MAX).then_some(c);
    log
}

/// Runs `fut` until the call budget `left` is used up (it reaches zero), then drops it
/// there, as a crash of its process would: `None` if it was dropped.
async fn cut<F: std::future::Future>(left: &AtomicI64, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending if left.load(Ordering::SeqCst) == 0 => {
            std::task::Poll::Ready(None)
        }
        std::task::Poll::Pending => std::task::Poll::Pending,
    })
    .await
}

fn scrub_summary(
    r: vaultdb_core::Result<ScrubReport>,
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
pub async fn run(plan: &Plan, opts: &RunOptions) -> vaultdb_core::Result<RunResult> {
    let started = tokio::time::Instant::now();
    let nodes: Vec<Node> =
        (0..plan.backends()).map(|i| Node::new(i, plan.seed, opts.wrap.as_ref())).collect();
    let mut dbs = Vec::new();
    for h in 0..plan.handles {
        dbs.push(builder(plan, &nodes, h, started).open().await?);
    }
    let keyring_key =
        KeySpace::new(OLD_PREFIX).expect("valid prefix").keyring_key().as_str().to_owned();
    let keyrings: Vec<Option<Bytes>> = nodes.iter().map(|n| n.mem.raw_get(&keyring_key)).collect();
    let intact =
        |i: usize| keyrings[i].is_some() && nodes[i].mem.raw_get(&keyring_key) == keyrings[i];
    // With a re-share, the new store is created before the first round (empty: an operator
    // setting up the new configuration); its clients open it with `migrating_from`.
    let new_cfg = plan.reshare.as_ref().map(|rs| Config::new_store(plan, rs, &nodes));
    let new_keyring_key =
        KeySpace::new(NEW_PREFIX).expect("valid prefix").keyring_key().as_str().to_owned();
    if let Some(cfg) = &new_cfg {
        cfg.builder(plan, 400, started).migrating_from(dbs[0].clone()).open().await?;
    }
    let new_keyrings: Vec<Option<Bytes>> =
        nodes.iter().map(|n| n.mem.raw_get(&new_keyring_key)).collect();
    let mut new_dbs: Vec<Option<VaultDb>> = vec![None; plan.handles];
    let (round_tx, round_rx) = tokio::sync::watch::channel(0usize);
    let mut driver: Option<tokio::task::JoinHandle<ReshareLog>> = None;
    let ctx = Arc::new(Ctx { seed: plan.seed, ids: plan.ids.clone(), clock: AtomicU64::new(0) });
    let mut history = Vec::with_capacity(plan.ops());
    let mut rollbacks = Vec::new();
    let mut opens = Vec::new();
    for (r, round) in plan.rounds.iter().enumerate() {
        if r > 0 {
            // Let every earlier write age past the settle delay, so that this round's reads
            // settle records and then take the one-round-trip path (virtual time: free).
            tokio::time::sleep(SETTLE_AFTER + Duration::from_secs(1)).await;
        }
        for (i, node) in nodes.iter().enumerate() {
            node.heal(round.latency[i], round.jitter[i]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut flappers = Vec::new();
        for &(i, fault) in &round.faults {
            nodes[i].apply(fault);
            // Keyring damage lasts until a client repairs it: never leave fewer than K good
            // keyring shares, or the final, healed store could not be opened at all.
            let keep_k = || (0..plan.n).filter(|j| *j != i && intact(*j)).count() >= plan.k;
            match fault {
                Fault::KeyringLost if keep_k() => {
                    nodes[i].mem.raw_delete(&keyring_key);
                }
                Fault::KeyringSwapped if keep_k() => {
                    let other = &keyrings[(i + 1) % plan.n];
                    if let Some(bytes) = other {
                        nodes[i].mem.raw_put(keyring_key.clone(), bytes.clone());
                    }
                }
                _ => {}
            }
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
        let resharing = plan.reshare.as_ref().filter(|rs| r >= rs.round);
        if !round.faults.is_empty() {
            // A client started now (a process restarting, a new server) must open the store
            // whenever K backends are healthy and hold their keyring share: from the
            // re-share's round on, the new store (whose keyring is never damaged).
            let faulty = round.faulty();
            let (good_slots, result) = match (resharing, &new_cfg) {
                (Some(rs), Some(cfg)) => {
                    let good = rs.nodes.iter().filter(|i| !faulty.contains(i)).count();
                    let open = cfg
                        .builder(plan, 1000 + r, started)
                        .migrating_from(dbs[0].clone())
                        .open()
                        .await;
                    (good, open.map(drop))
                }
                _ => {
                    let good = (0..plan.n).filter(|i| !faulty.contains(i) && intact(*i)).count();
                    let open = builder(plan, &nodes, plan.handles + 1 + r, started).open().await;
                    (good, open.map(drop))
                }
            };
            let result = result.map_err(|e| e.to_string());
            opens.push(ProbeOpen { round: r, good_slots, result });
        }
        let _ = round_tx.send(r);
        if let (Some(rs), Some(cfg)) = (resharing, &new_cfg) {
            if driver.is_none() {
                driver = Some(tokio::spawn(drive_reshare(
                    plan.clone(),
                    Config::old_store(plan, &nodes),
                    cfg.clone(),
                    Arc::clone(&ctx),
                    round_rx.clone(),
                    started,
                )));
            }
            // Clients that switch now reload their configuration: a client of the new one,
            // per handle, opened under this round's faults (if it cannot open, they go on
            // with the old one and try again next round).
            for (h, slot) in new_dbs.iter_mut().enumerate() {
                let wanted = (0..plan.clients).any(|c| c % plan.handles == h && rs.switched(c, r));
                if wanted && slot.is_none() {
                    *slot = cfg
                        .builder(plan, plan.handles + 100 + h, started)
                        .migrating_from(dbs[h].clone())
                        .open()
                        .await
                        .ok();
                }
            }
        }
        let tasks: Vec<_> = round
            .clients
            .iter()
            .enumerate()
            .map(|(c, steps)| {
                let h = c % dbs.len();
                let (db, store) = match &new_dbs[h] {
                    Some(new) if resharing.is_some_and(|rs| rs.switched(c, r)) => {
                        (new.clone(), Store::New)
                    }
                    _ => (dbs[h].clone(), Store::Old),
                };
                let ctx = Arc::clone(&ctx);
                let steps = steps.clone();
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(steps.len());
                    for step in steps {
                        if !step.think.is_zero() {
                            tokio::time::sleep(step.think).await;
                        }
                        out.push(execute(&db, store, &ctx, c, r, step).await);
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
        drain(driver.as_ref()).await;
        for (i, node) in nodes.iter().enumerate() {
            if node.roll_back() {
                rollbacks.push((r, i));
            }
        }
    }
    for node in &nodes {
        node.heal(Duration::ZERO, Duration::ZERO);
    }
    // The re-share, if it is not done yet, runs again on the healed store until it is.
    let _ = round_tx.send(HEALED);
    let reshare = match driver.take() {
        Some(d) => match d.await {
            Ok(log) => Some(log),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        },
        None => None,
    };
    drain(None).await;
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
    let fast = dbs.iter().chain(new_dbs.iter().flatten()).map(|d| d.stats().fast_reads).sum();
    add("reads answered from marks (no listing)", fast);

    // Heal, settle, read back, with a maintenance handle that removes partial writes at once:
    // of the new store once the re-share is done (a client of the new configuration alone;
    // one migrating from the old store if the re-share never finished, a violation anyway).
    let fin_prefix = if reshare.is_some() { NEW_PREFIX } else { OLD_PREFIX };
    let (fin, fin_nodes, fin_keyring, fin_keyrings): (VaultDb, Vec<usize>, &str, &[Option<Bytes>]) =
        match (&new_cfg, &plan.reshare, &reshare) {
            (Some(cfg), Some(rs), Some(log)) => {
                let mut b = cfg.builder(plan, 401, started);
                if !log.finished {
                    b = b.migrating_from(dbs[0].clone());
                }
                let fin = b
                    .grace_period(Duration::ZERO)
                    .read_repair(false)
                    .hedge_after(None)
                    .open()
                    .await?;
                (fin, rs.nodes.clone(), new_keyring_key.as_str(), &new_keyrings[..])
            }
            _ => {
                let fin = builder(plan, &nodes, plan.handles, started)
                    .grace_period(Duration::ZERO)
                    .read_repair(false)
                    .hedge_after(None)
                    .open()
                    .await?;
                (fin, (0..plan.n).collect(), keyring_key.as_str(), &keyrings[..])
            }
        };
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
            fin_nodes
                .iter()
                .map(|i| {
                    let keys: Vec<String> =
                        nodes[*i].mem.keys().into_iter().filter(|k| k.contains(&dir)).collect();
                    let segments = keys.iter().filter(|k| is_segment_key(k)).count();
                    let tombs = keys.iter().filter(|k| is_tombstone_key(fin_prefix, k)).count();
                    (keys.len() - segments - tombs, segments, tombs)
                })
                .collect(),
        );
    }
    let listed = fin.list().await.map(|l| l.ids).map_err(|e| e.to_string());
    let bad_keyrings = fin_nodes
        .iter()
        .copied()
        .filter(|i| {
            fin_keyrings[*i].is_none() || nodes[*i].mem.raw_get(fin_keyring) != fin_keyrings[*i]
        })
        .collect();
    // What the re-share left of the old store: its keyring and moved notice only.
    let mut old_left = Vec::new();
    if plan.reshare.is_some() {
        let ks = KeySpace::new(OLD_PREFIX).expect("valid prefix");
        let keep = [ks.keyring_key().as_str().to_owned(), ks.moved_key().as_str().to_owned()];
        for (i, node) in nodes.iter().enumerate().take(plan.n) {
            for key in node.mem.keys() {
                if key.starts_with(&format!("{OLD_PREFIX}/")) && !keep.contains(&key) {
                    old_left.push((i, key));
                }
            }
        }
    }
    let final_state = FinalState { scrub, rescrub, reads, listed, objects, bad_keyrings, old_left };
    Ok(RunResult {
        plan: plan.clone(),
        history,
        final_state,
        injected,
        backend_calls,
        elapsed: started.elapsed(),
        rollbacks,
        opens,
        reshare,
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
fn is_tombstone_key(prefix: &str, key: &str) -> bool {
    matches!(
        KeySpace::new(prefix).ok().and_then(|ks| ks.parse(key)),
        Some(vaultdb_core::naming::ParsedKey::Tombstone { .. })
    )
}

fn is_segment_key(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|last| last.contains('-'))
}
