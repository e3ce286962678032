//! The checks behind the `envelope`, `record`, `object_key` and `keyring` fuzz targets of
//! `fuzz/` (cargo-fuzz, libFuzzer): vaultdb-core's decoders of bytes a backend controls, and
//! their seed inputs.
//!
//! Each `check_*` function is the whole body of one fuzz target
//! (`fuzz/fuzz_targets/<target>.rs` is a one-liner calling it) and of the regression test
//! `tests/formats_corpus.rs`, which runs it, on stable Rust, over every committed input in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`. A check panics exactly when it
//! found a bug: a decoder of bytes a backend controls panicked, or a value it accepted does
//! not survive a round trip through the matching encoder. See docs/FUZZING.md.
//!
//! Every decoder accepts exactly one encoding per value: envelopes and object keys by
//! construction, the postcard payloads (records, manifests, keyrings) because their
//! decoders reject non-minimal varints and metadata keys out of order or repeated
//! (`canonical.rs`). So for all of them, bytes a decoder accepts must re-encode to exactly
//! the same bytes.

use std::collections::BTreeMap;

use vaultdb_core::Mode;
use vaultdb_core::backend::{Key, KeyPrefix, validate_key};
use vaultdb_core::envelope::{self, Header, Kind};
use vaultdb_core::keyring::{KEYRING_TAG, Keyring};
use vaultdb_core::manifest::{self, Manifest};
use vaultdb_core::naming::{self, BASE32, KeySpace, NameTag, NamingKey, ParsedKey};
use vaultdb_core::padding::Padding;
use vaultdb_core::record::Record;
use vaultdb_core::rng::CsRng;
use vaultdb_core::secret::{self, Binding};
use vaultdb_core::version::Version;
use vaultdb_core::xorida::{Threshold, Xorida};

/// The fuzz targets whose checks live here, as named in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 4] = ["envelope", "record", "object_key", "keyring"];

/// Runs the check of `target` (one of [`TARGETS`]) on `data`.
///
/// # Panics
/// If the check finds a bug, or `target` is not one of [`TARGETS`].
pub fn check(target: &str, data: &[u8]) {
    match target {
        "envelope" => check_envelope(data),
        "record" => check_record(data),
        "object_key" => check_object_key(data),
        "keyring" => check_keyring(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// The seed inputs of `target` (one of [`TARGETS`]) as `(file name, bytes)`, built with the
/// real encoders from a fixed random seed, so they are the same on every run. Empty for an
/// unknown target.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Seeds::default();
    match target {
        "envelope" => envelope_seeds(&mut out),
        "record" => record_seeds(&mut out),
        "object_key" => object_key_seeds(&mut out),
        "keyring" => keyring_seeds(&mut out),
        _ => {}
    }
    out.0
}

/// The naming key the `keyring` check offers as the configured (external) key, and that its
/// seeds of externally keyed keyrings were written with.
pub const FUZZ_NAMING_KEY: [u8; 32] = [0x11; 32];

/// The binding `check_envelope` opens arbitrary bytes with.
fn fixed_binding(kind: Kind) -> Binding {
    Binding {
        kind,
        tag: NameTag([3; 16]),
        version: Version::from_parts(0x0006_2d1a_2b3c_4d5e, 0x0123_4567_89ab_cdef),
        threshold: threshold(2, 3),
    }
}

fn threshold(k: usize, n: usize) -> Threshold {
    Threshold::new(k, n).expect("a valid threshold")
}

// ---------------------------------------------------------------------------------------
// Checks

/// `envelope::decode` never panics, and an envelope it accepts re-encodes to the same bytes
/// with `envelope::encode`. `secret::open` never panics either (on the input as a secret,
/// and on an accepted envelope's share).
pub fn check_envelope(data: &[u8]) {
    for kind in [Kind::Record, Kind::Keyring, Kind::Manifest, Kind::Segment] {
        if let Ok(payload) = secret::open(&fixed_binding(kind), data) {
            assert!(payload.len() + secret::SECRET_HEADER_LEN <= data.len());
        }
    }
    let Ok(env) = envelope::decode(data) else {
        return;
    };
    let h = env.header;
    assert_eq!(env.share.len(), h.secret_len as usize, "share length");
    assert_eq!(h.envelope_len(), data.len(), "envelope length");
    assert_eq!(envelope::kind_of(data), Some(h.kind), "kind byte");
    assert!(h.x >= 1 && usize::from(h.x) <= h.threshold.n(), "x out of 1..=N accepted");
    assert!(envelope::encode(&h, env.share) == data, "decode then encode changed the envelope");
    let binding = Binding { kind: h.kind, tag: h.tag, version: h.version, threshold: h.threshold };
    let _ = secret::open(&binding, env.share);
}

/// `Record::decode` and `Manifest::decode` never panic; what they accept round-trips
/// through `encode_into`; a manifest they accept has a consistent layout, and its layout
/// helpers (`segment_range`, `segments_for`, `segment_data`) stay in range.
pub fn check_record(data: &[u8]) {
    if let Ok(r) = Record::decode(data) {
        let mut buf = Vec::new();
        r.encode_into(&mut buf).expect("a decoded record encodes");
        assert!(buf == data, "decode then encode changed the record's bytes");
        let again = Record::decode(&buf).expect("an encoded record decodes");
        assert!(again == r, "record changed in a round trip");
        let mut buf2 = Vec::new();
        again.encode_into(&mut buf2).expect("a decoded record encodes");
        assert!(buf == buf2, "record encoding is not a fixed point");
    }
    if let Ok(m) = Manifest::decode(data) {
        check_manifest(&m, data);
    }
    // The input as a segment payload of a fixed 10,000-byte, 4 KiB-segment manifest.
    let fixed =
        Manifest::new("big".into(), None, BTreeMap::new(), 10_000, 4096).expect("a valid manifest");
    let index = data.first().map_or(0, |b| u32::from(b % 4));
    if let Ok(d) = manifest::segment_data(&fixed, index, data) {
        let want = fixed.segment_range(index);
        assert_eq!(d.len() as u64, want.end - want.start, "segment data length");
        assert!(data.len() == d.len() + manifest::SEGMENT_HEADER_LEN);
    }
}

fn check_manifest(m: &Manifest, data: &[u8]) {
    let mut buf = Vec::new();
    m.encode_into(&mut buf).expect("a decoded manifest encodes");
    assert!(buf == data, "decode then encode changed the manifest's bytes");
    let again = Manifest::decode(&buf).expect("an encoded manifest decodes");
    assert!(again == *m, "manifest changed in a round trip");
    let size = u64::from(m.segment_size);
    assert!(
        (manifest::MIN_SEGMENT_SIZE..=manifest::MAX_SEGMENT_SIZE)
            .contains(&(m.segment_size as usize)),
        "segment size out of range accepted"
    );
    assert_eq!(m.total_len.div_ceil(size), u64::from(m.segment_count), "segment count");
    let count = m.segment_count;
    for i in [0, 1, count.saturating_sub(1), count, u32::MAX] {
        let r = m.segment_range(i);
        assert!(r.start <= r.end && r.end <= m.total_len, "segment_range({i}) out of range");
        if i < count {
            assert!(r.end > r.start, "segment {i} of {count} is empty");
        }
    }
    // Ranges chosen by the input, clamped to the data, as the client clamps them.
    let word = |at: usize| {
        let mut b = [0u8; 8];
        for (i, x) in data.iter().skip(at).take(8).enumerate() {
            b[i] = *x;
        }
        u64::from_le_bytes(b)
    };
    let total = m.total_len;
    let (a, b) = (word(0) % (total + 1), word(8) % (total + 1));
    let range = a.min(b)..a.max(b);
    let segs = m.segments_for(&range);
    assert!(segs.start <= segs.end && segs.end <= count, "segments_for out of range");
    if range.start < range.end {
        assert!(segs.start < segs.end, "a non-empty range needs a segment");
        assert!(m.segment_range(segs.start).start <= range.start, "first segment too late");
        assert!(m.segment_range(segs.end - 1).end >= range.end, "last segment too early");
    } else {
        assert!(segs.is_empty(), "an empty range needs no segment");
    }
    let _ = manifest::segment_data(m, 0, data);
}

/// The object-key parsers: `KeySpace::parse` never panics, and a key it accepts is exactly
/// the key `share_key`, `segment_key` or `keyring_key` renders from what it parsed (and a
/// valid backend key); `validate_key`, `unpad_id`, `decode_base32` and the tag and version
/// text parsers never panic and round-trip what they accept; a prefix `KeySpace::new`
/// accepts yields keys that parse back.
pub fn check_object_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let key: &str = &text;
    let valid = validate_key(key).is_ok();
    assert_eq!(Key::new(key).is_ok(), valid, "Key::new and validate_key disagree");
    if valid {
        assert!(KeyPrefix::new(key).is_ok(), "a valid key is not a valid prefix");
    }
    for prefix in ["vaultdb", "", "tenant-7/vaultdb"] {
        let ks = KeySpace::new(prefix).expect("a valid prefix");
        check_parsed(&ks, key, valid);
    }
    if let Ok(ks) = KeySpace::new(key) {
        let tag = NameTag([0xa5; 16]);
        let version = Version::from_parts(u64::MAX, 0);
        for k in [
            ks.keyring_key(),
            ks.segment_key(tag, version, u32::MAX),
            ks.share_key(tag, version, &[0xff; 256]),
            ks.share_key(tag, version, &[0; 32]),
        ] {
            let ok = validate_key(k.as_str()).is_ok();
            assert!(ok, "a key under an accepted prefix is not a valid backend key: {k:?}");
            let parsed = ks.parse(k.as_str());
            assert!(parsed.is_some(), "a key under an accepted prefix does not parse: {k:?}");
            check_parsed(&ks, k.as_str(), ok);
        }
    }
    if let Some(id) = naming::unpad_id(data) {
        assert!(naming::validate_id(&id).is_ok(), "unpad_id returned an invalid id");
        let padded = naming::pad_id(&id).expect("an unpadded id pads");
        assert!(padded.as_slice() == data, "unpad_id then pad_id changed the bytes");
    }
    if let Some(bytes) = naming::decode_base32(key) {
        assert_eq!(BASE32.encode(&bytes), key, "base32 round trip");
    }
    if let Some(tag) = NameTag::from_text(key) {
        assert_eq!(tag.to_text(), key, "name tag text round trip");
    }
    if let Some(v) = Version::from_text(key) {
        assert_eq!(v.to_text(), key, "version text round trip");
        assert_eq!(Version::from_bytes(v.to_bytes()), v);
    }
    if naming::validate_id(key).is_ok() {
        let padded = naming::pad_id(key).expect("a valid id pads");
        assert_eq!(padded.len(), naming::padded_id_len(key.len()));
        assert_eq!(naming::unpad_id(&padded).as_deref(), Some(key), "pad_id then unpad_id");
    }
}

fn check_parsed(ks: &KeySpace, key: &str, valid: bool) {
    let rendered = match ks.parse(key) {
        None => return,
        Some(ParsedKey::Share { tag, version, id_share }) => {
            assert!(
                matches!(id_share.len(), 32 | 64 | 128 | 256),
                "id share of {} bytes accepted",
                id_share.len()
            );
            ks.share_key(tag, version, &id_share)
        }
        Some(ParsedKey::Segment { tag, version, index }) => ks.segment_key(tag, version, index),
        Some(ParsedKey::Tombstone { tag, version, mac }) => ks.tombstone_key(tag, version, &mac),
        Some(ParsedKey::Keyring) => ks.keyring_key(),
    };
    assert_eq!(rendered.as_str(), key, "a parsed key renders differently");
    assert!(valid, "parse accepted a key that validate_key rejects: {key:?}");
}

/// `Keyring::decode` never panics, with or without a configured naming key, and a keyring
/// it accepts round-trips through its encoder and matches its own configuration.
pub fn check_keyring(data: &[u8]) {
    let external = NamingKey::from_bytes(FUZZ_NAMING_KEY);
    for ext in [None, Some(&external)] {
        let Ok(k) = Keyring::decode(data, ext) else {
            continue;
        };
        assert_eq!(k.stores_key, ext.is_none(), "stores_key");
        if let Some(e) = ext {
            assert!(k.naming_key == *e, "a keyring accepted another configured key");
        }
        let mut buf = Vec::new();
        k.encode_into(&mut buf).expect("a decoded keyring encodes");
        assert!(buf == data, "decode then encode changed the keyring's bytes");
        let again = Keyring::decode(&buf, ext).expect("an encoded keyring decodes");
        assert!(again.naming_key == k.naming_key, "naming key changed in a round trip");
        assert_eq!(again.threshold, k.threshold, "threshold changed in a round trip");
        assert_eq!(again.backends, k.backends, "backends changed in a round trip");
        assert_eq!(again.stores_key, k.stores_key);
        let mut buf2 = Vec::new();
        again.encode_into(&mut buf2).expect("a decoded keyring encodes");
        assert!(buf == buf2, "keyring encoding is not a fixed point");
        assert!(k.check_config(k.threshold, &k.backends).is_ok(), "a keyring rejects itself");
    }
}

// ---------------------------------------------------------------------------------------
// Seeds

#[derive(Default)]
struct Seeds(Vec<(String, Vec<u8>)>);

impl Seeds {
    fn add(&mut self, name: &str, bytes: impl Into<Vec<u8>>) {
        self.0.push((format!("seed-{name}"), bytes.into()));
    }
}

fn rng() -> CsRng {
    CsRng::from_seed([42; 32])
}

fn sample_records() -> Vec<(&'static str, Record)> {
    let big: Vec<u8> = (0..6000u32).map(|i| (i * 31 % 251) as u8).collect();
    vec![
        (
            "json",
            Record::new("user-42", br#"{"name":"Alice"}"#.to_vec())
                .with_content_type(vaultdb_core::record::JSON_CONTENT_TYPE),
        ),
        ("plain", Record::new("user-42", br#"{"name":"Alice"}"#.to_vec())),
        ("empty", Record::new("e", Vec::new())),
        (
            "metadata",
            Record::new("notes.txt", b"any bytes at all".to_vec())
                .with_content_type("text/plain; charset=utf-8")
                .with_metadata("owner", "ops")
                .with_metadata("a", "")
                .with_metadata("z\u{e9}", "\u{1f600}"),
        ),
        ("unicode-id", Record::new("\u{fc}n\u{ef}c\u{f8}d\u{e9}/a b", vec![0, 1, 2, 255])),
        ("max-id", Record::new("x".repeat(naming::MAX_ID_LEN), vec![7; 3])),
        ("binary-6000", Record::new("bin", big)),
    ]
}

fn sample_manifests() -> Vec<(&'static str, Manifest)> {
    let meta: BTreeMap<String, String> =
        [("k".to_owned(), "v".to_owned()), ("owner".to_owned(), "ops".to_owned())].into();
    let m = |id: &str, ct: Option<&str>, meta: &BTreeMap<String, String>, total, size| {
        Manifest::new(id.to_owned(), ct.map(str::to_owned), meta.clone(), total, size)
            .expect("a valid manifest")
    };
    vec![
        ("10000-by-4096", m("big", Some("x/y"), &BTreeMap::new(), 10_000, 4096)),
        ("empty", m("big", None, &BTreeMap::new(), 0, manifest::MIN_SEGMENT_SIZE)),
        ("1gib-segments", m("huge", None, &meta, 5 << 30, manifest::MAX_SEGMENT_SIZE)),
        ("default-size", m("movie.mkv", Some("video/x-matroska"), &meta, 1 << 33, 4 << 20)),
        ("max-count", m("m", None, &BTreeMap::new(), u64::from(u32::MAX) << 10, 1024)),
    ]
}

fn encode_record(r: &Record) -> Vec<u8> {
    let mut buf = Vec::new();
    r.encode_into(&mut buf).expect("a sample record encodes");
    buf
}

fn encode_manifest(m: &Manifest) -> Vec<u8> {
    let mut buf = Vec::new();
    m.encode_into(&mut buf).expect("a sample manifest encodes");
    buf
}

fn sample_keyrings() -> Vec<(&'static str, Keyring)> {
    let ids = |n: usize| (1..=n).map(|i| format!("disk-{i}")).collect::<Vec<_>>();
    vec![
        (
            "stored-2of3",
            Keyring {
                naming_key: NamingKey::from_bytes([0x5a; 32]),
                threshold: threshold(2, 3),
                backends: ids(3),
                stores_key: true,
                mode: Mode::Shamir,
            },
        ),
        (
            "external-2of3",
            Keyring {
                naming_key: NamingKey::from_bytes(FUZZ_NAMING_KEY),
                threshold: threshold(2, 3),
                backends: vec!["aws".into(), "gcp".into(), "azure".into()],
                stores_key: false,
                mode: Mode::Shamir,
            },
        ),
        (
            "stored-3of5",
            Keyring {
                naming_key: NamingKey::from_bytes([0xc3; 32]),
                threshold: threshold(3, 5),
                backends: ids(5),
                stores_key: true,
                mode: Mode::Shamir,
            },
        ),
        (
            "stored-2of255",
            Keyring {
                naming_key: NamingKey::from_bytes([1; 32]),
                threshold: threshold(2, 255),
                backends: ids(255),
                stores_key: true,
                mode: Mode::Shamir,
            },
        ),
    ]
}

fn encode_keyring(k: &Keyring) -> Vec<u8> {
    let mut buf = Vec::new();
    k.encode_into(&mut buf).expect("a sample keyring encodes");
    buf
}

/// Seals `payload` like the client does and returns the envelopes of shares 1 and N.
fn envelopes(binding: &Binding, payload: &[u8], rng: &mut CsRng) -> Vec<Vec<u8>> {
    let secret = secret::seal(binding, Padding::Padme, payload.len(), rng, |b| {
        b.extend_from_slice(payload);
        Ok(())
    })
    .expect("a sample secret seals");
    let t = binding.threshold;
    let shares = Xorida::new().split(t, &secret, rng);
    [0, t.n() - 1]
        .into_iter()
        .map(|i| {
            let h = Header {
                kind: binding.kind,
                threshold: t,
                x: (i + 1) as u8,
                version: binding.version,
                tag: binding.tag,
                secret_len: secret.len() as u32,
            };
            envelope::encode(&h, &shares[i])
        })
        .collect()
}

fn envelope_seeds(out: &mut Seeds) {
    let mut rng = rng();
    let key = NamingKey::from_bytes([0x11; 32]);
    let version = Version::from_parts(0x0006_2d1a_2b3c_4d5e, 0x0123_4567_89ab_cdef);
    let records = sample_records();
    for (t, (name, r)) in [(2, 3), (3, 5), (2, 2), (2, 3)].iter().zip(&records) {
        let b = Binding {
            kind: Kind::Record,
            tag: key.tag(&r.id),
            version,
            threshold: threshold(t.0, t.1),
        };
        for (i, e) in envelopes(&b, &encode_record(r), &mut rng).into_iter().enumerate() {
            out.add(&format!("record-{name}-{}of{}-{i}", t.0, t.1), e);
        }
    }
    let (_, m) = &sample_manifests()[0];
    let tag = key.tag(&m.id);
    let b = Binding { kind: Kind::Manifest, tag, version, threshold: threshold(2, 3) };
    for (i, e) in envelopes(&b, &encode_manifest(m), &mut rng).into_iter().enumerate() {
        out.add(&format!("manifest-{i}"), e);
    }
    let mut seg = manifest::segment_header(2, 3).to_vec();
    seg.extend_from_slice(&[7; 1808]);
    let b = Binding { kind: Kind::Segment, ..b };
    for (i, e) in envelopes(&b, &seg, &mut rng).into_iter().enumerate() {
        out.add(&format!("segment-{i}"), e);
    }
    let (_, k) = &sample_keyrings()[0];
    let b = Binding { kind: Kind::Keyring, tag: KEYRING_TAG, version, threshold: k.threshold };
    let keyring = envelopes(&b, &encode_keyring(k), &mut rng);
    for (i, e) in keyring.iter().enumerate() {
        out.add(&format!("keyring-{i}"), e.clone());
    }
    // A sealed secret as it is rebuilt (the input `check_envelope` opens as a secret).
    let b = fixed_binding(Kind::Record);
    let secret = secret::seal(&b, Padding::Padme, 0, &mut rng, |buf| records[0].1.encode_into(buf))
        .expect("a sample secret seals");
    out.add("secret-record", secret.to_vec());
    // Near misses: truncated, extended, a flipped CRC, the smallest envelope.
    let good = &keyring[0];
    out.add("bad-truncated", &good[..good.len() - 1]);
    let mut longer = good.clone();
    longer.push(0);
    out.add("bad-extended", longer);
    let mut crc = good.clone();
    let last = crc.len() - 1;
    crc[last] ^= 1;
    out.add("bad-crc", crc);
    let h = Header {
        kind: Kind::Record,
        threshold: threshold(2, 2),
        x: 2,
        version: Version::from_parts(0, 0),
        tag: NameTag([0; 16]),
        secret_len: 0,
    };
    out.add("empty-share", envelope::encode(&h, &[]));
}

fn record_seeds(out: &mut Seeds) {
    for (name, r) in sample_records() {
        out.add(&format!("record-{name}"), encode_record(&r));
    }
    for (name, m) in sample_manifests() {
        out.add(&format!("manifest-{name}"), encode_manifest(&m));
    }
    let mut trailing = encode_record(&sample_records()[0].1);
    trailing.push(0);
    out.add("bad-record-trailing", trailing);
    let mut inconsistent = sample_manifests()[0].1.clone();
    inconsistent.segment_count += 1;
    out.add("bad-manifest-count", encode_manifest(&inconsistent));
    let mut seg = manifest::segment_header(2, 3).to_vec();
    seg.extend_from_slice(&[7; 1808]);
    out.add("segment-payload-2of3", seg);
}

fn object_key_seeds(out: &mut Seeds) {
    let key = NamingKey::from_bytes([0x11; 32]);
    let tag = key.tag("user-42");
    let version = Version::from_parts(0x0006_2d1a_2b3c_4d5e, 0x0123_4567_89ab_cdef);
    let mut rng = rng();
    let padded = naming::pad_id("user-42").expect("a valid id");
    let id_shares = Xorida::new().split(threshold(2, 3), &padded, &mut rng);
    for (p, prefix) in [("default", "vaultdb"), ("root", ""), ("nested", "tenant-7/vaultdb")] {
        let ks = KeySpace::new(prefix).expect("a valid prefix");
        out.add(&format!("{p}-share"), ks.share_key(tag, version, &id_shares[0]).to_string());
        out.add(&format!("{p}-segment"), ks.segment_key(tag, version, 0x1f).to_string());
        out.add(&format!("{p}-keyring"), ks.keyring_key().to_string());
    }
    let ks = KeySpace::new("vaultdb").expect("a valid prefix");
    let long = naming::pad_id(&"y".repeat(200)).expect("a valid id");
    out.add("share-256", ks.share_key(tag, version, &long).to_string());
    out.add("record-prefix", ks.record_prefix(tag).to_string());
    let share = ks.share_key(tag, version, &id_shares[1]).to_string();
    out.add("bad-uppercase", share.to_uppercase());
    out.add("bad-id-share-33", ks.share_key(tag, version, &[1; 33]).to_string());
    out.add("bad-segment-index", format!("{}-0000001G", &share[..share.find('.').unwrap_or(0)]));
    for (name, bad) in [
        ("bad-dotdot", "vaultdb/r/../keyring"),
        ("bad-empty-segment", "vaultdb//keyring"),
        ("bad-space", "vaultdb/r/a b"),
        ("bad-non-ascii", "vaultdb/r/\u{e9}"),
    ] {
        out.add(name, bad);
    }
    out.add("padded-id-user-42", padded.to_vec());
    out.add("padded-id-200", long.to_vec());
    out.add("base32-foobar", "cpnmuoj1e8");
    out.add("tag-text", tag.to_text());
    out.add("version-text", version.to_text());
}

fn keyring_seeds(out: &mut Seeds) {
    for (name, k) in sample_keyrings() {
        out.add(&format!("keyring-{name}"), encode_keyring(&k));
    }
    let mut bad = encode_keyring(&sample_keyrings()[0].1);
    bad[0] = 2;
    out.add("bad-format", bad);
}
