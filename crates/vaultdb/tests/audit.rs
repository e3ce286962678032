//! `vaultdb audit verify`: an intact chain passes; editing, removing or reordering one line
//! fails with exit status 1 and names the first bad line.

mod common;

use std::path::Path;

use common::vaultdb;
use predicates::prelude::*;

/// Makes an audit log of `n` lines with the command line itself.
fn make_log(d: &Path) -> Vec<String> {
    vaultdb(d).args(["put", "a", "-"]).write_stdin("1").assert().success();
    vaultdb(d).args(["put", "b", "-"]).write_stdin("2").assert().success();
    vaultdb(d).args(["get", "a"]).assert().success();
    vaultdb(d).arg("list").assert().success();
    vaultdb(d).args(["delete", "b"]).assert().success();
    vaultdb(d).args(["get", "b"]).assert().failure();
    let text = std::fs::read_to_string(d.join("vaultdb-data/audit.jsonl")).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn verify(d: &Path, lines: &[String], name: &str) -> std::process::Output {
    let path = d.join(name);
    std::fs::write(&path, format!("{}\n", lines.join("\n"))).unwrap();
    vaultdb(d).args(["audit", "verify"]).arg(&path).output().unwrap()
}

fn assert_broken_at(out: &std::process::Output, line: usize, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{what}: exit status 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
    assert!(stderr.starts_with("error: AUDIT_CHAIN_BROKEN: "), "{what}: {stderr}");
    assert!(stderr.contains(&format!(": line {line}: ")), "{what}: names line {line}: {stderr}");
}

#[test]
fn intact_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    assert_eq!(lines.len(), 6);
    assert!(lines[5].contains("\"outcome\":\"RECORD_NOT_FOUND\""));
    // Default path from the configuration, and an explicit one.
    vaultdb(d)
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("6 line(s), chain intact"));
    let out = verify(d, &lines, "copy.jsonl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn edited_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    for (i, from, to) in [
        (3, "\"op\":\"record.get\"", "\"op\":\"record.put\""),
        (6, "\"outcome\":\"RECORD_NOT_FOUND\"", "\"outcome\":\"OK\""),
        (1, "\"actor\":\"cli\"", "\"actor\":\"eve\""),
    ] {
        let mut edited = lines.clone();
        assert!(edited[i - 1].contains(from));
        edited[i - 1] = edited[i - 1].replace(from, to);
        assert_broken_at(&verify(d, &edited, "edited.jsonl"), i, &format!("edit line {i}"));
    }
    // Editing a line and recomputing its own hash still breaks the next line's link.
    let mut forged = lines.clone();
    let v: serde_json::Value = serde_json::from_str(&forged[2]).unwrap();
    let body =
        forged[2].split(",\"hash\":").next().unwrap().replace("\"record.get\"", "\"record.put\"")
            + "}";
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    forged[2] = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    assert_ne!(v["op"], "record.put");
    assert_broken_at(&verify(d, &forged, "forged.jsonl"), 4, "forged line 3");
}

#[test]
fn removed_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    for i in [1, 3, 5] {
        let mut removed = lines.clone();
        removed.remove(i - 1);
        assert_broken_at(&verify(d, &removed, "removed.jsonl"), i, &format!("remove line {i}"));
    }
}

#[test]
fn reordered_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    assert_broken_at(&verify(d, &swapped, "swapped.jsonl"), 3, "swap lines 3 and 4");
    let mut swapped = lines.clone();
    swapped.swap(0, 5);
    assert_broken_at(&verify(d, &swapped, "swapped.jsonl"), 1, "swap first and last");
}

#[test]
fn missing_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = vaultdb(dir.path()).args(["audit", "verify", "nope.jsonl"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: INVALID_CONFIG: cannot read audit log")
    );
}
