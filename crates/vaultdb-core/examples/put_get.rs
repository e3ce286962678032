//! put and get of one 1 MiB record over three memory backends (2-of-3, default settings, a
//! current-thread runtime: as the e2e suite measures them), against HMAC-SHA256 alone over
//! 1 MiB, interleaved round by round so that a loaded machine slows all three alike.
//!
//! Each is timed in blocks of 25 calls, twice: wall-clock, and the CPU time of the calling
//! thread (Linux: `/proc/thread-self/schedstat`, user and system time, page faults included;
//! it advances at scheduler ticks, hence the blocks); the medians of the blocks' means are
//! printed. On a loaded
//! machine the wall-clock of a put is mostly its HMAC thread waiting for a core; the calling
//! thread's CPU time is what that thread must do besides, which on an idle machine runs while
//! the HMAC thread hashes: the put approaches the HMAC's time as the calling thread's CPU
//! time falls below it.
//!
//! Run: `cargo run --release -p vaultdb-core --example put_get -- [rounds] [put|get|hmac]`.
//! With an operation named, only that one runs (`rounds` times, for `perf record`).

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use vaultdb_core::{MemoryBackend, Record, VaultDb};

const MIB: usize = 1 << 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// CPU time of the calling thread so far, as of the last scheduler tick (zero where
/// `/proc/thread-self/schedstat` is missing).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let only = args.next();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let db = rt.block_on(async {
        VaultDb::builder()
            .backend(MemoryBackend::new("m1", "memory 1"))
            .backend(MemoryBackend::new("m2", "memory 2"))
            .backend(MemoryBackend::new("m3", "memory 3"))
            .threshold(2)
            .open()
            .await
            .expect("open")
    });
    let data: Vec<u8> = (0..MIB).map(|i| (i * 7) as u8).collect();
    let id = "bench-1MiB".to_owned();
    rt.block_on(db.put(Record::new(id.clone(), data.clone()))).expect("put");
    let put = || {
        rt.block_on(db.put(Record::new(id.clone(), data.clone()))).expect("put");
    };
    let get = || {
        std::hint::black_box(rt.block_on(db.get(&id)).expect("get"));
    };
    let hmac_data = vec![0x5au8; MIB];
    let hmac = || {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).expect("key");
        m.update(&hmac_data);
        std::hint::black_box(m.finalize().into_bytes());
    };
    if let Some(op) = only {
        let f: &dyn Fn() = match op.as_str() {
            "put" => &put,
            "get" => &get,
            _ => &hmac,
        };
        for _ in 0..rounds {
            f();
        }
        return;
    }
    for _ in 0..5 {
        put();
        get();
        hmac();
    }
    let mut wall = [Vec::new(), Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new(), Vec::new()];
    const BLOCK: u32 = 25;
    for _ in 0..rounds {
        for (i, f) in [&put as &dyn Fn(), &get, &hmac].into_iter().enumerate() {
            let (t, c) = (Instant::now(), thread_cpu());
            for _ in 0..BLOCK {
                f();
            }
            cpu[i].push((thread_cpu() - c) / BLOCK);
            wall[i].push(t.elapsed() / BLOCK);
        }
    }
    let [p, g, h] = wall.map(median);
    let [pc, gc, hc] = cpu.map(median);
    let us = |t: Duration| t.as_secs_f64() * 1e6;
    let x = |t: Duration, base: Duration| t.as_secs_f64() / base.as_secs_f64();
    println!(
        "wall: hmac {:.0} us, put {:.0} us ({:.2}x), get {:.0} us ({:.2}x) | calling thread's \
         CPU: hmac {:.0} us, put {:.0} us ({:.2}x), get {:.0} us ({:.2}x)",
        us(h),
        us(p),
        x(p, h),
        us(g),
        x(g, h),
        us(hc),
        us(pc),
        x(pc, hc),
        us(gc),
        x(gc, hc)
    );
}
