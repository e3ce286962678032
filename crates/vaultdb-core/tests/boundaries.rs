//! Hostile values at every input the client takes from a user or a backend: record ids,
//! sizes, stream lengths, listings full of foreign or malformed keys, endless listings, and
//! share objects that are garbage. Each gets a clear error code (or is ignored, for keys
//! that are not ours) and leaves stored data unchanged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vaultdb_core::backend::{BackendError, Key, KeyPrefix, ListEntry, ListFrom, ListPage};
use vaultdb_core::naming::NameTag;
use vaultdb_core::{
    BackendErrorKind, CallPolicy, ErrorCode, MemoryBackend, Record, RecordMeta, VaultDb,
};
use vaultdb_testkit::Generator;

/// What a [`Hostile`] backend serves for its extra keys.
static GARBAGE: Bytes = Bytes::from_static(b"VDBS\x01\x01garbage that is not an envelope");

/// Listings return extra keys; gets of those keys return garbage; `endless` makes every
/// listing page point to itself.
#[derive(Debug)]
struct Hostile {
    inner: Arc<MemoryBackend>,
    extra: Vec<String>,
    endless: std::sync::atomic::AtomicBool,
}

vaultdb_testkit::forward_backend! {
    impl StorageBackend for Hostile {
        forward id, name, put, delete to self.inner;

        async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
            if self.extra.iter().any(|k| k == key.as_str()) {
                return Ok(Some(GARBAGE.clone()));
            }
            self.inner.get(key, max_len).await
        }

        async fn list_page(
            &self,
            prefix: &KeyPrefix,
            from: ListFrom,
        ) -> Result<ListPage, BackendError> {
            if self.endless.load(std::sync::atomic::Ordering::Relaxed) {
                // Cursors cycle a -> b -> a -> ...
                let next = if from == ListFrom::Cursor("a".into()) { "b" } else { "a" };
                let key = Key::new(format!("{prefix}x")).unwrap();
                let entries = vec![ListEntry { key, size: 1 }];
                return Ok(ListPage { entries, next: Some(next.into()) });
            }
            let first = from == ListFrom::Start;
            let mut page = self.inner.list_page(prefix, from).await?;
            if first {
                page.entries.extend(
                    self.extra
                        .iter()
                        .filter(|k| k.starts_with(prefix.as_str()))
                        // Names that are not valid keys never leave a backend: as a real one,
                        // skip them (the others reach the client, which must ignore what is
                        // not its own).
                        .filter_map(|k| Key::new(k).ok())
                        .map(|key| ListEntry { key, size: GARBAGE.len() as u64 }),
                );
            }
            Ok(page)
        }
    }
}

fn policy() -> CallPolicy {
    CallPolicy {
        timeout: Duration::from_secs(2),
        max_attempts: 1,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    }
}

async fn store(extra: Vec<String>) -> (Vec<Arc<MemoryBackend>>, Arc<Hostile>, VaultDb) {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), format!("b{i}")))).collect();
    let hostile = Arc::new(Hostile {
        inner: mems[0].clone(),
        extra,
        endless: std::sync::atomic::AtomicBool::new(false),
    });
    let db = VaultDb::builder()
        .threshold(2)
        .call_policy(policy())
        .read_repair(false)
        .grace_period(Duration::ZERO)
        .segment_size(1024)
        .max_record_size(64 << 10)
        .backend_arc(hostile.clone())
        .backend_arc(mems[1].clone())
        .backend_arc(mems[2].clone())
        .open()
        .await
        .unwrap();
    (mems, hostile, db)
}

fn snapshot(mems: &[Arc<MemoryBackend>]) -> Vec<Vec<(String, Bytes)>> {
    mems.iter().map(|m| m.snapshot()).collect()
}

#[tokio::test]
async fn hostile_ids_and_sizes_are_invalid_input_and_change_nothing() {
    let (mems, _h, db) = store(vec![]).await;
    db.put(Record::new("kept", b"v".to_vec())).await.unwrap();
    let before = snapshot(&mems);
    let long = "x".repeat(256);
    let multibyte = "\u{e9}".repeat(128); // 256 bytes in 128 characters
    for id in ["", &long, &multibyte, "a\0b", "line\nbreak", "tab\t", "del\u{7f}", "c1\u{85}"] {
        let code = |e: vaultdb_core::VaultError| e.code();
        assert_eq!(
            code(db.put(Record::new(id, b"x".to_vec())).await.unwrap_err()),
            ErrorCode::InvalidInput,
            "{id:?}"
        );
        assert_eq!(code(db.get(id).await.unwrap_err()), ErrorCode::InvalidInput);
        assert_eq!(code(db.delete(id).await.unwrap_err()), ErrorCode::InvalidInput);
        assert_eq!(code(db.repair(id).await.unwrap_err()), ErrorCode::InvalidInput);
        assert_eq!(code(db.get_range(id, 0..1).await.unwrap_err()), ErrorCode::InvalidInput);
        let e = db.put_stream(RecordMeta::new(id), 1, &b"x"[..]).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        // Errors name the rule, never echo the id.
        if id.len() > 3 {
            assert!(!e.to_string().contains(id), "{e}");
        }
    }
    // Largest accepted id: 255 bytes.
    let max_id = "y".repeat(255);
    db.put(Record::new(max_id.as_str(), b"edge".to_vec())).await.unwrap();
    assert_eq!(db.get(&max_id).await.unwrap().record.data, b"edge");
    db.delete(&max_id).await.unwrap();
    // That delete left its tombstones and its mark, and nothing else: the rest must be as
    // it was.
    let ks = vaultdb_core::naming::KeySpace::new("vaultdb").unwrap();
    let mark = ks.mark_key(db.name_tag(&max_id));
    for m in &mems {
        assert!(m.raw_delete(mark.as_str()).is_some(), "the delete's mark");
        let tombs: Vec<String> = m
            .keys()
            .into_iter()
            .filter(|k| {
                matches!(ks.parse(k), Some(vaultdb_core::naming::ParsedKey::Tombstone { .. }))
            })
            .collect();
        assert_eq!(tombs.len(), 1, "one tombstone per backend: {tombs:?}");
        m.raw_delete(&tombs[0]);
    }
    // Over max_record_size: refused before anything is written.
    let e = db.put(Record::new("big", vec![0u8; (64 << 10) + 1])).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    // A stream whose length is a lie.
    let e = db.put_stream(RecordMeta::new("lie"), 10_000, Generator::new(1, 9_999)).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::InvalidInput);
    let e = db.put_stream(RecordMeta::new("lie"), u64::MAX, Generator::new(1, 10)).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::InvalidInput);
    assert_eq!(snapshot(&mems), before, "stored data unchanged");
}

#[tokio::test]
async fn foreign_and_malformed_listed_keys_are_ignored() {
    let real_tag_prefix = "vaultdb/r/";
    let extra: Vec<String> = vec![
        "vaultdb/r/../../etc/passwd".into(),
        "vaultdb/r/not-a-tag/garbage".into(),
        "vaultdb/r/00000000000000000000000000/zz.zz".into(),
        format!("{real_tag_prefix}{}", "a".repeat(10_000)),
        "vaultdb/r/\u{1F600}/x".into(),
        "vaultdb/r/0123456789abcdefghijklmnop/0123456789abcdefghijklmnop.00".into(),
        "vaultdb/r/0123456789abcdefghijklmnop/0123456789abcdefghijklmnop-zzzzzzzz".into(),
        "vaultdb/r/0123456789abcdefghijklmnop/0123456789abcdefghijklmnop-ffffffff".into(),
        "vaultdb/keyring.bak".into(),
        "elsewhere/r/x".into(),
        String::new(),
    ];
    let (mems, hostile, db) = store(extra).await;
    db.put(Record::new("alpha", b"a".to_vec())).await.unwrap();
    db.put(Record::new("beta", Generator::bytes(2, 5000))).await.unwrap();
    let before = snapshot(&mems);
    let listed = db.list().await.unwrap();
    assert_eq!(listed.ids, vec!["alpha".to_owned(), "beta".to_owned()]);
    assert_eq!(db.get("alpha").await.unwrap().record.data, b"a");
    assert!(db.get("beta").await.unwrap().record.data == Generator::bytes(2, 5000));
    let report = db.scrub().await.unwrap();
    assert_eq!(report.restored, 0, "{report:?}");
    assert_eq!(report.removed, 0, "keys that are not ours are never deleted: {report:?}");
    assert_eq!(snapshot(&mems), before);

    // A listing whose cursor never advances is an error, not a hang or a memory blow-up.
    hostile.endless.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let got = db.get("alpha").await.unwrap();
    assert_eq!(got.record.data, b"a", "the other two backends suffice");
    assert!(got.degraded());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(snapshot(&mems), before);
}

#[tokio::test]
async fn garbage_share_objects_are_named_not_trusted() {
    let (mems, _h, db) = store(vec![]).await;
    db.put(Record::new("r", b"right".to_vec())).await.unwrap();
    let key = mems[1].keys().into_iter().find(|k| k.contains("/r/")).unwrap();
    let original = mems[1].raw_get(&key).unwrap();
    let mut huge_len = original.to_vec();
    huge_len[41..45].copy_from_slice(&u32::MAX.to_be_bytes());
    for bad in [
        Vec::new(),
        b"VDBS".to_vec(),
        vec![0xff; 4096],
        original[..original.len() - 1].to_vec(),
        [&original[..], b"x"].concat(),
        huge_len,
    ] {
        mems[1].raw_put(key.clone(), bad);
        let got = db.get("r").await.unwrap();
        assert_eq!(got.record.data, b"right");
        // The read needs only two shares, so it may not have read b1's; if it did, b1 is
        // named. Scrub reads all three: it names b1 and rewrites its share, byte for byte.
        assert!(got.bad_backends.is_empty() || got.bad_backends == ["b1"], "{got:?}");
        let report = db.scrub().await.unwrap();
        assert_eq!(report.restored, 1, "{report:?}");
        assert_eq!(mems[1].raw_get(&key).unwrap(), original);
    }
    mems[1].raw_put(key, original);
    assert!(db.get("r").await.unwrap().bad_backends.is_empty());
}

/// Records the limit of every `get`, and whether the backend refused the object as too
/// large.
#[derive(Debug)]
struct Limits {
    inner: Arc<MemoryBackend>,
    gets: std::sync::Mutex<Vec<(String, u64, bool)>>,
}

vaultdb_testkit::forward_backend! {
    impl StorageBackend for Limits {
        forward id, name, put, delete, list_page to self.inner;

        async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
            let r = self.inner.get(key, max_len).await;
            let too_large = r.as_ref().is_err_and(|e| e.kind() == BackendErrorKind::TooLarge);
            self.gets.lock().unwrap().push((key.to_string(), max_len, too_large));
            r
        }
    }
}

impl Limits {
    /// The gets of keys containing `part` so far: (limit, refused as too large).
    fn gets_of(&self, part: &str) -> Vec<(u64, bool)> {
        let gets = self.gets.lock().unwrap();
        gets.iter().filter(|(k, _, _)| k.contains(part)).map(|(_, m, t)| (*m, *t)).collect()
    }
}

async fn limited_store() -> (Vec<Arc<MemoryBackend>>, Vec<Arc<Limits>>, VaultDb) {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), format!("b{i}")))).collect();
    let limits: Vec<Arc<Limits>> = mems
        .iter()
        .map(|m| Arc::new(Limits { inner: m.clone(), gets: Default::default() }))
        .collect();
    let mut b = VaultDb::builder()
        .threshold(2)
        .call_policy(policy())
        .read_repair(false)
        .hedge_after(None)
        .max_record_size(64 << 10);
    for l in &limits {
        b = b.backend_arc(l.clone());
    }
    (mems, limits, b.open().await.unwrap())
}

#[tokio::test]
async fn an_oversized_share_costs_its_listed_size_and_is_named() {
    let (mems, limits, db) = limited_store().await;
    db.put(Record::new("r", b"right".to_vec())).await.unwrap();
    let key = mems[1].keys().into_iter().find(|k| k.contains("/r/")).unwrap();
    let original = mems[1].raw_get(&key).unwrap();
    let size = original.len() as u64;
    // Backend 1's share turns into 8 MiB (a truncated-up file, a hostile store).
    mems[1].raw_put(key.clone(), vec![0u8; 8 << 20]);
    // Repair reads every share: the two that agree on the size set the limit for all three.
    let report = db.repair("r").await.unwrap();
    assert_eq!(report.restored, ["b1"], "{report:?}");
    assert_eq!(mems[1].raw_get(&key).unwrap(), original, "rewritten byte for byte");
    assert_eq!(limits[1].gets_of("/r/"), [(size, true)], "refused at the listed size");
    for l in [&limits[0], &limits[2]] {
        assert_eq!(l.gets_of("/r/"), [(size, false)]);
    }
    // A share that is the listed size but differs from what the others agree on is bad too,
    // without being read past that size.
    mems[1].raw_put(key.clone(), [&original[..], b"x"].concat());
    let got = db.get("r").await.unwrap();
    assert_eq!(got.record.data, b"right");
    let report = db.scrub().await.unwrap();
    assert_eq!(report.restored, 1, "{report:?}");
    assert!(limits[1].gets_of("/r/").iter().all(|(max, _)| *max == size));
}

#[tokio::test]
async fn without_agreement_reads_stop_at_the_settings_bound() {
    let (mems, limits, db) = limited_store().await;
    db.put(Record::new("r", b"right".to_vec())).await.unwrap();
    // Each backend's share has its own key (the names carry the backend's id share).
    let share_key = |i: usize| mems[i].keys().into_iter().find(|k| k.contains("/r/")).unwrap();
    let (key1, key2) = (share_key(1), share_key(2));
    let original = mems[2].raw_get(&key2).unwrap();
    // Three different sizes: no two holders agree, so each is read up to the largest share
    // a record of max_record_size (64 KiB) can make, about 1 MiB, never 8 MiB.
    mems[1].raw_put(key1, vec![0u8; 8 << 20]);
    mems[2].raw_put(key2, [&original[..], b"x"].concat());
    let e = db.get("r").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HmacFailed, "{e}");
    let vaultdb_core::VaultError::HmacFailed { bad_backends, .. } = &e else { unreachable!() };
    let mut bad = bad_backends.clone();
    bad.sort();
    assert_eq!(bad, ["b1", "b2"], "{e}");
    let reason = e.outcomes().iter().find(|o| o.backend == "b1").unwrap().status.clone();
    assert!(format!("{reason:?}").contains("too large"), "{reason:?}");
    let (max, refused) = limits[1].gets_of("/r/")[0];
    assert!(refused);
    assert!(max > 64 << 10 && max < 2 << 20, "{max}");
}

#[tokio::test]
async fn an_oversized_keyring_slot_is_a_bad_slot_not_an_outage() {
    let (mems, limits, db) = limited_store().await;
    db.put(Record::new("r", b"right".to_vec())).await.unwrap();
    drop(db);
    let original = mems[2].raw_get("vaultdb/keyring").unwrap();
    mems[2].raw_put("vaultdb/keyring", vec![0u8; 4 << 20]);
    let mut b = VaultDb::builder().threshold(2).call_policy(policy()).read_repair(false);
    for l in &limits {
        b = b.backend_arc(l.clone());
    }
    let db = b.open().await.unwrap();
    assert_eq!(db.get("r").await.unwrap().record.data, b"right");
    assert_eq!(mems[2].raw_get("vaultdb/keyring").unwrap().len(), original.len(), "rewritten");
    let slot = limits[2].gets_of("keyring");
    assert!(slot.iter().any(|(max, refused)| *refused && *max == 64 << 10), "{slot:?}");
}

/// A backend that lies in its listings, one of two ways:
/// - `Flood`: every listing of a record's prefix is pages of 1,000 new, well-formed share
///   names of that record (segments of ever newer versions) under ever new cursors: a
///   listing that never ends, in the client's own format;
/// - `Decoys` (once `on`): every listing of the records from a point is 200 made-up records
///   just after that point (well-formed share names under tags nobody else holds), so each
///   page ends where its listing does.
#[derive(Debug)]
struct Liar {
    inner: Arc<MemoryBackend>,
    lie: Lie,
    pages: std::sync::atomic::AtomicUsize,
    on: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lie {
    Flood,
    Decoys,
}

impl Liar {
    fn new(inner: Arc<MemoryBackend>, lie: Lie) -> Self {
        Liar { inner, lie, pages: Default::default(), on: Default::default() }
    }

    fn flood(&self, prefix: &KeyPrefix) -> ListPage {
        let page = self.pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let entries = (0..1000u64)
            .map(|i| {
                let v = vaultdb_core::Version::from_parts(1, (page as u64) << 10 | i);
                let key = Key::new(format!("{prefix}{}-{:08x}", v.to_text(), i)).unwrap();
                ListEntry { key, size: 1 }
            })
            .collect();
        ListPage { entries, next: Some(format!("c{page}")) }
    }

    fn decoys(prefix: &KeyPrefix, from: &ListFrom) -> ListPage {
        // The tag the walk resumes after (`<p>/r/<tag>/~`), or zero at the start.
        let after = match from {
            ListFrom::After(k) => k.as_str().rsplit('/').nth(1).and_then(NameTag::from_text),
            _ => None,
        };
        let base = u128::from_be_bytes(after.map_or([0; 16], |t| t.0));
        let entries = (1..=200u128)
            .map(|i| {
                let tag = NameTag((base + i).to_be_bytes()).to_text();
                let v = vaultdb_core::Version::from_parts(1, 1).to_text();
                let key = Key::new(format!("{prefix}{tag}/{v}-00000000")).unwrap();
                ListEntry { key, size: 1 }
            })
            .collect();
        ListPage { entries, next: Some("more".into()) }
    }
}

vaultdb_testkit::forward_backend! {
    impl StorageBackend for Liar {
        forward id, name, put, delete, get to self.inner;

        async fn list_page(
            &self,
            prefix: &KeyPrefix,
            from: ListFrom,
        ) -> Result<ListPage, BackendError> {
            // A record's prefix is `<p>/r/<26-character tag>/`; the records' is `<p>/r/`.
            let record = prefix.as_str().rsplit('/').nth(1).is_some_and(|t| t.len() == 26);
            let records = prefix.as_str().ends_with("/r/");
            let on = self.on.load(std::sync::atomic::Ordering::Relaxed);
            match self.lie {
                Lie::Flood if record => Ok(self.flood(prefix)),
                Lie::Decoys if on && records => Ok(Self::decoys(prefix, &from)),
                _ => self.inner.list_page(prefix, from).await,
            }
        }
    }
}

/// One backend flooding a record's listing costs the put's cleanup, repair, scrub, get and
/// delete a bounded listing (the record cap: 64 versions of the largest record's segments,
/// and 4,096 more), not the 10 million keys a whole-store listing may hold: before, the
/// cleanup after a put held over 4 GiB within 15 s, repair and scrub alike.
#[tokio::test]
async fn a_backend_flooding_a_record_listing_costs_a_bounded_listing() {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), format!("b{i}")))).collect();
    let flood = Arc::new(Liar::new(mems[2].clone(), Lie::Flood));
    let mut b = VaultDb::builder().threshold(2).call_policy(policy()).hedge_after(None);
    for m in &mems[..2] {
        b = b.backend_arc(m.clone());
    }
    let db = b.backend_arc(flood.clone()).write_quorum(2).open().await.unwrap();
    // Defaults: 256 MiB records in 4 MiB segments, so (64 + 1) x 64 + 4096 = 8256 entries.
    let cap_pages = 8256 / 1000 + 1;
    let pages = || flood.pages.swap(0, std::sync::atomic::Ordering::Relaxed);

    db.put(Record::new("r", b"data".to_vec())).await.unwrap();
    db.flush().await;
    let put_pages = pages();
    assert_eq!(db.get("r").await.unwrap().record.data, b"data");
    let report = db.repair("r").await.unwrap();
    assert!(!report.problems.is_empty(), "the flooding backend is reported: {report:?}");
    let repair_pages = pages();
    db.delete("r").await.unwrap();
    let delete_pages = pages();
    for (what, n) in [("put", put_pages), ("repair", repair_pages), ("delete", delete_pages)] {
        // Each listing of the record stops at the cap (repair lists twice: before and
        // after it rewrites).
        let most = 2 * cap_pages * policy().max_attempts as usize;
        assert!((1..=most).contains(&n), "{what}: {n} pages listed (at most {most})");
    }
}

/// One backend listing decoys (records of its own making, just after wherever a page
/// starts) does not starve a page walk: the walk still returns every record. Before, every
/// page ended at the decoys, held no id, and the walk never reached a real record.
#[tokio::test]
async fn a_backend_listing_decoys_does_not_starve_a_page_walk() {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..3).map(|i| Arc::new(MemoryBackend::new(format!("b{i}"), format!("b{i}")))).collect();
    let decoys = Arc::new(Liar::new(mems[0].clone(), Lie::Decoys));
    let b = VaultDb::builder().threshold(2).call_policy(policy()).hedge_after(None);
    let db = b.backend_arc(decoys.clone()).backend_arc(mems[1].clone());
    let db = db.backend_arc(mems[2].clone()).open().await.unwrap();
    let want: Vec<String> = (0..30).map(|i| format!("rec-{i}")).collect();
    for id in &want {
        db.put(Record::new(id.clone(), b"x".to_vec())).await.unwrap();
    }
    decoys.on.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = db.list_page(cursor.as_deref(), 10).await.unwrap();
        got.extend(page.ids);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want, "a walk of 100 pages");
}
