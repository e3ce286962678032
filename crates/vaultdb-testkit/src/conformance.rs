//! The conformance checks. See the [testkit docs](crate).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use vaultdb_core::backend::{
    BackendError, BackendErrorKind, MAX_KEY_LEN, PutMode, StorageBackend, validate_key,
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
    run!("large_object", large_object_of(backend, prefix, caps.large_object_bytes));
    run!("odd_keys", odd_keys(backend, prefix));
    run!("list_prefix", list_prefix(backend, prefix));
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
    cx.expect_list(&cx.scope, &[&key]).await;
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
    cx.expect_list(&cx.scope, &[&key]).await;
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
    cx.expect_list(&cx.scope, &[&key]).await;
    cx.delete_ok(&key).await;
    cx.finish().await;
}

/// An empty object exists (reads as `Some(empty)`, is listed, conflicts) like any other.
pub async fn empty_object(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("empty_object", backend, prefix);
    let key = cx.key("empty");
    cx.put_ok(&key, Bytes::new(), PutMode::Create).await;
    cx.expect_bytes(&key, &Bytes::new()).await;
    cx.expect_list(&cx.scope, &[&key]).await;
    cx.expect_already_exists(&key, pattern(15, 1)).await;
    cx.expect_bytes(&key, &Bytes::new()).await;
    cx.delete_ok(&key).await;
    cx.expect_none(&key).await;
    cx.finish().await;
}

/// An 8 MiB object comes back byte for byte.
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
    let head = cx.key("max/");
    let filler = "Az0~.%-_";
    let fill_len = MAX_KEY_LEN.saturating_sub(head.len());
    let max_rel: String =
        format!("max/{}", filler.chars().cycle().take(fill_len).collect::<String>());
    rels.push(max_rel);
    let keys: Vec<String> = rels.iter().map(|r| cx.key(r)).collect();
    for k in &keys {
        cx.ensure(validate_key(k).is_ok(), || {
            format!("test key {k:?} is not valid (prefix too long?)")
        });
    }
    cx.ensure(keys.last().is_some_and(|k| k.len() == MAX_KEY_LEN), || {
        format!("prefix {prefix:?} is too long to build a key of MAX_KEY_LEN bytes")
    });
    for k in &keys {
        cx.put_ok(k, key_payload(k), PutMode::Create).await;
    }
    for k in &keys {
        cx.expect_bytes(k, &key_payload(k)).await;
    }
    let want: Vec<&str> = keys.iter().map(String::as_str).collect();
    cx.expect_list(&cx.scope, &want).await;
    // Listing by a prefix made of odd characters finds exactly its keys.
    let case = cx.key("case/K");
    cx.expect_list(&case, &[&cx.key("case/KEY"), &cx.key("case/Key")]).await;
    let pct = cx.key("pct/%2");
    cx.expect_list(&pct, &[&cx.key("pct/%2F"), &cx.key("pct/%2f")]).await;
    let pre = cx.key("pre");
    let pre_keys = [
        cx.key("pre"),
        cx.key("pre/fix"),
        cx.key("pre/fix/more"),
        cx.key("prefix"),
        cx.key("prefix2"),
    ];
    cx.expect_list(&pre, &pre_keys.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // Deleting one key leaves the keys it is a prefix of, and the other way round.
    cx.delete_ok(&cx.key("pre")).await;
    cx.expect_none(&cx.key("pre")).await;
    cx.expect_bytes(&cx.key("pre/fix"), &key_payload(&cx.key("pre/fix"))).await;
    cx.delete_ok(&cx.key("pre/fix/more")).await;
    cx.expect_list(&cx.key("pre/"), &[&cx.key("pre/fix")]).await;
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
    let keys: Vec<String> = rels.iter().map(|r| cx.key(r)).collect();
    for k in &keys {
        cx.put_ok(k, key_payload(k), PutMode::Create).await;
    }
    let k = |r: &str| cx.key(r);
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
        let want: Vec<String> = want.iter().map(|r| k(r)).collect();
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        cx.expect_list(&k(p), &want).await;
    }
    let all: Vec<&str> = keys.iter().map(String::as_str).collect();
    cx.expect_list(&cx.scope, &all).await;
    // The scope without its trailing '/' must not match keys outside the scope either.
    let bare = cx.scope.trim_end_matches('/');
    cx.expect_list(bare, &all).await;
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
    let keys: Vec<String> = (0..count).map(|i| cx.key(&format!("page/{i:06}"))).collect();
    let outside = cx.key("pagf");
    cx.put_ok(&outside, Bytes::from_static(b"x"), PutMode::Create).await;
    let cxr = &cx;
    for_each_concurrent(&keys, |k| async move {
        cxr.put_ok(k, key_payload(k), PutMode::Create).await;
    })
    .await;
    let page_prefix = cx.key("page/");
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    let mut pages = 0usize;
    loop {
        pages += 1;
        cx.ensure(pages <= count + 2, || {
            format!("listing {page_prefix:?} did not end after {pages} pages")
        });
        let page = match backend.list_page(&page_prefix, cursor.take()).await {
            Ok(p) => p,
            Err(e) => cx.fail(format_args!("list_page {page_prefix:?} (page {pages}): {e}")),
        };
        for key in page.keys {
            cx.ensure(key.starts_with(&page_prefix), || {
                format!("listing {page_prefix:?} returned {key:?}, outside the prefix")
            });
            let dup = key.clone();
            cx.ensure(seen.insert(key), || format!("listing returned {dup:?} twice"));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let want: BTreeSet<String> = keys.iter().cloned().collect();
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
    cx.expect_list(&cx.scope, &[&a, &b, &c]).await;
    cx.delete_ok(&b).await;
    cx.expect_list(&cx.scope, &[&a, &c]).await;
    cx.expect_none(&b).await;
    cx.delete_ok(&c).await;
    cx.expect_list(&cx.key("dir/"), &[&a]).await;
    cx.expect_list(&cx.key("dir/sub"), &[]).await;
    cx.expect_bytes(&a, &key_payload(&a)).await;
    cx.delete_ok(&a).await;
    cx.expect_list(&cx.scope, &[]).await;
    cx.finish().await;
}

/// Concurrent puts of different keys (some sharing parents, some not) all land intact.
pub async fn concurrent_puts(backend: &dyn StorageBackend, prefix: &str) {
    let cx = Cx::new("concurrent_puts", backend, prefix);
    let keys: Vec<String> =
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
    let want: Vec<&str> = keys.iter().map(String::as_str).collect();
    cx.expect_list(&cx.scope, &want).await;
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

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.scope)
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

    async fn put_ok(&self, key: &str, data: Bytes, mode: PutMode) {
        if let Err(e) = self.backend.put(key, data, mode).await {
            self.fail(format_args!("put {key:?} ({mode:?}) failed: {e}"));
        }
    }

    async fn expect_already_exists(&self, key: &str, data: Bytes) {
        match self.backend.put(key, data, PutMode::Create).await {
            Ok(()) => self.fail(format_args!("create-only put of existing {key:?} succeeded")),
            Err(e) if e.kind() == BackendErrorKind::AlreadyExists => {}
            Err(e) => self.fail(format_args!(
                "create-only put of existing {key:?}: got {e} ({}), want already-exists",
                e.kind()
            )),
        }
    }

    async fn get_ok(&self, key: &str) -> Option<Bytes> {
        match self.backend.get(key).await {
            Ok(v) => v,
            Err(e) => self.fail(format_args!("get {key:?} failed: {e}")),
        }
    }

    async fn expect_bytes(&self, key: &str, want: &Bytes) {
        match self.get_ok(key).await {
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

    async fn expect_none(&self, key: &str) {
        if let Some(got) = self.get_ok(key).await {
            self.fail(format_args!("get {key:?}: got {} bytes, want no object", got.len()));
        }
    }

    async fn delete_ok(&self, key: &str) {
        if let Err(e) = self.backend.delete(key).await {
            self.fail(format_args!("delete {key:?} failed: {e}"));
        }
    }

    /// Lists `prefix` to the end, checking that no key repeats or falls outside the prefix.
    async fn list(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut cursor = None;
        for _ in 0..100_000 {
            let page = match self.backend.list_page(prefix, cursor.take()).await {
                Ok(p) => p,
                Err(e) => self.fail(format_args!("list {prefix:?} failed: {e}")),
            };
            keys.extend(page.keys);
            match page.next {
                Some(n) => cursor = Some(n),
                None => {
                    keys.sort();
                    let n = keys.len();
                    keys.dedup();
                    self.ensure(n == keys.len(), || format!("list {prefix:?} repeated keys"));
                    if let Some(bad) = keys.iter().find(|k| !k.starts_with(prefix)) {
                        self.fail(format_args!("list {prefix:?} returned {bad:?}"));
                    }
                    return keys;
                }
            }
        }
        self.fail(format_args!("list {prefix:?} did not end"))
    }

    async fn expect_list(&self, prefix: &str, want: &[&str]) {
        let got = self.list(prefix).await;
        let mut want: Vec<&str> = want.to_vec();
        want.sort_unstable();
        if got != want {
            let missing: Vec<&&str> =
                want.iter().filter(|w| !got.iter().any(|g| g == **w)).collect();
            let extra: Vec<&String> = got.iter().filter(|g| !want.contains(&g.as_str())).collect();
            self.fail(format_args!(
                "list {prefix:?}: got {} keys, want {}; missing {missing:?}, unexpected {extra:?}",
                got.len(),
                want.len()
            ));
        }
    }

    /// Checks that the check left nothing behind.
    async fn finish(self) {
        let left = self.list(&self.scope).await;
        self.ensure(left.is_empty(), || {
            format!("{} objects left under {:?} after cleanup: {left:?}", left.len(), self.scope)
        });
    }
}

/// Runs `f` over `items`, 16 at a time.
async fn for_each_concurrent<'i, F, Fut>(items: &'i [String], f: F)
where
    F: Fn(&'i String) -> Fut,
    Fut: Future<Output = ()>,
{
    stream::iter(items).for_each_concurrent(16, f).await;
}

/// A payload that names its key, so that a backend that mixes keys up is caught.
fn key_payload(key: &str) -> Bytes {
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
