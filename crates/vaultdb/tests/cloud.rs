//! The `vaultdb` binary against cloud emulators, as a user runs it: a `vaultdb.toml` with one
//! share per cloud (S3 on moto, GCS on fake-gcs-server, Azure on Azurite; 2-of-3), then
//! `status`, `put`, `get`, `list`, `delete` and `audit verify` as processes. A second test
//! covers `kind = "minio"` (s3s-fs) and Azure's `emulator = true`, a third `kind = "postgres"`
//! (a real PostgreSQL server, verified TLS, the password from a variable).
//!
//! `cargo xtask itest` starts the emulators and sets the variables read here (the same as
//! the backend crates' tests: `VAULTDB_TEST_S3_*`, `VAULTDB_TEST_GCS_*`,
//! `AZURITE_BLOB_STORAGE_URL`, `VAULTDB_TEST_AZURE_CONTAINER`, `VAULTDB_TEST_MINIO_*`,
//! `VAULTDB_TEST_POSTGRES_TLS_URL`).
//! Without them each test prints `skip: ...` and passes.

mod common;

use std::env;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::VAULTDB_ENV;
use vaultdb_azure::{AZURITE_ACCOUNT, AZURITE_ACCOUNT_KEY, AzureBackend, AzureConfig};
use vaultdb_core::backend::StorageBackendExt;
use vaultdb_core::{KeyPrefix, StorageBackend};
use vaultdb_gcs::{GcsBackend, GcsConfig};
use vaultdb_s3::{S3Backend, S3Config, S3Credentials};

/// The variable the test's vaultdb.toml names for the Azure account key.
const AZURE_KEY_VAR: &str = "VAULTDB_CLOUD_TEST_AZURE_KEY";

fn var(k: &str) -> Option<String> {
    env::var(k).ok().filter(|v| !v.is_empty())
}

fn or(k: &str, d: &str) -> String {
    var(k).unwrap_or_else(|| d.to_owned())
}

/// The emulators itest started.
struct Clouds {
    s3: String,
    s3_bucket: String,
    s3_keys: (String, String),
    gcs: String,
    gcs_bucket: String,
    azurite: String,
    azure_container: String,
}

impl Clouds {
    fn from_env() -> Option<Self> {
        Some(Self {
            s3: var("VAULTDB_TEST_S3_ENDPOINT")?,
            s3_bucket: or("VAULTDB_TEST_S3_BUCKET", "vaultdb-test"),
            s3_keys: (
                or("VAULTDB_TEST_S3_ACCESS_KEY", "testing"),
                or("VAULTDB_TEST_S3_SECRET_KEY", "testing"),
            ),
            gcs: var("VAULTDB_TEST_GCS_ENDPOINT")?,
            gcs_bucket: or("VAULTDB_TEST_GCS_BUCKET", "vaultdb-test"),
            azurite: var("AZURITE_BLOB_STORAGE_URL")?.trim_end_matches('/').to_owned(),
            azure_container: or("VAULTDB_TEST_AZURE_CONTAINER", "vaultdb-test"),
        })
    }

    /// The secrets the configuration names, as the binary's environment.
    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VAULTDB_TEST_S3_ACCESS_KEY", self.s3_keys.0.clone()),
            ("VAULTDB_TEST_S3_SECRET_KEY", self.s3_keys.1.clone()),
            (AZURE_KEY_VAR, AZURITE_ACCOUNT_KEY.to_owned()),
        ]
    }

    /// The 2-of-3 configuration; `azure_url` replaces Azurite's URL (to take it away).
    fn toml(&self, prefix: &str, azure_url: &str) -> String {
        format!(
            r#"threshold = 2
data_dir = "data"

[timeouts]
call = "10s"
attempts = 2

[[backends]]
kind = "s3"
id = "aws"
name = "S3 (moto)"
bucket = "{s3_bucket}"
prefix = "{prefix}"
region = "us-east-1"
endpoint = "{s3}"
force_path_style = true
allow_http = true
access_key_id_env = "VAULTDB_TEST_S3_ACCESS_KEY"
secret_access_key_env = "VAULTDB_TEST_S3_SECRET_KEY"

[[backends]]
kind = "gcs"
id = "gcp"
name = "GCS (fake-gcs-server)"
bucket = "{gcs_bucket}"
prefix = "{prefix}"
endpoint = "{gcs}"
allow_http = true
credentials = "anonymous"

[[backends]]
kind = "azure"
id = "azure"
name = "Azure (Azurite)"
account = "{account}"
container = "{container}"
prefix = "{prefix}"
endpoint = "{azure_url}/{account}"
allow_http = true
credentials = "access_key"
access_key_env = "{AZURE_KEY_VAR}"
"#,
            s3_bucket = self.s3_bucket,
            s3 = self.s3,
            gcs_bucket = self.gcs_bucket,
            gcs = self.gcs,
            account = AZURITE_ACCOUNT,
            container = self.azure_container,
        )
    }

    /// The three clouds under `prefix`, straight through the backend crates.
    async fn direct(&self, prefix: &str) -> Vec<Box<dyn StorageBackend>> {
        let s3 = S3Config::emulator(self.s3.clone(), self.s3_bucket.clone())
            .with_prefix(prefix)
            .with_credentials(S3Credentials::key_pair(
                self.s3_keys.0.clone(),
                self.s3_keys.1.clone(),
            ));
        let gcs =
            GcsConfig::emulator(self.gcs.clone(), self.gcs_bucket.clone()).with_prefix(prefix);
        let azure = AzureConfig::new(AZURITE_ACCOUNT, self.azure_container.clone())
            .with_endpoint(format!("{}/{AZURITE_ACCOUNT}", self.azurite))
            .with_credentials(vaultdb_azure::AzureCredentials::AccessKey(
                AZURITE_ACCOUNT_KEY.to_owned(),
            ))
            .with_prefix(prefix);
        let mut azure = azure;
        azure.allow_http = true;
        vec![
            Box::new(S3Backend::new("aws", "S3", s3).unwrap()),
            Box::new(GcsBackend::new("gcp", "GCS", gcs).unwrap()),
            Box::new(AzureBackend::new("azure", "Azure", azure).unwrap()),
        ]
    }
}

/// A short random tag, so runs never share a prefix.
fn random_tag() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:08x}", (nanos as u64 ^ u64::from(std::process::id()).rotate_left(17)) as u32)
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Runs `vaultdb ARGS` in `dir` with a clean VAULTDB_* environment plus `envs`.
fn vaultdb(dir: &Path, envs: &[(&str, String)], args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultdb"));
    cmd.args(args).current_dir(dir);
    for v in VAULTDB_ENV {
        cmd.env_remove(v);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run vaultdb");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts success; returns stdout.
#[track_caller]
fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts the code's exit status with one `error: CODE: ...` line; returns it.
#[track_caller]
fn fails(out: &Output, code: &str, what: &str) -> String {
    let err = text(&out.stderr);
    let status = i32::from(vaultdb::error::exit_code(code));
    assert_eq!(out.status.code(), Some(status), "{what}: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{what}: no error line in {err}"));
    assert!(line.starts_with(&format!("error: {code}: ")), "{what}: {line}");
    line.to_owned()
}

/// Every object under the prefix of each cloud: (backend id, key, bytes).
async fn objects(backends: &[Box<dyn StorageBackend>]) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for b in backends {
        for e in b.list_all(&KeyPrefix::default()).await.unwrap() {
            if let Some(data) = b.get(&e.key, e.size).await.unwrap() {
                out.push((b.id().to_owned(), e.key.to_string(), data.to_vec()));
            }
        }
    }
    out
}

/// A new directory holding `vaultdb.toml` with `text` in it.
fn with_config(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vaultdb.toml"), text).unwrap();
    dir
}

/// Read-only commands need a store: the first put of record `id` (`data`) through `run`
/// creates it, on three backends, all up; the record reads back and lists alone.
fn first_put_reads_back<R>(run: R, id: &str, data: &[u8])
where
    R: Fn(&[&str], Option<&[u8]>) -> Output,
{
    let said = ok(&run(&["put", id, "-"], Some(data)), "put");
    assert!(said.contains("on 3 of 3 backends"), "{said}");
    let status = ok(&run(&["status"], None), "status");
    assert!(status.contains("3 of 3 backends up, margin 1"), "{status}");
    assert_eq!(run(&["get", id], None).stdout, data);
    assert_eq!(ok(&run(&["list"], None), "list"), format!("{id}\n"));
}

#[test]
fn cli_over_s3_gcs_and_azure() {
    let Some(clouds) = Clouds::from_env() else {
        println!(
            "skip: VAULTDB_TEST_S3_ENDPOINT, VAULTDB_TEST_GCS_ENDPOINT and \
             AZURITE_BLOB_STORAGE_URL are not all set (cargo xtask itest sets them)"
        );
        return;
    };
    let prefix = format!("vaultdb-cli-{}", random_tag());
    let dir = with_config(&clouds.toml(&prefix, &clouds.azurite));
    let d = dir.path();
    let secrets = clouds.secrets();
    let run = |args: &[&str]| vaultdb(d, &secrets, args, None);

    // A fresh store on three clouds (read-only commands need one: a put creates it).
    ok(&vaultdb(d, &secrets, &["put", "first", "-"], Some(b"x")), "first put");
    ok(&run(&["delete", "first"]), "delete the first record");
    let status = ok(&run(&["status"]), "status");
    assert!(
        status.contains("store: 2-of-3 (write quorum 3), 3 of 3 backends up, margin 1"),
        "{status}"
    );
    for (id, name) in
        [("aws", "S3 (moto)"), ("gcp", "GCS (fake-gcs-server)"), ("azure", "Azure (Azurite)")]
    {
        let row = status
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no {id} row in {status}"));
        assert!(row.contains(name) && row.contains(" up "), "{row}");
    }

    // put: JSON from standard input, and a binary file.
    let json = br#"{"hello":"clouds","n":[1,2,3]}"#;
    let out = vaultdb(d, &secrets, &["put", "greeting", "--json-input"], Some(json));
    let said = ok(&out, "put greeting");
    assert!(said.contains("on 3 of 3 backends"), "{said}");
    let blob: Vec<u8> =
        (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(d.join("blob.bin"), &blob).unwrap();
    let said = ok(&run(&["put", "blob", "blob.bin"]), "put blob");
    assert!(said.contains("on 3 of 3 backends"), "{said}");

    // Each cloud holds shares, and none holds the record in the clear.
    let direct = block_on(clouds.direct(&prefix));
    let stored = block_on(objects(&direct));
    for id in ["aws", "gcp", "azure"] {
        let n = stored.iter().filter(|(b, _, _)| b == id).count();
        assert!(n >= 3, "{id} holds {n} objects under {prefix}");
    }
    for (b, k, data) in &stored {
        assert!(
            !data.windows(14).any(|w| w == b"\"hello\":\"cloud"),
            "{b}/{k} holds the record in the clear"
        );
    }

    // get and list.
    let out = run(&["get", "greeting"]);
    ok(&out, "get greeting");
    assert_eq!(out.stdout, json);
    ok(&run(&["get", "blob", "-o", "blob.out"]), "get blob");
    assert_eq!(std::fs::read(d.join("blob.out")).unwrap(), blob);
    assert_eq!(ok(&run(&["list"]), "list"), "blob\ngreeting\n");

    // Azure goes away (its endpoint now refuses connections): reads still work from the
    // other two, and status says how close to the edge the store is.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let down = d.join("azure-down.toml");
    std::fs::write(&down, clouds.toml(&prefix, &dead_url)).unwrap();
    let down = down.to_str().unwrap();
    let out = run(&["--config", down, "get", "greeting"]);
    ok(&out, "get with azure down");
    assert_eq!(out.stdout, json);
    let status = ok(&run(&["--config", down, "status"]), "status with azure down");
    assert!(status.contains("2 of 3 backends up, margin 0"), "{status}");
    let row = status.lines().find(|l| l.starts_with("azure")).unwrap();
    assert!(row.contains("DOWN"), "{row}");

    // delete: gone from every cloud; the other record stays.
    let said = ok(&run(&["delete", "greeting"]), "delete greeting");
    assert!(said.starts_with("deleted ("), "{said}");
    fails(&run(&["get", "greeting"]), "RECORD_NOT_FOUND", "get deleted");
    assert_eq!(ok(&run(&["list"]), "list after delete"), "blob\n");
    ok(&run(&["delete", "blob"]), "delete blob");
    assert_eq!(ok(&run(&["list"]), "list when empty"), "");
    // Of the records, only their tombstones are left (docs/FORMAT.md section 14): one per
    // deleted record per cloud: `first`, `greeting` and `blob`. (A tombstone's name is
    // `<version>.t<mac>`: 26 + 2 + 26.)
    let left = block_on(objects(&direct));
    let is_record = |k: &str| (k.starts_with("r/") || k.contains("/r/")) && !k.contains("sys/");
    let is_tombstone = |k: &str| {
        let last = k.rsplit('/').next().unwrap_or_default();
        last.len() == 54 && last.get(26..28) == Some(".t")
    };
    let shares: Vec<&String> =
        left.iter().map(|(_, k, _)| k).filter(|k| is_record(k) && !is_tombstone(k)).collect();
    assert!(shares.is_empty(), "record objects left after the deletes: {shares:?}");
    let tombstones = left.iter().filter(|(_, k, _)| is_record(k) && is_tombstone(k)).count();
    assert_eq!(tombstones, 9, "one tombstone per deleted record (3) per cloud (3)");

    // The audit log of these runs is intact.
    let said = ok(&run(&["audit", "verify"]), "audit verify");
    assert!(said.starts_with("ok: "), "{said}");

    // Secrets: a missing variable fails that backend only, named, never a value: the other
    // two serve, and `status` says what is wrong with Azure. Debug logs show no key.
    let no_key: Vec<(&str, String)> =
        secrets.iter().filter(|(k, _)| *k != AZURE_KEY_VAR).cloned().collect();
    let listed = ok(&vaultdb(d, &no_key, &["list"], None), "list with the azure key unset");
    assert_eq!(listed, "", "the store opens from the other two (and is empty by now)");
    let status = ok(&vaultdb(d, &no_key, &["status"], None), "status with the azure key unset");
    assert!(
        status.contains("backend \"azure\" (azure)") && status.contains(AZURE_KEY_VAR),
        "{status}"
    );
    let mut debug = secrets.clone();
    debug.push(("RUST_LOG", "debug".to_owned()));
    let out = vaultdb(d, &debug, &["list"], None);
    ok(&out, "list with debug logs");
    let logs = text(&out.stderr);
    assert!(!logs.contains(AZURITE_ACCOUNT_KEY), "the Azure key is logged");
    let (key_id, secret) = &clouds.s3_keys;
    if secret != key_id {
        assert!(!logs.contains(secret.as_str()), "the S3 secret is logged");
    }
    println!(
        "vaultdb cli over s3, gcs, azure: {} share objects checked under {prefix}",
        stored.len()
    );
}

#[test]
fn cli_over_minio_azurite_emulator_mode_and_fs() {
    let (Some(minio), Some(azurite)) =
        (var("VAULTDB_TEST_MINIO_ENDPOINT"), var("AZURITE_BLOB_STORAGE_URL"))
    else {
        println!(
            "skip: VAULTDB_TEST_MINIO_ENDPOINT and AZURITE_BLOB_STORAGE_URL are not both set \
             (cargo xtask itest sets them)"
        );
        return;
    };
    let prefix = format!("vaultdb-cli-{}", random_tag());
    let dir = with_config(&format!(
        r#"threshold = 2

[[backends]]
kind = "minio"
id = "minio"
endpoint = "{minio}"
bucket = "{bucket}"
prefix = "{prefix}"
access_key_id = "{key}"
secret_access_key_env = "VAULTDB_TEST_MINIO_SECRET_KEY"

[[backends]]
kind = "azure"
id = "azurite"
container = "{container}"
prefix = "{prefix}"
emulator = true

[[backends]]
kind = "fs"
id = "disk"
path = "disk"
"#,
        bucket = or("VAULTDB_TEST_MINIO_BUCKET", "vaultdb-test"),
        key = or("VAULTDB_TEST_MINIO_ACCESS_KEY", "minioadmin"),
        container = or("VAULTDB_TEST_AZURE_CONTAINER", "vaultdb-test"),
    ));
    let d = dir.path();
    let envs = vec![
        ("VAULTDB_TEST_MINIO_SECRET_KEY", or("VAULTDB_TEST_MINIO_SECRET_KEY", "minioadmin")),
        ("AZURITE_BLOB_STORAGE_URL", azurite),
    ];
    let run = |args: &[&str], stdin: Option<&[u8]>| vaultdb(d, &envs, args, stdin);

    first_put_reads_back(run, "note", b"on premises");
    ok(&run(&["delete", "note"], None), "delete");
    assert_eq!(ok(&run(&["list"], None), "list when empty"), "");
    fails(&run(&["get", "note"], None), "RECORD_NOT_FOUND", "get deleted");
    println!("vaultdb cli over minio, azure (emulator mode), fs: ok under {prefix}");
}

#[test]
fn cli_over_postgres_and_two_directories() {
    let Some(url) = var("VAULTDB_TEST_POSTGRES_TLS_URL") else {
        println!("skip: VAULTDB_TEST_POSTGRES_TLS_URL is not set (cargo xtask itest sets it)");
        return;
    };
    // The URL without its password, which goes into the variable password_env names.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap();
    let url = format!("{scheme}://{user}@{host}");
    let table = format!("cli_{}", random_tag());
    let dir = with_config(&format!(
        r#"threshold = 2

[[backends]]
kind = "postgres"
id = "pg"
name = "PostgreSQL"
url = "{url}"
password_env = "VAULTDB_CLI_TEST_PG_PASSWORD"
table = "{table}"
max_connections = 4

[[backends]]
kind = "fs"
id = "disk-1"
path = "disk-1"

[[backends]]
kind = "fs"
id = "disk-2"
path = "disk-2"
"#
    ));
    let d = dir.path();
    let envs = vec![("VAULTDB_CLI_TEST_PG_PASSWORD", password.to_owned())];
    let run = |args: &[&str], stdin: Option<&[u8]>| vaultdb(d, &envs, args, stdin);

    first_put_reads_back(run, "row", b"in a bytea column");
    // PostgreSQL alone holds a share of it, not the record.
    let pg = vaultdb_postgres::PostgresBackend::new(
        "pg",
        "PostgreSQL",
        vaultdb_postgres::PostgresConfig::new(url.clone())
            .with_password(password)
            .with_table(table.clone()),
    )
    .unwrap();
    let rows = block_on(objects(&[Box::new(pg)]));
    assert!(!rows.is_empty(), "the table holds shares");
    for (_, key, data) in &rows {
        assert!(!key.contains("row") && !data.windows(5).any(|w| w == b"bytea"), "{key}");
    }
    // Without the password the PostgreSQL backend fails, naming the variable; the
    // directories still serve reads.
    let no_password = vaultdb(d, &[], &["get", "row"], None);
    assert_eq!(no_password.stdout, b"in a bytea column");
    let warned = text(&no_password.stderr);
    assert!(
        warned.contains("VAULTDB_CLI_TEST_PG_PASSWORD") && !warned.contains(password),
        "{warned}"
    );
    ok(&run(&["delete", "row"], None), "delete");
    assert_eq!(ok(&run(&["list"], None), "list when empty"), "");
    ok(&run(&["audit", "verify"], None), "audit verify");
    println!("vaultdb cli over postgres (verified TLS) and two directories: ok in table {table}");
}
