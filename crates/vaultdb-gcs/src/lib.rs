#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod error;

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use vaultdb_core::backend::validate_key;
use vaultdb_core::{BackendError, ListPage, PutMode, StorageBackend};

use crate::error::{Mapped, Op, map_error};

/// Google's JSON API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// The default number of keys per listing page (the JSON API's maximum).
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// Where a [`GcsBackend`] keeps its objects and how it authenticates.
///
/// ```
/// use vaultdb_gcs::{GcsConfig, GcsCredentials};
///
/// // Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata server).
/// let prod = GcsConfig::new("my-vault-bucket").with_prefix("vaultdb");
/// // A service account key file.
/// let sa = GcsConfig::new("my-vault-bucket")
///     .with_credentials(GcsCredentials::ServiceAccountFile("/etc/vaultdb/sa.json".into()));
/// // fake-gcs-server on this machine: anonymous, plain http.
/// let emu = GcsConfig::emulator("http://127.0.0.1:4443", "vaultdb-test");
/// # let _ = (prod, sa, emu);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct GcsConfig {
    /// The bucket. It must exist: the backend never creates buckets.
    pub bucket: String,
    /// A key prefix ("folder") inside the bucket; empty for the bucket root. A trailing `/`
    /// is added if missing.
    pub prefix: String,
    /// The JSON API endpoint: [`DEFAULT_ENDPOINT`], or an emulator such as
    /// `http://127.0.0.1:4443` (fake-gcs-server).
    pub endpoint: String,
    /// How requests are authenticated.
    pub credentials: GcsCredentials,
    /// Accept an `http://` endpoint (emulators). Off by default.
    pub allow_http: bool,
    /// Keys per listing page, 1 to 1000.
    pub page_size: usize,
}

impl GcsConfig {
    /// A configuration for `bucket` with the defaults: Google's endpoint, Application Default
    /// Credentials, no prefix.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            credentials: GcsCredentials::Default,
            allow_http: false,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// A configuration for an emulator at `endpoint` (fake-gcs-server): anonymous requests,
    /// plain http allowed.
    pub fn emulator(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            credentials: GcsCredentials::Anonymous,
            allow_http: true,
            ..Self::new(bucket)
        }
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`credentials`](Self::credentials).
    pub fn with_credentials(mut self, credentials: GcsCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Sets [`page_size`](Self::page_size).
    pub fn with_page_size(mut self, keys: usize) -> Self {
        self.page_size = keys;
        self
    }

    fn normalized_prefix(&self) -> Result<String, BackendError> {
        if self.bucket.is_empty() {
            return Err(BackendError::permanent("GCS configuration: the bucket is empty"));
        }
        let p = self.prefix.trim_end_matches('/');
        if p.is_empty() {
            return Ok(String::new());
        }
        validate_key(p).map_err(|e| {
            BackendError::permanent(format!("GCS configuration: invalid prefix {p:?}: {e}"))
        })?;
        Ok(format!("{p}/"))
    }

    fn checked_endpoint(&self) -> Result<String, BackendError> {
        let e = self.endpoint.trim_end_matches('/');
        let lower = e.to_ascii_lowercase();
        if lower.starts_with("https://") || (lower.starts_with("http://") && self.allow_http) {
            return Ok(e.to_owned());
        }
        Err(BackendError::permanent(format!(
            "GCS configuration: endpoint {e} must be https:// (or http:// with allow_http)"
        )))
    }
}

impl fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("allow_http", &self.allow_http)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// How a [`GcsBackend`] authenticates.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum GcsCredentials {
    /// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS` (a service account
    /// or workload identity federation file), gcloud's user credentials, or the metadata
    /// server on Google Cloud (GCE, GKE workload identity, Cloud Run).
    #[default]
    Default,
    /// A service account key, as the JSON text of the key file (never shown in `Debug`).
    ServiceAccountJson(String),
    /// A service account key file.
    ServiceAccountFile(PathBuf),
    /// No authentication (emulators, public buckets).
    Anonymous,
}

impl fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            Self::ServiceAccountJson(_) => f.write_str("ServiceAccountJson(<redacted>)"),
            Self::ServiceAccountFile(p) => f.debug_tuple("ServiceAccountFile").field(p).finish(),
            Self::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// A [`StorageBackend`] on one Google Cloud Storage bucket, over the JSON API. See the
/// [crate docs](crate).
pub struct GcsBackend {
    id: String,
    name: String,
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
    page_size: i32,
}

impl fmt::Debug for GcsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsBackend")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl GcsBackend {
    /// Connects to the bucket in `config`. Resolving credentials may read files or ask the
    /// metadata server; no request goes to the bucket yet.
    ///
    /// Fails with a `Permanent` error on an invalid configuration or credentials that cannot
    /// be loaded.
    pub async fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: GcsConfig,
    ) -> Result<Self, BackendError> {
        let prefix = config.normalized_prefix()?;
        let endpoint = config.checked_endpoint()?;
        let base = ClientConfig { storage_endpoint: endpoint.clone(), ..ClientConfig::default() };
        let auth_error = |e: &dyn fmt::Display| {
            BackendError::permanent(format!("GCS configuration: loading credentials failed: {e}"))
        };
        let client_config = match &config.credentials {
            GcsCredentials::Anonymous => base.anonymous(),
            GcsCredentials::Default => base.with_auth().await.map_err(|e| auth_error(&e))?,
            GcsCredentials::ServiceAccountJson(json) => {
                let file = CredentialsFile::new_from_str(json).await.map_err(|e| auth_error(&e))?;
                base.with_credentials(file).await.map_err(|e| auth_error(&e))?
            }
            GcsCredentials::ServiceAccountFile(path) => {
                let file = CredentialsFile::new_from_file(path.to_string_lossy().into_owned())
                    .await
                    .map_err(|e| auth_error(&e))?;
                base.with_credentials(file).await.map_err(|e| auth_error(&e))?
            }
        };
        Ok(Self {
            id: id.into(),
            name: name.into(),
            client: Client::new(client_config),
            bucket: config.bucket,
            prefix,
            endpoint,
            page_size: config.page_size.clamp(1, 1000) as i32,
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix inside the bucket (empty, or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The underlying `gcloud-storage` client (for administration such as creating the
    /// bucket in tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn object_name(&self, key: &str) -> Result<String, BackendError> {
        validate_key(key).map_err(|e| {
            BackendError::permanent(format!("{}: invalid key {key:?}: {e}", self.id))
        })?;
        Ok(format!("{}{key}", self.prefix))
    }
}

#[async_trait]
impl StorageBackend for GcsBackend {
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        let object = self.object_name(key)?;
        // Always a multipart upload (metadata + media in one request): fake-gcs-server
        // honours ifGenerationMatch only there, and one code path is simpler anyway.
        let req = UploadObjectRequest {
            bucket: self.bucket.clone(),
            if_generation_match: (mode == PutMode::Create).then_some(0),
            ..Default::default()
        };
        let meta = Object {
            name: object,
            content_type: Some("application/octet-stream".to_owned()),
            ..Default::default()
        };
        match self.client.upload_object(&req, data, &UploadType::Multipart(Box::new(meta))).await {
            Ok(_) => Ok(()),
            Err(e) => Err(map_error(&self.id, Op::Put(mode), key, e).into_error()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let object = self.object_name(key)?;
        let req = GetObjectRequest { bucket: self.bucket.clone(), object, ..Default::default() };
        match self.client.download_object(&req, &Range::default()).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) => match map_error(&self.id, Op::Get, key, e) {
                Mapped::NotFound => Ok(None),
                Mapped::Error(e) => Err(e),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        let object = self.object_name(key)?;
        let req = DeleteObjectRequest { bucket: self.bucket.clone(), object, ..Default::default() };
        match self.client.delete_object(&req).await {
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
        let req = ListObjectsRequest {
            bucket: self.bucket.clone(),
            prefix: Some(format!("{}{prefix}", self.prefix)),
            page_token: cursor,
            max_results: Some(self.page_size),
            ..Default::default()
        };
        let out = match self.client.list_objects(&req).await {
            Ok(out) => out,
            Err(e) => return Err(map_error(&self.id, Op::List, prefix, e).into_error()),
        };
        let mut keys = Vec::new();
        for object in out.items.unwrap_or_default() {
            let Some(rel) = object.name.strip_prefix(&self.prefix) else {
                continue;
            };
            if !rel.starts_with(prefix) {
                continue;
            }
            if validate_key(rel).is_err() {
                tracing::debug!(backend = %self.id, object = %object.name, "ignoring object with an invalid key");
                continue;
            }
            keys.push(rel.to_owned());
        }
        let next = out.next_page_token.filter(|t| !t.is_empty());
        Ok(ListPage { keys, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultdb_core::BackendErrorKind;

    #[tokio::test]
    async fn config_checks_and_redaction() {
        let json = GcsCredentials::ServiceAccountJson("{\"private_key\": \"SECRET-PEM\"}".into());
        let c = GcsConfig::new("b").with_credentials(json);
        assert!(!format!("{c:?}").contains("SECRET-PEM"));
        // Not a valid key file: a permanent configuration error, without the secret.
        let e = GcsBackend::new("gcs", "GCS", c).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        assert!(!e.to_string().contains("SECRET-PEM"), "{e}");
        let e = GcsBackend::new("gcs", "GCS", GcsConfig::new("")).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let http = GcsConfig::new("b")
            .with_endpoint("http://10.1.1.1")
            .with_credentials(GcsCredentials::Anonymous);
        let e = GcsBackend::new("gcs", "GCS", http).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let emu = GcsConfig::emulator("http://127.0.0.1:1/", "b").with_prefix("x/y");
        let b = GcsBackend::new("gcs", "GCS", emu).await.unwrap();
        assert_eq!(b.prefix(), "x/y/");
        let e = b.put("a//b", Bytes::new(), PutMode::Create).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        // Nothing listens on port 1: connection refused is transient.
        let e = b.get("k").await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
    }
}
