//! The audit log: one JSON object per line, hash-chained so that editing, removing,
//! inserting or reordering a line is evident.
//!
//! A line looks like this (one line in the file; wrapped here):
//!
//! ```text
//! {"seq":1,"ts":"2026-05-01T12:00:00.123Z","actor":"admin","op":"record.put",
//!  "tag":"k2mf0q4v8s1c9u3e5g7i2k4m6o","outcome":"OK","prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//!
//! - `seq` counts lines from 1; `ts` is UTC; `actor` is the token's name (`cli` for the
//!   command line, `anonymous` for a request without a valid token); `op` is the operation;
//!   `tag` is the record's name tag ([`vaultdb_core::VaultDb::name_tag`]), never its id,
//!   and `null` for operations on no single record; `outcome` is `OK` or the error code.
//!   Record data never appears.
//! - `prev` is the lowercase hex SHA-256 of the previous line's bytes (without its newline);
//!   the first line's `prev` is [`genesis`], the SHA-256 of `vaultdb audit log v1 genesis`.
//! - `hash` is the SHA-256 of the line's own text with `,"hash":"..."` removed, i.e. of
//!   everything up to and including `prev`, closed by `}`.
//!
//! [`verify`] recomputes both for every line and names the first line where either fails.
//! A chain cannot show that lines were cut off its end: keep the last hash that
//! `vaultdb audit verify` prints somewhere else (a ticket, a second log) to detect that.
//!
//! Appends take an exclusive lock on the file (`flock`), read the last line, and write the
//! new one, so a server and command-line runs can share one log.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The text whose SHA-256 is the first line's `prev`.
pub const GENESIS_TEXT: &str = "vaultdb audit log v1 genesis";

/// `prev` of the first line: hex SHA-256 of [`GENESIS_TEXT`].
pub fn genesis() -> String {
    hex::encode(Sha256::digest(GENESIS_TEXT.as_bytes()))
}

/// The fields of a line, in the order they are written, without `hash`.
#[derive(Debug, Serialize)]
struct Body<'a> {
    seq: u64,
    ts: &'a str,
    actor: &'a str,
    op: &'a str,
    tag: Option<&'a str>,
    outcome: &'a str,
    prev: &'a str,
}

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// One audit event.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Who: the token's name, `cli`, or `anonymous`.
    pub actor: &'a str,
    /// What: `record.put`, `record.get`, ...
    pub op: &'a str,
    /// The record's name tag (text form), if the operation concerns one record.
    pub tag: Option<&'a str>,
    /// `OK` or the error code.
    pub outcome: &'a str,
}

/// An append-only, hash-chained audit log file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// A log at `path` (created, with its directory, on the first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event, chained to the last line, and syncs it to disk.
    ///
    /// # Errors
    /// If the file cannot be created, locked, read or written.
    pub fn append(&self, event: Event<'_>) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new().read(true).append(true).create(true).open(&self.path)?;
        f.lock()?;
        let (last, ends_with_newline) = last_line(&mut f)?;
        let (seq, prev) = match &last {
            None => (1, genesis()),
            Some(line) => {
                let seq = match parse_line(line) {
                    Ok(p) => p.seq + 1,
                    // A damaged last line: count lines instead (verify will flag it).
                    Err(_) => count_lines(&mut f)? + 1,
                };
                (seq, hex::encode(Sha256::digest(line)))
            }
        };
        let ts = rfc3339_now();
        let body = Body {
            seq,
            ts: &ts,
            actor: event.actor,
            op: event.op,
            tag: event.tag,
            outcome: event.outcome,
            prev: &prev,
        };
        let mut out = Vec::with_capacity(256);
        if last.is_some() && !ends_with_newline {
            out.push(b'\n');
        }
        out.extend_from_slice(&render(&body)?);
        out.push(b'\n');
        f.write_all(&out)?;
        f.sync_data()?;
        Ok(())
        // The lock is released when `f` is dropped.
    }

    /// [`AuditLog::append`] on the blocking thread pool; failures are logged (they never
    /// fail the request that caused them, which has already happened).
    pub async fn record(self: &Arc<Self>, event: Event<'_>) -> io::Result<()> {
        let this = Arc::clone(self);
        let actor = event.actor.to_owned();
        let op = event.op.to_owned();
        let tag = event.tag.map(str::to_owned);
        let outcome = event.outcome.to_owned();
        let r = tokio::task::spawn_blocking(move || {
            this.append(Event { actor: &actor, op: &op, tag: tag.as_deref(), outcome: &outcome })
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        if let Err(e) = &r {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
        r
    }
}

/// The full line for `body`: its JSON with `"hash"` appended.
fn render(body: &Body<'_>) -> io::Result<Vec<u8>> {
    let mut json = serde_json::to_vec(body).map_err(io::Error::other)?;
    let hash = hex::encode(Sha256::digest(&json));
    json.pop(); // the closing brace
    json.extend_from_slice(b",\"hash\":\"");
    json.extend_from_slice(hash.as_bytes());
    json.extend_from_slice(b"\"}");
    Ok(json)
}

/// A parsed line (all fields, for checking).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Every field is parsed so that a malformed entry is rejected.
struct Parsed {
    seq: u64,
    ts: String,
    actor: String,
    op: String,
    tag: Option<String>,
    outcome: String,
    prev: String,
}

/// Checks a line's own hash and parses it.
fn parse_line(line: &[u8]) -> Result<Parsed, String> {
    let n = line.len();
    if n < HASH_SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return Err("not an audit entry (no hash at the end)".into());
    }
    let suffix = &line[n - HASH_SUFFIX_LEN..];
    if !suffix.starts_with(b",\"hash\":\"") {
        return Err("not an audit entry (no hash at the end)".into());
    }
    let hash = &suffix[9..9 + 64];
    let mut body = line[..n - HASH_SUFFIX_LEN].to_vec();
    body.push(b'}');
    let actual = hex::encode(Sha256::digest(&body));
    if actual.as_bytes() != hash {
        return Err("its hash does not match its contents (the line was edited)".into());
    }
    serde_json::from_slice(&body).map_err(|e| format!("not a valid audit entry: {e}"))
}

/// Reads the last line (without its newline) and whether the file ends with a newline.
fn last_line(f: &mut File) -> io::Result<(Option<Vec<u8>>, bool)> {
    let len = f.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((None, true));
    }
    let mut window: u64 = 8 << 10;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        Read::by_ref(f).take(len - start).read_to_end(&mut buf)?;
        let ends_nl = buf.last() == Some(&b'\n');
        let content = if ends_nl { &buf[..buf.len() - 1] } else { &buf[..] };
        match content.iter().rposition(|&b| b == b'\n') {
            Some(i) => return Ok((Some(content[i + 1..].to_vec()), ends_nl)),
            None if start == 0 => return Ok((Some(content.to_vec()), ends_nl)),
            None => window = window.saturating_mul(4),
        }
    }
}

fn count_lines(f: &mut File) -> io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut all = Vec::new();
    f.read_to_end(&mut all)?;
    Ok(split_lines(&all).len() as u64)
}

/// Lines of a log file: split on `\n`, a final unterminated line included.
fn split_lines(all: &[u8]) -> Vec<&[u8]> {
    if all.is_empty() {
        return Vec::new();
    }
    let content = all.strip_suffix(b"\n").unwrap_or(all);
    content.split(|&b| b == b'\n').collect()
}

/// A verified chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Lines checked.
    pub lines: u64,
    /// Hex SHA-256 of the last line (the genesis value for an empty log): record it
    /// elsewhere to detect later truncation.
    pub last_hash: String,
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

/// Recomputes the chain of the log at `path`.
///
/// # Errors
/// `Err(Ok(broken))` names the first bad line; `Err(Err(io))` if the file cannot be read.
pub fn verify(path: &Path) -> Result<Verified, Result<Broken, io::Error>> {
    let all = std::fs::read(path).map_err(Err)?;
    verify_bytes(&all).map_err(Ok)
}

/// [`verify`] on the file's bytes.
///
/// # Errors
/// The first bad line.
pub fn verify_bytes(all: &[u8]) -> Result<Verified, Broken> {
    let mut prev = genesis();
    let mut n = 0u64;
    for (i, line) in split_lines(all).into_iter().enumerate() {
        n = i as u64 + 1;
        let bad = |reason: String| Broken { line: n, reason };
        if line.is_empty() {
            return Err(bad("empty line".into()));
        }
        let body = parse_line(line).map_err(bad)?;
        if body.prev != prev {
            return Err(bad(if n == 1 {
                "its prev is not the genesis value (lines before it were removed)".into()
            } else {
                format!(
                    "its prev is not the SHA-256 of line {} (a line was removed, inserted, \
                     reordered or edited here)",
                    n - 1
                )
            }));
        }
        if body.seq != n {
            return Err(bad(format!(
                "sequence number {} where {n} was expected (lines removed, inserted or \
                 reordered)",
                body.seq
            )));
        }
        prev = hex::encode(Sha256::digest(line));
    }
    Ok(Verified { lines: n, last_hash: prev })
}

/// The current UTC time as RFC 3339 with milliseconds, e.g. `2026-05-01T12:00:00.123Z`.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

/// Formats seconds since the Unix epoch (UTC).
pub fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: &str) -> Event<'_> {
        Event { actor: "admin", op, tag: Some("tagtagtag"), outcome: "OK" }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_767_225_599, 999), "2025-12-31T23:59:59.999Z");
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let log = AuditLog::new(&path);
        for op in ["a", "b", "c", "d"] {
            log.append(ev(op)).unwrap();
        }
        let v = verify(&path).unwrap();
        assert_eq!(v.lines, 4);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains(&format!("\"prev\":\"{}\"", genesis())));
        assert!(lines[3].contains("\"seq\":4"));
        let join = |l: &[&str]| format!("{}\n", l.join("\n"));

        let mut edited = lines.clone();
        let e = edited[1].replace("\"op\":\"b\"", "\"op\":\"x\"");
        edited[1] = &e;
        assert_eq!(verify_bytes(join(&edited).as_bytes()).unwrap_err().line, 2);

        let mut removed = lines.clone();
        removed.remove(2);
        assert_eq!(verify_bytes(join(&removed).as_bytes()).unwrap_err().line, 3);

        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(verify_bytes(join(&swapped).as_bytes()).unwrap_err().line, 2);

        let first_gone = &lines[1..];
        assert_eq!(verify_bytes(join(first_gone).as_bytes()).unwrap_err().line, 1);
    }

    #[test]
    fn appends_after_a_torn_line_keep_counting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(&path);
        log.append(ev("a")).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"ts\"").unwrap();
        drop(f);
        log.append(ev("c")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().nth(2).unwrap().contains("\"seq\":3"));
        assert_eq!(verify(&path).unwrap_err().unwrap().line, 2);
    }
}
