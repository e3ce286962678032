//! The `vaultdb` command line end to end, in a temporary working directory: the embedded
//! default, `init`, every record command, and bad input that must fail with one line and
//! write nothing.

mod common;

use std::path::Path;

use common::{
    assert_one_line_error, assert_prints, snapshot, two_fs_and, vaultdb, vaultdb_fs_config, walk,
};
use predicates::prelude::*;

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

/// `init --mode compact` makes a compact store: its shares are about half a shamir
/// store's, and the mode cannot be changed afterwards by editing the file.
#[test]
fn init_mode_compact_makes_a_compact_store() {
    let sizes = |mode: &str| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        vaultdb(d).args(["init", "--mode", mode]).assert().success();
        let text = std::fs::read_to_string(d.join("vaultdb.toml")).unwrap();
        assert_eq!(text.contains("\nmode = \"compact\"\n"), mode == "compact");
        let data = "x".repeat(200_000);
        vaultdb(d).args(["put", "big", "-"]).write_stdin(data.clone()).assert().success();
        vaultdb(d).args(["get", "big"]).assert().success().stdout(data);
        let mut stored = 0;
        let mut stack = vec![d.join("vaultdb-data/disk-1")];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else if !e.path().to_string_lossy().contains("keyring") {
                    stored += m.len();
                }
            }
        }
        if mode == "compact" {
            let edited = text.replace("mode = \"compact\"", "mode = \"shamir\"");
            std::fs::write(d.join("vaultdb.toml"), edited).unwrap();
            let out = vaultdb(d).args(["get", "big"]).output().unwrap();
            assert_one_line_error(&out, "INVALID_CONFIG", "a compact store opened as shamir");
        }
        stored
    };
    let (shamir, compact) = (sizes("shamir"), sizes("compact"));
    assert!(shamir > 200_000 && compact < shamir * 6 / 10, "{shamir} {compact}");
    let dir = tempfile::tempdir().unwrap();
    let out = vaultdb(dir.path()).args(["init", "--mode", "short"]).output().unwrap();
    assert!(!out.status.success());
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
    let with_env = |args: &[&'static str], env, code, says| Case {
        args: args.to_vec(),
        env: Some(env),
        code,
        says,
    };
    let cases = vec![
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
        with_env(&["list"], ("VAULTDB_THRESHOLD", "4"), "INVALID_CONFIG", "threshold 4"),
        with_env(&["list"], ("VAULTDB_THRESHOLD", "two"), "INVALID_CONFIG", "VAULTDB_THRESHOLD"),
        with_env(&["serve"], ("VAULTDB_LISTEN", "localhost"), "INVALID_CONFIG", "server.listen"),
        // Plain HTTP beyond loopback is refused (tokens in the clear) unless allowed.
        case(&["serve", "--listen", "0.0.0.0:0"], "INVALID_CONFIG", "allow_plain_http"),
        with_env(
            &["serve"],
            ("VAULTDB_ALLOW_PLAIN_HTTP", "maybe"),
            "INVALID_CONFIG",
            "VAULTDB_ALLOW_PLAIN_HTTP",
        ),
    ];

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

#[test]
fn a_backend_that_hangs_costs_each_command_seconds_not_call_timeouts() {
    // A TCP server that accepts connections and never answers: a cloud endpoint whose
    // requests neither succeed nor fail (a blackholed region).
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blackhole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in blackhole.incoming() {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Default settings (W = N), but a call timeout of 60 s, so that waiting for one call of
    // the hung backend shows plainly: each command took 2 to 3 minutes before the fix.
    let config = |third: &str| {
        let cfg = format!(
            "threshold = 2\ndata_dir = \"data\"\n[timeouts]\ncall = \"60s\"\n\
             [[backends]]\nkind = \"fs\"\nid = \"d1\"\npath = \"d1\"\n\
             [[backends]]\nkind = \"fs\"\nid = \"d2\"\npath = \"d2\"\n\
             [[backends]]\nid = \"cloud\"\n{third}"
        );
        let path = d.join("hang.toml");
        std::fs::write(&path, cfg).unwrap();
        path.to_string_lossy().into_owned()
    };
    let cfg = config("kind = \"fs\"\npath = \"d3\"\n");
    vaultdb(d).args(["--config", &cfg, "put", "r1", "-"]).write_stdin("one").assert().success();
    let cfg = config(&format!(
        "kind = \"minio\"\nendpoint = \"http://127.0.0.1:{port}\"\nbucket = \"b\"\n"
    ));
    let commands =
        [&["get", "r1"][..], &["list"], &["stat", "missing"], &["status"], &["delete", "r1"]];
    for args in commands {
        let start = std::time::Instant::now();
        let out = vaultdb(d)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .timeout(std::time::Duration::from_secs(170))
            .output()
            .unwrap();
        let took = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Well under one call timeout (60 s); measured 11 to 16 s, 5 of them the audit
        // checkpoint's own bound and 5 the wait for background work at exit.
        assert!(took < std::time::Duration::from_secs(45), "{args:?} took {took:?}: {stderr}");
        match args[0] {
            "get" => assert_eq!(stdout, "one", "{stderr}"),
            "list" => assert_eq!(stdout.trim(), "r1", "{stderr}"),
            "stat" => assert!(stderr.contains("RECORD_NOT_FOUND"), "{stderr}"),
            // Degraded, not failed: two of three up, the hung one named (it took 70 s).
            "status" => {
                assert!(out.status.success(), "{stderr}");
                assert!(stdout.contains("2 of 3 backends up"), "{stdout}");
                assert!(stdout.contains("no answer"), "{stdout}");
            }
            _ => assert!(out.status.success(), "{args:?}: {stderr}"),
        }
    }
}
