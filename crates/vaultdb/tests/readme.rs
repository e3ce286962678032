//! The quick start of the repository's README.md, run as written: every `curl` line against a server started
//! like the README says (on a free port instead of 8080), its answers compared with the
//! README's (versions aside), then every `cargo run` line with the built binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::VAULTDB_ENV;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quick_start() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme.find("## Quick start").expect("a quick start section");
    let rest = &readme[start + 3..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// The lines of the first fenced block after `marker`.
fn block_after(text: &str, marker: &str) -> Vec<String> {
    let at = text.find(marker).unwrap_or_else(|| panic!("README has {marker:?}"));
    let after = &text[at..];
    let open = after.find("```").unwrap();
    let body = &after[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].lines().map(str::to_owned).collect()
}

/// Replaces every 26-character version with `V`.
fn normalize(s: &str) -> String {
    let mut out = s.trim_end().to_owned();
    // A list's ids come in the store's name-tag order, which depends on its random naming
    // key: compare them as a set.
    if let Some(i) = out.find("\"ids\":[")
        && let Some(len) = out[i..].find(']')
    {
        let (start, end) = (i + "\"ids\":[".len(), i + len);
        let mut ids: Vec<&str> = out[start..end].split(',').collect();
        ids.sort_unstable();
        let sorted = ids.join(",");
        out.replace_range(start..end, &sorted);
    }
    let key = "\"version\":\"";
    let mut from = 0;
    while let Some(i) = out[from..].find(key) {
        let v = from + i + key.len();
        out.replace_range(v..v + 26, "V");
        from = v;
    }
    out
}

fn bash(line: &str, dir: &Path, token: &str) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", line]).current_dir(dir);
    for v in VAULTDB_ENV {
        cmd.env_remove(v);
    }
    cmd.env("VAULTDB_TOKEN", token);
    cmd.output().unwrap()
}

#[test]
fn quick_start_works_as_written() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!(
            "\n!!!!!!!! SKIPPED quick_start_works_as_written: curl is not installed !!!!!!!!\n"
        );
        return;
    }
    let qs = quick_start();
    let bin = env!("CARGO_BIN_EXE_vaultdb");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The server, started as the README says.
    let start_line = block_after(&qs, "Start the server").join("\n");
    assert_eq!(start_line.trim(), "cargo run -p vaultdb -- serve");
    let mut cmd = Command::new(bin);
    cmd.arg("serve").current_dir(d).stdout(Stdio::piped()).stderr(Stdio::null());
    for v in VAULTDB_ENV {
        cmd.env_remove(v);
    }
    cmd.env("VAULTDB_LISTEN", "127.0.0.1:0");
    let mut child = Child(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (mut base, mut export) = (None, None);
    while export.is_none() {
        let line = lines.next().expect("serve prints its token").unwrap();
        if let Some(b) = line.strip_prefix("listening on ") {
            base = Some(b.to_owned());
        }
        if line.trim().starts_with("export VAULTDB_TOKEN=") {
            export = Some(line.trim().to_owned());
        }
    }
    let base = base.unwrap();
    // What the user pastes: the export line it printed.
    let token = export.unwrap().trim_start_matches("export VAULTDB_TOKEN=").to_owned();
    // Keep reading the server's output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let curls: Vec<String> =
        block_after(&qs, "In terminal 2").into_iter().filter(|l| l.starts_with("curl ")).collect();
    let answers = block_after(&qs, "Answers, in order:");
    assert!(curls.len() >= 6, "{curls:?}");
    assert_eq!(curls.len(), answers.len(), "one answer per curl line");
    for (line, want) in curls.iter().zip(&answers) {
        let run = line.replace("http://127.0.0.1:8080", &base);
        let out = bash(&run, d, &token);
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(normalize(&got), normalize(want), "{line}");
    }

    // The command line, on the same data directory.
    std::fs::write(d.join("README.md"), "# a file to store\n").unwrap();
    let cli: Vec<String> = block_after(&qs, "The same with the command line")
        .into_iter()
        .filter(|l| l.contains("cargo run -q -p vaultdb -- "))
        .collect();
    assert!(cli.len() >= 6, "{cli:?}");
    for line in &cli {
        let run = line.replace("cargo run -q -p vaultdb --", &format!("'{bin}'"));
        let out = bash(&run, d, &token);
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
        if line.ends_with("get user-43") {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"name\": \"Bob\"}\n");
        }
        if line.ends_with("-- list") {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "notes.txt\nuser-43\n");
        }
    }
}
