//! `kind = "fs"`: a local directory ([`FsBackend`]).

use std::path::PathBuf;
use std::sync::Arc;

use vaultdb_core::StorageBackend;
use vaultdb_fs::FsBackend;

section! {
    /// `kind = "fs"`.
    pub struct FsSection {
        /// The directory (relative paths: against `data_dir`).
        pub path: PathBuf,
    }
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
