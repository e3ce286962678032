//! A throwaway MinIO server in Docker (feature `containers`), for users with a Docker engine.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let minio = vaultdb_minio::containers::start_minio("vaultdb-test").await?;
//! let backend = vaultdb_minio::connect("minio", "MinIO", minio.config.clone()).await?;
//! vaultdb_testkit::run_all(&backend, "").await; // the `vaultdb-testkit` crate
//! # Ok(()) }
//! ```
//!
//! This path is not exercised by `cargo xtask itest` (which runs s3s-fs, no Docker): the
//! project's build machines have no Docker engine. It starts the `minio/minio` image of
//! `testcontainers-modules` and creates the bucket.

use testcontainers_modules::minio::MinIO;
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

use crate::MinioConfig;

/// The root credentials of the MinIO image.
pub const MINIO_ROOT: (&str, &str) = ("minioadmin", "minioadmin");

/// A running MinIO container and a configuration for a bucket on it. Dropping it stops and
/// removes the container.
pub struct MinioContainer {
    /// The container (kept alive by this value).
    pub container: ContainerAsync<MinIO>,
    /// A configuration for the bucket that was created.
    pub config: MinioConfig,
}

impl std::fmt::Debug for MinioContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinioContainer")
            .field("id", &self.container.id())
            .field("config", &self.config)
            .finish()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Starts MinIO in Docker and creates `bucket` on it.
pub async fn start_minio(bucket: &str) -> Result<MinioContainer, BoxError> {
    let container = MinIO::default().start().await?;
    let host = container.get_host().await?;
    let port = container.get_host_port_ipv4(9000).await?;
    let config =
        MinioConfig::new(format!("http://{host}:{port}"), bucket, MINIO_ROOT.0, MINIO_ROOT.1)
            .with_allow_http(true);
    let backend = crate::MinioBackend::new("setup", "setup", config.clone())?;
    backend.client().await?.create_bucket().bucket(bucket).send().await?;
    Ok(MinioContainer { container, config })
}
