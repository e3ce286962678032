//! The stores the benches measure: 2-of-3 over three memory backends, or over three
//! `FsBackend`s in directories `d1`, `d2` and `d3` of a root.

use std::path::Path;

use vaultdb_core::{MemoryBackend, VaultDb};
use vaultdb_fs::FsBackend;

/// A 2-of-3 store with default settings over three `MemoryBackend`s.
pub(crate) async fn memory_db() -> VaultDb {
    VaultDb::builder()
        .backend(MemoryBackend::new("m1", "memory 1"))
        .backend(MemoryBackend::new("m2", "memory 2"))
        .backend(MemoryBackend::new("m3", "memory 3"))
        .threshold(2)
        .open()
        .await
        .expect("open memory store")
}

/// A 2-of-3 store with default settings over three `FsBackend`s under `root`.
pub(crate) async fn fs_db(root: &Path) -> VaultDb {
    let mut b = VaultDb::builder().threshold(2);
    for i in 1..=3 {
        let fs = FsBackend::open(format!("d{i}"), format!("dir {i}"), root.join(format!("d{i}")))
            .await
            .expect("fs backend");
        b = b.backend(fs);
    }
    b.open().await.expect("open fs store")
}
