//! The storage modes side by side (docs/PERFORMANCE.md, "Storage modes"), as JSON lines on
//! stdout for `cargo xtask bench`:
//!
//! - `{"kind":"storage", ...}`: bytes stored per byte held, 2-of-3 and 3-of-5, records of
//!   1 KiB, 100 KiB and 1 MiB, default settings (Padmé padding), memory backends: every
//!   record object's bytes on every backend (the keyring, a fixed few hundred bytes per
//!   store, left out) over the records' data bytes;
//! - `{"kind":"throughput", ...}`: put and get of one 1 MiB record, 2-of-3 and 3-of-5,
//!   memory backends, median of many runs (as the e2e suite measures them);
//! - `{"kind":"codec", ...}`: the codecs alone on 1 MiB: the XorIDA split and rebuild, the
//!   compact split and rebuild, and their parts (the AES-256-CTR keystream, the erasure
//!   code's encode and decode), and the same encode and decode with `reed-solomon-erasure`
//!   (`rse_encode`, `rse_decode`), which is the measurement behind the choice of erasure code.
//!
//! `VAULTDB_BENCH_QUICK=1` takes fewer samples (a smoke test). Run without `--bench` (as
//! `cargo test --all-targets` does), every case runs once, as a test.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vaultdb_core::compact::Compact;
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::{MemoryBackend, Mode, Record, SharePoint, Threshold, VaultDb, Xorida};

const MIB: usize = 1 << 20;

fn quick() -> bool {
    std::env::var_os("VAULTDB_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// Samples per timed case: one when run as a test (no `--bench` argument).
fn samples() -> usize {
    if !std::env::args().any(|a| a == "--bench") {
        1
    } else if quick() {
        20
    } else {
        200
    }
}

/// Median time of `f` over `samples` runs after `samples / 10 + 1` warm-up runs.
fn median(samples: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..samples / 10 + 1 {
        f();
    }
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn data(len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    CsRng::from_seed([7; 32]).fill_bytes(&mut d);
    d
}

async fn store(mode: Mode, k: usize, n: usize) -> (Vec<Arc<MemoryBackend>>, VaultDb) {
    let mems: Vec<Arc<MemoryBackend>> =
        (0..n).map(|i| Arc::new(MemoryBackend::new(format!("m{i}"), format!("m{i}")))).collect();
    let mut b = VaultDb::builder().threshold(k).mode(mode);
    for m in &mems {
        b = b.backend_arc(m.clone());
    }
    (mems, b.open().await.expect("open"))
}

async fn storage(mode: Mode, k: usize, n: usize, size: usize) {
    let (mems, db) = store(mode, k, n).await;
    let count = if samples() == 1 { 1 } else { (4 * MIB / size).clamp(4, 64) };
    let payload = data(size);
    for i in 0..count {
        db.put(Record::new(format!("record-{i}"), payload.clone())).await.expect("put");
    }
    let stored: usize = mems
        .iter()
        .flat_map(|m| m.snapshot())
        .filter(|(key, _)| key.contains("/r/"))
        .map(|(_, bytes)| bytes.len())
        .sum();
    let held = count * size;
    println!(
        "{}",
        json!({"kind": "storage", "mode": mode.as_str(), "k": k, "n": n, "record_bytes": size,
               "records": count, "stored_bytes": stored, "held_bytes": held,
               "ratio": stored as f64 / held as f64})
    );
}

fn throughput(rt: &tokio::runtime::Runtime, mode: Mode, k: usize, n: usize) {
    let samples = samples();
    let (_mems, db) = rt.block_on(store(mode, k, n));
    let payload = data(MIB);
    let id = "bench-1mib".to_owned();
    rt.block_on(db.put(Record::new(id.clone(), payload.clone()))).expect("put");
    let put = median(samples, || {
        rt.block_on(db.put(Record::new(id.clone(), payload.clone()))).expect("put");
    });
    let get = median(samples, || {
        black_box(rt.block_on(db.get(&id)).expect("get"));
    });
    for (op, t) in [("put", put), ("get", get)] {
        println!(
            "{}",
            json!({"kind": "throughput", "mode": mode.as_str(), "k": k, "n": n, "op": op,
                   "bytes": MIB, "median_ns": t.as_nanos() as u64,
                   "gbps": MIB as f64 / t.as_secs_f64() / 1e9})
        );
    }
}

fn codec_line(what: &str, k: usize, n: usize, t: Duration) {
    println!(
        "{}",
        json!({"kind": "codec", "what": what, "k": k, "n": n, "bytes": MIB,
               "median_ns": t.as_nanos() as u64, "gbps": MIB as f64 / t.as_secs_f64() / 1e9})
    );
}

fn codecs(k: usize, n: usize) {
    let samples = samples();
    let t = Threshold::new(k, n).unwrap();
    let secret = data(MIB);
    let x = Xorida::new();
    let c = Compact::new();
    let mut rng = CsRng::from_seed([1; 32]);
    codec_line(
        "xorida_split",
        k,
        n,
        median(samples, || drop(black_box(x.split(t, &secret, &mut rng)))),
    );
    let shares = x.split(t, &secret, &mut rng);
    let pts: Vec<SharePoint<'_>> =
        (n - k..n).map(|i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect();
    codec_line("xorida_rebuild", k, n, median(samples, || drop(black_box(x.rebuild(t, &pts)))));
    codec_line(
        "compact_split",
        k,
        n,
        median(samples, || drop(black_box(c.split(t, &secret, &mut rng).unwrap()))),
    );
    let shares = c.split(t, &secret, &mut rng).unwrap();
    let pts: Vec<SharePoint<'_>> =
        (n - k..n).map(|i| SharePoint { x: i as u8 + 1, y: &shares[i] }).collect();
    codec_line("compact_rebuild", k, n, median(samples, || drop(black_box(c.rebuild(t, &pts)))));
    let mut out = vec![0u8; MIB];
    codec_line("aes256_ctr", k, n, median(samples, || rng.fill_bytes(black_box(&mut out))));
    let s = vaultdb_core::compact::shard_len(t, MIB);
    let mut padded = secret.clone();
    padded.resize(k * s, 0);
    let originals: Vec<&[u8]> = padded.chunks(s).collect();
    codec_line(
        "rs_encode",
        k,
        n,
        median(samples, || {
            drop(black_box(reed_solomon_simd::encode(k, n - k, &originals).unwrap()));
        }),
    );
    let recovery = reed_solomon_simd::encode(k, n - k, &originals).unwrap();
    // The worst case for a read: as many originals missing as there are recovery shards.
    let lost = (n - k).min(k);
    let kept: Vec<(usize, &[u8])> = (lost..k).map(|i| (i, originals[i])).collect();
    let rec: Vec<(usize, &Vec<u8>)> = recovery.iter().enumerate().take(lost).collect();
    codec_line(
        "rs_decode",
        k,
        n,
        median(samples, || {
            drop(black_box(
                reed_solomon_simd::decode(k, n - k, kept.iter().copied(), rec.iter().copied())
                    .unwrap(),
            ));
        }),
    );
    // The same shards through reed-solomon-erasure (GF(2^8), its default pure-Rust build):
    // encode into freshly allocated recovery shards, as reed_solomon_simd::encode does, and
    // decode the same missing originals from its own recovery shards.
    let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(k, n - k).unwrap();
    codec_line(
        "rse_encode",
        k,
        n,
        median(samples, || {
            let mut parity = vec![vec![0u8; s]; n - k];
            rse.encode_sep(&originals, &mut parity).unwrap();
            drop(black_box(parity));
        }),
    );
    let mut parity = vec![vec![0u8; s]; n - k];
    rse.encode_sep(&originals, &mut parity).unwrap();
    let mut all: Vec<Vec<u8>> = originals.iter().map(|o| o.to_vec()).collect();
    all.extend(parity);
    all[..lost].iter_mut().for_each(|b| b.fill(0));
    codec_line(
        "rse_decode",
        k,
        n,
        median(samples, || {
            // Originals 0..lost missing (their buffers are overwritten), recovery shards past
            // the first `lost` missing too: the same K shares as rs_decode's.
            let mut shards: Vec<(&mut [u8], bool)> = all
                .iter_mut()
                .enumerate()
                .map(|(i, b)| (b.as_mut_slice(), (lost..k + lost).contains(&i)))
                .collect();
            rse.reconstruct_data(&mut shards).unwrap();
            black_box(&shards);
        }),
    );
    assert_eq!(all[..k].concat(), padded, "reed-solomon-erasure rebuilt the originals");
}

fn main() {
    // cargo bench passes `--bench` (cargo test does not: see `samples`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for mode in [Mode::Shamir, Mode::Compact] {
        for (k, n) in [(2, 3), (3, 5)] {
            for size in [1 << 10, 100 << 10, MIB] {
                rt.block_on(storage(mode, k, n, size));
            }
        }
    }
    for (k, n) in [(2, 3), (3, 5)] {
        for mode in [Mode::Shamir, Mode::Compact] {
            throughput(&rt, mode, k, n);
        }
        codecs(k, n);
    }
}
