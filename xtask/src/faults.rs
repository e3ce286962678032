//! `cargo xtask faults`: the long run of the randomized, seeded fault-schedule checker.
//!
//! It runs the ignored test `long_run` of `crates/vaultdb-core/tests/fault_schedule.rs`
//! (built like the other tests, already optimised; `--release` for a release build) with
//! the seed range and operations per seed in environment variables, passes its report
//! through, and reads the `FAULTS-SUMMARY <json>` line it ends with. docs/FAULTS.md has the
//! model, the fault budget and the results of a run.
//!
//! ```text
//! cargo xtask faults [--seeds N] [--ops M] [--first-seed S] [--jobs J] [--allow-known]
//!                    [--no-hedge] [--no-read-repair] [--mode shamir|compact] [--release]
//! ```
//!
//! - `--seeds N` (default 100) seeds from `--first-seed S` (default 1), `--ops M` (default
//!   500) operations each, on `--jobs J` threads (default 2).
//! - `--allow-known`: succeed if every violation is attributed to an issue listed in
//!   docs/FAULTS.md ("Findings"); by default any violation fails the task.
//! - `--no-hedge`, `--no-read-repair`: run every seed with the client's read hedging or
//!   background read-repair switched off (to look past the known issues).
//! - `--mode compact`: every seed's store in the compact storage mode (default `shamir`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

/// Parsed command line.
struct Args {
    seeds: u64,
    ops: u64,
    first: u64,
    jobs: u64,
    allow_known: bool,
    no_hedge: bool,
    no_read_repair: bool,
    mode: String,
    release: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        seeds: 100,
        ops: 500,
        first: 1,
        jobs: 2,
        allow_known: false,
        no_hedge: false,
        no_read_repair: false,
        mode: "shamir".to_owned(),
        release: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{name} needs a number"))?;
            v.parse().map_err(|e| format!("{name} {v:?}: {e}"))
        };
        match arg.as_str() {
            "--seeds" => a.seeds = number("--seeds")?,
            "--ops" => a.ops = number("--ops")?,
            "--first-seed" => a.first = number("--first-seed")?,
            "--jobs" => a.jobs = number("--jobs")?.max(1),
            "--allow-known" => a.allow_known = true,
            "--no-hedge" => a.no_hedge = true,
            "--no-read-repair" => a.no_read_repair = true,
            "--release" => a.release = true,
            "--mode" => match it.next().map(String::as_str) {
                Some(m @ ("shamir" | "compact")) => a.mode = m.to_owned(),
                other => return Err(format!("--mode needs shamir or compact, not {other:?}")),
            },
            other => return Err(format!("faults: unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// Runs the long fault-schedule run and prints its summary.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let a = parse(args)?;
    let mut cmd = super::cargo();
    cmd.arg("test");
    if a.release {
        cmd.arg("--release");
    }
    cmd.args(["-p", "vaultdb-core", "--test", "fault_schedule", "--"])
        .args(["--ignored", "--exact", "long_run", "--nocapture"])
        .env("VAULTDB_FAULT_SEEDS", a.seeds.to_string())
        .env("VAULTDB_FAULT_OPS", a.ops.to_string())
        .env("VAULTDB_FAULT_FIRST_SEED", a.first.to_string())
        .env("VAULTDB_FAULT_JOBS", a.jobs.to_string())
        .env("VAULTDB_FAULT_QUIET", "1")
        .env("VAULTDB_FAULT_ALLOW_KNOWN", if a.allow_known { "1" } else { "0" })
        .env("VAULTDB_FAULT_MODE", &a.mode)
        .env_remove("VAULTDB_FAULT_SEED")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped());
    if a.no_hedge {
        cmd.env("VAULTDB_FAULT_HEDGE_MS", "0");
    }
    if a.no_read_repair {
        cmd.env("VAULTDB_FAULT_READ_REPAIR", "0");
    }
    println!(
        "xtask: == faults: {} seeds from {}, {} operations each, {} jobs, {} mode",
        a.seeds, a.first, a.ops, a.jobs, a.mode
    );
    let start = std::time::Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("faults: could not start cargo: {e}"))?;
    let mut summary: Option<Value> = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("faults: reading the test's output: {e}"))?;
            match line.strip_prefix("FAULTS-SUMMARY ") {
                Some(json) => {
                    summary = Some(
                        serde_json::from_str(json)
                            .map_err(|e| format!("faults: bad summary line: {e}"))?,
                    )
                }
                None => println!("{line}"),
            }
        }
    }
    let status = child.wait().map_err(|e| format!("faults: waiting for cargo: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let Some(s) = summary else {
        return Err(format!("faults: the test printed no summary ({status})"));
    };
    let num = |k: &str| s[k].as_u64().unwrap_or(0);
    let violations: u64 =
        s["violations"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let failing = s["failing_seeds"].as_array().map_or(0, Vec::len);
    let mut known = 0;
    let mut unknown = 0;
    if let Some(triage) = s["triage"].as_object() {
        for (cause, seeds) in triage {
            let n = seeds.as_array().map_or(0, Vec::len);
            if cause.starts_with("KI-") { known += n } else { unknown += n }
        }
    }
    println!(
        "xtask: == faults: {} seeds, {} operations, {} backend calls, {violations} violations \
         in {failing} seeds ({known} attributed to known issues, {unknown} not) in {secs:.1}s",
        num("seeds"),
        num("ops"),
        num("backend_calls"),
    );
    if status.success() {
        Ok(())
    } else if violations > 0 {
        Err(format!(
            "faults: {violations} violations; see the report above and docs/FAULTS.md \
             (--allow-known accepts the known issues)"
        ))
    } else {
        Err(format!("faults: the test failed ({status})"))
    }
}
