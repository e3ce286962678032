//! The secret: what is split. It carries its own integrity check.
//!
//! ```text
//! secret = mac_key[32] | tag[32] | payload_len (u64 BE) | payload | zero padding
//! tag    = HMAC-SHA256(mac_key, label | name_tag[16] | version[16] | K | N
//!                               | payload_len (u64 BE) | payload)
//! label  = "vaultdb/v1/record\0", "vaultdb/v1/keyring\0", "vaultdb/v1/manifest\0"
//!          or "vaultdb/v1/segment\0" (by envelope kind)
//! ```
//!
//! `mac_key` is fresh random per write and travels inside the secret, so only someone who
//! holds K shares can know it. A backend that alters its share shifts the rebuilt mac_key,
//! tag and payload by amounts it chooses but cannot predict the effect of on HMAC, so the
//! check fails. Binding name tag, version, K and N stops a backend from serving another
//! record's or another version's share in place of the right one.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::envelope::Kind;
use crate::error::{Result, VaultError};
use crate::naming::NameTag;
use crate::padding::Padding;
use crate::rng::RandomSource;
use crate::version::Version;
use crate::wipe::SecretVec;
use crate::xorida::Threshold;

/// Bytes before the payload: mac_key, tag, payload_len.
pub const SECRET_HEADER_LEN: usize = 72;

/// What the MAC binds besides the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Record or keyring.
    pub kind: Kind,
    /// The record's name tag (zero for the keyring).
    pub tag: NameTag,
    /// The version being written or read.
    pub version: Version,
    /// The threshold.
    pub threshold: Threshold,
}

impl Binding {
    fn label(&self) -> &'static [u8] {
        match self.kind {
            Kind::Record => b"vaultdb/v1/record\0",
            Kind::Keyring => b"vaultdb/v1/keyring\0",
            Kind::Manifest => b"vaultdb/v1/manifest\0",
            Kind::Segment => b"vaultdb/v1/segment\0",
            // Never sealed: a tombstone holds no secret. Distinct from every other label so
            // that no MAC of one kind can pass for another's.
            Kind::Tombstone => b"vaultdb/v1/tombstone\0",
        }
    }

    fn mac(&self, mac_key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac_before_payload(mac_key, payload.len());
        mac.update(payload);
        mac
    }

    /// The MAC over everything before a payload of `payload_len` bytes.
    fn mac_before_payload(&self, mac_key: &[u8], payload_len: usize) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(mac_key).expect("HMAC accepts any key length");
        mac.update(self.label());
        mac.update(&self.tag.0);
        mac.update(&self.version.to_bytes());
        mac.update(&[self.threshold.k() as u8, self.threshold.n() as u8]);
        mac.update(&(payload_len as u64).to_be_bytes());
        mac
    }
}

/// Builds a secret around a payload that `write_payload` appends to the buffer it is given
/// (so the payload is written once, in place). `size_hint` is the expected payload size.
///
/// # Errors
/// Whatever `write_payload` returns.
pub fn seal(
    binding: &Binding,
    padding: Padding,
    size_hint: usize,
    rng: &mut dyn RandomSource,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<SecretVec> {
    let mut buf = seal_untagged(padding, size_hint, rng, write_payload)?;
    let tag = tag_of(binding, &buf);
    buf[TAG_RANGE].copy_from_slice(&tag);
    Ok(buf)
}

/// Where the tag sits in a secret.
pub const TAG_RANGE: std::ops::Range<usize> = 32..64;

/// Like [`seal`], but leaves the tag bytes ([`TAG_RANGE`]) zero. Splitting is linear, so a
/// caller may split this secret while it computes [`tag_of`] on another thread, and then add
/// (XOR) the tag into every share at [`TAG_RANGE`]: the result equals splitting the tagged
/// secret with the same random bytes.
///
/// # Errors
/// Whatever `write_payload` returns.
pub fn seal_untagged(
    padding: Padding,
    size_hint: usize,
    rng: &mut dyn RandomSource,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<SecretVec> {
    let mut buf =
        SecretVec::with_capacity(padding.padded_len(SECRET_HEADER_LEN.saturating_add(size_hint)));
    buf.resize(SECRET_HEADER_LEN, 0);
    write_payload(&mut buf)?;
    let mut mac_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut *mac_key);
    finish_untagged(&mut buf, padding, &mac_key);
    Ok(buf)
}

/// Completes an untagged secret whose payload follows [`SECRET_HEADER_LEN`] bytes of room in
/// `buf`: writes the MAC key and the payload's length into the header (the tag stays zero)
/// and pads.
fn finish_untagged(buf: &mut SecretVec, padding: Padding, mac_key: &[u8; 32]) {
    let payload_len = buf.len() - SECRET_HEADER_LEN;
    buf[..32].copy_from_slice(mac_key);
    buf[64..72].copy_from_slice(&(payload_len as u64).to_be_bytes());
    let padded = padding.padded_len(buf.len());
    buf.resize(padded, 0);
}

/// The untagged secret ([`seal_untagged`]) whose payload is `parts`, concatenated, with
/// `mac_key` as its first 32 bytes. With the key drawn first, the MAC can be computed from
/// the parts themselves ([`tag_of_parts`]) while this copies them.
pub fn untagged_from_parts(padding: Padding, mac_key: &[u8; 32], parts: &[&[u8]]) -> SecretVec {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let buf = SecretVec::with_capacity(padding.padded_len(SECRET_HEADER_LEN + payload_len));
    untagged_from_parts_in(buf, padding, mac_key, parts)
}

/// [`untagged_from_parts`] in `buf` (emptied first; with room for the whole secret, it is
/// not reallocated): a caller may allocate on one thread and fill on another.
pub fn untagged_from_parts_in(
    mut buf: SecretVec,
    padding: Padding,
    mac_key: &[u8; 32],
    parts: &[&[u8]],
) -> SecretVec {
    buf.clear();
    buf.resize(SECRET_HEADER_LEN, 0);
    for part in parts {
        buf.extend_from_slice(part);
    }
    finish_untagged(&mut buf, padding, mac_key);
    buf
}

/// The tag of the secret [`untagged_from_parts`] builds from `mac_key` and `parts`, computed
/// from the parts (equal to [`tag_of`] of that secret).
pub fn tag_of_parts(binding: &Binding, mac_key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let mut mac = binding.mac_before_payload(mac_key, payload_len);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The tag of a secret built by [`seal_untagged`] or [`untagged_from_parts`] (its tag bytes
/// are ignored).
///
/// # Panics
/// If `secret` was not built by [`seal_untagged`] (shorter than its header or its length
/// field out of range).
pub fn tag_of(binding: &Binding, secret: &[u8]) -> [u8; 32] {
    let mut len = [0u8; 8];
    len.copy_from_slice(&secret[64..72]);
    let payload_len = u64::from_be_bytes(len) as usize;
    let payload = &secret[SECRET_HEADER_LEN..SECRET_HEADER_LEN + payload_len];
    binding.mac(&secret[..32], payload).finalize().into_bytes().into()
}

/// Checks a rebuilt secret and returns its payload.
///
/// # Errors
/// `HMAC_FAILED` if the length field is impossible, the tag does not verify (checked in
/// constant time) or the padding is not all zero.
pub fn open<'a>(binding: &Binding, secret: &'a [u8]) -> Result<&'a [u8]> {
    let fail = VaultError::hmac_failed;
    let Some((head, rest)) = secret.split_at_checked(SECRET_HEADER_LEN) else {
        return Err(fail("secret shorter than its header"));
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[64..72]);
    let payload_len = u64::from_be_bytes(len);
    let Some((payload, padding)) =
        usize::try_from(payload_len).ok().and_then(|n| rest.split_at_checked(n))
    else {
        return Err(fail("payload length field out of range"));
    };
    binding
        .mac(&head[..32], payload)
        .verify_slice(&head[32..64])
        .map_err(|_| fail("HMAC-SHA256 tag mismatch"))?;
    if padding.iter().fold(0u8, |acc, &b| acc | b) != 0 {
        return Err(fail("non-zero padding"));
    }
    Ok(payload)
}

/// [`open`] of a secret of `total` bytes that arrives as consecutive chunks, the first
/// holding the whole header (a rebuild hands them over as it finishes them): the same checks
/// in the same order, with the same errors. Returns the payload's length.
///
/// # Errors
/// As [`open`]; also `HMAC_FAILED` if the chunks end before `total` bytes or the first is
/// shorter than the header.
pub fn open_chunks<'a>(
    binding: &Binding,
    total: usize,
    mut chunks: impl Iterator<Item = &'a [u8]>,
) -> Result<usize> {
    let fail = VaultError::hmac_failed;
    let first = chunks.next().unwrap_or_default();
    if first.len() < SECRET_HEADER_LEN || total < first.len() {
        return Err(fail("secret shorter than its header"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&first[64..72]);
    let Some(payload_len) =
        usize::try_from(u64::from_be_bytes(len)).ok().filter(|&n| n <= total - SECRET_HEADER_LEN)
    else {
        return Err(fail("payload length field out of range"));
    };
    let payload = SECRET_HEADER_LEN..SECRET_HEADER_LEN + payload_len;
    let mut mac = binding.mac_before_payload(&first[..32], payload_len);
    let mut padding = 0u8;
    let mut at = 0;
    for chunk in std::iter::once(first).chain(chunks) {
        let (from, to) = (at, at + chunk.len());
        let (start, end) = (from.max(payload.start), to.min(payload.end));
        if start < end {
            mac.update(&chunk[start - from..end - from]);
        }
        let pad = from.max(payload.end);
        if pad < to {
            padding |= chunk[pad - from..].iter().fold(0u8, |acc, &b| acc | b);
        }
        at = to;
    }
    if at != total {
        return Err(fail("secret shorter than its length"));
    }
    mac.verify_slice(&first[32..64]).map_err(|_| fail("HMAC-SHA256 tag mismatch"))?;
    if padding != 0 {
        return Err(fail("non-zero padding"));
    }
    Ok(payload_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CsRng;

    fn binding() -> Binding {
        Binding {
            kind: Kind::Record,
            tag: NameTag([5; 16]),
            version: Version::from_parts(1, 2),
            threshold: Threshold::new(2, 3).unwrap(),
        }
    }

    fn sealed(payload: &[u8]) -> SecretVec {
        let mut rng = CsRng::from_seed([1; 32]);
        seal(&binding(), Padding::Padme, payload.len(), &mut rng, |b| {
            b.extend_from_slice(payload);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn round_trip_and_padding() {
        for n in [0usize, 1, 100, 1000, 70_000] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let s = sealed(&payload);
            assert_eq!(s.len(), Padding::Padme.padded_len(SECRET_HEADER_LEN + n));
            assert_eq!(open(&binding(), &s).unwrap(), &payload[..]);
        }
    }

    #[test]
    fn any_bit_flip_fails_the_check() {
        let s = sealed(b"hello, world: a payload of some length");
        for i in 0..s.len() * 8 {
            let mut t = s.to_vec();
            t[i / 8] ^= 1 << (i % 8);
            let e = open(&binding(), &t).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::HmacFailed, "bit {i}");
        }
    }

    #[test]
    fn binding_is_checked() {
        let s = sealed(b"data");
        let mut other = binding();
        other.version = Version::from_parts(1, 3);
        assert!(open(&other, &s).is_err());
        let mut other = binding();
        other.tag = NameTag([6; 16]);
        assert!(open(&other, &s).is_err());
        let mut other = binding();
        other.threshold = Threshold::new(2, 4).unwrap();
        assert!(open(&other, &s).is_err());
        let mut other = binding();
        other.kind = Kind::Keyring;
        assert!(open(&other, &s).is_err());
        assert!(open(&binding(), &s[..10]).is_err());
        assert!(open(&binding(), &[]).is_err());
    }

    /// A secret built from parts, with its tag computed from the parts, is the secret
    /// [`seal`] builds around their concatenation (the key drawn from the same generator).
    #[test]
    fn parts_build_what_seal_builds() {
        for split in [0usize, 1, 17, 40] {
            let payload: Vec<u8> = (0..40u8).collect();
            let (a, b) = payload.split_at(split);
            let whole = sealed(&payload);
            let mut key = [0u8; 32];
            CsRng::from_seed([1; 32]).fill_bytes(&mut key);
            let parts: [&[u8]; 3] = [a, &[], b];
            let mut s = untagged_from_parts(Padding::Padme, &key, &parts);
            assert_eq!(s[TAG_RANGE], [0; 32]);
            s[TAG_RANGE].copy_from_slice(&tag_of_parts(&binding(), &key, &parts));
            assert_eq!(*s, *whole, "split at {split}");
            assert_eq!(tag_of(&binding(), &s), tag_of_parts(&binding(), &key, &parts));
        }
    }

    /// What a check answered: the payload's length or the error's text.
    fn verdict(r: Result<usize>) -> std::result::Result<usize, String> {
        r.map_err(|e| {
            assert_eq!(e.code(), crate::ErrorCode::HmacFailed);
            e.to_string()
        })
    }

    proptest::proptest! {
        /// Checking a secret chunk by chunk answers what checking it whole answers, for
        /// intact secrets and for ones with a flipped bit or a forged length field.
        #[test]
        fn chunked_open_answers_as_open_does(
            n in 0usize..3000,
            chunk in SECRET_HEADER_LEN..700,
            flip in proptest::option::of(0usize..1 << 20),
            length in proptest::option::of(0u64..4000),
        ) {
            let payload: Vec<u8> = (0..n).map(|i| (i * 31) as u8).collect();
            let mut s = sealed(&payload).to_vec();
            if let Some(bit) = flip {
                let bit = bit % (s.len() * 8);
                s[bit / 8] ^= 1 << (bit % 8);
            }
            if let Some(len) = length {
                s[64..72].copy_from_slice(&len.to_be_bytes());
            }
            let whole = verdict(open(&binding(), &s).map(<[u8]>::len));
            let chunked = verdict(open_chunks(&binding(), s.len(), s.chunks(chunk)));
            proptest::prop_assert_eq!(&chunked, &whole);
            // Chunks that stop short never pass.
            let short = s.len() - chunk.min(s.len() - SECRET_HEADER_LEN).max(1);
            let cut = open_chunks(&binding(), s.len(), s[..short].chunks(chunk));
            proptest::prop_assert!(cut.is_err());
        }
    }
}
