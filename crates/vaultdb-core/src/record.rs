//! Records and their serialization.
//!
//! A record is an id, opaque data bytes, an optional content type and string metadata
//! ([`RecordMeta`] is the same without the data). It is serialized with postcard (docs/FORMAT.md gives the bytes), with `data` written as one
//! length-prefixed byte string.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::wipe::SecretVec;

/// Content type set by [`Record::json`].
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// A record: what `put` stores and `get` returns.
///
/// `Debug` shows sizes only: ids, data and metadata values are sensitive and must not reach
/// logs.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    /// The record's id (1 to 255 bytes of UTF-8, no control characters).
    pub id: String,
    /// The record's contents.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// An optional media type, e.g. `application/json`.
    pub content_type: Option<String>,
    /// Free-form string metadata, stored (and protected) like the data.
    pub metadata: BTreeMap<String, String>,
}

/// The wire form, borrowing from a record so encoding does not copy the data first.
#[derive(Serialize)]
struct RecordRef<'a> {
    id: &'a str,
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
    content_type: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
}

/// A postcard output that appends to a `Vec` with `extend_from_slice` (one `memcpy` for the
/// data), where `postcard::to_extend` pushes slices byte by byte through `Extend`: about
/// 2.5x the time of a copy for a 1 MiB record (`perf`, 2026-12-06).
struct AppendVec<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendVec<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// A postcard output that appends everything but one slice, the record's data, and notes
/// where that slice would have gone.
struct SkipData<'a, 'd> {
    out: &'a mut Vec<u8>,
    data: &'d [u8],
    at: Option<usize>,
}

impl postcard::ser_flavors::Flavor for &mut SkipData<'_, '_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.out.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if self.at.is_none() && !bytes.is_empty() && std::ptr::eq(bytes, self.data) {
            self.at = Some(self.out.len());
        } else {
            self.out.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// A serialized record in three parts ([`Record::encoded_parts`]).
pub(crate) struct EncodedParts<'d> {
    fields: Zeroizing<Vec<u8>>,
    at: usize,
    data: &'d [u8],
}

impl EncodedParts<'_> {
    /// The parts, in order.
    pub(crate) fn parts(&self) -> [&[u8]; 3] {
        let (before, after) = self.fields.split_at(self.at);
        [before, self.data, after]
    }
}

/// The wire form, borrowing from the payload on decode.
#[derive(Deserialize)]
struct RecordWire<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
    content_type: Option<String>,
    #[serde(deserialize_with = "crate::canonical::ascending_map")]
    metadata: BTreeMap<String, String>,
}

impl Record {
    /// A record with `id` and `data`, no content type, no metadata.
    pub fn new(id: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self { id: id.into(), data: data.into(), ..Self::default() }
    }

    /// A record whose data is `value` as JSON, with content type `application/json`.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if `value` cannot be serialized.
    pub fn json<T: Serialize + ?Sized>(id: impl Into<String>, value: &T) -> Result<Self> {
        let data = serde_json::to_vec(value)
            .map_err(|e| VaultError::SplitFailed(format!("record data is not JSON: {e}")))?;
        Ok(Self::new(id, data).with_content_type(JSON_CONTENT_TYPE))
    }

    /// Parses the data as JSON.
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` if the data is not JSON of that shape.
    pub fn data_json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.data)
            .map_err(|e| VaultError::ReconstructFailed(format!("record data is not JSON: {e}")))
    }

    /// The serialized size, for sizing buffers.
    pub fn encoded_len_hint(&self) -> usize {
        let meta: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len() + 10).sum();
        self.id.len()
            + self.data.len()
            + self.content_type.as_ref().map_or(0, String::len)
            + meta
            + 32
    }

    /// Appends the serialized record to `out`.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if serialization fails.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let wire = RecordRef {
            id: &self.id,
            data: &self.data,
            content_type: self.content_type.as_deref(),
            metadata: &self.metadata,
        };
        postcard::serialize_with_flavor(&wire, AppendVec(out))
            .map_err(|e| VaultError::SplitFailed(format!("record serialization: {e}")))
    }

    /// The serialized record ([`Record::encode_into`]) in three parts, whose concatenation
    /// it is: the fields before the data's bytes, the data itself (borrowed, not copied),
    /// and the fields after. A put computes the record's MAC from these parts while it
    /// copies them into the secret.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if serialization fails.
    pub(crate) fn encoded_parts(&self) -> Result<EncodedParts<'_>> {
        let wire = RecordRef {
            id: &self.id,
            data: &self.data,
            content_type: self.content_type.as_deref(),
            metadata: &self.metadata,
        };
        // The fields are as sensitive as the data: wiped when the parts are dropped.
        let mut fields =
            Zeroizing::new(Vec::with_capacity(self.encoded_len_hint() - self.data.len()));
        let mut skip = SkipData { out: &mut fields, data: &self.data, at: None };
        postcard::serialize_with_flavor(&wire, &mut skip)
            .map_err(|e| VaultError::SplitFailed(format!("record serialization: {e}")))?;
        // Where the data was left out; if it never came as one slice (or is empty), it was
        // written into the fields like everything else.
        let (at, data) = match skip.at {
            Some(at) => (at, &self.data[..]),
            None => (fields.len(), &[][..]),
        };
        Ok(EncodedParts { fields, at, data })
    }

    /// Decodes a serialized record; all bytes must be consumed, and the encoding must be
    /// the canonical one (minimal varints, metadata keys strictly ascending).
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` for malformed, non-canonical or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let wire = Self::decode_wire(bytes)?;
        Ok(Self {
            id: wire.id.to_owned(),
            data: wire.data.to_vec(),
            content_type: wire.content_type,
            metadata: wire.metadata,
        })
    }

    /// [`Record::decode`] of bytes `payload` of a rebuilt secret, whose allocation becomes
    /// the record's data (moved to its front, the rest wiped: [`SecretVec::into_front`])
    /// instead of a copy of the data into a fresh one: a megabyte read does not pay for a
    /// second megabyte of page faults. The data's capacity is then the secret's length.
    ///
    /// # Errors
    /// As [`Record::decode`]; `RECONSTRUCT_FAILED` also if `payload` is out of bounds.
    pub(crate) fn decode_secret(secret: SecretVec, payload: Range<usize>) -> Result<Self> {
        let bytes = secret
            .get(payload.clone())
            .ok_or_else(|| VaultError::ReconstructFailed("payload out of range".into()))?;
        let wire = Self::decode_wire(bytes)?;
        let start = payload.start + (wire.data.as_ptr().addr() - bytes.as_ptr().addr());
        let data = start..start + wire.data.len();
        let (id, content_type, metadata) = (wire.id.to_owned(), wire.content_type, wire.metadata);
        Ok(Self { id, data: secret.into_front(data), content_type, metadata })
    }

    /// Decodes and checks the wire form (see [`Record::decode`]), borrowing from `bytes`.
    fn decode_wire(bytes: &[u8]) -> Result<RecordWire<'_>> {
        let (wire, rest): (RecordWire<'_>, _) = postcard::take_from_bytes(bytes)
            .map_err(|e| VaultError::ReconstructFailed(format!("record deserialization: {e}")))?;
        if !rest.is_empty() {
            return Err(VaultError::ReconstructFailed("trailing bytes after record".into()));
        }
        let as_written = RecordRef {
            id: wire.id,
            data: wire.data,
            content_type: wire.content_type.as_deref(),
            metadata: &wire.metadata,
        };
        crate::canonical::check_len(&as_written, bytes.len())
            .map_err(|e| VaultError::ReconstructFailed(format!("record: {e}")))?;
        Ok(wire)
    }
}

/// `f.debug_struct(name)` with a record's id, content type and metadata as `Debug` shows
/// them: the content type, and only the sizes of the id and the metadata (both sensitive).
pub(crate) fn debug_described<'a, 'b: 'a>(
    f: &'a mut fmt::Formatter<'b>,
    name: &str,
    id: &str,
    content_type: &Option<String>,
    metadata: &BTreeMap<String, String>,
) -> fmt::DebugStruct<'a, 'b> {
    let mut d = f.debug_struct(name);
    d.field("id", &format_args!("<{} bytes>", id.len()))
        .field("content_type", content_type)
        .field("metadata", &format_args!("<{} entries>", metadata.len()));
    d
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_described(f, "Record", &self.id, &self.content_type, &self.metadata)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// Who a record is, without its data: what [`VaultDb::put_stream`] takes and a
/// [`ReadStream`] reports.
///
/// `Debug` shows sizes only (ids and metadata values are sensitive).
///
/// [`VaultDb::put_stream`]: crate::VaultDb::put_stream
/// [`ReadStream`]: crate::ReadStream
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// The record's id.
    pub id: String,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
}

impl RecordMeta {
    /// Metadata for `id`, with no content type and no metadata entries.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), ..Self::default() }
    }
}

/// The setters of what [`Record`] and [`RecordMeta`] both describe: the content type and
/// metadata entries.
macro_rules! description_setters {
    ($t:ty) => {
        impl $t {
            /// Sets the content type.
            pub fn with_content_type(mut self, ct: impl Into<String>) -> Self {
                self.content_type = Some(ct.into());
                self
            }

            /// Adds a metadata entry.
            pub fn with_metadata(
                mut self,
                key: impl Into<String>,
                value: impl Into<String>,
            ) -> Self {
                self.metadata.insert(key.into(), value.into());
                self
            }
        }
    };
}

description_setters!(Record);
description_setters!(RecordMeta);

impl fmt::Debug for RecordMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_described(f, "RecordMeta", &self.id, &self.content_type, &self.metadata).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three parts concatenate to what `encode_into` writes, the data borrowed (never
    /// copied) whenever it is not empty.
    #[test]
    fn encoded_parts_concatenate_to_the_encoding() {
        for (len, ct, meta) in
            [(0usize, false, 0usize), (1, true, 0), (300, false, 3), (70_000, true, 2)]
        {
            let mut r = Record::new("an-id", (0..len).map(|i| i as u8).collect::<Vec<u8>>());
            if ct {
                r = r.with_content_type("text/plain");
            }
            for m in 0..meta {
                r = r.with_metadata(format!("k{m}"), "v".repeat(m * 200));
            }
            let mut whole = Vec::new();
            r.encode_into(&mut whole).unwrap();
            let enc = r.encoded_parts().unwrap();
            let parts = enc.parts();
            assert_eq!(parts.concat(), whole, "{len} {ct} {meta}");
            if len > 0 {
                assert!(std::ptr::eq(parts[1], &r.data[..]), "the data is borrowed");
            }
        }
    }

    #[test]
    fn round_trip() {
        let r = Record::json("user-42", &serde_json::json!({"name": "Alice", "ssn": "123"}))
            .unwrap()
            .with_metadata("team", "hr");
        let mut buf = vec![9u8; 3];
        r.encode_into(&mut buf).unwrap();
        assert_eq!(&buf[..3], &[9, 9, 9]);
        let back = Record::decode(&buf[3..]).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = back.data_json().unwrap();
        assert_eq!(v["name"], "Alice");
        assert!(buf.len() - 3 <= r.encoded_len_hint());
    }

    #[test]
    fn exact_bytes() {
        // postcard: varint lengths, raw bytes, Option as 0/1, map as count then pairs.
        let r = Record::new("ab", vec![1, 2, 3]).with_content_type("t").with_metadata("k", "v");
        let mut buf = Vec::new();
        r.encode_into(&mut buf).unwrap();
        assert_eq!(buf, [2, b'a', b'b', 3, 1, 2, 3, 1, 1, b't', 1, 1, b'k', 1, b'v']);
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        let r = Record::new("id", vec![0u8; 300]);
        let mut buf = Vec::new();
        r.encode_into(&mut buf).unwrap();
        for n in 0..buf.len() {
            assert!(Record::decode(&buf[..n]).is_err(), "prefix {n}");
        }
        buf.push(0);
        assert!(Record::decode(&buf).is_err(), "trailing byte");
        assert!(Record::decode(&[0xff; 16]).is_err());
        let secret = || SecretVec::from(buf.clone());
        assert!(Record::decode_secret(secret(), 0..buf.len()).is_err(), "trailing byte");
        assert!(Record::decode_secret(secret(), 1..buf.len() + 1).is_err(), "out of range");
    }

    /// Decoding out of a secret gives what decoding a copy gives, wherever the payload is.
    #[test]
    fn decode_secret_equals_decode() {
        let r = Record::new("id-7", (0..5000u32).map(|i| i as u8).collect::<Vec<u8>>())
            .with_content_type("text/plain")
            .with_metadata("k", "v");
        let mut buf = vec![9u8; 72];
        r.encode_into(&mut buf).unwrap();
        let end = buf.len();
        buf.resize(end + 300, 0);
        let back = Record::decode_secret(SecretVec::from(buf.clone()), 72..end).unwrap();
        assert_eq!(back, Record::decode(&buf[72..end]).unwrap());
        assert_eq!(back, r);
    }

    #[test]
    fn debug_hides_contents() {
        let r = Record::new("alice@example.com", b"secret-ssn".to_vec()).with_metadata("k", "v1");
        let d = format!("{r:?}");
        assert!(!d.contains("alice") && !d.contains("secret") && !d.contains("v1"), "{d}");
    }
}
