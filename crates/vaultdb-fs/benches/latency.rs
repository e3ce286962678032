//! Per-operation latency (p50, p99), throughput against the number of concurrent clients,
//! and reads with one slow backend, for the tables of docs/PERFORMANCE.md that criterion's
//! mean-oriented statistics do not give. Every operation is timed on its own with
//! `std::time::Instant`; each result is one JSON line on stdout (progress goes to stderr),
//! which `cargo xtask bench` parses.
//!
//! Run: `cargo bench -p vaultdb-fs --bench latency [-- [--quick] [latency|concurrency|slow]]`
//! (`VAULTDB_BENCH_QUICK=1` is the same as `--quick`: short runs for a smoke test). About
//! three minutes in full on 2 cores. Without `--bench` (as `cargo test --all-targets` runs it)
//! each section does only a few operations.
//!
//! Sections (all 2-of-3, W = 3, default settings unless said):
//!
//! - `latency`: put and get of one record id at 1 KiB, 10 KiB, 100 KiB and 1 MiB, one client,
//!   over three `MemoryBackend`s and over three `FsBackend`s in a temporary directory (under
//!   `$VAULTDB_BENCH_FS_DIR`, else the system temp dir: a real disk, so fsync counts). The
//!   record is built before the clock starts (no data copy is timed).
//! - `concurrency`: 1, 2, 4, 16 and 64 client tasks on a multi-threaded Tokio runtime (one
//!   worker per core), each alternating put and get of its own 10 KiB record, for a fixed
//!   time after a warm-up; ops/s counts the operations that finish inside the window. Each
//!   client yields to the scheduler after every operation (memory backends never wait, so
//!   otherwise one client would keep its worker thread for the whole window). `cpu_cores` is
//!   the process's CPU time over the window divided by its length.
//! - `slow`: gets of 10 KiB records when backend 1 of 3 (the first in configuration order)
//!   sleeps 100 ms before every call (`vaultdb_testkit::Slow`), either only `get` or every operation
//!   (list, get, put, delete), with hedging at the default delay and with hedging off, beside
//!   the same store without the delay. The records are written before the delay is switched
//!   on. The client orders share fetches by each backend's observed read latency (an
//!   exponential moving average), so each case first runs unmeasured warm-up gets with the
//!   delay on, which let that average settle as it would in a long-running client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use vaultdb_core::{MemoryBackend, Record, Settings, VaultDb};
use vaultdb_testkit::{Ops, Slow};

mod common;

use common::{fs_db, memory_db};

const KIB: usize = 1024;
const SIZES: [usize; 4] = [KIB, 10 * KIB, 100 * KIB, 1024 * KIB];
const CLIENTS: [usize; 5] = [1, 2, 4, 16, 64];
/// Record size of the concurrency and slow-backend sections.
const MIX_SIZE: usize = 10 * KIB;
const SLOW_DELAY: Duration = Duration::from_millis(100);

/// How long each measurement runs.
#[derive(Clone, Copy)]
struct Budget {
    /// Latency: time per case, and the fewest and most operations.
    per_case: Duration,
    min_ops: usize,
    max_ops: usize,
    /// Concurrency: warm-up and measured window per client count.
    warm: Duration,
    window: Duration,
    /// Slow backend: unmeasured warm-up gets and measured gets per case.
    slow_warm: usize,
    slow_ops: usize,
}

const FULL: Budget = Budget {
    per_case: Duration::from_secs(2),
    min_ops: 200,
    max_ops: 20_000,
    warm: Duration::from_millis(500),
    window: Duration::from_secs(3),
    slow_warm: 20,
    slow_ops: 200,
};

const QUICK: Budget = Budget {
    per_case: Duration::from_millis(300),
    min_ops: 30,
    max_ops: 2_000,
    warm: Duration::from_millis(100),
    window: Duration::from_millis(500),
    slow_warm: 5,
    slow_ops: 40,
};

/// `cargo test --all-targets` runs bench targets too (without `--bench`): then every section
/// runs a handful of operations, to check that the harness works, not to measure.
const TEST: Budget = Budget {
    per_case: Duration::from_millis(1),
    min_ops: 2,
    max_ops: 5,
    warm: Duration::from_millis(5),
    window: Duration::from_millis(20),
    slow_warm: 1,
    slow_ops: 2,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick =
        std::env::var_os("VAULTDB_BENCH_QUICK").is_some() || args.iter().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; `cargo test` does not. Other `--flags` are ignored.
    let bench = args.iter().any(|a| a == "--bench");
    let sections: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    let want = |s: &str| sections.is_empty() || sections.contains(&s);
    let budget = match (bench, quick) {
        (false, _) => TEST,
        (true, true) => QUICK,
        (true, false) => FULL,
    };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let base = std::env::var_os("VAULTDB_BENCH_FS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    emit(json!({
        "kind": "env",
        "quick": quick,
        "test_mode": !bench,
        "workers": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "fs_dir": base.display().to_string(),
        "fs_type": fs_type(dir.path()),
    }));

    if want("latency") {
        latency(&rt, dir.path(), budget);
    }
    if want("concurrency") {
        concurrency(&rt, dir.path(), budget);
    }
    if want("slow") {
        slow(&rt, budget);
    }
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

/// The filesystem type of the mount that holds `path` (from /proc/mounts), if known.
fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, mnt, ty) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(mnt).then(|| (mnt.len(), ty.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, ty)| ty)
}

/// User + system CPU time of this process so far, in seconds (/proc/self/stat, Linux; clock
/// ticks of 1/100 s, the USER_HZ of every Linux architecture this runs on).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn data(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Nearest-rank percentiles of a set of durations, in microseconds.
struct Stats {
    n: usize,
    p50: f64,
    p99: f64,
    mean: f64,
    max: f64,
}

fn stats(mut ns: Vec<u64>) -> Stats {
    assert!(!ns.is_empty(), "no samples");
    ns.sort_unstable();
    let n = ns.len();
    let rank = |q: f64| ns[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1e3;
    let mean = ns.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / 1e3;
    Stats { n, p50: rank(0.50), p99: rank(0.99), mean, max: ns[n - 1] as f64 / 1e3 }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `op` until the budget is spent (at least `min_ops`, at most `max_ops`, never more
/// than four times the time budget), after a short unmeasured warm-up.
async fn sample<F, Fut>(budget: Budget, mut op: F) -> Vec<u64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    let warm_until = Instant::now() + budget.per_case / 10;
    let mut warmed = 0;
    while warmed < 5 || Instant::now() < warm_until {
        op().await;
        warmed += 1;
    }
    let start = Instant::now();
    let mut out = Vec::new();
    loop {
        out.push(nanos(op().await));
        let spent = start.elapsed();
        let enough = out.len() >= budget.min_ops && spent >= budget.per_case;
        if enough || out.len() >= budget.max_ops || spent >= budget.per_case * 4 {
            break;
        }
    }
    out
}

fn latency(rt: &tokio::runtime::Runtime, dir: &Path, budget: Budget) {
    let root = dir.join("latency");
    let stores = [("memory", rt.block_on(memory_db())), ("fs", rt.block_on(fs_db(&root)))];
    for (backend, db) in &stores {
        for size in SIZES {
            let id = format!("lat-{size}");
            let bytes = data(size);
            rt.block_on(db.put(Record::new(id.clone(), bytes.clone()))).expect("put");
            for op in ["put", "get"] {
                eprintln!("latency: {backend} {op} {size} B");
                let samples = rt.block_on(sample(budget, || {
                    let (db, id, bytes) = (db, &id, &bytes);
                    async move {
                        if op == "put" {
                            let record = Record::new(id.clone(), bytes.clone());
                            let t = Instant::now();
                            db.put(record).await.expect("put");
                            t.elapsed()
                        } else {
                            let t = Instant::now();
                            let got = db.get(id).await.expect("get");
                            let d = t.elapsed();
                            assert_eq!(got.record.data.len(), size);
                            d
                        }
                    }
                }));
                let s = stats(samples);
                emit(json!({
                    "kind": "latency", "backend": backend, "op": op, "size": size,
                    "n": s.n, "p50_us": round(s.p50), "p99_us": round(s.p99),
                    "mean_us": round(s.mean), "max_us": round(s.max),
                }));
            }
        }
    }
}

fn concurrency(rt: &tokio::runtime::Runtime, dir: &Path, budget: Budget) {
    let root = dir.join("concurrency");
    let stores = [("memory", rt.block_on(memory_db())), ("fs", rt.block_on(fs_db(&root)))];
    let bytes = Arc::new(data(MIX_SIZE));
    for (backend, db) in &stores {
        for clients in CLIENTS {
            eprintln!("concurrency: {backend} {clients} clients");
            let start = Instant::now();
            let from = start + budget.warm;
            let until = from + budget.window;
            let done = Arc::new(AtomicU64::new(0));
            let tasks: Vec<_> = (0..clients)
                .map(|c| {
                    let (db, bytes, done) = (db.clone(), bytes.clone(), done.clone());
                    rt.spawn(async move {
                        let id = format!("conc-{clients}-{c}");
                        db.put(Record::new(id.clone(), bytes.to_vec())).await.expect("put");
                        let mut lat = Vec::new();
                        let mut put = true;
                        while Instant::now() < until {
                            let t = Instant::now();
                            if put {
                                db.put(Record::new(id.clone(), bytes.to_vec())).await.expect("put");
                            } else {
                                db.get(&id).await.expect("get");
                            }
                            let end = Instant::now();
                            if t >= from && end <= until {
                                lat.push(nanos(end - t));
                            }
                            if end > from && end <= until {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            put = !put;
                            // Memory backends never return Pending, so without this a client
                            // would hold its worker thread for the whole window.
                            tokio::task::yield_now().await;
                        }
                        lat
                    })
                })
                .collect();
            // The process's CPU time across the window: how many cores the clients kept busy
            // (other work on the machine shows up as fewer than expected).
            std::thread::sleep(from.saturating_duration_since(Instant::now()));
            let cpu_from = cpu_secs();
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            let cpu = cpu_secs()
                .zip(cpu_from)
                .map(|(b, a)| round((b - a) / budget.window.as_secs_f64() * 10.0) / 10.0);
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(rt.block_on(t).expect("client task"));
            }
            let ops = done.load(Ordering::Relaxed);
            let secs = budget.window.as_secs_f64();
            // A window too short for any operation (test mode) has no percentiles.
            let s = (!lat.is_empty()).then(|| stats(lat));
            emit(json!({
                "kind": "concurrency", "backend": backend, "clients": clients,
                "size": MIX_SIZE, "mix": "put/get alternating", "ops": ops,
                "secs": secs, "ops_per_s": round(ops as f64 / secs),
                "mb_per_s": round(ops as f64 * MIX_SIZE as f64 / secs / 1e6),
                "p50_us": s.as_ref().map(|s| round(s.p50)),
                "p99_us": s.as_ref().map(|s| round(s.p99)),
                "cpu_cores": cpu,
            }));
        }
    }
}

fn slow(rt: &tokio::runtime::Runtime, budget: Budget) {
    let cases: [(&str, Option<Ops>); 3] =
        [("none", None), ("get", Some(Ops::GET)), ("all", Some(Ops::ALL))];
    let ids: Vec<String> = (0..8).map(|i| format!("slow-{i}")).collect();
    let bytes = data(MIX_SIZE);
    for (slowed, ops) in cases {
        for hedging in [true, false] {
            eprintln!("slow: slowed {slowed}, hedging {hedging}");
            let mut settings = Settings::default();
            if !hedging {
                settings.hedge_after = None;
            }
            let hedge_ms = settings.hedge_after.map(|d| d.as_secs_f64() * 1e3);
            let slow = Slow::new(MemoryBackend::new("m1", "memory 1"), Duration::ZERO);
            let handle = slow.handle();
            let db = rt
                .block_on(
                    VaultDb::builder_with(settings)
                        .backend(slow)
                        .backend(MemoryBackend::new("m2", "memory 2"))
                        .backend(MemoryBackend::new("m3", "memory 3"))
                        .threshold(2)
                        .open(),
                )
                .expect("open");
            for id in &ids {
                rt.block_on(db.put(Record::new(id.clone(), bytes.clone()))).expect("put");
            }
            if let Some(ops) = ops {
                handle.set_ops(ops);
                handle.set_delay(SLOW_DELAY);
            }
            let mut lat = Vec::new();
            for i in 0..budget.slow_warm + budget.slow_ops {
                let id = &ids[i % ids.len()];
                let t = Instant::now();
                let got = rt.block_on(db.get(id)).expect("get");
                let d = t.elapsed();
                assert_eq!(got.record.data.len(), MIX_SIZE);
                if i >= budget.slow_warm {
                    lat.push(nanos(d));
                }
            }
            let s = stats(lat);
            emit(json!({
                "kind": "slow", "slowed": slowed, "hedging": hedging,
                "hedge_after_ms": hedge_ms, "delay_ms": SLOW_DELAY.as_millis() as u64,
                "size": MIX_SIZE, "warmup": budget.slow_warm, "n": s.n,
                "p50_us": round(s.p50), "p99_us": round(s.p99),
                "mean_us": round(s.mean), "max_us": round(s.max),
            }));
        }
    }
}
