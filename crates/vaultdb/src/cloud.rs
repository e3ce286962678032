//! The cloud `[[backends]]` sections of `vaultdb.toml` (`kind = "s3" | "minio" | "gcs" |
//! "azure"`): their keys, the checks that need no network, and their mapping onto each
//! backend crate's configuration ([`S3Config`], [`MinioConfig`], [`GcsConfig`],
//! [`AzureConfig`]).
//!
//! **Secrets are never written in the file.** A section names the environment variable that
//! holds each secret (`secret_access_key_env`, `access_key_env`, `sas_token_env`,
//! `client_secret_env`, `service_account_json_env`); the variable is read when the backend
//! is built, not when the file is loaded, so commands that need no backend (`audit verify`)
//! work without it. Errors name the variable, never its value; the crates' configurations
//! redact secrets in `Debug`, and nothing here logs a configuration.

use std::path::PathBuf;

use serde::Deserialize;
use vaultdb_azure::{AzureConfig, AzureCredentials};
use vaultdb_gcs::{GcsConfig, GcsCredentials};
use vaultdb_minio::MinioConfig;
use vaultdb_s3::{S3Config, S3Credentials};

use crate::config::Dur;

/// Looks up an environment variable: `None` if unset or empty. Passed in, so that the
/// mapping can be tested without touching the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where an S3 secret access key is read from when `secret_access_key_env` is not set.
pub const DEFAULT_S3_SECRET_ENV: &str = "AWS_SECRET_ACCESS_KEY";
/// Where an Azure account key is read from when `access_key_env` is not set.
pub const DEFAULT_AZURE_KEY_ENV: &str = "AZURE_STORAGE_ACCOUNT_KEY";
/// Where an Azure SAS token is read from when `sas_token_env` is not set.
pub const DEFAULT_AZURE_SAS_ENV: &str = "AZURE_STORAGE_SAS_TOKEN";
/// Where an Azure client secret is read from when `client_secret_env` is not set.
pub const DEFAULT_AZURE_CLIENT_SECRET_ENV: &str = "AZURE_CLIENT_SECRET";

/// `kind = "s3"`: Amazon S3 or an S3-compatible store ([`S3Config`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// Backend id (unique; recorded in the keyring).
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// The bucket (must exist).
    pub bucket: String,
    /// Key prefix ("folder") inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// Region requests are signed for (default `us-east-1`).
    pub region: Option<String>,
    /// Custom endpoint URL (S3-compatible stores, emulators, VPC endpoints).
    pub endpoint: Option<String>,
    /// Path-style addressing.
    #[serde(default)]
    pub force_path_style: bool,
    /// Accept an `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// The SDK's optional checksums on every request.
    #[serde(default)]
    pub strict_checksums: bool,
    /// Keys per listing page (1 to 1000).
    pub page_size: Option<usize>,
    /// Static credentials: the access key id (not secret).
    pub access_key_id: Option<String>,
    /// Static credentials: the variable holding the access key id.
    pub access_key_id_env: Option<String>,
    /// Static credentials: the variable holding the secret key (default
    /// `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key_env: Option<String>,
    /// Static credentials: the variable holding a session token (none by default).
    pub session_token_env: Option<String>,
}

/// `kind = "minio"`: MinIO or another self-hosted S3-compatible store ([`MinioConfig`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinioSection {
    /// Backend id.
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// The server's URL (required).
    pub endpoint: String,
    /// The bucket (must exist).
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// Region requests are signed for (default `us-east-1`).
    pub region: Option<String>,
    /// Accept plain `http://` on hosts other than loopback.
    #[serde(default)]
    pub allow_http: bool,
    /// Keys per listing page (1 to 1000).
    pub page_size: Option<usize>,
    /// The access key (not secret).
    pub access_key_id: Option<String>,
    /// The variable holding the access key.
    pub access_key_id_env: Option<String>,
    /// The variable holding the secret key (default `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key_env: Option<String>,
    /// The variable holding a session token (none by default).
    pub session_token_env: Option<String>,
}

/// GCS authentication, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GcsAuth {
    /// Application Default Credentials.
    Default,
    /// No authentication (emulators, public buckets).
    Anonymous,
    /// A service account key (`service_account_file` or `service_account_json_env`).
    ServiceAccount,
}

/// `kind = "gcs"`: Google Cloud Storage ([`GcsConfig`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsSection {
    /// Backend id.
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// The bucket (must exist).
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// JSON API endpoint (default Google's; an emulator's URL for tests).
    pub endpoint: Option<String>,
    /// Accept an `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// Keys per listing page (1 to 1000).
    pub page_size: Option<usize>,
    /// `"default"` (Application Default Credentials), `"anonymous"` or
    /// `"service_account"`; implied by the service account keys.
    pub credentials: Option<GcsAuth>,
    /// A service account key file (relative: against the configuration file's directory).
    #[serde(alias = "credentials_file")]
    pub service_account_file: Option<PathBuf>,
    /// The variable holding a service account key's JSON.
    pub service_account_json_env: Option<String>,
}

/// Azure authentication, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureAuth {
    /// object_store's choice from the `AZURE_*` variables.
    Environment,
    /// The account's shared key, from `access_key_env`.
    AccessKey,
    /// A SAS token, from `sas_token_env`.
    Sas,
    /// A managed identity (`client_id` for a user-assigned one).
    ManagedIdentity,
    /// A service principal: `tenant_id`, `client_id`, secret from `client_secret_env`.
    ClientSecret,
    /// AKS workload identity: `tenant_id`, `client_id`, `token_file`.
    WorkloadIdentity,
    /// The Azure CLI's logged-in account.
    AzureCli,
}

impl AzureAuth {
    fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::AccessKey => "access_key",
            Self::Sas => "sas",
            Self::ManagedIdentity => "managed_identity",
            Self::ClientSecret => "client_secret",
            Self::WorkloadIdentity => "workload_identity",
            Self::AzureCli => "azure_cli",
        }
    }
}

/// `kind = "azure"`: Azure Blob Storage ([`AzureConfig`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSection {
    /// Backend id.
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// Storage account (required unless `emulator`).
    pub account: Option<String>,
    /// The container (must exist).
    pub container: String,
    /// Key prefix inside the container.
    #[serde(default)]
    pub prefix: String,
    /// Custom blob endpoint (private endpoints, sovereign clouds, Azurite by URL).
    pub endpoint: Option<String>,
    /// Azurite mode: its account and well-known key, URL from `AZURITE_BLOB_STORAGE_URL`.
    #[serde(default)]
    pub emulator: bool,
    /// Accept an `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// Blobs per listing page (1 to 5000).
    pub page_size: Option<usize>,
    /// Timeout of one HTTP request.
    pub timeout: Option<Dur>,
    /// How requests are authorized (default `"environment"`, or the Azurite key with
    /// `emulator = true`).
    pub credentials: Option<AzureAuth>,
    /// `access_key`: the variable holding the account key.
    pub access_key_env: Option<String>,
    /// `sas`: the variable holding the SAS token.
    pub sas_token_env: Option<String>,
    /// `client_secret`: the variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// `client_secret`, `workload_identity`: the Entra ID tenant.
    pub tenant_id: Option<String>,
    /// `managed_identity` (user-assigned), `client_secret`, `workload_identity`: the client id.
    pub client_id: Option<String>,
    /// `workload_identity`: the federated token file.
    pub token_file: Option<PathBuf>,
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

pub(crate) fn url_like(id: &str, kind: &str, endpoint: &str) -> Result<(), String> {
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

/// The static-key fields shared by `s3` and `minio`.
struct StaticKeys<'a> {
    id: &'a str,
    kind: &'a str,
    access_key_id: Option<&'a str>,
    access_key_id_env: Option<&'a str>,
    secret_access_key_env: Option<&'a str>,
    session_token_env: Option<&'a str>,
}

impl StaticKeys<'_> {
    fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id, self.kind);
        opt_nonempty(id, kind, "access_key_id", self.access_key_id)?;
        opt_nonempty(id, kind, "access_key_id_env", self.access_key_id_env)?;
        opt_nonempty(id, kind, "secret_access_key_env", self.secret_access_key_env)?;
        opt_nonempty(id, kind, "session_token_env", self.session_token_env)?;
        if self.access_key_id.is_some() && self.access_key_id_env.is_some() {
            return Err(err(id, kind, "set access_key_id or access_key_id_env, not both"));
        }
        if self.access_key_id.is_none() && self.access_key_id_env.is_none() {
            for (key, v) in [
                ("secret_access_key_env", self.secret_access_key_env),
                ("session_token_env", self.session_token_env),
            ] {
                if v.is_some() {
                    return Err(err(
                        id,
                        kind,
                        format_args!(
                            "{key} needs access_key_id or access_key_id_env (without them the \
                             AWS credential chain is used)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Static credentials when an access key is configured, else the credential chain.
    fn resolve(&self, env: Env<'_>) -> Result<S3Credentials, String> {
        let (id, kind) = (self.id, self.kind);
        let access_key_id = match (self.access_key_id, self.access_key_id_env) {
            (Some(k), _) => k.to_owned(),
            (None, Some(var)) => from_env(env, id, kind, "access_key_id_env", var)?,
            (None, None) => return Ok(S3Credentials::Chain),
        };
        let secret_var = self.secret_access_key_env.unwrap_or(DEFAULT_S3_SECRET_ENV);
        let secret_access_key = env(secret_var).ok_or_else(|| {
            err(
                id,
                kind,
                format_args!(
                    "the secret access key is read from the environment variable {secret_var} \
                     (secret_access_key_env), which is not set"
                ),
            )
        })?;
        let session_token = match self.session_token_env {
            Some(var) => Some(from_env(env, id, kind, "session_token_env", var)?),
            None => None,
        };
        Ok(S3Credentials::Static { access_key_id, secret_access_key, session_token })
    }
}

impl S3Section {
    fn keys(&self) -> StaticKeys<'_> {
        StaticKeys {
            id: &self.id,
            kind: "s3",
            access_key_id: self.access_key_id.as_deref(),
            access_key_id_env: self.access_key_id_env.as_deref(),
            secret_access_key_env: self.secret_access_key_env.as_deref(),
            session_token_env: self.session_token_env.as_deref(),
        }
    }

    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id.as_str(), "s3");
        nonempty(id, kind, "bucket", &self.bucket)?;
        opt_nonempty(id, kind, "region", self.region.as_deref())?;
        if let Some(e) = &self.endpoint {
            url_like(id, kind, e)?;
        }
        page_size(id, kind, self.page_size, 1000)?;
        self.keys().validate()
    }

    /// The [`S3Config`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<S3Config, String> {
        let mut c = S3Config::new(self.bucket.clone())
            .with_prefix(self.prefix.clone())
            .with_path_style(self.force_path_style)
            .with_allow_http(self.allow_http)
            .with_credentials(self.keys().resolve(env)?);
        if let Some(r) = &self.region {
            c = c.with_region(r.clone());
        }
        if let Some(e) = &self.endpoint {
            c = c.with_endpoint(e.clone());
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c.strict_checksums = self.strict_checksums;
        Ok(c)
    }
}

impl MinioSection {
    fn keys(&self) -> StaticKeys<'_> {
        StaticKeys {
            id: &self.id,
            kind: "minio",
            access_key_id: self.access_key_id.as_deref(),
            access_key_id_env: self.access_key_id_env.as_deref(),
            secret_access_key_env: self.secret_access_key_env.as_deref(),
            session_token_env: self.session_token_env.as_deref(),
        }
    }

    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id.as_str(), "minio");
        nonempty(id, kind, "bucket", &self.bucket)?;
        url_like(id, kind, &self.endpoint)?;
        opt_nonempty(id, kind, "region", self.region.as_deref())?;
        page_size(id, kind, self.page_size, 1000)?;
        self.keys().validate()
    }

    /// The [`MinioConfig`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<MinioConfig, String> {
        let mut c = MinioConfig::new(self.endpoint.clone(), self.bucket.clone(), "", "")
            .with_prefix(self.prefix.clone())
            .with_allow_http(self.allow_http);
        c.credentials = self.keys().resolve(env)?;
        if let Some(r) = &self.region {
            c.region = r.clone();
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        Ok(c)
    }
}

impl GcsSection {
    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id.as_str(), "gcs");
        nonempty(id, kind, "bucket", &self.bucket)?;
        if let Some(e) = &self.endpoint {
            url_like(id, kind, e)?;
        }
        page_size(id, kind, self.page_size, 1000)?;
        opt_nonempty(
            id,
            kind,
            "service_account_json_env",
            self.service_account_json_env.as_deref(),
        )?;
        if let Some(p) = &self.service_account_file {
            nonempty(id, kind, "service_account_file", &p.to_string_lossy())?;
        }
        let keyed = self.service_account_file.is_some() || self.service_account_json_env.is_some();
        if self.service_account_file.is_some() && self.service_account_json_env.is_some() {
            return Err(err(
                id,
                kind,
                "set service_account_file or service_account_json_env, not both",
            ));
        }
        match (self.credentials, keyed) {
            (Some(GcsAuth::ServiceAccount), false) => Err(err(
                id,
                kind,
                "credentials = \"service_account\" needs service_account_file or \
                 service_account_json_env",
            )),
            (Some(GcsAuth::Default | GcsAuth::Anonymous), true) => Err(err(
                id,
                kind,
                "service_account_file and service_account_json_env go with credentials = \
                 \"service_account\" (or no credentials key)",
            )),
            _ => Ok(()),
        }
    }

    /// The [`GcsConfig`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<GcsConfig, String> {
        let (id, kind) = (self.id.as_str(), "gcs");
        let credentials =
            match (&self.service_account_file, &self.service_account_json_env, self.credentials) {
                (Some(path), _, _) => GcsCredentials::ServiceAccountFile(path.clone()),
                (None, Some(var), _) => GcsCredentials::ServiceAccountJson(from_env(
                    env,
                    id,
                    kind,
                    "service_account_json_env",
                    var,
                )?),
                (None, None, Some(GcsAuth::Anonymous)) => GcsCredentials::Anonymous,
                (None, None, _) => GcsCredentials::Default,
            };
        let mut c = GcsConfig::new(self.bucket.clone())
            .with_prefix(self.prefix.clone())
            .with_credentials(credentials);
        if let Some(e) = &self.endpoint {
            c = c.with_endpoint(e.clone());
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c.allow_http = self.allow_http;
        Ok(c)
    }
}

impl AzureSection {
    /// The credentials in effect (`credentials`, else the emulator key or the environment).
    fn auth(&self) -> Option<AzureAuth> {
        match self.credentials {
            Some(a) => Some(a),
            None if self.emulator => None,
            None => Some(AzureAuth::Environment),
        }
    }

    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        use AzureAuth::{AccessKey, ClientSecret, ManagedIdentity, Sas, WorkloadIdentity};
        let (id, kind) = (self.id.as_str(), "azure");
        match &self.account {
            Some(a) => nonempty(id, kind, "account", a)?,
            None if self.emulator => {}
            None => {
                return Err(err(id, kind, "account is required (unless emulator = true)"));
            }
        }
        nonempty(id, kind, "container", &self.container)?;
        if let Some(e) = &self.endpoint {
            url_like(id, kind, e)?;
            if self.emulator {
                return Err(err(
                    id,
                    kind,
                    "endpoint does not go with emulator = true (Azurite's URL comes from \
                     AZURITE_BLOB_STORAGE_URL)",
                ));
            }
        }
        page_size(id, kind, self.page_size, 5000)?;
        if self.timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(err(id, kind, "timeout must be more than 0"));
        }
        let fields: [(&str, Option<String>, &[AzureAuth]); 6] = [
            ("access_key_env", self.access_key_env.clone(), &[AccessKey]),
            ("sas_token_env", self.sas_token_env.clone(), &[Sas]),
            ("client_secret_env", self.client_secret_env.clone(), &[ClientSecret]),
            ("tenant_id", self.tenant_id.clone(), &[ClientSecret, WorkloadIdentity]),
            (
                "client_id",
                self.client_id.clone(),
                &[ManagedIdentity, ClientSecret, WorkloadIdentity],
            ),
            (
                "token_file",
                self.token_file.as_ref().map(|p| p.to_string_lossy().into_owned()),
                &[WorkloadIdentity],
            ),
        ];
        let auth = self.auth();
        for (key, value, allowed) in &fields {
            let Some(v) = value else { continue };
            nonempty(id, kind, key, v)?;
            if !auth.is_some_and(|a| allowed.contains(&a)) {
                let names: Vec<String> =
                    allowed.iter().map(|a| format!("\"{}\"", a.as_str())).collect();
                return Err(err(
                    id,
                    kind,
                    format_args!("{key} goes with credentials = {}", names.join(" or ")),
                ));
            }
        }
        let needs: &[&str] = match auth {
            Some(ClientSecret) => &["tenant_id", "client_id"],
            Some(WorkloadIdentity) => &["tenant_id", "client_id", "token_file"],
            _ => &[],
        };
        for key in needs {
            if fields.iter().any(|(k, v, _)| k == key && v.is_none()) {
                return Err(err(
                    id,
                    kind,
                    format_args!(
                        "credentials = \"{}\" needs {key}",
                        auth.map_or("", AzureAuth::as_str)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The [`AzureConfig`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<AzureConfig, String> {
        let (id, kind) = (self.id.as_str(), "azure");
        let var = |key: &str, set: &Option<String>, default: &str| {
            let name = set.as_deref().unwrap_or(default);
            env(name).ok_or_else(|| {
                err(
                    id,
                    kind,
                    format_args!("{key} names the environment variable {name}, which is not set"),
                )
            })
        };
        let mut c = if self.emulator {
            AzureConfig::azurite(self.container.clone())
        } else {
            AzureConfig::new(self.account.clone().unwrap_or_default(), self.container.clone())
        };
        if let Some(a) = &self.account {
            c.account = a.clone();
        }
        let credentials = match self.auth() {
            // Emulator mode without credentials: Azurite's well-known key, set by azurite().
            None => None,
            Some(AzureAuth::Environment) => Some(AzureCredentials::Environment),
            Some(AzureAuth::AccessKey) => Some(AzureCredentials::AccessKey(var(
                "access_key_env",
                &self.access_key_env,
                DEFAULT_AZURE_KEY_ENV,
            )?)),
            Some(AzureAuth::Sas) => Some(AzureCredentials::Sas(var(
                "sas_token_env",
                &self.sas_token_env,
                DEFAULT_AZURE_SAS_ENV,
            )?)),
            Some(AzureAuth::ManagedIdentity) => {
                Some(AzureCredentials::ManagedIdentity { client_id: self.client_id.clone() })
            }
            Some(AzureAuth::ClientSecret) => Some(AzureCredentials::ClientSecret {
                tenant_id: self.tenant_id.clone().unwrap_or_default(),
                client_id: self.client_id.clone().unwrap_or_default(),
                client_secret: var(
                    "client_secret_env",
                    &self.client_secret_env,
                    DEFAULT_AZURE_CLIENT_SECRET_ENV,
                )?,
            }),
            Some(AzureAuth::WorkloadIdentity) => Some(AzureCredentials::WorkloadIdentity {
                tenant_id: self.tenant_id.clone().unwrap_or_default(),
                client_id: self.client_id.clone().unwrap_or_default(),
                token_file: self
                    .token_file
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            }),
            Some(AzureAuth::AzureCli) => Some(AzureCredentials::AzureCli),
        };
        if let Some(cr) = credentials {
            c = c.with_credentials(cr);
        }
        c = c.with_prefix(self.prefix.clone());
        if let Some(e) = &self.endpoint {
            c = c.with_endpoint(e.clone());
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c.allow_http = self.allow_http || self.emulator;
        c.timeout = self.timeout.map(|t| t.0);
        Ok(c)
    }
}
