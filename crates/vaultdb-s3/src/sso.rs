//! Profiles that get their credentials from AWS IAM Identity Center (SSO).
//!
//! aws-config's SSO provider does the work, reached through the profile provider of the
//! credential chain: it reads the token `aws sso login` cached in `~/.aws/sso/cache/` and
//! trades it at the SSO portal for the role's temporary credentials. This module only makes
//! its failures say what to do: [`ProfileChain`] wraps them in [`SsoLoginNeeded`], which
//! names the `aws sso login` command, and [`login_message`] finds it again among the causes
//! of an SDK error, so that the request fails as `Permanent` with that message.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::path::Path;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_sdk_s3::error::ConnectorError;

/// How many `source_profile` links [`sso_profile`] follows (the SDK refuses loops itself).
const MAX_SOURCE_PROFILES: usize = 16;

/// One backend's credential chain. When the chain fails for a profile whose credentials come
/// from IAM Identity Center (itself or through `source_profile`), the error is wrapped in
/// [`SsoLoginNeeded`].
#[derive(Debug)]
pub(crate) struct ProfileChain {
    chain: DefaultCredentialsChain,
    /// The backend's profile; `None`: `AWS_PROFILE`, else `default`.
    profile: Option<String>,
}

impl ProfileChain {
    pub(crate) fn new(chain: DefaultCredentialsChain, profile: Option<&str>) -> Self {
        Self { chain, profile: profile.map(str::to_owned) }
    }

    async fn credentials(&self) -> provider::Result {
        let err = match self.chain.provide_credentials().await {
            Ok(credentials) => return Ok(credentials),
            Err(err) => err,
        };
        // Only a provider that failed is explained (not "nothing to load", nor a configuration
        // the SDK refused), and not when a server was out of reach: that stays Transient.
        if !matches!(err, CredentialsError::ProviderError(_)) || out_of_reach(&err) {
            return Err(err);
        }
        match sso_profile(self.profile.as_deref(), None).await {
            Some((profile, sso_profile)) => Err(CredentialsError::provider_error(SsoLoginNeeded {
                profile,
                sso_profile,
                source: err,
            })),
            None => Err(err),
        }
    }
}

impl ProvideCredentials for ProfileChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        self.chain.fallback_on_interrupt()
    }
}

/// Whether a connection failed among the causes of `err` (the SSO portal, or STS for a role
/// on top, could not be reached).
fn out_of_reach(err: &(dyn Error + 'static)) -> bool {
    causes(err).any(|e| e.is::<ConnectorError>())
}

/// The profile that `profile` (else `AWS_PROFILE`, else `default`) turns out to be, with
/// the profile holding its IAM Identity Center settings (`sso_session`, or `sso_start_url`
/// for profiles written before SSO sessions): itself, or one it reaches through
/// `source_profile`. `None` if its credentials do not come from IAM Identity Center, or the
/// files cannot be read.
///
/// The files are the shared config and credentials files, where the AWS tools look for them
/// (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`, else under `~/.aws/`), or `config_file`
/// alone.
pub(crate) async fn sso_profile(
    profile: Option<&str>,
    config_file: Option<&Path>,
) -> Option<(String, String)> {
    // aws-config takes the files under this (deprecated) name of aws-runtime's type;
    // aws-runtime is not a direct dependency.
    #[allow(deprecated)]
    let files = {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        match config_file {
            Some(path) => ProfileFiles::builder()
                .include_default_config_file(false)
                .include_default_credentials_file(false)
                .with_file(ProfileFileKind::Config, path)
                .build(),
            None => ProfileFiles::default(),
        }
    };
    let selected = profile.map(|p| Cow::Owned(p.to_owned()));
    let profiles =
        aws_config::profile::load(&Default::default(), &Default::default(), &files, selected)
            .await
            .ok()?;
    let mut name = profiles.selected_profile();
    for _ in 0..MAX_SOURCE_PROFILES {
        let settings = profiles.get_profile(name)?;
        if settings.get("sso_session").is_some() || settings.get("sso_start_url").is_some() {
            return Some((profiles.selected_profile().to_owned(), name.to_owned()));
        }
        name = settings.get("source_profile")?;
    }
    None
}

/// A backend's credentials could not be loaded, and its profile gets them from IAM Identity
/// Center: the SSO token is likely missing or expired. Its message names the command that
/// signs in again.
#[derive(Debug)]
pub(crate) struct SsoLoginNeeded {
    /// The backend's profile.
    profile: String,
    /// The profile with the SSO settings: `profile`, or one of its source profiles.
    sso_profile: String,
    source: CredentialsError,
}

impl fmt::Display for SsoLoginNeeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { profile, sso_profile, .. } = self;
        write!(
            f,
            "the credentials of AWS profile `{profile}` could not be loaded from AWS IAM \
             Identity Center (SSO)"
        )?;
        if profile != sso_profile {
            write!(f, " through its source profile `{sso_profile}`")?;
        }
        write!(
            f,
            "; if its SSO token is missing or expired, sign in again with \
             `aws sso login --profile {sso_profile}`"
        )
    }
}

impl Error for SsoLoginNeeded {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// If an [`SsoLoginNeeded`] is among the causes of `err`: its message, followed by its own
/// causes (without the repeats of the SDK's layers).
pub(crate) fn login_message(err: &(dyn Error + 'static)) -> Option<String> {
    let login = causes(err).find(|e| e.is::<SsoLoginNeeded>())?;
    let mut parts: Vec<String> = causes(login).map(|e| e.to_string()).collect();
    parts.dedup();
    Some(parts.join(": "))
}

/// `err` and its chain of sources.
fn causes<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Writer
[profile old]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 111122223333
sso_role_name = Writer
[profile admin]
role_arn = arn:aws:iam::111122223333:role/Admin
source_profile = dev
[profile keys]
aws_access_key_id = AKIDEXAMPLE
aws_secret_access_key = secret
[profile loop]
role_arn = arn:aws:iam::111122223333:role/Admin
source_profile = loop
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
";

    #[tokio::test]
    async fn sso_profiles_are_found_directly_and_through_source_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, CONFIG).unwrap();
        let find = |p: &'static str| {
            let file = file.clone();
            async move { sso_profile(Some(p), Some(&file)).await }
        };
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(find("dev").await, pair("dev", "dev"));
        assert_eq!(find("old").await, pair("old", "old"), "legacy profile (no sso_session)");
        assert_eq!(find("admin").await, pair("admin", "dev"));
        assert_eq!(find("keys").await, None);
        assert_eq!(find("loop").await, None);
        assert_eq!(find("missing").await, None);
    }

    #[test]
    fn the_message_names_the_login_command_and_keeps_the_causes() {
        let inner = CredentialsError::provider_error("the SSO token has expired");
        let login = SsoLoginNeeded {
            profile: "admin".into(),
            sso_profile: "dev".into(),
            source: CredentialsError::provider_error(inner),
        };
        let outer = CredentialsError::provider_error(login);
        let message = login_message(&outer).unwrap();
        assert!(message.starts_with("the credentials of AWS profile `admin`"), "{message}");
        assert!(message.contains("through its source profile `dev`"), "{message}");
        assert!(message.contains("`aws sso login --profile dev`"), "{message}");
        assert!(
            message.ends_with(
                ": an error occurred while loading credentials: the SSO token has expired"
            ),
            "each distinct cause once: {message}"
        );
        let plain = CredentialsError::provider_error("no SSO here");
        assert_eq!(login_message(&plain), None);
    }

    #[test]
    fn connection_failures_are_told_apart() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = CredentialsError::provider_error(ConnectorError::io(refused.into()));
        assert!(out_of_reach(&err));
        assert!(!out_of_reach(&CredentialsError::provider_error("401 UnauthorizedException")));
    }
}
