//! Peak resident memory of a large record streamed through `put_stream` and `get_stream`
//! with three filesystem backends (2-of-3) under default settings: 4 MiB segments, a 64 MiB
//! in-flight budget.
//!
//! ```text
//! cargo run --release -p vaultdb-fs --example stream_rss [-- SIZE_MIB [BUDGET_MIB]]
//! ```
//!
//! SIZE_MIB defaults to 1024; BUDGET_MIB (the in-flight budget) to the client's default. The data comes from a generator and is checked against it on
//! the way back, so neither side ever holds the record. Peak RSS is the kernel's high-water
//! mark (VmHWM), reset between the two phases through /proc/self/clear_refs (Linux). Prints
//! one JSON line per phase, which `cargo xtask bench` reads for docs/PERFORMANCE.md.

use std::time::Instant;

use futures::StreamExt;
use vaultdb_core::{RecordMeta, VaultDb};
use vaultdb_fs::FsBackend;
use vaultdb_testkit::Generator;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn report(op: &str, bytes: u64, segment: usize, secs: f64, start_rss: Option<u64>, reset: bool) {
    let peak = vm_hwm_kib().map_or("null".to_owned(), |v| v.to_string());
    let start = start_rss.map_or("null".to_owned(), |v| v.to_string());
    println!(
        "{{\"op\":\"{op}\",\"bytes\":{bytes},\"segment_size\":{segment},\"peak_rss_kib\":{peak},\
         \"start_rss_kib\":{start},\"peak_reset\":{reset},\"secs\":{secs:.3}}}"
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = std::env::args().nth(1).map_or(Ok(1024), |s| s.parse())?;
    let len = mib << 20;
    let dir = tempfile::tempdir()?;
    let mut builder = VaultDb::builder().threshold(2);
    if let Some(budget) = std::env::args().nth(2) {
        builder = builder.max_inflight_bytes(budget.parse::<usize>()? << 20);
    }
    for i in 0..3 {
        builder = builder.backend(FsBackend::new(
            format!("fs{i}"),
            format!("fs {i}"),
            dir.path().join(format!("b{i}")),
        ));
    }
    let db = builder.open().await?;
    let segment = db.settings().segment_size;

    let reset = reset_peak();
    let start_rss = vm_rss_kib();
    let t = Instant::now();
    db.put_stream(RecordMeta::new("large"), len, Generator::new(1, len)).await?;
    report("put", len, segment, t.elapsed().as_secs_f64(), start_rss, reset);

    let reset = reset_peak();
    let start_rss = vm_rss_kib();
    let t = Instant::now();
    let mut stream = db.get_stream("large").await?;
    let mut expected = Generator::new(1, len);
    let mut want = vec![0u8; segment];
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        expected.fill(&mut want[..chunk.len()]);
        if chunk[..] != want[..chunk.len()] {
            return Err(format!("data differs at byte {seen}").into());
        }
        seen += chunk.len() as u64;
    }
    if seen != len {
        return Err(format!("read {seen} of {len} bytes").into());
    }
    report("get", len, segment, t.elapsed().as_secs_f64(), start_rss, reset);
    Ok(())
}
