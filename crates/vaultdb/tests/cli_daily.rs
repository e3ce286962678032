//! The command line as a daily tool (issue 14), end to end through the binary: a store is
//! created only on purpose, an exit status per error code, a closed pipe, Ctrl-C during a
//! put, what a killed put leaves to scrub, `init --backend URL`, `--json` on every command,
//! completions and JSON logs, backends from `VAULTDB_BACKENDS`.

mod common;

use common::{
    assert_one_line_error, assert_prints, status_of, two_fs_and, vaultdb, vaultdb_fs_config, walk,
};

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

#[cfg(unix)]
#[test]
fn scrub_reports_what_a_killed_put_left_and_removes_it_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grace = std::time::Duration::from_secs(5);
    let cfg = vaultdb_fs_config(
        d,
        "segment_size = \"64KiB\"\nmax_inflight = \"256KiB\"\n[timeouts]\ngrace_period = \"5s\"\n",
    );
    vaultdb(d).args(["--config", &cfg, "put", "kept", "-"]).write_stdin("k").assert().success();
    std::fs::write(d.join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vaultdb"))
        .current_dir(d)
        .args(["--config", &cfg, "put", "big", "big.bin"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let segments = || walk(&d.join("data")).into_iter().filter(|p| p.contains("-000")).count();
    let start = std::time::Instant::now();
    while segments() < 6 {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "no segment written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Killed outright (or a second Ctrl-C): nothing cleans up after the put.
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = std::time::SystemTime::now();
    let left = segments();
    assert!(left >= 6, "{left}");

    // Within the grace period scrub keeps them, and says so: how many and until when.
    let scrub = |json: bool| {
        let mut cmd = vaultdb(d);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.args(["--config", &cfg, "scrub"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&scrub(true)).unwrap();
    assert_eq!(v["removed"], 0, "{v}");
    let pending = v["pending"].as_u64().unwrap();
    assert!(pending as usize >= left, "{v}: {left} segment objects on disk");
    let until = humantime::parse_rfc3339(v["pending_until"].as_str().unwrap()).unwrap();
    assert!(until > killed_at && until <= killed_at + grace, "{v}");
    let text = scrub(false);
    assert!(
        text.contains(&format!("{pending} object(s) of unfinished writes kept until")),
        "{text}"
    );
    vaultdb(d).args(["--config", &cfg, "list"]).assert().success().stdout("kept\n");

    // After it, scrub removes them and nothing is pending.
    let wait = until.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    std::thread::sleep(wait + std::time::Duration::from_millis(100));
    let v: serde_json::Value = serde_json::from_str(&scrub(true)).unwrap();
    assert!(v["removed"].as_u64().unwrap() >= pending, "{v}");
    assert_eq!((v["pending"].as_u64(), v["pending_until"].as_str()), (Some(0), None), "{v}");
    assert_eq!(segments(), 0);
    vaultdb(d).args(["--config", &cfg, "get", "kept"]).assert().success().stdout("k");
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
    // get: the record, its data in standard base64; with -o, the file's path instead.
    let v = json(&["get", "a"], None);
    assert_eq!((v["version"].as_str(), v["size"].as_u64()), (Some(version.as_str()), Some(5)));
    assert_eq!(v["metadata"], serde_json::json!({"owner": "ops", "tier": "gold"}));
    let b64 = v["data_base64"].as_str().unwrap().as_bytes();
    assert_eq!(data_encoding::BASE64.decode(b64).unwrap(), b"hello");
    let v = json(&["get", "a", "-o", "a.out"], None);
    assert_eq!((v["path"].as_str(), v.get("data_base64")), (Some("a.out"), None));
    assert_eq!(std::fs::read(d.join("a.out")).unwrap(), b"hello");
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

#[test]
fn an_endless_standard_input_is_cut_off_at_max_record_size() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = vaultdb_fs_config(d, "max_record_size = \"1MiB\"\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vaultdb"))
        .current_dir(d)
        .args(["--config", &cfg, "put", "big", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Up to 256 MiB, 64 KiB at a time; the put must stop reading long before.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut written = 0usize;
        while written < 256 << 20 && stdin.write_all(&chunk).is_ok() {
            written += chunk.len();
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    assert_one_line_error(&out, "INVALID_INPUT", "over max_record_size");
    assert!(written < 64 << 20, "it read {written} bytes of an input over its 1 MiB limit");
}

/// Runs `vaultdb ARGS` in `d` on a pseudo-terminal (util-linux's `script`), returning what
/// the terminal showed; `None` without `script`.
#[cfg(target_os = "linux")]
fn on_a_terminal(d: &std::path::Path, args: &str) -> Option<String> {
    let bin = env!("CARGO_BIN_EXE_vaultdb");
    let out = std::process::Command::new("script")
        .current_dir(d)
        .args(["-qec", &format!("'{bin}' {args}"), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "{args}: {}", String::from_utf8_lossy(&out.stdout));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(target_os = "linux")]
#[test]
fn put_and_get_of_large_data_show_a_progress_bar_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data: Vec<u8> = (0..48u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.join("big.bin"), &data).unwrap();
    std::fs::write(d.join("small.bin"), b"small").unwrap();
    let Some(put) = on_a_terminal(d, "put big big.bin") else {
        eprintln!("skip: no `script` to give the command a terminal");
        return;
    };
    assert!(put.contains("put [") && put.contains("MiB"), "a put bar: {put:?}");
    let get = on_a_terminal(d, "get big -o copy.bin").unwrap();
    assert!(get.contains("get [") && get.contains("MiB"), "a get bar: {get:?}");
    assert!(std::fs::read(d.join("copy.bin")).unwrap() == data);
    // Small data gets none.
    let small = on_a_terminal(d, "put small small.bin").unwrap();
    assert!(!small.contains("put ["), "{small:?}");
    // Nor does output that is not a terminal (standard error captured).
    let out = vaultdb(d).args(["get", "big", "-o", "again.bin"]).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}
