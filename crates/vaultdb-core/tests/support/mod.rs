//! The fixture of the re-sharing tests (`reshare.rs`, `review_reshare.rs`,
//! `review_floor.rs`): backends under switches to fail them, count their calls and crash
//! the process at a call budget, and stores built over them.
#![allow(dead_code)] // Each test binary uses its own part of it.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use vaultdb_core::{
    BackendError, CallPolicy, ErrorCode, MemoryBackend, Mode, ReshareOptions, ResharePhase,
    StorageBackend, VaultDb,
};
use vaultdb_testkit::{Counting, CountingHandle, Failing, FailingHandle, Ops, forward_backend};

/// One backend: its memory, and switches to fail it and count its calls.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) mem: Arc<MemoryBackend>,
    pub(crate) fail: FailingHandle,
    pub(crate) count: CountingHandle,
    pub(crate) backend: Arc<dyn StorageBackend>,
}

pub(crate) fn node(id: &str) -> Node {
    let mem = Arc::new(MemoryBackend::new(id, format!("backend {id}")));
    let counting = Counting::new(mem.clone());
    let count = counting.handle();
    let failing = Failing::new(counting);
    let fail = failing.handle();
    let backend = Arc::new(Budgeted(failing));
    Node { id: id.to_owned(), mem, fail, count, backend }
}

thread_local! {
    /// Calls the backends may still take, all together, before the process "crashes": from
    /// then on every call hangs, and the test drops the operation (negative: no limit). Per
    /// thread: each test runs on its own current-thread runtime.
    pub(crate) static CALLS_LEFT: Cell<i64> = const { Cell::new(-1) };
    /// Calls the backends took (counted with no crash armed too).
    pub(crate) static CALLS_MADE: Cell<i64> = const { Cell::new(0) };
}

/// Hangs every call once [`CALLS_LEFT`] reaches zero (counting it down when positive).
#[derive(Debug)]
pub(crate) struct Budgeted<B>(pub(crate) B);

impl<B> Budgeted<B> {
    async fn admit(&self, _op: Ops) -> Result<(), BackendError> {
        CALLS_MADE.set(CALLS_MADE.get() + 1);
        match CALLS_LEFT.get() {
            0 => std::future::pending::<()>().await,
            left if left > 0 => CALLS_LEFT.set(left - 1),
            _ => {}
        }
        Ok(())
    }
}

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Budgeted<B> {
        forward id, name, put, get, delete, list_page to self.0 after self.admit;
    }
}

pub(crate) fn nodes(ids: &[&str]) -> Vec<Node> {
    ids.iter().map(|id| node(id)).collect()
}

/// A store's configuration: backends, K, prefix, mode.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) nodes: Vec<Node>,
    pub(crate) k: usize,
    pub(crate) prefix: &'static str,
    pub(crate) mode: Option<Mode>,
}

pub(crate) fn builder(c: &Config) -> vaultdb_core::VaultDbBuilder {
    let mut b = VaultDb::builder()
        .threshold(c.k)
        .prefix(c.prefix)
        .segment_size(1024)
        .hedge_after(None)
        .read_repair(false)
        .call_policy(CallPolicy {
            timeout: Duration::from_millis(200),
            max_attempts: 1,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        });
    if let Some(mode) = c.mode {
        b = b.mode(mode);
    }
    for n in &c.nodes {
        b = b.backend_arc(n.backend.clone());
    }
    b
}

pub(crate) async fn open(c: &Config) -> VaultDb {
    builder(c).open().await.unwrap()
}

pub(crate) async fn open_migrating(c: &Config, old: &VaultDb) -> VaultDb {
    builder(c).migrating_from(old.clone()).open().await.unwrap()
}

/// A store's configuration over new backends `ids`, K of them, under `prefix`.
pub(crate) fn cfg(ids: &[&str], k: usize, prefix: &'static str) -> Config {
    Config { nodes: nodes(ids), k, prefix, mode: None }
}

/// A record's data, or the error code of its read.
pub(crate) async fn data(db: &VaultDb, id: &str) -> Result<Vec<u8>, ErrorCode> {
    db.get(id).await.map(|g| g.record.data).map_err(|e| e.code())
}

pub(crate) static DEFAULTS: std::sync::LazyLock<ReshareOptions> =
    std::sync::LazyLock::new(ReshareOptions::default);

/// Runs a re-share of `old` into `new` until it has fenced the old store, recorded its floor
/// and begun the copy, then drops it there (a crash of its process).
pub(crate) async fn stop_once_copying(old: &VaultDb, new: &VaultDb) {
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    tokio::select! {
        _ = old.reshare(new, &DEFAULTS, |p| {
            tx.send_replace(Some(p.phase));
        }) => panic!("finished"),
        _ = rx.wait_for(|p| *p == Some(ResharePhase::Copying)) => {}
    }
}
