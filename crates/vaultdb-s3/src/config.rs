//! [`S3Config`] and [`S3Credentials`].

use std::fmt;
use std::path::Path;

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use vaultdb_core::BackendError;
use vaultdb_core::backend::ObjectNames;

/// The default number of keys per listing page (S3's maximum).
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// Where an [`S3Backend`](crate::S3Backend) keeps its objects and how it reaches them.
///
/// Start from [`S3Config::new`] and set what differs from the defaults:
///
/// ```
/// use vaultdb_s3::{S3Config, S3Credentials};
///
/// let aws = S3Config::new("my-vault-bucket").with_region("eu-central-1").with_prefix("vaultdb");
/// let other = S3Config::new("shares")
///     .with_endpoint("https://s3.example.net")
///     .with_path_style(true)
///     .with_credentials(S3Credentials::Static {
///         access_key_id: "AKID...".into(),
///         secret_access_key: "...".into(),
///         session_token: None,
///     });
/// # let _ = (aws, other);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct S3Config {
    /// The bucket. It must exist: the backend never creates buckets.
    pub bucket: String,
    /// A key prefix inside the bucket ("folder"), so one bucket can hold other data or
    /// several stores. Empty (the default) for the bucket root; otherwise `/`-separated
    /// segments, and a trailing `/` is added if missing.
    pub prefix: String,
    /// The region (`us-east-1` by default). S3-compatible stores mostly ignore it, but
    /// requests are signed for it. Empty: found as the AWS tools find it, when the client is
    /// built ([`resolve_region`]).
    pub region: String,
    /// A custom endpoint URL (S3-compatible stores, emulators, VPC endpoints); `None` for
    /// AWS's own endpoint of the region.
    pub endpoint: Option<String>,
    /// Address buckets by path (`https://host/bucket/key`) instead of by virtual host
    /// (`https://bucket.host/key`). Most S3-compatible stores and emulators need it.
    pub force_path_style: bool,
    /// Accept an `http://` endpoint. Off by default, so that requests and shares never
    /// cross a network unencrypted by accident.
    pub allow_http: bool,
    /// How requests are signed.
    pub credentials: S3Credentials,
    /// Ask for and check the SDK's extra CRC checksums on every put and get
    /// (`WhenSupported`). Off by default (`WhenRequired`): many S3-compatible stores reject
    /// or mishandle the newer checksum headers, and every VaultDB share already carries a
    /// CRC32C and is authenticated by an HMAC.
    pub strict_checksums: bool,
    /// Keys per listing page, 1 to 1000 ([`DEFAULT_PAGE_SIZE`]).
    pub page_size: usize,
    /// The shared config and credentials files' profile for the credential chain and the
    /// region (as `AWS_PROFILE` sets it for the AWS CLI), IAM Identity Center (SSO) profiles
    /// included; `None`: `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
}

impl S3Config {
    /// A configuration for `bucket` with the defaults: no prefix, region `us-east-1`, AWS's
    /// endpoint, virtual-host addressing, https only, the standard credential chain.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            force_path_style: false,
            allow_http: false,
            credentials: S3Credentials::Chain,
            strict_checksums: false,
            page_size: DEFAULT_PAGE_SIZE,
            profile: None,
        }
    }

    /// A configuration for `bucket` on an S3-compatible emulator or test server at `endpoint`
    /// (moto, s3s-fs, MinIO): buckets addressed by path, plain `http://` accepted.
    pub fn emulator(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self::new(bucket).with_endpoint(endpoint).with_path_style(true).with_allow_http(true)
    }

    /// The object names under the bucket and prefix, once both are checked.
    pub(crate) fn names(&self) -> Result<ObjectNames, BackendError> {
        if self.bucket.is_empty() {
            return Err(BackendError::permanent("S3 configuration: the bucket is empty"));
        }
        ObjectNames::new("S3", &self.prefix)
    }

    /// Refuses `http://` endpoints unless allowed.
    pub(crate) fn check_endpoint(&self) -> Result<(), BackendError> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(());
        };
        let lower = endpoint.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Ok(());
        }
        if lower.starts_with("http://") {
            if self.allow_http {
                return Ok(());
            }
            return Err(BackendError::permanent(format!(
                "S3 configuration: endpoint {} is plain http; set allow_http to use it",
                redact_url(endpoint)
            )));
        }
        Err(BackendError::permanent(format!(
            "S3 configuration: endpoint {} must start with https:// or http://",
            redact_url(endpoint)
        )))
    }
}

vaultdb_core::config_setters!(S3Config {
    with_prefix(prefix: impl Into<String>) => prefix.into(),
    with_region(region: impl Into<String>) => region.into(),
    with_endpoint(endpoint: impl Into<String>) => Some(endpoint.into()),
    with_path_style(force_path_style: bool),
    with_allow_http(allow_http: bool),
    with_credentials(credentials: S3Credentials),
    with_page_size(page_size: usize),
});

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("force_path_style", &self.force_path_style)
            .field("allow_http", &self.allow_http)
            .field("credentials", &self.credentials)
            .field("strict_checksums", &self.strict_checksums)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// How an [`S3Backend`](crate::S3Backend) signs its requests.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum S3Credentials {
    /// The standard AWS credential chain: environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), shared profile files (`AWS_PROFILE`:
    /// static keys, assumed roles, IAM Identity Center (SSO) profiles), web identity tokens,
    /// ECS task roles and EC2 instance metadata, in that order. Without the
    /// `credential-chain` feature, only the environment variables are read.
    #[default]
    Chain,
    /// A fixed key pair, with an optional session token.
    Static {
        /// The access key id (not secret; shown in `Debug`).
        access_key_id: String,
        /// The secret access key (never shown).
        secret_access_key: String,
        /// A session token for temporary credentials (never shown).
        session_token: Option<String>,
    },
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain => f.write_str("Chain"),
            Self::Static { access_key_id, session_token, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .field("session_token", &session_token.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

impl S3Credentials {
    /// A fixed key pair without a session token.
    pub fn key_pair(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        Self::Static {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The credentials provider for the SDK.
    pub(crate) async fn provider(
        &self,
        region: &str,
        profile: Option<&str>,
    ) -> Result<Option<SharedCredentialsProvider>, BackendError> {
        match self {
            Self::Static { access_key_id, secret_access_key, session_token } => {
                Ok(Some(SharedCredentialsProvider::new(Credentials::new(
                    access_key_id,
                    secret_access_key,
                    session_token.clone(),
                    None,
                    "vaultdb-static",
                ))))
            }
            Self::Chain => chain(region, profile).await,
        }
    }
}

/// The region AWS's own tools would use: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then
/// (with the `credential-chain` feature) the `region` of the shared config file's profile
/// (`profile`, else `AWS_PROFILE`, else `default`); `us-east-1` if none says.
pub async fn resolve_region(profile: Option<&str>) -> String {
    match region_from_env(|name| std::env::var(name).ok()) {
        Some(r) => r,
        None => profile_region(profile, None).await.unwrap_or_else(|| "us-east-1".to_owned()),
    }
}

/// `AWS_REGION`, then `AWS_DEFAULT_REGION`, as `var` reads them (blank counts as unset).
fn region_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let var = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"))
}

/// The profile's region, from the shared config file (`config_file`, else where the AWS
/// tools look for it).
#[cfg(feature = "credential-chain")]
async fn profile_region(profile: Option<&str>, config_file: Option<&Path>) -> Option<String> {
    use aws_config::meta::region::ProvideRegion;
    let mut b = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        b = b.profile_name(p);
    }
    if let Some(path) = config_file {
        // aws-config's builder takes the files under this (deprecated) name of
        // aws-runtime's type; aws-runtime is not a direct dependency.
        #[allow(deprecated)]
        let files = aws_config::profile::profile_file::ProfileFiles::builder()
            .include_default_config_file(false)
            .include_default_credentials_file(false)
            .with_file(aws_config::profile::profile_file::ProfileFileKind::Config, path)
            .build();
        b = b.profile_files(files);
    }
    ProvideRegion::region(&b.build()).await.map(|r| r.to_string())
}

#[cfg(not(feature = "credential-chain"))]
async fn profile_region(_profile: Option<&str>, _config_file: Option<&Path>) -> Option<String> {
    None
}

#[cfg(feature = "credential-chain")]
async fn chain(
    region: &str,
    profile: Option<&str>,
) -> Result<Option<SharedCredentialsProvider>, BackendError> {
    use aws_config::default_provider::credentials::DefaultCredentialsChain;
    use aws_sdk_s3::config::Region;

    let mut b = DefaultCredentialsChain::builder().region(Region::new(region.to_owned()));
    if let Some(p) = profile {
        b = b.profile_name(p);
    }
    let chain = crate::sso::ProfileChain::new(b.build().await, profile);
    Ok(Some(SharedCredentialsProvider::new(chain)))
}

#[cfg(not(feature = "credential-chain"))]
async fn chain(
    _region: &str,
    _profile: Option<&str>,
) -> Result<Option<SharedCredentialsProvider>, BackendError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Some(SharedCredentialsProvider::new(Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "vaultdb-environment",
        )))),
        _ => Err(BackendError::permanent(
            "S3 configuration: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             configure static credentials, or build vaultdb-s3 with the `credential-chain` \
             feature",
        )),
    }
}

/// `url` without a `user:password@` part.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_aws_region_then_aws_default_region() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        const BOTH: &[(&str, &str)] =
            &[("AWS_REGION", "eu-west-3"), ("AWS_DEFAULT_REGION", "us-west-2")];
        assert_eq!(region_from_env(env(BOTH)).as_deref(), Some("eu-west-3"));
        const DEFAULT: &[(&str, &str)] =
            &[("AWS_REGION", "  "), ("AWS_DEFAULT_REGION", " us-west-2\n")];
        assert_eq!(region_from_env(env(DEFAULT)).as_deref(), Some("us-west-2"));
        assert_eq!(region_from_env(env(&[])), None);
    }

    #[cfg(feature = "credential-chain")]
    #[tokio::test]
    async fn without_the_variables_the_region_is_the_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "[default]\nregion = ap-south-1\n[profile prod]\nregion = sa-east-1\n[profile bare]\n",
        )
        .unwrap();
        let region = |p: Option<&'static str>| {
            let file = file.clone();
            async move { profile_region(p, Some(&file)).await }
        };
        assert_eq!(region(Some("prod")).await.as_deref(), Some("sa-east-1"));
        assert_eq!(region(Some("default")).await.as_deref(), Some("ap-south-1"));
        assert_eq!(region(Some("bare")).await, None, "then us-east-1");
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(redact_url("https://a:b@host/x"), "https://<redacted>@host/x");
        assert_eq!(redact_url("http://host:9000"), "http://host:9000");
        assert_eq!(redact_url("http://host/a@b"), "http://host/a@b");
    }

    #[test]
    fn names_need_a_bucket_and_a_valid_prefix() {
        let p = |s: &str| S3Config::new("b").with_prefix(s).names().map(|n| n.root().to_owned());
        assert_eq!(p("a/b").unwrap(), "a/b/");
        assert!(p("a/./b").is_err());
        assert!(S3Config::new("").names().is_err());
    }
}
