//! Canonical decoding of the postcard payloads (records, manifests, keyrings): every value
//! has exactly one encoding, and the decoders accept only that one (docs/FORMAT.md
//! section 4). Payloads are decoded only after their HMAC verified, so a non-canonical one
//! could only come from a key holder; rejecting it anyway keeps "same value, same bytes"
//! true for everything stored, and lets the fuzz targets demand byte-exact round trips.
//!
//! postcard already rejects Option and bool tags other than 0 and 1, so what remains is:
//! - varints must be minimal: checked by comparing the input's length with the length the
//!   decoded value encodes to ([`check_len`]);
//! - map keys must be strictly ascending (which also rules out repeated keys):
//!   [`ascending_map`], used with `#[serde(deserialize_with)]`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};

/// Deserializes a string map whose keys must be strictly ascending.
pub(crate) fn ascending_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Ascending;

    impl<'de> Visitor<'de> for Ascending {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string map with strictly ascending keys")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = access.next_entry::<String, String>()? {
                if out.last_key_value().is_some_and(|(last, _)| *last >= key) {
                    return Err(A::Error::custom("map keys out of order or repeated"));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    d.deserialize_map(Ascending)
}

/// Checks that `value`, decoded from `len` bytes, encodes to exactly `len` bytes again:
/// with map keys already checked, a longer input can only hold a non-minimal varint.
pub(crate) fn check_len<T: Serialize + ?Sized>(value: &T, len: usize) -> Result<(), String> {
    match postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default()) {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err("non-canonical encoding (a varint is not minimal)".into()),
        Err(e) => Err(format!("re-encoding: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::compact::Mode;
    use crate::error::ErrorCode;
    use crate::keyring::Keyring;
    use crate::manifest::Manifest;
    use crate::naming::NamingKey;
    use crate::record::Record;
    use crate::xorida::Threshold;

    /// A string as postcard writes it (all test strings are shorter than 128 bytes).
    fn s(text: &str) -> Vec<u8> {
        let mut out = vec![text.len() as u8];
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// Record "ab", data 1 2 3, no content type, then `meta` (count, then pairs as given).
    fn record_bytes(count: &[u8], meta: &[(&str, &str)]) -> Vec<u8> {
        let mut b = s("ab");
        b.extend_from_slice(&[3, 1, 2, 3, 0]);
        b.extend_from_slice(count);
        for (k, v) in meta {
            b.extend(s(k));
            b.extend(s(v));
        }
        b
    }

    fn fails<T>(r: crate::error::Result<T>) -> bool {
        r.is_err_and(|e| e.code() == ErrorCode::ReconstructFailed)
    }

    #[test]
    fn records_decode_only_from_their_canonical_bytes() {
        let want = Record::new("ab", vec![1, 2, 3]).with_metadata("k", "v").with_metadata("l", "w");
        let canonical = record_bytes(&[2], &[("k", "v"), ("l", "w")]);
        let mut encoded = Vec::new();
        want.encode_into(&mut encoded).unwrap();
        assert_eq!(encoded, canonical, "the hand-written bytes are the encoder's");
        assert!(Record::decode(&canonical).unwrap() == want);

        // Keys out of order, and a repeated key.
        assert!(fails(Record::decode(&record_bytes(&[2], &[("l", "w"), ("k", "v")]))));
        assert!(fails(Record::decode(&record_bytes(&[2], &[("k", "v"), ("k", "w")]))));
        // A non-minimal metadata count, id length and data length (2 as 0x82 0x00, ...).
        assert!(fails(Record::decode(&record_bytes(&[0x82, 0x00], &[("k", "v"), ("l", "w")]))));
        let mut long_id = canonical.clone();
        long_id.splice(0..1, [0x82, 0x00]);
        assert!(fails(Record::decode(&long_id)));
        let mut long_data = canonical.clone();
        long_data.splice(3..4, [0x83, 0x80, 0x00]);
        assert!(fails(Record::decode(&long_data)));
        // The same edits undone decode again: the checks reject the encoding, not the value.
        long_data.splice(3..6, [3]);
        assert!(Record::decode(&long_data).unwrap() == want);
    }

    #[test]
    fn manifests_decode_only_from_their_canonical_bytes() {
        let meta = BTreeMap::from([("k".to_owned(), "v".to_owned()), ("l".to_owned(), "w".into())]);
        let want = Manifest::new("ab".into(), None, meta, 10_000, 4096).unwrap();
        let bytes = |pairs: &[(&str, &str)], total: &[u8]| {
            let mut b = s("ab");
            b.extend_from_slice(&[0, pairs.len() as u8]);
            for (k, v) in pairs {
                b.extend(s(k));
                b.extend(s(v));
            }
            b.extend_from_slice(total);
            b.extend_from_slice(&[0x80, 0x20, 3]); // segment size 4096, 3 segments
            b
        };
        let canonical = bytes(&[("k", "v"), ("l", "w")], &[0x90, 0x4e]);
        let mut encoded = Vec::new();
        want.encode_into(&mut encoded).unwrap();
        assert_eq!(encoded, canonical, "the hand-written bytes are the encoder's");
        assert!(Manifest::decode(&canonical).unwrap() == want);
        assert!(fails(Manifest::decode(&bytes(&[("l", "w"), ("k", "v")], &[0x90, 0x4e]))));
        assert!(fails(Manifest::decode(&bytes(&[("k", "v"), ("k", "v")], &[0x90, 0x4e]))));
        assert!(fails(Manifest::decode(&bytes(&[("k", "v"), ("l", "w")], &[0x90, 0xce, 0x00]))));
    }

    #[test]
    fn keyrings_decode_only_from_their_canonical_bytes() {
        let k = Keyring {
            naming_key: NamingKey::from_bytes([7; 32]),
            threshold: Threshold::new(2, 3).unwrap(),
            backends: vec!["a".into(), "b".into(), "c".into()],
            stores_key: true,
            mode: Mode::Shamir,
        };
        let mut canonical = Vec::new();
        k.encode_into(&mut canonical).unwrap();
        assert!(Keyring::decode(&canonical, None).unwrap().backends == k.backends);
        // A compact store's keyring is format 2 with the mode byte `01` last; a shamir
        // keyring in format 2, an unknown mode, or a missing mode byte do not decode.
        let compact = Keyring { mode: Mode::Compact, ..k.clone() };
        let mut two = Vec::new();
        compact.encode_into(&mut two).unwrap();
        assert_eq!((two[0], two.len(), two[two.len() - 1]), (2, canonical.len() + 1, 1));
        assert_eq!(Keyring::decode(&two, None).unwrap().mode, Mode::Compact);
        assert_eq!(Keyring::decode(&canonical, None).unwrap().mode, Mode::Shamir);
        for (last, cut) in [(0u8, false), (2, false), (1, true)] {
            let mut bad = two.clone();
            *bad.last_mut().unwrap() = last;
            if cut {
                bad.pop();
            }
            assert!(fails(Keyring::decode(&bad, None)), "{last} {cut}");
        }
        let mut trailing = canonical.clone();
        trailing.push(1);
        assert!(fails(Keyring::decode(&trailing, None)));
        // format, Some + key, key check, K, N: the backend count is at byte 52.
        assert_eq!(canonical[52], 3);
        let mut long = canonical.clone();
        long.splice(52..53, [0x83, 0x00]);
        assert!(fails(Keyring::decode(&long, None)));
    }
}
