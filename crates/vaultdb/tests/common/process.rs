//! `vaultdb serve` as a child process on a free loopback port, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::VAULTDB_ENV;
use super::pki::Leaf;

/// The admin token the servers accept (`VAULTDB_TOKEN`).
pub const TOKEN: &str = "vdb_serve_test_token_0123456789";

/// A configuration of three fs backends under `data`, 2-of-3, listening on a free loopback
/// port, with `server` as more lines of its `[server]` table.
pub fn config(server: &str) -> String {
    format!(
        "threshold = 2\ndata_dir = \"data\"\n[server]\nlisten = \"127.0.0.1:0\"\n{server}\n\
         [[backends]]\nkind = \"fs\"\nid = \"d1\"\npath = \"d1\"\n\
         [[backends]]\nkind = \"fs\"\nid = \"d2\"\npath = \"d2\"\n\
         [[backends]]\nkind = \"fs\"\nid = \"d3\"\npath = \"d3\"\n"
    )
}

/// A running `vaultdb serve`, killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    stderr: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `vaultdb serve` over plain HTTP ([`config`] with `server`) in a new directory.
    pub fn plain(server: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vaultdb.toml"), config(server)).unwrap();
        Self::spawn(dir)
    }

    /// `vaultdb serve` over HTTPS with `leaf` (as `cert.pem` and `key.pem`), client
    /// certificates of `client_ca` if given (as `clients.pem`), and `server` lines.
    pub fn tls(client_ca: Option<&str>, leaf: &Leaf, server: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("cert.pem"), &leaf.cert).unwrap();
        std::fs::write(d.join("key.pem"), &leaf.key).unwrap();
        let mut tls = format!("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n{server}\n");
        if let Some(ca) = client_ca {
            std::fs::write(d.join("clients.pem"), ca).unwrap();
            tls.push_str("tls_client_ca = \"clients.pem\"\n");
        }
        std::fs::write(d.join("vaultdb.toml"), config(&tls)).unwrap();
        Self::spawn(dir)
    }

    /// Starts `vaultdb serve` in `dir` (with the admin token [`TOKEN`]) and waits for its
    /// address.
    pub fn spawn(dir: tempfile::TempDir) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultdb"));
        cmd.current_dir(dir.path()).arg("serve").stdout(Stdio::piped()).stderr(Stdio::piped());
        for v in VAULTDB_ENV {
            cmd.env_remove(v);
        }
        cmd.env("VAULTDB_TOKEN", TOKEN).env("RUST_LOG", "vaultdb=info");
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                panic!("serve did not print its address; stderr: {}", stderr.lock().unwrap());
            };
            if let Some(b) = line.strip_prefix("listening on ") {
                break b.trim().to_owned();
            }
        };
        Self { child, base, stderr, dir }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("https://").trim_start_matches("http://")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sends SIGTERM and waits (up to 30 s) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "stops after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn hangup(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}
