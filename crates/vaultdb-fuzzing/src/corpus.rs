//! Replaying and writing the committed corpora: what the regression tests
//! (`tests/*_corpus.rs`) and the seed generator (`cargo xtask fuzz --seed`) run for every
//! fuzz target.

use std::any::Any;
use std::panic::{self, RefUnwindSafe};
use std::path::{Path, PathBuf};

/// The largest committed corpus file [`replay`] accepts: corpora stay small.
pub const MAX_CORPUS_FILE: usize = 64 << 10;

/// Prefix of a file in `fuzz/regressions/<target>/` that still crashes (a bug found but not
/// fixed yet): [`replay`] requires its check to panic, so the test fails once the bug is
/// fixed, as a reminder to rename the file without the prefix.
pub const OPEN_PREFIX: &str = "open-";

/// The input files of a corpus directory, sorted (dot files and `*.md` skipped); empty if
/// the directory does not exist.
///
/// # Panics
/// If the directory exists but cannot be read.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .map(|e| e.expect("a readable corpus directory").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on every file of `<fuzz_dir>/corpus/<target>/` (which must hold at least one
/// file, each at most [`MAX_CORPUS_FILE`] bytes) and `<fuzz_dir>/regressions/<target>/`
/// (optional); files of the latter named [`OPEN_PREFIX`]`*` must make `check` panic. Returns
/// how many files ran.
///
/// # Panics
/// Listing every file that failed, if any did.
pub fn replay(fuzz_dir: &Path, target: &str, check: impl Fn(&[u8]) + RefUnwindSafe) -> usize {
    let corpus = corpus_files(&fuzz_dir.join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty or missing");
    let regressions = corpus_files(&fuzz_dir.join("regressions").join(target));
    let mut failures = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("a readable corpus file");
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let in_corpus = corpus.contains(path);
        if in_corpus && data.len() > MAX_CORPUS_FILE {
            failures.push(format!(
                "{}: {} bytes, over {MAX_CORPUS_FILE}",
                path.display(),
                data.len()
            ));
        }
        let outcome = panic::catch_unwind(|| check(&data));
        let expect_panic = !in_corpus && name.starts_with(OPEN_PREFIX);
        match (outcome, expect_panic) {
            (Ok(()), false) => {}
            (Err(e), true) => {
                eprintln!("{}: still crashes, as expected ({})", path.display(), panic_text(&*e));
            }
            (Err(e), false) => failures.push(format!("{}: {}", path.display(), panic_text(&*e))),
            (Ok(()), true) => failures.push(format!(
                "{}: no longer crashes; rename it without the {OPEN_PREFIX:?} prefix",
                path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz target {target}: {} failing input(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    corpus.len() + regressions.len()
}

/// The message of a caught panic.
pub fn panic_text(e: &(dyn Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "<non-text panic>".to_owned())
}

/// Replaces the `seed-*` files of `<fuzz_dir>/corpus/<target>/` with `seeds` (other files,
/// such as inputs added from fuzzing runs, stay). Returns how many were written.
///
/// # Errors
/// Any I/O error.
pub fn write_seeds(
    fuzz_dir: &Path,
    target: &str,
    seeds: &[(String, Vec<u8>)],
) -> std::io::Result<usize> {
    let dir = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    for old in corpus_files(&dir) {
        if old.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
            std::fs::remove_file(old)?;
        }
    }
    for (name, bytes) in seeds {
        assert!(bytes.len() <= MAX_CORPUS_FILE, "seed {name} is {} bytes", bytes.len());
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(seeds.len())
}
