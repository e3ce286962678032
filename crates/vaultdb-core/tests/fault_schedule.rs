// This file is long because it holds the short runs and every regression seed with what it
// found.
//! Randomized, seeded fault schedules against the client (docs/FAULTS.md).
//!
//! Every run is a pure function of one seed: the store's configuration, every client's
//! operations and every fault switch (`vaultdb_testkit::schedule`). The history of
//! each run is checked against the consistency model of DESIGN.md section 5.
//!
//! - `short_run` (the default test set): a few seeds, at least 1,000 operations;
//!   `short_run_compact` the same seeds on a store in the compact mode.
//! - `long_run` (ignored; `cargo xtask faults`): at least 50 seeds, at least 10,000
//!   operations, and a `FAULTS-SUMMARY <json>` line for xtask.
//!
//! Environment: `VAULTDB_FAULT_SEED=<seed>` runs that seed only (decimal or 0x hex);
//! `VAULTDB_FAULT_SEEDS=<count>` and `VAULTDB_FAULT_FIRST_SEED=<seed>` choose how many seeds
//! and from where; `VAULTDB_FAULT_OPS=<ops>` sets the operations per seed;
//! `VAULTDB_FAULT_JOBS=<threads>` runs seeds in parallel; `VAULTDB_FAULT_VERBOSE=1` prints
//! each plan and history, `VAULTDB_FAULT_QUIET=1` only failing seeds;
//! `VAULTDB_FAULT_READ_REPAIR=0|1` and `VAULTDB_FAULT_HEDGE_MS=<ms>` (0: off) override the
//! plan's client settings; `VAULTDB_FAULT_MODE=shamir|compact` the store's storage mode
//! (default shamir; `short_run_compact` is always compact); `VAULTDB_FAULT_ALLOW_KNOWN=1` tolerates violations attributed to
//! a known issue (docs/FAULTS.md); `VAULTDB_FAULT_TRIAGE=0` skips attributing them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use vaultdb_core::{
    BackendError, Key, KeyPrefix, ListFrom, ListPage, Mode, PutMode, StorageBackend,
};
use vaultdb_testkit::schedule::{
    Invariant, OpResult, Plan, Report, RoundKind, RunOptions, RunResult, Summary, check, run,
};

/// Seeds and operations per seed of the default (short) run: at least 1,000 operations.
const SHORT_SEEDS: u64 = 5;
const SHORT_OPS: usize = 400;
/// The long run (`cargo xtask faults`): at least 50 seeds and 10,000 operations.
const LONG_SEEDS: u64 = 64;
const LONG_OPS: usize = 250;

/// Regressions: the seeds of the client issues this checker found, all fixed, which must stay
/// fixed (docs/FAULTS.md, "Findings"): (seed, operations per seed, the operations of the
/// shrunk history, or none for the whole plan, the issue). `fixed_issues_stay_fixed` replays
/// each once in every test run, `regressions_repeated` three times each; both fail if a
/// violation comes back. A newly found issue gets an entry here once it is fixed.
const REGRESSIONS: &[(u64, usize, &[u32], &str)] = &[
    (237, 300, &[114, 123, 124, 125], KI_REPAIR),
    (689, 300, &[177, 232, 235, 236], KI_REPAIR),
    (50, 300, &[60, 90], KI_HEDGE),
    (8, 400, &[396, 400, 401], KI_SEGMENTS),
    (359, 500, &[], KI_FLAKY_REPAIR),
    (469, 500, &[], KI_FLAKY_REPAIR),
    (50, 250, &[], KI_SLOW_DELETE),
];

/// Regressions of re-sharing (docs/FAULTS.md, "Re-sharing"): (seed, operations per seed,
/// the issue), each a whole plan with its re-share (`Plan::generate`), replayed with the
/// others.
const RESHARE_REGRESSIONS: &[(u64, usize, &str)] = &[
    (7, 400, "RS-1 a migrating delete answers the old store's read error"),
    (69, 500, "RS-2 a re-share finishes without a record on an unreachable old backend"),
    (259, 500, "RS-3 a resumed copy leaves two splits of one version"),
    (765, 500, "RS-4 the re-share's own background work is left in the old store"),
];

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

fn seeds(default_count: u64, default_first: u64) -> Vec<u64> {
    if let Some(seed) = env_u64("VAULTDB_FAULT_SEED") {
        return vec![seed];
    }
    let count = env_u64("VAULTDB_FAULT_SEEDS").unwrap_or(default_count);
    let first = env_u64("VAULTDB_FAULT_FIRST_SEED").unwrap_or(default_first);
    (first..).take(count as usize).collect()
}

fn verbose() -> bool {
    std::env::var_os("VAULTDB_FAULT_VERBOSE").is_some_and(|v| v != "0")
}

/// Runs one seed's plan on a current-thread runtime with paused (virtual) time.
fn run_plan(plan: &Plan, opts: &RunOptions) -> (RunResult, Report) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let result = rt
        .block_on(run(plan, opts))
        .unwrap_or_else(|e| panic!("seed {}: the store did not open: {e}", plan.seed));
    let report = check(&result);
    (result, report)
}

fn reproduce(seed: u64, ops: usize, mode: Mode) -> String {
    format!(
        "VAULTDB_FAULT_SEED={seed} VAULTDB_FAULT_OPS={ops} VAULTDB_FAULT_MODE={mode} \
         VAULTDB_FAULT_VERBOSE=1 cargo test -p vaultdb-core --test fault_schedule -- \
         short_run --exact --nocapture"
    )
}

/// The storage mode of VAULTDB_FAULT_MODE (`shamir`, the default, or `compact`).
fn env_mode() -> Mode {
    std::env::var("VAULTDB_FAULT_MODE")
        .ok()
        .map_or(Mode::Shamir, |m| m.parse().expect("VAULTDB_FAULT_MODE: shamir or compact"))
}

/// The plan of `seed`, with the overrides of VAULTDB_FAULT_READ_REPAIR (0 or 1) and
/// VAULTDB_FAULT_HEDGE_MS (0: no hedging), for narrowing down a failure, in the storage mode
/// of VAULTDB_FAULT_MODE.
fn plan_of(seed: u64, ops: usize) -> Plan {
    with_overrides(Plan::generate(seed, ops))
}

/// `plan` with the overrides of [`plan_of`].
fn with_overrides(mut plan: Plan) -> Plan {
    plan.mode = env_mode();
    if let Some(on) = env_u64("VAULTDB_FAULT_READ_REPAIR") {
        plan.read_repair = on != 0;
    }
    if let Some(ms) = env_u64("VAULTDB_FAULT_HEDGE_MS") {
        plan.hedge_after = (ms > 0).then(|| std::time::Duration::from_millis(ms));
    }
    plan
}

/// Runs one seed, prints what it did; returns its summary.
fn run_seed(seed: u64, ops: usize, mode: Mode) -> Summary {
    let plan = Plan { mode, ..plan_of(seed, ops) };
    let quiet = env_u64("VAULTDB_FAULT_QUIET") == Some(1);
    if !quiet {
        eprintln!("fault schedule seed {seed}: {}", plan.headline());
    }
    let (result, report) = run_plan(&plan, &RunOptions::default());
    if !quiet {
        eprintln!("fault schedule seed {seed}: history fingerprint {:016x}", result.fingerprint());
    }
    if verbose() {
        eprintln!("{plan}");
        for o in &result.history {
            eprintln!("  {o:?}");
        }
    }
    let mut summary = Summary::default();
    summary.add(&result, &report);
    if !report.violations.is_empty() {
        if !quiet && !verbose() {
            eprintln!("the schedule of seed {seed}:\n{plan}");
        }
        eprintln!("{}", report.explain(&result));
        eprintln!("reproduce: {}", reproduce(seed, ops, mode));
        for cause in triage(&result, &report) {
            eprintln!("seed {seed}: {cause}");
            summary.triage.entry(cause).or_default().push(seed);
        }
    }
    summary
}

/// The client issues this checker found, all fixed (docs/FAULTS.md, "Findings"); a failing
/// seed is attributed to one by [`triage`] (a violation attributed to one is that issue
/// coming back).
const KI_REPAIR: &str = "KI-1 read-repair resurrects a concurrently deleted record";
const KI_HEDGE: &str = "KI-2 a hedged share fetch is dropped, the read fails";
const KI_SEGMENTS: &str = "KI-3 a delete during a segmented put leaves a manifest without segments";
const KI_SLOW_DELETE: &str = "KI-5 a delete waits one call timeout per object of a stalled backend";
const KI_FLAKY_REPAIR: &str =
    "KI-4 repair replaces a share whose fetch failed, and loses it when the rewrite fails too";
const UNKNOWN: &str = "unclassified";
const NOT_REPRODUCED: &str = "unclassified: not shown again when re-run";

/// Says which known issues a failing plan shows. Each violation is attributed by running the
/// plan again unchanged (a violation none of four runs shows again is unclassified), then
/// with hedging, read-repair, or both switched off (three runs each): a violation that goes away with hedging off is
/// KI-2, with read-repair off KI-1; one that stays is KI-3 if it has KI-3's symptoms (a healed
/// store holding a manifest whose segments are gone), else it is unclassified. A violation that
/// is not shown again is attributed by its symptoms ([`symptoms`]), if it has a known issue's.
/// VAULTDB_FAULT_TRIAGE=0 skips this.
fn triage(result: &RunResult, report: &Report) -> Vec<String> {
    let plan = &result.plan;
    if env_u64("VAULTDB_FAULT_TRIAGE") == Some(0) {
        return vec!["not triaged".to_owned()];
    }
    type Sig = (Invariant, Option<u32>, Option<usize>, String);
    let sig = |v: &vaultdb_testkit::schedule::Violation| -> Sig {
        (v.invariant, v.op, v.id, v.detail.chars().take(24).collect())
    };
    // The violations of `runs` runs with hedging and read-repair as given (all of them).
    let sigs = |hedge: bool, repair: bool, runs: usize| -> Vec<Sig> {
        let mut p = plan.clone();
        if !hedge {
            p.hedge_after = None;
        }
        if !repair {
            p.read_repair = false;
        }
        let mut all = Vec::new();
        for _ in 0..runs {
            all.extend(run_plan(&p, &RunOptions::default()).1.violations.iter().map(sig));
        }
        all
    };
    let hedging = plan.hedge_after.is_some();
    let repairing = plan.read_repair;
    // Runs are not fully deterministic (docs/FAULTS.md), so: a violation counts as shown
    // again if one of four unchanged runs shows it, and as gone with a knob switched off if
    // none of three such runs does.
    let again = sigs(hedging, repairing, 4);
    let without_hedge = if hedging { sigs(false, true, 3) } else { Vec::new() };
    let without_repair = if repairing { sigs(true, false, 3) } else { Vec::new() };
    let without_both = if hedging && repairing { sigs(false, false, 3) } else { again.clone() };
    let mut labels: Vec<String> = report
        .violations
        .iter()
        .map(|v| {
            let s = sig(v);
            let ki3 = symptoms(result, v) == Some(KI_SEGMENTS);
            if !again.contains(&s) {
                match symptoms(result, v) {
                    Some(issue) => format!("{issue} (by its symptoms: not shown again)"),
                    None => NOT_REPRODUCED.to_owned(),
                }
            } else if hedging && !without_hedge.contains(&s) {
                KI_HEDGE.to_owned()
            } else if repairing && !without_repair.contains(&s) {
                KI_REPAIR.to_owned()
            } else if !without_both.contains(&s) {
                format!("{KI_HEDGE} + {KI_REPAIR}")
            } else if ki3 {
                KI_SEGMENTS.to_owned()
            } else {
                UNKNOWN.to_owned()
            }
        })
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// The known issue a violation looks like, from the history alone: KI-1, a resurrected
/// delete with read-repair on and a degraded read of the record (which starts a repair) in the
/// delete's round before the delete returned; KI-2, an `HMAC_FAILED` read of an acknowledged
/// put with hedging on; KI-3, a healed store holding a manifest whose segments are gone.
fn symptoms(result: &RunResult, v: &vaultdb_testkit::schedule::Violation) -> Option<&'static str> {
    let plan = &result.plan;
    let op = |n: u32| result.history.iter().find(|o| o.op == n);
    match v.invariant {
        Invariant::Resurrected if plan.read_repair => {
            let d = op(v.related?)?;
            let repaired = result.history.iter().any(|r| {
                r.spec.id() == d.spec.id()
                    && r.round == d.round
                    && r.inv < d.res
                    && matches!(&r.result, OpResult::Read { degraded, .. } if !degraded.is_empty())
            });
            repaired.then_some(KI_REPAIR)
        }
        Invariant::LostWrite if plan.hedge_after.is_some() => {
            let g = op(v.op?)?;
            let hmac = matches!(&g.result, OpResult::Failed { code, .. } if *code == vaultdb_core::ErrorCode::HmacFailed);
            (hmac && plan.rounds[g.round].serves_bad_data()).then_some(KI_HEDGE)
        }
        Invariant::FinalState
            if v.detail.contains("cannot be repaired")
                || v.detail.contains("cannot read the record: insufficient shares")
                || v.detail.starts_with("list returned") =>
        {
            Some(KI_SEGMENTS)
        }
        _ => None,
    }
}

fn run_seeds(seeds: &[u64], ops: usize, mode: Mode) -> Summary {
    let jobs = env_u64("VAULTDB_FAULT_JOBS").unwrap_or(1).max(1) as usize;
    let next = AtomicUsize::new(0);
    let mut total = Summary::default();
    let parts: Vec<Summary> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.min(seeds.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Summary::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&seed) = seeds.get(i) else { break };
                        mine.merge(&run_seed(seed, ops, mode));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).collect()
    });
    for p in &parts {
        total.merge(p);
    }
    total.failing_seeds.sort_unstable();
    for seeds in total.triage.values_mut() {
        seeds.sort_unstable();
    }
    total
}

/// Fails on any violation, or with VAULTDB_FAULT_ALLOW_KNOWN=1 only on violations that are
/// not attributed to a known issue.
fn assert_clean(summary: &Summary, ops: usize, mode: Mode) {
    let allow_known = env_u64("VAULTDB_FAULT_ALLOW_KNOWN") == Some(1);
    let failing: Vec<u64> = if allow_known {
        summary
            .triage
            .iter()
            .filter(|(cause, _)| !cause.starts_with("KI-"))
            .flat_map(|(_, seeds)| seeds.iter().copied())
            .collect()
    } else {
        summary.failing_seeds.clone()
    };
    let repro: Vec<String> = failing.iter().map(|s| reproduce(*s, ops, mode)).collect();
    assert!(
        failing.is_empty(),
        "the fault-schedule checker found violations in seeds {failing:?}; reproduce with:\n{}",
        repro.join("\n")
    );
}

/// Prints how to reproduce each failing seed (on stdout, before the summary).
fn print_reproduce(summary: &Summary, ops: usize, mode: Mode) {
    for seed in &summary.failing_seeds {
        println!("reproduce: {}", reproduce(*seed, ops, mode));
    }
}

#[test]
fn short_run() {
    short_run_in(env_mode());
}

#[test]
fn short_run_compact() {
    short_run_in(Mode::Compact);
}

fn short_run_in(mode: Mode) {
    let ops = env_u64("VAULTDB_FAULT_OPS").map_or(SHORT_OPS, |o| o as usize);
    let seeds = seeds(SHORT_SEEDS, 1);
    let summary = run_seeds(&seeds, ops, mode);
    eprintln!("{mode}: {summary}");
    if std::env::var_os("VAULTDB_FAULT_SEED").is_none()
        && std::env::var_os("VAULTDB_FAULT_OPS").is_none()
    {
        assert!(summary.ops >= 1000, "the short run does at least 1,000 operations");
    }
    assert_clean(&summary, ops, mode);
}

#[test]
#[ignore = "long: run with `cargo xtask faults`"]
fn long_run() {
    let ops = env_u64("VAULTDB_FAULT_OPS").map_or(LONG_OPS, |o| o as usize);
    let seeds = seeds(LONG_SEEDS, 1);
    let summary = run_seeds(&seeds, ops, env_mode());
    print_reproduce(&summary, ops, env_mode());
    println!("{summary}");
    println!("FAULTS-SUMMARY {}", summary.to_json());
    let allow_known = env_u64("VAULTDB_FAULT_ALLOW_KNOWN") == Some(1);
    let unknown = summary.triage.iter().any(|(cause, _)| !cause.starts_with("KI-"));
    assert!(
        summary.violation_count() == 0 || (allow_known && !unknown),
        "{} violations in seeds {:?} (see above)",
        summary.violation_count(),
        summary.failing_seeds
    );
}

/// Minimises a failing seed (VAULTDB_FAULT_SEED): drops rounds and client steps (and with
/// VAULTDB_FAULT_SHRINK_ALL=1 faults and delays too) as long as a violation of the same
/// invariant remains; prints the smallest plan and its history.
#[test]
#[ignore = "tool: VAULTDB_FAULT_SEED=<seed> cargo test -p vaultdb-core --test fault_schedule \
            -- shrink --ignored --nocapture"]
fn shrink() {
    let seed = env_u64("VAULTDB_FAULT_SEED").expect("set VAULTDB_FAULT_SEED to a failing seed");
    let ops = env_u64("VAULTDB_FAULT_OPS").map_or(SHORT_OPS, |o| o as usize);
    let plan = plan_of(seed, ops);
    let (_, report) = run_plan(&plan, &RunOptions::default());
    let target = report.violations.first().expect("the seed shows no violation").invariant;
    let fails = |p: &Plan| {
        // Twice: keep only reductions that fail reliably.
        (0..2).all(|_| {
            run_plan(p, &RunOptions::default()).1.violations.iter().any(|v| v.invariant == target)
        })
    };
    // By default only operations (and so rounds) are removed, so that the result is
    // `Plan::restrict` of the seed's plan; VAULTDB_FAULT_SHRINK_ALL=1 also removes faults
    // and zeroes latencies.
    let all_the_way = env_u64("VAULTDB_FAULT_SHRINK_ALL") == Some(1);
    let mut best = plan;
    let mut tries = 0;
    let mut attempt = |best: &mut Plan, candidate: Plan| {
        tries += 1;
        if fails(&candidate) {
            *best = candidate;
            true
        } else {
            false
        }
    };
    loop {
        let mut changed = false;
        for r in (0..best.rounds.len()).rev() {
            if best.rounds.len() > 1 && r < best.rounds.len() {
                let p = best.without_round(r);
                changed |= attempt(&mut best, p);
            }
        }
        for r in 0..best.rounds.len() {
            for c in 0..best.rounds[r].clients.len() {
                for i in (0..best.rounds[r].clients[c].len()).rev() {
                    let mut p = best.clone();
                    p.rounds[r].clients[c].remove(i);
                    changed |= attempt(&mut best, p);
                }
            }
            for f in (0..best.rounds[r].faults.len()).rev() {
                if !all_the_way {
                    break;
                }
                let mut p = best.clone();
                p.rounds[r].faults.remove(f);
                let faulty = p.rounds[r].faults.len();
                p.rounds[r].kind = match faulty {
                    0 => RoundKind::Healthy,
                    f if f <= p.budget() => RoundKind::Budget,
                    _ => RoundKind::Chaos,
                };
                changed |= attempt(&mut best, p);
            }
        }
        if !changed {
            break;
        }
    }
    // No delays where none are needed.
    for r in (0..best.rounds.len()).filter(|_| all_the_way) {
        for b in 0..best.n {
            for zero_latency in [true, false] {
                let mut p = best.clone();
                if zero_latency {
                    p.rounds[r].latency[b] = std::time::Duration::ZERO;
                } else {
                    p.rounds[r].jitter[b] = std::time::Duration::ZERO;
                }
                if p.rounds[r].latency[b] != best.rounds[r].latency[b]
                    || p.rounds[r].jitter[b] != best.rounds[r].jitter[b]
                {
                    attempt(&mut best, p);
                }
            }
        }
    }
    let (result, report) = run_plan(&best, &RunOptions::default());
    let kept: Vec<String> = best
        .rounds
        .iter()
        .flat_map(|r| r.clients.iter().flatten().map(|s| s.op.to_string()))
        .collect();
    println!("shrunk seed {seed} in {tries} runs to {} operations:\n{best}", best.ops());
    println!(
        "as a REGRESSIONS entry, once fixed (for Plan::restrict, without \
         VAULTDB_FAULT_SHRINK_ALL): ({seed}, {ops}, &[{}], ...)",
        kept.join(", ")
    );
    for (r, round) in best.rounds.iter().enumerate() {
        let lat: Vec<String> =
            round.latency.iter().map(|d| format!("{}ms", d.as_millis())).collect();
        let jit: Vec<String> =
            round.jitter.iter().map(|d| format!("{}ms", d.as_millis())).collect();
        println!("round {r}: latency [{}] jitter up to [{}]", lat.join(", "), jit.join(", "));
    }
    println!("{}", report.explain(&result));
}

/// The plan a regression replays: its shrunk history, or its whole seed, as it was found
/// (without the re-share some of these seeds draw now: `Plan::generate_plain`).
fn regression_plan(seed: u64, ops: usize, kept: &[u32]) -> Plan {
    let plan = with_overrides(Plan::generate_plain(seed, ops));
    if kept.is_empty() { plan } else { plan.restrict(kept) }
}

/// Every violation the checker ever found, replayed once (its shrunk history, or its whole
/// seed): none may come back.
/// Every regression's plan, with its issue, seed and operations per seed.
fn regression_plans() -> Vec<(Plan, &'static str, u64, usize)> {
    let plain = REGRESSIONS
        .iter()
        .map(|&(seed, ops, kept, issue)| (regression_plan(seed, ops, kept), issue, seed, ops));
    let resharing = RESHARE_REGRESSIONS
        .iter()
        .map(|&(seed, ops, issue)| (plan_of(seed, ops), issue, seed, ops));
    plain.chain(resharing).collect()
}

#[test]
fn fixed_issues_stay_fixed() {
    for (plan, issue, seed, ops) in regression_plans() {
        let (result, report) = run_plan(&plan, &RunOptions::default());
        assert!(
            report.violations.is_empty(),
            "{issue} is back (seed {seed}):\n{}\nreproduce: {}",
            report.explain(&result),
            reproduce(seed, ops, env_mode())
        );
    }
}

/// Replays every regression three times (runs are not fully deterministic, docs/FAULTS.md),
/// prints in how many runs each showed a violation, and fails if any run did.
#[test]
#[ignore = "tool: cargo test -p vaultdb-core --test fault_schedule -- regressions_repeated --ignored --nocapture"]
fn regressions_repeated() {
    let mut back = Vec::new();
    for (plan, issue, seed, _) in regression_plans() {
        let mut shown = 0;
        for _ in 0..3 {
            let (result, report) = run_plan(&plan, &RunOptions::default());
            if !report.violations.is_empty() {
                shown += 1;
                println!("{}", report.explain(&result));
            }
        }
        println!("{issue}: seed {seed}, {} operations: violation in {shown}/3 runs", plan.ops());
        if shown > 0 {
            back.push(format!("{issue} (seed {seed}: {shown}/3 runs)"));
        }
    }
    assert!(back.is_empty(), "fixed issues are back: {}", back.join("; "));
}

// ---------------------------------------------------------------------------------------
// The checker can fail: deliberately broken stores and histories are caught.

/// A backend that loses deletes: they answer Ok and change nothing, and its tombstones vanish.
#[derive(Debug)]
struct UndeadDeletes(Arc<dyn StorageBackend>);

vaultdb_testkit::forward_backend! {
    impl StorageBackend for UndeadDeletes {
        forward id, name, get, list_page to self.0;

        async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
            // Tombstones are a delete's record: a store that loses deletes loses them too.
            use vaultdb_core::naming::{KeySpace, ParsedKey};
            let ks = KeySpace::new("vaultdb").unwrap();
            if matches!(ks.parse(key.as_str()), Some(ParsedKey::Tombstone { .. })) {
                return Ok(());
            }
            self.0.put(key, data, mode).await
        }

        async fn delete(&self, _key: &Key) -> Result<(), BackendError> {
            Ok(())
        }
    }
}

/// A backend that travels back in time: it keeps every version (deletes do nothing) and
/// leaves the newest version of each record out of its listings.
#[derive(Debug)]
struct HidesNewest(Arc<dyn StorageBackend>);

vaultdb_testkit::forward_backend! {
    impl StorageBackend for HidesNewest {
        forward id, name, put, get to self.0;

        async fn delete(&self, _key: &Key) -> Result<(), BackendError> {
            Ok(())
        }

        async fn list_page(
            &self,
            prefix: &KeyPrefix,
            from: ListFrom,
        ) -> Result<ListPage, BackendError> {
            let mut page = self.0.list_page(prefix, from).await?;
            // Record keys are `.../r/<tag>/<version><.id share | -segment>`; the version is
            // 26 sortable characters.
            let version_of = |k: &str| {
                let (dir, last) = k.rsplit_once('/')?;
                let version = last.get(..26)?;
                dir.contains("/r/").then(|| (dir.to_owned(), version.to_owned()))
            };
            let mut newest = std::collections::BTreeMap::<String, (String, usize)>::new();
            for e in &page.entries {
                if let Some((dir, v)) = version_of(e.key.as_str()) {
                    let e = newest.entry(dir).or_insert((v.clone(), 0));
                    if v > e.0 {
                        *e = (v, e.1 + 1);
                    } else if v < e.0 {
                        e.1 += 1;
                    }
                }
            }
            page.entries.retain(|e| match version_of(e.key.as_str()) {
                Some((dir, v)) => newest.get(&dir).is_none_or(|(n, older)| *older == 0 || v != *n),
                None => true,
            });
            Ok(page)
        }
    }
}

fn broken_run(seed: u64, wrap: vaultdb_testkit::schedule::Wrap) -> Report {
    let plan = Plan::generate(seed, 150);
    let (result, report) = run_plan(&plan, &RunOptions { wrap: Some(wrap) });
    eprintln!("{}", report.explain(&result).lines().take(12).collect::<Vec<_>>().join("\n"));
    report
}

fn kinds(report: &Report) -> Vec<Invariant> {
    let mut k: Vec<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn the_checker_catches_a_store_that_loses_deletes() {
    let report = broken_run(11, Arc::new(|_, b| Arc::new(UndeadDeletes(b))));
    assert!(kinds(&report).contains(&Invariant::Resurrected), "{:?}", kinds(&report));
}

#[test]
fn the_checker_catches_a_store_that_hides_the_newest_version() {
    let report = broken_run(12, Arc::new(|_, b| Arc::new(HidesNewest(b))));
    let k = kinds(&report);
    assert!(k.contains(&Invariant::StaleRead) || k.contains(&Invariant::LostWrite), "{k:?}");
}

#[test]
fn the_checker_catches_tampered_and_stale_history() {
    for seed in 13..40 {
        let plan = Plan::generate(seed, 150);
        let (result, report) = run_plan(&plan, &RunOptions::default());
        assert!(report.violations.is_empty(), "{}", report.explain(&result));

        // A read that returned one flipped byte: wrong data.
        let mut tampered = result.clone();
        let read = tampered
            .history
            .iter_mut()
            .find(|o| matches!(&o.result, OpResult::Read { data, .. } if !data.is_empty()))
            .expect("some read returned data");
        if let OpResult::Read { data, .. } = &mut read.result {
            data[0] ^= 1;
        }
        assert!(kinds(&check(&tampered)).contains(&Invariant::WrongData));

        // The healed store answering with an older acknowledged value than the last write
        // (an isolated, acknowledged put): a lost write.
        for (id, (first, _)) in result.final_state.reads.iter().enumerate() {
            let writes: Vec<_> =
                result.history.iter().filter(|o| o.spec.id() == id && o.spec.is_write()).collect();
            let Some(last) = writes.iter().max_by_key(|o| o.inv) else { continue };
            let isolated = writes.iter().all(|o| o.op == last.op || o.res < last.inv);
            let OpResult::Put { .. } = last.result else { continue };
            let older = writes
                .iter()
                .find(|o| o.res < last.inv && matches!(o.result, OpResult::Put { .. }));
            let (Some(older), true, OpResult::Read { .. }) = (older, isolated, first) else {
                continue;
            };
            let OpResult::Put { version, .. } = older.result.clone() else { unreachable!() };
            let len = older.value.len() as u64;
            let stale = OpResult::Read {
                version,
                data: older.value.clone(),
                content_type: Some(vaultdb_testkit::schedule::content_type_of(older.op)),
                range: 0..len,
                total: len,
                id_ok: true,
                degraded: Vec::new(),
            };
            let mut lost = result.clone();
            lost.final_state.reads[id] = (stale.clone(), stale);
            let k = kinds(&check(&lost));
            assert!(
                k.contains(&Invariant::LostWrite) && k.contains(&Invariant::StaleRead),
                "{k:?}"
            );
            return;
        }
    }
    panic!("no seed had an isolated last put to tamper with");
}
