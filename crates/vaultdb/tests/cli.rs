//! The `vaultdb` command line end to end, in a temporary working directory: the embedded
//! default, `init`, every record command, and bad input that must fail with one line and
//! write nothing.

mod common;

use std::path::Path;

use common::{assert_prints, snapshot, vaultdb};
use predicates::prelude::*;

/// The warning logged (on standard error) for each backend that cannot be built.
const CANNOT_BE_BUILT: &str = " WARN vaultdb::config::backends: backend cannot be built";

/// Checks a failed run: non-zero exit, empty stdout, exactly one stderr line
/// `error: <code>: ...` (besides the warnings about backends that cannot be built).
fn assert_one_line_error(out: &std::process::Output, code: &str, what: &str) {
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

#[test]
fn embedded_default_put_get_list_delete_status_scrub() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("report.bin"), [0u8, 1, 2, 255, 10, 13]).unwrap();

    // put from a file, and from standard input (explicit `-` and implicit).
    assert_prints(d, &["put", "report", "report.bin"], &["on 3 of 3 backends"]);
    vaultdb(d)
        .args(["put", "greeting", "-", "--json-input"])
        .write_stdin("{\"hello\": \"world\"}")
        .assert()
        .success();
    vaultdb(d).args(["put", "plain"]).write_stdin("from stdin").assert().success();
    for disk in ["disk-1", "disk-2", "disk-3"] {
        assert!(d.join("vaultdb-data").join(disk).is_dir(), "{disk} created under ./vaultdb-data");
    }

    vaultdb(d)
        .args(["get", "report"])
        .assert()
        .success()
        .stdout(predicate::eq(&[0u8, 1, 2, 255, 10, 13][..]));
    vaultdb(d).args(["get", "greeting"]).assert().success().stdout("{\"hello\": \"world\"}");
    vaultdb(d).args(["get", "plain", "-o", "out.txt"]).assert().success();
    assert_eq!(std::fs::read_to_string(d.join("out.txt")).unwrap(), "from stdin");

    vaultdb(d).arg("list").assert().success().stdout("greeting\nplain\nreport\n");

    assert_prints(d, &["status"], &["3 of 3 backends up, margin 1", "disk-2"]);
    assert_prints(d, &["scrub"], &["scrubbed 3 record(s)"]);

    assert_prints(d, &["delete", "plain"], &["deleted"]);
    let out = vaultdb(d).args(["get", "plain"]).output().unwrap();
    assert_one_line_error(&out, "RECORD_NOT_FOUND", "get after delete");
    let out = vaultdb(d).args(["delete", "plain"]).output().unwrap();
    assert_one_line_error(&out, "RECORD_NOT_FOUND", "delete twice");
    vaultdb(d).arg("list").assert().success().stdout("greeting\nreport\n");

    // Every command above left an audit line, and the chain verifies.
    assert_prints(d, &["audit", "verify"], &["chain intact"]);
    let log = std::fs::read_to_string(d.join("vaultdb-data/audit.jsonl")).unwrap();
    assert!(
        !log.contains("greeting") && !log.contains("report") && !log.contains("hello"),
        "no ids or data in the audit log"
    );
}

#[test]
fn init_writes_a_config_with_only_the_token_hash() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = vaultdb(d).arg("init").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("VAULTDB_TOKEN="))
        .expect("init prints the token")
        .to_owned();
    let text = std::fs::read_to_string(d.join("vaultdb.toml")).unwrap();
    assert!(!text.contains(&token), "the token itself is not stored");
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    assert!(text.contains(&format!("sha256 = \"{hash}\"")), "its hash is");
    assert!(text.contains("threshold = 2"));
    assert_eq!(text.lines().filter(|l| l.starts_with("[[backends]]")).count(), 3);
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 10, "the file is commented");

    // A second init refuses to overwrite, and changes nothing.
    let out = vaultdb(d).arg("init").output().unwrap();
    assert_one_line_error(&out, "INVALID_CONFIG", "second init");
    assert_eq!(std::fs::read_to_string(d.join("vaultdb.toml")).unwrap(), text);

    // The file is picked up from the working directory.
    vaultdb(d).args(["put", "k", "-"]).write_stdin("v").assert().success();
    vaultdb(d).args(["get", "k"]).assert().success().stdout("v");
    assert!(d.join("vaultdb-data/disk-1").is_dir());

    vaultdb(d).args(["init", "--force"]).assert().success();
    assert_ne!(std::fs::read_to_string(d.join("vaultdb.toml")).unwrap(), text, "a new token");
}

#[test]
fn config_flag_env_and_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("etc")).unwrap();
    std::fs::write(
        d.join("etc/vdb.toml"),
        "threshold = 2\ndata_dir = \"../store\"\n\
         [[backends]]\nkind = \"fs\"\nid = \"a\"\npath = \"a\"\n\
         [[backends]]\nkind = \"fs\"\nid = \"b\"\npath = \"b\"\n",
    )
    .unwrap();
    vaultdb(d)
        .args(["--config", "etc/vdb.toml", "put", "x", "-"])
        .write_stdin("1")
        .assert()
        .success();
    assert!(
        d.join("store/a").is_dir() && d.join("store/b").is_dir(),
        "paths are relative to data_dir, itself relative to the file"
    );
    vaultdb(d)
        .env("VAULTDB_CONFIG", "etc/vdb.toml")
        .args(["get", "x"])
        .assert()
        .success()
        .stdout("1");

    // VAULTDB_DATA_DIR moves the embedded default's data.
    vaultdb(d)
        .env("VAULTDB_DATA_DIR", "elsewhere")
        .args(["put", "y", "-"])
        .write_stdin("2")
        .assert()
        .success();
    assert!(d.join("elsewhere/disk-3").is_dir());
    assert!(!d.join("vaultdb-data").exists());

    // The help documents the environment.
    vaultdb(d).arg("--help").assert().success().stdout(
        predicate::str::contains("VAULTDB_DATA_DIR")
            .and(predicate::str::contains("VAULTDB_LISTEN")),
    );
}

#[test]
fn bad_input_fails_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // In a fresh directory, a failed first command creates no data directory at all.
    let out = vaultdb(d).args(["put", "x", "missing.bin"]).output().unwrap();
    assert_one_line_error(&out, "INVALID_INPUT", "missing file in a fresh dir");
    assert!(!d.join("vaultdb-data").exists(), "nothing created");

    vaultdb(d).args(["put", "existing", "-"]).write_stdin("data").assert().success();
    std::fs::create_dir(d.join("a-directory")).unwrap();
    std::fs::write(d.join("not.json"), "{not json").unwrap();
    let two = |extra: &str| {
        format!(
            "{extra}\n[[backends]]\nkind = \"fs\"\nid = \"disk-1\"\npath = \"disk-1\"\n\
             [[backends]]\nkind = \"fs\"\nid = \"disk-2\"\npath = \"disk-2\"\n"
        )
    };
    let configs = [
        ("malformed.toml", "threshold = = 2\n".to_owned()),
        ("unknown-kind.toml", two("threshold = 2").replacen("\"fs\"", "\"ftp\"", 1)),
        ("unknown-field.toml", two("threshold = 2\nthreshhold = 2")),
        ("k-too-big.toml", two("threshold = 3")),
        ("k-one.toml", two("threshold = 1")),
        (
            // A new store (its own directory) over an S3 backend whose key is not set.
            "s3.toml",
            two("threshold = 2")
                .replacen(
                    "kind = \"fs\"\nid = \"disk-1\"\npath = \"disk-1\"",
                    "kind = \"s3\"\nid = \"aws\"\nbucket = \"my-bucket\"\nregion = \"us-west-2\"\n\
                     access_key_id_env = \"VAULTDB_CLI_TEST_UNSET_KEY_ID\"",
                    1,
                )
                .replacen("path = \"disk-2\"", "path = \"s3-disk-2\"", 1),
        ),
        (
            "s3-http.toml",
            two("threshold = 2").replacen(
                "kind = \"fs\"\nid = \"disk-1\"\npath = \"disk-1\"",
                "kind = \"s3\"\nid = \"aws\"\nbucket = \"my-bucket\"\n\
                 endpoint = \"http://s3.example.invalid\"",
                1,
            ),
        ),
    ];
    for (name, text) in &configs {
        std::fs::write(d.join(name), text).unwrap();
    }
    let data = d.join("vaultdb-data");
    let before = snapshot(&data);
    assert!(before.len() > 3, "the store holds something");

    struct Case {
        args: Vec<&'static str>,
        env: Option<(&'static str, &'static str)>,
        code: &'static str,
        says: &'static str,
    }
    let case =
        |args: &[&'static str], code, says| Case { args: args.to_vec(), env: None, code, says };
    let mut cases = vec![
        case(&["put"], "USAGE_ERROR", "<ID>"),
        case(&["get"], "USAGE_ERROR", "<ID>"),
        case(&["frobnicate"], "USAGE_ERROR", "unrecognized subcommand"),
        case(&["put", "x", "missing.bin"], "INVALID_INPUT", "cannot read missing.bin"),
        case(&["put", "x", "a-directory"], "INVALID_INPUT", "cannot read a-directory"),
        case(&["put", "x", "not.json", "--json-input"], "INVALID_INPUT", "not valid JSON"),
        case(&["put", "", "-"], "INVALID_INPUT", "record id is empty"),
        case(&["get", "bad\u{1}id"], "INVALID_INPUT", "control character"),
        case(&["delete", ""], "INVALID_INPUT", "record id is empty"),
        case(&["--config", "nope.toml", "list"], "INVALID_CONFIG", "cannot read config nope.toml"),
        case(&["--config", "malformed.toml", "list"], "INVALID_CONFIG", "line 1"),
        case(
            &["--config", "unknown-kind.toml", "put", "x", "-"],
            "INVALID_CONFIG",
            "unknown variant `ftp`",
        ),
        case(
            &["--config", "unknown-field.toml", "list"],
            "INVALID_CONFIG",
            "unknown field `threshhold`",
        ),
        case(
            &["--config", "k-too-big.toml", "get", "existing"],
            "INVALID_CONFIG",
            "larger than the number of backends",
        ),
        case(&["--config", "k-one.toml", "list"], "INVALID_CONFIG", "at least 2"),
        // Cloud backends: a secret variable that is not set, or a configuration the crate
        // refuses (plain http needs allow_http), fails that backend's calls, naming the
        // variable or the key (here the one other backend is not enough, and nothing is
        // written).
        case(
            &["--config", "s3.toml", "list"],
            "INSUFFICIENT_SHARES",
            "backend \"aws\" (s3): access_key_id_env names the environment variable \
             VAULTDB_CLI_TEST_UNSET_KEY_ID, which is not set",
        ),
        // (This file's 2-of-2 does not match the store's 2-of-3, which the other backend's
        // keyring share tells; the warning names the backend that cannot be built.)
        case(
            &["--config", "s3-http.toml", "put", "x", "-"],
            "INVALID_CONFIG",
            "backend \"aws\" (s3): S3 configuration: endpoint http://s3.example.invalid is \
             plain http; set allow_http",
        ),
    ];
    cases.push(Case {
        args: vec!["list"],
        env: Some(("VAULTDB_THRESHOLD", "4")),
        code: "INVALID_CONFIG",
        says: "threshold 4",
    });
    cases.push(Case {
        args: vec!["list"],
        env: Some(("VAULTDB_THRESHOLD", "two")),
        code: "INVALID_CONFIG",
        says: "VAULTDB_THRESHOLD",
    });
    cases.push(Case {
        args: vec!["serve"],
        env: Some(("VAULTDB_LISTEN", "localhost")),
        code: "INVALID_CONFIG",
        says: "server.listen",
    });
    // Plain HTTP beyond loopback is refused (tokens in the clear) unless allowed.
    cases.push(Case {
        args: vec!["serve", "--listen", "0.0.0.0:0"],
        env: None,
        code: "INVALID_CONFIG",
        says: "allow_plain_http",
    });
    cases.push(Case {
        args: vec!["serve"],
        env: Some(("VAULTDB_ALLOW_PLAIN_HTTP", "maybe")),
        code: "INVALID_CONFIG",
        says: "VAULTDB_ALLOW_PLAIN_HTTP",
    });

    for c in cases {
        let mut cmd = vaultdb(d);
        cmd.args(&c.args).write_stdin("some data");
        if let Some((k, v)) = c.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let what = format!("{:?} {:?}", c.args, c.env);
        assert_one_line_error(&out, c.code, &what);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(c.says), "{what}: {stderr:?} should say {:?}", c.says);
        assert_eq!(snapshot(&data), before, "{what}: the data directory is unchanged");
    }
    vaultdb(d).args(["get", "existing"]).assert().success().stdout("data");
}

/// Replaces a backend's directory with a symlink to itself: every call to it fails with
/// "too many levels of symbolic links" (file permissions would not stop root).
fn break_backend(d: &Path, disk: &str) {
    let p = d.join("vaultdb-data").join(disk);
    std::fs::rename(&p, d.join(format!("{disk}-away"))).unwrap();
    std::os::unix::fs::symlink(disk, &p).unwrap();
}

#[test]
fn status_and_reads_with_backends_down() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    vaultdb(d).args(["put", "r1", "-"]).write_stdin("one").assert().success();
    vaultdb(d).args(["put", "r2", "-"]).write_stdin("two").assert().success();

    break_backend(d, "disk-3");
    assert_prints(d, &["status"], &["2 of 3 backends up, margin 0", "DOWN"]);
    // The read succeeds from the other two. (With hedging on, the default, it does not wait
    // for a backend whose listing it does not need, so it may not notice disk-3 is broken:
    // `status` and writes do.)
    vaultdb(d).args(["get", "r1"]).assert().success().stdout("one");
    vaultdb(d)
        .args(["put", "r3", "-"])
        .write_stdin("three")
        .assert()
        .failure()
        .stderr(predicate::str::contains("disk-3"));

    break_backend(d, "disk-2");
    let out = vaultdb(d).arg("status").output().unwrap();
    assert!(!out.status.success(), "status fails below the threshold");
    assert!(String::from_utf8_lossy(&out.stdout).contains("DOWN"), "and still shows the backends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().count() == 1 && stderr.starts_with("error: INSUFFICIENT_SHARES: "),
        "{stderr}"
    );
    let out = vaultdb(d).args(["get", "r1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: INSUFFICIENT_SHARES: "));
}

/// A 2-of-3 configuration (write quorum 2) over fs backends `d1`, `d2` under `d/data` and a
/// third backend `gcp` given by `third` (its section's lines after `id`); written to
/// `d/broken.toml`, whose path is returned.
fn two_fs_and(d: &Path, third: &str) -> String {
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

#[test]
fn a_backend_that_cannot_be_built_or_authenticate_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The store is made over three directories (the keyring records ids, not kinds) ...
    let cfg = two_fs_and(d, "kind = \"fs\"\npath = \"d3\"\n");
    vaultdb(d).args(["--config", &cfg, "put", "r1", "-"]).write_stdin("one").assert().success();

    // ... then its third backend becomes a GCS bucket, twice unusable:
    let broken = [
        // A configuration the crate refuses (plain http without allow_http), with a secret
        // in the environment that must not show.
        (
            "kind = \"gcs\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9\"\n\
             service_account_json_env = \"VAULTDB_TEST_SA_JSON\"\n",
            "allow_http",
        ),
        // Credentials that cannot be loaded (the file does not exist): the backend is built,
        // and its calls fail.
        (
            "kind = \"gcs\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:9\"\n\
             allow_http = true\nservice_account_file = \"no-such-dir/sa.json\"\n",
            "credentials",
        ),
    ];
    let secret = "PRIVATE-KEY-0123456789";
    for (i, (third, why)) in broken.into_iter().enumerate() {
        let cfg = two_fs_and(d, third);
        let run = |args: &[&str], stdin: &str| {
            let out = vaultdb(d)
                .arg("--config")
                .arg(&cfg)
                .args(args)
                .env("VAULTDB_TEST_SA_JSON", format!("{{\"private_key\": \"{secret}\"}}"))
                .write_stdin(stdin.to_owned())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!stderr.contains(secret), "{args:?}: the secret shows: {stderr}");
            assert!(out.status.success(), "{args:?} (case {i}) failed: {stderr}");
            (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
        };
        let (out, _) = run(&["get", "r1"], "");
        assert_eq!(out, "one", "case {i}");
        let id = format!("r{}", i + 2);
        run(&["put", &id, "-"], "written degraded");
        let (out, _) = run(&["get", &id], "");
        assert_eq!(out, "written degraded", "case {i}");
        let (out, stderr) = run(&["status"], "");
        assert!(out.contains("2 of 3 backends up"), "case {i}: {out}");
        let row = out.lines().find(|l| l.starts_with("gcp")).unwrap_or_default();
        assert!(row.contains("DOWN") && row.contains(why), "case {i}: {out}");
        if i == 0 {
            // The backend that could not be built is named in a warning.
            assert!(stderr.contains("gcp") && stderr.contains("cannot be built"), "{stderr}");
        }
    }
}

#[test]
fn repair_and_scrub_restore_a_wiped_backend() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..5 {
        vaultdb(d)
            .args(["put", &format!("rec-{i}"), "-"])
            .write_stdin(format!("data {i}"))
            .assert()
            .success();
    }
    let disk2 = d.join("vaultdb-data/disk-2");
    std::fs::remove_dir_all(&disk2).unwrap();
    std::fs::create_dir(&disk2).unwrap();
    // A crashed write's temporary file, two hours old, and a fresh one (a write in flight).
    let tmp = d.join("vaultdb-data/disk-1/.tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let stale = std::fs::File::create(tmp.join("crashed")).unwrap();
    stale
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    drop(stale);
    std::fs::write(tmp.join("in-flight"), "x").unwrap();

    assert_prints(d, &["repair", "rec-0"], &["1 share(s) restored", "disk-2"]);
    vaultdb(d)
        .arg("scrub")
        .assert()
        .success()
        .stdout(predicate::str::contains("scrubbed 5 record(s)"))
        .stdout(predicate::str::contains("0 share(s) restored").not());
    assert!(!tmp.join("crashed").exists(), "scrub removes stale temporary files");
    assert!(tmp.join("in-flight").exists(), "and keeps fresh ones");
    // With disk-3 gone too, every record reads from disk-1 and the restored disk-2.
    let disk3 = d.join("vaultdb-data/disk-3");
    std::fs::rename(&disk3, d.join("disk-3-away")).unwrap();
    for i in 0..5 {
        vaultdb(d)
            .args(["get", &format!("rec-{i}")])
            .assert()
            .success()
            .stdout(format!("data {i}"));
    }
}

#[test]
fn large_files_stream_through_segments_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1 KiB segments, so a 100 KiB file is a hundred segments.
    let cfg = vaultdb_fs_config(d, "segment_size = \"1KiB\"\nmax_inflight = \"16KiB\"\n");
    let data: Vec<u8> = (0..100 * 1024 + 17).map(|i| (i * 7 + i / 1024) as u8).collect();
    std::fs::write(d.join("big.bin"), &data).unwrap();
    vaultdb(d).args(["--config", &cfg, "put", "big", "big.bin"]).assert().success();
    let segments = walk(&d.join("data")).iter().filter(|p| p.contains("-000")).count();
    assert_eq!(segments, 3 * 101, "101 segments on each of 3 backends");
    vaultdb(d).args(["--config", &cfg, "get", "big", "-o", "back.bin"]).assert().success();
    assert!(std::fs::read(d.join("back.bin")).unwrap() == data);
    let out = vaultdb(d).args(["--config", &cfg, "get", "big"]).output().unwrap();
    assert!(out.status.success() && out.stdout == data);

    // A corrupted segment on two of three backends: the read fails naming the segment,
    // and --output leaves no file behind.
    let mut hit = 0;
    for p in walk(&d.join("data")) {
        if p.ends_with("-00000042.o") && hit < 2 {
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[60] ^= 1;
            vaultdb_core::envelope::seal(&mut bytes);
            std::fs::write(&p, bytes).unwrap();
            hit += 1;
        }
    }
    assert_eq!(hit, 2);
    let out = vaultdb(d).args(["--config", &cfg, "get", "big", "-o", "bad.bin"]).output().unwrap();
    // (Tampering is also logged as a warning, so the error is the last stderr line.)
    assert!(!out.status.success() && out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: HMAC_FAILED: ") && last.contains("segment 66 of 101"),
        "{stderr}"
    );
    assert!(!d.join("bad.bin").exists(), "no partial output file");
}

/// Writes a config with three fs backends under `d/data` and `extra` top-level lines.
fn vaultdb_fs_config(d: &Path, extra: &str) -> String {
    let mut cfg = format!("threshold = 2\ndata_dir = \"data\"\n{extra}");
    for i in 1..=3 {
        cfg.push_str(&format!("\n[[backends]]\nkind = \"fs\"\nid = \"d{i}\"\npath = \"d{i}\"\n"));
    }
    let path = d.join("seg.toml");
    std::fs::write(&path, cfg).unwrap();
    path.to_string_lossy().into_owned()
}

/// Every file under `root`, as strings.
fn walk(root: &Path) -> Vec<String> {
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
fn status_of(out: &std::process::Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

#[test]
fn read_only_commands_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let read_only: [&[&str]; 9] = [
        &["list"],
        &["get", "x"],
        &["stat", "x"],
        &["delete", "x"],
        &["repair", "x"],
        &["status"],
        &["scrub"],
        &["audit", "verify"],
        &["--json", "list"],
    ];
    for args in read_only {
        let out = vaultdb(d).args(args).output().unwrap();
        assert_eq!(status_of(&out), 6, "{args:?}: STORE_NOT_FOUND's status");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if args[0] == "--json" {
            let v: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
            assert_eq!(v["error"]["code"], "STORE_NOT_FOUND", "{stderr}");
        } else {
            assert_one_line_error(&out, "STORE_NOT_FOUND", &format!("{args:?}"));
            // It names where it looked: the configuration and each backend.
            for says in ["embedded default", "vaultdb-data/disk-1", "vaultdb-data/disk-3"] {
                assert!(stderr.contains(says), "{args:?}: {stderr} should say {says}");
            }
        }
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "{args:?} created nothing");
    }

    // `put` creates it, saying so on standard error; later commands do not say it again.
    let out = vaultdb(d).args(["put", "a", "-"]).write_stdin("1").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("created a new store, 2-of-3 over disk-1, disk-2, disk-3"), "{stderr}");
    let out = vaultdb(d).args(["put", "b", "-"]).write_stdin("2").output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    vaultdb(d).arg("list").assert().success().stdout("a\nb\n");

    // A configuration file whose backends are empty is no store either.
    let cfg = vaultdb_fs_config(d, "");
    let out = vaultdb(d).args(["--config", &cfg, "get", "a"]).output().unwrap();
    assert_one_line_error(&out, "STORE_NOT_FOUND", "a file's empty backends");
    assert!(String::from_utf8_lossy(&out.stderr).contains("seg.toml"));
    assert!(!d.join("data").exists(), "nothing created");
}

#[test]
fn errors_have_their_own_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    vaultdb(d).args(["put", "a", "-"]).write_stdin("1").assert().success();
    // (status, code, command)
    let cases: [(i32, &str, &[&str]); 6] = [
        (2, "USAGE_ERROR", &["frobnicate"]),
        (2, "USAGE_ERROR", &["put"]),
        (3, "INVALID_CONFIG", &["--config", "missing.toml", "list"]),
        (4, "INVALID_INPUT", &["put", "x", "missing.bin"]),
        (5, "RECORD_NOT_FOUND", &["get", "nope"]),
        // repair of a record that does not exist says so, like get and delete.
        (5, "RECORD_NOT_FOUND", &["repair", "no-such-id"]),
    ];
    for (status, code, args) in cases {
        let out = vaultdb(d).args(args).output().unwrap();
        assert_one_line_error(&out, code, &format!("{args:?}"));
        assert_eq!(status_of(&out), status, "{args:?}");
    }
    let log = std::fs::read_to_string(d.join("vaultdb-data/audit.jsonl")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"record.repair\"") && l.contains("RECORD_NOT_FOUND")),
        "the repair's audit line says RECORD_NOT_FOUND"
    );
}

#[test]
fn get_into_a_closed_pipe_stops_quietly_with_status_141() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Three 4 MiB segments: the pipe closes while the first is written out.
    let data: Vec<u8> = (0..9 << 20).map(|i: u32| (i % 251) as u8).collect();
    vaultdb(d).args(["put", "big", "-"]).write_stdin(data).assert().success();
    let bin = env!("CARGO_BIN_EXE_vaultdb");
    let out = std::process::Command::new("bash")
        .current_dir(d)
        .args([
            "-c",
            &format!("'{bin}' get big | head -c 100 | wc -c; echo \"${{PIPESTATUS[0]}}\""),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["100", "141"], "head got 100 bytes; vaultdb exited 141");
    assert!(out.stderr.is_empty(), "nothing on stderr: {}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(d.join("vaultdb-data/audit.jsonl")).unwrap();
    assert!(log.lines().last().unwrap().contains("CLIENT_CLOSED"), "{log}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_put_removes_what_it_wrote_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Small segments and a small in-flight budget: the put takes a while.
    let cfg = vaultdb_fs_config(d, "segment_size = \"64KiB\"\nmax_inflight = \"256KiB\"\n");
    vaultdb(d).args(["--config", &cfg, "put", "kept", "-"]).write_stdin("k").assert().success();
    let files_before = walk(&d.join("data")).len();
    let data = vec![7u8; 64 << 20];
    std::fs::write(d.join("big.bin"), &data).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_vaultdb"))
        .current_dir(d)
        .args(["--config", &cfg, "put", "big", "big.bin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once segments are on disk, Ctrl-C.
    let start = std::time::Instant::now();
    while walk(&d.join("data")).iter().filter(|p| p.contains("-000")).count() < 6 {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "no segment written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status_of(&out), 130, "{stderr}");
    assert!(stderr.lines().last().unwrap().starts_with("error: INTERRUPTED: "), "{stderr}");
    // What it wrote is gone: the files are those from before (keyring, the kept record).
    let left: Vec<String> =
        walk(&d.join("data")).into_iter().filter(|p| p.contains("-000")).collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
    assert_eq!(walk(&d.join("data")).len(), files_before);
    let log = std::fs::read_to_string(d.join("data/audit.jsonl")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(last.contains("\"record.put\"") && last.contains("\"INTERRUPTED\""), "{last}");
    vaultdb(d).args(["--config", &cfg, "list"]).assert().success().stdout("kept\n");
    assert_prints(d, &["--config", &cfg, "audit", "verify"], &["chain intact"]);
}

#[test]
fn init_with_backend_urls_writes_a_working_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let abs = d.join("elsewhere/third");
    let third = format!("file://{}", abs.display());
    let out = vaultdb(d)
        .args(["init", "--threshold", "2", "--backend", "file://one", "--backend"])
        .arg("file://two")
        .args(["--backend", &third])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("created a new store, 2-of-3"));
    let text = std::fs::read_to_string(d.join("vaultdb.toml")).unwrap();
    assert!(text.contains("id = \"fs-one\"\nurl = \"file://one\""), "{text}");
    assert!(text.contains(&format!("id = \"fs-third\"\nurl = \"{third}\"")), "{text}");
    // Commented examples of every kind.
    for kind in ["file://", "s3://", "gs://", "az://", "minio+https://", "memory://"] {
        assert!(text.contains(&format!("# url = \"{kind}")), "an example of {kind}");
    }
    // It works: shares land in the three directories.
    vaultdb(d).args(["put", "k", "-"]).write_stdin("v").assert().success();
    vaultdb(d).args(["get", "k"]).assert().success().stdout("v");
    for dir in [d.join("vaultdb-data/one"), d.join("vaultdb-data/two"), abs] {
        assert!(!walk(&dir).is_empty(), "{} holds shares", dir.display());
    }
    // A bad URL is refused before anything is written.
    let e = tempfile::tempdir().unwrap();
    let out = vaultdb(e.path()).args(["init", "--backend", "ftp://x/y"]).output().unwrap();
    assert_one_line_error(&out, "INVALID_CONFIG", "unknown scheme");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme \"ftp\""));
    assert_eq!(std::fs::read_dir(e.path()).unwrap().count(), 0);
}

#[test]
fn json_output_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let json = |args: &[&str], stdin: Option<&str>| -> serde_json::Value {
        let mut cmd = vaultdb(d);
        cmd.arg("--json").args(args);
        if let Some(s) = stdin {
            cmd.write_stdin(s);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{args:?}: one line: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    };
    let v = json(&["init", "--no-create"], None);
    assert!(v["token"].as_str().unwrap().starts_with("vdb_") && v["store_created"] == false);
    let v = json(&["put", "a", "--meta", "owner=ops", "--meta", "tier=gold"], Some("hello"));
    assert_eq!(
        (v["id"].as_str(), v["size"].as_u64(), v["acks"].as_u64()),
        (Some("a"), Some(5), Some(3))
    );
    let version = v["version"].as_str().unwrap().to_owned();
    let v = json(&["stat", "a"], None);
    assert_eq!(v["version"], version.as_str());
    assert_eq!(v["metadata"], serde_json::json!({"owner": "ops", "tier": "gold"}));
    let v = json(&["put", "b", "--json-input"], Some("{\"x\":1}"));
    assert_eq!(v["id"], "b");
    assert_eq!(json(&["stat", "b"], None)["content_type"], "application/json");
    assert_eq!(json(&["list"], None)["ids"], serde_json::json!(["a", "b"]));
    let v = json(&["status"], None);
    assert_eq!(
        (v["k"].as_u64(), v["n"].as_u64(), v["margin"].as_i64()),
        (Some(2), Some(3), Some(1))
    );
    assert_eq!(v["backends"].as_array().unwrap().len(), 3);
    assert_eq!(json(&["repair", "a"], None)["version"], version.as_str());
    assert_eq!(json(&["scrub"], None)["records"], 2);
    assert_eq!(json(&["delete", "b"], None)["deleted"], true);
    assert!(json(&["audit", "verify"], None)["lines"].as_u64().unwrap() > 5);
    // Errors too, on standard error.
    let out = vaultdb(d).args(["--json", "get", "b"]).output().unwrap();
    assert_eq!(status_of(&out), 5);
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "RECORD_NOT_FOUND");
    // Bad metadata is bad input.
    let out = vaultdb(d).args(["put", "c", "--meta", "novalue"]).write_stdin("x").output().unwrap();
    assert_one_line_error(&out, "INVALID_INPUT", "--meta without =");
}

#[test]
fn completions_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (shell, says) in
        [("bash", "complete -F"), ("zsh", "#compdef vaultdb"), ("fish", "complete -c vaultdb")]
    {
        let out = vaultdb(d).args(["completions", shell]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(says), "{shell}: {text}");
        assert!(text.contains("json-input") && text.contains("completions"), "{shell}");
    }
    // A backend that cannot be built logs a warning: as one JSON object with --log-format json.
    let cfg = two_fs_and(
        d,
        "kind = \"s3\"\nbucket = \"b\"\naccess_key_id_env = \"VAULTDB_CLI_TEST_UNSET\"",
    );
    for args in [&["--log-format", "json"][..], &[]] {
        let mut cmd = vaultdb(d);
        cmd.args(["--config", &cfg]).args(args).args(["put", "x", "-"]).write_stdin("1");
        if args.is_empty() {
            cmd.env("VAULTDB_LOG_FORMAT", "json");
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warning = stderr.lines().find(|l| l.contains("cannot be built")).expect("a warning");
        let v: serde_json::Value =
            serde_json::from_str(warning).unwrap_or_else(|e| panic!("{e}: {warning}"));
        assert_eq!(v["level"], "WARN", "{warning}");
    }
}

#[test]
fn backends_from_the_environment_as_urls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let urls = "file://x, file://y file://z";
    vaultdb(d)
        .env("VAULTDB_BACKENDS", urls)
        .args(["put", "k", "-"])
        .write_stdin("v")
        .assert()
        .success();
    for sub in ["x", "y", "z"] {
        assert!(!walk(&d.join("vaultdb-data").join(sub)).is_empty(), "{sub} holds a share");
    }
    let out = vaultdb(d).env("VAULTDB_BACKENDS", urls).args(["--json", "status"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> =
        v["backends"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["fs-x", "fs-y", "fs-z"]);
    let out =
        vaultdb(d).env("VAULTDB_BACKENDS", "file://x gopher://y").arg("list").output().unwrap();
    assert_one_line_error(&out, "INVALID_CONFIG", "a bad URL in VAULTDB_BACKENDS");
    assert!(String::from_utf8_lossy(&out.stderr).contains("VAULTDB_BACKENDS: url \"gopher://y\""));
}
