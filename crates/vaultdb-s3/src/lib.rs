#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod config;
mod error;

use std::fmt;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use vaultdb_core::backend::validate_key;
use vaultdb_core::{BackendError, ListPage, PutMode, StorageBackend};

pub use crate::config::{DEFAULT_PAGE_SIZE, S3Config, S3Credentials};
use crate::error::{Op, map_error};

/// A [`StorageBackend`] on one S3 bucket (and an optional key prefix inside it). See the
/// [crate docs](crate) for configuration, permissions and error mapping.
pub struct S3Backend {
    id: String,
    name: String,
    client: Client,
    bucket: String,
    prefix: String,
    page_size: i32,
    endpoint: Option<String>,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SDK client is left out: it holds the credentials provider.
        f.debug_struct("S3Backend")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint.as_deref().map(config::redact_url))
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Connects to the bucket in `config` (no request is sent: a wrong bucket or
    /// credentials show up on the first call, as a `Permanent` error).
    ///
    /// Fails with a `Permanent` error on an invalid configuration: an empty bucket, an
    /// invalid prefix, an `http://` endpoint without [`S3Config::allow_http`].
    pub async fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: S3Config,
    ) -> Result<Self, BackendError> {
        let prefix = config.normalized_prefix()?;
        config.check_endpoint()?;
        let credentials = config.credentials.provider(&config.region).await?;
        let checksums = if config.strict_checksums {
            (RequestChecksumCalculation::WhenSupported, ResponseChecksumValidation::WhenSupported)
        } else {
            (RequestChecksumCalculation::WhenRequired, ResponseChecksumValidation::WhenRequired)
        };
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .force_path_style(config.force_path_style)
            // The VaultDB client retries transient errors with its own backoff and
            // per-call deadline; SDK retries would multiply them.
            .retry_config(RetryConfig::disabled())
            .request_checksum_calculation(checksums.0)
            .response_checksum_validation(checksums.1);
        if let Some(provider) = credentials {
            builder = builder.credentials_provider(provider);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        Ok(Self {
            id: id.into(),
            name: name.into(),
            client: Client::from_conf(builder.build()),
            bucket: config.bucket,
            prefix,
            page_size: config.page_size.clamp(1, 1000) as i32,
            endpoint: config.endpoint,
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

    /// The underlying SDK client (for administration such as creating the bucket in tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn object_key(&self, key: &str) -> Result<String, BackendError> {
        validate_key(key).map_err(|e| {
            BackendError::permanent(format!("{}: invalid key {key:?}: {e}", self.id))
        })?;
        Ok(format!("{}{key}", self.prefix))
    }
}

#[async_trait]
impl StorageBackend for S3Backend {
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        let object = self.object_key(key)?;
        let len = data.len() as i64;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .content_length(len)
            .body(ByteStream::from(data));
        if mode == PutMode::Create {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(map_error(&self.id, Op::Put(mode), key, e).into_error()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        let object = self.object_key(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(&object).send().await {
            Ok(out) => out,
            Err(e) => {
                return match map_error(&self.id, Op::Get, key, e) {
                    error::Mapped::NotFound => Ok(None),
                    error::Mapped::Error(e) => Err(e),
                };
            }
        };
        match out.body.collect().await {
            Ok(body) => Ok(Some(body.into_bytes())),
            Err(e) => Err(BackendError::transient(format!(
                "{}: reading the body of {key:?} failed",
                self.id
            ))
            .with_source(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        let object = self.object_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(&object).send().await {
            Ok(_) => Ok(()),
            Err(e) => match map_error(&self.id, Op::Delete, key, e) {
                error::Mapped::NotFound => Ok(()),
                error::Mapped::Error(e) => Err(e),
            },
        }
    }

    async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<ListPage, BackendError> {
        let full = format!("{}{prefix}", self.prefix);
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .max_keys(self.page_size);
        if let Some(c) = cursor {
            req = req.continuation_token(c);
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => return Err(map_error(&self.id, Op::List, prefix, e).into_error()),
        };
        let mut keys = Vec::with_capacity(out.contents().len());
        for object in out.contents() {
            let Some(k) = object.key() else { continue };
            let Some(rel) = k.strip_prefix(&self.prefix) else {
                continue;
            };
            if !rel.starts_with(prefix) {
                continue;
            }
            // Objects someone else put under the prefix, with keys VaultDB never writes,
            // are not ours: skip them rather than hand the client a key it cannot use.
            if validate_key(rel).is_err() {
                tracing::debug!(backend = %self.id, key = %k, "ignoring object with an invalid key");
                continue;
            }
            keys.push(rel.to_owned());
        }
        let next = if out.is_truncated() == Some(true) {
            match out.next_continuation_token() {
                Some(t) if !t.is_empty() => Some(t.to_owned()),
                _ => {
                    return Err(BackendError::new(
                        vaultdb_core::BackendErrorKind::Other,
                        format!(
                            "{}: listing {prefix:?} is truncated but has no continuation token",
                            self.id
                        ),
                    ));
                }
            }
        } else {
            None
        };
        Ok(ListPage { keys, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_redacts_credentials_and_keys_are_validated() {
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
        let b = S3Backend::new("aws", "AWS", config).await.unwrap();
        assert_eq!(b.prefix(), "team/vault/");
        let shown = format!("{b:?}");
        assert!(!shown.contains("SECRET") && !shown.contains("pw@"), "{shown}");
        for bad in ["", "/a", "a//b", "a/../b", "a b"] {
            let e = b.put(bad, Bytes::new(), PutMode::Create).await.unwrap_err();
            assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent, "{bad:?}");
            assert!(b.get(bad).await.is_err());
            assert!(b.delete(bad).await.is_err());
        }
    }

    #[tokio::test]
    async fn http_endpoints_need_allow_http() {
        let http = S3Config::new("b").with_endpoint("http://10.0.0.1:9000");
        let e = S3Backend::new("s3", "S3", http.clone()).await.unwrap_err();
        assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent);
        let mut ok = http;
        ok.allow_http = true;
        S3Backend::new("s3", "S3", ok).await.unwrap();
        let e = S3Backend::new("s3", "S3", S3Config::new("")).await.unwrap_err();
        assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent);
        let e =
            S3Backend::new("s3", "S3", S3Config::new("b").with_prefix("a//b")).await.unwrap_err();
        assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent);
    }
}
