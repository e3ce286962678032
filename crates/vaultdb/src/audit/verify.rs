//! Verification of a log file's bytes ([`verify_bytes`]): every line well formed and
//! numbered, v1 lines hash-chained, keyed lines authentic under the store's key and
//! chained by `mac`, one genesis line, and the stored checkpoint's line present unchanged.

use super::checkpoint::Checkpoint;
use super::line::{AuditKey, GENESIS_ACTOR, GENESIS_OP, Parsed, ZERO_PREV, parse, v1_genesis};

/// A verified log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Lines checked.
    pub lines: u64,
    /// How many of them, from the first, are v1 lines (unkeyed).
    pub v1_lines: u64,
    /// The log's id, if it has keyed lines.
    pub log: Option<String>,
    /// The last line's `mac` (keyed), or its SHA-256 (v1), or the v1 genesis value for an
    /// empty log.
    pub last: String,
    /// The checkpoint's line, if a checkpoint was given.
    pub checkpointed: Option<u64>,
}

/// The first line that fails verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Lines of a log file: split on `\n`, a final unterminated line included.
pub(super) fn split_lines(all: &[u8]) -> Vec<&[u8]> {
    if all.is_empty() {
        return Vec::new();
    }
    let content = all.strip_suffix(b"\n").unwrap_or(all);
    content.split(|&b| b == b'\n').collect()
}

/// The id of the log in `all` (its first keyed line's, unverified): which checkpoint to
/// fetch before calling [`verify_bytes`]. `None` if no line is a keyed line.
pub fn log_id(all: &[u8]) -> Option<String> {
    split_lines(all).into_iter().find_map(|l| match parse(l, None) {
        Ok(Parsed::V2 { line, .. }) => Some(line.log),
        _ => None,
    })
}

/// Verifies a log file's bytes: keyed lines under `key` (required if there are any), and,
/// if the store holds a checkpoint of this log, that its line is in the log unchanged.
///
/// # Errors
/// The first bad line (for lines cut off after the checkpoint, the first missing one).
pub fn verify_bytes(
    all: &[u8],
    key: Option<&AuditKey>,
    checkpoint: Option<&Checkpoint>,
) -> Result<Verified, Broken> {
    let mut v1_prev = v1_genesis();
    // The log's id and the previous line's mac, once past the genesis line.
    let mut keyed: Option<(String, String)> = None;
    let mut v1_lines = 0u64;
    let mut n = 0u64;
    for (i, raw) in split_lines(all).into_iter().enumerate() {
        n = i as u64 + 1;
        let bad = |reason: String| Broken { line: n, reason };
        if raw.is_empty() {
            return Err(bad("empty line".into()));
        }
        let seq = match parse(raw, key).map_err(bad)? {
            Parsed::V1 { seq, prev, hash } => {
                if keyed.is_some() {
                    return Err(bad("an unkeyed (v1) line after keyed lines".into()));
                }
                if prev != v1_prev {
                    return Err(bad(if n == 1 {
                        "its prev is not the genesis value (lines before it were removed)".into()
                    } else {
                        format!(
                            "its prev is not the SHA-256 of line {} (a line was removed, \
                             inserted, reordered or edited here)",
                            n - 1
                        )
                    }));
                }
                v1_lines = n;
                v1_prev = hash;
                seq
            }
            Parsed::V2 { line, mac, authentic } => {
                if key.is_none() {
                    return Err(bad("a keyed line: verifying it needs the store's key".into()));
                }
                if !authentic {
                    return Err(bad("its MAC does not verify: the line was edited or forged (or \
                                    written with another store's key)"
                        .into()));
                }
                let genesis = line.op == GENESIS_OP && line.actor == GENESIS_ACTOR;
                match &keyed {
                    None if !genesis => {
                        return Err(bad("the first keyed line is not a genesis line (lines \
                                        before it were removed)"
                            .into()));
                    }
                    None => {
                        let want = if n == 1 { ZERO_PREV } else { v1_prev.as_str() };
                        if line.prev != want {
                            return Err(bad(format!(
                                "the genesis line's prev is not {} (lines before it were \
                                 removed or edited)",
                                if n == 1 { "zero" } else { "the SHA-256 of the last v1 line" }
                            )));
                        }
                    }
                    Some(_) if genesis => {
                        return Err(bad(
                            "a second genesis line (another log was spliced in)".into()
                        ));
                    }
                    Some((log, _)) if *log != line.log => {
                        return Err(
                            bad("it belongs to another log (lines were spliced in)".into()),
                        );
                    }
                    Some((_, prev)) if *prev != line.prev => {
                        return Err(bad(format!(
                            "its prev is not the MAC of line {} (a line was removed, inserted \
                             or reordered here)",
                            n - 1
                        )));
                    }
                    Some(_) => {}
                }
                if let Some(cp) = checkpoint.filter(|c| c.seq == n && c.log == line.log)
                    && cp.mac != mac
                {
                    return Err(bad("it is not the line the store checkpointed: the log was \
                                    rewritten after its checkpoint"
                        .into()));
                }
                keyed = Some((line.log, mac));
                line.seq
            }
        };
        if seq != n {
            return Err(bad(format!(
                "sequence number {seq} where {n} was expected (lines removed, inserted or \
                 reordered)"
            )));
        }
    }
    let log = keyed.as_ref().map(|(log, _)| log.clone());
    if let Some(cp) = checkpoint {
        if log.as_deref() != Some(cp.log.as_str()) {
            return Err(Broken {
                line: 1,
                reason: format!("the store's checkpoint is of log {}, not this log", cp.log),
            });
        }
        if cp.seq > n {
            return Err(Broken {
                line: n + 1,
                reason: format!(
                    "missing: the store's checkpoint of this log is at line {}, the log ends at \
                     line {n} (lines were cut off its end)",
                    cp.seq
                ),
            });
        }
    }
    let last = match &keyed {
        Some((_, mac)) => mac.clone(),
        None => v1_prev,
    };
    Ok(Verified { lines: n, v1_lines, log, last, checkpointed: checkpoint.map(|c| c.seq) })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use vaultdb_core::{MemoryBackend, VaultDb};

    use super::*;
    use crate::audit::{AuditLog, CheckpointError, Event};

    /// A store, its audit key, and the path `file` in a new directory (removed when the
    /// returned `TempDir` is dropped).
    async fn setup(file: &str) -> (VaultDb, AuditKey, tempfile::TempDir, PathBuf) {
        let mut b = VaultDb::builder().threshold(2);
        for i in 1..=3 {
            b = b.backend(MemoryBackend::new(format!("m{i}"), "memory"));
        }
        let db = b.open().await.unwrap();
        let key = AuditKey::of(&db);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        (db, key, dir, path)
    }

    fn ev(op: &str) -> Event<'_> {
        Event { actor: "admin", op, tag: Some("tagtagtag"), outcome: "OK", count: None }
    }

    fn join(l: &[&str]) -> String {
        format!("{}\n", l.join("\n"))
    }

    #[tokio::test]
    async fn chain_verifies_and_detects_tampering() {
        let (db, key, _dir, path) = setup("sub/audit.jsonl").await;
        let log = Arc::new(AuditLog::new(&path, &db));
        for op in ["a", "b", "c", "d"] {
            log.record(ev(op)).await.unwrap();
        }
        let cp = log.checkpoint().await.unwrap().unwrap();
        assert_eq!(cp.seq, 5);
        let all = std::fs::read(&path).unwrap();
        assert_eq!(log_id(&all), Some(cp.log.clone()));
        let v = verify_bytes(&all, Some(&key), Some(&cp)).unwrap();
        assert_eq!((v.lines, v.v1_lines, v.checkpointed), (5, 0, Some(5)));
        assert_eq!(v.last, cp.mac);
        let text = String::from_utf8(all).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains(&format!("\"op\":\"{GENESIS_OP}\"")));
        assert!(lines[0].contains(&format!("\"prev\":\"{ZERO_PREV}\"")));
        let check = |l: &[&str]| verify_bytes(join(l).as_bytes(), Some(&key), Some(&cp));

        let mut edited = lines.clone();
        let e = edited[1].replace("\"op\":\"a\"", "\"op\":\"x\"");
        edited[1] = &e;
        assert_eq!(check(&edited).unwrap_err().line, 2);

        let mut removed = lines.clone();
        removed.remove(2);
        assert_eq!(check(&removed).unwrap_err().line, 3);

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(check(&swapped).unwrap_err().line, 2);

        assert_eq!(check(&lines[1..]).unwrap_err().line, 1);
        let cut = check(&lines[..3]).unwrap_err();
        assert_eq!(cut.line, 4, "{cut}");
        assert!(cut.reason.contains("cut off"), "{cut}");
        // Without a checkpoint a cut is invisible, and another store's key fails line 1.
        assert!(verify_bytes(join(&lines[..3]).as_bytes(), Some(&key), None).is_ok());
        let other = AuditKey::from_bytes([1; 32]);
        assert_eq!(verify_bytes(text.as_bytes(), Some(&other), None).unwrap_err().line, 1);
        assert_eq!(verify_bytes(text.as_bytes(), None, None).unwrap_err().line, 1);
    }

    #[tokio::test]
    async fn a_v1_log_is_continued_and_its_lines_are_pinned() {
        use sha2::{Digest, Sha256};
        let (db, key, _dir, path) = setup("audit.jsonl").await;
        // Two v1 lines, chained as the v1 format did.
        let mut prev = v1_genesis();
        let mut text = String::new();
        for seq in 1..=2 {
            let body = format!(
                "{{\"seq\":{seq},\"ts\":\"t\",\"actor\":\"cli\",\"op\":\"record.get\",\
                 \"tag\":null,\"outcome\":\"OK\",\"prev\":\"{prev}\"}}"
            );
            let hash = hex::encode(Sha256::digest(body.as_bytes()));
            let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
            prev = hex::encode(Sha256::digest(line.as_bytes()));
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        let v1 = verify_bytes(text.as_bytes(), None, None).unwrap();
        assert_eq!((v1.lines, v1.v1_lines, v1.log), (2, 2, None));
        let log = Arc::new(AuditLog::new(&path, &db));
        log.record(ev("a")).await.unwrap();
        let cp = log.checkpoint().await.unwrap().unwrap();
        let all = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].contains(&format!("\"prev\":\"{prev}\"")), "{}", lines[2]);
        let v = verify_bytes(all.as_bytes(), Some(&key), Some(&cp)).unwrap();
        assert_eq!((v.lines, v.v1_lines, v.checkpointed), (4, 2, Some(4)));
        // A v1 line rewritten with its hashes recomputed no longer matches the genesis line.
        let mut forged = lines.clone();
        let body = format!(
            "{{\"seq\":2,\"ts\":\"t\",\"actor\":\"cli\",\"op\":\"record.put\",\"tag\":null,\
             \"outcome\":\"OK\",\"prev\":\"{}\"}}",
            hex::encode(Sha256::digest(lines[0].as_bytes()))
        );
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        forged[1] = &line;
        assert_eq!(verify_bytes(join(&forged).as_bytes(), Some(&key), None).unwrap_err().line, 3);
    }

    #[tokio::test]
    async fn appends_after_a_torn_line_start_a_new_log_and_the_tear_is_reported() {
        use std::io::Write;
        let (db, key, _dir, path) = setup("audit.jsonl").await;
        let log = AuditLog::new(&path, &db);
        log.append(ev("a")).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":3,\"ts\"").unwrap();
        drop(f);
        let head = log.append(ev("c")).unwrap();
        assert_eq!(head.seq, 5, "genesis at 4, the event at 5");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert_eq!(verify_bytes(text.as_bytes(), Some(&key), None).unwrap_err().line, 3);
    }

    #[tokio::test]
    async fn a_checkpoint_does_not_move_past_a_cut_or_a_rewrite() {
        let (db, key, _dir, path) = setup("audit.jsonl").await;
        let log = Arc::new(AuditLog::new(&path, &db));
        for op in ["a", "b", "c"] {
            log.record(ev(op)).await.unwrap();
        }
        assert_eq!(log.checkpoint().await.unwrap().unwrap().seq, 4);
        assert_eq!(log.unchecked(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Cut the last two lines off; new lines follow, past the old checkpoint's seq.
        std::fs::write(&path, join(&lines[..2])).unwrap();
        for op in ["d", "e", "f"] {
            log.record(ev(op)).await.unwrap();
        }
        let e = log.checkpoint().await.unwrap_err();
        assert!(matches!(e, CheckpointError::Rewritten { checkpointed: 4 }), "{e}");
        assert!(e.is_tampering());
        assert!(log.unchecked() > 0, "retried later");
        let cp = crate::audit::read_checkpoint(&db, &lines_log(&text)).await.unwrap().unwrap();
        assert_eq!(cp.seq, 4, "the stored checkpoint keeps the evidence");
        let all = std::fs::read(&path).unwrap();
        assert_eq!(verify_bytes(&all, Some(&key), Some(&cp)).unwrap_err().line, 4);
        // Cut below the checkpoint, with nothing after: a cut.
        std::fs::write(&path, join(&lines[..2])).unwrap();
        let e = log.checkpoint().await.unwrap_err();
        assert!(matches!(e, CheckpointError::Cut { checkpointed: 4, last: 2 }), "{e}");
    }

    fn lines_log(text: &str) -> String {
        log_id(text.as_bytes()).unwrap()
    }
}
