//! The `[[backends]]` entries of `vaultdb.toml`: one [`BackendEntry`] per backend, an enum
//! of per-kind sections (`kind = "fs" | "memory" | "s3" | "minio" | "gcs" | "azure" |
//! "postgres"`), each
//! in its own module with its keys, the checks that need no network, and its mapping onto
//! the backend crate's configuration. Every section has the same common part: `id` (unique
//! and stable: the keyring records it) and an optional display `name`, read through
//! [`BackendEntry::id`] and [`BackendEntry::name`]. (The `section!` macro declares the two
//! fields in each section's struct rather than in a flattened struct: serde's `flatten` does
//! not work with `deny_unknown_fields`, so unknown keys would pass silently, and its
//! buffering loses the line numbers of errors.)
//!
//! [`BackendEntry::build`] reads the secrets the section names, maps the section onto its
//! crate's configuration and builds the backend: offline, and sending nothing (the crates
//! build their clients and load credentials on first use). A backend that cannot be built (a
//! secret variable that is not set, a configuration its crate refuses) is that backend's
//! problem only: it is built as [`Unavailable`], whose every call fails saying why, and a
//! warning naming it is logged, so a store whose other backends still number K opens and
//! serves. (What needs no environment is checked when the file is loaded, by
//! [`BackendEntry::validate`]: a malformed section is still a configuration error.)
//!
//! **Secrets are never written in the file.** A section names the environment variable that
//! holds each secret (`secret_access_key_env`, `access_key_env`, `sas_token_env`,
//! `client_secret_env`, `service_account_json_env`, `password_env`); the variable is read when the backend
//! is prepared, not when the file is loaded, so commands that need no backend
//! (`audit verify`) work without it. Errors name the variable, never its value; the crates'
//! configurations redact secrets in `Debug`, and nothing here logs a configuration.

/// Declares a `[[backends]]` section: `Clone`, `Debug`, deserialized with unknown keys
/// refused, and with the common fields `id` and `name` before its own `$fields`.
macro_rules! section {
    ($(#[$meta:meta])* pub struct $section:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $section {
            /// Backend id: unique, and recorded in the keyring (do not change it later).
            pub id: String,
            /// Human-readable name (default: the id).
            pub name: Option<String>,
            $($fields)*
        }
    };
}

mod azure;
mod fs;
mod gcs;
mod memory;
mod minio;
mod postgres;
mod s3;
pub mod url;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use vaultdb_azure::AzureBackend;
use vaultdb_core::{
    BackendError, BackendResult, Key, KeyPrefix, ListFrom, ListPage, PutMode, StorageBackend,
};
use vaultdb_gcs::GcsBackend;
use vaultdb_minio::MinioBackend;
use vaultdb_postgres::PostgresBackend;
use vaultdb_s3::S3Backend;

use crate::error::one_line;

pub use azure::{
    AzureAuth, AzureSection, CONNECTION_STRING_ENV, DEFAULT_AZURE_CLIENT_SECRET_ENV,
    DEFAULT_AZURE_KEY_ENV, DEFAULT_AZURE_SAS_ENV,
};
pub use fs::FsSection;
pub use gcs::{GcsAuth, GcsSection};
pub use memory::MemorySection;
pub use minio::MinioSection;
pub use postgres::PostgresSection;
pub use s3::{DEFAULT_S3_SECRET_ENV, S3Section};

/// Deserializes the `[[backends]]` array: each entry as its `kind`'s section, or, when it
/// has a `url` and no `kind`, as what the URL stands for ([`url::expand`]) plus the
/// entry's other keys.
pub(crate) fn entries<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<BackendEntry>, D::Error> {
    let tables = Vec::<toml::Table>::deserialize(d)?;
    tables
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            entry(t).map_err(|e| serde::de::Error::custom(format!("backend #{}: {e}", i + 1)))
        })
        .collect()
}

/// The backends of `VAULTDB_BACKENDS`: URLs separated by spaces or commas, in share order,
/// each with the id `vaultdb init --backend` would give it ([`url::unique_id`]: a second
/// backend of one place gets `-2`, ...).
///
/// # Errors
/// A URL that does not expand to a valid entry.
pub fn from_urls(urls: &str) -> Result<Vec<BackendEntry>, String> {
    let mut out: Vec<BackendEntry> = Vec::new();
    for u in urls.split(|c: char| c == ',' || c.is_whitespace()).filter(|u| !u.is_empty()) {
        let id = url::unique_id(u, |id| out.iter().any(|b| b.id() == id))?;
        let mut t = toml::Table::new();
        t.insert("id".into(), toml::Value::String(id));
        t.insert("url".into(), toml::Value::String(u.to_owned()));
        out.push(entry(t)?);
    }
    Ok(out)
}

/// One `[[backends]]` entry ([`entries`]).
fn entry(mut t: toml::Table) -> Result<BackendEntry, String> {
    // With `kind = "postgres"`, `url` is that kind's own key (libpq's connection URL).
    let kind = t.get("kind").and_then(toml::Value::as_str);
    if kind != Some("postgres")
        && let Some(url) = t.remove("url")
    {
        let url = url.as_str().ok_or("url must be a string")?.to_owned();
        if t.contains_key("kind") {
            return Err("give kind or url, not both".into());
        }
        for (k, v) in url::expand(&url)? {
            if t.contains_key(&k) {
                return Err(format!("{k} is given twice: by url {url:?} and by its own key"));
            }
            t.insert(k, v);
        }
    }
    BackendEntry::deserialize(toml::Value::Table(t)).map_err(|e| one_line(&e.to_string()))
}

/// Looks up an environment variable: `None` if unset or empty. Passed in, so that the
/// mapping can be tested without touching the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One `[[backends]]` entry: the section of its `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackendEntry {
    /// A local directory (crate vaultdb-fs).
    Fs(FsSection),
    /// In-process memory: every process starts empty. For tests and demos of `serve`.
    Memory(MemorySection),
    /// Amazon S3 or an S3-compatible store (crate vaultdb-s3).
    S3(S3Section),
    /// MinIO or another self-hosted S3-compatible store (crate vaultdb-minio).
    Minio(MinioSection),
    /// Google Cloud Storage (crate vaultdb-gcs).
    Gcs(GcsSection),
    /// Azure Blob Storage (crate vaultdb-azure).
    Azure(AzureSection),
    /// A PostgreSQL table (crate vaultdb-postgres).
    Postgres(PostgresSection),
}

/// `$e` for the section `$s` of whatever kind `$entry` is (every section has the common
/// fields `id` and `name`).
macro_rules! any_section {
    ($entry:expr, $s:ident => $e:expr) => {
        match $entry {
            BackendEntry::Fs($s) => $e,
            BackendEntry::Memory($s) => $e,
            BackendEntry::S3($s) => $e,
            BackendEntry::Minio($s) => $e,
            BackendEntry::Gcs($s) => $e,
            BackendEntry::Azure($s) => $e,
            BackendEntry::Postgres($s) => $e,
        }
    };
}

impl BackendEntry {
    /// The backend id.
    pub fn id(&self) -> &str {
        any_section!(self, s => &s.id)
    }

    /// The display name: `name`, or the id when there is none.
    pub fn name(&self) -> &str {
        any_section!(self, s => &s.name).as_deref().unwrap_or_else(|| self.id())
    }

    /// The `kind` as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fs(_) => "fs",
            Self::Memory(_) => "memory",
            Self::S3(_) => "s3",
            Self::Minio(_) => "minio",
            Self::Gcs(_) => "gcs",
            Self::Azure(_) => "azure",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Where the backend keeps its objects, for messages: a path for `fs`, a URL for the
    /// clouds (`s3://bucket/prefix`, `gs://...`, `az://account/container/...`, MinIO's
    /// endpoint and bucket). Holds no secret.
    pub fn location(&self) -> String {
        fn join(base: String, prefix: &str) -> String {
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() { base } else { format!("{base}/{prefix}") }
        }
        match self {
            Self::Fs(s) => s.path.display().to_string(),
            Self::Memory(_) => "memory".to_owned(),
            Self::S3(s) => match &s.endpoint {
                Some(e) => join(format!("{}/{}", e.trim_end_matches('/'), s.bucket), &s.prefix),
                None => join(format!("s3://{}", s.bucket), &s.prefix),
            },
            Self::Minio(s) => {
                join(format!("{}/{}", s.endpoint.trim_end_matches('/'), s.bucket), &s.prefix)
            }
            Self::Gcs(s) => join(format!("gs://{}", s.bucket), &s.prefix),
            Self::Azure(s) => join(
                format!(
                    "az://{}/{}",
                    s.account.as_deref().unwrap_or("devstoreaccount1"),
                    s.container
                ),
                &s.prefix,
            ),
            // The URL without its query (a password in it is refused at load), and the table.
            Self::Postgres(s) => format!(
                "{} table {}",
                s.url.split('?').next().unwrap_or_default(),
                s.table.as_deref().unwrap_or("vaultdb_objects")
            ),
        }
    }

    /// Checks the kind-specific fields (no environment, no network).
    ///
    /// # Errors
    /// `backend "<id>" (<kind>): <what is wrong>`.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Fs(s) => s.validate(),
            Self::Memory(_) => Ok(()),
            Self::S3(s) => s.validate(),
            Self::Minio(s) => s.validate(),
            Self::Gcs(s) => s.validate(),
            Self::Azure(s) => s.validate(),
            Self::Postgres(s) => s.validate(),
        }
    }

    /// Makes the entry's relative paths absolute: an `fs` path against `data_dir`, key and
    /// token files against `base` (the configuration file's directory).
    pub(crate) fn resolve_paths(&mut self, data_dir: &Path, base: &Path) {
        let (path, against) = match self {
            Self::Fs(s) => (Some(&mut s.path), data_dir),
            Self::Gcs(s) => (s.service_account_file.as_mut(), base),
            Self::Azure(s) => (s.token_file.as_mut(), base),
            Self::Memory(_) | Self::S3(_) | Self::Minio(_) | Self::Postgres(_) => (None, base),
        };
        if let Some(path) = path
            && path.is_relative()
            && !path.as_os_str().is_empty()
        {
            *path = against.join(&*path);
        }
    }

    /// Builds the backend, with the secrets the section names read from `env`. Offline:
    /// nothing is sent, no credentials are loaded. Never fails: a backend that cannot be
    /// built (a secret variable that is not set, a configuration its crate refuses, say a
    /// plain `http://` endpoint without `allow_http`) is built as [`Unavailable`], whose every
    /// call fails saying why, and a warning naming the backend is logged. One backend that
    /// cannot be built must not stop a store whose other backends still number K (reads) or
    /// the write quorum (writes); `status` shows its error. The reason is the crate's
    /// message or the name of the missing variable, never a secret.
    pub fn build(&self, env: Env<'_>) -> Arc<dyn StorageBackend> {
        let (id, name) = (self.id().to_owned(), self.name().to_owned());
        let built: Result<Arc<dyn StorageBackend>, String> = match self {
            Self::Fs(s) => Ok(s.build(id.clone(), name.clone())),
            Self::Memory(_) => Ok(memory::build(id.clone(), name.clone())),
            Self::S3(s) => self.build_from(s.to_config(env), S3Backend::new),
            Self::Minio(s) => self.build_from(s.to_config(env), MinioBackend::new),
            Self::Gcs(s) => self.build_from(s.to_config(env), GcsBackend::new),
            Self::Azure(s) => self.build_from(s.to_config(env), AzureBackend::new),
            Self::Postgres(s) => self.build_from(s.to_config(env), PostgresBackend::new),
        };
        built.unwrap_or_else(|reason| {
            tracing::warn!(
                backend = %id,
                kind = self.kind(),
                "backend cannot be built; it fails every call until the configuration is \
                 fixed: {reason}"
            );
            Unavailable::shared(id, name, reason)
        })
    }

    /// The backend its crate's constructor `new` builds from `config` (the section's crate
    /// configuration, or why there is none). A crate's refusal reads `backend "id" (kind):
    /// <its message>`.
    fn build_from<C, B: StorageBackend + 'static>(
        &self,
        config: Result<C, String>,
        new: impl FnOnce(String, String, C) -> BackendResult<B>,
    ) -> Result<Arc<dyn StorageBackend>, String> {
        let backend = new(self.id().to_owned(), self.name().to_owned(), config?)
            .map_err(|e| err(self.id(), self.kind(), e.message()))?;
        Ok(Arc::new(backend))
    }
}

/// A backend that cannot work as configured (a secret variable is not set, or its crate
/// refused the configuration): every call fails with a
/// [`Permanent`](vaultdb_core::BackendErrorKind::Permanent) error saying why, so that
/// `status` names it and the store opens and serves with the other backends.
#[derive(Debug)]
pub struct Unavailable {
    id: String,
    name: String,
    reason: String,
}

impl Unavailable {
    /// A backend `id` that fails every call with `reason` (no secret in it), shared.
    pub fn shared(id: String, name: String, reason: String) -> Arc<dyn StorageBackend> {
        Arc::new(Self { id, name, reason })
    }

    fn error(&self) -> BackendError {
        BackendError::permanent(self.reason.clone())
    }
}

#[async_trait]
impl StorageBackend for Unavailable {
    vaultdb_core::backend_identity!();
    async fn put(&self, _: &Key, _: Bytes, _: PutMode) -> Result<(), BackendError> {
        Err(self.error())
    }
    async fn get(&self, _: &Key, _: u64) -> Result<Option<Bytes>, BackendError> {
        Err(self.error())
    }
    async fn delete(&self, _: &Key) -> Result<(), BackendError> {
        Err(self.error())
    }
    async fn list_page(&self, _: &KeyPrefix, _: ListFrom) -> Result<ListPage, BackendError> {
        Err(self.error())
    }
}

/// `backend "id" (kind): what`.
fn err(id: &str, kind: &str, what: impl std::fmt::Display) -> String {
    format!("backend {id:?} ({kind}): {what}")
}

fn nonempty(id: &str, kind: &str, key: &str, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err(err(id, kind, format_args!("{key} must not be empty")))
    } else {
        Ok(())
    }
}

fn opt_nonempty(id: &str, kind: &str, key: &str, v: Option<&str>) -> Result<(), String> {
    v.map_or(Ok(()), |v| nonempty(id, kind, key, v))
}

fn url_like(id: &str, kind: &str, endpoint: &str) -> Result<(), String> {
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(err(id, kind, "endpoint must start with http:// or https://"))
    }
}

fn page_size(id: &str, kind: &str, v: Option<usize>, max: usize) -> Result<(), String> {
    match v {
        Some(n) if n == 0 || n > max => {
            Err(err(id, kind, format_args!("page_size must be between 1 and {max}")))
        }
        _ => Ok(()),
    }
}

/// Reads the variable `var` that `key` names, for backend `id`.
fn from_env(env: Env<'_>, id: &str, kind: &str, key: &str, var: &str) -> Result<String, String> {
    env(var).ok_or_else(|| {
        err(id, kind, format_args!("{key} names the environment variable {var}, which is not set"))
    })
}

#[cfg(test)]
mod tests;
