//! `kind = "minio"`: MinIO or another self-hosted S3-compatible store ([`MinioConfig`],
//! crate vaultdb-minio, a preset over vaultdb-s3).

use std::sync::Arc;

use serde::Deserialize;
use vaultdb_core::{BackendError, StorageBackend};
use vaultdb_minio::{MinioBackend, MinioConfig};

use super::s3::StaticKeys;
use super::{Env, nonempty, opt_nonempty, page_size, url_like};

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

/// Builds a MinIO backend from its configuration.
pub(super) fn build(
    id: String,
    name: String,
    config: MinioConfig,
) -> Result<Arc<dyn StorageBackend>, BackendError> {
    Ok(Arc::new(MinioBackend::new(id, name, config)?))
}
