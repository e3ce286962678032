//! Two pieces of one operation at once: one on the calling thread, the other on a pooled
//! thread, each borrowing the operation's buffers.
//!
//! A large put computes its HMAC here while its split runs beside it; a large get checks its
//! MAC here while chunks are rebuilt beside it (`client/shares.rs`). Before this module each
//! operation started a thread of its own (`std::thread::scope`): on the two-core VMs
//! measured (2026-12-07) starting one cost the calling thread about 20 us of a 1 MiB get
//! (`perf`: 3% in `clone`), and it began to run 0.15-0.3 ms later. The threads here are
//! started once, named `vaultdb-pair-N`, and wait parked between operations.
//!
//! If the pool cannot be started, the second piece runs on the calling thread after the
//! first, so nothing depends on it but speed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

static POOL: OnceLock<Option<rayon_core::ThreadPool>> = OnceLock::new();

fn pool() -> Option<&'static rayon_core::ThreadPool> {
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("vaultdb-pair-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
thread_local! {
    /// Tests: act as if the pool could not be started, on this thread.
    pub(crate) static NO_POOL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn pool_here() -> Option<&'static rayon_core::ThreadPool> {
    #[cfg(test)]
    if NO_POOL.with(std::cell::Cell::get) {
        return None;
    }
    pool()
}

/// Runs `here` on this thread while `there` runs on a pooled thread, and returns both
/// results once both are done; `None` for `there` if it panicked (the caller decides what
/// that means: its work may be left undone, never half-reported).
///
/// Without a pool both run here, `there` first: `here` may wait for what `there` produces
/// (a get's caller waits for the chunks the other side claimed), never the other way round.
pub(crate) fn beside<A, B: Send>(
    here: impl FnOnce() -> A,
    there: impl FnOnce() -> B + Send,
) -> (A, Option<B>) {
    let there = || catch_unwind(AssertUnwindSafe(there)).ok();
    let Some(pool) = pool_here() else {
        let b = there();
        return (here(), b);
    };
    let mut b = None;
    let a = pool.in_place_scope(|scope| {
        scope.spawn(|_| b = there());
        here()
    });
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_run_and_borrow_the_callers_data() {
        let mut left = vec![0u8; 1000];
        let mut right = vec![0u8; 1000];
        let (a, b) = beside(
            || {
                left.fill(1);
                std::thread::current().id()
            },
            || {
                right.fill(2);
                std::thread::current().id()
            },
        );
        assert_eq!(a, std::thread::current().id(), "the first piece runs here");
        assert!(b.is_some());
        assert!(left.iter().all(|&x| x == 1) && right.iter().all(|&x| x == 2));
    }

    #[test]
    fn a_panic_beside_is_none_and_the_first_piece_still_answers() {
        let (a, b) = beside(|| 7, || -> u8 { panic!("beside") });
        assert_eq!((a, b), (7, None));
    }
}
