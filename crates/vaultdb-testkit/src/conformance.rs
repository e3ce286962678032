// This file is long because it is one suite: one public function per check of the backend
// contract (keys, create-only puts, bounded gets, listings with sizes and resumption), run
// together by `run_all`, so that every backend crate runs the same list.
//! The conformance checks. See the [testkit docs](crate).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use vaultdb_core::backend::{
    BackendError, BackendErrorKind, Key, KeyPrefix, ListEntry, ListFrom, MAX_KEY_LEN, PutMode,
    StorageBackend,
};

/// What a backend can promise in the environment it is tested in; [`run_all_with`] skips or
/// scales the checks accordingly. [`Capabilities::default`] is the full contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Concurrent create-only puts of one key are atomic (exactly one wins). Some S3
    /// emulators (s3s-fs) do not manage this; with `false`, [`concurrent_create`] is skipped.
    pub atomic_concurrent_create: bool,
    /// How many keys [`list_pagination_of`] writes; more than one page of the backend.
    pub pagination_keys: usize,
    /// The size of the object [`large_object_of`] writes.
    pub large_object_bytes: usize,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            atomic_concurrent_create: true,
            pagination_keys: DEFAULT_PAGINATION_KEYS,
            large_object_bytes: DEFAULT_LARGE_OBJECT_BYTES,
        }
    }
}

impl Capabilities {
    /// The full contract, checked quickly on a backend configured with small listing pages:
    /// [`list_pagination_of`] writes `keys` keys (a few pages' worth) and
    /// [`large_object_of`] a 1 MiB object.
    pub fn small_pages(keys: usize) -> Self {
        Self { pagination_keys: keys, large_object_bytes: 1 << 20, ..Self::default() }
    }
}

/// Keys written by [`list_pagination`]: more than one page of 1000.
const DEFAULT_PAGINATION_KEYS: usize = 1100;
/// Size of the object written by [`large_object`]: 8 MiB.
const DEFAULT_LARGE_OBJECT_BYTES: usize = 8 << 20;
/// How many writers race in [`concurrent_create`].
const RACERS: usize = 16;
/// How many keys [`concurrent_puts`] writes at once.
const CONCURRENT_KEYS: usize = 32;

/// Runs every check against `backend`, under a fresh random prefix inside `prefix` (empty, or
/// ending in `/`; a `/` is added otherwise). Panics on the first failure, naming the check.
pub async fn run_all(backend: &dyn StorageBackend, prefix: &str) {
    run_all_with(backend, prefix, &Capabilities::default()).await;
}

/// [`run_all`] for a backend with the given [`Capabilities`].
pub async fn run_all_with(backend: &dyn StorageBackend, prefix: &str, caps: &Capabilities) {
    let id = backend.id();
    macro_rules! run {
        ($name:literal, $call:expr) => {{
            eprintln!("testkit[{id}]: {} ...", $name);
            $call.await;
            eprintln!("testkit[{id}]: {} ok", $name);
        }};
    }
    run!("put_get_delete", put_get_delete(backend, prefix));
    run!("get_missing", get_missing(backend, prefix));
    run!("delete_missing", delete_missing(backend, prefix));
    run!("idempotent_delete", idempotent_delete(backend, prefix));
    run!("create_conflict", create_conflict(backend, prefix));
    run!("overwrite", overwrite(backend, prefix));
    run!("empty_object", empty_object(backend, prefix));
    run!("get_limits", get_limits(backend, prefix));
    run!("large_object", large_object_of(backend, prefix, caps.large_object_bytes));
    run!("odd_keys", odd_keys(backend, prefix));
    run!("list_prefix", list_prefix(backend, prefix));
    run!("list_sizes", list_sizes(backend, prefix));
    run!("list_after", list_after(backend, prefix));
    run!("list_pagination", list_pagination_of(backend, prefix, caps.pagination_keys));
    run!("list_after_delete", list_after_delete(backend, prefix));
    run!("concurrent_puts", concurrent_puts(backend, prefix));
    if caps.atomic_concurrent_create {
        run!("concurrent_create", concurrent_create(backend, prefix));
    } else {
        eprintln!("testkit[{id}]: concurrent_create skipped (not atomic in this environment)");
    }
}

/// Put (create-only), get, list and delete one object.
pub async fn put_get_delete(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("put_get_delete", backend, prefix);
    let key = cx.key("record/share-1");
    let data = pattern(1, 1000);
    cx.put_ok(&key, data.clone(), PutMode::Create).await;
    cx.expect_bytes(&key, &data).await;
    cx.expect_list(&cx.scope(), &[&key]).await;
    cx.delete_ok(&key).await;
    cx.expect_none(&key).await;
    cx.finish().await;
}

/// A missing key reads as `None`, also when its parent "directory" does not exist or is an
/// object itself.
pub async fn get_missing(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("get_missing", backend, prefix);
    cx.expect_none(&cx.key("missing")).await;
    cx.expect_none(&cx.key("no/such/parent")).await;
    let file = cx.key("file");
    cx.put_ok(&file, pattern(2, 10), PutMode::Create).await;
    cx.expect_none(&cx.key("file/child")).await;
    cx.expect_none(&cx.key("fil")).await;
    cx.expect_none(&cx.key("file2")).await;
    cx.delete_ok(&file).await;
    cx.finish().await;
}

/// Deleting a key that never existed succeeds, also below a missing parent or an object.
pub async fn delete_missing(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("delete_missing", backend, prefix);
    cx.delete_ok(&cx.key("never")).await;
    cx.delete_ok(&cx.key("never/deeper/still")).await;
    let file = cx.key("file");
    cx.put_ok(&file, pattern(3, 10), PutMode::Create).await;
    cx.delete_ok(&cx.key("file/child")).await;
    cx.expect_bytes(&file, &pattern(3, 10)).await;
    cx.delete_ok(&file).await;
    cx.finish().await;
}

/// Deleting twice succeeds both times and the key stays gone.
pub async fn idempotent_delete(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("idempotent_delete", backend, prefix);
    let key = cx.key("twice");
    cx.put_ok(&key, pattern(4, 100), PutMode::Create).await;
    cx.delete_ok(&key).await;
    cx.delete_ok(&key).await;
    cx.expect_none(&key).await;
    cx.delete_ok(&key).await;
    // The key can be created again after a delete.
    cx.put_ok(&key, pattern(5, 100), PutMode::Create).await;
    cx.expect_bytes(&key, &pattern(5, 100)).await;
    cx.delete_ok(&key).await;
    cx.finish().await;
}

/// A create-only put of an existing key fails with `AlreadyExists` and leaves the original
/// bytes in place.
pub async fn create_conflict(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("create_conflict", backend, prefix);
    let key = cx.key("conflict");
    let first = pattern(6, 4096);
    cx.put_ok(&key, first.clone(), PutMode::Create).await;
    cx.expect_already_exists(&key, pattern(7, 10)).await;
    cx.expect_already_exists(&key, first.clone()).await;
    cx.expect_already_exists(&key, Bytes::new()).await;
    cx.expect_bytes(&key, &first).await;
    // Still a conflict after an overwrite.
    let second = pattern(8, 300);
    cx.put_ok(&key, second.clone(), PutMode::Overwrite).await;
    cx.expect_already_exists(&key, pattern(9, 10)).await;
    cx.expect_bytes(&key, &second).await;
    cx.expect_list(&cx.scope(), &[&key]).await;
    cx.delete_ok(&key).await;
    cx.finish().await;
}

/// Overwrite creates a missing object and replaces an existing one, whether the new bytes
/// are shorter or longer.
pub async fn overwrite(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("overwrite", backend, prefix);
    let key = cx.key("over");
    for (seed, len) in [(10, 5000), (11, 17), (12, 70_000), (13, 0), (14, 3)] {
        let data = pattern(seed, len);
        cx.put_ok(&key, data.clone(), PutMode::Overwrite).await;
        cx.expect_bytes(&key, &data).await;
    }
    cx.expect_list(&cx.scope(), &[&key]).await;
    cx.delete_ok(&key).await;
    cx.finish().await;
}

/// An empty object exists (reads as `Some(empty)`, also with a limit of 0 bytes, is listed,
/// conflicts) like any other.
pub async fn empty_object(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("empty_object", backend, prefix);
    let key = cx.key("empty");
    cx.put_ok(&key, Bytes::new(), PutMode::Create).await;
    cx.expect_bytes(&key, &Bytes::new()).await;
    cx.expect_bytes_within(&key, &Bytes::new(), 1 << 20).await;
    cx.expect_list(&cx.scope(), &[&key]).await;
    cx.expect_already_exists(&key, pattern(15, 1)).await;
    cx.expect_bytes(&key, &Bytes::new()).await;
    cx.delete_ok(&key).await;
    cx.expect_none(&key).await;
    cx.finish().await;
}

/// A `get` reads up to its limit: an object of exactly the limit comes back, one byte more
/// is a [`BackendErrorKind::TooLarge`] error (a missing object is still `None`, whatever the
/// limit).
pub async fn get_limits(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("get_limits", backend, prefix);
    let key = cx.key("limited");
    for (seed, len) in [(30, 1), (31, 1000), (32, 70_000)] {
        let data = pattern(seed, len);
        cx.put_ok(&key, data.clone(), PutMode::Overwrite).await;
        cx.expect_bytes(&key, &data).await;
        cx.expect_bytes_within(&key, &data, len as u64 + 1).await;
        cx.expect_too_large(&key, len as u64 - 1).await;
        cx.expect_too_large(&key, 0).await;
    }
    cx.delete_ok(&key).await;
    match backend.get(&key, 0).await {
        Ok(None) => {}
        other => cx.fail(format_args!("get {key:?} (limit 0) of a missing key: got {other:?}")),
    }
    cx.finish().await;
}

/// An 8 MiB object comes back byte for byte, and a small limit refuses it.
pub async fn large_object(backend: &dyn StorageBackend, prefix: &str) {
    large_object_of(backend, prefix, DEFAULT_LARGE_OBJECT_BYTES).await;
}

/// [`large_object`] with an object of `len` bytes.
pub async fn large_object_of(backend: &dyn StorageBackend, prefix: &str, len: usize) {
    let cx = Cx::new("large_object", backend, prefix);
    let key = cx.key("large");
    let data = pattern(16, len);
    cx.put_ok(&key, data.clone(), PutMode::Create).await;
    cx.expect_bytes(&key, &data).await;
    if len > 0 {
        cx.expect_too_large(&key, (len / 2) as u64).await;
        cx.expect_too_large(&key, len as u64 - 1).await;
    }
    let other = pattern(17, len);
    cx.put_ok(&key, other.clone(), PutMode::Overwrite).await;
    cx.expect_bytes(&key, &other).await;
    cx.delete_ok(&key).await;
    cx.finish().await;
}

/// Keys with every printable ASCII character, case variants, characters that URL or path
/// encoders treat specially, dots, a key of [`MAX_KEY_LEN`] bytes, deep nesting and keys
/// that are prefixes of other keys are all stored distinctly and listed unchanged.
pub async fn odd_keys(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("odd_keys", backend, prefix);
    let all_printable: String = (0x21u8..=0x7e).filter(|&b| b != b'/').map(char::from).collect();
    let mut rels: Vec<String> = vec![
        all_printable.clone(),
        format!("seg/{all_printable}/tail"),
        "case/Key".into(),
        "case/key".into(),
        "case/KEY".into(),
        "case/kEy".into(),
        "pct/%".into(),
        "pct/%41".into(),
        "pct/%2F".into(),
        "pct/%2f".into(),
        "pct/a%20b".into(),
        "sym/~".into(),
        "sym/~user".into(),
        "sym/a+b".into(),
        "sym/a=b".into(),
        "sym/a&b=c?d#e".into(),
        "sym/-lead".into(),
        "sym/--".into(),
        "sym/_under".into(),
        "sym/_41".into(),
        "sym/A".into(),
        "sym/back\\slash".into(),
        "sym/co:lon*star\"quote<lt>gt|pipe".into(),
        "dots/a.b".into(),
        "dots/..a".into(),
        "dots/.a".into(),
        "dots/.../x".into(),
        "dots/a..b".into(),
        "pre".into(),
        "pre/fix".into(),
        "prefix".into(),
        "prefix2".into(),
        "pre/fix/more".into(),
        "con/nul/aux".into(),
    ];
    let deep: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
    rels.push(format!("deep/{}/leaf", deep.join("/")));
    // A key of exactly MAX_KEY_LEN bytes with mixed characters in a long last segment.
    let head = format!("{}max/", cx.scope);
    let filler = "Az0~.%-_";
    let fill_len = MAX_KEY_LEN.saturating_sub(head.len());
    let max_rel: String =
        format!("max/{}", filler.chars().cycle().take(fill_len).collect::<String>());
    rels.push(max_rel);
    let keys: Vec<Key> = rels.iter().map(|r| cx.key(r)).collect();
    cx.ensure(keys.last().is_some_and(|k| k.as_str().len() == MAX_KEY_LEN), || {
        format!("prefix {prefix:?} is too long to build a key of MAX_KEY_LEN bytes")
    });
    for k in &keys {
        cx.put_ok(k, key_payload(k), PutMode::Create).await;
    }
    for k in &keys {
        cx.expect_bytes(k, &key_payload(k)).await;
    }
    let want: Vec<&Key> = keys.iter().collect();
    cx.expect_list(&cx.scope(), &want).await;
    // Listing by a prefix made of odd characters finds exactly its keys.
    cx.expect_list(&cx.prefix("case/K"), &[&cx.key("case/KEY"), &cx.key("case/Key")]).await;
    cx.expect_list(&cx.prefix("pct/%2"), &[&cx.key("pct/%2F"), &cx.key("pct/%2f")]).await;
    let pre_keys = [
        cx.key("pre"),
        cx.key("pre/fix"),
        cx.key("pre/fix/more"),
        cx.key("prefix"),
        cx.key("prefix2"),
    ];
    cx.expect_list(&cx.prefix("pre"), &pre_keys.iter().collect::<Vec<_>>()).await;
    // Deleting one key leaves the keys it is a prefix of, and the other way round.
    cx.delete_ok(&cx.key("pre")).await;
    cx.expect_none(&cx.key("pre")).await;
    cx.expect_bytes(&cx.key("pre/fix"), &key_payload(&cx.key("pre/fix"))).await;
    cx.delete_ok(&cx.key("pre/fix/more")).await;
    cx.expect_list(&cx.prefix("pre/"), &[&cx.key("pre/fix")]).await;
    for k in &keys {
        cx.delete_ok(k).await;
    }
    for k in &keys {
        cx.expect_none(k).await;
    }
    cx.finish().await;
}

/// Listing by prefix returns exactly the keys that start with it: prefixes that end at a `/`
/// or mid-segment, that equal a key, and that match nothing.
pub async fn list_prefix(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("list_prefix", backend, prefix);
    let rels = [
        "list/a/1",
        "list/a/2",
        "list/ab/1",
        "list/abc",
        "list/b/1",
        "list/b/2/x",
        "other/x",
        "lis",
    ];
    let keys: Vec<Key> = rels.iter().map(|r| cx.key(r)).collect();
    for k in &keys {
        cx.put_ok(k, key_payload(k), PutMode::Create).await;
    }
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("list/a/", vec!["list/a/1", "list/a/2"]),
        ("list/a", vec!["list/a/1", "list/a/2", "list/ab/1", "list/abc"]),
        ("list/ab", vec!["list/ab/1", "list/abc"]),
        ("list/", vec!["list/a/1", "list/a/2", "list/ab/1", "list/abc", "list/b/1", "list/b/2/x"]),
        ("list", vec!["list/a/1", "list/a/2", "list/ab/1", "list/abc", "list/b/1", "list/b/2/x"]),
        (
            "lis",
            vec!["lis", "list/a/1", "list/a/2", "list/ab/1", "list/abc", "list/b/1", "list/b/2/x"],
        ),
        ("list/a/1", vec!["list/a/1"]),
        ("list/b/2", vec!["list/b/2/x"]),
        ("list/zzz", vec![]),
        ("list/a/3", vec![]),
        ("nothing/", vec![]),
        ("other/", vec!["other/x"]),
    ];
    for (p, want) in cases {
        let want: Vec<Key> = want.iter().map(|r| cx.key(r)).collect();
        cx.expect_list(&cx.prefix(p), &want.iter().collect::<Vec<_>>()).await;
    }
    let all: Vec<&Key> = keys.iter().collect();
    cx.expect_list(&cx.scope(), &all).await;
    // The scope without its trailing '/' must not match keys outside the scope either.
    let bare = cx.prefix_of(cx.scope.trim_end_matches('/'));
    cx.expect_list(&bare, &all).await;
    for k in &keys {
        cx.delete_ok(k).await;
    }
    cx.finish().await;
}

/// Listings report each object's size: empty, small and larger objects, and an object's new
/// size after an overwrite.
pub async fn list_sizes(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("list_sizes", backend, prefix);
    let sizes = [0usize, 1, 17, 4096, 70_000];
    let keys: Vec<Key> = sizes.iter().map(|n| cx.key(&format!("size/{n:06}"))).collect();
    for (k, n) in keys.iter().zip(sizes) {
        cx.put_ok(k, pattern(40 + n as u64, n), PutMode::Create).await;
    }
    let want: Vec<(Key, u64)> = keys.iter().cloned().zip(sizes.map(|n| n as u64)).collect();
    cx.expect_sizes(&cx.scope(), &want).await;
    cx.put_ok(&keys[1], pattern(50, 333), PutMode::Overwrite).await;
    let mut want = want;
    want[1].1 = 333;
    cx.expect_sizes(&cx.scope(), &want).await;
    for k in &keys {
        cx.delete_ok(k).await;
    }
    cx.finish().await;
}

/// A listing from [`ListFrom::After`] returns exactly the keys under the prefix that are
/// greater than the given key, whether that key exists, lies before the prefix or is its
/// last key, following cursors from there.
pub async fn list_after(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("list_after", backend, prefix);
    // `after/b` is a cursor, not a key: a key that is also a "directory" of another cannot
    // be stored by servers that keep keys as file paths (s3s-fs), and a cursor need not exist.
    let rels = ["after/a", "after/b0", "after/b/x", "after/c", "after/d", "aftes"];
    let keys: Vec<Key> = rels.iter().map(|r| cx.key(r)).collect();
    for k in &keys {
        cx.put_ok(k, key_payload(k), PutMode::Create).await;
    }
    let within = cx.prefix("after/");
    let cases: [(&str, &[&str]); 7] = [
        ("after/a", &["after/b/x", "after/b0", "after/c", "after/d"]),
        ("after/b", &["after/b/x", "after/b0", "after/c", "after/d"]),
        ("after/b/x", &["after/b0", "after/c", "after/d"]),
        ("after/bz", &["after/c", "after/d"]),
        ("after/c", &["after/d"]),
        ("after/d", &[]),
        ("aaa", &["after/a", "after/b/x", "after/b0", "after/c", "after/d"]),
    ];
    for (after, want) in cases {
        let got = cx.list_from(&within, ListFrom::After(cx.key(after))).await;
        let got: Vec<&Key> = got.iter().map(|e| &e.key).collect();
        let want: Vec<Key> = want.iter().map(|r| cx.key(r)).collect();
        cx.ensure(got == want.iter().collect::<Vec<_>>(), || {
            format!("list {within:?} after {after:?}: got {got:?}, want {want:?}")
        });
    }
    for k in &keys {
        cx.delete_ok(k).await;
    }
    cx.finish().await;
}

/// A listing of more keys than fit on one page follows cursors to every key exactly once.
pub async fn list_pagination(backend: &dyn StorageBackend, prefix: &str) {
    list_pagination_of(backend, prefix, DEFAULT_PAGINATION_KEYS).await;
}

/// [`list_pagination`] with `count` keys.
pub async fn list_pagination_of(backend: &dyn StorageBackend, prefix: &str, count: usize) {
    let cx = Cx::new("list_pagination", backend, prefix);
    let keys: Vec<Key> = (0..count).map(|i| cx.key(&format!("page/{i:06}"))).collect();
    let outside = cx.key("pagf");
    cx.put_ok(&outside, Bytes::from_static(b"x"), PutMode::Create).await;
    let cxr = &cx;
    for_each_concurrent(&keys, |k| async move {
        cxr.put_ok(k, key_payload(k), PutMode::Create).await;
    })
    .await;
    let page_prefix = cx.prefix("page/");
    let mut seen = BTreeSet::new();
    let mut from = ListFrom::Start;
    let mut pages = 0usize;
    loop {
        pages += 1;
        cx.ensure(pages <= count + 2, || {
            format!("listing {page_prefix:?} did not end after {pages} pages")
        });
        let page = match backend.list_page(&page_prefix, from).await {
            Ok(p) => p,
            Err(e) => cx.fail(format_args!("list_page {page_prefix:?} (page {pages}): {e}")),
        };
        for ListEntry { key, .. } in page.entries {
            cx.ensure(key.starts_with(&page_prefix), || {
                format!("listing {page_prefix:?} returned {key:?}, outside the prefix")
            });
            let dup = key.clone();
            cx.ensure(seen.insert(key), || format!("listing returned {dup:?} twice"));
        }
        match page.next {
            Some(next) => from = ListFrom::Cursor(next),
            None => break,
        }
    }
    let want: BTreeSet<Key> = keys.iter().cloned().collect();
    if seen != want {
        let missing = want.difference(&seen).take(5).collect::<Vec<_>>();
        let extra = seen.difference(&want).take(5).collect::<Vec<_>>();
        cx.fail(format_args!(
            "paginated listing returned {} keys, want {count}; missing (first 5) {missing:?}, \
             unexpected {extra:?}",
            seen.len()
        ));
    }
    for_each_concurrent(&keys, |k| async move { cxr.delete_ok(k).await }).await;
    cx.delete_ok(&outside).await;
    cx.finish().await;
}

/// A deleted key disappears from listings and reads; its neighbours stay.
pub async fn list_after_delete(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("list_after_delete", backend, prefix);
    let a = cx.key("dir/a");
    let b = cx.key("dir/b");
    let c = cx.key("dir/sub/c");
    for k in [&a, &b, &c] {
        cx.put_ok(k, key_payload(k), PutMode::Create).await;
    }
    cx.expect_list(&cx.scope(), &[&a, &b, &c]).await;
    cx.delete_ok(&b).await;
    cx.expect_list(&cx.scope(), &[&a, &c]).await;
    cx.expect_none(&b).await;
    cx.delete_ok(&c).await;
    cx.expect_list(&cx.prefix("dir/"), &[&a]).await;
    cx.expect_list(&cx.prefix("dir/sub"), &[]).await;
    cx.expect_bytes(&a, &key_payload(&a)).await;
    cx.delete_ok(&a).await;
    cx.expect_list(&cx.scope(), &[]).await;
    cx.finish().await;
}

/// Concurrent puts of different keys (some sharing parents, some not) all land intact.
pub async fn concurrent_puts(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("concurrent_puts", backend, prefix);
    let keys: Vec<Key> =
        (0..CONCURRENT_KEYS).map(|i| cx.key(&format!("p{}/k{i}", i % 4))).collect();
    let cxr = &cx;
    join_all(keys.iter().enumerate().map(|(i, k)| async move {
        let mode = if i % 2 == 0 { PutMode::Create } else { PutMode::Overwrite };
        cxr.put_ok(k, key_payload(k), mode).await;
    }))
    .await;
    for k in &keys {
        cx.expect_bytes(k, &key_payload(k)).await;
    }
    cx.expect_list(&cx.scope(), &keys.iter().collect::<Vec<_>>()).await;
    join_all(keys.iter().map(|k| cxr.delete_ok(k))).await;
    cx.finish().await;
}

/// Of concurrent create-only puts of one key exactly one succeeds, the others get
/// `AlreadyExists`, and the stored bytes are the winner's, whole.
pub async fn concurrent_create(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("concurrent_create", backend, prefix);
    for round in 0..3u64 {
        let key = cx.key(&format!("race/{round}/share"));
        let payloads: Vec<Bytes> =
            (0..RACERS as u64).map(|i| pattern(100 + round * 100 + i, 64 * 1024)).collect();
        let results: Vec<Result<(), BackendError>> =
            join_all(payloads.iter().map(|p| backend.put(&key, p.clone(), PutMode::Create))).await;
        let mut winners = Vec::new();
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok(()) => winners.push(i),
                Err(e) if e.kind() == BackendErrorKind::AlreadyExists => {}
                Err(e) => cx.fail(format_args!(
                    "round {round}: racer {i} got {e} ({}), want Ok or AlreadyExists",
                    e.kind()
                )),
            }
        }
        cx.ensure(winners.len() == 1, || {
            format!("round {round}: {} of {RACERS} concurrent creates succeeded, want exactly 1 (winners {winners:?})", winners.len())
        });
        cx.expect_bytes(&key, &payloads[winners[0]]).await;
        cx.delete_ok(&key).await;
    }
    cx.finish().await;
}

// ---------------------------------------------------------------------------------------------

/// One check's context: its name, the backend and its private prefix.
struct Cx<'a> {
    check: &'static str,
    backend: &'a dyn StorageBackend,
    scope: String,
}

impl<'a> Cx<'a> {
    fn new(check: &'static str, backend: &'a dyn StorageBackend, prefix: &str) -> Self {
        let sep = if prefix.is_empty() || prefix.ends_with('/') { "" } else { "/" };
        let scope = format!("{prefix}{sep}vdbtk-{}/{check}/", random_tag());
        Self { check, backend, scope }
    }

    /// The key `rel` under the check's scope.
    #[track_caller]
    fn key(&self, rel: &str) -> Key {
        let key = format!("{}{rel}", self.scope);
        Key::new(&key).unwrap_or_else(|e| {
            self.fail(format_args!("test key {key:?} is not valid ({e}; prefix too long?)"))
        })
    }

    /// The listing prefix `rel` under the check's scope.
    #[track_caller]
    fn prefix(&self, rel: &str) -> KeyPrefix {
        self.prefix_of(&format!("{}{rel}", self.scope))
    }

    /// The check's whole scope, as a listing prefix.
    fn scope(&self) -> KeyPrefix {
        self.prefix("")
    }

    #[track_caller]
    fn prefix_of(&self, text: &str) -> KeyPrefix {
        KeyPrefix::new(text)
            .unwrap_or_else(|e| self.fail(format_args!("test prefix {text:?} is not valid ({e})")))
    }

    #[track_caller]
    fn fail(&self, msg: impl fmt::Display) -> ! {
        panic!(
            "conformance check `{}` failed on backend `{}` ({}): {msg}",
            self.check,
            self.backend.id(),
            self.backend.name()
        )
    }

    #[track_caller]
    fn ensure(&self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(msg());
        }
    }

    async fn put_ok(&self, key: &Key, data: Bytes, mode: PutMode) {
        if let Err(e) = self.backend.put(key, data, mode).await {
            self.fail(format_args!("put {key:?} ({mode:?}) failed: {e}"));
        }
    }

    async fn expect_already_exists(&self, key: &Key, data: Bytes) {
        match self.backend.put(key, data, PutMode::Create).await {
            Ok(()) => self.fail(format_args!("create-only put of existing {key:?} succeeded")),
            Err(e) if e.kind() == BackendErrorKind::AlreadyExists => {}
            Err(e) => self.fail(format_args!(
                "create-only put of existing {key:?}: got {e} ({}), want already-exists",
                e.kind()
            )),
        }
    }

    async fn get_ok(&self, key: &Key, max_len: u64) -> Option<Bytes> {
        match self.backend.get(key, max_len).await {
            Ok(v) => v,
            Err(e) => self.fail(format_args!("get {key:?} (limit {max_len}) failed: {e}")),
        }
    }

    /// Reads `key` with a limit of exactly the expected length.
    async fn expect_bytes(&self, key: &Key, want: &Bytes) {
        self.expect_bytes_within(key, want, want.len() as u64).await;
    }

    async fn expect_bytes_within(&self, key: &Key, want: &Bytes, max_len: u64) {
        match self.get_ok(key, max_len).await {
            None => self.fail(format_args!("get {key:?}: no object, want {} bytes", want.len())),
            Some(got) => {
                if got != *want {
                    let at = got.iter().zip(want.iter()).position(|(a, b)| a != b);
                    self.fail(format_args!(
                        "get {key:?}: got {} bytes, want {} (first difference at {at:?})",
                        got.len(),
                        want.len()
                    ));
                }
            }
        }
    }

    async fn expect_too_large(&self, key: &Key, max_len: u64) {
        match self.backend.get(key, max_len).await {
            Err(e) if e.kind() == BackendErrorKind::TooLarge => {}
            Err(e) => self.fail(format_args!(
                "get {key:?} (limit {max_len}): got {e} ({}), want too-large",
                e.kind()
            )),
            Ok(v) => self.fail(format_args!(
                "get {key:?} (limit {max_len}): got {:?} bytes, want too-large",
                v.map(|b| b.len())
            )),
        }
    }

    async fn expect_none(&self, key: &Key) {
        if let Some(got) = self.get_ok(key, u64::MAX).await {
            self.fail(format_args!("get {key:?}: got {} bytes, want no object", got.len()));
        }
    }

    async fn delete_ok(&self, key: &Key) {
        if let Err(e) = self.backend.delete(key).await {
            self.fail(format_args!("delete {key:?} failed: {e}"));
        }
    }

    /// Lists `prefix` from `from` to the end, checking that every key is under the prefix and
    /// greater than the one before (on the same page and across pages).
    async fn list_from(&self, prefix: &KeyPrefix, from: ListFrom) -> Vec<ListEntry> {
        let mut entries: Vec<ListEntry> = Vec::new();
        let mut from = from;
        for _ in 0..100_000 {
            let page = match self.backend.list_page(prefix, from).await {
                Ok(p) => p,
                Err(e) => self.fail(format_args!("list {prefix:?} failed: {e}")),
            };
            for e in page.entries {
                if !e.key.starts_with(prefix) {
                    self.fail(format_args!("list {prefix:?} returned {:?}", e.key));
                }
                if let Some(last) = entries.last() {
                    self.ensure(last.key < e.key, || {
                        format!(
                            "list {prefix:?}: {:?} came after {:?} (repeated or out of order)",
                            e.key, last.key
                        )
                    });
                }
                entries.push(e);
            }
            match page.next {
                Some(n) => from = ListFrom::Cursor(n),
                None => return entries,
            }
        }
        self.fail(format_args!("list {prefix:?} did not end"))
    }

    async fn list(&self, prefix: &KeyPrefix) -> Vec<ListEntry> {
        self.list_from(prefix, ListFrom::Start).await
    }

    async fn expect_list(&self, prefix: &KeyPrefix, want: &[&Key]) {
        let got: Vec<Key> = self.list(prefix).await.into_iter().map(|e| e.key).collect();
        let mut want: Vec<&Key> = want.to_vec();
        want.sort_unstable();
        if got.iter().ne(want.iter().copied()) {
            let missing: Vec<&&Key> = want.iter().filter(|w| !got.contains(w)).collect();
            let extra: Vec<&Key> = got.iter().filter(|g| !want.contains(g)).collect();
            self.fail(format_args!(
                "list {prefix:?}: got {} keys, want {}; missing {missing:?}, unexpected {extra:?}",
                got.len(),
                want.len()
            ));
        }
    }

    async fn expect_sizes(&self, prefix: &KeyPrefix, want: &[(Key, u64)]) {
        let got: Vec<(Key, u64)> =
            self.list(prefix).await.into_iter().map(|e| (e.key, e.size)).collect();
        let mut want = want.to_vec();
        want.sort();
        self.ensure(got == want, || format!("list {prefix:?}: got {got:?}, want {want:?}"));
    }

    /// Checks that the check left nothing behind.
    async fn finish(self) {
        let left = self.list(&self.scope()).await;
        self.ensure(left.is_empty(), || {
            format!("{} objects left under {:?} after cleanup: {left:?}", left.len(), self.scope)
        });
    }
}

/// Runs `f` over `items`, 16 at a time.
async fn for_each_concurrent<'i, F, Fut>(items: &'i [Key], f: F)
where
    F: Fn(&'i Key) -> Fut,
    Fut: Future<Output = ()>,
{
    stream::iter(items).for_each_concurrent(16, f).await;
}

/// A payload that names its key, so that a backend that mixes keys up is caught.
fn key_payload(key: &Key) -> Bytes {
    Bytes::from(format!("payload of {key}").into_bytes())
}

/// `len` deterministic pseudo-random bytes for `seed` (xorshift64*).
fn pattern(seed: u64, len: usize) -> Bytes {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A random tag for a check's prefix: OS randomness, with the time and a counter mixed in
/// so that it stays unique even if the OS generator fails.
fn random_tag() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut buf = [0u8; 8];
    let os = getrandom::getrandom(&mut buf).is_ok();
    let mut v = u64::from_le_bytes(buf);
    if !os {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        v ^= (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32);
    }
    v ^= COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{v:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_and_have_the_right_length() {
        assert_eq!(pattern(1, 0).len(), 0);
        assert_eq!(pattern(1, 13).len(), 13);
        assert_ne!(pattern(1, 64), pattern(2, 64));
        assert_eq!(pattern(3, 64), pattern(3, 64));
        assert_ne!(random_tag(), random_tag());
    }
}
