//! The conformance suite against `MemoryBackend` (and that it catches broken backends), the
//! `MemoryBackend` helpers the wrappers rely on, and unit tests of the fault-injection
//! wrappers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vaultdb_core::backend::StorageBackendExt;
use vaultdb_core::{
    BackendError, BackendErrorKind, Key, KeyPrefix, ListFrom, ListPage, MemoryBackend, PutMode,
    StorageBackend,
};
use vaultdb_testkit::{
    Capabilities, CorruptMode, Corrupting, Counting, Crashing, Failing, Ops, Randomized, Slow,
    Stale, StaleMode,
};

fn mem() -> Arc<MemoryBackend> {
    Arc::new(MemoryBackend::new("mem", "Memory"))
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn p(s: &str) -> KeyPrefix {
    KeyPrefix::new(s).unwrap()
}

/// No limit on a `get`.
const ANY: u64 = u64::MAX;

async fn put(backend: &dyn StorageBackend, key: &str, data: &'static str) {
    backend.put(&k(key), b(data), PutMode::Create).await.unwrap();
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.entries.iter().map(|e| e.key.as_str()).collect()
}

fn kind<T: std::fmt::Debug>(r: Result<T, BackendError>) -> BackendErrorKind {
    r.unwrap_err().kind()
}

// ------------------------------------------------------------------ conformance

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_memory() {
    let m = mem();
    m.raw_put("outside/keep", b("untouched"));
    vaultdb_testkit::run_all(m.as_ref(), "").await;
    vaultdb_testkit::run_all(m.as_ref(), "nested/prefix/").await;
    // The suite cleaned up after itself and left other objects alone.
    assert_eq!(m.keys(), ["outside/keep"]);
}

#[tokio::test]
async fn conformance_memory_small_pages() {
    let m = MemoryBackend::new("mem-small", "Memory, pages of 7").with_page_size(7);
    vaultdb_testkit::run_all_with(&m, "p", &Capabilities::small_pages(150)).await;
    assert_eq!(m.object_count(), 0);
}

#[tokio::test]
async fn conformance_through_idle_wrappers() {
    // Every wrapper, switched off, is transparent: the whole suite passes through the stack.
    let m = mem();
    let failing = Failing::new(m.clone());
    let slow = Slow::new(failing, Duration::ZERO);
    let corrupting = Corrupting::new(slow);
    corrupting.handle().set_enabled(false);
    let stale = Stale::new(corrupting);
    let crashing = Crashing::new(stale, 0);
    crashing.handle().reset();
    let randomized = Randomized::new(crashing, 7, Duration::from_micros(200), 0.0);
    let counting = Counting::new(randomized);
    let calls = counting.handle();
    let dynamic: Arc<dyn StorageBackend> = Arc::new(counting);
    assert_eq!((dynamic.id(), dynamic.name()), ("mem", "Memory"));
    vaultdb_testkit::run_all(dynamic.as_ref(), "stack/").await;
    assert!(calls.puts() > 1100 && calls.gets() > 50 && calls.deletes() > 1100);
    assert!(calls.list_pages() > 10);
    assert_eq!(m.object_count(), 0);
}

#[tokio::test]
async fn conformance_without_concurrent_create() {
    let m = mem();
    let counting = Counting::new(m.clone());
    let calls = counting.handle();
    let caps = Capabilities {
        atomic_concurrent_create: false,
        pagination_keys: 10,
        large_object_bytes: 10,
    };
    vaultdb_testkit::run_all_with(&counting, "", &caps).await;
    let with_skip = calls.puts();
    calls.reset();
    vaultdb_testkit::concurrent_create(&counting, "").await;
    assert!(calls.puts() >= 48, "the race ran 3 rounds of 16 creates");
    assert!(with_skip > 0);
}

/// A broken backend: create-only puts overwrite.
#[derive(Debug)]
struct NoCreateOnly(MemoryBackend);

vaultdb_testkit::forward_backend! {
    impl StorageBackend for NoCreateOnly {
        forward id, name, get, delete, list_page to self.0;

        async fn put(&self, key: &Key, data: Bytes, _mode: PutMode) -> Result<(), BackendError> {
            self.0.put(key, data, PutMode::Overwrite).await
        }
    }
}

#[tokio::test]
#[should_panic(expected = "conformance check `create_conflict` failed on backend `broken`")]
async fn suite_catches_missing_create_only() {
    let broken = NoCreateOnly(MemoryBackend::new("broken", "Broken"));
    vaultdb_testkit::create_conflict(&broken, "").await;
}

#[tokio::test]
#[should_panic(expected = "conformance check `get_missing` failed")]
async fn suite_catches_corruption_of_reads() {
    // A backend that answers every get with bytes breaks `get_missing`.
    let m = Stale::new(mem());
    m.handle().set_mode(StaleMode::Swap);
    m.put(&k("elsewhere/x"), b("x"), PutMode::Create).await.unwrap();
    vaultdb_testkit::get_missing(&m, "").await;
}

#[tokio::test]
#[should_panic(expected = "conformance check `large_object` failed")]
async fn suite_catches_bit_flips() {
    let c = Corrupting::new(MemoryBackend::new("flip", "Flips bits"));
    vaultdb_testkit::large_object_of(&c, "", 1024).await;
}

// ------------------------------------------------------------------ MemoryBackend

#[tokio::test]
async fn memory_helpers_inspect_and_tamper() {
    let m = MemoryBackend::new("m1", "Memory one");
    put(&m, "r/1", "one").await;
    put(&m, "r/2", "two").await;
    assert_eq!(m.object_count(), 2);
    assert_eq!(m.keys(), ["r/1", "r/2"]);
    assert_eq!(m.snapshot(), vec![("r/1".to_owned(), b("one")), ("r/2".to_owned(), b("two"))]);
    // Tamper with stored bytes behind the trait's back.
    assert_eq!(m.raw_put("r/1", b("evil")), Some(b("one")));
    assert_eq!(m.get(&k("r/1"), ANY).await.unwrap(), Some(b("evil")));
    assert_eq!(m.raw_delete("r/2"), Some(b("two")));
    assert_eq!(m.get(&k("r/2"), ANY).await.unwrap(), None);
    assert_eq!(m.raw_get("r/1"), Some(b("evil")));
    let debug = format!("{m:?}");
    assert_eq!(debug, r#"MemoryBackend { id: "m1", name: "Memory one", objects: 1 }"#);
    m.clear();
    assert_eq!(m.object_count(), 0);
    assert!(Key::new("bad//key").is_err(), "invalid keys cannot even be made");
    assert_eq!(m.page_size(), 1000);
}

#[tokio::test]
async fn memory_cursor_is_exclusive_and_deterministic() {
    let m = MemoryBackend::new("m", "m").with_page_size(2);
    for k in ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1"] {
        put(&m, k, "x").await;
    }
    let p1 = m.list_page(&p("a/"), ListFrom::Start).await.unwrap();
    assert_eq!((keys(&p1), p1.next.as_deref()), (vec!["a/1", "a/2"], Some("a/2")));
    let cursor = |page: &ListPage| ListFrom::Cursor(page.next.clone().unwrap());
    let p2 = m.list_page(&p("a/"), cursor(&p1)).await.unwrap();
    assert_eq!(keys(&p2), ["a/3", "a/4"]);
    let p3 = m.list_page(&p("a/"), cursor(&p2)).await.unwrap();
    assert_eq!((keys(&p3), p3.next.as_deref()), (vec!["a/5"], None));
    // The same cursor gives the same page again.
    assert_eq!(keys(&m.list_page(&p("a/"), cursor(&p1)).await.unwrap()), ["a/3", "a/4"]);
    // A cursor before the prefix starts at the prefix.
    let before = m.list_page(&p("b/"), ListFrom::Cursor("a/9".into())).await.unwrap();
    assert_eq!(keys(&before), ["b/1"]);
}

// ------------------------------------------------------------------ wrappers

#[tokio::test]
async fn failing_fails_and_recovers() {
    let m = mem();
    let f = Failing::new(m.clone());
    let ctl = f.handle();
    put(&f, "k", "v").await;

    ctl.fail(Ops::PUT | Ops::DELETE, BackendErrorKind::Permanent);
    assert_eq!(ctl.failing_ops(), Ops::PUT | Ops::DELETE);
    assert_eq!(kind(f.put(&k("k2"), b("v"), PutMode::Create).await), BackendErrorKind::Permanent);
    assert_eq!(kind(f.delete(&k("k")).await), BackendErrorKind::Permanent);
    assert_eq!(f.get(&k("k"), ANY).await.unwrap(), Some(b("v")), "gets still go through");
    assert!(f.list_all(&p("")).await.is_ok());
    assert_eq!(m.keys(), ["k"], "failed calls never reach the inner backend");

    ctl.set_down(true);
    assert!(ctl.is_down());
    let e = f.get(&k("k"), ANY).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(kind(f.list_page(&p(""), ListFrom::Start).await), BackendErrorKind::Transient);
    assert_eq!(
        kind(f.put(&k("k3"), b("v"), PutMode::Overwrite).await),
        BackendErrorKind::Transient
    );
    assert_eq!(ctl.injected(), 5);

    ctl.set_down(false);
    assert_eq!(ctl.failing_ops(), Ops::NONE);
    put(&f, "k4", "v").await;
    f.delete(&k("k")).await.unwrap();
    assert_eq!(m.keys(), ["k4"]);
    assert_eq!((f.id(), f.name()), ("mem", "Memory"));
    assert_eq!(ctl.injected(), 5);
}

#[tokio::test]
async fn failing_flipped_from_another_task() {
    let f = Arc::new(Failing::new(mem()));
    let ctl = f.handle();
    let flipper = tokio::spawn(async move {
        ctl.fail(Ops::GET, BackendErrorKind::Other);
    });
    flipper.await.unwrap();
    assert_eq!(kind(f.get(&k("k"), ANY).await), BackendErrorKind::Other);
    f.handle().heal();
    assert_eq!(f.get(&k("k"), ANY).await.unwrap(), None);
}

#[tokio::test]
async fn slow_delays_calls() {
    let s = Slow::new(mem(), Duration::from_millis(30));
    let ctl = s.handle();
    let t = Instant::now();
    put(&s, "k", "v").await;
    s.get(&k("k"), ANY).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(60));

    // A very long delay really blocks the call...
    ctl.set_delay(Duration::from_secs(3600));
    assert_eq!(ctl.delay(), Duration::from_secs(3600));
    assert!(tokio::time::timeout(Duration::from_millis(50), s.get(&k("k"), ANY)).await.is_err());
    // ...but only for the chosen operations.
    ctl.set_ops(Ops::PUT);
    assert_eq!(ctl.ops(), Ops::PUT);
    let got = tokio::time::timeout(Duration::from_secs(10), s.get(&k("k"), ANY)).await;
    assert_eq!(got.unwrap().unwrap(), Some(b("v")));
    assert!(tokio::time::timeout(Duration::from_millis(50), s.delete(&k("k"))).await.is_ok());
    ctl.set_ops(Ops::ALL);
    ctl.set_delay(Duration::ZERO);
    let got = tokio::time::timeout(Duration::from_secs(10), s.list_all(&p(""))).await;
    assert!(got.unwrap().unwrap().is_empty());
}

#[tokio::test]
async fn corrupting_changes_bytes() {
    let m = mem();
    let c = Corrupting::new(m.clone());
    let ctl = c.handle();
    let original = Bytes::from((0u8..=255).collect::<Vec<_>>());
    c.put(&k("rec/a"), original.clone(), PutMode::Create).await.unwrap();
    c.put(&k("rec/empty"), Bytes::new(), PutMode::Create).await.unwrap();

    assert!(ctl.is_enabled());
    let flipped = c.get(&k("rec/a"), ANY).await.unwrap().unwrap();
    assert_eq!(flipped.len(), original.len());
    let diff: Vec<usize> = (0..256).filter(|&i| flipped[i] != original[i]).collect();
    assert_eq!(diff, [128]);
    assert_eq!(flipped[128] ^ original[128], 1);

    ctl.set_mode(CorruptMode::Rewrite);
    let rewritten = c.get(&k("rec/a"), ANY).await.unwrap().unwrap();
    assert!(rewritten.iter().zip(original.iter()).all(|(x, y)| x != y));
    ctl.set_mode(CorruptMode::Truncate);
    assert_eq!(c.get(&k("rec/a"), ANY).await.unwrap().unwrap(), original.slice(..255));
    assert_eq!(c.get(&k("rec/empty"), ANY).await.unwrap().unwrap(), Bytes::from_static(&[1]));
    assert_eq!(c.get(&k("rec/missing"), ANY).await.unwrap(), None);
    assert_eq!(ctl.corrupted(), 4);
    // The stored bytes are untouched.
    assert_eq!(m.raw_get("rec/a"), Some(original.clone()));

    ctl.set_enabled(false);
    assert_eq!(c.get(&k("rec/a"), ANY).await.unwrap(), Some(original.clone()));
    assert_eq!(ctl.corrupted(), 4);

    // Only keys matching a predicate.
    let only = Corrupting::new(m.clone()).only_keys(|k| k.ends_with("/a"));
    assert_ne!(only.get(&k("rec/a"), ANY).await.unwrap(), Some(original.clone()));
    assert_eq!(only.get(&k("rec/empty"), ANY).await.unwrap(), Some(Bytes::new()));
    assert_eq!(only.handle().mode(), CorruptMode::FlipBit);
}

#[tokio::test]
async fn stale_serves_older_and_swapped_objects() {
    let m = mem();
    let s = Stale::new(m.clone());
    let ctl = s.handle();
    put(&s, "rec1/v1", "rec1 version 1").await;
    put(&s, "rec1/v2", "rec1 version 2").await;
    put(&s, "rec2/v1", "rec2 version 1").await;
    s.put(&k("rec2/v1"), b("rec2 version 1b"), PutMode::Overwrite).await.unwrap();

    assert_eq!(ctl.mode(), StaleMode::Off);
    assert_eq!(s.get(&k("rec1/v2"), ANY).await.unwrap(), Some(b("rec1 version 2")));

    ctl.set_mode(StaleMode::Older);
    // An older version of the same record.
    assert_eq!(s.get(&k("rec1/v2"), ANY).await.unwrap(), Some(b("rec1 version 1")));
    // Nothing older in the group: the real object.
    assert_eq!(s.get(&k("rec1/v1"), ANY).await.unwrap(), Some(b("rec1 version 1")));
    // After an overwrite: the key's own earlier bytes.
    assert_eq!(s.get(&k("rec2/v1"), ANY).await.unwrap(), Some(b("rec2 version 1")));
    // A key never written serves the newest of its group, even if deleted since.
    s.delete(&k("rec1/v2")).await.unwrap();
    assert_eq!(s.get(&k("rec1/v3"), ANY).await.unwrap(), Some(b("rec1 version 2")));
    assert_eq!(ctl.served(), 3);

    ctl.set_mode(StaleMode::Swap);
    assert_eq!(s.get(&k("rec1/v1"), ANY).await.unwrap(), Some(b("rec2 version 1b")));
    assert_eq!(s.get(&k("rec2/v1"), ANY).await.unwrap(), Some(b("rec1 version 2")));

    ctl.forget();
    assert_eq!(s.get(&k("rec1/v1"), ANY).await.unwrap(), Some(b("rec1 version 1")));
    assert_eq!(s.get(&k("rec1/v2"), ANY).await.unwrap(), None);

    // Custom grouping: by the first segment.
    let g = Stale::new(mem()).with_grouping(|k| k.split('/').next().unwrap_or("").to_owned());
    put(&g, "r/a/1", "first").await;
    put(&g, "r/b/2", "second").await;
    g.handle().set_mode(StaleMode::Older);
    assert_eq!(g.get(&k("r/b/2"), ANY).await.unwrap(), Some(b("first")));
}

#[tokio::test]
async fn crashing_stops_after_exactly_m_puts() {
    let m = mem();
    let c = Crashing::new(m.clone(), 3);
    let ctl = c.handle();
    for k in ["a", "b", "c"] {
        put(&c, k, "x").await;
    }
    assert!(ctl.crashed());
    assert_eq!(ctl.remaining(), Some(0));
    assert_eq!(kind(c.put(&k("d"), b("x"), PutMode::Create).await), BackendErrorKind::Transient);
    assert_eq!(kind(c.delete(&k("a")).await), BackendErrorKind::Transient);
    assert_eq!(m.keys(), ["a", "b", "c"]);
    // Reads still work.
    assert_eq!(c.get(&k("a"), ANY).await.unwrap(), Some(b("x")));
    assert_eq!(c.list_all(&p("")).await.unwrap().len(), 3);
    assert_eq!((ctl.accepted(), ctl.refused()), (3, 2));

    ctl.reset();
    assert!(!ctl.crashed());
    assert_eq!(ctl.remaining(), None);
    put(&c, "d", "x").await;
    c.delete(&k("a")).await.unwrap();

    ctl.arm(1);
    put(&c, "e", "x").await;
    assert!(c.put(&k("f"), b("x"), PutMode::Create).await.is_err());
    assert_eq!(m.keys(), ["b", "c", "d", "e"]);

    // A failing inner put still uses up the budget.
    ctl.arm(1);
    assert_eq!(
        kind(c.put(&k("e"), b("y"), PutMode::Create).await),
        BackendErrorKind::AlreadyExists
    );
    assert!(ctl.crashed());
}

#[tokio::test]
async fn crashing_under_concurrency_accepts_exactly_m() {
    let m = mem();
    let c = Crashing::new(m.clone(), 10);
    let keys: Vec<Key> = (0..50).map(|i| k(&format!("k{i}"))).collect();
    let results =
        futures::future::join_all(keys.iter().map(|key| c.put(key, b("x"), PutMode::Create))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert_eq!(m.object_count(), 10);
}

#[tokio::test]
async fn counting_counts() {
    let c = Counting::new(mem());
    let ctl = c.handle();
    put(&c, "a", "1").await;
    put(&c, "b", "2").await;
    assert!(c.put(&k("a"), b("3"), PutMode::Create).await.is_err());
    c.get(&k("a"), ANY).await.unwrap();
    c.get(&k("zz"), ANY).await.unwrap();
    c.delete(&k("b")).await.unwrap();
    c.list_page(&p(""), ListFrom::Start).await.unwrap();
    let counts = ctl.counts();
    assert_eq!((counts.puts, counts.gets, counts.deletes, counts.list_pages), (3, 2, 1, 1));
    assert_eq!(ctl.total(), 7);
    assert_eq!((ctl.puts(), ctl.gets(), ctl.deletes(), ctl.list_pages()), (3, 2, 1, 1));
    ctl.reset();
    assert_eq!(ctl.total(), 0);
}

#[tokio::test]
async fn randomized_injects_failures_by_probability() {
    let m = mem();
    let always = Randomized::new(m.clone(), 1, Duration::ZERO, 1.0);
    assert_eq!(
        kind(always.put(&k("k"), b("x"), PutMode::Create).await),
        BackendErrorKind::Transient
    );
    assert_eq!(kind(always.get(&k("k"), ANY).await), BackendErrorKind::Transient);
    assert_eq!(m.object_count(), 0, "failures happen before the call");
    always.handle().set_failing_ops(Ops::GET);
    put(&always, "k", "x").await;
    always.handle().set_enabled(false);
    assert_eq!(always.get(&k("k"), ANY).await.unwrap(), Some(b("x")));
    assert_eq!(always.handle().injected(), 2);

    let never = Randomized::new(m.clone(), 1, Duration::ZERO, 0.0);
    for _ in 0..100 {
        never.get(&k("k"), ANY).await.unwrap();
    }

    // About half of the calls fail, and a seed gives the same sequence every time.
    let outcomes = |seed| async move {
        let r = Randomized::new(MemoryBackend::new("r", "r"), seed, Duration::ZERO, 0.5);
        let mut v = Vec::new();
        for _ in 0..400 {
            v.push(r.get(&k("k"), ANY).await.is_ok());
        }
        v
    };
    let a = outcomes(42).await;
    assert_eq!(a, outcomes(42).await);
    assert_ne!(a, outcomes(43).await);
    let ok = a.iter().filter(|&&x| x).count();
    assert!((120..=280).contains(&ok), "{ok} of 400 succeeded");
}

#[tokio::test]
async fn randomized_delays_and_ambiguous_failures() {
    let m = mem();
    let r = Randomized::new(m.clone(), 9, Duration::from_millis(5), 1.0);
    let ctl = r.handle();
    ctl.set_ambiguous(true);
    ctl.set_failing_ops(Ops::PUT);
    let t = Instant::now();
    for i in 0..40 {
        let e = r.put(&k(&format!("k{i}")), b("x"), PutMode::Create).await.unwrap_err();
        assert!(e.is_transient());
    }
    assert!(t.elapsed() >= Duration::from_millis(20), "random delays of up to 5 ms");
    // Some puts took effect although they reported failure, others did not.
    let landed = m.object_count();
    assert!((5..=35).contains(&landed), "{landed} of 40 landed");
    assert_eq!(ctl.injected(), 40);
}

#[tokio::test]
async fn randomized_concurrent_clients_see_consistent_results() {
    // A concurrency smoke test: many tasks through random delays and failures; every put
    // that reported success is readable afterwards.
    let m = mem();
    let r = Arc::new(Randomized::new(m.clone(), 5, Duration::from_millis(2), 0.3));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            for i in 0..20 {
                let key = format!("t{t}/k{i}");
                if r.put(&k(&key), Bytes::from(key.clone()), PutMode::Create).await.is_ok() {
                    ok.push(key);
                }
            }
            ok
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    assert!(!written.is_empty());
    for k in &written {
        assert_eq!(m.raw_get(k), Some(Bytes::from(k.clone())));
    }
    assert_eq!(m.object_count(), written.len());
}

#[test]
fn wrappers_delegate_id_and_name_and_debug() {
    let inner: Arc<dyn StorageBackend> = Arc::new(MemoryBackend::new("id-1", "Name one"));
    let wrapped: Vec<Box<dyn StorageBackend>> = vec![
        Box::new(Failing::new(inner.clone())),
        Box::new(Slow::new(inner.clone(), Duration::ZERO)),
        Box::new(Corrupting::new(inner.clone())),
        Box::new(Stale::new(inner.clone())),
        Box::new(Crashing::new(inner.clone(), 1)),
        Box::new(Counting::new(inner.clone())),
        Box::new(Randomized::new(inner.clone(), 1, Duration::ZERO, 0.0)),
    ];
    let names = ["Failing", "Slow", "Corrupting", "Stale", "Crashing", "Counting", "Randomized"];
    for (w, name) in wrapped.iter().zip(names) {
        assert_eq!((w.id(), w.name()), ("id-1", "Name one"));
        let debug = format!("{w:?}");
        assert!(debug.starts_with(&format!("{name} {{ inner: {inner:?}, ")), "{debug}");
        assert!(debug.contains(&format!("ctl: {name}Handle")), "{debug}");
    }
}
