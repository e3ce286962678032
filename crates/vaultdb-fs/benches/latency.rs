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
//! Sections (all 2-of-3, W = 3, default settings unless said; `roundtrips` is listed last):
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
use vaultdb_core::{CallPolicy, MemoryBackend, Record, Settings, VaultDb};
use vaultdb_testkit::{Counting, CountingHandle, Ops, Slow, SlowHandle};

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
    if want("roundtrips") {
        roundtrips(&rt, budget, bench && !quick);
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

/// Round trips and calls per operation on slow backends (issue "round trips and request
/// cost"): every backend sleeps `RT_DELAY` before every call, so an operation's latency
/// divided by `RT_DELAY` is the number of round trips on its critical path; `Counting`
/// counts the calls by kind, background work (removing superseded versions, settling)
/// included, which `flush` waits for.
///
/// - `put_new`, `put_existing`: 1 KiB records.
/// - `get_settled`: a record read before (so settled, docs/FORMAT.md section 17);
///   `get_unsettled`: one written within the settle delay; `get_missing`: an id never written.
/// - `delete`: of an existing record.
/// - `list_page`: one page of 100 ids from a store of `records` records (the first page, and
///   one from the middle of the walk).
///
/// The settle delay is the smallest the call policy allows (one attempt of 1 s: 2 s), so
/// the bench waits 2 s (real time) before reading the records it settles.
const RT_DELAY: Duration = Duration::from_millis(20);

fn roundtrips(rt: &tokio::runtime::Runtime, budget: Budget, full: bool) {
    let ops = (budget.slow_ops / 10).max(2);
    let records = if full {
        100_000
    } else if budget.slow_ops > 10 {
        20_000
    } else {
        300
    };
    let mut settings = Settings::default();
    settings.call_policy = CallPolicy {
        timeout: Duration::from_secs(1),
        max_attempts: 1,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    settings.settle_after = Some(Duration::from_secs(2));
    let mut builder = VaultDb::builder_with(settings).threshold(2);
    let mut counts: Vec<CountingHandle> = Vec::new();
    let mut slows: Vec<SlowHandle> = Vec::new();
    for i in 1..=3 {
        let slow =
            Slow::new(MemoryBackend::new(format!("m{i}"), format!("memory {i}")), Duration::ZERO);
        slows.push(slow.handle());
        let counting = Counting::new(slow);
        counts.push(counting.handle());
        builder = builder.backend(counting);
    }
    let db = rt.block_on(builder.open()).expect("open");
    let bytes = data(KIB);
    let ids: Vec<String> = (0..ops).map(|i| format!("rt-{i}")).collect();
    let set_delay = |d: Duration| slows.iter().for_each(|s| s.set_delay(d));
    // One measured case: run `op` for each id, then wait for background work; report the
    // mean latency in round trips and the calls per operation.
    let case = |name: &str, op: &dyn Fn(&str)| {
        eprintln!("roundtrips: {name}");
        counts.iter().for_each(CountingHandle::reset);
        let mut lat = Vec::new();
        for id in &ids {
            let t = Instant::now();
            op(id);
            lat.push(nanos(t.elapsed()));
        }
        rt.block_on(db.flush());
        let per = |f: &dyn Fn(&CountingHandle) -> u64| {
            counts.iter().map(f).sum::<u64>() as f64 / ids.len() as f64
        };
        let s = stats(lat);
        emit(json!({
            "kind": "roundtrips", "op": name, "n": s.n,
            "delay_ms": RT_DELAY.as_millis() as u64,
            "round_trips": round(s.mean / (RT_DELAY.as_nanos() as f64 / 1e3) * 100.0) / 100.0,
            "p50_us": round(s.p50),
            "puts": per(&|c| c.puts()), "gets": per(&|c| c.gets()),
            "deletes": per(&|c| c.deletes()), "lists": per(&|c| c.list_pages()),
        }));
    };
    set_delay(RT_DELAY);
    case("put_new", &|id| {
        rt.block_on(db.put(Record::new(id, bytes.clone()))).expect("put");
    });
    case("get_unsettled", &|id| {
        rt.block_on(db.get(id)).expect("get");
    });
    case("put_existing", &|id| {
        rt.block_on(db.put(Record::new(id, bytes.clone()))).expect("put");
    });
    // Let the writes age past the settle delay, read each once (that read lists and
    // settles), then measure reads of settled records.
    std::thread::sleep(Duration::from_millis(2100));
    for id in &ids {
        rt.block_on(db.get(id)).expect("get");
    }
    rt.block_on(db.flush());
    case("get_settled", &|id| {
        rt.block_on(db.get(id)).expect("get");
    });
    case("get_missing", &|id| {
        let e = rt.block_on(db.get(&format!("{id}-missing"))).expect_err("missing");
        assert_eq!(e.code(), vaultdb_core::ErrorCode::RecordNotFound);
    });
    case("delete", &|id| {
        rt.block_on(db.delete(id)).expect("delete");
    });
    // A large store, written without the delay.
    set_delay(Duration::ZERO);
    eprintln!("roundtrips: writing {records} records");
    rt.block_on(async {
        use futures::stream::{self, StreamExt};
        stream::iter(0..records)
            .for_each_concurrent(64, |i| {
                let db = db.clone();
                async move {
                    db.put(Record::new(format!("list-{i:06}"), b"x".to_vec())).await.expect("put");
                }
            })
            .await;
        db.flush().await;
    });
    let walk = Instant::now();
    let mut cursor = None;
    let mut pages = Vec::new();
    let mut listed = 0;
    loop {
        let page = rt.block_on(db.list_page(cursor.as_deref(), 100)).expect("list page");
        listed += page.ids.len();
        pages.push(page.next.clone());
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let walk_secs = walk.elapsed().as_secs_f64();
    assert_eq!(listed, records, "the walk lists every record once");
    set_delay(RT_DELAY);
    let middle = pages[pages.len() / 2].clone();
    for (name, from) in [("list_page_first", None), ("list_page_middle", middle)] {
        counts.iter().for_each(CountingHandle::reset);
        let t = Instant::now();
        let page = rt.block_on(db.list_page(from.as_deref(), 100)).expect("list page");
        let d = t.elapsed();
        emit(json!({
            "kind": "roundtrips", "op": name, "n": 1, "records": records,
            "page_ids": page.ids.len(), "delay_ms": RT_DELAY.as_millis() as u64,
            "round_trips": round(d.as_secs_f64() / RT_DELAY.as_secs_f64() * 100.0) / 100.0,
            "puts": 0, "gets": counts.iter().map(CountingHandle::gets).sum::<u64>(),
            "deletes": 0, "lists": counts.iter().map(CountingHandle::list_pages).sum::<u64>(),
        }));
    }
    emit(json!({
        "kind": "list_walk", "records": records, "pages": pages.len(), "secs": walk_secs,
        "peak_rss_kib": peak_rss_kib(),
    }));
    set_delay(Duration::ZERO);
}

/// This process's peak resident set size (VmHWM), in KiB, if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
