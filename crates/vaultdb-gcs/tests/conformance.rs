//! The backend conformance suite against a GCS JSON API endpoint (fake-gcs-server under
//! `cargo xtask itest`). Skipped unless `VAULTDB_TEST_GCS_ENDPOINT` is set.

use std::env;

use vaultdb_core::{BackendErrorKind, Key, KeyPrefix, ListFrom, PutMode, StorageBackend};
use vaultdb_gcs::{GcsBackend, GcsConfig};
use vaultdb_testkit::Capabilities;

fn k() -> Key {
    Key::new("k").unwrap()
}

fn endpoint() -> Option<String> {
    env::var("VAULTDB_TEST_GCS_ENDPOINT").ok()
}

fn bucket() -> String {
    env::var("VAULTDB_TEST_GCS_BUCKET").unwrap_or_else(|_| "vaultdb-test".into())
}

fn backend(id: &str, config: GcsConfig) -> GcsBackend {
    GcsBackend::new(id, "GCS (test endpoint)", config).expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_gcs() {
    let Some(ep) = endpoint() else {
        return eprintln!("skip: VAULTDB_TEST_GCS_ENDPOINT unset (run `cargo xtask itest`)");
    };
    let b = backend("gcs", GcsConfig::emulator(ep, bucket()));
    vaultdb_testkit::run_all(&b, "conformance/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_gcs_prefixed_small_pages() {
    let Some(ep) = endpoint() else {
        return eprintln!("skip: VAULTDB_TEST_GCS_ENDPOINT unset (run `cargo xtask itest`)");
    };
    let config = GcsConfig::emulator(ep, bucket()).with_prefix("tenant/vault").with_page_size(7);
    let b = backend("gcs-small", config);
    assert_eq!(b.prefix(), "tenant/vault/");
    vaultdb_testkit::run_all_with(&b, "", &Capabilities::small_pages(60)).await;
}

#[tokio::test]
async fn missing_bucket_is_permanent() {
    let Some(ep) = endpoint() else {
        return eprintln!("skip: VAULTDB_TEST_GCS_ENDPOINT unset (run `cargo xtask itest`)");
    };
    let b = backend("gcs-missing", GcsConfig::emulator(ep, "vaultdb-no-such-bucket"));
    let e = b.put(&k(), "v".into(), PutMode::Create).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    let e = b.list_page(&KeyPrefix::default(), ListFrom::Start).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
}
