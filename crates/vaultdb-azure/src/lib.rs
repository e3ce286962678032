#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "containers")]
pub mod containers;
mod error;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig};
use vaultdb_core::backend::validate_key;
use vaultdb_core::{BackendError, ListPage, PutMode, StorageBackend};

use crate::error::{Mapped, Op, map_error};

/// The storage account of Azurite and the legacy Azure Storage Emulator.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// The well-known (public) account key of [`AZURITE_ACCOUNT`].
pub const AZURITE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The default number of keys per listing page.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// Where an [`AzureBackend`] keeps its blobs and how it authenticates.
///
/// ```
/// use vaultdb_azure::{AzureConfig, AzureCredentials};
///
/// let key = AzureConfig::new("myaccount", "vault")
///     .with_credentials(AzureCredentials::AccessKey("base64key==".into()));
/// let msi = AzureConfig::new("myaccount", "vault")
///     .with_credentials(AzureCredentials::ManagedIdentity { client_id: None })
///     .with_prefix("vaultdb");
/// // Azurite: the URL comes from AZURITE_BLOB_STORAGE_URL (default http://127.0.0.1:10000).
/// let dev = AzureConfig::azurite("vaultdb-test");
/// # let _ = (key, msi, dev);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct AzureConfig {
    /// The storage account name.
    pub account: String,
    /// The container. It must exist: the backend never creates containers.
    pub container: String,
    /// A key prefix ("folder") inside the container; empty for the container root. A
    /// trailing `/` is added if missing.
    pub prefix: String,
    /// How requests are authorized.
    pub credentials: AzureCredentials,
    /// A custom blob endpoint (`https://<account>.blob.core.windows.net` by default), e.g. a
    /// private endpoint or a sovereign cloud.
    pub endpoint: Option<String>,
    /// Talk to Azurite: account [`AZURITE_ACCOUNT`], path-style URLs, plain http, and the
    /// URL from the `AZURITE_BLOB_STORAGE_URL` environment variable (default
    /// `http://127.0.0.1:10000`), as object_store's emulator mode does. Unless other
    /// credentials are set, the well-known emulator key signs the requests.
    pub emulator: bool,
    /// Accept an `http://` endpoint (always on in emulator mode).
    pub allow_http: bool,
    /// Keys per listing page, 1 to 5000.
    pub page_size: usize,
    /// Timeout of one HTTP request, connection included (object_store's default otherwise:
    /// 30 s per request, 5 s to connect).
    pub timeout: Option<Duration>,
}

impl AzureConfig {
    /// A configuration for `container` in storage `account`; credentials default to
    /// [`AzureCredentials::Environment`].
    pub fn new(account: impl Into<String>, container: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            container: container.into(),
            prefix: String::new(),
            credentials: AzureCredentials::Environment,
            endpoint: None,
            emulator: false,
            allow_http: false,
            page_size: DEFAULT_PAGE_SIZE,
            timeout: None,
        }
    }

    /// A configuration for `container` on Azurite (see [`emulator`](Self::emulator)).
    pub fn azurite(container: impl Into<String>) -> Self {
        Self {
            emulator: true,
            allow_http: true,
            credentials: AzureCredentials::AccessKey(AZURITE_ACCOUNT_KEY.to_owned()),
            ..Self::new(AZURITE_ACCOUNT, container)
        }
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`credentials`](Self::credentials).
    pub fn with_credentials(mut self, credentials: AzureCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets [`page_size`](Self::page_size).
    pub fn with_page_size(mut self, keys: usize) -> Self {
        self.page_size = keys;
        self
    }

    fn normalized_prefix(&self) -> Result<String, BackendError> {
        if self.container.is_empty() || self.account.is_empty() {
            return Err(BackendError::permanent(
                "Azure configuration: the account and the container are required",
            ));
        }
        let p = self.prefix.trim_end_matches('/');
        if p.is_empty() {
            return Ok(String::new());
        }
        validate_key(p).map_err(|e| {
            BackendError::permanent(format!("Azure configuration: invalid prefix {p:?}: {e}"))
        })?;
        Ok(format!("{}/", escape(p)))
    }

    fn builder(&self) -> Result<MicrosoftAzureBuilder, BackendError> {
        // Start empty, not from_env(): every setting comes from this configuration, except
        // for AzureCredentials::Environment.
        let mut b = match &self.credentials {
            AzureCredentials::Environment => MicrosoftAzureBuilder::from_env(),
            _ => MicrosoftAzureBuilder::new(),
        };
        b = b
            .with_account(&self.account)
            .with_container_name(&self.container)
            .with_use_emulator(self.emulator)
            .with_allow_http(self.allow_http || self.emulator)
            // The VaultDB client retries transient errors itself.
            .with_retry(RetryConfig { max_retries: 0, ..RetryConfig::default() });
        if let Some(t) = self.timeout {
            b = b.with_client_options(
                object_store::ClientOptions::new()
                    .with_timeout(t)
                    .with_connect_timeout(t)
                    .with_allow_http(self.allow_http || self.emulator),
            );
        }
        if let Some(e) = &self.endpoint {
            if e.to_ascii_lowercase().starts_with("http://") && !self.allow_http {
                return Err(BackendError::permanent(
                    "Azure configuration: the endpoint is plain http; set allow_http to use it",
                ));
            }
            b = b.with_endpoint(e.clone());
        }
        b = match &self.credentials {
            AzureCredentials::Environment => b,
            AzureCredentials::AccessKey(key) => b.with_access_key(key),
            AzureCredentials::Sas(token) => {
                let pairs = split_sas(token)?;
                b.with_sas_authorization(pairs)
            }
            AzureCredentials::ManagedIdentity { client_id } => {
                let b = b.with_config(
                    object_store::azure::AzureConfigKey::CredentialType,
                    "managed_identity",
                );
                match client_id {
                    Some(id) => b.with_client_id(id),
                    None => b,
                }
            }
            AzureCredentials::ClientSecret { tenant_id, client_id, client_secret } => {
                b.with_client_secret_authorization(client_id, client_secret, tenant_id)
            }
            AzureCredentials::WorkloadIdentity { tenant_id, client_id, token_file } => b
                .with_tenant_id(tenant_id)
                .with_client_id(client_id)
                .with_federated_token_file(token_file),
            AzureCredentials::AzureCli => b.with_use_azure_cli(true),
        };
        Ok(b)
    }
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("credentials", &self.credentials)
            .field("endpoint", &self.endpoint)
            .field("emulator", &self.emulator)
            .field("allow_http", &self.allow_http)
            .field("page_size", &self.page_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How an [`AzureBackend`] authorizes its requests (what object_store supports).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum AzureCredentials {
    /// object_store's automatic choice from `AZURE_*` environment variables (access key,
    /// SAS, client secret, workload identity, managed identity in that order; see
    /// `MicrosoftAzureBuilder::from_env`).
    #[default]
    Environment,
    /// The storage account's shared key (base64).
    AccessKey(String),
    /// A SAS token (`sv=...&sig=...`, with or without a leading `?`).
    Sas(String),
    /// A managed identity (the IMDS endpoint, or App Service's `IDENTITY_ENDPOINT`); with a
    /// client id for a user-assigned identity.
    ManagedIdentity {
        /// The user-assigned identity's client id; `None` for the system-assigned one.
        client_id: Option<String>,
    },
    /// A service principal with a client secret.
    ClientSecret {
        /// The Entra ID tenant.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The client secret (never shown).
        client_secret: String,
    },
    /// Workload identity federation (AKS): a federated token file.
    WorkloadIdentity {
        /// The Entra ID tenant.
        tenant_id: String,
        /// The application (client) id.
        client_id: String,
        /// The path of the projected service account token.
        token_file: String,
    },
    /// The Azure CLI's logged-in account (`az account get-access-token`), for development.
    AzureCli,
}

impl fmt::Debug for AzureCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("Environment"),
            Self::AccessKey(_) => f.write_str("AccessKey(<redacted>)"),
            Self::Sas(_) => f.write_str("Sas(<redacted>)"),
            Self::ManagedIdentity { client_id } => {
                f.debug_struct("ManagedIdentity").field("client_id", client_id).finish()
            }
            Self::ClientSecret { tenant_id, client_id, .. } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            Self::WorkloadIdentity { tenant_id, client_id, token_file } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .finish(),
            Self::AzureCli => f.write_str("AzureCli"),
        }
    }
}

/// Splits a SAS token into query pairs.
fn split_sas(token: &str) -> Result<Vec<(String, String)>, BackendError> {
    let token = token.trim_start_matches('?');
    let mut pairs = Vec::new();
    for part in token.split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(BackendError::permanent("Azure configuration: the SAS token is malformed"));
        };
        pairs.push((k.to_owned(), v.to_owned()));
    }
    if pairs.is_empty() {
        return Err(BackendError::permanent("Azure configuration: the SAS token is empty"));
    }
    Ok(pairs)
}

/// The blob name of a key: `%` becomes `%25` and `\` becomes `%5C`, every other byte stays.
/// Azure (and Azurite) read a backslash in a blob URL as `/`, so `a\b` and `a/b` would be
/// one blob; escaping keeps every valid key distinct. VaultDB's own keys contain neither
/// character, so their blob names are the keys themselves. The mapping is a prefix code, so a
/// prefix listing of `escape(p)` finds exactly the keys that start with `p`.
pub fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\\' => out.push_str("%5C"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`]; `None` for a name [`escape`] cannot produce.
pub fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find(['%', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("%25") {
            out.push('%');
        } else if tail.starts_with("%5C") {
            out.push('\\');
        } else {
            return None;
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Some(out)
}

/// A [`StorageBackend`] on one Azure Blob Storage container, through object_store. See the
/// [crate docs](crate).
pub struct AzureBackend {
    id: String,
    name: String,
    store: MicrosoftAzure,
    account: String,
    container: String,
    prefix: String,
    page_size: usize,
}

impl fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // object_store's MicrosoftAzure Debug is left out: it shows its credentials provider.
        f.debug_struct("AzureBackend")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("account", &self.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl AzureBackend {
    /// A backend for the container in `config`. No request is sent: a missing container or
    /// bad credentials show up on the first call, as `Permanent` errors.
    ///
    /// Fails with a `Permanent` error on an invalid configuration.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: AzureConfig,
    ) -> Result<Self, BackendError> {
        let prefix = config.normalized_prefix()?;
        let store = config.builder()?.build().map_err(|e| {
            BackendError::permanent(format!("Azure configuration: {}", error::redact(&e)))
        })?;
        Ok(Self {
            id: id.into(),
            name: name.into(),
            store,
            account: config.account,
            container: config.container,
            prefix,
            page_size: config.page_size.clamp(1, 5000),
        })
    }

    /// The container.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The key prefix inside the container (empty, or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn path(&self, key: &str) -> Result<Path, BackendError> {
        validate_key(key).map_err(|e| {
            BackendError::permanent(format!("{}: invalid key {key:?}: {e}", self.id))
        })?;
        Path::parse(format!("{}{}", self.prefix, escape(key))).map_err(|e| {
            BackendError::permanent(format!("{}: key {key:?} is not a blob path: {e}", self.id))
        })
    }
}

#[async_trait]
impl StorageBackend for AzureBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        let path = self.path(key)?;
        let opts = PutOptions {
            mode: match mode {
                PutMode::Create => object_store::PutMode::Create,
                PutMode::Overwrite => object_store::PutMode::Overwrite,
            },
            ..PutOptions::default()
        };
        match self.store.put_opts(&path, PutPayload::from_bytes(data), opts).await {
            Ok(_) => Ok(()),
            Err(e) => Err(map_error(&self.id, Op::Put(mode), key, e).into_error()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let path = self.path(key)?;
        let result = match self.store.get(&path).await {
            Ok(r) => r,
            Err(e) => {
                return match map_error(&self.id, Op::Get, key, e) {
                    Mapped::NotFound => Ok(None),
                    Mapped::Error(e) => Err(e),
                };
            }
        };
        match result.bytes().await {
            Ok(b) => Ok(Some(b)),
            Err(e) => match map_error(&self.id, Op::Get, key, e) {
                // Deleted between the response head and its body.
                Mapped::NotFound => Ok(None),
                Mapped::Error(e) => Err(e),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e) => match map_error(&self.id, Op::Delete, key, e) {
                Mapped::NotFound => Ok(()),
                Mapped::Error(e) => Err(e),
            },
        }
    }

    async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<ListPage, BackendError> {
        let full = format!("{}{}", self.prefix, escape(prefix));
        // object_store drops a blob whose name equals the listing prefix (it takes it for a
        // directory marker). A valid key never ends in '/', so only a prefix that does not
        // end in '/' can name a blob exactly: ask for one character less and filter below.
        let asked = if full.ends_with('/') || full.is_empty() {
            full.as_str()
        } else {
            &full[..full.len() - 1]
        };
        let opts = PaginatedListOptions {
            max_keys: Some(self.page_size),
            page_token: cursor,
            ..PaginatedListOptions::default()
        };
        let page = match self.store.list_paginated((!asked.is_empty()).then_some(asked), opts).await
        {
            Ok(p) => p,
            Err(e) => return Err(map_error(&self.id, Op::List, prefix, e).into_error()),
        };
        let mut keys = Vec::with_capacity(page.result.objects.len());
        for meta in page.result.objects {
            let name = meta.location.as_ref();
            let Some(rel) = name.strip_prefix(&self.prefix).and_then(unescape) else {
                continue;
            };
            if !rel.starts_with(prefix) {
                continue;
            }
            if validate_key(&rel).is_err() {
                tracing::debug!(backend = %self.id, blob = %name, "ignoring blob with an invalid key");
                continue;
            }
            keys.push(rel);
        }
        Ok(ListPage { keys, next: page.page_token.filter(|t| !t.is_empty()) })
    }
}

#[cfg(test)]
mod tests {
    use vaultdb_core::BackendErrorKind;

    use super::*;

    #[test]
    fn credentials_are_redacted_and_sas_tokens_split() {
        for c in [
            AzureCredentials::AccessKey("KEY-SECRET".into()),
            AzureCredentials::Sas("sv=1&sig=SIG-SECRET".into()),
            AzureCredentials::ClientSecret {
                tenant_id: "t".into(),
                client_id: "c".into(),
                client_secret: "CS-SECRET".into(),
            },
        ] {
            let shown = format!("{:?}", AzureConfig::new("a", "c").with_credentials(c));
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        assert_eq!(
            split_sas("?sv=2022&sig=abc%3D").unwrap(),
            [("sv".into(), "2022".into()), ("sig".into(), "abc%3D".into())]
        );
        assert!(split_sas("").is_err() && split_sas("novalue").is_err());
    }

    #[test]
    fn keys_escape_and_unescape() {
        for k in ["plain/key.1", "a%b", "a\\b", "%25", "%5C", "\\%\\", "x%2Fy"] {
            assert_eq!(unescape(&escape(k)).as_deref(), Some(k), "{k}");
            assert!(!escape(k).contains('\\'));
        }
        assert_eq!(escape("vaultdb/r/abc/0123.ABC"), "vaultdb/r/abc/0123.ABC");
        assert_eq!(escape("a%b\\c"), "a%25b%5Cc");
        assert_eq!(unescape("a%2"), None);
        assert_eq!(unescape("a%41"), None);
        assert_eq!(unescape("a\\b"), None);
        // Prefix code: an escaped key starts with an escaped prefix iff the key starts with it.
        let keys = ["a%", "a%b", "a\\", "a", "a%25", "a5C", "ab"];
        for k in keys {
            for p in keys {
                assert_eq!(escape(k).starts_with(&escape(p)), k.starts_with(p), "{k} {p}");
            }
        }
    }

    #[test]
    fn configuration_errors_are_permanent() {
        let e = AzureBackend::new("az", "Azure", AzureConfig::new("a", "")).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let bad = AzureConfig::new("a", "c")
            .with_credentials(AzureCredentials::AccessKey("k".into()))
            .with_endpoint("http://10.0.0.1:10000");
        let e = AzureBackend::new("az", "Azure", bad).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let b = AzureBackend::new("az", "Azure", AzureConfig::azurite("c").with_prefix("p/q/"))
            .unwrap();
        assert_eq!(b.prefix(), "p/q/");
        assert!(!format!("{b:?}").contains(AZURITE_ACCOUNT_KEY));
    }
}
