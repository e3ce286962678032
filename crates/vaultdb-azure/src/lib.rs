#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "containers")]
pub mod containers;
mod error;

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig,
};
use vaultdb_core::backend::http::{BoundedBody, Mapped, Op};
use vaultdb_core::backend::{CloudCommon, Escaping, ListStart, ObjectNames};
use vaultdb_core::{
    BackendError, BackendResult, Key, KeyPrefix, ListFrom, ListPage, PutMode, StorageBackend,
};

use crate::error::map_error;

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
#[derive(Clone, Debug)]
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

    /// The blob names under the container and prefix, once the configuration is checked:
    /// everything that can be checked without the environment or the network.
    fn names(&self) -> Result<ObjectNames, BackendError> {
        if self.container.is_empty() || self.account.is_empty() {
            return Err(BackendError::permanent(
                "Azure configuration: the account and the container are required",
            ));
        }
        if let Some(e) = &self.endpoint {
            let lower = e.to_ascii_lowercase();
            if lower.starts_with("http://") && !self.allow_http {
                return Err(BackendError::permanent(
                    "Azure configuration: the endpoint is plain http; set allow_http to use it",
                ));
            }
            if !lower.starts_with("http://") && !lower.starts_with("https://") {
                return Err(BackendError::permanent(
                    "Azure configuration: the endpoint must start with https:// or http://",
                ));
            }
        }
        if let AzureCredentials::Sas(token) = &self.credentials {
            split_sas(token)?;
        }
        ObjectNames::escaped("Azure", &self.prefix, ESCAPING)
    }

    /// For [`AzureCredentials::Environment`] outside emulator mode with no credential in the
    /// environment (object_store then asks the managed identity endpoint), what a failed
    /// credential fetch means.
    fn credentials_hint(&self) -> Option<&'static str> {
        /// The variables object_store's environment credentials read (besides the managed
        /// identity endpoint, which it falls back to).
        const CREDENTIAL_VARS: [&str; 9] = [
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_ACCESS_KEY",
            "AZURE_STORAGE_MASTER_KEY",
            "AZURE_STORAGE_SAS_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_STORAGE_TOKEN",
            "AZURE_CLIENT_ID",
            "AZURE_STORAGE_CLIENT_ID",
            "AZURE_USE_AZURE_CLI",
        ];
        let environment = matches!(self.credentials, AzureCredentials::Environment);
        let set = |v: &&str| std::env::var_os(v).is_some_and(|v| !v.is_empty());
        (environment && !self.emulator && !CREDENTIAL_VARS.iter().any(set)).then_some(
            "no credential found: set AZURE_STORAGE_CONNECTION_STRING (read by the vaultdb \
             binary), AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY, or \
             AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_CLIENT_SECRET or \
             AZURE_FEDERATED_TOKEN_FILE, or configure credentials (the managed identity \
             endpoint did not answer either)",
        )
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

vaultdb_core::config_setters!(AzureConfig {
    with_prefix(prefix: impl Into<String>) => prefix.into(),
    with_credentials(credentials: AzureCredentials),
    with_endpoint(endpoint: impl Into<String>) => Some(endpoint.into()),
    with_page_size(page_size: usize),
});

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

/// The escaping of keys into blob names ([`escape`], [`unescape`]).
const ESCAPING: Escaping = Escaping { encode: escape, decode: unescape };

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
    common: CloudCommon,
    config: AzureConfig,
    /// object_store's client, built on first use (or why it could not be).
    store: OnceLock<Result<MicrosoftAzure, String>>,
    page_size: usize,
    credentials_hint: Option<&'static str>,
}

impl fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // object_store's MicrosoftAzure Debug is left out: it shows its credentials provider.
        self.common
            .debug_struct(f, "AzureBackend")
            .field("account", &self.config.account)
            .field("container", &self.config.container)
            .field("credentials", &self.config.credentials)
            .finish_non_exhaustive()
    }
}

impl AzureBackend {
    /// A backend for the container in `config`. Nothing is sent and no credentials are looked
    /// up here: object_store's client is built on first use, and a missing container, bad
    /// credentials or an unreachable endpoint show up as that call's error.
    ///
    /// # Errors
    /// A `Permanent` error for a configuration that is wrong in itself: no account or
    /// container, an invalid prefix, an `http://` endpoint without `allow_http`, a malformed
    /// SAS token.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: AzureConfig,
    ) -> Result<Self, BackendError> {
        let names = config.names()?;
        Ok(Self {
            common: CloudCommon::new(id, name, names),
            page_size: config.page_size.clamp(1, 5000),
            credentials_hint: config.credentials_hint(),
            config,
            store: OnceLock::new(),
        })
    }

    /// The container.
    pub fn container(&self) -> &str {
        &self.config.container
    }

    /// The key prefix inside the container (empty, or ending in `/`).
    pub fn prefix(&self) -> &str {
        self.common.names().root()
    }

    /// object_store's client, built on first use.
    fn store(&self) -> Result<&MicrosoftAzure, BackendError> {
        let built = self.store.get_or_init(|| {
            let builder = self.config.builder().map_err(|e| e.message().to_owned())?;
            builder.build().map_err(|e| error::redact(&e))
        });
        built.as_ref().map_err(|e| {
            BackendError::permanent(format!("{}: Azure configuration: {e}", self.id()))
        })
    }

    fn path(&self, key: &Key) -> Result<Path, BackendError> {
        Path::parse(self.common.names().object(key)).map_err(|e| {
            BackendError::permanent(format!("{}: key {key:?} is not a blob path: {e}", self.id()))
        })
    }

    fn map(&self, op: Op, key: &str, e: object_store::Error) -> Mapped {
        map_error(self.id(), op, key, e, self.credentials_hint)
    }
}

#[async_trait]
impl StorageBackend for AzureBackend {
    vaultdb_core::backend_identity!(common);

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        let path = self.path(key)?;
        let opts = PutOptions {
            mode: match mode {
                PutMode::Create => object_store::PutMode::Create,
                PutMode::Overwrite => object_store::PutMode::Overwrite,
            },
            ..PutOptions::default()
        };
        match self.store()?.put_opts(&path, PutPayload::from_bytes(data), opts).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.map(Op::Put(mode), key.as_str(), e).into_error()),
        }
    }

    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        let path = self.path(key)?;
        // One byte past the limit: enough to tell a longer blob, never much more. An empty
        // blob cannot satisfy the range: Azure answers 416, mapped to empty.
        let range = (max_len < u64::MAX).then(|| GetRange::Bounded(0..max_len + 1));
        let opts = GetOptions { range, ..GetOptions::default() };
        let result = match self.store()?.get_opts(&path, opts).await {
            Ok(r) => r,
            // Azurite answers a range on an empty blob with `206` and `Content-Range: bytes
            // 0--1/0` (Azure itself with 416), which object_store cannot parse: the empty blob.
            Err(e) if e.to_string().contains("bytes 0--1/0") => return Ok(Some(Bytes::new())),
            Err(e) => return self.map(Op::Get, key.as_str(), e).into_get(),
        };
        let mut body = BoundedBody::new(max_len);
        // The blob's whole size (from the Content-Range of a ranged answer).
        body.check_declared(key, Some(result.meta.size))?;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => body.push(key, chunk)?,
                // Deleted between the response head and its body: `None`.
                Err(e) => return self.map(Op::Get, key.as_str(), e).into_get(),
            }
        }
        Ok(Some(body.finish()))
    }

    async fn delete(&self, key: &Key) -> BackendResult<()> {
        let path = self.path(key)?;
        match self.store()?.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e) => self.map(Op::Delete, key.as_str(), e).into_delete(),
        }
    }

    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        let start = ListStart::new(from);
        let full = self.common.names().prefix(prefix);
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
            // Azure's startFrom (inclusive; Azurite ignores it): the entries are filtered too.
            offset: start.start_name(self.common.names()),
            page_token: start.token.clone(),
            ..PaginatedListOptions::default()
        };
        let store = self.store()?;
        let page = match store.list_paginated((!asked.is_empty()).then_some(asked), opts).await {
            Ok(p) => p,
            Err(e) => return Err(self.map(Op::List, prefix.as_str(), e).into_error()),
        };
        let objects = page.result.objects.iter().map(|m| (m.location.as_ref(), m.size));
        Ok(self.common.page(prefix, &start, objects, page.page_token))
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
        let sas = AzureConfig::new("a", "c").with_credentials(AzureCredentials::Sas("x".into()));
        assert!(AzureBackend::new("az", "Azure", sas).is_err());
        let b = AzureBackend::new("az", "Azure", AzureConfig::azurite("c").with_prefix("p/q/"))
            .unwrap();
        assert_eq!(b.prefix(), "p/q/");
        assert!(!format!("{b:?}").contains(AZURITE_ACCOUNT_KEY));
    }

    #[tokio::test]
    async fn credentials_that_cannot_work_fail_the_calls_not_the_construction() {
        // Not base64: object_store refuses the key when it builds its client, at first use.
        let bad_key = AzureConfig::new("a", "c")
            .with_credentials(AzureCredentials::AccessKey("not base64!".into()));
        let b = AzureBackend::new("az", "Azure", bad_key).unwrap();
        let key = Key::new("k").unwrap();
        for _ in 0..2 {
            let e = b.get(&key, 10).await.unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
            assert!(e.message().starts_with("az: Azure configuration"), "{e}");
            assert!(!e.to_string().contains("not base64!"), "{e}");
        }
    }
}
