#![allow(missing_docs)] // criterion_group! and criterion_main! generate undocumented items.
//! End-to-end put and get latency and throughput, 2-of-3, with memory backends and with
//! FsBackends on tmpfs (/dev/shm, so the numbers are VaultDB's, not the disk's), beside
//! HMAC-SHA256 alone in the same run (the target: 1 MiB put and get with memory
//! backends at >= 60% of HMAC-SHA256 throughput).
//!
//! Run: `cargo bench -p vaultdb-fs --bench e2e`. `cargo xtask bench` runs the HMAC and
//! memory-backend cases of it for table 2 of docs/PERFORMANCE.md.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vaultdb_core::Record;

mod common;

use common::{fs_db, memory_db};

const SIZES: [(usize, &str); 4] =
    [(1 << 10, "1KiB"), (10 << 10, "10KiB"), (100 << 10, "100KiB"), (1 << 20, "1MiB")];

/// (warm-up, measurement) per case; `VAULTDB_BENCH_QUICK=1` (set by `cargo xtask bench
/// --quick`) makes them short for a smoke run.
fn times() -> (Duration, Duration) {
    if std::env::var_os("VAULTDB_BENCH_QUICK").is_some() {
        (Duration::from_millis(200), Duration::from_millis(600))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let stores =
        [("memory", rt.block_on(memory_db())), ("fs-tmpfs", rt.block_on(fs_db(dir.path())))];

    let (warm, measure) = times();
    let mut hmac = c.benchmark_group("hmac_sha256");
    hmac.measurement_time(measure).warm_up_time(warm);
    for (size, label) in SIZES {
        let data = vec![0x5au8; size];
        hmac.throughput(Throughput::Bytes(size as u64));
        hmac.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, d| {
            b.iter(|| {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).expect("key");
                m.update(d);
                m.finalize().into_bytes()
            })
        });
    }
    hmac.finish();

    for (store, db) in &stores {
        for op in ["put", "get"] {
            let mut g = c.benchmark_group(format!("e2e_{op}/{store}"));
            g.measurement_time(measure).warm_up_time(warm);
            for (size, label) in SIZES {
                let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
                let id = format!("bench-{label}");
                rt.block_on(db.put(Record::new(id.clone(), data.clone()))).expect("put");
                g.throughput(Throughput::Bytes(size as u64));
                g.bench_function(BenchmarkId::from_parameter(label), |b| match op {
                    "put" => b.iter(|| {
                        rt.block_on(db.put(Record::new(id.clone(), data.clone()))).expect("put")
                    }),
                    _ => b.iter(|| rt.block_on(db.get(&id)).expect("get")),
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
