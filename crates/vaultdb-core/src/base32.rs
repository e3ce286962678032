//! The text encoding of object names: lowercase base32hex without padding (RFC 4648
//! section 7), whose text order is byte order.
//!
//! Name tags and id shares ([`crate::naming`]) and versions ([`crate::version`]) are written
//! in it, and print as it (`base32_fmt!`); it lives here so that neither of those modules
//! depends on the other for it.

use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};

/// Lowercase base32hex (RFC 4648 section 7) without padding; decoding is strict (no
/// uppercase, unused trailing bits must be zero).
pub static BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("0123456789abcdefghijklmnopqrstuv");
    spec.check_trailing_bits = true;
    // The specification is a constant and valid; the test `base32_is_base32hex` runs it.
    spec.encoding().expect("valid base32hex specification")
});

/// Decodes strict lowercase base32hex; `None` on any deviation.
pub fn decode_base32(s: &str) -> Option<Vec<u8>> {
    BASE32.decode(s.as_bytes()).ok()
}

/// Implements `Debug` (`Type(<text>)`) and `Display` (the text) for a type written in
/// base32 by its `to_text` (name tags, versions).
macro_rules! base32_fmt {
    ($ty:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.to_text())
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_text())
            }
        }
    };
}
pub(crate) use base32_fmt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_base32hex() {
        // RFC 4648 section 10 test vectors for base32hex, lowercased and unpadded.
        for (plain, enc) in [
            ("", ""),
            ("f", "co"),
            ("fo", "cpng"),
            ("foo", "cpnmu"),
            ("foob", "cpnmuog"),
            ("fooba", "cpnmuoj1"),
            ("foobar", "cpnmuoj1e8"),
        ] {
            assert_eq!(BASE32.encode(plain.as_bytes()), enc);
            assert_eq!(decode_base32(enc).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(decode_base32("CPNG"), None);
        assert_eq!(decode_base32("cpnh"), None); // non-zero trailing bits
        assert_eq!(decode_base32("cpng===="), None);
    }

    #[test]
    fn name_tags_and_versions_print_as_their_text() {
        let v = crate::version::Version::from_parts(1, 2);
        assert_eq!(v.to_string(), v.to_text());
        assert_eq!(format!("{v:?}"), format!("Version({})", v.to_text()));
        let tag = crate::naming::NameTag([7; crate::naming::NAME_TAG_LEN]);
        assert_eq!(tag.to_string(), tag.to_text());
        assert_eq!(format!("{tag:?}"), format!("NameTag({})", tag.to_text()));
    }
}
