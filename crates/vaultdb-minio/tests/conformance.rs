//! The backend conformance suite against an S3-compatible server through the MinIO preset:
//! s3s-fs under `cargo xtask itest` (or a real MinIO). Skipped unless
//! `VAULTDB_TEST_MINIO_ENDPOINT` is set.
//!
//! s3s-fs, the S3 server itest runs here, is a toy in two ways that real MinIO is not, and
//! itest says so through two variables:
//!
//! - `VAULTDB_TEST_MINIO_ATOMIC_CREATE=0`: s3s-fs checks `If-None-Match: *` but not
//!   atomically (of concurrent creates of one key several may win), so the concurrent-create
//!   race is skipped (`Capabilities::atomic_concurrent_create`).
//! - `VAULTDB_TEST_MINIO_KEYS_AS_PATHS=1`: s3s-fs stores each key as a file path, so a key
//!   cannot also be the "directory" of another key (`pre` next to `pre/fix` fails with HTTP
//!   500, `File exists`), and a key longer than about 156 bytes fails (HTTP 500, `File name
//!   too long`: s3s-fs names a metadata file after the base64 of the whole key). The
//!   testkit's `odd_keys` check uses both shapes (and a 900-byte key), so it is replaced by
//!   [`odd_keys_as_paths`], the same odd characters without those shapes. VaultDB's own
//!   object keys are never another key's "directory"; record ids long enough to push a key
//!   past 156 bytes would fail on s3s-fs (not on MinIO or S3).

use std::env;

use bytes::Bytes;
use vaultdb_core::backend::StorageBackendExt;
use vaultdb_core::{Key, KeyPrefix, PutMode, StorageBackend};
use vaultdb_minio::{MinioBackend, MinioConfig};
use vaultdb_testkit::Capabilities;

async fn backend(prefix: &str, page_size: usize) -> Option<MinioBackend> {
    let endpoint = env::var("VAULTDB_TEST_MINIO_ENDPOINT").ok()?;
    let var = |name: &str, default: &str| env::var(name).unwrap_or_else(|_| default.into());
    let config = MinioConfig::new(
        endpoint,
        var("VAULTDB_TEST_MINIO_BUCKET", "vaultdb-test"),
        var("VAULTDB_TEST_MINIO_ACCESS_KEY", "minioadmin"),
        var("VAULTDB_TEST_MINIO_SECRET_KEY", "minioadmin"),
    )
    .with_prefix(prefix)
    .with_page_size(page_size);
    Some(MinioBackend::new("minio", "MinIO (test endpoint)", config).expect("config"))
}

fn keys_as_paths() -> bool {
    env::var("VAULTDB_TEST_MINIO_KEYS_AS_PATHS").as_deref() == Ok("1")
}

/// `run_all_with`, or on a keys-as-paths server every check but `odd_keys` (replaced).
async fn suite(b: &MinioBackend, prefix: &str, caps: &Capabilities) {
    if !keys_as_paths() {
        return vaultdb_testkit::run_all_with(b, prefix, caps).await;
    }
    eprintln!("testkit[minio]: keys-as-paths server: odd_keys replaced by odd_keys_as_paths");
    vaultdb_testkit::put_get_delete(b, prefix).await;
    vaultdb_testkit::get_missing(b, prefix).await;
    vaultdb_testkit::delete_missing(b, prefix).await;
    vaultdb_testkit::idempotent_delete(b, prefix).await;
    vaultdb_testkit::create_conflict(b, prefix).await;
    vaultdb_testkit::overwrite(b, prefix).await;
    vaultdb_testkit::empty_object(b, prefix).await;
    vaultdb_testkit::get_limits(b, prefix).await;
    vaultdb_testkit::large_object_of(b, prefix, caps.large_object_bytes).await;
    odd_keys_as_paths(b, prefix).await;
    vaultdb_testkit::list_prefix(b, prefix).await;
    vaultdb_testkit::list_sizes(b, prefix).await;
    vaultdb_testkit::list_after(b, prefix).await;
    vaultdb_testkit::list_pagination_of(b, prefix, caps.pagination_keys).await;
    vaultdb_testkit::list_after_delete(b, prefix).await;
    vaultdb_testkit::concurrent_puts(b, prefix).await;
    if caps.atomic_concurrent_create {
        vaultdb_testkit::concurrent_create(b, prefix).await;
    }
}

/// The longest object key (backend prefix included) the keys-as-paths check writes: s3s-fs also keeps a metadata file named
/// `.bucket-<base64 bucket>.object-<base64 key>.internal.json`, and a file name has at most
/// 255 bytes, so with a 12-byte bucket name keys longer than about 156 bytes fail.
const KEYS_AS_PATHS_MAX_KEY: usize = 150;

/// The testkit's odd keys, minus keys that are also another key's "directory", and no
/// longer than [`KEYS_AS_PATHS_MAX_KEY`].
async fn odd_keys_as_paths(b: &MinioBackend, prefix: &str) {
    let scope = format!("{prefix}odd-paths-{}/", std::process::id());
    let printable: String = (0x21u8..=0x7e).filter(|&c| c != b'/').map(char::from).collect();
    let mut rels: Vec<String> = [
        printable.as_str(),
        "case/Key",
        "case/key",
        "case/KEY",
        "pct/%",
        "pct/%41",
        "pct/%2F",
        "pct/%2f",
        "pct/a%20b",
        "sym/~user",
        "sym/a+b",
        "sym/a=b",
        "sym/a&b=c?d#e",
        "sym/back\\slash",
        "sym/co:lon*star\"quote<lt>gt|pipe",
        "dots/..a",
        "dots/.a",
        "dots/.../x",
        "pre/fix",
        "prefix",
        "con/nul/aux",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    rels.push(format!("seg/{printable}/tail"));
    // The longest key s3s-fs can hold (see the module docs), with odd characters.
    let fill = KEYS_AS_PATHS_MAX_KEY - b.prefix().len() - scope.len() - "max/".len();
    rels.push(format!("max/{}", "Az0~.%-_".chars().cycle().take(fill).collect::<String>()));
    let keys: Vec<Key> = rels.iter().map(|r| Key::new(format!("{scope}{r}")).unwrap()).collect();
    assert_eq!(b.prefix().len() + keys.last().unwrap().as_str().len(), KEYS_AS_PATHS_MAX_KEY);
    for k in &keys {
        b.put(k, Bytes::from(k.to_string()), PutMode::Create)
            .await
            .unwrap_or_else(|e| panic!("put {k:?}: {e}"));
    }
    for k in &keys {
        let got = b.get(k, u64::MAX).await.unwrap_or_else(|e| panic!("get {k:?}: {e}"));
        assert_eq!(got.as_deref(), Some(k.as_str().as_bytes()), "{k:?}");
    }
    let listed = |prefix: String| async move {
        let prefix = KeyPrefix::new(prefix).unwrap();
        let entries = b.list_all(&prefix).await.unwrap();
        entries.into_iter().map(|e| e.key).collect::<Vec<Key>>()
    };
    let mut want = keys.clone();
    want.sort();
    assert_eq!(listed(scope.clone()).await, want, "every key, in order");
    let case = listed(format!("{scope}case/K")).await;
    assert_eq!(
        case,
        [format!("{scope}case/KEY"), format!("{scope}case/Key")].map(|k| Key::new(k).unwrap())
    );
    for k in &keys {
        b.delete(k).await.unwrap();
    }
    assert!(listed(scope).await.is_empty());
}

fn capabilities() -> Capabilities {
    Capabilities {
        atomic_concurrent_create: env::var("VAULTDB_TEST_MINIO_ATOMIC_CREATE").as_deref()
            != Ok("0"),
        ..Capabilities::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_minio() {
    let Some(b) = backend("", 1000).await else {
        return eprintln!("skip: VAULTDB_TEST_MINIO_ENDPOINT unset (run `cargo xtask itest`)");
    };
    suite(&b, "conformance/", &capabilities()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_minio_prefixed_small_pages() {
    let Some(b) = backend("vault/prefix", 7).await else {
        return eprintln!("skip: VAULTDB_TEST_MINIO_ENDPOINT unset (run `cargo xtask itest`)");
    };
    let caps = Capabilities { pagination_keys: 50, large_object_bytes: 1 << 20, ..capabilities() };
    suite(&b, "", &caps).await;
}
