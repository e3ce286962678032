//! The command line's arguments ([`Cli`], [`Command`]) and `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

const ENV_HELP: &str = "\
Configuration: --config PATH, else ./vaultdb.toml, else the embedded default (three \
filesystem backends under ./vaultdb-data, 2-of-3).

Environment:
  VAULTDB_CONFIG           configuration file (same as --config)
  VAULTDB_DATA_DIR         data_dir: base of relative fs backend paths and of the audit log
  VAULTDB_THRESHOLD        threshold K
  VAULTDB_WRITE_QUORUM     write quorum W
  VAULTDB_LISTEN           server address, e.g. 127.0.0.1:9000 (port 0: any free port)
  VAULTDB_AUDIT_LOG        audit log path
  VAULTDB_AUDIT_FAIL_OPEN  true: run operations even when the audit log cannot be written
  VAULTDB_TOKEN            serve, when no [[tokens]] are configured: use this admin token
  RUST_LOG                 log filter for stderr (default: warn)

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
        /// The storage mode of the store: `shamir` (default: a full-size share per backend,
        /// information-theoretic) or `compact` (about N/K the storage: AES-256 and an erasure
        /// code; computational). Written to the file; fixed when the store is created.
        #[arg(long, value_name = "shamir|compact")]
        mode: Option<vaultdb_core::Mode>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_documents_every_environment_variable() {
        for (name, _) in crate::config::ENV_OVERRIDES {
            assert!(ENV_HELP.contains(name), "{name} is missing from --help");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
