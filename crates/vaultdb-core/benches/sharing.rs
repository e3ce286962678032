//! Throughput of the XorIDA engine: split and rebuild at 1 KiB .. 16 MiB for 2-of-3 and
//! 3-of-5 on the best kernel (and the portable kernel at 1 MiB), with the costs around it
//! for scale (the AES-CTR generator alone, HMAC-SHA256 alone, a 1 -> 3 memcpy floor) and two
//! peer crates (vsss-rs and blahaj, byte-wise Shamir over GF(2^8)).
//!
//! Throughput is always the *secret* size per second. Outputs are preallocated and reused, so
//! allocation and page faults are not measured, except in `rebuild_alloc`, which calls the
//! public `Xorida::rebuild` (allocates the result, zeroizes it on drop).
//!
//! Run: `cargo bench -p vaultdb-core --bench sharing` (about 5 minutes on 2 cores). Results
//! are in docs/PERFORMANCE.md. Set `VAULTDB_BENCH_QUICK=1` for a much shorter, noisier run.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, measurement::WallTime};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vaultdb_core::gf256::Kernel;
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::{SharePoint, Threshold, Xorida};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const SIZES: [usize; 4] = [KIB, 64 * KIB, MIB, 16 * MIB];
const PEER_SIZES: [usize; 3] = [KIB, 64 * KIB, MIB];

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

fn bench_split(c: &mut Criterion) {
    let best = Kernel::best();
    let mut g = c.benchmark_group("split");
    for (t, name) in thresholds() {
        let mut cases: Vec<(Kernel, usize)> = SIZES.iter().map(|&s| (best, s)).collect();
        cases.push((Kernel::portable(), MIB));
        for (kernel, size) in cases {
            configure(&mut g, size);
            let x = Xorida::with_kernel(kernel);
            let s = secret(size);
            let mut shares = vec![vec![0u8; size]; t.n()];
            let mut rng = CsRng::from_seed([1; 32]);
            let id = BenchmarkId::new(format!("{name}/{}", kernel.isa()), label(size));
            g.bench_function(id, |b| {
                b.iter(|| {
                    let mut outs: Vec<&mut [u8]> =
                        shares.iter_mut().map(Vec::as_mut_slice).collect();
                    x.split_into(t, black_box(&s), &mut rng, &mut outs);
                })
            });
        }
    }
    g.finish();
}

fn bench_rebuild(c: &mut Criterion) {
    let best = Kernel::best();
    let mut g = c.benchmark_group("rebuild");
    for (t, name) in thresholds() {
        let mut cases: Vec<(Kernel, usize)> = SIZES.iter().map(|&s| (best, s)).collect();
        cases.push((Kernel::portable(), MIB));
        for (kernel, size) in cases {
            configure(&mut g, size);
            let x = Xorida::with_kernel(kernel);
            let s = secret(size);
            let shares = x.split(t, &s, &mut CsRng::from_seed([2; 32]));
            // A subset that is not the first K shares, so no weight is trivially 1.
            let pts: Vec<SharePoint<'_>> = (0..t.k())
                .map(|i| SharePoint { x: (t.n() - i) as u8, y: &shares[t.n() - 1 - i] })
                .collect();
            let mut out = vec![0u8; size];
            x.interpolate(&pts, 0, &mut out).unwrap();
            assert_eq!(out, s);
            let id = BenchmarkId::new(format!("{name}/{}", kernel.isa()), label(size));
            g.bench_function(id, |b| {
                b.iter(|| x.interpolate(black_box(&pts), 0, &mut out).unwrap())
            });
        }
    }
    g.finish();
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

fn bench_peers(c: &mut Criterion) {
    let mut g = c.benchmark_group("peer_vsss_rs");
    for size in PEER_SIZES {
        configure(&mut g, size);
        let s = secret(size);
        let mut rng = rand::rng();
        g.bench_function(BenchmarkId::new("split/2of3", label(size)), |b| {
            b.iter(|| vsss_rs::Gf256::split_array(2, 3, black_box(&s), &mut rng).unwrap())
        });
        let shares = vsss_rs::Gf256::split_array(2, 3, &s, &mut rng).unwrap();
        let two = vec![shares[2].clone(), shares[1].clone()];
        assert_eq!(vsss_rs::Gf256::combine_array(&two).unwrap(), s);
        g.bench_function(BenchmarkId::new("rebuild/2of3", label(size)), |b| {
            b.iter(|| vsss_rs::Gf256::combine_array(black_box(&two)).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("peer_blahaj");
    for size in PEER_SIZES {
        configure(&mut g, size);
        let s = secret(size);
        let sharks = blahaj::Sharks(2);
        let mut rng = rand::rng();
        g.bench_function(BenchmarkId::new("split/2of3", label(size)), |b| {
            b.iter(|| sharks.dealer_rng(black_box(&s), &mut rng).take(3).collect::<Vec<_>>())
        });
        let shares: Vec<blahaj::Share> = sharks.dealer_rng(&s, &mut rng).take(3).collect();
        let two = [shares[2].clone(), shares[1].clone()];
        assert_eq!(sharks.recover(&two).unwrap(), s);
        g.bench_function(BenchmarkId::new("rebuild/2of3", label(size)), |b| {
            b.iter(|| sharks.recover(black_box(&two)).unwrap())
        });
    }
    g.finish();
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

criterion::criterion_group!(
    benches,
    bench_split,
    bench_rebuild,
    bench_baselines,
    bench_record,
    bench_peers
);
criterion::criterion_main!(benches);
