// This file is long because it holds one test (at least) per client invariant, each with its own
// fault-injecting setup around shared helpers.
//! The VaultDb client against memory backends wrapped in fault injectors: the invariants of
//! DESIGN.md section 5, one test (at least) each.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vaultdb_core::envelope;
use vaultdb_core::padding::Padding;
use vaultdb_core::{
    CallPolicy, ErrorCode, Health, MemoryBackend, OutcomeStatus, Record, Settings, StorageBackend,
    VaultDb, VaultDbBuilder, VaultError,
};
use vaultdb_testkit::{
    CorruptingHandle, Counting, CountingHandle, Failing, FailingHandle, MemoryStack, Randomized,
    Slow, StaleHandle, StaleMode,
};

/// One backend and the handles that steer its faults. Stack (outside in):
/// Failing -> Stale -> Corrupting -> Counting -> MemoryBackend.
struct Node {
    mem: Arc<MemoryBackend>,
    fail: FailingHandle,
    stale: StaleHandle,
    corrupt: CorruptingHandle,
    count: CountingHandle,
    backend: Arc<dyn StorageBackend>,
}

fn node(i: usize) -> Node {
    let stack = MemoryStack::new(format!("b{i}"), format!("backend {i}"));
    let failing = Failing::new(stack.backend);
    let fail = failing.handle();
    let MemoryStack { mem, count, corrupt, stale, .. } = stack;
    Node { mem, fail, stale, corrupt, count, backend: Arc::new(failing) }
}

fn fast_policy() -> CallPolicy {
    CallPolicy {
        timeout: Duration::from_secs(5),
        max_attempts: 2,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

fn builder(nodes: &[Node], k: usize) -> VaultDbBuilder {
    let mut b = VaultDb::builder()
        .threshold(k)
        .call_policy(fast_policy())
        .read_repair(false)
        .hedge_after(None)
        .grace_period(Duration::ZERO);
    for n in nodes {
        b = b.backend_arc(n.backend.clone());
    }
    b
}

async fn cluster(n: usize, k: usize, w: usize) -> (Vec<Node>, VaultDb) {
    let nodes: Vec<Node> = (0..n).map(node).collect();
    let db = builder(&nodes, k).write_quorum(w).open().await.expect("open");
    (nodes, db)
}

fn rec(id: &str, data: &str) -> Record {
    Record::new(id, data.as_bytes().to_vec())
}

async fn data_of(db: &VaultDb, id: &str) -> Result<String, VaultError> {
    db.get(id).await.map(|g| String::from_utf8(g.record.data).unwrap())
}

// ---------------------------------------------------------------------------------------
// Configuration and the keyring.

#[tokio::test]
async fn bad_configuration_is_invalid_config() {
    let nodes: Vec<Node> = (0..3).map(node).collect();
    for (k, w) in [(1, 3), (4, 3), (0, 3), (2, 1), (2, 4)] {
        let e = builder(&nodes, k).write_quorum(w).open().await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig, "k={k} w={w}: {e}");
    }
    let one = VaultDb::builder().threshold(2).backend(MemoryBackend::new("a", "a"));
    assert_eq!(one.open().await.unwrap_err().code(), ErrorCode::InvalidConfig);
    let dup = VaultDb::builder()
        .threshold(2)
        .backend(MemoryBackend::new("a", "a"))
        .backend(MemoryBackend::new("a", "b"));
    assert_eq!(dup.open().await.unwrap_err().code(), ErrorCode::InvalidConfig);
    assert_eq!(
        VaultDb::builder()
            .backend(MemoryBackend::new("a", "a"))
            .backend(MemoryBackend::new("b", "b"))
            .open()
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidConfig,
        "no threshold"
    );
    // Nothing was written by the failed opens.
    assert!(nodes.iter().all(|n| n.mem.object_count() == 0));
}

/// `Settings::validate` is what `open` checks, without a backend: configuration files are
/// checked with it before anything is built.
#[test]
fn settings_validate_without_opening() {
    let ids = ["a", "b", "c"];
    let ok = Settings::default();
    assert_eq!(ok.validate(2, &ids).unwrap().to_string(), "2-of-3");
    let with = |f: fn(&mut Settings)| {
        let mut s = Settings::default();
        f(&mut s);
        s
    };
    let cases: [(Settings, usize, &[&str], &str); 11] = [
        (ok.clone(), 2, &["a"], "at least 2 backends"),
        (ok.clone(), 1, &ids, "threshold must be at least 2"),
        (ok.clone(), 4, &ids, "threshold 4 is larger than the number of backends (3)"),
        (with(|s| s.write_quorum = Some(1)), 2, &ids, "write_quorum 1"),
        (with(|s| s.write_quorum = Some(4)), 2, &ids, "write_quorum 4"),
        (with(|s| s.retain_versions = 0), 2, &ids, "retain_versions"),
        (ok.clone(), 2, &["a", " ", "c"], "backend #2 has an empty id"),
        (ok.clone(), 2, &["a", "b", "a"], "backend id \"a\" is used twice"),
        (with(|s| s.segment_size = 1000), 2, &ids, "segment_size"),
        (with(|s| s.max_inflight_bytes = 1000), 2, &ids, "in-flight budget"),
        (with(|s| s.prefix = "a//b".into()), 2, &ids, "prefix"),
    ];
    for (settings, k, ids, want) in cases {
        let e = settings.validate(k, ids).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig, "{want}");
        assert!(e.to_string().contains(want), "{e} lacks {want}");
    }
    let many: Vec<String> = (0..256).map(|i| format!("b{i}")).collect();
    assert!(ok.validate(2, &many).unwrap_err().to_string().contains("at most 255"));
}

#[tokio::test]
async fn given_settings_are_the_base_that_setters_change() {
    let nodes: Vec<Node> = (0..3).map(node).collect();
    let mut settings = Settings::default();
    settings.prefix = "tenant-7".into();
    settings.retain_versions = 3;
    settings.hedge_after = None;
    settings.write_quorum = Some(3);
    // Setters after the base change single settings and keep the others.
    let mut b = VaultDb::builder_with(settings)
        .threshold(2)
        .write_quorum(2)
        .segment_size(4096)
        .call_policy(fast_policy());
    for n in &nodes {
        b = b.backend_arc(n.backend.clone());
    }
    let db = b.open().await.unwrap();
    let s = db.settings();
    assert_eq!(s.prefix, "tenant-7");
    assert_eq!(s.retain_versions, 3);
    assert_eq!(s.hedge_after, None);
    assert_eq!(s.write_quorum, Some(2));
    assert_eq!(s.segment_size, 4096);
    assert_eq!(s.call_policy, fast_policy());
    assert_eq!(db.write_quorum(), 2);
    db.put(rec("a", "1")).await.unwrap();
    for n in &nodes {
        assert!(n.mem.keys().iter().all(|k| k.starts_with("tenant-7/")), "{:?}", n.mem.keys());
    }
}

#[tokio::test]
async fn reopening_with_another_configuration_is_invalid_config() {
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(rec("a", "1")).await.unwrap();
    // Same configuration: fine, same naming key.
    let again = builder(&nodes, 2).open().await.unwrap();
    assert_eq!(again.name_tag("a"), db.name_tag("a"));
    assert_eq!(data_of(&again, "a").await.unwrap(), "1");
    // Another threshold.
    let e = builder(&nodes, 3).open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
    // Another order.
    let mut b = VaultDb::builder().threshold(2).call_policy(fast_policy());
    for i in [1, 0, 2] {
        b = b.backend_arc(nodes[i].backend.clone());
    }
    let e = b.open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
    // Another backend set (a fourth backend).
    let extra = node(3);
    let mut b = builder(&nodes, 2);
    b = b.backend_arc(extra.backend.clone());
    let e = b.open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
}

#[tokio::test]
async fn concurrent_opens_of_an_empty_store_agree_on_one_keyring() {
    for round in 0..10 {
        let nodes: Vec<Node> = (0..3).map(node).collect();
        let opens: Vec<_> = (0..4).map(|_| builder(&nodes, 2).open()).collect();
        let dbs: Vec<VaultDb> =
            futures::future::join_all(opens).await.into_iter().map(|r| r.unwrap()).collect();
        let tag = dbs[0].name_tag("x");
        assert!(dbs.iter().all(|d| d.name_tag("x") == tag), "round {round}: two keyrings");
        // Exactly one keyring object per backend.
        for n in &nodes {
            assert_eq!(n.mem.keys(), vec!["vaultdb/keyring".to_string()]);
        }
        dbs[1].put(rec("x", "v")).await.unwrap();
        assert_eq!(data_of(&dbs[3], "x").await.unwrap(), "v");
    }
}

#[tokio::test]
async fn open_creates_nothing_while_a_backend_is_unreachable() {
    let nodes: Vec<Node> = (0..3).map(node).collect();
    nodes[2].fail.set_down(true);
    let e = builder(&nodes, 2).open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InsufficientShares, "{e}");
    assert!(nodes.iter().all(|n| n.mem.object_count() == 0));
    // Once it exists, the keyring opens with one backend down.
    nodes[2].fail.set_down(false);
    builder(&nodes, 2).open().await.unwrap();
    nodes[2].fail.set_down(true);
    builder(&nodes, 2).open().await.unwrap();
}

/// One backend that lists record objects on an otherwise empty store (planted, replayed from
/// another store, or a stale copy) must not stop the store from being created: fewer than K
/// holders cannot hold a readable record, so a new keyring orphans nothing. K holders still
/// stop it (a lost keyring, docs/SECURITY.md "A lost keyring").
#[tokio::test]
async fn record_objects_on_fewer_than_k_backends_do_not_block_a_new_store() {
    let donor: Vec<Node> = (0..3).map(node).collect();
    let db = builder(&donor, 2).open().await.unwrap();
    db.put(rec("planted", "v")).await.unwrap();
    db.flush().await;
    let records = |n: &Node| -> Vec<(String, Bytes)> {
        n.mem
            .keys()
            .into_iter()
            .filter(|k| k != "vaultdb/keyring")
            .map(|k| {
                let v = n.mem.raw_get(&k).unwrap();
                (k, v)
            })
            .collect()
    };
    let planted = records(&donor[0]);
    assert!(!planted.is_empty());

    // One holder of three: the store opens, and works.
    let nodes: Vec<Node> = (0..3).map(node).collect();
    for (k, v) in &planted {
        nodes[0].mem.raw_put(k.clone(), v.clone());
    }
    let db = builder(&nodes, 2).open().await.expect("one lying backend cannot block creation");
    db.put(rec("x", "v")).await.unwrap();
    assert_eq!(data_of(&db, "x").await.unwrap(), "v");

    // K holders of three: a lost keyring, refused.
    let nodes: Vec<Node> = (0..3).map(node).collect();
    for (i, n) in nodes.iter().enumerate().take(2) {
        for (k, v) in records(&donor[i]) {
            n.mem.raw_put(k, v);
        }
    }
    let e = builder(&nodes, 2).open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InsufficientShares, "{e}");
    assert!(e.to_string().contains("holds data"), "{e}");
    assert!(nodes.iter().all(|n| n.mem.raw_get("vaultdb/keyring").is_none()), "no keyring made");
}

// ---------------------------------------------------------------------------------------
// 1. Availability.

#[tokio::test]
async fn any_one_backend_down_put_and_get_succeed_two_down_get_fails() {
    for down in 0..3 {
        let (nodes, db) = cluster(3, 2, 2).await;
        db.put(rec("before", "old")).await.unwrap();
        nodes[down].fail.set_down(true);
        let put = db.put(rec("during", "new")).await.unwrap();
        assert_eq!(put.acks, 2);
        assert!(put.degraded());
        assert_eq!(data_of(&db, "before").await.unwrap(), "old");
        assert_eq!(data_of(&db, "during").await.unwrap(), "new");
        let g = db.get("during").await.unwrap();
        assert!(g.degraded());
        let other = (down + 1) % 3;
        nodes[other].fail.set_down(true);
        for id in ["before", "during"] {
            let e = db.get(id).await.unwrap_err();
            assert_eq!(e.code(), ErrorCode::InsufficientShares, "down {down}: {e}");
            assert!(e.to_string().contains(&format!("b{down}")), "names the backend: {e}");
        }
        // With W = 3 a put with one backend down fails, and names it.
        nodes[other].fail.set_down(false);
        let strict = builder(&nodes, 2).write_quorum(3).open().await.unwrap();
        let e = strict.put(rec("strict", "x")).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::BackendError);
        assert!(
            e.outcomes()
                .iter()
                .any(|o| o.backend == format!("b{down}") && o.status != OutcomeStatus::Ok)
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. Corruption.

/// Rewrites the share bytes of every record object in `mem` and fixes up the CRC, so only
/// the HMAC can catch it (an attacker who knows the format).
fn tamper_with_valid_crc(mem: &MemoryBackend) {
    for (key, bytes) in mem.snapshot() {
        if !key.contains("/r/") {
            continue;
        }
        let mut b = bytes.to_vec();
        b[envelope::HEADER_LEN + 5] ^= 0x40;
        envelope::seal(&mut b);
        mem.raw_put(key, b);
    }
}

#[tokio::test]
async fn a_tampered_share_with_a_valid_crc_is_caught_by_the_mac_and_named() {
    for bad in 0..3 {
        // b2 answers 20 ms late, so reads ask b0 and b1 first whatever a loaded machine does
        // to the measured latencies of three memory backends.
        let mut nodes: Vec<Node> = (0..3).map(node).collect();
        nodes[2].backend = Arc::new(Slow::new(nodes[2].backend.clone(), Duration::from_millis(20)));
        let db = builder(&nodes, 2).write_quorum(3).open().await.unwrap();
        db.put(rec("r", "the right data")).await.unwrap();
        tamper_with_valid_crc(&nodes[bad].mem);
        // The bad backend answers first (b0 or b1), or its share is checked against the
        // polynomial rebuilt from the other two.
        let g = db.get("r").await.unwrap();
        assert_eq!(g.record.data, b"the right data");
        if bad < 2 {
            assert_eq!(g.bad_backends, vec![format!("b{bad}")]);
        }
        let report = db.repair("r").await.unwrap();
        assert_eq!(report.restored, vec![format!("b{bad}")], "repair names and fixes it");
        // After repair the bad backend plus any one other rebuild the record.
        for other in 0..3 {
            if other == bad {
                continue;
            }
            let third = 3 - bad - other;
            nodes[third].fail.set_down(true);
            assert_eq!(data_of(&db, "r").await.unwrap(), "the right data");
            nodes[third].fail.set_down(false);
        }
    }
}

/// A large record is rebuilt chunk by chunk while a second thread checks its MAC: a flipped
/// byte in the key, the tag, the length field, either side of a chunk boundary, the last
/// payload byte or the padding, on two of three backends (so every pair holds one), fails
/// the read with HMAC_FAILED; one bad share is read around, and named where it is read.
#[tokio::test]
async fn a_large_records_flipped_byte_anywhere_fails_the_mac() {
    const LEN: usize = 300_000;
    let data: Vec<u8> = (0..LEN).map(|i| (i * 31 % 251) as u8).collect();
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(Record::new("r", data.clone())).await.unwrap();
    let pristine: Vec<_> = nodes.iter().map(|n| n.mem.snapshot()).collect();
    let share_len = {
        let (_, b) = pristine[0].iter().find(|(k, _)| k.contains("/r/")).unwrap();
        b.len() - envelope::HEADER_LEN - envelope::TRAILER_LEN
    };
    // The secret's header is 72 bytes (key, tag, length); then the payload (the record's
    // encoding, a few bytes of fields before the data), then zero padding.
    let payload_end = 72 + LEN + 10;
    assert!(share_len > payload_end + 100, "Padmé pads 300 kB: {share_len}");
    let chunk = 64 << 10;
    for at in
        [0, 31, 32, 63, 64, 71, 72, chunk - 1, chunk, 2 * chunk + 5, payload_end - 8, share_len - 1]
    {
        for (bad, n) in nodes.iter().enumerate() {
            for (key, bytes) in &pristine[bad] {
                let mut b = bytes.to_vec();
                if bad < 2 && key.contains("/r/") {
                    b[envelope::HEADER_LEN + at] ^= 0x08;
                    envelope::seal(&mut b);
                }
                n.mem.raw_put(key.clone(), b);
            }
        }
        let e = db.get("r").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::HmacFailed, "byte {at}: {e}");
        // Only b1 bad: the read goes around it.
        for (key, bytes) in &pristine[0] {
            nodes[0].mem.raw_put(key.clone(), bytes.to_vec());
        }
        let g = db.get("r").await.unwrap();
        assert!(g.record.data == data, "byte {at}");
        assert!(g.bad_backends.is_empty() || g.bad_backends == ["b1"], "{:?}", g.bad_backends);
    }
}

/// A large record's CRCs are checked beside its rebuild, not on arrival: an envelope whose
/// CRC fails, whether a share byte rotted (the MAC would fail too) or only its trailer (the
/// MAC would pass), is still never used, and its backend is named with the checksum reason.
#[tokio::test]
async fn a_large_records_bad_checksum_is_named_and_never_used() {
    const LEN: usize = 300_000;
    let data: Vec<u8> = (0..LEN).map(|i| (i * 17 % 251) as u8).collect();
    let mut nodes: Vec<Node> = (0..3).map(node).collect();
    // b2 answers 20 ms late: reads take b0 and b1 first.
    nodes[2].backend = Arc::new(Slow::new(nodes[2].backend.clone(), Duration::from_millis(20)));
    let db = builder(&nodes, 2).write_quorum(3).open().await.unwrap();
    db.put(Record::new("r", data.clone())).await.unwrap();
    let pristine = nodes[0].mem.snapshot();
    for (what, from_end) in [("a share byte", 100usize), ("the CRC trailer", 1)] {
        for (key, bytes) in &pristine {
            let mut b = bytes.to_vec();
            if key.contains("/r/") {
                let at = b.len() - from_end;
                b[at] ^= 0x10;
            }
            nodes[0].mem.raw_put(key.clone(), b);
        }
        let g = db.get("r").await.unwrap();
        assert!(g.record.data == data, "{what}");
        assert_eq!(g.bad_backends, ["b0"], "{what}");
        let b0 = g.outcomes.iter().find(|o| o.backend == "b0").unwrap();
        assert!(
            matches!(&b0.status, OutcomeStatus::Corrupt { reason } if reason.contains("checksum")),
            "{what}: {:?}",
            b0.status
        );
    }
}

/// A large envelope that fails its CRC (checked beside the rebuild) is replaced as one that
/// failed on arrival is: one more backend is asked, not every backend left.
#[tokio::test]
async fn a_large_envelope_failing_its_crc_costs_one_more_fetch() {
    let data: Vec<u8> = (0..300_000).map(|i| (i * 7 % 251) as u8).collect();
    let mut nodes: Vec<Node> = (0..4).map(node).collect();
    // b2 and b3 answer late (b3 later): reads take b0 and b1 first, then b2.
    for (i, ms) in [(2, 20), (3, 40)] {
        nodes[i].backend = Arc::new(Slow::new(nodes[i].backend.clone(), Duration::from_millis(ms)));
    }
    let db = builder(&nodes, 2).write_quorum(4).open().await.unwrap();
    db.put(Record::new("r", data.clone())).await.unwrap();
    db.flush().await;
    for (key, bytes) in nodes[0].mem.snapshot() {
        if key.contains("/r/") {
            let mut b = bytes.to_vec();
            let last = b.len() - 1;
            b[last] ^= 1;
            nodes[0].mem.raw_put(key, b);
        }
    }
    nodes.iter().for_each(|n| n.count.reset());
    let g = db.get("r").await.unwrap();
    assert!(g.record.data == data);
    assert_eq!(g.bad_backends, ["b0"]);
    let gets: Vec<u64> = nodes.iter().map(|n| n.count.gets()).collect();
    assert!(gets[2] >= 1 && gets[3] == 0, "b2 in b0's place, b3 never asked: {gets:?}");
}

#[tokio::test]
async fn exactly_k_reachable_with_one_corrupt_is_hmac_failed_never_wrong_data() {
    for (bad, down) in [(0, 2), (1, 0), (2, 1)] {
        let (nodes, db) = cluster(3, 2, 3).await;
        db.put(rec("r", "the right data")).await.unwrap();
        nodes[down].fail.set_down(true);
        tamper_with_valid_crc(&nodes[bad].mem);
        let e = db.get("r").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::HmacFailed, "{e}");
    }
    // Same with corruption the CRC catches: still an integrity failure naming the backend.
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(rec("r", "the right data")).await.unwrap();
    nodes[2].fail.set_down(true);
    nodes[0].corrupt.set_enabled(true);
    let e = db.get("r").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HmacFailed, "{e}");
    assert!(matches!(&e, VaultError::HmacFailed { bad_backends, .. } if bad_backends == &["b0"]));
    // The error carries what each backend asked did.
    let outcomes = e.outcomes();
    assert!(
        outcomes
            .iter()
            .any(|o| o.backend == "b0" && matches!(o.status, OutcomeStatus::Corrupt { .. })),
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| o.backend == "b1" && o.status == OutcomeStatus::Ok),
        "{outcomes:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Stale and misplaced shares.

#[tokio::test]
async fn another_versions_or_another_records_share_is_detected() {
    for mode in [StaleMode::Older, StaleMode::Swap] {
        for bad in 0..3 {
            let (nodes, db) = cluster(3, 2, 3).await;
            db.put(rec("other", "other record")).await.unwrap();
            db.put(rec("r", "version one")).await.unwrap();
            db.put(rec("r", "version two")).await.unwrap();
            nodes[bad].stale.set_mode(mode);
            let g = db.get("r").await.unwrap();
            assert_eq!(g.record.data, b"version two", "{mode:?} bad={bad}");
            if g.outcomes[bad].status != OutcomeStatus::Skipped {
                assert_eq!(g.bad_backends, vec![format!("b{bad}")]);
            }
            // Repair asks every backend: it finds the bad share and rewrites it.
            let report = db.repair("r").await.unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            assert_eq!(report.restored, vec![format!("b{bad}")], "{mode:?}");
            // With only the stale backend and one good one, never the old value.
            nodes[(bad + 1) % 3].fail.set_down(true);
            match db.get("r").await {
                Ok(g) => assert_eq!(g.record.data, b"version two", "{mode:?}: never the old value"),
                Err(e) => assert_eq!(e.code(), ErrorCode::HmacFailed, "{e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 4. Crash mid-put.

#[tokio::test]
async fn a_put_interrupted_after_m_writes_leaves_old_or_new_readable_and_scrub_settles_it() {
    let (n, k) = (3, 2);
    for m in 0..=n {
        let (nodes, db) = cluster(n, k, n).await;
        db.put(rec("r", "old")).await.unwrap();
        // Backends m.. fail every write: the writer "crashed" after m of N writes.
        for node in &nodes[m..] {
            node.fail.fail(vaultdb_testkit::Ops::PUT, vaultdb_core::BackendErrorKind::Permanent);
        }
        let put = db.put(rec("r", "new")).await;
        assert_eq!(put.is_ok(), m == n);
        let value = data_of(&db, "r").await.unwrap();
        assert_eq!(value, if m >= k { "new" } else { "old" }, "m = {m}");
        for node in &nodes {
            node.fail.heal();
        }
        let report = db.scrub().await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(data_of(&db, "r").await.unwrap(), value);
        // Settled: exactly one version, one share on every backend.
        for node in &nodes {
            let shares: Vec<_> =
                node.mem.keys().into_iter().filter(|k| k.contains("/r/")).collect();
            assert_eq!(shares.len(), 1, "m = {m}: {shares:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. Concurrent writers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_lose_the_newest_acknowledged_value() {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), "mem"))).collect();
    let handles: Vec<_> = mems
        .iter()
        .enumerate()
        .map(|(i, m)| Randomized::new(m.clone(), 1000 + i as u64, Duration::from_millis(3), 0.1))
        .collect();
    let ctl: Vec<_> = handles.iter().map(|h| h.handle()).collect();
    for c in &ctl {
        c.set_enabled(false);
    }
    let mut b = VaultDb::builder()
        .threshold(2)
        .write_quorum(2)
        .call_policy(CallPolicy { max_attempts: 1, ..fast_policy() })
        .read_repair(false);
    for h in handles {
        b = b.backend(h);
    }
    let db = b.open().await.unwrap();
    for c in &ctl {
        c.set_enabled(true);
    }
    let ids = ["a", "b", "c"];
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut failed = Vec::new();
                for i in 0..50 {
                    let id = ids[(t + i) % ids.len()];
                    let value = format!("task {t} put {i}");
                    match db.put(rec(id, &value)).await {
                        Ok(p) => acked.push((id, p.version, value)),
                        Err(_) => failed.push((id, value)),
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    for t in tasks {
        let (a, f) = t.await.unwrap();
        acked.extend(a);
        failed.extend(f);
    }
    for c in &ctl {
        c.set_enabled(false);
    }
    assert!(acked.len() > 100, "most puts succeed: {}", acked.len());
    assert!(!failed.is_empty(), "the faults bit: some puts failed");
    for id in ids {
        let newest = acked.iter().filter(|(i, ..)| *i == id).max_by_key(|(_, v, _)| *v).unwrap();
        let g = db.get(id).await.unwrap_or_else(|e| panic!("{id} unreadable: {e}"));
        let value = String::from_utf8(g.record.data).unwrap();
        assert!(g.version >= newest.1, "{id}: an older value came back");
        if g.version == newest.1 {
            assert_eq!(value, newest.2);
        } else {
            assert!(
                failed.iter().any(|(i, v)| *i == id && *v == value),
                "{id}: {value} is neither the newest acknowledged nor a later failed put"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. Delete.

#[tokio::test]
async fn delete_with_one_down_succeeds_and_the_share_left_rebuilds_nothing() {
    for down in 0..3 {
        let (nodes, db) = cluster(3, 2, 3).await;
        db.put(rec("r", "secret")).await.unwrap();
        nodes[down].fail.set_down(true);
        let d = db.delete("r").await.unwrap();
        assert_eq!(d.removed, 2);
        nodes[down].fail.set_down(false);
        // One share is left on the backend that was down; it is below the threshold.
        let left: Vec<_> =
            nodes[down].mem.keys().into_iter().filter(|k| k.contains("/r/")).collect();
        assert_eq!(left.len(), 1);
        assert_eq!(db.get("r").await.unwrap_err().code(), ErrorCode::RecordNotFound);
        assert!(db.list().await.unwrap().ids.is_empty());
        // One share alone is uniformly random: the same share under another secret is
        // just as likely. Check the stored share differs from the secret's bytes.
        let share = nodes[down].mem.raw_get(&left[0]).unwrap();
        assert!(!share.windows(6).any(|w| w == b"secret"));
        // Scrub removes the orphan (grace period 0 in these tests), and leaves the tombstone
        // on every backend, the one that was down included.
        db.scrub().await.unwrap();
        let ks = vaultdb_core::naming::KeySpace::new("vaultdb").unwrap();
        for n in &nodes {
            let kinds: Vec<_> =
                n.mem.keys().iter().filter(|k| k.contains("/r/")).map(|k| ks.parse(k)).collect();
            assert!(
                matches!(
                    kinds.as_slice(),
                    [Some(vaultdb_core::naming::ParsedKey::Tombstone { .. })]
                ),
                "one tombstone and nothing else: {kinds:?}"
            );
        }
    }
}

#[tokio::test]
async fn delete_with_two_down_fails_and_names_them() {
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(rec("r", "secret")).await.unwrap();
    nodes[0].fail.set_down(true);
    nodes[2].fail.set_down(true);
    let e = db.delete("r").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::BackendError);
    let failed: Vec<_> = e
        .outcomes()
        .iter()
        .filter(|o| o.status != OutcomeStatus::Ok)
        .map(|o| o.backend.as_str())
        .collect();
    assert_eq!(failed, ["b0", "b2"]);
    nodes[0].fail.set_down(false);
    nodes[2].fail.set_down(false);
    assert_eq!(
        data_of(&db, "r").await.unwrap(),
        "secret",
        "a failed delete is reported, not half-done silently"
    );
    assert_eq!(db.delete("nothing-here").await.unwrap_err().code(), ErrorCode::RecordNotFound);
}

// ---------------------------------------------------------------------------------------
// 8. Metadata privacy.

#[tokio::test]
async fn backends_see_neither_ids_nor_contents_and_sizes_only_by_class() {
    let (nodes, db) = cluster(3, 2, 3).await;
    let ids = ["user-42", "alice@example.com", "patient/0007"];
    let secrets = ["Alice Liddell", "078-05-1120", "diagnosis: flu"];
    for (id, s) in ids.iter().zip(secrets) {
        let r = Record::json(*id, &serde_json::json!({"name": s, "note": "known string"})).unwrap();
        db.put(r).await.unwrap();
    }
    for n in &nodes {
        for (key, bytes) in n.mem.snapshot() {
            for needle in ids.iter().chain(&secrets).chain(&["known string", "user", "alice"]) {
                assert!(!key.contains(needle), "key {key} reveals {needle}");
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "object {key} reveals {needle}"
                );
            }
        }
    }
    // Sizes reveal only the Padme class: records of 100..=104 payload bytes (one class)
    // are stored in objects of one size.
    let (nodes, db) = cluster(3, 2, 3).await;
    let mut sizes = std::collections::BTreeSet::new();
    let overhead = {
        let mut b = Vec::new();
        Record::new("i", vec![0u8; 200]).encode_into(&mut b).unwrap();
        b.len() - 200
    };
    let class = Padding::Padme.padded_len(72 + 1000 + overhead);
    let mut len = 1000;
    while Padding::Padme.padded_len(72 + len + overhead) == class {
        db.put(Record::new("i", vec![7u8; len])).await.unwrap();
        for (key, b) in nodes[0].mem.snapshot() {
            if key.contains("/r/") {
                sizes.insert(b.len());
            }
        }
        len += 1;
    }
    assert!(len - 1000 >= 8, "the class spans several sizes");
    assert_eq!(sizes.len(), 1, "one stored size for the whole class: {sizes:?}");
    assert_eq!(*sizes.first().unwrap(), envelope::HEADER_LEN + class + envelope::TRAILER_LEN);
}

// ---------------------------------------------------------------------------------------
// 9. list.

#[tokio::test]
async fn list_returns_exactly_the_live_ids_with_list_calls_only() {
    let (nodes, db) = cluster(3, 2, 3).await;
    let mut live: Vec<String> = (0..30).map(|i| format!("rec-{i:02}")).collect();
    for id in &live {
        db.put(rec(id, "x")).await.unwrap();
        db.put(rec(id, "y")).await.unwrap();
    }
    db.delete("rec-07").await.unwrap();
    live.retain(|i| i != "rec-07");
    // A partial write (one share) is not live.
    for node in &nodes[1..] {
        node.fail.set_down(true);
    }
    assert!(db.put(rec("partial", "p")).await.is_err());
    for node in &nodes {
        node.fail.set_down(false);
        node.count.reset();
    }
    let listed = db.list().await.unwrap();
    assert_eq!(listed.ids, live);
    assert_eq!(listed.unverified, 0);
    for node in &nodes {
        let c = node.count.counts();
        assert!(c.list_pages > 0);
        assert_eq!((c.gets, c.puts, c.deletes), (0, 0, 0), "list used only LIST calls");
    }
    // One backend down: still complete from the other two.
    nodes[1].fail.set_down(true);
    assert_eq!(db.list().await.unwrap().ids, live);
    nodes[2].fail.set_down(true);
    assert_eq!(db.list().await.unwrap_err().code(), ErrorCode::InsufficientShares);
}

#[tokio::test]
async fn list_ignores_forged_names() {
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(rec("real", "x")).await.unwrap();
    // A backend invents an object name with a well-formed but fake tag and id share.
    let fake_tag = "0".repeat(26);
    let fake = format!("vaultdb/r/{fake_tag}/{}.{}", "0".repeat(26), "0".repeat(52));
    for n in &nodes {
        n.mem.raw_put(fake.clone(), Bytes::from_static(b"junk"));
    }
    let listed = db.list().await.unwrap();
    assert_eq!(listed.ids, ["real"]);
    assert_eq!(listed.unverified, 1);
}

// ---------------------------------------------------------------------------------------
// Round trips, versions, repair.

#[tokio::test]
async fn round_trips_of_many_shapes() {
    for (n, k) in [(2, 2), (3, 2), (5, 3), (7, 7)] {
        let (_nodes, db) = cluster(n, k, n).await;
        for size in [0usize, 1, 100, 4096, 200_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let r = Record::new(format!("id-{size}"), data.clone())
                .with_content_type("application/octet-stream")
                .with_metadata("m", "v");
            db.put(r.clone()).await.unwrap();
            let g = db.get(&r.id).await.unwrap();
            assert_eq!(g.record, r, "{k}-of-{n} size {size}");
        }
    }
}

#[tokio::test]
async fn retain_versions_keeps_that_many() {
    let nodes: Vec<Node> = (0..3).map(node).collect();
    let db = builder(&nodes, 2).retain_versions(3).open().await.unwrap();
    for i in 0..6 {
        db.put(rec("r", &format!("v{i}"))).await.unwrap();
    }
    assert_eq!(data_of(&db, "r").await.unwrap(), "v5");
    // Superseded versions are removed in the background, after each put returned.
    db.flush().await;
    for n in &nodes {
        assert_eq!(n.mem.keys().iter().filter(|k| k.contains("/r/")).count(), 3);
    }
}

/// A put's cleanup starts on the put's own thread: where the backends answer at once it is
/// over when the put returns, with no task handed to another worker (that hand-over, not the
/// removal's work, was most of a small put's cost on memory backends). On a multi-threaded
/// runtime a cleanup handed over is still running when the put returns, most times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_that_can_finish_at_once_is_done_when_put_returns() {
    let nodes: Vec<Node> = (0..3).map(node).collect();
    let db = builder(&nodes, 2).open().await.unwrap();
    db.put(rec("r", "v0")).await.unwrap();
    for i in 1..=50u64 {
        db.put(rec("r", &format!("v{i}"))).await.unwrap();
        // One superseded version per backend, removed before the put returned.
        assert_eq!(db.stats().objects_removed, 3 * i, "put {i}");
    }
}

/// Microseconds since the Unix epoch, now.
fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64
}

/// One backend lists a share of a record under a far-future version (a name it made up:
/// names carry no MAC). A delete must not take that version as a concurrent writer's and
/// write its own tombstone past it, nor move the client's clock there: both made every
/// later put of the id acknowledged and then unreadable (hidden by a tombstone a century
/// ahead), and every later version of the process a century ahead.
#[tokio::test]
async fn a_far_future_version_listed_by_one_backend_does_not_poison_deletes_or_the_clock() {
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(rec("acct", "v1")).await.unwrap();
    let century = 100 * 365 * 24 * 3600 * 1_000_000u64;
    let future = vaultdb_core::Version::from_parts(now_micros() + century, 7).to_text();
    let (key, bytes) =
        nodes[0].mem.snapshot().into_iter().find(|(k, _)| k.contains("/r/")).expect("a share");
    let (dir, name) = key.rsplit_once('/').unwrap();
    let forged = format!("{dir}/{future}{}", &name[future.len()..]);
    nodes[0].mem.raw_put(forged, bytes);

    db.delete("acct").await.unwrap();
    let put = db.put(rec("acct", "v2")).await.unwrap();
    assert!(put.version.micros() < now_micros() + 3_600_000_000, "the clock moved ahead");
    assert_eq!(data_of(&db, "acct").await.unwrap(), "v2", "an acknowledged put was lost");
    let other = db.put(rec("other", "x")).await.unwrap();
    assert!(other.version.micros() < now_micros() + 3_600_000_000, "the clock moved ahead");
}

#[tokio::test]
async fn bad_ids_are_rejected_and_nothing_is_written() {
    let (nodes, db) = cluster(3, 2, 3).await;
    let before: usize = nodes.iter().map(|n| n.mem.object_count()).sum();
    for id in ["", "a\nb", &"x".repeat(256)] {
        assert_eq!(db.put(rec(id, "x")).await.unwrap_err().code(), ErrorCode::InvalidInput);
        assert_eq!(db.get(id).await.unwrap_err().code(), ErrorCode::InvalidInput);
        assert_eq!(db.delete(id).await.unwrap_err().code(), ErrorCode::InvalidInput);
    }
    let small = builder(&nodes, 2).max_record_size(10).open().await.unwrap();
    assert_eq!(
        small.put(rec("big", "01234567890")).await.unwrap_err().code(),
        ErrorCode::InvalidInput
    );
    let after: usize = nodes.iter().map(|n| n.mem.object_count()).sum();
    assert_eq!(before, after);
    assert_eq!(db.get("absent").await.unwrap_err().code(), ErrorCode::RecordNotFound);
}

#[tokio::test]
async fn scrub_restores_a_wiped_backend_including_its_keyring_share() {
    let (nodes, db) = cluster(3, 2, 3).await;
    let ids: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    for id in &ids {
        db.put(rec(id, id)).await.unwrap();
    }
    nodes[1].mem.clear();
    let report = db.scrub().await.unwrap();
    assert_eq!(report.restored, 21, "20 records and the keyring: {report:?}");
    assert!(report.problems.is_empty());
    for down in [0, 2] {
        nodes[down].fail.set_down(true);
        for id in &ids {
            assert_eq!(&data_of(&db, id).await.unwrap(), id);
        }
        // The keyring opens from the restored backend plus one other.
        builder(&nodes, 2).open().await.unwrap();
        nodes[down].fail.set_down(false);
    }
}

#[tokio::test]
async fn degraded_reads_repair_in_the_background() {
    let nodes: Vec<Node> = (0..3).map(node).collect();
    let db = builder(&nodes, 2).write_quorum(2).read_repair(true).open().await.unwrap();
    nodes[2].fail.set_down(true);
    db.put(rec("r", "v")).await.unwrap();
    nodes[2].fail.set_down(false);
    let g = db.get("r").await.unwrap();
    assert!(g.degraded());
    for _ in 0..100 {
        if nodes[2].mem.keys().iter().any(|k| k.contains("/r/")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        nodes[2].mem.keys().iter().any(|k| k.contains("/r/")),
        "read-repair restored the share"
    );
    assert!(db.stats().degraded_reads >= 1);
}

#[tokio::test]
async fn health_reports_the_threshold_margin() {
    let (nodes, db) = cluster(5, 3, 5).await;
    assert_eq!(db.health().await.margin, 2);
    nodes[4].fail.set_down(true);
    nodes[0].fail.set_down(true);
    let h = db.health().await;
    assert_eq!((h.up, h.margin), (3, 0));
    assert!(!h.backends[0].up && h.backends[1].up);
    nodes[2].fail.set_down(true);
    assert_eq!(db.health().await.margin, -1);
    // The same probe without an open store (for a store that cannot be opened).
    let backends: Vec<Arc<dyn StorageBackend>> = nodes.iter().map(|n| n.backend.clone()).collect();
    let h = Health::probe(&backends, 3, &Settings::default()).await.unwrap();
    assert_eq!((h.k, h.n, h.up, h.margin), (3, 5, 2, -1));
    assert_eq!(h.backends[1].id, "b1");
    assert!(!h.backends[0].up && h.backends[0].error.is_some() && h.backends[1].up);
    let mut bad_prefix = Settings::default();
    bad_prefix.prefix = "a/../b".into();
    let e = Health::probe(&backends, 3, &bad_prefix).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
}

#[tokio::test]
async fn hedged_reads_skip_a_slow_backend() {
    use vaultdb_testkit::Slow;
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), "mem"))).collect();
    let slow = Slow::new(mems[0].clone(), Duration::ZERO);
    let slow_h = slow.handle();
    slow_h.set_ops(vaultdb_testkit::Ops::GET);
    let db = VaultDb::builder()
        .threshold(2)
        .backend(slow)
        .backend(mems[1].clone())
        .backend(mems[2].clone())
        .hedge_after(Some(Duration::from_millis(20)))
        .open()
        .await
        .unwrap();
    db.put(rec("r", "v")).await.unwrap();
    slow_h.set_delay(Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let g = db.get("r").await.unwrap();
    assert_eq!(g.record.data, b"v");
    // The slow backend is asked first (no latency history favours the others), but after
    // 20 ms the read asks another backend and completes without it.
    assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
}

#[test]
fn record_debug_and_error_display_carry_no_secrets() {
    let r = Record::new("alice@example.com", b"078-05-1120".to_vec());
    let d = format!("{r:?}");
    assert!(!d.contains("alice") && !d.contains("078"), "{d}");
    let e = VaultError::RecordNotFound;
    assert_eq!(e.to_string(), "record not found");
}

/// The system namespace is a store of its own over the same backends: its records are
/// written under `<prefix>/sys/`, named with a derived key, never listed among (or confused
/// with) the callers' records, and readable by every client of the store.
#[tokio::test]
async fn the_system_namespace_is_separate_from_the_records() {
    let (nodes, db) = cluster(3, 2, 3).await;
    db.put(Record::new("same-id", b"user data".to_vec())).await.unwrap();
    let sys = db.system();
    sys.put(Record::new("same-id", b"system data".to_vec())).await.unwrap();
    assert_eq!(data_of(&db, "same-id").await.unwrap(), "user data");
    assert_eq!(data_of(&sys, "same-id").await.unwrap(), "system data");
    assert_eq!(db.list().await.unwrap().ids, vec!["same-id".to_owned()]);
    assert_eq!(sys.list().await.unwrap().ids, vec!["same-id".to_owned()]);
    assert_ne!(db.name_tag("same-id"), sys.name_tag("same-id"), "another naming key");
    // Every system object is under vaultdb/sys/, every other one outside it.
    let sys_keys: Vec<String> =
        nodes[0].mem.keys().into_iter().filter(|k| k.starts_with("vaultdb/sys/")).collect();
    assert_eq!(sys_keys.len(), 2, "the share and the mark: {sys_keys:?}");
    assert!(sys_keys.iter().any(|k| k.starts_with("vaultdb/sys/m/")), "{sys_keys:?}");
    // Another client of the store reads it; deleting the user's record leaves it.
    let again = builder(&nodes, 2).open().await.unwrap();
    db.delete("same-id").await.unwrap();
    assert_eq!(data_of(&again.system(), "same-id").await.unwrap(), "system data");
    // Derived keys differ by purpose and agree between clients.
    assert_eq!(*db.derived_key("audit-log"), *again.derived_key("audit-log"));
    assert_ne!(*db.derived_key("audit-log"), *db.derived_key("other"));
}

#[tokio::test]
async fn list_pages_walk_every_live_record_once_at_page_cost() {
    // Backends that list 25 keys per page, so that a full listing takes many pages.
    let mut b = VaultDb::builder().threshold(2).call_policy(fast_policy()).hedge_after(None);
    let mut counts = Vec::new();
    for i in 0..3 {
        let mem = MemoryBackend::new(format!("b{i}"), format!("backend {i}")).with_page_size(25);
        let counting = Counting::new(mem);
        counts.push(counting.handle());
        b = b.backend(counting);
    }
    let db = b.open().await.unwrap();
    let mut want: Vec<String> = (0..250).map(|i| format!("rec-{i:03}")).collect();
    for id in &want {
        db.put(rec(id, "x")).await.unwrap();
    }
    db.delete("rec-007").await.unwrap();
    want.retain(|id| id != "rec-007");
    // A full listing takes 11 backend pages each; one page of 20 ids takes one.
    counts.iter().for_each(CountingHandle::reset);
    assert_eq!(db.list().await.unwrap().ids.len(), 249);
    assert!(counts.iter().all(|c| c.list_pages() >= 10));
    counts.iter().for_each(CountingHandle::reset);
    let first = db.list_page(None, 20).await.unwrap();
    assert!(first.ids.len() <= 20 && first.ids.len() >= 19, "{}", first.ids.len());
    for c in &counts {
        assert_eq!(c.list_pages(), 1, "one backend page for one page of ids");
    }
    // The whole walk: every live id exactly once, none of the deleted one, in name-tag
    // order (not id order).
    let mut seen = first.ids.clone();
    let mut cursor = first.next.clone();
    let mut pages = 1;
    while let Some(c) = cursor {
        let page = db.list_page(Some(&c), 20).await.unwrap();
        assert!(page.ids.len() <= 20);
        seen.extend(page.ids);
        cursor = page.next;
        pages += 1;
        assert!(pages < 100, "the walk ends");
    }
    let tags: Vec<_> = seen.iter().map(|id| db.name_tag(id)).collect();
    assert!(tags.windows(2).all(|w| w[0] < w[1]), "name-tag order, each once");
    seen.sort();
    assert_eq!(seen, want);
    // Hostile input.
    for c in ["", "rec-001", "c1.zz", "c1.0000000000000000000000000w"] {
        assert_eq!(
            db.list_page(Some(c), 10).await.unwrap_err().code(),
            ErrorCode::InvalidInput,
            "{c:?}"
        );
    }
    assert_eq!(db.list_page(None, 0).await.unwrap_err().code(), ErrorCode::InvalidInput);
}

/// A backend whose listing never ends: every page is empty and points to the same next
/// page (a broken or hostile store).
#[derive(Debug)]
struct EndlessListing(MemoryBackend);

vaultdb_testkit::forward_backend! {
    impl StorageBackend for EndlessListing {
        forward id, name, put, get, delete to self.0;

        async fn list_page(
            &self,
            _prefix: &vaultdb_core::backend::KeyPrefix,
            _from: vaultdb_core::backend::ListFrom,
        ) -> vaultdb_core::backend::BackendResult<vaultdb_core::backend::ListPage> {
            // Yields, as a network call would, so that a regression times out rather than
            // spinning for ever.
            tokio::task::yield_now().await;
            Ok(vaultdb_core::backend::ListPage { entries: Vec::new(), next: Some("again".into()) })
        }
    }
}

#[tokio::test]
async fn a_listing_that_never_ends_fails_that_backend_not_the_page() {
    let mut b = VaultDb::builder().threshold(2).call_policy(fast_policy()).hedge_after(None);
    b = b.backend(EndlessListing(MemoryBackend::new("endless", "endless")));
    for i in 1..3 {
        b = b.backend(MemoryBackend::new(format!("b{i}"), "m"));
    }
    let db = b.open().await.unwrap();
    db.put(rec("one", "x")).await.unwrap();
    let page = tokio::time::timeout(Duration::from_secs(30), db.list_page(None, 10))
        .await
        .expect("the page does not wait for a listing that never ends")
        .unwrap();
    assert_eq!(page.ids, ["one"]);
    assert_ne!(page.outcomes[0].status, OutcomeStatus::Ok, "the endless backend is reported");
}

/// A backend whose listing is made up by a function of the cursor it is given.
struct Pages<F>(F);

impl<F> std::fmt::Debug for Pages<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

#[async_trait::async_trait]
impl<F> vaultdb_core::backend::StorageBackend for Pages<F>
where
    F: Fn(Option<&str>) -> vaultdb_core::backend::ListPage + Send + Sync + 'static,
{
    fn id(&self) -> &str {
        "pages"
    }
    fn name(&self) -> &str {
        "pages"
    }
    async fn put(
        &self,
        _: &vaultdb_core::backend::Key,
        _: bytes::Bytes,
        _: vaultdb_core::backend::PutMode,
    ) -> vaultdb_core::backend::BackendResult<()> {
        Ok(())
    }
    async fn get(
        &self,
        _: &vaultdb_core::backend::Key,
        _: u64,
    ) -> vaultdb_core::backend::BackendResult<Option<bytes::Bytes>> {
        Ok(None)
    }
    async fn delete(
        &self,
        _: &vaultdb_core::backend::Key,
    ) -> vaultdb_core::backend::BackendResult<()> {
        Ok(())
    }
    async fn list_page(
        &self,
        _: &vaultdb_core::backend::KeyPrefix,
        from: vaultdb_core::backend::ListFrom,
    ) -> vaultdb_core::backend::BackendResult<vaultdb_core::backend::ListPage> {
        Ok((self.0)(match &from {
            vaultdb_core::backend::ListFrom::Cursor(c) => Some(c.as_str()),
            _ => None,
        }))
    }
}

fn page(keys: &[&str], next: Option<String>) -> vaultdb_core::backend::ListPage {
    vaultdb_core::backend::ListPage {
        entries: keys
            .iter()
            .map(|k| vaultdb_core::backend::ListEntry {
                key: vaultdb_core::backend::Key::new(*k).unwrap(),
                size: 1,
            })
            .collect(),
        next,
    }
}

#[tokio::test]
async fn listings_that_never_end_are_errors_not_loops() {
    use vaultdb_core::backend::{KeyPrefix, ListFrom, StorageBackendExt};
    let all = KeyPrefix::new("").unwrap();
    // Honest: three pages, then the end; `list_while` stops where it is told to.
    let honest = Pages(|at: Option<&str>| match at {
        None => page(&["a", "b"], Some("1".into())),
        Some("1") => page(&["c"], Some("2".into())),
        _ => page(&["d"], None),
    });
    let keys: Vec<String> =
        honest.list_all(&all).await.unwrap().into_iter().map(|e| e.key.to_string()).collect();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    let (taken, ended) =
        honest.list_while(&all, ListFrom::Start, |e| e.key.as_str() < "c").await.unwrap();
    assert_eq!((taken.len(), ended), (2, false));

    // Cursors in a cycle of 5 after a run-in of 7, each page with a key: caught, not
    // followed until the key cap.
    let cycle = Pages(|at: Option<&str>| {
        let n: u64 = at.map_or(0, |c| c.parse().unwrap());
        let next = if n < 11 { n + 1 } else { 7 };
        page(&["k"], Some(next.to_string()))
    });
    let err = cycle.list_all(&all).await.unwrap_err();
    assert!(err.to_string().contains("does not end"), "{err}");

    // Empty pages under ever new cursors: stopped by the page cap.
    let endless = Pages(|at: Option<&str>| {
        let n: u64 = at.map_or(0, |c| c.parse().unwrap());
        page(&[], Some((n + 1).to_string()))
    });
    let err = endless.list_all(&all).await.unwrap_err();
    assert!(err.to_string().contains("does not end"), "{err}");
}
