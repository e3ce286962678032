//! The in-flight byte budget, which bounds the client's memory.
//!
//! Every put and every segment being encoded, written or fetched holds a share of the
//! budget ([`Settings::max_inflight_bytes`]) while its buffers live; an operation that
//! would exceed it waits (backpressure) instead of buffering. The budget also says how
//! much each kind of operation holds and how many segments one stream keeps in flight.
//!
//! [`Settings::max_inflight_bytes`]: super::Settings::max_inflight_bytes

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::padding::Padding;

/// Budget units are KiB, so that any budget fits the semaphore's u32 permits.
const UNIT: usize = 1024;

/// The most segments one stream keeps in flight, whatever the budget.
const MAX_WINDOW: usize = 8;

/// The smallest budget (one unit).
pub(crate) const MIN_BUDGET: usize = UNIT;

/// A client's in-flight byte budget: a semaphore of KiB permits.
#[derive(Debug)]
pub(crate) struct Budget {
    permits: Semaphore,
    /// The budget in units (at most `u32::MAX >> 3`, the semaphore's limit).
    units: usize,
    max_bytes: usize,
    /// Bytes one segment holds (see [`Budget::segment_cost`]).
    segment_cost: usize,
    /// Backends per write (N).
    n: usize,
    padding: Padding,
}

impl Budget {
    /// A budget of `max_bytes` (at least [`MIN_BUDGET`]) for a client of `n` backends that
    /// cuts records into `segment_size` segments and pads secrets with `padding`.
    pub(crate) fn new(max_bytes: usize, segment_size: usize, n: usize, padding: Padding) -> Self {
        let units = (max_bytes / UNIT).min(u32::MAX as usize >> 3);
        Self {
            permits: Semaphore::new(units),
            units,
            max_bytes,
            segment_cost: segment_size.saturating_mul(n + 2),
            n,
            padding,
        }
    }

    /// Waits until `bytes` fit the budget and holds them until the permit drops. A request
    /// larger than the whole budget waits for all of it (and so runs alone).
    pub(crate) async fn admit(&self, bytes: usize) -> Option<SemaphorePermit<'_>> {
        let units = bytes.div_ceil(UNIT).clamp(1, self.units);
        // The semaphore is never closed, so acquiring cannot fail.
        self.permits.acquire_many(units as u32).await.ok()
    }

    /// Bytes an inline put of a `payload`-byte record holds at its peak: the secret and N
    /// envelopes.
    pub(crate) fn inline_cost(&self, payload: usize) -> usize {
        let secret = self.padding.padded_len(payload.saturating_add(200));
        secret.saturating_mul(self.n + 1)
    }

    /// Bytes one segment holds while written (plaintext, secret, N envelopes) or read (up
    /// to N fetched shares, the rebuilt secret and the yielded chunk).
    pub(crate) fn segment_cost(&self) -> usize {
        self.segment_cost
    }

    /// How many segments one stream keeps in flight.
    pub(crate) fn window(&self) -> usize {
        (self.max_bytes / self.segment_cost.max(1)).clamp(1, MAX_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admission_waits_for_the_budget() {
        let budget = Budget::new(8 * UNIT, 1024, 3, Padding::None);
        let a = budget.admit(6 * UNIT).await;
        // 3 KiB more does not fit beside 6 of 8 until the first permit drops.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), budget.admit(3 * UNIT));
        assert!(waiting.await.is_err());
        drop(a);
        let b = budget.admit(3 * UNIT).await;
        assert!(b.is_some());
        // Larger than the whole budget: waits for all of it, then runs.
        drop(b);
        assert!(budget.admit(100 * UNIT).await.is_some());
    }

    #[test]
    fn costs_and_window() {
        let budget = Budget::new(64 << 20, 4 << 20, 3, Padding::None);
        assert_eq!(budget.segment_cost(), 20 << 20);
        assert_eq!(budget.window(), 3);
        assert_eq!(Budget::new(1 << 20, 4 << 20, 3, Padding::None).window(), 1);
        assert_eq!(Budget::new(1 << 30, 1024, 3, Padding::None).window(), MAX_WINDOW);
        assert!(budget.inline_cost(1000) >= 4 * 1000);
    }
}
