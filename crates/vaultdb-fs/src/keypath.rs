//! The mapping between object keys and relative paths under the root.
//!
//! Each key segment is encoded into the alphabet `[a-z0-9-]`; every other byte (uppercase
//! letters, `_`, `.`, punctuation) becomes `_` followed by two lowercase hex digits, so `A`
//! is `_41`, `_` is `_5f` and `.` is `_2e`. Encoded names hold no uppercase letters and no
//! dots, so they are distinct on case-insensitive filesystems, never `.`, `..` or hidden, and
//! a `.` can mark what a name is:
//!
//! - `<chunk>`: a directory for a complete segment that more segments follow;
//! - `<chunk>.o`: the object file for the last segment;
//! - `<chunk>.p`: a directory holding the rest of a segment whose encoding is longer than
//!   [`CHUNK`] bytes (file-name limits are about 255 bytes; a 900-byte key can encode to
//!   2700), split only between escapes.
//!
//! Files and segment directories never share a name, so a key can be both an object and the
//! parent of other keys (`a` and `a/b`). Decoding is strict: a name that is not exactly what
//! encoding would produce decodes to nothing and is ignored by listings.

use std::path::PathBuf;

use vaultdb_core::Key;

/// The longest encoded chunk in one path component, in bytes (before its suffix).
pub(crate) const CHUNK: usize = 120;

/// True for the bytes that stand for themselves in file names.
fn is_plain(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Encodes one segment into chunks of at most [`CHUNK`] bytes, split between escapes.
fn encode_segment(seg: &str) -> Vec<String> {
    let mut chunks = vec![String::new()];
    for b in seg.bytes() {
        let unit_len = if is_plain(b) { 1 } else { 3 };
        if chunks.last().is_some_and(|c| c.len() + unit_len > CHUNK) {
            chunks.push(String::new());
        }
        // `chunks` always holds at least one element: it starts with one and only grows.
        let cur = chunks.last_mut().expect("chunks is never empty");
        if is_plain(b) {
            cur.push(char::from(b));
        } else {
            cur.push('_');
            cur.push(char::from(HEX[usize::from(b >> 4)]));
            cur.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    chunks
}

/// Decodes one chunk strictly: `None` unless encoding the result gives `chunk` back.
pub(crate) fn decode_chunk(chunk: &str) -> Option<String> {
    if chunk.is_empty() || chunk.len() > CHUNK {
        return None;
    }
    let bytes = chunk.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_plain(b) {
            out.push(char::from(b));
            i += 1;
        } else if b == b'_' && i + 2 < bytes.len() {
            let hi = hex_val(bytes[i + 1])?;
            let lo = hex_val(bytes[i + 2])?;
            let v = hi << 4 | lo;
            // Only bytes that encoding escapes, and that keys may hold (not '/').
            if is_plain(v) || !(0x21..=0x7e).contains(&v) || v == b'/' {
                return None;
            }
            out.push(char::from(v));
            i += 3;
        } else {
            return None;
        }
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The path components of a key's object file. The key must be valid.
pub(crate) fn key_components(key: &str) -> Vec<String> {
    let segments: Vec<&str> = key.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let last_segment = i + 1 == segments.len();
        push_segment(&mut out, seg, last_segment);
    }
    out
}

/// The directory components for complete segments `segs` (that more segments follow).
pub(crate) fn dir_components<'a>(segs: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for seg in segs {
        push_segment(&mut out, seg, false);
    }
    out
}

fn push_segment(out: &mut Vec<String>, seg: &str, last_segment: bool) {
    let chunks = encode_segment(seg);
    let n = chunks.len();
    for (j, mut c) in chunks.into_iter().enumerate() {
        if j + 1 < n {
            c.push_str(".p");
        } else if last_segment {
            c.push_str(".o");
        }
        out.push(c);
    }
}

/// The relative path of a key's object file.
pub(crate) fn key_to_relative(key: &Key) -> PathBuf {
    key_components(key.as_str()).iter().collect()
}

/// What a directory entry name is, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `<chunk>`: a complete segment directory (decoded segment).
    Segment(String),
    /// `<chunk>.p`: part of a longer segment.
    Partial(String),
    /// `<chunk>.o`: an object file (decoded last chunk of the key).
    Object(String),
}

/// Classifies and decodes a directory entry name; `None` for names encoding never makes.
pub(crate) fn parse_name(name: &str) -> Option<Entry> {
    if let Some(body) = name.strip_suffix(".o") {
        decode_chunk(body).map(Entry::Object)
    } else if let Some(body) = name.strip_suffix(".p") {
        decode_chunk(body).map(Entry::Partial)
    } else {
        decode_chunk(name).map(Entry::Segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_segments_into_safe_names() {
        assert_eq!(key_components("abc"), ["abc.o"]);
        assert_eq!(key_components("A/b_c/d.e"), ["_41", "b_5fc", "d_2ee.o"]);
        assert_eq!(key_components("..a/x"), ["_2e_2ea", "x.o"]);
        assert_eq!(key_components("%~+="), ["_25_7e_2b_3d.o"]);
        let printable: String = (0x21u8..=0x7e).filter(|&b| b != b'/').map(char::from).collect();
        let comps = key_components(&printable);
        for c in &comps {
            assert!(c.bytes().all(|b| is_plain(b) || b == b'_' || b == b'.'), "{c}");
            assert!(!c.bytes().any(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn long_segments_are_chunked_between_escapes() {
        let seg = "A".repeat(200) + "b";
        let comps = key_components(&seg);
        assert!(comps.len() > 1);
        for c in &comps {
            let body = c.trim_end_matches(".p").trim_end_matches(".o");
            assert!(body.len() <= CHUNK);
            assert!(decode_chunk(body).is_some(), "{c}");
        }
        assert!(comps[..comps.len() - 1].iter().all(|c| c.ends_with(".p")));
        assert!(comps.last().unwrap().ends_with(".o"));
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(decode_chunk("_41b"), Some("Ab".into()));
        assert_eq!(decode_chunk("_61"), None, "a plain byte escaped");
        assert_eq!(decode_chunk("_4A"), None, "uppercase hex");
        assert_eq!(decode_chunk("_2f"), None, "slash");
        assert_eq!(decode_chunk("_20"), None, "space");
        assert_eq!(decode_chunk("_4"), None, "short escape");
        assert_eq!(decode_chunk("A"), None);
        assert_eq!(decode_chunk(""), None);
        assert_eq!(parse_name(".tmp"), None);
        assert_eq!(parse_name("x.o"), Some(Entry::Object("x".into())));
        assert_eq!(parse_name("x.p"), Some(Entry::Partial("x".into())));
        assert_eq!(parse_name("x"), Some(Entry::Segment("x".into())));
        assert_eq!(parse_name("x.q"), None);
    }

    #[test]
    fn paths_stay_below_the_root() {
        for k in ["..a", "a/..b/c", ".tmp/x", "%2e%2e/x", "..\\..\\x", "C:\\x"] {
            let rel = key_to_relative(&Key::new(k).unwrap());
            assert!(rel.is_relative(), "{k}");
            assert!(
                rel.components().all(|c| matches!(c, std::path::Component::Normal(_))),
                "{k} -> {}",
                rel.display()
            );
        }
    }
}
