//! `vaultdb audit verify`: an intact log passes; editing, forging, removing or reordering
//! one line, or cutting lines off up to the store's checkpoint, fails with exit status 1
//! and names the first bad line. Old (v1) logs still verify and are continued. And
//! docs/FORMAT.md's worked example of the audit log is recomputed here.

mod common;

use std::path::Path;

use common::vaultdb;
use predicates::prelude::*;
use sha2::{Digest, Sha256};

fn log_path(d: &Path) -> std::path::PathBuf {
    d.join("vaultdb-data/audit.jsonl")
}

/// Makes an audit log with the command line itself: a genesis line and six more.
fn make_log(d: &Path) -> Vec<String> {
    vaultdb(d).args(["put", "a", "-"]).write_stdin("1").assert().success();
    vaultdb(d).args(["put", "b", "-"]).write_stdin("2").assert().success();
    vaultdb(d).args(["get", "a"]).assert().success();
    vaultdb(d).arg("list").assert().success();
    vaultdb(d).args(["delete", "b"]).assert().success();
    vaultdb(d).args(["get", "b"]).assert().failure();
    let text = std::fs::read_to_string(log_path(d)).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// Writes `lines` to `name` (in `d`) and verifies it.
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
    assert_eq!(lines.len(), 7);
    assert!(lines[0].contains("\"op\":\"audit.genesis\""));
    assert!(lines[6].contains("\"outcome\":\"RECORD_NOT_FOUND\""));
    // Default path from the configuration, and an explicit one (a copy: same log, same
    // checkpoint).
    vaultdb(d)
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("7 line(s), chain intact, keyed"))
        .stdout(predicate::str::contains("checkpointed at line 7"));
    let out = verify(d, &lines, "copy.jsonl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn edited_or_forged_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    for (i, from, to) in [
        (4, "\"op\":\"record.get\"", "\"op\":\"record.put\""),
        (7, "\"outcome\":\"RECORD_NOT_FOUND\"", "\"outcome\":\"OK\""),
        (2, "\"actor\":\"cli\"", "\"actor\":\"eve\""),
    ] {
        let mut edited = lines.clone();
        assert!(edited[i - 1].contains(from));
        edited[i - 1] = edited[i - 1].replace(from, to);
        assert_broken_at(&verify(d, &edited, "edited.jsonl"), i, &format!("edit line {i}"));
    }
    // Editing a line and recomputing its `mac` without the key (here: as a SHA-256, the old
    // format's hash) fails at that line.
    let mut forged = lines.clone();
    let body = forged[3].split(",\"mac\":").next().unwrap().replace("record.get", "record.put");
    let mac = hex::encode(Sha256::digest(format!("{body}}}").as_bytes()));
    forged[3] = format!("{body},\"mac\":\"{mac}\"}}");
    assert_broken_at(&verify(d, &forged, "forged.jsonl"), 4, "forged line 4");
}

#[test]
fn removed_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    for i in [1, 3, 5, 7] {
        let mut removed = lines.clone();
        removed.remove(i - 1);
        assert_broken_at(&verify(d, &removed, "removed.jsonl"), i, &format!("remove line {i}"));
    }
    // Lines cut off the end, up to the store's checkpoint, are named as missing.
    let out = verify(d, &lines[..4], "cut.jsonl");
    assert_broken_at(&out, 5, "cut after line 4");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut off"));
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
    swapped.swap(0, 6);
    assert_broken_at(&verify(d, &swapped, "swapped.jsonl"), 1, "swap first and last");
}

#[test]
fn an_emptied_log_fails_and_a_new_one_notes_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_log(d);
    std::fs::write(log_path(d), "").unwrap();
    let out = vaultdb(d).args(["audit", "verify"]).output().unwrap();
    assert_broken_at(&out, 1, "emptied log");
    assert!(String::from_utf8_lossy(&out.stderr).contains("emptied or replaced"));
    // A new log at that path verifies, and says which log was there before.
    vaultdb(d).args(["get", "a"]).assert().success();
    vaultdb(d)
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 line(s), chain intact"))
        .stdout(predicate::str::contains("this path held log"));
}

#[test]
fn a_v1_log_verifies_unkeyed_and_is_continued() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two lines of the old format, chained as it did.
    let mut prev = hex::encode(Sha256::digest(b"vaultdb audit log v1 genesis"));
    let mut v1 = Vec::new();
    for seq in 1..=2 {
        let body = format!(
            "{{\"seq\":{seq},\"ts\":\"2026-01-01T00:00:00.000Z\",\"actor\":\"cli\",\
             \"op\":\"record.list\",\"tag\":null,\"outcome\":\"OK\",\"prev\":\"{prev}\"}}"
        );
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        prev = hex::encode(Sha256::digest(line.as_bytes()));
        v1.push(line);
    }
    std::fs::create_dir_all(d.join("vaultdb-data")).unwrap();
    std::fs::write(log_path(d), format!("{}\n", v1.join("\n"))).unwrap();
    vaultdb(d)
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2 line(s), chain intact; v1 lines only, unkeyed"));
    vaultdb(d).arg("list").assert().success();
    let text = std::fs::read_to_string(log_path(d)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[2].contains("\"op\":\"audit.genesis\"") && lines[2].contains(&prev));
    vaultdb(d)
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4 line(s), chain intact, keyed"))
        .stdout(predicate::str::contains("lines 1-2 are v1"));
    // Rewriting a v1 line now breaks the keyed line that pinned it.
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let body = edited[1].split(",\"hash\":").next().unwrap().replace("record.list", "record.get");
    let hash = hex::encode(Sha256::digest(format!("{body}}}").as_bytes()));
    edited[1] = format!("{body},\"hash\":\"{hash}\"}}");
    assert_broken_at(&verify(d, &edited, "edited.jsonl"), 3, "v1 line 2 rewritten");
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

/// docs/FORMAT.md section 15's worked example, from the code (`VAULTDB_PRINT_EXAMPLE=1
/// cargo test -p vaultdb --test audit -- --nocapture format` prints the values).
#[tokio::test]
async fn worked_example_in_format_md_matches_the_code() {
    use vaultdb::audit::{
        AuditKey, Checkpoint, GENESIS_ACTOR, GENESIS_OP, KEY_PURPOSE, Line, ZERO_PREV, verify_bytes,
    };
    use vaultdb_core::naming::NamingKey;
    use vaultdb_core::{MemoryBackend, VaultDb};

    let naming = NamingKey::from_bytes([0x11; 32]);
    let key_bytes = *naming.derive(KEY_PURPOSE).as_bytes();
    let key = AuditKey::from_bytes(key_bytes);
    // The same key as a store with this naming key gives its audit log.
    let mut b = VaultDb::builder().threshold(2).naming_key(NamingKey::from_bytes([0x11; 32]));
    for i in 1..=3 {
        b = b.backend(MemoryBackend::new(format!("m{i}"), "memory"));
    }
    let db = b.open().await.unwrap();
    assert_eq!(AuditKey::of(&db).mac(b"x"), key.mac(b"x"));

    let ts = "2026-05-01T12:00:00.000Z";
    let log = "00112233445566778899aabbccddeeff";
    let line = |seq, actor: &str, op: &str, tag: Option<String>, outcome: &str, count, prev| Line {
        seq,
        ts: ts.into(),
        log: log.into(),
        actor: actor.into(),
        op: op.into(),
        tag,
        outcome: outcome.into(),
        count,
        prev,
    };
    let l1 = line(1, GENESIS_ACTOR, GENESIS_OP, None, "OK", None, ZERO_PREV.to_owned());
    let mac1 = key.mac(&l1.body());
    let tag = naming.tag("user-42").to_text();
    let l2 = line(2, "admin", "record.put", Some(tag), "OK", None, mac1);
    let mac2 = key.mac(&l2.body());
    let l3 = line(3, "anonymous", "record.get", None, "UNAUTHORIZED", Some(3), mac2);
    let mac3 = key.mac(&l3.body());
    let cp = Checkpoint {
        log: log.into(),
        seq: 3,
        mac: mac3,
        ts: ts.into(),
        path: "/var/log/vaultdb/audit.jsonl".into(),
    };
    let (r1, r2, r3) = (l1.render(&key), l2.render(&key), l3.render(&key));
    let file = format!("{r1}\n{r2}\n{r3}\n");
    let v = verify_bytes(file.as_bytes(), Some(&key), Some(&cp)).unwrap();
    assert_eq!((v.lines, v.checkpointed), (3, Some(3)));
    let values = [
        ("audit_key", hex::encode(key_bytes)),
        ("line1", r1),
        ("line2", r2),
        ("line3", r3),
        ("checkpoint", String::from_utf8(cp.encode()).unwrap()),
    ];
    if std::env::var_os("VAULTDB_PRINT_EXAMPLE").is_some() {
        for (k, v) in &values {
            println!("{k}: {v}");
        }
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md"))
        .expect("docs/FORMAT.md exists");
    let section = doc.split("\n## 15. ").nth(1).expect("docs/FORMAT.md has a section 15");
    for (label, value) in &values {
        let prefix = format!("{label}: ");
        let found = section
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("docs/FORMAT.md section 15 lacks the line {label:?}"));
        assert_eq!(found, value, "docs/FORMAT.md section 15's value {label:?} is stale");
    }
}
