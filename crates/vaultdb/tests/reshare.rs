// This file is long because it runs the README's two re-sharing blocks line by line (with
// the servers they start) and two end-to-end re-shares interrupted part way, each through the
// real binary, sharing one harness.
//! `vaultdb reshare`: the two blocks of the repository README's "Re-sharing a running store"
//! run as written (a running 2-of-3 store to 3-of-5, the old and the new configuration's
//! servers answering during the re-share; a lost backend replaced), each line in order in an
//! empty directory with the built binary on `PATH`; a re-share killed part way through its
//! copy, resumed; and a server on the new configuration serving through a re-share stopped
//! part way.
//!
//! Lines the test runs itself: `export` lines set the environment of the lines after them;
//! `vaultdb ... serve &` starts a server the test keeps (on a free port instead of 8080);
//! `kill %1` stops the first one. Every other line runs in `bash -c`, and must succeed.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::VAULTDB_ENV;
use vaultdb_core::{KeyPrefix, ListFrom, StorageBackend};

const BIN: &str = env!("CARGO_BIN_EXE_vaultdb");

/// The lines of the first fenced block after `marker` in the repository's README: `\`
/// continuations joined, comments and blank lines left out.
fn readme_block(marker: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let at = readme.find(marker).unwrap_or_else(|| panic!("README has {marker:?}"));
    let after = &readme[at..];
    let body = &after[after.find("```sh\n").expect("a sh block") + 6..];
    let body = &body[..body.find("```").unwrap()];
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let whole = whole.trim();
        if !whole.is_empty() && !whole.starts_with('#') {
            lines.push(whole.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    lines
}

/// Runs README lines in one directory, with the built binary first on `PATH`, the host's
/// `VAULTDB_*` variables removed and the block's `export`s applied.
struct Shell {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Shell {
    fn new(dir: &Path) -> Self {
        let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
        let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
        Self { dir: dir.to_path_buf(), env: vec![("PATH".into(), path)] }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir);
        for v in VAULTDB_ENV {
            cmd.env_remove(v);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs one line (an `export` line sets variables for the next ones); it must succeed.
    fn run(&mut self, line: &str) -> Output {
        if let Some(vars) = line.strip_prefix("export ") {
            for var in vars.split_whitespace() {
                let (k, v) = var.split_once('=').expect("export NAME=VALUE");
                self.env.push((k.to_owned(), v.to_owned()));
            }
            let status = std::process::ExitStatus::default();
            return Output { status, stdout: Vec::new(), stderr: Vec::new() };
        }
        let out = self.command("bash").args(["-c", line]).output().unwrap();
        assert!(
            out.status.success(),
            "{line}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts a `... serve &` line as a server the test keeps, on a free loopback port.
    fn serve(&self, line: &str) -> Server {
        let line = line.strip_suffix('&').unwrap().trim();
        let log =
            std::fs::File::create(self.dir.join(format!("serve-{}.log", rand_u64()))).unwrap();
        let mut child = self
            .command("bash")
            .args(["-c", &format!("exec {line}")])
            .env("VAULTDB_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("serve prints its address").unwrap();
            if let Some(a) = line.strip_prefix("listening on http://") {
                break a.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

/// A server started by [`Shell::serve`], stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (the connection closed after it); the status and the body.
fn http(addr: &str, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// `len` random bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    getrandom::getrandom(&mut b).unwrap();
    b
}

/// The N of `reshare`'s "N record(s) copied" (its own audit records, in the store's system
/// namespace, are copied too).
fn copied(said: &str) -> u64 {
    let end = said.find(" record(s) copied").expect("reshare says what it copied");
    said[..end].rsplit(' ').next().unwrap().parse().unwrap()
}

/// The token an `init` line printed.
fn token_of(init: &Output) -> String {
    let out = String::from_utf8_lossy(&init.stdout);
    let line = out.lines().find_map(|l| l.trim().strip_prefix("export VAULTDB_TOKEN="));
    line.expect("init prints the token").to_owned()
}

/// The keys of the objects under `prefix/` in the fs backend at `dir`.
fn keys_in(dir: &Path, prefix: &str) -> Vec<String> {
    let fs = vaultdb_fs::FsBackend::new("x", "x", dir);
    let prefix = KeyPrefix::new(format!("{prefix}/")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut keys = Vec::new();
    let mut from = ListFrom::Start;
    loop {
        let page = rt.block_on(fs.list_page(&prefix, from)).unwrap();
        keys.extend(page.entries.into_iter().map(|e| e.key.as_str().to_owned()));
        match page.next {
            Some(c) => from = ListFrom::Cursor(c),
            None => break,
        }
    }
    keys.sort();
    keys
}

/// Reads every record of `want` with `vaultdb --config CONFIG get ID -o FILE` and compares
/// the bytes.
fn check_records(sh: &Shell, config: &str, want: &BTreeMap<String, Vec<u8>>) {
    for (id, data) in want {
        let file = sh.dir.join("read-back");
        let out = sh
            .command(BIN)
            .args(["--config", config, "get", id, "-o"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "get {id}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::read(&file).unwrap() == *data, "{id}: other bytes through {config}");
    }
}

#[test]
fn readme_two_of_three_to_three_of_five_while_the_server_runs() {
    let lines = readme_block("<!-- reshare: 2-of-3 to 3-of-5 -->");
    assert!(lines.iter().any(|l| l.contains(" reshare --to ")), "{lines:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut sh = Shell::new(dir.path());
    let mut servers: Vec<Server> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    want.insert("user-42".into(), b"{\"name\": \"Alice\"}\n".to_vec());
    let mut reshared = false;
    for line in &lines {
        if line.starts_with("vaultdb ") && line.ends_with(" serve &") {
            servers.push(sh.serve(line));
            continue;
        }
        if line == "kill %1" {
            assert!(reshared, "the old server is stopped after the re-share");
            let old = servers.remove(0);
            // The old server tells its clients, and its operator, to use the new configuration.
            let (status, body) = http(&old.addr, "GET", "/v1/records/user-42", &tokens[0], b"");
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("\"INVALID_CONFIG\""), "{body}");
            assert!(body.contains("restart `vaultdb serve` with the new configuration"), "{body}");
            let (status, body) = http(&old.addr, "GET", "/v1/status", &tokens[0], b"");
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("restart `vaultdb serve` with the new configuration"), "{body}");
            let (status, body) = http(&old.addr, "GET", "/health", "", b"");
            assert_eq!((status, body.contains("\"status\":\"moved\"")), (503, true), "{body}");
            drop(old);
            continue;
        }
        if line.contains(" reshare --to ") {
            let old = servers.first().expect("the old server runs during the re-share");
            // More records, written through the running server, and one of several segments
            // through the command line.
            for i in 0..20 {
                let id = format!("rec-{i}");
                let data = random_bytes(i * 97 + 1);
                let (status, body) =
                    http(&old.addr, "PUT", &format!("/v1/records/{id}/raw"), &tokens[0], &data);
                assert_eq!(status, 201, "{body}");
                want.insert(id, data);
            }
            let big = random_bytes(9 << 20);
            std::fs::write(dir.path().join("big.bin"), &big).unwrap();
            sh.run("vaultdb --config v1/vaultdb.toml put big big.bin");
            want.insert("big".into(), big);
            // Both servers are asked all along the re-share.
            let new = servers.get(1).expect("the new server runs during the re-share");
            let stop = Arc::new(AtomicBool::new(false));
            // The new server is asked once the re-share has written its first notice there
            // (before, requests would put audit checkpoints in the new store, which the
            // re-share must find empty).
            let notice = dir.path().join("disks/a");
            let ask = |addr: &str, token: &str, after_notice: bool| {
                let (addr, token, flag) = (addr.to_owned(), token.to_owned(), stop.clone());
                let notice = notice.clone();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    while after_notice
                        && !keys_in(&notice, "v2").iter().any(|k| k == "v2/migration")
                    {
                        assert!(start.elapsed() < Duration::from_secs(60), "no re-share");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let mut answers = Vec::new();
                    while !flag.load(Ordering::Acquire) {
                        answers.push(http(&addr, "GET", "/v1/records/user-42", &token, b""));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    answers
                })
            };
            let asking = ask(&old.addr, &tokens[0], false);
            let asking_new = ask(&new.addr, &tokens[1], true);
            let out = sh.run(line);
            stop.store(true, Ordering::Release);
            let answers = asking.join().unwrap();
            let new_answers = asking_new.join().unwrap();
            // The new server (on a store without records, it reads the notices before each
            // request) found the record all along once the notice was on K of its backends
            // (in the old store, then in its own), and never refused.
            let found = new_answers.iter().position(|a| a.0 == 200);
            let found = found.unwrap_or_else(|| panic!("never found: {new_answers:?}"));
            assert!(found <= 10, "noticed late: {new_answers:?}");
            assert!(new_answers[..found].iter().all(|a| a.0 == 404), "{new_answers:?}");
            for (status, body) in &new_answers[found..] {
                assert_eq!(*status, 200, "the new server during the re-share: {body}");
                assert!(body.contains("Alice"), "{body}");
            }
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(copied(&said) >= want.len() as u64, "{said}");
            assert!(said.contains("must move to --config v2/vaultdb.toml"), "{said}");
            // Every answer was the record or the reload error, and it ends with the error.
            for (status, body) in &answers {
                match status {
                    200 => assert!(body.contains("Alice"), "{body}"),
                    400 => assert!(body.contains("restart `vaultdb serve`"), "{body}"),
                    other => panic!("the old server answered {other}: {body}"),
                }
            }
            assert_eq!(answers.last().map(|a| a.0), Some(400), "{answers:?}");
            // Running it again is harmless: nothing left to copy or remove.
            let again = sh.run(line);
            let said = String::from_utf8_lossy(&again.stdout);
            assert!(said.contains("removed 0 object(s)"), "{said}");
            reshared = true;
            continue;
        }
        let out = sh.run(line);
        if line.starts_with("vaultdb init") {
            tokens.push(token_of(&out));
        }
        if line.ends_with("get user-42") {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"name\": \"Alice\"}\n");
        }
    }
    assert!(reshared && servers.len() == 1, "the block re-shares and keeps the new server");

    // Every record, with equal bytes, through the new configuration and its server.
    check_records(&sh, "v2/vaultdb.toml", &want);
    let (status, body) = http(&servers[0].addr, "GET", "/v1/records/user-42", &tokens[1], b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"Alice\""), "{body}");
    // The old backends keep only the fence (the keyring and the moved notice); the new store
    // has its five.
    for b in ["a", "b", "c"] {
        let left = keys_in(&dir.path().join("disks").join(b), "vaultdb");
        assert_eq!(left, ["vaultdb/keyring", "vaultdb/moved"], "old backend {b}");
    }
    for b in ["a", "b", "c", "d", "e"] {
        let shares = keys_in(&dir.path().join("disks").join(b), "v2");
        assert!(shares.len() > want.len(), "new backend {b}: {shares:?}");
    }
    // A command on the old configuration says where to go.
    let out = sh.command(BIN).args(["--config", "v1/vaultdb.toml", "get", "user-42"]).output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(3), "INVALID_CONFIG");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has moved") && err.contains("--config NEW.toml"), "{err}");
    let out = sh.command(BIN).args(["--config", "v1/vaultdb.toml", "status"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "status on the old configuration: {err}");
    assert!(err.contains("has moved to a new configuration"), "{err}");
    // A server started on the old configuration does not start.
    let out = sh
        .command(BIN)
        .args(["--config", "v1/vaultdb.toml", "serve"])
        .env("VAULTDB_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("start `vaultdb serve` with the new configuration"), "{err}");
    // Both audit logs hold the re-share.
    let old_log = std::fs::read_to_string(dir.path().join("v1/vaultdb-data/audit.jsonl")).unwrap();
    let new_log = std::fs::read_to_string(dir.path().join("v2/vaultdb-data/audit.jsonl")).unwrap();
    assert!(old_log.contains("\"op\":\"store.reshare\""), "{old_log}");
    assert!(new_log.contains("\"op\":\"store.reshare\""), "{new_log}");
    let verify = sh.command(BIN).args(["--config", "v2/vaultdb.toml", "audit", "verify"]).output();
    let verify = verify.unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[test]
fn readme_replacing_a_lost_backend() {
    let lines = readme_block("<!-- reshare: a lost backend -->");
    let lost = lines.iter().position(|l| l.starts_with("rm -rf disks/c")).expect("c is lost");
    let dir = tempfile::tempdir().unwrap();
    let mut sh = Shell::new(dir.path());
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    want.insert("user-42".into(), b"{\"name\": \"Alice\"}\n".to_vec());
    for (i, line) in lines.iter().enumerate() {
        if i == lost {
            // Before c goes: records whose shares c held too.
            for n in 0..10 {
                let id = format!("rec-{n}");
                let data = random_bytes(n * 131 + 1);
                std::fs::write(dir.path().join("data.bin"), &data).unwrap();
                sh.run(&format!("vaultdb --config v1/vaultdb.toml put {id} data.bin"));
                want.insert(id, data);
            }
        }
        let out = sh.run(line);
        if line.ends_with("get user-42") {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"name\": \"Alice\"}\n");
        }
        if line.contains(" reshare --to ") {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(copied(&said) >= want.len() as u64, "{said}");
        }
    }
    check_records(&sh, "v2/vaultdb.toml", &want);
    // The new store is 2-of-3 over a, b and d: d alone holds none of the old records, and
    // it with one more rebuilds them all.
    let stat = sh.command(BIN).args(["--config", "v2/vaultdb.toml", "--json", "status"]).output();
    let status: serde_json::Value = serde_json::from_slice(&stat.unwrap().stdout).unwrap();
    let ids: Vec<&str> =
        status["backends"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["fs-a", "fs-b", "fs-d"]);
    assert_eq!((status["k"].as_u64(), status["up"].as_u64()), (Some(2), Some(3)));
    for b in ["a", "b"] {
        let left = keys_in(&dir.path().join("disks").join(b), "vaultdb");
        assert_eq!(left, ["vaultdb/keyring", "vaultdb/moved"], "old backend {b}");
    }
    assert!(keys_in(&dir.path().join("disks/d"), "vaultdb").is_empty());
}

/// Writes `count` records into the store of `config` in-process (through the binary's own
/// configuration loading, so that the store is the one the command line opens).
fn fill(config: &Path, count: usize) -> BTreeMap<String, Vec<u8>> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cfg = vaultdb::config::Loaded::load(Some(config)).unwrap();
        let db = vaultdb::service::open(&cfg).await.unwrap();
        let mut want = BTreeMap::new();
        for chunk in (0..count).collect::<Vec<_>>().chunks(32) {
            let puts = chunk.iter().map(|i| {
                let data = random_bytes(i % 300 + 1);
                let id = format!("rec-{i:04}");
                want.insert(id.clone(), data.clone());
                let db = db.clone();
                async move { db.put(vaultdb_core::Record::new(id, data)).await.unwrap() }
            });
            futures::future::join_all(puts.collect::<Vec<_>>()).await;
        }
        db.flush().await;
        want
    })
}

/// Files under `dir` (recursively).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// The config of a 2-of-3 fs store under `disks/`, with `prefix`.
fn fs_config(prefix: &str, disks: &[&str]) -> String {
    let mut text = format!("threshold = 2\nprefix = \"{prefix}\"\n");
    for d in disks {
        text.push_str(&format!("[[backends]]\nid = \"{d}\"\nurl = \"file://disks/{d}\"\n"));
    }
    text
}

/// A directory with `old/vaultdb.toml` (`old`) and `new/vaultdb.toml` (a 2-of-3 fs store
/// over x, y, z under prefix v2).
fn two_stores(old: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("old")).unwrap();
    std::fs::create_dir_all(d.join("new")).unwrap();
    std::fs::write(d.join("old/vaultdb.toml"), old).unwrap();
    std::fs::write(d.join("new/vaultdb.toml"), fs_config("v2", &["x", "y", "z"])).unwrap();
    dir
}

/// An old backend that cannot list (here its directory is replaced by a link to itself: every
/// call fails with "too many levels of symbolic links") may hold the K-th share of a record
/// written while another backend was down (write quorum 2 of 3): the re-share copies the
/// rest but does not finish, and keeps the old store, naming the backend. Declared lost with
/// `--lost`, it no longer stops it: what only it could complete is gone with it.
#[test]
fn an_unreachable_old_backend_stops_the_reshare_until_declared_lost() {
    let dir = two_stores(&format!("write_quorum = 2\n{}", fs_config("v1", &["a", "b", "c"])));
    let d = dir.path();
    let disks = d.join("old/vaultdb-data/disks");
    let want = fill(&d.join("old/vaultdb.toml"), 12);
    // Written while b is away: on a and c only.
    std::fs::rename(disks.join("b"), d.join("b-away")).unwrap();
    std::os::unix::fs::symlink("b", disks.join("b")).unwrap();
    let mut sh = Shell::new(d);
    sh.env.push(("VAULTDB_CALL_TIMEOUT".into(), "1s".into()));
    sh.env.push(("VAULTDB_FENCE_CHECK".into(), "1s".into()));
    std::fs::write(d.join("only.bin"), b"on a and c").unwrap();
    sh.run("vaultdb --config old/vaultdb.toml put only-a-and-c only.bin");
    std::fs::remove_file(disks.join("b")).unwrap();
    std::fs::rename(d.join("b-away"), disks.join("b")).unwrap();
    // Then c cannot be reached.
    std::fs::rename(disks.join("c"), d.join("c-away")).unwrap();
    std::os::unix::fs::symlink("c", disks.join("c")).unwrap();
    let reshare = |extra: &[&str]| {
        sh.command(BIN)
            .args(["--config", "old/vaultdb.toml", "reshare", "--to", "new/vaultdb.toml"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = reshare(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "BACKEND_ERROR: {stderr}");
    assert!(stderr.contains("c:"), "names c: {stderr}");
    assert!(stderr.contains("declare them lost"), "{stderr}");
    let left = keys_in(&disks.join("a"), "v1");
    assert!(left.len() > 12, "the old store is kept: {left:?}");
    let out = reshare(&["--lost", "zz"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let out = reshare(&["--lost", "c"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_records(&sh, "new/vaultdb.toml", &want);
    let gone = sh
        .command(BIN)
        .args(["--config", "new/vaultdb.toml", "get", "only-a-and-c"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(5), "RECORD_NOT_FOUND, lost with c: {said}");
}

#[test]
fn an_interrupted_reshare_resumes_where_it_stopped() {
    let dir = two_stores(&fs_config("v1", &["a", "b", "c"]));
    let d = dir.path();
    let want = fill(&d.join("old/vaultdb.toml"), 400);
    let sh = {
        let mut sh = Shell::new(d);
        sh.env.push(("VAULTDB_CALL_TIMEOUT".into(), "1s".into()));
        sh.env.push(("VAULTDB_FENCE_CHECK".into(), "1s".into()));
        sh
    };
    let reshare = |sh: &Shell| {
        let mut cmd = sh.command(BIN);
        cmd.args(["--config", "old/vaultdb.toml", "--json", "reshare", "--to"]).args([
            "new/vaultdb.toml",
            "--checkpoint-every",
            "5",
        ]);
        cmd
    };

    // The first run is killed (SIGKILL: a crash) once a hundred objects of the copy (a share
    // and a mark per record) are in one new backend.
    let mut first = reshare(&sh).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = first.stderr.take().unwrap();
    let progress = std::thread::spawn(move || {
        BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>()
    });
    let x = d.join("new/vaultdb-data/disks/x");
    let start = Instant::now();
    while count_files(&x) < 100 {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before the kill");
        assert!(start.elapsed() < Duration::from_secs(120), "the copy did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let progress = progress.join().unwrap();
    assert!(progress.iter().any(|l| l.contains("\"phase\":\"copying\"")), "{progress:?}");

    // Meanwhile the old store refuses commands: it is fenced.
    let out = sh.command(BIN).args(["--config", "old/vaultdb.toml", "get", "rec-0001"]).output();
    assert_eq!(out.unwrap().status.code(), Some(3), "INVALID_CONFIG");

    // The second run starts from the saved progress, waits no more, and finishes; it removes
    // the fence too.
    let out = reshare(&sh).arg("--remove-fence").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let progress = String::from_utf8_lossy(&out.stderr);
    let resumed: serde_json::Value =
        progress.lines().find_map(|l| serde_json::from_str(l).ok()).expect("a progress line");
    assert_eq!(resumed["phase"], "copying", "{progress}");
    let before = resumed["copied"].as_u64().unwrap();
    assert!((20..400).contains(&before), "resumed after {before} records: {progress}");
    // It went through the records after the saved cursor only.
    let totals = progress.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    let most = totals.filter_map(|v| v["total"].as_u64()).max().unwrap();
    assert!(most <= 400 - before, "{most} records gone through again after {before}: {progress}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["waited_seconds"], 0.0, "{report}");
    // Records the first run wrote after its last save are found in the new store: skipped.
    let through = report["copied"].as_u64().unwrap() + report["skipped"].as_u64().unwrap();
    assert!(through >= 400, "{report}");
    assert!(report["problems"].as_array().unwrap().is_empty(), "{report}");
    check_records(&sh, "new/vaultdb.toml", &want);
    // Nothing of the old store is left, so there is nothing to re-share any more.
    assert_eq!(report["fence_removed"], true, "{report}");
    for b in ["a", "b", "c"] {
        let left = keys_in(&d.join("old/vaultdb-data/disks").join(b), "v1");
        assert!(left.is_empty(), "old backend {b}: {left:?}");
    }
    let again = reshare(&sh).output().unwrap();
    assert_eq!(again.status.code(), Some(6), "{}", String::from_utf8_lossy(&again.stderr));
}

#[test]
fn mistaken_reshares_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["old", "same", "empty"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("old/vaultdb.toml"), fs_config("v1", &["a", "b", "c"])).unwrap();
    // The old store's directories, under other ids, and the same prefix.
    let old_disks = d.join("old/vaultdb-data/disks").display().to_string();
    let same_dirs: String = fs_config("v1", &["x", "y", "z"])
        .replace("file://disks/x", &format!("file://{old_disks}/a"))
        .replace("file://disks/y", &format!("file://{old_disks}/b"))
        .replace("file://disks/z", &format!("file://{old_disks}/c"));
    std::fs::write(d.join("same/vaultdb.toml"), same_dirs).unwrap();
    std::fs::write(d.join("empty/vaultdb.toml"), fs_config("v1", &["p", "q", "r"])).unwrap();
    let sh = Shell::new(d);
    std::fs::write(d.join("data.bin"), b"some data").unwrap();
    let put =
        sh.command(BIN).args(["--config", "old/vaultdb.toml", "put", "k", "data.bin"]).output();
    assert!(put.unwrap().status.success());

    let refused = |config: &str, to: &str, env: Option<(&str, &str)>, code: i32, says: &str| {
        let mut cmd = sh.command(BIN);
        cmd.args(["--config", config, "reshare", "--to", to]);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{to}: {err}");
        assert!(err.contains(says), "{to}: {err}");
    };
    refused("old/vaultdb.toml", "old/vaultdb.toml", None, 3, "the store to move");
    refused("old/vaultdb.toml", "same/vaultdb.toml", None, 3, "one inside the other");
    refused("old/vaultdb.toml", "missing.toml", None, 3, "cannot read config missing.toml");
    let threshold = Some(("VAULTDB_THRESHOLD", "2"));
    refused("old/vaultdb.toml", "empty/vaultdb.toml", threshold, 3, "VAULTDB_THRESHOLD is set");
    refused("empty/vaultdb.toml", "old/vaultdb.toml", None, 6, "STORE_NOT_FOUND");
    let remote = sh
        .command(BIN)
        .args(["--server", "http://127.0.0.1:9", "reshare", "--to", "empty/vaultdb.toml"])
        .output()
        .unwrap();
    assert_eq!(remote.status.code(), Some(2), "{}", String::from_utf8_lossy(&remote.stderr));

    // Nothing was fenced, and no store was created where the refused runs pointed.
    let get = sh.command(BIN).args(["--config", "old/vaultdb.toml", "get", "k"]).output();
    assert!(get.unwrap().status.success());
    assert_eq!(count_files(&d.join("empty/vaultdb-data/disks")), 0);
    assert!(keys_in(&d.join("old/vaultdb-data/disks/a"), "v1").iter().all(|k| k != "v1/moved"));
}

/// A server started on the new configuration before the re-share (and commands run on it)
/// keep serving through it: while the re-share is stopped part way through its copy (killed),
/// reads find the records only the old store holds, and writes and deletes go to the new
/// store; once the re-share is run to its end, a fresh client of the new configuration reads
/// what was written during it, and the server goes on alone. The old configuration's server
/// answers with the reload error all along.
#[test]
fn a_server_on_the_new_configuration_serves_throughout_a_reshare() {
    let dir = two_stores(&fs_config("v1", &["a", "b", "c"]));
    let d = dir.path();
    let mut want = fill(&d.join("old/vaultdb.toml"), 300);
    let mut sh = Shell::new(d);
    sh.env.push(("VAULTDB_CALL_TIMEOUT".into(), "1s".into()));
    sh.env.push(("VAULTDB_FENCE_CHECK".into(), "1s".into()));
    sh.env.push(("VAULTDB_TOKEN".into(), "the-token".into()));
    let token = "the-token";
    let old_server = sh.serve("vaultdb --config old/vaultdb.toml serve &");
    // Records in words, through the old server (so that the server's reads can be compared).
    for i in 0..5 {
        let (id, text) = (format!("text-{i}"), format!("old text {i}"));
        let (status, body) =
            http(&old_server.addr, "PUT", &format!("/v1/records/{id}/raw"), token, text.as_bytes());
        assert_eq!(status, 201, "{body}");
        want.insert(id, text.into_bytes());
    }
    // The new store's server starts before the re-share (it creates the empty store).
    let server = sh.serve("vaultdb --config new/vaultdb.toml serve &");

    // The re-share is killed once its copy has begun (a few objects in one new backend).
    let mut first = sh
        .command(BIN)
        .args(["--config", "old/vaultdb.toml", "--json", "reshare", "--to", "new/vaultdb.toml"])
        .args(["--checkpoint-every", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let x = d.join("new/vaultdb-data/disks/x");
    let before = count_files(&x);
    let start = Instant::now();
    while count_files(&x) < before + 20 {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before the kill");
        assert!(start.elapsed() < Duration::from_secs(120), "the copy did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();

    // The new server reads records still in the old store only, and takes writes.
    for i in 0..5 {
        let (status, body) =
            http(&server.addr, "GET", &format!("/v1/records/text-{i}/raw"), token, b"");
        assert_eq!((status, body.as_str()), (200, format!("old text {i}").as_str()));
    }
    for i in 0..5 {
        let (id, text) = (format!("during-{i}"), format!("written during the re-share {i}"));
        let (status, body) =
            http(&server.addr, "PUT", &format!("/v1/records/{id}/raw"), token, text.as_bytes());
        assert_eq!(status, 201, "{body}");
        want.insert(id, text.into_bytes());
    }
    let (status, body) =
        http(&server.addr, "PUT", "/v1/records/text-0/raw", token, b"rewritten during");
    assert_eq!(status, 201, "{body}");
    want.insert("text-0".into(), b"rewritten during".to_vec());
    let (status, body) = http(&server.addr, "DELETE", "/v1/records/text-1", token, b"");
    assert_eq!(status / 100, 2, "{body}");
    want.remove("text-1");
    // Commands on the new configuration read through too.
    check_records(&sh, "new/vaultdb.toml", &want);
    // They find the old configuration where the re-share recorded it, or in
    // VAULTDB_RESHARE_FROM; without either, or with another store's, they say what to do.
    let record = d.join("new/vaultdb-data/reshare-from");
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert!(recorded.trim_end().ends_with("old/vaultdb.toml"), "{recorded}");
    std::fs::remove_file(&record).unwrap();
    let get = |from: Option<&str>| {
        let mut cmd = sh.command(BIN);
        cmd.args(["--config", "new/vaultdb.toml", "get", "text-2"]);
        if let Some(f) = from {
            cmd.env("VAULTDB_RESHARE_FROM", f);
        }
        cmd.output().unwrap()
    };
    let out = get(None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not done") && err.contains("set VAULTDB_RESHARE_FROM"), "{err}");
    let out = get(Some("new/vaultdb.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is not that store"), "{err}");
    let out = get(Some("old/vaultdb.toml"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"old text 2");
    std::fs::write(&record, recorded).unwrap();
    // The old server tells its clients to use the new configuration.
    let (status, body) = http(&old_server.addr, "GET", "/v1/records/text-2", token, b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("restart `vaultdb serve` with the new configuration"), "{body}");

    // The re-share run again finishes; a fresh client of the new configuration reads it all.
    let out = sh
        .command(BIN)
        .args(["--config", "old/vaultdb.toml", "reshare", "--to", "new/vaultdb.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_records(&sh, "new/vaultdb.toml", &want);
    assert!(!record.exists(), "the record of the old configuration is removed at the end");
    let gone = sh.command(BIN).args(["--config", "new/vaultdb.toml", "get", "text-1"]).output();
    assert_eq!(gone.unwrap().status.code(), Some(5), "the delete made during it stays");
    // The server goes on, alone.
    for id in ["during-0", "text-0", "text-2"] {
        let (status, body) =
            http(&server.addr, "GET", &format!("/v1/records/{id}/raw"), token, b"");
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body.as_bytes(), want[id].as_slice());
    }
    let (status, body) = http(&server.addr, "PUT", "/v1/records/after/raw", token, b"after");
    assert_eq!(status, 201, "{body}");
}
