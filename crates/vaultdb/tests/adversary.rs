//! The adversary's findings: one backend (or its directory) under hostile control, or broken
//! in every way it can be, against the command line and server as shipped. Each test is one
//! numbered finding of docs/SECURITY.md's "Any one backend" table, written as the attack
//! first; each failed on the code before the defense it names.
//!
//! The store is the embedded default unless a test says otherwise: three directory backends
//! `disk-1..3` under `./vaultdb-data`, 2-of-3.

// This file is long because it is the whole adversary suite: one test per finding, the
// attacks side by side with the helpers they share.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::vaultdb;
use vaultdb_core::backend::StorageBackendExt;
use vaultdb_core::naming::{KeySpace, ParsedKey};
use vaultdb_core::{BackendErrorKind, CallPolicy, StorageBackend, VaultDb};
use vaultdb_fs::FsBackend;
use vaultdb_testkit::{Failing, Ops};

// ---------------------------------------------------------------------------------------
// Helpers

fn data_dir(d: &Path) -> PathBuf {
    d.join("vaultdb-data")
}

fn disk(d: &Path, i: usize) -> PathBuf {
    data_dir(d).join(format!("disk-{i}"))
}

/// The fs backend's file for the keyring object (`vaultdb/keyring`).
fn keyring_file(d: &Path, i: usize) -> PathBuf {
    disk(d, i).join("vaultdb").join("keyring.o")
}

/// Every object file of record shares under one disk (`vaultdb/r/...`).
fn record_files(disk: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&disk.join("vaultdb").join("r"), &mut out);
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Runs `vaultdb ARGS` in `d` under GNU time, a 4 GiB address-space limit (so that an
/// unbounded read fails instead of exhausting the machine) and a hard timeout; returns the
/// output (without time's line) and the peak resident set size in KiB.
fn run_measured(d: &Path, args: &[&str], timeout: Duration) -> (Output, u64) {
    let mut c = std::process::Command::new("/usr/bin/time");
    c.current_dir(d)
        .args(["-f", "VAULTDB_TEST_MAXRSS_KIB=%M", "timeout", "-s", "KILL"])
        .arg(format!("{}", timeout.as_secs()))
        .args(["prlimit", "--as=4294967296", "--"])
        .arg(env!("CARGO_BIN_EXE_vaultdb"))
        .args(args);
    for v in common::VAULTDB_ENV {
        c.env_remove(v);
    }
    let mut out = c.output().expect("run vaultdb under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, rss) = match stderr.rsplit_once("VAULTDB_TEST_MAXRSS_KIB=") {
        Some((rest, rss)) => (rest.to_owned(), rss.trim().parse::<u64>().unwrap_or(0)),
        None => (stderr.clone(), 0),
    };
    out.stderr = rest.into_bytes();
    (out, rss)
}

/// Stores `data` as record `id` through the command line, which must succeed.
fn put(d: &Path, id: &str, data: impl Into<Vec<u8>>) {
    vaultdb(d).args(["put", id, "-"]).write_stdin(data).assert().success();
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn quick_policy() -> CallPolicy {
    CallPolicy {
        timeout: Duration::from_secs(2),
        max_attempts: 2,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// The embedded default's three directories as library backends, the third one wrapped.
fn disks(d: &Path) -> (FsBackend, FsBackend, Failing<FsBackend>) {
    let fs = |i: usize| FsBackend::new(format!("disk-{i}"), format!("disk-{i}"), disk(d, i));
    (fs(1), fs(2), Failing::new(fs(3)))
}

/// Keys that hold a share of some record version (not tombstones, not heads), per disk.
async fn data_share_keys(d: &Path) -> Vec<usize> {
    let ks = KeySpace::new("vaultdb").unwrap();
    let mut counts = Vec::new();
    for i in 1..=3 {
        let b = FsBackend::new(format!("disk-{i}"), "", disk(d, i));
        let keys = b.list_all(&ks.records_prefix()).await.unwrap();
        counts.push(
            keys.iter()
                .filter(|k| {
                    matches!(
                        ks.parse(k.key.as_str()),
                        Some(ParsedKey::Share { .. } | ParsedKey::Segment { .. })
                    )
                })
                .count(),
        );
    }
    counts
}

// ---------------------------------------------------------------------------------------
// Finding 1: a backend restored from a backup (or one that missed a delete) must never
// resurrect a deleted record.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_a_restored_backup_does_not_resurrect_a_deleted_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "user-42", "the deleted secret");
    put(d, "kept", "still here");

    // The adversary keeps a copy of disk-1 (a backup, or a snapshot it controls).
    let backup = d.join("disk-1.bak");
    copy_dir(&disk(d, 1), &backup);

    // disk-3 refuses writes and deletes while the record is deleted: the delete succeeds,
    // degraded (N-K+1 = 2 backends confirmed).
    {
        let (b1, b2, b3) = disks(d);
        b3.handle().fail(Ops::PUT.union(Ops::DELETE), BackendErrorKind::Permanent);
        let db = VaultDb::builder()
            .backend(b1)
            .backend(b2)
            .backend(b3)
            .threshold(2)
            .call_policy(quick_policy())
            .open()
            .await
            .expect("open the embedded default's store");
        db.delete("user-42").await.expect("a delete with one backend failing succeeds");
    }

    // disk-3 is healthy again, and disk-1 is rolled back to the backup.
    std::fs::remove_dir_all(disk(d, 1)).unwrap();
    copy_dir(&backup, &disk(d, 1));

    let out = vaultdb(d).args(["get", "user-42"]).output().unwrap();
    assert!(!out.status.success(), "get of a deleted record must fail");
    assert!(stderr(&out).contains("RECORD_NOT_FOUND"), "not found: {}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("deleted secret"));

    let out = vaultdb(d).arg("list").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n", "list shows only live records");

    // Scrub removes the leftovers instead of copying them back.
    vaultdb(d).arg("scrub").assert().success();
    let out = vaultdb(d).args(["get", "user-42"]).output().unwrap();
    assert!(stderr(&out).contains("RECORD_NOT_FOUND"), "still deleted: {}", stderr(&out));
    vaultdb(d).args(["get", "kept"]).assert().success().stdout("still here");
    // Only "kept" has data shares left (one per disk).
    assert_eq!(data_share_keys(d).await, vec![1, 1, 1], "the deleted record's shares are gone");
}

/// A single hostile backend cannot hide a record by inventing a tombstone: it does not
/// hold the key that authenticates them. (Here it copies another record's tombstone into
/// this record's directory, the strongest forgery it can make without the key.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_a_forged_tombstone_does_not_hide_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "victim", "v");
    put(d, "other", "o");
    let before: Vec<PathBuf> = record_files(&disk(d, 1));
    vaultdb(d).args(["delete", "other"]).assert().success();
    // The files that appeared under disk-1 for "other" are its tombstone (and head, if any).
    let after = record_files(&disk(d, 1));
    let new_files: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(!new_files.is_empty(), "a delete leaves a tombstone");
    // Plant them in the victim's directory on disk-1 (same file names: a newer version).
    let tomb_dirs: Vec<&Path> = new_files.iter().filter_map(|p| p.parent()).collect();
    let victim_dir = before
        .iter()
        .filter_map(|p| p.parent())
        .find(|dirp| !tomb_dirs.contains(dirp))
        .expect("the victim's directory")
        .to_path_buf();
    for f in &new_files {
        std::fs::copy(f, victim_dir.join(f.file_name().unwrap())).unwrap();
    }
    vaultdb(d).args(["get", "victim"]).assert().success().stdout("v");
    let out = vaultdb(d).arg("list").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("victim"));
}

// ---------------------------------------------------------------------------------------
// Finding 2: one backend must not be able to exhaust memory or time.

#[test]
fn f2_a_huge_share_costs_bounded_memory_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = "x".repeat(1024);
    put(d, "rec", data.clone());
    let (healthy, healthy_rss) = run_measured(d, &["get", "rec"], Duration::from_secs(60));
    assert!(healthy.status.success(), "{}", stderr(&healthy));
    assert!(healthy_rss > 0, "GNU time reported a peak RSS");

    // disk-1's share of the record becomes a 1 GiB (sparse) file.
    let files = record_files(&disk(d, 1));
    assert_eq!(files.len(), 1, "one share object: {files:?}");
    std::fs::OpenOptions::new().write(true).open(&files[0]).unwrap().set_len(1 << 30).unwrap();

    let (out, rss) = run_measured(d, &["get", "rec"], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "the read still succeeds from disk-2 and disk-3: {}",
        stderr(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), data);
    assert!(stderr(&out).contains("disk-1"), "the bad backend is named: {}", stderr(&out));
    assert!(
        rss <= 2 * healthy_rss,
        "peak RSS {rss} KiB with a 1 GiB share, {healthy_rss} KiB healthy: more than 2x"
    );
    eprintln!("f2: get peak RSS healthy {healthy_rss} KiB, with a 1 GiB share on disk-1 {rss} KiB");
}

#[test]
fn f2_a_keyring_object_that_never_ends_costs_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "v");
    let (_, healthy_rss) = run_measured(d, &["get", "rec"], Duration::from_secs(60));

    let k = keyring_file(d, 2);
    std::fs::remove_file(&k).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &k).unwrap();

    let start = Instant::now();
    let (out, rss) = run_measured(d, &["get", "rec"], Duration::from_secs(60));
    assert!(out.status.success(), "two good keyring shares suffice: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v");
    assert!(stderr(&out).contains("disk-2"), "the bad backend is named: {}", stderr(&out));
    assert!(rss <= 2 * healthy_rss, "peak RSS {rss} KiB vs {healthy_rss} KiB healthy");
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
}

#[test]
fn f2_a_keyring_fifo_does_not_hang_any_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "v");
    let k = keyring_file(d, 2);
    std::fs::remove_file(&k).unwrap();
    let st = std::process::Command::new("mkfifo").arg(&k).status().unwrap();
    assert!(st.success(), "mkfifo");

    for args in [&["get", "rec"][..], &["list"], &["status"]] {
        let start = Instant::now();
        let (out, _) = run_measured(d, args, Duration::from_secs(40));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}: {}", stderr(&out));
        assert!(
            out.status.success(),
            "{args:?} must succeed with 2 good backends: {}",
            stderr(&out)
        );
        // The first command names disk-2 and rewrites its slot like any bad share.
        if args == ["get", "rec"] {
            assert!(stderr(&out).contains("disk-2"), "{args:?} names disk-2: {}", stderr(&out));
            let meta = std::fs::symlink_metadata(&k).unwrap();
            assert!(meta.file_type().is_file(), "disk-2's keyring slot was rewritten");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Finding 3: one backend's failure at construction or first use must not stop a store that
// still has K healthy backends.

/// A TCP listener on loopback that accepts connections and never answers.
fn silent_listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn f3_one_clouds_dead_credentials_do_not_stop_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "readable");

    // disk-3 becomes a GCS backend whose service account's token endpoint never answers.
    let (_listener, port) = silent_listener();
    let key = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .unwrap();
    assert!(key.status.success(), "openssl genpkey");
    let sa = serde_json::json!({
        "type": "service_account",
        "project_id": "vaultdb-test",
        "private_key_id": "0123456789abcdef",
        "private_key": String::from_utf8(key.stdout).unwrap(),
        "client_email": "vaultdb-test@vaultdb-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": format!("http://127.0.0.1:{port}/token"),
    });
    std::fs::write(d.join("sa.json"), sa.to_string()).unwrap();
    std::fs::write(
        d.join("vaultdb.toml"),
        format!(
            "threshold = 2\ndata_dir = \"vaultdb-data\"\n\
             [timeouts]\ncall = \"2s\"\nattempts = 1\n\
             [[backends]]\nkind = \"fs\"\nid = \"disk-1\"\npath = \"disk-1\"\n\
             [[backends]]\nkind = \"fs\"\nid = \"disk-2\"\npath = \"disk-2\"\n\
             [[backends]]\nkind = \"gcs\"\nid = \"disk-3\"\nbucket = \"vaultdb-test\"\n\
             endpoint = \"http://127.0.0.1:{port}\"\nallow_http = true\n"
        ),
    )
    .unwrap();

    let run = |args: &[&str]| {
        let start = Instant::now();
        let out = vaultdb(d)
            .env("GOOGLE_APPLICATION_CREDENTIALS", d.join("sa.json"))
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        (out, start.elapsed())
    };
    let (out, took) = run(&["get", "rec"]);
    assert!(out.status.success(), "K healthy backends serve reads: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "readable");
    assert!(took < Duration::from_secs(30), "get took {took:?}");

    let (out, _) = run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    assert!(text.contains("2 of 3"), "status counts 2 of 3 up: {text}");
    assert!(text.contains("disk-3"), "status names disk-3 and its error: {text}");
}

#[test]
fn f3_a_new_store_with_one_backend_unreachable_counts_what_answered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // disk-3 is an S3-compatible server that refuses every connection.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        d.join("vaultdb.toml"),
        format!(
            "threshold = 2\ndata_dir = \"store\"\n\
             [timeouts]\ncall = \"2s\"\nattempts = 1\n\
             [[backends]]\nkind = \"fs\"\nid = \"disk-1\"\npath = \"disk-1\"\n\
             [[backends]]\nkind = \"fs\"\nid = \"disk-2\"\npath = \"disk-2\"\n\
             [[backends]]\nkind = \"minio\"\nid = \"disk-3\"\nbucket = \"b\"\n\
             endpoint = \"http://127.0.0.1:{port}\"\naccess_key_id = \"k\"\n"
        ),
    )
    .unwrap();
    let out = vaultdb(d)
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .args(["put", "x", "-"])
        .write_stdin("1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "no keyring is created while a backend is unreachable");
    let e = stderr(&out);
    assert!(!e.contains("got 0"), "two backends answered, not zero: {e}");
    assert!(e.contains("disk-3"), "the failing backend is named: {e}");
}

// ---------------------------------------------------------------------------------------
// Finding 4: the keyring.

#[test]
fn f4_a_lost_keyring_is_an_error_never_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "v");
    for i in 1..=3 {
        std::fs::remove_file(keyring_file(d, i)).unwrap();
    }
    let before = common::snapshot(&data_dir(d));
    for args in [&["get", "rec"][..], &["list"], &["scrub"]] {
        let out = vaultdb(d).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail: the store has data but no keyring");
        let e = stderr(&out);
        assert!(e.to_lowercase().contains("keyring"), "{args:?}: the error names the keyring: {e}");
        assert!(!e.contains("RECORD_NOT_FOUND"), "{args:?}: {e}");
    }
    let out = vaultdb(d).args(["put", "rec", "-"]).write_stdin("second copy").output().unwrap();
    assert!(!out.status.success(), "put must not create a second store beside the first");
    let mut after = common::snapshot(&data_dir(d));
    after.remove(Path::new("audit.jsonl"));
    let mut before = before;
    before.remove(Path::new("audit.jsonl"));
    assert_eq!(before, after, "nothing was written to the backends");
    for i in 1..=3 {
        assert!(!keyring_file(d, i).exists(), "no new keyring on disk-{i}");
    }
}

#[test]
fn f4_one_swapped_keyring_share_is_named_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "v");
    std::fs::copy(keyring_file(d, 1), keyring_file(d, 2)).unwrap();

    let out = vaultdb(d).args(["get", "rec"]).output().unwrap();
    assert!(out.status.success(), "two good keyring shares suffice: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v");
    assert!(stderr(&out).contains("disk-2"), "the bad share is named: {}", stderr(&out));

    vaultdb(d).arg("scrub").assert().success();
    assert_ne!(
        std::fs::read(keyring_file(d, 1)).unwrap(),
        std::fs::read(keyring_file(d, 2)).unwrap(),
        "scrub rewrote disk-2's keyring share"
    );
    let out = vaultdb(d).args(["get", "rec"]).output().unwrap();
    assert!(out.status.success());
    assert!(!stderr(&out).contains("disk-2"), "healthy again: {}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// Finding 5: every read that saw a bad share names its backend.

/// Counts the gets of share objects (keys under `r/`): not those of a record's mark or
/// settled object, which every read asks for first (docs/FORMAT.md section 17).
#[derive(Debug)]
struct ShareGets {
    inner: Arc<vaultdb_core::MemoryBackend>,
    gets: Arc<std::sync::atomic::AtomicU64>,
}

vaultdb_testkit::forward_backend! {
    impl StorageBackend for ShareGets {
        forward id, name, put, delete, list_page to self.inner;

        async fn get(
            &self,
            key: &vaultdb_core::backend::Key,
            max_len: u64,
        ) -> Result<Option<bytes::Bytes>, vaultdb_core::backend::BackendError> {
            if key.as_str().contains("/r/") {
                self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            self.inner.get(key, max_len).await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_every_read_that_saw_a_tampered_share_names_its_backend() {
    use vaultdb_core::{MemoryBackend, Record};
    use vaultdb_testkit::Randomized;

    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), "m"))).collect();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let b0 = ShareGets { inner: Arc::clone(&mems[0]), gets: Arc::clone(&counter) };
    let share_gets = || counter.load(std::sync::atomic::Ordering::SeqCst);
    // Seeded random latency on every backend, so reads take every order of backends.
    let wrap = |b: Arc<dyn StorageBackend>, seed: u64| -> Arc<dyn StorageBackend> {
        Arc::new(Randomized::new(b, seed, Duration::from_millis(8), 0.0))
    };
    let db = VaultDb::builder()
        .backend_arc(wrap(Arc::new(b0), 1))
        .backend_arc(wrap(mems[1].clone(), 2))
        .backend_arc(wrap(mems[2].clone(), 3))
        .threshold(2)
        .read_repair(false)
        .hedge_after(Some(Duration::from_millis(3)))
        .call_policy(quick_policy())
        .open()
        .await
        .unwrap();
    db.put(Record::new("rec", b"the value".to_vec())).await.unwrap();

    // Flip one byte of b0's share and recompute the envelope's CRC.
    let ks = KeySpace::new("vaultdb").unwrap();
    let key = mems[0]
        .list_all(&ks.records_prefix())
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("b0 holds the share")
        .key;
    let mut bytes = mems[0].get(&key, u64::MAX).await.unwrap().unwrap().to_vec();
    bytes[vaultdb_core::envelope::HEADER_LEN + 40] ^= 0x01;
    vaultdb_core::envelope::seal(&mut bytes);
    mems[0].put(&key, bytes.into(), vaultdb_core::PutMode::Overwrite).await.unwrap();

    // Until 40 reads fetched the tampered share (at most 600 reads): were 15% of such reads
    // to name nobody, 40 of them would all name b0 with a probability of 0.85^40 < 0.2%.
    let (mut saw, mut named, mut reads) = (0, 0, 0);
    for i in 0..600 {
        if saw >= 40 {
            break;
        }
        reads += 1;
        let before = share_gets();
        let got = db.get("rec").await.expect("two good shares remain");
        assert_eq!(got.record.data, b"the value");
        if share_gets() > before {
            saw += 1;
            assert!(
                got.bad_backends.contains(&"b0".to_owned()),
                "read {i} fetched b0's tampered share but named {:?}",
                got.bad_backends
            );
            named += 1;
        }
    }
    eprintln!("f5: {saw} of {reads} reads fetched the tampered share; {named} named b0");
    assert!(saw >= 40, "the test exercised the tampered share ({saw} reads)");
}

// ---------------------------------------------------------------------------------------
// Finding 6: health reflects whether each backend can serve reads and accept writes.

#[test]
fn f6_status_reports_a_backend_that_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "v");
    // disk-1's directory is replaced by a regular file.
    std::fs::remove_dir_all(disk(d, 1)).unwrap();
    std::fs::write(disk(d, 1), "not a directory").unwrap();
    let out = vaultdb(d).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    assert!(!text.contains("3 of 3"), "disk-1 cannot serve anything: {text}");
    assert!(text.contains("2 of 3"), "two backends up: {text}");
    let line = text.lines().find(|l| l.contains("disk-1")).unwrap_or_default();
    assert!(!line.contains(" ok"), "disk-1's line says what is wrong: {text}");
}

// ---------------------------------------------------------------------------------------
// Finding 7: the audit log is tamper-evident against its own host.

/// Recomputes a chain of audit lines the way the log's format describes it, without any
/// key: what an adversary holding only the log file (and its format) can do.
fn rechain_without_key(lines: &[String]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut prev = hex::encode(Sha256::digest(b"vaultdb audit log v1 genesis"));
    let mut out = Vec::new();
    for line in lines {
        let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        v.remove("hash");
        v.insert("prev".into(), serde_json::Value::String(prev.clone()));
        let body = serde_json::to_string(&v).unwrap();
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let full = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        prev = hex::encode(Sha256::digest(full.as_bytes()));
        out.push(full);
    }
    out
}

fn audit_lines(d: &Path) -> Vec<String> {
    std::fs::read_to_string(data_dir(d).join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_audit(d: &Path, lines: &[String]) {
    std::fs::write(data_dir(d).join("audit.jsonl"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn f7_an_edited_rechained_forged_or_cut_log_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..4 {
        put(d, &format!("r{i}"), "v");
    }
    vaultdb(d).args(["audit", "verify"]).assert().success();
    let original = audit_lines(d);
    assert!(original.len() >= 4);

    // Edit one line's outcome and recompute the chain.
    let mut edited = original.clone();
    edited[1] = edited[1].replace("\"outcome\":\"OK\"", "\"outcome\":\"BACKEND_ERROR\"");
    assert_ne!(edited[1], original[1]);
    write_audit(d, &rechain_without_key(&edited));
    let out = vaultdb(d).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success(), "an edited, re-chained log must fail: {}", stderr(&out));

    // Append a forged line, chained as the format describes.
    let mut forged = original.clone();
    let mut extra: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&original[original.len() - 1]).unwrap();
    extra.insert("seq".into(), serde_json::json!(original.len() + 1));
    extra.insert("op".into(), serde_json::json!("record.delete"));
    forged.push(serde_json::to_string(&extra).unwrap());
    write_audit(d, &rechain_without_key(&forged));
    let out = vaultdb(d).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success(), "a forged line must fail: {}", stderr(&out));

    // Cut the last two lines off.
    write_audit(d, &original[..original.len() - 2]);
    let out = vaultdb(d).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success(), "a log cut short must fail: {}", stderr(&out));

    // The untouched log still verifies.
    write_audit(d, &original);
    vaultdb(d).args(["audit", "verify"]).assert().success();
}

#[test]
fn f7_records_are_not_served_when_the_audit_log_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "rec", "v");
    // The log's path becomes a directory: every append fails (root ignores permissions).
    let log = data_dir(d).join("audit.jsonl");
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    for (args, stdin) in
        [(&["get", "rec"][..], None), (&["put", "new", "-"], Some("x")), (&["delete", "rec"], None)]
    {
        let mut c = vaultdb(d);
        c.args(args);
        if let Some(s) = stdin {
            c.write_stdin(s);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail closed without an audit log");
        assert!(stderr(&out).to_lowercase().contains("audit"), "{args:?}: {}", stderr(&out));
    }
    // Nothing was changed by the refused commands.
    std::fs::remove_dir(&log).unwrap();
    vaultdb(d).args(["get", "rec"]).assert().success().stdout("v");
    vaultdb(d).args(["get", "new"]).assert().failure();
}

/// The audit lines of a server's log, parsed.
fn audit_json(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// How many requests `lines` account for as `(actor, op, outcome)`: a line's `count`, or 1.
fn accounted(lines: &[serde_json::Value], actor: &str, op: &str, outcome: &str) -> u64 {
    lines
        .iter()
        .filter(|l| l["actor"] == actor && l["op"] == op && l["outcome"] == outcome)
        .map(|l| l["count"].as_u64().unwrap_or(1))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_a_flood_of_unauthenticated_requests_is_counted_in_few_lines() {
    use common::{TestServer, limits, memory_store, tokens};
    use reqwest::{Method, StatusCode};
    use vaultdb::audit::AuditLog;
    use vaultdb::server::AppState;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let db = memory_store().await;
    let log = AuditLog::new(&path, &db);
    let s = TestServer::start(AppState::new(db, tokens(), Some(log), limits())).await;
    for i in 0..300 {
        // No token, or a token the server does not know; reads and writes.
        let token = (i % 3 == 0).then_some("not-a-token");
        let req = if i % 2 == 0 {
            s.request(Method::GET, "/v1/records/someone", token)
        } else {
            s.request(Method::PUT, "/v1/records", token).body("{\"id\":\"x\",\"data\":1}")
        };
        assert_eq!(s.send(req).await.status(), StatusCode::UNAUTHORIZED);
    }
    s.stop().await;
    let lines = audit_json(&path);
    assert!(lines.len() < 30, "300 refused requests wrote {} lines", lines.len());
    assert_eq!(accounted(&lines, "anonymous", "record.get", "UNAUTHORIZED"), 150, "{lines:?}");
    assert_eq!(accounted(&lines, "anonymous", "record.put", "UNAUTHORIZED"), 150, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_rejected_requests_are_logged_with_their_outcome() {
    use common::{READ_TOKEN, TestServer, WRITE_TOKEN, tokens};
    use reqwest::{Method, StatusCode};
    use vaultdb::audit::AuditLog;
    use vaultdb::server::{AppState, Limits};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let db = common::memory_store_up_to(1024).await;
    let small = Limits { body_limit: 1024, request_timeout: Duration::from_secs(10) };
    let log = AuditLog::new(&path, &db);
    let s = TestServer::start(AppState::new(db, tokens(), Some(log), small)).await;
    let put = s.request(Method::PUT, "/v1/records/r/raw", Some(WRITE_TOKEN)).body("12345");
    assert_eq!(s.send(put).await.status(), StatusCode::CREATED);
    let expected = [
        (s.request(Method::PUT, "/v1/records", Some(WRITE_TOKEN)).body("{not json"), 400),
        (
            s.request(Method::PUT, "/v1/records/big/raw", Some(WRITE_TOKEN)).body(vec![7u8; 2048]),
            413,
        ),
        (s.request(Method::DELETE, "/v1/records/r", Some(READ_TOKEN)), 403),
        (
            s.request(Method::GET, "/v1/records/r/raw", Some(READ_TOKEN))
                .header("range", "bytes=99-"),
            416,
        ),
        (s.request(Method::PATCH, "/v1/records/r", Some(WRITE_TOKEN)), 405),
    ];
    for (req, status) in expected {
        assert_eq!(s.send(req).await.status().as_u16(), status);
    }
    s.stop().await;
    let lines = audit_json(&path);
    for (actor, op, outcome) in [
        ("writer", "record.put", "INVALID_REQUEST"),
        ("writer", "record.put_raw", "PAYLOAD_TOO_LARGE"),
        ("reader", "record.delete", "FORBIDDEN"),
        ("reader", "record.get_raw", "RANGE_NOT_SATISFIABLE"),
    ] {
        assert_eq!(accounted(&lines, actor, op, outcome), 1, "{actor} {op} {outcome}: {lines:?}");
    }
    assert!(
        lines.iter().any(|l| l["actor"] == "writer" && l["outcome"] == "METHOD_NOT_ALLOWED"),
        "{lines:?}"
    );
    // One line per request (the log's own lines, actor "vaultdb", aside), and no refused
    // request is logged as OK.
    let requests: Vec<_> = lines.iter().filter(|l| l["actor"] != "vaultdb").collect();
    assert_eq!(requests.len(), 6, "{lines:?}");
    assert_eq!(requests.iter().filter(|l| l["outcome"] == "OK").count(), 1, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_a_raw_read_that_fails_part_way_is_logged_as_failed() {
    use common::{READ_TOKEN, TestServer, WRITE_TOKEN, limits, tokens};
    use reqwest::{Method, StatusCode};
    use vaultdb::audit::AuditLog;
    use vaultdb::server::AppState;
    use vaultdb_core::MemoryBackend;

    let mems: Vec<Arc<MemoryBackend>> =
        (1..=3).map(|i| Arc::new(MemoryBackend::new(format!("mem-{i}"), "m"))).collect();
    let mut b = VaultDb::builder().threshold(2).segment_size(1024).call_policy(quick_policy());
    for m in &mems {
        b = b.backend_arc(m.clone());
    }
    let db = b.open().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::new(&path, &db);
    let s = TestServer::start(AppState::new(db, tokens(), Some(log), limits())).await;
    let data: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    let put = s.request(Method::PUT, "/v1/records/big/raw", Some(WRITE_TOKEN)).body(data);
    assert_eq!(s.send(put).await.status(), StatusCode::CREATED);
    // Two of the three backends lose their share of segment 5: it cannot be rebuilt.
    let ks = KeySpace::new("vaultdb").unwrap();
    for m in &mems[..2] {
        let seg5: Vec<String> = m
            .keys()
            .into_iter()
            .filter(|k| matches!(ks.parse(k), Some(ParsedKey::Segment { index: 5, .. })))
            .collect();
        assert_eq!(seg5.len(), 1, "one share of segment 5 on {}", m.id());
        m.raw_delete(&seg5[0]);
    }
    // The answer starts (200 and the first segments) and stops part way; the connection
    // may also close before the client saw any of it.
    let req = s.request(Method::GET, "/v1/records/big/raw", Some(READ_TOKEN));
    let whole = match req.send().await {
        Ok(resp) => resp.bytes().await.ok(),
        Err(_) => None,
    };
    assert!(whole.is_none(), "the read cannot complete");
    s.stop().await;
    let lines = audit_json(&path);
    let reads: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["op"] == "record.get_raw").collect();
    assert_eq!(reads.len(), 1, "{lines:?}");
    let outcome = reads[0]["outcome"].as_str().unwrap();
    assert!(
        ["INSUFFICIENT_SHARES", "HMAC_FAILED", "RECONSTRUCT_FAILED"].contains(&outcome),
        "a read that failed part way is logged with its failure, not {outcome}"
    );
}

/// A server on an empty store reads the re-share notices before each request (it may be the
/// target of a re-share about to start). Requests without a valid token, and requests to no
/// route, must not cost any backend call: before, every one of them read the notices from
/// every backend, so anyone could make the server hammer its clouds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f13_unauthenticated_requests_cost_a_fresh_server_no_backend_call() {
    use common::{READ_TOKEN, TestServer, limits, tokens};
    use reqwest::{Method, StatusCode};
    use vaultdb::config::{DEFAULT_CONFIG, Loaded, Source};
    use vaultdb::server::AppState;
    use vaultdb_core::MemoryBackend;
    use vaultdb_testkit::Counting;

    let mut b = VaultDb::builder().threshold(2);
    let mut counts = Vec::new();
    for i in 0..3 {
        let c = Counting::new(MemoryBackend::new(format!("m{i}"), format!("memory {i}")));
        counts.push(c.handle());
        b = b.backend(c);
    }
    let db = b.open().await.unwrap();
    let state = AppState::new(db, tokens(), None, limits());
    state.follow_reshares(Loaded::from_text(DEFAULT_CONFIG, Source::Embedded).unwrap(), true);
    let s = TestServer::start(state).await;
    let calls = || counts.iter().map(|c| c.total()).sum::<u64>();
    let before = calls();
    for i in 0..100 {
        let token = (i % 2 == 0).then_some("not-a-token");
        let req = s.request(Method::GET, "/v1/records/someone", token);
        assert_eq!(s.send(req).await.status(), StatusCode::UNAUTHORIZED);
        let req = s.request(Method::GET, "/no-such-route", None);
        assert_eq!(s.send(req).await.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(calls() - before, 0, "200 refused requests made backend calls");
    // An authorized request still reads them first.
    let req = s.request(Method::GET, "/v1/records/someone", Some(READ_TOKEN));
    assert_eq!(s.send(req).await.status(), StatusCode::NOT_FOUND);
    assert!(calls() > before);
    s.stop().await;
}
