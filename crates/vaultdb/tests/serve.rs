//! `vaultdb serve` as a process: the generated token and how to use it, a request with it,
//! and a graceful stop on SIGTERM; the same with `--json`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::VAULTDB_ENV;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_a_usable_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultdb"));
    cmd.current_dir(dir.path()).arg("serve").stdout(Stdio::piped()).stderr(Stdio::piped());
    for v in VAULTDB_ENV {
        cmd.env_remove(v);
    }
    cmd.env("VAULTDB_LISTEN", "127.0.0.1:0");
    let mut child = Child(cmd.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut base, mut token, mut curl) = (None, None, None);
    while base.is_none() || token.is_none() || curl.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("serve prints its address and token");
        if let Some(b) = line.strip_prefix("listening on ") {
            base = Some(b.trim().to_owned());
        }
        if let Some(t) = line.trim().strip_prefix("export VAULTDB_TOKEN=") {
            token = Some(t.to_owned());
        }
        if line.trim().starts_with("curl -H \"Authorization: Bearer $VAULTDB_TOKEN\" ") {
            curl = Some(line);
        }
    }
    let (base, token) = (base.unwrap(), token.unwrap());
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(curl.unwrap().contains(&format!("{base}/v1/records")));

    let client = common::http_client().build().unwrap();
    let resp = client
        .put(format!("{base}/v1/records"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"id": "user-42", "data": {"name": "Alice"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let resp =
        client.get(format!("{base}/v1/records/user-42")).bearer_auth(&token).send().await.unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["data"]["name"], "Alice");
    let resp = client
        .get(format!("{base}/v1/records"))
        .bearer_auth("vdb_not_the_token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);

    // SIGTERM: the server finishes and exits 0.
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "stops after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // The reader thread ends at end of output, closing the channel.
    let rest: Vec<String> = rx.iter().collect();
    assert!(rest.iter().any(|l| l == "vaultdb stopped"), "{rest:?}");
    // The token was never written anywhere.
    let audit = std::fs::read_to_string(dir.path().join("vaultdb-data/audit.jsonl")).unwrap();
    assert!(!audit.contains(&token) && !audit.contains("user-42") && !audit.contains("Alice"));
    assert!(audit.contains("\"actor\":\"admin\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_json_prints_one_document_with_the_address_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultdb"));
    cmd.current_dir(dir.path()).args(["--json", "serve"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    for v in VAULTDB_ENV {
        cmd.env_remove(v);
    }
    cmd.env("VAULTDB_LISTEN", "127.0.0.1:0");
    let mut child = Child(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    let base = v["listen"].as_str().unwrap().to_owned();
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && token.starts_with("vdb_"), "{v}");
    assert_eq!((v["tls"].is_null(), v["audit_fail_open"].as_bool()), (true, Some(false)));
    let client = common::http_client().build().unwrap();
    let resp = client.get(format!("{base}/v1/records")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(rest, ["{\"stopped\":true}"], "only JSON lines on standard output");
    assert!(child.0.wait().unwrap().success());
}
