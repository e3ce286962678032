//! The storage modes through the client: the mode is chosen at creation and kept in the
//! keyring, and in both modes records (inline and segmented) round-trip, any K backends
//! rebuild them, a bad share is found and its backend named, repair and scrub restore a
//! wiped backend, deletes leave tombstones, and no backend holds plaintext. Compact shares
//! are about 1/K of the secret.

use std::sync::Arc;
use std::time::Duration;

use vaultdb_core::envelope;
use vaultdb_core::{
    CallPolicy, ErrorCode, MemoryBackend, Mode, OutcomeStatus, Record, RecordMeta, StorageBackend,
    VaultDb, VaultDbBuilder, VaultError,
};
use vaultdb_testkit::{
    CorruptMode, CorruptingHandle, Counting, CountingHandle, Failing, FailingHandle, Generator,
    MemoryStack,
};

const MODES: [Mode; 2] = [Mode::Shamir, Mode::Compact];

struct Node {
    mem: Arc<MemoryBackend>,
    fail: FailingHandle,
    corrupt: CorruptingHandle,
    backend: Arc<dyn StorageBackend>,
}

fn node(i: usize) -> Node {
    let MemoryStack { mem, corrupt, backend, .. } =
        MemoryStack::new(format!("b{i}"), format!("backend {i}"));
    let failing = Failing::new(backend);
    let fail = failing.handle();
    Node { mem, fail, corrupt, backend: Arc::new(failing) }
}

fn builder(nodes: &[Node], k: usize) -> VaultDbBuilder {
    let mut b = VaultDb::builder()
        .threshold(k)
        .call_policy(CallPolicy {
            timeout: Duration::from_secs(5),
            max_attempts: 2,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        })
        .read_repair(false)
        .hedge_after(None)
        .grace_period(Duration::ZERO)
        .segment_size(4096);
    for n in nodes {
        b = b.backend_arc(n.backend.clone());
    }
    b
}

async fn cluster(mode: Mode, n: usize, k: usize) -> (Vec<Node>, VaultDb) {
    let nodes: Vec<Node> = (0..n).map(node).collect();
    let db = builder(&nodes, k).mode(mode).open().await.expect("open");
    assert_eq!(db.mode(), mode);
    (nodes, db)
}

async fn data_of(db: &VaultDb, id: &str) -> Result<Vec<u8>, VaultError> {
    db.get(id).await.map(|g| g.record.data)
}

/// The bytes of every record object a backend holds.
fn record_objects(mem: &MemoryBackend) -> Vec<(String, Vec<u8>)> {
    mem.snapshot()
        .into_iter()
        .filter(|(key, _)| key.contains("/r/"))
        .map(|(key, bytes)| (key.to_string(), bytes.to_vec()))
        .collect()
}

#[tokio::test]
async fn the_mode_is_kept_in_the_keyring_and_checked_on_open() {
    let (nodes, db) = cluster(Mode::Compact, 3, 2).await;
    db.put(Record::new("r", b"compact".to_vec())).await.unwrap();
    // Opened without a mode: the store's. With the other mode: refused.
    let again = builder(&nodes, 2).open().await.unwrap();
    assert_eq!(again.mode(), Mode::Compact);
    assert_eq!(data_of(&again, "r").await.unwrap(), b"compact");
    let e = builder(&nodes, 2).mode(Mode::Shamir).open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(e.to_string().contains("compact"), "{e}");
    // A store made without a mode is shamir, and a compact client refuses it.
    let plain: Vec<Node> = (0..3).map(node).collect();
    assert_eq!(builder(&plain, 2).open().await.unwrap().mode(), Mode::Shamir);
    let e = builder(&plain, 2).mode(Mode::Compact).open().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
}

/// Every shape round-trips, any K of N backends rebuild it (the others down), the shares
/// are about 1/K of the secret in compact mode, and no share holds the plaintext.
#[tokio::test]
async fn any_k_backends_rebuild_every_shape_in_both_modes() {
    for mode in MODES {
        for (k, n) in [(2, 3), (3, 5)] {
            let (nodes, db) = cluster(mode, n, k).await;
            let big = Generator::bytes(7, 100_000);
            db.put(Record::new("small", b"tiny".to_vec())).await.unwrap();
            db.put(Record::new("big", big.clone())).await.unwrap();
            let streamed = Generator::bytes(8, 10_000);
            let meta = RecordMeta::new("seg");
            db.put_stream(meta, 10_000, Generator::new(8, 10_000)).await.unwrap();
            for mask in (0u32..1 << n).filter(|m| m.count_ones() as usize == k) {
                for (i, node) in nodes.iter().enumerate() {
                    node.fail.set_down(mask & (1 << i) == 0);
                }
                assert_eq!(data_of(&db, "small").await.unwrap(), b"tiny", "{mode} {mask:b}");
                assert_eq!(data_of(&db, "big").await.unwrap(), big, "{mode} {mask:b}");
                let got = db.get_stream("seg").await.unwrap().collect_bytes().await.unwrap();
                assert_eq!(got, streamed, "{mode} {mask:b}");
            }
            for node in &nodes {
                node.fail.set_down(false);
            }
            let mut ids = db.list().await.unwrap().ids;
            ids.sort();
            assert_eq!(ids, ["big", "seg", "small"]);
            // What each backend stores for the records (segmented: 4 KiB segments), against
            // what they hold: at least as much in shamir mode, about 1/K of it in compact.
            let held = 4 + 100_000 + 10_000;
            for node in &nodes {
                let objects = record_objects(&node.mem);
                let stored: usize = objects.iter().map(|(_, b)| b.len()).sum();
                match mode {
                    Mode::Shamir => assert!(stored > held, "{k}-of-{n}: {stored}"),
                    Mode::Compact => {
                        assert!(stored > held / k && stored < held * 6 / 10, "{k}: {stored}")
                    }
                }
                for (_, bytes) in &objects {
                    assert!(!bytes.windows(32).any(|w| w == &big[5000..5032]), "{mode}");
                    assert!(!bytes.windows(32).any(|w| w == &streamed[5000..5032]), "{mode}");
                }
            }
        }
    }
}

/// Rewrites one share byte of every record object in `mem` (at `offset` into the share) and
/// fixes up the CRC, so only the MAC can catch it.
fn tamper_with_valid_crc(mem: &MemoryBackend, offset: usize) {
    for (key, bytes) in mem.snapshot() {
        if !key.contains("/r/") {
            continue;
        }
        let mut b = bytes.to_vec();
        b[envelope::HEADER_LEN + offset] ^= 0x40;
        envelope::seal(&mut b);
        mem.raw_put(key, b);
    }
}

/// A share changed behind a valid CRC (in the key part or in the shard, in compact mode) is
/// caught by the MAC, its backend named, and repair rewrites it; with exactly K backends up
/// and one of them bad, the read fails with `HMAC_FAILED`, never wrong data.
#[tokio::test]
async fn a_tampered_share_is_caught_named_and_repaired_in_both_modes() {
    for mode in MODES {
        for offset in [5, 40, 90] {
            for bad in 0..3 {
                let (nodes, db) = cluster(mode, 3, 2).await;
                let data = Generator::bytes(bad as u64, 300);
                db.put(Record::new("r", data.clone())).await.unwrap();
                tamper_with_valid_crc(&nodes[bad].mem, offset);
                let g = db.get("r").await.unwrap();
                assert_eq!(g.record.data, data);
                if bad < 2 {
                    assert_eq!(g.bad_backends, vec![format!("b{bad}")], "{mode} {offset}");
                }
                let report = db.repair("r").await.unwrap();
                assert_eq!(report.restored, vec![format!("b{bad}")], "{mode} {offset}");
                for other in (0..3).filter(|&o| o != bad) {
                    let third = 3 - bad - other;
                    nodes[third].fail.set_down(true);
                    assert_eq!(data_of(&db, "r").await.unwrap(), data, "{mode} {offset}");
                    nodes[third].fail.set_down(false);
                }
                // Exactly K up, one of them bad: HMAC_FAILED naming it.
                tamper_with_valid_crc(&nodes[bad].mem, offset);
                let down = (bad + 1) % 3;
                nodes[down].fail.set_down(true);
                let e = db.get("r").await.unwrap_err();
                assert_eq!(e.code(), ErrorCode::HmacFailed, "{mode} {offset}: {e}");
                assert!(
                    matches!(&e, VaultError::HmacFailed { bad_backends, .. }
                        if bad_backends.is_empty() || bad_backends == &[format!("b{bad}")]),
                    "{mode}: {e}"
                );
            }
        }
    }
}

/// Corruption the CRC catches (every `CorruptMode`) is named before any
/// rebuild, and the right data returned, in both modes.
#[tokio::test]
async fn a_corrupting_backend_is_named_in_both_modes() {
    const HOW: [CorruptMode; 4] =
        [CorruptMode::FlipBit, CorruptMode::Rewrite, CorruptMode::Truncate, CorruptMode::Oversize];
    for (mode, how) in MODES.into_iter().flat_map(|m| HOW.map(|h| (m, h))) {
        for bad in 0..3 {
            let (nodes, db) = cluster(mode, 3, 2).await;
            db.put(Record::new("r", b"the right data".to_vec())).await.unwrap();
            nodes[bad].corrupt.set_mode(how);
            nodes[bad].corrupt.set_enabled(true);
            // Repair asks every backend, so the bad one is always among those asked.
            let repaired = db.repair("r").await.unwrap();
            assert!(repaired.problems.is_empty(), "{mode} {how:?}: {:?}", repaired.problems);
            let g = db.get("r").await.unwrap();
            assert_eq!(g.record.data, b"the right data");
            // Unless the read did not ask it (reads ask the fastest backends first).
            if g.outcomes[bad].status != OutcomeStatus::Skipped {
                assert_eq!(g.bad_backends, vec![format!("b{bad}")], "{mode} {how:?}");
            }
        }
    }
}

/// Scrub rebuilds a wiped backend's shares (records, segments and keyring), which then
/// serve reads with any one other backend; deletes leave only tombstones.
#[tokio::test]
async fn scrub_restores_a_wiped_backend_and_deletes_stay_deleted_in_both_modes() {
    for mode in MODES {
        let (nodes, db) = cluster(mode, 3, 2).await;
        let ids: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
        for id in &ids {
            db.put(Record::new(id.as_str(), Generator::bytes(1, 2000))).await.unwrap();
        }
        db.put_stream(RecordMeta::new("seg"), 9000, Generator::new(3, 9000)).await.unwrap();
        nodes[1].mem.clear();
        let report = db.scrub().await.unwrap();
        assert!(report.problems.is_empty(), "{mode}: {report:?}");
        assert!(report.restored >= 10, "{mode}: {report:?}");
        for down in [0, 2] {
            nodes[down].fail.set_down(true);
            for id in &ids {
                assert_eq!(data_of(&db, id).await.unwrap(), Generator::bytes(1, 2000), "{mode}");
            }
            let seg = db.get_stream("seg").await.unwrap().collect_bytes().await.unwrap();
            assert_eq!(seg, Generator::bytes(3, 9000), "{mode}");
            assert_eq!(builder(&nodes, 2).open().await.unwrap().mode(), mode);
            nodes[down].fail.set_down(false);
        }
        db.delete("r0").await.unwrap();
        db.delete("seg").await.unwrap();
        assert_eq!(db.get("r0").await.unwrap_err().code(), ErrorCode::RecordNotFound);
        assert_eq!(db.get_stream("seg").await.unwrap_err().code(), ErrorCode::RecordNotFound);
        assert_eq!(db.list().await.unwrap().ids.len(), 7, "{mode}");
    }
}

/// With equally fast backends, a compact read fetches the K original shards (shares
/// `1..=K`, which rebuild without decoding the erasure code) and never a recovery shard,
/// read after read, although the latencies it measures differ by noise; a shamir read
/// fetches K shares too. (Reads list, then fetch: fast reads off, so that every `get` a
/// backend sees is a share fetch.)
#[tokio::test]
async fn reads_fetch_k_shares_and_compact_reads_the_original_shards() {
    const READS: u64 = 40;
    for mode in MODES {
        for (k, n) in [(2, 3), (3, 5)] {
            let mut b = VaultDb::builder()
                .threshold(k)
                .mode(mode)
                .fast_reads(false)
                .read_repair(false)
                .hedge_after(Some(Duration::from_secs(5)));
            let mut counts = Vec::new();
            for i in 0..n {
                let counting = Counting::new(MemoryBackend::new(format!("b{i}"), format!("b{i}")));
                counts.push(counting.handle());
                b = b.backend(counting);
            }
            let db = b.open().await.expect("open");
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            db.put(Record::new("r", data.clone())).await.unwrap();
            db.flush().await;
            counts.iter().for_each(CountingHandle::reset);
            for _ in 0..READS {
                assert_eq!(data_of(&db, "r").await.unwrap(), data);
            }
            let gets: Vec<u64> = counts.iter().map(CountingHandle::gets).collect();
            assert_eq!(gets.iter().sum::<u64>(), READS * k as u64, "{mode} {k}-of-{n}: {gets:?}");
            if mode == Mode::Compact {
                assert!(gets[..k].iter().all(|&g| g == READS), "{k}-of-{n}: {gets:?}");
            }
        }
    }
}
