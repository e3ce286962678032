//! [`Slow`]: every call takes longer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use vaultdb_core::backend::{BackendError, StorageBackend};

use crate::{Ops, forward_backend, handle_and_inner, handle_debug};

/// A wrapper that sleeps (`tokio::time::sleep`) before each call to the chosen operations
/// (all of them by default), then forwards it. The delay can be changed at any time through
/// the [`SlowHandle`]; a zero delay makes the wrapper transparent. Sleeping needs a Tokio
/// runtime with the time driver, as `#[tokio::test]` provides.
#[derive(Debug)]
pub struct Slow<B> {
    inner: B,
    ctl: SlowHandle,
}

/// Controls a [`Slow`] wrapper; clones control the same wrapper.
#[derive(Clone)]
pub struct SlowHandle {
    state: Arc<SlowState>,
}

struct SlowState {
    delay_nanos: AtomicU64,
    ops: AtomicU8,
}

impl<B: StorageBackend> Slow<B> {
    /// Wraps `inner`, delaying every operation by `delay`.
    pub fn new(inner: B, delay: Duration) -> Self {
        let state =
            SlowState { delay_nanos: AtomicU64::new(0), ops: AtomicU8::new(Ops::ALL.bits()) };
        let ctl = SlowHandle { state: Arc::new(state) };
        ctl.set_delay(delay);
        Self { inner, ctl }
    }

    /// Sleeps before a call to `op` if it is delayed; run before every forwarded call, it
    /// never fails one.
    async fn admit(&self, op: Ops) -> Result<(), BackendError> {
        if self.ctl.ops().contains(op) {
            let d = self.ctl.delay();
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
        }
        Ok(())
    }
}

handle_and_inner!(Slow, SlowHandle, "The handle that changes the delay.");

impl SlowHandle {
    /// Sets the delay (saturating at about 584 years).
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.state.delay_nanos.store(nanos, Ordering::SeqCst);
    }

    /// The current delay.
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(self.state.delay_nanos.load(Ordering::SeqCst))
    }

    /// Delays only the operations in `ops` from now on.
    pub fn set_ops(&self, ops: Ops) {
        self.state.ops.store(ops.bits(), Ordering::SeqCst);
    }

    /// The operations that are delayed.
    pub fn ops(&self) -> Ops {
        Ops::from_bits(self.state.ops.load(Ordering::SeqCst))
    }
}

handle_debug!(SlowHandle { delay, ops });

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Slow<B> {
        forward id, name, put, get, delete, list_page to self.inner after self.admit;
    }
}
