//! The two notices a re-share leaves (docs/FORMAT.md section 18): pure encoding and
//! verification, no I/O (`gate.rs` reads them, `reshare.rs` writes them).
//!
//! - The **moved notice** `<prefix>/moved`, in the store being left: "this store has moved",
//!   with a description of the new configuration (no secrets). Clients of the old
//!   configuration that see it refuse every operation.
//! - The **migration state** `<prefix>/migration`, in the store being filled: the phase of the
//!   re-share, the *floor* (the newest version of the old store, which every write to the
//!   new store must exceed), the copy's progress cursor and counters.
//!
//! Both are one object per backend, overwritten, authenticated with a key derived from the
//! naming key of the store that holds them (`derive("reshare")`), so no set of fewer than K
//! backends can forge one.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::naming::{NameTag, NamingKey};
use crate::version::Version;

/// What the notice key is derived for.
const PURPOSE: &str = "reshare";
const MOVED_MAGIC: &[u8; 4] = b"VDBF";
const MIGRATION_MAGIC: &[u8; 4] = b"VDBX";
const FORMAT: u8 = 1;
const MOVED_LABEL: &[u8] = b"vaultdb/v1/moved\0";
const MIGRATION_LABEL: &[u8] = b"vaultdb/v1/migration\0";
const MAC_LEN: usize = 32;
/// The longest description a notice carries (bytes of UTF-8).
pub(crate) const MAX_DESCRIPTION: usize = 1024;
/// The longest notice a reader fetches.
pub(crate) const NOTICE_MAX: u64 = (65 + MAX_DESCRIPTION + MAC_LEN) as u64;

/// The phase of a re-share, as the new store's migration state records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResharePhase {
    /// The old store is fenced; clients of the new store wait (no floor yet).
    Fencing = 1,
    /// Records are being copied; clients of the new store write above the floor and read
    /// through to the old store.
    Copying = 2,
    /// Every record is in the new store; it stands alone.
    Done = 3,
}

impl ResharePhase {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Fencing),
            2 => Some(Self::Copying),
            3 => Some(Self::Done),
            _ => None,
        }
    }
}

/// Where the copy has got to: the namespace and the old store's name tag of the last
/// record copied (records are copied in name-tag order, the system namespace first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cursor {
    /// Nothing copied yet.
    Start,
    /// Up to this tag of the system namespace.
    System(NameTag),
    /// The system namespace, then the records up to this tag.
    Records(NameTag),
}

/// A verified migration state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Migration {
    pub(crate) phase: ResharePhase,
    /// Every version of the old store is older than this (zero while fencing).
    pub(crate) floor: Version,
    pub(crate) cursor: Cursor,
    pub(crate) copied: u64,
    pub(crate) skipped: u64,
    /// The writer's wall clock, microseconds since the epoch.
    pub(crate) at: u64,
    /// The old configuration, in words.
    pub(crate) from: String,
}

/// A verified moved notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    /// The writer's wall clock, microseconds since the epoch.
    pub(crate) at: u64,
    /// The new configuration, in words.
    pub(crate) to: String,
}

/// The key that authenticates a store's notices.
#[derive(Clone)]
pub(crate) struct NoticeKey(NamingKey);

impl NoticeKey {
    pub(crate) fn new(naming: &NamingKey) -> Self {
        Self(naming.derive(PURPOSE))
    }

    fn mac(&self, label: &[u8], body: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_bytes())
            .expect("HMAC takes any key length");
        m.update(label);
        m.update(body);
        m.finalize().into_bytes().into()
    }

    fn seal(&self, label: &[u8], body: BytesMut) -> Bytes {
        let mac = self.mac(label, &body);
        let mut out = body;
        out.put_slice(&mac);
        out.freeze()
    }

    /// The body of a notice whose MAC verifies, without the MAC.
    fn open<'a>(&self, label: &[u8], magic: &[u8; 4], bytes: &'a [u8]) -> Option<&'a [u8]> {
        let split = bytes.len().checked_sub(MAC_LEN)?;
        let (body, mac) = bytes.split_at(split);
        if body.len() < 5 || &body[..4] != magic || body[4] != FORMAT {
            return None;
        }
        bool::from(self.mac(label, body).ct_eq(mac)).then_some(body)
    }

    /// Encodes a moved notice.
    pub(crate) fn moved(&self, notice: &Moved) -> Bytes {
        let to = clip(&notice.to);
        let mut b = begin(MOVED_MAGIC, 15 + to.len());
        b.put_u64(notice.at);
        put_text(&mut b, to);
        self.seal(MOVED_LABEL, b)
    }

    /// Verifies and decodes a moved notice; `None` if it does not verify or is malformed.
    pub(crate) fn open_moved(&self, bytes: &[u8]) -> Option<Moved> {
        let body = self.open(MOVED_LABEL, MOVED_MAGIC, bytes)?;
        let at = u64::from_be_bytes(body.get(5..13)?.try_into().ok()?);
        let len = usize::from(u16::from_be_bytes(body.get(13..15)?.try_into().ok()?));
        let to = body.get(15..)?;
        if to.len() != len {
            return None;
        }
        Some(Moved { at, to: String::from_utf8(to.to_vec()).ok()? })
    }

    /// Encodes a migration state.
    pub(crate) fn migration(&self, m: &Migration) -> Bytes {
        let from = clip(&m.from);
        let mut b = begin(MIGRATION_MAGIC, 65 + from.len());
        b.put_u8(m.phase as u8);
        b.put_slice(&m.floor.to_bytes());
        let (ns, tag) = match m.cursor {
            Cursor::Start => (0, [0; 16]),
            Cursor::System(t) => (1, t.0),
            Cursor::Records(t) => (2, t.0),
        };
        b.put_u8(ns);
        b.put_slice(&tag);
        b.put_u64(m.copied);
        b.put_u64(m.skipped);
        b.put_u64(m.at);
        put_text(&mut b, from);
        self.seal(MIGRATION_LABEL, b)
    }

    /// Verifies and decodes a migration state; `None` if it does not verify or is malformed.
    pub(crate) fn open_migration(&self, bytes: &[u8]) -> Option<Migration> {
        let body = self.open(MIGRATION_LABEL, MIGRATION_MAGIC, bytes)?;
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?))
        };
        let phase = ResharePhase::from_byte(*body.get(5)?)?;
        let floor = Version::from_bytes(body.get(6..22)?.try_into().ok()?);
        let tag = NameTag(body.get(23..39)?.try_into().ok()?);
        let cursor = match body.get(22)? {
            0 if tag.0 == [0; 16] => Cursor::Start,
            1 => Cursor::System(tag),
            2 => Cursor::Records(tag),
            _ => return None,
        };
        let len = usize::from(u16::from_be_bytes(body.get(63..65)?.try_into().ok()?));
        let from = body.get(65..)?;
        if from.len() != len {
            return None;
        }
        Some(Migration {
            phase,
            floor,
            cursor,
            copied: u64_at(39)?,
            skipped: u64_at(47)?,
            at: u64_at(55)?,
            from: String::from_utf8(from.to_vec()).ok()?,
        })
    }
}

/// `s` cut to at most [`MAX_DESCRIPTION`] bytes, at a character boundary.
pub(crate) fn clip(s: &str) -> &str {
    let mut end = s.len().min(MAX_DESCRIPTION);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A notice's buffer with room for `len` bytes and its MAC, its magic and format written.
fn begin(magic: &[u8], len: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(len + MAC_LEN);
    b.put_slice(magic);
    b.put_u8(FORMAT);
    b
}

/// Appends `text` with its length (u16, big-endian) first.
fn put_text(b: &mut BytesMut, text: &str) {
    b.put_u16(text.len() as u16);
    b.put_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> NoticeKey {
        NoticeKey::new(&NamingKey::from_bytes([b; 32]))
    }

    #[test]
    fn notices_round_trip_and_reject_tampering() {
        let k = key(0x11);
        let moved = Moved { at: 42, to: "3-of-5 shamir".to_owned() };
        let bytes = k.moved(&moved);
        assert_eq!(bytes.len(), 15 + 13 + 32);
        assert_eq!(k.open_moved(&bytes), Some(moved));
        assert_eq!(key(0x12).open_moved(&bytes), None, "another store's key");
        let mut bad = bytes.to_vec();
        bad[6] ^= 1;
        assert_eq!(k.open_moved(&bad), None);

        let m = Migration {
            phase: ResharePhase::Copying,
            floor: Version::from_parts(7, 9),
            cursor: Cursor::Records(NameTag([3; 16])),
            copied: 5,
            skipped: 1,
            at: 99,
            from: "2-of-3".to_owned(),
        };
        let bytes = k.migration(&m);
        assert_eq!(bytes.len(), 65 + 6 + 32);
        assert_eq!(k.open_migration(&bytes), Some(m));
        // A moved notice is not a migration state, whatever the key.
        assert_eq!(k.open_migration(&k.moved(&Moved { at: 1, to: String::new() })), None);
        for cut in [0, 10, bytes.len() - 1] {
            assert_eq!(k.open_migration(&bytes[..cut]), None);
        }
    }

    /// The hex block after `name:` in docs/FORMAT.md section 18.
    fn doc_hex(name: &str) -> Vec<u8> {
        let doc = include_str!("../../../../docs/FORMAT.md");
        let section = &doc[doc.find("## 18.").expect("section 18")..];
        let at = section.find(&format!("\n{name}:")).expect(name) + name.len() + 2;
        let hex: String = section[at..]
            .lines()
            .skip_while(|l| l.trim().is_empty())
            .take_while(|l| !l.trim().is_empty() && !l.contains(':') && !l.starts_with("```"))
            .collect::<String>()
            .split_whitespace()
            .collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn the_worked_example_of_format_section_18_is_what_the_code_writes() {
        let naming = NamingKey::from_bytes([0x11; 32]);
        let k = NoticeKey::new(&naming);
        assert_eq!(naming.derive(PURPOSE).as_bytes().to_vec(), doc_hex("notice_key"));
        let moved = Moved {
            at: 0x0006_2d1a_2b3c_5000,
            to: r#"3-of-5 shamir over a, b, c, d, e under prefix "v2""#.to_owned(),
        };
        assert_eq!(k.moved(&moved).to_vec(), doc_hex("moved_notice"));
        let m = Migration {
            phase: ResharePhase::Copying,
            floor: Version::from_parts(0x0006_2d1a_2b3c_4d5e, 0x0123_4567_89ab_cdef),
            cursor: Cursor::Records(NameTag([
                0x82, 0xa1, 0x21, 0xea, 0x22, 0x14, 0xee, 0xd7, 0x46, 0xba, 0x01, 0x05, 0x19, 0xf5,
                0x8f, 0x44,
            ])),
            copied: 12,
            skipped: 1,
            at: 0x0006_2d1a_2b3c_5000,
            from: r#"2-of-3 shamir over a, b, c under prefix "v1""#.to_owned(),
        };
        let bytes = doc_hex("migration_state");
        assert_eq!(k.migration(&m).to_vec(), bytes);
        assert_eq!(k.open_migration(&bytes), Some(m));
    }

    #[test]
    fn descriptions_are_clipped_at_a_char_boundary() {
        let long = "é".repeat(MAX_DESCRIPTION);
        assert_eq!(clip(&long).len(), MAX_DESCRIPTION);
        let odd = format!("a{long}");
        assert_eq!(clip(&odd).len(), MAX_DESCRIPTION - 1);
    }
}
