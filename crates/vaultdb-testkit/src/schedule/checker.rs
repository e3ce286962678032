// This file is long because every invariant of docs/FAULTS.md is judged here against one
// shared view of the history (the register of each id across both stores).
//! The checker: judges a run's history against the consistency model (docs/FAULTS.md).

use std::collections::{BTreeMap, BTreeSet};

use vaultdb_core::ErrorCode;

use super::cluster::{ReshareLog, RunResult};
use super::history::{OpRecord, OpResult, Store};
use super::plan::{OpSpec, Plan, content_type_of};
use super::report::{Invariant, Report, Violation};
use super::{OP_TIME_LIMIT, SEGMENT_SIZE};

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

/// The run as the checker sees it: the plan, and the re-share's log if there is one.
struct Model<'a> {
    plan: &'a Plan,
    log: Option<&'a ReshareLog>,
}

impl Model<'_> {
    /// K of a store.
    fn k(&self, store: Store) -> usize {
        match (store, &self.plan.reshare) {
            (Store::New, Some(rs)) => rs.k,
            _ => self.plan.k,
        }
    }

    /// N of a store.
    fn n(&self, store: Store) -> usize {
        match (store, &self.plan.reshare) {
            (Store::New, Some(rs)) => rs.n(),
            _ => self.plan.n,
        }
    }

    /// W of a store.
    fn w(&self, store: Store) -> usize {
        match (store, &self.plan.reshare) {
            (Store::New, Some(rs)) => rs.w,
            _ => self.plan.w,
        }
    }

    /// Whether read `g`, under the faults `faulty` of its round, must be able to read put
    /// `x`'s value (when nothing newer hides it): `x` is acknowledged, and K of the backends
    /// that hold it are healthy in the store `g` reads it from (docs/FAULTS.md
    /// "Re-sharing"). A put in the old store, read through a client of the new one: before
    /// the copy began, the new store holds nothing of it and the read goes through to the
    /// old store, so K healthy acknowledgers there, and at most `K' - 1` (and `N' - K'`)
    /// faulty backends in the new store; from then until the re-share is done, the new store
    /// may hold a copy in progress, so K healthy acknowledgers in the old store and no
    /// faulty backend in the new one; once it is done, if K old backends held it (after
    /// rollbacks) the copy is on W backends of the new store, so at most `W - K` of them
    /// faulty. A put in the new store is never read by a
    /// client of the old one.
    fn available(&self, g: &OpRecord, x: &OpRecord, faulty: &BTreeSet<usize>) -> bool {
        let Some((_, acks)) = x.acked_put() else { return false };
        let healthy = acks.iter().filter(|i| !faulty.contains(i)).count();
        match (x.store, g.store) {
            (Store::Old, Store::Old) | (Store::New, Store::New) => healthy >= self.k(x.store),
            (Store::New, Store::Old) => false,
            (Store::Old, Store::New) => {
                let (Some(rs), Some(log)) = (&self.plan.reshare, self.log) else { return false };
                let new_faulty = rs.nodes.iter().filter(|i| faulty.contains(i)).count();
                if log.done.is_some_and(|d| g.inv >= d) {
                    // The copy read the old store (until it could): the put was there if K
                    // backends still held it (a rollback may have taken some away).
                    acks.len() >= self.plan.k && new_faulty <= rs.budget()
                } else if log.copying.is_some_and(|c| g.res > c) {
                    healthy >= self.plan.k && new_faulty == 0
                } else {
                    // Nothing copied yet, and nothing written to the new store (writes wait
                    // for the floor): it must answer "not found" (fewer than K' backends
                    // unanswered) and its notices must be read (K' answers).
                    healthy >= self.plan.k && new_faulty < rs.k && new_faulty <= rs.n() - rs.k
                }
            }
        }
    }

    /// Whether an operation's `INVALID_CONFIG` is the re-share's fence (docs/FAULTS.md
    /// "Re-sharing"): a client of the old configuration once the re-share has begun (it
    /// answers "reload the configuration"), or a write of a migrating client before the
    /// re-share recorded its floor, as far as that client knows (up to one lease, two rounds,
    /// after the re-share was done).
    fn refused(&self, o: &OpRecord) -> bool {
        let OpResult::Failed { code: ErrorCode::InvalidConfig, message, .. } = &o.result else {
            return false;
        };
        let Some(log) = self.log else { return false };
        match o.store {
            Store::Old => o.res > log.started && message.contains("reload the configuration"),
            Store::New => {
                let done_round = log
                    .runs
                    .iter()
                    .find(|r| r.outcome == "done")
                    .map_or(usize::MAX, |r| r.round.unwrap_or(usize::MAX));
                o.spec.is_write()
                    && message.contains("re-share")
                    && (log.done.is_none_or(|d| o.inv < d)
                        || o.round <= done_round.saturating_add(2))
            }
        }
    }
}

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
    let model = Model { plan, log: run.reshare.as_ref() };
    let mut report = Report::default();
    for o in &run.history {
        check_write_result(&model, o, &mut report);
    }
    check_reshare(run, &model, &mut report);
    let history = undo_rollbacks(run, &model);
    let mut by_id: Vec<Vec<&OpRecord>> = vec![Vec::new(); plan.ids.len()];
    for o in &history {
        by_id[o.spec.id()].push(o);
    }
    for open in &run.opens {
        bump(&mut report.checks, Invariant::OpenFailed.name());
        if let Err(e) = &open.result
            && open.good_slots
                >= plan
                    .reshare
                    .as_ref()
                    .filter(|rs| open.round >= rs.round)
                    .map_or(plan.k, |rs| rs.k)
        {
            report.violations.push(Violation {
                invariant: Invariant::OpenFailed,
                op: None,
                id: None,
                detail: format!(
                    "round {}: a new client failed to open the store with {} backends healthy \
                     and holding their keyring share: {e}",
                    open.round, open.good_slots
                ),
                related: None,
            });
        }
    }
    for (id, ops) in by_id.iter().enumerate() {
        let writes: Vec<&OpRecord> = ops.iter().copied().filter(|o| o.spec.is_write()).collect();
        let puts: Vec<&OpRecord> = writes.iter().copied().filter(|o| o.spec.is_put()).collect();
        // A read refused by the fence observed nothing.
        for g in ops.iter().filter(|o| o.spec.is_read() && !model.refused(o)) {
            let round = &plan.rounds[g.round];
            let cond = Conditions { faulty: round.faulty(), bad_data: round.serves_bad_data() };
            check_read(&model, id, g, &writes, &puts, &cond, &mut report);
        }
        check_final(run, &model, id, &writes, &puts, &mut report);
    }
    let fin = &run.final_state;
    if !fin.bad_keyrings.is_empty() {
        report.violations.push(final_state(
            None,
            format!(
                "after healing and scrubbing, backends {:?} still hold a lost or wrong keyring \
                 share",
                fin.bad_keyrings
            ),
        ));
    }
    let mut settle = |detail: String| report.violations.push(final_state(None, detail));
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
            settle(format!("list returned {listed:?}, the readable ids are {live:?}"));
        }
    } else if let Err(e) = &run.final_state.listed {
        settle(format!("list failed after healing: {e}"));
    }
    report
}

/// The history as the backends remember it: a backend rolled back when round `r` ended
/// forgot the puts and deletes it took in round `r`, so its acknowledgement of them no longer
/// counts. A put keeps the others' acknowledgements; a delete that no longer has the N-K+1
/// confirmations a delete needs is judged like a failed one (it may or may not have
/// happened), and so is a delete that found nothing in a round with a rollback (what it
/// found absent may come back with the rolled-back backends).
fn undo_rollbacks(run: &RunResult, model: &Model<'_>) -> Vec<OpRecord> {
    let mut history = run.history.clone();
    if run.rollbacks.is_empty() {
        return history;
    }
    for o in &mut history {
        let forgot = |i: &usize| run.rollbacks.contains(&(o.round, *i));
        match &mut o.result {
            OpResult::Put { acks, .. } => acks.retain(|i| !forgot(i)),
            OpResult::Deleted { found: true, confirmed } => {
                let before = confirmed.len();
                confirmed.retain(|i| !forgot(i));
                let needed = model.n(o.store) - model.k(o.store) + 1;
                if confirmed.len() < before && confirmed.len() < needed {
                    o.result = OpResult::Failed {
                        code: ErrorCode::BackendError,
                        message: "rolled back".to_owned(),
                        acks: Vec::new(),
                    };
                }
            }
            OpResult::Deleted { found: false, .. }
                if run.rollbacks.iter().any(|(r, _)| *r == o.round) =>
            {
                o.result = OpResult::Failed {
                    code: ErrorCode::BackendError,
                    message: "rolled back".to_owned(),
                    acks: Vec::new(),
                };
            }
            _ => {}
        }
    }
    history
}

fn check_write_result(model: &Model<'_>, o: &OpRecord, report: &mut Report) {
    if o.took > OP_TIME_LIMIT {
        report.violations.push(Violation {
            invariant: Invariant::Unbounded,
            op: Some(o.op),
            id: Some(o.spec.id()),
            detail: format!(
                "took {:.1} s (virtual), over the {} s limit",
                o.took.as_secs_f64(),
                OP_TIME_LIMIT.as_secs()
            ),
            related: None,
        });
    }
    let mut bad = |detail: String| {
        report.violations.push(Violation {
            invariant: Invariant::BadError,
            op: Some(o.op),
            id: Some(o.spec.id()),
            detail,
            related: None,
        })
    };
    let w = model.w(o.store);
    if let OpResult::Failed { code: ErrorCode::InvalidConfig, message, .. } = &o.result {
        if !model.refused(o) {
            bad(format!("{} failed with INVALID_CONFIG: {message}", o.spec.kind()));
        }
        return;
    }
    match (&o.spec, &o.result) {
        (s, OpResult::Put { acks, .. }) if s.is_put() && acks.len() < w => {
            bad(format!("put acknowledged by {} backends, W is {w}", acks.len()))
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
            // A client of the old configuration reads the old store only.
            (g.store == Store::New || p.store == Store::Old)
                && p.inv < g.res
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
    model: &Model<'_>,
    id: usize,
    g: &OpRecord,
    writes: &[&OpRecord],
    puts: &[&OpRecord],
    cond: &Conditions,
    report: &mut Report,
) {
    let faulty = &cond.faulty;
    // Writes invoked before the read returned: the only ones it can see.
    let writes: Vec<&OpRecord> = writes.iter().copied().filter(|x| x.inv < g.res).collect();
    let healthy_acks = |x: &OpRecord| {
        x.acked_put().map_or(0, |(_, acks)| acks.iter().filter(|i| !faulty.contains(i)).count())
    };
    let visible = |x: &OpRecord| model.available(g, x, faulty);
    // A put whose value (or a newer one) every read must see: acknowledged on K healthy
    // backends, and every write invoked after it started is such a put too.
    let protected = |x: &OpRecord| {
        x.res < g.inv
            && visible(x)
            && writes.iter().all(|y| std::ptr::eq(*y, x) || y.res < x.inv || visible(y))
    };
    // (2): the last write, isolated and acknowledged on K healthy backends.
    let last = writes.iter().copied().max_by_key(|x| x.inv).filter(|l| {
        visible(l) && l.res < g.inv && writes.iter().all(|y| std::ptr::eq(*y, *l) || y.res < l.inv)
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
    let across = |x: &OpRecord| x.store == Store::Old && g.store == Store::New;
    if last.is_some_and(across) || protected_puts.iter().any(|x| across(x)) {
        bump(
            &mut report.checks,
            "(2)/(4) across the re-share: an old store's write, a new client's read",
        );
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

/// The re-share itself (docs/FAULTS.md "Re-sharing"): it finished once the store was healed
/// (it may take many runs before), and left nothing of the old store but its keyring and
/// moved notice; and the fence held: no client of the old configuration had a write
/// acknowledged that it began after the re-share recorded its floor (such a write would
/// not be copied), unless a backend of the old store served bad data in its round or the
/// one before (such a backend can hide the moved notice from the client's last check).
fn check_reshare(run: &RunResult, model: &Model<'_>, report: &mut Report) {
    let plan = model.plan;
    let Some(rs) = &plan.reshare else { return };
    let Some(log) = model.log else {
        report.violations.push(final_state(None, "the re-share never ran".to_owned()));
        return;
    };
    if !log.finished {
        let last = log.runs.last().map_or("no run".to_owned(), |r| r.detail.clone());
        report.violations.push(final_state(
            None,
            format!(
                "the re-share did not finish in {} runs, the last after healing: {last}",
                log.runs.len()
            ),
        ));
    }
    if !run.final_state.old_left.is_empty() {
        let n = run.final_state.old_left.len();
        let (b, key) = &run.final_state.old_left[0];
        report.violations.push(final_state(
            None,
            format!("the finished re-share left {n} objects of the old store, e.g. b{b}: {key}"),
        ));
    }
    let Some(floor) = log.copying else { return };
    let lying =
        |r: usize| plan.rounds[r].faults.iter().any(|(b, f)| *b < plan.n && f.serves_bad_data());
    for o in &run.history {
        if o.store != Store::Old || !o.spec.is_write() || o.inv < floor {
            continue;
        }
        bump(&mut report.checks, Invariant::Fenced.name());
        if o.succeeded_write() && !lying(o.round) && !(o.round > 0 && lying(o.round - 1)) {
            report.violations.push(Violation {
                invariant: Invariant::Fenced,
                op: Some(o.op),
                id: Some(o.spec.id()),
                detail: format!(
                    "a client of the old configuration wrote after the re-share recorded its \
                     floor (the re-share began in round {}, new configuration {}-of-{})",
                    rs.round,
                    rs.k,
                    rs.n()
                ),
                related: None,
            });
        }
    }
}

/// A broken [`Invariant::FinalState`]: of record `id`, or of the whole store (`None`).
fn final_state(id: Option<usize>, detail: String) -> Violation {
    Violation { invariant: Invariant::FinalState, op: None, id, detail, related: None }
}

fn check_final(
    run: &RunResult,
    model: &Model<'_>,
    id: usize,
    writes: &[&OpRecord],
    puts: &[&OpRecord],
    report: &mut Report,
) {
    let fin = &run.final_state;
    let mut violate = |detail: String| report.violations.push(final_state(Some(id), detail));
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
        store: if run.reshare.is_some() { Store::New } else { Store::Old },
        inv: u64::MAX - 1,
        res: u64::MAX,
        value: Vec::new(),
        result: first.clone(),
        took: std::time::Duration::ZERO,
    };
    let healthy = Conditions { faulty: BTreeSet::new(), bad_data: false };
    let before = report.violations.len();
    check_read(model, id, &probe, writes, puts, &healthy, report);
    for v in &mut report.violations[before..] {
        v.op = None;
        v.detail = format!("reading the healed store: {}", v.detail);
    }
    let mut violate = |detail: String| report.violations.push(final_state(Some(id), detail));
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
            for (b, (heads, segs, tombs)) in objects.iter().enumerate() {
                if *heads != 1 || *segs != segments || *tombs != 0 {
                    violate(format!(
                        "after scrub b{b} holds {heads} head shares, {segs} segment shares and \
                         {tombs} tombstones (expected 1, {segments} and 0)"
                    ));
                }
            }
        }
        OpResult::Failed { code: ErrorCode::RecordNotFound, .. } => {
            // A deleted record keeps its newest tombstone (one per backend, or none where
            // nothing was ever written); nothing else.
            for (b, (heads, segs, tombs)) in objects.iter().enumerate() {
                if heads + segs != 0 || *tombs > 1 {
                    violate(format!(
                        "after scrub b{b} still holds {heads} head and {segs} segment shares and \
                         {tombs} tombstones of a record that is gone"
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
