//! A throwaway Azurite in Docker (feature `containers`), for users with a Docker engine.
//!
//! This path is not exercised by `cargo xtask itest`, which runs Azurite from npm: the
//! project's build machines have no Docker engine. Azurite is reached in object_store's
//! emulator mode, which takes the blob URL from the `AZURITE_BLOB_STORAGE_URL` environment
//! variable: [`start_azurite`] returns the URL to put there, and the test that uses it must
//! set it before creating a backend (the library never changes the environment itself).
//! Creating a container needs a signed request that object_store cannot send, so run the
//! image with `--loose` and create it with any Azure client, or use `docker-compose.yml`.

use testcontainers_modules::azurite::{Azurite, BLOB_PORT};
use testcontainers_modules::testcontainers::ContainerAsync;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A running Azurite container and its blob URL (for `AZURITE_BLOB_STORAGE_URL`).
pub struct AzuriteContainer {
    /// The container (kept alive by this value; dropping it removes the container).
    pub container: ContainerAsync<Azurite>,
    /// `http://<host>:<port>`: the value for `AZURITE_BLOB_STORAGE_URL`.
    pub blob_url: String,
}

impl std::fmt::Debug for AzuriteContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzuriteContainer")
            .field("id", &self.container.id())
            .field("blob_url", &self.blob_url)
            .finish()
    }
}

/// Starts Azurite in Docker (API version check skipped, telemetry off).
pub async fn start_azurite() -> Result<AzuriteContainer, BoxError> {
    let container = Azurite::default()
        .with_skip_api_version_check()
        .with_loose()
        .with_disable_telemetry()
        .start()
        .await?;
    let host = container.get_host().await?;
    let port = container.get_host_port_ipv4(BLOB_PORT).await?;
    Ok(AzuriteContainer { container, blob_url: format!("http://{host}:{port}") })
}
