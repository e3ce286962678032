//! `kind = "memory"`: shares in RAM ([`MemoryBackend`]); every process starts empty.

use std::sync::Arc;

use serde::Deserialize;
use vaultdb_core::{MemoryBackend, StorageBackend};

/// `kind = "memory"`: no keys besides the common ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    /// Backend id.
    pub id: String,
    /// Human-readable name.
    pub name: Option<String>,
}

/// The backend.
pub(super) fn build(id: String, name: String) -> Arc<dyn StorageBackend> {
    Arc::new(MemoryBackend::new(id, name))
}
