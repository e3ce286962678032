//! `cargo xtask bench [--quick] [--render-only]`: runs the benchmark suites and regenerates
//! the tables of docs/PERFORMANCE.md.
//!
//! 1. **Build** every benchmark binary first (and the `stream_rss` example of vaultdb-fs, if
//!    its source exists), so that compiling is not part of the measured time.
//! 2. **Run**, in this order, on the machine as it is:
//!    - `cargo bench -p vaultdb-core --bench sharing` (criterion: split, rebuild, the
//!      generator, HMAC-SHA256, memcpy, record encode/decode, the four peer crates);
//!    - `cargo bench -p vaultdb-fs --bench e2e` restricted to HMAC-SHA256 and put/get with
//!      memory backends (criterion);
//!    - `cargo bench -p vaultdb-fs --bench latency` (per-operation p50/p99, concurrent
//!      clients, a slow backend; JSON lines on stdout);
//!    - `cargo run --release -p vaultdb-fs --example stream_rss` when
//!      `crates/vaultdb-fs/examples/stream_rss.rs` exists (peak RSS of a 1 GiB streamed put
//!      and get; JSON lines such as `{"op":"put","bytes":..,"segment_size":..,
//!      "peak_rss_kib":..,"secs":..}`).
//!
//!    Criterion results are read from `<target>/criterion/**/new/{benchmark,estimates}.json`
//!    right after each criterion suite (both suites have an `hmac_sha256` group, so each
//!    table compares against the HMAC of its own suite), and only files written by this run
//!    count. `--quick` sets `VAULTDB_BENCH_QUICK=1` (short measurement times) for all of
//!    them: a smoke test, not numbers to publish.
//! 3. **Save** everything (machine, crate versions from Cargo.lock, every result) to
//!    `<target>/vaultdb-bench/results.json`.
//! 4. **Render** the tables, with each target's verdict, between the marker comments
//!    `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` of docs/PERFORMANCE.md; everything
//!    outside the markers is left as written. A missing pair is appended at the end.
//!    `--render-only` skips steps 1-3 and renders the saved results again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::{cargo, root, step};

/// The environment variable every suite reads for short runs.
const QUICK_ENV: &str = "VAULTDB_BENCH_QUICK";
/// The e2e cases the tables use (criterion filter).
const E2E_FILTER: &str = "^(hmac_sha256|e2e_(put|get)/memory)/";
/// The example that measures peak RSS (written separately; run only if present).
const RSS_EXAMPLE: &str = "crates/vaultdb-fs/examples/stream_rss.rs";
/// Crates whose exact versions the report names (all versions in Cargo.lock are listed).
const VERSIONED: [&str; 11] = [
    "vsss-rs",
    "blahaj",
    "sharks",
    "shamir-vault",
    "criterion",
    "tokio",
    "aes",
    "ctr",
    "hmac",
    "sha2",
    "crc32c",
];
/// The peers of table 1: (criterion group, crate name in Cargo.lock).
const PEERS: [(&str, &str); 4] = [
    ("peer_vsss_rs", "vsss-rs"),
    ("peer_blahaj", "blahaj"),
    ("peer_sharks", "sharks"),
    ("peer_shamir_vault", "shamir-vault"),
];
const PEER_SIZE: &str = "64KiB";

// Targets. Sharing engine and pipeline targets are the ones stated in the earlier issues
// (docs/PERFORMANCE.md before this generator); the others come with the performance issue.
const SPLIT_GBPS: f64 = 3.0;
const REBUILD_GBPS: f64 = 15.0;
const SPLIT_VS_VSSS: f64 = 100.0;
const PIPELINE_OF_HMAC: f64 = 0.60;
/// The product brief's compute-only figures (serialize + split; reconstruct + HMAC) at 1 KB,
/// in microseconds, and how much faster the 1 KiB put and get must be.
const BRIEF_PUT_COMPUTE_1K_US: f64 = 1000.0;
const BRIEF_GET_COMPUTE_1K_US: f64 = 1100.0;
const VS_BRIEF: f64 = 50.0;
const TWO_CLIENT_SCALING: f64 = 1.7;
const PEAK_RSS_MIB: f64 = 128.0;
const SLOW_P99_FACTOR: f64 = 2.0;

/// The product brief's published latencies (2-of-3), in milliseconds: size label, then
/// (serialize, split, backend writes, total) for put and (backend reads, reconstruct, HMAC,
/// total) for get.
const BRIEF: [(&str, usize, [f64; 4], [f64; 4]); 4] = [
    ("1 KB", 1024, [0.2, 0.8, 3.0, 4.0], [2.0, 0.8, 0.3, 3.1]),
    ("10 KB", 10 * 1024, [0.5, 2.0, 6.0, 8.5], [4.0, 2.0, 0.5, 6.5]),
    ("100 KB", 100 * 1024, [1.5, 12.0, 15.0, 28.5], [10.0, 12.0, 1.0, 23.0]),
    ("1 MB", 1024 * 1024, [8.0, 33.0, 90.0, 131.0], [60.0, 33.0, 4.0, 97.0]),
];

struct Opts {
    quick: bool,
    render_only: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Opts { quick: false, render_only: false };
    for a in args {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--render-only" => opts.render_only = true,
            other => {
                return Err(format!(
                    "bench: unknown argument {other:?} (use --quick, --render-only; to run one \
                     suite by hand see docs/PERFORMANCE.md, Reproducing)"
                ));
            }
        }
    }
    let target = target_dir()?;
    let out_dir = target.join("vaultdb-bench");
    let saved = out_dir.join("results.json");
    let results = if opts.render_only {
        let text = std::fs::read_to_string(&saved)
            .map_err(|e| format!("{}: {e} (run `cargo xtask bench` first)", saved.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", saved.display()))?
    } else {
        let r = measure(&opts, &target)?;
        std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
        let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
        std::fs::write(&saved, text).map_err(|e| format!("{}: {e}", saved.display()))?;
        println!("xtask: results saved to {}", saved.display());
        r
    };
    let tables = render(&results);
    let doc = root().join("docs/PERFORMANCE.md");
    let old = std::fs::read_to_string(&doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let new = splice(&old, &tables);
    std::fs::write(&doc, new).map_err(|e| format!("{}: {e}", doc.display()))?;
    println!("xtask: wrote {}", doc.display());
    println!("{}", tables.get("summary").map_or("", String::as_str));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Measuring

fn measure(opts: &Opts, target: &Path) -> Result<Value, String> {
    let started = SystemTime::now();
    let load_start = load_average();
    let busy = load_start.split_whitespace().next().and_then(|l| l.parse::<f64>().ok());
    if busy.is_some_and(|l| l >= 0.5) {
        println!(
            "xtask: warning: load average {load_start} before the run; other work on the \
             machine will show up in the numbers"
        );
    }
    let rss_present = root().join(RSS_EXAMPLE).exists();

    // 1. Build everything first.
    let mut b = cargo();
    b.args(["bench", "-p", "vaultdb-core", "--bench", "sharing", "--no-run"]);
    step("build sharing bench", b)?;
    let mut b = cargo();
    b.args(["bench", "-p", "vaultdb-fs", "--bench", "e2e", "--bench", "latency", "--no-run"]);
    step("build e2e and latency benches", b)?;
    if rss_present {
        let mut b = cargo();
        b.args(["build", "--release", "-p", "vaultdb-fs", "--example", "stream_rss"]);
        step("build stream_rss example", b)?;
    }

    // 2. Run the suites.
    let measuring = Instant::now();
    let mut suites = Map::new();
    let mut criterion = Map::new();
    let crit_dir =
        std::env::var_os("CRITERION_HOME").map_or_else(|| target.join("criterion"), PathBuf::from);

    let since = SystemTime::now();
    let t = Instant::now();
    let mut c = cargo();
    c.args(["bench", "-p", "vaultdb-core", "--bench", "sharing"]);
    quick_env(&mut c, opts.quick);
    step("sharing (criterion)", c)?;
    suites.insert("sharing".into(), json!({"secs": t.elapsed().as_secs_f64()}));
    criterion.insert("sharing".into(), Value::Object(read_criterion(&crit_dir, since)));

    let since = SystemTime::now();
    let t = Instant::now();
    let mut c = cargo();
    c.args(["bench", "-p", "vaultdb-fs", "--bench", "e2e", "--", E2E_FILTER]);
    quick_env(&mut c, opts.quick);
    step("e2e (criterion)", c)?;
    suites.insert("e2e".into(), json!({"secs": t.elapsed().as_secs_f64()}));
    criterion.insert("e2e".into(), Value::Object(read_criterion(&crit_dir, since)));

    let t = Instant::now();
    let mut c = cargo();
    c.args(["bench", "-q", "-p", "vaultdb-fs", "--bench", "latency"]);
    quick_env(&mut c, opts.quick);
    let latency = json_lines("latency", c)?;
    suites.insert("latency".into(), json!({"secs": t.elapsed().as_secs_f64()}));

    let rss = if rss_present {
        let t = Instant::now();
        let mut c = cargo();
        c.args(["run", "-q", "--release", "-p", "vaultdb-fs", "--example", "stream_rss"]);
        if opts.quick {
            // SIZE_MIB: a 128 MiB record instead of 1 GiB for the smoke run.
            c.args(["--", "128"]);
        }
        quick_env(&mut c, opts.quick);
        let r = match json_lines("stream_rss", c) {
            Ok(lines) => json!({"ran": true, "lines": lines}),
            Err(e) => json!({"ran": false, "note": format!("the example failed: {e}")}),
        };
        suites.insert("stream_rss".into(), json!({"secs": t.elapsed().as_secs_f64()}));
        r
    } else {
        json!({"ran": false, "note": format!("not run: {RSS_EXAMPLE} does not exist yet")})
    };
    let measured_secs = measuring.elapsed().as_secs_f64();
    println!("xtask: measurements took {measured_secs:.0}s (builds excluded)");

    Ok(json!({
        "schema": 1,
        "quick": opts.quick,
        "started_unix": unix(started),
        "finished_unix": unix(SystemTime::now()),
        "measured_secs": measured_secs,
        "machine": machine(&load_start),
        "git": git_describe(),
        "versions": versions()?,
        "suites": suites,
        "criterion": criterion,
        "latency": latency,
        "rss": rss,
    }))
}

fn quick_env(c: &mut Command, quick: bool) {
    if quick {
        c.env(QUICK_ENV, "1");
    } else {
        c.env_remove(QUICK_ENV);
    }
}

/// Runs `cmd` with stdout captured (and echoed), stderr passed through; returns every stdout
/// line that parses as a JSON object.
fn json_lines(name: &str, mut cmd: Command) -> Result<Vec<Value>, String> {
    println!("xtask: == {name}");
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    println!(
        "xtask: == {name}: {} in {:.1}s",
        if out.status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if !out.status.success() {
        return Err(format!("{name} failed ({})", out.status));
    }
    Ok(text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect())
}

/// `cargo metadata`'s target directory (honours `CARGO_TARGET_DIR` and config).
fn target_dir() -> Result<PathBuf, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata: no target_directory".into())
}

/// Every criterion result under `dir` written at or after `since`: full id -> median and
/// mean time per iteration (ns) and bytes per iteration.
fn read_criterion(dir: &Path, since: SystemTime) -> Map<String, Value> {
    let mut found = Map::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let in_new = p.parent().and_then(Path::file_name).is_some_and(|n| n == "new");
            if !in_new || p.file_name().is_none_or(|n| n != "benchmark.json") {
                continue;
            }
            let est_path = p.with_file_name("estimates.json");
            let fresh =
                std::fs::metadata(&est_path).and_then(|m| m.modified()).is_ok_and(|m| m >= since);
            if !fresh {
                continue;
            }
            let (Some(bench), Some(est)) = (read_json(&p), read_json(&est_path)) else {
                continue;
            };
            let Some(id) = bench["full_id"].as_str() else { continue };
            let tp = &bench["throughput"];
            let bytes = tp["Bytes"].as_f64().or_else(|| tp["BytesDecimal"].as_f64());
            found.insert(
                id.to_owned(),
                json!({
                    "median_ns": est["median"]["point_estimate"],
                    "mean_ns": est["mean"]["point_estimate"],
                    "bytes": bytes,
                }),
            );
        }
    }
    found
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine(load_start: &str) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let flags = field("flags").unwrap_or_default();
    let wanted = ["ssse3", "avx2", "avx512f", "avx512bw", "gfni", "vaes", "aes", "sha_ni", "neon"];
    let present: Vec<&str> =
        wanted.iter().copied().filter(|f| flags.split_whitespace().any(|x| x == *f)).collect();
    let mem_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpu": field("model name").or_else(|| field("Model")).unwrap_or_else(|| "unknown".into()),
        "family": field("cpu family"),
        "model": field("model"),
        "mhz": field("cpu MHz"),
        "cache": field("cache size"),
        "cores": cores.max(1),
        "parallelism": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "flags": present.join(" "),
        "mem_kib": mem_kib,
        "kernel": kernel.trim(),
        "rustc": rustc,
        "load_start": load_start,
        "load_end": load_average(),
    })
}

fn git_describe() -> String {
    Command::new("git")
        .current_dir(root())
        .args(["describe", "--always", "--dirty"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The versions of [`VERSIONED`] in Cargo.lock (a crate may appear in several versions).
fn versions() -> Result<Value, String> {
    let path = root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            all.entry(n).or_default().push(v.trim_matches('"').to_owned());
        }
    }
    let mut out = Map::new();
    for c in VERSIONED {
        out.insert(c.into(), json!(all.get(c).cloned().unwrap_or_default()));
    }
    Ok(Value::Object(out))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DD HH:MM UTC` (days to civil date after H. Hinnant).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

// ---------------------------------------------------------------------------------------
// Rendering

/// A target's outcome, for the summary.
struct Verdict {
    table: &'static str,
    target: String,
    measured: String,
    met: Option<bool>,
    text: String,
}

/// `measured >= target`.
fn at_least(measured: Option<f64>, target: f64) -> (Option<bool>, String) {
    match measured {
        None => (None, "not measured".into()),
        Some(m) if m >= target => (Some(true), format!("met ({} the target)", ratio(m / target))),
        Some(m) if m * 10.0 < target => {
            (Some(false), format!("**missed** ({} of the target)", ratio(m / target)))
        }
        Some(m) => (Some(false), format!("**missed by {:.0}%**", (1.0 - m / target) * 100.0)),
    }
}

/// `measured <= limit`.
fn at_most(measured: Option<f64>, limit: f64) -> (Option<bool>, String) {
    match measured {
        None => (None, "not measured".into()),
        Some(m) if m <= limit => {
            (Some(true), format!("met ({:.0}% of the limit)", m / limit * 100.0))
        }
        Some(m) if m > limit * 10.0 => {
            (Some(false), format!("**missed** ({} the limit)", ratio(m / limit)))
        }
        Some(m) => (Some(false), format!("**missed by {:.0}%**", (m / limit - 1.0) * 100.0)),
    }
}

fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}x")
    } else if x >= 10.0 {
        format!("{x:.1}x")
    } else {
        format!("{x:.2}x")
    }
}

fn gbps(x: Option<f64>) -> String {
    match x {
        None => "n/a".into(),
        Some(x) if x >= 10.0 => format!("{x:.1}"),
        Some(x) if x >= 1.0 => format!("{x:.2}"),
        Some(x) if x >= 0.1 => format!("{x:.3}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// A duration given in microseconds.
fn dur_us(x: Option<f64>) -> String {
    match x {
        None => "n/a".into(),
        Some(x) if x < 10.0 => format!("{x:.2} us"),
        Some(x) if x < 1000.0 => format!("{x:.1} us"),
        Some(x) if x < 100_000.0 => format!("{:.2} ms", x / 1e3),
        Some(x) => format!("{:.1} ms", x / 1e3),
    }
}

fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// Access to one run's results.
struct Run<'a> {
    r: &'a Value,
}

impl Run<'_> {
    fn quick(&self) -> bool {
        self.r["quick"].as_bool().unwrap_or(false)
    }

    /// (median ns per iteration, bytes per iteration) of a criterion case.
    fn crit(&self, suite: &str, id: &str) -> Option<(f64, Option<f64>)> {
        let c = &self.r["criterion"][suite][id];
        Some((c["median_ns"].as_f64()?, c["bytes"].as_f64()))
    }

    fn crit_us(&self, suite: &str, id: &str) -> Option<f64> {
        self.crit(suite, id).map(|(ns, _)| ns / 1e3)
    }

    /// GB/s (10^9 bytes per second) = bytes per ns.
    fn crit_gbps(&self, suite: &str, id: &str) -> Option<f64> {
        let (ns, bytes) = self.crit(suite, id)?;
        Some(bytes? / ns)
    }

    fn crit_ids(&self, suite: &str) -> Vec<String> {
        self.r["criterion"][suite]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The kernel the engine picked (`avx2`, `ssse3`, `neon` or `portable`), from the ids.
    fn isa(&self) -> String {
        let ids = self.crit_ids("sharing");
        let isas: Vec<&str> = ids
            .iter()
            .filter_map(|id| id.strip_prefix("split/2of3/")?.strip_suffix("/1MiB"))
            .collect();
        isas.iter()
            .find(|i| **i != "portable")
            .or_else(|| isas.first())
            .map_or_else(|| "avx2".into(), |s| (*s).to_owned())
    }

    fn version(&self, krate: &str) -> String {
        let v: Vec<&str> = self.r["versions"][krate]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if v.is_empty() { "?".into() } else { v.join(", ") }
    }

    fn lines(&self, kind: &str) -> Vec<&Value> {
        self.r["latency"]
            .as_array()
            .map(|a| a.iter().filter(|l| l["kind"] == kind).collect())
            .unwrap_or_default()
    }

    fn latency(&self, backend: &str, op: &str, size: usize) -> Option<&Value> {
        self.lines("latency")
            .into_iter()
            .find(|l| l["backend"] == backend && l["op"] == op && l["size"] == size)
    }

    fn env(&self) -> Option<&Value> {
        self.lines("env").into_iter().next()
    }

    /// The caption every table starts with.
    fn caption(&self, what: &str) -> String {
        let when = self.r["started_unix"].as_u64().map(utc).unwrap_or_default();
        let mode = if self.quick() {
            "**quick run** (`--quick`: short measurement times, numbers are noisy)"
        } else {
            "full run"
        };
        format!("_Generated by `cargo xtask bench` from {what}, {when}, {mode}._\n\n")
    }
}

/// Renders every table: marker name -> markdown.
fn render(results: &Value) -> BTreeMap<&'static str, String> {
    let run = Run { r: results };
    let mut verdicts = Vec::new();
    let mut t = BTreeMap::new();
    t.insert("machine", machine_table(&run));
    t.insert("table1", table1(&run, &mut verdicts));
    t.insert("table2", table2(&run, &mut verdicts));
    t.insert("table3", table3(&run, &mut verdicts));
    t.insert("table4", table4(&run, &mut verdicts));
    t.insert("table5", table5(&run, &mut verdicts));
    t.insert("table6", table6(&run, &mut verdicts));
    t.insert("sharing-all", sharing_all(&run));
    t.insert("summary", summary(&run, &verdicts));
    t
}

fn summary(run: &Run<'_>, verdicts: &[Verdict]) -> String {
    let mut s = run.caption("the run described under Machine");
    let met = verdicts.iter().filter(|v| v.met == Some(true)).count();
    let missed = verdicts.iter().filter(|v| v.met == Some(false)).count();
    let _ = writeln!(
        s,
        "{met} of {} targets met, {missed} missed{}.\n",
        verdicts.len(),
        match verdicts.len() - met - missed {
            0 => String::new(),
            n => format!(", {n} not measured"),
        }
    );
    s.push_str("| table | target | measured | verdict |\n|---|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(s, "| {} | {} | {} | {} |", v.table, v.target, v.measured, v.text);
    }
    s
}

fn machine_table(run: &Run<'_>) -> String {
    let r = run.r;
    let m = &r["machine"];
    let s_ = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- Run: {} ({}), {:.0} s of measurements (builds excluded), commit `{}`{}.",
        r["started_unix"].as_u64().map(utc).unwrap_or_default(),
        if run.quick() { "`cargo xtask bench --quick`" } else { "`cargo xtask bench`" },
        r["measured_secs"].as_f64().unwrap_or(0.0),
        s_(&r["git"]),
        if s_(&r["git"]).ends_with("-dirty") {
            " (`-dirty`: the work tree had uncommitted changes, which were measured)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "- CPU: `{}` (/proc/cpuinfo; family {}, model {}, `cpu MHz` {}, cache {}), {} cores \
         ({} usable by this process); features used or relevant: {}.",
        s_(&m["cpu"]),
        s_(&m["family"]),
        s_(&m["model"]),
        s_(&m["mhz"]),
        s_(&m["cache"]),
        m["cores"],
        m["parallelism"],
        s_(&m["flags"])
    );
    let _ = writeln!(
        s,
        "- Memory {:.1} GiB; Linux {}; {}; `bench` profile (opt-level 3, no `-C target-cpu`: \
         kernels are chosen at run time, `{}` here).",
        m["mem_kib"].as_f64().unwrap_or(0.0) / 1024.0 / 1024.0,
        s_(&m["kernel"]),
        s_(&m["rustc"]),
        run.isa()
    );
    let _ = writeln!(
        s,
        "- Load average (1, 5, 15 min) at the start: {}; at the end: {}. Other work on the \
         machine (builds) shares the cores and shows up as noise.",
        s_(&m["load_start"]),
        s_(&m["load_end"])
    );
    if let Some(env) = run.env() {
        let _ = writeln!(
            s,
            "- File-system backends (tables 3 and 4): a temporary directory under `{}` ({}), \
             fsync on.",
            s_(&env["fs_dir"]),
            env["fs_type"].as_str().unwrap_or("unknown file system")
        );
    }
    let secs: Vec<String> = r["suites"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k} {:.0} s", v["secs"].as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(s, "- Suite times: {}.", secs.join(", "));
    s.push_str("\n| crate (from Cargo.lock) | version |\n|---|---|\n");
    for c in VERSIONED {
        let _ = writeln!(s, "| {c} | {} |", run.version(c));
    }
    s
}

fn table1(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let isa = run.isa();
    let cols = ["split/2of3", "rebuild/2of3", "split/3of5", "rebuild/3of5"];
    let ours = |size: &str| -> Vec<Option<f64>> {
        cols.iter()
            .map(|c| {
                let (op, t) = c.split_once('/').unwrap_or((c, ""));
                run.crit_gbps("sharing", &format!("{op}/{t}/{isa}/{size}"))
            })
            .collect()
    };
    let ours_1m = ours("1MiB");
    let ours_64k = ours("64KiB");
    let peers: Vec<(String, Vec<Option<f64>>)> = PEERS
        .iter()
        .map(|(group, krate)| {
            let v = cols
                .iter()
                .map(|c| run.crit_gbps("sharing", &format!("{group}/{c}/{PEER_SIZE}")))
                .collect();
            (format!("{krate} {}", run.version(krate)), v)
        })
        .collect();
    let mut s = run.caption("`cargo bench -p vaultdb-core --bench sharing`");
    s.push_str(
        "GB/s = 10^9 bytes of *secret* per second (criterion median). Peers are measured at \
         64 KiB only: they are 50-1000x slower, so 1 MiB cases would take minutes, and their \
         rate does not rise with size (per-byte polynomial work; see the full table below). \
         Ours is shown at 1 MiB (the target size) and at 64 KiB (same size as the peers).\n\n",
    );
    s.push_str(
        "| implementation | size | split 2-of-3 | rebuild 2-of-3 | split 3-of-5 | rebuild 3-of-5 |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let row = |s: &mut String, name: &str, size: &str, v: &[Option<f64>], bold: bool| {
        let cells: Vec<String> =
            v.iter().map(|x| if bold { format!("**{}**", gbps(*x)) } else { gbps(*x) }).collect();
        let _ = writeln!(s, "| {name} | {size} | {} |", cells.join(" | "));
    };
    row(&mut s, &format!("**XorIDA** (vaultdb-core, `{isa}`)"), "1 MiB", &ours_1m, true);
    row(&mut s, &format!("XorIDA (`{isa}`)"), "64 KiB", &ours_64k, false);
    for (name, v) in &peers {
        row(&mut s, name, "64 KiB", v, false);
    }
    let best: Vec<Option<(f64, String)>> = (0..cols.len())
        .map(|i| {
            peers
                .iter()
                .filter_map(|(n, v)| {
                    v[i].map(|x| (x, n.split(' ').next().unwrap_or("").to_owned()))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
        })
        .collect();
    let cells: Vec<String> = best
        .iter()
        .map(|b| b.as_ref().map_or("n/a".into(), |(x, n)| format!("{} ({n})", gbps(Some(*x)))))
        .collect();
    let _ = writeln!(s, "| best peer | 64 KiB | {} |", cells.join(" | "));
    let ratios: Vec<Option<f64>> =
        (0..cols.len()).map(|i| Some(ours_1m[i]? / best[i].as_ref()?.0)).collect();
    let cells: Vec<String> =
        ratios.iter().map(|r| r.map_or("n/a".into(), |r| format!("**{}**", ratio(r)))).collect();
    let _ = writeln!(s, "| **XorIDA 1 MiB / best peer** | | {} |", cells.join(" | "));
    let cells: Vec<String> = (0..cols.len())
        .map(|i| ours_64k[i].zip(best[i].as_ref()).map_or("n/a".into(), |(a, b)| ratio(a / b.0)))
        .collect();
    let _ = writeln!(s, "| XorIDA 64 KiB / best peer | | {} |", cells.join(" | "));

    let vsss = peers[0].1[0];
    let checks = [
        (format!("split 2-of-3 @ 1 MiB >= {SPLIT_GBPS} GB/s"), ours_1m[0], SPLIT_GBPS, "GB/s"),
        (
            format!("rebuild 2-of-3 @ 1 MiB >= {REBUILD_GBPS} GB/s"),
            ours_1m[1],
            REBUILD_GBPS,
            "GB/s",
        ),
        (
            format!("split 2-of-3 @ 1 MiB >= {SPLIT_VS_VSSS}x vsss-rs (vsss-rs at 64 KiB)"),
            ours_1m[0].zip(vsss).map(|(a, b)| a / b),
            SPLIT_VS_VSSS,
            "x",
        ),
    ];
    s.push_str("\n| target | measured | verdict |\n|---|---|---|\n");
    for (target, m, goal, unit) in checks {
        let (met, text) = at_least(m, goal);
        let measured = match (m, unit) {
            (Some(x), "x") => ratio(x),
            (x, _) => format!("{} GB/s", gbps(x)),
        };
        let _ = writeln!(s, "| {target} | {measured} | {text} |");
        verdicts.push(Verdict { table: "1", target, measured, met, text });
    }
    s
}

fn table2(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let isa = run.isa();
    let mut s = run.caption(
        "`cargo bench -p vaultdb-core --bench sharing` and `cargo bench -p vaultdb-fs --bench \
         e2e` (HMAC and memory-backend cases)",
    );
    s.push_str(
        "Everything at 1 MiB, criterion medians. \"% of HMAC\" is HMAC-SHA256's time over the \
         row's time (throughput as a share of HMAC-SHA256 alone), against the HMAC measured in \
         the *same suite*. \"x memcpy floor\" is the row's time over one 1 MiB source copied to \
         3 destinations (the least work that produces three 1 MiB shares). put and get are the \
         whole client call over three `MemoryBackend`s, 2-of-3, W = 3: put includes cloning the \
         record's data, listing, writing three shares and deleting the superseded version; get \
         lists, fetches two shares, rebuilds and verifies.\n\n",
    );
    s.push_str(
        "| stage (suite) | time | GB/s | % of HMAC | x memcpy floor |\n|---|---:|---:|---:|---:|\n",
    );
    let memcpy = run.crit_us("sharing", "memcpy_1to3/1MiB");
    let rows: [(&str, &str, String); 10] = [
        ("HMAC-SHA256 alone (sharing)", "sharing", "hmac_sha256/1MiB".into()),
        ("memcpy 1 -> 3, the floor (sharing)", "sharing", "memcpy_1to3/1MiB".into()),
        ("CsRng (AES-256-CTR) fill (sharing)", "sharing", "rng_csrng/1MiB".into()),
        ("split 2-of-3 (sharing)", "sharing", format!("split/2of3/{isa}/1MiB")),
        ("rebuild 2-of-3 (sharing)", "sharing", format!("rebuild/2of3/{isa}/1MiB")),
        ("record encode: serialize + pad + HMAC (sharing)", "sharing", "record/encode/1MiB".into()),
        (
            "record decode: HMAC check + deserialize (sharing)",
            "sharing",
            "record/decode/1MiB".into(),
        ),
        ("HMAC-SHA256 alone (e2e)", "e2e", "hmac_sha256/1MiB".into()),
        ("**put**, memory backends (e2e)", "e2e", "e2e_put/memory/1MiB".into()),
        ("**get**, memory backends (e2e)", "e2e", "e2e_get/memory/1MiB".into()),
    ];
    let mut of_hmac = BTreeMap::new();
    for (name, suite, id) in &rows {
        let us = run.crit_us(suite, id);
        let hmac = run.crit_us(suite, "hmac_sha256/1MiB");
        let pct = hmac.zip(us).map(|(h, t)| h / t);
        of_hmac.insert(id.clone(), pct);
        let floor = memcpy.zip(us).map(|(m, t)| t / m);
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            dur_us(us),
            gbps(run.crit_gbps(suite, id)),
            pct.map_or("n/a".into(), |p| format!("{:.0}%", p * 100.0)),
            floor.map_or("n/a".into(), ratio)
        );
    }
    s.push_str("\n| target | measured | verdict |\n|---|---|---|\n");
    for (op, id) in [("put", "e2e_put/memory/1MiB"), ("get", "e2e_get/memory/1MiB")] {
        let target = format!(
            "1 MiB {op}, memory backends, >= {:.0}% of HMAC-SHA256 throughput",
            PIPELINE_OF_HMAC * 100.0
        );
        let m = of_hmac.get(id).copied().flatten();
        let measured = m.map_or("n/a".into(), |p| format!("{:.1}%", p * 100.0));
        let (met, text) = at_least(m, PIPELINE_OF_HMAC);
        let _ = writeln!(s, "| {target} | {measured} | {text} |");
        verdicts.push(Verdict { table: "2", target, measured, met, text });
    }
    s
}

fn pair(l: Option<&Value>) -> String {
    match l {
        None => "n/a".into(),
        Some(l) => format!("{} / {}", dur_us(l["p50_us"].as_f64()), dur_us(l["p99_us"].as_f64())),
    }
}

fn table3(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let mut s = run.caption("`cargo bench -p vaultdb-fs --bench latency -- latency`");
    let n = |backend: &str| {
        let ns: Vec<u64> = run
            .lines("latency")
            .iter()
            .filter(|l| l["backend"] == backend)
            .filter_map(|l| l["n"].as_u64())
            .collect();
        match (ns.iter().min(), ns.iter().max()) {
            (Some(a), Some(b)) => format!("{a}-{b}"),
            _ => "?".into(),
        }
    };
    let _ = write!(
        s,
        "p50 / p99 of single operations, one client, 2-of-3, W = 3, the same record id \
         overwritten (each put also lists and deletes the superseded version). memory: three \
         `MemoryBackend`s ({} timed operations per cell); fs: three `FsBackend`s in a \
         temporary directory{} ({} per cell). Beside them, the product brief's published \
         totals for 2-of-3, which include its cloud backends' latency (1-30 ms per call); its \
         compute-only part (serialize + split; reconstruct + HMAC) is in brackets.\n\n",
        n("memory"),
        run.env()
            .map(|e| format!(
                " under `{}` ({}, fsync on)",
                e["fs_dir"].as_str().unwrap_or("?"),
                e["fs_type"].as_str().unwrap_or("?")
            ))
            .unwrap_or_default(),
        n("fs")
    );
    s.push_str(
        "| size | put, memory | get, memory | put, fs | get, fs | brief put (compute) | brief \
         get (compute) |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (_, size, put, get) in BRIEF {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | ~{} ms ({} ms) | ~{} ms ({} ms) |",
            size_label(size as u64),
            pair(run.latency("memory", "put", size)),
            pair(run.latency("memory", "get", size)),
            pair(run.latency("fs", "put", size)),
            pair(run.latency("fs", "get", size)),
            put[3],
            put[0] + put[1],
            get[3],
            get[1] + get[2],
        );
    }
    s.push_str("\n| target | measured | verdict |\n|---|---|---|\n");
    for (op, brief) in [("put", BRIEF_PUT_COMPUTE_1K_US), ("get", BRIEF_GET_COMPUTE_1K_US)] {
        let p50 = run.latency("memory", op, 1024).and_then(|l| l["p50_us"].as_f64());
        let target = format!(
            "1 KiB {op} (memory, p50) >= {VS_BRIEF:.0}x faster than the brief's compute ({} ms)",
            brief / 1e3
        );
        let m = p50.map(|p| brief / p);
        let measured = m.map_or("n/a".into(), |x| format!("{} ({})", ratio(x), dur_us(p50)));
        let (met, text) = at_least(m, VS_BRIEF);
        let _ = writeln!(s, "| {target} | {measured} | {text} |");
        verdicts.push(Verdict { table: "3", target, measured, met, text });
    }
    s
}

fn table4(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let lines = run.lines("concurrency");
    let get = |backend: &str, clients: u64| {
        lines.iter().copied().find(|l| l["backend"] == backend && l["clients"] == clients)
    };
    let size = lines.first().and_then(|l| l["size"].as_u64()).unwrap_or(10 * 1024);
    let secs = lines.first().and_then(|l| l["secs"].as_f64()).unwrap_or(0.0);
    let mut s = run.caption("`cargo bench -p vaultdb-fs --bench latency -- concurrency`");
    let _ = write!(
        s,
        "N client tasks on one multi-threaded Tokio runtime ({} worker threads, one per core), \
         sharing one client (`VaultDb` clone), each alternating put and get of its own {} \
         record (a 50/50 mix), for {secs:.1} s after a warm-up. ops/s counts operations \
         finished inside the window; MB/s = ops/s x record size (10^6 bytes); p50 / p99 over \
         both operations. \"cores busy\" is the process's CPU time (user + system) over the \
         window divided by its length: with 2 cores, a value well below 2 while clients wait \
         for CPU means other work on the machine took the rest. memory: three \
         `MemoryBackend`s; fs: three `FsBackend`s as in table 3.\n\n",
        run.env().and_then(|e| e["workers"].as_u64()).unwrap_or(0),
        size_label(size)
    );
    s.push_str(
        "| clients | memory ops/s | memory MB/s | memory p50 / p99 | memory cores busy | fs ops/s \
         | fs MB/s | fs p50 / p99 | fs cores busy |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut clients: Vec<u64> = lines.iter().filter_map(|l| l["clients"].as_u64()).collect();
    clients.sort_unstable();
    clients.dedup();
    let num = |l: Option<&&Value>, k: &str| {
        l.and_then(|l| l[k].as_f64()).map_or("n/a".into(), |x| format!("{x:.0}"))
    };
    for c in &clients {
        let (m, f) = (get("memory", *c), get("fs", *c));
        let cores = |l: Option<&&Value>| {
            l.and_then(|l| l["cpu_cores"].as_f64()).map_or("n/a".into(), |x| format!("{x:.2}"))
        };
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {} | {} | {} | {} | {} |",
            num(m.as_ref(), "ops_per_s"),
            num(m.as_ref(), "mb_per_s"),
            pair(m),
            cores(m.as_ref()),
            num(f.as_ref(), "ops_per_s"),
            num(f.as_ref(), "mb_per_s"),
            pair(f),
            cores(f.as_ref())
        );
    }
    let scale = |backend: &str| {
        let one = get(backend, 1)?["ops_per_s"].as_f64()?;
        let two = get(backend, 2)?["ops_per_s"].as_f64()?;
        Some(two / one)
    };
    let (ms, fs) = (scale("memory"), scale("fs"));
    let _ = writeln!(
        s,
        "| **2 / 1 clients** | **{}** | | | | **{}** | | | |",
        ms.map_or("n/a".into(), ratio),
        fs.map_or("n/a".into(), ratio)
    );
    s.push_str("\n| target | measured | verdict |\n|---|---|---|\n");
    for (backend, m) in [("memory", ms), ("fs", fs)] {
        let target = format!(
            "{backend} backends: ops/s with 2 clients >= {TWO_CLIENT_SCALING}x 1 client \
             (2 cores)"
        );
        let measured = m.map_or("n/a".into(), ratio);
        let (met, text) = at_least(m, TWO_CLIENT_SCALING);
        let _ = writeln!(s, "| {target} | {measured} | {text} |");
        verdicts.push(Verdict { table: "4", target, measured, met, text });
    }
    s
}

fn table5(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let rss = &run.r["rss"];
    let mut s = run.caption("`cargo run --release -p vaultdb-fs --example stream_rss`");
    let target = format!("peak RSS of a 1 GiB streamed put and get < {PEAK_RSS_MIB:.0} MiB");
    let quick_note =
        if run.quick() { " The quick run streams 128 MiB instead of 1 GiB." } else { "" };
    let lines: Vec<&Value> = rss["lines"]
        .as_array()
        .map(|a| a.iter().filter(|l| l["op"].is_string()).collect())
        .unwrap_or_default();
    if !rss["ran"].as_bool().unwrap_or(false) || lines.is_empty() {
        let note = rss["note"].as_str().unwrap_or("not run: the example printed no result");
        let _ = writeln!(s, "{note}.\n\n| op | bytes | segment size | peak RSS | time | MB/s |");
        s.push_str(
            "|---|---:|---:|---:|---:|---:|\n| put | not run | | | | |\n| get | not run | | | | |\n",
        );
        verdicts.push(Verdict {
            table: "5",
            target,
            measured: "not run".into(),
            met: None,
            text: "not measured".into(),
        });
        return s;
    }
    s.push_str(
        "One record streamed with `put_stream` and read back with `get_stream` through three \
         `FsBackend`s (2-of-3, default settings) in a temporary directory. Peak RSS is the \
         process's high-water mark (VmHWM) as the example reports it, reset between the two \
         phases where the kernel allows it; MB/s = bytes / time (10^6 bytes).",
    );
    s.push_str(quick_note);
    s.push_str(
        "\n\n| op | bytes | segment size | RSS at start | peak RSS | time | MB/s | < 128 MiB |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for l in &lines {
        let op = l["op"].as_str().unwrap_or("?");
        let bytes = l["bytes"].as_u64();
        let peak_mib = l["peak_rss_kib"].as_f64().map(|k| k / 1024.0);
        let secs = l["secs"].as_f64();
        let mbps = bytes.zip(secs).map(|(b, t)| b as f64 / t / 1e6);
        let (met, text) = at_most(peak_mib, PEAK_RSS_MIB);
        let measured = peak_mib.map_or("n/a".into(), |m| format!("{m:.1} MiB ({op})"));
        let reset = l["peak_reset"].as_bool() != Some(false);
        let _ = writeln!(
            s,
            "| {op} | {} | {} | {} | {}{} | {} | {} | {text} |",
            bytes.map_or("n/a".into(), size_label),
            l["segment_size"].as_u64().map_or("n/a".into(), size_label),
            l["start_rss_kib"].as_f64().map_or("n/a".into(), |k| format!("{:.1} MiB", k / 1024.0)),
            peak_mib.map_or("n/a".into(), |m| format!("{m:.1} MiB")),
            if reset { "" } else { " (not reset: peak of the whole process)" },
            secs.map_or("n/a".into(), |t| format!("{t:.2} s")),
            mbps.map_or("n/a".into(), |m| format!("{m:.0}")),
        );
        verdicts.push(Verdict {
            table: "5",
            target: format!("{target} ({op})"),
            measured,
            met,
            text,
        });
    }
    s
}

fn table6(run: &Run<'_>, verdicts: &mut Vec<Verdict>) -> String {
    let lines = run.lines("slow");
    let find = |slowed: &str, hedging: bool| {
        lines.iter().copied().find(|l| l["slowed"] == slowed && l["hedging"] == hedging)
    };
    let first = lines.first();
    let field = |k: &str| first.and_then(|l| l[k].as_f64()).unwrap_or(0.0);
    let mut s = run.caption("`cargo bench -p vaultdb-fs --bench latency -- slow`");
    let _ = write!(
        s,
        "get of a {} record, 2-of-3 over three `MemoryBackend`s, one client, {:.0} timed gets \
         per row after {:.0} untimed warm-up gets with the delay already on. The slow backend \
         is backend 1 of 3 (first in configuration order), wrapped in `testkit::Slow` with \
         {:.0} ms before each call to the operations named; the records were written before the \
         delay was switched on. Hedging on = default settings (`hedge_after` {:.0} ms); off = \
         `hedge_after(None)`. The client asks backends in order of their observed get latency \
         (a moving average per backend, `client/call.rs` `Latency`); the warm-up lets it settle \
         as in a long-running client.\n\n",
        size_label(first.and_then(|l| l["size"].as_u64()).unwrap_or(0)),
        field("n"),
        field("warmup"),
        field("delay_ms"),
        lines.iter().find_map(|l| l["hedge_after_ms"].as_f64()).unwrap_or(0.0),
    );
    s.push_str(
        "| slow backend | hedging | p50 | p99 | max | p99 / p99 without slow backend |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let what = |slowed: &str| match slowed {
        "none" => "none".to_owned(),
        "get" => "backend 1, `get` only".to_owned(),
        "all" => "backend 1, every call (list, get, put, delete)".to_owned(),
        other => other.to_owned(),
    };
    for slowed in ["none", "get", "all"] {
        for hedging in [true, false] {
            let l = find(slowed, hedging);
            let base = find("none", hedging).and_then(|b| b["p99_us"].as_f64());
            let p99 = l.and_then(|l| l["p99_us"].as_f64());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                what(slowed),
                if hedging { "on" } else { "off" },
                dur_us(l.and_then(|l| l["p50_us"].as_f64())),
                dur_us(p99),
                dur_us(l.and_then(|l| l["max_us"].as_f64())),
                p99.zip(base).map_or("n/a".into(), |(p, b)| ratio(p / b)),
            );
        }
    }
    s.push_str("\n| target | measured | verdict |\n|---|---|---|\n");
    let base = find("none", true).and_then(|b| b["p99_us"].as_f64());
    for slowed in ["get", "all"] {
        let p99 = find(slowed, true).and_then(|l| l["p99_us"].as_f64());
        let target = format!(
            "p99 with one slow backend ({}), hedging on, <= {SLOW_P99_FACTOR}x p99 without",
            what(slowed)
        );
        let m = p99.zip(base).map(|(p, b)| p / b);
        let measured = match (p99, base) {
            (Some(p), Some(b)) => {
                format!("{} vs {} ({})", dur_us(Some(p)), dur_us(Some(b)), ratio(p / b))
            }
            _ => "n/a".into(),
        };
        let (met, text) = at_most(m, SLOW_P99_FACTOR);
        let _ = writeln!(s, "| {target} | {measured} | {text} |");
        verdicts.push(Verdict { table: "6", target, measured, met, text });
    }
    s
}

/// Every case of the sharing suite: rows by case, columns by size, GB/s.
fn sharing_all(run: &Run<'_>) -> String {
    let sizes = ["1KiB", "64KiB", "1MiB", "16MiB"];
    let mut rows: BTreeMap<String, BTreeMap<&str, Option<f64>>> = BTreeMap::new();
    for id in run.crit_ids("sharing") {
        let Some((case, size)) = id.rsplit_once('/') else { continue };
        let Some(size) = sizes.iter().find(|s| **s == size) else { continue };
        rows.entry(case.to_owned()).or_default().insert(size, run.crit_gbps("sharing", &id));
    }
    let order = |case: &str| {
        let groups = ["split/", "rebuild/", "rebuild_alloc/", "rng_csrng", "hmac_sha256", "memcpy"];
        groups.iter().position(|g| case.starts_with(g)).unwrap_or(if case.starts_with("record") {
            6
        } else {
            7
        })
    };
    let mut cases: Vec<&String> = rows.keys().collect();
    cases.sort_by_key(|c| (order(c), (*c).clone()));
    let mut s = run.caption("`cargo bench -p vaultdb-core --bench sharing`");
    s.push_str(
        "Every case of the suite, GB/s (10^9 bytes of secret per second, criterion median); \
         the row is the criterion id without its size. split uses a seeded `CsRng` (its cost \
         included); rebuild interpolates at 0 from shares 3, 2 (5, 4, 3 for 3-of-5) into a \
         preallocated buffer; `rebuild_alloc` is the allocating `Xorida::rebuild` including \
         the drop (wipe) of its result.\n\n| case | 1 KiB | 64 KiB | 1 MiB | 16 MiB |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for case in cases {
        let r = &rows[case];
        let cells: Vec<String> =
            sizes.iter().map(|z| r.get(z).map_or(String::new(), |v| gbps(*v))).collect();
        let _ = writeln!(s, "| `{case}` | {} |", cells.join(" | "));
    }
    s
}

/// Replaces the text between each `<!-- bench:NAME -->` / `<!-- /bench:NAME -->` pair with
/// the table of that name; appends pairs that are missing.
fn splice(doc: &str, tables: &BTreeMap<&'static str, String>) -> String {
    let mut out = doc.to_owned();
    for (name, body) in tables {
        let open = format!("<!-- bench:{name} -->");
        let close = format!("<!-- /bench:{name} -->");
        let block = format!("{open}\n{}\n{close}", body.trim_end());
        match (out.find(&open), out.find(&close)) {
            (Some(a), Some(b)) if a < b => out.replace_range(a..b + close.len(), &block),
            _ => {
                eprintln!("xtask: docs/PERFORMANCE.md has no {open} ... {close}; appending");
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                let _ = write!(out, "\n{block}\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_798_761_600 + 3_600 + 120), "2027-01-01 01:02 UTC");
    }

    #[test]
    fn verdicts() {
        assert_eq!(at_least(Some(3.5), 3.0).1, "met (1.17x the target)");
        assert_eq!(at_least(Some(0.46), 0.6).1, "**missed by 23%**");
        assert_eq!(at_most(Some(64.0), 128.0).1, "met (50% of the limit)");
        assert_eq!(at_most(Some(3.0), 2.0).1, "**missed by 50%**");
        assert_eq!(at_most(Some(7000.0), 2.0).1, "**missed** (3500x the limit)");
        assert_eq!(at_least(None, 1.0).0, None);
    }

    #[test]
    fn splice_keeps_the_prose() {
        let doc = "a\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nb\n";
        let mut t = BTreeMap::new();
        t.insert("x", "new\n".to_owned());
        t.insert("y", "added".to_owned());
        let out = splice(doc, &t);
        assert_eq!(
            out,
            "a\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nb\n\n<!-- bench:y -->\nadded\n<!-- /bench:y -->\n"
        );
        assert_eq!(splice(&out, &t), out, "splicing again changes nothing");
    }

    #[test]
    fn renders_an_empty_run() {
        let t = render(&json!({"quick": true}));
        assert!(t["table5"].contains("not run"));
        assert!(t["summary"].contains("not measured"));
    }
}
