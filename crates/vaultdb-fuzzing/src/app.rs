// This file is long because the `rest` target's check is a small model of the REST API: a
// structured request type for every route, the harness that runs it against the server, the checks
// of each answer and the seed inputs, sharing private types.
//! The checks behind the `config` and `rest` fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer)
//! and their seed inputs: the `vaultdb` binary's configuration file and REST API.
//!
//! Each `check_*` function is the whole body of one fuzz target
//! (`fuzz/fuzz_targets/<target>.rs` is a one-liner calling it) and of the regression test
//! `tests/app_corpus.rs`, which runs it on stable Rust over every committed input in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`. A check panics exactly when it
//! found a bug. See docs/FUZZING.md.
//!
//! - [`check_config`]: the configuration file parser and validator
//!   ([`Loaded::from_text`]) never panics; what it accepts satisfies the documented limits,
//!   and what it rejects is one `INVALID_CONFIG` line.
//! - [`check_rest`]: one HTTP request, derived from the input with [`arbitrary`] (method,
//!   path, query, `Authorization`, `Content-Type`, `Range`, body), is served in-process by
//!   [`vaultdb::app`] over three memory backends (2-of-3, 1 KiB segments, a few records
//!   stored), with no socket. No panic; every error is `{"error": {code, message}}` with one
//!   of the documented codes and that code's documented status (so 500 only for
//!   `SPLIT_FAILED`/`RECONSTRUCT_FAILED`, 502 only for `HMAC_FAILED`, 503 only for
//!   `INSUFFICIENT_SHARES`, `BACKEND_ERROR`, `REQUEST_TIMEOUT`); bodies match their
//!   `Content-Length`, `Content-Range` and JSON content type; an error message does not echo
//!   the record id (when it contains the path's id, the same request with another id of the
//!   same length must get the same message). The store is reset to its initial objects after
//!   every request, so each input sees the same state.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use vaultdb::auth::{Role, Tokens};
use vaultdb::config::{DEFAULT_CONFIG, Loaded, Source, init_file, parse_duration, parse_size};
use vaultdb::server::{AppState, Limits};
use vaultdb_core::rng::{CsRng, RandomSource};
use vaultdb_core::{CallPolicy, MemoryBackend, Record, Threshold, VaultDb};

/// The fuzz targets whose checks live here, as named in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 2] = ["config", "rest"];

/// Runs the check of `target` (one of [`TARGETS`]) on `data`.
///
/// # Panics
/// If the check finds a bug, or `target` is not one of [`TARGETS`].
pub fn check(target: &str, data: &[u8]) {
    match target {
        "config" => check_config(data),
        "rest" => check_rest(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// The seed inputs of `target` (one of [`TARGETS`]) as `(file name, bytes)`. Empty for an
/// unknown target.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "config" => config_seeds(),
        "rest" => rest_seeds(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// config

/// The configuration file parser: [`Loaded::from_text`] (TOML, environment overrides,
/// validation) never panics, as embedded default and as a file; a configuration it accepts
/// has `2 <= K <= N <= 255` (and `K <= W <= N`), a valid key prefix, usable tokens and
/// settings, and backends that prepare without panicking; a rejection is one
/// `INVALID_CONFIG` line. The duration and size parsers never panic either.
pub fn check_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_duration(&text);
    let _ = parse_size(&text);
    for source in [Source::Embedded, Source::File(PathBuf::from("conf/vaultdb.toml"))] {
        match Loaded::from_text(&text, source) {
            Err(e) => {
                assert_eq!(e.code, "INVALID_CONFIG", "a configuration error's code");
                assert!(!e.message.contains('\n'), "a configuration error is one line");
            }
            Ok(loaded) => {
                let c = &loaded.config;
                let n = c.backends.len();
                assert!(Threshold::new(c.threshold, n).is_ok(), "accepted {}-of-{n}", c.threshold);
                if let Some(w) = c.write_quorum {
                    assert!(c.threshold <= w && w <= n, "accepted write quorum {w}");
                }
                assert!(vaultdb_core::naming::KeySpace::new(&c.prefix).is_ok(), "accepted prefix");
                assert!(c.retain_versions >= 1 && c.timeouts.attempts >= 1);
                let settings = loaded.settings();
                assert!(settings.call_policy.max_attempts >= 1);
                let tokens = vaultdb::service::tokens(&loaded)
                    .expect("the tokens of a validated configuration");
                assert_eq!(tokens.is_empty(), c.tokens.is_empty());
                let _ = loaded.backends_with(&|_| None);
                let _ = loaded.backends_with(&|name| Some(format!("fuzz-{name}")));
                assert!(loaded.describe().starts_with(&format!("{}-of-{n} over ", c.threshold)));
                let _ = format!("{loaded:?}");
            }
        }
    }
}

fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let token = "ab".repeat(32);
    let memory = |k: usize, n: usize| {
        let mut s = format!("threshold = {k}\n");
        for i in 1..=n {
            s.push_str(&format!("[[backends]]\nkind = \"memory\"\nid = \"mem-{i}\"\n"));
        }
        s
    };
    let mut out: Vec<(&str, String)> = vec![
        ("default", DEFAULT_CONFIG.to_owned()),
        ("init", init_file("admin", &token)),
        ("memory-2of3", memory(2, 3)),
        ("memory-3of5-w4", format!("write_quorum = 4\n{}", memory(3, 5))),
        (
            "tuned",
            format!(
                "padding = \"block:4096\"\nprefix = \"a/b\"\nsegment_size = \"1KiB\"\n\
                 max_inflight = \"2MiB\"\nretain_versions = 3\ndata_dir = \"/var/lib/vdb\"\n\
                 [timeouts]\ncall = \"500ms\"\nattempts = 1\nhedge_after = \"off\"\n\
                 grace_period = \"15m\"\n[server]\nlisten = \"[::1]:0\"\nbody_limit = 1024\n\
                 request_timeout = \"2m\"\naudit_log = \"audit.jsonl\"\n[[tokens]]\nname = \"r\"\n\
                 role = \"read\"\nsha256 = \"{token}\"\n{}",
                memory(2, 2)
            ),
        ),
        (
            "clouds",
            "threshold = 2\n\
             [[backends]]\nkind = \"s3\"\nid = \"aws\"\nbucket = \"b\"\nregion = \"us-west-2\"\n\
             endpoint = \"http://127.0.0.1:9000\"\nforce_path_style = true\nallow_http = true\n\
             access_key_id = \"AKID\"\nsecret_access_key_env = \"S3_SECRET\"\n\
             [[backends]]\nkind = \"minio\"\nid = \"minio\"\nendpoint = \"https://minio:9000\"\n\
             bucket = \"vault\"\nprefix = \"shares\"\npage_size = 20\n\
             [[backends]]\nkind = \"gcs\"\nid = \"gcp\"\nbucket = \"g\"\n\
             credentials_file = \"keys/sa.json\"\n\
             [[backends]]\nkind = \"gcs\"\nid = \"gcs-anon\"\nbucket = \"g\"\n\
             credentials = \"anonymous\"\nendpoint = \"http://127.0.0.1:4443\"\nallow_http = true\n\
             [[backends]]\nkind = \"azure\"\nid = \"azure\"\naccount = \"acct\"\ncontainer = \"c\"\n\
             credentials = \"managed_identity\"\n\
             [[backends]]\nkind = \"azure\"\nid = \"az-sp\"\naccount = \"acct\"\ncontainer = \"c\"\n\
             credentials = \"client_secret\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
             [[backends]]\nkind = \"azure\"\nid = \"azurite\"\ncontainer = \"v\"\nemulator = true\n"
                .to_owned(),
        ),
        ("bad-threshold-1", memory(1, 3)),
        ("bad-threshold-4of3", memory(4, 3)),
        ("bad-quorum", format!("write_quorum = 1\n{}", memory(2, 3))),
        ("bad-unknown-key", format!("colour = \"blue\"\n{}", memory(2, 3))),
        ("bad-duplicate-id", "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"a\"\n[[backends]]\nkind = \"memory\"\nid = \"a\"\n".to_owned()),
        ("bad-kind", "threshold = 2\n[[backends]]\nkind = \"ftp\"\nid = \"a\"\n".to_owned()),
        ("bad-duration", format!("[timeouts]\ncall = \"30 parsecs\"\n{}", memory(2, 3))),
        ("bad-size", format!("segment_size = \"1TiB\"\n{}", memory(2, 3))),
        ("bad-listen", format!("[server]\nlisten = \"localhost\"\n{}", memory(2, 3))),
        ("bad-prefix", format!("prefix = \"a//b\"\n{}", memory(2, 3))),
        ("bad-token", format!("[[tokens]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"zz\"\n{}", memory(2, 3))),
        ("bad-toml", "threshold = = 2\n[[backends]\n".to_owned()),
        ("bad-s3-http", "threshold = 2\n[[backends]]\nkind = \"s3\"\nid = \"a\"\nbucket = \"b\"\nendpoint = \"http://x\"\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n".to_owned()),
    ];
    out.push(("empty", String::new()));
    out.into_iter().map(|(n, s)| (format!("seed-{n}.toml"), s.into_bytes())).collect()
}

// ---------------------------------------------------------------------------------------
// rest: the request

/// The tokens the REST harness accepts, one per role.
pub const READ_TOKEN: &str = "fuzz-read-token-0123456789";
/// See [`READ_TOKEN`].
pub const WRITE_TOKEN: &str = "fuzz-write-token-0123456789";
/// See [`READ_TOKEN`].
pub const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789";

/// Record ids a request can name by index; all but the last are stored in the harness's
/// store (see [`stored_records`]).
pub const KNOWN_IDS: [&str; 8] = [
    "user-42",
    "notes.txt",
    "bin",
    "big.bin",
    "a/b",
    "\u{fc}n\u{ef}c\u{f8}d\u{e9}",
    "empty",
    "missing",
];

/// The records the REST harness stores before serving requests: JSON, text, binary, a
/// segmented record (5 segments of 1 KiB), an id with a slash, a Unicode id, an empty one.
pub fn stored_records() -> Vec<Record> {
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 253) as u8).collect();
    vec![
        Record::json("user-42", &json!({"name": "Alice", "ssn": "***-**-****"}))
            .expect("JSON record"),
        Record::new("notes.txt", b"any bytes at all".to_vec()).with_content_type("text/plain"),
        Record::new("bin", vec![0, 159, 146, 150, 255]),
        Record::new("big.bin", big).with_content_type("application/octet-stream"),
        Record::json("a/b", &json!([1, 2, 3])).expect("JSON record"),
        Record::new(KNOWN_IDS[5], "\u{2713}".as_bytes().to_vec())
            .with_content_type("text/plain; charset=utf-8"),
        Record::new("empty", Vec::new()),
    ]
}

#[derive(Arbitrary, Clone, Debug)]
enum MethodChoice {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Patch,
    Options,
    Other(String),
}

#[derive(Arbitrary, Clone, Debug)]
enum IdChoice {
    Known(u8),
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Clone, Debug)]
enum PathChoice {
    Records,
    Record(IdChoice),
    Raw(IdChoice),
    Repair(IdChoice),
    Status,
    Metrics,
    Health,
    OpenApi,
    Free(String),
}

#[derive(Arbitrary, Clone, Debug)]
enum QueryChoice {
    Limit(i64),
    Cursor(IdChoice),
    Both(u16, IdChoice),
    Free(String),
}

#[derive(Arbitrary, Clone, Debug)]
enum AuthChoice {
    None,
    Read,
    Write,
    Admin,
    Unknown,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Clone, Debug)]
enum ContentTypeChoice {
    Json,
    Text,
    Octets,
    LdJson,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Clone, Debug)]
enum RangeChoice {
    FromTo(u16, u16),
    From(u16),
    Suffix(u16),
    Big(u64, u64),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Clone, Debug)]
enum JsonLeaf {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
}

#[derive(Arbitrary, Clone, Debug)]
enum JsonChoice {
    Leaf(JsonLeaf),
    Float(f64),
    Array(Vec<JsonLeaf>),
    Object(Vec<(String, JsonLeaf)>),
}

#[derive(Arbitrary, Clone, Debug)]
enum BodyChoice {
    Empty,
    Json { id: IdChoice, data: JsonChoice },
    JsonExtra { id: IdChoice, data: JsonChoice, field: String },
    JsonNoData { id: IdChoice },
    Repeat { byte: u8, len: u32 },
    Raw(Vec<u8>),
}

/// One request, as the `rest` target derives it from its input.
#[derive(Arbitrary, Clone, Debug)]
struct RestInput {
    method: MethodChoice,
    path: PathChoice,
    query: Option<QueryChoice>,
    auth: AuthChoice,
    content_type: Option<ContentTypeChoice>,
    range: Option<RangeChoice>,
    body: BodyChoice,
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn pct(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

impl IdChoice {
    fn bytes(&self) -> Vec<u8> {
        match self {
            IdChoice::Known(i) => KNOWN_IDS[usize::from(*i) % KNOWN_IDS.len()].as_bytes().to_vec(),
            IdChoice::Text(s) => s.as_bytes().to_vec(),
            IdChoice::Bytes(b) => b.clone(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

fn leaf(l: &JsonLeaf) -> Value {
    match l {
        JsonLeaf::Null => Value::Null,
        JsonLeaf::Bool(b) => Value::Bool(*b),
        JsonLeaf::Int(i) => json!(i),
        JsonLeaf::Text(s) => Value::String(s.clone()),
    }
}

impl JsonChoice {
    fn value(&self) -> Value {
        match self {
            JsonChoice::Leaf(l) => leaf(l),
            JsonChoice::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            JsonChoice::Array(v) => Value::Array(v.iter().map(leaf).collect()),
            JsonChoice::Object(v) => {
                Value::Object(v.iter().map(|(k, l)| (k.clone(), leaf(l))).collect())
            }
        }
    }
}

impl RestInput {
    /// The HTTP request, or `None` when the input does not make one (an invalid method
    /// token or URI: rejected before any server sees it).
    fn request(&self) -> Option<Request<Body>> {
        let method = match &self.method {
            MethodChoice::Get => Method::GET,
            MethodChoice::Head => Method::HEAD,
            MethodChoice::Put => Method::PUT,
            MethodChoice::Post => Method::POST,
            MethodChoice::Delete => Method::DELETE,
            MethodChoice::Patch => Method::PATCH,
            MethodChoice::Options => Method::OPTIONS,
            MethodChoice::Other(m) => Method::from_bytes(m.as_bytes()).ok()?,
        };
        let mut uri = match &self.path {
            PathChoice::Records => "/v1/records".to_owned(),
            PathChoice::Record(id) => format!("/v1/records/{}", pct(&id.bytes())),
            PathChoice::Raw(id) => format!("/v1/records/{}/raw", pct(&id.bytes())),
            PathChoice::Repair(id) => format!("/v1/records/{}/repair", pct(&id.bytes())),
            PathChoice::Status => "/v1/status".to_owned(),
            PathChoice::Metrics => "/metrics".to_owned(),
            PathChoice::Health => "/health".to_owned(),
            PathChoice::OpenApi => "/openapi.json".to_owned(),
            PathChoice::Free(p) if p.starts_with('/') => p.clone(),
            PathChoice::Free(p) => format!("/{p}"),
        };
        match &self.query {
            None => {}
            Some(QueryChoice::Limit(n)) => uri.push_str(&format!("?limit={n}")),
            Some(QueryChoice::Cursor(c)) => uri.push_str(&format!("?cursor={}", pct(&c.bytes()))),
            Some(QueryChoice::Both(n, c)) => {
                uri.push_str(&format!("?cursor={}&limit={n}", pct(&c.bytes())));
            }
            Some(QueryChoice::Free(q)) => {
                uri.push('?');
                uri.push_str(q);
            }
        }
        let mut req = Request::builder().method(method).uri(uri.as_str());
        let auth = match &self.auth {
            AuthChoice::None => None,
            AuthChoice::Read => Some(format!("Bearer {READ_TOKEN}").into_bytes()),
            AuthChoice::Write => Some(format!("Bearer {WRITE_TOKEN}").into_bytes()),
            AuthChoice::Admin => Some(format!("Bearer {ADMIN_TOKEN}").into_bytes()),
            AuthChoice::Unknown => Some(b"Bearer fuzz-unknown-token-0123456789".to_vec()),
            AuthChoice::Raw(b) => Some(b.clone()),
        };
        if let Some(v) = auth.and_then(|a| HeaderValue::from_bytes(&a).ok()) {
            req = req.header(header::AUTHORIZATION, v);
        }
        let ct = self.content_type.as_ref().map(|c| match c {
            ContentTypeChoice::Json => b"application/json".to_vec(),
            ContentTypeChoice::Text => b"text/plain; charset=utf-8".to_vec(),
            ContentTypeChoice::Octets => b"application/octet-stream".to_vec(),
            ContentTypeChoice::LdJson => b"application/ld+json".to_vec(),
            ContentTypeChoice::Raw(b) => b.clone(),
        });
        if let Some(v) = ct.and_then(|c| HeaderValue::from_bytes(&c).ok()) {
            req = req.header(header::CONTENT_TYPE, v);
        }
        let range = self.range.as_ref().map(|r| match r {
            RangeChoice::FromTo(a, b) => format!("bytes={a}-{b}").into_bytes(),
            RangeChoice::From(a) => format!("bytes={a}-").into_bytes(),
            RangeChoice::Suffix(n) => format!("bytes=-{n}").into_bytes(),
            RangeChoice::Big(a, b) => format!("bytes={a}-{b}").into_bytes(),
            RangeChoice::Raw(b) => b.clone(),
        });
        if let Some(v) = range.and_then(|r| HeaderValue::from_bytes(&r).ok()) {
            req = req.header(header::RANGE, v);
        }
        let body = match &self.body {
            BodyChoice::Empty => Vec::new(),
            BodyChoice::Json { id, data } => {
                serde_json::to_vec(&json!({"id": id.text(), "data": data.value()})).ok()?
            }
            BodyChoice::JsonExtra { id, data, field } => {
                let mut m = serde_json::Map::new();
                m.insert("id".into(), Value::String(id.text()));
                m.insert("data".into(), data.value());
                m.insert(field.clone(), Value::Null);
                serde_json::to_vec(&m).ok()?
            }
            BodyChoice::JsonNoData { id } => serde_json::to_vec(&json!({"id": id.text()})).ok()?,
            BodyChoice::Repeat { byte, len } => vec![*byte; (*len % 80_000) as usize],
            BodyChoice::Raw(b) => b.clone(),
        };
        req.body(Body::from(body)).ok()
    }

    /// The record id the request names in its path, if it is text of at least 12 bytes.
    fn distinctive_id(&self) -> Option<String> {
        let id = match &self.path {
            PathChoice::Record(id) | PathChoice::Raw(id) | PathChoice::Repair(id) => id,
            _ => return None,
        };
        let text = String::from_utf8(id.bytes()).ok()?;
        (text.len() >= 12).then_some(text)
    }

    /// The same request with another path id of the same length (ASCII letters only).
    fn with_other_id(&self, id: &str) -> RestInput {
        let letter = if id.starts_with('z') { "y" } else { "z" };
        let other = IdChoice::Text(letter.repeat(id.len()));
        let path = match &self.path {
            PathChoice::Record(_) => PathChoice::Record(other),
            PathChoice::Raw(_) => PathChoice::Raw(other),
            PathChoice::Repair(_) => PathChoice::Repair(other),
            p => p.clone(),
        };
        RestInput { path, ..self.clone() }
    }
}

// ---------------------------------------------------------------------------------------
// rest: the server

struct Harness {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    backends: Vec<Arc<MemoryBackend>>,
    template: Vec<Vec<(String, Bytes)>>,
}

impl Harness {
    fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::new)
    }

    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let backends: Vec<Arc<MemoryBackend>> = (1..=3)
            .map(|i| Arc::new(MemoryBackend::new(format!("mem-{i}"), format!("Memory {i}"))))
            .collect();
        let db = rt.block_on(async {
            let mut b = VaultDb::builder()
                .threshold(2)
                .segment_size(vaultdb_core::manifest::MIN_SEGMENT_SIZE)
                .call_policy(CallPolicy {
                    timeout: Duration::from_secs(5),
                    max_attempts: 1,
                    base_backoff: Duration::from_millis(1),
                    max_backoff: Duration::from_millis(1),
                });
            for backend in &backends {
                b = b.backend_arc(backend.clone());
            }
            let db = b.open().await.expect("open the fuzzing store");
            for r in stored_records() {
                db.put(r).await.expect("store a record");
            }
            db
        });
        let template = backends.iter().map(|b| b.snapshot()).collect();
        let mut tokens = Tokens::default();
        tokens.add_plain("reader", Role::Read, READ_TOKEN);
        tokens.add_plain("writer", Role::Write, WRITE_TOKEN);
        tokens.add_plain("root", Role::Admin, ADMIN_TOKEN);
        let limits = Limits { body_limit: 64 << 10, request_timeout: Duration::from_secs(20) };
        let app = vaultdb::app(AppState::new(db, tokens, None, limits));
        Harness { rt, app, backends, template }
    }

    /// Puts every backend back to the objects it held after setup.
    fn restore(&self) {
        for (b, objects) in self.backends.iter().zip(&self.template) {
            b.clear();
            for (k, v) in objects {
                b.raw_put(k.clone(), v.clone());
            }
        }
    }
}

/// Restores the store when dropped, also when a check panics.
struct Restore(&'static Harness);

impl Drop for Restore {
    fn drop(&mut self) {
        self.0.restore();
    }
}

/// Documented error codes and their statuses (crates/vaultdb/README.md, "REST API").
const ERROR_CODES: [(&str, u16); 16] = [
    ("INVALID_REQUEST", 400),
    ("INVALID_CONFIG", 400),
    ("INVALID_INPUT", 400),
    ("UNAUTHORIZED", 401),
    ("FORBIDDEN", 403),
    ("RECORD_NOT_FOUND", 404),
    ("NOT_FOUND", 404),
    ("METHOD_NOT_ALLOWED", 405),
    ("PAYLOAD_TOO_LARGE", 413),
    ("RANGE_NOT_SATISFIABLE", 416),
    ("SPLIT_FAILED", 500),
    ("RECONSTRUCT_FAILED", 500),
    ("HMAC_FAILED", 502),
    ("INSUFFICIENT_SHARES", 503),
    ("BACKEND_ERROR", 503),
    ("REQUEST_TIMEOUT", 503),
];

/// What the server answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Serves one request derived from `data` in-process and checks the answer (see the
/// [module docs](self)).
pub fn check_rest(data: &[u8]) {
    let Ok(input) = RestInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let Some(req) = input.request() else {
        return;
    };
    let method = req.method().clone();
    let what = format!("{method} {}", req.uri());
    let h = Harness::get();
    let answer = h.serve(req, &what);
    check_answer(&method, &what, &answer);
    // An error message that contains the path's id: an echo of the id, or the id happens to
    // be a piece of the message's fixed text (the fuzzer learns those)? The same request
    // with another id of the same length tells: fixed text stays the same.
    let message = answer.error_message();
    if let (Some(id), Some(message)) = (input.distinctive_id(), message.as_deref())
        && message.contains(&id)
        && let Some(req) = input.with_other_id(&id).request()
    {
        let again = h.serve(req, &what).error_message();
        assert!(
            again.as_deref() == Some(message),
            "{what}: the error message echoes the id: {message} (with another id: {again:?})"
        );
    }
}

impl Harness {
    /// Serves one request and reads the whole answer; then restores the store.
    fn serve(&'static self, req: Request<Body>, what: &str) -> Answer {
        let _restore = Restore(self);
        self.rt.block_on(async {
            let resp = self.app.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await;
            let body = body.unwrap_or_else(|e| panic!("{what}: the response body failed: {e}"));
            Answer { status: parts.status, headers: parts.headers, body }
        })
    }
}

impl Answer {
    /// The `error.message` of an error answer.
    fn error_message(&self) -> Option<String> {
        if !(self.status.is_client_error() || self.status.is_server_error()) {
            return None;
        }
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        v["error"]["message"].as_str().map(str::to_owned)
    }
}

fn check_answer(method: &Method, what: &str, a: &Answer) {
    let status = a.status;
    let header = |name: header::HeaderName| a.headers.get(name).and_then(|v| v.to_str().ok());
    let is_json = header(header::CONTENT_TYPE).is_some_and(|c| c.starts_with("application/json"));
    if *method != Method::HEAD
        && let Some(len) = header(header::CONTENT_LENGTH)
    {
        assert_eq!(len, a.body.len().to_string(), "{what}: Content-Length is not the body's");
    }
    if status.is_client_error() || status.is_server_error() {
        if *method == Method::HEAD && a.body.is_empty() {
            return;
        }
        assert!(is_json, "{what}: {status} without a JSON content type");
        let v: Value = serde_json::from_slice(&a.body)
            .unwrap_or_else(|e| panic!("{what}: {status} with a body that is not JSON: {e}"));
        let code = v["error"]["code"].as_str();
        let message = v["error"]["message"].as_str();
        let (Some(code), Some(message)) = (code, message) else {
            panic!("{what}: {status} with a body that is not {{error: {{code, message}}}}: {v}");
        };
        let Some((_, want)) = ERROR_CODES.iter().find(|(c, _)| *c == code) else {
            panic!("{what}: {status} with an undocumented code {code}: {message}");
        };
        assert_eq!(status.as_u16(), *want, "{what}: code {code} with status {status}: {message}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(header(header::WWW_AUTHENTICATE), Some("Bearer"), "{what}: 401 header");
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            let cr = header(header::CONTENT_RANGE).unwrap_or_default();
            assert!(cr.starts_with("bytes */"), "{what}: 416 with Content-Range {cr:?}");
        }
        return;
    }
    assert!(status.is_success(), "{what}: unexpected status {status}");
    if *method == Method::HEAD {
        return;
    }
    // The JSON answers of the API (raw reads, which carry Accept-Ranges, serve stored bytes
    // with their stored content type, which need not be JSON, and 206 serves a part).
    if is_json && a.headers.get(header::ACCEPT_RANGES).is_none() {
        let parsed = serde_json::from_slice::<Value>(&a.body);
        assert!(parsed.is_ok(), "{what}: {status} JSON body does not parse");
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let cr = header(header::CONTENT_RANGE).unwrap_or_default();
        let parsed = cr.strip_prefix("bytes ").and_then(|r| {
            let (span, total) = r.split_once('/')?;
            let (s, e) = span.split_once('-')?;
            Some((s.parse::<u64>().ok()?, e.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
        });
        let Some((s, e, total)) = parsed else {
            panic!("{what}: 206 with Content-Range {cr:?}");
        };
        assert!(s <= e && e < total, "{what}: 206 with Content-Range {cr:?}");
        assert_eq!(e - s + 1, a.body.len() as u64, "{what}: 206 body is not its Content-Range");
    }
}

/// REST seeds: inputs from a fixed random stream, the first of each (method, route, answer
/// status), successful answers first, then errors other than 401, 404 and 405; at most 48.
/// They depend on the `arbitrary` crate's byte format, so they are regenerated (not
/// compared) when it changes.
fn rest_seeds() -> Vec<(String, Vec<u8>)> {
    let mut rng = CsRng::from_seed([7; 32]);
    let mut first = std::collections::BTreeMap::new();
    for i in 0..4000u32 {
        let mut len = [0u8; 2];
        rng.fill_bytes(&mut len);
        let mut data = vec![0u8; 8 + usize::from(u16::from_le_bytes(len)) % 400];
        rng.fill_bytes(&mut data);
        let Ok(input) = RestInput::arbitrary_take_rest(Unstructured::new(&data)) else {
            continue;
        };
        let Some(req) = input.request() else {
            continue;
        };
        let route = format!("{:?}", input.path);
        let route = route.split('(').next().unwrap_or_default().to_lowercase();
        let method = req.method().as_str().to_lowercase();
        let status = Harness::get().serve(req, "a seed").status.as_u16();
        let rank = match status {
            200..=299 => 0,
            401 | 404 | 405 => 2,
            _ => 1,
        };
        first.entry((rank, method.clone(), route.clone(), status)).or_insert_with(|| {
            let name = format!("seed-{route}-{method}-{status}-{i:04}");
            let name: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
            (name, data)
        });
    }
    first.into_values().take(48).collect()
}
