//! README.md's integration example: three backends, 2-of-3, put then get.
//! First over three memory backends, then over three directories (FsBackend).
//!
//! Run: `cargo run -p vaultdb-fs --example quickstart`

use vaultdb_core::{MemoryBackend, Record, VaultDb};
use vaultdb_fs::FsBackend;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Create 3 independent storage backends.
    let db = VaultDb::builder()
        .backend(MemoryBackend::new("aws", "AWS S3"))
        .backend(MemoryBackend::new("gcp", "Google Cloud"))
        .backend(MemoryBackend::new("azure", "Azure Blob"))
        // 2-of-3: any 2 backends can reconstruct.
        .threshold(2)
        .open()
        .await?;
    roundtrip(&db).await?;

    // The same over three directories.
    let dir = std::env::temp_dir().join(format!("vaultdb-quickstart-{}", std::process::id()));
    let db = VaultDb::builder()
        .backend(FsBackend::open("disk-1", "disk 1", dir.join("disk-1")).await?)
        .backend(FsBackend::open("disk-2", "disk 2", dir.join("disk-2")).await?)
        .backend(FsBackend::open("disk-3", "disk 3", dir.join("disk-3")).await?)
        .threshold(2)
        .open()
        .await?;
    roundtrip(&db).await?;
    println!("shares are under {}", dir.display());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn roundtrip(db: &VaultDb) -> Result<(), Box<dyn std::error::Error>> {
    // Store a record: splits across all 3.
    let record =
        Record::json("user-42", &serde_json::json!({"name": "Alice", "ssn": "***-**-****"}))?;
    db.put(record).await?;
    // Retrieve: reconstructs from threshold shares and verifies.
    let result = db.get("user-42").await?;
    let data: serde_json::Value = result.record.data_json()?;
    println!("{data}");
    assert_eq!(data["name"], "Alice");
    Ok(())
}
