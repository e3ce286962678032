//! `cargo xtask fuzz`: runs the cargo-fuzz (libFuzzer) targets of `fuzz/` one after another
//! and prints, per target, the executions, the corpus size and the crashes found.
//!
//! ```text
//! cargo xtask fuzz [--time SECONDS] [--target NAME]... [--sanitizer address|none]
//! cargo xtask fuzz --seed      regenerate the seed corpora (fuzz/corpus/*/seed-*)
//! cargo xtask fuzz --list      the targets
//! ```
//!
//! - Needs a nightly toolchain (`rustup toolchain install nightly`); cargo-fuzz is installed
//!   on first use into the tools cache (`${XDG_CACHE_HOME:-~/.cache}/vaultdb-tools`), with
//!   the stable toolchain (both in [`crate::tools`]).
//! - Nightly builds go to their own target directory, `${XDG_CACHE_HOME:-~/.cache}/
//!   vaultdb-fuzz-target` (which also holds the scratch corpora and the logs), so they never
//!   invalidate the stable build cache in `target/`.
//! - libFuzzer is given two corpus directories: first a scratch directory in that cache
//!   (`corpus/<target>/`, kept between runs), where it writes the new inputs it finds, then
//!   the committed `fuzz/corpus/<target>/`, which it only reads. The committed corpus stays
//!   small and changes only by hand (or `--seed`).
//! - Crashes are written to `fuzz/artifacts/<target>/` (gitignored); each target's full
//!   libFuzzer output is in the cache's `logs/<target>.log`. The task fails if any target
//!   crashed.

use std::collections::BTreeSet;
use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, root, step, tools};

/// The fuzz targets, in the order they run (`fuzz/fuzz_targets/<name>.rs`).
const TARGETS: [&str; 6] = ["envelope", "record", "object_key", "keyring", "config", "rest"];

/// Seconds per target when `--time` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// One target's results, from libFuzzer's final statistics.
#[derive(Debug, Default)]
struct Outcome {
    target: String,
    seconds: f64,
    fuzz_seconds: Option<u64>,
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    corpus: Option<u64>,
    coverage: Option<u64>,
    new_units: Option<u64>,
    committed: usize,
    crashes: Vec<PathBuf>,
    exit_ok: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut sanitizer = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value =
            |name: &str| it.next().cloned().ok_or_else(|| format!("fuzz: {name} needs a value"));
        match a.as_str() {
            "--time" => {
                let v = value("--time")?;
                seconds = v.parse().map_err(|_| format!("fuzz: --time {v:?} is not seconds"))?;
            }
            "--target" => targets.push(value("--target")?),
            "--sanitizer" => sanitizer = Some(value("--sanitizer")?),
            "--seed" => return seed(),
            "--list" => {
                TARGETS.iter().for_each(|t| println!("{t}"));
                return Ok(());
            }
            other => {
                return Err(format!(
                    "fuzz: unknown argument {other:?}; usage: cargo xtask fuzz [--time SECONDS] \
                     [--target NAME]... [--sanitizer address|none] | --seed | --list"
                ));
            }
        }
    }
    for t in &targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(format!("fuzz: unknown target {t:?}; targets: {}", TARGETS.join(", ")));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    if seconds == 0 {
        return Err("fuzz: --time must be at least 1 second".into());
    }

    tools::check_nightly()?;
    let tools_bin = tools::cargo_fuzz()?;
    let cache = fuzz_cache();
    let logs = cache.join("logs");
    fs::create_dir_all(&logs).map_err(|e| format!("fuzz: create {}: {e}", logs.display()))?;

    // One build of every target first, so that run times are fuzzing time.
    let mut build = nightly_fuzz(&tools_bin, &cache);
    build.arg("build");
    if let Some(s) = &sanitizer {
        build.args(["--sanitizer", s]);
    }
    if targets.len() == 1 {
        build.arg(&targets[0]);
    }
    step("cargo +nightly fuzz build", build)?;

    let mut outcomes = Vec::new();
    for t in &targets {
        outcomes.push(run_target(&tools_bin, &cache, t, seconds, sanitizer.as_deref())?);
    }
    print_table(&outcomes);
    let crashed: Vec<&Outcome> =
        outcomes.iter().filter(|o| !o.crashes.is_empty() || !o.exit_ok).collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        for o in &crashed {
            for c in &o.crashes {
                println!(
                    "xtask: crash in {}: {} (reproduce: cargo +nightly fuzz run {} {})",
                    o.target,
                    c.display(),
                    o.target,
                    c.display()
                );
            }
        }
        Err(format!(
            "fuzz: {} target(s) crashed or failed: {}",
            crashed.len(),
            crashed.iter().map(|o| o.target.as_str()).collect::<Vec<_>>().join(", ")
        ))
    }
}

/// `cargo test ... write_seeds` in both corpus tests of vaultdb-fuzzing.
fn seed() -> Result<(), String> {
    for test in ["formats_corpus", "app_corpus"] {
        let mut t = cargo();
        t.args(["test", "-p", "vaultdb-fuzzing", "--test", test, "--", "--ignored", "--exact"])
            .arg("write_seeds");
        step(&format!("{test}: write the fuzz seeds"), t)?;
    }
    Ok(())
}

/// The cache for nightly fuzz builds, scratch corpora and logs, outside the repository.
fn fuzz_cache() -> PathBuf {
    tools::cache_home().join("vaultdb-fuzz-target")
}

/// `cargo +nightly fuzz` through rustup's `cargo` proxy, with the tools cache on `PATH`, the
/// nightly target directory, and none of the stable toolchain's variables that `cargo xtask`
/// inherited.
fn nightly_fuzz(tools_bin: &Path, cache: &Path) -> Command {
    let mut path = OsString::from(tools_bin);
    if let Some(p) = env::var_os("PATH") {
        path.push(":");
        path.push(p);
    }
    let mut c = Command::new("cargo");
    c.current_dir(root())
        .arg("+nightly")
        .arg("fuzz")
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", cache);
    for v in ["CARGO", "RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "RUSTC_WRAPPER", "RUSTFLAGS"] {
        c.env_remove(v);
    }
    c
}

fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default()
}

fn run_target(
    tools_bin: &Path,
    cache: &Path,
    target: &str,
    seconds: u64,
    sanitizer: Option<&str>,
) -> Result<Outcome, String> {
    let root = root();
    let committed = root.join("fuzz").join("corpus").join(target);
    let scratch = cache.join("corpus").join(target);
    let artifacts = root.join("fuzz").join("artifacts").join(target);
    for d in [&scratch, &artifacts] {
        fs::create_dir_all(d).map_err(|e| format!("fuzz: create {}: {e}", d.display()))?;
    }
    let before = files_in(&artifacts);
    let log_path = cache.join("logs").join(format!("{target}.log"));
    let mut log = fs::File::create(&log_path)
        .map_err(|e| format!("fuzz: create {}: {e}", log_path.display()))?;

    let mut cmd = nightly_fuzz(tools_bin, cache);
    cmd.args(["run", target]);
    if let Some(s) = sanitizer {
        cmd.args(["--sanitizer", s]);
    }
    // The scratch directory first: libFuzzer writes new inputs to the first corpus directory.
    cmd.arg(&scratch).arg(&committed).arg("--").args([
        format!("-max_total_time={seconds}"),
        "-print_final_stats=1".to_owned(),
        "-timeout=20".to_owned(),
    ]);
    cmd.stdout(Stdio::inherit()).stderr(Stdio::piped());
    println!("xtask: == fuzz {target} for {seconds}s (log: {})", log_path.display());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("fuzz {target}: could not start: {e}"))?;
    let mut out = Outcome {
        target: target.to_owned(),
        committed: files_in(&committed).len(),
        ..Outcome::default()
    };
    if let Some(stderr) = child.stderr.take() {
        let mut in_dictionary = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            parse_line(&line, &mut out);
            // Progress and problems on the terminal; the full output is in the log.
            if line.starts_with("###### ") {
                in_dictionary = line.contains("Recommended dictionary");
                continue;
            }
            let quiet = in_dictionary || line.contains(" NEW ") || line.contains(" REDUCE ");
            if !quiet {
                eprintln!("{line}");
            }
        }
    }
    let status = child.wait().map_err(|e| format!("fuzz {target}: {e}"))?;
    out.seconds = start.elapsed().as_secs_f64();
    out.exit_ok = status.success();
    out.crashes = files_in(&artifacts).difference(&before).cloned().collect();
    println!(
        "xtask: == fuzz {target}: {} in {:.0}s",
        if out.exit_ok && out.crashes.is_empty() { "ok" } else { "CRASHED" },
        out.seconds
    );
    Ok(out)
}

/// The number after `key` in `line` (`key` included, e.g. `"corp: "`).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Picks libFuzzer's final statistics out of one line of its output.
fn parse_line(line: &str, out: &mut Outcome) {
    if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
        out.executions = v.trim().parse().ok();
    } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
        out.exec_per_sec = v.trim().parse().ok();
    } else if let Some(v) = line.strip_prefix("Done ") {
        // "Done 1234567 runs in 31 second(s)"
        out.fuzz_seconds = number_after(v, "runs in ");
    } else if let Some(v) = line.strip_prefix("stat::new_units_added:") {
        out.new_units = v.trim().parse().ok();
    } else if line.starts_with('#') && (line.contains("DONE ") || line.contains("pulse ")) {
        // "#123456\tDONE   cov: 1234 ft: 5678 corp: 90/12Kb lim: 4096 exec/s: 4115 rss: 80Mb"
        out.coverage = number_after(line, "cov:").or(out.coverage);
        out.corpus = number_after(line, "corp:").or(out.corpus);
        if line.contains("DONE ") {
            out.executions = number_after(line, "#").or(out.executions);
        }
    }
}

fn print_table(outcomes: &[Outcome]) {
    let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    println!();
    println!(
        "| target | seconds fuzzing (wall) | executions | exec/s | corpus (committed) | new inputs | coverage | crashes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let crashes = if o.crashes.is_empty() && o.exit_ok {
            "0".to_owned()
        } else if o.crashes.is_empty() {
            "failed (see log)".to_owned()
        } else {
            o.crashes.len().to_string()
        };
        println!(
            "| {} | {} ({:.0}) | {} | {} | {} ({}) | {} | {} | {} |",
            o.target,
            show(o.fuzz_seconds),
            o.seconds,
            show(o.executions),
            show(o.exec_per_sec),
            show(o.corpus),
            o.committed,
            show(o.new_units),
            show(o.coverage),
            crashes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libfuzzer_final_stats() {
        let mut o = Outcome::default();
        for line in [
            "#524288\tpulse  cov: 311 ft: 1200 corp: 80/9Kb lim: 4096 exec/s: 26214 rss: 60Mb",
            "#1234567\tDONE   cov: 320 ft: 1300 corp: 91/12Kb lim: 4096 exec/s: 41152 rss: 80Mb",
            "Done 1234567 runs in 31 second(s)",
            "stat::number_of_executed_units: 1234567",
            "stat::average_exec_per_sec:     41152",
            "stat::new_units_added:          57",
        ] {
            parse_line(line, &mut o);
        }
        assert_eq!(o.executions, Some(1_234_567));
        assert_eq!(o.exec_per_sec, Some(41_152));
        assert_eq!(o.corpus, Some(91));
        assert_eq!(o.coverage, Some(320));
        assert_eq!(o.new_units, Some(57));
        assert_eq!(o.fuzz_seconds, Some(31));
    }
}
