//! Every decoder of bytes a backend (or a user) controls returns an error on bad input and
//! never panics: envelopes, secrets, records, object keys and ids. Random inputs, and
//! mutations of valid encodings (the interesting neighbourhood for a decoder).

use proptest::prelude::*;
use vaultdb_core::envelope::{self, Header, Kind};
use vaultdb_core::naming::{KeySpace, NameTag, NamingKey, unpad_id};
use vaultdb_core::padding::Padding;
use vaultdb_core::rng::CsRng;
use vaultdb_core::secret::{self, Binding};
use vaultdb_core::{Record, Threshold, Version};

fn valid_envelope(share: &[u8]) -> Vec<u8> {
    let h = Header {
        kind: Kind::Record,
        threshold: Threshold::new(2, 3).unwrap(),
        x: 1,
        version: Version::from_parts(1, 2),
        tag: NameTag([3; 16]),
        secret_len: share.len() as u32,
    };
    envelope::encode(&h, share)
}

fn binding() -> Binding {
    Binding {
        kind: Kind::Record,
        tag: NameTag([3; 16]),
        version: Version::from_parts(1, 2),
        threshold: Threshold::new(2, 3).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = envelope::decode(&bytes);
        let _ = Record::decode(&bytes);
        let _ = secret::open(&binding(), &bytes);
        let _ = unpad_id(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let ks = KeySpace::new("vaultdb").unwrap();
        let _ = ks.parse(&text);
        let _ = ks.parse(&format!("vaultdb/r/{text}"));
    }

    #[test]
    fn mutated_envelopes_are_rejected(
        share in proptest::collection::vec(any::<u8>(), 0..64),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let good = valid_envelope(&share);
        prop_assert!(envelope::decode(&good).is_ok());
        // Replace one byte with a different value: always rejected (CRC or a field check).
        let mut bad = good.clone();
        let i = pos.index(bad.len());
        prop_assume!(bad[i] != byte);
        bad[i] = byte;
        prop_assert!(envelope::decode(&bad).is_err());
        // Any strict prefix is rejected, and so is any extension.
        let n = cut.index(good.len());
        prop_assert!(envelope::decode(&good[..n]).is_err());
        let mut longer = good.clone();
        longer.push(byte);
        prop_assert!(envelope::decode(&longer).is_err());
    }

    #[test]
    fn mutated_records_never_panic_and_round_trip_when_valid(
        id in "[a-z0-9@.-]{1,40}",
        data in proptest::collection::vec(any::<u8>(), 0..200),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let r = Record::new(id, data);
        let mut buf = Vec::new();
        r.encode_into(&mut buf).unwrap();
        prop_assert_eq!(Record::decode(&buf).unwrap(), r);
        let i = pos.index(buf.len());
        buf[i] = byte;
        let _ = Record::decode(&buf);
    }

    #[test]
    fn mutated_secrets_fail_the_mac(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut rng = CsRng::from_seed([9; 32]);
        let s = secret::seal(&binding(), Padding::Padme, payload.len(), &mut rng, |b| {
            b.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();
        prop_assert_eq!(secret::open(&binding(), &s).unwrap(), &payload[..]);
        let mut bad = s.to_vec();
        let i = pos.index(bad.len());
        bad[i] ^= flip;
        prop_assert!(secret::open(&binding(), &bad).is_err());
    }

    #[test]
    fn keys_from_a_listing_parse_only_when_exact(
        id in "[ -~]{1,60}",
        junk in "[ -~]{0,10}",
    ) {
        let ks = KeySpace::new("vaultdb").unwrap();
        let tag = NamingKey::from_bytes([1; 32]).tag(&id);
        let v = Version::from_parts(5, 6);
        let key = ks.share_key(tag, v, &[0u8; 32]);
        prop_assert!(ks.parse(key.as_str()).is_some());
        if !junk.is_empty() {
            let extended = format!("{key}{junk}");
            // Appending to the id share either breaks its base32 or its length class.
            prop_assert!(ks.parse(&extended).is_none() || junk.chars().all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c)));
        }
    }
}
