//! `vaultdb.toml`: the model ([`Config`], module `model`), its value types ([`Dur`],
//! [`ByteSize`], ..., module `units`), the backend entries ([`backends`]), and loading:
//! parsing, environment overrides, validation and paths ([`Loaded`], module `load`).
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

pub mod backends;
mod load;
mod model;
mod units;

use std::time::Duration;

pub use backends::{
    AzureSection, BackendEntry, Env, FsSection, GcsSection, MemorySection, MinioSection, S3Section,
    Unavailable, process_env,
};
pub use load::{Loaded, Source};
pub use model::{AuditConfig, Config, ServerConfig, Timeouts, TokenConfig};
pub use units::{ByteSize, Dur, OptDur, PaddingSetting, parse_duration, parse_size};

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
    (
        "VAULTDB_BACKENDS",
        "the backends, as URLs separated by spaces or commas (replacing the file's), e.g. \
         \"s3://b1 gs://b2 az://account/c3\"",
    ),
    ("VAULTDB_THRESHOLD", "threshold K"),
    ("VAULTDB_WRITE_QUORUM", "write_quorum W"),
    ("VAULTDB_CALL_TIMEOUT", "timeouts.call: the upper bound on one backend call, e.g. 5s"),
    (
        "VAULTDB_FENCE_CHECK",
        "timeouts.fence_check: how often clients look for a re-share's notices (default 10s)",
    ),
    ("VAULTDB_LISTEN", "server.listen, e.g. 127.0.0.1:9000 (port 0 picks a free port)"),
    ("VAULTDB_AUDIT_LOG", "server.audit_log path"),
    (
        "VAULTDB_ALLOW_PLAIN_HTTP",
        "server.allow_plain_http: true to serve plain HTTP beyond loopback (tokens in the clear)",
    ),
    ("VAULTDB_TLS_CERT", "server.tls_cert: serve HTTPS with this certificate chain (PEM)"),
    ("VAULTDB_TLS_KEY", "server.tls_key: the private key of the TLS certificate (PEM)"),
    (
        "VAULTDB_TLS_CLIENT_CA",
        "server.tls_client_ca: require client certificates signed by these CAs (PEM)",
    ),
    (
        "VAULTDB_AUDIT_FAIL_OPEN",
        "audit.fail_open: true to run operations even when the audit log cannot be written",
    ),
    (
        "VAULTDB_RESHARE_FROM",
        "the old configuration file of an unfinished re-share into this store (default: the one \
         `vaultdb reshare` recorded in data_dir/reshare-from)",
    ),
    (
        "VAULTDB_TOKEN",
        "serve only, when no [[tokens]] are configured: accept this admin token instead of \
         generating one",
    ),
    ("VAULTDB_LOG_FORMAT", "text (default) or json: the format of stderr logs (--log-format)"),
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
# VAULTDB_WRITE_QUORUM, VAULTDB_LISTEN, VAULTDB_AUDIT_LOG, VAULTDB_AUDIT_FAIL_OPEN (see
# `vaultdb --help`).

# K: shares needed to rebuild a record (2 <= K <= number of backends).
threshold = 2

# W: backends that must acknowledge a put (K <= W <= N; default N).
# write_quorum = 3

# Versions kept per record after a put (default 1).
retain_versions = 1

# Size padding before splitting, so stored sizes do not reveal exact sizes:
# "padme" (default, at most 12% overhead), "none", "power-of-two", or "block:4096".
padding = "padme"

# Storage mode, chosen when the store is created (kept in its keyring; `vaultdb init
# --mode compact` sets it): "shamir" (default) stores a full-size share on every backend,
# about N times the data, and fewer than K backends learn nothing whatever their computing
# power; "compact" encrypts each record (AES-256) and disperses it with an erasure code,
# about N/K times the data, and fewer than K backends learn nothing as long as AES-256 holds.
# Left unset, an existing store opens in its own mode.
# mode = "shamir"

# Key prefix inside every backend.
prefix = "vaultdb"

# Records larger than this are stored as segments of this size, each with its own MAC, and
# stream in bounded memory (1KiB to 1GiB; default 4MiB).
# segment_size = "4MiB"

# The client's in-flight byte budget: puts and segment reads wait instead of buffering
# more than this (default 64MiB).
# max_inflight = "64MiB"

# The largest record a put accepts, from the command line or the server (default 256MiB).
# max_record_size = "256MiB"

# Relative fs backend paths, and the default audit log, are resolved against this directory
# (itself relative to this file).
data_dir = "vaultdb-data"

[timeouts]
# Upper bound on one backend call ("500ms", "0.05s", "30s", "2m", "1h 30m", "1d").
call = "30s"
# Attempts per backend call, with exponential backoff on transient errors.
attempts = 3
# A read asks one more backend when K shares have not arrived after this long ("off" to
# disable).
hedge_after = "50ms"
# How often a client looks for the notices of a re-share (`vaultdb reshare`), which waits
# twice this plus four of the longest calls: every client of the store must use one value.
# fence_check = "10s"

[server]
# Loopback only by default. To listen beyond loopback, serve HTTPS (tls_cert and tls_key
# below) or put a TLS-terminating proxy in front: over plain HTTP such an address is refused
# unless allow_plain_http = true (tokens would cross the network in the clear).
listen = "127.0.0.1:8080"
# allow_plain_http = false
# HTTPS: the certificate chain and its key (PEM), reloaded on SIGHUP and when they change
# (looked at every tls_reload_interval, "off" for SIGHUP only). With tls_client_ca, clients
# must present a certificate signed by one of its CAs (and still a token).
# tls_cert = "tls/cert.pem"
# tls_key = "tls/key.pem"
# tls_client_ca = "tls/clients-ca.pem"
# tls_reload_interval = "1s"
# Largest JSON request body accepted ("16MiB", or bytes). Raw puts stream, up to
# max_record_size.
body_limit = "16MiB"
# Requests taking longer than this fail with 503 REQUEST_TIMEOUT; a connection whose next
# request header takes longer to arrive is closed.
request_timeout = "30s"
# The most connections open at once (TLS handshakes included); more wait their turn.
# max_connections = 512
# JSON-lines audit log (name tags only, never ids or data), each line authenticated with a
# key derived from the store's and chained to the last, its head checkpointed in the store;
# default audit.jsonl in data_dir. Check it with `vaultdb audit verify`.
# audit_log = "vaultdb-data/audit.jsonl"

[audit]
# When the audit log cannot be written, operations are refused (AUDIT_UNAVAILABLE). true
# runs them anyway, unlogged, with a warning: only where availability matters more than a
# complete log.
fail_open = false

# Three local directories stand in for three independent stores. For real protection give
# each share to a different provider: url = "s3://...", "gs://...", "az://...", or
# kind = "s3" | "minio" | "gcs" | "azure" (see the examples below, and the vaultdb README).
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

/// `text` (the embedded default or [`init_file`]'s) with the storage mode set to `mode`.
pub fn with_mode(text: &str, mode: vaultdb_core::Mode) -> String {
    text.replacen("# mode = \"shamir\"", &format!("mode = \"{mode}\""), 1)
}

/// `text` (the embedded default or [`init_file`]'s) with the key prefix set to `prefix`.
pub fn with_prefix(text: &str, prefix: &str) -> String {
    let line = format!("prefix = {}", toml::Value::String(prefix.to_owned()));
    text.replacen("\nprefix = \"vaultdb\"\n", &format!("\n{line}\n"), 1)
}

/// Commented examples of a `[[backends]]` entry of every kind, in the file `vaultdb init`
/// writes.
pub const BACKEND_EXAMPLES: &str = r#"
# Backend examples, one per kind. Each is a URL (url = "...", query parameters set more keys)
# or kind = "..." with its keys; the vaultdb README ("Backends") lists every key. The `id` is
# recorded in the store's keyring: keep it, and the order of the entries, once data is stored.
#
# [[backends]]                # a local directory (relative: under data_dir)
# id = "disk-1"
# url = "file://disk-1"       # or file:///srv/vaultdb/disk-1
#
# [[backends]]                # Amazon S3. Region: ?region=, else AWS_REGION, AWS_DEFAULT_REGION
# id = "aws"                  # or the profile's. Credentials: the AWS chain (environment,
# url = "s3://my-bucket/vaultdb?region=eu-west-1"  # profile, web identity, ECS, EC2)
# profile = "vault"           # an AWS profile of this backend's own (SSO: aws sso login)
#
# [[backends]]                # Google Cloud Storage; Application Default Credentials
# id = "gcp"                  # (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth, metadata server)
# url = "gs://my-bucket/vaultdb"
#
# [[backends]]                # Azure Blob; AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY,
# id = "azure"                # a service principal or a managed identity (credentials = "...")
# url = "az://myaccount/mycontainer/vaultdb"
#
# [[backends]]                # MinIO or another S3-compatible server (s3+https:// for S3's own
# id = "minio"                # client with path-style addressing)
# url = "minio+https://minio.example.com:9000/my-bucket/vaultdb"
# access_key_id = "vaultdb"
# secret_access_key_env = "MINIO_SECRET_KEY"
#
# [[backends]]                # PostgreSQL: rows in a table (libpq's URL and sslmode;
# id = "pg"                   # the password from the variable password_env names)
# url = "postgres://vaultdb@db.example.com:5432/vaultdb?sslmode=verify-full"
# password_env = "VAULTDB_PG_PASSWORD"
#
# [[backends]]                # in memory: every process starts empty (tests only)
# id = "scratch"
# url = "memory://"
"#;

/// The file `vaultdb init` writes: the default plus one admin token's hash.
pub fn init_file(token_name: &str, token_sha256_hex: &str) -> String {
    init_file_with(None, &[], token_name, token_sha256_hex)
}

/// The file `vaultdb init` writes: the default's settings with `threshold` (if given), the
/// `backends` given as `(id, url)` (none: the default's three fs backends), commented
/// examples of every kind ([`BACKEND_EXAMPLES`]) and one admin token's hash.
pub fn init_file_with(
    threshold: Option<usize>,
    backends: &[(String, String)],
    token_name: &str,
    token_sha256_hex: &str,
) -> String {
    let marker = "# Three local directories stand in";
    let (settings, default_backends) =
        DEFAULT_CONFIG.split_at(DEFAULT_CONFIG.find(marker).unwrap_or(DEFAULT_CONFIG.len()));
    let mut text = match threshold {
        Some(k) => settings.replacen("\nthreshold = 2\n", &format!("\nthreshold = {k}\n"), 1),
        None => settings.to_owned(),
    };
    if backends.is_empty() {
        text.push_str(default_backends);
    } else {
        text.push_str("# The backends, in share order: give each share to a different provider.\n");
        for (id, url) in backends {
            text.push_str(&format!(
                "[[backends]]\nid = {}\nurl = {}\n\n",
                toml::Value::String(id.clone()),
                toml::Value::String(url.clone())
            ));
        }
    }
    text.push_str(BACKEND_EXAMPLES);
    text.push_str(&format!(
        "\n# API tokens for `vaultdb serve`, stored as SHA-256 hashes only. Roles: read \
         (GET), write (also PUT/POST/DELETE), admin (also status and repair). Add one with the \
         token's hash: printf %s \"$TOKEN\" | sha256sum\n[[tokens]]\nname = \"{token_name}\"\nrole = \
         \"admin\"\nsha256 = \"{token_sha256_hex}\"\n"
    ));
    text
}
