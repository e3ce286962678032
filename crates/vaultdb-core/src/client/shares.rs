// This file is long because it is the share codec of both storage modes (seal, check, open,
// confirm, derive for each) with the unit tests that run every step in both.
//! The shares layer: pure functions over one store's shares, with no I/O, no async and no
//! logging.
//!
//! Writing, it seals a payload into a secret (pad, HMAC) and splits it into N envelopes.
//! Reading, it checks an envelope against what the read expects, opens K good envelopes
//! into a secret whose MAC verifies (trying other K-subsets when one fails), and confirms
//! the remaining envelopes against the polynomial those K define, so that a bad one is
//! named rather than merely outvoted. Repairing, it derives the envelope a backend lacks
//! and rebuilds record ids from the id shares in object names. The fan-out layer above
//! fetches the bytes and reports what this layer finds.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use zeroize::Zeroizing;

use crate::bufpool;
use crate::compact::{self, Compact, Mode};
use crate::envelope::{self, Header, Kind};
use crate::error::{Result, VaultError};
use crate::keyring::{KEYRING_TAG, Keyring};
use crate::naming::{NameTag, NamingKey, pad_id, unpad_id};
use crate::padding::Padding;
use crate::rng::RandomSource;
use crate::secret::{self, Binding, SECRET_HEADER_LEN};
use crate::version::Version;
use crate::wipe::SecretVec;
use crate::xorida::{SharePoint, Threshold, Xorida};

/// What a read counts for decoding the erasure code, in compact mode (see
/// [`Shares::read_cost_us`]).
const DECODE_COST_US: u64 = 1000;

/// Secrets at least this large are split on a second thread while this one computes their
/// HMAC (and rebuilt on two while this one checks it).
const PARALLEL_MAC_MIN: usize = 128 << 10;

/// Bytes of a large secret rebuilt before its MAC check is handed them
/// ([`Shares::rebuild_and_open`]): a multiple of the rebuild's cache step, small enough for
/// the check to start early, large enough that handing chunks over costs nothing measurable.
const OPEN_CHUNK: usize = 64 << 10;

/// The largest keyring share object a read accepts (and a keyring this client writes may
/// produce): the keyring holds a naming key, the threshold and the backend ids, a few hundred
/// bytes for any sensible configuration.
pub(crate) const MAX_KEYRING_SHARE_LEN: u64 = 64 << 10;

/// What a record's id, content type and metadata (or a manifest's fields) may add to its
/// data, at most, in the bound of [`Shares::max_share_len`].
pub(crate) const RECORD_FIELDS_ALLOWANCE: u64 = 1 << 20;

/// What a read must match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect {
    pub(crate) kind: Kind,
    pub(crate) tag: NameTag,
    pub(crate) version: Version,
}

/// A secret rebuilt from K good envelopes whose MAC verified.
pub(crate) struct Opened {
    /// What the secret holds (a record read may find a manifest).
    pub(crate) kind: Kind,
    pub(crate) secret: SecretVec,
    /// Where the payload is in the secret.
    pub(crate) payload: Range<usize>,
    /// Positions, in the list of good envelopes, of the K that rebuilt it.
    pub(crate) subset: Vec<usize>,
}

/// The share bytes of an envelope that [`envelope::decode`] accepted.
pub(crate) fn share_of(envelope: &[u8]) -> &[u8] {
    &envelope[envelope::HEADER_LEN..envelope.len() - envelope::TRAILER_LEN]
}

/// One store's share codec: its threshold, storage mode, the sharing engines and the padding
/// policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shares {
    threshold: Threshold,
    mode: Mode,
    xorida: Xorida,
    compact: Compact,
    padding: Padding,
}

impl Shares {
    /// The codec of a `threshold` store padding secrets with `padding`, in the default mode
    /// (the mode is known once the keyring is read: [`Shares::with_mode`]).
    pub(crate) fn new(threshold: Threshold, padding: Padding) -> Self {
        Self {
            threshold,
            mode: Mode::Shamir,
            xorida: Xorida::new(),
            compact: Compact::new(),
            padding,
        }
    }

    /// The same codec in storage mode `mode`.
    pub(crate) fn with_mode(self, mode: Mode) -> Self {
        Self { mode, ..self }
    }

    pub(crate) fn threshold(&self) -> Threshold {
        self.threshold
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// What a read adds, in microseconds, to the latency of backend `idx` when it orders the
    /// backends to fetch from: in compact mode, a share past position K holds a recovery
    /// shard, and rebuilding with one decodes the erasure code. The allowance is fixed at
    /// 1 ms whatever the record's size: decoding a 1 MiB record takes 0.5 to 0.75 ms
    /// (docs/PERFORMANCE.md section 7), a smaller one less, so it errs towards the first K
    /// backends, which are asked first unless they are slower by more than that.
    pub(crate) fn read_cost_us(&self, idx: usize) -> u64 {
        match self.mode {
            Mode::Compact if idx >= self.threshold.k() => DECODE_COST_US,
            _ => 0,
        }
    }

    /// True if secrets of `kind` are split with the compact scheme: in a compact store, all
    /// but the keyring (which says which mode the store is in, so it is always XorIDA) and
    /// tombstones (which split nothing).
    fn is_compact(&self, kind: Kind) -> bool {
        self.mode == Mode::Compact && !matches!(kind, Kind::Keyring | Kind::Tombstone)
    }

    /// Rebuilds the secret of `kind` from K share points.
    fn rebuild(&self, kind: Kind, pts: &[SharePoint<'_>]) -> Result<SecretVec> {
        if self.is_compact(kind) {
            self.compact.rebuild(self.threshold, pts)
        } else {
            self.xorida.rebuild(self.threshold, pts)
        }
    }

    /// The share at `x` of a secret of `kind` that K share points define.
    fn derive_share(&self, kind: Kind, pts: &[SharePoint<'_>], x: u8) -> Result<Vec<u8>> {
        if self.is_compact(kind) {
            self.compact.derive(self.threshold, pts, x)
        } else {
            self.xorida.derive(self.threshold, pts, x)
        }
    }

    /// The largest share object (envelope) this store writes for an object of `kind` whose
    /// data is at most `data_len` bytes: the bound on a read of a share whose size no listing
    /// told (or whose holders' listings disagree), so that a backend serving something larger
    /// costs no more than this to find out.
    ///
    /// - a record or a manifest: `data_len` (`max_record_size`) plus
    ///   [`RECORD_FIELDS_ALLOWANCE`] for its other fields;
    /// - a segment: `data_len` (the manifest's segment size) plus the segment header;
    /// - the keyring: [`MAX_KEYRING_SHARE_LEN`], whatever `data_len`;
    /// - a tombstone: its envelope around the 32-byte MAC, whatever `data_len`.
    ///
    /// The payload is sealed into a secret (its header, then padding) and the share (as long
    /// as the secret; in compact mode, the key part and a K-th of the secret) is wrapped in an
    /// envelope (header and CRC trailer).
    pub(crate) fn max_share_len(&self, kind: Kind, data_len: u64) -> u64 {
        let payload = match kind {
            Kind::Keyring => return MAX_KEYRING_SHARE_LEN,
            Kind::Tombstone => return (envelope::HEADER_LEN + 32 + envelope::TRAILER_LEN) as u64,
            Kind::Record | Kind::Manifest => data_len.saturating_add(RECORD_FIELDS_ALLOWANCE),
            Kind::Segment => data_len.saturating_add(crate::manifest::SEGMENT_HEADER_LEN as u64),
        };
        let secret = usize::try_from(payload)
            .ok()
            .and_then(|p| p.checked_add(SECRET_HEADER_LEN))
            .map(|s| self.padding.padded_len(s))
            .map_or(u64::MAX, |s| match self.is_compact(kind) {
                true => compact::share_len(self.threshold, s) as u64,
                false => s as u64,
            });
        secret.saturating_add((envelope::HEADER_LEN + envelope::TRAILER_LEN) as u64)
    }

    /// Seals a secret around the payload `parts` (concatenated), splits it and returns the N
    /// sealed envelopes (share x = i + 1 at position i).
    ///
    /// The secret's MAC key is drawn first (the generator's next 32 bytes, then the split's
    /// random bytes: the order docs/FORMAT.md fixes). For a large secret this thread then
    /// computes the MAC from the parts themselves, at once, while a second thread copies them
    /// into the secret, splits it and checksums the shares; the tag is added (XOR) into every
    /// share afterwards: splitting is linear, so this equals splitting the tagged secret. The
    /// put then costs about the HMAC pass plus the serial work after it.
    pub(crate) fn seal(
        &self,
        binding: &Binding,
        parts: &[&[u8]],
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<Vec<u8>>> {
        let mut mac_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *mac_key);
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let secret_len = self.padding.padded_len(SECRET_HEADER_LEN.saturating_add(payload_len));
        if self.is_compact(binding.kind) {
            return self.seal_compact(binding, &mac_key, parts, secret_len, rng);
        }
        let t = self.threshold;
        let share_len = envelope_share_len(secret_len)?;
        // Everything but the HMAC: build the untagged secret, allocate the N envelopes, split
        // the secret into them and checksum each share past the tag block as the split
        // writes it (block by block, while it is in the cache), so only the header and the
        // tag are checksummed afterwards. The secret is wiped as it is dropped, here.
        let tail_from = secret::TAG_RANGE.end;
        // Their memory is allocated here, on the calling thread, though the second thread
        // fills it: memory a short-lived thread allocates comes from another allocator arena
        // and, freed later elsewhere, grew a streamed put's peak RSS from 71 to 176 MiB
        // (docs/PERFORMANCE.md, table 5).
        let memory = Mutex::new(Some((
            self.envelope_memory(share_len),
            SecretVec::with_capacity(secret_len),
        )));
        let split_all = |rng: &mut dyn RandomSource| -> (Vec<Vec<u8>>, Vec<envelope::Crc32c>) {
            let (mut bufs, secret) = memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| (Vec::new(), SecretVec::default()));
            let secret = secret::untagged_from_parts_in(secret, self.padding, &mac_key, parts);
            self.init_envelopes(binding, share_len, &mut bufs);
            let mut tails = vec![envelope::Crc32c::new(); t.n()];
            let mut outs: Vec<&mut [u8]> =
                bufs.iter_mut().map(|b| envelope::share_mut(b)).collect();
            let mut observe = |range: std::ops::Range<usize>, outs: &[&mut [u8]]| {
                let from = range.start.max(tail_from);
                if range.end > from {
                    for (crc, out) in tails.iter_mut().zip(outs) {
                        crc.update(&out[from..range.end]);
                    }
                }
            };
            self.xorida.split_into_observed(t, &secret, rng, &mut outs, &mut observe);
            (bufs, tails)
        };
        let tag = || secret::tag_of_parts(binding, &mac_key, parts);
        let ((mut bufs, tails), mac) = if secret_len >= PARALLEL_MAC_MIN {
            // The HMAC, the longer task, on this thread at once; the split on a pooled
            // thread ([`crate::pair`]), which may be slow to wake but has about half as much
            // to do.
            let rng = Mutex::new(rng);
            let split = || split_all(*rng.lock().unwrap_or_else(PoisonError::into_inner));
            let (mac, split) = crate::pair::beside(tag, split);
            (split.ok_or_else(|| VaultError::SplitFailed("split thread panicked".into()))?, mac)
        } else {
            (split_all(rng), tag())
        };
        for (buf, tail) in bufs.iter_mut().zip(tails) {
            let share = envelope::share_mut(buf);
            for (s, m) in share[secret::TAG_RANGE].iter_mut().zip(mac) {
                *s ^= m;
            }
            envelope::seal_with_tail(buf, tail_from, tail.value());
        }
        Ok(bufs)
    }

    /// Memory for N envelopes with a share of `share_len` bytes each: recycled buffers
    /// (zero, their pages mapped) where the pool has them, else empty ones with room.
    fn envelope_memory(&self, share_len: u32) -> Vec<Vec<u8>> {
        let len = envelope::HEADER_LEN + share_len as usize + envelope::TRAILER_LEN;
        (0..self.threshold.n())
            .map(|_| bufpool::take(len).unwrap_or_else(|| Vec::with_capacity(len)))
            .collect()
    }

    /// Makes `bufs` ([`Shares::envelope_memory`]; any missing are allocated) the N envelopes
    /// of one version: each its length, zero past what it held, its header written.
    fn init_envelopes(&self, binding: &Binding, share_len: u32, bufs: &mut Vec<Vec<u8>>) {
        let t = self.threshold;
        bufs.resize_with(t.n(), Vec::new);
        for (i, buf) in bufs.iter_mut().enumerate() {
            let x = (i + 1) as u8;
            let (kind, version, tag) = (binding.kind, binding.version, binding.tag);
            let header = Header { kind, threshold: t, x, version, tag, secret_len: share_len };
            buf.resize(header.envelope_len(), 0);
            header.write_to(buf);
        }
    }

    /// [`Shares::seal`] in compact mode (docs/FORMAT.md section 16), the MAC key drawn. The
    /// untagged secret is encrypted into the envelopes and the MAC XOR-ed into the
    /// ciphertext afterwards (counter mode: the untagged secret's tag block is zero, so its
    /// ciphertext is the keystream). For large secrets this thread computes the MAC from the
    /// parts while a second one builds the secret, encrypts, disperses and checksums, and
    /// the MAC is added to the dispersed shares through the code's linearity
    /// ([`Compact::add_to_first_chunk`]).
    fn seal_compact(
        &self,
        binding: &Binding,
        mac_key: &[u8; 32],
        parts: &[&[u8]],
        secret_len: usize,
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<Vec<u8>>> {
        let t = self.threshold;
        let share_len = compact::share_len(t, secret_len);
        let env_share_len = envelope_share_len(share_len)?;
        // Allocated here; zeroed and headed where they are filled (on the second thread for
        // a large secret).
        let mut bufs = self.envelope_memory(env_share_len);
        let compact = self.compact;
        let tag = || secret::tag_of_parts(binding, mac_key, parts);
        if secret_len < PARALLEL_MAC_MIN {
            self.init_envelopes(binding, env_share_len, &mut bufs);
            let secret = secret::untagged_from_parts(self.padding, mac_key, parts);
            let mut outs: Vec<&mut [u8]> =
                bufs.iter_mut().map(|b| envelope::share_mut(b)).collect();
            compact.encrypt_into(t, &secret, rng, &mut outs);
            let mac = tag();
            let shard = share_len - compact::KEY_LEN;
            for (p, m) in secret::TAG_RANGE.zip(mac) {
                outs[p / shard][compact::KEY_LEN + p % shard] ^= m;
            }
            compact.disperse(t, &mut outs)?;
            bufs.iter_mut().for_each(|b| envelope::seal(b));
            return Ok(bufs);
        }
        // A large secret: its MAC on this thread while a second one encrypts, disperses and
        // checksums the shares past their first chunk; then the MAC goes into the first
        // chunk (ciphertext bytes 32..64, in shard 1) of every share, and the checksums are
        // finished from there.
        let tail_from = compact::KEY_LEN + compact::CHUNK;
        // As in the default mode, the HMAC on this thread at once and the rest on a second,
        // in memory allocated here.
        let memory = Mutex::new(Some((bufs, SecretVec::with_capacity(secret_len))));
        let rng = Mutex::new(rng);
        let encrypted = || -> Result<(Vec<Vec<u8>>, Vec<u32>)> {
            let (mut bufs, secret) = memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| (Vec::new(), SecretVec::default()));
            self.init_envelopes(binding, env_share_len, &mut bufs);
            let secret = secret::untagged_from_parts_in(secret, self.padding, mac_key, parts);
            let mut outs: Vec<&mut [u8]> =
                bufs.iter_mut().map(|b| envelope::share_mut(b)).collect();
            let rng = &mut **rng.lock().unwrap_or_else(PoisonError::into_inner);
            compact.encrypt_into(t, &secret, rng, &mut outs);
            drop(secret);
            compact.disperse(t, &mut outs)?;
            let tails = outs.iter().map(|o| envelope::crc32c(&o[tail_from..])).collect();
            Ok((bufs, tails))
        };
        let (mac, encrypted) = crate::pair::beside(tag, encrypted);
        let (mut bufs, tails) = encrypted
            .ok_or_else(|| VaultError::SplitFailed("encryption thread panicked".into()))??;
        let mut delta = [0u8; compact::CHUNK];
        delta[secret::TAG_RANGE].copy_from_slice(&mac);
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| envelope::share_mut(b)).collect();
        compact.add_to_first_chunk(t, &mut outs, &delta)?;
        for (buf, tail) in bufs.iter_mut().zip(tails) {
            envelope::seal_with_tail(buf, tail_from, tail);
        }
        Ok(bufs)
    }

    /// Splits a record id (padded) into N id shares, one per backend's object name.
    ///
    /// # Errors
    /// `INVALID_INPUT` for an invalid id.
    pub(crate) fn split_id(&self, id: &str, rng: &mut dyn RandomSource) -> Result<Vec<Vec<u8>>> {
        let padded_id = pad_id(id)?;
        Ok(self.xorida.split(self.threshold, &padded_id, rng))
    }

    /// The envelopes of a keyring, one per backend.
    pub(crate) fn seal_keyring(
        &self,
        keyring: &Keyring,
        version: Version,
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<Bytes>> {
        let t = self.threshold;
        let binding = Binding { kind: Kind::Keyring, tag: KEYRING_TAG, version, threshold: t };
        let secret =
            secret::seal(&binding, self.padding, 256, rng, |buf| keyring.encode_into(buf))?;
        let len = secret.len() + envelope::HEADER_LEN + envelope::TRAILER_LEN;
        if len as u64 > MAX_KEYRING_SHARE_LEN {
            return Err(VaultError::invalid_config(format!(
                "the keyring would take {len} bytes, more than the {MAX_KEYRING_SHARE_LEN} \
                 a read accepts: the backend ids are too long"
            )));
        }
        let shares = self.xorida.split(t, &secret, rng);
        Ok(shares
            .iter()
            .enumerate()
            .map(|(i, share)| {
                let header = Header {
                    kind: Kind::Keyring,
                    threshold: t,
                    x: (i + 1) as u8,
                    version,
                    tag: KEYRING_TAG,
                    secret_len: share.len() as u32,
                };
                Bytes::from(envelope::encode(&header, share))
            })
            .collect())
    }

    /// Checks an envelope fetched from backend `idx` against what the read expects; the
    /// error says which check failed.
    pub(crate) fn check(&self, idx: usize, bytes: &[u8], expect: &Expect) -> Result<(), String> {
        self.check_header(idx, bytes, expect)?;
        envelope::verify_checksum(bytes).map_err(|e| e.to_string())
    }

    /// True if a read may check the CRC of an envelope of `len` bytes while it rebuilds and
    /// verifies ([`Shares::open`] with it unchecked) instead of when it arrives: a large
    /// envelope in the default mode, whose CRC then runs on the second thread of
    /// [`Shares::rebuild_and_open`] beside the MAC check.
    pub(crate) fn defers_checksum(&self, len: usize) -> bool {
        self.mode == Mode::Shamir && len >= PARALLEL_MAC_MIN
    }

    /// [`Shares::check`] but for the CRC (see [`Shares::defers_checksum`]).
    pub(crate) fn check_header(
        &self,
        idx: usize,
        bytes: &[u8],
        expect: &Expect,
    ) -> Result<(), String> {
        let env = envelope::decode_unchecked(bytes).map_err(|e| e.to_string())?;
        let h = env.header;
        // A record read accepts either an inline record or a segmented record's manifest;
        // the MAC binds the kind, so a backend cannot turn one into the other.
        if h.kind != expect.kind && !(expect.kind == Kind::Record && h.kind == Kind::Manifest) {
            return Err("wrong kind of share".into());
        }
        if h.threshold != self.threshold {
            return Err(format!("share is for {}, store is {}", h.threshold, self.threshold));
        }
        if usize::from(h.x) != idx + 1 {
            return Err(format!("share has x = {}, backend holds x = {}", h.x, idx + 1));
        }
        if h.version != expect.version {
            return Err("share belongs to another version".into());
        }
        if !h.tag.ct_eq(&expect.tag) {
            return Err("share belongs to another record".into());
        }
        Ok(())
    }

    /// Tries K-subsets of `good` (backend index, envelope; each accepted by
    /// [`Shares::check`], or, at the positions `unchecked`, by [`Shares::check_header`]), at
    /// most `limit` of them, and returns the first whose rebuilt secret verifies.
    ///
    /// The CRCs of the `unchecked` envelopes are checked once, beside the first subset's
    /// rebuild where it runs on two threads; the positions whose CRC fails come back with
    /// the reason, and then no secret does (even one that verified: such an envelope is
    /// not used, as if it had failed on arrival).
    pub(crate) fn open(
        &self,
        expect: &Expect,
        good: &[(usize, Bytes)],
        limit: usize,
        unchecked: &[usize],
    ) -> (Option<Opened>, Vec<(usize, String)>) {
        let mut tried = 0;
        let mut found = None;
        let mut checksums: Option<Vec<Checksum>> = None;
        let to_check: Vec<&[u8]> = unchecked.iter().map(|&p| &good[p].1[..]).collect();
        // In compact mode, subsets are tried in the order of the backends, so that the first
        // holds the lowest positions: with shares 1..=K (the original shards) nothing is
        // decoded. Otherwise in the order the envelopes came.
        let mut order: Vec<usize> = (0..good.len()).collect();
        if self.mode == Mode::Compact {
            order.sort_by_key(|&p| good[p].0);
        }
        for_each_subset(good.len(), self.threshold.k(), &mut |sub: &[usize]| {
            if tried >= limit {
                return false;
            }
            tried += 1;
            let pos: Vec<usize> = sub.iter().map(|&q| order[q]).collect();
            let pts: Vec<SharePoint<'_>> = pos
                .iter()
                .map(|&p| {
                    let (idx, bytes) = &good[p];
                    SharePoint { x: (*idx + 1) as u8, y: share_of(bytes) }
                })
                .collect();
            if pts.iter().any(|p| p.y.len() != pts[0].y.len()) {
                return true;
            }
            // check() accepted every good share, so its kind byte is valid; the subset must
            // agree on it, and the MAC label binds it.
            let kinds: Vec<Option<Kind>> =
                pos.iter().map(|&p| envelope::kind_of(&good[p].1)).collect();
            let Some(kind) = kinds[0] else {
                return true;
            };
            if kinds.iter().any(|k| *k != Some(kind)) {
                return true;
            }
            let binding = Binding {
                kind,
                tag: expect.tag,
                version: expect.version,
                threshold: self.threshold,
            };
            let check_now = if checksums.is_none() { &to_check[..] } else { &[] };
            let (opened, sums) = self.rebuild_and_open(kind, &pts, &binding, check_now);
            if checksums.is_none() {
                checksums = Some(sums);
            }
            if let Ok((secret, len)) = opened {
                let payload = SECRET_HEADER_LEN..SECRET_HEADER_LEN + len;
                found = Some(Opened { kind, secret, payload, subset: pos });
                return false;
            }
            true
        });
        let sums = checksums.unwrap_or_else(|| to_check.iter().map(|b| checksum(b)).collect());
        let bad: Vec<(usize, String)> = unchecked
            .iter()
            .zip(sums)
            .filter_map(|(&p, sum)| sum.err().map(|reason| (p, reason)))
            .collect();
        if bad.is_empty() { (found, bad) } else { (None, bad) }
    }

    /// Rebuilds the secret `pts` define and checks it ([`secret::open`]): returns it and its
    /// payload's length, and the CRC check ([`envelope::verify_checksum`]) of each of
    /// `envelopes`.
    ///
    /// A large secret in the default mode is rebuilt in [`OPEN_CHUNK`]-byte chunks, claimed
    /// in order by this thread and a second one, while this thread checks the MAC over the
    /// chunks done, in order ([`secret::open_chunks`]), rebuilding a chunk itself whenever
    /// the next one is not ready; the second thread (a pooled one: [`crate::pair`]) then
    /// checks the CRCs. The MAC check, the longer task, so starts at once, whenever the
    /// second thread wakes (a thread started per get took 0.1-0.3 ms to run on the idle
    /// two-core VMs measured, longer than the whole rebuild of a megabyte). A get then
    /// costs about the HMAC pass rather than the CRCs, the rebuild and the HMAC pass one
    /// after the other.
    ///
    /// The second thread hands each chunk it rebuilds to the shared cache
    /// ([`crate::gf256::demote`]) before this thread hashes it: hashing lines another core
    /// has just written costs a fetch from that core per line, and on the Xeon measured a
    /// 1 MiB get took 630-650 us with the hand-over against 710-735 us without it
    /// (docs/PERFORMANCE.md, "The get's hand-over"). Rebuilding every chunk on this thread
    /// instead measured no faster than without the hand-over.
    fn rebuild_and_open(
        &self,
        kind: Kind,
        pts: &[SharePoint<'_>],
        binding: &Binding,
        envelopes: &[&[u8]],
    ) -> (Result<(SecretVec, usize)>, Vec<Checksum>) {
        let checksums = || envelopes.iter().map(|b| checksum(b)).collect::<Vec<_>>();
        let len = pts.first().map_or(0, |p| p.y.len());
        if self.is_compact(kind) || len < PARALLEL_MAC_MIN {
            let opened = self.rebuild(kind, pts).and_then(|secret| {
                let payload_len = secret::open(binding, &secret)?.len();
                Ok((secret, payload_len))
            });
            return (opened, checksums());
        }
        let t = self.threshold;
        let mut secret = SecretVec::zeroed(len);
        // Chunks are claimed in order, by whichever thread is free.
        let chunks = Mutex::new(secret.chunks_mut(OPEN_CHUNK).enumerate());
        let claim = || chunks.lock().unwrap_or_else(PoisonError::into_inner).next();
        let rebuild = |chunk| rebuild_chunk(&self.xorida, t, pts, chunk);
        // The CRCs in pieces, claimed by whichever thread is free once the chunks are done.
        let crcs = PieceCrcs::new(envelopes);
        let (tx, rx) = std::sync::mpsc::channel();
        let beside = || {
            while let Some(chunk) = claim() {
                let rebuilt = rebuild(chunk);
                // Into the shared cache: the other thread hashes it next.
                if let Ok((_, chunk)) = &rebuilt {
                    crate::gf256::demote(chunk);
                }
                if tx.send(rebuilt).is_err() {
                    break;
                }
            }
            drop(tx);
            crcs.work();
        };
        let here = || {
            // The chunks done, by index, until their turn comes.
            let mut done: BTreeMap<usize, &[u8]> = BTreeMap::new();
            let mut next = 0;
            let in_order = std::iter::from_fn(|| {
                loop {
                    if let Some(chunk) = done.remove(&next) {
                        next += 1;
                        return Some(chunk);
                    }
                    let got = match rx.try_recv() {
                        Ok(got) => got,
                        // Nothing ready: rebuild the next unclaimed chunk here, or, with all
                        // claimed, wait for the other thread.
                        Err(_) => match claim() {
                            Some(chunk) => rebuild(chunk),
                            None => rx.recv().ok()?,
                        },
                    };
                    // A chunk that cannot be rebuilt ends the secret short: the check fails.
                    let (n, chunk) = got.ok()?;
                    done.insert(n, chunk);
                }
            });
            let checked = secret::open_chunks(binding, len, in_order);
            // The other thread stops at its next send, if the check ended early.
            drop(rx);
            crcs.work();
            checked
        };
        // A panic beside leaves pieces unchecked, which `verdicts` checks again.
        let (checked, _) = crate::pair::beside(here, beside);
        let sums = crcs.verdicts();
        (checked.map(|payload_len| (secret, payload_len)), sums)
    }

    /// Checks every envelope of `good` outside the opened subset against the polynomial the
    /// subset defines: per position in `good`, whether it lies on it (the subset's do).
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` if the subset's shares cannot be interpolated (they can: they
    /// just rebuilt a secret that verified).
    pub(crate) fn confirm(&self, opened: &Opened, good: &[(usize, Bytes)]) -> Result<Vec<bool>> {
        let pts: Vec<SharePoint<'_>> = opened
            .subset
            .iter()
            .map(|&p| SharePoint { x: (good[p].0 + 1) as u8, y: share_of(&good[p].1) })
            .collect();
        let mut fits = Vec::with_capacity(good.len());
        for (p, (idx, bytes)) in good.iter().enumerate() {
            if opened.subset.contains(&p) {
                fits.push(true);
                continue;
            }
            let expected = self.derive_share(opened.kind, &pts, (*idx + 1) as u8)?;
            fits.push(expected[..] == share_of(bytes)[..]);
        }
        Ok(fits)
    }

    /// The envelope backend `x - 1` should hold, derived from the K verified envelopes in
    /// `subset` (backend index, envelope).
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` if the subset's shares cannot be interpolated at `x`.
    pub(crate) fn derive(
        &self,
        subset: &[(usize, &[u8])],
        x: u8,
        kind: Kind,
        version: Version,
        tag: NameTag,
    ) -> Result<Vec<u8>> {
        let pts: Vec<SharePoint<'_>> = subset
            .iter()
            .map(|(i, env)| SharePoint { x: (*i + 1) as u8, y: share_of(env) })
            .collect();
        let share = self.derive_share(kind, &pts, x)?;
        let header = Header {
            kind,
            threshold: self.threshold,
            x,
            version,
            tag,
            secret_len: share.len() as u32,
        };
        Ok(envelope::encode(&header, &share))
    }

    /// The id share backend `x - 1` should carry in its object name, derived from the K id
    /// shares at `holders` positions `pos`.
    pub(crate) fn derive_id_share(
        &self,
        holders: &[(usize, &[u8])],
        pos: &[usize],
        x: u8,
    ) -> Option<Vec<u8>> {
        let pts: Vec<SharePoint<'_>> = pos
            .iter()
            .map(|&p| SharePoint { x: (holders[p].0 + 1) as u8, y: holders[p].1 })
            .collect();
        self.xorida.derive(self.threshold, &pts, x).ok()
    }

    /// Rebuilds a record id from K of the id shares `holders` (backend index, id share)
    /// and checks it against its name tag, trying subsets; returns the id and the positions
    /// in `holders` of the shares that rebuilt it.
    pub(crate) fn recover_id(
        &self,
        naming: &NamingKey,
        tag: NameTag,
        holders: &[(usize, &[u8])],
    ) -> Option<(String, Vec<usize>)> {
        let mut found = None;
        for_each_subset(holders.len(), self.threshold.k(), &mut |pos| {
            let pts: Vec<SharePoint<'_>> = pos
                .iter()
                .map(|&p| SharePoint { x: (holders[p].0 + 1) as u8, y: holders[p].1 })
                .collect();
            if pts.iter().any(|p| p.y.len() != pts[0].y.len()) {
                return true;
            }
            if let Ok(padded) = self.xorida.rebuild(self.threshold, &pts)
                && let Some(id) = unpad_id(&padded)
                && naming.tag(&id).ct_eq(&tag)
            {
                found = Some((id, pos.to_vec()));
                return false;
            }
            true
        });
        found
    }
}

/// Bytes of an envelope per piece of its CRC-32C ([`PieceCrcs`]).
const CRC_PIECE: usize = 256 << 10;

/// The CRC-32C of some envelopes, computed in pieces that two threads claim in turn and
/// then combined ([`envelope::crc32c_combine`]).
struct PieceCrcs<'e> {
    envelopes: &'e [&'e [u8]],
    /// (envelope, bytes of its body) per piece, in order.
    pieces: Vec<(usize, Range<usize>)>,
    done: Vec<std::sync::OnceLock<u32>>,
    next: std::sync::atomic::AtomicUsize,
}

impl<'e> PieceCrcs<'e> {
    fn new(envelopes: &'e [&'e [u8]]) -> Self {
        let pieces: Vec<(usize, Range<usize>)> = envelopes
            .iter()
            .enumerate()
            .flat_map(|(e, b)| {
                let body = b.len().saturating_sub(envelope::TRAILER_LEN);
                (0..body).step_by(CRC_PIECE).map(move |at| (e, at..(at + CRC_PIECE).min(body)))
            })
            .collect();
        let done = pieces.iter().map(|_| std::sync::OnceLock::new()).collect();
        Self { envelopes, pieces, done, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Computes pieces until none is left unclaimed.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((e, range)) = self.pieces.get(i) else {
                return;
            };
            let _ = self.done[i].set(envelope::crc32c(&self.envelopes[*e][range.clone()]));
        }
    }

    /// Each envelope's CRC check, from its pieces (checked whole again if a piece is
    /// missing).
    fn verdicts(&self) -> Vec<Checksum> {
        let mut crc: Vec<Option<u32>> = vec![None; self.envelopes.len()];
        let mut whole = vec![false; self.envelopes.len()];
        for ((e, range), done) in self.pieces.iter().zip(&self.done) {
            match (done.get(), crc[*e]) {
                (None, _) => whole[*e] = true,
                (Some(&c), None) => crc[*e] = Some(c),
                (Some(&c), Some(a)) => {
                    crc[*e] = Some(envelope::crc32c_combine(a, c, range.len() as u64));
                }
            }
        }
        self.envelopes
            .iter()
            .zip(crc.into_iter().zip(whole))
            .map(|(b, (crc, whole))| match (crc, whole) {
                (Some(crc), false) => {
                    envelope::verify_checksum_of(b, crc).map_err(|e| e.to_string())
                }
                _ => checksum(b),
            })
            .collect()
    }
}

/// An envelope's CRC check: the reason [`Shares::check`] gives if it fails.
type Checksum = Result<(), String>;

/// An envelope's CRC check, failing with the reason [`Shares::check`] gives.
fn checksum(envelope: &[u8]) -> Checksum {
    envelope::verify_checksum(envelope).map_err(|e| e.to_string())
}

/// Chunk `n` (of [`OPEN_CHUNK`] bytes) of the secret `pts` define, rebuilt into `out`.
fn rebuild_chunk<'o>(
    xorida: &Xorida,
    t: Threshold,
    pts: &[SharePoint<'_>],
    (n, out): (usize, &'o mut [u8]),
) -> Result<(usize, &'o [u8])> {
    let from = n * OPEN_CHUNK;
    xorida.rebuild_range(t, pts, from..from + out.len(), out)?;
    Ok((n, out))
}

/// Calls `f` with every k-subset of 0..n (as sorted positions) until it returns false.
pub(crate) fn for_each_subset(n: usize, k: usize, f: &mut dyn FnMut(&[usize]) -> bool) {
    if k > n || k == 0 {
        return;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        if !f(&idx) {
            return;
        }
        // Advance to the next combination in lexicographic order.
        let mut i = k;
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            if idx[i] != i + n - k {
                break;
            }
            if i == 0 {
                return;
            }
        }
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// A share's length as an envelope header holds it (32 bits).
fn envelope_share_len(len: usize) -> Result<u32> {
    u32::try_from(len)
        .map_err(|_| VaultError::SplitFailed("secret too large for one envelope".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CsRng;

    #[test]
    fn subsets_are_all_combinations() {
        let mut seen = Vec::new();
        for_each_subset(5, 3, &mut |s| {
            seen.push(s.to_vec());
            true
        });
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.first().unwrap(), &vec![0, 1, 2]);
        assert_eq!(seen.last().unwrap(), &vec![2, 3, 4]);
        let mut n = 0;
        for_each_subset(4, 4, &mut |_| {
            n += 1;
            true
        });
        assert_eq!(n, 1);
        for_each_subset(2, 3, &mut |_| panic!("no subsets"));
        let mut stop = 0;
        for_each_subset(10, 2, &mut |_| {
            stop += 1;
            stop < 3
        });
        assert_eq!(stop, 3);
    }

    /// Seal, then: every envelope checks, any K open to the payload, the others confirm,
    /// a derived envelope equals the sealed one, and a flipped byte is found.
    #[test]
    fn sealed_envelopes_open_confirm_and_derive() {
        for mode in [Mode::Shamir, Mode::Compact] {
            for len in [5, 200_000] {
                open_confirm_derive(mode, len);
            }
        }
    }

    /// Without the pool of second threads (it could not be started), large secrets are
    /// sealed and opened on the calling thread alone, and a get does not wait for chunks no
    /// one will rebuild (it hung there once: run in a thread with a time limit).
    #[test]
    fn without_the_pool_large_secrets_seal_and_open_on_one_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            crate::pair::NO_POOL.with(|p| p.set(true));
            for mode in [Mode::Shamir, Mode::Compact] {
                open_confirm_derive(mode, 4 * PARALLEL_MAC_MIN);
            }
            tx.send(()).unwrap();
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("a large seal and open without the pool finish");
    }

    /// CRCs computed in pieces (on two threads, on one, or not at all) and combined give the
    /// verdict of checking each envelope whole, for envelopes around the piece size, intact
    /// or with a flipped byte in the body or the trailer.
    #[test]
    fn piece_crcs_answer_as_whole_checks_do() {
        let mut envs: Vec<Vec<u8>> = Vec::new();
        for len in [60usize, CRC_PIECE - 1, CRC_PIECE + 4, 2 * CRC_PIECE + 7, 3 * CRC_PIECE + 100] {
            let mut b: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            envelope::seal(&mut b);
            for flip in [None, Some(len / 2), Some(len - 1)] {
                let mut c = b.clone();
                if let Some(at) = flip {
                    c[at] ^= 4;
                }
                envs.push(c);
            }
        }
        let refs: Vec<&[u8]> = envs.iter().map(Vec::as_slice).collect();
        let whole: Vec<Checksum> = refs.iter().map(|b| checksum(b)).collect();
        assert_eq!(whole.iter().filter(|v| v.is_ok()).count(), 5, "the intact ones");
        for threads in [0, 1, 2] {
            let crcs = PieceCrcs::new(&refs);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| crcs.work());
                }
            });
            assert_eq!(crcs.verdicts(), whole, "{threads} threads");
        }
    }

    /// The shares of a seal are, byte for byte, the tagged secret (`secret::seal`) split
    /// with the same generator: drawing the MAC key first, computing the MAC from the parts
    /// (on a second thread for the large secret) and adding it afterwards change nothing.
    #[test]
    fn sealed_shares_are_the_tagged_secret_split() {
        let t = Threshold::new(3, 5).unwrap();
        let shares = Shares::new(t, Padding::Padme);
        let tag = NamingKey::from_bytes([1; 32]).tag("r");
        let binding =
            Binding { kind: Kind::Record, tag, version: Version::from_parts(7, 9), threshold: t };
        for len in [5usize, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let (a, b) = data.split_at(len / 3);
            let sealed = shares.seal(&binding, &[a, b], &mut CsRng::from_seed([9; 32])).unwrap();
            let mut rng = CsRng::from_seed([9; 32]);
            let secret = secret::seal(&binding, Padding::Padme, len, &mut rng, |buf| {
                buf.extend_from_slice(&data);
                Ok(())
            })
            .unwrap();
            let want =
                Xorida::with_kernel(crate::gf256::Kernel::portable()).split(t, &secret, &mut rng);
            for (env, want) in sealed.iter().zip(&want) {
                assert!(share_of(env) == &want[..], "{len}");
            }
        }
    }

    fn open_confirm_derive(mode: Mode, len: usize) {
        let t = Threshold::new(2, 4).unwrap();
        let shares = Shares::new(t, Padding::Padme).with_mode(mode);
        let mut rng = CsRng::from_seed([5; 32]);
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let tag = NamingKey::from_bytes([1; 32]).tag("r");
        let version = Version::from_parts(7, 9);
        let binding = Binding { kind: Kind::Record, tag, version, threshold: t };
        let sealed = shares.seal(&binding, &[&data], &mut rng).unwrap();
        let secret_len = Padding::Padme.padded_len(SECRET_HEADER_LEN + len);
        let want_len = match mode {
            Mode::Shamir => secret_len,
            Mode::Compact => compact::share_len(t, secret_len),
        };
        assert_eq!(share_of(&sealed[0]).len(), want_len, "{mode}");
        let expect = Expect { kind: Kind::Record, tag, version };
        for (i, env) in sealed.iter().enumerate() {
            assert_eq!(shares.check(i, env, &expect), Ok(()));
        }
        assert!(shares.check(1, &sealed[0], &expect).unwrap_err().contains("x = 1"));
        let mut good: Vec<(usize, Bytes)> =
            sealed.iter().cloned().map(Bytes::from).enumerate().collect();
        let opened = shares.open(&expect, &good, 1, &[]).0.unwrap();
        assert_eq!(&opened.secret[opened.payload.clone()], &data[..]);
        assert_eq!(opened.subset, [0, 1]);
        assert_eq!(shares.confirm(&opened, &good).unwrap(), [true; 4]);
        // Any two rebuild (in compact mode: with a recovery shard, or two).
        let pair: Vec<(usize, Bytes)> = vec![good[2].clone(), good[3].clone()];
        let other = shares.open(&expect, &pair, 1, &[]).0.unwrap();
        assert_eq!(&other.secret[other.payload.clone()], &data[..]);
        let subset: Vec<(usize, &[u8])> = vec![(0, &sealed[0]), (1, &sealed[1])];
        assert_eq!(shares.derive(&subset, 4, Kind::Record, version, tag).unwrap(), sealed[3]);
        let subset: Vec<(usize, &[u8])> = vec![(3, &sealed[3]), (2, &sealed[2])];
        assert_eq!(shares.derive(&subset, 1, Kind::Record, version, tag).unwrap(), sealed[0]);
        // A flipped byte in the key part, or in the shard (its first bytes, or its last), is
        // found.
        let last = sealed[3].len() - envelope::TRAILER_LEN - 1;
        for at in [envelope::HEADER_LEN, envelope::HEADER_LEN + 40, last] {
            let mut bad = sealed[3].clone();
            bad[at] ^= 1;
            good[3].1 = Bytes::from(bad);
            assert_eq!(shares.confirm(&opened, &good).unwrap(), [true, true, true, false]);
            let bad_pair = vec![good[0].clone(), good[3].clone()];
            assert!(shares.open(&expect, &bad_pair, 1, &[]).0.is_none(), "{mode} {at}");
            // The same in shares 1..=K (in compact mode: the original shards, decrypted
            // without decoding).
            let mut bad = sealed[1].clone();
            bad[at] ^= 1;
            let bad_pair = vec![good[0].clone(), (1, Bytes::from(bad))];
            assert!(shares.open(&expect, &bad_pair, 1, &[]).0.is_none(), "{mode} {at}");
        }
    }

    /// The bound of a read is what sealing the largest payload of its kind produces, and a
    /// keyring too large for its bound is refused when written.
    #[test]
    fn share_bounds_fit_what_is_sealed() {
        let t = Threshold::new(2, 3).unwrap();
        let mut rng = CsRng::from_seed([6; 32]);
        let binding = |kind| Binding {
            kind,
            tag: NameTag([3; 16]),
            version: Version::from_parts(1, 2),
            threshold: t,
        };
        let modes = [Mode::Shamir, Mode::Compact];
        let paddings = [Padding::None, Padding::Padme, Padding::PowerOfTwo, Padding::Block(4096)];
        for (mode, padding) in modes.into_iter().flat_map(|m| paddings.map(|p| (m, p))) {
            let shares = Shares::new(t, padding).with_mode(mode);
            for data_len in [0u64, 1, 1000, 70_000] {
                let payload = data_len as usize + crate::manifest::SEGMENT_HEADER_LEN;
                let sealed =
                    shares.seal(&binding(Kind::Segment), &[&vec![7; payload]], &mut rng).unwrap();
                let bound = shares.max_share_len(Kind::Segment, data_len);
                assert!(sealed[0].len() as u64 <= bound, "{padding:?} {data_len}");
                if padding == Padding::None {
                    assert_eq!(sealed[0].len() as u64, bound);
                }
                let record = shares.max_share_len(Kind::Record, data_len);
                assert!(record > bound + RECORD_FIELDS_ALLOWANCE / 4, "{mode} {padding:?}");
            }
            assert_eq!(shares.max_share_len(Kind::Keyring, 1 << 40), MAX_KEYRING_SHARE_LEN);
            assert_eq!(shares.max_share_len(Kind::Record, u64::MAX), u64::MAX);
        }
        let shares = Shares::new(t, Padding::Padme);
        let keyring = |id_len: usize| Keyring {
            naming_key: NamingKey::from_bytes([1; 32]),
            threshold: t,
            backends: (0..3).map(|i| format!("{i}{}", "x".repeat(id_len))).collect(),
            stores_key: true,
            mode: Mode::Shamir,
        };
        let small = shares.seal_keyring(&keyring(10), Version::from_parts(1, 1), &mut rng).unwrap();
        assert!(small[0].len() < 1024);
        let e = shares.seal_keyring(&keyring(30_000), Version::from_parts(1, 1), &mut rng);
        assert_eq!(e.unwrap_err().code(), crate::error::ErrorCode::InvalidConfig);
    }
}
