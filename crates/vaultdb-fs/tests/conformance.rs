//! The conformance suite against `FsBackend` in a temporary directory, and tests of what is
//! particular to a filesystem: escaping, case, temporary files, crashes, reopening.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use vaultdb_core::backend::{MAX_KEY_LEN, StorageBackendExt};
use vaultdb_core::{Key, KeyPrefix, PutMode, StorageBackend};
use vaultdb_fs::{FsBackend, TEMP_DIR};
use vaultdb_testkit::Capabilities;

/// A temporary directory with the store in `<dir>/store`, so escapes can be seen in `<dir>`.
async fn store() -> (tempfile::TempDir, FsBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = FsBackend::open("disk", "Local disk", dir.path().join("store")).await.unwrap();
    (dir, backend)
}

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// No limit on a `get`.
const ANY: u64 = u64::MAX;

/// The keys listed under `prefix`.
async fn listed(b: &FsBackend, prefix: &str) -> Vec<String> {
    let entries = b.list_all(&KeyPrefix::new(prefix).unwrap()).await.unwrap();
    entries.into_iter().map(|e| e.key.to_string()).collect()
}

/// Every file and directory under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_fs() {
    let (_dir, b) = store().await;
    vaultdb_testkit::run_all(&b, "").await;
    vaultdb_testkit::run_all(&b, "nested/run/").await;
    // Everything was cleaned up, directories included.
    assert_eq!(walk(b.root()), [PathBuf::from(TEMP_DIR)]);
}

#[tokio::test]
async fn conformance_fs_small_pages_current_thread() {
    let (_dir, b) = store().await;
    let b = b.with_page_size(9);
    vaultdb_testkit::run_all_with(&b, "small", &Capabilities::small_pages(100)).await;
    assert_eq!(walk(b.root()), [PathBuf::from(TEMP_DIR)]);
}

#[tokio::test]
async fn keys_cannot_leave_the_root() {
    let (dir, b) = store().await;
    let valid = [
        "..a",
        "a..",
        "...",
        "..../x",
        "a/..b/c",
        ".tmp",
        ".tmp/x",
        "%2e%2e/x",
        "%2E%2E%2Fetc",
        "..\\..\\evil",
        "a\\..\\..\\b",
        "~/x",
        "C:",
        "C:\\x",
        "-rf",
        "con",
        "a.o",
        "a.p/b",
        "_2e_2e",
    ];
    for (i, key) in valid.iter().enumerate() {
        b.put(&k(key), Bytes::from(format!("v{i}")), PutMode::Create).await.unwrap();
        let path = b.object_path(&k(key));
        assert!(path.starts_with(b.root()), "{key} -> {}", path.display());
    }
    // Keys that could leave the root cannot even be made.
    let invalid =
        ["../x", "a/../../x", "/etc/passwd", "a/./b", "..", ".", "a//b", "x/", "a b", "a\u{0}b"];
    for key in invalid {
        assert!(Key::new(key).is_err(), "{key:?}");
    }
    // Nothing appeared next to the root, and everything under it is a safe name.
    assert_eq!(walk(dir.path()).iter().filter(|p| p.components().count() == 1).count(), 1);
    for p in walk(b.root()) {
        for c in p.components() {
            let name = c.as_os_str().to_str().unwrap();
            assert!(
                name == TEMP_DIR
                    || name.bytes().all(|x| x.is_ascii_lowercase()
                        || x.is_ascii_digit()
                        || b"-_.".contains(&x)),
                "{name}"
            );
            assert!(name != "." && name != "..");
        }
    }
    let mut want: Vec<String> = valid.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(listed(&b, "").await, want);
    for (i, key) in valid.iter().enumerate() {
        assert_eq!(b.get(&k(key), ANY).await.unwrap().unwrap(), Bytes::from(format!("v{i}")));
    }
}

#[tokio::test]
async fn case_variants_stay_distinct() {
    let (_dir, b) = store().await;
    let keys = ["Key", "key", "KEY", "kEY", "dir/A", "dir/a", "DIR/a"];
    for key in keys {
        b.put(&k(key), Bytes::from(key.to_owned()), PutMode::Create).await.unwrap();
    }
    for key in keys {
        assert_eq!(b.get(&k(key), ANY).await.unwrap().unwrap(), Bytes::from(key.to_owned()));
    }
    assert_eq!(listed(&b, "").await.len(), keys.len());
    assert_eq!(listed(&b, "dir/").await.len(), 2);
    // No name on disk differs from another only by case: all are lowercase.
    for p in walk(b.root()) {
        let s = p.to_str().unwrap();
        assert_eq!(s, s.to_lowercase());
    }
}

#[tokio::test]
async fn stray_and_foreign_files_are_not_listed() {
    let (_dir, b) = store().await;
    b.put(&k("real/key"), Bytes::from_static(b"x"), PutMode::Create).await.unwrap();
    fs::write(b.temp_dir().join("123-0-0.tmp"), b"half a write").unwrap();
    fs::write(b.root().join("README"), b"not an object").unwrap();
    fs::write(b.root().join("Upper.o"), b"not canonical").unwrap();
    fs::write(b.root().join("_61.o"), b"non-canonical escape").unwrap();
    fs::write(b.root().join("x.q"), b"unknown suffix").unwrap();
    fs::create_dir(b.root().join("file-as-dir.o")).unwrap();
    fs::write(b.root().join("real").join("notdir"), b"a file where a directory is").unwrap();
    assert_eq!(listed(&b, "").await, ["real/key"]);
    assert_eq!(b.get(&k("notdir"), ANY).await.unwrap(), None);
    assert_eq!(b.get(&k("real/notdir/x"), ANY).await.unwrap(), None);
    b.delete(&k("real/notdir/x")).await.unwrap();
}

#[tokio::test]
async fn crash_between_temp_write_and_link_leaves_key_absent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let b = FsBackend::open("disk", "Local disk", &root).await.unwrap();
    // What a writer that died after writing and syncing its temp file leaves behind.
    let young = b.temp_dir().join("1-1-1.tmp");
    let old = b.temp_dir().join("1-2-2.tmp");
    fs::write(&young, b"complete bytes of rec/share").unwrap();
    fs::write(&old, b"an abandoned write").unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    fs::File::options().write(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();

    assert_eq!(b.get(&k("rec/share"), ANY).await.unwrap(), None);
    assert!(listed(&b, "").await.is_empty());
    // The key can still be created normally.
    b.put(&k("rec/share"), Bytes::from_static(b"v"), PutMode::Create).await.unwrap();
    drop(b);

    // Reopening removes temp files older than an hour and keeps younger ones.
    let b = FsBackend::open("disk", "Local disk", &root).await.unwrap();
    assert!(!old.exists());
    assert!(young.exists());
    assert_eq!(b.clean_temp(Duration::ZERO).await.unwrap(), 1);
    assert!(!young.exists());
    assert_eq!(listed(&b, "").await, ["rec/share"]);
}

#[tokio::test]
async fn reopening_lists_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let long = "L".repeat(MAX_KEY_LEN - 2);
    let keys = vec![
        "vdb/r/abc/v1/s1".to_owned(),
        "vdb/r/abc/v1/s2".to_owned(),
        "vdb/r/ABC/v1/s1".to_owned(),
        "a".to_owned(),
        "a/b".to_owned(),
        format!("x/{long}"),
    ];
    {
        let b = FsBackend::open("disk", "Local disk", &root).await.unwrap();
        for key in &keys {
            b.put(&k(key), Bytes::from(key.clone()), PutMode::Create).await.unwrap();
        }
    }
    // Every name on disk fits common file-name limits.
    for p in walk(&root) {
        for c in p.components() {
            assert!(c.as_os_str().len() <= 143, "{}", c.as_os_str().len());
        }
    }
    let reopened = FsBackend::open("disk", "Local disk", &root).await.unwrap();
    let lazily = FsBackend::new("disk", "Local disk", &root);
    let mut want = keys.clone();
    want.sort();
    for b in [&reopened, &lazily] {
        let mut got = listed(b, "").await;
        got.sort();
        assert_eq!(got, want);
        for key in &keys {
            assert_eq!(b.get(&k(key), ANY).await.unwrap().unwrap(), Bytes::from(key.clone()));
        }
        let mut v1 = listed(b, "vdb/r/abc/").await;
        v1.sort();
        assert_eq!(v1, ["vdb/r/abc/v1/s1", "vdb/r/abc/v1/s2"]);
        assert_eq!(listed(b, "x/LLL").await, [format!("x/{long}")]);
    }
}

#[tokio::test]
async fn new_creates_the_root_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet");
    let b = FsBackend::new("disk", "Local disk", &root);
    assert_eq!(b.get(&k("k"), ANY).await.unwrap(), None);
    assert!(listed(&b, "").await.is_empty());
    b.delete(&k("k")).await.unwrap();
    assert!(!root.exists());
    b.put(&k("k"), Bytes::from_static(b"v"), PutMode::Create).await.unwrap();
    assert_eq!(b.get(&k("k"), ANY).await.unwrap().unwrap(), Bytes::from_static(b"v"));
}

#[tokio::test]
async fn delete_removes_empty_directories() {
    let (_dir, b) = store().await;
    b.put(&k("a/b/c/d"), Bytes::from_static(b"1"), PutMode::Create).await.unwrap();
    b.put(&k("a/x"), Bytes::from_static(b"2"), PutMode::Create).await.unwrap();
    b.delete(&k("a/b/c/d")).await.unwrap();
    assert_eq!(
        walk(b.root()),
        [PathBuf::from(TEMP_DIR), PathBuf::from("a"), PathBuf::from("a/x.o")]
    );
    b.delete(&k("a/x")).await.unwrap();
    assert_eq!(walk(b.root()), [PathBuf::from(TEMP_DIR)]);
    // Create again after the directories are gone.
    b.put(&k("a/b/c/d"), Bytes::from_static(b"3"), PutMode::Create).await.unwrap();
    assert_eq!(b.get(&k("a/b/c/d"), ANY).await.unwrap().unwrap(), Bytes::from_static(b"3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_and_deletes_in_one_directory() {
    // Deletes prune directories that concurrent puts are about to use; every put that
    // returns Ok must be readable.
    let (_dir, b) = store().await;
    let b = std::sync::Arc::new(b);
    let mut tasks = Vec::new();
    for t in 0..4 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let mine = format!("shared/dir/t{t}-{i}");
                let key = k(&mine);
                b.put(&key, Bytes::from(mine.clone()), PutMode::Create).await.unwrap();
                assert_eq!(b.get(&key, ANY).await.unwrap().unwrap(), Bytes::from(mine.clone()));
                b.delete(&key).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(listed(&b, "").await.is_empty());
}

#[tokio::test]
async fn no_temp_files_left_after_writes() {
    let (_dir, b) = store().await;
    b.put(&k("k"), Bytes::from_static(b"1"), PutMode::Create).await.unwrap();
    b.put(&k("k"), Bytes::from_static(b"2"), PutMode::Overwrite).await.unwrap();
    assert!(b.put(&k("k"), Bytes::from_static(b"3"), PutMode::Create).await.is_err());
    assert_eq!(fs::read_dir(b.temp_dir()).unwrap().count(), 0);
    assert_eq!(b.get(&k("k"), ANY).await.unwrap().unwrap(), Bytes::from_static(b"2"));
}

#[tokio::test]
async fn debug_shows_id_name_and_root() {
    let (_dir, b) = store().await;
    let d = format!("{b:?}");
    assert!(d.starts_with("FsBackend { id: \"disk\", name: \"Local disk\", root: "), "{d}");
    assert!(d.contains("store"));
}
