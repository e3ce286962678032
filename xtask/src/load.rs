//! `cargo xtask load [--duration SECS] [--connections N] [--quick]`: the REST server under
//! sustained loopback load, and docs/LOAD.md regenerated from the run.
//!
//! The load generator is wrk (Debian package `wrk`, installed with apt-get when missing). The
//! server is the release `vaultdb serve` on its embedded default (three filesystem backends,
//! 2-of-3) in a fresh temporary directory, on a free 127.0.0.1 port. The store is first
//! filled through the CLI (every id the load touches exists, so every request must succeed),
//! then wrk sends a mix of 50% PUT and 50% GET of raw records, half of the ids 1 KiB and half
//! 100 KiB. Reported: throughput, p50/p90/p99 latency, errors (any non-2xx status, socket
//! error or timeout; must be 0), and the server's RSS sampled every few seconds (must not
//! keep growing). The server is stopped at the end, also on error.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{cargo, root, step, tools};

/// Record ids per size class.
const IDS: usize = 100;

const LUA: &str = r#"
local token = os.getenv("VAULTDB_LOAD_TOKEN")
local small = string.rep("s", 1024)
local large = string.rep("L", 102400)
local ids = tonumber(os.getenv("VAULTDB_LOAD_IDS"))
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(seed * 7919)
end
function request()
  local n = math.random(ids)
  local big = math.random() < 0.5
  local path = "/v1/records/" .. (big and "large-" or "small-") .. n .. "/raw"
  if math.random() < 0.5 then
    return wrk.format("PUT", path, {["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/octet-stream"}, big and large or small)
  end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests":%d,"duration_us":%d,"bytes":%d,"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"#;

struct Options {
    duration: u64,
    connections: u32,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options { duration: 300, connections: 16 };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a positive number"))
        };
        match a.as_str() {
            "--duration" => o.duration = num("--duration")?,
            "--connections" => o.connections = num("--connections")? as u32,
            "--quick" => o.duration = 20,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if o.duration == 0 || o.connections == 0 {
        return Err("--duration and --connections must be positive".into());
    }
    Ok(o)
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Kills the server when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn json_u64(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    tools::wrk()?;
    let mut build = cargo();
    build.args(["build", "--release", "-p", "vaultdb"]);
    step("build vaultdb (release)", build)?;
    let bin = crate::target_dir()?.join("release/vaultdb");
    let dir = std::env::temp_dir().join(format!("vaultdb-load-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_in(&o, &bin, &dir);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn run_in(o: &Options, bin: &Path, dir: &Path) -> Result<(), String> {
    let token = format!("load-{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    let env = |c: &mut Command| {
        c.current_dir(dir)
            .env_remove("VAULTDB_CONFIG")
            .env("VAULTDB_DATA_DIR", dir.join("data"))
            .env("VAULTDB_LISTEN", format!("127.0.0.1:{port}"))
            .env("VAULTDB_TOKEN", &token)
            .env("RUST_LOG", "warn");
    };

    // Fill the store: every id the load touches exists before it starts.
    let fill = Instant::now();
    for (class, size) in [("small", 1024), ("large", 102_400)] {
        let file = dir.join(format!("{class}.bin"));
        fs::write(&file, vec![b'x'; size]).map_err(|e| e.to_string())?;
        for n in 1..=IDS {
            let mut c = Command::new(bin);
            env(&mut c);
            let out = c
                .args(["put", &format!("{class}-{n}")])
                .arg(&file)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("filling the store: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
    }
    println!("xtask: load: stored {} records in {:.1?}", 2 * IDS, fill.elapsed());

    let mut c = Command::new(bin);
    env(&mut c);
    let log = fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let server = Server(
        c.arg("serve").stdout(Stdio::null()).stderr(log).spawn().map_err(|e| e.to_string())?,
    );
    let pid = server.0.id();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the server did not start listening within 30 s".into());
        }
        thread::sleep(Duration::from_millis(50));
    }
    let rss_start = vm_rss_kib(pid).unwrap_or(0);

    // RSS samples while wrk runs.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        let every = Duration::from_secs((o.duration / 20).clamp(1, 15));
        thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = vm_rss_kib(pid) {
                    samples
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((t0.elapsed().as_secs_f64(), r));
                }
                let until = Instant::now() + every;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };

    let script = dir.join("mix.lua");
    fs::write(&script, LUA).map_err(|e| e.to_string())?;
    println!(
        "xtask: load: wrk, {} connections, {} s, 50% PUT / 50% GET, 1 KiB and 100 KiB",
        o.connections, o.duration
    );
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &o.connections.to_string(), "-d", &format!("{}s", o.duration)])
        .args(["--timeout", "10s", "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .env("VAULTDB_LOAD_TOKEN", &token)
        .env("VAULTDB_LOAD_IDS", IDS.to_string())
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let rss_end = vm_rss_kib(pid).unwrap_or(0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or_else(|| {
        format!("wrk printed no result:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    })?;
    let r: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    drop(server);
    // Warnings by message (the text after the module path, without fields' values).
    let log = fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let mut by_message = std::collections::BTreeMap::<String, usize>::new();
    for l in log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")) {
        let msg = l.split_once(": ").map_or(l, |(_, m)| m);
        let msg: String = msg.split(" tag=").next().unwrap_or(msg).chars().take(90).collect();
        *by_message.entry(msg).or_default() += 1;
    }
    let server_warnings: Vec<(String, usize)> = by_message.into_iter().collect();

    let requests = json_u64(&r, "requests");
    let secs = json_u64(&r, "duration_us") as f64 / 1e6;
    let errors: u64 =
        ["status", "connect", "read", "write", "timeout"].iter().map(|k| json_u64(&r, k)).sum();
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let report =
        render(o, &r, requests, secs, errors, rss_start, rss_end, &samples, &server_warnings);
    print!("{report}");
    fs::write(root().join("docs/LOAD.md"), &report).map_err(|e| e.to_string())?;
    println!("xtask: load: wrote docs/LOAD.md");
    if errors > 0 {
        return Err(format!("{errors} requests failed under load"));
    }
    Ok(())
}

/// Why a healthy store logs degraded reads under this load (written under the warnings).
const DEGRADED_UNDER_LOAD: &str = "No backend failed during the run. A `degraded read` here is \
a GET racing a PUT of the same id: the GET listed the record's current version, the PUT then \
committed a newer one and deleted the superseded version's shares, and one of the shares the \
GET wanted was gone by the time it fetched it. The GET still answered, from the other \
backends' shares of the version it had listed (the one current when it started). The \
read-repair it starts in the background checks the record's newest version, which is \
whole, and restores nothing. The client cannot tell this race from a lost share without \
listing again, so it reports it.";

#[allow(clippy::too_many_arguments)]
fn render(
    o: &Options,
    r: &serde_json::Value,
    requests: u64,
    secs: f64,
    errors: u64,
    rss_start: u64,
    rss_end: u64,
    samples: &[(f64, u64)],
    warnings: &[(String, usize)],
) -> String {
    let ms = |k: &str| json_u64(r, k) as f64 / 1000.0;
    let mut s = String::new();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(s, "# REST server under load\n");
    let _ = writeln!(
        s,
        "Generated by `cargo xtask load --duration {} --connections {}` (xtask/src/load.rs); \
         regenerate it the same way. The release `vaultdb serve` on its embedded default \
         (three filesystem backends in a temporary directory, 2-of-3, audit log on) listens on \
         127.0.0.1; wrk ({} connections, 2 threads) sends 50% `PUT` and 50% `GET` of \
         `/v1/records/{{id}}/raw`, over {} ids of 1 KiB and {} ids of 100 KiB, all stored \
         before the run so that every request must succeed. wrk and the server share the \
         machine: {cpu}, {cores} cores.\n",
        o.duration, o.connections, o.connections, IDS, IDS
    );
    let _ = writeln!(s, "| measure | value |\n|---|---|");
    let _ = writeln!(s, "| duration | {secs:.0} s |");
    let _ = writeln!(s, "| requests | {requests} |");
    let _ = writeln!(
        s,
        "| throughput | {:.0} requests/s, {:.1} MB/s read |",
        requests as f64 / secs,
        json_u64(r, "bytes") as f64 / secs / 1e6
    );
    let _ = writeln!(
        s,
        "| latency p50 / p90 / p99 / max | {:.2} / {:.2} / {:.2} / {:.1} ms |",
        ms("p50"),
        ms("p90"),
        ms("p99"),
        ms("max")
    );
    let _ = writeln!(
        s,
        "| errors (non-2xx, connect, read, write, timeout) | {errors} ({} / {} / {} / {} / {}) |",
        json_u64(r, "status"),
        json_u64(r, "connect"),
        json_u64(r, "read"),
        json_u64(r, "write"),
        json_u64(r, "timeout")
    );
    let total: usize = warnings.iter().map(|w| w.1).sum();
    let _ = writeln!(s, "| server warnings logged | {total} |");
    let _ = writeln!(
        s,
        "| server RSS at start / end | {:.1} / {:.1} MiB |",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    let _ = writeln!(s, "\nServer RSS during the run (MiB), sampled:\n");
    let line: Vec<String> =
        samples.iter().map(|(t, r)| format!("{t:.0}s {:.1}", *r as f64 / 1024.0)).collect();
    let _ = writeln!(s, "{}\n", line.join(" · "));
    let (first_half, second_half) = samples.split_at(samples.len() / 2);
    let max = |v: &[(f64, u64)]| v.iter().map(|x| x.1).max().unwrap_or(0) as f64 / 1024.0;
    let _ = writeln!(
        s,
        "Peak RSS in the first half {:.1} MiB, in the second half {:.1} MiB: {}.",
        max(first_half),
        max(second_half),
        if max(second_half) <= max(first_half) * 1.10 + 2.0 {
            "no growth beyond noise"
        } else {
            "GROWING: investigate"
        }
    );
    if !warnings.is_empty() {
        let _ = writeln!(s, "\nServer warnings by message (count):\n");
        for (m, n) in warnings {
            let _ = writeln!(s, "- {n} × `{}`", m.replace('`', "'"));
        }
        if warnings.iter().any(|(m, _)| m.starts_with("degraded read")) {
            let _ = writeln!(s, "\n{DEGRADED_UNDER_LOAD}");
        }
    }
    let _ =
        writeln!(s, "\nVerdict: {}.", if errors == 0 { "0 errors" } else { "ERRORS under load" });
    s
}
