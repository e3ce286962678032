//! Running the test binaries against the emulators and counting their results.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::build::TestBinaries;
use super::emulators::Emulators;
use super::{BACKENDS, BUCKET, S3S_KEYS};

/// Runs each crate's tests with the emulators' variables; returns the summary table.
pub(super) fn run_tests(
    emus: &Emulators,
    control: &str,
    binaries: &TestBinaries,
    extra: &[(&str, String)],
) -> Result<String, String> {
    let mut vars: Vec<(&str, String)> = vec![
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
    vars.extend(extra.iter().cloned());
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
            "xtask: itest: {krate:<16} {emulator:<28} {passed:>3} passed {failed:>3} failed {:>6.1}s",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_test_results() {
        let text = "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured\n\
                    noise\n\
                    test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured\n";
        assert_eq!(count_results(text), (6, 2));
    }
}
