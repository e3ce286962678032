//! [`AuditLog`]: appending lines to the file (under an exclusive lock, synced to disk), and
//! checkpointing the chain's head in the store.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use vaultdb_core::{VaultDb, VaultError};

use super::checkpoint::{Checkpoint, read_checkpoint};
use super::line::{AuditKey, GENESIS_ACTOR, GENESIS_OP, Line, Parsed, ZERO_PREV, parse};
use super::{Event, rfc3339_now};

/// The last line of a log: which log, which line, and its `mac`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The log's id.
    pub log: String,
    /// The line's `seq`.
    pub seq: u64,
    /// The line's `mac`.
    pub mac: String,
}

/// Why a checkpoint was not written.
#[derive(Debug)]
pub enum CheckpointError {
    /// The log file could not be read.
    Io(io::Error),
    /// The store could not read or write the checkpoint.
    Store(VaultError),
    /// The stored checkpoint record is not a checkpoint.
    Damaged(String),
    /// The log holds fewer lines than its stored checkpoint says it had.
    Cut {
        /// The stored checkpoint's line.
        checkpointed: u64,
        /// The log's last line.
        last: u64,
    },
    /// The line the stored checkpoint names is not in the log as it was.
    Rewritten {
        /// The stored checkpoint's line.
        checkpointed: u64,
    },
    /// The log's last line does not verify under the store's key.
    Unverifiable(String),
    /// The store did not answer within [`CHECKPOINT_TIMEOUT`].
    TimedOut,
}

/// How long a checkpoint may take: a store with a backend that hangs leaves the previous
/// checkpoint in place rather than holding up the command (or the server's shutdown).
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(5);

impl CheckpointError {
    /// Whether the error shows the log was tampered with (rather than being unavailable).
    pub fn is_tampering(&self) -> bool {
        matches!(self, Self::Cut { .. } | Self::Rewritten { .. } | Self::Unverifiable(_))
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the audit log: {e}"),
            Self::Store(e) => write!(f, "the store: {} ({e})", e.code()),
            Self::Damaged(m) => f.write_str(m),
            Self::Cut { checkpointed, last } => write!(
                f,
                "the audit log ends at line {last} but its checkpoint is at line {checkpointed}: \
                 lines were cut off"
            ),
            Self::Rewritten { checkpointed } => write!(
                f,
                "line {checkpointed} of the audit log is not the line its checkpoint names: the \
                 log was rewritten"
            ),
            Self::Unverifiable(m) => write!(f, "the audit log's last line: {m}"),
            Self::TimedOut => {
                write!(f, "the store did not answer within {}s", CHECKPOINT_TIMEOUT.as_secs())
            }
        }
    }
}

impl std::error::Error for CheckpointError {}

impl From<io::Error> for CheckpointError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// An append-only audit log file, bound to the store whose key authenticates its lines and
/// whose system namespace keeps its checkpoints.
pub struct AuditLog {
    path: PathBuf,
    key: AuditKey,
    db: VaultDb,
    fail_open: bool,
    /// Lines this handle appended since its last checkpoint.
    unchecked: AtomicU64,
    /// One checkpoint at a time per handle.
    checkpointing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

/// Creates `path`'s directory if needed.
fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Checks that the log at `path` can be opened for appending (creating it and its
/// directory if needed): what operations check before they run, when the log fails closed.
///
/// # Errors
/// Why it cannot.
pub fn check_writable(path: &Path) -> io::Result<()> {
    create_parent(path)?;
    OpenOptions::new().append(true).create(true).open(path).map(drop)
}

/// 16 random bytes in hex: a new log's id.
fn new_log_id() -> io::Result<String> {
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(hex::encode(id))
}

impl AuditLog {
    /// The log at `path` (created, with its directory, on the first append), for the store
    /// `db`. It fails closed: see [`AuditLog::with_fail_open`].
    pub fn new(path: impl Into<PathBuf>, db: &VaultDb) -> Self {
        Self {
            path: path.into(),
            key: AuditKey::of(db),
            db: db.clone(),
            fail_open: false,
            unchecked: AtomicU64::new(0),
            checkpointing: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether operations go on when their lines cannot be written (`[audit] fail_open`;
    /// off by default: they are refused). This handle only records the choice; the command
    /// line and the server apply it.
    #[must_use]
    pub fn with_fail_open(mut self, on: bool) -> Self {
        self.fail_open = on;
        self
    }

    /// Whether the log fails open.
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`check_writable`] on this log's path.
    ///
    /// # Errors
    /// Why it cannot be written.
    pub fn check_writable(&self) -> io::Result<()> {
        check_writable(&self.path)
    }

    /// Lines appended through this handle since its last checkpoint.
    pub fn unchecked(&self) -> u64 {
        self.unchecked.load(Ordering::Acquire)
    }

    /// Appends one event, chained to the last line, and syncs it to disk; a log that is
    /// empty, holds only v1 lines, or ends with a damaged line first gets a genesis line.
    /// Returns the new line's head.
    ///
    /// # Errors
    /// If the file cannot be created, locked, read or written.
    pub fn append(&self, event: Event<'_>) -> io::Result<Head> {
        create_parent(&self.path)?;
        let mut f = OpenOptions::new().read(true).append(true).create(true).open(&self.path)?;
        f.lock()?;
        let (last, ends_with_newline) = last_line(&mut f)?;
        let mut out = Vec::with_capacity(1024);
        if last.is_some() && !ends_with_newline {
            out.push(b'\n');
        }
        let ts = rfc3339_now();
        let parsed = last.as_deref().map(|l| parse(l, None));
        let (log, seq, prev, written) = match parsed {
            Some(Ok(Parsed::V2 { line, mac, .. })) => (line.log, line.seq + 1, mac, 1),
            other => {
                // A new log: a fresh file, the continuation of a v1 log, or a restart after a
                // damaged last line (which verification reports).
                let (seq, prev) = match (other, &last) {
                    (Some(Ok(Parsed::V1 { seq, hash, .. })), _) => (seq + 1, hash),
                    (Some(_), Some(raw)) => {
                        (count_lines(&mut f)? + 1, hex::encode(Sha256::digest(raw)))
                    }
                    _ => (1, ZERO_PREV.to_owned()),
                };
                let genesis = Line {
                    seq,
                    ts: ts.clone(),
                    log: new_log_id()?,
                    actor: GENESIS_ACTOR.to_owned(),
                    op: GENESIS_OP.to_owned(),
                    tag: None,
                    outcome: "OK".to_owned(),
                    count: None,
                    prev,
                };
                let (text, mac) = genesis.render_with_mac(&self.key);
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
                (genesis.log, seq + 1, mac, 2)
            }
        };
        let line = Line {
            seq,
            ts,
            log,
            actor: event.actor.to_owned(),
            op: event.op.to_owned(),
            tag: event.tag.map(str::to_owned),
            outcome: event.outcome.to_owned(),
            count: event.count,
            prev,
        };
        let (text, mac) = line.render_with_mac(&self.key);
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
        f.write_all(&out)?;
        f.sync_data()?;
        self.unchecked.fetch_add(written, Ordering::AcqRel);
        Ok(Head { log: line.log, seq, mac })
        // The lock is released when `f` is dropped.
    }

    /// [`AuditLog::append`] on the blocking thread pool.
    ///
    /// # Errors
    /// As [`AuditLog::append`].
    pub async fn record(self: &Arc<Self>, event: Event<'_>) -> io::Result<Head> {
        let this = Arc::clone(self);
        let actor = event.actor.to_owned();
        let op = event.op.to_owned();
        let tag = event.tag.map(str::to_owned);
        let outcome = event.outcome.to_owned();
        let count = event.count;
        tokio::task::spawn_blocking(move || {
            this.append(Event {
                actor: &actor,
                op: &op,
                tag: tag.as_deref(),
                outcome: &outcome,
                count,
            })
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
    }

    /// Checkpoints the log's head in the store: reads the stored checkpoint, then the log's
    /// last line (which must verify under the store's key), checks that the stored
    /// checkpoint's line is still in the log unchanged, and stores the new head if it is
    /// further on. A checkpoint never moves past a cut or a rewrite: those are errors, and
    /// the stored checkpoint keeps the evidence for `vaultdb audit verify`. Returns the
    /// checkpoint in force (`None` for a log with no keyed line).
    ///
    /// # Errors
    /// [`CheckpointError`]: the file or the store is unavailable (or slower than
    /// [`CHECKPOINT_TIMEOUT`]), or the log was cut, rewritten or forged.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let _one = self.checkpointing.lock().await;
        let unchecked = self.unchecked.swap(0, Ordering::AcqRel);
        let r = tokio::time::timeout(CHECKPOINT_TIMEOUT, self.checkpoint_now())
            .await
            .unwrap_or(Err(CheckpointError::TimedOut));
        if r.is_err() {
            self.unchecked.fetch_add(unchecked.max(1), Ordering::AcqRel);
        }
        r
    }

    async fn checkpoint_now(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let path = self.path.clone();
        let Some(log) = blocking(move || current_log(&path)).await? else {
            return Ok(None);
        };
        // The stored checkpoint first, then the head: the file only grows, so the head read
        // second is at or past any line a checkpoint read first names.
        let stored = read_checkpoint(&self.db, &log).await?;
        let (path, key, s) = (self.path.clone(), self.key.clone(), stored.clone());
        let (head, canonical) = blocking(move || {
            let head = head_after(&path, &key, &log, s.as_ref())?;
            let canonical = std::fs::canonicalize(&path)?;
            Ok((head, canonical))
        })
        .await?;
        if let Some(s) = stored.filter(|s| s.seq >= head.seq) {
            return Ok(Some(s));
        }
        let cp = Checkpoint {
            log: head.log,
            seq: head.seq,
            mac: head.mac,
            ts: rfc3339_now(),
            path: canonical.to_string_lossy().into_owned(),
        };
        self.db.system().put(cp.record()).await.map_err(CheckpointError::Store)?;
        Ok(Some(cp))
    }
}

/// Runs `f` on the blocking thread pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CheckpointError> + Send + 'static,
) -> Result<T, CheckpointError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(CheckpointError::Io(io::Error::other(e))))
}

/// Opens the log for reading under a shared lock (appenders hold an exclusive one, so only
/// whole lines are seen); `None` if there is no file.
fn open_shared(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => {
            f.lock_shared()?;
            Ok(Some(f))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id of the log whose last line is at `path` (unverified); `None` if its last line is
/// not a keyed line.
fn current_log(path: &Path) -> Result<Option<String>, CheckpointError> {
    let Some(mut f) = open_shared(path)? else { return Ok(None) };
    let (last, _) = last_line(&mut f)?;
    Ok(match last.as_deref().map(|l| parse(l, None)) {
        Some(Ok(Parsed::V2 { line, .. })) => Some(line.log),
        _ => None,
    })
}

/// The head of log `log` at `path`, checked: its last line verifies under `key`, and the
/// line `stored` names (if any) is still there with its `mac`.
fn head_after(
    path: &Path,
    key: &AuditKey,
    log: &str,
    stored: Option<&Checkpoint>,
) -> Result<Head, CheckpointError> {
    let Some(mut f) = open_shared(path)? else {
        return Err(CheckpointError::Cut { checkpointed: stored.map_or(0, |s| s.seq), last: 0 });
    };
    let (last, _) = last_line(&mut f)?;
    let head = match last.as_deref().map(|l| parse(l, Some(key))) {
        Some(Ok(Parsed::V2 { line, mac, authentic: true })) if line.log == log => {
            Head { log: line.log, seq: line.seq, mac }
        }
        Some(Ok(Parsed::V2 { authentic: true, .. })) => {
            return Err(CheckpointError::Unverifiable("it belongs to another log".into()));
        }
        Some(Ok(Parsed::V2 { .. })) => {
            return Err(CheckpointError::Unverifiable(
                "its MAC does not verify under the store's key".into(),
            ));
        }
        Some(Err(e)) => return Err(CheckpointError::Unverifiable(e)),
        Some(Ok(Parsed::V1 { .. })) | None => {
            return Err(CheckpointError::Unverifiable("it is not a keyed line".into()));
        }
    };
    if let Some(s) = stored {
        if s.seq > head.seq {
            return Err(CheckpointError::Cut { checkpointed: s.seq, last: head.seq });
        }
        let line = line_from_end(&mut f, head.seq - s.seq)?;
        let same = match line.as_deref().map(|l| parse(l, None)) {
            Some(Ok(Parsed::V2 { line, mac, .. })) => line.seq == s.seq && mac == s.mac,
            _ => false,
        };
        if !same {
            return Err(CheckpointError::Rewritten { checkpointed: s.seq });
        }
    }
    Ok(head)
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

/// The line `back` lines before the last one (0: the last line), without its newline;
/// `None` if the file has fewer lines. Reads backwards from the end, 64 KiB at a time,
/// keeping only that line.
fn line_from_end(f: &mut File, back: u64) -> io::Result<Option<Vec<u8>>> {
    const CHUNK: u64 = 64 << 10;
    let len = f.seek(SeekFrom::End(0))?;
    let mut end = len; // the content ends here (a final newline excluded)
    if len > 0 {
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut b)?;
        if b[0] == b'\n' {
            end = len - 1;
        }
    }
    let mut line_end = end; // where the line being scanned ends
    let mut seen = 0u64; // lines passed so far, counted from the end
    let mut pos = end;
    let mut buf = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        buf.resize((pos - start) as usize, 0);
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        for (i, &b) in buf.iter().enumerate().rev() {
            if b == b'\n' {
                let at = start + i as u64;
                if seen == back {
                    return read_range(f, at + 1, line_end).map(Some);
                }
                seen += 1;
                line_end = at;
            }
        }
        pos = start;
    }
    if seen == back && end > 0 { read_range(f, 0, line_end).map(Some) } else { Ok(None) }
}

fn read_range(f: &mut File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; (end - start) as usize];
    f.seek(SeekFrom::Start(start))?;
    f.read_exact(&mut out)?;
    Ok(out)
}

fn count_lines(f: &mut File) -> io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut all = Vec::new();
    f.read_to_end(&mut all)?;
    Ok(super::verify::split_lines(&all).len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let long = "x".repeat(150_000);
        for (text, back, want) in [
            ("a\nbb\nccc\n", 0, Some("ccc")),
            ("a\nbb\nccc\n", 1, Some("bb")),
            ("a\nbb\nccc\n", 2, Some("a")),
            ("a\nbb\nccc\n", 3, None),
            ("a\nbb\nccc", 0, Some("ccc")),
            ("a\nbb\nccc", 2, Some("a")),
            ("", 0, None),
        ] {
            std::fs::write(&path, text).unwrap();
            let mut f = File::open(&path).unwrap();
            let got = line_from_end(&mut f, back).unwrap();
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{text:?} {back}");
        }
        let text = format!("first\n{long}\n{long}\nlast\n");
        std::fs::write(&path, &text).unwrap();
        let mut f = File::open(&path).unwrap();
        assert_eq!(line_from_end(&mut f, 3).unwrap().as_deref(), Some(&b"first"[..]));
        assert_eq!(line_from_end(&mut f, 1).unwrap().map(|l| l.len()), Some(150_000));
    }
}
