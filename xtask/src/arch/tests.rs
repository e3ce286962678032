//! The check against small trees in temporary directories: a clean one passes, and each
//! rule, broken once, fails with the file named.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A fixture tree in a fresh temporary directory, removed on drop.
struct Tree(PathBuf);

impl Tree {
    /// The clean tree, with `changes` applied: `(path, Some(contents))` writes a file,
    /// `(path, None)` removes one.
    fn new(changes: &[(&str, Option<&str>)]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-arch-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        let tree = Tree(dir);
        for (path, text) in CLEAN {
            tree.write(path, text);
        }
        for (path, text) in changes {
            match text {
                Some(t) => tree.write(path, t),
                None => fs::remove_file(tree.0.join(path)).expect("fixture file"),
            }
        }
        tree
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.0.join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("create fixture dir");
        fs::write(p, text).expect("write fixture");
    }

    /// The problems the check reports, as `at: what` lines.
    fn problems(&self) -> Vec<String> {
        check(&self.0).problems.iter().map(ToString::to_string).collect()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const DOC_OK: &str = "# Architecture

## Codemap

Prose about `Kernel` and `<root>/.tmp/`, which are not paths.

### `crates/demo`

- `lib.rs`: the crate root.
- `simd/`: the kernels. `mod.rs` dispatches; `x86.rs` holds the
  intrinsics.
- `tests/`: integration tests.

### `xtask`

- `main.rs`: the tasks.

## Architecture invariants

- `unsafe` appears only in `crates/demo/src/simd/x86.rs`; everything else forbids it. The
  crate root, `crates/demo/src/lib.rs`, denies it.

## Checks on this document

The sentence that begins \"`unsafe` appears only in\" lists `crates/demo/src/lib.rs`-style
paths; `src/` here is not checked.
";

const CLEAN: &[(&str, &str)] = &[
    ("ARCHITECTURE.md", DOC_OK),
    ("crates/demo/Cargo.toml", "[package]\nname = \"demo\"\n"),
    ("crates/demo/src/lib.rs", "#![deny(unsafe_code)]\n//! Not unsafe.\npub mod simd;\n"),
    (
        "crates/demo/src/simd/mod.rs",
        "#[allow(unsafe_code)]\nmod x86;\nconst S: &str = \"unsafe\";\n",
    ),
    ("crates/demo/src/simd/x86.rs", "// SAFETY: fixture.\npub unsafe fn k() {}\n"),
    ("crates/demo/tests/it.rs", "#[test]\nfn t() {}\n"),
    ("xtask/Cargo.toml", "[package]\nname = \"xtask\"\n"),
    ("xtask/src/main.rs", "fn main() {}\n"),
    ("fuzz/fuzz_targets/t.rs", "// fuzz target\n"),
];

/// The problems of the demo tree with `doc` as its ARCHITECTURE.md.
fn problems_with_doc(doc: &str) -> Vec<String> {
    Tree::new(&[("ARCHITECTURE.md", Some(doc))]).problems()
}

/// `n` lines of code, with `head` first.
fn lines(head: &str, n: usize) -> String {
    let mut s = head.to_owned();
    while s.lines().count() < n {
        s.push_str("fn f() {}\n");
    }
    s
}

fn assert_one(problems: &[String], at: &str, says: &str) {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with(at), "{problems:#?}");
    assert!(problems[0].contains(says), "{problems:#?}");
}

#[test]
fn a_clean_tree_passes() {
    let tree = Tree::new(&[]);
    let report = check(&tree.0);
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.mapped, 4, "lib.rs, simd/mod.rs, simd/x86.rs, xtask's main.rs");
    assert_eq!(report.scanned, 6, "with the test and the fuzz target");
    assert_eq!(report.with_unsafe, 1);
}

#[test]
fn a_named_module_that_is_gone_fails() {
    let tree = Tree::new(&[("crates/demo/src/simd/x86.rs", None)]);
    let p = tree.problems();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with("ARCHITECTURE.md:10: `x86.rs` does not exist"), "{p:#?}");
    assert!(p[0].contains("(read as crates/demo/src/simd/x86.rs: inside `simd/`"), "{p:#?}");
    assert!(p[1].contains("is allowed `unsafe` but does not exist"), "{p:#?}");

    let doc = DOC_OK.replace("- `lib.rs`", "- `gone/`: old. `lib.rs`");
    let p = problems_with_doc(&doc);
    // `gone/` is missing, and `lib.rs` after it resolves inside it.
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].contains("`gone/`") && p[0].contains("does not exist"), "{p:#?}");
    assert!(p[1].contains("inside `gone/`"), "{p:#?}");
    assert!(p[2].starts_with("crates/demo/src/lib.rs: not named"), "{p:#?}");
}

#[test]
fn a_heading_that_names_no_crate_fails() {
    let doc = DOC_OK.replace("### `xtask`", "### `tools`");
    let p = problems_with_doc(&doc);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].starts_with("ARCHITECTURE.md:14: the heading names `tools`"), "{p:#?}");
    assert!(p[1].contains("read as tools/src/main.rs"), "{p:#?}");
    assert!(p[2].starts_with("xtask/src/main.rs: not named"), "{p:#?}");
}

#[test]
fn an_unlisted_source_file_fails() {
    let tree = Tree::new(&[("crates/demo/src/extra.rs", Some("pub fn e() {}\n"))]);
    assert_one(&tree.problems(), "crates/demo/src/extra.rs: not named", "add `extra.rs`");

    // A crate without a heading.
    let tree = Tree::new(&[
        ("crates/other/Cargo.toml", Some("[package]\n")),
        ("crates/other/src/lib.rs", Some("\n")),
    ]);
    assert_one(&tree.problems(), "crates/other/src/lib.rs", "no `### \\`crates/other\\`` heading");

    // Naming the directory does not cover its files.
    let doc = DOC_OK.replace("`mod.rs` dispatches; ", "");
    assert_one(&problems_with_doc(&doc), "crates/demo/src/simd/mod.rs: not named", "`simd/mod.rs`");

    // Tests are out of scope for the codemap.
    let tree = Tree::new(&[("crates/demo/tests/more.rs", Some("\n"))]);
    assert!(tree.problems().is_empty());
}

#[test]
fn unsafe_outside_the_allowed_files_fails() {
    let src = "// unsafe\nconst A: &str = \"unsafe\";\nfn f() {\n    unsafe { g() }\n}\n";
    let tree = Tree::new(&[("crates/demo/src/lib.rs", Some(src))]);
    assert_one(&tree.problems(), "crates/demo/src/lib.rs:4: `unsafe` (line 4)", "outside");

    // Tests and fuzz targets are scanned too.
    let tree = Tree::new(&[("fuzz/fuzz_targets/t.rs", Some("unsafe impl Send for T {}\n"))]);
    assert_one(&tree.problems(), "fuzz/fuzz_targets/t.rs:1", "outside");

    // An allowed file that no longer has any.
    let tree = Tree::new(&[("crates/demo/src/simd/x86.rs", Some("pub fn k() {}\n"))]);
    assert_one(&tree.problems(), "ARCHITECTURE.md:20", "allowed `unsafe` but has none");

    // No sentence at all.
    let doc = DOC_OK.replace("`unsafe` appears only in", "unsafe is only in");
    let p = problems_with_doc(&doc);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with("ARCHITECTURE.md: no sentence"), "{p:#?}");
    assert!(p[1].starts_with("crates/demo/src/simd/x86.rs:2"), "{p:#?}");
}

#[test]
fn a_long_file_without_a_reason_fails() {
    let long = lines("//! Docs.\n", LONG_FILE_LINES + 1);
    let tree = Tree::new(&[("crates/demo/src/lib.rs", Some(&long))]);
    assert_one(&tree.problems(), "crates/demo/src/lib.rs: 701 lines", LONG_FILE_PHRASE);

    // Exactly at the limit, or with the comment, it passes.
    let at_limit = lines("//! Docs.\n", LONG_FILE_LINES);
    let explained = lines("//! Docs.\n// This file is long because it is one parser.\n", 900);
    let tree = Tree::new(&[
        ("crates/demo/src/lib.rs", Some(&at_limit)),
        ("crates/demo/tests/it.rs", Some(&explained)),
    ]);
    assert!(tree.problems().is_empty(), "{:#?}", tree.problems());
    assert_eq!(check(&tree.0).long, 1);
}
