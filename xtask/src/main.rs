//! `cargo xtask <task>`: VaultDB's developer tasks.
//!
//! - `cargo xtask test`: everything CI checks, in order: rustfmt, clippy with
//!   `-D warnings`, every test of every crate, rustdoc with warnings denied,
//!   `cargo deny` (bans, licenses, sources), and `itest` (the cloud backends against
//!   emulators). This is the README's test command, and `.ci/run` runs exactly it.
//! - `cargo xtask deny [--advisories | --advisory-db DIR]`: only `cargo deny` (bans,
//!   licenses, sources); with `--advisories` also the RustSec advisories of both workspaces
//!   (the main one and `fuzz/`), fetched from GitHub, or, with `--advisory-db DIR`, read
//!   offline from DIR, a git clone of <https://github.com/rustsec/advisory-db>.
//! - `cargo xtask bench [--quick] [--render-only]`: runs the benchmark suites and regenerates
//!   the tables of docs/PERFORMANCE.md; see `bench.rs`.
//! - `cargo xtask itest`: the cloud backends against local emulators (moto, s3s-fs,
//!   fake-gcs-server, Azurite), installed on first use; see `itest.rs`.
//! - `cargo xtask fuzz [--time N] [--target T]`: the cargo-fuzz targets of `fuzz/` on
//!   nightly (cargo-fuzz installed on first use), `--seed` regenerates their seed corpora;
//!   see `fuzz.rs` and docs/FUZZING.md.
//! - `cargo xtask faults [--seeds N] [--ops M]`: the long run of the randomized, seeded
//!   fault-schedule checker; see `faults.rs` and docs/FAULTS.md.
//! - `cargo xtask load [--duration SECS] [--connections N] [--quick]`: the REST server under
//!   wrk load (installed with apt-get if missing), regenerating docs/LOAD.md; see `load.rs`.
//!
//! Tools the tasks need that are not part of the toolchain (cargo-deny) are installed on
//! first use into a cache folder outside the repository:
//! `${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-tools`. Deleting it costs only time.
//!
//! This crate has one dependency, serde_json (for the benchmark results), and no more on
//! purpose: it is built before every task.

mod bench;
mod faults;
mod fuzz;
mod itest;
mod load;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The cargo-deny release installed when it is missing (newer ones may need a newer rustc).
const CARGO_DENY_VERSION: &str = "0.20.2";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let result = match task {
        "test" => test(),
        "deny" => deny(&args[1..]),
        "bench" => bench::run(&args[1..]),
        "itest" => itest::run(&args[1..]),
        "fuzz" => fuzz::run(&args[1..]),
        "faults" => faults::run(&args[1..]),
        "load" => load::run(&args[1..]),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => Err(format!("unknown task {other:?}; try `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         test   rustfmt, clippy -D warnings, all tests, rustdoc, cargo deny, itest (what CI runs)\n  \
         deny   cargo deny check bans licenses sources (--advisories: also the RustSec\n         \
                advisories, fetched from GitHub; --advisory-db DIR: from a local clone)\n  \
         bench  run the benchmarks, regenerate docs/PERFORMANCE.md (--quick: smoke run;\n         \
                --render-only: re-render the last saved results)\n  \
         itest  cloud backends against local emulators (installed into a cache on first use)\n  \
         load   the REST server under wrk load for --duration SECS (default 300; --quick: 20),\n         \
                regenerates docs/LOAD.md\n  \
         fuzz   cargo-fuzz targets on nightly, one after another (--time SECONDS, default 60;\n         \
                --target NAME; --seed: regenerate the seed corpora; --list)\n  \
         faults the fault-schedule checker's long run (--seeds N, default 100; --ops M, default\n         \
                500; --allow-known: tolerate the known issues of docs/FAULTS.md)"
    );
}

/// The workspace root (this crate lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cache folder for tools, outside the repository.
fn tools_dir() -> PathBuf {
    let cache = env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| env::temp_dir().join("cache"));
    cache.join("vaultdb-tools")
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a step, timing it; fails the task if the command fails.
fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    println!("xtask: == {name}");
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("{name}: could not start: {e}"))?;
    println!(
        "xtask: == {name}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if status.success() { Ok(()) } else { Err(format!("{name} failed ({status})")) }
}

fn test() -> Result<(), String> {
    let start = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("rustfmt", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    step("clippy", clippy)?;

    let mut tests = cargo();
    tests.args(["test", "--workspace", "--all-targets"]);
    step("tests", tests)?;

    // Doc tests are not part of --all-targets.
    let mut doctests = cargo();
    doctests.args(["test", "--workspace", "--doc"]);
    step("doc tests", doctests)?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings");
    step("rustdoc", doc)?;

    deny(&[])?;

    // The cloud backends against real emulators (installed into a cache on first use).
    println!("xtask: == itest");
    itest::run(&[])?;
    println!("xtask: all checks passed in {:.0}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo deny check bans licenses sources`, then, if asked, `check advisories`.
/// `cargo xtask test` does not check advisories: the advisory database is fetched from
/// GitHub, which this project's machines cannot reach.
fn deny(args: &[String]) -> Result<(), String> {
    let mut advisories = false;
    let mut db = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--advisories" => advisories = true,
            "--advisory-db" => {
                let dir = it.next().ok_or("deny: --advisory-db needs a directory")?;
                db = Some(PathBuf::from(dir));
            }
            other => {
                return Err(format!(
                    "deny: unknown argument {other:?}; usage: cargo xtask deny \
                     [--advisories | --advisory-db DIR]"
                ));
            }
        }
    }
    let bin = ensure_cargo_deny()?;
    let mut cmd = Command::new(&bin);
    cmd.current_dir(root()).args(["deny", "--workspace", "check", "bans", "licenses", "sources"]);
    step("cargo deny", cmd)?;
    if advisories || db.is_some() {
        check_advisories(&bin, db.as_deref())?;
    }
    Ok(())
}

/// The folder cargo-deny 0.20 clones the default advisory database
/// (<https://github.com/RustSec/advisory-db>) into, inside its `db-path`.
const ADVISORY_DB_FOLDER: &str = "advisory-db-3157b0e258782691";

/// `cargo deny check advisories` for the main workspace and for `fuzz/`. With `db`, the
/// database is read offline: cargo-deny accepts neither a local path nor a `file://` URL as
/// a database, so a clone of `db` goes where it would have fetched to, and each policy is
/// copied with `db-path` pointing there.
fn check_advisories(bin: &Path, db: Option<&Path>) -> Result<(), String> {
    let root = root();
    let offline = match db {
        None => None,
        Some(src) => {
            let base = tools_dir().join("advisory-dbs");
            let dest = base.join(ADVISORY_DB_FOLDER);
            if dest.exists() {
                fs::remove_dir_all(&dest)
                    .map_err(|e| format!("deny: remove {}: {e}", dest.display()))?;
            }
            fs::create_dir_all(&base)
                .map_err(|e| format!("deny: create {}: {e}", base.display()))?;
            let mut clone = Command::new("git");
            clone.args(["clone", "--quiet", "--local"]).arg(src).arg(&dest);
            step("clone the advisory database", clone)?;
            Some(base)
        }
    };
    for (name, dir) in [("main", root.clone()), ("fuzz", root.join("fuzz"))] {
        let policy = dir.join("deny.toml");
        let mut cmd = Command::new(bin);
        cmd.current_dir(&root).arg("deny");
        match &offline {
            None => {
                cmd.arg("--config").arg(&policy);
            }
            Some(base) => {
                let text = fs::read_to_string(&policy)
                    .map_err(|e| format!("deny: read {}: {e}", policy.display()))?;
                let copy = base.join(format!("{name}-deny.toml"));
                fs::write(&copy, with_db_path(&text, base))
                    .map_err(|e| format!("deny: write {}: {e}", copy.display()))?;
                cmd.arg("--offline").arg("--config").arg(copy);
            }
        }
        cmd.arg("--manifest-path").arg(dir.join("Cargo.toml"));
        cmd.args(["--workspace", "check", "advisories"]);
        step(&format!("cargo deny advisories ({name} workspace)"), cmd)?;
    }
    Ok(())
}

/// The policy `text` with `db-path = "<base>"` in its `[advisories]` table (added if absent).
fn with_db_path(text: &str, base: &Path) -> String {
    let quoted = base.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let line = format!("db-path = \"{quoted}\"\n");
    match text.find("\n[advisories]\n") {
        Some(at) => {
            let after = at + "\n[advisories]\n".len();
            format!("{}{line}{}", &text[..after], &text[after..])
        }
        None => format!("{text}\n[advisories]\n{line}"),
    }
}

fn ensure_cargo_deny() -> Result<PathBuf, String> {
    let dir = tools_dir();
    let bin = dir.join("bin").join("cargo-deny");
    if bin.exists() {
        return Ok(bin);
    }
    println!(
        "xtask: installing cargo-deny {CARGO_DENY_VERSION} into {} (first run only)",
        dir.display()
    );
    let mut install = cargo();
    install
        .args(["install", "--locked", "--quiet", "--root"])
        .arg(&dir)
        .arg(format!("cargo-deny@{CARGO_DENY_VERSION}"));
    step("install cargo-deny", install)?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_path_goes_into_the_advisories_table() {
        let policy = "[graph]\nall-features = true\n\n[advisories]\nversion = 2\n\n[bans]\n";
        let out = with_db_path(policy, Path::new("/c/a\"b"));
        assert_eq!(
            out,
            "[graph]\nall-features = true\n\n[advisories]\ndb-path = \"/c/a\\\"b\"\nversion = 2\n\n[bans]\n"
        );
        let out = with_db_path("[bans]\n", Path::new("/c"));
        assert_eq!(out, "[bans]\n\n[advisories]\ndb-path = \"/c\"\n");
    }
}
