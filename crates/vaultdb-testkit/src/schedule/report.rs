//! What the checker reports: the invariants, their violations, and an explanation of them
//! with the histories involved.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::cluster::RunResult;
use super::history::OpRecord;
use super::plan::round_faults;

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
    /// (6) A client could not open the store although K backends were healthy and held
    /// their keyring share.
    OpenFailed,
    /// (8) A client of the old configuration had a write acknowledged that it began after
    /// a re-share had recorded its floor (the fence did not hold).
    Fenced,
    /// (7) An operation took longer than [`OP_TIME_LIMIT`](super::OP_TIME_LIMIT) (virtual
    /// time): a hang, or retries without end.
    Unbounded,
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
            Invariant::OpenFailed => "(6) open failed with K good keyring shares",
            Invariant::Unbounded => "(7) operation took too long",
            Invariant::Fenced => "(8) old client wrote after the re-share's floor",
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

/// What [`check`](super::check) found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Broken invariants (must be empty).
    pub violations: Vec<Violation>,
    /// How many reads each invariant's precondition applied to (how hard it was tested).
    pub checks: BTreeMap<String, u64>,
    /// Observations that are allowed by the model but worth counting.
    pub notes: BTreeMap<String, u64>,
}

impl Report {
    /// A description of the violations, with the history of each record involved and the
    /// faults of the rounds it ran in.
    pub fn explain(&self, run: &RunResult) -> String {
        let plan = &run.plan;
        let mut s = String::new();
        let _ = writeln!(s, "{}", plan.headline());
        if let Some(log) = &run.reshare {
            let _ = writeln!(
                s,
                "re-share: began at time {}, copy from {:?}, done at {:?}; runs:",
                log.started, log.copying, log.done
            );
            for r in &log.runs {
                let round = r.round.map_or("healed".to_owned(), |r| format!("round {r}"));
                let _ = writeln!(s, "  [{:>5}..{:>5}] {round}: {}", r.start, r.end, r.detail);
            }
        }
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
