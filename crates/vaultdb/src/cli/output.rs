//! What the commands print besides their results: degraded-operation warnings, the backend
//! table of `status`, repair problems.

use std::time::Duration;

use vaultdb_core::BackendOutcome;

use crate::error::CliError;
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

/// Prints the `status` table.
pub(super) fn print_backends(rows: &[BackendRow]) {
    let w_id = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
    let w_name = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(4);
    println!("{:<w_id$}  {:<w_name$}  {:<5}  {:>10}  ERROR", "BACKEND", "NAME", "STATE", "LATENCY");
    for (id, name, err, lat) in rows {
        let state = if err.is_none() { "up" } else { "DOWN" };
        let ms = format!("{:.1} ms", lat.as_secs_f64() * 1000.0);
        println!(
            "{id:<w_id$}  {name:<w_name$}  {state:<5}  {ms:>10}  {}",
            err.as_deref().unwrap_or("")
        );
    }
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

/// An error writing the output.
pub(super) fn write_failed(e: &std::io::Error) -> CliError {
    CliError::new("INTERNAL_ERROR", format!("cannot write the output: {e}"))
}
