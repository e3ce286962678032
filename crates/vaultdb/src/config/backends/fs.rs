//! `kind = "fs"`: a local directory ([`FsBackend`]).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use vaultdb_core::StorageBackend;
use vaultdb_fs::FsBackend;

/// `kind = "fs"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsSection {
    /// Backend id (unique; recorded in the keyring, so do not change it later).
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
    /// The directory (relative paths: against `data_dir`).
    pub path: PathBuf,
}

impl FsSection {
    /// Checks the fields.
    ///
    /// # Errors
    /// The path is empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.path.to_string_lossy().trim().is_empty() {
            Err(super::err(&self.id, "fs", "path must not be empty"))
        } else {
            Ok(())
        }
    }

    /// The backend (nothing is touched until it is used).
    pub(super) fn build(&self, id: String, name: String) -> Arc<dyn StorageBackend> {
        Arc::new(FsBackend::new(id, name, self.path.clone()))
    }
}
