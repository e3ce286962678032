//! `vaultdb reshare --to NEW.toml`: moves the store the configuration names (`--config`, as
//! for every command) to the configuration of NEW.toml while clients keep running
//! ([`VaultDb::reshare`]; docs/SECURITY.md "Re-sharing" says what clients see and why nothing
//! acknowledged is lost).
//!
//! Before anything is written, both configurations are checked against each other: they
//! must be two files, with two audit logs, and no backend location of the old store may hold
//! the new one under the same (or a nested) prefix. Environment overrides that would apply
//! to both files (`VAULTDB_BACKENDS`, `VAULTDB_THRESHOLD`, ...) are refused. The new store is
//! opened as a migrating client of the old one (and created if it is not there yet, as
//! `init` or a first `put` would), and the old configuration file's path is recorded in the
//! new one's data_dir ([`service::RESHARE_FROM_FILE`], removed at the end) for servers and
//! commands on the new file to read through to the old store
//! ([`service::follow_reshare`]). Progress is saved in the new store: running the same
//! command again, after Ctrl-C, a crash or an error, resumes. Each run writes a
//! `store.reshare` line to the old store's audit log; a finished one also to the new one's.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vaultdb_core::{ReshareOptions, ResharePhase, ReshareProgress, ReshareReport, VaultDb};

use super::output::Output;
use super::{CliAuditLog, Create, Session, locate, prepare, remember};
use crate::audit::{self, AuditLog, Event};
use crate::config::{BackendEntry, Loaded, Source};
use crate::error::{CliError, INTERRUPTED};
use crate::service::{self, AUDIT_UNAVAILABLE, AuditSink, Operation, Presence};

use super::ReshareArgs;

/// Environment overrides that would apply to both configurations alike.
const SHARED_ENV: [&str; 5] = [
    "VAULTDB_BACKENDS",
    "VAULTDB_THRESHOLD",
    "VAULTDB_WRITE_QUORUM",
    "VAULTDB_DATA_DIR",
    "VAULTDB_AUDIT_LOG",
];

/// `vaultdb reshare --to NEW.toml [--lost ID]... [--remove-fence] [--checkpoint-every N]`.
///
/// # Errors
/// `INVALID_CONFIG` for configurations that cannot be re-shared into each other (see the
/// module docs), or a store that already moved elsewhere; `STORE_NOT_FOUND` without an old
/// store; `AUDIT_UNAVAILABLE` when an audit log cannot be written (and fails closed);
/// `INTERRUPTED` on Ctrl-C (run again to resume); the store's errors (run again to resume);
/// `BACKEND_ERROR` when K or more old backends could not be cleared.
pub(super) async fn reshare(
    explicit: Option<&Path>,
    args: &ReshareArgs,
    out: Output,
) -> Result<(), CliError> {
    if let Some(var) = SHARED_ENV.iter().find(|v| crate::config::process_env(v).is_some()) {
        return Err(CliError::config(format!(
            "{var} is set: it would override the old and the new configuration alike; put the \
             setting in the two files and unset it"
        )));
    }
    let old_cfg = prepare(explicit, None)?;
    let new_cfg = Loaded::load(Some(&args.to))?;
    check_pair(&old_cfg, &new_cfg)?;
    let new_path = args.to.display().to_string();
    let mut again = match explicit {
        Some(p) => format!("vaultdb --config {} reshare --to {new_path}", p.display()),
        None => format!("vaultdb reshare --to {new_path}"),
    };
    for id in &args.lost {
        again.push_str(&format!(" --lost {id}"));
    }

    // The old store must exist; the new one is created if it is not there yet.
    let old = Session::open(old_cfg).await?;
    if !new_cfg.audit_fail_open
        && let Err(e) = audit::check_writable(&new_cfg.audit_log)
    {
        return Err(CliError::new(
            AUDIT_UNAVAILABLE,
            format!(
                "cannot write the new store's audit log {}: {e}; nothing was done (it fails \
                 closed: see audit.fail_open)",
                new_cfg.audit_log.display()
            ),
        ));
    }
    let moved_elsewhere = || {
        CliError::config(format!(
            "the store of {} has already moved to another configuration (its moved notice \
             says so), not to {new_path}: run `vaultdb reshare --to` with the configuration \
             it moved to, or use that one",
            describe_source(&old.cfg)
        ))
    };
    let located = locate(&new_cfg, Create::Announce).await?;
    let created = located.presence == Presence::Empty;
    if created && old.db.has_moved() {
        return Err(moved_elsewhere());
    }
    let new = service::open_migrating(&new_cfg, located.backends, &old.db).await?;
    remember(&new);
    // Commands and servers on the new configuration read through to the old store while
    // the re-share is not done: they find the old configuration here.
    if let Err(e) = service::record_reshare_source(&new_cfg, &old.cfg) {
        eprintln!(
            "warning: cannot record the old configuration in {}: {e}; processes on {new_path} \
             need {} set to it until the re-share is done",
            new_cfg.data_dir.join(service::RESHARE_FROM_FILE).display(),
            service::RESHARE_FROM_ENV
        );
    }
    if created {
        let places: Vec<String> = new_cfg.config.backends.iter().map(|b| b.location()).collect();
        eprintln!("vaultdb: created the new store, {}: {}", new_cfg.describe(), places.join(", "));
    }
    if old.db.has_moved() && new.reshare_phase().is_none() {
        return Err(moved_elsewhere());
    }

    let mut options = ReshareOptions::default();
    options.checkpoint_every = args.checkpoint_every as usize;
    options.remove_fence = args.remove_fence;
    options.lost.clone_from(&args.lost);
    let mut progress = Progress::new(out, old.cfg.settings().fence_wait());
    let run = old.db.reshare(&new, &options, |p| progress.update(p));
    let result = tokio::select! {
        r = run => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    progress.finish();

    let outcome = match &result {
        Some(Ok(_)) => "OK",
        Some(Err(e)) => e.code().as_str(),
        None => INTERRUPTED,
    };
    log_line(&old.log, &old.db, outcome).await?;
    if let Some(Ok(_)) = &result {
        let log = AuditLog::new(&new_cfg.audit_log, &new).with_fail_open(new_cfg.audit_fail_open);
        log_line(&CliAuditLog(Arc::new(log)), &new, outcome).await?;
    }
    let report = match result {
        Some(Ok(report)) => {
            service::forget_reshare_source(&new_cfg);
            report
        }
        Some(Err(e)) => {
            // Refusals (the two stores cannot be re-shared into each other) change nothing;
            // anything else happened on the way, and the next run resumes.
            let mut e = CliError::from(e);
            if e.code != "INVALID_CONFIG" {
                e.message
                    .push_str(&format!(" (the progress is saved: run `{again}` again to resume)"));
            }
            return Err(e);
        }
        None => {
            return Err(CliError::new(
                INTERRUPTED,
                format!("interrupted; the progress is saved: run `{again}` again to resume"),
            ));
        }
    };
    print_report(out, &old.cfg, &new_cfg, &new_path, &report, args.remove_fence)
}

/// Refuses a pair of configurations a re-share cannot go between, before anything is
/// touched: one file twice, one audit log for both, or one place (backend location) that
/// would hold both stores under the same or nested prefixes (removing the old store would
/// remove the new one).
fn check_pair(old: &Loaded, new: &Loaded) -> Result<(), CliError> {
    if let (Source::File(a), Source::File(b)) = (&old.source, &new.source)
        && same_path(a, b)
    {
        return Err(CliError::config(format!(
            "--to {} is the configuration of the store to move; give the new store's",
            b.display()
        )));
    }
    if same_path(&old.audit_log, &new.audit_log) {
        return Err(CliError::config(format!(
            "both configurations write the audit log {}: each store keys and checkpoints its \
             own; give the new configuration another (server.audit_log, or another data_dir)",
            new.audit_log.display()
        )));
    }
    let root = |p: &str| match p.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let (old_root, new_root) = (root(&old.config.prefix), root(&new.config.prefix));
    if !old_root.starts_with(&new_root) && !new_root.starts_with(&old_root) {
        return Ok(());
    }
    for a in &old.config.backends {
        for b in &new.config.backends {
            let why = if same_place(a, b) {
                format!("are one place ({})", a.location())
            } else if a.id() == b.id() {
                "have one id (the removal of the old store goes by backend id)".to_owned()
            } else {
                continue;
            };
            return Err(CliError::config(format!(
                "old backend {:?} and new backend {:?} {why}, with the prefixes {:?} and {:?}, \
                 one inside the other: removing the old store would remove the new one; give \
                 the new store another prefix (`prefix` in its file, or `vaultdb init --prefix`)",
                a.id(),
                b.id(),
                old.config.prefix,
                new.config.prefix
            )));
        }
    }
    Ok(())
}

/// Whether two backend entries name one place: one directory (links resolved), or one
/// bucket, container or table and prefix (memory backends are each their own).
fn same_place(a: &BackendEntry, b: &BackendEntry) -> bool {
    match (a, b) {
        (BackendEntry::Fs(x), BackendEntry::Fs(y)) => same_path(&x.path, &y.path),
        (BackendEntry::Memory(_), _) | (_, BackendEntry::Memory(_)) => false,
        _ => a.kind() == b.kind() && a.location() == b.location(),
    }
}

/// Whether two paths name one file (compared as absolute paths, links resolved where they
/// exist).
fn same_path(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| {
        std::fs::canonicalize(p).or_else(|_| std::path::absolute(p)).unwrap_or_else(|_| p.into())
    };
    norm(a) == norm(b)
}

/// `config PATH` or `the embedded default config`.
fn describe_source(cfg: &Loaded) -> String {
    match &cfg.source {
        Source::File(p) => format!("config {}", p.display()),
        Source::Embedded => "the embedded default config".to_owned(),
    }
}

/// Writes a `store.reshare` line with `outcome`. Once the store has moved, its own
/// checkpoint cannot be updated (the store refuses every operation): the line is appended
/// without one.
async fn log_line(log: &CliAuditLog, db: &VaultDb, outcome: &str) -> Result<(), CliError> {
    let event = Event {
        actor: audit::CLI_ACTOR,
        op: Operation::StoreReshare.as_str(),
        tag: None,
        outcome,
        count: None,
    };
    if !db.has_moved() {
        return log.write(event).await.map_err(CliError::from);
    }
    match log.0.append(event) {
        Ok(_) => Ok(()),
        Err(e) => log.unavailable(&e, "the re-share ran but is not logged").map_err(CliError::from),
    }
}

/// Shows the re-share's progress on standard error: a bar on a terminal; otherwise a line
/// at each phase and every few seconds while copying (JSON objects with `--json`).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    out: Output,
    wait: Duration,
    phase: Option<ResharePhase>,
    /// Records to go through in the namespace being copied, and how many were.
    total: u64,
    done: u64,
    printed: Option<Instant>,
}

/// How often, at most, a progress line is printed when standard error is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    fn new(out: Output, wait: Duration) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "reshare [{bar:40}] {pos}/{len} records ({eta}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Self { bar, out, wait, phase: None, total: 0, done: 0, printed: None }
    }

    fn update(&mut self, p: &ReshareProgress) {
        if self.phase != Some(p.phase) {
            self.phase = Some(p.phase);
            self.say(p, Some(phase_text(p.phase, self.wait)));
            return;
        }
        // One call per record gone through; a new total starts the next namespace (the
        // system records come first).
        if p.total != self.total || self.done >= p.total {
            (self.total, self.done) = (p.total, 0);
        }
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.total);
                bar.set_position(self.done);
                bar.set_message(format!("{} copied, {} skipped", p.copied, p.skipped));
            }
            None if self.printed.is_none_or(|t| t.elapsed() >= LINE_EVERY)
                || self.done == p.total =>
            {
                self.say(p, None);
            }
            None => {}
        }
    }

    /// Prints one progress line (or, on a terminal, a phase above the bar).
    fn say(&mut self, p: &ReshareProgress, text: Option<String>) {
        let done = self.done;
        self.printed = Some(Instant::now());
        let line = match self.out {
            Output::Json => json!({
                "phase": phase_name(p.phase),
                "done": done,
                "total": p.total,
                "copied": p.copied,
                "skipped": p.skipped,
                "failed": p.failed,
            })
            .to_string(),
            Output::Text => match text {
                Some(t) => format!("reshare: {t}"),
                None => format!(
                    "reshare: {done}/{} records ({} copied, {} skipped, {} failed)",
                    p.total, p.copied, p.skipped, p.failed
                ),
            },
        };
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn phase_name(p: ResharePhase) -> &'static str {
    match p {
        ResharePhase::Fencing => "fencing",
        ResharePhase::Copying => "copying",
        ResharePhase::Done => "done",
    }
}

fn phase_text(p: ResharePhase, wait: Duration) -> String {
    match p {
        ResharePhase::Fencing => format!(
            "fencing: clients of the old configuration now stop (a server on it answers \
             INVALID_CONFIG: move clients to the new one, whose servers read through to the \
             old store); waiting {} for the last of them (twice timeouts.fence_check plus four \
             of the longest backend calls); writes on the new configuration wait for it",
            humantime::format_duration(wait)
        ),
        ResharePhase::Copying => "copying every record with fresh shares".to_owned(),
        ResharePhase::Done => "every record copied; removing the old store's objects".to_owned(),
    }
}

/// Prints what the re-share did; `BACKEND_ERROR` when K or more old backends could not be
/// cleared (their objects together still hold the old records).
fn print_report(
    out: Output,
    old: &Loaded,
    new: &Loaded,
    new_path: &str,
    r: &ReshareReport,
    remove_fence: bool,
) -> Result<(), CliError> {
    let removed: usize = r.removed.iter().map(|(_, n)| n).sum();
    let k = old.config.threshold;
    let failing = r.problems.len();
    out.emit(
        || {
            let per: Vec<String> = r.removed.iter().map(|(id, n)| format!("{id} {n}")).collect();
            let mut text = format!(
                "re-shared {} to {new_path} ({}): {} record(s) copied, {} skipped\n\
                 removed {removed} object(s) from the old backends ({})",
                old.describe(),
                new.describe(),
                r.copied,
                r.skipped,
                per.join(", "),
            );
            if r.kept > 0 {
                text.push_str(&format!(
                    "; kept {} (the old keyring and moved notice: clients started on the old \
                     configuration are told to use the new one; --remove-fence removes them)",
                    r.kept
                ));
            }
            text.push_str(&format!(
                "\nclients of the old configuration must move to --config {new_path} (servers \
                 and commands on it need nothing more: they now use the new store alone)"
            ));
            text
        },
        || {
            json!({
                "from": old.describe(),
                "to": new.describe(),
                "config": new_path,
                "floor": r.floor.map(vaultdb_core::Version::to_text),
                "waited_seconds": r.waited.as_secs_f64(),
                "copied": r.copied,
                "skipped": r.skipped,
                "removed": r.removed.iter().map(|(id, n)| (id.clone(), json!(n)))
                    .collect::<serde_json::Map<_, _>>(),
                "kept": r.kept,
                "fence_removed": remove_fence,
                "problems": r.problems,
            })
        },
    )?;
    for p in &r.problems {
        eprintln!(
            "warning: old backend {p}: its objects under prefix {:?} were not removed; run the \
             same command again once it answers (if it is gone for good, nothing is needed \
             from it)",
            old.config.prefix
        );
    }
    if failing >= k {
        return Err(CliError::new(
            "BACKEND_ERROR",
            format!(
                "{failing} old backends could not be cleared: together (K = {k}) they still \
                 hold the old records; run the same command again once they answer"
            ),
        ));
    }
    if failing > 0 && out == Output::Text {
        eprintln!(
            "note: shares of fewer than K = {k} old backends reveal nothing about the records"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(file: &str, text: &str) -> Loaded {
        Loaded::from_text(text, Source::File(file.into())).unwrap()
    }

    const OLD: &str = "threshold = 2\n[[backends]]\nid = \"a\"\nurl = \"file:///srv/a\"\n\
                       [[backends]]\nid = \"b\"\nurl = \"file:///srv/b\"\n";

    #[test]
    fn pairs_that_would_lose_data_or_mix_logs_are_refused() {
        let old = cfg("/etc/v1/vaultdb.toml", OLD);
        let refused = |file: &str, text: &str, says: &str| {
            let e = check_pair(&old, &cfg(file, text)).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG");
            assert!(e.message.contains(says), "{text}: {}", e.message);
        };
        refused("/etc/v1/vaultdb.toml", OLD, "is the configuration of the store to move");
        // Another file in the same directory: the same default audit log.
        refused("/etc/v1/new.toml", &format!("prefix = \"v2\"\n{OLD}"), "audit log");
        // The same directories under other ids, and the same (or a nested) prefix.
        let renamed = OLD.replace("id = \"a\"", "id = \"x\"").replace("id = \"b\"", "id = \"y\"");
        refused("/etc/v2/vaultdb.toml", &renamed, "one place (/srv/a)");
        refused(
            "/etc/v2/vaultdb.toml",
            &format!("prefix = \"vaultdb/next\"\n{renamed}"),
            "one inside the other",
        );
        refused("/etc/v2/vaultdb.toml", &OLD.replace("/srv/", "/mnt/"), "have one id");
        // Another prefix, or other places and ids, go.
        let elsewhere = renamed.replace("/srv/", "/mnt/");
        for ok in [format!("prefix = \"v2\"\n{renamed}"), elsewhere] {
            assert!(check_pair(&old, &cfg("/etc/v2/vaultdb.toml", &ok)).is_ok(), "{ok}");
        }
        // Two audit logs set apart by hand in one directory go too.
        let backends = OLD.strip_prefix("threshold = 2\n").unwrap();
        let own_log = format!(
            "threshold = 2\nprefix = \"v2\"\n[server]\naudit_log = \"v2.jsonl\"\n{backends}"
        );
        assert!(check_pair(&old, &cfg("/etc/v1/new.toml", &own_log)).is_ok());
    }
}
