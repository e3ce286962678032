//! One VaultDb across real (emulated) clouds: S3 (moto), GCS (fake-gcs-server) and Azure
//! (Azurite) at 2-of-3; those plus MinIO (s3s-fs) and a local directory at 3-of-5; and
//! PostgreSQL (a real server, over verified TLS), a local directory and S3 at 2-of-3; and the
//! five at 3-of-5 again in the compact storage mode.
//!
//! Each test: put / get / list / delete; reads settled and then answered in one round trip
//! from marks and settled objects, and a paged listing; stop one emulator mid-run (through itest's control
//! port) and check that reads and W-quorum writes go on; start it again, empty; scrub
//! restores its shares (records and keyring); then every record reads from the restarted
//! backend plus K-1 others, with the remaining backends switched down by `Failing`
//! wrappers, and a client opened on those K backends alone reads the keyring.
//!
//! The tests share the emulators and take them down, so they run one at a time (a lock).
//! Skipped (with `skip: ...`) unless `cargo xtask itest` set the variables.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use vaultdb_core::{CallPolicy, ErrorCode, Mode, Record, StorageBackend, VaultDb, VaultDbBuilder};
use vaultdb_fs::FsBackend;
use vaultdb_itest::{Control, Emulators, random_tag};
use vaultdb_testkit::{Failing, FailingHandle};

/// One test at a time: they stop and start shared emulators.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A backend and the switch that takes it down.
struct Wrapped {
    backend: Arc<dyn StorageBackend>,
    down: FailingHandle,
}

fn wrap(b: impl StorageBackend) -> Wrapped {
    let f = Failing::new(b);
    let down = f.handle();
    Wrapped { backend: Arc::new(f), down }
}

/// The emulators, their control, and the lock that runs one test at a time; `None` (the
/// test is skipped, saying so) when `cargo xtask itest` did not set their variables.
async fn emulators() -> Option<(Emulators, Control, MutexGuard<'static, ()>)> {
    let Some((emus, control)) = Emulators::from_env().zip(Control::from_env()) else {
        eprintln!("skip: emulator variables unset (run `cargo xtask itest`)");
        return None;
    };
    Some((emus, control, SERIAL.lock().await))
}

/// A directory backend in `dir`.
async fn disk(dir: &tempfile::TempDir) -> Wrapped {
    wrap(FsBackend::open("disk", "Local disk", dir.path().join("disk")).await.expect("fs"))
}

async fn open(backends: &[&Wrapped], k: usize, w: usize, prefix: &str) -> VaultDb {
    open_with(backends, k, w, prefix, |b| b).await
}

async fn open_with(
    backends: &[&Wrapped],
    k: usize,
    w: usize,
    prefix: &str,
    tune: impl FnOnce(VaultDbBuilder) -> VaultDbBuilder,
) -> VaultDb {
    let b = VaultDb::builder()
        .threshold(k)
        .write_quorum(w)
        .prefix(prefix)
        .read_repair(false)
        .grace_period(Duration::ZERO)
        .call_policy(CallPolicy {
            timeout: Duration::from_secs(20),
            max_attempts: 2,
            ..CallPolicy::default()
        });
    let mut b = tune(b);
    for w in backends {
        b = b.backend_arc(Arc::clone(&w.backend));
    }
    b.open().await.expect("open")
}

/// S3, GCS, Azure, MinIO and a directory under `dir`.
async fn five(emus: &Emulators, dir: &tempfile::TempDir) -> Vec<Wrapped> {
    vec![
        wrap(emus.s3("").expect("s3")),
        wrap(emus.gcs("").expect("gcs")),
        wrap(emus.azure("").expect("azure")),
        wrap(emus.minio("").expect("minio")),
        disk(dir).await,
    ]
}

/// Records of a few shapes: empty, small, JSON, 300 KiB.
fn records(tag: &str) -> Vec<Record> {
    vec![
        Record::new(format!("{tag}-empty"), Vec::new()),
        Record::new(format!("{tag}-small"), b"hello, clouds".to_vec()),
        Record::json(
            format!("{tag}-json"),
            &serde_like_json(&[("name", "Alice"), ("plan", "gold")]),
        )
        .expect("json"),
        Record::new(
            format!("{tag}-large"),
            (0..300 * 1024).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(),
        ),
    ]
}

/// A tiny JSON object without pulling serde_json into this crate's dependencies.
fn serde_like_json(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn expect_all(db: &VaultDb, want: &[Record]) {
    for r in want {
        let got = db.get(&r.id).await.unwrap_or_else(|e| panic!("get {}: {e}", r.id));
        assert_eq!(got.record.data, r.data, "data of {}", r.id);
    }
}

async fn expect_list(db: &VaultDb, want: &[Record]) {
    let got: BTreeSet<String> = db.list().await.expect("list").ids.into_iter().collect();
    let want: BTreeSet<String> = want.iter().map(|r| r.id.clone()).collect();
    assert_eq!(got, want);
}

/// The scenario, over `backends` (index `victim` is the emulator `victim_name`).
async fn scenario(
    control: &Control,
    backends: Vec<Wrapped>,
    k: usize,
    w: usize,
    victim: usize,
    victim_name: &str,
    prefix: &str,
) {
    let n = backends.len();
    let refs: Vec<&Wrapped> = backends.iter().collect();
    let db = open(&refs, k, w, prefix).await;
    let tag = random_tag();

    // Put, get, list, delete with every cloud up.
    let mut live = records(&tag);
    for r in &live {
        let put = db.put(r.clone()).await.expect("put");
        assert_eq!(put.acks, n, "every backend acknowledges");
    }
    expect_all(&db, &live).await;
    expect_list(&db, &live).await;
    let gone = live.remove(0);
    db.delete(&gone.id).await.expect("delete");
    let e = db.get(&gone.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RecordNotFound, "{e}");
    expect_list(&db, &live).await;

    // One-round-trip reads and paged listing against every emulator: a client whose calls
    // give up within 2 s may settle writes 4 s old; once settled, reads take the fast path
    // (marks and settled objects: overwritten objects on every cloud) and list nothing.
    let fast = open_with(&refs, k, w, prefix, |b| {
        b.call_policy(CallPolicy {
            timeout: Duration::from_secs(2),
            max_attempts: 1,
            ..CallPolicy::default()
        })
        .settle_after(Duration::from_secs(4))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    expect_all(&fast, &live).await; // lists, then settles in the background
    fast.flush().await;
    let before = fast.stats().fast_reads;
    expect_all(&fast, &live).await;
    assert_eq!(
        fast.stats().fast_reads - before,
        live.len() as u64,
        "every read took the fast path"
    );
    let e = fast.get(&gone.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RecordNotFound, "{e}");
    let mut paged = BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = fast.list_page(cursor.as_deref(), 2).await.expect("list page");
        assert!(page.ids.len() <= 2);
        paged.extend(page.ids);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, live.iter().map(|r| r.id.clone()).collect::<BTreeSet<_>>());

    // One cloud goes away mid-run: reads and W-quorum writes go on, degraded.
    control.stop(victim_name).expect("stop emulator");
    for r in &live {
        let got = db.get(&r.id).await.expect("degraded get");
        assert_eq!(got.record.data, r.data);
    }
    let during = Record::new(format!("{tag}-written-while-down"), b"quorum".to_vec());
    let put = db.put(during.clone()).await.expect("W-quorum put");
    assert!(put.degraded(), "the stopped backend cannot have acknowledged");
    assert_eq!(put.acks, n - 1);
    live.push(during);
    let overwritten = Record::new(live[0].id.clone(), b"new version while down".to_vec());
    db.put(overwritten.clone()).await.expect("overwrite while down");
    live[0] = overwritten;
    expect_all(&db, &live).await;
    expect_list(&db, &live).await;

    // It comes back empty (a replaced disk, a wiped bucket): scrub restores its shares.
    control.start(victim_name).expect("start emulator");
    assert!(vaultdb_itest::answers(backends[victim].backend.as_ref()).await);
    let report = db.scrub().await.expect("scrub");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Every live record's share, the keyring's, and the tombstone of the record deleted
    // before the outage (docs/FORMAT.md section 14).
    assert_eq!(
        report.restored,
        live.len() + 2,
        "every live record's share, the keyring's and one tombstone, on {victim_name}"
    );

    // Reads succeed from the restarted backend plus K-1 others, the rest switched down.
    let others: Vec<usize> = (0..n).filter(|&i| i != victim).collect();
    for window in 0..others.len() {
        let up: BTreeSet<usize> = std::iter::once(victim)
            .chain((0..k - 1).map(|j| others[(window + j) % others.len()]))
            .collect();
        for (i, b) in backends.iter().enumerate() {
            b.down.set_down(!up.contains(&i));
        }
        expect_all(&db, &live).await;
        expect_list(&db, &live).await;
        // A new client reads the keyring from these K alone.
        let reopened = open(&refs, k, k, prefix).await;
        assert_eq!(reopened.name_tag("x"), db.name_tag("x"));
        expect_all(&reopened, &live).await;
    }
    for b in &backends {
        b.down.set_down(false);
    }

    // Clean up.
    for r in &live {
        db.delete(&r.id).await.expect("cleanup delete");
    }
    expect_list(&db, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_clouds_two_of_three() {
    let Some((emus, control, _one_at_a_time)) = emulators().await else { return };
    let prefix = format!("x3-{}", random_tag());
    let backends = vec![
        wrap(emus.s3("").expect("s3")),
        wrap(emus.gcs("").expect("gcs")),
        wrap(emus.azure("").expect("azure")),
    ];
    // 2-of-3, W = 2; GCS goes down and comes back.
    scenario(&control, backends, 2, 2, 1, "gcs", &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_backends_three_of_five() {
    let Some((emus, control, _one_at_a_time)) = emulators().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("x5-{}", random_tag());
    let backends = five(&emus, &dir).await;
    // 3-of-5, W = 4; Azure goes down and comes back.
    scenario(&control, backends, 3, 4, 2, "azure", &prefix).await;
}

/// The same five backends in the compact storage mode (docs/FORMAT.md section 16): the
/// store is created compact, and every later client takes the mode from its keyring.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_backends_three_of_five_compact() {
    let Some((emus, control, _one_at_a_time)) = emulators().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("x5c-{}", random_tag());
    let backends = five(&emus, &dir).await;
    let refs: Vec<&Wrapped> = backends.iter().collect();
    let created = open_with(&refs, 3, 4, &prefix, |b| b.mode(Mode::Compact)).await;
    assert_eq!(created.mode(), Mode::Compact);
    let handles: Vec<Arc<dyn StorageBackend>> =
        backends.iter().map(|w| Arc::clone(&w.backend)).collect();
    // 3-of-5, W = 4, compact; MinIO goes down and comes back.
    scenario(&control, backends, 3, 4, 3, "minio", &prefix).await;
    let mut b = VaultDb::builder().threshold(3).prefix(&prefix);
    for h in handles {
        b = b.backend_arc(h);
    }
    assert_eq!(b.open().await.expect("reopen").mode(), Mode::Compact, "still compact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_directory_and_s3_two_of_three() {
    let Some((emus, control, _one_at_a_time)) = emulators().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = random_tag();
    let prefix = format!("xpg-{tag}");
    let backends = vec![
        wrap(emus.postgres(&format!("itest_{tag}")).expect("postgres")),
        disk(&dir).await,
        wrap(emus.s3("").expect("s3")),
    ];
    // 2-of-3, W = 2; S3 goes down and comes back.
    scenario(&control, backends, 2, 2, 2, "s3", &prefix).await;
}
