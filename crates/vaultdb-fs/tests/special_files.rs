//! What is found at an object's path is not always a file the backend wrote: a FIFO, a
//! symlink to `/dev/zero`, a sparse file of 1 GiB. Each must fail fast, without blocking and
//! without reading more than the caller allows, while a counting global allocator holds a
//! hard limit (an allocation past it aborts the test binary).
//!
//! The cases run one after the other in one test, so that nothing else allocates while one
//! of them measures.

#![cfg(unix)]

use std::alloc::System;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cap::Cap;
use vaultdb_core::{BackendErrorKind, Key, PutMode, StorageBackend};
use vaultdb_fs::FsBackend;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Allowed growth of the heap during one `get`.
const BOUND: usize = 16 << 20;

/// What the `get`s allow: the limit the client puts on a keyring slot.
const LIMIT: u64 = 64 << 10;

/// What a `get` may take, even on a loaded machine; an unbounded read of a FIFO never ends.
const FAST: Duration = Duration::from_secs(5);

/// A backend in a temporary directory holding `key`, and the path of its object file.
async fn store_with(key: &str) -> (tempfile::TempDir, FsBackend, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBackend::open("disk", "Local disk", dir.path().join("store")).await.unwrap();
    let key = Key::new(key).unwrap();
    b.put(&key, Bytes::from_static(b"a share"), PutMode::Overwrite).await.unwrap();
    assert_eq!(b.get(&key, LIMIT).await.unwrap().unwrap(), Bytes::from_static(b"a share"));
    let path = b.object_path(&key);
    (dir, b, path)
}

/// Reads `key` with the heap limited to its current size plus [`BOUND`] and a deadline of
/// [`FAST`]; returns the error kind (a read that succeeds fails the test).
async fn get_fails_fast(b: &FsBackend, key: &str) -> BackendErrorKind {
    let base = ALLOC.allocated();
    ALLOC.set_limit(base + BOUND).unwrap();
    let start = Instant::now();
    let r = tokio::time::timeout(FAST, b.get(&Key::new(key).unwrap(), LIMIT)).await;
    ALLOC.set_limit(usize::MAX).unwrap();
    let elapsed = start.elapsed();
    let r = r.unwrap_or_else(|_| panic!("get {key:?} still running after {FAST:?}"));
    match r {
        Ok(v) => panic!("get {key:?} succeeded with {:?} bytes", v.map(|b| b.len())),
        Err(e) => {
            assert!(elapsed < FAST, "get {key:?} took {elapsed:?}");
            assert!(e.to_string().contains("regular") || e.to_string().contains("large"), "{e}");
            e.kind()
        }
    }
}

fn replace(path: &Path, with: impl FnOnce(&Path)) {
    std::fs::remove_file(path).unwrap();
    with(path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_fail_fast_in_bounded_memory() {
    a_fifo_at_an_object_path_fails_at_once().await;
    a_symlink_to_dev_zero_is_not_followed().await;
    a_sparse_gigabyte_file_is_not_read().await;
}

async fn a_fifo_at_an_object_path_fails_at_once() {
    let (_dir, b, path) = store_with("vaultdb/keyring").await;
    replace(&path, |p| {
        let status = std::process::Command::new("mkfifo").arg(p).status().unwrap();
        assert!(status.success());
    });
    let kind = get_fails_fast(&b, "vaultdb/keyring").await;
    assert_ne!(kind, BackendErrorKind::Transient, "a FIFO is not worth retrying");
    // The FIFO is still there, and was never opened for writing by the backend.
    assert!(path.exists());
}

async fn a_symlink_to_dev_zero_is_not_followed() {
    let (_dir, b, path) = store_with("vaultdb/keyring").await;
    replace(&path, |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    let kind = get_fails_fast(&b, "vaultdb/keyring").await;
    assert_ne!(kind, BackendErrorKind::Transient);
}

async fn a_sparse_gigabyte_file_is_not_read() {
    let (_dir, b, path) = store_with("vaultdb/r/tag/share").await;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 30).unwrap();
    let kind = get_fails_fast(&b, "vaultdb/r/tag/share").await;
    assert_ne!(kind, BackendErrorKind::Transient);
}
