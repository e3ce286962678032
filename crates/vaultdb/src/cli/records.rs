//! The record commands: `put`, `get`, `delete`, `list`.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use futures::StreamExt;
use vaultdb_core::{Record, RecordMeta};

use super::output::{warn_degraded, write_failed};
use super::{Session, prepare};
use crate::error::CliError;
use crate::service::{CLIENT_CLOSED, Operation, content_type};

/// Reads FILE whole, or standard input (`-` or no FILE; refused when it is a terminal and
/// no FILE was given).
fn read_input(file: Option<&Path>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(p) if p != Path::new("-") => std::fs::read(p)
            .map_err(|e| CliError::config(format!("cannot read {}: {e}", p.display()))),
        _ => {
            let mut stdin = std::io::stdin();
            if file.is_none() && stdin.is_terminal() {
                return Err(CliError::config(
                    "no data: give a FILE, or pipe the data in (use - for standard input)",
                ));
            }
            let mut buf = Vec::new();
            stdin
                .read_to_end(&mut buf)
                .map_err(|e| CliError::config(format!("cannot read standard input: {e}")))?;
            Ok(buf)
        }
    }
}

/// `vaultdb put ID [FILE|-] [--json | --content-type TYPE]`. A regular FILE is streamed:
/// segments are read, split and written as they go, so a file of any size is stored in
/// bounded memory; anything else is read whole.
///
/// # Errors
/// `INVALID_CONFIG` for bad input (id, content type, unreadable file, data that is not
/// JSON with `--json`), before anything is written; the store's errors.
pub(super) async fn put(
    explicit: Option<&Path>,
    id: &str,
    file: Option<&Path>,
    json: bool,
    content_type: Option<&str>,
) -> Result<(), CliError> {
    let cfg = prepare(explicit, Some(id))?;
    // The service's content-type rule, the same as the server's for raw records.
    let content_type = match content_type {
        Some(ct) => content_type::normalize(ct.as_bytes())
            .map_err(|e| CliError::config(format!("--content-type {e}")))?,
        None => None,
    };
    let streamed = match file {
        Some(p) if p != Path::new("-") && !json => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| CliError::config(format!("cannot read {}: {e}", p.display())))?;
            let meta = f
                .metadata()
                .await
                .map_err(|e| CliError::config(format!("cannot read {}: {e}", p.display())))?;
            // Only a regular file has a length to stream against; anything else (a pipe, a
            // device, a directory) is read whole, or refused, below.
            meta.is_file().then_some((f, meta.len()))
        }
        _ => None,
    };
    if let Some((f, len)) = streamed {
        let mut meta = RecordMeta::new(id);
        meta.content_type = content_type;
        let s = Session::open(cfg).await?;
        let reader = tokio::io::BufReader::with_capacity(1 << 20, f);
        let r =
            s.audited(Operation::RecordPut, Some(id), s.db.put_stream(meta, len, reader)).await?;
        warn_degraded("write", &r.outcomes);
        println!(
            "stored version {} on {} of {} backends",
            r.version,
            r.acks,
            s.db.backend_ids().len()
        );
        // Remove the versions this put superseded before the process exits.
        s.db.flush().await;
        return Ok(());
    }
    let data = read_input(file)?;
    if json {
        serde_json::from_slice::<serde::de::IgnoredAny>(&data)
            .map_err(|e| CliError::config(format!("the data is not valid JSON: {e}")))?;
    }
    let mut record = Record::new(id, data);
    record.content_type =
        if json { Some(vaultdb_core::record::JSON_CONTENT_TYPE.to_owned()) } else { content_type };
    let s = Session::open(cfg).await?;
    let r = s.audited(Operation::RecordPut, Some(id), s.db.put(record)).await?;
    warn_degraded("write", &r.outcomes);
    println!("stored version {} on {} of {} backends", r.version, r.acks, s.db.backend_ids().len());
    // Remove the versions this put superseded before the process exits.
    s.db.flush().await;
    Ok(())
}

/// `vaultdb get ID [-o FILE]`: streamed, each segment verified before it is written; FILE
/// appears only once every byte verified.
///
/// # Errors
/// The store's errors (`RECORD_NOT_FOUND`, ...); `INVALID_CONFIG` if FILE cannot be
/// written; `INTERNAL_ERROR` if the output cannot.
pub(super) async fn get(
    explicit: Option<&Path>,
    id: &str,
    output: Option<&Path>,
) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    // Streamed: each segment is verified before it is written out, and memory stays
    // bounded whatever the record's size. The audit line is written when the stream ends,
    // before its last chunk is released.
    let mut stream = s.audited_stream(Operation::RecordGet, id, s.db.get_stream(id)).await?;
    match output {
        Some(p) => {
            // Into a temporary file beside the target, renamed only once every byte has
            // been verified: a failed read never leaves a partial file under the name.
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| CliError::config(format!("cannot write {}: {e}", p.display())))?;
            let mut f = std::io::BufWriter::new(tmp);
            while let Some(chunk) = stream.next().await {
                if let Err(e) = f.write_all(&chunk?) {
                    stream.finish(CLIENT_CLOSED).await?;
                    return Err(write_failed(&e));
                }
            }
            let tmp = f.into_inner().map_err(|e| write_failed(e.error()))?;
            tmp.persist(p)
                .map_err(|e| CliError::config(format!("cannot write {}: {e}", p.display())))?;
        }
        None => {
            // Standard output gets each verified chunk as it comes; a failure part way
            // is reported on standard error with a non-zero exit code.
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = stream.next().await {
                if let Err(e) = out.write_all(&chunk?) {
                    stream.finish(CLIENT_CLOSED).await?;
                    return Err(write_failed(&e));
                }
            }
            out.flush().map_err(|e| write_failed(&e))?;
        }
    }
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

/// `vaultdb delete ID`: every version on every backend.
///
/// # Errors
/// The store's errors.
pub(super) async fn delete(explicit: Option<&Path>, id: &str) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, Some(id))?).await?;
    let r = s.audited(Operation::RecordDelete, Some(id), s.db.delete(id)).await?;
    warn_degraded("delete", &r.outcomes);
    println!("deleted ({} share objects removed)", r.removed);
    Ok(())
}

/// `vaultdb list`: ids, one per line, sorted.
///
/// # Errors
/// The store's errors; `INTERNAL_ERROR` if the output cannot be written.
pub(super) async fn list(explicit: Option<&Path>) -> Result<(), CliError> {
    let s = Session::open(prepare(explicit, None)?).await?;
    let r = s.audited(Operation::RecordList, None, s.db.list()).await?;
    warn_degraded("list", &r.outcomes);
    if r.unverified > 0 {
        eprintln!("warning: {} listed record(s) whose id could not be verified", r.unverified);
    }
    let mut out = std::io::stdout().lock();
    for id in &r.ids {
        writeln!(out, "{id}").map_err(|e| CliError::new("INTERNAL_ERROR", e.to_string()))?;
    }
    Ok(())
}
