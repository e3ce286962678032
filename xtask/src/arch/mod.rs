//! `cargo xtask arch`: checks ARCHITECTURE.md against the tree, so that the map stays true.
//! `cargo xtask test` runs it right after rustfmt. Every problem is reported (file, line,
//! what to do), then the task fails.
//!
//! The rules (ARCHITECTURE.md states them for its readers, under "Checks on this
//! document"):
//!
//! 1. **The codemap is complete and true.** In the [`CODEMAP`] section, every inline code
//!    span that ends in `.rs` or `/` (letters, digits, `_ - . /` only) is a path, and must
//!    exist (a file, or for `/` a directory). A `###` heading names crates by directory
//!    (`` ### `crates/vaultdb-core` ``); each must be a directory with a `Cargo.toml`. A path
//!    is resolved:
//!    - from the repository root if it starts with `crates/`, `xtask/` or `fuzz/`;
//!    - else inside the last directory named before it in the same bullet or paragraph
//!      (`` `client/`: `mod.rs` ..., `read.rs` ... ``);
//!    - else in the crate of the `###` heading above it, if the heading names exactly one:
//!      under its `src/`, or the crate directory itself (`tests/`, `benches/`).
//!
//!    Every `.rs` file under `crates/*/src/` and `xtask/src/` must be named this way, file
//!    by file: naming a directory does not cover the files in it, so that a new module
//!    cannot appear without a line saying what it is. Tests, benches, examples and the fuzz
//!    targets (`crates/*/{tests,benches,examples}/`, `fuzz/`) need not be listed: they are
//!    many and change often, each file's docs say what it tests, and docs/PERFORMANCE.md
//!    and docs/FUZZING.md describe the benches and fuzz targets; the two rules below cover
//!    them too.
//! 2. **`unsafe` is where the invariants say.** ARCHITECTURE.md's [`INVARIANTS`] section
//!    has one sentence starting with [`UNSAFE_PHRASE`] and listing the files, each in
//!    backticks from the repository root. Every `.rs` file under `crates/`, `xtask/` and
//!    `fuzz/` (skipping `target/` and hidden folders) is scanned for the `unsafe` keyword
//!    in code (comments, strings and longer identifiers such as the lint `unsafe_code` do
//!    not count): a file not listed must have none, and a listed file must still have some.
//! 3. **Long files say why.** A file of those over [`LONG_FILE_LINES`] lines must have a
//!    `//` comment in its first [`LONG_FILE_HEAD`] lines holding [`LONG_FILE_PHRASE`] and the
//!    reason (`// This file is long because it is one state machine ...`).

mod codemap;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::Path;

use crate::root;

/// The document checked, at the repository root.
const DOC: &str = "ARCHITECTURE.md";
/// The section of [`DOC`] whose paths are checked (rule 1).
const CODEMAP: &str = "Codemap";
/// The section of [`DOC`] that holds the `unsafe` invariant (rule 2).
const INVARIANTS: &str = "Architecture invariants";
/// The start of the invariant that lists the files allowed to hold `unsafe`.
const UNSAFE_PHRASE: &str = "`unsafe` appears only in";
/// Files longer than this many lines must say why.
const LONG_FILE_LINES: usize = 700;
/// The phrase that says why (followed by the reason).
const LONG_FILE_PHRASE: &str = "This file is long because";
/// How many lines at the top of a file may hold that comment.
const LONG_FILE_HEAD: usize = 10;
/// The folders scanned for Rust files (rules 2 and 3).
const SCANNED: [&str; 3] = ["crates", "xtask", "fuzz"];

/// One thing to fix.
#[derive(Debug)]
struct Problem {
    /// `path` or `path:line`, relative to the repository root.
    at: String,
    what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

/// What a check found.
#[derive(Debug, Default)]
struct Report {
    problems: Vec<Problem>,
    /// Source files the codemap must name.
    mapped: usize,
    /// Rust files scanned.
    scanned: usize,
    /// Files holding `unsafe`.
    with_unsafe: usize,
    /// Files over the length limit (with or without a reason).
    long: usize,
}

impl Report {
    fn problem(&mut self, at: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem { at: at.into(), what: what.into() });
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !crate::no_arguments("arch", args)? {
        return Ok(());
    }
    let report = check(&root());
    for p in &report.problems {
        println!("xtask: arch: {p}");
    }
    if report.problems.is_empty() {
        println!(
            "xtask: arch: {DOC} matches the tree: {} source files mapped; {} Rust files \
             scanned, {} with `unsafe` (all allowed), {} over {LONG_FILE_LINES} lines (all \
             saying why)",
            report.mapped, report.scanned, report.with_unsafe, report.long
        );
        Ok(())
    } else {
        Err(format!(
            "arch: {} problem(s) with {DOC} or the tree, listed above",
            report.problems.len()
        ))
    }
}

/// Checks the repository at `root` against its ARCHITECTURE.md.
fn check(root: &Path) -> Report {
    let mut report = Report::default();
    let text = match fs::read_to_string(root.join(DOC)) {
        Ok(t) => t,
        Err(e) => {
            report.problem(DOC, format!("cannot read it: {e}"));
            return report;
        }
    };
    let doc = codemap::read(&text, root);
    let at = |line: usize| format!("{DOC}:{line}");
    for (line, what) in &doc.problems {
        report.problem(at(*line), what.clone());
    }

    // Rule 1: every crate and path named exists...
    for (line, dir) in &doc.crates {
        if !root.join(dir).join("Cargo.toml").is_file() {
            report.problem(
                at(*line),
                format!(
                    "the heading names `{dir}`, which is not a crate directory (no \
                     {dir}/Cargo.toml): fix the heading, or remove it if the crate is gone"
                ),
            );
        }
    }
    for n in &doc.named {
        let p = root.join(&n.path);
        let ok = if n.dir { p.is_dir() } else { p.is_file() };
        if !ok {
            report.problem(
                at(n.line),
                format!(
                    "`{}` does not exist (read as {}{}: {}): fix the path, or remove the \
                     entry if the module is gone",
                    n.written,
                    n.path,
                    if n.dir { "/" } else { "" },
                    n.how,
                ),
            );
        }
    }

    // ... and every source file is named.
    let files = rust_files(root);
    let named: BTreeSet<&str> = doc.named.iter().map(|n| n.path.as_str()).collect();
    let headed: BTreeSet<&str> = doc.crates.iter().map(|(_, c)| c.as_str()).collect();
    for f in &files {
        let Some((krate, in_src)) = crate_source(f) else { continue };
        report.mapped += 1;
        if named.contains(f.as_str()) {
            continue;
        }
        let what = if headed.contains(krate) {
            format!(
                "not named in {DOC}'s codemap: add `{in_src}` to a bullet under the \
                 `{krate}` heading, saying what it holds (each file is named; a directory \
                 does not cover its files)"
            )
        } else {
            format!(
                "not named in {DOC}'s codemap, which has no `### \\`{krate}\\`` heading: \
                 add one, and name `{in_src}` under it"
            )
        };
        report.problem(f.clone(), what);
    }

    // Rule 2: `unsafe` only where allowed.
    let allowed: Vec<(usize, String)> = match doc.unsafe_files {
        Some(list) => list,
        None => {
            report.problem(
                DOC,
                format!(
                    "no sentence starting with {UNSAFE_PHRASE:?} in the invariants: state \
                     where `unsafe` may appear, each file in backticks from the repository root"
                ),
            );
            Vec::new()
        }
    };
    let mut with_unsafe = BTreeSet::new();
    for f in &files {
        let Ok(src) = fs::read_to_string(root.join(f)) else {
            report.problem(f.clone(), "cannot read it (not UTF-8?)");
            continue;
        };
        report.scanned += 1;
        let lines = scan::unsafe_lines(&src);
        if !lines.is_empty() {
            with_unsafe.insert(f.clone());
            if !allowed.iter().any(|(_, a)| a == f) {
                let list: Vec<String> = lines.iter().map(usize::to_string).collect();
                report.problem(
                    format!("{f}:{}", lines[0]),
                    format!(
                        "`unsafe` (line {}) outside the files {DOC} allows: remove it, or, if \
                         it must be here, add the file to the sentence {UNSAFE_PHRASE:?} and \
                         give each block a `// SAFETY:` comment",
                        list.join(", ")
                    ),
                );
            }
        }

        // Rule 3: long files say why.
        let n = src.lines().count();
        if n > LONG_FILE_LINES {
            report.long += 1;
            if !scan::explains_length(&src, LONG_FILE_PHRASE, LONG_FILE_HEAD) {
                report.problem(
                    f.clone(),
                    format!(
                        "{n} lines, over {LONG_FILE_LINES}, and no comment in its first \
                         {LONG_FILE_HEAD} lines saying why: split it by concern, or add \
                         `// {LONG_FILE_PHRASE} <reason>.` at its top"
                    ),
                );
            }
        }
    }
    report.with_unsafe = with_unsafe.len();
    for (line, f) in &allowed {
        if !root.join(f).is_file() {
            report.problem(
                at(*line),
                format!(
                    "`{f}` is allowed `unsafe` but does not exist: write it from the \
                     repository root, or remove it"
                ),
            );
        } else if !with_unsafe.contains(f) {
            report.problem(
                at(*line),
                format!(
                    "`{f}` is allowed `unsafe` but has none: remove it from the sentence \
                     {UNSAFE_PHRASE:?}"
                ),
            );
        }
    }
    report
}

/// If `file` (from the repository root) is a crate's source file that the codemap must
/// name: its crate directory and its path under `src/`.
fn crate_source(file: &str) -> Option<(&str, &str)> {
    let (krate, rest) = if let Some(rest) = file.strip_prefix("xtask/") {
        ("xtask", rest)
    } else {
        let rest = file.strip_prefix("crates/")?;
        let (name, rest) = rest.split_once('/')?;
        (&file[..("crates/".len() + name.len())], rest)
    };
    Some((krate, rest.strip_prefix("src/")?))
}

/// Every `.rs` file under [`SCANNED`], from the repository root, `/`-separated and sorted;
/// `target/` and hidden folders are skipped.
fn rust_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack: Vec<String> = SCANNED.iter().map(|s| (*s).to_owned()).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&dir)) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{dir}/{name}");
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(rel);
                }
            } else if kind.is_file() && name.ends_with(".rs") {
                files.push(rel);
            }
        }
    }
    files.sort();
    files
}
