//! [`Corrupting`]: `get` returns altered bytes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use bytes::Bytes;
use vaultdb_core::backend::{BackendError, Key, StorageBackend};

use crate::{forward_backend, handle_and_inner, handle_debug};

/// How [`Corrupting`] alters the bytes `get` returns. An empty object cannot be altered in
/// place, so in every mode it comes back as the single byte `0x01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptMode {
    /// Flip the lowest bit of the byte in the middle (`len / 2`): the subtlest change.
    FlipBit,
    /// XOR every byte with `0xA5`: same length, every byte different.
    Rewrite,
    /// Drop the last byte.
    Truncate,
    /// Append 1 MiB, whatever the caller's `max_len`: a backend that lies about sizes and
    /// serves far more than the object it listed.
    Oversize,
}

/// How many bytes [`CorruptMode::Oversize`] appends.
pub(crate) const OVERSIZE: usize = 1 << 20;

impl CorruptMode {
    /// Applies the corruption to `data`; the result always differs from `data`.
    pub fn apply(self, data: &[u8]) -> Bytes {
        if data.is_empty() {
            return Bytes::from_static(&[0x01]);
        }
        let mut out = data.to_vec();
        match self {
            CorruptMode::FlipBit => out[data.len() / 2] ^= 1,
            CorruptMode::Rewrite => out.iter_mut().for_each(|b| *b ^= 0xA5),
            CorruptMode::Truncate => {
                out.pop();
            }
            CorruptMode::Oversize => out.resize(data.len() + OVERSIZE, 0),
        }
        Bytes::from(out)
    }

    fn to_u8(self) -> u8 {
        match self {
            CorruptMode::FlipBit => 0,
            CorruptMode::Rewrite => 1,
            CorruptMode::Truncate => 2,
            CorruptMode::Oversize => 3,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => CorruptMode::FlipBit,
            1 => CorruptMode::Rewrite,
            2 => CorruptMode::Truncate,
            _ => CorruptMode::Oversize,
        }
    }
}

type KeyFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A wrapper whose `get` returns corrupted bytes (bit rot, a buggy or malicious store) while
/// switched on; it is switched on when created. Only `get` results are altered, the stored
/// objects are not; puts, deletes and listings go through unchanged, and so does a `get` of
/// a missing key. [`Corrupting::only_keys`] restricts the corruption to keys matching a
/// predicate.
pub struct Corrupting<B> {
    inner: B,
    filter: Option<KeyFilter>,
    ctl: CorruptingHandle,
}

/// Controls a [`Corrupting`] wrapper; clones control the same wrapper.
#[derive(Clone)]
pub struct CorruptingHandle {
    state: Arc<CorruptState>,
}

struct CorruptState {
    enabled: AtomicBool,
    mode: AtomicU8,
    corrupted: AtomicU64,
}

impl<B: StorageBackend> Corrupting<B> {
    /// Wraps `inner`, corrupting every `get` with [`CorruptMode::FlipBit`] until switched off.
    pub fn new(inner: B) -> Self {
        let state = CorruptState {
            enabled: AtomicBool::new(true),
            mode: AtomicU8::new(CorruptMode::FlipBit.to_u8()),
            corrupted: AtomicU64::new(0),
        };
        Self { inner, filter: None, ctl: CorruptingHandle { state: Arc::new(state) } }
    }

    /// Corrupts only the objects whose key satisfies `filter`.
    #[must_use]
    pub fn only_keys(mut self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }
}

handle_and_inner!(Corrupting, CorruptingHandle, "The handle that switches corruption on and off.");

impl CorruptingHandle {
    /// Switches corruption on or off.
    pub fn set_enabled(&self, on: bool) {
        self.state.enabled.store(on, Ordering::SeqCst);
    }

    /// True while `get` results are corrupted.
    pub fn is_enabled(&self) -> bool {
        self.state.enabled.load(Ordering::SeqCst)
    }

    /// Changes how bytes are corrupted.
    pub fn set_mode(&self, mode: CorruptMode) {
        self.state.mode.store(mode.to_u8(), Ordering::SeqCst);
    }

    /// How bytes are corrupted.
    pub fn mode(&self) -> CorruptMode {
        CorruptMode::from_u8(self.state.mode.load(Ordering::SeqCst))
    }

    /// How many `get` results have been corrupted so far.
    pub fn corrupted(&self) -> u64 {
        self.state.corrupted.load(Ordering::SeqCst)
    }
}

handle_debug!(CorruptingHandle { enabled: is_enabled, mode, corrupted });

impl<B: fmt::Debug> fmt::Debug for Corrupting<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Corrupting")
            .field("inner", &self.inner)
            .field("filtered", &self.filter.is_some())
            .field("ctl", &self.ctl)
            .finish()
    }
}

forward_backend! {
    impl<B: StorageBackend> StorageBackend for Corrupting<B> {
        forward id, name, put, delete, list_page to self.inner;

        async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
            let data = self.inner.get(key, max_len).await?;
            let applies =
                self.ctl.is_enabled() && self.filter.as_ref().is_none_or(|f| f(key.as_str()));
            Ok(match data {
                Some(d) if applies => {
                    self.ctl.state.corrupted.fetch_add(1, Ordering::SeqCst);
                    Some(self.ctl.mode().apply(&d))
                }
                other => other,
            })
        }
    }
}
