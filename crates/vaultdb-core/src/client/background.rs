//! Work a client does after an operation has returned: removing the versions a put
//! superseded, read-repairs, the keyring check after an open.
//!
//! None of it is needed for correctness (scrub does all of it too), so none of it sits on an
//! operation's critical path. [`VaultDb::flush`](super::VaultDb::flush) waits for it, so
//! that a short-lived process (the CLI) can finish its work before it exits.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, Semaphore};

/// The most background tasks a client runs at once. Beyond it, a put removes what it
/// superseded itself before it returns (back-pressure: a client writing faster than its
/// cleanups finish slows down instead of piling up tasks), and optional work (settling,
/// read-repair) is left to the next read or to scrub.
pub(crate) const MAX_BACKGROUND: usize = 64;

/// Counts the background tasks a client has started and not yet finished.
#[derive(Debug)]
pub(crate) struct Background {
    pending: AtomicUsize,
    idle: Notify,
    slots: Arc<Semaphore>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            slots: Arc::new(Semaphore::new(MAX_BACKGROUND)),
        }
    }
}

/// Decrements the count when a task ends, however it ends (finished, panicked, aborted).
struct Running(Arc<Background>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Background {
    /// Starts `work` on the current Tokio runtime. Outside a runtime (no async caller),
    /// the work is dropped: scrub does it later.
    pub(crate) fn spawn(self: &Arc<Self>, work: impl Future<Output = ()> + Send + 'static) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        self.pending.fetch_add(1, Ordering::AcqRel);
        let running = Running(Arc::clone(self));
        handle.spawn(async move {
            let _running = running;
            work.await;
        });
    }

    /// Starts `work` in the background if fewer than [`MAX_BACKGROUND`] tasks run;
    /// otherwise gives it back, for the caller to run itself or to drop.
    pub(crate) fn spawn_bounded<F>(self: &Arc<Self>, work: F) -> Option<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Some(work);
        }
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            return Some(work);
        };
        self.spawn(async move {
            let _slot = slot;
            work.await;
        });
        None
    }

    /// How many tasks are still running.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Waits until no task is running (tasks started meanwhile are waited for too).
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_every_task_including_ones_started_later() {
        let bg = Arc::new(Background::default());
        let done = Arc::new(AtomicUsize::new(0));
        for ms in [10u64, 30] {
            let (bg2, done) = (Arc::clone(&bg), Arc::clone(&done));
            bg.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                done.fetch_add(1, Ordering::SeqCst);
                if ms == 10 {
                    // A task that starts another (a cleanup that starts a repair).
                    let done = Arc::clone(&done);
                    bg2.spawn(async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
        }
        assert_eq!(bg.pending(), 2);
        bg.idle().await;
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert_eq!(bg.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_work_beyond_the_limit_is_given_back() {
        let bg = Arc::new(Background::default());
        for _ in 0..MAX_BACKGROUND {
            let left = bg.spawn_bounded(tokio::time::sleep(Duration::from_secs(1)));
            assert!(left.is_none());
        }
        assert!(bg.spawn_bounded(tokio::time::sleep(Duration::from_secs(1))).is_some());
        bg.idle().await;
        assert!(bg.spawn_bounded(async {}).is_none(), "slots come back");
    }

    #[tokio::test]
    async fn a_panicking_task_still_counts_as_finished() {
        let bg = Arc::new(Background::default());
        bg.spawn(async { panic!("boom") });
        tokio::time::timeout(Duration::from_secs(5), bg.idle()).await.expect("idle");
    }
}
