//! Test support for VaultDB's cross-cloud end-to-end tests (`tests/cross_cloud.rs`), which
//! `cargo xtask itest` runs against local emulators: moto (S3), s3s-fs (standing in for
//! MinIO), fake-gcs-server (GCS) and Azurite (Azure), plus a local directory and a real
//! PostgreSQL server.
//!
//! - [`Emulators::from_env`] reads the endpoints itest exports (`VAULTDB_TEST_*`,
//!   `AZURITE_BLOB_STORAGE_URL`) and builds a backend per cloud under a given prefix, and
//!   one on PostgreSQL (`VAULTDB_TEST_POSTGRES_TLS_URL`) in a given table.
//! - [`Control`] stops and starts an emulator through itest's control port
//!   (`VAULTDB_ITEST_CONTROL`): itest owns the processes, so a test can take a cloud away
//!   mid-run and bring it back empty, as a replaced disk or a wiped bucket would be.
//!
//! Without those variables the tests print `skip: ...` and pass.

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use vaultdb_azure::{AzureBackend, AzureConfig};
use vaultdb_core::{BackendError, KeyPrefix, ListFrom, StorageBackend};
use vaultdb_gcs::{GcsBackend, GcsConfig};
use vaultdb_minio::{MinioBackend, MinioConfig};
use vaultdb_postgres::{PostgresBackend, PostgresConfig};
use vaultdb_s3::{S3Backend, S3Config, S3Credentials};

/// The emulator endpoints itest exported.
#[derive(Clone, Debug)]
pub struct Emulators {
    s3: String,
    s3_bucket: String,
    minio: String,
    minio_bucket: String,
    minio_keys: (String, String),
    gcs: String,
    gcs_bucket: String,
    azure_container: String,
    postgres: String,
}

impl Emulators {
    /// The endpoints from the environment, or `None` if itest did not set them all.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| env::var(k).ok().filter(|v| !v.is_empty());
        let or = |k: &str, d: &str| var(k).unwrap_or_else(|| d.to_owned());
        var("AZURITE_BLOB_STORAGE_URL")?;
        Some(Self {
            s3: var("VAULTDB_TEST_S3_ENDPOINT")?,
            s3_bucket: or("VAULTDB_TEST_S3_BUCKET", "vaultdb-test"),
            minio: var("VAULTDB_TEST_MINIO_ENDPOINT")?,
            minio_bucket: or("VAULTDB_TEST_MINIO_BUCKET", "vaultdb-test"),
            minio_keys: (
                or("VAULTDB_TEST_MINIO_ACCESS_KEY", "minioadmin"),
                or("VAULTDB_TEST_MINIO_SECRET_KEY", "minioadmin"),
            ),
            gcs: var("VAULTDB_TEST_GCS_ENDPOINT")?,
            gcs_bucket: or("VAULTDB_TEST_GCS_BUCKET", "vaultdb-test"),
            azure_container: or("VAULTDB_TEST_AZURE_CONTAINER", "vaultdb-test"),
            postgres: var("VAULTDB_TEST_POSTGRES_TLS_URL")?,
        })
    }

    /// S3 (moto) under `prefix`.
    pub fn s3(&self, prefix: &str) -> Result<S3Backend, BackendError> {
        let config = S3Config::emulator(self.s3.clone(), self.s3_bucket.clone())
            .with_prefix(prefix)
            .with_credentials(S3Credentials::key_pair("testing", "testing"));
        S3Backend::new("aws", "S3 (moto)", config)
    }

    /// MinIO (s3s-fs) under `prefix`.
    pub fn minio(&self, prefix: &str) -> Result<MinioBackend, BackendError> {
        let config = MinioConfig::new(
            self.minio.clone(),
            self.minio_bucket.clone(),
            self.minio_keys.0.clone(),
            self.minio_keys.1.clone(),
        )
        .with_prefix(prefix);
        MinioBackend::new("minio", "MinIO (s3s-fs)", config)
    }

    /// GCS (fake-gcs-server) under `prefix`.
    pub fn gcs(&self, prefix: &str) -> Result<GcsBackend, BackendError> {
        let config =
            GcsConfig::emulator(self.gcs.clone(), self.gcs_bucket.clone()).with_prefix(prefix);
        GcsBackend::new("gcp", "GCS (fake-gcs-server)", config)
    }

    /// Azure (Azurite) under `prefix`.
    pub fn azure(&self, prefix: &str) -> Result<AzureBackend, BackendError> {
        let config = AzureConfig::azurite(self.azure_container.clone()).with_prefix(prefix);
        AzureBackend::new("azure", "Azure (Azurite)", config)
    }

    /// PostgreSQL in `table` (created on first use), over TLS with the server verified
    /// (`sslmode=verify-full` against the run's CA).
    pub fn postgres(&self, table: &str) -> Result<PostgresBackend, BackendError> {
        let config = PostgresConfig::new(self.postgres.clone()).with_table(table);
        PostgresBackend::new("pg", "PostgreSQL", config)
    }
}

/// A connection to itest's emulator control port.
#[derive(Debug)]
pub struct Control {
    addr: String,
}

impl Control {
    /// The control port from `VAULTDB_ITEST_CONTROL`, or `None`.
    pub fn from_env() -> Option<Self> {
        Some(Self { addr: env::var("VAULTDB_ITEST_CONTROL").ok()? })
    }

    /// Stops emulator `name` (`s3`, `minio`, `gcs`, `azure`); returns once it is gone.
    pub fn stop(&self, name: &str) -> Result<(), String> {
        self.call(&format!("stop {name}"))
    }

    /// Starts emulator `name` again, empty, with its bucket; returns once it answers.
    pub fn start(&self, name: &str) -> Result<(), String> {
        self.call(&format!("start {name}"))
    }

    fn call(&self, line: &str) -> Result<(), String> {
        let mut conn = TcpStream::connect(&self.addr).map_err(|e| format!("control: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
        conn.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("control: {e}"))?;
        let mut answer = String::new();
        BufReader::new(conn).read_line(&mut answer).map_err(|e| format!("control: {e}"))?;
        match answer.trim() {
            "ok" => Ok(()),
            other => Err(format!("control {line:?}: {other}")),
        }
    }
}

/// A short random tag for prefixes and record ids, so runs never collide.
pub fn random_tag() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:08x}", (nanos as u64 ^ u64::from(std::process::id()).rotate_left(17)) as u32)
}

/// Checks that `backend` answers a listing (used after an emulator restart).
pub async fn answers(backend: &dyn StorageBackend) -> bool {
    backend.list_page(&KeyPrefix::default(), ListFrom::Start).await.is_ok()
}
