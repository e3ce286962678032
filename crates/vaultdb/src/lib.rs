//! # vaultdb
//!
//! The `vaultdb` binary's library, by layer:
//!
//! - [`config`]: `vaultdb.toml`: its model, value types, loading (environment overrides,
//!   paths, validation) and backend entries (one module per kind);
//! - [`service`]: what the command line and the server share: opening the store and the
//!   tokens, the audited runner, the content-type rule, the degraded rule;
//! - [`cli`]: the command line; [`server`]: the REST server (built by [`app`]);
//! - beside them: bearer tokens ([`auth`]), the hash-chained audit log ([`audit`]), request
//!   metrics ([`metrics`]) and the command line's error ([`error`]).
//!
//! The server is a router over an [`AppState`], so tests (and embedders) can serve it on
//! any listener:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use vaultdb::auth::{Role, Tokens};
//! use vaultdb::server::{AppState, Limits};
//! use vaultdb_core::{MemoryBackend, VaultDb};
//!
//! let db = VaultDb::builder()
//!     .backend(MemoryBackend::new("a", "A"))
//!     .backend(MemoryBackend::new("b", "B"))
//!     .backend(MemoryBackend::new("c", "C"))
//!     .threshold(2)
//!     .open()
//!     .await?;
//! let mut tokens = Tokens::default();
//! tokens.add_plain("admin", Role::Admin, "secret-token");
//! let state = AppState::new(db, tokens, None, Limits::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, vaultdb::app(state)).await?;
//! # Ok(()) }
//! ```
//!
//! See README.md beside this crate for the quick start and the configuration reference.

#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod metrics;
pub mod server;
pub mod service;

pub use server::{AppState, app, openapi};
