//! docs/FORMAT.md section 13 (how `FsBackend` maps keys to files), its worked example
//! recomputed from the code: if the mapping changes, this test fails until the document is
//! updated (`VAULTDB_PRINT_EXAMPLE=1 cargo test -p vaultdb-fs --test format_doc --
//! --nocapture` prints the new values). Every path is also checked on disk: a put creates
//! exactly that file, and a listing gives the key back.

use std::path::{Component, Path};

use vaultdb_core::backend::StorageBackendExt;
use vaultdb_core::naming::{KeySpace, NamingKey, pad_id};
use vaultdb_core::rng::CsRng;
use vaultdb_core::{PutMode, StorageBackend, Threshold, Version, Xorida};
use vaultdb_fs::{FsBackend, TEMP_DIR};
use vaultdb_testkit::FormatDoc;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` as hex, 64 digits a line, as the document wraps it.
fn wrapped_hex(bytes: &[u8]) -> String {
    let h = hex(bytes);
    let lines: Vec<&str> =
        h.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    lines.join("\n")
}

/// The path of `key`'s file relative to the backend's root, its components joined by `/`.
fn relative_path(backend: &FsBackend, key: &str) -> String {
    let path = backend.object_path(&vaultdb_core::Key::new(key).unwrap());
    let rel = path.strip_prefix(backend.root()).unwrap();
    let comps: Vec<String> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().unwrap().to_owned(),
            other => panic!("unexpected path component {other:?}"),
        })
        .collect();
    comps.join("/")
}

/// The document's wrapping of a key or path: a line break after a `/` when the next
/// component would take the line past 96 characters (100 with the document's indent). A
/// component longer than that stays whole. The test joins the lines back without separators.
fn wrapped_path(path: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for comp in path.split_inclusive('/') {
        if line > 0 && line + comp.len() > 96 {
            out.push('\n');
            line = 0;
        }
        out.push_str(comp);
        line += comp.len();
    }
    out
}

/// The file's components below `<tag>/`, as body lengths and suffixes: `120.p/12.o`.
fn last_segment_layout(backend: &FsBackend, key: &str) -> String {
    let rel = relative_path(backend, key);
    let comps: Vec<&str> = rel.split('/').skip(3).collect();
    comps
        .iter()
        .map(|c| {
            let (body, suffix) = c.rsplit_once('.').unwrap();
            format!("{}.{suffix}", body.len())
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The (label, value) pairs of the example, in document order, and each key it names with
/// the label of its path.
type Example = (Vec<(&'static str, String)>, Vec<(String, &'static str)>);

fn example(backend: &FsBackend) -> Example {
    let mut out = Vec::new();
    let mut keys = Vec::new();
    let t = Threshold::new(2, 3).unwrap();
    let ks = KeySpace::new("vaultdb").unwrap();
    // The store of docs/FORMAT.md section 12: same naming key, same version.
    let naming = NamingKey::from_bytes([0x11; 32]);
    let version = Version::from_parts(0x0006_2d1a_2b3c_4d5e, 0x0123_4567_89ab_cdef);

    let keyring = ks.keyring_key().to_string();
    out.push(("fs_keyring_key", keyring.clone()));
    out.push(("fs_keyring_path", wrapped_path(&relative_path(backend, &keyring))));
    keys.push((keyring, "fs_keyring_path"));

    let long_id = "customer-records/eu-west/alice.smith@example.com";
    let tag = naming.tag(long_id);
    let padded = pad_id(long_id).unwrap();
    // Backend 1's id share: R_1 is the first 64 bytes of the stream of seed 43 x 32.
    let id_shares = Xorida::new().split(t, &padded, &mut CsRng::from_seed([0x43; 32]));
    let key = ks.share_key(tag, version, &id_shares[0]).to_string();
    out.push(("fs_long_id", long_id.to_owned()));
    out.push(("fs_long_padded_id", wrapped_hex(&padded)));
    out.push(("fs_long_id_share1", wrapped_hex(&id_shares[0])));
    out.push(("fs_long_key1", wrapped_path(&key)));
    out.push(("fs_long_path1", wrapped_path(&relative_path(backend, &key))));
    keys.push((key, "fs_long_path1"));

    let segment = ks.segment_key(tag, version, 2).to_string();
    out.push(("fs_segment_key", segment.clone()));
    out.push(("fs_segment_path", wrapped_path(&relative_path(backend, &segment))));
    keys.push((segment, "fs_segment_path"));

    // The last segment's layout for each padded-id class, from both ends of each class.
    let mut classes = Vec::new();
    for (lo, hi) in [(1, 31), (32, 63), (64, 127), (128, 255)] {
        let layout = |len: usize| {
            let id = "x".repeat(len);
            let padded = pad_id(&id).unwrap();
            let shares = Xorida::new().split(t, &padded, &mut CsRng::from_seed([0x43; 32]));
            last_segment_layout(
                backend,
                ks.share_key(naming.tag(&id), version, &shares[0]).as_str(),
            )
        };
        assert_eq!(layout(lo), layout(hi), "ids of {lo} and {hi} bytes differ in layout");
        classes.push(format!("{lo}-{hi} -> {}", layout(lo)));
    }
    out.push(("fs_layout_by_id_length", classes.join(", ")));

    let escaped = "Backups/2024_Q1/report.pdf";
    out.push(("fs_escaped_key", escaped.to_owned()));
    out.push(("fs_escaped_path", wrapped_path(&relative_path(backend, escaped))));
    keys.push((escaped.to_owned(), "fs_escaped_path"));
    (out, keys)
}

#[tokio::test]
async fn fs_example_in_format_md_matches_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FsBackend::open("disk-1", "Local disk 1", dir.path()).await.unwrap();
    let (values, keys) = example(&backend);
    let doc = FormatDoc::load();
    doc.check(&values, "is stale");

    // On disk: a put of each key creates the file at the path the document gives, and the
    // temporary directory is empty again once the puts returned.
    for (key, _) in &keys {
        let k = vaultdb_core::Key::new(key).unwrap();
        backend.put(&k, key.clone().into_bytes().into(), PutMode::Create).await.unwrap();
    }
    for (key, path_label) in &keys {
        let path = doc.value(path_label);
        let file = dir.path().join(Path::new(&path));
        assert_eq!(std::fs::read(&file).ok().as_deref(), Some(key.as_bytes()), "{path}");
    }
    let temp: Vec<_> = std::fs::read_dir(dir.path().join(TEMP_DIR)).unwrap().collect();
    assert!(temp.is_empty(), "temporary files left behind");

    // A stray temporary file is ignored by listings, which give back exactly the keys.
    std::fs::write(dir.path().join(TEMP_DIR).join("1-2-3.tmp"), b"partial").unwrap();
    let mut want: Vec<String> = keys.into_iter().map(|(k, _)| k).collect();
    want.sort();
    let listed = backend.list_all(&vaultdb_core::KeyPrefix::default()).await.unwrap();
    let listed: Vec<String> = listed.into_iter().map(|e| e.key.to_string()).collect();
    assert_eq!(listed, want);
}
