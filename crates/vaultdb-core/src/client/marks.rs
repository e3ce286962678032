//! Marks and settled objects: the two small per-record objects that let a read find a
//! record's newest version without listing (docs/FORMAT.md section 17; the safety argument
//! is in docs/SECURITY.md, "One-round-trip reads").
//!
//! - The **mark** `<prefix>/m/<tag>` is overwritten by every write of the record (put or
//!   delete), in the same round trip as the write's share object: it names the version
//!   written (unique to the write) and when it was issued (the writer's clock), so any two
//!   writes leave different marks.
//! - The **settled object** `<prefix>/s/<tag>` is written by a *settler* (a read that had to
//!   list) only once the version is provably the newest: it certifies the mark it read on
//!   that backend (SHA-256 of its bytes) and carries that backend's share of the version
//!   inline (or the share object's name and size, for large shares).
//!
//! Both are authenticated with `mark_key`, derived from the naming key, so no backend can
//! forge them. Pure functions, no I/O: `fast.rs` reads and writes them.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::naming::{NameTag, NamingKey};
use crate::version::Version;

/// What the mark key is derived for.
const PURPOSE: &str = "marks";
const MARK_MAGIC: &[u8; 4] = b"VDBM";
const SETTLED_MAGIC: &[u8; 4] = b"VDBS";
const FORMAT: u8 = 1;
const MARK_LABEL: &[u8] = b"vaultdb/v1/mark\0";
const SETTLED_LABEL: &[u8] = b"vaultdb/v1/settled\0";
const MAC_LEN: usize = 32;

/// Bytes of a mark.
pub(crate) const MARK_LEN: usize = 4 + 1 + 1 + 16 + 8 + MAC_LEN;
/// Bytes of a settled object before what it stores.
const SETTLED_HEAD_LEN: usize = 4 + 1 + 1 + 16 + 32 + 1 + 4;
/// Shares up to this size are stored inline in settled objects (a read then takes one
/// round trip); larger ones are named (a read takes two).
pub(crate) const INLINE_MAX: usize = 16 * 1024;
/// The largest settled object a read accepts.
pub(crate) const SETTLED_MAX: usize = SETTLED_HEAD_LEN + INLINE_MAX + MAC_LEN;

/// What a write left: a version of the record (a record or a manifest), or a tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MarkKind {
    Data = 1,
    Tombstone = 2,
}

impl MarkKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(MarkKind::Data),
            2 => Some(MarkKind::Tombstone),
            _ => None,
        }
    }
}

/// A verified mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) kind: MarkKind,
    pub(crate) version: Version,
    /// The writer's clock when it issued the write, in microseconds since the epoch.
    pub(crate) issued_at: u64,
}

/// Where a settled object's share is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Nothing (a tombstone).
    Nothing,
    /// The share envelope itself.
    Inline(Bytes),
    /// The share object's name under the record's prefix, and its size.
    Named { name: String, size: u64 },
}

/// A verified settled object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) kind: MarkKind,
    pub(crate) version: Version,
    /// SHA-256 of the mark it certifies (as stored on the same backend).
    pub(crate) certifies: [u8; 32],
    pub(crate) stored: Stored,
}

/// SHA-256 of a mark's bytes, as a settled object certifies it.
pub(crate) fn digest(mark: &[u8]) -> [u8; 32] {
    Sha256::digest(mark).into()
}

/// The key that authenticates a store's marks and settled objects.
pub(crate) struct MarkKey(NamingKey);

impl MarkKey {
    pub(crate) fn new(naming: &NamingKey) -> Self {
        Self(naming.derive(PURPOSE))
    }

    fn mac(&self, label: &[u8], tag: NameTag, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(label);
        mac.update(&tag.0);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    fn checks(&self, label: &[u8], tag: NameTag, bytes: &[u8]) -> bool {
        if bytes.len() < MAC_LEN {
            return false;
        }
        let (body, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        self.mac(label, tag, body).ct_eq(mac).into()
    }

    /// The mark of a write of `tag` at `version`.
    pub(crate) fn mark(
        &self,
        tag: NameTag,
        kind: MarkKind,
        version: Version,
        issued_at: u64,
    ) -> Bytes {
        let mut b = BytesMut::with_capacity(MARK_LEN);
        b.put_slice(MARK_MAGIC);
        b.put_u8(FORMAT);
        b.put_u8(kind as u8);
        b.put_slice(&version.to_bytes());
        b.put_u64(issued_at);
        let mac = self.mac(MARK_LABEL, tag, &b);
        b.put_slice(&mac);
        b.freeze()
    }

    /// Parses and verifies a mark of `tag`; `None` for anything else.
    pub(crate) fn read_mark(&self, tag: NameTag, bytes: &[u8]) -> Option<Mark> {
        if bytes.len() != MARK_LEN
            || &bytes[..4] != MARK_MAGIC
            || bytes[4] != FORMAT
            || !self.checks(MARK_LABEL, tag, bytes)
        {
            return None;
        }
        Some(Mark {
            kind: MarkKind::from_byte(bytes[5])?,
            version: Version::from_bytes(bytes[6..22].try_into().ok()?),
            issued_at: u64::from_be_bytes(bytes[22..30].try_into().ok()?),
        })
    }

    /// The settled object of `tag`.
    pub(crate) fn settled(&self, tag: NameTag, s: &Settled) -> Bytes {
        let (form, payload): (u8, Vec<u8>) = match &s.stored {
            Stored::Nothing => (0, Vec::new()),
            Stored::Inline(b) => (1, b.to_vec()),
            Stored::Named { name, size } => {
                let mut p = name.as_bytes().to_vec();
                p.extend_from_slice(&size.to_be_bytes());
                (2, p)
            }
        };
        let mut b = BytesMut::with_capacity(SETTLED_HEAD_LEN + payload.len() + MAC_LEN);
        b.put_slice(SETTLED_MAGIC);
        b.put_u8(FORMAT);
        b.put_u8(s.kind as u8);
        b.put_slice(&s.version.to_bytes());
        b.put_slice(&s.certifies);
        b.put_u8(form);
        b.put_u32(payload.len() as u32);
        b.put_slice(&payload);
        let mac = self.mac(SETTLED_LABEL, tag, &b);
        b.put_slice(&mac);
        b.freeze()
    }

    /// Parses and verifies a settled object of `tag`; `None` for anything else.
    pub(crate) fn read_settled(&self, tag: NameTag, bytes: &Bytes) -> Option<Settled> {
        if bytes.len() < SETTLED_HEAD_LEN + MAC_LEN
            || &bytes[..4] != SETTLED_MAGIC
            || bytes[4] != FORMAT
        {
            return None;
        }
        let len = u32::from_be_bytes(bytes[55..59].try_into().ok()?) as usize;
        if bytes.len() != SETTLED_HEAD_LEN + len + MAC_LEN
            || !self.checks(SETTLED_LABEL, tag, bytes)
        {
            return None;
        }
        let payload = bytes.slice(SETTLED_HEAD_LEN..SETTLED_HEAD_LEN + len);
        let kind = MarkKind::from_byte(bytes[5])?;
        let stored = match (bytes[54], kind) {
            (0, MarkKind::Tombstone) if len == 0 => Stored::Nothing,
            (1, MarkKind::Data) => Stored::Inline(payload),
            (2, MarkKind::Data) if len > 8 => {
                let (name, size) = payload.split_at(len - 8);
                Stored::Named {
                    name: String::from_utf8(name.to_vec()).ok()?,
                    size: u64::from_be_bytes(size.try_into().ok()?),
                }
            }
            _ => return None,
        };
        Some(Settled {
            kind,
            version: Version::from_bytes(bytes[6..22].try_into().ok()?),
            certifies: bytes[22..54].try_into().ok()?,
            stored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MarkKey {
        MarkKey::new(&NamingKey::from_bytes([7; 32]))
    }

    fn v(m: u64) -> Version {
        Version::from_bytes([[0; 8], m.to_be_bytes()].concat().try_into().unwrap())
    }

    #[test]
    fn marks_round_trip_and_bind_tag_and_every_byte() {
        let (k, tag) = (key(), NameTag([1; 16]));
        let m = k.mark(tag, MarkKind::Data, v(5), 1234);
        assert_eq!(m.len(), MARK_LEN);
        assert_eq!(
            k.read_mark(tag, &m),
            Some(Mark { kind: MarkKind::Data, version: v(5), issued_at: 1234 })
        );
        assert_eq!(k.read_mark(NameTag([2; 16]), &m), None, "bound to its tag");
        for i in 0..m.len() {
            let mut bad = m.to_vec();
            bad[i] ^= 1;
            assert_eq!(k.read_mark(tag, &bad), None, "byte {i}");
        }
        let other = MarkKey::new(&NamingKey::from_bytes([8; 32]));
        assert_eq!(other.read_mark(tag, &m), None, "keyed");
    }

    #[test]
    fn settled_objects_round_trip_in_every_form_and_bind_every_byte() {
        let (k, tag) = (key(), NameTag([3; 16]));
        let forms = [
            Settled {
                kind: MarkKind::Data,
                version: v(1),
                certifies: digest(b"m"),
                stored: Stored::Inline(Bytes::from_static(b"share bytes")),
            },
            Settled {
                kind: MarkKind::Data,
                version: v(2),
                certifies: digest(b"n"),
                stored: Stored::Named { name: "x.y".to_owned(), size: 99 },
            },
            Settled {
                kind: MarkKind::Tombstone,
                version: v(3),
                certifies: digest(b"o"),
                stored: Stored::Nothing,
            },
        ];
        for s in forms {
            let b = k.settled(tag, &s);
            assert_eq!(k.read_settled(tag, &b).as_ref(), Some(&s));
            assert_eq!(k.read_settled(NameTag([4; 16]), &b), None);
            for i in 0..b.len() {
                let mut bad = b.to_vec();
                bad[i] ^= 0x40;
                assert_eq!(k.read_settled(tag, &Bytes::from(bad)), None, "byte {i}");
            }
            assert_eq!(k.read_settled(tag, &b.slice(..b.len() - 1)), None);
        }
    }

    #[test]
    fn the_worked_example_of_format_md_section_17() {
        // Naming key 11 x 32; `user-42`'s tag; the delete of section 14.
        let k = MarkKey::new(&NamingKey::from_bytes([0x11; 32]));
        let tag =
            NameTag(hex::decode("82a121ea2214eed746ba010519f58f44").unwrap().try_into().unwrap());
        let vt = Version::from_parts(0x0006_2d1a_2b3c_5000, 0x0f0e_0d0c_0b0a_0908);
        let mark = k.mark(tag, MarkKind::Tombstone, vt, vt.micros());
        assert_eq!(
            hex::encode(&mark),
            "5644424d010200062d1a2b3c50000f0e0d0c0b0a090800062d1a2b3c5000d0fd\
             be5f87993aea59fb682ea2d62393177922dbab6a5e3f3c45ad66710ec44e"
        );
        let settled = Settled {
            kind: MarkKind::Tombstone,
            version: vt,
            certifies: digest(&mark),
            stored: Stored::Nothing,
        };
        assert_eq!(
            hex::encode(k.settled(tag, &settled)),
            "56444253010200062d1a2b3c50000f0e0d0c0b0a0908196cb3fd02e092a791aa\
             d21adfbb11a298e7eda02275b7d1d2da73d1351102500000000000fe17b0e222\
             2b2d7618be1aec5a1ed41e2b412e065354041dff244032d09e475d"
        );
    }

    #[test]
    fn mark_known_answer() {
        // Recomputed from the layout in docs/FORMAT.md section 17 with HMAC-SHA256 directly.
        let (k, tag) = (key(), NameTag([1; 16]));
        let m = k.mark(tag, MarkKind::Tombstone, v(5), 1234);
        let derived = NamingKey::from_bytes([7; 32]).derive("marks");
        let mut body = b"VDBM\x01\x02".to_vec();
        body.extend_from_slice(&v(5).to_bytes());
        body.extend_from_slice(&1234u64.to_be_bytes());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(derived.as_bytes()).unwrap();
        mac.update(b"vaultdb/v1/mark\0");
        mac.update(&[1; 16]);
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(&m[..], &body[..]);
    }
}
