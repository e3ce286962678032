//! [`Randomized`]: seeded random delays and transient failures.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use vaultdb_core::backend::{
    BackendError, Key, KeyPrefix, ListFrom, ListPage, PutMode, StorageBackend,
};

use crate::{Ops, forward_backend, handle_and_inner};

/// Failure probabilities are kept in parts per million.
const PPM: u32 = 1_000_000;

/// A wrapper for concurrency and retry tests: before each call it sleeps a random time in
/// `0..=max_delay` and, with probability `p`, fails the call with a transient error instead
/// of forwarding it.
///
/// The randomness is a xorshift64* generator seeded by the caller, shared by all calls, so a
/// single-task test sees the same sequence of delays and failures on every run (with
/// concurrent calls the interleaving decides which call draws which number).
///
/// With [`RandomizedHandle::set_ambiguous`] on, half of the injected failures of `put` and
/// `delete` happen *after* the inner call has completed: the operation took effect but the
/// caller is told it failed, as when a connection drops before the response arrives.
#[derive(Debug)]
pub struct Randomized<B> {
    inner: B,
    ctl: RandomizedHandle,
}

/// Controls a [`Randomized`] wrapper; clones control the same wrapper.
#[derive(Clone)]
pub struct RandomizedHandle {
    state: Arc<RandState>,
}

struct RandState {
    rng: AtomicU64,
    enabled: AtomicBool,
    ambiguous: AtomicBool,
    max_delay_micros: AtomicU64,
    fail_ppm: AtomicU32,
    fail_ops: AtomicU8,
    injected: AtomicU64,
}

impl<B: StorageBackend> Randomized<B> {
    /// Wraps `inner` with a generator seeded by `seed`, delays up to `max_delay` and a
    /// failure probability of `failure_probability` (clamped to `0.0..=1.0`) on every
    /// operation.
    pub fn new(inner: B, seed: u64, max_delay: Duration, failure_probability: f64) -> Self {
        let state = RandState {
            rng: AtomicU64::new(seed_state(seed)),
            enabled: AtomicBool::new(true),
            ambiguous: AtomicBool::new(false),
            max_delay_micros: AtomicU64::new(0),
            fail_ppm: AtomicU32::new(0),
            fail_ops: AtomicU8::new(Ops::ALL.bits()),
            injected: AtomicU64::new(0),
        };
        let ctl = RandomizedHandle { state: Arc::new(state) };
        ctl.set_max_delay(max_delay);
        ctl.set_failure_probability(failure_probability);
        Self { inner, ctl }
    }

    /// Sleeps, then decides the call's fate: `None` to forward it, `Some(after)` to fail it
    /// (after forwarding it, when `after`).
    async fn before(&self, op: Ops) -> Option<bool> {
        let s = &self.ctl.state;
        if !s.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let max = s.max_delay_micros.load(Ordering::SeqCst);
        if max > 0 {
            let d = self.ctl.next() % (max + 1);
            if d > 0 {
                tokio::time::sleep(Duration::from_micros(d)).await;
            }
        }
        let ppm = u64::from(s.fail_ppm.load(Ordering::SeqCst));
        let ops = Ops::from_bits(s.fail_ops.load(Ordering::SeqCst));
        if ppm == 0 || !ops.contains(op) || self.ctl.next() % u64::from(PPM) >= ppm {
            return None;
        }
        s.injected.fetch_add(1, Ordering::SeqCst);
        let can_be_after = op == Ops::PUT || op == Ops::DELETE;
        Some(can_be_after && s.ambiguous.load(Ordering::SeqCst) && self.ctl.next() & 1 == 1)
    }

    fn error(&self, what: &str, after: bool) -> BackendError {
        let when = if after { "after the call" } else { "before the call" };
        BackendError::transient(format!(
            "injected random failure: {what} on {} ({when})",
            self.inner.id()
        ))
    }
}

handle_and_inner!(Randomized, RandomizedHandle, "The handle that tunes the randomness.");

/// Scrambles the seed (splitmix64) so that nearby seeds give unrelated streams; xorshift
/// must not start at zero.
fn seed_state(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z }
}

impl RandomizedHandle {
    /// The next number from the generator (xorshift64*).
    fn next(&self) -> u64 {
        let step = |mut x: u64| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x
        };
        let prev = self
            .state
            .rng
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |x| Some(step(x)))
            .unwrap_or_else(|x| x);
        step(prev).wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Switches all randomness on or off (off: transparent).
    pub fn set_enabled(&self, on: bool) {
        self.state.enabled.store(on, Ordering::SeqCst);
    }

    /// Sets the longest random delay (zero: no delays).
    pub fn set_max_delay(&self, max: Duration) {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX - 1);
        self.state.max_delay_micros.store(micros, Ordering::SeqCst);
    }

    /// Sets the probability that a call fails, clamped to `0.0..=1.0` (resolution 1e-6).
    pub fn set_failure_probability(&self, p: f64) {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        // In range 0..=1_000_000 after the clamp, so the cast is exact enough and cannot wrap.
        let ppm = (p * f64::from(PPM)).round() as u32;
        self.state.fail_ppm.store(ppm, Ordering::SeqCst);
    }

    /// Injects failures only into the operations in `ops` (delays still apply to all).
    pub fn set_failing_ops(&self, ops: Ops) {
        self.state.fail_ops.store(ops.bits(), Ordering::SeqCst);
    }

    /// Lets half the failures of `put` and `delete` happen after the call took effect.
    pub fn set_ambiguous(&self, on: bool) {
        self.state.ambiguous.store(on, Ordering::SeqCst);
    }

    /// How many failures have been injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for RandomizedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.state;
        f.debug_struct("RandomizedHandle")
            .field("enabled", &s.enabled.load(Ordering::SeqCst))
            .field("max_delay", &Duration::from_micros(s.max_delay_micros.load(Ordering::SeqCst)))
            .field("failure_ppm", &s.fail_ppm.load(Ordering::SeqCst))
            .field("injected", &self.injected())
            .finish()
    }
}

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Randomized<B> {
        forward id, name to self.inner;

        async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
            match self.before(Ops::PUT).await {
                None => self.inner.put(key, data, mode).await,
                Some(false) => Err(self.error("put", false)),
                Some(true) => {
                    let _ = self.inner.put(key, data, mode).await;
                    Err(self.error("put", true))
                }
            }
        }

        async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
            match self.before(Ops::GET).await {
                None => self.inner.get(key, max_len).await,
                Some(_) => Err(self.error("get", false)),
            }
        }

        async fn delete(&self, key: &Key) -> Result<(), BackendError> {
            match self.before(Ops::DELETE).await {
                None => self.inner.delete(key).await,
                Some(false) => Err(self.error("delete", false)),
                Some(true) => {
                    let _ = self.inner.delete(key).await;
                    Err(self.error("delete", true))
                }
            }
        }

        async fn list_page(
            &self,
            prefix: &KeyPrefix,
            from: ListFrom,
        ) -> Result<ListPage, BackendError> {
            match self.before(Ops::LIST).await {
                None => self.inner.list_page(prefix, from).await,
                Some(_) => Err(self.error("list", false)),
            }
        }
    }
}
