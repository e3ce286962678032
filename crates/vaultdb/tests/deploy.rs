//! The deployment files and the deployment they describe: the vaultdb.toml of the Kubernetes
//! ConfigMap and of docker-compose.yml parse and map (and every secret variable they name is
//! provided), and three `vaultdb serve` processes over one shared set of backends behave as
//! the replicas of the Deployment must: every write one acknowledges is read back by all
//! three, and every replica's audit log verifies against the store. (The files' shape is
//! checked by `cargo xtask deploy`; the image itself needs a container engine, which the
//! project's build machines do not have: deploy/README.md.)

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::VAULTDB_ENV;
use vaultdb::config::{Loaded, Source};

/// A file of the repository.
fn repo_file(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The environment variables a vaultdb.toml names for secrets (`*_env = "VAR"`).
fn named_variables(toml: &str) -> Vec<String> {
    toml.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            let key = key.trim();
            (key.ends_with("_env") && !key.starts_with('#'))
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// Builds every backend of `toml` with `vars` set (to a dummy value) and returns the
/// `describe()` line; fails if one could not be built (an `Unavailable` backend).
fn builds_with(toml: &str, file: &str, vars: &[String]) -> String {
    let loaded = Loaded::from_text(toml, Source::File(file.into())).expect("parses");
    let env = |name: &str| vars.iter().any(|v| v == name).then(|| "{}".to_owned());
    for b in loaded.backends_with(&env) {
        let debug = format!("{b:?}");
        assert!(!debug.starts_with("Unavailable"), "{} cannot be built: {debug}", b.id());
    }
    loaded.describe()
}

#[test]
fn kubernetes_configmap_config_maps_and_the_secret_holds_its_variables() {
    let yaml = repo_file("deploy/kubernetes/configmap.yaml");
    let at = yaml.find("  vaultdb.toml: |\n").expect("the ConfigMap has vaultdb.toml") + 18;
    let toml: String = yaml[at..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or("")))
        .collect();
    let vars = named_variables(&toml);
    assert_eq!(vars.len(), 4, "{vars:?}");
    let secret = repo_file("deploy/kubernetes/secret.yaml");
    for v in vars.iter().chain([&"VAULTDB_TOKEN".to_owned()]) {
        assert!(secret.contains(&format!("\n  {v}: ")), "secret.yaml lacks {v}");
    }
    assert_eq!(
        builds_with(&toml, "/etc/vaultdb/vaultdb.toml", &vars),
        "2-of-3 over aws, gcp, azure"
    );
    // Without the Secret's variables the backends are built Unavailable, naming them.
    let loaded = Loaded::from_text(&toml, Source::File("/etc/vaultdb/vaultdb.toml".into()));
    let none = |_: &str| None;
    let unavailable = loaded.unwrap().backends_with(&none);
    assert!(unavailable.iter().all(|b| format!("{b:?}").starts_with("Unavailable")));
    // The deployment reads the file where the ConfigMap is mounted.
    let deployment = repo_file("deploy/kubernetes/deployment.yaml");
    assert!(deployment.contains("value: /etc/vaultdb/vaultdb.toml"));
    assert!(deployment.contains("mountPath: /etc/vaultdb\n"));
}

#[test]
fn compose_config_maps_and_compose_sets_its_variables() {
    let toml = repo_file("deploy/compose/vaultdb.toml");
    let compose = repo_file("docker-compose.yml");
    let vars = named_variables(&toml);
    assert_eq!(vars.len(), 3, "{vars:?}");
    for v in &vars {
        assert!(compose.contains(&format!("      {v}: ")), "docker-compose.yml lacks {v}");
    }
    assert!(compose.contains("./deploy/compose/vaultdb.toml:/etc/vaultdb/vaultdb.toml:ro"));
    assert_eq!(
        builds_with(&toml, "/etc/vaultdb/vaultdb.toml", &vars),
        "2-of-3 over minio, gcs, azure"
    );
}

/// The admin token the replicas accept (`VAULTDB_TOKEN`).
const TOKEN: &str = "replica-test-admin-token-0123456789";
const REPLICAS: usize = 3;
const CLIENTS: usize = 9;
const WRITES_PER_CLIENT: usize = 12;
/// Records every client overwrites, through different replicas.
const SHARED: usize = 3;

/// One `vaultdb serve` process, killed if the test fails before stopping it.
struct Replica {
    child: std::process::Child,
    base: String,
    audit_log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vaultdb(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultdb"));
    for v in VAULTDB_ENV {
        cmd.env_remove(v);
    }
    cmd.env("VAULTDB_CONFIG", config);
    cmd
}

/// Starts replica `i` on a free loopback port with its own audit log; returns once it
/// prints where it listens.
fn start_replica(dir: &Path, config: &Path, i: usize) -> Replica {
    let audit_log = dir.join(format!("audit-{i}.jsonl"));
    let mut child = vaultdb(config)
        .arg("serve")
        .env("VAULTDB_LISTEN", "127.0.0.1:0")
        .env("VAULTDB_AUDIT_LOG", &audit_log)
        .env("VAULTDB_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("replica {i} prints where it listens"));
        if let Some(b) = line.strip_prefix("listening on ") {
            break b.trim().to_owned();
        }
    };
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    Replica { child, base, audit_log }
}

/// SIGTERM, then waits for a clean exit.
fn stop(replica: &mut Replica) {
    let pid = replica.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = replica.child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "stops after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

async fn put(client: &reqwest::Client, base: &str, id: &str, body: String) -> bool {
    let resp = client
        .put(format!("{base}/v1/records/{id}/raw"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    resp.status().is_success()
}

async fn get(client: &reqwest::Client, base: &str, id: &str) -> Option<String> {
    let resp =
        client.get(format!("{base}/v1/records/{id}/raw")).bearer_auth(TOKEN).send().await.unwrap();
    match resp.status() {
        reqwest::StatusCode::OK => Some(resp.text().await.unwrap()),
        reqwest::StatusCode::NOT_FOUND => None,
        other => panic!("GET {id} via {base}: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_over_shared_backends() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vaultdb.toml");
    let mut toml = String::from("threshold = 2\n");
    for d in 1..=3 {
        let path = dir.path().join(format!("disk-{d}"));
        toml.push_str(&format!(
            "[[backends]]\nkind = \"fs\"\nid = \"disk-{d}\"\npath = \"{}\"\n",
            path.display()
        ));
    }
    std::fs::write(&config, toml).unwrap();

    // All three start at once over empty backends: they race to create the keyring.
    let mut replicas: Vec<Replica> = std::thread::scope(|s| {
        let (dir, config) = (dir.path(), config.as_path());
        let handles: Vec<_> =
            (0..REPLICAS).map(|i| s.spawn(move || start_replica(dir, config, i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let client = common::http_client().timeout(Duration::from_secs(60)).build().unwrap();

    // Concurrent clients, each writing through the replicas in turn and reading every
    // acknowledged write back through the other two at once.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let shared_acked: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
    let puts_per_replica: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; REPLICAS]));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, bases) = (client.clone(), bases.clone());
        let (acked, shared_acked, per) =
            (acked.clone(), shared_acked.clone(), puts_per_replica.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..WRITES_PER_CLIENT {
                let via = (c + j) % REPLICAS;
                let (id, body) = if j % 4 == 3 {
                    (format!("shared-{}", j % SHARED), format!("client {c} write {j} shared"))
                } else {
                    (format!("c{c}-w{j}"), format!("client {c} write {j} {}", "x".repeat(j * 97)))
                };
                assert!(put(&client, &bases[via], &id, body.clone()).await, "put {id}");
                per.lock().unwrap()[via] += 1;
                if id.starts_with("shared-") {
                    shared_acked.lock().unwrap().entry(id).or_default().push(body);
                    continue;
                }
                for (r, base) in bases.iter().enumerate() {
                    let got = get(&client, base, &id).await;
                    assert_eq!(got.as_deref(), Some(body.as_str()), "{id} via replica {r}");
                }
                acked.lock().unwrap().insert(id, body);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Afterwards: every acknowledged write, from every replica; the records written by
    // several clients read the same everywhere, one of the values acknowledged.
    let acked = acked.lock().unwrap().clone();
    let shared_acked = shared_acked.lock().unwrap().clone();
    assert_eq!(acked.len(), CLIENTS * WRITES_PER_CLIENT * 3 / 4);
    assert_eq!(shared_acked.len(), SHARED);
    for base in &bases {
        for (id, body) in &acked {
            assert_eq!(get(&client, base, id).await.as_deref(), Some(body.as_str()), "{id}");
        }
        for (id, bodies) in &shared_acked {
            let got = get(&client, base, id).await.expect("shared record");
            assert!(bodies.contains(&got), "{id}: {got:?} was never acknowledged");
            assert_eq!(Some(got), get(&client, &bases[0], id).await, "{id} differs");
        }
        let resp = client
            .get(format!("{base}/v1/records?limit=1000"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let listed: serde_json::Value = resp.json().await.unwrap();
        let ids: Vec<&str> =
            listed["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(ids.len(), acked.len() + SHARED, "{base}");
        assert!(acked.keys().all(|id| ids.contains(&id.as_str())));
    }

    // Each replica stops cleanly; its audit log verifies against the store and holds a
    // line for every put it acknowledged.
    let per = puts_per_replica.lock().unwrap().clone();
    for (i, r) in replicas.iter_mut().enumerate() {
        stop(r);
        let text = std::fs::read_to_string(&r.audit_log).unwrap();
        let put_lines = text
            .lines()
            .filter(|l| l.contains("\"op\":\"record.put_raw\"") && l.contains("\"outcome\":\"OK\""))
            .count();
        assert_eq!(put_lines, per[i], "replica {i}'s record.put_raw lines");
        assert!(!text.contains("c0-w0") && !text.contains("client 0"), "no ids or data");
        let out = vaultdb(&config).args(["audit", "verify"]).arg(&r.audit_log).output().unwrap();
        assert!(
            out.status.success(),
            "replica {i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
