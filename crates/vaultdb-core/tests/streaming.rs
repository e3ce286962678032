//! Segmented records through the streaming API: round trips over many segments, range reads
//! that fetch only the segments they need, tampering named by segment, bounded windows, and
//! cleanup of segments by overwrite, delete and scrub.
//!
//! Segments are tiny here (4 KiB) so that tests cover dozens of segments in milliseconds;
//! the code path is the same as for the 4 MiB default.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use vaultdb_core::{CallPolicy, ErrorCode, MemoryBackend, Record, RecordMeta, VaultDb};
use vaultdb_testkit::{CorruptingHandle, CountingHandle, Generator, MemoryStack, Slow};

const SEG: usize = 4096;

struct Node {
    mem: Arc<MemoryBackend>,
    count: CountingHandle,
    corrupt: CorruptingHandle,
}

/// Streams `len` bytes of `Generator` seed `seed` into record `id`, and returns them.
async fn put_generated(db: &VaultDb, id: &str, seed: u64, len: usize) -> Vec<u8> {
    let data = Generator::bytes(seed, len);
    db.put_stream(RecordMeta::new(id), len as u64, &data[..]).await.unwrap();
    data
}

async fn cluster(n: usize, k: usize) -> (Vec<Node>, VaultDb) {
    cluster_with(n, k, true, None).await
}

/// A cluster; `slow` names a backend that answers every call 20 ms late, so that reads ask
/// the others first (reads go to the fastest K backends, by measured latency).
async fn cluster_with(
    n: usize,
    k: usize,
    fast_reads: bool,
    slow: Option<usize>,
) -> (Vec<Node>, VaultDb) {
    let mut nodes = Vec::new();
    let mut b = VaultDb::builder()
        .threshold(k)
        .fast_reads(fast_reads)
        .segment_size(SEG)
        .read_repair(false)
        .hedge_after(None)
        .grace_period(Duration::ZERO)
        .call_policy(CallPolicy {
            timeout: Duration::from_secs(5),
            max_attempts: 1,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        });
    for i in 0..n {
        let MemoryStack { mem, count, corrupt, backend, .. } =
            MemoryStack::new(format!("b{i}"), format!("backend {i}"));
        b = if slow == Some(i) {
            b.backend(Slow::new(backend, Duration::from_millis(20)))
        } else {
            b.backend(backend)
        };
        nodes.push(Node { mem, count, corrupt });
    }
    (nodes, b.open().await.unwrap())
}

fn segment_keys(mem: &MemoryBackend) -> usize {
    mem.keys().iter().filter(|k| k.rsplit('/').next().is_some_and(|l| l.contains('-'))).count()
}

#[tokio::test]
async fn many_segments_round_trip_from_a_generator() {
    let (nodes, db) = cluster(3, 2).await;
    let len = (SEG * 10 + 123) as u64;
    let meta = RecordMeta::new("big").with_content_type("application/octet-stream");
    let put = db.put_stream(meta.clone(), len, Generator::new(7, len)).await.unwrap();
    assert_eq!(put.acks, 3);
    let want = Generator::bytes(7, len as usize);
    // Eleven segment objects, one manifest and the record's mark per backend (and the
    // keyring).
    for n in &nodes {
        assert_eq!(segment_keys(&n.mem), 11);
        assert_eq!(n.mem.object_count(), 14);
    }
    let stream = db.get_stream("big").await.unwrap();
    assert!(stream.segmented());
    assert_eq!(stream.total_len(), len);
    assert_eq!(stream.meta(), &meta);
    assert_eq!(stream.version(), put.version);
    let chunks: Vec<_> = stream.collect().await;
    assert_eq!(chunks.len(), 11, "one chunk per segment");
    let got: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
    assert!(got == want, "streamed data differs");
    // get() reads a segmented record whole, and list() sees it once.
    let whole = db.get("big").await.unwrap();
    assert!(whole.record.data == want);
    assert_eq!(whole.record.content_type.as_deref(), Some("application/octet-stream"));
    assert!(!whole.degraded());
    assert_eq!(db.list().await.unwrap().ids, vec!["big".to_owned()]);
}

#[tokio::test]
async fn get_refuses_a_record_over_max_record_size_that_get_stream_reads() {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), "mem"))).collect();
    let mut b = VaultDb::builder().threshold(2).segment_size(SEG).max_record_size(2 * SEG);
    for m in &mems {
        b = b.backend_arc(m.clone());
    }
    let db = b.open().await.unwrap();
    let len = (SEG * 3) as u64;
    db.put_stream(RecordMeta::new("big"), len, Generator::new(3, len)).await.unwrap();
    let e = db.get("big").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput, "{e}");
    assert!(e.to_string().contains("get_stream"), "{e}");
    let data = db.get_stream("big").await.unwrap().collect_bytes().await.unwrap();
    assert!(data == Generator::bytes(3, len as usize), "streamed data differs");
}

#[tokio::test]
async fn put_segments_large_records_and_small_ones_stay_inline() {
    let (nodes, db) = cluster(3, 2).await;
    // At most one segment: today's single-object format.
    for len in [0, 1, SEG] {
        let data = Generator::bytes(len as u64, len);
        db.put_stream(RecordMeta::new("small"), len as u64, &data[..]).await.unwrap();
        assert_eq!(segment_keys(&nodes[0].mem), 0, "len {len}");
        let s = db.get_stream("small").await.unwrap();
        assert!(!s.segmented());
        assert_eq!(s.collect_bytes().await.unwrap(), data);
    }
    // put() of a record larger than a segment segments it.
    let data = Generator::bytes(3, SEG * 3);
    db.put(Record::new("via-put", data.clone()).with_metadata("k", "v")).await.unwrap();
    assert_eq!(segment_keys(&nodes[0].mem), 3);
    let got = db.get("via-put").await.unwrap().record;
    assert!(got.data == data);
    assert_eq!(got.metadata.get("k").map(String::as_str), Some("v"));
    // Overwriting with a small record removes the old segments; and back again.
    db.put(Record::new("via-put", b"tiny".to_vec())).await.unwrap();
    db.flush().await; // the old version is removed in the background
    assert_eq!(segment_keys(&nodes[0].mem), 0);
    assert_eq!(db.get("via-put").await.unwrap().record.data, b"tiny");
    db.put(Record::new("via-put", data.clone())).await.unwrap();
    db.put(Record::new("via-put", Generator::bytes(4, SEG * 2 + 1))).await.unwrap();
    db.flush().await;
    for n in &nodes {
        assert_eq!(segment_keys(&n.mem), 3, "only the newest version's segments remain");
    }
    // Delete removes manifests and segments everywhere, leaving one tombstone per record.
    db.delete("via-put").await.unwrap();
    db.delete("small").await.unwrap();
    for n in &nodes {
        assert_eq!(
            n.mem.object_count(),
            5,
            "only the keyring and two tombstones (and their marks) are left"
        );
        assert_eq!(segment_keys(&n.mem), 0);
    }
    assert_eq!(db.get_stream("via-put").await.unwrap_err().code(), ErrorCode::RecordNotFound);
}

#[tokio::test]
async fn range_reads_fetch_only_the_segments_they_need() {
    // Counted without the fast path's reads of marks (tests/fast_reads.rs counts those).
    let (nodes, db) = cluster_with(3, 2, false, None).await;
    let len = SEG * 8 + 100;
    let data = put_generated(&db, "r", 11, len).await;
    let l = len as u64;
    for range in [
        0..1,
        5000..9000,
        4096..8192,
        4095..4097,
        (l - 1)..l,
        0..l,
        (l - 50)..(l + 1000),
        17..17,
        (l + 5)..(l + 10),
    ] {
        for n in &nodes {
            n.count.reset();
        }
        let got = db.get_range("r", range.clone()).await.unwrap();
        let clamped = range.start.min(l)..range.end.min(l);
        assert_eq!(got.range(), clamped);
        let bytes = got.collect_bytes().await.unwrap();
        assert!(bytes == data[clamped.start as usize..clamped.end as usize], "{range:?}");
        let gets: u64 = nodes.iter().map(|n| n.count.gets()).sum();
        let segments = if clamped.is_empty() {
            0
        } else {
            clamped.end.div_ceil(SEG as u64) - clamped.start / SEG as u64
        };
        // K shares of the manifest and K of each needed segment, nothing more.
        assert_eq!(gets, 2 * (1 + segments), "{range:?}");
    }
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 10..5;
    assert_eq!(db.get_range("r", backwards).await.unwrap_err().code(), ErrorCode::InvalidInput);
    // Ranges of an inline record work the same way.
    db.put(Record::new("s", b"0123456789".to_vec())).await.unwrap();
    let s = db.get_range("s", 3..6).await.unwrap().collect_bytes().await.unwrap();
    assert_eq!(s, b"345");
}

fn corrupt_segment(nodes: &[Node], which: &[usize], index: u32) {
    let suffix = format!("-{index:08x}");
    for &i in which {
        for key in nodes[i].mem.keys().into_iter().filter(|k| k.ends_with(&suffix)) {
            let mut bytes = nodes[i].mem.raw_get(&key).unwrap().to_vec();
            // Flip a share byte and fix the CRC: only the HMAC can catch this.
            bytes[vaultdb_core::envelope::HEADER_LEN + 3] ^= 0x40;
            vaultdb_core::envelope::seal(&mut bytes);
            nodes[i].mem.raw_put(key, bytes);
        }
    }
}

#[tokio::test]
async fn a_corrupted_segment_is_hmac_failed_naming_the_segment() {
    // b0 is slow, so every read asks b1 and b2 first and meets b1's bad share (with three
    // equally fast backends a read may take b0 and b2 and never see it: CI run 24).
    let (nodes, db) = cluster_with(3, 2, true, Some(0)).await;
    let len = SEG * 6;
    let data = put_generated(&db, "c", 5, len).await;

    // One bad share of segment 3: the read succeeds from the other two and names b1.
    corrupt_segment(&nodes, &[1], 3);
    let stream = db.get_stream("c").await.unwrap();
    let mut got = Vec::new();
    let mut s = stream;
    while let Some(c) = s.next().await {
        got.extend_from_slice(&c.unwrap());
    }
    assert!(got == data);
    assert_eq!(s.bad_backends(), vec!["b1".to_owned()]);
    let whole = db.get("c").await.unwrap();
    assert!(whole.degraded());
    assert_eq!(whole.bad_backends, vec!["b1".to_owned()]);

    // Two bad shares of segment 3 in 2-of-3: no two shares verify. The stream yields the
    // first three segments, then HMAC_FAILED naming segment 3, then ends.
    corrupt_segment(&nodes, &[2], 3);
    let mut s = db.get_stream("c").await.unwrap();
    let mut ok = 0;
    let err = loop {
        match s.next().await {
            Some(Ok(_)) => ok += 1,
            Some(Err(e)) => break e,
            None => panic!("stream ended without an error"),
        }
    };
    assert_eq!(ok, 3);
    assert_eq!(err.code(), ErrorCode::HmacFailed);
    assert!(err.to_string().contains("segment 3 of 6"), "{err}");
    assert!(s.next().await.is_none(), "the stream ends after an error");
    assert_eq!(db.get("c").await.unwrap_err().code(), ErrorCode::HmacFailed);
    // A range that avoids segment 3 still reads.
    let r = db.get_range("c", 0..(SEG as u64 * 3)).await.unwrap().collect_bytes().await.unwrap();
    assert!(r == data[..SEG * 3]);
}

#[tokio::test]
async fn swapped_or_replayed_segments_fail_the_mac() {
    let (nodes, db) = cluster(2, 2).await;
    let len = SEG * 4;
    let data = put_generated(&db, "s", 9, len).await;
    // Both backends serve segment 1 in place of segment 2 (valid envelopes, valid MACs for
    // the wrong position): the position bound into each segment's MAC catches it.
    for n in &nodes {
        let keys = n.mem.keys();
        let one = keys.iter().find(|k| k.ends_with("-00000001")).unwrap();
        let two = keys.iter().find(|k| k.ends_with("-00000002")).unwrap();
        let bytes = n.mem.raw_get(one).unwrap();
        n.mem.raw_put(two.clone(), bytes);
    }
    let e = db.get_range("s", (SEG as u64 * 2)..(SEG as u64 * 3)).await.unwrap();
    let e = e.collect_bytes().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HmacFailed, "{e}");
    assert!(e.to_string().contains("segment 2"), "{e}");

    // Segments of another record cannot stand in either (the name tag is bound).
    db.put_stream(RecordMeta::new("t"), len as u64, &data[..]).await.unwrap();
    let tag_s = db.name_tag("s").to_text();
    let tag_t = db.name_tag("t").to_text();
    for n in &nodes {
        for key in
            n.mem.keys().into_iter().filter(|k| k.contains(&tag_t) && k.ends_with("-00000000"))
        {
            let bytes = n.mem.raw_get(&key).unwrap();
            let target = n
                .mem
                .keys()
                .into_iter()
                .find(|k| k.contains(&tag_s) && k.ends_with("-00000000"))
                .unwrap();
            n.mem.raw_put(target, bytes);
        }
    }
    let e = db.get_range("s", 0..10).await.unwrap().collect_bytes().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HmacFailed, "{e}");
    // The corruption checks stayed off: this was all caught by the MACs.
    assert!(nodes.iter().all(|n| !n.corrupt.is_enabled()));
}

#[tokio::test]
async fn a_short_or_long_stream_fails_and_leaves_nothing_visible() {
    let (nodes, db) = cluster(3, 2).await;
    db.put(Record::new("x", b"old".to_vec())).await.unwrap();
    let len = (SEG * 5) as u64;
    // The reader ends early.
    let e = db.put_stream(RecordMeta::new("x"), len, Generator::new(1, len - 10)).await;
    let e = e.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput, "{e}");
    assert!(e.to_string().contains("ended after"), "{e}");
    // The reader runs on.
    let e = db.put_stream(RecordMeta::new("x"), len, Generator::new(1, len + 1)).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::InvalidInput);
    let e = db.put_stream(RecordMeta::new("x"), 10, Generator::new(1, 11)).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::InvalidInput);
    // The old version is intact and no segment was left behind.
    assert_eq!(db.get("x").await.unwrap().record.data, b"old");
    for n in &nodes {
        assert_eq!(segment_keys(&n.mem), 0);
    }
    let e = db.put_stream(RecordMeta::new(""), 10, &[0u8; 10][..]).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
}

#[tokio::test]
async fn scrub_restores_the_segments_of_a_wiped_backend() {
    let (nodes, db) = cluster(3, 2).await;
    let len = SEG * 5 + 7;
    let data = put_generated(&db, "w", 21, len).await;
    // Marks are not restored (a backend without one only sends reads to the listing path
    // until the next write).
    let before: Vec<String> =
        nodes[2].mem.keys().into_iter().filter(|k| !k.starts_with("vaultdb/m/")).collect();
    nodes[2].mem.clear();
    let report = db.scrub().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Manifest, six segments and the keyring, under the same keys.
    assert_eq!(report.restored, 8);
    assert_eq!(nodes[2].mem.keys(), before);
    // The restored shares are good: read with the other backends' shares corrupted.
    for n in &nodes[..2] {
        n.corrupt.set_enabled(true);
    }
    nodes[0].corrupt.set_enabled(false);
    let got = db.get_stream("w").await.unwrap().collect_bytes().await.unwrap();
    assert!(got == data);
}

#[tokio::test]
async fn abandoned_segments_are_removed_by_scrub() {
    let (nodes, db) = cluster(3, 2).await;
    db.put(Record::new("keep", b"k".to_vec())).await.unwrap();
    let len = (SEG * 3) as u64;
    db.put_stream(RecordMeta::new("gone"), len, Generator::new(3, len)).await.unwrap();
    // Remove the manifests: the segments are now an abandoned partial write.
    for n in &nodes {
        for key in n.mem.keys().into_iter().filter(|k| k.contains(&db.name_tag("gone").to_text())) {
            if !key.rsplit('/').next().unwrap().contains('-') {
                n.mem.raw_delete(&key);
            }
        }
    }
    assert_eq!(segment_keys(&nodes[0].mem), 3);
    assert_eq!(db.get("gone").await.unwrap_err().code(), ErrorCode::RecordNotFound);
    let report = db.scrub().await.unwrap();
    assert_eq!(report.removed, 9, "{report:?}");
    assert_eq!((report.pending, report.pending_until), (0, None), "nothing left pending");
    for n in &nodes {
        assert_eq!(segment_keys(&n.mem), 0);
    }
    assert_eq!(db.get("keep").await.unwrap().record.data, b"k");
}

/// What a backend learns of a segmented record's size (docs/SECURITY.md, "Sizes"): every
/// segment is padded on its own, so the full segments all have one size and the last one's
/// size pins the remainder to its Padmé class. Two records with as many segments and
/// remainders in one class look the same; remainders in different classes do not.
#[tokio::test]
async fn a_segmented_record_shows_its_segment_count_and_the_remainders_padding_class() {
    let (nodes, db) = cluster(3, 2).await;
    // The object sizes backend 0 holds for one record, sorted (the keyring excluded).
    let sizes = |db_nodes: &[Node]| {
        let mut s: Vec<usize> = db_nodes[0]
            .mem
            .snapshot()
            .into_iter()
            .filter(|(k, _)| k.contains("/r/"))
            .map(|(_, v)| v.len())
            .collect();
        s.sort_unstable();
        s
    };
    let mut seen = Vec::new();
    // Remainders: 1000 and 1001 share a Padmé class (after the segment header); 1000 and
    // 3000 do not.
    for rem in [1000usize, 1001, 3000] {
        db.put(Record::new("r", Generator::bytes(rem as u64, SEG * 2 + rem))).await.unwrap();
        db.flush().await; // the previous delete's tombstone is removed in the background
        let s = sizes(&nodes);
        assert_eq!(segment_keys(&nodes[0].mem), 3, "two full segments and the remainder");
        seen.push(s);
        db.delete("r").await.unwrap();
    }
    // Each full segment, and the last, is padded on its own: the object sizes differ only
    // where the padded remainders differ.
    assert_eq!(seen[0], seen[1], "remainders in one Padmé class look alike");
    assert_ne!(seen[0], seen[2], "remainders in different classes are told apart");
}
