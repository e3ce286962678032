//! # vaultdb-fuzzing
//!
//! The checks behind the cargo-fuzz (libFuzzer) targets of `fuzz/`, their seed inputs, and
//! the replay of the committed corpora that runs them on stable Rust. See docs/FUZZING.md.
//!
//! - [`formats`]: vaultdb-core's decoders of bytes a backend controls (targets `envelope`,
//!   `record`, `object_key`, `keyring`);
//! - [`app`]: the `vaultdb` binary's configuration file and REST API (targets `config`,
//!   `rest`);
//! - [`corpus`]: replaying `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through a
//!   check, and writing the seed corpora.
//!
//! Each fuzz target (`fuzz/fuzz_targets/<target>.rs`) is a one-liner calling its check; the
//! tests `tests/formats_corpus.rs` and `tests/app_corpus.rs` replay every committed input
//! through the same checks, so a crash once fixed stays fixed. A check panics exactly when it
//! found a bug. Test support only: nothing ships this crate.

#![deny(rustdoc::broken_intra_doc_links)]

pub mod app;
pub mod corpus;
pub mod formats;
