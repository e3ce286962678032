//! Hostile values at every input the client takes from a user or a backend: record ids,
//! sizes, stream lengths, listings full of foreign or malformed keys, endless listings, and
//! share objects that are garbage. Each gets a clear error code (or is ignored, for keys
//! that are not ours) and leaves stored data unchanged.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use vaultdb_core::backend::{BackendError, ListPage, PutMode};
use vaultdb_core::{
    CallPolicy, ErrorCode, MemoryBackend, Record, RecordMeta, StorageBackend, VaultDb,
};
use vaultdb_testkit::Generator;

/// Listings return extra keys; gets of those keys return garbage; `endless` makes every
/// listing page point to itself.
#[derive(Debug)]
struct Hostile {
    inner: Arc<MemoryBackend>,
    extra: Vec<String>,
    endless: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl StorageBackend for Hostile {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        self.inner.put(key, data, mode).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        if self.extra.iter().any(|k| k == key) {
            return Ok(Some(Bytes::from_static(b"VDBS\x01\x01garbage that is not an envelope")));
        }
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.inner.delete(key).await
    }
    async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<ListPage, BackendError> {
        if self.endless.load(std::sync::atomic::Ordering::Relaxed) {
            // Cursors cycle a -> b -> a -> ...
            let next = if cursor.as_deref() == Some("a") { "b" } else { "a" };
            return Ok(ListPage { keys: vec![format!("{prefix}x")], next: Some(next.into()) });
        }
        let mut page = self.inner.list_page(prefix, cursor.clone()).await?;
        if cursor.is_none() {
            page.keys.extend(self.extra.iter().filter(|k| k.starts_with(prefix)).cloned());
        }
        Ok(page)
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
    // That delete left its tombstones, and nothing else: the rest must be as it was.
    let ks = vaultdb_core::naming::KeySpace::new("vaultdb").unwrap();
    for m in &mems {
        let tombs: Vec<String> = m
            .keys()
            .into_iter()
            .filter(|k| {
                matches!(ks.parse(k), Some(vaultdb_core::naming::ParsedKey::Tombstone { .. }))
            })
            .collect();
        assert_eq!(tombs.len(), 1, "one tombstone per backend: {tombs:?}");
        m.delete(&tombs[0]).await.unwrap();
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
