// This file is long because it holds every subcommand, its clap definition and the code that runs
// it (each short), around shared helpers for opening the store, auditing and reporting degraded
// operations.
//! The `vaultdb` command line.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::StreamExt;
use vaultdb_core::naming::validate_id;
use vaultdb_core::{BackendOutcome, Health, OutcomeStatus, Record, RecordMeta, VaultDb};

use crate::audit::{self, AuditLog, Event};
use crate::auth::{Role, Tokens, generate_token, hash_token};
use crate::config::{self, DEFAULT_CONFIG_FILE, Loaded};
use crate::error::{AUDIT_CHAIN_BROKEN, CliError, one_line};
use crate::server::{AppState, Limits, app};

const ENV_HELP: &str = "\
Configuration: --config PATH, else ./vaultdb.toml, else the embedded default (three \
filesystem backends under ./vaultdb-data, 2-of-3).

Environment:
  VAULTDB_CONFIG        configuration file (same as --config)
  VAULTDB_DATA_DIR      data_dir: base of relative fs backend paths and of the audit log
  VAULTDB_THRESHOLD     threshold K
  VAULTDB_WRITE_QUORUM  write quorum W
  VAULTDB_LISTEN        server address, e.g. 127.0.0.1:9000 (port 0: any free port)
  VAULTDB_AUDIT_LOG     audit log path
  VAULTDB_TOKEN         serve, when no [[tokens]] are configured: use this admin token
  RUST_LOG              log filter for stderr (default: warn)

Errors print one line, `error: <CODE>: <message>`, and exit with status 1 (2 for usage \
errors).";

/// VaultDB: records split across N storage backends; any K rebuild them, fewer learn
/// nothing.
#[derive(Debug, Parser)]
#[command(name = "vaultdb", version, after_help = ENV_HELP)]
pub struct Cli {
    /// Configuration file [default: ./vaultdb.toml if present, else the embedded default]
    #[arg(long, global = true, env = "VAULTDB_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented vaultdb.toml (three fs backends under ./vaultdb-data, 2-of-3) and
    /// print a new admin API token once.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Store a record from FILE, or from standard input if FILE is `-` or absent.
    Put {
        /// The record id (1 to 255 bytes, no control characters).
        id: String,
        /// The data file; `-` for standard input.
        #[arg(value_name = "FILE|-")]
        file: Option<PathBuf>,
        /// The data is JSON: check it, and store it as application/json.
        #[arg(long)]
        json: bool,
        /// The content type to store with the data.
        #[arg(long, value_name = "TYPE", conflicts_with = "json")]
        content_type: Option<String>,
    },
    /// Write a record's data to standard output (or to --output).
    Get {
        /// The record id.
        id: String,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Delete every version of a record on every backend.
    Delete {
        /// The record id.
        id: String,
    },
    /// List record ids, one per line, sorted.
    List,
    /// Show each backend's health and the threshold margin.
    Status,
    /// Regenerate a record's missing or bad shares.
    Repair {
        /// The record id.
        id: String,
    },
    /// Repair every record (with a progress bar).
    Scrub,
    /// Run the REST server.
    Serve {
        /// Address to listen on (overrides server.listen and VAULTDB_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Audit log tools.
    Audit {
        /// What to do with the audit log.
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `vaultdb audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; name the first edited, removed or reordered line.
    Verify {
        /// The log [default: the configured audit log].
        path: Option<PathBuf>,
    },
}

/// Runs the command line: parses arguments, runs the command, prints errors as one line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(&CliError::new(
                "INTERNAL_ERROR",
                format!("cannot start the runtime: {e}"),
            ));
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(1)
}

fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let (what, rest) = text.split_once("\nUsage:").unwrap_or((&text, ""));
    let what = one_line(what.trim().trim_start_matches("error:"));
    let usage = rest.lines().next().map(str::trim).unwrap_or("");
    let msg = if usage.is_empty() {
        format!("{what} (see vaultdb --help)")
    } else {
        format!("{what} (usage: {usage}; see --help)")
    };
    eprintln!("{}", CliError::config(msg));
    ExitCode::from(2)
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
}

/// Runs one parsed command.
///
/// # Errors
/// Whatever the command fails with, as a [`CliError`].
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let explicit = cli.config.as_deref();
    match cli.command {
        Command::Init { force } => init(explicit, force),
        Command::Put { id, file, json, content_type } => {
            put(explicit, &id, file.as_deref(), json, content_type).await
        }
        Command::Get { id, output } => get(explicit, &id, output.as_deref()).await,
        Command::Delete { id } => delete(explicit, &id).await,
        Command::List => list(explicit).await,
        Command::Status => status(explicit).await,
        Command::Repair { id } => repair(explicit, &id).await,
        Command::Scrub => scrub(explicit).await,
        Command::Serve { listen } => serve(explicit, listen).await,
        Command::Audit { command: AuditCommand::Verify { path } } => audit_verify(explicit, path),
    }
}

fn init(explicit: Option<&Path>, force: bool) -> Result<(), CliError> {
    let path = explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
    if path.exists() && !force {
        return Err(CliError::config(format!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        )));
    }
    let token = generate_token();
    let text = config::init_file("admin", &hex::encode(hash_token(&token)));
    // Check what we are about to write parses, with the file's own path.
    Loaded::from_text(&text, config::Source::File(path.clone()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts
        .open(&path)
        .map_err(|e| CliError::config(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::config(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "Wrote {}: 2-of-3 over three filesystem backends under ./vaultdb-data (relative to the file).",
        path.display()
    );
    println!();
    println!(
        "Admin API token for `vaultdb serve`. It is shown only now; the file keeps only its SHA-256:"
    );
    println!();
    println!("  export VAULTDB_TOKEN={token}");
    println!();
    println!(
        "Try: echo '{{\"hello\":\"world\"}}' | vaultdb put greeting --json && vaultdb get greeting"
    );
    Ok(())
}

/// Loads the configuration and checks the id, touching nothing.
fn prepare(explicit: Option<&Path>, id: Option<&str>) -> Result<Loaded, CliError> {
    if let Some(id) = id {
        validate_id(id).map_err(CliError::from)?;
    }
    Loaded::load(explicit)
}

fn cli_audit(cfg: &Loaded, db: &VaultDb, op: &str, id: Option<&str>, outcome: &str) {
    let tag = id.map(|i| db.name_tag(i).to_text());
    let ev = Event { actor: "cli", op, tag: tag.as_deref(), outcome };
    if let Err(e) = AuditLog::new(&cfg.audit_log).append(ev) {
        eprintln!("warning: cannot write the audit log {}: {e}", cfg.audit_log.display());
    }
}

/// Runs a store operation and writes its audit line.
async fn audited<T>(
    cfg: &Loaded,
    db: &VaultDb,
    op: &str,
    id: Option<&str>,
    fut: impl Future<Output = vaultdb_core::Result<T>>,
) -> Result<T, CliError> {
    let r = fut.await;
    let outcome = match &r {
        Ok(_) => "OK",
        Err(e) => e.code().as_str(),
    };
    cli_audit(cfg, db, op, id, outcome);
    r.map_err(CliError::from)
}

fn warn_degraded(what: &str, outcomes: &[BackendOutcome]) {
    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.status, OutcomeStatus::Ok | OutcomeStatus::Skipped))
        .map(ToString::to_string)
        .collect();
    if !bad.is_empty() {
        eprintln!("warning: degraded {what}: {}", bad.join("; "));
    }
}

fn read_input(file: Option<&Path>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(p) if p != Path::new("-") => std::fs::read(p)
            .map_err(|e| CliError::config(format!("cannot read {}: {e}", p.display()))),
        _ => {
            let mut stdin = std::io::stdin();
            if file.is_none() && stdin.is_terminal() {
                return Err(CliError::config(
                    "no data: give a FILE, or pipe the data in (use - for standard input)",
                ));
            }
            let mut buf = Vec::new();
            stdin
                .read_to_end(&mut buf)
                .map_err(|e| CliError::config(format!("cannot read standard input: {e}")))?;
            Ok(buf)
        }
    }
}

async fn put(
    explicit: Option<&Path>,
    id: &str,
    file: Option<&Path>,
    json: bool,
    content_type: Option<String>,
) -> Result<(), CliError> {
    let cfg = prepare(explicit, Some(id))?;
    if let Some(ct) = &content_type
        && (ct.is_empty() || ct.len() > 255 || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)))
    {
        return Err(CliError::config("--content-type must be 1 to 255 printable ASCII characters"));
    }
    let db_and_file = match file {
        // A regular file is streamed: segments are read, split and written as they go, so
        // a file of any size is stored in bounded memory.
        Some(p) if p != Path::new("-") && !json => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| CliError::config(format!("cannot read {}: {e}", p.display())))?;
            let meta = f
                .metadata()
                .await
                .map_err(|e| CliError::config(format!("cannot read {}: {e}", p.display())))?;
            // Only a regular file has a length to stream against; anything else (a pipe, a
            // device, a directory) is read whole, or refused, below.
            meta.is_file().then_some((f, meta.len()))
        }
        _ => None,
    };
    if let Some((f, len)) = db_and_file {
        let mut meta = RecordMeta::new(id);
        meta.content_type = content_type;
        let db = cfg.open().await?;
        let fut = db.put_stream(meta, len, tokio::io::BufReader::with_capacity(1 << 20, f));
        let r = audited(&cfg, &db, "record.put", Some(id), fut).await?;
        warn_degraded("write", &r.outcomes);
        println!(
            "stored version {} on {} of {} backends",
            r.version,
            r.acks,
            db.backend_ids().len()
        );
        return Ok(());
    }
    let data = read_input(file)?;
    if json {
        serde_json::from_slice::<serde::de::IgnoredAny>(&data)
            .map_err(|e| CliError::config(format!("the data is not valid JSON: {e}")))?;
    }
    let mut record = Record::new(id, data);
    record.content_type =
        if json { Some(vaultdb_core::record::JSON_CONTENT_TYPE.to_owned()) } else { content_type };
    let db = cfg.open().await?;
    let r = audited(&cfg, &db, "record.put", Some(id), db.put(record)).await?;
    warn_degraded("write", &r.outcomes);
    println!("stored version {} on {} of {} backends", r.version, r.acks, db.backend_ids().len());
    Ok(())
}

async fn get(explicit: Option<&Path>, id: &str, output: Option<&Path>) -> Result<(), CliError> {
    let cfg = prepare(explicit, Some(id))?;
    let db = cfg.open().await?;
    // Streamed: each segment is verified before it is written out, and memory stays
    // bounded whatever the record's size.
    let mut stream = audited(&cfg, &db, "record.get", Some(id), db.get_stream(id)).await?;
    let out_err = |e: std::io::Error| {
        CliError::new("INTERNAL_ERROR", format!("cannot write the output: {e}"))
    };
    match output {
        Some(p) => {
            // Into a temporary file beside the target, renamed only once every byte has
            // been verified: a failed read never leaves a partial file under the name.
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| CliError::config(format!("cannot write {}: {e}", p.display())))?;
            let mut f = std::io::BufWriter::new(tmp);
            while let Some(chunk) = stream.next().await {
                f.write_all(&chunk.map_err(CliError::from)?).map_err(out_err)?;
            }
            let tmp = f.into_inner().map_err(|e| out_err(e.into_error()))?;
            tmp.persist(p)
                .map_err(|e| CliError::config(format!("cannot write {}: {e}", p.display())))?;
        }
        None => {
            // Standard output gets each verified chunk as it comes; a failure part way
            // is reported on standard error with a non-zero exit code.
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk.map_err(CliError::from)?).map_err(out_err)?;
            }
            out.flush().map_err(out_err)?;
        }
    }
    if stream.degraded() {
        warn_degraded("read", stream.outcomes());
        let bad = stream.bad_backends();
        if !bad.is_empty() {
            eprintln!("warning: bad segment shares from: {}", bad.join(", "));
        }
    }
    Ok(())
}

async fn delete(explicit: Option<&Path>, id: &str) -> Result<(), CliError> {
    let cfg = prepare(explicit, Some(id))?;
    let db = cfg.open().await?;
    let r = audited(&cfg, &db, "record.delete", Some(id), db.delete(id)).await?;
    warn_degraded("delete", &r.outcomes);
    println!("deleted ({} share objects removed)", r.removed);
    Ok(())
}

async fn list(explicit: Option<&Path>) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let db = cfg.open().await?;
    let r = audited(&cfg, &db, "record.list", None, db.list()).await?;
    warn_degraded("list", &r.outcomes);
    if r.unverified > 0 {
        eprintln!("warning: {} listed record(s) whose id could not be verified", r.unverified);
    }
    let mut out = std::io::stdout().lock();
    for id in &r.ids {
        writeln!(out, "{id}").map_err(|e| CliError::new("INTERNAL_ERROR", e.to_string()))?;
    }
    Ok(())
}

fn rows_of(h: &Health) -> Vec<(String, String, Option<String>, Duration)> {
    h.backends.iter().map(|b| (b.id.clone(), b.name.clone(), b.error.clone(), b.latency)).collect()
}

fn print_backends(rows: &[(String, String, Option<String>, Duration)]) {
    let w_id = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
    let w_name = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(4);
    println!("{:<w_id$}  {:<w_name$}  {:<5}  {:>10}  ERROR", "BACKEND", "NAME", "STATE", "LATENCY");
    for (id, name, err, lat) in rows {
        let state = if err.is_none() { "up" } else { "DOWN" };
        let ms = format!("{:.1} ms", lat.as_secs_f64() * 1000.0);
        println!(
            "{id:<w_id$}  {name:<w_name$}  {state:<5}  {ms:>10}  {}",
            err.as_deref().unwrap_or("")
        );
    }
}

async fn status(explicit: Option<&Path>) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let k = cfg.config.threshold;
    let backends = cfg.backends().await?;
    let db = match cfg.open_with(backends.clone()).await {
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
    print_backends(&rows_of(&h));
    if margin < 0 {
        return Err(CliError::new(
            "INSUFFICIENT_SHARES",
            format!("only {} of {} backends are up; {} are needed", h.up, h.n, h.k),
        ));
    }
    Ok(())
}

async fn repair(explicit: Option<&Path>, id: &str) -> Result<(), CliError> {
    let cfg = prepare(explicit, Some(id))?;
    let db = cfg.open().await?;
    let r = audited(&cfg, &db, "record.repair", Some(id), db.repair(id)).await?;
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
    for p in &r.problems {
        eprintln!("problem: {p}");
    }
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            "BACKEND_ERROR",
            format!("{} problem(s) could not be repaired", r.problems.len()),
        ))
    }
}

async fn scrub(explicit: Option<&Path>) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let db = cfg.open().await?;
    let stray = cfg.clean_fs_temp().await;
    if stray > 0 {
        println!("removed {stray} temporary file(s) left by interrupted writes");
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("scrub [{bar:40}] {pos}/{len} records ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let r = db
        .scrub_with_progress(|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await;
    bar.finish_and_clear();
    cli_audit(
        &cfg,
        &db,
        "store.scrub",
        None,
        r.as_ref().map_or_else(|e| e.code().as_str(), |_| "OK"),
    );
    let r = r?;
    warn_degraded("scrub listing", &r.outcomes);
    println!(
        "scrubbed {} record(s): {} share(s) restored, {} object(s) removed, {} problem(s)",
        r.records,
        r.restored,
        r.removed,
        r.problems.len()
    );
    for p in &r.problems {
        eprintln!("problem: {p}");
    }
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            "BACKEND_ERROR",
            format!("{} problem(s) could not be repaired", r.problems.len()),
        ))
    }
}

async fn serve(explicit: Option<&Path>, listen: Option<String>) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let addr: std::net::SocketAddr = match listen {
        Some(l) => l.parse().map_err(|_| {
            CliError::config(format!("--listen {l:?} is not an address like 127.0.0.1:8080"))
        })?,
        None => cfg.listen,
    };
    let mut tokens: Tokens = cfg.tokens()?;
    let mut generated = None;
    if tokens.is_empty() {
        let (token, from_env) =
            match std::env::var("VAULTDB_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
                Some(t) => (t.trim().to_owned(), true),
                None => (generate_token(), false),
            };
        tokens.add_plain("admin", Role::Admin, &token);
        generated = Some((token, from_env));
    }
    let db = cfg.open().await?;
    cfg.clean_fs_temp().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::config(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::config(format!("cannot listen on {addr}: {e}")))?;
    if !local.ip().is_loopback() {
        tracing::warn!(%local, "listening beyond loopback: put TLS in front of this server");
    }
    let limits = Limits {
        body_limit: usize::try_from(cfg.config.server.body_limit.0).unwrap_or(usize::MAX),
        request_timeout: cfg.config.server.request_timeout.0,
    };
    let state = AppState::new(db, tokens, Some(AuditLog::new(&cfg.audit_log)), limits);
    let base = format!("http://{local}");
    println!("vaultdb {} serving {}", env!("CARGO_PKG_VERSION"), cfg.describe());
    println!("listening on {base}");
    println!("audit log: {}", cfg.audit_log.display());
    match &generated {
        Some((token, false)) => {
            println!();
            println!(
                "No API token is configured, so this run generated an admin token (only its hash is kept)."
            );
            println!("Use it like this:");
            println!();
            println!("  export VAULTDB_TOKEN={token}");
            println!("  curl -H \"Authorization: Bearer $VAULTDB_TOKEN\" {base}/v1/records");
            println!();
        }
        Some((_, true)) => {
            println!("No API token is configured; accepting the admin token in VAULTDB_TOKEN:");
            println!("  curl -H \"Authorization: Bearer $VAULTDB_TOKEN\" {base}/v1/records");
        }
        None => {}
    }
    let _ = std::io::stdout().flush();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| CliError::new("INTERNAL_ERROR", format!("server error: {e}")))?;
    println!("vaultdb stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn audit_verify(explicit: Option<&Path>, path: Option<PathBuf>) -> Result<(), CliError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_documents_every_environment_variable() {
        for (name, _) in config::ENV_OVERRIDES {
            assert!(ENV_HELP.contains(name), "{name} is missing from --help");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
