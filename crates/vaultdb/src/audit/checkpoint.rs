//! Checkpoints: the head of a log's chain (its id, the line's `seq` and `mac`), stored as
//! a record of the store's system namespace ([`VaultDb::system`]) named
//! `audit-checkpoint/<log id>`. A record there can be written only by a client of the store
//! (it needs K backends and the naming key), not by someone holding the log file alone.

use serde::{Deserialize, Serialize};
use vaultdb_core::{Record, VaultDb, VaultError};

use super::log::CheckpointError;

/// The id prefix of checkpoint records in the system namespace.
pub const CHECKPOINT_PREFIX: &str = "audit-checkpoint/";

/// The system record id of the checkpoint of log `log`.
pub fn checkpoint_id(log: &str) -> String {
    format!("{CHECKPOINT_PREFIX}{log}")
}

/// A checkpoint: the record's payload, compact JSON with the fields in this order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The log's id.
    pub log: String,
    /// The checkpointed line's `seq`.
    pub seq: u64,
    /// The checkpointed line's `mac`.
    pub mac: String,
    /// When the checkpoint was written (RFC 3339, UTC).
    pub ts: String,
    /// The log file's absolute path as its writer saw it (informational: it lets `audit
    /// verify` notice that a file now holds another log, or none).
    pub path: String,
}

impl Checkpoint {
    /// The payload: compact JSON.
    pub fn encode(&self) -> Vec<u8> {
        // Strings and an integer: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a payload written by [`Checkpoint::encode`].
    ///
    /// # Errors
    /// If it is not one, for people.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let cp: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("the checkpoint record is not a checkpoint: {e}"))?;
        if cp.encode() != bytes {
            return Err("the checkpoint record is not in the canonical form".into());
        }
        Ok(cp)
    }

    /// The system record that stores this checkpoint.
    pub fn record(&self) -> Record {
        let mut r = Record::new(checkpoint_id(&self.log), self.encode());
        r.content_type = Some(vaultdb_core::record::JSON_CONTENT_TYPE.to_owned());
        r
    }
}

/// The stored checkpoint of log `log` in the store `db`, if there is one.
///
/// # Errors
/// The store's errors; a record that is not a checkpoint.
pub async fn read_checkpoint(
    db: &VaultDb,
    log: &str,
) -> Result<Option<Checkpoint>, CheckpointError> {
    match db.system().get(&checkpoint_id(log)).await {
        Ok(r) => Checkpoint::decode(&r.record.data).map(Some).map_err(CheckpointError::Damaged),
        Err(VaultError::RecordNotFound) => Ok(None),
        Err(e) => Err(CheckpointError::Store(e)),
    }
}

/// Every checkpoint stored in `db`, one per log, sorted by log id.
///
/// # Errors
/// The store's errors; a record that is not a checkpoint.
pub async fn list_checkpoints(db: &VaultDb) -> Result<Vec<Checkpoint>, CheckpointError> {
    let sys = db.system();
    let ids = sys.list().await.map_err(CheckpointError::Store)?.ids;
    let mut out = Vec::new();
    for id in ids.iter().filter(|i| i.starts_with(CHECKPOINT_PREFIX)) {
        if let Some(cp) = read_checkpoint(db, &id[CHECKPOINT_PREFIX.len()..]).await? {
            out.push(cp);
        }
    }
    Ok(out)
}
