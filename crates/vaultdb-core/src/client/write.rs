//! Writing: put (serialize, pad, MAC, split, write create-only to all N, succeed at W) and
//! delete (remove every version everywhere, succeed when at most K-1 shares can remain).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::call::CallError;
use super::read::Listed;
use super::{Inner, VaultDb};
use crate::backend::{BackendErrorKind, PutMode};
use crate::envelope::{self, Header, Kind};
use crate::error::{BackendOutcome, OutcomeStatus, Result, VaultError};
use crate::naming::{NameTag, pad_id, validate_id};
use crate::record::Record;
use crate::rng::RandomSource;
use crate::secret::{self, Binding};
use crate::version::Version;

use super::stream::RecordMeta;

/// Secrets at least this large compute their HMAC on a second thread while they are split.
const PARALLEL_MAC_MIN: usize = 128 << 10;

/// A successful `put`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PutResult {
    /// The version written.
    pub version: Version,
    /// Backends that acknowledged the write.
    pub acks: usize,
    /// What each backend did.
    pub outcomes: Vec<BackendOutcome>,
}

impl PutResult {
    /// True if some backend did not acknowledge.
    pub fn degraded(&self) -> bool {
        self.outcomes.iter().any(|o| o.status != OutcomeStatus::Ok)
    }
}

/// A successful `delete`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DeleteResult {
    /// Share objects removed.
    pub removed: usize,
    /// What each backend did.
    pub outcomes: Vec<BackendOutcome>,
}

impl Inner {
    /// Writes one envelope create-only. An `AlreadyExists` on a retried call means an
    /// earlier attempt landed: that counts as success when the stored bytes are ours.
    pub(crate) async fn put_create(
        &self,
        idx: usize,
        key: &str,
        bytes: Bytes,
    ) -> Result<(), CallError> {
        let b = &self.backends[idx];
        let policy = &self.settings.call_policy;
        match policy.run(|| b.put(key, bytes.clone(), PutMode::Create)).await {
            Ok(_) => Ok(()),
            Err(CallError::Backend(e)) if e.kind() == BackendErrorKind::AlreadyExists => {
                match policy.run(|| b.get(key)).await {
                    Ok(c) if c.value.as_deref() == Some(&bytes[..]) => Ok(()),
                    _ => Err(CallError::Backend(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn delete_key(&self, idx: usize, key: &str) -> Result<(), CallError> {
        let b = &self.backends[idx];
        self.settings.call_policy.run(|| b.delete(key)).await.map(|_| ())
    }

    /// Seals a secret around the payload `write_payload` appends, splits it and returns the
    /// N sealed envelopes (share x = i + 1 at position i).
    pub(crate) fn split_secret(
        &self,
        binding: &Binding,
        size_hint: usize,
        rng: &mut dyn RandomSource,
        write_payload: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<Vec<u8>>> {
        let t = self.threshold;
        let secret = secret::seal_untagged(self.settings.padding, size_hint, rng, write_payload)?;
        let secret_len = u32::try_from(secret.len())
            .map_err(|_| VaultError::SplitFailed("secret too large for one envelope".into()))?;
        let mut bufs: Vec<Vec<u8>> = (0..t.n())
            .map(|i| {
                Header {
                    kind: binding.kind,
                    threshold: t,
                    x: (i + 1) as u8,
                    version: binding.version,
                    tag: binding.tag,
                    secret_len,
                }
                .new_buffer()
            })
            .collect();
        // Split the untagged secret while another thread computes the HMAC (for large
        // secrets, where the thread pays for itself), then add the tag to every share:
        // splitting is linear, so this equals splitting the tagged secret.
        // The CRC of each share past the tag is computed block by block as the split writes
        // it (still in the cache), so only the header and tag are checksummed afterwards.
        let tail_from = secret::TAG_RANGE.end;
        let mut tails = vec![0u32; t.n()];
        let mac = {
            let mut outs: Vec<&mut [u8]> =
                bufs.iter_mut().map(|b| envelope::share_mut(b)).collect();
            let xorida = &self.xorida;
            let secret = &secret;
            let tails = &mut tails;
            let mut observe = |range: std::ops::Range<usize>, outs: &[&mut [u8]]| {
                let from = range.start.max(tail_from);
                if range.end > from {
                    for (crc, out) in tails.iter_mut().zip(outs) {
                        *crc = crc32c::crc32c_append(*crc, &out[from..range.end]);
                    }
                }
            };
            let mut split = |rng: &mut dyn RandomSource| {
                xorida.split_into_observed(t, secret, rng, &mut outs, &mut observe)
            };
            if secret.len() >= PARALLEL_MAC_MIN {
                std::thread::scope(|scope| {
                    let worker = std::thread::Builder::new()
                        .spawn_scoped(scope, || secret::tag_of(binding, secret));
                    split(rng);
                    match worker {
                        Ok(h) => h
                            .join()
                            .map_err(|_| VaultError::SplitFailed("HMAC thread panicked".into())),
                        Err(_) => Ok(secret::tag_of(binding, secret)),
                    }
                })?
            } else {
                split(rng);
                secret::tag_of(binding, secret)
            }
        };
        for (buf, tail) in bufs.iter_mut().zip(tails) {
            let share = envelope::share_mut(buf);
            for (s, m) in share[secret::TAG_RANGE].iter_mut().zip(mac) {
                *s ^= m;
            }
            envelope::seal_with_tail(buf, tail_from, tail);
        }
        Ok(bufs)
    }

    /// Splits a head secret (a record or a manifest) of a new version and names its N
    /// objects, each key carrying that backend's share of the padded id.
    pub(crate) fn encode_head(
        &self,
        kind: Kind,
        id: &str,
        tag: NameTag,
        version: Version,
        size_hint: usize,
        write_payload: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<(String, Bytes)>> {
        let t = self.threshold;
        let binding = Binding { kind, tag, version, threshold: t };
        self.with_rng(|rng| {
            let bufs = self.split_secret(&binding, size_hint, rng, write_payload)?;
            let padded_id = pad_id(id)?;
            let id_shares = self.xorida.split(t, &padded_id, rng);
            Ok(bufs
                .into_iter()
                .zip(id_shares)
                .map(|(buf, id_share)| {
                    (self.keyspace.share_key(tag, version, &id_share), Bytes::from(buf))
                })
                .collect())
        })
    }

    /// Builds the N envelopes and N object keys of one version of an inline record.
    fn encode_record(
        &self,
        record: &Record,
        tag: NameTag,
    ) -> Result<(Version, Vec<(String, Bytes)>)> {
        let version = self.with_rng(|rng| self.clock.next_version(rng));
        let objects = self.encode_head(
            Kind::Record,
            &record.id,
            tag,
            version,
            record.encoded_len_hint(),
            |buf| record.encode_into(buf),
        )?;
        Ok((version, objects))
    }

    /// Writes one version's objects (one per backend) create-only, concurrently.
    pub(crate) async fn write_all(
        &self,
        objects: Vec<(String, Bytes)>,
        skip: &[bool],
    ) -> Vec<Result<(), CallError>> {
        let writes = objects.into_iter().enumerate().map(|(idx, (key, bytes))| async move {
            if skip.get(idx).copied().unwrap_or(false) {
                return Err(CallError::Backend(crate::backend::BackendError::new(
                    BackendErrorKind::Other,
                    "skipped: an earlier segment of this write failed here",
                )));
            }
            self.put_create(idx, &key, bytes).await
        });
        futures::future::join_all(writes).await
    }

    /// After a successful put of `version`: on every backend, delete versions older than it,
    /// keeping the `retain_versions - 1` newest of them.
    pub(crate) async fn remove_superseded(&self, tag: NameTag, version: Version) {
        let keep_older = self.settings.retain_versions.saturating_sub(1);
        let listing = self.list_tag(tag).await;
        let work = listing.into_iter().enumerate().filter_map(|(idx, l)| {
            let mut older: Vec<Listed> =
                l.ok()?.into_iter().filter(|e| e.version < version).collect();
            older.sort_by_key(|e| std::cmp::Reverse(e.version));
            let doomed: Vec<Listed> = older.into_iter().skip(keep_older).collect();
            Some(async move {
                for e in doomed {
                    match self.delete_key(idx, &e.key).await {
                        Ok(()) => {
                            self.stats.objects_removed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => tracing::warn!(
                            backend = %self.ids[idx], error = ?err,
                            "could not remove a superseded share; scrub will"
                        ),
                    }
                }
            })
        });
        futures::future::join_all(work).await;
    }
}

impl VaultDb {
    /// Stores a record: a new version, written create-only to all N backends concurrently.
    /// Succeeds once W backends acknowledged; only then are older versions removed.
    ///
    /// # Errors
    /// `INVALID_CONFIG` for an invalid id or an oversized record; `SPLIT_FAILED` if
    /// serialization fails; `BACKEND_ERROR` with per-backend outcomes if fewer than W
    /// backends acknowledged (the previous version, or this one, stays readable).
    #[tracing::instrument(name = "vaultdb.put", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn put(&self, record: Record) -> Result<PutResult> {
        validate_id(&record.id)?;
        let inner = &self.inner;
        if record.data.len() > inner.settings.max_record_size {
            return Err(VaultError::invalid_config(format!(
                "record data is {} bytes; the limit is {}",
                record.data.len(),
                inner.settings.max_record_size
            )));
        }
        let tag = inner.naming.tag(&record.id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        if record.data.len() > inner.settings.segment_size {
            let len = record.data.len() as u64;
            let meta = RecordMeta {
                id: record.id,
                content_type: record.content_type,
                metadata: record.metadata,
            };
            let data = crate::wipe::SecretVec::from(record.data);
            return self.put_segmented(meta, tag, len, &mut &data[..]).await;
        }
        let _permit = inner.admit(inner.inline_cost(record.encoded_len_hint())).await;
        let (version, objects) = inner.encode_record(&record, tag)?;
        drop(record);
        let results = inner.write_all(objects, &[]).await;
        let outcomes = inner.outcomes_of(&results);
        let acks = results.iter().filter(|r| r.is_ok()).count();
        if acks < inner.write_quorum {
            tracing::warn!(%tag, acks, quorum = inner.write_quorum, "put failed: {}",
                crate::error::outcomes_text(&outcomes));
            return Err(VaultError::Backend { operation: "put", outcomes });
        }
        if acks < inner.n() {
            tracing::warn!(%tag, acks, "degraded put: {}", crate::error::outcomes_text(&outcomes));
        }
        inner.remove_superseded(tag, version).await;
        Ok(PutResult { version, acks, outcomes })
    }

    /// Deletes every version of a record on every backend. Succeeds only when at least
    /// N-K+1 backends confirmed, so at most K-1 shares can remain anywhere and the record
    /// is unrecoverable.
    ///
    /// # Errors
    /// `RECORD_NOT_FOUND` if no reachable backend holds it (and enough answered to be sure);
    /// `BACKEND_ERROR` naming the backends that failed otherwise.
    #[tracing::instrument(name = "vaultdb.delete", skip_all, fields(tag = tracing::field::Empty))]
    pub async fn delete(&self, id: &str) -> Result<DeleteResult> {
        validate_id(id)?;
        let inner = &self.inner;
        let tag = inner.naming.tag(id);
        tracing::Span::current().record("tag", tracing::field::display(tag));
        let listing = inner.list_tag(tag).await;
        let found: usize = listing.iter().filter_map(|l| l.as_ref().ok()).map(Vec::len).sum();
        let work = listing.into_iter().enumerate().map(|(idx, l)| async move {
            let entries = l?;
            let mut removed = 0;
            let mut last_err = None;
            for e in entries {
                match inner.delete_key(idx, &e.key).await {
                    Ok(()) => removed += 1,
                    Err(err) => last_err = Some(err),
                }
            }
            match last_err {
                None => Ok(removed),
                Some(e) => Err(e),
            }
        });
        let results: Vec<Result<usize, CallError>> = futures::future::join_all(work).await;
        let confirmed = results.iter().filter(|r| r.is_ok()).count();
        let removed = results.iter().filter_map(|r| r.as_ref().ok()).sum();
        let outcomes = inner.outcomes_of(&results);
        let needed = inner.n() - inner.k() + 1;
        if confirmed < needed {
            tracing::warn!(%tag, confirmed, needed, "delete failed: {}",
                crate::error::outcomes_text(&outcomes));
            return Err(VaultError::Backend { operation: "delete", outcomes });
        }
        if found == 0 {
            return Err(VaultError::RecordNotFound);
        }
        if confirmed < inner.n() {
            tracing::warn!(%tag, "degraded delete: {}", crate::error::outcomes_text(&outcomes));
        }
        // Objects written while the delete ran (a repair restoring a share it read before,
        // the manifest of a segmented put whose segments were just removed) would outlive it:
        // list again until nothing is left, a few rounds at most.
        let mut removed: usize = removed;
        for _round in 0..3 {
            let again = inner.list_tag(tag).await;
            let late: Vec<(usize, String)> = again
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.as_ref().ok().map(|e| (i, e)))
                .flat_map(|(i, e)| e.iter().map(move |e| (i, e.key.clone())))
                .collect();
            if late.is_empty() {
                break;
            }
            tracing::info!(%tag, objects = late.len(), "removing objects written during the delete");
            for (idx, key) in late {
                if inner.delete_key(idx, &key).await.is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(DeleteResult { removed, outcomes })
    }
}
