//! The `envelope`, `record`, `object_key` and `keyring` fuzz targets' regression tests, on
//! stable Rust: every committed input of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same check as the fuzz target
//! (`vaultdb_fuzzing::formats`), so a crash once fixed stays fixed. See docs/FUZZING.md.
//!
//! `cargo test -p vaultdb-fuzzing --test formats_corpus -- --ignored write_seeds` regenerates
//! the seed inputs (`cargo xtask fuzz --seed` runs it).

use std::path::PathBuf;

use vaultdb_fuzzing::corpus;
use vaultdb_fuzzing::formats::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(target: &str) {
    let n = corpus::replay(&fuzz_dir(), target, |data| formats::check(target, data));
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
        for (name, bytes) in formats::seeds(target) {
            formats::check(target, &bytes);
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

/// The replay itself can fail: on an empty corpus, on a crashing input, and on an `open-`
/// regression that no longer crashes.
#[test]
fn replay_fails_when_it_should() {
    let dir = std::env::temp_dir().join(format!("vaultdb-fuzz-replay-{}", std::process::id()));
    let (corpus, regressions) = (dir.join("corpus/t"), dir.join("regressions/t"));
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::create_dir_all(&regressions).unwrap();
    let check = |d: &[u8]| assert!(d != b"boom", "boom");
    let fails = |dir: &std::path::Path| {
        std::panic::catch_unwind(|| corpus::replay(dir, "t", check)).is_err()
    };
    assert!(fails(&dir), "an empty corpus must fail");
    std::fs::write(corpus.join("a"), b"fine").unwrap();
    std::fs::write(regressions.join("open-x"), b"boom").unwrap();
    assert_eq!(corpus::replay(&dir, "t", check), 2, "an open crash that still crashes passes");
    std::fs::write(corpus.join("b"), b"boom").unwrap();
    assert!(fails(&dir), "a crashing corpus input must fail");
    std::fs::remove_file(corpus.join("b")).unwrap();
    std::fs::write(regressions.join("open-x"), b"fixed").unwrap();
    assert!(fails(&dir), "a fixed open crash must fail until renamed");
    std::fs::rename(regressions.join("open-x"), regressions.join("x")).unwrap();
    assert_eq!(corpus::replay(&dir, "t", check), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by `cargo xtask fuzz --seed`"]
fn write_seeds() {
    for target in TARGETS {
        let n = corpus::write_seeds(&fuzz_dir(), target, &formats::seeds(target))
            .expect("write the seeds");
        println!("{target}: {n} seeds written");
    }
}
