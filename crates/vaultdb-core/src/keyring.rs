//! The keyring: the naming key and the deployment's shape, stored split across the
//! backends themselves.
//!
//! It is a small postcard structure sealed and split exactly like a record (kind
//! [`Kind::Keyring`], name tag zero), one share per backend at `<prefix>/keyring`. Because
//! it records K, N and the ordered backend ids, a client opened with a different
//! configuration gets `INVALID_CONFIG` instead of reading garbage. It also records the
//! store's storage [`Mode`]; a keyring without one (format 1, every store made before the
//! compact mode existed, and every `shamir` store) is a `shamir` store.

use serde::{Deserialize, Serialize};

use crate::compact::Mode;
use crate::envelope::Kind;
use crate::error::{Result, VaultError};
use crate::naming::{NameTag, NamingKey};
use crate::xorida::Threshold;

/// The keyring's name tag (it has no id).
pub const KEYRING_TAG: NameTag = NameTag([0; 16]);

/// The keyring as stored (postcard). Format 1 is this structure alone (a `shamir` store);
/// format 2 is this structure followed by the mode's byte ([`Mode::to_byte`], `01` for
/// `compact`: a `shamir` store is always written as format 1, so each keyring has one
/// encoding).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct KeyringWire {
    /// Format of this structure (1 or 2).
    pub(crate) format: u8,
    /// The naming key, or `None` when it comes from configuration (a KMS).
    pub(crate) naming_key: Option<[u8; 32]>,
    /// The name tag, under the naming key, of the id `"\0vaultdb/v1/key-check"` (which no
    /// record can have: it starts with a control character), that is
    /// `HMAC-SHA256(naming_key, "vaultdb/v1/name\0" | "\0vaultdb/v1/key-check")[..16]`
    /// (computed by `fn key_check`): lets a client with an externally supplied key check
    /// it is the right one.
    pub(crate) key_check: [u8; 16],
    pub(crate) k: u8,
    pub(crate) n: u8,
    pub(crate) backends: Vec<String>,
}

/// The decoded keyring.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// The naming key.
    pub naming_key: NamingKey,
    /// The threshold it was created with.
    pub threshold: Threshold,
    /// The ordered backend ids: backend i holds shares at x = i + 1.
    pub backends: Vec<String>,
    /// True if the naming key is stored in the keyring (false: supplied by configuration).
    pub stores_key: bool,
    /// How the store splits its secrets (the keyring itself is always split with XorIDA).
    pub mode: Mode,
}

fn key_check(key: &NamingKey) -> [u8; 16] {
    // The tag of a string that can never be a record id (it holds a control character).
    key.tag("\u{0}vaultdb/v1/key-check").0
}

impl Keyring {
    /// The binding kind.
    pub const KIND: Kind = Kind::Keyring;

    /// Appends the keyring's payload (postcard, docs/FORMAT.md section 9) to `out`: the
    /// naming key only if [`stores_key`](Self::stores_key), always its check value; format 1
    /// for a `shamir` store, format 2 and the mode byte for any other.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if serialization fails.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let wire = KeyringWire {
            format: if self.mode == Mode::Shamir { 1 } else { 2 },
            naming_key: self.stores_key.then(|| *self.naming_key.as_bytes()),
            key_check: key_check(&self.naming_key),
            k: self.threshold.k() as u8,
            n: self.threshold.n() as u8,
            backends: self.backends.clone(),
        };
        let taken = std::mem::take(out);
        let encoded = match self.mode {
            Mode::Shamir => postcard::to_extend(&wire, taken),
            mode => postcard::to_extend(&(wire, mode.to_byte()), taken),
        };
        *out =
            encoded.map_err(|e| VaultError::SplitFailed(format!("keyring serialization: {e}")))?;
        Ok(())
    }

    /// Decodes a keyring payload; `external` is the configured naming key, if any. Only the
    /// canonical encoding is accepted, so what decodes re-encodes to the same bytes.
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` for a malformed payload; `INVALID_CONFIG` if the payload holds a
    /// naming key and `external` is given, holds none and `external` is not, or `external`
    /// fails the stored check value.
    pub fn decode(payload: &[u8], external: Option<&NamingKey>) -> Result<Self> {
        let bad = |m: &str| VaultError::ReconstructFailed(format!("keyring: {m}"));
        let (wire, rest): (KeyringWire, _) =
            postcard::take_from_bytes(payload).map_err(|e| bad(&e.to_string()))?;
        let mode = match (wire.format, rest) {
            (1, []) => Mode::Shamir,
            // Format 2 names a mode other than the default (which format 1 writes).
            (2, [b]) => match Mode::from_byte(*b) {
                Some(m) if m != Mode::Shamir => m,
                _ => return Err(bad("unknown storage mode")),
            },
            _ => return Err(bad("unsupported format")),
        };
        crate::canonical::check_len(&wire, payload.len() - rest.len()).map_err(|e| bad(&e))?;
        let threshold = Threshold::new(usize::from(wire.k), usize::from(wire.n))
            .map_err(|_| bad("invalid threshold"))?;
        let (naming_key, stores_key) = match (wire.naming_key, external) {
            (Some(k), None) => (NamingKey::from_bytes(k), true),
            (Some(_), Some(_)) => {
                return Err(VaultError::invalid_config(
                    "a naming key is configured, but this store keeps its own in the keyring",
                ));
            }
            (None, Some(k)) => (k.clone(), false),
            (None, None) => {
                return Err(VaultError::invalid_config(
                    "this store's naming key is supplied by configuration, and none is configured",
                ));
            }
        };
        if key_check(&naming_key) != wire.key_check {
            return Err(VaultError::invalid_config(
                "the configured naming key is not the one this store was created with",
            ));
        }
        Ok(Self { naming_key, threshold, backends: wire.backends, stores_key, mode })
    }

    /// Checks that a client configured for storage mode `mode` (`None`: any) may open this
    /// store.
    ///
    /// # Errors
    /// `INVALID_CONFIG` if the store is in another mode.
    pub fn check_mode(&self, mode: Option<Mode>) -> Result<()> {
        match mode {
            Some(m) if m != self.mode => Err(VaultError::invalid_config(format!(
                "the store was created in {} mode but the client is configured for {m} mode",
                self.mode
            ))),
            _ => Ok(()),
        }
    }

    /// Checks that a client configuration (its threshold and ordered backend ids) matches
    /// this keyring.
    ///
    /// # Errors
    /// `INVALID_CONFIG`, naming what differs.
    pub fn check_config(&self, threshold: Threshold, backends: &[String]) -> Result<()> {
        if self.threshold != threshold {
            return Err(VaultError::invalid_config(format!(
                "the store was created as {} but the client is configured as {threshold}",
                self.threshold
            )));
        }
        if self.backends != backends {
            return Err(VaultError::invalid_config(format!(
                "the store was created with backends [{}] (in that order) but the client is \
                 configured with [{}]",
                self.backends.join(", "),
                backends.join(", ")
            )));
        }
        Ok(())
    }
}
