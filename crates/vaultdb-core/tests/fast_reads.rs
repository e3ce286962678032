//! One-round-trip reads (docs/SECURITY.md, "One-round-trip reads"): a settled record is
//! read without listing, and every way a backend can make the marks lie (a write since the
//! settle, a rollback, an older write's mark landing last, a forged or withheld object)
//! sends the read to the listing path, which returns the newest version.
//!
//! Runs on virtual time: the clients' wall clock (which marks carry and settle decisions
//! read) follows Tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vaultdb_core::backend::{BackendError, Key};
use vaultdb_core::{
    CallPolicy, ErrorCode, MemoryBackend, PutMode, Record, StorageBackend, VaultDb,
};
use vaultdb_testkit::{Counting, CountingHandle};

struct Node {
    mem: Arc<MemoryBackend>,
    count: CountingHandle,
}

const SETTLE: Duration = Duration::from_millis(300);

/// A 2-of-3 builder on virtual time: no read-repair, no hedging, short calls, settling
/// after [`SETTLE`], marks stamped by `wall`.
fn builder(wall: vaultdb_core::WallClock) -> vaultdb_core::VaultDbBuilder {
    VaultDb::builder()
        .threshold(2)
        .read_repair(false)
        .hedge_after(None)
        .call_policy(CallPolicy {
            timeout: Duration::from_millis(100),
            max_attempts: 1,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        })
        .settle_after(SETTLE)
        .wall_clock(wall)
}

async fn cluster() -> (Vec<Node>, VaultDb) {
    cluster_answering_after(None).await
}

/// [`cluster`] whose backends each answer after `delay` (`testkit::Slow`), if given.
async fn cluster_answering_after(delay: Option<Duration>) -> (Vec<Node>, VaultDb) {
    let start = tokio::time::Instant::now();
    let wall: vaultdb_core::WallClock =
        Arc::new(move || 1_700_000_000_000_000 + start.elapsed().as_micros() as u64);
    let mut b = builder(wall);
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mem = Arc::new(MemoryBackend::new(format!("b{i}"), format!("backend {i}")));
        let counting = Counting::new(mem.clone());
        let count = counting.handle();
        let backend: Arc<dyn StorageBackend> = match delay {
            Some(d) => Arc::new(vaultdb_testkit::Slow::new(counting, d)),
            None => Arc::new(counting),
        };
        b = b.backend_arc(backend);
        nodes.push(Node { mem, count });
    }
    (nodes, b.open().await.unwrap())
}

fn lists(nodes: &[Node]) -> u64 {
    nodes.iter().map(|n| n.count.list_pages()).sum()
}

fn reset(nodes: &[Node]) {
    nodes.iter().for_each(|n| n.count.reset());
}

async fn value(db: &VaultDb, id: &str) -> Result<Vec<u8>, ErrorCode> {
    db.get(id).await.map(|g| g.record.data).map_err(|e| e.code())
}

/// Reads `id` until it is settled: a read after the settle delay lists and settles it.
async fn settle(db: &VaultDb, id: &str) {
    tokio::time::sleep(SETTLE * 2).await;
    let _ = db.get(id).await;
    db.flush().await;
}

fn objects(mem: &MemoryBackend, prefix: &str) -> Vec<(String, bytes::Bytes)> {
    mem.keys()
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .map(|k| {
            let v = mem.raw_get(&k).unwrap();
            (k, v)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_settled_record_is_read_in_one_round_trip_without_listing() {
    let (nodes, db) = cluster().await;
    db.put(Record::new("r", b"one".to_vec())).await.unwrap();
    // Just written: not provably the newest yet, so the read lists (and does not settle).
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap(), b"one");
    assert!(lists(&nodes) > 0);
    db.flush().await;
    assert!(objects(&nodes[0].mem, "vaultdb/s/").is_empty(), "too young to settle");
    settle(&db, "r").await;
    assert_eq!(objects(&nodes[0].mem, "vaultdb/s/").len(), 1, "settled");
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap(), b"one");
    assert_eq!(lists(&nodes), 0, "no listing");
    // Marks and settled objects on every backend, the shares inline: nothing else.
    let gets: u64 = nodes.iter().map(|n| n.count.gets()).sum();
    assert_eq!(gets, 6);
    // A missing record still lists (it has no marks).
    reset(&nodes);
    assert_eq!(value(&db, "nope").await.unwrap_err(), ErrorCode::RecordNotFound);
    assert!(lists(&nodes) > 0);
}

#[tokio::test(start_paused = true)]
async fn a_write_after_the_settle_is_never_hidden() {
    let (nodes, db) = cluster().await;
    db.put(Record::new("r", b"one".to_vec())).await.unwrap();
    settle(&db, "r").await;
    db.put(Record::new("r", b"two".to_vec())).await.unwrap();
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap(), b"two");
    assert!(lists(&nodes) > 0, "the marks changed: the read lists");
    settle(&db, "r").await;
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap(), b"two");
    assert_eq!(lists(&nodes), 0);
}

#[tokio::test(start_paused = true)]
async fn one_backend_rolled_back_to_a_settled_state_sends_reads_to_the_listing() {
    let (nodes, db) = cluster().await;
    db.put(Record::new("r", b"one".to_vec())).await.unwrap();
    settle(&db, "r").await;
    let backup = nodes[2].mem.keys().into_iter().map(|k| {
        let v = nodes[2].mem.raw_get(&k).unwrap();
        (k, v)
    });
    let backup: Vec<_> = backup.collect();
    db.put(Record::new("r", b"two".to_vec())).await.unwrap();
    settle(&db, "r").await;
    // Backend 2 restored from its backup: a consistent, settled, old state.
    nodes[2].mem.clear();
    for (k, v) in backup {
        nodes[2].mem.raw_put(&k, v);
    }
    for _ in 0..3 {
        assert_eq!(value(&db, "r").await.unwrap(), b"two");
        db.flush().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_older_writes_mark_landing_last_never_makes_the_older_version_win() {
    let (nodes, db) = cluster().await;
    // Two writers' puts: the mark of the older one lands last, on every backend.
    db.put(Record::new("r", b"older".to_vec())).await.unwrap();
    let older_marks: Vec<_> = nodes.iter().map(|n| objects(&n.mem, "vaultdb/m/")).collect();
    let w2 = builder_twin(&db).await;
    w2.put(Record::new("r", b"newer".to_vec())).await.unwrap();
    for (n, marks) in nodes.iter().zip(&older_marks) {
        for (k, v) in marks {
            n.mem.raw_put(k, v.clone());
        }
    }
    for _ in 0..3 {
        settle(&db, "r").await;
        assert_eq!(value(&db, "r").await.unwrap(), b"newer");
    }
    assert!(objects(&nodes[0].mem, "vaultdb/s/").is_empty(), "the stale marks are never settled");
}

/// Another client of the same store (a second writer).
async fn builder_twin(db: &VaultDb) -> VaultDb {
    let mut b = VaultDb::builder_with(db.settings().clone()).threshold(2);
    for backend in db.backends() {
        b = b.backend_arc(Arc::clone(backend));
    }
    b.open().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_deleted_record_settles_as_deleted_and_stays_deleted() {
    let (nodes, db) = cluster().await;
    db.put(Record::new("r", b"one".to_vec())).await.unwrap();
    settle(&db, "r").await;
    db.delete("r").await.unwrap();
    assert_eq!(value(&db, "r").await.unwrap_err(), ErrorCode::RecordNotFound);
    settle(&db, "r").await;
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap_err(), ErrorCode::RecordNotFound);
    assert_eq!(lists(&nodes), 0, "the tombstone settled");
    // A put after the delete is read again.
    db.put(Record::new("r", b"back".to_vec())).await.unwrap();
    assert_eq!(value(&db, "r").await.unwrap(), b"back");
}

#[tokio::test(start_paused = true)]
async fn forged_or_withheld_marks_and_settled_objects_fall_back_and_read_right() {
    let (nodes, db) = cluster().await;
    db.put(Record::new("r", b"one".to_vec())).await.unwrap();
    settle(&db, "r").await;
    let settled = objects(&nodes[1].mem, "vaultdb/s/");
    let (key, bytes) = settled[0].clone();
    // A flipped byte (the MAC fails), then withheld, then another record's.
    let mut bad = bytes.to_vec();
    bad[30] ^= 1;
    nodes[1].mem.raw_put(&key, bad);
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap(), b"one");
    assert!(lists(&nodes) > 0);
    nodes[1].mem.raw_delete(&key);
    assert_eq!(value(&db, "r").await.unwrap(), b"one");
    db.put(Record::new("q", b"other".to_vec())).await.unwrap();
    settle(&db, "q").await;
    let other = objects(&nodes[1].mem, "vaultdb/s/")
        .into_iter()
        .find(|(k, _)| *k != key)
        .expect("q settled");
    nodes[1].mem.raw_put(&key, other.1);
    reset(&nodes);
    assert_eq!(value(&db, "r").await.unwrap(), b"one");
    assert!(lists(&nodes) > 0, "another record's settled object does not verify here");
}

/// Delays the puts of keys that contain `part` (a mark, `/m/`, or a share, `/r/`) by
/// `delay`: one write's objects landing at different times, within the call timeout.
#[derive(Debug)]
struct LateKeys {
    inner: Arc<MemoryBackend>,
    part: &'static str,
    delay: Duration,
}

vaultdb_testkit::forward_backend! {
    impl StorageBackend for LateKeys {
        forward id, name, get, delete, list_page to self.inner;

        async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
            if key.as_str().contains(self.part) {
                tokio::time::sleep(self.delay).await;
            }
            self.inner.put(key, data, mode).await
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_older_mark_landing_over_a_newer_write_in_flight_is_not_settled_until_it_has_landed() {
    // Writer A's mark lands 20 ms after its share; writer B's share lands 50 ms after its
    // mark. A starts first (older version), so the order on every backend is: A's share, B's
    // mark, A's mark (over B's), and B's share only then. A read in between lists only A's
    // version and sees A's mark everywhere: were it settled then (no settle delay), reads
    // would keep answering A's value after B's put was acknowledged.
    let (nodes, reader) = cluster().await;
    let client = |part: &'static str, delay: u64| {
        let mut b = VaultDb::builder_with(reader.settings().clone()).threshold(2);
        for n in &nodes {
            let late = LateKeys { inner: n.mem.clone(), part, delay: Duration::from_millis(delay) };
            b = b.backend(late);
        }
        b
    };
    let a = client("/m/", 20).open().await.unwrap();
    let b = client("/r/", 50).open().await.unwrap();
    let put_a = tokio::spawn(async move { a.put(Record::new("r", b"older".to_vec())).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let put_b = tokio::spawn(async move { b.put(Record::new("r", b"newer".to_vec())).await });
    tokio::time::sleep(Duration::from_millis(25)).await;
    put_a.await.unwrap().unwrap();
    // A is acknowledged, B's share is still in flight: listing finds A's version.
    assert_eq!(value(&reader, "r").await.unwrap(), b"older");
    reader.flush().await;
    let newer = put_b.await.unwrap().unwrap();
    // B is acknowledged by every backend: no read may answer A's value any more.
    for _ in 0..3 {
        let got = reader.get("r").await.unwrap();
        assert_eq!((got.record.data.as_slice(), got.version), (&b"newer"[..], newer.version));
        reader.flush().await;
        tokio::time::sleep(SETTLE).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_settled_segmented_record_reads_its_manifest_from_marks_and_its_segments_by_name() {
    let (nodes, db) = cluster().await;
    let data: Vec<u8> = (0..(4 << 20) + 12345).map(|i| (i * 31 % 251) as u8).collect();
    db.put(Record::new("big", data.clone())).await.unwrap();
    settle(&db, "big").await;
    reset(&nodes);
    let got = db.get("big").await.unwrap();
    assert!(got.record.data == data);
    assert_eq!(lists(&nodes), 0, "manifest from the settled objects, segments by name");
    let mut stream = db.get_range("big", 4_000_000..4_200_000).await.unwrap();
    let mut part = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        part.extend_from_slice(&chunk.unwrap());
    }
    assert!(part == data[4_000_000..4_200_000]);
    assert_eq!(lists(&nodes), 0);
}

/// Lists its share objects as `listed_size` bytes (when set), and records the largest
/// `max_len` asked of it for one.
#[derive(Debug)]
struct Inflating {
    inner: Arc<MemoryBackend>,
    listed_size: std::sync::atomic::AtomicU64,
    largest_ask: std::sync::atomic::AtomicU64,
}

const SHARES: &str = "vaultdb/r/";

vaultdb_testkit::forward_backend! {
    impl StorageBackend for Inflating {
        forward id, name, put, delete to self.inner;

        async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
            if key.as_str().starts_with(SHARES) {
                self.largest_ask.fetch_max(max_len, std::sync::atomic::Ordering::SeqCst);
            }
            self.inner.get(key, max_len).await
        }

        async fn list_page(
            &self,
            prefix: &vaultdb_core::backend::KeyPrefix,
            from: vaultdb_core::backend::ListFrom,
        ) -> Result<vaultdb_core::backend::ListPage, BackendError> {
            let mut page = self.inner.list_page(prefix, from).await?;
            let size = self.listed_size.load(std::sync::atomic::Ordering::SeqCst);
            for e in &mut page.entries {
                if size > 0 && e.key.as_str().starts_with(SHARES) {
                    e.size = size;
                }
            }
            Ok(page)
        }
    }
}

/// A backend that lies about the size of its share object while a read settles the record
/// does not get a settled object naming that size: fast reads ask it for no more than the
/// size the other holders listed (as the listing path does), not for a terabyte.
#[tokio::test(start_paused = true)]
async fn a_share_size_lied_about_while_settling_is_not_asked_for_by_fast_reads() {
    let start = tokio::time::Instant::now();
    let wall: vaultdb_core::WallClock =
        Arc::new(move || 1_700_000_000_000_000 + start.elapsed().as_micros() as u64);
    let liar = Arc::new(Inflating {
        inner: Arc::new(MemoryBackend::new("b0", "backend 0")),
        listed_size: 0.into(),
        largest_ask: 0.into(),
    });
    let mut b = builder(wall).backend_arc(liar.clone() as Arc<dyn StorageBackend>);
    for i in 1..3 {
        b = b.backend(MemoryBackend::new(format!("b{i}"), format!("backend {i}")));
    }
    let db = b.open().await.unwrap();
    // Larger than an inline share: settled objects name the share objects.
    let data: Vec<u8> = (0..100_000).map(|i| (i * 7 % 253) as u8).collect();
    db.put(Record::new("r", data.clone())).await.unwrap();
    liar.listed_size.store(1 << 40, std::sync::atomic::Ordering::SeqCst);
    settle(&db, "r").await;
    liar.listed_size.store(0, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        assert!(db.get("r").await.unwrap().record.data == data);
    }
    let asked = liar.largest_ask.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked <= 1 << 20, "a read asked the lying backend for {asked} bytes of a share");
}

/// The round trips docs/DESIGN.md promises, on three backends that each answer after
/// [`DELAY`]: a put (new id or over an existing one) and the read of a settled record take
/// one, the read without listing; a delete takes two.
#[tokio::test(start_paused = true)]
async fn a_put_and_a_settled_read_take_one_round_trip_and_a_delete_two() {
    const DELAY: Duration = Duration::from_millis(20);
    let (nodes, db) = cluster_answering_after(Some(DELAY)).await;
    // Virtual time taken by one operation, in round trips of DELAY.
    async fn trips<T>(op: impl std::future::Future<Output = T>) -> (T, f64) {
        let t = tokio::time::Instant::now();
        let out = op.await;
        (out, t.elapsed().as_secs_f64() / DELAY.as_secs_f64())
    }

    let (r, n) = trips(db.put(Record::new("r", b"one".to_vec()))).await;
    r.unwrap();
    assert!(n < 1.5, "a put of a new id took {n} round trips");
    db.flush().await;
    let (r, n) = trips(db.put(Record::new("r", b"two".to_vec()))).await;
    r.unwrap();
    assert!(n < 1.5, "a put over an existing id took {n} round trips");
    db.flush().await;

    settle(&db, "r").await;
    reset(&nodes);
    let (r, n) = trips(value(&db, "r")).await;
    assert_eq!(r.unwrap(), b"two");
    assert!(n < 1.5, "a settled read took {n} round trips");
    assert_eq!(lists(&nodes), 0, "a settled read lists nothing");

    let (r, n) = trips(db.delete("r")).await;
    r.unwrap();
    assert!(n < 2.5, "a delete took {n} round trips");
    assert_eq!(value(&db, "r").await.unwrap_err(), ErrorCode::RecordNotFound);
}
