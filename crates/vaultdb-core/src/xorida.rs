//! XorIDA: K-of-N threshold sharing over GF(2^8).
//!
//! For a secret S of L bytes and random strings R_1..R_{K-1} of L bytes, share i (at
//! x_i = i, for i = 1..=N) is, byte by byte,
//!
//! ```text
//! Y_i = S + x_i*R_1 + x_i^2*R_2 + ... + x_i^(K-1)*R_(K-1)
//! ```
//!
//! that is, each byte position holds a random polynomial of degree K-1 whose constant term is
//! the secret byte. Any K shares determine the polynomial (Lagrange interpolation, the K
//! weights computed once per subset and then applied to whole buffers); any K-1 shares are
//! uniformly distributed whatever the secret, so they carry no information about it.
//!
//! Every random byte is drawn uniformly from 0..=255: rejecting zero would bias the shares.
//!
//! The random bytes come from the generator in the order docs/FORMAT.md section 2 fixes:
//! R_1 (L bytes), then R_2, ..., then R_{K-1}. Known-answer vectors depend on that order.

use crate::error::{Result, VaultError};
use crate::gf256::{self, Base, Kernel, MAX_TERMS};
use crate::rng::{RandomSource, SplitStep};
use crate::wipe::SecretVec;

/// Bytes per step of [`Xorida::interpolate`]: small enough for the working set of a step to
/// stay in the L1/L2 cache (measured in docs/PERFORMANCE.md).
const STEP: usize = 16 * 1024;

/// Bytes of each coefficient R_j per step of [`Xorida::split_into`]: the generator writes a
/// step's random bytes into the L1 cache and the kernels consume them from there at once, so
/// that generating, multiplying and writing the N shares interleave finely instead of running
/// as separate passes (measured in docs/PERFORMANCE.md).
const SPLIT_STEP: usize = 8 * 1024;

/// What [`Xorida::split_into_observed`] calls as each range of the shares becomes final.
pub type StepObserver<'a> = dyn FnMut(std::ops::Range<usize>, &[&mut [u8]]) + 'a;

/// A validated threshold: `2 <= k <= n <= 255`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Threshold {
    k: u8,
    n: u8,
}

impl Threshold {
    /// `k` of `n`.
    ///
    /// # Errors
    /// `INVALID_CONFIG` unless `2 <= k <= n <= 255`.
    pub fn new(k: usize, n: usize) -> Result<Self> {
        if k < 2 {
            return Err(VaultError::invalid_config(format!("threshold {k} is below 2")));
        }
        if n < k {
            return Err(VaultError::invalid_config(format!(
                "threshold {k} exceeds the number of backends {n}"
            )));
        }
        if n > 255 {
            return Err(VaultError::invalid_config(format!("{n} backends exceed the limit 255")));
        }
        Ok(Self { k: k as u8, n: n as u8 })
    }

    /// The threshold K: shares needed to rebuild.
    pub fn k(self) -> usize {
        usize::from(self.k)
    }

    /// The number of shares N.
    pub fn n(self) -> usize {
        usize::from(self.n)
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-of-{}", self.k, self.n)
    }
}

/// One share handed to [`Xorida::rebuild`] or [`Xorida::derive`]: its x coordinate (1..=255)
/// and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct SharePoint<'a> {
    /// The x coordinate.
    pub x: u8,
    /// The share bytes.
    pub y: &'a [u8],
}

/// The sharing engine: split, rebuild and derive, on one region [`Kernel`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Xorida {
    kernel: Kernel,
}

impl Xorida {
    /// An engine on the fastest kernel this CPU supports.
    pub fn new() -> Self {
        Self { kernel: Kernel::best() }
    }

    /// An engine on a given kernel.
    pub fn with_kernel(kernel: Kernel) -> Self {
        Self { kernel }
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Splits `secret` into `t.n()` shares; share `i` (0-based) is at x = i + 1.
    pub fn split(&self, t: Threshold, secret: &[u8], rng: &mut dyn RandomSource) -> Vec<Vec<u8>> {
        let mut shares = vec![vec![0u8; secret.len()]; t.n()];
        let mut outs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        self.split_into(t, secret, rng, &mut outs);
        shares
    }

    /// Splits `secret` into caller-provided buffers: `outs[i]` receives the share at
    /// x = i + 1. This lets callers place shares straight into their envelopes.
    ///
    /// # Panics
    /// If `outs.len() != t.n()` or any buffer's length differs from the secret's.
    pub fn split_into(
        &self,
        t: Threshold,
        secret: &[u8],
        rng: &mut dyn RandomSource,
        outs: &mut [&mut [u8]],
    ) {
        self.split_into_observed(t, secret, rng, outs, &mut |_, _| {});
    }

    /// Like [`Xorida::split_into`], and calls `observe(range, outs)` as soon as bytes
    /// `range` of every share are final, in increasing order and while they are still in
    /// the cache (for checksumming the shares in the same pass).
    ///
    /// # Panics
    /// As [`Xorida::split_into`].
    pub fn split_into_observed(
        &self,
        t: Threshold,
        secret: &[u8],
        rng: &mut dyn RandomSource,
        outs: &mut [&mut [u8]],
        observe: &mut StepObserver<'_>,
    ) {
        assert_eq!(outs.len(), t.n(), "split_into: need one buffer per share");
        let len = secret.len();
        assert!(outs.iter().all(|o| o.len() == len), "split_into: buffer length mismatch");
        let k1 = t.k() - 1;
        // pows[i * k1 + j - 1] = x_i^j, the weight of R_j in share i (at x_i = i + 1).
        let mut pows = Vec::with_capacity(t.n() * k1);
        for x in 1..=t.n() {
            let mut p = 1u8;
            for _ in 0..k1 {
                p = gf256::mul(p, x as u8);
                pows.push(p);
            }
        }
        // The random bytes of one step: `k1` rows of `SPLIT_STEP` bytes (wiped when dropped),
        // made only when the fused kernel does not take the step, which never reads them (the
        // saving, 16 KiB zeroed and wiped per 3-of-5 split, was not measurable in the noise).
        let row = len.min(SPLIT_STEP);
        if len == 0 {
            return;
        }
        // One pass over the secret and the shares in steps of `SPLIT_STEP` bytes: every
        // share's step is written once, from the secret and the step's R_1..R_{K-1}. The
        // generator order of docs/FORMAT.md section 2 (all of R_1, then all of R_2, ...) is
        // kept by reading the stream at offsets without moving its position, which the CSPRNG
        // allows, and advancing past all K-1 coefficients at the end.
        //
        // On the GFNI kernel the generator writes the shares itself, from keystream it keeps
        // in registers (`RandomSource::split_step_at`), if it can (a `CsRng` on a CPU with
        // VAES, for K <= 5). Otherwise each step's coefficients are drawn into `coeffs`, in
        // the L1 cache, and combined by the kernel; a source that can only be read in order
        // takes `split_sweeps`.
        let mut fused = self.kernel.isa() == gf256::Isa::Avx512Gfni
            && with_step(outs, 0..row, |outs| {
                let at = SplitStep { k: t.k(), offset: 0, stride: len as u64 };
                rng.split_step_at(at, &secret[..row], outs)
            });
        let mut coeffs = None;
        if !fused {
            let coeffs = coeffs.insert(SecretVec::zeroed(k1 * row));
            if !rng.fill_bytes_at(0, &mut coeffs[..row]) {
                return self.split_sweeps(t, secret, rng, outs, observe, &pows, coeffs);
            }
        }
        for start in (0..len).step_by(SPLIT_STEP) {
            let end = len.min(start + SPLIT_STEP);
            let n = end - start;
            if start > 0 && fused {
                let at = SplitStep { k: t.k(), offset: start as u64, stride: len as u64 };
                fused = with_step(outs, start..end, |outs| {
                    rng.split_step_at(at, &secret[start..end], outs)
                });
            }
            if !fused {
                let coeffs = coeffs.get_or_insert_with(|| SecretVec::zeroed(k1 * row));
                for (j, r) in coeffs.chunks_mut(row).enumerate() {
                    // The first row of the first step was read by the probe above.
                    if start > 0 || j > 0 {
                        let at = (j * len + start) as u64;
                        assert!(
                            rng.fill_bytes_at(at, &mut r[..n]),
                            "random access stopped working"
                        );
                    }
                }
                for (out, w) in outs.iter_mut().zip(pows.chunks(k1)) {
                    combine(
                        self.kernel,
                        w,
                        coeffs,
                        row,
                        n,
                        Base::Slice(&secret[start..end]),
                        &mut out[start..end],
                    );
                }
            }
            observe(start..end, outs);
        }
        rng.advance((k1 * len) as u64);
    }

    /// The split for random sources that can only be read in order, with K > 2: one sweep
    /// over the shares per coefficient R_j (all of R_1, then all of R_2, ...), each in steps.
    #[allow(clippy::too_many_arguments)]
    fn split_sweeps(
        &self,
        t: Threshold,
        secret: &[u8],
        rng: &mut dyn RandomSource,
        outs: &mut [&mut [u8]],
        observe: &mut StepObserver<'_>,
        pows: &[u8],
        coeffs: &mut [u8],
    ) {
        let (len, k1) = (secret.len(), t.k() - 1);
        for j in 0..k1 {
            for start in (0..len).step_by(SPLIT_STEP) {
                let end = len.min(start + SPLIT_STEP);
                let r = &mut coeffs[..end - start];
                rng.fill_bytes(r);
                for (out, w) in outs.iter_mut().zip(pows.chunks(k1)) {
                    let out = &mut out[start..end];
                    if j == 0 {
                        self.kernel.mul_add_into(w[j], r, &secret[start..end], out);
                    } else {
                        self.kernel.mul_acc(w[j], r, out);
                    }
                }
                if j + 1 == k1 {
                    observe(start..end, outs);
                }
            }
        }
    }

    /// Rebuilds the secret from the first `t.k()` of `shares`.
    ///
    /// # Errors
    /// `INSUFFICIENT_SHARES` with fewer than K shares; `RECONSTRUCT_FAILED` if the shares have
    /// different lengths, repeated x coordinates or x = 0.
    pub fn rebuild(&self, t: Threshold, shares: &[SharePoint<'_>]) -> Result<SecretVec> {
        let pts = Self::pick(t, shares)?;
        let mut out = SecretVec::zeroed(pts[0].y.len());
        self.interpolate(pts, 0, &mut out)?;
        Ok(out)
    }

    /// Bytes `range` of the secret [`Xorida::rebuild`] would return, written into `out` (as
    /// long as the range): a secret can be rebuilt in parts, in any order, on several
    /// threads (a get rebuilds chunks on two while it checks the MAC over those done).
    ///
    /// # Errors
    /// As [`Xorida::rebuild`]; also `RECONSTRUCT_FAILED` if `range` lies outside the shares
    /// or differs in length from `out`.
    pub fn rebuild_range(
        &self,
        t: Threshold,
        shares: &[SharePoint<'_>],
        range: std::ops::Range<usize>,
        out: &mut [u8],
    ) -> Result<()> {
        let pts = Self::pick(t, shares)?;
        let part: Option<Vec<SharePoint<'_>>> =
            pts.iter().map(|p| Some(SharePoint { x: p.x, y: p.y.get(range.clone())? })).collect();
        match part {
            Some(part) => self.interpolate(&part, 0, out),
            None => Err(VaultError::ReconstructFailed("range outside the shares".into())),
        }
    }

    /// Computes the share at `x` from the first `t.k()` of `shares` without rebuilding the
    /// secret (for repairing a lost or bad share).
    ///
    /// # Errors
    /// As [`Xorida::rebuild`]; also `RECONSTRUCT_FAILED` if `x` is 0.
    pub fn derive(&self, t: Threshold, shares: &[SharePoint<'_>], x: u8) -> Result<Vec<u8>> {
        if x == 0 {
            return Err(VaultError::ReconstructFailed("share x coordinate 0 is the secret".into()));
        }
        let pts = Self::pick(t, shares)?;
        let mut out = vec![0u8; pts[0].y.len()];
        self.interpolate(pts, x, &mut out)?;
        Ok(out)
    }

    fn pick<'s, 'a>(t: Threshold, shares: &'s [SharePoint<'a>]) -> Result<&'s [SharePoint<'a>]> {
        if shares.len() < t.k() {
            return Err(VaultError::InsufficientShares {
                need: t.k(),
                got: shares.len(),
                outcomes: Vec::new(),
            });
        }
        Ok(&shares[..t.k()])
    }

    /// Evaluates at `at` the polynomial through `pts` (Lagrange), writing into `out`.
    ///
    /// # Errors
    /// `RECONSTRUCT_FAILED` for mismatched lengths, repeated x or x = 0.
    pub fn interpolate(&self, pts: &[SharePoint<'_>], at: u8, out: &mut [u8]) -> Result<()> {
        let weights = lagrange_weights(pts, at)?;
        if pts.iter().any(|p| p.y.len() != out.len()) {
            return Err(VaultError::ReconstructFailed("shares differ in length".into()));
        }
        // Step by step, so that the output's step stays in cache across the passes, with up
        // to `MAX_TERMS` weighted shares per pass (so for K <= 4 the output is written once).
        let mut terms = [(0u8, &[][..]); MAX_TERMS];
        for (n, out) in out.chunks_mut(STEP).enumerate() {
            let range = n * STEP..n * STEP + out.len();
            let mut base = Base::Zero;
            for group in pts.chunks(MAX_TERMS).zip(weights.chunks(MAX_TERMS)) {
                for (t, (p, &w)) in terms.iter_mut().zip(group.0.iter().zip(group.1)) {
                    *t = (w, &p.y[range.clone()]);
                }
                self.kernel.mul_sum(&terms[..group.0.len()], base, out);
                base = Base::Dst;
            }
        }
        Ok(())
    }
}

/// `f(steps)`, where `steps` holds bytes `range` of every share: on the stack for up to 8
/// shares (the fused split takes at most 7), so that a split step allocates nothing.
fn with_step<T>(
    outs: &mut [&mut [u8]],
    range: std::ops::Range<usize>,
    f: impl FnOnce(&mut [&mut [u8]]) -> T,
) -> T {
    const ON_STACK: usize = 8;
    let n = outs.len();
    if n <= ON_STACK {
        let mut steps: [&mut [u8]; ON_STACK] = Default::default();
        for (s, o) in steps.iter_mut().zip(outs.iter_mut()) {
            *s = &mut o[range.clone()];
        }
        f(&mut steps[..n])
    } else {
        let mut steps: Vec<&mut [u8]> = outs.iter_mut().map(|o| &mut o[range.clone()]).collect();
        f(&mut steps)
    }
}

/// `out = base ^ sum_j w[j] * R_j[..n]`, where R_j is row `j` (of `row` bytes) of `coeffs`:
/// one share's step of a split, `MAX_TERMS` coefficients per pass.
fn combine(
    kernel: Kernel,
    w: &[u8],
    coeffs: &[u8],
    row: usize,
    n: usize,
    base: Base<'_>,
    out: &mut [u8],
) {
    let mut terms = [(0u8, &[][..]); MAX_TERMS];
    let mut base = base;
    for (g, ws) in w.chunks(MAX_TERMS).enumerate() {
        for (j, (t, &c)) in terms.iter_mut().zip(ws).enumerate() {
            let r = (g * MAX_TERMS + j) * row;
            *t = (c, &coeffs[r..r + n]);
        }
        kernel.mul_sum(&terms[..ws.len()], base, out);
        base = Base::Dst;
    }
}

/// The Lagrange weights for evaluating at `at` the polynomial through the points' x
/// coordinates: `w_i = prod_{m != i} (at - x_m) / (x_i - x_m)` (subtraction is XOR).
///
/// # Errors
/// `RECONSTRUCT_FAILED` for an empty set, x = 0 or a repeated x.
pub fn lagrange_weights(pts: &[SharePoint<'_>], at: u8) -> Result<Vec<u8>> {
    if pts.is_empty() {
        return Err(VaultError::ReconstructFailed("no shares".into()));
    }
    for (i, p) in pts.iter().enumerate() {
        if p.x == 0 {
            return Err(VaultError::ReconstructFailed("share with x coordinate 0".into()));
        }
        if pts[..i].iter().any(|q| q.x == p.x) {
            return Err(VaultError::ReconstructFailed("two shares with the same x".into()));
        }
    }
    Ok(pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (mut num, mut den) = (1u8, 1u8);
            for (m, q) in pts.iter().enumerate() {
                if m != i {
                    num = gf256::mul(num, at ^ q.x);
                    den = gf256::mul(den, p.x ^ q.x);
                }
            }
            gf256::div(num, den)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CsRng;

    #[test]
    fn thresholds() {
        assert!(Threshold::new(2, 3).is_ok());
        assert!(Threshold::new(255, 255).is_ok());
        for (k, n) in [(1, 3), (0, 0), (4, 3), (2, 256), (300, 300)] {
            let e = Threshold::new(k, n).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidConfig, "{k}-of-{n}");
        }
    }

    #[test]
    fn two_of_three_round_trip_every_pair() {
        let t = Threshold::new(2, 3).unwrap();
        let secret: Vec<u8> = (0..100u8).collect();
        let x = Xorida::with_kernel(Kernel::portable());
        let shares = x.split(t, &secret, &mut CsRng::from_seed([1; 32]));
        for a in 0..3 {
            for b in 0..3 {
                if a == b {
                    continue;
                }
                let pts = [
                    SharePoint { x: a as u8 + 1, y: &shares[a] },
                    SharePoint { x: b as u8 + 1, y: &shares[b] },
                ];
                assert_eq!(*x.rebuild(t, &pts).unwrap(), secret);
                let other = 3 - a - b;
                assert_eq!(x.derive(t, &pts, other as u8 + 1).unwrap(), shares[other]);
            }
        }
        let one = [SharePoint { x: 1, y: &shares[0] }];
        assert_eq!(x.rebuild(t, &one).unwrap_err().code(), crate::ErrorCode::InsufficientShares);
    }

    proptest::proptest! {
        /// A secret rebuilt range by range, in reverse order, is the secret a whole rebuild
        /// gives, on the fastest kernel and the portable one.
        #[test]
        fn rebuilt_ranges_make_the_rebuilt_secret(
            len in 1usize..70_000,
            chunk in 1usize..40_000,
            k in 2usize..6,
            extra in 0usize..3,
            seed in proptest::prelude::any::<u8>(),
        ) {
            let t = Threshold::new(k, k + extra).unwrap();
            let secret: Vec<u8> = (0..len).map(|i| (i * 7) as u8 ^ seed).collect();
            for x in [Xorida::new(), Xorida::with_kernel(Kernel::portable())] {
                let shares = x.split(t, &secret, &mut CsRng::from_seed([seed; 32]));
                // The last K shares, in reverse order.
                let pts: Vec<SharePoint<'_>> = (extra..k + extra)
                    .rev()
                    .map(|i| SharePoint { x: i as u8 + 1, y: &shares[i] })
                    .collect();
                let mut out = vec![0u8; len];
                for (n, part) in out.chunks_mut(chunk).enumerate().rev() {
                    let from = n * chunk;
                    x.rebuild_range(t, &pts, from..from + part.len(), part).unwrap();
                }
                proptest::prop_assert!(out == secret);
                let e = x.rebuild_range(t, &pts, len - 1..len + 1, &mut [0, 0]).unwrap_err();
                proptest::prop_assert_eq!(e.code(), crate::ErrorCode::ReconstructFailed);
            }
        }
    }

    #[test]
    fn empty_secret() {
        let t = Threshold::new(3, 5).unwrap();
        let x = Xorida::new();
        let shares = x.split(t, &[], &mut CsRng::from_seed([1; 32]));
        assert!(shares.iter().all(Vec::is_empty));
        let pts: Vec<_> =
            shares.iter().enumerate().map(|(i, s)| SharePoint { x: i as u8 + 1, y: s }).collect();
        assert!(x.rebuild(t, &pts).unwrap().is_empty());
    }

    #[test]
    fn bad_points_are_errors() {
        let t = Threshold::new(2, 3).unwrap();
        let x = Xorida::new();
        let a = [1u8, 2];
        let b = [3u8];
        let dup = [SharePoint { x: 1, y: &a }, SharePoint { x: 1, y: &a }];
        let zero = [SharePoint { x: 0, y: &a }, SharePoint { x: 1, y: &a }];
        let len = [SharePoint { x: 1, y: &a }, SharePoint { x: 2, y: &b }];
        for pts in [&dup[..], &zero[..], &len[..]] {
            assert_eq!(x.rebuild(t, pts).unwrap_err().code(), crate::ErrorCode::ReconstructFailed);
        }
    }
}
