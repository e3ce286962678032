//! `kind = "memory"`: shares in RAM ([`MemoryBackend`]); every process starts empty.

use std::sync::Arc;

use vaultdb_core::{MemoryBackend, StorageBackend};

section! {
    /// `kind = "memory"`: no keys besides the common ones.
    pub struct MemorySection {}
}

/// The backend.
pub(super) fn build(id: String, name: String) -> Arc<dyn StorageBackend> {
    Arc::new(MemoryBackend::new(id, name))
}
