//! The conformance suite against a real MinIO in Docker (feature `containers`). Needs a
//! Docker engine, so it also needs `VAULTDB_TEST_DOCKER=1`; not run by `cargo xtask itest`.
#![cfg(feature = "containers")]

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_minio_in_docker() {
    if std::env::var("VAULTDB_TEST_DOCKER").as_deref() != Ok("1") {
        return eprintln!("skip: VAULTDB_TEST_DOCKER=1 not set (needs a Docker engine)");
    }
    let minio = vaultdb_minio::containers::start_minio("vaultdb-test").await.unwrap();
    let b =
        vaultdb_minio::MinioBackend::new("minio", "MinIO (Docker)", minio.config.clone()).unwrap();
    // Real MinIO's conditional puts are atomic: the full contract applies.
    vaultdb_testkit::run_all(&b, "").await;
}
