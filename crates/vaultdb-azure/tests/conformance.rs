//! The backend conformance suite against Azurite (started by `cargo xtask itest`). Skipped
//! unless `AZURITE_BLOB_STORAGE_URL` is set; object_store's emulator mode reads the URL from
//! that variable. The container is `VAULTDB_TEST_AZURE_CONTAINER` (default `vaultdb-test`).

use std::env;

use vaultdb_azure::{AzureBackend, AzureConfig};
use vaultdb_core::{BackendErrorKind, Key, KeyPrefix, ListFrom, PutMode, StorageBackend};
use vaultdb_testkit::Capabilities;

fn k() -> Key {
    Key::new("k").unwrap()
}

fn container() -> Option<String> {
    env::var("AZURITE_BLOB_STORAGE_URL").ok()?;
    Some(env::var("VAULTDB_TEST_AZURE_CONTAINER").unwrap_or_else(|_| "vaultdb-test".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_azure() {
    let Some(c) = container() else {
        return eprintln!("skip: AZURITE_BLOB_STORAGE_URL unset (run `cargo xtask itest`)");
    };
    let b = AzureBackend::new("azure", "Azurite", AzureConfig::azurite(c)).unwrap();
    vaultdb_testkit::run_all(&b, "conformance/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_azure_prefixed_small_pages() {
    let Some(c) = container() else {
        return eprintln!("skip: AZURITE_BLOB_STORAGE_URL unset (run `cargo xtask itest`)");
    };
    let config = AzureConfig::azurite(c).with_prefix("tenant/vault").with_page_size(7);
    let b = AzureBackend::new("azure-small", "Azurite (small pages)", config).unwrap();
    vaultdb_testkit::run_all_with(&b, "", &Capabilities::small_pages(60)).await;
}

#[tokio::test]
async fn missing_container_and_bad_key_are_permanent() {
    let Some(c) = container() else {
        return eprintln!("skip: AZURITE_BLOB_STORAGE_URL unset (run `cargo xtask itest`)");
    };
    let missing = AzureBackend::new(
        "azure-missing",
        "no container",
        AzureConfig::azurite("vaultdb-no-such-container"),
    )
    .unwrap();
    let e = missing.put(&k(), "v".into(), PutMode::Create).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    let e = missing.get(&k(), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    let e = missing.list_page(&KeyPrefix::default(), ListFrom::Start).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    // A wrong account key: Azurite answers 403.
    let wrong =
        AzureConfig::azurite(c).with_credentials(vaultdb_azure::AzureCredentials::AccessKey(
            "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXk=".into(),
        ));
    let b = AzureBackend::new("azure-wrong-key", "wrong key", wrong).unwrap();
    let e = b.get(&k(), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
}
