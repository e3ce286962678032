//! The `config` and `rest` fuzz targets' regression tests, on stable Rust: every committed
//! input of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same
//! check as the fuzz target (`vaultdb_fuzzing::app`), so a crash once fixed stays fixed. See
//! docs/FUZZING.md.
//!
//! `cargo test -p vaultdb-fuzzing --test app_corpus -- --ignored write_seeds` regenerates the
//! seed inputs (`cargo xtask fuzz --seed` runs it).

use std::path::PathBuf;

use vaultdb_fuzzing::app::{self, TARGETS};
use vaultdb_fuzzing::corpus::{replay, write_seeds as write};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn run(target: &str) {
    let n = replay(&fuzz_dir(), target, |data| app::check(target, data));
    println!("{target}: {n} inputs passed");
}

#[test]
fn config_corpus() {
    run("config");
}

#[test]
fn rest_corpus() {
    run("rest");
}

/// The seeds pass their own checks (the REST seeds are picked by running them).
#[test]
fn seeds_pass_their_checks() {
    for (name, bytes) in app::seeds("config") {
        app::check("config", &bytes);
        let committed = std::fs::read(fuzz_dir().join("corpus/config").join(&name));
        assert!(
            committed.ok() == Some(bytes),
            "{name} is missing or stale: cargo xtask fuzz --seed"
        );
    }
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by `cargo xtask fuzz --seed`"]
fn write_seeds() {
    for target in TARGETS {
        let n = write(&fuzz_dir(), target, &app::seeds(target)).expect("write the seeds");
        println!("{target}: {n} seeds written");
    }
}
