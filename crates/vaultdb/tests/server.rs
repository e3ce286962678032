// This file is long because it covers the whole REST API over a real socket (authentication and
// roles, JSON and raw bodies, errors, pagination, metrics, audit), a test per area around one
// fixture.
//! The REST server over a real loopback socket: authentication and roles, JSON and raw
//! round trips, error mapping (400, 404, 413, 503), pagination, metrics and the audit log.
//! Requests go through `TestServer`'s helpers (tests/common), one line each.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    ADMIN_TOKEN, READ_TOKEN, TestServer, WRITE_TOKEN, error_code, limits, memory_store, open_store,
    tokens,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vaultdb::audit::AuditLog;
use vaultdb::server::{AppState, Limits};
use vaultdb_core::{MemoryBackend, StorageBackend};
use vaultdb_testkit::{Failing, FailingHandle, Slow};

async fn server() -> TestServer {
    TestServer::start(AppState::new(memory_store().await, tokens(), None, limits())).await
}

/// Percent-encodes a query value (every byte but unreserved ones).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_401() {
    let s = server().await;
    for header in
        [None, Some("Bearer wrong-token"), Some("Basic YWRtaW46YWRtaW4="), Some("Bearer ")]
    {
        let mut req = s.request(Method::GET, "/v1/records", None);
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let resp = s.send(req).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_eq!(error_code(resp).await, "UNAUTHORIZED");
    }
    // Unauthenticated writes are refused before the body is even read.
    let resp = s.send(s.request(Method::PUT, "/v1/records", None).body("{not json")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Public routes need no token.
    for path in ["/health", "/openapi.json"] {
        assert_eq!(s.get(path, None).await.status(), StatusCode::OK, "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_read_write_admin() {
    let s = server().await;
    let resp = s.put_json("r", json!(1), READ_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(resp).await, "FORBIDDEN");
    assert_eq!(s.put_json("r", json!(1), WRITE_TOKEN).await.status(), StatusCode::CREATED);
    assert_eq!(s.put_json("r", json!(1), ADMIN_TOKEN).await.status(), StatusCode::CREATED);

    assert_eq!(s.get("/v1/records/r", Some(READ_TOKEN)).await.status(), StatusCode::OK);
    assert_eq!(s.get("/metrics", Some(READ_TOKEN)).await.status(), StatusCode::OK);
    assert_eq!(s.delete("/v1/records/r", READ_TOKEN).await.status(), StatusCode::FORBIDDEN);
    let resp = s.get("/v1/status", Some(WRITE_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(resp).await, "FORBIDDEN");
    let resp = s.get("/v1/status", Some(ADMIN_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let st: Value = resp.json().await.unwrap();
    assert_eq!(
        (st["k"].as_u64(), st["n"].as_u64(), st["margin"].as_i64()),
        (Some(2), Some(3), Some(1))
    );
    assert_eq!(st["backends"].as_array().unwrap().len(), 3);
    let repair = |token| s.send(s.request(Method::POST, "/v1/records/r/repair", Some(token)));
    assert_eq!(repair(WRITE_TOKEN).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(repair(ADMIN_TOKEN).await.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_round_trip() {
    let s = server().await;
    let data = json!({"name": "Alice", "ssn": "***-**-****", "tags": [1, 2.5, null, true], "nested": {"a": {}}});
    let resp = s.put_json("user-42", data.clone(), WRITE_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let put: Value = resp.json().await.unwrap();
    assert_eq!(put["id"], "user-42");
    assert_eq!(put["acks"], 3);
    let v1 = put["version"].as_str().unwrap().to_owned();

    let resp = s.get("/v1/records/user-42", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-vaultdb-version"], v1.as_str());
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["id"], "user-42");
    assert_eq!(got["data"], data);
    assert_eq!(got["version"], v1.as_str());
    assert_eq!(got["content_type"], "application/json");

    // POST stores too, as a new version; scalars are JSON values like any other.
    let body = json!({"id": "user-42", "data": "just a string"});
    let resp = s.send(s.request(Method::POST, "/v1/records", Some(WRITE_TOKEN)).json(&body)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got = s.get_json("/v1/records/user-42", READ_TOKEN).await;
    assert_eq!(got["data"], "just a string");
    assert!(got["version"].as_str().unwrap() > v1.as_str(), "newer version");

    // Ids with slashes, spaces and non-ASCII travel percent-encoded.
    let id = "dir/sub file ü";
    assert_eq!(s.put_json(id, json!([1]), WRITE_TOKEN).await.status(), StatusCode::CREATED);
    let got = s.get_json("/v1/records/dir%2Fsub%20file%20%C3%BC", READ_TOKEN).await;
    assert_eq!(got["id"], id);
    assert_eq!(got["data"], json!([1]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_records_round_trip_with_their_content_type() {
    let s = server().await;
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 0]).collect();
    let put_raw = |path: &str| s.request(Method::PUT, path, Some(WRITE_TOKEN));
    let req = put_raw("/v1/records/photo/raw").header("content-type", "image/png");
    assert_eq!(s.send(req.body(bytes.clone())).await.status(), StatusCode::CREATED);
    let resp = s.get("/v1/records/photo/raw", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    // The JSON view of a non-JSON record carries base64.
    let got = s.get_json("/v1/records/photo", READ_TOKEN).await;
    assert!(got.get("data").is_none());
    // Standard base64 with padding, as `base64 -d` and Python's b64decode read it.
    let b64 = got["data_base64"].as_str().unwrap();
    assert_eq!(data_encoding::BASE64.decode(b64.as_bytes()).unwrap(), bytes);

    // data_base64 on input: standard or URL-safe, padded or not; with a content type and
    // metadata, which come back in the JSON view and as X-Vaultdb-Meta-* headers.
    for (i, b64) in
        [data_encoding::BASE64.encode(&bytes), data_encoding::BASE64URL_NOPAD.encode(&bytes)]
            .iter()
            .enumerate()
    {
        let path = format!("/v1/records/b64-{i}");
        let body = json!({
            "id": format!("b64-{i}"),
            "data_base64": b64,
            "content_type": "image/png",
            "metadata": {"owner": "ops", "n": "1"},
        });
        let req = s.request(Method::PUT, "/v1/records", Some(WRITE_TOKEN)).json(&body);
        assert_eq!(s.send(req).await.status(), StatusCode::CREATED, "{b64}");
        let got = s.get_json(&path, READ_TOKEN).await;
        assert_eq!(
            data_encoding::BASE64.decode(got["data_base64"].as_str().unwrap().as_bytes()).unwrap(),
            bytes
        );
        assert_eq!(got["content_type"], "image/png");
        assert_eq!(got["metadata"], json!({"n": "1", "owner": "ops"}));
        let resp = s.get(&format!("{path}/raw"), Some(READ_TOKEN)).await;
        assert_eq!(resp.headers()["x-vaultdb-meta-owner"], "ops");
    }
    for (body, says) in [
        (json!({"id": "x", "data_base64": "not base64!"}), "not base64"),
        (json!({"id": "x", "data": 1, "data_base64": "AA=="}), "not both"),
        (json!({"id": "x"}), "required"),
        (json!({"id": "x", "data": 1, "content_type": "text/plain"}), "content_type goes with"),
    ] {
        let req = s.request(Method::PUT, "/v1/records", Some(WRITE_TOKEN)).json(&body);
        let resp = s.send(req).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(resp.text().await.unwrap().contains(says), "{body}");
    }
    // Raw puts take metadata from X-Vaultdb-Meta-* headers.
    let req = put_raw("/v1/records/tagged/raw").header("x-vaultdb-meta-tier", "gold");
    assert_eq!(s.send(req.body("t")).await.status(), StatusCode::CREATED);
    assert_eq!(
        s.get_json("/v1/records/tagged", READ_TOKEN).await["metadata"],
        json!({"tier": "gold"})
    );

    // No content type: stored without one, served as octet-stream; empty bodies are fine.
    assert_eq!(s.send(put_raw("/v1/records/empty/raw")).await.status(), StatusCode::CREATED);
    let resp = s.get("/v1/records/empty/raw", Some(READ_TOKEN)).await;
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert!(resp.bytes().await.unwrap().is_empty());

    // A JSON record read raw comes back as the JSON text.
    s.put_json("j", json!({"x": 1}), WRITE_TOKEN).await;
    let resp = s.get("/v1/records/j/raw", Some(READ_TOKEN)).await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), "{\"x\":1}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_records_are_404_and_deletes_are_204() {
    let s = server().await;
    for (method, path) in [
        (Method::GET, "/v1/records/nobody"),
        (Method::GET, "/v1/records/nobody/raw"),
        (Method::DELETE, "/v1/records/nobody"),
    ] {
        let resp = s.send(s.request(method.clone(), path, Some(ADMIN_TOKEN))).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(error_code(resp).await, "RECORD_NOT_FOUND");
    }
    s.put_json("gone", json!(1), WRITE_TOKEN).await;
    assert_eq!(s.delete("/v1/records/gone", WRITE_TOKEN).await.status(), StatusCode::NO_CONTENT);
    let resp = s.get("/v1/records/gone", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Unknown routes and methods get JSON errors too.
    let resp = s.get("/v2/nothing", None).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(resp).await, "NOT_FOUND");
    let resp = s.send(s.request(Method::PATCH, "/v1/records", None)).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(resp).await, "METHOD_NOT_ALLOWED");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_bodies_are_400_with_a_code() {
    let s = server().await;
    for (body, code) in [
        ("{\"id\": \"x\", \"data\": ", "INVALID_REQUEST"),
        ("not json at all", "INVALID_REQUEST"),
        ("{\"id\": \"x\"}", "INVALID_REQUEST"),
        ("{\"data\": 1}", "INVALID_REQUEST"),
        ("{\"id\": 7, \"data\": 1}", "INVALID_REQUEST"),
        ("{\"id\": \"x\", \"data\": 1, \"extra\": true}", "INVALID_REQUEST"),
        ("[]", "INVALID_REQUEST"),
        ("", "INVALID_REQUEST"),
        ("{\"id\": \"\", \"data\": 1}", "INVALID_INPUT"),
        ("{\"id\": \"a\\u0001b\", \"data\": 1}", "INVALID_INPUT"),
    ] {
        let req = s
            .request(Method::PUT, "/v1/records", Some(WRITE_TOKEN))
            .header("content-type", "application/json")
            .body(body);
        let resp = s.send(req).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(resp).await, code, "{body}");
    }
    let resp = s.put_json(&"x".repeat(256), json!(1), WRITE_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "INVALID_INPUT");
    for (path, code) in [
        ("/v1/records/a%01b", "INVALID_INPUT"),
        ("/v1/records/%FF%FE", "INVALID_REQUEST"),
        (&format!("/v1/records/{}", "y".repeat(300)), "INVALID_INPUT"),
    ] {
        let resp = s.get(path, Some(READ_TOKEN)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(resp).await, code, "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413() {
    // JSON bodies are held in memory: body_limit. Raw bodies stream: the store's
    // max_record_size, checked against Content-Length before anything is read.
    let small = Limits { body_limit: 1024, request_timeout: Duration::from_secs(10) };
    let db = common::memory_store_up_to(1024).await;
    let s = TestServer::start(AppState::new(db, tokens(), None, small)).await;
    let put_raw = |len: usize| {
        s.send(
            s.request(Method::PUT, "/v1/records/big/raw", Some(WRITE_TOKEN)).body(vec![7u8; len]),
        )
    };
    let resp = put_raw(2048).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "PAYLOAD_TOO_LARGE");
    let resp = s.put_json("big", json!("z".repeat(2000)), WRITE_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "PAYLOAD_TOO_LARGE");
    // Just under the limit is fine.
    assert_eq!(put_raw(1024).await.status(), StatusCode::CREATED);
    s.stop().await;
}

struct Flaky {
    server: TestServer,
    handles: Vec<FailingHandle>,
}

async fn flaky_server() -> Flaky {
    let mut handles = Vec::new();
    let mut backends: Vec<Arc<dyn StorageBackend>> = Vec::new();
    for i in 1..=3 {
        let f = Failing::new(MemoryBackend::new(format!("mem-{i}"), format!("Memory {i}")));
        handles.push(f.handle());
        backends.push(Arc::new(f));
    }
    // Hedging off: a read then waits for every backend's listing, so a backend that is down
    // is always noticed (with hedging on, a read that does not need it may skip it).
    let mut b = vaultdb_core::VaultDb::builder()
        .threshold(2)
        .call_policy(common::quick_policy())
        .hedge_after(None);
    for backend in backends {
        b = b.backend_arc(backend);
    }
    let db = b.open().await.expect("open store");
    Flaky { server: TestServer::start(AppState::new(db, tokens(), None, limits())).await, handles }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_backends_are_503_and_degraded_reads_are_flagged() {
    let Flaky { server: s, handles } = flaky_server().await;
    assert_eq!(s.put_json("r", json!({"v": 1}), WRITE_TOKEN).await.status(), StatusCode::CREATED);

    // One backend down: reads still work, flagged as degraded.
    handles[0].set_down(true);
    let resp = s.get("/v1/records/r", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-vaultdb-degraded"], "true");
    let h: Value = s.get("/health", None).await.json().await.unwrap();
    assert_eq!(h["status"], "degraded");

    // Two down: below the threshold.
    handles[1].set_down(true);
    let resp = s.get("/v1/records/r", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "INSUFFICIENT_SHARES");
    let backends = v["error"]["backends"].as_array().expect("per-backend outcomes");
    assert_eq!(backends.len(), 3);
    assert!(backends.iter().any(|b| b["backend"] == "mem-1" && b["status"] == "failed"), "{v}");
    assert!(!v.to_string().contains("injected"), "backend messages stay in the logs: {v}");

    let resp = s.put_json("r2", json!(2), WRITE_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(resp).await, "BACKEND_ERROR");
    let resp = s.get("/v1/records", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(resp).await, "INSUFFICIENT_SHARES");
    let resp = s.get("/health", None).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "unavailable");

    // Back up: everything works again, and the degraded read was counted.
    for h in &handles {
        h.heal();
    }
    assert_eq!(s.get("/v1/records/r", Some(READ_TOKEN)).await.status(), StatusCode::OK);
    let metrics = s.get("/metrics", Some(READ_TOKEN)).await.text().await.unwrap();
    let degraded: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vaultdb_degraded_reads_total "))
        .expect("degraded reads counter")
        .parse()
        .unwrap();
    assert!(degraded >= 1, "{metrics}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_backends_hit_the_request_timeout() {
    let slow: Vec<Slow<MemoryBackend>> = (1..=3)
        .map(|i| Slow::new(MemoryBackend::new(format!("m{i}"), "slow"), Duration::ZERO))
        .collect();
    let ctl: Vec<_> = slow.iter().map(Slow::handle).collect();
    let db = open_store(slow.into_iter().map(|b| Arc::new(b) as Arc<dyn StorageBackend>).collect())
        .await;
    let l = Limits { body_limit: 1 << 20, request_timeout: Duration::from_millis(300) };
    let s = TestServer::start(AppState::new(db, tokens(), None, l)).await;
    for c in &ctl {
        c.set_delay(Duration::from_secs(2));
    }
    let started = std::time::Instant::now();
    let resp = s.get("/v1/records/x", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(resp).await, "REQUEST_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(2), "cut at the timeout");
    for c in &ctl {
        c.set_delay(Duration::ZERO);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paginates_in_name_tag_order_with_an_opaque_cursor() {
    let s = server().await;
    let mut ids: Vec<String> = ["delta", "alpha", "echo", "charlie", "bravo", "golf", "foxtrot"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for id in &ids {
        assert_eq!(s.put_json(id, json!(id), WRITE_TOKEN).await.status(), StatusCode::CREATED);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v1/records?limit=3".to_owned();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&percent(c));
        }
        let page = s.get_json(&path, READ_TOKEN).await;
        pages += 1;
        let got: Vec<String> = page["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert!(got.len() <= 3);
        seen.extend(got);
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => {
                assert!(page["next"].is_null());
                break;
            }
        }
        assert!(pages < 10, "pagination terminates");
    }
    assert_eq!(pages, 3);
    // Name-tag order: every id once, in an order unrelated to the ids.
    seen.sort();
    assert_eq!(seen, ids);

    let all = s.get_json("/v1/records", READ_TOKEN).await;
    assert_eq!(all["ids"].as_array().unwrap().len(), 7);
    assert!(all["next"].is_null());
    // The cursor is opaque: an id, or anything the store did not hand out, is refused.
    for c in ["delta", "c1.notatag"] {
        let resp = s.get(&format!("/v1/records?cursor={c}"), Some(READ_TOKEN)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{c}");
    }
    for q in ["limit=0", "limit=1001", "limit=abc", "limit=-1"] {
        let resp = s.get(&format!("/v1/records?{q}"), Some(READ_TOKEN)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(error_code(resp).await, "INVALID_REQUEST", "{q}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status() {
    let s = server().await;
    for _ in 0..2 {
        s.get("/v1/records", Some(READ_TOKEN)).await;
    }
    s.get("/v1/records/missing", Some(READ_TOKEN)).await;
    s.get("/v1/records/missing", None).await;
    s.get("/nowhere", None).await;
    let resp = s.get("/metrics", Some(READ_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for want in [
        "vaultdb_http_requests_total{method=\"GET\",route=\"/v1/records\",status=\"200\"} 2",
        "vaultdb_http_requests_total{method=\"GET\",route=\"/v1/records/{id}\",status=\"404\"} 1",
        "vaultdb_http_requests_total{method=\"GET\",route=\"/v1/records/{id}\",status=\"401\"} 1",
        "vaultdb_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "vaultdb_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/records\"} 2",
        "# TYPE vaultdb_http_request_duration_seconds histogram",
        "vaultdb_bad_shares_total 0",
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("missing\""), "no concrete ids in labels");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_names_actors_and_tags_never_ids_or_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let db = memory_store().await;
    let tag = db.name_tag("patient-7").to_text();
    let log = AuditLog::new(&path, &db);
    let s = TestServer::start(AppState::new(db.clone(), tokens(), Some(log), limits())).await;
    s.put_json("patient-7", json!({"diagnosis": "confidential-xyz"}), WRITE_TOKEN).await;
    s.get("/v1/records/patient-7", Some(READ_TOKEN)).await;
    s.delete("/v1/records/patient-7", READ_TOKEN).await;
    s.get("/v1/records/patient-7", None).await;
    s.delete("/v1/records/patient-7", ADMIN_TOKEN).await;
    s.get("/v1/records/patient-7", Some(READ_TOKEN)).await;
    s.stop().await;

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("patient-7") && !text.contains("confidential"), "{text}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    /// An audit line as `(actor, op, tag, outcome, count)`.
    type Row = (String, String, Option<String>, String, Option<u64>);
    let summary: Vec<Row> = lines
        .iter()
        .map(|l| {
            (
                l["actor"].as_str().unwrap().to_owned(),
                l["op"].as_str().unwrap().to_owned(),
                l["tag"].as_str().map(str::to_owned),
                l["outcome"].as_str().unwrap().to_owned(),
                l["count"].as_u64(),
            )
        })
        .collect();
    let t = Some(tag);
    let row = |a: &str, o: &str, t: &Option<String>, c: &str| {
        (a.to_owned(), o.to_owned(), t.clone(), c.to_owned(), None)
    };
    // The genesis line, one line per request with a valid token (refusals too), and the
    // request without one counted (written within a second, or when the server stopped).
    let (anonymous, named): (Vec<_>, Vec<_>) =
        summary.into_iter().partition(|r| r.0 == "anonymous");
    assert_eq!(
        named,
        vec![
            row("vaultdb", "audit.genesis", &None, "OK"),
            row("writer", "record.put", &t, "OK"),
            row("reader", "record.get", &t, "OK"),
            row("reader", "record.delete", &t, "FORBIDDEN"),
            row("root", "record.delete", &t, "OK"),
            row("reader", "record.get", &t, "RECORD_NOT_FOUND"),
        ]
    );
    assert_eq!(
        anonymous,
        [("anonymous".into(), "record.get".into(), None, "UNAUTHORIZED".into(), Some(1))]
    );
    for l in &lines {
        assert!(l["ts"].as_str().unwrap().ends_with('Z'));
        assert!(l["mac"].as_str().unwrap().len() == 64 && l["log"] == lines[0]["log"]);
    }
    let bytes = std::fs::read(&path).unwrap();
    let log = vaultdb::audit::log_id(&bytes).unwrap();
    let cp = vaultdb::audit::read_checkpoint(&db, &log).await.unwrap();
    assert_eq!(cp.as_ref().map(|c| c.seq), Some(7), "checkpointed when the server stopped");
    let key = vaultdb::audit::AuditKey::of(&db);
    let v = vaultdb::audit::verify_bytes(&bytes, Some(&key), cp.as_ref()).unwrap();
    assert_eq!((v.lines, v.checkpointed), (7, Some(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_reads_stream_segments_and_honour_ranges() {
    let mut b = vaultdb_core::VaultDb::builder().threshold(2).segment_size(1024);
    for i in 1..=3 {
        b = b.backend(MemoryBackend::new(format!("mem-{i}"), format!("Memory {i}")));
    }
    let db = b.open().await.unwrap();
    let s = TestServer::start(AppState::new(db, tokens(), None, limits())).await;
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let req = s
        .request(Method::PUT, "/v1/records/big/raw", Some(WRITE_TOKEN))
        .header("content-type", "application/x-test")
        .body(data.clone());
    assert_eq!(s.send(req).await.status(), StatusCode::CREATED);
    let get = |range: Option<&'static str>| {
        let mut req = s.request(Method::GET, "/v1/records/big/raw", Some(READ_TOKEN));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        s.send(req)
    };
    let resp = get(None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-test");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(resp.headers()["content-length"], "10000");
    assert!(resp.bytes().await.unwrap()[..] == data[..]);
    for (range, want, content_range) in [
        ("bytes=1000-2999", 1000..3000, "bytes 1000-2999/10000"),
        ("bytes=9990-", 9990..10_000, "bytes 9990-9999/10000"),
        ("bytes=-100", 9900..10_000, "bytes 9900-9999/10000"),
        ("bytes=5000-99999", 5000..10_000, "bytes 5000-9999/10000"),
    ] {
        let resp = get(Some(range)).await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(resp.headers()["content-range"], content_range, "{range}");
        assert!(resp.bytes().await.unwrap()[..] == data[want], "{range}");
    }
    let resp = get(Some("bytes=10000-")).await;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */10000");
    assert_eq!(error_code(resp).await, "RANGE_NOT_SATISFIABLE");
    // A malformed or multi-range header is ignored: the whole record.
    let resp = get(Some("bytes=0-1,5-6")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), 10_000);
    s.stop().await;
}

/// Sends `PUT path` with `body` in chunked transfer encoding (no Content-Length) over a raw
/// connection; returns the status code and the response body.
async fn put_chunked(base: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 << 10) {
        conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        conn.write_all(chunk).await.unwrap();
        conn.write_all(b"\r\n").await.unwrap();
    }
    conn.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_puts_stream_past_the_body_limit_up_to_max_record_size() {
    // body_limit 64 KiB (JSON bodies); the store takes records up to 12 MiB.
    let db = common::memory_store_up_to(12 << 20).await;
    let s = TestServer::start(AppState::new(db, tokens(), None, limits())).await;
    // 9 MiB: three 4 MiB segments, with Content-Length and chunked.
    let data: Vec<u8> = (0..9u32 << 20).map(|i| (i % 253) as u8).collect();
    let req = s.request(Method::PUT, "/v1/records/big/raw", Some(WRITE_TOKEN)).body(data.clone());
    assert_eq!(s.send(req).await.status(), StatusCode::CREATED);
    let (status, text) = put_chunked(&s.base, "/v1/records/big2/raw", WRITE_TOKEN, &data).await;
    assert_eq!(status, 201, "{text}");
    for id in ["big", "big2"] {
        let resp = s.get(&format!("/v1/records/{id}/raw"), Some(READ_TOKEN)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.bytes().await.unwrap() == data, "{id} reads back");
    }
    // (Over max_record_size is 413, from Content-Length before the body is read:
    // oversized_bodies_are_413.)
    let ids = s.get_json("/v1/records", READ_TOKEN).await;
    // Listed in name-tag order: compare as a set.
    let mut ids: Vec<&str> =
        ids["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["big", "big2"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_each_backend() {
    use vaultdb::config::{Loaded, Source};
    // A store opened as `serve` opens it: its backends are measured.
    // The fourth, a directory, is replaced by a file once the store is made: its calls fail.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("d4");
    let text = format!(
        "threshold = 2\nwrite_quorum = 3\n\
         [[backends]]\nid = \"metrics-m1\"\nurl = \"memory://\"\n\
         [[backends]]\nid = \"metrics-m2\"\nurl = \"memory://\"\n\
         [[backends]]\nid = \"metrics-m3\"\nurl = \"memory://\"\n\
         [[backends]]\nid = \"metrics-bad\"\nkind = \"fs\"\npath = {:?}\n",
        broken.to_str().unwrap()
    );
    let cfg = Loaded::from_text(&text, Source::Embedded).unwrap();
    let db = vaultdb::service::open(&cfg).await.unwrap();
    std::fs::remove_dir_all(&broken).unwrap();
    std::fs::write(&broken, "not a directory").unwrap();
    let s = TestServer::start(AppState::new(db, tokens(), None, limits())).await;
    assert_eq!(s.put_json("m", json!(1), WRITE_TOKEN).await.status(), StatusCode::CREATED);
    let text = s.get("/metrics", Some(READ_TOKEN)).await.text().await.unwrap();
    for b in ["metrics-m1", "metrics-m2", "metrics-m3"] {
        assert!(text.contains(&format!("vaultdb_backend_up{{backend=\"{b}\"}} 1\n")), "{text}");
        assert!(
            text.contains(&format!(
                "vaultdb_backend_call_duration_seconds_count{{backend=\"{b}\",op=\"put\"}}"
            )),
            "{b}: put latency"
        );
    }
    // The failing backend's errors, counted by operation and kind (whether it is up follows
    // its last call, which may be a listing that finds nothing and succeeds).
    let errors = text
        .lines()
        .find(|l| {
            l.starts_with("vaultdb_backend_errors_total{backend=\"metrics-bad\",op=\"put\",kind=")
        })
        .unwrap_or_else(|| panic!("no put errors of metrics-bad: {text}"));
    assert!(errors.rsplit(' ').next().unwrap().parse::<u64>().unwrap() >= 1, "{errors}");
    assert!(!text.contains("vaultdb_backend_errors_total{backend=\"metrics-m1\""), "{text}");
    s.stop().await;
}
