//! # vaultdb-testkit
//!
//! Test support for VaultDB, built on `vaultdb-core`'s public API: the backend conformance
//! suite, the fault-injection wrappers, a streaming [`Generator`], and the randomized
//! fault-schedule checker ([`schedule`], docs/FAULTS.md). Backend crates and `vaultdb-core`'s
//! own integration tests take it as a dev-dependency; nothing ships it.
//!
//! # Conformance suite
//!
//! Every backend crate runs the same behaviour checks against its backend (compare
//! object_store's `integration.rs`):
//!
//! ```no_run
//! # async fn demo() {
//! let backend = vaultdb_core::MemoryBackend::new("mem", "memory");
//! vaultdb_testkit::run_all(&backend, "conformance/").await;
//! # }
//! ```
//!
//! [`run_all`] runs every check; [`run_all_with`] takes [`Capabilities`] so that a backend
//! that cannot meet part of the contract in its test environment (an S3 emulator whose
//! concurrent conditional puts are not atomic) skips only the checks it must. Each check is
//! also a public function of its own ([`put_get_delete`], [`create_conflict`], ...), with the
//! same `(backend, prefix)` arguments.
//!
//! A check panics with a message that names the check and the backend when the backend
//! breaks the [contract](vaultdb_core::backend). Every check works under a fresh random prefix
//! (`<prefix>vdbtk-<random>/<check>/`) inside the prefix it is given, so runs never collide
//! and never touch anything else in the store, and it deletes everything it wrote (and checks
//! that the listing of its prefix is empty again) before it returns. A check that fails may
//! leave objects under its random prefix.
//!
//! # Fault-injection wrappers
//!
//! Each wrapper implements [`StorageBackend`](vaultdb_core::StorageBackend) around an inner backend
//! (any `B: StorageBackend`, including `Arc<dyn StorageBackend>` or `Arc<MemoryBackend>`),
//! delegates `id()` and `name()` to it, and is steered at run time through a cloneable
//! handle of atomics, so a test can flip a fault on and off while the client is running:
//!
//! | wrapper | handle | fault |
//! |---|---|---|
//! | [`Failing`] | [`FailingHandle`] | chosen operations fail with a chosen error kind; a "down" switch |
//! | [`Slow`] | [`SlowHandle`] | a delay before every (chosen) call |
//! | [`Corrupting`] | [`CorruptingHandle`] | `get` returns altered bytes (optionally only for some keys) |
//! | [`Stale`] | [`StaleHandle`] | `get` returns an older object of the same group, or another group's |
//! | [`Crashing`] | [`CrashingHandle`] | accepts `m` puts, then every put and delete fails |
//! | [`Counting`] | [`CountingHandle`] | counts calls per operation |
//! | [`Randomized`] | [`RandomizedHandle`] | seeded random delays and transient failures |
//!
//! A network partition is a [`Failing`] backend switched down. [`MemoryStack`] is the inner
//! part of the usual stack: a memory backend under [`Stale`], [`Corrupting`] and
//! [`Counting`].
//!
//! The wrappers write only the methods that add their fault; [`forward_backend!`] writes the
//! rest, which pass the call on to the inner backend. A test's own broken backend can be
//! written the same way.
//!
//! [`Generator`] is a deterministic `AsyncRead` for streaming tests: it produces a large
//! record's bytes as they are read; [`Scripted`] is a random source that hands out given
//! bytes, for tests that enumerate a split's coefficients. [`FormatDoc`] reads docs/FORMAT.md's worked examples,
//! for the tests that recompute them from the code.

#![deny(rustdoc::broken_intra_doc_links)]

mod conformance;
mod corrupting;
mod counting;
mod crashing;
mod failing;
mod format_doc;
mod forward;
mod generator;
mod kernels;
mod randomized;
pub mod schedule;
mod slow;
mod stack;
mod stale;

use std::fmt;
use std::ops::BitOr;

use vaultdb_core::BackendErrorKind;

pub use conformance::{
    Capabilities, concurrent_create, concurrent_puts, create_conflict, delete_missing,
    empty_object, get_limits, get_missing, idempotent_delete, large_object, large_object_of,
    list_after, list_after_delete, list_pagination, list_pagination_of, list_prefix, list_sizes,
    odd_keys, overwrite, put_get_delete, run_all, run_all_with,
};
pub use corrupting::{CorruptMode, Corrupting, CorruptingHandle};
pub use counting::{CallCounts, Counting, CountingHandle};
pub use crashing::{Crashing, CrashingHandle};
pub use failing::{Failing, FailingHandle};
pub use format_doc::FormatDoc;
pub use generator::{Generator, Scripted};
pub use kernels::{cpu_model, report_kernels};
pub use randomized::{Randomized, RandomizedHandle};
pub use slow::{Slow, SlowHandle};
pub use stack::MemoryStack;
pub use stale::{Stale, StaleHandle, StaleMode};

/// What [`forward_backend!`] names in the code it writes, so that the crates that use it
/// need not depend on these themselves. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use bytes::Bytes;
    pub use vaultdb_core::backend::{
        BackendError, Key, KeyPrefix, ListFrom, ListPage, PutMode, StorageBackend,
    };
}

/// A set of backend operations, for wrappers that act on some operations only.
///
/// Combine with `|`: `Ops::PUT | Ops::DELETE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ops(u8);

impl Ops {
    /// No operation.
    pub const NONE: Ops = Ops(0);
    /// `put`.
    pub const PUT: Ops = Ops(1);
    /// `get`.
    pub const GET: Ops = Ops(2);
    /// `delete`.
    pub const DELETE: Ops = Ops(4);
    /// `list_page`.
    pub const LIST: Ops = Ops(8);
    /// Every operation.
    pub const ALL: Ops = Ops(15);

    /// True if every operation in `other` is in `self`.
    pub const fn contains(self, other: Ops) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if no operation is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The operations in `self` or `other`.
    pub const fn union(self, other: Ops) -> Ops {
        Ops(self.0 | other.0)
    }

    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    pub(crate) const fn from_bits(bits: u8) -> Ops {
        Ops(bits & Self::ALL.0)
    }
}

impl BitOr for Ops {
    type Output = Ops;
    fn bitor(self, rhs: Ops) -> Ops {
        self.union(rhs)
    }
}

impl fmt::Debug for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names =
            [(Ops::PUT, "PUT"), (Ops::GET, "GET"), (Ops::DELETE, "DELETE"), (Ops::LIST, "LIST")];
        let set: Vec<&str> =
            names.iter().filter(|(op, _)| self.contains(*op)).map(|(_, n)| *n).collect();
        if set.is_empty() {
            f.write_str("Ops(NONE)")
        } else {
            write!(f, "Ops({})", set.join(" | "))
        }
    }
}

/// Writes a wrapper handle's `Debug`: the handle's name and, for each `label: method` (or
/// `label` for a method of that name), what that method of the handle returns: its current
/// settings and counters, which say more than the atomics behind them.
macro_rules! handle_debug {
    ($handle:ident { $($label:ident $(: $method:ident)?),+ $(,)? }) => {
        impl std::fmt::Debug for $handle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($handle))
                    $(.field(stringify!($label), &handle_debug!(@read self $label $($method)?)))+
                    .finish()
            }
        }
    };
    (@read $self:ident $label:ident) => {
        $self.$label()
    };
    (@read $self:ident $label:ident $method:ident) => {
        $self.$method()
    };
}
pub(crate) use handle_debug;

/// Writes a wrapper's `handle()`, documented `$doc` (a clone of its `ctl` handle), and
/// `inner()` (the backend in its `inner` field).
macro_rules! handle_and_inner {
    ($wrapper:ident, $handle:ident, $doc:literal) => {
        impl<B> $wrapper<B> {
            #[doc = $doc]
            pub fn handle(&self) -> $handle {
                self.ctl.clone()
            }

            /// The wrapped backend.
            pub fn inner(&self) -> &B {
                &self.inner
            }
        }
    };
}
pub(crate) use handle_and_inner;

/// Packs an error kind into a byte for an atomic.
pub(crate) fn kind_to_u8(kind: BackendErrorKind) -> u8 {
    match kind {
        BackendErrorKind::AlreadyExists => 0,
        BackendErrorKind::Transient => 1,
        BackendErrorKind::Permanent => 2,
        BackendErrorKind::Other => 3,
        BackendErrorKind::TooLarge => 4,
        // `BackendErrorKind` is non-exhaustive: a kind added later is injected as `Other`.
        _ => 3,
    }
}

/// The inverse of [`kind_to_u8`].
pub(crate) fn kind_from_u8(v: u8) -> BackendErrorKind {
    match v {
        0 => BackendErrorKind::AlreadyExists,
        1 => BackendErrorKind::Transient,
        2 => BackendErrorKind::Permanent,
        4 => BackendErrorKind::TooLarge,
        _ => BackendErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_set() {
        let s = Ops::PUT | Ops::DELETE;
        assert!(s.contains(Ops::PUT) && s.contains(Ops::DELETE) && !s.contains(Ops::GET));
        assert!(Ops::ALL.contains(s) && !s.contains(Ops::ALL));
        assert!(Ops::NONE.is_empty());
        assert_eq!(format!("{s:?}"), "Ops(PUT | DELETE)");
        assert_eq!(Ops::from_bits(0xff), Ops::ALL);
        for k in [
            BackendErrorKind::AlreadyExists,
            BackendErrorKind::Transient,
            BackendErrorKind::Permanent,
            BackendErrorKind::TooLarge,
            BackendErrorKind::Other,
        ] {
            assert_eq!(kind_from_u8(kind_to_u8(k)), k);
        }
    }
}
