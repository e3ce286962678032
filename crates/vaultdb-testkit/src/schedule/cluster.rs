//! The cluster: N memory backends under fault stacks, the client handles over them, and
//! [`run`], which executes a plan and records its history.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use vaultdb_core::naming::KeySpace;
use vaultdb_core::rng::CsRng;
use vaultdb_core::{
    BackendOutcome, CallPolicy, ErrorCode, MemoryBackend, OutcomeStatus, PutResult, Record,
    RecordMeta, ScrubReport, StorageBackend, VaultDb, VaultDbBuilder, VaultError,
};

use super::history::{OpRecord, OpResult};
use super::plan::{Fault, OpSpec, Plan, Step, content_type_of, value_of};
use super::{CALL_TIMEOUT, SEGMENT_SIZE, SETTLE_AFTER, STALL};
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

fn builder(
    plan: &Plan,
    nodes: &[Node],
    handle: usize,
    started: tokio::time::Instant,
) -> VaultDbBuilder {
    // The clients' wall clock follows virtual time, so that the settle delay is measured
    // on the same clock as the calls' timeouts.
    let wall: vaultdb_core::WallClock =
        Arc::new(move || 1_700_000_000_000_000 + started.elapsed().as_micros() as u64);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&plan.seed.to_le_bytes());
    seed[8..10].copy_from_slice(&(handle as u16).wrapping_add(1).to_le_bytes());
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
        .mode(plan.mode)
        .segment_size(SEGMENT_SIZE)
        .settle_after(SETTLE_AFTER)
        .wall_clock(wall)
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
    /// Per id, per backend: (head shares, segment shares, tombstones) stored under the id's
    /// name tag.
    pub objects: Vec<Vec<(usize, usize, usize)>>,
    /// Backends whose keyring object is not the one the store was created with, after the
    /// scrubs (a lost or swapped keyring share that was never repaired).
    pub bad_keyrings: Vec<usize>,
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

async fn execute(db: &VaultDb, ctx: &Ctx, client: usize, round: usize, step: Step) -> OpRecord {
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
    OpRecord { op: step.op, client, round, spec: step.spec, inv, res, value, result, took }
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
        (0..plan.n).map(|i| Node::new(i, plan.seed, opts.wrap.as_ref())).collect();
    let mut dbs = Vec::new();
    for h in 0..plan.handles {
        dbs.push(builder(plan, &nodes, h, started).open().await?);
    }
    let keyring_key =
        KeySpace::new("vaultdb").expect("valid prefix").keyring_key().as_str().to_owned();
    let keyrings: Vec<Option<Bytes>> = nodes.iter().map(|n| n.mem.raw_get(&keyring_key)).collect();
    let intact =
        |i: usize| keyrings[i].is_some() && nodes[i].mem.raw_get(&keyring_key) == keyrings[i];
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
            let keep_k = || (0..nodes.len()).filter(|j| *j != i && intact(*j)).count() >= plan.k;
            match fault {
                Fault::KeyringLost if keep_k() => {
                    nodes[i].mem.raw_delete(&keyring_key);
                }
                Fault::KeyringSwapped if keep_k() => {
                    let other = &keyrings[(i + 1) % nodes.len()];
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
        if !round.faults.is_empty() {
            // A client started now (a process restarting, a new server) must open the store
            // whenever K backends are healthy and hold their keyring share.
            let faulty = round.faulty();
            let good_slots = (0..nodes.len()).filter(|i| !faulty.contains(i) && intact(*i)).count();
            let result = builder(plan, &nodes, plan.handles + 1 + r, started)
                .open()
                .await
                .map(drop)
                .map_err(|e| e.to_string());
            opens.push(ProbeOpen { round: r, good_slots, result });
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
        for (i, node) in nodes.iter().enumerate() {
            if node.roll_back() {
                rollbacks.push((r, i));
            }
        }
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
    add("reads answered from marks (no listing)", dbs.iter().map(|d| d.stats().fast_reads).sum());

    // Heal, settle, read back, with a maintenance handle that removes partial writes at once.
    let fin = builder(plan, &nodes, plan.handles, started)
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
                    let tombs = keys.iter().filter(|k| is_tombstone_key(k)).count();
                    (keys.len() - segments - tombs, segments, tombs)
                })
                .collect(),
        );
    }
    let listed = fin.list().await.map(|l| l.ids).map_err(|e| e.to_string());
    let bad_keyrings = (0..nodes.len()).filter(|i| !intact(*i)).collect();
    let final_state = FinalState { scrub, rescrub, reads, listed, objects, bad_keyrings };
    Ok(RunResult {
        plan: plan.clone(),
        history,
        final_state,
        injected,
        backend_calls,
        elapsed: started.elapsed(),
        rollbacks,
        opens,
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
fn is_tombstone_key(key: &str) -> bool {
    matches!(
        vaultdb_core::naming::KeySpace::new("vaultdb").ok().and_then(|ks| ks.parse(key)),
        Some(vaultdb_core::naming::ParsedKey::Tombstone { .. })
    )
}

fn is_segment_key(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|last| last.contains('-'))
}
