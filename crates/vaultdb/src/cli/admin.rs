//! The admin commands: `status`, `repair`, `scrub`, `audit verify`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::json;
use vaultdb_core::Health;

use super::output::{BackendRow, Output, backends_table, problems, warn_degraded};
use super::{Create, Session, locate, open_store, prepare};
use crate::audit;
use crate::config::Loaded;
use crate::error::{AUDIT_CHAIN_BROKEN, CliError};
use crate::service::Operation;

/// `status --json`: the health report as one document. The remote `status` reads the
/// server's in the same shape and prints it again.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StatusDoc {
    pub k: usize,
    pub n: usize,
    /// `None` when the store could not be opened.
    pub write_quorum: Option<usize>,
    pub up: usize,
    pub margin: i64,
    #[serde(default)]
    pub opened: bool,
    pub backends: Vec<BackendDoc>,
}

/// One backend of a [`StatusDoc`].
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct BackendDoc {
    pub id: String,
    pub name: String,
    pub up: bool,
    pub latency_ms: f64,
    pub error: Option<String>,
}

impl StatusDoc {
    /// The document of a health report (`write_quorum`: `None` if the store did not open).
    fn of(h: &Health, write_quorum: Option<usize>) -> Self {
        let backends = h
            .backends
            .iter()
            .map(|b| BackendDoc {
                id: b.id.clone(),
                name: b.name.clone(),
                up: b.up,
                latency_ms: b.latency.as_secs_f64() * 1000.0,
                error: b.error.clone(),
            })
            .collect();
        Self {
            k: h.k,
            n: h.n,
            write_quorum,
            up: h.up,
            margin: h.margin as i64,
            opened: write_quorum.is_some(),
            backends,
        }
    }

    /// As JSON.
    pub(super) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The rows `status` prints for a health report.
fn rows_of(h: &Health) -> Vec<BackendRow> {
    h.backends.iter().map(|b| (b.id.clone(), b.name.clone(), b.error.clone(), b.latency)).collect()
}

/// `vaultdb status`: per-backend health and latency, and the threshold margin. When the
/// store cannot be opened, the backends are probed directly.
///
/// # Errors
/// `INSUFFICIENT_SHARES` below the threshold; the store's errors when it cannot be opened.
pub(super) async fn status(explicit: Option<&Path>, out: Output) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let k = cfg.config.threshold;
    let located = locate(&cfg, Create::No).await?;
    let backends = located.backends.clone();
    let db = match located.open(&cfg).await {
        Ok(db) => {
            super::remember(&db);
            db
        }
        Err(e) => {
            // The store cannot be opened: probe the backends directly, as `health` would.
            let Ok(h) = Health::probe(&backends, k, &cfg.settings()).await else {
                return Err(e);
            };
            out.emit(
                || {
                    format!(
                        "store: {} (cannot open: {})\n{} of {} backends up; threshold {k}\n{}",
                        cfg.describe(),
                        e.message,
                        h.up,
                        h.n,
                        backends_table(&rows_of(&h))
                    )
                },
                || StatusDoc::of(&h, None).to_json(),
            )?;
            return Err(e);
        }
    };
    if db.has_moved() {
        // Its backends answer, but the store refuses every operation.
        return Err(CliError::config(format!(
            "the store {} has moved to a new configuration (`vaultdb reshare`); it refuses \
             every operation: run the command with --config NEW.toml",
            cfg.describe()
        )));
    }
    let h = db.health().await;
    let wq = db.write_quorum();
    out.emit(
        || status_text(h.k, h.n, wq, h.up, h.margin as i64, &rows_of(&h)),
        || StatusDoc::of(&h, Some(wq)).to_json(),
    )?;
    enough_up(h.k, h.n, h.up, h.margin as i64)
}

/// `status`'s text for an open store: the threshold, the margin, a verdict, the table.
pub(super) fn status_text(
    k: usize,
    n: usize,
    write_quorum: usize,
    up: usize,
    margin: i64,
    rows: &[BackendRow],
) -> String {
    let verdict = match margin {
        m if m < 0 => format!("reads FAIL: fewer than {k} backends are up"),
        0 => "reads work, but one more backend failure makes records unreadable".into(),
        m => format!("{m} more backend(s) can fail before reads fail"),
    };
    format!(
        "store: {k}-of-{n} (write quorum {write_quorum}), {up} of {n} backends up, margin \
         {margin}\n{verdict}\n{}",
        backends_table(rows)
    )
}

/// `status`'s verdict: `INSUFFICIENT_SHARES` when fewer than K backends are up.
pub(super) fn enough_up(k: usize, n: usize, up: usize, margin: i64) -> Result<(), CliError> {
    if margin < 0 {
        return Err(CliError::new(
            "INSUFFICIENT_SHARES",
            format!("only {up} of {n} backends are up; {k} are needed"),
        ));
    }
    Ok(())
}

/// `vaultdb repair ID`: regenerates the record's missing or bad shares from K good ones.
///
/// # Errors
/// The store's errors; `BACKEND_ERROR` if some problem could not be repaired.
pub(super) async fn repair(explicit: Option<&Path>, id: &str, out: Output) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    let repair = async {
        let r = s.db.repair(id).await?;
        // No version of the record anywhere: not found, as `get` and `delete` say.
        if r.version.is_none() && r.restored.is_empty() && r.problems.is_empty() {
            return Err(super::records::not_found());
        }
        Ok(r)
    };
    let r = s.audited(Operation::RecordRepair, Some(id), repair).await?;
    let version = r.version.map(|v| v.to_string());
    repair_report(out, id, version, &r.restored, r.removed, &r.problems)
}

/// Prints what `repair` did; `BACKEND_ERROR` if some problem could not be repaired.
pub(super) fn repair_report(
    out: Output,
    id: &str,
    version: Option<String>,
    restored: &[String],
    removed: usize,
    problems_left: &[String],
) -> Result<(), CliError> {
    out.emit(
        || {
            let mut text = match &version {
                Some(v) => format!(
                    "version {v}: {} share(s) restored, {removed} object(s) removed",
                    restored.len(),
                ),
                None => format!("no readable version ({removed} object(s) removed)"),
            };
            if !restored.is_empty() {
                text.push_str(&format!("\nrestored on: {}", restored.join(", ")));
            }
            text
        },
        || {
            json!({
                "id": id,
                "version": version,
                "restored": restored,
                "removed": removed,
                "problems": problems_left,
            })
        },
    )?;
    problems(problems_left)
}

/// `vaultdb scrub`: repairs every record and the keyring, with a progress bar; first
/// removes the temporary files interrupted writes left in fs backends. Reports the objects
/// of unfinished writes it keeps until they pass the grace period, and until when.
///
/// # Errors
/// The store's errors; `BACKEND_ERROR` if some problem could not be repaired.
pub(super) async fn scrub(explicit: Option<&Path>, out: Output) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, None)?).await?;
    let stray = s.cfg.clean_fs_temp().await;
    if stray > 0 && out == Output::Text {
        println!("removed {stray} temporary file(s) left by interrupted writes");
    }
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("scrub [{bar:40}] {pos}/{len} records ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let scrub = async {
        let r =
            s.db.scrub_with_progress(|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await;
        bar.finish_and_clear();
        r
    };
    let r = s.audited(Operation::StoreScrub, None, scrub).await?;
    warn_degraded("scrub listing", &r.outcomes);
    let pending_until = r.pending_until.map(|t| humantime::format_rfc3339_millis(t).to_string());
    out.emit(
        || {
            let mut text = format!(
                "scrubbed {} record(s): {} share(s) restored, {} object(s) removed, {} problem(s)",
                r.records,
                r.restored,
                r.removed,
                r.problems.len()
            );
            if let Some(until) = &pending_until {
                text.push_str(&format!(
                    "\n{} object(s) of unfinished writes kept until {until} (the grace period: \
                     a put may still be writing them); a scrub after that removes them",
                    r.pending
                ));
            }
            text
        },
        || {
            json!({
                "records": r.records,
                "restored": r.restored,
                "removed": r.removed,
                "temporary_files_removed": stray,
                "pending": r.pending,
                "pending_until": pending_until,
                "problems": r.problems,
            })
        },
    )?;
    problems(&r.problems)
}

/// `vaultdb audit verify [PATH]`: checks the audit log against the store: every line's MAC
/// and link, and the stored checkpoint's line (so that lines cut off the end, up to the
/// last checkpoint, show). It opens the store (K backends) for the key and the checkpoint,
/// and writes nothing.
///
/// # Errors
/// `AUDIT_CHAIN_BROKEN` naming the first bad line; `INVALID_CONFIG` if the log cannot be
/// read; the store's errors if it cannot be opened.
pub(super) async fn audit_verify(
    explicit: Option<&Path>,
    path: Option<PathBuf>,
    out: Output,
) -> Result<(), CliError> {
    let cfg = Loaded::load(explicit)?;
    let given = path.is_some();
    let path = path.unwrap_or_else(|| cfg.audit_log.clone());
    let shown = path.display().to_string();
    let all = match std::fs::read(&path) {
        Ok(all) => all,
        Err(e) => {
            // No log where the configuration puts it: perhaps no store either.
            if !given {
                locate(&cfg, Create::No).await?;
            }
            return Err(CliError::config(format!("cannot read audit log {shown}: {e}")));
        }
    };
    let broken = |b: audit::Broken| CliError::new(AUDIT_CHAIN_BROKEN, format!("{shown}: {b}"));
    let store_error = |e: audit::CheckpointError| match e {
        audit::CheckpointError::Store(e) => CliError::from(e),
        other => CliError::new(AUDIT_CHAIN_BROKEN, format!("{shown}: {other}")),
    };
    let db = open_store(&cfg, Create::No).await?;
    let log = audit::log_id(&all);
    let checkpoint = match &log {
        Some(id) => audit::read_checkpoint(&db, id).await.map_err(store_error)?,
        None => None,
    };
    // Other logs the store has seen at this path: this file replaced them (or they were
    // moved away).
    let here = std::fs::canonicalize(&path).map(|p| p.to_string_lossy().into_owned()).ok();
    let others: Vec<audit::Checkpoint> = audit::list_checkpoints(&db)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|c| here.as_deref() == Some(c.path.as_str()) && Some(&c.log) != log.as_ref())
        .collect();
    let v = audit::verify_bytes(&all, Some(&audit::AuditKey::of(&db)), checkpoint.as_ref())
        .map_err(broken)?;
    if v.log.is_none()
        && let Some(o) = others.iter().max_by_key(|o| o.ts.clone())
    {
        return Err(broken(audit::Broken {
            line: v.lines + 1,
            reason: format!(
                "missing: the store's checkpoint says log {} at this path reached line {} ({}); \
                 this file holds no line of it (it was emptied or replaced)",
                o.log, o.seq, o.ts
            ),
        }));
    }
    let mut said = format!("ok: {shown}: {} line(s), chain intact", v.lines);
    match (&v.log, v.checkpointed) {
        (None, _) if v.lines == 0 => said.push_str(" (empty)"),
        (None, _) => said.push_str(&format!(
            "; v1 lines only, unkeyed: anyone who can write the file could have rewritten \
             them; last hash {}",
            v.last
        )),
        (Some(id), Some(at)) => {
            said.push_str(&format!(", keyed (log {id}); checkpointed at line {at}"));
            if v.lines > at {
                said.push_str(&format!("; lines {}-{} not yet checkpointed", at + 1, v.lines));
            }
        }
        (Some(id), None) => said.push_str(&format!(
            ", keyed (log {id}); no checkpoint in the store yet: lines 1-{} not checkpointed",
            v.lines
        )),
    }
    if v.log.is_some() && v.v1_lines > 0 {
        said.push_str(&format!(
            "; lines 1-{} are v1 (unkeyed) lines, pinned by line {}",
            v.v1_lines,
            v.v1_lines + 1
        ));
    }
    let notes: Vec<String> = others
        .iter()
        .map(|o| {
            format!(
                "note: this path held log {} before (checkpointed at line {}, {}): it was \
                 replaced or moved",
                o.log, o.seq, o.ts
            )
        })
        .collect();
    out.emit(
        || {
            std::iter::once(said.clone())
                .chain(notes.iter().cloned())
                .collect::<Vec<_>>()
                .join("\n")
        },
        || {
            json!({
                "ok": true,
                "path": shown,
                "lines": v.lines,
                "log": v.log,
                "checkpointed": v.checkpointed,
                "v1_lines": v.v1_lines,
                "notes": notes,
            })
        },
    )
}
