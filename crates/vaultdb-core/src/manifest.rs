//! Segmented records: the manifest and the segment payload layout.
//!
//! A record whose data is larger than one segment (4 MiB by default) is stored as one
//! *manifest* secret plus one secret per *segment*, each split and stored like a small
//! record (docs/FORMAT.md, "Segmented records"):
//!
//! ```text
//! manifest payload = postcard { id, content_type, metadata, total_len: u64 (varint),
//!                               segment_size: u32 (varint), segment_count: u32 (varint) }
//! segment payload  = index (u32 BE) | count (u32 BE) | data
//! ```
//!
//! Every segment secret carries its own random MAC key and HMAC tag, bound (through the
//! [`crate::secret::Binding`]) to the record's name tag, version, K and N, and (through the
//! payload it authenticates) to the segment's index and the segment count. A backend can
//! therefore not reorder, drop, repeat or mix segments across records or versions without
//! the read failing with `HMAC_FAILED`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};

/// The default segment size: records with more data than this are segmented.
pub const DEFAULT_SEGMENT_SIZE: usize = 4 << 20;
/// The smallest segment size a client accepts.
pub const MIN_SEGMENT_SIZE: usize = 1 << 10;
/// The largest segment size a client accepts (a segment secret must fit an envelope).
pub const MAX_SEGMENT_SIZE: usize = 1 << 30;
/// Bytes before a segment's data in its payload: index and count.
pub const SEGMENT_HEADER_LEN: usize = 8;

/// The head of a segmented record: who it is and how its data is cut.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The record's id.
    pub id: String,
    /// The record's content type.
    pub content_type: Option<String>,
    /// The record's metadata.
    #[serde(deserialize_with = "crate::canonical::ascending_map")]
    pub metadata: BTreeMap<String, String>,
    /// Bytes of data in all segments together.
    pub total_len: u64,
    /// Bytes of data in every segment but the last.
    pub segment_size: u32,
    /// How many segments there are: `ceil(total_len / segment_size)`.
    pub segment_count: u32,
}

impl Manifest {
    /// A manifest for `total_len` bytes cut into `segment_size` pieces.
    ///
    /// # Errors
    /// `INVALID_CONFIG` if the segment size is out of range; `INVALID_INPUT` if the record
    /// needs more than `u32::MAX` segments.
    pub fn new(
        id: String,
        content_type: Option<String>,
        metadata: BTreeMap<String, String>,
        total_len: u64,
        segment_size: usize,
    ) -> Result<Self> {
        check_segment_size(segment_size)?;
        let segment_count = u32::try_from(total_len.div_ceil(segment_size as u64))
            .map_err(|_| VaultError::invalid_input("record needs too many segments"))?;
        Ok(Self {
            id,
            content_type,
            metadata,
            total_len,
            segment_size: segment_size as u32,
            segment_count,
        })
    }

    /// Appends the serialized manifest to `out`.
    ///
    /// # Errors
    /// `SPLIT_FAILED` if serialization fails.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let taken = std::mem::take(out);
        *out = postcard::to_extend(self, taken)
            .map_err(|e| VaultError::SplitFailed(format!("manifest serialization: {e}")))?;
        Ok(())
    }

    /// Decodes and checks a manifest; all bytes must be consumed, the encoding must be the
    /// canonical one (minimal varints, metadata keys strictly ascending) and the layout
    /// must be consistent.
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` for malformed, non-canonical, trailing or inconsistent bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (m, rest): (Manifest, _) = postcard::take_from_bytes(bytes)
            .map_err(|e| VaultError::ReconstructFailed(format!("manifest deserialization: {e}")))?;
        if !rest.is_empty() {
            return Err(VaultError::ReconstructFailed("trailing bytes after manifest".into()));
        }
        crate::canonical::check_len(&m, bytes.len())
            .map_err(|e| VaultError::ReconstructFailed(format!("manifest: {e}")))?;
        let consistent = check_segment_size(m.segment_size as usize).is_ok()
            && m.total_len.div_ceil(u64::from(m.segment_size)) == u64::from(m.segment_count);
        if !consistent {
            return Err(VaultError::ReconstructFailed("inconsistent segment layout".into()));
        }
        Ok(m)
    }

    /// The byte range of the record's data that segment `index` holds.
    pub fn segment_range(&self, index: u32) -> Range<u64> {
        let start = u64::from(index) * u64::from(self.segment_size);
        start.min(self.total_len)..(start + u64::from(self.segment_size)).min(self.total_len)
    }

    /// The segments that hold bytes of `range` (already clamped to the data).
    pub fn segments_for(&self, range: &Range<u64>) -> Range<u32> {
        if range.start >= range.end {
            return 0..0;
        }
        let size = u64::from(self.segment_size);
        // Both fit in u32: range.end <= total_len <= segment_count * size.
        (range.start / size) as u32..range.end.div_ceil(size) as u32
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::record::debug_described(f, "Manifest", &self.id, &self.content_type, &self.metadata)
            .field("total_len", &self.total_len)
            .field("segment_size", &self.segment_size)
            .field("segment_count", &self.segment_count)
            .finish()
    }
}

fn check_segment_size(size: usize) -> Result<()> {
    if (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(VaultError::invalid_config(format!(
            "segment size {size} is outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE}"
        )))
    }
}

/// The first bytes of segment `index`'s payload.
pub fn segment_header(index: u32, count: u32) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..4].copy_from_slice(&index.to_be_bytes());
    h[4..].copy_from_slice(&count.to_be_bytes());
    h
}

/// Checks a verified segment payload against the position the reader asked for and the
/// manifest's layout, and returns the data.
///
/// # Errors
/// `HMAC_FAILED` if the payload is another segment's or has the wrong length (the MAC
/// verified, so only a writer bug or a replayed segment can cause this; it is treated as an
/// integrity failure).
pub fn segment_data<'a>(manifest: &Manifest, index: u32, payload: &'a [u8]) -> Result<&'a [u8]> {
    let fail = |reason: String| VaultError::hmac_failed(reason);
    let Some((head, data)) = payload.split_at_checked(SEGMENT_HEADER_LEN) else {
        return Err(fail(format!("segment {index}: payload shorter than its header")));
    };
    if head != segment_header(index, manifest.segment_count) {
        return Err(fail(format!(
            "segment {index} of {}: payload belongs to another position",
            manifest.segment_count
        )));
    }
    let want = manifest.segment_range(index);
    if data.len() as u64 != want.end - want.start {
        return Err(fail(format!("segment {index}: wrong data length")));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(total: u64) -> Manifest {
        Manifest::new("big".into(), Some("x/y".into()), BTreeMap::new(), total, 4096).unwrap()
    }

    #[test]
    fn layout() {
        let m = sample(10_000);
        assert_eq!(m.segment_count, 3);
        assert_eq!(m.segment_range(0), 0..4096);
        assert_eq!(m.segment_range(2), 8192..10_000);
        assert_eq!(m.segments_for(&(0..1)), 0..1);
        assert_eq!(m.segments_for(&(4095..4097)), 0..2);
        assert_eq!(m.segments_for(&(4096..8192)), 1..2);
        assert_eq!(m.segments_for(&(9000..10_000)), 2..3);
        assert_eq!(m.segments_for(&(5..5)), 0..0);
        assert_eq!(sample(8192).segment_count, 2);
        assert!(Manifest::new("a".into(), None, BTreeMap::new(), 1, 10).is_err());
    }

    #[test]
    fn round_trip_and_rejects() {
        let m = sample(10_000);
        let mut buf = Vec::new();
        m.encode_into(&mut buf).unwrap();
        assert_eq!(Manifest::decode(&buf).unwrap(), m);
        for n in 0..buf.len() {
            assert!(Manifest::decode(&buf[..n]).is_err(), "prefix {n}");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(Manifest::decode(&longer).is_err());
        let mut bad = m.clone();
        bad.segment_count = 4;
        let mut buf = Vec::new();
        bad.encode_into(&mut buf).unwrap();
        assert!(Manifest::decode(&buf).is_err(), "inconsistent count");
        assert!(!format!("{m:?}").contains("big"));
    }

    #[test]
    fn segment_payload_checks() {
        let m = sample(10_000);
        let mut p = segment_header(2, 3).to_vec();
        p.extend_from_slice(&[7; 1808]);
        assert_eq!(segment_data(&m, 2, &p).unwrap(), &[7; 1808][..]);
        assert!(segment_data(&m, 1, &p).is_err(), "wrong index");
        assert!(segment_data(&m, 2, &p[..100]).is_err(), "wrong length");
        assert!(segment_data(&m, 2, &p[..3]).is_err(), "short");
        let mut q = segment_header(2, 4).to_vec();
        q.extend_from_slice(&[7; 1808]);
        assert!(segment_data(&m, 2, &q).is_err(), "wrong count");
    }
}
