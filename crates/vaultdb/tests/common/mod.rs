//! Helpers shared by the integration tests: an in-process server on a loopback port, and
//! the `vaultdb` binary with a clean environment.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vaultdb::auth::{Role, Tokens};
use vaultdb::server::{AppState, Limits};
use vaultdb_core::{CallPolicy, MemoryBackend, StorageBackend, VaultDb};

pub mod pki;
pub mod process;

/// Tokens of each role, as the tests present them.
pub const READ_TOKEN: &str = "read-token-0123456789";
pub const WRITE_TOKEN: &str = "write-token-0123456789";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

/// Environment variables the binary reads; removed so the host cannot leak into tests.
pub const VAULTDB_ENV: [&str; 23] = [
    "VAULTDB_CONFIG",
    "VAULTDB_RESHARE_FROM",
    "VAULTDB_DATA_DIR",
    "VAULTDB_THRESHOLD",
    "VAULTDB_WRITE_QUORUM",
    "VAULTDB_LISTEN",
    "VAULTDB_AUDIT_LOG",
    "VAULTDB_AUDIT_FAIL_OPEN",
    "VAULTDB_TOKEN",
    "VAULTDB_ALLOW_PLAIN_HTTP",
    "VAULTDB_BACKENDS",
    "VAULTDB_LOG_FORMAT",
    "RUST_LOG",
    "VAULTDB_TLS_CERT",
    "VAULTDB_TLS_KEY",
    "VAULTDB_TLS_CLIENT_CA",
    "VAULTDB_SERVER",
    "VAULTDB_CA_CERT",
    "VAULTDB_CLIENT_CERT",
    "VAULTDB_CLIENT_KEY",
    "VAULTDB_TIMEOUT",
    "VAULTDB_CALL_TIMEOUT",
    "VAULTDB_FENCE_CHECK",
];

/// The three test tokens.
pub fn tokens() -> Tokens {
    let mut t = Tokens::default();
    t.add_plain("reader", Role::Read, READ_TOKEN);
    t.add_plain("writer", Role::Write, WRITE_TOKEN);
    t.add_plain("root", Role::Admin, ADMIN_TOKEN);
    t
}

/// Fast backend calls: short timeout, one retry.
pub fn quick_policy() -> CallPolicy {
    CallPolicy {
        timeout: Duration::from_millis(500),
        max_attempts: 2,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// A 2-of-3 store over the given backends.
pub async fn open_store(backends: Vec<Arc<dyn StorageBackend>>) -> VaultDb {
    let mut b = VaultDb::builder().threshold(2).call_policy(quick_policy());
    for backend in backends {
        b = b.backend_arc(backend);
    }
    b.open().await.expect("open store")
}

/// A 2-of-3 store over three memory backends.
pub async fn memory_store() -> VaultDb {
    open_store(
        (1..=3)
            .map(|i| {
                Arc::new(MemoryBackend::new(format!("mem-{i}"), format!("Memory {i}")))
                    as Arc<dyn StorageBackend>
            })
            .collect(),
    )
    .await
}

/// A 2-of-3 store over three memory backends that takes records of at most
/// `max_record_size` bytes (the limit of raw puts, which stream).
pub async fn memory_store_up_to(max_record_size: usize) -> VaultDb {
    let mut b = VaultDb::builder()
        .threshold(2)
        .call_policy(quick_policy())
        .max_record_size(max_record_size);
    for i in 1..=3 {
        b = b.backend(MemoryBackend::new(format!("mem-{i}"), format!("Memory {i}")));
    }
    b.open().await.expect("open store")
}

/// A server on 127.0.0.1:<free port>, stopped (gracefully) when dropped.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = vaultdb::app(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        let client = http_client().timeout(Duration::from_secs(30)).build().unwrap();
        Self { base: format!("http://{addr}"), client, state, stop: Some(tx), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `method path`, with `token` as the bearer token when there is one.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    /// Sends `req` (the server answers every request: a transport error fails the test).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        req.send().await.expect("the server answers")
    }

    /// `GET path` with `token` (if any), sent.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.send(self.request(reqwest::Method::GET, path, token)).await
    }

    /// `GET path` with `token`, its body parsed as JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        self.get(path, Some(token)).await.json().await.expect("a JSON body")
    }

    /// `DELETE path` with `token`, sent.
    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(self.request(reqwest::Method::DELETE, path, Some(token))).await
    }

    /// `PUT /v1/records` of `{"id": id, "data": data}` with `token`, sent.
    pub async fn put_json(
        &self,
        id: &str,
        data: serde_json::Value,
        token: &str,
    ) -> reqwest::Response {
        let body = serde_json::json!({"id": id, "data": data});
        self.send(self.request(reqwest::Method::PUT, "/v1/records", Some(token)).json(&body)).await
    }

    /// Stops the server and waits for it, then writes what its audit log still owes.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.state.shutdown().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Default limits with a short request timeout.
pub fn limits() -> Limits {
    Limits { body_limit: 64 << 10, request_timeout: Duration::from_secs(10) }
}

/// Parses an error body and returns its code, checking the shape `{"error": {code, message}}`.
pub async fn error_code(resp: reqwest::Response) -> String {
    let v: serde_json::Value = resp.json().await.expect("error body is JSON");
    let e = &v["error"];
    assert!(e["message"].is_string(), "error has a message: {v}");
    e["code"].as_str().expect("error has a code").to_owned()
}

/// A client builder for the tests' requests (no proxy). reqwest's TLS is rustls without a
/// built-in crypto provider (the binary gives every client its own configuration, on
/// aws-lc-rs), so a client built without one needs the process default: aws-lc-rs.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

/// The `vaultdb` binary run in `dir` with none of the host's VAULTDB_* variables.
pub fn vaultdb(dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(env!("CARGO_BIN_EXE_vaultdb"));
    c.current_dir(dir);
    for v in VAULTDB_ENV {
        c.env_remove(v);
    }
    c.timeout(Duration::from_secs(120));
    c
}

/// Runs `vaultdb args` in `dir`: it must succeed and print each of `says` on stdout.
pub fn assert_prints(dir: &Path, args: &[&str], says: &[&str]) {
    let mut ran = vaultdb(dir).args(args).assert().success();
    for s in says {
        ran = ran.stdout(predicates::str::contains(*s));
    }
}

/// Every file under `dir` with its contents (empty map if `dir` does not exist).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(p.strip_prefix(base).unwrap().join(""), Vec::new());
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// --- The command line's test helpers (tests/cli.rs, tests/cli_daily.rs).

/// The warning logged (on standard error) for each backend that cannot be built.
pub const CANNOT_BE_BUILT: &str = " WARN vaultdb::config::backends: backend cannot be built";

/// Checks a failed run: non-zero exit, empty stdout, exactly one stderr line
/// `error: <code>: ...` (besides the warnings about backends that cannot be built).
pub fn assert_one_line_error(out: &std::process::Output, code: &str, what: &str) {
    assert!(!out.status.success(), "{what}: must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains(CANNOT_BE_BUILT)).collect();
    assert_eq!(lines.len(), 1, "{what}: one stderr line, got {stderr:?}");
    assert!(
        lines[0].starts_with(&format!("error: {code}: ")),
        "{what}: expected code {code}, got {stderr:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: nothing on stdout, got {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A 2-of-3 configuration (write quorum 2) over fs backends `d1`, `d2` under `d/data` and a
/// third backend `gcp` given by `third` (its section's lines after `id`); written to
/// `d/broken.toml`, whose path is returned.
pub fn two_fs_and(d: &Path, third: &str) -> String {
    let cfg = format!(
        "threshold = 2\nwrite_quorum = 2\ndata_dir = \"data\"\n[timeouts]\ncall = \"5s\"\n\
         attempts = 1\n\
         [[backends]]\nkind = \"fs\"\nid = \"d1\"\npath = \"d1\"\n\
         [[backends]]\nkind = \"fs\"\nid = \"d2\"\npath = \"d2\"\n\
         [[backends]]\nid = \"gcp\"\n{third}"
    );
    let path = d.join("broken.toml");
    std::fs::write(&path, cfg).unwrap();
    path.to_string_lossy().into_owned()
}

/// Writes a config with three fs backends under `d/data` and `extra` top-level lines.
pub fn vaultdb_fs_config(d: &Path, extra: &str) -> String {
    let mut cfg = format!("threshold = 2\ndata_dir = \"data\"\n{extra}");
    for i in 1..=3 {
        cfg.push_str(&format!("\n[[backends]]\nkind = \"fs\"\nid = \"d{i}\"\npath = \"d{i}\"\n"));
    }
    let path = d.join("seg.toml");
    std::fs::write(&path, cfg).unwrap();
    path.to_string_lossy().into_owned()
}

/// Every file under `root`, as strings.
pub fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.to_string_lossy().into_owned());
                }
            }
        }
    }
    out
}

/// The exit status of a finished run.
pub fn status_of(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited, not killed")
}
