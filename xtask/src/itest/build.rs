//! Building the test binaries: one `cargo test --no-run` of every crate in [`BACKENDS`],
//! whose executables then run directly (see the [module docs](super)).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{BACKENDS, ONLY_TARGETS};

/// Test executables per crate, with the directory to run them in (the crate's, as cargo
/// test does).
pub(super) type TestBinaries = BTreeMap<String, Vec<(PathBuf, PathBuf)>>;

/// `cargo test --no-run` of every crate in [`BACKENDS`]; returns the executables.
pub(super) fn build_tests() -> Result<TestBinaries, String> {
    let mut build = crate::cargo();
    build
        .args(["test", "--no-run", "--tests", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped());
    for (krate, _, _) in BACKENDS {
        build.args(["-p", krate]);
    }
    let mut child = build.spawn().map_err(|e| format!("cargo test --no-run: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut binaries = TestBinaries::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            continue;
        }
        let (Some(id), Some(exe), Some(manifest)) = (
            json_str(&line, "package_id"),
            json_str(&line, "executable"),
            json_str(&line, "manifest_path"),
        ) else {
            continue;
        };
        let name = package_name(id);
        // The first "name" of the line is the target's (the package id has none).
        let target = json_str(&line, "name").unwrap_or_default();
        if ONLY_TARGETS.iter().any(|(krate, only)| *krate == name && *only != target) {
            continue;
        }
        let dir = Path::new(manifest).parent().unwrap_or(Path::new(".")).to_path_buf();
        binaries.entry(name).or_default().push((PathBuf::from(exe), dir));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("building the test binaries failed ({status})"));
    }
    Ok(binaries)
}

/// The string value of `"key":"..."` in a line of cargo's JSON (no escapes expected).
fn json_str<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = line.find(&pat)? + pat.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// The package name in a package id: `path+file:///x/vaultdb-s3#0.1.0` or
/// `path+file:///x/dir#name@0.1.0`.
fn package_name(id: &str) -> String {
    let (path, frag) = id.rsplit_once('#').unwrap_or((id, ""));
    match frag.split_once('@') {
        Some((name, _)) => name.to_owned(),
        None => path.rsplit('/').next().unwrap_or(path).to_owned(),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_json() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/vaultdb-s3#0.1.0","manifest_path":"/w/crates/vaultdb-s3/Cargo.toml","executable":"/w/target/debug/deps/conformance-1"}"#;
        assert_eq!(json_str(line, "executable"), Some("/w/target/debug/deps/conformance-1"));
        assert_eq!(package_name(json_str(line, "package_id").unwrap()), "vaultdb-s3");
        assert_eq!(package_name("path+file:///w/dir#other@0.1.0"), "other");
        assert_eq!(json_str(r#"{"executable":null}"#, "executable"), None);
        let test = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/vaultdb#0.1.0","manifest_path":"/w/crates/vaultdb/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"cloud","src_path":"/w/crates/vaultdb/tests/cloud.rs"},"executable":"/w/target/debug/deps/cloud-1"}"#;
        assert_eq!(json_str(test, "name"), Some("cloud"));
    }
}
