//! docs/FORMAT.md's worked example, recomputed from the code: if the format changes, this
//! test fails until the document is updated (`VAULTDB_PRINT_EXAMPLE=1 cargo test -p
//! vaultdb-core --test format_doc -- --nocapture` prints the new values).

use vaultdb_core::compact::{self, Compact};
use vaultdb_core::envelope::{self, Header, Kind};
use vaultdb_core::gf256::Kernel;
use vaultdb_core::naming::{KeySpace, NameTag, NamingKey, pad_id};
use vaultdb_core::padding::Padding;
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::secret::{self, Binding};
use vaultdb_core::wipe::SecretVec;
use vaultdb_core::{Record, Threshold, Version, Xorida};
use vaultdb_testkit::FormatDoc;

/// The worked example's record, sealed: where sections 12 and 16 both start.
struct Sealed {
    t: Threshold,
    naming: NamingKey,
    version: Version,
    record: Record,
    tag: NameTag,
    payload: Vec<u8>,
    secret: SecretVec,
    /// Every random byte of the example comes from this stream, in this order: mac_key
    /// (32 bytes, drawn by the seal), then what each section says.
    rng: CsRng,
}

impl Sealed {
    fn new() -> Self {
        let t = Threshold::new(2, 3).unwrap();
        let naming = NamingKey::from_bytes([0x11; 32]);
        let version = Version::from_parts(0x0006_2d1a_2b3c_4d5e, 0x0123_4567_89ab_cdef);
        let record = Record::new("user-42", br#"{"name":"Alice"}"#.to_vec());
        let tag = naming.tag(&record.id);
        let mut rng = CsRng::from_seed([0x42; 32]);
        let mut payload = Vec::new();
        record.encode_into(&mut payload).unwrap();
        let binding = Binding { kind: Kind::Record, tag, version, threshold: t };
        let secret = secret::seal(&binding, Padding::Padme, payload.len(), &mut rng, |b| {
            b.extend_from_slice(&payload);
            Ok(())
        })
        .unwrap();
        Self { t, naming, version, record, tag, payload, secret, rng }
    }
}

/// The envelope of the record's share 1 (x = 1), in hex; `secret_len` is the header's
/// (the secret's length; in compact mode, the share's).
fn envelope1(
    t: Threshold,
    version: Version,
    tag: NameTag,
    secret_len: usize,
    share: &[u8],
) -> String {
    let secret_len = secret_len as u32;
    let header = Header { kind: Kind::Record, threshold: t, x: 1, version, tag, secret_len };
    hex::encode(envelope::encode(&header, share))
}

/// (label, value) pairs of the worked example, in document order, split on `kernel`.
fn example(kernel: Kernel) -> Vec<(&'static str, String)> {
    let xorida = Xorida::with_kernel(kernel);
    let mut out = Vec::new();
    // After mac_key, the stream gives the coefficient R_1 for the secret, then R_1 for the
    // padded id.
    let Sealed { t, naming, version, record, tag, payload, secret, mut rng } = Sealed::new();
    out.push(("record", hex::encode(&payload)));
    out.push(("name_tag", hex::encode(tag.0)));
    out.push(("name_tag_text", tag.to_text()));
    out.push(("version_text", version.to_text()));
    out.push(("secret", hex::encode(&secret[..])));

    // R_1 is the next secret.len() bytes of the stream: read them from a second generator
    // with the same seed, past the 32 mac_key bytes.
    let mut coeff = vec![0u8; 32 + secret.len()];
    CsRng::from_seed([0x42; 32]).fill_bytes(&mut coeff);
    let coeff = coeff.split_off(32);
    out.push(("r1", hex::encode(&coeff)));
    let shares = xorida.split(t, &secret, &mut rng);
    for (i, s) in shares.iter().enumerate() {
        out.push((["share1", "share2", "share3"][i], hex::encode(s)));
    }
    let padded = pad_id(&record.id).unwrap();
    out.push(("padded_id", hex::encode(&padded[..])));
    let id_shares = xorida.split(t, &padded, &mut rng);
    let ks = KeySpace::new("vaultdb").unwrap();
    for (i, s) in id_shares.iter().enumerate() {
        out.push((["key1", "key2", "key3"][i], ks.share_key(tag, version, s).to_string()));
    }
    out.push(("envelope1", envelope1(t, version, tag, secret.len(), &shares[0])));

    // Section 14: the tombstone of the same record, deleted at a later version, computed
    // here from the section's formulas (HMAC-SHA256 directly), not by the client's code;
    // crates/vaultdb-core/src/client/tombstone.rs's test checks the code against the same.
    use hmac::{Hmac, Mac};
    let vt = Version::from_parts(0x0006_2d1a_2b3c_5000, 0x0f0e_0d0c_0b0a_0908);
    let tombstone_key = naming.derive("tombstones");
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(tombstone_key.as_bytes()).unwrap();
    mac.update(b"vaultdb/v1/tombstone\0");
    mac.update(&tag.0);
    mac.update(&vt.to_bytes());
    mac.update(&[2, 3]);
    let mac: [u8; 32] = mac.finalize().into_bytes().into();
    out.push(("tombstone_key", hex::encode(tombstone_key.as_bytes())));
    out.push(("tombstone_version_text", vt.to_text()));
    out.push(("tombstone_mac", hex::encode(mac)));
    out.push((
        "tombstone_name",
        ks.tombstone_key(tag, vt, &mac[..16].try_into().unwrap()).to_string(),
    ));
    let header =
        Header { kind: Kind::Tombstone, threshold: t, x: 2, version: vt, tag, secret_len: 32 };
    out.push(("tombstone_envelope2", hex::encode(envelope::encode(&header, &mac))));

    // Section 17: that delete's mark and the settled object certifying it, from the
    // section's tables; crates/vaultdb-core/src/client/marks.rs's test checks the code.
    use sha2::Digest;
    let mark_key = naming.derive("marks");
    let hmac = |label: &[u8], body: &[u8]| -> [u8; 32] {
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(mark_key.as_bytes()).unwrap();
        m.update(label);
        m.update(&tag.0);
        m.update(body);
        m.finalize().into_bytes().into()
    };
    let mut mark = b"VDBM\x01\x02".to_vec();
    mark.extend_from_slice(&vt.to_bytes());
    mark.extend_from_slice(&vt.micros().to_be_bytes());
    let mac = hmac(b"vaultdb/v1/mark\0", &mark);
    mark.extend_from_slice(&mac);
    let mut settled = b"VDBS\x01\x02".to_vec();
    settled.extend_from_slice(&vt.to_bytes());
    settled.extend_from_slice(&sha2::Sha256::digest(&mark));
    settled.extend_from_slice(&[0, 0, 0, 0, 0]);
    let mac = hmac(b"vaultdb/v1/settled\0", &settled);
    settled.extend_from_slice(&mac);
    out.push(("mark_key", hex::encode(mark_key.as_bytes())));
    out.push(("mark", hex::encode(&mark)));
    out.push(("settled", hex::encode(&settled)));
    out
}

/// Section 16's worked example: the record of section 12 in a compact store. The secret is
/// the same (it does not depend on the mode); the stream goes on with the AES key, then R_1
/// for the key, then R_1 for the padded id.
fn compact_example() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Sealed { t, version, record, tag, secret, mut rng, .. } = Sealed::new();
    // The key and its coefficient, read from a second generator past the 32 mac_key bytes.
    let mut stream = [0u8; 96];
    CsRng::from_seed([0x42; 32]).fill_bytes(&mut stream);
    out.push(("compact_key", hex::encode(&stream[32..64])));
    out.push(("compact_key_r1", hex::encode(&stream[64..96])));
    // The ciphertext from the format's description: the secret, zero-extended to K·S bytes,
    // XOR the AES-256-CTR keystream of the key (counter from zero).
    let s = compact::shard_len(t, secret.len());
    let mut cipher = secret.to_vec();
    cipher.resize(2 * s, 0);
    let mut keystream = vec![0u8; cipher.len()];
    CsRng::from_seed(stream[32..64].try_into().unwrap()).fill_bytes(&mut keystream);
    cipher.iter_mut().zip(&keystream).for_each(|(c, k)| *c ^= k);
    out.push(("compact_ciphertext", hex::encode(&cipher)));
    let shares = Compact::new().split(t, &secret, &mut rng).unwrap();
    for (i, share) in shares.iter().enumerate() {
        out.push((["compact_share1", "compact_share2", "compact_share3"][i], hex::encode(share)));
    }
    let padded = pad_id(&record.id).unwrap();
    let id_shares = Xorida::new().split(t, &padded, &mut rng);
    let ks = KeySpace::new("vaultdb").unwrap();
    out.push(("compact_object_key1", ks.share_key(tag, version, &id_shares[0]).to_string()));
    out.push(("compact_envelope1", envelope1(t, version, tag, shares[0].len(), &shares[0])));
    out
}

#[test]
fn worked_example_in_format_md_matches_the_code() {
    let kernels = Kernel::available();
    vaultdb_testkit::report_kernels("format_doc", &kernels);
    for kernel in kernels {
        check_example(kernel, example(kernel));
    }
    check_example(Kernel::best(), compact_example());
}

/// The example computed on `kernel` equals the document's.
fn check_example(kernel: Kernel, values: Vec<(&'static str, String)>) {
    FormatDoc::load().check(&values, &format!("on {}", kernel.isa()));
}
