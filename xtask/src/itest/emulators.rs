//! The running emulators: start each on a free 127.0.0.1 port under a watchdog, wait until
//! it answers HTTP, create its bucket; stop it (see the [module docs](super) for the
//! watchdog and the control port).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{BUCKET, S3S_KEYS};
use crate::tail_file;
use crate::tools::emulators::EmulatorTools;

/// Creates buckets and containers on the emulators (stdlib only).
const MKBUCKET_PY: &str = r#"
import base64, datetime, hashlib, hmac, sys, urllib.error, urllib.request

AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ACCOUNT = "devstoreaccount1"

def send(req):
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        if e.code == 409:
            return e.code  # exists already
        sys.exit(f"HTTP {e.code}: {body[:500]}")

def s3(url, name):  # moto accepts unsigned requests
    return send(urllib.request.Request(f"{url}/{name}", method="PUT", data=b""))

def gcs(url, name):
    data = ('{"name": "%s"}' % name).encode()
    return send(urllib.request.Request(f"{url}/storage/v1/b?project=test", method="POST",
        data=data, headers={"Content-Type": "application/json"}))

def azure(url, name):  # Create Container, SharedKey-signed, Azurite's path-style URLs
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    version = "2021-08-06"
    ctype = "application/octet-stream"  # urllib would add its own type if none were set
    headers = {"x-ms-date": date, "x-ms-version": version, "Content-Type": ctype}
    canon_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
    canon_resource = f"/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
    # VERB, Content-Encoding, -Language, -Length (empty for 0), -MD5, -Type, Date,
    # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
    fields = ["PUT", "", "", "", "", ctype, "", "", "", "", "", ""]
    to_sign = "\n".join(fields) + "\n" + canon_headers + canon_resource
    sig = base64.b64encode(hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(),
        hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    return send(urllib.request.Request(f"{url}/{ACCOUNT}/{name}?restype=container",
        method="PUT", data=b"", headers=headers))

kind, url, name = sys.argv[1:4]
{"s3": s3, "gcs": gcs, "azure": azure}[kind](url.rstrip("/"), name)
"#;

/// Runs each emulator under `sh`: the emulator gets /dev/null as stdin, a watcher subshell
/// reads fd 3 (the pipe from xtask) and stops the emulator when it closes.
pub(super) const WATCHDOG_SH: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
( read _ <&3; kill -TERM "$pid" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pid"; rc=$?
kill "$watcher" 2>/dev/null
exit $rc"#;

/// Starts `program args` under [`WATCHDOG_SH`] (named `label` in `ps`), its stdin the pipe
/// that stops it when xtask lets go, its output appended to `log`; `what` names it in errors.
pub(super) fn spawn_watched(
    label: &str,
    what: &str,
    program: impl AsRef<OsStr>,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    log: fs::File,
) -> Result<Child, String> {
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG_SH)
        .arg(label)
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log2)
        // Its own process group: the terminal's Ctrl-C goes to xtask and cargo, and the
        // group can be stopped as a whole.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))
}

/// Waits until `ready()` says that `what`, just started as `child` with its output in `log`,
/// is up, polling every 100 ms; returns how long it took. Fails quoting the log's tail if
/// `child` exits first, or after `limit` saying that it did not `do_what` ("answer on port
/// N") in time.
pub(super) fn wait_started(
    what: &str,
    child: &mut Child,
    log: &Path,
    limit: Duration,
    do_what: &str,
    mut ready: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let started = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{what} exited during startup ({status}); log {}:\n{}",
                log.display(),
                tail_file(log, 40)
            ));
        }
        if started.elapsed() > limit {
            return Err(format!("{what} did not {do_what} within {} s", limit.as_secs()));
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(started.elapsed())
}

/// One emulator: how to start it, and the running process.
struct Emulator {
    name: &'static str,
    port: u16,
    program: PathBuf,
    args: Vec<String>,
    /// An HTTP path that answers (any status) once the emulator is up.
    probe: &'static str,
    running: Option<Running>,
}

impl Emulator {
    /// `program` with the arguments `args(port)` for a free port, not started yet.
    fn new(
        name: &'static str,
        program: PathBuf,
        probe: &'static str,
        args: impl FnOnce(u16) -> Vec<String>,
    ) -> Result<Self, String> {
        let port = free_port()?;
        Ok(Self { name, port, program, args: args(port), probe, running: None })
    }
}

struct Running {
    child: Child,
    /// The watchdog's pipe: closing it stops the emulator.
    stdin: Option<ChildStdin>,
}

/// A command line's arguments: `line` split at white space (no argument holds any).
fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

pub(super) struct Emulators {
    pub(super) tools: EmulatorTools,
    all: Mutex<BTreeMap<&'static str, Emulator>>,
}

impl Emulators {
    pub(super) fn new(tools: EmulatorTools) -> Result<Self, String> {
        let emulators = [
            Emulator::new("s3", tools.moto(), "/moto-api/", |port| {
                args(&format!("-H 127.0.0.1 -p {port}"))
            })?,
            Emulator::new("gcs", tools.fake_gcs()?, "/storage/v1/b", |port| {
                args(&format!(
                    "-scheme http -host 127.0.0.1 -port {port} -backend memory \
                     -public-host 127.0.0.1:{port} -log-level warn"
                ))
            })?,
            Emulator::new("azure", tools.azurite(), "/devstoreaccount1?comp=list", |port| {
                args(&format!(
                    "--blobHost 127.0.0.1 --blobPort {port} --inMemoryPersistence \
                     --skipApiVersionCheck --loose --disableTelemetry"
                ))
            })?,
            Emulator::new("minio", tools.s3s_fs(), "/", |port| {
                let (key, secret) = S3S_KEYS;
                let mut a = args(&format!(
                    "--host 127.0.0.1 --port {port} --access-key {key} --secret-key {secret}"
                ));
                // The data directory last, as one argument (its path may hold spaces).
                a.push(tools.cache.join("s3s-data").display().to_string());
                a
            })?,
        ];
        let all: BTreeMap<_, _> = emulators.into_iter().map(|e| (e.name, e)).collect();
        // Fresh logs per run; restarts within the run append.
        for name in all.keys() {
            let _ = fs::write(tools.logs.join(format!("{name}.log")), b"");
        }
        Ok(Self { tools, all: Mutex::new(all) })
    }

    pub(super) fn url(&self, name: &str) -> String {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        format!("http://127.0.0.1:{}", all[name].port)
    }

    pub(super) fn start_all(&self) -> Result<(), String> {
        for name in ["s3", "gcs", "azure", "minio"] {
            self.start(name)?;
        }
        Ok(())
    }

    /// Starts `name` empty (a fresh in-memory store or data directory), waits until it
    /// answers, and creates the bucket.
    pub(super) fn start(&self, name: &str) -> Result<(), String> {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let emu = all.get_mut(name).ok_or_else(|| format!("no emulator named {name:?}"))?;
        if emu.running.is_some() {
            return Err(format!("{name} is already running"));
        }
        if name == "minio" {
            // s3s-fs keeps buckets as directories of its data directory.
            let data = self.tools.cache.join("s3s-data");
            let _ = fs::remove_dir_all(&data);
            fs::create_dir_all(data.join(BUCKET)).map_err(|e| e.to_string())?;
        }
        let log_path = self.tools.logs.join(format!("{name}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut child = spawn_watched("vaultdb-emulator", name, &emu.program, &emu.args, log)?;
        let stdin = child.stdin.take();
        let (port, probe) = (emu.port, emu.probe);
        let running = emu.running.insert(Running { child, stdin });
        let took = wait_started(
            name,
            &mut running.child,
            &log_path,
            Duration::from_secs(90),
            &format!("answer on port {port}"),
            || http_answers(port, probe),
        );
        let took = match took {
            Ok(took) => took,
            Err(e) => {
                if let Ok(Some(_)) = running.child.try_wait() {
                    emu.running = None;
                }
                return Err(e);
            }
        };
        println!("xtask: itest: {name} up on 127.0.0.1:{port} after {:.1}s", took.as_secs_f64());
        drop(all);
        let kind = match name {
            "s3" => "s3",
            "gcs" => "gcs",
            "azure" => "azure",
            _ => return Ok(()),
        };
        let out = Command::new(self.tools.python())
            .args(["-c", MKBUCKET_PY, kind, &self.url(name), BUCKET])
            .output()
            .map_err(|e| format!("creating the {name} bucket: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "creating the {name} bucket failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Stops `name`: closes the watchdog's pipe (the watchdog sends SIGTERM), then SIGTERM
    /// and, after 10 s, SIGKILL to the whole process group.
    pub(super) fn stop(&self, name: &str) -> Result<(), String> {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let emu = all.get_mut(name).ok_or_else(|| format!("no emulator named {name:?}"))?;
        let Some(mut running) = emu.running.take() else {
            return Err(format!("{name} is not running"));
        };
        drop(running.stdin.take());
        let pgid = running.child.id().to_string();
        let started = Instant::now();
        let mut signalled = false;
        loop {
            match running.child.try_wait() {
                Ok(Some(_)) => break,
                Err(e) => return Err(format!("waiting for {name}: {e}")),
                Ok(None) => {}
            }
            if !signalled && started.elapsed() > Duration::from_secs(2) {
                let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pgid}")]).status();
                signalled = true;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
                let _ = running.child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        // Anything the emulator itself started goes too (harmless if the group is gone).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        Ok(())
    }

    fn stop_all(&self) {
        let names: Vec<&'static str> = {
            let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
            all.values().filter(|e| e.running.is_some()).map(|e| e.name).collect()
        };
        for name in names {
            if let Err(e) = self.stop(name) {
                eprintln!("xtask: itest: stopping {name}: {e}");
            }
        }
    }

    pub(super) fn print_logs(&self) {
        for name in ["s3", "minio", "gcs", "azure"] {
            let path = self.tools.logs.join(format!("{name}.log"));
            println!("xtask: ---- last lines of {} ----\n{}", path.display(), tail_file(&path, 60));
        }
    }
}

/// Stops every emulator when dropped.
pub(super) struct StopGuard(pub(super) Arc<Emulators>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

/// A free port on 127.0.0.1 (bound and released; the emulator binds it right after).
pub(super) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// True if an HTTP server on `port` answers a GET of `path` (any status).
fn http_answers(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    matches!(s.read(&mut head), Ok(n) if n >= 5 && head.starts_with(b"HTTP/"))
}
