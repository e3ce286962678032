//! One backend that stops answering (a cloud region blackholed: its calls neither succeed
//! nor fail) must not make a 2-of-3 store slow: every operation that the other two
//! backends can serve finishes long before the call timeout, with default settings.
//!
//! Runs on virtual time (Tokio's paused clock, which jumps ahead whenever every task waits),
//! so "how long an operation took" is exact and the hung calls cost no real time.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use vaultdb_core::{CallPolicy, ErrorCode, MemoryBackend, Record, StorageBackend, VaultDb};
use vaultdb_testkit::{Slow, SlowHandle};

/// Longer than any operation may take with one backend hung: well under one call timeout
/// (30 s by default), so an operation that waits for the hung backend's call fails this.
const PROMPT: Duration = Duration::from_secs(2);

/// "Hung": a call that would answer in a day.
const HUNG: Duration = Duration::from_secs(86_400);

/// A 2-of-3 store with default settings but for the write quorum `w`, and the handle that
/// hangs backend 3.
async fn store(w: usize) -> (VaultDb, SlowHandle) {
    let mut b = VaultDb::builder().threshold(2).write_quorum(w);
    let mut hang = None;
    for i in 0..3 {
        let mem = MemoryBackend::new(format!("b{i}"), format!("backend {i}"));
        let slow = Slow::new(mem, Duration::ZERO);
        if i == 2 {
            hang = Some(slow.handle());
        }
        b = b.backend_arc(Arc::new(slow) as Arc<dyn StorageBackend>);
    }
    (b.open().await.unwrap(), hang.unwrap())
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let r = f.await;
    (r, t.elapsed())
}

#[tokio::test(start_paused = true)]
async fn one_hung_backend_delays_no_read_list_or_delete() {
    assert_eq!(CallPolicy::default().timeout, Duration::from_secs(30), "the premise");
    let (db, hang) = store(3).await;
    db.put(Record::new("before", "written before the hang")).await.unwrap();
    db.put(Record::new("gone", "deleted while hung")).await.unwrap();
    hang.set_delay(HUNG);

    // Every operation, several times: a fresh client (a CLI command) must be prompt on its
    // first call, and a long-running one on every call.
    for round in 0..3 {
        let (r, took) = timed(db.get("before")).await;
        assert_eq!(r.unwrap().record.data, b"written before the hang");
        assert!(took < PROMPT, "round {round}: get took {took:?}");

        let (r, took) = timed(db.get("never-written")).await;
        assert_eq!(r.unwrap_err().code(), ErrorCode::RecordNotFound);
        assert!(took < PROMPT, "round {round}: get of a missing record took {took:?}");

        let (r, took) = timed(db.list()).await;
        assert_eq!(r.unwrap().ids, ["before", "gone"]);
        assert!(took < PROMPT, "round {round}: list took {took:?}");

        let (r, took) = timed(db.list_page(None, 1)).await;
        assert_eq!(r.unwrap().ids.len(), 1);
        assert!(took < PROMPT, "round {round}: a list page took {took:?}");
    }

    let (r, took) = timed(db.delete("gone")).await;
    let deleted = r.unwrap();
    assert!(took < PROMPT, "delete took {took:?}");
    assert_eq!(deleted.removed, 2, "the two backends that answered removed their shares");
    let (r, took) = timed(db.get("gone")).await;
    assert_eq!(r.unwrap_err().code(), ErrorCode::RecordNotFound);
    assert!(took < PROMPT, "get after the delete took {took:?}");
    assert_eq!(db.list().await.unwrap().ids, ["before"]);

    // Once it answers again, nothing was lost and the delete holds there too.
    hang.set_delay(Duration::ZERO);
    assert_eq!(db.get("before").await.unwrap().record.data, b"written before the hang");
    assert_eq!(db.get("gone").await.unwrap_err().code(), ErrorCode::RecordNotFound);
}

#[tokio::test(start_paused = true)]
async fn with_a_write_quorum_below_n_puts_go_on_promptly() {
    let (db, hang) = store(2).await;
    hang.set_delay(HUNG);
    for round in 0..3 {
        let id = format!("during-{round}");
        let (r, took) = timed(db.put(Record::new(&id, "written while hung"))).await;
        assert_eq!(r.unwrap().acks, 2);
        assert!(took < PROMPT, "round {round}: put took {took:?}");
        let (r, took) = timed(db.get(&id)).await;
        assert_eq!(r.unwrap().record.data, b"written while hung");
        assert!(took < PROMPT, "round {round}: get took {took:?}");
    }
    hang.set_delay(Duration::ZERO);
    let report = db.scrub().await.unwrap();
    assert!(report.restored >= 3, "scrub gives the backend its missing shares: {report:?}");
    assert_eq!(db.get("during-0").await.unwrap().record.data, b"written while hung");
}

#[tokio::test(start_paused = true)]
async fn with_write_quorum_n_a_put_fails_when_a_backend_hangs() {
    // W = N (the default) asks every backend to take every write: with one hung, a put
    // fails, naming it, once its call times out (docs/SECURITY.md says why W = N).
    let (db, hang) = store(3).await;
    hang.set_delay(HUNG);
    let e = db.put(Record::new("x", "y")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::BackendError);
    assert!(e.to_string().contains("b2: timed out"), "{e}");
}

/// A health check (`vaultdb status`, the server's `/health`, which Kubernetes' readiness
/// probe and Docker's health check call with a 5 s limit) must answer promptly while K
/// backends do, calling the hung one down. Before, it waited out the hung backend's read
/// check and then its write check: 60 s, so one hung cloud failed every replica's readiness
/// probe at once and took a 2-of-3 deployment out of its load balancer.
#[tokio::test(start_paused = true)]
async fn health_reports_a_hung_backend_down_within_seconds() {
    let (db, hang) = store(3).await;
    hang.set_delay(HUNG);
    for round in 0..2 {
        let (h, took) = timed(db.health()).await;
        assert!(took < PROMPT, "round {round}: health took {took:?}");
        assert_eq!((h.up, h.margin), (2, 0), "round {round}");
        let hung = &h.backends[2];
        assert!(!hung.up && !hung.readable, "round {round}: {hung:?}");
        assert!(hung.error.as_deref().is_some_and(|e| e.contains("no answer")), "{hung:?}");
        assert!(h.backends[..2].iter().all(|b| b.up && b.error.is_none()), "{h:?}");
    }

    // The same without an open store (status of a store that cannot be opened).
    let (h, took) = timed(vaultdb_core::Health::probe(db.backends(), 2, db.settings())).await;
    assert!(took < PROMPT, "Health::probe took {took:?}");
    assert_eq!(h.unwrap().up, 2);
}
