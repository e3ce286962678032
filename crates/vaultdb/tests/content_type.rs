//! The command line and the server follow one content-type rule
//! (`src/service/content_type.rs`): the same content types given to `vaultdb put
//! --content-type` and as the `Content-Type` of `PUT /v1/records/{id}/raw` are accepted or
//! refused alike, and stored alike. Both write to one store (three directories); the server's JSON view reads back
//! what each stored.

mod common;

use common::{READ_TOKEN, TestServer, WRITE_TOKEN, limits, tokens, vaultdb};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use vaultdb::config::{DEFAULT_CONFIG, Loaded};
use vaultdb::server::AppState;

/// A content type as given, and what must be stored (`Err(())`: refused).
const CASES: [(&str, Result<Option<&str>, ()>); 8] = [
    ("image/png", Ok(Some("image/png"))),
    // Surrounding spaces and tabs are not part of it.
    ("  text/plain; charset=utf-8\t", Ok(Some("text/plain; charset=utf-8"))),
    // A tab may separate parameters.
    ("text/plain;\tcharset=utf-8", Ok(Some("text/plain;\tcharset=utf-8"))),
    // Nothing: no content type.
    ("", Ok(None)),
    ("   ", Ok(None)),
    // Printable ASCII only.
    ("text/plain; name=caf\u{e9}", Err(())),
    // At most 255 bytes.
    ("x", Ok(Some("x"))),
    ("y", Err(())),
];

/// The value of case `i` (cases "x" and "y" stand for 255 and 256 bytes).
fn value(i: usize) -> String {
    match CASES[i].0 {
        "x" => format!("  {}  ", "x".repeat(255)),
        "y" => "y".repeat(256),
        v => v.to_owned(),
    }
}

fn expected(i: usize) -> Result<Option<String>, ()> {
    match CASES[i].1 {
        Ok(Some("x")) => Ok(Some("x".repeat(255))),
        Ok(ct) => Ok(ct.map(str::to_owned)),
        Err(()) => Err(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_server_agree_on_content_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("vaultdb.toml");
    std::fs::write(&config, DEFAULT_CONFIG).unwrap();

    // The command line stores record cli-<i>.
    let mut cli_accepted = Vec::new();
    for i in 0..CASES.len() {
        let out = vaultdb(d)
            .args(["put", &format!("cli-{i}"), "-", "--content-type", &value(i)])
            .write_stdin("data")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            assert!(stderr.starts_with("error: INVALID_INPUT: --content-type "), "{stderr}");
        }
        cli_accepted.push(out.status.success());
    }

    // The server, over the same store, stores record srv-<i>.
    let cfg = Loaded::load(Some(&config)).unwrap();
    let db = vaultdb::service::open(&cfg).await.unwrap();
    let s = TestServer::start(AppState::new(db, tokens(), None, limits())).await;
    let mut server_accepted = Vec::new();
    for i in 0..CASES.len() {
        let header = HeaderValue::from_bytes(value(i).as_bytes()).unwrap();
        let req = s
            .request(Method::PUT, &format!("/v1/records/srv-{i}/raw"), Some(WRITE_TOKEN))
            .header("content-type", header)
            .body("data");
        let resp = s.send(req).await;
        let status = resp.status();
        if status != StatusCode::CREATED {
            assert_eq!(status, StatusCode::BAD_REQUEST, "case {i}");
            assert_eq!(common::error_code(resp).await, "INVALID_REQUEST", "case {i}");
        }
        server_accepted.push(status == StatusCode::CREATED);
    }

    // Both accepted and refused the same values, and stored the same content types.
    for i in 0..CASES.len() {
        let what = format!("case {i} {:?}", CASES[i].0);
        assert_eq!(cli_accepted[i], server_accepted[i], "{what}: CLI and server disagree");
        assert_eq!(cli_accepted[i], expected(i).is_ok(), "{what}");
        for id in [format!("cli-{i}"), format!("srv-{i}")] {
            let resp = s.get(&format!("/v1/records/{id}"), Some(READ_TOKEN)).await;
            match expected(i) {
                Err(()) => assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{what}: {id}"),
                Ok(ct) => {
                    let got: serde_json::Value = resp.json().await.unwrap();
                    assert_eq!(got["content_type"].as_str(), ct.as_deref(), "{what}: {id}");
                }
            }
        }
    }
    s.stop().await;
}
