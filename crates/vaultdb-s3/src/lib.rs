#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod config;
mod error;
#[cfg(feature = "credential-chain")]
mod sso;

use std::fmt;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use tokio::sync::OnceCell;
use vaultdb_core::backend::http::{BoundedBody, Op};
use vaultdb_core::backend::{CloudCommon, ListStart};
use vaultdb_core::{
    BackendError, BackendErrorKind, BackendResult, Key, KeyPrefix, ListFrom, ListPage, PutMode,
    StorageBackend,
};

pub use crate::config::{DEFAULT_PAGE_SIZE, S3Config, S3Credentials, resolve_region};
use crate::error::map_error;

/// A [`StorageBackend`] on one S3 bucket (and an optional key prefix inside it). See the
/// [crate docs](crate) for configuration, permissions and error mapping.
pub struct S3Backend {
    common: CloudCommon,
    config: S3Config,
    /// The SDK client, built (and its credentials provider set up) on first use.
    client: OnceCell<Client>,
    page_size: i32,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK client is left out: it holds the credentials provider.
        self.common
            .debug_struct(f, "S3Backend")
            .field("bucket", &self.config.bucket)
            .field("endpoint", &self.config.endpoint.as_deref().map(config::redact_url))
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// A backend for the bucket in `config`. Nothing is sent and no credentials are looked up
    /// here: the SDK client is built on first use, and a wrong bucket, missing credentials or
    /// an unreachable endpoint show up as that call's error.
    ///
    /// `config` is an [`S3Config`], or a preset that maps onto one ([`IntoS3Config`]).
    ///
    /// # Errors
    /// A `Permanent` error for a configuration that is wrong in itself: an empty bucket, an
    /// invalid prefix, an `http://` endpoint without [`S3Config::allow_http`] (or what the
    /// preset refuses).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: impl IntoS3Config,
    ) -> Result<Self, BackendError> {
        let config = config.into_s3_config()?;
        let names = config.names()?;
        config.check_endpoint()?;
        Ok(Self {
            common: CloudCommon::new(id, name, names),
            page_size: config.page_size.clamp(1, 1000) as i32,
            config,
            client: OnceCell::new(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// The key prefix inside the bucket (empty, or ending in `/`).
    pub fn prefix(&self) -> &str {
        self.common.names().root()
    }

    /// The object name of `key`.
    fn object(&self, key: &Key) -> String {
        self.common.names().object(key)
    }

    /// The underlying SDK client (for administration such as creating the bucket in tests),
    /// built on first use.
    ///
    /// # Errors
    /// A `Permanent` error if the credentials cannot be set up (without the
    /// `credential-chain` feature: no `AWS_*` variables and no static credentials).
    pub async fn client(&self) -> Result<&Client, BackendError> {
        self.client
            .get_or_try_init(|| build_client(&self.config))
            .await
            .map_err(|e| BackendError::new(e.kind(), format!("{}: {}", self.id(), e.message())))
    }
}

/// A configuration an [`S3Backend`] is built from: an [`S3Config`], or a preset that maps
/// onto one (such as vaultdb-minio's `MinioConfig`), so that every S3-based backend has the
/// same constructor, [`S3Backend::new`].
pub trait IntoS3Config {
    /// The [`S3Config`] this configuration stands for.
    ///
    /// # Errors
    /// A `Permanent` error if the preset cannot map onto one (a required field is missing).
    fn into_s3_config(self) -> Result<S3Config, BackendError>;
}

impl IntoS3Config for S3Config {
    fn into_s3_config(self) -> Result<S3Config, BackendError> {
        Ok(self)
    }
}

/// The SDK client for `config`: its region, endpoint and credentials, SDK retries off.
async fn build_client(config: &S3Config) -> Result<Client, BackendError> {
    let region = if config.region.trim().is_empty() {
        config::resolve_region(config.profile.as_deref()).await
    } else {
        config.region.clone()
    };
    let credentials = config.credentials.provider(&region, config.profile.as_deref()).await?;
    let checksums = if config.strict_checksums {
        (RequestChecksumCalculation::WhenSupported, ResponseChecksumValidation::WhenSupported)
    } else {
        (RequestChecksumCalculation::WhenRequired, ResponseChecksumValidation::WhenRequired)
    };
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .force_path_style(config.force_path_style)
        // The VaultDB client retries transient errors with its own backoff and per-call
        // deadline; SDK retries would multiply them.
        .retry_config(RetryConfig::disabled())
        .request_checksum_calculation(checksums.0)
        .response_checksum_validation(checksums.1);
    if let Some(provider) = credentials {
        builder = builder.credentials_provider(provider);
    }
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    Ok(Client::from_conf(builder.build()))
}

/// The whole size of an object as a `GetObject` answer declares it: the total of its
/// `Content-Range` (`bytes 0-9/1234`) for a ranged answer, else its `Content-Length`.
fn declared_size(content_range: Option<&str>, content_length: Option<i64>) -> Option<u64> {
    match content_range {
        Some(range) => range.rsplit_once('/').and_then(|(_, total)| total.parse().ok()),
        None => content_length.and_then(|len| u64::try_from(len).ok()),
    }
}

#[async_trait]
impl StorageBackend for S3Backend {
    vaultdb_core::backend_identity!(common);

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        let len = data.len() as i64;
        let client = self.client().await?;
        let mut req = client.put_object().bucket(self.bucket()).key(self.object(key));
        req = req.content_length(len).body(ByteStream::from(data));
        if mode == PutMode::Create {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(map_error(self.id(), Op::Put(mode), key.as_str(), e).into_error()),
        }
    }

    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        let mut req = self.client().await?.get_object().bucket(self.bucket()).key(self.object(key));
        if max_len < u64::MAX {
            // One byte past the limit: enough to tell a longer object, never much more. An
            // empty object cannot satisfy the range: S3 answers 416, mapped to empty.
            req = req.range(format!("bytes=0-{max_len}"));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => return map_error(self.id(), Op::Get, key.as_str(), e).into_get(),
        };
        let mut body = BoundedBody::new(max_len);
        body.check_declared(key, declared_size(out.content_range(), out.content_length()))?;
        let mut stream = out.body;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                BackendError::transient(format!(
                    "{}: reading the body of {key:?} failed",
                    self.id()
                ))
                .with_source(e)
            })?;
            body.push(key, chunk)?;
        }
        Ok(Some(body.finish()))
    }

    async fn delete(&self, key: &Key) -> BackendResult<()> {
        let req = self.client().await?.delete_object().bucket(self.bucket());
        match req.key(self.object(key)).send().await {
            Ok(_) => Ok(()),
            Err(e) => map_error(self.id(), Op::Delete, key.as_str(), e).into_delete(),
        }
    }

    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        let start = ListStart::new(from);
        let client = self.client().await?;
        let names = self.common.names();
        let mut req = client.list_objects_v2().bucket(self.bucket()).prefix(names.prefix(prefix));
        req = req.max_keys(self.page_size);
        if let Some(name) = start.start_name(names) {
            req = req.start_after(name);
        }
        if let Some(token) = &start.token {
            req = req.continuation_token(token);
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(map_error(self.id(), Op::List, prefix.as_str(), e).into_error());
            }
        };
        let objects = out.contents().iter().filter_map(|o| {
            let size = o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
            Some((o.key()?, size))
        });
        let token = if out.is_truncated() == Some(true) {
            match out.next_continuation_token() {
                Some(t) if !t.is_empty() => Some(t.to_owned()),
                _ => {
                    return Err(BackendError::new(
                        BackendErrorKind::Other,
                        format!(
                            "{}: listing {prefix:?} is truncated but has no continuation token",
                            self.id()
                        ),
                    ));
                }
            }
        } else {
            None
        };
        Ok(self.common.page(prefix, &start, objects, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_credentials() {
        let config = S3Config::new("bucket")
            .with_region("eu-west-1")
            .with_prefix("team/vault")
            .with_endpoint("https://user:pw@s3.example.com")
            .with_credentials(S3Credentials::Static {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "SECRET-DO-NOT-PRINT".into(),
                session_token: Some("TOKEN-DO-NOT-PRINT".into()),
            });
        let shown = format!("{config:?}");
        assert!(!shown.contains("SECRET-DO-NOT-PRINT"), "{shown}");
        assert!(!shown.contains("TOKEN-DO-NOT-PRINT"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        let b = S3Backend::new("aws", "AWS", config).unwrap();
        assert_eq!(b.prefix(), "team/vault/");
        assert_eq!(b.bucket(), "bucket");
        let shown = format!("{b:?}");
        assert!(!shown.contains("SECRET") && !shown.contains("pw@"), "{shown}");
    }

    #[test]
    fn configurations_wrong_in_themselves_fail_construction() {
        let http = S3Config::new("b").with_endpoint("http://10.0.0.1:9000");
        let e = S3Backend::new("s3", "S3", http.clone()).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        S3Backend::new("s3", "S3", http.with_allow_http(true)).unwrap();
        let e = S3Backend::new("s3", "S3", S3Config::new("")).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        let e = S3Backend::new("s3", "S3", S3Config::new("b").with_prefix("a//b")).unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
    }

    #[tokio::test]
    async fn construction_sends_nothing_and_calls_fail_one_by_one() {
        // Nothing listens on port 1: building the backend succeeds, each call fails with a
        // connection error the client may retry.
        let config = S3Config::emulator("http://127.0.0.1:1", "b")
            .with_credentials(S3Credentials::key_pair("k", "s"));
        let b = S3Backend::new("down", "down", config).unwrap();
        let key = Key::new("k").unwrap();
        let e = b.get(&key, 10).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
    }

    #[test]
    fn declared_sizes() {
        assert_eq!(declared_size(Some("bytes 0-9/1234"), Some(10)), Some(1234));
        assert_eq!(declared_size(Some("bytes */0"), None), Some(0));
        assert_eq!(declared_size(Some("bytes 0-9/*"), Some(10)), None);
        assert_eq!(declared_size(None, Some(77)), Some(77));
        assert_eq!(declared_size(None, None), None);
    }
}
