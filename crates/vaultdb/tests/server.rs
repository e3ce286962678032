//! The REST server over a real loopback socket: authentication and roles, JSON and raw
//! round trips, error mapping (400, 404, 413, 503), pagination, metrics and the audit log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    ADMIN_TOKEN, READ_TOKEN, TestServer, WRITE_TOKEN, error_code, limits, memory_store, open_store,
    tokens,
};
use reqwest::StatusCode;
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

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_401() {
    let s = server().await;
    for header in
        [None, Some("Bearer wrong-token"), Some("Basic YWRtaW46YWRtaW4="), Some("Bearer ")]
    {
        let mut req = s.client.get(s.url("/v1/records"));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_eq!(error_code(resp).await, "UNAUTHORIZED");
    }
    // Unauthenticated writes are refused before the body is even read.
    let resp = s.client.put(s.url("/v1/records")).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Public routes need no token.
    for path in ["/health", "/openapi.json"] {
        assert_eq!(
            s.client.get(s.url(path)).send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_read_write_admin() {
    let s = server().await;
    let put = |token: &'static str| {
        s.client
            .put(s.url("/v1/records"))
            .header("authorization", auth(token))
            .json(&json!({"id": "r", "data": 1}))
            .send()
    };
    let resp = put(READ_TOKEN).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(resp).await, "FORBIDDEN");
    assert_eq!(put(WRITE_TOKEN).await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(put(ADMIN_TOKEN).await.unwrap().status(), StatusCode::CREATED);

    let get = |token: &'static str, path: &'static str| {
        s.client.get(s.url(path)).header("authorization", auth(token)).send()
    };
    assert_eq!(get(READ_TOKEN, "/v1/records/r").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(READ_TOKEN, "/metrics").await.unwrap().status(), StatusCode::OK);
    let del = s
        .client
        .delete(s.url("/v1/records/r"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::FORBIDDEN);
    let resp = get(WRITE_TOKEN, "/v1/status").await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(resp).await, "FORBIDDEN");
    let resp = get(ADMIN_TOKEN, "/v1/status").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let st: Value = resp.json().await.unwrap();
    assert_eq!(
        (st["k"].as_u64(), st["n"].as_u64(), st["margin"].as_i64()),
        (Some(2), Some(3), Some(1))
    );
    assert_eq!(st["backends"].as_array().unwrap().len(), 3);
    let repair = s
        .client
        .post(s.url("/v1/records/r/repair"))
        .header("authorization", auth(WRITE_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(repair.status(), StatusCode::FORBIDDEN);
    let repair = s
        .client
        .post(s.url("/v1/records/r/repair"))
        .header("authorization", auth(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(repair.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_round_trip() {
    let s = server().await;
    let data = json!({"name": "Alice", "ssn": "***-**-****", "tags": [1, 2.5, null, true], "nested": {"a": {}}});
    let resp = s
        .client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "user-42", "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let put: Value = resp.json().await.unwrap();
    assert_eq!(put["id"], "user-42");
    assert_eq!(put["acks"], 3);
    let v1 = put["version"].as_str().unwrap().to_owned();

    let resp = s
        .client
        .get(s.url("/v1/records/user-42"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-vaultdb-version"], v1.as_str());
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["id"], "user-42");
    assert_eq!(got["data"], data);
    assert_eq!(got["version"], v1.as_str());
    assert_eq!(got["content_type"], "application/json");

    // POST stores too, as a new version; scalars are JSON values like any other.
    let resp = s
        .client
        .post(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "user-42", "data": "just a string"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got: Value = s
        .client
        .get(s.url("/v1/records/user-42"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"], "just a string");
    assert!(got["version"].as_str().unwrap() > v1.as_str(), "newer version");

    // Ids with slashes, spaces and non-ASCII travel percent-encoded.
    let id = "dir/sub file ü";
    let resp = s
        .client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": id, "data": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let got: Value = s
        .client
        .get(s.url("/v1/records/dir%2Fsub%20file%20%C3%BC"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(got["data"], json!([1]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_records_round_trip_with_their_content_type() {
    let s = server().await;
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 0]).collect();
    let resp = s
        .client
        .put(s.url("/v1/records/photo/raw"))
        .header("authorization", auth(WRITE_TOKEN))
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s
        .client
        .get(s.url("/v1/records/photo/raw"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    // The JSON view of a non-JSON record carries base64.
    let got: Value = s
        .client
        .get(s.url("/v1/records/photo"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(got.get("data").is_none());
    let b64 = got["data_base64"].as_str().unwrap();
    assert_eq!(data_encoding::BASE64URL_NOPAD.decode(b64.as_bytes()).unwrap(), bytes);

    // No content type: stored without one, served as octet-stream; empty bodies are fine.
    let resp = s
        .client
        .put(s.url("/v1/records/empty/raw"))
        .header("authorization", auth(WRITE_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s
        .client
        .get(s.url("/v1/records/empty/raw"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert!(resp.bytes().await.unwrap().is_empty());

    // A JSON record read raw comes back as the JSON text.
    s.client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "j", "data": {"x": 1}}))
        .send()
        .await
        .unwrap();
    let resp = s
        .client
        .get(s.url("/v1/records/j/raw"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), "{\"x\":1}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_records_are_404_and_deletes_are_204() {
    let s = server().await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/records/nobody"),
        (reqwest::Method::GET, "/v1/records/nobody/raw"),
        (reqwest::Method::DELETE, "/v1/records/nobody"),
    ] {
        let resp = s
            .client
            .request(method.clone(), s.url(path))
            .header("authorization", auth(ADMIN_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(error_code(resp).await, "RECORD_NOT_FOUND");
    }
    s.client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "gone", "data": 1}))
        .send()
        .await
        .unwrap();
    let resp = s
        .client
        .delete(s.url("/v1/records/gone"))
        .header("authorization", auth(WRITE_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = s
        .client
        .get(s.url("/v1/records/gone"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Unknown routes and methods get JSON errors too.
    let resp = s.client.get(s.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(resp).await, "NOT_FOUND");
    let resp = s.client.patch(s.url("/v1/records")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(resp).await, "METHOD_NOT_ALLOWED");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_bodies_are_400_with_a_code() {
    let s = server().await;
    let put_body = |body: &'static str| {
        s.client
            .put(s.url("/v1/records"))
            .header("authorization", auth(WRITE_TOKEN))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, code) in [
        ("{\"id\": \"x\", \"data\": ", "INVALID_REQUEST"),
        ("not json at all", "INVALID_REQUEST"),
        ("{\"id\": \"x\"}", "INVALID_REQUEST"),
        ("{\"data\": 1}", "INVALID_REQUEST"),
        ("{\"id\": 7, \"data\": 1}", "INVALID_REQUEST"),
        ("{\"id\": \"x\", \"data\": 1, \"extra\": true}", "INVALID_REQUEST"),
        ("[]", "INVALID_REQUEST"),
        ("", "INVALID_REQUEST"),
        ("{\"id\": \"\", \"data\": 1}", "INVALID_CONFIG"),
        ("{\"id\": \"a\\u0001b\", \"data\": 1}", "INVALID_CONFIG"),
    ] {
        let resp = put_body(body).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(resp).await, code, "{body}");
    }
    let long = "x".repeat(256);
    let resp = s
        .client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": long, "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "INVALID_CONFIG");
    for (path, code) in [
        ("/v1/records/a%01b", "INVALID_CONFIG"),
        ("/v1/records/%FF%FE", "INVALID_REQUEST"),
        (&format!("/v1/records/{}", "y".repeat(300)), "INVALID_CONFIG"),
    ] {
        let resp = s
            .client
            .get(s.url(path))
            .header("authorization", auth(READ_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(resp).await, code, "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413() {
    let small = Limits { body_limit: 1024, request_timeout: Duration::from_secs(10) };
    let s = TestServer::start(AppState::new(memory_store().await, tokens(), None, small)).await;
    let resp = s
        .client
        .put(s.url("/v1/records/big/raw"))
        .header("authorization", auth(WRITE_TOKEN))
        .body(vec![7u8; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "PAYLOAD_TOO_LARGE");
    let resp = s
        .client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "big", "data": "z".repeat(2000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "PAYLOAD_TOO_LARGE");
    // Just under the limit is fine.
    let resp = s
        .client
        .put(s.url("/v1/records/big/raw"))
        .header("authorization", auth(WRITE_TOKEN))
        .body(vec![7u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
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
    let resp = s
        .client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "r", "data": {"v": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // One backend down: reads still work, flagged as degraded.
    handles[0].set_down(true);
    let resp = s
        .client
        .get(s.url("/v1/records/r"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-vaultdb-degraded"], "true");
    let h: Value = s.client.get(s.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "degraded");

    // Two down: below the threshold.
    handles[1].set_down(true);
    let resp = s
        .client
        .get(s.url("/v1/records/r"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "INSUFFICIENT_SHARES");
    let backends = v["error"]["backends"].as_array().expect("per-backend outcomes");
    assert_eq!(backends.len(), 3);
    assert!(backends.iter().any(|b| b["backend"] == "mem-1" && b["status"] == "failed"), "{v}");
    assert!(!v.to_string().contains("injected"), "backend messages stay in the logs: {v}");

    let resp = s
        .client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "r2", "data": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(resp).await, "BACKEND_ERROR");
    let resp = s
        .client
        .get(s.url("/v1/records"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(resp).await, "INSUFFICIENT_SHARES");
    let resp = s.client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "unavailable");

    // Back up: everything works again, and the degraded read was counted.
    for h in &handles {
        h.heal();
    }
    let resp = s
        .client
        .get(s.url("/v1/records/r"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let resp = s
        .client
        .get(s.url("/v1/records/x"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(resp).await, "REQUEST_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(2), "cut at the timeout");
    for c in &ctl {
        c.set_delay(Duration::ZERO);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paginates_sorted_ids() {
    let s = server().await;
    let mut ids: Vec<String> = ["delta", "alpha", "echo", "charlie", "bravo", "golf", "foxtrot"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for id in &ids {
        let resp = s
            .client
            .put(s.url("/v1/records"))
            .header("authorization", auth(WRITE_TOKEN))
            .json(&json!({"id": id, "data": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = s.url("/v1/records?limit=3");
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(&percent(c));
        }
        let page: Value = s
            .client
            .get(url)
            .header("authorization", auth(READ_TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    assert_eq!(seen, ids);

    let all: Value = s
        .client
        .get(s.url("/v1/records"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["ids"].as_array().unwrap().len(), 7);
    assert!(all["next"].is_null());
    // The cursor is the last id seen: any string works, even one that is no id.
    let page: Value = s
        .client
        .get(s.url("/v1/records?cursor=d&limit=2"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["ids"], json!(["delta", "echo"]));
    assert_eq!(page["next"], "echo");
    for q in ["limit=0", "limit=1001", "limit=abc", "limit=-1"] {
        let resp = s
            .client
            .get(s.url(&format!("/v1/records?{q}")))
            .header("authorization", auth(READ_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(error_code(resp).await, "INVALID_REQUEST", "{q}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status() {
    let s = server().await;
    for _ in 0..2 {
        s.client
            .get(s.url("/v1/records"))
            .header("authorization", auth(READ_TOKEN))
            .send()
            .await
            .unwrap();
    }
    s.client
        .get(s.url("/v1/records/missing"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    s.client.get(s.url("/v1/records/missing")).send().await.unwrap();
    s.client.get(s.url("/nowhere")).send().await.unwrap();
    let resp = s
        .client
        .get(s.url("/metrics"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
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
    let s =
        TestServer::start(AppState::new(db, tokens(), Some(AuditLog::new(&path)), limits())).await;
    s.client
        .put(s.url("/v1/records"))
        .header("authorization", auth(WRITE_TOKEN))
        .json(&json!({"id": "patient-7", "data": {"diagnosis": "confidential-xyz"}}))
        .send()
        .await
        .unwrap();
    s.client
        .get(s.url("/v1/records/patient-7"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    s.client
        .delete(s.url("/v1/records/patient-7"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    s.client.get(s.url("/v1/records/patient-7")).send().await.unwrap();
    s.client
        .delete(s.url("/v1/records/patient-7"))
        .header("authorization", auth(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    s.client
        .get(s.url("/v1/records/patient-7"))
        .header("authorization", auth(READ_TOKEN))
        .send()
        .await
        .unwrap();
    s.stop().await;

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("patient-7") && !text.contains("confidential"), "{text}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(String, String, Option<String>, String)> = lines
        .iter()
        .map(|l| {
            (
                l["actor"].as_str().unwrap().to_owned(),
                l["op"].as_str().unwrap().to_owned(),
                l["tag"].as_str().map(str::to_owned),
                l["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let t = Some(tag);
    let row = |a: &str, o: &str, t: &Option<String>, c: &str| {
        (a.to_owned(), o.to_owned(), t.clone(), c.to_owned())
    };
    assert_eq!(
        summary,
        vec![
            row("writer", "record.put", &t, "OK"),
            row("reader", "record.get", &t, "OK"),
            row("reader", "record.delete", &None, "FORBIDDEN"),
            row("anonymous", "record.get", &None, "UNAUTHORIZED"),
            row("root", "record.delete", &t, "OK"),
            row("reader", "record.get", &t, "RECORD_NOT_FOUND"),
        ]
    );
    for l in &lines {
        assert!(
            l["ts"].as_str().unwrap().ends_with('Z') && l["hash"].as_str().unwrap().len() == 64
        );
    }
    let v = vaultdb::audit::verify(&path).unwrap();
    assert_eq!(v.lines, 6);
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
    let resp = s
        .client
        .put(s.url("/v1/records/big/raw"))
        .header("authorization", auth(WRITE_TOKEN))
        .header("content-type", "application/x-test")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let get = |range: Option<&'static str>| {
        let mut req =
            s.client.get(s.url("/v1/records/big/raw")).header("authorization", auth(READ_TOKEN));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send()
    };
    let resp = get(None).await.unwrap();
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
        let resp = get(Some(range)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(resp.headers()["content-range"], content_range, "{range}");
        assert!(resp.bytes().await.unwrap()[..] == data[want], "{range}");
    }
    let resp = get(Some("bytes=10000-")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */10000");
    assert_eq!(error_code(resp).await, "RANGE_NOT_SATISFIABLE");
    // A malformed or multi-range header is ignored: the whole record.
    let resp = get(Some("bytes=0-1,5-6")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().len(), 10_000);
    s.stop().await;
}
