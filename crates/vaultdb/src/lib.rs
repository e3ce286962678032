//! # vaultdb
//!
//! The `vaultdb` binary's library: the command line ([`cli`]), the configuration file
//! ([`config`], its cloud backend sections in [`cloud`]), the REST server ([`server`],
//! built by [`app`]), bearer tokens ([`auth`]), the hash-chained audit log ([`audit`]) and
//! request metrics ([`metrics`]).
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
pub mod cloud;
pub mod config;
pub mod error;
pub mod metrics;
pub mod server;

pub use server::{AppState, app, openapi};
