//! Remote mode: the `vaultdb` binary with `--server URL` (or `VAULTDB_SERVER`) and
//! `VAULTDB_TOKEN`, against a `vaultdb serve` process, from a directory without any
//! configuration: put, get, stat, list, delete, status and repair through the REST API, the
//! server's error codes as the command's (and their exit statuses), and HTTPS with
//! `--ca-cert`.

mod common;

use std::path::Path;

use common::pki::Ca;
use common::process::{Server, TOKEN};
use common::{assert_one_line_error, status_of};
use vaultdb::error::exit_code;

/// `vaultdb` in `dir`, on `server`, with the server's token.
fn remote(dir: &Path, server: &str) -> assert_cmd::Command {
    let mut c = common::vaultdb(dir);
    c.env("VAULTDB_SERVER", server).env("VAULTDB_TOKEN", TOKEN);
    c
}

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap()
}

/// Data that is not the same from one byte to the next.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[test]
fn record_commands_run_through_the_server_with_the_local_output() {
    let s = Server::plain("");
    let client = tempfile::tempdir().unwrap();
    let d = client.path();
    let run = |args: &[&str]| remote(d, &s.base).args(args).output().unwrap();

    std::fs::write(d.join("small.txt"), b"hello over the wire").unwrap();
    let out =
        run(&["put", "rec-1", "small.txt", "--content-type", "text/plain", "--meta", "owner=ops"]);
    let text = stdout(&out);
    assert!(text.starts_with("stored version ") && text.contains(" on 3 of 3 backends"), "{text}");

    // Standard input, streamed: 3 MiB (several segments on the server).
    let big = data(3 << 20);
    let out = remote(d, &s.base).args(["--json", "put", "big"]).write_stdin(big.clone()).output();
    let v = json(&out.unwrap());
    assert_eq!(v["id"], "big");
    assert_eq!(v["size"], big.len());
    assert_eq!((v["acks"].as_u64(), v["backends"].as_u64()), (Some(3), Some(3)));
    assert_eq!(v["degraded"], false);

    let out = run(&["get", "big"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == big, "get returns the bytes put");
    let out = run(&["get", "rec-1", "-o", "copy.txt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(d.join("copy.txt")).unwrap(), b"hello over the wire");

    let text = stdout(&run(&["stat", "rec-1"]));
    for line in ["id: rec-1", "size: 19", "content-type: text/plain", "meta: owner=ops"] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    let v = json(&run(&["--json", "stat", "big"]));
    assert_eq!(v["size"], big.len());
    // get --json: the record and its data in standard base64, as locally.
    let v = json(&run(&["--json", "get", "rec-1"]));
    assert_eq!((v["id"].as_str(), v["size"].as_u64()), (Some("rec-1"), Some(19)));
    assert_eq!(v["content_type"], "text/plain");
    assert_eq!(v["metadata"], serde_json::json!({"owner": "ops"}));
    let b64 = v["data_base64"].as_str().unwrap().as_bytes();
    assert_eq!(data_encoding::BASE64.decode(b64).unwrap(), b"hello over the wire");
    let v = json(&run(&["--json", "get", "big"]));
    let b64 = v["data_base64"].as_str().unwrap().as_bytes();
    assert!(data_encoding::BASE64.decode(b64).unwrap() == big);

    assert_eq!(stdout(&run(&["list"])), "big\nrec-1\n");
    let v = json(&run(&["--json", "list", "--limit", "1"]));
    assert_eq!(v["ids"].as_array().unwrap().len(), 1);
    let next = v["next"].as_str().expect("a next cursor").to_owned();
    let out = run(&["list", "--limit", "1", "--cursor", &next]);
    let second = stdout(&out);
    assert_eq!(second.lines().count(), 1);
    assert_ne!(second.trim(), v["ids"][0].as_str().unwrap(), "the next page");

    let text = stdout(&run(&["status"]));
    assert!(text.starts_with("store: 2-of-3 (write quorum 3), 3 of 3 backends up"), "{text}");
    let v = json(&run(&["--json", "status"]));
    assert_eq!((v["k"].as_u64(), v["n"].as_u64(), v["up"].as_u64()), (Some(2), Some(3), Some(3)));
    assert_eq!(v["backends"].as_array().unwrap().len(), 3);

    let text = stdout(&run(&["repair", "rec-1"]));
    assert!(text.starts_with("version "), "{text}");

    assert_eq!(stdout(&run(&["delete", "rec-1"])), "deleted\n");
    assert_eq!(stdout(&run(&["list"])), "big\n");

    // Nothing was written where the client ran.
    let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "only the test's files: {left:?}");
}

#[test]
fn errors_have_the_codes_and_exit_statuses_of_local_mode() {
    let s = Server::plain("");
    let client = tempfile::tempdir().unwrap();
    let d = client.path();

    // A record that is not there: RECORD_NOT_FOUND, as the local command on the server's
    // own store says it.
    let out = remote(d, &s.base).args(["get", "nope"]).output().unwrap();
    assert_one_line_error(&out, "RECORD_NOT_FOUND", "remote get of a missing record");
    assert_eq!(status_of(&out), i32::from(exit_code("RECORD_NOT_FOUND")));
    let cfg = s.dir.path().join("vaultdb.toml");
    let local = common::vaultdb(d).arg("--config").arg(&cfg).args(["get", "nope"]).output();
    let local = local.unwrap();
    assert_eq!(status_of(&local), status_of(&out), "{}", String::from_utf8_lossy(&local.stderr));
    assert!(String::from_utf8_lossy(&local.stderr).contains("error: RECORD_NOT_FOUND: "));

    let out = remote(d, &s.base).args(["--json", "delete", "nope"]).output().unwrap();
    assert_eq!(status_of(&out), i32::from(exit_code("RECORD_NOT_FOUND")));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "RECORD_NOT_FOUND");

    // A wrong token: the server's UNAUTHORIZED, with its own status; never echoed.
    let wrong = "vdb_wrong_token_0123456789";
    for args in [&["list"][..], &["get", "x"], &["status"]] {
        let out = remote(d, &s.base).env("VAULTDB_TOKEN", wrong).args(args).output().unwrap();
        assert_one_line_error(&out, "UNAUTHORIZED", "a wrong token");
        assert_eq!(status_of(&out), 14);
        assert!(!String::from_utf8_lossy(&out.stderr).contains(wrong));
    }
    let out = common::vaultdb(d).env("VAULTDB_SERVER", &s.base).arg("list").output().unwrap();
    assert_one_line_error(&out, "UNAUTHORIZED", "no token");

    // The token from a file works; the same bad input as local mode is INVALID_INPUT.
    std::fs::write(d.join("token"), format!("{TOKEN}\n")).unwrap();
    let out = common::vaultdb(d)
        .args(["--server", &s.base, "--token-file", "token", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = remote(d, &s.base).args(["put", "bad\u{1}id", "token"]).output().unwrap();
    assert_one_line_error(&out, "INVALID_INPUT", "a bad id");
    assert_eq!(status_of(&out), 4);
    std::fs::write(d.join("not.json"), b"{nope").unwrap();
    let out = remote(d, &s.base).args(["put", "j", "not.json", "--json-input"]).output().unwrap();
    assert_one_line_error(&out, "INVALID_INPUT", "not JSON");

    // Commands that need the store's configuration are refused.
    for cmd in [&["scrub"][..], &["init"], &["serve"], &["audit", "verify"]] {
        let out = remote(d, &s.base).args(cmd).output().unwrap();
        assert_one_line_error(&out, "USAGE_ERROR", "a local-only command");
        assert_eq!(status_of(&out), 2);
    }

    // A token over plain HTTP beyond loopback (0.0.0.0 reaches this host, but is not a
    // loopback address) is refused before anything is sent, unless explicitly allowed.
    let beyond = s.base.replace("127.0.0.1", "0.0.0.0");
    let out = remote(d, &beyond).args(["list"]).output().unwrap();
    assert_one_line_error(&out, "INVALID_CONFIG", "a token over plain HTTP beyond loopback");
    assert!(String::from_utf8_lossy(&out.stderr).contains("VAULTDB_ALLOW_PLAIN_HTTP=true"));
    let out = remote(d, &beyond).env("VAULTDB_ALLOW_PLAIN_HTTP", "true").arg("list").output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("warning: "), "still warned");

    // No server there: an error, not a hang.
    let out = remote(d, "http://127.0.0.1:9").args(["list"]).output().unwrap();
    assert_one_line_error(&out, "INTERNAL_ERROR", "no server");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no answer from the server"));
}

#[test]
fn https_with_a_private_ca_by_ca_cert() {
    let ca = Ca::new("private CA");
    let s = Server::tls(None, &ca.server("server"), "");
    let client = tempfile::tempdir().unwrap();
    let d = client.path();
    std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(d.join("doc.json"), br#"{"a": 1}"#).unwrap();

    let out = remote(d, &s.base)
        .args(["--ca-cert", "ca.pem", "put", "doc", "doc.json", "--json-input"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains(" on 3 of 3 backends"));
    let out = remote(d, &s.base).env("VAULTDB_CA_CERT", "ca.pem").args(["get", "doc"]).output();
    assert_eq!(stdout(&out.unwrap()), r#"{"a": 1}"#);
    let v = json(
        &remote(d, &s.base)
            .args(["--ca-cert", "ca.pem", "--json", "stat", "doc"])
            .output()
            .unwrap(),
    );
    assert_eq!(v["content_type"], "application/json");

    // Without the CA: the server's certificate is not trusted.
    let out = remote(d, &s.base).args(["get", "doc"]).output().unwrap();
    assert_one_line_error(&out, "INTERNAL_ERROR", "an untrusted certificate");
    let other = Ca::new("another CA");
    std::fs::write(d.join("other.pem"), other.pem()).unwrap();
    let out = remote(d, &s.base).args(["--ca-cert", "other.pem", "get", "doc"]).output().unwrap();
    assert_one_line_error(&out, "INTERNAL_ERROR", "another CA");
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate"), "says why");
}

#[test]
fn a_client_certificate_for_a_server_that_requires_one() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let s = Server::tls(Some(&clients.pem()), &ca.server("server"), "");
    let client = tempfile::tempdir().unwrap();
    let d = client.path();
    let alice = clients.client("alice");
    std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(d.join("alice.pem"), &alice.cert).unwrap();
    std::fs::write(d.join("alice.key"), &alice.key).unwrap();
    let base = || {
        let mut c = remote(d, &s.base);
        c.env("VAULTDB_CA_CERT", "ca.pem");
        c
    };

    let out = base().args(["list"]).output().unwrap();
    assert_one_line_error(&out, "INTERNAL_ERROR", "no client certificate");
    let out = base()
        .args(["--client-cert", "alice.pem", "--client-key", "alice.key", "put", "k", "ca.pem"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains(" on 3 of 3 backends"));
    let out = base()
        .env("VAULTDB_CLIENT_CERT", "alice.pem")
        .env("VAULTDB_CLIENT_KEY", "alice.key")
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "k\n");

    // A certificate without its key is a usage error; a key that is not one, bad input.
    let out = base().args(["--client-cert", "alice.pem", "list"]).output().unwrap();
    assert_eq!(status_of(&out), 2);
    let out = base()
        .args(["--client-cert", "alice.pem", "--client-key", "ca.pem", "list"])
        .output()
        .unwrap();
    assert_one_line_error(&out, "INVALID_INPUT", "a key file without a key");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("BEGIN"), "no file contents");
}

/// A hostile "server" on a free loopback port: each connection's request (its first line,
/// e.g. `GET /v1/records?limit=1000 HTTP/1.1`) goes to `answer`, which writes what it wants
/// (or nothing, for ever). Returns its base URL.
fn hostile(answer: impl Fn(&str, &mut std::net::TcpStream) + Send + Sync + 'static) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                answer(first.trim(), &mut conn);
            });
        }
    });
    base
}

/// A complete answer with `status` and a JSON `body`.
fn answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `vaultdb` on the hostile server at `base`, given at most `secs` seconds.
fn against(dir: &Path, base: &str, secs: u64, args: &[&str]) -> std::process::Output {
    let start = std::time::Instant::now();
    let out = remote(dir, base)
        .env("VAULTDB_TIMEOUT", "1s")
        .timeout(std::time::Duration::from_secs(secs))
        .args(args)
        .output()
        .unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(secs),
        "`vaultdb {}` against a hostile server still ran after {secs} s (killed)",
        args.join(" ")
    );
    out
}

/// A server that accepts and never answers, or answers with a body that never ends (an
/// error, a listing, a record), costs each command at most the timeout (`VAULTDB_TIMEOUT`)
/// or the size cap of an answer, not a hang or all the memory.
#[test]
fn a_server_that_never_answers_or_never_ends_its_answer_costs_a_bounded_wait() {
    let client = tempfile::tempdir().unwrap();
    let d = client.path();
    let silent = hostile(|_, _| std::thread::sleep(std::time::Duration::from_secs(3600)));
    for args in [&["list"][..], &["get", "x"], &["status"], &["delete", "x"]] {
        let out = against(d, &silent, 20, args);
        assert_one_line_error(&out, "INTERNAL_ERROR", "a server that never answers");
    }
    // Headers, then a chunked body that never ends: as an error, as a JSON answer, as a
    // record that stalls.
    let endless = |status: &'static str| {
        move |_: &str, c: &mut std::net::TcpStream| {
            use std::io::Write;
            let head = format!("HTTP/1.1 {status}\r\ntransfer-encoding: chunked\r\n\r\n");
            let _ = c.write_all(head.as_bytes());
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            while c.write_all(chunk.as_bytes()).is_ok() {}
        }
    };
    let base = hostile(endless("500 Internal Server Error"));
    let out = against(d, &base, 20, &["get", "x"]);
    assert_one_line_error(&out, "INTERNAL_ERROR", "an endless error body");
    let base = hostile(endless("200 OK"));
    for args in [&["list"][..], &["status"], &["repair", "x"]] {
        let out = against(d, &base, 20, args);
        assert_one_line_error(&out, "INTERNAL_ERROR", "an endless JSON answer");
    }
    let stalls = hostile(|_, c| {
        use std::io::Write;
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf");
        std::thread::sleep(std::time::Duration::from_secs(3600));
    });
    let out = against(d, &stalls, 20, &["get", "x"]);
    assert!(!out.status.success());
}

/// A listing whose pages never end (the same cursor again and again) is an error, not a
/// loop that collects ids for ever.
#[test]
fn a_listing_that_never_ends_is_an_error() {
    let client = tempfile::tempdir().unwrap();
    let base = hostile(|_, c| {
        use std::io::Write;
        let _ = c.write_all(&answer("200 OK", r#"{"ids":["a","b"],"next":"b"}"#));
    });
    let out = against(client.path(), &base, 20, &["list"]);
    assert_one_line_error(&out, "INTERNAL_ERROR", "a listing that never ends");
}

/// Terminal escape sequences in a server's error message, listed ids or status text never
/// reach the user's terminal: a hostile server must not retitle, clear or rewrite it.
#[test]
fn terminal_escapes_from_the_server_never_reach_the_terminal() {
    let client = tempfile::tempdir().unwrap();
    let d = client.path();
    let evil = r"\u001b]0;pwned\u0007\u001b[2J\u001b[1Aok";
    let base = hostile(move |req, c| {
        use std::io::Write;
        let body = if req.starts_with("GET /v1/records?") {
            format!(r#"{{"ids":["a{evil}"],"next":null}}"#)
        } else if req.starts_with("GET /v1/status") {
            format!(
                r#"{{"k":1,"n":1,"write_quorum":1,"up":1,"margin":0,"backends":[{{"id":"b{evil}","name":"n{evil}","up":true,"latency_ms":1.0,"error":"e{evil}"}}]}}"#
            )
        } else {
            let e = format!(r#"{{"error":{{"code":"RECORD_NOT_FOUND","message":"m{evil}"}}}}"#);
            let _ = c.write_all(&answer("404 Not Found", &e));
            return;
        };
        let _ = c.write_all(&answer("200 OK", &body));
    });
    for args in [&["get", "x"][..], &["list"], &["status"], &["--json", "get", "x"]] {
        let out = against(d, &base, 20, args);
        for (what, bytes) in [("standard output", &out.stdout), ("standard error", &out.stderr)] {
            assert!(
                !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
                "`vaultdb {}` wrote the server's escape sequences to {what}: {:?}",
                args.join(" "),
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
