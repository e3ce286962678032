//! The `vaultdb` command line: [`main`] parses the arguments ([`Cli`], module `args`) and
//! runs one command: `init` (module `init`), the record commands `put`, `get`, `delete`,
//! `list` (`records`), the admin commands `status`, `repair`, `scrub`, `audit verify`
//! (`admin`), or `serve` (`serve`). Output helpers are in `output`. Errors print as one
//! line, `error: <CODE>: <message>` ([`CliError`]).
//!
//! Record commands open the store through the [`crate::service`] layer and run
//! each store operation through its audited runner, as the server does (actor `cli`).

mod admin;
mod args;
mod init;
mod output;
mod records;
mod serve;

use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use vaultdb_core::VaultDb;
use vaultdb_core::naming::validate_id;

pub use args::{AuditCommand, Cli, Command};

use crate::audit::{AuditLog, Event};
use crate::config::Loaded;
use crate::error::{CliError, one_line};
use crate::service::{self, AuditSink, Auditor, Operation};

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

/// Runs one parsed command.
///
/// # Errors
/// Whatever the command fails with, as a [`CliError`].
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let explicit = cli.config.as_deref();
    match cli.command {
        Command::Init { force } => init::init(explicit, force),
        Command::Put { id, file, json, content_type } => {
            records::put(explicit, &id, file.as_deref(), json, content_type.as_deref()).await
        }
        Command::Get { id, output } => records::get(explicit, &id, output.as_deref()).await,
        Command::Delete { id } => records::delete(explicit, &id).await,
        Command::List => records::list(explicit).await,
        Command::Status => admin::status(explicit).await,
        Command::Repair { id } => admin::repair(explicit, &id).await,
        Command::Scrub => admin::scrub(explicit).await,
        Command::Serve { listen } => serve::serve(explicit, listen).await,
        Command::Audit { command: AuditCommand::Verify { path } } => {
            admin::audit_verify(explicit, path)
        }
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

/// Loads the configuration and checks the id, touching nothing.
fn prepare(explicit: Option<&Path>, id: Option<&str>) -> Result<Loaded, CliError> {
    if let Some(id) = id {
        validate_id(id).map_err(CliError::from)?;
    }
    Loaded::load(explicit)
}

/// The audit log as the command line writes it: appended in place; a line that cannot be
/// written is a warning on standard error (the operation has happened).
#[derive(Debug)]
struct CliAuditLog(AuditLog);

impl AuditSink for CliAuditLog {
    async fn write(&self, event: Event<'_>) {
        if let Err(e) = self.0.append(event) {
            eprintln!("warning: cannot write the audit log {}: {e}", self.0.path().display());
        }
    }
}

/// A record command's context: its configuration, the open store and the audit log.
#[derive(Debug)]
struct Session {
    cfg: Loaded,
    db: VaultDb,
    log: CliAuditLog,
}

impl Session {
    /// Opens the store `cfg` describes.
    async fn open(cfg: Loaded) -> Result<Self, CliError> {
        let db = service::open(&cfg).await?;
        let log = CliAuditLog(AuditLog::new(&cfg.audit_log));
        Ok(Self { cfg, db, log })
    }

    /// Runs a store operation as the actor `cli` and writes its audit line.
    async fn audited<T>(
        &self,
        op: Operation,
        id: Option<&str>,
        operation: impl Future<Output = vaultdb_core::Result<T>>,
    ) -> Result<T, CliError> {
        let r = Auditor::new(&self.db, &self.log).run("cli", op, id, operation).await;
        r.map_err(CliError::from)
    }
}
