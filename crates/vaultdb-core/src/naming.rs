//! Object names that reveal nothing about record ids.
//!
//! A record's objects live under its *name tag*, a keyed hash of its id:
//! `NameTag = HMAC-SHA256(naming_key, "vaultdb/v1/name\0" | id)[..16]`. Without the naming
//! key (itself split across the backends, see the keyring) a backend cannot test guesses.
//!
//! Each share object's key also carries that backend's share of the padded id, so `list()`
//! can rebuild ids from K listings alone, with no GETs, and check each against its tag:
//!
//! ```text
//! <prefix>/r/<name tag>/<version>.<id share>      a record share (or a segmented record's
//!                                                  manifest share)
//! <prefix>/r/<name tag>/<version>-<index>         a share of segment <index> (8 lowercase
//!                                                  hex digits) of a segmented record
//! <prefix>/keyring                                 this backend's keyring share
//! ```
//!
//! Tags, versions and id shares are written in lowercase base32hex without padding
//! (RFC 4648 section 7), whose text order is byte order.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::backend::{Key, KeyPrefix};
use crate::error::{Result, VaultError};
use crate::rng::RandomSource;
use crate::version::{VERSION_TEXT_LEN, Version};

// Re-exported: object names are written in base32hex, and callers that parse them (the
// fuzz targets, other implementations) find the encoding beside the key layout.
pub use crate::base32::{BASE32, decode_base32};

/// Longest record id, in bytes of UTF-8.
pub const MAX_ID_LEN: usize = 255;

/// Length of a name tag in bytes.
pub const NAME_TAG_LEN: usize = 16;

const NAME_LABEL: &[u8] = b"vaultdb/v1/name\0";

const DERIVE_LABEL: &[u8] = b"vaultdb/v1/derive\0";

/// Checks a record id: 1 to [`MAX_ID_LEN`] bytes of UTF-8 without control characters.
///
/// # Errors
/// `INVALID_INPUT` naming the rule broken (not the id).
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(VaultError::invalid_input("record id is empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(VaultError::invalid_input(format!(
            "record id is {} bytes; the limit is {MAX_ID_LEN}",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(VaultError::invalid_input("record id contains a control character"));
    }
    Ok(())
}

/// The 256-bit key that turns ids into name tags.
#[derive(Clone)]
pub struct NamingKey(Zeroizing<[u8; 32]>);

impl NamingKey {
    /// A key from its bytes (e.g. from a KMS).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        Self(k)
    }

    /// A key derived from this one for `purpose`:
    /// `HMAC-SHA256(key, "vaultdb/v1/derive" | 00 | purpose)`. Derived keys for different
    /// purposes are independent of each other and of the name tags.
    pub fn derive(&self, purpose: &str) -> NamingKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC accepts any key length");
        mac.update(DERIVE_LABEL);
        mac.update(purpose.as_bytes());
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&mac.finalize().into_bytes());
        Self(k)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The name tag of `id`.
    pub fn tag(&self, id: &str) -> NameTag {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC accepts any key length");
        mac.update(NAME_LABEL);
        mac.update(id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; NAME_TAG_LEN];
        t.copy_from_slice(&full[..NAME_TAG_LEN]);
        NameTag(t)
    }
}

impl fmt::Debug for NamingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamingKey(<redacted>)")
    }
}

impl PartialEq for NamingKey {
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

/// A record's name tag: what backends, logs and the audit trail see instead of its id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameTag(pub [u8; NAME_TAG_LEN]);

/// Length of a name tag's text form.
pub const NAME_TAG_TEXT_LEN: usize = 26;

impl NameTag {
    /// The text form (26 characters of lowercase base32hex).
    pub fn to_text(self) -> String {
        BASE32.encode(&self.0)
    }

    /// Parses [`NameTag::to_text`].
    pub fn from_text(s: &str) -> Option<Self> {
        if s.len() != NAME_TAG_TEXT_LEN {
            return None;
        }
        Some(Self(decode_base32(s)?.try_into().ok()?))
    }

    /// Constant-time equality (for checking a rebuilt id against its tag).
    pub fn ct_eq(&self, other: &NameTag) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

crate::base32::base32_fmt!(NameTag);

/// The padded id's length for an id of `len` bytes: one length byte plus the id, rounded up
/// to 32, 64, 128 or 256 bytes. Object keys therefore reveal only this class.
pub fn padded_id_len(len: usize) -> usize {
    (len + 1).next_power_of_two().max(32)
}

/// `[len as u8] | id | zeros`, [`padded_id_len`] bytes.
///
/// # Errors
/// As [`validate_id`].
pub fn pad_id(id: &str) -> Result<Zeroizing<Vec<u8>>> {
    validate_id(id)?;
    let mut v = Zeroizing::new(vec![0u8; padded_id_len(id.len())]);
    v[0] = id.len() as u8;
    v[1..=id.len()].copy_from_slice(id.as_bytes());
    Ok(v)
}

/// Inverts [`pad_id`]; `None` unless the input is exactly a padded valid id.
pub fn unpad_id(padded: &[u8]) -> Option<String> {
    let (&len, rest) = padded.split_first()?;
    let len = usize::from(len);
    if padded.len() != padded_id_len(len) || rest[len..].iter().any(|&b| b != 0) {
        return None;
    }
    let id = std::str::from_utf8(&rest[..len]).ok()?;
    validate_id(id).ok()?;
    Some(id.to_owned())
}

/// What a key in VaultDB's namespace names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedKey {
    /// One backend's share of one version of a record.
    Share {
        /// The record's name tag.
        tag: NameTag,
        /// The version.
        version: Version,
        /// This backend's share of the padded id.
        id_share: Vec<u8>,
    },
    /// One backend's share of one segment of a segmented record.
    Segment {
        /// The record's name tag.
        tag: NameTag,
        /// The version.
        version: Version,
        /// The segment's index (0-based).
        index: u32,
    },
    /// A tombstone: record `tag` was deleted at `version` (docs/FORMAT.md section 14). `mac`
    /// authenticates it: the first 16 bytes of its HMAC under the store's tombstone key,
    /// which only clients of the store hold.
    Tombstone {
        /// The record's name tag.
        tag: NameTag,
        /// The delete's version.
        version: Version,
        /// The truncated MAC carried in the name.
        mac: [u8; TOMBSTONE_NAME_MAC_LEN],
    },
    /// The backend's keyring share.
    Keyring,
}

impl ParsedKey {
    /// The record the key belongs to; `None` for the keyring share.
    pub fn tag(&self) -> Option<NameTag> {
        match self {
            Self::Share { tag, .. } | Self::Segment { tag, .. } | Self::Tombstone { tag, .. } => {
                Some(*tag)
            }
            Self::Keyring => None,
        }
    }
}

/// Bytes of a tombstone's MAC carried in its object name.
pub const TOMBSTONE_NAME_MAC_LEN: usize = 16;

/// Characters after the `.` of a tombstone's name: `t` and the base32 MAC.
const TOMBSTONE_SUFFIX_LEN: usize = 1 + 26;

/// The key layout under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpace {
    /// Empty, or the prefix followed by `/`.
    root: String,
}

impl KeySpace {
    /// The layout under `prefix` (`""` for the bucket root). The prefix must be valid key
    /// segments: printable ASCII, no empty, `.` or `..` segment, at most 128 bytes.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for a bad prefix.
    pub fn new(prefix: &str) -> Result<Self> {
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() {
            return Ok(Self { root: String::new() });
        }
        if prefix.len() > 128 || crate::backend::validate_key(prefix).is_err() {
            return Err(VaultError::invalid_config(format!("invalid key prefix {prefix:?}")));
        }
        Ok(Self { root: format!("{prefix}/") })
    }

    // The keys and prefixes below are valid by construction: a validated root of at most
    // 129 bytes, then segments of base32hex and hex digits (at most 26 + 1 + 26 + 1 + 410
    // bytes for a share key), well below MAX_KEY_LEN.

    /// The prefix every object of the store has (empty for the bucket root).
    pub fn root_prefix(&self) -> KeyPrefix {
        KeyPrefix::from_valid(self.root.clone())
    }

    /// The prefix all record shares share.
    pub fn records_prefix(&self) -> KeyPrefix {
        KeyPrefix::from_valid(format!("{}r/", self.root))
    }

    /// The prefix of one record's shares.
    pub fn record_prefix(&self, tag: NameTag) -> KeyPrefix {
        KeyPrefix::from_valid(format!("{}r/{}/", self.root, tag.to_text()))
    }

    /// A key after every key of record `tag` and before the next tag's: where a listing
    /// resumes after that record (`r/<tag>/~`; `~` sorts after every character of a share
    /// name).
    pub fn after_tag(&self, tag: NameTag) -> Key {
        Key::from_valid(format!("{}r/{}/~", self.root, tag.to_text()))
    }

    /// The key of one share.
    pub fn share_key(&self, tag: NameTag, version: Version, id_share: &[u8]) -> Key {
        Key::from_valid(format!(
            "{}r/{}/{}.{}",
            self.root,
            tag.to_text(),
            version.to_text(),
            BASE32.encode(id_share)
        ))
    }

    /// The key of one segment's share. Segment keys carry no id share: the manifest share
    /// beside them does.
    pub fn segment_key(&self, tag: NameTag, version: Version, index: u32) -> Key {
        Key::from_valid(format!(
            "{}r/{}/{}-{index:08x}",
            self.root,
            tag.to_text(),
            version.to_text()
        ))
    }

    /// The key of a tombstone of record `tag` deleted at `version`, carrying the first
    /// [`TOMBSTONE_NAME_MAC_LEN`] bytes of its MAC: `<prefix>/r/<tag>/<version>.t<mac>`.
    pub fn tombstone_key(
        &self,
        tag: NameTag,
        version: Version,
        mac: &[u8; TOMBSTONE_NAME_MAC_LEN],
    ) -> Key {
        Key::from_valid(format!(
            "{}r/{}/{}.t{}",
            self.root,
            tag.to_text(),
            version.to_text(),
            BASE32.encode(mac)
        ))
    }

    /// The key of a record's mark, which every write of it overwrites (docs/FORMAT.md
    /// section 17): `<prefix>/m/<tag>`.
    pub fn mark_key(&self, tag: NameTag) -> Key {
        Key::from_valid(format!("{}m/{}", self.root, tag.to_text()))
    }

    /// The key of a record's settled object (docs/FORMAT.md section 17):
    /// `<prefix>/s/<tag>`.
    pub fn settled_key(&self, tag: NameTag) -> Key {
        Key::from_valid(format!("{}s/{}", self.root, tag.to_text()))
    }

    /// The key `health` writes and removes to check that a backend accepts writes. It
    /// holds nothing of the store.
    pub fn probe_key(&self) -> Key {
        Key::from_valid(format!("{}probe", self.root))
    }

    /// The key of a backend's copy of the moved notice a re-share leaves in the store it
    /// leaves (docs/FORMAT.md section 18): `<prefix>/moved`.
    pub fn moved_key(&self) -> Key {
        Key::from_valid(format!("{}moved", self.root))
    }

    /// The key of a backend's copy of the migration state a re-share keeps in the store it
    /// fills (docs/FORMAT.md section 18): `<prefix>/migration`.
    pub fn migration_key(&self) -> Key {
        Key::from_valid(format!("{}migration", self.root))
    }

    /// The key of a backend's keyring share.
    pub fn keyring_key(&self) -> Key {
        Key::from_valid(format!("{}keyring", self.root))
    }

    /// Parses a key under this prefix; `None` for anything that is not exactly a key
    /// [`KeySpace::share_key`] or [`KeySpace::keyring_key`] would produce.
    pub fn parse(&self, key: &str) -> Option<ParsedKey> {
        let rest = key.strip_prefix(self.root.as_str())?;
        if rest == "keyring" {
            return Some(ParsedKey::Keyring);
        }
        let rest = rest.strip_prefix("r/")?;
        let (tag, rest) = rest.split_once('/')?;
        if let Some((version, index)) = rest.split_once('-') {
            if version.len() != VERSION_TEXT_LEN
                || index.len() != 8
                || !index.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return None;
            }
            return Some(ParsedKey::Segment {
                tag: NameTag::from_text(tag)?,
                version: Version::from_text(version)?,
                index: u32::from_str_radix(index, 16).ok()?,
            });
        }
        let (version, id_share) = rest.split_once('.')?;
        if version.len() != VERSION_TEXT_LEN {
            return None;
        }
        if id_share.len() == TOMBSTONE_SUFFIX_LEN
            && let Some(mac) = id_share.strip_prefix('t')
        {
            // A tombstone: `t` and 26 base32 characters. Told apart from an id share by its
            // length alone (an id share's text is 52, 103, 205 or 410 characters, and may
            // well start with `t`, a base32hex digit).
            return Some(ParsedKey::Tombstone {
                tag: NameTag::from_text(tag)?,
                version: Version::from_text(version)?,
                mac: decode_base32(mac)?.try_into().ok()?,
            });
        }
        let id_share = decode_base32(id_share)?;
        if !matches!(id_share.len(), 32 | 64 | 128 | 256) {
            return None;
        }
        Some(ParsedKey::Share {
            tag: NameTag::from_text(tag)?,
            version: Version::from_text(version)?,
            id_share,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CsRng;

    #[test]
    fn name_tags_are_keyed_hmac() {
        let key = NamingKey::from_bytes([0x0b; 32]);
        let tag = key.tag("user-42");
        // HMAC-SHA256(0x0b*32, "vaultdb/v1/name\0user-42") truncated, computed directly.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"vaultdb/v1/name\0user-42");
        assert_eq!(tag.0[..], mac.finalize().into_bytes()[..16]);
        assert_ne!(key.tag("user-43"), tag);
        assert_ne!(NamingKey::from_bytes([0x0c; 32]).tag("user-42"), tag);
        assert_eq!(NameTag::from_text(&tag.to_text()), Some(tag));
        assert_eq!(format!("{key:?}"), "NamingKey(<redacted>)");
    }

    #[test]
    fn ids_pad_to_classes() {
        for (len, padded) in [(1, 32), (31, 32), (32, 64), (255, 256)] {
            assert_eq!(padded_id_len(len), padded, "{len}");
        }
        for id in ["a", "user-42", "alice@example.com", &"x".repeat(255), "\u{1F600}é"] {
            let p = pad_id(id).unwrap();
            assert_eq!(unpad_id(&p).as_deref(), Some(id));
        }
        assert!(pad_id("").is_err());
        assert!(pad_id(&"x".repeat(256)).is_err());
        assert!(pad_id("a\nb").is_err());
        let mut p = pad_id("abc").unwrap();
        p[10] = 1;
        assert_eq!(unpad_id(&p), None, "non-zero padding");
        assert_eq!(unpad_id(&[3, b'a']), None, "short");
        assert_eq!(unpad_id(&[]), None);
        let mut bad_utf8 = vec![0u8; 32];
        bad_utf8[0] = 1;
        bad_utf8[1] = 0xff;
        assert_eq!(unpad_id(&bad_utf8), None);
    }

    #[test]
    fn keys_round_trip_and_reject_foreign_names() {
        let ks = KeySpace::new("vdb").unwrap();
        let mut rng = CsRng::from_seed([9; 32]);
        let tag = NamingKey::generate(&mut rng).tag("x");
        let version = crate::version::Clock::new().next_version(&mut rng);
        let share = vec![7u8; 64];
        let key = ks.share_key(tag, version, &share);
        assert!(crate::backend::validate_key(key.as_str()).is_ok());
        assert!(key.starts_with(&ks.record_prefix(tag)));
        assert!(key.starts_with(&ks.records_prefix()));
        assert_eq!(
            ks.parse(key.as_str()),
            Some(ParsedKey::Share { tag, version, id_share: share })
        );
        assert_eq!(ks.parse("vdb/keyring"), Some(ParsedKey::Keyring));
        let seg = ks.segment_key(tag, version, 0x1234_abcd);
        assert!(crate::backend::validate_key(seg.as_str()).is_ok());
        assert!(seg.starts_with(&ks.record_prefix(tag)));
        assert_eq!(
            ks.parse(seg.as_str()),
            Some(ParsedKey::Segment { tag, version, index: 0x1234_abcd })
        );
        for bad in [
            "vdb/keyring2",
            "other/r/x",
            "vdb/r/",
            &format!("vdb/r/{}/{}", tag.to_text(), version.to_text()),
            &format!("vdb/r/{}/{}.{}", tag.to_text(), version.to_text(), "00"),
            &format!("vdb/r/{}/{}-{}", tag.to_text(), version.to_text(), "0000001"),
            &format!("vdb/r/{}/{}-{}", tag.to_text(), version.to_text(), "0000000A"),
            &format!("vdb/r/{}/{}-{}", tag.to_text(), version.to_text(), "+0000001"),
            &format!("vdb/r/{}/{}-{}", tag.to_text(), "0", "00000001"),
            &format!("vdb/r/{}x/{}.{}", tag.to_text(), version.to_text(), BASE32.encode(&[0; 32])),
        ] {
            assert_eq!(ks.parse(bad), None, "{bad}");
        }
        // An id share whose text starts with `t` (a base32hex digit) is an id share, not a
        // tombstone: only the length tells them apart.
        let mut t_share = vec![0u8; 32];
        t_share[0] = 0xe8; // base32hex "t..."
        let t_key = ks.share_key(tag, version, &t_share);
        assert!(t_key.as_str().contains(".t"), "{t_key}");
        assert_eq!(
            ks.parse(t_key.as_str()),
            Some(ParsedKey::Share { tag, version, id_share: t_share.clone() })
        );
        let root = KeySpace::new("").unwrap();
        assert_eq!(root.keyring_key(), "keyring");
        assert!(KeySpace::new("a/../b").is_err());
        assert!(KeySpace::new("a b").is_err());
    }
}
