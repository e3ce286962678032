//! What the commands print besides their results: degraded-operation warnings, the backend
//! table of `status`, repair problems.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use vaultdb_core::BackendOutcome;

use crate::error::{BROKEN_PIPE, CliError};
use crate::service::degraded;

/// Warns on standard error when `outcomes` make the operation degraded, naming the
/// backends ([`degraded::problems`]).
pub(super) fn warn_degraded(what: &str, outcomes: &[BackendOutcome]) {
    let bad: Vec<String> = degraded::problems(outcomes).map(ToString::to_string).collect();
    if !bad.is_empty() {
        eprintln!("warning: degraded {what}: {}", bad.join("; "));
    }
}

/// One backend's row in the `status` table: id, name, error (if down), latency.
pub(super) type BackendRow = (String, String, Option<String>, Duration);

/// The `status` table, one line per backend after a header (no final newline).
pub(super) fn backends_table(rows: &[BackendRow]) -> String {
    let w_id = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
    let w_name = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(4);
    let mut lines = vec![format!(
        "{:<w_id$}  {:<w_name$}  {:<5}  {:>10}  ERROR",
        "BACKEND", "NAME", "STATE", "LATENCY"
    )];
    for (id, name, err, lat) in rows {
        let state = if err.is_none() { "up" } else { "DOWN" };
        let ms = format!("{:.1} ms", lat.as_secs_f64() * 1000.0);
        lines.push(format!(
            "{id:<w_id$}  {name:<w_name$}  {state:<5}  {ms:>10}  {}",
            err.as_deref().unwrap_or("")
        ));
    }
    lines.join("\n")
}

/// Prints what `repair` or `scrub` could not repair; `BACKEND_ERROR` if anything.
///
/// # Errors
/// `BACKEND_ERROR` counting the problems.
pub(super) fn problems(problems: &[String]) -> Result<(), CliError> {
    for p in problems {
        eprintln!("problem: {p}");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            "BACKEND_ERROR",
            format!("{} problem(s) could not be repaired", problems.len()),
        ))
    }
}

/// An error writing the output: `BROKEN_PIPE` (silent, status 141) when its reader went
/// away, `INTERNAL_ERROR` otherwise.
pub(super) fn write_failed(e: &std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::new(BROKEN_PIPE, "the output's reader went away")
    } else {
        CliError::new("INTERNAL_ERROR", format!("cannot write the output: {e}"))
    }
}

/// How a command prints its result on standard output: text for people, or one JSON
/// document (`--json`). Warnings and errors go to standard error either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Lines for people.
    Text,
    /// One JSON document (one line).
    Json,
}

impl Output {
    /// Prints the command's result: `text()` (nothing if empty) or `json()`.
    ///
    /// # Errors
    /// `BROKEN_PIPE` or `INTERNAL_ERROR` if standard output cannot be written.
    pub(super) fn emit(
        self,
        text: impl FnOnce() -> String,
        json: impl FnOnce() -> serde_json::Value,
    ) -> Result<(), CliError> {
        let s = match self {
            Self::Text => text(),
            Self::Json => json().to_string(),
        };
        if s.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{s}").and_then(|()| out.flush()).map_err(|e| write_failed(&e))
    }
}

/// Data at least this large gets a progress bar (on a terminal).
pub(super) const PROGRESS_MIN: u64 = 8 << 20;

/// A byte progress bar on standard error for `len` bytes of `what` (`put`, `get`): hidden
/// when standard error is not a terminal, or for less than [`PROGRESS_MIN`].
pub(super) fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if len < PROGRESS_MIN || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} ({{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Where `get` writes a record's bytes as they arrive: as they are, or with `--json`
/// inside one JSON document, `head`'s members then `"data_base64"` (standard base64 with
/// padding, as the server's JSON view has it), encoded as the chunks come so that memory
/// stays bounded.
pub(super) struct DataOut<W: Write> {
    out: W,
    /// `Some` with `--json`: the bytes of a chunk that did not fill a base64 group (at most 2).
    carry: Option<Vec<u8>>,
}

impl<W: Write> DataOut<W> {
    /// Starts writing to `out`: with `head` (a JSON object), a JSON document.
    pub(super) fn new(mut out: W, head: Option<serde_json::Value>) -> std::io::Result<Self> {
        let carry = match head {
            None => None,
            Some(head) => {
                let mut text = head.to_string();
                text.pop(); // the closing brace
                if text.len() > 1 {
                    text.push(',');
                }
                text.push_str("\"data_base64\":\"");
                out.write_all(text.as_bytes())?;
                Some(Vec::with_capacity(2))
            }
        };
        Ok(Self { out, carry })
    }

    /// Writes one chunk of the record.
    pub(super) fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let Some(carry) = &mut self.carry else {
            return self.out.write_all(data);
        };
        if !carry.is_empty() {
            let take = (3 - carry.len()).min(data.len());
            carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if carry.len() < 3 {
                return Ok(());
            }
            self.out.write_all(data_encoding::BASE64.encode(carry).as_bytes())?;
            carry.clear();
        }
        let whole = data.len() / 3 * 3;
        self.out.write_all(data_encoding::BASE64.encode(&data[..whole]).as_bytes())?;
        carry.extend_from_slice(&data[whole..]);
        Ok(())
    }

    /// Ends the output (the JSON document and its line) and flushes it.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        if let Some(carry) = &self.carry {
            self.out.write_all(data_encoding::BASE64.encode(carry).as_bytes())?;
            self.out.write_all(b"\"}\n")?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::DataOut;

    #[test]
    fn data_out_encodes_base64_across_any_chunking() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for chunk in [1, 2, 3, 4, 5, 7, 64, 1000] {
            let mut buf = Vec::new();
            let mut out = DataOut::new(&mut buf, Some(serde_json::json!({"id": "a"}))).unwrap();
            data.chunks(chunk).for_each(|c| out.write(c).unwrap());
            out.finish().unwrap();
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(v["id"], "a");
            let b64 = v["data_base64"].as_str().unwrap();
            assert_eq!(data_encoding::BASE64.decode(b64.as_bytes()).unwrap(), data, "{chunk}");
            assert!(buf.ends_with(b"\"}\n"), "one line");
        }
        let mut raw = Vec::new();
        let mut out = DataOut::new(&mut raw, None).unwrap();
        data.chunks(7).for_each(|c| out.write(c).unwrap());
        out.finish().unwrap();
        assert_eq!(raw, data);
    }
}
