//! Attacks on re-sharing (`VaultDb::reshare`, docs/SECURITY.md "Re-sharing") and on the
//! rule that a store (or a re-share's new store) counts as empty while fewer than K backends
//! list record objects (docs/SECURITY.md "A lost keyring"). Each test is an attack that must
//! fail to do harm: a test that fails shows a hole.
//!
//! Runs on virtual time (the fence's wait passes at once).

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use vaultdb_core::{
    BackendErrorKind, CallPolicy, ErrorCode, MemoryBackend, Record, ResharePhase, StorageBackend,
    VaultDb,
};
use vaultdb_testkit::Ops;

/// A second re-share into a store that an earlier re-share filled (its migration state says
/// `done`) must be refused: that store holds records of its own. It must never remove the
/// second old store's objects without copying them.
#[tokio::test(start_paused = true)]
async fn a_re_share_into_a_store_filled_by_another_re_share_does_not_wipe_the_old_store() {
    let x_cfg = cfg(&["a", "b", "c"], 2, "x");
    let x = open(&x_cfg).await;
    x.put(Record::new("from-x", "x's record")).await.unwrap();
    let y_cfg = cfg(&["d", "e", "f"], 2, "y");
    let y = open_migrating(&y_cfg, &x).await;
    x.reshare(&y, &DEFAULTS, |_| {}).await.unwrap();

    // Another store, W, with records of its own, re-shared (by mistake) into Y.
    let w_cfg = cfg(&["p", "q", "r"], 2, "w");
    let w = open(&w_cfg).await;
    for i in 0..5 {
        w.put(Record::new(format!("w-{i}"), "w's record")).await.unwrap();
    }
    let result = w.reshare(&y, &DEFAULTS, |_| {}).await;
    let w_objects: usize = w_cfg
        .nodes
        .iter()
        .map(|n| n.mem.keys().iter().filter(|k| k.starts_with("w/r/")).count())
        .sum();
    let y_fresh = open(&y_cfg).await;
    let copied = data(&y_fresh, "w-0").await;
    assert!(
        result.is_err() || copied.is_ok(),
        "W re-shared into a store that was not empty: {result:?}; W's record objects left: \
         {w_objects}; w-0 in Y: {copied:?}"
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    let w2 = open(&w_cfg).await;
    assert_eq!(data(&w2, "w-0").await.unwrap(), b"w's record");
    assert_eq!(data(&y_fresh, "from-x").await.unwrap(), b"x's record");
}

/// A record acknowledged at write quorum W = K (one backend was down when it was written)
/// while one of its K holders is down during the re-share: the copy cannot list it, and must
/// not finish (nor remove the old store) as if it did not exist. It is not readable during
/// that outage, but it is not lost: it must be readable once the backend is back.
#[tokio::test(start_paused = true)]
async fn a_record_on_k_backends_one_of_them_down_survives_the_re_share() {
    let old_cfg = cfg(&["a", "b", "c"], 2, "v1");
    let old = builder(&old_cfg).write_quorum(2).open().await.unwrap();
    old.put(Record::new("everywhere", "on three backends")).await.unwrap();
    old_cfg.nodes[2].fail.set_down(true);
    old.put(Record::new("on-two", "acknowledged by a and b")).await.unwrap();
    old.flush().await;
    old_cfg.nodes[2].fail.heal();
    // Backend a goes down for the re-share.
    old_cfg.nodes[0].fail.set_down(true);
    let new_cfg = cfg(&["d", "e", "f"], 2, "v2");
    let new = open_migrating(&new_cfg, &old).await;
    let first = old.reshare(&new, &DEFAULTS, |_| {}).await;
    // Backend a is back; the operator runs the re-share again (as its report asks).
    old_cfg.nodes[0].fail.heal();
    let second = old.reshare(&new, &DEFAULTS, |_| {}).await;
    let fresh = open(&new_cfg).await;
    assert_eq!(data(&fresh, "everywhere").await.unwrap(), b"on three backends");
    let left: Vec<String> =
        old_cfg.nodes[0].mem.keys().into_iter().filter(|k| k.starts_with("v1/r/")).collect();
    assert_eq!(
        data(&fresh, "on-two").await,
        Ok(b"acknowledged by a and b".to_vec()),
        "an acknowledged record is gone: first run {first:?}, second run {second:?}, \
         record objects left on a: {left:?}"
    );
}

/// The process that runs the re-share has the fence check off (`fence_check = None`), the
/// other clients of the old store have it on (the default). The re-share must still wait
/// out their lease (or refuse): a write they make within it is acknowledged and must be
/// copied.
#[tokio::test(start_paused = true)]
async fn a_re_sharing_process_with_the_fence_check_off_still_waits_for_old_clients() {
    let old_cfg = cfg(&["a", "b", "c"], 2, "v1");
    let resharer = builder(&old_cfg).fence_check(None).open().await.unwrap();
    let other = open(&old_cfg).await;
    other.put(Record::new("early", "1")).await.unwrap();
    let new_cfg = cfg(&["d", "e", "f"], 2, "v2");
    let new = open_migrating(&new_cfg, &resharer).await;
    let late_write = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        other.put(Record::new("late", "within the lease")).await
    };
    let (report, late) = tokio::join!(resharer.reshare(&new, &DEFAULTS, |_| {}), late_write);
    match (report, late) {
        // Refusing to run without a lease to wait out is fine too.
        (Err(e), _) => assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}"),
        // The write was refused (told to reload): nothing acknowledged is lost.
        (Ok(_), Err(e)) => assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}"),
        (Ok(report), Ok(_)) => {
            let fresh = open(&new_cfg).await;
            assert_eq!(
                data(&fresh, "late").await,
                Ok(b"within the lease".to_vec()),
                "an acknowledged write of an old client is lost (the re-share waited {:?})",
                report.waited
            );
        }
    }
}

/// Clients of the new store that have the fence check off must still obey the migration
/// state (docs/SECURITY.md: writes wait for the floor; a client without `migrating_from`
/// refuses every operation until the re-share is done). With the check off they ignore it:
/// a migrating client writes before the floor exists, a plain client answers "not found"
/// for a record not copied yet.
#[tokio::test(start_paused = true)]
async fn clients_of_the_new_store_with_the_fence_check_off_obey_the_migration_state() {
    let old_cfg = cfg(&["a", "b", "c"], 2, "v1");
    let old = open(&old_cfg).await;
    for i in 0..20 {
        old.put(Record::new(format!("r-{i}"), "x")).await.unwrap();
    }
    let new_cfg = cfg(&["d", "e", "f"], 2, "v2");
    // Refusing such a migrating client at open is fine too.
    match builder(&new_cfg).fence_check(None).migrating_from(old.clone()).open().await {
        Err(e) => assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}"),
        Ok(migrating) => {
            let early = migrating.put(Record::new("r-0", "before any floor")).await;
            assert_eq!(
                early.as_ref().map_err(|e| e.code()).err(),
                Some(ErrorCode::InvalidConfig),
                "a write before the re-share recorded its floor: {early:?}"
            );
        }
    }
    let migrating = open_migrating(&new_cfg, &old).await;

    // Fence and record the floor, and stop once the copy has begun.
    stop_once_copying(&old, &migrating).await;
    let plain = builder(&new_cfg).fence_check(None).open().await.unwrap();
    let mut answers = Vec::new();
    for i in 0..20 {
        answers.push(data(&plain, &format!("r-{i}")).await.err());
    }
    assert!(
        answers.iter().all(|a| *a == Some(ErrorCode::InvalidConfig)),
        "a client without migrating_from answered during the copy: {answers:?}"
    );
}

/// Two re-shares of the same store into the same new store at once (an operator retrying
/// while the first still runs): every record ends up readable, the state says done.
#[tokio::test(start_paused = true)]
async fn two_concurrent_runs_into_the_same_store_lose_nothing() {
    let old_cfg = cfg(&["a", "b", "c"], 2, "v1");
    let old = open(&old_cfg).await;
    for i in 0..30 {
        old.put(Record::new(format!("r-{i}"), format!("value {i}"))).await.unwrap();
    }
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    old.put(Record::new("big", big.clone())).await.unwrap();
    let new_cfg = cfg(&["d", "e", "f"], 2, "v2");
    let new = open_migrating(&new_cfg, &old).await;
    let old2 = open(&old_cfg).await;
    let new2 = open_migrating(&new_cfg, &old2).await;
    let (r1, r2) =
        tokio::join!(old.reshare(&new, &DEFAULTS, |_| {}), old2.reshare(&new2, &DEFAULTS, |_| {}));
    // A run may fail; then running again finishes.
    if r1.is_err() || r2.is_err() {
        let old3 = open(&old_cfg).await;
        let new3 = open_migrating(&new_cfg, &old3).await;
        old3.reshare(&new3, &DEFAULTS, |_| {}).await.unwrap();
    }
    let fresh = open(&new_cfg).await;
    assert_eq!(fresh.reshare_phase(), Some(ResharePhase::Done), "{r1:?} {r2:?}");
    for i in 0..30 {
        assert_eq!(
            data(&fresh, &format!("r-{i}")).await,
            Ok(format!("value {i}").into_bytes()),
            "r-{i}: {r1:?} {r2:?}"
        );
    }
    assert_eq!(data(&fresh, "big").await, Ok(big));
}

/// A store that lost its keyring while K backends hold its records (here written at W = K
/// while c was down, so a and b hold them) must not get a new keyring because one of the
/// holders fails to list: a failed listing is not an empty one (docs/SECURITY.md "A lost
/// keyring": no new keyring while K backends hold record objects; "a new store is created
/// only when every backend answered").
#[tokio::test(start_paused = true)]
async fn a_failed_listing_does_not_get_a_store_with_a_lost_keyring_a_new_one() {
    let c = cfg(&["a", "b", "c"], 2, "v1");
    let db = builder(&c).write_quorum(2).open().await.unwrap();
    c.nodes[2].fail.set_down(true);
    for i in 0..5 {
        db.put(Record::new(format!("r-{i}"), "precious")).await.unwrap();
    }
    db.flush().await;
    c.nodes[2].fail.heal();
    drop(db);
    // The keyring is lost (every slot deleted); the records are on a and b.
    for n in &c.nodes {
        n.mem.raw_delete("v1/keyring");
    }
    // b answers GETs but its listings fail.
    c.nodes[1].fail.fail(Ops::LIST, BackendErrorKind::Transient);
    let opened = builder(&c).open().await;
    let made: Vec<bool> = c.nodes.iter().map(|n| n.mem.raw_get("v1/keyring").is_some()).collect();
    assert!(
        opened.is_err(),
        "a new keyring was created over the records of a store that lost its keyring \
         (keyring objects now on a, b, c: {made:?})"
    );
    assert_eq!(opened.unwrap_err().code(), ErrorCode::InsufficientShares);
    assert_eq!(made, [false, false, false]);
}

/// The same rule under the threat model (up to K-1 hostile backends): in a 3-of-4 store
/// whose keyring is lost, two hostile backends that list nothing (they can't be told from
/// empty ones) leave two honest holders, fewer than K: the rule then creates a new keyring
/// over the records. (Before the rule counted K holders, one honest holder refused it.)
#[tokio::test(start_paused = true)]
async fn k_minus_one_backends_hiding_their_records_do_not_get_a_lost_keyring_replaced() {
    let c = cfg(&["a", "b", "c", "d"], 3, "v1");
    let db = open(&c).await;
    for i in 0..5 {
        db.put(Record::new(format!("r-{i}"), "precious")).await.unwrap();
    }
    db.flush().await;
    drop(db);
    for n in &c.nodes {
        n.mem.raw_delete("v1/keyring");
    }
    // Backends c and d hide their record objects from listings (modelled by moving them
    // aside: a listing shows nothing, as a lying backend's would).
    let hidden: Vec<Vec<(String, bytes::Bytes)>> = c.nodes[2..]
        .iter()
        .map(|n| {
            n.mem
                .snapshot()
                .into_iter()
                .filter(|(k, _)| k.starts_with("v1/"))
                .inspect(|(k, _)| {
                    n.mem.raw_delete(k);
                })
                .collect()
        })
        .collect();
    assert!(hidden.iter().all(|h| !h.is_empty()));
    let opened = builder(&c).open().await;
    let made = c.nodes.iter().filter(|n| n.mem.raw_get("v1/keyring").is_some()).count();
    assert!(
        opened.is_err(),
        "two of four backends (K-1) hiding their objects got a new keyring made over the \
         records that the other two hold ({made} keyring objects written)"
    );
}

/// Lists nothing while `hide` is on (a hostile backend hiding what it holds: an empty
/// listing cannot be told from an honest one); everything else passes through.
#[derive(Debug)]
struct Hiding<B> {
    inner: B,
    hide: Arc<std::sync::atomic::AtomicBool>,
}

vaultdb_testkit::forward_backend! {
    impl<B: StorageBackend> StorageBackend for Hiding<B> {
        forward id, name, put, get, delete to self.inner;

        async fn list_page(
            &self,
            prefix: &vaultdb_core::KeyPrefix,
            from: vaultdb_core::ListFrom,
        ) -> Result<vaultdb_core::ListPage, vaultdb_core::BackendError> {
            if self.hide.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(vaultdb_core::ListPage::default());
            }
            self.inner.list_page(prefix, from).await
        }
    }
}

/// Under the threat model (K-1 = 1 hostile backend of 3), with every record on all three
/// backends (W = N): backend a hides its listings, backend c is honest but slow to list
/// (3 s, well within its call timeout). The copy lists the old store from the first K
/// backends (a and b) plus stragglers for a bounded time, rebuilds no id for the records
/// (one id share each), copies nothing, says `done` and removes every record. A read in that
/// state waits for c, or fails loudly; the re-share destroys the data.
#[tokio::test(start_paused = true)]
async fn a_hiding_backend_and_a_slow_one_do_not_get_records_removed_uncopied() {
    let hide = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mk = |id: &str| MemoryBackend::new(id, format!("backend {id}"));
    let mem_b = Arc::new(mk("b"));
    let mem_c = Arc::new(mk("c"));
    let slow_c = vaultdb_testkit::Slow::new(mem_c.clone(), Duration::ZERO);
    let slow = slow_c.handle();
    let backends: Vec<Arc<dyn StorageBackend>> = vec![
        Arc::new(Hiding { inner: mk("a"), hide: hide.clone() }),
        mem_b.clone(),
        Arc::new(slow_c),
    ];
    let open_old = || {
        let mut b = VaultDb::builder().threshold(2).prefix("v1").call_policy(CallPolicy {
            timeout: Duration::from_secs(10),
            max_attempts: 1,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        });
        for backend in &backends {
            b = b.backend_arc(backend.clone());
        }
        b.open()
    };
    let old = open_old().await.unwrap();
    for i in 0..5 {
        old.put(Record::new(format!("r-{i}"), "on all three")).await.unwrap();
    }
    old.flush().await;
    hide.store(true, std::sync::atomic::Ordering::SeqCst);
    slow.set_ops(Ops::LIST);
    slow.set_delay(Duration::from_secs(3));
    let new_cfg = cfg(&["d", "e", "f"], 2, "v2");
    let new = open_migrating(&new_cfg, &old).await;
    let report = old.reshare(&new, &DEFAULTS, |_| {}).await;
    let fresh = open(&new_cfg).await;
    let in_new = data(&fresh, "r-0").await;
    let left_on_b = mem_b.keys().iter().filter(|k| k.starts_with("v1/r/")).count();
    assert!(
        in_new.is_ok() || report.is_err() && left_on_b > 0,
        "records neither copied nor kept: {report:?}; r-0 in the new store: {in_new:?}; \
         record objects left on b: {left_on_b}"
    );
}

/// A store still being filled by a re-share (A into B, interrupted during the copy) is
/// itself re-shared (B into C) before that finishes, then the first re-share is resumed:
/// every record of A must end up in C (or the second re-share must be refused until the
/// first is done).
#[tokio::test(start_paused = true)]
async fn re_sharing_a_store_still_being_filled_loses_nothing() {
    let a_cfg = cfg(&["a1", "a2", "a3"], 2, "a");
    let a = open(&a_cfg).await;
    for i in 0..20 {
        a.put(Record::new(format!("r-{i}"), format!("value {i}"))).await.unwrap();
    }
    let b_cfg = cfg(&["b1", "b2", "b3"], 2, "b");
    let b = open_migrating(&b_cfg, &a).await;
    // A into B: fenced, floor recorded, the copy begun, then the process stops.
    stop_once_copying(&a, &b).await;
    // B into C, while A into B is unfinished.
    let c_cfg = cfg(&["c1", "c2", "c3"], 2, "c");
    let c = open_migrating(&c_cfg, &b).await;
    let second = b.reshare(&c, &DEFAULTS, |_| {}).await;
    // The first re-share is resumed.
    let a2 = open(&a_cfg).await;
    let b2 = open_migrating(&b_cfg, &a2).await;
    let first = a2.reshare(&b2, &DEFAULTS, |_| {}).await;
    if second.is_err() {
        // Refused while A into B ran: now it may go.
        let b3 = open(&b_cfg).await;
        let c2 = open_migrating(&c_cfg, &b3).await;
        b3.reshare(&c2, &DEFAULTS, |_| {}).await.unwrap();
    }
    let fresh = open(&c_cfg).await;
    let mut missing = Vec::new();
    for i in 0..20 {
        if data(&fresh, &format!("r-{i}")).await != Ok(format!("value {i}").into_bytes()) {
            missing.push(i);
        }
    }
    assert!(
        missing.is_empty(),
        "records of A not in C: {missing:?}; B into C: {second:?}; A into B resumed: {first:?}"
    );
}
