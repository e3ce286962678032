//! The admin commands: `status`, `repair`, `scrub`, `audit verify`.

use std::path::{Path, PathBuf};
use vaultdb_core::Health;

use super::output::{BackendRow, print_backends, problems, warn_degraded};
use super::{Session, prepare};
use crate::audit;
use crate::config::Loaded;
use crate::error::{AUDIT_CHAIN_BROKEN, CliError};
use crate::service::{self, Operation};

/// The rows `status` prints for a health report.
fn rows_of(h: &Health) -> Vec<BackendRow> {
    h.backends.iter().map(|b| (b.id.clone(), b.name.clone(), b.error.clone(), b.latency)).collect()
}

/// `vaultdb status`: per-backend health and latency, and the threshold margin. When the
/// store cannot be opened, the backends are probed directly.
///
/// # Errors
/// `INSUFFICIENT_SHARES` below the threshold; the store's errors when it cannot be opened.
pub(super) async fn status(explicit: Option<&Path>) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let k = cfg.config.threshold;
    let backends = cfg.backends();
    let db = match service::open_with(&cfg, backends.clone()).await {
        Ok(db) => db,
        Err(e) => {
            // The store cannot be opened: probe the backends directly, as `health` would.
            let Ok(h) = Health::probe(&backends, k, &cfg.settings()).await else {
                return Err(e);
            };
            println!("store: {} (cannot open: {})", cfg.describe(), e.message);
            println!("{} of {} backends up; threshold {k}", h.up, h.n);
            print_backends(&rows_of(&h));
            return Err(e);
        }
    };
    let h = db.health().await;
    let margin = h.margin;
    println!(
        "store: {}-of-{} (write quorum {}), {} of {} backends up, margin {margin}",
        h.k,
        h.n,
        db.write_quorum(),
        h.up,
        h.n
    );
    match margin {
        m if m < 0 => println!("reads FAIL: fewer than {} backends are up", h.k),
        0 => println!("reads work, but one more backend failure makes records unreadable"),
        m => println!("{m} more backend(s) can fail before reads fail"),
    }
    let rows: Vec<BackendRow> = h
        .backends
        .iter()
        .map(|b| (b.id.clone(), b.name.clone(), b.error.clone(), b.latency))
        .collect();
    print_backends(&rows);
    if margin < 0 {
        return Err(CliError::new(
            "INSUFFICIENT_SHARES",
            format!("only {} of {} backends are up; {} are needed", h.up, h.n, h.k),
        ));
    }
    Ok(())
}

/// `vaultdb repair ID`: regenerates the record's missing or bad shares from K good ones.
///
/// # Errors
/// The store's errors; `BACKEND_ERROR` if some problem could not be repaired.
pub(super) async fn repair(explicit: Option<&Path>, id: &str) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    let r = s.audited(Operation::RecordRepair, Some(id), s.db.repair(id)).await?;
    match r.version {
        Some(v) => println!(
            "version {v}: {} share(s) restored, {} object(s) removed",
            r.restored.len(),
            r.removed
        ),
        None => println!("nothing to repair ({} object(s) removed)", r.removed),
    }
    if !r.restored.is_empty() {
        println!("restored on: {}", r.restored.join(", "));
    }
    problems(&r.problems)
}

/// `vaultdb scrub`: repairs every record and the keyring, with a progress bar; first
/// removes the temporary files interrupted writes left in fs backends.
///
/// # Errors
/// The store's errors; `BACKEND_ERROR` if some problem could not be repaired.
pub(super) async fn scrub(explicit: Option<&Path>) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, None)?).await?;
    let stray = s.cfg.clean_fs_temp().await;
    if stray > 0 {
        println!("removed {stray} temporary file(s) left by interrupted writes");
    }
    let bar = indicatif::ProgressBar::new(0);
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
    println!(
        "scrubbed {} record(s): {} share(s) restored, {} object(s) removed, {} problem(s)",
        r.records,
        r.restored,
        r.removed,
        r.problems.len()
    );
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
) -> Result<(), CliError> {
    let cfg = Loaded::load(explicit)?;
    let path = path.unwrap_or_else(|| cfg.audit_log.clone());
    let shown = path.display().to_string();
    let all = std::fs::read(&path)
        .map_err(|e| CliError::config(format!("cannot read audit log {shown}: {e}")))?;
    let broken = |b: audit::Broken| CliError::new(AUDIT_CHAIN_BROKEN, format!("{shown}: {b}"));
    let store_error = |e: audit::CheckpointError| match e {
        audit::CheckpointError::Store(e) => CliError::from(e),
        other => CliError::new(AUDIT_CHAIN_BROKEN, format!("{shown}: {other}")),
    };
    let db = service::open(&cfg).await?;
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
    println!("{said}");
    for o in &others {
        println!(
            "note: this path held log {} before (checkpointed at line {}, {}): it was replaced \
             or moved",
            o.log, o.seq, o.ts
        );
    }
    Ok(())
}
