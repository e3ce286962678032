//! The call policy: timeouts, retries with backoff, and latency tracking, for one backend
//! call at a time.
//!
//! Backends never retry on their own (the trait's contract); every call the client makes
//! (all of them in the fan-out layer, `fanout.rs`) goes through [`CallPolicy::run`], which
//! bounds each attempt by a timeout and retries transient failures with exponential backoff
//! and jitter.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::BackendError;
use crate::error::OutcomeStatus;

/// Timeouts and retries for backend calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallPolicy {
    /// Upper bound on one attempt of one call.
    pub timeout: Duration,
    /// Attempts per call, including the first (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl CallPolicy {
    /// The longest one call can take with its retries: every attempt timing out, with
    /// every backoff between them.
    pub fn longest_call(&self) -> Duration {
        let mut total = self.timeout.saturating_mul(self.max_attempts.max(1));
        let mut backoff = self.base_backoff;
        for _ in 1..self.max_attempts {
            total = total.saturating_add(backoff.min(self.max_backoff));
            backoff = backoff.saturating_mul(2);
        }
        total
    }
}

/// Why a call failed after its retries.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The backend's own error (the last one, for retried calls).
    Backend(BackendError),
    /// Every attempt timed out.
    TimedOut,
    /// Not waited for: a read had what it needed from the other backends (reported as
    /// `Skipped`, not as a failure).
    NotAwaited,
}

impl CallError {
    pub(crate) fn status(&self) -> OutcomeStatus {
        match self {
            CallError::Backend(e) => {
                OutcomeStatus::Failed { kind: e.kind(), message: e.to_string() }
            }
            CallError::TimedOut => OutcomeStatus::TimedOut,
            CallError::NotAwaited => OutcomeStatus::Skipped,
        }
    }

    /// A copy without the source chain (for fanning one listing failure out to many
    /// records).
    pub(crate) fn duplicate(&self) -> CallError {
        match self {
            CallError::TimedOut => CallError::TimedOut,
            CallError::NotAwaited => CallError::NotAwaited,
            CallError::Backend(e) => CallError::Backend(BackendError::new(e.kind(), e.to_string())),
        }
    }
}

/// Result of a call: the value and how many attempts it took.
pub(crate) struct Called<T> {
    pub(crate) value: T,
    /// Attempts made (checked by the tests of the policy).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) attempts: u32,
}

impl CallPolicy {
    /// Runs `f` under the policy. A timed-out attempt counts as transient.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<Called<T>, CallError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let max = self.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match tokio::time::timeout(self.timeout, f()).await {
                Ok(Ok(value)) => {
                    return Ok(Called { value, attempts: attempt });
                }
                Ok(Err(e)) if !e.is_transient() => return Err(CallError::Backend(e)),
                Ok(Err(e)) => CallError::Backend(e),
                Err(_) => CallError::TimedOut,
            };
            if attempt >= max {
                return Err(err);
            }
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// Backoff after failed attempt `attempt` (1-based): exponential with "equal jitter".
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1u32 << (attempt - 1).min(16));
        let cap = exp.min(self.max_backoff);
        let half = cap / 2;
        half + half.mul_f64(jitter())
    }
}

/// A number in [0, 1) for backoff jitter (not security relevant).
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let nanos = Instant::now().elapsed().as_nanos() as u64;
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15 ^ nanos, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Exponentially weighted moving average of one backend's read latency, used to ask the
/// fastest backends first.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    micros: AtomicU64,
}

impl Latency {
    pub(crate) fn record(&self, d: Duration) {
        let sample = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.micros.load(Ordering::Relaxed);
        let new = if old == 0 { sample.max(1) } else { (old * 7 + sample) / 8 };
        self.micros.store(new.max(1), Ordering::Relaxed);
    }

    /// Records a call abandoned after `waited` (a hedged fetch that was overtaken): its
    /// latency is at least that, so the sample is a lower bound, and the backend moves back
    /// in the order instead of keeping the head of it on an empty or stale average.
    pub(crate) fn record_at_least(&self, waited: Duration) {
        let floor = waited.as_micros().min(u128::from(u64::MAX)) as u64;
        if self.get() < floor {
            self.record(waited);
            if self.get() < floor {
                self.micros.store(floor.max(1), Ordering::Relaxed);
            }
        }
    }

    /// Penalizes a failed backend so it is asked last next time.
    pub(crate) fn penalize(&self) {
        self.micros.store(u64::MAX / 16, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.micros.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn fast() -> CallPolicy {
        CallPolicy {
            timeout: Duration::from_millis(50),
            max_attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let calls = AtomicU32::new(0);
        let r = fast()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(BackendError::transient("flaky"))
                } else {
                    Ok(7)
                }
            })
            .await;
        let c = r.unwrap();
        assert_eq!((c.value, c.attempts), (7, 3));
    }

    #[tokio::test]
    async fn permanent_is_not_retried() {
        let calls = AtomicU32::new(0);
        let r: Result<Called<()>, _> = fast()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(BackendError::permanent("denied"))
            })
            .await;
        assert!(
            matches!(r, Err(CallError::Backend(e)) if e.kind() == crate::BackendErrorKind::Permanent)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn timeouts_are_bounded() {
        let calls = AtomicU32::new(0);
        let start = Instant::now();
        let r: Result<Called<()>, _> = fast()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(CallError::TimedOut)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = CallPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..CallPolicy::default()
        };
        for _ in 0..100 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b5 = p.backoff(5);
            assert!(b5 >= Duration::from_millis(150) && b5 <= Duration::from_millis(300));
        }
    }
}
