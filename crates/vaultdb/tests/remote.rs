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
