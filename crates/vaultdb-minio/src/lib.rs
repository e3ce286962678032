#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "containers")]
pub mod containers;

use std::fmt;
use std::net::IpAddr;

use vaultdb_core::BackendError;
pub use vaultdb_s3::{IntoS3Config, S3Backend, S3Config, S3Credentials};

/// A MinIO (or other self-hosted S3-compatible) backend: an [`S3Backend`] configured by
/// [`MinioConfig`], built like any other backend: `MinioBackend::new(id, name, config)`
/// (see [`S3Backend::new`]).
pub type MinioBackend = S3Backend;

/// Where a MinIO backend keeps its objects. Compared with [`S3Config`], the endpoint is
/// required, buckets are addressed by path, plain `http://` is accepted on loopback
/// addresses, and the SDK sends no optional checksum headers.
#[derive(Clone)]
#[non_exhaustive]
pub struct MinioConfig {
    /// The server, e.g. `https://minio.internal:9000` (required).
    pub endpoint: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// A key prefix ("folder") inside the bucket; empty for the bucket root.
    pub prefix: String,
    /// The region requests are signed for (MinIO's default is `us-east-1`).
    pub region: String,
    /// How requests are signed: usually [`S3Credentials::Static`] with a MinIO access key
    /// and secret key; [`S3Credentials::Chain`] reads `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    pub credentials: S3Credentials,
    /// Accept a plain `http://` endpoint on any host, not just on loopback
    /// (`localhost`, `127.0.0.0/8`, `::1`). Off by default.
    pub allow_http: bool,
    /// Keys per listing page, 1 to 1000.
    pub page_size: usize,
}

impl MinioConfig {
    /// A configuration for `bucket` on the server at `endpoint`, signed with a static key
    /// pair.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            prefix: String::new(),
            region: "us-east-1".into(),
            credentials: S3Credentials::key_pair(access_key, secret_key),
            allow_http: false,
            page_size: vaultdb_s3::DEFAULT_PAGE_SIZE,
        }
    }

    /// The [`S3Config`] this preset stands for.
    pub fn to_s3_config(&self) -> Result<S3Config, BackendError> {
        if self.endpoint.is_empty() {
            return Err(BackendError::permanent("MinIO configuration: the endpoint is required"));
        }
        Ok(S3Config::new(self.bucket.clone())
            .with_endpoint(self.endpoint.clone())
            .with_prefix(self.prefix.clone())
            .with_region(self.region.clone())
            .with_path_style(true)
            .with_allow_http(self.allow_http || is_loopback_endpoint(&self.endpoint))
            .with_credentials(self.credentials.clone())
            .with_page_size(self.page_size))
    }
}

vaultdb_core::config_setters!(MinioConfig {
    with_prefix(prefix: impl Into<String>) => prefix.into(),
    with_allow_http(allow_http: bool),
    with_page_size(page_size: usize),
});

impl fmt::Debug for MinioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown through S3Config's Debug, which redacts credentials and URL userinfo.
        match self.to_s3_config() {
            Ok(c) => f.debug_tuple("MinioConfig").field(&c).finish(),
            Err(_) => {
                f.debug_struct("MinioConfig").field("bucket", &self.bucket).finish_non_exhaustive()
            }
        }
    }
}

impl IntoS3Config for MinioConfig {
    fn into_s3_config(self) -> Result<S3Config, BackendError> {
        self.to_s3_config()
    }
}

/// True if `endpoint`'s host is `localhost` or a loopback address.
pub fn is_loopback_endpoint(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        for yes in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
            "http://127.1.2.3",
            "http://u:p@localhost:1",
        ] {
            assert!(is_loopback_endpoint(yes), "{yes}");
        }
        for no in [
            "http://10.0.0.1:9000",
            "http://minio.example:9000",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "",
        ] {
            assert!(!is_loopback_endpoint(no), "{no}");
        }
    }

    #[test]
    fn preset_defaults() {
        let c = MinioConfig::new("http://127.0.0.1:9000", "b", "minio", "SECRET-XYZ");
        let s3 = c.to_s3_config().unwrap();
        assert!(s3.force_path_style && s3.allow_http && !s3.strict_checksums);
        assert!(!format!("{c:?}").contains("SECRET-XYZ"));
        let b = MinioBackend::new("m", "MinIO", c).unwrap();
        assert_eq!(b.bucket(), "b");
        // Plain http to another host needs allow_http.
        let remote = MinioConfig::new("http://minio.internal:9000", "b", "k", "s");
        assert!(MinioBackend::new("m", "MinIO", remote.clone()).is_err());
        MinioBackend::new("m", "MinIO", remote.with_allow_http(true)).unwrap();
        MinioBackend::new("m", "MinIO", MinioConfig::new("https://minio.internal", "b", "k", "s"))
            .unwrap();
        let e = MinioBackend::new("m", "MinIO", MinioConfig::new("", "b", "k", "s")).unwrap_err();
        assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent);
    }
}
