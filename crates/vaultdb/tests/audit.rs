//! `vaultdb audit verify`: an intact log passes; editing, forging, removing or reordering
//! one line, or cutting lines off up to the store's checkpoint, fails with exit status 1
//! and names the first bad line. A chain made without the store's key (another store's,
//! or any other) never verifies, and a cut stays detected after new lines are appended
//! past it. Old (v1) logs still verify and are continued. And docs/FORMAT.md's worked
//! example of the audit log is recomputed here.

mod common;

use std::path::Path;

use common::{assert_prints, vaultdb};
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

/// Verifies the log the configuration names.
fn verify_configured(d: &Path) -> std::process::Output {
    vaultdb(d).args(["audit", "verify"]).output().unwrap()
}

fn assert_broken_at(out: &std::process::Output, line: usize, what: &str) {
    assert_eq!(out.status.code(), Some(13), "{what}: AUDIT_CHAIN_BROKEN's exit status");
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
    assert_prints(
        d,
        &["audit", "verify"],
        &["7 line(s), chain intact, keyed", "checkpointed at line 7"],
    );
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
    forged[3] = edited_without_key(&forged[3], "mac", "record.get", "record.put");
    assert_broken_at(&verify(d, &forged, "forged.jsonl"), 4, "forged line 4");
}

/// `line` with `from` replaced by `to` and its last field, `field` (`mac` or `hash`),
/// recomputed as the SHA-256 of the edited line without it: an edit made without the key.
fn edited_without_key(line: &str, field: &str, from: &str, to: &str) -> String {
    let body = line.split(&format!(",\"{field}\":")).next().unwrap().replace(from, to);
    let digest = hex::encode(Sha256::digest(format!("{body}}}").as_bytes()));
    format!("{body},\"{field}\":\"{digest}\"}}")
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

/// A line's fields, its `mac` stripped: what an attacker reads from the file.
fn fields(line: &str) -> vaultdb::audit::Line {
    let body = line.rsplit_once(",\"mac\":").unwrap().0;
    serde_json::from_str(&format!("{body}}}")).unwrap()
}

/// Re-renders `lines` from `from` (0-based) on, each chained to the one before, with
/// `key`: docs/FORMAT.md's recipe followed exactly, with a key that is not the store's.
fn rechain(lines: &[String], from: usize, key: &vaultdb::audit::AuditKey) -> Vec<String> {
    let mut out: Vec<String> = lines[..from].to_vec();
    for line in &lines[from..] {
        let mut l = fields(line);
        if let Some(last) = out.last() {
            l.prev = last.rsplit_once(",\"mac\":\"").unwrap().1[..64].to_owned();
        }
        out.push(l.render(key));
    }
    out
}

/// An attacker holding the log file (and the format) but not the store's key: whatever
/// key it uses (none of the store's clients' would do), its lines fail `audit verify` at
/// the first line it wrote: rechaining the whole log, editing a line and rechaining from
/// there, or appending a line to the genuine log.
#[tokio::test]
async fn a_chain_made_without_the_stores_key_never_verifies() {
    use vaultdb::audit::AuditKey;
    use vaultdb_core::{MemoryBackend, VaultDb};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    assert!(verify(d, &lines, "genuine.jsonl").status.success());
    // Another store's audit key (a store the attacker runs), an all-zero key, and a key
    // made from the file itself.
    let mut b = VaultDb::builder().threshold(2);
    for i in 1..=3 {
        b = b.backend(MemoryBackend::new(format!("m{i}"), "memory"));
    }
    let other = AuditKey::of(&b.open().await.unwrap());
    let file = std::fs::read(log_path(d)).unwrap();
    let keys =
        [other, AuditKey::from_bytes([0; 32]), AuditKey::from_bytes(Sha256::digest(&file).into())];
    for (k, key) in keys.iter().enumerate() {
        // Well formed: the attacker's own chain verifies under its own key.
        let all = rechain(&lines, 0, key).join("\n") + "\n";
        assert!(vaultdb::audit::verify_bytes(all.as_bytes(), Some(key), None).is_ok(), "key {k}");
        assert_broken_at(&verify(d, &rechain(&lines, 0, key), "all.jsonl"), 1, &format!("key {k}"));

        let mut edited = lines.clone();
        edited[3] = edited[3].replace("\"op\":\"record.get\"", "\"op\":\"record.delete\"");
        assert_ne!(edited[3], lines[3]);
        assert_broken_at(&verify(d, &rechain(&edited, 3, key), "edited.jsonl"), 4, "edit line 4");

        let mut appended = lines.clone();
        let mut extra = fields(&lines[6]);
        extra.seq = 8;
        extra.op = "record.delete".into();
        extra.outcome = "OK".into();
        appended.push(extra.render(key));
        let appended = rechain(&appended, 7, key);
        assert_broken_at(&verify(d, &appended, "appended.jsonl"), 8, "append line 8");
    }
}

/// Lines cut off the end, up to the store's checkpoint, stay detected after the writers
/// append new lines past the old end: a writer does not move the checkpoint past a cut
/// (and says so), so `audit verify` names the checkpointed line as rewritten.
#[test]
fn a_cut_log_stays_detected_after_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = make_log(d);
    // Only the last line cut: named as missing.
    std::fs::write(log_path(d), format!("{}\n", lines[..6].join("\n"))).unwrap();
    let out = verify_configured(d);
    assert_broken_at(&out, 7, "last line cut");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut off"));
    // Three lines cut, then four commands append lines 5 to 8 (past the checkpoint's 7).
    std::fs::write(log_path(d), format!("{}\n", lines[..4].join("\n"))).unwrap();
    for i in 0..4 {
        let out = vaultdb(d).args(["get", "a"]).output().unwrap();
        assert!(out.status.success(), "the command itself runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("warning:") && stderr.contains("audit verify"), "{i}: {stderr}");
    }
    let now = std::fs::read_to_string(log_path(d)).unwrap();
    assert_eq!(now.lines().count(), 8);
    let out = verify_configured(d);
    assert_broken_at(&out, 7, "line 7 rewritten after the cut");
    assert!(String::from_utf8_lossy(&out.stderr).contains("checkpointed"));
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
    let out = verify_configured(d);
    assert_broken_at(&out, 1, "emptied log");
    assert!(String::from_utf8_lossy(&out.stderr).contains("emptied or replaced"));
    // A new log at that path verifies, and says which log was there before.
    vaultdb(d).args(["get", "a"]).assert().success();
    assert_prints(d, &["audit", "verify"], &["2 line(s), chain intact", "this path held log"]);
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
    // The store (audit verify needs one; init writes no audit line).
    vaultdb(d).arg("init").assert().success();
    std::fs::create_dir_all(d.join("vaultdb-data")).unwrap();
    std::fs::write(log_path(d), format!("{}\n", v1.join("\n"))).unwrap();
    assert_prints(d, &["audit", "verify"], &["2 line(s), chain intact; v1 lines only, unkeyed"]);
    vaultdb(d).arg("list").assert().success();
    let text = std::fs::read_to_string(log_path(d)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[2].contains("\"op\":\"audit.genesis\"") && lines[2].contains(&prev));
    assert_prints(d, &["audit", "verify"], &["4 line(s), chain intact, keyed", "lines 1-2 are v1"]);
    // Rewriting a v1 line now breaks the keyed line that pinned it.
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    edited[1] = edited_without_key(&edited[1], "hash", "record.list", "record.get");
    assert_broken_at(&verify(d, &edited, "edited.jsonl"), 3, "v1 line 2 rewritten");
}

#[test]
fn missing_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = vaultdb(dir.path()).args(["audit", "verify", "nope.jsonl"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "INVALID_CONFIG's exit status");
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
