// This file is long because it holds all of `vaultdb.toml` (every section and key, their
// validation, environment overrides, the embedded default, opening the store) and its unit tests
// (about a third of it).
//! `vaultdb.toml`: parsing, validation, environment overrides, the embedded default, and
//! turning a configuration into an open [`VaultDb`].
//!
//! Where the configuration comes from, first match wins:
//!
//! 1. `--config PATH` or `VAULTDB_CONFIG=PATH` (the file must exist);
//! 2. `./vaultdb.toml` if it exists;
//! 3. the embedded default ([`DEFAULT_CONFIG`]): three filesystem backends under
//!    `./vaultdb-data/{disk-1,disk-2,disk-3}`, threshold 2. So a newcomer's first command
//!    just works.
//!
//! Then the environment overrides single settings ([`ENV_OVERRIDES`]). Relative paths in a
//! file are resolved against the file's directory; in the embedded default, against the
//! current directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use vaultdb_azure::{AzureBackend, AzureConfig};
use vaultdb_core::{
    BackendError, CallPolicy, MemoryBackend, Padding, Settings, StorageBackend, VaultDb,
};
use vaultdb_fs::FsBackend;
use vaultdb_gcs::{GcsBackend, GcsConfig};
use vaultdb_minio::MinioConfig;
use vaultdb_s3::{S3Backend, S3Config};

use crate::auth::{Role, TokenEntry, Tokens};
pub use crate::cloud::{AzureSection, Env, GcsSection, MinioSection, S3Section, process_env};
use crate::error::CliError;

/// The file name looked for in the current directory.
pub const DEFAULT_CONFIG_FILE: &str = "vaultdb.toml";

/// The default server address (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The default request body limit (16 MiB).
pub const DEFAULT_BODY_LIMIT: u64 = 16 << 20;

/// The default request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variables that override configuration, with what each does.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("VAULTDB_CONFIG", "path of the configuration file (same as --config)"),
    ("VAULTDB_DATA_DIR", "data_dir: where relative fs backend paths and the audit log live"),
    ("VAULTDB_THRESHOLD", "threshold K"),
    ("VAULTDB_WRITE_QUORUM", "write_quorum W"),
    ("VAULTDB_LISTEN", "server.listen, e.g. 127.0.0.1:9000 (port 0 picks a free port)"),
    ("VAULTDB_AUDIT_LOG", "server.audit_log path"),
    (
        "VAULTDB_TOKEN",
        "serve only, when no [[tokens]] are configured: accept this admin token instead of \
         generating one",
    ),
    ("RUST_LOG", "log filter for stderr logs (default: warn)"),
];

/// The embedded default configuration, and the body of the file `vaultdb init` writes
/// (which appends a `[[tokens]]` entry).
pub const DEFAULT_CONFIG: &str = r#"# VaultDB configuration.
#
# Every record is split into N shares, one per backend below; any `threshold` (K) of them
# rebuild it, and fewer than K reveal nothing about it. With K = 2 of N = 3, any one backend
# may fail, or be compromised, without losing or leaking a record.
#
# Environment variables override single settings: VAULTDB_DATA_DIR, VAULTDB_THRESHOLD,
# VAULTDB_WRITE_QUORUM, VAULTDB_LISTEN, VAULTDB_AUDIT_LOG (see `vaultdb --help`).

# K: shares needed to rebuild a record (2 <= K <= number of backends).
threshold = 2

# W: backends that must acknowledge a put (K <= W <= N; default N).
# write_quorum = 3

# Versions kept per record after a put (default 1).
retain_versions = 1

# Size padding before splitting, so stored sizes do not reveal exact sizes:
# "padme" (default, at most 12% overhead), "none", "power-of-two", or "block:4096".
padding = "padme"

# Key prefix inside every backend.
prefix = "vaultdb"

# Records larger than this are stored as segments of this size, each with its own MAC, and
# stream in bounded memory (1KiB to 1GiB; default 4MiB).
# segment_size = "4MiB"

# The client's in-flight byte budget: puts and segment reads wait instead of buffering
# more than this (default 64MiB).
# max_inflight = "64MiB"

# Relative fs backend paths, and the default audit log, are resolved against this directory
# (itself relative to this file).
data_dir = "vaultdb-data"

[timeouts]
# Upper bound on one backend call ("500ms", "30s", "2m").
call = "30s"
# Attempts per backend call, with exponential backoff on transient errors.
attempts = 3
# A read asks one more backend when K shares have not arrived after this long ("off" to
# disable).
hedge_after = "50ms"

[server]
# Loopback only by default. Put a TLS-terminating proxy in front before exposing it.
listen = "127.0.0.1:8080"
# Largest request body accepted ("16MiB", or bytes).
body_limit = "16MiB"
# Requests taking longer than this fail with 503 REQUEST_TIMEOUT.
request_timeout = "30s"
# Hash-chained JSON-lines audit log (name tags only, never ids or data); default
# audit.jsonl in data_dir. Check it with `vaultdb audit verify`.
# audit_log = "vaultdb-data/audit.jsonl"

# Three local directories stand in for three independent stores. For real protection give
# each share to a different provider: kind = "s3" | "minio" | "gcs" | "azure" (keys in the
# vaultdb README); "memory" keeps shares in RAM for tests.
[[backends]]
kind = "fs"
id = "disk-1"
name = "Local disk 1"
path = "disk-1"

[[backends]]
kind = "fs"
id = "disk-2"
name = "Local disk 2"
path = "disk-2"

[[backends]]
kind = "fs"
id = "disk-3"
name = "Local disk 3"
path = "disk-3"
"#;

/// A duration written as `"500ms"`, `"30s"`, `"2m"`, `"1h"` or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(Dur).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {text:?}"))?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("invalid duration {text:?} (use ms, s, m or h)")),
    };
    Ok(d)
}

/// A duration or `"off"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptDur(pub Option<Duration>);

impl<'de> Deserialize<'de> for OptDur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(OptDur(Some(Duration::from_secs(s)))),
            Raw::Text(t) if t == "off" => Ok(OptDur(None)),
            Raw::Text(t) => {
                parse_duration(&t).map(|d| OptDur(Some(d))).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// A byte size written as a number of bytes or `"512KiB"`, `"16MiB"`, `"1GiB"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(ByteSize(b)),
            Raw::Text(t) => parse_size(&t).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"123"`, `"512KiB"`, `"16MiB"`, `"1GiB"` (also `KB`/`MB`/`GB` as powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("invalid size {text:?} (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {text:?} is too large"))
}

/// The padding policy as written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaddingSetting(pub Padding);

impl Default for PaddingSetting {
    fn default() -> Self {
        Self(Padding::Padme)
    }
}

impl<'de> Deserialize<'de> for PaddingSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        let p = match t.as_str() {
            "padme" => Padding::Padme,
            "none" => Padding::None,
            "power-of-two" => Padding::PowerOfTwo,
            other => match other.strip_prefix("block:").map(str::parse::<u32>) {
                Some(Ok(b)) if b > 0 => Padding::Block(b),
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "invalid padding {t:?}: use \"padme\", \"none\", \"power-of-two\" or \
                         \"block:<bytes>\""
                    )));
                }
            },
        };
        Ok(Self(p))
    }
}

/// `[timeouts]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Upper bound on one attempt of one backend call.
    #[serde(default = "default_call")]
    pub call: Dur,
    /// Attempts per backend call (at least 1).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Hedging delay for reads, or `"off"`.
    #[serde(default = "default_hedge")]
    pub hedge_after: OptDur,
    /// Grace period before scrub removes abandoned partial writes.
    #[serde(default)]
    pub grace_period: Option<Dur>,
}

fn default_call() -> Dur {
    Dur(CallPolicy::default().timeout)
}
fn default_attempts() -> u32 {
    CallPolicy::default().max_attempts
}
fn default_hedge() -> OptDur {
    OptDur(Settings::default().hedge_after)
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            call: default_call(),
            attempts: default_attempts(),
            hedge_after: default_hedge(),
            grace_period: None,
        }
    }
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: ByteSize,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Dur,
    /// The audit log; default `<data_dir>/audit.jsonl`.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}
fn default_body_limit() -> ByteSize {
    ByteSize(DEFAULT_BODY_LIMIT)
}
fn default_request_timeout() -> Dur {
    Dur(DEFAULT_REQUEST_TIMEOUT)
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            body_limit: default_body_limit(),
            request_timeout: default_request_timeout(),
            audit_log: None,
        }
    }
}

/// One `[[tokens]]` entry: a bearer token, stored only as its SHA-256.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The actor name recorded in the audit log.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
}

/// One `[[backends]]` entry, by `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendConfig {
    /// A local directory.
    Fs {
        /// Backend id (unique; recorded in the keyring, so do not change it later).
        id: String,
        /// Human-readable name.
        name: Option<String>,
        /// The directory (relative paths: against `data_dir`).
        path: PathBuf,
    },
    /// In-process memory: every process starts empty. For tests and demos of `serve`.
    Memory {
        /// Backend id.
        id: String,
        /// Human-readable name.
        name: Option<String>,
    },
    /// Amazon S3 or an S3-compatible store (crate vaultdb-s3).
    S3(S3Section),
    /// MinIO or another self-hosted S3-compatible store (crate vaultdb-minio).
    Minio(MinioSection),
    /// Google Cloud Storage (crate vaultdb-gcs).
    Gcs(GcsSection),
    /// Azure Blob Storage (crate vaultdb-azure).
    Azure(AzureSection),
}

impl BackendConfig {
    /// The backend id.
    pub fn id(&self) -> &str {
        match self {
            Self::Fs { id, .. } | Self::Memory { id, .. } => id,
            Self::S3(s) => &s.id,
            Self::Minio(s) => &s.id,
            Self::Gcs(s) => &s.id,
            Self::Azure(s) => &s.id,
        }
    }

    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fs { .. } => "fs",
            Self::Memory { .. } => "memory",
            Self::S3(_) => "s3",
            Self::Minio(_) => "minio",
            Self::Gcs(_) => "gcs",
            Self::Azure(_) => "azure",
        }
    }

    fn display_name(&self) -> String {
        let name = match self {
            Self::Fs { name, .. } | Self::Memory { name, .. } => name,
            Self::S3(s) => &s.name,
            Self::Minio(s) => &s.name,
            Self::Gcs(s) => &s.name,
            Self::Azure(s) => &s.name,
        };
        name.clone().unwrap_or_else(|| self.id().to_owned())
    }

    /// Checks the kind-specific fields (no environment, no network).
    fn validate(&self) -> Result<(), String> {
        match self {
            Self::Fs { id, path, .. } => {
                if path.to_string_lossy().trim().is_empty() {
                    Err(format!("backend {id:?} (fs): path must not be empty"))
                } else {
                    Ok(())
                }
            }
            Self::Memory { .. } => Ok(()),
            Self::S3(s) => s.validate(),
            Self::Minio(s) => s.validate(),
            Self::Gcs(s) => s.validate(),
            Self::Azure(s) => s.validate(),
        }
    }

    /// What to build for this section: the backend crate's configuration, with secrets read
    /// from `env`. Touches no network.
    ///
    /// # Errors
    /// A variable the section names is not set (the message names the variable).
    pub fn spec(&self, env: Env<'_>) -> Result<BackendSpec, String> {
        let id = self.id().to_owned();
        let name = self.display_name();
        Ok(match self {
            Self::Fs { path, .. } => BackendSpec::Fs { id, name, path: path.clone() },
            Self::Memory { .. } => BackendSpec::Memory { id, name },
            Self::S3(s) => BackendSpec::S3 { id, name, config: s.to_config(env)? },
            Self::Minio(s) => BackendSpec::Minio { id, name, config: s.to_config(env)? },
            Self::Gcs(s) => BackendSpec::Gcs { id, name, config: s.to_config(env)? },
            Self::Azure(s) => BackendSpec::Azure { id, name, config: s.to_config(env)? },
        })
    }
}

/// A backend ready to be built: its id, name and the backend crate's configuration. `Debug`
/// shows no secrets (the crates' configurations redact them).
#[derive(Clone, Debug)]
pub enum BackendSpec {
    /// A local directory.
    Fs {
        /// Backend id.
        id: String,
        /// Display name.
        name: String,
        /// The directory (resolved).
        path: PathBuf,
    },
    /// In-process memory.
    Memory {
        /// Backend id.
        id: String,
        /// Display name.
        name: String,
    },
    /// S3.
    S3 {
        /// Backend id.
        id: String,
        /// Display name.
        name: String,
        /// The vaultdb-s3 configuration.
        config: S3Config,
    },
    /// MinIO.
    Minio {
        /// Backend id.
        id: String,
        /// Display name.
        name: String,
        /// The vaultdb-minio configuration.
        config: MinioConfig,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Backend id.
        id: String,
        /// Display name.
        name: String,
        /// The vaultdb-gcs configuration.
        config: GcsConfig,
    },
    /// Azure Blob Storage.
    Azure {
        /// Backend id.
        id: String,
        /// Display name.
        name: String,
        /// The vaultdb-azure configuration.
        config: AzureConfig,
    },
}

impl BackendSpec {
    /// The backend id.
    pub fn id(&self) -> &str {
        match self {
            Self::Fs { id, .. }
            | Self::Memory { id, .. }
            | Self::S3 { id, .. }
            | Self::Minio { id, .. }
            | Self::Gcs { id, .. }
            | Self::Azure { id, .. } => id,
        }
    }

    /// Builds the backend. No request reaches a bucket; resolving GCS Application Default
    /// Credentials or the AWS credential chain may read files (and, for GCS on Google
    /// Cloud, ask the metadata server).
    ///
    /// # Errors
    /// `INVALID_CONFIG` naming the backend, with the crate's message (which never holds a
    /// secret).
    pub async fn build(self) -> Result<Arc<dyn StorageBackend>, CliError> {
        let fail = |id: &str, kind: &str, e: BackendError| {
            CliError::config(format!("backend {id:?} ({kind}): {}", e.message()))
        };
        Ok(match self {
            Self::Fs { id, name, path } => Arc::new(FsBackend::new(id, name, path)),
            Self::Memory { id, name } => Arc::new(MemoryBackend::new(id, name)),
            Self::S3 { id, name, config } => Arc::new(
                S3Backend::new(id.clone(), name, config).await.map_err(|e| fail(&id, "s3", e))?,
            ),
            Self::Minio { id, name, config } => Arc::new(
                vaultdb_minio::connect(id.clone(), name, config)
                    .await
                    .map_err(|e| fail(&id, "minio", e))?,
            ),
            Self::Gcs { id, name, config } => Arc::new(
                GcsBackend::new(id.clone(), name, config).await.map_err(|e| fail(&id, "gcs", e))?,
            ),
            Self::Azure { id, name, config } => Arc::new(
                AzureBackend::new(id.clone(), name, config).map_err(|e| fail(&id, "azure", e))?,
            ),
        })
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// K.
    pub threshold: usize,
    /// W (default N).
    #[serde(default)]
    pub write_quorum: Option<usize>,
    /// Versions kept per record.
    #[serde(default = "default_retain")]
    pub retain_versions: usize,
    /// Padding policy.
    #[serde(default)]
    pub padding: PaddingSetting,
    /// Key prefix in every backend.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Segment size for large records (default 4 MiB).
    #[serde(default)]
    pub segment_size: Option<ByteSize>,
    /// The client's in-flight byte budget (default 64 MiB).
    #[serde(default)]
    pub max_inflight: Option<ByteSize>,
    /// Base directory for relative fs paths and the default audit log.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Backend call timeouts and retries.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// The REST server.
    #[serde(default)]
    pub server: ServerConfig,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// The N backends, in share order.
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
}

fn default_retain() -> usize {
    1
}
fn default_prefix() -> String {
    vaultdb_core::client::DEFAULT_PREFIX.to_owned()
}

/// Where a configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// The embedded default.
    Embedded,
}

/// A parsed, validated configuration with its paths resolved.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration (paths in it are already absolute or resolved).
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    /// The resolved data directory.
    pub data_dir: PathBuf,
    /// The resolved audit log path.
    pub audit_log: PathBuf,
    /// The resolved listen address.
    pub listen: SocketAddr,
}

/// Reads `name` from the environment; `None` if unset or empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Loaded {
    /// Finds, parses, overrides and validates the configuration. Touches nothing on disk
    /// but the configuration file it reads.
    ///
    /// # Errors
    /// `INVALID_CONFIG` with one line saying what is wrong.
    pub fn load(explicit: Option<&Path>) -> Result<Self, CliError> {
        let (text, source) = match explicit {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    CliError::config(format!("cannot read config {}: {e}", p.display()))
                })?;
                (text, Source::File(p.to_path_buf()))
            }
            None => {
                let p = Path::new(DEFAULT_CONFIG_FILE);
                match std::fs::read_to_string(p) {
                    Ok(text) => (text, Source::File(p.to_path_buf())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        (DEFAULT_CONFIG.to_owned(), Source::Embedded)
                    }
                    Err(e) => {
                        return Err(CliError::config(format!(
                            "cannot read config {}: {e}",
                            p.display()
                        )));
                    }
                }
            }
        };
        Self::from_text(&text, source)
    }

    /// Parses `text` as if read from `source`, then applies the environment.
    ///
    /// # Errors
    /// `INVALID_CONFIG` with one line saying what is wrong.
    pub fn from_text(text: &str, source: Source) -> Result<Self, CliError> {
        let label = match &source {
            Source::File(p) => p.display().to_string(),
            Source::Embedded => "embedded default config".to_owned(),
        };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            });
            CliError::config(format!(
                "{label}{}: {}",
                at.unwrap_or_default(),
                one_line(e.message())
            ))
        })?;
        let base = match &source {
            Source::File(p) => match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
            Source::Embedded => PathBuf::from("."),
        };
        // Environment overrides.
        if let Some(v) = env("VAULTDB_THRESHOLD") {
            config.threshold = v.trim().parse().map_err(|_| {
                CliError::config(format!("VAULTDB_THRESHOLD={v:?} is not a number"))
            })?;
        }
        if let Some(v) = env("VAULTDB_WRITE_QUORUM") {
            config.write_quorum = Some(v.trim().parse().map_err(|_| {
                CliError::config(format!("VAULTDB_WRITE_QUORUM={v:?} is not a number"))
            })?);
        }
        if let Some(v) = env("VAULTDB_LISTEN") {
            config.server.listen = v;
        }
        let data_dir = match env("VAULTDB_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => base.join(config.data_dir.clone().unwrap_or_else(|| "vaultdb-data".into())),
        };
        let audit_log = match env("VAULTDB_AUDIT_LOG") {
            Some(p) => PathBuf::from(p),
            None => match &config.server.audit_log {
                Some(p) => base.join(p),
                None => data_dir.join("audit.jsonl"),
            },
        };
        for b in &mut config.backends {
            // fs paths against data_dir; credential files against the file's directory.
            let (path, against) = match b {
                BackendConfig::Fs { path, .. } => (Some(path), &data_dir),
                BackendConfig::Gcs(g) => (g.service_account_file.as_mut(), &base),
                BackendConfig::Azure(a) => (a.token_file.as_mut(), &base),
                _ => (None, &base),
            };
            if let Some(path) = path
                && path.is_relative()
                && !path.as_os_str().is_empty()
            {
                *path = against.join(&*path);
            }
        }
        let listen: SocketAddr = config.server.listen.parse().map_err(|_| {
            CliError::config(format!(
                "server.listen {:?} is not an address like 127.0.0.1:8080",
                config.server.listen
            ))
        })?;
        let loaded = Self { config, source, data_dir, audit_log, listen };
        loaded.validate().map_err(CliError::config)?;
        Ok(loaded)
    }

    /// Checks everything that can be checked without touching a backend.
    fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        let n = c.backends.len();
        if n < 2 {
            return Err(format!("at least 2 backends are needed, {n} configured"));
        }
        if n > 255 {
            return Err(format!("at most 255 backends are supported, {n} configured"));
        }
        if c.threshold < 2 {
            return Err(format!(
                "threshold must be at least 2 (a threshold of {} would let a single backend \
                 rebuild every record)",
                c.threshold
            ));
        }
        if c.threshold > n {
            return Err(format!(
                "threshold {} is larger than the number of backends ({n})",
                c.threshold
            ));
        }
        if let Some(w) = c.write_quorum
            && (w < c.threshold || w > n)
        {
            return Err(format!(
                "write_quorum {w} must be between the threshold {} and the number of backends {n}",
                c.threshold
            ));
        }
        if c.retain_versions == 0 {
            return Err("retain_versions must be at least 1".into());
        }
        if let Some(ByteSize(s)) = c.segment_size {
            let (lo, hi) = (
                vaultdb_core::manifest::MIN_SEGMENT_SIZE,
                vaultdb_core::manifest::MAX_SEGMENT_SIZE,
            );
            if s < lo as u64 || s > hi as u64 {
                return Err(format!("segment_size must be between {lo} and {hi} bytes"));
            }
        }
        if let Some(ByteSize(m)) = c.max_inflight
            && m < 1024
        {
            return Err("max_inflight must be at least 1KiB".into());
        }
        if c.timeouts.attempts == 0 {
            return Err("timeouts.attempts must be at least 1".into());
        }
        if c.timeouts.call.0.is_zero() {
            return Err("timeouts.call must be more than 0".into());
        }
        if c.server.body_limit.0 == 0 {
            return Err("server.body_limit must be more than 0".into());
        }
        if c.server.request_timeout.0.is_zero() {
            return Err("server.request_timeout must be more than 0".into());
        }
        vaultdb_core::naming::KeySpace::new(&c.prefix).map_err(|e| e.to_string())?;
        for (i, b) in c.backends.iter().enumerate() {
            let id = b.id();
            if id.trim().is_empty() {
                return Err(format!("backend #{} has an empty id", i + 1));
            }
            if c.backends[..i].iter().any(|o| o.id() == id) {
                return Err(format!("backend id {id:?} is used twice"));
            }
            b.validate()?;
        }
        for (i, t) in c.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(format!("token #{} has an empty name", i + 1));
            }
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "token {:?}: sha256 must be 64 hex digits (the SHA-256 of the token)",
                    t.name
                ));
            }
        }
        Ok(())
    }

    /// The VaultDb settings this configuration asks for.
    pub fn settings(&self) -> Settings {
        let c = &self.config;
        let mut s = Settings::default();
        s.write_quorum = c.write_quorum;
        s.retain_versions = c.retain_versions;
        s.padding = c.padding.0;
        s.prefix = c.prefix.clone();
        s.hedge_after = c.timeouts.hedge_after.0;
        if let Some(ByteSize(seg)) = c.segment_size {
            s.segment_size = usize::try_from(seg).unwrap_or(usize::MAX);
        }
        if let Some(ByteSize(m)) = c.max_inflight {
            s.max_inflight_bytes = usize::try_from(m).unwrap_or(usize::MAX);
        }
        s.call_policy.timeout = c.timeouts.call.0;
        s.call_policy.max_attempts = c.timeouts.attempts;
        if let Some(g) = c.timeouts.grace_period {
            s.grace_period = g.0;
        }
        s
    }

    /// What [`backends`](Self::backends) builds, with secrets read from `env`; touches
    /// nothing.
    ///
    /// # Errors
    /// `INVALID_CONFIG`: a variable a section names is not set.
    pub fn specs(&self, env: Env<'_>) -> Result<Vec<BackendSpec>, CliError> {
        self.config.backends.iter().map(|b| b.spec(env).map_err(CliError::config)).collect()
    }

    /// Builds the backends, in share order, with secrets from the process environment. No
    /// request reaches a bucket (see [`BackendSpec::build`]).
    ///
    /// # Errors
    /// `INVALID_CONFIG` naming the backend whose configuration or credentials are unusable.
    pub async fn backends(&self) -> Result<Vec<Arc<dyn StorageBackend>>, CliError> {
        self.backends_with(&process_env).await
    }

    /// [`backends`](Self::backends) with secrets read from `env`.
    ///
    /// # Errors
    /// As [`backends`](Self::backends).
    pub async fn backends_with(
        &self,
        env: Env<'_>,
    ) -> Result<Vec<Arc<dyn StorageBackend>>, CliError> {
        let mut out = Vec::with_capacity(self.config.backends.len());
        for spec in self.specs(env)? {
            out.push(spec.build().await?);
        }
        Ok(out)
    }

    /// Removes temporary files that crashed writes left in the fs backends (older than
    /// [`vaultdb_fs::TEMP_MAX_AGE`]); returns how many. Failures are logged, not fatal.
    pub async fn clean_fs_temp(&self) -> usize {
        let mut removed = 0;
        for b in &self.config.backends {
            if let BackendConfig::Fs { id, path, .. } = b {
                let fs = FsBackend::new(id.clone(), id.clone(), path.clone());
                match fs.clean_temp(vaultdb_fs::TEMP_MAX_AGE).await {
                    Ok(n) => removed += n,
                    Err(e) => tracing::warn!(backend = %id, "cannot clean temporary files: {e}"),
                }
            }
        }
        removed
    }

    /// Opens the store (reading, or on an empty store creating, the keyring).
    ///
    /// # Errors
    /// The store's errors (`INVALID_CONFIG` for a keyring mismatch, `INSUFFICIENT_SHARES`
    /// when too few backends answer).
    pub async fn open(&self) -> Result<VaultDb, CliError> {
        self.open_with(self.backends().await?).await
    }

    /// Opens the store over backends already built (by [`backends`](Self::backends)).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(
        &self,
        backends: Vec<Arc<dyn StorageBackend>>,
    ) -> Result<VaultDb, CliError> {
        let mut b = VaultDb::builder_with(self.settings()).threshold(self.config.threshold);
        for backend in backends {
            b = b.backend_arc(backend);
        }
        b.open().await.map_err(CliError::from)
    }

    /// The API tokens from the file.
    ///
    /// # Errors
    /// Never after `validate`; kept fallible for callers building tokens by hand.
    pub fn tokens(&self) -> Result<Tokens, CliError> {
        let mut entries = Vec::new();
        for t in &self.config.tokens {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&t.sha256, &mut hash)
                .map_err(|_| CliError::config(format!("token {:?}: sha256 is not hex", t.name)))?;
            entries.push(TokenEntry { name: t.name.clone(), role: t.role, sha256: hash });
        }
        Ok(Tokens::new(entries))
    }

    /// A one-line description, e.g. `2-of-3 over disk-1, disk-2, disk-3`.
    pub fn describe(&self) -> String {
        let ids: Vec<&str> = self.config.backends.iter().map(BackendConfig::id).collect();
        format!("{}-of-{} over {}", self.config.threshold, ids.len(), ids.join(", "))
    }
}

/// The file `vaultdb init` writes: the default plus one admin token's hash.
pub fn init_file(token_name: &str, token_sha256_hex: &str) -> String {
    format!(
        "{DEFAULT_CONFIG}\n# API tokens for `vaultdb serve`, stored as SHA-256 hashes only. Roles: read \
         (GET), write (also PUT/POST/DELETE), admin (also status and repair). Add one with the \
         token's hash: printf %s \"$TOKEN\" | sha256sum\n[[tokens]]\nname = \"{token_name}\"\nrole = \
         \"admin\"\nsha256 = \"{token_sha256_hex}\"\n"
    )
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, CliError> {
        Loaded::from_text(text, Source::File("/etc/vaultdb/vaultdb.toml".into()))
    }

    const TWO_FS: &str = "threshold = 2\n[[backends]]\nkind = \"fs\"\nid = \"a\"\npath = \"a\"\n\
                          [[backends]]\nkind = \"fs\"\nid = \"b\"\npath = \"/abs/b\"\n";

    #[test]
    fn embedded_default_parses() {
        let l = Loaded::from_text(DEFAULT_CONFIG, Source::Embedded).unwrap();
        assert_eq!(l.config.threshold, 2);
        assert_eq!(l.config.backends.len(), 3);
        assert_eq!(l.describe(), "2-of-3 over disk-1, disk-2, disk-3");
        assert_eq!(l.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(l.config.server.body_limit, ByteSize(16 << 20));
    }

    #[test]
    fn init_file_parses_with_token() {
        let text = init_file("admin", &"ab".repeat(32));
        let l = parse(&text).unwrap();
        assert_eq!(l.config.tokens.len(), 1);
        assert_eq!(l.config.tokens[0].role, Role::Admin);
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let l = parse(TWO_FS).unwrap();
        let paths: Vec<_> = l
            .config
            .backends
            .iter()
            .map(|b| match b {
                BackendConfig::Fs { path, .. } => path.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(paths[0], Path::new("/etc/vaultdb/vaultdb-data/a"));
        assert_eq!(paths[1], Path::new("/abs/b"));
        assert_eq!(l.audit_log, Path::new("/etc/vaultdb/vaultdb-data/audit.jsonl"));
    }

    #[test]
    fn rejects_bad_configs() {
        let cases = [
            ("threshold = 2\nbogus = 1\n", "unknown field"),
            ("threshold = \n", "line 1"),
            (&TWO_FS.replace("threshold = 2", "threshold = 3"), "larger than"),
            (&TWO_FS.replace("threshold = 2", "threshold = 1"), "at least 2"),
            (&TWO_FS.replacen("\"fs\"", "\"ftp\"", 1), "unknown variant"),
            (&TWO_FS.replacen("path = \"a\"", "path = \"a\"\ncolour = 1", 1), "unknown field"),
            (&TWO_FS.replacen("id = \"b\"", "id = \"a\"", 1), "used twice"),
            ("threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n", "at least 2 backends"),
            (&format!("{TWO_FS}[server]\nlisten = \"nowhere\"\n"), "not an address"),
            (&format!("padding = \"fancy\"\n{TWO_FS}"), "invalid padding"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG", "{text}");
            assert!(e.message.contains(want), "{text}: {} lacks {want}", e.message);
            assert!(!e.message.contains('\n'), "one line: {}", e.message);
        }
    }

    /// A fake environment for the secrets the sections name.
    fn fake_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k: &str| map.get(k).cloned()
    }

    use vaultdb_azure::AzureCredentials;
    use vaultdb_gcs::GcsCredentials;
    use vaultdb_s3::S3Credentials;

    /// A multi-cloud file whose every constructor runs offline: S3 with static keys from
    /// the environment, GCS anonymous on an emulator URL, Azure with a managed identity.
    const MULTI_CLOUD: &str = r#"
threshold = 2

[[backends]]
kind = "s3"
id = "aws"
name = "AWS S3 us-west-2"
bucket = "acme-vaultdb"
prefix = "team/vault"
region = "us-west-2"
access_key_id_env = "TEST_AWS_KEY_ID"
secret_access_key_env = "TEST_AWS_SECRET"

[[backends]]
kind = "gcs"
id = "gcp"
bucket = "acme-vaultdb-eu"
endpoint = "http://127.0.0.1:4443"
allow_http = true
credentials = "anonymous"

[[backends]]
kind = "azure"
id = "azure"
name = "Azure Blob East Asia"
account = "acmevaultdb"
container = "vaultdb-asia"
credentials = "managed_identity"
client_id = "11111111-2222-3333-4444-555555555555"
"#;

    #[tokio::test]
    async fn multi_cloud_config_builds_three_backends() {
        let l = parse(MULTI_CLOUD).unwrap();
        assert_eq!(l.describe(), "2-of-3 over aws, gcp, azure");
        let env = fake_env(&[
            ("TEST_AWS_KEY_ID", "AKIDEXAMPLE"),
            ("TEST_AWS_SECRET", "SECRET-S3-DO-NOT-PRINT"),
        ]);
        let specs = l.specs(&env).unwrap();
        match &specs[0] {
            BackendSpec::S3 { id, name, config } => {
                assert_eq!((id.as_str(), name.as_str()), ("aws", "AWS S3 us-west-2"));
                assert_eq!(config.bucket, "acme-vaultdb");
                assert_eq!(config.prefix, "team/vault");
                assert_eq!(config.region, "us-west-2");
                assert_eq!(config.endpoint, None);
                assert!(!config.force_path_style && !config.allow_http);
                match &config.credentials {
                    S3Credentials::Static { access_key_id, secret_access_key, session_token } => {
                        assert_eq!(access_key_id, "AKIDEXAMPLE");
                        assert_eq!(secret_access_key, "SECRET-S3-DO-NOT-PRINT");
                        assert_eq!(*session_token, None);
                    }
                    other => panic!("static credentials expected, got {other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        match &specs[1] {
            BackendSpec::Gcs { id, name, config } => {
                // No name: the id stands in.
                assert_eq!((id.as_str(), name.as_str()), ("gcp", "gcp"));
                assert_eq!(config.bucket, "acme-vaultdb-eu");
                assert_eq!(config.endpoint, "http://127.0.0.1:4443");
                assert!(config.allow_http);
                assert!(matches!(config.credentials, GcsCredentials::Anonymous));
            }
            other => panic!("{other:?}"),
        }
        match &specs[2] {
            BackendSpec::Azure { id, config, .. } => {
                assert_eq!(id, "azure");
                assert_eq!(config.account, "acmevaultdb");
                assert_eq!(config.container, "vaultdb-asia");
                assert!(!config.emulator && !config.allow_http);
                match &config.credentials {
                    AzureCredentials::ManagedIdentity { client_id } => assert_eq!(
                        client_id.as_deref(),
                        Some("11111111-2222-3333-4444-555555555555")
                    ),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        // Nothing shows the secret.
        let shown = format!("{specs:?} {l:?}");
        assert!(!shown.contains("SECRET-S3-DO-NOT-PRINT"), "{shown}");

        // The backends build without any network access, in share order.
        let backends = l.backends_with(&env).await.unwrap();
        let ids: Vec<&str> = backends.iter().map(|b| b.id()).collect();
        assert_eq!(ids, ["aws", "gcp", "azure"]);
        assert_eq!(backends[2].name(), "Azure Blob East Asia");
    }

    #[test]
    fn readme_multi_cloud_example_maps() {
        let readme = include_str!("../README.md");
        let at = readme.find("### Multi-cloud").expect("README has a multi-cloud section");
        let block = &readme[at..];
        let block = &block[block.find("```toml\n").expect("a toml block") + 8..];
        let block = &block[..block.find("```").unwrap()];
        // The token hash is a placeholder in the README.
        let text: String = block
            .lines()
            .map(|l| {
                if l.starts_with("sha256 = ") {
                    format!("sha256 = \"{}\"\n", "ab".repeat(32))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let l = parse(&text).unwrap();
        assert_eq!(l.describe(), "2-of-3 over aws, gcp, azure");
        // Credentials from each provider's usual sources: no variable is needed to map.
        let specs = l.specs(&fake_env(&[])).unwrap();
        assert!(matches!(
            &specs[0],
            BackendSpec::S3 { config, .. }
                if matches!(config.credentials, S3Credentials::Chain)
                    && config.region == "us-west-2"
        ));
        assert!(matches!(
            &specs[1],
            BackendSpec::Gcs { config, .. }
                if matches!(config.credentials, GcsCredentials::Default)
                    && config.endpoint == vaultdb_gcs::DEFAULT_ENDPOINT
        ));
        assert!(matches!(
            &specs[2],
            BackendSpec::Azure { config, .. }
                if matches!(config.credentials, AzureCredentials::ManagedIdentity { client_id: None })
        ));
    }

    #[test]
    fn every_cloud_key_maps() {
        let text = r#"
threshold = 2
[[backends]]
kind = "s3"
id = "s3"
bucket = "b"
endpoint = "http://127.0.0.1:9000"
force_path_style = true
allow_http = true
strict_checksums = true
page_size = 10
access_key_id = "AKID"
secret_access_key_env = "S3_SECRET"
session_token_env = "S3_TOKEN"
[[backends]]
kind = "minio"
id = "minio"
endpoint = "https://minio.internal:9000"
bucket = "vault"
prefix = "shares"
region = "eu-1"
allow_http = true
page_size = 20
access_key_id_env = "MINIO_KEY"
[[backends]]
kind = "minio"
id = "minio-chain"
endpoint = "http://127.0.0.1:9000"
bucket = "vault"
[[backends]]
kind = "gcs"
id = "gcs-json"
bucket = "g"
page_size = 30
service_account_json_env = "GCS_JSON"
[[backends]]
kind = "gcs"
id = "gcs-file"
bucket = "g"
credentials_file = "keys/sa.json"
[[backends]]
kind = "azure"
id = "az-key"
account = "acct"
container = "c"
prefix = "p"
endpoint = "http://127.0.0.1:10000/acct"
allow_http = true
page_size = 5000
timeout = "7s"
credentials = "access_key"
[[backends]]
kind = "azure"
id = "az-sas"
account = "acct"
container = "c"
credentials = "sas"
sas_token_env = "AZ_SAS"
[[backends]]
kind = "azure"
id = "az-sp"
account = "acct"
container = "c"
credentials = "client_secret"
tenant_id = "t"
client_id = "c"
[[backends]]
kind = "azure"
id = "az-wi"
account = "acct"
container = "c"
credentials = "workload_identity"
tenant_id = "t"
client_id = "c"
token_file = "/var/run/token"
[[backends]]
kind = "azure"
id = "azurite"
container = "vaultdb-test"
emulator = true
[[backends]]
kind = "azure"
id = "az-env"
account = "acct"
container = "c"
"#;
        let l = parse(text).unwrap();
        let env = fake_env(&[
            ("S3_SECRET", "s3-secret"),
            ("S3_TOKEN", "s3-token"),
            ("MINIO_KEY", "minio-key"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("GCS_JSON", "{\"type\": \"service_account\"}"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "az-account-key"),
            ("AZ_SAS", "sv=1&sig=x"),
            ("AZURE_CLIENT_SECRET", "az-secret"),
        ]);
        let specs = l.specs(&env).unwrap();
        let BackendSpec::S3 { config: s3, .. } = &specs[0] else { panic!() };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.region, "us-east-1");
        assert!(s3.force_path_style && s3.allow_http && s3.strict_checksums);
        assert_eq!(s3.page_size, 10);
        assert!(matches!(&s3.credentials, S3Credentials::Static {
            access_key_id, secret_access_key, session_token: Some(t)
        } if access_key_id == "AKID" && secret_access_key == "s3-secret" && t == "s3-token"));

        let BackendSpec::Minio { config: m, .. } = &specs[1] else { panic!() };
        let m3 = m.to_s3_config().unwrap();
        assert_eq!(m3.endpoint.as_deref(), Some("https://minio.internal:9000"));
        assert_eq!((m3.bucket.as_str(), m3.prefix.as_str()), ("vault", "shares"));
        assert_eq!(m3.region, "eu-1");
        assert!(m3.force_path_style && m3.allow_http);
        assert_eq!(m3.page_size, 20);
        // The secret key defaults to AWS_SECRET_ACCESS_KEY.
        assert!(matches!(&m3.credentials, S3Credentials::Static {
            access_key_id, secret_access_key, session_token: None
        } if access_key_id == "minio-key" && secret_access_key == "aws-secret"));
        let BackendSpec::Minio { config: m, .. } = &specs[2] else { panic!() };
        // No keys: the credential chain; plain http on loopback is allowed by the preset.
        let m3 = m.to_s3_config().unwrap();
        assert!(matches!(m3.credentials, S3Credentials::Chain) && m3.allow_http);

        let BackendSpec::Gcs { config: g, .. } = &specs[3] else { panic!() };
        assert_eq!(g.page_size, 30);
        assert!(
            matches!(&g.credentials, GcsCredentials::ServiceAccountJson(j) if j.contains("service_account"))
        );
        let BackendSpec::Gcs { config: g, .. } = &specs[4] else { panic!() };
        // Relative key files resolve against the configuration file's directory.
        assert!(matches!(&g.credentials, GcsCredentials::ServiceAccountFile(p)
            if p == Path::new("/etc/vaultdb/keys/sa.json")));

        let az = |i: usize| match &specs[i] {
            BackendSpec::Azure { config, .. } => config.clone(),
            other => panic!("{other:?}"),
        };
        let a = az(5);
        assert_eq!((a.account.as_str(), a.prefix.as_str()), ("acct", "p"));
        assert_eq!(a.endpoint.as_deref(), Some("http://127.0.0.1:10000/acct"));
        assert!(a.allow_http && !a.emulator);
        assert_eq!(a.page_size, 5000);
        assert_eq!(a.timeout, Some(Duration::from_secs(7)));
        assert!(matches!(&a.credentials, AzureCredentials::AccessKey(k) if k == "az-account-key"));
        assert!(matches!(&az(6).credentials, AzureCredentials::Sas(s) if s == "sv=1&sig=x"));
        assert!(matches!(&az(7).credentials, AzureCredentials::ClientSecret {
            tenant_id, client_id, client_secret
        } if tenant_id == "t" && client_id == "c" && client_secret == "az-secret"));
        assert!(matches!(&az(8).credentials, AzureCredentials::WorkloadIdentity {
            token_file, ..
        } if token_file == "/var/run/token"));
        let a = az(9);
        assert!(a.emulator && a.allow_http);
        assert_eq!(a.account, vaultdb_azure::AZURITE_ACCOUNT);
        assert!(matches!(a.credentials, AzureCredentials::AccessKey(_)));
        assert!(matches!(az(10).credentials, AzureCredentials::Environment));

        let shown = format!("{specs:?}");
        for secret in
            ["s3-secret", "s3-token", "aws-secret", "az-account-key", "sig=x", "az-secret"]
        {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn missing_secret_variables_are_named_not_needed_to_load() {
        let l = parse(MULTI_CLOUD).unwrap();
        let e = l.specs(&fake_env(&[])).unwrap_err();
        assert_eq!(e.code, "INVALID_CONFIG");
        assert!(
            e.message.contains("backend \"aws\" (s3)")
                && e.message.contains("TEST_AWS_KEY_ID")
                && e.message.contains("not set"),
            "{}",
            e.message
        );
        let e = l.specs(&fake_env(&[("TEST_AWS_KEY_ID", "AKID")])).unwrap_err();
        assert!(e.message.contains("TEST_AWS_SECRET"), "{}", e.message);
        let e = parse(
            "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
             [[backends]]\nkind = \"azure\"\nid = \"az\"\naccount = \"a\"\ncontainer = \"c\"\n\
             credentials = \"access_key\"\n",
        )
        .unwrap()
        .specs(&fake_env(&[]))
        .unwrap_err();
        assert!(e.message.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{}", e.message);
    }

    #[tokio::test]
    async fn unusable_cloud_configs_fail_at_build_naming_the_backend() {
        // Plain http needs allow_http: refused by the crate when the backend is built.
        let text = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
                    [[backends]]\nkind = \"s3\"\nid = \"aws\"\nbucket = \"b\"\n\
                    endpoint = \"http://10.0.0.1:9000\"\naccess_key_id = \"k\"\n";
        let env = fake_env(&[("AWS_SECRET_ACCESS_KEY", "SECRET-XYZ")]);
        let Err(e) = parse(text).unwrap().backends_with(&env).await else {
            panic!("plain http was accepted");
        };
        assert_eq!(e.code, "INVALID_CONFIG");
        assert!(
            e.message.starts_with("backend \"aws\" (s3): ") && e.message.contains("allow_http"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("SECRET-XYZ"));
    }

    #[test]
    fn cloud_field_errors() {
        let s3 = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
                  [[backends]]\nkind = \"s3\"\nid = \"aws\"\nbucket = \"b\"\nregion = \"us-west-2\"\n";
        let az = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
                  [[backends]]\nkind = \"azure\"\nid = \"az\"\ncontainer = \"c\"\n";
        let gcs = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
                   [[backends]]\nkind = \"gcs\"\nid = \"g\"\nbucket = \"b\"\n";
        let cases = [
            (s3.replace("bucket = \"b\"", "bucket = \"\""), "bucket must not be empty"),
            (s3.replace("region =", "regoin ="), "unknown field `regoin`"),
            (format!("{s3}endpoint = \"s3.example.com\"\n"), "endpoint must start with"),
            (format!("{s3}page_size = 0\n"), "page_size must be between 1 and 1000"),
            (format!("{s3}access_key_id = \"a\"\naccess_key_id_env = \"B\"\n"), "not both"),
            (
                format!("{s3}secret_access_key_env = \"S\"\n"),
                "secret_access_key_env needs access_key_id",
            ),
            (
                format!("{s3}access_key_id = \"a\"\nsecret_access_key = \"INLINE-SECRET\"\n"),
                "unknown field `secret_access_key`",
            ),
            (
                "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
                 [[backends]]\nkind = \"minio\"\nid = \"mi\"\nbucket = \"b\"\n"
                    .to_owned(),
                "missing field `endpoint`",
            ),
            (
                format!(
                    "{gcs}service_account_file = \"a.json\"\nservice_account_json_env = \"J\"\n"
                ),
                "not both",
            ),
            (
                format!("{gcs}credentials = \"anonymous\"\nservice_account_file = \"a.json\"\n"),
                "go with credentials = \"service_account\"",
            ),
            (format!("{gcs}credentials = \"service_account\"\n"), "needs service_account_file"),
            (format!("{gcs}credentials = \"magic\"\n"), "unknown variant `magic`"),
            (az.to_owned(), "account is required"),
            (
                format!("{az}emulator = true\nendpoint = \"http://127.0.0.1:1\"\n"),
                "AZURITE_BLOB_STORAGE_URL",
            ),
            (
                format!("{az}account = \"a\"\naccess_key_env = \"K\"\n"),
                "access_key_env goes with credentials = \"access_key\"",
            ),
            (
                format!(
                    "{az}account = \"a\"\ncredentials = \"client_secret\"\nclient_id = \"c\"\n"
                ),
                "needs tenant_id",
            ),
            (
                format!(
                    "{az}account = \"a\"\ncredentials = \"workload_identity\"\ntenant_id = \"t\"\nclient_id = \"c\"\n"
                ),
                "needs token_file",
            ),
            (format!("{az}account = \"a\"\npage_size = 5001\n"), "between 1 and 5000"),
        ];
        for (text, want) in &cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG", "{text}");
            assert!(e.message.contains(want), "{text}: {} lacks {want}", e.message);
            assert!(!e.message.contains("INLINE-SECRET"), "{}", e.message);
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("7 parsecs").is_err());
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert!(parse_size("lots").is_err());
    }
}
