//! Throughput of the XorIDA engine: split and rebuild at 1 KiB .. 16 MiB for 2-of-3 and
//! 3-of-5 on the best kernel (and the portable kernel at 1 MiB), with the costs around it
//! for scale (the AES-CTR generator alone, HMAC-SHA256 alone, a 1 -> 3 memcpy floor) and four
//! peer crates (vsss-rs, blahaj, sharks and shamir-vault: byte-wise Shamir over GF(2^8)) at
//! 2-of-3 and 3-of-5, at 64 KiB.
//!
//! Throughput is always the *secret* size per second. Outputs are preallocated and reused, so
//! allocation and page faults are not measured, except in `rebuild_alloc`, which calls the
//! public `Xorida::rebuild` (allocates the result, zeroizes it on drop).
//!
//! The `floor` group measures the least work each operation must do beside the operation, case
//! by case (docs/PERFORMANCE.md, "Floors"): the generator alone for the (K-1)·L random bytes
//! of a split, reading the secret and writing N buffers (`copy_from_slice`), and reading K
//! buffers and writing one (their XOR, through the best kernel with every weight 1), with a
//! chain of multiplies that estimates the clock. The
//! `split_kernels` and `rebuild_kernels` groups run every SIMD kernel this CPU has at 1 MiB,
//! and `split_before` the split as it was before the GFNI kernels and the VAES generator
//! (16 KiB steps, AES-NI `aes` 0.8 CTR over a zero-filled buffer, the AVX2 kernel).
//! `handover` times SHA-256 over a megabyte another thread has just written, with and
//! without that thread handing its lines to the shared cache (`gf256::demote`).
//!
//! Run: `cargo bench -p vaultdb-core --bench sharing` (about 6 minutes on 2 cores), or
//! `cargo xtask bench`, which runs it with the other suites and writes the tables of
//! docs/PERFORMANCE.md. Set `VAULTDB_BENCH_QUICK=1` for a much shorter, noisier run.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, measurement::WallTime,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vaultdb_core::gf256::{Base, Isa, Kernel};
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::{SharePoint, Threshold, Xorida};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const SIZES: [usize; 4] = [KIB, 64 * KIB, MIB, 16 * MIB];
/// The peers run at 64 KiB only: they are 50-500x slower than the engine, and their
/// throughput is nearly flat from 1 KiB to 1 MiB (docs/PERFORMANCE.md).
const PEER_SIZES: [usize; 1] = [64 * KIB];

fn label(size: usize) -> String {
    if size >= MIB { format!("{}MiB", size / MIB) } else { format!("{}KiB", size / KIB) }
}

fn secret(size: usize) -> Vec<u8> {
    let mut s = vec![0u8; size];
    CsRng::from_seed([0x5e; 32]).fill_bytes(&mut s);
    s
}

/// Short runs for big inputs: the whole suite must stay within a few minutes on 2 cores.
fn configure(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    let quick = std::env::var_os("VAULTDB_BENCH_QUICK").is_some();
    let (warm, meas, samples) = match size {
        s if quick && s >= MIB => (200, 600, 10),
        _ if quick => (200, 600, 20),
        s if s >= 16 * MIB => (1000, 3000, 10),
        s if s >= MIB => (1000, 2500, 10),
        _ => (500, 1500, 50),
    };
    g.warm_up_time(Duration::from_millis(warm));
    g.measurement_time(Duration::from_millis(meas));
    g.sample_size(samples);
    g.throughput(Throughput::Bytes(size as u64));
}

fn thresholds() -> [(Threshold, &'static str); 2] {
    [(Threshold::new(2, 3).unwrap(), "2of3"), (Threshold::new(3, 5).unwrap(), "3of5")]
}

/// The best kernel at every size of [`SIZES`], and the portable kernel at 1 MiB.
fn size_cases() -> Vec<(Kernel, usize)> {
    let best = Kernel::best();
    let mut cases: Vec<(Kernel, usize)> = SIZES.iter().map(|&s| (best, s)).collect();
    cases.push((Kernel::portable(), MIB));
    cases
}

/// In benchmark group `group`, for each threshold and each `(kernel, secret size)` of
/// `cases`: `bench(g, t, x, s, id)` with the group configured for the size, an engine on the
/// kernel, the secret, and the benchmark's id (`2of3/<isa>` and the size).
fn kernel_cases(
    c: &mut Criterion,
    group: &str,
    cases: &[(Kernel, usize)],
    mut bench: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, Threshold, &Xorida, &[u8], BenchmarkId),
) {
    let mut g = c.benchmark_group(group);
    for (t, name) in thresholds() {
        for &(kernel, size) in cases {
            configure(&mut g, size);
            let x = Xorida::with_kernel(kernel);
            let s = secret(size);
            let id = BenchmarkId::new(format!("{name}/{}", kernel.isa()), label(size));
            bench(&mut g, t, &x, &s, id);
        }
    }
    g.finish();
}

/// `split_into` preallocated shares, in group `group`, for each threshold and each
/// `(kernel, secret size)` of `cases`.
fn split_group(c: &mut Criterion, group: &str, cases: &[(Kernel, usize)]) {
    kernel_cases(c, group, cases, |g, t, x, s, id| bench_split_into(g, id, t, x, s));
}

/// One case of `split_into` the secret `s` into preallocated shares (`split_group` and the
/// `floor` group).
fn bench_split_into(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    t: Threshold,
    x: &Xorida,
    s: &[u8],
) {
    let mut shares = vec![vec![0u8; s.len()]; t.n()];
    let mut rng = CsRng::from_seed([1; 32]);
    g.bench_function(id, |b| {
        b.iter(|| {
            let mut outs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
            x.split_into(t, black_box(s), &mut rng, &mut outs);
        })
    });
}

/// `interpolate` into a preallocated buffer, in group `group`, for each threshold and each
/// `(kernel, secret size)` of `cases` (the result is checked once before it is timed).
fn rebuild_group(c: &mut Criterion, group: &str, cases: &[(Kernel, usize)]) {
    kernel_cases(c, group, cases, |g, t, x, s, id| bench_interpolate(g, id, t, x, s, None));
}

/// One case of `interpolate` from the last K shares of `s` into a preallocated buffer,
/// checked once before it is timed (`rebuild_group` and the `floor` group). With `floor`
/// (the `floor` group), first the rebuild's floor on the same buffers: the K shares XOR-ed
/// into the same output through `kernel`, every weight 1. The same buffers because where
/// they lie matters: stores to the output 4 KiB apart (modulo) from loads of the inputs
/// stall them (docs/PERFORMANCE.md, "Floors").
fn bench_interpolate(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    t: Threshold,
    x: &Xorida,
    s: &[u8],
    floor: Option<(BenchmarkId, Kernel)>,
) {
    let shares = x.split(t, s, &mut CsRng::from_seed([2; 32]));
    // A subset that is not the first K shares, so no weight is trivially 1.
    let pts: Vec<SharePoint<'_>> = (0..t.k())
        .map(|i| SharePoint { x: (t.n() - i) as u8, y: &shares[t.n() - 1 - i] })
        .collect();
    let mut out = vec![0u8; s.len()];
    x.interpolate(&pts, 0, &mut out).unwrap();
    assert_eq!(out, s);
    if let Some((xor_id, kernel)) = floor {
        let terms: Vec<(u8, &[u8])> = pts.iter().map(|p| (1, p.y)).collect();
        g.bench_function(xor_id, |b| {
            b.iter(|| kernel.mul_sum(black_box(&terms), Base::Zero, &mut out))
        });
    }
    g.bench_function(id, |b| b.iter(|| x.interpolate(black_box(&pts), 0, &mut out).unwrap()));
}

fn bench_split(c: &mut Criterion) {
    split_group(c, "split", &size_cases());
}

fn bench_rebuild(c: &mut Criterion) {
    rebuild_group(c, "rebuild", &size_cases());
    // The public API: allocates the result and zeroizes it when it is dropped.
    let mut g = c.benchmark_group("rebuild_alloc");
    let t = Threshold::new(2, 3).unwrap();
    for size in [64 * KIB, MIB] {
        configure(&mut g, size);
        let x = Xorida::new();
        let shares = x.split(t, &secret(size), &mut CsRng::from_seed([2; 32]));
        let pts = [SharePoint { x: 3, y: &shares[2] }, SharePoint { x: 2, y: &shares[1] }];
        let id = BenchmarkId::new(format!("2of3/{}", x.kernel().isa()), label(size));
        g.bench_function(id, |b| b.iter(|| x.rebuild(t, black_box(&pts)).unwrap()));
    }
    g.finish();
}

fn bench_baselines(c: &mut Criterion) {
    let mut g = c.benchmark_group("rng_csrng");
    for size in SIZES {
        configure(&mut g, size);
        let mut rng = CsRng::from_seed([3; 32]);
        let mut buf = vec![0u8; size];
        g.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| rng.fill_bytes(black_box(&mut buf)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("hmac_sha256");
    for size in SIZES {
        configure(&mut g, size);
        let s = secret(size);
        g.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
                mac.update(black_box(&s));
                mac.finalize().into_bytes()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("memcpy_1to3");
    for size in SIZES {
        configure(&mut g, size);
        let s = secret(size);
        let mut outs = vec![vec![0u8; size]; 3];
        g.bench_function(BenchmarkId::from_parameter(label(size)), |b| {
            b.iter(|| {
                for o in &mut outs {
                    o.copy_from_slice(black_box(&s));
                }
            })
        });
    }
    g.finish();
}

/// The sizes the floor table of docs/PERFORMANCE.md compares at.
const FLOOR_SIZES: [usize; 2] = [64 * KIB, MIB];

/// The floors and the operations they bound, case by case: for each threshold and size of
/// [`FLOOR_SIZES`], one after the other within seconds, `floor/<t>/<size>/<what>` for
/// - `clock`: 10^6 dependent 64-bit multiplies ([`clock_chain`]), from which the table
///   estimates the core clock during the case;
/// - `rng`: the generator alone for the split's (K-1)·L random bytes;
/// - `copy`: the secret copied into N buffers (`copy_from_slice`);
/// - `split`: the split on the best kernel, as in the `split` group;
/// - `xor`: K buffers XOR-ed into one (the best kernel, every weight 1): the very shares and
///   output buffer the rebuild then uses;
/// - `rebuild`: the rebuild on the best kernel, as in the `rebuild` group.
///
/// Measured side by side because the clock of these machines moves by about 10% over
/// minutes (3.93 and 3.59 GHz, 20 minutes apart, on 2026-12-07), and it moves the split
/// (bound by the AES rounds) but not the copy (bound by memory): an operation and its floor
/// measured minutes apart, in different groups, can differ by that much for no reason in
/// the code (docs/PERFORMANCE.md, "Floors").
fn bench_floors(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    let best = Kernel::best();
    let x = Xorida::with_kernel(best);
    for (t, name) in thresholds() {
        for size in FLOOR_SIZES {
            configure(&mut g, size);
            let case = format!("{name}/{}", label(size));
            let s = secret(size);
            g.bench_function(BenchmarkId::new(&case, "clock"), |b| {
                b.iter(|| clock_chain(black_box(3)))
            });

            let mut rng = CsRng::from_seed([3; 32]);
            let mut buf = vec![0u8; (t.k() - 1) * size];
            g.bench_function(BenchmarkId::new(&case, "rng"), |b| {
                b.iter(|| rng.fill_bytes(black_box(&mut buf)))
            });

            let mut shares = vec![vec![0u8; size]; t.n()];
            g.bench_function(BenchmarkId::new(&case, "copy"), |b| {
                b.iter(|| {
                    for o in &mut shares {
                        o.copy_from_slice(black_box(&s));
                    }
                })
            });

            bench_split_into(&mut g, BenchmarkId::new(&case, "split"), t, &x, &s);

            let xor = BenchmarkId::new(&case, "xor");
            bench_interpolate(
                &mut g,
                BenchmarkId::new(&case, "rebuild"),
                t,
                &x,
                &s,
                Some((xor, best)),
            );
        }
    }
    g.finish();
}

/// Multiplies done by [`clock_chain`]: at 3 cycles each (the latency of a 64-bit integer
/// multiply on the x86-64 cores of the last decade, Intel and AMD), a chain of them takes
/// 3·10^6 cycles, so its time in microseconds gives the clock: GHz = 3000 / time.
const CLOCK_CHAIN: u64 = 1_000_000;

/// `CLOCK_CHAIN` squarings, each waiting for the one before (nothing else in the chain: the
/// loop counter runs beside it). The value soon settles at 1; a multiply's latency does not
/// depend on its operands.
fn clock_chain(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..CLOCK_CHAIN {
        x = x.wrapping_mul(x);
    }
    x
}

/// Every SIMD kernel this CPU has, at 1 MiB, split and rebuild; and the split as it was
/// before this generator and these kernels (`split_before`).
fn bench_kernels(c: &mut Criterion) {
    let simd: Vec<(Kernel, usize)> = Kernel::available()
        .into_iter()
        .filter(|k| k.isa() != Isa::Portable)
        .map(|k| (k, MIB))
        .collect();
    split_group(c, "split_kernels", &simd);
    rebuild_group(c, "rebuild_kernels", &simd);

    let Some(avx2) = Kernel::new(Isa::Avx2) else { return };
    let mut g = c.benchmark_group("split_before");
    for (t, name) in thresholds() {
        configure(&mut g, MIB);
        let s = secret(MIB);
        let mut shares = vec![vec![0u8; MIB]; t.n()];
        let mut rng = before::Aes08Ctr::new(&[1; 32]);
        let id = BenchmarkId::new(format!("{name}/{}", avx2.isa()), label(MIB));
        g.bench_function(id, |b| {
            b.iter(|| {
                let mut outs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
                before::split_into(avx2, t, black_box(&s), &mut rng, &mut outs);
            })
        });
    }
    g.finish();
}

/// The split before the GFNI kernels and the VAES generator, for comparison in the same run:
/// the loop of `Xorida::split_into` as it was (16 KiB steps, one sweep per coefficient, each
/// step's random bytes drawn just before use) over the generator as it was (`aes` 0.8 and
/// `ctr` 0.9: AES-NI on 128-bit registers, keystream XORed into a zero-filled buffer).
mod before {
    use ctr09::cipher::{KeyIvInit, StreamCipher};
    use vaultdb_core::Threshold;
    use vaultdb_core::gf256::{self, Kernel};

    const STEP: usize = 16 * 1024;

    pub(super) struct Aes08Ctr(ctr09::Ctr128BE<aes08::Aes256>);

    impl Aes08Ctr {
        pub(super) fn new(seed: &[u8; 32]) -> Self {
            Self(ctr09::Ctr128BE::<aes08::Aes256>::new(seed.into(), &[0u8; 16].into()))
        }

        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
            self.0.apply_keystream(dest);
        }
    }

    pub(super) fn split_into(
        kernel: Kernel,
        t: Threshold,
        secret: &[u8],
        rng: &mut Aes08Ctr,
        outs: &mut [&mut [u8]],
    ) {
        let len = secret.len();
        let mut coeffs = vec![0u8; len.min(STEP)];
        let mut xpow: Vec<u8> = (1..=t.n()).map(|x| x as u8).collect();
        for j in 1..t.k() {
            if j > 1 {
                for (i, xp) in xpow.iter_mut().enumerate() {
                    *xp = gf256::mul(*xp, (i + 1) as u8);
                }
            }
            for start in (0..len).step_by(STEP) {
                let end = len.min(start + STEP);
                let r = &mut coeffs[..end - start];
                rng.fill_bytes(r);
                for (out, &xp) in outs.iter_mut().zip(&xpow) {
                    let out = &mut out[start..end];
                    if j == 1 {
                        kernel.mul_add_into(xp, r, &secret[start..end], out);
                    } else {
                        kernel.mul_acc(xp, r, out);
                    }
                }
            }
        }
    }
}

/// Short, flat-sampled runs for the peers: one call takes milliseconds, so criterion's default
/// linear sampling (1 + 2 + ... + n iterations) would take minutes per case.
fn configure_peer(g: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    let quick = std::env::var_os("VAULTDB_BENCH_QUICK").is_some();
    let meas = if quick { 500 } else { 1500 };
    g.warm_up_time(Duration::from_millis(if quick { 100 } else { 300 }));
    g.measurement_time(Duration::from_millis(meas));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(size as u64));
}

/// The rebuilding subset every peer (and `bench_rebuild`) uses: the last K shares, highest
/// first (3, 2 for 2-of-3; 5, 4, 3 for 3-of-5).
fn last_k<T: Clone>(shares: &[T], k: usize) -> Vec<T> {
    shares.iter().rev().take(k).cloned().collect()
}

/// One peer crate at 2-of-3 and 3-of-5 at [`PEER_SIZES`], in the benchmark group `group`:
/// `split(secret, k, n, rng)` makes N shares with a fresh `rng()` per size, `combine(shares)`
/// rebuilds the secret from [`last_k`] of them (checked once before it is timed).
fn bench_peer<R, S: Clone>(
    c: &mut Criterion,
    group: &str,
    rng: impl Fn() -> R,
    split: impl Fn(&[u8], usize, usize, &mut R) -> Vec<S>,
    combine: impl Fn(&[S]) -> Vec<u8>,
) {
    let mut g = c.benchmark_group(group);
    for size in PEER_SIZES {
        configure_peer(&mut g, size);
        let s = secret(size);
        let mut rng = rng();
        for (t, name) in thresholds() {
            let (k, n) = (t.k(), t.n());
            g.bench_function(BenchmarkId::new(format!("split/{name}"), label(size)), |b| {
                b.iter(|| split(black_box(&s), k, n, &mut rng))
            });
            let shares = split(&s, k, n, &mut rng);
            let some = last_k(&shares, k);
            assert_eq!(combine(&some), s);
            g.bench_function(BenchmarkId::new(format!("rebuild/{name}"), label(size)), |b| {
                b.iter(|| combine(black_box(&some)))
            });
        }
    }
    g.finish();
}

/// The peer crates, each at 2-of-3 and 3-of-5, at [`PEER_SIZES`]. Every peer draws its
/// randomness from its rand version's thread-local ChaCha12 generator (`rand::rng()` for rand
/// 0.10, `rand08::thread_rng()` for rand 0.8): the same generator family for all four.
fn bench_peers(c: &mut Criterion) {
    bench_peer(
        c,
        "peer_vsss_rs",
        rand::rng,
        |s, k, n, rng| vsss_rs::Gf256::split_array(k, n, s, rng).unwrap(),
        |some| vsss_rs::Gf256::combine_array(some).unwrap(),
    );
    bench_peer(
        c,
        "peer_blahaj",
        rand::rng,
        |s, k, n, rng| blahaj::Sharks(k as u8).dealer_rng(s, rng).take(n).collect(),
        |some: &[blahaj::Share]| blahaj::Sharks(some.len() as u8).recover(some).unwrap(),
    );
    bench_peer(
        c,
        "peer_sharks",
        rand08::thread_rng,
        |s, k, n, rng| sharks::Sharks(k as u8).dealer_rng(s, rng).take(n).collect(),
        |some: &[sharks::Share]| sharks::Sharks(some.len() as u8).recover(some).unwrap(),
    );
    // Argument order is (secret, shares N, threshold K).
    bench_peer(
        c,
        "peer_shamir_vault",
        rand08::thread_rng,
        |s, k, n, rng| shamir_vault::split(s, n, k, rng).unwrap(),
        |some| shamir_vault::combine(some).unwrap(),
    );
}

/// Record encode (serialize into the secret, Padmé padding, HMAC-SHA256 tag) and decode
/// (verify the tag and the padding, deserialize), the pipeline around the split; compare with
/// `hmac_sha256` in the same run (target: encode at 1 MiB >= 60% of HMAC-SHA256 alone).
fn bench_record(c: &mut Criterion) {
    use vaultdb_core::Record;
    use vaultdb_core::envelope::Kind;
    use vaultdb_core::naming::NameTag;
    use vaultdb_core::padding::Padding;
    use vaultdb_core::secret::{self, Binding};
    let binding = Binding {
        kind: Kind::Record,
        tag: NameTag([7; 16]),
        version: vaultdb_core::Version::from_parts(1, 2),
        threshold: Threshold::new(2, 3).unwrap(),
    };
    let mut g = c.benchmark_group("record");
    for size in [KIB, 64 * KIB, MIB] {
        configure(&mut g, size);
        let record = Record::new("user-42", secret(size));
        let mut rng = CsRng::from_seed([1; 32]);
        g.bench_function(BenchmarkId::new("encode", label(size)), |b| {
            b.iter(|| {
                secret::seal(&binding, Padding::Padme, record.encoded_len_hint(), &mut rng, |buf| {
                    record.encode_into(buf)
                })
                .unwrap()
            })
        });
        let sealed =
            secret::seal(&binding, Padding::Padme, size, &mut rng, |buf| record.encode_into(buf))
                .unwrap();
        g.bench_function(BenchmarkId::new("decode", label(size)), |b| {
            b.iter(|| Record::decode(secret::open(&binding, black_box(&sealed)).unwrap()).unwrap())
        });
    }
    g.finish();
}

/// SHA-256 over 1 MiB just written: by this thread (`same`), by another thread (`other`),
/// and by another thread that then handed its lines to the shared cache with
/// `gf256::demote` (`demoted`). A large get hashes chunks the other thread rebuilt
/// (docs/PERFORMANCE.md, "The get's hand-over"). Only the hash is timed. This thread spins
/// while the other one writes, so the writer runs on another core.
fn bench_handover(c: &mut Criterion) {
    let src = secret(MIB);
    let mut g = c.benchmark_group("handover");
    configure(&mut g, MIB);
    println!("handover: CLDEMOTE on this CPU: {}", vaultdb_core::gf256::demote(&[]));
    for case in ["same", "other", "demoted"] {
        let fill = |buf: &mut [u8], round: u64| {
            buf.copy_from_slice(&src);
            buf[..8].copy_from_slice(&round.to_le_bytes());
            if case == "demoted" {
                vaultdb_core::gf256::demote(buf);
            }
        };
        g.bench_function(case, |b| {
            b.iter_custom(|iters| {
                let mut buf = vec![0u8; MIB];
                let mut hashing = Duration::ZERO;
                for round in 0..iters {
                    if case == "same" {
                        fill(&mut buf, round);
                    } else {
                        let done = std::sync::atomic::AtomicBool::new(false);
                        std::thread::scope(|s| {
                            s.spawn(|| {
                                fill(&mut buf, round);
                                done.store(true, std::sync::atomic::Ordering::Release);
                            });
                            while !done.load(std::sync::atomic::Ordering::Acquire) {
                                std::hint::spin_loop();
                            }
                        });
                    }
                    let start = std::time::Instant::now();
                    black_box(<Sha256 as sha2::Digest>::digest(&buf));
                    hashing += start.elapsed();
                }
                hashing
            });
        });
    }
    g.finish();
}

criterion::criterion_group!(
    benches,
    bench_split,
    bench_rebuild,
    bench_baselines,
    bench_record,
    bench_floors,
    bench_kernels,
    bench_peers,
    bench_handover
);
criterion::criterion_main!(benches);
