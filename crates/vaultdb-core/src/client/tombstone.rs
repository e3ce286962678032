//! Tombstones: authenticated proof that a record was deleted (docs/FORMAT.md section 14).
//!
//! A delete at version `vt` writes, create-only, on every backend, the object
//! `<prefix>/r/<tag>/<vt>.t<mac16>`, an envelope of kind [`Kind::Tombstone`] whose body is
//!
//! ```text
//! mac = HMAC-SHA256(tombstone_key, "vaultdb/v1/tombstone" | 00 | tag[16] | vt[16] | K | N)
//! ```
//!
//! and whose name carries `mac[..16]` (base32). `tombstone_key` is derived from the store's
//! naming key ([`NamingKey::derive`]), which no set of fewer than K backends can learn, so
//! no backend can forge a tombstone, and one valid tombstone proves a delete: readers, `list`
//! and repair treat a record whose newest valid tombstone is newer than its newest complete
//! version as deleted, whatever backend they saw it on. The MAC in the name makes that check
//! possible from a listing alone, without reading the object.
//!
//! Pure functions, no I/O: the layers above decide where tombstones are written and read.

use std::collections::BTreeMap;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::backend::Key;
use crate::envelope::{self, Header, Kind};
use crate::naming::{KeySpace, NameTag, NamingKey, TOMBSTONE_NAME_MAC_LEN};
use crate::version::Version;
use crate::xorida::Threshold;

/// What the tombstone key is derived for.
const PURPOSE: &str = "tombstones";

const LABEL: &[u8] = b"vaultdb/v1/tombstone\0";

/// The key that authenticates a store's tombstones.
pub(crate) struct TombstoneKey(NamingKey);

impl TombstoneKey {
    /// The tombstone key of the store whose naming key is `naming`.
    pub(crate) fn new(naming: &NamingKey) -> Self {
        Self(naming.derive(PURPOSE))
    }

    /// The full MAC of a tombstone of `tag` at `version` in a store of `threshold`.
    pub(crate) fn mac(&self, tag: NameTag, version: Version, threshold: Threshold) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(LABEL);
        mac.update(&tag.0);
        mac.update(&version.to_bytes());
        mac.update(&[threshold.k() as u8, threshold.n() as u8]);
        mac.finalize().into_bytes().into()
    }

    /// The object key of that tombstone.
    pub(crate) fn key(
        &self,
        keyspace: &KeySpace,
        tag: NameTag,
        version: Version,
        threshold: Threshold,
    ) -> Key {
        keyspace.tombstone_key(tag, version, &name_mac(&self.mac(tag, version, threshold)))
    }

    /// True if a listed tombstone's name MAC is the one this store writes (constant time).
    pub(crate) fn verifies(
        &self,
        tag: NameTag,
        version: Version,
        threshold: Threshold,
        listed: &[u8; TOMBSTONE_NAME_MAC_LEN],
    ) -> bool {
        name_mac(&self.mac(tag, version, threshold)).ct_eq(listed).into()
    }

    /// The envelope stored at backend position `x` (1-based).
    pub(crate) fn envelope(
        &self,
        tag: NameTag,
        version: Version,
        threshold: Threshold,
        x: u8,
    ) -> Bytes {
        let mac = self.mac(tag, version, threshold);
        let header = Header { kind: Kind::Tombstone, threshold, x, version, tag, secret_len: 32 };
        Bytes::from(envelope::encode(&header, &mac))
    }
}

/// The tombstones one record's listing holds, sorted out.
#[derive(Debug, Default)]
pub(crate) struct Deletes {
    /// The valid tombstones: version, and the backends that hold one.
    pub(crate) valid: BTreeMap<Version, Vec<usize>>,
    /// Backends that listed a tombstone whose MAC does not verify (a forgery, or another
    /// store's): bad backends, to be named.
    pub(crate) forged: Vec<usize>,
}

impl Deletes {
    /// The newest valid tombstone's version.
    pub(crate) fn newest(&self) -> Option<Version> {
        self.valid.keys().next_back().copied()
    }

    /// True if a valid tombstone is newer than `version`: that version was deleted.
    pub(crate) fn deletes(&self, version: Version) -> bool {
        self.newest().is_some_and(|t| t > version)
    }
}

impl TombstoneKey {
    /// Sorts listed tombstones `(backend, version, name MAC)` of record `tag` into valid
    /// ones and forged ones.
    pub(crate) fn sort<'a>(
        &self,
        tag: NameTag,
        threshold: Threshold,
        listed: impl IntoIterator<Item = (usize, Version, &'a [u8; TOMBSTONE_NAME_MAC_LEN])>,
    ) -> Deletes {
        let mut d = Deletes::default();
        for (idx, version, mac) in listed {
            if self.verifies(tag, version, threshold, mac) {
                let holders = d.valid.entry(version).or_default();
                if !holders.contains(&idx) {
                    holders.push(idx);
                }
            } else if !d.forged.contains(&idx) {
                d.forged.push(idx);
            }
        }
        d
    }
}

fn name_mac(mac: &[u8; 32]) -> [u8; TOMBSTONE_NAME_MAC_LEN] {
    let mut m = [0u8; TOMBSTONE_NAME_MAC_LEN];
    m.copy_from_slice(&mac[..TOMBSTONE_NAME_MAC_LEN]);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::ParsedKey;

    /// The example store of docs/FORMAT.md: its naming key, tombstone key, threshold, key
    /// space, and the tag of record `user-42`.
    fn example() -> (NamingKey, TombstoneKey, Threshold, KeySpace, NameTag) {
        let naming = NamingKey::from_bytes([0x11; 32]);
        let tk = TombstoneKey::new(&naming);
        let tag = naming.tag("user-42");
        (naming, tk, Threshold::new(2, 3).unwrap(), KeySpace::new("vaultdb").unwrap(), tag)
    }

    #[test]
    fn tombstones_are_keyed_and_bound_to_tag_version_and_threshold() {
        let (naming, tk, t, ks, tag) = example();
        let v = Version::from_bytes([7; 16]);
        let key = tk.key(&ks, tag, v, t);
        let Some(ParsedKey::Tombstone { tag: pt, version: pv, mac }) = ks.parse(key.as_str())
        else {
            panic!("{key} parses as a tombstone");
        };
        assert_eq!((pt, pv), (tag, v));
        assert!(tk.verifies(tag, v, t, &mac));
        // Another record, version, threshold or store key: rejected.
        assert!(!tk.verifies(naming.tag("user-43"), v, t, &mac));
        assert!(!tk.verifies(tag, Version::from_bytes([8; 16]), t, &mac));
        assert!(!tk.verifies(tag, v, Threshold::new(2, 4).unwrap(), &mac));
        let other = TombstoneKey::new(&NamingKey::from_bytes([0x12; 32]));
        assert!(!other.verifies(tag, v, t, &mac));
        // Not the naming key's own tags: a derived key.
        assert_ne!(tk.0.as_bytes(), naming.as_bytes());
        // The envelope decodes, with the full MAC as its body.
        let env = tk.envelope(tag, v, t, 2);
        let d = envelope::decode(&env).unwrap();
        assert_eq!(d.header.kind, Kind::Tombstone);
        assert_eq!(d.share, &tk.mac(tag, v, t)[..]);
    }

    /// Known answer: the example of docs/FORMAT.md section 14, computed there from the
    /// formulas (tests/format_doc.rs checks the document's values against HMAC directly).
    #[test]
    fn tombstone_known_answer() {
        let (_, tk, t, ks, tag) = example();
        let vt = Version::from_parts(0x0006_2d1a_2b3c_5000, 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(
            hex::encode(tk.mac(tag, vt, t)),
            "1f2aef926469300bcce93abab1ce2fa42c9d0dca2c579c9dc0f094f16d4b1c4c"
        );
        assert_eq!(
            tk.key(&ks, tag, vt, t).as_str(),
            "vaultdb/r/gagi3qh22jndehlq042hjtcf8g/0032q6hb7h8003oe1k60m2g910.t3slev4j4d4o0nj797atb3jhfkg"
        );
        assert_eq!(
            hex::encode(tk.envelope(tag, vt, t, 2)),
            "56444253010502030200062d1a2b3c50000f0e0d0c0b0a090882a121ea2214eed746ba010519f58f44\
             000000201f2aef926469300bcce93abab1ce2fa42c9d0dca2c579c9dc0f094f16d4b1c4c10eb7b4f"
        );
    }
}
