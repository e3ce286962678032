//! What a run records about where it ran: the machine, the load, the commit, and the
//! versions of the crates the report names.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::root;

/// Crates whose exact versions the report names (all versions in Cargo.lock are listed).
pub(super) const VERSIONED: [&str; 13] = [
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
    "reed-solomon-simd",
    "reed-solomon-erasure",
];

pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(super) fn machine(load_start: &str) -> Value {
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

pub(super) fn git_describe() -> String {
    Command::new("git")
        .current_dir(root())
        .args(["describe", "--always", "--dirty"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The versions of [`VERSIONED`] in Cargo.lock (a crate may appear in several versions).
pub(super) fn versions() -> Result<Value, String> {
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

pub(super) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
