//! The backend conformance suite against an S3 endpoint (moto's server under
//! `cargo xtask itest`). Skipped unless `VAULTDB_TEST_S3_ENDPOINT` is set.

use std::env;

use vaultdb_core::{BackendErrorKind, Key, KeyPrefix, ListFrom, PutMode, StorageBackend};
use vaultdb_s3::{S3Backend, S3Config, S3Credentials};

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// A configuration for the test endpoint (bucket, keys from the environment), or `None`.
fn config(prefix: &str) -> Option<S3Config> {
    let endpoint = env::var("VAULTDB_TEST_S3_ENDPOINT").ok()?;
    let var = |name: &str, default: &str| env::var(name).unwrap_or_else(|_| default.into());
    Some(
        S3Config::emulator(endpoint, var("VAULTDB_TEST_S3_BUCKET", "vaultdb-test"))
            .with_prefix(prefix)
            .with_credentials(S3Credentials::key_pair(
                var("VAULTDB_TEST_S3_ACCESS_KEY", "testing"),
                var("VAULTDB_TEST_S3_SECRET_KEY", "testing"),
            )),
    )
}

/// The backend under test, from the environment, or `None` (skip).
fn backend(prefix: &str) -> Option<S3Backend> {
    let config = config(prefix)?;
    Some(S3Backend::new("s3", "S3 (test endpoint)", config).expect("config"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_s3() {
    let Some(b) = backend("") else {
        return eprintln!("skip: VAULTDB_TEST_S3_ENDPOINT unset (run `cargo xtask itest`)");
    };
    vaultdb_testkit::run_all(&b, "conformance/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_s3_with_key_prefix_and_small_pages() {
    let Some(b) = backend("tenant-a/vault") else {
        return eprintln!("skip: VAULTDB_TEST_S3_ENDPOINT unset (run `cargo xtask itest`)");
    };
    assert_eq!(b.prefix(), "tenant-a/vault/");
    let small_config = config("tenant-b").expect("set").with_page_size(7);
    let small = S3Backend::new("s3-small", "S3 (small pages)", small_config).unwrap();
    vaultdb_testkit::run_all_with(&small, "", &vaultdb_testkit::Capabilities::small_pages(120))
        .await;
    // A backend sees only the keys under its own prefix.
    let only = k("only-in-a");
    b.put(&only, "x".into(), PutMode::Create).await.unwrap();
    assert_eq!(small.get(&only, 1).await.unwrap(), None);
    let root = KeyPrefix::default();
    let listed = small.list_page(&root, ListFrom::Start).await.unwrap().entries;
    assert!(listed.iter().all(|e| e.key != only), "prefixes leak");
    let listed = b.list_page(&root, ListFrom::Start).await.unwrap().entries;
    assert!(listed.iter().any(|e| e.key == only && e.size == 1));
    b.delete(&only).await.unwrap();
}

#[tokio::test]
async fn missing_bucket_is_permanent() {
    let Some(mut config) = config("") else {
        return eprintln!("skip: VAULTDB_TEST_S3_ENDPOINT unset (run `cargo xtask itest`)");
    };
    config.bucket = "vaultdb-no-such-bucket".into();
    let missing = S3Backend::new("s3-missing", "no bucket", config).unwrap();
    let e = missing.put(&k("k"), "v".into(), PutMode::Create).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    let e = missing.get(&k("k"), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    let e = missing.list_page(&KeyPrefix::default(), ListFrom::Start).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
}

#[tokio::test]
async fn unreachable_endpoint_is_transient() {
    // A port nothing listens on: connection refused, which the client may retry.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = S3Config::emulator(format!("http://127.0.0.1:{port}"), "b")
        .with_credentials(S3Credentials::key_pair("k", "s"));
    let b = S3Backend::new("down", "down", config).unwrap();
    let e = b.get(&k("k"), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
    let e = b.put(&k("k"), "v".into(), PutMode::Create).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
}
