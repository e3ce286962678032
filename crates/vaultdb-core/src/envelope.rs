//! The share envelope: one share as it is stored in one backend.
//!
//! ```text
//! offset size  field
//!      0    4  magic "VDBS"
//!      4    1  format version (1)
//!      5    1  kind: 1 = record, 2 = keyring, 3 = manifest, 4 = segment
//!      6    1  K
//!      7    1  N
//!      8    1  x, this share's coordinate (1..=N)
//!      9   16  version (HLC micros BE, random BE)
//!     25   16  name tag (zero for a keyring)
//!     41    4  L, the share length (u32 BE): the secret's, or a compact share's
//!     45    L  share bytes
//!   45+L    4  CRC32C (Castagnoli) of bytes 0..45+L, u32 BE
//! ```
//!
//! The CRC is cheap bitrot detection that names a bad backend before any reconstruction;
//! it is not a security check (the HMAC inside the secret is). The decoder never panics and
//! rejects truncated and trailing data.

use crate::naming::{NAME_TAG_LEN, NameTag};
use crate::version::Version;
use crate::xorida::Threshold;

/// The four magic bytes.
pub const MAGIC: [u8; 4] = *b"VDBS";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the share.
pub const HEADER_LEN: usize = 45;
/// Bytes after the share.
pub const TRAILER_LEN: usize = 4;

/// What a secret holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A record.
    Record = 1,
    /// The keyring.
    Keyring = 2,
    /// The head of a segmented (large) record: its id, metadata and segment layout.
    Manifest = 3,
    /// One segment of a segmented record's data.
    Segment = 4,
    /// A tombstone: its "share" is the 32-byte MAC that authenticates a delete (not a
    /// share of any secret; docs/FORMAT.md section 14).
    Tombstone = 5,
}

/// Why bytes are not a valid envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a header and trailer.
    #[error("envelope truncated")]
    Truncated,
    /// Wrong magic bytes.
    #[error("not a VaultDB envelope (bad magic)")]
    BadMagic,
    /// A format version this code does not read.
    #[error("unsupported envelope format version {0}")]
    UnsupportedFormat(u8),
    /// An unknown kind byte.
    #[error("unknown envelope kind {0}")]
    UnknownKind(u8),
    /// K and N out of range.
    #[error("invalid threshold in envelope")]
    BadThreshold,
    /// x out of 1..=N.
    #[error("invalid share index in envelope")]
    BadIndex,
    /// The declared secret length does not match the bytes present.
    #[error("envelope length mismatch")]
    Length,
    /// The CRC does not match.
    #[error("envelope checksum mismatch")]
    Checksum,
}

/// The fields of an envelope other than the share bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the secret holds.
    pub kind: Kind,
    /// The threshold the secret was split with.
    pub threshold: Threshold,
    /// This share's x coordinate.
    pub x: u8,
    /// The version of the record (or keyring).
    pub version: Version,
    /// The record's name tag (zero for the keyring).
    pub tag: NameTag,
    /// The share's length: the secret's, or in a compact store the compact share's
    /// (docs/FORMAT.md section 16).
    pub secret_len: u32,
}

impl Header {
    /// The total envelope length.
    pub fn envelope_len(&self) -> usize {
        HEADER_LEN + self.secret_len as usize + TRAILER_LEN
    }

    /// A zeroed buffer of the envelope's length with this header written; fill the share
    /// part ([`share_mut`]) and then call [`seal`].
    pub fn new_buffer(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.envelope_len()];
        self.write_to(&mut buf);
        buf
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than the header.
    pub fn write_to(&self, buf: &mut [u8]) {
        buf[..4].copy_from_slice(&MAGIC);
        buf[4] = FORMAT_VERSION;
        buf[5] = self.kind as u8;
        buf[6] = self.threshold.k() as u8;
        buf[7] = self.threshold.n() as u8;
        buf[8] = self.x;
        buf[9..25].copy_from_slice(&self.version.to_bytes());
        buf[25..41].copy_from_slice(&self.tag.0);
        buf[41..45].copy_from_slice(&self.secret_len.to_be_bytes());
    }
}

/// The share part of a buffer from [`Header::new_buffer`].
pub fn share_mut(buf: &mut [u8]) -> &mut [u8] {
    let end = buf.len().saturating_sub(TRAILER_LEN);
    &mut buf[HEADER_LEN.min(end)..end]
}

/// Writes the CRC into a buffer from [`Header::new_buffer`].
pub fn seal(buf: &mut [u8]) {
    let end = buf.len().saturating_sub(TRAILER_LEN);
    let crc = crc32c(&buf[..end]);
    buf[end..].copy_from_slice(&crc.to_be_bytes());
}

/// Like [`seal`], given the CRC-32C of the share bytes from offset `from` to the end
/// (computed earlier, e.g. while the share was written): only the header and the first
/// `from` share bytes are read again.
///
/// # Panics
/// If `from` is beyond the share.
pub fn seal_with_tail(buf: &mut [u8], from: usize, tail_crc: u32) {
    let end = buf.len().saturating_sub(TRAILER_LEN);
    let split = HEADER_LEN + from;
    assert!(split <= end, "seal_with_tail: offset beyond the share");
    let head = crc32c(&buf[..split]);
    let crc = crc32c_combine(head, tail_crc, (end - split) as u64);
    buf[end..].copy_from_slice(&crc.to_be_bytes());
}

/// The CRC-32C (Castagnoli, as iSCSI uses it) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(bytes)
}

/// A CRC-32C computed piece by piece: [`Crc32c::update`] with consecutive pieces, then
/// [`Crc32c::value`] (equal to [`crc32c`] of their concatenation).
#[derive(Clone, Copy)]
pub struct Crc32c(crc_fast::Digest);

impl Crc32c {
    /// The CRC of nothing yet.
    pub fn new() -> Self {
        Self(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
    }

    /// Appends `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC of everything appended.
    pub fn value(&self) -> u32 {
        self.0.finalize() as u32
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc32c {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crc32c({:08x})", self.value())
    }
}

/// The CRC-32C of `a | b` from the CRC-32C of `a`, the CRC-32C of `b` and `b`'s length, in
/// about a hundred nanoseconds whatever the length: `crc_a` times x^(8 len_b) modulo the
/// polynomial, XOR `crc_b` (the method of zlib 1.2.12's `crc32_combine`, with a table of
/// x^(2^k)). `crc32c::crc32c_combine` squares 32x32 GF(2) matrices instead, tens of
/// microseconds per call: 10% of a 1 MiB put's CPU time for its three envelopes (`perf`,
/// 2026-12-06).
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    // x^(8 len_b) = the product of x^(2^k) over the bits k of 8 len_b (k >= 3).
    let mut shift = 1 << 31; // x^0, bit-reflected
    let mut bits = len_b;
    let mut k = 3;
    while bits != 0 {
        if bits & 1 == 1 {
            shift = mul_mod_p(X2N[k], shift);
        }
        bits >>= 1;
        k += 1;
    }
    mul_mod_p(shift, crc_a) ^ crc_b
}

/// The CRC-32C (Castagnoli) polynomial, bit-reflected, without its x^32 term.
const POLY: u32 = 0x82f6_3b78;

/// `a * b` modulo the polynomial, both bit-reflected (x^0 in the top bit), as CRC-32C
/// values are.
const fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut m = 1u32 << 31;
    while m != 0 {
        if a & m != 0 {
            product ^= b;
        }
        b = if b & 1 == 1 { (b >> 1) ^ POLY } else { b >> 1 };
        m >>= 1;
    }
    product
}

/// `X2N[k]` = x^(2^k) modulo the polynomial, bit-reflected: enough for any `u64` length in
/// bytes (8 len < 2^67).
const X2N: [u32; 67] = {
    let mut table = [0; 67];
    let mut p = 1 << 30; // x^1
    let mut k = 0;
    while k < table.len() {
        table[k] = p;
        p = mul_mod_p(p, p);
        k += 1;
    }
    table
};

/// Encodes a whole envelope.
pub fn encode(header: &Header, share: &[u8]) -> Vec<u8> {
    debug_assert_eq!(share.len(), header.secret_len as usize);
    let mut buf = header.new_buffer();
    share_mut(&mut buf).copy_from_slice(share);
    seal(&mut buf);
    buf
}

/// The kind byte of an envelope that [`decode`] already accepted (no checks beyond the
/// byte's value).
pub fn kind_of(bytes: &[u8]) -> Option<Kind> {
    match bytes.get(5)? {
        1 => Some(Kind::Record),
        2 => Some(Kind::Keyring),
        3 => Some(Kind::Manifest),
        4 => Some(Kind::Segment),
        5 => Some(Kind::Tombstone),
        _ => None,
    }
}

/// A decoded envelope borrowing its share bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The header fields.
    pub header: Header,
    /// The share bytes.
    pub share: &'a [u8],
}

/// Decodes and checks an envelope.
///
/// # Errors
/// A [`DecodeError`] for anything but a well-formed envelope with a matching CRC.
pub fn decode(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let env = decode_unchecked(bytes)?;
    verify_checksum(bytes)?;
    Ok(env)
}

/// Checks an envelope's CRC (its last four bytes, over all the others).
///
/// # Errors
/// [`DecodeError::Truncated`] if it is shorter than a trailer, [`DecodeError::Checksum`] if
/// the CRC does not match.
pub fn verify_checksum(bytes: &[u8]) -> Result<(), DecodeError> {
    let body = bytes.len().checked_sub(TRAILER_LEN).ok_or(DecodeError::Truncated)?;
    verify_checksum_of(bytes, crc32c(&bytes[..body]))
}

/// [`verify_checksum`] with the CRC-32C of every byte but the trailer already computed
/// (`body_crc`), in pieces perhaps ([`crc32c_combine`]).
///
/// # Errors
/// As [`verify_checksum`].
pub fn verify_checksum_of(bytes: &[u8], body_crc: u32) -> Result<(), DecodeError> {
    let Some(body_len) = bytes.len().checked_sub(TRAILER_LEN) else {
        return Err(DecodeError::Truncated);
    };
    let mut want = [0u8; 4];
    want.copy_from_slice(&bytes[body_len..]);
    if body_crc != u32::from_be_bytes(want) {
        return Err(DecodeError::Checksum);
    }
    Ok(())
}

/// [`decode`] without the CRC check, for a reader that checks it later
/// ([`verify_checksum`]) and uses nothing of the envelope before.
///
/// # Errors
/// A [`DecodeError`] for anything but a well-formed envelope (its CRC not looked at).
pub fn decode_unchecked(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let Some(body_len) = bytes.len().checked_sub(TRAILER_LEN) else {
        return Err(DecodeError::Truncated);
    };
    let body = &bytes[..body_len];
    let Some((head, share)) = body.split_at_checked(HEADER_LEN) else {
        return Err(DecodeError::Truncated);
    };
    if head[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if head[4] != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedFormat(head[4]));
    }
    let Some(kind) = kind_of(head) else {
        return Err(DecodeError::UnknownKind(head[5]));
    };
    let threshold = Threshold::new(usize::from(head[6]), usize::from(head[7]))
        .map_err(|_| DecodeError::BadThreshold)?;
    let x = head[8];
    if x == 0 || usize::from(x) > threshold.n() {
        return Err(DecodeError::BadIndex);
    }
    let mut version = [0u8; 16];
    version.copy_from_slice(&head[9..25]);
    let mut tag = [0u8; NAME_TAG_LEN];
    tag.copy_from_slice(&head[25..41]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&head[41..45]);
    let secret_len = u32::from_be_bytes(len);
    if secret_len as usize != share.len() {
        return Err(DecodeError::Length);
    }
    Ok(Envelope {
        header: Header {
            kind,
            threshold,
            x,
            version: Version::from_bytes(version),
            tag: NameTag(tag),
            secret_len,
        },
        share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<u8>) {
        let h = Header {
            kind: Kind::Record,
            threshold: Threshold::new(2, 3).unwrap(),
            x: 2,
            version: Version::from_parts(0x0102_0304_0506_0708, 0x1112_1314_1516_1718),
            tag: NameTag([0xaa; 16]),
            secret_len: 5,
        };
        (h, vec![1, 2, 3, 4, 5])
    }

    #[test]
    fn round_trip_and_layout() {
        let (h, share) = sample();
        let bytes = encode(&h, &share);
        assert_eq!(bytes.len(), HEADER_LEN + 5 + TRAILER_LEN);
        assert_eq!(&bytes[..9], b"VDBS\x01\x01\x02\x03\x02");
        assert_eq!(bytes[41..45], [0, 0, 0, 5]);
        let e = decode(&bytes).unwrap();
        assert_eq!(e.header, h);
        assert_eq!(e.share, &share[..]);
    }

    #[test]
    fn seal_with_tail_equals_seal() {
        for len in [64usize, 65, 100, 40_000, 200_000] {
            let h = Header { secret_len: len as u32, ..sample().0 };
            let mut a = h.new_buffer();
            for (i, b) in share_mut(&mut a).iter_mut().enumerate() {
                *b = (i * 7 + 3) as u8;
            }
            let mut b = a.clone();
            seal(&mut a);
            for from in [0, 1, 64, len] {
                let tail = crc32c::crc32c(&share_mut(&mut b)[from..]);
                seal_with_tail(&mut b, from, tail);
                assert_eq!(a, b, "len {len} from {from}");
            }
        }
    }

    /// crc-fast's CRC-32C equals the `crc32c` crate's (the format's checksum), whole and
    /// piece by piece, at lengths around its vector widths.
    #[test]
    fn crc_matches_crc32c_crate() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8).collect();
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        for len in [0usize, 1, 15, 16, 63, 64, 65, 255, 256, 257, 4095, 4096, 8192, 65_536, 70_000]
        {
            let want = crc32c::crc32c(&data[..len]);
            assert_eq!(crc32c(&data[..len]), want, "len {len}");
            let mut c = Crc32c::new();
            for piece in data[..len].chunks(8191) {
                c.update(piece);
            }
            assert_eq!(c.value(), want, "pieces, len {len}");
        }
    }

    /// The combination equals the CRC of the concatenation and the `crc32c` crate's own
    /// (matrix) combination, for lengths of every magnitude.
    #[test]
    fn crc_combine_matches_the_concatenation() {
        let data: Vec<u8> =
            (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for (a, b) in
            [(0, 0), (0, 5), (5, 0), (1, 1), (45, 64), (100, 1), (3, 262_144), (1000, 299_000)]
        {
            let (x, y) = (&data[..a], &data[a..a + b]);
            let want = crc32c::crc32c(&data[..a + b]);
            let got = crc32c_combine(crc32c::crc32c(x), crc32c::crc32c(y), b as u64);
            assert_eq!(got, want, "{a} + {b}");
        }
        for len in [1u64 << 20, 1 << 33, u64::MAX / 9, u64::MAX] {
            let (c1, c2) = (0x1234_5678, 0x9abc_def0);
            assert_eq!(crc32c_combine(c1, c2, len), crc32c::crc32c_combine(c1, c2, len as usize));
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let (h, share) = sample();
        let bytes = encode(&h, &share);
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode(&b).is_err(), "bit {i}");
        }
    }

    #[test]
    fn truncated_and_extended_are_rejected() {
        let (h, share) = sample();
        let bytes = encode(&h, &share);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn specific_errors() {
        let (h, share) = sample();
        let good = encode(&h, &share);
        let fix = |mut b: Vec<u8>| {
            seal(&mut b);
            b
        };
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(decode(&fix(b)), Err(DecodeError::BadMagic));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(decode(&fix(b)), Err(DecodeError::UnsupportedFormat(2)));
        let mut b = good.clone();
        b[5] = 9;
        assert_eq!(decode(&fix(b)), Err(DecodeError::UnknownKind(9)));
        let mut b = good.clone();
        b[6] = 1;
        assert_eq!(decode(&fix(b)), Err(DecodeError::BadThreshold));
        let mut b = good.clone();
        b[8] = 4;
        assert_eq!(decode(&fix(b)), Err(DecodeError::BadIndex));
        let mut b = good.clone();
        b[44] = 6;
        assert_eq!(decode(&fix(b)), Err(DecodeError::Length));
        let mut b = good;
        b[46] ^= 1;
        assert_eq!(decode(&b), Err(DecodeError::Checksum));
    }
}
