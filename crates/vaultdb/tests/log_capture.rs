//! Every log line the server and the client emit, at TRACE level, while records with
//! recognisable ids, data, metadata and tokens go through the REST API and the library,
//! with backends corrupting, failing and recovering so that every warning path fires. No
//! line may contain an id, a byte of record data, a metadata value or a bearer token.
//!
//! This binary installs a global subscriber, so it holds only this test.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{ADMIN_TOKEN, READ_TOKEN, TestServer, WRITE_TOKEN, limits, quick_policy, tokens};
use serde_json::json;
use vaultdb::server::AppState;
use vaultdb_core::{MemoryBackend, Record, RecordMeta, StorageBackend, VaultDb};
use vaultdb_testkit::{Corrupting, Failing, Generator};

/// A writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const ID: &str = "patient-7781-zebra";
const RAW_ID: &str = "scan/ct-4411-okapi";
const BIG_ID: &str = "archive-5590-quokka";
const DATA_MARK: &str = "SSN-123-45-6789";
const META_MARK: &str = "diagnosis-narwhal";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_ids_data_metadata_or_tokens() {
    let capture = Capture::default();
    let sink = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    // Backend 1 corrupts some reads; backend 2 can be taken down.
    let corrupting = Corrupting::new(MemoryBackend::new("mem-1", "Memory 1"));
    let corrupt = corrupting.handle();
    corrupt.set_enabled(false);
    let failing = Failing::new(MemoryBackend::new("mem-2", "Memory 2"));
    let down = failing.handle();
    let backends: Vec<Arc<dyn StorageBackend>> = vec![
        Arc::new(corrupting),
        Arc::new(failing),
        Arc::new(MemoryBackend::new("mem-3", "Memory 3")),
    ];
    let mut b = VaultDb::builder()
        .threshold(2)
        .write_quorum(2)
        .call_policy(quick_policy())
        .segment_size(1024);
    for be in &backends {
        b = b.backend_arc(be.clone());
    }
    let db = b.open().await.unwrap();
    let s = TestServer::start(AppState::new(db.clone(), tokens(), None, limits())).await;
    let enc = |id: &str| id.replace('/', "%2F");
    let raw_path = format!("/v1/records/{}/raw", enc(RAW_ID));

    // REST: JSON and raw records, reads, lists, a degraded read, a corrupted read, errors.
    let r = s.put_json(ID, json!({"ssn": DATA_MARK, "dx": META_MARK}), WRITE_TOKEN).await;
    assert!(r.status().is_success(), "{}", r.status());
    let put_raw = s.request(reqwest::Method::PUT, &raw_path, Some(WRITE_TOKEN));
    let r = s.send(put_raw.body(format!("raw {DATA_MARK} raw"))).await;
    assert!(r.status().is_success());
    for path in [format!("/v1/records/{ID}"), raw_path] {
        let r = s.get(&path, Some(READ_TOKEN)).await;
        assert!(r.status().is_success(), "{path}");
    }
    corrupt.set_enabled(true);
    down.set_down(true);
    let r = s.get(&format!("/v1/records/{ID}"), Some(READ_TOKEN)).await;
    assert_eq!(r.status().as_u16(), 502, "one corrupt and one down: HMAC_FAILED");
    down.set_down(false);
    corrupt.set_enabled(false);
    s.get("/v1/records?limit=10", Some(ADMIN_TOKEN)).await;
    s.get(&format!("/v1/records/{ID}"), Some("wrong-token-xyz")).await;
    s.get("/v1/records/missing-kiwi-0042", Some(READ_TOKEN)).await;
    let repair = format!("/v1/records/{ID}/repair");
    s.send(s.request(reqwest::Method::POST, &repair, Some(ADMIN_TOKEN))).await;
    s.delete(&format!("/v1/records/{}", enc(RAW_ID)), WRITE_TOKEN).await;

    // The library: a segmented record with a corrupted segment, degraded reads, scrub.
    let len = 5000u64;
    db.put_stream(
        RecordMeta::new(BIG_ID).with_metadata("k", META_MARK),
        len,
        Generator::new(3, len),
    )
    .await
    .unwrap();
    corrupt.set_enabled(true);
    let got = db.get_stream(BIG_ID).await.unwrap().collect_bytes().await.unwrap();
    assert_eq!(got, Generator::bytes(3, len as usize));
    corrupt.set_enabled(false);
    down.set_down(true);
    db.put(Record::new(ID, format!("v2 {DATA_MARK}").into_bytes())).await.unwrap();
    down.set_down(false);
    db.get(ID).await.unwrap();
    db.scrub().await.unwrap();
    s.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("degraded"), "the warning paths ran:\n{logs}");
    assert!(logs.contains("bad share"), "the tamper paths ran:\n{logs}");
    for secret in [
        "patient-7781",
        "ct-4411",
        "archive-5590",
        "kiwi-0042",
        "zebra",
        "okapi",
        "quokka",
        DATA_MARK,
        "123-45",
        META_MARK,
        "narwhal",
        READ_TOKEN,
        WRITE_TOKEN,
        ADMIN_TOKEN,
        "wrong-token-xyz",
    ] {
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("{secret:?} leaked into the logs: {line}");
        }
    }
    // The generator's bytes are binary; check a run of them is not printed in any form.
    let sample = Generator::bytes(3, 16);
    let hex: String = sample.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!logs.contains(&hex), "record bytes leaked (hex)");
    assert!(!logs.contains(&format!("{:?}", &sample[..8])), "record bytes leaked (Debug)");
}
