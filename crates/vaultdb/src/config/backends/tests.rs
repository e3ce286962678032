//! The backend entries: every key maps onto its crate's configuration, secrets come from
//! the environment and never show, and bad sections fail at load time naming the backend.

use std::path::Path;
use std::time::Duration;

use vaultdb_azure::AzureCredentials;
use vaultdb_gcs::GcsCredentials;
use vaultdb_s3::S3Credentials;

use super::{BackendEntry, CONNECTION_STRING_ENV, Env};
use crate::config::{Loaded, Source};
use crate::error::CliError;

fn parse(text: &str) -> Result<Loaded, CliError> {
    Loaded::from_text(text, Source::File("/etc/vaultdb/vaultdb.toml".into()))
}

/// A fake environment for the secrets the sections name.
fn fake_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |k: &str| map.get(k).cloned()
}

/// The crate configuration of backend `$i` of `$l`, a `$kind` section, with secrets from
/// `$env`.
macro_rules! config {
    ($kind:ident, $l:expr, $i:expr, $env:expr $(,)?) => {
        match &$l.config.backends[$i] {
            BackendEntry::$kind(s) => s.to_config($env).unwrap(),
            other => panic!("{other:?}"),
        }
    };
}

/// What every call to backend `i`, built with secrets from `env`, fails with (a backend
/// whose secrets are missing is built, and fails its calls).
async fn call_error(l: &Loaded, i: usize, env: Env<'_>) -> vaultdb_core::BackendError {
    let backends = l.backends_with(env);
    let key = vaultdb_core::Key::new("k").unwrap();
    let e = backends[i].get(&key, 1).await.unwrap_err();
    let root = vaultdb_core::KeyPrefix::default();
    let list = backends[i].list_page(&root, vaultdb_core::ListFrom::Start).await.unwrap_err();
    assert_eq!(list.message(), e.message());
    e
}

/// A multi-cloud file whose every constructor runs offline: S3 with static keys from
/// the environment, GCS anonymous on an emulator URL, Azure with a managed identity.
const MULTI_CLOUD: &str = r#"
threshold = 2

[[backends]]
kind = "s3"
id = "aws"
name = "AWS S3 us-west-2"
bucket = "acme-vaultdb"
prefix = "team/vault"
region = "us-west-2"
access_key_id_env = "TEST_AWS_KEY_ID"
secret_access_key_env = "TEST_AWS_SECRET"

[[backends]]
kind = "gcs"
id = "gcp"
bucket = "acme-vaultdb-eu"
endpoint = "http://127.0.0.1:4443"
allow_http = true
credentials = "anonymous"

[[backends]]
kind = "azure"
id = "azure"
name = "Azure Blob East Asia"
account = "acmevaultdb"
container = "vaultdb-asia"
credentials = "managed_identity"
client_id = "11111111-2222-3333-4444-555555555555"
"#;

#[test]
fn multi_cloud_config_builds_three_backends() {
    let l = parse(MULTI_CLOUD).unwrap();
    assert_eq!(l.describe(), "2-of-3 over aws, gcp, azure");
    let env = fake_env(&[
        ("TEST_AWS_KEY_ID", "AKIDEXAMPLE"),
        ("TEST_AWS_SECRET", "SECRET-S3-DO-NOT-PRINT"),
    ]);
    let b = &l.config.backends;
    assert_eq!((b[0].id(), b[0].name(), b[0].kind()), ("aws", "AWS S3 us-west-2", "s3"));
    let config = config!(S3, &l, 0, &env);
    assert_eq!(config.bucket, "acme-vaultdb");
    assert_eq!(config.prefix, "team/vault");
    assert_eq!(config.region, "us-west-2");
    assert_eq!(config.endpoint, None);
    assert!(!config.force_path_style && !config.allow_http);
    match &config.credentials {
        S3Credentials::Static { access_key_id, secret_access_key, session_token } => {
            assert_eq!(access_key_id, "AKIDEXAMPLE");
            assert_eq!(secret_access_key, "SECRET-S3-DO-NOT-PRINT");
            assert_eq!(*session_token, None);
        }
        other => panic!("static credentials expected, got {other:?}"),
    }
    // No name: the id stands in.
    assert_eq!((b[1].id(), b[1].name(), b[1].kind()), ("gcp", "gcp", "gcs"));
    let g = config!(Gcs, &l, 1, &env);
    assert_eq!(g.bucket, "acme-vaultdb-eu");
    assert_eq!(g.endpoint, "http://127.0.0.1:4443");
    assert!(g.allow_http);
    assert!(matches!(g.credentials, GcsCredentials::Anonymous));
    assert_eq!((b[2].id(), b[2].kind()), ("azure", "azure"));
    let a = config!(Azure, &l, 2, &env);
    assert_eq!(a.account, "acmevaultdb");
    assert_eq!(a.container, "vaultdb-asia");
    assert!(!a.emulator && !a.allow_http);
    match &a.credentials {
        AzureCredentials::ManagedIdentity { client_id } => {
            assert_eq!(client_id.as_deref(), Some("11111111-2222-3333-4444-555555555555"));
        }
        other => panic!("{other:?}"),
    }
    // Nothing shows the secret.
    let shown = format!("{config:?} {g:?} {a:?} {l:?}");
    assert!(!shown.contains("SECRET-S3-DO-NOT-PRINT"), "{shown}");

    // The backends build without any network access, in share order.
    let backends = l.backends_with(&env);
    let ids: Vec<&str> = backends.iter().map(|b| b.id()).collect();
    assert_eq!(ids, ["aws", "gcp", "azure"]);
    assert_eq!(backends[2].name(), "Azure Blob East Asia");
}

#[test]
fn readme_multi_cloud_example_maps() {
    let readme = include_str!("../../../README.md");
    let at = readme.find("### Multi-cloud").expect("README has a multi-cloud section");
    let block = &readme[at..];
    let block = &block[block.find("```toml\n").expect("a toml block") + 8..];
    let block = &block[..block.find("```").unwrap()];
    // The token hash is a placeholder in the README.
    let text: String = block
        .lines()
        .map(|l| {
            if l.starts_with("sha256 = ") {
                format!("sha256 = \"{}\"\n", "ab".repeat(32))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let l = parse(&text).unwrap();
    assert_eq!(l.describe(), "2-of-3 over aws, gcp, azure");
    // Credentials from each provider's usual sources: no variable is needed to map.
    let env = fake_env(&[]);
    let c = config!(S3, &l, 0, &env);
    assert!(matches!(c.credentials, S3Credentials::Chain) && c.region == "us-west-2");
    let g = config!(Gcs, &l, 1, &env);
    assert!(
        matches!(g.credentials, GcsCredentials::Default)
            && g.endpoint == vaultdb_gcs::DEFAULT_ENDPOINT
    );
    let a = config!(Azure, &l, 2, &env);
    assert!(matches!(a.credentials, AzureCredentials::ManagedIdentity { client_id: None }));
}

#[test]
fn every_cloud_key_maps() {
    let text = r#"
threshold = 2
[[backends]]
kind = "s3"
id = "s3"
bucket = "b"
endpoint = "http://127.0.0.1:9000"
force_path_style = true
allow_http = true
strict_checksums = true
page_size = 10
access_key_id = "AKID"
secret_access_key_env = "S3_SECRET"
session_token_env = "S3_TOKEN"
[[backends]]
kind = "minio"
id = "minio"
endpoint = "https://minio.internal:9000"
bucket = "vault"
prefix = "shares"
region = "eu-1"
allow_http = true
page_size = 20
access_key_id_env = "MINIO_KEY"
[[backends]]
kind = "minio"
id = "minio-chain"
endpoint = "http://127.0.0.1:9000"
bucket = "vault"
[[backends]]
kind = "gcs"
id = "gcs-json"
bucket = "g"
page_size = 30
service_account_json_env = "GCS_JSON"
[[backends]]
kind = "gcs"
id = "gcs-file"
bucket = "g"
credentials_file = "keys/sa.json"
[[backends]]
kind = "azure"
id = "az-key"
account = "acct"
container = "c"
prefix = "p"
endpoint = "http://127.0.0.1:10000/acct"
allow_http = true
page_size = 5000
timeout = "7s"
credentials = "access_key"
[[backends]]
kind = "azure"
id = "az-sas"
account = "acct"
container = "c"
credentials = "sas"
sas_token_env = "AZ_SAS"
[[backends]]
kind = "azure"
id = "az-sp"
account = "acct"
container = "c"
credentials = "client_secret"
tenant_id = "t"
client_id = "c"
[[backends]]
kind = "azure"
id = "az-wi"
account = "acct"
container = "c"
credentials = "workload_identity"
tenant_id = "t"
client_id = "c"
token_file = "/var/run/token"
[[backends]]
kind = "azure"
id = "azurite"
container = "vaultdb-test"
emulator = true
[[backends]]
kind = "azure"
id = "az-env"
account = "acct"
container = "c"
"#;
    let l = parse(text).unwrap();
    let env = fake_env(&[
        ("S3_SECRET", "s3-secret"),
        ("S3_TOKEN", "s3-token"),
        ("MINIO_KEY", "minio-key"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
        ("GCS_JSON", "{\"type\": \"service_account\"}"),
        ("AZURE_STORAGE_ACCOUNT_KEY", "az-account-key"),
        ("AZ_SAS", "sv=1&sig=x"),
        ("AZURE_CLIENT_SECRET", "az-secret"),
    ]);
    let c = config!(S3, &l, 0, &env);
    assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    // No region written: resolved from the environment when the client is built.
    assert_eq!(c.region, "");
    assert!(c.force_path_style && c.allow_http && c.strict_checksums);
    assert_eq!(c.page_size, 10);
    assert!(matches!(&c.credentials, S3Credentials::Static {
        access_key_id, secret_access_key, session_token: Some(t)
    } if access_key_id == "AKID" && secret_access_key == "s3-secret" && t == "s3-token"));

    let m = config!(Minio, &l, 1, &env);
    let m3 = m.to_s3_config().unwrap();
    assert_eq!(m3.endpoint.as_deref(), Some("https://minio.internal:9000"));
    assert_eq!((m3.bucket.as_str(), m3.prefix.as_str()), ("vault", "shares"));
    assert_eq!(m3.region, "eu-1");
    assert!(m3.force_path_style && m3.allow_http);
    assert_eq!(m3.page_size, 20);
    // The secret key defaults to AWS_SECRET_ACCESS_KEY.
    assert!(matches!(&m3.credentials, S3Credentials::Static {
        access_key_id, secret_access_key, session_token: None
    } if access_key_id == "minio-key" && secret_access_key == "aws-secret"));
    let m2 = config!(Minio, &l, 2, &env);
    // No keys: the credential chain; plain http on loopback is allowed by the preset.
    let m3 = m2.to_s3_config().unwrap();
    assert!(matches!(m3.credentials, S3Credentials::Chain) && m3.allow_http);

    let g = config!(Gcs, &l, 3, &env);
    assert_eq!(g.page_size, 30);
    assert!(
        matches!(&g.credentials, GcsCredentials::ServiceAccountJson(j) if j.contains("service_account"))
    );
    let g2 = config!(Gcs, &l, 4, &env);
    // Relative key files resolve against the configuration file's directory.
    assert!(matches!(&g2.credentials, GcsCredentials::ServiceAccountFile(p)
        if p == Path::new("/etc/vaultdb/keys/sa.json")));

    let az = |i: usize| config!(Azure, &l, i, &env);
    let a = az(5);
    assert_eq!((a.account.as_str(), a.prefix.as_str()), ("acct", "p"));
    assert_eq!(a.endpoint.as_deref(), Some("http://127.0.0.1:10000/acct"));
    assert!(a.allow_http && !a.emulator);
    assert_eq!(a.page_size, 5000);
    assert_eq!(a.timeout, Some(Duration::from_secs(7)));
    assert!(matches!(&a.credentials, AzureCredentials::AccessKey(k) if k == "az-account-key"));
    assert!(matches!(&az(6).credentials, AzureCredentials::Sas(s) if s == "sv=1&sig=x"));
    assert!(matches!(&az(7).credentials, AzureCredentials::ClientSecret {
        tenant_id, client_id, client_secret
    } if tenant_id == "t" && client_id == "c" && client_secret == "az-secret"));
    assert!(matches!(&az(8).credentials, AzureCredentials::WorkloadIdentity {
        token_file, ..
    } if token_file == "/var/run/token"));
    let a = az(9);
    assert!(a.emulator && a.allow_http);
    assert_eq!(a.account, vaultdb_azure::AZURITE_ACCOUNT);
    assert!(matches!(a.credentials, AzureCredentials::AccessKey(_)));
    assert!(matches!(az(10).credentials, AzureCredentials::Environment));

    let shown =
        format!("{c:?} {m:?} {m2:?} {g:?} {g2:?} {:?}", (5..=10).map(az).collect::<Vec<_>>());
    for secret in ["s3-secret", "s3-token", "aws-secret", "az-account-key", "sig=x", "az-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[tokio::test]
async fn missing_secret_variables_fail_that_backend_naming_them() {
    let l = parse(MULTI_CLOUD).unwrap();
    let e = call_error(&l, 0, &fake_env(&[])).await;
    assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent);
    assert!(
        e.message().contains("backend \"aws\" (s3)")
            && e.message().contains("TEST_AWS_KEY_ID")
            && e.message().contains("not set"),
        "{e}"
    );
    let e = call_error(&l, 0, &fake_env(&[("TEST_AWS_KEY_ID", "AKID")])).await;
    assert!(e.message().contains("TEST_AWS_SECRET"), "{e}");
    // The other backends are built as configured.
    let backends = l.backends_with(&fake_env(&[]));
    assert_eq!(backends.iter().map(|b| b.id()).collect::<Vec<_>>(), ["aws", "gcp", "azure"]);
    assert!(format!("{:?}", backends[1]).starts_with("GcsBackend"));
    let l = parse(
        "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
         [[backends]]\nkind = \"azure\"\nid = \"az\"\naccount = \"a\"\ncontainer = \"c\"\n\
         credentials = \"access_key\"\n",
    )
    .unwrap();
    let e = call_error(&l, 1, &fake_env(&[])).await;
    assert!(e.message().contains("AZURE_STORAGE_ACCOUNT_KEY"), "{e}");
}

#[tokio::test]
async fn configs_a_crate_refuses_make_that_backend_unavailable_naming_it() {
    // Plain http needs allow_http: refused by the crate when the backend is built. That costs
    // the store this backend only: it is built as Unavailable and its calls say why.
    let text = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
                [[backends]]\nkind = \"s3\"\nid = \"aws\"\nbucket = \"b\"\n\
                endpoint = \"http://10.0.0.1:9000\"\naccess_key_id = \"k\"\n";
    let env = fake_env(&[("AWS_SECRET_ACCESS_KEY", "SECRET-XYZ")]);
    let l = parse(text).unwrap();
    let backends = l.backends_with(&env);
    assert_eq!(backends.iter().map(|b| b.id()).collect::<Vec<_>>(), ["m", "aws"]);
    assert!(format!("{:?}", backends[1]).starts_with("Unavailable"), "{:?}", backends[1]);
    let e = call_error(&l, 1, &env).await;
    assert_eq!(e.kind(), vaultdb_core::BackendErrorKind::Permanent);
    assert!(
        e.message().starts_with("backend \"aws\" (s3): ") && e.message().contains("allow_http"),
        "{e}"
    );
    assert!(!e.message().contains("SECRET-XYZ"));
    // The memory backend works.
    let key = vaultdb_core::Key::new("k").unwrap();
    assert_eq!(backends[0].get(&key, 1).await.unwrap(), None);
}

#[test]
fn cloud_field_errors() {
    let s3 = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
              [[backends]]\nkind = \"s3\"\nid = \"aws\"\nbucket = \"b\"\nregion = \"us-west-2\"\n";
    let az = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
              [[backends]]\nkind = \"azure\"\nid = \"az\"\ncontainer = \"c\"\n";
    let gcs = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
               [[backends]]\nkind = \"gcs\"\nid = \"g\"\nbucket = \"b\"\n";
    let cases = [
        (s3.replace("bucket = \"b\"", "bucket = \"\""), "bucket must not be empty"),
        (s3.replace("region =", "regoin ="), "unknown field `regoin`"),
        (format!("{s3}endpoint = \"s3.example.com\"\n"), "endpoint must start with"),
        (format!("{s3}page_size = 0\n"), "page_size must be between 1 and 1000"),
        (format!("{s3}access_key_id = \"a\"\naccess_key_id_env = \"B\"\n"), "not both"),
        (
            format!("{s3}secret_access_key_env = \"S\"\n"),
            "secret_access_key_env needs access_key_id",
        ),
        (
            format!("{s3}access_key_id = \"a\"\nsecret_access_key = \"INLINE-SECRET\"\n"),
            "unknown field `secret_access_key`",
        ),
        (
            "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
             [[backends]]\nkind = \"minio\"\nid = \"mi\"\nbucket = \"b\"\n"
                .to_owned(),
            "missing field `endpoint`",
        ),
        (
            format!("{gcs}service_account_file = \"a.json\"\nservice_account_json_env = \"J\"\n"),
            "not both",
        ),
        (
            format!("{gcs}credentials = \"anonymous\"\nservice_account_file = \"a.json\"\n"),
            "go with credentials = \"service_account\"",
        ),
        (format!("{gcs}credentials = \"service_account\"\n"), "needs service_account_file"),
        (format!("{gcs}credentials = \"magic\"\n"), "unknown variant `magic`"),
        (az.to_owned(), "account is required"),
        (
            format!("{az}emulator = true\nendpoint = \"http://127.0.0.1:1\"\n"),
            "AZURITE_BLOB_STORAGE_URL",
        ),
        (
            format!("{az}account = \"a\"\naccess_key_env = \"K\"\n"),
            "access_key_env goes with credentials = \"access_key\"",
        ),
        (
            format!("{az}account = \"a\"\ncredentials = \"client_secret\"\nclient_id = \"c\"\n"),
            "needs tenant_id",
        ),
        (
            format!(
                "{az}account = \"a\"\ncredentials = \"workload_identity\"\ntenant_id = \"t\"\nclient_id = \"c\"\n"
            ),
            "needs token_file",
        ),
        (format!("{az}account = \"a\"\npage_size = 5001\n"), "between 1 and 5000"),
    ];
    for (text, want) in &cases {
        let e = parse(text).unwrap_err();
        assert_eq!(e.code, "INVALID_CONFIG", "{text}");
        assert!(e.message.contains(want), "{text}: {} lacks {want}", e.message);
        assert!(!e.message.contains("INLINE-SECRET"), "{}", e.message);
    }
}

#[test]
fn azure_takes_a_connection_string_and_s3_leaves_the_region_to_the_environment() {
    let text = "threshold = 2\n\
                [[backends]]\nid = \"az\"\nurl = \"az://acct/c\"\n\
                [[backends]]\nid = \"aws\"\nurl = \"s3://b\"\n\
                [[backends]]\nid = \"aws2\"\nurl = \"s3://b?region=ap-south-1\"\n";
    let l = parse(text).unwrap();
    // Without a connection string: object_store's environment choice.
    let a = config!(Azure, &l, 0, &fake_env(&[]));
    assert!(matches!(a.credentials, AzureCredentials::Environment));
    // With one: its key (or SAS) and its endpoint; the URL's account stays.
    let cs = "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=c2VjcmV0;\
              BlobEndpoint=https://acct.blob.core.example/";
    let a = config!(Azure, &l, 0, &fake_env(&[(CONNECTION_STRING_ENV, cs)]));
    assert!(matches!(&a.credentials, AzureCredentials::AccessKey(k) if k == "c2VjcmV0"));
    assert_eq!(a.account, "acct");
    assert_eq!(a.endpoint.as_deref(), Some("https://acct.blob.core.example/"));
    let a = config!(
        Azure,
        &l,
        0,
        &fake_env(&[(CONNECTION_STRING_ENV, "AccountName=x;SharedAccessSignature=sv=1&sig=y")]),
    );
    assert!(matches!(&a.credentials, AzureCredentials::Sas(s) if s == "sv=1&sig=y"));
    // One without a secret is that backend's error, naming the variable, not its value.
    let BackendEntry::Azure(sec) = &l.config.backends[0] else { unreachable!() };
    let e = sec
        .to_config(&fake_env(&[(CONNECTION_STRING_ENV, "AccountName=x;Weird=secretvalue")]))
        .unwrap_err();
    assert!(e.contains(CONNECTION_STRING_ENV) && e.contains("AccountName, Weird"), "{e}");
    assert!(!e.contains("secretvalue"), "{e}");
    // S3 without a region: empty, resolved by vaultdb_s3::resolve_region when the client
    // is built (AWS_REGION, AWS_DEFAULT_REGION, the profile's); a written one is kept.
    assert_eq!(config!(S3, &l, 1, &fake_env(&[])).region, "");
    assert_eq!(config!(S3, &l, 2, &fake_env(&[])).region, "ap-south-1");
    // A per-backend AWS profile, for the chain and the region; not with static keys.
    let l = parse(
        "threshold = 2\n[[backends]]\nid = \"a\"\nurl = \"s3://b?profile=prod\"\n\
                   [[backends]]\nid = \"b\"\nurl = \"s3://c\"\n",
    )
    .unwrap();
    let c = config!(S3, &l, 0, &fake_env(&[]));
    assert!(c.profile.as_deref() == Some("prod") && matches!(c.credentials, S3Credentials::Chain));
    let e = parse(
        "threshold = 2\n[[backends]]\nid = \"a\"\nurl = \"s3://b?profile=p\"\n\
                   access_key_id = \"AK\"\n[[backends]]\nid = \"b\"\nurl = \"s3://c\"\n",
    )
    .unwrap_err();
    assert!(e.message.contains("profile goes with the credential chain"), "{}", e.message);
}
