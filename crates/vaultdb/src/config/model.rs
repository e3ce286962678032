//! The model of `vaultdb.toml`: the whole file ([`Config`]) and its tables. Unknown keys
//! are errors everywhere.

use std::path::PathBuf;

use serde::Deserialize;
use vaultdb_core::{CallPolicy, Settings};

use super::backends::BackendEntry;
use super::units::{ByteSize, Dur, ModeSetting, OptDur, PaddingSetting};
use super::{DEFAULT_BODY_LIMIT, DEFAULT_LISTEN, DEFAULT_REQUEST_TIMEOUT};
use crate::auth::Role;

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
    /// The storage mode of a new store, and the one an existing store must have (default:
    /// a new store is `shamir`, an existing one opens in its own mode).
    #[serde(default)]
    pub mode: Option<ModeSetting>,
    /// Key prefix in every backend.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Segment size for large records (default 4 MiB).
    #[serde(default)]
    pub segment_size: Option<ByteSize>,
    /// The client's in-flight byte budget (default 64 MiB).
    #[serde(default)]
    pub max_inflight: Option<ByteSize>,
    /// The largest record a put accepts (default 256 MiB): also the limit of `vaultdb put`
    /// and of the server's raw puts, which stream.
    #[serde(default)]
    pub max_record_size: Option<ByteSize>,
    /// Base directory for relative fs paths and the default audit log.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Backend call timeouts and retries.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// The REST server.
    #[serde(default)]
    pub server: ServerConfig,
    /// The audit log's policy (its path is `server.audit_log`).
    #[serde(default)]
    pub audit: AuditConfig,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// The N backends, in share order (each by `kind`, or by `url`).
    #[serde(default, deserialize_with = "super::backends::entries")]
    pub backends: Vec<BackendEntry>,
}

fn default_retain() -> usize {
    1
}
fn default_prefix() -> String {
    vaultdb_core::client::DEFAULT_PREFIX.to_owned()
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
    /// How often a client re-reads its store's re-share notices (default 10 s); every client
    /// of a store must use the same value (`vaultdb reshare` waits out twice it).
    #[serde(default)]
    pub fence_check: Option<Dur>,
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
            fence_check: None,
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
    /// Per-request timeout; also how long a request's header may take to arrive.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Dur,
    /// The most connections open at once (TLS handshakes included); more wait.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The audit log; default `<data_dir>/audit.jsonl`.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// Listen beyond loopback over plain HTTP (bearer tokens then cross the network in the
    /// clear): refused unless set.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by these CA certificates (PEM); needs `tls_cert`.
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
    /// How often the TLS files are looked at for a change (which reloads them), or `"off"`
    /// (SIGHUP only).
    #[serde(default = "default_tls_reload_interval")]
    pub tls_reload_interval: OptDur,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}
fn default_body_limit() -> ByteSize {
    ByteSize(DEFAULT_BODY_LIMIT)
}
fn default_tls_reload_interval() -> OptDur {
    OptDur(Some(crate::server::tls::DEFAULT_RELOAD_INTERVAL))
}
fn default_max_connections() -> usize {
    crate::server::DEFAULT_MAX_CONNECTIONS
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
            max_connections: default_max_connections(),
            audit_log: None,
            allow_plain_http: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_reload_interval: default_tls_reload_interval(),
        }
    }
}

/// `[audit]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Go on when the audit log cannot be written (warnings only) instead of refusing
    /// operations (the default): operations then run unlogged.
    #[serde(default)]
    pub fail_open: bool,
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
