//! The command line's arguments ([`Cli`], [`Command`]) and `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const ENV_HELP: &str = "\
Configuration: --config PATH, else ./vaultdb.toml, else the embedded default (three \
filesystem backends under ./vaultdb-data, 2-of-3).

Environment:
  VAULTDB_CONFIG           configuration file (same as --config)
  VAULTDB_DATA_DIR         data_dir: base of relative fs backend paths and of the audit log
  VAULTDB_BACKENDS         backends as URLs, replacing the file's: \"s3://b1 gs://b2 az://acct/c3\"
  VAULTDB_THRESHOLD        threshold K
  VAULTDB_WRITE_QUORUM     write quorum W
  VAULTDB_CALL_TIMEOUT     timeouts.call: the upper bound on one backend call (\"5s\")
  VAULTDB_FENCE_CHECK      timeouts.fence_check: how often clients look for a re-share
  VAULTDB_LISTEN           server address, e.g. 127.0.0.1:9000 (port 0: any free port)
  VAULTDB_AUDIT_LOG        audit log path
  VAULTDB_ALLOW_PLAIN_HTTP true: serve plain HTTP beyond loopback (tokens in the clear)
  VAULTDB_TLS_CERT         serve HTTPS: the certificate chain (PEM; server.tls_cert)
  VAULTDB_TLS_KEY          serve HTTPS: its private key (PEM; server.tls_key)
  VAULTDB_TLS_CLIENT_CA    serve HTTPS: require client certificates signed by these CAs (PEM)
  VAULTDB_AUDIT_FAIL_OPEN  true: run operations even when the audit log cannot be written
  VAULTDB_RESHARE_FROM     the old configuration of an unfinished re-share into this store
                           (default: the one `vaultdb reshare` recorded in data_dir)
  VAULTDB_TOKEN            serve, when no [[tokens]] are configured: use this admin token;
                           with --server: the token sent to the server
  VAULTDB_SERVER           run put, get, stat, delete, list, status, repair on this server
                           (same as --server URL)
  VAULTDB_CA_CERT          with --server https://...: trust this CA (PEM; same as --ca-cert)
  VAULTDB_CLIENT_CERT      with --server https://...: the client certificate (--client-cert)
  VAULTDB_CLIENT_KEY       and its private key (PEM; same as --client-key)
  VAULTDB_TIMEOUT          with --server: give up on a server silent this long (--timeout)
  VAULTDB_LOG_FORMAT       text (default) or json: the format of stderr logs
  RUST_LOG                 log filter for stderr (default: warn)

Errors print one line, `error: <CODE>: <message>` (with --json: {\"error\":{\"code\",\"message\"}} \
on stderr), and exit with the code's status: 2 USAGE_ERROR, 3 INVALID_CONFIG, 4 \
INVALID_INPUT, 5 RECORD_NOT_FOUND, 6 STORE_NOT_FOUND, 7 INSUFFICIENT_SHARES, 8 \
BACKEND_ERROR, 9 HMAC_FAILED, 10 RECONSTRUCT_FAILED, 11 SPLIT_FAILED, 12 \
AUDIT_UNAVAILABLE, 13 AUDIT_CHAIN_BROKEN, 14 UNAUTHORIZED, 15 FORBIDDEN (--server), 130 \
INTERRUPTED (Ctrl-C), 141 when the output's reader went away (`vaultdb get big | head`, \
silently), 1 anything else.";

/// VaultDB: records split across N storage backends; any K rebuild them, fewer learn
/// nothing.
#[derive(Debug, Parser)]
#[command(name = "vaultdb", version, after_help = ENV_HELP)]
pub struct Cli {
    /// Configuration file [default: ./vaultdb.toml if present, else the embedded default]
    #[arg(long, global = true, env = "VAULTDB_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print the result as one JSON document on standard output (and errors as JSON on
    /// standard error).
    #[arg(long, global = true)]
    pub json: bool,

    /// Run the command on the vaultdb server at URL (`https://host:port`), through its REST
    /// API, instead of on the store this machine's configuration names: for put, get, stat,
    /// delete, list, status and repair. The token is read from VAULTDB_TOKEN or --token-file.
    #[arg(long, global = true, env = "VAULTDB_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// With --server: a file holding the API token (instead of VAULTDB_TOKEN).
    #[arg(long, global = true, value_name = "PATH", requires = "server")]
    pub token_file: Option<PathBuf>,

    /// With --server https://...: trust the CA certificates of this PEM file (instead of the
    /// system's).
    #[arg(long, global = true, env = "VAULTDB_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// With --server https://...: present this client certificate (PEM; with --client-key),
    /// for a server that requires one (server.tls_client_ca).
    #[arg(
        long,
        global = true,
        env = "VAULTDB_CLIENT_CERT",
        value_name = "PEM",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// The private key of --client-cert (PEM).
    #[arg(
        long,
        global = true,
        env = "VAULTDB_CLIENT_KEY",
        value_name = "PEM",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// With --server: give up on a server that sends nothing (and reads nothing of ours)
    /// for this long ("30s", "2m").
    #[arg(
        long,
        global = true,
        env = "VAULTDB_TIMEOUT",
        value_name = "DURATION",
        default_value = "2m",
        value_parser = parse_timeout
    )]
    pub timeout: std::time::Duration,

    /// The format of the logs on standard error.
    #[arg(
        long,
        global = true,
        env = "VAULTDB_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented vaultdb.toml (three fs backends under ./vaultdb-data, 2-of-3, or the
    /// --backend URLs), print a new admin API token once, and create the store.
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// The storage mode of the store: `shamir` (default: a full-size share per backend,
        /// information-theoretic) or `compact` (about N/K the storage: AES-256 and an erasure
        /// code; computational). Written to the file; fixed when the store is created.
        #[arg(long, value_name = "shamir|compact")]
        mode: Option<vaultdb_core::Mode>,
        /// A backend, as a URL: file://DIR, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX,
        /// az://ACCOUNT/CONTAINER/PREFIX, minio+https://HOST:PORT/BUCKET/PREFIX, memory://;
        /// repeat in share order [default: three fs backends under ./vaultdb-data].
        #[arg(long = "backend", value_name = "URL")]
        backends: Vec<String>,
        /// K: shares needed to rebuild a record [default: 2].
        #[arg(long, value_name = "K")]
        threshold: Option<usize>,
        /// The key prefix inside every backend [default: vaultdb]: a new store over the
        /// backends of another (the target of `vaultdb reshare`) needs its own.
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Only write the file: the first `put` or `serve` creates the store (for a machine
        /// without the backends' credentials).
        #[arg(long)]
        no_create: bool,
    },
    /// Store a record from FILE, or from standard input if FILE is `-` or absent.
    Put(PutArgs),
    /// Write a record's data to standard output (or to --output).
    Get {
        /// The record id.
        id: String,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show a record's version, size, content type and metadata (not its data).
    Stat {
        /// The record id.
        id: String,
    },
    /// Delete every version of a record on every backend.
    Delete {
        /// The record id.
        id: String,
    },
    /// List record ids, one per line: all of them, sorted; or, with --limit, one page in the
    /// store's listing order and the cursor of the next.
    List {
        /// At most this many ids (1 to 100000): one page, costing backend work in proportion
        /// to it, not to the store.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: Option<u32>,
        /// The page after this cursor (printed by the previous page; requires --limit).
        #[arg(long, value_name = "CURSOR", requires = "limit")]
        cursor: Option<String>,
    },
    /// Show each backend's health and the threshold margin.
    Status,
    /// Regenerate a record's missing or bad shares.
    Repair {
        /// The record id.
        id: String,
    },
    /// Repair every record (with a progress bar).
    Scrub,
    /// Move the store to the configuration of NEW.toml while it runs: fence it, copy every
    /// record with fresh shares, remove the old objects. Run it again to resume.
    Reshare(ReshareArgs),
    /// Run the REST server.
    Serve {
        /// Address to listen on (overrides server.listen and VAULTDB_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Serve HTTPS with this certificate chain, PEM (overrides server.tls_cert and
        /// VAULTDB_TLS_CERT); needs --tls-key. Reloaded on SIGHUP and when it changes.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key, PEM (overrides server.tls_key).
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates signed by these CA certificates, PEM (overrides
        /// server.tls_client_ca).
        #[arg(long, value_name = "PEM")]
        tls_client_ca: Option<PathBuf>,
    },
    /// Print a shell completion script: `vaultdb completions bash > /etc/bash_completion.d/vaultdb`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Audit log tools.
    Audit {
        /// What to do with the audit log.
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `put`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// The record id (1 to 255 bytes, no control characters).
    pub id: String,
    /// The data file; `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub file: Option<PathBuf>,
    /// The data is JSON: check it, and store it as application/json.
    #[arg(long)]
    pub json_input: bool,
    /// The content type to store with the data.
    #[arg(long, value_name = "TYPE", conflicts_with = "json_input")]
    pub content_type: Option<String>,
    /// A metadata entry stored (and protected) with the record; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
}

/// `reshare`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReshareArgs {
    /// The new store's configuration file (its backends, threshold, prefix, mode, audit
    /// log); the store to move is the one --config names, as for every command.
    #[arg(long, value_name = "NEW.toml")]
    pub to: PathBuf,
    /// At the end, also remove the old store's keyring and moved notice (a few hundred bytes
    /// per backend, no record data). Without them a client started later on the old
    /// configuration is not told the store moved, and `put` or `serve` there would create a
    /// new, empty store.
    #[arg(long)]
    pub remove_fence: bool,
    /// An old backend gone for good (its id in the old configuration; repeat for more): the
    /// copy does not wait for its listing. Without it, an old backend that cannot list stops
    /// the re-share, since it may hold a record's K-th share.
    #[arg(long, value_name = "ID")]
    pub lost: Vec<String>,
    /// Records copied between two saves of the progress (what a resumed run skips).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint_every: u32,
}

/// The format of the logs on standard error (`--log-format`, `VAULTDB_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
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

/// A `--timeout`: a duration of more than 0 (`"30s"`, `"2m"`).
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    match crate::config::parse_duration(s)? {
        d if d.is_zero() => Err("the timeout must be more than 0".into()),
        d => Ok(d),
    }
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
