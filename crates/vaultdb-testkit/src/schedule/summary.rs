//! Summaries: totals over runs, for the test's output and `cargo xtask faults`.

use std::collections::BTreeMap;
use std::fmt;

use super::cluster::RunResult;
use super::history::Store;
use super::report::Report;

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
    /// Re-shares (docs/FAULTS.md "Re-sharing"): seeds with one, their runs by outcome,
    /// the new configurations.
    pub reshare: BTreeMap<String, u64>,
    /// In seeds with a re-share: operations by the configuration of their client, then by
    /// outcome.
    pub by_store: BTreeMap<String, BTreeMap<String, u64>>,
    /// Virtual time, in seconds.
    pub virtual_secs: f64,
    /// The longest operation, in seconds of virtual time.
    pub longest_op_secs: f64,
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
        if let (Some(rs), Some(log)) = (&plan.reshare, &run.reshare) {
            let mut count = |k: String| *self.reshare.entry(k).or_insert(0) += 1;
            count("seeds".to_owned());
            count(format!("to {}-of-{} W={}", rs.k, rs.n(), rs.w));
            if rs.flip_mode {
                count("mode changed".to_owned());
            }
            if rs.lost.is_some() {
                count("a backend lost".to_owned());
            }
            for r in &log.runs {
                count(format!("runs {}", r.outcome));
            }
            if log.runs.iter().any(|r| r.outcome == "done" && r.round.is_some()) {
                count("done before the last round".to_owned());
            }
            for o in &run.history {
                let store = match o.store {
                    Store::Old => "old configuration",
                    Store::New => "new configuration",
                };
                *self
                    .by_store
                    .entry(store.to_owned())
                    .or_default()
                    .entry(o.result.outcome().to_owned())
                    .or_insert(0) += 1;
            }
        }
        self.virtual_secs += run.elapsed.as_secs_f64();
        for o in &run.history {
            self.longest_op_secs = self.longest_op_secs.max(o.took.as_secs_f64());
        }
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
        add_all(&mut self.reshare, &other.reshare);
        for (k, m) in &other.by_store {
            add_all(self.by_store.entry(k.clone()).or_default(), m);
        }
        self.virtual_secs += other.virtual_secs;
        self.longest_op_secs = self.longest_op_secs.max(other.longest_op_secs);
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
            "reshare": self.reshare,
            "by_store": self.by_store,
            "virtual_secs": self.virtual_secs,
            "longest_op_secs": self.longest_op_secs,
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
        if !self.reshare.is_empty() {
            writeln!(f, "re-shares: {}", line(&self.reshare))?;
            writeln!(f, "operations of re-share seeds by configuration and outcome:")?;
            for (store, outcomes) in &self.by_store {
                let total: u64 = outcomes.values().sum();
                writeln!(f, "  {store:<22} {total:>6}  ({})", line(outcomes))?;
            }
        }
        writeln!(f, "reads checked per invariant: {}", line(&self.checks))?;
        if !self.notes.is_empty() {
            writeln!(f, "allowed but noted: {}", line(&self.notes))?;
        }
        writeln!(f, "virtual time: {:.0}s", self.virtual_secs)?;
        writeln!(f, "longest operation: {:.1}s (virtual)", self.longest_op_secs)?;
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
