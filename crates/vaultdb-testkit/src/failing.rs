//! [`Failing`]: operations fail on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use vaultdb_core::backend::{BackendError, BackendErrorKind, StorageBackend};

use crate::{Ops, forward_backend, handle_and_inner, handle_debug, kind_from_u8, kind_to_u8};

/// A wrapper whose operations fail on demand, without reaching the inner backend.
///
/// While switched on (through its [`FailingHandle`]) every call to one of the chosen
/// operations returns an error of the chosen kind; the others go through. Switched off (the
/// initial state), it is transparent. [`FailingHandle::set_down`] is the "backend down /
/// partitioned" switch: every operation fails with a transient error.
///
/// ```
/// # futures::executor::block_on(async {
/// use vaultdb_testkit::{Failing, Ops};
/// use vaultdb_core::{BackendErrorKind, Key, MemoryBackend, PutMode, StorageBackend};
///
/// let backend = Failing::new(MemoryBackend::new("m", "memory"));
/// let ctl = backend.handle();
/// let key = Key::new("k").unwrap();
/// ctl.fail(Ops::PUT, BackendErrorKind::Permanent);
/// let err = backend.put(&key, "v".into(), PutMode::Create).await.unwrap_err();
/// assert_eq!(err.kind(), BackendErrorKind::Permanent);
/// ctl.heal();
/// assert!(backend.put(&key, "v".into(), PutMode::Create).await.is_ok());
/// # });
/// ```
#[derive(Debug)]
pub struct Failing<B> {
    inner: B,
    ctl: FailingHandle,
}

/// Controls a [`Failing`] wrapper; clones control the same wrapper.
#[derive(Clone, Default)]
pub struct FailingHandle {
    state: Arc<FailState>,
}

#[derive(Default)]
struct FailState {
    ops: AtomicU8,
    kind: AtomicU8,
    injected: AtomicU64,
}

impl<B: StorageBackend> Failing<B> {
    /// Wraps `inner`; nothing fails until the handle says so.
    pub fn new(inner: B) -> Self {
        Self { inner, ctl: FailingHandle::default() }
    }

    /// Fails the call to `op` when the handle says so; run before every forwarded call.
    async fn admit(&self, op: Ops) -> Result<(), BackendError> {
        let s = &self.ctl.state;
        if Ops::from_bits(s.ops.load(Ordering::SeqCst)).contains(op) {
            s.injected.fetch_add(1, Ordering::Relaxed);
            let kind = kind_from_u8(s.kind.load(Ordering::SeqCst));
            let what = match op {
                Ops::PUT => "put",
                Ops::GET => "get",
                Ops::DELETE => "delete",
                _ => "list",
            };
            return Err(BackendError::new(
                kind,
                format!("injected failure: {what} on {} ({kind})", self.inner.id()),
            ));
        }
        Ok(())
    }
}

handle_and_inner!(Failing, FailingHandle, "The handle that switches failures on and off.");

impl FailingHandle {
    /// From now on, the operations in `ops` fail with errors of `kind` (replacing any earlier
    /// setting).
    pub fn fail(&self, ops: Ops, kind: BackendErrorKind) {
        self.state.kind.store(kind_to_u8(kind), Ordering::SeqCst);
        self.state.ops.store(ops.bits(), Ordering::SeqCst);
    }

    /// Takes the backend down (every operation fails with a transient error, as when it is
    /// unreachable) or brings it back up (`false`, the same as [`heal`](Self::heal)).
    pub fn set_down(&self, down: bool) {
        if down { self.fail(Ops::ALL, BackendErrorKind::Transient) } else { self.heal() }
    }

    /// Stops injecting failures.
    pub fn heal(&self) {
        self.state.ops.store(0, Ordering::SeqCst);
    }

    /// The operations that currently fail.
    pub fn failing_ops(&self) -> Ops {
        Ops::from_bits(self.state.ops.load(Ordering::SeqCst))
    }

    /// The kind of error the failing operations return.
    pub fn kind(&self) -> BackendErrorKind {
        kind_from_u8(self.state.kind.load(Ordering::SeqCst))
    }

    /// True while every operation fails.
    pub fn is_down(&self) -> bool {
        self.failing_ops() == Ops::ALL
    }

    /// How many calls have been failed so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::Relaxed)
    }
}

handle_debug!(FailingHandle { failing: failing_ops, kind, injected });

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Failing<B> {
        forward id, name, put, get, delete, list_page to self.inner after self.admit;
    }
}
