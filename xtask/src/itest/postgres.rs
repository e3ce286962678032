//! The PostgreSQL server itest runs for `vaultdb-postgres` and the cross-cloud tests: a
//! throwaway cluster in a temporary directory, on a free 127.0.0.1 port, with TLS.
//!
//! - The programs are Debian's (`tools/postgres.rs`, installed with apt-get if missing).
//!   `initdb` and `postgres` refuse to run as root, so when xtask runs as root they run as
//!   the package's `postgres` user (`runuser`), in a directory given to that user.
//! - The cluster: superuser `vaultdb` with a random password (scram-sha-256 over TCP), TLS
//!   on with a certificate for `127.0.0.1` signed by a CA made for the run (openssl), no
//!   fsync (a test cluster), listening on 127.0.0.1 only, its socket in the directory.
//! - The server runs under the same watchdog as the emulators (`emulators.rs`), so it stops
//!   whenever xtask exits; [`Postgres::stop`] (called on drop) stops it and removes the
//!   directory.
//!
//! The tests get two URLs: `VAULTDB_TEST_POSTGRES_URL` (`sslmode=disable`) and
//! `VAULTDB_TEST_POSTGRES_TLS_URL` (`sslmode=verify-full`, `sslrootcert` the run's CA), and
//! `VAULTDB_TEST_POSTGRES_CA`, the CA's path.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::emulators::{free_port, spawn_watched, wait_started};
use crate::tail_file;
use crate::tools::emulators::EmulatorTools;

/// The cluster's superuser.
const USER: &str = "vaultdb";

/// A running throwaway cluster.
pub(super) struct Postgres {
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// `sslmode=disable`.
    pub(super) url: String,
    /// `sslmode=verify-full` against the run's CA.
    pub(super) tls_url: String,
    /// The CA certificate that signed the server's.
    pub(super) ca: PathBuf,
    /// The major version, for the summary.
    pub(super) version: String,
}

impl Postgres {
    /// Creates the cluster and starts it; returns once it accepts connections.
    pub(super) fn start(tools: &EmulatorTools) -> Result<Self, String> {
        let bin = crate::tools::postgres::server_bin()?;
        let version = bin
            .parent()
            .and_then(|p| p.file_name())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("vaultdb-itest-postgres-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let log = tools.logs.join("postgres.log");
        fs::write(&log, b"").map_err(|e| format!("{}: {e}", log.display()))?;
        let port = free_port()?;
        let mut pg = Self {
            dir: dir.clone(),
            log: log.clone(),
            child: None,
            stdin: None,
            url: String::new(),
            tls_url: String::new(),
            ca: dir.join("tls/ca.pem"),
            version,
        };
        let as_root = is_root();
        let owner = if as_root { Some(postgres_ids()?) } else { None };
        for sub in ["", "socket", "tls"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&d, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", d.display()))?;
            }
        }

        let password = random_hex()?;
        let pwfile = dir.join("pwfile");
        write_owned(&pwfile, password.as_bytes(), owner)?;
        make_certificates(&dir.join("tls"), owner, &log)?;

        let mut initdb = server_command(&bin.join("initdb"), as_root);
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run_logged("initdb", initdb, &log)?;

        let tls = dir.join("tls");
        let mut postgres = server_command(&bin.join("postgres"), as_root);
        postgres
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.join("socket"))
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=300", "-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", tls.join("server.pem").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", tls.join("server.key").display()));
        let out = fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = spawn_watched(
            "vaultdb-postgres",
            "postgres",
            postgres.get_program(),
            postgres.get_args(),
            out,
        )?;
        pg.stdin = child.stdin.take();
        let took = wait_started(
            "postgres",
            pg.child.insert(child),
            &log,
            Duration::from_secs(60),
            &format!("accept connections on port {port}"),
            || {
                Command::new(bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "2"])
                    .status()
                    .is_ok_and(|s| s.success())
            },
        )?;
        println!(
            "xtask: itest: postgres {} up on 127.0.0.1:{port} after {:.1}s",
            pg.version,
            took.as_secs_f64()
        );
        pg.url = format!("postgres://{USER}:{password}@127.0.0.1:{port}/postgres?sslmode=disable");
        pg.tls_url = format!(
            "postgres://{USER}:{password}@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
            pg.ca.display()
        );
        Ok(pg)
    }

    /// Stops the server (SIGTERM to the watchdog's group, SIGKILL after 10 s) and removes
    /// the directory.
    pub(super) fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let pgid = format!("-{}", child.id());
            let started = Instant::now();
            let mut signalled = false;
            loop {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                if !signalled && started.elapsed() > Duration::from_secs(2) {
                    let _ = Command::new("kill").args(["-TERM", "--", &pgid]).status();
                    signalled = true;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ =
                Command::new("kill").args(["-KILL", "--", &pgid]).stderr(Stdio::null()).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// The end of the server's log.
    pub(super) fn print_log(&self) {
        println!(
            "xtask: ---- last lines of {} ----\n{}",
            self.log.display(),
            tail_file(&self.log, 60)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().ok().is_some_and(|o| o.stdout == b"0\n")
}

/// The `postgres` user's uid and gid (Debian's package creates it).
fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "no `postgres` user: is Debian's postgresql package installed?".into())
    };
    Ok((id("-u")?, id("-g")?))
}

/// `program`, run as the `postgres` user when xtask runs as root.
fn server_command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Writes `data` to `path`, mode 0600, owned by `owner` if given.
fn write_owned(path: &Path, data: &[u8], owner: Option<(u32, u32)>) -> Result<(), String> {
    fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir` (openssl).
fn make_certificates(dir: &Path, owner: Option<(u32, u32)>, log: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| {
        let mut c = Command::new("openssl");
        c.current_dir(dir).args(args);
        c
    };
    run_logged(
        "openssl (CA)",
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=vaultdb itest CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]),
        log,
    )?;
    run_logged(
        "openssl (server key)",
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]),
        log,
    )?;
    fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        .map_err(|e| e.to_string())?;
    run_logged(
        "openssl (server certificate)",
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]),
        log,
    )?;
    for file in ["server.key", "server.pem"] {
        let data = fs::read(dir.join(file)).map_err(|e| e.to_string())?;
        write_owned(&dir.join(file), &data, owner)?;
    }
    Ok(())
}

/// Runs `cmd` with its output appended to `log`; on failure, the error quotes the log.
fn run_logged(name: &str, mut cmd: Command, log: &Path) -> Result<(), String> {
    let out = fs::OpenOptions::new()
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status}); log {}:\n{}", log.display(), tail_file(log, 30)))
    }
}

/// 32 random hex digits (the kernel's generator): the cluster's password.
fn random_hex() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
