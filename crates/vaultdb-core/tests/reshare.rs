// This file is long because it holds one test per promise of docs/SECURITY.md "Re-sharing",
// each building both stores and their fault handles.
//! Re-sharing a live store (`VaultDb::reshare`, docs/SECURITY.md "Re-sharing"): every record
//! stays readable and equal (data, content type, metadata, version) before, during and after;
//! clients of the old configuration are told to reload; writes and deletes made in the new
//! store during the copy win; a re-share interrupted at any point finishes when run again;
//! a lost backend is replaced; the old store's objects are removed; the mode can change.
//!
//! Runs on virtual time (the fence's wait passes at once).

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use vaultdb_core::{
    ErrorCode, MemoryBackend, Mode, Record, RecordMeta, ReshareOptions, ResharePhase, VaultDb,
    Version,
};

use support::*;
use vaultdb_testkit::{Counting, Failing, Ops};

/// What a read returns, for comparing stores: data, content type, metadata, version.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    data: Vec<u8>,
    content_type: Option<String>,
    metadata: BTreeMap<String, String>,
    version: Version,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field(
                "data",
                &format!(
                    "{} bytes, {:?}...",
                    self.data.len(),
                    &self.data[..self.data.len().min(8)]
                ),
            )
            .field("content_type", &self.content_type)
            .field("metadata", &self.metadata)
            .field("version", &self.version)
            .finish()
    }
}

async fn seen(db: &VaultDb, id: &str) -> Result<Seen, ErrorCode> {
    let g = db.get(id).await.map_err(|e| e.code())?;
    Ok(Seen {
        data: g.record.data,
        content_type: g.record.content_type,
        metadata: g.record.metadata,
        version: g.version,
    })
}

/// Fills a store: inline records with content types and metadata, two segmented ones (one
/// streamed), a record deleted (its tombstone must survive), a record in the system
/// namespace. Returns what every id reads as.
async fn fill(db: &VaultDb, count: usize) -> BTreeMap<String, Result<Seen, ErrorCode>> {
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("rec-{i}");
        let r = Record::new(&id, format!("value {i}").repeat(i % 7 + 1))
            .with_content_type(format!("text/x-{i}"))
            .with_metadata("n", i.to_string());
        db.put(r).await.unwrap();
        ids.push(id);
    }
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    db.put(Record::new("big", big.clone()).with_metadata("kind", "segmented")).await.unwrap();
    let meta = RecordMeta::new("streamed").with_content_type("application/octet-stream");
    db.put_stream(meta, 3000, &big[..3000]).await.unwrap();
    db.put(Record::new("gone", "deleted before the re-share")).await.unwrap();
    db.delete("gone").await.unwrap();
    db.system().put(Record::new("checkpoint", "a system record")).await.unwrap();
    ids.extend(["big", "streamed", "gone"].map(String::from));
    let mut out = BTreeMap::new();
    for id in ids {
        out.insert(id.clone(), seen(db, &id).await);
    }
    out
}

async fn check_all(db: &VaultDb, want: &BTreeMap<String, Result<Seen, ErrorCode>>, when: &str) {
    for (id, w) in want {
        assert_eq!(&seen(db, id).await, w, "{id} {when}");
    }
}

/// Keys under `prefix/` in a backend.
fn keys_under(n: &Node, prefix: &str) -> Vec<String> {
    n.mem.keys().into_iter().filter(|k| k.starts_with(&format!("{prefix}/"))).collect()
}

/// Options that save the progress cursor every two records.
fn every_two() -> ReshareOptions {
    let mut o = ReshareOptions::default();
    o.checkpoint_every = 2;
    o
}

fn two_of_three() -> Config {
    Config { nodes: nodes(&["a", "b", "c"]), k: 2, prefix: "v1", mode: None }
}

/// A 3-of-5 store over the old store's three backends (under another prefix) and two more.
fn three_of_five(old: &Config) -> Config {
    let mut ns = old.nodes.clone();
    ns.extend(nodes(&["d", "e"]));
    Config { nodes: ns, k: 3, prefix: "v2", mode: None }
}

#[tokio::test(start_paused = true)]
async fn two_of_three_to_three_of_five_keeps_every_record_readable_and_equal() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let want = fill(&old, 12).await;
    let new_cfg = three_of_five(&old_cfg);
    let new = open_migrating(&new_cfg, &old).await;
    check_all(&new, &want, "before the re-share (read through)").await;

    // Readers keep reading through the new client while the re-share runs: while it
    // fences (virtual time passes), and between the records it copies (it yields after each).
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let mut phases = Vec::new();
    let reading = async {
        let mut rounds = BTreeMap::new();
        loop {
            let phase = *rx.borrow_and_update();
            if phase == Some(ResharePhase::Done) {
                break rounds;
            }
            check_all(&new, &want, &format!("during the re-share ({phase:?})")).await;
            *rounds.entry(format!("{phase:?}")).or_insert(0) += 1;
            // A few rounds between records (the copy yields after each); then wait for
            // the next phase, so that the runtime's virtual time can move on.
            match phase {
                Some(ResharePhase::Copying) if rounds["Some(Copying)"] < 5 => {
                    tokio::task::yield_now().await;
                }
                _ => tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(700)) => {}
                    _ = rx.changed() => {}
                },
            }
        }
    };
    let resharing = old.reshare(&new, &DEFAULTS, |p| {
        phases.push(p.phase);
        tx.send_replace(Some(p.phase));
    });
    let (report, rounds) = tokio::join!(resharing, reading);
    let report = report.unwrap();
    assert!(rounds.get("Some(Fencing)").is_some_and(|r| *r > 3), "{rounds:?}");
    assert!(rounds.get("Some(Copying)").is_some_and(|r| *r > 3), "{rounds:?}");
    assert!(phases.contains(&ResharePhase::Fencing) && phases.contains(&ResharePhase::Copying));
    assert_eq!(phases.last(), Some(&ResharePhase::Done));
    // 14 live records and one system record copied; "gone" is not listed.
    assert_eq!((report.copied, report.skipped), (15, 0), "{report:?}");
    assert!(report.waited >= Duration::from_secs(20));
    assert!(report.problems.is_empty(), "{report:?}");

    check_all(&new, &want, "after the re-share").await;
    let fresh = open(&new_cfg).await;
    assert_eq!(new.threshold().k(), 3);
    check_all(&fresh, &want, "from a client of the new configuration alone").await;
    let listed = fresh.list().await.unwrap().ids;
    let live: Vec<&String> = want.iter().filter(|(_, w)| w.is_ok()).map(|(id, _)| id).collect();
    assert_eq!(listed.iter().collect::<Vec<_>>(), live);
    assert_eq!(
        fresh.system().get("checkpoint").await.unwrap().record.data,
        b"a system record".to_vec()
    );
    // Every version is newer than the floor only if written after the re-share.
    let floor = report.floor.unwrap();
    assert!(want.values().flatten().all(|s| s.version <= floor));
    let put = fresh.put(Record::new("rec-0", "after")).await.unwrap();
    assert!(put.version > floor);

    // The old store: only its keyring and moved notice remain on each backend.
    for n in &old_cfg.nodes {
        let mut left = keys_under(n, "v1");
        left.sort();
        assert_eq!(left, ["v1/keyring", "v1/moved"], "backend {}", n.id);
    }
    assert_eq!(report.kept, 6);
    assert!(report.removed.iter().all(|(_, removed)| *removed > 10), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn old_clients_are_told_to_reload_and_writes_within_the_lease_are_kept() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let other = open(&old_cfg).await; // another process on the old configuration
    let mut want = fill(&old, 3).await;
    let new = open_migrating(&three_of_five(&old_cfg), &old).await;

    let late_write = async {
        // Within the other client's lease (checked when it opened): accepted, and copied.
        tokio::time::sleep(Duration::from_secs(2)).await;
        other.put(Record::new("late", "written during the fence's wait")).await.unwrap();
    };
    let (report, ()) = tokio::join!(old.reshare(&new, &DEFAULTS, |_| {}), late_write);
    report.unwrap();
    want.insert("late".into(), seen(&new, "late").await);
    assert_eq!(new.get("late").await.unwrap().record.data, b"written during the fence's wait");

    for db in [&old, &other] {
        let err = db.put(Record::new("rec-1", "too late")).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(err.to_string().contains("reload the configuration"), "{err}");
        assert_eq!(db.get("rec-1").await.unwrap_err().code(), ErrorCode::InvalidConfig);
        assert_eq!(db.delete("rec-1").await.unwrap_err().code(), ErrorCode::InvalidConfig);
        assert_eq!(db.list().await.unwrap_err().code(), ErrorCode::InvalidConfig);
        assert_eq!(
            db.system().get("checkpoint").await.unwrap_err().code(),
            ErrorCode::InvalidConfig
        );
        assert!(db.has_moved());
    }
    // A process started later with the old configuration is told too, at its first
    // operation (the keyring and the moved notice stay for that).
    let later = open(&old_cfg).await;
    let err = later.get("rec-0").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert!(err.to_string().contains("3-of-5"), "{err}");
    check_all(&new, &want, "after").await;
}

#[tokio::test(start_paused = true)]
async fn an_old_client_that_cannot_check_stops_within_its_lease() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    old.put(Record::new("x", "1")).await.unwrap();
    // Two of three backends stop answering GETs of anything: the notices cannot be read
    // from K backends any more.
    for n in &old_cfg.nodes[..2] {
        n.fail.fail(vaultdb_testkit::Ops::GET, vaultdb_core::BackendErrorKind::Transient);
    }
    tokio::time::sleep(Duration::from_secs(21)).await;
    let err = old.put(Record::new("x", "2")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BackendError, "{err}");
    assert!(err.to_string().contains("re-share notices"), "{err}");
    for n in &old_cfg.nodes {
        n.fail.heal();
    }
    old.put(Record::new("x", "3")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_checks_add_no_call_to_operations_within_the_lease() {
    async fn calls(fence: Option<Duration>) -> (u64, u64) {
        let cfg = two_of_three();
        let db = builder(&cfg).fence_check(fence).open().await.unwrap();
        cfg.nodes.iter().for_each(|n| n.count.reset());
        for i in 0..5 {
            db.put(Record::new("r", format!("{i}"))).await.unwrap();
            db.get("r").await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        db.flush().await;
        let within: u64 = cfg.nodes.iter().map(|n| n.count.counts().total()).sum();
        // Idle for longer than the lease: the next operation checks first (one round trip
        // of two GETs per backend).
        tokio::time::sleep(Duration::from_secs(30)).await;
        cfg.nodes.iter().for_each(|n| n.count.reset());
        db.get("r").await.unwrap();
        let after_idle: u64 = cfg.nodes.iter().map(|n| n.count.gets()).sum();
        (within, after_idle)
    }
    let (on, on_idle) = calls(Some(Duration::from_secs(10))).await;
    let (off, off_idle) = calls(None).await;
    assert_eq!(on, off, "operations within the lease make no extra call");
    assert_eq!(on_idle, off_idle + 6, "after the lease ran out, one check: 2 GETs x 3");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_backend_does_not_hold_up_the_check() {
    let cfg = two_of_three();
    let db = builder(&cfg).write_quorum(2).open().await.unwrap();
    db.put(Record::new("r", "1")).await.unwrap();
    cfg.nodes[2].fail.set_down(true);
    tokio::time::sleep(Duration::from_secs(25)).await;
    // The check hears two of three: the lease is renewed, the operation goes on.
    db.get("r").await.unwrap();
    db.put(Record::new("r", "2")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn new_writes_and_deletes_during_the_copy_win_over_the_copy() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let mut want = fill(&old, 40).await;
    let new = open_migrating(&three_of_five(&old_cfg), &old).await;
    // Before the floor is recorded, the new store takes no writes.
    let err = new.put(Record::new("rec-0", "too early")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");

    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let writing = async {
        rx.wait_for(|p| *p == Some(ResharePhase::Copying)).await.unwrap();
        assert_eq!(new.reshare_phase(), Some(ResharePhase::Copying));
        let mut wrote = BTreeMap::new();
        for i in (0..40).step_by(3) {
            let id = format!("rec-{i}");
            if i % 2 == 0 {
                new.put(Record::new(&id, "newer")).await.unwrap();
                wrote.insert(id, Some(b"newer".to_vec()));
            } else {
                new.delete(&id).await.unwrap();
                wrote.insert(id, None);
            }
            tokio::task::yield_now().await;
        }
        wrote
    };
    let resharing = old.reshare(&new, &DEFAULTS, |p| {
        tx.send_replace(Some(p.phase));
    });
    let (report, wrote) = tokio::join!(resharing, writing);
    let report = report.unwrap();
    assert!(
        report.skipped > 0 && report.copied > 0,
        "writes interleaved with the copy: {report:?}"
    );
    for (id, w) in &wrote {
        match w {
            Some(data) => assert_eq!(&new.get(id).await.unwrap().record.data, data, "{id}"),
            None => assert_eq!(new.get(id).await.unwrap_err().code(), ErrorCode::RecordNotFound),
        }
        want.remove(id);
    }
    check_all(&new, &want, "records not written during the copy").await;
    let fresh = open(&three_of_five(&old_cfg)).await;
    for (id, w) in &wrote {
        assert_eq!(fresh.get(id).await.ok().map(|g| g.record.data), w.clone(), "{id}");
    }
}

#[tokio::test(start_paused = true)]
async fn deletes_of_records_only_the_old_store_holds_are_kept() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let ids: Vec<String> = (0..20).map(|i| format!("only-old-{i}")).collect();
    for id in &ids {
        old.put(Record::new(id, "x")).await.unwrap();
    }
    let new_cfg = three_of_five(&old_cfg);
    let new = open_migrating(&new_cfg, &old).await;
    // Fence and record the floor, and stop (a crash) once the copy has begun.
    stop_once_copying(&old, &new).await;
    for id in &ids {
        assert_eq!(new.get(id).await.unwrap().record.data, b"x");
        new.delete(id).await.unwrap();
        assert_eq!(new.get(id).await.unwrap_err().code(), ErrorCode::RecordNotFound);
    }
    assert!(new.list().await.unwrap().ids.is_empty());
    let report = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    assert!(report.copied <= 2, "the crash came early in the copy: {report:?}");
    assert_eq!(report.copied + report.skipped, 20, "{report:?}");
    let fresh = open(&new_cfg).await;
    for id in &ids {
        assert_eq!(fresh.get(id).await.unwrap_err().code(), ErrorCode::RecordNotFound);
    }
    assert!(fresh.list().await.unwrap().ids.is_empty());
}

/// A store that has moved on (re-shared into another) looks empty but for its keyring and
/// moved notice: a re-share into it is refused, since what it copied there would be read by
/// no client (every one of them is told to reload) and lost.
#[tokio::test(start_paused = true)]
async fn nothing_is_re_shared_into_a_store_that_moved_on() {
    let b_cfg = Config { nodes: nodes(&["b1", "b2", "b3"]), k: 2, prefix: "b", mode: None };
    let b = open(&b_cfg).await;
    b.put(Record::new("in-b", "b")).await.unwrap();
    let c_cfg = Config { nodes: nodes(&["c1", "c2", "c3"]), k: 2, prefix: "c", mode: None };
    let c = open_migrating(&c_cfg, &b).await;
    b.reshare(&c, &DEFAULTS, |_| {}).await.unwrap();
    let a_cfg = two_of_three();
    let a = open(&a_cfg).await;
    a.put(Record::new("in-a", "a")).await.unwrap();
    // B's handle was opened before the move; a migrating client of it cannot be opened now.
    let e = a.reshare(&b, &DEFAULTS, |_| {}).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
    assert!(e.to_string().contains("has itself moved"), "{e}");
    assert_eq!(data(&a, "in-a").await, Ok(b"a".to_vec()), "the old store is untouched");
}

/// A migrating client deletes a record, then deletes it again while the old store cannot be
/// read for it (one old backend hides it, another is down). The second delete finds nothing
/// here, and its second round trip removes the first one's tombstone: its own must then stay
/// (the old lookup fails, so it answers `BACKEND_ERROR`), or reads fall through to the old
/// store's copy once the old store answers again, and the acknowledged delete is undone.
/// (The lead of docs/FAULTS.md "Results": a lookup that answers "not found" instead is not
/// reached with one hiding backend and one down.)
#[tokio::test(start_paused = true)]
async fn a_second_delete_during_a_re_share_keeps_the_first_ones_tombstone() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    old.put(Record::new("r", "old value")).await.unwrap();
    // More records, as in the other tests that stop a copy: one record alone can be copied
    // within a single poll, and the re-share would finish before it is stopped.
    fill(&old, 20).await;
    old.flush().await;
    let new_cfg = Config { nodes: nodes(&["p", "q", "s"]), k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    stop_once_copying(&old, &new).await;
    new.delete("r").await.unwrap();
    assert_eq!(new.get("r").await.unwrap_err().code(), ErrorCode::RecordNotFound);
    // Backend a hides the old store's objects of r; c is down.
    let a = &old_cfg.nodes[0].mem;
    let hidden: Vec<(String, bytes::Bytes)> =
        a.snapshot().into_iter().filter(|(k, _)| k.starts_with("v1/r/")).collect();
    assert!(!hidden.is_empty());
    for (k, _) in &hidden {
        a.raw_delete(k);
    }
    old_cfg.nodes[2].fail.set_down(true);
    let second = new.delete("r").await.map(|_| ()).map_err(|e| e.code());
    assert_eq!(second, Err(ErrorCode::BackendError));
    for (k, v) in hidden {
        a.raw_put(k, v);
    }
    old_cfg.nodes[2].fail.heal();
    let read = new.get("r").await.map(|g| g.record.data).map_err(|e| e.code());
    assert_eq!(
        read,
        Err(ErrorCode::RecordNotFound),
        "deleted, then read back (second delete: {second:?})"
    );
}

/// Found by the fault-schedule checker (docs/FAULTS.md, "Re-sharing"): a migrating client's
/// delete of a record the new store does not hold looks the record up in the old store; when
/// that lookup fails, the delete answered with the lookup's read error (`INSUFFICIENT_SHARES`,
/// `HMAC_FAILED`), which a delete never does. Its tombstone is written and stays, so whether
/// there was anything to delete is unknown: `BACKEND_ERROR`, and the record is gone.
#[tokio::test(start_paused = true)]
async fn a_delete_that_cannot_read_the_old_store_fails_with_backend_error_and_keeps_its_tombstone()
{
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let ids: Vec<String> = (0..20).map(|i| format!("only-old-{i}")).collect();
    for id in &ids {
        old.put(Record::new(id, "x")).await.unwrap();
    }
    // The new store on backends of its own, so that failing the old ones spares it.
    let new_cfg = Config { nodes: nodes(&["p", "q", "r"]), k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    // Fence and record the floor, and stop (a crash) once the copy has begun.
    stop_once_copying(&old, &new).await;
    // Two of the old store's three backends answer no GET: it cannot be read.
    for n in &old_cfg.nodes[..2] {
        n.fail.fail(Ops::GET, vaultdb_core::BackendErrorKind::Permanent);
    }
    let mut unknown = 0;
    for id in &ids {
        match new.delete(id).await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::BackendError, "{id}: {e}");
                unknown += 1;
            }
        }
    }
    assert!(unknown > 10, "most records were not copied yet: {unknown}");
    for n in &old_cfg.nodes {
        n.fail.heal();
    }
    // Every delete's tombstone stayed: the records are gone, now and after the re-share.
    for id in &ids {
        assert_eq!(new.get(id).await.unwrap_err().code(), ErrorCode::RecordNotFound, "{id}");
    }
    old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    let fresh = open(&new_cfg).await;
    for id in &ids {
        assert_eq!(fresh.get(id).await.unwrap_err().code(), ErrorCode::RecordNotFound, "{id}");
    }
}

/// Runs `fut` until the backends have taken `calls` calls (then every call hangs), and
/// drops it there, as a crash of its process would. `None` if it was dropped.
async fn crash_after<F: Future>(calls: i64, fut: F) -> Option<F::Output> {
    CALLS_LEFT.set(calls);
    let mut fut = std::pin::pin!(fut);
    let out = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending if CALLS_LEFT.get() == 0 => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    CALLS_LEFT.set(-1);
    out
}

#[tokio::test(start_paused = true)]
async fn a_re_share_interrupted_anywhere_finishes_when_run_again() {
    let options = every_two();
    // How many calls a whole run makes.
    let total = {
        let old_cfg = two_of_three();
        let old = open(&old_cfg).await;
        fill(&old, 6).await;
        let new = open_migrating(&three_of_five(&old_cfg), &old).await;
        let before = CALLS_MADE.get();
        old.reshare(&new, &options, |_| {}).await.unwrap();
        CALLS_MADE.get() - before
    };
    assert!(total > 200, "{total} calls");
    let mut points: Vec<i64> = (1..total).step_by((total as usize / 60).max(1)).collect();
    points.extend([2, 3, 5, 8, total - 3, total - 1]);
    let mut crashed = 0;
    for calls in points {
        let old_cfg = two_of_three();
        let old = open(&old_cfg).await;
        let want = fill(&old, 6).await;
        let new_cfg = three_of_five(&old_cfg);
        let new = open_migrating(&new_cfg, &old).await;
        if crash_after(calls, old.reshare(&new, &options, |_| {})).await.is_none() {
            crashed += 1;
        }
        // The restarted process: new clients of both configurations.
        let old2 = open(&old_cfg).await;
        let new2 = open_migrating(&new_cfg, &old2).await;
        check_all(&new2, &want, &format!("after a crash at call {calls}")).await;
        let report = old2.reshare(&new2, &options, |_| {}).await.unwrap();
        assert!(report.problems.is_empty(), "{report:?}");
        let fresh = open(&new_cfg).await;
        check_all(&fresh, &want, &format!("after resuming from call {calls}")).await;
        for n in &old_cfg.nodes {
            let mut left = keys_under(n, "v1");
            left.sort();
            assert_eq!(left, ["v1/keyring", "v1/moved"], "call {calls}, backend {}", n.id);
        }
        let scrub = fresh.scrub().await.unwrap();
        assert!(scrub.problems.is_empty(), "call {calls}: {scrub:?}");
    }
    assert!(crashed > 50, "{crashed} crashes");
}

#[tokio::test(start_paused = true)]
async fn a_lost_backend_is_replaced() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let want = fill(&old, 8).await;
    // Backend c is gone for good.
    old_cfg.nodes[2].fail.set_down(true);
    let old = open(&old_cfg).await;
    let mut ns = old_cfg.nodes[..2].to_vec();
    ns.push(node("d"));
    let new_cfg = Config { nodes: ns, k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    // c declared lost: the copy does not wait for it (an id that is not an old backend's is
    // refused).
    let mut lost = ReshareOptions::default();
    lost.lost = vec!["c".to_owned()];
    let mut unknown = ReshareOptions::default();
    unknown.lost = vec!["zz".to_owned()];
    let e = old.reshare(&new, &unknown, |_| {}).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
    let report = old.reshare(&new, &lost, |_| {}).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].starts_with("c:"), "{report:?}");
    let fresh = open(&new_cfg).await;
    check_all(&fresh, &want, "after replacing c by d").await;
    assert!(!old_cfg.nodes[2].mem.keys().iter().any(|k| k.starts_with("v2/")));
    for n in &old_cfg.nodes[..2] {
        let mut left = keys_under(n, "v1");
        left.sort();
        assert_eq!(left, ["v1/keyring", "v1/moved"], "backend {}", n.id);
    }
}

/// Found by the fault-schedule checker (docs/FAULTS.md, "Re-sharing"): with W = K, a record
/// may be on K backends only; while one of them cannot be reached, the old store's listing
/// cannot rebuild its id, so the copy did not see it, the re-share finished and removed the
/// old store, and the record was gone for good once the backend came back. A re-share must
/// not finish while a record may be live on backends that did not answer.
#[tokio::test(start_paused = true)]
async fn a_record_whose_shares_are_partly_on_an_unreachable_backend_is_not_left_behind() {
    let old_cfg = two_of_three();
    let old = builder(&old_cfg).write_quorum(2).open().await.unwrap();
    old.put(Record::new("everywhere", "on a, b and c")).await.unwrap();
    // Written while a is down: on b and c only.
    old_cfg.nodes[0].fail.set_down(true);
    old.put(Record::new("x", "on b and c")).await.unwrap();
    old_cfg.nodes[0].fail.set_down(false);
    // c is unreachable during the re-share (to a, b and a new backend d).
    old_cfg.nodes[2].fail.set_down(true);
    let mut ns = old_cfg.nodes[..2].to_vec();
    ns.push(node("d"));
    let new_cfg = Config { nodes: ns, k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    let err = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("declare them lost"), "{err}");
    assert_eq!(new.reshare_phase(), Some(ResharePhase::Copying));
    // c is back: the next run copies x, and finishes.
    old_cfg.nodes[2].fail.set_down(false);
    let report = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    let fresh = open(&new_cfg).await;
    assert_eq!(fresh.get("x").await.unwrap().record.data, b"on b and c");
    assert_eq!(fresh.get("everywhere").await.unwrap().record.data, b"on a, b and c");
}

/// Found by the fault-schedule checker (docs/FAULTS.md, "Re-sharing"; seed 259): a copy
/// keeps the record's version, so shares of an earlier, interrupted copy of it are removed
/// before it is written again (they were split with other randomness). A backend that did
/// not answer that listing kept its old share, the new copy put a second one beside it, and
/// reads that fetched it mixed two splits (`HMAC_FAILED` with no backend serving bad data).
/// The copy now waits for a listing that every backend answers.
#[tokio::test(start_paused = true)]
async fn a_copy_never_leaves_two_splits_of_one_version() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    old.put(Record::new("x", "the only record")).await.unwrap();
    let new_cfg = Config { nodes: nodes(&["p", "q", "r"]), k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    // The first run's copy of x reaches p and q, not r (W = 3): it fails, shares left.
    new_cfg.nodes[2].fail.fail(Ops::PUT, vaultdb_core::BackendErrorKind::Permanent);
    let mut o = ReshareOptions::default();
    o.checkpoint_every = 1;
    old.reshare(&new, &o, |_| {}).await.unwrap_err();
    new_cfg.nodes[2].fail.heal();
    // The next run cannot list q.
    new_cfg.nodes[1].fail.fail(Ops::LIST, vaultdb_core::BackendErrorKind::Permanent);
    let _ = old.reshare(&new, &o, |_| {}).await;
    new_cfg.nodes[1].fail.heal();
    old.reshare(&new, &o, |_| {}).await.unwrap();
    for n in &new_cfg.nodes {
        let heads = keys_under(n, "v2").into_iter().filter(|k| k.contains("/r/")).count();
        assert_eq!(heads, 1, "backend {}: {:?}", n.id, keys_under(n, "v2"));
    }
    let fresh = open(&new_cfg).await;
    for _ in 0..5 {
        assert_eq!(fresh.get("x").await.unwrap().record.data, b"the only record");
    }
}

/// Found by the fault-schedule checker (docs/FAULTS.md, "Re-sharing"; seed 765): the copy's
/// reads of the old store settle records in the background (writing settled objects there);
/// one that landed after the old store was removed was left behind under the old prefix.
#[tokio::test(start_paused = true)]
async fn the_re_shares_own_background_work_leaves_nothing_in_the_old_store() {
    let mut old_cfg = two_of_three();
    // c takes 150 ms per PUT (within the 200 ms call timeout).
    let mem = Arc::new(MemoryBackend::new("c", "backend c"));
    let counting = Counting::new(mem.clone());
    let count = counting.handle();
    let slow = vaultdb_testkit::Slow::new(counting, Duration::from_millis(150));
    slow.handle().set_ops(Ops::PUT);
    let failing = Failing::new(slow);
    let fail = failing.handle();
    let backend = Arc::new(Budgeted(failing));
    old_cfg.nodes[2] = Node { id: "c".to_owned(), mem, fail, count, backend };
    // A wall clock that follows virtual time, so that records age while the test sleeps.
    let started = tokio::time::Instant::now();
    let wall: vaultdb_core::WallClock =
        Arc::new(move || 1_700_000_000_000_000 + started.elapsed().as_micros() as u64);
    let old = builder(&old_cfg).wall_clock(wall).open().await.unwrap();
    for i in 0..3 {
        old.put(Record::new(format!("r{i}"), "x")).await.unwrap();
    }
    // Old enough that a read settles them: the copy's reads will.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let new_cfg = Config { nodes: nodes(&["p", "q", "r"]), k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    let report = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    assert_eq!(report.copied, 3, "{report:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    for n in &old_cfg.nodes {
        let mut left = keys_under(n, "v1");
        left.sort();
        assert_eq!(left, ["v1/keyring", "v1/moved"], "backend {}", n.id);
    }
}

#[tokio::test(start_paused = true)]
async fn shamir_to_compact_and_the_fence_removed_too() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let want = fill(&old, 5).await;
    let new_cfg = Config {
        nodes: nodes(&["p", "q", "r", "s"]),
        k: 3,
        prefix: "v1",
        mode: Some(Mode::Compact),
    };
    let new = open_migrating(&new_cfg, &old).await;
    let mut options = ReshareOptions::default();
    options.remove_fence = true;
    old.reshare(&new, &options, |_| {}).await.unwrap();
    let fresh = open(&new_cfg).await;
    assert_eq!(fresh.mode(), Mode::Compact);
    check_all(&fresh, &want, "in compact mode").await;
    for n in &old_cfg.nodes {
        assert!(n.mem.keys().is_empty(), "backend {}: {:?}", n.id, n.mem.keys());
    }
}

#[tokio::test(start_paused = true)]
async fn unsafe_re_shares_are_refused() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    old.put(Record::new("x", "1")).await.unwrap();
    // The same backends under a prefix inside the old one.
    let inside = Config { nodes: old_cfg.nodes.clone(), k: 2, prefix: "v1/next", mode: None };
    let new = open(&inside).await;
    let err = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig);
    assert!(err.to_string().contains("one inside the other"), "{err}");
    // A new store that already holds records.
    let busy_cfg = Config { nodes: nodes(&["x", "y", "z"]), k: 2, prefix: "v1", mode: None };
    let busy = open(&busy_cfg).await;
    busy.put(Record::new("mine", "1")).await.unwrap();
    let err = old.reshare(&busy, &DEFAULTS, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    // Nothing was fenced: the old store goes on.
    old.put(Record::new("x", "2")).await.unwrap();
    assert!(!old.has_moved());
}

/// Every id of a page walk from `cursor` on, checking that no id comes twice.
async fn walk(db: &VaultDb, mut cursor: Option<String>, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = db.list_page(cursor.as_deref(), limit).await.unwrap();
        assert!(page.ids.len() <= limit);
        ids.extend(page.ids);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let set: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "an id listed twice: {ids:?}");
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test(start_paused = true)]
async fn list_pages_during_a_re_share_list_both_stores_and_their_cursors_outlive_it() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let want = fill(&old, 30).await;
    let live: Vec<String> =
        want.iter().filter(|(_, w)| w.is_ok()).map(|(id, _)| id.clone()).collect();
    let new_cfg = three_of_five(&old_cfg);
    let new = open_migrating(&new_cfg, &old).await;
    assert_eq!(sorted(walk(&new, None, 7).await), live, "before the re-share (read through)");

    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let paging = async {
        rx.wait_for(|p| *p == Some(ResharePhase::Copying)).await.unwrap();
        new.put(Record::new("fresh", "written during the copy")).await.unwrap();
        new.delete("rec-3").await.unwrap();
        let during = walk(&new, None, 7).await;
        let first = new.list_page(None, 7).await.unwrap();
        let still_copying = new.reshare_phase() == Some(ResharePhase::Copying);
        (during, first, still_copying)
    };
    let resharing = old.reshare(&new, &DEFAULTS, |p| {
        tx.send_replace(Some(p.phase));
    });
    let (report, (during, first, still_copying)) = tokio::join!(resharing, paging);
    report.unwrap();
    assert!(still_copying, "the first page was taken while the copy ran");
    let mut expected: Vec<String> =
        live.iter().filter(|id| *id != "rec-3").cloned().chain(["fresh".to_owned()]).collect();
    expected.sort();
    assert_eq!(sorted(during.clone()), expected, "during the copy");
    assert_eq!(first.ids, during[..7], "pages are cut in one order");

    // A cursor handed out during the copy goes on, after it, where the page ended.
    assert!(matches!(new.reshare_phase(), None | Some(ResharePhase::Done)));
    let fresh = open(&new_cfg).await;
    for db in [&new, &fresh] {
        let rest = walk(db, first.next.clone(), 7).await;
        assert_eq!(rest, during[7..], "the walk after the re-share continues in the same order");
    }
}

/// The raw objects of one backend's share of a record under `prefix` (no tombstones).
fn record_envelopes(objects: &[(String, bytes::Bytes)], prefix: &str) -> Vec<Vec<u8>> {
    objects
        .iter()
        .filter(|(k, v)| {
            k.starts_with(&format!("{prefix}/r/"))
                && vaultdb_core::envelope::decode(v)
                    .is_ok_and(|e| e.header.kind == vaultdb_core::envelope::Kind::Record)
        })
        .map(|(_, v)| v.to_vec())
        .collect()
}

/// The payload rebuilt from two share envelopes and checked against the MAC the `binding`
/// envelope's header names (its kind, name tag, version, threshold), or the error.
fn rebuild_two(binding: &[u8], a: &[u8], b: &[u8]) -> vaultdb_core::Result<Vec<u8>> {
    use vaultdb_core::envelope::decode;
    use vaultdb_core::secret::{Binding, open};
    use vaultdb_core::{SharePoint, Xorida};
    let h = decode(binding).unwrap().header;
    let (a, b) = (decode(a).unwrap(), decode(b).unwrap());
    assert_ne!(a.header.x, b.header.x, "two different backends' shares");
    assert_eq!(a.share.len(), b.share.len(), "shares of one length: the mix is computed");
    let pts = [SharePoint { x: a.header.x, y: a.share }, SharePoint { x: b.header.x, y: b.share }];
    let secret = Xorida::new().rebuild(h.threshold, &pts)?;
    let binding = Binding { kind: h.kind, tag: h.tag, version: h.version, threshold: h.threshold };
    open(&binding, &secret).map(<[u8]>::to_vec)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Proactive refresh: a re-share draws every share anew, so an old share kept by one
/// backend (a backup taken before the re-share) and a new share of the same record from
/// another backend rebuild nothing; two new shares, or two old ones, rebuild the record.
/// Also: the new store names the record under a fresh naming key.
#[tokio::test(start_paused = true)]
async fn old_and_new_shares_do_not_combine_and_names_change() {
    const DATA: &[u8] = b"the plaintext of a record that must not come back";
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    old.put(Record::new("secret", DATA)).await.unwrap();
    old.flush().await;
    let before: Vec<Vec<(String, bytes::Bytes)>> =
        old_cfg.nodes.iter().map(|n| n.mem.snapshot()).collect();
    // 2-of-3 over the same three backends, under another prefix.
    let new_cfg = Config { nodes: old_cfg.nodes.clone(), k: 2, prefix: "v2", mode: None };
    let new = open_migrating(&new_cfg, &old).await;
    old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    new.flush().await;
    assert_eq!(data(&new, "secret").await.unwrap(), DATA);

    let old_shares: Vec<Vec<u8>> = before
        .iter()
        .map(|objs| {
            let mut e = record_envelopes(objs, "v1");
            assert_eq!(e.len(), 1);
            e.remove(0)
        })
        .collect();
    let new_shares: Vec<Vec<u8>> = old_cfg
        .nodes
        .iter()
        .map(|n| {
            let mut e = record_envelopes(&n.mem.snapshot(), "v2");
            assert_eq!(e.len(), 1);
            e.remove(0)
        })
        .collect();
    assert!(record_envelopes(&old_cfg.nodes[0].mem.snapshot(), "v1").is_empty(), "old removed");

    // Two new shares, and two old ones, rebuild the record (the check below can succeed).
    let payload = rebuild_two(&new_shares[0], &new_shares[0], &new_shares[1]).unwrap();
    assert!(contains(&payload, DATA));
    let payload = rebuild_two(&old_shares[0], &old_shares[0], &old_shares[1]).unwrap();
    assert!(contains(&payload, DATA));
    // One old share and one new one, from different backends, under either MAC: nothing.
    for (old_i, new_i) in [(0, 1), (1, 2), (2, 0)] {
        for binding in [&old_shares[old_i], &new_shares[new_i]] {
            let mixed = rebuild_two(binding, &old_shares[old_i], &new_shares[new_i]);
            let err = mixed.expect_err("an old share and a new one rebuilt a record");
            assert_eq!(err.code(), ErrorCode::HmacFailed, "{err}");
        }
        // Nor is the data in the mixed secret, MAC aside.
        use vaultdb_core::envelope::decode;
        let (o, n) = (decode(&old_shares[old_i]).unwrap(), decode(&new_shares[new_i]).unwrap());
        let pts = [
            vaultdb_core::SharePoint { x: o.header.x, y: o.share },
            vaultdb_core::SharePoint { x: n.header.x, y: n.share },
        ];
        let secret = vaultdb_core::Xorida::new().rebuild(n.header.threshold, &pts).unwrap();
        assert!(!contains(&secret, DATA), "the mix holds the plaintext");
    }

    // A fresh naming key: the same id, the same version, another name tag.
    let (o, n) = (
        vaultdb_core::envelope::decode(&old_shares[0]).unwrap().header,
        vaultdb_core::envelope::decode(&new_shares[0]).unwrap().header,
    );
    assert_eq!(o.version, n.version, "a copy keeps its version");
    assert_ne!(o.tag, n.tag, "the new store names the id under another key");
    let tag_of = |objs: &[(String, bytes::Bytes)], prefix: &str| -> Vec<String> {
        objs.iter()
            .filter_map(|(k, _)| k.strip_prefix(&format!("{prefix}/r/")))
            .map(|rest| rest.split('/').next().unwrap().to_owned())
            .collect()
    };
    let old_tags = tag_of(&before[0], "v1");
    let new_tags = tag_of(&old_cfg.nodes[0].mem.snapshot(), "v2");
    assert_eq!(old_tags, [o.tag.to_text()]);
    assert_eq!(new_tags, [n.tag.to_text()]);
}

/// A new store holding the old store's naming key (its keyring copied under the new
/// prefix, beside the old one) would keep every name of the old store: the re-share refuses
/// it before fencing anything.
#[tokio::test(start_paused = true)]
async fn a_new_store_with_the_old_naming_key_is_refused() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    old.put(Record::new("x", "1")).await.unwrap();
    let new_cfg = Config { nodes: old_cfg.nodes.clone(), k: 2, prefix: "v2", mode: None };
    for n in &old_cfg.nodes {
        n.mem.raw_put("v2/keyring", n.mem.raw_get("v1/keyring").unwrap());
    }
    let new = open(&new_cfg).await;
    let err = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert!(err.to_string().contains("naming key"), "{err}");
    // Nothing was fenced: the old store goes on.
    old.put(Record::new("x", "2")).await.unwrap();
    assert!(!old.has_moved());
    assert_eq!(data(&old, "x").await.unwrap(), b"2");
}

/// A finished re-share leaves, of the old store, only each old backend's keyring share and
/// moved notice; running it again with `remove_fence` (once no old client remains) removes
/// them too.
#[tokio::test(start_paused = true)]
async fn the_fence_left_by_a_finished_re_share_is_removed_by_a_second_run() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    fill(&old, 3).await;
    let new_cfg = three_of_five(&old_cfg);
    let new = open_migrating(&new_cfg, &old).await;
    let first = old.reshare(&new, &DEFAULTS, |_| {}).await.unwrap();
    for n in &old_cfg.nodes {
        let mut left = keys_under(n, "v1");
        left.sort();
        assert_eq!(left, ["v1/keyring", "v1/moved"], "backend {}", n.id);
    }
    let mut options = ReshareOptions::default();
    options.remove_fence = true;
    let report = old.reshare(&new, &options, |_| {}).await.unwrap();
    assert_eq!(report.copied, first.copied, "nothing copied twice: {report:?}");
    assert_eq!((report.kept, first.kept), (0, 6));
    for n in &old_cfg.nodes {
        assert!(keys_under(n, "v1").is_empty(), "backend {}: {:?}", n.id, keys_under(n, "v1"));
    }
    assert_eq!(
        data(&open(&new_cfg).await, "rec-1").await.unwrap(),
        data(&new, "rec-1").await.unwrap()
    );
}

/// A client of the new configuration opened before the re-share (without `migrating_from`)
/// is refused while the re-share is not done, until it is told the old store with
/// `follow_reshare` (another store is refused): it then reads through and writes as a
/// migrating client, and what it wrote is there after the re-share.
#[tokio::test(start_paused = true)]
async fn a_client_opened_alone_follows_a_re_share_that_started_later() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    let want = fill(&old, 20).await;
    let new_cfg = three_of_five(&old_cfg);
    let alone = open(&new_cfg).await;
    let err = alone.follow_reshare(&old).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "nothing to follow yet: {err}");
    assert!(!alone.is_migrating_client());
    let target = open_migrating(&new_cfg, &old).await;
    let other =
        open(&Config { nodes: nodes(&["x", "y", "z"]), k: 2, prefix: "v9", mode: None }).await;
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let following = async {
        rx.wait_for(|p| *p == Some(ResharePhase::Copying)).await.unwrap();
        alone.refresh_notices().await.unwrap();
        assert_eq!(alone.reshare_phase(), Some(ResharePhase::Copying));
        assert!(alone.reshare_from().unwrap().contains("under prefix \"v1\""));
        let first = want.keys().next().unwrap();
        let err = alone.get(first).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig, "not following yet: {err}");
        let err = alone.follow_reshare(&other).unwrap_err();
        assert!(err.to_string().contains("not from"), "{err}");
        assert!(!alone.is_migrating_client());
        alone.follow_reshare(&old).unwrap();
        alone.follow_reshare(&old).unwrap();
        assert!(alone.is_migrating_client());
        check_all(&alone, &want, "read through while copying").await;
        alone.put(Record::new("during", "written by the follower")).await.unwrap();
    };
    let resharing = old.reshare(&target, &DEFAULTS, |p| {
        tx.send_replace(Some(p.phase));
    });
    let (report, ()) = tokio::join!(resharing, following);
    report.unwrap();
    let fresh = open(&new_cfg).await;
    check_all(&fresh, &want, "after the re-share").await;
    let during = fresh.get("during").await.unwrap().record.data;
    assert_eq!(&during[..], b"written by the follower");
}

/// The notices carry at most 1,024 bytes of the old store's description, whose last part
/// was its fingerprint: with long backend ids the fingerprint was cut off, and a store with
/// the same backend ids and prefix but other backends (a look-alike someone configured) was
/// followed as if it were the old store. The fingerprint is kept whatever the ids' length.
#[tokio::test(start_paused = true)]
async fn a_look_alike_old_store_is_not_followed_even_with_long_backend_ids() {
    let ids: Vec<String> =
        ["a", "b", "c", "d"].iter().map(|c| format!("{c}{}", "x".repeat(300))).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let old_cfg = Config { nodes: nodes(&ids), k: 2, prefix: "v1", mode: None };
    let old = open(&old_cfg).await;
    fill(&old, 5).await;
    let new_cfg = Config { nodes: nodes(&["p", "q", "s"]), k: 2, prefix: "v2", mode: None };
    let alone = open(&new_cfg).await;
    let target = open_migrating(&new_cfg, &old).await;
    let twin = open(&Config { nodes: nodes(&ids), k: 2, prefix: "v1", mode: None }).await;
    stop_once_copying(&old, &target).await;
    alone.refresh_notices().await.unwrap();
    assert!(alone.reshare_phase().is_some());
    let err = alone.follow_reshare(&twin).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert!(!alone.is_migrating_client());
    alone.follow_reshare(&old).unwrap();
    assert!(alone.is_migrating_client());
}

/// During a re-share a page is cut from both stores' whole listing. A walk of many pages
/// must not list everything again for each page (a reader could make a server being
/// re-shared into do that as fast as it asks): the listing serves the pages asked for
/// within a second.
#[tokio::test(start_paused = true)]
async fn a_walk_of_pages_during_a_re_share_lists_both_stores_about_once() {
    let old_cfg = two_of_three();
    let old = open(&old_cfg).await;
    fill(&old, 30).await;
    let new_cfg = three_of_five(&old_cfg);
    let new = open_migrating(&new_cfg, &old).await;
    stop_once_copying(&old, &new).await;
    let calls = || -> u64 {
        old_cfg.nodes.iter().chain(&new_cfg.nodes).map(|n| n.count.list_pages()).sum()
    };
    let before = calls();
    let first = new.list_page(None, 3).await.unwrap();
    let one_page = calls() - before;
    assert!(one_page > 0);
    let mut ids = first.ids;
    let mut cursor = first.next;
    let mut pages = 1;
    while let Some(c) = cursor {
        let page = new.list_page(Some(&c), 3).await.unwrap();
        ids.extend(page.ids);
        cursor = page.next;
        pages += 1;
    }
    assert!(pages >= 10, "{pages} pages");
    let walk = calls() - before;
    assert!(walk < 2 * one_page, "{pages} pages listed {walk} times, one page {one_page}");
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    sorted_ids.dedup();
    assert_eq!(sorted_ids.len(), ids.len(), "no id twice");
    // A second later the pages are listed afresh.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = calls();
    new.list_page(None, 3).await.unwrap();
    assert!(calls() > again, "listed again after a second");
}
