//! VaultDb over FsBackends: a wiped disk is restored by scrub.

use std::time::Duration;

use vaultdb_core::{CallPolicy, Record, VaultDb};
use vaultdb_fs::FsBackend;
use vaultdb_testkit::{Failing, FailingHandle};

/// Opens a 2-of-3 store over `root/disk-{1,2,3}`, with backend `down` (if any) unreachable.
async fn open(root: &std::path::Path, down: Option<usize>) -> (VaultDb, Vec<FailingHandle>) {
    let mut b = VaultDb::builder()
        .threshold(2)
        .read_repair(false)
        .grace_period(Duration::ZERO)
        .call_policy(CallPolicy { max_attempts: 1, ..CallPolicy::default() });
    let mut handles = Vec::new();
    for i in 1..=3 {
        let fs = FsBackend::open(
            format!("disk-{i}"),
            format!("disk {i}"),
            root.join(format!("disk-{i}")),
        )
        .await
        .unwrap();
        let f = Failing::new(fs);
        f.handle().set_down(down == Some(i - 1));
        handles.push(f.handle());
        b = b.backend(f);
    }
    (b.open().await.unwrap(), handles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_directory_is_restored_by_scrub() {
    let dir = tempfile::tempdir().unwrap();
    let (db, down) = open(dir.path(), None).await;
    let ids: Vec<String> = (0..25).map(|i| format!("patient-{i}")).collect();
    for id in &ids {
        db.put(Record::new(id.clone(), format!("chart of {id}").into_bytes())).await.unwrap();
    }
    // Wipe disk-2 completely, as if the disk were replaced.
    std::fs::remove_dir_all(dir.path().join("disk-2")).unwrap();
    std::fs::create_dir(dir.path().join("disk-2")).unwrap();
    let report = db.scrub().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.restored, ids.len() + 1, "every record share and the keyring share");
    // disk-2 plus any one other serves every record, and the keyring.
    for other_down in [0, 2] {
        down[other_down].set_down(true);
        for id in &ids {
            let g = db.get(id).await.unwrap();
            assert_eq!(g.record.data, format!("chart of {id}").into_bytes());
        }
        let (reopened, _) = open(dir.path(), Some(other_down)).await;
        assert_eq!(reopened.name_tag("x"), db.name_tag("x"));
        down[other_down].set_down(false);
    }
    assert_eq!(db.list().await.unwrap().ids.len(), ids.len());
}

/// Every file under `dir`, at any depth, sorted.
#[cfg(unix)]
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The path of a file under `dir` whose name contains `part`.
#[cfg(unix)]
fn find_file(dir: &std::path::Path, part: &str) -> std::path::PathBuf {
    files_under(dir)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains(part))
        .unwrap_or_else(|| panic!("no file named *{part}* under {}", dir.display()))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_cost_their_backend_only() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path(), None).await;
    db.put(Record::new("r", b"the record".to_vec())).await.unwrap();
    drop(db);
    // disk-1's keyring slot becomes a FIFO (opening it for reading would wait for a writer
    // forever), and disk-3's record share a symbolic link to /dev/zero.
    let slot = find_file(&dir.path().join("disk-1"), "keyring");
    std::fs::remove_file(&slot).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&slot).status().unwrap().success());
    let share = find_file(&dir.path().join("disk-3").join("vaultdb").join("r"), ".o");
    std::fs::remove_file(&share).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &share).unwrap();

    let started = std::time::Instant::now();
    let (db, _) = open(dir.path(), None).await;
    let got = db.get("r").await.unwrap();
    assert_eq!(got.record.data, b"the record");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // The symbolic link is not an object, so disk-3 misses its share; it stands where the
    // share belongs, so scrub cannot restore it there, and says why, naming disk-3.
    let report = db.scrub().await.unwrap();
    let problem = report.problems.iter().find(|p| p.contains("disk-3")).expect("disk-3 named");
    assert!(problem.contains("not a regular file"), "{problem}");
    assert!(std::fs::symlink_metadata(&share).unwrap().file_type().is_symlink());
    // Once the operator removes it, scrub restores the share.
    std::fs::remove_file(&share).unwrap();
    let report = db.scrub().await.unwrap();
    assert_eq!(report.restored, 1, "{report:?}");
    assert!(std::fs::symlink_metadata(&share).unwrap().is_file(), "share restored as a file");
}

/// The share files (`*.o`) under `dir`, sorted.
#[cfg(unix)]
fn share_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    files_under(dir).into_iter().filter(|p| p.extension().is_some_and(|x| x == "o")).collect()
}

/// How long a read may take before the test calls it hung (generous: a loaded machine).
#[cfg(unix)]
const HUNG: Duration = Duration::from_secs(20);

/// A 1 GiB (sparse) share on disk-1 and a FIFO in place of a share on disk-2: each read
/// still succeeds from the other two backends, never waits on the FIFO, reads the huge share
/// no further than the size the other holders listed, and names disk-1.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_share_and_a_fifo_share_cost_their_backend_only() {
    use std::os::unix::fs::FileTypeExt;

    use vaultdb_core::OutcomeStatus;
    use vaultdb_testkit::{Ops, Slow};

    let dir = tempfile::tempdir().unwrap();
    // disk-3 answers gets a second late, so that the read asks disk-1 (fastest first, with
    // hedging after 50 ms) rather than waiting for disk-3.
    let mut builder = VaultDb::builder()
        .threshold(2)
        .read_repair(false)
        .hedge_after(Some(Duration::from_millis(50)))
        .call_policy(CallPolicy { max_attempts: 1, ..CallPolicy::default() });
    for i in 1..=3 {
        let fs = FsBackend::open(
            format!("disk-{i}"),
            format!("disk {i}"),
            dir.path().join(format!("disk-{i}")),
        )
        .await
        .unwrap();
        let slow = Slow::new(fs, if i == 3 { Duration::from_secs(1) } else { Duration::ZERO });
        slow.handle().set_ops(Ops::GET);
        builder = builder.backend(slow);
    }
    let db = builder.open().await.unwrap();
    let shares = |disk: &str| share_files(&dir.path().join(disk).join("vaultdb").join("r"));
    db.put(Record::new("huge", b"a small record".to_vec())).await.unwrap();
    let [huge] = &shares("disk-1")[..] else { panic!("one record so far") };
    let huge = huge.clone();
    let huge_shares = shares("disk-2");
    db.put(Record::new("fifo", b"another small record".to_vec())).await.unwrap();

    let share_len = std::fs::metadata(&huge).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&huge).unwrap().set_len(1 << 30).unwrap();
    let fifo = shares("disk-2").into_iter().find(|p| !huge_shares.contains(p)).unwrap();
    std::fs::remove_file(&fifo).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let got = tokio::time::timeout(HUNG, db.get("huge")).await.expect("get huge hung").unwrap();
    assert_eq!(got.record.data, b"a small record");
    assert_eq!(got.bad_backends, ["disk-1"], "{:?}", got.outcomes);
    let disk1 = got.outcomes.iter().find(|o| o.backend == "disk-1").unwrap();
    let OutcomeStatus::Corrupt { reason } = &disk1.status else {
        panic!("disk-1: {:?}", disk1.status)
    };
    // The bounded read path: disk-1 was asked for no more than the size the two other holders
    // listed, and refused from the file's size without reading it.
    assert!(
        reason.contains("too large") && reason.contains(&format!("{share_len} allowed")),
        "{reason}"
    );

    let got = tokio::time::timeout(HUNG, db.get("fifo")).await.expect("get fifo hung").unwrap();
    assert_eq!(got.record.data, b"another small record");
    assert!(!got.bad_backends.contains(&"disk-1".to_owned()), "{:?}", got.outcomes);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}
