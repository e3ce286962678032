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

/// `vaultdb audit verify [PATH]`: recomputes the audit log's hash chain.
///
/// # Errors
/// `AUDIT_CHAIN_BROKEN` naming the first bad line; `INVALID_CONFIG` if the log cannot be
/// read.
pub(super) fn audit_verify(explicit: Option<&Path>, path: Option<PathBuf>) -> Result<(), CliError> {
    let path = match path {
        Some(p) => p,
        None => Loaded::load(explicit)?.audit_log,
    };
    match audit::verify(&path) {
        Ok(v) => {
            println!(
                "ok: {}: {} line(s), chain intact; last hash {}",
                path.display(),
                v.lines,
                v.last_hash
            );
            println!("(keep the last hash elsewhere to detect lines cut off the end later)");
            Ok(())
        }
        Err(Ok(broken)) => {
            Err(CliError::new(AUDIT_CHAIN_BROKEN, format!("{}: {broken}", path.display())))
        }
        Err(Err(e)) => {
            Err(CliError::config(format!("cannot read audit log {}: {e}", path.display())))
        }
    }
}
