//! Object keys and listing prefixes, validated once, when they are made.
//!
//! A [`Key`] names one object; a [`KeyPrefix`] selects the keys a listing returns. Both are
//! checked when built, so a backend never sees (and never checks again) a key that breaks
//! the rules, and both are cheap to clone (a shared string).

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The longest key VaultDB writes or a backend must accept, in bytes.
pub const MAX_KEY_LEN: usize = 900;

/// Why a key or a prefix is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty (a key) or longer than [`MAX_KEY_LEN`].
    #[error("key length must be 1..={MAX_KEY_LEN} bytes")]
    Length,
    /// A byte outside printable ASCII (0x21..=0x7E).
    #[error("key holds a byte outside printable ASCII")]
    Byte,
    /// An empty, `.` or `..` segment.
    #[error("key has an empty, '.' or '..' segment")]
    Segment,
}

/// Checks that `key` is a valid object key: 1 to [`MAX_KEY_LEN`] bytes of printable ASCII
/// (0x21..=0x7E), `/`-separated segments, none of them empty, `.` or `..`.
///
/// # Errors
/// The rule broken.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(KeyError::Length);
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(KeyError::Byte);
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(KeyError::Segment);
    }
    Ok(())
}

/// Checks that `prefix` is a valid listing prefix: empty, or at most [`MAX_KEY_LEN`] bytes
/// of printable ASCII whose complete segments (those a `/` follows) are valid key segments.
/// The last, partial segment may be anything, empty included (`"a/"`, `"a/b"`, `"a/."`).
///
/// # Errors
/// The rule broken.
pub fn validate_prefix(prefix: &str) -> Result<(), KeyError> {
    if prefix.len() > MAX_KEY_LEN {
        return Err(KeyError::Length);
    }
    if !prefix.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(KeyError::Byte);
    }
    match prefix.rsplit_once('/') {
        None => Ok(()),
        Some((complete, _)) => validate_key(complete).map_err(|_| KeyError::Segment),
    }
}

/// A valid object key (see [`validate_key`]): what a backend stores an object under.
///
/// Ordered and compared as bytes, which is the order listings return keys in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Arc<str>);

impl Key {
    /// The prefix that selects this key (and the keys that extend it).
    pub fn as_prefix(&self) -> KeyPrefix {
        KeyPrefix(self.0.clone())
    }

    /// True if the key starts with `prefix`.
    pub fn starts_with(&self, prefix: &KeyPrefix) -> bool {
        self.0.starts_with(prefix.as_str())
    }
}

/// A valid listing prefix (see [`validate_prefix`]); [`KeyPrefix::default`] is the empty
/// prefix, which every key starts with.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPrefix(Arc<str>);

impl KeyPrefix {
    /// True for the empty prefix.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The constructors, accessors and conversions that [`Key`] and [`KeyPrefix`] share: text
/// checked by `$check` once, when the value is made.
macro_rules! string_like {
    ($t:ident, $check:ident) => {
        impl $t {
            #[doc = concat!("Checks `text` ([`", stringify!($check), "`]) and wraps it.")]
            ///
            /// # Errors
            /// The rule `text` breaks.
            pub fn new(text: impl AsRef<str>) -> Result<Self, KeyError> {
                let text = text.as_ref();
                $check(text)?;
                Ok(Self(text.into()))
            }

            /// A value built from parts that are valid by construction (the [`KeySpace`]
            /// layout).
            ///
            /// [`KeySpace`]: crate::naming::KeySpace
            pub(crate) fn from_valid(text: String) -> Self {
                debug_assert_eq!($check(&text), Ok(()), "{text:?}");
                Self(text.into())
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), &*self.0)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl FromStr for $t {
            type Err = KeyError;
            fn from_str(s: &str) -> Result<Self, KeyError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $t {
            type Error = KeyError;
            fn try_from(s: &str) -> Result<Self, KeyError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $t {
            type Error = KeyError;
            fn try_from(s: String) -> Result<Self, KeyError> {
                $check(&s)?;
                Ok(Self(s.into()))
            }
        }
    };
}

string_like!(Key, validate_key);
string_like!(KeyPrefix, validate_prefix);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(validate_key("vdb/r/abc/def.ghi"), Ok(()));
        assert_eq!(validate_key("A~b%c+d=e!f"), Ok(()));
        assert_eq!(validate_key(""), Err(KeyError::Length));
        assert_eq!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)), Err(KeyError::Length));
        assert_eq!(validate_key(&"a".repeat(MAX_KEY_LEN)), Ok(()));
        assert_eq!(validate_key("a b"), Err(KeyError::Byte));
        assert_eq!(validate_key("a\u{e9}"), Err(KeyError::Byte));
        assert_eq!(validate_key("a\0"), Err(KeyError::Byte));
        for bad in ["/a", "a/", "a//b", "./a", "a/..", "..", "."] {
            assert_eq!(validate_key(bad), Err(KeyError::Segment), "{bad}");
            assert!(Key::new(bad).is_err());
            assert!(Key::try_from(bad.to_owned()).is_err());
        }
        let k = Key::new("a/b").unwrap();
        assert_eq!(k, "a/b");
        assert_eq!(k.to_string(), "a/b");
        assert_eq!(format!("{k:?}"), "Key(\"a/b\")");
        assert_eq!("a/b".parse::<Key>().unwrap(), k);
        assert!(k.starts_with(&KeyPrefix::new("a/").unwrap()));
        assert!(k.starts_with(&KeyPrefix::default()));
        assert!(!k.starts_with(&KeyPrefix::new("a/c").unwrap()));
        assert!(k < Key::new("a0").unwrap(), "byte order: '/' sorts before '0'");
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a", "a/", "a/b", "a/b/", "a/.", "a/..", "..a/", "x/%"] {
            assert_eq!(validate_prefix(ok), Ok(()), "{ok:?}");
        }
        for bad in ["/", "/a", "a//", "a//b", "./", "a/../", "../x"] {
            assert_eq!(validate_prefix(bad), Err(KeyError::Segment), "{bad:?}");
        }
        assert_eq!(validate_prefix("a b"), Err(KeyError::Byte));
        assert_eq!(validate_prefix(&"a".repeat(MAX_KEY_LEN + 1)), Err(KeyError::Length));
        assert!(KeyPrefix::default().is_empty());
        let k = Key::new("x/y").unwrap();
        assert_eq!(k.as_prefix(), "x/y");
    }
}
