//! `kind = "minio"`: MinIO or another self-hosted S3-compatible store ([`MinioConfig`],
//! crate vaultdb-minio, a preset over vaultdb-s3).

use vaultdb_minio::MinioConfig;

use super::s3::with_static_keys;
use super::{Env, nonempty, opt_nonempty, page_size, url_like};

with_static_keys! {
    /// `kind = "minio"`: MinIO or another self-hosted S3-compatible store ([`MinioConfig`]).
    pub struct MinioSection("minio") {
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
    }
}

impl MinioSection {
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
