//! The fuzz targets' regression tests, on stable Rust: every committed input of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same check as
//! the fuzz target (`vaultdb_core::testkit::fuzzing`), so a crash once fixed stays fixed.
//! See docs/FUZZING.md.
//!
//! `cargo test -p vaultdb-core --test fuzz_corpus -- --ignored write_seeds` regenerates the
//! seed inputs (`cargo xtask fuzz --seed` runs it).

use std::path::PathBuf;

use vaultdb_core::testkit::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(target: &str) {
    let n = fuzzing::replay(&fuzz_dir(), target, |data| fuzzing::check(target, data));
    println!("{target}: {n} inputs passed");
}

#[test]
fn envelope_corpus() {
    replay("envelope");
}

#[test]
fn record_corpus() {
    replay("record");
}

#[test]
fn object_key_corpus() {
    replay("object_key");
}

#[test]
fn keyring_corpus() {
    replay("keyring");
}

/// The seeds pass their own checks, and every seed file is in the committed corpus with the
/// bytes the encoders give today (a format change shows up here: regenerate the seeds).
#[test]
fn committed_seeds_are_current() {
    for target in TARGETS {
        for (name, bytes) in fuzzing::seeds(target) {
            fuzzing::check(target, &bytes);
            let path = fuzz_dir().join("corpus").join(target).join(&name);
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == bytes,
                "{} is missing or stale: run `cargo xtask fuzz --seed`",
                path.display()
            );
        }
    }
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by `cargo xtask fuzz --seed`"]
fn write_seeds() {
    for target in TARGETS {
        let n = fuzzing::write_seeds(&fuzz_dir(), target, &fuzzing::seeds(target))
            .expect("write the seeds");
        println!("{target}: {n} seeds written");
    }
}
