//! One line of the audit log: the key that authenticates it ([`AuditKey`]), its fields
//! ([`Line`]), how a line is rendered, and how a line of either format is parsed and checked
//! (v2, keyed; v1, the old unkeyed SHA-256 chain, still read).

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vaultdb_core::VaultDb;
use zeroize::Zeroizing;

/// What the audit key is derived for: `HMAC-SHA256(naming_key, "vaultdb/v1/derive" | 00 |
/// "audit-log")` ([`VaultDb::derived_key`]).
pub const KEY_PURPOSE: &str = "audit-log";

/// The `op` of a genesis line (the first line of a log).
pub const GENESIS_OP: &str = "audit.genesis";

/// The `actor` of a genesis line.
pub const GENESIS_ACTOR: &str = "vaultdb";

/// The `prev` of the genesis line of a new log: 64 zeros.
pub const ZERO_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The text whose SHA-256 is the first v1 line's `prev`.
pub const V1_GENESIS_TEXT: &str = "vaultdb audit log v1 genesis";

/// `prev` of the first line of a v1 log: hex SHA-256 of [`V1_GENESIS_TEXT`].
pub fn v1_genesis() -> String {
    hex::encode(Sha256::digest(V1_GENESIS_TEXT.as_bytes()))
}

/// The key that authenticates audit lines: derived from the store's naming key, so every
/// client of the store has it and no set of fewer than K backends (nor the log file) gives
/// it away. Never printed.
#[derive(Clone)]
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    /// The audit key of the store `db`.
    pub fn of(db: &VaultDb) -> Self {
        Self(db.derived_key(KEY_PURPOSE))
    }

    /// A key from its bytes (tests and tools).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length")
    }

    /// Lowercase hex HMAC-SHA256 of `body` under this key.
    pub fn mac(&self, body: &[u8]) -> String {
        let mut m = self.hmac();
        m.update(body);
        hex::encode(m.finalize().into_bytes())
    }

    /// Whether `mac_hex` (64 hex digits) is the MAC of `body`, compared in constant time.
    fn verifies(&self, body: &[u8], mac_hex: &str) -> bool {
        let mut tag = [0u8; 32];
        if hex::decode_to_slice(mac_hex, &mut tag).is_err() {
            return false;
        }
        let mut m = self.hmac();
        m.update(body);
        m.verify_slice(&tag).is_ok()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// The fields of a v2 line, in the order they are written; `mac` is added when it is
/// rendered ([`Line::render`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The line's number in the file, from 1.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// The log's id: 32 lowercase hex digits, drawn by its genesis line.
    pub log: String,
    /// Who.
    pub actor: String,
    /// What.
    pub op: String,
    /// The record's name tag, if the operation concerns one record.
    pub tag: Option<String>,
    /// `OK` or the error code.
    pub outcome: String,
    /// How many requests the line stands for, on aggregated lines only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The previous line's `mac` (see the module docs for a genesis line's).
    pub prev: String,
}

/// `,"mac":"` + 64 hex digits + `"}`.
const MAC_SUFFIX_LEN: usize = 8 + 64 + 2;

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

impl Line {
    /// The MAC's input: the line's JSON without `mac` (compact, fields in order).
    pub fn body(&self) -> Vec<u8> {
        // Strings, integers and an option: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The full line (without its newline): [`Line::body`] with `,"mac":"<hex>"` inserted
    /// before the closing brace.
    pub fn render(&self, key: &AuditKey) -> String {
        self.render_with_mac(key).0
    }

    /// The full line and its `mac`.
    pub(super) fn render_with_mac(&self, key: &AuditKey) -> (String, String) {
        let mut body = self.body();
        let mac = key.mac(&body);
        body.pop(); // the closing brace
        let mut text = String::from_utf8(body).unwrap_or_default();
        text.push_str(",\"mac\":\"");
        text.push_str(&mac);
        text.push_str("\"}");
        (text, mac)
    }
}

/// A line as read from a log file.
#[derive(Debug)]
pub(super) enum Parsed {
    /// A v1 line, its own hash checked.
    V1 {
        /// Its `seq`.
        seq: u64,
        /// Its `prev`.
        prev: String,
        /// Hex SHA-256 of the line's bytes (the next v1 line's `prev`).
        hash: String,
    },
    /// A v2 line, well formed.
    V2 {
        /// Its fields.
        line: Line,
        /// Its `mac`.
        mac: String,
        /// Whether `mac` verified under the key given to [`parse`] (false without one).
        authentic: bool,
    },
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses one line (without its newline) of either format; a v2 line's MAC is checked
/// under `key`, if one is given.
///
/// # Errors
/// What is wrong with the line, for people.
pub(super) fn parse(raw: &[u8], key: Option<&AuditKey>) -> Result<Parsed, String> {
    let n = raw.len();
    let suffix = |len: usize, start: &[u8]| {
        n >= len + 2
            && raw.ends_with(b"\"}")
            && raw[n - len..].starts_with(start)
            && std::str::from_utf8(&raw[n - len + start.len()..n - 2]).is_ok_and(|h| is_hex(h, 64))
    };
    if suffix(MAC_SUFFIX_LEN, b",\"mac\":\"") {
        let mac = String::from_utf8_lossy(&raw[n - 66..n - 2]).into_owned();
        let mut body = raw[..n - MAC_SUFFIX_LEN].to_vec();
        body.push(b'}');
        let line: Line =
            serde_json::from_slice(&body).map_err(|e| format!("not a valid audit entry: {e}"))?;
        if line.body() != body {
            return Err("not a valid audit entry: its fields are not in the canonical form".into());
        }
        if !is_hex(&line.log, 32) || !is_hex(&line.prev, 64) || line.count == Some(0) {
            return Err("not a valid audit entry: malformed log, prev or count".into());
        }
        let authentic = key.is_some_and(|k| k.verifies(&body, &mac));
        return Ok(Parsed::V2 { line, mac, authentic });
    }
    if suffix(HASH_SUFFIX_LEN, b",\"hash\":\"") {
        let hash = &raw[n - 66..n - 2];
        let mut body = raw[..n - HASH_SUFFIX_LEN].to_vec();
        body.push(b'}');
        if hex::encode(Sha256::digest(&body)).as_bytes() != hash {
            return Err("its hash does not match its contents (the line was edited)".into());
        }
        let v1: V1Line =
            serde_json::from_slice(&body).map_err(|e| format!("not a valid audit entry: {e}"))?;
        return Ok(Parsed::V1 {
            seq: v1.seq,
            prev: v1.prev,
            hash: hex::encode(Sha256::digest(raw)),
        });
    }
    Err("not an audit entry (no mac at the end)".into())
}

/// A v1 line's fields (all parsed, so that a malformed entry is rejected).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Every field is parsed so that a malformed entry is rejected.
struct V1Line {
    seq: u64,
    ts: String,
    actor: String,
    op: String,
    tag: Option<String>,
    outcome: String,
    prev: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Line {
        Line {
            seq: 2,
            ts: "2026-05-01T12:00:00.123Z".into(),
            log: "0123456789abcdef0123456789abcdef".into(),
            actor: "admin \"quoted\"".into(),
            op: "record.put".into(),
            tag: Some("tagtagtag".into()),
            outcome: "OK".into(),
            count: None,
            prev: ZERO_PREV.into(),
        }
    }

    #[test]
    fn a_rendered_line_parses_back_and_its_mac_needs_the_key() {
        let key = AuditKey::from_bytes([7; 32]);
        let text = line().render(&key);
        assert!(text.ends_with("\"}") && !text.contains('\n'));
        let Ok(Parsed::V2 { line: back, mac, authentic }) = parse(text.as_bytes(), Some(&key))
        else {
            panic!("parses as v2")
        };
        assert!(authentic);
        assert_eq!(back, line());
        assert_eq!(mac, key.mac(&line().body()));
        let Ok(Parsed::V2 { authentic, .. }) =
            parse(text.as_bytes(), Some(&AuditKey::from_bytes([8; 32])))
        else {
            panic!("parses as v2")
        };
        assert!(!authentic, "another key");
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn non_canonical_or_malformed_lines_are_rejected() {
        let key = AuditKey::from_bytes([7; 32]);
        let text = line().render(&key);
        // Same fields, another spelling: the MAC input must be the canonical one.
        let spaced = text.replacen("\"seq\":2", "\"seq\": 2", 1);
        assert!(parse(spaced.as_bytes(), Some(&key)).unwrap_err().contains("canonical"));
        let reordered = text.replacen("{\"seq\":2,\"ts\"", "{\"ts\"", 1).replacen(
            "\"log\"",
            "\"seq\":2,\"log\"",
            1,
        );
        assert!(parse(reordered.as_bytes(), Some(&key)).is_err());
        let mut counted = line();
        counted.count = Some(0);
        assert!(parse(counted.render(&key).as_bytes(), Some(&key)).is_err());
        let unknown = text.replacen("\"prev\"", "\"extra\":1,\"prev\"", 1);
        assert!(parse(unknown.as_bytes(), Some(&key)).is_err());
        assert!(parse(b"{}", Some(&key)).is_err());
        assert!(parse(&text.as_bytes()[..text.len() - 1], Some(&key)).is_err());
    }

    #[test]
    fn v1_lines_are_checked_against_their_own_hash() {
        let body = format!(
            "{{\"seq\":1,\"ts\":\"t\",\"actor\":\"cli\",\"op\":\"record.get\",\"tag\":null,\
             \"outcome\":\"OK\",\"prev\":\"{}\"}}",
            v1_genesis()
        );
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        let text = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        let Ok(Parsed::V1 { seq: 1, prev, hash: h }) = parse(text.as_bytes(), None) else {
            panic!("parses as v1")
        };
        assert_eq!(prev, v1_genesis());
        assert_eq!(h, hex::encode(Sha256::digest(text.as_bytes())));
        let edited = text.replace("record.get", "record.put");
        assert!(parse(edited.as_bytes(), None).unwrap_err().contains("edited"));
    }
}
