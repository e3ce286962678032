//! AWS IAM Identity Center (SSO) profiles, offline. A temporary home directory holds the
//! profiles (`~/.aws/config`) and the tokens `aws sso login` would have cached
//! (`~/.aws/sso/cache/<SHA-1 hex of the session name, or of the start URL>.json`); one axum
//! server on 127.0.0.1 plays the SSO portal (`GET /federation/credentials`) and the S3
//! endpoint. The profiles send the SSO client to it through their `services` section.
//!
//! The SDK finds the home directory and the files through `HOME` and `AWS_CONFIG_FILE`,
//! which are process-wide: each test runs its checks on the backend in a child process (this
//! test binary again, with a clean environment), while the parent serves the fakes and then
//! checks what they were sent.

#![cfg(feature = "credential-chain")]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_sdk_s3::config::ProvideCredentials;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use vaultdb_core::{BackendErrorKind, Key, StorageBackend};
use vaultdb_s3::{S3Backend, S3Config};

/// Set in the child process: the fake server's URL.
const CHILD: &str = "VAULTDB_TEST_SSO_CHILD";

/// The account and role every profile asks the portal for.
const ACCOUNT: &str = "111122223333";
const ROLE: &str = "VaultWriter";
/// The tokens the portal accepts: the session `corp`'s, and the legacy profile's.
const TOKEN: &str = "token-of-sso-session-corp";
const LEGACY_TOKEN: &str = "token-of-legacy-start-url";
/// The role credentials the portal answers with; they expire on 2100-01-01 (ms).
const ACCESS_KEY: &str = "ASIAPORTALEXAMPLE";
const SECRET_KEY: &str = "portal-secret-access-key";
const SESSION_TOKEN: &str = "portal-session-token";
const EXPIRATION_MS: u64 = 4_102_444_800_000;

/// The token cache files: the SHA-1 hex of the session name (or, for a profile without
/// `sso_session`, of its start URL), as aws-config's `sso/cache.rs` and the AWS CLI name them
/// (`printf corp | sha1sum`).
const CACHE_CORP: &str = "ee0bfd2552fbd840c02cc48b6e823320543c450f";
const CACHE_EXPIRED: &str = "45a6f9adb1df3a78aafc71391c7d3bfa7680229b";
const CACHE_REVOKED: &str = "8375cdf2758cf48c9c9ab140326bdaef30f59406";
/// `printf https://legacy.example/start | sha1sum`
const CACHE_LEGACY: &str = "44f131d851233caf8935977bab57d47642050afc";

/// The profiles; `{portal}` and `{dead}` are the fake server's URL and a closed port's.
const CONFIG: &str = "\
[profile vault]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = VaultWriter
region = eu-west-3
services = fake

[profile legacy]
sso_start_url = https://legacy.example/start
sso_region = eu-west-1
sso_account_id = 111122223333
sso_role_name = VaultWriter
region = ap-south-1
services = fake

[profile expired]
sso_session = expired
sso_account_id = 111122223333
sso_role_name = VaultWriter
services = fake

[profile never]
sso_session = never
sso_account_id = 111122223333
sso_role_name = VaultWriter
services = fake

[profile revoked]
sso_session = revoked
sso_account_id = 111122223333
sso_role_name = VaultWriter
services = fake

[profile down]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = VaultWriter
services = dead

[sso-session corp]
sso_start_url = https://corp.example/start
sso_region = eu-west-1

[sso-session expired]
sso_start_url = https://corp.example/start
sso_region = eu-west-1

[sso-session never]
sso_start_url = https://corp.example/start
sso_region = eu-west-1

[sso-session revoked]
sso_start_url = https://corp.example/start
sso_region = eu-west-1

[services fake]
sso =
  endpoint_url = {portal}

[services dead]
sso =
  endpoint_url = {dead}
";

/// One request the fake server received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The SSO portal's `GetRoleCredentials`: role credentials for a token it knows, 401
/// otherwise (as for a token signed out or revoked).
async fn portal(State(log): State<Log>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let token = headers.get("x-amz-sso_bearer_token").and_then(|v| v.to_str().ok());
    let known = matches!(token, Some(TOKEN | LEGACY_TOKEN));
    log.lock().unwrap().push(Seen { method, uri, headers });
    if !known {
        let body = r#"{"message":"Session token not found or invalid"}"#;
        return (StatusCode::UNAUTHORIZED, [("x-amzn-errortype", "UnauthorizedException")], body)
            .into_response();
    }
    let body = format!(
        r#"{{"roleCredentials":{{"accessKeyId":"{ACCESS_KEY}","secretAccessKey":"{SECRET_KEY}","sessionToken":"{SESSION_TOKEN}","expiration":{EXPIRATION_MS}}}}}"#
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// S3: every object is missing.
async fn s3(State(log): State<Log>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    log.lock().unwrap().push(Seen { method, uri, headers });
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// The fake server, until the test's runtime ends: its URL and what it received.
async fn fake_server() -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Log::default();
    let app = Router::new()
        .route("/federation/credentials", get(portal))
        .fallback(s3)
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

/// A home directory with the profiles for `portal` and the cached tokens.
fn home(portal: &str) -> tempfile::TempDir {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(aws.join("sso/cache")).unwrap();
    let config = CONFIG.replace("{portal}", portal).replace("{dead}", &dead);
    std::fs::write(aws.join("config"), config).unwrap();
    let token = |file: &str, token: &str, expires: &str| {
        let json = format!(
            r#"{{"accessToken":"{token}","expiresAt":"{expires}","region":"eu-west-1","startUrl":"https://corp.example/start"}}"#
        );
        std::fs::write(aws.join("sso/cache").join(format!("{file}.json")), json).unwrap();
    };
    token(CACHE_CORP, TOKEN, "2099-12-31T00:00:00Z");
    token(CACHE_LEGACY, LEGACY_TOKEN, "2099-12-31T00:00:00Z");
    token(CACHE_EXPIRED, TOKEN, "2020-01-01T00:00:00Z");
    token(CACHE_REVOKED, "a-token-signed-out-since", "2099-12-31T00:00:00Z");
    // No token for the session `never`: never signed in.
    home
}

/// Runs the test `name` of this binary again, in a child process whose environment has only
/// the home directory, the config file and the fake server's URL; panics unless it passed.
async fn run_child(name: &str, home: &Path, url: &str) {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(CHILD, url)
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join(".aws/config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join(".aws/credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for keep in ["PATH", "RUST_BACKTRACE"] {
        if let Some(value) = std::env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ran = stdout.contains("test result: ok. 1 passed");
    // Its lines marked, so that nothing counting `test result:` lines counts the child's.
    let marked = |text: &[u8]| {
        String::from_utf8_lossy(text).lines().map(|l| format!("  child| {l}\n")).collect::<String>()
    };
    let (stdout, stderr) = (marked(&out.stdout), marked(&out.stderr));
    print!("{stdout}");
    assert!(out.status.success(), "the child failed:\n{stdout}{stderr}");
    assert!(ran, "the child ran no test:\n{stdout}");
}

/// A backend on the fake S3 endpoint with the AWS profile `profile`, its region unset (so
/// the profile's).
/// In the child: the backend of `profile` makes its client in `region` and reads one key
/// (the fake S3 has none), signing with whatever the profile's credentials are.
async fn signs_in(url: &str, profile: &str, region: &str) {
    let b = backend(url, profile);
    let client = b.client().await.unwrap();
    assert_eq!(client.config().region().map(|r| r.as_ref()), Some(region));
    assert_eq!(b.get(&Key::new("k").unwrap(), 10).await.unwrap(), None);
}

fn backend(url: &str, profile: &str) -> S3Backend {
    let mut config = S3Config::emulator(url, "vault-bucket").with_region("");
    config.profile = Some(profile.to_owned());
    S3Backend::new(profile, profile, config).unwrap()
}

/// Whether `request` (received at `url`) is signed for S3 in `region` with the access key,
/// session token and secret key `secret` the portal hands out, by recomputing its SigV4
/// signature with S3's settings.
fn signed_with(request: &Seen, url: &str, region: &str, secret: &str) -> bool {
    use aws_sdk_s3::config::Credentials;
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    use aws_sigv4::sign::v4;

    let authorization = request.header("authorization");
    let field = |name: &str| {
        let start = authorization.find(name).expect(name) + name.len();
        authorization[start..].split([',', ' ']).next().unwrap_or("")
    };
    let (signed_headers, signature) = (field("SignedHeaders="), field("Signature="));
    let headers = signed_headers.split(';').map(|name| (name, request.header(name)));
    // x-amz-date is `20261206T211253Z`.
    let d = request.header("x-amz-date");
    assert_eq!(d.len(), 16, "x-amz-date {d:?}");
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    );
    let time = DateTime::from_str(&rfc3339, DateTimeFormat::DateTime).unwrap();
    let identity =
        Credentials::new(ACCESS_KEY, secret, Some(SESSION_TOKEN.into()), None, "expected").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time.try_into().unwrap())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let body = SignableBody::Precomputed(request.header("x-amz-content-sha256").to_owned());
    let uri = format!("{url}{}", request.uri);
    let signable = SignableRequest::new(request.method.as_str(), uri, headers, body).unwrap();
    sign(signable, &params).unwrap().signature() == signature
}

/// The requests the portal received.
fn portal_requests(log: &Log) -> Vec<Seen> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.uri.path() == "/federation/credentials")
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_sso_session_profile_signs_requests_with_the_portals_role_credentials() {
    if let Ok(url) = std::env::var(CHILD) {
        // The backend signs with what the portal returned (the parent checks the request),
        // in the profile's region; the fake S3 has no object.
        signs_in(&url, "vault", "eu-west-3").await;
        // The expiry shows in no request, and the SDK client does not hand out its
        // provider: the whole credentials, from the chain the backend wraps.
        let chain = DefaultCredentialsChain::builder().profile_name("vault").build().await;
        let credentials = chain.provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), ACCESS_KEY);
        assert_eq!(credentials.secret_access_key(), SECRET_KEY);
        assert_eq!(credentials.session_token(), Some(SESSION_TOKEN));
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_millis(EXPIRATION_MS);
        assert_eq!(credentials.expiry(), Some(expiry));
        return;
    }
    let (url, log) = fake_server().await;
    let home = home(&url);
    run_child(
        "an_sso_session_profile_signs_requests_with_the_portals_role_credentials",
        home.path(),
        &url,
    )
    .await;
    let portal = portal_requests(&log);
    assert!(!portal.is_empty(), "the portal was not asked");
    for r in &portal {
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.header("x-amz-sso_bearer_token"), TOKEN, "the cached token of session corp");
        let query = r.uri.query().unwrap_or("");
        assert!(query.contains(&format!("role_name={ROLE}")), "{query}");
        assert!(query.contains(&format!("account_id={ACCOUNT}")), "{query}");
    }
    let log = log.lock().unwrap();
    let get = log.iter().find(|s| s.uri.path() == "/vault-bucket/k").expect("the S3 request");
    let authorization = get.header("authorization");
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")),
        "{authorization}"
    );
    assert!(
        authorization.contains("/eu-west-3/s3/aws4_request"),
        "the profile's region: {authorization}"
    );
    assert_eq!(get.header("x-amz-security-token"), SESSION_TOKEN);
    // And the secret key: the signature is the one it makes, not another key's.
    assert!(signed_with(get, &url, "eu-west-3", SECRET_KEY), "{authorization}");
    assert!(!signed_with(get, &url, "eu-west-3", "another-secret-key"));
}

#[tokio::test]
async fn a_legacy_sso_profile_reads_the_token_cached_under_its_start_url() {
    if let Ok(url) = std::env::var(CHILD) {
        signs_in(&url, "legacy", "ap-south-1").await;
        return;
    }
    let (url, log) = fake_server().await;
    let home = home(&url);
    run_child("a_legacy_sso_profile_reads_the_token_cached_under_its_start_url", home.path(), &url)
        .await;
    let portal = portal_requests(&log);
    assert!(!portal.is_empty(), "the portal was not asked");
    for r in &portal {
        assert_eq!(r.header("x-amz-sso_bearer_token"), LEGACY_TOKEN);
    }
    let log = log.lock().unwrap();
    let get = log.iter().find(|s| s.uri.path() == "/vault-bucket/k").expect("the S3 request");
    let authorization = get.header("authorization");
    assert!(authorization.contains(&format!("Credential={ACCESS_KEY}/")), "{authorization}");
    assert!(authorization.contains("/ap-south-1/s3/aws4_request"), "{authorization}");
    assert_eq!(get.header("x-amz-security-token"), SESSION_TOKEN);
    assert!(signed_with(get, &url, "ap-south-1", SECRET_KEY), "{authorization}");
}

#[tokio::test]
async fn a_missing_expired_or_refused_sso_token_asks_for_aws_sso_login() {
    if let Ok(url) = std::env::var(CHILD) {
        for profile in ["never", "expired", "revoked"] {
            let e = backend(&url, profile).get(&Key::new("k").unwrap(), 10).await.unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
            let message = e.to_string();
            assert!(message.contains(&format!("`aws sso login --profile {profile}`")), "{message}");
            assert!(
                !message.contains("a-token-signed-out-since"),
                "no token in messages: {message}"
            );
            println!("{profile}: {message}");
        }
        return;
    }
    let (url, log) = fake_server().await;
    let home = home(&url);
    run_child("a_missing_expired_or_refused_sso_token_asks_for_aws_sso_login", home.path(), &url)
        .await;
    // Neither the missing token nor the expired one was sent; the refused one was, and
    // nothing reached S3 without credentials.
    let tokens: Vec<String> = portal_requests(&log)
        .iter()
        .map(|r| r.header("x-amz-sso_bearer_token").to_owned())
        .collect();
    assert!(!tokens.is_empty(), "the portal was not asked");
    assert!(tokens.iter().all(|t| t == "a-token-signed-out-since"), "{tokens:?}");
    assert!(log.lock().unwrap().iter().all(|s| s.uri.path() == "/federation/credentials"));
}

#[tokio::test]
async fn an_unreachable_sso_portal_is_transient() {
    if let Ok(url) = std::env::var(CHILD) {
        let e = backend(&url, "down").get(&Key::new("k").unwrap(), 10).await.unwrap_err();
        assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
        assert!(!e.to_string().contains("aws sso login"), "{e}");
        return;
    }
    let (url, log) = fake_server().await;
    let home = home(&url);
    run_child("an_unreachable_sso_portal_is_transient", home.path(), &url).await;
    assert!(log.lock().unwrap().is_empty(), "nothing reached the fake server");
}
