//! The record commands: `put`, `get`, `stat`, `delete`, `list`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Seek, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncRead, ReadBuf};
use vaultdb_core::{RecordMeta, VaultError};

use super::args::PutArgs;
use super::output::{DataOut, Output, progress_bar, warn_degraded, write_failed};
use super::{Create, Session, prepare};
use crate::audit;
use crate::error::{CliError, INTERRUPTED};
use crate::service::spool::{Spool, SpoolError};
use crate::service::{Auditor, CLIENT_CLOSED, Operation, content_type};

/// Ctrl-C (SIGINT) while a command runs: the first one sets a flag that the command's
/// reader turns into an error (so a put stops and removes what it wrote); a second one
/// exits at once with status 130.
#[derive(Clone, Debug)]
pub(super) struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag nothing sets (remote mode: Ctrl-C ends the process, and the server drops the
    /// unfinished put).
    pub(super) fn never() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    /// Starts listening for Ctrl-C. The handler is installed before this returns, so a
    /// signal from then on is never the default (immediate) exit.
    fn watch() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut sigint) = signal(SignalKind::interrupt()) {
                tokio::spawn(async move {
                    sigint.recv().await;
                    set.store(true, Ordering::SeqCst);
                    eprintln!(
                        "vaultdb: interrupted: stopping and removing what was written \
                         (Ctrl-C again to quit at once)"
                    );
                    sigint.recv().await;
                    std::process::exit(130);
                });
            }
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                set.store(true, Ordering::SeqCst);
            }
        });
        Self(flag)
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A reader that fails once Ctrl-C was pressed, and moves a progress bar.
struct Watched<R> {
    inner: R,
    stop: Interrupt,
    bar: indicatif::ProgressBar,
}

impl<R: AsyncRead + Unpin> AsyncRead for Watched<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.stop.is_set() {
            return Poll::Ready(Err(std::io::Error::other("interrupted by Ctrl-C")));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.bar.inc(read as u64);
        r
    }
}

/// Parses `--meta key=value` entries.
pub(super) fn parse_meta(entries: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for e in entries {
        let Some((k, v)) = e.split_once('=') else {
            return Err(CliError::input(format!("--meta {e:?} is not key=value")));
        };
        if k.trim().is_empty() {
            return Err(CliError::input("--meta has an empty key"));
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(CliError::input(format!("--meta {k:?} is given twice")));
        }
    }
    Ok(out)
}

/// The data to store, at its start: a regular FILE as it is, or a spooled copy of
/// standard input (or a pipe, a device), encrypted on disk ([`Spool`]).
#[derive(Debug)]
pub(super) enum Input {
    /// A regular file, read in place.
    File(std::fs::File),
    /// A copy in an anonymous temporary file, encrypted under a key held in memory.
    Spooled(Spool),
}

impl Input {
    /// Back to the data's start.
    pub(super) fn rewind(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(f) => f.rewind(),
            Self::Spooled(s) => s.rewind(),
        }
    }

    /// The data read through tokio, from where it is.
    pub(super) fn into_async(
        self,
    ) -> tokio_util::either::Either<tokio::fs::File, Spool<tokio::fs::File>> {
        use tokio_util::either::Either;
        match self {
            Self::File(f) => Either::Left(tokio::fs::File::from_std(f)),
            Self::Spooled(s) => Either::Right(s.into_async()),
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::File(f) => f.read(buf),
            Self::Spooled(s) => s.read(buf),
        }
    }
}

/// The data to store, at its start, and its length. A regular FILE is used as it is;
/// standard input (or a pipe, a device) is copied to an anonymous temporary file first,
/// encrypted, in 64 KiB pieces, so that its length is known and memory stays bounded
/// whatever its size. Refused when standard input is a terminal and no FILE was given.
pub(super) fn open_input(
    file: Option<&Path>,
    max: u64,
    stop: &Interrupt,
) -> Result<(Input, u64), CliError> {
    if let Some(p) = file.filter(|p| *p != Path::new("-")) {
        let cannot =
            |e: std::io::Error| CliError::input(format!("cannot read {}: {e}", p.display()));
        let f = std::fs::File::open(p).map_err(cannot)?;
        let meta = f.metadata().map_err(cannot)?;
        if meta.is_file() {
            return too_large(meta.len(), max).map(|()| (Input::File(f), meta.len()));
        }
        if meta.is_dir() {
            return Err(CliError::input(format!("cannot read {}: it is a directory", p.display())));
        }
        return spool(f, max, stop);
    }
    let stdin = std::io::stdin();
    if file.is_none() && stdin.is_terminal() {
        return Err(CliError::input(
            "no data: give a FILE, or pipe the data in (use - for standard input)",
        ));
    }
    spool(stdin.lock(), max, stop)
}

/// `INVALID_INPUT` for data over `max` bytes (`max_record_size`).
fn too_large(len: u64, max: u64) -> Result<(), CliError> {
    if len > max {
        return Err(over_limit(max));
    }
    Ok(())
}

/// The error for data over `max` bytes.
fn over_limit(max: u64) -> CliError {
    CliError::input(format!("the data is over the limit of {max} bytes (max_record_size)"))
}

/// Copies `from` to an encrypted anonymous temporary file (in `TMPDIR`, [`Spool`]); returns
/// it rewound. Stops reading, with `INVALID_INPUT`, once it has more than `max` bytes: an
/// endless input costs `max` bytes of disk, not all of it.
fn spool(from: impl Read, max: u64, stop: &Interrupt) -> Result<(Input, u64), CliError> {
    match Spool::copy(from, max, || stop.is_set()) {
        Ok(s) => {
            let len = s.len();
            Ok((Input::Spooled(s), len))
        }
        Err(SpoolError::Stopped) => {
            Err(CliError::new(INTERRUPTED, "interrupted before anything was stored"))
        }
        Err(SpoolError::TooLarge) => Err(over_limit(max)),
        Err(SpoolError::Read(e)) => {
            Err(CliError::input(format!("cannot read standard input: {e}")))
        }
        Err(SpoolError::Temp(e)) => {
            Err(CliError::new("INTERNAL_ERROR", format!("cannot write a temporary file: {e}")))
        }
    }
}

/// `vaultdb put ID [FILE|-] [--json-input | --content-type TYPE] [--meta K=V]...`: the data
/// is streamed from a file (standard input is first copied to a temporary file), segments
/// read, split and written as they go, so data of any size is stored in bounded memory.
/// Ctrl-C stops it: the segments already written are removed, the audit line says
/// `INTERRUPTED`, and it exits with status 130.
///
/// # Errors
/// `INVALID_INPUT` for bad input (id, content type, metadata, unreadable file, data that is
/// not JSON with `--json-input`), before anything is written; `INTERRUPTED`; the store's
/// errors.
pub(super) async fn put(
    explicit: Option<&Path>,
    args: &PutArgs,
    out: Output,
) -> Result<(), CliError> {
    let id = args.id.as_str();
    let cfg = prepare(explicit, Some(id))?;
    // The service's content-type rule, the same as the server's for raw records.
    let mut content_type = match args.content_type.as_deref() {
        Some(ct) => content_type::normalize(ct.as_bytes())
            .map_err(|e| CliError::input(format!("--content-type {e}")))?,
        None => None,
    };
    let metadata = parse_meta(&args.meta)?;
    let stop = Interrupt::watch();
    let file = args.file.clone();
    let max = cfg.settings().max_record_size as u64;
    let (mut f, len) = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || open_input(file.as_deref(), max, &stop))
            .await
            .map_err(|e| CliError::new("INTERNAL_ERROR", e.to_string()))??
    };
    if args.json_input {
        let checked =
            serde_json::from_reader::<_, serde::de::IgnoredAny>(std::io::BufReader::new(&mut f));
        checked.map_err(|e| CliError::input(format!("the data is not valid JSON: {e}")))?;
        f.rewind()
            .map_err(|e| CliError::new("INTERNAL_ERROR", format!("cannot reread the data: {e}")))?;
        content_type = Some(vaultdb_core::record::JSON_CONTENT_TYPE.to_owned());
    }
    let mut meta = RecordMeta::new(id);
    meta.content_type = content_type;
    meta.metadata = metadata;
    let s = Session::open_or(cfg, Create::Announce).await?;
    let bar = progress_bar(len, "put");
    let reader = Watched {
        inner: tokio::io::BufReader::with_capacity(1 << 20, f.into_async()),
        stop: stop.clone(),
        bar: bar.clone(),
    };
    // Audited by hand rather than by `Session::audited`, so that an interrupted put is
    // logged as INTERRUPTED rather than as the reader's error.
    let auditor = Auditor::new(&s.db, &s.log);
    auditor.ready().await?;
    let r = s.db.put_stream(meta, len, reader).await;
    bar.finish_and_clear();
    let interrupted = stop.is_set() && r.is_err();
    let outcome = match &r {
        Ok(_) => "OK",
        Err(_) if interrupted => INTERRUPTED,
        Err(e) => e.code().as_str(),
    };
    auditor.record(audit::CLI_ACTOR, Operation::RecordPut, Some(id), outcome).await?;
    if interrupted {
        return Err(CliError::new(
            INTERRUPTED,
            "interrupted: nothing was stored, and what this put had written was removed",
        ));
    }
    let r = r.map_err(|e| s.error(e.into()))?;
    // Remove the versions this put superseded (in the background in the library) before the
    // process exits.
    s.db.flush().await;
    warn_degraded("write", &r.outcomes);
    let n = s.db.backend_ids().len();
    out.emit(
        || format!("stored version {} on {} of {n} backends", r.version, r.acks),
        || {
            json!({
                "id": id,
                "version": r.version.to_string(),
                "size": len,
                "acks": r.acks,
                "backends": n,
                "degraded": r.degraded(),
            })
        },
    )
}

/// `vaultdb get ID [-o FILE]`: streamed, each segment verified before it is written; FILE
/// appears only once every byte verified. A reader that goes away (`| head`) stops it
/// quietly with status 141, as it would stop `cat`. With `--json`, one document: the
/// record's id, version, size, content type and metadata, and its data as `data_base64`
/// (or, with FILE, its `path`).
///
/// # Errors
/// The store's errors (`RECORD_NOT_FOUND`, ...); `INVALID_INPUT` if FILE cannot be
/// written; `BROKEN_PIPE`, `INTERNAL_ERROR` if the output cannot.
pub(super) async fn get(
    explicit: Option<&Path>,
    id: &str,
    output: Option<&Path>,
    out: Output,
) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    // Streamed: each segment is verified before it is written out, and memory stays
    // bounded whatever the record's size. The audit line is written when the stream ends,
    // before its last chunk is released.
    let mut stream = s.audited_stream(Operation::RecordGet, id, s.db.get_stream(id)).await?;
    let bar = progress_bar(stream.get_ref().total_len(), "get");
    let head = (out == Output::Json).then(|| {
        let (read, meta) = (stream.get_ref(), stream.get_ref().meta());
        json!({
            "id": meta.id,
            "version": read.version().to_string(),
            "size": read.total_len(),
            "content_type": meta.content_type,
            "metadata": meta.metadata,
        })
    });
    match output {
        Some(p) => {
            // Into a temporary file beside the target, renamed only once every byte has
            // been verified: a failed read never leaves a partial file under the name.
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| CliError::input(format!("cannot write {}: {e}", p.display())))?;
            let mut f = std::io::BufWriter::new(tmp);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if let Err(e) = f.write_all(&chunk) {
                    stream.finish(CLIENT_CLOSED).await?;
                    return Err(write_failed(&e));
                }
                bar.inc(chunk.len() as u64);
            }
            let tmp = f.into_inner().map_err(|e| write_failed(e.error()))?;
            tmp.persist(p)
                .map_err(|e| CliError::input(format!("cannot write {}: {e}", p.display())))?;
            bar.finish_and_clear();
            if let Some(mut head) = head {
                head["path"] = json!(p);
                out.emit(String::new, || head)?;
            }
        }
        None => {
            // Standard output gets each verified chunk as it comes; a failure part way
            // is reported on standard error with a non-zero exit code.
            let mut data = match DataOut::new(std::io::stdout().lock(), head) {
                Ok(data) => data,
                Err(e) => {
                    stream.finish(CLIENT_CLOSED).await?;
                    return Err(write_failed(&e));
                }
            };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if let Err(e) = data.write(&chunk) {
                    stream.finish(CLIENT_CLOSED).await?;
                    return Err(write_failed(&e));
                }
                bar.inc(chunk.len() as u64);
            }
            data.finish().map_err(|e| write_failed(&e))?;
        }
    }
    bar.finish_and_clear();
    let read = stream.get_ref();
    if read.degraded() {
        warn_degraded("read", read.outcomes());
        let bad = read.bad_backends();
        if !bad.is_empty() {
            eprintln!("warning: bad segment shares from: {}", bad.join(", "));
        }
    }
    Ok(())
}

/// `vaultdb stat ID`: the record's version, size, content type and metadata, without its
/// data (only the first segment of a large record is read).
///
/// # Errors
/// The store's errors (`RECORD_NOT_FOUND`, ...).
pub(super) async fn stat(explicit: Option<&Path>, id: &str, out: Output) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    let stream = s.audited_stream(Operation::RecordGet, id, s.db.get_stream(id)).await?;
    let read = stream.get_ref();
    let meta = read.meta().clone();
    let (version, size) = (read.version().to_string(), read.total_len());
    stream.finish("OK").await?;
    out.emit(
        || {
            let mut text = format!(
                "id: {}\nversion: {version}\nsize: {size}\ncontent-type: {}",
                meta.id,
                meta.content_type.as_deref().unwrap_or("-")
            );
            for (k, v) in &meta.metadata {
                text.push_str(&format!("\nmeta: {k}={v}"));
            }
            text
        },
        || {
            json!({
                "id": meta.id,
                "version": version,
                "size": size,
                "content_type": meta.content_type,
                "metadata": meta.metadata,
            })
        },
    )
}

/// `vaultdb delete ID`: every version on every backend.
///
/// # Errors
/// The store's errors.
pub(super) async fn delete(explicit: Option<&Path>, id: &str, out: Output) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    let r = s.audited(Operation::RecordDelete, Some(id), s.db.delete(id)).await?;
    warn_degraded("delete", &r.outcomes);
    out.emit(
        || format!("deleted ({} share objects removed)", r.removed),
        || json!({"id": id, "deleted": true, "removed": r.removed}),
    )
}

/// `vaultdb list`: every id, one per line, sorted (with `--json`, one JSON document); with
/// `--limit N` (and `--cursor C`), one page of at most N ids in the store's listing order
/// (name-tag order: nothing to do with the ids) and the cursor of the next page, which costs
/// backend work in proportion to the page, not to the store.
///
/// # Errors
/// The store's errors; `INVALID_INPUT` for a cursor the store did not hand out;
/// `BROKEN_PIPE`, `INTERNAL_ERROR` if the output cannot be written.
pub(super) async fn list(
    explicit: Option<&Path>,
    page: Option<(usize, Option<&str>)>,
    out: Output,
) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, None)?).await?;
    let degraded = crate::service::degraded::degraded;
    if let Some((limit, cursor)) = page {
        let r = s.audited(Operation::RecordList, None, s.db.list_page(cursor, limit)).await?;
        warn_degraded("list", &r.outcomes);
        if let Some(next) = &r.next
            && !matches!(out, Output::Json)
        {
            eprintln!("next page: vaultdb list --limit {limit} --cursor {next}");
        }
        return out.emit(
            || r.ids.join("\n"),
            || {
                json!({
                    "ids": r.ids,
                    "next": r.next,
                    "unverified": r.unverified,
                    "degraded": degraded(&r.outcomes),
                })
            },
        );
    }
    let r = s.audited(Operation::RecordList, None, s.db.list()).await?;
    warn_degraded("list", &r.outcomes);
    if r.unverified > 0 {
        eprintln!("warning: {} listed record(s) whose id could not be verified", r.unverified);
    }
    out.emit(
        || r.ids.join("\n"),
        || {
            json!({
                "ids": r.ids,
                "unverified": r.unverified,
                "degraded": degraded(&r.outcomes),
            })
        },
    )
}

/// A repair that found no version of the record: `RECORD_NOT_FOUND`, like `get`.
pub(super) fn not_found() -> VaultError {
    VaultError::RecordNotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recognizable 1 MiB: numbered lines of text.
    fn pattern() -> Vec<u8> {
        let mut v = Vec::with_capacity(1 << 20);
        let mut i = 0u64;
        while v.len() < 1 << 20 {
            v.extend_from_slice(format!("plaintext record line {i:010}\n").as_bytes());
            i += 1;
        }
        v.truncate(1 << 20);
        v
    }

    /// Whether any 64-byte window of `plain` lies in `raw` (any run of 127 bytes or more of
    /// it holds a 64-aligned window of `raw`).
    fn leaks(plain: &[u8], raw: &[u8]) -> bool {
        let windows: std::collections::HashSet<&[u8]> = plain.windows(64).collect();
        raw.chunks_exact(64).any(|c| windows.contains(c))
    }

    #[test]
    fn stdin_spool_holds_no_plaintext_on_disk() {
        let plain = pattern();
        let (f, len) =
            spool(std::io::Cursor::new(plain.clone()), 2 << 20, &Interrupt::never()).unwrap();
        assert_eq!(len, plain.len() as u64);
        let Input::Spooled(mut f) = f else { panic!("standard input is spooled") };
        let mut raw = Vec::new();
        f.raw_file().rewind().unwrap();
        f.raw_file().read_to_end(&mut raw).unwrap();
        assert_eq!(raw.len(), plain.len());
        assert!(!leaks(&plain, &raw), "the temporary file holds the plaintext");
        // Read back through the spool: the exact input.
        f.rewind().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        assert!(back == plain, "read back differs");
    }
}
