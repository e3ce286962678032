//! The content-type rule: what may be stored as a record's content type, the same for
//! `vaultdb put --content-type TYPE` and the `Content-Type` of `PUT /v1/records/{id}/raw`.
//!
//! A stored content type is served back as a `Content-Type` header, so it must be a valid
//! HTTP field value (RFC 9110, section 5.5) in ASCII: visible characters, spaces and tabs (a
//! media type's parameters may be separated by either). Spaces and tabs around it are not
//! part of a field value and are trimmed; what remains is at most [`MAX_LEN`] bytes, and
//! nothing at all means no content type.

use std::fmt;

/// Longest content type kept with a record, in bytes.
pub const MAX_LEN: usize = 255;

/// Why a content type was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A byte that is neither visible ASCII, a space nor a tab.
    NotPrintable,
    /// More than [`MAX_LEN`] bytes after trimming.
    TooLong,
}

impl fmt::Display for Invalid {
    /// Completes a sentence whose subject the caller names (`--content-type`, `the
    /// Content-Type header`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPrintable => f.write_str("is not printable ASCII"),
            Self::TooLong => write!(f, "is longer than {MAX_LEN} bytes"),
        }
    }
}

impl std::error::Error for Invalid {}

/// The content type to store for `given` (the option's value, or the header's bytes):
/// trimmed, `None` if nothing is left.
///
/// # Errors
/// [`Invalid`] when it breaks the rule (see the [module docs](self)).
pub fn normalize(given: &[u8]) -> Result<Option<String>, Invalid> {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = given.iter().position(|b| !ows(b)).unwrap_or(given.len());
    let end = given.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    let trimmed = &given[start..end];
    if !trimmed.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err(Invalid::NotPrintable);
    }
    if trimmed.len() > MAX_LEN {
        return Err(Invalid::TooLong);
    }
    // Printable ASCII is UTF-8.
    Ok((!trimmed.is_empty()).then(|| String::from_utf8_lossy(trimmed).into_owned()))
}

/// Whether a stored content type says the data is JSON (`application/json` or any
/// `+json` type, parameters and case aside), so that the JSON view serves it as a value.
pub fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        let ok = |s: &str| normalize(s.as_bytes()).unwrap();
        assert_eq!(ok("image/png").as_deref(), Some("image/png"));
        assert_eq!(
            ok(" \ttext/plain; charset=utf-8 \t").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(ok("text/plain;\tcharset=utf-8").as_deref(), Some("text/plain;\tcharset=utf-8"));
        assert_eq!(ok(""), None);
        assert_eq!(ok(" \t "), None);
        assert_eq!(ok(&"x".repeat(MAX_LEN)).map(|s| s.len()), Some(MAX_LEN));
        assert_eq!(ok(&format!("  {}  ", "x".repeat(MAX_LEN))).map(|s| s.len()), Some(MAX_LEN));
        assert_eq!(normalize("x".repeat(MAX_LEN + 1).as_bytes()), Err(Invalid::TooLong));
        for bad in ["text/plain\n", "a\u{1}b", "caf\u{e9}/x", "a\u{7f}", "a\rb"] {
            assert_eq!(normalize(bad.as_bytes()), Err(Invalid::NotPrintable), "{bad:?}");
        }
        assert_eq!(normalize(b"text/\xff"), Err(Invalid::NotPrintable));
        // Exactly what http accepts as a header value that is a str.
        for b in 0..=255u8 {
            let v = [b'a', b, b'z'];
            let header = axum::http::HeaderValue::from_bytes(&v).ok();
            let as_str = header.as_ref().and_then(|h| h.to_str().ok()).is_some();
            assert_eq!(normalize(&v).is_ok(), as_str, "byte {b:#04x}");
        }
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/ld+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }
}
