//! [`MemoryStack`]: a memory backend under the wrappers that change what it holds or serves.

use std::sync::Arc;

use vaultdb_core::MemoryBackend;

use crate::{Corrupting, CorruptingHandle, Counting, CountingHandle, Stale, StaleHandle};

/// A [`MemoryBackend`] under the wrappers that alter data, outside in: [`Stale`] ->
/// [`Corrupting`] (switched off) -> [`Counting`] -> the memory backend, with their handles
/// and the memory backend itself (to look at or change what is stored). It is the inner part
/// of a test's fault stack: the test wraps [`backend`](Self::backend) in the wrappers that
/// fail or delay calls.
///
/// ```
/// use vaultdb_core::StorageBackend;
/// use vaultdb_testkit::{Failing, MemoryStack};
///
/// let stack = MemoryStack::new("b1", "memory backend 1");
/// let outer = Failing::new(stack.backend);
/// assert_eq!(outer.id(), "b1");
/// assert!(!stack.corrupt.is_enabled());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct MemoryStack {
    /// The memory backend at the bottom.
    pub mem: Arc<MemoryBackend>,
    /// Counts the calls that reach the memory backend.
    pub count: CountingHandle,
    /// Corrupts what `get` returns; switched off.
    pub corrupt: CorruptingHandle,
    /// Serves stale objects; off.
    pub stale: StaleHandle,
    /// The top of the stack.
    pub backend: Stale<Corrupting<Counting<Arc<MemoryBackend>>>>,
}

impl MemoryStack {
    /// A stack over a new, empty memory backend `id` named `name`.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        let mem = Arc::new(MemoryBackend::new(id, name));
        let counting = Counting::new(mem.clone());
        let count = counting.handle();
        let corrupting = Corrupting::new(counting);
        let corrupt = corrupting.handle();
        corrupt.set_enabled(false);
        let stale = Stale::new(corrupting);
        Self { mem, count, corrupt, stale: stale.handle(), backend: stale }
    }
}
