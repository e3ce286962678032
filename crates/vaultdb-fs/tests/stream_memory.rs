//! A record far larger than the client's in-flight budget is streamed in and out through
//! filesystem backends, from a generator (never a buffer of the record), while a counting
//! global allocator holds a hard limit: if put or get buffered the record, or more segments
//! than the budget allows, an allocation would fail and the test would abort.
//!
//! This is the only test in this binary, so nothing else allocates while it measures.

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cap::Cap;
use futures::StreamExt;
use vaultdb_core::{RecordMeta, VaultDb};
use vaultdb_fs::FsBackend;
use vaultdb_testkit::Generator;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const SEGMENT: usize = 1 << 20;
const BUDGET: usize = 8 << 20;
const LEN: u64 = 96 << 20;
/// Allowed growth of the heap during a put or a get: the budget plus the backends' and the
/// runtime's own buffers, with room to spare; still a third of the record.
const BOUND: usize = 32 << 20;

/// Samples the allocator until dropped, keeping the highest value seen.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(ALLOC.allocated()));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(ALLOC.allocated(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        Self { stop, peak, thread: Some(thread) }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Runs `phase` with the heap limited to its current size plus [`BOUND`]; returns the
/// highest growth sampled.
async fn bounded<F: std::future::Future<Output = ()>>(phase: F) -> usize {
    let base = ALLOC.allocated();
    ALLOC.set_limit(base + BOUND).unwrap();
    let sampler = Sampler::start();
    phase.await;
    let peak = sampler.finish();
    ALLOC.set_limit(usize::MAX).unwrap();
    peak.saturating_sub(base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_a_large_record_holds_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = VaultDb::builder().threshold(2).segment_size(SEGMENT).max_inflight_bytes(BUDGET);
    for i in 0..3 {
        b = b.backend(FsBackend::new(
            format!("fs{i}"),
            format!("fs {i}"),
            dir.path().join(format!("b{i}")),
        ));
    }
    let db = b.open().await.unwrap();

    let put_growth = bounded(async {
        let put = db.put_stream(RecordMeta::new("big"), LEN, Generator::new(42, LEN)).await;
        assert_eq!(put.unwrap().acks, 3);
    })
    .await;

    let get_growth = bounded(async {
        let mut stream = db.get_stream("big").await.unwrap();
        assert_eq!(stream.total_len(), LEN);
        let mut expected = Generator::new(42, LEN);
        let mut want = vec![0u8; SEGMENT];
        let mut seen = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            expected.fill(&mut want[..chunk.len()]);
            assert!(chunk[..] == want[..chunk.len()], "data differs at byte {seen}");
            seen += chunk.len() as u64;
        }
        assert_eq!(seen, LEN);
    })
    .await;

    println!(
        "record {} MiB, budget {} MiB: heap grew by at most {:.1} MiB in put, {:.1} MiB in get",
        LEN >> 20,
        BUDGET >> 20,
        put_growth as f64 / 1048576.0,
        get_growth as f64 / 1048576.0
    );
    assert!(put_growth < BOUND && get_growth < BOUND);
    assert!(put_growth < (LEN as usize) / 3, "put held {put_growth} bytes");
}
