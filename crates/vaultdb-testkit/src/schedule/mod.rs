//! A randomized, seeded fault-schedule checker for [`VaultDb`](vaultdb_core::VaultDb).
//!
//! One `u64` seed determines a [`Plan`]: the store's configuration (K-of-N, write quorum W,
//! number of clients and client handles, hedging, read-repair, a 1 KiB segment size), and a
//! sequence of rounds. Each round switches faults on some backends (down, failing chosen
//! operations, stalled past the call timeout, corrupting, serving stale or misplaced
//! objects, crashing after `m` puts, randomly flaky with ambiguous failures, flapping) and
//! gives every client a few operations (put, segmented put, `put_stream`, a put whose
//! writer "crashes" part way, get, `get_range`, delete) on a handful of record ids.
//!
//! [`run`] executes a plan against N [`MemoryBackend`](vaultdb_core::MemoryBackend)s
//! wrapped in the [fault injectors](crate) of this crate, recording each operation's
//! invocation and response on one logical clock; at the end it heals every backend, scrubs,
//! and reads every id back. About half the plans also re-share the store to a new
//! configuration while the clients run ([`Reshare`]: crashed and resumed, under the
//! faults, clients switching to the new configuration). [`check`] judges that history
//! against the consistency model of DESIGN.md section 5 (one register per id across both
//! stores) and returns the [`Violation`]s; [`Summary`] adds runs up. docs/FAULTS.md
//! describes the model and the fault budget.
//!
//! Rounds are separated by barriers: a round's faults are fixed while its clients run
//! (except for the faults that act by themselves: a crash after `m` puts, random
//! failures, flapping), and a round ends only when its clients are done and every
//! background task (read-repair) has finished. A read's "healthy backends" are the
//! backends without a fault in its round.
//!
//! Run a plan on a current-thread Tokio runtime with paused time (`start_paused(true)`):
//! every delay is virtual, and the schedule of tasks is then a function of the seed, except
//! where the client itself reads the real clock (it ranks backends by measured latency),
//! which can change which backends a read asks first.
//!
//! ```no_run
//! # async fn demo() {
//! use vaultdb_testkit::schedule::{Plan, RunOptions, check, run};
//! let plan = Plan::generate(42, 300);
//! let result = run(&plan, &RunOptions::default()).await.expect("the store opens");
//! let report = check(&result);
//! assert!(report.violations.is_empty(), "{}", report.explain(&result));
//! # }
//! ```
//!
//! The code follows those parts: `plan.rs` (plan generation, with the seeded `prng.rs`),
//! `history.rs` (what a run records), `cluster.rs` (the backends' fault stacks and [`run`]),
//! `checker.rs` ([`check`]) with `report.rs` (its [`Report`] and [`Violation`]s), and
//! `summary.rs` ([`Summary`]).

mod checker;
mod cluster;
mod history;
mod plan;
mod prng;
mod report;
mod summary;

use std::time::Duration;

pub use checker::check;
pub use cluster::{FinalState, ReshareLog, ReshareRun, RunOptions, RunResult, Wrap, run};
pub use history::{OpRecord, OpResult, Store};
pub use plan::{Fault, OpSpec, Plan, Reshare, Round, RoundKind, Step, content_type_of, value_of};
pub use report::{Invariant, Report, Violation};
pub use summary::Summary;

/// The per-attempt timeout of every backend call during a run (virtual time).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// The clients' settle delay (`Settings::settle_after`): exactly twice the longest a call
/// takes with its retry (two attempts of [`CALL_TIMEOUT`]); the clients share one clock, so
/// there is no skew to allow for. Each round after the first starts after this much virtual
/// time, so reads settle records and take the one-round-trip path.
pub const SETTLE_AFTER: Duration = Duration::from_secs(4);

/// How long a stalled backend sleeps before it answers: longer than [`CALL_TIMEOUT`].
pub const STALL: Duration = Duration::from_secs(3);

/// The segment size of every run: records above 1 KiB are stored as segments.
pub const SEGMENT_SIZE: usize = 1024;

/// The (K, N, W) configurations a seed chooses from.
pub const CONFIGS: [(usize, usize, usize); 4] = [(2, 3, 3), (3, 5, 5), (3, 5, 4), (2, 3, 2)];

/// Record ids of a run (a few, so that clients contend for them).
const IDS: [&str; 5] = ["rec-0", "rec-1", "user/42", "notes.txt", "r-4"];

/// How often clients check their store's re-share notices in a plan with a re-share
/// (`Settings::fence_check`; 10 s otherwise): a lease of 6 s, so a re-share's fence waits
/// 14 s (two or three rounds) instead of 28 s.
pub const FENCE_CHECK: Duration = Duration::from_secs(3);

/// The longest an operation may take, in virtual time (invariant 7, docs/FAULTS.md): a call
/// is cut at [`CALL_TIMEOUT`] and retried once, and an operation makes a few rounds of calls
/// (list, fetch, fetch the rest, retry); far beyond that is a hang.
pub const OP_TIME_LIMIT: Duration = Duration::from_secs(30);
