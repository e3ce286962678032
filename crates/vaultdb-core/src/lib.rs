//! # vaultdb-core
//!
//! The heart of VaultDB: records split across N independent storage backends with K-of-N
//! threshold sharing ("XorIDA"), so that any K backends rebuild a record and fewer than K
//! learn nothing about its contents, its id, or its exact size.
//!
//! This crate has no network or file I/O of its own. It holds:
//! - [`gf256`] and [`xorida`]: the field arithmetic, the SIMD region kernels and the
//!   sharing engine (split, rebuild, derive);
//! - [`compact`]: the compact storage mode ([`Mode`]): the secret encrypted, dispersed with
//!   an erasure code, and its key shared with XorIDA;
//! - [`rng`]: the CSPRNG that feeds the sharing, injectable for tests;
//! - [`error`]: [`VaultError`] and the product's error codes;
//! - [`backend`]: the [`StorageBackend`] trait every backend implements.
//!
//! The byte formats are specified in `docs/FORMAT.md`, the threat model in
//! `docs/SECURITY.md`.

#![deny(rustdoc::broken_intra_doc_links)]

pub mod backend;
pub mod base32;
mod bufpool;
mod canonical;
pub mod client;
pub mod compact;
pub mod envelope;
pub mod error;
pub mod gf256;
pub mod keyring;
pub mod manifest;
pub mod memory;
pub mod naming;
pub mod padding;
mod pair;
pub mod record;
pub mod rng;
pub mod secret;
pub mod version;
pub mod wipe;
pub mod xorida;

pub use backend::{
    BackendError, BackendErrorKind, BackendResult, Key, KeyPrefix, ListEntry, ListFrom, ListPage,
    PutMode, StorageBackend,
};
pub use client::{
    CallPolicy, DeleteResult, GetResult, Health, ListResult, PutResult, ReadStream, RecordMeta,
    RecordPage, RepairReport, ReshareOptions, ResharePhase, ReshareProgress, ReshareReport,
    ScrubReport, Settings, VaultDb, VaultDbBuilder, WallClock,
};
pub use compact::Mode;
pub use error::{BackendOutcome, ErrorCode, OutcomeStatus, Result, VaultError};
pub use memory::MemoryBackend;
pub use padding::Padding;
pub use record::Record;
pub use version::Version;
pub use xorida::{SharePoint, Threshold, Xorida};
