#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod error;

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use tokio::sync::OnceCell;
use vaultdb_core::backend::http::{BoundedBody, Op};
use vaultdb_core::backend::{CloudCommon, ListStart, ObjectNames};
use vaultdb_core::{
    BackendError, BackendResult, Key, KeyPrefix, ListFrom, ListPage, PutMode, StorageBackend,
};

use crate::error::map_error;

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
#[derive(Clone, Debug)]
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

    fn names(&self) -> Result<ObjectNames, BackendError> {
        if self.bucket.is_empty() {
            return Err(BackendError::permanent("GCS configuration: the bucket is empty"));
        }
        ObjectNames::new("GCS", &self.prefix)
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

vaultdb_core::config_setters!(GcsConfig {
    with_prefix(prefix: impl Into<String>) => prefix.into(),
    with_credentials(credentials: GcsCredentials),
    with_endpoint(endpoint: impl Into<String>) => endpoint.into(),
    with_page_size(page_size: usize),
});

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
    common: CloudCommon,
    credentials: GcsCredentials,
    /// The client, built (credentials loaded, token source set up) on first use.
    client: OnceCell<Client>,
    bucket: String,
    endpoint: String,
    page_size: i32,
}

impl fmt::Debug for GcsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.common
            .debug_struct(f, "GcsBackend")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl GcsBackend {
    /// A backend for the bucket in `config`. Nothing is sent and no credentials are loaded
    /// here: they are loaded (key files read, Application Default Credentials resolved) on
    /// first use, and a failure is that call's error.
    ///
    /// # Errors
    /// A `Permanent` error for a configuration that is wrong in itself: an empty bucket, an
    /// invalid prefix, an endpoint that is not `https://` (or `http://` with `allow_http`).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: GcsConfig,
    ) -> Result<Self, BackendError> {
        let names = config.names()?;
        let endpoint = config.checked_endpoint()?;
        Ok(Self {
            common: CloudCommon::new(id, name, names),
            credentials: config.credentials,
            client: OnceCell::new(),
            bucket: config.bucket,
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
        self.common.names().root()
    }

    /// The underlying `gcloud-storage` client (for administration such as creating the
    /// bucket in tests), built on first use.
    ///
    /// # Errors
    /// A `Permanent` error if the credentials cannot be loaded (a missing or malformed key
    /// file, no Application Default Credentials, a metadata server that does not answer).
    pub async fn client(&self) -> Result<&Client, BackendError> {
        self.client.get_or_try_init(|| self.build_client()).await
    }

    async fn build_client(&self) -> Result<Client, BackendError> {
        let base =
            ClientConfig { storage_endpoint: self.endpoint.clone(), ..ClientConfig::default() };
        let auth_error = |e: &dyn fmt::Display| {
            BackendError::permanent(format!("{}: loading GCS credentials failed: {e}", self.id()))
        };
        let config = match &self.credentials {
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
        Ok(Client::new(config))
    }
}

#[async_trait]
impl StorageBackend for GcsBackend {
    vaultdb_core::backend_identity!(common);

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        // Always a multipart upload (metadata + media in one request): fake-gcs-server
        // honours ifGenerationMatch only there, and one code path is simpler anyway.
        let req = UploadObjectRequest {
            bucket: self.bucket.clone(),
            if_generation_match: (mode == PutMode::Create).then_some(0),
            ..Default::default()
        };
        let meta = Object {
            name: self.common.names().object(key),
            content_type: Some("application/octet-stream".to_owned()),
            ..Default::default()
        };
        let upload = UploadType::Multipart(Box::new(meta));
        match self.client().await?.upload_object(&req, data, &upload).await {
            Ok(_) => Ok(()),
            Err(e) => Err(map_error(self.id(), Op::Put(mode), key.as_str(), e).into_error()),
        }
    }

    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        let object = self.common.names().object(key);
        let req = GetObjectRequest { bucket: self.bucket.clone(), object, ..Default::default() };
        // No Range header: the body is read as it streams in and dropped (with its
        // connection) once it holds more than `max_len` bytes, so memory stays bounded by the
        // limit. (A ranged request cannot ask for an empty object: the 416 it gets leaves
        // fake-gcs-server's connection unusable for the next request.)
        let range = Range::default();
        let client = self.client().await?;
        let mut stream = match client.download_streamed_object(&req, &range).await {
            Ok(stream) => Box::pin(stream),
            Err(e) => return map_error(self.id(), Op::Get, key.as_str(), e).into_get(),
        };
        let mut body = BoundedBody::new(max_len);
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| map_error(self.id(), Op::Get, key.as_str(), e).into_error())?;
            body.push(key, chunk)?;
        }
        Ok(Some(body.finish()))
    }

    async fn delete(&self, key: &Key) -> BackendResult<()> {
        let object = self.common.names().object(key);
        let req = DeleteObjectRequest { bucket: self.bucket.clone(), object, ..Default::default() };
        match self.client().await?.delete_object(&req).await {
            Ok(()) => Ok(()),
            Err(e) => map_error(self.id(), Op::Delete, key.as_str(), e).into_delete(),
        }
    }

    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        let start = ListStart::new(from);
        let req = ListObjectsRequest {
            bucket: self.bucket.clone(),
            prefix: Some(self.common.names().prefix(prefix)),
            // Inclusive: the key itself is dropped with the others at or before it.
            start_offset: start.start_name(self.common.names()),
            page_token: start.token.clone(),
            max_results: Some(self.page_size),
            ..Default::default()
        };
        let out = match self.client().await?.list_objects(&req).await {
            Ok(out) => out,
            Err(e) => {
                return Err(map_error(self.id(), Op::List, prefix.as_str(), e).into_error());
            }
        };
        let items = out.items.unwrap_or_default();
        let objects = items.iter().map(|o| (o.name.as_str(), u64::try_from(o.size).unwrap_or(0)));
        Ok(self.common.page(prefix, &start, objects, out.next_page_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultdb_core::BackendErrorKind;

    #[test]
    fn configurations_wrong_in_themselves_fail_construction() {
        let e = GcsBackend::new("gcs", "GCS", GcsConfig::new("")).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let http = GcsConfig::new("b")
            .with_endpoint("http://10.1.1.1")
            .with_credentials(GcsCredentials::Anonymous);
        let e = GcsBackend::new("gcs", "GCS", http).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let e = GcsBackend::new("gcs", "GCS", GcsConfig::new("b").with_prefix("a//b")).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let b = GcsBackend::new(
            "gcs",
            "GCS",
            GcsConfig::emulator("http://127.0.0.1:1/", "b").with_prefix("x/y"),
        )
        .unwrap();
        assert_eq!(b.prefix(), "x/y/");
    }

    #[tokio::test]
    async fn credentials_are_loaded_on_first_use_and_never_shown() {
        let json = GcsCredentials::ServiceAccountJson("{\"private_key\": \"SECRET-PEM\"}".into());
        let c = GcsConfig::new("b").with_credentials(json);
        assert!(!format!("{c:?}").contains("SECRET-PEM"));
        // Not a valid key file: construction does not look; the first call fails, Permanent,
        // without the secret.
        let b = GcsBackend::new("gcs", "GCS", c).unwrap();
        assert!(!format!("{b:?}").contains("SECRET-PEM"));
        let e = b.get(&Key::new("k").unwrap(), 10).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
        assert!(e.to_string().contains("credentials") && e.to_string().starts_with("gcs: "), "{e}");
        assert!(!e.to_string().contains("SECRET-PEM"), "{e}");
        // A key file that does not exist: the same, at the first call.
        let missing = GcsCredentials::ServiceAccountFile("/nonexistent/sa.json".into());
        let b =
            GcsBackend::new("gcs", "GCS", GcsConfig::new("b").with_credentials(missing)).unwrap();
        let e = b.delete(&Key::new("k").unwrap()).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    }

    #[tokio::test]
    async fn unreachable_endpoints_are_transient() {
        // Nothing listens on port 1: connection refused is transient.
        let emu = GcsConfig::emulator("http://127.0.0.1:1/", "b");
        let b = GcsBackend::new("gcs", "GCS", emu).unwrap();
        let e = b.get(&Key::new("k").unwrap(), 10).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
    }
}
