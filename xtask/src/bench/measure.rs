//! Steps 1 and 2: build every suite, then run them and collect their results into one JSON
//! value (see the [module docs](super)).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value, json};

use super::machine::{git_describe, load_average, machine, unix, versions};
use super::{Opts, Suite};
use crate::{cargo, root, step};

/// The environment variable every suite reads for short runs.
const QUICK_ENV: &str = "VAULTDB_BENCH_QUICK";
/// The e2e cases the tables use (criterion filter).
const E2E_FILTER: &str = "^(hmac_sha256|e2e_(put|get)/memory)/";
/// The example that measures peak RSS (written separately; run only if present).
const RSS_EXAMPLE: &str = "crates/vaultdb-fs/examples/stream_rss.rs";

pub(super) fn measure(opts: &Opts, target: &Path) -> Result<Value, String> {
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
    b.args(["bench", "-p", "vaultdb-core", "--bench", "modes", "--no-run"]);
    step("build modes bench", b)?;
    let mut b = cargo();
    b.args(["bench", "-p", "vaultdb-fs", "--bench", "e2e", "--bench", "latency", "--no-run"]);
    step("build e2e and latency benches", b)?;
    if rss_present {
        let mut b = cargo();
        b.args(["build", "--release", "-p", "vaultdb-fs", "--example", "stream_rss"]);
        step("build stream_rss example", b)?;
    }
    let bin = super::binary::build()?;

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

    let t = Instant::now();
    let modes = run_modes(opts)?;
    suites.insert("modes".into(), json!({"secs": t.elapsed().as_secs_f64()}));

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
    let mut binary_suites = Map::new();
    for section in ["rest-list", "binary-rss"] {
        let t = Instant::now();
        match run_binary_suite(opts, &bin, section) {
            Ok(lines) => {
                binary_suites.insert(section.into(), Value::Array(lines));
            }
            // As for stream_rss: a failed suite is reported in its block, not fatal.
            Err(e) => {
                println!("xtask: {section} failed: {e}");
                binary_suites.insert(section.into(), json!([]));
                binary_suites.insert(format!("{section}_note"), json!(format!("Failed: {e}.")));
            }
        }
        suites.insert(section.into(), json!({"secs": t.elapsed().as_secs_f64()}));
    }
    let measured_secs = measuring.elapsed().as_secs_f64();
    println!("xtask: measurements took {measured_secs:.0}s (builds excluded)");

    let mut all = json!({
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
        "modes": modes,
        "rss": rss,
    });
    for (k, v) in binary_suites {
        all[k] = v;
    }
    Ok(all)
}

/// `--only rest-list|binary-rss`: builds the release binary and runs that suite alone; its
/// JSON lines, when it started, and the load average then.
pub(super) fn binary_suite(opts: &Opts, section: &str) -> Result<Suite, String> {
    let bin = super::binary::build()?;
    let (started, load) = (unix(SystemTime::now()), load_average());
    Ok((run_binary_suite(opts, &bin, section)?, started, load))
}

fn run_binary_suite(opts: &Opts, bin: &Path, section: &str) -> Result<Vec<Value>, String> {
    match section {
        "rest-list" => super::binary::rest_list(bin, opts.quick),
        _ => super::binary::binary_rss(bin, opts.quick),
    }
}

/// `--only modes`: builds and runs the modes suite alone; its JSON lines, when it started
/// (Unix seconds) and the load average then.
pub(super) fn modes(opts: &Opts, _target: &Path) -> Result<(Vec<Value>, u64, String), String> {
    let mut b = cargo();
    b.args(["bench", "-p", "vaultdb-core", "--bench", "modes", "--no-run"]);
    step("build modes bench", b)?;
    let (started, load) = (unix(SystemTime::now()), load_average());
    Ok((run_modes(opts)?, started, load))
}

/// `--only roundtrips`: builds the latency suite and runs its `roundtrips` section alone;
/// its JSON lines, when it started, and the load average then.
pub(super) fn roundtrips(opts: &Opts) -> Result<(Vec<Value>, u64, String), String> {
    let mut b = cargo();
    b.args(["bench", "-p", "vaultdb-fs", "--bench", "latency", "--no-run"]);
    step("build latency bench", b)?;
    let (started, load) = (unix(SystemTime::now()), load_average());
    let mut c = cargo();
    c.args(["bench", "-q", "-p", "vaultdb-fs", "--bench", "latency", "--", "roundtrips"]);
    quick_env(&mut c, opts.quick);
    Ok((json_lines("roundtrips", c)?, started, load))
}

/// Runs the modes suite (built): the storage modes side by side, JSON lines.
fn run_modes(opts: &Opts) -> Result<Vec<Value>, String> {
    let mut c = cargo();
    c.args(["bench", "-q", "-p", "vaultdb-core", "--bench", "modes"]);
    quick_env(&mut c, opts.quick);
    json_lines("modes", c)
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
