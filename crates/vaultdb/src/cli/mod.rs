//! The `vaultdb` command line: [`main`] parses the arguments ([`Cli`], module `args`) and
//! runs one command: `init` (module `init`), the record commands `put`, `get`, `delete`,
//! `list` (`records`), the admin commands `status`, `repair`, `scrub`, `audit verify`
//! (`admin`), `reshare` (`reshare`), or `serve` (`serve`). Output helpers are in `output`.
//! Errors print as one line, `error: <CODE>: <message>` ([`CliError`]).
//!
//! Record commands open the store through the [`crate::service`] layer and run
//! each store operation through its audited runner, as the server does (actor `cli`); they
//! are refused (`AUDIT_UNAVAILABLE`) when the audit log cannot be written, unless it fails
//! open.

mod admin;
mod args;
mod init;
mod output;
mod records;
mod remote;
mod reshare;
mod serve;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use vaultdb_core::naming::validate_id;
use vaultdb_core::{ReadStream, StorageBackend, VaultDb};

pub use args::{AuditCommand, Cli, Command, LogFormat, PutArgs, ReshareArgs};
pub use output::Output;

use crate::audit::{self, AuditLog, Event};
use crate::config::Loaded;
use crate::error::{BROKEN_PIPE, CliError, USAGE_ERROR, one_line};
use crate::service::{
    self, AUDIT_UNAVAILABLE, AuditSink, AuditUnavailable, AuditedStream, Auditor, Operation,
    Presence,
};

/// Runs the command line: parses arguments, runs the command, prints errors as one line
/// and exits with the error code's status ([`crate::error::EXIT_CODES`]).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing(cli.log_format);
    let out = if cli.json { Output::Json } else { Output::Text };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                &CliError::new("INTERNAL_ERROR", format!("cannot start the runtime: {e}")),
                out,
            );
        }
    };
    let result = rt.block_on(async {
        let result = run(cli).await;
        flush_opened().await;
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, out),
    }
}

/// Runs one parsed command.
///
/// # Errors
/// Whatever the command fails with, as a [`CliError`].
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let explicit = cli.config.as_deref();
    let out = if cli.json { Output::Json } else { Output::Text };
    if let Some(server) = cli.server.as_deref() {
        let args = remote::RemoteArgs {
            server,
            token_file: cli.token_file.as_deref(),
            ca_cert: cli.ca_cert.as_deref(),
            client_cert: cli.client_cert.as_deref().zip(cli.client_key.as_deref()),
            timeout: cli.timeout,
        };
        return run_remote(&args, cli.command, out).await;
    }
    match cli.command {
        Command::Init { force, mode, backends, threshold, prefix, no_create } => {
            let args = init::InitArgs {
                force,
                backends: &backends,
                threshold,
                create: !no_create,
                mode,
                prefix: prefix.as_deref(),
            };
            init::init(explicit, args, out).await
        }
        Command::Put(args) => records::put(explicit, &args, out).await,
        Command::Get { id, output } => records::get(explicit, &id, output.as_deref(), out).await,
        Command::Stat { id } => records::stat(explicit, &id, out).await,
        Command::Delete { id } => records::delete(explicit, &id, out).await,
        Command::List { limit, cursor } => {
            let page = limit.map(|l| (l as usize, cursor.as_deref()));
            records::list(explicit, page, out).await
        }
        Command::Status => admin::status(explicit, out).await,
        Command::Repair { id } => admin::repair(explicit, &id, out).await,
        Command::Scrub => admin::scrub(explicit, out).await,
        Command::Reshare(args) => reshare::reshare(explicit, &args, out).await,
        Command::Serve { listen, tls_cert, tls_key, tls_client_ca } => {
            let tls = serve::TlsFlags { cert: tls_cert, key: tls_key, client_ca: tls_client_ca };
            serve::serve(explicit, listen, tls, out).await
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "vaultdb", &mut out);
            out.flush().map_err(|e| output::write_failed(&e))
        }
        Command::Audit { command: AuditCommand::Verify { path } } => {
            admin::audit_verify(explicit, path, out).await
        }
    }
}

/// Runs one command on a server ([`remote`]); the commands that need the store's own
/// configuration are refused.
async fn run_remote(
    args: &remote::RemoteArgs<'_>,
    command: Command,
    out: Output,
) -> Result<(), CliError> {
    let refused = |what: &str| -> Result<(), CliError> {
        Err(CliError::new(
            USAGE_ERROR,
            format!(
                "`{what}` does not run with --server (VAULTDB_SERVER): run it where the \
                 store's configuration is; remotely: put, get, stat, delete, list, status, repair"
            ),
        ))
    };
    let remote = || remote::Remote::new(args);
    match command {
        Command::Put(args) => remote()?.put(&args, out).await,
        Command::Get { id, output } => remote()?.get(&id, output.as_deref(), out).await,
        Command::Stat { id } => remote()?.stat(&id, out).await,
        Command::Delete { id } => remote()?.delete(&id, out).await,
        Command::List { limit, cursor } => {
            remote()?.list(limit.map(|l| (l as usize, cursor.as_deref())), out).await
        }
        Command::Status => remote()?.status(out).await,
        Command::Repair { id } => remote()?.repair(&id, out).await,
        Command::Init { .. } => refused("init"),
        Command::Scrub => refused("scrub"),
        Command::Reshare(_) => refused("reshare"),
        Command::Serve { .. } => refused("serve"),
        Command::Audit { .. } => refused("audit"),
        Command::Completions { .. } => refused("completions"),
    }
}

/// Prints `e` on standard error (one line; with `--json`, `{"error":{"code","message"}}`)
/// and returns its exit status ([`exit_code`]). A broken pipe prints nothing: the reader
/// went away, as with `cat big | head`.
///
/// [`exit_code`]: crate::error::exit_code
fn fail(e: &CliError, out: Output) -> ExitCode {
    if e.code != BROKEN_PIPE {
        match out {
            Output::Text => eprintln!("{e}"),
            Output::Json => eprintln!(
                "{}",
                serde_json::json!({"error": {"code": e.code, "message": e.message}})
            ),
        }
    }
    ExitCode::from(e.exit_code())
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
    // The arguments did not parse, so `--json` is looked for by hand.
    let json = std::env::args().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    fail(&CliError::new(USAGE_ERROR, msg), if json { Output::Json } else { Output::Text })
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => {
            registry.with(layer.with_ansi(std::io::stderr().is_terminal())).try_init()
        }
        LogFormat::Json => registry.with(layer.json().with_current_span(false)).try_init(),
    };
}

/// Loads the configuration and checks the id, touching nothing.
fn prepare(explicit: Option<&Path>, id: Option<&str>) -> Result<Loaded, CliError> {
    if let Some(id) = id {
        validate_id(id).map_err(CliError::from)?;
    }
    Loaded::load(explicit)
}

/// The audit log as the command line writes it: appended in place, then checkpointed in
/// the store. A line that cannot be written refuses the command (the log fails closed), or,
/// with `[audit] fail_open`, is a warning on standard error.
#[derive(Clone, Debug)]
struct CliAuditLog(Arc<AuditLog>);

impl CliAuditLog {
    /// The log cannot be written: an error, or a warning when it fails open.
    fn unavailable(&self, e: &std::io::Error, then: &str) -> Result<(), AuditUnavailable> {
        let path = self.0.path().display();
        if self.0.fail_open() {
            eprintln!(
                "warning: cannot write the audit log {path}: {e} (audit.fail_open: going on)"
            );
            Ok(())
        } else {
            Err(AuditUnavailable {
                message: format!("cannot write the audit log {path}: {e}; {then}"),
            })
        }
    }
}

impl AuditSink for CliAuditLog {
    async fn ready(&self) -> Result<(), AuditUnavailable> {
        match self.0.check_writable() {
            Ok(()) => Ok(()),
            Err(e) => self.unavailable(&e, NOTHING_DONE),
        }
    }

    async fn write(&self, event: Event<'_>) -> Result<(), AuditUnavailable> {
        if let Err(e) = self.0.append(event) {
            return self.unavailable(&e, "the operation ran but is not logged");
        }
        match self.0.checkpoint().await {
            Ok(_) => {}
            Err(e) if e.is_tampering() => {
                eprintln!("warning: {e}; see `vaultdb audit verify`");
            }
            Err(e) => eprintln!("warning: the audit log's checkpoint was not updated: {e}"),
        }
        Ok(())
    }
}

/// What a refusal says happened to the command.
const NOTHING_DONE: &str =
    "nothing was done (the audit log fails closed; see audit.fail_open in the README)";

/// A record command's context: its configuration, the open store and the audit log.
#[derive(Debug)]
struct Session {
    cfg: Loaded,
    db: VaultDb,
    log: CliAuditLog,
}

/// Whether a command may create the store it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Create {
    /// No: a missing store is `STORE_NOT_FOUND`, and nothing is written (the read and admin
    /// commands).
    No,
    /// Yes, saying so on standard error (`put`, `serve`, `init`).
    Announce,
}

/// The backends of `cfg`, once it is known that opening them may go ahead: with
/// [`Create::No`], an empty store is an error (`STORE_NOT_FOUND`, naming where it looked)
/// before anything is written. Check this before the audit log's check, which creates its
/// file.
///
/// # Errors
/// `STORE_NOT_FOUND`.
async fn locate(cfg: &Loaded, create: Create) -> Result<Located, CliError> {
    let backends = cfg.backends();
    let presence = service::presence(cfg, &backends).await;
    if presence == Presence::Empty && create == Create::No {
        return Err(service::store_not_found(cfg));
    }
    Ok(Located { backends, presence })
}

/// What [`locate`] found.
struct Located {
    backends: Vec<Arc<dyn StorageBackend>>,
    presence: Presence,
}

impl Located {
    /// Opens the store; if it was empty (so opening created it), says so on standard error.
    /// A store being filled by an unfinished re-share reads through to the old store
    /// ([`service::follow_reshare`]).
    async fn open(self, cfg: &Loaded) -> Result<VaultDb, CliError> {
        let db = service::open_with(cfg, self.backends).await?;
        service::follow_reshare(cfg, &db).await?;
        if self.presence == Presence::Empty {
            let places: Vec<String> = cfg.config.backends.iter().map(|b| b.location()).collect();
            eprintln!("vaultdb: created a new store, {}: {}", cfg.describe(), places.join(", "));
        }
        Ok(db)
    }
}

/// Opens the store `cfg` describes ([`locate`], then [`Located::open`]).
///
/// # Errors
/// `STORE_NOT_FOUND`; the store's errors.
async fn open_store(cfg: &Loaded, create: Create) -> Result<VaultDb, CliError> {
    let db = locate(cfg, create).await?.open(cfg).await?;
    remember(&db);
    Ok(db)
}

/// Adds `db` to the stores [`flush_opened`] waits for.
fn remember(db: &VaultDb) {
    OPENED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(db.clone());
}

/// Every store this process opened: before it exits, it waits for their background work
/// (removing what puts superseded, audit checkpoints' included; read-repairs), which would
/// otherwise be cut off by the runtime's shutdown.
static OPENED: std::sync::Mutex<Vec<VaultDb>> = std::sync::Mutex::new(Vec::new());

/// How long a command waits, before it exits, for background work that is still running
/// (a backend that hangs can hold it up for a call timeout with its retries).
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for the background work of every store this process opened ([`OPENED`]), for
/// [`FLUSH_LIMIT`] at most: what is cut off then is what a crash would leave (superseded
/// versions, an audit checkpoint not updated), which the next operations on the record,
/// read-repair and `scrub` handle; standard error says so.
async fn flush_opened() {
    let opened =
        std::mem::take(&mut *OPENED.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let all = async {
        for db in opened {
            db.flush().await;
        }
    };
    if tokio::time::timeout(FLUSH_LIMIT, all).await.is_err() {
        eprintln!(
            "vaultdb: background work (removing superseded versions, audit checkpoints, \
             repairs) was still waiting for a backend after {}s and was left for `vaultdb \
             scrub`",
            FLUSH_LIMIT.as_secs()
        );
    }
}

impl Session {
    /// Opens the existing store `cfg` describes (`STORE_NOT_FOUND` if there is none), once
    /// its audit log is known to be writable (or fails open).
    async fn open(cfg: Loaded) -> Result<Self, CliError> {
        Self::open_or(cfg, Create::No).await
    }

    /// [`Session::open`], creating the store if `create` allows.
    async fn open_or(cfg: Loaded, create: Create) -> Result<Self, CliError> {
        let located = locate(&cfg, create).await?;
        if !cfg.audit_fail_open
            && let Err(e) = audit::check_writable(&cfg.audit_log)
        {
            return Err(CliError::new(
                AUDIT_UNAVAILABLE,
                format!(
                    "cannot write the audit log {}: {e}; {NOTHING_DONE}",
                    cfg.audit_log.display()
                ),
            ));
        }
        let db = located.open(&cfg).await?;
        remember(&db);
        let log = AuditLog::new(&cfg.audit_log, &db).with_fail_open(cfg.audit_fail_open);
        Ok(Self { cfg, db, log: CliAuditLog(Arc::new(log)) })
    }

    /// Runs a store operation as the actor `cli` and writes its audit line.
    async fn audited<T>(
        &self,
        op: Operation,
        id: Option<&str>,
        operation: impl Future<Output = vaultdb_core::Result<T>>,
    ) -> Result<T, CliError> {
        let r = Auditor::new(&self.db, &self.log).run(audit::CLI_ACTOR, op, id, operation).await;
        r.map_err(|e| self.error(e.into()))
    }

    /// `e`, saying what to do when it is the refusal of a store that moved.
    fn error(&self, mut e: CliError) -> CliError {
        if e.code == "INVALID_CONFIG" && self.db.has_moved() {
            e.message.push_str(
                " (it was re-shared with `vaultdb reshare --to NEW.toml`: run the command with \
                 --config NEW.toml)",
            );
        }
        e
    }

    /// Opens a read stream as the actor `cli`: its line is written when the stream ends
    /// ([`AuditedStream`]), or now if it cannot be opened.
    async fn audited_stream(
        &self,
        op: Operation,
        id: &str,
        open: impl Future<Output = vaultdb_core::Result<ReadStream>>,
    ) -> Result<AuditedStream<CliAuditLog, ReadStream>, CliError> {
        let r = Auditor::new(&self.db, &self.log)
            .open_stream(audit::CLI_ACTOR, op, Some(id), open)
            .await;
        r.map_err(|e| self.error(e.into()))
    }
}
